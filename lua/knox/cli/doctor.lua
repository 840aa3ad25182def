--- knox.cli.doctor: `knox doctor`, one line per check of the setup, each
-- failure with its fix; exit 1 when any check fails.
--
--   config       the config file parses, the profile exists, a region or base URL is set
--   keys file    readable, owner-only, its two halves one key pair
--   oauth secret the secret reference resolves (file readable and owner-only, or variable set)
--   token cache  the cache directory is private to this user
--   reach        every host the profile's services use answers HTTP
--   tls          those hosts' certificates verify (https only)
--   clock        the local clock is within 60 s of the servers' Date
--   token        a token round trip per credential (never from the cache)
--   tenant       the tenant is a managed customer the OAuth credential can see
local args_mod = require "knox.args"
local report = require "knox.cli.report"
local common = require "knox.cli.common"

local M = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function one_line(v)
  return (tostring(v):gsub("[\r\n]+", " "))
end

-- Whether the file at path is open to group or others (nil: cannot tell).
local function open_to_others(path)
  local ok, lfs = pcall(require, "lfs")
  if not ok then return nil end
  local a = lfs.attributes(path)
  if not a then return nil end
  return a.permissions:sub(4) ~= "------", a.permissions
end

local function fix_for_token(err, scheme)
  if type(err) == "table" and (err.kind == "transport" or err.kind == "timeout") then
    return "the token endpoint did not answer: see the reach and tls lines"
  end
  if scheme == "legacy" then
    return "check client_id / KNOX_CLIENT_ID and that keys.json is the key pair registered for it in the "
      .. "Knox API portal"
  end
  return "check the OAuth client id, its secret and that oauth_scope lists only scopes the client was granted"
end

