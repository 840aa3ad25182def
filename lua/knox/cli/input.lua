--- knox.cli.input: device lists for bulk commands, from the command line,
-- a CSV file or stdin (--from FILE|-).
--
-- CSV: one device a row; the first column, or the column a header row
-- names (--column NAME, any case). Without --column, a first row whose
-- first cell has no digit is taken as a header (device ids have digits;
-- header words such as "IMEI" or "Serial Number" do not). Blank lines and
-- lines starting with # are skipped; cells are trimmed; quoted cells
-- ("a,b", "say ""hi""") are read as RFC 4180 says.
local usage = require("knox.errors").usage

local M = {}

--- M.csv_row(line) -> list of cells.
function M.csv_row(line)
  local cells, i, n = {}, 1, #line
  while i <= n + 1 do
    local c = line:sub(i, i)
    if c == '"' then
      local buf, j = {}, i + 1
      while j <= n do
        local d = line:sub(j, j)
        if d == '"' then
          if line:sub(j + 1, j + 1) == '"' then
            buf[#buf + 1] = '"'
            j = j + 2
          else
            break
          end
        else
          buf[#buf + 1] = d
          j = j + 1
        end
      end
      cells[#cells + 1] = table.concat(buf)
      local comma = line:find(",", j + 1, true)
      i = comma and comma + 1 or n + 2
      if not comma then break end
    else
      local comma = line:find(",", i, true)
      cells[#cells + 1] = line:sub(i, (comma or n + 1) - 1):match "^%s*(.-)%s*$"
      if not comma then break end
      i = comma + 1
    end
  end
  return cells
end

--- M.parse_csv(text, column, where) -> list of device ids.
function M.parse_csv(text, column, where)
  local ids, col, first = {}, nil, true
  text = text:gsub("^\239\187\191", "")
  for line in (text .. "\n"):gmatch "([^\n]*)\n" do
    line = line:gsub("\r$", "")
    if line:match "%S" and not line:match "^%s*#" then
      local cells = M.csv_row(line)
      if first then
        first = false
        if column then
          for i, c in ipairs(cells) do
            if c:lower() == column:lower() then col = i end
          end
          if not col then
            usage(("%s has no column %s (its first row: %s)"):format(where, column, table.concat(cells, ", ")), 2)
          end
          goto continue
        end
        col = 1
        if not (cells[1] or ""):find "%d" then goto continue end
      end
      do
        local v = cells[col]
        if v and v ~= "" then ids[#ids + 1] = v end
      end
    end
    ::continue::
  end
  return ids
end

--- M.devices(positional, from, column, stdin) -> list of device ids
-- (positional ones first), or raises kind "usage".
function M.devices(positional, from, column, stdin)
  local ids = {}
  for _, v in ipairs(positional or {}) do ids[#ids + 1] = v end
  if from then
    local text
    if from == "-" then
      text = (stdin or io.stdin):read("a") or ""
    else
      local f, e = io.open(from, "rb")
      if not f then usage("cannot read " .. from .. ": " .. tostring(e), 2) end
      text = f:read("a")
      f:close()
    end
    for _, v in ipairs(M.parse_csv(text, column, from == "-" and "stdin" or from)) do ids[#ids + 1] = v end
  elseif column then
    usage("--column needs --from FILE|-", 2)
  end
  return ids
end

return M
