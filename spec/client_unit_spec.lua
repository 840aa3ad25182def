-- Parts of the client that need no server: URLs (knox.url), dates
-- (knox.headers), routing (knox.services), redaction (knox.text), env.
local client = require "knox.client"
local url = require "knox.url"
local headers = require "knox.headers"
local services = require "knox.services"
local text = require "knox.text"
local helpers = require "helpers"

describe("knox.client helpers", function()
  it("escapes per RFC 3986", function()
    assert.are.equal("a-b_c.d~e", url.escape "a-b_c.d~e")
    assert.are.equal("a%20b%2Fc%3F%26%3D%25", url.escape "a b/c?&=%")
    assert.are.equal("%C3%A9", url.escape "é")
  end)

  it("encodes queries with sorted keys and repeated array keys", function()
    assert.are.equal("", url.encode_query(nil))
    assert.are.equal("", url.encode_query {})
    assert.are.equal("?a=1&b=x%20y&c=true&ids=1&ids=2&z=1.5",
      url.encode_query { z = 1.5, b = "x y", a = 1, c = true, ids = { 1, "2" } })
    assert.are.equal("?big=1700000000000", url.encode_query { big = 1700000000000.0 })
    assert.are.equal("?x=1", url.encode_query "x=1")
    assert.is_true(helpers.raises(url.encode_query, { a = print }):is "usage")
    assert.is_true(helpers.raises(url.encode_query, { a = 0 / 0 }):is "usage")
  end)

  it("fills path parameters escaped as one segment", function()
    assert.are.equal("/kcs/v1/kme/profiles/a%2Fb%20c/get",
      url.expand_path("/kcs/v1/kme/profiles/{id}/get", { id = "a/b c" }))
    assert.are.equal("/x/12", url.expand_path("/x/{n}", { n = 12 }))
    assert.are.equal("/a%20b/%41/%25zz", url.expand_path("/a b/%41/%zz"))
    local e = helpers.raises(url.expand_path, "/x/{id}", {})
    assert.matches("'id' is missing", e.message)
    assert.is_true(helpers.raises(url.expand_path, "/x/{id}", { id = "" }):is "usage")
  end)

  it("refuses '.' and '..' as path parameters (libcurl would collapse them)", function()
    for _, v in ipairs { ".", ".." } do
      local e = helpers.raises(url.expand_path, "/kcs/v1/kme/profiles/{id}", { id = v })
      assert.matches("must not be", e.message)
    end
    assert.are.equal("/p/...", url.expand_path("/p/{id}", { id = "..." }))
  end)

  it("refuses query values that are not lists", function()
    assert.is_true(helpers.raises(url.encode_query, { a = { x = 1 } }):is "usage")
    assert.is_true(helpers.raises(url.encode_query, { a = { 1, nil, 3 } }):is "usage")
  end)

  it("ignores HTTP dates no server sends", function()
    assert.is_nil(headers.http_date "Sun, 06 Nov 1994 99:49:37 GMT")
    assert.is_true(headers.http_date "Sat, 01 Jan 0000 00:00:00 GMT" < 0) -- parsed; the skew check ignores it
    assert.is_nil(headers.http_date "Sun, 00 Nov 2026 08:49:37 GMT")
    assert.is_nil(headers.http_date "Sun, 06 Nov 2026 08:61:37 GMT")
  end)

  it("parses HTTP dates in UTC", function()
    assert.are.equal(1667724577, headers.http_date "Sun, 06 Nov 2022 08:49:37 GMT")
    assert.are.equal(951782400, headers.http_date "Tue, 29 Feb 2000 00:00:00 GMT")
    assert.are.equal(1763769600, headers.http_date "Sat, 22 Nov 2025 00:00:00 GMT")
    assert.is_nil(headers.http_date "yesterday")
    assert.is_nil(headers.http_date(nil))
    assert.is_nil(headers.http_date "Sun, 06 Foo 1994 08:49:37 GMT")
  end)

  it("routes paths to services", function()
    local cases = {
      { "/kcs/v1/kme/devices/list", "kme", "kme" },
      { "/kcs/v2/kme/devices/unassignProfile", "kme", "kme" },
      { "/kcs/v1.1/kg/devices/lock", "kg", "kg" },
      { "/kcs/v1.1/kg-integration/devices/lock", "kg", "kg" },
      { "/kcs/v1/rp/devices/upload", "kdp", "kdp" },
      { "/kcs/v1/kc/devices", "kc", "kc" },
      { "/kc/v2/devices/getDevices", "kc", "kc2" },
      { "/msp/v1/managedCustomers", "msp", "msp" },
      { "/ams/v1/users/accesstoken", "auth", "auth" },
      { "/ams/v1/oauth2/token", "oauth2", "oauth" },
    }
    for _, c in ipairs(cases) do
      local s, r = services.classify(c[1])
      assert.are.equal(c[2], s, c[1])
      assert.are.equal(c[3], r.name, c[1])
    end
    local s, r = services.classify "/other"
    assert.is_nil(s)
    assert.is_nil(r)
  end)

  it("redacts secret headers for hooks", function()
    local h = text.redact_headers { ["x-knox-apitoken"] = "s1", Authorization = "Bearer s2",
      cookie = "s3", accept = "application/json" }
    assert.are.same({ ["x-knox-apitoken"] = "[redacted]", Authorization = "[redacted]",
      cookie = "[redacted]", accept = "application/json" }, h)
  end)

  describe("from_env", function()
    local function env(t) return function(k) return t[k] end end

    it("names the missing region variable", function()
      local e = helpers.raises(client.from_env, env {})
      assert.matches("KNOX_REGION", e.message)
      assert.matches("KNOX_BASE_URL", e.message)
    end)

    it("names the missing credential variables", function()
      local e = helpers.raises(client.from_env, env { KNOX_REGION = "us" })
      assert.matches("KNOX_KEYS_FILE and KNOX_CLIENT_ID", e.message)
      e = helpers.raises(client.from_env, env { KNOX_REGION = "us", KNOX_KEYS_FILE = "k.json" })
      assert.matches("^KNOX_CLIENT_ID is not set", e.message)
      e = helpers.raises(client.from_env, env { KNOX_REGION = "us", KNOX_CLIENT_ID = "c" })
      assert.matches("^KNOX_KEYS_FILE is not set", e.message)
      e = helpers.raises(client.from_env, env { KNOX_REGION = "us", KNOX_OAUTH_CLIENT_ID = "c",
        KNOX_OAUTH_SCOPE = "kme" })
      assert.matches("^KNOX_OAUTH_CLIENT_SECRET is not set", e.message)
      e = helpers.raises(client.from_env, env { KNOX_REGION = "us", KNOX_OAUTH_CLIENT_ID = "c",
        KNOX_OAUTH_CLIENT_SECRET = "s" })
      assert.matches("^KNOX_OAUTH_SCOPE is not set", e.message)
    end)

    it("builds OAuth options with tenant and CA file", function()
      local o = client.from_env(env { KNOX_BASE_URL = "http://127.0.0.1:9", KNOX_OAUTH_CLIENT_ID = "c",
        KNOX_OAUTH_CLIENT_SECRET = "s", KNOX_OAUTH_SCOPE = "msp", KNOX_TENANT = "T1", KNOX_CA_FILE = "/ca.pem" })
      assert.are.equal("http://127.0.0.1:9", o.base_url)
      assert.are.equal("T1", o.tenant)
      assert.are.equal("/ca.pem", o.ca_file)
      assert.are.equal(1, #o.auth)
      assert.are.equal("oauth2", o.auth[1].scheme)
      assert.is_nil(tostring(o.auth[1]):find "s\"", "no secret in tostring")
    end)
  end)
end)
