--- knox.cli: the `knox` command.
--
--   knox request METHOD PATH [-q k=v]... [-H 'Name: value']... [-d JSON|@file|@-] [--service S] [-v]
--   knox sim [simulator flags]           the Knox simulator (knox sim --help)
--   knox keys generate [--bits N] [-o FILE]
--   knox keys info FILE
--   knox encrypt TEXT                    KME userName/userToken field encryption
--   knox errors lookup SERVICE CODE
--   knox version
--
-- `knox request` builds its client from the environment (KNOX_REGION or
-- KNOX_BASE_URL, KNOX_KEYS_FILE + KNOX_CLIENT_ID or KNOX_OAUTH_CLIENT_ID +
-- KNOX_OAUTH_CLIENT_SECRET + KNOX_OAUTH_SCOPE, KNOX_TENANT, KNOX_CA_FILE).
-- Exit status: 0 success, 1 a knox.Error (printed on one line to stderr),
-- 2 a usage mistake.
local M = {}

local USAGE = [[
usage: knox <command> [args]

commands:
  request METHOD PATH [-q key=value]... [-H 'Name: value']... [-d JSON|@file|@-] [--service S] [-v]
  sim [--host H] [--port P] [--tls --cert F --key F] [--keys F --client-id ID]... ...
  keys generate [--bits N] [-o FILE]
  keys info FILE
  encrypt TEXT
  errors lookup SERVICE CODE
  version
]]

local function fail_usage(io_err, msg)
  io_err:write("knox: ", msg, "\n", USAGE)
  return 2
end

local function report(io_err, err)
  local knox = require "knox"
  if knox.is_error(err) then
    io_err:write(tostring(err), "\n")
    return err.kind == "usage" and 2 or 1
  end
  -- a lauxlib "bad argument" is a usage mistake too
  io_err:write("knox: ", tostring(err), "\n")
  return tostring(err):find("bad argument", 1, true) and 2 or 1
end

local function read_file(path)
  local f, e = io.open(path, "rb")
  if not f then return nil, e end
  local s = f:read "a"
  f:close()
  return s
end

local commands = {}

function commands.version(_, out)
  local knox = require "knox"
  local core = require "knox.core"
  out:write(("knox %s (libcurl %s, %s)\n"):format(knox.version, core.curl_version, _VERSION))
  return 0
end

local args_mod = require "knox.args"

-- `knox request`'s command line (the one argument helper, knox.args).
local function request_parser()
  local p = args_mod.parser("knox request", "Calls any Knox endpoint with the environment's credentials.")
  p:argument("method", "HTTP method (GET, POST, PUT, DELETE, ...)"):argname("METHOD")
  p:argument("path", "path on the service's host, starting with /"):argname("PATH")
  p:option("-q --query", "a query parameter; repeatable"):argname("KEY=VALUE"):count("*")
  p:option("-H --header", "a request header; repeatable"):argname("'NAME: VALUE'"):count("*")
  p:option("-d --data", "the JSON body, @FILE or @- (stdin)"):argname("JSON")
  p:option("--service", "the service to classify the call as, when its path does not say"):argname("S")
  p:option("--tenant", "act on this managed customer (MSP; overrides KNOX_TENANT); refused over a "
    .. "credential that would ignore it"):argname("ID")
  p:flag("--no-tenant", "send no tenant header even if KNOX_TENANT is set")
  p:flag("-v --verbose", "print each request and response (redacted) to stderr")
  return p
end

-- -v: what was sent and received, from the client's hooks (which are
-- redacted by construction: the text-safety module and the provider's own
-- credential header), in curl's "> " / "< " style.
local function verbose_hooks(client, err_out)
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

