--- scripts/api-docs.lua: the API reference, generated from the service
-- registry (lua/knox/services/*.lua) and the modules themselves, so it
-- cannot drift from the code.
--
--   lua5.4 scripts/api-docs.lua [--md FILE] [--html FILE]
--
-- (run from the repository root with LUA_PATH='lua/?.lua;lua/?/init.lua;;'
-- and LUA_CPATH='build/?.so;;', as `make docs` does). Without options it
-- writes docs/API.md and docs/api/index.html; `--md -` writes the
-- Markdown to stdout.
--
-- What comes from where:
--   services, routes, hosts, schemes, methods, arguments, paging, bulk,
--   async                      knox.services.load() (the registry rows)
--   where an argument goes     knox.schema.place (the rule the client uses)
--   argument types             knox.schema.TYPES and its header comment
--   call options               knox.service.OPTS
--   client options             the OPTIONS / SESSION_OPTS lists of knox/client.lua
--   knox.Error fields          the "Fields of a knox.Error" paragraph of knox/errors.lua
--   bulk result fields         the `result.<field>` lines of knox/bulk.lua's header
--   :wait() options            the "opts:" sentence of knox/waiter.lua's header
-- A list the generator cannot find raises an error rather than printing
-- an incomplete reference. The short explanations of options and fields
-- below (DESCRIBE_*) are prose; which options and fields exist is always
-- read from the code.
--
-- `lua5.4 scripts/api-docs.lua --module` returns the module table instead
-- (the spec uses M.markdown()).
local M = {}

---------------------------------------------------------------------------
-- Reading the modules' own text

local function source_of(modname)
  local file = package.searchpath(modname, package.path)
  if not file then error("api-docs: cannot find module " .. modname .. " on package.path", 0) end
  local f = assert(io.open(file, "rb"))
  local text = f:read "a"
  f:close()
  return text, file
end

-- The leading comment block of a module, as one string (lines joined
-- with "\n", the comment markers removed).
local function header_of(modname)
  local text = source_of(modname)
  local lines = {}
  for line in (text .. "\n"):gmatch "(.-)\r?\n" do
    local body = line:match "^%-%-%-? ?(.*)$"
    if not body then break end
    lines[#lines + 1] = body
  end
  return table.concat(lines, "\n")
end

-- Splits "a (x, y), b, c { d, e }" at the commas outside (), {} and [].
local function split_top(s)
  local out, depth, start = {}, 0, 1
  for i = 1, #s do
    local c = s:sub(i, i)
    if c == "(" or c == "{" or c == "[" then depth = depth + 1
    elseif c == ")" or c == "}" or c == "]" then depth = depth - 1
    elseif c == "," and depth == 0 then
      out[#out + 1] = s:sub(start, i - 1)
      start = i + 1
    end
  end
  out[#out + 1] = s:sub(start)
  for i, v in ipairs(out) do out[i] = v:gsub("^%s+", ""):gsub("%s+$", "") end
  return out
end

-- "name (what it is)" items -> { { name, what }, ... }.
local function named_items(list, where)
  local out = {}
  for _, item in ipairs(list) do
    local name, what = item:match "^([%w_]+)%s*(%b())$"
    if name then
      what = what:sub(2, -2)
    else
      name = item:match "^([%w_]+)$"
    end
    if not name then error(("api-docs: cannot read %q in %s"):format(item, where), 0) end
    out[#out + 1] = { name, what }
  end
  return out
end

local function one_line(s)
  return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

--- The fields of a knox.Error, from the header of knox/errors.lua.
function M.error_fields()
  local h = one_line(header_of "knox.errors")
  local list = h:match "Fields of a knox%.Error:%s*(.-)%.?%s*$"
  if not list then error("api-docs: knox/errors.lua's header has no 'Fields of a knox.Error:' paragraph", 0) end
  local fields = named_items(split_top(list), "knox/errors.lua")
  -- fields the client sets on errors it raises (knox/client.lua), when it does
  local client_src = source_of "knox.client"
  local seen = {}
  for _, f in ipairs(fields) do seen[f[1]] = true end
  for _, extra in ipairs { { "attempts", "err%.attempts%s*=" }, { "retry_stopped", "err%.retry_stopped%s*=" } } do
    if not seen[extra[1]] and client_src:find(extra[2]) then
      fields[#fields + 1] = { extra[1], nil, "knox.client" }
    end
  end
  return fields
end

-- A sample Lua value for an argument (the bulk probe below).
local function sample_value(a)
  if a.enum then return a.enum[1] end
  if a.default ~= nil then return a.default end
  local ty = a[2]
  if ty == "devices" then return { "356298658077235", "356298658077243" } end
  if ty == "strings" then return { "x" } end
  if ty == "string" then return "x" end
  if ty == "integer" or ty == "number" then return a.min or 1 end
  if ty == "boolean" then return true end
  if ty == "array" then return {} end
  return { x = 1 }
end

-- The fields a bulk result really has: one bulk row (an async one if
-- any, which adds :wait) run through knox.bulk against a stand-in client
-- that answers every chunk with an empty 200.
local function probe_bulk_fields()
  local reg = require("knox.services").load()
  local pick
  for _, n in ipairs(reg.names) do
    local spec = reg.services[n]
    local names = {}
    for k in pairs(spec.endpoints) do names[#names + 1] = k end
    table.sort(names)
    for _, m in ipairs(names) do
      local def = spec.endpoints[m]
      if def.bulk and (not pick or (def.async and not pick.def.async)) then
        pick = { spec = spec, name = m, def = def }
      end
    end
  end
  if not pick then return {} end
  local args = {}
  for _, a in ipairs(pick.def.args) do if a.required then args[a[1]] = sample_value(a) end end
  if pick.def.require_one then
    for _, a in ipairs(pick.def.args) do if a[1] == pick.def.require_one[1] then args[a[1]] = sample_value(a) end end
  end
  local client = { bulk_limits = {} }
  function client.batch(_, requests)
    local out = {}
    for i in ipairs(requests) do out[i] = { status = 200, headers = {}, body = {} } end
    return out
  end
  local svc = { name = pick.spec.name, spec = pick.spec, client = client }
  local def = setmetatable({ name = pick.name }, { __index = pick.def })
  local ok, res = pcall(require("knox.bulk").run, svc, def, args, {})
  if not ok or type(res) ~= "table" then
    error("api-docs: cannot run knox.bulk on " .. pick.spec.name .. ":" .. pick.name .. ": " .. tostring(res), 0)
  end
  local keys = {}
  for k in pairs(res) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

--- The fields of a bulk result: described by the `result.<field>` lines
-- of knox/bulk.lua's header, checked against a real result's fields.
function M.bulk_fields()
  local h = header_of "knox.bulk"
  local fields, cur, described = {}, nil, {}
  for line in (h .. "\n"):gmatch "(.-)\n" do
    local ind, rest = line:match "^(%s*)(.*)$"
    local first, after = rest:match "^result%.([%w_]+)(.*)$"
    if first and #ind <= 4 and (after == "" or after:match "^[%s,]") then
      cur = { names = { first }, text = "" }
      described[first] = true
      while true do
        local n, more = after:match "^,%s*result%.([%w_]+)(.*)$"
        if not n then break end
        cur.names[#cur.names + 1] = n
        described[n] = true
        after = more
      end
      cur.text = after
      fields[#fields + 1] = cur
    elseif cur and #ind > 4 then
      cur.text = cur.text .. " " .. rest
    else
      cur = nil
    end
  end
  if #fields == 0 then error("api-docs: knox/bulk.lua's header lists no result.<field>", 0) end
  for _, f in ipairs(fields) do
    -- "{ id, ... }   Knox took them": the shape, then what it means
    local t = one_line(f.text)
    local shape, what = t:match "^(%b{})%s*(.*)$"
    f.shape, f.text = shape, what or t
  end
  for _, k in ipairs(probe_bulk_fields()) do
    if not described[k] then fields[#fields + 1] = { names = { k }, text = "" } end
  end
  return fields
end

--- The options of :wait(), from the header of knox/waiter.lua.
function M.wait_options()
  local h = one_line(header_of "knox.waiter")
  local list = h:match "opts:%s*(.-)%.%s"
  if not list then error("api-docs: knox/waiter.lua's header has no 'opts: ...' sentence", 0) end
  return named_items(split_top(list), "knox/waiter.lua")
end

--- The argument types, from knox.schema.TYPES and its header.
function M.types()
  local schema = require "knox.schema"
  local h = one_line(header_of "knox.schema")
  local list = h:match "Types:%s*(.-)%.%s"
  local what = {}
  if list then
    for _, it in ipairs(named_items(split_top(list), "knox/schema.lua")) do what[it[1]] = it[2] end
  end
  local out = {}
  for _, t in ipairs(schema.TYPES) do out[#out + 1] = { t, what[t] } end
  return out
end

-- A `local NAME = { "a", "b", ... }` list literal of a module's source.
local function list_literal(modname, name)
  local src = source_of(modname)
  local lit = src:match("\nlocal " .. name .. "%s*=%s*(%b{})")
  if not lit then error(("api-docs: no 'local %s = { ... }' in %s"):format(name, modname), 0) end
  local t = assert(load("return " .. lit, "=" .. name, "t", {}))()
  for _, v in ipairs(t) do
    if type(v) ~= "string" then error(("api-docs: %s in %s is not a list of names"):format(name, modname), 0) end
  end
  return t
end

--- The options knox.client takes: its own, then the session's.
function M.client_options()
  local own = list_literal("knox.client", "OPTIONS")
  local session = list_literal("knox.client", "SESSION_OPTS")
  return own, session
end

---------------------------------------------------------------------------
-- Prose: what each option and field means (which exist is read above)

local DESCRIBE_CLIENT = {
  region = "`\"us\"` or `\"eu\"`: the Knox hosts of every route (see each service's routes). "
    .. "Required unless `base_url` is given (or `KNOX_REGION` / `KNOX_BASE_URL` is set): knox never picks "
    .. "production silently.",
  base_url = "one URL for every route (the simulator, a proxy); wins over `region`",
  endpoints = "`{ <route> = url }`: overrides single routes' hosts (route names below, e.g. `kdp`)",
  auth = "a provider or a list of them (`knox.auth.keys`, `knox.auth.oauth2`, `knox.auth.token`); each call "
    .. "uses the first one its route accepts",
  tenant = "the MSP's managed customer id, sent as `x-wsm-managed-tenantid` on every call (a call's own "
    .. "`tenant` wins); a call with a tenant goes only over a scheme that honours it",
  env = "`false`: read no environment variables at all",
  allow_insecure_http = "`true`: allow `http://` to hosts other than the loopback (credentials then travel "
    .. "in clear); default `false`",
  max_attempts = "tries per request, retries included (default 3)",
  retry_base = "backoff base in seconds (default 0.5)",
  retry_cap = "the longest backoff in seconds (default 20)",
  retry_budget = "`false`, or `{ capacity =, retry_cost =, timeout_cost =, success_refund = }`: the "
    .. "per-client token bucket that stops retries against a failing server",
  random = "`function() -> [0, 1)` used for jitter (tests)",
  clock = "`function() -> seconds`: every time the client computes (default `knox.core.now`)",
  sleep = "`function(seconds)`: every wait (backoff, waiters)",
  concurrency = "requests in flight at once for `client:batch` and bulk methods (default 8)",
  bulk_limits = "`{ kme = 500, [\"kg.lock_async\"] = 100 }`: the chunk size per service or per method, "
    .. "over the row's bulk limit",
  max_rate = "requests per second at most, per credential (and MSP tenant): the ceiling of the adaptive "
    .. "rate governor (`knox.governor`), which is otherwise off until the first 429",
  timeout = "seconds a whole request may take (default 60)",
  connect_timeout = "seconds to connect (default 10)",
  low_speed_limit = "bytes per second below which a transfer is too slow (with `low_speed_time`)",
  low_speed_time = "seconds below `low_speed_limit` before the transfer is abandoned",
  proxy = "an HTTP(S) proxy URL",
  noproxy = "hosts not to proxy (libcurl's NOPROXY list)",
  ca_file = "a CA bundle file (also `KNOX_CA_FILE`)",
  ca_path = "a directory of CA certificates",
  verify = "`false` turns TLS verification off (tests only; default `true`)",
  user_agent = "the User-Agent (default `knox-lua/<version> libcurl/<version> Lua 5.4`)",
  http_version = "`\"1.1\"`, `\"2\"` or `\"2-prior-knowledge\"`",
  max_response_bytes = "the largest response body accepted (default 64 MiB)",
  max_batch_bytes = "the receive buffers a whole batch (or bulk call) may hold: each transfer in flight "
    .. "gets an equal share, at most max_response_bytes (default 64 MiB)",
  accept_encoding = "the Accept-Encoding sent (default gzip, and br when libcurl has it); `false`: none",
  debug = "`function(event)`: sees every transfer, redacted (no token, key or secret)",
}

local DESCRIBE_CALL = {
  headers = "extra request headers `{ name = value }`",
  timeout = "seconds this request may take (overrides the client's `timeout`)",
  idempotent = "`true`: safe to repeat, so retried like a read even after an ambiguous failure",
  tenant = "the managed customer id for this call (overrides the client's); `false`: send none",
  raw = "`true`: send the argument table untouched (no checking, no wire mapping; path placeholders are "
    .. "still filled), for fields Knox adds before knox does",
  query = "replaces the query the arguments built (advanced)",
  body = "replaces the body the arguments built (advanced)",
  params = "replaces the path placeholders the arguments filled (advanced)",
  strict = "bulk methods: raise kind `\"partial\"` (carrying `err.result`) when any device failed or is unknown",
  concurrency = "bulk methods: chunks in flight at once (default: the client's `concurrency`)",
  chunk_size = "bulk methods: devices per request (default: `bulk_limits`, else the row's limit)",
  on_page = "paged iterators: `function(n_so_far, total)` after every page (`total`: the announced "
    .. "totalCount, or nil)",
  max_pages = "paged iterators: stop after this many pages",
}

-- %s: the header's own words for the field (from knox/errors.lua)
local DESCRIBE_ERROR = {
  kind = "what went wrong: %s",
  status = "the HTTP status (nil for a transport failure)",
  code = "Knox's code: %s",
  name = "Knox's error name, such as `DEVICE_NOT_FOUND`",
  message = "one line saying what happened",
  description = "the catalog's description of the code",
  service = "the service that answered (`kme`, `kg`, ...)",
  error_id = "Knox's error id, when the body has one",
  transaction_id = "Knox's transaction id, when the body has one",
  request_id = "the request id from the response headers",
  retryable = "whether trying again may help (see Retries in README.md)",
  retry_after = "how long the server asked to wait (%s)",
  auth_action = "`\"renew\"` when a fresh token can fix it",
  method = "the HTTP method of the request",
  url = "the request URL (%s)",
  body = "the response body (%s)",
  attempts = "how many tries were made",
  retry_stopped = "why a retryable failure was not retried (`unsafe_write`, `max_attempts` or `budget`)",
  cause = "the transport failure: `curl_code`, `name`, `text`, `ambiguous` (false: provably never sent)",
}

local DESCRIBE_BULK = {
  reasons = "`{ [id] = knox.Error }`: why each unknown device is unknown",
  total = "how many distinct devices were given",
  chunks = "how many requests were sent",
  wait = "async rows only: `result:wait([opts])` waits for every chunk's operation and returns their final "
    .. "statuses, in order",
}

local DESCRIBE_TYPE = {
  string = "a Lua string",
  integer = "an integer (a float with an integral value is accepted)",
  number = "any number but NaN",
  boolean = "`true` or `false`",
}

local SCHEME_PROVIDER = { legacy = "knox.auth.keys", oauth2 = "knox.auth.oauth2" }

---------------------------------------------------------------------------
-- The document model: blocks with a little inline markup
--   `code`  **strong**  [text](#anchor)   and \x for a literal x
-- Text from the registry goes through lit() so it is never markup.

local function lit(s)
  return (tostring(s):gsub("[\\`%*%[%]]", "\\%0"))
end

local function code(s)
  s = tostring(s)
  if s:find("`", 1, true) then return lit(s) end
  return "`" .. s .. "`"
end

-- GitHub's heading anchor for a heading's text (markup removed).
local function slug(s)
  s = s:gsub("\\(.)", "%1"):gsub("[`*]", ""):lower()
  s = s:gsub("[^%w _%-]", ""):gsub(" ", "-")
  return s
end

local function link(text, target)
  return "[" .. text .. "](#" .. slug(target) .. ")"
end

-- Inline markup -> a list of tokens { kind, text [, href] }.
local function tokens(s)
  local out, buf, i = {}, {}, 1
  local function flush()
    if #buf > 0 then out[#out + 1] = { "text", table.concat(buf) }; buf = {} end
  end
  while i <= #s do
    local c = s:sub(i, i)
    if c == "\\" and i < #s then
      buf[#buf + 1] = s:sub(i + 1, i + 1); i = i + 2
    elseif c == "`" then
      local j = s:find("`", i + 1, true)
      if not j then error("api-docs: unclosed ` in " .. s, 0) end
      flush(); out[#out + 1] = { "code", s:sub(i + 1, j - 1) }; i = j + 1
    elseif s:sub(i, i + 1) == "**" then
      local j = s:find("**", i + 2, true)
      if not j then error("api-docs: unclosed ** in " .. s, 0) end
      flush(); out[#out + 1] = { "strong", s:sub(i + 2, j - 1) }; i = j + 2
    elseif c == "[" then
      local text, href, after = s:match("^%[([^%]]*)%]%(([^%)]*)%)()", i)
      if not text then error("api-docs: bad link in " .. s, 0) end
      flush(); out[#out + 1] = { "link", text, href }; i = after
    else
      buf[#buf + 1] = c; i = i + 1
    end
  end
  flush()
  return out
end

---------------------------------------------------------------------------
-- The model of the reference

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- "^/kcs/v[%d.]+/kme%f[/%-\0]" -> "/kcs/vN/kme"
local function human_prefix(p)
  local s = p:gsub("^%^", ""):gsub("%%f%b[]", ""):gsub("%[%%d%.?%]%+", "N"):gsub("%%d%+", "N")
  s = s:gsub("%%(.)", "%1")
  return s
end

-- "`legacy` (knox.auth.keys; tenant header ignored), ..." (long) or
-- "`legacy`: tenant ignored, ..." (short, for the route tables).
local function scheme_text(schemes, long)
  local names = sorted_keys(schemes)
  if #names == 0 then return "none (no credential is sent)" end
  local out = {}
  for _, s in ipairs(names) do
    local tenant = schemes[s].tenant
    if long then
      out[#out + 1] = ("%s (%s; tenant header %s)"):format(code(s), code(SCHEME_PROVIDER[s] or s),
        tenant and "honoured" or "**ignored**")
    else
      out[#out + 1] = ("%s: tenant %s"):format(code(s), tenant and "honoured" or "**ignored**")
    end
  end
  return table.concat(out, ", ")
end

local function lua_key(k)
  if k:match "^[%a_][%w_]*$" then return k end
  return ("[%q]"):format(k)
end

-- A plausible example value for an argument.
local function example_value(a)
  local name, ty = a[1], a[2]
  if a.enum then return ("%q"):format(a.enum[1]) end
  if a.default ~= nil then return type(a.default) == "string" and ("%q"):format(a.default) or tostring(a.default) end
  if ty == "devices" then return '{ "356298658077235", "356298658077243" }' end
  if ty == "strings" then return ('{ "<%s>" }'):format(name) end
  if ty == "string" then return ('"<%s>"'):format(name) end
  if ty == "integer" or ty == "number" then
    if name == "pageSize" then return tostring(math.min(100, a.max or 100)) end
    return tostring(a.min or 1)
  end
  if ty == "boolean" then return "true" end
  return "{}"
end

local function args_table_text(list)
  if #list == 0 then return "{}" end
  local one = {}
  for _, a in ipairs(list) do one[#one + 1] = lua_key(a[1]) .. " = " .. example_value(a) end
  local flat = "{ " .. table.concat(one, ", ") .. " }"
  if #flat <= 72 then return flat end
  return "{\n  " .. table.concat(one, ",\n  ") .. ",\n}"
end

local function example(svc, name, def)
  local shown = {}
  local by = {}
  for _, a in ipairs(def.args) do by[a[1]] = a end
  for _, a in ipairs(def.args) do
    if a.required then shown[#shown + 1] = a end
  end
  if def.require_one and by[def.require_one[1]] then shown[#shown + 1] = by[def.require_one[1]] end
  if def.each and not def.cursor and by.pageSize and not by.pageSize.required then shown[#shown + 1] = by.pageSize end
  local call = ("client.%s:%s %s"):format(svc, name, args_table_text(shown))
  local lines = {}
  if def.bulk then
    lines[#lines + 1] = "local result = " .. call
    lines[#lines + 1] = ("print(#result.ok, \"ok,\", #result.failed, \"failed,\", #result.unknown, \"unknown\")")
    lines[#lines + 1] = "for _, f in ipairs(result.failed) do print(f.id, f.error.name, f.error.message) end"
    if def.async then
      lines[#lines + 1] = "local finals = result:wait { timeout = 600 }   -- one final status per chunk"
    end
  elseif def.async then
    lines[#lines + 1] = "local answer = " .. call
    lines[#lines + 1] = "local final, state = answer:wait { timeout = 300 }"
  elseif def.each then
    local items = {}
    for _, a in ipairs(shown) do if a[1] ~= "pageSize" then items[#items + 1] = a end end
    if not def.cursor and by.pageSize then items[#items + 1] = by.pageSize end
    lines[#lines + 1] = "local page = " .. call
    lines[#lines + 1] = ("for item in client.%s:%s %s do"):format(svc, def.each, args_table_text(items))
    lines[#lines + 1] = "  print(item)"
    lines[#lines + 1] = "end"
  else
    lines[#lines + 1] = "local body, res = " .. call
  end
  return table.concat(lines, "\n")
end

local function range_text(a)
  local parts = {}
  if a.enum then
    local e = {}
    for _, v in ipairs(a.enum) do e[#e + 1] = code(v) end
    parts[#parts + 1] = "one of " .. table.concat(e, ", ")
  end
  if a.min and a.max then parts[#parts + 1] = ("%s to %s"):format(a.min, a.max)
  elseif a.min then parts[#parts + 1] = (">= %s"):format(a.min)
  elseif a.max then parts[#parts + 1] = ("<= %s"):format(a.max) end
  if a.default ~= nil then parts[#parts + 1] = "default " .. code(tostring(a.default)) end
  return table.concat(parts, "; ")
end

local function wire_text(def, a)
  local schema = require "knox.schema"
  local where = schema.place(def, a, a[1])
  if where == "none" then return "read by the row's finish" end
  if where == "path" then return "path " .. code("{" .. a[1] .. "}") end
  return where .. " " .. code(a.wire or a[1])
end

local function signature(svc, name, def)
  local req, opt = {}, {}
  for _, a in ipairs(def.args) do
    if a.required then req[#req + 1] = a[1] else opt[#opt + 1] = a[1] end
  end
  local inner = table.concat(req, ", ")
  if #opt > 0 then inner = inner .. (#req > 0 and " [, " or "[") .. table.concat(opt, ", ") .. "]" end
  if inner == "" then return ("client.%s:%s{} [, opts]"):format(svc, name) end
  return ("client.%s:%s{ %s } [, opts]"):format(svc, name, inner)
end

-- Blocks for one method.
local function method_blocks(svc, spec, name, def, B)
  local services = require "knox.services"
  B.h(3, code(svc .. ":" .. name))
  B.p(code(signature(svc, name, def)))
  local facts = { "**" .. def[1] .. "** " .. code(def[2]) }
  local owner, route = services.classify(def[2])
  if owner ~= svc or not route then
    facts[#facts + 1] = "route: **no route of this service claims this path**"
  else
    facts[#facts + 1] = "route " .. code(route.name) .. " (" .. link("routes", spec.title) .. ")"
  end
  if def[1] == "GET" or def[1] == "HEAD" or def.idempotent then
    facts[#facts + 1] = def[1] == "GET" and "retried as a read" or "idempotent: retried as a read"
  else
    facts[#facts + 1] = "a write: retried only when it provably never reached Knox"
  end
  B.p(table.concat(facts, " · "))
  if def.doc then B.p(lit(def.doc)) else B.p("*(no doc line in the registry row)*") end
  if route and owner == svc then
    B.p("**Auth:** " .. scheme_text(route.schemes, true) .. ".")
  end
  if #def.args == 0 then
    B.p("No arguments.")
  else
    local rows = {}
    for _, a in ipairs(def.args) do
      rows[#rows + 1] = { code(a[1]), a[2], a.required and "yes" or "", range_text(a), wire_text(def, a),
        a.doc and lit(a.doc) or "" }
    end
    B.table({ "argument", "type", "required", "values", "sent as", "doc" }, rows)
  end
  if def.require_one then
    local n = {}
    for _, x in ipairs(def.require_one) do n[#n + 1] = code(x) end
    B.p("**At least one of** " .. table.concat(n, ", ") .. ".")
  end
  if def.finish then
    B.p("The row's finish step adjusts the request after the mapping above (see the doc line).")
  end
  if def.each then
    local text = ("**Paging:** %s walks every item of %s, one page in memory at a time"):format(
      code(("client.%s:%s{...}"):format(svc, def.each)), def.items and code(def.items) or "the first list")
    if def.cursor then
      text = text .. (", with the cursor %s (sent as %s from the previous page's %s)"):format(
        code(def.cursor.arg), code(def.cursor.arg), code(def.cursor.next))
    else
      text = text .. " (pageNum/pageSize; stops at totalCount or the first short page)"
    end
    B.p(text .. "; call options " .. code "on_page" .. " and " .. code "max_pages" .. ".")
  end
  if def.bulk then
    local arg = def.bulk.arg or "devices"
    local text = ("**Bulk:** any number of %s, split into chunks of %s (client option %s as %s or %s; call "
      .. "option %s), sent concurrently; returns a %s in which every device appears exactly once. ")
      :format(code(arg), def.bulk.limit and ("**" .. def.bulk.limit .. "**") or "1000 (knox's default)",
        code "bulk_limits", code(svc), code(svc .. "." .. name), code "chunk_size",
        link("bulk result", "Bulk results"))
    if def.bulk.partial then
      text = text .. "**Partial success:** Knox applies the devices it does not reject, so when it refuses "
        .. "some by name the others are `ok`."
    else
      text = text .. "**All or nothing per request:** when Knox refuses a request naming some devices, "
        .. "those are `failed` and the rest are sent again without them (at most twice)."
    end
    if def.bulk.per_chunk then
      text = text .. " Each chunk is prepared by the row before it is sent (see the argument docs)."
    end
    B.p(text)
  end
  if def.async then
    local a = def.async
    local st = spec.endpoints[a.status] and link(code(svc .. ":" .. a.status), svc .. ":" .. a.status)
      or code(tostring(a.status))
    local text = ("**Async:** the answer has %s, which polls %s by %s"):format(
      link(code ":wait()", "Waiters"), st, code(a.id))
    if a.pass and #a.pass > 0 then
      local p = {}
      for _, x in ipairs(a.pass) do p[#p + 1] = code(x) end
      text = text .. " (passing " .. table.concat(p, ", ") .. ")"
    end
    if a.find then text = text .. ", reading " .. code(a.find) end
    text = text .. " until a terminal state"
    if def.bulk then text = text .. "; on a bulk result, `result:wait()` waits for every chunk's operation" end
    B.p(text .. ".")
  end
  B.code(example(svc, name, def))
end

local function service_blocks(reg, svc, B)
  local hosts = require "knox.services.hosts"
  local spec = reg.services[svc]
  B.h(2, lit(spec.title))
  local names = sorted_keys(spec.endpoints)
  local intro = #names > 0 and ("%s · %d methods"):format(code("client." .. svc), #names)
    or ("%s · no methods: reach it with %s"):format(code(svc), code "client:request")
  if spec.token then intro = intro .. " · token endpoints (a 401 there is a credential problem)" end
  B.p(intro)
  if #spec.routes == 0 then
    B.p("No routes of its own: its codes come back from other services' token endpoints.")
  else
    local head = { "route", "paths" }
    for _, r in ipairs(hosts.regions) do head[#head + 1] = r end
    head[#head + 1] = "schemes"
    local rows = {}
    for _, r in ipairs(spec.routes) do
      local p = {}
      for _, x in ipairs(r.prefixes) do p[#p + 1] = code(human_prefix(x)) end
      local row = { code(r.name), table.concat(p, ", ") }
      for _, region in ipairs(hosts.regions) do row[#row + 1] = r.hosts[region] and code(r.hosts[region]) or "" end
      row[#row + 1] = scheme_text(r.schemes, false)
      rows[#rows + 1] = row
    end
    B.table(head, rows)
  end
  if spec.bulk.lists or spec.bulk.ids then
    local parts = {}
    if spec.bulk.lists then
      local l = {}
      for _, k in ipairs(sorted_keys(spec.bulk.lists)) do l[#l + 1] = code(k) end
      parts[#parts + 1] = "per-item outcomes in " .. table.concat(l, ", ")
    end
    if spec.bulk.ids then
      local l = {}
      for _, k in ipairs(spec.bulk.ids) do l[#l + 1] = code(k) end
      parts[#parts + 1] = "an item named by " .. table.concat(l, ", ")
    end
    B.p("Bulk answers: " .. table.concat(parts, "; ") .. ".")
  end
  if #names > 0 then
    local l = {}
    for _, n in ipairs(names) do
      local def = spec.endpoints[n]
      local tags = {}
      if def.each then tags[#tags + 1] = "paged" end
      if def.bulk then tags[#tags + 1] = "bulk" end
      if def.async then tags[#tags + 1] = "async" end
      l[#l + 1] = link(code(svc .. ":" .. n), svc .. ":" .. n) .. " — " .. lit(def[1]) .. " "
        .. code(def[2]) .. (#tags > 0 and (" (" .. table.concat(tags, ", ") .. ")") or "")
    end
    B.list(l)
    for _, n in ipairs(names) do method_blocks(svc, spec, n, spec.endpoints[n], B) end
  end
end

--- M.build() -> the reference as a list of blocks.
function M.build()
  local services = require "knox.services"
  local service = require "knox.service"
  local reg = services.load()
  local blocks = {}
  local B = {}
  function B.h(level, text) blocks[#blocks + 1] = { "h", level, text } end
  function B.p(text) blocks[#blocks + 1] = { "p", text } end
  function B.code(text) blocks[#blocks + 1] = { "code", text } end
  function B.list(items) blocks[#blocks + 1] = { "list", items } end
  function B.table(head, rows) blocks[#blocks + 1] = { "table", head, rows } end

  local with_methods, without = {}, {}
  for _, n in ipairs(reg.names) do
    if next(reg.services[n].endpoints) then with_methods[#with_methods + 1] = n else without[#without + 1] = n end
  end

  B.h(1, "knox API reference")
  B.p("Generated by " .. code "scripts/api-docs.lua" .. " from the service registry (" .. code
    "lua/knox/services/*.lua" .. ") and the modules: do not edit by hand, run " .. code "make docs" .. ". "
    .. "The same rows the client checks arguments against and builds requests from are what this page is made "
    .. "of, so it says what the code does. " .. code "make docs" .. " also writes this page as HTML ("
    .. code "docs/api/index.html" .. ") and the LDoc reference of the hand-written modules ("
    .. code "docs/api/ldoc/index.html" .. ").")
  local contents = { link("Calling a method", "Calling a method"), link("Argument types", "Argument types"),
    link("Call options", "Call options"), link("Client options", "Client options"), link("knox.try", "knox.try"),
    link("knox.Error fields", "knox.Error fields"), link("Bulk results", "Bulk results"),
    link("Waiters", "Waiters") }
  for _, n in ipairs(with_methods) do
    contents[#contents + 1] = link(lit(reg.services[n].title), reg.services[n].title) .. " (" .. code("client." .. n)
      .. ", " .. #sorted_keys(reg.services[n].endpoints) .. " methods)"
  end
  for _, n in ipairs(without) do
    contents[#contents + 1] = link(lit(reg.services[n].title), reg.services[n].title) .. " (no methods)"
  end
  B.list(contents)

  B.h(2, "Calling a method")
  B.p("Every service with methods is a field of the client: " .. code "client.kme" .. ", " .. code "client.kg"
    .. ", ... A method takes one table of arguments and an optional table of " .. link("call options",
      "Call options") .. ":")
  B.code('local body, res = client.kme:get_profile({ profileId = "abc" }, { timeout = 10 })')
  B.p("It returns the decoded answer and the response (" .. code "status" .. ", " .. code "headers" .. ", ...), "
    .. "or raises a " .. link("knox.Error", "knox.Error fields") .. ". Bulk methods return a "
    .. link("bulk result", "Bulk results") .. "; async methods' answers have " .. link(code ":wait()", "Waiters")
    .. "; paged methods have an " .. code "each_<noun>" .. " iterator beside them.")
  B.p("The arguments are checked against the method's row before anything is sent: a missing, mistyped, "
    .. "out-of-range or unknown argument raises kind " .. code '"usage"' .. " naming it, with the nearest known "
    .. "name for a misspelling. Then each goes where the table's **sent as** column says: a " .. code "{name}"
    .. " in the path, the query for GET and DELETE, the JSON body otherwise, unless the row says another place; "
    .. "a wire field such as " .. code "devices.imeiOrSerials" .. " is a nested object and " .. code
    "deviceList[].deviceUid" .. " a list of objects, one per device. Methods acting on devices take "
    .. code "devices" .. " (IMEIs, serial numbers or Knox ids) whatever Knox calls the field.")
  B.p("**Auth** lists the credential schemes a method's route accepts: " .. code "legacy" .. " is "
    .. code "knox.auth.keys" .. " (the " .. code "x-knox-apitoken" .. " header), " .. code "oauth2" .. " is "
    .. code "knox.auth.oauth2" .. " (a Bearer token). A call that carries a tenant (client "
    .. "option or call option " .. code "tenant" .. ") goes only over a scheme that honours the tenant header; "
    .. "when the client holds no such credential the call raises kind " .. code '"usage"' .. " instead of "
    .. "acting on the MSP's own tenant.")

  B.h(2, "Argument types")
  local trows = {}
  for _, t in ipairs(M.types()) do
    trows[#trows + 1] = { code(t[1]), t[2] and lit(t[2]) or DESCRIBE_TYPE[t[1]] or "" }
  end
  B.table({ "type", "accepts" }, trows)

  B.h(2, "Call options")
  B.p("The second table of every method (" .. code "knox.service.OPTS" .. "); an unknown one raises kind "
    .. code '"usage"' .. ".")
  local orows = {}
  for _, o in ipairs(service.OPTS) do orows[#orows + 1] = { code(o), DESCRIBE_CALL[o] or "" } end
  B.table({ "option", "meaning" }, orows)

  B.h(2, "Client options")
  B.p(code "knox.client{ ... }" .. " takes these and no others (a misspelt one raises kind " .. code '"usage"'
    .. " with the nearest name). Explicit options win and the environment fills the rest (" .. code "KNOX_REGION"
    .. ", " .. code "KNOX_BASE_URL" .. ", " .. code "KNOX_TENANT" .. ", " .. code "KNOX_CA_FILE" .. ", and "
    .. "the credentials only when no " .. code "auth" .. " is given); " .. code "knox.client()" .. " with no "
    .. "table takes everything from the environment.")
  local own, session = M.client_options()
  local crows = {}
  for _, o in ipairs(own) do crows[#crows + 1] = { code(o), "client", DESCRIBE_CLIENT[o] or "" } end
  for _, o in ipairs(session) do crows[#crows + 1] = { code(o), "transport", DESCRIBE_CLIENT[o] or "" } end
  B.table({ "option", "part", "meaning" }, crows)
  local route_names = sorted_keys(reg.routes)
  for i, r in ipairs(route_names) do route_names[i] = code(r) end
  B.p("Route names for " .. code "endpoints" .. ": " .. table.concat(route_names, ", ") .. ", and "
    .. code "kcs" .. " / " .. code "api" .. " for paths no service claims.")

  B.h(2, "knox.try")
  B.p(code "knox.try(fn, ...)" .. " calls " .. code "fn(...)" .. " and catches only a knox.Error: it returns "
    .. code "true, <fn's results...>" .. " or " .. code "false, err" .. ". Any other error (a bug such as a bad "
    .. "argument) is raised again unchanged. The first result is always a boolean, whatever " .. code "fn"
    .. " returns (nothing included).")
  B.code('local ok, err = knox.try(client.kg.lock, client.kg, { deviceUid = "356298658077235" })\n'
    .. 'if not ok and err:is "DEVICE_NOT_FOUND" then print(err) end')

  B.h(2, "knox.Error fields")
  B.p("Every failure is raised as a knox.Error (" .. code "knox.is_error(e)" .. "); " .. code "tostring(err)"
    .. " is one line and " .. code "err:is(x)" .. " matches the name, code, kind or transport cause. Fields "
    .. "(from " .. code "lua/knox/errors.lua" .. "):")
  local erows = {}
  for _, f in ipairs(M.error_fields()) do
    local what, says = DESCRIBE_ERROR[f[1]], f[2] and lit(f[2])
    local text
    if what and what:find("%s", 1, true) then text = what:gsub("%%s", function() return says or "" end)
    else text = what or says or "" end
    if f[3] then text = text .. " (set by " .. code(f[3]) .. ")" end
    erows[#erows + 1] = { code(f[1]), text }
  end
  B.table({ "field", "meaning" }, erows)

  B.h(2, "Bulk results")
  B.p("A method marked **bulk** takes any number of devices, splits them at the service's limit, sends the "
    .. "chunks concurrently and merges the outcomes into one table in which every input device appears exactly "
    .. "once. A device whose outcome is not known (a transport failure after sending, a 5xx) is never re-sent "
    .. "silently. Fields (from " .. code "lua/knox/bulk.lua" .. "):")
  local brows = {}
  for _, f in ipairs(M.bulk_fields()) do
    if f.text == "" then
      -- no words in the header: one row per field, with ours
      for _, x in ipairs(f.names) do
        brows[#brows + 1] = { code("result." .. x), f.shape and code(f.shape) or "", DESCRIBE_BULK[x] or "" }
      end
    else
      local n = {}
      for _, x in ipairs(f.names) do n[#n + 1] = code("result." .. x) end
      brows[#brows + 1] = { table.concat(n, ", "), f.shape and code(f.shape) or "", lit(f.text) }
    end
  end
  B.table({ "field", "shape", "meaning" }, brows)
  B.p("With the call option " .. code "strict = true" .. " a result with failed or unknown devices raises kind "
    .. code '"partial"' .. " carrying it as " .. code "err.result" .. ".")

  B.h(2, "Waiters")
  B.p("The answer of a method marked **async** has " .. code "answer:wait([opts])" .. ": it polls the method's "
    .. "status call with backoff until the operation is in a terminal state and returns that status entry and "
    .. "its state. Time is the client's " .. code "clock" .. " and every wait its " .. code "sleep" .. ". Past the "
    .. "timeout it raises kind " .. code '"timeout"' .. " with the last state seen. Options (from "
    .. code "lua/knox/waiter.lua" .. "):")
  local wrows = {}
  for _, o in ipairs(M.wait_options()) do wrows[#wrows + 1] = { code(o[1]), o[2] and lit(o[2]) or "" } end
  B.table({ "option", "meaning" }, wrows)

  for _, n in ipairs(with_methods) do service_blocks(reg, n, B) end
  for _, n in ipairs(without) do service_blocks(reg, n, B) end
  return blocks
end

---------------------------------------------------------------------------
-- Markdown

local function md_inline(s, in_table)
  local out = {}
  for _, t in ipairs(tokens(s)) do
    local kind, text = t[1], t[2]
    if kind == "code" then
      if in_table then text = text:gsub("|", "\\|") end
      out[#out + 1] = "`" .. text .. "`"
    elseif kind == "strong" then
      out[#out + 1] = "**" .. md_inline(text, in_table) .. "**"
    elseif kind == "link" then
      out[#out + 1] = "[" .. md_inline(text, in_table) .. "](" .. t[3] .. ")"
    else
      -- only what a Markdown reader would take for markup: a backslash or
      -- backtick, emphasis, a link's "](", an HTML tag's "<x"
      text = text:gsub("\\(%p)", "\\\\%1"):gsub("[`%*]", "\\%0"):gsub("%]%(", "\\](")
        :gsub("<([%a/!?])", "\\<%1")
      if in_table then text = text:gsub("|", "\\|") end
      out[#out + 1] = text
    end
  end
  return table.concat(out)
end

--- M.markdown([blocks]) -> the reference as Markdown text.
function M.markdown(blocks)
  blocks = blocks or M.build()
  local out = {}
  for _, b in ipairs(blocks) do
    local kind = b[1]
    if kind == "h" then
      out[#out + 1] = ("#"):rep(b[2]) .. " " .. md_inline(b[3])
    elseif kind == "p" then
      out[#out + 1] = md_inline(b[2])
    elseif kind == "code" then
      out[#out + 1] = "```lua\n" .. b[2] .. "\n```"
    elseif kind == "list" then
      local l = {}
      for _, item in ipairs(b[2]) do l[#l + 1] = "- " .. md_inline(item) end
      out[#out + 1] = table.concat(l, "\n")
    elseif kind == "table" then
      local l = {}
      local head = {}
      for i, h in ipairs(b[2]) do head[i] = md_inline(h, true) end
      l[1] = "| " .. table.concat(head, " | ") .. " |"
      l[2] = "|" .. ("---|"):rep(#b[2])
      for _, row in ipairs(b[3]) do
        local cells = {}
        for i = 1, #b[2] do cells[i] = md_inline(row[i] or "", true) end
        l[#l + 1] = "| " .. table.concat(cells, " | ") .. " |"
      end
      out[#out + 1] = table.concat(l, "\n")
    end
  end
  return table.concat(out, "\n\n") .. "\n"
end

---------------------------------------------------------------------------
-- HTML

local function esc(s)
  return (s:gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

local function html_inline(s)
  local out = {}
  for _, t in ipairs(tokens(s)) do
    local kind, text = t[1], t[2]
    if kind == "code" then out[#out + 1] = "<code>" .. esc(text) .. "</code>"
    elseif kind == "strong" then out[#out + 1] = "<strong>" .. html_inline(text) .. "</strong>"
    elseif kind == "link" then out[#out + 1] = '<a href="' .. esc(t[3]) .. '">' .. html_inline(text) .. "</a>"
    else out[#out + 1] = esc(text) end
  end
  return table.concat(out)
end

local CSS = [[
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg2: #f6f8fa; --accent: #0550ae; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); }
nav { position: fixed; top: 0; bottom: 0; left: 0; width: 250px; overflow-y: auto; padding: 16px 12px;
  background: var(--bg2); border-right: 1px solid var(--line); font-size: 13px; }
nav a { display: block; padding: 1px 6px; color: var(--fg); text-decoration: none; border-radius: 4px;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
nav a:hover { background: #e7ecf0; }
nav .svc { font-weight: 600; margin-top: 10px; }
nav .m { padding-left: 16px; font-family: ui-monospace, monospace; font-size: 12px; color: var(--muted); }
main { margin-left: 250px; padding: 8px 40px 80px; max-width: 1100px; }
h1 { font-size: 28px; border-bottom: 1px solid var(--line); padding-bottom: 8px; }
h2 { font-size: 22px; margin-top: 48px; border-bottom: 1px solid var(--line); padding-bottom: 6px; }
h3 { font-size: 17px; margin: 36px 0 6px; padding-top: 10px; border-top: 1px dashed var(--line); }
h3 code { font-size: 17px; background: none; padding: 0; color: var(--accent); }
p { margin: 8px 0; }
a { color: var(--accent); }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--bg2); padding: 0 2px;
  border-radius: 3px; }
pre { background: var(--bg2); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px;
  overflow-x: auto; }
pre code { background: none; padding: 0; }
table { border-collapse: collapse; margin: 10px 0; font-size: 13.5px; width: 100%; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg2); font-weight: 600; }
td code { white-space: nowrap; }
td:last-child code { white-space: normal; }
ul { padding-left: 22px; }
]]

--- M.html([blocks]) -> the reference as one HTML page.
function M.html(blocks)
  blocks = blocks or M.build()
  local body, nav = {}, {}
  for _, b in ipairs(blocks) do
    local kind = b[1]
    if kind == "h" then
      local id = slug(b[3])
      body[#body + 1] = ('<h%d id="%s">%s</h%d>'):format(b[2], esc(id), html_inline(b[3]), b[2])
      if b[2] == 2 then
        nav[#nav + 1] = ('<a class="svc" href="#%s">%s</a>'):format(esc(id), html_inline(b[3]))
      elseif b[2] == 3 then
        nav[#nav + 1] = ('<a class="m" href="#%s">%s</a>'):format(esc(id), esc((b[3]:gsub("[`\\]", ""))))
      end
    elseif kind == "p" then
      body[#body + 1] = "<p>" .. html_inline(b[2]) .. "</p>"
    elseif kind == "code" then
      body[#body + 1] = '<pre><code class="language-lua">' .. esc(b[2]) .. "</code></pre>"
    elseif kind == "list" then
      local l = { "<ul>" }
      for _, item in ipairs(b[2]) do l[#l + 1] = "<li>" .. html_inline(item) .. "</li>" end
      l[#l + 1] = "</ul>"
      body[#body + 1] = table.concat(l, "\n")
    elseif kind == "table" then
      local l = { "<table>", "<tr>" }
      for _, h in ipairs(b[2]) do l[#l + 1] = "<th>" .. html_inline(h) .. "</th>" end
      l[#l + 1] = "</tr>"
      for _, row in ipairs(b[3]) do
        local cells = {}
        for i = 1, #b[2] do cells[i] = "<td>" .. html_inline(row[i] or "") .. "</td>" end
        l[#l + 1] = "<tr>" .. table.concat(cells) .. "</tr>"
      end
      l[#l + 1] = "</table>"
      body[#body + 1] = table.concat(l, "\n")
    end
  end
  return table.concat({
    "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>knox API reference</title>", "<style>", CSS, "</style>", "</head>", "<body>",
    '<nav><a class="svc" href="#knox-api-reference">knox API reference</a>'
      .. '<a class="svc" href="ldoc/index.html">Modules (LDoc)</a>\n' .. table.concat(nav, "\n") .. "</nav>",
    "<main>", table.concat(body, "\n"), "</main>", "</body>", "</html>", "",
  }, "\n")
end

---------------------------------------------------------------------------
-- The command

local function write(path, text)
  if path == "-" then io.stdout:write(text); return end
  local dir = path:match "^(.*)/[^/]*$"
  if dir and dir ~= "" then os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'") end
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function main(argv)
  local md, html = nil, nil
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--md" then md = argv[i + 1]; i = i + 2
    elseif a == "--html" then html = argv[i + 1]; i = i + 2
    else
      io.stderr:write("usage: lua5.4 scripts/api-docs.lua [--md FILE|-] [--html FILE]\n")
      return 2
    end
  end
  if not md and not html then md, html = "docs/API.md", "docs/api/index.html" end
  local blocks = M.build()
  if md then write(md, M.markdown(blocks)) end
  if html then write(html, M.html(blocks)) end
  return 0
end

local argv = { ... }
if argv[1] == "--module" then return M end
os.exit(main(argv))
