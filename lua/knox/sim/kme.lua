--- knox.sim Knox Mobile Enrollment (api-notes §4.1, api-notes-2 §1.2):
-- devices list / assignProfile / unassignProfile (v1 and v2) / delete,
-- device uploads list / approvals, profiles list / get / create /
-- createAsync + status / update / delete, and the customer's reseller
-- calls (approvals, profile aliases). Legacy and OAuth (kme.* scopes);
-- MSPs reach managed customers with x-wsm-managed-tenantid. Errors:
-- { errorId, code, message, data } with the KME codes.
--
-- Device items carry the fields Knox returns (api-notes-2 §1.2: id, mei,
-- serialNumber, model, profileName, tenantName, orderId, userName, tags,
-- uploadId, resellerName, createTime, updateTime, resellerUploadTime);
-- profileId on an item is the simulator's addition. KME's API reference
-- (kme-api.yml) is not available, so request bodies and the answers of
-- undocumented calls are the simulator's choice, each marked below.
--
-- Bulk shapes (what a client can extract; all the simulator's choice where
-- Knox does not document them):
--   assignProfile / unassignProfile v1: all or nothing. Any unknown device
--     -> 404 { errorId, code: 4040300, message: "DEVICE_NOT_FOUND",
--     data: "Some/All devices don't exist: ...", notFoundDeviceList: [ids] };
--     any malformed id -> 400 { code: 4001703, message:
--     "BULK_ENROLL_DEVICE_INVALID", data, invalidDeviceList: [ids] }; nothing
--     changes. Success: 200 { totalCount, processingCount: 0, deviceList: [] }
--     (the generic 200 example of the KME error page).
--   unassignProfile v2: 200 { totalCount, validDeviceList, notFoundDeviceList,
--     invalidDeviceList } (lists of the ids as sent; names invented).
--   delete: 200 { successDeviceList, failedDeviceList, notFoundDeviceList }.
--   More than the bulk limit (default 1000) -> 400 4000019 TOO_MANY_DEVICES.
local json = require "knox.sim.json"
local codec = require "knox.sim.codec"
local fleet_mod = require "knox.sim.fleet"
local absent = require("knox.sim.router").absent

local M = {}

-- TOO_MANY_DEVICES exists (4000019) but its limit is UNCONFIRMED; 1000 is
-- the simulator's default (POST /__sim/limits changes it).
M.MAX_DEVICES = 1000
local TOO_MANY = { 400, 4000019, "TOO_MANY_DEVICES" }

-- Every key a generated device item can have (json.shape: no per-item sort).
local jq, fmt = json.quote, string.format
local SHAPE = json.shape({ "id", "mei", "serialNumber", "model", "profileId", "profileName", "tenantName",
  "orderId", "userName", "tags", "uploadId", "resellerName", "createTime", "updateTime", "resellerUploadTime" },
  function(d)
    -- the generator's own values need no escaping; names might
    local prof = d.profileId and fmt('"profileId":"%s","profileName":%s,', d.profileId, jq(d.profileName)) or ""
    return fmt('{"createTime":%d,"id":"%s","mei":"%s","model":"%s","orderId":"%s",%s"resellerName":%s,'
      .. '"resellerUploadTime":%d,"serialNumber":"%s","tags":[],"tenantName":%s,"updateTime":%d,"uploadId":"%s",'
      .. '"userName":""}', d.createTime, d.id, d.mei, d.model, d.orderId, prof, jq(d.resellerName),
      d.resellerUploadTime, d.serialNumber, jq(d.tenantName), d.updateTime, d.uploadId)
  end)
-- One empty tags array shared by generated items (never changed in place).
local NO_TAGS = json.array()

