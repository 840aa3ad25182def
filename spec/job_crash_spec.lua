-- Fleet jobs survive crashes: a 20,000-device KME assign run in a child
-- process that is killed (kill -9) at random moments and resumed; the same
-- with the simulator killed and restarted (--state FILE); and with resets
-- after sending. In every case each device ends in a terminal state and the
-- simulator's request log shows no device in more than one acknowledged
-- (2xx) write. Kill points are random, rounds bounded (a few seconds each).
local sim = require "support.sim"
local socket = require "socket"
local cjson = require "cjson"
local knox = require "knox"

local ROOT = sim.ROOT
local ASSIGN = "/kcs/v1/kme/devices/assignProfile"

local helpers = require "helpers"
local tmp, rm_ledger = helpers.tmpname, helpers.rm_ledger

local function oauth_client(url, oauth, extra)
  local o = { base_url = url, auth = knox.auth.oauth2 { client_id = oauth.client_id,
    client_secret = oauth.client_secret, scope = oauth.scope } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return knox.client(o)
end

-- Every IMEI of the account's own tenant, written to a CSV (header imei).
local function fleet_csv(c, n, path)
  local f = assert(io.open(path, "w"))
  f:write("imei,note\n")
  local count = 0
  for page = 0, (n - 1) // 1000 do
    for _, d in ipairs(c.kme:list_devices { pageNum = page, pageSize = 1000 }.deviceList) do
      f:write(d.mei, ",x\n")
      count = count + 1
    end
  end
  f:close()
  return count
end

-- The job child: runs (resumes) the job until it ends or is killed.
local CHILD = [[
local knox = require "knox"
local c = knox.client { base_url = os.getenv "JOB_URL", max_attempts = tonumber(os.getenv "JOB_ATTEMPTS") or 3,
  auth = knox.auth.oauth2 { client_id = os.getenv "JOB_ID", client_secret = os.getenv "JOB_SECRET",
    scope = os.getenv "JOB_SCOPE" } }
local job = c:job { op = "kme.assign_profile", args = { profileId = arg[4] }, devices = arg[3], ledger = arg[2],
  chunk_size = 100, concurrency = 4 }
local ok, err = pcall(job.run, job)
if not ok then io.stderr:write(tostring(err), "\n") os.exit(1) end
os.exit(0)
]]

local child_file

-- Starts the child in the background; returns its pid.
local function start_child(env, ledger, csv, profile)
  local vars = {}
  for k, v in pairs(env) do vars[#vars + 1] = k .. "=" .. sim.quote(v) end
  -- knox from the checkout (lua/, build/) or the installed tree (helpers.TREE)
  local cmd = ("%s env %s %s%s %s %s %s %s %s >/dev/null 2>&1 & echo $!"):format(sim.ENV, table.concat(vars, " "),
    helpers.lua_env(ROOT, ROOT .. "/build"), sim.LUA, sim.quote(child_file), sim.quote(ROOT), sim.quote(ledger),
    sim.quote(csv), sim.quote(profile))
  local p = assert(io.popen(cmd))
  local pid = tonumber(p:read "l")
  p:close()
  return pid
end

-- Whether pid runs (a zombie waiting to be reaped does not).
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local stat = f:read "l" or ""
  f:close()
  return not stat:match "^%d+ %b() Z"
end

local function kill9(pid)
  os.execute("kill -9 " .. pid .. " 2>/dev/null")
  for _ = 1, 500 do
    if not alive(pid) then return end
    socket.sleep(0.01)
  end
end

-- Waits for pid to end, at most `limit` seconds; true when it ended.
local function wait_exit(pid, limit)
  local t0 = socket.gettime()
  while socket.gettime() - t0 < limit do
    if not alive(pid) then return true end
    socket.sleep(0.02)
  end
  return false
end

-- Acknowledged assign writes per device, from the simulator's log.
local function acked_writes(s)
  local counts, writes = {}, 0
  for _, e in ipairs(s:requests { path = ASSIGN }) do
    if e.method == "PUT" and type(e.status) == "number" and e.status >= 200 and e.status < 300 then
      writes = writes + 1
      for _, id in ipairs(cjson.decode(e.body).deviceIds) do counts[id] = (counts[id] or 0) + 1 end
    end
  end
  return counts, writes
end

local function assert_once(counts, n)
  local seen, twice = 0, {}
  for id, k in pairs(counts) do
    seen = seen + 1
    if k > 1 then twice[#twice + 1] = id end
  end
  assert.are.same({}, twice, "devices in more than one acknowledged write")
  assert.are.equal(n, seen, "every device acknowledged once")
end

local function assert_all_assigned(c, n, pid)
  local with = 0
  for page = 0, (n - 1) // 1000 do
    for _, d in ipairs(c.kme:list_devices { pageNum = page, pageSize = 1000 }.deviceList) do
      if d.profileId == pid then with = with + 1 end
    end
  end
  assert.are.equal(n, with)
end

describe("fleet jobs survive crashes", function()
  local N = 20000

  lazy_setup(function()
    child_file = os.tmpname()
    sim.write_file(child_file, CHILD)
    math.randomseed(os.time())
  end)

  lazy_teardown(function()
    os.remove(child_file)
  end)

  it("kill -9 of the job at random points, resumed each time: every device done once", function()
    local s = sim.start { devices = N, seed = "jobcrash", latency_ms = 15 }
    local ledger, csv = tmp(), tmp()
    local ok, err = pcall(function()
      local c <close> = oauth_client(s.url, s.oauth)
      assert.are.equal(N, fleet_csv(c, N, csv))
      local pid = c.kme:list_profiles {}.profileList[2].profileId
      local env = { JOB_URL = s.url, JOB_ID = s.oauth.client_id, JOB_SECRET = s.oauth.client_secret,
        JOB_SCOPE = s.oauth.scope }
      local kills, finished = 0, false
      for _ = 1, 6 do
        local child = start_child(env, ledger, csv, pid)
        socket.sleep(0.2 + math.random() * 0.6)
        if alive(child) then
          kill9(child)
          kills = kills + 1
        else
          finished = true
          break
        end
      end
      assert.is_true(kills >= 2, "the job was killed mid-run")
      -- the last resume, to the end
      local child = start_child(env, ledger, csv, pid)
      assert.is_true(wait_exit(child, 60), "the final resume ends")
      local job <close> = require("knox.job").open(ledger)
      local st = job:status()
      assert.are.equal(N, st.total)
      assert.are.equal(N, st.ok)
      assert.are.equal(0, st.pending + st.failed + st.unknown)
      assert.is_true(st.done)
      local counts = acked_writes(s)
      assert_once(counts, N)
      assert_all_assigned(c, N, pid)
      local _ = finished
    end)
    s:stop()
    rm_ledger(ledger)
    os.remove(csv)
    assert(ok, err)
  end)

  it("the simulator killed and restarted mid-job (--state): nothing lost, nothing twice", function()
    local port
    local state, ledger, csv = tmp(), tmp(), tmp()
    local oauth = { client_id = "spec-job-" .. sim.random_hex(4), client_secret = sim.random_hex(16), scope = "" }
    local n = 6000
    local function start_once()
      -- started by hand (not support.sim) to know its pid for kill -9
      local out, pidf = tmp(), tmp()
      local cmd = ("%s sh -c 'echo $$ > %s; exec %s --port %d --devices %d --seed jobsim "
        .. "--latency-ms 40 --state %s --max-lifetime 120 --oauth-client %s:%s: >%s 2>&1' </dev/null &")
        :format(sim.ENV, pidf, (helpers.knox_sim(ROOT):gsub("'", "'\\''")), port, n, state, oauth.client_id,
          oauth.client_secret, out)
      os.execute(cmd)
      local t0 = socket.gettime()
      local pid
      while socket.gettime() - t0 < 15 do
        local text = sim.read_file(out) or ""
        if text:find "listening on" then
          pid = tonumber(sim.read_file(pidf))
          break
        end
        if text:find "knox%-sim: " then break end
        socket.sleep(0.02)
      end
      local text = sim.read_file(out) or ""
      os.remove(out)
      os.remove(pidf)
      if not pid then return nil, text end
      return { pid = pid, url = "http://127.0.0.1:" .. port }
    end
    local function start()
      -- a new port each time: the killed simulator's helper shell (it
      -- removes its temporary files) may hold the old listening socket a while
      local probe = assert(socket.bind("127.0.0.1", 0))
      local _, p = probe:getsockname()
      probe:close()
      port = tonumber(p)
      local r, why = start_once()
      return r or error("the simulator did not start: " .. tostring(why))
    end
    local s = start()
    local profile
    local ok, err = pcall(function()
      local scoped = { client_id = oauth.client_id, client_secret = oauth.client_secret,
        scope = "kme" }
      do
        local c <close> = oauth_client(s.url, scoped)
        assert.are.equal(n, fleet_csv(c, n, csv))
        profile = c.kme:list_profiles {}.profileList[1].profileId
      end
      local env = { JOB_URL = s.url, JOB_ID = scoped.client_id, JOB_SECRET = scoped.client_secret,
        JOB_SCOPE = scoped.scope, JOB_ATTEMPTS = "1" }
      local restarts, interrupted = 0, 0
      for _ = 1, 4 do
        local t0 = socket.gettime()
        env.JOB_URL = s.url
        local child = start_child(env, ledger, csv, profile)
        socket.sleep(0.15 + math.random() * 0.35)
        kill9(s.pid)
        restarts = restarts + 1
        -- the job stops (connection refused, no progress) or is ended
        local t1 = socket.gettime()
        if not wait_exit(child, 20) then kill9(child) end
        local t2 = socket.gettime()
        do
          local j <close> = require("knox.job").open(ledger)
          local st = j:status()
          if not st.done then interrupted = interrupted + 1 end
        end
        s = start()
        if os.getenv "JOB_SPEC_DEBUG" then
          io.stderr:write(("round: run %.2f, child exit %.2f, restart %.2f\n"):format(t1 - t0, t2 - t1,
            socket.gettime() - t2))
        end
      end
      assert.is_true(restarts >= 3)
      assert.is_true(interrupted >= 2, "the simulator died in the middle of the job")
      env.JOB_URL = s.url
      local child = start_child(env, ledger, csv, profile)
      assert.is_true(wait_exit(child, 60), "the final resume ends")
      local job <close> = require("knox.job").open(ledger)
      local st = job:status()
      assert.are.equal(n, st.ok)
      assert.are.equal(0, st.pending + st.failed + st.unknown)
      -- the journal kept the log across restarts: each device acknowledged once
      local c <close> = oauth_client(s.url, scoped)
      local log = {}
      local conn = sim.connect(s.url)
      local r = conn:request("GET", "/__sim/requests?path=" .. ASSIGN)
      conn:close()
      for _, e in ipairs(r.json.requests) do log[#log + 1] = e end
      local counts = {}
      for _, e in ipairs(log) do
        if e.method == "PUT" and e.status == 200 then
          for _, id in ipairs(cjson.decode(e.body).deviceIds) do counts[id] = (counts[id] or 0) + 1 end
        end
      end
      assert_once(counts, n)
      assert_all_assigned(c, n, profile)
    end)
    os.execute("kill -9 " .. s.pid .. " 2>/dev/null")
    rm_ledger(ledger)
    os.remove(csv)
    os.remove(state)
    assert(ok, err)
  end)

  it("resets after sending: the outcome is unknown, the read-back settles it, nothing is sent twice", function()
    local s = sim.start { devices = 3000, seed = "jobreset" }
    local ledger = tmp()
    local ok, err = pcall(function()
      local c <close> = oauth_client(s.url, s.oauth, { max_attempts = 1 })
      local ids = {}
      for page = 0, 2 do
        local list = c.kme:list_devices { pageNum = page, pageSize = 1000 }.deviceList
        for _, d in ipairs(list) do ids[#ids + 1] = d.mei end
      end
      local pid = c.kme:list_profiles {}.profileList[1].profileId
      s:fault { match = { method = "PUT", path = ASSIGN }, reset = true, times = 4 }
      local job <close> = c:job { op = "kme.assign_profile", args = { profileId = pid }, devices = ids,
        ledger = ledger, chunk_size = 200, concurrency = 2 }
      local st = job:run()
      assert.are.equal(3000, st.ok)
      assert.are.equal(0, st.unknown + st.failed + st.pending)
      local counts, writes = acked_writes(s)
      assert_once(counts, 3000)
      assert.are.equal(15, writes, "15 chunks of 200, none sent again")
      -- the read-back asked for recent changes only
      local readbacks = 0
      for _, e in ipairs(s:requests { path = "/kcs/v1/kme/devices/list" }) do
        if (e.query or ""):find("changedAfter", 1, true) then readbacks = readbacks + 1 end
      end
      assert.is_true(readbacks >= 1, "the read-back ran")
    end)
    s:stop()
    rm_ledger(ledger)
    assert(ok, err)
  end)

  it("without a read-back, in-doubt devices are unknown until resend_unknown", function()
    local s = sim.start { devices = 300, seed = "jobunknown" }
    local ledger = tmp()
    local ok, err = pcall(function()
      local c <close> = knox.client { base_url = s.url, max_attempts = 1,
        auth = knox.auth.keys { file = s.keys_file, client_id = s.client_id } }
      local ids = {}
      for _, d in ipairs(c.kg:list_devices { pageSize = 300 }.deviceList) do ids[#ids + 1] = d.deviceUid end
      s:fault { match = { path = "/kcs/v1.1/kg/devices/lockAsync" }, reset = true, times = 1 }
      local job <close> = c:job { op = "kg.lock_async", args = { message = "pay" }, devices = ids, ledger = ledger,
        chunk_size = 100, concurrency = 1 }
      local st = job:run()
      assert.are.equal(100, st.unknown)
      assert.are.equal(#ids - 100, st.ok + st.failed)
      st = job:resume()
      assert.are.equal(100, st.unknown, "not re-sent without being asked")
      st = job:resume { resend_unknown = true }
      assert.are.equal(0, st.unknown)
      assert.are.equal(#ids, st.ok + st.failed)
      local writes = 0
      for _, e in ipairs(s:requests { path = "/kcs/v1.1/kg/devices/lockAsync" }) do
        if e.status == 200 then writes = writes + 1 end
      end
      assert.are.equal(#ids // 100 + 1, writes, "the unknown chunk once more, on request")
    end)
    s:stop()
    rm_ledger(ledger)
    assert(ok, err)
  end)
end)

describe("fleet jobs: the KDP read-back", function()
  -- a 15-digit IMEI with its Luhn check digit
  local function imei(n) return require("helpers").imei(("35%012d"):format(n)) end

  it("an upload reset after sending is found in its transaction and not uploaded twice", function()
    local s = sim.start { devices = 10, seed = "jobkdp" }
    local ledger = tmp()
    local ok, err = pcall(function()
      local c <close> = oauth_client(s.url, s.oauth, { max_attempts = 1 })
      local ids = {}
      for i = 1, 150 do ids[i] = imei(900000 + i) end
      s:fault { match = { method = "PUT", path = "/kcs/v1/rp/devices/upload" }, reset = true, times = 1 }
      local job <close> = c:job { op = "kdp.upload_devices", args = { resellerId = s.reseller_id,
        customerId = s.customer_id }, devices = ids, ledger = ledger, chunk_size = 50, concurrency = 3 }
      local st = job:run()
      assert.are.equal(150, st.ok)
      assert.are.equal(0, st.failed + st.unknown + st.pending)
      local uploads, status_calls = 0, 0
      for _, e in ipairs(s:requests {}) do
        if e.path == "/kcs/v1/rp/devices/upload" and e.status == 200 then uploads = uploads + 1 end
        if e.path == "/kcs/v1/rp/devices/status" then status_calls = status_calls + 1 end
      end
      assert.are.equal(3, uploads, "three chunks, none uploaded again")
      assert.is_true(status_calls >= 1, "the transaction was looked up")
    end)
    s:stop()
    rm_ledger(ledger)
    assert(ok, err)
  end)
end)
