-- A million devices: the simulator generates them lazily (knox.sim.fleet),
-- so it starts at once, stays well under 1 GiB and pages, finds and
-- changes any of them. No timing assertions: bench/sim_scale.lua measures.
local sim = require "support.sim"

-- The resident set size (kB) of the process listening on port.
local function rss_kb(port)
  local p = assert(io.popen("ss -Htlnp 'sport = :" .. port .. "' 2>/dev/null"))
  local out = p:read("a")
  p:close()
  local pid = out:match("pid=(%d+)")
  if not pid then return nil end
  local status = sim.read_file("/proc/" .. pid .. "/status") or ""
  return tonumber(status:match("VmRSS:%s*(%d+)"))
end

describe("knox.sim with a million devices", function()
  local s

  lazy_setup(function()
    s = sim.start { devices = 1000000, seed = "scale", start_timeout = 60 }
  end)

  lazy_teardown(function()
    if s then s:stop() end
  end)

  it("pages, finds and deletes devices in well under 1 GiB", function()
    local h = sim.bearer(s)
    local c = s:connect(60)
    local last = c:request("GET", "/kcs/v1/kme/devices/list?pageSize=1000&pageNum=999", { headers = h })
    assert.are.equal(200, last.status)
    assert.are.equal(1000000, last.json.totalCount)
    assert.are.equal(1000, #last.json.deviceList)
    local past = c:request("GET", "/kcs/v1/kme/devices/list?pageSize=1000&pageNum=1000", { headers = h })
    assert.are.equal(0, #past.json.deviceList)
    for p = 0, 19 do
      assert.are.equal(200, c:request("GET", "/kcs/v1/kme/devices/list?pageSize=1000&pageNum=" .. p * 50,
        { headers = h }).status)
    end
    local d = last.json.deviceList[1000]
    local r = c:request("POST", "/kcs/v1/kme/devices/delete", { headers = h,
      body = { devices = { imeiOrSerials = { d.mei } } } })
    assert.are.same({ d.mei }, r.json.successDeviceList)
    last = c:request("GET", "/kcs/v1/kme/devices/list?pageSize=1000&pageNum=999", { headers = h })
    assert.are.equal(999999, last.json.totalCount)
    assert.are.equal(999, #last.json.deviceList)
    r = c:request("POST", "/kc/v2/devices/getDevices", { headers = h, body = { pageSize = 100, pageNum = 9999 } })
    assert.are.equal(100, #r.json.devices)
    assert.are.equal(10000, r.json.totalPages)
    -- filters decide generated devices from their index, without making them
    r = c:request("POST", "/kc/v2/devices/getDevices", { headers = h, body = { deviceState = { "Configured" },
      pageSize = 100, pageNum = 2499 } })
    assert.are.equal(250000, r.json.totalCount)
    assert.are.equal(100, #r.json.devices)
    assert.are.equal("CONFIGURED", r.json.devices[100].status)
    r = c:request("GET", "/kcs/v1/rp/devices?resellerId=" .. s.reseller_id .. "&customerId=" .. s.customer_id
      .. "&pageSize=1000&pageNum=999", { headers = h })
    assert.are.equal(1000000, r.json.totalCount)
    assert.are.equal(1000, r.json.size)
    c:close()
    local kb = rss_kb(s.port)
    assert.is_number(kb)
    assert.is_true(kb < 1024 * 1024, "RSS " .. kb .. " kB")
    assert.is_true(kb < 200 * 1024, "RSS " .. kb .. " kB: the fleet should not be stored")
  end)
end)
