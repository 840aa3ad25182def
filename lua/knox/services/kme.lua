--- Knox Mobile Enrollment customer API (/kcs/v1/kme, /kcs/v2/kme).
-- Legacy (x-knox-apitoken) or OAuth 2.0. Paths: shared/knox-docs/api-notes.md
-- §4.1. Body fields beyond those named there are the caller's to supply.
local hosts = require "knox.services.hosts"

local PAGE_NUM = { "pageNum", "integer", min = 0, doc = "page number, from 0" }
local PAGE_SIZE = { "pageSize", "integer", min = 1, max = 1000, doc = "items per page (default 100)" }
-- required with the legacy scheme, optional with OAuth (api-notes-2 §1.2)
local CUSTOMER = { "customerId", "string", doc = "the customer id (optional with OAuth)" }
local DEVICES_REQ = { "devices", "devices", required = true, wire = "deviceIds",
  doc = "IMEIs or serial numbers" }
local PROFILE_FIELDS = {
  { "profileName", "string", required = true }, { "description", "string" },
  { "doEnabled", "boolean", doc = "device owner mode" }, { "aeEnabled", "boolean", doc = "Android Enterprise" },
  { "supportPhoneNumber", "string" }, { "supportEmailAddress", "string", doc = "required unless doEnabled" },
  { "skipSetupWizard", "boolean" }, { "allowUserCancel", "boolean" }, { "supportedMDM", "string" },
  { "mdmApkUrl", "string" }, { "mdmServerUrl", "string" }, { "customData", "string" },
}
local PROFILE_ARGS, PROFILE_ARGS_TX = { CUSTOMER }, { CUSTOMER, { "transactionId", "string",
  doc = "your id for the transaction (letters and digits); generated when absent" } }
