--- knox.cli.profile: named profiles and the settings a command runs with.
--
-- The file is $KNOX_CONFIG, else $XDG_CONFIG_HOME/knox/config, else
-- ~/.config/knox/config:
--
--   # comments and blank lines are ignored
--   [default]
--   region = us
--
--   [profile prod]
--   region = eu                       # or base_url = https://...
--   keys_file = ~/knox/keys.json
--   client_id = 1a2b3c...
--   oauth_client_id = ...
--   oauth_client_secret_file = ~/knox/oauth.secret     # or:
--   oauth_client_secret_env = KNOX_PROD_SECRET
--   oauth_scope = kme msp
--   tenant = 1660865166
--   ca_file = /etc/ssl/corp-ca.pem
--   output = table
--
-- Secrets only by reference: a key that holds a secret value
-- (oauth_client_secret, anything named *secret*, *password* or *token*) is
-- refused, and the file names neither the key's value nor the line's text
-- in the message.
--
-- Which profile: --profile NAME, else KNOX_PROFILE, else "default" (a
-- named profile that is missing is a usage error; a missing default is
-- simply no profile). Precedence for every setting: flags, then the
-- environment (KNOX_*), then the profile. Region and base_url are one
-- setting (the first source that names either gives both), and so is each
-- credential (keys file + client id; OAuth id + secret + scope).
local usage = require("knox.errors").usage
local schema = require "knox.schema"

local M = {}

-- Keys a profile may hold.
M.KEYS = { "region", "base_url", "keys_file", "client_id", "oauth_client_id", "oauth_client_secret_file",
  "oauth_client_secret_env", "oauth_scope", "tenant", "ca_file", "output" }
local KEY_SET = {}
for _, k in ipairs(M.KEYS) do KEY_SET[k] = true end

local function home(getenv)
  return getenv("HOME") or "."
end

--- M.path(getenv) -> the config file's path.
function M.path(getenv)
  getenv = getenv or os.getenv
  local p = getenv("KNOX_CONFIG")
  if p and p ~= "" then return p end
  local xdg = getenv("XDG_CONFIG_HOME")
  if xdg and xdg ~= "" then return xdg .. "/knox/config" end
  return home(getenv) .. "/.config/knox/config"
end

local function expand(path, getenv)
  if path:sub(1, 2) == "~/" then return home(getenv) .. path:sub(2) end
  return path
end

local function secret_key(k)
  if k:match "_file$" or k:match "_env$" then return false end
  local l = k:lower()
  return l:find("secret", 1, true) or l:find("password", 1, true) or l:find("token", 1, true)
end

--- M.parse(text, where) -> { [profile name] = { key = value } }, raises
-- kind "usage" naming the file and line of a mistake.
function M.parse(text, where)
  local profiles, cur = {}, nil
  local n = 0
  for line in (text .. "\n"):gmatch "([^\n]*)\n" do
    n = n + 1
    line = line:gsub("\r$", "")
    local s = line:match "^%s*(.-)%s*$"
    local blank = s == "" or s:match "^[#;]"
    if not blank and s:match "^%[" then
      local name = s:match "^%[%s*profile%s+([%w_.%-]+)%s*%]$" or s:match "^%[%s*([%w_.%-]+)%s*%]$"
      if not name then
        usage(("%s:%d: a section is [profile NAME] or [default]"):format(where, n), 2)
      end
      if profiles[name] then usage(("%s:%d: profile %s twice"):format(where, n, name), 2) end
      cur = {}
      profiles[name] = cur
    elseif not blank then
      local k, v = s:match "^([%w_.%-]+)%s*=%s*(.-)$"
      if not k then usage(("%s:%d: expected key = value"):format(where, n), 2) end
      v = v:gsub("%s+[#;].*$", "")
      v = v:match '^"(.*)"$' or v:match "^'(.*)'$" or v
      if secret_key(k) then
        usage(("%s:%d: %s holds a secret value; a config file only names where a secret is: "
          .. "oauth_client_secret_file = PATH or oauth_client_secret_env = NAME"):format(where, n, k), 2)
      end
      if not KEY_SET[k] then
        local near = schema.nearest(k, M.KEYS)
        usage(("%s:%d: unknown key %s%s"):format(where, n, k, near and ("; did you mean " .. near .. "?") or ""), 2)
      end
      if not cur then usage(("%s:%d: %s before any [profile NAME] section"):format(where, n, k), 2) end
      cur[k] = v
    end
  end
  return profiles
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read "a"
  f:close()
  return s
end

--- M.load(getenv) -> profiles, path (profiles empty when there is no file).
function M.load(getenv)
  local path = M.path(getenv)
  local text = read(path)
  if not text then return {}, path, false end
  return M.parse(text, path), path, true
end

