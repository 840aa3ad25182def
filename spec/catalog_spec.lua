-- The code catalog (csrc/catalog.c) against the documents it was built
-- from: the five Knox error-code pages and api-notes.md in ../shared/knox-docs
-- (beside the repo, not in it). The pages are parsed here, at test time, so
-- a code missed or a name that drifts fails the suite.
local helpers = require "helpers"
local errors = require "knox.errors"

local PAGES = {
  { file = "kme-error-codes.txt", service = "kme" },
  { file = "knox-cloud-auth-error-codes.txt", service = "auth" },
  { file = "knox-guard-error-codes.txt", service = "kg" },
  { file = "knox-guard-troubleshoot.txt", service = "kg" },
  { file = "msp-portal-error-codes.txt", service = "msp" },
}

-- api-notes.md sections whose "CODE NAME" pairs belong to one service.
local NOTES = {
  ["3.6"] = "auth", ["4.1"] = "kme", ["4.2"] = "kg", ["4.3"] = "msp",
  ["4.4"] = "kdp", ["4.5"] = "kc", ["4.6"] = "kai",
}

local function read(path) return (assert(require("support.http_servers").read_file(path), path)) end

-- Curly apostrophes in the pages are plain ones in the catalog.
local function plain(s)
  return (s:gsub("\226\128\153", "'"):gsub("\226\128\152", "'"))
end

