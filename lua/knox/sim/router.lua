--- knox.sim routing: the route table, authentication per route (legacy
-- x-knox-apitoken, OAuth bearer with a scope, or either), the MSP
-- x-wsm-managed-tenantid switch, and the request context handlers use to
-- read bodies and parameters and to fail in their service's shape.
local json = require "knox.sim.json"
local codec = require "knox.sim.codec"
local errors = require "knox.sim.errors"

local M = {}

--- The service a path belongs to (for its error shape).
function M.service_of(path)
  if path:find("^/kcs/v1%.1/kg") then return "kg" end
  if path:find("^/kcs/v%d+/kme") then return "kme" end
  if path:find("^/kcs/v1/rp") then return "kdp" end
  if path:find("^/kcs/v1/kc") or path:find("^/kc/v2") then return "kc" end
  if path:find("^/msp/") then return "msp" end
  if path:find("^/ams/v1/oauth2") then return "oauth2" end
  if path:find("^/ams/") then return "auth" end
  return "knox"
end

-- The request context passed to handlers.
local Ctx = {}
Ctx.__index = Ctx
M.Ctx = Ctx

function Ctx:invalid(message)
  errors.invalid(self.service, message)
end

--- Raises an API error; extra.body = { fields } adds fields to the body.
function Ctx:fail(status, code, name, message, extra) -- luacheck: ignore 212/self
  errors.raise(status, code, name, message, extra)
end

--- The JSON object body. Missing body, a content type other than JSON,
-- malformed JSON or a non-object all fail with 400 in the service's shape.
-- opts.optional: an empty body reads as {}.
function Ctx:body(opts)
  if self._body ~= nil then return self._body end
  local req = self.req
  if req.body == "" then
    if opts and opts.optional then
      self._body = {}
      return self._body
    end
    self:invalid("Required request body is missing")
  end
  local ct = (req.headers["content-type"] or ""):lower()
  if not (ct:match("^application/json") or ct:match("^application/[%w.%-]+%+json")) then
    self:invalid("Content type '" .. codec.utf8_safe(req.headers["content-type"] or "")
      .. "' is not supported; send application/json")
  end
  local v, err = json.decode(req.body)
  if v == nil then self:invalid("Malformed JSON request body: " .. codec.utf8_safe(err)) end
  if not json.is_object(v) then self:invalid("The request body must be a JSON object") end
  self._body = v
  return v
end

local function absent(v)
  return v == nil or v == json.null
end
M.absent = absent

--- An integer parameter (a JSON number or a decimal string), or nil when
-- absent; fails unless min <= n <= max.
function Ctx:int(v, name, min, max)
  if absent(v) or v == "" then return nil end
  local n
  if type(v) == "number" then
    if v == math.floor(v) then n = math.tointeger(v) end
  elseif type(v) == "string" and v:match("^%-?%d+$") and #v < 16 then
    n = tonumber(v)
  end
  if not n or n < min or (max and n > max) then
    self:invalid(name .. " must be an integer " .. (max and ("between " .. min .. " and " .. max)
      or ("of at least " .. min)))
  end
  return n
end

--- A string parameter: nil when absent unless opts.required; opts.max
-- length (default 256), opts.pattern, opts.values (allowed set).
function Ctx:str(v, name, opts)
  opts = opts or {}
  if absent(v) then
    if opts.required then self:invalid(name .. " is required") end
    return nil
  end
  if type(v) ~= "string" then self:invalid(name .. " must be a string") end
  if v == "" and opts.required then self:invalid(name .. " must not be empty") end
  if #v > (opts.max or 256) then self:invalid(name .. " is longer than " .. (opts.max or 256) .. " characters") end
  if opts.pattern and not v:match(opts.pattern) then self:invalid(name .. " has an invalid format") end
  if opts.values and not opts.values[v] then self:invalid(name .. " has an unsupported value: " .. v) end
  return v
end

--- A boolean parameter (JSON true/false, or "true"/"false" in a query).
function Ctx:bool(v, name)
  if absent(v) then return nil end
  if v == "true" then return true elseif v == "false" then return false end
  if type(v) ~= "boolean" then self:invalid(name .. " must be a boolean") end
  return v
end

