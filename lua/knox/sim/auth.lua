--- knox.sim authentication: Knox Cloud Authentication (legacy: keys.json,
-- client-identifier JWT, x-knox-apitoken) and Knox OAuth 2.0 (client
-- credentials, Authorization: Bearer, scopes). api-notes §2 and §3.
--
-- Clocks: every expiry check follows the simulator's clock (which POST
-- /__sim/clock moves and the Date header shows): tokens it issues, and the
-- iat/exp claims of the JWTs clients sign, with 60 s leeway. As with Knox
-- (api-notes §7 pitfall 1), a client whose clock differs from the server's
-- signs JWTs that look expired or not yet valid; a careful client corrects
-- with the Date header.
local crypto = require "knox.sim.crypto"
local codec = require "knox.sim.codec"
local json = require "knox.sim.json"
local errors = require "knox.sim.errors"

local raise = errors.raise

local M = {}

M.LEEWAY = 60

--- Every scope the simulator knows (api-notes §3.5); the default grant.
M.ALL_SCOPES = {
  "kme", "kme.profiles", "kme.profiles:view", "kme.profiles:manage", "kme.devices", "kme.devices:view",
  "kme.devices:manage", "kme.reseller",
  "kdp", "kdp.devices", "kdp.devices:view", "kdp.devices:manage", "kdp.profilealias", "kdp.customers",
  "msp", "msp.customers", "msp.profiles",
  "kc", "kc.devices", "kc.devices:view", "kc.devices:manage", "kc.profile", "kc.profile:view",
  "kc.profile:manage", "kc.profile:assign", "kc.license", "kc.license:view", "kc.license:manage",
  "email", "openid",
}

local Auth = {}
Auth.__index = Auth

function M.new()
  local self = setmetatable({ keys = {}, key_order = {}, clients = {}, client_order = {} }, Auth)
  self:reset()
  return self
end

-- A map whose expired entries are swept once it grows past a limit; the
-- next limit is twice what survives, so sweeping stays amortised O(1).
local Expiring = {}
Expiring.__index = Expiring

local function expiring(field)
  return setmetatable({ map = {}, n = 0, limit = 10000, field = field }, Expiring)
end

function Expiring:put(key, value, now)
  if self.n >= self.limit then
    local n, field = 0, self.field
    for k, v in pairs(self.map) do
      if v[field] <= now then self.map[k] = nil else n = n + 1 end
    end
    self.n, self.limit = n, math.max(10000, 2 * n)
  end
  if self.map[key] == nil then self.n = self.n + 1 end
  self.map[key] = value
end

--- Forgets every issued token, seen jti and cached verification.
function Auth:reset()
  self.tokens = expiring("expires")
  self.oauth_tokens = expiring("expires")
  self.jtis = expiring("exp")
  self.vcache, self.nvcache = {}, 0
end