for _, a in ipairs(PROFILE_FIELDS) do
  PROFILE_ARGS[#PROFILE_ARGS + 1] = a
  PROFILE_ARGS_TX[#PROFILE_ARGS_TX + 1] = a
end

-- assign_profile with a device user: each device goes as an object with
-- userName/userToken, which Knox wants as KnoxEncryptionUtility output
-- (api-notes §6): plain text is encrypted here unless encrypted = true.
local function user_details(wire, args)
  if args.userName == nil and args.userToken == nil then return end
  local function enc(v)
    if v == nil or args.encrypted then return v end
    return require("knox.core").encrypt(v)
  end
  local name, token = enc(args.userName), enc(args.userToken)
  local list = {}
  for i, id in ipairs(wire.body.deviceIds) do list[i] = { deviceId = id, userName = name, userToken = token } end
  wire.body.deviceIds, wire.body.devices = nil, list
end

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
    list_devices = { "GET", "/kcs/v1/kme/devices/list", each = "each_device", items = "deviceList",
      doc = "Lists the customer's devices, a page at a time (deviceList, totalCount).",
      args = { PAGE_NUM, PAGE_SIZE, CUSTOMER,
        { "changedAfter", "string", doc = "only devices changed since: hours (24h), minutes (30m) or a date" } } },
    assign_profile = { "PUT", "/kcs/v1/kme/devices/assignProfile",
      doc = "Assigns a profile to devices. userName/userToken are encrypted with knox.encrypt unless "
        .. "encrypted = true says they already are.",
      args = { { "profileId", "string", required = true }, DEVICES_REQ, CUSTOMER,
        { "userName", "string", ["in"] = "none", doc = "the device user's name (plain text, encrypted for you)" },
        { "userToken", "string", ["in"] = "none", doc = "the device user's token (plain text, encrypted for you)" },
        { "encrypted", "boolean", ["in"] = "none", doc = "userName/userToken are KnoxEncryptionUtility output" } },
      finish = user_details,
      bulk = { limit = 1000 } },
    unassign_profile = { "PUT", "/kcs/v1/kme/devices/unassignProfile",
      doc = "Removes the profile from devices (IMEIs or serial numbers).",
      args = { DEVICES_REQ, CUSTOMER }, bulk = { limit = 1000 } },
    -- v2 partial-success unassign; release notes say POST, the scopes table
    -- PUT (UNCONFIRMED): PUT, as the scopes table lists it.
    unassign_profile_v2 = { "PUT", "/kcs/v2/kme/devices/unassignProfile",
      doc = "Removes the profile from devices (Get-Devices id, IMEI or serial); answers which were not found "
        .. "or invalid (a partial success).",
      args = { DEVICES_REQ, CUSTOMER }, bulk = { limit = 1000, partial = true } },
    delete_devices = { "POST", "/kcs/v1/kme/devices/delete",
      doc = "Deletes devices from KME (successDeviceList, failedDeviceList, notFoundDeviceList).",
      args = { { "devices", "devices", required = true, wire = "devices.imeiOrSerials" }, CUSTOMER },
      bulk = { limit = 1000, partial = true } },
    list_uploads = { "GET", "/kcs/v1/kme/devices/uploads/list",
      doc = "Lists bulk device uploads waiting for the customer's approval.",
      args = { PAGE_NUM, PAGE_SIZE, CUSTOMER } },
    -- request fields are not published (UNCONFIRMED): uploadIds and an
    -- action APPROVE | REJECT are the simulator's choice
    approve_uploads = { "POST", "/kcs/v1/kme/devices/uploads/approvals",
      doc = "Approves (or rejects) pending device uploads (successUploadList, failedUploadList, "
        .. "notFoundUploadList).",
      args = { { "uploadIds", "strings", required = true },
        { "action", "string", default = "APPROVE", enum = { "APPROVE", "REJECT" } }, CUSTOMER } },
    list_profiles = { "GET", "/kcs/v1/kme/profiles/list", each = "each_profile", items = "profileList",
      doc = "Lists the customer's KME profiles (the list field name is UNCONFIRMED).",
      args = { PAGE_NUM, PAGE_SIZE, CUSTOMER, { "search", "string", doc = "a part of the profile name" } } },
    get_profile = { "GET", "/kcs/v1/kme/profiles/{profileId}/get", doc = "One profile.",
      args = { { "profileId", "string", required = true }, CUSTOMER } },
    create_profile = { "POST", "/kcs/v1/kme/profiles/create", doc = "Creates a profile.",
      args = PROFILE_ARGS },
    create_profile_async = { "POST", "/kcs/v1/kme/profiles/createAsync",
      doc = "Creates a profile asynchronously; the answer's :wait() polls profile_status until the "
        .. "transaction completes.",
      args = PROFILE_ARGS_TX,
      async = { status = "profile_status", id = "transactionId", find = "profiles.transactions",
        pass = { "customerId" } } },
    profile_status = { "GET", "/kcs/v1/kme/profiles/status",
      doc = "The state of asynchronous profile transactions (profiles.transactions).",
      args = { CUSTOMER, { "transactionId", "string" }, PAGE_NUM, PAGE_SIZE } },
    update_profile = { "PUT", "/kcs/v1/kme/profiles/{profileId}", doc = "Replaces a profile's fields.",
      args = { { "profileId", "string", required = true }, table.unpack(PROFILE_ARGS) } },
    delete_profile = { "DELETE", "/kcs/v1/kme/profiles/{profileId}", doc = "Deletes a profile not in use.",
      args = { { "profileId", "string", required = true }, CUSTOMER } },
    -- the customer's reseller-management calls (scope kme.reseller); their
    -- request fields are not published (UNCONFIRMED): the simulator's choice
    -- (resellerIds and an action; an alias is profileAlias, profileId and
    -- the approved resellerId it is for)
    approve_reseller = { "POST", "/kcs/v1/kme/reseller/approvals",
      doc = "Approves (or rejects) resellers' requests to upload devices for the customer "
        .. "(successResellerList, failedResellerList, notFoundResellerList).",
      args = { { "resellerIds", "strings", required = true },
        { "action", "string", default = "APPROVE", enum = { "APPROVE", "REJECT" } }, CUSTOMER } },
    create_profile_alias = { "POST", "/kcs/v1/kme/reseller/profilealias",
      doc = "Creates a profile alias a reseller can name in KDP uploads.",
      args = { { "profileId", "string", required = true }, { "profileAlias", "string", required = true },
        { "resellerId", "string", required = true, doc = "an approved reseller" }, CUSTOMER } },
    update_profile_alias = { "PUT", "/kcs/v1/kme/reseller/profilealias/{profileAliasId}",
      doc = "Points a profile alias at another profile or reseller, or renames it.",
      args = { { "profileAliasId", "string", required = true }, { "profileId", "string" },
        { "profileAlias", "string" }, { "resellerId", "string" }, CUSTOMER } },
    delete_profile_alias = { "DELETE", "/kcs/v1/kme/reseller/profilealias/{profileAliasId}",
      doc = "Deletes a profile alias.", args = { { "profileAliasId", "string", required = true }, CUSTOMER } },
  },
}
