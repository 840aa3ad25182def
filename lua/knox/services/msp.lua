--- Knox MSP Portal API (/msp/v1 on api.samsungknox.com). OAuth only.
-- Paths: shared/knox-docs/api-notes.md §4.3. Paging parameters are
-- UNCONFIRMED, so list_customers has no each_ iterator.
local hosts = require "knox.services.hosts"

return {
  name = "msp",
  title = "Knox MSP Portal",
  routes = {
    -- UNCONFIRMED which MSP calls read the tenant header; the MSP's
    -- per-customer calls (/profiles) are documented with it
    { name = "msp", prefixes = { "^/msp/" }, hosts = hosts.api, schemes = { oauth2 = { tenant = true } } },
  },
  catalog_fallback = "auth",
  errors = {
    auth = { ["4030000"] = true },
    retry = { ["5000000"] = true },
  },
  endpoints = {
    list_customers = { "GET", "/msp/v1/managedCustomers" },
    get_customer = { "GET", "/msp/v1/managedCustomers/{customerId}" },
    create_customer = { "POST", "/msp/v1/managedCustomers" },
    link_customer = { "POST", "/msp/v1/managedCustomers/link" },
    delink_customer = { "POST", "/msp/v1/managedCustomers/delink" },
    update_customer = { "PUT", "/msp/v1/managedCustomers/{customerId}" },
    list_profiles = { "GET", "/msp/v1/profiles" },
  },
}
