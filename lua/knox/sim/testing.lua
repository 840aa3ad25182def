--- knox.sim.testing: the Knox simulator as a test fixture for your own
-- automation (what moto is to boto3 users). In a busted spec:
--
--   local testing = require "knox.sim.testing"
--   describe("my script", function()
--     local sim = testing.use { devices = 0, data = { kme = { devices = { { mei = "490154203237518" } } } } }
--     it("lists", function()
--       local client = sim:client()
--       assert.are.equal(1, client.kme:list_devices().totalCount)
--     end)
--   end)
--
-- testing.use registers busted's lazy_setup/lazy_teardown, so the
-- simulator starts before the first test of the block and stops after the
-- last one, whether tests pass, fail or raise; testing.start/stop do the
-- same by hand, and testing.with(opts, fn) runs fn(sim) and stops it
-- whatever fn does. The simulator is a child process on loopback (real
-- sockets) started with --stdin-eof and --max-lifetime, so even a test run
-- that dies cannot leave it behind.
--
-- This module is the test's side: it uses luasocket for the control calls
-- and builds knox clients (require "knox"), while the simulator process it
-- starts runs knox.sim only.
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local M = {}

M.LUA = os.getenv("LUA") or "lua5.4"
M.START_TIMEOUT = 20

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function random_hex(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(n)
  f:close()
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local Sim = {}
Sim.__index = Sim
M.Sim = Sim

-- One control call (JSON in, JSON out); raises unless 2xx.
function Sim:control(method, path, body)
  local out = {}
  local src = body ~= nil and cjson.encode(body) or nil
  local ok, status = http.request {
    url = self.url .. path, method = method, sink = ltn12.sink.table(out),
    source = src and ltn12.source.string(src) or nil,
    headers = src and { ["Content-Type"] = "application/json", ["Content-Length"] = #src } or nil,
  }
  local text = table.concat(out)
  if not ok or type(status) ~= "number" or status < 200 or status > 299 then
    error("knox.sim.testing: " .. method .. " " .. path .. " failed: " .. tostring(status) .. " " .. text, 2)
  end
  return text ~= "" and cjson.decode(text) or nil
end

-- The command line of a simulator for opts.
local function command(opts, out_file, err_file)
  local argv = { "--port", "0", "--stdin-eof", "--max-lifetime", tostring(opts.max_lifetime or 900) }
  local function add(flag, v)
    if v ~= nil then
      argv[#argv + 1] = flag
      argv[#argv + 1] = tostring(v)
    end
  end
  add("--devices", opts.devices)
  add("--seed", opts.seed)
  add("--rate", opts.rate)
  add("--burst", opts.burst)
  add("--bulk-limit", opts.bulk_limit)
  add("--kdp-status", opts.kdp_status)
  add("--latency-ms", opts.latency_ms)
  for _, a in ipairs(opts.args or {}) do argv[#argv + 1] = tostring(a) end
  local list = {}
  for i, a in ipairs(argv) do list[i] = string.format("%q", a) end
  -- the child finds knox.sim where this process found it
  local boot = string.format("package.path = %q; os.exit(require('knox.sim').main({ %s }), true)",
    package.path, table.concat(list, ", "))
  return "exec env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS " .. M.LUA .. " -e " .. quote(boot)
    .. " >" .. quote(out_file) .. " 2>" .. quote(err_file)
end

--- Starts a simulator and returns its handle. opts: devices (default 20;
-- 0 for only what data seeds), seed, rate, burst, bulk_limit, kdp_status,
-- latency_ms, args (more flags), max_lifetime (s, default 900), data (a
-- table for sim:seed), scope (the OAuth client's scopes, default all).
function M.start(opts)
  opts = opts or {}
  local self = setmetatable({ opts = opts, out_file = os.tmpname(), err_file = os.tmpname() }, Sim)
  self.oauth = { client_id = "kit-" .. random_hex(4), client_secret = random_hex(16) }
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.args = { "--oauth-client", self.oauth.client_id .. ":" .. self.oauth.client_secret .. ":" .. (opts.scope or "") }
  for _, a in ipairs(opts.args or {}) do o.args[#o.args + 1] = a end
  self.proc = assert(io.popen(command(o, self.out_file, self.err_file), "w"))
  local deadline = socket.gettime() + (opts.start_timeout or M.START_TIMEOUT)
  local text = ""
  while socket.gettime() < deadline do
    text = read_file(self.out_file) or ""
    if text:find("knox%-sim customer id") then break end
    socket.sleep(0.02)
  end
  self.url = text:match("knox%-sim listening on (%S+)")
  if not self.url or not text:find("knox%-sim customer id") then
    local err = read_file(self.err_file) or ""
    self:stop()
    error("knox.sim.testing: the simulator did not start: " .. err, 2)
  end
  local info = self:info()
  self.customer_id, self.reseller_id, self.tenants = info.customer_id, info.reseller_id, info.tenants
  self.keys_file, self.client_id = info.keys[1].keys_file, info.keys[1].client_id
  for _, c in ipairs(info.oauth_clients) do
    if c.client_id == self.oauth.client_id then self.oauth.scope = table.concat(c.scopes, " ") end
  end
  if opts.data then self.seeded = self:seed(opts.data) end
  return self
end

--- Stops the simulator (idempotent) and closes the clients it made.
function Sim:stop()
  for _, c in ipairs(self.clients or {}) do pcall(c.close, c) end
  self.clients = {}
  if self.proc then
    self.proc:close()   -- stdin EOF: the simulator ends; close waits for it
    self.proc = nil
  end
  if self.out_file then
    os.remove(self.out_file)
    os.remove(self.err_file)
    self.out_file, self.err_file = nil, nil
  end
end

--- Everything /__sim/info says (ids, tenants, files; no secrets).
function Sim:info()
  return self:control("GET", "/__sim/info")
end

--- A knox client for this simulator with both credentials (keys.json for
-- Knox Guard / KC v1 / KME, OAuth for MSP / KC v2 / KME). opts are
-- knox.client options added on top; with tenant = a managed customer id the
-- client has the OAuth credential only (legacy calls never reach a tenant).
function Sim:client(opts)
  local knox = require "knox"
  local oauth = knox.auth.oauth2 { client_id = self.oauth.client_id, client_secret = self.oauth.client_secret,
    scope = self.oauth.scope }
  -- a managed tenant is reached over OAuth only: Knox (and the simulator)
  -- ignore x-wsm-managed-tenantid on legacy x-knox-apitoken calls
  local o = { base_url = self.url, auth = (opts and opts.tenant) and { oauth }
    or { knox.auth.keys { file = self.keys_file, client_id = self.client_id }, oauth } }
  for k, v in pairs(opts or {}) do o[k] = v end
  local c = knox.client(o)
  self.clients = self.clients or {}
  self.clients[#self.clients + 1] = c
  return c
end

--- Adds data (POST /__sim/seed): { customers = [{ companyName, devices = N }],
-- tenant = customerId, kme = { devices, profiles }, kg = { devices,
-- simPolicy }, kc = { devices, profiles, licenses } }; returns the ids made.
function Sim:seed(data)
  local r = self:control("POST", "/__sim/seed", data)
  self.tenants = self:info().tenants
  return r
end

--- Queues a fault (see README "Testing your own automation"); returns its id.
function Sim:fault(spec)
  return self:control("POST", "/__sim/faults", spec).id
end

function Sim:clear_faults()
  self:control("DELETE", "/__sim/faults")
end

--- Moves the simulator's clock by seconds; returns its new time.
function Sim:clock(seconds)
  return self:control("POST", "/__sim/clock", { advance = seconds }).now
end

local function query(t)
  local q = {}
  for k, v in pairs(t or {}) do
    q[#q + 1] = k .. "=" .. tostring(v):gsub("[^%w%-._~]", function(c) return string.format("%%%02X", c:byte()) end)
  end
  table.sort(q)
  return #q > 0 and ("?" .. table.concat(q, "&")) or ""
end

--- The requests clients sent, oldest first: { id, method, path, query,
-- headers, body, status, fault, time }. filter: { path = Lua pattern
-- (found anywhere), method, since = id, limit }.
function Sim:requests(filter)
  return self:control("GET", "/__sim/requests" .. query(filter)).requests
end

--- Forgets the request log.
function Sim:clear_requests()
  self:control("DELETE", "/__sim/requests")
end

--- Sets limits (POST /__sim/limits: { bulk, rate, burst }); returns them.
function Sim:limits(spec)
  return self:control("POST", "/__sim/limits", spec)
end

--- Requests served, 429s sent, peak rates (GET /__sim/stats).
function Sim:stats()
  return self:control("GET", "/__sim/stats")
end

--- Fresh state from the seed (then data again, if start had any).
function Sim:reset()
  self:control("POST", "/__sim/reset", {})
  if self.opts.data then self.seeded = self:seed(self.opts.data) end
end

--- For busted: a handle whose simulator starts in lazy_setup and stops in
-- lazy_teardown of the enclosing describe block (also when tests fail).
-- Its methods are usable inside tests.
function M.use(opts)
  local busted = require "busted"
  local handle = setmetatable({}, { __index = function(t, k)
    local sim = rawget(t, "_sim")
    if not sim then error("knox.sim.testing: the simulator starts in lazy_setup; use it inside tests", 2) end
    local v = sim[k]
    if type(v) == "function" then
      return function(self, ...)
        if self == t then return v(sim, ...) end
        return v(self, ...)
      end
    end
    return v
  end })
  busted.lazy_setup(function() rawset(handle, "_sim", M.start(opts)) end)
  busted.lazy_teardown(function()
    local sim = rawget(handle, "_sim")
    if sim then sim:stop() end
    rawset(handle, "_sim", nil)
  end)
  return handle
end

--- Runs fn(sim) with a fresh simulator and stops it whatever fn does;
-- returns fn's results or raises its error.
function M.with(opts, fn)
  local sim = M.start(opts)
  local res = table.pack(xpcall(fn, debug.traceback, sim))
  sim:stop()
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

return M
