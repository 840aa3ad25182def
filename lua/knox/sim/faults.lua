--- knox.sim fault injection (POST /__sim/faults). A fault matches requests
-- by method and path (the path without its query string); the next `times`
-- matching requests fail that way, then normal service resumes. Faults
-- never apply to /__sim/ endpoints.
--
-- Path matching is exact unless the fault says otherwise:
--   match.path = "/kcs/v1.1/kg/devices/lock"   the whole path, compared as
--       text (no pattern characters): it does not match .../lockAsync.
--       A path beginning with "^" or ending with "$" is the older form: a
--       Lua pattern with exactly the anchors it has.
--   match.pattern = "/kcs/v1%.1/kg/devices/%a+"  a Lua pattern that must
--       match the whole path (anchored at both ends) ...
--   match.partial = true                        ... or anywhere in it.
-- No path and no pattern: every path. method: any method unless given.
--
-- Fields: match = { method, path, pattern, partial }, status, body = "knox" | "html" |
-- "empty" | "garbage" | "truncated", retry_after, delay_ms, reset, times
-- (default 1), and optional code / name / message overriding the Knox
-- error's (a documented code alone brings its documented name).
-- reset = true resets the connection (TCP RST) mid-response: the request
-- is handled (so a write takes effect, and the client cannot know), the
-- status line, headers and half the body are sent, then the reset. A reset
-- before any byte (reset = "early") looks like a stale keep-alive
-- connection, which HTTP clients such as libcurl silently retry.
-- Without status a fault delays (delay_ms), truncates (body = "truncated")
-- or resets the real response.
local json = require "knox.sim.json"
local errors = require "knox.sim.errors"

local M = {}

