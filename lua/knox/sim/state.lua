--- knox.sim state: the simulated Knox account, in memory, generated
-- deterministically from --seed (a splitmix64 generator of our own, so the
-- same seed gives the same ids on every machine and Lua build).
--
-- One account plays every role (customer, reseller, MSP): its own tenant
-- (customer_id) holds --devices N devices in KME, Knox Guard and Knox
-- Configure; every MSP managed customer (and every Knox customer an MSP
-- could link) is a tenant of its own with its own devices, profiles and
-- licenses, of a different size (from the seed), reached with
-- x-wsm-managed-tenantid over OAuth. A customer the MSP creates through
-- the API is a new Knox account: no devices (the simulator's choice).
--
-- Devices are not stored: device i of a tenant is a function of the seed,
-- the tenant and i (see knox.sim.fleet). Its identifiers encode the tenant
-- and a permutation of i, so a look-up by IMEI, serial number or a
-- service's id is arithmetic, not a table: IMEI "35" + 5-digit tenant code
-- + 7-digit permuted index + Luhn digit; serial "R5" + 9 base-34 digits of
-- the same number; hex and alphanumeric ids multiply it by an odd
-- constant modulo 2^48. All of this is the simulator's choice.
--
-- Timestamps are epoch milliseconds counted from a fixed base (2026-01-01
-- UTC) so that generated data does not depend on when the simulator runs;
-- changes made through the API are stamped with the simulator's clock.
local codec = require "knox.sim.codec"

local M = {}

M.BASE_MS = 1767225600000

local MODELS = { "SM-G991B", "SM-A525F", "SM-S911B", "SM-A536B", "SM-T870", "SM-X200", "SM-G736B", "SM-A135F" }

local Rng = {}
Rng.__index = Rng

local function seed_int(seed)
  local h = -3750763034362895579  -- FNV-1a 64 offset basis
  for i = 1, #seed do
    h = (h ~ seed:byte(i)) * 1099511628211
  end
  return h
end

--- A deterministic generator seeded by any string or number.
function M.rng(seed)
  return setmetatable({ s = seed_int(tostring(seed)) }, Rng)
end

function Rng:next()
  self.s = self.s + -7046029254386353131  -- 0x9E3779B97F4A7C15
  local z = self.s
  z = (z ~ (z >> 30)) * -4658895280553007687  -- 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * -7723592293110705685  -- 0x94D049BB133111EB
  return z ~ (z >> 31)
end

--- Uniform integer in 1..n.
function Rng:int(n)
  return (self:next() >> 1) % n + 1
end

function Rng:digits(n)
  local t = {}
  for i = 1, n do t[i] = string.char(47 + self:int(10)) end
  return table.concat(t)
end

local ALNUM = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"

function Rng:alnum(n)
  local t = {}
  for i = 1, n do
    local k = self:int(#ALNUM)
    t[i] = ALNUM:sub(k, k)
  end
  return table.concat(t)
end

function Rng:hex(n)
  local t = {}
  for i = 1, n do
    local k = self:int(16)
    t[i] = ("0123456789abcdef"):sub(k, k)
  end
  return table.concat(t)
end

function Rng:pick(list)
  return list[self:int(#list)]
end

M.Rng = Rng

-- Identifier arithmetic ------------------------------------------------------

local P = 10000000           -- generated indexes per tenant: 7 IMEI digits
local A = 3141593            -- the index permutation's multiplier (coprime to 10)
local MASK48 = (1 << 48) - 1

local function modinv(a, m)
  local t, newt, r, newr = 0, 1, m, a
  while newr ~= 0 do
    local q = r // newr
    t, newt = newt, t - q * newt
    r, newr = newr, r - q * newr
  end
  return t % m
end
local A_INV = modinv(A, P)

-- The inverse of an odd a modulo 2^64 (Newton's iteration), hence 2^48.
local function inv_odd(a)
  local x = a
  for _ = 1, 6 do x = x * (2 - a * x) end
  return x
end

-- Odd multipliers per identifier kind (arbitrary; the simulator's choice).
local MUL = { kme = 0x5DEECE66D, kg = 0x2545F4914F6D, kc = 0x9E3779B97F5, kdp = 0x27BB2EE687B, upload = 0x1F123BB5 }
local INV = {}
for k, v in pairs(MUL) do INV[k] = inv_odd(v) & MASK48 end
local KINDS = { "kc", "kdp", "kg", "kme", "upload" }

local B34 = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
local B34_VAL = {}
for i = 1, #B34 do B34_VAL[B34:byte(i)] = i - 1 end

local function base34(x, width)
  local t = {}
  for i = width, 1, -1 do
    local r = x % 34
    t[i] = B34:sub(r + 1, r + 1)
    x = x // 34
  end
  return table.concat(t)
end

local function unbase34(s)
  local x = 0
  for i = 1, #s do
    local v = B34_VAL[s:byte(i)]
    if not v then return nil end
    x = x * 34 + v
  end
  return x
end

M.MODELS = MODELS

local Tenant = {}
Tenant.__index = Tenant
M.Tenant = Tenant

--- The permuted number of generated index i (unique in the whole state).
function Tenant:num(i)
  return self.code * P + (i * A + self.off) % P
end

--- The generated index a number names in this tenant, or nil.
function Tenant:index_of_num(num)
  if not num or num // P ~= self.code then return nil end
  local i = ((num % P - self.off) % P * A_INV) % P
  if i < 1 or i > self.n then return nil end
  return i
end

-- Luhn sums of the permuted index's 7 digits (IMEI positions 8-14,
-- doubling 8, 10, 12, 14), split 3 + 4 digits: two look-ups per IMEI.
local function luhn_digits(x, ndigits, double_first)
  local sum, pos = 0, 0
  for k = ndigits - 1, 0, -1 do
    local dgt = (x // 10 ^ k) % 10 // 1
    pos = pos + 1
    if (pos % 2 == 1) == double_first then
      dgt = dgt * 2
      if dgt > 9 then dgt = dgt - 9 end
    end
    sum = sum + dgt
  end
  return math.tointeger(sum)
end

local LUHN_HI, LUHN_LO = {}, {}
for x = 0, 999 do LUHN_HI[x] = luhn_digits(x, 3, true) end
for x = 0, 9999 do LUHN_LO[x] = luhn_digits(x, 4, false) end

-- Three base-34 digits per look-up (made on first use: 34^3 strings).
local B34_3
local function b34_table()
  B34_3 = {}
  for x = 0, 34 ^ 3 - 1 do B34_3[x] = base34(x, 3) end
  return B34_3
end

local D3, D4, D1 = {}, {}, {}
for x = 0, 9999 do D4[x] = string.format("%04d", x) end
for x = 0, 999 do D3[x] = string.format("%03d", x) end
for x = 0, 9 do D1[x] = tostring(x) end

function Tenant:imei(i)
  local p = (i * A + self.off) % P
  if not self.luhn_head then
    self.luhn_head = luhn_digits(35 * 100000 + self.code, 7, false)
    self.head = string.format("35%05d", self.code)
  end
  local hi, lo = p // 10000, p % 10000
  return self.head .. D3[hi] .. D4[lo] .. D1[(10 - (self.luhn_head + LUHN_HI[hi] + LUHN_LO[lo]) % 10) % 10]
end

function Tenant:serial(i)
  local T = B34_3 or b34_table()
  local x = self:num(i)
  return "R5" .. T[x // 1544804416] .. T[x // 39304 % 39304] .. T[x % 39304]
end

--- A 24-hex-digit id of a service's device (kind: kme, kc, kdp, upload).
function Tenant:hex_id(kind, i)
  return string.format("%s%012x", self.hex[kind], (self:num(i) * MUL[kind]) & MASK48)
end

--- Knox Guard's objectId: 20 characters, alphanumeric.
function Tenant:object_id(i)
  local T = B34_3 or b34_table()
  local x = (self:num(i) * MUL.kg) & MASK48
  local hi = x // 1544804416  -- 34^6
  return self.alnum .. B34:sub(hi // 39304 + 1, hi // 39304 + 1) .. T[hi % 39304] .. T[x // 39304 % 39304]
    .. T[x % 39304]
end

function Tenant:approve_id(i)
  return string.format("LOAN-%05d%07d", self.code, (i * A + self.off) % P)
end

function Tenant:model(i)
  return MODELS[((i * 2654435761 + self.mix) >> 13) % #MODELS + 1]
end

--- When device i was uploaded (epoch ms): spread back from BASE_MS.
function Tenant:time(i)
  return M.BASE_MS - (self.n - i + 1) * self.step
end

--- The generated index an identifier names: an IMEI, a serial number, or
-- (with kind) that service's id; nil otherwise. Never raises.
function Tenant:decode(id, kind)
  if type(id) ~= "string" then return nil end
  local n = #id
  if n == 15 then
    local code, p = id:match("^35(%d%d%d%d%d)(%d%d%d%d%d%d%d)%d$")
    if code and codec.valid_imei(id) then return self:index_of_num(tonumber(code) * P + tonumber(p)) end
  elseif n == 11 and id:sub(1, 2) == "R5" then
    return self:index_of_num(unbase34(id:sub(3)))
  elseif kind == "kg" and n == 20 and id:sub(1, 10) == self.alnum then
    local x = unbase34(id:sub(11))
    if x then return self:index_of_num((x * INV.kg) & MASK48) end
  elseif kind and n == 24 and self.hex[kind] and id:sub(1, 12) == self.hex[kind] then
    local x = id:sub(13):match("^%x+$") and tonumber(id:sub(13), 16)
    if x then return self:index_of_num((x * INV[kind]) & MASK48) end
  elseif kind == "kg" and n == 17 and id:sub(1, 5) == "LOAN-" then
    local code, p = id:match("^LOAN%-(%d%d%d%d%d)(%d%d%d%d%d%d%d)$")
    if code then return self:index_of_num(tonumber(code) * P + tonumber(p)) end
  end
  return nil
end

-- State ------------------------------------------------------------------------

local State = {}
State.__index = State

--- A unique identifier from gen() (retrying on collision with used).
local function unique(used, gen)
  while true do
    local v = gen()
    if not used[v] then
      used[v] = true
      return v
    end
  end
end

--- A new identifier of the given kind, unique across the whole state.
function State:new_id(kind, rng)
  rng = rng or self.rng
  return unique(self.used, function()
    if kind == "customer" then return "1" .. rng:digits(9) end
    if kind == "objectId" then return "U" .. rng:alnum(19) end
    if kind == "license" then return "KC-" .. rng:alnum(5) .. "-" .. rng:alnum(5) .. "-" .. rng:alnum(5) end
    return rng:hex(24)
  end)
end

-- Services with per-tenant data, each building its part of a new tenant.
local SERVICES = { "kme", "kg", "kc" }

--- A new tenant record: identity, size and every service's data.
function State:make_tenant(customer_id, ndevices, name)
  local ordinal = self.next_ordinal
  self.next_ordinal = ordinal + 1
  local rng = M.rng(self.seed .. ":" .. customer_id)
  local t = setmetatable({ customer_id = customer_id, name = name or customer_id, ordinal = ordinal,
    n = ndevices, code = (ordinal * 7919 + self.code_base) % 100000, off = rng:int(P) - 1,
    mix = rng:int(1 << 30), hex = {}, alnum = rng:alnum(10), rng = rng }, Tenant)
  for _, kind in ipairs(KINDS) do t.hex[kind] = rng:hex(12) end  -- in a fixed order: the same ids every run
  -- an hour apart, or closer for big fleets so that they span at most 3 years
  t.step = math.max(1000, math.min(3600000, (3 * 365 * 86400000) // math.max(1, ndevices)))
  for _, s in ipairs(SERVICES) do t[s] = require("knox.sim." .. s).build(self, t) end
  return t
end

--- The tenant (KME/KG/KC data) of a customer id, created on first use.
function State:tenant(customer_id)
  customer_id = customer_id or self.customer_id
  local t = self.tenants[customer_id]
  if not t then
    local size = self.sizes[customer_id] or 0
    t = self:make_tenant(customer_id, size, self.names[customer_id])
    self.tenants[customer_id] = t
  end
  return t
end

--- Declares a customer's fleet size and name before its tenant exists.
function State:declare(customer_id, size, name)
  self.sizes[customer_id], self.names[customer_id] = size, name
end

-- A fleet size for another customer: a fraction of --devices from the
-- seed, different from every size already given out (when n > 0).
local function other_size(rng, n, taken)
  if n == 0 then return 0 end
  local size = math.max(1, (n * (30 + rng:int(60))) // 100)
  while taken[size] do size = size + 1 end
  taken[size] = true
  return size
end

function State:build_world()
  local rng = self.rng
  self.customer_id = self:new_id("customer")
  self.reseller_id = "RS" .. rng:digits(8)
  self.reseller_name = "Sim Reseller Ltd"
  self.customer_name = "Sim Customer Corp"
  self.tenants, self.sizes, self.names = {}, {}, {}
  self.next_ordinal, self.code_base = 0, rng:int(100000) - 1
  self:declare(self.customer_id, self.ndevices, self.customer_name)
  -- MSP portal: customers this MSP manages, and other Knox customers it
  -- could link (each one exercising a documented link failure). These are
  -- the raw records msp.lua renders.
  local function customer(fields)
    local c = { customerId = self:new_id("customer"), officeNumber = "+1-555-" .. rng:digits(4), country = "US",
      services = { "KME", "KC" }, created = M.BASE_MS - rng:int(365) * 86400000 }
    for k, v in pairs(fields) do c[k] = v end
    c.modified = c.created + rng:int(30) * 86400000
    return c
  end
  self.msp = {
    customers = {
      customer { companyName = "Northwind Traders", email = "admin@northwind.example", status = "Active",
        managementType = "FullyManaged", city = "Seattle", stateOrProvince = "WA", zipCode = "98101",
        street1 = "1 Harbor Way", website = "https://northwind.example", industry = "Retail",
        companySize = "100-499" },
      customer { companyName = "Contoso Ltd", email = "it@contoso.example", status = "Active",
        managementType = "JointlyManaged", city = "Austin", stateOrProvince = "TX", zipCode = "73301",
        street1 = "500 Congress Ave", website = "https://contoso.example", industry = "Manufacturing",
        companySize = "1000+" },
    },
    pool = {
      customer { companyName = "Fabrikam Inc", email = "ops@fabrikam.example", link = "ok" },
      customer { companyName = "Pending Approval Co", email = "new@pending.example", link = "not_approved" },
      customer { companyName = "Managed Elsewhere AG", email = "it@elsewhere.example", link = "managed" },
      customer { companyName = "Far Away Pty", email = "it@faraway.example", country = "AU", link = "region" },
    },
  }
  local taken = { [self.ndevices] = true }
  for _, list in ipairs { self.msp.customers, self.msp.pool } do
    for _, c in ipairs(list) do self:declare(c.customerId, other_size(rng, self.ndevices, taken), c.companyName) end
  end
  -- Knox Deployment Program: the reseller's customers, uploads and devices
  -- (the account's own tenant's devices, as uploaded by this reseller).
  self.kdp = {
    customers = {
      { customerId = self.customer_id, customerName = self.customer_name, email = "admin@simcustomer.example" },
      { customerId = self:new_id("customer"), customerName = "Tailspin Toys", email = "it@tailspin.example" },
      { customerId = self:new_id("customer"), customerName = "Wide World Importers", email = "it@wwi.example" },
    },
    transactions = {},
  }
  self.kdp.fleet = require("knox.sim.kdp").build(self, self:tenant(self.customer_id))
end

--- A fresh state for seed and ndevices.
function M.new(seed, ndevices)
  local self = setmetatable({ seed = tostring(seed), ndevices = ndevices, used = {}, BASE_MS = M.BASE_MS }, State)
  self.rng = M.rng(self.seed)
  self:build_world()
  return self
end

return M
