--- knox.retry: when a failed request may be sent again, and how long to wait.
-- Policy only: the client owns the clock and the sleep, this module decides.
--
-- Rules (issue 7, and what the best SDKs do):
-- * Only errors marked `retryable` are retried, at most `max_attempts` tries.
-- * Reads (GET, HEAD, OPTIONS) are retried on any retryable error. Writes
--   (POST, PUT, PATCH, DELETE) only when the request provably never reached
--   the server (a transport failure with cause.ambiguous == false, such as
--   connection refused) or the server declined it without acting (429, 503);
--   never after an ambiguous failure (reset mid-response, timeout, 500, 502,
--   504) unless the call says `idempotent = true`.
-- * Backoff is exponential with full jitter: uniform in [0, min(cap, base *
--   2^(n-1))]. A Retry-After from the server is a floor (capped at
--   `retry_after_cap`, 60 s): we wait at least that long.
-- * A per-client retry budget (token bucket) stops a big batch from hammering
--   a failing server: each retry spends tokens, each success refills a
--   little; when the bucket is empty, failures are raised at once.
local M = {}

local Policy = {}
Policy.__index = Policy

local READS = { GET = true, HEAD = true, OPTIONS = true }

local function check_number(opts, name, default, min)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v < min or v == math.huge then
    error(("bad option '%s' (number >= %s expected, got %s)"):format(name, min, tostring(v)), 3)
  end
  return v
end

--- Budget: a token bucket of retries.
local Budget = {}
Budget.__index = Budget

local function new_budget(opts)
  if opts == false then return nil end
  opts = opts or {}
  if type(opts) ~= "table" then
    error("bad option 'retry_budget' (table or false expected)", 3)
  end
  local capacity = check_number(opts, "capacity", 20, 1)
  return setmetatable({
    capacity = capacity,
    tokens = capacity,
    retry_cost = check_number(opts, "retry_cost", 1, 0),
    timeout_cost = check_number(opts, "timeout_cost", 2, 0),
    success_refund = check_number(opts, "success_refund", 0.2, 0),
  }, Budget)
end

function Budget:cost(err)
  local cause = type(err) == "table" and err.cause
  if type(cause) == "table" and cause.name == "OPERATION_TIMEDOUT" then
    return self.timeout_cost
  end
  return self.retry_cost
end

--- Takes the cost of one retry of err; false when the bucket cannot pay.
function Budget:withdraw(err)
  local c = self:cost(err)
  if self.tokens < c then return false end
  self.tokens = self.tokens - c
  return true
end

--- Refills after a success; a retried request that finally succeeds gives
-- back what its retries took, as AWS's retry quota does.
function Budget:deposit(spent)
  self.tokens = math.min(self.capacity, self.tokens + self.success_refund + (spent or 0))
end

--- M.new(opts): a retry policy.
-- opts: max_attempts (3), base (0.5 s), cap (20 s), retry_after_cap (60 s),
-- retry_budget (table {capacity, retry_cost, timeout_cost, success_refund}
-- or false to disable), random (function returning [0,1), for tests).
function M.new(opts)
  opts = opts or {}
  local max_attempts = opts.max_attempts
  if max_attempts == nil then max_attempts = 3 end
  if math.type(max_attempts) ~= "integer" or max_attempts < 1 then
    error("bad option 'max_attempts' (integer >= 1 expected, got " .. tostring(max_attempts) .. ")", 2)
  end
  local random = opts.random or math.random
  if type(random) ~= "function" then
    error("bad option 'random' (function expected)", 2)
  end
  return setmetatable({
    max_attempts = max_attempts,
    base = check_number(opts, "base", 0.5, 0),
    cap = check_number(opts, "cap", 20, 0),
    retry_after_cap = check_number(opts, "retry_after_cap", 60, 0),
    budget = new_budget(opts.retry_budget),
    random = random,
  }, Policy)
end

--- Whether a write may be sent again after err.
local function write_safe(err)
  if err.kind == "transport" then
    local cause = err.cause
    return type(cause) == "table" and cause.ambiguous == false
  end
  return err.status == 429 or err.status == 503
end

--- policy:decide(err, attempt, method, idempotent) -> ok, reason
-- ok is true when the request should be sent again; otherwise reason says
-- why not: "not_retryable", "unsafe_write", "max_attempts", "budget".
-- The budget is charged only when the answer is yes.
function Policy:decide(err, attempt, method, idempotent)
  if type(err) ~= "table" or not err.retryable then
    return false, "not_retryable"
  end
  if not (idempotent or READS[method]) and not write_safe(err) then
    return false, "unsafe_write"
  end
  if attempt >= self.max_attempts then
    return false, "max_attempts"
  end
  if self.budget and not self.budget:withdraw(err) then
    return false, "budget"
  end
  return true
end

--- The cost decide() charged for err, to give back when the call succeeds.
function Policy:cost(err)
  return self.budget and self.budget:cost(err) or 0
end

--- policy:delay(err, attempt) -> seconds to wait before try attempt + 1.
function Policy:delay(err, attempt)
  local ceiling = math.min(self.cap, self.base * 2 ^ (attempt - 1))
  local d = self.random() * ceiling
  local ra = type(err) == "table" and err.retry_after
  if type(ra) == "number" and ra == ra and ra > 0 then
    d = math.max(d, math.min(ra, self.retry_after_cap))
  end
  return d
end

--- policy:success(spent): a call succeeded after its retries took `spent`.
function Policy:success(spent)
  local b = self.budget
  if b and (spent > 0 or b.tokens < b.capacity) then b:deposit(spent) end
end

M.Policy = Policy
return M
