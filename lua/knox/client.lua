--- knox.client: the request pipeline a user touches.
--
--   route (knox.services: which service and route a path is, its host)
--   -> auth (pick a provider the route accepts, get its header)
--   -> transport (one knox.Session, connections kept alive)
--   -> settle (knox.errors for every failure; renew once on an
--      expired/invalid token, retry what is safe to retry)
--
-- URL building is knox.url, configuration (environment, regions) is
-- knox.config, header facts are knox.headers, redaction is knox.text.
-- Hooks, the clocks and batch are methods of this class kept in their own
-- files: knox/client/hooks.lua, clock.lua, batch.lua.
--
-- Every time the client computes (token expiry, JWT iat/exp, backoff,
-- elapsed) comes from its own clock (`client.clock`, default knox.core.now),
-- and every wait goes through `client.sleep`; both can be replaced, so specs
-- never really sleep and can move time. JWT iat/exp are the one place where
-- the server's absolute time matters: when the server's Date header is more
-- than 60 s away from the clock, they are signed with the server's time.
local core = require "knox.core"
local errors = require "knox.errors"
local auth = require "knox.auth"
local retry = require "knox.retry"
local services = require "knox.services"
local config = require "knox.config"
local url_ = require "knox.url"
local text = require "knox.text"
local headers_ = require "knox.headers"
local bind_service = require("knox.service").bind
local schema = require "knox.schema"
local governor = require "knox.governor" -- [governor]

local json = core.json
local usage = errors.usage
local encode_query, expand_path, encode_form = url_.encode_query, url_.expand_path, url_.encode_form
local clean_url = text.clean_url

local M = {}

local Client = {}
Client.__index = Client

-- The client's methods that live in their own files (hooks, clocks,
-- batch), mixed in here so that they are one class.
for _, part in ipairs { "hooks", "clock", "batch", "job" } do
  for k, f in pairs(require("knox.client." .. part)) do Client[k] = f end
end

---------------------------------------------------------------------------
-- Construction

local SESSION_OPTS = { "timeout", "connect_timeout", "low_speed_limit", "low_speed_time", "proxy", "noproxy",
  "ca_file", "ca_path", "verify", "user_agent", "http_version", "max_response_bytes", "max_batch_bytes",
  "accept_encoding", "debug" }

-- Every option knox.client takes (a misspelt one is refused with the
-- nearest name).
local OPTIONS = { "region", "base_url", "endpoints", "auth", "tenant", "env", "max_attempts", "retry_base",
  "retry_cap", "retry_budget", "random", "clock", "sleep", "concurrency", "bulk_limits", "allow_insecure_http",
  "max_rate" }