--- M.checks(flags, note) -> list of { check =, status = "ok"|"fail"|"skip", detail =, fix = }
function M.checks(flags)
  local out = {}
  local function add(check, status, detail, fix)
    out[#out + 1] = { check = check, status = status, detail = one_line(detail), fix = fix and one_line(fix) }
  end
  local profile = require "knox.cli.profile"
  local ok, settings = pcall(profile.resolve, flags)
  if not ok then
    add("config", "fail", type(settings) == "table" and settings.message or settings,
      "edit " .. profile.path() .. ", or set KNOX_PROFILE / --profile to a profile it has")
    return out
  end
  local s = settings
  local where = s.profile_found and ("profile " .. s.profile .. " in " .. s.config_path)
    or ("no profile (" .. (s.config_exists and s.config_path .. " has no " .. s.profile or "no config file")
      .. "); environment only")
  if not s.region and not s.base_url then
    add("config", "fail", where .. ": no region or base URL",
      "add region = us (or eu) to the profile, or set KNOX_REGION")
  else
    add("config", "ok", where .. (s.base_url and (", base URL " .. s.base_url) or (", region " .. s.region))
      .. " (from " .. tostring(s.from.region) .. ")")
  end

  -- keys.json
  if s.keys then
    local f = io.open(s.keys.file, "rb")
    if not f then
      add("keys file", "fail", s.keys.file .. " cannot be read",
        "check the path (keys_file / KNOX_KEYS_FILE) and that this user may read it")
    else
      f:close()
      local kok, key = pcall(require("knox.core").keys.load, s.keys.file)
      local others, perms = open_to_others(s.keys.file)
      if not kok then
        add("keys file", "fail", s.keys.file .. ": " .. (type(key) == "table" and key.message or tostring(key)),
          "download keys.json again from the Knox API portal (its Public and Private halves must be one pair)")
      elseif others then
        add("keys file", "fail", s.keys.file .. " is readable by others (" .. perms .. ")",
          "chmod 600 " .. quote(s.keys.file))
      else
        add("keys file", "ok", s.keys.file .. ": " .. tostring(key):gsub("^knox%.Key: ", "") .. ", owner-only, "
          .. "public and private halves match")
      end
    end
  else
    add("keys file", "skip", "no keys.json credential (keys_file + client_id, or KNOX_KEYS_FILE + KNOX_CLIENT_ID)")
  end

  -- the OAuth secret reference
  if s.oauth then
    local sok, sec = pcall(s.oauth.secret)
    if not sok then
      add("oauth secret", "fail", type(sec) == "table" and sec.message or sec,
        s.oauth.secret_file and ("write the secret to " .. s.oauth.secret_file .. " (chmod 600)")
          or ("export " .. tostring(s.oauth.secret_env or "KNOX_OAUTH_CLIENT_SECRET")))
    elseif s.oauth.secret_file and open_to_others(s.oauth.secret_file) then
      add("oauth secret", "fail", s.oauth.secret_file .. " is readable by others",
        "chmod 600 " .. quote(s.oauth.secret_file))
    else
      add("oauth secret", "ok", "client " .. s.oauth.client_id .. ", secret from " .. tostring(s.oauth.secret_ref))
    end
  else
    add("oauth secret", "skip", "no OAuth credential")
  end

  -- the token cache
  local c, why = require("knox.cli.cache").open()
  if c then add("token cache", "ok", c.dir .. " (private to this user)")
  else add("token cache", "fail", why, "remove it or make it yours: chmod 700, owned by you") end

  -- a client (no cache: the round trips below are the point)
  local session = require "knox.cli.session"
  local cok, sess = pcall(session.open, flags, { err = io.stderr }, { cache = false,
    client = { max_attempts = 1, timeout = flags.timeout or 15 } })
  if not cok then
    add("client", "fail", type(sess) == "table" and sess.message or sess,
      "fix the configuration above (knox doctor lists what is missing)")
    return out
  end
  local client = sess.client
  local dates = {}
  client:on("response", function(d)
    local date = d.headers and d.headers.date
    if date then dates[#dates + 1] = { date = date, at = require("knox.core").now() } end
  end)

  -- reach and TLS, once per distinct host
  local reg = require("knox.services").load()
  local bases, order = {}, {}
  for _, name in ipairs(reg.names) do
    local spec = reg.services[name]
    local r = spec.routes[1]
    if r and next(spec.endpoints) ~= nil then
      local base = client.endpoints[r.name]
      if base and not bases[base] then
        bases[base] = name
        order[#order + 1] = base
      end
    end
  end
  local reachable = true
  for _, base in ipairs(order) do
    local rok, err = pcall(client.request, client, "GET", "/", { auth = false, service = bases[base], tenant = false })
    local https = base:match "^https:" ~= nil
    if rok or (type(err) == "table" and err.status) then
      add("reach", "ok", base .. " answers HTTP")
      if https then add("tls", "ok", base .. ": certificate verified") end
    else
      reachable = false
      local cause = type(err) == "table" and type(err.cause) == "table" and err.cause.name or ""
      local text = type(err) == "table" and (err.message or tostring(err)) or tostring(err)
      if https and (cause:find "SSL" or cause:find "PEER" or cause:find "CERT" or text:lower():find "certificate") then
        add("tls", "fail", base .. ": " .. text, "trust your proxy's CA with ca_file = FILE (or KNOX_CA_FILE), "
          .. "or check the system clock")
      else
        add("reach", "fail", base .. ": " .. text, "check the network, proxy (https_proxy) and region/base_url")
      end
    end
    if not https and (rok or (type(err) == "table" and err.status)) then
      add("tls", "skip", base .. " is plain http (loopback only)")
    end
  end

  -- the clock
  local headers = require "knox.headers"
  local worst
  for _, d in ipairs(dates) do
    local t = headers.http_date(d.date)
    if t then
      local diff = d.at - t
      if not worst or math.abs(diff) > math.abs(worst) then worst = diff end
    end
  end
  if worst == nil then
    add("clock", "skip", "no server Date seen")
  elseif math.abs(worst) > 60 then
    add("clock", "fail", ("the local clock is %.0f s %s the server's"):format(math.abs(worst),
      worst > 0 and "ahead of" or "behind"),
      "synchronise it (timedatectl set-ntp true); until then knox signs with the server's time")
  else
    add("clock", "ok", ("within %.0f s of the server's Date"):format(math.abs(worst)))
  end

  -- a token per credential
  local oauth_ok = false
  for _, p in ipairs(client.providers) do
    local tok, err = pcall(p.authorize, p, client:_auth_ctx())
    if tok then
      local t = p:export_token()
      local left = t and (t.expires_at - require("knox.core").now())
      add("token " .. p.scheme, "ok", "issued" .. (left and (", lives " .. require("knox.cli.progress")
        .duration(left)) or ""))
      if p.scheme == "oauth2" then oauth_ok = true end
    else
      add("token " .. p.scheme, "fail", type(err) == "table" and tostring(err) or err, fix_for_token(err, p.scheme))
    end
  end
  if #client.providers == 0 then
    add("token", "fail", "no credentials", "add keys_file + client_id or oauth_client_id + "
      .. "oauth_client_secret_file + oauth_scope to the profile, or set the KNOX_* variables")
  end

  -- the tenant
  if not s.tenant then
    add("tenant", "skip", "no tenant (tenant = / KNOX_TENANT / --tenant)")
  elseif not s.oauth then
    add("tenant", "fail", "tenant " .. s.tenant .. " is set but there is no OAuth credential: the tenant header "
      .. "is only honoured with OAuth", "add oauth_client_id, oauth_client_secret_file and oauth_scope")
  elseif not oauth_ok or not reachable then
    add("tenant", "skip", "tenant " .. s.tenant .. ": not checked (no OAuth token)")
  else
    local tk, res = pcall(function() return client.msp:get_customer({ customerId = s.tenant }, { tenant = false }) end)
    if tk then
      add("tenant", "ok", "tenant " .. s.tenant .. " is a managed customer"
        .. (type(res) == "table" and res.companyName and (" (" .. tostring(res.companyName) .. ")") or ""))
    else
      add("tenant", "fail", "tenant " .. s.tenant .. ": " .. tostring(res),
        "check the id: knox msp customers list --all --fields customerId,companyName")
    end
  end
  client:close()
  return out
end

--- M.run(argv, ctx) -> exit status.
function M.run(argv, ctx)
  local p = args_mod.parser("knox doctor", "Checks the setup: config, keys file, secret, token cache, reach, TLS, "
    .. "clock, a token per credential and the tenant. One line each; exit 1 when any fails.")
  common.add(p)
  local io_ = { err = ctx.err, json = common.json_errors(ctx.pre, argv) }
  local a, why = common.parse(p, argv, ctx)
  if a == false then return 0 end -- the help was printed
  if not a then return report.usage(io_, why, "(knox doctor -h for its flags)") end
  return report.protect(io_, function()
    local flags = common.flags(a, ctx.pre)
    io_.json = flags.json_errors
    local results = M.checks(flags)
    local failed = 0
    for _, r in ipairs(results) do if r.status == "fail" then failed = failed + 1 end end
    if flags.output and flags.output ~= "table" then
      local printer = common.printer(flags, nil, ctx)
      local w = printer:list()
      w:add(results)
      w:finish()
    else
      local wc = 0
      for _, r in ipairs(results) do wc = math.max(wc, #r.check) end
      for _, r in ipairs(results) do
        local mark = r.status == "ok" and "ok  " or r.status == "fail" and "FAIL" or "skip"
        ctx.out:write(("%s  %s%s  %s%s\n"):format(mark, r.check, (" "):rep(wc - #r.check), r.detail,
          r.fix and ("; fix: " .. r.fix) or ""))
      end
      if not flags.quiet then
        ctx.err:write(failed == 0 and "knox doctor: every check passed\n"
          or ("knox doctor: %d check%s failed\n"):format(failed, failed == 1 and "" or "s"))
      end
    end
    return failed == 0 and 0 or 1
  end)
end

return M
