--- Knox Configure v1 (/kcs/v1/kc, legacy auth) and v2 (/kc/v2, OAuth
-- only; api-notes-2 §1.6-1.7). Paths: shared/knox-docs/api-notes.md §4.5.
local hosts = require "knox.services.hosts"

local PAGE_NUM = { "pageNum", "integer", min = 0 }
local PAGE_SIZE = { "pageSize", "integer", min = 1, max = 1000 }
-- ascending|descending (api-notes §4.5, v1 devices); the same words for the
-- other lists, whose values are not published
local SORT = { "sortOrder", "string", enum = { "ascending", "descending" } }
-- Knox Configure's bulk limits are not published: 1000 (v1) and 100 (v2,
-- its page limit) are knox's defaults; client option bulk_limits.kc
-- overrides them.
local DEVICES = { "devices", "devices", required = true, wire = "deviceIds", doc = "device ids (IMEI or serial)" }

return {
  name = "kc",
  title = "Knox Configure",
  routes = {
    { name = "kc", prefixes = { "^/kcs/v[%d.]+/kc%f[/%-\0]" }, hosts = hosts.kcs,
      schemes = { legacy = { tenant = false } } },
    -- v2's host https://api.samsungknox.com/kc/v2 is CONFIRMED (api-notes-2 §1.7)
    { name = "kc2", label = "kc (v2)", prefixes = { "^/kc/v2%f[/%-\0]" }, hosts = hosts.api,
      schemes = { oauth2 = { tenant = true } } },
  },
  catalog_fallback = "auth",
  errors = {
    auth = { ["4012250"] = true, ["40300000"] = true },
    retry = { ["50000000"] = true },
  },
  bulk = {
    ids = { "deviceId", "deviceUId", "id", "imei", "serialNumber" },
  },
  endpoints = {
    -- v1 (legacy auth)
    list_devices = { "GET", "/kcs/v1/kc/devices", each = "each_device", items = "deviceList",
      doc = "Lists devices (v1), a page at a time.",
      args = { PAGE_NUM, PAGE_SIZE, { "devices", "strings", doc = "only these device ids (IMEI or serial)" },
        { "profileIds", "strings" }, { "sortBy", "string" }, SORT } },
    assign = { "PUT", "/kcs/v1/kc/devices/assign",
      doc = "Assigns a profile and license to devices (totalCount, successCount, pendingCount, failedCount).",
      args = { DEVICES, { "assignFeature", "object", required = true,
        doc = "{ profileId | profileName, licenseId | licenseKey, replaceLicense }" } },
      bulk = { limit = 1000 } },
    unassign = { "PUT", "/kcs/v1/kc/devices/unassign", doc = "Removes the profile from devices.",
      args = { DEVICES }, bulk = { limit = 1000 } },
    send_command = { "PUT", "/kcs/v1/kc/devices/command", doc = "Sends a command to devices.",
      args = { DEVICES, { "command", "string", required = true } }, bulk = { limit = 1000 } },
    -- the ids go in the query string: chunks of 100 keep URLs short
    delete_devices = { "DELETE", "/kcs/v1/kc/devices", doc = "Deletes devices (query deviceIds).",
      args = { { "devices", "devices", required = true, wire = "deviceIds" } }, bulk = { limit = 100 } },
    device_logs = { "GET", "/kcs/v1/kc/devices/{deviceId}/logs", doc = "A device's logs.",
      args = { { "deviceId", "string", required = true }, PAGE_NUM, PAGE_SIZE } },
    list_profiles = { "GET", "/kcs/v1/kc/profiles", each = "each_profile", items = "contents",
      doc = "Lists profiles (v1).",
      args = { PAGE_NUM, PAGE_SIZE, { "profileIds", "strings" }, { "profileNames", "strings" },
        { "profileType", "string" }, { "knoxVersion", "string" }, { "sortBy", "string" }, SORT,
        { "deviceProductType", "string" }, { "deviceLevel", "string" } } },
    profile_details = { "GET", "/kcs/v1/kc/profiles/{profileId}/details", doc = "A profile's details.",
      args = { { "profileId", "string", required = true } } },
    delete_profiles = { "DELETE", "/kcs/v1/kc/profiles", doc = "Deletes profiles (query profileIds).",
      args = { { "profileIds", "strings", required = true } } },
    list_licenses = { "GET", "/kcs/v1/kc/licenses", each = "each_license", items = "licenses",
      doc = "Lists licenses (v1: licenses, totalCount).",
      args = { PAGE_NUM, PAGE_SIZE, { "ids", "strings" }, { "types", "strings" }, { "status", "string" },
        { "searchText", "string" }, { "sortBy", "string" }, SORT } },
    get_license = { "GET", "/kcs/v1/kc/licenses/{licenseId}", doc = "One license.",
      args = { { "licenseId", "string", required = true } } },

    -- v2 (OAuth; https://api.samsungknox.com/kc/v2)
    get_devices_v2 = { "POST", "/kc/v2/devices/getDevices", idempotent = true, body = true,
      each = "each_device_v2", items = "devices", cursor = { arg = "searchAfter", next = "nextSearchAfter" },
      doc = "Lists devices (v2): code, message, pageNum, pageSize, totalCount, totalPages, size, devices; "
        .. "each_device_v2 walks them with the searchAfter cursor.",
      args = { { "deviceIds", "strings" }, { "profileIds", "strings" },
        { "deviceState", "strings", doc = "states to match (an array)" }, PAGE_NUM,
        { "pageSize", "integer", min = 1, max = 100, doc = "default 25, at most 100" },
        { "searchAfter", "cursor", doc = "the nextSearchAfter of the previous page" },
        { "sortBy", "string" }, SORT } },
    device_logs_v2 = { "POST", "/kc/v2/devices/getDeviceLogs", idempotent = true, doc = "Device logs (v2).",
      args = { { "deviceId", "string", required = true }, PAGE_NUM, PAGE_SIZE } },
    send_command_v2 = { "POST", "/kc/v2/devices/sendCommand", doc = "Sends a command to devices (v2).",
      args = { DEVICES, { "command", "string", required = true } }, bulk = { limit = 100 } },
    delete_devices_v2 = { "POST", "/kc/v2/devices/bulkDelete", doc = "Deletes devices (v2).",
      args = { DEVICES }, bulk = { limit = 100 } },
    list_profiles_v2 = { "GET", "/kc/v2/profiles", doc = "Lists profiles (v2).",
      args = { PAGE_NUM, PAGE_SIZE } },
    -- the request fields are not published (UNCONFIRMED): a v1 profile's
    -- item fields (name, profileType, knoxVersion, deviceProductType), as
    -- the simulator reads them
    create_profile_v2 = { "POST", "/kc/v2/profiles", doc = "Creates a profile (v2).",
      args = { { "name", "string", required = true, doc = "the profile's name (unique)" },
        { "profileType", "string", enum = { "ProfileWithoutKnox", "ProfileWithKnox" } },
        { "knoxVersion", "string" }, { "deviceProductType", "string", enum = { "phone", "tablet" } } } },
    get_profile_v2 = { "GET", "/kc/v2/profiles/{profileId}", doc = "One profile (v2).",
      args = { { "profileId", "string", required = true } } },
    delete_profile_v2 = { "DELETE", "/kc/v2/profiles/{profileId}", doc = "Deletes a profile (v2).",
      args = { { "profileId", "string", required = true } } },
    bulk_assign_v2 = { "POST", "/kc/v2/profiles/{profileId}/bulkAssign",
      doc = "Assigns a profile with a license to devices (v2).",
      args = { { "profileId", "string", required = true }, { "licenseKey", "string", required = true }, DEVICES },
      bulk = { limit = 100 } },
    bulk_unassign_v2 = { "POST", "/kc/v2/profiles/bulkUnassign", doc = "Removes profiles from devices (v2).",
      args = { DEVICES }, bulk = { limit = 100 } },
    list_licenses_v2 = { "GET", "/kc/v2/licenses", doc = "Lists licenses (v2).", args = { PAGE_NUM, PAGE_SIZE } },
    get_license_v2 = { "GET", "/kc/v2/licenses/{licenseKey}", doc = "One license (v2).",
      args = { { "licenseKey", "string", required = true } } },
    delete_license_v2 = { "DELETE", "/kc/v2/licenses/{licenseKey}", doc = "Deletes a license (v2).",
      args = { { "licenseKey", "string", required = true } } },
  },
}
