--- knox.sim JSON. Decoding is lua-cjson's (a private instance: no NaN or
-- hex numbers, bounded depth); encoding is done here because lua-cjson
-- 2.1.0 cannot tell an empty array from an empty object. Tables marked with
-- json.array() (or non-empty sequences) become arrays; object keys are
-- sorted so responses are byte-for-byte deterministic.
local cjson = require "cjson"

local M = {}

local decoder = cjson.new()
decoder.decode_invalid_numbers(false)
decoder.decode_max_depth(64)

local quote = cjson.new().encode  -- only ever given strings
local array_mt = { __name = "knox.sim.array" }

-- Object keys, quoted once (they repeat in every item of a page); at most
-- KEY_CACHE of them, so that arbitrary keys (logged headers) cannot grow it.
local KEY_CACHE = 4096
local key_count = 0
local quoted_keys = setmetatable({}, { __index = function(t, k)
  local q = quote(k)
  if key_count < KEY_CACHE then
    key_count = key_count + 1
    t[k] = q
  end
  return q
end })

M.null = cjson.null

--- Marks t (or a new table) as a JSON array.
function M.array(t)
  return setmetatable(t or {}, array_mt)
end

--- Returns the decoded value, or nil and a message.
function M.decode(s)
  local ok, v = pcall(decoder.decode, s)
  if ok then return v end
  return nil, (tostring(v):gsub("^.-:%d+: ", ""))
end

--- True when a decoded table is a JSON array (a sequence, or empty).
function M.is_array(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

--- True when a decoded table is a JSON object (not a non-empty sequence).
function M.is_object(t)
  return type(t) == "table" and (next(t) == nil or t[1] == nil)
end

local encode_value

local function encode_number(v, out)
  if math.type(v) == "integer" then
    out[#out + 1] = string.format("%d", v)
  elseif v ~= v or v == math.huge or v == -math.huge then
    out[#out + 1] = "null"
  elseif v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    out[#out + 1] = string.format("%d", math.tointeger(v))
  else
    out[#out + 1] = string.format("%.17g", v)
  end
end

local function is_sequence(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

--- A metatable for objects whose keys are all among `keys`: they encode
-- in that order (sorted here) without sorting each object, which is what
-- makes a page of generated devices cheap. A key outside the list is
-- noticed and the object is encoded the ordinary way.
-- With fresh(t) -> text, the shape also gives a metatable for objects
-- just generated (shape.fresh: encoded by that function, which may assume
-- the generator's exact keys); a fleet moves an object it keeps (and so
-- may change) to the ordinary shape (the __kept field).
function M.shape(keys, fresh)
  local order = {}
  for i, k in ipairs(keys) do order[i] = k end
  table.sort(order)
  local shape = { __jsonorder = order }
  if fresh then shape.fresh = { __json = fresh, __kept = shape } end
  return shape
end

local mtype, tostr = math.type, tostring

local function encode_ordered(t, order, out, depth)
  local start = #out
  local n = start + 1
  out[n] = "{"
  local count = 0
  for _, k in ipairs(order) do
    local v = t[k]
    if v ~= nil then
      count = count + 1
      n = n + 1
      out[n] = count > 1 and "," .. quoted_keys[k] .. ":" or quoted_keys[k] .. ":"
      local tv = type(v)
      if tv == "string" then
        n = n + 1
        out[n] = quote(v)
      elseif tv == "boolean" then
        n = n + 1
        out[n] = v and "true" or "false"
      elseif tv == "number" and mtype(v) == "integer" then
        n = n + 1
        out[n] = tostr(v)
      else
        encode_value(v, out, depth + 1)
        n = #out
      end
    end
  end
  local total = 0
  for _ in pairs(t) do total = total + 1 end
  if total ~= count then
    for i = n, start + 1, -1 do out[i] = nil end
    return false
  end
  out[n + 1] = "}"
  return true
end

--- Quotes a string as JSON (lua-cjson's bytes).
M.quote = quote

local function encode_table(t, out, depth)
  if depth > 64 then error("json: nesting too deep", 0) end
  local mt = getmetatable(t)
  if mt then
    -- __json(t): the object's JSON text, made by its owner in one go (a
    -- generated device that nobody changed: see knox.sim.fleet)
    if mt.__json then
      out[#out + 1] = mt.__json(t)
      return
    end
    if mt.__jsonorder and encode_ordered(t, mt.__jsonorder, out, depth) then return end
  end
  if mt == array_mt or is_sequence(t) then
    out[#out + 1] = "["
    for i = 1, #t do
      if i > 1 then out[#out + 1] = "," end
      encode_value(t[i], out, depth + 1)
    end
    out[#out + 1] = "]"
    return
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = quoted_keys[k]
    out[#out + 1] = ":"
    local v = t[k]
    if v == nil then v = t[tonumber(k)] end
    encode_value(v, out, depth + 1)
  end
  out[#out + 1] = "}"
end

encode_value = function(v, out, depth)
  local tv = type(v)
  if tv == "string" then
    out[#out + 1] = quote(v)
  elseif tv == "number" then
    encode_number(v, out)
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif v == nil or v == cjson.null then
    out[#out + 1] = "null"
  elseif tv == "table" then
    encode_table(v, out, depth)
  else
    error("json: cannot encode a " .. tv, 0)
  end
end

--- Encodes a Lua value as JSON text.
function M.encode(v)
  local out = {}
  encode_value(v, out, 0)
  return table.concat(out)
end

return M
