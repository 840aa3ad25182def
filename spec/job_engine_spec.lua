-- Fleet jobs: the rate governor on a moved clock, the device sources, the
-- ledger's refusals, and the `knox job` command's contract (exit codes,
-- status JSON, per-device report) against the simulator.
local sim = require "support.sim"
local cjson = require "cjson"
local knox = require "knox"
local governor = require "knox.governor"
local source = require "knox.job.source"
local helpers = require "helpers"

local function fake_time()
  local t = { now = 1000, sleeps = {} }
  function t.clock() return t.now end
  function t.sleep(s)
    t.sleeps[#t.sleeps + 1] = s
    t.now = t.now + s
  end
  return t
end

local tmp, rm_ledger = require("helpers").tmpname, require("helpers").rm_ledger

describe("knox.governor", function()
  it("is off until the first 429, then closes the bucket for Retry-After and reopens with one call", function()
    local t = fake_time()
    local g = governor.new { clock = t.clock, sleep = t.sleep }
    assert.are.equal(500, (g:take("k", 500)))
    g:observe("k", 429, { ["retry-after"] = "2" })
    local n, wait = g:take("k", 10)
    assert.are.equal(0, n)
    assert.is_true(math.abs(wait - 2) < 1e-9)
    t.now = t.now + 2
    assert.are.equal(1, (g:take("k", 10)), "the server said when: one call goes at once")
    assert.are.equal(0, (g:take("k", 10)), "then paced")
    assert.is_true(g:state("k").enabled)
    assert.is_nil(g:state("other"), "another credential has its own bucket, untouched")
  end)

  -- Calls at the bucket's pace for `seconds` of moved time; the server
  -- answers 429 when its_limit(t) is exceeded over the last second.
  local function drive(g, t, seconds, limit_of)
    local sent, limited, window = 0, 0, {}
    local stop = t.now + seconds
    while t.now < stop do
      g:acquire("k")
      local lim = limit_of(t.now)
      while window[1] and window[1] <= t.now - 1 do table.remove(window, 1) end
      if #window >= lim then
        limited = limited + 1
        g:observe("k", 429, { ["retry-after"] = "1" })
      else
        window[#window + 1] = t.now
        sent = sent + 1
        g:observe("k", 200)
      end
      t.now = t.now + 0.001
    end
    return sent, limited
  end

  it("decreases multiplicatively on 429 and grows back while calls succeed", function()
    local t = fake_time()
    local g = governor.new { clock = t.clock, sleep = t.sleep }
    local sent, limited = drive(g, t, 60, function() return 10 end)
    local st = g:state("k")
    assert.is_true(st.enabled)
    assert.is_true(limited >= 1, "the limit was found")
    assert.is_true(limited < sent / 10, "and rarely hit again: " .. limited .. " of " .. sent)
    assert.is_true(st.ceiling > 7 and st.ceiling < 13, "the ceiling is the measured limit: " .. st.ceiling)
    -- a 429 now: 0.7 times what got through
    t.now = t.now + 2
    local before = g:state("k").rate
    g:observe("k", 429, { ["retry-after"] = "1" })
    local after = g:state("k").rate
    assert.is_true(after < before and after <= 0.7 * math.max(before, st.ceiling) + 1e-9, before .. " -> " .. after)
    -- the limit halves: the rate follows it down
    drive(g, t, 30, function() return 5 end)
    local r = g:state("k").rate
    assert.is_true(r > 2 and r < 7, "adapted to about 5/s: " .. r)
  end)

  it("max_rate caps the rate from the first call, with no 429 needed", function()
    local t = fake_time()
    local g = governor.new { clock = t.clock, sleep = t.sleep, max_rate = 4 }
    local t0 = t.now
    for _ = 1, 42 do g:acquire("k") end
    -- two at once (half a second of tokens), then four a second
    assert.is_true(t.now - t0 >= 10 - 1e-6, "42 calls take at least 10 s at 4/s: " .. (t.now - t0))
    assert.has_error(function() governor.new { clock = t.clock, sleep = t.sleep, max_rate = 0 } end)
  end)

  it("admits a batch round only as far as the bucket has tokens, in order", function()
    local t = fake_time()
    local g = governor.new { clock = t.clock, sleep = t.sleep, max_rate = 6 }
    assert.are.equal(3, g:admit({ "k", "k", "k", "k", "k" }, 5), "three tokens: half a second at 6/s")
    assert.are.equal(1, g:admit({ "k", "k" }, 2), "then one, after waiting for it")
    assert.is_true(#t.sleeps >= 1)
    -- requests without credentials (token endpoints) are never held back
    assert.are.equal(4, g:admit({ false, false, false, false }, 4))
  end)
end)

describe("client pacing against the simulator", function()
  local s
  lazy_setup(function() s = sim.start { devices = 30, seed = "pace" } end)
  lazy_teardown(function() if s then s:stop() end end)

  it("paces client:batch and client:request with max_rate, on the client's clock", function()
    local t = fake_time()
    local c <close> = knox.client { base_url = s.url, clock = t.clock, sleep = t.sleep, max_rate = 4,
      auth = knox.auth.oauth2 { client_id = s.oauth.client_id, client_secret = s.oauth.client_secret,
        scope = s.oauth.scope } }
    local times = {}
    c:on("request", function(d) if not d.url:find("/oauth2/", 1, true) then times[#times + 1] = t.now end end)
    local reqs = {}
    for i = 1, 12 do reqs[i] = { "GET", "/kcs/v1/kme/devices/list", { query = { pageSize = 1, pageNum = i } } } end
    local t0 = t.now
    local res = c:batch(reqs)
    for i = 1, 12 do assert.is_table(res[i].body, "request " .. i) end
    assert.are.equal(12, #times)
    -- never more than the bucket's 2 at one moment, 4 a second after that
    local at = {}
    for _, x in ipairs(times) do at[x] = (at[x] or 0) + 1 end
    for _, k in pairs(at) do assert.is_true(k <= 2) end
    assert.is_true(t.now - t0 >= (12 - 2) / 4 - 1e-6, "elapsed " .. (t.now - t0))
    local t1 = t.now
    for _ = 1, 4 do c:request("GET", "/kcs/v1/kme/devices/list", { query = { pageSize = 1 } }) end
    assert.is_true(t.now - t1 >= 0.75 - 1e-6, "plain requests are paced too")
  end)
end)

describe("knox.job.source", function()
  local function all(it)
    local out = {}
    for id in it do out[#out + 1] = id end
    return out
  end
  local function lines(text)
    return text:gmatch "([^\n]*)\n"
  end

  it("reads the first column, or the column a header names imei/serial/device", function()
    assert.are.same({ "111", "222" }, all(source.csv_lines(lines "111,a\n222,b\n")))
    assert.are.same({ "111", "222" }, all(source.csv_lines(lines "\239\187\191Device,x\n# c\n\n111\n222\n")))
    assert.are.same({ "353", "354" }, all(source.csv_lines(lines "model,IMEI\nS23,353\n\"A,5\",\"354\"\n")))
    assert.are.same({ "S1" }, all(source.csv_lines(lines "serial\r\nS1\r\n")))
  end)

  it("hashes the list in order, so another list or another order is another hash", function()
    local function hash(list)
      local h
      for _, id in ipairs(list) do h = source.hash_add(h, id) end
      return source.hash_text(h, #list)
    end
    assert.are.equal(hash { "a", "b" }, hash { "a", "b" })
    assert.are_not.equal(hash { "a", "b" }, hash { "b", "a" })
    assert.are_not.equal(hash { "ab" }, hash { "a", "b" })
  end)
end)

describe("knox job (the command) and its refusals", function()
  local s, env_prefix, profile, ids
  local BOGUS = "490154203237518"  -- a valid IMEI the simulator does not have

  local function knox_cmd(args, stdin)
    local errf = os.tmpname()
    local cmd = env_prefix .. helpers.KNOX .. " " .. args .. " 2>" .. errf
      .. (stdin and (" <" .. stdin) or " </dev/null")
    local p = io.popen(cmd)
    local out = p:read "a"
    local _, _, code = p:close()
    local err = sim.read_file(errf) or ""
    os.remove(errf)
    return code, out, err
  end

  lazy_setup(function()
    s = sim.start { devices = 250, seed = "jobcli" }
    local vars = { KNOX_BASE_URL = s.url, KNOX_OAUTH_CLIENT_ID = s.oauth.client_id,
      KNOX_OAUTH_CLIENT_SECRET = s.oauth.client_secret, KNOX_OAUTH_SCOPE = s.oauth.scope, KNOX_TOKEN_CACHE = "0",
      KNOX_CONFIG = "/nonexistent", LUA_PATH = helpers.lua_path(), LUA_CPATH = helpers.lua_cpath() }
    local parts = { sim.ENV, "-u KNOX_KEYS_FILE -u KNOX_CLIENT_ID -u KNOX_TENANT -u KNOX_PROFILE " }
    for k, v in pairs(vars) do parts[#parts + 1] = k .. "=" .. sim.quote(v) .. " " end
    env_prefix = table.concat(parts)
    local c <close> = knox.client { base_url = s.url, auth = knox.auth.oauth2 { client_id = s.oauth.client_id,
      client_secret = s.oauth.client_secret, scope = s.oauth.scope } }
    profile = c.kme:list_profiles {}.profileList[1].profileId
    ids = {}
    for _, d in ipairs(c.kme:list_devices { pageSize = 250 }.deviceList) do ids[#ids + 1] = d.mei end
  end)
  lazy_teardown(function() if s then s:stop() end end)

  it("runs a job from a CSV: exit 0, status JSON, a report row per device; the same run again resumes", function()
    local csv, ledger = tmp(), tmp()
    local f = assert(io.open(csv, "w"))
    f:write("imei\n")
    for i = 1, 120 do f:write(ids[i], "\n") end
    f:write(ids[1], "\n")  -- a duplicate line: sent once
    f:close()
    local code, out, err = knox_cmd(("job run kme.assign_profile --devices %s --ledger %s --arg profileId=%s "
      .. "--chunk-size 50 -o json --quiet"):format(csv, ledger, profile))
    assert.are.equal(0, code, err)
    local st = cjson.decode(out)
    assert.are.equal(120, st.total)
    assert.are.equal(120, st.ok)
    assert.are.equal(1, st.duplicates)
    code, out = knox_cmd("job status --ledger " .. ledger .. " -o json")
    assert.are.equal(0, code)
    st = cjson.decode(out)
    for _, k in ipairs { "total", "pending", "ok", "failed", "unknown" } do assert.is_number(st[k], k) end
    assert.are.equal(0, st.pending + st.failed + st.unknown)
    code, out = knox_cmd("job report --ledger " .. ledger .. " -o csv")
    assert.are.equal(0, code)
    local rows = {}
    for line in out:gmatch "([^\n]+)" do rows[#rows + 1] = line end
    assert.are.equal("device,state,code,name", rows[1])
    assert.are.equal(121, #rows)
    assert.are.equal(ids[1] .. ",ok,,", rows[2])
    local before = #s:requests { path = "/kcs/v1/kme/devices/assignProfile" }
    code = knox_cmd(("job run kme.assign_profile --devices %s --ledger %s --arg profileId=%s -o json --quiet")
      :format(csv, ledger, profile))
    assert.are.equal(0, code)
    assert.are.equal(before, #s:requests { path = "/kcs/v1/kme/devices/assignProfile" }, "nothing sent again")
    -- another argument, another list: refused (usage, exit 2)
    local _
    code, _, err = knox_cmd(("job run kme.assign_profile --devices %s --ledger %s --arg profileId=other --quiet")
      :format(csv, ledger))
    assert.are.equal(2, code)
    assert.matches("other arguments", err)
    local csv2 = tmp()
    sim.write_file(csv2, ids[2] .. "\n")
    code, _, err = knox_cmd(("job resume --ledger %s --devices %s --quiet"):format(ledger, csv2))
    assert.are.equal(2, code)
    assert.matches("device list differs", err)
    rm_ledger(ledger)
    os.remove(csv)
    os.remove(csv2)
  end)

  it("exits 5 when devices failed, and the report names the code (stdin as the list)", function()
    local csv, ledger = tmp(), tmp()
    sim.write_file(csv, table.concat({ ids[200], BOGUS, ids[201] }, "\n") .. "\n")
    local code, out, err = knox_cmd(("job run kme.assign_profile --devices - --ledger %s --arg profileId=%s "
      .. "-o json --quiet"):format(ledger, profile), csv)
    assert.are.equal(5, code, err)
    local st = cjson.decode(out)
    assert.are.equal(2, st.ok)
    assert.are.equal(1, st.failed)
    code, out = knox_cmd("job report --ledger " .. ledger .. " -o json")
    assert.are.equal(0, code)
    local rows = cjson.decode(out)
    assert.are.equal(3, #rows)
    assert.are.same({ device = BOGUS, state = "failed", code = "4040300", name = "DEVICE_NOT_FOUND" }, rows[2])
    assert.are.equal("ok", rows[1].state)
    code = knox_cmd("job status --ledger " .. ledger .. " -o json")
    assert.are.equal(5, code)
    local _
    code, _, err = knox_cmd("job status --ledger /nonexistent/x.db")
    assert.are.equal(2, code)
    assert.matches("no job ledger", err)
    rm_ledger(ledger)
    os.remove(csv)
  end)

  it("refuses what is not a bulk method, and bad arguments before recording anything", function()
    local c <close> = knox.client { base_url = s.url, auth = knox.auth.oauth2 { client_id = s.oauth.client_id,
      client_secret = s.oauth.client_secret, scope = s.oauth.scope } }
    local ledger = tmp()
    local e = helpers.raises(c.job, c, { op = "kme.list_devices", devices = { "1" }, ledger = ledger })
    assert.are.equal("usage", e.kind)
    assert.matches("kme.assign_profile", e.message)
    rm_ledger(ledger)
    e = helpers.raises(c.job, c, { op = "kme.assign_profile", args = { profileid = "x" }, devices = { "1" },
      ledger = ledger })
    assert.are.equal("usage", e.kind)
    assert.matches("profileId", e.message)
    e = helpers.raises(require("knox.job").open, ledger)
    assert.matches("holds no job", e.message, "nothing was recorded")
    rm_ledger(ledger)
  end)
end)
