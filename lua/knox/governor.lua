--- knox.governor: the client-side rate governor. Every request the client
-- sends (client:request, client:batch, bulk methods, jobs) takes a token
-- from the bucket of its credential -- one bucket per auth provider (one
-- access token), and per managed tenant when an MSP acts for a customer,
-- as Knox counts them.
--
-- Off (unlimited) until the first 429 of a bucket, unless the client's
-- `max_rate` option sets a ceiling from the start. Then adaptive, in the
-- spirit of the AWS SDKs' adaptive retry mode (a CUBIC-like shape, made
-- simpler):
--
--   * measured: the rate of answers that were not 429, in 0.5 s bins,
--     smoothed (EWMA, weight 0.5 on the newest bin).
--   * a 429 (multiplicative decrease): ceiling W = min(rate, measured) --
--     what the server let through is the best estimate of its limit; from
--     the second 429 on, measured over the whole cycle since the last one
--     (the server's bucket was empty at both ends, so the cycle's answers
--     over its length are the server's rate, not inflated by its burst) --,
--     rate = BETA (0.7) * W, the bucket emptied and closed until
--     Retry-After has passed (the server asked; capped at 60 s), then one
--     call goes at once (the server said when to come back). At most one
--     decrease per max(1 s, Retry-After): the other answers of the same
--     burst say the same thing again.
--     When nothing could be measured yet (the first calls went out as one
--     burst), W is unknown: the rate starts at START_RATE (1/s) and
--     doubles every second (slow start) until the next 429 measures it.
--   * each success (additive increase, only while the caller is using the
--     tokens, not while it is idle): below W, back to W in RECOVER (2 s)
--     seconds, linearly; at and above W, probing: PROBE (1.5% of W, at
--     least 0.05 requests/s) per second at first, growing by a twelfth of
--     that for every second without a 429 (the convex half of CUBIC), so a
--     steady limit costs about one 429 in 13 s (at 10/s: B10 of BENCHMARKS.md, bench/b_governor.lua)
--     and an estimate that was too low is outgrown in seconds. With no W and no slow start (a
--     ceiling from max_rate only) the rate is that ceiling.
--   * never above max_rate, never below MIN_RATE (0.5 requests/s).
--
-- Burst: a bucket holds at most max(1, rate / 2) tokens (half a second of
-- calls), so an idle client cannot fire a storm when it wakes.
--
-- Time is the client's clock and waits are the client's sleep, so specs
-- move time instead of waiting.
local headers_ = require "knox.headers"

local M = {}

M.BETA = 0.7
M.MIN_RATE = 0.5
M.RECOVER = 2
M.PROBE = 0.015
M.PROBE_MIN = 0.05
M.BIN = 0.5
M.SMOOTH = 0.5
M.RETRY_AFTER_CAP = 60
M.START_RATE = 1
M.CYCLE_MIN = 2
M.CONVEX = 12

local Governor = {}
Governor.__index = Governor

--- M.new { clock =, sleep =, max_rate = } -> a governor.
function M.new(o)
  local max_rate = o.max_rate
  -- paced: some bucket may hold a call back (a max_rate, or a 429 seen);
  -- until then before() has nothing to wait for
  if max_rate ~= nil and (type(max_rate) ~= "number" or max_rate ~= max_rate or max_rate <= 0
      or max_rate == math.huge) then
    error("bad option 'max_rate' (positive number of requests per second expected)", 3)
  end
  return setmetatable({ clock = o.clock, sleep = o.sleep, max_rate = max_rate, buckets = {}, nbuckets = 0,
    on_change = o.on_change, paced = max_rate ~= nil }, Governor)
end

local function now_of(self)
  return self.clock()
end

-- The bucket of a key, made on first use.
function Governor:bucket(key)
  local b = self.buckets[key]
  if b then return b end
  if self.nbuckets >= 1024 then self.buckets, self.nbuckets = {}, 0 end
  local t = now_of(self)
  b = { key = key, enabled = self.max_rate ~= nil, rate = self.max_rate, tokens = 0, t = t, blocked = 0,
    ceiling = nil, measured = 0, bin_start = t, bin_n = 0, bins = 0, slow_start = false, cycle_n = 0,
    last_decrease = -math.huge, last_increase = t,
    requests = 0, throttled = 0 }
  if b.enabled then b.tokens = math.max(1, b.rate / 2) end
  self.buckets[key] = b
  self.nbuckets = self.nbuckets + 1
  return b
end

--- gov:set_max_rate(r): a new ceiling (nil: none) for every bucket; a
-- bucket that was off starts at the ceiling.
function Governor:set_max_rate(r)
  self.max_rate = r
  if r then self.paced = true end
  for _, b in pairs(self.buckets) do
    if r then
      if not b.enabled then b.enabled, b.rate, b.tokens, b.t = true, r, 1, self.clock() end
      b.rate = math.min(b.rate, r)
    elseif not b.ceiling and not b.slow_start then
      b.enabled = false
    end
  end
end

--- The key of a request: its provider (one access token) and the managed
-- tenant it acts for; nil for a request without credentials (token
-- endpoints are not paced).
-- Keys are made once per provider (and tenant): every request asks.
local KEYS = setmetatable({}, { __mode = "k" })
function M.key_of(req)
  local p = req.provider
  if not p then return nil end
  local tenant = req.headers and req.headers["x-wsm-managed-tenantid"]
  local per = KEYS[p]
  if not per then
    per = { [false] = tostring(p) }
    KEYS[p] = per
  end
  local k = per[tenant or false]
  if not k then
    k = per[false] .. "|" .. tenant
    per[tenant] = k
  end
  return k
end

local function capacity(b)
  return math.max(1, b.rate / 2)
end

local function refill(b, now)
  local dt = now - b.t
  if dt > 0 then
    b.tokens = math.min(capacity(b), b.tokens + dt * b.rate)
    b.t = now
  end
end

-- Closes measurement bins up to now.
local function measure(b, now)
  local dt = now - b.bin_start
  if dt < M.BIN then return end
  local bins = math.floor(dt / M.BIN)
  -- only bins in which calls were answered say something about the
  -- server's limit: the empty ones (waiting out a Retry-After, an idle
  -- caller) would only drag the estimate down
  if b.bin_n > 0 then
    local rate = b.bin_n / M.BIN
    b.measured = b.bins == 0 and rate or (M.SMOOTH * rate + (1 - M.SMOOTH) * b.measured)
    b.bins = b.bins + 1
  end
  b.bin_start = b.bin_start + bins * M.BIN
  b.bin_n = 0
