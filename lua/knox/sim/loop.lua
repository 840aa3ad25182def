--- knox.sim's scheduler: a single thread running one coroutine per
-- connection over socket.select. A coroutine waits for readability,
-- writability or a timer; nothing else in the simulator ever blocks, so a
-- delayed reply (a timer) never holds up another connection.
local socket = require "socket"

local gettime, select = socket.gettime, socket.select
local create, resume, yield, running = coroutine.create, coroutine.resume, coroutine.yield, coroutine.running

local Loop = {}
Loop.__index = Loop

local M = {}

--- A new loop. on_error(msg) receives errors escaping a coroutine.
function M.new(on_error)
  return setmetatable({
    readers = {},   -- object -> { co =, deadline = }
    writers = {},
    timers = {},    -- binary heap of { t =, seq =, co = }
    seq = 0,
    ready = {},     -- coroutines to start on the next step
    stopped = false,
    on_error = on_error or function(msg) io.stderr:write("knox-sim: ", tostring(msg), "\n") end,
  }, Loop)
end

local function heap_push(h, item)
  local i = #h + 1
  h[i] = item
  while i > 1 do
    local p = i // 2
    local a, b = h[p], h[i]
    if a.t < b.t or (a.t == b.t and a.seq < b.seq) then break end
    h[p], h[i] = b, a
    i = p
  end
end

local function heap_pop(h)
  local top, n = h[1], #h
  h[1] = h[n]
  h[n] = nil
  n = n - 1
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and (h[l].t < h[m].t or (h[l].t == h[m].t and h[l].seq < h[m].seq)) then m = l end
    if r <= n and (h[r].t < h[m].t or (h[r].t == h[m].t and h[r].seq < h[m].seq)) then m = r end
    if m == i then break end
    h[i], h[m] = h[m], h[i]
    i = m
  end
  return top
end

function Loop:_resume(co, ...)
  local ok, err = resume(co, ...)
  if not ok then self.on_error(err) end
end

--- Runs fn(...) in a new coroutine, started on the next step.
function Loop:spawn(fn, ...)
  local args = table.pack(...)
  local on_error = self.on_error
  local co = create(function()
    local ok, err = xpcall(fn, debug.traceback, table.unpack(args, 1, args.n))
    if not ok then on_error(err) end
  end)
  self.ready[#self.ready + 1] = co
  return co
end

--- (In a coroutine.) Waits until obj is readable; false when the deadline
-- (a gettime() value, optional) passes first.
function Loop:wait_read(obj, deadline)
  self.readers[obj] = { co = running(), deadline = deadline }
  return yield()
end

--- (In a coroutine.) Waits until obj is writable; false on the deadline.
function Loop:wait_write(obj, deadline)
  self.writers[obj] = { co = running(), deadline = deadline }
  return yield()
end

--- (In a coroutine.) Sleeps for seconds without blocking anything else.
function Loop:sleep(seconds)
  self.seq = self.seq + 1
  heap_push(self.timers, { t = gettime() + math.max(0, seconds), seq = self.seq, co = running() })
  return yield()
end

--- Forgets any wait registered for obj (before closing it).
function Loop:forget(obj)
  self.readers[obj] = nil
  self.writers[obj] = nil
end

function Loop:stop()
  self.stopped = true
end

local function gather(waiters, list, now, timeout)
  local n = 0
  for obj, w in pairs(waiters) do
    n = n + 1
    list[n] = obj
    if w.deadline then timeout = math.min(timeout, math.max(0, w.deadline - now)) end
  end
  return timeout
end

local function expire(self, waiters, now)
  local due
  for obj, w in pairs(waiters) do
    if w.deadline and w.deadline <= now then
      due = due or {}
      due[#due + 1] = obj
    end
  end
  if not due then return end
  for _, obj in ipairs(due) do
    local w = waiters[obj]
    if w then
      waiters[obj] = nil
      self:_resume(w.co, false)
    end
  end
end

--- One round: start new coroutines, wait (at most max_wait seconds) for
-- readiness or the next timer, and resume whoever is due.
function Loop:step(max_wait)
  local ready = self.ready
  if #ready > 0 then
    self.ready = {}
    for _, co in ipairs(ready) do self:_resume(co) end
  end
  local now = gettime()
  local timeout = #self.ready > 0 and 0 or max_wait
  local top = self.timers[1]
  if top then timeout = math.min(timeout, math.max(0, top.t - now)) end
  local rlist, wlist = {}, {}
  timeout = gather(self.readers, rlist, now, timeout)
  timeout = gather(self.writers, wlist, now, timeout)
  local r, w = select(rlist, wlist, timeout)
  for _, obj in ipairs(r or {}) do
    local wt = self.readers[obj]
    if wt then
      self.readers[obj] = nil
      self:_resume(wt.co, true)
    end
  end
  for _, obj in ipairs(w or {}) do
    local wt = self.writers[obj]
    if wt then
      self.writers[obj] = nil
      self:_resume(wt.co, true)
    end
  end
  now = gettime()
  local timers = self.timers
  while timers[1] and timers[1].t <= now do
    self:_resume(heap_pop(timers).co, true)
  end
  expire(self, self.readers, now)
  expire(self, self.writers, now)
end

--- Steps until stop() is called.
function Loop:run()
  while not self.stopped do self:step(0.5) end
end

M.gettime = gettime

return M