function commands.request(argv, out, err_out)
  local a, why = args_mod.parse(request_parser(), argv)
  if not a then return fail_usage(err_out, "request: " .. why) end
  if a.help then
    out:write(request_parser():get_help(), "\n")
    return 0
  end
  local method, path = a.method:upper(), a.path
  if not method:match "^[A-Z]+$" then return fail_usage(err_out, "METHOD must be a word such as GET or POST") end
  if path:sub(1, 1) ~= "/" then return fail_usage(err_out, "PATH must start with '/'") end
  local opts = { query = {}, headers = {}, service = a.service }
  if a.tenant and a.no_tenant then return fail_usage(err_out, "--tenant and --no-tenant contradict each other") end
  if a.tenant then opts.tenant = a.tenant elseif a.no_tenant then opts.tenant = false end
  for _, v in ipairs(a.query) do
    local k, val = v:match "^([^=]+)=(.*)$"
    if not k then return fail_usage(err_out, "-q takes key=value") end
    local cur = opts.query[k]
    if cur == nil then opts.query[k] = val
    elseif type(cur) == "table" then cur[#cur + 1] = val
    else opts.query[k] = { cur, val } end
  end
  for _, v in ipairs(a.header) do
    local k, val = v:match "^([^:]+):%s*(.*)$"
    if not k then return fail_usage(err_out, "-H takes 'Name: value'") end
    opts.headers[k] = val
  end
  if a.data == "@-" then
    opts.body = io.stdin:read "a"
  elseif a.data and a.data:sub(1, 1) == "@" then
    local body, e = read_file(a.data:sub(2))
    if not body then return fail_usage(err_out, "cannot read " .. a.data:sub(2) .. ": " .. tostring(e)) end
    opts.body = body
  else
    opts.body = a.data
  end
  local knox = require "knox"
  local ok, res = pcall(function()
    local client <close> = knox.client()
    if a.verbose then verbose_hooks(client, err_out) end
    local body = client:request(method, path, opts)
    if type(body) == "table" then
      return knox.json.encode(body)
    end
    return body and tostring(body) or ""
  end)
  if not ok then return report(err_out, res) end
  out:write(res, "\n")
  return 0
end

function commands.sim(args)
  return require("knox.sim").main(args) or 0
end

function commands.keys(args, out, err_out)
  local knox = require "knox"
  local sub = args[1]
  if sub == "generate" then
    local p = args_mod.parser("knox keys generate", "Generates an RSA key pair in Knox's keys.json form.")
    p:option("--bits", "key size"):argname("N"):default("2048")
      :convert(args_mod.number("--bits", 2048, 16384, true))
    p:option("-o --out", "write the keys to FILE (created owner-only; never overwritten)"):argname("FILE")
    local rest = {}
    for i = 2, #args do rest[#rest + 1] = args[i] end
    local a, why = args_mod.parse(p, rest)
    if not a then return fail_usage(err_out, "keys generate: " .. why) end
    if a.help then
      out:write(p:get_help(), "\n")
      return 0
    end
    local bits, file = a.bits, a.out
    local ok, key = pcall(knox.keys.generate, { bits = bits })
    if not ok then return report(err_out, key) end
    if not file then
      local done, res = pcall(key.to_json, key)
      if not done then return report(err_out, res) end
      out:write(res, "\n")
      return 0
    end
    -- private key material: key:save creates a new file owner-only in one
    -- open(O_CREAT|O_EXCL|O_NOFOLLOW, 0600), never over an existing file and
    -- never through a symbolic link, even a dangling one (csrc/keyfile.c)
    local saved, e = pcall(key.save, key, file)
    if not saved then
      -- refusing to replace what is at FILE is the caller's mistake (exit 2)
      if knox.is_error(e) and type(e.cause) == "table" and e.cause.name == "EEXIST" then
        err_out:write(tostring(e), "\n")
        return 2
      end
      return report(err_out, e)
    end
    err_out:write("knox: wrote ", file, "\n")
    return 0
  elseif sub == "info" then
    if not args[2] then return fail_usage(err_out, "keys info needs FILE") end
    local ok, res = pcall(knox.keys.load, args[2])
    if not ok then return report(err_out, res) end
    out:write(tostring(res), "\n")
    return 0
  end
  return fail_usage(err_out, "keys: generate or info")
end

function commands.encrypt(args, out, err_out)
  if not args[1] then return fail_usage(err_out, "encrypt needs TEXT") end
  local knox = require "knox"
  local ok, res = pcall(knox.encrypt, args[1])
  if not ok then return report(err_out, res) end
  out:write(res, "\n")
  return 0
end

function commands.errors(args, out, err_out)
  if args[1] ~= "lookup" or not args[2] or not args[3] then
    return fail_usage(err_out, "errors lookup SERVICE CODE")
  end
  local knox = require "knox"
  local code = math.tointeger(tonumber(args[3])) or args[3]
  local ok, res = pcall(knox.errors.lookup, args[2], code)
  if not ok then return report(err_out, res) end
  if not res then
    err_out:write("knox: no ", args[2], " code ", args[3], " in the catalog\n")
    return 1
  end
  out:write(("%s %s (HTTP %s): %s\n"):format(args[3], res.name or "?", tostring(res.status or "?"),
    res.description or ""))
  return 0
end

--- M.main(argv [, out, err]) -> exit status
function M.main(argv, out, err_out)
  out, err_out = out or io.stdout, err_out or io.stderr
  argv = argv or {}
  local cmd = argv[1]
  if cmd == nil or cmd == "-h" or cmd == "--help" or cmd == "help" then
    out:write(USAGE)
    return cmd == nil and 2 or 0
  end
  local fn = commands[cmd]
  if not fn then return fail_usage(err_out, "unknown command " .. tostring(cmd)) end
  local rest = {}
  for i = 2, #argv do rest[#rest + 1] = argv[i] end
  return fn(rest, out, err_out)
end

return M
