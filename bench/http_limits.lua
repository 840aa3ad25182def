--- Memory and CPU figures of the transport's limits (issue 15: D3, D4, D5),
-- against loopback servers. Not a spec: it prints numbers, it asserts
-- nothing. Each case runs in a child process of its own, so that one
-- case's peak RSS (VmHWM) cannot hide another's.
--
--   lua5.4 bench/http_limits.lua            all cases (make bench runs it)
--   LUA_CPATH='/old/build/?.so;;' lua5.4 bench/http_limits.lua   another core.so
--
-- D3  peak RSS of a batch at concurrency 1, 4, 16 with the default session
--     options: 16 chunked responses of 100 MB (over max_response_bytes, so
--     each is refused, but only after 64 MiB of it was buffered), and 32 of
--     2 MB (which succeed; their results are included). The baseline is
--     the child's RSS just before the batch.
-- D4  CPU of one response with 50,000 header lines of one name (250 KB);
--     and of 999 lines of one name against the baseline of 999 distinct
--     names (a ratio near 1: joining is linear).
-- D5  RSS left after one batch of 256 responses of 200 KB at concurrency
--     256 (results dropped and collected), against the RSS before it.
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
if not os.getenv "LUA_CPATH" then package.cpath = "build/?.so;" .. package.cpath end

local function status_kb(field)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read "a"
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+) kB"))
end

local function mb(kb) return ("%.0f MB"):format(kb / 1024) end

---------------------------------------------------------------------------
-- Children: one case each; they print one line.
local child = {}

function child.d3(url, conc, n)
  local core = require "knox.core"
  local S = core.session { timeout = 120 }
  local reqs = {}
  for i = 1, tonumber(n) do reqs[i] = { url = url } end
  collectgarbage "collect"
  local base = status_kb "VmRSS"
  local res = S:batch(reqs, { concurrency = tonumber(conc) })
  local peak = status_kb "VmHWM"
  local okn, why = 0, nil
  for i = 1, #res do
    if res[i].status == 200 then okn = okn + 1 else why = why or res[i].cause and res[i].cause.name end
  end
  print(("+%s peak (%d/%d ok%s)"):format(mb(peak - base), okn, #res, why and ", others " .. why or ""))
end

function child.d4(url_many, url_same, url_distinct)
  local core = require "knox.core"
  local S = core.session { timeout = 60 }
  S:request { url = url_distinct } -- warm: connection, allocator
  local function cpu(url, rounds)
    local t0 = os.clock()
    local what
    for _ = 1, rounds do
      local ok, st = pcall(S.request, S, { url = url })
      what = ok and ("HTTP " .. st) or (st.cause and st.cause.name or tostring(st))
    end
    return (os.clock() - t0) / rounds, what
  end
  local base = cpu(url_distinct, 50)
  local many, what = cpu(url_many, 3)
  local same = cpu(url_same, 50)
  print(("50,000 lines: %.4f s CPU (%s)\n  999 lines of one name %.5f s, "
    .. "baseline 999 distinct names %.5f s: ratio %.2f"):format(many, what, same, base, same / base))
end

function child.d5(url)
  local core = require "knox.core"
  local S = core.session { timeout = 60 }
  S:request { url = url }
  collectgarbage "collect"
  local base = status_kb "VmRSS"
  local reqs = {}
  for i = 1, 256 do reqs[i] = { url = url } end
  local res = S:batch(reqs, { concurrency = 256 })
  local okn = 0
  for i = 1, #res do okn = okn + (res[i].status == 200 and 1 or 0) end
  res = nil -- luacheck: ignore 311
  collectgarbage "collect"
  collectgarbage "collect"
  print(("+%s RSS after the batch (%d/256 ok); peak +%s"):format(
    mb(status_kb "VmRSS" - base), okn, mb(status_kb "VmHWM" - base)))
  S:close()
end

if arg[1] == "child" then
  child[arg[2]](table.unpack(arg, 3))
  return
end

---------------------------------------------------------------------------
-- Parent: servers, then one child per case.
local servers = require "support.http_servers"

local function run_child(...)
  local cmd = { "lua5.4", "bench/http_limits.lua", "child", ... }
  if not os.getenv "LUA_CPATH" then table.insert(cmd, 1, "LUA_CPATH='build/?.so;;'") end
  local _, out = servers.sh(table.concat(cmd, " ") .. " 2>&1")
  return (out:gsub("%s+$", ""))
end

local dir = servers.tmpdir()
local ok, err = pcall(function()
  os.execute(("mkdir -p '%s/www'"):format(dir))
  servers.write_file(dir .. "/www/200k.bin", string.rep("k", 200 * 1024))
  servers.write_file(dir .. "/www/2m.bin", string.rep("m", 2 * 1000 * 1000))
  local ngx = servers.nginx { dir = dir, lifetime = 600 }
  local httpd = servers.httpd(600)
  local base = "http://127.0.0.1:" .. ngx.http_port

  print("D3 peak RSS of one batch, default session options (baseline: RSS before the batch)")
  local chunked = "'" .. httpd.url("/big?n=100000000&chunked=1") .. "'"
  for _, case in ipairs { { chunked, 16, "16 x 100 MB chunked" }, { base .. "/2m.bin", 32, "32 x 2 MB" } } do
    for _, conc in ipairs { 1, 4, 16 } do
      print(("  %s, concurrency %2d: %s"):format(case[3], conc, run_child("d3", case[1], conc, case[2])))
    end
  end

  print("D4 one response of 50,000 same-name header lines (250 KB)")
  print("  " .. run_child("d4", "'" .. httpd.url("/many-headers?n=50000") .. "'",
    "'" .. httpd.url("/many-headers?n=999") .. "'", "'" .. httpd.url("/many-headers?n=999&distinct=1") .. "'"))

  print("D5 one batch of 256 x 200 KB at concurrency 256")
  print("  " .. run_child("d5", base .. "/200k.bin"))

  httpd.stop()
  ngx.stop()
end)
servers.rmdir(dir)
if not ok then error(err, 0) end
