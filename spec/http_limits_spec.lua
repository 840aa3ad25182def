-- The transport's resource limits against hostile responses (issue 15:
-- D3 batch memory, D4 repeated headers, D5 pooled buffers, D6 oversized
-- headers), on real loopback servers (spec/support/httpd.lua). Behaviour
-- only: the memory and CPU figures are bench/http_limits.lua's.
local helpers = require "helpers"
local servers = require "support.http_servers"

local core = require "knox.core"

local function requests_seen(srv)
  local s = core.session()
  local _, _, body = s:request { url = srv.url("/stats") }
  s:close()
  return tonumber(body:match("requests=(%d+)"))
end

local function check_headers_error(err)
  assert.is_true(core.is_error(err), tostring(err))
  assert.are.equal("transport", err.kind)
  assert.are.equal("RESPONSE_HEADERS_TOO_LARGE", err.cause.name)
  assert.is_false(err.retryable)
  assert.is_nil(err.status)
  assert.is_true(err:is "RESPONSE_HEADERS_TOO_LARGE")
  assert.matches("header", err.message)
end

describe("transport limits", function()
  local srv, S

  setup(function()
    srv = servers.httpd(600)
    S = core.session { timeout = 20 }
  end)

  teardown(function()
    S:close()
    srv.stop()
  end)

  describe("a batch's receive buffers (max_batch_bytes)", function()
    it("is a session option: a positive number, 64 MiB by default", function()
      local s = core.session { max_batch_bytes = 1e6 }
      s:close()
      for _, bad in ipairs { 0, -1, "x", 0 / 0 } do
        local ok, err = pcall(core.session, { max_batch_bytes = bad })
        assert.is_false(ok)
        assert.matches("bad argument.*max_batch_bytes", err)
      end
      -- the default admits 8 MiB per transfer at the default concurrency 8
      local reqs = {}
      for i = 1, 8 do reqs[i] = { url = srv.url("/big?n=" .. 8 * 1024 * 1024 .. "&chunked=1") } end
      local res = S:batch(reqs)
      for i = 1, 8 do assert.are.equal(8 * 1024 * 1024, #res[i].body, "item " .. i) end
      reqs = { { url = srv.url("/big?n=" .. 8 * 1024 * 1024 + 1 .. "&chunked=1") }, reqs[1], reqs[2], reqs[3],
        reqs[4], reqs[5], reqs[6], reqs[7] }
      res = S:batch(reqs)
      assert.are.equal("RESPONSE_TOO_LARGE", res[1].cause.name)
      for i = 2, 8 do assert.are.equal(200, res[i].status) end
    end)

    it("gives each transfer an equal share: over it, a clear non-retryable error naming the option", function()
      local s <close> = core.session { timeout = 20, max_batch_bytes = 400000 }
      for _, path in ipairs { "/big?n=150000&chunked=1", "/big?n=150000", "/gzip?n=150000" } do
        local reqs = {}
        for i = 1, 4 do reqs[i] = { url = srv.url(path) } end
        -- four at once: 100000 bytes each
        local res = s:batch(reqs, { concurrency = 4 })
        for i = 1, 4 do
          local err = res[i]
          assert.is_true(core.is_error(err), path)
          assert.are.equal("transport", err.kind)
          assert.are.equal("RESPONSE_TOO_LARGE", err.cause.name)
          assert.is_false(err.retryable)
          assert.matches("max_batch_bytes", err.message, 1, true)
          assert.matches("100000", err.message, 1, true)
        end
        -- two at once: 200000 bytes each
        res = s:batch(reqs, { concurrency = 2 })
        for i = 1, 4 do assert.are.equal(150000, #res[i].body, path) end
      end
      -- a lone request is bounded by max_response_bytes only
      local status, _, body = s:request { url = srv.url("/big?n=450000&chunked=1") }
      assert.are.equal(200, status)
      assert.are.equal(450000, #body)
    end)

    it("shares among the transfers that run, not the concurrency asked for", function()
      local s <close> = core.session { timeout = 20, max_batch_bytes = 400000 }
      local res = s:batch({ { url = srv.url("/big?n=350000&chunked=1") } }, { concurrency = 16 })
      assert.are.equal(350000, #res[1].body)
    end)

    it("never raises max_response_bytes", function()
      local s <close> = core.session { timeout = 20, max_batch_bytes = 1e9, max_response_bytes = 100000 }
      local res = s:batch({ { url = srv.url("/big?n=100001&chunked=1") } })
      assert.are.equal("RESPONSE_TOO_LARGE", res[1].cause.name)
      assert.matches("max_response_bytes", res[1].message, 1, true)
      assert.is_nil(res[1].message:find("max_batch_bytes", 1, true))
    end)
  end)

  describe("pooled batch handles", function()
    it("release their receive buffers when the batch ends", function()
      local s <close> = core.session { timeout = 20 }
      assert.are.equal(0, s:buffer_bytes())
      local reqs = {}
      for i = 1, 32 do reqs[i] = { url = srv.url("/big?n=" .. 200 * 1024) } end
      local res = s:batch(reqs, { concurrency = 16 })
      for i = 1, 32 do assert.are.equal(200 * 1024, #res[i].body) end
      assert.are.equal(0, s:buffer_bytes())
      -- and the next batch still reuses the pooled connections
      res = s:batch(reqs, { concurrency = 16 })
      for i = 1, 32 do assert.is_true(res[i].info.reused, "item " .. i) end
      assert.are.equal(0, s:buffer_bytes())
    end)

    it("counts what session:request keeps for the next request, at most 256 KiB per buffer", function()
      local s <close> = core.session { timeout = 20 }
      s:request { url = srv.url("/big?n=100000") }
      local kept = s:buffer_bytes()
      assert.is_true(kept >= 100000 and kept <= 3 * 256 * 1024, tostring(kept))
      s:request { url = srv.url("/big?n=1000000") }
      assert.is_true(s:buffer_bytes() <= 3 * 256 * 1024)
      s:close()
      assert.has_error(function() s:buffer_bytes() end)
    end)
  end)

  describe("response headers", function()
    it("joins 1,000 lines of one name in order", function()
      local _, h = S:request { url = srv.url("/many-headers?n=999") }
      local want = {}
      for i = 1, 999 do want[i] = tostring(i % 10) end
      assert.are.equal(table.concat(want, ", "), h.x)
      assert.are.equal("2", h["content-length"])
    end)

    it("refuses more than 1,000 header lines, in a request and in a batch", function()
      for _, path in ipairs { "/many-headers?n=1000", "/many-headers?n=50000", "/many-headers?n=1500&distinct=1" } do
        local err = helpers.raises(S.request, S, { url = srv.url(path) })
        check_headers_error(err)
        assert.matches("1000 header lines", err.message, 1, true)
      end
      local res = S:batch { { url = srv.url("/many-headers?n=50000") }, { url = srv.url("/echo") } }
      check_headers_error(res[1])
      assert.are.equal(200, res[2].status)
    end)

    it("refuses oversized headers as RESPONSE_HEADERS_TOO_LARGE, not retryable", function()
      for _, path in ipairs {
        "/huge-header?bytes=1000000", -- one line past libcurl's own line limit
        "/huge-header?bytes=150000",
        "/big-headers?bytes=2000000", -- past libcurl's total limit
        "/big-headers?bytes=290000",  -- past knox's 256 KiB, under libcurl's 300 KB
      } do
        local err = helpers.raises(S.request, S, { url = srv.url(path) })
        check_headers_error(err)
        assert.is_nil(err.message:find("memory", 1, true), path)
      end
      local res = S:batch { { url = srv.url("/huge-header?bytes=1000000") },
        { url = srv.url("/big-headers?bytes=2000000") } }
      check_headers_error(res[1])
      check_headers_error(res[2])
      -- below the limits, and the session is still usable
      local status, h = S:request { url = srv.url("/big-headers?bytes=200000") }
      assert.are.equal(200, status)
      assert.are.equal(984, #h["x-big-000001"])
      status, h = S:request { url = srv.url("/huge-header?bytes=90000") }
      assert.are.equal(200, status)
      assert.are.equal(90000, #h["x-huge"])
    end)

    it("are sent once by the client: no retry", function()
      local knox = require "knox"
      for _, case in ipairs { { "/huge-header", { bytes = 1000000 } }, { "/big-headers", { bytes = 2000000 } },
        { "/many-headers", { n = 50000 } } } do
        local c <close> = knox.client { base_url = srv.url(""), auth = knox.auth.token { value = "t" },
          max_attempts = 3, sleep = function() end }
        local before = requests_seen(srv)
        local err = helpers.raises(c.request, c, "GET", case[1], { query = case[2] })
        check_headers_error(err)
        assert.are.equal(1, err.attempts)
        assert.are.equal(before + 2, requests_seen(srv), case[1]) -- this one and the stats call
      end
    end)
  end)
end)
