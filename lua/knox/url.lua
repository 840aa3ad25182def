--- knox.url: URL building for requests: RFC 3986 escaping, query and form
-- encoding (keys sorted, so URLs are stable), path templates ({name}
-- placeholders filled, each value escaped as one segment), base URL checks.
-- Raises knox.Error kind "usage" for values a URL cannot carry.
local usage = require("knox.errors").usage

local M = {}

-- RFC 3986 unreserved characters pass; everything else is %XX.
local function escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end
M.escape = escape

local function query_value(k, v)
  local t = math.type(v)
  if t == "integer" then return tostring(v) end
  if t == "float" then
    if v ~= v or v == math.huge or v == -math.huge then
      usage("query parameter '" .. k .. "' is not a finite number", 4)
    end
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return ("%d"):format(v) end
    return ("%.17g"):format(v)
  end
  if type(v) == "string" then return v end
  if type(v) == "boolean" then return tostring(v) end
  usage("query parameter '" .. k .. "' has a " .. type(v) .. " value", 4)
end

--- Encodes a query table: keys sorted (stable URLs), arrays as repeated
-- keys, RFC 3986 escaping. A string is taken as already encoded.
local function encode_query(q)
  if q == nil then return "" end
  if type(q) == "table" and next(q) == nil then return "" end
  if type(q) == "string" then return q ~= "" and ("?" .. q:gsub("^%?", "")) or "" end
  if type(q) ~= "table" then usage("query must be a table or a string", 3) end
  local keys = {}
  for k in pairs(q) do
    if type(k) ~= "string" then usage("query keys must be strings", 3) end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = q[k]
    if type(v) == "table" then
      local n = #v
      local count = 0
      for key in pairs(v) do
        count = count + 1
        if math.type(key) ~= "integer" or key < 1 or key > n then count = -1 break end
      end
      if count ~= n then usage("query parameter '" .. k .. "' must be a list (values as repeated keys)", 3) end
      for _, item in ipairs(v) do
        parts[#parts + 1] = escape(k) .. "=" .. escape(query_value(k, item))
      end
    else
      parts[#parts + 1] = escape(k) .. "=" .. escape(query_value(k, v))
    end
  end
  return #parts > 0 and ("?" .. table.concat(parts, "&")) or ""
end
M.encode_query = encode_query

--- encode_form(t): t as application/x-www-form-urlencoded text.
function M.encode_form(form)
  local q = encode_query(form)
  return q:sub(2)
end

--- Fills {name} placeholders from params (each value escaped as one path
-- segment) and escapes whatever else in the path is not allowed there,
-- leaving "/" and valid %XX escapes alone.
local function expand_path(path, params)
  -- most paths need nothing done
  if not path:find("[^%w%-%._~!$&'()*+,;=:@/]") then return path end
  path = path:gsub("{([%w_]+)}", function(name)
    local v = params and params[name]
    if v == nil then usage("path parameter '" .. name .. "' is missing", 5) end
    if type(v) ~= "string" and math.type(v) ~= "integer" then
      usage("path parameter '" .. name .. "' must be a string or an integer", 5)
    end
    v = tostring(v)
    if v == "" then usage("path parameter '" .. name .. "' is empty", 5) end
    -- libcurl would collapse these, sending the call to another endpoint
    if v == "." or v == ".." then usage("path parameter '" .. name .. "' must not be '.' or '..'", 5) end
    return escape(v)
  end)
  return (path:gsub("%%(%x?%x?)", function(hex)
    if #hex == 2 then return nil end
    return "%25" .. hex
  end):gsub("[^%w%-%._~!$&'()*+,;=:@/%%]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end
M.expand_path = expand_path

--- check_base(name, url): url without trailing slashes, or raises kind
-- "usage" when it is not an http(s) URL.
-- Whether an http:// URL's host is the loopback (the simulator, a local
-- proxy): 127.0.0.0/8, ::1 or localhost.
local function is_loopback(u)
  local authority = u:match "^[Hh][Tt][Tt][Pp]://([^/?#]*)"
  if not authority then return false end
  authority = authority:gsub("^.*@", "")
  local host = authority:match "^%[(.-)%]" or authority:match "^([^:]*)"
  host = host:lower()
  return host == "localhost" or host == "::1" or host:match "^127%.%d+%.%d+%.%d+$" ~= nil
end
M.is_loopback = is_loopback

--- check_base(name, url [, allow_insecure]): url without trailing "/",
-- or raises kind "usage". http:// is refused for any host but the loopback
-- (a token would travel in clear) unless allow_insecure is true.
function M.check_base(name, url, allow_insecure)
  if type(url) ~= "string" or not url:match "^[Hh][Tt][Tt][Pp][Ss]?://[^/]+" or url:find "[%s%c]" then
    usage("endpoint '" .. name .. "' must be an http(s) URL, got " .. tostring(url), 4)
  end
  if url:match "^[Hh][Tt][Tt][Pp]://" and not allow_insecure and not is_loopback(url) then
    usage(("endpoint '%s' is http:// to a host that is not the loopback: credentials would travel in clear; "
      .. "use https://, or allow_insecure_http = true if you really mean it"):format(name), 4)
  end
  return (url:gsub("/+$", ""))
end

return M
