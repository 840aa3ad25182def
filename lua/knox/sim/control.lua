--- knox.sim control endpoints for tests (JSON bodies, no authentication):
--   GET  /__sim/health                  { ok = true }
--   GET  /__sim/info                    ids, clients, files (no secrets)
--   POST /__sim/faults   {fault}        queue a fault (see faults.lua); GET lists; DELETE clears
--   POST /__sim/clock    {advance = s}  move the simulator's clock; GET reads it
--   GET  /__sim/requests ?since=&limit=&path=   what clients sent; DELETE clears
--   POST /__sim/reset                   fresh state, tokens, faults, log, clock and stats
--   GET  /__sim/stats                   requests served, 429s sent, peak rates; DELETE zeroes them
--   GET|POST /__sim/limits {bulk, rate, burst}   bulk sizes and the rate limiter (knox.sim.limits)
--   GET|POST /__sim/config {kdp_status = "flat" | "wrapped"}
--   POST /__sim/seed     {seed}         add customers, devices, profiles (see seed below)
local json = require "knox.sim.json"
local faults = require "knox.sim.faults"
local errors = require "knox.sim.errors"

local M = {}

local function reply(status, body)
  return { status = status, headers = { ["Content-Type"] = "application/json" }, body = json.encode(body) }
end

local function bad(message)
  return reply(400, { code = 4000000, message = "RESOURCE_INVALID_PARAM", data = message })
end

local function body_of(req)
  if req.body == "" then return {} end
  local v, err = json.decode(req.body)
  if v == nil then return nil, "malformed JSON: " .. err end
  if not json.is_object(v) then return nil, "the body must be a JSON object" end
  return v
end

