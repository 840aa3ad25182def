--- Knox Asset Intelligence (/kai/v1 on api.samsungknox.com). OAuth only
-- (new client ids since 24.09, api-notes §1). Its error body is Knox
-- Guard's shape. No endpoints yet: client:request reaches it.
local hosts = require "knox.services.hosts"

return {
  name = "kai",
  title = "Knox Asset Intelligence",
  routes = {
    { name = "kai", prefixes = { "^/kai/" }, hosts = hosts.api, schemes = { oauth2 = { tenant = true } } },
  },
  catalog_fallback = "auth",
  errors = {},
}
