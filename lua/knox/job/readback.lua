--- knox.job.readback: for each operation that has one, how to tell from
-- Knox whether devices whose outcome is in doubt (their chunk was sent,
-- no answer was recorded) were done. One table, one entry per op:
--
--   kme.assign_profile        the device list (changedAfter the chunk was sent, so
--                             only recent changes are paged): took when the device
--                             shows args.profileId
--   kme.unassign_profile(_v2) the same list: took when the device shows no profile
--   kme.delete_devices        the whole device list: took when the device is gone
--   kdp.upload_devices        the chunk's own transaction (device_status with its
--   kdp.delete_devices        transactionId): took when Knox knows the transaction;
--                             the devices it lists as failures failed with their code
--
-- An entry is fn(ctx) -> outcomes, where ctx = { client, args, devices =
-- { [id] = true } (the devices in doubt), chunks = { { tx =, devices = { id... } } },
-- since (the client-clock time the oldest of them was sent) } and outcomes
-- maps a device id to true (it took) or { code =, name = } (Knox refused
-- it). A device not in outcomes did not take: it is sent again. An entry
-- that cannot find out raises; the devices stay in doubt for the next try.
-- Ops without an entry: in-doubt devices become `unknown`, and only
-- `resend_unknown` sends them again.
local M = {}

local PAGE = 1000

-- The identifiers a KME device item answers to.
local function kme_ids(d)
  return d.mei, d.serialNumber, d.id
end

-- Pages KME's device list (since: client-clock seconds, or nil for all of
-- it), calling visit(item, id) for each item naming a device in doubt;
-- stops early when every one was seen (visit returns true for a device
-- it settled).
local function page_kme(ctx, since, visit)
  local left = 0
  for _ in pairs(ctx.devices) do left = left + 1 end
  local changed
  if since then
    -- a duration, measured on the client's clock, so the server's absolute
    -- time does not matter; two minutes of margin
    changed = ("%dm"):format(math.ceil(math.max(ctx.client:now() - since, 0) / 60) + 2)
  end
  local page = 0
  while left > 0 do
    local body = ctx.client.kme:list_devices { pageNum = page, pageSize = PAGE, changedAfter = changed,
      customerId = ctx.args.customerId }
    local list = type(body) == "table" and body.deviceList or {}
    for _, d in ipairs(list) do
      for _, id in ipairs { kme_ids(d) } do
        if ctx.devices[id] then
          if visit(d, id) then left = left - 1 end
          break
        end
      end
    end
    if #list < PAGE then break end
    page = page + 1
  end
end

local function kme_profile(want)
  return function(ctx)
    local out = {}
    page_kme(ctx, ctx.since, function(d, id)
      local pid = d.profileId
      if pid == require("knox.core").null then pid = nil end
      if want(pid, ctx.args) and not out[id] then
        out[id] = true
        return true
      end
    end)
    return out
  end
end

local function kme_delete(ctx)
  local present = {}
  page_kme(ctx, nil, function(_, id)
    present[id] = true
    return true
  end)
  local out = {}
  for id in pairs(ctx.devices) do
    if not present[id] then out[id] = true end
  end
  return out
end

-- KDP: the transaction of each chunk; flat { transactionId, devices } or
-- wrapped { devices = { transactions = [...] } }.
local function kdp_tx(ctx)
  local out = {}
  for _, ch in ipairs(ctx.chunks) do
    if ch.tx then
      local ok, body = pcall(ctx.client.kdp.device_status, ctx.client.kdp, { resellerId = ctx.args.resellerId,
        customerId = ctx.args.customerId, transactionId = ch.tx })
      if not ok then
        local err = body
        if not (type(err) == "table" and err.status == 404) then error(err, 0) end
        body = nil
      end
      local tx
      if type(body) == "table" then
        if body.transactionId == ch.tx then
          tx = body
        elseif type(body.devices) == "table" and type(body.devices.transactions) == "table" then
          for _, t in ipairs(body.devices.transactions) do
            if t.transactionId == ch.tx then tx = t end
          end
        end
      end
      if tx then
        local failed = {}
        for _, f in ipairs(type(tx.devices) == "table" and tx.devices or {}) do
          local id = f.imei or f.mei or f.serialNumber or f.meid or f.deviceId
          if id then failed[tostring(id)] = { code = f.code and tostring(f.code), name = f.message } end
        end
        for _, id in ipairs(ch.devices) do out[id] = failed[id] or true end
      end
    end
  end
  return out
end

M.ops = {
  ["kme.assign_profile"] = kme_profile(function(pid, args) return pid ~= nil and pid == args.profileId end),
  ["kme.unassign_profile"] = kme_profile(function(pid) return pid == nil end),
  ["kme.unassign_profile_v2"] = kme_profile(function(pid) return pid == nil end),
  ["kme.delete_devices"] = kme_delete,
  ["kdp.upload_devices"] = kdp_tx,
  ["kdp.delete_devices"] = kdp_tx,
}

--- M.for_op(op) -> the read-back function, or nil.
function M.for_op(op)
  return M.ops[op]
end

return M
