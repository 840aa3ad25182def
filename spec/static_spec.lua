-- libknox.a for C hosts (`make static`, embed/): only luaopen_knox_core and
-- knox_openlibs are global in it; knox.pc links it; knox_openlibs refuses a
-- state without the package library and otherwise serves every module from
-- memory; examples/embed/host.c lists and locks Knox Guard devices against
-- the simulator with no knox file reachable; examples/embed/threads.c does
-- it from two lua_States on two threads at once. The hosts are built here
-- with `cc ... $(pkg-config --cflags --libs knox lua5.4)`.
--
-- About the checkout's build (make static), so skipped against an
-- installed tree (`make test-rock`: the rocks carry no archive).
local sim = require "support.sim"
local servers = require "support.http_servers"
local helpers = require "helpers"

local quote = sim.quote
local it_here = helpers.TREE and pending or it

local PLAIN_ENV = helpers.PLAIN_ENV
local ROOT = sim.ROOT

local sh = helpers.sh

-- stdout and stderr apart: code, out, err
local function run(cmd)
  local errf = os.tmpname()
  local p = assert(io.popen(cmd .. " 2>" .. quote(errf), "r"))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = sim.read_file(errf) or ""
  os.remove(errf)
  return code, out, err
end

local PKG = PLAIN_ENV .. "PKG_CONFIG_PATH=" .. quote(ROOT .. "/build") .. " pkg-config "

