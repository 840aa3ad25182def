--- Knox Deployment Program Gen2, for resellers (/kcs/v1/rp).
-- Paths: shared/knox-docs/api-notes.md §4.4. Uploads and deletes are
-- asynchronous: poll device_status with the transactionId you sent rather
-- than re-submitting.
local hosts = require "knox.services.hosts"

return {
  name = "kdp",
  title = "Knox Deployment Program",
  routes = {
    -- the docs disagree on the scheme (older pages: x-knox-apitoken, Sep
    -- 2025: OAuth), so both are accepted; the order of the client's
    -- providers decides. Tenant with OAuth: UNCONFIRMED, as for KME.
    { name = "kdp", prefixes = { "^/kcs/v[%d.]+/rp%f[/%-\0]", "^/bulkenroll/" }, hosts = hosts.kcs,
      schemes = { legacy = { tenant = false }, oauth2 = { tenant = true } } },
  },
  catalog_fallback = "auth",
  errors = {
    auth = { ["4012250"] = true, ["40300000"] = true },
  },
  bulk = {
    -- upload/status answers: devices[] with a per-device code
    lists = { devices = "results" },
  },
  endpoints = {
    upload_devices = { "PUT", "/kcs/v1/rp/devices/upload" },
    delete_devices = { "PUT", "/kcs/v1/rp/devices/delete" },
    device_status = { "GET", "/kcs/v1/rp/devices/status" },
    list_devices = { "GET", "/kcs/v1/rp/devices", each = "each_device" },
    list_customers = { "GET", "/kcs/v1/rp/customers/list", each = "each_customer", items = "customers" },
  },
}
