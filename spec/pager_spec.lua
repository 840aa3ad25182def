local pager = require "knox.pager"
local helpers = require "helpers"

-- A fake paged list of n items; records the pages asked for.
local function source(n, opts)
  opts = opts or {}
  local asked = {}
  local function fetch(page, size)
    asked[#asked + 1] = { page, size }
    local items = {}
    local first = page * size
    local count = opts.always_full and size or math.max(0, math.min(size, n - first))
    for i = 1, count do items[i] = { id = first + i } end
    local total = n
    if opts.total ~= nil then total = opts.total end
    if opts.no_total then total = nil end
    return { totalCount = total, deviceList = items }
  end
  return fetch, asked
end

describe("knox.pager", function()
  it("walks every item once, one page at a time", function()
    local fetch, asked = source(250)
    local ids = {}
    for d in pager.each(fetch, { page_size = 100, items = "deviceList" }) do ids[#ids + 1] = d.id end
    assert.are.equal(250, #ids)
    for i = 1, 250 do assert.are.equal(i, ids[i]) end
    assert.are.same({ { 0, 100 }, { 1, 100 }, { 2, 100 } }, asked)
  end)

  it("stops at totalCount on an exact multiple without an extra request", function()
    local fetch, asked = source(200)
    local n = 0
    for _ in pager.each(fetch, { page_size = 100 }) do n = n + 1 end
    assert.are.equal(200, n)
    assert.are.equal(2, #asked)
  end)

  it("reads totalCount given as a string (MSP)", function()
    local fetch, asked = source(100, { total = "100" })
    local n = 0
    for _ in pager.each(fetch, { page_size = 50, items = "deviceList" }) do n = n + 1 end
    assert.are.equal(100, n)
    assert.are.equal(2, #asked)
  end)

  it("cannot be made to loop forever by a server that always returns full pages", function()
    local fetch, asked = source(0, { always_full = true, total = 300 })
    local n = 0
    for _ in pager.each(fetch, { page_size = 100 }) do n = n + 1 end
    assert.are.equal(300, n)
    assert.are.equal(3, #asked)
    local f2 = source(0, { always_full = true, no_total = true })
    local pages = 0
    for _ in pager.pages(f2, { page_size = 10, max_pages = 7 }) do pages = pages + 1 end
    assert.are.equal(7, pages)
  end)

  it("handles an empty list", function()
    local fetch, asked = source(0)
    local n = 0
    for _ in pager.each(fetch, { items = "deviceList" }) do n = n + 1 end
    assert.are.equal(0, n)
    assert.are.equal(1, #asked)
  end)

  it("raises a decode error when a page has no list", function()
    local e = helpers.raises(function()
      for _ in pager.each(function() return { totalCount = 3 } end, { items = "deviceList" }) do end
    end)
    assert.are.equal("decode", e.kind)
    assert.matches("deviceList", e.message)
  end)

  it("keeps going when the server sends fewer per page than asked", function()
    -- the server caps pages at 50 whatever pageSize says
    local asked = {}
    local function fetch(page)
      asked[#asked + 1] = page
      local items = {}
      for i = 1, math.max(0, math.min(50, 120 - page * 50)) do items[i] = { id = page * 50 + i } end
      return { totalCount = 120, deviceList = items }
    end
    local ids = {}
    for d in pager.each(fetch, { page_size = 100, items = "deviceList" }) do ids[#ids + 1] = d.id end
    assert.are.equal(120, #ids)
    assert.are.equal(120, ids[120])
    assert.are.same({ 0, 1, 2 }, asked)
  end)

  it("raises partial when a page comes back empty before totalCount", function()
    local function fetch(page)
      return { totalCount = 300, deviceList = page == 0 and { { id = 1 }, { id = 2 } } or {} }
    end
    local got = 0
    local e = helpers.raises(function()
      for _ in pager.each(fetch, { page_size = 2, items = "deviceList" }) do got = got + 1 end
    end)
    assert.are.equal(2, got)
    assert.are.equal("partial", e.kind)
    assert.matches("2 of the 300", e.message)
  end)

  it("raises partial when the server ignores pageNum", function()
    local function fetch()
      return { deviceList = { { id = "a" }, { id = "b" } } }
    end
    local e = helpers.raises(function()
      for _ in pager.each(fetch, { page_size = 2, items = "deviceList" }) do end
    end)
    assert.are.equal("partial", e.kind)
    assert.matches("ignore pageNum", e.message)
  end)

  it("raises when a page has no body at all", function()
    local function fetch(page)
      if page == 0 then return { totalCount = 4, deviceList = { { id = 1 }, { id = 2 } } } end
      return nil
    end
    local e = helpers.raises(function()
      for _ in pager.each(fetch, { page_size = 2, items = "deviceList" }) do end
    end)
    assert.are.equal("decode", e.kind)
    assert.matches("after 2 items", e.message)
  end)

  it("rejects a bad page size", function()
    assert.is_true(helpers.raises(pager.pages, function() end, { page_size = 0 }):is "usage")
  end)
end)
