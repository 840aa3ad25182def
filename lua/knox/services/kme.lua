--- Knox Mobile Enrollment customer API (/kcs/v1/kme, /kcs/v2/kme).
-- Legacy (x-knox-apitoken) or OAuth 2.0. Paths: shared/knox-docs/api-notes.md
-- §4.1. Body fields beyond those named there are the caller's to supply.
local hosts = require "knox.services.hosts"

return {
  name = "kme",
  title = "Knox Mobile Enrollment",
  routes = {
    -- the tenant header is honoured with OAuth (api-notes §3.4); with the
    -- legacy scheme it is ignored and the call acts on the key's own tenant
    { name = "kme", prefixes = { "^/kcs/v[%d.]+/kme%f[/%-\0]" }, hosts = hosts.kcs,
      schemes = { legacy = { tenant = false }, oauth2 = { tenant = true } } },
  },
  catalog_fallback = "auth",
  errors = {
    auth = {
      ["4010000"] = true, ["4010050"] = true, ["4002251"] = true, ["4012251"] = true, ["4012250"] = true,
      ["40300000"] = true, ["4030100"] = true, ["4042251"] = true
    },
    retry = { ["5000000"] = true },
    no_retry = { ["5000006"] = true },
  },
  bulk = {
    -- KME answers bulk calls with lists of the devices that did not take
    lists = { failed = "failed", notFound = "not_found", invalid = "invalid" },
  },
  endpoints = {
    list_devices = { "GET", "/kcs/v1/kme/devices/list", each = "each_device", items = "deviceList" },
    assign_profile = { "PUT", "/kcs/v1/kme/devices/assignProfile" },
    unassign_profile = { "PUT", "/kcs/v1/kme/devices/unassignProfile" },
    -- v2 partial-success unassign; release notes say POST, the scopes table
    -- PUT (UNCONFIRMED): PUT, as the scopes table lists it.
    unassign_profile_v2 = { "PUT", "/kcs/v2/kme/devices/unassignProfile" },
    delete_devices = { "POST", "/kcs/v1/kme/devices/delete" },
    list_uploads = { "GET", "/kcs/v1/kme/devices/uploads/list" },
    approve_uploads = { "POST", "/kcs/v1/kme/devices/uploads/approvals" },
    list_profiles = { "GET", "/kcs/v1/kme/profiles/list", each = "each_profile" },
    get_profile = { "GET", "/kcs/v1/kme/profiles/{profileId}/get" },
    create_profile = { "POST", "/kcs/v1/kme/profiles/create" },
    create_profile_async = { "POST", "/kcs/v1/kme/profiles/createAsync" },
    profile_status = { "GET", "/kcs/v1/kme/profiles/status" },
    update_profile = { "PUT", "/kcs/v1/kme/profiles/{profileId}" },
    delete_profile = { "DELETE", "/kcs/v1/kme/profiles/{profileId}" },
  },
}
