--- Knox Deployment Program Gen2, for resellers (/kcs/v1/rp).
-- Paths: shared/knox-docs/api-notes.md §4.4. Uploads and deletes are
-- asynchronous: poll device_status with the transactionId you sent rather
-- than re-submitting.
local hosts = require "knox.services.hosts"

local PAGE_NUM = { "pageNum", "integer", min = 0 }
local PAGE_SIZE = { "pageSize", "integer", min = 1, max = 1000 }
local RESELLER = { "resellerId", "string", required = true }
local UPLOAD_ARGS = {
  { "transactionId", "string", doc = "your id for the upload, letters and digits (generated when absent; "
    .. "a chunked call sends <id>c<n> per chunk)" },
  RESELLER, { "customerId", "string", required = true },
  { "devices", "devices", required = true, doc = "IMEIs, MEIDs or serial numbers" },
  { "type", "string", default = "IMEI", enum = { "IMEI", "MEID", "SERIAL" } },
  { "orderNo", "string" }, { "vendorId", "string" }, { "targetService", "string" },
  { "profileAliases", "array" },
}

-- Each chunk of an upload is its own transaction (Knox refuses a used
-- transactionId with 40000014): the caller's id as is for one chunk,
-- <id>c<n> for several, a random one when none was given.
local function chunk_tx(args, i, n)
  if args.transactionId == nil then
    args.transactionId = ("%08x%08x%04x"):format(math.random(0, 0xffffffff), math.random(0, 0xffffffff), i)
  elseif n > 1 then
    args.transactionId = args.transactionId .. "c" .. i
  end
end

return {
  name = "kdp",
  title = "Knox Deployment Program",
  routes = {
    -- the docs disagree on the scheme (older pages: x-knox-apitoken, Sep
    -- 2025: OAuth), so both are accepted; the order of the client's
    -- providers decides. Tenant with OAuth: UNCONFIRMED, as for KME.
    -- host: the global api host is the recommended base since Aug 2025
    -- (api-notes-2 §1.3); the regional kcs hosts still work and are
    -- selectable with endpoints = { kdp = "https://eu-kcs-api.samsungknox.com" }
    { name = "kdp", prefixes = { "^/kcs/v[%d.]+/rp%f[/%-\0]", "^/bulkenroll/" }, hosts = hosts.api,
      schemes = { legacy = { tenant = false }, oauth2 = { tenant = true } } },
  },
  catalog_fallback = "auth",
  errors = {
    auth = { ["4012250"] = true, ["40300000"] = true },
  },
  bulk = {
    -- the status answers list only the devices that failed, each with its
    -- code (flat: devices[]; wrapped: devices.transactions[].devices[])
    lists = { devices = "failed" },
    ids = { "deviceId", "mei", "imei", "meid", "serialNumber", "id" },
  },
  endpoints = {
    upload_devices = { "PUT", "/kcs/v1/rp/devices/upload",
      doc = "Uploads devices for a customer (asynchronous: the answer's :wait() polls device_status). "
        .. "Re-uploading a device answers DEVICE_DUPLICATE for it, the others are uploaded.",
      args = UPLOAD_ARGS, bulk = { limit = 1000, partial = true, per_chunk = chunk_tx },
      async = { status = "device_status", id = "transactionId", pass = { "resellerId", "customerId" } } },
    delete_devices = { "PUT", "/kcs/v1/rp/devices/delete",
      doc = "Deletes uploaded devices (asynchronous, as upload_devices).",
      args = UPLOAD_ARGS, bulk = { limit = 1000, partial = true, per_chunk = chunk_tx },
      async = { status = "device_status", id = "transactionId", pass = { "resellerId", "customerId" } } },
    device_status = { "GET", "/kcs/v1/rp/devices/status",
      doc = "The state of upload/delete transactions (flat, or wrapped under devices.transactions).",
      args = { RESELLER, { "customerId", "string" }, { "transactionId", "string" }, PAGE_NUM, PAGE_SIZE } },
    list_devices = { "GET", "/kcs/v1/rp/devices", each = "each_device", items = "devices",
      doc = "Lists the reseller's uploaded devices, a page at a time.",
      args = { RESELLER, { "customerId", "string" }, PAGE_NUM, PAGE_SIZE } },
    list_customers = { "GET", "/kcs/v1/rp/customers/list", each = "each_customer", items = "customers",
      doc = "Lists the reseller's associated customers.",
      args = { RESELLER, PAGE_NUM, PAGE_SIZE } },
    -- resellerId and customerId go as headers since 20.07 (api-notes-2 §1.3)
    list_profile_aliases = { "GET", "/kcs/v1/rp/profilealias/kme",
      doc = "The customer's KME profile aliases a reseller can name in uploads.",
      args = { { "resellerId", "string", required = true, ["in"] = "header" },
        { "customerId", "string", required = true, ["in"] = "header" } } },
  },
}
