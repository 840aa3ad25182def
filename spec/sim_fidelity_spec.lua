-- The simulator against the shapes and rules of shared/knox-docs/api-notes-2.md
-- §1 (one block per service), driven with plain luasocket (support.sim).
local sim = require "support.sim"

local ISO = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"

-- Asserts that item has every key of `must` and no key of `never`.
local function has_keys(item, must, never)
  for _, k in ipairs(must) do assert.is_not_nil(item[k], "missing " .. k) end
  for _, k in ipairs(never or {}) do assert.is_nil(item[k], "unexpected " .. k) end
end

local function keys_of(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return table.concat(out, ",")
end

describe("knox.sim fidelity (api-notes-2 §1)", function()
  local s, L

  lazy_setup(function()
    s = sim.start { devices = 12, seed = "fidelity" }
    L = sim.legacy(s)
  end)

  lazy_teardown(function()
    if L then L.close() end
    if s then s:stop() end
  end)

  before_each(function() s:reset() end)

  describe("KME", function()
    local h
    before_each(function() h = sim.bearer(s) end)

    local function kme(method, path, body)
      return s:request(method, path, { headers = h, body = body })
    end

    it("lists devices with Knox's item fields", function()
      local r = kme("GET", "/kcs/v1/kme/devices/list?pageSize=5")
      assert.are.equal(200, r.status)
      assert.are.equal(12, r.json.totalCount)
      for _, d in ipairs(r.json.deviceList) do
        has_keys(d, { "id", "mei", "serialNumber", "model", "tenantName", "orderId", "userName", "tags", "uploadId",
          "resellerName", "createTime", "updateTime", "resellerUploadTime" },
          { "deviceId", "imei", "status", "uploadTime", "resellerId" })
        assert.matches("^%x+$", d.id)
        assert.matches("^%d+$", d.mei)
        assert.are.equal("table", type(d.tags))
        assert.are.equal("Sim Customer Corp", d.tenantName)
      end
      assert.matches('"tags":%[%]', r.body)
    end)

    it("unassigns by the Get-Devices id in v2, and only by IMEI or serial in v1", function()
      local d = kme("GET", "/kcs/v1/kme/devices/list").json.deviceList[1]
      assert.is_string(d.profileName)
      local r = kme("PUT", "/kcs/v1/kme/devices/unassignProfile", { deviceIds = { d.id } })
      assert.are.equal(404, r.status)  -- v1 takes IMEIs and serial numbers
      r = kme("PUT", "/kcs/v2/kme/devices/unassignProfile", { deviceIds = { d.id } })
      assert.are.equal(200, r.status)
      assert.are.same({ d.id }, r.json.validDeviceList)
      assert.is_nil(kme("GET", "/kcs/v1/kme/devices/list").json.deviceList[1].profileName)
    end)

    it("fails assignments with unknown or malformed devices as a whole, naming them", function()
      local list = kme("GET", "/kcs/v1/kme/devices/list").json.deviceList
      local pid = kme("GET", "/kcs/v1/kme/profiles/list").json.profileList[1].profileId
      local before = list[3].profileName
      local r = kme("PUT", "/kcs/v1/kme/devices/assignProfile", { profileId = pid,
        deviceIds = { list[3].mei, "490154203237518", list[4].serialNumber, "356938035643809" } })
      assert.are.equal(404, r.status)
      assert.are.equal(4040300, r.json.code)
      assert.are.equal("DEVICE_NOT_FOUND", r.json.message)
      assert.is_string(r.json.data)
      assert.are.same({ "490154203237518", "356938035643809" }, r.json.notFoundDeviceList)
      assert.are.equal(before, kme("GET", "/kcs/v1/kme/devices/list").json.deviceList[3].profileName)
      r = kme("PUT", "/kcs/v1/kme/devices/unassignProfile", { deviceIds = { list[3].mei, "bad id!" } })
      assert.are.equal(400, r.status)
      assert.are.equal(4001703, r.json.code)
      assert.are.equal("BULK_ENROLL_DEVICE_INVALID", r.json.message)
      assert.are.same({ "bad id!" }, r.json.invalidDeviceList)
    end)

    it("lists reseller uploads and approves pending ones", function()
      local r = kme("GET", "/kcs/v1/kme/devices/uploads/list")
      assert.are.equal(200, r.status)
      assert.are.equal(1, r.json.totalCount)  -- 12 generated devices: one upload of 100
      assert.are.equal("Approved", r.json.uploadList[1].status)
      -- a KDP upload to this customer is a Pending upload here
      local up = s:request("PUT", "/kcs/v1/rp/devices/upload", { headers = h, body = { resellerId = s.reseller_id,
        customerId = s.customer_id, transactionId = "u1", devices = { "490154203237518" } } })
      assert.are.equal(200, up.status)
      local uploads = kme("GET", "/kcs/v1/kme/devices/uploads/list").json.uploadList
      local pending = uploads[2]
      assert.are.equal("Pending", pending.status)
      assert.are.equal(1, pending.deviceCount)
      r = kme("POST", "/kcs/v1/kme/devices/uploads/approvals", { uploadIds = { pending.uploadId, uploads[1].uploadId,
        "nope" }, action = "APPROVE" })
      assert.are.equal(200, r.status)
      assert.are.same({ pending.uploadId }, r.json.successUploadList)
      assert.are.same({ "nope" }, r.json.notFoundUploadList)
      assert.are.equal(uploads[1].uploadId, r.json.failedUploadList[1].uploadId)
      assert.are.equal("Approved", kme("GET", "/kcs/v1/kme/devices/uploads/list").json.uploadList[2].status)
      r = kme("POST", "/kcs/v1/kme/devices/uploads/approvals", { uploadIds = { "x" }, action = "MAYBE" })
      assert.are.equal(400, r.status)
    end)

    it("approves resellers and manages profile aliases the reseller can read", function()
      local pending = s:request("GET", "/__sim/info").json.pending_reseller_id
      local r = kme("POST", "/kcs/v1/kme/reseller/approvals", { resellerIds = { pending, s.reseller_id, "RS0" },
        action = "APPROVE" })
      assert.are.equal(200, r.status)
      assert.are.same({ pending }, r.json.successResellerList)
      assert.are.same({ "RS0" }, r.json.notFoundResellerList)
      assert.are.equal(s.reseller_id, r.json.failedResellerList[1].resellerId)
      local pid = kme("GET", "/kcs/v1/kme/profiles/list").json.profileList[2].profileId
      r = kme("POST", "/kcs/v1/kme/reseller/profilealias", { profileAlias = "kiosk-fleet", profileId = pid,
        resellerId = s.reseller_id })
      assert.are.equal(200, r.status)
      local alias = r.json
      assert.is_string(alias.profileAliasId)
      assert.are.equal(409, kme("POST", "/kcs/v1/kme/reseller/profilealias", { profileAlias = "kiosk-fleet",
        profileId = pid, resellerId = s.reseller_id }).status)
      local seen = s:request("GET", "/kcs/v1/rp/profilealias/kme", { headers = { Authorization = h.Authorization,
        resellerId = s.reseller_id, customerId = s.customer_id } })
      assert.are.equal(200, seen.status)
      assert.are.equal(pid, seen.json.profileAliases[1].profileId)
      r = kme("PUT", "/kcs/v1/kme/reseller/profilealias/" .. alias.profileAliasId, { profileAlias = "kiosks" })
      assert.are.equal("kiosks", r.json.profileAlias)
      assert.are.equal(200, kme("DELETE", "/kcs/v1/kme/reseller/profilealias/" .. alias.profileAliasId).status)
      assert.are.equal(404, kme("DELETE", "/kcs/v1/kme/reseller/profilealias/" .. alias.profileAliasId).status)
      -- the reseller scope is needed
      local narrow = sim.bearer(s, "kme.devices")
      assert.are.equal(403, s:request("POST", "/kcs/v1/kme/reseller/approvals", { headers = narrow,
        body = { resellerIds = { pending }, action = "APPROVE" } }).status)
    end)
  end)

  describe("Knox Deployment Program", function()
    local h
    before_each(function() h = sim.bearer(s, "kdp") end)

    local function rp(method, path, body)
      return s:request(method, "/kcs/v1/rp" .. path, { headers = h, body = body })
    end

    local function upload(tid, devices)
      return rp("PUT", "/devices/upload", { resellerId = s.reseller_id, customerId = s.customer_id,
        transactionId = tid, type = "IMEI", devices = devices })
    end

    local function status(tid)
      return rp("GET", "/devices/status?resellerId=" .. s.reseller_id .. "&customerId=" .. s.customer_id
        .. (tid and ("&transactionId=" .. tid) or ""))
    end

    it("pages devices with code, message, totalPages, size and Knox's item fields", function()
      local r = rp("GET", "/devices?resellerId=" .. s.reseller_id .. "&pageSize=5&pageNum=2")
      assert.are.equal(200, r.status)
      assert.are.equal("2000000", r.json.code)
      assert.are.equal("SUCCESS", r.json.message)
      assert.are.equal(12, r.json.totalCount)
      assert.are.equal(3, r.json.totalPages)
      assert.are.equal(2, r.json.size)
      assert.are.equal(2, r.json.pageNum)
      assert.are.equal(5, r.json.pageSize)
      for _, d in ipairs(r.json.devices) do
        has_keys(d, { "id", "mei", "meid", "serialNumber", "model", "state", "uploadId", "customerName",
          "customerId", "createTime" }, { "deviceUid", "imei", "uploadTime", "orderNo" })
      end
    end)

    it("reports a re-upload as DEVICE_DUPLICATE while the rest goes in (partial success)", function()
      local existing = rp("GET", "/devices?resellerId=" .. s.reseller_id).json.devices[1].mei
      assert.are.equal(200, upload("dup1", { existing, "490154203237518" }).status)
      status("dup1")
      local r = status("dup1")
      assert.are.equal("Complete", r.json.state)
      assert.are.equal(1, #r.json.devices)
      assert.are.same({ imei = existing, code = 40000005, message = "DEVICE_DUPLICATE",
        data = r.json.devices[1].data }, r.json.devices[1])
      assert.is_nil(r.json.totalCount)
      assert.is_nil(r.json.failCount)
      assert.are.equal(13, rp("GET", "/devices?resellerId=" .. s.reseller_id).json.totalCount)
      -- uploading the new one again is a duplicate too, of this reseller's own upload
      upload("dup2", { "490154203237518" })
      status("dup2")
      assert.are.equal(40000005, status("dup2").json.devices[1].code)
    end)

    it("refuses a used transactionId (40000014) and too many devices (40000003)", function()
      assert.are.equal(200, upload("t1", { "490154203237518" }).status)
      local r = upload("t1", { "356938035643809" })
      assert.are.equal(400, r.status)
      assert.are.equal(40000014, r.json.code)
      assert.are.equal("TRANSACTION_ID_DUPLICATE", r.json.message)
      s:request("POST", "/__sim/limits", { body = { bulk = { kdp = 2 } } })
      r = upload("t2", { "356938035643809", "352099001761481", "353918058381697" })
      assert.are.equal(400, r.status)
      assert.are.equal(40000003, r.json.code)
      assert.are.equal("DEVICE_COUNT_EXCEEDED", r.json.message)
      s:request("POST", "/__sim/limits", { body = { bulk = { kdp = 10000 } } })
    end)

    it("serves the wrapped status shape, failures only, absent when none failed", function()
      s:request("POST", "/__sim/config", { body = { kdp_status = "wrapped" } })
      upload("w1", { "490154203237518" })
      upload("w2", { "356938035643809", "123" })
      local r = status()
      assert.are.equal(200, r.status)
      local page = r.json.devices
      assert.are.equal(2, page.totalCount)
      assert.are.equal(1, page.totalPage)
      assert.are.equal(0, page.pageNum)
      local by = {}
      for _, tx in ipairs(page.transactions) do by[tx.transactionId] = tx end
      assert.are.equal("UPLOAD", by.w1.operationType)
      assert.is_nil(by.w1.devices)
      assert.are.equal(1, #by.w2.devices)
      assert.are.equal(40000004, by.w2.devices[1].code)
      assert.are.equal("DEVICE_INVALID", by.w2.devices[1].message)
      s:request("POST", "/__sim/config", { body = { kdp_status = "flat" } })
      assert.are.equal("w2", status("w2").json.transactionId)
    end)
  end)

  describe("Knox Guard", function()
    local h
    before_each(function() h = L.headers() end)

    local function kg(path, body)
      return s:request("POST", "/kcs/v1.1/kg" .. path, { headers = h, body = body or {} })
    end

    local function find(status)
      for _, d in ipairs(kg("/devices/list", { pageSize = 100 }).json.deviceList) do
        if d.status == status then return d end
      end
    end

    it("goes Pending -> Activating -> Active on the simulator's clock", function()
      local d = find("Pending")
      assert.is_table(d)
      assert.are.equal(200, kg("/devices/approve", { deviceUid = d.deviceUid, approveId = "LOAN-F1" }).status)
      local function now() return kg("/devices/list", { search = d.deviceUid }).json.deviceList[1].status end
      assert.are.equal("Activating", now())
      s:clock(59)
      assert.are.equal("Activating", now())
      assert.are.equal(400, kg("/devices/lock", { objectId = d.objectId }).status)
      s:clock(1)
      assert.are.equal("Active", now())
      assert.are.equal(200, kg("/devices/lock", { approveId = "LOAN-F1" }).status)
    end)

    it("deletes only rejected or payment-complete devices", function()
      local active, rejected, completed = find("Active"), find("Rejected"), find("Completed")
      local r = kg("/devices/delete", { objectId = active.objectId })
      assert.are.equal(400, r.status)
      assert.are.equal(4000310, r.json.error.code)
      assert.are.equal(200, kg("/devices/delete", { objectId = rejected.objectId }).status)
      assert.are.equal(200, kg("/devices/delete", { deviceUid = completed.deviceUid }).status)
      assert.are.equal(10, kg("/devices/list", {}).json.totalCount)
    end)

    it("takes blink limits as arrays", function()
      local d = find("Active")
      local ok = kg("/devices/blink", { objectId = d.objectId, message = "Pay", interval = 5, timeLimitEnable = true,
        timeLimit = { 23, 7 }, daysLimitEnable = true, daysLimit = { 0, 1 } })
      assert.are.equal(200, ok.status)
      for _, bad in ipairs { { timeLimit = 5 }, { timeLimit = { 24, 1 } }, { timeLimit = { 1 } }, { daysLimit = 1 },
        { daysLimit = { 7 } }, { timeLimitEnable = true }, { interval = -1 } } do
        bad.objectId, bad.message = d.objectId, "x"
        local r = kg("/devices/blink", bad)
        assert.are.equal(400, r.status)
        assert.are.equal(4000000, r.json.error.code)
      end
    end)

    it("answers 412 to uploads with applySimControl unless a SIM policy is set", function()
      local body = { applySimControl = true, deviceList = { { deviceUid = "490154203237518" } } }
      local r = kg("/devices/uploads", body)
      assert.are.equal(412, r.status)
      assert.are.equal(4120000, r.json.error.code)
      assert.are.equal("PRECONDITION_FAILED_EXCEPTION", r.json.error.message)
      s:request("POST", "/__sim/seed", { body = { kg = { simPolicy = true } } })
      r = kg("/devices/uploads", body)
      assert.are.equal(200, r.status)
      assert.are.equal(1, r.json.success)
    end)

    it("takes PyKnox's deviceUid arrays in async calls", function()
      local a, b = find("Active"), find("Locked")
      local r = kg("/devices/lockAsync", { deviceUid = { a.deviceUid, b.deviceUid } })
      assert.are.equal(200, r.status)
      assert.are.equal(2, r.json.count)
      assert.are.equal(1, r.json.success)
      assert.are.equal("SUCCESS", r.json.resultList[1].result)
      assert.are.equal(a.objectId, r.json.resultList[1].objectId)
      assert.are.equal("4000310", r.json.resultList[2].error.code)
    end)

    it("lists devices with Knox's newer fields and walks them by cursor", function()
      local d = kg("/devices/list", {}).json.deviceList[1]
      has_keys(d, { "objectId", "deviceUid", "status", "licenseExpiryDate", "hsModeApplied", "isKge", "fullModel",
        "isRelockReminderTarget", "isRelockReminderApplied" })
      local seen, cursor, pages = {}, "", 0
      repeat
        local r = kg("/devices/list", { pageSize = 5, cursor = cursor })
        pages = pages + 1
        for _, x in ipairs(r.json.deviceList) do
          assert.is_nil(seen[x.objectId])
          seen[x.objectId] = true
        end
        cursor = r.json.cursor
      until not cursor
      assert.are.equal(3, pages)
      local n = 0
      for _ in pairs(seen) do n = n + 1 end
      assert.are.equal(12, n)
      local desc = kg("/devices/list", { sortOrder = "descending", pageSize = 1 }).json.deviceList[1]
      local all = kg("/devices/list", {}).json.deviceList
      assert.are.equal(all[#all].objectId, desc.objectId)
    end)
  end)

  describe("Knox Configure", function()
    local h, b
    before_each(function()
      h = L.headers()
      b = sim.bearer(s)
    end)

    local function v1(method, path, body)
      return s:request(method, "/kcs/v1/kc" .. path, { headers = h, body = body })
    end

    local function v2(method, path, body)
      return s:request(method, "/kc/v2" .. path, { headers = b, body = body })
    end

    it("answers v1 devices with id, deviceUId and deviceState, and licenses under licenses", function()
      local r = v1("GET", "/devices")
      for _, d in ipairs(r.json.deviceList) do
        has_keys(d, { "id", "deviceUId", "deviceState", "model", "type", "tags", "createTime", "uploadTime",
          "inProgress" }, { "deviceId", "state", "imei" })
      end
      assert.are.equal("Configured", r.json.deviceList[4].deviceState)
      assert.is_string(r.json.deviceList[4].profileName)
      r = v1("GET", "/licenses")
      assert.are.equal(2, #r.json.licenses)
      assert.is_nil(r.json.contents)
      local one = v1("GET", "/licenses/" .. r.json.licenses[1].licenseId)
      assert.are.equal(1, one.json.totalCount)
      assert.are.equal(r.json.licenses[1].licenseKey, one.json.licenses[1].licenseKey)
      assert.are.equal(404, v1("GET", "/licenses/nope").status)
    end)

    it("serves the v1 command, logs, delete and profile calls", function()
      local devices = v1("GET", "/devices").json.deviceList
      local r = v1("PUT", "/devices/command", { deviceIds = { devices[1].deviceUId }, command = "Reboot" })
      assert.are.equal(200, r.status)
      assert.are.equal(1, r.json.data.successCount)
      assert.are.equal(400, v1("PUT", "/devices/command", { deviceIds = { devices[1].deviceUId },
        command = "Explode" }).status)
      r = v1("GET", "/devices/" .. devices[1].deviceUId .. "/logs")
      assert.are.equal(devices[1].deviceUId, r.json.deviceId)
      assert.are.equal(#r.json.deviceLogs, r.json.totalCount)
      assert.are.equal("COMMAND", r.json.deviceLogs[#r.json.deviceLogs].type)
      r = v1("DELETE", "/devices?deviceIds=" .. devices[2].deviceUId .. "," .. "490154203237518")
      assert.are.equal(200, r.status)
      assert.are.same({ totalCount = 2, successCount = 1, pendingCount = 0, failedCount = 1 }, r.json)
      assert.are.equal(11, v1("GET", "/devices").json.totalCount)
      local profiles = v1("GET", "/profiles").json.contents
      r = v1("GET", "/profiles/" .. profiles[1].profileId .. "/details")
      assert.are.equal(3, r.json.deviceCount)  -- devices 4, 8, 12
      r = v1("DELETE", "/profiles?profileIds=" .. profiles[1].profileId)
      assert.are.equal(404, r.status)          -- in use
      r = v1("DELETE", "/profiles?profileIds=" .. profiles[2].profileId)
      assert.are.equal(1, r.json.successCount)
    end)

    it("pages v2 getDevices with code, message, totalPages, size and deviceState as an array", function()
      local r = v2("POST", "/devices/getDevices", { pageSize = 5, pageNum = 1 })
      assert.are.equal(200, r.status)
      assert.are.equal("2000000", r.json.code)
      assert.are.equal("SUCCESS", r.json.message)
      assert.are.equal(12, r.json.totalCount)
      assert.are.equal(3, r.json.totalPages)
      assert.are.equal(5, r.json.size)
      local d = r.json.devices[1]
      has_keys(d, { "id", "imei", "model", "status", "lastUpdated" }, { "deviceId", "state" })
      assert.matches(ISO, d.lastUpdated)
      r = v2("POST", "/devices/getDevices", { deviceState = { "Configured", "Error" } })
      assert.are.equal(3, r.json.totalCount)
      assert.are.equal("CONFIGURED", r.json.devices[1].status)
      assert.are.equal(400, v2("POST", "/devices/getDevices", { deviceState = "Configured" }).status)
      assert.are.equal(400, v2("POST", "/devices/getDevices", { deviceState = { "Sleeping" } }).status)
      -- searchAfter walks the whole fleet once
      local seen, after = {}, nil
      repeat
        r = v2("POST", "/devices/getDevices", { pageSize = 5, searchAfter = after })
        for _, x in ipairs(r.json.devices) do
          assert.is_nil(seen[x.id])
          seen[x.id] = true
        end
        after = r.json.nextSearchAfter
      until not after
      local n = 0
      for _ in pairs(seen) do n = n + 1 end
      assert.are.equal(12, n)
    end)

    it("serves v2 profiles, licenses and bulk calls with per-device outcomes", function()
      local profiles = v2("GET", "/profiles").json
      assert.are.equal("2000000", profiles.code)
      assert.are.equal(2, profiles.totalCount)
      local licenses = v2("GET", "/licenses").json.licenses
      local key = licenses[2].licenseKey
      assert.are.equal(key, v2("GET", "/licenses/" .. key).json.licenseKey)
      local created = v2("POST", "/profiles", { name = "Spec v2" }).json
      assert.are.equal(created.profileId, v2("GET", "/profiles/" .. created.profileId).json.profileId)
      local ids = {}
      for i, d in ipairs(v2("POST", "/devices/getDevices", { pageSize = 2 }).json.devices) do ids[i] = d.imei end
      ids[3] = "490154203237518"
      local r = v2("POST", "/profiles/" .. created.profileId .. "/bulkAssign", { licenseKey = key, deviceIds = ids })
      assert.are.equal(200, r.status)
      assert.are.equal(2, r.json.data.successCount)
      assert.are.same({ ids[1], ids[2] }, r.json.data.successDeviceList)
      assert.are.same({ { deviceId = ids[3], code = 40400005, message = "DEVICES_NOT_FOUND" } },
        r.json.data.failedDeviceList)
      assert.are.equal(400, v2("DELETE", "/licenses/" .. key).status)      -- in use
      assert.are.equal(400, v2("DELETE", "/profiles/" .. created.profileId).status)
      r = v2("POST", "/devices/sendCommand", { deviceIds = { ids[1] }, command = "PushProfile" })
      assert.are.equal(1, r.json.data.successCount)
      r = v2("POST", "/devices/getDeviceLogs", { deviceId = ids[1] })
      assert.is_true(r.json.totalCount >= 2)
      r = v2("POST", "/profiles/bulkUnassign", { deviceIds = { ids[1], ids[2] } })
      assert.are.equal(2, r.json.data.successCount)
      assert.are.equal(200, v2("DELETE", "/profiles/" .. created.profileId).status)
      r = v2("POST", "/devices/bulkDelete", { deviceIds = { ids[1], "490154203237518" } })
      assert.are.equal(1, r.json.data.successCount)
      assert.are.equal(11, v2("POST", "/devices/getDevices", {}).json.totalCount)
      assert.are.equal(200, v2("DELETE", "/licenses/" .. key).status)
    end)
  end)

  describe("MSP Portal", function()
    local h
    before_each(function() h = sim.bearer(s, "msp") end)

    local function msp(method, path, body)
      return s:request(method, "/msp/v1" .. path, { headers = h, body = body })
    end

    it("answers customers with managementType, managedServices, optional and address fields", function()
      local r = msp("GET", "/managedCustomers")
      assert.are.equal("2", r.json.totalCount)
      local c = r.json.customers[1]
      has_keys(c, { "customerId", "companyName", "email", "officeNumber", "country", "managementType",
        "managedServices", "optional", "companySize", "industry", "street1", "city", "stateOrProvince", "zipCode",
        "website", "customerAdminManagement" }, { "services", "status", "accessType", "createdTime" })
      assert.are.same({ service = "KnoxMobileEnrollment", status = "Active" }, c.managedServices[1])
      assert.matches(ISO, c.optional.created)
      assert.matches(ISO, c.optional.modified)
      assert.is_number(c.optional.deviceCountExclKM)
      assert.are.equal(0, c.optional.deviceCountKM)
      assert.are.equal(keys_of(c), keys_of(msp("GET", "/managedCustomers/" .. c.customerId).json))
      r = msp("GET", "/managedCustomers?pageNum=0&pageSize=1&sortOrder=Descending")
      assert.are.equal("2", r.json.totalCount)
      assert.are.equal("Northwind Traders", r.json.customers[1].companyName)
    end)

    it("validates fields with the 26.07 codes 4002133-4002140", function()
      local base = { companyName = "Valid Co", email = "a@valid.example", country = "US" }
      local cases = {
        { { companyName = "Bad <Co>" }, 4002133, "INCLUDES_DISALLOWED_CHARACTERS" },
        { { city = "Town#1" }, 4002134, "ALPHANUMERIC_ONLY_ALLOWED_CHARACTERS" },
        { { zipCode = "981-01" }, 4002135, "ALPHANUMERIC_ONLY" },
        { { companyName = "Samsung Resellers" }, 4002136, "FIELD_CONTAINS_PROHIBITED_WORD" },
        { { website = "not a url" }, 4002137, "INVALID_URL" },
        { { officeNumber = "call me" }, 4002138, "INVALID_PHONE_NUMBER" },
        { { street1 = " 1 Main St" }, 4002139, "START_OR_ENDS_WITH_DISALLOWED_CHARACTER" },
        { { companyName = "Double  Space" }, 4002140, "START_OR_ENDS_OR_CONSECUTIVE_DISALLOWED_CHARACTER" },
      }
      for i, case in ipairs(cases) do
        local body = {}
        for k, v in pairs(base) do body[k] = v end
        body.email = "c" .. i .. "@valid.example"
        for k, v in pairs(case[1]) do body[k] = v end
        local r = msp("POST", "/managedCustomers", body)
        assert.are.equal(400, r.status, case[3])
        assert.are.equal(case[3], r.json.code)
        assert.are.equal(tostring(case[2]), r.json.errorCode)
      end
      local r = msp("POST", "/managedCustomers", { companyName = "Valid Co", email = "ok@valid.example", country = "US",
        website = "https://valid.example/home", officeNumber = "+1 (555) 010-9999", zipCode = "98101",
        city = "St. Paul", services = { "KME", "KnoxManage" } })
      assert.are.equal(200, r.status)
      assert.are.equal("KnoxManage", r.json.managedServices[2].service)
      assert.are.equal(0, r.json.optional.deviceCountExclKM)  -- a new Knox account has no devices
      r = msp("PUT", "/managedCustomers/" .. r.json.customerId, { website = "ftp://x" })
      assert.are.equal("INVALID_URL", r.json.code)
    end)

    it("lists, copies and overwrites profiles across customers", function()
      local r = msp("GET", "/profiles")
      assert.are.equal(200, r.status)
      local mine, child = {}, {}
      for _, p in ipairs(r.json.profiles) do
        if p.customerId == s.customer_id then mine[#mine + 1] = p else child[#child + 1] = p end
      end
      assert.are.equal(2, #mine)
      assert.is_true(#child >= 2)
      local customers = msp("GET", "/managedCustomers").json.customers
      local c1 = customers[1].customerId
      r = msp("POST", "/profiles/copy", { sourceProfileId = mine[1].profileId, profileName = "Copied",
        targetCustomerIds = { c1, "0000000000" } })
      assert.are.equal(206, r.status)  -- partial: one target is not a managed customer
      assert.are.equal("SUCCESS", r.json.results[1].result)
      assert.are.equal("FAIL", r.json.results[2].result)
      assert.are.equal("4002113", r.json.results[2].errorCode)
      local copied = r.json.results[1].profileId
      r = msp("GET", "/profiles?customerIds=" .. c1 .. "&profileIds=" .. copied)
      assert.are.equal("1", r.json.totalCount)
      assert.are.equal("Copied", r.json.profiles[1].profileName)
      r = msp("POST", "/profiles/copy", { sourceProfileId = mine[1].profileId, profileName = "Copied",
        targetCustomerIds = { c1 } })
      assert.are.equal("4091700", r.json.results[1].errorCode)
      r = msp("POST", "/profiles/overwrite", { sourceProfileId = mine[2].profileId,
        targets = { { customerId = c1, profileId = copied } } })
      assert.are.equal(200, r.status)
      assert.are.equal("SUCCESS", r.json.results[1].result)
      assert.are.equal(404, msp("POST", "/profiles/copy", { sourceProfileId = "nope",
        targetCustomerIds = { c1 } }).status)
    end)
  end)
end)