--- Registers the keys.json public key of a client identifier.
function Auth:register_key(client_id, public_b64, file)
  local key, der = crypto.public_key(public_b64)
  if not key then return nil, "the Public key of " .. (file or client_id) .. " is unusable: " .. der end
  if not self.keys[client_id] then self.key_order[#self.key_order + 1] = client_id end
  self.keys[client_id] = { client_id = client_id, key = key, der = der, file = file }
  return true
end

--- Registers an OAuth client (client credentials) allowed the given scopes.
function Auth:register_client(id, secret, scopes)
  local set = {}
  for _, s in ipairs(scopes) do set[s] = true end
  if not self.clients[id] then self.client_order[#self.client_order + 1] = id end
  self.clients[id] = { id = id, secret = secret, scopes = scopes, allowed = set }
end

local function bad_jwt(code, message)
  raise(401, code, "ACCESS_TOKEN_BAD_REQUEST", message)
end

-- Checks the iat/exp claims of a client-signed JWT against now.
local function check_times(p, now, code, what)
  if type(p.iat) ~= "number" or type(p.exp) ~= "number" then
    bad_jwt(code, what .. ": the iat and exp claims are required (NumericDate)")
  end
  if p.iat > now + M.LEEWAY then bad_jwt(code, what .. ": iat is in the future; check the signer's clock") end
  if p.exp <= now - M.LEEWAY then
    raise(403, 4032251, "ACCESS_TOKEN_EXPIRED", what .. " has expired (exp); sign a new one")
  end
end

--- POST /ams/v1/users/accesstoken (api-notes §2.4).
function Auth:access_token(ctx)
  local b = ctx:body()
  local jwt_s, pub_s, validity = b.clientIdentifierJwt, b.base64EncodedStringPublicKey,
    b.validityForAccessTokenInMinutes
  if type(jwt_s) ~= "string" or jwt_s == "" then errors.invalid("auth", "clientIdentifierJwt is required") end
  if type(pub_s) ~= "string" or pub_s == "" then
    errors.invalid("auth", "base64EncodedStringPublicKey is required")
  end
  if validity == nil or validity == json.null then
    validity = 30
  elseif type(validity) ~= "number" or validity ~= math.floor(validity) or validity < 1 or validity > 30 then
    raise(400, 4002251, "ACCESS_TOKEN_TIMEOUT_VALIDITY_RESOURCE_INVALID_PARAM",
      "Incorrect parameter type was entered. Ensure that validityForAccessTokenInMinutes parameter is $int32 "
      .. "between 1 and 30")
  end
  local key, der = crypto.public_key(pub_s)
  if not key then errors.invalid("auth", "base64EncodedStringPublicKey is not a base64 DER RSA public key") end
  local jwt, why = crypto.jwt_parse(jwt_s)
  if not jwt then bad_jwt(40122050, "Jwt improperly created: " .. why) end
  if jwt.header.alg ~= "RS512" then bad_jwt(40122050, "Jwt improperly created: alg must be RS512") end
  if not crypto.verify_rs512(key, jwt) then
    bad_jwt(40122050, "Jwt improperly created. Check whether jwt was properly signed.")
  end
  local p = jwt.payload
  local cid = p.clientIdentifier
  if type(cid) ~= "string" or cid == "" then
    -- The KME page's name for 4002251 (the auth page uses the same number
    -- for the validity parameter): api-notes §7 pitfall 6.
    raise(400, 4002251, "BAD_REQUEST_CLIENTIDENTIFIER_CLAIM_NOT_POPULATED",
      "The clientIdentifier claim is null or empty")
  end
  local reg = self.keys[cid]
  if not reg then raise(401, 4010000, "AUTHORIZATION_FAIL", "The client identifier is not registered") end
  if reg.der ~= der then
    raise(401, 4010000, "AUTHORIZATION_FAIL",
      "base64EncodedStringPublicKey is not the key registered for this client identifier")
  end
  if p.publicKey ~= nil then
    local _, claim_der = crypto.public_key(p.publicKey)
    if claim_der ~= der then bad_jwt(40122050, "Jwt improperly created: the publicKey claim is not the signing key") end
  end
  if p.aud ~= "KnoxWSM" then bad_jwt(40122050, 'Jwt improperly created: aud must be "KnoxWSM"') end
  local now = ctx.now
  check_times(p, now, 40122050, "The client identifier JWT")
  local jti = p.jti
  if type(jti) ~= "string" or jti == "" then bad_jwt(40122050, "Jwt improperly created: the jti claim is required") end
  if self.jtis.map[jti] then
    raise(400, 4002250, "API_KEY_NON_UNIQUE_JWTID",
      "Cannot use the same jwt again. A newly signed jwt needs to be created.")
  end
  -- A jti is remembered until its JWT could no longer be accepted anyway.
  self.jtis:put(jti, { exp = p.exp + M.LEEWAY }, now)
  local token = codec.random_hex(32)
  self.tokens:put(token, { client_id = cid, key = reg.key, der = der, expires = now + validity * 60 }, now)
  return { accessToken = token }
end

--- Authenticates a legacy call by its x-knox-apitoken header; returns the
-- principal or raises (401/403 with the auth codes of api-notes §3.6).
-- The RS512 signature is verified once per distinct header value.
function Auth:check_legacy(ctx)
  local hdr = ctx.req.headers["x-knox-apitoken"]
  if not hdr or hdr == "" then
    if ctx.req.headers.authorization then
      raise(401, 4010000, "AUTHORIZATION_FAIL",
        "This API accepts only x-knox-apitoken (Knox Cloud Authentication), not OAuth 2.0 tokens")
    end
    raise(401, 4010000, "AUTHORIZATION_FAIL", "The x-knox-apitoken header is required")
  end
  local c = self.vcache[hdr]
  if not c then
    local jwt, why = crypto.jwt_parse(hdr)
    if not jwt then bad_jwt(4012250, "x-knox-apitoken is not a signed JWT: " .. why) end
    if jwt.header.alg ~= "RS512" then bad_jwt(4012250, "x-knox-apitoken: alg must be RS512") end
    local p = jwt.payload
    if type(p.accessToken) ~= "string" or p.accessToken == "" then
      raise(401, 4012251, "BAD_REQUEST_ACCESS_TOKEN_CLAIM_NOT_POPULATED", "The accessToken claim is null or empty")
    end
    local rec = self.tokens.map[p.accessToken]
    if not rec then bad_jwt(4012250, "The access token is unknown; request a new one") end
    if not crypto.verify_rs512(rec.key, jwt) then
      raise(403, 4032252, "ACCESS_TOKEN_INVALID",
        "Provided Access token is invalid for this api: it is not signed with the key it was issued to")
    end
    if p.publicKey ~= nil then
      local _, claim_der = crypto.public_key(p.publicKey)
      if claim_der ~= rec.der then
        raise(403, 4032252, "ACCESS_TOKEN_INVALID", "The publicKey claim is not the key the token was issued to")
      end
    end
    if p.aud ~= "KnoxWSM" then bad_jwt(4012250, 'x-knox-apitoken: aud must be "KnoxWSM"') end
    if type(p.iat) ~= "number" or type(p.exp) ~= "number" then
      bad_jwt(4012250, "x-knox-apitoken: the iat and exp claims are required")
    end
    if p.iat > ctx.now + M.LEEWAY then bad_jwt(4012250, "x-knox-apitoken: iat is in the future") end
    if self.nvcache >= 20000 then self.vcache, self.nvcache = {}, 0 end
    c = { access = p.accessToken, exp = p.exp, der = rec.der }
    self.vcache[hdr] = c
    self.nvcache = self.nvcache + 1
  end
  local rec = self.tokens.map[c.access]
  if not rec or rec.der ~= c.der then bad_jwt(4012250, "The access token is unknown; request a new one") end
  if c.exp <= ctx.now - M.LEEWAY then
    raise(403, 4032251, "ACCESS_TOKEN_EXPIRED", "The signed x-knox-apitoken JWT has expired (exp); sign a new one")
  end
  if rec.expires <= ctx.now then
    raise(403, 4032251, "ACCESS_TOKEN_EXPIRED",
      "Provided Access token has expired. A new access token needs to be generated")
  end
  return { scheme = "legacy", client_id = rec.client_id, token = c.access }
end

local function oauth_fail(status, err, message, headers)
  raise(status, nil, err, message, { oauth = err, headers = headers })
end

-- The client authenticating a token or revoke request (form or Basic).
function Auth:oauth_client(ctx, form)
  local id, secret = form.client_id, form.client_secret
  local basic = (ctx.req.headers.authorization or ""):match("^[Bb][Aa][Ss][Ii][Cc] +(%S+)")
  if basic then
    local pair = codec.unb64(basic) or ""
    local bid, bsecret = pair:match("^([^:]*):(.*)$")
    if not bid then oauth_fail(401, "invalid_client", "Malformed Basic credentials") end
    id, secret = codec.url_decode(bid, true), codec.url_decode(bsecret, true)
  end
  local challenge = basic and { ["WWW-Authenticate"] = 'Basic realm="Knox"' } or nil
  if not id or id == "" then oauth_fail(401, "invalid_client", "client_id is required", challenge) end
  if not secret or secret == "" then oauth_fail(401, "invalid_client", "client_secret is required", challenge) end
  local client = self.clients[id]
  if not client or client.secret ~= secret then
    oauth_fail(401, "invalid_client", "Client authentication failed", challenge)
  end
  return client
end

local function form_body(ctx)
  local ct = (ctx.req.headers["content-type"] or ""):lower()
  if not ct:match("^application/x%-www%-form%-urlencoded") then
    oauth_fail(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
  end
  return (codec.parse_query(ctx.req.body))
end

--- POST /ams/v1/oauth2/token: the client-credentials grant (api-notes §3.2).
function Auth:oauth_token(ctx)
  local form = form_body(ctx)
  local grant = form.grant_type
  if not grant or grant == "" then oauth_fail(400, "invalid_request", "grant_type is required") end
  local client = self:oauth_client(ctx, form)
  if grant ~= "client_credentials" then
    -- authorization_code and refresh_token (UEM partners, §3.3) are not simulated.
    oauth_fail(400, "unsupported_grant_type", "grant_type " .. grant .. " is not supported")
  end
  local scopes = {}
  for s in (form.scope or ""):gmatch("%S+") do
    if not client.allowed[s] then
      oauth_fail(400, "invalid_scope", "Scope " .. s .. " is not granted to this client")
    end
    scopes[#scopes + 1] = s
  end
  if #scopes == 0 then
    for i, s in ipairs(client.scopes) do scopes[i] = s end
  end
  local ttl = 600  -- documented default: 10 minutes
  if form.expires_in and form.expires_in ~= "" then
    ttl = form.expires_in:match("^%d+$") and tonumber(form.expires_in)
    if not ttl or ttl < 1 or ttl > 3600 then
      oauth_fail(400, "invalid_request", "expires_in must be an integer number of seconds between 1 and 3600")
    end
  end
  local set = {}
  for _, s in ipairs(scopes) do set[s] = true end
  local token = codec.random_hex(32)
  local scope = table.concat(scopes, " ")
  self.oauth_tokens:put(token, { client_id = client.id, scopes = set, scope = scope, expires = ctx.now + ttl },
    ctx.now)
  return { access_token = token, token_type = "Bearer", expires_in = ttl, scope = scope },
    { ["Cache-Control"] = "no-store", Pragma = "no-cache" }
end

--- POST /ams/v1/oauth2/revoke (RFC 7009: 200 whether or not the token existed).
function Auth:oauth_revoke(ctx)
  local form = form_body(ctx)
  local client = self:oauth_client(ctx, form)
  if not form.token or form.token == "" then oauth_fail(400, "invalid_request", "token is required") end
  local rec = self.oauth_tokens.map[form.token]
  if rec and rec.client_id == client.id then
    self.oauth_tokens.map[form.token] = nil
    self.oauth_tokens.n = self.oauth_tokens.n - 1
  end
  return {}
end

--- True when the granted scope set covers need: "kme" covers
-- "kme.devices:view", "kme.devices" covers "kme.devices:view". A :manage
-- scope does not imply :view (UNCONFIRMED; the stricter reading).
function M.covers(granted, need)
  if granted[need] then return true end
  for g in pairs(granted) do
    local n = #g
    local nxt = need:sub(n + 1, n + 1)
    if need:sub(1, n) == g and (nxt == "." or nxt == ":") then return true end
  end
  return false
end

--- Authenticates an OAuth call by its bearer token; raises OAuth-style
-- 401/403 errors (RFC 6750) otherwise.
function Auth:check_bearer(ctx, scope)
  local h = ctx.req.headers.authorization
  local tok = h and h:match("^[Bb][Ee][Aa][Rr][Ee][Rr] +([%w%-._~+/]+=*)%s*$")
  if not tok then
    local why = ctx.req.headers["x-knox-apitoken"]
      and "This API accepts only Knox OAuth 2.0 bearer tokens, not x-knox-apitoken"
      or "An OAuth 2.0 bearer token is required (Authorization: Bearer)"
    oauth_fail(401, "invalid_request", why, { ["WWW-Authenticate"] = 'Bearer realm="Knox"' })
  end
  local rec = self.oauth_tokens.map[tok]
  if not rec then
    oauth_fail(401, "invalid_token", "The access token is invalid",
      { ["WWW-Authenticate"] = 'Bearer realm="Knox", error="invalid_token"' })
  end
  if rec.expires <= ctx.now then
    oauth_fail(401, "invalid_token", "The access token expired",
      { ["WWW-Authenticate"] = 'Bearer realm="Knox", error="invalid_token", error_description="expired"' })
  end
  if scope and not M.covers(rec.scopes, scope) then
    oauth_fail(403, "insufficient_scope", "This call needs the scope " .. scope,
      { ["WWW-Authenticate"] = 'Bearer realm="Knox", error="insufficient_scope", scope="' .. scope .. '"' })
  end
  return { scheme = "oauth", client_id = rec.client_id, scopes = rec.scopes, token = tok }
end

return M
