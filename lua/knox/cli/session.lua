--- knox.cli.session: the client one command runs with: settings from
-- flags, environment and profile (knox.cli.profile), tokens from the
-- shared cache (knox.cli.cache), -v's trace, and the cache written back
-- when the command is done.
local profile = require "knox.cli.profile"
local cache_mod = require "knox.cli.cache"

local M = {}

--- M.verbose_hooks(client, err): -v, what was sent and received, from the
-- client's hooks (redacted by construction: the text-safety module and
-- the provider's own credential header), in curl's "> " / "< " style.
function M.verbose_hooks(client, err_out)
  local function headers(prefix, h)
    local names = {}
    for k in pairs(h or {}) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do err_out:write(prefix, k, ": ", tostring(h[k]), "\n") end
  end
  client:on("request", function(d)
    err_out:write("> ", d.method, " ", d.url, d.attempt > 1 and ("  (attempt " .. d.attempt .. ")") or "", "\n")
    headers("> ", d.headers)
    if d.body_size > 0 then err_out:write("> [", d.body_size, " bytes]\n") end
  end)
  client:on("response", function(d)
    err_out:write(("< %d  (%.0f ms, %d bytes)\n"):format(d.status, d.elapsed * 1000, d.body_size))
    headers("< ", d.headers)
  end)
  client:on("retry", function(d)
    err_out:write(("* retrying in %.2f s (%s)\n"):format(d.delay, tostring(d.reason or d.name or d.code or "")))
  end)
  client:on("token", function(d)
    err_out:write("* token ", tostring(d.scheme), " ", tostring(d.action), "\n")
  end)
end

-- The base URL a provider's tokens come from.
local function token_base(client, p)
  return p.scheme == "oauth2" and (client.endpoints.oauth2 or client.endpoints.api)
    or (client.endpoints.auth or client.endpoints.kcs)
end

--- M.identity(settings, client, provider) -> the cache identity of the
-- provider's tokens.
function M.identity(s, client, p)
  local key = ""
  if p.kind == "keys" and s.keys then
    local ok, k = pcall(require("knox.core").keys.load, s.keys.file)
    key = ok and tostring(k) or s.keys.file
  end
  return cache_mod.identity {
    profile = s.profile, scheme = p.scheme,
    client_id = p.kind == "keys" and s.keys and s.keys.client_id or (s.oauth and s.oauth.client_id),
    base_url = token_base(client, p), scope = p.scope, key = key,
  }
end

local Session = {}
Session.__index = Session

--- M.open(flags, io [, o]) -> session with .client, .settings.
-- flags: profile, region, base_url, tenant, ca_file, verbose, no_cache.
-- io: { err = stream }. o.cache = false: neither read nor write tokens;
-- o.client: more knox.client options.
function M.open(flags, io_, o)
  o = o or {}
  local settings = profile.resolve(flags)
  local opts = profile.client_options(settings)
  if flags.timeout then opts.timeout = flags.timeout end
  for k, v in pairs(o.client or {}) do opts[k] = v end
  local client = require("knox").client(opts)
  local self = setmetatable({ client = client, settings = settings, io = io_, imported = {} }, Session)
  if flags.verbose then M.verbose_hooks(client, io_.err) end
  local note = function(msg) if flags.verbose then io_.err:write("* ", msg, "\n") end end
  self.note = note
  if o.cache ~= false and not flags.no_cache and os.getenv("KNOX_TOKEN_CACHE") ~= "0" then
    local c, why = cache_mod.open(nil, note)
    if not c then
      note("token cache off: " .. why)
    else
      self.cache = c
      for _, p in ipairs(client.providers) do
        local id = M.identity(settings, client, p)
        local t = c:get(id)
        if t and p:import_token(t) then
          self.imported[p] = t.token
          note(("token %s from the cache (%s)"):format(p.scheme, c:_file(id)))
        end
      end
    end
  end
  return self
end

--- session:close(): writes tokens obtained during the run to the cache,
-- closes the client.
function Session:close()
  if self.cache then
    for _, p in ipairs(self.client.providers) do
      local t = p:export_token()
      if t and t.token ~= self.imported[p] then
        local ok, why = self.cache:put(M.identity(self.settings, self.client, p), t)
        if not ok then self.note("token cache: not written: " .. tostring(why)) end
      end
    end
  end
  self.client:close()
end
Session.__close = Session.close

return M
