--- knox.cli.common: the flags every command that talks to Knox takes, and
-- what they mean once parsed.
--
--   -o/--output json|jsonl|table|csv   (default: table on a terminal, else json;
--                                       a profile's `output =` or KNOX_OUTPUT in between)
--   --fields a,b,c    columns / keys to keep (dotted paths reach into objects)
--   --quiet           no progress line, no notes
--   -v/--verbose      the redacted request/response trace on stderr
--   --profile NAME    the profile of the config file (before the command
--                     word it is always that: knox --profile prod kme ...)
--   --region us|eu, --base-url URL, --tenant ID, --no-tenant, --ca-file FILE,
--   --timeout SECONDS, --no-cache (no token cache for this run)
--   --all             (paged lists) every page, streamed
--   --wait, --wait-timeout S   (asynchronous calls) wait for the outcome
--
-- Options given before the command word (knox -o json kme devices list)
-- are the same options.
local usage = require("knox.errors").usage
local output = require "knox.cli.output"
local term = require "knox.cli.term"

local M = {}

-- name -> takes a value
M.GLOBAL = { ["-o"] = true, ["--output"] = true, ["--fields"] = true, ["--quiet"] = false, ["-v"] = false,
  ["--verbose"] = false, ["--profile"] = true, ["--region"] = true, ["--base-url"] = true, ["--tenant"] = true,
  ["--no-tenant"] = false, ["--ca-file"] = true, ["--timeout"] = true, ["--no-cache"] = false }

local RESERVED = { ["--all"] = true, ["--wait"] = true, ["--wait-timeout"] = true, ["--help"] = true,
  ["--from"] = true, ["--column"] = true }

--- M.reserved(flag) -> whether a command's own flag would clash.
function M.reserved(flag)
  return M.GLOBAL[flag] ~= nil or RESERVED[flag] or false
end

--- M.add(parser, { paged =, async =, profile = true, client = true }): the common flags.
function M.add(p, o)
  o = o or {}
  p:option("-o --output", "output format: json, jsonl, table or csv (default: table on a terminal, else json)")
    :argname("FORMAT")
  p:option("--fields", "only these fields, comma-separated (dotted paths reach into objects)"):argname("A,B,C")
  p:flag("--quiet", "no progress line and no notes on stderr")
  p:flag("-v --verbose", "print each request and response (redacted) to stderr")
  if o.client ~= false then
    if o.profile ~= false then
      p:option("--profile", "the config file's profile (default: KNOX_PROFILE, else default)"):argname("NAME")
    end
    p:option("--region", "us or eu (overrides KNOX_REGION and the profile)"):argname("REGION")
    p:option("--base-url", "one base URL for every service (the simulator)"):argname("URL")
    p:option("--tenant", "act on this managed customer (MSP; overrides KNOX_TENANT)"):argname("ID")
    p:flag("--no-tenant", "send no tenant header even if KNOX_TENANT or the profile sets one")
    p:option("--ca-file", "trust the CA certificates in FILE"):argname("FILE")
    p:option("--timeout", "seconds a request may take"):argname("SECONDS")
    p:flag("--no-cache", "neither read nor write the token cache")
  end
  if o.paged then p:flag("--all", "walk every page, writing items as they arrive") end
  if o.async then
    p:flag("--wait", "wait for the asynchronous operation to finish and print its outcome")
    p:option("--wait-timeout", "seconds to wait (default 300)"):argname("SECONDS")
  end
end

--- M.split_pre(argv) -> pre, rest: options before the command word, and
-- the rest of argv (the command word first). pre.profile, pre.tokens,
-- pre.help, pre.version; or nil, message.
function M.split_pre(argv)
  local pre, i = { tokens = {} }, 1
  while argv[i] and argv[i]:sub(1, 1) == "-" and argv[i] ~= "-" do
    local a = argv[i]
    local name, value = a:match "^(%-%-[%w-]+)=(.*)$"
    name = name or a
    if name == "-h" or name == "--help" then
      pre.help = true
    elseif name == "--version" then
      pre.version = true
    elseif M.GLOBAL[name] == nil then
      return nil, "unknown option " .. a .. " before the command"
    elseif M.GLOBAL[name] then
      if value == nil then
        i = i + 1
        value = argv[i]
        if value == nil then return nil, a .. " needs a value" end
      end
      if name == "--profile" then
        pre.profile = value
      else
        pre.tokens[#pre.tokens + 1] = name
        pre.tokens[#pre.tokens + 1] = value
      end
    else
      pre.tokens[#pre.tokens + 1] = name
    end
    i = i + 1
  end
  return pre, table.move(argv, i, #argv, 1, {})
end

--- M.with_pre(argv, pre) -> argv with the options given before the command in front.
function M.with_pre(argv, pre)
  local out = {}
  for _, t in ipairs(pre and pre.tokens or {}) do out[#out + 1] = t end
  for _, t in ipairs(argv) do out[#out + 1] = t end
  return out
end

--- M.parse(parser, argv, ctx) -> result | nil, message | false. The
-- words before the command (ctx.pre) come first; -h/--help prints the
-- parser's help and gives false (the caller exits 0).
function M.parse(p, argv, ctx)
  local a, why = require("knox.args").parse(p, M.with_pre(argv, ctx.pre))
  if a and a.help then
    ctx.out:write(p:get_help(), "\n")
    return false
  end
  return a, why
end

--- M.json_errors(pre, argv) -> whether --output json/jsonl was asked for
-- (read from the raw words: a parse error must be told in JSON too).
function M.json_errors(pre, argv)
  local all = M.with_pre(argv, pre)
  for i, t in ipairs(all) do
    if t == "--" then break end
    local v = (t == "-o" or t == "--output") and all[i + 1] or t:match "^%-%-output=(.*)$"
    if v == "json" or v == "jsonl" then return true end
  end
  return false
end

local function seconds(v, name)
  if v == nil then return nil end
  local n = tonumber(v)
  if not n or n <= 0 then usage(name .. " needs a positive number of seconds", 0) end
  return n
end

--- M.flags(a, pre, profile_is_config) -> the parsed common flags.
function M.flags(a, pre, profile_is_config)
  pre = pre or {}
  if a.tenant and a.no_tenant then usage("--tenant and --no-tenant contradict each other", 0) end
  if a.output then
    local ok = false
    for _, f in ipairs(output.FORMATS) do ok = ok or f == a.output end
    if not ok then usage("--output must be one of " .. table.concat(output.FORMATS, ", ") .. " (got " .. a.output
      .. ")", 0) end
  end
  local fields
  if a.fields then
    fields = {}
    for f in a.fields:gmatch "[^,]+" do fields[#fields + 1] = f:match "^%s*(.-)%s*$" end
    if #fields == 0 then usage("--fields needs field names, comma-separated", 0) end
  end
  return {
    profile = pre.profile or (profile_is_config ~= false and a.profile or nil),
    region = a.region, base_url = a.base_url, ca_file = a.ca_file,
    tenant = a.no_tenant and false or a.tenant,
    timeout = seconds(a.timeout, "--timeout"),
    verbose = a.verbose, quiet = a.quiet, output = a.output, fields = fields,
    all = a.all, wait = a.wait, wait_timeout = seconds(a.wait_timeout, "--wait-timeout"),
    no_cache = a.no_cache,
    json_errors = a.output == "json" or a.output == "jsonl",
  }
end

--- M.format(flags, settings) -> the output format.
function M.format(flags, settings)
  local f = flags.output or (settings and settings.output)
  if f then
    for _, x in ipairs(output.FORMATS) do
      if x == f then return f end
    end
    usage(("output = %s (from the %s) is not one of %s"):format(f, settings and settings.from.output or "flags",
      table.concat(output.FORMATS, ", ")), 0)
  end
  return term.isatty(1) and "table" or "json"
end

--- M.printer(flags, settings, ctx) -> a knox.cli.output printer on ctx.out.
function M.printer(flags, settings, ctx)
  local format = M.format(flags, settings)
  -- errors as JSON only when JSON was asked for, not when it is merely the
  -- default for a pipe: a script reading text errors keeps reading text
  local asked = flags.output or (settings and settings.output)
  flags.json_errors = asked == "json" or asked == "jsonl"
  return output.new { stream = ctx.out, format = format, fields = flags.fields,
    width = format == "table" and term.width(1) or nil,
    notes = not flags.quiet and function(msg) ctx.err:write("knox: ", msg, "\n") end or nil }
end

return M
