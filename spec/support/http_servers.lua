--- Starts and stops the loopback servers the transport specs and benches
-- use: the scripted Lua server (spec/support/httpd.lua) and Debian's nginx.
-- Each server is a child process whose standard input is a pipe from us:
-- closing it (stop(), or this process dying) ends the server, and each one
-- also ends by itself after a bounded lifetime.
local socket = require "socket"

local M = {}

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Writes text to path and returns the path.
local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end
M.write_file = write_file
M.read_file = read_file

local function wait_for(fn, what, seconds)
  local limit = socket.gettime() + (seconds or 10)
  while socket.gettime() < limit do
    local v = fn()
    if v then return v end
    socket.sleep(0.02)
  end
  error("timed out waiting for " .. what)
end

--- A fresh private directory under /tmp.
function M.tmpdir()
  local p = assert(io.popen("mktemp -d /tmp/knox-http.XXXXXX", "r"))
  local dir = p:read("l")
  p:close()
  return dir
end

function M.rmdir(dir)
  if dir and dir:match("^/tmp/knox%-http%.") then os.execute("rm -rf '" .. dir .. "'") end
end

--- A port nobody listens on (bound, then closed).
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

--- Starts spec/support/httpd.lua; returns { port=, url=fn(path), stop=fn }.
function M.httpd(lifetime)
  local out = os.tmpname()
  local cmd = ("exec lua5.4 %shttpd.lua %d > %s"):format(here, lifetime or 300, out)
  local pipe = assert(io.popen(cmd, "w"))
  local port = wait_for(function()
    local s = read_file(out)
    return s and tonumber(s:match("PORT (%d+)"))
  end, "httpd")
  local srv = { port = port }
  function srv.url(path) return ("http://127.0.0.1:%d%s"):format(port, path) end
  function srv.stop()
    if pipe then pipe:close() end
    pipe = nil
    os.remove(out)
  end
  return srv
end

--- Creates a CA and a server certificate for 127.0.0.1/localhost with the
-- openssl command in dir; returns { ca=, cert=, key= } paths.
function M.make_certs(dir)
  local function run(cmd)
    assert(os.execute(cmd .. " >/dev/null 2>&1"), "failed: " .. cmd)
  end
  local ca_key, ca = dir .. "/ca.key", dir .. "/ca.pem"
  local key, csr, cert = dir .. "/server.key", dir .. "/server.csr", dir .. "/server.pem"
  write_file(dir .. "/ext.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    .. "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
  run(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=knox test CA' -keyout %s -out %s")
    :format(ca_key, ca))
  run(("openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout %s -out %s"):format(key, csr))
  run(("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -days 2 -extfile %s -out %s")
    :format(csr, ca, ca_key, dir .. "/ext.cnf", cert))
  return { ca = ca, cert = cert, key = key }
end

local function port_open(port)
  local c = socket.tcp()
  c:settimeout(0.2)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok
end

--- Starts nginx (Debian nginx-light) on loopback. opts: dir (private temp
-- dir), certs (from make_certs; enables an https listener with HTTP/2),
-- locations (nginx config text for the server blocks), lifetime seconds.
-- Returns { http_port=, https_port=, stop=fn }.
function M.nginx(opts)
  local dir = opts.dir
  local http_port, https_port = M.free_port(), opts.certs and M.free_port()
  local conf = {
    "daemon off;", "worker_processes 1;", "pid " .. dir .. "/nginx.pid;",
    "error_log " .. dir .. "/error.log warn;", "events { worker_connections 1024; }",
    "http {", "  access_log off;", "  default_type application/octet-stream;",
    "  client_body_temp_path " .. dir .. "/body;", "  proxy_temp_path " .. dir .. "/proxy;",
    "  fastcgi_temp_path " .. dir .. "/fastcgi;", "  uwsgi_temp_path " .. dir .. "/uwsgi;",
    "  scgi_temp_path " .. dir .. "/scgi;",
    "  keepalive_requests 100000;", "  keepalive_timeout 60s;",
    "  server {", "    listen 127.0.0.1:" .. http_port .. ";", "    root " .. dir .. "/www;",
    opts.locations or "", "  }",
  }
  if opts.certs then
    for _, l in ipairs {
      "  server {", "    listen 127.0.0.1:" .. https_port .. " ssl http2;",
      "    ssl_certificate " .. opts.certs.cert .. ";", "    ssl_certificate_key " .. opts.certs.key .. ";",
      "    root " .. dir .. "/www;", opts.locations or "", "  }",
    } do conf[#conf + 1] = l end
  end
  conf[#conf + 1] = "}"
  os.execute("mkdir -p '" .. dir .. "/www'")
  write_file(dir .. "/nginx.conf", table.concat(conf, "\n") .. "\n")
  -- user root would be refused without it when we are root
  if io.popen("id -u"):read("l") == "0" then
    write_file(dir .. "/nginx.conf", "user root;\n" .. read_file(dir .. "/nginx.conf"))
  end
  local cmd = ("exec sh -c 'timeout %d /usr/sbin/nginx -p %s -c %s/nginx.conf & p=$!; "
    .. "cat >/dev/null; kill $p 2>/dev/null; wait $p' >/dev/null 2>&1")
    :format(opts.lifetime or 300, dir, dir)
  local pipe = assert(io.popen(cmd, "w"))
  local ok, err = pcall(wait_for, function()
    return port_open(http_port) and (not https_port or port_open(https_port))
  end, "nginx", 10)
  if not ok then
    pipe:close()
    error(err .. ": " .. (read_file(dir .. "/error.log") or ""))
  end
  return {
    http_port = http_port, https_port = https_port,
    stop = function()
      if pipe then pipe:close() end
      pipe = nil
    end,
  }
end

-- For the benches -------------------------------------------------------

--- Runs a shell command; returns whether it succeeded and its stdout.
function M.sh(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

--- The median of a list of numbers.
function M.median(t)
  local s = { table.unpack(t) }
  table.sort(s)
  return s[(#s + 1) // 2]
end

--- A Knox-like device page of about 1.3 KB, its list under list_key.
function M.device_page(list_key)
  local devices = {}
  for i = 1, 6 do
    devices[i] = ('{"deviceUid":"35%013d","model":"SM-G99%dB","profileId":"a1b2c3d4e5f6%04d",'
      .. '"state":"Assigned","updateTime":1763700000%03d}'):format(i * 7919, i, i, i)
  end
  local doc = '{"totalCount":6,"pageNum":0,"pageSize":100,"' .. list_key .. '":['
    .. table.concat(devices, ",") .. "]}"
  return doc .. string.rep(" ", math.max(0, 1330 - #doc))
end

return M
