-- Per-tenant fleets: every managed customer has its own devices and
-- profiles, of its own size, from the seed; the MSP's own tenant differs
-- from all of them; a legacy call never reaches a managed tenant.
local sim = require "support.sim"

describe("knox.sim tenants", function()
  local s, L

  lazy_setup(function()
    s = sim.start { devices = 40, seed = "tenants" }
    L = sim.legacy(s)
  end)

  lazy_teardown(function()
    if L then L.close() end
    if s then s:stop() end
  end)

  before_each(function() s:reset() end)

  local function as(tenant, path, opts)
    opts = opts or {}
    local h = sim.bearer(s)
    if tenant ~= s.customer_id then h["x-wsm-managed-tenantid"] = tenant end  -- the MSP's own: no header
    return s:request(opts.method or "GET", path, { headers = h, body = opts.body })
  end

  it("gives every tenant a fleet and profiles of its own", function()
    local tenants = s:request("GET", "/__sim/info").json.tenants
    assert.are.equal(3, #tenants)
    assert.is_true(tenants[1].own)
    assert.are.equal(40, tenants[1].devices)
    local sizes, meis, profile_ids = {}, {}, {}
    for _, t in ipairs(tenants) do
      assert.is_nil(sizes[t.devices], "two tenants of size " .. t.devices)
      sizes[t.devices] = true
      local list = as(t.customerId, "/kcs/v1/kme/devices/list?pageSize=1000").json
      assert.are.equal(t.devices, list.totalCount)
      assert.are.equal(t.devices, #list.deviceList)
      for _, d in ipairs(list.deviceList) do
        assert.is_nil(meis[d.mei], d.mei .. " is in two tenants")
        meis[d.mei] = t.customerId
        assert.are.equal(t.companyName, d.tenantName)
      end
      for _, p in ipairs(as(t.customerId, "/kcs/v1/kme/profiles/list").json.profileList) do
        assert.is_nil(profile_ids[p.profileId])
        profile_ids[p.profileId] = true
      end
      local kc = as(t.customerId, "/kc/v2/devices/getDevices", { method = "POST", body = {} }).json
      assert.are.equal(t.devices, kc.totalCount)
    end
  end)

  it("keeps one tenant's changes out of the others", function()
    local tenants = s:request("GET", "/__sim/info").json.tenants
    local a, b = tenants[2], tenants[3]
    local da = as(a.customerId, "/kcs/v1/kme/devices/list").json.deviceList[1]
    local r = as(a.customerId, "/kcs/v1/kme/devices/delete", { method = "POST",
      body = { devices = { imeiOrSerials = { da.mei } } } })
    assert.are.same({ da.mei }, r.json.successDeviceList)
    assert.are.equal(a.devices - 1, as(a.customerId, "/kcs/v1/kme/devices/list").json.totalCount)
    assert.are.equal(b.devices, as(b.customerId, "/kcs/v1/kme/devices/list").json.totalCount)
    assert.are.equal(40, s:request("GET", "/kcs/v1/kme/devices/list", { headers = sim.bearer(s) }).json.totalCount)
    -- a device of tenant b is unknown in tenant a
    local db = as(b.customerId, "/kcs/v1/kme/devices/list").json.deviceList[1]
    local pid = as(a.customerId, "/kcs/v1/kme/profiles/list").json.profileList[1].profileId
    r = as(a.customerId, "/kcs/v1/kme/devices/assignProfile", { method = "PUT",
      body = { profileId = pid, deviceIds = { db.mei } } })
    assert.are.equal(404, r.status)
    assert.are.same({ db.mei }, r.json.notFoundDeviceList)
  end)

  it("never lets a legacy call reach a managed tenant (the header is ignored)", function()
    local tenants = s:request("GET", "/__sim/info").json.tenants
    local h = L.headers()
    local own = s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).json
    h["x-wsm-managed-tenantid"] = tenants[2].customerId
    local with = s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).json
    assert.are.equal(own.totalCount, with.totalCount)
    assert.are.equal(own.deviceList[1].mei, with.deviceList[1].mei)
    h["x-wsm-managed-tenantid"] = "0000000000"       -- not even checked
    assert.are.equal(200, s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).status)
    -- over OAuth an unknown tenant is refused
    assert.are.equal(403, as("0000000000", "/kcs/v1/kme/devices/list").status)
  end)

  it("gives a customer the MSP creates an empty account, and one it links its own fleet", function()
    local h = sim.bearer(s, "msp")
    local c = s:request("POST", "/msp/v1/managedCustomers", { headers = h, body = { companyName = "Fresh Co",
      email = "it@fresh.example", country = "US" } }).json
    assert.are.equal(0, as(c.customerId, "/kcs/v1/kme/devices/list").json.totalCount)
    local pool = s:request("GET", "/__sim/info").json.msp_link_candidates
    local ok
    for _, p in ipairs(pool) do
      if p.link == "ok" then ok = p end
    end
    s:request("POST", "/msp/v1/managedCustomers/link", { headers = h, body = { customerId = ok.customerId } })
    local list = as(ok.customerId, "/kcs/v1/kme/devices/list").json
    assert.is_true(list.totalCount > 0)
    assert.are_not.equal(40, list.totalCount)
  end)

  it("derives every tenant from the seed", function()
    local function shape(x)
      local out = {}
      for _, t in ipairs(x:request("GET", "/__sim/info").json.tenants) do
        local h = sim.bearer(x)
        if not t.own then h["x-wsm-managed-tenantid"] = t.customerId end
        local d = x:request("GET", "/kcs/v1/kme/devices/list?pageSize=1", { headers = h }).json.deviceList[1]
        out[#out + 1] = t.customerId .. ":" .. t.devices .. ":" .. d.mei .. ":" .. d.id
      end
      return table.concat(out, ",")
    end
    local a = sim.start { devices = 40, seed = "tenants" }
    local c = sim.start { devices = 40, seed = "other" }
    local same, other, mine = shape(a), shape(c), shape(s)
    a:stop()
    c:stop()
    assert.are.equal(mine, same)
    assert.are_not.equal(mine, other)
  end)
end)
