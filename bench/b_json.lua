--- B6: knox.json decode and encode of a Knox-like device page (10,000
-- devices, about 2.5 MB) against lua-cjson and dkjson (Debian lua-dkjson,
-- pure Lua), in this process, alternating, process CPU time (os.clock)
-- with the collector stopped during each timed call and run between them.
local core = require "knox.core"
local cjson = require "cjson"

local json = core.json

local function device_list(n)
  math.randomseed(42)
  local statuses = { "Accepted", "Pending", "Rejected", "Uploaded", "Assigned" }
  local models = { "SM-G991B", "SM-A536B", "SM-T875", "SM-X906B", "SM-S918B" }
  local devices = {}
  for i = 1, n do
    local tags = { "kme", "fleet-" .. (i % 17) }
    if i % 3 == 0 then tags[#tags + 1] = "région-eu" end
    devices[i] = {
      deviceId = string.format("35%013d", 8240051111 + i * 7),
      serialNumber = string.format("R58M%08X", 0x10000000 + i * 977),
      model = models[i % #models + 1],
      profileId = string.format("%08x-%04x-4%03x-a%03x-%012x", math.random(0, 0x7fffffff),
        i % 0xffff, i % 0xfff, (i * 3) % 0xfff, i * 104729),
      status = statuses[i % #statuses + 1],
      uploadDate = 1735689600000 + i * 86413,
      tags = tags,
      userId = core.null,
      approved = i % 4 ~= 0,
      batteryLevel = math.random(0, 1000000) / 10000,
    }
  end
  return { totalCount = n, pageNum = 0, pageSize = n, devices = devices }
end

-- CPU seconds of one call of fn(x), the collector stopped while it runs.
local function timed(fn, x)
  collectgarbage()
  collectgarbage("stop")
  local t0 = os.clock()
  fn(x)
  local t = os.clock() - t0
  collectgarbage("restart")
  return t
end

return function(lib)
  local n = lib.size(10000, 1000)
  local value = device_list(n)
  local text = json.encode(value)

  -- the same reading of the same document by all three
  local dk = require "dkjson"
  local a, b, c = json.decode(text), cjson.decode(text), dk.decode(text)
  for _, i in ipairs { 1, n // 2, n } do
    for k, v in pairs(b.devices[i]) do
      local w, x = a.devices[i][k], c.devices[i][k]
      if type(v) == "table" then
        assert(#v == #w and #v == #x, k)
      elseif v ~= cjson.null then
        assert(v == w and v == x, ("field %s of device %d differs"):format(k, i))
      end
    end
  end

  local mb = #text / 1e6
  local ms = function(s) return ("%.1f ms"):format(s * 1e3) end
  for _, op in ipairs { "decode", "encode" } do
    local arg = op == "decode" and text or value
    local kf, cf = json[op], cjson[op]
    local ka, ca, r = lib.alternate(function() return timed(kf, arg) end, function() return timed(cf, arg) end)
    lib.row { id = "B6", what = ("JSON %s, %.2f MB, %d devices: knox.json"):format(op, mb, n), value = ms(ka.median),
      baseline = "lua-cjson " .. ms(ca.median), ratio = ("%.2fx"):format(r.median),
      spread = ("ratio %s; knox %s–%s, cjson %s–%s"):format(lib.range(r), ms(ka.min), ms(ka.max), ms(ca.min),
        ms(ca.max)), target = "≤ 1.3x lua-cjson", verdict = lib.verdict(r.median, 1.3) }
    -- dkjson is pure Lua and some 10-30x slower: fewer rounds
    -- (dkjson encodes its own reading of the page: it knows no light userdata null)
    local df = op == "decode" and function(x) return dk.decode(x, 1, dk.null) end or dk.encode
    local darg = op == "decode" and text or dk.decode(text, 1, dk.null)
    local da, _, dr = lib.alternate(function() return timed(df, darg) end, function() return timed(kf, arg) end,
      lib.size(3, 1))
    lib.row { id = "B6", what = ("JSON %s, %.2f MB: dkjson (pure Lua)"):format(op, mb), value = ms(da.median),
      baseline = "knox.json (above)", ratio = ("knox %.1fx faster"):format(dr.median),
      spread = ("speed-up %s"):format(lib.range(dr, "%.1f")), target = "report", verdict = "reported" }
  end
end
