-- Testing your own automation against the Knox simulator (README, "Testing
-- your own automation"). Run it with: busted examples/automation_spec.lua
local testing = require "knox.sim.testing"

-- The automation under test: unassign every KME device using a profile,
-- and return the IMEIs it unassigned.
local function release_devices(client, profile_name)
  local ids = {}
  for device in client.kme:each_device { pageSize = 100 } do
    if device.profileName == profile_name then ids[#ids + 1] = device.mei end
  end
  if #ids > 0 then client.kme:unassign_profile { deviceIds = ids } end
  return ids
end

describe("release_devices", function()
  -- One simulator for this block: started before its first test, stopped
  -- after its last one, whether the tests pass or fail.
  local sim = testing.use {
    devices = 0,                           -- nothing but the data below
    data = {
      kme = {
        profiles = { { profileName = "Kiosk" }, { profileName = "Office" } },
        devices = {
          { mei = "490154203237518", profileName = "Kiosk" },
          { mei = "356938035643809", profileName = "Kiosk" },
          { mei = "352099001761481", profileName = "Office" },
        },
      },
      kg = { devices = { { deviceUid = "353918058381697", status = "Pending" } } },
    },
  }

  before_each(function() sim:reset() end)   -- fresh data for every test

  it("unassigns exactly the devices of the profile", function()
    local client = sim:client()
    assert.are.same({ "490154203237518", "356938035643809" }, release_devices(client, "Kiosk"))
    -- what the script sent, from the simulator's request log
    local put = sim:requests { method = "PUT", path = "unassignProfile" }
    assert.are.equal(1, #put)
    assert.matches("490154203237518", put[1].body)
    local left = client.kme:list_devices().deviceList
    assert.is_nil(left[1].profileName)
    assert.are.equal("Office", left[3].profileName)
  end)

  it("rides out a rate limit", function()
    sim:fault { match = { method = "GET", path = "/kcs/v1/kme/devices/list" }, status = 429, retry_after = 1 }
    assert.are.equal(2, #release_devices(sim:client(), "Kiosk"))
    local lists = sim:requests { path = "devices/list" }
    assert.are.equal(429, lists[1].status)  -- the first try met the fault ...
    assert.are.equal(200, lists[2].status)  -- ... the retry went through
  end)

  it("sees a Knox Guard approval complete when the clock moves", function()
    local client = sim:client()
    client.kg:approve { deviceUid = "353918058381697", approveId = "LOAN-1" }
    local function status()
      return client.kg:list_devices { search = "353918058381697" }.deviceList[1].status
    end
    assert.are.equal("Activating", status())
    sim:clock(60)                          -- the device confirms a minute later
    assert.are.equal("Active", status())
  end)
end)
