--- knox.sim state: the simulated Knox account, in memory, generated
-- deterministically from --seed (a splitmix64 generator of our own, so the
-- same seed gives the same ids on every machine and Lua build) with
-- --devices N devices preloaded in KME, Knox Guard and Knox Configure.
--
-- One account plays every role (customer, reseller, MSP): its own tenant
-- (customer_id) holds KME/KG/KC data; MSP managed customers get their own
-- tenants, created on first use, reached with x-wsm-managed-tenantid.
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

function State:imei(rng)
  return unique(self.used, function()
    local body = "35" .. rng:digits(12)
    return body .. codec.luhn_digit(body)
  end)
end

function State:serial(rng)
  return unique(self.used, function() return "R5" .. rng:alnum(9) end)
end

--- A new identifier of the given kind, unique across the whole state.
function State:new_id(kind, rng)
  rng = rng or self.rng
  return unique(self.used, function()
    if kind == "customer" then return "1" .. rng:digits(9) end
    if kind == "objectId" then return rng:alnum(20) end
    if kind == "license" then return "KC-" .. rng:alnum(5) .. "-" .. rng:alnum(5) .. "-" .. rng:alnum(5) end
    return rng:hex(24)
  end)
end

local function index_by(list, field)
  local idx = {}
  for _, v in ipairs(list) do
    if v[field] ~= nil then idx[v[field]] = v end
  end
  return idx
end

-- KG device states the generator uses; see kg.lua for the state machine.
local KG_STATES = { "Active", "Active", "Active", "Active", "Active", "Active", "Locked", "Locked", "Accepted",
  "Completed" }

