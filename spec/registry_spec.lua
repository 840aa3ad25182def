-- The service registry (lua/knox/services): every service file checked,
-- one classifier, and a service added by adding one file.
local helpers = require "helpers"
local servers = require "support.http_servers"

local knox = require "knox"
local services = require "knox.services"

describe("knox.services", function()
  it("loads every service file knox ships, each well formed", function()
    local reg = services.load()
    for _, n in ipairs { "auth", "kai", "kc", "kdp", "kg", "kme", "msp", "oauth2", "samsung_account" } do
      local spec = reg.services[n]
      assert.is_table(spec, n)
      assert.are.equal(n, spec.name)
      for _, r in ipairs(spec.routes) do
        assert.are.equal(n, r.service)
        assert.is_string(r.hosts.us, r.name)
        assert.is_string(r.hosts.eu, r.name)
        for scheme, rule in pairs(r.schemes) do
          assert.is_boolean(rule.tenant, r.name .. " " .. scheme)
        end
      end
    end
  end)

  it("states each route's schemes and tenant rule as api-notes §1 and §3.4 say", function()
    assert.are.same({ legacy = { tenant = false } }, services.route("kg").schemes)
    assert.are.same({ legacy = { tenant = false }, oauth2 = { tenant = true } }, services.route("kme").schemes)
    assert.are.same({ oauth2 = { tenant = true } }, services.route("msp").schemes)
    assert.are.same({ oauth2 = { tenant = true } }, services.route("kc2").schemes)
    assert.are.equal("https://api.samsungknox.com", services.route("msp").hosts.eu)
    assert.are.equal("https://eu-kcs-api.samsungknox.com", services.route("kg").hosts.eu)
  end)

  it("classifies a URL's service at any segment boundary, and nothing else", function()
    assert.are.equal("kme", services.service_of "https://h/proxy/kcs/v1/kme/devices/list?x=1")
    assert.are.equal("kg", services.service_of "/kcs/v1.1/kg-integration/devices/lock")
    assert.are.equal("oauth2", services.service_of "https://api.samsungknox.com/ams/v1/oauth2/token")
    assert.are.equal("kai", services.service_of "https://api.samsungknox.com/kai/v1/devices")
    assert.is_nil(services.service_of "https://h/kcs/v1.1/kgb/x")
    assert.is_nil(services.service_of "not a url")
  end)

  describe("a service added as one file", function()
    local dir, srv, saved

    setup(function()
      dir = servers.tmpdir()
      os.execute("mkdir -p " .. dir .. "/knox/services")
      local f = assert(io.open(dir .. "/knox/services/zzdemo.lua", "w"))
      f:write([[
return {
  name = "zzdemo",
  title = "A throwaway service",
  routes = {
    { name = "zzdemo", prefixes = { "^/echo%f[/%z]" },
      hosts = { us = "https://zz.invalid", eu = "https://zz.invalid" },
      schemes = { oauth2 = { tenant = true } } },
  },
  codes = { { 4049999, "WIDGET_NOT_FOUND", 404, "The widget does not exist." } },
  errors = { retry = { ["4299999"] = true }, auth = { ["4019999"] = true } },
  endpoints = { ping = { "POST", "/echo", args = { { "hello", "string" } } } },
}
]])
      f:close()
      saved = package.path
      package.path = dir .. "/?.lua;" .. package.path
      srv = servers.httpd(120)
    end)

    teardown(function()
      package.path = saved
      package.loaded["knox.services.zzdemo"] = nil
      if srv then srv.stop() end
      servers.rmdir(dir)
    end)

    it("is found, routed, bound as client.zzdemo and sent with the scheme it accepts", function()
      assert.are.equal("zzdemo", services.service_of "/echo")
      local client = knox.client {
        base_url = srv.url "",
        -- the legacy provider comes first: the route's schemes must pick the other
        auth = { knox.auth.token { value = "LEGACY-TOKEN" },
          knox.auth.token { value = "OAUTH-TOKEN", header = "Authorization" } },
      }
      local _, res = client.zzdemo:ping { hello = "world" }
      assert.are.equal(200, res.status)
      assert.are.equal("Bearer OAUTH-TOKEN", res.headers["x-echo-h-authorization"])
      assert.is_nil(res.headers["x-echo-h-x-knox-apitoken"])
      assert.are.equal("/echo", res.headers["x-echo-target"])
      client:close()
    end)

    it("refuses a client without a provider the service accepts", function()
      local client = knox.client { base_url = srv.url "", auth = knox.auth.token { value = "LEGACY-TOKEN" } }
      local e = helpers.raises(client.zzdemo.ping, client.zzdemo, {})
      assert.are.equal("usage", e.kind)
      assert.matches("zzdemo: it accepts only knox.auth.oauth2", e.message, 1, true)
      client:close()
    end)

    it("has its error rules applied to its errors", function()
      local e = knox.errors.from_response { status = 200, url = srv.url "/echo",
        body = '{"result":"FAIL","error":{"code":4299999,"message":"SLOW_DOWN"}}' }
      assert.are.same({ "zzdemo", true, "SLOW_DOWN" }, { e.service, e.retryable, e.name })
      e = knox.errors.from_response { status = 400, service = "zzdemo", body = '{"code":4019999}' }
      assert.are.equal("auth", e.kind)
      e = knox.errors.from_response { status = 404, service = "zzdemo", body = '{"code":4049999}' }
      assert.are.same({ "WIDGET_NOT_FOUND", "The widget does not exist." }, { e.name, e.message })
      assert.are.equal("WIDGET_NOT_FOUND", knox.errors.lookup("zzdemo", 4049999).name)
    end)
  end)
end)
