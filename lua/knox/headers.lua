--- knox.headers: what knox reads from response headers, in one place:
-- a case-insensitive getter, the request id, Retry-After and the one
-- HTTP-date parser (knox.core.http_date, C).
local core = require "knox.core"

local one_line = core.text.one_line
local http_date = core.http_date

local M = { http_date = http_date }

--- get(h, name): header `name` (lower case) from table h as a string, any
-- case of its key; a list value gives its first element. exact: h's keys
-- are already lower case (the transport's), so no scan is needed.
local function get(h, name, exact)
  if type(h) ~= "table" then return nil end
  local v = h[name]
  if v == nil and not exact then
    for k, x in pairs(h) do
      if type(k) == "string" and k:lower() == name then v = x break end
    end
  end
  if type(v) == "table" then v = v[1] end
  if type(v) == "number" then return tostring(v) end
  if type(v) == "string" then return v end
  return nil
end
M.get = get

-- The headers that may carry a request id, most specific first.
-- UNCONFIRMED: Knox documents no request-id response header (api-notes §5).
local REQUEST_ID = { "x-request-id", "x-amzn-requestid", "x-amz-request-id", "x-correlation-id",
  "x-knox-transactionid" }
-- the same names for the quick test of a transport table (no name present:
-- nothing to look at); checked to be the whole list
local R1, R2, R3, R4, R5 = table.unpack(REQUEST_ID)
assert(#REQUEST_ID == 5)

--- request_id(h [, exact]): the request id the response carries (one
-- line, at most 128 bytes), or nil.
function M.request_id(h, exact)
  if h == nil then return nil end
  -- most responses carry none of them; the transport's table (exact) is
  -- plain and lower-case, so that is five look-ups
  if exact and h[R1] == nil and h[R2] == nil and h[R3] == nil and h[R4] == nil and h[R5] == nil then return nil end
  for i = 1, #REQUEST_ID do
    local name = REQUEST_ID[i]
    -- exact (the transport's table): most responses carry none of them,
    -- so look before calling get
    local v = (not exact or h[name] ~= nil) and get(h, name, exact)
    if v then
      v = one_line(v, 128)
      if v ~= "" then return v end
    end
  end
  return nil
end

local LIMIT = 1000000000

--- retry_after(h [, now]): seconds from Retry-After (delta-seconds, or an
-- HTTP-date relative to the response's Date, else to now), clamped to
-- [0, 1e9]; nil when absent or unreadable.
function M.retry_after(h, now)
  local v = get(h, "retry-after")
  if not v then return nil end
  v = v:match "^%s*(.-)%s*$"
  if v:match "^%d+$" then
    -- digits beyond the limit cannot change the (clamped) answer
    local n = tonumber(v:sub(1, 12))
    return math.min(n, LIMIT)
  end
  if not v:match "^%a" then return nil end
  local when = http_date(v)
  if not when then return nil end
  local base = http_date((get(h, "date") or ""):match "^%s*(.-)%s*$") or math.floor(now or os.time())
  return math.min(math.max(when - base, 0), LIMIT)
end

return M
