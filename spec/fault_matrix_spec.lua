-- The fault matrix (hardening issue): every way the simulator can fail a
-- call, each with its expected outcome -- retried and succeeded, or raised
-- with the right kind and code -- no write sent twice unless idempotent,
-- and the client usable afterwards. Oversized response headers are in
-- spec/http_limits_spec.lua (they need a server that sends them).
local sim_support = require "support.sim"
local helpers = require "helpers"

local knox = require "knox"

local LIST = "/kcs/v1/kme/devices/list"
local WRITE = "/kcs/v1/kme/devices/unassignProfile"
local TOKEN = "/ams/v1/users/accesstoken"

describe("fault matrix", function()
  local sim, slept

  setup(function() sim = sim_support.start { devices = 300 } end)
  teardown(function() if sim then sim:stop() end end)
  before_each(function()
    sim:reset()
    slept = {}
  end)

  local function client(opts)
    local o = { base_url = sim.url, env = false, max_attempts = 3, retry_base = 0.01,
      sleep = function(d) slept[#slept + 1] = d end,
      auth = knox.auth.keys { file = sim.keys_file, client_id = sim.client_id } }
    for k, v in pairs(opts or {}) do o[k] = v end
    return knox.client(o)
  end

  local function sent(path)
    local n = 0
    for _, r in ipairs(sim:requests()) do if r.path == path then n = n + 1 end end
    return n
  end

  local function usable(c)
    local page = c:request("GET", LIST, { query = { pageSize = 1 } })
    assert.is_number(page.totalCount)
  end

  local function a_device(c)
    local d = c:request("GET", LIST, { query = { pageSize = 1 } }).deviceList[1]
    return d.mei or d.imei
  end

  local reads = {
    { "429 with Retry-After", { status = 429, retry_after = 2 }, retried = true, min_sleep = 2 },
    { "500", { status = 500 }, retried = true },
    { "HTML 502", { status = 502, body = "html" }, retried = true },
    { "503", { status = 503 }, retried = true },
    { "reset before the answer", { reset = "early" }, retried = true },
    { "reset after the request was handled", { reset = true }, retried = true },
    { "truncated body", { body = "truncated" }, retried = true },
  }
  for _, case in ipairs(reads) do
    it("a read through " .. case[1] .. " is retried and succeeds", function()
      local c <close> = client()
      local f = { match = { path = LIST }, times = 1 }
      for k, v in pairs(case[2]) do f[k] = v end
      sim:fault(f)
      local page = c:request("GET", LIST, { query = { pageSize = 5 } })
      assert.are.equal(5, #page.deviceList)
      assert.are.equal(2, sent(LIST))
      if case.min_sleep then assert.is_true(slept[1] >= case.min_sleep, tostring(slept[1])) end
      usable(c)
    end)
  end

  it("a slow body past the timeout is retried and succeeds", function()
    local c <close> = client()
    sim:fault { match = { path = LIST }, delay_ms = 1500, times = 1 }
    local page = c:request("GET", LIST, { query = { pageSize = 2 }, timeout = 0.4 })
    assert.are.equal(2, #page.deviceList)
    assert.are.equal(2, sent(LIST))
  end)

  local writes = {
    -- declined by the server: provably not applied, so safe to send again
    { "429", { status = 429, retry_after = 1 }, again = true },
    { "503", { status = 503 }, again = true },
    -- the server may have acted: never sent twice
    { "500", { status = 500 }, kind = "api", status = 500 },
    { "reset after the request was handled", { reset = true }, kind = "transport" },
    { "reset before any answer", { reset = "early" }, kind = "transport" },
  }
  for _, case in ipairs(writes) do
    it("a write through " .. case[1] .. (case.again and " is sent again once" or " is not sent twice"), function()
      local c <close> = client()
      local id = a_device(c)
      local f = { match = { path = WRITE, method = "PUT" }, times = 1 }
      for k, v in pairs(case[2]) do f[k] = v end
      sim:fault(f)
      local ok, e = knox.try(c.request, c, "PUT", WRITE, { body = { deviceIds = { id } } })
      if case.again then
        assert.is_true(ok, tostring(e))
        assert.are.equal(2, sent(WRITE))
      else
        assert.is_false(ok)
        assert.are.equal(case.kind, e.kind)
        if case.status then assert.are.equal(case.status, e.status) end
        assert.are.equal(1, sent(WRITE), "sent once")
      end
      usable(c)
    end)
  end

  it("a write the caller calls idempotent may be sent again after a 500", function()
    local c <close> = client()
    local id = a_device(c)
    sim:fault { match = { path = WRITE }, status = 500, times = 1 }
    c:request("PUT", WRITE, { body = { deviceIds = { id } }, idempotent = true })
    assert.are.equal(2, sent(WRITE))
  end)

  it("an invalid JSON 200 raises kind decode, not retried", function()
    local c <close> = client()
    sim:fault { match = { path = LIST }, status = 200, body = "garbage", times = 1 }
    local e = helpers.raises(c.request, c, "GET", LIST)
    assert.are.equal("decode", e.kind)
    assert.are.equal(1, sent(LIST))
    usable(c)
  end)

  it("an empty 200 is an empty answer, not an error", function()
    local c <close> = client()
    sim:fault { match = { path = LIST }, status = 200, body = "empty", times = 1 }
    local body, res = c:request("GET", LIST)
    assert.is_true(body == nil or body == "")
    assert.are.equal(200, res.status)
    usable(c)
  end)

  it("a token that expires mid-paging is renewed, every device seen once", function()
    local c <close> = client()
    local seen, n, pages = {}, 0, 0
    for d in c.kme:each_device({ pageSize = 100 }, { on_page = function()
      pages = pages + 1
      if pages == 1 then sim:clock(31 * 60) end -- past the 30 min access token
    end }) do
      local id = d.mei or d.imei
      assert.is_nil(seen[id], id)
      seen[id] = true
      n = n + 1
    end
    assert.are.equal(300, n)
    assert.are.equal(2, sent(TOKEN), "one renewal")
  end)

  it("a token request handled but lost is signed again with a new jti", function()
    local c <close> = client()
    sim:fault { match = { path = TOKEN }, reset = true, times = 1 }
    usable(c)
    local jtis = {}
    for _, r in ipairs(sim:requests()) do
      if r.path == TOKEN then
        local jwt = require("cjson").decode(r.body).clientIdentifierJwt
        local payload = jwt:match "^[^.]+%.([^.]+)%."
        payload = payload:gsub("-", "+"):gsub("_", "/")
        payload = payload .. string.rep("=", (4 - #payload % 4) % 4)
        jtis[#jtis + 1] = require("cjson").decode((require("mime").unb64(payload))).jti
      end
    end
    assert.are.equal(2, #jtis)
    assert.are_not.equal(jtis[1], jtis[2])
  end)

  it("a body over max_response_bytes is refused once, not retried", function()
    local c <close> = client { max_response_bytes = 4096 }
    local e = helpers.raises(c.request, c, "GET", LIST, { query = { pageSize = 300 } })
    assert.are.equal("transport", e.kind)
    assert.are.equal("RESPONSE_TOO_LARGE", e.cause.name)
    assert.are.equal(1, sent(LIST))
    usable(c)
  end)
end)
