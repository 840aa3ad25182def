-- Regression specs for the hardening issue's Lua-side defects (D1, D2,
-- D7, D8, D9): each of them failed before its fix.
local servers = require "support.http_servers"
local sim_support = require "support.sim"
local helpers = require "helpers"
local core = require "knox.core"

local knox = require "knox"

local function dump(v)
  return core.json.encode(v, { sort_keys = true })
end

describe("hardening", function()
  describe("D1: a provider's credential header is redacted whatever its name", function()
    local srv
    setup(function() srv = servers.httpd(120) end)
    teardown(function() srv.stop() end)

    it("in the request hook and the debug events", function()
      assert.is_false(require("knox.text").is_secret "x-widget", "a name no list knows")
      local events, seen = {}, {}
      local c <close> = knox.client { base_url = srv.url "", env = false,
        auth = knox.auth.token { value = "W1DGET-T0KEN-VALUE", header = "x-widget" },
        debug = function(ev) events[#events + 1] = dump(ev) end }
      c:on("request", function(d) seen[#seen + 1] = dump(d) end)
      c:request("GET", "/echo", { service = "kme" })
      assert.are.equal(1, #seen)
      assert.is_nil(seen[1]:find("W1DGET", 1, true), seen[1])
      assert.matches('"x-widget":"[redacted]"', seen[1], 1, true)
      local requests = 0
      for _, e in ipairs(events) do
        if e:find('"type":"request"', 1, true) then requests = requests + 1 end
        assert.is_nil(e:find("W1DGET-T0KEN-VALUE", 1, true), e)
      end
      assert.are.equal(1, requests)
    end)
  end)

  describe("D2: no credentials in clear", function()
    it("refuses http:// to a host that is not the loopback unless allowed", function()
      local tok = knox.auth.token { value = "t" }
      for _, u in ipairs { "http://example.com", "HTTP://10.0.0.1:8080", "http://user@example.com",
        "http://127.0.0.1.example.com" } do
        local e = helpers.raises(knox.client, { base_url = u, auth = tok, env = false })
        assert.are.equal("usage", e.kind, u)
        assert.matches("allow_insecure_http", e.message, 1, true)
      end
      local e = helpers.raises(knox.client, { region = "us", auth = tok, env = false,
        endpoints = { kme = "http://kme.example.com" } })
      assert.matches("endpoint 'kme' is http://", e.message, 1, true)
      e = helpers.raises(knox.client, { region = "us", env = false,
        auth = knox.auth.oauth2 { client_id = "a", client_secret = "b", scope = "kme",
          token_url = "http://auth.example.com/ams/v1/oauth2/token" } })
      assert.matches("endpoint 'token_url' is http://", e.message, 1, true)
      for _, u in ipairs { "http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1", "https://example.com" } do
        local c <close> = knox.client { base_url = u, auth = tok, env = false }
        assert.is_truthy(c)
      end
      local c <close> = knox.client { base_url = "http://example.com", auth = tok, env = false,
        allow_insecure_http = true }
      assert.is_truthy(c)
    end)
  end)

  describe("D7: one redactor for debug previews", function()
    local sim
    setup(function() sim = sim_support.start { devices = 1 } end)
    teardown(function() if sim then sim:stop() end end)

    it("removes a client secret a token endpoint echoes inside error_description", function()
      local previews = {}
      local c <close> = knox.client { base_url = sim.url, env = false,
        auth = knox.auth.oauth2 { client_id = sim.oauth.client_id, client_secret = sim.oauth.client_secret,
          scope = sim.oauth.scope },
        debug = function(ev) previews[#previews + 1] = dump(ev) end }
      -- URL-decoded, in free text: no field name tells a redactor it is secret
      sim:fault { match = { path = "/ams/v1/oauth2/token" }, status = 400, times = 1,
        message = "the secret you sent (" .. sim.oauth.client_secret .. ") does not match" }
      local e = helpers.raises(c.request, c, "GET", "/msp/v1/managedCustomers")
      assert.is_nil(tostring(e):find(sim.oauth.client_secret, 1, true))
      local responses = 0
      for _, p in ipairs(previews) do
        if p:find('"type":"response"', 1, true) then responses = responses + 1 end
        assert.is_nil(p:find(sim.oauth.client_secret, 1, true), p)
      end
      assert.is_true(responses >= 1)
    end)

    it("redacts secret-named body fields in previews as in errors", function()
      local srv = servers.httpd(60)
      local previews = {}
      local c <close> = knox.client { base_url = srv.url "", env = false, auth = knox.auth.token { value = "T" },
        debug = function(ev) previews[#previews + 1] = dump(ev) end }
      local body = '{"refreshToken":"RT-1","apiKey":"AK-1","secret":"SC-1","privateKey":"PK-1","userToken":"UT-1"}'
      c:request("POST", "/echo", { body = body, service = "kme" })
      srv.stop()
      local all = table.concat(previews, "\n")
      assert.matches("response", all, 1, true)
      for _, v in ipairs { "RT-1", "AK-1", "SC-1", "PK-1", "UT-1" } do
        assert.is_nil(all:find(v, 1, true), v .. " in a debug preview")
      end
    end)
  end)

  describe("D8: misuse is a clear error, at construction where it can be", function()
    local c
    setup(function()
      c = knox.client { base_url = "http://127.0.0.1:9", auth = knox.auth.token { value = "x" }, env = false }
    end)
    teardown(function() c:close() end)

    local function bad_argument(fn, ...)
      local ok, e = pcall(fn, ...)
      assert.is_false(ok)
      assert.is_string(e)
      assert.matches("bad argument", e, 1, true)
      return e
    end

    local function usage(fn, ...)
      local e = helpers.raises(fn, ...)
      assert.are.equal("usage", e.kind)
      return e
    end

    it("raises lauxlib-style bad argument for programmer misuse", function()
      assert.matches("field 'params' must be a table",
        bad_argument(c.request, c, "GET", "/kcs/v1/kme/x", { params = 5 }), 1, true)
      assert.matches("'each_device'", bad_argument(c.kme.each_device, c.kme, 5), 1, true)
      bad_argument(c.batch, c, { n = "x" })
      assert.matches("'try'", bad_argument(knox.try, {}), 1, true)
      bad_argument(knox.pager.each, 5)
    end)

    it("raises usage for bad options, naming the option", function()
      assert.matches("scope", usage(knox.auth.oauth2, { client_id = "a", client_secret = "b",
        scope = { [1] = "kme", [3] = "msp" } }).message, 1, true)
      usage(knox.auth.keys, { client_id = "x", keys = setmetatable({}, { __name = "knox.Key" }) })
      usage(knox.pager.each, function() end, { max_pages = "2" })
      usage(knox.pager.each, function() end, { start = "a" })
      usage(knox.pager.each, function() end, { items = 3 })
      assert.matches("UTF-8", usage(knox.auth.keys, { client_id = "\255\254", file = "x" }).message, 1, true)
      assert.matches("UTF-8", usage(knox.auth.oauth2, { client_id = "a", client_secret = "b\0c",
        scope = "kme" }).message, 1, true)
      usage(knox.auth.token, { value = "a\0b" })
      assert.matches("concurrency", usage(knox.client, { base_url = "http://127.0.0.1:9", env = false,
        auth = knox.auth.token { value = "x" }, concurrency = "x" }).message, 1, true)
      assert.matches("debug", usage(knox.client, { base_url = "http://127.0.0.1:9", env = false,
        auth = knox.auth.token { value = "x" }, debug = "yes" }).message, 1, true)
    end)
  end)

  describe("D9: knox.errors.new leaves the table it is given alone", function()
    it("copies the fields instead of replacing a metatable", function()
      local p = knox.auth.token { value = "x" }
      local mt = getmetatable(p)
      local e = knox.errors.new(p)
      assert.is_true(knox.is_error(e))
      assert.are.equal(mt, getmetatable(p), "the provider keeps its metatable")
      assert.are.equal("x-knox-apitoken", (p:authorize()))
      local plain = { kind = "api", message = "m" }
      assert.are_not.equal(plain, knox.errors.new(plain))
      assert.is_nil(getmetatable(plain))
    end)
  end)
end)
