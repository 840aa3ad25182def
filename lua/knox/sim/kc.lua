--- knox.sim Knox Configure (api-notes §4.5). v1 (legacy x-knox-apitoken):
-- devices list / assign / unassign, profiles list, licenses list. v2
-- (OAuth only, minimal): POST /kc/v2/devices/getDevices. Errors: { code
-- (8 digits), message, data } without errorId.
--
-- Assignments complete at once (pendingCount 0); per-device failures are
-- counted in failedCount inside the 200, as documented. The licenses list
-- shape ({ contents, totalCount }, like profiles) and the v2 response
-- ({ devices, totalCount, nextSearchAfter }) are the simulator's choice.
local json = require "knox.sim.json"

local M = {}

M.MAX_DEVICES = 1000

local SORT_BY = { model = true, state = true, ["bulkEnrollProfile.name"] = true, updateTime = true,
  resellerUploadTime = true, detailState = true }

local function multi(ctx, name)
  local vals = ctx.query_all[name]
  if not vals then return nil end
  local set = {}
  for _, v in ipairs(vals) do
    for item in v:gmatch("[^,]+") do set[item] = true end
  end
  return set
end

local function sorted(list, sort_by, order)
  if not sort_by then return list end
  local key = sort_by == "bulkEnrollProfile.name" and "profileName" or sort_by
  local copy = {}
  for i, d in ipairs(list) do copy[i] = { d = d, i = i } end
  local desc = order == "descending"
  table.sort(copy, function(a, b)
    local x, y = a.d[key], b.d[key]
    if x == y or type(x) ~= type(y) then return a.i < b.i end
    if desc then return x > y end
    return x < y
  end)
  local out = {}
  for i, e in ipairs(copy) do out[i] = e.d end
  return out
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
  local list = {}
  for _, d in ipairs(ctx.tenant.kc.devices) do
    if (not want or want[d.deviceId] or (d.serialNumber and want[d.serialNumber]))
      and (not profiles or (d.profileId and profiles[d.profileId])) then
      list[#list + 1] = d
    end
  end
  local items, _, _, total = ctx:page(sorted(list, sort_by, order), q, 100, 1000)
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

local function assign(ctx)
  local b = ctx:body()
  local ids = ctx:ids(b.deviceIds, "deviceIds", { required = true, max = M.MAX_DEVICES })
  local f = b.assignFeature
  if not json.is_object(f) then ctx:invalid("assignFeature is required") end
  local kc = ctx.tenant.kc
  local pid, pname = ctx:str(f.profileId, "profileId", { max = 64 }), ctx:str(f.profileName, "profileName")
  if not pid and not pname then
    ctx:fail(400, 40000017, "PROFILE_ID_MISSING", "profileId or profileName is required")
  end
  local profile
  for _, p in ipairs(kc.profiles) do
    if (pid and p.profileId == pid) or (not pid and p.name == pname) then profile = p end
  end
  if not profile then ctx:fail(404, 40400000, "RESOURCE_NOT_FOUND", "The profile does not exist") end
  local lid, lkey = ctx:str(f.licenseId, "licenseId", { max = 64 }), ctx:str(f.licenseKey, "licenseKey", { max = 64 })
  local license
  if lid or lkey then
    license = find_license(kc, lid, lkey)
    if not license then ctx:fail(404, 40400007, "LICENSE_NOT_FOUND", "The license does not exist") end
  end
  local replace = ctx:bool(f.replaceLicense, "replaceLicense")
  local found, ok, failed = 0, 0, 0
  local now = ctx:now_ms()
  for _, id in ipairs(ids) do
    local d = kc.by_id[id]
    if not d then
      failed = failed + 1
    else
      found = found + 1
      local new_license = license and license.licenseKey ~= d.licenseKey
      if new_license and d.licenseKey and not replace then
        failed = failed + 1
      elseif new_license and license.usedQuantity >= license.quantity then
        failed = failed + 1
      else
        if new_license then
          release(kc, d)
          license.usedQuantity = license.usedQuantity + 1
          d.licenseKey = license.licenseKey
        end
        if not d.licenseKey then
          failed = failed + 1
        else
          d.state, d.profileId, d.profileName, d.updateTime = "Configured", profile.profileId, profile.name, now
          ok = ok + 1
        end
      end
    end
  end
  if found == 0 then ctx:fail(404, 40400005, "DEVICES_NOT_FOUND", "None of the devices exist") end
  return { totalCount = #ids, successCount = ok, pendingCount = 0, failedCount = failed }
end

local function unassign(ctx)
  local b = ctx:body()
  local ids = ctx:ids(b.deviceIds, "deviceIds", { required = true, max = M.MAX_DEVICES })
  local kc = ctx.tenant.kc
  local ok, failed, now = 0, 0, ctx:now_ms()
  for _, id in ipairs(ids) do
    local d = kc.by_id[id]
    if d then
      release(kc, d)
      d.state, d.profileId, d.profileName, d.licenseKey, d.updateTime = "Unassigned", nil, nil, nil, now
      ok = ok + 1
    else
      failed = failed + 1
    end
  end
  if ok == 0 then ctx:fail(404, 40400005, "DEVICES_NOT_FOUND", "None of the devices exist") end
  return { totalCount = #ids, successCount = ok, pendingCount = 0, failedCount = failed }
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

local function list_licenses(ctx)
  local items, _, _, total = ctx:page(ctx.tenant.kc.licenses, ctx.query, 100, 1000)
  return { contents = items, totalCount = total }
end

local STATES = { Configured = true, Error = true, Unassigned = true, UpdatesPushed = true, Pending = true }

-- v2 getDevices: pageSize default 25, max 100; searchAfter continues after
-- the device a previous page's nextSearchAfter named.
local function get_devices_v2(ctx)
  local b = ctx:body { optional = true }
  local ids = ctx:ids(b.deviceIds, "deviceIds", { max = M.MAX_DEVICES })
  local pids = ctx:ids(b.profileIds, "profileIds", { max = 100 })
  local state = ctx:str(b.deviceState, "deviceState", { values = STATES })
  local num, size = ctx:paging(b, 25, 100)
  local after = ctx:str(b.searchAfter, "searchAfter", { max = 64 })
  local want, pset
  if ids then
    want = {}
    for _, id in ipairs(ids) do want[id] = true end
  end
  if pids then
    pset = {}
    for _, id in ipairs(pids) do pset[id] = true end
  end
  local list = {}
  for _, d in ipairs(ctx.tenant.kc.devices) do
    if (not want or want[d.deviceId] or (d.serialNumber and want[d.serialNumber]))
      and (not pset or (d.profileId and pset[d.profileId])) and (not state or d.state == state) then
      list[#list + 1] = d
    end
  end
  local first = num * size + 1
  if after then
    first = nil
    for i, d in ipairs(list) do
      if d.deviceId == after then first = i + 1 end
    end
    if not first then ctx:invalid("searchAfter does not name a device of this result") end
  end
  local items = json.array()
  for i = first, math.min(#list, first + size - 1) do items[#items + 1] = list[i] end
  local last = first + size - 1
  return { totalCount = #list, pageNum = (not after) and num or nil, pageSize = size,
    devices = items, nextSearchAfter = last < #list and items[#items].deviceId or nil }
end

function M.routes(router)
  local function v1(method, path, handler)
    router:add { method = method, path = "^/kcs/v1/kc" .. path, service = "kc", auth = "legacy", handler = handler }
  end
  v1("GET", "/devices$", list_devices)
  v1("PUT", "/devices/assign$", assign)
  v1("PUT", "/devices/unassign$", unassign)
  v1("GET", "/profiles$", list_profiles)
  v1("GET", "/licenses$", list_licenses)
  router:add { method = "POST", path = "^/kc/v2/devices/getDevices$", service = "kc", auth = "oauth",
    scope = "kc.devices:view", tenant = true, handler = get_devices_v2 }
end

return M
