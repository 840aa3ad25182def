-- Normalization of Knox error responses into knox.Error (csrc/errors.c,
-- lua/knox/errors.lua). Bodies come from the documented examples (copied
-- into spec/fixtures/errors/), one per shape, and malformed variants.
local helpers = require "helpers"

local knox = require "knox"
local errors = require "knox.errors"

local KINDS = {
  api = true, auth = true, transport = true, decode = true, usage = true,
  key = true, partial = true, timeout = true, closed = true,
}
local TEXT_FIELDS = { "name", "description", "service", "error_id", "transaction_id",
  "request_id", "method", "url", "message" }

--- Returns true, or false and why, for the invariants every error holds.
local function check_well_formed(err)
  if not errors.is_error(err) then return false, "not a knox.Error: " .. tostring(err) end
  if not KINDS[err.kind] then return false, "kind " .. tostring(err.kind) end
  if type(err.message) ~= "string" or err.message == "" then return false, "message" end
  for _, f in ipairs(TEXT_FIELDS) do
    local v = err[f]
    if v ~= nil then
      if type(v) ~= "string" then return false, f .. " is " .. type(v) end
      if v:find("%c") then return false, f .. " has a control character" end
      if not utf8.len(v) then return false, f .. " is not UTF-8" end
    end
  end
  if err.status ~= nil and math.type(err.status) ~= "integer" then return false, "status" end
  local c = err.code
  if c ~= nil and not (math.type(c) == "integer" and c > 0 or type(c) == "string" and c ~= "") then
    return false, "code " .. tostring(c)
  end
  if type(err.retryable) ~= "boolean" then return false, "retryable" end
  if err.retry_after ~= nil and not (math.type(err.retry_after) == "integer" and err.retry_after >= 0) then
    return false, "retry_after"
  end
  if err.auth_action ~= nil and err.auth_action ~= "renew" then return false, "auth_action" end
  if err.body ~= nil and (type(err.body) ~= "string" or #err.body > 4096) then return false, "body" end
  local ok, s = pcall(tostring, err)
  if not ok or type(s) ~= "string" or s:find("[\r\n]") or s:sub(1, 6) ~= "knox: " then
    return false, "tostring: " .. tostring(s)
  end
  return true
end

local function well_formed(err)
  local ok, why = check_well_formed(err)
  assert(ok, why)
  return err
end

local function fixture(name)
  local f = assert(io.open("spec/fixtures/errors/" .. name, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function from(t)
  return well_formed(errors.from_response(t))
end

local KME = "https://us-kcs-api.samsungknox.com/kcs/v1/kme/devices/list"
local KG = "https://us-kcs-api.samsungknox.com/kcs/v1.1/kg/devices/lock"

describe("knox.errors", function()
  it("is wired into require 'knox'", function()
    assert.are.equal(errors, knox.errors)
    assert.are.equal(errors.Error, knox.Error)
    for _, f in ipairs { "from_response", "check", "items", "lookup", "catalog", "partial", "new",
      "is_error", "clean_url", "service_of" } do
      assert.is_function(errors[f], f)
    end
  end)

  describe("documented example bodies", function()
    it("KME 400 RESOURCE_INVALID_PARAM: data is the message, errorId kept", function()
      local e = from { status = 400, service = "kme", method = "GET", url = KME, body = fixture "kme-400.json" }
      assert.are.same({ "api", 400, 4000000, "RESOURCE_INVALID_PARAM", "Device ID list cannot be empty", "string" },
        { e.kind, e.status, e.code, e.name, e.message, e.error_id })
      assert.are.equal("The specified request parameters are not valid.", e.description)
      assert.is_false(e.retryable)
      assert.is_nil(e.auth_action)
      assert.are.equal(fixture "kme-400.json", e.body)
    end)

    it("KME 401 ACCESS_TOKEN_BAD_REQUEST: data repeats the name, so the catalog speaks", function()
      local e = from { status = 401, service = "kme", body = fixture "kme-401.json" }
      assert.are.equal("auth", e.kind)
      assert.are.equal(4012250, e.code)
      assert.are.equal("ACCESS_TOKEN_BAD_REQUEST", e.name)
      assert.are_not.equal("ACCESS_TOKEN_BAD_REQUEST", e.message)
      assert.are.equal(errors.lookup("kme", 4012250).description, e.message)
      assert.are.equal("renew", e.auth_action)
      assert.is_nil(e.error_id)
    end)

    it("KME 403 AUTHORIZATION_FAIL with the 8-digit code", function()
      local e = from { status = 403, service = "kme", body = fixture "kme-403.json" }
      assert.are.equal(40300000, e.code)
      assert.are.equal("AUTHORIZATION_FAIL", e.name)
      assert.are.equal("auth", e.kind)
      assert.is_nil(e.auth_action)
      assert.are.equal("The current user is unauthorized to use this service.", e.message)
    end)

    it("KME 404 DEVICE_NOT_FOUND prints the documented one-line form", function()
      local e = from { status = 404, service = "kme", method = "GET", url = KME, body = fixture "kme-404.json" }
      assert.are.equal("knox: DEVICE_NOT_FOUND (4040300, HTTP 404) GET /kcs/v1/kme/devices/list: "
        .. "Some/All devices don't exist", tostring(e))
      assert.are.equal("The requested device does not exist.", e.description)
      assert.is_true(e:is "DEVICE_NOT_FOUND")
      assert.is_true(e:is(4040300))
      assert.is_true(e:is "api")
      -- without body text the catalog's description is the message
      local bare = from { status = 404, service = "kme", method = "GET", url = KME,
        body = '{"code":4040300,"message":"DEVICE_NOT_FOUND"}' }
      assert.are.equal("knox: DEVICE_NOT_FOUND (4040300, HTTP 404) GET /kcs/v1/kme/devices/list: "
        .. "The requested device does not exist.", tostring(bare))
    end)

    it("KME 500 INTERNAL_SERVER_ERROR is retryable", function()
      local e = from { status = 500, service = "kme", body = fixture "kme-500.json" }
      assert.are.equal("INTERNAL_SERVER_ERROR", e.name)
      assert.is_true(e.retryable)
      assert.are.equal("api", e.kind)
    end)

    it("Knox Guard 401 {result, error{code, message, reason}}", function()
      local e = from { status = 401, service = "kg", url = KG, method = "POST", body = fixture "kg-401.json" }
      assert.are.same({ "auth", 4010000, "AUTHORIZATION_FAIL", "Invalid Api Key", "renew" },
        { e.kind, e.code, e.name, e.message, e.auth_action })
      assert.are.equal("The API key is not valid or the restriction data does not match.", e.description)
    end)

    it("Knox Guard async result: the failed entry of resultList is an item", function()
      local list = errors.items(fixture "kg-transaction.json", "kg")
      assert.are.equal(1, #list)
      assert.are.equal("123456789012347", list[1].id)
      local e = well_formed(list[1].error)
      assert.are.equal(4000000, e.code) -- a numeric string in the body
      assert.are.equal("RESOURCE_INVALID_PARAM", e.name)
      assert.are.equal("Argument is invalid.", e.message) -- reason only repeats the name
      assert.is_nil(e.status)
      assert.are.equal("api", e.kind)
      assert.is_false(e.retryable)
    end)

    it("Knox Guard examples as printed (invalid JSON) do not break anything", function()
      assert.are.same({}, errors.items(fixture "kg-transaction-verbatim.json", "kg"))
      assert.is_nil(errors.check { status = 200, service = "kg", body = fixture "kg-200-verbatim.json" })
      -- fields are salvaged from JSON that does not parse
      local e = from { status = 400, service = "kg", body = fixture "kg-transaction-verbatim.json" }
      assert.are.same({ 4000000, "RESOURCE_INVALID_PARAM", "Argument is invalid." }, { e.code, e.name, e.message })
      -- but never a code shortened by a cut
      local cut = from { status = 404, service = "kme", body = '{"errorId":"x","code":40403' }
      assert.is_nil(cut.code)
      assert.are.equal("x", cut.error_id)
      assert.are.equal("Not Found", cut.message)
      local cut2 = from { status = 404, service = "kme", body = '{"code":4040300,"message":"DEVICE_NOT_FOU' }
      assert.are.same({ 4040300, "DEVICE_NOT_FOUND" }, { cut2.code, cut2.name })
    end)

    it("MSP Portal {transactionalId, code: NAME, errorCode: string, errorMessage}", function()
      local e = from { status = 403, service = "msp", body = fixture "msp-403.json" }
      assert.are.same({ 4030000, "AUTHORIZATION_FAIL", "6m789un9-....-n9wre821m26m" },
        { e.code, e.name, e.transaction_id })
      assert.are.equal("The current user is unauthorized to use this service.", e.message)
      assert.are.equal("auth", e.kind)
      assert.are.equal("msp", e.service)
      assert.matches('"code": "AUTHORIZATION_FAIL"', e.body, 1, true)
    end)

    it("Deployment Program error body with an 8-digit code", function()
      local e = from { status = 400, url = "https://us-kcs-api.samsungknox.com/kcs/v1/rp/devices/upload",
        body = fixture "kdp-400.json" }
      assert.are.same({ "kdp", 40000011, "CUSTOMER_ID_INVALID", "a1b2c3", "customerId is not valid" },
        { e.service, e.code, e.name, e.error_id, e.message })
      assert.are.equal(errors.lookup("kdp", 40000011).description, e.description)
    end)

    it("Deployment Program status: devices[].code inside a 200 are items", function()
      local list = errors.items(fixture "kdp-status.json", "kdp")
      assert.are.equal(1, #list)
      assert.are.equal("350000000000001", list[1].id)
      assert.are.same({ 40000004, "DEVICE_INVALID", "Invalid IMEI" },
        { list[1].error.code, list[1].error.name, list[1].error.message })
    end)

    it("Knox Configure {code: 8 digits, message, data}", function()
      local e = from { status = 400, url = "https://api.samsungknox.com/kc/v2/devices/getDevices",
        body = fixture "kc-400.json" }
      assert.are.same({ "kc", 40000000, "RESOURCE_INVALID_PARAM", "pageSize must be between 1 and 100" },
        { e.service, e.code, e.name, e.message })
    end)

    it("Knox Configure assign counts: one item with the failed count", function()
      local list = errors.items(fixture "kc-assign.json", "kc")
      assert.are.equal(1, #list)
      assert.is_nil(list[1].id)
      assert.are.equal(3, list[1].count)
      assert.matches("3 of 10", well_formed(list[1].error).message, 1, true)
    end)

    it("KAI {result, error{code, message, reason}}", function()
      local e = from { status = 400, url = "https://api.samsungknox.com/kai/v1/devices",
        body = fixture "kai-400.json" }
      assert.are.same({ "kai", 4000000, "RESOURCE_INVALID_PARAM", "pageNum less than 0" },
        { e.service, e.code, e.name, e.message })
    end)

    it("the array variant of KBA-1242 (expired token: renew)", function()
      local e = from { status = 401, service = "kme", body = fixture "kba1242-array.json" }
      assert.are.same({ "auth", 4030000, "AUTHENTICATION_FAIL", "renew" },
        { e.kind, e.code, e.name, e.auth_action })
      assert.matches("access token has expired", e.message, 1, true)
      -- same at 403, where only the text says it expired
      local f = from { status = 403, service = "kme", body = fixture "kba1242-array.json" }
      assert.are.equal("auth", f.kind)
      assert.are.equal("renew", f.auth_action)
    end)

    it("an nginx HTML 502 page from a proxy", function()
      local e = from { status = 502, headers = { ["content-type"] = "text/html" }, service = "kme",
        body = fixture "proxy-502.html" }
      assert.are.equal("502 Bad Gateway", e.message)
      assert.is_true(e.retryable)
      assert.is_nil(e.code)
      assert.is_nil(e.name)
      assert.are.equal("knox: api (HTTP 502): 502 Bad Gateway", tostring(e))
    end)
  end)

  describe("other shapes", function()
    it("Samsung Account error_code/error_description (shape UNCONFIRMED)", function()
      local e = from { status = 400, service = "samsung_account",
        body = '{"error":"invalid_request","error_code":"AUT_1001","error_description":"client_id missing"}' }
      assert.are.same({ "auth", "AUT_1001", "AUT_1001", "client_id missing" }, { e.kind, e.code, e.name, e.message })
      assert.are.equal(errors.lookup("samsung_account", "AUT_1001").description, e.description)
      assert.are.equal("knox: AUT_1001 (HTTP 400): client_id missing", tostring(e))
      assert.is_true(e:is "AUT_1001")
    end)

    it("a bare AUT_/LIC_ code anywhere in the body", function()
      local e = from { status = 400, body = "error AUT_1702 while issuing token" }
      assert.are.equal("AUT_1702", e.code)
      assert.are.equal("The value of the client_secret parameter is incorrect.", e.description)
      assert.are.equal("auth", e.kind)
      local j = from { status = 500, body = '{"detail":"failed: lic_5101"}' }
      assert.are.equal("LIC_5101", j.code)
      assert.is_true(j.retryable)
      -- not inside a longer word or number
      assert.is_nil(from({ status = 400, body = "XAUT_1702" }).code)
      assert.is_nil(from({ status = 400, body = "AUT_17021" }).code)
    end)

    it("OAuth 2.0 {error, error_description}", function()
      local e = from { status = 401, url = "https://api.samsungknox.com/ams/v1/oauth2/token", method = "POST",
        body = '{"error":"invalid_client","error_description":"Client authentication failed"}' }
      assert.are.same({ "oauth2", "auth", "invalid_client", "invalid_client", "Client authentication failed" },
        { e.service, e.kind, e.code, e.name, e.message })
      assert.is_nil(e.auth_action) -- renewing with the same credentials cannot help
      assert.is_false(e.retryable)
      local g = from { status = 400, service = "oauth2", body = '{"error":"invalid_grant"}' }
      assert.are.equal(errors.lookup("oauth2", "invalid_grant").description, g.message)
      assert.are.equal("auth", g.kind)
    end)

    it("WWW-Authenticate: Bearer error=invalid_token means renew", function()
      local e = from { status = 401, service = "msp", body = "",
        headers = { ["www-authenticate"] = 'Bearer realm="knox", error="invalid_token", '
          .. 'error_description="The access token expired"' } }
      assert.are.same({ "invalid_token", "renew", "The access token expired" }, { e.code, e.auth_action, e.message })
    end)

    it("RFC 9457 problem details and Spring-style bodies", function()
      local p = from { status = 404, body = '{"type":"about:blank","title":"Not Found","detail":"No such device"}' }
      assert.are.equal("No such device", p.message)
      local s = from { status = 404,
        body = '{"timestamp":"2026-01-01T00:00:00Z","status":404,"error":"Not Found","path":"/kcs/v1/x"}' }
      assert.are.equal("Not Found", s.message)
      assert.is_nil(s.code)
    end)

    it("plain text and empty bodies", function()
      local t = from { status = 503, body = "upstream connect error\nor disconnect/reset before headers" }
      assert.are.equal("upstream connect error or disconnect/reset before headers", t.message)
      assert.is_true(t.retryable)
      local e = from { status = 404, body = "" }
      assert.are.equal("Not Found", e.message)
      assert.is_nil(e.body)
      assert.are.equal("HTTP 599", from({ status = 599 }).message)
      assert.are.equal("unknown error", from({}).message)
    end)

    it("codes given as numbers or numeric strings normalize to integers", function()
      for _, code in ipairs { '4040300', '"4040300"', '" 4040300 "', '4040300.0', '[4040300]', '["4040300"]' } do
        local e = from { status = 404, service = "kg", body = '{"result":"FAIL","error":{"code":' .. code .. '}}' }
        assert.are.equal(4040300, e.code, code)
        assert.are.equal("integer", math.type(e.code))
        assert.are.equal("DEVICE_NOT_FOUND", e.name)
      end
    end)
  end)

  describe("names per service", function()
    it("4002102 means different things in Knox Guard and MSP Portal", function()
      local body = '{"code":4002102}'
      assert.are.equal("API_KEY_RESTRICTION_INVALID", from({ status = 400, service = "kg", body = body }).name)
      assert.are.equal("ADD_EC_DELINK_PENDING", from({ status = 400, service = "msp", body = body }).name)
      local none = from { status = 400, body = body }
      assert.is_nil(none.name) -- ambiguous without a service
      assert.is_nil(none.description)
      assert.are.equal(4002102, none.code)
      assert.are.equal("Bad Request", none.message)
    end)

    it("the service comes from the URL when not given", function()
      local cases = {
        ["https://us-kcs-api.samsungknox.com/kcs/v1/kme/devices/list"] = "kme",
        ["https://eu-kcs-api.samsungknox.com/kcs/v2/kme/devices/unassignProfile"] = "kme",
        ["https://us-kcs-api.samsungknox.com/kcs/v1.1/kg/devices/lock"] = "kg",
        ["https://us-kcs-api.samsungknox.com/kcs/v1.1/kg-integration/devices/lock"] = "kg",
        ["https://api.samsungknox.com/msp/v1/managedCustomers"] = "msp",
        ["https://us-kcs-api.samsungknox.com/kcs/v1/rp/devices/upload"] = "kdp",
        ["https://us-kcs-api.samsungknox.com/kcs/v1/kc/devices"] = "kc",
        ["https://api.samsungknox.com/kc/v2/devices/getDevices"] = "kc",
        ["https://us-kcs-api.samsungknox.com/ams/v1/users/accesstoken"] = "auth",
        ["https://api.samsungknox.com/ams/v1/oauth2/token"] = "oauth2",
        ["http://127.0.0.1:8080/kcs/v1/kme/devices/list?pageNum=0"] = "kme",
        ["/msp/v1/profiles"] = "msp",
      }
      for url, svc in pairs(cases) do
        assert.are.equal(svc, errors.service_of(url), url)
        assert.are.equal(svc, from({ status = 400, url = url }).service, url)
      end
      for _, url in ipairs { "https://example.com/", "https://x/kcs/v1/kmex/y", "https://x/y?p=/kcs/v1/kme/",
        "https://x/kcs/v1.1/kgb" } do
        assert.is_nil(errors.service_of(url), url)
      end
      local e = from { status = 400, url = "https://api.samsungknox.com/msp/v1/managedCustomers/link",
        body = '{"errorCode":"4002102"}' }
      assert.are.equal("ADD_EC_DELINK_PENDING", e.name)
      -- a given service wins over the URL
      assert.are.equal("kg", from({ status = 400, service = "kg", url = KME }).service)
    end)

    it("the name in the body wins over the catalog", function()
      local e = from { status = 404, service = "kme", body = '{"code":4040300,"message":"DEVICE_GONE"}' }
      assert.are.equal("DEVICE_GONE", e.name)
      assert.is_nil(e.description) -- the catalog's text is for another name
      assert.are.equal("Not Found", e.message)
    end)

    it("4001701 has two names in KME: the body picks, else none is guessed", function()
      local a = from { status = 400, service = "kme",
        body = '{"code":4001701,"message":"BULK_ENROLL_REQUEST_INVALID"}' }
      assert.are.equal("The request is invalid.", a.description)
      local b = from { status = 400, service = "kme", body = '{"code":4001701,"message":"CUSTOMER_ID_INVALID"}' }
      assert.are.equal("The provided customer ID is invalid.", b.description)
      local c = from { status = 400, service = "kme", body = '{"code":4001701}' }
      assert.is_nil(c.name)
      assert.are.equal(4001701, c.code)
    end)

    it("a name without a code gets the service's code", function()
      local e = from { status = 404, service = "msp", body = '{"code":"CUSTOMER_NOT_FOUND"}' }
      assert.are.equal(4042100, e.code)
      assert.are.equal("This customer doesn't exist.", e.message)
    end)

    it("an unambiguous code gets its name with no service known", function()
      local e = from { status = 404, body = '{"code":4040300}' }
      assert.are.equal("DEVICE_NOT_FOUND", e.name)
      assert.is_nil(e.service)
    end)

    it("an unknown code with a known name is classified by that name in the service", function()
      assert.are.equal("auth", from({ status = 404, service = "kg",
        body = '{"result":"FAIL","error":{"code":4049999,"message":"USER_NOT_FOUND"}}' }).kind)
      assert.are.equal("api", from({ status = 404, service = "kme",
        body = '{"code":4049999,"message":"USER_NOT_FOUND"}' }).kind)
      local e = from { status = 403, service = "kc", body = '{"code":4039999,"message":"ACCESS_TOKEN_EXPIRED"}' }
      assert.are.same({ "auth", "renew" }, { e.kind, e.auth_action })
    end)

    it("auth codes answer on every kcs service (token check in front)", function()
      local e = from { status = 401, service = "kdp", body = '{"code":4032251}' }
      assert.are.same({ "ACCESS_TOKEN_EXPIRED", "auth", "renew" }, { e.name, e.kind, e.auth_action })
    end)
  end)

  describe("classification", function()
    it("retryable for 429, 500, 502, 503, 504 and never for other 4xx", function()
      for _, s in ipairs { 429, 500, 502, 503, 504 } do
        assert.is_true(from({ status = s, service = "kme" }).retryable, s)
      end
      for _, s in ipairs { 400, 401, 403, 404, 405, 406, 408, 409, 412, 413, 422, 501, 505, 302 } do
        assert.is_false(from({ status = s, service = "kme" }).retryable, s)
      end
      -- a code that says "try again" does not make a 4xx retryable
      assert.is_false(from({ status = 400, body = "LIC_5101" }).retryable)
      -- a 500 the client cannot fix by repeating
      assert.is_false(from({ status = 500, service = "kme", body = '{"code":5000006}' }).retryable)
      assert.is_true(from({ status = 500, service = "msp", body = '{"errorCode":"5000000"}' }).retryable)
    end)

    it("per-item errors take retryable from the code's own class", function()
      local list = errors.items('{"resultList":[{"result":"FAIL","requestedId":"1","error":{"code":5001804}},'
        .. '{"result":"FAIL","requestedId":"2","error":{"code":"4040300"}}]}', "kg")
      assert.are.equal(2, #list)
      assert.is_true(list[1].error.retryable)
      assert.are.equal("LICENSE_INTERNAL_SERVER_FAILED", list[1].error.name)
      assert.is_false(list[2].error.retryable)
    end)

    it("kind auth and auth_action renew", function()
      local function e(t) return from(t) end
      local renew = {
        { status = 403, service = "auth", body = '{"code":4032251,"message":"ACCESS_TOKEN_EXPIRED"}' },
        { status = 403, service = "kme", body = '{"code":4032252,"message":"ACCESS_TOKEN_INVALID"}' },
        { status = 400, service = "auth", body = '{"code":4002250,"message":"API_KEY_NON_UNIQUE_JWTID"}' },
        { status = 401, service = "kme" }, -- plain 401: renew once (the client replays at most once)
        { status = 401, service = "kg", body = "<html><title>401</title></html>" },
        { status = 401 },
        { status = 401, service = "msp", body = '{"error":"invalid_token"}' },
      }
      for i, t in ipairs(renew) do
        local err = e(t)
        assert.are.equal("auth", err.kind, i)
        assert.are.equal("renew", err.auth_action, i)
        assert.is_false(err.retryable, i)
      end
      local no_renew = {
        { status = 401, service = "auth" }, -- the token endpoint itself
        { status = 401, service = "oauth2", body = '{"error":"invalid_client"}' },
        { status = 400, service = "oauth2", body = '{"error":"invalid_grant"}' },
        { status = 400, service = "auth", body = '{"code":40122050}' },
        { status = 400, service = "samsung_account", body = '{"error_code":"AUT_1802"}' },
      }
      for i, t in ipairs(no_renew) do
        local err = e(t)
        assert.are.equal("auth", err.kind, i)
        assert.is_nil(err.auth_action, i)
      end
      for _, t in ipairs {
        { status = 403, service = "kme", body = '{"code":4030003,"message":"TENANT_BLOCKED"}' },
        { status = 404, service = "kg", body = '{"result":"FAIL","error":{"code":4040300}}' },
        { status = 500, service = "kme" },
      } do
        local err = e(t)
        assert.are.equal("api", err.kind)
        assert.is_nil(err.auth_action)
      end
    end)

    it("Retry-After as seconds or an HTTP-date, any header case", function()
      assert.are.equal(120, from({ status = 429, headers = { ["retry-after"] = "120" } }).retry_after)
      assert.are.equal(7, from({ status = 429, headers = { ["Retry-After"] = " 7 " } }).retry_after)
      assert.are.equal(7, from({ status = 429, headers = { ["RETRY-AFTER"] = 7 } }).retry_after)
      assert.are.equal(8, from({ status = 503, headers = { ["retry-after"] = { "8", "9" } } }).retry_after)
      local date = "Wed, 21 Oct 2026 07:28:00 GMT"
      for _, ra in ipairs { "Wed, 21 Oct 2026 07:29:30 GMT", "Wednesday, 21-Oct-26 07:29:30 GMT",
        "Wed Oct 21 07:29:30 2026" } do
        assert.are.equal(90, from({ status = 503, headers = { ["retry-after"] = ra, date = date } }).retry_after, ra)
      end
      -- in the past: 0
      assert.are.equal(0, from({ status = 503,
        headers = { ["retry-after"] = "Wed, 21 Oct 2026 07:00:00 GMT", date = date } }).retry_after)
      -- relative to now without a Date header
      local soon = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 100)
      local ra = from({ status = 503, headers = { ["retry-after"] = soon } }).retry_after
      assert.is_true(ra >= 90 and ra <= 100, tostring(ra))
      for _, bad in ipairs { "soon", "-5", "1.5", "", "Wed, 32 Oct 2026 07:00:00 GMT",
        "Wed, 21 Foo 2026 07:00:00 GMT" } do
        assert.is_nil(from({ status = 503, headers = { ["retry-after"] = bad } }).retry_after, bad)
      end
      assert.are.equal(1000000000,
        from({ status = 503, headers = { ["retry-after"] = "99999999999999999999" } }).retry_after)
    end)

    it("ids from the body and from response headers", function()
      local e = from { status = 404, service = "kme", body = fixture "kme-404.json",
        headers = { ["X-Request-Id"] = "req-1" } }
      assert.are.equal("req-1", e.request_id)
      assert.are.equal("string", e.error_id)
      assert.are.equal("amzn-2", from({ status = 500, headers = { ["x-amzn-requestid"] = "amzn-2" } }).request_id)
      assert.are.equal("T-9", from({ status = 400, body = '{"transactionId":"T-9"}' }).transaction_id)
      assert.are.equal("12345", from({ status = 400, body = '{"errorId":12345}' }).error_id)
      assert.is_nil(from({ status = 500, headers = {} }).request_id)
    end)
  end)

  describe("secrets and size", function()
    local jwt = "eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9.eyJhY2Nlc3NUb2tlbiI6InNlY3JldC10b2tlbiJ9.c2lnbmF0dXJlLXNlY3JldA"
    local secrets = { "hunter2", "s3cr3t-value", "tok-abcdef123456", jwt, "c2lnbmF0dXJlLXNlY3JldA",
      "opaque-bearer-9876" }

    it("tostring, url, message and body never carry the request's or response's secrets", function()
      local e = from {
        status = 401, method = "POST",
        url = "https://admin:hunter2@api.samsungknox.com/ams/v1/oauth2/token?client_secret=s3cr3t-value"
          .. "&access_token=tok-abcdef123456&code=opaque-bearer-9876&pageNum=0#frag",
        headers = { authorization = "Bearer opaque-bearer-9876" },
        body = '{"error":"invalid_token","error_description":"token ' .. jwt .. ' rejected",'
          .. '"access_token":"tok-abcdef123456","hint":"Bearer opaque-bearer-9876"}',
      }
      for _, s in ipairs(secrets) do
        for _, field in ipairs { tostring(e), e.url, e.message, e.body } do
          assert.is_nil(field:find(s, 1, true), s .. " in " .. field)
        end
      end
      assert.are.equal("https://api.samsungknox.com/ams/v1/oauth2/token?client_secret=[redacted]"
        .. "&access_token=[redacted]&code=[redacted]&pageNum=0", e.url)
      assert.matches("pageNum=0", tostring(e), 1, true)
      assert.matches('"error":"invalid_token"', e.body, 1, true)
    end)

    it("the body keeps Knox's own code fields and is cut to 4 KiB on a UTF-8 boundary", function()
      assert.matches('"code":4040300', from({ status = 404, body = fixture "kme-404.json" }).body, 1, true)
      for _, ch in ipairs { "é", "€", "😀" } do
        local body = '{"data":"' .. string.rep(ch, 5000) .. '"}'
        local e = from { status = 400, body = body }
        assert.is_true(#e.body <= 4096 and #e.body > 4090)
        assert.is_truthy(utf8.len(e.body), ch)
        assert.are.equal(body:sub(1, #e.body), e.body)
        assert.is_true(#e.message <= 480)
        assert.is_truthy(utf8.len(e.message))
      end
    end)

    it("clean_url drops userinfo and fragments and keeps the rest", function()
      assert.are.equal("https://h/p?a=1&token=[redacted]", errors.clean_url("https://u:p@h/p?a=1&token=x#f"))
      assert.are.equal("/kcs/v1/kme/devices/list", errors.clean_url("/kcs/v1/kme/devices/list"))
      assert.are.equal("https://h/a b", errors.clean_url("https://h/a\nb"))
    end)
  end)

  describe("malformed bodies", function()
    local function each_status(body, fn)
      for _, s in ipairs { 400, 401, 500 } do
        for _, svc in ipairs { "kme", "kg", "msp", "oauth2" } do
          local e = from { status = s, service = svc, body = body }
          if fn then fn(e, s, svc) end
        end
      end
    end

    it("truncated JSON at every length of every fixture", function()
      for _, name in ipairs { "kme-400.json", "kg-401.json", "msp-403.json", "kba1242-array.json", "kai-400.json" } do
        local body = fixture(name)
        for n = 0, #body do
          local e = from { status = 400, service = "kme", body = body:sub(1, n) }
          assert.are.equal(400, e.status)
        end
      end
    end)

    it("code as an object, array of objects, boolean, null, negative, fraction, huge", function()
      for _, code in ipairs { '{"value":4040300}', '[{"a":1}]', 'true', 'false', 'null', '-4040300',
        '4040300.5', '1e300', '"4040300x"', '""', '[]', '[[4040300]]', '"NaN"', '0' } do
        each_status('{"code":' .. code .. ',"message":"SOME_ERROR","data":"d"}', function(e)
          assert.is_nil(e.code, code)
          assert.are.equal("SOME_ERROR", e.name)
          assert.are.equal("d", e.message)
        end)
        each_status('{"result":"FAIL","error":{"code":' .. code .. '}}')
        each_status('{"errorCode":' .. code .. ',"code":' .. code .. '}')
      end
    end)

    it("message, data, reason and error of the wrong types", function()
      for _, v in ipairs { '12', '{"x":1}', '[1,2]', 'true', 'null', '[]', '[null]', '{}' } do
        each_status('{"code":4040300,"message":' .. v .. ',"data":' .. v .. '}', function(e)
          assert.are.equal(4040300, e.code)
        end)
        each_status('{"result":"FAIL","error":' .. v .. '}')
        each_status('{"error":{"code":4010000,"message":' .. v .. ',"reason":' .. v .. '}}')
        each_status('{"error":' .. v .. ',"error_description":' .. v .. ',"error_code":' .. v .. '}')
        each_status('{"errorCode":"4030000","code":' .. v .. ',"errorMessage":' .. v
          .. ',"transactionalId":' .. v .. '}')
      end
    end)

    it("missing fields and other top-level values", function()
      for _, b in ipairs { '{}', '[]', '[{}]', '[1,{"code":4040300}]', '"text"', '12', 'null', 'true',
        '{"result":"FAIL"}', '{"error":{}}', '{"errors":[]}', '{"errors":["x"]}', '\239\187\191{"code":4040300}' } do
        each_status(b)
      end
      assert.are.equal(4040300, from({ status = 404, body = '\239\187\191{"code":4040300}' }).code)
      assert.are.equal(4040300, from({ status = 404, body = '[{"code":4040300}]' }).code)
    end)

    it("huge bodies", function()
      local big = '{"code":4040300,"data":"' .. string.rep("x", 5 * 1024 * 1024) .. '"}'
      local e = from { status = 404, body = big }
      assert.are.equal(4096, #e.body)
      assert.is_true(#e.message <= 480)
      local text = string.rep("A", 3 * 1024 * 1024)
      from { status = 500, body = text }
      local deep = string.rep("[", 200000) .. string.rep("]", 200000)
      from { status = 400, body = deep }
      local wide = "[" .. string.rep('{"code":4040300},', helpers.scaled(100000, 1000)) .. "{}]"
      assert.are.equal(4040300, from({ status = 400, body = wide }).code)
      assert.is_table(errors.items(wide, "kme"))
    end)

    it("invalid UTF-8, control characters and NUL bytes", function()
      local e = from { status = 400, body = '{"code":4000000,"data":"bad \255\254 \192\175 \237\160\128 end\0x\n\ty"}' }
      assert.is_truthy(utf8.len(e.message))
      assert.matches("^bad ", e.message)
      from { status = 400, body = "\0\0\0" }
      from { status = 400, body = "\255\254\253" .. string.rep("\200", 100) }
      -- text that is nothing but controls is no message (found by the random cases)
      assert.are.equal("Bad Request", from({ status = 400, body = '"\\u0012"' }).message)
      assert.are.equal("Bad Request", from({ status = 400, body = "\1\2\3" }).message)
      local n = from { status = 400, service = "kg", body = '{"result":"FAIL","error":{"message":"A\0B"}}' }
      assert.are_not.equal("A", n.name)
    end)
  end)

  describe("random and mutated bodies", function()
    -- Deterministic by default; KNOX_FUZZ_SEED / KNOX_FUZZ_ITERATIONS explore more.
    local seed = tonumber(os.getenv("KNOX_FUZZ_SEED")) or 20261122
    local iterations = tonumber(os.getenv("KNOX_FUZZ_ITERATIONS")) or helpers.scaled(3000, 100)
    local rnd = math.random

    local KEYS = { "code", "errorCode", "error_code", "message", "data", "reason", "error", "errors",
      "errorMessage", "error_description", "errorId", "transactionalId", "transactionId", "result",
      "resultList", "requestedId", "devices", "imei", "failedDeviceList", "notFoundDeviceList",
      "failedCount", "totalCount", "fail", "count", "detail", "title", "status" }
    local STRINGS = { "FAIL", "SUCCESS", "DEVICE_NOT_FOUND", "4040300", "40300000", "AUT_1001", "LIC_5101",
      "invalid_token", "invalid_grant", "", " ", "\255\254", "\195", "é€😀", "access token has expired",
      "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", string.rep("x", 700), "\n\t\0", "null",
      "Bearer abcdefghijkl", "client_secret=abc", "<html><title>t</title>" }
    local NUMBERS = { "4040300", "4000000", "40300000", "5000000", "5001804", "-1", "0", "1e300", "4030000.5",
      "4002102", "9007199254740993", "4.0403e6", "-0", "123456789012345678901234567890" }
    local TOKENS = { "{", "}", "[", "]", '"', ":", ",", "null", "true", "\\", "\\u0000", "\\ud800", "\0", "\255",
      '"code":', '"error":{', '"message":"', "AUT_1001", "4040300", "<title>", "eyJ" }

    local function jstr(s)
      return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
    end

    local function value(depth)
      local r = depth > 3 and rnd(6) or rnd(10)
      if r == 1 then return "null"
      elseif r == 2 then return rnd(2) == 1 and "true" or "false"
      elseif r == 3 then return NUMBERS[rnd(#NUMBERS)]
      elseif r <= 6 then return jstr(STRINGS[rnd(#STRINGS)])
      elseif r <= 8 then
        local parts = {}
        for i = 1, rnd(0, 6) do
          parts[i] = jstr(KEYS[rnd(#KEYS)]) .. ":" .. value(depth + 1)
        end
        return "{" .. table.concat(parts, ",") .. "}"
      else
        local parts = {}
        for i = 1, rnd(0, 4) do parts[i] = value(depth + 1) end
        return "[" .. table.concat(parts, ",") .. "]"
      end
    end

    local function mutate(s)
      for _ = 1, rnd(1, 4) do
        local n = #s
        local r = rnd(5)
        local i = rnd(0, n)
        if r == 1 and n > 0 then
          local j = rnd(n)
          s = s:sub(1, j - 1) .. string.char(rnd(0, 255)) .. s:sub(j + 1)
        elseif r == 2 then
          s = s:sub(1, i) .. s:sub(i + rnd(1, 16))
        elseif r == 3 then
          s = s:sub(1, i) .. TOKENS[rnd(#TOKENS)] .. s:sub(i + 1)
        elseif r == 4 then
          s = s:sub(1, i)
        else
          local j = rnd(i, n)
          s = s:sub(1, j) .. s:sub(i + 1, j) .. s:sub(j + 1)
        end
      end
      return s
    end

    local seeds = {}
    for _, f in ipairs { "kme-400.json", "kme-401.json", "kg-401.json", "kg-transaction.json", "msp-403.json",
      "kdp-status.json", "kc-assign.json", "kba1242-array.json", "proxy-502.html" } do
      seeds[#seeds + 1] = fixture(f)
    end
    local STATUSES = { false, 200, 206, 400, 401, 403, 404, 409, 422, 429, 500, 501, 502, 503, 504, 599 }
    local SERVICES = { false, "kme", "kg", "msp", "kdp", "kc", "kai", "auth", "samsung_account", "oauth2", "other" }
    local RETRY = { "5", " 12 ", "-3", "x", "Wed, 21 Oct 2026 07:28:00 GMT", "Sun Nov  6 08:49:37 1994",
      "Sunday, 06-Nov-94 08:49:37 GMT", "99999999999999999999", "", "Wed, 99 Oct 2026 99:99:99 GMT" }
    local WWW = { 'Bearer error="invalid_token"', 'Bearer realm="k", error=invalid_grant, error_description="d"',
      'Bearer error="', "Bearer ,,,", 'Basic realm="x"', 'Bearer error="invalid_token\\"x"' }

    it(string.format("every result is a well-formed knox.Error (%d cases, seed %d)", iterations, seed), function()
      math.randomseed(seed)
      for i = 1, iterations do
        local body
        local r = rnd(4)
        if r == 1 then body = value(0)
        elseif r == 2 then body = mutate(value(0))
        else body = mutate(seeds[rnd(#seeds)]) end
        local resp = {
          status = STATUSES[rnd(#STATUSES)] or nil,
          service = SERVICES[rnd(#SERVICES)] or nil,
          method = "POST",
          url = rnd(2) == 1 and "https://u:p@h/kcs/v1/kme/x?token=t" or nil,
          body = body,
          headers = {
            ["retry-after"] = rnd(3) == 1 and RETRY[rnd(#RETRY)] or nil,
            ["www-authenticate"] = rnd(4) == 1 and WWW[rnd(#WWW)] or nil,
            ["Content-Type"] = rnd(4) == 1 and "text/html" or "application/json",
            date = rnd(4) == 1 and "Wed, 21 Oct 2026 07:00:00 GMT" or nil,
          },
        }
        local where = string.format("seed %d case %d body %q", seed, i, body)
        local ok, err = pcall(errors.from_response, resp)
        assert(ok, where .. ": " .. tostring(err))
        local good, why = check_well_formed(err)
        assert(good, where .. ": " .. tostring(why))
        assert(not tostring(err):find("u:p@", 1, true), where)
        local ok2, list = pcall(errors.items, body, resp.service)
        assert(ok2 and type(list) == "table", where .. ": " .. tostring(list))
        for _, item in ipairs(list) do
          good, why = check_well_formed(item.error)
          assert(good, where .. " item: " .. tostring(why))
          assert(item.id == nil or type(item.id) == "string", where)
        end
        local ok3, c = pcall(errors.check, resp)
        assert(ok3 and (c == nil or check_well_formed(c)), where .. ": " .. tostring(c))
      end
    end)
  end)

  describe("items", function()
    it("KME device lists: not found, failed and invalid entries (ids or objects)", function()
      local body = [[{"successDeviceList":["1"],"failedDeviceList":["2",{"deviceId":"3","code":5000000}],
        "notFoundDeviceList":["4"],"invalidDeviceList":[5]}]]
      local list = errors.items(body, "kme")
      local by = {}
      for _, it in ipairs(list) do by[it.id] = well_formed(it.error) end
      assert.is_nil(by["1"])
      assert.is_not_nil(by["2"])
      assert.are.equal("INTERNAL_SERVER_ERROR", by["3"].name)
      assert.are.equal("DEVICE_NOT_FOUND", by["4"].name)
      assert.are.equal(4040300, by["4"].code)
      assert.is_not_nil(by["5"])
      assert.are.equal(4, #list)
    end)

    it("a decoded table body, with null values", function()
      local null = require("knox.core").null
      local t = { count = 2, success = 1, fail = 1, resultList = {
        { result = "SUCCESS", requestedId = "A" },
        { result = "FAIL", requestedId = "B",
          error = { code = 4000310, message = "DEVICE_STATE_INVALID", reason = null } },
      } }
      local list = errors.items(t, "kg")
      assert.are.equal(1, #list)
      assert.are.equal("B", list[1].id)
      assert.are.equal("The operation is not permitted in the current state.", list[1].error.message)
      -- a cycle is not followed forever
      local cyc = { resultList = {} }
      cyc.resultList[1] = cyc
      assert.is_table(errors.items(cyc, "kg"))
    end)

    it("a success without failures, non-JSON and empty bodies give an empty list", function()
      for _, b in ipairs { '{"count":2,"success":2,"fail":0,"resultList":[{"result":"SUCCESS"}]}',
        '{"totalCount":3,"deviceList":[{"state":"Error"}]}', "<html></html>", "", nil, "{" } do
        assert.are.same({}, errors.items(b, "kg"))
      end
      assert.are.same({}, errors.items())
    end)

    it("a Knox Guard summary without a resultList counts its failures", function()
      local list = errors.items('{"count":5,"success":3,"fail":2}', "kg")
      assert.are.equal(1, #list)
      assert.are.equal(2, list[1].count)
    end)

    it("partial() wraps the items in a kind 'partial' error, check() ignores them", function()
      local resp = { status = 200, url = "https://u:p@us-kcs-api.samsungknox.com/kcs/v1.1/kg/transaction",
        method = "POST", body = fixture "kg-transaction.json" }
      assert.is_nil(errors.check(resp))
      local p = well_formed(errors.partial(resp))
      assert.are.same({ "partial", 200, "kg" }, { p.kind, p.status, p.service })
      assert.are.equal(1, #p.items)
      assert.matches("123456789012347", p.message, 1, true)
      assert.is_nil(tostring(p):find("u:p@", 1, true))
      assert.is_nil(errors.partial { status = 200, body = '{"fail":0,"resultList":[]}' })
    end)
  end)

  describe("check", function()
    it("is nil for successes and the error otherwise", function()
      assert.is_nil(errors.check { status = 200, body = '{"result":"SUCCESS","objectId":"x"}' })
      assert.is_nil(errors.check { status = 204 })
      assert.is_nil(errors.check { status = 206, service = "msp", body = "{}" })
      local e = well_formed(errors.check { status = 200, service = "kg", body = fixture "kg-401.json" })
      assert.are.equal(200, e.status)
      assert.are.equal("AUTHORIZATION_FAIL", e.name)
      assert.are.equal("auth", e.kind)
      assert.are.equal("DEVICE_NOT_FOUND", well_formed(errors.check {
        status = 404, service = "kme", body = fixture "kme-404.json" }).name)
    end)
  end)

  describe("misuse", function()
    it("raises lauxlib's bad argument errors, not knox.Error", function()
      for _, bad in ipairs {
        function() errors.from_response("x") end,
        function() errors.from_response { status = "404" } end,
        function() errors.from_response { status = 40.5 } end,
        function() errors.from_response { status = 1000 } end,
        function() errors.from_response { headers = "x" } end,
        function() errors.from_response { body = 12 } end,
        function() errors.from_response { service = {} } end,
        function() errors.items(12) end,
        function() errors.lookup("nope", 1) end,
        function() errors.lookup("kme", {}) end,
        function() errors.catalog("nope") end,
        function() errors.partial("x") end,
      } do
        local ok, err = pcall(bad)
        assert.is_false(ok)
        assert.is_string(err)
        assert.matches("bad argument", err)
      end
    end)

    it("from_response runs no body code and helpers.raises sees errors it raises", function()
      local err = helpers.raises(function() error(errors.from_response { status = 404 }) end)
      assert.are.equal(404, err.status)
    end)
  end)
  it("keeps ids valid UTF-8 when an invalid byte falls at the length limit", function()
    for n = 120, 135 do
      local e = errors.from_response { status = 400, body = '{"errorId":"' .. ("a"):rep(n) .. '\255"}' }
      assert.is_not_nil(utf8.len(e.error_id), "n = " .. n)
    end
  end)
end)
