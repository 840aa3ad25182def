--- knox.sim Knox Configure (api-notes §4.5, api-notes-2 §1.6-1.7).
-- v1 (/kcs/v1/kc, legacy x-knox-apitoken): devices list / assign /
-- unassign / command / delete / logs, profiles list / details / delete,
-- licenses list / get. v2 (/kc/v2, OAuth only, tenant header honoured):
-- devices getDevices / getDeviceLogs / sendCommand / bulkDelete, profiles
-- list / create / get / delete / bulkAssign / bulkUnassign, licenses list
-- / get / delete. Errors: { code (8 digits), message, data } without
-- errorId.
--
-- Documented shapes: v1 device items { id, deviceUId, deviceState,
-- profileId, profileName, profileVersion, model, type, tags, createTime,
-- uploadTime, latestProfile, inProgress, ... } in { deviceList, totalCount };
-- v1 profiles { contents, totalCount }; v1 licenses { licenses, totalCount }
-- ([C-REDRED]); v1 assign { totalCount, successCount, pendingCount,
-- failedCount }; v2 getDevices { code: "2000000", message: "SUCCESS",
-- pageNum, pageSize, totalCount, totalPages, size, devices } with
-- nextSearchAfter ([KC-GS]); v2 items { id, imei, model, profileId, status
-- ("CONFIGURED"), lastUpdated (ISO-8601) }. Everything else -- the v2
-- answers other than getDevices, serialNumber/updateTime/licenseKey on
-- items, the log entries, searchAfter being the last item's id -- is the
-- simulator's choice. Assignments complete at once (pendingCount 0).
--
-- Bulk shapes (the simulator's choice; KC documents none for v2):
--   v1 assign/unassign/delete: 200 counts as above; none of the devices
--     known -> 404 40400005 DEVICES_NOT_FOUND.
--   v2 bulkAssign/bulkUnassign/bulkDelete/sendCommand: 200 { code: "2000000",
--     message: "SUCCESS", data: { totalCount, successCount, failedCount,
--     successDeviceList: [ids], failedDeviceList: [{ deviceId, code,
--     message }] } } (code 40400005 DEVICES_NOT_FOUND for unknown devices).
--   More ids than the bulk limit (default 1000) -> 400 40000000
--   RESOURCE_INVALID_PARAM (Knox Configure documents no bulk-limit code).
local json = require "knox.sim.json"
local codec = require "knox.sim.codec"
local fleet_mod = require "knox.sim.fleet"

local M = {}

M.MAX_DEVICES = 1000

local DAY_MS = 86400000

-- ISO-8601 UTC text of epoch milliseconds.
local function iso(ms)
  local t = ms // 1000
  local date = codec.http_date(t)  -- "Wed, 01 Jan 2026 00:00:00 GMT"
  local d, mon, y, hms = date:match("^%a+, (%d+) (%a+) (%d+) (%d+:%d+:%d+) GMT$")
  local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
    Nov = 11, Dec = 12 }
  return string.format("%s-%02d-%sT%s.%03dZ", y, MONTHS[mon], d, hms, ms % 1000)
end
M.iso = iso

local SHAPE = json.shape({ "id", "deviceUId", "serialNumber", "model", "type", "tags", "deviceState", "inProgress",
  "createTime", "uploadTime", "resellerUploadTime", "updateTime", "profileId", "profileName", "profileVersion",
  "latestProfile", "licenseKey", "lastCommand" }, function(d)
    local lic = d.licenseKey and string.format('"licenseKey":"%s",', d.licenseKey) or ""
    local prof = d.profileId and string.format('"profileId":"%s","profileName":%s,"profileVersion":%d,',
      d.profileId, json.quote(d.profileName), d.profileVersion) or ""
    return string.format('{"createTime":%d,"deviceState":"%s","deviceUId":"%s","id":"%s","inProgress":false,%s%s'
      .. '"model":"%s",%s"resellerUploadTime":%d,"serialNumber":"%s","tags":[],"type":"phone","updateTime":%d,'
      .. '"uploadTime":%d}', d.createTime, d.deviceState, d.deviceUId, d.id, d.latestProfile and '"latestProfile":true,'
      or "", lic, d.model, prof, d.resellerUploadTime, d.serialNumber, d.updateTime, d.uploadTime)
  end)
local NO_TAGS = json.array()

local PROFILE_NAMES = { "Retail display", "Field tablet", "Kiosk mode", "Warehouse rugged" }