function State:build_tenant(customer_id, ndevices)
  local rng = M.rng(self.seed .. ":" .. customer_id)
  local t = { customer_id = customer_id, kme = {}, kg = {}, kc = {} }
  local profiles = {
    { profileId = self:new_id(nil, rng), profileName = "Corporate MDM", description = "Enroll in the corporate MDM",
      supportedMDM = "Knox Manage", mdmApkUrl = "https://mdm.example.com/agent.apk", doEnabled = true,
      aeEnabled = false, skipSetupWizard = false, allowUserCancel = false,
      supportEmailAddress = "it@example.com", supportPhoneNumber = "+1-555-0100",
      createdTime = M.BASE_MS - 200 * 86400000, updatedTime = M.BASE_MS - 200 * 86400000 },
    { profileId = self:new_id(nil, rng), profileName = "Kiosk", description = "Single-app kiosk devices",
      supportedMDM = "Knox Manage", mdmApkUrl = "https://mdm.example.com/kiosk.apk", doEnabled = true,
      aeEnabled = true, skipSetupWizard = true, allowUserCancel = false,
      supportEmailAddress = "kiosk@example.com", supportPhoneNumber = "+1-555-0101",
      createdTime = M.BASE_MS - 150 * 86400000, updatedTime = M.BASE_MS - 150 * 86400000 },
  }
  local kc_profiles = {
    { profileId = self:new_id(nil, rng), name = "Retail display", profileType = "ProfileWithoutKnox",
      knoxVersion = "3.0",
      deviceProductType = "phone", deviceLevel = "Knox", updateTime = M.BASE_MS - 100 * 86400000 },
    { profileId = self:new_id(nil, rng), name = "Field tablet", profileType = "ProfileWithKnox", knoxVersion = "3.4",
      deviceProductType = "tablet", deviceLevel = "Knox", updateTime = M.BASE_MS - 90 * 86400000 },
  }
  local licenses = {
    { licenseId = self:new_id(nil, rng), licenseKey = self:new_id("license", rng), name = "Knox Configure Dynamic",
      type = "Commercial", quantity = ndevices + 100, usedQuantity = 0,
      createTime = M.BASE_MS - 300 * 86400000, expiryTime = M.BASE_MS + 365 * 86400000 },
    { licenseId = self:new_id(nil, rng), licenseKey = self:new_id("license", rng), name = "Knox Configure Trial",
      type = "Trial", quantity = 30, usedQuantity = 0,
      createTime = M.BASE_MS - 10 * 86400000, expiryTime = M.BASE_MS + 80 * 86400000 },
  }
  local kme_devices, kg_devices, kc_devices = {}, {}, {}
  for i = 1, ndevices do
    local imei, serial, model = self:imei(rng), self:serial(rng), rng:pick(MODELS)
    local uploaded = M.BASE_MS - (ndevices - i + 1) * 3600000
    local kme = { deviceId = imei, imei = imei, serialNumber = serial, model = model,
      resellerId = self.reseller_id, resellerName = self.reseller_name,
      status = "Unassigned", uploadTime = uploaded, updateTime = uploaded }
    if i % 3 ~= 0 then
      local p = profiles[i % 2 + 1]
      kme.profileId, kme.profileName, kme.status = p.profileId, p.profileName, "Assigned"
    end
    kme_devices[i] = kme
    local status = KG_STATES[(i - 1) % #KG_STATES + 1]
    local kg = { objectId = self:new_id("objectId", rng), deviceUid = imei, serialNumber = serial, model = model,
      status = status, uploadTime = uploaded, updateTime = uploaded,
      isRelockReminderTarget = false, isRelockReminderApplied = false }
    if status ~= "Accepted" then kg.approveId = "LOAN-" .. rng:digits(8) end
    kg_devices[i] = kg
    local kc = { deviceId = imei, imei = imei, serialNumber = serial, model = model, state = "Unassigned",
      resellerUploadTime = uploaded, updateTime = uploaded }
    if i % 4 == 0 then
      kc.state, kc.profileId, kc.profileName = "Configured", kc_profiles[1].profileId, kc_profiles[1].name
      kc.licenseKey = licenses[1].licenseKey
      licenses[1].usedQuantity = licenses[1].usedQuantity + 1
    end
    kc_devices[i] = kc
  end
  t.kme.devices, t.kme.profiles, t.kme.transactions = kme_devices, profiles, {}
  t.kg.devices = kg_devices
  t.kc.devices, t.kc.profiles, t.kc.licenses = kc_devices, kc_profiles, licenses
  self:reindex(t)
  return t
end

--- Rebuilds a tenant's look-up indexes after its lists changed.
function State:reindex(t) -- luacheck: ignore 212/self
  t.kme.by_id = index_by(t.kme.devices, "deviceId")
  for _, d in ipairs(t.kme.devices) do
    if d.serialNumber then t.kme.by_id[d.serialNumber] = d end
  end
  t.kme.profiles_by_id = index_by(t.kme.profiles, "profileId")
  t.kg.by_object = index_by(t.kg.devices, "objectId")
  t.kg.by_uid = index_by(t.kg.devices, "deviceUid")
  t.kg.by_approve = index_by(t.kg.devices, "approveId")
  t.kc.by_id = index_by(t.kc.devices, "deviceId")
  for _, d in ipairs(t.kc.devices) do
    if d.serialNumber then t.kc.by_id[d.serialNumber] = d end
  end
  t.kc.profiles_by_id = index_by(t.kc.profiles, "profileId")
end

--- The tenant (KME/KG/KC data) of a customer id, created on first use.
function State:tenant(customer_id)
  customer_id = customer_id or self.customer_id
  local t = self.tenants[customer_id]
  if not t then
    t = self:build_tenant(customer_id, self.ndevices)
    self.tenants[customer_id] = t
  end
  return t
end

local function customer(rng, st, fields)
  local c = {
    customerId = st:new_id("customer"),
    companyName = fields.companyName,
    email = fields.email,
    officeNumber = "+1-555-" .. rng:digits(4),
    country = fields.country or "US",
    services = fields.services or { "KME", "KC" },
    createdTime = M.BASE_MS - rng:int(365) * 86400000,
  }
  for k, v in pairs(fields) do c[k] = v end
  return c
end

function State:build_world()
  local rng = self.rng
  self.customer_id = self:new_id("customer")
  self.reseller_id = "RS" .. rng:digits(8)
  self.reseller_name = "Sim Reseller Ltd"
  self.tenants = {}
  -- MSP portal: customers this MSP manages, and other Knox customers it
  -- could link (each one exercising a documented link failure).
  self.msp = {
    customers = {
      customer(rng, self, { companyName = "Northwind Traders", email = "admin@northwind.example",
        status = "Active", managementType = "FullyManaged", accessType = "FullyManaged" }),
      customer(rng, self, { companyName = "Contoso Ltd", email = "it@contoso.example",
        status = "Active", managementType = "JointlyManaged", accessType = "JointlyManaged" }),
    },
    pool = {
      customer(rng, self, { companyName = "Fabrikam Inc", email = "ops@fabrikam.example", link = "ok" }),
      customer(rng, self, { companyName = "Pending Approval Co", email = "new@pending.example",
        link = "not_approved" }),
      customer(rng, self, { companyName = "Managed Elsewhere AG", email = "it@elsewhere.example",
        link = "managed" }),
      customer(rng, self, { companyName = "Far Away Pty", email = "it@faraway.example", country = "AU",
        link = "region" }),
    },
  }
  -- Knox Deployment Program: the reseller's customers and uploads.
  local own = self:tenant(self.customer_id)
  self.kdp = {
    customers = {
      { customerId = self.customer_id, customerName = "Sim Customer Corp", email = "admin@simcustomer.example" },
      { customerId = self:new_id("customer"), customerName = "Tailspin Toys", email = "it@tailspin.example" },
      { customerId = self:new_id("customer"), customerName = "Wide World Importers", email = "it@wwi.example" },
    },
    devices = {},
    transactions = {},
  }
  for i, d in ipairs(own.kme.devices) do
    self.kdp.devices[i] = { deviceUid = d.deviceId, imei = d.imei, serialNumber = d.serialNumber,
      customerId = self.customer_id, orderNo = "ORD-" .. string.format("%05d", (i - 1) // 10 + 1),
      uploadTime = d.uploadTime }
  end
end

--- A fresh state for seed and ndevices.
function M.new(seed, ndevices)
  local self = setmetatable({ seed = tostring(seed), ndevices = ndevices, used = {} }, State)
  self.rng = M.rng(self.seed)
  self:build_world()
  return self
end

return M
