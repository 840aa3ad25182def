--- knox.sim Knox Mobile Enrollment (api-notes §4.1): devices list /
-- assignProfile / unassignProfile (v1 and v2) / delete, and profiles list /
-- get / create / createAsync + status / update / delete. Legacy and OAuth
-- (kme.* scopes); MSPs reach managed customers with x-wsm-managed-tenantid.
-- Errors: { errorId, code, message, data } with the KME codes.
--
-- KME's API reference (kme-api.yml) is not available here, so request and
-- response field names beyond those in api-notes are the simulator's
-- choice: deviceList / profileList arrays with totalCount, pageNum,
-- pageSize; devices named by deviceIds (IMEIs or serial numbers).
local json = require "knox.sim.json"
local codec = require "knox.sim.codec"
local absent = require("knox.sim.router").absent

local M = {}

-- TOO_MANY_DEVICES exists (4000019) but its limit is UNCONFIRMED; 1000 is
-- the simulator's choice.
M.MAX_DEVICES = 1000
local TOO_MANY = { 400, 4000019, "TOO_MANY_DEVICES" }

local function device_not_found(ctx, missing)
  ctx:fail(404, 4040300, "DEVICE_NOT_FOUND", "Some/All devices don't exist: " .. table.concat(missing, ", ", 1,
    math.min(#missing, 20)))
end

local function profile_not_found(ctx, id)
  ctx:fail(404, 4040400, "PROFILE_NOT_FOUND", "The requested profile does not exist: " .. codec.utf8_safe(id))
end

-- A device id is valid when it looks like a serial number or an IMEI
-- (fifteen digits must pass the Luhn check).
local function valid_id(id)
  if type(id) ~= "string" or id == "" or #id > 64 or not id:match("^[%w%-]+$") then return false end
  if #id == 15 and id:match("^%d+$") then return codec.valid_imei(id) end
  return true
end

-- Device ids from a body: deviceIds = [..] or devices = [{ deviceId | imei
-- | serialNumber, ... }] (or devices.imeiOrSerials = [..], the delete form).
local function body_device_ids(ctx, b)
  local ids = ctx:ids(b.deviceIds, "deviceIds", { max = M.MAX_DEVICES, too_many = TOO_MANY })
  local details = {}
  if not ids and not absent(b.devices) then
    if json.is_object(b.devices) and b.devices.imeiOrSerials then
      ids = ctx:ids(b.devices.imeiOrSerials, "devices.imeiOrSerials", { max = M.MAX_DEVICES, too_many = TOO_MANY })
    else
      local list = ctx:list(b.devices, "devices", { max = M.MAX_DEVICES, too_many = TOO_MANY })
      ids = {}
      for i, d in ipairs(list) do
        local id = type(d) == "string" and d or (json.is_object(d) and (d.deviceId or d.imei or d.serialNumber))
        if type(id) ~= "string" or id == "" or #id > 64 then
          ctx:invalid("devices[" .. i .. "] needs a deviceId, imei or serialNumber")
        end
        ids[i] = id
        if type(d) == "table" then details[id] = d end
      end
    end
  end
  if not ids or #ids == 0 then ctx:invalid("Device ID list cannot be empty") end
  return ids, details
end

-- userName / userToken must be KnoxEncryptionUtility output (api-notes §6):
-- base64 RSA-2048 ciphertext. The simulator cannot decrypt it (Samsung's
-- key), so it checks the shape and fails as Knox does (5000006) otherwise.
local function check_encrypted(ctx, d)
  for _, f in ipairs { "userName", "userToken" } do
    local v = d[f]
    if not absent(v) then
      local raw = type(v) == "string" and codec.unb64(v)
      if not raw or #raw ~= 256 then
        ctx:fail(500, 5000006, "RSA_DECRYPTION_FAIL", "Encountered an issue in decrypting text (" .. f .. ").")
      end
    end
  end
end

local function list_devices(ctx)
  local q, kme = ctx.query, ctx.tenant.kme
  ctx:check_customer(q.customerId)
  local list = kme.devices
  local after = q.changedAfter
  if after and after ~= "" then
    local n, unit = after:match("^(%d+)([hm])$")
    local since
    if n then
      since = ctx.now - tonumber(n) * (unit == "h" and 3600 or 60)
    else
      since = codec.parse_date(after)
    end
    if not since then ctx:invalid("changedAfter must be hours (24h), minutes (30m) or a date (2026-01-31)") end
    local filtered = {}
    for _, d in ipairs(list) do
      if d.updateTime >= since * 1000 then filtered[#filtered + 1] = d end
    end
    list = filtered
  end
  local items, num, size, total = ctx:page(list, q)
  return { totalCount = total, pageNum = num, pageSize = size, deviceList = items }
end

local function find_devices(ctx, ids)
  local kme, found, missing = ctx.tenant.kme, {}, {}
  for _, id in ipairs(ids) do
    local d = kme.by_id[id]
    if d then found[#found + 1] = d else missing[#missing + 1] = id end
  end
  return found, missing
end

local function assign(ctx)
  local b = ctx:body()
  ctx:check_customer(b.customerId)
  local pid = ctx:str(b.profileId, "profileId", { required = true, max = 64 })
  local ids, details = body_device_ids(ctx, b)
  local profile = ctx.tenant.kme.profiles_by_id[pid]
  if not profile then profile_not_found(ctx, pid) end
  local found, missing = find_devices(ctx, ids)
  if #missing > 0 then device_not_found(ctx, missing) end
  for _, d in pairs(details) do check_encrypted(ctx, d) end
  check_encrypted(ctx, b)
  local now = ctx:now_ms()
  for _, d in ipairs(found) do
    d.profileId, d.profileName, d.status, d.updateTime = profile.profileId, profile.profileName, "Assigned", now
    local det = details[d.deviceId] or details[d.serialNumber]
    if det and not absent(det.userName) then d.userAssigned = true end
  end
  return { totalCount = #found, processingCount = 0, deviceList = json.array() }
end

local function unassign_v1(ctx)
  local b = ctx:body()
  ctx:check_customer(b.customerId)
  local ids = body_device_ids(ctx, b)
  local found, missing = find_devices(ctx, ids)
  if #missing > 0 then device_not_found(ctx, missing) end
  local now = ctx:now_ms()
  for _, d in ipairs(found) do
    d.profileId, d.profileName, d.status, d.updateTime, d.userAssigned = nil, nil, "Unassigned", now, nil
  end
  return { totalCount = #found, processingCount = 0, deviceList = json.array() }
end

-- v2 (22.11): partial success, answered with valid / not-found / invalid
-- lists inside a 200 (the list names are the simulator's choice).
local function unassign_v2(ctx)
  local b = ctx:body()
  ctx:check_customer(b.customerId)
  local ids = ctx:list(b.deviceIds, "deviceIds", { required = true, max = M.MAX_DEVICES, too_many = TOO_MANY })
  local valid, notfound, invalid = json.array(), json.array(), json.array()
  local now = ctx:now_ms()
  for _, id in ipairs(ids) do
    if not valid_id(id) then
      invalid[#invalid + 1] = type(id) == "string" and codec.utf8_safe(id):sub(1, 64) or json.encode(id)
    else
      local d = ctx.tenant.kme.by_id[id]
      if d then
        d.profileId, d.profileName, d.status, d.updateTime, d.userAssigned = nil, nil, "Unassigned", now, nil
        valid[#valid + 1] = id
      else
        notfound[#notfound + 1] = id
      end
    end
  end
  return { totalCount = #ids, validDeviceList = valid, notFoundDeviceList = notfound, invalidDeviceList = invalid }
end

local function delete_devices(ctx)
  local b = ctx:body()
  ctx:check_customer(b.customerId)
  local ids = body_device_ids(ctx, b)
  local kme = ctx.tenant.kme
  local ok, failed, notfound = json.array(), json.array(), json.array()
  local gone = {}
  for _, id in ipairs(ids) do
    if not valid_id(id) then
      failed[#failed + 1] = codec.utf8_safe(id)
    else
      local d = kme.by_id[id]
      if d and not gone[d] then
        gone[d] = true
        ok[#ok + 1] = id
      elseif not d then
        notfound[#notfound + 1] = id
      end
    end
  end
  if next(gone) then
    local keep = {}
    for _, d in ipairs(kme.devices) do
      if not gone[d] then keep[#keep + 1] = d end
    end
    kme.devices = keep
    ctx.state:reindex(ctx.tenant)
  end
  return { successDeviceList = ok, failedDeviceList = failed, notFoundDeviceList = notfound }
end

-- Profiles ---------------------------------------------------------------

local BOOLS = { "doEnabled", "aeEnabled", "skipSetupWizard", "allowUserCancel" }
local STRINGS = { description = 1000, supportedMDM = 128, mdmApkUrl = 2048, supportPhoneNumber = 64,
  supportEmailAddress = 254, customData = 4096, mdmProfileName = 128 }

-- The stored fields of a profile from a create/update body. profileName is
-- required; supportEmailAddress is required when doEnabled is false
-- (release notes 20.12). Unknown fields are ignored, as Knox's JSON
-- binding would.
local function profile_fields(ctx, b)
  local p = { profileName = ctx:str(b.profileName, "profileName", { required = true, max = 100 }) }
  for _, f in ipairs(BOOLS) do p[f] = ctx:bool(b[f], f) end
  for f, max in pairs(STRINGS) do p[f] = ctx:str(b[f], f, { max = max }) end
  if p.doEnabled == nil then p.doEnabled = true end
  if p.doEnabled == false and (not p.supportEmailAddress or p.supportEmailAddress == "") then
    ctx:fail(400, 4001700, "BULK_ENROLL_PROFILE_INVALID", "supportEmailAddress is required when doEnabled is false")
  end
  if p.supportEmailAddress and p.supportEmailAddress ~= "" and not p.supportEmailAddress:match("^[^@%s]+@[^@%s]+$") then
    ctx:fail(400, 4001700, "BULK_ENROLL_PROFILE_INVALID", "supportEmailAddress is not an email address")
  end
  return p
end

local function name_taken(kme, name, except)
  for _, p in ipairs(kme.profiles) do
    if p.profileName == name and p ~= except then return true end
  end
  return false
end

local function conflict(ctx, name)
  ctx:fail(409, 4091700, "BULK_ENROLL_PROFILE_NAME_CONFLICT",
    "A profile with the same profile name already exists: " .. name)
end

local function new_profile(ctx, b)
  local kme = ctx.tenant.kme
  local p = profile_fields(ctx, b)
  if name_taken(kme, p.profileName) then conflict(ctx, p.profileName) end
  p.profileId = ctx.state:new_id()
  p.createdTime, p.updatedTime = ctx:now_ms(), ctx:now_ms()
  kme.profiles[#kme.profiles + 1] = p
  kme.profiles_by_id[p.profileId] = p
  return p
end

local function list_profiles(ctx)
  local q = ctx.query
  ctx:check_customer(q.customerId)
  local list = ctx.tenant.kme.profiles
  if q.search and q.search ~= "" then
    local f = {}
    for _, p in ipairs(list) do
      if p.profileName:lower():find(q.search:lower(), 1, true) then f[#f + 1] = p end
    end
    list = f
  end
  local items, num, size, total = ctx:page(list, q)
  return { totalCount = total, pageNum = num, pageSize = size, profileList = items }
end

local function get_profile(ctx)
  local p = ctx.tenant.kme.profiles_by_id[ctx.params[1]]
  if not p then profile_not_found(ctx, ctx.params[1]) end
  return p
end

local function create_profile(ctx)
  local b = ctx:body()
  ctx:check_customer(b.customerId)
  return new_profile(ctx, b)
end

-- createAsync answers at once with a transaction; GET profiles/status shows
-- it "InProgress" the first time it is polled and "Complete" after that, so
-- clients' polling loops run deterministically. The profile itself exists
-- (and its name is taken) from the start. Simulator's choice.
local function create_async(ctx)
  local b = ctx:body()
  ctx:check_customer(b.customerId)
  local tid = ctx:str(b.transactionId, "transactionId", { max = 64, pattern = "^%w+$" })
  local p = new_profile(ctx, b)
  local tx = { tenantId = ctx.tenant.customer_id, transactionId = tid or codec.random_hex(16), type = "Put",
    state = "InProgress", profileId = p.profileId, profileName = p.profileName, polls = 0 }
  local list = ctx.tenant.kme.transactions
  list[#list + 1] = tx
  return { transactionId = tx.transactionId, state = tx.state, profileName = p.profileName }
end

local function profile_status(ctx)
  local q = ctx.query
  ctx:check_customer(q.customerId)
  local all = {}
  for _, tx in ipairs(ctx.tenant.kme.transactions) do
    if not q.transactionId or q.transactionId == "" or tx.transactionId == q.transactionId then
      all[#all + 1] = tx
    end
  end
  local items, num, size, total = ctx:page(all, q)
  local out = json.array()
  for i, tx in ipairs(items) do
    tx.polls = tx.polls + 1
    if tx.polls > 1 then tx.state = "Complete" end
    out[i] = { tenantId = tx.tenantId, transactionId = tx.transactionId, type = tx.type, state = tx.state,
      profileId = tx.profileId, profileName = tx.profileName }
  end
  return { profiles = { totalCount = total, totalPage = (total + size - 1) // size, pageNum = num,
    transactions = out } }
end

local function update_profile(ctx)
  local kme = ctx.tenant.kme
  local p = kme.profiles_by_id[ctx.params[1]]
  if not p then profile_not_found(ctx, ctx.params[1]) end
  local b = ctx:body()
  ctx:check_customer(b.customerId)
  local fields = profile_fields(ctx, b)
  if name_taken(kme, fields.profileName, p) then conflict(ctx, fields.profileName) end
  for _, f in ipairs(BOOLS) do p[f] = nil end
  for f in pairs(STRINGS) do p[f] = nil end
  for k, v in pairs(fields) do p[k] = v end
  p.updatedTime = ctx:now_ms()
  for _, d in ipairs(kme.devices) do
    if d.profileId == p.profileId then d.profileName = p.profileName end
  end
  return p
end

-- Deleting a profile still assigned to devices is refused (Knox's exact
-- answer is undocumented; simulator's choice).
local function delete_profile(ctx)
  local kme = ctx.tenant.kme
  local p = kme.profiles_by_id[ctx.params[1]]
  if not p then profile_not_found(ctx, ctx.params[1]) end
  local used = 0
  for _, d in ipairs(kme.devices) do
    if d.profileId == p.profileId then used = used + 1 end
  end
  if used > 0 then
    ctx:fail(400, 4001700, "BULK_ENROLL_PROFILE_INVALID",
      "The profile is assigned to " .. used .. " devices; unassign them first")
  end
  for i, q in ipairs(kme.profiles) do
    if q == p then
      table.remove(kme.profiles, i)
      break
    end
  end
  kme.profiles_by_id[p.profileId] = nil
  return { profileId = p.profileId }
end

function M.routes(router)
  local function add(method, path, scope, handler)
    router:add { method = method, path = path, service = "kme", auth = "both", scope = scope, tenant = true,
      handler = handler }
  end
  local V1 = "^/kcs/v1/kme"
  add("GET", V1 .. "/devices/list$", "kme.devices:view", list_devices)
  add("PUT", V1 .. "/devices/assignProfile$", "kme.devices:manage", assign)
  add("PUT", V1 .. "/devices/unassignProfile$", "kme.devices:manage", unassign_v1)
  -- v2 unassign: POST in the release notes, PUT in the scopes table (UNCONFIRMED): both accepted.
  add("PUT", "^/kcs/v2/kme/devices/unassignProfile$", "kme.devices:manage", unassign_v2)
  add("POST", "^/kcs/v2/kme/devices/unassignProfile$", "kme.devices:manage", unassign_v2)
  add("POST", V1 .. "/devices/delete$", "kme.devices:manage", delete_devices)
  add("GET", V1 .. "/profiles/list$", "kme.profiles:view", list_profiles)
  add("GET", V1 .. "/profiles/status$", "kme.profiles:view", profile_status)
  add("GET", V1 .. "/profiles/([^/]+)/get$", "kme.profiles:view", get_profile)
  add("POST", V1 .. "/profiles/create$", "kme.profiles:manage", create_profile)
  add("POST", V1 .. "/profiles/createAsync$", "kme.profiles:manage", create_async)
  add("PUT", V1 .. "/profiles/([^/]+)$", "kme.profiles:manage", update_profile)
  add("DELETE", V1 .. "/profiles/([^/]+)$", "kme.profiles:manage", delete_profile)
end

M.valid_id = valid_id

return M
