--- Knox MSP Portal API (/msp/v1 on api.samsungknox.com). OAuth only.
-- Paths: shared/knox-docs/api-notes.md §4.3 and api-notes-2 §1.5. Paging
-- (pageNum/pageSize integers, sortOrder) is documented since 25.07.
local hosts = require "knox.services.hosts"

local CUSTOMER_FIELDS = {
  { "companyName", "string", required = true }, { "email", "string", required = true },
  { "country", "string", required = true }, { "officeNumber", "string" }, { "services", "strings" },
  { "accessType", "string", doc = "older name of managementType" },
  { "customerAdminManagement", "boolean" }, { "companySize", "string" }, { "industry", "string" },
  { "street1", "string" },
  { "street2", "string" }, { "city", "string" }, { "stateOrProvince", "string" }, { "zipCode", "string" },
  { "website", "string" }, { "managementType", "string" }, { "managedServices", "array" },
  { "kgTenantInfo", "object", doc = "{ kgDomainType, kgTenantType, phone, email } (26.01)" },
}
local UPDATE_FIELDS = { { "customerId", "string", required = true } }
for _, a in ipairs(CUSTOMER_FIELDS) do
  UPDATE_FIELDS[#UPDATE_FIELDS + 1] = { a[1], a[2], doc = a.doc }
end

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
    list_customers = { "GET", "/msp/v1/managedCustomers", each = "each_customer", items = "customers",
      doc = "Lists the MSP's managed customers (customers, totalCount as a string).",
      args = { { "pageNum", "integer", min = 0 }, { "pageSize", "integer", min = 1, max = 1000 },
        { "sortOrder", "string", enum = { "ascending", "descending", "Ascending", "Descending" } },
        { "companyName", "string" }, { "email", "string" } } },
    get_customer = { "GET", "/msp/v1/managedCustomers/{customerId}", doc = "One managed customer.",
      args = { { "customerId", "string", required = true } } },
    create_customer = { "POST", "/msp/v1/managedCustomers", doc = "Creates a managed customer.",
      args = CUSTOMER_FIELDS },
    link_customer = { "POST", "/msp/v1/managedCustomers/link", doc = "Links an existing customer.",
      args = { { "customerId", "string", required = true } } },
    delink_customer = { "POST", "/msp/v1/managedCustomers/delink",
      doc = "Asks a customer to stop being managed (the customer must accept).",
      args = { { "customerId", "string", required = true } } },
    update_customer = { "PUT", "/msp/v1/managedCustomers/{customerId}", doc = "Edits a managed customer.",
      args = UPDATE_FIELDS },
    list_profiles = { "GET", "/msp/v1/profiles", doc = "Profiles of managed customers.",
      -- lists as comma-separated values (UNCONFIRMED; the simulator's choice)
      args = { { "customerIds", "strings", join = "," }, { "profileIds", "strings", join = "," },
        { "service", "string" },
        { "pageNum", "integer", min = 0 }, { "pageSize", "integer", min = 1, max = 1000 } } },
    -- request fields of copy/overwrite are not published (UNCONFIRMED):
    -- the simulator's choice
    copy_profiles = { "POST", "/msp/v1/profiles/copy",
      doc = "Copies a profile to managed customers, optionally under a new name (results per customer; "
        .. "206 when some failed).",
      args = { { "sourceProfileId", "string", required = true },
        { "targetCustomerIds", "strings", required = true }, { "profileName", "string", doc = "the copies' name" } } },
    overwrite_profiles = { "POST", "/msp/v1/profiles/overwrite",
      doc = "Overwrites child profiles with their parent profile (results per target).",
      args = { { "sourceProfileId", "string", required = true },
        { "targets", "array", required = true, doc = "{ { customerId =, profileId = }, ... }" } } },
  },
}
