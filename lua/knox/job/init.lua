--- knox.job: resumable fleet jobs -- one bulk operation over any number of
-- devices, recorded in a crash-safe SQLite ledger (knox.job.ledger).
--
--   local job = client:job { op = "kme.assign_profile", args = { profileId = "p1" },
--     devices = "fleet.csv", ledger = "assign.db", concurrency = 8, max_rate = 10,
--     on_progress = function(p) ... end }
--   local summary = job:run()          -- or job:resume { resend_unknown = true }
--   job:status()                       -- { total, pending, sent, ok, failed, unknown, ... }
--   for row in job:report() do ... end -- { device, state, code, name }, one per device
--   knox.job.open("assign.db")         -- status and report without a client (no network)
--
-- op names a bulk method (a registry row with `bulk`) as service.method;
-- args are its arguments without the devices. devices: a list, an
-- iterator or a CSV file (knox.job.source); read a line at a time into
-- the ledger, so memory stays flat in the number of devices. A job whose
-- ledger already exists continues it (run and resume are the same
-- walk): op and args must be the recorded ones, and a device list given
-- again must hash to the recorded one, or kind "usage" is raised.
--
-- The walk:
--   1. load: every device into the ledger (pending), 5,000 per commit; a
--      load cut short is finished from the recorded CSV path (a list, an
--      iterator or stdin must be given again).
--   2. settle what is in doubt: devices marked sent with no outcome (a
--      crash, a reset after sending) are checked with the op's read-back
--      (knox.job.readback): those that took are ok (or failed, as Knox
--      says), the others pending again; ops without a read-back mark them
--      unknown. resend_unknown = true makes unknown devices pending first.
--   3. rounds: up to `concurrency` chunks of the method's bulk limit from
--      the pending devices in input order; all of them marked sent in one
--      committed transaction BEFORE the request goes out; then one bulk
--      call (client:batch underneath: concurrent, paced by the client's
--      rate governor); then each chunk's outcome committed in its own
--      transaction: ok; failed with Knox's code and name; in doubt ->
--      step 2's read-back at once. Answers that mean "not done, try
--      later" (429, 503, a transport failure before sending) put the
--      devices back to pending; an auth refusal does too and stops the job
--      (kind "auth" raised); ten rounds in a row with no progress stop it
--      with the last such error. A stopped job is resumed by running it again.
--
-- Never sent twice: a device is sent only from pending; ok, failed and
-- unknown are terminal (unknown until resend_unknown says otherwise).
local errors = require "knox.errors"
local ledger_mod = require "knox.job.ledger"
local source = require "knox.job.source"
local readback = require "knox.job.readback"
local core = require "knox.core"

local M = {}

local L = ledger_mod
local LOAD_BATCH = 5000
local MAX_STALLED = 10

local Job = {}
Job.__index = Job

-- Canonical JSON of args (sorted keys), so equal arguments compare equal.
local function canonical(v)
  local t = type(v)
  if t == "table" then
    if v == core.null then return "null" end
    local n = #v
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    if n > 0 and #keys == n then
      local out = {}
      for i = 1, n do out[i] = canonical(v[i]) end
      return "[" .. table.concat(out, ",") .. "]"
    end
    for _, k in ipairs(keys) do
      if type(k) ~= "string" then errors.usage("job args must be a table with string keys", 5) end
    end
    table.sort(keys)
    local out = {}
    for i, k in ipairs(keys) do out[i] = core.json.encode(k) .. ":" .. canonical(v[k]) end
    return "{" .. table.concat(out, ",") .. "}"
  elseif t == "string" or t == "number" or t == "boolean" then
    return core.json.encode(v)
  end
  errors.usage("job args must be JSON values (got a " .. t .. ")", 5)
end
M.canonical = canonical