--- An array parameter: nil when absent unless opts.required; opts.max
-- items (fails with opts.too_many = { status, code, name } or 400).
function Ctx:list(v, name, opts)
  opts = opts or {}
  if absent(v) then
    if opts.required then self:invalid(name .. " is required") end
    return nil
  end
  if type(v) ~= "table" or not json.is_array(v) then self:invalid(name .. " must be an array") end
  if opts.required and #v == 0 then self:invalid(name .. " cannot be empty") end
  if opts.max and #v > opts.max then
    local t = opts.too_many
    if t then self:fail(t[1], t[2], t[3], name .. " has more than " .. opts.max .. " items") end
    self:invalid(name .. " has more than " .. opts.max .. " items")
  end
  return v
end

--- A list of identifier strings (alphanumeric, '-', '_', '.', at most 64).
function Ctx:ids(v, name, opts)
  local list = self:list(v, name, opts)
  if not list then return nil end
  for _, id in ipairs(list) do
    if type(id) ~= "string" or id == "" or #id > 64 then
      self:invalid(name .. " must hold non-empty strings of at most 64 characters")
    end
  end
  return list
end

--- Reads pageNum (0-based) and pageSize from src (query or body).
function Ctx:paging(src, default_size, max_size)
  local num = self:int(src.pageNum, "pageNum", 0) or 0
  local size = self:int(src.pageSize, "pageSize", 1, max_size) or default_size
  return num, size
end

