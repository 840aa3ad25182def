--- knox.cli.progress: the progress line long work draws on stderr (paging
-- with --all, bulk calls): count, total, rate, ETA.
--
--   kme devices list  ████████████░░░░░░░░░░░░  1,200/5,000  24%  340/s  ETA 11s
--
-- Drawn only when stderr is a terminal and --quiet was not given; redrawn
-- at most ten times a second; cleared before anything is written to the
-- same terminal and when the work ends, so it never mixes with output.
local core = require "knox.core"
local term = require "knox.cli.term"

local M = {}

local Bar = {}
Bar.__index = Bar

--- M.new { stream =, enabled =, label =, unit = "items", clock = }
function M.new(o)
  return setmetatable({ stream = o.stream, enabled = o.enabled, label = o.label or "", unit = o.unit or "items",
    clock = o.clock or core.monotime, width = o.width or term.width(2) or 80, n = 0, drawn = false,
    last = -1 }, Bar)
end

--- M.none(): a bar that draws nothing.
function M.none()
  return M.new { enabled = false }
end

local function thousands(n)
  local s = ("%d"):format(n)
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

local function duration(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s < 60 then return s .. "s" end
  if s < 3600 then return ("%dm%02ds"):format(s // 60, s % 60) end
  return ("%dh%02dm"):format(s // 3600, s % 3600 // 60)
end
M.duration = duration

--- The text of the line for n of total (total may be nil) after elapsed s.
function M.line(label, n, total, elapsed, width, unit)
  local rate = elapsed > 0.05 and n / elapsed or nil
  local tail = {}
  if total and total > 0 then
    tail[#tail + 1] = thousands(n) .. "/" .. thousands(total)
    tail[#tail + 1] = ("%3d%%"):format(math.floor(math.min(n / total, 1) * 100))
  else
    tail[#tail + 1] = thousands(n) .. " " .. unit
  end
  if rate then tail[#tail + 1] = (rate >= 10 and "%.0f/s" or "%.1f/s"):format(rate) end
  if total and total > n and rate and rate > 0 then
    tail[#tail + 1] = "ETA " .. duration((total - n) / rate)
  elseif total and n >= total then
    tail[#tail + 1] = duration(elapsed)
  end
  local right = table.concat(tail, "  ")
  if not (total and total > 0) then
    return term.cut(label .. "  " .. right, width - 1)
  end
  local room = width - 1 - term.ulen(label) - term.ulen(right) - 4
  local bw = math.max(math.min(room, 40), 0)
  local full = math.floor(bw * math.min(n / total, 1) + 0.5)
  local bar = bw >= 5 and ("█"):rep(full) .. ("░"):rep(bw - full) or ""
  return term.cut(label .. "  " .. bar .. (bar ~= "" and "  " or "") .. right, width - 1)
end

function Bar:_draw(force)
  if not self.enabled then return end
  local now = self.clock()
  self.started = self.started or now
  if not force and self.drawn and now - self.last < 0.1 then return end
  self.last = now
  self.stream:write("\r\27[K", M.line(self.label, self.n, self.total, now - self.started, self.width, self.unit))
  if self.stream.flush then self.stream:flush() end
  self.drawn = true
end

--- bar:update(n, total): n done so far, of total (nil: not known).
function Bar:update(n, total)
  self.started = self.started or self.clock()
  self.n, self.total = n, total or self.total
  self:_draw(false)
end

--- bar:clear(): removes the line (before other output goes to the terminal).
function Bar:clear()
  if self.enabled and self.drawn then
    self.stream:write("\r\27[K")
    if self.stream.flush then self.stream:flush() end
    self.drawn = false
  end
end

--- bar:redraw(): draws the line again after a clear.
function Bar:redraw()
  if self.enabled and self.started then self:_draw(true) end
end

--- bar:finish(): the work is over: the line goes away.
function Bar:finish()
  self:clear()
end

return M
