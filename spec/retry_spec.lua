local retry = require "knox.retry"
local errors = require "knox.errors"

local function err(fields)
  return errors.new(fields)
end

describe("knox.retry", function()
  local policy
  before_each(function()
    policy = retry.new { random = function() return 1 end }
  end)

  it("retries reads on retryable errors up to max_attempts", function()
    local e = err { kind = "api", status = 500, retryable = true }
    assert.is_true((policy:decide(e, 1, "GET")))
    assert.is_true((policy:decide(e, 2, "GET")))
    local ok, why = policy:decide(e, 3, "GET")
    assert.is_false(ok)
    assert.are.equal("max_attempts", why)
  end)

  it("never retries errors that are not retryable", function()
    local ok, why = policy:decide(err { kind = "api", status = 400 }, 1, "GET")
    assert.is_false(ok)
    assert.are.equal("not_retryable", why)
  end)

  it("retries writes only when the server never acted on them", function()
    policy = retry.new { retry_budget = false }
    local refused = err { kind = "transport", retryable = true,
      cause = { name = "COULDNT_CONNECT", ambiguous = false } }
    local reset = err { kind = "transport", retryable = true, cause = { name = "RECV_ERROR", ambiguous = true } }
    local s500 = err { kind = "api", status = 500, retryable = true }
    local s502 = err { kind = "api", status = 502, retryable = true }
    local s429 = err { kind = "api", status = 429, retryable = true }
    local s503 = err { kind = "api", status = 503, retryable = true }
    for _, m in ipairs { "POST", "PUT", "DELETE", "PATCH" } do
      assert.is_true((policy:decide(refused, 1, m)))
      assert.is_true((policy:decide(s429, 1, m)))
      assert.is_true((policy:decide(s503, 1, m)))
      local ok, why = policy:decide(reset, 1, m)
      assert.is_false(ok)
      assert.are.equal("unsafe_write", why)
      assert.is_false((policy:decide(s500, 1, m)))
      assert.is_false((policy:decide(s502, 1, m)))
      -- unless the caller says the write is idempotent
      assert.is_true((policy:decide(reset, 1, m, true)))
      assert.is_true((policy:decide(s500, 1, m, true)))
    end
    assert.is_true((policy:decide(reset, 1, "GET")))
  end)

  it("backs off exponentially with full jitter under the cap", function()
    local r = 1
    local p = retry.new { base = 0.5, cap = 20, random = function() return r end }
    local e = err { kind = "api", status = 500, retryable = true }
    assert.are.equal(0.5, p:delay(e, 1))
    assert.are.equal(1, p:delay(e, 2))
    assert.are.equal(2, p:delay(e, 3))
    assert.are.equal(20, p:delay(e, 10))
    r = 0.25
    assert.are.equal(0.5, p:delay(e, 3))
    r = 0
    assert.are.equal(0, p:delay(e, 5))
  end)

  it("waits at least Retry-After, capped at 60 s", function()
    local p = retry.new { random = function() return 0 end }
    assert.are.equal(2, p:delay(err { kind = "api", status = 429, retryable = true, retry_after = 2 }, 1))
    assert.are.equal(60, p:delay(err { kind = "api", status = 429, retryable = true, retry_after = 3600 }, 1))
    assert.are.equal(0, p:delay(err { kind = "api", status = 429, retryable = true, retry_after = -5 }, 1))
  end)

  it("stops retrying when the budget is spent and refills on success", function()
    local p = retry.new { max_attempts = 10, retry_budget = { capacity = 3, success_refund = 1 } }
    local e = err { kind = "api", status = 503, retryable = true }
    assert.is_true((p:decide(e, 1, "GET")))
    assert.is_true((p:decide(e, 1, "GET")))
    assert.is_true((p:decide(e, 1, "GET")))
    local ok, why = p:decide(e, 1, "GET")
    assert.is_false(ok)
    assert.are.equal("budget", why)
    p:success(0)
    assert.is_true((p:decide(e, 1, "GET")))
    -- timeouts cost more
    local t = err { kind = "transport", retryable = true, cause = { name = "OPERATION_TIMEDOUT" } }
    assert.are.equal(2, p:cost(t))
    assert.are.equal(1, p:cost(e))
  end)

  it("can run without a budget", function()
    local p = retry.new { max_attempts = 1000, retry_budget = false }
    local e = err { kind = "api", status = 503, retryable = true }
    for i = 1, 500 do assert.is_true((p:decide(e, i, "GET"))) end
  end)

  it("rejects bad options", function()
    assert.has_error(function() retry.new { max_attempts = 0 } end)
    assert.has_error(function() retry.new { max_attempts = 1.5 } end)
    assert.has_error(function() retry.new { base = -1 } end)
    assert.has_error(function() retry.new { cap = 0 / 0 } end)
    assert.has_error(function() retry.new { retry_budget = 3 } end)
  end)
end)
