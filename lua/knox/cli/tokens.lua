--- knox.cli.tokens: `knox token` and `knox auth status`.
--
--   knox token                 each credential's current token, masked, and when it expires
--   knox token --show [--scheme legacy|oauth2]
--                              the token itself, alone on a line (for curl -H ...):
--                              the signed x-knox-apitoken, or the OAuth bearer token
--   knox token --clear         forget the profile's cached tokens
--   knox auth status           which credentials, which services each reaches, token lifetimes
--
-- Both get a token when none is cached (that is the check); the cache is
-- used and refreshed as by every other command.
local args_mod = require "knox.args"
local report = require "knox.cli.report"
local common = require "knox.cli.common"
local session = require "knox.cli.session"
local progress = require "knox.cli.progress"

local M = {}

local function mask(v)
  if #v <= 12 then return ("*"):rep(#v) end
  return v:sub(1, 4) .. "…" .. v:sub(-4) .. (" (%d chars)"):format(#v)
end
M.mask = mask

local function lifetime(p)
  local t = p:export_token()
  if not t then return nil end
  return math.max(0, t.expires_at - require("knox.core").now())
end

-- The providers, optionally of one scheme only.
local function chosen(client, scheme)
  local list = {}
  for _, p in ipairs(client.providers) do
    if not scheme or p.scheme == scheme then list[#list + 1] = p end
  end
  if #list == 0 then
    require("knox.errors").usage("no " .. scheme .. " credentials in this profile or environment", 0)
  end
  return list
end

local function parse(p, argv, ctx, io_)
  local a, why = args_mod.parse(p, common.with_pre(argv, ctx.pre))
  if not a then return nil, report.usage(io_, why, "(" .. p._name .. " -h for its flags)") end
  if a.help then
    ctx.out:write(p:get_help(), "\n")
    return nil, 0
  end
  return a
end

--- knox token
function M.token(argv, ctx)
  local p = args_mod.parser("knox token", "Prints the current token of each credential (masked unless --show).")
  p:flag("--show", "print the token itself (only the token, one line)")
  p:flag("--clear", "remove the profile's cached tokens")
  p:option("--scheme", "only this credential: legacy (keys.json) or oauth2"):argname("SCHEME")
  common.add(p)
  local io_ = { err = ctx.err, json = common.json_errors(ctx.pre, argv) }
  local a, st = parse(p, argv, ctx, io_)
  if not a then return st end
  return report.protect(io_, function()
    local flags = common.flags(a, ctx.pre)
    io_.json, io_.verbose = flags.json_errors, flags.verbose
    if a.scheme and a.scheme ~= "legacy" and a.scheme ~= "oauth2" then
      return report.usage(io_, "--scheme must be legacy or oauth2")
    end
    if a.clear then
      local settings = require("knox.cli.profile").resolve(flags)
      local c, why = require("knox.cli.cache").open()
      if not c then
        ctx.err:write("knox: no token cache (", why, ")\n")
        return 0
      end
      local n = c:clear(settings.profile)
      if not flags.quiet then
        ctx.err:write(("knox: removed %d cached token%s of profile %s\n"):format(n, n == 1 and "" or "s",
          settings.profile))
      end
      return 0
    end
    local s <close> = session.open(flags, io_)
    local list = chosen(s.client, a.scheme)
    if a.show and #list > 1 then
      return report.usage(io_, "--show with several credentials needs --scheme legacy or oauth2")
    end
    local rows = {}
    for _, pr in ipairs(list) do
      local header, value = pr:authorize(s.client:_auth_ctx())
      value = value:gsub("^[Bb]earer ", "")
      if a.show then
        ctx.out:write(value, "\n")
      else
        local left = lifetime(pr)
        rows[#rows + 1] = { scheme = pr.scheme, header = header, token = mask(value),
          expires_in = left and progress.duration(left) or nil, cached = s.imported[pr] ~= nil }
      end
    end
    if not a.show then
      local printer = common.printer(flags, s.settings, ctx)
      if printer.format == "table" and not flags.fields then
        printer.fields = { "scheme", "header", "token", "expires_in", "cached" }
      end
      local w = printer:list()
      w:add(rows)
      w:finish()
    end
    return 0
  end)
end

-- The services (and their routes) a scheme reaches.
local function reach(scheme)
  local reg = require("knox.services").load()
  local out = {}
  for _, name in ipairs(reg.names) do
    local spec = reg.services[name]
    if next(spec.endpoints) ~= nil or name == "kai" then
      for _, r in ipairs(spec.routes) do
        local rule = r.schemes[scheme]
        if rule then out[#out + 1] = ((r.label or r.name):gsub(" ", "")) end
      end
    end
  end
  return out
end
M.reach = reach

--- knox auth status
function M.auth(argv, ctx)
  local io_ = { err = ctx.err, json = common.json_errors(ctx.pre, argv) }
  if argv[1] ~= "status" then
    if argv[1] == "-h" or argv[1] == "--help" then
      ctx.out:write("usage: knox auth status [flags]   (knox auth status -h)\n")
      return 0
    end
    return report.usage(io_, "auth: status (knox auth status)")
  end
  local p = args_mod.parser("knox auth status", "Which credentials this profile has, which services each "
    .. "reaches, and how long their tokens live (a token is fetched when none is cached).")
  common.add(p)
  local a, st = parse(p, table.move(argv, 2, #argv, 1, {}), ctx, io_)
  if not a then return st end
  return report.protect(io_, function()
    local flags = common.flags(a, ctx.pre)
    io_.json, io_.verbose = flags.json_errors, flags.verbose
    local s <close> = session.open(flags, io_)
    local settings = s.settings
    local rows, worst = {}, 0
    for _, pr in ipairs(s.client.providers) do
      local cred = pr.scheme == "legacy" and settings.keys or settings.oauth
      local row = { scheme = pr.scheme, client_id = cred and cred.client_id, from = cred and cred.from,
        services = table.concat(reach(pr.scheme), " ") }
      local ok, err = pcall(pr.authorize, pr, s.client:_auth_ctx())
      if ok then
        local left = lifetime(pr)
        row.token = s.imported[pr] and "cached" or "new"
        row.expires_in = left and progress.duration(left) or nil
      else
        row.token = "refused"
        row.error = tostring(err)
        local code = report.status(err)
        if worst == 0 then worst = code end
      end
      rows[#rows + 1] = row
    end
    local printer = common.printer(flags, settings, ctx)
    if printer.format == "table" and not flags.fields then
      ctx.out:write(("profile %s%s, %s\n"):format(settings.profile,
        settings.profile_found and (" (" .. settings.config_path .. ")") or " (not in a config file)",
        settings.base_url and ("base URL " .. settings.base_url) or ("region " .. tostring(settings.region))))
      if settings.tenant then ctx.out:write("tenant ", settings.tenant, " (", settings.from.tenant, ")\n") end
      printer.fields = { "scheme", "client_id", "from", "token", "expires_in", "services", "error" }
    end
    local w = printer:list()
    w:add(rows)
    w:finish()
    return worst
  end)
end

return M
