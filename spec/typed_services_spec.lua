-- The typed service layer (lua/knox/service.lua, schema.lua, bulk.lua,
-- waiter.lua) against the simulator: arguments checked before sending,
-- tenant safety, bulk results, waiters, client options.
local sim = require "support.sim"
local helpers = require "helpers"
local cjson = require "cjson"

local knox = require "knox"

-- a valid IMEI (Luhn) from 14 digits
local imei = require("helpers").imei

local function last_request(s, path)
  local list = s:requests { path = path }
  return list[#list]
end

describe("knox services", function()
  local s

  setup(function() s = sim.start { devices = 2000 } end)
  teardown(function() if s then s:stop() end end)

  local function keys_client(opts)
    local o = { base_url = s.url, env = false,
      auth = knox.auth.keys { file = s.keys_file, client_id = s.client_id } }
    for k, v in pairs(opts or {}) do o[k] = v end
    return knox.client(o)
  end

  local function both_client(opts)
    local o = { base_url = s.url, env = false, auth = {
      knox.auth.keys { file = s.keys_file, client_id = s.client_id },
      knox.auth.oauth2 { client_id = s.oauth.client_id, client_secret = s.oauth.client_secret,
        scope = s.oauth.scope } } }
    for k, v in pairs(opts or {}) do o[k] = v end
    return knox.client(o)
  end

  describe("arguments", function()
    it("refuses a misspelt argument before sending, naming the nearest", function()
      local c <close> = keys_client()
      local before = #s:requests()
      local e = helpers.raises(c.kg.lock, c.kg, { deviceUID = "356298658077235" })
      assert.are.equal("usage", e.kind)
      assert.are.equal("unknown argument 'deviceUID' to kg:lock; did you mean 'deviceUid'?", e.message)
      e = helpers.raises(c.kme.list_devices, c.kme, { pagesize = 10 })
      assert.matches("did you mean 'pageSize'", e.message, 1, true)
      assert.are.equal(before, #s:requests(), "nothing was sent")
    end)

    it("refuses missing, mistyped and out-of-enum arguments and unknown options", function()
      local c <close> = both_client()
      local cases = {
        { c.kme.assign_profile, { devices = { "a" } }, "kme:assign_profile needs 'profileId' (string)" },
        { c.kme.assign_profile, { profileId = 7, devices = { "a" } },
          "argument 'profileId' to kme:assign_profile must be a string (got number)" },
        { c.kme.list_devices, { pageSize = "10" }, "argument 'pageSize' to kme:list_devices must be an integer" },
        { c.kme.list_devices, { pageSize = 0 }, "must be between 1 and 1000" },
        { c.msp.list_customers, { sortOrder = "up" }, "must be one of ascending, descending" },
        { c.kme.unassign_profile, { devices = {} }, "must be at least one device id" },
        { c.kme.unassign_profile, { devices = { "ok", "" } }, "item 2 is empty" },
        { c.kg.lock, {}, "kg:lock needs one of 'objectId', 'deviceUid', 'approveId'" },
      }
      for i, t in ipairs(cases) do
        local e = helpers.raises(t[1], t[1] == c.msp.list_customers and c.msp or
          (t[1] == c.kg.lock and c.kg or c.kme), t[2])
        assert.are.equal("usage", e.kind, i)
        assert.matches(t[3], e.message, 1, true)
      end
      local e = helpers.raises(c.kme.list_devices, c.kme, {}, { tenent = "x" })
      assert.are.equal("unknown option 'tenent' to kme:list_devices; did you mean 'tenant'?", e.message)
    end)

    it("maps the one device vocabulary onto each service's wire field", function()
      local c <close> = keys_client()
      local page = c.kme:list_devices { pageSize = 3 }
      local ids = {}
      for i, d in ipairs(page.deviceList) do ids[i] = d.imei or d.mei end
      local r = c.kme:unassign_profile { devices = ids }
      assert.are.equal(3, #r.ok)
      local sent = cjson.decode(last_request(s, "/kcs/v1/kme/devices/unassignProfile").body)
      assert.are.same(ids, sent.deviceIds)
      c.kme:delete_devices({ devices = { ids[1] } })
      sent = cjson.decode(last_request(s, "/kcs/v1/kme/devices/delete").body)
      assert.are.same({ imeiOrSerials = { ids[1] } }, sent.devices)
    end)

    it("sends a raw body untouched", function()
      local c <close> = keys_client()
      local ok, e = knox.try(c.kme.list_devices, c.kme, { pageSize = 1, fancyNewField = "x" }, { raw = true })
      assert.is_true(ok, tostring(e))
      local q = last_request(s, "/kcs/v1/kme/devices/list").query
      assert.matches("fancyNewField=x", q, 1, true)
    end)
  end)

  describe("tenant safety", function()
    local managed

    setup(function()
      local c <close> = both_client()
      local list = c.msp:list_customers {}
      for _, cust in ipairs(list.customers) do
        if cust.status == "Active" or cust.status == nil then managed = cust.customerId break end
      end
      assert.is_string(managed, "the simulator has a managed customer")
    end)

    it("sends a tenant's calls only over a scheme that honours the header", function()
      local c <close> = both_client { tenant = managed }
      c.kme:list_devices { pageSize = 1 }
      local req = last_request(s, "/kcs/v1/kme/devices/list")
      assert.are.equal(managed, req.headers["x-wsm-managed-tenantid"])
      assert.matches("^Bearer ", req.headers.authorization)
      assert.is_nil(req.headers["x-knox-apitoken"])
    end)

    it("refuses a tenant call the client's credentials would send to the MSP's own tenant", function()
      local c <close> = keys_client { tenant = managed }
      local before = #s:requests()
      local e = helpers.raises(c.kme.list_devices, c.kme, { pageSize = 1 })
      assert.are.equal("usage", e.kind)
      assert.matches("needs knox.auth.oauth2", e.message, 1, true, e.message)
      e = helpers.raises(c.request, c, "GET", "/kcs/v1/kme/devices/list")
      assert.are.equal("usage", e.kind)
      -- Knox Guard has no scheme that honours it
      local c2 <close> = both_client { tenant = managed }
      e = helpers.raises(c2.kg.lock, c2.kg, { deviceUid = "356298658077235" })
      assert.matches("^Knox Guard %(kg%)", e.message)
      assert.matches("does not honour the tenant header", e.message, 1, true)
      -- a path no service claims cannot be judged: refused too
      e = helpers.raises(c2.request, c2, "GET", "/kcs/v1/other/thing")
      assert.matches("cannot tell whether", e.message, 1, true)
      assert.are.equal(before, #s:requests(), "nothing was sent")
      -- tenant = false on the call sends it without one
      local ok = knox.try(c.kme.list_devices, c.kme, { pageSize = 1 }, { tenant = false })
      assert.is_true(ok)
      assert.is_nil(last_request(s, "/kcs/v1/kme/devices/list").headers["x-wsm-managed-tenantid"])
    end)

    it("lands reads and writes in the named tenant, never the MSP's own", function()
      local own <close> = both_client()
      local cust <close> = both_client { tenant = managed }
      local mine = own.kme:list_devices { pageSize = 5 }.deviceList
      local theirs = cust.kme:list_devices { pageSize = 5 }.deviceList
      local id_of = function(d) return d.imei or d.mei end
      -- unassign one of the customer's devices; the MSP's own copy of the
      -- same-named device (if any) keeps its profile
      local target = id_of(theirs[1])
      local r = cust.kme:unassign_profile { devices = { target } }
      assert.are.same({ target }, r.ok)
      local req = last_request(s, "/kcs/v1/kme/devices/unassignProfile")
      assert.are.equal(managed, req.headers["x-wsm-managed-tenantid"])
      local function find(client, id)
        for d in client.kme:each_device { pageSize = 1000 } do
          if id_of(d) == id then return d end
        end
      end
      local after = find(cust, target)
      assert.is_truthy(after)
      assert.is_true(after.profileId == nil or after.profileId == knox.null or after.profileId == "")
      -- the MSP's own tenant is a different fleet: the device is not there,
      -- and its own devices are as they were
      assert.is_nil(find(own, target))
      local mine_after = own.kme:list_devices { pageSize = 5 }.deviceList
      for i, d in ipairs(mine) do
        assert.are.equal(id_of(d), id_of(mine_after[i]))
        assert.are.equal(d.profileId, mine_after[i].profileId)
      end
      assert.are_not.equal(own.kme:list_devices { pageSize = 1 }.totalCount,
        cust.kme:list_devices { pageSize = 1 }.totalCount)
    end)
  end)

  describe("bulk", function()
    it("chunks 2,500 devices and accounts for every one exactly once", function()
      local c <close> = keys_client()
      local states, input = {}, {}
      for d in c.kg:each_device { pageSize = 1000 } do
        states[d.deviceUid] = d.status
        input[#input + 1] = d.deviceUid
      end
      assert.are.equal(2000, #input)
      local unknown = {}
      for i = 1, 500 do
        local id = imei(("99%012d"):format(i))
        unknown[id] = true
        table.insert(input, (i * 7) % #input + 1, id)
      end
      local before = #s:requests { path = "/kcs/v1.1/kg/devices/sendMessageAsync" }
      local r = c.kg:send_message_async({ devices = input, message = "Please call us" }, { concurrency = 3 })
      local sent = s:requests { path = "/kcs/v1.1/kg/devices/sendMessageAsync" }
      assert.are.equal(3, #sent - before, "1,000 a chunk")
      assert.are.equal(2500, r.total)
      assert.are.equal(2500, #r.ok + #r.failed + #r.unknown)
      local seen = {}
      local function once(id)
        assert.is_nil(seen[id], id .. " twice")
        seen[id] = true
      end
      for _, id in ipairs(r.ok) do
        once(id)
        assert.is_nil(unknown[id])
      end
      for _, f in ipairs(r.failed) do
        once(f.id)
        assert.is_true(knox.is_error(f.error))
        if unknown[f.id] then assert.are.equal("DEVICE_NOT_FOUND", f.error.name) end
      end
      for _, id in ipairs(input) do assert.is_true(seen[id], id .. " missing") end
      local accepting = { Active = true, Locked = true, Blinking = true }
      local n_ok = 0
      for _, st in pairs(states) do if accepting[st] then n_ok = n_ok + 1 end end
      assert.are.equal(n_ok, #r.ok)
      assert.are.equal(3, #r.responses)
      -- strict raises kind partial carrying the result
      local e = helpers.raises(c.kg.send_message_async, c.kg, { devices = { input[1], imei("98000000000001") },
        message = "x" }, { strict = true })
      assert.are.equal("partial", e.kind)
      assert.are.equal(2, e.result.total)
    end)

    it("sends a repeated id once and says so", function()
      local c <close> = keys_client()
      local page = c.kme:list_devices { pageSize = 2 }.deviceList
      local a, b = page[1].imei or page[1].mei, page[2].imei or page[2].mei
      local r = c.kme:unassign_profile { devices = { a, b, a } }
      assert.are.same({ a }, r.duplicates)
      assert.are.equal(2, r.total)
      local body = cjson.decode(last_request(s, "/kcs/v1/kme/devices/unassignProfile").body)
      assert.are.same({ a, b }, body.deviceIds)
    end)

    it("marks a chunk refused wholesale as failed, and a 5xx as unknown, never re-sending a write", function()
      local c <close> = keys_client { max_attempts = 3 }
      local page = c.kme:list_devices { pageSize = 6 }.deviceList
      local ids = {}
      for i, d in ipairs(page) do ids[i] = d.imei or d.mei end
      s:fault { match = { path = "/kcs/v1/kme/devices/unassignProfile" }, status = 500, times = 1 }
      s:fault { match = { path = "/kcs/v1/kme/devices/unassignProfile" }, status = 400, times = 1,
        code = 4000000 }
      local before = #s:requests { path = "/kcs/v1/kme/devices/unassignProfile" }
      local r = c.kme:unassign_profile({ devices = ids }, { chunk_size = 2, concurrency = 1 })
      local after = #s:requests { path = "/kcs/v1/kme/devices/unassignProfile" }
      assert.are.equal(3, after - before, "one request a chunk, the 500 not repeated")
      assert.are.same({ 2, 2, 2 }, { #r.ok, #r.failed, #r.unknown })
      assert.are.equal(500, r.reasons[r.unknown[1]].status)
      assert.are.equal(400, r.failed[1].error.status)
      local all = {}
      for _, id in ipairs(r.ok) do all[#all + 1] = id end
      for _, f in ipairs(r.failed) do all[#all + 1] = f.id end
      for _, id in ipairs(r.unknown) do all[#all + 1] = id end
      table.sort(all)
      table.sort(ids)
      assert.are.same(ids, all)
      -- a bulk limit from the client's options
      local c2 <close> = keys_client { bulk_limits = { kme = 1 } }
      r = c2.kme:unassign_profile { devices = ids }
      assert.are.equal(6, r.chunks)
    end)
  end)

  describe("waiters", function()
    it("polls an async profile creation to its end on the client's clock", function()
      local t, slept = 1000, {}
      local c <close> = keys_client { clock = function() return t end,
        sleep = function(d) slept[#slept + 1] = d; t = t + d end }
      local h = c.kme:create_profile_async { profileName = "Waiter " .. os.time() .. math.random(1e6),
        supportEmailAddress = "it@example.com" }
      assert.is_string(h.transactionId)
      local final, state = h:wait { interval = 2 }
      assert.are.equal("Complete", state)
      assert.are.equal(h.transactionId, final.transactionId)
      assert.are.same({ 2 }, slept, "one poll in progress, then done")
    end)

    it("raises kind timeout when the operation does not end in time", function()
      local t = 1000
      local c <close> = keys_client { clock = function() return t end, sleep = function(d) t = t + d end }
      local h = c.kme:create_profile_async { profileName = "Slow " .. os.time() .. math.random(1e6),
        supportEmailAddress = "it@example.com" }
      local e = helpers.raises(h.wait, h, { timeout = 0.5, interval = 1 })
      assert.are.equal("timeout", e.kind)
      assert.matches("InProgress", e.message, 1, true)
    end)
  end)

  describe("KME device users", function()
    it("encrypts userName/userToken for assign_profile unless encrypted = true", function()
      local c <close> = keys_client()
      local profiles = c.kme:list_profiles {}
      local pid = (profiles.profileList or profiles.profiles)[1].profileId
      local page = c.kme:list_devices { pageSize = 1 }.deviceList
      local id = page[1].imei or page[1].mei
      local r = c.kme:assign_profile { profileId = pid, devices = { id }, userName = "alice", userToken = "s3cret" }
      assert.are.same({ id }, r.ok)
      local body = cjson.decode(last_request(s, "/kcs/v1/kme/devices/assignProfile").body)
      assert.is_nil(body.deviceIds)
      assert.are.equal(id, body.devices[1].deviceId)
      assert.is_nil(body.devices[1].userName:find("alice", 1, true))
      assert.are.equal(256, #require("mime").unb64(body.devices[1].userName))
      r = c.kme:assign_profile { profileId = pid, devices = { id }, userName = "alice", encrypted = true }
      assert.are.equal(1, #r.failed)
      assert.are.equal("RSA_DECRYPTION_FAIL", r.failed[1].error.name)
    end)
  end)

  describe("OAuth revoke", function()
    it("revokes the current token; the next call gets a new one", function()
      local c <close> = both_client()
      c.msp:list_customers {}
      local tok1 = last_request(s, "/msp/v1/managedCustomers").headers.authorization
      assert.are.equal(1, c:revoke())
      assert.matches("token=", last_request(s, "/ams/v1/oauth2/revoke").body, 1, true)
      assert.are.equal(401, s:request("GET", "/msp/v1/managedCustomers", { headers = { authorization = tok1 } }).status)
      c.msp:list_customers {}
      assert.are_not.equal(tok1, last_request(s, "/msp/v1/managedCustomers").headers.authorization)
      local c2 <close> = both_client()
      assert.are.equal(0, c2:revoke(), "no token yet: nothing sent")
    end)
  end)

  describe("client options", function()
    it("refuses an unknown option with the nearest name, and a client with no region", function()
      local e = helpers.raises(knox.client, { base_ur = s.url })
      assert.are.equal("usage", e.kind)
      assert.matches("unknown option 'base_ur' to knox.client; did you mean 'base_url'?", e.message, 1, true)
      e = helpers.raises(knox.client, { env = false, auth = knox.auth.token { value = "t" } })
      assert.matches("needs region ('us' or 'eu') or base_url", e.message, 1, true)
    end)

    it("fills what the caller did not say from the environment, explicit options winning", function()
      local config = require "knox.config"
      local env = { KNOX_REGION = "eu", KNOX_TENANT = "T-ENV" }
      local m = config.merge({ auth = knox.auth.token { value = "t" }, tenant = "T-ARG" },
        function(k) return env[k] end)
      assert.are.equal("eu", m.region)
      assert.are.equal("T-ARG", m.tenant)
      m = config.merge({ auth = knox.auth.token { value = "t" } }, function(k) return env[k] end)
      assert.are.equal("T-ENV", m.tenant)
      m = config.merge({ env = false, region = "us", auth = knox.auth.token { value = "t" } },
        function(k) return env[k] end)
      assert.is_nil(m.tenant)
    end)
  end)

  describe("cursor paging", function()
    it("walks Knox Configure v2 devices with searchAfter, each once", function()
      local c <close> = both_client()
      local total = c.kc:get_devices_v2 { pageSize = 1 }.totalCount
      local seen, n, pages = {}, 0, 0
      for d in c.kc:each_device_v2({ pageSize = 100 }, { on_page = function() pages = pages + 1 end }) do
        assert.is_nil(seen[d.id], d.id)
        seen[d.id] = true
        n = n + 1
      end
      assert.are.equal(total, n)
      assert.are.equal(math.ceil(total / 100), pages)
      local sent = s:requests { path = "/kc/v2/devices/getDevices" }
      assert.is_not_nil(cjson.decode(sent[#sent].body).searchAfter, "later pages send the cursor")
    end)
  end)

  describe("paging", function()
    it("walks every managed customer with a per-page hook", function()
      local c <close> = both_client()
      local calls, n = {}, 0
      for _ in c.msp:each_customer({ pageSize = 2 }, { on_page = function(so_far, total)
        calls[#calls + 1] = { so_far, total }
      end }) do n = n + 1 end
      assert.is_true(n >= 1)
      assert.are.equal(n, calls[#calls][1])
      assert.are.equal(n, calls[#calls][2])
    end)
  end)
end)
