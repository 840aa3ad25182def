--- knox.cli.commands: the service commands, made from the service
-- registry (lua/knox/services/*.lua), so every documented method is a
-- command and its help is the row's own doc and args.
--
--   knox SERVICE NOUN VERB [ARGS] [flags]      knox kme devices list --all
--
-- Method name -> NOUN VERB (M.name_of): the words of the method name,
-- with a trailing _v2 / _async kept as a verb suffix (list_profiles_v2 ->
-- profiles list-v2):
--   verb_noun...    list_devices -> devices list, approve_reseller ->
--                   resellers approve, send_command -> devices send-command
--   noun..._word    for status, logs, details: device_logs -> devices logs
--   word            lock -> devices lock (other shapes: the words joined)
--   a row that takes a device list (type "devices") is always under
--   "devices" (assign_profile -> devices assign); a paged row's verb is
--   "list" (get_devices_v2 -> devices list-v2); where a bulk X_async and a
--   one-device X both exist, the bulk one is "X" (it takes DEVICE...)
--   and the other "X-one" (kg lock_async -> devices lock, lock -> devices
--   lock-one). A few names are set in OVERRIDE.
--
-- Arguments: path placeholders are positional (knox kme profiles get ID),
-- a device list is DEVICE... plus --from FILE.csv|- and --column NAME,
-- every other argument is a flag named after it in kebab case (pageSize
-- -> --page-size; profileId also as --profile, as Knox's docs call it).
-- Types: integer/number as text, boolean as --x / --no-x, strings as a
-- repeatable comma-separated option, object/array as JSON or @FILE. The
-- values are then checked by knox.schema, as for a library call.
local args_mod = require "knox.args"
local report = require "knox.cli.report"
local output = require "knox.cli.output"
local progress = require "knox.cli.progress"
local term = require "knox.cli.term"
local input = require "knox.cli.input"
local session = require "knox.cli.session"
local common = require "knox.cli.common"

local M = {}

local VERBS = { list = true, get = true, create = true, update = true, delete = true, assign = true,
  unassign = true, approve = true, upload = true, link = true, delink = true, copy = true, overwrite = true,
  send = true }
local TRAILING = { status = true, logs = true, details = true }
local SUFFIXES = { v2 = true, async = true }
local OVERRIDE = { ["kg.authorization"] = { "auth", "check" } }

local function plural(word)
  if word:match "ias$" then return word .. "es" end
  if word:match "s$" then return word end
  return word .. "s"
end

--- M.kebab(name) -> the flag form of an argument name (pageSize -> page-size).
function M.kebab(name)
  return (name:gsub("(%l)(%u)", "%1-%2"):gsub("(%u)(%u%l)", "%1-%2"):gsub("_", "-"):lower())
end

local function devices_arg(def)
  for _, a in ipairs(def.args or {}) do
    if a[2] == "devices" then return a end
  end
  return nil
end

--- M.name_of(service, method, def) -> noun, verb (before the X_async swap).
function M.name_of(svc, method, def)
  local o = OVERRIDE[svc .. "." .. method]
  if o then return o[1], o[2] end
  local words = {}
  for w in method:gmatch "[^_]+" do words[#words + 1] = w end
  local suffix = {}
  while #words > 1 and SUFFIXES[words[#words]] do table.insert(suffix, 1, table.remove(words)) end
  local noun, verb
  if #words == 1 then
    noun, verb = "devices", words[1]
  elseif VERBS[words[1]] then
    verb = words[1]
    local rest = table.move(words, 2, #words, 1, {})
    if verb == "send" then
      verb, rest = "send-" .. table.concat(rest, "-"), {}
    end
    if #rest > 0 then
      rest[#rest] = plural(rest[#rest])
      noun = table.concat(rest, "-")
    else
      noun = "devices"
    end
  elseif TRAILING[words[#words]] then
    verb = table.remove(words)
    words[#words] = plural(words[#words])
    noun = table.concat(words, "-")
  else
    noun, verb = "devices", table.concat(words, "-")
  end
  if devices_arg(def) then noun = "devices" end
  if def.each then verb = "list" end
  for _, s in ipairs(suffix) do verb = verb .. "-" .. s end
  return noun, verb
end

local tree_cache

--- M.tree() -> { names = { svc... }, services = { [svc] = { spec =, nouns = { [noun] = { [verb] = entry } },
-- noun_names = { ... } } }, entries = { entry... } }; entry: service, method, def, noun, verb.
function M.tree()
  if tree_cache then return tree_cache end
  local reg = require("knox.services").load()
  local t = { names = {}, services = {}, entries = {} }
  for _, sname in ipairs(reg.names) do
    local spec = reg.services[sname]
    if next(spec.endpoints) ~= nil then
      local s = { spec = spec, nouns = {}, noun_names = {} }
      local methods = {}
      for m in pairs(spec.endpoints) do methods[#methods + 1] = m end
      table.sort(methods)
      local list = {}
      for _, m in ipairs(methods) do
        local def = spec.endpoints[m]
        local noun, verb = M.name_of(sname, m, def)
        list[#list + 1] = { service = sname, method = m, def = def, noun = noun, verb = verb }
      end
      -- a bulk X_async takes the plain verb; the one-device X becomes X-one
      for _, e in ipairs(list) do
        local base = e.verb:match "^(.-)%-async$"
        if base and e.def.bulk then
          for _, o in ipairs(list) do
            if o ~= e and o.noun == e.noun and o.verb == base then o.verb = base .. "-one" end
          end
          e.verb = base
        end
      end
      for _, e in ipairs(list) do
        local verbs = s.nouns[e.noun]
        if not verbs then
          verbs = {}
          s.nouns[e.noun] = verbs
          s.noun_names[#s.noun_names + 1] = e.noun
        end
        if verbs[e.verb] then
          error(("knox.cli: %s %s %s names both %s and %s"):format(sname, e.noun, e.verb, verbs[e.verb].method,
            e.method), 0)
        end
        verbs[e.verb] = e
        t.entries[#t.entries + 1] = e
      end
      table.sort(s.noun_names)
      t.services[sname] = s
      t.names[#t.names + 1] = sname
    end
  end
  tree_cache = t
  return t
end

--- M.verbs(s, noun) -> the sorted verb names of a noun.
function M.verbs(s, noun)
  local v = {}
  for k in pairs(s.nouns[noun] or {}) do v[#v + 1] = k end
  table.sort(v)
  return v
end

---------------------------------------------------------------------------
-- One command's parser

local function path_args(def)
  local list = {}
  for n in def[2]:gmatch "{([%w_]+)}" do list[#list + 1] = n end
  return list
end

local function argname(name)
  return (M.kebab(name):gsub("%-", "_"):upper())
end

local function describe(a)
  local parts = { a.doc }
  if a.required then parts[#parts + 1] = "(required)" end
  if a.enum then parts[#parts + 1] = "one of: " .. table.concat(a.enum, ", ") end
  if a.default ~= nil then parts[#parts + 1] = "(default " .. tostring(a.default) .. ")" end
  if a.min or a.max then
    parts[#parts + 1] = ("(%s..%s)"):format(a.min and tostring(a.min) or "", a.max and tostring(a.max) or "")
  end
  if a[2] == "strings" then parts[#parts + 1] = "(comma-separated; repeatable)" end
  if a[2] == "object" or a[2] == "array" then parts[#parts + 1] = "(JSON, or @FILE)" end
  return table.concat(parts, " ")
end

--- M.plan(entry) -> the command's flag plan: { positional = { names },
-- devices = arg | nil, flags = { { arg =, flag =, kind = } } }.
function M.plan(e)
  if e.plan then return e.plan end
  local def = e.def
  local plan = { positional = path_args(def), devices = devices_arg(def), flags = {} }
  local is_pos = {}
  for _, n in ipairs(plan.positional) do is_pos[n] = true end
  for _, a in ipairs(def.args) do
    if not is_pos[a[1]] and a ~= plan.devices then
      plan.flags[#plan.flags + 1] = { arg = a, flag = "--" .. M.kebab(a[1]) }
    end
  end
  e.plan = plan
  return plan
end

--- M.parser(entry) -> an argparse parser for the command.
function M.parser(e)
  local def, plan = e.def, M.plan(e)
  local prog = ("knox %s %s %s"):format(e.service, e.noun, e.verb)
  local epilog = ("Calls %s:%s (%s %s)."):format(e.service, e.method, def[1], def[2])
  local p = args_mod.parser(prog, def.doc, epilog)
  local used = {}
  local by = require("knox.schema").index(def).by
  for _, n in ipairs(plan.positional) do
    p:argument("a_" .. n, describe(by[n]) ~= "" and describe(by[n]) or n):argname(argname(n))
      :target("a_" .. n)
  end
  if plan.devices then
    p:argument("devices", plan.devices.doc or "device ids"):argname("DEVICE"):args("*"):target("a_devices")
    p:option("--from", "read devices from a CSV file (first column, or --column), - for stdin")
      :argname("FILE|-")
    p:option("--column", "the CSV column holding the device ids (its header)"):argname("NAME")
    used["--from"], used["--column"] = true, true
  end
  local profile_alias = false
  for _, f in ipairs(plan.flags) do
    local a, name = f.arg, f.flag
    local ty, target = a[2], "a_" .. a[1]
    if used[name] or common.reserved(name) then
      error(("knox.cli: %s: flag %s is taken"):format(prog, name), 0)
    end
    used[name] = true
    local names = name
    if a[1] == "profileId" then
      names = name .. " --profile"
      profile_alias = true
    end
    if ty == "boolean" then
      p:flag(names, describe(a)):target(target)
      p:flag("--no-" .. name:sub(3), "sets " .. name:sub(3) .. " to false"):target(target):action("store_false")
    elseif ty == "strings" then
      p:option(names, describe(a)):argname(argname(a[1])):count("*"):target(target)
    else
      local an = (ty == "integer" or ty == "number") and "N" or (ty == "object" or ty == "array") and "JSON"
        or argname(a[1])
      p:option(names, describe(a)):argname(an):target(target)
    end
  end
  common.add(p, { paged = def.each ~= nil, async = def.async ~= nil, profile = not profile_alias })
  return p
end

---------------------------------------------------------------------------
-- From parsed flags to method arguments

local function read_json(text, flag)
  local json = require("knox.core").json
  local usage = require("knox.errors").usage
  if text:sub(1, 1) == "@" then
    local path = text:sub(2)
    local f = path == "-" and io.stdin or io.open(path, "rb")
    if not f then usage(flag .. ": cannot read " .. path, 0) end
    text = f:read("a")
    if f ~= io.stdin then f:close() end
  end
  local ok, v = pcall(json.decode, text)
  if not ok then
    usage(flag .. " needs JSON (or @FILE): " .. tostring(type(v) == "table" and v.message or v), 0)
  end
  return v
end

--- M.method_args(entry, a) -> the argument table of the method call.
function M.method_args(e, a)
  local plan, args = M.plan(e), {}
  local usage = require("knox.errors").usage
  for _, n in ipairs(plan.positional) do args[n] = a["a_" .. n] end
  for _, f in ipairs(plan.flags) do
    local spec, v = f.arg, a["a_" .. f.arg[1]]
    local ty = spec[2]
    if v ~= nil then
      if ty == "integer" or ty == "number" then
        local n = tonumber(v)
        if ty == "integer" and n then n = math.tointeger(n) end
        args[spec[1]] = n or v
      elseif ty == "strings" then
        local list = {}
        for _, x in ipairs(v) do
          for part in x:gmatch "[^,]+" do list[#list + 1] = part:match "^%s*(.-)%s*$" end
        end
        if #list > 0 then args[spec[1]] = list end
      elseif ty == "object" or ty == "array" then
        args[spec[1]] = read_json(v, f.flag)
      else
        args[spec[1]] = v
      end
    end
  end
  if plan.devices then
    local ids = input.devices(a.a_devices, a.from, a.column)
    if #ids > 0 then args[plan.devices[1]] = ids end
  end
  -- what the schema would say in the library's words, said in flags
  for _, spec in ipairs(e.def.args) do
    if spec.required and args[spec[1]] == nil and spec.default == nil then
      local how
      if spec == plan.devices then how = "at least one DEVICE (arguments, or --from FILE|-)"
      elseif a["a_" .. spec[1]] == nil and e.def[2]:find("{" .. spec[1] .. "}", 1, true) then how = argname(spec[1])
      else how = "--" .. M.kebab(spec[1]) end
      usage(("knox %s %s %s needs %s"):format(e.service, e.noun, e.verb, how), 0)
    end
  end
  return args
end

-- The schema's message with argument names turned into flags.
local function in_flags(e, err)
  if type(err) ~= "table" or err.kind ~= "usage" or type(err.message) ~= "string" then return err end
  local msg = err.message
  for _, spec in ipairs(e.def.args) do
    msg = msg:gsub("'" .. spec[1] .. "'", "--" .. M.kebab(spec[1]))
  end
  msg = msg:gsub(e.service .. ":" .. e.method, ("knox %s %s %s"):format(e.service, e.noun, e.verb))
  err.message = msg
  return err
end

---------------------------------------------------------------------------
-- Running one command

local function items_of(e, body)
  if type(body) ~= "table" then return nil end
  return require("knox.pager").page_items(body, e.def.items)
end

-- A bulk call, in groups so that the progress line moves: each group is
-- one library call (chunked at the service's limit, sent concurrently).
local function run_bulk(e, svc, args, ctx)
  local devname = M.plan(e).devices[1]
  local ids, seen, unique, dups = args[devname], {}, {}, {}
  for _, id in ipairs(ids) do
    if seen[id] then dups[#dups + 1] = id else seen[id] = true; unique[#unique + 1] = id end
  end
  local limit = e.def.bulk.limit or 1000
  local group = limit * (svc.client.concurrency or 8)
  if e.def.bulk.per_chunk and args.transactionId ~= nil then group = #unique end
  local acc = { ok = {}, failed = {}, unknown = {}, reasons = {}, waits = {} }
  local bar = ctx.bar
  bar:update(0, #unique)
  for i = 1, #unique, group do
    local a = {}
    for k, v in pairs(args) do a[k] = v end
    a[devname] = table.move(unique, i, math.min(i + group - 1, #unique), 1, {})
    local r = svc[e.method](svc, a)
    for _, id in ipairs(r.ok) do acc.ok[#acc.ok + 1] = id end
    for _, f in ipairs(r.failed) do acc.failed[#acc.failed + 1] = f end
    for _, id in ipairs(r.unknown) do
      acc.unknown[#acc.unknown + 1] = id
      acc.reasons[id] = r.reasons[id]
    end
    if r.wait then acc.waits[#acc.waits + 1] = r end
    bar:update(math.min(i + group - 1, #unique), #unique)
  end
  bar:finish()
  -- one row per device, in the order given
  local state = {}
  for _, id in ipairs(acc.ok) do state[id] = { result = "ok" } end
  for _, f in ipairs(acc.failed) do
    local err = f.error or {}
    state[f.id] = { result = "failed", code = err.code, name = err.name, message = err.message }
  end
  for _, id in ipairs(acc.unknown) do
    local err = acc.reasons[id] or {}
    state[id] = { result = "unknown", code = err.code, name = err.name or (type(err.cause) == "table"
      and err.cause.name or nil), message = err.message }
  end
  local rows = {}
  for _, id in ipairs(unique) do
    local st = state[id] or { result = "unknown" }
    rows[#rows + 1] = { device = id, result = st.result, code = st.code, name = st.name, message = st.message }
  end
  local fields = ctx.printer.fields
  if not fields and (ctx.printer.format == "table" or ctx.printer.format == "csv") then
    ctx.printer.fields = { "device", "result", "code", "name", "message" }
  end
  local w = ctx.printer:list()
  w:add(rows)
  w:finish()
  ctx.printer.fields = fields
  if not ctx.quiet then
    ctx.err:write(("knox %s %s %s: %d ok, %d failed, %d unknown%s\n"):format(e.service, e.noun, e.verb, #acc.ok,
      #acc.failed, #acc.unknown, #dups > 0 and (", " .. #dups .. " duplicate ids sent once") or ""))
  end
  if ctx.wait then
    for _, r in ipairs(acc.waits) do
      for _, final in ipairs(r:wait { timeout = ctx.wait_timeout }) do
        ctx.err:write("knox: ", output.compact(final), "\n")
      end
    end
  end
  if #acc.failed == 0 and #acc.unknown == 0 then return 0 end
  if #acc.ok > 0 then return report.PARTIAL end
  local first = acc.failed[1] and acc.failed[1].error or acc.reasons[acc.unknown[1]]
  local st = first and report.status(first) or report.API
  return st == 0 and report.PARTIAL or st
end

-- --all: every page, each written as it arrives.
local function run_all(e, svc, args, ctx)
  local w = ctx.printer:list { before = function() ctx.bar:clear() end, after = function() ctx.bar:redraw() end }
  local buf = {}
  local function flush()
    if #buf > 0 then
      w:add(buf)
      buf = {}
    end
  end
  local iter = svc[e.def.each](svc, args, { on_page = function(n, total)
    flush()
    ctx.bar:update(n, total)
  end })
  for item in iter do buf[#buf + 1] = item end
  flush()
  ctx.bar:finish()
  w:finish()
  return 0
end

--- M.run(entry, argv, ctx) -> exit status. ctx: out, err, pre (options
-- given before the command).
function M.run(e, argv, ctx)
  local p = M.parser(e)
  local a, why = args_mod.parse(p, common.with_pre(argv, ctx.pre))
  local io_ = { err = ctx.err, json = common.json_errors(ctx.pre, argv) }
  if not a then
    return report.usage(io_, why, ("(knox %s %s %s -h for its flags)"):format(e.service, e.noun, e.verb))
  end
  if a.help then
    ctx.out:write(p:get_help(), "\n")
    return 0
  end
  return report.protect(io_, function()
    local flags = common.flags(a, ctx.pre, not M.plan_has_profile_alias(e))
    io_.json, io_.verbose = flags.json_errors, flags.verbose
    local args = M.method_args(e, a)
    local s <close> = session.open(flags, io_)
    local printer = common.printer(flags, s.settings, ctx)
    io_.json = flags.json_errors
    local bar = progress.new { stream = ctx.err, label = ("%s %s %s"):format(e.service, e.noun, e.verb),
      enabled = not flags.quiet and term.isatty(2), unit = e.def.bulk and "devices" or "items" }
    local svc = s.client[e.service]
    local run = { printer = printer, bar = bar, err = ctx.err, quiet = flags.quiet, wait = flags.wait,
      wait_timeout = flags.wait_timeout }
    local ok, res = pcall(function()
      if e.def.bulk then return run_bulk(e, svc, args, run) end
      if flags.all then
        if not e.def.each then
          require("knox.errors").usage(("knox %s %s %s is not a paged list: --all does not apply"):format(
            e.service, e.noun, e.verb), 0)
        end
        return run_all(e, svc, args, run)
      end
      local body = svc[e.method](svc, args)
      if e.def.async and flags.wait and type(body) == "table" and body.wait then
        body = body:wait { timeout = flags.wait_timeout }
      end
      local items = e.def.each and items_of(e, body)
      if items then
        printer:value(setmetatable(items, getmetatable(items) or {}))
        local total = tonumber(body.totalCount)
        if total and total > #items and not flags.quiet and term.isatty(2) then
          ctx.err:write(("knox: %d of %d shown; --all for every page\n"):format(#items, total))
        end
      else
        printer:value(body)
      end
      return 0
    end)
    bar:finish()
    if not ok then error(in_flags(e, res), 0) end
    return res
  end)
end

--- Whether the command's --profile is its Knox profile id.
function M.plan_has_profile_alias(e)
  for _, f in ipairs(M.plan(e).flags) do
    if f.arg[1] == "profileId" then return true end
  end
  return false
end

---------------------------------------------------------------------------
-- Help for a service or a noun

--- M.help(service [, noun]) -> text.
function M.help(sname, noun)
  local t = M.tree()
  local s = t.services[sname]
  local out = {}
  if noun then
    out[#out + 1] = ("usage: knox %s %s VERB [ARGS] [flags]   (knox %s %s VERB -h for its flags)\n\n")
      :format(sname, noun, sname, noun)
    local verbs = M.verbs(s, noun)
    local w = 0
    for _, v in ipairs(verbs) do w = math.max(w, #v) end
    for _, v in ipairs(verbs) do
      local doc = (s.nouns[noun][v].def.doc or ""):match "^[^.]*%.?" or ""
      out[#out + 1] = ("  %s%s  %s\n"):format(v, (" "):rep(w - #v), doc)
    end
  else
    out[#out + 1] = ("usage: knox %s NOUN VERB [ARGS] [flags]   (%s)\n\n"):format(sname, s.spec.title or sname)
    for _, n in ipairs(s.noun_names) do
      out[#out + 1] = ("  %-16s %s\n"):format(n, table.concat(M.verbs(s, n), ", "))
    end
  end
  return table.concat(out)
end

return M
