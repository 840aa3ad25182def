-- The API reference (scripts/api-docs.lua -> docs/API.md, docs/api/index.html)
-- is generated from the registry rows: every method of every service is
-- in it with its arguments, and the committed docs/API.md is what the
-- generator makes of today's registry (regenerate with `make docs`).
-- Needs neither LDoc nor a browser.
local services = require "knox.services"
local service = require "knox.service"

local gen = assert(loadfile("scripts/api-docs.lua"))("--module")

local function sorted(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- The Markdown section of one method: from its heading to the next heading.
local function section(md, svc, name)
  local head = "\n### `" .. svc .. ":" .. name .. "`\n"
  local i = md:find(head, 1, true)
  if not i then return nil end
  local j = md:find("\n##", i + #head, true)
  return md:sub(i, j and j - 1 or #md)
end

-- The first line where a and b differ, for a readable failure.
local function first_difference(a, b)
  local la, lb = {}, {}
  for l in (a .. "\n"):gmatch "(.-)\n" do la[#la + 1] = l end
  for l in (b .. "\n"):gmatch "(.-)\n" do lb[#lb + 1] = l end
  for i = 1, math.max(#la, #lb) do
    if la[i] ~= lb[i] then
      return ("line %d:\n  committed: %s\n  generated: %s"):format(i, tostring(la[i]), tostring(lb[i]))
    end
  end
  return nil
end

describe("the API reference", function()
  local reg = services.load()
  local blocks = gen.build()
  local md = gen.markdown(blocks)
  local html = gen.html(blocks)

  it("has every method of every service, with its route, arguments, paging, bulk and async facts", function()
    local count = 0
    for _, svc in ipairs(reg.names) do
      local spec = reg.services[svc]
      for _, name in ipairs(sorted(spec.endpoints)) do
        local def = spec.endpoints[name]
        count = count + 1
        local where = svc .. ":" .. name
        local s = section(md, svc, name)
        assert(s, where .. " is not in the reference")
        assert(s:find("**" .. def[1] .. "** `" .. def[2] .. "`", 1, true), where .. ": method and path")
        assert(s:find("client." .. svc .. ":" .. name, 1, true), where .. ": signature/example")
        for _, a in ipairs(def.args) do
          assert(s:find("| `" .. a[1] .. "` | " .. a[2] .. " |", 1, true), where .. ": argument " .. a[1])
          if a.required then
            assert(s:find("| `" .. a[1] .. "` | " .. a[2] .. " | yes |", 1, true), where .. ": " .. a[1] .. " required")
          end
          for _, e in ipairs(a.enum or {}) do
            assert(s:find("`" .. e .. "`", 1, true), where .. ": " .. a[1] .. " value " .. e)
          end
          if a.wire then assert(s:find("`" .. a.wire .. "`", 1, true), where .. ": wire field of " .. a[1]) end
        end
        if #def.args == 0 then assert(s:find("No arguments.", 1, true), where .. ": no arguments") end
        if def.each then
          assert(s:find("client." .. svc .. ":" .. def.each, 1, true), where .. ": iterator " .. def.each)
          if def.items then assert(s:find("`" .. def.items .. "`", 1, true), where .. ": list field") end
          if def.cursor then
            assert(s:find("`" .. def.cursor.arg .. "`", 1, true) and s:find("`" .. def.cursor.next .. "`", 1, true),
              where .. ": cursor")
          end
        end
        if def.bulk then
          assert(s:find("**Bulk:**", 1, true), where .. ": bulk")
          if def.bulk.limit then assert(s:find("**" .. def.bulk.limit .. "**", 1, true), where .. ": bulk limit") end
          assert(s:find(def.bulk.partial and "**Partial success:**" or "**All or nothing per request:**", 1, true),
            where .. ": partial semantics")
        end
        if def.async then
          assert(s:find("**Async:**", 1, true) and s:find(def.async.status, 1, true), where .. ": waiter")
        end
        local _, route = services.classify(def[2])
        assert(route, where .. ": no route claims " .. def[2])
        for scheme in pairs(route.schemes) do
          assert(s:find("`" .. scheme .. "` (", 1, true), where .. ": scheme " .. scheme)
        end
        assert(html:find('id="' .. svc .. name .. '"', 1, true), where .. ": HTML anchor")
      end
    end
    assert.is_true(count > 0)
  end)

  it("has every service with its routes and hosts", function()
    for _, svc in ipairs(reg.names) do
      local spec = reg.services[svc]
      assert(md:find("\n## " .. spec.title .. "\n", 1, true), svc .. ": title")
      for _, r in ipairs(spec.routes) do
        assert(md:find("| `" .. r.name .. "` |", 1, true), svc .. ": route " .. r.name)
        for _, h in pairs(r.hosts) do assert(md:find("`" .. h .. "`", 1, true), svc .. ": host " .. h) end
      end
    end
  end)

  it("lists every call option, client option, knox.Error field and bulk result field", function()
    local function row(name) return md:find("| `" .. name .. "` |", 1, true) end
    for _, o in ipairs(service.OPTS) do assert(row(o), "call option " .. o) end
    local own, session = gen.client_options()
    for _, o in ipairs(own) do assert(row(o), "client option " .. o) end
    for _, o in ipairs(session) do assert(row(o), "client option " .. o) end
    for _, f in ipairs { "kind", "status", "code", "name", "message", "service", "retryable", "items", "cause" } do
      assert(row(f), "knox.Error field " .. f)
    end
    for _, f in ipairs { "ok", "failed", "unknown", "duplicates", "responses", "total", "reasons" } do
      assert(md:find("`result." .. f .. "`", 1, true), "bulk result field " .. f)
    end
    assert(md:find("\n## knox.try\n", 1, true))
    for _, o in ipairs { "timeout", "interval", "max_interval" } do assert(row(o), "wait option " .. o) end
  end)

  it("gives examples that are valid Lua", function()
    local n = 0
    for chunk in md:gmatch "```lua\n(.-)\n```" do
      n = n + 1
      local f, err = load(chunk, "=example", "t", {})
      assert(f, "example does not compile: " .. tostring(err) .. "\n" .. chunk)
    end
    assert.is_true(n > 0)
  end)

  it("escapes the registry's text in Markdown and HTML", function()
    -- outside code, no bare <word> that a renderer would take for a tag
    local text = md:gsub("```lua\n.-\n```", ""):gsub("`[^`\n]*`", "")
    assert.is_nil(text:match "[^\\]<%a[%w_]*>", "unescaped <tag> in the Markdown")
    assert.is_nil(html:match "<id>", "unescaped text in the HTML")
  end)

  it("is what docs/API.md holds (run `make docs` after changing a registry row)", function()
    local f = assert(io.open("docs/API.md", "rb"))
    local committed = f:read "a"
    f:close()
    if committed ~= md then
      error("docs/API.md is out of date with the registry: run `make docs` and commit it\n"
        .. tostring(first_difference(committed, md)), 0)
    end
  end)
end)
