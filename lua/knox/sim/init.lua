--- knox.sim: a Knox cloud services simulator -- a real HTTP/1.1 (and
-- HTTPS) server on loopback that behaves like Knox closely enough that a
-- script which works against it works against Knox (api-notes §1-§5).
--
--   local sim = require "knox.sim"
--   os.exit(sim.main(arg))                 -- the `knox sim` command
--   local s = sim.new { devices = 50 }     -- or embed: s:listen(); s:run()
--
-- It runs on luasocket, luasec, luaossl and lua-cjson, never on knox.core,
-- so specs that pass against it cross-check the library. State lives in
-- memory; SIGTERM's default action ends the process, which loses nothing
-- (temporary files it generated are then left in their mkdtemp directory).
require("knox.sim.deps").check()

local socket = require "socket"
local json = require "knox.sim.json"
local codec = require "knox.sim.codec"
local crypto = require "knox.sim.crypto"
local loop_mod = require "knox.sim.loop"
local http = require "knox.sim.http"
local state_mod = require "knox.sim.state"
local auth_mod = require "knox.sim.auth"
local faults_mod = require "knox.sim.faults"
local router_mod = require "knox.sim.router"
local errors = require "knox.sim.errors"
local control = require "knox.sim.control"
local limits_mod = require "knox.sim.limits"

local M = {}

M.DEFAULTS = { host = "127.0.0.1", port = 0, devices = 20, seed = "1", latency_ms = 0 }
M.LOG_LIMIT = 5000          -- requests kept for /__sim/requests
M.MAX_DEVICES = 2000000     -- --devices at most (generated lazily: see knox.sim.fleet)
M.LOG_BODY_LIMIT = 65536    -- bytes of each logged body

local Sim = {}
Sim.__index = Sim

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, data)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(data)
  f:close()
  return true
end

-- A private (mode 0700) temporary directory from mktemp(1).
local function temp_dir()
  local p = io.popen("mktemp -d \"${TMPDIR:-/tmp}/knox-sim.XXXXXX\"")
  if not p then return nil end
  local dir = p:read("l")
  p:close()
  return dir
end

--- A simulator (not yet listening). opts: host, port, devices, seed,
-- latency_ms, tls, cert, key, keys = { { file =, client_id = } },
-- client_id (for generated keys), oauth_clients = { { id =, secret =,
-- scopes = { ... } } }, out (a file for informational lines), log (a
-- function receiving error lines).
function M.new(opts)
  opts = opts or {}
  for k, v in pairs(M.DEFAULTS) do
    if opts[k] == nil then opts[k] = v end
  end
  local self = setmetatable({
    opts = opts, offset = 0, log = {}, log_seq = 0, temp = {}, notes = {},
    faults = faults_mod.new(), auth = auth_mod.new(), router = router_mod.new(),
    config = { kdp_status = opts.kdp_status or "flat" },
  }, Sim)
  self.limits = limits_mod.new(opts)
  self.state = state_mod.new(opts.seed, opts.devices)
  for _, name in ipairs { "kme", "kg", "msp", "kdp", "kc" } do
    require("knox.sim." .. name).routes(self.router)
  end
  local r = self.router
  r:add { method = "POST", path = "^/ams/v1/users/accesstoken$", service = "auth", auth = "none",
    handler = function(ctx) return self.auth:access_token(ctx) end }
  r:add { method = "POST", path = "^/ams/v1/oauth2/token$", service = "oauth2", auth = "none",
    handler = function(ctx)
      local body, headers = self.auth:oauth_token(ctx)
      return body, 200, headers
    end }
  r:add { method = "POST", path = "^/ams/v1/oauth2/revoke$", service = "oauth2", auth = "none",
    handler = function(ctx) return self.auth:oauth_revoke(ctx) end }
  self:load_credentials()
  -- [persist] --state FILE: device changes and the request log survive restarts
  if opts.state then require("knox.sim.persist").attach(self, opts.state) end
  return self
end

-- This process's id, from Linux's /proc (no lua-posix for Lua 5.4 here).
local function own_pid()
  local f = io.open("/proc/self/stat", "r")
  if not f then return nil end
  local pid = tonumber((f:read("l") or ""):match("^(%d+)"))
  f:close()
  return pid
end

-- SIGTERM's default action ends the process without running Lua code, and
-- Lua 5.4 here has no way to catch it. So a small detached shell waits for
-- this process to end, however it ends, and removes the directory then.
local function remove_when_gone(dir)
  local pid = own_pid()
  if not pid or not dir:match("^[%w/._-]+$") then return end
  os.execute(("(while kill -0 %d 2>/dev/null; do sleep 1; done; rm -rf '%s') </dev/null >/dev/null 2>&1 &")
    :format(pid, dir))
