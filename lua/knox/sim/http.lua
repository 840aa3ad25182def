--- knox.sim's HTTP/1.1 server: accepts connections (optionally TLS via
-- luasec), parses requests (Content-Length or chunked bodies, Expect:
-- 100-continue, pipelining, keep-alive) with bounded sizes and deadlines,
-- and writes responses that always carry Date, Content-Type and
-- Content-Length. What a request means is the handler's business; this file
-- only frames bytes, and answers framing errors through on_error.
local socket = require "socket"

local gettime = socket.gettime
local find, sub, lower, byte = string.find, string.sub, string.lower, string.byte

local M = {}

M.LIMITS = {
  header_bytes = 32 * 1024,    -- request line + headers (431 beyond)
  header_count = 100,
  body_bytes = 4 * 1024 * 1024, -- decoded body (413 beyond)
  idle_timeout = 30,           -- seconds a kept-alive connection may sit idle
  request_timeout = 30,        -- seconds to receive one whole request
  handshake_timeout = 10,
  write_timeout = 30,
  max_connections = 900,       -- stays below select()'s FD_SETSIZE
}

local REASONS = {
  [100] = "Continue", [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [206] = "Partial Content", [301] = "Moved Permanently", [302] = "Found", [304] = "Not Modified",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [406] = "Not Acceptable", [408] = "Request Timeout", [409] = "Conflict",
  [411] = "Length Required", [412] = "Precondition Failed", [413] = "Payload Too Large",
  [415] = "Unsupported Media Type", [417] = "Expectation Failed", [422] = "Unprocessable Entity",
  [429] = "Too Many Requests", [431] = "Request Header Fields Too Large", [500] = "Internal Server Error",
  [501] = "Not Implemented", [502] = "Bad Gateway", [503] = "Service Unavailable", [504] = "Gateway Timeout",
  [505] = "HTTP Version Not Supported",
}
M.REASONS = REASONS

local RECV = 65536

-- A connection: the socket (plain or TLS), unread bytes, and bookkeeping.
local Conn = {}
Conn.__index = Conn

--- (Coroutine.) Reads more bytes into c.buf; false, why on close/timeout.
function Conn:fill(deadline)
  while true do
    local data, err, partial = self.sock:receive(RECV)
    local got = data or partial
    if got and #got > 0 then
      self.buf = self.buf .. got
      return true
    end
    if err == "timeout" or err == "wantread" then
      if not self.loop:wait_read(self.sock, deadline) then return false, "timeout" end
    elseif err == "wantwrite" then
      if not self.loop:wait_write(self.sock, deadline) then return false, "timeout" end
    else
      return false, err or "closed"
    end
  end
end

--- (Coroutine.) Sends all of data; false on error or timeout.
function Conn:send(data)
  local i, n = 1, #data
  local deadline = gettime() + M.LIMITS.write_timeout
  while i <= n do
    local last, err, lastp = self.sock:send(data, i)
    if last then
      i = last + 1
    else
      if lastp and lastp >= i then i = lastp + 1 end
      if err == "timeout" or err == "wantwrite" then
        if not self.loop:wait_write(self.sock, deadline) then return false end
      elseif err == "wantread" then
        if not self.loop:wait_read(self.sock, deadline) then return false end
      else
        return false
      end
    end
  end
  return true
end

--- Closes at once; with rst, makes the kernel send a TCP reset.
function Conn:close(rst)
  if self.closed then return end
  self.closed = true
  self.loop:forget(self.sock)
  if rst and not self.tls then pcall(self.sock.setoption, self.sock, "linger", { on = true, timeout = 0 }) end
  self.sock:close()
end

--- (Coroutine.) Half-closes and drains what the client still sends, so
-- closing with unread input cannot turn the last response into a reset.
function Conn:lingering_close()
  if self.closed then return end
  if not self.tls and self.sock:shutdown("send") then
    local deadline, drained = gettime() + 2, 0
    self.buf = ""
    while drained < 1024 * 1024 do
      local ok = self:fill(deadline)
      if not ok then break end
      drained = drained + #self.buf
      self.buf = ""
    end
  end
  self:close()
end

-- A framing failure: answer with status (through on_error) and close.
local function reject(status, message, req)
  return nil, { status = status, message = message, req = req }
end

local TOKEN = "^[%w!#$%%&'*+%-.^_`|~]+$"

local function parse_head(head)
  local lines, pos = {}, 1
  while true do
    local s, e = find(head, "\r?\n", pos)
    if not s then
      lines[#lines + 1] = sub(head, pos)
      break
    end
    lines[#lines + 1] = sub(head, pos, s - 1)
    pos = e + 1
  end
  local method, target, major, minor = lines[1]:match("^(%S+) (%S+) HTTP/(%d)%.(%d)$")
  if not method then return reject(400, "malformed request line") end
  if not method:match(TOKEN) then return reject(400, "malformed method") end
  local req = { method = method, target = target, version = major .. "." .. minor,
    headers = {}, header_list = {} }
  if major ~= "1" then return reject(505, "HTTP/" .. req.version .. " is not supported", req) end
  if #lines - 1 > M.LIMITS.header_count then return reject(431, "too many header fields", req) end
  for i = 2, #lines do
    local line = lines[i]
    local b = byte(line, 1)
    if b == 32 or b == 9 then return reject(400, "obsolete header line folding", req) end
    local name, value = line:match("^([^:]+):[ \t]*(.-)[ \t]*$")
    if not name or not name:match(TOKEN) then return reject(400, "malformed header field", req) end
    if find(value, "[%z\1-\8\10-\31\127]") then return reject(400, "control character in header value", req) end
    local key = lower(name)
    local list = req.header_list
    list[#list + 1] = { name, value }
    local old = req.headers[key]
    req.headers[key] = old and (old .. ", " .. value) or value
  end
  local path, query = target, nil
  if not find(target, "^/") then
    local abs = target:match("^[hH][tT][tT][pP][sS]?://[^/?#]*(.*)$")
    if not abs then return reject(400, "request target must be a path", req) end
    path = abs == "" and "/" or abs
  end
  local q = find(path, "?", 1, true)
  if q then path, query = sub(path, 1, q - 1), sub(path, q + 1) end
  path = path:gsub("#.*$", "")
  req.path, req.query = path, query or ""
  if req.version == "1.1" and not req.headers.host then return reject(400, "missing Host header", req) end
  return req
end

local function body_length(req)
  local te, cl = req.headers["transfer-encoding"], req.headers["content-length"]
  if te then
    if cl then return reject(400, "both Transfer-Encoding and Content-Length", req) end
    if lower(te) ~= "chunked" then return reject(501, "unsupported Transfer-Encoding: " .. te, req) end
    return "chunked"
  end
  if not cl then return 0 end
  local n
  for part in cl:gmatch("[^,]+") do
    local v = part:match("^%s*(%d+)%s*$")
    if not v or #v > 15 or (n and n ~= tonumber(v)) then return reject(400, "invalid Content-Length", req) end
    n = tonumber(v)
  end
  if not n then return reject(400, "invalid Content-Length", req) end
  return n
end

-- (Coroutine.) Takes exactly n bytes from the connection.
local function read_exact(c, n, deadline)
  local parts, have = {}, 0
  while have < n do
    if #c.buf == 0 then
      local ok = c:fill(deadline)
      if not ok then return nil end
    end
    local take = math.min(n - have, #c.buf)
    parts[#parts + 1] = sub(c.buf, 1, take)
    c.buf = sub(c.buf, take + 1)
    have = have + take
  end
  return table.concat(parts)
end

-- (Coroutine.) Takes one CRLF-terminated line (without it), bounded.
local function read_line(c, deadline, max)
  while true do
    local s, e = find(c.buf, "\r?\n")
    if s then
      local line = sub(c.buf, 1, s - 1)
      c.buf = sub(c.buf, e + 1)
      return line
    end
    if #c.buf > max then return nil, "too long" end
    local ok = c:fill(deadline)
    if not ok then return nil end
  end
end

local function read_chunked(c, req, deadline)
  local parts, total = {}, 0
  while true do
    local line, why = read_line(c, deadline, 1024)
    if not line then return reject(why and 400 or 408, why and "chunk header too long" or "incomplete body", req) end
    local hex = line:match("^(%x+)[ \t]*;?.*$")
    if not hex or #hex > 8 then return reject(400, "malformed chunk size", req) end
    local size = tonumber(hex, 16)
    if size == 0 then break end
    total = total + size
    if total > M.LIMITS.body_bytes then return reject(413, "request body larger than "
      .. M.LIMITS.body_bytes .. " bytes", req) end
    local data = read_exact(c, size, deadline)
    if not data then return reject(408, "incomplete body", req) end
    parts[#parts + 1] = data
    local crlf = read_line(c, deadline, 2)
    if crlf ~= "" then return reject(400, "malformed chunk", req) end
  end
  local trailer_bytes = 0
  while true do  -- trailers are read and discarded
    local line = read_line(c, deadline, M.LIMITS.header_bytes)
    if not line then return reject(400, "malformed trailer", req) end
    if line == "" then break end
    trailer_bytes = trailer_bytes + #line
    if trailer_bytes > M.LIMITS.header_bytes then return reject(431, "trailers too large", req) end
  end
  return table.concat(parts)
end

--- (Coroutine.) Reads one request. Returns req; or nil, nil when the
-- client closed (or idled out) between requests; or nil, failure.
function Conn:read_request()
  local L = M.LIMITS
  local deadline = gettime() + L.idle_timeout
  local started = false
  local head_end, body_start
  local from = 1
  while true do
    if not started then
      local junk = find(self.buf, "[^\r\n]")  -- stray CRLFs between requests are ignored
      if junk then
        if junk > 1 then self.buf = sub(self.buf, junk) end
        started = true
        deadline = gettime() + L.request_timeout
      else
        self.buf = ""
      end
    end
    if started then
      local s, e = find(self.buf, "\r?\n\r?\n", from)
      if s then
        head_end, body_start = s - 1, e + 1
        break
      end
      if #self.buf > L.header_bytes then return reject(431, "request header fields too large") end
      from = math.max(1, #self.buf - 3)
    end
    local ok, why = self:fill(deadline)
    if not ok then
      if not started then return nil, nil end
      if why == "timeout" then return reject(408, "request not received in time") end
      return nil, nil
    end
  end
  if head_end > L.header_bytes then return reject(431, "request header fields too large") end
  local head = sub(self.buf, 1, head_end)
  self.buf = sub(self.buf, body_start)
  local req, failure = parse_head(head)
  if not req then return nil, failure end
  local len
  len, failure = body_length(req)
  if not len then return nil, failure end
  if len ~= "chunked" and len > L.body_bytes then
    return reject(413, "request body larger than " .. L.body_bytes .. " bytes", req)
  end
  local expect = req.headers.expect
  if expect then
    if lower(expect) ~= "100-continue" then return reject(417, "unsupported Expect: " .. expect, req) end
    if req.version == "1.1" and len ~= 0 and #self.buf == 0 and not self:send("HTTP/1.1 100 Continue\r\n\r\n") then
      return nil, nil
    end
  end
  if len == "chunked" then
    local body
    body, failure = read_chunked(self, req, deadline)
    if not body then return nil, failure end
    req.body = body
  elseif len > 0 then
    req.body = read_exact(self, len, deadline)
    if not req.body then return reject(408, "incomplete body", req) end
  else
    req.body = ""
  end
  local conn_hdr = lower(req.headers.connection or "")
  if req.version == "1.0" then
    req.keep_alive = find(conn_hdr, "keep-alive", 1, true) ~= nil
  else
    req.keep_alive = not find(conn_hdr, "close", 1, true)
  end
  req.conn_id = self.id
  return req
end

--- (Coroutine.) Writes resp = { status, headers = { [Name] = value },
-- body, close, truncate, reset }. truncate sends half the body then closes;
-- reset sends the head and half the body then resets the connection (TCP
-- RST); reset = "early" resets before sending anything. Returns true when
-- the connection may carry another request.
function Conn:respond(req, resp, date)
  if resp.reset == "early" then
    self:close(true)
    return false
  end
  local status = resp.status or 200
  local body = resp.body or ""
  local keep = req and req.keep_alive and not resp.close and not resp.truncate and not resp.reset
  local h = {
    "HTTP/1.1 ", tostring(status), " ", REASONS[status] or "Unknown", "\r\n",
    "Date: ", date, "\r\n",
    "Server: knox-sim\r\n",
    "Content-Length: ", tostring(#body), "\r\n",
  }
  local headers = resp.headers or {}
  if not headers["Content-Type"] then h[#h + 1] = "Content-Type: application/json\r\n" end
  local names = {}
  for name in pairs(headers) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    h[#h + 1] = name .. ": " .. tostring(headers[name]) .. "\r\n"
  end
  h[#h + 1] = keep and "Connection: keep-alive\r\n\r\n" or "Connection: close\r\n\r\n"
  local out = table.concat(h)
  if req and req.method == "HEAD" then
    body = ""
  elseif resp.truncate or resp.reset then
    body = sub(body, 1, #body // 2)
  end
  if not self:send(out .. body) then
    self:close()
    return false
  end
  if resp.reset then
    -- Mid-response: let the bytes reach the client, then reset.
    self.loop:sleep(0.02)
    self:close(true)
    return false
  end
  if resp.truncate then
    self:close()
    return false
  end
  return keep
end

-- (Coroutine.) One connection, from TLS handshake to close.
local function serve(c, opts)
  if c.tls then
    local deadline = gettime() + M.LIMITS.handshake_timeout
    while true do
      local ok, err = c.sock:dohandshake()
      if ok then break end
      local waited
      if err == "wantread" or err == "timeout" then
        waited = c.loop:wait_read(c.sock, deadline)
      elseif err == "wantwrite" then
        waited = c.loop:wait_write(c.sock, deadline)
      end
      if not waited then
        c:close()
        return
      end
    end
  end
  while not c.closed do
    local req, failure = c:read_request()
    if not req then
      if failure then
        c:respond(failure.req, opts.on_error(failure.status, failure.message, failure.req), opts.date())
        c:lingering_close()
      else
        c:close()
      end
      return
    end
    local ok, resp = xpcall(opts.handler, debug.traceback, req, c)
    if not ok then
      opts.log("handler error: " .. tostring(resp))
      resp = opts.on_error(500, "internal error", req)
      resp.close = true
    end
    if c.closed then return end
    if not c:respond(req, resp, opts.date()) then
      if not c.closed then c:lingering_close() end
      return
    end
  end
end

--- Binds host:port (0 = any free port). Returns the listening socket.
function M.listen(host, port)
  local server, err = socket.tcp()
  if not server then return nil, err end
  server:setoption("reuseaddr", true)
  local ok
  ok, err = server:bind(host, port)
  if not ok then
    server:close()
    return nil, err
  end
  ok, err = server:listen(128)
  if not ok then
    server:close()
    return nil, err
  end
  server:settimeout(0)
  return server
end

--- Starts accepting on server within loop. opts: handler(req, conn) ->
-- resp; on_error(status, message, req) -> resp; date() -> HTTP date;
-- log(msg); tls (a luasec context, optional); on_accept(conn) optional.
function M.serve(loop, server, opts)
  local ssl = opts.tls and require "ssl"
  local open, next_id = 0, 0
  opts.log = opts.log or function(msg) io.stderr:write("knox-sim: ", msg, "\n") end
  -- `open` counts a connection from its accept (not from when its
  -- coroutine first runs), so a burst cannot take the process past the cap
  -- and past what select() can watch
  local function run_conn(c)
    local ok, err = pcall(serve, c, opts)
    open = open - 1
    if not ok then opts.log("connection " .. c.id .. ": " .. tostring(err)) end
    if not c.closed then pcall(c.close, c) end
  end
  loop:spawn(function()
    while true do
      if open < M.LIMITS.max_connections then
        local client = server:accept()
        while client do
          client:settimeout(0)
          client:setoption("tcp-nodelay", true)
          next_id = next_id + 1
          local c = setmetatable({ sock = client, buf = "", id = next_id, loop = loop }, Conn)
          if ssl then
            local wrapped, err = ssl.wrap(client, opts.tls)
            if wrapped then
              wrapped:settimeout(0)
              c.sock, c.tls = wrapped, true
            else
              opts.log("TLS wrap failed: " .. tostring(err))
              client:close()
              c = nil
            end
          end
          if c then
            open = open + 1
            loop:spawn(run_conn, c)
          end
          if open >= M.LIMITS.max_connections then break end
          client = server:accept()
        end
        loop:wait_read(server)
      else
        loop:sleep(0.05)  -- at the connection cap: leave new ones in the backlog
      end
    end
  end)
end

return M