-- Bounds on match.path (simulator's choice): patterns are tried only on
-- paths up to MAX_MATCHED_PATH bytes, so even the worst accepted pattern
-- ends quickly.
M.MAX_PATTERN = 256
M.MAX_QUANTIFIERS = 2
M.MAX_MATCHED_PATH = 512

--- Whether pat is a pattern the simulator accepts: ok, or nil and why.
function M.check_pattern(pat)
  if type(pat) ~= "string" then return nil, "must be a string (a Lua pattern)" end
  if #pat > M.MAX_PATTERN then return nil, "is longer than " .. M.MAX_PATTERN .. " bytes" end
  local _, quantifiers = pat:gsub("%%.", ""):gsub("[%*%+%-]", "")
  if quantifiers > M.MAX_QUANTIFIERS then
    return nil, "has more than " .. M.MAX_QUANTIFIERS .. " quantifiers (*, +, -)"
  end
  if not pcall(string.find, "/kcs/v1/kme/devices/list", pat) then return nil, "is not a valid Lua pattern" end
  return true
end

--- Whether pattern pat (checked by check_pattern) is found in path; never
-- raises, and paths longer than MAX_MATCHED_PATH never match.
function M.path_matches(path, pat)
  if #path > M.MAX_MATCHED_PATH then return false end
  local ok, found = pcall(string.find, path, pat)
  return ok and found ~= nil
end

local BODIES = { knox = true, html = true, empty = true, garbage = true, truncated = true }

local Faults = {}
Faults.__index = Faults

function M.new()
  return setmetatable({ list = {}, seq = 0 }, Faults)
end

local function nonneg_number(v)
  return type(v) == "number" and v == v and v >= 0 and v < math.huge
end

--- Validates and queues spec; returns the fault record, or nil, message.
function Faults:add(spec)
  if not json.is_object(spec) then return nil, "a fault is a JSON object" end
  local match = spec.match
  if match == nil or match == json.null then match = {} end
  if not json.is_object(match) then return nil, "match must be an object" end
  local method, path, pattern, partial = match.method, match.path, match.pattern, match.partial
  if method == json.null then method = nil end
  if path == json.null then path = nil end
  if pattern == json.null then pattern = nil end
  if partial == json.null then partial = nil end
  if method ~= nil and (type(method) ~= "string" or not method:match("^%a+$")) then
    return nil, "match.method must be an HTTP method"
  end
  if partial ~= nil and type(partial) ~= "boolean" then return nil, "match.partial must be a boolean" end
  if path ~= nil and pattern ~= nil then return nil, "match.path and match.pattern do not go together" end
  local kind = "exact"
  if path ~= nil then
    if type(path) ~= "string" then return nil, "match.path must be a string" end
    if #path > M.MAX_MATCHED_PATH then return nil, "match.path is longer than " .. M.MAX_MATCHED_PATH .. " bytes" end
    if path:sub(1, 1) == "^" or (path:sub(-1) == "$" and path:sub(-2, -2) ~= "%") then
      kind, pattern, path = "legacy", path, nil
    end
  end
  if pattern ~= nil then
    if type(pattern) ~= "string" then return nil, "match." .. (kind == "legacy" and "path" or "pattern")
      .. " must be a string (a Lua pattern)" end
    -- Lua patterns backtrack: a long one, or one with many quantifiers,
    -- could hold the simulator's only thread for ever on a long path
    local ok, why = M.check_pattern(pattern)
    if not ok then return nil, "match." .. (kind == "legacy" and "path" or "pattern") .. " " .. why end
    if kind ~= "legacy" then kind = partial and "partial" or "whole" end
  elseif partial then
    return nil, "match.partial needs a match.pattern"
  end
  local f = { match = { method = method and method:upper(), path = path, pattern = pattern, partial = partial,
    kind = kind } }
  if kind == "whole" then
    -- anchored at both ends (anchors the pattern already has are not doubled)
    local core = pattern:gsub("^%^", "")
    if core:sub(-1) == "$" and core:sub(-2, -2) ~= "%" then core = core:sub(1, -2) end
    f.anchored = "^" .. core .. "$"
  end
  local status = spec.status
  if status ~= nil and status ~= json.null then
    if math.type(status) ~= "integer" and not (type(status) == "number" and status == math.floor(status)) then
      return nil, "status must be an integer"
    end
    if status < 200 or status > 599 then return nil, "status must be between 200 and 599" end
    f.status = math.tointeger(status)
  end
  local body = spec.body
  if body ~= nil and body ~= json.null then
    if not BODIES[body] then return nil, "body must be knox, html, empty, garbage or truncated" end
    f.body = body
  end
  if spec.delay_ms ~= nil and spec.delay_ms ~= json.null then
    if not nonneg_number(spec.delay_ms) or spec.delay_ms > 600000 then
      return nil, "delay_ms must be a number of milliseconds between 0 and 600000"
    end
    f.delay_ms = spec.delay_ms
  end
  if spec.retry_after ~= nil and spec.retry_after ~= json.null then
    local ra = spec.retry_after
    if nonneg_number(ra) and ra <= 1e9 then
      f.retry_after = string.format("%d", math.floor(ra))
    elseif type(ra) == "string" and ra ~= "" and not ra:find("[%c]") then
      f.retry_after = ra
    else
      return nil, "retry_after must be seconds or an HTTP date"
    end
  end
  if spec.reset ~= nil and spec.reset ~= json.null then
    if type(spec.reset) ~= "boolean" and spec.reset ~= "early" then
      return nil, 'reset must be true, false or "early"'
    end
    f.reset = spec.reset or nil
  end
  local times = spec.times
  if times == nil or times == json.null then times = 1 end
  if math.tointeger(times) == nil or times < 1 then
    return nil, "times must be a positive integer"
  end
  f.times = math.tointeger(times)
  if spec.code ~= nil and spec.code ~= json.null then
    if type(spec.code) ~= "number" and type(spec.code) ~= "string" then
      return nil, "code must be a number or string"
    end
    f.code = spec.code
  end
  for _, k in ipairs { "name", "message" } do
    local v = spec[k]
    if v ~= nil and v ~= json.null then
      if type(v) ~= "string" then return nil, k .. " must be a string" end
      f[k] = v
    end
  end
  if not f.status and not f.reset and not f.delay_ms and f.body ~= "truncated" then
    return nil, "a fault needs status, reset, delay_ms or body = \"truncated\""
  end
  if f.status and not f.body then f.body = "knox" end
  self.seq = self.seq + 1
  f.id = self.seq
  self.list[#self.list + 1] = f
  return f
end

-- Whether a fault f's match (see the header) covers path.
local function covers(f, path)
  local m = f.match
  if m.path then return path == m.path end
  if not m.pattern then return true end
  if m.kind == "whole" then return M.path_matches(path, f.anchored) end
  return M.path_matches(path, m.pattern)   -- partial, and the older anchored form
end
M.covers = covers

--- The first queued fault matching method and path, consumed once.
function Faults:take(method, path)
  for i, f in ipairs(self.list) do
    local m = f.match
    if (not m.method or m.method == method) and covers(f, path) then
      f.times = f.times - 1
      if f.times <= 0 then table.remove(self.list, i) end
      return f
    end
  end
  return nil
end

function Faults:clear()
  self.list = {}
end

--- The queued faults, as JSON-ready tables.
function Faults:describe()
  local out = json.array()
  for i, f in ipairs(self.list) do
    local d = {}
    for k, v in pairs(f) do d[k] = v end
    d.remaining, d.times = f.times, nil
    out[i] = d
  end
  return out
end

local HTML = [[<html>
<head><title>%d %s</title></head>
<body>
<center><h1>%d %s</h1></center>
<hr><center>nginx</center>
</body>
</html>
]]

local GARBAGE = "\137PNG\r\n\26\n\0\0\0{\"code\": 40\255\254<not json>\0"

--- The response for a fault with a status, in service's shape.
function M.response(f, service, reasons)
  local status = f.status
  local headers = {}
  if f.retry_after then headers["Retry-After"] = f.retry_after end
  local body, ctype = "", "application/json"
  if f.body == "html" then
    local reason = reasons[status] or "Error"
    body, ctype = string.format(HTML, status, reason, status, reason), "text/html"
  elseif f.body == "garbage" then
    body = GARBAGE
  elseif f.body == "knox" or f.body == "truncated" then
    local code, name = errors.generic(service, status)
    if f.code ~= nil then
      code = tonumber(f.code) and math.tointeger(tonumber(f.code)) or f.code
      name = errors.name_of(service, code) or name
    end
    name = f.name or name
    body = json.encode(errors.body(service, status, code, name, f.message or reasons[status] or name))
  end
  headers["Content-Type"] = ctype
  return { status = status, headers = headers, body = body, truncate = f.body == "truncated" }
end

return M
