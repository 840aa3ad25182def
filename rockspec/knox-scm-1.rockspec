rockspec_format = "3.0"
package = "knox"
version = "scm-1"

-- The one place the project's address is written: rockspec/knox-sim-scm-1.rockspec
-- is made from this file's source table by `make rockspecs` (scripts/rock.lua),
-- and spec/rockspec_spec.lua fails when the two differ. Change the URL here
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

build = {
  type = "builtin",
  modules = {
    ["knox.core"] = {
      sources = {
        "csrc/catalog.c", "csrc/catalog_find.c", "csrc/clock.c", "csrc/core.c",
        "csrc/errors.c", "csrc/http.c", "csrc/http_batch.c", "csrc/http_debug.c",
        "csrc/http_error.c", "csrc/http_request.c", "csrc/http_session.c", "csrc/http_text.c",
        "csrc/http_transfer.c", "csrc/json.c", "csrc/kerror.c", "csrc/key.c", "csrc/keyfile.c", "csrc/text.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "curl", "cjson", "ssl", "crypto", "dl", "pthread" },
      incdirs = { "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)", "$(CJSON_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)", "$(CJSON_LIBDIR)" },
    },
    ["knox"] = "lua/knox.lua",
    ["knox.auth"] = "lua/knox/auth.lua",
    ["knox.args"] = "lua/knox/args.lua",
    ["knox.cli"] = "lua/knox/cli.lua",
    ["knox.cli.cache"] = "lua/knox/cli/cache.lua",
    ["knox.cli.commands"] = "lua/knox/cli/commands.lua",
    ["knox.cli.common"] = "lua/knox/cli/common.lua",
    ["knox.cli.completion"] = "lua/knox/cli/completion.lua",
    ["knox.cli.doctor"] = "lua/knox/cli/doctor.lua",
    ["knox.cli.input"] = "lua/knox/cli/input.lua",
    ["knox.cli.job"] = "lua/knox/cli/job.lua",
    ["knox.cli.output"] = "lua/knox/cli/output.lua",
    ["knox.cli.profile"] = "lua/knox/cli/profile.lua",
    ["knox.cli.progress"] = "lua/knox/cli/progress.lua",
    ["knox.cli.report"] = "lua/knox/cli/report.lua",
    ["knox.cli.session"] = "lua/knox/cli/session.lua",
    ["knox.cli.term"] = "lua/knox/cli/term.lua",
    ["knox.cli.tokens"] = "lua/knox/cli/tokens.lua",
    ["knox.bulk"] = "lua/knox/bulk.lua",
    ["knox.client"] = "lua/knox/client.lua",
    ["knox.client.batch"] = "lua/knox/client/batch.lua",
    ["knox.client.clock"] = "lua/knox/client/clock.lua",
    ["knox.client.hooks"] = "lua/knox/client/hooks.lua",
    ["knox.client.job"] = "lua/knox/client/job.lua",
    ["knox.governor"] = "lua/knox/governor.lua",
    ["knox.job"] = "lua/knox/job/init.lua",
    ["knox.job.ledger"] = "lua/knox/job/ledger.lua",
    ["knox.job.readback"] = "lua/knox/job/readback.lua",
    ["knox.job.source"] = "lua/knox/job/source.lua",
    ["knox.config"] = "lua/knox/config.lua",
    ["knox.errors"] = "lua/knox/errors.lua",
    ["knox.headers"] = "lua/knox/headers.lua",
    ["knox.pager"] = "lua/knox/pager.lua",
    ["knox.retry"] = "lua/knox/retry.lua",
    ["knox.service"] = "lua/knox/service.lua",
    ["knox.services.auth"] = "lua/knox/services/auth.lua",
    ["knox.services.hosts"] = "lua/knox/services/hosts.lua",
    ["knox.services"] = "lua/knox/services/init.lua",
    ["knox.services.kai"] = "lua/knox/services/kai.lua",
    ["knox.services.kc"] = "lua/knox/services/kc.lua",
    ["knox.services.kdp"] = "lua/knox/services/kdp.lua",
    ["knox.services.kg"] = "lua/knox/services/kg.lua",
    ["knox.services.kme"] = "lua/knox/services/kme.lua",
    ["knox.services.msp"] = "lua/knox/services/msp.lua",
    ["knox.services.oauth2"] = "lua/knox/services/oauth2.lua",
    ["knox.services.samsung_account"] = "lua/knox/services/samsung_account.lua",
    ["knox.sim.auth"] = "lua/knox/sim/auth.lua",
    ["knox.sim.codec"] = "lua/knox/sim/codec.lua",
    ["knox.sim.control"] = "lua/knox/sim/control.lua",
    ["knox.sim.crypto"] = "lua/knox/sim/crypto.lua",
    ["knox.sim.deps"] = "lua/knox/sim/deps.lua",
    ["knox.sim.errors"] = "lua/knox/sim/errors.lua",
    ["knox.sim.faults"] = "lua/knox/sim/faults.lua",
    ["knox.sim.fleet"] = "lua/knox/sim/fleet.lua",
    ["knox.sim.http"] = "lua/knox/sim/http.lua",
    ["knox.sim"] = "lua/knox/sim/init.lua",
    ["knox.sim.json"] = "lua/knox/sim/json.lua",
    ["knox.sim.kc"] = "lua/knox/sim/kc.lua",
    ["knox.sim.kdp"] = "lua/knox/sim/kdp.lua",
    ["knox.sim.kg"] = "lua/knox/sim/kg.lua",
    ["knox.sim.kme"] = "lua/knox/sim/kme.lua",
    ["knox.sim.limits"] = "lua/knox/sim/limits.lua",
    ["knox.sim.loop"] = "lua/knox/sim/loop.lua",
    ["knox.sim.msp"] = "lua/knox/sim/msp.lua",
    ["knox.sim.persist"] = "lua/knox/sim/persist.lua",
    ["knox.sim.router"] = "lua/knox/sim/router.lua",
    ["knox.sim.state"] = "lua/knox/sim/state.lua",
    ["knox.sim.testing"] = "lua/knox/sim/testing.lua",
    ["knox.text"] = "lua/knox/text.lua",
    ["knox.schema"] = "lua/knox/schema.lua",
    ["knox.url"] = "lua/knox/url.lua",
    ["knox.waiter"] = "lua/knox/waiter.lua",
  },
  install = {
    bin = { knox = "bin/knox", ["knox-sim"] = "bin/knox-sim" },
  },
}

test_dependencies = {
  "busted",
}

test = {
  type = "busted",
}
