--- knox.bulk: methods that act on many devices (a registry row with
-- `bulk`). Any number of devices: split at the service's bulk limit, the
-- chunks sent concurrently through client:batch, the outcomes merged into
-- one result in which every input device appears exactly once:
--
--   result.ok        { id, ... }                 Knox took them
--   result.failed    { { id =, error = knox.Error }, ... }
--                                                 Knox refused them (the error
--                                                 carries the per-item code and name)
--   result.unknown   { id, ... }                 sent, outcome not known (a transport
--                                                 failure after sending, a 5xx, an
--                                                 answer that only counts failures);
--                                                 never silently re-sent;
--                                                 result.reasons[id] says why
--   result.duplicates { id, ... }                repeated input ids, sent once
--   result.responses { body, ... }               every chunk's decoded answer
--   result.total, result.chunks
--
-- How a chunk's outcome is read:
--   * a 2xx: the per-item failures the service's registry rule finds
--     (knox.errors.items: Knox Guard resultList, KME's failed/notFound/
--     invalid lists, KDP devices[] codes) are failed; the rest are ok.
--     An answer that only counts failures (Knox Configure failedCount)
--     makes the devices it does not name unknown.
--   * a 4xx naming the devices it rejected (err.items): those are failed.
--     For a row with bulk.partial (Knox applied the others: KDP
--     DEVICE_DUPLICATE, KME v2 unassign, KME delete, Knox Guard Async) the
--     rest are ok; otherwise Knox refused the whole request and the rest
--     are sent again without the rejected ones (at most twice).
--   * a 4xx naming none: every device of the chunk failed with it (the
--     request was refused; nothing was done).
--   * a transport failure that provably came before sending, or a 5xx
--     carrying a Knox code that is not transient (KME RSA_DECRYPTION_FAIL):
--     failed; any other transport failure (timeout, reset after sending)
--     and any other 5xx: unknown.
--
-- `strict = true` raises kind "partial" carrying the result (err.result)
-- when anything failed or is unknown.
local errors = require "knox.errors"
local schema = require "knox.schema"
local service = require "knox.service"

local M = {}

local MAX_RESENDS = 2

