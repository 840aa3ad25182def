--- knox.config: what a client is built from when the caller does not say:
-- the environment (KNOX_REGION, KNOX_BASE_URL, KNOX_KEYS_FILE +
-- KNOX_CLIENT_ID, KNOX_OAUTH_CLIENT_ID + KNOX_OAUTH_CLIENT_SECRET +
-- KNOX_OAUTH_SCOPE, KNOX_TENANT, KNOX_CA_FILE), and the base URL of every
-- route from the region, base_url and endpoints options with the hosts the
-- service registry names.
local auth = require "knox.auth"
local usage = require("knox.errors").usage
local services = require "knox.services"
local hosts = require "knox.services.hosts"
local url = require "knox.url"

local M = {}

--- env_reader(getenv) -> get: get(name) is the variable's value, nil when it
-- is unset or empty (an empty variable never counts as given). getenv
-- defaults to os.getenv.
function M.env_reader(getenv)
  getenv = getenv or os.getenv
  return function(name)
    local v = getenv(name)
    if v == "" then return nil end
    return v
  end
end

--- read_env(getenv, with_auth): the client options the environment
-- gives, possibly none: region, base_url, tenant, ca_file and (with_auth)
-- auth, the providers its credentials make. Raises kind "usage" only for
-- a half-given credential (KNOX_KEYS_FILE without KNOX_CLIENT_ID...).
function M.read_env(getenv, with_auth)
  local get = M.env_reader(getenv)
  local opts = {}
  opts.region, opts.base_url = get "KNOX_REGION", get "KNOX_BASE_URL"
  opts.tenant, opts.ca_file = get "KNOX_TENANT", get "KNOX_CA_FILE"
  if not with_auth then return opts end
  local providers = {}
  local keys, oauth = M.env_credentials(getenv)
  if keys then providers[#providers + 1] = auth.keys(keys) end
  if oauth then providers[#providers + 1] = auth.oauth2(oauth) end
  if #providers > 0 then opts.auth = providers end
  return opts
end

--- env_credentials(getenv) -> keys, oauth: the credentials the
-- environment names, as option tables for knox.auth.keys ({ file,
-- client_id }) and knox.auth.oauth2 ({ client_id, client_secret, scope }),
-- each nil when none of its variables is set. A half-given pair raises
-- kind "usage" naming the missing variable. (The client and the command's
-- profiles both read them here.)
function M.env_credentials(getenv)
  local get = M.env_reader(getenv)
  local keys, oauth
  local keys_file, client_id = get "KNOX_KEYS_FILE", get "KNOX_CLIENT_ID"
  if keys_file or client_id then
    if not keys_file then usage("KNOX_KEYS_FILE is not set (KNOX_CLIENT_ID is)", 3) end
    if not client_id then usage("KNOX_CLIENT_ID is not set (KNOX_KEYS_FILE is)", 3) end
    keys = { file = keys_file, client_id = client_id }
  end
  local oid, osec, oscope = get "KNOX_OAUTH_CLIENT_ID", get "KNOX_OAUTH_CLIENT_SECRET", get "KNOX_OAUTH_SCOPE"
  if oid or osec or oscope then
    for _, pair in ipairs { { "KNOX_OAUTH_CLIENT_ID", oid }, { "KNOX_OAUTH_CLIENT_SECRET", osec },
      { "KNOX_OAUTH_SCOPE", oscope } } do
      if not pair[2] then usage(pair[1] .. " is not set (the other KNOX_OAUTH_* variables are)", 3) end
    end
    oauth = { client_id = oid, client_secret = osec, scope = oscope }
  end
  return keys, oauth
end

--- from_env([getenv]): client options read from the environment; raises
-- kind "usage" naming what is missing.
function M.from_env(getenv)
  local opts = M.read_env(getenv, true)
  if not opts.region and not opts.base_url then
    usage("cannot build a client from the environment: KNOX_REGION (us or eu) or KNOX_BASE_URL is not set", 3)
  end
  if not opts.auth then
    usage("cannot build a client from the environment: no credentials; set KNOX_KEYS_FILE and KNOX_CLIENT_ID, "
      .. "or KNOX_OAUTH_CLIENT_ID, KNOX_OAUTH_CLIENT_SECRET and KNOX_OAUTH_SCOPE", 3)
  end
  return opts
end

--- merge(opts, getenv): the one rule for explicit options and the
-- environment: an option given explicitly wins, the environment fills the
-- rest (credentials only when no `auth` is given). `env = false` reads no
-- environment. Raises kind "usage" when neither says region or base_url:
-- knox never picks production silently.
function M.merge(opts, getenv)
  local merged = {}
  if opts.env ~= false then
    for k, v in pairs(M.read_env(getenv, opts.auth == nil)) do merged[k] = v end
  end
  for k, v in pairs(opts) do merged[k] = v end
  if merged.region == nil and merged.base_url == nil then
    usage("knox.client needs region ('us' or 'eu') or base_url; none was given and KNOX_REGION / "
      .. "KNOX_BASE_URL are not set", 3)
  end
  return merged
end

-- The generic hosts of paths no service claims: kcs (the default) and api.
local GENERIC = { kcs = hosts.kcs, api = hosts.api }

--- endpoints(opts): route name -> base URL, from opts.base_url (one
-- URL for every route: the simulator), else opts.region (default "us")
-- and each route's hosts; opts.endpoints overrides single routes.
function M.endpoints(opts)
  local reg = services.load()
  local ep = {}
  local all = {}
  for name, r in pairs(reg.routes) do all[name] = r.hosts end
  for name, h in pairs(GENERIC) do all[name] = h end
  if opts.base_url ~= nil then
    local b = url.check_base("base_url", opts.base_url, opts.allow_insecure_http)
    for name in pairs(all) do ep[name] = b end
  else
    local region = opts.region or "us"
    if type(region) ~= "string" or not hosts.kcs[region] then
      usage("unknown region '" .. tostring(region) .. "' (" .. table.concat(hosts.regions, " or ")
        .. ", or give base_url)", 3)
    end
    for name, h in pairs(all) do ep[name] = h[region] or hosts.kcs[region] end
  end
  if opts.endpoints ~= nil then
    if type(opts.endpoints) ~= "table" then usage("endpoints must be a table") end
    for k, v in pairs(opts.endpoints) do
      if not all[k] then
        local names = {}
        for n in pairs(all) do names[#names + 1] = n end
        table.sort(names)
        usage("unknown endpoint '" .. tostring(k) .. "' (" .. table.concat(names, ", ") .. ")")
      end
      ep[k] = url.check_base(k, v, opts.allow_insecure_http)
    end
  end
  return ep
end

return M
