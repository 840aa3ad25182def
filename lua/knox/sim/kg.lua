--- knox.sim Knox Guard v1.1 (api-notes §4.2), legacy x-knox-apitoken only:
-- authorization check, devices list / get, uploads, approve, lock, unlock,
-- blink, sendMessage, complete, delete, and the async bulk variants that
-- answer { count, success, fail, resultList }. Also served under
-- /kcs/v1.1/kg-integration (same state). Errors: { result: "FAIL", error:
-- { code, message, reason } }.
--
-- Device states (the official state model is not available here; this one
-- is the simulator's choice): uploads are "Accepted" (autoAccept) or
-- "Pending"; approve -> "Active"; lock: Active|Blinking -> "Locked";
-- unlock: Locked|Blinking -> "Active"; blink: Active|Blinking ->
-- "Blinking"; sendMessage: Active|Locked|Blinking; complete: Active|Locked|
-- Blinking -> "Completed"; delete: any state. Anything else is 400
-- DEVICE_STATE_INVALID.
local json = require "knox.sim.json"
local codec = require "knox.sim.codec"
local absent = require("knox.sim.router").absent

local M = {}

-- DEVICE_BULK_OPERATION_LIMIT_EXCEEDED exists; the limit is UNCONFIRMED
-- (one third-party source says 10,000). Simulator's choice: 10,000.
M.BULK_LIMIT = 10000
local BULK_TOO_MANY = { 400, 4000316, "DEVICE_BULK_OPERATION_LIMIT_EXCEEDED" }

local function state_invalid(d, action)
  return 400, 4000310, "DEVICE_STATE_INVALID", "The operation is not permitted in the current state: cannot "
    .. action .. " a device in state " .. d.status
end

local function not_found(id)
  return 404, 4040300, "DEVICE_NOT_FOUND", "The specified device was not found: " .. codec.utf8_safe(id)
end

-- The device an item names by objectId, deviceUid or approveId; returns
-- device, requestedId or nil, status, code, name, reason.
local function lookup(kg, item)
  if type(item) == "string" then item = { deviceUid = item } end
  if type(item) ~= "table" then return nil, 400, 4000000, "RESOURCE_INVALID_PARAM", "a device must be an object" end
  for _, f in ipairs { "objectId", "deviceUid", "approveId" } do
    local v = item[f]
    if not absent(v) then
      if type(v) ~= "string" or v == "" or #v > 64 then
        return nil, 400, 4000000, "RESOURCE_INVALID_PARAM", f .. " must be a non-empty string"
      end
      local idx = f == "objectId" and kg.by_object or f == "deviceUid" and kg.by_uid or kg.by_approve
      local d = idx[v]
      if not d then return nil, not_found(v) end
      return d, v
    end
  end
  return nil, 400, 4000000, "RESOURCE_INVALID_PARAM", "objectId, deviceUid or approveId is required"
end

local function str_field(body, f, max, required)
  local v = body[f]
  if absent(v) then
    if required then return nil, f .. " is required" end
    return true
  end
  if type(v) ~= "string" or (required and v == "") or #v > max then
    return nil, f .. " must be a string of at most " .. max .. " characters"
  end
  return true
end

-- Each action: the states it accepts, the state it leads to, and a check
-- of its own body fields (returns nil, reason when they are invalid).
local ACTIONS = {
  lock = { from = { Active = true, Blinking = true }, to = "Locked", check = function(b)
    for _, f in ipairs { "message", "email", "tel" } do
      local ok, why = str_field(b, f, 500)
      if not ok then return nil, why end
    end
    return true
  end },
  unlock = { from = { Locked = true, Blinking = true }, to = "Active" },
  blink = { from = { Active = true, Blinking = true }, to = "Blinking", check = function(b)
    local ok, why = str_field(b, "message", 200)
    if not ok then return nil, why end
    for _, f in ipairs { "interval", "timeLimit", "daysLimit" } do
      if not absent(b[f]) and (type(b[f]) ~= "number" or b[f] < 0 or b[f] ~= math.floor(b[f])) then
        return nil, f .. " must be a non-negative integer"
      end
    end
    return true
  end },
  sendMessage = { from = { Active = true, Locked = true, Blinking = true }, check = function(b)
    return str_field(b, "message", 500, true)
  end },
  complete = { from = { Active = true, Locked = true, Blinking = true }, to = "Completed" },
  delete = { any = true, remove = true },
  approve = { from = { Accepted = true, Pending = true }, to = "Active" },
}

local function remove_device(st, tenant, d)
  local kg = tenant.kg
  for i, x in ipairs(kg.devices) do
    if x == d then
      table.remove(kg.devices, i)
      break
    end
  end
  st:reindex(tenant)
end

-- Applies action to the device named by item (body fields in b). Returns
-- a result entry (SUCCESS or FAIL, error.code a string as in the doc).
local function apply(ctx, name, item, b)
  local kg = ctx.tenant.kg
  local act = ACTIONS[name]
  local d, requested, code, ename, reason = lookup(kg, item)
  if not d then
    return { result = "FAIL", requestedId = type(item) == "table" and (item.deviceUid or item.objectId
      or item.approveId) or item, error = { code = tostring(code), message = ename, reason = reason } }, requested
  end
  if not act.any and not act.from[d.status] then
    local status
    status, code, ename, reason = state_invalid(d, name)
    return { result = "FAIL", requestedId = requested, objectId = d.objectId,
      error = { code = tostring(code), message = ename, reason = reason } }, status
  end
  if name == "approve" then
    local aid = b.approveId
    if type(item) == "table" and not absent(item.approveId) and item.approveId ~= d.approveId then
      aid = item.approveId
    end
    if type(aid) ~= "string" or aid == "" or #aid > 64 then
      return { result = "FAIL", requestedId = requested, objectId = d.objectId, error = { code = "4000000",
        message = "RESOURCE_INVALID_PARAM", reason = "approveId is required" } }, 400
    end
    local other = kg.by_approve[aid]
    if other and other ~= d then
      return { result = "FAIL", requestedId = requested, objectId = d.objectId, error = { code = "4000000",
        message = "RESOURCE_INVALID_PARAM", reason = "approveId is already used by another device" } }, 400
    end
    d.approveId = aid
    kg.by_approve[aid] = d
  end
  if act.remove then
    remove_device(ctx.state, ctx.tenant, d)
  else
    if act.to then d.status = act.to end
    if name == "sendMessage" or name == "lock" or name == "blink" then
      d.message = not absent(b.message) and b.message or d.message
    end
    d.updateTime = ctx:now_ms()
  end
  return { result = "SUCCESS", requestedId = requested, objectId = d.objectId }
end

-- The request body, after the action's own check of it.
local function checked_body(ctx, name)
  local b = ctx:body()
  local act = ACTIONS[name]
  if act.check then
    local ok, why = act.check(b)
    if not ok then ctx:invalid(why) end
  end
  return b
end

local function single(name)
  return function(ctx)
    local b = checked_body(ctx, name)
    local r, status = apply(ctx, name, b, b)
    if r.result == "FAIL" then ctx:fail(status, tonumber(r.error.code), r.error.message, r.error.reason) end
    return r
  end
end

local function bulk(name)
  return function(ctx)
    local b = checked_body(ctx, name)
    local list = ctx:list(b.deviceList, "deviceList", { required = true, max = M.BULK_LIMIT, too_many = BULK_TOO_MANY })
    local results, ok = json.array(), 0
    for i, item in ipairs(list) do
      results[i] = apply(ctx, name, item, b)
      if results[i].result == "SUCCESS" then ok = ok + 1 end
    end
    return { count = #list, success = ok, fail = #list - ok, resultList = results }
  end
end

local function authorization(ctx)
  return { result = "SUCCESS", customerId = ctx.tenant.customer_id }
end

local function list_devices(ctx)
  local b = ctx:body { optional = true }
  local list = ctx.tenant.kg.devices
  local search = ctx:str(b.search, "search", { max = 64 })
  local status = ctx:str(b.status, "status", { max = 32 })
  if (search and search ~= "") or status then
    local f = {}
    for _, d in ipairs(list) do
      local hit = not search or search == "" or d.deviceUid:find(search, 1, true) or d.objectId:find(search, 1, true)
        or (d.approveId and d.approveId:find(search, 1, true))
      if hit and (not status or d.status == status) then f[#f + 1] = d end
    end
    list = f
  end
  local items, num, size, total = ctx:page(list, b)
  return { result = "SUCCESS", totalCount = total, pageNum = num, pageSize = size, deviceList = items }
end

local function get_device(ctx)
  local d = ctx.tenant.kg.by_object[ctx.params[1]]
  if not d then ctx:fail(not_found(ctx.params[1])) end
  return d
end

local function uploads(ctx)
  local b = ctx:body()
  local list = ctx:list(b.deviceList, "deviceList", { required = true, max = M.BULK_LIMIT, too_many = BULK_TOO_MANY })
  local auto = ctx:bool(b.autoAccept, "autoAccept")
  local kg = ctx.tenant.kg
  local results, ok = json.array(), 0
  for i, item in ipairs(list) do
    local uid = type(item) == "table" and item.deviceUid or item
    local aid = type(item) == "table" and item.approveId or nil
    local r
    if type(uid) ~= "string" or uid == "" or #uid > 64 or not uid:match("^[%w%-]+$")
      or (#uid == 15 and uid:match("^%d+$") and not codec.valid_imei(uid)) then
      r = { result = "FAIL", requestedId = type(uid) == "string" and codec.utf8_safe(uid) or nil,
        error = { code = "4000000", message = "RESOURCE_INVALID_PARAM",
          reason = "deviceUid must be an IMEI or serial" } }
    elseif kg.by_uid[uid] then
      r = { result = "FAIL", requestedId = uid, error = { code = "4000000", message = "RESOURCE_INVALID_PARAM",
        reason = "The device is already registered" } }
    elseif not absent(aid) and (type(aid) ~= "string" or aid == "" or kg.by_approve[aid]) then
      r = { result = "FAIL", requestedId = uid, error = { code = "4000000", message = "RESOURCE_INVALID_PARAM",
        reason = "approveId must be a unique non-empty string" } }
    else
      local d = { objectId = ctx.state:new_id("objectId"), deviceUid = uid, status = auto and "Accepted" or "Pending",
        approveId = not absent(aid) and aid or nil, uploadTime = ctx:now_ms(), updateTime = ctx:now_ms(),
        isRelockReminderTarget = false, isRelockReminderApplied = false }
      kg.devices[#kg.devices + 1] = d
      kg.by_uid[uid], kg.by_object[d.objectId] = d, d
      if d.approveId then kg.by_approve[d.approveId] = d end
      r = { result = "SUCCESS", requestedId = uid, objectId = d.objectId }
      ok = ok + 1
    end
    results[i] = r
  end
  return { count = #list, success = ok, fail = #list - ok, resultList = results }
end

function M.routes(router)
  local function add(method, path, handler)
    router:add { method = method, path = "^/kcs/v1%.1/kg" .. path, service = "kg", auth = "legacy",
      handler = handler }
  end
  add("GET", "/authorization$", authorization)
  add("POST", "/devices/list$", list_devices)
  add("POST", "/devices/uploads$", uploads)
  for _, name in ipairs { "approve", "lock", "unlock", "blink", "complete", "delete", "sendMessage" } do
    add("POST", "/devices/" .. name .. "$", single(name))
  end
  -- Async variants (LOW-MED evidence): approveAsync and deleteAsync are the
  -- simulator's additions for symmetry.
  for _, name in ipairs { "approve", "lock", "unlock", "blink", "complete", "delete", "sendMessage" } do
    add("POST", "/devices/" .. name .. "Async$", bulk(name))
  end
  add("GET", "/devices/([^/]+)$", get_device)
end

return M