--- M.resolve(flags, getenv) -> settings: the values a command runs with,
-- and where each came from (settings.from[key] = "flag" | "env" | "profile").
-- flags: profile, region, base_url, tenant (false: none), ca_file.
function M.resolve(flags, getenv)
  getenv = getenv or os.getenv
  local env = require("knox.config").env_reader(getenv)
  local profiles, path, exists = M.load(getenv)
  local name, named = flags.profile, flags.profile ~= nil
  if not name then
    name = env "KNOX_PROFILE"
    named = name ~= nil
  end
  name = name or "default"
  local prof = profiles[name]
  if not prof and named then
    local names = {}
    for k in pairs(profiles) do names[#names + 1] = k end
    table.sort(names)
    usage(("no profile %s in %s%s"):format(name, path, exists and (#names > 0 and (" (profiles: "
      .. table.concat(names, ", ") .. ")") or " (it has no profiles)") or " (the file does not exist)"), 2)
  end
  prof = prof or {}
  local s = { profile = name, profile_found = next(prof) ~= nil or profiles[name] ~= nil, config_path = path,
    config_exists = exists, from = {} }

  local function pick(key, flag, envname, profkey)
    if flag ~= nil then s[key], s.from[key] = flag, "flag"; return end
    local e = envname and env(envname)
    if e then s[key], s.from[key] = e, "env"; return end
    if prof[profkey or key] then s[key], s.from[key] = prof[profkey or key], "profile" end
  end

  -- region / base_url: one setting
  if flags.region or flags.base_url then
    s.region, s.base_url = flags.region, flags.base_url
    s.from.region = "flag"
  elseif env "KNOX_REGION" or env "KNOX_BASE_URL" then
    s.region, s.base_url = env "KNOX_REGION", env "KNOX_BASE_URL"
    s.from.region = "env"
  elseif prof.region or prof.base_url then
    s.region, s.base_url = prof.region, prof.base_url
    s.from.region = "profile"
  end
  s.from.base_url = s.from.region

  if flags.tenant == false then
    s.from.tenant = "flag"
  else
    pick("tenant", flags.tenant, "KNOX_TENANT")
  end
  pick("ca_file", flags.ca_file, "KNOX_CA_FILE")
  if s.ca_file then s.ca_file = expand(s.ca_file, getenv) end
  pick("output", nil, "KNOX_OUTPUT")

  -- the legacy credential: the environment's pair, else the profile's
  local env_keys, env_oauth = require("knox.config").env_credentials(getenv)
  if env_keys then
    s.keys = { file = env_keys.file, client_id = env_keys.client_id, from = "env" }
  elseif prof.keys_file or prof.client_id then
    if not prof.keys_file then usage(("profile %s has client_id but no keys_file"):format(name), 2) end
    if not prof.client_id then usage(("profile %s has keys_file but no client_id"):format(name), 2) end
    s.keys = { file = expand(prof.keys_file, getenv), client_id = prof.client_id, from = "profile" }
  end

  -- the OAuth credential
  if env_oauth then
    local osec = env_oauth.client_secret
    s.oauth = { client_id = env_oauth.client_id, secret = function() return osec end, scope = env_oauth.scope,
      from = "env", secret_ref = "KNOX_OAUTH_CLIENT_SECRET" }
  elseif prof.oauth_client_id or prof.oauth_client_secret_file or prof.oauth_client_secret_env
    or prof.oauth_scope then
    local where = "profile " .. name
    if not prof.oauth_client_id then usage(where .. " has no oauth_client_id", 2) end
    if not prof.oauth_scope then usage(where .. " has no oauth_scope (e.g. oauth_scope = kme msp)", 2) end
    local file, var = prof.oauth_client_secret_file, prof.oauth_client_secret_env
    if (file == nil) == (var == nil) then
      usage(where .. " needs one of oauth_client_secret_file = PATH or oauth_client_secret_env = NAME", 2)
    end
    local o = { client_id = prof.oauth_client_id, scope = prof.oauth_scope, from = "profile" }
    if file then
      file = expand(file, getenv)
      o.secret_file, o.secret_ref = file, file
      o.secret = function()
        local text = read(file)
        if not text then usage(("%s: cannot read the OAuth client secret file %s"):format(where, file), 2) end
        text = text:gsub("[\r\n]+$", "")
        if text == "" then usage(("%s: the OAuth client secret file %s is empty"):format(where, file), 2) end
        return text
      end
    else
      o.secret_env, o.secret_ref = var, "$" .. var
      o.secret = function()
        local v = env(var)
        if not v then usage(("%s: oauth_client_secret_env names %s, which is not set"):format(where, var), 2) end
        return v
      end
    end
    s.oauth = o
  end
  return s
end

--- M.providers(settings) -> the auth providers the settings describe.
function M.providers(s)
  local auth = require "knox.auth"
  local list = {}
  if s.keys then list[#list + 1] = auth.keys { file = s.keys.file, client_id = s.keys.client_id } end
  if s.oauth then
    list[#list + 1] = auth.oauth2 { client_id = s.oauth.client_id, client_secret = s.oauth.secret(),
      scope = s.oauth.scope }
  end
  return list
end

--- M.client_options(settings) -> the options of knox.client (the
-- environment is not read again: settings already merged it).
function M.client_options(s)
  if not s.region and not s.base_url then
    usage("no region: give --region us|eu or --base-url URL, set KNOX_REGION or KNOX_BASE_URL, or add "
      .. "region = us to a profile in " .. s.config_path, 2)
  end
  local providers = M.providers(s)
  if #providers == 0 then
    usage("no credentials: set KNOX_KEYS_FILE and KNOX_CLIENT_ID, or KNOX_OAUTH_CLIENT_ID, "
      .. "KNOX_OAUTH_CLIENT_SECRET and KNOX_OAUTH_SCOPE, or add keys_file/client_id (or oauth_client_id, "
      .. "oauth_client_secret_file, oauth_scope) to profile " .. s.profile .. " in " .. s.config_path, 2)
  end
  return { env = false, region = s.region, base_url = s.base_url, tenant = s.tenant or nil, ca_file = s.ca_file,
    auth = providers }
end

return M
