--- knox.job.source: where a job's devices come from, one at a time.
--
--   devices = { "3543...", ... }     a list
--   devices = function() ... end     an iterator returning one id per call, nil at the end
--   devices = "fleet.csv"            a CSV file, read a line at a time ("-": stdin)
--
-- CSV: one device a row; the first column, or the column a header row
-- names imei, serial, device (also serial number, serialnumber, meid,
-- deviceid, deviceuid, any case). A first row whose cells name none of
-- them is a header when its first cell has no digit (device ids have
-- digits). Blank lines and lines starting with # are skipped; cells are
-- trimmed; a quoted cell may hold commas and doubled quotes (RFC 4180,
-- within one line). A UTF-8 byte order mark is ignored.
--
-- Also the device list's hash: FNV-1a (64 bits) over the ids in order,
-- each followed by a newline, and their count. It tells "the same list"
-- from "another list" (resume refuses another); it is not a defence
-- against someone crafting a collision.
local errors = require "knox.errors"

local M = {}

local HEADER_NAMES = { imei = true, serial = true, device = true, ["serial number"] = true, serialnumber = true,
  meid = true, deviceid = true, ["device id"] = true, deviceuid = true }

-- The cells of one CSV line.
local function cells_of(line)
  local out, i, n = {}, 1, #line
  while i <= n + 1 do
    local s = line:match("^%s*()", i)
    if line:byte(s) == 34 then -- a quoted cell
      local buf, j = {}, s + 1
      while j <= n do
        local q = line:find('"', j, true)
        if not q then buf[#buf + 1] = line:sub(j); j = n + 1; break end
        buf[#buf + 1] = line:sub(j, q - 1)
        if line:byte(q + 1) == 34 then buf[#buf + 1] = '"'; j = q + 2 else j = q + 1; break end
      end
      out[#out + 1] = table.concat(buf):match "^%s*(.-)%s*$"
      local comma = line:find(",", j, true)
      if not comma then break end
      i = comma + 1
    else
      local comma = line:find(",", i, true)
      out[#out + 1] = line:sub(i, (comma or n + 1) - 1):match "^%s*(.-)%s*$"
      if not comma then break end
      i = comma + 1
    end
  end
  return out
end
M.cells_of = cells_of

--- M.csv_lines(next_line, where) -> iterator of device ids from lines.
function M.csv_lines(next_line, where)
  local col, first = nil, true
  return function()
    while true do
      local line = next_line()
      if line == nil then return nil end
      line = line:gsub("\r$", "")
      if first then line = line:gsub("^\239\187\191", "") end
      if line:match "%S" and not line:match "^%s*#" then
        local cells = cells_of(line)
        if first then
          first = false
          for i, c in ipairs(cells) do
            if HEADER_NAMES[c:lower()] then col = i break end
          end
          if col then goto continue end
          col = 1
          if not (cells[1] or ""):find "%d" then goto continue end
        end
        do
          local v = cells[col]
          if v and v ~= "" then return v end
        end
      end
      ::continue::
    end
  end, where
end

--- M.open(devices) -> next (an iterator of ids), source (the CSV path to
-- store, or nil when the list cannot be read again: a table, an iterator,
-- stdin), close().
function M.open(devices)
  if type(devices) == "table" then
    local i = 0
    return function()
      i = i + 1
      return devices[i]
    end, nil, function() end
  elseif type(devices) == "function" then
    return devices, nil, function() end
  elseif devices == "-" then
    return M.csv_lines(io.stdin:lines(), "stdin"), nil, function() end
  elseif type(devices) == "string" then
    local f, e = io.open(devices, "rb")
    if not f then errors.usage("cannot read " .. devices .. ": " .. tostring(e), 4) end
    local closed = false
    return M.csv_lines(f:lines(), devices), devices, function()
      if not closed then closed = true; f:close() end
    end
  end
  errors.usage("devices must be a list, an iterator or a CSV file name", 4)
end

--- A device id a job accepts: 1 to 64 printable bytes, no comma, quote or space.
function M.valid(id)
  return type(id) == "string" and #id >= 1 and #id <= 64 and not id:find "[%c%s,\"']"
end

-- FNV-1a 64: offset basis and prime; Lua integers wrap modulo 2^64.
local FNV_OFFSET, FNV_PRIME = -3750763034362895579, 1099511628211

--- A running hash: h = M.hash_add(h, id); M.hash_text(h, n).
function M.hash_add(h, id)
  h = h or FNV_OFFSET
  for i = 1, #id do h = (h ~ id:byte(i)) * FNV_PRIME end
  return (h ~ 10) * FNV_PRIME
end

function M.hash_text(h, n)
  return ("fnv1a64:%016x:%d"):format(h or FNV_OFFSET, n)
end

return M
