--- Starts and stops the Knox simulator for specs, and talks to it with
-- plain luasocket (never with knox):
--
--   local sim = require "support.sim"
--   local s = sim.start { devices = 10 }     -- s.url, s.keys_file, s.client_id, s.oauth, ...
--   s:fault { match = { path = "/kcs/v1/kme/devices/list" }, status = 429, retry_after = 1 }
--   s:clock(1900); s:requests(); s:reset(); s:stop()
--
-- The simulator runs as a subprocess (io.popen in "w" mode, stdout to a
-- temporary file) started with --stdin-eof, so s:stop() -- closing its
-- stdin -- ends it, and with --max-lifetime so a forgotten one ends itself.
local socket = require "socket"
local cjson = require "cjson"
local mime = require "mime"

local helpers = require "helpers"

local M = {}

local ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/spec/support/sim%.lua$")) or "."
M.ROOT = ROOT
M.LUA = os.getenv("LUA") or "lua5.4"

-- `make check` preloads the ASan/UBSan runtime into every child process.
-- The simulator and command-line tools are not what it checks (knox.core
-- is), and curl hangs with libasan preloaded, so children run without it.
M.ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS "

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = quote

local read_file = require("support.http_servers").read_file
M.read_file = read_file

function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

function M.b64url(s)
  return (mime.b64(s):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" }))
end

-- HTTP client ------------------------------------------------------------

local Conn = {}
Conn.__index = Conn

--- Opens a connection to base ("http://127.0.0.1:PORT" or https, verified
-- against ca_file). Raises on failure.
function M.connect(base, ca_file, timeout)
  local scheme, host, port = base:match("^(https?)://([^:/]+):(%d+)")
  assert(scheme, "bad base URL " .. tostring(base))
  local sock = socket.tcp()
  sock:settimeout(timeout or 10)
  assert(sock:connect(host, tonumber(port)))
  if scheme == "https" then
    local ssl = require "ssl"
    sock = assert(ssl.wrap(sock, { mode = "client", protocol = "any", verify = "peer", cafile = ca_file,
      options = "all" }))
    sock:settimeout(timeout or 10)
    assert(sock:dohandshake())
  end
  return setmetatable({ sock = sock, host = host .. ":" .. port }, Conn)
end

--- Sends raw bytes.
function Conn:send(data)
  return self.sock:send(data)
end

--- Reads one response: { status, headers (lower-case names), body, json,
-- raw_head }; or nil, err when the connection fails first.
function Conn:read_response(head_only)
  local line, err = self.sock:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then return nil, "bad status line: " .. line end
  local resp = { status = status, headers = {}, status_line = line }
  while true do
    local h
    h, err = self.sock:receive("*l")
    if not h then return nil, err end
    if h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.-)%s*$")
    resp.headers[k:lower()] = v
  end
  if status == 100 then return resp end
  local len = tonumber(resp.headers["content-length"])
  if head_only or not len or len == 0 then
    resp.body = ""
  else
    local body, e, partial = self.sock:receive(len)
    resp.body = body or partial
    if not body then resp.error = e end
  end
  if (resp.headers["content-type"] or ""):find("json", 1, true) and resp.body ~= "" then
    local ok, v = pcall(cjson.decode, resp.body)
    if ok then resp.json = v end
  end
  return resp
end