end

function Sim:tempdir()
  if not self.dir then
    self.dir = temp_dir()
    if not self.dir then error("knox-sim: cannot create a temporary directory (mktemp)", 0) end
    remove_when_gone(self.dir)
  end
  return self.dir
end

function Sim:load_credentials()
  local opts = self.opts
  for _, k in ipairs(opts.keys or {}) do
    local text, err = read_file(k.file)
    if not text then error("knox-sim: cannot read " .. k.file .. ": " .. tostring(err), 0) end
    local doc = json.decode(text)
    if not json.is_object(doc) or type(doc.Public) ~= "string" then
      error("knox-sim: " .. k.file .. " is not a keys.json file (a JSON object with Public and Private)", 0)
    end
    local cid = k.client_id or (type(doc.Identifier) == "string" and doc.Identifier)
    if not cid or cid == "" then error("knox-sim: --keys " .. k.file .. " needs a --client-id", 0) end
    local ok, why = self.auth:register_key(cid, doc.Public, k.file)
    if not ok then error("knox-sim: " .. why, 0) end
  end
  if #(opts.keys or {}) == 0 then
    local keys = crypto.generate_keys()
    local file = self:tempdir() .. "/keys.json"
    assert(write_file(file, json.encode(keys) .. "\n"))
    self.temp[#self.temp + 1] = file
    local cid = opts.client_id or ("sim-client-" .. codec.random_hex(8))
    assert(self.auth:register_key(cid, keys.Public, file))
    self.generated = { file = file, client_id = cid }
    self.notes[#self.notes + 1] = "knox-sim keys: " .. file .. " (client id " .. cid .. ")"
  end
  for _, c in ipairs(opts.oauth_clients or {}) do
    self.auth:register_client(c.id, c.secret, #c.scopes > 0 and c.scopes or auth_mod.ALL_SCOPES)
  end
  if #(opts.oauth_clients or {}) == 0 then
    local id, secret = "sim-oauth-" .. codec.random_hex(6), codec.random_hex(16)
    self.auth:register_client(id, secret, auth_mod.ALL_SCOPES)
    -- A made-up credential of this simulator, printed so that it can be used.
    self.notes[#self.notes + 1] = "knox-sim oauth client: " .. id .. " secret " .. secret .. " (all scopes)"
  end
end

--- The simulator's clock: wall time plus what POST /__sim/clock added.
function Sim:now()
  return socket.gettime() + self.offset
end

function Sim:log_error(msg)
  local log = self.opts.log or function(m) io.stderr:write("knox-sim: ", m, "\n") end
  log(msg)
end

--- The managed MSP customer with this id (still managed: active, or with
-- a delink request the customer has not accepted), or nil.
function Sim:managed_customer(id)
  for _, c in ipairs(self.state.msp.customers) do
    if c.customerId == id and (c.status == "Active" or c.status == "DelinkPending") then return c end
  end
end

--- Everything a test needs to know, without secrets.
function Sim:info()
  local keys, clients = json.array(), json.array()
  for _, cid in ipairs(self.auth.key_order) do
    keys[#keys + 1] = { client_id = cid, keys_file = self.auth.keys[cid].file }
  end
  for _, id in ipairs(self.auth.client_order) do
    local scopes = json.array()
    for i, s in ipairs(self.auth.clients[id].scopes) do scopes[i] = s end
    clients[#clients + 1] = { client_id = id, scopes = scopes }
  end
  -- Other Knox customers an MSP could link, each with the outcome a link
  -- gets (ok, not_approved, managed, region): tests cannot find them otherwise.
  local candidates = json.array()
  for _, c in ipairs(self.state.msp.pool) do
    candidates[#candidates + 1] = { customerId = c.customerId, companyName = c.companyName, link = c.link }
  end
  -- Every tenant a test can reach, with its size: the account's own first,
  -- then the MSP's managed customers.
  local st = self.state
  local tenants = json.array { { customerId = st.customer_id, companyName = st.customer_name,
    devices = st.sizes[st.customer_id], own = true } }
  for _, c in ipairs(st.msp.customers) do
    tenants[#tenants + 1] = { customerId = c.customerId, companyName = c.companyName, devices = st.sizes[c.customerId],
      managementType = c.managementType }
  end
  return { url = self.url, keys = keys, oauth_clients = clients, customer_id = st.customer_id,
    reseller_id = st.reseller_id, seed = self.opts.seed, devices = self.opts.devices,
    ca_file = self.ca_file, now = self:now(), offset = self.offset, msp_link_candidates = candidates,
    tenants = tenants, pending_reseller_id = st:tenant().kme.pending_reseller, config = self.config,
    limits = self.limits:describe().limits }
end

--- Fresh state (same seed), no tokens, faults, requests or clock offset.
-- Registered keys and OAuth clients stay.
function Sim:reset()
  self.state = state_mod.new(self.opts.seed, self.opts.devices)
  self.auth:reset()
  self.faults:clear()
  self.log, self.offset = {}, 0
  self.limits.buckets, self.limits.nbuckets = {}, 0
  self.limits:reset_stats()
  if self.persist then self.persist:reset() end -- [persist]
end

local function log_entry(self, req)
  self.log_seq = self.log_seq + 1
  local headers = {}
  for k, v in pairs(req.headers) do headers[k] = codec.utf8_safe(v) end
  local body = req.body
  local e = { id = self.log_seq, connection = req.conn_id, method = req.method, path = codec.utf8_safe(req.path),
    query = codec.utf8_safe(req.query), headers = headers, time = self:now() }
  if #body > M.LOG_BODY_LIMIT then
    body = body:sub(1, M.LOG_BODY_LIMIT)
    e.body_truncated = true
  end
  if utf8.len(body) then e.body = body else e.body_base64 = codec.b64(body) end
  local log = self.log
  log[#log + 1] = e
  if #log > M.LOG_LIMIT then table.remove(log, 1) end
  return e
end

--- The response to one parsed request (runs in the connection's coroutine).
function Sim:handle(req)
  if req.path:sub(1, 7) == "/__sim/" then return control.handle(self, req) end
  local entry = log_entry(self, req)
  local fault = self.faults:take(req.method, req.path)
  local delay = (self.opts.latency_ms or 0) + (fault and fault.delay_ms or 0)
  if delay > 0 then self.loop:sleep(delay / 1000) end
  local resp
  if fault then entry.fault = fault.id end
  if fault and fault.reset == "early" then
    resp = { reset = "early" }
  elseif fault and fault.status then
    resp = faults_mod.response(fault, router_mod.service_of(req.path), http.REASONS)
  else
    if self.persist then self.persist:before() end -- [persist]
    resp = self.router:dispatch(self, req)
    if fault and fault.body == "truncated" then resp.truncate = true end
  end
  if fault and fault.reset == true then resp.reset = true end
  entry.status = resp.status
  if self.persist then self.persist:after(entry) end -- [persist] journaled before the answer is sent
  self.limits:record(self:now(), resp.status or 0, resp.rate_limited)
  return resp
end

-- The response to a request the HTTP layer could not accept.
function Sim:framing_error(status, message, req) -- luacheck: ignore 212/self
  local service = req and req.path and router_mod.service_of(req.path) or "knox"
  local resp = errors.render(service, { status = status, message = message })
  resp.close = true
  return resp
end

--- Binds and starts serving; returns the base URL.
function Sim:listen()
  local opts = self.opts
  local server, err = http.listen(opts.host, opts.port)
  if not server then return nil, "cannot listen on " .. opts.host .. ":" .. opts.port .. ": " .. tostring(err) end
  self.server = server
  local _, port = server:getsockname()
  self.port = tonumber(port)
  local tls
  if opts.tls then
    local ssl = require "ssl"
    local cert, key = opts.cert, opts.key
    if not cert then
      local dir = self:tempdir()
      cert, key = dir .. "/cert.pem", dir .. "/key.pem"
      crypto.self_signed(cert, key, os.time())
      self.temp[#self.temp + 1] = cert
      self.temp[#self.temp + 1] = key
      self.notes[#self.notes + 1] = "knox-sim tls certificate: " .. cert .. " (self-signed; use it as the CA file)"
    end
    self.ca_file = cert
    tls, err = ssl.newcontext { mode = "server", protocol = "any", key = key, certificate = cert,
      options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" } }
    if not tls then
      server:close()
      return nil, "TLS setup failed: " .. tostring(err)
    end
  end
  local host = opts.host
  if host:find(":", 1, true) then host = "[" .. host .. "]" end
  self.url = (opts.tls and "https" or "http") .. "://" .. host .. ":" .. self.port
  self.loop = loop_mod.new(function(msg) self:log_error(tostring(msg)) end)
  http.serve(self.loop, server, {
    handler = function(req) return self:handle(req) end,
    on_error = function(status, message, req) return self:framing_error(status, message, req) end,
    date = function() return codec.http_date(self:now()) end,
    log = function(msg) self:log_error(msg) end,
    tls = tls,
  })
  return self.url
end

--- Stops when stdin reaches end of file (--stdin-eof).
function Sim:stop_on_stdin_eof()
  local stdin = { getfd = function() return 0 end, dirty = function() return false end }
  self.loop:spawn(function()
    while true do
      if not self.loop:wait_read(stdin) or io.stdin:read(1) == nil then
        self.loop:stop()
        return
      end
    end
  end)
end

--- Stops after seconds (--max-lifetime: a forgotten simulator ends itself).
function Sim:stop_after(seconds)
  self.loop:spawn(function()
    self.loop:sleep(seconds)
    self:log_error("maximum lifetime reached, stopping")
    self.loop:stop()
  end)
end

--- Serves until stop().
function Sim:run()
  self.loop:run()
end

function Sim:stop()
  if self.loop then self.loop:stop() end
end

--- Closes the listener and removes the files it generated.
function Sim:close()
  if self.server then
    self.server:close()
    self.server = nil
  end
  for _, f in ipairs(self.temp) do os.remove(f) end
  self.temp = {}
  if self.dir then
    os.remove(self.dir)
    self.dir = nil
  end
end

local args = require "knox.args"

--- The simulator's command line, on the one argument helper (knox.args).
local function build_parser()
  local p = args.parser("knox sim", "The Knox simulator: Knox cloud services on loopback, for tests.",
    'The first line on stdout is "knox-sim listening on http://HOST:PORT".')
  p:option("--host", "address to listen on (default 127.0.0.1)"):argname("HOST")
  p:option("--port", "port (default 0: any free port)"):argname("PORT")
    :convert(args.number("--port", 0, 65535, true))
  p:flag("--tls", "serve HTTPS (self-signed certificate unless --cert/--key)")
  p:option("--cert", "PEM certificate for --tls"):argname("FILE")
  p:option("--key", "PEM private key for --tls"):argname("FILE")
  args.ordered(p:option("--keys", "a keys.json whose Public key is registered (repeatable) ..."):argname("FILE"),
    "keys_order")
  args.ordered(p:option("--client-id", "... for this client identifier (follows its --keys FILE)"):argname("ID"),
    "keys_order")
  p:option("--oauth-client", "an OAuth client (scopes separated by spaces or commas; empty = all); repeatable")
    :argname("ID:SECRET:SCOPES"):count("*")
  p:option("--devices", "devices of the account's own tenant in KME, Knox Guard, Knox Configure (default 20; "
    .. "generated lazily, so a million is cheap); managed customers get other sizes from the seed"):argname("N")
    :convert(args.number("--devices", 0, M.MAX_DEVICES, true))
  p:option("--bulk-limit", "most devices one bulk call may name, in every service (default: KME 1000, "
    .. "Knox Guard 10000, KDP 10000, Knox Configure 1000)"):argname("N")
    :convert(args.number("--bulk-limit", 1, 10000000, true))
  p:option("--rate", "rate limit: requests per second per access token (default: off); excess gets 429 "
    .. "with Retry-After"):argname("N"):convert(args.number("--rate", 0.001, 1000000))
  p:option("--burst", "the rate limiter's bucket size (default: half a second of --rate, at least 1)")
    :argname("N"):convert(args.number("--burst", 1, 1000000))
  p:option("--kdp-status", "the KDP devices/status shape: flat (default) or wrapped"):argname("SHAPE")
    :choices { "flat", "wrapped" }
  p:option("--seed", "seed for generated ids (default 1)"):argname("S")
  p:option("--latency-ms", "delay every reply by MS milliseconds"):argname("MS")
    :convert(args.number("--latency-ms", 0, 600000))
  p:option("--state", "keep device changes and the request log in FILE, replayed at start (same --seed "
    .. "and --devices): the simulator can be killed and restarted"):argname("FILE") -- [persist]
  p:flag("--stdin-eof", "stop when stdin reaches end of file")
  p:flag("--env", "also print `export KNOX_...` lines a shell can eval to reach this simulator")
  p:option("--max-lifetime", "stop after SECONDS"):argname("SECONDS")
    :convert(args.number("--max-lifetime", 0.001))
  return p
end

local parser
--- The help text; with `short`, the usage lines only (after a mistake).
function M.usage(short)
  parser = parser or build_parser()
  if short then return parser:get_usage() .. "\n(knox sim --help lists every option)\n" end
  return parser:get_help() .. "\n"
end

--- Parses command-line arguments (argv[1..n]); returns opts or nil, message.
function M.parse_args(argv)
  parser = parser or build_parser()
  local r, why = args.parse(parser, argv)
  if not r then return nil, why end
  local opts = {
    help = r.help, host = r.host, port = r.port, tls = r.tls, cert = r.cert, key = r.key,
    devices = r.devices, seed = r.seed, latency_ms = r.latency_ms, stdin_eof = r.stdin_eof,
    bulk_limit = r.bulk_limit, rate = r.rate, burst = r.burst, kdp_status = r.kdp_status,
    max_lifetime = r.max_lifetime, env = r.env, keys = {}, oauth_clients = {}, state = r.state,
  }
  -- --keys FILE [--client-id ID] pairs; a lone --client-id names the
  -- client of the simulator's own generated keys
  for _, use in ipairs(r.keys_order or {}) do
    local name, v = use[1], use[2]
    if name == "--keys" then
      opts.keys[#opts.keys + 1] = { file = v }
    else
      local last = opts.keys[#opts.keys]
      if last and not last.client_id then
        last.client_id = v
      elseif not last and not opts.client_id then
        opts.client_id = v
      else
        return nil, "--client-id " .. v .. " does not follow a --keys FILE"
      end
    end
  end
  for _, v in ipairs(r.oauth_client or {}) do
    local id, secret, scopes = v:match("^([^:]+):([^:]+):?(.*)$")
    if not id then return nil, "--oauth-client needs ID:SECRET:SCOPES" end
    local list = {}
    for s in scopes:gmatch("[^%s,]+") do list[#list + 1] = s end
    opts.oauth_clients[#opts.oauth_clients + 1] = { id = id, secret = secret, scopes = list }
  end
  if opts.burst and not opts.rate then return nil, "--burst needs --rate" end
  if opts.tls and (opts.cert == nil) ~= (opts.key == nil) then return nil, "--cert and --key go together" end
  if (opts.cert or opts.key) and not opts.tls then return nil, "--cert and --key need --tls" end
  return opts
end

--- The `knox sim` command: parses argv, serves until stdin EOF (with
-- --stdin-eof), --max-lifetime or SIGINT, and returns an exit status.
function M.main(argv)
  local opts, err = M.parse_args(argv or {})
  if not opts then
    io.stderr:write("knox-sim: ", err, "\n", M.usage(true))
    return 2
  end
  if opts.help then
    io.stdout:write(M.usage())
    return 0
  end
  local ok, sim = pcall(M.new, opts)
  if not ok then
    io.stderr:write(tostring(sim), "\n")
    return 1
  end
  local url
  url, err = sim:listen()
  if not url then
    io.stderr:write("knox-sim: ", err, "\n")
    sim:close()
    return 1
  end
  if not opts.host:match("^127%.") and opts.host ~= "::1" and opts.host ~= "localhost" then
    io.stderr:write("knox-sim: warning: listening on ", opts.host, ", beyond loopback; the simulator is for tests\n")
  end
  io.stdout:write("knox-sim listening on ", url, "\n")
  for _, line in ipairs(sim.notes) do io.stdout:write(line, "\n") end
  io.stdout:write("knox-sim customer id ", sim.state.customer_id, ", reseller id ", sim.state.reseller_id, "\n")
  if opts.env then
    -- for `eval "$(knox sim --env | grep ^export)"`: the simulator's own
    -- throwaway credentials, never real ones
    local function q(v) return "'" .. tostring(v):gsub("'", "'\\''") .. "'" end
    io.stdout:write("export KNOX_BASE_URL=", q(url), "\n")
    local k = sim.auth.key_order[1]
    if k then
      io.stdout:write("export KNOX_KEYS_FILE=", q(sim.auth.keys[k].file), " KNOX_CLIENT_ID=", q(k), "\n")
    end
    local o = sim.auth.client_order[1]
    if o then
      local c = sim.auth.clients[o]
      io.stdout:write("export KNOX_OAUTH_CLIENT_ID=", q(o), " KNOX_OAUTH_CLIENT_SECRET=", q(c.secret),
        " KNOX_OAUTH_SCOPE=", q(table.concat(c.scopes, " ")), "\n")
    end
  end
  io.stdout:flush()
  if opts.stdin_eof then sim:stop_on_stdin_eof() end
  if opts.max_lifetime then sim:stop_after(opts.max_lifetime) end
  local ran, why = pcall(sim.run, sim)
  sim:close()
  if not ran then
    if tostring(why):find("interrupted!", 1, true) then
      io.stderr:write("knox-sim: interrupted\n")
      return 130
    end
    io.stderr:write("knox-sim: ", tostring(why), "\n")
    return 1
  end
  return 0
end

return M
