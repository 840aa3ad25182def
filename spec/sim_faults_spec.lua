-- Fault matching (POST /__sim/faults): paths match exactly unless the
-- fault says otherwise (match.pattern, match.partial, the older anchored form).
local sim = require "support.sim"

describe("knox.sim fault matching", function()
  local s, L

  lazy_setup(function()
    s = sim.start { devices = 12, seed = "faults" }
    L = sim.legacy(s)
  end)

  lazy_teardown(function()
    if L then L.close() end
    if s then s:stop() end
  end)

  before_each(function() s:reset() end)

  local function kg(path, h)
    return s:request("POST", "/kcs/v1.1/kg/devices/" .. path, { headers = h, body = { deviceList = {} } })
  end

  it("matches a path exactly: a fault on /lock does not fire on /lockAsync", function()
    local h = L.headers()
    s:fault { match = { path = "/kcs/v1.1/kg/devices/lock" }, status = 503, times = 2 }
    assert.are.equal(400, kg("lockAsync", h).status)      -- the real answer (an empty list)
    assert.are.equal(503, kg("lock", h).status)
    assert.are.equal(200, s:request("POST", "/kcs/v1.1/kg/devices/list", { headers = h, body = {} }).status)
    -- a part of a path matches nothing
    s:fault { match = { path = "devices/lock" }, status = 503 }
    assert.are.equal(503, kg("lock", h).status)           -- the first fault's second time
    assert.are.equal(400, kg("lock", h).status)           -- "devices/lock" never matched
    assert.are.equal(1, #s:request("GET", "/__sim/faults").json.faults)
  end)

  it("matches a pattern against the whole path, or anywhere with partial", function()
    local h = L.headers()
    s:fault { match = { pattern = "/kcs/v1%.1/kg/devices/%a+Async" }, status = 502 }
    assert.are.equal(400, kg("lock", h).status)
    assert.are.equal(502, kg("unlockAsync", h).status)
    s:fault { match = { pattern = "/kcs/v1%.1/kg/devices/lock" }, status = 502 }
    assert.are.equal(400, kg("lockAsync", h).status)      -- anchored at both ends
    assert.are.equal(502, kg("lock", h).status)
    s:fault { match = { pattern = "Async", partial = true }, status = 504 }
    assert.are.equal(504, kg("blinkAsync", h).status)
    -- the older form keeps exactly the anchors it has
    s:fault { match = { method = "POST", path = "/lock$" }, status = 500, times = 2 }
    assert.are.equal(400, kg("lockAsync", h).status)
    assert.are.equal(500, kg("lock", h).status)
    s:fault { match = { path = "^/kcs/v1.1/kg/" }, status = 501 }
    assert.are.equal(500, kg("lock", h).status)           -- queued first, fires first
    assert.are.equal(501, kg("blink", h).status)
  end)

  it("lists faults with their matching rule", function()
    s:fault { match = { path = "/a" }, status = 500 }
    s:fault { match = { pattern = "/b.*" }, status = 500 }
    s:fault { match = { pattern = "c", partial = true }, status = 500 }
    s:fault { match = { path = "^/d" }, status = 500 }
    local kinds = {}
    for i, f in ipairs(s:request("GET", "/__sim/faults").json.faults) do kinds[i] = f.match.kind end
    assert.are.same({ "exact", "whole", "partial", "legacy" }, kinds)
  end)
end)
