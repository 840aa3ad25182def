--- Deterministic documents for spec/embed_spec.lua and its thread host's
-- worker (spec/support/embed/worker.lua): both build the same values.
local M = {}

--- A Knox-like device page of n devices; json is knox.json (for null and
-- the array marker). Strings with escapes, non-ASCII, control characters,
-- integers near the int64 limits, floats and empty containers included.
function M.page(json, n)
  local statuses = { "Accepted", "Pending", "Rejected", "Uploaded", "Assigned" }
  local devices = {}
  for i = 1, n do
    local tags = { "kme", "fleet-" .. (i % 17) }
    if i % 3 == 0 then tags[#tags + 1] = "région-eu \"q\" \\ /" end
    if i % 5 == 0 then tags[#tags + 1] = "tab\tnl\nnul\0end \u{1F600}" end
    devices[i] = {
      deviceId = ("35%013d"):format(8240051111 + i * 7),
      serialNumber = ("R58M%08X"):format(0x10000000 + i * 977),
      status = statuses[i % #statuses + 1],
      uploadDate = 1735689600000 + i * 86413,
      tags = tags,
      userId = json.null,
      approved = i % 4 ~= 0,
      batteryLevel = (i * 7919 % 1000000) / 10000,
      offset = i % 2 == 0 and math.mininteger + i or math.maxinteger - i,
      notes = json.array(),
      extra = i % 7 == 0 and { nested = { { deep = { i, -i, 0.5 } } } } or json.object(),
    }
  end
  return { totalCount = n, pageNum = 0, pageSize = n, devices = devices }
end

--- Claims to sign, the same in the spec and in each thread. key:sign
-- writes keys in lua_next order, which differs between lua_States (string
-- hashes are seeded per state): one key per object keeps the text fixed.
function M.claims()
  return { sub = { "embed-spec", 42, { "a", "b" }, { ok = true }, 0.5 } }
end

--- Deep equality of decoded JSON values (metatables ignored).
function M.same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    return a == b and math.type(a) == math.type(b)
  end
  for k, v in pairs(a) do
    if not M.same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

return M
