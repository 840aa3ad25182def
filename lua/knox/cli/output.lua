--- knox.cli.output: how the command prints what Knox answered.
--
--   json   indented JSON, keys sorted at every level (one object, or one
--          array of the items of a list; `--all` writes the array as pages
--          arrive)
--   jsonl  one compact JSON object per line, keys sorted
--   csv    RFC 4180: a header row, then one row per item; nested values
--          as compact JSON
--   table  aligned columns for a person, fitted to the terminal's width
--
-- Columns (csv, table) are --fields in the order given, else every key
-- the first page's items have, sorted. A field may be a dotted path into
-- nested objects (--fields id,profile.name). Lists are written a page at
-- a time: memory holds one page, whatever the list's length.
local json = require("knox.core").json
local term = require "knox.cli.term"

local M = {}

M.FORMATS = { "json", "jsonl", "table", "csv" }

local null = json.null

local function compact(v)
  return json.encode(v, { sort_keys = true })
end
M.compact = compact

-- Re-indents compact JSON text (two spaces a level); strings are copied
-- as they are, so every escape json.encode chose survives.
local function indent(text, base)
  base = base or ""
  local out, depth, i, n = {}, 0, 1, #text
  local function nl() out[#out + 1] = "\n" .. base .. ("  "):rep(depth) end
  while i <= n do
    local c = text:sub(i, i)
    if c == '"' then
      local j = i + 1
      while j <= n do
        local d = text:sub(j, j)
        if d == "\\" then j = j + 2
        elseif d == '"' then break
        else j = j + 1 end
      end
      out[#out + 1] = text:sub(i, j)
      i = j
    elseif c == "{" or c == "[" then
      local close = c == "{" and "}" or "]"
      if text:sub(i + 1, i + 1) == close then
        out[#out + 1] = c .. close
        i = i + 1
      else
        out[#out + 1] = c
        depth = depth + 1
        nl()
      end
    elseif c == "}" or c == "]" then
      depth = depth - 1
      nl()
      out[#out + 1] = c
    elseif c == "," then
      out[#out + 1] = ","
      nl()
    elseif c == ":" then
      out[#out + 1] = ": "
    else
      out[#out + 1] = c
    end
    i = i + 1
  end
  return base .. table.concat(out)
end

--- M.pretty(v [, base]) -> indented JSON text with sorted keys.
function M.pretty(v, base)
  return indent(compact(v), base)
end

local function is_array(v)
  if type(v) ~= "table" then return false end
  if #v > 0 then return true end
  return next(v) == nil and compact(v) == "[]"
end
M.is_array = is_array

-- The value at a dotted path of item.
local function get(item, path)
  if type(item) ~= "table" then return nil end
  local v = item[path]
  if v ~= nil or not path:find(".", 1, true) then return v end
  v = item
  for part in path:gmatch "[^.]+" do
    if type(v) ~= "table" then return nil end
    v = v[part]
  end
  return v
end

-- item cut down to fields (dotted paths become nested again).
local function project(item, fields)
  if not fields or type(item) ~= "table" then return item end
  local out = {}
  for _, f in ipairs(fields) do
    local v = get(item, f)
    if v ~= nil then
      local t, parts = out, {}
      for p in f:gmatch "[^.]+" do parts[#parts + 1] = p end
      if item[f] ~= nil then parts = { f } end
      for k = 1, #parts - 1 do
        t[parts[k]] = type(t[parts[k]]) == "table" and t[parts[k]] or {}
        t = t[parts[k]]
      end
      t[parts[#parts]] = v
    end
  end
  return out
end
M.project = project

--- M.cell(v) -> the text of one value in a csv or table cell.
local function cell(v)
  if v == nil or v == null then return "" end
  if math.type(v) == "integer" then return ("%d"):format(v) end
  if type(v) == "number" then return ("%.14g"):format(v) end
  if type(v) == "table" then return compact(v) end
  return tostring(v)
end
M.cell = cell

local function csv_quote(s)
  if s:find '[,"\r\n]' or s:match "^%s" or s:match "%s$" then
    return '"' .. s:gsub('"', '""') .. '"'
  end
  return s
end

-- Every key of the items, sorted.
local function columns_of(items)
  local seen, cols = {}, {}
  for _, it in ipairs(items) do
    if type(it) == "table" then
      for k in pairs(it) do
        if type(k) == "string" and not seen[k] then
          seen[k] = true
          cols[#cols + 1] = k
        end
      end
    end
  end
  table.sort(cols)
  return cols
end

-- Knox's timestamps are milliseconds since the epoch; a person reads a
-- date. Only in tables, only for a field whose name says it is a time.
local MS_MIN, MS_MAX = 946684800000, 4102444800000
local function table_cell(k, v)
  if math.type(v) == "integer" and v >= MS_MIN and v < MS_MAX and type(k) == "string"
    and (k:match "[Tt]ime$" or k:match "[Dd]ate$" or k:match "At$") then
    return os.date("!%Y-%m-%d %H:%M", v // 1000)
  end
  return (cell(v):gsub("[\r\n\t]", " "))
end
M.table_cell = table_cell

-- Column order in a table, for a person: what names a device as an
-- administrator knows it (IMEI, serial number), then identifiers, then
-- names, then states, then the rest, times last; alphabetical within each
-- (csv and JSON keep plain sorted order). Read from the field names'
-- shape only.
local DEVICE_NAMES = { mei = 0, imei = 0, meid = 0.1, serialNumber = 0.2, deviceUid = 0, deviceUId = 0 }
local function rank(k)
  if DEVICE_NAMES[k] then return DEVICE_NAMES[k] end
  if k:match "[Ii][Dd]$" then return 1 end
  if k:match "[Nn]ame$" then return 2 end
  if k:match "^[Ss]tat[eu]s?$" or k:match "%u%l*Stat[eu]s?$" then return 3 end
  if k:match "[Tt]ime$" or k:match "[Dd]ate$" then return 5 end
  return 4
end

local function table_order(cols)
  local out = table.move(cols, 1, #cols, 1, {})
  table.sort(out, function(a, b)
    local ra, rb = rank(a), rank(b)
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  return out
end

---------------------------------------------------------------------------
-- The printer

local Printer = {}
Printer.__index = Printer

--- M.new { stream =, format =, fields = { ... } | nil, width = n | nil }
function M.new(o)
  return setmetatable({ stream = o.stream, format = o.format or "json", fields = o.fields,
    width = o.width, notes = o.notes }, Printer)
end

--- printer:value(v): one answer (an object, a list or a text).
function Printer:value(v)
  local s, f = self.stream, self.format
  if type(v) ~= "table" then
    if v ~= nil then s:write(cell(v), "\n") end
    return
  end
  if is_array(v) then
    local w = self:list()
    w:add(v)
    return w:finish()
  end
  v = project(v, self.fields)
  if f == "json" then
    s:write(M.pretty(v), "\n")
  elseif f == "jsonl" then
    s:write(compact(v), "\n")
  elseif f == "csv" then
    local cols = self.fields or columns_of { v }
    local head, row = {}, {}
    for i, c in ipairs(cols) do
      head[i], row[i] = csv_quote(c), csv_quote(cell(get(v, c)))
    end
    s:write(table.concat(head, ","), "\r\n", table.concat(row, ","), "\r\n")
  else
    -- one object: a field / value table
    local cols = self.fields or table_order(columns_of { v })
    local wk = 0
    for _, c in ipairs(cols) do wk = math.max(wk, term.ulen(c)) end
    local room = self.width and math.max(self.width - wk - 2, 20) or nil
    for _, c in ipairs(cols) do
      local text = table_cell(c:match "[^.]+$", get(v, c))
      if room then text = term.cut(text, room) end
      s:write(c, (" "):rep(wk - term.ulen(c) + 2), text, "\n")
    end
  end
end

---------------------------------------------------------------------------
-- Lists, a page at a time

local List = {}
List.__index = List

--- printer:list([hooks]) -> a writer with :add(items) (one page) and
-- :finish() -> count. hooks.before / hooks.after run around each write
-- (the progress bar clears itself and redraws).
function Printer:list(hooks)
  return setmetatable({ p = self, n = 0, hooks = hooks or {} }, List)
end

-- Column widths for a table from the first page: each column as wide as
-- its widest cell (at most 40). Columns that do not fit the terminal are
-- left out from the right (whole values of fewer columns read better than
-- cut values of all of them); a first column wider than the terminal is cut.
local function fit(cols, rows, width)
  local w, natural = {}, {}
  for i, c in ipairs(cols) do
    natural[i] = term.ulen(c)
    for _, r in ipairs(rows) do natural[i] = math.max(natural[i], term.ulen(r[i])) end
    w[i] = math.min(natural[i], 40)
  end
  if not width then return w, #cols end
  local shown, used = 0, 0
  for i = 1, #cols do
    local need = w[i] + (i > 1 and 2 or 0)
    if used + need > width then break end
    used, shown = used + need, i
  end
  if shown == 0 and #cols > 0 then
    shown, w[1] = 1, math.max(width, 1)
  elseif shown == #cols then
    -- the last column may use the rest of the line
    w[shown] = math.max(w[shown], math.min(natural[shown], width - (used - w[shown])))
  end
  return w, shown
end


function List:_table(items)
  local p, s = self.p, self.p.stream
  local rows = {}
  if not self.cols then self.cols = p.fields or table_order(columns_of(items)) end
  for k, it in ipairs(items) do
    local r = {}
    if type(it) ~= "table" then it = { value = it } end
    for i, c in ipairs(self.cols) do r[i] = table_cell(c:match "[^.]+$", get(it, c)) end
    rows[k] = r
  end
  if not self.widths then
    if not p.fields then
      -- a column that repeats an earlier one on every row (KME's imei and
      -- deviceId) says nothing new: left out of the table
      local keep, cols2 = {}, {}
      for i = 1, #self.cols do
        local same = false
        for j = 1, i - 1 do
          if keep[j] then
            local all = #rows > 0
            for _, r in ipairs(rows) do all = all and r[i] == r[j] end
            same = same or all
          end
        end
        keep[i] = not same
        if keep[i] then cols2[#cols2 + 1] = self.cols[i] else self.dups = (self.dups or 0) + 1 end
      end
      if #cols2 < #self.cols then
        for _, r in ipairs(rows) do
          local k = 0
          for i = 1, #self.cols do
            if keep[i] then k = k + 1; r[k] = r[i] end
          end
          for i = k + 1, #self.cols do r[i] = nil end
        end
        self.cols = cols2
      end
    end
    self.widths, self.shown = fit(self.cols, rows, p.width)
    local head = {}
    for i = 1, self.shown do head[i] = self.cols[i] end
    rows = { head, table.unpack(rows) }
    if self.shown < #self.cols then
      local hidden = {}
      for i = self.shown + 1, #self.cols do hidden[#hidden + 1] = self.cols[i] end
      self.hidden = hidden
    end
  end
  local out = {}
  for _, r in ipairs(rows) do
    local line = {}
    for i = 1, self.shown do
      local t = term.cut(r[i], self.widths[i])
      line[i] = i < self.shown and (t .. (" "):rep(self.widths[i] - term.ulen(t))) or t
    end
    out[#out + 1] = table.concat(line, "  ")
  end
  s:write(table.concat(out, "\n"), "\n")
end

--- writer:add(items): one page of items.
function List:add(items)
  local p, s = self.p, self.p.stream
  if #items == 0 and self.started then return end
  if self.hooks.before then self.hooks.before() end
  local f = p.format
  if f == "json" then
    if not self.started then s:write("[") end
    for _, it in ipairs(items) do
      s:write(self.n > 0 and ",\n" or "\n", M.pretty(project(it, p.fields), "  "))
      self.n = self.n + 1
    end
  elseif f == "jsonl" then
    for _, it in ipairs(items) do
      s:write(compact(project(it, p.fields)), "\n")
      self.n = self.n + 1
    end
  elseif f == "csv" then
    if not self.cols then
      self.cols = p.fields or columns_of(items)
      local head = {}
      for i, c in ipairs(self.cols) do head[i] = csv_quote(c) end
      if #head > 0 then s:write(table.concat(head, ","), "\r\n") end
    end
    for _, it in ipairs(items) do
      local row = {}
      if type(it) ~= "table" then it = { value = it } end
      for i, c in ipairs(self.cols) do row[i] = csv_quote(cell(get(it, c))) end
      s:write(table.concat(row, ","), "\r\n")
      self.n = self.n + 1
    end
  elseif #items > 0 then
    self:_table(items)
    self.n = self.n + #items
  end
  self.started = true
  if s.flush then s:flush() end
  if self.hooks.after then self.hooks.after() end
end

--- writer:finish() -> the number of items written.
function List:finish()
  local s = self.p.stream
  if self.hidden and self.p.notes then
    self.p.notes(("%d more column%s (--fields to pick): %s"):format(#self.hidden,
      #self.hidden == 1 and "" or "s", table.concat(self.hidden, ", ")))
  end
  if self.dups and self.p.notes then
    self.p.notes(("%d column%s left out: the same values as another"):format(self.dups,
      self.dups == 1 and "" or "s"))
  end
  if self.p.format == "json" then
    if not self.started then s:write("[") end
    s:write(self.n > 0 and "\n]\n" or "]\n")
  end
  if s.flush then s:flush() end
  return self.n
end

return M
