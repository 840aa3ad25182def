--- Knox Mobile Enrollment customer API (/kcs/v1/kme). Legacy or OAuth.
-- Paths: shared/knox-docs/api-notes.md §4.1. Body fields beyond those named
-- there are the caller's to supply.
return {
  name = "kme",
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
