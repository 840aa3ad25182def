--- knox.sim Knox MSP Portal API (api-notes §4.3, api-notes-2 §1.5),
-- OAuth 2.0 only: managedCustomers list / get / create / link / delink /
-- update (scope msp.customers) and profiles list / copy / overwrite (scope
-- msp.profiles). Errors: { transactionalId, code: NAME, errorCode:
-- "4030000", errorMessage } with the MSP codes (msp-portal-error-codes.txt
-- and the 26.07 field-validation codes 4002133-4002140). Every endpoint can
-- answer 429 (26.06) when the simulator's rate limit is on.
--
-- A customer renders as Knox documents it: customerId, companyName, email,
-- officeNumber, country, managementType, managedServices [{ service,
-- status }] (Knox's service names, e.g. "KnoxManage"), optional {
-- deviceCountExclKM, deviceCountKM, modified, created } (ISO-8601 strings),
-- companySize, industry, street1, city, stateOrProvince, zipCode, website,
-- customerAdminManagement, kgTenantInfo. Requests may name services by
-- Knox's names or the short ones (KME, KC, KG, KM, ...): the simulator's
-- choice, since the request schema is not published.
--
-- Customers this MSP creates are fully managed, new Knox accounts (no
-- devices); customers it links are jointly managed and active at once
-- (the customer's acceptance is not simulated). A delink request leaves
-- the customer's services "DelinkPending" (the customer must accept, so it
-- stays managed). pageNum/pageSize (integers or, before 25.07, strings)
-- and sortOrder (ascending/descending, legacy capitalised accepted) page
-- and sort the list by companyName; without pageNum/pageSize it is whole.
--
-- Field validation (26.07; which code applies to which field is not
-- published, so this mapping is the simulator's choice): companyName ->
-- 4002133 INCLUDES_DISALLOWED_CHARACTERS (any of <>{}[]|\^~`";),
-- 4002136 FIELD_CONTAINS_PROHIBITED_WORD ("samsung", "knox"), 4002140
-- START_OR_ENDS_OR_CONSECUTIVE_DISALLOWED_CHARACTER (space . , & ' - at
-- either end or twice in a row); street1 -> 4002133, 4002139
-- START_OR_ENDS_WITH_DISALLOWED_CHARACTER; city, stateOrProvince ->
-- 4002134 ALPHANUMERIC_ONLY_ALLOWED_CHARACTERS (letters, digits, space
-- . ' -), 4002139; zipCode -> 4002135 ALPHANUMERIC_ONLY; website -> 4002137
-- INVALID_URL (http(s)://host.tld[/...]); officeNumber -> 4002138
-- INVALID_PHONE_NUMBER (+, digits, spaces, - ( ), 7-15 digits).
--
-- Profiles (GET /profiles, POST /profiles/copy, POST /profiles/overwrite)
-- have no published schema; the simulator's choice: they are the KME
-- profiles of the MSP's own tenant (the parent) and of its customers.
-- GET /profiles?customerIds=a,b&profileIds=x,y -> { totalCount (a string,
-- as for customers), profiles: [{ profileId, profileName, customerId,
-- service: "KnoxMobileEnrollment" }] }. copy { sourceProfileId,
-- targetCustomerIds: [..], profileName? (a new name) } and overwrite
-- { sourceProfileId, targets: [{ customerId, profileId }] } answer
-- { results: [{ customerId, profileId?, result: "SUCCESS" | "FAIL",
-- errorCode?, errorMessage? }] } with 200, or 206 Partial Content when
-- some target failed (206 is a documented MSP outcome).
local json = require "knox.sim.json"
local absent = require("knox.sim.router").absent
local iso = require("knox.sim.kc").iso

local M = {}

local function fail(ctx, code, name, message, status)
  ctx:fail(status or 400, code, name, message)
end

-- Countries the simulated MSP region serves (simulator's choice).
local COUNTRIES = {}
for c in ("US CA MX BR AR CL CO PE GB IE DE FR ES IT NL BE LU AT CH PL CZ SK HU RO SE NO DK FI PT GR "
  .. "AU NZ KR JP SG IN ZA AE"):gmatch("%u%u") do COUNTRIES[c] = true end

-- Knox's service names, and the short names requests may use.
local SERVICES = { KME = "KnoxMobileEnrollment", KC = "KnoxConfigure", KG = "KnoxGuard", KM = "KnoxManage",
  KPE = "KnoxPlatformForEnterprise", KAI = "KnoxAssetIntelligence", KE = "KnoxEFOTA", KNOXSUITE = "KnoxSuite" }
do
  local longs = {}
  for _, long in pairs(SERVICES) do longs[#longs + 1] = long end
  for _, long in ipairs(longs) do SERVICES[long] = long end
end
local KG_DOMAINS = { Financing = true, Enterprise = true, Insurance = true, Others = true }
local KG_TYPES = { Normal = true, Payg = true }

local function find(list, id)
  for i, c in ipairs(list) do
    if c.customerId == id then return c, i end
  end
end

local function email_in_use(sim, email)
  email = email:lower()
  for _, list in ipairs { sim.state.msp.customers, sim.state.msp.pool } do
    for _, c in ipairs(list) do
      if c.email and c.email:lower() == email then return true end
    end
  end
  return false
end

local function check_services(ctx, v)
  local list = ctx:list(v, "services", { max = 16 })
  if not list then return nil end
  local out = json.array()
  for _, s in ipairs(list) do
    if s == "SCP" then
      fail(ctx, 4002109, "SERVICE_NOT_VALID_SCP", "The Knox MSP Portal API does not support Samsung Care Plus.")
    end
    if type(s) ~= "string" or not SERVICES[s] then ctx:invalid("services: unknown service " .. tostring(s)) end
    out[#out + 1] = SERVICES[s]
  end
  return out
end

-- kgTenantInfo { kgDomainType, kgTenantType, phone, email } (26.01).
local function check_kg(ctx, v)
  if absent(v) then return nil end
  if not json.is_object(v) then ctx:invalid("kgTenantInfo must be an object") end
  local domain = v.kgDomainType
  if type(domain) ~= "string" or not KG_DOMAINS[domain] then
    fail(ctx, 4002127, "INVALID_KG_TENANT_INFO",
      "You must pass a valid Knox Guard Domain Type (Financing, Enterprise, Insurance, Others).")
  end
  local ttype = v.kgTenantType
  if domain == "Enterprise" or domain == "Insurance" then
    if not absent(ttype) then
      fail(ctx, 4002130, "INVALID_KG_TENANT_TYPE_EMPTY",
        "For Enterprise and Insurance Domain Types, Tenant Type must not be set.")
    end
  elseif type(ttype) ~= "string" or not KG_TYPES[ttype] then
    fail(ctx, 4002128, "INVALID_KG_TENANT_TYPE_FINANCING_OTHERS",
      "You must pass a valid Knox Guard Tenant Type (Normal, Payg).")
  end
  local phone, email = v.phone, v.email
  if domain == "Financing" then
    local ok_phone = type(phone) == "string" and phone:match("^%+?[%d%- ]+$") and #phone >= 5
    local ok_email = type(email) == "string" and email:match("^[^@%s]+@[^@%s]+%.[^@%s]+$")
    if not ok_phone and not ok_email then
      fail(ctx, 4002129, "INVALID_KG_PHONE_EMAIL",
        "For Financing Domain Type, a valid email address or phone number must be provided.")
    end
  end
  return { kgDomainType = domain, kgTenantType = not absent(ttype) and ttype or nil,
    phone = type(phone) == "string" and phone or nil, email = type(email) == "string" and email or nil }
end

-- Field validation (26.07); see the header for the mapping.
local DISALLOWED = "[<>{}%[%]|\\%^~`\";]"
local EDGE = "[ .,&'%-]"
local PROHIBITED = { "samsung", "knox" }

local function edge_or_double(v)
  return v:sub(1, 1):match(EDGE) or v:sub(-1):match(EDGE) or v:match(EDGE .. EDGE)
end

local VALIDATE = {
  companyName = function(v)
    if v:find(DISALLOWED) then return 4002133, "INCLUDES_DISALLOWED_CHARACTERS" end
    for _, w in ipairs(PROHIBITED) do
      if v:lower():find(w, 1, true) then return 4002136, "FIELD_CONTAINS_PROHIBITED_WORD" end
    end
    if edge_or_double(v) then return 4002140, "START_OR_ENDS_OR_CONSECUTIVE_DISALLOWED_CHARACTER" end
  end,
  street1 = function(v)
    if v:find(DISALLOWED) then return 4002133, "INCLUDES_DISALLOWED_CHARACTERS" end
    if v:sub(1, 1):match(EDGE) or v:sub(-1):match(EDGE) then
      return 4002139, "START_OR_ENDS_WITH_DISALLOWED_CHARACTER"
    end
  end,
  city = function(v)
    if not v:match("^[%w .'%-]+$") then return 4002134, "ALPHANUMERIC_ONLY_ALLOWED_CHARACTERS" end
    if v:sub(1, 1):match(EDGE) or v:sub(-1):match(EDGE) then
      return 4002139, "START_OR_ENDS_WITH_DISALLOWED_CHARACTER"
    end
  end,
  zipCode = function(v)
    if not v:match("^%w+$") then return 4002135, "ALPHANUMERIC_ONLY" end
  end,
  website = function(v)
    if not v:match("^https?://[%w%-]+%.[%w%-%.]*%a$") and not v:match("^https?://[%w%-]+%.[%w%-%.]*%a/%S*$") then
      return 4002137, "INVALID_URL"
    end
  end,
  officeNumber = function(v)
    local digits = select(2, v:gsub("%d", ""))
    if not v:match("^%+?[%d %-%(%)]+$") or digits < 7 or digits > 15 then return 4002138, "INVALID_PHONE_NUMBER" end
  end,
}
VALIDATE.stateOrProvince = VALIDATE.city

local TEXT_FIELDS = { street1 = 200, city = 100, stateOrProvince = 100, zipCode = 16, website = 2048,
  companySize = 32, industry = 64 }

-- The optional company/address fields of a create/update body, validated.
local function company_fields(ctx, b)
  local out = {}
  for f, max in pairs(TEXT_FIELDS) do out[f] = ctx:str(b[f], f, { max = max }) end
  out.customerAdminManagement = ctx:bool(b.customerAdminManagement, "customerAdminManagement")
  for f, check in pairs(VALIDATE) do
    local v = out[f] or (f == "companyName" and b.companyName) or (f == "officeNumber" and b.officeNumber)
    if type(v) == "string" and v ~= "" then
      local code, name = check(v)
      if code then fail(ctx, code, name, f .. " is not valid: " .. name) end
    end
  end
  return out
end

--- A customer as Knox returns it (the record is the simulator's own).
local function render(ctx, c)
  local status = c.status == "DelinkPending" and "DelinkPending" or "Active"
  local services = json.array()
  for i, s in ipairs(c.services or {}) do services[i] = { service = SERVICES[s] or s, status = status } end
  local devices = c.status and ctx.state.sizes[c.customerId] and ctx.state:tenant(c.customerId).kme.fleet:count() or 0
  local out = { customerId = c.customerId, companyName = c.companyName, email = c.email, officeNumber = c.officeNumber,
    country = c.country, managementType = c.managementType, managedServices = services,
    optional = { deviceCountExclKM = devices, deviceCountKM = 0, created = iso(c.created), modified = iso(c.modified) },
    companySize = c.companySize, industry = c.industry, street1 = c.street1, city = c.city,
    stateOrProvince = c.stateOrProvince, zipCode = c.zipCode, website = c.website,
    customerAdminManagement = c.customerAdminManagement or false, kgTenantInfo = c.kgTenantInfo }
  return out
end

local function list_customers(ctx)
  local q = ctx.query
  local list = ctx.state.msp.customers
  if (q.customerId and q.customerId ~= "") or (q.email and q.email ~= "")
    or (q.companyName and q.companyName ~= "") then
    local f = {}
    for _, c in ipairs(list) do
      if (not q.customerId or q.customerId == "" or c.customerId == q.customerId)
        and (not q.email or q.email == "" or c.email:lower() == q.email:lower())
        and (not q.companyName or q.companyName == ""
          or c.companyName:lower():find(q.companyName:lower(), 1, true)) then
        f[#f + 1] = c
      end
    end
    list = f
  end
  local order = q.sortOrder
  if order and order ~= "" then
    local o = order:lower()
    if o ~= "ascending" and o ~= "descending" then ctx:invalid("sortOrder must be ascending or descending") end
    local sorted = {}
    for i, c in ipairs(list) do sorted[i] = c end
    table.sort(sorted, function(a, b)
      if o == "descending" then return a.companyName:lower() > b.companyName:lower() end
      return a.companyName:lower() < b.companyName:lower()
    end)
    list = sorted
  end
  local page
  if q.pageNum or q.pageSize then
    page = ctx:page(list, q)
  else
    page = list
  end
  local items = json.array()
  for i, c in ipairs(page) do items[i] = render(ctx, c) end
  -- totalCount is a JSON string in the documented example.
  return { totalCount = tostring(#list), customers = items }
end

local function not_found(ctx, id)
  fail(ctx, 4042100, "CUSTOMER_NOT_FOUND", "This customer doesn't exist: " .. tostring(id), 404)
end

local function get_customer(ctx)
  local c = find(ctx.state.msp.customers, ctx.params[1])
  if not c then not_found(ctx, ctx.params[1]) end
  return render(ctx, c)
end

local function create_customer(ctx)
  local b = ctx:body()
  local name = ctx:str(b.companyName, "companyName", { required = true, max = 100 })
  local email = ctx:str(b.email, "email", { required = true, max = 254 })
  if not email:match("^[^@%s]+@[^@%s]+%.[^@%s]+$") then ctx:invalid("email is not an email address") end
  local country = ctx:str(b.country, "country", { required = true, max = 2 })
  if not COUNTRIES[country] then fail(ctx, 4002108, "INVALID_COUNTRY", "Unsupported country.") end
  local office = ctx:str(b.officeNumber, "officeNumber", { max = 32 })
  local extra = company_fields(ctx, b)
  local services = check_services(ctx, b.services) or json.array { "KnoxMobileEnrollment" }
  local kg = check_kg(ctx, b.kgTenantInfo)
  if email_in_use(ctx.sim, email) then
    fail(ctx, 4002106, "EMAIL_ALREADY_IN_USAGE", "Knox cloud services account already exists for this user. "
      .. "Please contact the customer or Samsung administrator.")
  end
  local c = { customerId = ctx.state:new_id("customer"), companyName = name, email = email, country = country,
    officeNumber = office, services = services, kgTenantInfo = kg, status = "Active",
    managementType = "FullyManaged", created = ctx:now_ms(), modified = ctx:now_ms() }
  for k, v in pairs(extra) do c[k] = v end
  -- a new Knox account: no devices yet (the simulator's choice)
  ctx.state:declare(c.customerId, 0, name)
  local list = ctx.state.msp.customers
  list[#list + 1] = c
  return render(ctx, c)
end

local function link_customer(ctx)
  local b = ctx:body()
  local id = ctx:str(b.customerId, "customerId", { required = true, max = 64 })
  local msp = ctx.state.msp
  local mine = find(msp.customers, id)
  if mine then
    if mine.status == "DelinkPending" then
      fail(ctx, 4002102, "ADD_EC_DELINK_PENDING", "This customer is currently in the process of being delinked "
        .. "from an MSP and cannot be added until this process is complete.")
    end
    fail(ctx, 4002104, "ADD_EC_PENDING_CANNOT_ADD_AGAIN",
      "This customer is already managed by you and cannot be added again.")
  end
  local c, i = find(msp.pool, id)
  if not c then
    fail(ctx, 4002100, "ADD_EC_CUSTOMER_INVALID", "This customer doesn't exist or the ID isn't a valid customer ID.")
  end
  if c.link == "not_approved" then
    fail(ctx, 4002101, "ADD_EC_CUSTOMER_NOT_APPROVED", "This customer is currently either pending approval or has "
      .. "been rejected by the Samsung administrator.")
  elseif c.link == "managed" then
    fail(ctx, 4002103, "ADD_EC_ALREADY_MANAGED", "This customer is already managed by someone else.")
  elseif c.link == "region" then
    fail(ctx, 4002105, "ADD_EC_NOT_SAME_REGION", "This customer is not available in your region.")
  end
  table.remove(msp.pool, i)
  c.link = nil
  c.status, c.managementType, c.modified = "Active", "JointlyManaged", ctx:now_ms()
  c.services = check_services(ctx, b.services) or c.services
  msp.customers[#msp.customers + 1] = c
  return render(ctx, c)
end

local function delink_customer(ctx)
  local b = ctx:body()
  local id = ctx:str(b.customerId, "customerId", { required = true, max = 64 })
  local msp = ctx.state.msp
  local c = find(msp.customers, id)
  if not c then
    if find(msp.pool, id) then
      fail(ctx, 4002113, "CUSTOMER_NOT_MANAGED_BY_MSP", "Customer not managed by the current MSP.")
    end
    not_found(ctx, id)
  end
  if c.managementType == "FullyManaged" then
    fail(ctx, 4002112, "CANNOT_DELINK_FULLY_MANAGED", "Cannot delink a fully managed customer.")
  end
  if c.status == "DelinkPending" then
    fail(ctx, 4002116, "CANNOT_CHANGE_WHEN_DELINKING", "Customer cannot be changed while delink request is pending.")
  end
  c.status = "DelinkPending"
  return { customerId = c.customerId, status = c.status }
end

local function update_customer(ctx)
  local c = find(ctx.state.msp.customers, ctx.params[1])
  if not c then not_found(ctx, ctx.params[1]) end
  local b = ctx:body()
  if c.status == "DelinkPending" then
    fail(ctx, 4002116, "CANNOT_CHANGE_WHEN_DELINKING", "Customer cannot be changed while delink request is pending.")
  end
  -- managementType (accessType, the older name, is accepted too: the simulator's choice)
  local access = ctx:str(b.managementType, "managementType", { values = { FullyManaged = true,
    JointlyManaged = true } }) or ctx:str(b.accessType, "accessType", { values = { FullyManaged = true,
    JointlyManaged = true } })
  if access == "FullyManaged" and c.managementType == "JointlyManaged" then
    fail(ctx, 4002117, "CANNOT_UPDATE_FROM_JOINTLY_TO_FULLY", "Can't update from jointly managed to fully managed.")
  end
  local services = check_services(ctx, b.services)
  local kg = check_kg(ctx, b.kgTenantInfo)
  local name = ctx:str(b.companyName, "companyName", { max = 100 })
  local office = ctx:str(b.officeNumber, "officeNumber", { max = 32 })
  local extra = company_fields(ctx, b)
  for k, v in pairs(extra) do c[k] = v end
  c.modified = ctx:now_ms()
  if name then
    if name == "" then ctx:invalid("companyName must not be empty") end
    c.companyName = name
  end
  if office then c.officeNumber = office end
  if services then c.services = services end
  if kg then c.kgTenantInfo = kg end
  if access then c.managementType = access end
  return render(ctx, c)
end

-- Profiles (see the header: shapes are the simulator's choice) ----------

-- The tenants whose profiles an MSP sees: its own (the parent) and its
-- managed customers'.
local function msp_tenants(ctx)
  local out = { ctx.state.customer_id }
  for _, c in ipairs(ctx.state.msp.customers) do out[#out + 1] = c.customerId end
  return out
end

local function csv_set(v)
  if not v or v == "" then return nil end
  local set = {}
  for x in v:gmatch("[^,]+") do set[x] = true end
  return set
end

local function list_profiles(ctx)
  local q = ctx.query
  local cids, pids = csv_set(q.customerIds), csv_set(q.profileIds)
  local list = {}
  for _, cid in ipairs(msp_tenants(ctx)) do
    if not cids or cids[cid] then
      for _, p in ipairs(ctx.state:tenant(cid).kme.profiles) do
        if not pids or pids[p.profileId] then
          list[#list + 1] = { profileId = p.profileId, profileName = p.profileName, customerId = cid,
            service = "KnoxMobileEnrollment" }
        end
      end
    end
  end
  local items = (q.pageNum or q.pageSize) and ctx:page(list, q) or json.array(list)
  return { totalCount = tostring(#list), profiles = items }
end

local function source_profile(ctx, b)
  local id = ctx:str(b.sourceProfileId, "sourceProfileId", { required = true, max = 64 })
  local p = ctx.state:tenant().kme.profiles_by_id[id]
  if not p then fail(ctx, 4040000, "RESOURCE_NOT_FOUND", "The source profile does not exist: " .. id, 404) end
  return p
end

local function managed(ctx, cid)
  return type(cid) == "string" and ctx.sim:managed_customer(cid)
end

local COPY_SKIP = { profileId = true, createdTime = true, updatedTime = true }

local function results_answer(results, failed)
  return { results = results }, failed > 0 and 206 or 200
end

local function copy_profiles(ctx)
  local b = ctx:body()
  local src = source_profile(ctx, b)
  local targets = ctx:list(b.targetCustomerIds, "targetCustomerIds", { required = true, max = 100 })
  local name = ctx:str(b.profileName, "profileName", { max = 100 }) or src.profileName
  local results, failed = json.array(), 0
  for _, cid in ipairs(targets) do
    local r
    if not managed(ctx, cid) then
      r = { customerId = cid, result = "FAIL", errorCode = "4002113", errorMessage = "CUSTOMER_NOT_MANAGED_BY_MSP" }
    else
      local kme = ctx.state:tenant(cid).kme
      local taken = false
      for _, p in ipairs(kme.profiles) do
        if p.profileName == name then taken = true end
      end
      if taken then
        r = { customerId = cid, result = "FAIL", errorCode = "4091700",
          errorMessage = "BULK_ENROLL_PROFILE_NAME_CONFLICT" }
      else
        local p = {}
        for k, v in pairs(src) do
          if not COPY_SKIP[k] then p[k] = v end
        end
        p.profileId, p.profileName = ctx.state:new_id(), name
        p.createdTime, p.updatedTime = ctx:now_ms(), ctx:now_ms()
        kme.profiles[#kme.profiles + 1] = p
        kme.profiles_by_id[p.profileId] = p
        r = { customerId = cid, profileId = p.profileId, result = "SUCCESS" }
      end
    end
    if r.result == "FAIL" then failed = failed + 1 end
    results[#results + 1] = r
  end
  return results_answer(results, failed)
end

local function overwrite_profiles(ctx)
  local b = ctx:body()
  local src = source_profile(ctx, b)
  local targets = ctx:list(b.targets, "targets", { required = true, max = 100 })
  local results, failed = json.array(), 0
  for i, tg in ipairs(targets) do
    if not json.is_object(tg) then ctx:invalid("targets[" .. i .. "] must be { customerId, profileId }") end
    local cid, pid = tg.customerId, tg.profileId
    local r
    local p = managed(ctx, cid) and ctx.state:tenant(cid).kme.profiles_by_id[pid]
    if not managed(ctx, cid) then
      r = { customerId = cid, profileId = pid, result = "FAIL", errorCode = "4002113",
        errorMessage = "CUSTOMER_NOT_MANAGED_BY_MSP" }
    elseif not p then
      r = { customerId = cid, profileId = pid, result = "FAIL", errorCode = "4040400",
        errorMessage = "PROFILE_NOT_FOUND" }
    else
      for k, v in pairs(src) do
        if not COPY_SKIP[k] and k ~= "profileName" then p[k] = v end
      end
      p.updatedTime = ctx:now_ms()
      r = { customerId = cid, profileId = pid, result = "SUCCESS" }
    end
    if r.result == "FAIL" then failed = failed + 1 end
    results[#results + 1] = r
  end
  return results_answer(results, failed)
end

function M.routes(router)
  -- an adder for the routes under one base path and scope
  local function under(base, scope)
    return function(method, path, handler)
      router:add { method = method, path = "^/msp/v1/" .. base .. path, service = "msp", auth = "oauth",
        scope = scope, handler = handler }
    end
  end
  local add = under("managedCustomers", "msp.customers")
  add("GET", "$", list_customers)
  add("POST", "$", create_customer)
  add("POST", "/link$", link_customer)
  add("POST", "/delink$", delink_customer)
  add("GET", "/([^/]+)$", get_customer)
  add("PUT", "/([^/]+)$", update_customer)
  local prof = under("profiles", "msp.profiles")
  prof("GET", "$", list_profiles)
  prof("POST", "/copy$", copy_profiles)
  prof("POST", "/overwrite$", overwrite_profiles)
end

return M
