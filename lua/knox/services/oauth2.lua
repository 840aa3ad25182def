--- The OAuth 2.0 token endpoint (/ams/v1/oauth2/token on api) and the
-- RFC 6749/6750 error codes any bearer-protected API may answer with.
-- UNCONFIRMED for Knox: its token endpoint's error body is not documented
-- (api-notes §3.6); the codes are the standard ones.
local hosts = require "knox.services.hosts"

return {
  name = "oauth2",
  title = "OAuth 2.0",
  routes = {
    { name = "oauth", prefixes = { "^/ams/v%d+/oauth2/" }, hosts = hosts.api, schemes = {} },
  },
  token = true,
  catalog_fallback = "auth",
  errors = {
    auth = {
      ["invalid_request"] = true, ["invalid_client"] = true, ["invalid_grant"] = true,
      ["unauthorized_client"] = true, ["unsupported_grant_type"] = true, ["invalid_scope"] = true,
      ["invalid_token"] = true, ["insufficient_scope"] = true, ["access_denied"] = true
    },
    renew = { ["invalid_token"] = true },
    retry = { ["server_error"] = true, ["temporarily_unavailable"] = true },
  },
}
