local helpers = require "helpers"

describe("knox.core", function()
  local core = require "knox.core"

  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  it("loads through require 'knox' with the version and null", function()
    local knox = require "knox"
    assert.is_string(knox.version)
    assert.matches("^%d+%.%d+%.%d+", knox.version)
    assert.are.equal(core.null, knox.null)
    assert.are.equal("userdata", type(knox.null))
  end)

  describe("knox.Error", function()
    local e = core.error {
      kind = "api", name = "DEVICE_NOT_FOUND", code = 4040300, status = 404,
      method = "GET", url = "https://us-kcs-api.samsungknox.com/kcs/v1/kme/devices/list",
      message = "The requested device does not exist.",
    }

    it("prints one line with name, code, status, request and message", function()
      assert.are.equal("knox: DEVICE_NOT_FOUND (4040300, HTTP 404) GET "
        .. "/kcs/v1/kme/devices/list: The requested device does not exist.", tostring(e))
    end)

    it("prints transport and usage errors without empty parts", function()
      local t = core.error { kind = "transport", cause = { name = "COULDNT_CONNECT" },
        method = "POST", url = "http://user:pw@127.0.0.1:1/x?a=1", message = "refused" }
      assert.are.equal("knox: COULDNT_CONNECT (transport) POST /x?a=1: refused", tostring(t))
      assert.are.equal("knox: usage: missing client_id",
        tostring(core.error { kind = "usage", message = "missing client_id" }))
      assert.are.equal("knox: auth (HTTP 401)", tostring(core.error { kind = "auth", status = 401 }))
    end)

    it("tostring survives malformed fields", function()
      local s = tostring(core.error { kind = "api", name = {}, code = {}, status = "x",
        method = false, url = 3, message = 12 })
      assert.are.equal("knox: api: 12", s)
    end)

    it("is() matches name, code (number or numeric string), kind and cause", function()
      assert.is_true(e:is "DEVICE_NOT_FOUND")
      assert.is_true(e:is(4040300))
      assert.is_true(e:is "4040300")
      assert.is_true(e:is "api")
      assert.is_false(e:is "PROFILE_NOT_FOUND")
      assert.is_false(e:is(404))
      assert.is_false(e:is "")
      local t = core.error { kind = "transport", cause = { name = "OPERATION_TIMEDOUT" } }
      assert.is_true(t:is "OPERATION_TIMEDOUT")
      local s = core.error { kind = "auth", code = "AUT_1001" }
      assert.is_true(s:is "AUT_1001")
    end)

    it("is the same class in C and Lua", function()
      local knox = require "knox"
      assert.are.equal(knox.Error, getmetatable(e))
      assert.is_true(knox.is_error(e))
      assert.is_false(knox.is_error({}))
      assert.is_false(knox.is_error("knox: x"))
      assert.is_true(knox.is_error(knox.errors.new { kind = "usage" }))
    end)

    it("tostring copes with long fields (the line is built past any buffer size)", function()
      local t = core.error { kind = "api", name = ("N"):rep(2000), code = ("9"):rep(3000), status = 404,
        method = ("G"):rep(3000), url = "https://h/" .. ("p"):rep(5000), message = ("m"):rep(5000) }
      local s = tostring(t)
      assert.are.equal(6 + 2000 + 2 + 3000 + 10 + 1 + 1 + 3000 + 1 + 5001 + 2 + 5000, #s)
      assert.matches("^knox: N+ %(9+, HTTP 404%) G+ /p+: m+$", s)
      for _ = 1, 200 do tostring(t) end
    end)

    it("is() keeps its stack balanced on strings with a NUL", function()
      local x = core.error { kind = "api", code = 4040300 }
      assert.is_false(x:is "4040300\0x")
      assert.are.equal(1, select("#", x:is "4040300\0x"))
      assert.is_true(x:is "4040300")
    end)

    it("rejects a constructor table without a kind", function()
      assert.has_error(function() core.error {} end)
    end)
  end)

  describe("knox.try", function()
    local knox = require "knox"
    it("returns true and the results on success, whatever fn returns", function()
      local ok, a, b = knox.try(function(x) return x, nil end, 1)
      assert.are.same({ true, 1 }, { ok, a })
      assert.is_nil(b)
      assert.are.same({ true, n = 1 }, table.pack(knox.try(function() end)))
      assert.are.same({ true, false, n = 2 }, table.pack(knox.try(function() return false end)))
    end)
    it("returns false, err for a knox.Error", function()
      local ok, err = knox.try(function() error(core.error { kind = "usage", message = "m" }) end)
      assert.is_false(ok)
      assert.are.equal("usage", err.kind)
    end)
    it("re-raises other errors", function()
      assert.has_error(function() knox.try(function() error("bug", 0) end) end, "bug")
    end)
  end)

  describe("clock", function()
    it("gives wall and monotonic time and sleeps", function()
      assert.is_true(math.abs(core.now() - os.time()) < 2)
      local t0 = core.monotime()
      core.sleep(0.02)
      assert.is_true(core.monotime() - t0 >= 0.019)
      assert.has_error(function() core.sleep(-1) end)
      assert.has_error(function() core.sleep(0 / 0) end)
    end)
  end)

  it("finds helpers", function()
    assert.is_function(helpers.raises)
  end)
end)