local UPLOAD_BATCH = 100   -- generated devices per reseller upload (simulator's choice)

-- Profiles a generated tenant has: its own tenant the first two, other
-- tenants one to three of these (the simulator's choice).
local PROFILE_NAMES = { "Corporate MDM", "Kiosk", "Warehouse scanners", "Executive phones", "Field service" }

local function make_profile(st, t, k, name)
  local created = st.BASE_MS - (200 - 25 * k) * 86400000
  return { profileId = st:new_id(nil, t.rng), profileName = name, description = name .. " devices",
    supportedMDM = "Knox Manage", mdmApkUrl = "https://mdm.example.com/agent" .. k .. ".apk", doEnabled = true,
    aeEnabled = k % 2 == 0, skipSetupWizard = k % 2 == 0, allowUserCancel = false,
    supportEmailAddress = "it" .. k .. "@example.com", supportPhoneNumber = "+1-555-010" .. k,
    createdTime = created, updatedTime = created }
end

--- The KME part of a new tenant (state.lua calls this).
function M.build(st, t)
  local np = t.ordinal == 0 and 2 or t.rng:int(3)
  local first = t.ordinal == 0 and 0 or t.rng:int(#PROFILE_NAMES) - 1
  local profiles = {}
  for k = 1, np do profiles[k] = make_profile(st, t, k, PROFILE_NAMES[(first + k - 1) % #PROFILE_NAMES + 1]) end
  local gen = {}
  for k, p in ipairs(profiles) do gen[k] = p end
  local kme = { profiles = profiles, gen_profiles = gen, transactions = {}, aliases = {}, uploads = {} }
  kme.profiles_by_id = {}
  for _, p in ipairs(profiles) do kme.profiles_by_id[p.profileId] = p end
  -- the profile a generated device starts with (two in three have one)
  function kme.gen_profile(i)
    if i % 3 == 0 or np == 0 then return nil end
    return gen[i % np + 1]
  end
  local reseller, tenant_name = st.reseller_name, t.name
  -- orders of 10 and uploads of 100 devices: the last one's id is reused
  local order_k, order_id, upload_k, upload_id
  kme.fleet = fleet_mod.new(t.n, {
    make = function(i)
      local time, p = t:time(i), kme.gen_profile(i)
      local ok, uk = (i - 1) // 10 + 1, (i - 1) // UPLOAD_BATCH + 1
      if ok ~= order_k then order_k, order_id = ok, string.format("ORD-%06d", ok) end
      if uk ~= upload_k then upload_k, upload_id = uk, t:hex_id("upload", uk) end
      return setmetatable({ id = t:hex_id("kme", i), mei = t:imei(i), serialNumber = t:serial(i),
        model = t:model(i), profileId = p and p.profileId, profileName = p and p.profileName,
        tenantName = tenant_name, orderId = order_id, userName = "", tags = NO_TAGS, uploadId = upload_id,
        resellerName = reseller, createTime = time, updateTime = time, resellerUploadTime = time }, SHAPE.fresh)
    end,
    decode = function(id) return t:decode(id, "kme") end,
    keys = function(d) return { d.mei, d.serialNumber, d.id } end,
  })
  -- a reseller that asked this customer for approval (reseller/approvals)
  kme.resellers = { [st.reseller_id] = { resellerId = st.reseller_id, resellerName = reseller, status = "Approved" } }
  kme.pending_reseller = "RS" .. t.rng:digits(8)
  kme.resellers[kme.pending_reseller] = { resellerId = kme.pending_reseller, resellerName = "Pending Reseller Inc",
    status = "Pending" }
  return kme
end

local function bulk_max(ctx)
  return ctx:bulk_limit("kme") or M.MAX_DEVICES
end

-- A device id is valid when it looks like a serial number or an IMEI
-- (fifteen digits must pass the Luhn check).
local function valid_id(id)
  if type(id) ~= "string" or id == "" or #id > 64 or not id:match("^[%w%-]+$") then return false end
  if #id == 15 and id:match("^%d+$") then return codec.valid_imei(id) end
  return true
end

-- Device ids from a body: deviceIds = [..] or devices = [{ mei | imei |
-- serialNumber | deviceId, ... }] (or devices.imeiOrSerials = [..], the
-- delete form). Which forms Knox takes is not published; the simulator
-- accepts these.
local function body_device_ids(ctx, b)
  local max = bulk_max(ctx)
  local ids = ctx:list(b.deviceIds, "deviceIds", { max = max, too_many = TOO_MANY })
  local details = {}
  if not ids and not absent(b.devices) then
    if json.is_object(b.devices) and b.devices.imeiOrSerials then
      ids = ctx:list(b.devices.imeiOrSerials, "devices.imeiOrSerials", { max = max, too_many = TOO_MANY })
    else
      local list = ctx:list(b.devices, "devices", { max = max, too_many = TOO_MANY })
      ids = {}
      for i, d in ipairs(list) do
        local id = type(d) == "string" and d
          or (json.is_object(d) and (d.mei or d.imei or d.serialNumber or d.deviceId))
        if type(id) ~= "string" or id == "" or #id > 64 then
          ctx:invalid("devices[" .. i .. "] needs an mei, imei, serialNumber or deviceId")
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
  local fleet = kme.fleet
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
    local since_ms, t = since * 1000, ctx.tenant
    local num, size = ctx:paging(q, 100, 1000)
    -- an unchanged generated device's updateTime is its upload time, t:time(i)
    local items, total = fleet:filter(function(i) return t:time(i) >= since_ms end,
      function(d) return d.updateTime >= since_ms end, num * size + 1, size)
    return { totalCount = total, pageNum = num, pageSize = size, deviceList = json.array(items) }
  end
  local items, num, size, total = ctx:fleet_page(fleet, q)
  return { totalCount = total, pageNum = num, pageSize = size, deviceList = items }
end

-- The fleet index of the device an id names: IMEI or serial number, and
-- with by_id also the Get-Devices id (KME v2 only, release notes 22.11).
local function find(ctx, id, by_id)
  local fleet = ctx.tenant.kme.fleet
  local i = fleet:find(id)
  if i and not by_id and fleet:get(i).id == id then return nil end
  return i
end

-- v1 all-or-nothing checks: every id well-formed, every device known.
local function resolve_all(ctx, ids)
  local invalid, missing, found = json.array(), json.array(), {}
  for _, id in ipairs(ids) do
    if not valid_id(id) then
      invalid[#invalid + 1] = type(id) == "string" and codec.utf8_safe(id):sub(1, 64) or json.encode(id)
    else
      local i = find(ctx, id)
      if i then found[#found + 1] = i else missing[#missing + 1] = id end
    end
  end
  if #invalid > 0 then
    ctx:fail(400, 4001703, "BULK_ENROLL_DEVICE_INVALID", "Invalid device identifiers: "
      .. table.concat(invalid, ", ", 1, math.min(#invalid, 20)), { body = { invalidDeviceList = invalid } })
  end
  if #missing > 0 then
    ctx:fail(404, 4040300, "DEVICE_NOT_FOUND", "Some/All devices don't exist: " .. table.concat(missing, ", ", 1,
      math.min(#missing, 20)), { body = { notFoundDeviceList = missing } })
  end
  return found
end

local function assign(ctx)
  local b = ctx:body()
  ctx:check_customer(b.customerId)
  local pid = ctx:str(b.profileId, "profileId", { required = true, max = 64 })
  local ids, details = body_device_ids(ctx, b)
  local kme = ctx.tenant.kme
  local profile = kme.profiles_by_id[pid]
  if not profile then
    ctx:fail(404, 4040400, "PROFILE_NOT_FOUND", "The requested profile does not exist: " .. codec.utf8_safe(pid))
  end
  local found = resolve_all(ctx, ids)
  for _, d in pairs(details) do check_encrypted(ctx, d) end
  check_encrypted(ctx, b)
  local now = ctx:now_ms()
  for n, i in ipairs(found) do
    local d = kme.fleet:mut(i)
    d.profileId, d.profileName, d.updateTime = profile.profileId, profile.profileName, now
    local det = details[ids[n]]
    -- the simulator cannot decrypt userName (Samsung's key): it shows that one was set
    if det and not absent(det.userName) then d.userName = "(encrypted)" end
  end
  return { totalCount = #found, processingCount = 0, deviceList = json.array() }
end

local function clear(d, now)
  d.profileId, d.profileName, d.updateTime, d.userName = nil, nil, now, ""
end

local function unassign_v1(ctx)
  local b = ctx:body()
  ctx:check_customer(b.customerId)
  local ids = body_device_ids(ctx, b)
  local found = resolve_all(ctx, ids)
  local now = ctx:now_ms()
  for _, i in ipairs(found) do clear(ctx.tenant.kme.fleet:mut(i), now) end
  return { totalCount = #found, processingCount = 0, deviceList = json.array() }
end

-- v2 (22.11): partial success, answered with valid / not-found / invalid
-- lists inside a 200 (the list names are the simulator's choice). Devices
-- are named by the Get-Devices id, an IMEI or a serial number.
local function unassign_v2(ctx)
  local b = ctx:body()
  ctx:check_customer(b.customerId)
  local ids = ctx:list(b.deviceIds, "deviceIds", { required = true, max = bulk_max(ctx), too_many = TOO_MANY })
  local valid, notfound, invalid = json.array(), json.array(), json.array()
  local now = ctx:now_ms()
  for _, id in ipairs(ids) do
    if not valid_id(id) then
      invalid[#invalid + 1] = type(id) == "string" and codec.utf8_safe(id):sub(1, 64) or json.encode(id)
    else
      local i = find(ctx, id, true)
      if i then
        clear(ctx.tenant.kme.fleet:mut(i), now)
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
  local fleet = ctx.tenant.kme.fleet
  local ok, failed, notfound = json.array(), json.array(), json.array()
  for _, id in ipairs(ids) do
    if not valid_id(id) then
      failed[#failed + 1] = type(id) == "string" and codec.utf8_safe(id) or json.encode(id)
    else
      local i = find(ctx, id)
      if i then
        fleet:delete(i)
        ok[#ok + 1] = id
      else
        notfound[#notfound + 1] = id
      end
    end
  end
  return { successDeviceList = ok, failedDeviceList = failed, notFoundDeviceList = notfound }
end

--- Adds a device a reseller uploaded (KDP) to a tenant's KME list, unless
-- it is there already; returns its item.
function M.add_upload(st, t, id, kind, upload_id, order, now)
  local fleet = t.kme.fleet
  local i = fleet:find(id)
  if i then return fleet:get(i) end
  local d = { id = st:new_id(), mei = kind == "IMEI" and id or nil, serialNumber = kind == "SERIAL" and id or nil,
    model = json.null, tenantName = t.name, orderId = order, userName = "", tags = json.array(),
    uploadId = upload_id, resellerName = st.reseller_name, createTime = now, updateTime = now,
    resellerUploadTime = now }
  fleet:add(d)
  return d
end

-- Device uploads ---------------------------------------------------------
-- GET devices/uploads/list and POST devices/uploads/approvals exist
-- (scopes table); their shapes are not published. The simulator's choice:
-- each reseller upload is { uploadId, resellerId, resellerName,
-- deviceCount, status: Approved | Pending | Rejected, uploadTime }; the
-- generated devices came in uploads of 100, all Approved; KDP uploads to
-- this customer add Pending ones. The list answers { totalCount, pageNum,
-- pageSize, uploadList }; approvals take { uploadIds: [..], action:
-- "APPROVE" | "REJECT" } and answer { successUploadList,
-- failedUploadList, notFoundUploadList }.

local function upload_at(ctx, k)
  local t, kme = ctx.tenant, ctx.tenant.kme
  local batches = (t.n + UPLOAD_BATCH - 1) // UPLOAD_BATCH
  if k <= batches then
    local first = (k - 1) * UPLOAD_BATCH + 1
    local id = t:hex_id("upload", k)
    local over = kme.uploads[id]
    if over then return over end
    return { uploadId = id, resellerId = ctx.state.reseller_id, resellerName = ctx.state.reseller_name,
      deviceCount = math.min(UPLOAD_BATCH, t.n - first + 1), status = "Approved", uploadTime = t:time(first) }
  end
  return kme.upload_list and kme.upload_list[k - batches]
end

local function list_uploads(ctx)
  local q, t = ctx.query, ctx.tenant
  ctx:check_customer(q.customerId)
  local num, size = ctx:paging(q, 100, 1000)
  local batches = (t.n + UPLOAD_BATCH - 1) // UPLOAD_BATCH
  local total = batches + #(t.kme.upload_list or {})
  local items = json.array()
  for k = num * size + 1, math.min(total, (num + 1) * size) do items[#items + 1] = upload_at(ctx, k) end
  return { totalCount = total, pageNum = num, pageSize = size, uploadList = items }
end

--- Records a KDP upload to this tenant as a Pending upload.
function M.record_upload(t, rec)
  local kme = t.kme
  kme.upload_list = kme.upload_list or {}
  kme.upload_list[#kme.upload_list + 1] = rec
  kme.uploads[rec.uploadId] = rec
end

local function find_upload(ctx, id)
  local t, kme = ctx.tenant, ctx.tenant.kme
  if kme.uploads[id] then return kme.uploads[id] end
  for k = 1, (t.n + UPLOAD_BATCH - 1) // UPLOAD_BATCH do
    if t:hex_id("upload", k) == id then
      local u = upload_at(ctx, k)
      kme.uploads[id] = u
      return u
    end
  end
end

local ACTIONS = { APPROVE = "Approved", REJECT = "Rejected" }

local function approve_uploads(ctx)
  local b = ctx:body()
  ctx:check_customer(b.customerId)
  local ids = ctx:ids(b.uploadIds, "uploadIds", { required = true, max = bulk_max(ctx), too_many = TOO_MANY })
  local to = ACTIONS[ctx:str(b.action, "action", { required = true, values = ACTIONS })]
  local ok, failed, notfound = json.array(), json.array(), json.array()
  for _, id in ipairs(ids) do
    local u = find_upload(ctx, id)
    if not u then
      notfound[#notfound + 1] = id
    elseif u.status ~= "Pending" then
      failed[#failed + 1] = { uploadId = id, code = 4001703, message = "BULK_ENROLL_DEVICE_INVALID",
        data = "The upload is " .. u.status .. ", not Pending" }
    else
      u.status = to
      ok[#ok + 1] = id
    end
  end
  return { successUploadList = ok, failedUploadList = failed, notFoundUploadList = notfound }
end

-- Reseller calls (scope kme.reseller) ------------------------------------
-- POST reseller/approvals, POST reseller/profilealias, PUT|DELETE
-- reseller/profilealias/{id} exist (scopes table); shapes are not
-- published. The simulator's choice: approvals take { resellerIds: [..],
-- action: "APPROVE" | "REJECT" } and answer { successResellerList,
-- failedResellerList, notFoundResellerList }; an alias is { profileAliasId,
-- profileAlias, profileId, resellerId } (profileAlias: 1-64 characters,
-- unique per reseller), created with 200 and the alias.

local function reseller_approvals(ctx)
  local b = ctx:body()
  ctx:check_customer(b.customerId)
  local ids = ctx:ids(b.resellerIds, "resellerIds", { required = true, max = 100 })
  local to = ACTIONS[ctx:str(b.action, "action", { required = true, values = ACTIONS })]
  local ok, failed, notfound = json.array(), json.array(), json.array()
  for _, id in ipairs(ids) do
    local r = ctx.tenant.kme.resellers[id]
    if not r then
      notfound[#notfound + 1] = id
    elseif r.status ~= "Pending" then
      failed[#failed + 1] = { resellerId = id, code = 4092103, message = "RESELLER_ASSOCIATION_ALREADY_EXISTS",
        data = "The reseller is " .. r.status }
    else
      r.status = to
      ok[#ok + 1] = id
    end
  end
  return { successResellerList = ok, failedResellerList = failed, notFoundResellerList = notfound }
end

local function alias_fields(ctx, b, alias)
  local kme = ctx.tenant.kme
  local name = ctx:str(b.profileAlias, "profileAlias", { required = not alias, max = 64 })
  local pid = ctx:str(b.profileId, "profileId", { required = not alias, max = 64 })
  local rid = ctx:str(b.resellerId, "resellerId", { required = not alias, max = 64 })
  if pid and not kme.profiles_by_id[pid] then
    ctx:fail(404, 4040400, "PROFILE_NOT_FOUND", "The requested profile does not exist: " .. codec.utf8_safe(pid))
  end
  if rid and not (kme.resellers[rid] and kme.resellers[rid].status == "Approved") then
    ctx:fail(404, 4042100, "RESELLER_NOT_FOUND", "No approved reseller " .. codec.utf8_safe(rid))
  end
  local r = rid or (alias and alias.resellerId)
  for _, a in pairs(kme.aliases) do
    if a ~= alias and a.resellerId == r and a.profileAlias == (name or (alias and alias.profileAlias)) then
      ctx:fail(409, 4091700, "BULK_ENROLL_PROFILE_NAME_CONFLICT", "The profile alias exists already")
    end
  end
  return name, pid, rid
end

local function create_alias(ctx)
  local b = ctx:body()
  local name, pid, rid = alias_fields(ctx, b)
  local a = { profileAliasId = ctx.state:new_id(), profileAlias = name, profileId = pid, resellerId = rid }
  ctx.tenant.kme.aliases[a.profileAliasId] = a
  return a
end

local function alias_of(ctx)
  local a = ctx.tenant.kme.aliases[ctx.params[1]]
  if not a then ctx:fail(404, 4040000, "RESOURCE_NOT_FOUND", "No profile alias " .. codec.utf8_safe(ctx.params[1])) end
  return a
end

local function update_alias(ctx)
  local a = alias_of(ctx)
  local name, pid, rid = alias_fields(ctx, ctx:body(), a)
  a.profileAlias, a.profileId, a.resellerId = name or a.profileAlias, pid or a.profileId, rid or a.resellerId
  return a
end

local function delete_alias(ctx)
  local a = alias_of(ctx)
  ctx.tenant.kme.aliases[a.profileAliasId] = nil
  return { profileAliasId = a.profileAliasId }
end

local function profile_not_found(ctx, id)
  ctx:fail(404, 4040400, "PROFILE_NOT_FOUND", "The requested profile does not exist: " .. codec.utf8_safe(id))
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
  -- generated devices read the name from the profile itself; kept ones copy it
  for _, d in pairs(kme.fleet.changed) do
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
  local used, fleet = 0, kme.fleet
  for i = 1, fleet.n do
    if not fleet.changed[i] and not fleet.is_deleted[i] and kme.gen_profile(i) == p then used = used + 1 end
  end
  for _, d in pairs(fleet.changed) do
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

--- POST /__sim/seed's kme part: { profiles = [{ profileName, ... }],
-- devices = [{ mei | serialNumber, model?, profileName?, userName?, tags? }] }
-- (a device's profileName names a profile of the tenant).
function M.seed(st, t, spec, now)
  local kme = t.kme
  local out = { profiles = json.array(), devices = json.array() }
  for i, p in ipairs(spec.profiles or {}) do
    if type(p) ~= "table" or type(p.profileName) ~= "string" then
      error("kme.profiles[" .. i .. "] needs a profileName", 0)
    end
    local np = {}
    for k, v in pairs(make_profile(st, t, #kme.profiles + 1, p.profileName)) do np[k] = v end
    for k, v in pairs(p) do np[k] = v end
    np.profileId = p.profileId or st:new_id()
    kme.profiles[#kme.profiles + 1] = np
    kme.profiles_by_id[np.profileId] = np
    out.profiles[i] = np.profileId
  end
  for i, d in ipairs(spec.devices or {}) do
    local id = type(d) == "table" and (d.mei or d.serialNumber)
    if type(id) ~= "string" or not valid_id(id) then
      error("kme.devices[" .. i .. "] needs a valid mei or serialNumber", 0)
    end
    if kme.fleet:find(id) then error("kme.devices[" .. i .. "]: " .. id .. " exists already", 0) end
    local item = { id = d.id or st:new_id(), mei = d.mei, serialNumber = d.serialNumber, model = d.model or "SM-G991B",
      tenantName = t.name, orderId = d.orderId or "ORD-SEED", userName = d.userName or "",
      tags = json.array(d.tags or {}), uploadId = d.uploadId or "seed", resellerName = st.reseller_name,
      createTime = now, updateTime = now, resellerUploadTime = now }
    if d.profileName then
      for _, p in ipairs(kme.profiles) do
        if p.profileName == d.profileName then item.profileId, item.profileName = p.profileId, p.profileName end
      end
      if not item.profileId then error("kme.devices[" .. i .. "]: no profile named " .. d.profileName, 0) end
    end
    kme.fleet:add(item)
    out.devices[i] = item.id
  end
  return out
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
  add("GET", V1 .. "/devices/uploads/list$", "kme.devices:view", list_uploads)
  add("POST", V1 .. "/devices/uploads/approvals$", "kme.devices:manage", approve_uploads)
  add("GET", V1 .. "/profiles/list$", "kme.profiles:view", list_profiles)
  add("GET", V1 .. "/profiles/status$", "kme.profiles:view", profile_status)
  add("GET", V1 .. "/profiles/([^/]+)/get$", "kme.profiles:view", get_profile)
  add("POST", V1 .. "/profiles/create$", "kme.profiles:manage", create_profile)
  add("POST", V1 .. "/profiles/createAsync$", "kme.profiles:manage", create_async)
  add("PUT", V1 .. "/profiles/([^/]+)$", "kme.profiles:manage", update_profile)
  add("DELETE", V1 .. "/profiles/([^/]+)$", "kme.profiles:manage", delete_profile)
  add("POST", V1 .. "/reseller/approvals$", "kme.reseller", reseller_approvals)
  add("POST", V1 .. "/reseller/profilealias$", "kme.reseller", create_alias)
  add("PUT", V1 .. "/reseller/profilealias/([^/]+)$", "kme.reseller", update_alias)
  add("DELETE", V1 .. "/reseller/profilealias/([^/]+)$", "kme.reseller", delete_alias)
end

M.valid_id = valid_id

return M
