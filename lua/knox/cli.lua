--- knox.cli: the `knox` command. The entry point (M.main) and the small
-- commands; the rest lives in lua/knox/cli/*.lua, one concern each:
--
--   commands    service commands made from the registry (knox kme devices list ...)
--   common      the flags every Knox-calling command takes
--   output      json / jsonl / table / csv
--   progress    the progress line on stderr
--   profile     the config file's profiles; flags > environment > profile
--   cache       the token cache shared between runs
--   session     the client of one run (settings, cache, -v trace)
--   tokens      knox token, knox auth status
--   doctor      knox doctor
--   completion  knox completion bash|zsh|fish
--   input       device lists from arguments, CSV files and stdin
--   report      exit statuses and how failures are told
--   term        is this a terminal, how wide
--
-- Exit status: 0 ok, 1 Knox error, 2 usage, 3 transport, 4 auth refused,
-- 5 partial (knox.cli.report). Never a Lua traceback.
local args_mod = require "knox.args"
local report = require "knox.cli.report"
local common = require "knox.cli.common"

local M = {}

local function usage_text()
  local t = require("knox.cli.commands").tree()
  local lines = {}
  for _, name in ipairs(t.names) do
    local s = t.services[name]
    lines[#lines + 1] = ("  %-6s %s: %s"):format(name, s.spec.title or name, table.concat(s.noun_names, ", "))
  end
  return ([[
usage: knox [--profile NAME] [-o FORMAT] <command> [args] [flags]

service commands (knox SERVICE NOUN VERB; knox SERVICE for its nouns and verbs, -h on any):
%s

other commands:
  request METHOD PATH [-q key=value]... [-H 'Name: value']... [-d JSON|@file|@-] [--service S]
  token [--show] [--clear] [--scheme legacy|oauth2]
  auth status
  doctor
  errors lookup SERVICE CODE|NAME
  keys generate [--bits N] [-o FILE] | keys info FILE
  encrypt TEXT
  sim [simulator flags]                   (knox sim --help)
  completion bash|zsh|fish
  version

common flags: -o/--output json|jsonl|table|csv, --fields a,b,c, --quiet, -v/--verbose, --profile NAME,
  --region us|eu, --base-url URL, --tenant ID, --no-tenant, --ca-file FILE, --timeout S, --no-cache;
  lists: --all; asynchronous calls: --wait.
configuration: $KNOX_CONFIG or ~/.config/knox/config ([profile NAME] sections), KNOX_PROFILE, KNOX_* variables.
exit status: 0 ok, 1 Knox error, 2 usage, 3 transport, 4 auth refused, 5 partial (bulk).
]]):format(table.concat(lines, "\n"))
end
M.usage_text = usage_text

local function fail_usage(io_, msg)
  return report.usage(io_, msg, "(knox --help for the commands)")
end

local function read_file(path)
  local f, e = io.open(path, "rb")
  if not f then return nil, e end
  local s = f:read "a"
  f:close()
  return s
end

local commands = {}

function commands.version(_, ctx)
  local knox = require "knox"
  local core = require "knox.core"
  ctx.out:write(("knox %s (libcurl %s, %s)\n"):format(knox.version, core.curl_version, _VERSION))
  return 0
end

---------------------------------------------------------------------------
-- knox request

local function request_parser()
  local p = args_mod.parser("knox request", "Calls any Knox endpoint with the profile's or environment's "
    .. "credentials.")
  p:argument("method", "HTTP method (GET, POST, PUT, DELETE, ...)"):argname("METHOD")
  p:argument("path", "path on the service's host, starting with /"):argname("PATH")
  p:option("-q --query", "a query parameter; repeatable"):argname("KEY=VALUE"):count("*")
  p:option("-H --header", "a request header; repeatable"):argname("'NAME: VALUE'"):count("*")
  p:option("-d --data", "the JSON body, @FILE or @- (stdin)"):argname("JSON")
  p:option("--service", "the service to classify the call as, when its path does not say"):argname("S")
  common.add(p)
  return p
end

function commands.request(argv, ctx)
  local io_ = { err = ctx.err, json = common.json_errors(ctx.pre, argv) }
  local p = request_parser()
  local a, why = common.parse(p, argv, ctx)
  if a == false then return 0 end -- the help was printed
  if not a then return fail_usage(io_, "request: " .. why) end
  return report.protect(io_, function()
    local flags = common.flags(a, ctx.pre)
    io_.json, io_.verbose = flags.json_errors, flags.verbose
    local method, path = a.method:upper(), a.path
    if not method:match "^[A-Z]+$" then return fail_usage(io_, "METHOD must be a word such as GET or POST") end
    if path:sub(1, 1) ~= "/" then return fail_usage(io_, "PATH must start with '/'") end
    local opts = { query = {}, headers = {}, service = a.service }
    -- --tenant goes with the call; --no-tenant sends none whatever the
    -- environment or profile say
    if a.tenant then opts.tenant = a.tenant elseif a.no_tenant then opts.tenant = false end
    for _, v in ipairs(a.query) do
      local k, val = v:match "^([^=]+)=(.*)$"
      if not k then return fail_usage(io_, "-q takes key=value") end
      local cur = opts.query[k]
      if cur == nil then opts.query[k] = val
      elseif type(cur) == "table" then cur[#cur + 1] = val
      else opts.query[k] = { cur, val } end
    end
    for _, v in ipairs(a.header) do
      local k, val = v:match "^([^:]+):%s*(.*)$"
      if not k then return fail_usage(io_, "-H takes 'Name: value'") end
      opts.headers[k] = val
    end
    if a.data == "@-" then
      opts.body = io.stdin:read "a"
    elseif a.data and a.data:sub(1, 1) == "@" then
      local body, e = read_file(a.data:sub(2))
      if not body then return fail_usage(io_, "cannot read " .. a.data:sub(2) .. ": " .. tostring(e)) end
      opts.body = body
    else
      opts.body = a.data
    end
    flags.tenant = nil -- the call carries it (above), not the client
    local s <close> = require("knox.cli.session").open(flags, io_)
    local printer = common.printer(flags, s.settings, ctx)
    io_.json = flags.json_errors
    local body = s.client:request(method, path, opts)
    printer:value(body)
    return 0
  end)
end

---------------------------------------------------------------------------
-- knox sim, keys, encrypt, errors

function commands.sim(argv)
  return require("knox.sim").main(argv) or 0
end

-- The one place a key file is written: created owner-only, never over an
-- existing file.
function commands.keys(argv, ctx)
  local knox = require "knox"
  local io_ = { err = ctx.err }
  local sub = argv[1]
  local rest = table.move(argv, 2, #argv, 1, {})
  if sub == "generate" then
    local p = args_mod.parser("knox keys generate", "Generates an RSA key pair in Knox's keys.json form.")
    p:option("--bits", "key size"):argname("N"):default("2048")
      :convert(args_mod.number("--bits", 2048, 16384, true))
    p:option("-o --out", "write the keys to FILE (created owner-only; never overwritten)"):argname("FILE")
    local a, why = args_mod.parse(p, rest)
    if not a then return fail_usage(io_, "keys generate: " .. why) end
    if a.help then
      ctx.out:write(p:get_help(), "\n")
      return 0
    end
    return report.protect(io_, function()
      local key = knox.keys.generate { bits = a.bits }
      if not a.out then
        ctx.out:write(key:to_json(), "\n")
        return 0
      end
      -- private key material: key:save creates a new file owner-only in one
      -- open(O_CREAT|O_EXCL|O_NOFOLLOW, 0600), never over an existing file
      -- and never through a symbolic link, even a dangling one
      -- (csrc/keyfile.c); the JSON never becomes a Lua string
      local saved, e = pcall(key.save, key, a.out)
      if not saved then
        -- refusing to replace what is at FILE is the caller's mistake (exit 2)
        if knox.is_error(e) and type(e.cause) == "table" and e.cause.name == "EEXIST" then
          return fail_usage(io_, (tostring(e):gsub("^knox: ", "")))
        end
        error(e, 0)
      end
      ctx.err:write("knox: wrote ", a.out, "\n")
      return 0
    end)
  elseif sub == "info" then
    if not argv[2] or argv[2] == "-h" or argv[2] == "--help" then
      if argv[2] then
        ctx.out:write("usage: knox keys info FILE\n")
        return 0
      end
      return fail_usage(io_, "keys info needs FILE")
    end
    return report.protect(io_, function()
      ctx.out:write(tostring(knox.keys.load(argv[2])), "\n")
      return 0
    end)
  end
  return fail_usage(io_, "keys: generate or info")
end

function commands.encrypt(argv, ctx)
  local io_ = { err = ctx.err }
  if not argv[1] then return fail_usage(io_, "encrypt needs TEXT") end
  if argv[1] == "-h" or argv[1] == "--help" then
    ctx.out:write("usage: knox encrypt TEXT   (KME userName/userToken field encryption)\n")
    return 0
  end
  return report.protect(io_, function()
    ctx.out:write(require("knox").encrypt(argv[1]), "\n")
    return 0
  end)
end

function commands.errors(argv, ctx)
  local io_ = { err = ctx.err, json = common.json_errors(ctx.pre, argv) }
  local p = args_mod.parser("knox errors lookup", "Looks a Knox error code (or name) up in the catalog.")
  p:argument("service", "kme, kg, msp, kdp, kc, kai, auth, samsung_account, oauth2"):argname("SERVICE")
  p:argument("code", "the code (4040300, AUT_1001) or the name (DEVICE_NOT_FOUND)"):argname("CODE|NAME")
  common.add(p, { client = false })
  if argv[1] ~= "lookup" then return fail_usage(io_, "errors lookup SERVICE CODE|NAME") end
  local a, why = common.parse(p, table.move(argv, 2, #argv, 1, {}), ctx)
  if a == false then return 0 end -- the help was printed
  if not a then return fail_usage(io_, "errors lookup: " .. why) end
  return report.protect(io_, function()
    local flags = common.flags(a, ctx.pre)
    local knox = require "knox"
    local code = math.tointeger(tonumber(a.code)) or a.code
    local res = knox.errors.lookup(a.service, code)
    if not res and type(code) == "string" then
      -- by name: the catalog entries of the service with that name
      for _, e in ipairs(knox.errors.catalog(a.service)) do
        if type(e.name) == "string" and e.name:upper() == code:upper() then
          res = res or e
          if e.service == a.service then res = e break end
        end
      end
    end
    if not res then
      io_.json = flags.json_errors
      return report.fail(io_, knox.errors.new { kind = "api", service = a.service,
        message = ("no %s code %s in the catalog"):format(a.service, a.code) })
    end
    if flags.output then
      local printer = common.printer(flags, nil, ctx)
      printer:value { service = res.service, code = res.code, name = res.name, status = res.status,
        description = res.description, kind = res.kind }
    else
      ctx.out:write(("%s %s (HTTP %s): %s\n"):format(tostring(res.code or a.code), res.name or "?",
        tostring(res.status or "?"), res.description or ""))
    end
    return 0
  end)
end

commands.token = function(argv, ctx) return require("knox.cli.tokens").token(argv, ctx) end
commands.auth = function(argv, ctx) return require("knox.cli.tokens").auth(argv, ctx) end
commands.doctor = function(argv, ctx) return require("knox.cli.doctor").run(argv, ctx) end
commands.completion = function(argv, ctx) return require("knox.cli.completion").run(argv, ctx) end
commands.job = function(argv, ctx) return require("knox.cli.job").run(argv, ctx) end

---------------------------------------------------------------------------
-- Service commands

local function service_command(name, argv, ctx)
  local cmds = require "knox.cli.commands"
  local s = cmds.tree().services[name]
  local io_ = { err = ctx.err }
  local noun, verb = argv[1], argv[2]
  if noun == nil or noun == "-h" or noun == "--help" then
    ctx.out:write(cmds.help(name))
    return noun and 0 or 2
  end
  if not s.nouns[noun] then
    local near = require("knox.schema").nearest(noun, s.noun_names)
    return fail_usage(io_, ("unknown command knox %s %s%s; %s has: %s"):format(name, noun,
      near and (" (did you mean " .. near .. "?)") or "", name, table.concat(s.noun_names, ", ")))
  end
  if verb == nil or verb == "-h" or verb == "--help" then
    ctx.out:write(cmds.help(name, noun))
    return verb and 0 or 2
  end
  local e = s.nouns[noun][verb]
  if not e then
    local verbs = cmds.verbs(s, noun)
    local near = require("knox.schema").nearest(verb, verbs)
    return fail_usage(io_, ("unknown command knox %s %s %s%s; %s %s has: %s"):format(name, noun, verb,
      near and (" (did you mean " .. near .. "?)") or "", name, noun, table.concat(verbs, ", ")))
  end
  return cmds.run(e, table.move(argv, 3, #argv, 1, {}), ctx)
end

--- M.main(argv [, out, err]) -> exit status
function M.main(argv, out, err_out)
  out, err_out = out or io.stdout, err_out or io.stderr
  local ctx = { out = out, err = err_out }
  return report.protect({ err = err_out }, function()
    local list = {}
    for i = 1, #(argv or {}) do list[i] = tostring(argv[i]) end
    local pre, rest = common.split_pre(list)
    if not pre then return fail_usage({ err = err_out }, rest) end
    ctx.pre = pre
    if pre.version and not rest[1] then return commands.version(rest, ctx) end
    local cmd = rest[1]
    if cmd == nil or cmd == "help" or pre.help then
      out:write(usage_text())
      return (cmd == nil and not pre.help) and 2 or 0
    end
    local tail = table.move(rest, 2, #rest, 1, {})
    if commands[cmd] then return commands[cmd](tail, ctx) end
    if require("knox.cli.commands").tree().services[cmd] then return service_command(cmd, tail, ctx) end
    local names = {}
    for k in pairs(commands) do names[#names + 1] = k end
    for _, k in ipairs(require("knox.cli.commands").tree().names) do names[#names + 1] = k end
    table.sort(names)
    local near = require("knox.schema").nearest(cmd, names)
    return fail_usage({ err = err_out }, "unknown command " .. cmd .. (near and ("; did you mean " .. near .. "?")
      or ""))
  end)
end

return M
