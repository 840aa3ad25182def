-- Specs for knox.sim, the Knox simulator. They drive it as a subprocess
-- with plain luasocket (spec/support/sim.lua) and the curl command, never
-- with the knox library, and sign the legacy JWTs with the openssl command.
local sim = require "support.sim"
local KNOX_SIM = require("helpers").knox_sim(sim.ROOT)
local cjson = require "cjson"
local socket = require "socket"

local NOW = os.time

-- Runs curl; returns its output (stdout and stderr) and exit status.
local function curl(args)
  local p = assert(io.popen(sim.ENV .. "curl -sS --max-time 20 " .. args .. " 2>&1; echo \"@@rc=$?\""))
  local out = p:read("a")
  p:close()
  local body, rc = out:match("^(.*)@@rc=(%d+)%s*$")
  return body, tonumber(rc)
end

-- Runs a shell command; returns its output and exit status.
local function shell(cmd)
  local p = assert(io.popen("export LD_PRELOAD=; unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS; " .. cmd
    .. " 2>&1; echo \"@@rc=$?\""))
  local out = p:read("a")
  p:close()
  local body, rc = out:match("^(.*)@@rc=(%d+)%s*$")
  return body, tonumber(rc)
end

local legacy, oauth_token, bearer = sim.legacy, sim.oauth_token, sim.bearer

local function is_uuid(v)
  return type(v) == "string" and v:match("^%x+%-%x+%-%x+%-%x+%-%x+$") ~= nil
end

-- Asserts the KME/KDP error shape { errorId, code, message, data }.
local function assert_kme_error(r, status, code, name)
  assert.are.equal(status, r.status)
  assert.is_table(r.json, r.body)
  assert.are.equal(code, r.json.code)
  assert.are.equal(name, r.json.message)
  assert.is_string(r.json.data)
end

local function assert_kg_error(r, status, code, name)
  assert.are.equal(status, r.status)
  assert.are.equal("FAIL", r.json.result)
  assert.are.equal(code, r.json.error.code)
  assert.are.equal(name, r.json.error.message)
  assert.is_string(r.json.error.reason)
end

local function assert_msp_error(r, status, code, name)
  assert.are.equal(status, r.status)
  assert.is_true(is_uuid(r.json.transactionalId))
  assert.are.equal(name, r.json.code)
  assert.are.equal(tostring(code), r.json.errorCode)
  assert.is_string(r.json.errorMessage)
end

local function assert_oauth_error(r, status, err)
  assert.are.equal(status, r.status)
  assert.are.equal(err, r.json.error)
  assert.is_string(r.json.error_description)
end

