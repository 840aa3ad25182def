--- knox.sim codecs: base64 / base64url, hex, random ids, URL and form
-- decoding, HTTP dates and civil-date arithmetic. Pure functions.
local mime = require "mime"
local rand = require "openssl.rand"

local M = {}

--- Standard base64 with padding.
function M.b64(s)
  return (mime.b64(s)) or ""
end

--- Decodes standard base64 (whitespace ignored); nil when malformed.
function M.unb64(s)
  if type(s) ~= "string" then return nil end
  s = s:gsub("%s+", "")
  if #s % 4 ~= 0 or not s:match("^[%w+/]*=?=?$") then return nil end
  if s == "" then return "" end
  return (mime.unb64(s))
end

function M.b64url(s)
  return (M.b64(s):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" }))
end

--- Decodes unpadded base64url; nil when malformed.
function M.unb64url(s)
  if type(s) ~= "string" or not s:match("^[%w%-_]*$") or #s % 4 == 1 then return nil end
  s = s:gsub("[-_]", { ["-"] = "+", ["_"] = "/" })
  return M.unb64(s .. string.rep("=", (4 - #s % 4) % 4))
end

function M.hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

--- n random bytes from OpenSSL as 2n hex digits.
function M.random_hex(n)
  return M.hex(rand.bytes(n))
end

--- A random RFC 4122 version 4 UUID.
function M.uuid()
  local b = { rand.bytes(16):byte(1, 16) }
  b[7] = (b[7] & 0x0f) | 0x40
  b[9] = (b[9] & 0x3f) | 0x80
  local h = string.format(string.rep("%02x", 16), table.unpack(b))
  return h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-" .. h:sub(13, 16) .. "-" .. h:sub(17, 20) .. "-" .. h:sub(21)
end

--- Percent-decoding; plus_space also turns '+' into ' ' (forms, queries).
function M.url_decode(s, plus_space)
  if plus_space then s = s:gsub("+", " ") end
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

function M.url_encode(s)
  return (s:gsub("[^%w%-._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

--- Parses a query string or form body. Returns last-value and all-values
-- maps; "a[]=1&a[]=2" is stored under both "a[]" and "a".
function M.parse_query(s)
  local last, all = {}, {}
  for pair in (s or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k, v = M.url_decode(k, true), M.url_decode(v, true)
    if k ~= "" then
      local names = { k }
      local base = k:match("^(.-)%[%]$")
      if base and base ~= "" then names[2] = base end
      for _, name in ipairs(names) do
        last[name] = v
        local list = all[name]
        if not list then list = {}; all[name] = list end
        list[#list + 1] = v
      end
    end
  end
  return last, all
end

local DAYS = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }

--- Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
-- days_from_civil), so no local time zone is ever involved.
function M.days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m, d
end

--- RFC 7231 IMF-fixdate for epoch seconds t (UTC, locale-independent).
function M.http_date(t)
  t = math.floor(t)
  local days, secs = t // 86400, t % 86400
  local y, m, d = civil_from_days(days)
  return string.format("%s, %02d %s %04d %02d:%02d:%02d GMT", DAYS[(days + 4) % 7 + 1], d, MONTHS[m], y,
    secs // 3600, secs % 3600 // 60, secs % 60)
end

--- Epoch seconds of "YYYY-MM-DD" or "YYYY-MM-DDThh:mm[:ss][Z]" (UTC); nil otherwise.
function M.parse_date(s)
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > 31 then return nil end
  local h, mi, se = 0, 0, 0
  if rest ~= "" then
    local hh, mm, ss = rest:match("^[T ](%d%d):(%d%d):?(%d?%d?)Z?$")
    if not hh then return nil end
    h, mi, se = tonumber(hh), tonumber(mm), tonumber(ss) or 0
    if h > 23 or mi > 59 or se > 60 then return nil end
  end
  return M.days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se
end

-- The Luhn sum of the first n digits of s, doubling every second digit.
local function luhn_sum(s, n)
  local sum = 0
  for i = 1, n do
    local x = s:byte(i) - 48
    if i % 2 == 0 then
      x = x * 2
      if x > 9 then x = x - 9 end
    end
    sum = sum + x
  end
  return sum
end

--- True for a 15-digit IMEI whose last digit is its Luhn check digit.
function M.valid_imei(s)
  if type(s) ~= "string" or not s:match("^%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d$") then return false end
  return luhn_sum(s, 15) % 10 == 0
end

--- The Luhn check digit for a 14-digit IMEI body.
function M.luhn_digit(body)
  return (10 - luhn_sum(body, 14) % 10) % 10
end

--- Makes a string safe to put in JSON: invalid UTF-8 bytes become '?'.
function M.utf8_safe(s)
  if utf8.len(s) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local len = utf8.len(s, i, i)  -- nil when the sequence at i is invalid
    local ok, cp = pcall(utf8.codepoint, s, i)
    if len and ok and cp then
      local size = #utf8.char(cp)
      out[#out + 1] = s:sub(i, i + size - 1)
      i = i + size
    else
      out[#out + 1] = "?"
      i = i + 1
    end
  end
  return table.concat(out)
end

return M
