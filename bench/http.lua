--- bench/http.lua — transport benchmark (run by `make bench`, or
--   LUA_PATH='lua/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/http.lua [N]).
--
-- 1. N (default 10,000) keep-alive GETs of a 1.3 KB JSON document served by
--    a loopback nginx (Debian nginx-light, started here), with
--    knox.Session:request, against the same loop in plain C on libcurl
--    (bench/http_loop.c, compiled now), over HTTP and over HTTPS, in this
--    run. The two loops alternate, ROUNDS times, so that both see the same
--    machine load; prints wall time per request, the ratio Lua/C of the
--    best runs and the median of the ratios of adjacent runs, and the same
--    ratio in process CPU time (target <= 1.10).
-- 2. session:batch of 200 requests to a server that answers after 50 ms,
--    concurrency 1 against 10 (target: at least 8x faster at 10).
-- Every server started here stops when this script ends (or after 10 min).
package.path = "spec/?.lua;lua/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath

local core = require "knox.core"
local servers = require "support.http_servers"

local N = tonumber(arg[1]) or 10000
local ROUNDS = tonumber(arg[2]) or 5

local sh, median = servers.sh, servers.median

local dir = servers.tmpdir()
local ngx, slow, user_agent
local ok, err = pcall(function()
  local certs = servers.make_certs(dir)
  ngx = servers.nginx { dir = dir, certs = certs, lifetime = 600 }
  local doc = servers.device_page("devices")
  local f = assert(io.open(dir .. "/www/data.json", "wb"))
  f:write(doc)
  f:close()

  local exe = dir .. "/http_loop"
  local built, out = sh(("cc -O2 -o %s bench/http_loop.c $(pkg-config --cflags --libs libcurl) 2>&1"):format(exe))
  assert(built, "could not build bench/http_loop.c: " .. out)

  user_agent = ("knox-lua/%s libcurl/%s Lua 5.4"):format(core.version, core.curl_version)

  print(("knox transport bench: %d keep-alive GETs of %d bytes, libcurl %s, best and median of %d rounds")
    :format(N, #doc, core.curl_version, ROUNDS))
  for _, scheme in ipairs { "http", "https" } do
    local port = scheme == "http" and ngx.http_port or ngx.https_port
    local url = ("%s://127.0.0.1:%d/data.json"):format(scheme, port)
    local ca = scheme == "https" and certs.ca or nil

    local function c_loop(n)
      -- the same request as the session's: same User-Agent and encodings
      local good, text = sh(("%s %s %d %s '%s'"):format(exe, url, n, ca or "-", user_agent))
      assert(good, "C loop failed: " .. text)
      local secs, cpu, bytes, conns = text:match("seconds=([%d.]+) cpu=([%d.]+) bytes=(%d+) connects=(%d+)")
      assert(tonumber(bytes) == n * #doc, "C loop got the wrong bytes")
      return tonumber(secs), tonumber(cpu), tonumber(conns)
    end

    local function lua_loop(n)
      local s = core.session { ca_file = ca }
      local conns, version = 0, nil
      local req = { method = "GET", url = url }
      local t0, c0 = core.monotime(), os.clock()
      for _ = 1, n do
        local status, _, body, info = s:request(req)
        if status ~= 200 or #body ~= #doc then error("bad response " .. tostring(status)) end
        conns = conns + info.num_connects
        version = info.http_version
      end
      local secs, cpu = core.monotime() - t0, os.clock() - c0
      s:close()
      return secs, cpu, conns, version
    end

    c_loop(500)
    lua_loop(500)
    local cs, ls, ccpu, lcpu, pair, version, cconn, lconn = {}, {}, {}, {}, {}, nil, 0, 0
    for r = 1, ROUNDS do
      cs[r], ccpu[r], cconn = c_loop(N)
      ls[r], lcpu[r], lconn, version = lua_loop(N)
      pair[r] = ls[r] / cs[r]
    end
    local cbest, lbest = math.min(table.unpack(cs)), math.min(table.unpack(ls))
    print(("  %-5s HTTP/%s  wall: C %.1f us/req, Lua %.1f us/req, ratio best %.3f, median of pairs %.3f;"
      .. " cpu ratio %.3f  (connections: C %d, Lua %d)")
      :format(scheme, version, cbest / N * 1e6, lbest / N * 1e6, lbest / cbest, median(pair),
        math.min(table.unpack(lcpu)) / math.min(table.unpack(ccpu)), cconn, lconn))
  end

  slow = servers.httpd(600)
  local s = core.session()
  local reqs = {}
  for i = 1, 200 do reqs[i] = { url = slow.url("/slow?ms=50&id=" .. i) } end
  local times = {}
  for _, conc in ipairs { 1, 10 } do
    local t0 = core.monotime()
    local res = s:batch(reqs, { concurrency = conc })
    times[conc] = core.monotime() - t0
    for i = 1, #reqs do assert(res[i].status == 200, "batch item " .. i .. " failed") end
  end
  s:close()
  print(("  batch 200 x 50 ms: concurrency 1 %.2f s, concurrency 10 %.2f s, speed-up %.1fx")
    :format(times[1], times[10], times[1] / times[10]))
end)
if slow then slow.stop() end
if ngx then ngx.stop() end
servers.rmdir(dir)
if not ok then error(err, 0) end
