-- The client against the Knox simulator, over real loopback sockets.
local knox = require "knox"
local sim_support = require "support.sim"
local helpers = require "helpers"

local function header(req, name)
  for k, v in pairs(req.headers or {}) do
    if k:lower() == name then return v end
  end
  return nil
end

-- requests in the simulator's log whose path matches a pattern
local function matching(reqs, pattern, method)
  local out = {}
  for _, r in ipairs(reqs) do
    if r.path:find(pattern) and (not method or r.method == method) then out[#out + 1] = r end
  end
  return out
end

-- A fake clock and sleep: time moves only when the client sleeps or the
-- spec says so.
local function fake_time(start)
  local t = { now = start or require("knox.core").now(), sleeps = {} }
  t.clock = function() return t.now end
  t.sleep = function(s)
    t.sleeps[#t.sleeps + 1] = s
    t.now = t.now + s
  end
  return t
end

describe("knox.client against the simulator", function()
  local sim

  setup(function()
    sim = sim_support.start()
  end)

  teardown(function()
    if sim then sim:stop() end
  end)

  before_each(function()
    sim:reset()
  end)

  local function legacy_client(extra)
    local opts = {
      base_url = sim.url,
      auth = knox.auth.keys { file = sim.keys_file, client_id = sim.client_id },
    }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return knox.client(opts)
  end

  local function oauth_client(extra)
    local opts = {
      base_url = sim.url,
      auth = knox.auth.oauth2 { client_id = sim.oauth.client_id, client_secret = sim.oauth.client_secret,
        scope = sim.oauth.scope },
    }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return knox.client(opts)
  end

  describe("legacy flow", function()
    it("gets an access token, signs it and calls KME with x-knox-apitoken", function()
      local c <close> = legacy_client()
      local body, res = c:request("GET", "/kcs/v1/kme/devices/list", { query = { pageNum = 0, pageSize = 10 } })
      assert.are.equal(200, res.status)
      assert.is_table(body)
      assert.is_number(body.totalCount)
      assert.are.equal(1, res.attempts)

      local reqs = sim:requests()
      local tok = matching(reqs, "^/ams/v1/users/accesstoken$", "POST")
      assert.are.equal(1, #tok)
      local sent = knox.json.decode(tok[1].body)
      assert.is_string(sent.clientIdentifierJwt)
      assert.is_string(sent.base64EncodedStringPublicKey)
      assert.are.equal(30, sent.validityForAccessTokenInMinutes)
      assert.are.equal(math.type(30), math.type(sent.validityForAccessTokenInMinutes))

      local calls = matching(reqs, "^/kcs/v1/kme/devices/list")
      assert.are.equal(1, #calls)
      assert.is_string(header(calls[1], "x-knox-apitoken"))
      assert.is_nil(header(calls[1], "authorization"))
      assert.matches("pageNum=0", calls[1].query or calls[1].path .. (calls[1].query or ""))
    end)

    it("reuses the token and the connection for a series of calls", function()
      local c <close> = legacy_client()
      for _ = 1, 5 do c:request("GET", "/kcs/v1/kme/devices/list") end
      local reqs = sim:requests()
      assert.are.equal(1, #matching(reqs, "^/ams/v1/users/accesstoken$"))
      local calls = matching(reqs, "^/kcs/v1/kme/devices/list")
      assert.are.equal(5, #calls)
      local tokens = {}
      for _, r in ipairs(calls) do tokens[header(r, "x-knox-apitoken")] = true end
      assert.are.equal(1, #(function() local l = {} for k in pairs(tokens) do l[#l + 1] = k end return l end)())
      local conns = {}
      for _, r in ipairs(reqs) do conns[r.connection] = true end
      local n = 0
      for _ in pairs(conns) do n = n + 1 end
      assert.are.equal(1, n, "one connection for the token and all calls")
    end)

    it("renews the token before it expires when the client's clock moves", function()
      local t = fake_time()
      local issued = 0
      local c <close> = legacy_client { clock = t.clock, sleep = t.sleep }
      c:on("token", function(ev) if ev.action == "issued" then issued = issued + 1 end end)
      c:request("GET", "/kcs/v1/kme/devices/list")
      t.now = t.now + 10 * 60
      c:request("GET", "/kcs/v1/kme/devices/list")
      assert.are.equal(1, issued)
      -- past 80% of the 30-minute life: renewed before use. (The fake clock
      -- now runs 25 minutes ahead of the simulator's; the client learns that
      -- from the Date header and signs with the server's time.)
      t.now = t.now + 15 * 60
      c:request("GET", "/kcs/v1/kme/devices/list")
      assert.are.equal(2, issued)
      local calls = matching(sim:requests(), "^/kcs/v1/kme/devices/list")
      assert.are_not.equal(header(calls[2], "x-knox-apitoken"), header(calls[3], "x-knox-apitoken"))
    end)

    it("replays once after ACCESS_TOKEN_EXPIRED, signing with the server's time", function()
      local seen, events = {}, {}
      local c <close> = legacy_client { debug = function(ev) events[#events + 1] = ev end }
      c:on("token", function(ev) seen[#seen + 1] = ev end)
      c:request("GET", "/kcs/v1/kme/devices/list")
      -- 45 minutes later on the server: its access token is gone, and a JWT
      -- signed with the local clock would be expired too
      sim:clock(45 * 60)
      local body, res = c:request("GET", "/kcs/v1/kme/devices/list")
      assert.is_table(body)
      assert.are.equal(1, res.attempts)
      local reqs = sim:requests()
      assert.are.equal(2, #matching(reqs, "^/ams/v1/users/accesstoken$"))
      assert.are.equal(3, #matching(reqs, "^/kcs/v1/kme/devices/list"))
      local invalidated = false
      for _, ev in ipairs(seen) do
        if ev.action == "invalidated" then invalidated = ev.reason end
      end
      assert.are.equal("ACCESS_TOKEN_EXPIRED", invalidated)
      local skew
      for _, ev in ipairs(events) do if ev.event == "clock_skew" then skew = ev end end
      assert.is_table(skew, "clock skew reported through the debug hook")
      assert.is_true(skew.skew > 40 * 60)
      -- the renewed token's JWT was signed with the server's time
      local tok = matching(reqs, "^/ams/v1/users/accesstoken$")[2]
      local jwt = knox.json.decode(tok.body).clientIdentifierJwt
      local payload = jwt:match "^[^.]+%.([^.]+)%."
      payload = payload:gsub("-", "+"):gsub("_", "/")
      payload = payload .. ("="):rep((4 - #payload % 4) % 4)
      local claims = knox.json.decode(require("mime").unb64(payload))
      assert.is_true(claims.iat > os.time() + 40 * 60)
    end)

    it("raises the auth error when a renewed token is refused too", function()
      local c <close> = legacy_client()
      c:request("GET", "/kcs/v1/kme/devices/list")
      sim:fault { match = { path = "^/kcs/v1/kme/devices/list" }, status = 401, body = "knox",
        code = 4032251, times = 5 }
      local e = helpers.raises(c.request, c, "GET", "/kcs/v1/kme/devices/list")
      assert.are.equal("auth", e.kind)
      assert.are.equal(401, e.status)
      assert.are.equal(2, #matching(sim:requests(), "^/ams/v1/users/accesstoken$"), "renewed once only")
    end)
  end)

  describe("OAuth flow", function()
    it("gets a bearer token and calls MSP with the tenant header", function()
      local c <close> = oauth_client { tenant = "1111111111" }
      local body, res = c:request("GET", "/msp/v1/managedCustomers")
      assert.are.equal(200, res.status)
      assert.is_table(body)
      local reqs = sim:requests()
      local tok = matching(reqs, "^/ams/v1/oauth2/token$", "POST")
      assert.are.equal(1, #tok)
      assert.matches("grant_type=client_credentials", tok[1].body)
      assert.matches("application/x%-www%-form%-urlencoded", header(tok[1], "content-type"))
      local call = matching(reqs, "^/msp/v1/managedCustomers")[1]
      assert.matches("^Bearer .", header(call, "authorization"))
      assert.are.equal("1111111111", header(call, "x-wsm-managed-tenantid"))
      assert.is_nil(header(tok[1], "x-wsm-managed-tenantid"))
    end)

    it("renews the bearer token near expires_in", function()
      local t = fake_time()
      local c <close> = oauth_client { clock = t.clock, sleep = t.sleep }
      c:request("GET", "/msp/v1/managedCustomers")
      c:request("GET", "/msp/v1/managedCustomers")
      assert.are.equal(1, #matching(sim:requests(), "^/ams/v1/oauth2/token$"))
      t.now = t.now + 3600
      c:request("GET", "/msp/v1/managedCustomers")
      assert.are.equal(2, #matching(sim:requests(), "^/ams/v1/oauth2/token$"))
    end)
  end)

  describe("routing by scheme", function()
    it("sends each service the credentials it accepts", function()
      local c <close> = knox.client {
        base_url = sim.url,
        auth = {
          knox.auth.oauth2 { client_id = sim.oauth.client_id, client_secret = sim.oauth.client_secret,
            scope = sim.oauth.scope },
          knox.auth.keys { file = sim.keys_file, client_id = sim.client_id },
        },
      }
      c:request("POST", "/kcs/v1.1/kg/devices/list", { body = { pageNum = 0, pageSize = 5 } })
      c:request("GET", "/msp/v1/managedCustomers")
      c:request("GET", "/kcs/v1/kme/devices/list")
      local reqs = sim:requests()
      local kg = matching(reqs, "^/kcs/v1.1/kg/")[1]
      assert.is_string(header(kg, "x-knox-apitoken"))
      assert.is_nil(header(kg, "authorization"))
      local msp = matching(reqs, "^/msp/")[1]
      assert.matches("^Bearer ", header(msp, "authorization"))
      -- KME accepts both: the first provider listed wins
      local kme = matching(reqs, "^/kcs/v1/kme/")[1]
      assert.matches("^Bearer ", header(kme, "authorization"))
    end)

    it("raises a usage error naming the service when no provider fits", function()
      local c <close> = oauth_client()
      local e = helpers.raises(c.request, c, "POST", "/kcs/v1.1/kg/devices/list", { body = {} })
      assert.are.equal("usage", e.kind)
      assert.matches("kg", e.message)
      assert.matches("knox.auth.keys", e.message)
      local l <close> = legacy_client()
      e = helpers.raises(l.request, l, "GET", "/msp/v1/managedCustomers")
      assert.matches("msp", e.message)
      assert.are.equal(0, #sim:requests(), "nothing was sent")
    end)
  end)

  describe("retries", function()
    it("waits at least Retry-After on 429, then succeeds", function()
      local t = fake_time()
      local c <close> = legacy_client { clock = t.clock, sleep = t.sleep }
      sim:fault { match = { method = "GET", path = "^/kcs/v1/kme/devices/list" }, status = 429,
        retry_after = 2, times = 1 }
      local body, res = c:request("GET", "/kcs/v1/kme/devices/list")
      assert.is_table(body)
      assert.are.equal(2, res.attempts)
      assert.are.equal(1, #t.sleeps)
      assert.is_true(t.sleeps[1] >= 2)
    end)

    it("raises the 429 when attempts run out, with retry_after", function()
      local t = fake_time()
      local c <close> = legacy_client { clock = t.clock, sleep = t.sleep }
      sim:fault { match = { path = "^/kcs/v1/kme/devices/list" }, status = 429, retry_after = 1, times = 10 }
      local e = helpers.raises(c.request, c, "GET", "/kcs/v1/kme/devices/list")
      assert.are.equal(429, e.status)
      assert.is_true(e.retryable)
      assert.are.equal(1, e.retry_after)
      assert.are.equal(3, e.attempts)
      assert.are.equal("max_attempts", e.retry_stopped)
      assert.are.equal(2, #t.sleeps)
    end)

    it("stops retrying when the retry budget is spent", function()
      local t = fake_time()
      local c <close> = legacy_client { clock = t.clock, sleep = t.sleep, max_attempts = 10,
        retry_budget = { capacity = 3 } }
      c:request("GET", "/kcs/v1/kme/devices/list")  -- token first, outside the fault
      sim:fault { match = { path = "^/kcs/v1/kme/devices/list" }, status = 503, times = 100 }
      local e = helpers.raises(c.request, c, "GET", "/kcs/v1/kme/devices/list")
      assert.are.equal(503, e.status)
      assert.are.equal("budget", e.retry_stopped)
      assert.are.equal(4, e.attempts)
      assert.are.equal(3, #t.sleeps)
      -- the next failing call is not retried at all
      e = helpers.raises(c.request, c, "GET", "/kcs/v1/kme/devices/list")
      assert.are.equal(1, e.attempts)
      assert.are.equal(3, #t.sleeps)
    end)

    it("does not retry a POST after a reset mid-response", function()
      local t = fake_time()
      local c <close> = legacy_client { clock = t.clock, sleep = t.sleep }
      c:request("GET", "/kcs/v1/kme/devices/list")
      sim:reset()
      sim:fault { match = { method = "POST", path = "^/kcs/v1/kme/devices/delete" }, reset = true, times = 1 }
      local e = helpers.raises(c.request, c, "POST", "/kcs/v1/kme/devices/delete",
        { body = { devices = { imeiOrSerials = { "X" } } } })
      assert.are.equal("transport", e.kind)
      assert.is_true(e.cause.ambiguous)
      assert.are.equal("unsafe_write", e.retry_stopped)
      assert.are.equal(0, #t.sleeps)
      assert.are.equal(1, #matching(sim:requests(), "^/kcs/v1/kme/devices/delete"))
    end)

    it("retries a GET after a reset mid-response", function()
      local t = fake_time()
      local c <close> = legacy_client { clock = t.clock, sleep = t.sleep }
      c:request("GET", "/kcs/v1/kme/devices/list")
      sim:fault { match = { method = "GET", path = "^/kcs/v1/kme/devices/list" }, reset = true, times = 1 }
      local body, res = c:request("GET", "/kcs/v1/kme/devices/list")
      assert.is_table(body)
      assert.are.equal(2, res.attempts)
    end)

    it("retries a POST whose connection was refused", function()
      local t = fake_time()
      -- a port nothing listens on: bind one, learn it, close it
      local socket = require "socket"
      local srv = assert(socket.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      srv:close()
      local c <close> = knox.client {
        base_url = "http://127.0.0.1:" .. port, clock = t.clock, sleep = t.sleep,
        auth = knox.auth.token { value = "static-token" },
      }
      local e = helpers.raises(c.request, c, "POST", "/kcs/v1/kme/devices/delete", { body = {} })
      assert.are.equal("transport", e.kind)
      assert.are.equal("COULDNT_CONNECT", e.cause.name)
      assert.is_false(e.cause.ambiguous)
      assert.are.equal(3, e.attempts)
      assert.are.equal(2, #t.sleeps)
    end)
  end)

  describe("batch", function()
    it("returns results in input order with errors in place and one token", function()
      local c <close> = legacy_client()
      local results = c:batch({
        { "GET", "/kcs/v1/kme/devices/list" },
        { "GET", "/kcs/v1/kme/profiles/{id}/get", { params = { id = "does-not-exist" } } },
        { "GET", "/kcs/v1/kme/devices/list", { query = { pageSize = 1 } } },
      }, { concurrency = 3 })
      assert.are.equal(3, #results)
      assert.is_table(results[1].body)
      assert.is_true(knox.is_error(results[2]))
      assert.are.equal(404, results[2].status)
      assert.is_table(results[3].body)
      assert.are.equal(1, #matching(sim:requests(), "^/ams/v1/users/accesstoken$"))
    end)

    it("shares one renewal between requests that all see an expired token", function()
      local c <close> = legacy_client()
      c:request("GET", "/kcs/v1/kme/devices/list")
      sim:clock(45 * 60)
      local list = {}
      for i = 1, 6 do list[i] = { "GET", "/kcs/v1/kme/devices/list" } end
      local results = c:batch(list, { concurrency = 6 })
      for i = 1, 6 do assert.is_table(results[i].body, "item " .. i) end
      assert.are.equal(2, #matching(sim:requests(), "^/ams/v1/users/accesstoken$"))
    end)
  end)

  describe("misuse", function()
    it("refuses a batch with a hole or bad options rather than skipping requests", function()
      local c <close> = legacy_client()
      local list = { { "GET", "/kcs/v1/kme/devices/list" }, nil, { "GET", "/kcs/v1/kme/devices/list" }, n = 3 }
      assert.has_error(function() c:batch(list) end, "bad argument #1 to 'batch' (item 2 is nil)")
      assert.has_error(function() c:batch({ { "GET", "/kcs/v1/kme/devices/list" } }, 5) end)
      assert.are.equal(0, #sim:requests())
    end)

    it("does not show userinfo of base_url in tostring", function()
      local c <close> = knox.client { base_url = sim.url:gsub("^http://", "http://user:PASSWORD@"),
        auth = knox.auth.token { value = "t" } }
      assert.is_nil(tostring(c):find "PASSWORD")
    end)

    it("removes a client secret the token endpoint echoes back", function()
      local c <close> = oauth_client()
      sim:fault { match = { path = "/ams/v1/oauth2/token" }, status = 400,
        message = "invalid client_secret " .. sim.oauth.client_secret, times = 1 }
      local e = helpers.raises(c.request, c, "GET", "/msp/v1/managedCustomers")
      local all = tostring(e) .. tostring(e.message) .. tostring(e.body) .. tostring(e.description)
      assert.is_nil(all:find(sim.oauth.client_secret, 1, true))
      assert.matches("%[redacted%]", all)
    end)
  end)

  describe("secrets", function()
    it("never shows a key, secret, token or signed JWT in errors or hooks", function()
      local seen = {}
      local function dump(v, depth)
        depth = depth or 0
        if type(v) ~= "table" or depth > 5 then return tostring(v) end
        local parts = {}
        for k, x in pairs(v) do parts[#parts + 1] = tostring(k) .. "=" .. dump(x, depth + 1) end
        return "{" .. table.concat(parts, ",") .. "}"
      end
      local function record(ev) seen[#seen + 1] = dump(ev) end
      local c <close> = knox.client {
        base_url = sim.url, debug = record,
        auth = {
          knox.auth.keys { file = sim.keys_file, client_id = sim.client_id },
          knox.auth.oauth2 { client_id = sim.oauth.client_id, client_secret = sim.oauth.client_secret,
            scope = sim.oauth.scope },
        },
      }
      for _, ev in ipairs { "request", "response", "retry", "token" } do c:on(ev, record) end
      c:request("GET", "/kcs/v1/kme/devices/list")
      c:request("GET", "/msp/v1/managedCustomers")
      sim:fault { match = { path = "^/kcs/v1/kme/devices/list" }, status = 500, times = 1 }
      c:request("GET", "/kcs/v1/kme/devices/list")
      local ok, e = pcall(c.request, c, "GET", "/kcs/v1/kme/profiles/{id}/get", { params = { id = "nope" } })
      assert.is_false(ok)
      seen[#seen + 1] = tostring(e)
      seen[#seen + 1] = dump(e)
      seen[#seen + 1] = tostring(c)

      local secrets = { sim.oauth.client_secret }
      local f = assert(io.open(sim.keys_file))
      local kj = knox.json.decode(f:read "a")
      f:close()
      secrets[#secrets + 1] = kj.Private:gsub("%s", ""):sub(1, 64)
      for _, r in ipairs(sim:requests()) do
        local tok = header(r, "x-knox-apitoken")
        if tok then
          secrets[#secrets + 1] = tok
          -- the opaque access token inside the signed JWT
          local payload = tok:match "^[^.]+%.([^.]+)%."
          payload = payload:gsub("-", "+"):gsub("_", "/")
          payload = payload .. ("="):rep((4 - #payload % 4) % 4)
          secrets[#secrets + 1] = knox.json.decode(require("mime").unb64(payload)).accessToken
        end
        local bearer = header(r, "authorization")
        if bearer then secrets[#secrets + 1] = bearer:match "^Bearer (.*)$" end
        if r.path:find "accesstoken" then
          secrets[#secrets + 1] = knox.json.decode(r.body).clientIdentifierJwt
        end
      end
      assert.is_true(#secrets >= 5)
      local all = table.concat(seen, "\n")
      assert.is_true(#all > 0)
      for _, s in ipairs(secrets) do
        assert.is_nil(all:find(s, 1, true), "a secret leaked: " .. s:sub(1, 6) .. "...")
      end
    end)
  end)

  it("knox.try returns the error instead of raising", function()
    local c <close> = legacy_client()
    local ok, err = knox.try(c.request, c, "GET", "/kcs/v1/kme/profiles/{id}/get", { params = { id = "nope" } })
    assert.is_false(ok)
    assert.is_true(knox.is_error(err))
    assert.are.equal("api", err.kind)
  end)

  it("raises kind closed after close", function()
    local c = legacy_client()
    c:close()
    local e = helpers.raises(c.request, c, "GET", "/kcs/v1/kme/devices/list")
    assert.are.equal("closed", e.kind)
  end)

  it("builds itself from the environment in a real process", function()
    local cmd = ("cd %q && KNOX_BASE_URL=%q KNOX_KEYS_FILE=%q KNOX_CLIENT_ID=%q "
      .. helpers.lua_env() .. "lua5.4 -e %q 2>&1")
      :format(".", sim.url, sim.keys_file, sim.client_id,
        "local c = require('knox').client(); local b = c:request('GET', '/kcs/v1/kme/devices/list');"
        .. " io.write(type(b.totalCount))")
    local p = io.popen(cmd)
    local out = p:read "a"
    p:close()
    assert.are.equal("number", out)
    local p2 = io.popen("KNOX_REGION= KNOX_BASE_URL= " .. helpers.lua_env()
      .. "lua5.4 -e \"local ok, e = pcall(require('knox').client); io.write(tostring(e))\"")
    local out2 = p2:read "a"
    p2:close()
    assert.matches("KNOX_REGION", out2)
  end)
end)
