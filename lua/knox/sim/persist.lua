--- knox.sim persistence (--state FILE): the simulator's device changes and
-- its request log survive a restart, even after kill -9, so that tests can
-- kill the simulator in the middle of a job and bring it back.
--
-- The file is a journal of JSON lines, appended and flushed (write(2)
-- into the kernel: a killed process loses nothing it wrote; the
-- simulator does not fsync, it survives process crashes, not power
-- loss) after each request is handled and BEFORE its answer is sent:
--   {"f":"kme:<customerId>","i":5,"d":{...}}   device 5 of that fleet is now d
--   {"f":"kdp","i":7,"x":true}                 device 7 of the KDP fleet was deleted
--   {"log":{...}}                              one request log entry (without headers)
--   {"end":true}                               the end of one request's records: replay
--                                              applies a request's records only then
-- At start the journal is replayed over the generated world (same --seed
-- and --devices, so the same devices and ids): changed, added and deleted
-- devices of every fleet (KME, Knox Guard, Knox Configure per tenant, KDP)
-- and the request log (GET /__sim/requests answers across restarts, the
-- last LOG_LIMIT entries). Not kept: profiles, transactions, MSP customers
-- and other non-device state, tokens (clients renew them), faults, limits.
-- POST /__sim/reset empties the file.
local json = require "knox.sim.json"

local M = {}

local Persist = {}
Persist.__index = Persist

local SERVICES = { "kme", "kg", "kc" }

-- Every fleet of the state with its journal name.
local function fleets(st)
  local out = {}
  for cid, t in pairs(st.tenants or {}) do
    for _, svc in ipairs(SERVICES) do
      local part = t[svc]
      if type(part) == "table" and part.fleet then out[#out + 1] = { name = svc .. ":" .. cid, fleet = part.fleet } end
    end
  end
  if st.kdp and st.kdp.fleet then out[#out + 1] = { name = "kdp", fleet = st.kdp.fleet } end
  return out
end

local function fleet_named(st, name)
  if name == "kdp" then return st.kdp.fleet end
  local svc, cid = name:match "^(%a+):(.+)$"
  local t = svc and st:tenant(cid)
  return t and t[svc] and t[svc].fleet
end

-- Puts device d at index i of fleet (replay).
local function restore(fleet, i, d)
  if i > fleet.top then fleet.top = i end
  if not fleet.changed[i] then fleet.nchanged = fleet.nchanged + 1 end
  fleet.changed[i] = d
  if i > fleet.n then
    for _, k in ipairs(fleet.keys(d)) do fleet.by_key[k] = i end
  end
end

--- M.attach(sim, path): replays path (when it exists) into sim, then
-- journals to it. Sets sim.persist.
function M.attach(sim, path)
  local self = setmetatable({ sim = sim, path = path }, Persist)
  local f = io.open(path, "rb")
  local torn_tail = false
  if f then
    local n = 0
    local function apply(rec)
      n = n + 1
      if rec.log then
        local e = rec.log
        e.restored = true
        sim.log[#sim.log + 1] = e
        if type(e.id) == "number" and e.id > sim.log_seq then sim.log_seq = math.tointeger(e.id) or sim.log_seq end
      elseif rec.f and type(rec.i) == "number" then
        local fleet = fleet_named(sim.state, rec.f)
        local i = math.tointeger(rec.i)
        if fleet and i then
          if rec.x then
            if i > fleet.top then fleet.top = i end
            fleet:delete(i)
          elseif type(rec.d) == "table" then
            restore(fleet, i, rec.d)
          end
        end
      end
    end
    -- a request's records count only once its {"end":true} line is there:
    -- a kill in the middle of appending them (a large write is several
    -- write(2) calls) leaves a tail that is dropped whole, so a device
    -- change is never kept without the log entry that acknowledged it
    local pending = {}
    local last = ""
    for line in f:lines("L") do
      last = line
      local ok, rec = pcall(json.decode, line)
      if not ok or (rec == nil and line:match "%S") then
        pending = {} -- a torn line: the request it belonged to is dropped
      elseif type(rec) == "table" then
        if rec["end"] then
          for _, r in ipairs(pending) do apply(r) end
          pending = {}
        else
          pending[#pending + 1] = rec
        end
      end
    end
    f:close()
    torn_tail = last ~= "" and last:sub(-1) ~= "\n"
    local limit = require("knox.sim").LOG_LIMIT
    while #sim.log > limit do table.remove(sim.log, 1) end
    sim.notes[#sim.notes + 1] = ("knox-sim state: %s (%d records replayed)"):format(path, n)
  else
    sim.notes[#sim.notes + 1] = "knox-sim state: " .. path .. " (new)"
  end
  local out, err = io.open(path, "ab")
  if not out then error("knox-sim: cannot write --state " .. path .. ": " .. tostring(err), 0) end
  -- a torn last line stays a line of its own: new records start on a fresh one
  if torn_tail then out:write("\n") end
  -- unbuffered: each request's lines go out in one write(2), which a kill
  -- cannot tear in half
  out:setvbuf("no")
  self.out = out
  self:before()
  sim.persist = self
  return self
end

--- Before a request: every fleet records what it changes.
function Persist:before()
  for _, x in ipairs(fleets(self.sim.state)) do
    if not x.fleet.journal then x.fleet.journal = {} end
  end
end

--- After a request (entry: its log entry, status set): the devices it
-- changed and the entry, appended and flushed.
function Persist:after(entry)
  local lines = {}
  for _, x in ipairs(fleets(self.sim.state)) do
    local fleet = x.fleet
    local touched = fleet.journal
    if not touched then
      -- a tenant made during this request: all it keeps is new
      touched = {}
      for _, i in ipairs(fleet:kept()) do touched[i] = true end
    end
    fleet.journal = {}
    local idx = {}
    for i in pairs(touched) do idx[#idx + 1] = i end
    table.sort(idx)
    for _, i in ipairs(idx) do
      local d = fleet.changed[i]
      if fleet.is_deleted[i] then
        lines[#lines + 1] = json.encode { f = x.name, i = i, x = true }
      elseif d then
        lines[#lines + 1] = json.encode { f = x.name, i = i, d = d }
      end
    end
  end
  if entry then
    local e = {}
    for k, v in pairs(entry) do if k ~= "headers" then e[k] = v end end
    lines[#lines + 1] = json.encode { log = e }
  end
  if #lines > 0 then
    lines[#lines + 1] = '{"end":true}'
    self.out:write(table.concat(lines, "\n"), "\n")
    self.out:flush()
  end
end

--- POST /__sim/reset: an empty journal.
function Persist:reset()
  self.out:close()
  self.out = assert(io.open(self.path, "wb"))
  self.out:setvbuf("no")
  self:before()
end

return M
