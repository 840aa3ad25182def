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
  end
  return { status = e.status, headers = headers, body = json.encode(body), close = e.close }
end

return M
