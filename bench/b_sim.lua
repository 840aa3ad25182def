--- B8, B9, B11 against the Knox simulator (bin/knox-sim) on loopback:
--   B8  200 calls to an endpoint that answers after 50 ms (--latency-ms
--       50): client:batch at concurrency 1, 2, 4, 8, 10, 16, 32 against
--       the same calls made one after another with client:request
--   B9  each_device over 10,000 / 100,000 / 1,000,000 devices, each size
--       in its own child process: peak RSS (VmHWM) and devices/s
--   B11 cold start: a fresh `lua5.4` that does require "knox" and one
--       authenticated request (keys.json: the client-identifier JWT, the
--       token exchange, the signed access token), against `lua5.4 -e ''`
local knox = require "knox"

local function oauth_client(s, extra)
  local o = { base_url = s.url, auth = knox.auth.oauth2 { client_id = s.oauth.client_id,
    client_secret = s.oauth.client_secret, scope = s.oauth.scope } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return knox.client(o)
end

local function b8(lib)
  local calls = lib.size(200, 40)
  local s = lib.sim { devices = 100, seed = "bench-b8", args = { "--latency-ms", "50" }, max_lifetime = 1800 }
  local c <close> = oauth_client(s, { concurrency = 32 })
  local reqs = {}
  for i = 1, calls do
    reqs[i] = { "GET", "/kcs/v1/kme/devices/list", { query = { pageNum = i % 10, pageSize = 10 } } }
  end
  c:request("GET", "/kcs/v1/kme/devices/list") -- the token, outside the timings
  local function sequential()
    local t0 = lib.now()
    for i = 1, calls do c:request(table.unpack(reqs[i])) end
    return lib.now() - t0
  end
  local levels = { 1, 2, 4, 8, 10, 16, 32 }
  local times, seq = {}, {}
  local rounds = lib.size(3, 1)
  for r = 1, rounds do
    seq[r] = sequential()
    for _, n in ipairs(levels) do
      local t0 = lib.now()
      local res = c:batch(reqs, { concurrency = n })
      times[n] = times[n] or {}
      times[n][r] = lib.now() - t0
      for i = 1, calls do
        if knox.is_error(res[i]) then error("B8: batch item " .. i .. " failed: " .. tostring(res[i])) end
      end
    end
  end
  local sq = lib.stats(seq)
  local dat = { "# concurrency  speedup_median  speedup_min  speedup_max" }
  for _, n in ipairs(levels) do
    local sp = {}
    for r = 1, rounds do sp[r] = seq[r] / times[n][r] end
    local st = lib.stats(sp)
    dat[#dat + 1] = ("%d %.3f %.3f %.3f"):format(n, st.median, st.min, st.max)
    local target, verdict = "report", "reported"
    if n == 10 then target, verdict = "≥ 8x at 10", lib.verdict(st.median, nil, 8) end
    lib.row { id = "B8", what = ("%d calls × 50 ms, client:batch concurrency %d"):format(calls, n),
      value = ("%.2f s"):format(lib.median(times[n])), baseline = ("sequential %.2f s"):format(sq.median),
      ratio = ("%.2fx"):format(st.median), spread = ("speed-up %s"):format(lib.range(st)), target = target,
      verdict = verdict }
  end
  local file = lib.write(lib.WORK .. "/b8.dat", table.concat(dat, "\n") .. "\n")
  lib.plot("b8_batch_speedup", "B8: client:batch speed-up over sequential calls (50 ms latency)", ([[
set title 'B8: %d calls to an endpoint with 50 ms latency: client:batch vs sequential'
set xlabel 'concurrency'
set ylabel 'speed-up over sequential client:request'
set logscale x 2
set xrange [0.8:40]
set yrange [0:*]
set xtics (1, 2, 4, 8, 10, 16, 32)
set grid
set key top left
plot x with lines dt 2 lc rgb 'gray' title 'ideal (= concurrency)', \
  '%s' using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'measured (median, min-max of rounds)', \
  8 with lines lc rgb '#cc3333' dt 3 title 'target at 10: 8x'
]]):format(calls, file))
  s:stop()
end

-- B9: a child per size, so that each peak RSS is its own
local function b9(lib)
  local sizes = lib.QUICK and { 1000, 10000, 30000 } or { 10000, 100000, 1000000 }
  local dat = { "# devices  peak_rss_MiB  devices_per_s" }
  local peaks = {}
  for _, n in ipairs(sizes) do
    local s = lib.sim { devices = n, seed = "bench-b9", max_lifetime = 1800 }
    local out = lib.run(("%s %s bench/b_sim.lua b9-child %s %s %s %s"):format(lib.LUAPATH, lib.LUA, s.url,
      s.oauth.client_id, s.oauth.client_secret, lib.quote(s.oauth.scope)))
    s:stop()
    local count, secs, kb = out:match("count=(%d+) seconds=([%d.]+) vmhwm=(%d+)")
    assert(tonumber(count) == n, "B9: each_device gave " .. tostring(count) .. " of " .. n)
    local mib, rate = tonumber(kb) / 1024, n / tonumber(secs)
    peaks[#peaks + 1] = mib
    dat[#dat + 1] = ("%d %.2f %.0f"):format(n, mib, rate)
    lib.row { id = "B9", what = ("each_device over %d devices (pageSize 1000)"):format(n),
      value = ("peak RSS %.1f MiB"):format(mib), baseline = "—", ratio = ("%.0f devices/s"):format(rate),
      spread = "one run per size", target = "flat in N, < 64 MB", verdict = mib < 64 and "met" or "not met" }
  end
  local growth = peaks[#peaks] - peaks[1]
  lib.note(("B9: peak RSS grows by %.1f MiB from %d to %d devices (%s)"):format(growth, sizes[1], sizes[#sizes],
    growth < 4 and "flat: pages are dropped as the iterator moves on" or "NOT flat"))
  local file = lib.write(lib.WORK .. "/b9.dat", table.concat(dat, "\n") .. "\n")
  lib.plot("b9_each_device_rss", "B9: peak RSS of each_device against the number of devices", ([[
set title 'B9: peak RSS of a process iterating every device with each_device'
set xlabel 'devices iterated'
set ylabel 'peak RSS (MiB)'
set logscale x 10
set xrange [%d:%d]
set yrange [0:70]
set ytics 10
set grid
set key bottom right
set format x '%%.0s%%c'
plot '%s' using 1:2 with linespoints lw 2 pt 7 title 'peak RSS (VmHWM)', \
  64e6 / 1048576 with lines lc rgb '#cc3333' dt 3 title 'limit: 64 MB (61 MiB)'
]]):format(sizes[1] // 2, sizes[#sizes] * 2, file))
end

local function b9_child(lib)
  local url, id, secret, scope = arg[2], arg[3], arg[4], arg[5]
  local c <close> = knox.client { base_url = url, auth = knox.auth.oauth2 { client_id = id, client_secret = secret,
    scope = scope } }
  local n, t0 = 0, lib.now()
  for _ in c.kme:each_device { pageSize = 1000 } do n = n + 1 end
  print(("count=%d seconds=%.3f vmhwm=%d"):format(n, lib.now() - t0, lib.vmhwm()))
end

-- B11: cold start in a fresh process, timed from outside and inside
local function b11(lib)
  local s = lib.sim { devices = 10, seed = "bench-b11", max_lifetime = 1800 }
  local script = lib.write(lib.WORK .. "/cold.lua", [[
local t0 = os.clock()
local knox = require "knox"
local t1 = os.clock()
local c = knox.client { base_url = arg[1], auth = knox.auth.keys { file = arg[2], client_id = arg[3] } }
local page = c.kme:list_devices { pageSize = 10 }
assert(#page.deviceList == 10)
io.write(("require=%.6f request=%.6f\n"):format(t1 - t0, os.clock() - t1))
]])
  local cmd = ("%s %s %s %s %s %s"):format(lib.LUAPATH, lib.LUA, script, s.url, lib.quote(s.keys_file),
    lib.quote(s.client_id))
  local n = lib.size(15, 3)
  local req, first, wall, bare = {}, {}, {}, {}
  for i = 1, n do
    local t0 = lib.now()
    lib.run(lib.LUA .. " -e ''")
    bare[i] = lib.now() - t0
    t0 = lib.now()
    local out = lib.run(cmd)
    wall[i] = lib.now() - t0
    local a, b = out:match("require=([%d.]+) request=([%d.]+)")
    req[i], first[i] = tonumber(a), tonumber(b)
  end
  local w, b, r, f = lib.stats(wall), lib.stats(bare), lib.stats(req), lib.stats(first)
  lib.row { id = "B11", what = "cold start: lua5.4 + require \"knox\" + first authenticated request",
    value = ("%.1f ms wall"):format(w.median * 1e3), baseline = ("lua5.4 -e '' %.1f ms"):format(b.median * 1e3),
    ratio = ("require %.1f ms, first request %.1f ms (CPU)"):format(r.median * 1e3, f.median * 1e3),
    spread = ("wall %s ms"):format(("%.1f–%.1f"):format(w.min * 1e3, w.max * 1e3)), target = "report",
    verdict = "reported" }
  lib.note("B11: the first request signs a client-identifier JWT, exchanges it for an access token at the "
    .. "simulator (one round trip), signs the access token and sends the call: two RSA-2048 signatures and two "
    .. "HTTP requests. CPU times are the child's own (os.clock).")
  s:stop()
end

-- run as a script: the B9 child (lua5.4 bench/b_sim.lua b9-child URL ID SECRET SCOPE)
if arg and arg[1] == "b9-child" and (arg[0] or ""):match("b_sim%.lua$") then
  b9_child(dofile("bench/lib.lua"))
  return
end

return function(lib)
  b8(lib)
  b9(lib)
  b11(lib)
end