-- The lines of the simulator sources (for the independence check).
local function source_files()
  local out = shell("ls " .. sim.quote(sim.ROOT .. "/lua/knox/sim") .. "/*.lua")
  local files = {}
  for f in out:gmatch("[^\n]+") do files[#files + 1] = f end
  return files
end

describe("knox.sim", function()
  local s, L

  lazy_setup(function()
    s = sim.start { devices = 12, seed = "spec" }
    L = legacy(s)
  end)

  lazy_teardown(function()
    if L then L.close() end
    if s then s:stop() end
  end)

  describe("startup", function()
    it("prints exactly the listening line first, with the real port", function()
      assert.matches("^knox%-sim listening on http://127%.0%.0%.1:%d+$", s.first_line)
      assert.is_true(s.port > 0)
      local c = s:connect()
      c:close()
    end)

    it("leaves no generated key files behind when ended by SIGTERM", function()
      local out = os.tmpname()
      local p = io.popen((require("helpers").KNOX .. " sim --port 0 --max-lifetime 60 > %s 2>&1 & echo $!"):format(out))
      local pid = p:read("n")
      p:close()
      local dir
      for _ = 1, 100 do
        dir = (sim.read_file(out) or ""):match("knox%-sim keys: (%S+)/keys%.json")
        if dir then break end
        socket.sleep(0.05)
      end
      assert.is_string(dir)
      assert.is_true(os.rename(dir, dir), "the directory exists while it runs")
      os.execute("kill -TERM " .. math.tointeger(pid))
      local gone = false
      for _ = 1, 60 do
        if not os.rename(dir, dir) then gone = true break end
        socket.sleep(0.1)
      end
      os.remove(out)
      assert.is_true(gone, "the key directory was removed after SIGTERM")
    end)

    it("generates a keys.json and client id when given no --keys", function()
      local keys = cjson.decode(sim.read_file(s.keys_file))
      assert.is_string(keys.Public)
      assert.is_string(keys.Private)
      assert.matches("^MIIB", keys.Public)     -- SubjectPublicKeyInfo of an RSA-2048 key
      assert.is_string(s.client_id)
      assert.matches("knox%-sim keys: " .. s.keys_file:gsub("%p", "%%%0"), sim.read_file(s.out_file))
    end)

    it("rejects bad options with exit status 2 and prints usage on --help", function()
      local out, rc = shell(KNOX_SIM .. " --bogus")
      assert.are.equal(2, rc)
      assert.matches("unknown option %-%-bogus", out)
      out, rc = shell(KNOX_SIM .. " --help")
      assert.are.equal(0, rc)
      assert.matches("%-%-oauth%-client ID:SECRET:SCOPES", out)
      out, rc = shell(KNOX_SIM .. " --port 70000")
      assert.are.equal(2, rc)
      assert.matches("%-%-port", out)
    end)

    it("names the missing Debian package when a dependency is absent", function()
      local out, rc = shell("cd " .. sim.quote(sim.ROOT) .. " && " .. sim.quote(sim.LUA)
        .. " -e 'package.cpath=\"\" package.path=\"" .. require("helpers").lua_path():gsub(";;$", "")
        .. "\" require \"knox.sim\"'")
      assert.are_not.equal(0, rc)
      assert.matches("lua%-socket", out)
      assert.matches("lua%-cjson", out)
      assert.matches("apt%-get install", out)
      assert.matches("luarocks install knox-sim", out, 1, true)
    end)

    it("never uses knox.core or the knox library", function()
      local files = source_files()
      assert.is_true(#files >= 10)
      for _, f in ipairs(files) do
        -- testing.lua is the test's side of the kit (it builds knox clients);
        -- the simulator process never loads it
        local src = f:match("/testing%.lua$") and "" or sim.read_file(f)
        for mod in src:gmatch("require%s*%(?%s*[\"']([^\"']+)[\"']") do
          assert.is_falsy(mod == "knox" or mod:match("^knox%.core") or mod == "knox.errors" or mod == "knox.json",
            f .. " requires " .. mod)
        end
      end
    end)
  end)

  describe("HTTP/1.1", function()
    it("always sends Date (from the simulator's clock), Content-Type and Content-Length", function()
      for _, path in ipairs { "/__sim/health", "/kcs/v1/kme/devices/list", "/no/such/api" } do
        local r = s:request("GET", path)
        assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", r.headers.date)
        assert.is_string(r.headers["content-type"])
        assert.are.equal(#r.body, tonumber(r.headers["content-length"]))
      end
    end)

    it("keeps connections alive and answers pipelined requests in order", function()
      local c = s:connect()
      local a = c:request("GET", "/kcs/v1/kme/devices/list?pageNum=0")
      local b = c:request("GET", "/kcs/v1/kme/devices/list?pageNum=1")
      assert.are.equal(401, a.status)
      assert.are.equal(401, b.status)
      assert.are.equal("keep-alive", a.headers.connection)
      c:send("GET /pipe/one HTTP/1.1\r\nHost: x\r\n\r\nGET /pipe/two HTTP/1.1\r\nHost: x\r\n\r\n")
      local one, two = c:read_response(), c:read_response()
      assert.matches("/pipe/one", one.json.data)
      assert.matches("/pipe/two", two.json.data)
      c:close()
      local log = s:requests { path = "^/kcs/v1/kme/devices/list$" }
      local ids = {}
      for _, e in ipairs(log) do
        if e.query == "pageNum=0" or e.query == "pageNum=1" then ids[#ids + 1] = e.connection end
      end
      assert.are.equal(2, #ids)
      assert.are.equal(ids[1], ids[2])
      local two_log = s:requests { path = "^/pipe/" }
      assert.are.equal(two_log[1].connection, two_log[2].connection)
    end)

    it("reuses one connection for several URLs in one curl invocation", function()
      local before = s:requests()
      local since = #before > 0 and before[#before].id or 0
      local out, rc = curl("-o /dev/null -o /dev/null " .. s.url .. "/curl/a " .. s.url .. "/curl/b")
      assert.are.equal(0, rc, out)
      local log = s:requests { since = since, path = "^/curl/" }
      assert.are.equal(2, #log)
      assert.are.equal(log[1].connection, log[2].connection)
      assert.matches("^curl/", log[1].headers["user-agent"])
    end)

    it("closes HTTP/1.0 connections without keep-alive and serves HEAD without a body", function()
      local c = s:connect()
      c:send("GET /__sim/health HTTP/1.0\r\n\r\n")
      local r = c:read_response()
      assert.are.equal(200, r.status)
      assert.are.equal("close", r.headers.connection)
      assert.is_nil(c.sock:receive(1))
      c:close()
      local h = s:request("HEAD", "/__sim/health")
      assert.are.equal(200, h.status)
      assert.are.equal("11", h.headers["content-length"])
      assert.are.equal("", h.body)
    end)

    it("accepts chunked request bodies (raw and from curl)", function()
      local json = cjson.encode { match = { path = "^/chunked$" }, status = 418 }
      local parts = { json:sub(1, 5), json:sub(6, 30), json:sub(31) }
      local wire = {}
      for i, p in ipairs(parts) do
        wire[#wire + 1] = string.format("%x", #p) .. (i == 1 and ";ext=1" or "") .. "\r\n" .. p .. "\r\n"
      end
      local c = s:connect()
      c:send("POST /__sim/faults HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        .. "Transfer-Encoding: chunked\r\n\r\n" .. table.concat(wire) .. "0\r\nX-Trailer: 1\r\n\r\n")
      local r = c:read_response()
      c:close()
      assert.are.equal(200, r.status)
      assert.are.equal(418, s:request("GET", "/chunked").status)
      local file = os.tmpname()
      sim.write_file(file, cjson.encode { match = { path = "^/chunked2$" }, status = 503 })
      local out, rc = curl("-H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' --data-binary @"
        .. file .. " " .. s.url .. "/__sim/faults")
      os.remove(file)
      assert.are.equal(0, rc)
      assert.is_number(cjson.decode(out).id)
      assert.are.equal(503, s:request("GET", "/chunked2").status)
    end)

    it("answers Expect: 100-continue with 100 Continue before the body", function()
      local c = s:connect()
      local body = cjson.encode { match = { path = "^/expect$" }, status = 502 }
      c:send("POST /__sim/faults HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
        .. "Content-Length: " .. #body .. "\r\n\r\n")
      local cont = c:read_response()
      assert.are.equal(100, cont.status)
      c:send(body)
      local r = c:read_response()
      c:close()
      assert.are.equal(200, r.status)
      local big = os.tmpname()
      sim.write_file(big, cjson.encode { match = { path = "^/expect2$" }, status = 504, message = ("x"):rep(2000) })
      local out, rc = curl("-H 'Expect: 100-continue' -H 'Content-Type: application/json' -w '%{http_code}' "
        .. "--data-binary @" .. big .. " -o /dev/null " .. s.url .. "/__sim/faults")
      os.remove(big)
      assert.are.equal(0, rc)
      assert.are.equal("200", out)
      assert.are.equal(504, s:request("GET", "/expect2").status)
      -- too big: refused at once, without 100 Continue and without reading the body
      c = s:connect()
      c:send("PUT /kcs/v1/kme/devices/assignProfile HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        .. "Expect: 100-continue\r\nContent-Length: 999999999\r\n\r\n")
      r = c:read_response()
      c:close()
      assert.are.equal(413, r.status)
    end)
  end)

  describe("robustness", function()
    local function raw(bytes, keep)
      local c = s:connect()
      c:send(bytes)
      local r, err = c:read_response()
      if not keep then c:close() end
      return r, err, c
    end

    after_each(function()
      assert.are.equal(200, s:request("GET", "/__sim/health").status)  -- still serving
    end)

    it("answers a malformed request line with a 400 in Knox format and closes", function()
      local r, _, c = raw("HELLO\r\n\r\n", true)
      assert.are.equal(400, r.status)
      assert.are.equal(4000000, r.json.code)
      assert.are.equal("RESOURCE_INVALID_PARAM", r.json.message)
      assert.are.equal("close", r.headers.connection)
      assert.is_nil(c.sock:receive(1))
      c:close()
      assert.are.equal(400, raw("GET /x HTTP/1.1\r\n\r\n").status)                 -- no Host
      assert.are.equal(400, raw("GET /x HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n").status)
      assert.are.equal(400, raw("GET /x HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n").status)
      assert.are.equal(505, raw("GET /x HTTP/2.0\r\nHost: x\r\n\r\n").status)
      assert.are.equal(400, raw("GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n").status)
      assert.are.equal(400, raw("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
        .. "Transfer-Encoding: chunked\r\n\r\n").status)
      assert.are.equal(501, raw("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n").status)
    end)

    it("answers huge headers with 431 and huge bodies with 413, in Knox format", function()
      local r = raw("GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " .. ("a"):rep(40000) .. "\r\n\r\n")
      assert.are.equal(431, r.status)
      assert.are.equal("REQUEST_HEADER_FIELDS_TOO_LARGE", r.json.message)
      r = raw("PUT /kcs/v1/kme/devices/assignProfile HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        .. "Content-Length: 104857600\r\n\r\n{")
      assert.are.equal(413, r.status)
      assert.are.equal("PAYLOAD_TOO_LARGE", r.json.message)
      assert.is_true(is_uuid(r.json.errorId))  -- KME shape: the path names the service
    end)

    it("rejects bad JSON and wrong content types with a 400 in the service's shape", function()
      local h = L.headers()
      h["Content-Type"] = "application/json"
      local r = s:request("POST", "/kcs/v1.1/kg/devices/lock", { headers = h, body = "{not json" })
      assert_kg_error(r, 400, 4000000, "RESOURCE_INVALID_PARAM")
      h["Content-Type"] = "text/plain"
      r = s:request("POST", "/kcs/v1.1/kg/devices/lock", { headers = h, body = "{}" })
      assert_kg_error(r, 400, 4000000, "RESOURCE_INVALID_PARAM")
      assert.matches("text/plain", r.json.error.reason)
      h["Content-Type"] = "application/json"
      r = s:request("POST", "/kcs/v1.1/kg/devices/lock", { headers = h, body = "[1,2]" })
      assert_kg_error(r, 400, 4000000, "RESOURCE_INVALID_PARAM")
      r = s:request("POST", "/ams/v1/users/accesstoken", { body = "{\"a\":", headers = {
        ["Content-Type"] = "application/json" } })
      assert_kme_error(r, 400, 4000000, "RESOURCE_INVALID_PARAM")
    end)

    it("survives clients that hang up, send garbage or stall", function()
      local c = s:connect()
      c:send("POST /__sim/faults HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"match\"")
      c:close()
      c = s:connect()
      c:send("\0\1\2\255\254 garbage \r\n\r\n")
      c:close()
      c = s:connect()
      c:send("GET /x HTTP/1.1\r\nHo")
      c:close()
      local r = raw("\r\n\r\nGET /__sim/health HTTP/1.1\r\nHost: x\r\n\r\n")  -- leading CRLFs are ignored
      assert.are.equal(200, r.status)
    end)

    it("answers unknown paths with 404 and wrong methods with 405 and Allow", function()
      local r = s:request("GET", "/kcs/v1/kme/nothing")
      assert_kme_error(r, 404, 4040000, "RESOURCE_NOT_FOUND")
      r = s:request("DELETE", "/kcs/v1/kme/devices/list")
      assert.are.equal(405, r.status)
      assert.are.equal("GET", r.headers.allow)
      r = s:request("GET", "/kcs/v1.1/kg/devices/lock")  -- GET devices/{objectId}: authentication first
      assert_kg_error(r, 401, 4010000, "AUTHORIZATION_FAIL")
    end)
  end)

  describe("legacy authentication", function()
    before_each(function() s:reset() end)

    it("runs the whole flow with JWTs signed by openssl", function()
      local r = L.request_token()
      assert.are.equal(200, r.status)
      assert.matches("^%x+$", r.json.accessToken)
      local h = { ["x-knox-apitoken"] = L.apitoken(r.json.accessToken) }
      r = s:request("GET", "/kcs/v1/kme/devices/list", { headers = h })
      assert.are.equal(200, r.status)
      assert.are.equal(12, r.json.totalCount)
      r = s:request("GET", "/kcs/v1.1/kg/authorization", { headers = h })
      assert.are.equal(200, r.status)
      assert.are.equal("SUCCESS", r.json.result)
      assert.are.equal(200, s:request("GET", "/kcs/v1/kc/devices", { headers = h }).status)
      assert.are.equal(200, s:request("GET", "/kcs/v1/rp/devices?resellerId=" .. s.reseller_id,
        { headers = h }).status)
      -- the same signed token works for many calls
      for _ = 1, 3 do
        assert.are.equal(200, s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).status)
      end
    end)

    it("refuses a reused jti with 4002250 API_KEY_NON_UNIQUE_JWTID", function()
      local jwt = L.client_jwt()
      local body = { clientIdentifierJwt = jwt, base64EncodedStringPublicKey = L.keys.Public }
      assert.are.equal(200, s:request("POST", "/ams/v1/users/accesstoken", { body = body }).status)
      local r = s:request("POST", "/ams/v1/users/accesstoken", { body = body })
      assert_kme_error(r, 400, 4002250, "API_KEY_NON_UNIQUE_JWTID")
    end)

    it("checks validityForAccessTokenInMinutes: an integer 1-30 (4002251)", function()
      for _, v in ipairs { 0, 31, 2.5, "30", -1 } do
        local r = L.request_token { validityForAccessTokenInMinutes = v }
        assert_kme_error(r, 400, 4002251, "ACCESS_TOKEN_TIMEOUT_VALIDITY_RESOURCE_INVALID_PARAM")
      end
      assert.are.equal(200, L.request_token({ validityForAccessTokenInMinutes = 1 }).status)
      assert.are.equal(200, L.request_token({ validityForAccessTokenInMinutes = false }).status)
    end)

    it("verifies the RS512 signature, alg, aud, client identifier and key", function()
      local jwt = L.client_jwt()
      local tampered = jwt:sub(1, -6) .. (jwt:sub(-5, -5) == "A" and "B" or "A") .. jwt:sub(-4)
      local r = s:request("POST", "/ams/v1/users/accesstoken", { body = { clientIdentifierJwt = tampered,
        base64EncodedStringPublicKey = L.keys.Public } })
      assert_kme_error(r, 401, 40122050, "ACCESS_TOKEN_BAD_REQUEST")
      assert.is_nil(r.json.errorId)
      r = s:request("POST", "/ams/v1/users/accesstoken", { body = { clientIdentifierJwt = "a.b",
        base64EncodedStringPublicKey = L.keys.Public } })
      assert.are.equal(401, r.status)
      r = s:request("POST", "/ams/v1/users/accesstoken", { body = {
        clientIdentifierJwt = L.client_jwt(nil, { alg = "RS256", typ = "JWT" }),
        base64EncodedStringPublicKey = L.keys.Public } })
      assert_kme_error(r, 401, 40122050, "ACCESS_TOKEN_BAD_REQUEST")
      assert_kme_error(L.request_token(nil, { aud = "other" }), 401, 40122050, "ACCESS_TOKEN_BAD_REQUEST")
      assert_kme_error(L.request_token(nil, { jti = false }), 401, 40122050, "ACCESS_TOKEN_BAD_REQUEST")
      assert_kme_error(L.request_token(nil, { iat = false }), 401, 40122050, "ACCESS_TOKEN_BAD_REQUEST")
      assert_kme_error(L.request_token(nil, { clientIdentifier = "" }), 400, 4002251,
        "BAD_REQUEST_CLIENTIDENTIFIER_CLAIM_NOT_POPULATED")
      assert_kme_error(L.request_token(nil, { clientIdentifier = "nobody" }), 401, 4010000, "AUTHORIZATION_FAIL")
      assert_kme_error(L.request_token { clientIdentifierJwt = false }, 400, 4000000, "RESOURCE_INVALID_PARAM")
      assert_kme_error(L.request_token { base64EncodedStringPublicKey = "bm90IGEga2V5" }, 400, 4000000,
        "RESOURCE_INVALID_PARAM")
    end)

    it("refuses a JWT signed by a key other than the registered one", function()
      local other = os.tmpname()
      assert.are.equal(0, select(2, shell("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "
        .. other)))
      local pub = shell("openssl pkey -in " .. other .. " -pubout -outform DER | base64 -w0")
      local now = NOW()
      local jwt = sim.openssl_jwt(other, { clientIdentifier = s.client_id, publicKey = pub, iat = now,
        exp = now + 600, aud = "KnoxWSM", jti = sim.random_hex(18) })
      local r = s:request("POST", "/ams/v1/users/accesstoken", { body = { clientIdentifierJwt = jwt,
        base64EncodedStringPublicKey = pub } })
      assert_kme_error(r, 401, 4010000, "AUTHORIZATION_FAIL")
      -- signed by the other key but posted with ours: the signature fails
      r = s:request("POST", "/ams/v1/users/accesstoken", { body = { clientIdentifierJwt = jwt,
        base64EncodedStringPublicKey = L.keys.Public } })
      assert_kme_error(r, 401, 40122050, "ACCESS_TOKEN_BAD_REQUEST")
      -- an x-knox-apitoken for our access token signed by the other key
      local access = L.request_token().json.accessToken
      local api = sim.openssl_jwt(other, { accessToken = access, iat = now, exp = now + 600, aud = "KnoxWSM",
        jti = sim.random_hex(18) })
      r = s:request("GET", "/kcs/v1/kme/devices/list", { headers = { ["x-knox-apitoken"] = api } })
      assert_kme_error(r, 403, 4032252, "ACCESS_TOKEN_INVALID")
      os.remove(other)
    end)

    it("expires access tokens on the simulator's clock (4032251) and issues new ones", function()
      local h = L.headers(5)
      assert.are.equal(200, s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).status)
      local before = s:request("GET", "/__sim/health").headers.date
      s:clock(5 * 60 + 1)
      local r = s:request("GET", "/kcs/v1/kme/devices/list", { headers = h })
      assert_kme_error(r, 403, 4032251, "ACCESS_TOKEN_EXPIRED")
      assert.are_not.equal(before, r.headers.date)
      r = s:request("POST", "/kcs/v1.1/kg/devices/list", { headers = h, body = {} })
      assert_kg_error(r, 403, 4032251, "ACCESS_TOKEN_EXPIRED")
      h = L.headers()
      assert.are.equal(200, s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).status)
    end)

    it("checks client-signed iat/exp on the simulator's clock, as Knox checks them on its own", function()
      s:clock(45 * 60)
      -- signed with this machine's clock: 45 minutes old for the server
      assert_kme_error(L.request_token(), 403, 4032251, "ACCESS_TOKEN_EXPIRED")
      -- signed with the server's time (what its Date header and /__sim/clock show)
      local server = math.floor(s:request("GET", "/__sim/clock").json.now)
      local r = L.request_token(nil, { iat = server, exp = server + 1800 })
      assert.are.equal(200, r.status)
      local h = { ["x-knox-apitoken"] = L.apitoken(r.json.accessToken, { iat = server, exp = server + 1800 }) }
      assert.are.equal(200, s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).status)
      h = { ["x-knox-apitoken"] = L.apitoken(r.json.accessToken) }  -- local clock again
      assert_kme_error(s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }), 403, 4032251,
        "ACCESS_TOKEN_EXPIRED")
      -- and a JWT from the future (beyond the 60 s leeway) is refused
      assert_kme_error(L.request_token(nil, { iat = server + 600, exp = server + 1800 }), 401, 40122050,
        "ACCESS_TOKEN_BAD_REQUEST")
    end)

    it("refuses expired client JWTs, unknown tokens and empty claims", function()
      local now = NOW()
      assert_kme_error(L.request_token(nil, { iat = now - 4000, exp = now - 2000 }), 403, 4032251,
        "ACCESS_TOKEN_EXPIRED")
      local api = L.apitoken("0123456789abcdef")
      local r = s:request("GET", "/kcs/v1/kme/devices/list", { headers = { ["x-knox-apitoken"] = api } })
      assert_kme_error(r, 401, 4012250, "ACCESS_TOKEN_BAD_REQUEST")
      assert.is_nil(r.json.errorId)
      api = L.apitoken("")
      r = s:request("GET", "/kcs/v1/kme/devices/list", { headers = { ["x-knox-apitoken"] = api } })
      assert_kme_error(r, 401, 4012251, "BAD_REQUEST_ACCESS_TOKEN_CLAIM_NOT_POPULATED")
      r = s:request("GET", "/kcs/v1/kme/devices/list", { headers = { ["x-knox-apitoken"] = "garbage" } })
      assert_kme_error(r, 401, 4012250, "ACCESS_TOKEN_BAD_REQUEST")
      local access = L.request_token().json.accessToken
      api = L.apitoken(access, { exp = now - 600, iat = now - 2400 })
      r = s:request("GET", "/kcs/v1/kme/devices/list", { headers = { ["x-knox-apitoken"] = api } })
      assert_kme_error(r, 403, 4032251, "ACCESS_TOKEN_EXPIRED")
    end)

    it("forgets tokens on reset", function()
      local h = L.headers()
      s:reset()
      assert_kme_error(s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }), 401, 4012250,
        "ACCESS_TOKEN_BAD_REQUEST")
    end)

    it("is the only scheme Knox Guard and Knox Configure v1 accept", function()
      local r = s:request("POST", "/kcs/v1.1/kg/devices/list", { headers = bearer(s), body = {} })
      assert_kg_error(r, 401, 4010000, "AUTHORIZATION_FAIL")
      assert.matches("OAuth", r.json.error.reason)
      r = s:request("GET", "/kcs/v1/kc/devices", { headers = bearer(s) })
      assert.are.equal(401, r.status)
      assert.are.equal(4010000, r.json.code)
      assert.is_nil(r.json.errorId)
      r = s:request("POST", "/kcs/v1.1/kg/devices/list", { body = {} })
      assert_kg_error(r, 401, 4010000, "AUTHORIZATION_FAIL")
    end)
  end)

  describe("OAuth 2.0", function()
    before_each(function() s:reset() end)

    it("issues client-credentials tokens", function()
      local r = oauth_token(s, { scope = "kme msp" })
      assert.are.equal(200, r.status)
      assert.matches("^%x+$", r.json.access_token)
      assert.are.equal("Bearer", r.json.token_type)
      assert.are.equal(600, r.json.expires_in)
      assert.are.equal("kme msp", r.json.scope)
      assert.are.equal("no-store", r.headers["cache-control"])
      r = oauth_token(s, { expires_in = 3600, scope = false })
      assert.are.equal(3600, r.json.expires_in)
      assert.matches("kme%.devices:view", r.json.scope)
      local out, rc = curl("-d grant_type=client_credentials -u " .. s.oauth.client_id .. ":" .. s.oauth.client_secret
        .. " -d scope=kdp " .. s.url .. "/ams/v1/oauth2/token")
      assert.are.equal(0, rc)
      assert.are.equal("kdp", cjson.decode(out).scope)
    end)

    it("answers bad token requests with OAuth-style errors", function()
      assert_oauth_error(oauth_token(s, { expires_in = 3601 }), 400, "invalid_request")
      assert_oauth_error(oauth_token(s, { expires_in = "ten" }), 400, "invalid_request")
      assert_oauth_error(oauth_token(s, { client_secret = "wrong" }), 401, "invalid_client")
      assert_oauth_error(oauth_token(s, { client_id = "nobody" }), 401, "invalid_client")
      assert_oauth_error(oauth_token(s, { grant_type = "password" }), 400, "unsupported_grant_type")
      assert_oauth_error(oauth_token(s, { grant_type = false }), 400, "invalid_request")
      assert_oauth_error(oauth_token(s, { scope = "kme.devices:read" }), 400, "invalid_scope")
      local r = s:request("POST", "/ams/v1/oauth2/token", { body = { grant_type = "client_credentials" } })
      assert_oauth_error(r, 400, "invalid_request")
    end)

    it("checks bearer tokens and scopes per endpoint", function()
      local view = bearer(s, "kme.devices:view")
      assert.are.equal(200, s:request("GET", "/kcs/v1/kme/devices/list", { headers = view }).status)
      local r = s:request("PUT", "/kcs/v1/kme/devices/unassignProfile", { headers = view,
        body = { deviceIds = { "x" } } })
      assert_oauth_error(r, 403, "insufficient_scope")
      assert.matches('scope="kme.devices:manage"', r.headers["www-authenticate"])
      r = s:request("GET", "/msp/v1/managedCustomers", { headers = view })
      assert_oauth_error(r, 403, "insufficient_scope")
      assert.are.equal(200, s:request("GET", "/msp/v1/managedCustomers", { headers = bearer(s, "msp") }).status)
      r = s:request("GET", "/msp/v1/managedCustomers", { headers = { Authorization = "Bearer nope" } })
      assert_oauth_error(r, 401, "invalid_token")
      r = s:request("GET", "/msp/v1/managedCustomers", { headers = L.headers() })
      assert_oauth_error(r, 401, "invalid_request")
      assert.matches("^Bearer", r.headers["www-authenticate"])
    end)

    it("expires tokens on the simulator's clock and revokes them", function()
      local r = oauth_token(s, { expires_in = 60 })
      local h = { Authorization = "Bearer " .. r.json.access_token }
      assert.are.equal(200, s:request("GET", "/msp/v1/managedCustomers", { headers = h }).status)
      s:clock(61)
      assert_oauth_error(s:request("GET", "/msp/v1/managedCustomers", { headers = h }), 401, "invalid_token")
      r = oauth_token(s)
      h = { Authorization = "Bearer " .. r.json.access_token }
      assert.are.equal(200, s:request("POST", "/ams/v1/oauth2/revoke", { form = { token = r.json.access_token,
        client_id = s.oauth.client_id, client_secret = s.oauth.client_secret } }).status)
      assert_oauth_error(s:request("GET", "/msp/v1/managedCustomers", { headers = h }), 401, "invalid_token")
    end)

    it("honours x-wsm-managed-tenantid for MSPs", function()
      local h = bearer(s)
      local customers = s:request("GET", "/msp/v1/managedCustomers", { headers = h }).json.customers
      local own = s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).json.deviceList
      h["x-wsm-managed-tenantid"] = customers[1].customerId
      local theirs = s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).json.deviceList
      assert.are_not.equal(#own, #theirs)  -- every tenant has a fleet of its own
      assert.are_not.equal(own[1].mei, theirs[1].mei)
      h["x-wsm-managed-tenantid"] = "9999999999"
      local r = s:request("GET", "/kcs/v1/kme/devices/list", { headers = h })
      assert_kme_error(r, 403, 40300000, "AUTHORIZATION_FAIL")
      r = s:request("POST", "/kc/v2/devices/getDevices", { headers = h, body = {} })
      assert.are.equal(403, r.status)
    end)
  end)

  describe("KME", function()
    local h
    before_each(function()
      s:reset()
      h = bearer(s)
    end)

    local function devices(q)
      return s:request("GET", "/kcs/v1/kme/devices/list" .. (q or ""), { headers = h })
    end

    it("pages the device list with pageNum, pageSize and totalCount", function()
      local all = devices().json
      assert.are.equal(12, all.totalCount)
      assert.are.equal(12, #all.deviceList)
      assert.are.equal(100, all.pageSize)
      local seen = {}
      for p = 0, 2 do
        local page = devices("?pageSize=5&pageNum=" .. p).json
        assert.are.equal(12, page.totalCount)
        assert.are.equal(p, page.pageNum)
        for _, d in ipairs(page.deviceList) do seen[#seen + 1] = d.id end
      end
      assert.are.equal(12, #seen)
      for i, d in ipairs(all.deviceList) do assert.are.equal(d.id, seen[i]) end
      local r = devices("?pageSize=5&pageNum=9")
      assert.are.equal(0, #r.json.deviceList)
      assert.is_true(r.body:find('"deviceList":[]', 1, true) ~= nil)
      for _, q in ipairs { "?pageSize=0", "?pageSize=1001", "?pageNum=-1", "?pageNum=x" } do
        assert_kme_error(devices(q), 400, 4000000, "RESOURCE_INVALID_PARAM")
      end
      assert_kme_error(devices("?customerId=123"), 400, 4000904, "TENANT_MISMATCH")
      assert.are.equal(200, devices("?customerId=" .. s.customer_id).status)
      assert.are.equal(12, devices("?changedAfter=2020-01-01").json.totalCount)
      assert.are.equal(0, devices("?changedAfter=2026-01-02").json.totalCount)  -- generated data predates it
      assert.are.equal(200, devices("?changedAfter=24h").status)
      assert_kme_error(devices("?changedAfter=soon"), 400, 4000000, "RESOURCE_INVALID_PARAM")
    end)

    it("runs the profile lifecycle", function()
      local body = { profileName = "Spec profile", supportedMDM = "Other", doEnabled = true,
        mdmApkUrl = "https://mdm.example/agent.apk" }
      local r = s:request("POST", "/kcs/v1/kme/profiles/create", { headers = h, body = body })
      assert.are.equal(200, r.status)
      local id = r.json.profileId
      assert.is_string(id)
      r = s:request("GET", "/kcs/v1/kme/profiles/" .. id .. "/get", { headers = h })
      assert.are.equal("Spec profile", r.json.profileName)
      r = s:request("POST", "/kcs/v1/kme/profiles/create", { headers = h, body = body })
      assert_kme_error(r, 409, 4091700, "BULK_ENROLL_PROFILE_NAME_CONFLICT")
      r = s:request("POST", "/kcs/v1/kme/profiles/create", { headers = h, body = { profileName = "No DO",
        doEnabled = false } })
      assert_kme_error(r, 400, 4001700, "BULK_ENROLL_PROFILE_INVALID")
      r = s:request("GET", "/kcs/v1/kme/profiles/list", { headers = h })
      assert.are.equal(3, r.json.totalCount)
      r = s:request("PUT", "/kcs/v1/kme/profiles/" .. id, { headers = h, body = { profileName = "Renamed",
        doEnabled = false, supportEmailAddress = "help@example.com" } })
      assert.are.equal(200, r.status)
      assert.are.equal("Renamed", r.json.profileName)
      assert.is_false(r.json.doEnabled)
      assert.are.equal(200, s:request("DELETE", "/kcs/v1/kme/profiles/" .. id, { headers = h }).status)
      r = s:request("GET", "/kcs/v1/kme/profiles/" .. id .. "/get", { headers = h })
      assert_kme_error(r, 404, 4040400, "PROFILE_NOT_FOUND")
      -- a profile still assigned to devices cannot be deleted
      local used = devices().json.deviceList[1].profileId
      r = s:request("DELETE", "/kcs/v1/kme/profiles/" .. used, { headers = h })
      assert_kme_error(r, 400, 4001700, "BULK_ENROLL_PROFILE_INVALID")
    end)

    it("creates profiles asynchronously with a pollable status", function()
      local r = s:request("POST", "/kcs/v1/kme/profiles/createAsync", { headers = h,
        body = { profileName = "Async one", transactionId = "tx001" } })
      assert.are.equal(200, r.status)
      assert.are.equal("tx001", r.json.transactionId)
      local st = s:request("GET", "/kcs/v1/kme/profiles/status?transactionId=tx001&customerId=" .. s.customer_id,
        { headers = h }).json.profiles
      assert.are.equal(1, st.totalCount)
      assert.are.equal("InProgress", st.transactions[1].state)
      st = s:request("GET", "/kcs/v1/kme/profiles/status?transactionId=tx001", { headers = h }).json.profiles
      local tx = st.transactions[1]
      assert.are.equal("Complete", tx.state)
      assert.are.equal("Put", tx.type)
      assert.are.equal("Async one", tx.profileName)
      assert.are.equal(200, s:request("GET", "/kcs/v1/kme/profiles/" .. tx.profileId .. "/get",
        { headers = h }).status)
    end)

    it("assigns and unassigns profiles (v1 all-or-nothing, v2 partial)", function()
      local list = devices().json.deviceList
      local profile = s:request("GET", "/kcs/v1/kme/profiles/list", { headers = h }).json.profileList[2]
      local ids = { list[3].mei, list[6].mei }
      local r = s:request("PUT", "/kcs/v1/kme/devices/assignProfile", { headers = h,
        body = { profileId = profile.profileId, deviceIds = ids } })
      assert.are.equal(200, r.status)
      assert.are.equal(2, r.json.totalCount)
      local after = devices().json.deviceList
      assert.are.equal(profile.profileId, after[3].profileId)
      assert.are.equal(profile.profileName, after[6].profileName)
      r = s:request("PUT", "/kcs/v1/kme/devices/assignProfile", { headers = h,
        body = { profileId = profile.profileId, deviceIds = { ids[1], "490154203237518" } } })
      assert_kme_error(r, 404, 4040300, "DEVICE_NOT_FOUND")
      r = s:request("PUT", "/kcs/v1/kme/devices/assignProfile", { headers = h,
        body = { profileId = "nope", deviceIds = ids } })
      assert_kme_error(r, 404, 4040400, "PROFILE_NOT_FOUND")
      r = s:request("PUT", "/kcs/v1/kme/devices/assignProfile", { headers = h,
        body = { profileId = profile.profileId, deviceIds = {} } })
      assert_kme_error(r, 400, 4000000, "RESOURCE_INVALID_PARAM")
      r = s:request("PUT", "/kcs/v1/kme/devices/assignProfile", { headers = h, body = { profileId = profile.profileId,
        devices = { { mei = ids[1], userName = "alice", userToken = "secret" } } } })
      assert_kme_error(r, 500, 5000006, "RSA_DECRYPTION_FAIL")
      local enc = (require "mime").b64(("\7"):rep(256))
      r = s:request("PUT", "/kcs/v1/kme/devices/assignProfile", { headers = h, body = { profileId = profile.profileId,
        devices = { { mei = ids[1], userName = enc, userToken = enc } } } })
      assert.are.equal(200, r.status)
      local many = {}
      for i = 1, 1001 do many[i] = "R5" .. i end
      r = s:request("PUT", "/kcs/v1/kme/devices/assignProfile", { headers = h,
        body = { profileId = profile.profileId, deviceIds = many } })
      assert_kme_error(r, 400, 4000019, "TOO_MANY_DEVICES")
      r = s:request("PUT", "/kcs/v1/kme/devices/unassignProfile", { headers = h, body = { deviceIds = { ids[1] } } })
      assert.are.equal(200, r.status)
      assert.is_nil(devices().json.deviceList[3].profileName)
      r = s:request("POST", "/kcs/v2/kme/devices/unassignProfile", { headers = h,
        body = { deviceIds = { ids[2], "490154203237518", "not valid!" } } })
      assert.are.equal(200, r.status)
      assert.are.same({ ids[2] }, r.json.validDeviceList)
      assert.are.same({ "490154203237518" }, r.json.notFoundDeviceList)
      assert.are.same({ "not valid!" }, r.json.invalidDeviceList)
    end)

    it("deletes devices with success, failed and notFound lists", function()
      local list = devices().json.deviceList
      local r = s:request("POST", "/kcs/v1/kme/devices/delete", { headers = h, body = { customerId = s.customer_id,
        devices = { imeiOrSerials = { list[1].mei, list[2].serialNumber, "490154203237518", "bad id!" } } } })
      assert.are.equal(200, r.status)
      assert.are.same({ list[1].mei, list[2].serialNumber }, r.json.successDeviceList)
      assert.are.same({ "490154203237518" }, r.json.notFoundDeviceList)
      assert.are.same({ "bad id!" }, r.json.failedDeviceList)
      assert.are.equal(10, devices().json.totalCount)
      s:reset()
      assert.are.equal(12, s:request("GET", "/kcs/v1/kme/devices/list", { headers = bearer(s) }).json.totalCount)
    end)
  end)

  describe("Knox Guard", function()
    local h
    before_each(function()
      s:reset()
      h = L.headers()
    end)

    local function kg(path, body)
      return s:request("POST", "/kcs/v1.1/kg" .. path, { headers = h, body = body or {} })
    end

    local function find(status)
      for _, d in ipairs(kg("/devices/list", { pageSize = 100 }).json.deviceList) do
        if d.status == status then return d end
      end
    end

    it("lists devices with paging and search", function()
      local r = kg("/devices/list", { pageNum = 1, pageSize = 5 })
      assert.are.equal(200, r.status)
      assert.are.equal(12, r.json.totalCount)
      assert.are.equal(5, #r.json.deviceList)
      local d = r.json.deviceList[1]
      assert.is_string(d.objectId)
      assert.is_string(d.deviceUid)
      r = kg("/devices/list", { search = d.deviceUid })
      assert.are.equal(1, r.json.totalCount)
      r = s:request("GET", "/kcs/v1.1/kg/devices/" .. d.objectId, { headers = h })
      assert.are.equal(d.deviceUid, r.json.deviceUid)
      assert_kg_error(kg("/devices/list", { pageSize = "many" }), 400, 4000000, "RESOURCE_INVALID_PARAM")
      r = s:request("POST", "/kcs/v1.1/kg-integration/devices/list", { headers = h, body = {} })
      assert.are.equal(200, r.status)
    end)

    it("locks, unlocks, blinks, messages, completes and deletes with state checks", function()
      local d = find("Active")
      local r = kg("/devices/lock", { deviceUid = d.deviceUid, message = "Please pay", tel = "+1-555-0199" })
      assert.are.equal(200, r.status)
      assert.are.equal("SUCCESS", r.json.result)
      assert.are.equal(d.objectId, r.json.objectId)
      assert.are.equal(d.deviceUid, r.json.requestedId)
      assert_kg_error(kg("/devices/lock", { objectId = d.objectId }), 400, 4000310, "DEVICE_STATE_INVALID")
      assert.are.equal(200, kg("/devices/unlock", { objectId = d.objectId }).status)
      assert_kg_error(kg("/devices/unlock", { objectId = d.objectId }), 400, 4000310, "DEVICE_STATE_INVALID")
      assert.are.equal(200, kg("/devices/blink", { objectId = d.objectId, message = "Reminder", interval = 5 }).status)
      assert_kg_error(kg("/devices/sendMessage", { objectId = d.objectId }), 400, 4000000, "RESOURCE_INVALID_PARAM")
      assert.are.equal(200, kg("/devices/sendMessage", { objectId = d.objectId, message = "Hello" }).status)
      assert.are.equal(200, kg("/devices/complete", { approveId = d.approveId }).status)
      assert_kg_error(kg("/devices/lock", { objectId = d.objectId }), 400, 4000310, "DEVICE_STATE_INVALID")
      assert.are.equal(200, kg("/devices/delete", { objectId = d.objectId }).status)
      assert_kg_error(kg("/devices/delete", { objectId = d.objectId }), 404, 4040300, "DEVICE_NOT_FOUND")
      assert_kg_error(kg("/devices/lock", {}), 400, 4000000, "RESOURCE_INVALID_PARAM")
      assert_kg_error(s:request("GET", "/kcs/v1.1/kg/devices/NOPE", { headers = h }), 404, 4040300,
        "DEVICE_NOT_FOUND")
    end)

    it("uploads and approves devices", function()
      local r = kg("/devices/uploads", { autoAccept = true, deviceList = {
        { deviceUid = "490154203237518" }, { deviceUid = "490154203237519" }, { deviceUid = "R58SPEC0001" } } })
      assert.are.equal(200, r.status)
      assert.are.equal(3, r.json.count)
      assert.are.equal(2, r.json.success)
      assert.are.equal(1, r.json.fail)
      assert.are.equal("FAIL", r.json.resultList[2].result)
      assert.are.equal("4000000", r.json.resultList[2].error.code)
      r = kg("/devices/uploads", { deviceList = { { deviceUid = "490154203237518" } } })
      assert.are.equal(1, r.json.fail)
      r = kg("/devices/approve", { deviceUid = "490154203237518", approveId = "LOAN-SPEC-1" })
      assert.are.equal(200, r.status)
      assert.are.equal("Activating", kg("/devices/list", { search = "490154203237518" }).json.deviceList[1].status)
      s:clock(60)  -- the device confirms: Activating -> Active on the simulator's clock
      assert.are.equal("Active", kg("/devices/list", { search = "490154203237518" }).json.deviceList[1].status)
      r = kg("/devices/approve", { deviceUid = "R58SPEC0001", approveId = "LOAN-SPEC-1" })
      assert_kg_error(r, 400, 4000000, "RESOURCE_INVALID_PARAM")
      assert.are.equal(200, kg("/devices/lock", { approveId = "LOAN-SPEC-1" }).status)
    end)

    it("runs async bulk actions with count, success, fail and resultList", function()
      local a, b = find("Active"), find("Completed")
      local r = kg("/devices/lockAsync", { message = "Pay now", deviceList = { { objectId = a.objectId },
        { objectId = b.objectId }, { deviceUid = "490154203237518" } } })
      assert.are.equal(200, r.status)
      assert.are.equal(3, r.json.count)
      assert.are.equal(1, r.json.success)
      assert.are.equal(2, r.json.fail)
      assert.are.equal("SUCCESS", r.json.resultList[1].result)
      assert.are.equal("4000310", r.json.resultList[2].error.code)
      assert.are.equal("DEVICE_STATE_INVALID", r.json.resultList[2].error.message)
      assert.are.equal("4040300", r.json.resultList[3].error.code)
      local list = {}
      for i = 1, 10001 do list[i] = { deviceUid = tostring(i) } end
      assert_kg_error(kg("/devices/unlockAsync", { deviceList = list }), 400, 4000316,
        "DEVICE_BULK_OPERATION_LIMIT_EXCEEDED")
      assert_kg_error(kg("/devices/unlockAsync", { deviceList = {} }), 400, 4000000, "RESOURCE_INVALID_PARAM")
    end)
  end)

  describe("MSP Portal", function()
    local h
    before_each(function()
      s:reset()
      h = bearer(s, "msp.customers")
    end)

    local function msp(method, path, body)
      return s:request(method, "/msp/v1/managedCustomers" .. path, { headers = h, body = body })
    end

    it("lists and gets managed customers (totalCount is a string)", function()
      local r = msp("GET", "")
      assert.are.equal(200, r.status)
      assert.are.equal("2", r.json.totalCount)
      local c = r.json.customers[1]
      assert.are.equal(c.companyName, msp("GET", "/" .. c.customerId).json.companyName)
      assert_msp_error(msp("GET", "/0000000000"), 404, 4042100, "CUSTOMER_NOT_FOUND")
      assert.are.equal("1", msp("GET", "?companyName=contoso").json.totalCount)
    end)

    it("creates customers with validation", function()
      local body = { companyName = "Spec Corp", email = "it@spec.example", country = "DE",
        services = { "KME", "KG" }, kgTenantInfo = { kgDomainType = "Financing", kgTenantType = "Payg",
          email = "kg@spec.example" } }
      local r = msp("POST", "", body)
      assert.are.equal(200, r.status)
      assert.matches("^%d+$", r.json.customerId)
      assert.are.equal("FullyManaged", r.json.managementType)
      assert.are.equal("3", msp("GET", "").json.totalCount)
      assert_msp_error(msp("POST", "", body), 400, 4002106, "EMAIL_ALREADY_IN_USAGE")
      body.email = "other@spec.example"
      body.country = "XX"
      assert_msp_error(msp("POST", "", body), 400, 4002108, "INVALID_COUNTRY")
      body.country = "DE"
      body.kgTenantInfo = { kgDomainType = "Bank" }
      assert_msp_error(msp("POST", "", body), 400, 4002127, "INVALID_KG_TENANT_INFO")
      body.kgTenantInfo = { kgDomainType = "Others", kgTenantType = "Big" }
      assert_msp_error(msp("POST", "", body), 400, 4002128, "INVALID_KG_TENANT_TYPE_FINANCING_OTHERS")
      body.kgTenantInfo = { kgDomainType = "Financing", kgTenantType = "Normal" }
      assert_msp_error(msp("POST", "", body), 400, 4002129, "INVALID_KG_PHONE_EMAIL")
      body.kgTenantInfo = { kgDomainType = "Enterprise", kgTenantType = "Normal" }
      assert_msp_error(msp("POST", "", body), 400, 4002130, "INVALID_KG_TENANT_TYPE_EMPTY")
      body.kgTenantInfo, body.services = nil, { "SCP" }
      assert_msp_error(msp("POST", "", body), 400, 4002109, "SERVICE_NOT_VALID_SCP")
      body.services, body.companyName = nil, nil
      assert_msp_error(msp("POST", "", body), 400, 4000000, "RESOURCE_INVALID_PARAM")
    end)

    it("delinks and updates customers with the documented refusals", function()
      local customers = msp("GET", "").json.customers
      local jointly
      for _, c in ipairs(customers) do
        if c.managementType == "JointlyManaged" then jointly = c end
      end
      assert_msp_error(msp("POST", "/delink", { customerId = customers[1].customerId }), 400, 4002112,
        "CANNOT_DELINK_FULLY_MANAGED")
      local r = msp("POST", "/delink", { customerId = jointly.customerId })
      assert.are.equal(200, r.status)
      assert.are.equal("DelinkPending", r.json.status)
      assert_msp_error(msp("PUT", "/" .. jointly.customerId, { companyName = "X" }), 400, 4002116,
        "CANNOT_CHANGE_WHEN_DELINKING")
      assert_msp_error(msp("POST", "/link", { customerId = jointly.customerId }), 400, 4002102, "ADD_EC_DELINK_PENDING")
      r = msp("PUT", "/" .. customers[1].customerId, { companyName = "Northwind Renamed", services = { "KME" } })
      assert.are.equal(200, r.status)
      assert.are.equal("Northwind Renamed", msp("GET", "/" .. customers[1].customerId).json.companyName)
      assert_msp_error(msp("PUT", "/0000000000", {}), 404, 4042100, "CUSTOMER_NOT_FOUND")
    end)

    it("links existing Knox customers, refusing the documented cases", function()
      assert_msp_error(msp("POST", "/link", { customerId = "1234" }), 400, 4002100, "ADD_EC_CUSTOMER_INVALID")
      assert_msp_error(msp("POST", "/link", { customerId = s.customer_id }), 400, 4002100, "ADD_EC_CUSTOMER_INVALID")
      local pool = s:request("GET", "/__sim/info").json.msp_link_candidates
      assert.are.equal(4, #pool)
      local expect = { not_approved = { 4002101, "ADD_EC_CUSTOMER_NOT_APPROVED" },
        managed = { 4002103, "ADD_EC_ALREADY_MANAGED" }, region = { 4002105, "ADD_EC_NOT_SAME_REGION" } }
      for _, c in ipairs(pool) do
        local res = msp("POST", "/link", { customerId = c.customerId })
        if c.link == "ok" then
          assert.are.equal(200, res.status)
          assert.are.equal("JointlyManaged", res.json.managementType)
          assert_msp_error(msp("POST", "/link", { customerId = c.customerId }), 400, 4002104,
            "ADD_EC_PENDING_CANNOT_ADD_AGAIN")
        else
          assert_msp_error(res, 400, expect[c.link][1], expect[c.link][2])
        end
      end
      assert.are.equal("3", msp("GET", "").json.totalCount)
    end)
  end)

  describe("Knox Deployment Program", function()
    local h
    before_each(function()
      s:reset()
      h = bearer(s, "kdp")
    end)

    local function rp(method, path, body)
      return s:request(method, "/kcs/v1/rp" .. path, { headers = h, body = body })
    end

    it("uploads devices into a transaction and reports per-device failures", function()
      local r = rp("PUT", "/devices/upload", { resellerId = s.reseller_id, customerId = s.customer_id,
        transactionId = "up1", type = "IMEI", orderNo = "PO-1", devices = { "490154203237518", "490154203237519" } })
      assert.are.equal(200, r.status)
      assert.are.equal("up1", r.json.transactionId)
      local q = "/devices/status?resellerId=" .. s.reseller_id .. "&customerId=" .. s.customer_id
        .. "&transactionId=up1"
      r = rp("GET", q)
      assert.are.equal("InProgress", r.json.state)
      r = rp("GET", q)
      assert.are.equal("Complete", r.json.state)
      assert.are.equal("UPLOAD", r.json.operationType)
      assert.are.equal(1, #r.json.devices)
      assert.are.equal("490154203237519", r.json.devices[1].imei)
      assert.are.equal(40000004, r.json.devices[1].code)
      assert.are.equal("DEVICE_INVALID", r.json.devices[1].message)
      -- the reseller's upload reaches the customer's KME device list
      local kme = s:request("GET", "/kcs/v1/kme/devices/list", { headers = bearer(s) }).json
      assert.are.equal(13, kme.totalCount)
      assert_kme_error(rp("PUT", "/devices/upload", { resellerId = s.reseller_id, customerId = s.customer_id,
        transactionId = "up1", devices = { "490154203237518" } }), 400, 40000014, "TRANSACTION_ID_DUPLICATE")
    end)

    it("refuses unknown resellers and customers, and deletes only its own uploads", function()
      assert_kme_error(rp("PUT", "/devices/upload", { resellerId = "RS0", customerId = s.customer_id,
        transactionId = "t1", devices = { "490154203237518" } }), 404, 40400001, "RESELLER_NOT_FOUND")
      assert_kme_error(rp("PUT", "/devices/upload", { resellerId = s.reseller_id, customerId = "42",
        transactionId = "t2", devices = { "490154203237518" } }), 400, 40000011, "CUSTOMER_ID_INVALID")
      local list = rp("GET", "/devices?resellerId=" .. s.reseller_id .. "&pageSize=5").json
      assert.are.equal(12, list.totalCount)
      assert.are.equal(5, #list.devices)
      local r = rp("PUT", "/devices/delete", { resellerId = s.reseller_id, customerId = s.customer_id,
        transactionId = "del1", devices = { list.devices[1].mei, "490154203237518" } })
      assert.are.equal(200, r.status)
      r = rp("GET", "/devices/status?resellerId=" .. s.reseller_id .. "&transactionId=del1")
      assert.are.equal("DELETE", r.json.operationType)
      assert.are.equal(40000044, r.json.devices[1].code)
      assert.are.equal("RESELLER_CUSTOMER_DEVICE_NOT_FOUND", r.json.devices[1].message)
      assert.are.equal(11, rp("GET", "/devices?resellerId=" .. s.reseller_id).json.totalCount)
      r = rp("GET", "/customers/list?resellerId=" .. s.reseller_id)
      assert.are.equal(3, r.json.totalCount)
      assert.are.equal(s.customer_id, r.json.customers[1].customerId)
      assert_kme_error(rp("GET", "/devices/status?resellerId=" .. s.reseller_id .. "&transactionId=none"), 404,
        40400000, "RESOURCE_NOT_FOUND")
    end)

    it("accepts legacy x-knox-apitoken too", function()
      local r = s:request("GET", "/kcs/v1/rp/customers?resellerId=" .. s.reseller_id, { headers = L.headers() })
      assert.are.equal(200, r.status)
    end)
  end)

  describe("Knox Configure", function()
    local h
    before_each(function()
      s:reset()
      h = L.headers()
    end)

    it("lists, filters and sorts v1 devices, profiles and licenses", function()
      local r = s:request("GET", "/kcs/v1/kc/devices?pageSize=100", { headers = h })
      assert.are.equal(200, r.status)
      assert.are.equal(12, r.json.totalCount)
      local first = r.json.deviceList[1].deviceUId
      r = s:request("GET", "/kcs/v1/kc/devices?devices[]=" .. first, { headers = h })
      assert.are.equal(1, r.json.totalCount)
      r = s:request("GET", "/kcs/v1/kc/devices?sortBy=model&sortOrder=descending", { headers = h })
      local models = {}
      for i, d in ipairs(r.json.deviceList) do models[i] = d.model end
      for i = 2, #models do assert.is_true(models[i - 1] >= models[i]) end
      r = s:request("GET", "/kcs/v1/kc/devices?sortOrder=sideways", { headers = h })
      assert.are.equal(400, r.status)
      assert.are.equal(40000000, r.json.code)
      assert.are.equal("RESOURCE_INVALID_PARAM", r.json.message)
      assert.is_nil(r.json.errorId)
      r = s:request("GET", "/kcs/v1/kc/profiles", { headers = h })
      assert.are.equal(2, r.json.totalCount)
      r = s:request("GET", "/kcs/v1/kc/licenses", { headers = h })
      assert.are.equal(2, r.json.totalCount)
    end)

    it("assigns and unassigns with counts and documented errors", function()
      local devices = s:request("GET", "/kcs/v1/kc/devices", { headers = h }).json.deviceList
      local profile = s:request("GET", "/kcs/v1/kc/profiles", { headers = h }).json.contents[2]
      local license = s:request("GET", "/kcs/v1/kc/licenses", { headers = h }).json.licenses[1]
      local ids = { devices[1].deviceUId, devices[2].deviceUId, "490154203237518" }
      local r = s:request("PUT", "/kcs/v1/kc/devices/assign", { headers = h, body = { deviceIds = ids,
        assignFeature = { profileId = profile.profileId, licenseKey = license.licenseKey } } })
      assert.are.equal(200, r.status)
      assert.are.same({ totalCount = 3, successCount = 2, pendingCount = 0, failedCount = 1 }, r.json)
      r = s:request("PUT", "/kcs/v1/kc/devices/assign", { headers = h, body = { deviceIds = ids,
        assignFeature = { licenseKey = license.licenseKey } } })
      assert.are.equal(40000017, r.json.code)
      assert.are.equal("PROFILE_ID_MISSING", r.json.message)
      r = s:request("PUT", "/kcs/v1/kc/devices/assign", { headers = h, body = { deviceIds = ids,
        assignFeature = { profileId = profile.profileId, licenseKey = "nope" } } })
      assert.are.equal(404, r.status)
      assert.are.equal("LICENSE_NOT_FOUND", r.json.message)
      r = s:request("PUT", "/kcs/v1/kc/devices/assign", { headers = h, body = { deviceIds = { "490154203237518" },
        assignFeature = { profileId = profile.profileId, licenseKey = license.licenseKey } } })
      assert.are.equal(40400005, r.json.code)
      r = s:request("PUT", "/kcs/v1/kc/devices/unassign", { headers = h, body = { deviceIds = { ids[1] } } })
      assert.are.equal(1, r.json.successCount)
    end)

    it("serves v2 getDevices to OAuth clients with pageSize up to 100 and searchAfter", function()
      local b = bearer(s, "kc.devices:view")
      local r = s:request("POST", "/kc/v2/devices/getDevices", { headers = b, body = {} })
      assert.are.equal(200, r.status)
      assert.are.equal(12, r.json.totalCount)
      assert.are.equal(12, #r.json.devices)
      assert.are.equal(25, r.json.pageSize)
      r = s:request("POST", "/kc/v2/devices/getDevices", { headers = b, body = { pageSize = 5 } })
      local cursor = r.json.nextSearchAfter
      assert.are.equal(r.json.devices[5].id, cursor)
      r = s:request("POST", "/kc/v2/devices/getDevices", { headers = b, body = { pageSize = 5, searchAfter = cursor } })
      assert.are.equal(5, #r.json.devices)
      r = s:request("POST", "/kc/v2/devices/getDevices", { headers = b, body = { pageSize = 101 } })
      assert.are.equal(400, r.status)
      r = s:request("POST", "/kc/v2/devices/getDevices", { headers = b, body = { deviceState = { "Configured" } } })
      assert.are.equal(3, r.json.totalCount)
      r = s:request("POST", "/kc/v2/devices/getDevices", { headers = h, body = {} })
      assert_oauth_error(r, 401, "invalid_request")
    end)
  end)

  describe("faults", function()
    before_each(function() s:reset() end)

    it("refuses fault specs that could stall or break it, and keeps serving", function()
      for _, spec in ipairs {
        { match = { pattern = string.rep(".-", 12) .. "@" }, status = 500 },
        { match = { pattern = "k[" }, status = 500 },
        { match = { pattern = string.rep("a", 300) }, status = 500 },
        { match = { path = "^" .. string.rep(".-", 12) .. "@" }, status = 500 },  -- the older anchored form
        { match = { path = string.rep("a", 600) }, status = 500 },
        { match = { path = "/a", pattern = "/a" }, status = 500 },
        { match = { partial = true }, status = 500 },
        { status = 500, times = 1e300 },
        { status = 500, times = 1.5 },
        { status = 429, retry_after = 1e300 },
      } do
        local r = s:request("POST", "/__sim/faults", { body = spec })
        assert.are.equal(400, r.status, cjson.encode(spec))
      end
      local r = s:request("GET", "/__sim/requests?path=k%5B")
      assert.are.equal(400, r.status)
      -- a pattern is tried only on paths of a bounded length
      s:fault { match = { pattern = "x.-y", partial = true }, status = 503, times = 5 }
      r = s:request("GET", "/kcs/v1/kme/" .. string.rep("x", 600) .. "/devices/list")
      assert.are_not.equal(503, r.status)
      r = s:request("GET", "/__sim/health")
      assert.are.equal(200, r.status)
    end)

    it("fails the next N matching requests, then resumes normal service", function()
      local id = s:fault { match = { method = "GET", path = "/kcs/v1/kme/devices/list" }, status = 429,
        retry_after = 2, times = 2 }
      assert.is_number(id)
      local r = s:request("GET", "/kcs/v1/kme/devices/list?pageSize=1")
      assert_kme_error(r, 429, 4290000, "TOO_MANY_REQUESTS")
      assert.are.equal("2", r.headers["retry-after"])
      r = s:request("GET", "/kcs/v1/kme/devices/list")
      assert.are.equal(429, r.status)
      assert.are.equal(401, s:request("GET", "/kcs/v1/kme/devices/list").status)
      local log = s:requests { path = "devices/list" }
      assert.are.equal(3, #log)
      assert.are.equal(id, log[1].fault)
      assert.are.equal(429, log[1].status)
      assert.are.equal("pageSize=1", log[1].query)
    end)

    it("only matches the method and the path pattern it names (the older anchored form)", function()
      s:fault { match = { method = "POST", path = "/kg/devices/l.ck$" }, status = 503 }
      assert.are.equal(401, s:request("GET", "/kcs/v1.1/kg/devices/lock").status)
      local r = s:request("POST", "/kcs/v1.1/kg/devices/lock", { body = {} })
      assert_kg_error(r, 503, 5030000, "SERVICE_UNAVAILABLE")
      s:fault { status = 500, times = 1 }
      assert.are.equal(200, s:request("GET", "/__sim/health").status)  -- never control endpoints
      r = s:request("GET", "/msp/v1/managedCustomers")
      assert_msp_error(r, 500, 5000000, "FAILURE")
      s:fault { match = { path = "/ams/v1/oauth2/token" }, status = 503 }
      assert_oauth_error(oauth_token(s), 503, "temporarily_unavailable")
    end)

    it("serves html, empty, garbage and truncated bodies", function()
      s:fault { match = { path = "^/a$" }, status = 502, body = "html" }
      local r = s:request("GET", "/a")
      assert.are.equal(502, r.status)
      assert.matches("^text/html", r.headers["content-type"])
      assert.matches("502 Bad Gateway", r.body)
      s:fault { match = { path = "^/b$" }, status = 503, body = "empty" }
      r = s:request("GET", "/b")
      assert.are.equal(503, r.status)
      assert.are.equal("0", r.headers["content-length"])
      s:fault { match = { path = "^/c$" }, status = 200, body = "garbage" }
      r = s:request("GET", "/c")
      assert.are.equal(200, r.status)
      assert.is_false(pcall(cjson.decode, r.body))
      s:fault { match = { path = "^/d$" }, status = 500, body = "truncated" }
      local out, rc = curl(s.url .. "/d")
      assert.are.equal(18, rc, out)  -- CURLE_PARTIAL_FILE
      s:fault { match = { path = "^/whole$" }, body = "truncated" }   -- the real answer, cut short
      local c = s:connect()
      r = c:request("GET", "/whole")
      c:close()
      assert.are.equal(404, r.status)
      assert.are.equal("closed", r.error)
      s:fault { match = { path = "^/e$" }, status = 400, code = 4040300, name = "DEVICE_NOT_FOUND",
        message = "custom" }
      r = s:request("GET", "/e")
      assert.are.equal(4040300, r.json.code)
      assert.are.equal("DEVICE_NOT_FOUND", r.json.message)
      assert.are.equal("custom", r.json.data)
      -- a documented code without a name gets the service's name for it
      s:fault { match = { path = "/kcs/v1/kme/devices/list" }, status = 401, code = 4032251 }
      assert_kme_error(s:request("GET", "/kcs/v1/kme/devices/list"), 401, 4032251, "ACCESS_TOKEN_EXPIRED")
      s:fault { match = { path = "/msp/v1/managedCustomers" }, status = 400, code = "4002102" }
      assert_msp_error(s:request("GET", "/msp/v1/managedCustomers"), 400, 4002102, "ADD_EC_DELINK_PENDING")
      s:fault { match = { pattern = "kg/devices", partial = true }, status = 400, code = 4002102 }
      assert_kg_error(s:request("POST", "/kcs/v1.1/kg/devices/list", { body = {} }), 400, 4002102,
        "API_KEY_RESTRICTION_INVALID")
    end)

    it("resets connections mid-response, after the request took effect", function()
      local h = bearer(s)
      local before = s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).json
      s:fault { match = { method = "POST", path = "/devices/delete$" }, reset = true }
      local c = s:connect()
      local r = c:request("POST", "/kcs/v1/kme/devices/delete", { headers = h,
        body = { deviceIds = { before.deviceList[1].mei } } })
      c:close()
      assert.are.equal(200, r.status)              -- the head arrived ...
      assert.is_string(r.error)                    -- ... but not the whole body
      assert.are.equal(before.totalCount - 1,      -- and the delete happened
        s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).json.totalCount)
      s:fault { match = { path = "^/reset$" }, status = 503, reset = true }
      local out, rc = curl(s.url .. "/reset")
      assert.is_true(rc == 56 or rc == 18, out)    -- CURLE_RECV_ERROR (reset) or CURLE_PARTIAL_FILE
      s:fault { match = { path = "^/early$" }, reset = "early" }
      out, rc = curl(s.url .. "/early")
      assert.is_true(rc == 56 or rc == 52, out)    -- CURLE_RECV_ERROR or CURLE_GOT_NOTHING
      assert.are.equal(1, #s:requests { path = "^/early$" })
      assert.are.equal(200, s:request("GET", "/__sim/health").status)
    end)

    it("delays replies without blocking other connections", function()
      s:fault { match = { path = "^/slow$" }, delay_ms = 1500 }
      local slow = s:connect()
      slow:send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
      local fast = s:request("GET", "/__sim/health")   -- answered while /slow waits
      assert.are.equal(200, fast.status)
      local r = socket.select({ slow.sock }, nil, 0)
      assert.are.equal(0, #r)                            -- /slow has not been answered yet
      local resp = slow:read_response()
      slow:close()
      assert.are.equal(404, resp.status)                 -- delayed, then served normally
    end)

    it("validates fault specs and lists and clears them", function()
      for _, bad in ipairs { { status = 99 }, { status = 500, body = "weird" }, { times = 0, status = 500 },
        { match = { pattern = "[" }, status = 500 }, { delay_ms = -1 }, {}, { match = { method = 5 }, status = 500 },
        { reset = "later" } } do
        local r = s:request("POST", "/__sim/faults", { body = bad })
        assert.are.equal(400, r.status, cjson.encode(bad))
      end
      s:fault { match = { path = "^/x$" }, status = 500, times = 3 }
      local r = s:request("GET", "/__sim/faults")
      assert.are.equal(1, #r.json.faults)
      assert.are.equal(3, r.json.faults[1].remaining)
      assert.are.equal(200, s:request("DELETE", "/__sim/faults").status)
      assert.are.equal(0, #s:request("GET", "/__sim/faults").json.faults)
      assert.are.equal(404, s:request("GET", "/x").status)
    end)
  end)

  describe("control endpoints", function()
    before_each(function() s:reset() end)

    it("records what clients sent: method, path, headers, body and connection", function()
      local c = s:connect()
      c:request("POST", "/kcs/v1.1/kg/devices/lock?x=1", { headers = { ["X-Test"] = "yes" }, body = { a = 1 } })
      c:request("GET", "/kcs/v1/kme/devices/list")
      c:close()
      local log = s:requests()
      assert.are.equal(2, #log)
      assert.are.equal("POST", log[1].method)
      assert.are.equal("/kcs/v1.1/kg/devices/lock", log[1].path)
      assert.are.equal("x=1", log[1].query)
      assert.are.equal("yes", log[1].headers["x-test"])
      assert.are.equal('{"a":1}', log[1].body)
      assert.are.equal(401, log[1].status)
      assert.are.equal(log[1].connection, log[2].connection)
      assert.are.equal(1, #s:requests { since = log[1].id })
      assert.are.equal(1, #s:requests { path = "kme" })
      assert.are.equal(1, #s:requests { limit = 1 })
      s:request("POST", "/bin", { body = "\255\0binary", headers = { ["Content-Type"] = "application/octet-stream" } })
      local e = s:requests { path = "^/bin$" }[1]
      assert.are.equal("\255\0binary", (require "mime").unb64(e.body_base64))
    end)

    it("moves the clock and the Date header with it", function()
      local r = s:request("GET", "/__sim/clock")
      local t0 = r.json.now
      local now = s:clock(86400 * 3)
      assert.is_true(now - t0 >= 86400 * 3)
      local date = s:request("GET", "/__sim/health").headers.date
      assert.are.equal(os.date("!%d %b %Y", math.floor(now)), date:match("^%a+, (%d+ %a+ %d+)"))
      s:reset()
      assert.is_true(s:request("GET", "/__sim/clock").json.offset == 0)
      assert.are.equal(400, s:request("POST", "/__sim/clock", { body = { advance = "x" } }).status)
    end)

    it("resets state to the seed's", function()
      local h = bearer(s)
      local first = s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).json.deviceList[1].mei
      s:request("POST", "/kcs/v1/kme/devices/delete", { headers = h, body = { deviceIds = { first } } })
      assert.are.equal(11, s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).json.totalCount)
      s:reset()
      h = bearer(s)
      local again = s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).json
      assert.are.equal(12, again.totalCount)
      assert.are.equal(first, again.deviceList[1].mei)
      assert.are.equal(2, #s:requests())  -- only the token request and this list since the reset
    end)

    it("answers unknown control paths and methods", function()
      assert.are.equal(404, s:request("GET", "/__sim/nothing").status)
      assert.are.equal(405, s:request("PUT", "/__sim/reset").status)
      assert.are.equal(400, s:request("POST", "/__sim/faults", { body = "{",
        headers = { ["Content-Type"] = "application/json" } }).status)
    end)
  end)

  describe("concurrency", function()
    it("serves many connections at once", function()
      local conns = {}
      for i = 1, 60 do
        conns[i] = s:connect()
        conns[i]:send("GET /__sim/health HTTP/1.1\r\nHost: x\r\n\r\n")
      end
      for i = 60, 1, -1 do
        local r = conns[i]:read_response()
        assert.are.equal(200, r.status)
        conns[i]:close()
      end
    end)

    it("runs ten delayed requests side by side", function()
      s:reset()
      s:fault { match = { path = "^/batch$" }, delay_ms = 50, times = 10 }
      local conns = {}
      for i = 1, 10 do
        conns[i] = s:connect()
        conns[i]:send("GET /batch HTTP/1.1\r\nHost: x\r\n\r\n")
      end
      for i = 1, 10 do
        assert.are.equal(404, conns[i]:read_response().status)
        conns[i]:close()
      end
      local log = s:requests { path = "^/batch$" }
      assert.are.equal(10, #log)
      local ids = {}
      for _, e in ipairs(log) do ids[e.connection] = true end
      local n = 0
      for _ in pairs(ids) do n = n + 1 end
      assert.are.equal(10, n)
    end)
  end)

  describe("state", function()
    it("is deterministic for a seed", function()
      local a = sim.start { devices = 3, seed = "same", oauth = false }
      local b = sim.start { devices = 3, seed = "same", oauth = false }
      local c = sim.start { devices = 3, seed = "other", oauth = false }
      local function ids(x)
        local La = legacy(x)
        local r = x:request("POST", "/kcs/v1.1/kg/devices/list", { headers = La.headers(), body = {} })
        La.close()
        local out = {}
        for i, d in ipairs(r.json.deviceList) do out[i] = d.deviceUid .. "/" .. d.objectId end
        return table.concat(out, ","), x.customer_id
      end
      local ia, ca = ids(a)
      local ib, cb = ids(b)
      local ic, cc = ids(c)
      a:stop()
      b:stop()
      c:stop()
      assert.are.equal(ia, ib)
      assert.are.equal(ca, cb)
      assert.are_not.equal(ia, ic)
      assert.are_not.equal(ca, cc)
    end)
  end)
end)

describe("knox.sim process", function()
  it("serves HTTPS with a generated certificate and with given cert/key", function()
    local s = sim.start { tls = true, devices = 2, oauth = false }
    assert.matches("^knox%-sim listening on https://127%.0%.0%.1:%d+$", s.first_line)
    assert.is_string(s.ca_file)
    local out, rc = curl("--cacert " .. s.ca_file .. " " .. s.url .. "/__sim/health")
    assert.are.equal(0, rc, out)
    assert.are.equal('{"ok":true}', out)
    local _, bad = curl(s.url .. "/__sim/health")  -- not trusted without the CA file
    assert.are.equal(60, bad)
    -- a plain-HTTP client on the TLS port does not break the server
    local c = socket.tcp()
    c:settimeout(5)
    assert(c:connect("127.0.0.1", s.port))
    c:send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    c:receive("*a")
    c:close()
    assert.are.equal(200, s:request("GET", "/__sim/health").status)
    s:stop()
    local dir = os.tmpname()
    os.remove(dir)
    assert.are.equal(0, select(2, shell("mkdir " .. dir .. " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
      .. "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout " .. dir .. "/k.pem -out " .. dir
      .. "/c.pem")))
    s = sim.start { tls = true, cert = dir .. "/c.pem", key = dir .. "/k.pem", devices = 1, oauth = false }
    out, rc = curl("--cacert " .. dir .. "/c.pem " .. s.url .. "/__sim/health")
    s:stop()
    shell("rm -r " .. dir)
    assert.are.equal(0, rc, out)
  end)

  it("registers keys.json files given with --keys and --client-id", function()
    local dir = os.tmpname()
    os.remove(dir)
    shell("mkdir " .. dir .. " && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " .. dir
      .. "/p.pem")
    local pub = shell("openssl pkey -in " .. dir .. "/p.pem -pubout -outform DER | base64 -w0")
    local priv = shell("openssl pkcs8 -topk8 -nocrypt -in " .. dir .. "/p.pem -outform DER | base64 -w0")
    sim.write_file(dir .. "/keys.json", cjson.encode { Public = pub, Private = priv })
    local s = sim.start { keys = { { file = dir .. "/keys.json", client_id = "my-client" } }, devices = 1,
      oauth = false }
    assert.are.equal("my-client", s.client_id)
    assert.are.equal(dir .. "/keys.json", s.keys_file)
    local Lk = legacy(s)
    local h = Lk.headers()
    Lk.close()
    assert.are.equal(200, s:request("GET", "/kcs/v1/kme/devices/list", { headers = h }).status)
    s:stop()
    local out, rc = shell(KNOX_SIM .. " --keys "
      .. dir .. "/none.json --client-id x --stdin-eof < /dev/null")
    shell("rm -r " .. dir)
    assert.are.equal(1, rc)
    assert.matches("cannot read", out)
  end)

  it("stops on stdin EOF, on --max-lifetime, on SIGTERM and on SIGINT", function()
    local s = sim.start { devices = 1, oauth = false }
    local port = s.port
    s:stop()
    local c = socket.tcp()
    c:settimeout(2)
    assert.is_nil(c:connect("127.0.0.1", port))
    c:close()
    local out, rc = shell(KNOX_SIM
      .. " --devices 1 --max-lifetime 0.3")
    assert.are.equal(0, rc)
    assert.matches("^knox%-sim listening on http://", out)
    for _, sig in ipairs { "TERM", "INT" } do
      local outf = os.tmpname()
      local pid = shell(KNOX_SIM
        .. " --devices 1 --max-lifetime 60 >" .. outf .. " 2>&1 & echo $!"):match("%d+")
      local deadline = socket.gettime() + 10
      while not (sim.read_file(outf) or ""):find("\n") and socket.gettime() < deadline do socket.sleep(0.01) end
      local url_port = tonumber((sim.read_file(outf) or ""):match("listening on http://[%d.]+:(%d+)"))
      assert.is_number(url_port)
      shell("kill -" .. sig .. " " .. pid)
      deadline = socket.gettime() + 10
      local alive = true
      while alive and socket.gettime() < deadline do
        local _, st = shell("kill -0 " .. pid)
        alive = st == 0
        if alive then socket.sleep(0.02) end
      end
      assert.is_false(alive)
      local text = sim.read_file(outf)
      os.remove(outf)
      assert.is_nil(text:find("traceback", 1, true))
      if sig == "INT" then assert.matches("interrupted", text) end
    end
  end)

  it("listens on the --host it is given", function()
    local s = sim.start { host = "localhost", devices = 1, oauth = false }
    assert.matches("^knox%-sim listening on http://localhost:%d+$", s.first_line)
    assert.are.equal(200, s:request("GET", "/__sim/health").status)
    s:stop()
  end)

  it("applies --latency-ms to every reply but not to control endpoints", function()
    local s = sim.start { devices = 1, latency_ms = 1000, oauth = false }
    local slow = s:connect()
    slow:send("GET /kcs/v1/kme/devices/list HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.are.equal(200, s:request("GET", "/__sim/health").status)
    assert.are.equal(0, #socket.select({ slow.sock }, nil, 0))
    assert.are.equal(401, slow:read_response().status)
    slow:close()
    s:stop()
  end)
end)
