--- Knox Guard v1.1 (/kcs/v1.1/kg). Legacy x-knox-apitoken only.
-- Paths: shared/knox-docs/api-notes.md §4.2 (several are MED confidence).
-- The list call is a POST that changes nothing, so it is marked idempotent
-- and retried like a read.
local hosts = require "knox.services.hosts"

-- One device, named the way Knox Guard accepts: its objectId, IMEI/serial
-- (deviceUid) or approveId.
local ONE = { { "objectId", "string" }, { "deviceUid", "string", doc = "IMEI or serial number" },
  { "approveId", "string" } }
local function with(extra)
  local t = {}
  for _, a in ipairs(ONE) do t[#t + 1] = a end
  for _, a in ipairs(extra or {}) do t[#t + 1] = a end
  return t
end
local MESSAGE = { { "message", "string", doc = "shown on the device (at most 200 characters)" },
  { "email", "string" }, { "tel", "string" } }
-- blink limits are arrays (e.g. timeLimit = {23, 7}, daysLimit = {0, 1}),
-- as client code sends them (LOW-MED evidence, api-notes-2 §1.4)
local BLINK = { { "interval", "integer", min = 1 }, { "message", "string" }, { "email", "string" },
  { "tel", "string" }, { "timeLimitEnable", "boolean" }, { "daysLimitEnable", "boolean" },
  { "timeLimit", "array" }, { "daysLimit", "array" } }
local SEND = { { "message", "string", required = true }, { "tel", "string" }, { "email", "string" },
  { "enableFullscreen", "boolean" }, { "messageType", "string" } }

-- The bulk limit of the Async calls is not published (4000316
-- DEVICE_BULK_OPERATION_LIMIT_EXCEEDED exists): 1000 is knox's default,
-- client option bulk_limits.kg overrides it.
local BULK_LIMIT = 1000
local DEVICES = { "devices", "devices", required = true, wire = "deviceList",
  doc = "IMEIs or serial numbers (deviceUid)" }

local ep = {
  authorization = { "GET", "/kcs/v1.1/kg/authorization", doc = "Checks the credential (Basic).", args = {} },
  list_devices = { "POST", "/kcs/v1.1/kg/devices/list", each = "each_device", items = "deviceList",
    idempotent = true, body = true, doc = "Lists Knox Guard devices, a page at a time.",
    args = { { "pageNum", "integer", min = 0 }, { "pageSize", "integer", min = 1, max = 1000 },
      { "search", "string", doc = "IMEI, serial or objectId" }, { "status", "string" },
      { "sortOrder", "string", enum = { "asc", "desc", "ASC", "DESC" } } } },
  get_device = { "GET", "/kcs/v1.1/kg/devices/{objectId}", doc = "One device by objectId.",
    args = { { "objectId", "string", required = true } } },
  upload_devices = { "POST", "/kcs/v1.1/kg/devices/uploads",
    doc = "Uploads devices: deviceList = { { deviceUid =, approveId = }, ... } (resultList per device).",
    args = { { "deviceList", "array", required = true }, { "autoAccept", "boolean" }, { "autoLock", "boolean" },
      { "applySimControl", "boolean", doc = "needs a default SIM control policy (else 412)" },
      { "enableBlockFactoryReset", "boolean" }, { "blockDOProvision", "boolean" }, { "blockADBCommand", "boolean" } } },
  approve = { "POST", "/kcs/v1.1/kg/devices/approve",
    doc = "Approves a device: Pending -> Activating -> Active once the device confirms; the answer's "
      .. ":wait() polls get_device until the device leaves Activating.",
    args = with(), require_one = { "objectId", "deviceUid", "approveId" },
    async = { status = "get_device", id = "objectId" } },
  lock = { "POST", "/kcs/v1.1/kg/devices/lock", doc = "Locks a device and shows a message.",
    args = with(MESSAGE), require_one = { "objectId", "deviceUid", "approveId" } },
  unlock = { "POST", "/kcs/v1.1/kg/devices/unlock", doc = "Unlocks a device.",
    args = with(), require_one = { "objectId", "deviceUid", "approveId" } },
  complete = { "POST", "/kcs/v1.1/kg/devices/complete", doc = "Marks a device's payment complete.",
    args = with(), require_one = { "objectId", "deviceUid", "approveId" } },
  delete = { "POST", "/kcs/v1.1/kg/devices/delete",
    doc = "Deletes a device (only rejected or payment-complete devices).",
    args = with(), require_one = { "objectId", "deviceUid", "approveId" } },
  blink = { "POST", "/kcs/v1.1/kg/devices/blink", doc = "Shows a reminder on a device at intervals.",
    args = with(BLINK), require_one = { "objectId", "deviceUid", "approveId" } },
  send_message = { "POST", "/kcs/v1.1/kg/devices/sendMessage", doc = "Sends a message to a device.",
    args = with(SEND), require_one = { "objectId", "deviceUid", "approveId" } },
}
-- The Async calls take a device list (deviceList; PyKnox sends deviceUid:
-- [...] instead, UNCONFIRMED) and answer resultList, one entry per device.
for _, a in ipairs { { "lock_async", "lockAsync", MESSAGE }, { "unlock_async", "unlockAsync" },
  { "blink_async", "blinkAsync", BLINK }, { "complete_async", "completeAsync" },
  { "send_message_async", "sendMessageAsync", SEND } } do
  local args = { DEVICES }
  for _, x in ipairs(a[3] or {}) do args[#args + 1] = x end
  ep[a[1]] = { "POST", "/kcs/v1.1/kg/devices/" .. a[2], args = args, bulk = { limit = BULK_LIMIT, partial = true },
    doc = ("%s for many devices (resultList: one SUCCESS/FAIL entry per device)."):format(a[2]:gsub("Async$", "")) }
end
return {
  name = "kg",
  title = "Knox Guard",
  routes = {
    -- also /kcs/v1.1/kg-integration/... (the integration API)
    { name = "kg", prefixes = { "^/kcs/v[%d.]+/kg%f[/%-\0]" }, hosts = hosts.kcs,
      schemes = { legacy = { tenant = false } } },
  },
  catalog_fallback = "auth",
  errors = {
    auth = { ["4010000"] = true, ["4002102"] = true, ["4042101"] = true, ["4040100"] = true, ["4040900"] = true },
    retry = { ["5001804"] = true },
  },
  bulk = {
    -- {count, success, fail, resultList: [{..., result: "FAIL", error: {...}}]}:
    -- every outcome in one list, each element says whether it failed
    lists = { resultList = "results" },
    ids = { "requestedId", "deviceUid", "objectId", "approveId" },
  },
  endpoints = ep,
}
