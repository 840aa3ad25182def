--- Knox Guard v1.1 (/kcs/v1.1/kg). Legacy x-knox-apitoken only.
-- Paths: shared/knox-docs/api-notes.md §4.2 (several are MED confidence).
-- The list call is a POST that changes nothing, so it is marked idempotent
-- and retried like a read.
local hosts = require "knox.services.hosts"

local ep = {
  authorization = { "GET", "/kcs/v1.1/kg/authorization" },
  list_devices = { "POST", "/kcs/v1.1/kg/devices/list", each = "each_device", items = "deviceList",
    idempotent = true, body = true },
  get_device = { "GET", "/kcs/v1.1/kg/devices/{objectId}" },
  upload_devices = { "POST", "/kcs/v1.1/kg/devices/uploads" },
}
for _, action in ipairs { "approve", "lock", "unlock", "blink", "complete", "delete" } do
  ep[action] = { "POST", "/kcs/v1.1/kg/devices/" .. action }
end
ep.send_message = { "POST", "/kcs/v1.1/kg/devices/sendMessage" }
for _, a in ipairs { { "lock_async", "lockAsync" }, { "unlock_async", "unlockAsync" },
  { "blink_async", "blinkAsync" }, { "complete_async", "completeAsync" },
  { "send_message_async", "sendMessageAsync" } } do
  ep[a[1]] = { "POST", "/kcs/v1.1/kg/devices/" .. a[2] }
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
  },
  endpoints = ep,
}
