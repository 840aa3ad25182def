--- Knox Deployment Program Gen2, for resellers (/kcs/v1/rp).
-- Paths: shared/knox-docs/api-notes.md §4.4. Uploads and deletes are
-- asynchronous: poll device_status with the transactionId you sent rather
-- than re-submitting.
return {
  name = "kdp",
  endpoints = {
    upload_devices = { "PUT", "/kcs/v1/rp/devices/upload" },
    delete_devices = { "PUT", "/kcs/v1/rp/devices/delete" },
    device_status = { "GET", "/kcs/v1/rp/devices/status" },
    list_devices = { "GET", "/kcs/v1/rp/devices", each = "each_device" },
    list_customers = { "GET", "/kcs/v1/rp/customers/list", each = "each_customer", items = "customers" },
  },
}
