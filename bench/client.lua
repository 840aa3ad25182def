--- bench/client.lua — the whole client pipeline against its floor (run by
-- `make bench`, or LUA_PATH='lua/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4
-- bench/client.lua [N] [ROUNDS]).
--
-- N (default 10,000) client:request("GET", ...) calls with a static token
-- (auth, headers, transport, status check, JSON decode, response table)
-- against a loopback nginx serving a 1.3 KB JSON device page, compared in
-- the same run with the floor: the same N keep-alive GETs in plain C on
-- libcurl (bench/http_loop.c) plus N lua-cjson decodes of the page. The two
-- alternate ROUNDS times; prints the ratio of the best runs and the median
-- of adjacent pairs (target <= 1.25).
package.path = "spec/?.lua;lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath

local core = require "knox.core"
local knox = require "knox"
local cjson = require "cjson"
local servers = require "support.http_servers"

local N = tonumber(arg[1]) or 10000
local ROUNDS = tonumber(arg[2]) or 5

local sh, median = servers.sh, servers.median

local dir = servers.tmpdir()
local ngx
local ok, err = pcall(function()
  ngx = servers.nginx { dir = dir, certs = servers.make_certs(dir), lifetime = 600 }
  local doc = servers.device_page("deviceList")
  local f = assert(io.open(dir .. "/www/data.json", "wb"))
  f:write(doc)
  f:close()
  local exe = dir .. "/http_loop"
  local built, out = sh(("cc -O2 -o %s bench/http_loop.c $(pkg-config --cflags --libs libcurl) 2>&1"):format(exe))
  assert(built, "could not build bench/http_loop.c: " .. out)
  local base = ("http://127.0.0.1:%d"):format(ngx.http_port)
  local user_agent = ("knox-lua/%s libcurl/%s Lua 5.4"):format(core.version, core.curl_version)

  local function floor_run(n)
    local good, text = sh(("%s %s/data.json %d - '%s'"):format(exe, base, n, user_agent))
    assert(good, "C loop failed: " .. text)
    local secs = tonumber(text:match "seconds=([%d.]+)")
    local t0 = core.monotime()
    for _ = 1, n do
      local v = cjson.decode(doc)
      if v.totalCount ~= 6 then error("bad decode") end
    end
    return secs + (core.monotime() - t0)
  end

  local function client_run(n)
    local c <close> = knox.client { base_url = base, auth = knox.auth.token { value = "bench-token" } }
    local t0 = core.monotime()
    for _ = 1, n do
      local body, res = c:request("GET", "/data.json")
      if res.status ~= 200 or body.totalCount ~= 6 then error("bad response") end
    end
    return core.monotime() - t0
  end

  floor_run(500)
  client_run(500)
  local fs, cs, pair = {}, {}, {}
  for r = 1, ROUNDS do
    fs[r] = floor_run(N)
    cs[r] = client_run(N)
    pair[r] = cs[r] / fs[r]
  end
  local fbest, cbest = math.min(table.unpack(fs)), math.min(table.unpack(cs))
  print(("knox client bench: %d GETs of %d bytes with a static token, best and median of %d rounds"):format(
    N, #doc, ROUNDS))
  print(("  floor (C libcurl loop + lua-cjson decode) %.1f us/req, client:request %.1f us/req,"
    .. " ratio best %.3f, median of pairs %.3f"):format(fbest / N * 1e6, cbest / N * 1e6, cbest / fbest,
    median(pair)))
end)
if ngx then ngx.stop() end
servers.rmdir(dir)
if not ok then error(err, 0) end
