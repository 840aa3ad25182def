--- A small scripted HTTP/1.1 server on 127.0.0.1 for the transport specs
-- and benchmarks. Run as a subprocess:
--
--   lua5.4 spec/support/httpd.lua [lifetime_seconds] > portfile
--
-- It prints "PORT <n>" once listening, serves connections concurrently
-- (coroutines over socket.select, keep-alive), and exits when its standard
-- input reaches end-of-file (the parent closed the pipe or died) or after
-- lifetime_seconds (default 300), whichever comes first.
--
-- Behaviour is chosen by path:
--   /echo             200; body = request body; x-echo-* headers describe the request
--   /status?code=N    status N with a short body
--   /headers          repeated, folded and secret-bearing response headers
--   /token            a token-endpoint-like JSON body and Set-Cookie (secrets)
--   /gzip?n=N         N bytes of text, gzip-encoded (Content-Encoding: gzip)
--   /big?n=N[&chunked=1]  N bytes, with Content-Length or chunked
--   /slow?ms=N        answers after N ms; x-later: requests received meanwhile
--   /stall            reads the request, never answers
--   /stall-body       sends headers and part of the body, then stalls
--   /truncated        Content-Length 1000, sends 500 bytes, closes
--   /reset-mid-body   Content-Length 100000, sends part, then resets (RST)
--   /empty            closes without any response
--   /stats[?reset=1]  "connections=C requests=R inflight_peak=P"
--   /many-headers?n=N[&distinct=1]  N 5-byte header lines "X:<digit>" (distinct=1:
--                     "X-Rep-<i>: v"), then a 2-byte body
--   /huge-header?bytes=N  one header line of about N bytes
--   /big-headers?bytes=N  about N bytes of 1000-byte header lines
local socket = require "socket"

local lifetime = tonumber(arg and arg[1]) or 300
local deadline = socket.gettime() + lifetime

local server = assert(socket.bind("127.0.0.1", 0, 128))
server:settimeout(0)
local _, port = server:getsockname()
io.stdout:write("PORT ", port, "\n")
io.stdout:flush()

local stats = { connections = 0, requests = 0, inflight = 0, peak = 0, resets = 0 }

-- Tasks: coroutines waiting for a socket to be readable/writable or a time.
local tasks = {}

local function wait(kind, sock, seconds)
  coroutine.yield(kind, sock, seconds)
end

local function sleep(seconds)
  wait("sleep", nil, seconds)
end

local function receive(c, pattern)
  local acc = ""
  while true do
    local data, err, partial = c:receive(pattern, acc)
    if data then return data end
    if err ~= "timeout" then return nil, err end
    acc = partial or ""
    wait("read", c)
  end
end

