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

local function encode_table(t, out, depth)
  if depth > 64 then error("json: nesting too deep", 0) end
  if getmetatable(t) == array_mt or is_sequence(t) then
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
    out[#out + 1] = quote(k)
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
