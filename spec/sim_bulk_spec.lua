-- Bulk limits (--bulk-limit, POST /__sim/limits) with each service's
-- documented code, and per-device outcomes in each service's bulk shape.
local sim = require "support.sim"

local function imeis(n)
  -- valid, unknown IMEIs (Luhn-checked), "4901542032" followed by a counter
  local out = {}
  for i = 1, n do
    local body = string.format("49015420%06d", i)
    local sum = 0
    for k = 1, 14 do
      local d = body:byte(k) - 48
      if k % 2 == 0 then
        d = d * 2
        if d > 9 then d = d - 9 end
      end
      sum = sum + d
    end
    out[i] = body .. (10 - sum % 10) % 10
  end
  return out
end

describe("knox.sim bulk limits", function()
  local s, L

  lazy_setup(function()
    s = sim.start { devices = 12, seed = "bulk", args = { "--bulk-limit", "5" } }
    L = sim.legacy(s)
  end)

  lazy_teardown(function()
    if L then L.close() end
    if s then s:stop() end
  end)

  before_each(function() s:reset() end)

  it("applies --bulk-limit to every service, each with its own code", function()
    local limits = s:request("GET", "/__sim/limits").json
    assert.are.same({ kme = 5, kg = 5, kdp = 5, kc = 5 }, limits.bulk)
    local six = imeis(6)
    local b, h = sim.bearer(s), L.headers()
    local r = s:request("PUT", "/kcs/v1/kme/devices/unassignProfile", { headers = b, body = { deviceIds = six } })
    assert.are.equal(400, r.status)
    assert.are.equal(4000019, r.json.code)
    assert.are.equal("TOO_MANY_DEVICES", r.json.message)
    r = s:request("POST", "/kcs/v1/kme/devices/delete", { headers = b, body = { devices = { imeiOrSerials = six } } })
    assert.are.equal(4000019, r.json.code)
    local list = {}
    for i, id in ipairs(six) do list[i] = { deviceUid = id } end
    r = s:request("POST", "/kcs/v1.1/kg/devices/lockAsync", { headers = h, body = { deviceList = list } })
    assert.are.equal(400, r.status)
    assert.are.equal(4000316, r.json.error.code)
    assert.are.equal("DEVICE_BULK_OPERATION_LIMIT_EXCEEDED", r.json.error.message)
    r = s:request("POST", "/kcs/v1.1/kg/devices/uploads", { headers = h, body = { deviceList = list } })
    assert.are.equal(4000316, r.json.error.code)
    r = s:request("PUT", "/kcs/v1/rp/devices/upload", { headers = b, body = { resellerId = s.reseller_id,
      customerId = s.customer_id, transactionId = "b1", devices = six } })
    assert.are.equal(400, r.status)
    assert.are.equal(40000003, r.json.code)
    assert.are.equal("DEVICE_COUNT_EXCEEDED", r.json.message)
    r = s:request("PUT", "/kcs/v1/kc/devices/unassign", { headers = h, body = { deviceIds = six } })
    assert.are.equal(400, r.status)
    assert.are.equal(40000000, r.json.code)
    r = s:request("POST", "/kc/v2/profiles/bulkUnassign", { headers = b, body = { deviceIds = six } })
    assert.are.equal(40000000, r.json.code)
    -- five is fine
    r = s:request("PUT", "/kcs/v2/kme/devices/unassignProfile", { headers = b, body = { deviceIds = imeis(5) } })
    assert.are.equal(200, r.status)
  end)

  it("changes limits per service at run time", function()
    local r = s:request("POST", "/__sim/limits", { body = { bulk = { kg = 2 } } })
    assert.are.equal(200, r.status)
    assert.are.same({ kme = 5, kg = 2, kdp = 5, kc = 5 }, r.json.bulk)
    local h = L.headers()
    r = s:request("POST", "/kcs/v1.1/kg/devices/unlockAsync", { headers = h, body = { deviceUid = imeis(3) } })
    assert.are.equal(4000316, r.json.error.code)
    for _, bad in ipairs { { bulk = 0 }, { bulk = { kx = 3 } }, { bulk = 2.5 }, { rate = -1 }, { burst = 0.5 } } do
      assert.are.equal(400, s:request("POST", "/__sim/limits", { body = bad }).status)
    end
    s:request("POST", "/__sim/limits", { body = { bulk = 5 } })
  end)

  it("answers partial bulk calls with each service's per-device outcomes", function()
    local b, h = sim.bearer(s), L.headers()
    local kme = s:request("GET", "/kcs/v1/kme/devices/list", { headers = b }).json.deviceList
    -- KME delete: success / failed / notFound lists of the ids as sent
    local r = s:request("POST", "/kcs/v1/kme/devices/delete", { headers = b, body = { devices = { imeiOrSerials = {
      kme[1].mei, kme[2].serialNumber, imeis(1)[1], "no good!" } } } })
    assert.are.same({ kme[1].mei, kme[2].serialNumber }, r.json.successDeviceList)
    assert.are.same({ imeis(1)[1] }, r.json.notFoundDeviceList)
    assert.are.same({ "no good!" }, r.json.failedDeviceList)
    -- KME v2 unassign: valid / notFound / invalid
    r = s:request("PUT", "/kcs/v2/kme/devices/unassignProfile", { headers = b, body = { deviceIds = {
      kme[3].id, imeis(2)[2], "no good!" } } })
    assert.are.same({ kme[3].id }, r.json.validDeviceList)
    assert.are.same({ imeis(2)[2] }, r.json.notFoundDeviceList)
    assert.are.same({ "no good!" }, r.json.invalidDeviceList)
    assert.are.equal(3, r.json.totalCount)
    -- Knox Guard: one resultList entry per device, in order
    local kg = s:request("POST", "/kcs/v1.1/kg/devices/list", { headers = h, body = {} }).json.deviceList
    r = s:request("POST", "/kcs/v1.1/kg/devices/completeAsync", { headers = h, body = { deviceList = {
      { objectId = kg[1].objectId }, { deviceUid = imeis(1)[1] }, { objectId = kg[9].objectId } } } })
    assert.are.equal(200, r.status)
    assert.are.same({ 3, 1, 2 }, { r.json.count, r.json.success, r.json.fail })
    assert.are.same({ result = "SUCCESS", requestedId = kg[1].objectId, objectId = kg[1].objectId },
      r.json.resultList[1])
    assert.are.equal("FAIL", r.json.resultList[2].result)
    assert.are.equal(imeis(1)[1], r.json.resultList[2].requestedId)
    assert.are.same({ code = "4040300", message = "DEVICE_NOT_FOUND", reason = r.json.resultList[2].error.reason },
      r.json.resultList[2].error)
    assert.are.equal("4000310", r.json.resultList[3].error.code)  -- device 9 is Completed already
    -- Knox Configure v1: counts
    local kc = s:request("GET", "/kcs/v1/kc/devices", { headers = h }).json.deviceList
    r = s:request("PUT", "/kcs/v1/kc/devices/unassign", { headers = h, body = { deviceIds = { kc[4].deviceUId,
      imeis(1)[1] } } })
    assert.are.same({ totalCount = 2, successCount = 1, pendingCount = 0, failedCount = 1 }, r.json)
  end)
end)
