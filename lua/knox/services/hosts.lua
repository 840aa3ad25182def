--- knox.services.hosts: the Knox hosts per region, as data the service
-- files name in their routes. A client overrides any route's host with
-- `endpoints = { <route> = url }` or all of them with `base_url`.
-- (shared/knox-docs/api-notes.md §1: legacy and kcs services on the
-- regional kcs host; OAuth 2.0 and OAuth-only services on api.)
return {
  regions = { "us", "eu" },
  kcs = { us = "https://us-kcs-api.samsungknox.com", eu = "https://eu-kcs-api.samsungknox.com" },
  -- one global host for OAuth: api-notes §1 documents no regional variant
  api = { us = "https://api.samsungknox.com", eu = "https://api.samsungknox.com" },
}