for _, k in ipairs(SESSION_OPTS) do OPTIONS[#OPTIONS + 1] = k end
local OPTION_SET = {}
for _, k in ipairs(OPTIONS) do OPTION_SET[k] = true end

--- M.new(opts): a client. See the module header and README for options.
-- Explicit options win and the environment fills the rest (config.merge);
-- with no table at all the environment must say everything.
function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then error("bad argument #1 to 'client' (table expected)", 2) end
  if opts == nil then
    opts = config.from_env(os.getenv)
  else
    for k in pairs(opts) do
      if not OPTION_SET[k] then schema.unknown("option", k, OPTIONS, "knox.client", 2) end
    end
    opts = config.merge(opts, os.getenv)
  end

  local self = setmetatable({}, Client)

  self.endpoints = config.endpoints(opts)

  -- auth providers
  local providers = opts.auth
  if providers ~= nil and auth.is_provider(providers) then providers = { providers } end
  if providers ~= nil and type(providers) ~= "table" then usage("auth must be a provider or a list of them", 2) end
  for i, p in ipairs(providers or {}) do
    if not auth.is_provider(p) then usage("auth[" .. i .. "] is not a knox.auth provider", 2) end
  end
  self.providers = providers or {}
  -- the redactor learns each provider's credential header and held
  -- secrets from the providers themselves, not from a list of names
  self._auth_headers = {}
  for _, p in ipairs(self.providers) do self._auth_headers[p:header_name()] = true end
  self._scrub = auth.scrubber(self.providers)

  if opts.tenant ~= nil and (type(opts.tenant) ~= "string" or opts.tenant == "" or opts.tenant:find "[\r\n]") then
    usage("tenant must be a non-empty string (the managed customer id)", 2)
  end
  self.tenant = opts.tenant

  self.policy = retry.new {
    max_attempts = opts.max_attempts, base = opts.retry_base, cap = opts.retry_cap,
    retry_budget = opts.retry_budget, random = opts.random,
  }

  self.clock = opts.clock or core.now
  self.sleep = opts.sleep or core.sleep
  if type(self.clock) ~= "function" then usage("clock must be a function", 2) end
  if type(self.sleep) ~= "function" then usage("sleep must be a function", 2) end
  self.skew = 0
  -- [governor] one rate governor paces everything this client sends
  self.governor = governor.new { clock = self.clock, sleep = self.sleep, max_rate = opts.max_rate }
  if opts.debug ~= nil and type(opts.debug) ~= "function" then usage("debug must be a function", 2) end
  self.debug = opts.debug and self:_safe_debug(opts.debug)
  self.hooks = {}
  self._routes, self._nroutes = {}, 0
  self.concurrency = opts.concurrency or 8
  if math.type(self.concurrency) ~= "integer" or self.concurrency < 1 or self.concurrency > 1024 then
    usage("concurrency must be an integer from 1 to 1024", 2)
  end
  if opts.allow_insecure_http ~= nil and type(opts.allow_insecure_http) ~= "boolean" then
    usage("allow_insecure_http must be true or false", 2)
  end
  -- a provider's own absolute token URL is held to the same rule
  for _, p in ipairs(self.providers) do
    if type(p.token_url) == "string" and p.token_url:match "^[Hh][Tt][Tt][Pp]://" then
      url_.check_base("token_url", p.token_url, opts.allow_insecure_http)
    end
  end
  if opts.bulk_limits ~= nil and type(opts.bulk_limits) ~= "table" then
    usage("bulk_limits must be a table: { kme = 500, [\"kg.lock_async\"] = 100 }", 2)
  end
  for k, v in pairs(opts.bulk_limits or {}) do
    if math.type(v) ~= "integer" or v < 1 then
      usage("bulk_limits." .. tostring(k) .. " must be a positive integer", 2)
    end
  end
  self.bulk_limits = opts.bulk_limits or {}

  local sopts = {}
  for _, k in ipairs(SESSION_OPTS) do sopts[k] = opts[k] end
  sopts.debug = self.debug
  if sopts.user_agent == nil then
    sopts.user_agent = ("knox-lua/%s libcurl/%s %s"):format(core.version, core.curl_version, _VERSION)
  end
  self.session = core.session(sopts)

  -- every service in the registry with endpoints: client.kme, client.kg ...
  local reg = services.load()
  for _, name in ipairs(reg.names) do
    local spec = reg.services[name]
    if next(spec.endpoints) ~= nil and Client[name] == nil then self[name] = bind_service(self, spec) end
  end
  return self
end

function Client:__tostring()
  return "knox.Client(" .. clean_url(self.endpoints.kcs or "?") .. ")"
end

--- client:revoke(): revokes the current token of every provider that can
-- (knox.auth.oauth2); returns how many were revoked.
function Client:revoke()
  local n = 0
  for _, p in ipairs(self.providers) do
    if p.revoke and p:revoke(self) then n = n + 1 end
  end
  return n
end

--- client:close(): closes the session; further requests raise kind "closed".
function Client:close()
  if self.session then self.session:close() end
end
Client.__close = Client.close

---------------------------------------------------------------------------
-- The pipeline

local function decode_body(body, headers)
  if body == nil or body == "" then return nil end
  local ct = headers and headers["content-type"] or ""
  if ct:find("json", 1, true) or body:match "^%s*[%[{]" then
    return json.decode(body)
  end
  return body
end

--- Turns one HTTP response into its decoded body, or into the knox.Error
-- it means: decoded, err, final. A 2xx that fails to decode is final (no
-- retry can fix it); Knox Guard can answer a failure with 200
-- {"result": "FAIL", "error": {...}}, which is an error like any other.
local function interpret(req, url, status, headers, body)
  if status >= 200 and status < 300 then
    local ok, decoded = pcall(decode_body, body, headers)
    if not ok then
      if not errors.is_error(decoded) then error(decoded, 0) end
      decoded.status = status
      return nil, decoded, true
    end
    if type(decoded) ~= "table" or decoded.result ~= "FAIL" then return decoded end
    local err = errors.check { status = status, headers = headers, body = body,
      service = req.service, method = req.method, url = url }
    if not err then return decoded end
    return nil, err
  end
  return nil, errors.from_response { status = status, headers = headers, body = body,
    service = req.service, method = req.method, url = url }
end

local function scheme_name(scheme)
  return scheme == "legacy" and "knox.auth.keys" or "knox.auth.oauth2"
end

-- The provider for a request's route, or raises a usage error naming the
-- service. A route without schemes (a token endpoint, or a path no
-- service claims) takes the first provider. A call that carries a tenant
-- goes only over a scheme that honours the tenant header there (the
-- route's `tenant = true`): over any other the header is ignored and the
-- call would act on the MSP's own tenant.
function Client:_provider(service, route, tenant)
  local accepted = route and next(route.schemes) ~= nil and route.schemes or nil
  if not tenant and #self.providers > 0 then
    -- the common case, kept cheap: the first provider the route accepts
    for _, p in ipairs(self.providers) do
      if not accepted or accepted[p.scheme] then return p end
    end
  end
  local spec = service and services.get(service)
  local what = spec and spec.title and (spec.title .. " (" .. (route and route.label or service) .. ")")
    or (route and route.label) or service
  if #self.providers == 0 then
    usage("no credentials: give the client an auth provider (knox.auth.keys or knox.auth.oauth2)", 4)
  end
  if tenant then
    if not accepted then
      usage(("cannot tell whether %s honours the tenant header (no service claims this path): name the "
        .. "service (service = ...) or send it without a tenant (tenant = false)"):format(service or "this call"), 4)
    end
    local honours = {}
    for _, p in ipairs(self.providers) do
      local rule = accepted[p.scheme]
      if rule and rule.tenant then return p end
    end
    for scheme, rule in pairs(accepted) do
      if rule.tenant then honours[#honours + 1] = scheme_name(scheme) end
    end
    table.sort(honours)
    if #honours == 0 then
      usage(("%s does not honour the tenant header: a call for tenant %s would act on the credential's own "
        .. "tenant; send it with tenant = false, or use the customer's own credentials"):format(what, tenant), 4)
    end
    usage(("%s for tenant %s needs %s (this client's credentials would ignore the tenant and act on the "
      .. "MSP's own tenant)"):format(what, tenant, table.concat(honours, " or ")), 4)
  end
  for _, p in ipairs(self.providers) do
    if not accepted or accepted[p.scheme] then return p end
  end
  local names = {}
  for scheme in pairs(accepted) do names[#names + 1] = scheme_name(scheme) end
  table.sort(names)
  usage(("no credentials for %s: it accepts only %s"):format(route.label or service,
    table.concat(names, " or ")), 4)
end

-- The context a provider uses to get tokens: posts go through the same
-- session and retry policy, without auth.
function Client:_auth_ctx()
  local ctx = self._ctx
  if ctx then return ctx end
  local client = self
  ctx = {}
  function ctx.now() return client:now() end
  function ctx.server_now() return client:server_now() end
  function ctx.skew() return client.skew end
  function ctx.emit(_, event, data) client:_emit(event, data) end
  function ctx.post_json(_, route, path, tbl)
    return client:_send({
      method = "POST", route = route, service = "auth", path = path,
      headers = { ["content-type"] = "application/json", accept = "application/json" },
      body = json.encode(tbl),
    })
  end
  function ctx.post_form(_, route, path_or_url, form)
    return client:_send({
      method = "POST", route = route, service = "oauth2", path = path_or_url,
      headers = { ["content-type"] = "application/x-www-form-urlencoded", accept = "application/json" },
      body = encode_form(form),
      -- the token endpoint hands out a new token each time: safe to repeat
      idempotent = true,
    })
  end
  self._ctx = ctx
  return ctx
end

function Client:_url(route, path)
  -- request paths start with "/"; only a provider's token_url is whole
  if path:byte(1) ~= 47 then return path end
  return (self.endpoints[route] or self.endpoints.kcs) .. path
end

-- Adds what the caller should see on an error raised for a request.
local function annotate(err, req, url, attempt)
  err.method = err.method or req.method
  err.url = clean_url(err.url or url)
  err.service = err.service or req.service
  err.attempts = attempt
  return err
end

-- The response table a successful call returns.
local function response_of(status, headers, attempts, elapsed, info)
  return { status = status, headers = headers, request_id = headers_.request_id(headers, true),
    attempts = attempts, elapsed = elapsed, info = info }
end

--- What to do after err on try `attempt` of req (renewed: whether this
-- call already renewed its token): "renew" (a fresh token can fix it:
-- renew once and replay, which does not count against max_attempts),
-- "retry" with the delay and the budget it cost, or "fail". A retryable
-- failure that is not retried says why in err.retry_stopped
-- (unsafe_write, max_attempts or budget). Why an error is retryable or
-- asks for renewal at all is knox.errors' decision; whether this call may
-- repeat it is knox.retry's.
function Client:_next_step(err, req, url, attempt, renewed)
  if err.auth_action == "renew" and req.provider and req.provider.renewable and not renewed then
    return "renew"
  end
  local policy = self.policy
  local again, why = policy:decide(err, attempt, req.method, req.idempotent)
  if not again then
    if err.retryable then err.retry_stopped = why end
    return "fail"
  end
  local delay = policy:delay(err, attempt)
  self:_emit("retry", { method = req.method, url = clean_url(url), attempt = attempt, delay = delay,
    error = tostring(err), status = err.status, code = err.code,
    name = err.name or (err.cause and err.cause.name) })
  return "retry", delay, policy:cost(err)
end

-- Drops a provider's tokens after err said a fresh one can help.
function Client:_invalidate(provider, err)
  provider:invalidate()
  self:_emit("token", { scheme = provider.scheme, action = "invalidated", reason = err.name or err.code })
end

--- The one settle step of request and batch: what one try of req came to.
-- st: the call's state { attempt =, renewed =, spent = , started = }.
-- ok, status, headers, body, info: the transport's answer (ok false:
-- status is the error it raised). Returns "ok", decoded, response; or
-- "fail", err; or "renew", err (st.renewed set, the try not counted); or
-- "retry", err, delay (the budget it cost added to st.spent).
function Client:_settle(req, url, st, ok, status, rheaders, rbody, info)
  local err
  if not ok then
    err = status
    if not errors.is_error(err) then error(err, 0) end
    if err.kind == "closed" then error(err, 0) end
  else
    self:_observe_date(rheaders)
    local elapsed = self.clock() - st.started
    if self.hooks.response then
      self:_emit_response(req, url, status, rheaders, rbody, st.attempt, elapsed)
    end
    local decoded, final
    decoded, err, final = interpret(req, url, status, rheaders, rbody)
    if not err then
      self.policy:success(st.spent)
      return "ok", decoded, response_of(status, rheaders, st.attempt, elapsed, info)
    end
    if final then return "fail", annotate(err, req, url, st.attempt) end
  end
  annotate(err, req, url, st.attempt)
  local step, delay, cost = self:_next_step(err, req, url, st.attempt, st.renewed)
  if step == "renew" then
    st.renewed = true
    st.attempt = st.attempt - 1
  elseif step == "retry" then
    st.spent = st.spent + cost
  end
  return step, err, delay
end

--- client:_send(req) -> body, response. One logical request: auth, the
-- transport, then settle until it is done.
-- req: method, path, route, service, headers, body, timeout, idempotent,
-- provider (or nil for no auth). req is this call's own: it is completed
-- here (url, auth header, replayable) and handed to the session as the
-- request table itself, which reads only the fields it knows.
function Client:_send(req)
  local session = self.session
  local url = self:_url(req.route, req.path)
  local st = { attempt = 0, renewed = false, spent = 0, started = self.clock() }
  local headers = req.headers
  req.url = url
  -- a write the caller calls idempotent may also be resent by libcurl
  -- itself on a dead kept-alive connection; other writes never are
  req.replayable = req.idempotent or nil

  while true do
    st.attempt = st.attempt + 1
    self.governor:before(req) -- [governor] waits for a token
    if req.provider then
      local name, value = req.provider:authorize(self._ctx or self:_auth_ctx())
      headers[name] = value
      req.auth_header = name
    end
    if self.hooks.request then self:_emit_request(req, url, headers, st.attempt) end

    local ok, status, rheaders, rbody, info = pcall(session.request, session, req)
    self.governor:after(req, ok, status, rheaders) -- [governor] a 429 slows, successes speed up
    local step, a, b = self:_settle(req, url, st, ok, status, rheaders, rbody, info)
    if step == "ok" then return a, b end
    if step == "fail" then error(a, 0) end
    if step == "renew" then
      self:_invalidate(req.provider, a)
    else
      self.sleep(b)
    end
  end
end

local function check_headers(h)
  if h == nil then return { accept = "application/json" } end
  local out = {}
  if type(h) ~= "table" then usage("headers must be a table", 4) end
  for k, v in pairs(h) do
    if type(k) ~= "string" or not k:match "^[%w!#$%%&'*+%-.^_`|~]+$" then
      usage("invalid header name " .. tostring(k), 4)
    end
    if type(v) == "number" then v = tostring(v) end
    if type(v) ~= "string" or v:find "[\r\n%z]" then
      usage("header '" .. k .. "' must be a string without line breaks", 4)
    end
    out[k:lower()] = v
  end
  return out
end

-- The registry's classify() with a per-client cache: paths repeat (they
-- come from templates); the cache is emptied when it grows large, so
-- unique paths cannot grow it forever. Returns service, route, plain.
function Client:_classify(path)
  local cache = self._routes
  local hit = cache[path]
  if hit then return hit[1], hit[2], hit[3] end
  local service, route = services.classify(path)
  -- plain: nothing in the path to fill in or escape
  local plain = not path:find("[^%w%-%._~!$&'()*+,;=:@/]")
  if self._nroutes >= 512 then
    cache = {}
    self._routes, self._nroutes = cache, 0
  end
  cache[path] = { service, route, plain }
  self._nroutes = self._nroutes + 1
  return service, route, plain
end

local METHODS = { GET = true, POST = true, PUT = true, DELETE = true, PATCH = true, HEAD = true, OPTIONS = true }
local NO_OPTS = setmetatable({}, { __newindex = function() error("read-only", 2) end })

-- The body as sent, and its content type.
local function body_of(body, headers)
  if type(body) == "table" then
    body = json.encode(body)
  elseif body ~= nil and type(body) ~= "string" then
    usage("body must be a table (sent as JSON) or a string", 4)
  end
  if body ~= nil then headers["content-type"] = headers["content-type"] or "application/json" end
  return body
end

-- Builds the internal request for client:request / client:batch.
function Client:_prepare(method, path, opts)
  if not METHODS[method] and (type(method) ~= "string" or not method:match "^[A-Z]+$") then
    error("bad argument #1 to 'request' (HTTP method in capitals expected, got " .. tostring(method) .. ")", 3)
  end
  if type(path) ~= "string" or path:byte(1) ~= 47 then
    error("bad argument #2 to 'request' (path starting with '/' expected)", 3)
  end
  if opts ~= nil and type(opts) ~= "table" then error("bad argument #3 to 'request' (table expected)", 3) end
  opts = opts or NO_OPTS
  local params, query = opts.params, opts.query
  if (params ~= nil and type(params) ~= "table") or (query ~= nil and type(query) ~= "table") then
    local k = (params ~= nil and type(params) ~= "table") and "params" or "query"
    error(("bad argument #3 to 'request' (field '%s' must be a table, got %s)"):format(k, type(opts[k])), 3)
  end
  local service, route, plain = self:_classify(path)
  if opts.service ~= nil then
    if type(opts.service) ~= "string" then usage("service must be a string", 3) end
    service = opts.service
    -- a path no service claims goes where the named service's first route goes
    if route == nil then
      local spec = services.get(service)
      route = spec and spec.routes[1]
    end
  end
  local headers = check_headers(opts.headers)
  headers.accept = headers.accept or "application/json"
  local body = body_of(opts.body, headers)
  local tenant = opts.tenant
  if tenant == nil then tenant = self.tenant end
  if tenant ~= nil and tenant ~= false and (type(tenant) ~= "string" or tenant == "" or tenant:find "[\r\n]") then
    usage("tenant must be a non-empty string (the managed customer id) or false", 3)
  end
  if tenant then headers["x-wsm-managed-tenantid"] = tenant end
  local provider
  if opts.auth ~= false then provider = self:_provider(service, route, tenant) end
  if opts.timeout ~= nil and (type(opts.timeout) ~= "number" or opts.timeout <= 0) then
    usage("timeout must be a positive number of seconds", 3)
  end
  return {
    method = method,
    path = (plain and opts.params == nil and path or expand_path(path, opts.params))
      .. (opts.query ~= nil and encode_query(opts.query) or ""),
    route = route and route.name or "kcs", service = service, headers = headers, body = body,
    timeout = opts.timeout, idempotent = opts.idempotent == true, provider = provider,
  }
end

--- client:request(method, path [, opts]) -> body, response
-- opts: query, params ({name} path placeholders), body (table -> JSON, or a
-- string), headers, service, timeout, idempotent, tenant (false to omit),
-- auth (false to send none). Non-2xx raises the knox.Error from
-- knox.errors.from_response.
function Client:request(method, path, opts)
  return self:_send(self:_prepare(method, path, opts))
end

--- M.from_env([getenv]): client options read from the environment.
M.from_env = config.from_env

M.Client = Client
return M
