--- knox.sim Knox Deployment Program Gen2 (api-notes §4.4): devices upload /
-- delete / status / list and the reseller's customers. Authentication:
-- older docs say x-knox-apitoken, the Sep 2025 docs say OAuth 2.0; the
-- simulator accepts both (kdp.* scopes for OAuth). Errors: { errorId,
-- code (8 digits), message, data }.
--
-- Uploads and deletes answer with a transaction at once; GET
-- devices/status shows it "InProgress" the first time it is polled and
-- "Complete" after that, with per-device failures inside the 200 (documented
-- shape). Devices uploaded to the account's own customer id also appear in
-- its KME device list, as a reseller upload does. Response field names not
-- in api-notes (totalCount/pageNum/pageSize/devices of the list, the upload
-- answer) are the simulator's choice.
local json = require "knox.sim.json"
local codec = require "knox.sim.codec"
local absent = require("knox.sim.router").absent

local M = {}

M.MAX_DEVICES = 10000
local ALNUM64 = "^[%w%-_]+$"

local function check_reseller(ctx, id)
  if absent(id) or id == "" then ctx:invalid("resellerId is required") end
  if id ~= ctx.state.reseller_id then
    ctx:fail(404, 40400001, "RESELLER_NOT_FOUND", "The reseller does not exist: " .. codec.utf8_safe(tostring(id)))
  end
end

local function known_customer(st, id)
  for _, c in ipairs(st.kdp.customers) do
    if c.customerId == id then return c end
  end
end

local function check_customer(ctx, id, required)
  if absent(id) or id == "" then
    if required then ctx:invalid("customerId is required") end
    return nil
  end
  if type(id) ~= "string" or not known_customer(ctx.state, id) then
    ctx:fail(400, 40000011, "CUSTOMER_ID_INVALID", "The customer ID is invalid: " .. codec.utf8_safe(tostring(id)))
  end
  return id
end

-- The device identifiers of an upload/delete body, and their type.
local function device_ids(ctx, b)
  local list = ctx:list(b.devices, "devices", { required = true, max = M.MAX_DEVICES })
  local kind = ctx:str(b.type, "type", { values = { IMEI = true, SERIAL = true, MEID = true } }) or "IMEI"
  local ids = {}
  for i, d in ipairs(list) do
    local id = d
    if json.is_object(d) then id = d.deviceUid or d.imei or d.serialNumber or d.meid end
    if type(id) ~= "string" or id == "" or #id > 64 then
      ctx:invalid("devices[" .. i .. "] must be an IMEI or serial number string")
    end
    ids[i] = id
  end
  return ids, kind
end

local function valid_device(id, kind)
  if kind == "IMEI" then return codec.valid_imei(id) end
  if kind == "MEID" then return id:match("^%x+$") and #id == 14 end
  return id:match("^%w+$") and #id >= 8 and #id <= 20
end

local function device_error(id, code, name, data)
  return { imei = id, code = code, message = name, data = data }
end

local function new_transaction(ctx, b, op)
  local tid = ctx:str(b.transactionId, "transactionId", { required = true, max = 64, pattern = ALNUM64 })
  for _, tx in ipairs(ctx.state.kdp.transactions) do
    if tx.transactionId == tid then ctx:invalid("transactionId " .. tid .. " has already been used") end
  end
  local order = ctx:str(b.orderNo, "orderNo", { max = 64 })
  local tx = { transactionId = tid, state = "InProgress", type = op == "UPLOAD" and "Upload" or "Delete",
    operationType = op, orderNo = order, devices = json.array(), polls = 0, count = 0 }
  return tx
end