--- The Knox Configure part of a new tenant (state.lua calls this).
function M.build(st, t)
  local rng = t.rng
  local np = t.ordinal == 0 and 2 or rng:int(3)
  local nl = t.ordinal == 0 and 2 or rng:int(2)
  local profiles = {}
  for k = 1, np do
    profiles[k] = { profileId = st:new_id(nil, rng), name = PROFILE_NAMES[(t.ordinal + k - 1) % #PROFILE_NAMES + 1],
      profileType = k % 2 == 1 and "ProfileWithoutKnox" or "ProfileWithKnox", knoxVersion = k % 2 == 1 and "3.0"
      or "3.4", profileVersion = k, deviceProductType = k % 2 == 1 and "phone" or "tablet", deviceLevel = "Knox",
      updateTime = st.BASE_MS - (100 - 10 * k) * DAY_MS }
  end
  local configured = np > 0 and t.n // 4 or 0
  local licenses = {}
  for k = 1, nl do
    licenses[k] = { licenseId = st:new_id(nil, rng), licenseKey = st:new_id("license", rng),
      name = k == 1 and "Knox Configure Dynamic" or "Knox Configure Trial", type = k == 1 and "Commercial"
      or "Trial", quantity = k == 1 and t.n + 100 or 30, usedQuantity = k == 1 and configured or 0,
      status = "Active", createTime = st.BASE_MS - (k == 1 and 300 or 10) * DAY_MS,
      expiryTime = st.BASE_MS + (k == 1 and 365 or 80) * DAY_MS }
  end
  local p1, l1 = profiles[1], licenses[1]
  -- gen_p1: the profile generated devices start with (every fourth has it)
  local kc = { profiles = profiles, licenses = licenses, profiles_by_id = {}, gen_p1 = p1 }
  -- what an unchanged generated device i is, from i alone (for filters)
  function kc.gen_state(i) return (i % 4 == 0 and p1) and "Configured" or "Unassigned" end
  function kc.gen_profile(i) return (i % 4 == 0 and p1) and p1.profileId or nil end
  for _, p in ipairs(profiles) do kc.profiles_by_id[p.profileId] = p end
  kc.fleet = fleet_mod.new(t.n, {
    make = function(i)
      local time = t:time(i)
      local d = setmetatable({ id = t:hex_id("kc", i), deviceUId = t:imei(i), serialNumber = t:serial(i),
        model = t:model(i), type = "phone", tags = NO_TAGS, deviceState = "Unassigned", inProgress = false,
        createTime = time, uploadTime = time, resellerUploadTime = time, updateTime = time }, SHAPE.fresh)
      if i % 4 == 0 and p1 then
        d.deviceState, d.profileId, d.profileName = "Configured", p1.profileId, p1.name
        d.profileVersion, d.latestProfile, d.licenseKey = p1.profileVersion, true, l1 and l1.licenseKey
      end
      return d
    end,
    decode = function(id) return t:decode(id, "kc") end,
    keys = function(d) return { d.deviceUId, d.serialNumber, d.id } end,
  })
  return kc
end

local function bulk_max(ctx)
  return ctx:bulk_limit("kc") or M.MAX_DEVICES
end

local function ids_of(ctx, v, name, required)
  return ctx:ids(v, name, { required = required ~= false, max = bulk_max(ctx) })
end

local SORT_BY = { model = "model", state = "deviceState", ["bulkEnrollProfile.name"] = "profileName",
  updateTime = "updateTime", resellerUploadTime = "resellerUploadTime", detailState = "deviceState" }

local function multi(ctx, name)
  local vals = ctx.query_all[name] or ctx.query_all[name .. "[]"]
  if not vals then return nil end
  local set = {}
  for _, v in ipairs(vals) do
    for item in v:gmatch("[^,]+") do set[item] = true end
  end
  return set
end

local function sorted(list, key, order)
  if not key then return list end
  local copy = {}
  for i, d in ipairs(list) do copy[i] = { d = d, i = i } end
  local desc = order == "descending"
  table.sort(copy, function(a, b)
    local x, y = a.d[key], b.d[key]
    if x == y or type(x) ~= type(y) then return a.i < b.i end
    if desc then return x > y end
    return x < y
  end)
  local out = json.array()
  for i, e in ipairs(copy) do out[i] = e.d end
  return out
end

-- The fleet index of the device an id (IMEI, serial number or id) names.
local function find(ctx, id)
  return ctx.tenant.kc.fleet:find(id)
end

local function list_devices(ctx)
  local q = ctx.query
  local want, profiles = multi(ctx, "devices"), multi(ctx, "profileIds")
  local sort_by = q.sortBy ~= "" and q.sortBy or nil
  if sort_by and not SORT_BY[sort_by] then ctx:invalid("sortBy has an unsupported value: " .. sort_by) end
  local order = q.sortOrder ~= "" and q.sortOrder or nil
  if order and order ~= "ascending" and order ~= "descending" then
    ctx:invalid("sortOrder must be ascending or descending")
  end
  local fleet = ctx.tenant.kc.fleet
  if not want and not profiles and not sort_by then
    local items, _, _, total = ctx:fleet_page(fleet, q, 100, 1000)
    return { deviceList = items, totalCount = total }
  end
  if profiles and not want and not sort_by then
    local kc = ctx.tenant.kc
    local num, size = ctx:paging(q, 100, 1000)
    local items, total = fleet:filter(function(i)
      local p = kc.gen_profile(i)
      return p and profiles[p]
    end, function(d) return d.profileId and profiles[d.profileId] end, num * size + 1, size)
    return { deviceList = json.array(items), totalCount = total }
  end
  local list = {}
  if want and not profiles then
    for id in pairs(want) do
      local i = find(ctx, id)
      if i then list[#list + 1] = { i, fleet:get(i) } end
    end
    table.sort(list, function(a, b) return a[1] < b[1] end)
    for k, e in ipairs(list) do list[k] = e[2] end
  else
    for _, d in fleet:each() do
      if (not want or want[d.deviceUId] or want[d.serialNumber] or want[d.id])
        and (not profiles or (d.profileId and profiles[d.profileId])) then
        list[#list + 1] = d
      end
    end
  end
  local items, _, _, total = ctx:page(sorted(list, SORT_BY[sort_by], order), q, 100, 1000)
  return { deviceList = items, totalCount = total }
end

local function find_license(kc, by_id, by_key)
  for _, l in ipairs(kc.licenses) do
    if (by_id and l.licenseId == by_id) or (by_key and l.licenseKey == by_key) then return l end
  end
end

local function release(kc, d)
  if d.licenseKey then
    local l = find_license(kc, nil, d.licenseKey)
    if l then l.usedQuantity = math.max(0, l.usedQuantity - 1) end
  end
end

local function find_profile(kc, pid, pname)
  for _, p in ipairs(kc.profiles) do
    if (pid and p.profileId == pid) or (not pid and p.name == pname) then return p end
  end
end

-- Assigns profile (and license, when given) to the device at index i;
-- returns true, or false and why.
local function assign_one(ctx, i, profile, license, replace)
  local kc = ctx.tenant.kc
  local d = kc.fleet:get(i)
  local new_license = license and license.licenseKey ~= d.licenseKey
  if new_license and d.licenseKey and not replace then return false, "The device has another license" end
  if new_license and license.usedQuantity >= license.quantity then return false, "The license is used up" end
  if not new_license and not d.licenseKey then return false, "The device has no license" end
  d = kc.fleet:mut(i)
  if new_license then
    release(kc, d)
    license.usedQuantity = license.usedQuantity + 1
    d.licenseKey = license.licenseKey
  end
  d.deviceState, d.profileId, d.profileName, d.updateTime = "Configured", profile.profileId, profile.name,
    ctx:now_ms()
  d.profileVersion, d.latestProfile = profile.profileVersion, true
  return true
end

local function unassign_one(ctx, i)
  local kc = ctx.tenant.kc
  local d = kc.fleet:mut(i)
  release(kc, d)
  d.deviceState, d.profileId, d.profileName, d.licenseKey, d.updateTime = "Unassigned", nil, nil, nil, ctx:now_ms()
  d.profileVersion, d.latestProfile = nil, nil
end

local function assign(ctx)
  local b = ctx:body()
  local ids = ids_of(ctx, b.deviceIds, "deviceIds")
  local f = b.assignFeature
  if not json.is_object(f) then ctx:invalid("assignFeature is required") end
  local kc = ctx.tenant.kc
  local pid, pname = ctx:str(f.profileId, "profileId", { max = 64 }), ctx:str(f.profileName, "profileName")
  if not pid and not pname then
    ctx:fail(400, 40000017, "PROFILE_ID_MISSING", "profileId or profileName is required")
  end
  local profile = find_profile(kc, pid, pname)
  if not profile then ctx:fail(404, 40400000, "RESOURCE_NOT_FOUND", "The profile does not exist") end
  local lid, lkey = ctx:str(f.licenseId, "licenseId", { max = 64 }), ctx:str(f.licenseKey, "licenseKey", { max = 64 })
  local license
  if lid or lkey then
    license = find_license(kc, lid, lkey)
    if not license then ctx:fail(404, 40400007, "LICENSE_NOT_FOUND", "The license does not exist") end
  end
  local replace = ctx:bool(f.replaceLicense, "replaceLicense")
  local found, ok = 0, 0
  for _, id in ipairs(ids) do
    local i = find(ctx, id)
    if i then
      found = found + 1
      if assign_one(ctx, i, profile, license, replace) then ok = ok + 1 end
    end
  end
  if found == 0 then ctx:fail(404, 40400005, "DEVICES_NOT_FOUND", "None of the devices exist") end
  return { totalCount = #ids, successCount = ok, pendingCount = 0, failedCount = #ids - ok }
end

local function unassign(ctx)
  local b = ctx:body()
  local ids = ids_of(ctx, b.deviceIds, "deviceIds")
  local ok = 0
  for _, id in ipairs(ids) do
    local i = find(ctx, id)
    if i then
      unassign_one(ctx, i)
      ok = ok + 1
    end
  end
  if ok == 0 then ctx:fail(404, 40400005, "DEVICES_NOT_FOUND", "None of the devices exist") end
  return { totalCount = #ids, successCount = ok, pendingCount = 0, failedCount = #ids - ok }
end

-- Device commands: their names are not published; the simulator accepts
-- these (its choice).
local COMMANDS = { PushProfile = true, Reboot = true, Wipe = true, Lock = true, Unlock = true }

local function command_v1(ctx)
  local b = ctx:body()
  local ids = ids_of(ctx, b.deviceIds, "deviceIds")
  local cmd = ctx:str(b.command, "command", { required = true, values = COMMANDS })
  local ok = 0
  for _, id in ipairs(ids) do
    local i = find(ctx, id)
    if i then
      ok = ok + 1
      local d = ctx.tenant.kc.fleet:mut(i)
      d.lastCommand, d.updateTime = cmd, ctx:now_ms()
    end
  end
  if ok == 0 then ctx:fail(404, 40400005, "DEVICES_NOT_FOUND", "None of the devices exist") end
  return { code = "2000000", message = "SUCCESS",
    data = { totalCount = #ids, successCount = ok, failedCount = #ids - ok } }
end

-- DELETE /devices?deviceIds=a,b (the query name is the simulator's choice).
local function delete_v1(ctx)
  local set = multi(ctx, "deviceIds")
  if not set then ctx:invalid("deviceIds is required") end
  local ids = {}
  for id in pairs(set) do ids[#ids + 1] = id end
  table.sort(ids)
  if #ids > bulk_max(ctx) then ctx:invalid("deviceIds has more than " .. bulk_max(ctx) .. " items") end
  local ok = 0
  for _, id in ipairs(ids) do
    local i = find(ctx, id)
    if i then
      unassign_one(ctx, i)
      ctx.tenant.kc.fleet:delete(i)
      ok = ok + 1
    end
  end
  if ok == 0 then ctx:fail(404, 40400005, "DEVICES_NOT_FOUND", "None of the devices exist") end
  return { totalCount = #ids, successCount = ok, pendingCount = 0, failedCount = #ids - ok }
end

-- Generated log lines of a device (the simulator's choice).
local function logs_of(d)
  local out = json.array()
  out[1] = { time = d.uploadTime, type = "UPLOAD", message = "Device uploaded by the reseller" }
  if d.profileId then
    out[2] = { time = d.updateTime, type = "PROFILE", message = "Profile " .. tostring(d.profileName) .. " applied" }
  end
  if d.lastCommand then
    out[#out + 1] = { time = d.updateTime, type = "COMMAND", message = "Command " .. d.lastCommand .. " sent" }
  end
  return out
end

local function device_or_404(ctx, id)
  local i = find(ctx, id)
  if not i then ctx:fail(404, 40400005, "DEVICES_NOT_FOUND", "No device " .. codec.utf8_safe(tostring(id))) end
  return ctx.tenant.kc.fleet:get(i)
end

local function logs_v1(ctx)
  local d = device_or_404(ctx, ctx.params[1])
  local logs = logs_of(d)
  return { deviceId = ctx.params[1], deviceLogs = logs, totalCount = #logs }
end

local function list_profiles(ctx)
  local q = ctx.query
  local ids, names = multi(ctx, "profileIds"), multi(ctx, "profileNames")
  local list = {}
  for _, p in ipairs(ctx.tenant.kc.profiles) do
    if (not ids or ids[p.profileId]) and (not names or names[p.name])
      and (not q.profileType or q.profileType == "" or p.profileType == q.profileType)
      and (not q.deviceLevel or q.deviceLevel == "" or p.deviceLevel == q.deviceLevel) then
      list[#list + 1] = p
    end
  end
  local items, _, _, total = ctx:page(list, q, 100, 1000)
  return { contents = items, totalCount = total }
end

local function profile_or_404(ctx, id)
  local p = ctx.tenant.kc.profiles_by_id[id]
  if not p then ctx:fail(404, 40400000, "RESOURCE_NOT_FOUND", "The profile does not exist") end
  return p
end

-- Devices using a profile (generated ones counted by arithmetic).
local function profile_use(kc, p)
  local fleet, n = kc.fleet, 0
  if kc.gen_p1 == p then
    for i = 4, fleet.n, 4 do
      if not fleet.changed[i] and not fleet.is_deleted[i] then n = n + 1 end
    end
  end
  for _, d in pairs(fleet.changed) do
    if d.profileId == p.profileId then n = n + 1 end
  end
  return n
end

local function profile_details(ctx)
  local p = profile_or_404(ctx, ctx.params[1])
  local out = {}
  for k, v in pairs(p) do out[k] = v end
  out.deviceCount = profile_use(ctx.tenant.kc, p)
  return out
end

local function remove_profile(kc, p)
  for k, q in ipairs(kc.profiles) do
    if q == p then
      table.remove(kc.profiles, k)
      break
    end
  end
  kc.profiles_by_id[p.profileId] = nil
end

-- DELETE /profiles?profileIds=a,b: profiles in use are not deleted
-- (counted as failed; the simulator's choice).
local function delete_profiles_v1(ctx)
  local set = multi(ctx, "profileIds")
  if not set then ctx:invalid("profileIds is required") end
  local kc = ctx.tenant.kc
  local total, ok = 0, 0
  for id in pairs(set) do
    total = total + 1
    local p = kc.profiles_by_id[id]
    if p and profile_use(kc, p) == 0 then
      remove_profile(kc, p)
      ok = ok + 1
    end
  end
  if ok == 0 and total > 0 then
    ctx:fail(404, 40400000, "RESOURCE_NOT_FOUND", "None of the profiles exist or all are in use")
  end
  return { totalCount = total, successCount = ok, failedCount = total - ok }
end

local function list_licenses(ctx)
  local items, _, _, total = ctx:page(ctx.tenant.kc.licenses, ctx.query, 100, 1000)
  return { licenses = items, totalCount = total }
end

local function license_or_404(ctx, id, by_key)
  local l = find_license(ctx.tenant.kc, not by_key and id, by_key and id)
  if not l then ctx:fail(404, 40400007, "LICENSE_NOT_FOUND", "The license does not exist") end
  return l
end

local function get_license_v1(ctx)
  local l = license_or_404(ctx, ctx.params[1])
  return { licenses = json.array { l }, totalCount = 1, statusCode = "2000000", statusMessage = "SUCCESS" }
end

-- v2 ------------------------------------------------------------------------

local V2_STATES = { Configured = "CONFIGURED", Error = "ERROR", Unassigned = "UNASSIGNED",
  UpdatesPushed = "UPDATES_PUSHED", Pending = "PENDING" }

local function v2_item(d)
  return { id = d.id, imei = d.deviceUId, serialNumber = d.serialNumber, model = d.model, profileId = d.profileId,
    profileName = d.profileName, status = V2_STATES[d.deviceState] or d.deviceState:upper(),
    lastUpdated = iso(d.updateTime) }
end

local function v2_page(num, size, total, key, items)
  return { code = "2000000", message = "SUCCESS", pageNum = num, pageSize = size, totalCount = total,
    totalPages = (total + size - 1) // size, size = #items, [key] = items }
end

-- v2 getDevices: pageSize default 25, max 100; deviceState an array of
-- states (Configured, Error, Unassigned, UpdatesPushed, Pending);
-- searchAfter continues after the device a previous nextSearchAfter named
-- (the last item's id: the simulator's choice of cursor).
local function get_devices_v2(ctx)
  local b = ctx:body { optional = true }
  local ids = ctx:ids(b.deviceIds, "deviceIds", { max = bulk_max(ctx) })
  local pids = ctx:ids(b.profileIds, "profileIds", { max = 100 })
  local states = ctx:list(b.deviceState, "deviceState", { max = 5 })
  local sset
  if states then
    sset = {}
    for _, s in ipairs(states) do
      if type(s) ~= "string" or not V2_STATES[s] then
        ctx:invalid("deviceState values are Configured, Error, Unassigned, UpdatesPushed and Pending")
      end
      sset[s] = true
    end
  end
  local num, size = ctx:paging(b, 25, 100)
  local after = ctx:str(b.searchAfter, "searchAfter", { max = 64 })
  local fleet = ctx.tenant.kc.fleet
  local want, pset
  if ids then
    want = {}
    for _, id in ipairs(ids) do want[id] = true end
  end
  if pids then
    pset = {}
    for _, id in ipairs(pids) do pset[id] = true end
  end
  local items = json.array()
  local total, last
  if not want and not pset and not sset then
    -- straight over the fleet: only the page's devices are made
    total = fleet:count()
    local first = num * size + 1
    if after then
      local i = fleet:find(after)
      if not i or fleet:get(i).id ~= after then ctx:invalid("searchAfter does not name a device of this result") end
      -- the live position of index i: i minus the deleted indexes before it
      local before = 0
      for _, x in ipairs(fleet.deleted) do
        if x < i then before = before + 1 else break end
      end
      first = i - before + 1
    end
    for k, d in ipairs(fleet:slice(first, size, ctx.now)) do items[k] = v2_item(d) end
    last = first + #items - 1
  elseif not want and not after then
    -- filters without device ids: decided from the index for generated devices
    local kc = ctx.tenant.kc
    local found
    found, total = fleet:filter(function(i)
      local p = kc.gen_profile(i)
      return (not pset or (p and pset[p])) and (not sset or sset[kc.gen_state(i)])
    end, function(d)
      return (not pset or (d.profileId and pset[d.profileId])) and (not sset or sset[d.deviceState])
    end, num * size + 1, size, ctx.now)
    for k, d in ipairs(found) do items[k] = v2_item(d) end
    last = num * size + #items
  else
    local list = {}
    local each = want and {} or nil
    if want then
      -- by id: look each one up instead of walking the fleet
      local idx = {}
      for id in pairs(want) do
        local i = find(ctx, id)
        if i and not idx[i] then
          idx[i] = true
          each[#each + 1] = i
        end
      end
      table.sort(each)
      for k, i in ipairs(each) do each[k] = fleet:get(i) end
    else
      each = {}
      for _, d in fleet:each() do each[#each + 1] = d end
    end
    for _, d in ipairs(each) do
      if (not pset or (d.profileId and pset[d.profileId])) and (not sset or sset[d.deviceState]) then
        list[#list + 1] = d
      end
    end
    total = #list
    local first = num * size + 1
    if after then
      first = nil
      for k, d in ipairs(list) do
        if d.id == after then first = k + 1 end
      end
      if not first then ctx:invalid("searchAfter does not name a device of this result") end
    end
    for k = first, math.min(#list, first + size - 1) do items[#items + 1] = v2_item(list[k]) end
    last = first + #items - 1
  end
  local out = v2_page(num, size, total, "devices", items)
  if after then out.pageNum = nil end
  if last < total and #items > 0 then out.nextSearchAfter = items[#items].id end
  return out
end

-- One v2 bulk outcome (the simulator's shape; see the header).
local function bulk_result(total, ok_list, failed)
  return { code = "2000000", message = "SUCCESS", data = { totalCount = total, successCount = #ok_list,
    failedCount = #failed, successDeviceList = ok_list, failedDeviceList = failed } }
end

local function not_found_entry(id)
  return { deviceId = id, code = 40400005, message = "DEVICES_NOT_FOUND" }
end

-- Runs fn(index, id) over body.deviceIds; fn returns true or false, why.
local function v2_bulk(ctx, ids, fn)
  local ok, failed = json.array(), json.array()
  for _, id in ipairs(ids) do
    local i = find(ctx, id)
    if not i then
      failed[#failed + 1] = not_found_entry(id)
    else
      local done, why = fn(i, id)
      if done then
        ok[#ok + 1] = id
      else
        failed[#failed + 1] = { deviceId = id, code = 40000000, message = "RESOURCE_INVALID_PARAM", data = why }
      end
    end
  end
  return bulk_result(#ids, ok, failed)
end

local function get_device_logs_v2(ctx)
  local b = ctx:body()
  local id = ctx:str(b.deviceId, "deviceId", { required = true, max = 64 })
  local logs = logs_of(device_or_404(ctx, id))
  return { code = "2000000", message = "SUCCESS", deviceId = id, deviceLogs = logs, totalCount = #logs }
end

local function send_command_v2(ctx)
  local b = ctx:body()
  local ids = ids_of(ctx, b.deviceIds, "deviceIds")
  local cmd = ctx:str(b.command, "command", { required = true, values = COMMANDS })
  return v2_bulk(ctx, ids, function(i)
    local d = ctx.tenant.kc.fleet:mut(i)
    d.lastCommand, d.updateTime = cmd, ctx:now_ms()
    return true
  end)
end

local function bulk_delete_v2(ctx)
  local b = ctx:body()
  local ids = ids_of(ctx, b.deviceIds, "deviceIds")
  return v2_bulk(ctx, ids, function(i)
    unassign_one(ctx, i)
    ctx.tenant.kc.fleet:delete(i)
    return true
  end)
end

-- A v2 GET list of one of the tenant's Knox Configure collections
-- (profiles, licenses): pages of 25 by default, at most 100.
local function v2_list(key)
  return function(ctx)
    local q, list = ctx.query, ctx.tenant.kc[key]
    local num, size = ctx:paging(q, 25, 100)
    return v2_page(num, size, #list, key, ctx:page(list, q, 25, 100))
  end
end

local list_profiles_v2 = v2_list "profiles"

local PROFILE_TYPES = { ProfileWithoutKnox = true, ProfileWithKnox = true }

local function create_profile_v2(ctx)
  local b = ctx:body()
  local kc = ctx.tenant.kc
  local name = ctx:str(b.name, "name", { required = true, max = 100 })
  for _, p in ipairs(kc.profiles) do
    if p.name == name then ctx:fail(409, 40900000, "CONFLICT", "A profile with this name exists") end
  end
  local p = { profileId = ctx.state:new_id(), name = name,
    profileType = ctx:str(b.profileType, "profileType", { values = PROFILE_TYPES }) or "ProfileWithoutKnox",
    knoxVersion = ctx:str(b.knoxVersion, "knoxVersion", { max = 16 }) or "3.0", profileVersion = 1,
    deviceProductType = ctx:str(b.deviceProductType, "deviceProductType", { values = { phone = true,
      tablet = true } }) or "phone", deviceLevel = "Knox", updateTime = ctx:now_ms() }
  kc.profiles[#kc.profiles + 1] = p
  kc.profiles_by_id[p.profileId] = p
  return p
end

local function get_profile_v2(ctx)
  return profile_or_404(ctx, ctx.params[1])
end

local function delete_profile_v2(ctx)
  local kc = ctx.tenant.kc
  local p = profile_or_404(ctx, ctx.params[1])
  if profile_use(kc, p) > 0 then ctx:invalid("The profile is assigned to devices; unassign them first") end
  remove_profile(kc, p)
  return { code = "2000000", message = "SUCCESS", profileId = p.profileId }
end

local function bulk_assign_v2(ctx)
  local b = ctx:body()
  local profile = profile_or_404(ctx, ctx.params[1])
  local key = ctx:str(b.licenseKey, "licenseKey", { required = true, max = 64 })
  local ids = ids_of(ctx, b.deviceIds, "deviceIds")
  local license = license_or_404(ctx, key, true)
  return v2_bulk(ctx, ids, function(i) return assign_one(ctx, i, profile, license, true) end)
end

local function bulk_unassign_v2(ctx)
  local b = ctx:body()
  local ids = ids_of(ctx, b.deviceIds, "deviceIds")
  return v2_bulk(ctx, ids, function(i)
    unassign_one(ctx, i)
    return true
  end)
end

local list_licenses_v2 = v2_list "licenses"

local function get_license_v2(ctx)
  return license_or_404(ctx, ctx.params[1], true)
end

local function delete_license_v2(ctx)
  local kc = ctx.tenant.kc
  local l = license_or_404(ctx, ctx.params[1], true)
  if l.usedQuantity > 0 then ctx:invalid("The license is assigned to " .. l.usedQuantity .. " devices") end
  for k, x in ipairs(kc.licenses) do
    if x == l then
      table.remove(kc.licenses, k)
      break
    end
  end
  return { code = "2000000", message = "SUCCESS", licenseKey = l.licenseKey }
end

--- POST /__sim/seed's kc part: { profiles = [{ name, ... }], licenses =
-- [{ licenseKey?, name?, quantity? }], devices = [{ deviceUId,
-- serialNumber?, model?, deviceState? }] }.
function M.seed(st, t, spec, now)
  local kc = t.kc
  local out = { profiles = json.array(), licenses = json.array(), devices = json.array() }
  for i, p in ipairs(spec.profiles or {}) do
    if type(p) ~= "table" or type(p.name) ~= "string" then error("kc.profiles[" .. i .. "] needs a name", 0) end
    local np = { profileId = p.profileId or st:new_id(), name = p.name, profileType = "ProfileWithoutKnox",
      knoxVersion = "3.0", profileVersion = 1, deviceProductType = "phone", deviceLevel = "Knox", updateTime = now }
    for k, v in pairs(p) do np[k] = v end
    kc.profiles[#kc.profiles + 1] = np
    kc.profiles_by_id[np.profileId] = np
    out.profiles[i] = np.profileId
  end
  for i, l in ipairs(spec.licenses or {}) do
    if type(l) ~= "table" then error("kc.licenses[" .. i .. "] must be an object", 0) end
    local nl = { licenseId = st:new_id(), licenseKey = l.licenseKey or st:new_id("license"),
      name = l.name or "Seeded license", type = l.type or "Commercial", quantity = l.quantity or 100,
      usedQuantity = 0, status = "Active", createTime = now, expiryTime = now + 365 * DAY_MS }
    kc.licenses[#kc.licenses + 1] = nl
    out.licenses[i] = nl.licenseKey
  end
  for i, d in ipairs(spec.devices or {}) do
    local uid = type(d) == "table" and d.deviceUId
    if type(uid) ~= "string" or uid == "" then error("kc.devices[" .. i .. "] needs a deviceUId", 0) end
    if kc.fleet:find(uid) then error("kc.devices[" .. i .. "]: " .. uid .. " exists already", 0) end
    local item = { id = d.id or st:new_id(), deviceUId = uid, serialNumber = d.serialNumber,
      model = d.model or "SM-T870",
      type = "phone", tags = json.array(), deviceState = d.deviceState or "Unassigned", inProgress = false,
      createTime = now, uploadTime = now, resellerUploadTime = now, updateTime = now }
    kc.fleet:add(item)
    out.devices[i] = item.id
  end
  return out
end

function M.routes(router)
  local function v1(method, path, handler)
    router:add { method = method, path = "^/kcs/v1/kc" .. path, service = "kc", auth = "legacy", handler = handler }
  end
  v1("GET", "/devices$", list_devices)
  v1("DELETE", "/devices$", delete_v1)
  v1("PUT", "/devices/assign$", assign)
  v1("PUT", "/devices/unassign$", unassign)
  v1("PUT", "/devices/command$", command_v1)
  v1("GET", "/devices/([^/]+)/logs$", logs_v1)
  v1("GET", "/profiles$", list_profiles)
  v1("DELETE", "/profiles$", delete_profiles_v1)
  v1("GET", "/profiles/([^/]+)/details$", profile_details)
  v1("GET", "/licenses$", list_licenses)
  v1("GET", "/licenses/([^/]+)$", get_license_v1)
  local function v2(method, path, scope, handler)
    router:add { method = method, path = "^/kc/v2" .. path, service = "kc", auth = "oauth", scope = scope,
      tenant = true, handler = handler }
  end
  v2("POST", "/devices/getDevices$", "kc.devices:view", get_devices_v2)
  v2("POST", "/devices/getDeviceLogs$", "kc.devices:view", get_device_logs_v2)
  v2("POST", "/devices/sendCommand$", "kc.devices:manage", send_command_v2)
  v2("POST", "/devices/bulkDelete$", "kc.devices:manage", bulk_delete_v2)
  v2("GET", "/profiles$", "kc.profile:view", list_profiles_v2)
  v2("POST", "/profiles$", "kc.profile:manage", create_profile_v2)
  v2("POST", "/profiles/bulkUnassign$", "kc.profile:assign", bulk_unassign_v2)
  v2("POST", "/profiles/([^/]+)/bulkAssign$", "kc.profile:assign", bulk_assign_v2)
  v2("GET", "/profiles/([^/]+)$", "kc.profile:view", get_profile_v2)
  v2("DELETE", "/profiles/([^/]+)$", "kc.profile:manage", delete_profile_v2)
  v2("GET", "/licenses$", "kc.license:view", list_licenses_v2)
  v2("GET", "/licenses/([^/]+)$", "kc.license:view", get_license_v2)
  v2("DELETE", "/licenses/([^/]+)$", "kc.license:manage", delete_license_v2)
end

return M