-- luasocket's prefix argument makes receive(n, prefix) return prefix..n
-- bytes, so count-based reads are done by hand.
local function receive_n(c, n)
  local parts, got = {}, 0
  while got < n do
    local data, err, partial = c:receive(n - got)
    local piece = data or partial
    if piece and #piece > 0 then
      parts[#parts + 1] = piece
      got = got + #piece
    end
    if not data then
      if err ~= "timeout" then return nil, err end
      if got < n then wait("read", c) end
    end
  end
  return table.concat(parts)
end

local function send(c, data)
  local i = 1
  while i <= #data do
    local last, err, partial = c:send(data, i)
    if last then
      i = last + 1
    else
      if err ~= "timeout" then return nil, err end
      i = partial + 1
      wait("write", c)
    end
  end
  return true
end

local function parse_query(target)
  local q = {}
  local qs = target:match("%?(.*)$")
  if qs then
    for k, v in qs:gmatch("([^&=]+)=?([^&]*)") do q[k] = v end
  end
  return q
end

local gzip_cache = {}
local function gzip_of(n)
  if gzip_cache[n] then return gzip_cache[n] end
  local text = string.rep("knox transport gzip line\n", n // 25 + 1):sub(1, n)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(text)
  f:close()
  local p = assert(io.popen("gzip -c -n " .. tmp, "r"))
  local gz = p:read("a")
  p:close()
  os.remove(tmp)
  gzip_cache[n] = gz
  return gz
end

local function date()
  return os.date("!%a, %d %b %Y %H:%M:%S GMT")
end

-- head: the request being answered is a HEAD, so no body follows
local function response(status, headers, body, head)
  local lines = { ("HTTP/1.1 %d X\r\nDate: %s\r\n"):format(status, date()) }
  for _, h in ipairs(headers) do lines[#lines + 1] = h[1] .. ": " .. h[2] .. "\r\n" end
  if body then lines[#lines + 1] = "Content-Length: " .. #body .. "\r\n" end
  lines[#lines + 1] = "\r\n"
  return table.concat(lines) .. (head and "" or body or "")
end

local function reset(c)
  c:setoption("linger", { on = true, timeout = 0 })
  c:close()
end

-- Handles one request; returns false when the connection must end.
local function handle(c, conn_id, req_no)
  local line, err = receive(c, "*l")
  if not line then return false, err end
  local method, target, version = line:match("^(%S+) (%S+) (HTTP/%d%.%d)$")
  if not method then return false end
  local headers, order = {}, {}
  while true do
    local h = receive(c, "*l")
    if not h then return false end
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
      order[#order + 1] = name
    end
  end
  local body = ""
  local len = tonumber(headers["content-length"] or "0")
  if headers["expect"] and headers["expect"]:lower() == "100-continue" then
    send(c, "HTTP/1.1 100 Continue\r\n\r\n")
  end
  if len and len > 0 then
    body = receive_n(c, len)
    if not body then return false end
  end
  stats.requests = stats.requests + 1
  local function reply(status, hdrs, text) return response(status, hdrs, text, method == "HEAD") end
  local proxied = target:match("^https?://") ~= nil
  local path = proxied and (target:match("^https?://[^/]+(/.*)$") or "/") or target
  local route = path:match("^[^?]*")
  local q = parse_query(path)
  local keep = (headers["connection"] or ""):lower() ~= "close" and version == "HTTP/1.1"

  if route == "/echo" then
    local out = {
      { "Content-Type", "application/octet-stream" },
      { "X-Echo-Method", method }, { "X-Echo-Target", target },
      { "X-Echo-Proxied", proxied and "1" or "0" },
      { "X-Conn", tostring(conn_id) }, { "X-Req", tostring(req_no) },
    }
    for _, name in ipairs(order) do
      out[#out + 1] = { "X-Echo-H-" .. name, headers[name] }
    end
    send(c, reply(200, out, body))
  elseif route == "/status" then
    local code = tonumber(q.code) or 200
    send(c, reply(code, { { "Content-Type", "text/plain" } }, "status " .. code))
  elseif route == "/headers" then
    send(c, "HTTP/1.1 200 OK\r\nDate: " .. date() .. "\r\n" ..
      "X-Multi: a\r\nx-multi: b\r\nX-MULTI: c\r\n" ..
      "X-Folded: first\r\n  second\r\n" ..
      "X-Spaces:    padded value   \r\n" ..
      "Set-Cookie: sid=SRV-COOKIE-1\r\nSet-Cookie: other=SRV-COOKIE-2\r\n" ..
      "Content-Length: 2\r\n\r\nok")
  elseif route == "/common" then
    -- common header names (the transport remembers their last short
    -- value) in odd cases, with a value from the query, once long
    local v = q.v or "x"
    send(c, "HTTP/1.1 200 OK\r\nSERVER: " .. v .. "\r\nETag: " .. v:rep(10) .. "\r\n" ..
      "content-TYPE: text/" .. v .. "\r\nVary: a\r\nVARY: " .. v .. "\r\nContent-Length: 2\r\n\r\nok")
  elseif route == "/token" then
    local json = '{"access_token":"SRV-SECRET-AT","refresh_token":"SRV-SECRET-RT",'
      .. '"accessToken":"SRV-SECRET-AT2","token_type":"Bearer","expires_in":3600,'
      .. '"nested":{"Private":"SRV-SECRET-PRIV"}}'
    send(c, reply(200, { { "Content-Type", "application/json" },
      { "Set-Cookie", "session=SRV-SECRET-COOKIE; HttpOnly" } }, json))
  elseif route == "/gzip" then
    local gz = gzip_of(tonumber(q.n) or 10000)
    send(c, reply(200, { { "Content-Encoding", "gzip" }, { "Content-Type", "text/plain" } }, gz))
  elseif route == "/big" then
    local n = tonumber(q.n) or 1000
    local chunk = string.rep("x", 65536)
    if q.chunked == "1" then
      send(c, "HTTP/1.1 200 OK\r\nDate: " .. date() .. "\r\nTransfer-Encoding: chunked\r\n\r\n")
      local left = n
      while left > 0 do
        local k = math.min(left, #chunk)
        if not send(c, ("%x\r\n"):format(k) .. chunk:sub(1, k) .. "\r\n") then return false end
        left = left - k
      end
      send(c, "0\r\n\r\n")
    else
      send(c, "HTTP/1.1 200 OK\r\nDate: " .. date() .. "\r\nContent-Length: " .. n .. "\r\n\r\n")
      local left = method == "HEAD" and 0 or n
      while left > 0 do
        local k = math.min(left, #chunk)
        if not send(c, chunk:sub(1, k)) then return false end
        left = left - k
      end
    end
  elseif route == "/slow" then
    stats.inflight = stats.inflight + 1
    if stats.inflight > stats.peak then stats.peak = stats.inflight end
    local arrived = stats.requests
    sleep((tonumber(q.ms) or 50) / 1000)
    stats.inflight = stats.inflight - 1
    send(c, reply(200, { { "Content-Type", "text/plain" },
      { "X-Later", tostring(stats.requests - arrived) } }, "slow " .. (q.id or "")))
  elseif route == "/stall" then
    sleep(60)
    return false
  elseif route == "/stall-body" then
    send(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" .. string.rep("s", 100))
    sleep(60)
    return false
  elseif route == "/truncated" then
    send(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" .. string.rep("t", 500))
    return false
  elseif route == "/reset-mid-body" then
    send(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" .. string.rep("r", 5000))
    sleep(0.05)
    reset(c)
    return false, "reset"
  elseif route == "/reset-now" then
    -- the request was read; the connection dies before any response byte
    stats.resets = stats.resets + 1
    reset(c)
    return false, "reset"
  elseif route == "/empty" then
    return false
  elseif route == "/many-headers" then
    local n, parts = tonumber(q.n) or 100, {}
    for i = 1, n do
      parts[i] = q.distinct == "1" and ("X-Rep-%d: v\r\n"):format(i) or ("X:%d\r\n"):format(i % 10)
    end
    send(c, "HTTP/1.1 200 OK\r\n" .. table.concat(parts) .. "Content-Length: 2\r\n\r\nok")
  elseif route == "/huge-header" then
    local n = tonumber(q.bytes) or 1000
    send(c, "HTTP/1.1 200 OK\r\nX-Huge: " .. string.rep("h", n) .. "\r\nContent-Length: 2\r\n\r\nok")
  elseif route == "/big-headers" then
    local n, parts = tonumber(q.bytes) or 1000, {}
    for i = 1, n // 1000 + 1 do parts[i] = ("X-Big-%06d: %s\r\n"):format(i, string.rep("b", 984)) end
    send(c, "HTTP/1.1 200 OK\r\n" .. table.concat(parts) .. "Content-Length: 2\r\n\r\nok")
  elseif route == "/stats" then
    local text = ("connections=%d requests=%d inflight_peak=%d resets=%d"):format(
      stats.connections, stats.requests, stats.peak, stats.resets)
    if q.reset == "1" then stats.peak = 0 end
    send(c, reply(200, { { "Content-Type", "text/plain" } }, text))
  else
    send(c, reply(404, { { "Content-Type", "text/plain" } }, "not found"))
  end
  return keep
end

local function serve(c, conn_id)
  local req_no = 0
  while true do
    req_no = req_no + 1
    local again, why = handle(c, conn_id, req_no)
    if not again then
      if why ~= "reset" then c:close() end
      return
    end
  end
end

local function spawn(fn, ...)
  local co = coroutine.create(fn)
  tasks[#tasks + 1] = { co = co, args = table.pack(...), kind = "start" }
end

-- Standard input as a select()able object: readable at EOF.
local stdin = { getfd = function() return 0 end, dirty = function() return false end }

while socket.gettime() < deadline do
  local readers, writers = { server, stdin }, {}
  local now = socket.gettime()
  local timeout = math.min(1, deadline - now)
  for _, t in ipairs(tasks) do
    if t.kind == "read" then readers[#readers + 1] = t.sock
    elseif t.kind == "write" then writers[#writers + 1] = t.sock
    elseif t.kind == "sleep" then timeout = math.min(timeout, math.max(0, t.wake - now))
    elseif t.kind == "start" then timeout = 0 end
  end
  local r, w = socket.select(readers, writers, timeout)
  if r[stdin] then
    if io.stdin:read(1) == nil then break end
  end
  if r[server] then
    while true do
      local c = server:accept()
      if not c then break end
      c:settimeout(0)
      c:setoption("tcp-nodelay", true)
      stats.connections = stats.connections + 1
      spawn(serve, c, stats.connections)
    end
  end
  now = socket.gettime()
  local still = {}
  for _, t in ipairs(tasks) do
    local ready = t.kind == "start"
      or (t.kind == "read" and (r[t.sock] or (t.sock.dirty and t.sock:dirty())))
      or (t.kind == "write" and w[t.sock])
      or (t.kind == "sleep" and now >= t.wake)
    if ready then
      local ok, kind, sock, seconds
      if t.kind == "start" then
        ok, kind, sock, seconds = coroutine.resume(t.co, table.unpack(t.args, 1, t.args.n))
      else
        ok, kind, sock, seconds = coroutine.resume(t.co)
      end
      if not ok then
        io.stderr:write("httpd: ", tostring(kind), "\n")
      elseif coroutine.status(t.co) ~= "dead" then
        t.kind, t.sock = kind, sock
        if kind == "sleep" then t.wake = now + seconds end
        still[#still + 1] = t
      end
    else
      still[#still + 1] = t
    end
  end
  tasks = still
end
server:close()
