--- knox.sim Knox Guard v1.1 (api-notes §4.2, api-notes-2 §1.4), legacy
-- x-knox-apitoken only: authorization check, devices list / get, uploads,
-- approve, lock, unlock, blink, sendMessage, complete, delete, and the
-- async bulk variants that answer { count, success, fail, resultList }.
-- Also served under /kcs/v1.1/kg-integration (same state). Errors:
-- { result: "FAIL", error: { code, message, reason } }.
--
-- Device states (Knox's full state model is not published; [KG-HOW] gives
-- Pending -> Activating -> Active and delete only for rejected or
-- payment-complete devices; the rest is the simulator's choice): uploads
-- are "Accepted" (autoAccept) or "Pending"; approve: Accepted|Pending ->
-- "Activating", which becomes "Active" ACTIVATE_SECONDS later on the
-- simulator's clock (the device confirming; POST /__sim/clock moves it);
-- lock: Active|Blinking -> "Locked"; unlock: Locked|Blinking -> "Active";
-- blink: Active|Blinking -> "Blinking"; sendMessage: Active|Locked|Blinking;
-- complete: Active|Locked|Blinking -> "Completed"; delete: Completed|
-- Rejected only. Anything else is 400 4000310 DEVICE_STATE_INVALID.
--
-- Bulk shape (documented, [S-KG-ERR]): 200 { count, success, fail,
-- resultList: [{ result: "SUCCESS"|"FAIL", requestedId, objectId?, error?:
-- { code: "<digits>", message: NAME, reason } }] }; more items than the bulk
-- limit (default 10,000, UNCONFIRMED) -> 400 4000316
-- DEVICE_BULK_OPERATION_LIMIT_EXCEEDED.
local json = require "knox.sim.json"
local codec = require "knox.sim.codec"
local fleet_mod = require "knox.sim.fleet"
local absent = require("knox.sim.router").absent

local M = {}

-- DEVICE_BULK_OPERATION_LIMIT_EXCEEDED exists; the limit is UNCONFIRMED
-- (one third-party source says 10,000). Simulator's default: 10,000.
M.BULK_LIMIT = 10000
local BULK_TOO_MANY = { 400, 4000316, "DEVICE_BULK_OPERATION_LIMIT_EXCEEDED" }

-- Seconds an approved device stays "Activating" (the simulator's choice).
M.ACTIVATE_SECONDS = 60

-- KG device states the generator uses, in turn.
local KG_STATES = { "Active", "Active", "Active", "Active", "Active", "Locked", "Locked", "Accepted",
  "Completed", "Rejected", "Pending" }

local DAY_MS = 86400000

local SHAPE = json.shape({ "objectId", "deviceUid", "serialNumber", "model", "fullModel", "status", "uploadTime",
  "updateTime", "approveId", "licenseExpiryDate", "hsModeApplied", "isKge", "isRelockReminderTarget",
  "isRelockReminderApplied", "message" }, function(d)
    return string.format('{%s"deviceUid":"%s","fullModel":"%s\\/DS","hsModeApplied":false,"isKge":false,'
      .. '"isRelockReminderApplied":false,"isRelockReminderTarget":false,"licenseExpiryDate":%d,"model":"%s",'
      .. '"objectId":"%s","serialNumber":"%s","status":"%s","updateTime":%d,"uploadTime":%d}',
      d.approveId and ('"approveId":"' .. d.approveId .. '",') or "", d.deviceUid, d.model, d.licenseExpiryDate,
      d.model, d.objectId, d.serialNumber, d.status, d.updateTime, d.uploadTime)
  end)

--- The Knox Guard part of a new tenant (state.lua calls this).
function M.build(_, t)
  local kg = { sim_policy = false, activating = setmetatable({}, { __mode = "k" }) }
  kg.fleet = fleet_mod.new(t.n, {
    make = function(i)
      local status, time, model = KG_STATES[(i - 1) % #KG_STATES + 1], t:time(i), t:model(i)
      -- fullModel, licenseExpiryDate (epoch ms), hsModeApplied and isKge are
      -- in the release notes without a type; these values are the simulator's choice
      return setmetatable({ objectId = t:object_id(i), deviceUid = t:imei(i), serialNumber = t:serial(i),
        model = model, fullModel = model .. "/DS", status = status, uploadTime = time, updateTime = time,
        approveId = (status ~= "Accepted" and status ~= "Pending") and t:approve_id(i) or nil,
        licenseExpiryDate = time + 730 * DAY_MS, hsModeApplied = false, isKge = false,
        isRelockReminderTarget = false, isRelockReminderApplied = false }, SHAPE.fresh)
    end,
    decode = function(id) return t:decode(id, "kg") end,
    keys = function(d) return { d.deviceUid, d.objectId, d.approveId } end,
    fix = function(d, now)
      local at = kg.activating[d]
      if at and now * 1000 >= at then
        d.status, d.updateTime = "Active", at
        kg.activating[d] = nil
        return true
      end
    end,
  })
  return kg
end

local function bulk_max(ctx)
  return ctx:bulk_limit("kg") or M.BULK_LIMIT
end

local function state_invalid(d, action)
  return 400, 4000310, "DEVICE_STATE_INVALID", "The operation is not permitted in the current state: cannot "
    .. action .. " a device in state " .. d.status
end

local function not_found(id)
  return 404, 4040300, "DEVICE_NOT_FOUND", "The specified device was not found: " .. codec.utf8_safe(id)
end

-- The device an item names by objectId, deviceUid or approveId; returns
-- fleet index, device, requestedId or nil, status, code, name, reason.
local function lookup(ctx, item)
  local fleet = ctx.tenant.kg.fleet
  if type(item) == "string" then item = { deviceUid = item } end
  if type(item) ~= "table" then
    return nil, nil, 400, 4000000, "RESOURCE_INVALID_PARAM", "a device must be an object"
  end
  for _, f in ipairs { "objectId", "deviceUid", "approveId" } do
    local v = item[f]
    if not absent(v) then
      if type(v) ~= "string" or v == "" or #v > 64 then
        return nil, nil, 400, 4000000, "RESOURCE_INVALID_PARAM", f .. " must be a non-empty string"
      end
      local i = fleet:find(v)
      local d = i and fleet:get(i, ctx.now)
      if not d or d[f] ~= v then return nil, nil, not_found(v) end
      return i, d, v
    end
  end
  return nil, nil, 400, 4000000, "RESOURCE_INVALID_PARAM", "objectId, deviceUid or approveId is required"
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

-- An array of integers in [lo, hi] with at most max items, or nil, why.
local function int_array(v, f, lo, hi, max)
  if type(v) ~= "table" or not json.is_array(v) or #v > max then
    return nil, f .. " must be an array of at most " .. max .. " integers"
  end
  for _, x in ipairs(v) do
    if math.type(x) ~= "integer" and not (type(x) == "number" and x == math.floor(x)) or x < lo or x > hi then
      return nil, f .. " must hold integers between " .. lo .. " and " .. hi
    end
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
  -- blink: timeLimit [fromHour, toHour] and daysLimit (days of the week,
  -- 0-6) are arrays ([C-PYKNOX]); their bounds are the simulator's choice
  blink = { from = { Active = true, Blinking = true }, to = "Blinking", check = function(b)
    local ok, why = str_field(b, "message", 200)
    if not ok then return nil, why end
    for _, f in ipairs { "email", "tel" } do
      ok, why = str_field(b, f, 500)
      if not ok then return nil, why end
    end
    if not absent(b.interval) and (math.type(b.interval) ~= "integer" and not (type(b.interval) == "number"
      and b.interval == math.floor(b.interval)) or b.interval < 0) then
      return nil, "interval must be a non-negative integer"
    end
    for _, f in ipairs { "timeLimitEnable", "daysLimitEnable" } do
      if not absent(b[f]) and type(b[f]) ~= "boolean" then return nil, f .. " must be a boolean" end
    end
    if not absent(b.timeLimit) then
      ok, why = int_array(b.timeLimit, "timeLimit", 0, 23, 2)
      if not ok then return nil, why end
      if #b.timeLimit ~= 2 then return nil, "timeLimit must be [fromHour, toHour]" end
    elseif b.timeLimitEnable == true then
      return nil, "timeLimit is required when timeLimitEnable is true"
    end
    if not absent(b.daysLimit) then
      ok, why = int_array(b.daysLimit, "daysLimit", 0, 6, 7)
      if not ok then return nil, why end
    elseif b.daysLimitEnable == true then
      return nil, "daysLimit is required when daysLimitEnable is true"
    end
    return true
  end },
  sendMessage = { from = { Active = true, Locked = true, Blinking = true }, check = function(b)
    return str_field(b, "message", 500, true)
  end },
  complete = { from = { Active = true, Locked = true, Blinking = true }, to = "Completed" },
  delete = { from = { Completed = true, Rejected = true }, remove = true },
  approve = { from = { Accepted = true, Pending = true }, to = "Activating" },
}

local function fail_entry(requested, objectId, code, name, reason)
  return { result = "FAIL", requestedId = requested, objectId = objectId,
    error = { code = tostring(code), message = name, reason = reason } }
end

-- Applies action to the device named by item (body fields in b). Returns
-- a result entry (SUCCESS or FAIL, error.code a string as in the doc) and,
-- on failure, the HTTP status a single call answers with.
local function apply(ctx, name, item, b)
  local kg = ctx.tenant.kg
  local act = ACTIONS[name]
  local i, d, requested, code, ename, reason = lookup(ctx, item)
  if not d then
    local rid = type(item) == "table" and (item.deviceUid or item.objectId or item.approveId) or item
    return fail_entry(type(rid) == "string" and rid or nil, nil, code, ename, reason), requested
  end
  if not act.from[d.status] then
    local status
    status, code, ename, reason = state_invalid(d, name)
    return fail_entry(requested, d.objectId, code, ename, reason), status
  end
  if name == "approve" then
    local aid = b.approveId
    if type(item) == "table" and not absent(item.approveId) and item.approveId ~= d.approveId then
      aid = item.approveId
    end
    if type(aid) ~= "string" or aid == "" or #aid > 64 then
      return fail_entry(requested, d.objectId, 4000000, "RESOURCE_INVALID_PARAM", "approveId is required"), 400
    end
    local other = kg.fleet:find(aid)
    if other and other ~= i and kg.fleet:get(other).approveId == aid then
      return fail_entry(requested, d.objectId, 4000000, "RESOURCE_INVALID_PARAM",
        "approveId is already used by another device"), 400
    end
    d = kg.fleet:mut(i, ctx.now)
    d.approveId = aid
    kg.fleet.by_key[aid] = i
    kg.activating[d] = ctx:now_ms() + M.ACTIVATE_SECONDS * 1000
  end
  if act.remove then
    kg.fleet:delete(i)
  else
    d = kg.fleet:mut(i, ctx.now)
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

-- The devices of an async call: deviceList (objects or strings) or, as
-- PyKnox sends them, deviceUid as an array of strings.
local function bulk_items(ctx, b)
  local opts = { required = true, max = bulk_max(ctx), too_many = BULK_TOO_MANY }
  if absent(b.deviceList) and type(b.deviceUid) == "table" then return ctx:list(b.deviceUid, "deviceUid", opts) end
  return ctx:list(b.deviceList, "deviceList", opts)
end

local function bulk(name)
  return function(ctx)
    local b = checked_body(ctx, name)
    local list = bulk_items(ctx, b)
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

-- POST devices/list: pageNum/pageSize paging, or (26.10 UAT, "cursor-based
-- Get device info": the path and names are not published, so these are
-- the simulator's choice) a "cursor" string in the body ("" for the first
-- page) answered with the next page's "cursor" (absent after the last),
-- with the optional filter updateTimeFrom (epoch ms). sortOrder
-- (ascending|descending by upload time) is 24.04's.
local function list_devices(ctx)
  local b = ctx:body { optional = true }
  local fleet = ctx.tenant.kg.fleet
  local search = ctx:str(b.search, "search", { max = 64 })
  local status = ctx:str(b.status, "status", { max = 32 })
  local order = ctx:str(b.sortOrder, "sortOrder", { values = { ascending = true, descending = true, ASC = true,
    DESC = true, asc = true, desc = true } })
  local desc = order and order:lower():sub(1, 4) == "desc"
  local cursor = ctx:str(b.cursor, "cursor", { max = 64 })
  local from = ctx:int(b.updateTimeFrom, "updateTimeFrom", 0)
  if search == "" then search = nil end
  local list
  if status and not search and not desc then
    -- an unchanged generated device's state and updateTime follow from its index
    local num, size = ctx:paging(b, 100, 1000)
    local t = ctx.tenant
    local first = num * size + 1
    if cursor then
      first = cursor == "" and 1 or tonumber(cursor:match("^c(%d+)$"))
      if not first then ctx:invalid("cursor is not one this API returned") end
    end
    local found, total = fleet:filter(function(i)
      return KG_STATES[(i - 1) % #KG_STATES + 1] == status and (not from or t:time(i) >= from)
    end, function(d) return d.status == status and (not from or d.updateTime >= from) end, first, size, ctx.now)
    local out = { result = "SUCCESS", totalCount = total, pageSize = size, deviceList = json.array(found) }
    if cursor then
      if first + size <= total then out.cursor = "c" .. (first + size) end
    else
      out.pageNum = num
    end
    return out
  end
  if search or status or from then
    list = {}
    local hit = search and fleet:find(search)
    if hit then
      local d = fleet:get(hit, ctx.now)
      if (not status or d.status == status) and (not from or d.updateTime >= from) then list[1] = d end
    else
      for _, d in fleet:each(ctx.now) do
        if (not search or d.deviceUid:find(search, 1, true) or d.objectId:find(search, 1, true)
            or (d.approveId and d.approveId:find(search, 1, true)))
          and (not status or d.status == status) and (not from or d.updateTime >= from) then
          list[#list + 1] = d
        end
      end
    end
    if desc then
      for k = 1, #list // 2 do list[k], list[#list - k + 1] = list[#list - k + 1], list[k] end
    end
  end
  local total = list and #list or fleet:count()
  local num, size = ctx:paging(b, 100, 1000)
  local first = num * size + 1
  if cursor then
    first = cursor == "" and 1 or tonumber(cursor:match("^c(%d+)$"))
    if not first then ctx:invalid("cursor is not one this API returned") end
  end
  local items = json.array()
  if list then
    for k = first, math.min(#list, first + size - 1) do items[#items + 1] = list[k] end
  elseif desc then
    for pos = total - first + 1, math.max(1, total - first - size + 2), -1 do
      items[#items + 1] = fleet:get(fleet:index_at(pos), ctx.now)
    end
  else
    for k, d in ipairs(fleet:slice(first, size, ctx.now)) do items[k] = d end
  end
  local out = { result = "SUCCESS", totalCount = total, pageSize = size, deviceList = items }
  if cursor then
    if first + size <= total then out.cursor = "c" .. (first + size) end
  else
    out.pageNum = num
  end
  return out
end

local function get_device(ctx)
  local fleet = ctx.tenant.kg.fleet
  local i = fleet:find(ctx.params[1])
  local d = i and fleet:get(i, ctx.now)
  if not d or d.objectId ~= ctx.params[1] then ctx:fail(not_found(ctx.params[1])) end
  return d
end

local function uploads(ctx)
  local b = ctx:body()
  local list = ctx:list(b.deviceList, "deviceList", { required = true, max = bulk_max(ctx), too_many = BULK_TOO_MANY })
  local auto = ctx:bool(b.autoAccept, "autoAccept")
  for _, f in ipairs { "autoLock", "applySimControl", "enableBlockFactoryReset", "blockDOProvision",
    "blockADBCommand" } do
    ctx:bool(b[f], f)
  end
  local kg = ctx.tenant.kg
  -- 25.11: applySimControl needs the tenant's default SIM control policy
  if b.applySimControl == true and not kg.sim_policy then
    ctx:fail(412, 4120000, "PRECONDITION_FAILED_EXCEPTION",
      "applySimControl is true but no default SIM control policy is configured")
  end
  local fleet = kg.fleet
  local results, ok = json.array(), 0
  for i, item in ipairs(list) do
    local uid = type(item) == "table" and item.deviceUid or item
    local aid = type(item) == "table" and item.approveId or nil
    local r
    if type(uid) ~= "string" or uid == "" or #uid > 64 or not uid:match("^[%w%-]+$")
      or (#uid == 15 and uid:match("^%d+$") and not codec.valid_imei(uid)) then
      r = fail_entry(type(uid) == "string" and codec.utf8_safe(uid) or nil, nil, 4000000, "RESOURCE_INVALID_PARAM",
        "deviceUid must be an IMEI or serial")
    elseif fleet:find(uid) and fleet:get(fleet:find(uid)).deviceUid == uid then
      r = fail_entry(uid, nil, 4000000, "RESOURCE_INVALID_PARAM", "The device is already registered")
    elseif not absent(aid) and (type(aid) ~= "string" or aid == "" or #aid > 64 or fleet:find(aid)) then
      r = fail_entry(uid, nil, 4000000, "RESOURCE_INVALID_PARAM", "approveId must be a unique non-empty string")
    else
      local d = { objectId = ctx.state:new_id("objectId"), deviceUid = uid, status = auto and "Accepted" or "Pending",
        approveId = not absent(aid) and aid or nil, uploadTime = ctx:now_ms(), updateTime = ctx:now_ms(),
        hsModeApplied = false, isKge = false, isRelockReminderTarget = false, isRelockReminderApplied = false }
      fleet:add(d)
      r = { result = "SUCCESS", requestedId = uid, objectId = d.objectId }
      ok = ok + 1
    end
    results[i] = r
  end
  return { count = #list, success = ok, fail = #list - ok, resultList = results }
end

--- POST /__sim/seed's kg part: { simPolicy = bool, devices = [{ deviceUid,
-- status? (default Active), approveId?, serialNumber?, model? }] }.
function M.seed(st, t, spec, now)
  local kg = t.kg
  if spec.simPolicy ~= nil then kg.sim_policy = spec.simPolicy == true end
  local out = { devices = json.array() }
  for i, d in ipairs(spec.devices or {}) do
    local uid = type(d) == "table" and d.deviceUid
    if type(uid) ~= "string" or uid == "" then error("kg.devices[" .. i .. "] needs a deviceUid", 0) end
    if kg.fleet:find(uid) then error("kg.devices[" .. i .. "]: " .. uid .. " exists already", 0) end
    local status = d.status or "Active"
    local item = { objectId = d.objectId or st:new_id("objectId"), deviceUid = uid, serialNumber = d.serialNumber,
      model = d.model, status = status, approveId = d.approveId, uploadTime = now, updateTime = now,
      hsModeApplied = false, isKge = false, isRelockReminderTarget = false, isRelockReminderApplied = false }
    kg.fleet:add(item)
    out.devices[i] = item.objectId
  end
  return out
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
