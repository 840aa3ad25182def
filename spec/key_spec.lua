-- Specs for csrc/key.c: keys.json / PEM loading, the RS512 JWTs and the KME
-- field encryption. Every signature and ciphertext is checked by tools that
-- share no code with knox: the openssl command and luaossl. Key fixtures
-- are made at test time with the openssl command; none are committed.
local helpers = require "helpers"
local cjson = require "cjson"
local opkey = require "openssl.pkey"
local odigest = require "openssl.digest"

---------------------------------------------------------------------------
-- Independent helpers (pure Lua, or the openssl command)

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = {}
    for k = 3, 0, -1 do
      local v = n // (64 ^ k) % 64
      q[#q + 1] = B64:sub(v + 1, v + 1)
    end
    if not b then q[3], q[4] = "=", "=" elseif not c then q[4] = "=" end
    out[#out + 1] = table.concat(q)
  end
  return table.concat(out)
end

local B64VAL = {}
for i = 1, 64 do B64VAL[B64:byte(i)] = i - 1 end

local function b64decode(s)
  s = s:gsub("%s", ""):gsub("=+$", "")
  local out = {}
  for i = 1, #s, 4 do
    local n, k = 0, 0
    for j = i, math.min(i + 3, #s) do
      local v = B64VAL[s:byte(j)]
      -- plain error, not busted's assert: this runs per character
      if not v then error("not base64: " .. s:sub(j, j)) end
      n, k = n * 64 + v, k + 1
    end
    if k < 2 then error("dangling base64 character") end
    n = n << (6 * (4 - k))
    out[#out + 1] = string.char(n >> 16 & 255, n >> 8 & 255, n & 255):sub(1, k - 1)
  end
  return table.concat(out)
end

local function b64url_decode(s)
  if s:find("[^%w%-_]") then error("not base64url without padding: " .. s) end
  return b64decode((s:gsub("%-", "+"):gsub("_", "/")))
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  assert(ok, "command failed: " .. cmd .. "\n" .. out)
  return out
end

local servers = require "support.http_servers"
local writefile = servers.write_file
local function readfile(path) return (assert(servers.read_file(path), "cannot read " .. path)) end

local function pem(der, label)
  local b = b64encode(der):gsub(("."):rep(64), "%0\n"):gsub("\n$", "")
  return ("-----BEGIN %s-----\n%s\n-----END %s-----\n"):format(label, b, label)
end

local function keys_json(public_b64, private_b64, extra)
  return ('{"Identifier":"0123456789abcdef","Public":%s,"Private":%s%s}'):format(
    cjson.encode(public_b64), cjson.encode(private_b64), extra or "")
end

--- Asserts a knox.Error of kind "key" whose message names `name`, mentions
-- `problem` (a plain substring) and carries no key material.
local function assert_key_error(err, name, problem, secrets)
  assert.are.equal("key", err.kind)
  assert.is_string(err.message)
  assert.is_truthy(err.message:find(name, 1, true), "message does not name " .. name .. ": " .. err.message)
  assert.is_truthy(err.message:find(problem, 1, true), "message lacks '" .. problem .. "': " .. err.message)
  assert.is_falsy(err.message:find("MII", 1, true), "key material in: " .. err.message)
  for _, s in ipairs(secrets or {}) do
    for i = 1, #s - 15, 8 do
      assert.is_falsy(err.message:find(s:sub(i, i + 15), 1, true), "key material in: " .. err.message)
    end
  end
  assert.is_falsy(tostring(err):find("MII", 1, true))
end

---------------------------------------------------------------------------

describe("knox.keys and knox.Key", function()
  local knox = require "knox"
  local dir
  local fx = {}   -- fixture DER strings and paths

  local function path(name) return dir .. "/" .. name end

  lazy_setup(function()
    dir = sh("mktemp -d"):gsub("%s+$", "")
    local function ssl(args) sh("cd " .. dir .. " && openssl " .. args) end
    ssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem")
    ssl("rsa -in rsa.pem -traditional -out rsa1.pem")
    ssl("rsa -in rsa.pem -traditional -outform DER -out pkcs1.der")
    ssl("pkcs8 -topk8 -nocrypt -in rsa.pem -outform DER -out pkcs8.der")
    ssl("rsa -in rsa.pem -pubout -outform DER -out spki.der")
    ssl("rsa -in rsa.pem -pubout -out pub.pem")
    ssl("rsa -in rsa.pem -RSAPublicKey_out -outform DER -out rsapub.der")
    ssl("pkcs8 -topk8 -in rsa.pem -passout pass:not-a-secret -out enc.pem")
    ssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.pem")
    ssl("rsa -in other.pem -pubout -outform DER -out other_spki.der")
    ssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out small.pem")
    ssl("pkcs8 -topk8 -nocrypt -in small.pem -outform DER -out small8.der")
    ssl("rsa -in small.pem -pubout -outform DER -out small_spki.der")
    ssl("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem")
    ssl("pkcs8 -topk8 -nocrypt -in ec.pem -outform DER -out ec8.der")
    ssl("pkey -in ec.pem -pubout -outform DER -out ec_spki.der")
    ssl("genpkey -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048 -out pss.pem")
    ssl("pkcs8 -topk8 -nocrypt -in pss.pem -outform DER -out pss8.der")
    for _, n in ipairs { "pkcs1", "pkcs8", "spki", "rsapub", "other_spki", "small8", "small_spki",
                         "ec8", "ec_spki", "pss8" } do
      fx[n] = readfile(path(n .. ".der"))
    end
    fx.json = keys_json(b64encode(fx.spki), b64encode(fx.pkcs8))
  end)

  lazy_teardown(function()
    if dir then sh("rm -rf " .. dir) end
  end)

  --- Verifies a compact JWS with the openssl command and the public key
  -- in PEM file pubfile; returns header, claims (decoded) and the payload text.
  local function verify_openssl(token, pubfile)
    local h, p, s = token:match("^([%w%-_]+)%.([%w%-_]+)%.([%w%-_]+)$")
    assert.is_string(h, "not a compact JWS: " .. token)
    writefile(path("input"), h .. "." .. p)
    writefile(path("sig"), b64url_decode(s))
    local out = sh("openssl dgst -sha512 -verify " .. pubfile .. " -signature " .. path("sig")
      .. " " .. path("input"))
    assert.matches("Verified OK", out)
    local payload = b64url_decode(p)
    return cjson.decode(b64url_decode(h)), cjson.decode(payload), payload, b64url_decode(h)
  end

  --- Verifies with luaossl; returns true/false.
  local function verify_luaossl(token, pub)
    local h, p, s = token:match("^([%w%-_]+)%.([%w%-_]+)%.([%w%-_]+)$")
    local d = odigest.new("sha512")
    d:update(h .. "." .. p)
    return pub:verify(b64url_decode(s), d)
  end

  --- The PEM file of a knox.Key's public key, made from public_key().
  local function pubfile_of(key, name)
    return writefile(path(name or "k_pub.pem"), pem(b64decode(key:public_key()), "PUBLIC KEY"))
  end

  describe("loading", function()
    it("reads keys.json with PKCS#8 or PKCS#1 Private and SPKI or PKCS#1 Public", function()
      local spki_b64 = b64encode(fx.spki)
      for _, priv in ipairs { fx.pkcs8, fx.pkcs1 } do
        for _, pub in ipairs { fx.spki, fx.rsapub } do
          local k = knox.keys.from_json(keys_json(b64encode(pub), b64encode(priv)))
          -- public_key() is always SPKI DER, whatever the file carried
          assert.are.equal(spki_b64, k:public_key())
          assert.are.equal(2048, k:bits())
        end
      end
    end)

    it("tolerates wrapped base64, a BOM, whitespace and extra fields", function()
      local function wrap(s) return (s:gsub(("."):rep(64), "%0\n")) end
      local text = "\xef\xbb\xbf \n" .. keys_json(wrap(b64encode(fx.spki)), " " .. wrap(b64encode(fx.pkcs8)) .. "\r\n",
        ',"Extra":{"nested":[1,2,null]}') .. "\n\n"
      local k = knox.keys.from_json(text)
      assert.are.equal(b64encode(fx.spki), k:public_key())
      -- lua-cjson writes '/' as '\/' (as PHP does); plain '/' reads the same
      local escaped = keys_json(b64encode(fx.spki), b64encode(fx.pkcs8))
      assert.is_truthy(escaped:find("\\/"))
      local plain = ('{"Public":"%s","Private":"%s"}'):format(b64encode(fx.spki), b64encode(fx.pkcs8))
      assert.is_falsy(plain:find("\\"))
      assert.are.equal(k:fingerprint(), knox.keys.from_json(escaped):fingerprint())
      assert.are.equal(k:fingerprint(), knox.keys.from_json(plain):fingerprint())
    end)

    it("loads keys.json files and PEM private key files (PKCS#8 and PKCS#1)", function()
      local spki_b64 = b64encode(fx.spki)
      local file = writefile(path("keys.json"), fx.json)
      assert.are.equal(spki_b64, knox.keys.load(file):public_key())
      assert.are.equal(spki_b64, knox.keys.load(path("rsa.pem")):public_key())
      assert.are.equal(spki_b64, knox.keys.load(path("rsa1.pem")):public_key())
    end)

    it("public_key() is what openssl derives from the private key", function()
      local k = knox.keys.generate()
      local der = b64decode(k:public_key())
      writefile(path("gen_priv.der"), b64decode(cjson.decode(k:to_json()).Private))
      sh("openssl pkey -inform DER -in " .. path("gen_priv.der") .. " -pubout -outform DER -out "
        .. path("gen_spki.der"))
      assert.are.equal(readfile(path("gen_spki.der")), der)
      assert.are.equal(392, #k:public_key())
    end)

    it("fingerprint() is the start of the SHA-256 of the SPKI DER", function()
      local k = knox.keys.from_json(fx.json)
      local want = hex(odigest.new("sha256"):final(fx.spki)):sub(1, 16)
      assert.are.equal(want, k:fingerprint())
      assert.are_not.equal(k:fingerprint(), knox.keys.generate():fingerprint())
    end)

    it("tostring shows type, bits and fingerprint, never key material", function()
      local k = knox.keys.from_json(fx.json)
      local s = tostring(k)
      assert.are.equal("knox.Key: RSA-2048 " .. k:fingerprint(), s)
      assert.is_falsy(s:find(k:public_key():sub(40, 60), 1, true))
      assert.are.equal("knox.Key", getmetatable(k).__name)
    end)
  end)

  describe("generate and to_json", function()
    it("makes fresh pairs of the requested size", function()
      local a, b = knox.keys.generate(), knox.keys.generate { bits = 3072 }
      assert.are.equal(2048, a:bits())
      assert.are.equal(3072, b:bits())
      assert.are_not.equal(a:public_key(), knox.keys.generate { bits = 2048 }:public_key())
    end)

    it("rejects bad sizes as bad arguments", function()
      for _, bad in ipairs { 1024, 2047, 16384, 2048.5, "2048", true } do
        local ok, err = pcall(knox.keys.generate, { bits = bad })
        assert.is_false(ok)
        assert.is_string(err)
        assert.matches("bad argument", err)
      end
      assert.has_error(function() knox.keys.generate("2048") end)
    end)

    it("to_json gives keys.json with SPKI Public and PKCS#8 Private that openssl reads", function()
      local k = knox.keys.generate()
      local t = cjson.decode(k:to_json())
      assert.are.equal(k:public_key(), t.Public)
      writefile(path("tj.der"), b64decode(t.Private))
      -- `openssl pkcs8 -nocrypt -inform DER` only reads PKCS#8 PrivateKeyInfo
      local pub = sh("openssl pkcs8 -nocrypt -inform DER -in " .. path("tj.der")
        .. " | openssl pkey -pubout -outform DER | base64 -w0")
      assert.are.equal(k:public_key(), pub)
      local again = knox.keys.from_json(k:to_json())
      assert.are.equal(k:fingerprint(), again:fingerprint())
    end)
  end)

  describe("bad input", function()
    local secrets

    setup(function()
      secrets = { b64encode(fx.pkcs8), b64encode(fx.pkcs1), b64encode(fx.spki) }
    end)

    local function from_json_fails(text, problem)
      local err = helpers.raises(knox.keys.from_json, text)
      assert_key_error(err, "keys.json text", problem, secrets)
      assert.is_nil(err.path)
      return err
    end

    local function load_fails(contents, problem, name)
      local file = writefile(path(name or "bad.json"), contents)
      local err = helpers.raises(knox.keys.load, file)
      assert_key_error(err, file, problem, secrets)
      assert.are.equal(file, err.path)
      return err
    end

    it("a missing file, a directory", function()
      local missing = path("no/such/keys.json")
      local err = helpers.raises(knox.keys.load, missing)
      assert_key_error(err, missing, "No such file or directory")
      assert_key_error(helpers.raises(knox.keys.load, dir), dir, "not a regular file")
    end)

    it("an unreadable file", function()
      local file = writefile(path("locked.json"), fx.json)
      sh("chmod 000 " .. file)
      local readable = io.open(file, "rb")
      if not readable then
        assert_key_error(helpers.raises(knox.keys.load, file), file, "Permission denied")
      else
        readable:close()
        -- root reads mode 000 files; a regular file whose read() fails
        -- (Linux: /proc/self/mem at offset 0) takes the same path
        local mem = io.open("/proc/self/mem", "rb")
        if not mem then
          pending("running as root without /proc: no unreadable file to try")
          return
        end
        mem:close()
        assert_key_error(helpers.raises(knox.keys.load, "/proc/self/mem"), "/proc/self/mem",
          "cannot read it: Input/output error")
      end
    end)

    it("an empty file, text that is not JSON, JSON that is not an object", function()
      load_fails("", "is empty")
      load_fails("  \n", "is empty")
      load_fails("Public=abc", "neither JSON (keys.json) nor a PEM private key")
      from_json_fails("Public=abc", "is not JSON")
      from_json_fails(fx.json:sub(1, -2), "is not JSON")
      from_json_fails(fx.json .. " {}", "is not JSON")
      from_json_fails('["' .. b64encode(fx.spki) .. '"]', "not an object")
    end)

    it("a missing or non-string Public or Private", function()
      local pub, priv = b64encode(fx.spki), b64encode(fx.pkcs8)
      from_json_fails(cjson.encode { Private = priv }, 'no "Public" field')
      from_json_fails(cjson.encode { Public = pub }, 'no "Private" field')
      from_json_fails(cjson.encode { public = pub, private = priv }, 'no "Public" field')
      from_json_fails(keys_json(pub, 42):gsub('"42"', "42"), 'field "Private" is not a string')
      from_json_fails(('{"Public":null,"Private":%q}'):format(priv), 'field "Public" is not a string')
      load_fails(cjson.encode { Public = pub }, 'no "Private" field')
    end)

    it("bad base64", function()
      local pub, priv = b64encode(fx.spki), b64encode(fx.pkcs8)
      from_json_fails(keys_json(pub, priv:sub(1, 100) .. "*" .. priv:sub(101)), 'field "Private" is not valid base64')
      from_json_fails(keys_json(pub, priv .. "=A"), 'field "Private" is not valid base64')
      -- one character too many: 4n + 1 characters decode to no whole byte
      local bare = priv:gsub("=", "")
      local dangling = bare .. ("A"):rep((1 - #bare) % 4)
      assert.are.equal(1, #dangling % 4)
      from_json_fails(keys_json(pub, dangling), 'field "Private" is not valid base64')
      from_json_fails(keys_json(pub, bare .. "==="), 'field "Private" is not valid base64')
      from_json_fails(keys_json(pub:gsub("A", "-"), priv), 'field "Public" is not valid base64')
      from_json_fails(keys_json(pub, ""), 'field "Private" is empty')
    end)

    it("a DER that is not RSA", function()
      local pub, priv = b64encode(fx.spki), b64encode(fx.pkcs8)
      from_json_fails(keys_json(b64encode(fx.ec_spki), b64encode(fx.ec8)),
        'field "Private" is another key type, not an RSA key')
      from_json_fails(keys_json(b64encode(fx.ec_spki), priv), 'field "Public" is another key type, not an RSA key')
      from_json_fails(keys_json(pub, b64encode(fx.pss8)), "RSA-PSS")
      -- a public key where the private key belongs, and the reverse
      from_json_fails(keys_json(pub, pub), 'field "Private" is not a DER private key')
      from_json_fails(keys_json(priv, priv), 'field "Public" is not a DER public key')
      from_json_fails(keys_json(pub, b64encode("not DER at all")), 'field "Private" is not a DER private key')
      load_fails(readfile(path("ec.pem")), "not an RSA key", "ec.pem")
    end)

    it("a truncated key, or bytes after it", function()
      local pub = b64encode(fx.spki)
      for _, der in ipairs { fx.pkcs8, fx.pkcs1 } do
        from_json_fails(keys_json(pub, b64encode(der:sub(1, #der - 1))), "truncated")
        from_json_fails(keys_json(pub, b64encode(der:sub(1, #der // 2))), "truncated")
        from_json_fails(keys_json(pub, b64encode(der .. "\0")), 'field "Private" is not a DER private key')
      end
      from_json_fails(keys_json(b64encode(fx.spki:sub(1, 200)), b64encode(fx.pkcs8)),
        'field "Public" is not a DER public key')
    end)

    it("an RSA key under 2048 bits", function()
      from_json_fails(keys_json(b64encode(fx.small_spki), b64encode(fx.small8)), "1024-bit RSA key")
      load_fails(readfile(path("small.pem")), "1024-bit RSA key", "small.pem")
    end)

    it("a Public that does not match the Private", function()
      from_json_fails(keys_json(b64encode(fx.other_spki), b64encode(fx.pkcs8)), "does not match")
      load_fails(keys_json(b64encode(fx.spki), b64encode(fx.pkcs8:sub(1, 40)) .. "x"), "not valid base64")
    end)

    it("PEM files that hold no usable private key", function()
      load_fails(readfile(path("enc.pem")), "encrypted", "enc.pem")
      load_fails(readfile(path("pub.pem")), "no readable PEM private key", "pub.pem")
      load_fails("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "no readable PEM private key", "junk.pem")
      -- keys.json only: from_json does not take PEM
      from_json_fails(readfile(path("rsa.pem")), "is not JSON")
    end)

    it("names the text as the caller asks", function()
      local err = helpers.raises(knox.keys.from_json, "{}", "the vault's keys")
      assert.are.equal('the vault\'s keys: has no "Public" field', err.message)
    end)

    it("keeps lauxlib errors for misuse", function()
      assert.has_error(function() knox.keys.load() end)
      assert.has_error(function() knox.keys.load({}) end)
      assert.has_error(function() knox.keys.load(path("rsa.pem") .. "\0.json") end)
      assert.has_error(function() knox.keys.from_json() end)
      assert.has_error(function() knox.keys.from_json({}) end)
    end)
  end)

  describe("signed JWTs", function()
    local key, pubfile, pub

    lazy_setup(function()
      key = knox.keys.load(path("rsa.pem"))
      pubfile = path("pub.pem")
      pub = opkey.new(readfile(pubfile))
    end)

    local JTI = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x"
      .. "%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

    local function check_token(token, claim, value, now, lifetime)
      local header, claims, payload, header_text = verify_openssl(token, pubfile)
      assert.are.equal('{"alg":"RS512","typ":"JWT"}', header_text)
      assert.are.same({ alg = "RS512", typ = "JWT" }, header)
      assert.are.equal(value, claims[claim])
      assert.are.equal(key:public_key(), claims.publicKey)
      assert.are.equal(b64encode(fx.spki), claims.publicKey)
      if now then assert.are.equal(now, claims.iat) end
      assert.are.equal(lifetime, claims.exp - claims.iat)
      assert.are.equal("KnoxWSM", claims.aud)
      assert.are.equal(72, #claims.jti)
      assert.matches(JTI, claims.jti)
      local n = 0
      for _ in pairs(claims) do n = n + 1 end
      assert.are.equal(6, n)
      -- Samsung's claim order
      local last = 0
      for _, name in ipairs { claim, "publicKey", "iat", "exp", "aud", "jti" } do
        local at = payload:find('"' .. name .. '":', 1, true)
        assert.is_true(at > last, name .. " out of order in " .. payload)
        last = at
      end
      return claims
    end

    it("sign_client_identifier: header, claims, signature", function()
      local t = key:sign_client_identifier("client-id-1", { now = 1700000000 })
      check_token(t, "clientIdentifier", "client-id-1", 1700000000, 1800)
    end)

    it("sign_access_token: header, claims, signature", function()
      local t = key:sign_access_token("opaque.access+token/=", { now = 1700000123, lifetime = 600 })
      check_token(t, "accessToken", "opaque.access+token/=", 1700000123, 600)
    end)

    it("uses the system clock by default and rounds opts", function()
      local claims = check_token(key:sign_access_token("t"), "accessToken", "t", nil, 1800)
      assert.is_true(math.abs(claims.iat - os.time()) <= 5)
      check_token(key:sign_access_token("t", { now = 1700000000.9, lifetime = 59.2 }),
        "accessToken", "t", 1700000000, 60)
    end)

    it("escapes the value as JSON", function()
      local v = 'a"b\\c\n\t\1/é€😀'
      local t = key:sign_client_identifier(v, { now = 1 })
      local claims = check_token(t, "clientIdentifier", v, 1, 1800)
      assert.are.equal(v, claims.clientIdentifier)
    end)

    it("verifies with luaossl too, for keys generated by knox", function()
      local k = knox.keys.generate()
      local p = opkey.new(pem(b64decode(k:public_key()), "PUBLIC KEY"))
      for i = 1, 20 do
        assert.is_true(verify_luaossl(k:sign_access_token("token-" .. i), p))
      end
      assert.is_false(verify_luaossl(k:sign_access_token("x"), pub))   -- another key
      local t = k:sign_access_token("x")
      local tampered = t:gsub("%.(.)", function(c) return "." .. (c == "A" and "B" or "A") end, 1)
      assert.is_false(verify_luaossl(tampered, p))
      verify_openssl(k:sign_client_identifier("c"), pubfile_of(k))
    end)

    it("gives a fresh jti to each of 10,000 tokens", function()
      local seen, n, count = {}, 0, helpers.scaled(10000, 100)
      for _ = 1, count do
        local t = key:sign_access_token("same token", { now = 1700000000 })
        local p = t:match("^[^.]+%.([^.]+)%.")
        -- base64 decodes in 4-character groups: the last 160 characters,
        -- from a group boundary, hold the closing jti claim
        local from = math.max(0, #p - 160) // 4 * 4
        local jti = b64url_decode(p:sub(from + 1)):match('"jti":"([^"]+)"}$')
        if not (#jti == 72 and jti:match(JTI)) then error("bad jti " .. jti) end
        if not seen[jti] then
          seen[jti] = true
          n = n + 1
        end
      end
      assert.are.equal(count, n)
    end)

    it("rejects bad arguments", function()
      local bad = {
        { nil }, { "" }, { {} }, { "\xff\xfe" }, { "a\xc0\xafb" },
        { "c", "opts" }, { "c", { now = "1700000000" } }, { "c", { now = -1 } }, { "c", { now = 0 } },
        { "c", { now = 0 / 0 } }, { "c", { now = math.huge } }, { "c", { now = 2 ^ 60 } },
        { "c", { lifetime = 0 } }, { "c", { lifetime = -5 } }, { "c", { lifetime = 1 / 0 } },
        { "c", { lifetime = true } }, { "c", { lifetime = 2 ^ 40 } },
      }
      for i, args in ipairs(bad) do
        for _, m in ipairs { "sign_client_identifier", "sign_access_token" } do
          local ok, err = pcall(key[m], key, args[1], args[2])
          assert.is_false(ok, "case " .. i)
          assert.is_string(err, "case " .. i)
          assert.matches("bad argument", err)
        end
      end
      assert.has_error(function() key.sign_access_token("not a key", "t") end)
    end)

    it("sign(claims) signs any claims table", function()
      local t = key:sign { sub = "x", n = 3, list = { 1, 2 }, nested = { k = "v" } }
      local _, claims = verify_openssl(t, pubfile)
      assert.are.same({ sub = "x", n = 3, list = { 1, 2 }, nested = { k = "v" } }, claims)
      assert.has_error(function() key:sign("x") end)
      local e = helpers.raises(key.sign, key, { 1, 2 })
      assert.are.equal("usage", e.kind)
    end)
  end)

  describe("closing", function()
    it("close is idempotent and later use is an error", function()
      local k = knox.keys.generate()
      k:close()
      k:close()
      assert.are.equal("knox.Key: closed", tostring(k))
      for _, m in ipairs { "public_key", "fingerprint", "bits", "to_json" } do
        local ok, err = pcall(k[m], k)
        assert.is_false(ok)
        assert.matches("closed", err)
      end
      assert.has_error(function() k:sign_access_token("t") end)
      assert.has_error(function() knox.encrypt("x", { public_key = k }) end)
    end)

    it("frees the key at the end of a <close> scope and on collection", function()
      local outer
      do
        local k <close> = knox.keys.from_json(fx.json)
        outer = k
        assert.are.equal(2048, k:bits())
      end
      assert.are.equal("knox.Key: closed", tostring(outer))
      for _ = 1, 20 do knox.keys.from_json(fx.json) end
      collectgarbage()
      collectgarbage()
    end)
  end)

  describe("knox.encrypt", function()
    local function decrypt(b64, keyfile)
      local ct = b64decode(b64)
      writefile(path("ct.bin"), ct)
      sh("openssl pkeyutl -decrypt -inkey " .. keyfile .. " -pkeyopt rsa_padding_mode:pkcs1 -in "
        .. path("ct.bin") .. " -out " .. path("pt.bin"))
      return readfile(path("pt.bin")), ct
    end

    it("encrypts with Samsung's published key by default", function()
      local a, b = knox.encrypt("user@example.com"), knox.encrypt("user@example.com")
      assert.matches("^[A-Za-z0-9+/]+=*$", a)
      assert.are.equal(344, #a)
      assert.are.equal(256, #b64decode(a))
      assert.are_not.equal(a, b)   -- PKCS#1 v1.5 padding is random
      local shared = helpers.shared_dir()
      if not shared then
        pending("shared/knox-docs not found: cannot compare the default key with api-notes §6")
        return
      end
      local notes = readfile(shared .. "/knox-docs/api-notes.md")
      local published = notes:match("`(MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu4NECyudg9kY[%w+/=]+)`")
      assert.is_string(published)
      assert.are.equal(published, knox.keys.kme_public_key)
      -- and openssl reads it as a 2048-bit RSA key
      writefile(path("kme.pem"), pem(b64decode(published), "PUBLIC KEY"))
      assert.matches("Public%-Key: %(2048 bit%)", sh("openssl pkey -pubin -in " .. path("kme.pem") .. " -noout -text"))
    end)

    it("output decrypts with the private half of opts.public_key", function()
      local texts = { "user@example.com", "", "é\0binary\255", ("x"):rep(245) }
      for _, text in ipairs(texts) do
        for _, pk in ipairs { b64encode(fx.spki), b64encode(fx.rsapub), readfile(path("pub.pem")) } do
          local out = knox.encrypt(text, { public_key = pk })
          local plain, ct = decrypt(out, path("rsa.pem"))
          assert.are.equal(text, plain)
          assert.are.equal(256, #ct)
          assert.are.equal(b64encode(ct), out)
        end
      end
      local k = knox.keys.load(path("rsa.pem"))
      assert.are.equal("pin 1234", decrypt(knox.encrypt("pin 1234", { public_key = k }), path("rsa.pem")))
    end)

    it("refuses text over 245 bytes as a usage error", function()
      local err = helpers.raises(knox.encrypt, ("x"):rep(246))
      assert.are.equal("usage", err.kind)
      assert.matches("246 bytes", err.message)
      assert.matches("245", err.message)
      assert.is_falsy(err.message:find("xxxx", 1, true))
      err = helpers.raises(knox.encrypt, ("y"):rep(1000), { public_key = b64encode(fx.spki) })
      assert.are.equal("usage", err.kind)
    end)

    it("refuses an unusable opts.public_key", function()
      local cases = {
        { "not a key!", "opts.public_key is neither base64 DER nor PEM" },
        { "bm90IGEga2V5", "opts.public_key is not a DER public key" },
        { b64encode(fx.small_spki), "1024-bit RSA key" },
        { b64encode(fx.ec_spki), "not an RSA key" },
        { b64encode(fx.pkcs8), "not a DER public key" },
        { readfile(path("ec.pem")):gsub("PRIVATE", "PUBLIC"), "not a PEM RSA public key" },
      }
      for _, c in ipairs(cases) do
        local err = helpers.raises(knox.encrypt, "x", { public_key = c[1] })
        assert_key_error(err, "knox.encrypt", c[2], { b64encode(fx.pkcs8) })
      end
      assert.has_error(function() knox.encrypt("x", { public_key = 42 }) end)
      assert.has_error(function() knox.encrypt("x", "opts") end)
      assert.has_error(function() knox.encrypt() end)
    end)
  end)
end)
