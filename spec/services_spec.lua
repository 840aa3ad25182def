-- The service tables (client.kme, .kg, .msp, .kdp, .kc) and their page
-- iterators against the simulator.
local knox = require "knox"
local sim_support = require "support.sim"
local helpers = require "helpers"

describe("knox services against the simulator", function()
  local sim, client

  setup(function()
    sim = sim_support.start { devices = 230 }
    client = knox.client {
      base_url = sim.url,
      auth = {
        knox.auth.keys { file = sim.keys_file, client_id = sim.client_id },
        knox.auth.oauth2 { client_id = sim.oauth.client_id, client_secret = sim.oauth.client_secret,
          scope = sim.oauth.scope },
      },
    }
  end)

  teardown(function()
    if client then client:close() end
    if sim then sim:stop() end
  end)

  before_each(function() sim:reset() end)

  it("walks every KME device once, one page per request", function()
    local first = client.kme:list_devices { pageSize = 1 }
    local total = first.totalCount
    assert.is_true(total >= 230)
    local seen, n = {}, 0
    for d in client.kme:each_device { pageSize = 100 } do
      n = n + 1
      local id = d.deviceId or d.imei or d.serialNumber or d.deviceUid
      assert.is_not_nil(id)
      assert.is_nil(seen[id], "device seen twice: " .. tostring(id))
      seen[id] = true
    end
    assert.are.equal(total, n)
    local pages = {}
    for _, r in ipairs(sim:requests()) do
      if r.path == "/kcs/v1/kme/devices/list" then pages[#pages + 1] = r.query end
    end
    assert.are.equal(1 + math.ceil(total / 100), #pages)
    assert.matches("pageNum=2", pages[4])
    assert.matches("pageSize=100", pages[4])
  end)

  it("fills path parameters and raises the service's own errors", function()
    local list = client.kme:list_profiles()
    local p = (list.profileList or list.profiles or {})[1]
    assert.is_table(p)
    local got = client.kme:get_profile { profileId = p.profileId }
    assert.is_table(got)
    local e = helpers.raises(client.kme.get_profile, client.kme, { profileId = "a/b?c" })
    assert.are.equal("PROFILE_NOT_FOUND", e.name)
    assert.are.equal("kme", e.service)
    local r = sim:requests()
    assert.are.equal("/kcs/v1/kme/profiles/a%2Fb%3Fc/get", r[#r].path)
  end)

  it("locks a Knox Guard device with the legacy token (a POST list is retried like a read)", function()
    local page = client.kg:list_devices { pageNum = 0, pageSize = 3 }
    local d = page.deviceList[1]
    local res = client.kg:lock { deviceUid = d.deviceUid, message = "overdue" }
    assert.are.equal("SUCCESS", res.result)
    local e = helpers.raises(client.kg.lock, client.kg, { deviceUid = "nope" })
    assert.is_true(e:is "DEVICE_NOT_FOUND")
    assert.are.equal("kg", e.service)
    local n = 0
    for _ in client.kg:each_device { pageSize = 50 } do n = n + 1 end
    assert.is_true(n >= 230)
  end)

  it("manages MSP customers over OAuth", function()
    local list = client.msp:list_customers()
    local c = list.customers[1]
    local one = client.msp:get_customer { customerId = c.customerId }
    assert.are.equal(c.customerId, (one.customer or one).customerId)
    local r = sim:requests()
    assert.matches("^Bearer ", r[#r].headers.authorization or r[#r].headers.Authorization)
  end)

  it("lists KDP customers and Knox Configure devices", function()
    local n = 0
    for _ in client.kc:each_device { pageSize = 100 } do n = n + 1 end
    assert.is_true(n >= 1)
    local customers = client.kdp:list_customers { resellerId = sim.reseller_id }
    assert.is_table(customers)
  end)

  it("rejects arguments that are not tables", function()
    assert.has_error(function() client.kme:get_profile "x" end)
    assert.has_error(function() client.kme:list_devices({}, "x") end)
  end)
end)
