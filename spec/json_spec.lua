local helpers = require "helpers"

describe("knox.json", function()
  local core = require "knox.core"
  local knox = require "knox"
  local json = core.json

  -- Deep equality that also tells integers from floats and -0.0 from 0.
  local function same(a, b, path)
    path = path or "value"
    if type(a) ~= type(b) then
      return false, path .. ": " .. type(a) .. " vs " .. type(b)
    end
    if type(a) == "number" then
      if math.type(a) ~= math.type(b) then
        return false, path .. ": " .. math.type(a) .. " vs " .. math.type(b)
      end
      if a ~= a and b ~= b then return true end
      if string.pack("n", a) ~= string.pack("n", b) and a ~= b then
        return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
      end
      if a == 0 and math.type(a) == "float" and 1 / a ~= 1 / b then
        return false, path .. ": sign of zero"
      end
      return true
    end
    if type(a) ~= "table" then
      return a == b, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
    end
    for k, v in pairs(a) do
      local ok, why = same(v, b[k], path .. "." .. tostring(k))
      if not ok then return false, why end
    end
    for k in pairs(b) do
      if a[k] == nil then return false, path .. "." .. tostring(k) .. " missing" end
    end
    return true
  end

  local function assert_same(a, b)
    local ok, why = same(a, b)
    assert(ok, why)
  end

  local function decode_error(s, opts)
    local err = helpers.raises(json.decode, s, opts)
    assert.are.equal("decode", err.kind)
    assert.is_number(err.offset)
    assert.matches("at offset " .. err.offset .. "$", err.message)
    return err
  end

  local function encode_error(v, opts)
    local err = helpers.raises(json.encode, v, opts)
    assert.are.equal("usage", err.kind)
    assert.is_string(err.path)
    assert.are.equal(err.path, err.message:match(" at (.*)$"))
    return err
  end

  describe("module", function()
    it("has the documented functions and markers", function()
      assert.is_function(json.decode)
      assert.is_function(json.encode)
      assert.is_function(json.array)
      assert.is_function(json.object)
      assert.is_table(json.array_mt)
      assert.is_table(json.object_mt)
      assert.are_not.equal(json.array_mt, json.object_mt)
      assert.are.equal(core.null, json.null)
      assert.are.equal(json, knox.json)
    end)
  end)

  describe("round trips", function()
    local doc = [[{"totalCount":2,"pageNum":0,"devices":[{"deviceId":"358240051111110","uploadDate":1735689600123,
      "tags":["kme","fleet-3"],"userId":null,"approved":true,"battery":0.87,"profile":{"id":"p-1","mdm":{}}},
      {"deviceId":"R58M1234","uploadDate":1735689600999,"tags":[],"userId":"u@example.com","approved":false,
      "battery":-12.5e-3,"profile":{}}],"code":4010000,"ratio":1.0,"scale":1.25}]]

    it("decodes to Lua values of the right types", function()
      local v = json.decode(doc)
      assert.are.equal(2, v.totalCount)
      assert.are.equal("integer", math.type(v.totalCount))
      local d = v.devices[1]
      assert.are.equal("358240051111110", d.deviceId)
      assert.are.equal(1735689600123, d.uploadDate)
      assert.are.equal("integer", math.type(d.uploadDate))
      assert.are.equal(core.null, d.userId)
      assert.is_true(d.approved)
      assert.is_false(v.devices[2].approved)
      assert.are.equal(0.87, d.battery)
      assert.are.equal(-0.0125, v.devices[2].battery)
      assert.are.equal(4010000, v.code)
      assert.are.equal("float", math.type(v.ratio))
      assert.are.equal(1.25, v.scale)
      assert.are.equal(2, #v.devices)
      assert.are.equal(2, #d.tags)
      assert.are.equal("fleet-3", d.tags[2])
    end)

    it("decode(encode(v)) gives back the same value", function()
      local v = json.decode(doc)
      -- the one integral float, 1.0, comes back as the integer 1 (see numbers)
      local back = json.decode(json.encode(v))
      assert.are.equal(1, back.ratio)
      back.ratio = 1.0
      assert_same(v, back)
      back = json.decode(json.encode(v, { sort_keys = true }))
      back.ratio = 1.0
      assert_same(v, back)
    end)

    it("encode(decode(text)) gives back canonical text", function()
      local text = '{"a":[1,2.5,"x",null,true,false,{},[]],"b":{"c":{"d":[[]]}},"e":""}'
      assert.are.equal(text, json.encode(json.decode(text), { sort_keys = true }))
      local spaced = ' { "b" : [ 1 , { } ] ,\r\n\t"a" : null } '
      assert.are.equal('{"a":null,"b":[1,{}]}', json.encode(json.decode(spaced), { sort_keys = true }))
    end)

    it("round-trips scalars at the top level", function()
      for _, v in ipairs { 0, -1, 42, 1.5, "", "text", true, false } do
        assert_same(v, json.decode(json.encode(v)))
      end
      assert.are.equal(core.null, json.decode(json.encode(core.null)))
    end)

    it("lets the last of repeated keys win", function()
      assert.are.equal(2, json.decode('{"a":1,"a":2}').a)
    end)

    it("ignores a UTF-8 byte order mark and counts it in offsets", function()
      assert.are.equal(1, json.decode("\239\187\191" .. "1"))
      assert.are.equal(1, json.decode('\239\187\191{"a":1}').a)
      assert.are.equal(5, decode_error("\239\187\191[1,").offset - 1)
    end)
  end)

  describe("strings and unicode", function()
    it("decodes \\u escapes, including surrogate pairs", function()
      assert.are.equal("é", json.decode('"\\u00e9"'))
      assert.are.equal("€", json.decode('"\\u20AC"'))
      assert.are.equal("\240\159\152\128", json.decode('"\\ud83d\\ude00"'))
      assert.are.equal("\244\143\191\191", json.decode('"\\udbff\\udfff"'))
      assert.are.equal("a/b\"c\\d\b\f\n\r\t", json.decode('"a\\/b\\"c\\\\d\\b\\f\\n\\r\\t"'))
    end)

    it("keeps \\u0000 inside strings and keys", function()
      local s = json.decode('"a\\u0000b\\u00e9"')
      assert.are.equal(5, #s)
      assert.are.equal("a\0bé", s)
      local t = json.decode('{"k\\u0000":"v\\u0000"}')
      assert.are.equal("v\0", t["k\0"])
    end)

    it("takes raw UTF-8 and DEL as they are", function()
      assert.are.equal("日本語 \127 😀", json.decode('"日本語 \127 😀"'))
    end)

    it("escapes what RFC 8259 requires and nothing else", function()
      assert.are.equal('"\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\127é😀"',
        json.encode('"\\/\b\f\n\r\t\1\31\127é😀'))
      for c = 0, 31 do
        local e = json.encode(string.char(c))
        assert.matches('^"\\[bfnrtu]', e)
        assert.are.equal(string.char(c), json.decode(e))
      end
    end)

    it("round-trips every byte value of ASCII and a range of code points", function()
      local parts = {}
      for c = 0, 127 do parts[#parts + 1] = string.char(c) end
      for _, cp in ipairs { 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x10FFFF } do
        parts[#parts + 1] = utf8.char(cp)
      end
      local s = table.concat(parts)
      assert.are.equal(s, json.decode(json.encode(s)))
      assert.are.equal(s, json.decode(json.encode({ [s] = s }))[s])
    end)

    it("round-trips a 2 MB string", function()
      local s = ("Knox \"device\" \\ é\n"):rep(110000)
      assert.is_true(#s > 2e6)
      assert.are.equal(s, json.decode(json.encode(s)))
    end)
  end)

  describe("null", function()
    it("decodes to knox.null, keeping array positions and object keys", function()
      local a = json.decode("[1,null,3,null]")
      assert.are.equal(4, #a)
      assert.are.equal(knox.null, a[2])
      assert.are.equal(knox.null, a[4])
      local o = json.decode('{"a":null}')
      assert.are.equal(knox.null, o.a)
      assert.are.equal(knox.null, json.decode("null"))
    end)

    it("encodes knox.null (and a top-level nil) as null", function()
      assert.are.equal("null", json.encode(knox.null))
      assert.are.equal("null", json.encode(nil))
      assert.are.equal('[null,1]', json.encode({ knox.null, 1 }))
      assert.are.equal('{"a":null}', json.encode({ a = knox.null }))
    end)
  end)

  describe("shapes", function()
    it("marks decoded arrays with array_mt and leaves objects plain", function()
      local v = json.decode('{"a":[],"b":{},"c":[1]}')
      assert.are.equal(json.array_mt, getmetatable(v.a))
      assert.are.equal(json.array_mt, getmetatable(v.c))
      assert.is_nil(getmetatable(v.b))
      assert.is_nil(getmetatable(v))
    end)

    it("round-trips nested empties", function()
      local text = '{"a":[],"b":{},"c":[[],{},[[]],[{}]],"d":{"e":{"f":[]}}}'
      assert.are.equal(text, json.encode(json.decode(text), { sort_keys = true }))
      assert.are.equal("[]", json.encode(json.decode("[]")))
      assert.are.equal("{}", json.encode(json.decode("{}")))
      assert.are.equal("[[[[]]]]", json.encode(json.decode("[[[[]]]]")))
    end)

    it("encodes an unmarked empty table as {} and sequences as arrays", function()
      assert.are.equal("{}", json.encode({}))
      assert.are.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
      assert.are.equal('{"x":1}', json.encode({ x = 1 }))
    end)

    it("array() and object() force the shape and return the table", function()
      local t = {}
      assert.are.equal(t, json.array(t))
      assert.are.equal(json.array_mt, getmetatable(t))
      assert.are.equal("[]", json.encode(t))
      assert.are.equal("[]", json.encode(json.array()))
      assert.are.equal("{}", json.encode(json.object()))
      assert.are.equal('{"a":[]}', json.encode({ a = json.array {} }))
      -- a marker can be swapped for the other one
      assert.are.equal("{}", json.encode(json.object(t)))
      assert.are.equal('["x"]', json.encode(json.array { "x" }))
      assert.are.equal('{"k":1}', json.encode(json.object { k = 1 }))
    end)

    it("refuses content that contradicts the marker", function()
      local e = encode_error(json.array { 1, x = 2 })
      assert.matches("array has a string key", e.message)
      e = encode_error(json.object { 1 })
      assert.matches("object has an integer key", e.message)
    end)

    it("array() and object() refuse non-tables and foreign metatables", function()
      assert.has_error(function() json.array(1) end)
      assert.has_error(function() json.object("x") end)
      local ok, msg = pcall(json.array, setmetatable({}, {}))
      assert.is_false(ok)
      assert.matches("bad argument #1", msg)
      assert.matches("already has a metatable", msg)
    end)

    it("ignores other metatables when encoding (raw access)", function()
      local t = setmetatable({ a = 1 }, { __index = function() return "nope" end })
      assert.are.equal('{"a":1}', json.encode(t))
    end)
  end)

  describe("numbers", function()
    it("decodes integer literals exactly", function()
      local cases = {
        ["9007199254740993"] = 9007199254740993,         -- 2^53 + 1
        ["-9007199254740993"] = -9007199254740993,
        ["9223372036854775807"] = math.maxinteger,
        ["-9223372036854775808"] = math.mininteger,
        ["1735689600123"] = 1735689600123,               -- epoch ms
        ["4010000"] = 4010000,                           -- a Knox code
        ["0"] = 0,
        ["-1"] = -1,
      }
      for text, want in pairs(cases) do
        local got = json.decode(text)
        assert.are.equal("integer", math.type(got), text)
        assert.are.equal(want, got, text)
        assert.are.equal(text, json.encode(got))
      end
      assert.are.equal(9007199254740993, json.decode("[9007199254740993]")[1])
      assert.are.equal(math.maxinteger, json.decode('{"n":9223372036854775807}').n)
    end)

    it("encodes integers as integers", function()
      assert.are.equal("9223372036854775807", json.encode(math.maxinteger))
      assert.are.equal("-9223372036854775808", json.encode(math.mininteger))
      assert.are.equal("[9007199254740993]", json.encode({ 9007199254740993 }))
      assert.are.equal("1735689600123", json.encode(1735689600123))
    end)

    it("reads integer literals beyond int64 as floats, like Lua's lexer", function()
      local v = json.decode("9223372036854775808")
      assert.are.equal("float", math.type(v))
      assert.are.equal(2.0 ^ 63, v)
      v = json.decode("-9223372036854775809")
      assert.are.equal("float", math.type(v))
      assert.are.equal(-(2.0 ^ 63), v)
      assert.are.equal(1.2345678901234568e29, json.decode("123456789012345678901234567890"))
    end)

    it("reads fractions and exponents as floats", function()
      for text, want in pairs { ["1.0"] = 1.0, ["1e2"] = 100.0, ["1E+2"] = 100.0, ["-2.5e-3"] = -0.0025,
        ["0.1"] = 0.1, ["1e-400"] = 0.0 } do
        local got = json.decode(text)
        assert.are.equal("float", math.type(got), text)
        assert.are.equal(want, got, text)
      end
      local z = json.decode("-0")
      assert.are.equal("float", math.type(z))
      assert.are.equal(-math.huge, 1 / z)
      assert.are.equal(-math.huge, 1 / json.decode("-0.0"))
    end)

    it("round-trips floats exactly", function()
      for _, x in ipairs { 0.1, 1e300, 5e-324, -0.0, 2.2250738585072014e-308, 1.7976931348623157e308,
        math.pi, 1 / 3, 0.1 + 0.2, 1e15, 1e16 + 2, 123456.789, 1e-5, -1e21, 2.0 ^ 63, 2.0 ^ 53 } do
        local back = json.decode(json.encode(x))
        assert.are.equal(x, back, tostring(x))
        if x == 0 then assert.are.equal(1 / x, 1 / back) end
      end
    end)

    it("writes the shortest text that reads back", function()
      assert.are.equal("0.1", json.encode(0.1))
      assert.are.equal("1e+300", json.encode(1e300))
      assert.are.equal("5e-324", json.encode(5e-324))
      assert.are.equal("-0", json.encode(-0.0))
      assert.are.equal("0.30000000000000004", json.encode(0.1 + 0.2))
      assert.are.equal("0.000123456789012345", json.encode(0.000123456789012345))
      assert.are.equal("-12.5", json.encode(-12.5))
    end)

    it("writes integral floats without a fraction (documented choice)", function()
      assert.are.equal("30", json.encode(30.0))
      assert.are.equal("[1,2]", json.encode({ 1.0, 2.0 }))
      assert.are.equal("1e+17", json.encode(1e17))
    end)

    it("round-trips random doubles bit for bit", function()
      math.randomseed(20240601)
      local count = helpers.scaled(20000, 500)
      for _ = 1, count do
        local x = string.unpack("<d", string.pack("<i8", math.random(math.mininteger, math.maxinteger)))
        if x == x and x ~= math.huge and x ~= -math.huge then
          local back = json.decode(json.encode(x))
          assert(string.pack("<d", back) == string.pack("<d", x), ("%a did not round-trip"):format(x))
        end
      end
      for _ = 1, count do
        local x = math.random(-10 ^ 9, 10 ^ 9) / 10 ^ math.random(0, 12)
        local back = json.decode(json.encode(x))
        assert(back == x, ("%.17g did not round-trip"):format(x))
      end
    end)
  end)

  describe("large documents", function()
    it("round-trips a document over 1 MB", function()
      local devices = {}
      for i = 1, 10000 do
        devices[i] = { deviceId = ("35%013d"):format(i), uploadDate = 1735689600000 + i, tags = { "a", "b" },
          userId = knox.null, ok = i % 2 == 0, level = i / 7 }
      end
      local text = json.encode({ devices = devices }, { sort_keys = true })
      assert.is_true(#text > 1e6, #text)
      local back = json.decode(text)
      assert.are.equal(10000, #back.devices)
      for i = 1, 10000, 599 do
        assert.are.equal(devices[i].deviceId, back.devices[i].deviceId)
        assert.are.equal(devices[i].uploadDate, back.devices[i].uploadDate)
        assert.are.equal(devices[i].level, back.devices[i].level)
      end
      assert_same(json.decode(text), back)
      assert(text == json.encode(back, { sort_keys = true }), "re-encoded text differs")
    end)

    it("handles nesting up to the limit", function()
      local deep = ("["):rep(512) .. ("]"):rep(512)
      assert.are.equal(deep, json.encode(json.decode(deep)))
      local deeper = ("["):rep(1000) .. ("]"):rep(1000)
      assert.are.equal(deeper, json.encode(json.decode(deeper, { max_depth = 1000 }), { max_depth = 1000 }))
    end)
  end)

  describe("bad input", function()
    local cases = {
      { "", 0, "empty input" },
      { "   \n", 4, "empty input" },
      { "[1, 2", 5, "unexpected end of input" },
      { '{"a":', 5, "unexpected end of input" },
      { '{"a"', 4, "unexpected end of input" },
      { '"abc', 4, "unexpected end of input" },
      { "[", 1, "unexpected end of input" },
      { "nul", 3, "unexpected end of input" },
      { "[1]x", 3, "after the JSON value" },
      { "[1] [2]", 4, "after the JSON value" },
      { "1 2", 2, "after the JSON value" },
      { "[1]]", 3, "after the JSON value" },
      { "\255", 0, "invalid UTF%-8" },
      { '"a\195\40"', 2, "invalid UTF%-8" },
      { '"\237\160\128"', 1, "invalid UTF%-8" },      -- a surrogate encoded in UTF-8
      { '"\192\175"', 1, "invalid UTF%-8" },          -- overlong
      { '"\244\144\128\128"', 1, "invalid UTF%-8" },  -- above U+10FFFF
      { '["ok", "\226\130"]', 8, "invalid UTF%-8" },  -- cut short
      { '{"\255":1}', 2, "invalid UTF%-8" },
      { '"\\ud800"', 1, "lone surrogate" },
      { '"\\udc00"', 1, "lone surrogate" },
      { '"x\\ud83dy"', 2, "lone surrogate" },
      { '"\\ud83d\\u0041"', 1, "lone surrogate" },
      { '"\\ude00\\ud83d"', 1, "lone surrogate" },
      { '"\\x"', 1, "invalid escape" },
      { '"\\u12g4"', 1, "invalid escape" },
      { '"a\nb"', 2, "control character" },
      { '"\0"', 1, "control character" },
      { "[1,\v2]", 3, "unexpected character" },
      { "\0", 0, "unexpected character" },
      { "[1]\0", 3, "after the JSON value" },
      { "01", 1, "invalid number" },
      { "-01", 2, "invalid number" },
      { "[1.]", 3, "invalid number" },
      { "[-a]", 2, "invalid number" },
      { "[1e+]", 4, "invalid number" },
      { "1.", 2, "unexpected end of input" },
      { ".5", 0, "unexpected character" },
      { "+1", 0, "unexpected character" },
      { "NaN", 0, "unexpected character" },
      { "-Infinity", 1, "invalid number" },
      { "1e309", 0, "number out of range" },
      { "[0, -1e400]", 4, "number out of range" },
      { '{"a": 1e999}', 6, "number out of range" },
      { "[1e999, x]", 1, "number out of range" },
      { "nulx", 0, "invalid literal" },
      { "True", 0, "unexpected character" },
      { "[1 2]", 3, "expected ',' or ']'" },
      { "[1}", 2, "expected ',' or ']'" },
      { '{"a" 1}', 5, "expected ':'" },
      { "{1:2}", 1, "expected a string key" },
      { '{"a":1,}', 7, "expected a string key" },
      { '{"a":1]', 6, "expected ',' or '}'" },
      { "[1,]", 3, "unexpected character" },
      { "[,1]", 1, "unexpected character" },
    }
    for _, c in ipairs(cases) do
      it(("%q -> %s at %d"):format(c[1], c[3], c[2]), function()
        local err = decode_error(c[1])
        assert.are.equal(c[2], err.offset)
        assert.matches(c[3], err.message)
        assert.matches("^knox: decode", tostring(err))
      end)
    end

    it("refuses nesting deeper than the limit", function()
      local err = decode_error(("["):rep(513) .. ("]"):rep(513))
      assert.are.equal(512, err.offset)
      assert.matches("nesting deeper than 512", err.message)
      err = decode_error(('{"a":'):rep(513) .. "1" .. ("}"):rep(513))
      assert.are.equal(512 * 5, err.offset)
      err = decode_error("[[[1]]]", { max_depth = 2 })
      assert.are.equal(2, err.offset)
      assert.are.same({ { { 1 } } }, json.decode("[[[1]]]", { max_depth = 3 }))
      err = decode_error(("["):rep(1001) .. ("]"):rep(1001), { max_depth = 1000 })
      assert.are.equal(1000, err.offset)
      -- truncated and deep: the depth is found first
      err = decode_error(("["):rep(100000))
      assert.are.equal(512, err.offset)
    end)

    it("never returns part of a value: every truncation of a document fails cleanly", function()
      local text = json.encode({ a = { 1, 2.5, "x\\y\"", knox.null, true, false, {}, json.array() },
        ["é😀"] = { b = { c = "\\u00e9" } }, n = -1.5e-7 }, { sort_keys = true })
      json.decode(text)
      for n = 0, #text - 1 do
        local ok, err = pcall(json.decode, text:sub(1, n))
        assert.is_false(ok, text:sub(1, n))
        assert.is_true(core.is_error(err))
        assert.are.equal("decode", err.kind)
        assert.is_true(err.offset <= n)
      end
    end)

    it("survives random corruption with a value or a decode error", function()
      math.randomseed(7)
      local text = '{"devices":[{"id":"a\\u00e9\\ud83d\\ude00","n":-12.5e3,"ok":true,"t":[1,null,{}]}],"x":"é"}'
      for _ = 1, 5000 do
        local bytes = { text:byte(1, -1) }
        for _ = 1, math.random(1, 3) do
          bytes[math.random(#bytes)] = math.random(0, 255)
        end
        local s = string.char(table.unpack(bytes))
        local ok, err = pcall(json.decode, s)
        if not ok then
          assert(core.is_error(err) and err.kind == "decode", tostring(err))
          assert(err.offset >= 0 and err.offset <= #s)
        end
      end
    end)

    it("raises bad argument for a non-string or bad options", function()
      for _, v in ipairs { 12, true, {}, print } do
        local ok, msg = pcall(json.decode, v)
        assert.is_false(ok)
        assert.is_string(msg)
        assert.matches("bad argument #1", msg)
      end
      assert.matches("bad argument #1", select(2, pcall(json.decode)))
      for _, o in ipairs { { max_depth = 0 }, { max_depth = 1001 }, { max_depth = 1.5 }, { foo = 1 },
        { sort_keys = true }, "x" } do
        local ok, msg = pcall(json.decode, "1", o)
        assert.is_false(ok)
        assert.matches("bad argument #2", msg)
      end
    end)

    it("works through knox.try", function()
      local ok, err = knox.try(json.decode, "[1,")
      assert.is_false(ok)
      assert.are.equal(3, err.offset)
      assert.is_true(err:is "decode")
    end)
  end)

  describe("encode refusals", function()
    it("refuses NaN and infinities, saying where", function()
      local e = encode_error(0 / 0)
      assert.matches("NaN", e.message)
      assert.are.equal("value", e.path)
      e = encode_error({ devices = { { level = 1 / 0 } } })
      assert.matches("infinity", e.message)
      assert.are.equal("value.devices[1].level", e.path)
      e = encode_error({ x = { -1 / 0 } })
      assert.are.equal("value.x[1]", e.path)
    end)

    it("detects cycles instead of recursing", function()
      local t = {}
      t.self = t
      local e = encode_error(t)
      assert.matches("cycle", e.message)
      assert.are.equal("value.self", e.path)
      local a = { b = {} }
      a.b.c = { a }
      e = encode_error(a)
      assert.matches("cycle", e.message)
      assert.are.equal("value.b.c[1]", e.path)
      local shared = { 1 }
      assert.are.equal("[[1],[1]]", json.encode({ shared, shared }))
    end)

    it("refuses sparse arrays", function()
      for _, t in ipairs { { 1, nil, 3 }, { [2] = 1 }, { [0] = 1 }, { [-1] = 1, [1] = 2 } } do
        local e = encode_error({ list = t })
        assert.matches("sparse array", e.message)
        assert.are.equal("value.list", e.path)
      end
    end)

    it("refuses mixed and unsupported keys", function()
      local e = encode_error({ 1, 2, x = 3 })
      assert.matches("mixes integer and string keys", e.message)
      e = encode_error({ x = 3, [1] = 2 })
      assert.matches("mixes integer and string keys", e.message)
      e = encode_error({ a = { [1.5] = 1 } })
      assert.matches("non%-integer number key", e.message)
      assert.are.equal("value.a", e.path)
      e = encode_error({ [true] = 1 })
      assert.matches("boolean key", e.message)
      e = encode_error({ [{}] = 1 })
      assert.matches("table key", e.message)
      e = encode_error({ x = 1, [false] = 1 }, { sort_keys = true })
      assert.matches("boolean key", e.message)
    end)

    it("refuses functions, userdata and threads", function()
      local e = encode_error({ f = print })
      assert.matches("function", e.message)
      assert.are.equal("value.f", e.path)
      e = encode_error({ io.stdout })
      assert.matches("userdata", e.message)
      e = encode_error({ ["not an identifier"] = { coroutine.create(print) } })
      assert.matches("thread", e.message)
      assert.are.equal('value["not an identifier"][1]', e.path)
    end)

    it("refuses nesting over the limit, cutting the path short", function()
      local root = {}
      local t = root
      for _ = 1, 600 do
        t[1] = {}
        t = t[1]
      end
      local e = encode_error(root)
      assert.matches("deeper than 512", e.message)
      assert.is_true(#e.path < 200)
      assert.matches("more", e.path)
      e = encode_error({ a = { b = { c = {} } } }, { max_depth = 3 })
      assert.are.equal("value.a.b.c", e.path)
      assert.are.equal('{"a":{"b":{}}}', json.encode({ a = { b = {} } }, { max_depth = 3 }))
    end)

    it("refuses invalid UTF-8 in strings and keys", function()
      local e = encode_error({ name = "ok\255" })
      assert.matches("string is not valid UTF%-8", e.message)
      assert.are.equal("value.name", e.path)
      e = encode_error({ x = { ["\192\128"] = 1 } })
      assert.matches("key is not valid UTF%-8", e.message)
      assert.are.equal("value.x", e.path)
      encode_error("\237\160\128")                 -- an encoded surrogate
      encode_error("\244\144\128\128")             -- above U+10FFFF
      encode_error("abc\226\130")                  -- cut short
    end)

    it("raises bad argument for a missing value or bad options", function()
      assert.matches("bad argument #1", select(2, pcall(json.encode)))
      for _, o in ipairs { { sort_keys = 1 }, { max_depth = 0 }, { indent = 2 }, 7 } do
        local ok, msg = pcall(json.encode, {}, o)
        assert.is_false(ok)
        assert.matches("bad argument #2", msg)
      end
    end)
  end)

  describe("key order", function()
    it("sorts keys by bytes with sort_keys, at every level", function()
      local v = { b = 1, a = { z = 1, y = { 2, { d = 1, c = 2 } } }, A = 3, ["é"] = 4, [""] = 5, aa = 6 }
      assert.are.equal('{"":5,"A":3,"a":{"y":[2,{"c":2,"d":1}],"z":1},"aa":6,"b":1,"é":4}',
        json.encode(v, { sort_keys = true }))
    end)

    it("sorts objects with many keys", function()
      local v, keys = {}, {}
      for i = 1, 100 do
        v["k" .. i] = i
        keys[i] = "k" .. i
      end
      table.sort(keys)
      local text = json.encode(v, { sort_keys = true })
      local pos = 0
      for _, k in ipairs(keys) do
        local at = text:find('"' .. k .. '":', 1, true)
        assert.is_true(at > pos)
        pos = at
      end
      assert_same(v, json.decode(text))
    end)

    it("without sort_keys still writes every key once", function()
      local v = { b = 1, a = 2, c = { d = 3 } }
      assert_same(v, json.decode(json.encode(v)))
    end)
  end)

  describe("decimal point", function()
    it("stays '.' whatever LC_NUMERIC says", function()
      local old = os.setlocale(nil, "numeric")
      local set
      for _, name in ipairs { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8" } do
        set = set or os.setlocale(name, "numeric")
      end
      if not set then
        pending("no locale with a decimal comma is installed")
        return
      end
      local ok, err = pcall(function()
        assert.are.equal("0.5", json.encode(0.5))
        assert.are.equal("0.30000000000000004", json.encode(0.1 + 0.2))
        assert.are.equal(0.30000000000000004, json.decode("0.30000000000000004"))
        assert.are.equal(2.5, json.decode("[2.5]")[1])
        assert.are.equal(0, decode_error("[1.5e999, x]").offset - 1)
      end)
      os.setlocale(old, "numeric")
      assert(ok, err)
    end)
  end)

  describe("the one-pass decoder and the cJSON path", function()
    -- json.decode reads a text in one pass and hands anything it does not
    -- take to the cJSON path; a float literal of 64 bytes or more is one
    -- such thing, so wrapping a text with one beside it decodes the text
    -- on the cJSON path: both must give the same values, subtypes and
    -- array markers.
    local LONG = "1." .. ("0"):rep(70) .. "1"
    local function slow(text) return json.decode("[" .. text .. "," .. LONG .. "]")[1] end
    local function ws(r) return ({ "", " ", "\n", "\t", "\r\n  " })[r(5)] end
    local pieces = { "a", "é", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\ud83d\\ude00", "\\u0000", "x y", "日本",
      "\\t" }
    local function gen(r, depth)
      local k = r(depth > 3 and 6 or 8)
      if k == 1 then return tostring(r(2000000) - 1000000) end
      if k == 2 then return ({ "-0", "0", "-0.0", "1e3", "2.5E-3", "9223372036854775807", "-9223372036854775808",
        "9223372036854775808", "123456789012345678901234567890", "0.1", "-1.5e+300" })[r(11)] end
      if k == 3 then
        local t = {}
        for i = 1, r(4) - 1 do t[i] = pieces[r(#pieces)] end
        return '"' .. table.concat(t) .. '"'
      end
      if k == 4 then return ({ "true", "false", "null" })[r(3)] end
      if k == 5 or k == 6 then return '""' end
      local parts = {}
      for i = 1, r(5) - 1 do
        local v = gen(r, depth + 1)
        parts[i] = k == 7 and v or ('"' .. pieces[r(#pieces)] .. i % 3 .. '"' .. ws(r) .. ":" .. ws(r) .. v)
      end
      local open, close = "[", "]"
      if k == 8 then open, close = "{", "}" end
      return open .. ws(r) .. table.concat(parts, ws(r) .. "," .. ws(r)) .. ws(r) .. close
    end
    local function marked(a, b, path)
      if type(a) ~= "table" then return end
      assert.are.equal(getmetatable(a), getmetatable(b), path)
      for k, v in pairs(a) do marked(v, b[k], path .. "." .. tostring(k)) end
    end

    it("give the same values for random texts", function()
      math.randomseed(17)
      local r = math.random
      for _ = 1, helpers.scaled and helpers.scaled(3000) or 3000 do
        local text = ws(r) .. gen(r, 0) .. ws(r)
        local a, b = json.decode(text), slow(text)
        assert_same(b, a)
        marked(a, b, "value")
      end
    end)

    it("give the same errors and offsets", function()
      for _, text in ipairs { "", " ", "[1,]", '{"a":1,}', "[01]", "[1.]", '"\1"', "[1 2]", '{"a" 1}', "tru",
        "[\"\\x\"]", "\"\\ud800\"", "[1e999]", "[\f1]", "\xEF\xBB\xBF", "[" .. ("["):rep(600) .. ("]"):rep(601),
        '{"a":[1,2,{"b":nul}]}', "[1]x", "\"\xC3\"" } do
        local ok, err = pcall(json.decode, text)
        assert.is_false(ok, text)
        assert.are.equal("decode", err.kind, text)
        assert.is_number(err.offset, text)
      end
      local ok, err = pcall(json.decode, "[1,2,]")
      assert.is_false(ok)
      assert.are.equal(5, err.offset)
    end)
  end)
end)
