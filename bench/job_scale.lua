-- A fleet job at scale: 1,000,000 devices from a CSV through a job against
-- the simulator (no rate limit), and 100,000 for comparison: peak RSS of
-- the job's process (flat in N), ledger bytes per device, devices/s.
--
-- The op is kme.delete_devices (chunks of 1,000): the simulator keeps a
-- deletion in a few bytes, where an assign would make it keep a million
-- changed device records. Each size runs in its own child process so its
-- peak RSS (VmHWM) is its own.
--   LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/job_scale.lua
-- JOB_SCALE_N=200000 changes the large size.
package.path = "spec/?.lua;" .. package.path
local knox = require "knox"
local core = require "knox.core"

local function vmhwm()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local kb
  for line in f:lines() do kb = kb or tonumber(line:match "^VmHWM:%s*(%d+)") end
  f:close()
  return kb
end

local function size_of(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek "end"
  f:close()
  return n
end

if arg[1] == "child" then
  local url, id, secret, scope, csv, ledger = arg[2], arg[3], arg[4], arg[5], arg[6], arg[7]
  local c <close> = knox.client { base_url = url, auth = knox.auth.oauth2 { client_id = id, client_secret = secret,
    scope = scope } }
  local t0 = core.now()
  local loaded
  local job <close> = c:job { op = "kme.delete_devices", args = {}, devices = csv, ledger = ledger, concurrency = 8,
    on_progress = function() loaded = loaded or core.now() end }
  local st = job:run()
  local t1 = core.now()
  -- the WAL folded into the database, so the file is the ledger's whole size
  local cur = job.ledger.conn:execute "PRAGMA wal_checkpoint(TRUNCATE)"
  if type(cur) == "userdata" then cur:close() end
  io.write(("%d %d %d %.3f %.3f %d %d\n"):format(st.total, st.ok, st.failed, t1 - t0, t1 - (loaded or t0),
    vmhwm() or 0, size_of(ledger)))
  os.exit(0)
end

local sim = require "support.sim"
local N = tonumber(os.getenv "JOB_SCALE_N") or 1000000
local SMALL = N // 10
local s = sim.start { devices = N + SMALL, seed = "scale", max_lifetime = 3600, start_timeout = 60 }
local c <close> = knox.client { base_url = s.url, auth = knox.auth.oauth2 { client_id = s.oauth.client_id,
  client_secret = s.oauth.client_secret, scope = s.oauth.scope } }

-- two CSVs: devices N+1..N+SMALL (the small run) and 1..N (the large one)
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local small_csv, large_csv = dir .. "/small.csv", dir .. "/large.csv"
local fs, fl = assert(io.open(small_csv, "w")), assert(io.open(large_csv, "w"))
fs:write "imei\n"
fl:write "imei\n"
local t0 = core.now()
local k = 0
for page = 0, (N + SMALL - 1) // 1000 do
  for _, d in ipairs(c.kme:list_devices { pageNum = page, pageSize = 1000 }.deviceList) do
    k = k + 1
    if k <= N then fl:write(d.mei, "\n") else fs:write(d.mei, "\n") end
  end
end
fs:close()
fl:close()
print(("set-up: %d devices listed into two CSVs in %.1f s"):format(k, core.now() - t0))

local function run(csv, n)
  local ledger = dir .. "/job" .. n .. ".db"
  local cmd = ("%s %s bench/job_scale.lua child %s %s %s %s %s %s"):format(sim.ENV, sim.LUA, sim.quote(s.url),
    sim.quote(s.oauth.client_id), sim.quote(s.oauth.client_secret), sim.quote(s.oauth.scope), sim.quote(csv),
    sim.quote(ledger))
  local p = assert(io.popen(cmd))
  local out = p:read "a"
  p:close()
  local total, ok, failed, elapsed, sending, rss, bytes = out:match "(%d+) (%d+) (%d+) ([%d.]+) ([%d.]+) (%d+) (%d+)"
  if not total then error("the job child failed: " .. out) end
  total, ok, failed, elapsed, rss, bytes = tonumber(total), tonumber(ok), tonumber(failed), tonumber(elapsed),
    tonumber(rss), tonumber(bytes)
  print(("N = %d: %d ok, %d failed; %.1f s in all (%.1f s after loading the list): %.0f devices/s; "
    .. "peak RSS %.1f MB; ledger %.1f MB = %.1f bytes/device"):format(total, ok, failed, elapsed, tonumber(sending),
    total / elapsed, rss / 1024, bytes / 1e6, bytes / total))
  for _, x in ipairs { "", "-wal", "-shm" } do os.remove(ledger .. x) end
end

-- the large one first: the simulator keeps deletions in a sorted array,
-- cheap to append to in index order (devices 1..N, then N+1..)
run(large_csv, N)
run(small_csv, SMALL)
s:stop()
os.remove(small_csv)
os.remove(large_csv)
os.remove(dir)