describe("libknox.a", function()
  local dir, s

  local function build_host(name, src, extra)
    local cmd = ("cd %s && %scc -std=c11 -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Werror "
      .. "-o %s %s $(%s--cflags --libs knox lua5.4) %s"):format(quote(ROOT), PLAIN_ENV, quote(dir .. "/" .. name),
      quote(src), PKG, extra or "")
    local out, code = sh(cmd)
    assert(code == 0, "building " .. src .. " failed:\n" .. out)
    return dir .. "/" .. name
  end

  -- a host run from an empty directory, where no knox file can be found
  local function host_env(extra)
    local e = { KNOX_BASE_URL = s.url, KNOX_KEYS_FILE = s.keys_file, KNOX_CLIENT_ID = s.client_id,
      LUA_PATH = "/nonexistent/?.lua", LUA_CPATH = "/nonexistent/?.so", LUA_PATH_5_4 = "/nonexistent/?.lua",
      LUA_CPATH_5_4 = "/nonexistent/?.so" }
    for k, v in pairs(extra or {}) do e[k] = v end
    local parts = { "cd " .. quote(dir) .. " && " .. sim.ENV }
    for k, v in pairs(e) do parts[#parts + 1] = k .. "=" .. quote(v) .. " " end
    return table.concat(parts)
  end

  lazy_setup(function()
    if helpers.TREE then return end
    local out, code = sh("cd " .. quote(ROOT) .. " && " .. PLAIN_ENV .. "make -s static")
    assert(code == 0, "make static failed:\n" .. out)
    dir = servers.tmpdir()
    s = sim.start { devices = 20 }
  end)

  lazy_teardown(function()
    if s then s:stop() end
    if dir then servers.rmdir(dir) end
  end)

  it_here("has luaopen_knox_core and knox_openlibs as its only global symbols", function()
    local out, code = sh(PLAIN_ENV .. "nm -g --defined-only " .. quote(ROOT .. "/build/libknox.a"))
    assert.are.equal(0, code, out)
    local globals = {}
    for name in out:gmatch("\n%x+ %a (%S+)") do globals[#globals + 1] = name end
    table.sort(globals)
    assert.are.same({ "knox_openlibs", "luaopen_knox_core" }, globals)
    -- and every knox_* reference inside is resolved inside: none is left
    -- for a host's own symbol of that name to satisfy
    out = sh(PLAIN_ENV .. "nm -u " .. quote(ROOT .. "/build/libknox.a"))
    assert.is_nil(out:find("knox_", 1, true), out)
  end)

  it_here("is described by knox.pc: the header, the archive and the C libraries it needs", function()
    local out, code = sh(PKG .. "--cflags --libs knox")
    assert.are.equal(0, code, out)
    local abs = sh("cd " .. quote(ROOT) .. " && pwd"):gsub("\n$", "")
    assert.are.equal(("-I%s/include -L%s/build -lknox -lcurl -lcjson -lssl -lcrypto -lm\n"):format(abs, abs),
      out:gsub("%s+", " "):gsub(" $", "\n"))
    assert.are.equal(require("knox.core").version .. "\n", (sh(PKG .. "--modversion knox")))
  end)

  it_here("serves every module from package.preload, and refuses a state without the package library", function()
    local host = build_host("preload", "spec/support/embed/preload.c")
    local code, out = run(host_env() .. quote(host))
    local count = tonumber((sh("find " .. quote(ROOT .. "/lua") .. " -name '*.lua' | wc -l")))   -- + knox.core
    assert.are.equal("without package: knox_openlibs: the package library is not open in this lua_State "
      .. "(call luaL_openlibs(L), or luaL_requiref(L, LUA_LOADLIBNAME, luaopen_package, 1), first)\n"
      .. ("with package: %d modules preloaded, "):format(count + 1), out:match("^(.-)%d+ required"))
    assert.matches("required; knox " .. require("knox.core").version:gsub("%p", "%%%0") .. "; decode\n$", out)
    assert.are.equal(0, code)
  end)

  it_here("runs examples/embed/host.c: lists Knox Guard devices and locks one, from memory", function()
    local host = build_host("host", "examples/embed/host.c")
    local code, out, err = run(host_env() .. quote(host))
    assert.are.equal("", err)
    assert.are.equal(0, code)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("20 Knox Guard devices, 10 on this page", lines[1])
    assert.are.equal(12, #lines)
    local uid = lines[#lines]:match("^locked (%d+): Locked$")
    assert.is_not_nil(uid, lines[#lines])
    local locks = s:requests { path = "/kcs/v1.1/kg/devices/lock" }
    assert.are.equal(1, #locks)
    assert.are.equal(uid, require("cjson").decode(locks[1].body).deviceUid)
  end)

  it_here("runs examples/embed/host.c to a clear error when Knox refuses its credentials", function()
    local host = build_host("host", "examples/embed/host.c")
    local code, out, err = run(host_env { KNOX_CLIENT_ID = "not-a-client" } .. quote(host))
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("^host: knox: [%u_]+ %(", err)
    assert.matches("/ams/v1/users/accesstoken", err, 1, true)
  end)

  it_here("runs examples/embed/threads.c: two lua_States on two threads, real requests at once, 3 runs", function()
    local host = build_host("threads", "examples/embed/threads.c", "-lpthread")
    for _, bad in ipairs { "0", "5x", "1001" } do
      local code, out, err = run(host_env() .. quote(host) .. " " .. bad)
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("^usage: .*threads %[ROUNDS%]", err)
    end
    local rounds = helpers.scaled(8)
    for attempt = 1, 3 do
      s:reset()
      local code, out, err = run(host_env() .. quote(host) .. " " .. rounds)
      assert.are.equal("", err)
      -- 20 devices, 7 a page: 3 list pages, then lock, read, unlock, read per round
      local a, b = out:match("^thread 1: ok (%d+) " .. (3 + 4 * rounds) .. " requests\nthread 2: ok (%d+) "
        .. (3 + 4 * rounds) .. " requests\n$")
      assert(a and b, "run " .. attempt .. ": " .. out)
      assert.are_not.equal(a, b)
      assert.are.equal(0, code)
      local seen = {}
      for _, r in ipairs(s:requests { path = "/kcs/v1.1/kg/devices/lock" }) do
        seen[require("cjson").decode(r.body).message] = true
      end
      for t = 1, 2 do
        for r = 1, rounds do
          assert.is_true(seen["thread " .. t .. " round " .. r], "thread " .. t .. " round " .. r)
        end
      end
    end
  end)
end)