local function add_to_kme(ctx, customer_id, id, kind, now)
  if customer_id ~= ctx.state.customer_id then return end
  local tenant = ctx.state:tenant(customer_id)
  local kme = tenant.kme
  if kme.by_id[id] then return end
  local d = { deviceId = id, imei = kind == "IMEI" and id or nil, serialNumber = kind == "SERIAL" and id or nil,
    resellerId = ctx.state.reseller_id, resellerName = ctx.state.reseller_name, status = "Unassigned",
    uploadTime = now, updateTime = now }
  kme.devices[#kme.devices + 1] = d
  kme.by_id[id] = d
end

local function upload(ctx)
  local b = ctx:body()
  check_reseller(ctx, b.resellerId)
  local cid = check_customer(ctx, b.customerId, true)
  local ids, kind = device_ids(ctx, b)
  local tx = new_transaction(ctx, b, "UPLOAD")
  local kdp, now = ctx.state.kdp, ctx:now_ms()
  local index = {}
  for _, d in ipairs(kdp.devices) do index[d.deviceUid] = d end
  for _, id in ipairs(ids) do
    local have = index[id]
    if not valid_device(id, kind) then
      tx.devices[#tx.devices + 1] = device_error(id, 40000004, "DEVICE_INVALID", "Not a valid " .. kind)
    elseif have and have.customerId ~= cid then
      tx.devices[#tx.devices + 1] = device_error(id, 40000004, "DEVICE_INVALID",
        "The device is already uploaded to another customer")
    elseif not have then
      local d = { deviceUid = id, imei = kind == "IMEI" and id or nil, serialNumber = kind == "SERIAL" and id or nil,
        customerId = cid, orderNo = tx.orderNo, uploadTime = now }
      kdp.devices[#kdp.devices + 1] = d
      index[id] = d
      add_to_kme(ctx, cid, id, kind, now)
    end
  end
  tx.count, tx.customerId = #ids, cid
  kdp.transactions[#kdp.transactions + 1] = tx
  return { transactionId = tx.transactionId, state = tx.state, totalCount = #ids }
end

local function delete(ctx)
  local b = ctx:body()
  check_reseller(ctx, b.resellerId)
  local cid = check_customer(ctx, b.customerId, true)
  local ids = device_ids(ctx, b)
  local tx = new_transaction(ctx, b, "DELETE")
  local kdp = ctx.state.kdp
  local drop = {}
  for _, id in ipairs(ids) do
    local found
    for _, d in ipairs(kdp.devices) do
      if d.deviceUid == id and d.customerId == cid then
        found = d
        break
      end
    end
    if found then
      drop[found] = true
    else
      tx.devices[#tx.devices + 1] = device_error(id, 40000044, "RESELLER_CUSTOMER_DEVICE_NOT_FOUND",
        "The device was not uploaded by this reseller to this customer")
    end
  end
  if next(drop) then
    local keep = {}
    for _, d in ipairs(kdp.devices) do
      if not drop[d] then keep[#keep + 1] = d end
    end
    kdp.devices = keep
  end
  tx.count, tx.customerId = #ids, cid
  kdp.transactions[#kdp.transactions + 1] = tx
  return { transactionId = tx.transactionId, state = tx.state, totalCount = #ids }
end

local function status(ctx)
  local q = ctx.query
  check_reseller(ctx, q.resellerId)
  local cid = check_customer(ctx, q.customerId, false)
  local found
  for i = #ctx.state.kdp.transactions, 1, -1 do
    local tx = ctx.state.kdp.transactions[i]
    if (not q.transactionId or q.transactionId == "" or tx.transactionId == q.transactionId)
      and (not cid or tx.customerId == cid) then
      found = tx
      break
    end
  end
  if not found then ctx:fail(404, 40400000, "RESOURCE_NOT_FOUND", "No such transaction") end
  found.polls = found.polls + 1
  if found.polls > 1 then found.state = "Complete" end
  return { transactionId = found.transactionId, state = found.state, type = found.type, orderNo = found.orderNo,
    devices = found.devices, operationType = found.operationType, totalCount = found.count,
    failCount = #found.devices }
end

local function list_devices(ctx)
  local q = ctx.query
  check_reseller(ctx, q.resellerId)
  local cid = check_customer(ctx, q.customerId, false)
  local list = ctx.state.kdp.devices
  if cid then
    local f = {}
    for _, d in ipairs(list) do
      if d.customerId == cid then f[#f + 1] = d end
    end
    list = f
  end
  local items, num, size, total = ctx:page(list, q)
  return { totalCount = total, pageNum = num, pageSize = size, devices = items }
end

local function customers(ctx)
  local q = ctx.query
  check_reseller(ctx, q.resellerId)
  local items, num, size, total = ctx:page(ctx.state.kdp.customers, q)
  return { totalCount = total, pageNum = num, pageSize = size, customers = items }
end

function M.routes(router)
  local function add(method, path, scope, handler)
    router:add { method = method, path = "^/kcs/v1/rp" .. path, service = "kdp", auth = "both", scope = scope,
      handler = handler }
  end
  add("PUT", "/devices/upload$", "kdp.devices:manage", upload)
  add("PUT", "/devices/delete$", "kdp.devices:manage", delete)
  add("GET", "/devices/status$", "kdp.devices:view", status)
  add("GET", "/devices$", "kdp.devices:view", list_devices)
  add("GET", "/customers/list$", "kdp.customers", customers)
  add("GET", "/customers$", "kdp.customers", customers)
end

return M
