rockspec_format = "3.0"
package = "knox"
version = "scm-1"

-- The one place the project's address is written: rockspec/knox-sim-scm-1.rockspec
-- is made from this file's source table by `make rockspecs` (scripts/rock.lua),
-- and spec/install_spec.lua fails when the two differ. Change the URL here
-- when the repository is published.
source = {
  url = "git+https://example.invalid/knox.git",
}

description = {
  summary = "Samsung Knox cloud services client: KME, Knox Guard, MSP Portal, KDP, Knox Configure",
  detailed = [[
A thin C core (libcurl transport, OpenSSL signing, cJSON JSON, error
normalization) under an idiomatic Lua 5.4 API. Errors are raised as
knox.Error objects carrying the Knox code, name and HTTP status; tokens are
obtained and renewed for you; retries are safe by construction; a Knox
simulator is included for offline tests.
]],
  license = "MIT",
}

-- The command (bin/knox) and the simulator's command line parse their
-- arguments with argparse (Debian: lua-argparse), through knox.args; fleet
-- jobs (knox.job, `knox job`) keep their ledger in SQLite through LuaSQL
-- (Debian: lua-sql-sqlite3, which needs libsqlite3 to build as a rock).
--
-- The simulator (knox.sim, `knox sim`, knox.sim.testing) is installed with
-- this rock, but its own dependencies (luasocket, luasec, luaossl,
-- lua-cjson) are the knox-sim rock's (rockspec/knox-sim-scm-1.rockspec), so
-- a program that only calls Knox builds none of them. Without them
-- `knox sim` names the missing Debian packages and the rock.
--
-- On Debian these Lua modules come from apt, which LuaRocks does not see:
-- scripts/luarocks-debian.sh writes a LuaRocks configuration that lists
-- the installed ones as provided (README "Install").
--
-- LuaFileSystem (Debian: lua-filesystem) stays optional: with it, a service
-- file put beside the shipped ones (lua/knox/services/) is found on its
-- own; without it only the shipped services and package.preload are.
dependencies = {
  "lua >= 5.4",
  "argparse >= 0.6",
  "luasql-sqlite3 >= 2.4",
}

-- Found by library: LuaRocks looks in Debian's multiarch library folders,
-- and the compiler finds the headers there itself (curl's live under
-- /usr/include/<triplet>/ on Debian).
external_dependencies = {
  CURL = { library = "curl" },
  OPENSSL = { library = "ssl" },
  CJSON = { library = "cjson" },
}

-- Built by the project's Makefile (LuaRocks' make type), not by the
-- builtin type: the builtin type compiles with LuaRocks' CFLAGS only, so
-- core.so would export every knox_* function of the core, where `make`
-- builds it with -fvisibility=hidden and exports luaopen_knox_core alone
-- (a host process loads other C modules too). It also keeps one list of
-- what is installed -- every lua/**/*.lua, core.so, every bin/* command
-- (the Makefile's install-lua) -- so no new module or command can be left out.
build = {
  type = "make",
  build_target = "build",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",   -- how this platform links a Lua module (-shared on Linux)
    -- warnings on, but a newer compiler's new warning must not fail a user's
    -- install (`make build` in CI keeps -Werror)
    WARN = "-Wall -Wextra",
    LUA = "$(LUA)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    CPPFLAGS = "-I$(CURL_INCDIR) -I$(OPENSSL_INCDIR) -I$(CJSON_INCDIR)",
    LDFLAGS = "-L$(CURL_LIBDIR) -L$(OPENSSL_LIBDIR) -L$(CJSON_LIBDIR)",
  },
  install_target = "install-lua",
  install_variables = {
    LUA = "$(LUA)",
    LUADIR = "$(LUADIR)",
    CMODDIR = "$(LIBDIR)",
    BINDIR = "$(BINDIR)",
  },
}

test_dependencies = {
  "busted",
}

test = {
  type = "busted",
}
