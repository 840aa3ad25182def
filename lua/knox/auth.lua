--- knox.auth: credential providers and their token caches.
--
-- A provider turns "I need to call service X" into one request header. The
-- client asks it through a small context object (ctx) that can post to the
-- token endpoints, tell the time (the server's, when the clocks disagree)
-- and report token events. Providers never see the client itself.
--
--   knox.auth.keys { file = "keys.json" | keys = knox.Key, client_id = "...", validity = 30 }
--   knox.auth.oauth2 { client_id = "...", client_secret = "...", scope = "...", expires_in =, token_url = }
--   knox.auth.token { value = "...", header = "x-knox-apitoken" | "Authorization" }
--
-- Secrets (the key, client_secret, tokens) are kept in a private table keyed
-- by the provider, never in the provider's own fields, so printing, dumping
-- or serialising a provider shows none of them.
local core = require "knox.core"
local errors = require "knox.errors"

local M = {}

local secret = setmetatable({}, { __mode = "k" })

local usage = errors.usage

local function auth_error(msg, fields)
  local e = { kind = "auth", message = msg }
  for k, v in pairs(fields or {}) do e[k] = v end
  return errors.new(e)
end

--- When to renew a token of lifetime `life` seconds: at 80% of its life or
-- 60 s before it ends, whichever is earlier — but never before half its life,
-- so a token that lives two minutes or less is not renewed on every call.
local function renew_after(life)
  return math.max(math.min(0.8 * life, life - 60), 0.5 * life)
end
M.renew_after = renew_after

--- Replaces every copy of the text `hidden` in the text fields of err.
local function scrub(err, hidden)
  local function clean(v)
    if type(v) ~= "string" then return v end
    local i, j = v:find(hidden, 1, true)
    while i do
      v = v:sub(1, i - 1) .. "[redacted]" .. v:sub(j + 1)
      i, j = v:find(hidden, i + 10, true)
    end
    return v
  end
  for _, k in ipairs { "message", "description", "body", "url", "name" } do err[k] = clean(err[k]) end
end

-- A real knox.Key: the userdata whose metatable is the one knox.core
-- registered (what luaL_testudata checks), not any table claiming the
-- name "knox.Key" in its __name.
local function is_key(v)
  return type(v) == "userdata" and getmetatable(v) == debug.getregistry()["knox.Key"]
end

-- A credential text: a non-empty string of valid UTF-8 without control
-- characters (it ends up in JSON, a form or a header).
local function credential(v, what)
  if type(v) ~= "string" or v == "" then usage(what .. " is required", 3) end
  if not utf8.len(v) or v:find "[%c]" then
    usage(what .. " must be valid UTF-8 without control characters", 3)
  end
  return v
end

local Provider = {}
Provider.__index = Provider

function Provider:__tostring()
  return ("knox.auth.%s(%s)"):format(self.kind, self.label or "")
end

--- provider:invalidate(): forget cached tokens so the next call renews.
function Provider:invalidate()
  local s = secret[self]
  s.access, s.signed = nil, nil
end

---------------------------------------------------------------------------
-- Legacy Knox Cloud Authentication (keys.json + client identifier)

local Legacy = setmetatable({}, { __index = Provider })
Legacy.__index = Legacy
Legacy.__tostring = Provider.__tostring

--- knox.auth.keys(opts): the legacy flow. The key file is read once, here,
-- so a bad file fails when the client is built, not mid-run.
function M.keys(opts)
  if type(opts) ~= "table" then usage("knox.auth.keys: options table expected") end
  local client_id = credential(opts.client_id,
    "knox.auth.keys: client_id (the Client Identifier from the Knox API portal)")
  local key
  if opts.keys ~= nil then
    if not is_key(opts.keys) then usage("knox.auth.keys: keys must be a knox.Key (from knox.keys.load)") end
    key = opts.keys
  elseif type(opts.file) == "string" then
    key = core.keys.load(opts.file)
  else
    usage("knox.auth.keys: file (path of keys.json) or keys (a knox.Key) is required")
  end
  local validity = opts.validity or 30
  if math.type(validity) ~= "integer" or validity < 1 or validity > 30 then
    usage("knox.auth.keys: validity must be an integer number of minutes from 1 to 30")
  end
  local self = setmetatable({
    kind = "keys", scheme = "legacy", renewable = true, validity = validity,
    label = "client_id=" .. client_id:sub(1, 8) .. (#client_id > 8 and "…" or ""),
  }, Legacy)
  secret[self] = { key = key, client_id = client_id, public_key = key:public_key() }
  return self
end

--- legacy:authorize(ctx) -> "x-knox-apitoken", signed access token JWT.
-- Gets an access token when there is none or it is due for renewal, and
-- re-signs it when the signed JWT is due; both reused until then.
function Legacy:authorize(ctx)
  local s = secret[self]
  local now = ctx:now()
  if not s.access or now >= s.access.renew_at then
    local body
    for try = 1, 2 do
      local skew = ctx:skew()
      local ok, res = pcall(ctx.post_json, ctx, "auth", "/ams/v1/users/accesstoken", {
        clientIdentifierJwt = s.key:sign_client_identifier(s.client_id, { now = math.floor(ctx:server_now()) }),
        base64EncodedStringPublicKey = s.public_key,
        validityForAccessTokenInMinutes = self.validity,
      })
      if ok then
        body = res
        break
      end
      -- Sign again, once, with a new JWT (a new jti: Knox refuses a jti it
      -- has seen) when
      -- - the known Knox pitfall: a signer whose clock is off gets
      --   "expired" or "bad request" for a fresh JWT, and this very answer
      --   taught the client the server's time; or
      -- - the request was lost after it may have reached Knox (a reset, a
      --   timeout): getting a token twice is harmless, but replaying the
      --   same JWT would be refused as a reused jti.
      local again = errors.is_error(res) and (res.kind == "auth" and ctx:skew() ~= skew
        or res.kind == "transport" or res.kind == "timeout")
      if try == 2 or not again then
        error(res, 0)
      end
    end
    local token = type(body) == "table" and body.accessToken
    if type(token) ~= "string" or token == "" then
      error(auth_error("the access token response has no accessToken", { service = "auth" }))
    end
    -- Knox returns no expiry: the token lives for the validity we asked for.
    local t, life = ctx:now(), self.validity * 60
    s.access = { token = token, renew_at = t + renew_after(life) }
    s.signed = nil
    ctx:emit("token", { scheme = "legacy", action = "issued", lifetime = life })
  end
  if not s.signed or ctx:now() >= s.signed.renew_at then
    local life = 1800
    s.signed = {
      jwt = s.key:sign_access_token(s.access.token, { now = math.floor(ctx:server_now()), lifetime = life }),
      renew_at = math.min(ctx:now() + renew_after(life), s.access.renew_at),
    }
    ctx:emit("token", { scheme = "legacy", action = "signed", lifetime = life })
  end
  return "x-knox-apitoken", s.signed.jwt
end

---------------------------------------------------------------------------
-- Knox OAuth 2.0, client credentials

local OAuth2 = setmetatable({}, { __index = Provider })
OAuth2.__index = OAuth2
OAuth2.__tostring = Provider.__tostring

--- knox.auth.oauth2(opts): client credentials against the Knox OAuth 2.0
-- token endpoint (https://api.samsungknox.com/ams/v1/oauth2/token unless
-- token_url or the client's endpoints say otherwise).
function M.oauth2(opts)
  if type(opts) ~= "table" then usage("knox.auth.oauth2: options table expected") end
  local id, sec, scope = opts.client_id, opts.client_secret, opts.scope
  credential(id, "knox.auth.oauth2: client_id")
  credential(sec, "knox.auth.oauth2: client_secret")
  if type(scope) == "table" then
    local n = 0
    for k in pairs(scope) do
      if math.type(k) ~= "integer" or k < 1 then usage("knox.auth.oauth2: scope must be a list of strings") end
      n = math.max(n, k)
    end
    for i = 1, n do
      if type(scope[i]) ~= "string" or not scope[i]:match "^[%w%.:_%-]+$" then
        usage("knox.auth.oauth2: scope[" .. i .. "] must be a scope name (a string)")
      end
    end
    scope = table.concat(scope, " ")
  end
  if type(scope) ~= "string" or scope == "" then
    usage("knox.auth.oauth2: scope is required (space-separated, e.g. \"kme msp\")")
  end
  local expires_in = opts.expires_in
  if expires_in ~= nil and (math.type(expires_in) ~= "integer" or expires_in < 1 or expires_in > 3600) then
    usage("knox.auth.oauth2: expires_in must be an integer number of seconds from 1 to 3600")
  end
  local tu = opts.token_url
  if tu ~= nil and (type(tu) ~= "string" or not (tu:match "^https?://[^/]" or tu:match "^/")) then
    usage("knox.auth.oauth2: token_url must be an http(s) URL or a path starting with '/'")
  end
  local self = setmetatable({
    kind = "oauth2", scheme = "oauth2", renewable = true, scope = scope,
    expires_in = expires_in, token_url = opts.token_url, label = "client_id=" .. id,
  }, OAuth2)
  secret[self] = { client_id = id, client_secret = sec }
  return self
end

-- Knox's default access token life when a response omits expires_in
-- (10 minutes per the docs); UNCONFIRMED that it is ever omitted.
local DEFAULT_OAUTH_LIFE = 600

function OAuth2:authorize(ctx)
  local s = secret[self]
  if not s.access or ctx:now() >= s.access.renew_at then
    local form = {
      grant_type = "client_credentials",
      client_id = s.client_id,
      client_secret = s.client_secret,
      scope = self.scope,
      expires_in = self.expires_in,
    }
    local ok, body = pcall(ctx.post_form, ctx, "oauth2", self.token_url or "/ams/v1/oauth2/token", form)
    if not ok then
      -- a token endpoint may echo what it was sent: never let the secret
      -- ride out in the error
      if errors.is_error(body) then scrub(body, s.client_secret) end
      error(body, 0)
    end
    local token = type(body) == "table" and body.access_token
    if type(token) ~= "string" or token == "" then
      error(auth_error("the OAuth token response has no access_token", { service = "oauth2" }))
    end
    local tt = body.token_type
    if tt ~= nil and (type(tt) ~= "string" or tt:lower() ~= "bearer") then
      error(auth_error("the OAuth token response has token_type " .. tostring(tt) .. ", not Bearer",
        { service = "oauth2" }))
    end
    local life = tonumber(body.expires_in) or DEFAULT_OAUTH_LIFE
    if life ~= life or life <= 0 then life = DEFAULT_OAUTH_LIFE end
    s.access = { token = token, renew_at = ctx:now() + renew_after(life) }
    ctx:emit("token", { scheme = "oauth2", action = "issued", lifetime = life,
      scope = type(body.scope) == "string" and body.scope or self.scope })
  end
  return "authorization", "Bearer " .. s.access.token
end

--- provider:revoke(client): revokes the provider's current access token
-- at Knox (POST /ams/v1/oauth2/revoke, RFC 7009: client_id,
-- client_secret, token) and forgets it; the next call gets a new one.
-- Without a current token nothing is sent. Returns true when a token was
-- revoked.
function OAuth2:revoke(client)
  local ctx = type(client) == "table" and client._auth_ctx and client:_auth_ctx() or client
  if type(ctx) ~= "table" or type(ctx.post_form) ~= "function" then
    error("bad argument #1 to 'revoke' (knox client expected)", 2)
  end
  local s = secret[self]
  if not s.access then return false end
  local url = self.token_url and self.token_url:gsub("/token$", "/revoke") or "/ams/v1/oauth2/revoke"
  local ok, err = pcall(ctx.post_form, ctx, "oauth2", url,
    { client_id = s.client_id, client_secret = s.client_secret, token = s.access.token })
  if not ok then
    if errors.is_error(err) then scrub(err, s.client_secret) end
    error(err, 0)
  end
  s.access = nil
  ctx:emit("token", { scheme = "oauth2", action = "revoked" })
  return true
end

---------------------------------------------------------------------------
-- A pre-issued token

local Static = setmetatable({}, { __index = Provider })
Static.__index = Static
Static.__tostring = Provider.__tostring

--- knox.auth.token(opts): sends a token you already have. header defaults
-- to x-knox-apitoken (a signed access token, legacy scheme); with header
-- "Authorization" the value is sent as a Bearer token (OAuth scheme). It
-- cannot renew: an expired token is raised to the caller.
function M.token(opts)
  if type(opts) ~= "table" then usage("knox.auth.token: options table expected") end
  local value, header = opts.value, opts.header or "x-knox-apitoken"
  if type(value) ~= "string" or value == "" then usage("knox.auth.token: value is required") end
  if type(header) ~= "string" or not header:match "^[%w%-]+$" then
    usage("knox.auth.token: header must be a header name")
  end
  if value:find "[%c]" or not utf8.len(value) then
    usage("knox.auth.token: value must be valid UTF-8 without line breaks or other control characters")
  end
  header = header:lower()
  local scheme = opts.scheme or (header == "authorization" and "oauth2" or "legacy")
  if scheme ~= "legacy" and scheme ~= "oauth2" then
    usage("knox.auth.token: scheme must be \"legacy\" or \"oauth2\"")
  end
  if header == "authorization" and not value:match "^[Bb]earer " then value = "Bearer " .. value end
  local self = setmetatable({ kind = "token", scheme = scheme, renewable = false, label = header }, Static)
  secret[self] = { header = header, value = value }
  return self
end

function Static:authorize()
  local s = secret[self]
  return s.header, s.value
end

function Static.invalidate() end

--- provider:header_name(): the request header the provider puts its
-- credential in. The client redacts it by this name in every hook and
-- debug event, whatever it is called (the provider tells the redactor).
function Provider:header_name()
  if self.scheme == "legacy" and self.kind ~= "token" then return "x-knox-apitoken" end
  if self.kind == "oauth2" then return "authorization" end
  return secret[self].header
end

-- The secret values a provider holds now: what must never be shown even
-- where a server echoes it back in free text (a token endpoint quoting the
-- client secret it was sent), in plain and URL-encoded form.
local function held_values(p)
  local s = secret[p]
  if not s then return {} end
  local v = {}
  if s.client_secret then v[#v + 1] = s.client_secret end
  if s.access then v[#v + 1] = s.access.token end
  if s.signed then v[#v + 1] = s.signed.jwt end
  if s.value then
    v[#v + 1] = s.value
    v[#v + 1] = (s.value:gsub("^[Bb]earer ", ""))
  end
  local out = {}
  for _, x in ipairs(v) do
    if type(x) == "string" and #x >= 4 then
      out[#out + 1] = x
      local enc = x:gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(c:byte()) end)
      if enc ~= x then out[#out + 1] = enc end
    end
  end
  return out
end

--- M.scrubber(providers) -> function(text) -> text with every secret value
-- those providers hold now replaced by [redacted].
function M.scrubber(providers)
  return function(text)
    if type(text) ~= "string" then return text end
    for _, p in ipairs(providers) do
      for _, v in ipairs(held_values(p)) do
        local i = text:find(v, 1, true)
        while i do
          text = text:sub(1, i - 1) .. "[redacted]" .. text:sub(i + #v)
          i = text:find(v, i + 10, true)
        end
      end
    end
    return text
  end
end

--- Whether v is a provider made by this module.
function M.is_provider(v)
  return secret[v] ~= nil
end

---------------------------------------------------------------------------
-- Sharing a token between processes (the `knox` command's token cache)
--
-- provider:export_token() -> { token =, expires_at =, scheme = } or nil:
-- the access token the provider holds and when it expires, on the wall
-- clock (knox.core.now, seconds since the epoch). For knox.auth.keys this
-- is Knox's access token, which the provider signs into a fresh
-- x-knox-apitoken locally; for knox.auth.oauth2 the bearer token. nil when
-- it holds none, or for knox.auth.token (nothing to share).
--
-- provider:import_token(t) -> true | false: takes such a token (of the
-- same credentials: the caller keys its store by them) so that the next
-- call needs no token request. A token with less than a second left, or
-- a malformed t, is not taken (false). It is renewed like one the
-- provider fetched itself, on what is left of its life. Token lifetimes
-- are then measured on knox.core.now, the client's default clock.
--
-- Additive: the existing authorize methods are wrapped so that they also
-- note each issued token's wall-clock expiry (from the lifetime they
-- report in their "token" event); nothing they do changes.

local function note_expiry(class)
  local authorize = class.authorize
  class.authorize = function(self, ctx)
    local s = secret[self]
    local before = s.access
    local issued, life = core.now(), nil
    local spy = setmetatable({
      emit = function(_, event, data)
        if event == "token" and type(data) == "table" and data.action == "issued" then life = data.lifetime end
        return ctx:emit(event, data)
      end,
    }, { __index = ctx })
    local name, value = authorize(self, spy)
    if s.access and s.access ~= before and type(life) == "number" then
      s.access.expires_at = issued + life
    end
    return name, value
  end
end
note_expiry(Legacy)
note_expiry(OAuth2)

function Provider:export_token()
  local s = secret[self]
  if self.kind == "token" or not s or not s.access or type(s.access.expires_at) ~= "number" then return nil end
  return { token = s.access.token, expires_at = s.access.expires_at, scheme = self.scheme }
end

function Provider:import_token(t)
  local s = secret[self]
  if self.kind == "token" or not s then return false end
  if type(t) ~= "table" or type(t.token) ~= "string" or t.token == "" or t.token:find "[%c]"
    or type(t.expires_at) ~= "number" or t.expires_at ~= t.expires_at then
    return false
  end
  if t.scheme ~= nil and t.scheme ~= self.scheme then return false end
  local now = core.now()
  local left = t.expires_at - now
  if left < 1 then return false end
  s.access = { token = t.token, renew_at = now + renew_after(left), expires_at = t.expires_at }
  s.signed = nil
  return true
end

return M
