--- knox.sim Knox Deployment Program Gen2 (api-notes §4.4, api-notes-2
-- §1.3): devices upload / delete / status / list, the reseller's
-- customers and its KME profile aliases. Authentication: older docs say
-- x-knox-apitoken, the Sep 2025 docs say OAuth 2.0; the simulator accepts
-- both (kdp.* scopes for OAuth). The global host's /kcs/v1/rp and the
-- regional hosts' are the same paths here (the host is the client's
-- business). Errors: { errorId, code (8 digits), message, data }.
--
-- Uploads and deletes answer with a transaction at once; GET
-- devices/status shows it "InProgress" the first time it is polled and
-- "Complete" after that, with per-device failures inside the 200. Both
-- documented status shapes are served (the simulator's config kdp_status,
-- --kdp-status or POST /__sim/config, picks one): "flat" [KDP-TS]
-- { transactionId, state, type, orderNo, devices: [failures], operationType }
-- and "wrapped" [KDP-MIG] { devices: { totalCount, totalPage, pageNum,
-- transactions: [{ transactionId, state, type, orderNo, operationType,
-- devices? }] } } whose inner devices lists failures only and is absent
-- when none failed. A failure is { imei | serialNumber | meid, code,
-- message, data } (the id key follows the upload's type: imei is the
-- documented one, the others the simulator's choice).
--
-- Rules: a device already uploaded (to any customer) fails with 40000005
-- DEVICE_DUPLICATE while the others go in (partial success, [KDP-RN2511]);
-- a malformed one with 40000004 DEVICE_INVALID; a transactionId used
-- before -> 400 40000014 TRANSACTION_ID_DUPLICATE; more devices than the
-- bulk limit (default 10,000, UNCONFIRMED) -> 400 40000003
-- DEVICE_COUNT_EXCEEDED. Device items are { id, mei, meid, serialNumber,
-- model, state, uploadId, customerName, customerId, createTime } in
-- { code: "2000000", message: "SUCCESS", pageNum, pageSize, totalCount,
-- totalPages, size, devices } ([KDP-MIG]); the values of state
-- ("Uploaded") and meid (an IMEI's first 14 digits) are the simulator's
-- choice, as is the upload answer { transactionId, state, totalCount }.
-- Devices uploaded to the account's own customer id also appear in its KME
-- device list (as a Pending upload there), as a reseller upload does, and
-- a delete removes them from it.
local json = require "knox.sim.json"
local codec = require "knox.sim.codec"
local fleet_mod = require "knox.sim.fleet"
local absent = require("knox.sim.router").absent

local M = {}

M.MAX_DEVICES = 10000
local ALNUM64 = "^[%w%-_]+$"

local SHAPE = json.shape({ "id", "mei", "meid", "serialNumber", "model", "state", "uploadId", "customerName",
  "customerId", "createTime" }, function(d)
    return string.format('{"createTime":%d,"customerId":"%s","customerName":%s,"id":"%s","mei":"%s","meid":"%s",'
      .. '"model":"%s","serialNumber":"%s","state":"Uploaded","uploadId":"%s"}', d.createTime, d.customerId,
      json.quote(d.customerName), d.id, d.mei, d.meid, d.model, d.serialNumber, d.uploadId)
  end)

--- The reseller's device fleet (state.lua calls this): the account's own
-- tenant's generated devices, as this reseller uploaded them.
function M.build(st, t)
  local name = st.customer_name
  return fleet_mod.new(t.n, {
    make = function(i)
      local imei = t:imei(i)
      return setmetatable({ id = t:hex_id("kdp", i), mei = imei, meid = imei:sub(1, 14),
        serialNumber = t:serial(i), model = t:model(i), state = "Uploaded",
        uploadId = t:hex_id("upload", (i - 1) // 100 + 1), customerName = name, customerId = t.customer_id,
        createTime = t:time(i) }, SHAPE.fresh)
    end,
    decode = function(id) return t:decode(id, "kdp") end,
    keys = function(d) return { d.mei, d.serialNumber, d.meid ~= d.mei and d.meid or nil, d.id } end,
  })
end

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
  local max = ctx:bulk_limit("kdp") or M.MAX_DEVICES
  local list = ctx:list(b.devices, "devices", { required = true, max = max,
    too_many = { 400, 40000003, "DEVICE_COUNT_EXCEEDED" } })
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

local ID_KEY = { IMEI = "imei", SERIAL = "serialNumber", MEID = "meid" }

local function device_error(kind, id, code, name, data)
  return { [ID_KEY[kind]] = id, code = code, message = name, data = data }
end

local function new_transaction(ctx, b, op)
  local tid = ctx:str(b.transactionId, "transactionId", { required = true, max = 64, pattern = ALNUM64 })
  for _, tx in ipairs(ctx.state.kdp.transactions) do
    if tx.transactionId == tid then
      ctx:fail(400, 40000014, "TRANSACTION_ID_DUPLICATE", "transactionId " .. tid .. " has already been used")
    end
  end
  local order = ctx:str(b.orderNo, "orderNo", { max = 64 })
  return { transactionId = tid, state = "InProgress", type = op == "UPLOAD" and "Upload" or "Delete",
    operationType = op, orderNo = order, devices = json.array(), polls = 0, count = 0 }
end

local function customer_name(st, cid)
  local c = known_customer(st, cid)
  return c and c.customerName
end

local function upload(ctx)
  local b = ctx:body()
  check_reseller(ctx, b.resellerId)
  local cid = check_customer(ctx, b.customerId, true)
  local ids, kind = device_ids(ctx, b)
  local tx = new_transaction(ctx, b, "UPLOAD")
  local st, now = ctx.state, ctx:now_ms()
  local fleet = st.kdp.fleet
  local upload_id = st:new_id()
  local own = cid == st.customer_id and st:tenant(cid)
  local added = 0
  for _, id in ipairs(ids) do
    if not valid_device(id, kind) then
      tx.devices[#tx.devices + 1] = device_error(kind, id, 40000004, "DEVICE_INVALID", "Not a valid " .. kind)
    elseif fleet:find(id) then
      tx.devices[#tx.devices + 1] = device_error(kind, id, 40000005, "DEVICE_DUPLICATE",
        "The device has already been uploaded")
    else
      fleet:add { id = st:new_id(), mei = kind == "IMEI" and id or nil, meid = kind == "MEID" and id
        or (kind == "IMEI" and id:sub(1, 14)) or nil, serialNumber = kind == "SERIAL" and id or nil,
        model = json.null, state = "Uploaded", uploadId = upload_id, customerName = customer_name(st, cid),
        customerId = cid, createTime = now }
      added = added + 1
      if own then require("knox.sim.kme").add_upload(st, own, id, kind, upload_id, tx.orderNo, now) end
    end
  end
  if own and added > 0 then
    require("knox.sim.kme").record_upload(own, { uploadId = upload_id, resellerId = st.reseller_id,
      resellerName = st.reseller_name, deviceCount = added, status = "Pending", uploadTime = now })
  end
  tx.count, tx.customerId = #ids, cid
  st.kdp.transactions[#st.kdp.transactions + 1] = tx
  return { transactionId = tx.transactionId, state = tx.state, totalCount = #ids }
end

local function delete(ctx)
  local b = ctx:body()
  check_reseller(ctx, b.resellerId)
  local cid = check_customer(ctx, b.customerId, true)
  local ids, kind = device_ids(ctx, b)
  local tx = new_transaction(ctx, b, "DELETE")
  local st = ctx.state
  local fleet = st.kdp.fleet
  for _, id in ipairs(ids) do
    local i = fleet:find(id)
    local d = i and fleet:get(i)
    if d and d.customerId == cid then
      fleet:delete(i)
      if cid == st.customer_id then
        local kme = st:tenant(cid).kme.fleet
        local k = kme:find(id)
        if k then kme:delete(k) end
      end
    else
      tx.devices[#tx.devices + 1] = device_error(kind, id, 40000044, "RESELLER_CUSTOMER_DEVICE_NOT_FOUND",
        "The device was not uploaded by this reseller to this customer")
    end
  end
  tx.count, tx.customerId = #ids, cid
  st.kdp.transactions[#st.kdp.transactions + 1] = tx
  return { transactionId = tx.transactionId, state = tx.state, totalCount = #ids }
end

-- A transaction as the status call shows it (polling advances it).
local function polled(tx, wrapped)
  tx.polls = tx.polls + 1
  if tx.polls > 1 then tx.state = "Complete" end
  local out = { transactionId = tx.transactionId, state = tx.state, type = tx.type, orderNo = tx.orderNo,
    operationType = tx.operationType }
  if not wrapped or #tx.devices > 0 then out.devices = tx.devices end
  return out
end

local function status(ctx)
  local q = ctx.query
  check_reseller(ctx, q.resellerId)
  local cid = check_customer(ctx, q.customerId, false)
  local matches = {}
  for _, tx in ipairs(ctx.state.kdp.transactions) do
    if (not q.transactionId or q.transactionId == "" or tx.transactionId == q.transactionId)
      and (not cid or tx.customerId == cid) then
      matches[#matches + 1] = tx
    end
  end
  if ctx.sim.config.kdp_status == "wrapped" then
    -- newest first, paged (pageNum/pageSize: the simulator's choice)
    local rev = {}
    for k = #matches, 1, -1 do rev[#rev + 1] = matches[k] end
    local num, size = ctx:paging(q, 100, 1000)
    local out = json.array()
    for k = num * size + 1, math.min(#rev, (num + 1) * size) do out[#out + 1] = polled(rev[k], true) end
    return { devices = { totalCount = #rev, totalPage = (#rev + size - 1) // size, pageNum = num,
      transactions = out } }
  end
  local found = matches[#matches]
  if not found then ctx:fail(404, 40400000, "RESOURCE_NOT_FOUND", "No such transaction") end
  return polled(found, false)
end

local function list_devices(ctx)
  local q = ctx.query
  check_reseller(ctx, q.resellerId)
  local cid = check_customer(ctx, q.customerId, false)
  local fleet = ctx.state.kdp.fleet
  local items, num, size, total
  if cid then
    -- generated devices are all the account's own customer's
    local own = cid == ctx.state.customer_id
    num, size = ctx:paging(q, 100, 1000)
    local found
    found, total = fleet:filter(function() return own end, function(d) return d.customerId == cid end,
      num * size + 1, size)
    items = json.array(found)
  else
    items, num, size, total = ctx:fleet_page(fleet, q)
  end
  return { code = "2000000", message = "SUCCESS", totalCount = total, pageNum = num, pageSize = size,
    totalPages = (total + size - 1) // size, size = #items, devices = items }
end

local function customers(ctx)
  local q = ctx.query
  check_reseller(ctx, q.resellerId)
  local items, num, size, total = ctx:page(ctx.state.kdp.customers, q)
  return { totalCount = total, pageNum = num, pageSize = size, customers = items }
end

-- GET profilealias/kme: resellerId and customerId as headers (20.07); the
-- answer { profileAliases: [{ profileAliasId, profileAlias, profileId }] }
-- is the simulator's choice.
local function profile_aliases(ctx)
  local h = ctx.req.headers
  check_reseller(ctx, h.resellerid)
  local cid = check_customer(ctx, h.customerid, true)
  local out = json.array()
  if cid == ctx.state.customer_id then
    local aliases = {}
    for _, a in pairs(ctx.state:tenant(cid).kme.aliases) do
      if a.resellerId == ctx.state.reseller_id then aliases[#aliases + 1] = a end
    end
    table.sort(aliases, function(x, y) return x.profileAlias < y.profileAlias end)
    for _, a in ipairs(aliases) do
      out[#out + 1] = { profileAliasId = a.profileAliasId, profileAlias = a.profileAlias, profileId = a.profileId }
    end
  end
  return { profileAliases = out }
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
  add("GET", "/profilealias/kme$", "kdp.profilealias", profile_aliases)
end

return M