end

--- gov:take(key, n) -> granted, wait. Up to n tokens now (never blocks);
-- granted 0 with wait, the seconds until one is there.
function Governor:take(key, n)
  if key == nil then return n, 0 end
  local b = self:bucket(key)
  if not b.enabled then return n, 0 end
  local now = now_of(self)
  if now < b.blocked then return 0, b.blocked - now end
  refill(b, now)
  if b.reopen then
    -- the server said when to come back: the first call then goes at once
    b.reopen = false
    b.tokens = math.max(b.tokens, 1)
  end
  if b.tokens >= 1 then
    local g = math.min(n, math.floor(b.tokens))
    b.tokens = b.tokens - g
    return g, 0
  end
  return 0, (1 - b.tokens) / b.rate
end

--- gov:acquire(key): waits (client sleep) until one token is there and takes it.
function Governor:acquire(key)
  while true do
    local g, wait = self:take(key, 1)
    if g > 0 then return end
    self.sleep(math.max(wait, 0.001))
  end
end

--- gov:admit(keys, n) -> count. For client:batch: keys[i] is the key of
-- pending item i (1..n); returns how many of them (from the first) may be
-- sent in this round, waiting until at least one may. Items are admitted
-- in order, so a bucket that is empty holds back the rest of the round.
function Governor:admit(keys, n)
  if not self.paced then return n end
  while true do
    local want = {}
    local order = {}
    for i = 1, n do
      local k = keys[i] or false
      if not want[k] then want[k] = 0; order[#order + 1] = k end
      want[k] = want[k] + 1
    end
    local granted, min_wait = {}, math.huge
    for _, k in ipairs(order) do
      local g, wait = self:take(k or nil, want[k])
      granted[k] = g
      if g == 0 then min_wait = math.min(min_wait, wait) end
    end
    local count = 0
    for i = 1, n do
      local k = keys[i] or false
      if granted[k] <= 0 then break end
      granted[k] = granted[k] - 1
      count = count + 1
    end
    -- tokens taken beyond the admitted prefix go back
    for k, g in pairs(granted) do
      if k and g > 0 then
        local b = self.buckets[k]
        if b and b.enabled then b.tokens = b.tokens + g end
      end
    end
    if count > 0 then return count end
    self.sleep(math.max(min_wait, 0.001))
  end
end

local function emit(self, b, event)
  if self.on_change then self.on_change(event, b) end
end

local function decrease(self, b, now, retry_after)
  b.throttled = b.throttled + 1
  local ra = math.min(math.max(retry_after or 0, 0), M.RETRY_AFTER_CAP)
  b.blocked = math.max(b.blocked, now + ra)
  b.tokens = 0
  b.reopen = ra > 0
  b.t = math.max(b.t, now)
  if now - b.last_decrease < math.max(1, ra) then return end
  b.last_decrease = now
  measure(b, now)
  local measured = b.bins > 0 and b.measured or 0
  -- between two 429s the server's bucket went from empty to empty: what
  -- it let through over that cycle, divided by the cycle's length, is its
  -- rate (a little under: the wait for Retry-After wastes some refill).
  -- It replaces the short-term measure once a cycle of CYCLE_MIN seconds
  -- is known.
  -- (A cycle that began in slow start was not at the limit all along.)
  local cycle = b.cycle_start and now - b.cycle_start
  if cycle and cycle >= M.CYCLE_MIN and b.cycle_n > 0 and not b.slow_start then measured = b.cycle_n / cycle end
  b.cycle_start, b.cycle_n = now, 0
  local current = b.enabled and b.rate or math.huge
  if measured > 0 then
    b.ceiling = math.max(M.MIN_RATE, math.min(current, measured))
    b.rate = math.max(M.MIN_RATE, M.BETA * b.ceiling)
  else
    -- nothing measured yet (the first calls came as one burst): start
    -- low and double each second until the next 429 measures the limit
    b.ceiling = nil
    b.rate = math.max(M.MIN_RATE, math.min(current, M.START_RATE))
  end
  if self.max_rate then b.rate = math.min(b.rate, self.max_rate) end
  b.slow_start = b.ceiling == nil
  b.at_ceiling = nil
  b.enabled = true
  self.paced = true
  b.last_increase = math.max(now, b.blocked)
  emit(self, b, "decrease")
end

local function increase(self, b, now)
  local dt = math.min(now - b.last_increase, 1)
  b.last_increase = now
  if dt <= 0 then return end
  -- idle callers do not earn a higher rate: only a bucket whose tokens are used grows
  refill(b, now)
  if b.tokens >= capacity(b) - 1e-9 and b.tokens >= 1 then return end
  local w = b.ceiling
  if not w then
    if b.slow_start then b.rate = b.rate * 2 ^ dt end
  elseif b.rate < w then
    b.rate = math.min(w, b.rate + w * (1 - M.BETA) / M.RECOVER * dt)
    b.at_ceiling = nil
  else
    -- probing: slowly at first, faster the longer no 429 came (the
    -- convex half of CUBIC), so an estimate that was too low is outgrown
    b.at_ceiling = b.at_ceiling or now
    local slope = math.max(M.PROBE_MIN, M.PROBE * w) * (1 + (now - b.at_ceiling) / M.CONVEX)
    b.rate = b.rate + slope * dt
  end
  if self.max_rate then b.rate = math.min(b.rate, self.max_rate) end
end

--- gov:observe(key, status, headers): after one answer (status nil: no
-- answer, a transport failure). A 429 decreases, anything else counts as
-- a call the server let through.
function Governor:observe(key, status, headers)
  if key == nil then return end
  local b = self:bucket(key)
  local now = now_of(self)
  b.requests = b.requests + 1
  measure(b, now)
  if status == 429 then
    decrease(self, b, now, headers and headers_.retry_after(headers, now) or 1)
  elseif status then
    b.bin_n = b.bin_n + 1
    b.cycle_n = b.cycle_n + 1
    if b.enabled then increase(self, b, now) end
  end
end

--- gov:before(req) / gov:after(req, ok, status, headers): the two hooks
-- of client:_send around one transfer.
function Governor:before(req)
  if not self.paced then return end -- nothing enabled yet: nothing to wait for
  self:acquire(M.key_of(req))
end

function Governor:after(req, ok, status, headers)
  self:observe(M.key_of(req), ok and status or nil, ok and headers or nil)
end

--- gov:state(key) -> { enabled, rate, ceiling, measured, tokens, requests,
-- throttled } (a copy), or nil for a key never seen.
function Governor:state(key)
  local b = self.buckets[key]
  if not b then return nil end
  return { enabled = b.enabled, rate = b.rate, ceiling = b.ceiling, measured = b.measured, tokens = b.tokens,
    requests = b.requests, throttled = b.throttled, blocked_until = b.blocked }
end

--- gov:states() -> { [key] = state } for every bucket.
function Governor:states()
  local out = {}
  for k in pairs(self.buckets) do out[k] = self:state(k) end
  return out
end

M.Governor = Governor
return M
