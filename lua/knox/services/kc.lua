--- Knox Configure v1 (/kcs/v1/kc, legacy auth) and a few v2 calls (/kc/v2,
-- OAuth only). Paths: shared/knox-docs/api-notes.md §4.5.
local hosts = require "knox.services.hosts"

return {
  name = "kc",
  title = "Knox Configure",
  routes = {
    { name = "kc", prefixes = { "^/kcs/v[%d.]+/kc%f[/%-\0]" }, hosts = hosts.kcs,
      schemes = { legacy = { tenant = false } } },
    -- v2's host is UNCONFIRMED: by analogy with MSP, api
    { name = "kc2", label = "kc (v2)", prefixes = { "^/kc/v2%f[/%-\0]" }, hosts = hosts.api,
      schemes = { oauth2 = { tenant = true } } },
  },
  catalog_fallback = "auth",
  errors = {
    auth = { ["4012250"] = true, ["40300000"] = true },
    retry = { ["50000000"] = true },
  },
  endpoints = {
    list_devices = { "GET", "/kcs/v1/kc/devices", each = "each_device", items = "deviceList" },
    assign = { "PUT", "/kcs/v1/kc/devices/assign" },
    unassign = { "PUT", "/kcs/v1/kc/devices/unassign" },
    list_profiles = { "GET", "/kcs/v1/kc/profiles", each = "each_profile", items = "contents" },
    list_licenses = { "GET", "/kcs/v1/kc/licenses" },
    get_devices_v2 = { "POST", "/kc/v2/devices/getDevices", idempotent = true, body = true },
  },
}