local function requests(sim, req)
  local q = require("knox.sim.codec").parse_query(req.query)
  local since = tonumber(q.since) or 0
  local limit = tonumber(q.limit)
  local pat = q.path
  if pat then
    local ok_pat, why = faults.check_pattern(pat)
    if not ok_pat then return bad("path " .. why) end
  end
  local out = json.array()
  for _, e in ipairs(sim.log) do
    if e.id > since and (not pat or faults.path_matches(e.path, pat)) and (not q.method or e.method == q.method) then
      out[#out + 1] = e
    end
  end
  if limit and limit >= 0 and #out > limit then
    local tail = json.array()
    for i = #out - limit + 1, #out do tail[#tail + 1] = out[i] end
    out = tail
  end
  return reply(200, { requests = out, last = sim.log_seq })
end

-- POST /__sim/seed: adds data to the simulated account (tests seed what
-- they need; start with --devices 0 for nothing else). Body:
--   { customers = [{ companyName, email?, managementType?, devices? = N }],
--     tenant = customerId (default: the account's own),
--     kme = { devices = [{ mei | serialNumber, model?, profileName?, ... }],
--             profiles = [{ profileName, ... }] },
--     kg = { devices = [{ deviceUid, status?, approveId?, ... }], simPolicy = bool },
--     kc = { devices = [{ deviceUId, serialNumber?, model?, ... }],
--            profiles = [{ name, ... }], licenses = [{ licenseKey?, quantity?, ... }] } }
-- Answers { customers = [ids], tenant, kme = { devices = [ids], profiles = [ids] }, kg = ..., kc = ... }.
local function seed(sim, req)
  local b, err = body_of(req)
  if not b then return bad(err) end
  local st = sim.state
  local out = { customers = json.array() }
  local ok, why = pcall(function()
    for i, c in ipairs(b.customers or {}) do
      if type(c) ~= "table" or type(c.companyName) ~= "string" then
        error("customers[" .. i .. "] needs a companyName", 0)
      end
      local id = st:new_id("customer")
      local n = math.tointeger(c.devices or 0)
      if not n or n < 0 or n > 2000000 then error("customers[" .. i .. "].devices must be 0 to 2000000", 0) end
      st.msp.customers[#st.msp.customers + 1] = { customerId = id, companyName = c.companyName,
        email = c.email or ("admin@" .. id .. ".example"), officeNumber = c.officeNumber or "+1-555-0199",
        country = c.country or "US", services = c.services or { "KME", "KC" }, status = "Active",
        managementType = c.managementType or "FullyManaged", created = st.BASE_MS, modified = st.BASE_MS }
      st:declare(id, n, c.companyName)
      out.customers[i] = id
    end
    local cid = b.tenant
    if cid ~= nil and (type(cid) ~= "string" or not st.sizes[cid]) then error("tenant is not a known customer", 0) end
    local t = st:tenant(cid)
    out.tenant = t.customer_id
    for _, name in ipairs { "kme", "kg", "kc" } do
      if b[name] ~= nil then
        if type(b[name]) ~= "table" then error(name .. " must be an object", 0) end
        out[name] = require("knox.sim." .. name).seed(st, t, b[name], sim:now() * 1000)
      end
    end
  end)
  if not ok then
    if errors.is_error(why) then return bad(why.message) end
    return bad(tostring(why))
  end
  return reply(200, out)
end

local ROUTES = {
  ["GET /__sim/health"] = function() return reply(200, { ok = true }) end,
  ["GET /__sim/info"] = function(sim) return reply(200, sim:info()) end,
  ["GET /__sim/faults"] = function(sim) return reply(200, { faults = sim.faults:describe() }) end,
  ["DELETE /__sim/faults"] = function(sim)
    sim.faults:clear()
    return reply(200, { faults = json.array() })
  end,
  ["POST /__sim/faults"] = function(sim, req)
    local spec, err = body_of(req)
    if not spec then return bad(err) end
    local f
    f, err = sim.faults:add(spec)
    if not f then return bad(err) end
    return reply(200, { id = f.id, remaining = f.times })
  end,
  ["GET /__sim/clock"] = function(sim) return reply(200, { now = sim:now(), offset = sim.offset }) end,
  ["POST /__sim/clock"] = function(sim, req)
    local b, err = body_of(req)
    if not b then return bad(err) end
    local adv = b.advance
    if type(adv) ~= "number" or adv ~= adv or math.abs(adv) > 1e9 then
      return bad("advance must be a number of seconds")
    end
    sim.offset = sim.offset + adv
    return reply(200, { now = sim:now(), offset = sim.offset })
  end,
  ["GET /__sim/requests"] = requests,
  ["DELETE /__sim/requests"] = function(sim)
    sim.log = {}
    return reply(200, { requests = json.array(), last = sim.log_seq })
  end,
  ["POST /__sim/reset"] = function(sim)
    sim:reset()
    return reply(200, { ok = true })
  end,
  ["GET /__sim/stats"] = function(sim) return reply(200, sim.limits:describe()) end,
  ["DELETE /__sim/stats"] = function(sim)
    sim.limits:reset_stats()
    return reply(200, sim.limits:describe())
  end,
  ["GET /__sim/limits"] = function(sim) return reply(200, sim.limits:describe().limits) end,
  ["POST /__sim/limits"] = function(sim, req)
    local b, err = body_of(req)
    if not b then return bad(err) end
    local ok, why = sim.limits:configure(b, json.null)
    if not ok then return bad(why) end
    return reply(200, sim.limits:describe().limits)
  end,
  ["GET /__sim/config"] = function(sim) return reply(200, sim.config) end,
  ["POST /__sim/config"] = function(sim, req)
    local b, err = body_of(req)
    if not b then return bad(err) end
    if b.kdp_status ~= nil then
      if b.kdp_status ~= "flat" and b.kdp_status ~= "wrapped" then return bad("kdp_status must be flat or wrapped") end
      sim.config.kdp_status = b.kdp_status
    end
    return reply(200, sim.config)
  end,
  ["POST /__sim/seed"] = seed,
}

--- The response to a /__sim/ request.
function M.handle(sim, req)
  local method = req.method == "HEAD" and "GET" or req.method
  local h = ROUTES[method .. " " .. req.path]
  if h then return h(sim, req) end
  for key in pairs(ROUTES) do
    if key:match("^%S+ (.*)$") == req.path then
      return reply(405, { code = 4050000, message = "METHOD_NOT_ALLOWED", data = "method not allowed" })
    end
  end
  return reply(404, { code = 4040000, message = "RESOURCE_NOT_FOUND", data = "no control endpoint " .. req.path })
end

return M
