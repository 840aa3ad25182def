--- bench/json.lua: knox.json against lua-cjson on a Knox-like device list.
-- Generates ~2.5 MB of JSON (10,000 device objects), then decodes and
-- encodes it with both libraries in the same process, alternating, several
-- rounds, and prints the best time of each and the ratio knox / cjson.
-- Run: LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/json.lua [rounds]
local core = require "knox.core"
local cjson = require "cjson"

local json = core.json
local rounds = tonumber(arg and arg[1]) or 7

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

local clock = os.clock

--- Best of `rounds` timings of fn(arg), alternating with other's timings.
local function best_pair(fa, fb, x)
  local ta, tb = math.huge, math.huge
  for _ = 1, rounds do
    collectgarbage()
    collectgarbage("stop")
    local t0 = clock()
    fa(x)
    local t1 = clock()
    collectgarbage("restart")
    collectgarbage()
    collectgarbage("stop")
    local t2 = clock()
    fb(x)
    local t3 = clock()
    collectgarbage("restart")
    ta = math.min(ta, t1 - t0)
    tb = math.min(tb, t3 - t2)
  end
  return ta, tb
end

local value = device_list(10000)
local text = json.encode(value)

-- Sanity: both read the same document the same way.
local a, b = json.decode(text), cjson.decode(text)
assert(#a.devices == 10000 and #b.devices == 10000)
for _, i in ipairs { 1, 777, 10000 } do
  for k, v in pairs(b.devices[i]) do
    local w = a.devices[i][k]
    if type(v) == "table" then
      assert(#v == #w, k)
    elseif v ~= w then
      error(("field %s of device %d differs: %s vs %s"):format(k, i, tostring(w), tostring(v)))
    end
  end
end
assert(json.decode(cjson.encode(value)).devices[5000].uploadDate == value.devices[5000].uploadDate)

print(("document: %.2f MB, %d devices, %d rounds (best of each)"):format(#text / 1e6, #value.devices, rounds))

local kd, cd = best_pair(json.decode, cjson.decode, text)
print(("decode  knox %7.2f ms   cjson %7.2f ms   ratio %.2fx"):format(kd * 1e3, cd * 1e3, kd / cd))

local ke, ce = best_pair(json.encode, cjson.encode, value)
print(("encode  knox %7.2f ms   cjson %7.2f ms   ratio %.2fx"):format(ke * 1e3, ce * 1e3, ke / ce))

local ks = best_pair(function(v) return json.encode(v, { sort_keys = true }) end, cjson.encode, value)
print(("encode sort_keys knox %7.2f ms                   ratio %.2fx"):format(ks * 1e3, ks / ce))

-- Full-precision floats take knox's slower (printf + strtod) path, while
-- cjson prints 14 digits, which does not round-trip. Shown for honesty.
local floats = {}
for i = 1, 10000 do floats[i] = math.random() * 1000 end
local kf, cf = best_pair(json.encode, cjson.encode, floats)
print(("encode 10,000 random 17-digit floats: knox %.2f ms, cjson %.2f ms, ratio %.2fx"):format(
  kf * 1e3, cf * 1e3, kf / cf))
