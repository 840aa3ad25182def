--- knox.waiter: waiting for Knox's asynchronous operations (a registry
-- row with `async`): KME profile createAsync, KDP upload/delete
-- transactions, Knox Guard approval (Pending -> Activating -> Active).
--
-- The answer of such a call is returned as usual, with a :wait([opts])
-- method: it polls the row's status method with backoff until the
-- operation is in a terminal state and returns that status entry (and
-- its state). opts: timeout (seconds, default 300), interval (first
-- delay, default 1), max_interval (default 30). Time is the client's
-- clock and every wait its sleep, so specs move time instead of waiting.
-- Past the timeout: kind "timeout", with the last state seen.
--
-- Row: async = { status = <method>, id = <field naming the operation in the
-- answer and in the status call>, pass = { <arguments copied from the
-- call> }, find = "a.b" (where the status answer lists entries; else the
-- answer itself or any list holding an entry with that id) }.
local errors = require "knox.errors"

local M = {}

-- States that are not terminal (any case).
local PENDING = { inprogress = true, in_progress = true, pending = true, processing = true, queued = true,
  running = true, activating = true, accepted = true, started = true, submitted = true }
M.PENDING = PENDING

local function state_of(entry)
  if type(entry) ~= "table" then return nil end
  local s = entry.state or entry.status
  if type(s) == "string" then return s end
  return nil
end

-- The entry for id in a status answer.
local function find_entry(body, key, id, path)
  if type(body) ~= "table" then return nil end
  if path then
    for part in path:gmatch "[^.]+" do
      body = type(body) == "table" and body[part] or nil
    end
  end
  if type(body) ~= "table" then return nil end
  if id == nil or tostring(body[key]) == tostring(id) then
    if body[key] ~= nil or state_of(body) then return body end
  end
  local function search(node, depth)
    if type(node) ~= "table" or depth > 3 then return nil end
    for _, v in pairs(node) do
      if type(v) == "table" then
        if v[key] ~= nil and tostring(v[key]) == tostring(id) then return v end
        local hit = search(v, depth + 1)
        if hit then return hit end
      end
    end
    return nil
  end
  return search(body, 0)
end
M.find_entry = find_entry

--- M.poll(client, fetch, opts) -> final, state. fetch() -> entry or nil
-- (nil: not visible yet, keep polling).
function M.poll(client, fetch, opts)
  opts = opts or {}
  local timeout = opts.timeout or 300
  local delay = opts.interval or 1
  local max_delay = opts.max_interval or 30
  if type(timeout) ~= "number" or timeout < 0 then errors.usage("timeout must be a number of seconds", 3) end
  local started = client.clock()
  local last
  while true do
    local entry = fetch()
    last = state_of(entry)
    if entry ~= nil and last and not PENDING[last:lower()] then return entry, last end
    local waited = client.clock() - started
    if waited + delay > timeout then
      error(errors.new { kind = "timeout", service = opts.service, retryable = true,
        message = ("%s still %s after %.0f s (timeout %.0f s)"):format(opts.what or "the operation",
          last or "not visible", waited, timeout) }, 0)
    end
    client.sleep(delay)
    delay = math.min(delay * 1.5, max_delay)
  end
end

-- A function that waits for operation id of a call of def.
local function waiter_for(svc, def, args, id)
  local a = def.async
  return function(_, wopts)
    if wopts ~= nil and type(wopts) ~= "table" then error("bad argument #1 to 'wait' (table expected)", 2) end
    if id == nil then
      errors.usage(svc.name .. ":" .. def.name .. ": the answer has no " .. a.id .. " to wait for", 2)
    end
    local sargs = { [a.id] = id }
    for _, k in ipairs(a.pass or {}) do sargs[k] = args[k] end
    local o = {}
    for k, v in pairs(wopts or {}) do o[k] = v end
    o.service, o.what = svc.name, ("%s %s %s"):format(def.name, a.id, tostring(id))
    return M.poll(svc.client, function()
      local body = svc[a.status](svc, sargs)
      return find_entry(body, a.id, id, a.find)
    end, o)
  end
end

--- M.handle(svc, def, args, opts, body) -> body with :wait().
function M.handle(svc, def, args, _, body)
  if type(body) ~= "table" then body = { value = body } end
  local id = body[def.async.id]
  if id == nil then id = args[def.async.id] end
  local mt = getmetatable(body)
  local index = { wait = waiter_for(svc, def, args, id) }
  if mt == nil then
    setmetatable(body, { __index = index })
  else
    -- a decoded body's own metatable stays: wait goes in a copy of it
    local copy = {}
    for k, v in pairs(mt) do copy[k] = v end
    copy.__index = index
    setmetatable(body, copy)
  end
  return body
end

--- M.all(svc, def, answers, args) -> a :wait() over every answer (a
-- chunked call: one operation per chunk). Returns the list of finals.
function M.all(svc, def, answers, args)
  return function(_, wopts)
    local finals = {}
    for i, body in ipairs(answers) do
      local id = type(body) == "table" and body[def.async.id] or nil
      finals[i] = waiter_for(svc, def, args, id)(nil, wopts)
    end
    return finals
  end
end

return M
