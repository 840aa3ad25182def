--- knox.pager: iterate over Knox's pageNum/pageSize lists one page at a
-- time, so a fleet of any size never has to fit in memory.
--
--   for device in pager.each(fetch, { page_size = 100, items = "deviceList" }) do ... end
--
-- fetch(pageNum, pageSize) returns the decoded body of one page. The
-- iterator stops at the first short or empty page, or once it has yielded
-- `totalCount` items (Knox sends totalCount as a number, and MSP as a
-- string: both are read), whichever comes first. A server that keeps
-- returning full pages beyond totalCount cannot make it loop forever.
local errors = require "knox.errors"
local json = require("knox.core").json

local M = {}

local usage = errors.usage

--- The list inside a page body: body[items] when named, else the first
-- array-valued field.
local function page_items(body, key)
  if type(body) ~= "table" then return nil end
  if key then
    local v = body[key]
    if type(v) == "table" then return v end
    return nil
  end
  for _, v in pairs(body) do
    if type(v) == "table" and (#v > 0 or getmetatable(v) ~= nil) then return v end
  end
  return nil
end
M.page_items = page_items

-- A short text that identifies an item, to notice a server that answers
-- every pageNum with the same page.
local function signature(item)
  if type(item) ~= "table" then return tostring(item) end
  local ok, text = pcall(json.encode, item, { sort_keys = true })
  return ok and text or nil
end

local function partial(fmt, ...)
  error(errors.new { kind = "partial", message = fmt:format(...) }, 3)
end

--- pager.pages(fetch, opts): iterator over (page_number, body, items).
-- opts: page_size (100), start (0), items (field name), max_pages,
-- on_page(n_so_far, total) called after each page (total: the
-- totalCount the server announced, or nil).
-- With a totalCount, pages are fetched until that many items have come
-- (a server may send fewer per page than asked); an empty page before then
-- raises kind "partial" rather than ending as if complete. Without one,
-- the first short page ends the walk. A page that repeats the previous one
-- (a server ignoring pageNum) raises kind "partial" instead of looping.
function M.pages(fetch, opts)
  if type(fetch) ~= "function" then error("bad argument #1 to 'pages' (function expected)", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("bad argument #2 to 'pages' (table expected)", 2) end
  opts = opts or {}
  local size = opts.page_size or 100
  if math.type(size) ~= "integer" or size < 1 then usage("page_size must be a positive integer") end
  if opts.start ~= nil and (math.type(opts.start) ~= "integer" or opts.start < 0) then
    usage("start must be a non-negative integer (a page number)")
  end
  if opts.max_pages ~= nil and (math.type(opts.max_pages) ~= "integer" or opts.max_pages < 0) then
    usage("max_pages must be a non-negative integer")
  end
  if opts.items ~= nil and type(opts.items) ~= "string" then usage("items must be the name of the list field") end
  if opts.on_page ~= nil and type(opts.on_page) ~= "function" then usage("on_page must be a function") end
  local page = opts.start or 0
  local max_pages = opts.max_pages
  local seen, total, done, count, last = 0, nil, false, 0, nil
  return function()
    if done then return nil end
    if max_pages and count >= max_pages then return nil end
    local body = fetch(page, size)
    local items = page_items(body, opts.items)
    if items == nil then
      done = true
      error(errors.new { kind = "decode", message = ("page %d has no list%s (after %d items)"):format(page,
        opts.items and (" '" .. opts.items .. "'") or "", seen) })
    end
    local n = #items
    if total == nil and type(body) == "table" then total = tonumber(body.totalCount) end
    local sig = n > 0 and signature(items[1]) or nil
    if sig ~= nil and sig == last then
      done = true
      partial("page %d repeats page %d: the server seems to ignore pageNum (after %d items)", page, page - 1, seen)
    end
    last = sig
    seen = seen + n
    count = count + 1
    local this = page
    page = page + 1
    if opts.on_page then opts.on_page(seen, total) end
    if total then
      if seen >= total then
        done = true
      elseif n == 0 then
        done = true
        partial("page %d is empty after %d of the %d items totalCount announced", this, seen, total)
      end
    elseif n < size then
      done = true
    end
    return this, body, items
  end
end

-- The items of a page iterator (page, body, items), one at a time.
local function flatten(pages)
  local items, i = nil, 0
  return function()
    while true do
      if items and i < #items then
        i = i + 1
        return items[i]
      end
      local _, _, next_items = pages()
      if not next_items then return nil end
      items, i = next_items, 0
    end
  end
end

--- pager.each(fetch, opts): iterator over the items of every page.
function M.each(fetch, opts)
  if type(fetch) ~= "function" then error("bad argument #1 to 'each' (function expected)", 2) end
  return flatten(M.pages(fetch, opts))
end

--- pager.cursor(fetch, opts): iterator over the items of a cursor-paged
-- list (Knox Configure v2 searchAfter / nextSearchAfter, the Knox Guard
-- cursor listing). fetch(cursor) returns one page's body (cursor nil for
-- the first). opts: items (field name), next (the body field holding the
-- next cursor), on_page(n_so_far, total), max_pages. Ends on a page with
-- no next cursor or no items; a cursor that repeats raises kind
-- "partial" instead of looping.
function M.cursor(fetch, opts)
  opts = opts or {}
  local cursor, seen, pages, done = nil, 0, 0, false
  local used = {}
  return flatten(function()
    if done or (opts.max_pages and pages >= opts.max_pages) then return nil end
    local body = fetch(cursor)
    pages = pages + 1
    local items = page_items(body, opts.items)
    if items == nil then
      done = true
      error(errors.new { kind = "decode", message = ("cursor page %d has no list%s (after %d items)"):format(
        pages, opts.items and (" '" .. opts.items .. "'") or "", seen) })
    end
    seen = seen + #items
    local nxt = type(body) == "table" and body[opts.next] or nil
    if opts.on_page then opts.on_page(seen, type(body) == "table" and tonumber(body.totalCount) or nil) end
    if nxt == nil or nxt == json.null or nxt == "" or #items == 0 then
      done = true
    else
      local key = type(nxt) == "table" and json.encode(nxt, { sort_keys = true }) or tostring(nxt)
      if used[key] then
        done = true
        partial("cursor %s came back twice: the server seems to ignore it (after %d items)", key, seen)
      end
      used[key] = true
      cursor = nxt
    end
    return pages, body, items
  end)
end

--- pager.cursor_method(def, fetch_method): the each_<noun> method of a
-- cursor-paged row (def.cursor = { arg = "searchAfter", next = "nextSearchAfter" }).
function M.cursor_method(def, fetch_method)
  return function(self, args, opts)
    for i, v in ipairs { args or {}, opts or {} } do
      if type(v) ~= "table" then
        error(("bad argument #%d to '%s' (table expected, got %s)"):format(i, def.each, type(v)), 2)
      end
    end
    args = args or {}
    local fetch_opts
    if opts then
      fetch_opts = {}
      for k, v in pairs(opts) do if k ~= "on_page" and k ~= "max_pages" then fetch_opts[k] = v end end
    end
    return M.cursor(function(cursor)
      local a = {}
      for k, v in pairs(args) do a[k] = v end
      a[def.cursor.arg] = cursor
      return (fetch_method(self, a, fetch_opts))
    end, { items = def.items, next = def.cursor.next, on_page = opts and opts.on_page,
      max_pages = opts and opts.max_pages })
  end
end

return M
