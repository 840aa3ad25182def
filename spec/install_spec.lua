-- Packaging: the suite loads knox from where it says (the checkout, or the
-- installed tree under `make test-rock`, and then nothing from lua/ or
-- build/); the installed tree holds every module and both commands; the
-- two rockspecs share one source URL and declare dependencies that Debian
-- packages provide (scripts/luarocks-debian.sh, scripts/install-deps.sh);
-- `make install DESTDIR= PREFIX=` lays out a distribution's files and the
-- installed knox command runs from them.
local sim = require "support.sim"
local servers = require "support.http_servers"
local helpers = require "helpers"

local quote, ROOT, TREE = sim.quote, sim.ROOT, helpers.TREE
local it_tree = TREE and it or pending
local it_here = TREE and pending or it

local PLAIN_ENV = helpers.PLAIN_ENV

local sh = helpers.sh

local function exists(path, mode)
  local out = sh("test -" .. (mode or "f") .. " " .. quote(path) .. " && echo yes")
  return out == "yes\n"
end

-- The files in the checkout's bin/ (knox, knox-sim).
local function commands()
  local out = sh("cd " .. quote(ROOT .. "/bin") .. " && ls | LC_ALL=C sort")
  local t = {}
  for f in out:gmatch("[^\n]+") do t[#t + 1] = f end
  assert(#t >= 2, out)
  return t
end

-- The checkout's Lua files, relative to lua/ (knox.lua, knox/client.lua ...).
local function lua_files(dir)
  local out = sh("cd " .. quote(dir) .. " && find . -type f -name '*.lua' | LC_ALL=C sort")
  local t = {}
  for f in out:gmatch("%./([^\n]+)") do t[#t + 1] = f end
  return t
end

-- A rockspec's fields (it is a Lua chunk setting globals).
local function rockspec(name)
  local env = {}
  local chunk = assert(loadfile(ROOT .. "/rockspec/" .. name, "t", env))
  chunk()
  return env
end

local function dep_name(d)
  return (d:match("^([%w_%-%.]+)"))
end

local function exported(so)
  local out, code = sh(PLAIN_ENV .. "nm -D --defined-only " .. quote(so))
  assert(code == 0, out)
  local t = {}
  for kind, name in out:gmatch("\n?%x+ (%a) (%S+)") do
    if kind:match("[TtWwi]") then t[#t + 1] = name end
  end
  return t
end

describe("packaging", function()
  it("loads knox, knox.core and knox.sim from the tree under test, never from the other", function()
    local knox_file = assert(package.searchpath("knox", package.path))
    local core_file = assert(package.searchpath("knox.core", package.cpath))
    local sim_file = assert(package.searchpath("knox.sim", package.path))
    if TREE then
      for _, f in ipairs { knox_file, sim_file } do
        assert.are.equal(TREE .. "/share/lua/5.4/", f:sub(1, #TREE + 15))
      end
      assert.are.equal(TREE .. "/lib/lua/5.4/knox/core.so", core_file)
      -- no template of either path reaches the checkout's lua/ or build/
      for t in (package.path .. ";" .. package.cpath):gmatch("[^;]+") do
        assert.is_nil(t:match("^%.?/?lua/") or t:match("^%.?/?build") or t:find(ROOT .. "/lua/", 1, true), t)
      end
    else
      assert.matches("^%.?/?lua/knox%.lua$", knox_file)
      assert.matches("^%.?/?lua/knox/sim/init%.lua$", sim_file)
      assert.matches("^%.?/?build[%w%-]*/knox/core%.so$", core_file)
    end
  end)

  it_tree("installed every module of lua/, core.so exporting luaopen_knox_core only, and every bin/ command", function()
    assert.are.same(lua_files(ROOT .. "/lua"), lua_files(TREE .. "/share/lua/5.4"))
    assert.are.same({ "luaopen_knox_core" }, exported(TREE .. "/lib/lua/5.4/knox/core.so"))
    for _, b in ipairs(commands()) do assert.is_true(exists(TREE .. "/bin/" .. b, "x"), b) end
    local out, code = sh("cd /tmp && " .. quote(TREE .. "/bin/knox") .. " version")
    assert.are.equal(0, code, out)
    assert.matches("^knox " .. require("knox.core").version:gsub("%p", "%%%0") .. " %(", out)
  end)

  describe("the rockspecs", function()
    local knox_spec, sim_spec = rockspec("knox-scm-1.rockspec"), rockspec("knox-sim-scm-1.rockspec")

    it("name one source URL: knox-sim's source table is knox's (make rockspecs copies it)", function()
      local rock = assert(loadfile(ROOT .. "/scripts/rock.lua"))("--module")
      local main = rock.source_block(sim.read_file(ROOT .. "/" .. rock.MAIN))
      local copy = rock.source_block(sim.read_file(ROOT .. "/" .. rock.SIM))
      assert.is_string(main)
      assert(main == copy, rock.SIM .. " has another source table than " .. rock.MAIN .. ": run make rockspecs")
      assert.are.same(knox_spec.source, sim_spec.source)
    end)

    it("declare what the simulator needs in knox-sim, and every dependency a Debian package provides", function()
      local deps = {}
      for _, d in ipairs(sim_spec.dependencies) do deps[#deps + 1] = dep_name(d) end
      assert.are.same({ "lua", "knox", "luasocket", "luasec", "luaossl", "lua-cjson" }, deps)
      local map = sim.read_file(ROOT .. "/scripts/luarocks-debian.sh")
      local install = sim.read_file(ROOT .. "/scripts/install-deps.sh")
      local sim_deps = sim.read_file(ROOT .. "/lua/knox/sim/deps.lua")
      for _, spec in ipairs { knox_spec, sim_spec } do
        for _, d in ipairs(spec.dependencies) do
          local name = dep_name(d)
          if name ~= "lua" and name ~= "knox" then
            local pkg = map:match("\n" .. name:gsub("%p", "%%%0") .. " (%S+)\n")
            assert(pkg, name .. " has no Debian package in scripts/luarocks-debian.sh")
            assert(install:find("\n" .. pkg .. "\n", 1, true), pkg .. " is not in scripts/install-deps.sh")
            if spec == sim_spec then
              assert(sim_deps:find('package = "' .. pkg .. '"', 1, true), pkg .. " is not in knox/sim/deps.lua")
            end
          end
        end
      end
    end)
  end)

  describe("make install", function()
    local dest

    lazy_setup(function()
      if TREE then return end
      dest = servers.tmpdir()
    end)

    lazy_teardown(function()
      if dest then servers.rmdir(dest) end
    end)

    it_here("lays out a distribution's files under DESTDIR, for PREFIX, and the installed command runs", function()
      local out, code = sh("cd " .. quote(ROOT) .. " && " .. PLAIN_ENV .. "make -s install DESTDIR="
        .. quote(dest) .. " PREFIX=/opt/knox")
      assert(code == 0, "make install failed:\n" .. out)
      local p = dest .. "/opt/knox"
      assert.are.same(lua_files(ROOT .. "/lua"), lua_files(p .. "/share/lua/5.4"))
      assert.are.same({ "luaopen_knox_core" }, exported(p .. "/lib/lua/5.4/knox/core.so"))
      for _, f in ipairs(commands()) do assert.is_true(exists(p .. "/bin/" .. f, "x"), f) end
      for _, f in ipairs { "include/knox.h", "lib/libknox.a", "lib/pkgconfig/knox.pc" } do
        assert.is_true(exists(p .. "/" .. f), f)
      end
      local pc = sim.read_file(p .. "/lib/pkgconfig/knox.pc")
      assert.matches("\nprefix=/opt/knox\nlibdir=/opt/knox/lib\nincludedir=/opt/knox/include\n", "\n" .. pc)
      assert.is_nil(pc:find(dest, 1, true))   -- DESTDIR is a staging area, never in a file

      -- the installed command, with only the installed paths (and the
      -- system's, for its Debian dependencies), from a directory without knox
      local env = PLAIN_ENV .. "LUA_PATH=" .. quote(p .. "/share/lua/5.4/?.lua;" .. p .. "/share/lua/5.4/?/init.lua;;")
        .. " LUA_CPATH=" .. quote(p .. "/lib/lua/5.4/?.so;;") .. " "
      out, code = sh("cd " .. quote(dest) .. " && " .. env .. quote(p .. "/bin/knox") .. " errors lookup kme 4040300")
      assert.are.equal(0, code, out)
      assert.are.equal("4040300 DEVICE_NOT_FOUND (HTTP 404): The requested device does not exist.\n", out)
      out = sh("cd " .. quote(dest) .. " && " .. env .. "lua5.4 -e "
        .. quote("io.write(package.searchpath('knox', package.path), ' ', "
          .. "package.searchpath('knox.core', package.cpath))"))
      assert.are.equal(p .. "/share/lua/5.4/knox.lua " .. p .. "/lib/lua/5.4/knox/core.so", out)
    end)
  end)
end)
