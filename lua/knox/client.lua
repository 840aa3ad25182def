--- knox.client: the request pipeline a user touches.
--
--   auth (pick a provider the service accepts, get its header)
--   -> transport (one knox.Session, connections kept alive)
--   -> normalize (knox.errors.from_response for every non-2xx)
--   -> renew once on an expired/invalid token, retry what is safe to retry.
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
local bind_service = require("knox.service").bind

local json = core.json

local M = {}

local Client = {}
Client.__index = Client

local REGIONS = {
  us = { kcs = "https://us-kcs-api.samsungknox.com", api = "https://api.samsungknox.com" },
  eu = { kcs = "https://eu-kcs-api.samsungknox.com", api = "https://api.samsungknox.com" },
}

-- Routes: which host a path goes to. Legacy and kcs services live on the
-- regional kcs host; OAuth and OAuth-only services on api.samsungknox.com
-- (Knox Configure v2's host is UNCONFIRMED: by analogy with MSP, api).
local ROUTE_HOST = {
  auth = "kcs", kme = "kcs", kg = "kcs", kdp = "kcs", kc = "kcs", kcs = "kcs",
  oauth = "api", msp = "api", kc2 = "api", api = "api",
}

-- Which schemes each service accepts (shared/knox-docs/api-notes.md §1).
-- KDP's docs disagree (older pages: x-knox-apitoken, Sep 2025: OAuth), so
-- both are accepted; the order of the client's providers decides.
local SCHEMES = {
  kme = { legacy = true, oauth2 = true },
  kg = { legacy = true },
  kdp = { legacy = true, oauth2 = true },
  kc = { legacy = true },
  kc2 = { oauth2 = true },
  msp = { oauth2 = true },
}

-- path prefix -> service name, route
local PREFIXES = {
  { "^/ams/v%d+/oauth2/", "oauth2", "oauth" },
  { "^/ams/", "auth", "auth" },
  { "^/kcs/v[%d.]+/kme/", "kme", "kme" },
  { "^/kcs/v[%d.]+/kg", "kg", "kg" },
  { "^/kcs/v[%d.]+/rp/", "kdp", "kdp" },
  { "^/bulkenroll/", "kdp", "kdp" },
  { "^/kcs/v[%d.]+/kc/", "kc", "kc" },
  { "^/kc/v2/", "kc", "kc2" },
  { "^/msp/", "msp", "msp" },
}

--- The service and route of a request path (nil, "kcs" when unknown).
local function classify(path)
  for _, p in ipairs(PREFIXES) do
    if path:find(p[1]) then return p[2], p[3] end
  end
  return nil, "kcs"
end
M.classify = classify

local function usage(msg, level)
  error(errors.new { kind = "usage", message = msg }, (level or 1) + 1)
end

---------------------------------------------------------------------------
-- URLs

-- RFC 3986 unreserved characters pass; everything else is %XX.
local function escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end
M.escape = escape

local function query_value(k, v)
  local t = math.type(v)
  if t == "integer" then return tostring(v) end
  if t == "float" then
    if v ~= v or v == math.huge or v == -math.huge then
      usage("query parameter '" .. k .. "' is not a finite number", 4)
    end
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return ("%d"):format(v) end
    return ("%.17g"):format(v)
  end
  if type(v) == "string" then return v end
  if type(v) == "boolean" then return tostring(v) end
  usage("query parameter '" .. k .. "' has a " .. type(v) .. " value", 4)
end

--- Encodes a query table: keys sorted (stable URLs), arrays as repeated
-- keys, RFC 3986 escaping. A string is taken as already encoded.
local function encode_query(q)
  if q == nil then return "" end
  if type(q) == "table" and next(q) == nil then return "" end
  if type(q) == "string" then return q ~= "" and ("?" .. q:gsub("^%?", "")) or "" end
  if type(q) ~= "table" then usage("query must be a table or a string", 3) end
  local keys = {}
  for k in pairs(q) do
    if type(k) ~= "string" then usage("query keys must be strings", 3) end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = q[k]
    if type(v) == "table" then
      local n = #v
      local count = 0
      for key in pairs(v) do
        count = count + 1
        if math.type(key) ~= "integer" or key < 1 or key > n then count = -1 break end
      end
      if count ~= n then usage("query parameter '" .. k .. "' must be a list (values as repeated keys)", 3) end
      for _, item in ipairs(v) do
        parts[#parts + 1] = escape(k) .. "=" .. escape(query_value(k, item))
      end
    else
      parts[#parts + 1] = escape(k) .. "=" .. escape(query_value(k, v))
    end
  end
  return #parts > 0 and ("?" .. table.concat(parts, "&")) or ""
end
M.encode_query = encode_query

local function encode_form(form)
  local q = encode_query(form)
  return q:sub(2)
end

--- Fills {name} placeholders from params (each value escaped as one path
-- segment) and escapes whatever else in the path is not allowed there,
-- leaving "/" and valid %XX escapes alone.
local function expand_path(path, params)
  -- most paths need nothing done
  if not path:find("[^%w%-%._~!$&'()*+,;=:@/]") then return path end
  path = path:gsub("{([%w_]+)}", function(name)
    local v = params and params[name]
    if v == nil then usage("path parameter '" .. name .. "' is missing", 5) end
    if type(v) ~= "string" and math.type(v) ~= "integer" then
      usage("path parameter '" .. name .. "' must be a string or an integer", 5)
    end
    v = tostring(v)
    if v == "" then usage("path parameter '" .. name .. "' is empty", 5) end
    -- libcurl would collapse these, sending the call to another endpoint
    if v == "." or v == ".." then usage("path parameter '" .. name .. "' must not be '.' or '..'", 5) end
    return escape(v)
  end)
  return (path:gsub("%%(%x?%x?)", function(hex)
    if #hex == 2 then return nil end
    return "%25" .. hex
  end):gsub("[^%w%-%._~!$&'()*+,;=:@/%%]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end
M.expand_path = expand_path

-- No userinfo, fragment or secret-looking query values: what errors and
-- hooks may show of a URL.
local clean_url = errors.clean_url

local function check_base(name, url)
  if type(url) ~= "string" or not url:match "^https?://[^/]+" then
    usage("endpoint '" .. name .. "' must be an http(s) URL, got " .. tostring(url), 4)
  end
  return (url:gsub("/+$", ""))
end

---------------------------------------------------------------------------
-- Dates (for clock skew)

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
  Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- Days since 1970-01-01 of a civil date (proleptic Gregorian), without
-- os.time, which would apply the local time zone.
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

--- Seconds since the epoch of an HTTP-date (IMF-fixdate), or nil.
local function parse_http_date(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, h, mi, sec = s:match "^%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$"
  local m = MONTHS[mon or ""]
  if not m then return nil end
  y, d, h, mi, sec = tonumber(y), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  -- a Date no real server sends is ignored rather than believed
  if y < 2000 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then return nil end
  return days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + sec
end
M.parse_http_date = parse_http_date

-- Differences within this many seconds are noise (Date has 1 s resolution,
-- requests take time): the local clock is trusted.
local SKEW_THRESHOLD = 60

---------------------------------------------------------------------------
-- Redaction for hooks

local SECRET_HEADERS = {
  ["x-knox-apitoken"] = true, authorization = true, ["proxy-authorization"] = true,
  cookie = true, ["set-cookie"] = true,
}

local function redact_headers(h)
  local out = {}
  for k, v in pairs(h or {}) do
    out[k] = SECRET_HEADERS[k:lower()] and "[redacted]" or v
  end
  return out
end
M.redact_headers = redact_headers

---------------------------------------------------------------------------
-- Construction

local function env_client_opts(getenv)
  local function get(name)
    local v = getenv(name)
    if v == "" then return nil end
    return v
  end
  local opts = {}
  opts.region, opts.base_url = get "KNOX_REGION", get "KNOX_BASE_URL"
  if not opts.region and not opts.base_url then
    usage("cannot build a client from the environment: KNOX_REGION (us or eu) or KNOX_BASE_URL is not set", 3)
  end
  opts.tenant, opts.ca_file = get "KNOX_TENANT", get "KNOX_CA_FILE"
  local providers = {}
  local keys_file, client_id = get "KNOX_KEYS_FILE", get "KNOX_CLIENT_ID"
  if keys_file or client_id then
    if not keys_file then usage("KNOX_KEYS_FILE is not set (KNOX_CLIENT_ID is)", 3) end
    if not client_id then usage("KNOX_CLIENT_ID is not set (KNOX_KEYS_FILE is)", 3) end
    providers[#providers + 1] = auth.keys { file = keys_file, client_id = client_id }
  end
  local oid, osec, oscope = get "KNOX_OAUTH_CLIENT_ID", get "KNOX_OAUTH_CLIENT_SECRET", get "KNOX_OAUTH_SCOPE"
  if oid or osec or oscope then
    for _, pair in ipairs { { "KNOX_OAUTH_CLIENT_ID", oid }, { "KNOX_OAUTH_CLIENT_SECRET", osec },
      { "KNOX_OAUTH_SCOPE", oscope } } do
      if not pair[2] then usage(pair[1] .. " is not set (the other KNOX_OAUTH_* variables are)", 3) end
    end
    providers[#providers + 1] = auth.oauth2 { client_id = oid, client_secret = osec, scope = oscope }
  end
  if #providers == 0 then
    usage("cannot build a client from the environment: no credentials; set KNOX_KEYS_FILE and KNOX_CLIENT_ID, "
      .. "or KNOX_OAUTH_CLIENT_ID, KNOX_OAUTH_CLIENT_SECRET and KNOX_OAUTH_SCOPE", 3)
  end
  opts.auth = providers
  return opts
end

--- M.from_env([getenv]): client options read from the environment.
function M.from_env(getenv)
  return env_client_opts(getenv or os.getenv)
end

local SESSION_OPTS = { "timeout", "connect_timeout", "low_speed_limit", "low_speed_time", "proxy", "noproxy",
  "ca_file", "ca_path", "verify", "user_agent", "http_version", "max_response_bytes", "accept_encoding", "debug" }

--- M.new(opts): a client. See the module header and README for options.
function M.new(opts)
  if opts == nil then opts = env_client_opts(os.getenv) end
  if type(opts) ~= "table" then error("bad argument #1 to 'client' (table expected)", 2) end

  local self = setmetatable({}, Client)

  -- endpoints
  local ep = {}
  if opts.base_url ~= nil then
    local b = check_base("base_url", opts.base_url)
    for route in pairs(ROUTE_HOST) do ep[route] = b end
  else
    local region = opts.region or "us"
    local hosts = REGIONS[region]
    if not hosts then usage("unknown region '" .. tostring(region) .. "' (us or eu, or give base_url)", 2) end
    for route, host in pairs(ROUTE_HOST) do ep[route] = hosts[host] end
  end
  if opts.endpoints ~= nil then
    if type(opts.endpoints) ~= "table" then usage("endpoints must be a table", 2) end
    for k, v in pairs(opts.endpoints) do
      if not ROUTE_HOST[k] then
        usage("unknown endpoint '" .. tostring(k) .. "' (auth, oauth, kme, kg, kdp, kc, kc2, msp, kcs, api)", 2)
      end
      ep[k] = check_base(k, v)
    end
  end
  self.endpoints = ep

  -- auth providers
  local providers = opts.auth
  if providers ~= nil and auth.is_provider(providers) then providers = { providers } end
  if providers ~= nil and type(providers) ~= "table" then usage("auth must be a provider or a list of them", 2) end
  for i, p in ipairs(providers or {}) do
    if not auth.is_provider(p) then usage("auth[" .. i .. "] is not a knox.auth provider", 2) end
  end
  self.providers = providers or {}

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
  self.debug = opts.debug
  self.hooks = {}
  self._routes, self._nroutes = {}, 0
  self.concurrency = opts.concurrency or 8

  local sopts = {}
  for _, k in ipairs(SESSION_OPTS) do sopts[k] = opts[k] end
  if sopts.user_agent == nil then
    sopts.user_agent = ("knox-lua/%s libcurl/%s %s"):format(core.version, core.curl_version, _VERSION)
  end
  self.session = core.session(sopts)

  for _, name in ipairs { "kme", "kg", "msp", "kdp", "kc" } do
    self[name] = bind_service(self, require("knox.services." .. name))
  end
  return self
end

function Client:__tostring()
  return "knox.Client(" .. clean_url(self.endpoints.kcs or "?") .. ")"
end

--- client:close(): closes the session; further requests raise kind "closed".
function Client:close()
  if self.session then self.session:close() end
end
Client.__close = Client.close

---------------------------------------------------------------------------
-- Hooks

local EVENTS = { request = true, response = true, retry = true, token = true }

--- client:on(event, fn): calls fn(data) on "request", "response", "retry"
-- or "token". The data is redacted: no token, key or secret is in it.
function Client:on(event, fn)
  if not EVENTS[event] then
    error("bad argument #1 to 'on' (request, response, retry or token expected, got " .. tostring(event) .. ")", 2)
  end
  if type(fn) ~= "function" then error("bad argument #2 to 'on' (function expected)", 2) end
  local list = self.hooks[event] or {}
  list[#list + 1] = fn
  self.hooks[event] = list
  return self
end

function Client:_emit(event, data)
  local list = self.hooks[event]
  if not list then return end
  for _, fn in ipairs(list) do fn(data) end
end

---------------------------------------------------------------------------
-- Time

--- client:now(): the client's clock. Token lifetimes are durations, so
-- they are measured on this clock whatever its offset from the server's.
function Client:now()
  return self.clock()
end

--- client:server_now(): the time as the server sees it: the client's clock
-- plus the skew measured from the server's Date header, when that is over
-- 60 s. Absolute timestamps the server checks (JWT iat/exp) use this.
function Client:server_now()
  return self.clock() + self.skew
end

function Client:_observe_date(headers)
  local date = headers and headers.date
  if date == nil then return end
  -- Date changes once a second: parse each distinct value once (the skew
  -- is still measured every time: the local clock may have jumped)
  local server
  if date == self._date then
    server = self._date_value
  else
    server = parse_http_date(date)
    if not server then return end
    self._date, self._date_value = date, server
  end
  local diff = server - self.clock()
  local skew = math.abs(diff) > SKEW_THRESHOLD and diff or 0
  if (skew == 0) ~= (self.skew == 0) or math.abs(skew - self.skew) > SKEW_THRESHOLD then
    if self.debug and skew ~= 0 then
      self.debug { type = "info", event = "clock_skew", skew = diff,
        text = ("server clock differs from local clock by %.0f s; signing with server time"):format(diff) }
    end
  end
  self.skew = skew
end

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
      service = req.service, method = req.method, url = clean_url(url) }
    if not err then return decoded end
    return nil, err
  end
  return nil, errors.from_response { status = status, headers = headers, body = body,
    service = req.service, method = req.method, url = clean_url(url) }
end

local function request_id(headers)
  if not headers then return nil end
  return headers["x-request-id"] or headers["x-knox-transactionid"] or headers["x-amzn-requestid"]
end

-- The provider for a service, or raises a usage error naming the service.
function Client:_provider(service, route)
  local accepted = SCHEMES[route] or SCHEMES[service]
  for _, p in ipairs(self.providers) do
    if not accepted or accepted[p.scheme] then return p end
  end
  if #self.providers == 0 then
    usage("no credentials: give the client an auth provider (knox.auth.keys or knox.auth.oauth2)", 4)
  end
  local names = {}
  for scheme in pairs(accepted) do names[#names + 1] = scheme == "legacy" and "knox.auth.keys" or "knox.auth.oauth2" end
  table.sort(names)
  usage(("no credentials for %s: it accepts only %s"):format(route == "kc2" and "kc (v2)" or service,
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
  return { status = status, headers = headers, request_id = request_id(headers),
    attempts = attempts, elapsed = elapsed, info = info }
end

--- What to do after err on try `attempt` of req (renewed: whether this
-- call already renewed its token): "renew" (a fresh token can fix it:
-- renew once and replay, which does not count against max_attempts),
-- "retry" with the delay and the budget it cost, or "fail". A retryable
-- failure that is not retried says why in err.retry_stopped
-- (unsafe_write, max_attempts or budget).
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

--- client:_send(req) -> body, response. One logical request: auth, the
-- transport, normalization, renew-once and retries.
-- req: method, path, route, service, headers, body, timeout, idempotent,
-- provider (or nil for no auth). req is this call's own: it is completed
-- here (url, auth header, replayable) and handed to the session as the
-- request table itself, which reads only the fields it knows.
function Client:_send(req)
  local session, policy = self.session, self.policy
  local url = self:_url(req.route, req.path)
  local started = self.clock()
  local attempt, renewed, spent = 0, false, 0
  local headers = req.headers
  req.url = url
  -- a write the caller calls idempotent may also be resent by libcurl
  -- itself on a dead kept-alive connection; other writes never are
  req.replayable = req.idempotent or nil

  while true do
    attempt = attempt + 1
    if req.provider then
      local name, value = req.provider:authorize(self:_auth_ctx())
      headers[name] = value
    end
    if self.hooks.request then
      self:_emit("request", { method = req.method, url = clean_url(url), service = req.service,
        headers = redact_headers(headers), body_size = req.body and #req.body or 0, attempt = attempt })
    end

    local ok, status, rheaders, rbody, info = pcall(session.request, session, req)
    local err
    if not ok then
      err = status
      if not errors.is_error(err) then error(err, 0) end
      if err.kind == "closed" then error(err, 0) end
    else
      self:_observe_date(rheaders)
      local elapsed = self.clock() - started
      if self.hooks.response then
        self:_emit("response", { method = req.method, url = clean_url(url), service = req.service,
          status = status, headers = redact_headers(rheaders), body_size = #rbody, attempt = attempt,
          elapsed = elapsed })
      end
      local decoded, final
      decoded, err, final = interpret(req, url, status, rheaders, rbody)
      if not err then
        policy:success(spent)
        return decoded, response_of(status, rheaders, attempt, elapsed, info)
      end
      if final then error(annotate(err, req, url, attempt), 0) end
    end
    annotate(err, req, url, attempt)

    local step, delay, cost = self:_next_step(err, req, url, attempt, renewed)
    if step == "renew" then
      renewed = true
      attempt = attempt - 1
      self:_invalidate(req.provider, err)
    elseif step == "retry" then
      spent = spent + cost
      self.sleep(delay)
    else
      error(err, 0)
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

-- classify() with a per-client cache: paths repeat (they come from
-- templates); the cache is emptied when it grows large, so unique paths
-- cannot grow it forever.
function Client:_classify(path)
  local cache = self._routes
  local hit = cache[path]
  if hit then return hit[1], hit[2], hit[3] end
  local service, route = classify(path)
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
  local service, route, plain = self:_classify(path)
  if opts.service ~= nil then
    if type(opts.service) ~= "string" then usage("service must be a string", 3) end
    service = opts.service
    if route == "kcs" then route = ROUTE_HOST[service] and service or "kcs" end
  end
  local headers = check_headers(opts.headers)
  headers.accept = headers.accept or "application/json"
  local body = opts.body
  if type(body) == "table" then
    body = json.encode(body)
    headers["content-type"] = headers["content-type"] or "application/json"
  elseif type(body) == "string" then
    headers["content-type"] = headers["content-type"] or "application/json"
  elseif body ~= nil then
    usage("body must be a table (sent as JSON) or a string", 3)
  end
  local tenant = opts.tenant
  if tenant == nil then tenant = self.tenant end
  if tenant then headers["x-wsm-managed-tenantid"] = tenant end
  local provider
  if opts.auth ~= false then provider = self:_provider(service, route) end
  if opts.timeout ~= nil and (type(opts.timeout) ~= "number" or opts.timeout <= 0) then
    usage("timeout must be a positive number of seconds", 3)
  end
  return {
    method = method,
    path = (plain and opts.params == nil and path or expand_path(path, opts.params)) .. encode_query(opts.query),
    route = route, service = service, headers = headers, body = body, timeout = opts.timeout,
    idempotent = opts.idempotent == true, provider = provider,
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

--- client:batch(requests [, opts]) -> results
-- Runs requests ({method, path, opts} each) at once over curl multi.
-- Results come in input order: { body =, response = } for a success, the
-- knox.Error for a failure (not raised), so one failure loses nothing else.
-- One token renewal serves the whole batch; retryable failures are retried
-- in further rounds under the same policy and budget.
function Client:batch(requests, opts)
  if type(requests) ~= "table" then error("bad argument #1 to 'batch' (table expected)", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("bad argument #2 to 'batch' (table expected)", 2) end
  opts = opts or {}
  local count = requests.n or #requests
  for i = 1, count do
    -- a hole would end ipairs early and leave the rest unsent, unnoticed
    if requests[i] == nil then error("bad argument #1 to 'batch' (item " .. i .. " is nil)", 2) end
  end
  local concurrency = opts.concurrency or self.concurrency
  local reqs, results, state = {}, {}, {}
  for i, r in ipairs(requests) do
    if type(r) ~= "table" then error("bad argument #1 to 'batch' (item " .. i .. " is not a table)", 2) end
    reqs[i] = self:_prepare(r[1] or r.method, r[2] or r.path, r[3] or r.opts)
    state[i] = { attempt = 0, renewed = false, spent = 0 }
  end
  local pending = {}
  for i = 1, #reqs do pending[i] = i end
  local started = self.clock()
  local ctx = self:_auth_ctx()

  while #pending > 0 do
    local auth_values = {}
    local list = {}
    for n, i in ipairs(pending) do
      local req = reqs[i]
      local headers = {}
      for k, v in pairs(req.headers) do headers[k] = v end
      local p = req.provider
      if p then
        if not auth_values[p] then
          local ok, name, value = pcall(p.authorize, p, ctx)
          auth_values[p] = ok and { name, value } or { err = name }
        end
        local a = auth_values[p]
        if a.err then
          if not errors.is_error(a.err) then error(a.err, 0) end
          headers = nil
        else
          headers[a[1]] = a[2]
        end
      end
      state[i].attempt = state[i].attempt + 1
      list[n] = headers and { method = req.method, url = self:_url(req.route, req.path), headers = headers,
        body = req.body, timeout = req.timeout, replayable = req.idempotent or nil } or false
    end

    local sendable, map = {}, {}
    for n, item in ipairs(list) do
      if item then
        sendable[#sendable + 1] = item
        map[#sendable] = n
      else
        local i = pending[n]
        results[i] = auth_values[reqs[i].provider].err
      end
    end
    local out = #sendable > 0 and self.session:batch(sendable, { concurrency = concurrency }) or {}

    local next_pending, renew, max_delay = {}, {}, 0
    for m, res in ipairs(out) do
      local i = pending[map[m]]
      local req, st = reqs[i], state[i]
      local url = self:_url(req.route, req.path)
      local err
      if errors.is_error(res) then
        err = res
      else
        self:_observe_date(res.headers)
        local decoded, final
        decoded, err, final = interpret(req, url, res.status, res.headers, res.body)
        if not err then
          self.policy:success(st.spent)
          results[i] = { body = decoded,
            response = response_of(res.status, res.headers, st.attempt, self.clock() - started, res.info) }
        elseif final then
          results[i] = annotate(err, req, url, st.attempt)
          err = nil
        end
      end
      if err then
        annotate(err, req, url, st.attempt)
        local step, delay, cost = self:_next_step(err, req, url, st.attempt, st.renewed)
        if step == "renew" then
          st.renewed = true
          st.attempt = st.attempt - 1
          renew[req.provider] = err
          next_pending[#next_pending + 1] = i
        elseif step == "retry" then
          max_delay = math.max(max_delay, delay)
          st.spent = st.spent + cost
          next_pending[#next_pending + 1] = i
        else
          results[i] = err
        end
      end
    end
    for p, err in pairs(renew) do self:_invalidate(p, err) end
    if max_delay > 0 then self.sleep(max_delay) end
    table.sort(next_pending)
    pending = next_pending
  end
  return results
end

M.Client = Client
return M
