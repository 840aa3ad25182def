-- Transport specs: knox.core.session against real servers on 127.0.0.1
-- (spec/support/httpd.lua, and nginx for TLS and HTTP/2). No mocks.
local helpers = require "helpers"
local servers = require "support.http_servers"
local socket = require "socket"

local core = require "knox.core"

-- All strings anywhere inside a value (keys and values, recursively).
local function strings_of(v, out, seen)
  out, seen = out or {}, seen or {}
  if type(v) == "string" then
    out[#out + 1] = v
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do
      strings_of(k, out, seen)
      strings_of(x, out, seen)
    end
  end
  return out
end

local function contains(list, needle)
  for _, s in ipairs(list) do
    if s:find(needle, 1, true) then return true end
  end
  return false
end

local function stats(session, srv)
  local _, _, body = session:request { url = srv.url("/stats") }
  local t = {}
  for k, v in body:gmatch("([%w_]+)=(%d+)") do t[k] = tonumber(v) end
  return t
end

describe("knox.Session", function()
  local srv, S

  setup(function()
    srv = servers.httpd(600)
    S = core.session { timeout = 10 }
  end)

  teardown(function()
    S:close()
    srv.stop()
  end)

  describe("creation", function()
    it("makes a knox.Session with the documented methods", function()
      local s = core.session()
      assert.matches("^knox%.Session %(", tostring(s))
      assert.is_function(s.request)
      assert.is_function(s.batch)
      assert.is_function(s.close)
      s:close()
      assert.are.equal("knox.Session (closed)", tostring(s))
    end)

    it("rejects malformed options with bad argument errors", function()
      for _, opts in ipairs {
        { timeout = -1 }, { timeout = "x" }, { timeout = 0 }, { connect_timeout = 0 / 0 },
        { bogus = 1 }, { verify = "yes" }, { http_version = "3" }, { debug = 1 },
        { max_response_bytes = 0 }, { proxy = 5 }, { accept_encoding = true }, "nope",
      } do
        local ok, err = pcall(core.session, opts)
        assert.is_false(ok)
        assert.is_string(err)
        assert.matches("bad argument", err)
      end
    end)

    it("sends the default user agent and accepted encodings", function()
      local _, h = S:request { url = srv.url("/echo") }
      assert.matches("^knox%-lua/%d+%.%d+%.%d+ libcurl/[%d.]+ Lua 5%.4$", h["x-echo-h-user-agent"])
      assert.are.equal("knox-lua/" .. core.version .. " libcurl/" .. core.curl_version .. " Lua 5.4",
        h["x-echo-h-user-agent"])
      assert.are.equal("gzip, br", h["x-echo-h-accept-encoding"])
    end)

    it("honours user_agent and accept_encoding = false", function()
      local s = core.session { user_agent = "probe/1.0", accept_encoding = false }
      local _, h = s:request { url = srv.url("/echo") }
      assert.are.equal("probe/1.0", h["x-echo-h-user-agent"])
      assert.is_nil(h["x-echo-h-accept-encoding"])
      s:close()
    end)
  end)

  describe("requests", function()
    it("sends GET, POST, PUT, PATCH and DELETE with bodies and returns what came back", function()
      for _, m in ipairs { "GET", "POST", "PUT", "PATCH", "DELETE" } do
        local body = '{"method":"' .. m .. '","n":' .. #m .. "}"
        local status, h, b, info = S:request { method = m, url = srv.url("/echo?m=" .. m), body = body }
        assert.are.equal(200, status)
        assert.are.equal(m, h["x-echo-method"])
        assert.are.equal("/echo?m=" .. m, h["x-echo-target"])
        assert.are.equal(body, b)
        assert.are.equal(tostring(#body), h["x-echo-h-content-length"])
        assert.is_table(info)
      end
    end)

    it("defaults to GET without a body, and POST/PUT without a body send length 0", function()
      local _, h, b = S:request { url = srv.url("/echo") }
      assert.are.equal("GET", h["x-echo-method"])
      assert.is_nil(h["x-echo-h-content-length"])
      assert.are.equal("", b)
      for _, m in ipairs { "POST", "PUT" } do
        _, h = S:request { method = m, url = srv.url("/echo") }
        assert.are.equal(m, h["x-echo-method"])
        assert.are.equal("0", h["x-echo-h-content-length"])
      end
    end)

    it("does not carry a previous request's method or body into the next", function()
      S:request { method = "PUT", url = srv.url("/echo"), body = "first" }
      local _, h, b = S:request { url = srv.url("/echo") }
      assert.are.equal("GET", h["x-echo-method"])
      assert.are.equal("", b)
      _, h, b = S:request { method = "DELETE", url = srv.url("/echo") }
      assert.are.equal("DELETE", h["x-echo-method"])
      assert.are.equal("", b)
    end)

    it("answers HEAD without a body", function()
      local status, h, b = S:request { method = "HEAD", url = srv.url("/echo") }
      assert.are.equal(200, status)
      assert.are.equal("HEAD", h["x-echo-method"])
      assert.are.equal("", b)
    end)

    it("round-trips binary and large bodies without Expect or an invented Content-Type", function()
      local bin = "\0\1\2\255 binary \0 end"
      local _, h, b = S:request { method = "POST", url = srv.url("/echo"), body = bin }
      assert.are.equal(bin, b)
      assert.is_nil(h["x-echo-h-content-type"])
      local big = string.rep("0123456789abcdef", 65536) -- 1 MiB
      _, h, b = S:request { method = "POST", url = srv.url("/echo"), body = big,
        headers = { ["Content-Type"] = "application/octet-stream" } }
      assert.are.equal(#big, #b)
      assert.are.equal(big, b)
      assert.is_nil(h["x-echo-h-expect"])
      assert.are.equal("application/octet-stream", h["x-echo-h-content-type"])
    end)

    it("returns non-2xx statuses as responses, not errors", function()
      for _, code in ipairs { 201, 404, 429, 500, 503 } do
        local status, _, b = S:request { url = srv.url("/status?code=" .. code) }
        assert.are.equal(code, status)
        assert.are.equal("status " .. code, b)
      end
    end)

    it("fills info with timings, version, addresses and sizes", function()
      local _, _, _, info = S:request { url = srv.url("/echo") }
      for _, k in ipairs { "total_time", "connect_time", "tls_time", "starttransfer_time" } do
        assert.is_number(info[k])
        assert.is_true(info[k] >= 0)
      end
      assert.is_true(info.total_time >= info.starttransfer_time)
      assert.are.equal("1.1", info.http_version)
      assert.are.equal("127.0.0.1", info.remote_ip)
      assert.are.equal(srv.port, info.remote_port)
      assert.is_boolean(info.reused)
      assert.is_true(info.request_size > 0)
    end)

    it("rejects malformed requests with bad argument errors", function()
      for _, req in ipairs {
        {}, { url = 5 }, { url = "" }, { url = "http://127.0.0.1/a b" },
        { url = srv.url("/"), method = "GE T" }, { url = srv.url("/"), method = 1 },
        { url = srv.url("/"), headers = "x" }, { url = srv.url("/"), headers = { "x" } },
        { url = srv.url("/"), headers = { ["Bad Name"] = "v" } },
        { url = srv.url("/"), headers = { ["X-Inject"] = "v\r\nX-Evil: 1" } },
        { url = srv.url("/"), headers = { ["X-T"] = true } },
        { url = srv.url("/"), body = 5 }, { url = srv.url("/"), timeout = -1 },
        { url = srv.url("/"), method = "HEAD", body = "x" },
      } do
        local ok, err = pcall(S.request, S, req)
        assert.is_false(ok)
        assert.is_string(err)
        assert.matches("bad argument", err)
      end
      assert.has_error(function() S:request "http://127.0.0.1/" end)
      assert.has_error(function() S.request({}, { url = srv.url("/") }) end)
    end)
  end)

  describe("headers", function()
    it("sends the caller's headers, numbers as text, false removes, empty sends empty", function()
      local _, h = S:request { url = srv.url("/echo"), headers = {
        ["X-Custom"] = "value 1", ["X-Number"] = 42, Accept = false, ["X-Empty"] = "",
      } }
      assert.are.equal("value 1", h["x-echo-h-x-custom"])
      assert.are.equal("42", h["x-echo-h-x-number"])
      assert.is_nil(h["x-echo-h-accept"])
      assert.are.equal("", h["x-echo-h-x-empty"])
    end)

    it("returns lower-case names, joins repeats with ', ', unfolds and trims", function()
      local _, h, b = S:request { url = srv.url("/headers") }
      assert.are.equal("ok", b)
      assert.are.equal("a, b, c", h["x-multi"])
      assert.are.equal("first second", h["x-folded"])
      assert.are.equal("padded value", h["x-spaces"])
      assert.are.equal("sid=SRV-COOKIE-1, other=SRV-COOKIE-2", h["set-cookie"])
      assert.is_nil(h["X-Multi"])
      for k in pairs(h) do assert.are.equal(k:lower(), k) end
    end)

    it("sends each request's own header lines when they change between requests", function()
      -- the transport keeps the last request's lines and reuses those that
      -- repeat: every change must still reach the server
      local s <close> = core.session()
      local seq = {
        { accept = "application/json", ["x-token"] = "t1" },
        { accept = "application/json", ["x-token"] = "t1" },
        { accept = "application/json", ["x-token"] = "t2" },
        { accept = "application/json" },
        { accept = "text/plain", ["x-token"] = "t3", ["x-more"] = "m", ["User-Agent"] = false },
        { ["x-token"] = "t3" },
        {},
        { accept = "application/json", ["x-token"] = "t1" },
      }
      for i, hs in ipairs(seq) do
        local _, h = s:request { url = srv.url("/echo?i=" .. i), headers = hs }
        for _, name in ipairs { "accept", "x-token", "x-more" } do
          local want = hs[name]
          if name == "accept" and want == nil then want = "*/*" end
          assert.are.equal(want, h["x-echo-h-" .. name], ("request %d, %s"):format(i, name))
        end
        assert.are.equal(hs["User-Agent"] == false, h["x-echo-h-user-agent"] == nil, "request " .. i)
      end
      local _, h = s:request { method = "POST", url = srv.url("/echo"), body = "x", headers = { ["x-token"] = "t1" } }
      assert.are.equal("t1", h["x-echo-h-x-token"])
      assert.is_nil(h["x-echo-h-expect"])
      _, h = s:request { url = srv.url("/echo"), headers = { ["x-token"] = "t1" } }
      assert.are.equal("t1", h["x-echo-h-x-token"])
    end)

    it("gives each response its own values of the common header names", function()
      for _, v in ipairs { "one", "two", "two", "a-value-of-more-than-forty-bytes-in-all-xxxxxxxx", "one" } do
        local _, h = S:request { url = srv.url("/common?v=" .. v) }
        assert.are.equal(v, h.server)
        assert.are.equal(v:rep(10), h.etag)
        assert.are.equal("text/" .. v, h["content-type"])
        assert.are.equal("a, " .. v, h.vary)
        assert.are.equal("2", h["content-length"])
        for k in pairs(h) do assert.are.equal(k:lower(), k) end
      end
    end)

    it("passes the Date header through (the client corrects clock skew with it)", function()
      local _, h = S:request { url = srv.url("/echo") }
      assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", h.date)
    end)
  end)

  describe("keep-alive", function()
    it("makes many requests on one connection", function()
      local s = core.session()
      local before = stats(s, srv).connections
      local port, conn
      for i = 1, 50 do
        local status, h, _, info = s:request { url = srv.url("/echo?i=" .. i) }
        assert.are.equal(200, status)
        assert.is_true(info.reused)
        assert.are.equal(0, info.num_connects)
        port, conn = port or info.local_port, conn or h["x-conn"]
        assert.are.equal(port, info.local_port)
        assert.are.equal(conn, h["x-conn"])
        assert.are.equal(tostring(i + 1), h["x-req"])
      end
      -- the stats request opened the connection; the 50 reused it
      assert.are.equal(before, stats(s, srv).connections)
      s:close()
    end)

    it("keeps the connection after an HTTP error status and a POST", function()
      local s = core.session()
      local _, h1 = s:request { url = srv.url("/echo") }
      s:request { url = srv.url("/status?code=500") }
      s:request { method = "POST", url = srv.url("/echo"), body = "x" }
      local _, h2, _, info = s:request { url = srv.url("/echo") }
      assert.is_true(info.reused)
      assert.are.equal(h1["x-conn"], h2["x-conn"])
      assert.are.equal("4", h2["x-req"])
      s:close()
    end)
  end)

  describe("content encoding", function()
    it("decodes gzip bodies", function()
      local status, h, b = S:request { url = srv.url("/gzip?n=20000") }
      assert.are.equal(200, status)
      assert.are.equal("gzip", h["content-encoding"])
      assert.are.equal(20000, #b)
      assert.are.equal(string.rep("knox transport gzip line\n", 801):sub(1, 20000), b)
      assert.is_true(tonumber(h["content-length"]) < 20000)
    end)

    it("hands back the raw bytes when accept_encoding is false", function()
      local s = core.session { accept_encoding = false }
      local _, _, b = s:request { url = srv.url("/gzip?n=20000") }
      assert.are.equal("\31\139", b:sub(1, 2))
      s:close()
    end)
  end)

  describe("failures", function()
    local function check_transport(err, name, code, retryable, ambiguous)
      assert.are.equal("transport", err.kind)
      assert.are.equal(name, err.cause.name)
      if code then assert.are.equal(code, err.cause.curl_code) end
      assert.is_string(err.cause.text)
      assert.are.equal(retryable, err.retryable)
      assert.are.equal(ambiguous, err.cause.ambiguous)
      assert.is_nil(err.status)
      assert.is_true(err:is(name))
      assert.is_true(err:is "transport")
      assert.is_string(err.message)
      assert.matches(name, tostring(err), 1, true)
    end

    it("times out on a server that stalls (request sent: ambiguous)", function()
      local err = helpers.raises(S.request, S, { url = srv.url("/stall"), timeout = 0.3 })
      check_transport(err, "OPERATION_TIMEDOUT", 28, true, true)
      assert.are.equal("GET", err.method)
      assert.are.equal(srv.url("/stall"), err.url)
      err = helpers.raises(S.request, S, { method = "POST", url = srv.url("/stall"), body = "x", timeout = 0.3 })
      check_transport(err, "OPERATION_TIMEDOUT", 28, true, true)
      assert.are.equal("POST", err.method)
    end)

    it("uses the session's timeout by default", function()
      local s = core.session { timeout = 0.3 }
      check_transport(helpers.raises(s.request, s, { url = srv.url("/stall") }),
        "OPERATION_TIMEDOUT", 28, true, true)
      s:close()
    end)

    it("aborts a transfer slower than low_speed_limit", function()
      local s = core.session { low_speed_limit = 1000, low_speed_time = 1 }
      check_transport(helpers.raises(s.request, s, { url = srv.url("/stall-body") }),
        "OPERATION_TIMEDOUT", 28, true, true)
      s:close()
    end)

    it("reports connection refused as retryable and not ambiguous", function()
      local port = servers.free_port()
      local err = helpers.raises(S.request, S,
        { method = "POST", url = "http://127.0.0.1:" .. port .. "/x", body = "b" })
      check_transport(err, "COULDNT_CONNECT", 7, true, false)
    end)

    it("reports a connect timeout as not ambiguous", function()
      -- a listener whose accept queue is full drops new SYNs
      local l = assert(socket.tcp())
      assert(l:bind("127.0.0.1", 0))
      assert(l:listen(0))
      local _, port = l:getsockname()
      local fillers = {}
      for i = 1, 3 do
        fillers[i] = socket.tcp()
        fillers[i]:settimeout(0)
        fillers[i]:connect("127.0.0.1", port)
      end
      socket.sleep(0.05)
      local s = core.session { connect_timeout = 0.3 }
      local err = helpers.raises(s.request, s,
        { method = "POST", url = "http://127.0.0.1:" .. port .. "/", body = "b" })
      check_transport(err, "OPERATION_TIMEDOUT", 28, true, false)
      s:close()
      for _, c in ipairs(fillers) do c:close() end
      l:close()
    end)

    it("reports a stalled TLS handshake as not ambiguous", function()
      local l = assert(socket.tcp())
      assert(l:bind("127.0.0.1", 0))
      assert(l:listen(8))
      local _, port = l:getsockname()
      local err = helpers.raises(S.request, S, { method = "POST", url = "https://127.0.0.1:" .. port .. "/",
        body = "b", timeout = 0.3 })
      check_transport(err, "OPERATION_TIMEDOUT", 28, true, false)
      l:close()
    end)

    it("reports a reset in the middle of the body", function()
      local err = helpers.raises(S.request, S, { url = srv.url("/reset-mid-body") })
      check_transport(err, "RECV_ERROR", 56, true, true)
    end)

    it("never lets libcurl resend a write whose reused connection died", function()
      local function resets()
        local _, _, body = S:request { url = srv.url("/stats") }
        return tonumber(body:match "resets=(%d+)")
      end
      local before = resets()
      -- the /stats request above left a connection to reuse
      local err = helpers.raises(S.request, S, { method = "POST", url = srv.url("/reset-now"), body = "{}" })
      check_transport(err, "CONNECTION_DIED", 65, true, true)
      assert.are.equal(before + 1, resets(), "the server saw the POST once")
      -- a bodyless DELETE goes on a fresh connection, so there is nothing
      -- for libcurl to resend from
      before = resets()
      err = helpers.raises(S.request, S, { method = "DELETE", url = srv.url("/reset-now") })
      assert.are.equal("transport", err.kind)
      assert.is_true(err.cause.ambiguous)
      assert.are.equal(before + 1, resets())
      -- a GET, or a write the caller marks replayable, may be resent by libcurl
      before = resets()
      helpers.raises(S.request, S, { method = "GET", url = srv.url("/reset-now") })
      assert.are.equal(before + 2, resets())
      before = resets()
      helpers.raises(S.request, S, { method = "PUT", url = srv.url("/reset-now"), body = "x", replayable = true })
      assert.are.equal(before + 2, resets())
      assert.has_error(function() S:request { url = srv.url("/stats"), replayable = 1 } end)
    end)

    it("never returns a body that ended before its Content-Length", function()
      local err = helpers.raises(S.request, S, { url = srv.url("/truncated") })
      check_transport(err, "PARTIAL_FILE", 18, true, true)
    end)

    it("reports an empty reply", function()
      check_transport(helpers.raises(S.request, S, { url = srv.url("/empty") }), "GOT_NOTHING", 52, true, true)
    end)

    it("refuses bodies above max_response_bytes: declared, chunked and decompressed", function()
      local s = core.session { max_response_bytes = 100000 }
      for _, path in ipairs { "/big?n=100001", "/big?n=300000&chunked=1", "/gzip?n=200000" } do
        local err = helpers.raises(s.request, s, { url = srv.url(path) })
        check_transport(err, "RESPONSE_TOO_LARGE", nil, false, true)
        assert.matches("100000", err.message)
      end
      local status, _, b = s:request { url = srv.url("/big?n=100000&chunked=1") }
      assert.are.equal(200, status)
      assert.are.equal(100000, #b)
      status, _, b = s:request { url = srv.url("/big?n=100000") }
      assert.are.equal(200, status)
      assert.are.equal(100000, #b)
      -- a HEAD response declares a length but carries no body
      local h
      status, h, b = s:request { method = "HEAD", url = srv.url("/big?n=300000") }
      assert.are.equal(200, status)
      assert.are.equal("300000", h["content-length"])
      assert.are.equal("", b)
      s:close()
    end)

    it("refuses protocols other than http and https", function()
      local err = helpers.raises(S.request, S, { url = "file:///etc/passwd" })
      check_transport(err, "UNSUPPORTED_PROTOCOL", 1, false, false)
    end)

    it("keeps secrets out of the error's url and text", function()
      local port = servers.free_port()
      local err = helpers.raises(S.request, S, {
        url = "http://user:hunter2@127.0.0.1:" .. port .. "/x?access_token=TOPSECRET&page=2&client_secret=S2" })
      local all = table.concat(strings_of(err), "\n") .. tostring(err)
      assert.is_nil(all:find("hunter2", 1, true))
      assert.is_nil(all:find("TOPSECRET", 1, true))
      assert.is_nil(all:find("S2", 1, true))
      assert.are.equal("http://127.0.0.1:" .. port .. "/x?access_token=[redacted]&page=2&client_secret=[redacted]",
        err.url)
    end)

    it("leaves the session usable after failures", function()
      helpers.raises(S.request, S, { url = srv.url("/truncated") })
      helpers.raises(S.request, S, { url = srv.url("/stall"), timeout = 0.2 })
      local status, _, b = S:request { method = "POST", url = srv.url("/echo"), body = "after" }
      assert.are.equal(200, status)
      assert.are.equal("after", b)
    end)
  end)

  describe("proxy", function()
    it("sends requests through an HTTP proxy", function()
      local s = core.session { proxy = srv.url("") }
      local status, h = s:request { url = "http://knox.example.invalid/echo?via=proxy" }
      assert.are.equal(200, status)
      assert.are.equal("1", h["x-echo-proxied"])
      assert.are.equal("http://knox.example.invalid/echo?via=proxy", h["x-echo-target"])
      s:close()
    end)

    it("honours http_proxy from the environment (libcurl's default)", function()
      -- a child process, so that the variable is in its environment; it
      -- loads the same knox.core build as this one
      local code = ('package.cpath = %q .. ";" .. package.cpath; '
        .. 'local s = require("knox.core").session(); '
        .. 'local _, h = s:request { url = "http://knox.example.invalid/echo" }; '
        .. 'io.write(h["x-echo-proxied"], " ", h["x-echo-target"])'):format(package.cpath)
      local p = io.popen(("env -u no_proxy -u NO_PROXY http_proxy=%s lua5.4 -e '%s' 2>&1")
        :format(srv.url(""), code), "r")
      local out = p:read("a")
      p:close()
      assert.are.equal("1 http://knox.example.invalid/echo", out)
    end)

    it("never shows a proxy password from the environment to the debug hook", function()
      local code = ('package.cpath = %q .. ";" .. package.cpath; '
        .. 'local seen = {}; '
        .. 'local s = require("knox.core").session { debug = function(ev) seen[#seen + 1] = ev.text or "" end }; '
        .. 'pcall(s.request, s, { url = "http://knox.example.invalid/echo" }); '
        .. 'io.write(table.concat(seen, "\\n"))'):format(package.cpath)
      local proxy = srv.url(""):gsub("^http://", "http://proxyuser:S3CRETPASS@")
      local p = io.popen(("env -u no_proxy -u NO_PROXY http_proxy=%s lua5.4 -e '%s' 2>&1")
        :format(proxy, code), "r")
      local out = p:read("a")
      p:close()
      assert.matches("proxy", out)
      assert.is_nil(out:find("S3CRETPASS", 1, true))
    end)

    it("bypasses the proxy for noproxy hosts", function()
      local s = core.session { proxy = "http://127.0.0.1:" .. servers.free_port(), noproxy = "127.0.0.1" }
      local status, h = s:request { url = srv.url("/echo") }
      assert.are.equal(200, status)
      assert.are.equal("0", h["x-echo-proxied"])
      s:close()
    end)
  end)

  describe("batch", function()
    it("returns results in input order with failures in place, not raised", function()
      local refused = "http://127.0.0.1:" .. servers.free_port() .. "/r"
      local res = S:batch({
        { method = "POST", url = srv.url("/echo?i=1"), body = "one" },
        { url = refused },
        { url = srv.url("/status?code=503") },
        { url = srv.url("/stall"), timeout = 0.3 },
        { url = srv.url("/slow?ms=100&id=5") },
        { url = srv.url("/truncated") },
        { method = "PUT", url = srv.url("/echo?i=7"), body = "seven" },
      }, { concurrency = 4 })
      assert.are.equal(7, #res)
      assert.are.equal(200, res[1].status)
      assert.are.equal("one", res[1].body)
      assert.are.equal("POST", res[1].headers["x-echo-method"])
      assert.is_table(res[1].info)
      assert.is_true(core.is_error(res[2]))
      assert.are.equal("COULDNT_CONNECT", res[2].cause.name)
      assert.is_false(res[2].cause.ambiguous)
      assert.are.equal(refused, res[2].url)
      assert.are.equal(503, res[3].status)
      assert.is_true(core.is_error(res[4]))
      assert.are.equal("OPERATION_TIMEDOUT", res[4].cause.name)
      assert.is_true(res[4].retryable)
      assert.are.equal("slow 5", res[5].body)
      assert.are.equal("PARTIAL_FILE", res[6].cause.name)
      assert.are.equal("seven", res[7].body)
      assert.are.equal("PUT", res[7].headers["x-echo-method"])
    end)

    it("runs at most `concurrency` requests at once", function()
      for _, conc in ipairs { 1, 3 } do
        stats(S, srv)
        S:request { url = srv.url("/stats?reset=1") }
        local reqs = {}
        for i = 1, 8 do reqs[i] = { url = srv.url("/slow?ms=150&id=" .. i) } end
        local res = S:batch(reqs, { concurrency = conc })
        for i = 1, 8 do assert.are.equal("slow " .. i, res[i].body) end
        local peak = stats(S, srv).inflight_peak
        assert.is_true(peak <= conc, "peak " .. peak .. " > " .. conc)
        if conc > 1 then assert.is_true(peak >= 2, "requests did not overlap") end
      end
    end)

    it("refills a finished slot at once, without waiting for the others", function()
      local reqs = { { url = srv.url("/slow?ms=800&id=1") } }
      for i = 2, 6 do reqs[i] = { url = srv.url("/slow?ms=0&id=" .. i) } end
      local res = S:batch(reqs, { concurrency = 2 })
      -- the five quick requests went through the second slot while the slow one was held
      assert.are.equal("5", res[1].headers["x-later"])
      for i = 2, 6 do assert.are.equal("slow " .. i, res[i].body) end
    end)

    it("reuses its pooled connections across batches", function()
      local reqs = {}
      for i = 1, 4 do reqs[i] = { url = srv.url("/echo?i=" .. i) } end
      S:batch(reqs, { concurrency = 2 })
      local res = S:batch(reqs, { concurrency = 2 })
      for i = 1, 4 do assert.is_true(res[i].info.reused) end
    end)

    it("accepts an empty list and checks every request before sending any", function()
      assert.are.same({}, S:batch {})
      local before = stats(S, srv).requests
      local ok, err = pcall(S.batch, S, { { url = srv.url("/echo") }, { url = 42 } })
      assert.is_false(ok)
      assert.matches("request #2", err)
      assert.are.equal(before + 1, stats(S, srv).requests) -- only the stats call itself
      assert.has_error(function() S:batch({}, { concurrency = 0 }) end)
      assert.has_error(function() S:batch { "x" } end)
    end)
  end)

  describe("close", function()
    it("is idempotent and makes later use raise kind 'closed'", function()
      local s = core.session()
      s:request { url = srv.url("/echo") }
      s:close()
      s:close()
      local err = helpers.raises(s.request, s, { url = srv.url("/echo") })
      assert.are.equal("closed", err.kind)
      err = helpers.raises(s.batch, s, { { url = srv.url("/echo") } })
      assert.are.equal("closed", err.kind)
    end)

    it("works as a to-be-closed variable and under the garbage collector", function()
      local s2
      do
        local s <close> = core.session()
        s:batch { { url = srv.url("/echo") } }
        s2 = s
      end
      assert.are.equal("closed", helpers.raises(s2.request, s2, { url = srv.url("/") }).kind)
      for _ = 1, 20 do
        local s = core.session()
        s:request { url = srv.url("/echo") }
        s:batch { { url = srv.url("/echo") }, { url = srv.url("/echo") } }
      end
      collectgarbage()
      collectgarbage()
    end)
  end)

  describe("debug hook", function()
    local function session_with_events(opts)
      local events = {}
      opts = opts or {}
      opts.debug = function(e) events[#events + 1] = e end
      return core.session(opts), events
    end

    local function of_type(events, ty)
      local out = {}
      for _, e in ipairs(events) do
        if e.type == ty then out[#out + 1] = e end
      end
      return out
    end

    it("receives request, info and response events after the transfer", function()
      local s, events = session_with_events()
      s:request { method = "POST", url = srv.url("/echo?q=1"), body = "hello",
        headers = { ["X-Visible"] = "shown" } }
      local req, res = of_type(events, "request"), of_type(events, "response")
      assert.are.equal(1, #req)
      assert.are.equal(1, #res)
      assert.is_true(#of_type(events, "info") > 0)
      assert.are.equal("POST", req[1].method)
      assert.are.equal(srv.url("/echo?q=1"), req[1].url)
      assert.are.equal("shown", req[1].headers["x-visible"])
      assert.is_string(req[1].headers["user-agent"])
      assert.is_true(req[1].sent)
      assert.are.equal("hello", req[1].body)
      assert.are.equal(5, req[1].body_length)
      assert.are.equal(200, res[1].status)
      assert.are.equal("hello", res[1].body)
      assert.are.equal("POST", res[1].headers["x-echo-method"])
      local ri, si
      for i, e in ipairs(events) do
        if e == req[1] then ri = i elseif e == res[1] then si = i end
      end
      assert.is_true(ri < si)
      s:close()
    end)

    it("never lets a secret reach the hook", function()
      local s, events = session_with_events()
      local secrets = {
        "HDR-APITOKEN", "HDR-BEARER", "HDR-COOKIE", "HDR-PROXYAUTH",
        "JSON-CLIENT-SECRET", "JSON-CIJWT", "JSON-ACCESSTOKEN", "JSON-ACCESS_TOKEN", "JSON-REFRESH",
        "JSON-PRIVATE", "FORM-SECRET", "FORM-REFRESH", "QUERY-TOKEN",
        "SRV-SECRET-AT", "SRV-SECRET-RT", "SRV-SECRET-AT2", "SRV-SECRET-PRIV", "SRV-SECRET-COOKIE",
        "SRV-COOKIE-1", "SRV-COOKIE-2",
      }
      local headers = {
        ["x-knox-apitoken"] = "HDR-APITOKEN", Authorization = "Bearer HDR-BEARER",
        Cookie = "a=HDR-COOKIE", ["Proxy-Authorization"] = "Basic HDR-PROXYAUTH",
        ["Content-Type"] = "application/json",
      }
      local json = '{"clientIdentifierJwt":"JSON-CIJWT","client_secret" : "JSON-CLIENT-SECRET",'
        .. '"accessToken":"JSON-ACCESSTOKEN","access_token":"JSON-ACCESS_TOKEN","refresh_token":"JSON-REFRESH",'
        .. '"keys":{"Public":"PUBLIC-VISIBLE","Private":"JSON-PRIVATE"},"pageSize":100}'
      s:request { method = "POST", url = srv.url("/token?access_token=QUERY-TOKEN&page=1"),
        headers = headers, body = json }
      s:request { method = "POST", url = srv.url("/token"),
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
        body = "grant_type=client_credentials&client_id=CID-VISIBLE&client_secret=FORM-SECRET"
          .. "&refresh_token=FORM-REFRESH&scope=kme" }
      s:request { url = srv.url("/headers") }
      local all = strings_of(events)
      for _, secret in ipairs(secrets) do
        assert.is_false(contains(all, secret), secret .. " reached the debug hook")
      end
      assert.is_true(contains(all, "[redacted]"))
      for _, visible in ipairs { "PUBLIC-VISIBLE", '"pageSize":100', "CID-VISIBLE", "grant_type=client_credentials",
        "page=1", '"expires_in":3600', "Bearer" } do
        assert.is_true(contains(all, visible), visible .. " was hidden")
      end
      local req = of_type(events, "request")[1]
      assert.are.equal("[redacted]", req.headers["authorization"])
      assert.are.equal("[redacted]", req.headers["x-knox-apitoken"])
      assert.are.equal("application/json", req.headers["content-type"])
      s:close()
    end)

    it("redacts the headers of an unsent request", function()
      local s, events = session_with_events()
      helpers.raises(s.request, s, { url = "http://127.0.0.1:" .. servers.free_port() .. "/",
        headers = { Authorization = "Bearer UNSENT-SECRET" } })
      local req = of_type(events, "request")[1]
      assert.is_false(req.sent)
      assert.are.equal("[redacted]", req.headers.authorization)
      assert.is_false(contains(strings_of(events), "UNSENT-SECRET"))
      local last = events[#events]
      assert.are.equal("info", last.type)
      assert.are.equal("COULDNT_CONNECT", last.error.cause.name)
      s:close()
    end)

    it("re-raises the hook's error after the transfer and stays usable", function()
      local calls, failed = 0, false
      local s = core.session { debug = function(e)
        calls = calls + 1
        if e.type == "response" and not failed then
          failed = true
          error("hook failed: " .. e.status, 0)
        end
      end }
      local ok, err = pcall(s.request, s, { url = srv.url("/echo") })
      assert.is_false(ok)
      assert.are.equal("hook failed: 200", err)
      assert.is_true(calls > 1)
      local status, _, b = s:request { method = "POST", url = srv.url("/echo"), body = "again" }
      assert.are.equal(200, status)
      assert.are.equal("again", b)
      s:close()
    end)

    it("lets the hook use the session again, and close it", function()
      local s
      local nested, entered
      s = core.session { debug = function(e)
        if e.type == "response" and not entered then
          entered = true
          nested = { s:request { method = "POST", url = srv.url("/echo"), body = "inner" } }
        end
      end }
      local status, _, b = s:request { method = "POST", url = srv.url("/echo"), body = "outer" }
      assert.are.equal(200, status)
      assert.are.equal("outer", b)
      assert.are.equal(200, nested[1])
      assert.are.equal("inner", nested[3])
      local closer
      closer = core.session { debug = function(e) if e.type == "response" then closer:close() end end }
      local res = closer:batch { { url = srv.url("/echo?i=1") }, { url = srv.url("/echo?i=2") } }
      assert.are.equal(200, res[1].status)
      assert.are.equal(200, res[2].status)
      assert.are.equal("closed", helpers.raises(closer.request, closer, { url = srv.url("/") }).kind)
    end)

    it("tags batch events with the input index", function()
      local s, events = session_with_events()
      s:batch { { url = srv.url("/echo?i=1") }, { url = srv.url("/echo?i=2") } }
      local seen = {}
      for _, e in ipairs(of_type(events, "response")) do seen[e.index] = e.headers["x-echo-target"] end
      assert.are.same({ "/echo?i=1", "/echo?i=2" }, seen)
      s:close()
    end)
  end)

  describe("HTTPS", function()
    local dir, certs, ngx

    setup(function()
      dir = servers.tmpdir()
      certs = servers.make_certs(dir)
      ngx = servers.nginx { dir = dir, certs = certs, locations = [[
        location = /json { default_type application/json; return 200 '{"ok":true}'; }
        location = /token {
          add_header Set-Cookie "session=NGX-SECRET-COOKIE";
          default_type application/json;
          return 200 '{"access_token":"NGX-SECRET-AT","token_type":"Bearer"}';
        }
      ]] }
    end)

    teardown(function()
      if ngx then ngx.stop() end
      servers.rmdir(dir)
    end)

    local function url(path) return ("https://127.0.0.1:%d%s"):format(ngx.https_port, path) end

    it("fails verification without the test CA (not retryable, not ambiguous)", function()
      local s = core.session()
      local err = helpers.raises(s.request, s, { method = "POST", url = url("/json"), body = "x" })
      assert.are.equal("transport", err.kind)
      assert.are.equal("PEER_FAILED_VERIFICATION", err.cause.name)
      assert.are.equal(60, err.cause.curl_code)
      assert.is_false(err.retryable)
      assert.is_false(err.cause.ambiguous)
      s:close()
    end)

    it("verifies with ca_file and negotiates HTTP/2", function()
      local s = core.session { ca_file = certs.ca }
      local status, h, b, info = s:request { url = url("/json") }
      assert.are.equal(200, status)
      assert.are.equal('{"ok":true}', b)
      assert.are.equal("application/json", h["content-type"])
      assert.are.equal("2", info.http_version)
      assert.is_true(info.tls_time > 0)
      local _, _, _, info2 = s:request { url = url("/json") }
      assert.is_true(info2.reused)
      s:close()
    end)

    it("verifies with ca_path too, honours http_version = '1.1', reports a missing ca_file", function()
      assert(os.execute(("mkdir -p %s/cas && cp %s %s/cas/ && openssl rehash %s/cas >/dev/null 2>&1")
        :format(dir, certs.ca, dir, dir)))
      local s = core.session { ca_path = dir .. "/cas", http_version = "1.1" }
      local status, _, _, info = s:request { url = url("/json") }
      assert.are.equal(200, status)
      assert.are.equal("1.1", info.http_version)
      s:close()
      s = core.session { ca_file = dir .. "/missing.pem" }
      local err = helpers.raises(s.request, s, { url = url("/json") })
      assert.are.equal("SSL_CACERT_BADFILE", err.cause.name)
      assert.is_false(err.retryable)
      assert.is_false(err.cause.ambiguous)
      s:close()
    end)

    it("skips verification only when verify = false, and reports it to the hook", function()
      local events = {}
      local s = core.session { verify = false, debug = function(e) events[#events + 1] = e end }
      local status = s:request { url = url("/json") }
      assert.are.equal(200, status)
      local reported = false
      for _, e in ipairs(events) do
        if e.type == "info" and e.text:find("verify=false", 1, true) then reported = true end
        if e.type == "request" then assert.is_false(e.verify) end
      end
      assert.is_true(reported)
      s:close()
    end)

    it("keeps HTTP/2 header secrets out of curl's informational text", function()
      local events = {}
      local s = core.session { ca_file = certs.ca, debug = function(e) events[#events + 1] = e end }
      local _, _, b = s:request { method = "POST", url = url("/token"), body = '{"client_secret":"H2-BODY"}',
        headers = { Authorization = "Bearer H2-SECRET", ["X-Knox-ApiToken"] = "H2-APITOKEN",
          ["Content-Type"] = "application/json" } }
      assert.matches("NGX%-SECRET%-AT", b) -- the caller gets the real body
      local all = strings_of(events)
      for _, secret in ipairs { "H2-SECRET", "H2-APITOKEN", "H2-BODY", "NGX-SECRET-AT", "NGX-SECRET-COOKIE" } do
        assert.is_false(contains(all, secret), secret .. " reached the debug hook")
      end
      local redacted_text = false
      for _, e in ipairs(events) do
        if e.type == "info" and e.text:find("authorization", 1, true) and e.text:find("[redacted]", 1, true) then
          redacted_text = true
        end
      end
      assert.is_true(redacted_text, "expected curl's HTTP/2 header text, redacted")
      s:close()
    end)

    it("runs a batch over one multiplexed HTTP/2 connection", function()
      local s = core.session { ca_file = certs.ca }
      local reqs = {}
      for i = 1, 6 do reqs[i] = { url = url("/json?i=" .. i) } end
      local res = s:batch(reqs, { concurrency = 6 })
      local conns = 0
      for i = 1, 6 do
        assert.are.equal(200, res[i].status)
        assert.are.equal("2", res[i].info.http_version)
        conns = conns + res[i].info.num_connects
      end
      assert.are.equal(1, conns)
      s:close()
    end)
  end)
end)
