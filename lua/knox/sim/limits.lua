--- knox.sim limits: bulk sizes per service, the rate limiter and the
-- request statistics (GET /__sim/stats).
--
-- Bulk limits: the most items one call may name, per service (kme, kg,
-- kdp, kc); beyond it each service answers with its own documented code
-- (see the service files). Defaults are the simulator's choice: Knox
-- publishes the codes, not the numbers. --bulk-limit N sets all of them;
-- POST /__sim/limits { bulk = N | { kme = N, ... } } sets them at run time.
--
-- Rate limit: off unless --rate N (or POST /__sim/limits { rate = N }):
-- a token bucket per access token -- per access token and managed tenant
-- when an MSP acts for a customer -- refilled at N tokens a second on the
-- simulator's clock (so POST /__sim/clock refills it too) and holding at
-- most `burst` tokens (default: half a second's worth, at least 1; the
-- simulator's choice, tight enough that "N requests a second" holds over
-- any few seconds). A request finding its bucket empty is answered 429 in
-- its service's error shape with Retry-After: the whole seconds until a
-- token is back (at least 1), as Knox Configure documents its 10
-- requests/second limit and MSP every endpoint's 429.
local M = {}

M.DEFAULT_BULK = { kme = 1000, kg = 10000, kdp = 10000, kc = 1000 }
M.MAX_BUCKETS = 10000

local Limits = {}
Limits.__index = Limits

local function default_burst(rate)
  return math.max(1, rate / 2)
end

--- Limits from the command-line options (bulk_limit, rate, burst).
function M.new(opts)
  local self = setmetatable({ bulk = {}, buckets = {}, nbuckets = 0 }, Limits)
  for k, v in pairs(M.DEFAULT_BULK) do self.bulk[k] = opts.bulk_limit or v end
  if opts.rate and opts.rate > 0 then
    self.rate = opts.rate
    self.burst = opts.burst or default_burst(opts.rate)
  end
  self:reset_stats()
  return self
end

function Limits:reset_stats()
  self.stats = { requests = 0, rate_limited = 0, by_status = {}, peak_rate = 0, peak_admitted_rate = 0,
    second = nil, in_second = 0, admitted_in_second = 0, first = nil, last = nil }
end

local function positive_int(v, name, allow_zero)
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v) and v < 2 ^ 53) then
    return nil, name .. " must be an integer"
  end
  if v < (allow_zero and 0 or 1) then return nil, name .. " must be " .. (allow_zero and "0 or more" or "positive") end
  return math.tointeger(v)
end

--- Applies a POST /__sim/limits body; returns true or nil, why.
-- { bulk = N | { kme =, kg =, kdp =, kc = }, rate = N (0 or null: off),
--   burst = N }
function Limits:configure(b, null)
  if b.bulk ~= nil and b.bulk ~= null then
    if type(b.bulk) == "table" then
      for k, v in pairs(b.bulk) do
        if not M.DEFAULT_BULK[k] then return nil, "bulk." .. tostring(k) .. " is not a service (kme, kg, kdp, kc)" end
        local n, why = positive_int(v, "bulk." .. k)
        if not n then return nil, why end
        self.bulk[k] = n
      end
    else
      local n, why = positive_int(b.bulk, "bulk")
      if not n then return nil, why end
      for k in pairs(M.DEFAULT_BULK) do self.bulk[k] = n end
    end
  end
  if b.rate == null then
    self.rate, self.burst = nil, nil
  elseif b.rate ~= nil then
    if type(b.rate) ~= "number" or b.rate ~= b.rate or b.rate < 0 or b.rate > 1e6 then
      return nil, "rate must be a number of requests per second (0 turns it off)"
    end
    if b.rate == 0 then
      self.rate, self.burst = nil, nil
    else
      self.rate, self.burst = b.rate, default_burst(b.rate)
    end
    self.buckets, self.nbuckets = {}, 0
  end
  if b.burst ~= nil and b.burst ~= null then
    if type(b.burst) ~= "number" or b.burst < 1 or b.burst ~= b.burst or b.burst > 1e6 then
      return nil, "burst must be a number of at least 1"
    end
    if not self.rate then return nil, "burst needs a rate" end
    self.burst = b.burst
    self.buckets, self.nbuckets = {}, 0
  end
  return true
end

--- Whether a request of key (an access token, with its tenant) may run
-- now (seconds on the simulator's clock): true, or false and the
-- Retry-After seconds.
function Limits:admit(key, now)
  local rate = self.rate
  if not rate then return true end
  local b = self.buckets[key]
  if not b then
    if self.nbuckets >= M.MAX_BUCKETS then self.buckets, self.nbuckets = {}, 0 end
    b = { tokens = self.burst, t = now }
    self.buckets[key] = b
    self.nbuckets = self.nbuckets + 1
  end
  local elapsed = now - b.t
  if elapsed > 0 then b.tokens = math.min(self.burst, b.tokens + elapsed * rate) end
  b.t = math.max(b.t, now)
  if b.tokens >= 1 then
    b.tokens = b.tokens - 1
    return true
  end
  return false, math.max(1, math.ceil((1 - b.tokens) / rate))
end

--- Counts a request answered with status at now (limited: the rate
-- limiter answered it).
function Limits:record(now, status, limited)
  local s = self.stats
  s.requests = s.requests + 1
  local k = tostring(status)
  s.by_status[k] = (s.by_status[k] or 0) + 1
  if limited then s.rate_limited = s.rate_limited + 1 end
  local sec = math.floor(now)
  if sec ~= s.second then s.second, s.in_second, s.admitted_in_second = sec, 0, 0 end
  s.in_second = s.in_second + 1
  if not limited then s.admitted_in_second = s.admitted_in_second + 1 end
  s.peak_rate = math.max(s.peak_rate, s.in_second)
  s.peak_admitted_rate = math.max(s.peak_admitted_rate, s.admitted_in_second)
  s.first = s.first or now
  s.last = now
end

--- GET /__sim/stats and GET /__sim/limits.
function Limits:describe()
  local s = self.stats
  local bulk = {}
  for k, v in pairs(self.bulk) do bulk[k] = v end
  return { requests = s.requests, rate_limited = s.rate_limited, by_status = s.by_status,
    peak_rate = s.peak_rate, peak_admitted_rate = s.peak_admitted_rate, first = s.first, last = s.last,
    limits = { bulk = bulk, rate = self.rate or 0, burst = self.burst or 0 } }
end

return M
