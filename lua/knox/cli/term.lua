--- knox.cli.term: what the command knows about its terminal: whether a
-- stream is a terminal, and how wide it is. Lua has no isatty, so the
-- answer comes from test(1) run on the inherited descriptor, asked once
-- per descriptor and remembered for the run.
local M = {}

local known = {}

--- M.isatty(fd) -> boolean (fd 1: stdout, 2: stderr). KNOX_TTY=0/1
-- overrides (for specs and for tools that fake a terminal).
function M.isatty(fd)
  local force = os.getenv("KNOX_TTY")
  if force == "0" then return false end
  if force == "1" then return true end
  if known[fd] == nil then
    known[fd] = os.execute(("test -t %d"):format(fd)) == true
  end
  return known[fd]
end

--- M.width(fd) -> columns of the terminal on fd, or nil when fd is not
-- one. $COLUMNS wins (a shell exports it only when asked to), else stty.
function M.width(fd)
  if not M.isatty(fd) then return nil end
  local c = tonumber(os.getenv("COLUMNS") or "")
  if c and c >= 20 then return math.floor(c) end
  -- in io.popen's child, fd 1 is the pipe: stdout's terminal is asked
  -- through /dev/tty (the same terminal when stdout is one)
  local p = io.popen(fd == 1 and "stty size </dev/tty 2>/dev/null" or ("stty size <&%d 2>/dev/null"):format(fd))
  local line = p and p:read("l")
  if p then p:close() end
  local cols = line and tonumber(line:match("^%d+%s+(%d+)"))
  if cols and cols >= 20 then return cols end
  return 80
end

--- M.ulen(s): the length of s in characters (bytes when s is not UTF-8).
function M.ulen(s)
  return utf8.len(s) or #s
end

--- M.cut(s, n): s cut to n characters, an ellipsis marking the cut.
function M.cut(s, n)
  if M.ulen(s) <= n then return s end
  if n <= 1 then return ("…"):sub(1, n > 0 and #"…" or 0) end
  if not utf8.len(s) then return s:sub(1, n - 1) .. "…" end
  return s:sub(1, (utf8.offset(s, n) or (#s + 1)) - 1) .. "…"
end

return M
