-- knox.sim.testing, the kit users test their own automation with: the
-- README's example spec passes as written, and a simulator a spec started
-- is gone after the spec, also when its tests fail or raise.
local sim = require "support.sim"

-- Runs busted on a spec file; returns its output and whether it passed.
-- Under `make check` (knox.core built with sanitizers, preloaded) the child
-- busted keeps that build and its environment; otherwise it runs plain.
local function busted(file)
  local asan = package.cpath:find("build-asan", 1, true)
  local cmd = "cd " .. sim.quote(sim.ROOT) .. " && " .. (asan and "" or sim.ENV) .. sim.LUA .. " /usr/bin/busted "
    .. (asan and "--cpath='build-asan/?.so' " or "") .. (require("helpers").TREE and "--run=installed " or "")
    .. sim.quote(file) .. " 2>&1"
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

-- The ports simulators started by a spec file announced (its output shows them).
local function listening(port)
  local p = assert(io.popen("ss -Htln 'sport = :" .. port .. "' 2>/dev/null"))
  local out = p:read("a")
  p:close()
  return out:find(":" .. port, 1, true) ~= nil
end

describe("knox.sim.testing", function()
  it("runs the README's example spec (examples/automation_spec.lua) as written", function()
    local readme = sim.read_file(sim.ROOT .. "/README.md")
    local example = sim.read_file(sim.ROOT .. "/examples/automation_spec.lua")
    assert.is_truthy(readme:find(example, 1, true), "README shows examples/automation_spec.lua verbatim")
    local out, ok = busted("examples/automation_spec.lua")
    assert.is_true(ok, out)
    assert.matches("3 successes / 0 failures / 0 errors", out)
  end)

  it("stops its simulator when the spec's tests fail or raise", function()
    local file = os.tmpname() .. "_spec.lua"
    sim.write_file(file, [[
local testing = require "knox.sim.testing"
describe("a failing spec", function()
  local s = testing.use { devices = 3 }
  it("prints the port, then fails", function()
    print("PORT " .. s.url:match(":(%d+)$"))
    assert.are.equal(1, 2)
  end)
  it("raises", function() error("boom") end)
end)
it("stops a simulator started with testing.with when fn raises", function()
  local port
  local ok = pcall(testing.with, { devices = 1 }, function(x)
    port = x.url:match(":(%d+)$")
    error("inside")
  end)
  print("WITH " .. port)
  assert.is_false(ok)
end)
]])
    local out, ok = busted(file)
    os.remove(file)
    assert.is_falsy(ok)
    assert.matches("1 success / 1 failure / 1 error", out)
    local port, with_port = out:match("PORT (%d+)"), out:match("WITH (%d+)")
    assert.is_string(port, out)
    assert.is_string(with_port, out)
    assert.is_false(listening(port))
    assert.is_false(listening(with_port))
  end)

  it("seeds tenants, builds clients for them and reads stats", function()
    local testing = require "knox.sim.testing"
    testing.with({ devices = 2, data = { customers = { { companyName = "Kit Tenant", devices = 7 } } } }, function(s)
      local id
      for _, t in ipairs(s.tenants) do
        if t.companyName == "Kit Tenant" then id = t.customerId end
      end
      assert.is_string(id)
      local own, theirs = s:client(), s:client { tenant = id }
      assert.are.equal(2, own.kme:list_devices().totalCount)
      assert.are.equal(7, theirs.kme:list_devices().totalCount)
      assert.is_true(s:stats().requests >= 2)
    end)
  end)
end)
