--- knox.sim Knox MSP Portal API (api-notes §4.3), OAuth 2.0 only (scope
-- msp.customers): managedCustomers list / get / create / link / delink /
-- update. Errors: { transactionalId, code: NAME, errorCode: "4030000",
-- errorMessage } with the MSP codes (msp-portal-error-codes.txt).
--
-- Customers this MSP creates are fully managed; customers it links are
-- jointly managed and active at once (the customer's acceptance is not
-- simulated). A delink request leaves the customer "DelinkPending" (the
-- customer must accept, so it stays managed). Pagination of the list is
-- UNCONFIRMED: pageNum/pageSize are honoured when given, else all.
local json = require "knox.sim.json"
local absent = require("knox.sim.router").absent

local M = {}

local function fail(ctx, code, name, message, status)
  ctx:fail(status or 400, code, name, message)
end

-- Countries the simulated MSP region serves (simulator's choice).
local COUNTRIES = {}
for c in ("US CA MX BR AR CL CO PE GB IE DE FR ES IT NL BE LU AT CH PL CZ SK HU RO SE NO DK FI PT GR "
  .. "AU NZ KR JP SG IN ZA AE"):gmatch("%u%u") do COUNTRIES[c] = true end

local SERVICES = { KME = true, KC = true, KG = true, KM = true, KPE = true, KAI = true, KE = true, KNOXSUITE = true }
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
    out[#out + 1] = s
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
  local items
  if q.pageNum or q.pageSize then
    items = ctx:page(list, q)
  else
    items = json.array()
    for i, c in ipairs(list) do items[i] = c end
  end
  -- totalCount is a JSON string in the documented example.
  return { totalCount = tostring(#list), customers = items }
end

local function not_found(ctx, id)
  fail(ctx, 4042100, "CUSTOMER_NOT_FOUND", "This customer doesn't exist: " .. tostring(id), 404)
end

local function get_customer(ctx)
  local c = find(ctx.state.msp.customers, ctx.params[1])
  if not c then not_found(ctx, ctx.params[1]) end
  return c
end

local function create_customer(ctx)
  local b = ctx:body()
  local name = ctx:str(b.companyName, "companyName", { required = true, max = 100 })
  local email = ctx:str(b.email, "email", { required = true, max = 254 })
  if not email:match("^[^@%s]+@[^@%s]+%.[^@%s]+$") then ctx:invalid("email is not an email address") end
  local country = ctx:str(b.country, "country", { required = true, max = 2 })
  if not COUNTRIES[country] then fail(ctx, 4002108, "INVALID_COUNTRY", "Unsupported country.") end
  local office = ctx:str(b.officeNumber, "officeNumber", { max = 32 })
  local services = check_services(ctx, b.services) or json.array { "KME" }
  local kg = check_kg(ctx, b.kgTenantInfo)
  if email_in_use(ctx.sim, email) then
    fail(ctx, 4002106, "EMAIL_ALREADY_IN_USAGE", "Knox cloud services account already exists for this user. "
      .. "Please contact the customer or Samsung administrator.")
  end
  local c = { customerId = ctx.state:new_id("customer"), companyName = name, email = email, country = country,
    officeNumber = office, services = services, kgTenantInfo = kg, status = "Active",
    managementType = "FullyManaged", accessType = "FullyManaged", createdTime = ctx:now_ms() }
  local list = ctx.state.msp.customers
  list[#list + 1] = c
  return c
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
  c.status, c.managementType, c.accessType = "Active", "JointlyManaged", "JointlyManaged"
  c.services = check_services(ctx, b.services) or c.services
  msp.customers[#msp.customers + 1] = c
  return c
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
  local access = ctx:str(b.accessType, "accessType", { values = { FullyManaged = true, JointlyManaged = true } })
  if access == "FullyManaged" and c.managementType == "JointlyManaged" then
    fail(ctx, 4002117, "CANNOT_UPDATE_FROM_JOINTLY_TO_FULLY", "Can't update from jointly managed to fully managed.")
  end
  local services = check_services(ctx, b.services)
  local kg = check_kg(ctx, b.kgTenantInfo)
  local name = ctx:str(b.companyName, "companyName", { max = 100 })
  local office = ctx:str(b.officeNumber, "officeNumber", { max = 32 })
  if name then
    if name == "" then ctx:invalid("companyName must not be empty") end
    c.companyName = name
  end
  if office then c.officeNumber = office end
  if services then c.services = services end
  if kg then c.kgTenantInfo = kg end
  if access then c.accessType, c.managementType = access, access end
  return c
end

function M.routes(router)
  local function add(method, path, handler)
    router:add { method = method, path = "^/msp/v1/managedCustomers" .. path, service = "msp", auth = "oauth",
      scope = "msp.customers", handler = handler }
  end
  add("GET", "$", list_customers)
  add("POST", "$", create_customer)
  add("POST", "/link$", link_customer)
  add("POST", "/delink$", delink_customer)
  add("GET", "/([^/]+)$", get_customer)
  add("PUT", "/([^/]+)$", update_customer)
end

return M
