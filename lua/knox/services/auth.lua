--- Knox Cloud Authentication (/ams/v1/users/accesstoken ...): the legacy
-- token endpoint, and the token check in front of every kcs service (which
-- answers with these codes whatever the service: see catalog_fallback).
local hosts = require "knox.services.hosts"

return {
  name = "auth",
  title = "Knox Cloud Authentication",
  routes = {
    { name = "auth", prefixes = { "^/ams/" }, hosts = hosts.kcs, schemes = {} },
  },
  token = true,
  errors = {
    auth = {
      ["4002250"] = true, ["4002251"] = true, ["4010011"] = true, ["40122050"] = true, ["4012250"] = true,
      ["4030000"] = true, ["4032251"] = true, ["4032252"] = true, ["4042251"] = true, ["4042252"] = true
    },
    renew = { ["4002250"] = true, ["4032251"] = true, ["4032252"] = true },
  },
}