-- Splits ids into chunks of at most size.
local function chunks_of(ids, size)
  local out = {}
  for i = 1, #ids, size do
    out[#out + 1] = table.move(ids, i, math.min(i + size - 1, #ids), 1, {})
  end
  return out
end

-- The chunk's ids by exact text and by lower-case text.
local function lookup_of(ids)
  local exact, lower = {}, {}
  for _, id in ipairs(ids) do
    exact[id] = id
    lower[id:lower()] = lower[id:lower()] or id
  end
  return function(x)
    if x == nil then return nil end
    x = tostring(x)
    return exact[x] or lower[x:lower()]
  end
end

local function limit_of(svc, def, opts)
  local n = opts.chunk_size
  if n == nil then
    local lim = svc.client.bulk_limits or {}
    n = lim[svc.name .. "." .. def.name] or lim[svc.name] or def.bulk.limit or 1000
  end
  if math.type(n) ~= "integer" or n < 1 then
    errors.usage("chunk_size must be a positive integer", 4)
  end
  return n
end

-- Whether a failed request surely never reached Knox.
local function not_sent(err)
  return err.kind == "transport" and type(err.cause) == "table" and err.cause.ambiguous == false
end

-- Records the per-item entries of list into acc.failed; returns the set
-- of ids named and whether some entry could not be matched to an id sent.
local function take_items(list, find, acc)
  local named, unmatched = {}, false
  for _, item in ipairs(list) do
    local id = find(item.id)
    if id and not named[id] then
      named[id] = true
      acc.failed[#acc.failed + 1] = { id = id, error = item.error }
    elseif not id then
      unmatched = true
    end
  end
  return named, unmatched
end

-- Settles one chunk's result; returns the ids to send again (or nil).
local function settle(chunk, res, def, acc)
  local find = lookup_of(chunk)
  if not errors.is_error(res) then
    acc.responses[#acc.responses + 1] = res.body
    local list = errors.items(res.body, def._service)
    local named, unmatched = take_items(list, find, acc)
    local counted = false
    for _, item in ipairs(list) do counted = counted or item.id == nil end
    for _, id in ipairs(chunk) do
      if not named[id] then
        if counted or unmatched then
          acc.unknown[#acc.unknown + 1] = id
          acc.reasons[id] = errors.new { kind = "partial", service = def._service,
            message = "the answer counts failures without naming every device; this one's outcome is not known" }
        else
          acc.ok[#acc.ok + 1] = id
        end
      end
    end
    return nil
  end
  local err = res
  if err.kind == "usage" then error(err, 0) end
  local status = err.status or 0
  -- a 5xx that carries a Knox code known not to be transient (KME
  -- RSA_DECRYPTION_FAIL) is Knox's definite answer, not an unknown outcome
  local definite = status >= 500 and err.code ~= nil and err.retryable == false
  if status >= 400 and status < 500 or definite or not_sent(err) then
    local named = {}
    if err.items then named = take_items(err.items, find, acc) end
    local rest = {}
    for _, id in ipairs(chunk) do
      if not named[id] then rest[#rest + 1] = id end
    end
    if next(named) ~= nil then
      if def.bulk.partial then
        for _, id in ipairs(rest) do acc.ok[#acc.ok + 1] = id end
        return nil
      end
      return #rest > 0 and rest or nil
    end
    for _, id in ipairs(rest) do acc.failed[#acc.failed + 1] = { id = id, error = err } end
    return nil
  end
  for _, id in ipairs(chunk) do
    acc.unknown[#acc.unknown + 1] = id
    acc.reasons[id] = err
  end
  return nil
end

local function summary(r)
  local id, e
  if r.failed[1] then id, e = r.failed[1].id, r.failed[1].error
  else id = r.unknown[1]; e = r.reasons[id] end
  return ("%d of %d devices failed, %d unknown (first: %s: %s)"):format(#r.failed, r.total, #r.unknown, id,
    tostring(e and (e.name or e.message)))
end

--- M.run(svc, def, args, opts) -> result (see the module header).
function M.run(svc, def, args, opts)
  local where = svc.name .. ":" .. def.name
  def._service = svc.name
  local arg = def.bulk.arg or "devices"
  -- the whole call is checked once, before anything is sent
  schema.build(def, args, where)
  local ids = schema.build({ "POST", "/", args = { { arg, "devices", wire = "d" } } },
    { [arg] = args[arg] }, where).body.d
  local seen, unique, dups = {}, {}, {}
  for _, id in ipairs(ids) do
    if seen[id] then dups[#dups + 1] = id else seen[id] = true; unique[#unique + 1] = id end
  end
  local size = limit_of(svc, def, opts)
  local acc = { ok = {}, failed = {}, unknown = {}, reasons = {}, duplicates = dups, responses = {},
    total = #unique, chunks = 0 }
  local call_opts = {}
  for k, v in pairs(opts) do
    if k ~= "strict" and k ~= "concurrency" and k ~= "chunk_size" then call_opts[k] = v end
  end
  local pending = chunks_of(unique, size)
  for round = 0, MAX_RESENDS do
    if #pending == 0 then break end
    local requests = {}
    for i, chunk in ipairs(pending) do
      local a = {}
      for k, v in pairs(args) do a[k] = v end
      a[arg] = chunk
      if def.bulk.per_chunk then def.bulk.per_chunk(a, acc.chunks + i, acc.chunks + #pending) end
      requests[i] = { def[1], def[2], service.request_opts(svc, def, a, call_opts) }
    end
    acc.chunks = acc.chunks + #pending
    local results = svc.client:batch(requests, { concurrency = opts.concurrency })
    local again = {}
    for i, chunk in ipairs(pending) do
      local rest = settle(chunk, results[i], def, acc)
      if rest then
        if round == MAX_RESENDS then
          -- still refused after resends: the rest failed with that error
          for _, id in ipairs(rest) do acc.failed[#acc.failed + 1] = { id = id, error = results[i] } end
        else
          again[#again + 1] = rest
        end
      end
    end
    pending = again
  end
  if def.async then
    -- one operation per chunk (KDP: a transaction each): result:wait()
    -- waits for all of them and returns their final statuses
    acc.wait = require("knox.waiter").all(svc, def, acc.responses, args)
  end
  if opts.strict and (#acc.failed > 0 or #acc.unknown > 0) then
    error(errors.new { kind = "partial", service = svc.name, message = where .. ": " .. summary(acc),
      result = acc }, 3)
  end
  return acc
end

return M
