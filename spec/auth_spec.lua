-- Credential providers: what they accept, what they refuse, what they show.
local auth = require "knox.auth"
local helpers = require "helpers"

describe("knox.auth", function()
  local key = require("knox.core").keys.generate { bits = 2048 }

  it("renews at 80% of a token's life or 60 s before its end, whichever is earlier", function()
    assert.are.equal(1440, auth.renew_after(1800))   -- 80%: 24 min of a 30-minute token
    assert.are.equal(2880, auth.renew_after(3600))   -- 80% (2880) is earlier than 3540
    assert.is_true(math.abs(auth.renew_after(599) - 479.2) < 1e-9)   -- 80% of Knox's usual 599 s
    assert.are.equal(90, auth.renew_after(150))      -- 60 s before the end (90) is earlier than 120
    -- short lives: never before half of it, so a call does not renew every time
    assert.are.equal(50, auth.renew_after(100))
    assert.are.equal(15, auth.renew_after(30))
  end)

  it("checks keys provider options", function()
    assert.matches("client_id", helpers.raises(auth.keys, { keys = key }).message)
    assert.matches("file", helpers.raises(auth.keys, { client_id = "c" }).message)
    assert.matches("knox.Key", helpers.raises(auth.keys, { client_id = "c", keys = {} }).message)
    for _, v in ipairs { 0, 31, 1.5, "30" } do
      assert.matches("validity", helpers.raises(auth.keys, { client_id = "c", keys = key, validity = v }).message)
    end
    local e = helpers.raises(auth.keys, { client_id = "c", file = "/nonexistent/keys.json" })
    assert.are.equal("key", e.kind)
  end)

  it("checks oauth2 provider options", function()
    local base = { client_id = "id", client_secret = "s3cr3t-value", scope = "kme" }
    local function with(k, v)
      local t = {}
      for a, b in pairs(base) do t[a] = b end
      t[k] = v
      return t
    end
    assert.matches("client_secret", helpers.raises(auth.oauth2, with("client_secret", "")).message)
    assert.matches("scope", helpers.raises(auth.oauth2, with("scope", nil)).message)
    assert.matches("expires_in", helpers.raises(auth.oauth2, with("expires_in", 3601)).message)
    assert.matches("token_url", helpers.raises(auth.oauth2, with("token_url", "api.example.com/token")).message)
    assert.are.equal("kme msp", auth.oauth2(with("scope", { "kme", "msp" })).scope)
    local p = auth.oauth2(with("token_url", "https://auth.example.test/token"))
    assert.is_nil(tostring(p):find("s3cr3t", 1, true))
    for k, v in pairs(p) do
      assert.is_nil(tostring(v):find("s3cr3t", 1, true), "secret in field " .. tostring(k))
    end
  end)

  it("sends a pre-issued token under the right header and scheme", function()
    local h, v = auth.token { value = "abc" }:authorize()
    assert.are.equal("x-knox-apitoken", h)
    assert.are.equal("abc", v)
    local p = auth.token { value = "abc", header = "Authorization" }
    assert.are.equal("oauth2", p.scheme)
    h, v = p:authorize()
    assert.are.equal("authorization", h)
    assert.are.equal("Bearer abc", v)
    assert.is_false(p.renewable)
    assert.matches("line breaks", helpers.raises(auth.token, { value = "a\r\nX-Evil: 1" }).message)
    assert.matches("header", helpers.raises(auth.token, { value = "a", header = "bad header" }).message)
  end)
end)
