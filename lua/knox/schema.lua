--- knox.schema: method arguments checked against their registry row
-- before anything is sent, and mapped onto the wire.
--
-- A row (lua/knox/services/<svc>.lua, `endpoints`) declares its arguments:
--
--   args = {
--     { "profileId", "string", required = true, doc = "..." },
--     { "devices", "devices", required = true, wire = "deviceIds" },
--     { "sortOrder", "string", enum = { "ascending", "descending" } },
--   }
--
-- Types: string, integer, number, boolean, object (a non-array table),
-- array (any list), cursor (a paging cursor: string, number or list),
-- strings (a list of strings), devices (a list of IMEIs,
-- serial numbers or Knox ids; one id alone is taken as a list of one).
-- `wire` names the field Knox reads: "deviceIds", a nested field
-- "devices.imeiOrSerials", or a list of objects "deviceList[].deviceUid".
-- `in` says where it goes ("path", "query", "body", "header", or "none":
-- only the row's finish(wire, args) reads it); by default
-- a {name} in the path template, the query for GET and DELETE, else the
-- body. `join = ","` sends a list as one comma-separated value.
-- `require_one = { "a", "b" }` on the row: at least one of them.
--
-- A missing, mistyped, out-of-enum or unknown argument raises kind
-- "usage" naming the field, with the nearest known name for a misspelling.
local usage = require("knox.errors").usage

local M = {}

---------------------------------------------------------------------------
-- The nearest name (for "did you mean")

local function distance(a, b)
  local la, lb = #a, #b
  if math.abs(la - lb) > 3 then return 99 end
  local prev, cur = {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur[0] = i
    local ca = a:byte(i)
    for j = 1, lb do
      local cost = ca == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[lb]
end

--- M.nearest(name, names) -> the known name closest to name, or nil when
-- none is close (same letters in another case, or a few edits away).
function M.nearest(name, names)
  if type(name) ~= "string" then return nil end
  local lname = name:lower()
  local best, best_d
  for _, n in ipairs(names) do
    local d = n:lower() == lname and 0 or distance(lname, n:lower())
    if d == 0 then return n end
    if not best_d or d < best_d or (d == best_d and n < best) then best, best_d = n, d end
  end
  if best and best_d <= math.max(1, math.min(3, #name // 3)) then return best end
  return nil
end

--- M.unknown(what, name, names, where) raises usage: "unknown <what>
-- 'name' to where; did you mean 'x'?".
function M.unknown(what, name, names, where, level)
  local near = M.nearest(name, names)
  usage(("unknown %s '%s'%s%s"):format(what, tostring(name), where and (" to " .. where) or "",
    near and ("; did you mean '" .. near .. "'?") or ""), (level or 1) + 1)
end

---------------------------------------------------------------------------
-- Types

local function is_list(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v
end

local function id_text(v)
  if math.type(v) == "integer" then return ("%d"):format(v) end
  if type(v) == "string" and v:match "%S" and not v:find "[%c]" then return v end
  return nil
end

-- type name -> function(v) -> normalized value, or nil and what it needs
local CHECK = {
  string = function(v) if type(v) == "string" then return v end return nil, "a string" end,
  integer = function(v)
    if math.type(v) == "integer" then return v end
    if type(v) == "number" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then return math.tointeger(v) end
    return nil, "an integer"
  end,
  number = function(v) if type(v) == "number" and v == v then return v end return nil, "a number" end,
  boolean = function(v) if type(v) == "boolean" then return v end return nil, "true or false" end,
  object = function(v)
    if type(v) == "table" and (next(v) == nil or not is_list(v)) then return v end
    return nil, "a table of fields"
  end,
  array = function(v) if is_list(v) then return v end return nil, "a list" end,
  -- a paging cursor as the server handed it out (a string, a number or a
  -- list of sort values)
  cursor = function(v)
    if type(v) == "string" or type(v) == "number" or is_list(v) then return v end
    return nil, "a cursor (the previous page's next value)"
  end,
  strings = function(v)
    if type(v) == "string" then return { v } end
    if not is_list(v) then return nil, "a list of strings" end
    for _, x in ipairs(v) do if type(x) ~= "string" then return nil, "a list of strings" end end
    return v
  end,
  devices = function(v)
    if type(v) == "string" or math.type(v) == "integer" then v = { v } end
    if not is_list(v) then return nil, "a list of device ids (IMEIs, serial numbers or Knox ids)" end
    if #v == 0 then return nil, "at least one device id" end
    local out = {}
    for i, x in ipairs(v) do
      local s = id_text(x)
      if not s then
        return nil, ("device ids (strings or integers); item %d is %s"):format(i,
          type(x) == "string" and "empty or has control characters" or type(x))
      end
      out[i] = s
    end
    return out
  end,
}
M.TYPES = {}
for k in pairs(CHECK) do M.TYPES[#M.TYPES + 1] = k end
table.sort(M.TYPES)

local function show(v)
  if type(v) == "string" then return "'" .. (#v > 40 and v:sub(1, 40) .. "..." or v) .. "'" end
  return type(v)
end

---------------------------------------------------------------------------
-- A row's argument table, indexed once

local function index(def)
  if def._index then return def._index end
  local by, names = {}, {}
  for _, a in ipairs(def.args or {}) do
    by[a[1]] = a
    names[#names + 1] = a[1]
  end
  def._index = { by = by, names = names }
  return def._index
end
M.index = index

-- Where an argument goes.
local function place(def, spec, name)
  if spec["in"] then return spec["in"] end
  if def[2]:find("{" .. name .. "}", 1, true) then return "path" end
  if def[1] == "GET" or def[1] == "DELETE" then return "query" end
  return "body"
end
M.place = place

-- Sets a wire field: "a", "a.b" (nested object), "a[].b" (a list of
-- objects, one per element of v).
local function set_wire(t, wire, v)
  local list, key = wire:match "^([%w_]+)%[%]%.([%w_]+)$"
  if list then
    local out = {}
    for i, x in ipairs(v) do out[i] = { [key] = x } end
    t[list] = out
    return
  end
  local outer, inner = wire:match "^([%w_]+)%.([%w_]+)$"
  if outer then
    t[outer] = type(t[outer]) == "table" and t[outer] or {}
    t[outer][inner] = v
    return
  end
  t[wire] = v
end
M.set_wire = set_wire

--- M.build(def, args, where) -> { params, query, body, headers } for the
-- request, or raises kind "usage". where: "kme:assign_profile" (messages).
function M.build(def, args, where)
  local ix = index(def)
  for k in pairs(args) do
    if not ix.by[k] then
      if type(k) ~= "string" then usage(("argument keys to %s are names, got %s"):format(where, type(k)), 3) end
      M.unknown("argument", k, ix.names, where, 3)
    end
  end
  local out = { params = {}, query = {}, body = {}, headers = {} }
  local any_body = false
  for _, spec in ipairs(def.args or {}) do
    local name, ty = spec[1], spec[2]
    local v = args[name]
    if v == nil then v = spec.default end
    if v == nil then
      if spec.required then
        usage(("%s needs '%s' (%s)"):format(where, name, ty), 3)
      end
    else
      local nv, needs = CHECK[ty](v)
      if nv == nil then
        usage(("argument '%s' to %s must be %s (got %s)"):format(name, where, needs, show(v)), 3)
      end
      if spec.enum then
        local okv = false
        for _, e in ipairs(spec.enum) do okv = okv or e == nv end
        if not okv then
          usage(("argument '%s' to %s must be one of %s (got %s)"):format(name, where,
            table.concat(spec.enum, ", "), show(nv)), 3)
        end
      end
      local num = type(nv) == "number"
      if num and ((spec.min and nv < spec.min) or (spec.max and nv > spec.max)) then
        usage(("argument '%s' to %s must be between %s and %s (got %s)"):format(name, where,
          tostring(spec.min or "-inf"), tostring(spec.max or "inf"), tostring(nv)), 3)
      end
      if type(nv) == "string" and (ty == "string") and nv:find "[\r\n]" and place(def, spec, name) ~= "body" then
        usage(("argument '%s' to %s has a line break"):format(name, where), 3)
      end
      local p = place(def, spec, name)
      if spec.join and type(nv) == "table" then nv = table.concat(nv, spec.join) end
      if p == "none" then -- read by the row's finish(), not sent as such
        out.args = out.args or {}
      elseif p == "path" then out.params[name] = nv
      elseif p == "query" then set_wire(out.query, spec.wire or name, nv)
      elseif p == "header" then out.headers[spec.wire or name] = tostring(nv)
      else
        set_wire(out.body, spec.wire or name, nv)
        any_body = true
      end
    end
  end
  if def.require_one then
    local found = false
    for _, n in ipairs(def.require_one) do found = found or args[n] ~= nil end
    if not found then
      usage(("%s needs one of '%s'"):format(where, table.concat(def.require_one, "', '")), 3)
    end
  end
  if not any_body and not def.body then out.body = nil end
  if next(out.query) == nil then out.query = nil end
  if next(out.headers) == nil then out.headers = nil end
  return out
end

--- M.check_row(svc, name, def): raises a plain error for a malformed row
-- (the registry's own check calls it; a row is code, not input).
function M.check_row(svc, name, def)
  local where = svc .. "." .. name
  if def.args == nil then error(where .. ": no args (declare args = {} for none)", 0) end
  if type(def.args) ~= "table" then error(where .. ": args must be a list", 0) end
  local seen = {}
  for i, a in ipairs(def.args) do
    if type(a[1]) ~= "string" then error(where .. ": args[" .. i .. "] has no name", 0) end
    if not CHECK[a[2]] then error(where .. ": args " .. a[1] .. " has unknown type " .. tostring(a[2]), 0) end
    if seen[a[1]] then error(where .. ": args " .. a[1] .. " twice", 0) end
    seen[a[1]] = true
  end
  for n in def[2]:gmatch "{([%w_]+)}" do
    if not seen[n] then error(where .. ": path {" .. n .. "} is not an argument", 0) end
  end
end

return M
