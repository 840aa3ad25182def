--- Knox Configure v1 (/kcs/v1/kc, legacy auth) and a few v2 calls (/kc/v2,
-- OAuth only). Paths: shared/knox-docs/api-notes.md §4.5.
return {
  name = "kc",
  endpoints = {
    list_devices = { "GET", "/kcs/v1/kc/devices", each = "each_device", items = "deviceList" },
    assign = { "PUT", "/kcs/v1/kc/devices/assign" },
    unassign = { "PUT", "/kcs/v1/kc/devices/unassign" },
    list_profiles = { "GET", "/kcs/v1/kc/profiles", each = "each_profile", items = "contents" },
    list_licenses = { "GET", "/kcs/v1/kc/licenses" },
    get_devices_v2 = { "POST", "/kc/v2/devices/getDevices", idempotent = true, body = true },
  },
}
