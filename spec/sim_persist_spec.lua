-- The simulator's --state journal (lua/knox/sim/persist.lua): a request's
-- records are replayed only when its end marker made it to the file, so a
-- kill in the middle of appending them keeps nothing of that request.
local sim = require "support.sim"

describe("knox.sim --state", function()
  it("drops a torn request whole and starts new records on a fresh line", function()
    local path = os.tmpname()
    sim.write_file(path, '{"log":{"id":1,"method":"GET","path":"/kcs/v1/kme/devices/list","status":200}}\n'
      .. '{"end":true}\n'
      .. '{"log":{"id":2,"method":"PUT","path":"/kcs/v1/kme/devices/unassignProfile","status":200}}\n{"lo')
    local s = sim.start { devices = 1, args = { "--state", path } }
    local paths = {}
    for _, e in ipairs(s:requests()) do paths[#paths + 1] = e.path end
    assert.are.same({ "/kcs/v1/kme/devices/list" }, paths)
    local L = sim.legacy(s)
    assert.are.equal(200, s:request("GET", "/kcs/v1/kme/devices/list", { headers = L.headers() }).status)
    L.close()
    s:stop()
    -- a second start replays both whole requests, the torn one still dropped
    s = sim.start { devices = 1, args = { "--state", path } }
    local n = 0
    for _, e in ipairs(s:requests()) do
      assert.are_not.equal("/kcs/v1/kme/devices/unassignProfile", e.path, "the torn request came back")
      if e.path == "/kcs/v1/kme/devices/list" then n = n + 1 end
    end
    assert.are.equal(2, n, "the first and the new request")
    s:stop()
    os.remove(path)
  end)
end)
