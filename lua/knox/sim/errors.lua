--- knox.sim error bodies: each Knox service answers in its own documented
-- shape (shared/knox-docs/*.txt, api-notes §4):
--   kme, kdp, auth  { errorId, code, message: NAME, data }  (no errorId on 401, as KME's example)
--   kc              { code, message: NAME, data }
--   kg              { result: "FAIL", error: { code, message: NAME, reason } }
--   msp             { transactionalId, code: NAME, errorCode: "4030000", errorMessage }
--   oauth2          { error, error_description }            (RFC 6749)
-- Handlers raise with M.raise / M.fail; the router renders with M.render.
local json = require "knox.sim.json"
local codec = require "knox.sim.codec"

local M = {}

local SimError = { __name = "knox.sim.Error" }
SimError.__index = SimError
SimError.__tostring = function(e) return string.format("%s %s %s", e.status, e.code, e.name) end
M.SimError = SimError

--- Raises an API error: status, Knox code, NAME, human message.
-- extra: { headers = {}, oauth = "invalid_token" (OAuth-style body) }.
function M.raise(status, code, name, message, extra)
  local e = setmetatable({ status = status, code = code, name = name, message = message }, SimError)
  if extra then
    for k, v in pairs(extra) do e[k] = v end
  end
  error(e, 0)
end

function M.is_error(v)
  return getmetatable(v) == SimError
end

-- Services whose own codes have eight digits (KDP Gen2, Knox Configure).
local EIGHT = { kdp = true, kc = true }

local STATUS_NAMES = {
  [400] = "RESOURCE_INVALID_PARAM", [401] = "AUTHORIZATION_FAIL", [403] = "AUTHORIZATION_FAIL",
  [404] = "RESOURCE_NOT_FOUND", [405] = "METHOD_NOT_ALLOWED", [406] = "NOT_ACCEPTABLE",
  [408] = "REQUEST_TIMEOUT", [409] = "CONFLICT", [413] = "PAYLOAD_TOO_LARGE",
  [415] = "UNSUPPORTED_MEDIA_TYPE", [417] = "EXPECTATION_FAILED", [422] = "UNPROCESSABLE_ENTITY",
  [429] = "TOO_MANY_REQUESTS", [431] = "REQUEST_HEADER_FIELDS_TOO_LARGE",
  [500] = "INTERNAL_SERVER_ERROR", [501] = "NOT_IMPLEMENTED", [502] = "BAD_GATEWAY",
  [503] = "SERVICE_UNAVAILABLE", [504] = "GATEWAY_TIMEOUT", [505] = "HTTP_VERSION_NOT_SUPPORTED",
}

--- The code and name a service uses for a plain HTTP-level failure. The
-- documented ones come from the error pages (RESOURCE_INVALID_PARAM
-- 4000000 / 40000000, AUTHORIZATION_FAIL 4010000, KME/KDP/KC 403 40300000,
-- MSP 403 4030000 and 500 5000000 FAILURE); for the rest the simulator
-- follows the pattern every Knox code shows (status * 10^4, or 10^5 for
-- the eight-digit services) -- the simulator's choice, not documented.
function M.generic(service, status)
  local name = STATUS_NAMES[status] or (status >= 500 and "INTERNAL_SERVER_ERROR" or "RESOURCE_INVALID_PARAM")
  if status == 401 then return 4010000, "AUTHORIZATION_FAIL" end
  if status == 403 and (service == "kme" or EIGHT[service]) then return 40300000, name end
  if service == "msp" and status >= 500 then return 5000000, "FAILURE" end
  if EIGHT[service] then return status * 100000, name end
  return status * 10000, name
end

--- Raises the service's "invalid parameter" error (400).
function M.invalid(service, message)
  M.raise(400, EIGHT[service] and 40000000 or 4000000, "RESOURCE_INVALID_PARAM", message)
end

--- Raises the service's generic "not found" error (404).
function M.not_found(service, message)
  M.raise(404, EIGHT[service] and 40400000 or 4040000, "RESOURCE_NOT_FOUND", message)
end

-- Names of the documented codes (shared/knox-docs/*.txt, api-notes §3.6
-- and §4), for faults that give a code without a name. The same number can
-- mean different things in different services, so look-ups are per service;
-- the authentication layer's codes apply to every service.
local function catalog(text)
  local t = {}
  for code, name in text:gmatch("(%d+)%s+([%u_]+)") do t[tonumber(code)] = t[tonumber(code)] or name end
  return t
end

local NAMES = {
  auth = catalog [[
    4000000 RESOURCE_INVALID_PARAM 4002250 API_KEY_NON_UNIQUE_JWTID
    4002251 ACCESS_TOKEN_TIMEOUT_VALIDITY_RESOURCE_INVALID_PARAM 4010000 AUTHORIZATION_FAIL
    4010011 IDP_AUTHORIZATION_FAIL 40122050 ACCESS_TOKEN_BAD_REQUEST 4012250 ACCESS_TOKEN_BAD_REQUEST
    4012251 BAD_REQUEST_ACCESS_TOKEN_CLAIM_NOT_POPULATED 4032251 ACCESS_TOKEN_EXPIRED 4032252 ACCESS_TOKEN_INVALID
    4040000 RESOURCE_NOT_FOUND 4042251 API_KEY_RESTRICTION_NOT_FOUND 4042252 API_KEY_RESTRICTION_INVALID]],
  kme = catalog [[
    4000000 RESOURCE_INVALID_PARAM 4000019 TOO_MANY_DEVICES 4000904 TENANT_MISMATCH 4001600 SEG_PROFILE_INVALID
    4001700 BULK_ENROLL_PROFILE_INVALID 4001701 CUSTOMER_ID_INVALID 4001703 BULK_ENROLL_DEVICE_INVALID
    4010000 AUTHORIZATION_FAIL 4010050 ACCESS_TOKEN_BAD_REQUEST
    4002251 BAD_REQUEST_CLIENTIDENTIFIER_CLAIM_NOT_POPULATED
    40300000 AUTHORIZATION_FAIL 4030003 TENANT_BLOCKED 4030004 RESELLER_BLOCKED 4030005 TENANT_INACTIVE
    4030100 USER_AUTHENTICATION_FAIL 4040000 RESOURCE_NOT_FOUND 4040100 USER_NOT_FOUND 4040300 DEVICE_NOT_FOUND
    4040400 PROFILE_NOT_FOUND 4040900 TENANT_NOT_FOUND 4041600 SEG_PROFILE_NOT_FOUND
    4041700 BULK_ENROLL_PROFILE_NOT_FOUND 4041701 BULK_ENROLL_CONFIGURATION_DEVICE_NOT_FOUND
    4042100 RESELLER_NOT_FOUND 4042251 API_KEY_RESTRICTION_INVALID 4091600 SEG_PROFILE_ALREADY_EXISTS
    4091700 BULK_ENROLL_PROFILE_NAME_CONFLICT 4092103 RESELLER_ASSOCIATION_ALREADY_EXISTS
    5000000 INTERNAL_SERVER_ERROR 5000006 RSA_DECRYPTION_FAIL]],
  kg = catalog [[
    4010000 AUTHORIZATION_FAIL 4002102 API_KEY_RESTRICTION_INVALID 4042101 API_KEY_RESTRICTION_NOT_FOUND
    4040100 USER_NOT_FOUND 4040900 TENANT_NOT_FOUND 4000000 RESOURCE_INVALID_PARAM 4001809 LICENSE_IS_LACK
    4040300 DEVICE_NOT_FOUND 4000310 DEVICE_STATE_INVALID 4000316 DEVICE_BULK_OPERATION_LIMIT_EXCEEDED
    4040400 PROFILE_NOT_FOUND 4001807 LICENSE_MAX_COUNT_REACHED 4001805 LICENSE_NAME_ALREADY_EXISTS
    5001804 LICENSE_INTERNAL_SERVER_FAILED 4001813 LICENSE_KEY_ALREADY_EXISTS_IN_OTHER_REGION
    4001802 LICENSE_MAX_TRIAL_LICENSE_COUNT_REACHED 4041800 LICENSE_NOT_FOUND 4001806 LICENSE_DEVICE_MAPPING_FOUND
    4001812 LICENSE_ALREADY_DELETED 4030102 USER_IN_INVALID_STATE 4030107 USER_REJECTED_STATE
    4030104 USER_BLOCKED_STATE 4030106 USER_PENDING_STATE 4120000 PRECONDITION_FAILED_EXCEPTION]],
  msp = catalog [[
    5000000 FAILURE 4030000 AUTHORIZATION_FAIL 4002108 INVALID_COUNTRY 4002100 ADD_EC_CUSTOMER_INVALID
    4002101 ADD_EC_CUSTOMER_NOT_APPROVED 4002102 ADD_EC_DELINK_PENDING 4002103 ADD_EC_ALREADY_MANAGED
    4002104 ADD_EC_PENDING_CANNOT_ADD_AGAIN 4002105 ADD_EC_NOT_SAME_REGION 4042100 CUSTOMER_NOT_FOUND
    4002113 CUSTOMER_NOT_MANAGED_BY_MSP 4002106 EMAIL_ALREADY_IN_USAGE 4002109 SERVICE_NOT_VALID_SCP
    4002112 CANNOT_DELINK_FULLY_MANAGED 4002115 CUSTOMER_PENDING_CANNOT_DELINK 4002111 KM_TENANT_PREFIX_INVALID
    4002110 KM_DOMAIN_NAME_ALREADY_EXISTS 4002114 BLOCKED_DOMAIN_FOR_JOINTLY_MANAGED
    4002116 CANNOT_CHANGE_WHEN_DELINKING 4002117 CANNOT_UPDATE_FROM_JOINTLY_TO_FULLY
    4002118 SERVICE_NOT_ASSOCIATED_TO_CUSTOMER_ACCOUNT 4002119 CANNOT_CHANGE_WHEN_PENDING 4002120 ACCESS_TYPE_REQUIRED
    4002121 KM_DOMAIN_NAME_ALREADY_IN_USAGE 4002124 MSP_CANNOT_MANAGE_KG 4002127 INVALID_KG_TENANT_INFO
    4002128 INVALID_KG_TENANT_TYPE_FINANCING_OTHERS 4002129 INVALID_KG_PHONE_EMAIL
    4002130 INVALID_KG_TENANT_TYPE_EMPTY]],
  kdp = catalog [[
    40000000 RESOURCE_INVALID_PARAM 40000004 DEVICE_INVALID 40000011 CUSTOMER_ID_INVALID 40300000 AUTHORIZATION_FAIL
    40400000 RESOURCE_NOT_FOUND 40400001 RESELLER_NOT_FOUND 40000044 RESELLER_CUSTOMER_DEVICE_NOT_FOUND]],
  kc = catalog [[
    40000000 RESOURCE_INVALID_PARAM 40000017 PROFILE_ID_MISSING 40300000 AUTHORIZATION_FAIL
    40400000 RESOURCE_NOT_FOUND 40400005 DEVICES_NOT_FOUND 40400007 LICENSE_NOT_FOUND 50000000 INTERNAL_SERVER_ERROR]],
}

--- The documented name of code in service, or nil.
function M.name_of(service, code)
  code = tonumber(code)
  if not code then return nil end
  local t = NAMES[service]
  return (t and t[code]) or NAMES.auth[code]
end

local OAUTH_ERRORS = {
  [400] = "invalid_request", [401] = "invalid_client", [403] = "access_denied",
  [429] = "temporarily_unavailable", [503] = "temporarily_unavailable",
}

--- The JSON body (a Lua table) for an error in service's shape.
function M.body(service, status, code, name, message)
  message = message or name
  if service == "oauth2" then
    return { error = name and name:match("^[a-z_]+$") and name
      or OAUTH_ERRORS[status] or (status >= 500 and "server_error" or "invalid_request"),
      error_description = message }
  elseif service == "kg" then
    return { result = "FAIL", error = { code = code, message = name, reason = message } }
  elseif service == "msp" then
    return { transactionalId = codec.uuid(), code = name, errorCode = tostring(code), errorMessage = message }
  elseif service == "kc" then
    return { code = code, message = name, data = message }
  end
  local b = { code = code, message = name, data = message }
  if status ~= 401 then b.errorId = codec.uuid() end
  return b
end

--- A response table for an error. e: a SimError (or its fields).
function M.render(service, e)
  local headers = { ["Content-Type"] = "application/json" }
  if e.headers then
    for k, v in pairs(e.headers) do headers[k] = v end
  end
  local body
  if e.oauth then
    body = { error = e.oauth, error_description = e.message }
  else
    local code, name = e.code, e.name
    if not code then
      local gc, gn = M.generic(service, e.status)
      code, name = gc, name or gn
    end
    body = M.body(service, e.status, code, name, e.message)
    -- fields a handler adds (machine-readable per-item failures)
    for k, v in pairs(e.body or {}) do body[k] = v end
  end
  return { status = e.status, headers = headers, body = json.encode(body), close = e.close }
end

return M
