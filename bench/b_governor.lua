-- The rate governor against the simulator's rate limiter, in real time:
--
--   A. a 2,000-call job (20,000 devices, chunks of 10) against --rate 10:
--      achieved rate vs the allowed one, share of calls answered 429
--   B. a job against --rate 10 whose limit halves to 5 after 30 s
--      (POST /__sim/limits): how long until the client stops overshooting
--
-- B10 of bench/run.lua (BENCH_ONLY=B10 make bench runs it alone). Writes
-- the per-second series (admitted/s, 429/s, the governor's rate) to
-- governor.dat beside the plot, governor.png (bench/plots/, or build/bench/
-- for BENCH_QUICK=1, which runs 100 calls and a 12 s B).
local sim = require "support.sim"
local knox = require "knox"
local core = require "knox.core"

local QUICK = os.getenv "BENCH_QUICK" == "1"
local CALLS = QUICK and 100 or 2000
local HALVE_AT, HALVE_END = QUICK and 6 or 30, QUICK and 12 or 60

local function client_for(s)
  return knox.client { base_url = s.url, auth = knox.auth.oauth2 { client_id = s.oauth.client_id,
    client_secret = s.oauth.client_secret, scope = s.oauth.scope } }
end

local function tmp()
  local p = os.tmpname()
  os.remove(p)
  return p
end

-- Records every answer of the client: { t, status, rate (the governor's) }.
local function recorder(c, t0)
  local rec = {}
  c:on("response", function(d)
    local rate
    for _, st in pairs(c.governor:states()) do rate = st.enabled and st.rate or rate end
    rec[#rec + 1] = { t = core.now() - t0, status = d.status, rate = rate }
  end)
  return rec
end

local function devices(c, n)
  local ids = {}
  for page = 0, (n - 1) // 1000 do
    for _, d in ipairs(c.kme:list_devices { pageNum = page, pageSize = 1000 }.deviceList) do ids[#ids + 1] = d.mei end
  end
  return ids
end

-- Per-second bins of a record: { [sec] = { ok =, limited =, rate = } }.
local function bins(rec)
  local out, last = {}, 0
  for _, r in ipairs(rec) do
    local s = math.floor(r.t)
    local b = out[s] or { ok = 0, limited = 0 }
    out[s] = b
    if r.status == 429 then b.limited = b.limited + 1 else b.ok = b.ok + 1 end
    b.rate = r.rate or b.rate
    last = math.max(last, s)
  end
  for s = 0, last do out[s] = out[s] or { ok = 0, limited = 0 } end
  return out, last
end

local function run_a()
  local s = sim.start { devices = CALLS * 10, seed = "gov", args = { "--rate", "10" }, max_lifetime = 900 }
  local c <close> = client_for(s)
  -- the set-up's own calls go before the limiter is measured
  s:request("POST", "/__sim/limits", { body = { rate = 0 } })
  local ids = devices(c, CALLS * 10)
  local pid = c.kme:list_profiles {}.profileList[1].profileId
  s:request("POST", "/__sim/limits", { body = { rate = 10 } })
  s:request("DELETE", "/__sim/stats")
  local c2 <close> = client_for(s)
  local t0 = core.now()
  local rec = recorder(c2, t0)
  local ledger = tmp()
  local job <close> = c2:job { op = "kme.assign_profile", args = { profileId = pid }, devices = ids, ledger = ledger,
    chunk_size = 10, concurrency = 8 }
  local st = job:run()
  local elapsed = core.now() - t0
  local stats = s:request("GET", "/__sim/stats").json
  s:stop()
  for _, x in ipairs { "", "-wal", "-shm" } do os.remove(ledger .. x) end
  local calls, limited = 0, 0
  local first, last
  for _, r in ipairs(rec) do
    if r.status == 429 then limited = limited + 1 else calls = calls + 1 end
    first = first or r.t
    last = r.t
  end
  return { rec = rec, ok = st.ok, elapsed = elapsed, calls = calls, limited = limited,
    rate = calls / (last - first), sim_requests = stats.requests, sim_limited = stats.rate_limited }
end

local function run_b()
  local n = 20000
  local s = sim.start { devices = n, seed = "gov2", args = { "--rate", "10" }, max_lifetime = 900 }
  local c <close> = client_for(s)
  s:request("POST", "/__sim/limits", { body = { rate = 0 } })
  local ids = devices(c, n)
  local pid = c.kme:list_profiles {}.profileList[1].profileId
  s:request("POST", "/__sim/limits", { body = { rate = 10 } })
  local c2 <close> = client_for(s)
  local t0 = core.now()
  local rec = recorder(c2, t0)
  local ledger = tmp()
  local halved = false
  local job <close> = c2:job { op = "kme.assign_profile", args = { profileId = pid }, devices = ids, ledger = ledger,
    chunk_size = 5, concurrency = 8, on_progress = function()
      local t = core.now() - t0
      if not halved and t >= HALVE_AT then
        s:request("POST", "/__sim/limits", { body = { rate = 5 } })
        halved = true
      end
      if t >= HALVE_END then error("bench: enough", 0) end
    end }
  pcall(job.run, job)
  s:stop()
  for _, x in ipairs { "", "-wal", "-shm" } do os.remove(ledger .. x) end
  -- adaptation: from the halving until the governor's rate is first at
  -- most 1.2 x the new limit (6/s); and the 429s in the 10 s after it
  local b, lastsec = bins(rec)
  local adapted, early429 = nil, 0
  for _, r in ipairs(rec) do
    if r.t >= HALVE_AT and not adapted and r.rate and r.rate <= 6 then adapted = r.t - HALVE_AT end
    if r.t >= HALVE_AT and r.t < HALVE_AT + 10 and r.status == 429 then early429 = early429 + 1 end
  end
  local before, after, lim_after = 0, 0, 0
  for t = 5, HALVE_AT - 1 do before = before + b[t].ok end
  for t = HALVE_AT + 10, lastsec - 1 do after = after + b[t].ok; lim_after = lim_after + b[t].limited end
  return { rec = rec, adapted = adapted, early429 = early429, before = before / (HALVE_AT - 5),
    after = after / math.max(1, lastsec - HALVE_AT - 10), limited_after = lim_after }
end

return function(lib)
  local a = run_a()
  local share = 100 * a.limited / (a.calls + a.limited)
  lib.row { id = "B10", what = ("%d-call job (chunks of 10, concurrency 8) against --rate 10"):format(a.calls),
    value = ("%.2f calls/s admitted"):format(a.rate), baseline = "allowed 10/s",
    ratio = ("%.1f%% of the limit, %.2f%% answered 429"):format(a.rate * 10, share),
    spread = ("one run, %.0f s; %d answered 429; simulator: %d requests, %d limited"):format(a.elapsed, a.limited,
      a.sim_requests, a.sim_limited), target = "report",
    verdict = "reported" }
  local b = run_b()
  lib.row { id = "B10", what = ("limit halves 10 -> 5/s at %d s (adaptation)"):format(HALVE_AT),
    value = ("%.2f/s before, %.2f/s after"):format(b.before, b.after),
    baseline = "allowed 10, then 5/s",
    ratio = ("governor at <= 6/s %.1f s after"):format(b.adapted or -1),
    spread = ("429s: %d in the 10 s after, %d later"):format(b.early429, b.limited_after), target = "report",
    verdict = "reported" }

  -- the series and the plot
  local dat = lib.PLOTS .. "/governor.dat"
  local f = assert(io.open(dat, "w"))
  f:write("# second  A_admitted  A_429  A_governor_rate  B_admitted  B_429  B_governor_rate\n")
  local ba, la = bins(a.rec)
  local bb, lb = bins(b.rec)
  for t = 0, math.max(la, lb) do
    local x, y = ba[t] or { ok = 0, limited = 0 }, bb[t] or { ok = 0, limited = 0 }
    f:write(("%d %d %d %s %d %d %s\n"):format(t, x.ok, x.limited, x.rate and ("%.2f"):format(x.rate) or "NaN",
      y.ok, y.limited, y.rate and ("%.2f"):format(y.rate) or "NaN"))
  end
  f:close()
  lib.plot("governor", "B10: the rate governor against the simulator's --rate 10 (per second)", ([[
set terminal pngcairo size 1100,760 noenhanced font 'DejaVu Sans,11'
set output '%s/governor.png'
set multiplot layout 2,1 title 'B10: knox rate governor against the simulator (per second)'
set ylabel 'requests/s'
set grid
set key outside right
set yrange [0:16]
set title 'A: --rate 10, %d-call job'
set xlabel 'seconds'
plot '%s' using 1:2 with steps lw 2 title 'admitted', '' using 1:3 with impulses lw 2 title '429', \
  '' using 1:4 with lines dt 2 title 'governor rate', 10 with lines lc rgb 'gray' title 'limit'
set title 'B: limit halves 10 -> 5 at %d s'
set xrange [0:%d]
plot '%s' using 1:5 with steps lw 2 title 'admitted', '' using 1:6 with impulses lw 2 title '429', \
  '' using 1:7 with lines dt 2 title 'governor rate', (x < %d ? 10 : 5) with lines lc rgb 'gray' title 'limit'
unset multiplot
]]):format(lib.PLOTS, CALLS, dat, HALVE_AT, HALVE_END, dat, HALVE_AT))
end