--- The code tables of one page, flattened to text: either "CODE NAME
-- DESCRIPTION" with spaces, or "| CODE | NAME | DESCRIPTION |", or for the
-- Samsung Account tables "| HTTP | AUT_1001 | DESCRIPTION |".
local function page_rows(text, service)
  local rows = {}
  for line in text:gmatch("[^\n]+") do
    local l = line:gsub("|", " ")
    local code, name, desc = l:match("^%s*(%d%d%d%d%d%d%d%d?)%s+([A-Z][A-Z0-9_]+)%s+(.-)%s*$")
    if code then
      rows[#rows + 1] = { service = service, code = math.tointeger(tonumber(code)), name = name, description = desc }
    else
      local http, sa, d = l:match("^%s*(%d%d%d)%s+([AL][UI][TC]_%d%d%d%d)%s+(.-)%s*$")
      if sa then
        rows[#rows + 1] = { service = "samsung_account", code = sa, name = sa, description = d,
          status = math.tointeger(tonumber(http)) }
      end
    end
  end
  return rows
end

--- "CODE NAME" pairs and {"code": CODE, "message": "NAME"} examples in the
-- sections of api-notes.md listed in NOTES.
local function notes_rows(text)
  local rows = {}
  local section
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local num = line:match("^###%s+(%d+%.%d+)")
    if num then
      section = NOTES[num]
    elseif line:match("^##%s") or line:match("^%-%-%-") then
      section = nil
    end
    if section then
      rows[section] = (rows[section] or "") .. line .. "\n"
    end
  end
  local out = {}
  for service, body in pairs(rows) do
    for code, name in body:gmatch("%f[%d](%d%d%d%d%d%d%d%d?)%s+([A-Z][A-Z0-9_][A-Z0-9_]+)%f[^A-Z0-9_]") do
      out[#out + 1] = { service = service, code = math.tointeger(tonumber(code)), name = name }
    end
    for code, name in body:gmatch('"code"%s*:%s*%[?%s*(%d+)%s*%]?%s*,%s*"message"%s*:%s*%[?%s*"([A-Z][A-Z0-9_]+)"') do
      out[#out + 1] = { service = service, code = math.tointeger(tonumber(code)), name = name }
    end
  end
  return out
end

--- Whether lookup(service, code) names the code as the docs do (a code
-- with two names in one service lists the second in `alternatives`).
local function names(entry)
  local t = { entry.name }
  for _, alt in ipairs(entry.alternatives or {}) do t[#t + 1] = alt.name end
  return t
end

local function contains(list, v)
  for _, x in ipairs(list) do
    if x == v then return true end
  end
  return false
end

describe("code catalog", function()
  local all = errors.catalog()

  it("holds every service with well-formed entries", function()
    local seen, per = {}, {}
    for _, e in ipairs(all) do
      local key = e.service .. "/" .. tostring(e.code) .. "/" .. e.name
      assert.is_nil(seen[key], "duplicate " .. key)
      seen[key] = true
      per[e.service] = (per[e.service] or 0) + 1
      assert.is_string(e.description)
      assert.is_true(#e.description > 5, key)
      assert.is_true(e.kind == "auth" or e.kind == "api")
      if math.type(e.code) == "integer" then
        assert.matches("^[A-Z][A-Z0-9_]+$", e.name)
        -- the first three digits of every Knox code are its HTTP class
        assert.are.equal(tonumber(tostring(e.code):sub(1, 3)), e.status, key)
      else
        assert.are.equal(e.code, e.name, key)
        assert.is_true(e.code:match("^[AL][UI][TC]_%d%d%d%d$") ~= nil or e.code:match("^[a-z_]+$") ~= nil, key)
      end
      -- every entry is found again by lookup, as an integer or a string
      local hit = errors.lookup(e.service, e.code)
      assert.is_not_nil(hit, key)
      assert.is_true(contains(names(hit), e.name), key)
      assert.are.same(hit, errors.lookup(e.service, tostring(e.code)))
    end
    for _, s in ipairs(errors.services) do
      assert.is_true((per[s] or 0) > 0, s)
      assert.are.equal(per[s], #errors.catalog(s))
    end
  end)

  it("looks up per service, with a fallback to Knox Cloud Authentication", function()
    assert.are.equal("API_KEY_RESTRICTION_INVALID", errors.lookup("kg", 4002102).name)
    assert.are.equal("ADD_EC_DELINK_PENDING", errors.lookup("msp", "4002102").name)
    assert.is_nil(errors.lookup(nil, 4002102))
    assert.are.equal("DEVICE_NOT_FOUND", errors.lookup(nil, 4040300).name)
    local fb = errors.lookup("kg", 4032251)
    assert.are.same({ "ACCESS_TOKEN_EXPIRED", "auth", 403, "auth" }, { fb.name, fb.service, fb.status, fb.kind })
    assert.is_nil(errors.lookup("auth", 4040300))
    assert.are.equal("AUT_1001", errors.lookup("kme", "aut_1001").code)
    assert.are.equal("invalid_grant", errors.lookup(nil, "invalid_grant").name)
    assert.is_nil(errors.lookup("kme", 1))
    assert.is_nil(errors.lookup("kme", 4040300.5))
    assert.is_nil(errors.lookup("kme", ""))
    assert.is_nil(errors.lookup("kme", "DEVICE_NOT_FOUND"))
  end)

  it("keeps both spellings the docs use", function()
    assert.are.equal(errors.lookup("auth", 40122050).name, errors.lookup("auth", 4012250).name)
    assert.are.equal("AUTHORIZATION_FAIL", errors.lookup("kme", 40300000).name)
    assert.are.equal("AUTHORIZATION_FAIL", errors.lookup("msp", 4030000).name)
  end)

  it("gives both KME names of 4001701", function()
    local e = errors.lookup("kme", 4001701)
    assert.are.equal("CUSTOMER_ID_INVALID", e.name)
    assert.are.equal("BULK_ENROLL_REQUEST_INVALID", e.alternatives[1].name)
    assert.are.equal(1, #e.alternatives)
  end)

  local dir = helpers.shared_dir()
  if not dir then
    pending("the Knox docs in ../shared/knox-docs are not beside the repo (set KNOX_SHARED_DIR): "
      .. "catalog not checked against the pages")
    return
  end
  local docs = dir .. "/knox-docs/"

  describe("against the pages in " .. docs, function()
    local everything = read(docs .. "api-notes.md")
    for _, p in ipairs(PAGES) do
      everything = everything .. read(docs .. p.file)
    end

    for _, p in ipairs(PAGES) do
      it("has every code of " .. p.file .. " with the same name and meaning", function()
        local rows = page_rows(read(docs .. p.file), p.service)
        assert.is_true(#rows >= 10, p.file .. ": the table format changed? " .. #rows .. " rows")
        for _, r in ipairs(rows) do
          local key = r.service .. " " .. tostring(r.code) .. " " .. r.name
          local hit = errors.lookup(r.service, r.code)
          assert.is_not_nil(hit, "missing " .. key)
          assert.are.equal(r.service, hit.service, key)
          assert.is_true(contains(names(hit), r.name), key .. " is named " .. hit.name)
          local entry
          for _, e in ipairs(errors.catalog(r.service)) do
            if e.code == r.code and e.name == r.name then entry = e end
          end
          assert.is_not_nil(entry, key)
          -- the catalog keeps the documented meaning (Samsung Account rows
          -- keep their first sentence, without the advice)
          local doc = plain(r.description)
          assert.are.equal(entry.description, doc:sub(1, #entry.description), key)
          if r.status then
            assert.are.equal(r.status, entry.status, key)
          end
        end
      end)
    end

    it("has the codes api-notes.md lists per service (KDP and KC 8-digit codes too)", function()
      local rows = notes_rows(read(docs .. "api-notes.md"))
      local per = {}
      for _, r in ipairs(rows) do
        per[r.service] = true
        local hit = errors.lookup(r.service, r.code)
        local key = r.service .. " " .. r.code .. " " .. r.name
        assert.is_not_nil(hit, "missing " .. key)
        assert.is_true(contains(names(hit), r.name), key .. " is named " .. hit.name)
      end
      for _, s in ipairs { "kdp", "kc", "kai", "kme", "kg", "msp", "auth" } do
        assert.is_true(per[s], "no codes found for " .. s .. " in api-notes.md: format changed?")
      end
    end)

    it("holds nothing the documents do not say (except the RFC OAuth codes)", function()
      for _, e in ipairs(all) do
        if e.service ~= "oauth2" then
          local key = e.service .. " " .. tostring(e.code) .. " " .. e.name
          assert.is_truthy(everything:find(tostring(e.code), 1, true), key)
          assert.is_truthy(everything:find(e.name, 1, true), key)
        end
      end
    end)
  end)
end)