--- One page of list: items, pageNum, pageSize, totalCount.
function Ctx:page(list, src, default_size, max_size)
  local num, size = self:paging(src, default_size or 100, max_size or 1000)
  local items = json.array()
  local first = num * size + 1
  for i = first, math.min(#list, first + size - 1) do items[#items + 1] = list[i] end
  return items, num, size, #list
end

--- One page of a fleet (knox.sim.fleet): items, pageNum, pageSize,
-- totalCount. Only the page's devices are made.
function Ctx:fleet_page(fleet, src, default_size, max_size)
  local num, size = self:paging(src, default_size or 100, max_size or 1000)
  local items = json.array(fleet:slice(num * size + 1, size, self.now))
  return items, num, size, fleet:count()
end

--- The bulk limit (items per call) of this request's service, or of
-- `which` (a key of the simulator's limits: kme, kg, kdp, kc, kc2).
function Ctx:bulk_limit(which)
  return self.sim.limits.bulk[which or self.service]
end

--- Epoch milliseconds on the simulator's clock.
function Ctx:now_ms()
  return math.floor(self.now * 1000)
end

--- Fails unless a customerId parameter (when given) names this tenant.
function Ctx:check_customer(id)
  if absent(id) or id == "" then return end
  if id ~= self.tenant.customer_id then
    self:fail(400, 4000904, "TENANT_MISMATCH", "The provided customer ID does not correspond to the current tenant.")
  end
end

local Router = {}
Router.__index = Router

function M.new()
  return setmetatable({ by_service = {} }, Router)
end

--- Adds a route: { method, path = anchored Lua pattern, service, auth =
-- "legacy" | "oauth" | "both" | "none", scope = OAuth scope, tenant =
-- true when x-wsm-managed-tenantid selects the tenant, handler(ctx) ->
-- body[, status[, headers]] }.
function Router:add(route)
  assert(route.method and route.path and route.service and route.auth and route.handler, "incomplete route")
  local list = self.by_service[route.service]
  if not list then
    list = {}
    self.by_service[route.service] = list
  end
  list[#list + 1] = route
end

local KG_INTEGRATION = "^/kcs/v1%.1/kg%-integration/"

local function authenticate(sim, ctx, route)
  local req = ctx.req
  local mode = route.auth
  if mode == "none" then return end
  if mode == "both" then
    local authz = req.headers.authorization
    if authz and authz:match("^[Bb][Ee][Aa][Rr][Ee][Rr] ") then
      mode = "oauth"
    elseif req.headers["x-knox-apitoken"] then
      mode = "legacy"
    else
      errors.raise(401, 4010000, "AUTHORIZATION_FAIL",
        "Authentication required: send x-knox-apitoken or Authorization: Bearer")
    end
  end
  if mode == "legacy" then
    ctx.principal = sim.auth:check_legacy(ctx)
  else
    ctx.principal = sim.auth:check_bearer(ctx, route.scope)
  end
end

-- The tenant a call acts on: the account's own, or (OAuth, MSP) the
-- managed customer named by x-wsm-managed-tenantid (api-notes §3.4).
-- Legacy calls ignore the header (simulator's choice).
local function resolve_tenant(sim, ctx, route)
  local tid = ctx.req.headers["x-wsm-managed-tenantid"]
  if route.tenant and tid and tid ~= "" and ctx.principal and ctx.principal.scheme == "oauth" then
    local c = sim:managed_customer(tid)
    if not c then
      errors.raise(403, nil, "AUTHORIZATION_FAIL",
        "x-wsm-managed-tenantid " .. codec.utf8_safe(tid):sub(1, 64) .. " is not a customer managed by this MSP")
    end
    ctx.tenant = sim.state:tenant(tid)
  else
    ctx.tenant = sim.state:tenant()
  end
end

-- The rate limiter (knox.sim.limits): one bucket per access token, and per
-- managed tenant when an MSP acts for one.
local function rate_limit(sim, ctx)
  local p = ctx.principal
  if not p or not p.token then return end
  local key = p.token
  if ctx.tenant and ctx.tenant.customer_id ~= sim.state.customer_id then key = key .. "|" .. ctx.tenant.customer_id end
  local ok, wait = sim.limits:admit(key, ctx.now)
  if not ok then
    errors.raise(429, nil, "TOO_MANY_REQUESTS", "Too many requests: the limit is " .. sim.limits.rate
      .. " requests per second per access token; retry after " .. wait .. " s",
      { headers = { ["Retry-After"] = tostring(wait) }, limited = true })
  end
end

local function trace(e)
  if errors.is_error(e) then return e end
  return debug.traceback(tostring(e), 2)
end

local function json_response(body, status, headers)
  local h = { ["Content-Type"] = "application/json" }
  if headers then
    for k, v in pairs(headers) do h[k] = v end
  end
  return { status = status or 200, headers = h, body = type(body) == "string" and body or json.encode(body) }
end

function Router:run(sim, req, route, caps) -- luacheck: ignore 212/self
  local ctx = setmetatable({ sim = sim, state = sim.state, req = req, route = route, service = route.service,
    now = sim:now(), params = {} }, Ctx)
  for i = 3, caps.n do ctx.params[i - 2] = codec.url_decode(caps[i]) end
  ctx.query, ctx.query_all = codec.parse_query(req.query)
  local ok, body, status, headers = xpcall(function()
    authenticate(sim, ctx, route)
    resolve_tenant(sim, ctx, route)
    rate_limit(sim, ctx)
    return route.handler(ctx)
  end, trace)
  if ok then return json_response(body, status, headers) end
  if errors.is_error(body) then
    local resp = errors.render(route.service, body)
    resp.rate_limited = body.limited
    return resp
  end
  sim:log_error("handler " .. req.method .. " " .. req.path .. ": " .. tostring(body))
  return errors.render(route.service, { status = 500,
    message = "An unknown internal server error has occurred." })
end

--- The response to req (which is not a /__sim/ call).
function Router:dispatch(sim, req)
  local path = req.path
  if path:find(KG_INTEGRATION) then  -- Knox Guard's integration server: same API, same state here
    path = "/kcs/v1.1/kg/" .. path:sub(#"/kcs/v1.1/kg-integration/" + 1)
  end
  local service = M.service_of(path)
  local allowed
  for _, route in ipairs(self.by_service[service] or {}) do
    local caps = table.pack(path:find(route.path))
    if caps[1] then
      if route.method == req.method or (req.method == "HEAD" and route.method == "GET") then
        return self:run(sim, req, route, caps)
      end
      allowed = allowed or {}
      allowed[route.method] = true
    end
  end
  if allowed then
    local methods = {}
    for m in pairs(allowed) do methods[#methods + 1] = m end
    table.sort(methods)
    return errors.render(service, { status = 405, message = "Request method " .. req.method
      .. " is not supported here", headers = { Allow = table.concat(methods, ", ") } })
  end
  return errors.render(service, { status = 404, message = "No API at " .. req.method .. " "
    .. codec.utf8_safe(req.path):sub(1, 200) })
end

return M
