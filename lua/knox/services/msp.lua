--- Knox MSP Portal API (/msp/v1 on api.samsungknox.com). OAuth only.
-- Paths: shared/knox-docs/api-notes.md §4.3. Paging parameters are
-- UNCONFIRMED, so list_customers has no each_ iterator.
return {
  name = "msp",
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
