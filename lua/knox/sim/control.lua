--- knox.sim control endpoints for tests (JSON bodies, no authentication):
--   GET  /__sim/health                  { ok = true }
--   GET  /__sim/info                    ids, clients, files (no secrets)
--   POST /__sim/faults   {fault}        queue a fault (see faults.lua); GET lists; DELETE clears
--   POST /__sim/clock    {advance = s}  move the simulator's clock; GET reads it
--   GET  /__sim/requests ?since=&limit=&path=   what clients sent; DELETE clears
--   POST /__sim/reset                   fresh state, tokens, faults, log and clock
local json = require "knox.sim.json"
local faults = require "knox.sim.faults"

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
