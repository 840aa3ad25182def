-- The rate limiter (--rate, POST /__sim/limits): a token bucket per access
-- token (and per managed tenant for MSPs) answering 429 with Retry-After,
-- and GET /__sim/stats. One test runs in real time for 10 s.
local sim = require "support.sim"
local socket = require "socket"

describe("knox.sim rate limits", function()
  local s

  lazy_setup(function()
    s = sim.start { devices = 5, seed = "rate", args = { "--rate", "10" } }
  end)

  lazy_teardown(function()
    if s then s:stop() end
  end)

  before_each(function()
    s:reset()
    s:request("POST", "/__sim/limits", { body = { rate = 10 } })
  end)

  it("admits 10 requests a second (+-10% over 10 s) and answers every excess 429 with Retry-After", function()
    local h = sim.bearer(s)
    local c = s:connect()
    local admitted, limited, bad = 0, 0, 0
    local t0 = socket.gettime()
    while socket.gettime() - t0 < 10 do
      local r = assert(c:request("GET", "/kcs/v1/kme/devices/list?pageSize=1", { headers = h }))
      if r.status == 200 then
        admitted = admitted + 1
      elseif r.status == 429 then
        limited = limited + 1
        local ra = tonumber(r.headers["retry-after"])
        if not ra or ra < 1 or r.json.message ~= "TOO_MANY_REQUESTS" or r.json.code ~= 4290000 then
          bad = bad + 1
        end
      else
        bad = bad + 1
      end
    end
    c:close()
    assert.is_true(admitted >= 90 and admitted <= 110, "admitted " .. admitted)
    assert.is_true(limited > admitted, "the client went faster than the limit: " .. limited .. " refused")
    assert.are.equal(0, bad)
    local st = s:request("GET", "/__sim/stats").json
    assert.are.equal(limited, st.rate_limited)
    assert.are.equal(admitted + limited + 1, st.requests)  -- and the token request
    assert.are.equal(limited, st.by_status["429"])
    assert.is_true(st.peak_admitted_rate <= 16, "peak " .. st.peak_admitted_rate)  -- burst 5 + 10/s
    assert.is_true(st.peak_rate > st.peak_admitted_rate)
  end)

  it("refills on the simulator's clock, per access token and per managed tenant", function()
    s:request("POST", "/__sim/limits", { body = { rate = 1, burst = 1 } })
    local h1, h2 = sim.bearer(s), sim.bearer(s)
    local function list(h) return s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }) end
    assert.are.equal(200, list(h1).status)
    local r = list(h1)
    assert.are.equal(429, r.status)
    assert.are.equal("1", r.headers["retry-after"])
    assert.are.equal(200, list(h2).status)          -- another token, another bucket
    s:clock(1)
    assert.are.equal(200, list(h1).status)
    -- an MSP acting for a customer has a bucket per tenant
    assert.are.equal(200, list(h2).status)          -- refilled too
    local customers = s:request("GET", "/msp/v1/managedCustomers", { headers = h2 })
    assert.are.equal(429, customers.status)         -- h2's own bucket is empty
    assert.is_string(customers.json.transactionalId) -- in the MSP's error shape
    assert.are.equal("TOO_MANY_REQUESTS", customers.json.code)
    assert.are.equal("4290000", customers.json.errorCode)
    local id = s:request("GET", "/__sim/info").json.tenants[2].customerId
    local ht = { Authorization = h2.Authorization, ["x-wsm-managed-tenantid"] = id }
    assert.are.equal(200, list(ht).status)
    assert.are.equal(429, list(ht).status)
    -- off again
    s:request("POST", "/__sim/limits", { body = { rate = 0 } })
    for _ = 1, 5 do assert.are.equal(200, list(h1).status) end
    assert.are.equal(0, s:request("GET", "/__sim/limits").json.rate)
  end)

  it("leaves token and control endpoints alone", function()
    s:request("POST", "/__sim/limits", { body = { rate = 1, burst = 1 } })
    for _ = 1, 5 do
      assert.are.equal(200, sim.oauth_token(s).status)
      assert.are.equal(200, s:request("GET", "/__sim/health").status)
    end
  end)
end)
