--- knox.errors: the knox.Error class shared with the C core, and every
-- decision about what a failed response means. One file answers "why was
-- this retried", "why was the token renewed" and "why this message".
--
--   facts (C: knox.core.errors.scan turns any body into code, name,
--          message candidates, ids, result FAIL, WWW-Authenticate)
--   + the response's status and headers (knox.headers)
--   + the service's rules (lua/knox/services/<name>.lua: catalog_fallback,
--     token, errors.auth/renew/retry/no_retry, bulk)
--   -> classify(): kind, name, catalog entry, message, retryable,
--      auth_action
--
-- The rules, where the docs are silent:
-- - The catalog (knox.core.catalog, C data) is searched per service: the
--   service's own table, then its catalog_fallback (Knox Cloud
--   Authentication fronts every kcs service), then, for string codes,
--   Samsung Account (AUT_/LIC_) or OAuth 2.0. An unknown or absent service
--   searches every table, and a name is taken only when all agree.
-- - The name in the body wins over the catalog's; the catalog entry is the
--   one of the code with that name, else the name's own entry.
-- - kind "auth": a 401, or a code the service's rules call auth.
-- - auth_action "renew": a code the rules call renew, WWW-Authenticate
--   Bearer error="invalid_token", a plain 401 from anything but a token
--   endpoint (a stale token is the common cause and one renewal is cheap;
--   the client renews at most once per request), or an auth failure whose
--   message says "expired" (KBA-1242: AUTHENTICATION_FAIL "... access token
--   has expired").
-- - retryable: never for a no_retry code; always for 429, 500, 502, 503,
--   504; never for other 4xx; else for a retry code or a code whose class
--   (first three digits) is one of those statuses (a bulk item, or a 2xx
--   {"result":"FAIL"}).
-- - message: the body's most specific text that says more than the name
--   or code; else the catalog description; else the HTTP reason phrase.
-- - request_id: x-request-id, x-amzn-requestid, x-amz-request-id,
--   x-correlation-id or x-knox-transactionid (knox.headers).
-- - body: the raw body cut to 4 KiB on a UTF-8 boundary, secrets redacted
--   (knox.text); message and method get the same redaction; every text
--   field is one line of valid UTF-8.
--
-- Fields of a knox.Error: kind ("api", "auth", "transport", "decode",
-- "usage", "key", "partial", "timeout", "closed"), status, code (integer
-- such as 4040300 or string such as "AUT_1001" / "invalid_grant"), name,
-- message, description (the catalog's), service, error_id, transaction_id,
-- request_id, retryable, retry_after (seconds), auth_action ("renew"),
-- items (a rejected bulk call's per-item entries { id =, error = }, when
-- its body names them), attempts (tries the client made), retry_stopped
-- (why a retryable failure was not retried: unsafe_write, max_attempts,
-- budget),
-- method, url (no userinfo, secret query values redacted), body (raw,
-- at most 4 KiB, secrets redacted), cause (transport).
local core = require "knox.core"
local services = require "knox.services"
local headers = require "knox.headers"
local text = require "knox.text"

local catalog, scan = core.catalog, core.errors.scan
local make = core.error

local M = {
  Error = core.Error,
  is_error = core.is_error,
}

local BODY_KEEP = 4096
local TEXT_MAX = 480

--- The service names lookup() and catalog() know.
M.services = { "kme", "kg", "msp", "kdp", "kc", "kai", "auth", "samsung_account", "oauth2" }

--- Builds a knox.Error from a table of fields (kind is required). The
-- fields are copied into a new table: a table with a metatable of its own
-- (a provider, another object) keeps it and is not turned into an error.
function M.new(fields)
  if type(fields) ~= "table" then
    error("bad argument #1 to 'new' (table expected, got " .. type(fields) .. ")", 2)
  end
  if type(fields.kind) ~= "string" then error("bad argument #1 to 'new' (field 'kind' must be a string)", 2) end
  local t = {}
  for k, v in pairs(fields) do t[k] = v end
  return make(t)
end

--- usage(msg [, level]): raises a knox.Error of kind "usage": input the
-- caller can fix (programmer misuse keeps lauxlib's "bad argument").
function M.usage(msg, level)
  error(make { kind = "usage", message = msg }, (level or 1) + 1)
end

---------------------------------------------------------------------------
-- The catalog, per service

local function is_sa_code(s)
  return type(s) == "string" and (s:match "^AUT_%d%d%d%d$" or s:match "^LIC_%d%d%d%d$") ~= nil
end

-- The codes a service file documents itself ({ code, name, status,
-- description } each): a service added as a file needs no C change.
local function own_codes(svc, code, name)
  local out = {}
  for _, c in ipairs(svc.codes or {}) do
    if (code == nil or tostring(c[1]) == tostring(code)) and (name == nil or c[2] == name) then
      out[#out + 1] = { service = svc.name, code = math.tointeger(tonumber(c[1])) or c[1], name = c[2],
        status = c[3], description = c[4] }
    end
  end
  return out
end

-- The entries of service `name` (nil: every service) for code.
local function find(name, code)
  local list = catalog.find(name, code)
  local reg = services.load()
  for _, n in ipairs(name and { name } or reg.names) do
    local spec = reg.services[n]
    if spec and spec.codes then
      for _, c in ipairs(own_codes(spec, code)) do list[#list + 1] = c end
    end
  end
  return list
end

-- The entries a code may stand for in service spec svc (nil: any).
local function candidates(svc, code)
  if code == nil then return {} end
  if svc == nil then return find(nil, code) end
  local list = find(svc.name, code)
  if #list == 0 and svc.catalog_fallback then list = find(svc.catalog_fallback, code) end
  if #list == 0 and type(code) == "string" then
    list = find(is_sa_code(code) and "samsung_account" or "oauth2", code)
  end
  return list
end

local function by_name(svc, name)
  if svc == nil then return nil end
  return catalog.by_name(svc.name, name) or own_codes(svc, nil, name)[1]
    or (svc.catalog_fallback and catalog.by_name(svc.catalog_fallback, name))
end

local NO_RULES = {}

-- The rule flags { auth=, renew=, retry=, no_retry= } of a code in a
-- service (a catalog entry: its own service and code).
local function flags_of(entry)
  local spec = services.get(entry.service)
  local rules = spec and spec.errors or NO_RULES
  local key = tostring(entry.code)
  return {
    auth = (rules.auth or NO_RULES)[key] == true, renew = (rules.renew or NO_RULES)[key] == true,
    retry = (rules.retry or NO_RULES)[key] == true, no_retry = (rules.no_retry or NO_RULES)[key] == true,
  }
end

local function lookup_entry(entry)
  entry.kind = flags_of(entry).auth and "auth" or "api"
  return entry
end

---------------------------------------------------------------------------
-- Classification

local RETRY_STATUS = { [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }

local REASONS = {
  [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content", [206] = "Partial Content",
  [301] = "Moved Permanently", [302] = "Found", [303] = "See Other", [304] = "Not Modified",
  [307] = "Temporary Redirect", [308] = "Permanent Redirect", [400] = "Bad Request",
  [401] = "Unauthorized", [402] = "Payment Required", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [406] = "Not Acceptable", [407] = "Proxy Authentication Required",
  [408] = "Request Timeout", [409] = "Conflict", [410] = "Gone", [411] = "Length Required",
  [412] = "Precondition Failed", [413] = "Content Too Large", [414] = "URI Too Long",
  [415] = "Unsupported Media Type", [416] = "Range Not Satisfiable", [417] = "Expectation Failed",
  [421] = "Misdirected Request", [422] = "Unprocessable Entity", [423] = "Locked", [425] = "Too Early",
  [426] = "Upgrade Required", [428] = "Precondition Required", [429] = "Too Many Requests",
  [431] = "Request Header Fields Too Large", [451] = "Unavailable For Legal Reasons",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout", [505] = "HTTP Version Not Supported",
  [507] = "Insufficient Storage", [508] = "Loop Detected", [511] = "Network Authentication Required",
}

-- The HTTP status class a Knox code stands for: its first three digits.
local function code_class(code)
  if math.type(code) ~= "integer" or code < 100 then return 0 end
  while code >= 1000 do code = code // 10 end
  return code
end
M.code_class = code_class

-- Which catalog entry and name the facts stand for, and the rule flags.
local function match(svc, facts)
  local code, name = facts.code, facts.name
  if code == nil and facts.oauth then code = facts.oauth end
  local cand = candidates(svc, code)
  local entry, flags_from, flags
  if name then
    for _, c in ipairs(cand) do
      if c.name == name then entry = c break end
    end
    if entry == nil and code == nil then
      entry = by_name(svc, name)
      if entry then code = entry.code end
    end
    flags_from = entry or cand[1] or by_name(svc, name) or catalog.by_name(nil, name)
  elseif #cand > 0 then
    local same = true
    for i = 2, #cand do same = same and cand[i].name == cand[1].name end
    if same then
      entry, flags_from, name = cand[1], cand[1], cand[1].name
    else
      -- only what every candidate agrees on
      flags = flags_of(cand[1])
      for i = 2, #cand do
        local f = flags_of(cand[i])
        for k, v in pairs(flags) do flags[k] = v and f[k] end
      end
    end
  end
  if name == nil and type(code) == "string" then name = code end -- AUT_1001, invalid_grant
  if flags_from then
    flags = flags_of(flags_from)
  elseif flags == nil and svc and code then
    -- a code the catalog does not know: the service's own rules still speak
    flags = flags_of { service = svc.name, code = code }
  end
  return code, name, entry, flags or NO_RULES
end

-- The most specific candidate text that says more than the name or code.
local function best_text(facts, name, code)
  local lname, lcode = name and name:lower(), code and tostring(code):lower()
  local best, prio
  for i, t in ipairs(facts.texts) do
    local lt = t:lower()
    if lt ~= lname and lt ~= lcode and (prio == nil or facts.prios[i] > prio) then
      best, prio = t, facts.prios[i]
    end
  end
  return best
end

--- classify(facts, ctx): the knox.Error the facts stand for. ctx: status
-- (0 or nil for a bulk item), service (a name), request_id, retry_after.
function M.classify(facts, ctx)
  local svc = ctx.service and services.get(ctx.service)
  local code, name, entry, flags = match(svc, facts)
  local status = ctx.status or 0
  local eff = status
  if status < 400 then
    eff = math.type(code) == "integer" and code_class(code) or (entry and entry.status or 0)
  end
  local token = svc ~= nil and svc.token == true
  local is_auth = status == 401 or flags.auth
  local renew = flags.renew or facts.www_invalid_token or (status == 401 and not token)
  local retry
  if flags.no_retry then retry = false
  elseif RETRY_STATUS[status] then retry = true
  elseif status >= 400 and status < 500 then retry = false
  else retry = flags.retry or RETRY_STATUS[eff] == true end

  local best = best_text(facts, name, code)
  if is_auth and not renew and not token and best and best:lower():find("expired", 1, true) then
    renew = true
  end
  local message
  if best then message = text.line(best, TEXT_MAX)
  elseif entry then message = entry.description
  elseif status > 0 then message = REASONS[status] or ("HTTP " .. status)
  else message = "unknown error" end

  return make {
    kind = is_auth and "auth" or "api",
    message = message,
    status = status > 0 and status or nil,
    code = code,
    name = name,
    description = entry and entry.description,
    service = ctx.service,
    error_id = facts.error_id,
    transaction_id = facts.transaction_id,
    request_id = ctx.request_id,
    retryable = retry,
    retry_after = ctx.retry_after,
    auth_action = renew and "renew" or nil,
  }
end

---------------------------------------------------------------------------
-- Responses

local FIELDS = { headers = "table", service = "string", method = "string", url = "string" }

local function check_response(r, fname)
  if type(r) ~= "table" then
    error(("bad argument #1 to '%s' (table expected, got %s)"):format(fname, type(r)), 3)
  end
  local st = r.status
  if st ~= nil and not (math.type(st) == "integer" and st >= 0 and st <= 999
      or type(st) == "number" and st == math.floor(st) and st >= 0 and st <= 999) then
    error(("bad argument #1 to '%s' (field 'status' must be an HTTP status)"):format(fname), 3)
  end
  for f, t in pairs(FIELDS) do
    if r[f] ~= nil and type(r[f]) ~= t then
      error(("bad argument #1 to '%s' (field '%s' must be a %s)"):format(fname, f, t), 3)
    end
  end
  local bt = type(r.body)
  if r.body ~= nil and bt ~= "string" and bt ~= "table" then
    error(("bad argument #1 to '%s' (field 'body' must be a string)"):format(fname), 3)
  end
  return st and math.tointeger(st) or 0
end

-- The facts of a response's body and headers.
local function response_facts(r)
  local h = r.headers
  local ct = headers.get(h, "content-type")
  return scan(r.body, { html = ct ~= nil and ct:lower():find("html", 1, true) ~= nil,
    www_authenticate = headers.get(h, "www-authenticate") })
end

local function response_error(r, status, facts)
  local service = r.service
  if service == nil and r.url then service = services.service_of(r.url) end
  local err = M.classify(facts, { status = status, service = service,
    request_id = headers.request_id(r.headers), retry_after = headers.retry_after(r.headers) })
  if r.method then err.method = text.line(r.method, 32) end
  if r.url then err.url = text.clean_url(r.url) end
  if type(r.body) == "string" and r.body ~= "" then
    err.body = text.redact(r.body, BODY_KEEP)
    -- a rejected bulk call that names the devices it rejected (KME
    -- DEVICE_NOT_FOUND, KDP DEVICE_DUPLICATE...): the per-item entries,
    -- from the whole body (err.body is cut), by the service's bulk rules
    if status < 500 and r.body:find("[", 1, true) then
      local list = M.items(r.body, service)
      if #list > 0 and list[1].id ~= nil then err.items = list end
    end
  end
  return err
end

--- from_response{status=, headers=, body=, service=, method=, url=}:
-- the knox.Error for a raw response. service defaults to the one the URL
-- path belongs to. Never raises for a body.
function M.from_response(r)
  local status = check_response(r, "from_response")
  return response_error(r, status, response_facts(r))
end

--- check(response): nil for a success, else from_response(response). A
-- success is a 2xx whose body is not a top-level {"result": "FAIL"}
-- (a Knox Guard failure can come back with 200). Per-item failures of a
-- bulk answer do not make it a failure: see items() and partial().
function M.check(r)
  local status = check_response(r, "check")
  local facts = response_facts(r)
  if status >= 200 and status < 300 and not facts.fail then return nil end
  return response_error(r, status, facts)
end

---------------------------------------------------------------------------
-- Per-item failures of 2xx bulk answers

local ITEMS_MAX = 100000 -- list elements looked at

-- Keys naming an item, in order, unless the service's bulk shape says.
local ID_KEYS = { "requestedId", "deviceUid", "mei", "imei", "meid", "serialNumber", "serial", "deviceId",
  "deviceUId", "imeiOrSerial", "objectId", "id", "approveId", "uploadId", "resellerId", "profileAliasId",
  "customerId", "profileId" }

-- What a list's key says of its elements when the service does not say:
-- lists of failures by name ("failed...", "errors", "notFound...",
-- "invalid..."); "success..." lists are skipped; others are looked into.
local function guess_list(k)
  local l = k:lower()
  if l:sub(1, 8) == "notfound" then return "not_found" end
  if l:sub(1, 7) == "invalid" then return "invalid" end
  if l:sub(1, 4) == "fail" or l:sub(1, 5) == "error" then return "failed" end
  return nil
end

-- o[key], any case of the key (Knox is not consistent about case).
local function field(o, key)
  local v = o[key]
  if v ~= nil then return v end
  local lk = key:lower()
  for k, x in pairs(o) do
    if type(k) == "string" and k:lower() == lk then return x end
  end
  return nil
end

local function scalar(v)
  if type(v) == "table" then v = v[1] end
  if type(v) == "string" or type(v) == "number" then return v end
  return nil
end

local ARRAY_MT = core.json.array_mt

-- A JSON array: a decoded one (marked, so an empty one counts), or a Lua
-- sequence.
local function is_array(v)
  return type(v) == "table" and (v[1] ~= nil or getmetatable(v) == ARRAY_MT)
end

-- A numeric Knox code (an integral number, or up to 15 digits), or nil.
local function code_num(v)
  v = scalar(v)
  if type(v) == "string" then
    v = v:match "^%s*(%d+)%s*$"
    if not v or #v > 15 then return nil end
    v = tonumber(v)
  end
  if type(v) == "number" and v >= 1 and v < 1e15 and v == math.floor(v) then return math.tointeger(v) end
  return nil
end

local FAIL_WORDS = { FAIL = true, FAILED = true, FAILURE = true }

-- Whether an element of a mixed list failed. Not "state": device states
-- such as Knox Configure's "Error" describe the device, not the outcome.
local function looks_failed(o)
  for _, k in ipairs { "result", "status" } do
    local s = scalar(field(o, k))
    if type(s) == "string" then
      s = s:match "^%s*(.-)%s*$":upper()
      if FAIL_WORDS[s] then return true end
      if s == "SUCCESS" or s == "OK" then return false end
    end
  end
  local e = field(o, "error")
  if type(e) == "table" and not is_array(e) then return true end
  if type(e) == "string" and e ~= "" then return true end
  if field(o, "errorCode") ~= nil then return true end
  return code_class(code_num(field(o, "code"))) >= 400
end

local function item_id(el, keys)
  local v = el
  if type(el) == "table" then
    v = nil
    for _, k in ipairs(keys) do
      local x = scalar(field(el, k))
      if x ~= nil and tostring(x):match "%S" then v = x break end
    end
  end
  if type(v) == "number" then
    if v == math.floor(v) and math.abs(v) < 1e15 then return ("%.0f"):format(v) end
    return ("%.17g"):format(v)
  end
  if type(v) == "string" then
    v = text.one_line(v, 128)
    if v ~= "" then return v end
  end
  return nil
end

local SAYS = { failed = "The operation failed for this item.", results = "The operation failed for this item.",
  not_found = "The device was not found.", invalid = "The device ID is invalid." }

local function add_item(out, el, kind, service, keys)
  local facts = scan(type(el) == "table" and el or nil)
  if facts.code == nil and facts.name == nil then
    if kind == "not_found" then facts.name = "DEVICE_NOT_FOUND" end
    if #facts.texts == 0 then facts.texts[1], facts.prios[1] = SAYS[kind] or SAYS.failed, 1 end
  end
  out[#out + 1] = { id = item_id(el, keys), error = M.classify(facts, { service = service }) }
end

-- Walks node for failed elements. kind: what the list holding node says
-- its elements are (nil: look at each).
local function walk(out, node, kind, depth, ctx)
  if is_array(node) then
    for _, el in ipairs(node) do
      if ctx.budget <= 0 then return end
      ctx.budget = ctx.budget - 1
      local t = type(el)
      if t == "table" and not is_array(el) then
        if (kind and kind ~= "results") or looks_failed(el) then
          add_item(out, el, kind or "failed", ctx.service, ctx.ids)
        end
      elseif kind and kind ~= "results" and (t == "string" or t == "number") then
        add_item(out, el, kind, ctx.service, ctx.ids)
      end
    end
    return
  end
  if type(node) ~= "table" or depth > 3 then return end
  local keys = {}
  for k in pairs(node) do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  table.sort(keys) -- a stable order of items whatever the hash order
  for _, k in ipairs(keys) do
    local v = node[k]
    if type(v) == "table" and k:lower():sub(1, 7) ~= "success" then
      if is_array(v) then
        walk(out, v, ctx.lists[k] or guess_list(k), depth + 1, ctx)
      else
        walk(out, v, nil, depth + 1, ctx)
      end
    end
  end
end

-- A count as Knox sends it: a number, or a string of digits.
local function count_of(v)
  v = scalar(v)
  if type(v) == "string" then
    if not v:match "^%d+$" or #v > 15 then return nil end
    v = tonumber(v)
  end
  if type(v) == "number" and v >= 1 and v < 1e15 and v == math.floor(v) then return math.tointeger(v) end
  return nil
end

--- items(body, service): the per-item failures of a 2xx bulk answer, a
-- list of { id = <requestedId, imei, device id...>, error = knox.Error }.
-- body is JSON text or an already-decoded table. Where the items are is
-- the service's bulk shape (its registry file: bulk.lists, bulk.ids),
-- else guessed from list names. The errors have kind "api" (or "auth" for
-- credential codes) and no status: the HTTP status was a success;
-- retryable follows the code's own class. Answers that only count
-- failures (Knox Configure failedCount, a Knox Guard summary) give one
-- item with id nil and count = n.
function M.items(body, service)
  local bt = type(body)
  if body ~= nil and bt ~= "string" and bt ~= "table" then
    error("bad argument #1 to 'items' (string or table expected, got " .. bt .. ")", 2)
  end
  if service ~= nil and type(service) ~= "string" then
    error("bad argument #2 to 'items' (string expected, got " .. type(service) .. ")", 2)
  end
  local out = {}
  if bt == "string" then
    local ok, decoded = pcall(core.json.decode, body)
    body = ok and decoded or nil
  end
  if type(body) ~= "table" then return out end
  local svc = service and services.get(service)
  local bulk = svc and svc.bulk or NO_RULES
  walk(out, body, nil, 0, { budget = ITEMS_MAX, service = service, lists = bulk.lists or NO_RULES,
    ids = bulk.ids or ID_KEYS })
  if #out == 0 and not is_array(body) then
    -- counts only: Knox Configure assign, or a Knox Guard summary
    local nfail = count_of(body.failedCount) or count_of(body.failCount) or count_of(body.fail)
    local ntotal = count_of(body.totalCount) or count_of(body.count)
    if nfail then
      local msg = ntotal and ntotal >= nfail and ("%d of %d items failed."):format(nfail, ntotal)
        or ("%d items failed."):format(nfail)
      out[1] = { count = nfail, error = M.classify({ texts = { msg }, prios = { 1 } }, { service = service }) }
    end
  end
  return out
end

---------------------------------------------------------------------------
-- Look-ups

local function check_service(name, fname)
  if name == nil then return nil end
  if type(name) ~= "string" then
    error(("bad argument #1 to '%s' (string expected, got %s)"):format(fname, type(name)), 3)
  end
  local svc = services.get(name)
  if svc == nil then error(("bad argument #1 to '%s' (unknown service '%s')"):format(fname, name), 3) end
  return svc
end

-- A code argument: integer, integral float, or string (digits become the
-- integer; AUT_/LIC_ any case); nil for a string that is no code.
local function arg_code(c)
  if type(c) == "number" then
    if c ~= c or c < 1 or c >= 1e15 or c ~= math.floor(c) then return nil end
    return math.tointeger(c)
  end
  if type(c) ~= "string" then return false end
  c = c:match "^%s*(.-)%s*$"
  if c:match "^%d+$" and #c <= 15 and tonumber(c) >= 1 then return math.tointeger(tonumber(c)) end
  if is_sa_code(c:upper()) then return c:upper() end
  if c == "" or #c >= 72 then return nil end
  return c
end

--- lookup(service, code): { service=, code=, name=, description=,
-- status=, kind= } or nil. Services: M.services. A kcs service that does
-- not know a code answers with the Knox Cloud Authentication entry (its
-- token check fronts every service); the entry's own service is in the
-- result. With service nil, answers only when every service that knows the
-- code agrees on its name. A code with two names in one service (KME
-- 4001701) answers with the first and lists the others in `alternatives`.
function M.lookup(service, code)
  local svc = check_service(service, "lookup")
  local c = arg_code(code)
  if c == false then
    error("bad argument #2 to 'lookup' (integer or string expected, got " .. type(code) .. ")", 2)
  end
  if c == nil then return nil end
  local cand = candidates(svc, c)
  if #cand == 0 then return nil end
  local same = true
  for i = 2, #cand do same = same and cand[i].name == cand[1].name end
  if svc == nil and not same then return nil end
  local first = lookup_entry(cand[1])
  if not same then
    first.alternatives = {}
    for i = 2, #cand do first.alternatives[i - 1] = lookup_entry(cand[i]) end
  end
  return first
end

--- catalog([service]): a new list of every documented code (of one
-- service), each as lookup() gives it.
function M.catalog(service)
  local svc = check_service(service, "catalog")
  local list = catalog.list(svc and svc.name)
  for _, n in ipairs(svc and { svc.name } or services.load().names) do
    for _, c in ipairs(own_codes(services.get(n), nil, nil)) do list[#list + 1] = c end
  end
  for _, e in ipairs(list) do lookup_entry(e) end
  return list
end

--- clean_url(url): url without userinfo or fragment, secret-looking
-- query values redacted (what errors carry in `url`).
M.clean_url = text.clean_url

--- service_of(url): the service a URL's path belongs to, or nil.
function M.service_of(url)
  if type(url) ~= "string" then
    error("bad argument #1 to 'service_of' (string expected, got " .. type(url) .. ")", 2)
  end
  return services.service_of(url)
end

--- partial(response): nil when a 2xx bulk answer has no per-item failures,
-- else a knox.Error of kind "partial" whose `items` are items(body,
-- service). Not raised by the client by default (a bulk call that partly
-- succeeded is a result); callers that want all-or-nothing can raise it.
function M.partial(response)
  if type(response) ~= "table" then
    error("bad argument #1 to 'partial' (table expected, got " .. type(response) .. ")", 2)
  end
  local service = response.service
  if service == nil and type(response.url) == "string" then
    service = services.service_of(response.url)
  end
  local list = M.items(response.body, service)
  if #list == 0 then
    return nil
  end
  local failed = 0
  for _, item in ipairs(list) do
    failed = failed + (item.count or 1)
  end
  local first = list[1]
  local what = first.error.name or first.error.message
  local message
  if first.id ~= nil then
    message = string.format("%d item(s) failed; first %s: %s", failed, first.id, what)
  else
    message = string.format("%d item(s) failed: %s", failed, what)
  end
  return make {
    kind = "partial",
    status = math.type(response.status) == "integer" and response.status or nil,
    service = service,
    method = type(response.method) == "string" and response.method or nil,
    url = type(response.url) == "string" and text.clean_url(response.url) or nil,
    message = message,
    items = list,
    retryable = false,
  }
end

return M
