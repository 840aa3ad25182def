-- The knox command's service commands (made from the registry), output
-- formats and exit codes, run as real processes against the simulator.
local sim_support = require "support.sim"
local cjson = require "cjson"

local quote = sim_support.quote
-- `knox ARGS` with only the KNOX_* variables of env, a private HOME,
-- cache and config: exit code, stdout, stderr (spec/support/cli.lua)
local run, tmp = require("support.cli").runner()

-- Parses RFC 4180 CSV text into rows of cells.
local function parse_csv(text)
  local rows = {}
  for line in text:gmatch "([^\n]*)\n" do
    line = line:gsub("\r$", "")
    local cells, i = {}, 1
    while i <= #line + 1 do
      if line:sub(i, i) == '"' then
        local j, buf = i + 1, {}
        while true do
          local c = line:sub(j, j)
          if c == '"' and line:sub(j + 1, j + 1) == '"' then buf[#buf + 1] = '"'; j = j + 2
          elseif c == '"' or c == "" then break
          else buf[#buf + 1] = c; j = j + 1 end
        end
        cells[#cells + 1] = table.concat(buf)
        i = j + 2
      else
        local k = line:find(",", i, true) or #line + 1
        cells[#cells + 1] = line:sub(i, k - 1)
        i = k + 1
      end
    end
    rows[#rows + 1] = cells
  end
  return rows
end

local function id_of(d)
  return d.mei or d.imei or d.deviceUid or d.deviceUId or d.deviceId or d.id
end

describe("knox service commands", function()
  local sim, env

  setup(function()
    sim = sim_support.start { devices = 12 }
    env = { KNOX_BASE_URL = sim.url, KNOX_KEYS_FILE = sim.keys_file, KNOX_CLIENT_ID = sim.client_id,
      KNOX_OAUTH_CLIENT_ID = sim.oauth.client_id, KNOX_OAUTH_CLIENT_SECRET = sim.oauth.client_secret,
      KNOX_OAUTH_SCOPE = sim.oauth.scope }
  end)
  teardown(function()
    if sim then sim:stop() end
    os.execute("rm -rf " .. quote(tmp))
  end)

  local function knox(args, extra, stdin)
    local e = {}
    for k, v in pairs(env) do e[k] = v end
    for k, v in pairs(extra or {}) do e[k] = v end
    return run(args, e, stdin)
  end

  describe("the mapping from the registry", function()
    it("reaches every registry method under a unique NOUN VERB, with help from its row", function()
      local cmds = require "knox.cli.commands"
      local reg = require("knox.services").load()
      local seen, n = {}, 0
      for _, e in ipairs(cmds.tree().entries) do seen[e.service .. "." .. e.method] = e end
      for _, name in ipairs(reg.names) do
        for m, def in pairs(reg.services[name].endpoints) do
          local e = seen[name .. "." .. m]
          assert.is_not_nil(e, name .. "." .. m .. " has no command")
          local p = cmds.parser(e)
          local help = p:get_help()
          assert.matches(("knox %s %s %s"):format(name, e.noun, e.verb), help, 1, true)
          if def.doc then assert.matches(def.doc:sub(1, 20), help, 1, true) end
          for _, a in ipairs(def.args) do
            local ph = def[2]:find("{" .. a[1] .. "}", 1, true)
            if a[2] ~= "devices" and not ph then
              assert.matches("--" .. cmds.kebab(a[1]), help, 1, true)
            end
          end
          n = n + 1
        end
      end
      assert.is_true(n > 60)
      -- the names the issue uses
      local function verb(s, noun, v) return cmds.tree().services[s].nouns[noun][v] end
      assert.are.equal("list_devices", verb("kme", "devices", "list").method)
      assert.are.equal("get_profile", verb("kme", "profiles", "get").method)
      assert.are.equal("assign_profile", verb("kme", "devices", "assign").method)
      assert.are.equal("lock_async", verb("kg", "devices", "lock").method)
      assert.are.equal("lock", verb("kg", "devices", "lock-one").method)
      assert.are.equal("unlock_async", verb("kg", "devices", "unlock").method)
      assert.are.equal("blink_async", verb("kg", "devices", "blink").method)
      assert.are.equal("list_customers", verb("msp", "customers", "list").method)
      assert.are.equal("upload_devices", verb("kdp", "devices", "upload").method)
      assert.are.equal("get_devices_v2", verb("kc", "devices", "list-v2").method)
    end)

    it("answers -h on a service, a noun and a command, and exits 2 on an unknown one", function()
      local code, out = knox "kme"
      local _
      assert.are.equal(2, code)
      assert.matches("devices", out)
      code, out = knox "kme devices -h"
      assert.are.equal(0, code)
      assert.matches("assign", out)
      code, out = knox "kme devices assign -h"
      assert.are.equal(0, code)
      assert.matches("--profile", out)
      assert.matches("--from", out)
      local err
      code, _, err = knox "kme devics list"
      assert.are.equal(2, code)
      assert.matches("did you mean devices", err)
      code, _, err = knox "kme devices lst"
      assert.are.equal(2, code)
      assert.matches("did you mean list", err)
    end)
  end)

  describe("KME", function()
    it("lists devices as JSON with keys in a stable order", function()
      local code, out, err = knox "kme devices list --page-size 5 -o json"
      assert.are.equal(0, code, err)
      local list = cjson.decode(out)
      assert.are.equal(5, #list)
      assert.is_string(id_of(list[1]))
      local code2, out2 = knox "kme devices list --page-size 5 -o json"
      assert.are.equal(0, code2)
      assert.are.equal(out, out2)
      -- sorted keys: each key of an object comes after the one before it
      local prev
      for k in out:match("^%[%s*(%b{})"):gmatch '\n    "([^"]+)":' do
        if prev then assert.is_true(prev < k, prev .. " before " .. k) end
        prev = k
      end
    end)

    it("--all streams every page: jsonl, csv and one JSON array", function()
      local code, out, err = knox "kme devices list --all --page-size 5 -o jsonl"
      assert.are.equal(0, code, err)
      local ids, n = {}, 0
      for line in out:gmatch "[^\n]+" do
        local id = id_of(cjson.decode(line))
        assert.is_nil(ids[id], "each device once")
        ids[id] = true
        n = n + 1
      end
      assert.are.equal(12, n)
      code, out = knox "kme devices list --all --page-size 5 -o json"
      assert.are.equal(0, code)
      assert.are.equal(12, #cjson.decode(out))
      code, out = knox "kme devices list --all --page-size 5 -o csv --fields deviceId,model"
      assert.are.equal(0, code)
      local rows = parse_csv(out)
      assert.are.same({ "deviceId", "model" }, rows[1])
      assert.are.equal(13, #rows)
      -- pages were fetched one by one
      local pages = 0
      for _, r in ipairs(sim:requests { path = "devices/list" }) do
        if r.path:find "/kcs/v1/kme/devices/list" then pages = pages + 1 end
      end
      assert.is_true(pages >= 9)
    end)

    it("gets a profile by its positional id, as a table when asked", function()
      local code, out, err = knox "kme profiles list -o json"
      assert.are.equal(0, code, err)
      local profile = cjson.decode(out)[1]
      code, out = knox("kme profiles get " .. profile.profileId .. " -o json")
      assert.are.equal(0, code)
      assert.are.equal(profile.profileId, cjson.decode(out).profileId)
      code, out = knox("kme profiles get " .. profile.profileId .. " -o table")
      assert.are.equal(0, code)
      assert.matches("profileName%s+" .. profile.profileName:gsub("%p", "%%%0"), out)
    end)

    it("assigns a profile to devices from arguments, a CSV file and stdin; one result per device", function()
      local _, out = knox "kme devices list --page-size 4 -o json"
      local devs = cjson.decode(out)
      local _, pout = knox "kme profiles list -o json"
      local pid = cjson.decode(pout)[1].profileId
      local csv = os.tmpname()
      sim_support.write_file(csv, "Serial,IMEI\nx1," .. id_of(devs[2]) .. "\nx2," .. id_of(devs[3]) .. "\n")
      local code, res, err = knox(("kme devices assign --profile %s %s --from %s --column imei -o json")
        :format(pid, id_of(devs[1]), csv))
      os.remove(csv)
      assert.are.equal(0, code, err)
      local rows = cjson.decode(res)
      assert.are.equal(3, #rows)
      for i, r in ipairs(rows) do
        assert.are.equal(id_of(devs[i]), r.device)
        assert.are.equal("ok", r.result)
      end
      code, res, err = knox(("kme devices assign --profile-id %s --from - -o csv"):format(pid),
        nil, id_of(devs[4]) .. "\n")
      assert.are.equal(0, code, err)
      local t = parse_csv(res)
      assert.are.same({ "device", "result", "code", "name", "message" }, t[1])
      assert.are.equal(id_of(devs[4]), t[2][1])
      assert.matches("1 ok, 0 failed", err)
    end)

    it("needs its required flags and says so in flag terms", function()
      local code, _, err = knox "kme devices assign 356298658077235"
      assert.are.equal(2, code)
      assert.matches("needs %-%-profile%-id", err)
      code, _, err = knox "kme devices assign --profile p1"
      assert.are.equal(2, code)
      assert.matches("DEVICE", err)
      code, _, err = knox "kme devices list --page-size lots"
      assert.are.equal(2, code)
      assert.matches("%-%-page%-size", err)
      code, _, err = knox "kme devices list --page-size 5000"
      assert.are.equal(2, code)
      assert.matches("between 1 and 1000", err)
    end)
  end)

  describe("Knox Guard", function()
    it("locks many devices; some failing is a partial result (exit 5)", function()
      local code, out, err = knox "kg devices list --page-size 2 -o json"
      assert.are.equal(0, code, err)
      local devs = cjson.decode(out)
      code, out, err = knox(("kg devices lock %s %s 000000000000000 --message 'pay up' -o json"):format(
        id_of(devs[1]), id_of(devs[2])))
      assert.are.equal(5, code, err)
      local by = {}
      for _, r in ipairs(cjson.decode(out)) do by[r.device] = r end
      assert.are.equal("ok", by[id_of(devs[1])].result)
      assert.are.equal("failed", by["000000000000000"].result)
      assert.is_string(by["000000000000000"].name)
      assert.is_nil(err:find "stack traceback")
      code = knox(("kg devices unlock %s -o json"):format(id_of(devs[1])))
      assert.are.equal(0, code)
    end)
  end)

  describe("MSP, KDP and Knox Configure", function()
    it("lists MSP customers with --all", function()
      local code, out, err = knox "msp customers list --all -o jsonl"
      assert.are.equal(0, code, err)
      local n = 0
      for line in out:gmatch "[^\n]+" do
        assert.is_string(cjson.decode(line).customerId)
        n = n + 1
      end
      assert.is_true(n >= 1)
    end)

    it("uploads KDP devices from a CSV file and lists them", function()
      local csv = os.tmpname()
      sim_support.write_file(csv, "IMEI\n352000000000011\n352000000000029\n")
      local code, out, err = knox(("kdp devices upload --from %s --reseller-id %s --customer-id %s -o json")
        :format(csv, sim.reseller_id, sim.customer_id))
      os.remove(csv)
      assert.are.equal(0, code, err)
      local rows = cjson.decode(out)
      assert.are.equal(2, #rows)
      assert.are.equal("352000000000011", rows[1].device)
      code, out, err = knox(("kdp devices list --reseller-id %s --all -o json"):format(sim.reseller_id))
      assert.are.equal(0, code, err)
      assert.is_true(#cjson.decode(out) >= 12)
    end)

    it("lists Knox Configure devices (v1) and profiles", function()
      local code, out, err = knox "kc devices list -o json --fields state"
      assert.are.equal(0, code, err)
      local list = cjson.decode(out)
      assert.is_true(#list > 0)
      for _, d in ipairs(list) do
        for k in pairs(d) do assert.are.equal("state", k) end
      end
      code, out = knox "kc profiles list -o csv"
      assert.are.equal(0, code)
      assert.is_true(#parse_csv(out) >= 2)
    end)
  end)

  describe("exit codes", function()
    it("tells every failure class by its exit code, on one line, without a traceback", function()
      local cases = {
        { "kme profiles get nope", 1, nil, "PROFILE_NOT_FOUND" },
        { "kme devices list --bogus", 2, nil, "bogus" },
        { "kme devices list", 2, { KNOX_BASE_URL = "", KNOX_REGION = "" }, "region" },
        { "kme devices list", 3, { KNOX_BASE_URL = "http://127.0.0.1:9" }, "" },
        { "kme devices list", 4, { KNOX_CLIENT_ID = "sim-client-wrong", KNOX_OAUTH_CLIENT_ID = "",
          KNOX_OAUTH_CLIENT_SECRET = "", KNOX_OAUTH_SCOPE = "" }, "" },
        { "msp customers list", 4, { KNOX_OAUTH_CLIENT_SECRET = "wrong-secret" }, "" },
        -- a bulk call where every device failed: the per-device result on
        -- stdout, the exit code of the failure
        { "kg devices lock 000000000000001 --message x", 1, nil, "0 ok, 1 failed", nil, true },
        { "frobnicate", 2, nil, "unknown command" },
        { "kme devices list --timeout 0.5", 3, nil, "",
          { match = { path = "/kcs/v1/kme/devices/list" }, delay_ms = 3000, times = 5 } },
      }
      for _, c in ipairs(cases) do
        if c[5] then sim:fault(c[5]) end
        local code, out, err = knox(c[1] .. " --no-cache", c[3])
        assert.are.equal(c[2], code, c[1] .. ": " .. err)
        if c[6] then
          assert.are.equal("failed", cjson.decode(out)[1].result)
        else
          assert.are.equal("", out, c[1])
        end
        assert.matches(c[4], err, 1, true)
        assert.is_nil(err:find("stack traceback", 1, true), c[1])
        -- one line of text (a usage mistake adds where to find the flags)
        local lines = select(2, err:gsub("\n", ""))
        assert.is_true(lines == 1 or (c[2] == 2 and lines == 2), c[1] .. ": " .. err)
        assert.matches("^knox[: ]", err)
      end
    end)

    it("with --output json tells the error as one JSON object on stderr", function()
      local code, out, err = knox "kme profiles get nope -o json"
      local _
      assert.are.equal(1, code)
      assert.are.equal("", out)
      local e = cjson.decode(err).error
      assert.are.equal("PROFILE_NOT_FOUND", e.name)
      assert.are.equal(4040400, e.code)
      assert.are.equal(1, e.exit)
      code, _, err = knox "kme devices list --page-size x -o json"
      assert.are.equal(2, code)
      assert.are.equal("usage", cjson.decode(err).error.kind)
      code, _, err = knox "-o json kme devices list --nope"
      assert.are.equal(2, code)
      assert.are.equal(2, cjson.decode(err).error.exit)
    end)

    it("-v adds the redacted trace to an error", function()
      local code, _, err = knox "kme profiles get nope -v"
      assert.are.equal(1, code)
      assert.matches("> GET http://127%.0%.0%.1:%d+/kcs/v1/kme/profiles/nope/get", err)
      assert.matches("< 404", err)
      assert.matches("knox: PROFILE_NOT_FOUND", err)
      assert.is_nil(err:find(sim.oauth.client_secret, 1, true))
    end)
  end)
end)
