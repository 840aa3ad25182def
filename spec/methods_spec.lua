-- Every method of every service in the registry against the simulator
-- (issue 11, "Tests"): once succeeding and once with a documented Knox
-- failure, asserting what the simulator received (/__sim/requests: method,
-- path, query or JSON body) and the normalized result (the decoded body,
-- a bulk result's ok/failed/unknown, an async handle's :wait()).
--
-- One table entry per method (CASES.<service>.<method> = { ok =, fail = });
-- the first test fails when a registry method has no entry, so a row added
-- without a case here is caught. Each case gets a fresh simulator state
-- (s:reset()) and fresh clients whose clock and sleep the spec controls
-- (a sleep also moves the simulator's clock).
local sim = require "support.sim"
local helpers = require "helpers"
local cjson = require "cjson"

local knox = require "knox"
local services = require "knox.services"

local DEVICES = 40

-- a valid IMEI (Luhn) from 14 digits; 99... is no tenant's prefix, so
-- the simulator knows none of these
local imei = require("helpers").imei
local UNKNOWN = imei "99000000000017"

local function unescape(v)
  return (v:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- A query string as a table; a repeated key gives a list.
local function parse_query(q)
  local out = {}
  for pair in (q or ""):gmatch "[^&]+" do
    local k, v = pair:match "^([^=]*)=?(.*)$"
    k, v = unescape(k), unescape(v)
    if out[k] == nil then out[k] = v
    elseif type(out[k]) == "table" then table.insert(out[k], v)
    else out[k] = { out[k], v } end
  end
  return out
end

local function contains(list, x)
  for _, v in ipairs(list or {}) do if v == x then return true end end
  return false
end

local function sorted(list)
  local t = table.move(list, 1, #list, 1, {})
  table.sort(t)
  return t
end

describe("every registry method against the simulator", function()
  local s
  local T = {}   -- per case: clients, the controlled time, helpers

  lazy_setup(function()
    s = sim.start { devices = DEVICES }
  end)
  lazy_teardown(function() if s then s:stop() end end)

  local function limits(body)
    local r = s:request("POST", "/__sim/limits", { body = body })
    assert(r.status == 200, r.body)
  end

  local function client(kind)
    local keys = knox.auth.keys { file = s.keys_file, client_id = s.client_id }
    local oauth = knox.auth.oauth2 { client_id = s.oauth.client_id, client_secret = s.oauth.client_secret,
      scope = s.oauth.scope }
    local auth = kind == "keys" and keys or kind == "oauth" and oauth or { keys, oauth }
    return knox.client { base_url = s.url, env = false, auth = auth, max_attempts = 1,
      clock = function() return T.now end,
      sleep = function(d)
        T.slept[#T.slept + 1] = d
        T.now = T.now + d
        s:clock(d)
      end }
  end

  before_each(function()
    s:reset()
    T.now, T.slept = require("knox.core").now(), {}
    T.K, T.O = client("keys"), client("oauth")
  end)

  after_each(function()
    T.K:close()
    T.O:close()
    -- bulk limits and the rate limiter outlive s:reset(): back to defaults
    limits { bulk = { kme = 1000, kg = 10000, kdp = 10000, kc = 1000 }, rate = 0 }
  end)

  ---------------------------------------------------------------------------
  -- What the simulator received

  -- The requests to exactly this path (the log's path filter is a Lua
  -- pattern found anywhere: escaped and anchored here).
  local function log_of(path)
    return s:requests { path = "^" .. path:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0") .. "$" }
  end

  -- The last request to exactly this path; asserts its method. Returns the
  -- entry with .q (parsed query) and .json (decoded body).
  local function sent(method, path)
    local list = log_of(path)
    local e = list[#list]
    assert(e, "nothing was sent to " .. path)
    assert.are.equal(method, e.method, path)
    assert.are.equal(path, e.path)
    e.q = parse_query(e.query)
    if e.body and e.body ~= "" then e.json = cjson.decode(e.body) end
    return e
  end

  -- Asserts a knox.Error raised by fn(...) and returns it.
  local function fails(want, fn, ...)
    local e = helpers.raises(fn, ...)
    for k, v in pairs(want) do
      assert.are.equal(v, e[k], ("%s: want %s, got %s (%s)"):format(k, tostring(v), tostring(e[k]), tostring(e)))
    end
    return e
  end

  local function api(service, status, code, name)
    return { kind = "api", service = service, status = status, code = code, name = name }
  end

  -- A bulk result in which every id took, in order.
  local function all_ok(r, ids)
    assert.are.same(ids, r.ok)
    assert.are.same({}, r.failed)
    assert.are.same({}, r.unknown)
    assert.are.equal(#ids, r.total)
  end

  -- A bulk result in which every id failed with name.
  local function all_failed(r, ids, name, service)
    assert.are.equal(#ids, r.total)
    assert.are.same({}, r.ok)
    assert.are.same({}, r.unknown)
    local got = {}
    for i, f in ipairs(r.failed) do
      got[i] = f.id
      assert.is_true(knox.is_error(f.error))
      assert.are.equal(name, f.error.name)
      if service then assert.are.equal(service, f.error.service) end
    end
    assert.are.same(sorted(ids), sorted(got))
  end

  -- The nearest documented failure for a method the simulator has no
  -- failure of its own for: the rate limiter's 429 (Knox Configure
  -- documents 10 requests a second, MSP a 429 on every endpoint since
  -- 26.06). One token a bucket: the first call passes, the second is 429.
  local function rate_limited(service, fn)
    limits { rate = 0.001, burst = 1 }
    fn()
    local e = fails({ kind = "api", status = 429, service = service }, fn)
    assert.is_true(e.retryable)
    assert.is_true(e.retry_after >= 1)
    limits { rate = 0 }
    return e
  end

  ---------------------------------------------------------------------------
  -- Discovery (through the clients: each call is itself a covered method)

  local function kme_devices(n)
    local page = T.K.kme:list_devices { pageSize = n }.deviceList
    local ids = {}
    for i, d in ipairs(page) do ids[i] = d.mei end
    return ids, page
  end

  local function kme_profile()
    return T.K.kme:list_profiles {}.profileList[1]
  end

  local function kg_devices(status, n)
    local list = T.K.kg:list_devices { status = status, pageSize = n or 1 }.deviceList
    assert.is_true(#list >= (n or 1), "the simulator has " .. status .. " devices")
    return list
  end

  local function tenant(mgmt)
    for _, t in ipairs(s.info.tenants) do
      if t.managementType == mgmt then return t.customerId end
    end
    error("no " .. mgmt .. " tenant")
  end

  local function kc_devices(n)
    local ids, page = {}, T.K.kc:list_devices { pageSize = n }.deviceList
    for i, d in ipairs(page) do ids[i] = d.deviceUId end
    return ids, page
  end

  local function kc_setup()
    local profiles = T.K.kc:list_profiles {}.contents
    local licenses = T.K.kc:list_licenses {}.licenses
    return profiles, licenses
  end

  ---------------------------------------------------------------------------
  -- The cases

  local CASES = {}

  CASES.kme = {
    list_devices = {
      ok = function()
        local r = T.K.kme:list_devices { pageNum = 0, pageSize = 5, customerId = s.customer_id }
        local q = sent("GET", "/kcs/v1/kme/devices/list").q
        assert.are.same({ pageNum = "0", pageSize = "5", customerId = s.customer_id }, q)
        assert.are.equal(DEVICES, r.totalCount)
        assert.are.equal(5, #r.deviceList)
        assert.is_string(r.deviceList[1].mei)
      end,
      fail = function()
        fails(api("kme", 400, 4000904, "TENANT_MISMATCH"), T.K.kme.list_devices, T.K.kme, { customerId = "nope" })
        assert.are.equal("nope", sent("GET", "/kcs/v1/kme/devices/list").q.customerId)
      end,
    },
    assign_profile = {
      ok = function()
        local p, ids = kme_profile(), kme_devices(2)
        local r = T.K.kme:assign_profile { profileId = p.profileId, devices = ids }
        local b = sent("PUT", "/kcs/v1/kme/devices/assignProfile").json
        assert.are.same({ profileId = p.profileId, deviceIds = ids }, b)
        all_ok(r, ids)
        assert.are.same({}, r.failed)
        assert.are.equal(2, r.responses[1].totalCount)
      end,
      fail = function()
        local ids = kme_devices(2)
        local r = T.K.kme:assign_profile { profileId = "no-such-profile", devices = ids }
        assert.are.equal("no-such-profile", sent("PUT", "/kcs/v1/kme/devices/assignProfile").json.profileId)
        all_failed(r, ids, "PROFILE_NOT_FOUND", "kme")
        assert.are.equal(404, r.failed[1].error.status)
      end,
    },
    unassign_profile = {
      ok = function()
        local ids = kme_devices(3)
        local r = T.K.kme:unassign_profile { devices = ids }
        assert.are.same({ deviceIds = ids }, sent("PUT", "/kcs/v1/kme/devices/unassignProfile").json)
        all_ok(r, ids)
        assert.are.equal(3, r.responses[1].totalCount)
      end,
      fail = function()
        -- all or nothing in v1: the unknown device is named (404
        -- DEVICE_NOT_FOUND, notFoundDeviceList), the rest sent again
        local ids = kme_devices(1)
        local r = T.K.kme:unassign_profile { devices = { ids[1], UNKNOWN } }
        assert.are.same({ ids[1] }, r.ok)
        assert.are.equal(1, #r.failed)
        assert.are.equal(UNKNOWN, r.failed[1].id)
        assert.are.equal("DEVICE_NOT_FOUND", r.failed[1].error.name)
        assert.are.equal(4040300, r.failed[1].error.code)
        assert.are.same({ deviceIds = { ids[1] } }, sent("PUT", "/kcs/v1/kme/devices/unassignProfile").json)
      end,
    },
    unassign_profile_v2 = {
      ok = function()
        local ids, page = kme_devices(2)
        -- v2 also takes the Get-Devices id
        local r = T.K.kme:unassign_profile_v2 { devices = { ids[1], page[2].id } }
        assert.are.same({ deviceIds = { ids[1], page[2].id } },
          sent("PUT", "/kcs/v2/kme/devices/unassignProfile").json)
        all_ok(r, { ids[1], page[2].id })
        assert.are.same({ ids[1], page[2].id }, r.responses[1].validDeviceList)
      end,
      fail = function()
        local ids = kme_devices(1)
        local r = T.K.kme:unassign_profile_v2 { devices = { ids[1], UNKNOWN } }
        assert.are.same({ deviceIds = { ids[1], UNKNOWN } }, sent("PUT", "/kcs/v2/kme/devices/unassignProfile").json)
        assert.are.same({ ids[1] }, r.ok)
        assert.are.equal(UNKNOWN, r.failed[1].id)
        assert.are.equal("DEVICE_NOT_FOUND", r.failed[1].error.name)
      end,
    },
    delete_devices = {
      ok = function()
        local ids = kme_devices(2)
        local r = T.K.kme:delete_devices { devices = ids }
        assert.are.same({ devices = { imeiOrSerials = ids } }, sent("POST", "/kcs/v1/kme/devices/delete").json)
        all_ok(r, ids)
        assert.are.same(ids, r.responses[1].successDeviceList)
        assert.are.equal(DEVICES - 2, T.K.kme:list_devices { pageSize = 1 }.totalCount)
      end,
      fail = function()
        local r = T.K.kme:delete_devices { devices = { UNKNOWN } }
        assert.are.same({ UNKNOWN }, sent("POST", "/kcs/v1/kme/devices/delete").json.devices.imeiOrSerials)
        all_failed(r, { UNKNOWN }, "DEVICE_NOT_FOUND", "kme")
      end,
    },
    list_uploads = {
      ok = function()
        local r = T.K.kme:list_uploads { pageSize = 10 }
        assert.are.same({ pageSize = "10" }, sent("GET", "/kcs/v1/kme/devices/uploads/list").q)
        assert.are.equal(1, r.totalCount, "40 generated devices: one upload of 100")
        assert.are.equal("Approved", r.uploadList[1].status)
      end,
      fail = function()
        fails(api("kme", 400, 4000904, "TENANT_MISMATCH"), T.K.kme.list_uploads, T.K.kme, { customerId = "1" })
        assert.are.equal("1", sent("GET", "/kcs/v1/kme/devices/uploads/list").q.customerId)
      end,
    },
    approve_uploads = {
      ok = function()
        -- a KDP upload to the account's own customer waits for approval
        T.K.kdp:upload_devices { resellerId = s.reseller_id, customerId = s.customer_id,
          devices = { imei "35000000000105" }, transactionId = "up1" }
        local pending
        for _, u in ipairs(T.K.kme:list_uploads {}.uploadList) do
          if u.status == "Pending" then pending = u.uploadId end
        end
        assert.is_string(pending)
        local r = T.K.kme:approve_uploads { uploadIds = { pending } }
        assert.are.same({ uploadIds = { pending }, action = "APPROVE" },
          sent("POST", "/kcs/v1/kme/devices/uploads/approvals").json)
        assert.are.same({ pending }, r.successUploadList)
        assert.are.same({}, r.failedUploadList)
      end,
      fail = function()
        -- more uploads than the bulk limit: 4000019 TOO_MANY_DEVICES
        limits { bulk = { kme = 1 } }
        local up = T.K.kme:list_uploads {}.uploadList[1].uploadId
        fails(api("kme", 400, 4000019, "TOO_MANY_DEVICES"), T.K.kme.approve_uploads, T.K.kme,
          { uploadIds = { up, "other" }, action = "REJECT" })
        assert.are.same({ uploadIds = { up, "other" }, action = "REJECT" },
          sent("POST", "/kcs/v1/kme/devices/uploads/approvals").json)
      end,
    },
    list_profiles = {
      ok = function()
        local r = T.K.kme:list_profiles { search = "kiosk" }
        assert.are.same({ search = "kiosk" }, sent("GET", "/kcs/v1/kme/profiles/list").q)
        assert.are.equal(1, r.totalCount)
        assert.are.equal("Kiosk", r.profileList[1].profileName)
      end,
      fail = function()
        fails(api("kme", 400, 4000904, "TENANT_MISMATCH"), T.K.kme.list_profiles, T.K.kme, { customerId = "x" })
        assert.are.equal("x", sent("GET", "/kcs/v1/kme/profiles/list").q.customerId)
      end,
    },
    get_profile = {
      ok = function()
        local p = kme_profile()
        local r = T.K.kme:get_profile { profileId = p.profileId }
        sent("GET", "/kcs/v1/kme/profiles/" .. p.profileId .. "/get")
        assert.are.equal(p.profileId, r.profileId)
        assert.are.equal(p.profileName, r.profileName)
      end,
      fail = function()
        fails(api("kme", 404, 4040400, "PROFILE_NOT_FOUND"), T.K.kme.get_profile, T.K.kme, { profileId = "nope" })
        sent("GET", "/kcs/v1/kme/profiles/nope/get")
      end,
    },
    create_profile = {
      ok = function()
        local r = T.K.kme:create_profile { profileName = "Spec profile", description = "made by the spec",
          doEnabled = false, supportEmailAddress = "it@example.com", mdmApkUrl = "https://mdm.example/a.apk" }
        assert.are.same({ profileName = "Spec profile", description = "made by the spec", doEnabled = false,
          supportEmailAddress = "it@example.com", mdmApkUrl = "https://mdm.example/a.apk" },
          sent("POST", "/kcs/v1/kme/profiles/create").json)
        assert.is_string(r.profileId)
        assert.are.equal("made by the spec", T.K.kme:get_profile { profileId = r.profileId }.description)
      end,
      fail = function()
        local name = kme_profile().profileName
        fails(api("kme", 409, 4091700, "BULK_ENROLL_PROFILE_NAME_CONFLICT"), T.K.kme.create_profile, T.K.kme,
          { profileName = name })
        assert.are.equal(name, sent("POST", "/kcs/v1/kme/profiles/create").json.profileName)
      end,
    },
    create_profile_async = {
      ok = function()
        local h = T.K.kme:create_profile_async { profileName = "Async spec", transactionId = "tx42",
          supportEmailAddress = "it@example.com" }
        assert.are.same({ profileName = "Async spec", transactionId = "tx42", supportEmailAddress = "it@example.com" },
          sent("POST", "/kcs/v1/kme/profiles/createAsync").json)
        assert.are.equal("tx42", h.transactionId)
        assert.are.equal("InProgress", h.state)
        local final, state = h:wait { interval = 2 }
        assert.are.equal("Complete", state)
        assert.are.equal("Async spec", final.profileName)
        assert.are.same({ 2 }, T.slept)
        assert.are.equal("tx42", sent("GET", "/kcs/v1/kme/profiles/status").q.transactionId)
      end,
      fail = function()
        local name = kme_profile().profileName
        fails(api("kme", 409, 4091700, "BULK_ENROLL_PROFILE_NAME_CONFLICT"), T.K.kme.create_profile_async,
          T.K.kme, { profileName = name, transactionId = "tx43" })
        assert.are.equal("tx43", sent("POST", "/kcs/v1/kme/profiles/createAsync").json.transactionId)
      end,
    },
    profile_status = {
      ok = function()
        T.K.kme:create_profile_async { profileName = "Status spec", transactionId = "tx7" }
        local r = T.K.kme:profile_status { transactionId = "tx7", pageSize = 10 }
        assert.are.same({ transactionId = "tx7", pageSize = "10" }, sent("GET", "/kcs/v1/kme/profiles/status").q)
        assert.are.equal(1, r.profiles.totalCount)
        assert.are.equal("tx7", r.profiles.transactions[1].transactionId)
        assert.are.equal("InProgress", r.profiles.transactions[1].state)
      end,
      fail = function()
        fails(api("kme", 400, 4000904, "TENANT_MISMATCH"), T.K.kme.profile_status, T.K.kme, { customerId = "x" })
        assert.are.equal("x", sent("GET", "/kcs/v1/kme/profiles/status").q.customerId)
      end,
    },
    update_profile = {
      ok = function()
        local p = kme_profile()
        local r = T.K.kme:update_profile { profileId = p.profileId, profileName = "Renamed", skipSetupWizard = true }
        assert.are.same({ profileName = "Renamed", skipSetupWizard = true },
          sent("PUT", "/kcs/v1/kme/profiles/" .. p.profileId).json)
        assert.are.equal("Renamed", r.profileName)
        assert.is_true(r.skipSetupWizard)
      end,
      fail = function()
        fails(api("kme", 404, 4040400, "PROFILE_NOT_FOUND"), T.K.kme.update_profile, T.K.kme,
          { profileId = "gone", profileName = "x" })
        sent("PUT", "/kcs/v1/kme/profiles/gone")
      end,
    },
    delete_profile = {
      ok = function()
        local p = T.K.kme:create_profile { profileName = "Short lived" }
        local r = T.K.kme:delete_profile { profileId = p.profileId, customerId = s.customer_id }
        assert.are.same({ customerId = s.customer_id }, sent("DELETE", "/kcs/v1/kme/profiles/" .. p.profileId).q)
        assert.are.equal(p.profileId, r.profileId)
        fails({ name = "PROFILE_NOT_FOUND" }, T.K.kme.get_profile, T.K.kme, { profileId = p.profileId })
      end,
      fail = function()
        -- a profile still assigned to devices is refused
        local p = kme_profile()
        fails(api("kme", 400, 4001700, "BULK_ENROLL_PROFILE_INVALID"), T.K.kme.delete_profile, T.K.kme,
          { profileId = p.profileId })
        sent("DELETE", "/kcs/v1/kme/profiles/" .. p.profileId)
      end,
    },
    approve_reseller = {
      ok = function()
        local rid = s.info.pending_reseller_id
        local r = T.K.kme:approve_reseller { resellerIds = rid }
        assert.are.same({ resellerIds = { rid }, action = "APPROVE" },
          sent("POST", "/kcs/v1/kme/reseller/approvals").json)
        assert.are.same({ rid }, r.successResellerList)
        assert.are.same({}, r.notFoundResellerList)
      end,
      fail = function()
        fails(api("kme", 400, 4000904, "TENANT_MISMATCH"), T.K.kme.approve_reseller, T.K.kme,
          { resellerIds = { s.info.pending_reseller_id }, action = "REJECT", customerId = "x" })
        assert.are.equal("x", sent("POST", "/kcs/v1/kme/reseller/approvals").json.customerId)
      end,
    },
    create_profile_alias = {
      ok = function()
        local p = kme_profile()
        local r = T.K.kme:create_profile_alias { profileId = p.profileId, profileAlias = "kiosk-fleet",
          resellerId = s.reseller_id }
        assert.are.same({ profileId = p.profileId, profileAlias = "kiosk-fleet", resellerId = s.reseller_id },
          sent("POST", "/kcs/v1/kme/reseller/profilealias").json)
        assert.is_string(r.profileAliasId)
        assert.are.equal("kiosk-fleet", r.profileAlias)
      end,
      fail = function()
        local p = kme_profile()
        local a = { profileId = p.profileId, profileAlias = "twice", resellerId = s.reseller_id }
        T.K.kme:create_profile_alias(a)
        fails(api("kme", 409, 4091700, "BULK_ENROLL_PROFILE_NAME_CONFLICT"), T.K.kme.create_profile_alias, T.K.kme, a)
        assert.are.same(a, sent("POST", "/kcs/v1/kme/reseller/profilealias").json)
      end,
    },
    update_profile_alias = {
      ok = function()
        local p = T.K.kme:list_profiles {}.profileList
        local a = T.K.kme:create_profile_alias { profileId = p[1].profileId, profileAlias = "a1",
          resellerId = s.reseller_id }
        local r = T.K.kme:update_profile_alias { profileAliasId = a.profileAliasId, profileId = p[2].profileId,
          profileAlias = "a2" }
        assert.are.same({ profileId = p[2].profileId, profileAlias = "a2" },
          sent("PUT", "/kcs/v1/kme/reseller/profilealias/" .. a.profileAliasId).json)
        assert.are.equal(p[2].profileId, r.profileId)
        assert.are.equal("a2", r.profileAlias)
      end,
      fail = function()
        fails(api("kme", 404, 4040000, "RESOURCE_NOT_FOUND"), T.K.kme.update_profile_alias, T.K.kme,
          { profileAliasId = "none", profileAlias = "x" })
        sent("PUT", "/kcs/v1/kme/reseller/profilealias/none")
      end,
    },
    delete_profile_alias = {
      ok = function()
        local a = T.K.kme:create_profile_alias { profileId = kme_profile().profileId, profileAlias = "gone",
          resellerId = s.reseller_id }
        local r = T.K.kme:delete_profile_alias { profileAliasId = a.profileAliasId, customerId = s.customer_id }
        assert.are.same({ customerId = s.customer_id },
          sent("DELETE", "/kcs/v1/kme/reseller/profilealias/" .. a.profileAliasId).q)
        assert.are.equal(a.profileAliasId, r.profileAliasId)
        assert.are.same({}, T.K.kdp:list_profile_aliases { resellerId = s.reseller_id,
          customerId = s.customer_id }.profileAliases)
      end,
      fail = function()
        fails(api("kme", 404, 4040000, "RESOURCE_NOT_FOUND"), T.K.kme.delete_profile_alias, T.K.kme,
          { profileAliasId = "none" })
        sent("DELETE", "/kcs/v1/kme/reseller/profilealias/none")
      end,
    },
  }

  ---------------------------------------------------------------------------
  -- Knox Guard: the state rules of lua/knox/sim/kg.lua

  local function kg_single(method, path, from, extra, check)
    return function()
      local d = kg_devices(from)[1]
      local args = { objectId = d.objectId }
      for k, v in pairs(extra or {}) do args[k] = v end
      local r = T.K.kg[method](T.K.kg, args)
      local want = { objectId = d.objectId }
      for k, v in pairs(extra or {}) do want[k] = v end
      assert.are.same(want, sent("POST", path).json)
      assert.are.equal("SUCCESS", r.result)
      assert.are.equal(d.objectId, r.objectId)
      if check then check(d, r) end
    end
  end

  local function kg_state_fail(method, path, from, extra)
    return function()
      local d = kg_devices(from)[1]
      local args = { deviceUid = d.deviceUid }
      for k, v in pairs(extra or {}) do args[k] = v end
      local e = fails(api("kg", 400, 4000310, "DEVICE_STATE_INVALID"), T.K.kg[method], T.K.kg, args)
      assert.matches("state " .. from, e.message, 1, true)
      assert.are.equal(d.deviceUid, sent("POST", path).json.deviceUid)
    end
  end

  local function kg_status(objectId)
    return T.K.kg:get_device { objectId = objectId }.status
  end

  CASES.kg = {
    authorization = {
      ok = function()
        local r = T.K.kg:authorization {}
        local e = sent("GET", "/kcs/v1.1/kg/authorization")
        assert.is_string(e.headers["x-knox-apitoken"])
        assert.are.equal("SUCCESS", r.result)
        assert.are.equal(s.customer_id, r.customerId)
      end,
      fail = function()
        -- no failure of its own: the nearest documented one, a credential
        -- the simulator does not know (the access-token request fails)
        local bad = knox.client { base_url = s.url, env = false, max_attempts = 1,
          auth = knox.auth.keys { file = s.keys_file, client_id = "no-such-client" } }
        local e = fails({ kind = "auth" }, bad.kg.authorization, bad.kg, {})
        assert.is_truthy(e.name)
        bad:close()
        assert.are.same({}, log_of("/kcs/v1.1/kg/authorization"), "the call itself was never sent")
        sent("POST", "/ams/v1/users/accesstoken")
      end,
    },
    list_devices = {
      ok = function()
        local r = T.K.kg:list_devices { pageNum = 1, pageSize = 10, sortOrder = "asc" }
        assert.are.same({ pageNum = 1, pageSize = 10, sortOrder = "asc" },
          sent("POST", "/kcs/v1.1/kg/devices/list").json)
        assert.are.equal(DEVICES, r.totalCount)
        assert.are.equal(10, #r.deviceList)
        assert.are.equal(1, r.pageNum)
      end,
      fail = function()
        -- nothing in the simulator refuses a well-formed list: the nearest
        -- documented failure, the rate limiter's 429
        rate_limited("kg", function() return T.K.kg:list_devices { pageSize = 1 } end)
        assert.are.equal(429, sent("POST", "/kcs/v1.1/kg/devices/list").status)
      end,
    },
    get_device = {
      ok = function()
        local d = kg_devices("Locked")[1]
        local r = T.K.kg:get_device { objectId = d.objectId }
        sent("GET", "/kcs/v1.1/kg/devices/" .. d.objectId)
        assert.are.equal(d.deviceUid, r.deviceUid)
        assert.are.equal("Locked", r.status)
      end,
      fail = function()
        fails(api("kg", 404, 4040300, "DEVICE_NOT_FOUND"), T.K.kg.get_device, T.K.kg, { objectId = "nope" })
        sent("GET", "/kcs/v1.1/kg/devices/nope")
      end,
    },
    upload_devices = {
      ok = function()
        local list = { { deviceUid = imei "35111111111111", approveId = "LOAN-1" } }
        local r = T.K.kg:upload_devices { deviceList = list, autoAccept = true }
        assert.are.same({ deviceList = list, autoAccept = true }, sent("POST", "/kcs/v1.1/kg/devices/uploads").json)
        assert.are.equal(1, r.success)
        assert.are.equal("SUCCESS", r.resultList[1].result)
        assert.are.equal("Accepted", kg_status(r.resultList[1].objectId))
      end,
      fail = function()
        -- 25.11: applySimControl needs a default SIM control policy
        fails(api("kg", 412, 4120000, "PRECONDITION_FAILED_EXCEPTION"), T.K.kg.upload_devices, T.K.kg,
          { deviceList = { { deviceUid = imei "35111111111112" } }, applySimControl = true })
        assert.is_true(sent("POST", "/kcs/v1.1/kg/devices/uploads").json.applySimControl)
      end,
    },
    approve = {
      ok = function()
        local d = kg_devices("Accepted")[1]
        local h = T.K.kg:approve { objectId = d.objectId, approveId = "LOAN-77" }
        assert.are.same({ objectId = d.objectId, approveId = "LOAN-77" },
          sent("POST", "/kcs/v1.1/kg/devices/approve").json)
        assert.are.equal("SUCCESS", h.result)
        -- Activating until the device confirms (60 s on the simulator's
        -- clock, which this client's sleep moves)
        local final, state = h:wait { interval = 30 }
        assert.are.equal("Active", state)
        assert.are.equal("LOAN-77", final.approveId)
        assert.are.same({ 30, 30 }, T.slept, "max_interval 30")
      end,
      fail = kg_state_fail("approve", "/kcs/v1.1/kg/devices/approve", "Active", { approveId = "LOAN-78" }),
    },
    lock = {
      ok = kg_single("lock", "/kcs/v1.1/kg/devices/lock", "Active", { message = "Pay now", tel = "+1555" },
        function(d) assert.are.equal("Locked", kg_status(d.objectId)) end),
      fail = function()
        fails(api("kg", 404, 4040300, "DEVICE_NOT_FOUND"), T.K.kg.lock, T.K.kg, { deviceUid = UNKNOWN })
        assert.are.same({ deviceUid = UNKNOWN }, sent("POST", "/kcs/v1.1/kg/devices/lock").json)
      end,
    },
    unlock = {
      ok = kg_single("unlock", "/kcs/v1.1/kg/devices/unlock", "Locked", nil,
        function(d) assert.are.equal("Active", kg_status(d.objectId)) end),
      fail = kg_state_fail("unlock", "/kcs/v1.1/kg/devices/unlock", "Active"),
    },
    complete = {
      ok = kg_single("complete", "/kcs/v1.1/kg/devices/complete", "Locked", nil,
        function(d) assert.are.equal("Completed", kg_status(d.objectId)) end),
      fail = function()
        fails(api("kg", 404, 4040300, "DEVICE_NOT_FOUND"), T.K.kg.complete, T.K.kg, { approveId = "no-loan" })
        assert.are.same({ approveId = "no-loan" }, sent("POST", "/kcs/v1.1/kg/devices/complete").json)
      end,
    },
    delete = {
      ok = kg_single("delete", "/kcs/v1.1/kg/devices/delete", "Completed", nil, function(d)
        fails({ name = "DEVICE_NOT_FOUND" }, T.K.kg.get_device, T.K.kg, { objectId = d.objectId })
      end),
      -- only rejected or payment-complete devices may be deleted
      fail = kg_state_fail("delete", "/kcs/v1.1/kg/devices/delete", "Active"),
    },
    blink = {
      ok = kg_single("blink", "/kcs/v1.1/kg/devices/blink", "Active", { interval = 30, message = "Reminder",
        timeLimitEnable = true, timeLimit = { 9, 17 }, daysLimit = { 1, 2 } },
        function(d) assert.are.equal("Blinking", kg_status(d.objectId)) end),
      fail = kg_state_fail("blink", "/kcs/v1.1/kg/devices/blink", "Locked", { interval = 30 }),
    },
    send_message = {
      ok = kg_single("send_message", "/kcs/v1.1/kg/devices/sendMessage", "Locked",
        { message = "Hello", enableFullscreen = true }),
      fail = kg_state_fail("send_message", "/kcs/v1.1/kg/devices/sendMessage", "Pending", { message = "Hello" }),
    },
  }

  -- The Async variants: deviceList of IMEIs; per-device resultList.
  local function kg_async(method, path, from, extra, fail_kind)
    local function args_with(devices)
      local a = { devices = devices }
      for k, v in pairs(extra or {}) do a[k] = v end
      return a
    end
    return {
      ok = function()
        local ids = {}
        for i, d in ipairs(kg_devices(from, 2)) do ids[i] = d.deviceUid end
        local r = T.K.kg[method](T.K.kg, args_with(ids))
        local want = args_with(nil)
        want.deviceList = ids
        assert.are.same(want, sent("POST", path).json)
        all_ok(r, ids)
        assert.are.same({}, r.failed)
        assert.are.equal(2, r.responses[1].success)
      end,
      fail = function()
        local ids = { kg_devices(from)[1].deviceUid, UNKNOWN }
        if fail_kind == "limit" then
          -- more devices than Knox Guard's bulk limit: 4000316, every device failed
          limits { bulk = { kg = 1 } }
          local r = T.K.kg[method](T.K.kg, args_with(ids))
          all_failed(r, ids, "DEVICE_BULK_OPERATION_LIMIT_EXCEEDED", "kg")
          assert.are.equal(4000316, r.failed[1].error.code)
        else
          local r = T.K.kg[method](T.K.kg, args_with(ids))
          assert.are.same({ ids[1] }, r.ok)
          assert.are.equal(1, #r.failed)
          assert.are.equal(UNKNOWN, r.failed[1].id)
          assert.are.equal("DEVICE_NOT_FOUND", r.failed[1].error.name)
          assert.are.equal("kg", r.failed[1].error.service)
        end
        assert.are.same(ids, sent("POST", path).json.deviceList)
      end,
    }
  end
  CASES.kg.lock_async = kg_async("lock_async", "/kcs/v1.1/kg/devices/lockAsync", "Active", { message = "Pay" })
  CASES.kg.unlock_async = kg_async("unlock_async", "/kcs/v1.1/kg/devices/unlockAsync", "Locked", nil, "limit")
  CASES.kg.blink_async = kg_async("blink_async", "/kcs/v1.1/kg/devices/blinkAsync", "Active", { interval = 60 },
    "limit")
  CASES.kg.complete_async = kg_async("complete_async", "/kcs/v1.1/kg/devices/completeAsync", "Locked")
  CASES.kg.send_message_async = kg_async("send_message_async", "/kcs/v1.1/kg/devices/sendMessageAsync", "Active",
    { message = "Hi" })

  ---------------------------------------------------------------------------
  -- MSP (OAuth only)

  CASES.msp = {
    list_customers = {
      ok = function()
        local r = T.O.msp:list_customers { pageNum = 0, pageSize = 1, sortOrder = "descending" }
        assert.are.same({ pageNum = "0", pageSize = "1", sortOrder = "descending" },
          sent("GET", "/msp/v1/managedCustomers").q)
        assert.are.equal("2", r.totalCount)
        assert.are.equal(1, #r.customers)
        assert.are.equal("Northwind Traders", r.customers[1].companyName)
      end,
      fail = function()
        -- MSP documents a 429 on every endpoint (26.06)
        rate_limited("msp", function() return T.O.msp:list_customers {} end)
        assert.are.equal(429, sent("GET", "/msp/v1/managedCustomers").status)
      end,
    },
    get_customer = {
      ok = function()
        local id = tenant("JointlyManaged")
        local r = T.O.msp:get_customer { customerId = id }
        sent("GET", "/msp/v1/managedCustomers/" .. id)
        assert.are.equal("Contoso Ltd", r.companyName)
        assert.are.equal("JointlyManaged", r.managementType)
      end,
      fail = function()
        fails(api("msp", 404, 4042100, "CUSTOMER_NOT_FOUND"), T.O.msp.get_customer, T.O.msp, { customerId = "42" })
        sent("GET", "/msp/v1/managedCustomers/42")
      end,
    },
    create_customer = {
      ok = function()
        local a = { companyName = "Spec Corp", email = "admin@spec.example", country = "US", city = "Springfield" }
        local r = T.O.msp:create_customer(a)
        assert.are.same(a, sent("POST", "/msp/v1/managedCustomers").json)
        assert.is_string(r.customerId)
        assert.are.equal("FullyManaged", r.managementType)
        assert.are.equal("3", T.O.msp:list_customers {}.totalCount)
      end,
      fail = function()
        local a = { companyName = "Twice Corp", email = "twice@spec.example", country = "US" }
        T.O.msp:create_customer(a)
        fails(api("msp", 400, 4002106, "EMAIL_ALREADY_IN_USAGE"), T.O.msp.create_customer, T.O.msp, a)
        assert.are.same(a, sent("POST", "/msp/v1/managedCustomers").json)
      end,
    },
    link_customer = {
      ok = function()
        local cand
        for _, c in ipairs(s.info.msp_link_candidates) do if c.link == "ok" then cand = c end end
        local r = T.O.msp:link_customer { customerId = cand.customerId }
        assert.are.same({ customerId = cand.customerId }, sent("POST", "/msp/v1/managedCustomers/link").json)
        assert.are.equal(cand.customerId, r.customerId)
        assert.are.equal("JointlyManaged", r.managementType)
      end,
      fail = function()
        local cand
        for _, c in ipairs(s.info.msp_link_candidates) do if c.link == "not_approved" then cand = c end end
        fails(api("msp", 400, 4002101, "ADD_EC_CUSTOMER_NOT_APPROVED"), T.O.msp.link_customer, T.O.msp,
          { customerId = cand.customerId })
        assert.are.same({ customerId = cand.customerId }, sent("POST", "/msp/v1/managedCustomers/link").json)
      end,
    },
    delink_customer = {
      ok = function()
        local id = tenant("JointlyManaged")
        local r = T.O.msp:delink_customer { customerId = id }
        assert.are.same({ customerId = id }, sent("POST", "/msp/v1/managedCustomers/delink").json)
        assert.are.equal("DelinkPending", r.status)
      end,
      fail = function()
        local id = tenant("FullyManaged")
        fails(api("msp", 400, 4002112, "CANNOT_DELINK_FULLY_MANAGED"), T.O.msp.delink_customer, T.O.msp,
          { customerId = id })
        assert.are.same({ customerId = id }, sent("POST", "/msp/v1/managedCustomers/delink").json)
      end,
    },
    update_customer = {
      ok = function()
        local id = tenant("FullyManaged")
        local r = T.O.msp:update_customer { customerId = id, city = "Springfield", zipCode = "12345" }
        assert.are.same({ city = "Springfield", zipCode = "12345" },
          sent("PUT", "/msp/v1/managedCustomers/" .. id).json)
        assert.are.equal("Springfield", r.city)
        assert.are.equal("12345", r.zipCode)
      end,
      fail = function()
        local id = tenant("JointlyManaged")
        fails(api("msp", 400, 4002117, "CANNOT_UPDATE_FROM_JOINTLY_TO_FULLY"), T.O.msp.update_customer, T.O.msp,
          { customerId = id, managementType = "FullyManaged" })
        assert.are.same({ managementType = "FullyManaged" }, sent("PUT", "/msp/v1/managedCustomers/" .. id).json)
      end,
    },
    list_profiles = {
      ok = function()
        local a, b = tenant("FullyManaged"), tenant("JointlyManaged")
        local r = T.O.msp:list_profiles { customerIds = { a, b } }
        assert.are.same({ customerIds = a .. "," .. b }, sent("GET", "/msp/v1/profiles").q)
        assert.is_true(#r.profiles >= 2)
        for _, p in ipairs(r.profiles) do assert.is_true(p.customerId == a or p.customerId == b) end
        assert.are.equal(tostring(#r.profiles), r.totalCount)
      end,
      fail = function()
        rate_limited("msp", function() return T.O.msp:list_profiles {} end)
        assert.are.equal(429, sent("GET", "/msp/v1/profiles").status)
      end,
    },
    copy_profiles = {
      ok = function()
        local src, to = kme_profile(), tenant("FullyManaged")
        local r = T.O.msp:copy_profiles { sourceProfileId = src.profileId, targetCustomerIds = { to },
          profileName = "Copied" }
        assert.are.same({ sourceProfileId = src.profileId, targetCustomerIds = { to }, profileName = "Copied" },
          sent("POST", "/msp/v1/profiles/copy").json)
        assert.are.equal("SUCCESS", r.results[1].result)
        assert.are.equal(to, r.results[1].customerId)
        local names = {}
        for _, p in ipairs(T.O.msp:list_profiles { customerIds = to }.profiles) do names[#names + 1] = p.profileName end
        assert.is_true(contains(names, "Copied"))
      end,
      fail = function()
        fails(api("msp", 404, 4040000, "RESOURCE_NOT_FOUND"), T.O.msp.copy_profiles, T.O.msp,
          { sourceProfileId = "none", targetCustomerIds = { tenant("FullyManaged") } })
        assert.are.equal("none", sent("POST", "/msp/v1/profiles/copy").json.sourceProfileId)
      end,
    },
    overwrite_profiles = {
      ok = function()
        local src, to = kme_profile(), tenant("FullyManaged")
        local child = T.O.msp:list_profiles { customerIds = to }.profiles[1]
        local targets = { { customerId = to, profileId = child.profileId } }
        local r = T.O.msp:overwrite_profiles { sourceProfileId = src.profileId, targets = targets }
        assert.are.same({ sourceProfileId = src.profileId, targets = targets },
          sent("POST", "/msp/v1/profiles/overwrite").json)
        assert.are.same({ { customerId = to, profileId = child.profileId, result = "SUCCESS" } }, r.results)
      end,
      fail = function()
        local targets = { { customerId = tenant("FullyManaged"), profileId = "p" } }
        fails(api("msp", 404, 4040000, "RESOURCE_NOT_FOUND"), T.O.msp.overwrite_profiles, T.O.msp,
          { sourceProfileId = "none", targets = targets })
        assert.are.same(targets, sent("POST", "/msp/v1/profiles/overwrite").json.targets)
      end,
    },
  }

  ---------------------------------------------------------------------------
  -- KDP (the reseller's calls; legacy credentials)

  local function kdp_base(extra)
    local a = { resellerId = s.reseller_id, customerId = s.customer_id }
    for k, v in pairs(extra or {}) do a[k] = v end
    return a
  end

  CASES.kdp = {
    upload_devices = {
      ok = function()
        local ids = { imei "35222222222221", imei "35222222222222" }
        local r = T.K.kdp:upload_devices(kdp_base { devices = ids, transactionId = "upA", orderNo = "PO-1" })
        assert.are.same(kdp_base { devices = ids, transactionId = "upA", orderNo = "PO-1", type = "IMEI" },
          sent("PUT", "/kcs/v1/rp/devices/upload").json)
        all_ok(r, ids)
        assert.are.equal("upA", r.responses[1].transactionId)
        local finals = r:wait { interval = 1 }
        assert.are.equal(1, #finals)
        assert.are.equal("Complete", finals[1].state)
        assert.are.same({}, finals[1].devices)
      end,
      fail = function()
        -- a transactionId used before: 40000014 TRANSACTION_ID_DUPLICATE
        local a = kdp_base { devices = { imei "35222222222223" }, transactionId = "dup1" }
        T.K.kdp:upload_devices(a)
        local r = T.K.kdp:upload_devices(kdp_base { devices = { imei "35222222222224" }, transactionId = "dup1" })
        all_failed(r, { imei "35222222222224" }, "TRANSACTION_ID_DUPLICATE", "kdp")
        assert.are.equal(40000014, r.failed[1].error.code)
        assert.are.equal("dup1", sent("PUT", "/kcs/v1/rp/devices/upload").json.transactionId)
      end,
    },
    delete_devices = {
      ok = function()
        local dev = T.K.kdp:list_devices { resellerId = s.reseller_id, pageSize = 1 }.devices[1]
        local r = T.K.kdp:delete_devices(kdp_base { devices = { dev.mei }, transactionId = "delA" })
        assert.are.same(kdp_base { devices = { dev.mei }, transactionId = "delA", type = "IMEI" },
          sent("PUT", "/kcs/v1/rp/devices/delete").json)
        all_ok(r, { dev.mei })
        local finals = r:wait()
        assert.are.equal("Complete", finals[1].state)
        assert.are.equal(DEVICES - 1, T.K.kdp:list_devices { resellerId = s.reseller_id }.totalCount)
      end,
      fail = function()
        -- more devices than KDP's bulk limit: 40000003 DEVICE_COUNT_EXCEEDED
        limits { bulk = { kdp = 1 } }
        local ids = { imei "35222222222225", imei "35222222222226" }
        local r = T.K.kdp:delete_devices(kdp_base { devices = ids, transactionId = "delB" })
        all_failed(r, ids, "DEVICE_COUNT_EXCEEDED", "kdp")
        assert.are.same(ids, sent("PUT", "/kcs/v1/rp/devices/delete").json.devices)
      end,
    },
    device_status = {
      ok = function()
        T.K.kdp:upload_devices(kdp_base { devices = { imei "35222222222227", "not-an-imei" }, transactionId = "stA" })
        local r = T.K.kdp:device_status { resellerId = s.reseller_id, transactionId = "stA" }
        assert.are.same({ resellerId = s.reseller_id, transactionId = "stA" },
          sent("GET", "/kcs/v1/rp/devices/status").q)
        assert.are.equal("stA", r.transactionId)
        assert.are.equal("InProgress", r.state)
        assert.are.equal("DEVICE_INVALID", r.devices[1].message)
      end,
      fail = function()
        fails(api("kdp", 404, 40400001, "RESELLER_NOT_FOUND"), T.K.kdp.device_status, T.K.kdp,
          { resellerId = "RS0", transactionId = "x" })
        assert.are.equal("RS0", sent("GET", "/kcs/v1/rp/devices/status").q.resellerId)
      end,
    },
    list_devices = {
      ok = function()
        local r = T.K.kdp:list_devices { resellerId = s.reseller_id, customerId = s.customer_id, pageSize = 5 }
        assert.are.same({ resellerId = s.reseller_id, customerId = s.customer_id, pageSize = "5" },
          sent("GET", "/kcs/v1/rp/devices").q)
        assert.are.equal("2000000", r.code)
        assert.are.equal(DEVICES, r.totalCount)
        assert.are.equal(5, #r.devices)
      end,
      fail = function()
        fails(api("kdp", 400, 40000011, "CUSTOMER_ID_INVALID"), T.K.kdp.list_devices, T.K.kdp,
          { resellerId = s.reseller_id, customerId = "C0" })
        assert.are.equal("C0", sent("GET", "/kcs/v1/rp/devices").q.customerId)
      end,
    },
    list_customers = {
      ok = function()
        local r = T.K.kdp:list_customers { resellerId = s.reseller_id, pageSize = 50 }
        assert.are.same({ resellerId = s.reseller_id, pageSize = "50" }, sent("GET", "/kcs/v1/rp/customers/list").q)
        local ids = {}
        for i, c in ipairs(r.customers) do ids[i] = c.customerId end
        assert.is_true(contains(ids, s.customer_id))
        assert.are.equal(#r.customers, r.totalCount)
      end,
      fail = function()
        fails(api("kdp", 404, 40400001, "RESELLER_NOT_FOUND"), T.K.kdp.list_customers, T.K.kdp, { resellerId = "RS0" })
        assert.are.equal("RS0", sent("GET", "/kcs/v1/rp/customers/list").q.resellerId)
      end,
    },
    list_profile_aliases = {
      ok = function()
        local p = kme_profile()
        T.K.kme:create_profile_alias { profileId = p.profileId, profileAlias = "for-kdp", resellerId = s.reseller_id }
        local r = T.K.kdp:list_profile_aliases { resellerId = s.reseller_id, customerId = s.customer_id }
        local e = sent("GET", "/kcs/v1/rp/profilealias/kme")
        assert.are.equal(s.reseller_id, e.headers.resellerid)
        assert.are.equal(s.customer_id, e.headers.customerid)
        assert.are.equal("", e.query)
        assert.are.equal(1, #r.profileAliases)
        assert.are.equal("for-kdp", r.profileAliases[1].profileAlias)
        assert.are.equal(p.profileId, r.profileAliases[1].profileId)
      end,
      fail = function()
        fails(api("kdp", 400, 40000011, "CUSTOMER_ID_INVALID"), T.K.kdp.list_profile_aliases, T.K.kdp,
          { resellerId = s.reseller_id, customerId = "C0" })
        assert.are.equal("C0", sent("GET", "/kcs/v1/rp/profilealias/kme").headers.customerid)
      end,
    },
  }

  ---------------------------------------------------------------------------
  -- Knox Configure v1 (legacy) and v2 (OAuth)

  local function kc_none(method, path, verb, extra)
    -- none of the devices known: 404 40400005 DEVICES_NOT_FOUND, all failed
    return function()
      local a = { devices = { UNKNOWN } }
      for k, v in pairs(extra or {}) do a[k] = v end
      local r = T.K.kc[method](T.K.kc, a)
      all_failed(r, { UNKNOWN }, "DEVICES_NOT_FOUND", "kc")
      assert.are.equal(404, r.failed[1].error.status)
      local e = sent(verb, path)
      if verb == "DELETE" then assert.are.equal(UNKNOWN, e.q.deviceIds) else
        assert.are.same({ UNKNOWN }, e.json.deviceIds) end
    end
  end

  -- A v2 bulk call: per-device failedDeviceList entries.
  local function kc2_unknown(method, path, extra)
    return function()
      local ids = kc_devices(1)
      local a = { devices = { ids[1], UNKNOWN } }
      for k, v in pairs(extra or {}) do a[k] = v end
      local r = T.O.kc[method](T.O.kc, a)
      assert.are.same({ ids[1], UNKNOWN }, sent("POST", path).json.deviceIds)
      assert.are.same({ ids[1] }, r.ok)
      assert.are.equal(UNKNOWN, r.failed[1].id)
      assert.are.equal("DEVICES_NOT_FOUND", r.failed[1].error.name)
    end
  end

  CASES.kc = {
    list_devices = {
      ok = function()
        local ids = kc_devices(3)
        local r = T.K.kc:list_devices { devices = { ids[1], ids[3] }, sortBy = "model", sortOrder = "descending" }
        assert.are.same({ devices = { ids[1], ids[3] }, sortBy = "model", sortOrder = "descending" },
          sent("GET", "/kcs/v1/kc/devices").q)
        assert.are.equal(2, r.totalCount)
        local got = { r.deviceList[1].deviceUId, r.deviceList[2].deviceUId }
        assert.are.same(sorted { ids[1], ids[3] }, sorted(got))
        assert.is_true(r.deviceList[1].model >= r.deviceList[2].model)
      end,
      fail = function()
        fails(api("kc", 400, 40000000, "RESOURCE_INVALID_PARAM"), T.K.kc.list_devices, T.K.kc, { sortBy = "color" })
        assert.are.equal("color", sent("GET", "/kcs/v1/kc/devices").q.sortBy)
      end,
    },
    assign = {
      ok = function()
        local profiles, licenses = kc_setup()
        local ids = kc_devices(2)
        local feature = { profileId = profiles[2].profileId, licenseKey = licenses[1].licenseKey }
        local r = T.K.kc:assign { devices = ids, assignFeature = feature }
        assert.are.same({ deviceIds = ids, assignFeature = feature }, sent("PUT", "/kcs/v1/kc/devices/assign").json)
        all_ok(r, ids)
        assert.are.equal(2, r.responses[1].successCount)
        assert.are.equal(profiles[2].profileId, T.K.kc:list_devices { devices = ids[1] }.deviceList[1].profileId)
      end,
      fail = kc_none("assign", "/kcs/v1/kc/devices/assign", "PUT",
        { assignFeature = { profileName = "Retail display" } }),
    },
    unassign = {
      ok = function()
        local ids = kc_devices(4)
        local r = T.K.kc:unassign { devices = { ids[4] } }
        assert.are.same({ deviceIds = { ids[4] } }, sent("PUT", "/kcs/v1/kc/devices/unassign").json)
        all_ok(r, { ids[4] })
        assert.are.equal("Unassigned", T.K.kc:list_devices { devices = ids[4] }.deviceList[1].deviceState)
      end,
      fail = kc_none("unassign", "/kcs/v1/kc/devices/unassign", "PUT"),
    },
    send_command = {
      ok = function()
        local ids = kc_devices(2)
        local r = T.K.kc:send_command { devices = ids, command = "Reboot" }
        assert.are.same({ deviceIds = ids, command = "Reboot" }, sent("PUT", "/kcs/v1/kc/devices/command").json)
        all_ok(r, ids)
        assert.are.equal(2, r.responses[1].data.successCount)
      end,
      fail = kc_none("send_command", "/kcs/v1/kc/devices/command", "PUT", { command = "Reboot" }),
    },
    delete_devices = {
      ok = function()
        local ids = kc_devices(2)
        local r = T.K.kc:delete_devices { devices = ids }
        assert.are.same({ deviceIds = ids }, sent("DELETE", "/kcs/v1/kc/devices").q)
        all_ok(r, ids)
        assert.are.equal(DEVICES - 2, T.K.kc:list_devices { pageSize = 1 }.totalCount)
      end,
      fail = kc_none("delete_devices", "/kcs/v1/kc/devices", "DELETE"),
    },
    device_logs = {
      ok = function()
        local ids = kc_devices(4)
        local r = T.K.kc:device_logs { deviceId = ids[4], pageSize = 10 }
        assert.are.same({ pageSize = "10" }, sent("GET", "/kcs/v1/kc/devices/" .. ids[4] .. "/logs").q)
        assert.are.equal(ids[4], r.deviceId)
        assert.are.equal(2, r.totalCount)
        assert.are.equal("PROFILE", r.deviceLogs[2].type)
      end,
      fail = function()
        fails(api("kc", 404, 40400005, "DEVICES_NOT_FOUND"), T.K.kc.device_logs, T.K.kc, { deviceId = UNKNOWN })
        sent("GET", "/kcs/v1/kc/devices/" .. UNKNOWN .. "/logs")
      end,
    },
    list_profiles = {
      ok = function()
        local r = T.K.kc:list_profiles { profileType = "ProfileWithKnox", pageSize = 10 }
        assert.are.same({ profileType = "ProfileWithKnox", pageSize = "10" }, sent("GET", "/kcs/v1/kc/profiles").q)
        assert.are.equal(1, r.totalCount)
        assert.are.equal("ProfileWithKnox", r.contents[1].profileType)
      end,
      fail = function()
        -- no failure of its own: Knox Configure's documented 10 requests/s
        rate_limited("kc", function() return T.K.kc:list_profiles {} end)
        assert.are.equal(429, sent("GET", "/kcs/v1/kc/profiles").status)
      end,
    },
    profile_details = {
      ok = function()
        local p = kc_setup()[1]
        local r = T.K.kc:profile_details { profileId = p.profileId }
        sent("GET", "/kcs/v1/kc/profiles/" .. p.profileId .. "/details")
        assert.are.equal(p.name, r.name)
        assert.are.equal(DEVICES // 4, r.deviceCount)
      end,
      fail = function()
        fails(api("kc", 404, 40400000, "RESOURCE_NOT_FOUND"), T.K.kc.profile_details, T.K.kc, { profileId = "p0" })
        sent("GET", "/kcs/v1/kc/profiles/p0/details")
      end,
    },
    delete_profiles = {
      ok = function()
        local unused = kc_setup()[2]
        local r = T.K.kc:delete_profiles { profileIds = { unused.profileId } }
        assert.are.same({ profileIds = unused.profileId }, sent("DELETE", "/kcs/v1/kc/profiles").q)
        assert.are.equal(1, r.successCount)
        assert.are.equal(1, T.K.kc:list_profiles {}.totalCount)
      end,
      fail = function()
        -- the only one named is in use: nothing deleted
        local used = kc_setup()[1]
        fails(api("kc", 404, 40400000, "RESOURCE_NOT_FOUND"), T.K.kc.delete_profiles, T.K.kc,
          { profileIds = used.profileId })
        assert.are.equal(used.profileId, sent("DELETE", "/kcs/v1/kc/profiles").q.profileIds)
      end,
    },
    list_licenses = {
      ok = function()
        local r = T.K.kc:list_licenses { pageSize = 1 }
        assert.are.same({ pageSize = "1" }, sent("GET", "/kcs/v1/kc/licenses").q)
        assert.are.equal(2, r.totalCount)
        assert.are.equal(1, #r.licenses)
        assert.is_string(r.licenses[1].licenseKey)
      end,
      fail = function()
        rate_limited("kc", function() return T.K.kc:list_licenses {} end)
        assert.are.equal(429, sent("GET", "/kcs/v1/kc/licenses").status)
      end,
    },
    get_license = {
      ok = function()
        local l = select(2, kc_setup())[1]
        local r = T.K.kc:get_license { licenseId = l.licenseId }
        sent("GET", "/kcs/v1/kc/licenses/" .. l.licenseId)
        assert.are.equal(l.licenseKey, r.licenses[1].licenseKey)
      end,
      fail = function()
        fails(api("kc", 404, 40400007, "LICENSE_NOT_FOUND"), T.K.kc.get_license, T.K.kc, { licenseId = "L0" })
        sent("GET", "/kcs/v1/kc/licenses/L0")
      end,
    },

    -- v2
    get_devices_v2 = {
      ok = function()
        local r = T.O.kc:get_devices_v2 { pageSize = 5, deviceState = { "Configured" } }
        assert.are.same({ pageSize = 5, deviceState = { "Configured" } },
          sent("POST", "/kc/v2/devices/getDevices").json)
        assert.are.equal("2000000", r.code)
        assert.are.equal(DEVICES // 4, r.totalCount)
        assert.are.equal("CONFIGURED", r.devices[1].status)
        assert.is_string(r.nextSearchAfter)
      end,
      fail = function()
        fails(api("kc", 400, 40000000, "RESOURCE_INVALID_PARAM"), T.O.kc.get_devices_v2, T.O.kc,
          { deviceState = { "Sleeping" } })
        assert.are.same({ "Sleeping" }, sent("POST", "/kc/v2/devices/getDevices").json.deviceState)
      end,
    },
    device_logs_v2 = {
      ok = function()
        local ids = kc_devices(1)
        local r = T.O.kc:device_logs_v2 { deviceId = ids[1] }
        assert.are.same({ deviceId = ids[1] }, sent("POST", "/kc/v2/devices/getDeviceLogs").json)
        assert.are.equal("2000000", r.code)
        assert.are.equal("UPLOAD", r.deviceLogs[1].type)
      end,
      fail = function()
        fails(api("kc", 404, 40400005, "DEVICES_NOT_FOUND"), T.O.kc.device_logs_v2, T.O.kc, { deviceId = UNKNOWN })
        assert.are.equal(UNKNOWN, sent("POST", "/kc/v2/devices/getDeviceLogs").json.deviceId)
      end,
    },
    send_command_v2 = {
      ok = function()
        local ids = kc_devices(2)
        local r = T.O.kc:send_command_v2 { devices = ids, command = "PushProfile" }
        assert.are.same({ deviceIds = ids, command = "PushProfile" }, sent("POST", "/kc/v2/devices/sendCommand").json)
        all_ok(r, ids)
        assert.are.same(ids, r.responses[1].data.successDeviceList)
      end,
      fail = kc2_unknown("send_command_v2", "/kc/v2/devices/sendCommand", { command = "Lock" }),
    },
    delete_devices_v2 = {
      ok = function()
        local ids = kc_devices(2)
        local r = T.O.kc:delete_devices_v2 { devices = ids }
        assert.are.same({ deviceIds = ids }, sent("POST", "/kc/v2/devices/bulkDelete").json)
        all_ok(r, ids)
        assert.are.equal(DEVICES - 2, T.O.kc:get_devices_v2 { pageSize = 1 }.totalCount)
      end,
      fail = function()
        -- more devices than the bulk limit (Knox Configure documents no
        -- code of its own: 40000000)
        limits { bulk = { kc = 1 } }
        local ids = kc_devices(2)
        local r = T.O.kc:delete_devices_v2 { devices = ids }
        all_failed(r, ids, "RESOURCE_INVALID_PARAM", "kc")
        assert.are.same(ids, sent("POST", "/kc/v2/devices/bulkDelete").json.deviceIds)
      end,
    },
    list_profiles_v2 = {
      ok = function()
        local r = T.O.kc:list_profiles_v2 { pageSize = 1 }
        assert.are.same({ pageSize = "1" }, sent("GET", "/kc/v2/profiles").q)
        assert.are.equal(2, r.totalCount)
        assert.are.equal(1, #r.profiles)
      end,
      fail = function()
        rate_limited("kc", function() return T.O.kc:list_profiles_v2 {} end)
        assert.are.equal(429, sent("GET", "/kc/v2/profiles").status)
      end,
    },
    create_profile_v2 = {
      ok = function()
        local a = { name = "Spec kiosk", profileType = "ProfileWithKnox", knoxVersion = "3.4",
          deviceProductType = "tablet" }
        local r = T.O.kc:create_profile_v2(a)
        assert.are.same(a, sent("POST", "/kc/v2/profiles").json)
        assert.is_string(r.profileId)
        assert.are.equal("Spec kiosk", r.name)
        assert.are.equal("tablet", r.deviceProductType)
      end,
      fail = function()
        local name = kc_setup()[1].name
        fails(api("kc", 409, 40900000, "CONFLICT"), T.O.kc.create_profile_v2, T.O.kc, { name = name })
        assert.are.same({ name = name }, sent("POST", "/kc/v2/profiles").json)
      end,
    },
    get_profile_v2 = {
      ok = function()
        local p = kc_setup()[2]
        local r = T.O.kc:get_profile_v2 { profileId = p.profileId }
        sent("GET", "/kc/v2/profiles/" .. p.profileId)
        assert.are.equal(p.name, r.name)
      end,
      fail = function()
        fails(api("kc", 404, 40400000, "RESOURCE_NOT_FOUND"), T.O.kc.get_profile_v2, T.O.kc, { profileId = "p0" })
        sent("GET", "/kc/v2/profiles/p0")
      end,
    },
    delete_profile_v2 = {
      ok = function()
        local p = kc_setup()[2]
        local r = T.O.kc:delete_profile_v2 { profileId = p.profileId }
        sent("DELETE", "/kc/v2/profiles/" .. p.profileId)
        assert.are.equal(p.profileId, r.profileId)
        fails({ status = 404 }, T.O.kc.get_profile_v2, T.O.kc, { profileId = p.profileId })
      end,
      fail = function()
        -- a profile assigned to devices is refused
        local p = kc_setup()[1]
        fails(api("kc", 400, 40000000, "RESOURCE_INVALID_PARAM"), T.O.kc.delete_profile_v2, T.O.kc,
          { profileId = p.profileId })
        sent("DELETE", "/kc/v2/profiles/" .. p.profileId)
      end,
    },
    bulk_assign_v2 = {
      ok = function()
        local profiles, licenses = kc_setup()
        local ids = kc_devices(2)
        local r = T.O.kc:bulk_assign_v2 { profileId = profiles[2].profileId, licenseKey = licenses[1].licenseKey,
          devices = ids }
        assert.are.same({ licenseKey = licenses[1].licenseKey, deviceIds = ids },
          sent("POST", "/kc/v2/profiles/" .. profiles[2].profileId .. "/bulkAssign").json)
        all_ok(r, ids)
        assert.are.equal(2, r.responses[1].data.successCount)
      end,
      fail = function()
        local p = kc_setup()[1]
        local ids = kc_devices(2)
        local r = T.O.kc:bulk_assign_v2 { profileId = p.profileId, licenseKey = "no-such-key", devices = ids }
        all_failed(r, ids, "LICENSE_NOT_FOUND", "kc")
        assert.are.equal("no-such-key",
          sent("POST", "/kc/v2/profiles/" .. p.profileId .. "/bulkAssign").json.licenseKey)
      end,
    },
    bulk_unassign_v2 = {
      ok = function()
        local ids = kc_devices(4)
        local r = T.O.kc:bulk_unassign_v2 { devices = { ids[4] } }
        assert.are.same({ deviceIds = { ids[4] } }, sent("POST", "/kc/v2/profiles/bulkUnassign").json)
        all_ok(r, { ids[4] })
        assert.are.equal("UNASSIGNED", T.O.kc:get_devices_v2 { deviceIds = { ids[4] } }.devices[1].status)
      end,
      fail = kc2_unknown("bulk_unassign_v2", "/kc/v2/profiles/bulkUnassign"),
    },
    list_licenses_v2 = {
      ok = function()
        local r = T.O.kc:list_licenses_v2 { pageNum = 0, pageSize = 5 }
        assert.are.same({ pageNum = "0", pageSize = "5" }, sent("GET", "/kc/v2/licenses").q)
        assert.are.equal(2, r.totalCount)
        assert.are.equal(2, #r.licenses)
      end,
      fail = function()
        rate_limited("kc", function() return T.O.kc:list_licenses_v2 {} end)
        assert.are.equal(429, sent("GET", "/kc/v2/licenses").status)
      end,
    },
    get_license_v2 = {
      ok = function()
        local l = select(2, kc_setup())[2]
        local r = T.O.kc:get_license_v2 { licenseKey = l.licenseKey }
        sent("GET", "/kc/v2/licenses/" .. l.licenseKey)
        assert.are.equal(l.licenseId, r.licenseId)
        assert.are.equal("Trial", r.type)
      end,
      fail = function()
        fails(api("kc", 404, 40400007, "LICENSE_NOT_FOUND"), T.O.kc.get_license_v2, T.O.kc, { licenseKey = "K0" })
        sent("GET", "/kc/v2/licenses/K0")
      end,
    },
    delete_license_v2 = {
      ok = function()
        local unused = select(2, kc_setup())[2]
        local r = T.O.kc:delete_license_v2 { licenseKey = unused.licenseKey }
        sent("DELETE", "/kc/v2/licenses/" .. unused.licenseKey)
        assert.are.equal(unused.licenseKey, r.licenseKey)
        assert.are.equal(1, T.O.kc:list_licenses_v2 {}.totalCount)
      end,
      fail = function()
        -- a license assigned to devices is refused
        local used = select(2, kc_setup())[1]
        fails(api("kc", 400, 40000000, "RESOURCE_INVALID_PARAM"), T.O.kc.delete_license_v2, T.O.kc,
          { licenseKey = used.licenseKey })
        sent("DELETE", "/kc/v2/licenses/" .. used.licenseKey)
      end,
    },
  }

  ---------------------------------------------------------------------------

  it("has a success and a failure case for every method of every service in the registry", function()
    local reg = services.load()
    local missing, extra, n = {}, {}, 0
    for _, name in ipairs(reg.names) do
      for method in pairs(reg.services[name].endpoints) do
        n = n + 1
        local c = CASES[name] and CASES[name][method]
        if not (c and type(c.ok) == "function" and type(c.fail) == "function") then
          missing[#missing + 1] = name .. ":" .. method
        end
      end
    end
    for name, list in pairs(CASES) do
      for method in pairs(list) do
        if not (reg.services[name] and reg.services[name].endpoints[method]) then
          extra[#extra + 1] = name .. ":" .. method
        end
      end
    end
    table.sort(missing)
    table.sort(extra)
    assert.are.same({}, missing, "registry methods without a case here")
    assert.are.same({}, extra, "cases for methods the registry does not have")
    assert.is_true(n >= 73)
  end)

  for _, name in ipairs { "kme", "kg", "msp", "kdp", "kc" } do
    local names = {}
    for method in pairs(CASES[name]) do names[#names + 1] = method end
    table.sort(names)
    describe(name, function()
      for _, method in ipairs(names) do
        it(method .. " succeeds", function() CASES[name][method].ok() end)
        it(method .. " fails as documented", function() CASES[name][method].fail() end)
      end
    end)
  end
end)