--- Sends a request and reads its response. opts: headers = {}, body
-- (string, or a table sent as JSON), form = {} (urlencoded), close.
function Conn:request(method, path, opts)
  opts = opts or {}
  local headers, body = {}, opts.body
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  if type(body) == "table" then
    body = cjson.encode(body)
    headers["Content-Type"] = headers["Content-Type"] or "application/json"
  elseif opts.form then
    local parts = {}
    for k, v in pairs(opts.form) do
      parts[#parts + 1] = k .. "=" .. tostring(v):gsub("[^%w%-._~]", function(c)
        return string.format("%%%02X", c:byte())
      end)
    end
    body = table.concat(parts, "&")
    headers["Content-Type"] = headers["Content-Type"] or "application/x-www-form-urlencoded"
  end
  local out = { method, " ", path, " HTTP/1.1\r\nHost: ", self.host, "\r\n" }
  if opts.close then out[#out + 1] = "Connection: close\r\n" end
  for k, v in pairs(headers) do out[#out + 1] = k .. ": " .. v .. "\r\n" end
  if body then out[#out + 1] = "Content-Length: " .. #body .. "\r\n" end
  out[#out + 1] = "\r\n"
  out[#out + 1] = body or ""
  assert(self.sock:send(table.concat(out)))
  return self:read_response(method == "HEAD")
end

function Conn:close()
  self.sock:close()
end

-- The simulator process ------------------------------------------------------

local Sim = {}
Sim.__index = Sim

--- One request on a fresh connection (see Conn:request).
function Sim:request(method, path, opts)
  local c = M.connect(self.url, self.ca_file)
  local resp, err = c:request(method, path, opts)
  c:close()
  assert(resp, err)
  return resp
end

--- A keep-alive connection to the simulator.
function Sim:connect(timeout)
  return M.connect(self.url, self.ca_file, timeout)
end

local function control(self, method, path, body)
  local r = self:request(method, path, { body = body })
  assert(r.status == 200, "simulator control " .. path .. ": HTTP " .. r.status .. " " .. tostring(r.body))
  return r.json
end

--- Queues a fault (see lua/knox/sim/faults.lua); returns its id.
function Sim:fault(spec)
  return control(self, "POST", "/__sim/faults", spec).id
end

--- Advances the simulator's clock; returns its new time.
function Sim:clock(seconds)
  return control(self, "POST", "/__sim/clock", { advance = seconds }).now
end

--- The requests clients sent (optionally ?since=&path=&limit= as a table).
function Sim:requests(filter)
  local q = {}
  for k, v in pairs(filter or {}) do
    q[#q + 1] = k .. "=" .. tostring(v):gsub("[^%w%-._~]", function(c) return string.format("%%%02X", c:byte()) end)
  end
  return control(self, "GET", "/__sim/requests" .. (#q > 0 and ("?" .. table.concat(q, "&")) or "")).requests
end

--- Fresh state, no tokens, faults, requests or clock offset.
function Sim:reset()
  control(self, "POST", "/__sim/reset", {})
end

--- Stops the simulator (closes its stdin and waits for it to exit).
function Sim:stop()
  if self.proc then
    self.proc:close()
    self.proc = nil
    os.remove(self.out_file)
    os.remove(self.err_file)
  end
end

--- The simulator's stderr so far.
function Sim:stderr()
  return read_file(self.err_file) or ""
end

local function random_hex(n)
  local t = {}
  local f = io.open("/dev/urandom", "rb")
  local bytes = f:read(n)
  f:close()
  for i = 1, n do t[i] = string.format("%02x", bytes:byte(i)) end
  return table.concat(t)
end

--- The command line for the simulator with these options (see start).
function M.command(opts)
  -- the installed tree's bin/knox-sim (a LuaRocks wrapper) under `make test-rock`
  local args = helpers.TREE and { helpers.TREE .. "/bin/knox-sim" } or { M.LUA, ROOT .. "/bin/knox-sim" }
  args[#args + 1] = "--port"
  args[#args + 1] = opts.port or 0
  if opts.stdin_eof ~= false then args[#args + 1] = "--stdin-eof" end
  if opts.max_lifetime ~= false then
    args[#args + 1] = "--max-lifetime"
    args[#args + 1] = opts.max_lifetime or 600
  end
  for _, k in ipairs { "devices", "seed", "latency_ms", "host", "cert", "key" } do
    if opts[k] then
      args[#args + 1] = "--" .. k:gsub("_", "-")
      args[#args + 1] = opts[k]
    end
  end
  if opts.tls then args[#args + 1] = "--tls" end
  for _, k in ipairs(opts.keys or {}) do
    args[#args + 1] = "--keys"
    args[#args + 1] = k.file
    args[#args + 1] = "--client-id"
    args[#args + 1] = k.client_id
  end
  for _, c in ipairs(opts.oauth_clients or {}) do
    args[#args + 1] = "--oauth-client"
    args[#args + 1] = c.client_id .. ":" .. c.client_secret .. ":" .. (c.scope or "")
  end
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  local q = {}
  for i, a in ipairs(args) do q[i] = quote(a) end
  return table.concat(q, " ")
end

--- Starts a simulator. opts: devices, seed, tls, cert, key, latency_ms,
-- keys = { { file, client_id } }, oauth = { client_id, client_secret,
-- scope } or false (default: one client with every scope), args = { extra
-- flags }, max_lifetime (default 600 s), start_timeout (default 15 s).
-- Returns s with url, keys_file, client_id, oauth, customer_id,
-- reseller_id, ca_file, info.
function M.start(opts)
  opts = opts or {}
  local oauth = opts.oauth
  if oauth == nil then
    oauth = { client_id = "spec-oauth-" .. random_hex(4), client_secret = random_hex(16), scope = "" }
  end
  local clients = {}
  if oauth then clients[1] = oauth end
  for _, c in ipairs(opts.oauth_clients or {}) do clients[#clients + 1] = c end
  local cmd_opts = {}
  for k, v in pairs(opts) do cmd_opts[k] = v end
  cmd_opts.oauth_clients = clients
  local out_file, err_file = os.tmpname(), os.tmpname()
  local cmd = "exec " .. M.ENV .. M.command(cmd_opts) .. " >" .. quote(out_file) .. " 2>" .. quote(err_file)
  local proc = assert(io.popen(cmd, "w"))
  local s = setmetatable({ proc = proc, out_file = out_file, err_file = err_file }, Sim)
  local deadline = socket.gettime() + (opts.start_timeout or 15)
  local first
  while socket.gettime() < deadline do
    local text = read_file(out_file) or ""
    first = text:match("^([^\n]*)\n")
    if first then break end
    socket.sleep(0.01)
  end
  if not first then
    local err = read_file(err_file) or ""
    s:stop()
    error("the simulator did not start: " .. err)
  end
  s.first_line = first
  s.url = first:match("^knox%-sim listening on (%S+)$")
  if not s.url then
    s:stop()
    error("unexpected first line from the simulator: " .. first)
  end
  s.port = tonumber(s.url:match(":(%d+)$"))
  s.ca_file = opts.tls and (opts.cert or nil) or nil
  if opts.tls and not opts.cert then
    -- The generated certificate's path is on a later stdout line.
    while socket.gettime() < deadline do
      local text = read_file(out_file) or ""
      s.ca_file = text:match("knox%-sim tls certificate: (%S+)")
      if s.ca_file then break end
      socket.sleep(0.01)
    end
  end
  local info = control(s, "GET", "/__sim/info")
  s.info = info
  s.customer_id, s.reseller_id = info.customer_id, info.reseller_id
  if info.keys[1] then s.keys_file, s.client_id = info.keys[1].keys_file, info.keys[1].client_id end
  if oauth then
    local scopes = info.oauth_clients[1].scopes
    s.oauth = { client_id = oauth.client_id, client_secret = oauth.client_secret,
      scope = oauth.scope ~= "" and oauth.scope or table.concat(scopes, " ") }
  end
  return s
end

-- Legacy credentials, signed with the openssl command ------------------------

--- Writes the keys.json Private key (base64 PKCS#8 DER) as a PEM file.
function M.private_pem(keys_file, pem_file)
  local keys = cjson.decode(assert(read_file(keys_file)))
  local b64 = keys.Private:gsub("%s+", "")
  local lines = {}
  for i = 1, #b64, 64 do lines[#lines + 1] = b64:sub(i, i + 63) end
  M.write_file(pem_file, "-----BEGIN PRIVATE KEY-----\n" .. table.concat(lines, "\n")
    .. "\n-----END PRIVATE KEY-----\n")
  return keys
end

--- A compact RS512 JWT of the claims table, signed by `openssl dgst`
-- with the PEM private key in pem_file.
function M.openssl_jwt(pem_file, claims, header)
  local input = M.b64url(cjson.encode(header or { alg = "RS512", typ = "JWT" })) .. "."
    .. M.b64url(cjson.encode(claims))
  local in_file, sig_file = os.tmpname(), os.tmpname()
  M.write_file(in_file, input)
  local ok = os.execute(M.ENV .. "openssl dgst -sha512 -sign " .. quote(pem_file) .. " -out " .. quote(sig_file) .. " "
    .. quote(in_file) .. " 2>/dev/null")
  local sig = read_file(sig_file)
  os.remove(in_file)
  os.remove(sig_file)
  assert(ok and sig and #sig > 0, "openssl dgst -sign failed")
  return input .. "." .. M.b64url(sig)
end

M.random_hex = random_hex

-- Credentials for a running simulator ----------------------------------------

--- Legacy (keys.json) credentials for a running simulator, signed by openssl:
-- L.headers() gives x-knox-apitoken headers with a fresh access token.
function M.legacy(s)
  local pem = os.tmpname()
  local keys = M.private_pem(s.keys_file, pem)
  local L = { pem = pem, keys = keys }
  local function claims(base, over)
    for k, v in pairs(over or {}) do
      if v == false then base[k] = nil else base[k] = v end
    end
    return base
  end
  function L.client_jwt(over, header)
    local now = os.time()
    return M.openssl_jwt(L.pem, claims({ clientIdentifier = s.client_id, publicKey = keys.Public, iat = now,
      exp = now + 1800, aud = "KnoxWSM", jti = M.random_hex(18) }, over), header)
  end
  function L.request_token(body_over, jwt_over)
    local body = { clientIdentifierJwt = L.client_jwt(jwt_over), base64EncodedStringPublicKey = keys.Public,
      validityForAccessTokenInMinutes = 30 }
    for k, v in pairs(body_over or {}) do
      if v == false then body[k] = nil else body[k] = v end
    end
    return s:request("POST", "/ams/v1/users/accesstoken", { body = body })
  end
  function L.apitoken(access, over)
    local now = os.time()
    return M.openssl_jwt(L.pem, claims({ accessToken = access, publicKey = keys.Public, iat = now,
      exp = now + 1800, aud = "KnoxWSM", jti = M.random_hex(18) }, over))
  end
  -- Headers for a legacy service call (a fresh access token each time).
  function L.headers(validity)
    local r = L.request_token { validityForAccessTokenInMinutes = validity or 30 }
    assert(r.status == 200, r.body)
    return { ["x-knox-apitoken"] = L.apitoken(r.json.accessToken) }, r.json.accessToken
  end
  function L.close()
    os.remove(pem)
  end
  return L
end

function M.oauth_token(s, over)
  local form = { grant_type = "client_credentials", client_id = s.oauth.client_id,
    client_secret = s.oauth.client_secret, scope = s.oauth.scope }
  for k, v in pairs(over or {}) do
    if v == false then form[k] = nil else form[k] = v end
  end
  return s:request("POST", "/ams/v1/oauth2/token", { form = form })
end

function M.bearer(s, scope)
  local r = M.oauth_token(s, { scope = scope })
  assert(r.status == 200, r.body)
  return { Authorization = "Bearer " .. r.json.access_token }
end

--- A simulator shared by a describe block: register its three steps with
-- busted (support modules do not see busted's globals):
--   local f = sim.fixture { devices = 12 }
--   lazy_setup(f.setup); lazy_teardown(f.teardown); before_each(f.reset)
-- f.s is the simulator and f.L a legacy session (M.legacy) once set up.
function M.fixture(opts)
  local f = {}
  function f.setup()
    f.s = M.start(opts)
    f.L = M.legacy(f.s)
  end
  function f.teardown()
    if f.L then f.L.close() end
    if f.s then f.s:stop() end
  end
  function f.reset() f.s:reset() end
  return f
end

return M
