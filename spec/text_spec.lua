-- The one text-safety module (csrc/text.c, lua/knox/text.lua): walks its
-- secret-name table and checks that every output path redacts each entry:
-- error bodies, messages, urls and tostring(err), the client's hooks and
-- the transport's debug events.
local servers = require "support.http_servers"

local knox = require "knox"
local text = require "knox.text"
local core = require "knox.core"

-- A field name each table entry makes secret, and one that carries it.
local function names_of(entry)
  if entry.match == "exact" then return { entry.name, entry.name:upper() } end
  if entry.match == "part" then return { "my" .. entry.name .. "Value", entry.name } end
  return {}
end

local function no_secret(s, secret, where)
  assert.is_nil(tostring(s):find(secret, 1, true), where .. " shows " .. secret .. ": " .. tostring(s))
end

describe("knox.text", function()
  local table_ = text.secret_names()

  it("has one table with every kind of entry", function()
    assert.is_true(#table_ >= 10)
    local kinds = {}
    for _, e in ipairs(table_) do kinds[e.match] = true end
    assert.are.same({ exact = true, part = true, url = true, public = true }, kinds)
    for _, e in ipairs(table_) do
      for _, n in ipairs(names_of(e)) do assert.is_true(text.is_secret(n), n) end
      if e.match == "public" then assert.is_false(text.is_secret(e.name), e.name) end
    end
    assert.is_true(text.is_secret("code", true))
    assert.is_false(text.is_secret "code")
    assert.is_false(text.is_secret "accept")
  end)

  it("redacts every entry in error bodies, messages, tostring and urls", function()
    for i, e in ipairs(table_) do
      for _, n in ipairs(names_of(e)) do
        local secret = ("S3CRET%dV4LUE"):format(i)
        local json = ('{"code":4000000,"errorMessage":"bad %s=%s","%s":"%s"}'):format(n, secret, n, secret)
        local err = knox.errors.from_response { status = 400, service = "kme", body = json,
          method = "GET", url = ("https://u:pw@h/kcs/v1/kme/x?%s=%s&a=1"):format(n, secret) }
        for _, f in ipairs { "body", "message", "url" } do no_secret(err[f], secret, n .. " in err." .. f) end
        no_secret(tostring(err), secret, n .. " in tostring(err)")
        no_secret(text.redact(("%s=%s&x=1"):format(n, secret)), secret, n .. " in form text")
        no_secret(text.line(('"%s": "%s"'):format(n, secret)), secret, n .. " in a line")
      end
    end
    -- url-only names are secrets in URLs, not in bodies
    local err = knox.errors.from_response { status = 400, url = "https://h/kcs/v1/kme/x?code=OAUTHCODE1" }
    no_secret(err.url, "OAUTHCODE1", "code in err.url")
  end)

  describe("on the wire", function()
    local srv

    setup(function() srv = servers.httpd(120) end)
    teardown(function() srv.stop() end)

    it("redacts every entry in request hooks and debug events", function()
      for i, e in ipairs(table_) do
        for _, n in ipairs(names_of(e)) do
          local secret = ("HDR%dS3CRET"):format(i)
          local seen, events = {}, {}
          local client = knox.client { base_url = srv.url "", auth = knox.auth.token { value = "T0KEN-" .. i },
            debug = function(ev) events[#events + 1] = ev end }
          client:on("request", function(d) seen[#seen + 1] = d end)
          client:request("POST", "/echo", { headers = { [n] = secret },
            body = ('{"%s":"%s"}'):format(n, secret), auth = true })
          client:close()
          assert.are.equal(1, #seen)
          no_secret(core.json.encode(seen[1], { sort_keys = true }), secret, n .. " in the request hook")
          no_secret(core.json.encode(seen[1].headers), "T0KEN-" .. i, "the token in the request hook")
          -- the request as sent (the echo server's reply repeats it under
          -- its own header names, which are not knox's to redact)
          local sent = 0
          for _, ev in ipairs(events) do
            if ev.type == "request" then
              sent = sent + 1
              no_secret(core.json.encode(ev, { sort_keys = true }), secret, n .. " in a debug event")
            end
          end
          assert.are.equal(1, sent)
        end
      end
    end)
  end)
end)
