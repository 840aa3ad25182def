--- knox.job.ledger: a job's crash-safe record, one SQLite file (LuaSQL,
-- Debian's lua-sql-sqlite3).
--
--   job      one row: op, args (canonical JSON), the device source, the
--            hash and count of the device list, the chunk size, whether the
--            list is fully recorded (loaded), created/updated/finished
--   chunks   one row per chunk sent: state sent | done | requeued, when it
--            was sent and settled, its KDP transaction id (tx)
--   devices  one row per distinct device in input order (seq): its state,
--            the chunk that last carried it, the failure's code and name
--
-- Device states: 0 pending, 1 sent (in a chunk whose outcome is not yet
-- recorded: in doubt after a crash), 2 ok, 3 failed, 4 unknown (Knox may
-- or may not have done it and no read-back can tell).
--
-- Durability: journal_mode = WAL and synchronous = FULL. WAL lets
-- `knox job status` read while a job writes and makes each commit one
-- append; FULL fsyncs the WAL at every commit, so a chunk marked sent is
-- on disk before its request goes out even across a power loss or a
-- kernel crash, not only a kill -9 (which NORMAL would survive too). A
-- commit costs one fsync; the engine commits twice per chunk (sent,
-- outcome) and once per 5,000 devices while loading, so the cost is small
-- next to a network round trip. busy_timeout lets a reader wait out a
-- writer's commit.
local errors = require "knox.errors"

local M = {}

M.PENDING, M.SENT, M.OK, M.FAILED, M.UNKNOWN = 0, 1, 2, 3, 4
M.STATE_NAMES = { [0] = "pending", "sent", "ok", "failed", "unknown" }
M.VERSION = 1

local SCHEMA = {
  [[CREATE TABLE IF NOT EXISTS job (
      id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, op TEXT NOT NULL, args TEXT NOT NULL,
      source TEXT, devices_hash TEXT, total INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0,
      invalid INTEGER NOT NULL DEFAULT 0, chunk_size INTEGER NOT NULL, loaded INTEGER NOT NULL DEFAULT 0,
      tag TEXT NOT NULL, created REAL NOT NULL, updated REAL, finished REAL)]],
  [[CREATE TABLE IF NOT EXISTS chunks (
      id INTEGER PRIMARY KEY, first INTEGER NOT NULL, last INTEGER NOT NULL, size INTEGER NOT NULL,
      state TEXT NOT NULL, sent_at REAL, done_at REAL, tx TEXT)]],
  [[CREATE TABLE IF NOT EXISTS devices (
      seq INTEGER PRIMARY KEY, device TEXT NOT NULL UNIQUE, state INTEGER NOT NULL DEFAULT 0,
      chunk INTEGER, code TEXT, name TEXT)]],
}

local Ledger = {}
Ledger.__index = Ledger

local function driver()
  local ok, mod = pcall(require, "luasql.sqlite3")
  if not ok then
    errors.usage("fleet jobs need LuaSQL for SQLite (Debian: apt-get install lua-sql-sqlite3): "
      .. tostring(mod):match "^[^\n]*", 4)
  end
  return mod
end

local function fail(what, e)
  error(errors.new { kind = "usage", message = "job ledger: " .. what .. ": " .. tostring(e) }, 0)
end

--- M.open(path [, opts]) -> ledger. opts.readonly: never creates or
-- changes the file (status, report); opts.must_exist.
function M.open(path, opts)
  opts = opts or {}
  if type(path) ~= "string" or path == "" then errors.usage("ledger must be a file name", 4) end
  local exists = io.open(path, "rb")
  if exists then exists:close() end
  if (opts.readonly or opts.must_exist) and not exists then
    errors.usage("no job ledger at " .. path, 4)
  end
  local env = driver().sqlite3()
  local conn, e = env:connect(path)
  if not conn then fail("cannot open " .. path, e) end
  local self = setmetatable({ env = env, conn = conn, path = path, readonly = opts.readonly }, Ledger)
  self:run "PRAGMA busy_timeout = 10000"
  if not opts.readonly then
    self:run "PRAGMA journal_mode = WAL"
    self:run "PRAGMA synchronous = FULL"
    for _, sql in ipairs(SCHEMA) do self:exec(sql) end
  end
  return self
end

function Ledger:exec(sql)
  local r, e = self.conn:execute(sql)
  if not r then fail("SQL failed (" .. sql:sub(1, 60) .. ")", e) end
  return r
end

-- A statement whose rows (a PRAGMA's answer) are not wanted.
function Ledger:run(sql)
  local r = self:exec(sql)
  if type(r) == "userdata" then r:close() end
end

--- Text as an SQL literal.
function Ledger:q(v)
  if v == nil then return "NULL" end
  if type(v) == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    return ("%.17g"):format(v)
  end
  return "'" .. self.conn:escape(tostring(v)) .. "'"
end

--- Rows of a query, as tables by column name (all in memory: small queries only).
function Ledger:rows(sql)
  local cur = self:exec(sql)
  local out = {}
  while true do
    local row = cur:fetch({}, "a")
    if not row then break end
    out[#out + 1] = row
  end
  cur:close()
  return out
end

--- One row (or nil).
function Ledger:row(sql)
  return self:rows(sql)[1]
end

--- Iterates the rows of a query one at a time (a cursor: memory flat).
function Ledger:each(sql)
  local cur = self:exec(sql)
  self.open_cursor = cur
  return function()
    local row = cur:fetch({}, "a")
    if not row then
      cur:close()
      if self.open_cursor == cur then self.open_cursor = nil end
    end
    return row
  end
end

--- Runs fn inside one committed transaction (BEGIN IMMEDIATE ... COMMIT);
-- rolls back and re-raises when fn raises.
function Ledger:transaction(fn)
  self:exec "BEGIN IMMEDIATE"
  local ok, e = pcall(fn)
  if not ok then
    self.conn:execute "ROLLBACK"
    error(e, 0)
  end
  self:exec "COMMIT"
end

--- The job row, or nil.
function Ledger:job()
  local ok, row = pcall(self.row, self, "SELECT * FROM job WHERE id = 1")
  if not ok then
    if self.readonly then errors.usage(self.path .. " is not a knox job ledger", 4) end
    error(row, 0)
  end
  return row
end

--- Counts of devices by state name, and total.
function Ledger:counts()
  local c = { pending = 0, sent = 0, ok = 0, failed = 0, unknown = 0 }
  for _, r in ipairs(self:rows "SELECT state, count(*) AS n FROM devices GROUP BY state") do
    c[M.STATE_NAMES[math.tointeger(r.state)]] = math.tointeger(r.n)
  end
  c.total = c.pending + c.sent + c.ok + c.failed + c.unknown
  return c
end

function Ledger:close()
  if self.conn then
    -- a report cut short (a closed pipe) leaves its cursor open
    if self.open_cursor then pcall(self.open_cursor.close, self.open_cursor) end
    self.conn:close()
    self.env:close()
    self.conn = nil
  end
end
Ledger.__close = Ledger.close
Ledger.__gc = Ledger.close

M.Ledger = Ledger
return M