-- The service object and registry row of an op ("kme.assign_profile").
local function resolve(client, op)
  if type(op) ~= "string" then errors.usage("op must name a bulk method, e.g. \"kme.assign_profile\"", 4) end
  local sname, mname = op:match "^([%w_]+)%.([%w_]+)$"
  local svc = sname and client and client[sname]
  local def = svc and type(svc.spec) == "table" and svc.spec.endpoints[mname]
  if client and not (def and def.bulk) then
    local names = {}
    for _, s in ipairs(require("knox.services").load().names) do
      local spec = require("knox.services").get(s)
      for name, d in pairs(spec.endpoints or {}) do
        if d.bulk then names[#names + 1] = s .. "." .. name end
      end
    end
    table.sort(names)
    errors.usage(("%s is not a bulk method; one of: %s"):format(op, table.concat(names, ", ")), 4)
  end
  return svc, def, mname
end

local function random_tag()
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(6)
  if f then f:close() end
  if not bytes or #bytes < 6 then
    return ("%012x"):format(math.random(0, 0xffffffffffff))
  end
  return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local OPTS = { "op", "args", "devices", "ledger", "concurrency", "max_rate", "on_progress", "chunk_size",
  "resend_unknown" }
local OPT_SET = {}
for _, k in ipairs(OPTS) do OPT_SET[k] = true end

--- M.new(client, opts) -> job (client:job calls this). See the header.
function M.new(client, opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'job' (table expected)", 3) end
  for k in pairs(opts) do
    if not OPT_SET[k] then require("knox.schema").unknown("option", k, OPTS, "client:job", 3) end
  end
  if opts.concurrency ~= nil and (math.type(opts.concurrency) ~= "integer" or opts.concurrency < 1
      or opts.concurrency > 256) then
    errors.usage("concurrency must be an integer from 1 to 256", 3)
  end
  if opts.on_progress ~= nil and type(opts.on_progress) ~= "function" then
    errors.usage("on_progress must be a function", 3)
  end
  local r = opts.max_rate
  if r ~= nil and (type(r) ~= "number" or r ~= r or r <= 0) then
    errors.usage("max_rate must be a positive number of requests per second", 3)
  end
  local led = L.open(opts.ledger)
  local self = setmetatable({ client = client, opts = opts, ledger = led, concurrency = opts.concurrency or 8 },
    Job)
  local row = led:job()
  if row then
    self.row = row
    if opts.op ~= nil and opts.op ~= row.op then
      errors.usage(("the ledger %s records a %s job, not %s: use another ledger"):format(opts.ledger, row.op,
        tostring(opts.op)), 3)
    end
    if opts.args ~= nil and canonical(opts.args) ~= row.args then
      errors.usage(("the ledger %s records this job with other arguments (%s): use another ledger")
        :format(opts.ledger, row.args), 3)
    end
    self.args = core.json.decode(row.args)
    self.op = row.op
  else
    if opts.op == nil then errors.usage("no job in " .. opts.ledger .. ": give op, args and devices", 3) end
    if opts.devices == nil then errors.usage("a new job needs devices", 3) end
    self.op, self.args = opts.op, opts.args or {}
    canonical(self.args)
  end
  self.svc, self.def, self.method = resolve(client, self.op)
  local arg = self.def.bulk.arg or "devices"
  if self.args[arg] ~= nil then errors.usage(("args must not hold %s: give them as devices"):format(arg), 3) end
  self.arg = arg
  if not row then
    -- the arguments are checked once, with a stand-in device, before the
    -- job is recorded: a mistake is told now, not after the first chunk
    local probe = {}
    for k, v in pairs(self.args) do probe[k] = v end
    probe[arg] = { "0" }
    require("knox.schema").build(self.def, probe, self.op)
    local lim = client.bulk_limits or {}
    local size = opts.chunk_size or lim[self.op] or lim[self.svc.name .. "." .. self.method]
      or lim[self.svc.name] or self.def.bulk.limit or 1000
    if math.type(size) ~= "integer" or size < 1 then errors.usage("chunk_size must be a positive integer", 3) end
    local _, src, close = source.open(opts.devices)
    close()
    local now = client:now()
    led:exec(("INSERT INTO job (id, version, op, args, source, chunk_size, tag, created, updated) "
      .. "VALUES (1, %d, %s, %s, %s, %d, %s, %s, %s)"):format(L.VERSION, led:q(self.op), led:q(canonical(self.args)),
      led:q(src), size, led:q(random_tag()), led:q(now), led:q(now)))
    self.row = led:job()
  end
  self.size = math.tointeger(self.row.chunk_size)
  return self
end

--- M.open(path) -> a job for status and report only (no client, no network).
function M.open(path)
  local led = L.open(path, { readonly = true })
  local row = led:job()
  if not row then errors.usage(path .. " holds no job", 2) end
  return setmetatable({ ledger = led, row = row, op = row.op, args = core.json.decode(row.args), readonly = true },
    Job)
end

---------------------------------------------------------------------------
-- Loading

-- Streams the device list: into the ledger (store) or only through the hash.
function Job:_load(devices, store)
  local led = self.ledger
  local nxt, _, close = source.open(devices)
  local h, n, invalid = nil, 0, 0
  local batch, values = 0, {}
  -- rows go in as multi-row INSERTs of up to 500 (one SQL parse each) and
  -- LOAD_BATCH rows per committed transaction
  local function insert()
    if #values > 0 then
      led:exec("INSERT OR IGNORE INTO devices (device, state, name) VALUES " .. table.concat(values, ","))
      values = {}
    end
  end
  local function flush()
    insert()
    if batch > 0 then led:exec "COMMIT"; batch = 0 end
  end
  local ok, e = pcall(function()
    for id in nxt do
      if type(id) ~= "string" then id = tostring(id) end
      n = n + 1
      h = source.hash_add(h, id)
      if store then
        if batch == 0 then led:exec "BEGIN IMMEDIATE" end
        if source.valid(id) then
          values[#values + 1] = "(" .. led:q(id) .. ",0,NULL)"
        else
          invalid = invalid + 1
          values[#values + 1] = "(" .. led:q(id) .. "," .. L.FAILED .. ",'INVALID_DEVICE_ID')"
        end
        if #values >= 500 then insert() end
        batch = batch + 1
        if batch >= LOAD_BATCH then flush() end
      end
    end
  end)
  close()
  if not ok then
    values = {}
    if batch > 0 then led.conn:execute "ROLLBACK" end
    error(e, 0)
  end
  flush()
  return source.hash_text(h, n), n, invalid
end

function Job:_ensure_loaded()
  local row, led = self.row, self.ledger
  local devices = self.opts.devices
  if math.tointeger(row.loaded) == 1 then
    if devices ~= nil then
      local hash = self:_load(devices, false)
      if hash ~= row.devices_hash then
        errors.usage(("the device list differs from the one this job recorded (%s, now %s): use another ledger")
          :format(row.devices_hash, hash), 3)
      end
    end
    return
  end
  if devices == nil then
    devices = row.source
    if devices == nil then
      errors.usage("the device list was not fully recorded before the job stopped and cannot be read again "
        .. "(it was not a file): give the same devices again", 3)
    end
  end
  local hash, n, invalid = self:_load(devices, true)
  local stored = led:row "SELECT count(*) AS n FROM devices"
  led:exec(("UPDATE job SET loaded = 1, devices_hash = %s, total = %d, duplicates = %d, invalid = %d, updated = %s "
    .. "WHERE id = 1"):format(led:q(hash), math.tointeger(stored.n), n - math.tointeger(stored.n), invalid,
    led:q(self.client:now())))
  self.row = led:job()
end

---------------------------------------------------------------------------
-- Outcomes

-- Whether a failed device's error means "not done, send it later".
local function requeue_error(err)
  if type(err) ~= "table" then return false end
  if err.status == 429 or err.status == 503 then return true end
  if err.kind == "auth" then return true end
  return err.kind == "transport" and type(err.cause) == "table" and err.cause.ambiguous == false
end

local function code_name(err)
  if type(err) ~= "table" then return nil, tostring(err) end
  local code = err.code ~= nil and tostring(err.code) or (err.status and tostring(err.status)) or nil
  local name = err.name or (type(err.cause) == "table" and err.cause.name) or err.kind
  return code, name
end

-- Records outcomes (one transaction): map seq -> { state, code, name }.
function Job:_record(updates, chunk_ids)
  local led = self.ledger
  led:transaction(function()
    for seq, u in pairs(updates) do
      led:exec(("UPDATE devices SET state = %d, code = %s, name = %s WHERE seq = %d"):format(u[1], led:q(u[2]),
        led:q(u[3]), seq))
    end
    for _, id in ipairs(chunk_ids or {}) do
      led:exec(("UPDATE chunks SET state = 'done', done_at = %s WHERE id = %d"):format(led:q(self.client:now()), id))
    end
  end)
end

-- Settles devices in doubt: list of { seq =, device =, chunk = }, chunks
-- = { [id] = { tx =, sent_at = } }. With a read-back: took -> ok (or
-- failed), the rest pending; without: unknown. Returns counts.
function Job:_settle_doubt(list, chunks)
  if #list == 0 then return end
  local fn = readback.for_op(self.op)
  local updates = {}
  if not fn then
    for _, d in ipairs(list) do updates[d.seq] = { L.UNKNOWN } end
  else
    local set, by_chunk, since = {}, {}, math.huge
    for _, d in ipairs(list) do
      set[d.device] = true
      local c = by_chunk[d.chunk]
      if not c then
        local info = chunks[d.chunk] or {}
        c = { tx = info.tx, devices = {} }
        by_chunk[d.chunk] = c
        since = math.min(since, info.sent_at or self.row.created)
      end
      c.devices[#c.devices + 1] = d.device
    end
    local clist = {}
    for _, c in pairs(by_chunk) do clist[#clist + 1] = c end
    local outcomes = fn { client = self.client, args = self.args, devices = set, chunks = clist, since = since }
    for _, d in ipairs(list) do
      local o = outcomes[d.device]
      if o == true then
        updates[d.seq] = { L.OK }
      elseif type(o) == "table" then
        updates[d.seq] = { L.FAILED, o.code, o.name }
      else
        updates[d.seq] = { L.PENDING }
      end
    end
  end
  local ids = {}
  for id in pairs(chunks) do ids[#ids + 1] = id end
  self:_record(updates, ids)
end

-- Step 2: everything marked sent without an outcome.
function Job:_recover()
  local led = self.ledger
  local list = {}
  for r in led:each("SELECT seq, device, chunk FROM devices WHERE state = " .. L.SENT) do
    list[#list + 1] = { seq = math.tointeger(r.seq), device = r.device, chunk = math.tointeger(r.chunk) }
  end
  local chunks = {}
  for _, r in ipairs(led:rows "SELECT id, tx, sent_at FROM chunks WHERE state = 'sent'") do
    chunks[math.tointeger(r.id)] = { tx = r.tx, sent_at = tonumber(r.sent_at) }
  end
  self.recovered = #list
  self:_settle_doubt(list, chunks)
end

---------------------------------------------------------------------------
-- Rounds

-- The next pending devices after seq `after`: list of { seq, device }.
function Job:_next_pending(after, limit)
  local out = {}
  for r in self.ledger:each(("SELECT seq, device FROM devices WHERE state = %d AND seq > %d ORDER BY seq LIMIT %d")
      :format(L.PENDING, after, limit)) do
    out[#out + 1] = { seq = math.tointeger(r.seq), device = r.device }
  end
  return out
end

-- Marks a round's chunks sent (one committed transaction): chunks[i] =
-- { first =, last =, devices = {...}, tx = }; sets chunks[i].id.
function Job:_mark_sent(chunks)
  local led = self.ledger
  local now = self.client:now()
  led:transaction(function()
    for _, c in ipairs(chunks) do
      led:exec(("INSERT INTO chunks (first, last, size, state, sent_at, tx) VALUES (%d, %d, %d, 'sent', %s, %s)")
        :format(c.first, c.last, #c.devices, led:q(now), led:q(c.tx)))
      c.id, c.sent_at = math.tointeger(led:row("SELECT last_insert_rowid() AS id").id), now
      led:exec(("UPDATE devices SET state = %d, chunk = %d WHERE seq BETWEEN %d AND %d AND state = %d")
        :format(L.SENT, c.id, c.first, c.last, L.PENDING))
    end
  end)
end

function Job:_call(chunks)
  local a = {}
  for k, v in pairs(self.args) do a[k] = v end
  local ids = {}
  for _, c in ipairs(chunks) do
    for _, d in ipairs(c.devices) do ids[#ids + 1] = d.device end
  end
  a[self.arg] = ids
  if self.def.bulk.per_chunk then a.transactionId = chunks.tx_base end
  local fn = self.svc[self.method]
  return fn(self.svc, a, { chunk_size = self.size, concurrency = self.concurrency })
end

-- One round: returns the number of devices that reached a terminal state
-- or nil when nothing was pending after `after`; and the last seq used.
function Job:_round(after)
  local pend = self:_next_pending(after, self.size * self.concurrency)
  if #pend == 0 then return nil end
  local chunks = {}
  for i = 1, #pend, self.size do
    local c = { devices = table.move(pend, i, math.min(i + self.size - 1, #pend), 1, {}) }
    c.first, c.last = c.devices[1].seq, c.devices[#c.devices].seq
    chunks[#chunks + 1] = c
  end
  if self.def.bulk.per_chunk then
    -- KDP: each chunk its own transaction, named so a read-back can find it
    local n = (math.tointeger(self.ledger:row("SELECT coalesce(max(id), 0) AS n FROM chunks").n) or 0) + 1
    chunks.tx_base = ("kj%sr%d"):format(self.row.tag, n)
    for i, c in ipairs(chunks) do c.tx = #chunks > 1 and (chunks.tx_base .. "c" .. i) or chunks.tx_base end
  end
  self._before = self:_range_counts(pend[1].seq, pend[#pend].seq)
  self:_mark_sent(chunks)
  local ok, res = pcall(self._call, self, chunks)
  if not ok then
    local err = res
    if errors.is_error(err) and err.kind == "usage" then
      -- refused before anything was sent: back to pending
      local updates = {}
      for _, c in ipairs(chunks) do for _, d in ipairs(c.devices) do updates[d.seq] = { L.PENDING } end end
      local ids = {}
      for _, c in ipairs(chunks) do ids[#ids + 1] = c.id end
      self:_record(updates, ids)
    end
    error(err, 0)
  end
  return self:_outcomes(chunks, res), pend[#pend].seq, pend[1].seq
end

-- Counts by state of the devices with seq in [first, last].
function Job:_range_counts(first, last)
  local c = { pending = 0, sent = 0, ok = 0, failed = 0, unknown = 0 }
  for _, r in ipairs(self.ledger:rows(("SELECT state, count(*) AS n FROM devices WHERE seq BETWEEN %d AND %d "
      .. "GROUP BY state"):format(first, last))) do
    c[L.STATE_NAMES[math.tointeger(r.state)]] = math.tointeger(r.n)
  end
  return c
end

-- Keeps self.counts current after a round over [first, last] without
-- counting the whole ledger (the round's devices were pending before).
function Job:_recount(first, last)
  local now, before = self:_range_counts(first, last), self._before
  for k, v in pairs(now) do self.counts[k] = self.counts[k] + v - before[k] end
end

-- Commits each chunk's outcome from a bulk result; returns how many
-- devices became terminal.
function Job:_outcomes(chunks, res)
  local seq_of, chunk_of = {}, {}
  for ci, c in ipairs(chunks) do
    for _, d in ipairs(c.devices) do seq_of[d.device], chunk_of[d.device] = d.seq, ci end
  end
  local per = {}
  for ci in ipairs(chunks) do per[ci] = { updates = {}, doubt = {} } end
  for _, id in ipairs(res.ok) do
    if seq_of[id] then per[chunk_of[id]].updates[seq_of[id]] = { L.OK } end
  end
  local stop
  for _, f in ipairs(res.failed) do
    local id = f.id
    if seq_of[id] then
      local p = per[chunk_of[id]]
      if requeue_error(f.error) then
        p.updates[seq_of[id]] = { L.PENDING }
        self.last_requeue = f.error
        if f.error.kind == "auth" then stop = f.error end
      else
        p.updates[seq_of[id]] = { L.FAILED, code_name(f.error) }
      end
    end
  end
  for _, id in ipairs(res.unknown) do
    if seq_of[id] then
      local ci = chunk_of[id]
      per[ci].doubt[#per[ci].doubt + 1] = { seq = seq_of[id], device = id, chunk = chunks[ci].id }
    end
  end
  local done = 0
  for ci, c in ipairs(chunks) do
    local p = per[ci]
    for _, u in pairs(p.updates) do if u[1] ~= L.PENDING then done = done + 1 end end
    self:_record(p.updates)
    if #p.doubt > 0 then
      self:_settle_doubt(p.doubt, { [c.id] = { tx = c.tx, sent_at = c.sent_at } })
    else
      self:_record({}, { c.id })
    end
    if self.def.async and readback.for_op(self.op) then self:_async_outcome(c) end
  end
  if stop then error(stop, 0) end
  return done
end

-- KDP: the upload's answer only accepts the transaction; Knox lists each
-- device's failure in the transaction's status. The chunk's devices that
-- the answer called ok are checked there once (the read-back's view).
function Job:_async_outcome(c)
  local set, list = {}, {}
  local led = self.ledger
  for r in led:each(("SELECT seq, device FROM devices WHERE chunk = %d AND state = %d AND seq BETWEEN %d AND %d")
      :format(c.id, L.OK, c.first, c.last)) do
    set[r.device] = true
    list[#list + 1] = { seq = math.tointeger(r.seq), device = r.device }
  end
  if #list == 0 then return end
  local ok, outcomes = pcall(readback.for_op(self.op), { client = self.client, args = self.args, devices = set,
    chunks = { { tx = c.tx, devices = (function()
      local ids = {}
      for i, d in ipairs(list) do ids[i] = d.device end
      return ids
    end)() } } })
  if not ok then return end
  local updates = {}
  for _, d in ipairs(list) do
    local o = outcomes[d.device]
    if type(o) == "table" then updates[d.seq] = { L.FAILED, o.code, o.name } end
  end
  if next(updates) then self:_record(updates) end
end

---------------------------------------------------------------------------
-- Running

function Job:_progress(started, done0)
  local fn = self.opts.on_progress
  if not fn then return end
  local c = self.counts
  local done = c.ok + c.failed + c.unknown
  local elapsed = self.client:now() - started
  local rate = elapsed > 0 and (done - done0) / elapsed or nil
  local left = c.total - done
  fn { done = done, total = c.total, ok = c.ok, failed = c.failed, unknown = c.unknown, pending = left,
    elapsed = elapsed, rate = rate, eta = (rate and rate > 0) and left / rate or nil }
end

--- job:run() -> summary (job:status()). Loads, settles what is in doubt,
-- sends every pending device; raises on a stop (resumable).
function Job:run(opts)
  if self.readonly then errors.usage("this job was opened for status and report only", 2) end
  opts = opts or {}
  local gov = self.client.governor
  local max_rate = self.opts.max_rate
  local saved = gov and gov.max_rate
  if max_rate and gov then gov:set_max_rate(math.min(max_rate, saved or math.huge)) end
  local ok, res = pcall(function()
    self:_ensure_loaded()
    if opts.resend_unknown or self.opts.resend_unknown then
      self.ledger:exec(("UPDATE devices SET state = %d WHERE state = %d"):format(L.PENDING, L.UNKNOWN))
    end
    self:_recover()
    self.counts = self.ledger:counts()
    local started = self.client:now()
    local done0 = self.counts.ok + self.counts.failed + self.counts.unknown
    self:_progress(started, done0)
    local after, stalled, fresh = 0, 0, true
    while true do
      local done, last, first = self:_round(after)
      if done == nil then
        -- end of a pass: start again from the top for devices put back
        if fresh then break end
        after, fresh = 0, true
      else
        after, fresh = last, false
        self:_recount(first, last)
        self:_progress(started, done0)
        if done == 0 then
          stalled = stalled + 1
          if stalled >= MAX_STALLED and self.last_requeue then error(self.last_requeue, 0) end
        else
          stalled = 0
        end
      end
    end
    local c = self.ledger:counts()
    if c.pending == 0 and c.sent == 0 then
      self.ledger:exec(("UPDATE job SET finished = %s, updated = %s WHERE id = 1"):format(
        self.ledger:q(self.client:now()), self.ledger:q(self.client:now())))
    end
  end)
  if max_rate and gov then gov:set_max_rate(saved) end
  if not ok then error(res, 0) end
  return self:status()
end

--- job:resume { resend_unknown = bool } -> summary: run() again, after a
-- crash or a stop; resend_unknown sends the devices marked unknown again.
function Job:resume(opts)
  return self:run(opts)
end

--- job:status() -> { op, args, total, pending, sent, ok, failed, unknown,
-- duplicates, invalid, chunks, loaded, created, finished, done }
-- (pending counts devices in doubt too; sent says how many of them are).
function Job:status()
  local led = self.ledger
  local row = led:job()
  local c = led:counts()
  local chunks = led:row "SELECT count(*) AS n FROM chunks"
  return { op = row.op, args = core.json.decode(row.args), total = c.total, pending = c.pending + c.sent,
    sent = c.sent, ok = c.ok, failed = c.failed, unknown = c.unknown, duplicates = math.tointeger(row.duplicates),
    invalid = math.tointeger(row.invalid), chunks = math.tointeger(chunks.n), chunk_size = math.tointeger(
    row.chunk_size), loaded = math.tointeger(row.loaded) == 1, created = tonumber(row.created),
    finished = tonumber(row.finished), done = c.pending == 0 and c.sent == 0 and math.tointeger(row.loaded) == 1,
    ledger = led.path }
end

--- job:report() -> iterator of { device, state, code, name }, one per
-- device in input order (a cursor: memory flat).
function Job:report()
  local it = self.ledger:each "SELECT device, state, code, name FROM devices ORDER BY seq"
  return function()
    local r = it()
    if not r then return nil end
    return { device = r.device, state = L.STATE_NAMES[math.tointeger(r.state)], code = r.code, name = r.name }
  end
end

function Job:close()
  if self.ledger then self.ledger:close() end
end
Job.__close = Job.close

M.Job = Job
return M
