--- knox.client.batch: client:batch, many requests at once over curl
-- multi. Part of knox.client (mixed into the Client class): each request
-- is prepared, authorized and settled by the same steps as
-- client:request (Client:_prepare, Client:_settle); only the rounds are
-- batch's own.
local errors = require "knox.errors"
local governor = require "knox.governor" -- [governor]

local M = {}

-- Batch: the transport item of one pending request (its own copy of the
-- headers, with the auth header), or false with the auth error in
-- results. auth_values caches one authorize() per provider per round.
function M:_batch_item(req, i, attempt, ctx, auth_values, results)
  local headers = {}
  for k, v in pairs(req.headers) do headers[k] = v end
  local p = req.provider
  if p then
    if not auth_values[p] then
      local ok, name, value = pcall(p.authorize, p, ctx)
      auth_values[p] = ok and { name, value } or { err = name }
    end
    local a = auth_values[p]
    if a.err then
      if not errors.is_error(a.err) then error(a.err, 0) end
      results[i] = a.err
      return false
    end
    headers[a[1]] = a[2]
    req.auth_header = a[1]
  end
  if self.hooks.request then self:_emit_request(req, req.url, headers, attempt) end
  return { method = req.method, url = req.url, headers = headers, body = req.body, timeout = req.timeout,
    replayable = req.idempotent or nil }
end

--- client:batch(requests [, opts]) -> results
-- Runs requests ({method, path, opts} each) at once over curl multi.
-- Results come in input order: { body =, response = } for a success, the
-- knox.Error for a failure (not raised), so one failure loses nothing else.
-- One token renewal serves the whole batch; retryable failures are retried
-- in further rounds under the same policy and budget.
function M:batch(requests, opts)
  if type(requests) ~= "table" then error("bad argument #1 to 'batch' (table expected)", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("bad argument #2 to 'batch' (table expected)", 2) end
  opts = opts or {}
  local count = requests.n or #requests
  if math.type(count) ~= "integer" or count < 0 then
    error("bad argument #1 to 'batch' (field 'n' must be a non-negative integer)", 2)
  end
  for i = 1, count do
    -- a hole would end ipairs early and leave the rest unsent, unnoticed
    if requests[i] == nil then error("bad argument #1 to 'batch' (item " .. i .. " is nil)", 2) end
  end
  local concurrency = opts.concurrency or self.concurrency
  local reqs, results, state, pending = {}, {}, {}, {}
  local started = self.clock()
  for i, r in ipairs(requests) do
    if type(r) ~= "table" then error("bad argument #1 to 'batch' (item " .. i .. " is not a table)", 2) end
    local req = self:_prepare(r[1] or r.method, r[2] or r.path, r[3] or r.opts)
    req.url = self:_url(req.route, req.path)
    reqs[i], pending[i] = req, i
    state[i] = { attempt = 0, renewed = false, spent = 0, started = started }
  end
  local ctx = self:_auth_ctx()

  while #pending > 0 do
    local auth_values, sendable, map = {}, {}, {}
    -- [governor] a round sends only what the rate governor admits now (at
    -- least one, after waiting); the rest wait for a later round, untried
    local keys = {}
    for n, i in ipairs(pending) do keys[n] = governor.key_of(reqs[i]) end
    local admitted = self.governor:admit(keys, #pending)
    local deferred = table.move(pending, admitted + 1, #pending, 1, {})
    pending = table.move(pending, 1, admitted, 1, {})
    for _, i in ipairs(pending) do
      state[i].attempt = state[i].attempt + 1
      local item = self:_batch_item(reqs[i], i, state[i].attempt, ctx, auth_values, results)
      if item then
        sendable[#sendable + 1] = item
        map[#sendable] = i
      end
    end
    local out = #sendable > 0 and self.session:batch(sendable, { concurrency = concurrency }) or {}

    local next_pending, renew, max_delay = {}, {}, 0
    for m, res in ipairs(out) do
      local i = map[m]
      local req = reqs[i]
      local step, a, b
      if errors.is_error(res) then self.governor:after(req, false) -- [governor]
      else self.governor:after(req, true, res.status, res.headers) end
      if errors.is_error(res) then
        step, a, b = self:_settle(req, req.url, state[i], false, res)
      else
        step, a, b = self:_settle(req, req.url, state[i], true, res.status, res.headers, res.body, res.info)
      end
      if step == "ok" then
        results[i] = { body = a, response = b }
      elseif step == "fail" then
        results[i] = a
      else
        if step == "renew" then renew[req.provider] = a else max_delay = math.max(max_delay, b) end
        next_pending[#next_pending + 1] = i
      end
    end
    for p, err in pairs(renew) do self:_invalidate(p, err) end
    if max_delay > 0 then self.sleep(max_delay) end
    for _, i in ipairs(deferred) do next_pending[#next_pending + 1] = i end -- [governor]
    table.sort(next_pending)
    pending = next_pending
  end
  return results
end

return M
