--- knox.sim crypto, on luaossl only (never knox.core): public-key parsing,
-- RS512 JWT verification, and generation of keys.json pairs and of a
-- self-signed TLS certificate for --tls without --cert.
local pkey = require "openssl.pkey"
local digest = require "openssl.digest"
local codec = require "knox.sim.codec"
local json = require "knox.sim.json"

local M = {}

-- DER length octets.
local function der_len(n)
  if n < 128 then return string.char(n) end
  local bytes = {}
  while n > 0 do
    table.insert(bytes, 1, string.char(n & 0xff))
    n = n >> 8
  end
  return string.char(0x80 | #bytes) .. table.concat(bytes)
end

-- AlgorithmIdentifier { rsaEncryption, NULL }
local RSA_ALG = "\48\13\6\9\42\134\72\134\247\13\1\1\1\5\0"

-- Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo, which luaossl parses.
local function spki_from_pkcs1(der)
  local bits = "\0" .. der
  local bitstring = "\3" .. der_len(#bits) .. bits
  local inner = RSA_ALG .. bitstring
  return "\48" .. der_len(#inner) .. inner
end

--- Parses a base64 DER public key (SubjectPublicKeyInfo or PKCS#1) and
-- returns key, spki_der; or nil, reason (never OpenSSL's raw text).
function M.public_key(b64)
  local der = codec.unb64(b64)
  if not der or #der < 16 then return nil, "not base64 DER" end
  local ok, key = pcall(pkey.new, der, "DER")
  if not ok or not key then
    ok, key = pcall(pkey.new, spki_from_pkcs1(der), "DER")
  end
  if not ok or not key then return nil, "not a public key" end
  local okt, kind = pcall(key.type, key)
  if not okt or kind ~= "rsaEncryption" then return nil, "not an RSA key" end
  local spki = key:tostring("DER")
  return key, spki
end

--- Splits a compact JWS. Returns { header, payload, signing_input,
-- signature } or nil, reason. Does not verify anything.
function M.jwt_parse(token)
  if type(token) ~= "string" or #token > 16384 then return nil, "not a JWT" end
  local h, p, s = token:match("^([%w%-_]+)%.([%w%-_]+)%.([%w%-_]*)$")
  if not h then return nil, "not a compact JWS (three base64url parts)" end
  local hj, pj, sig = codec.unb64url(h), codec.unb64url(p), codec.unb64url(s)
  if not hj or not pj or not sig then return nil, "malformed base64url" end
  local header, payload = json.decode(hj), json.decode(pj)
  if not json.is_object(header) or not json.is_object(payload) then
    return nil, "header or payload is not a JSON object"
  end
  return { header = header, payload = payload, signing_input = h .. "." .. p, signature = sig }
end

--- True when jwt's RS512 signature verifies under key.
function M.verify_rs512(key, jwt)
  if jwt.header.alg ~= "RS512" or #jwt.signature == 0 then return false end
  local d = digest.new("sha512")
  d:update(jwt.signing_input)
  local ok, good = pcall(key.verify, key, jwt.signature, d)
  return ok and good == true
end

local function pem_body(pem)
  return (pem:gsub("%-%-%-%-%-[^%-]+%-%-%-%-%-", ""):gsub("%s+", ""))
end

--- A new RSA-2048 pair as a keys.json table { Public, Private, Identifier }:
-- base64 of SubjectPublicKeyInfo and PKCS#8 DER, like the Knox portal's file.
function M.generate_keys()
  local key = pkey.new { type = "RSA", bits = 2048 }
  return {
    Public = codec.b64(key:tostring("DER")),
    Private = pem_body(key:toPEM("private")),
    Identifier = codec.uuid(),
  }
end

--- Writes a self-signed ECDSA certificate for 127.0.0.1, ::1 and localhost
-- to cert_path and its key to key_path.
function M.self_signed(cert_path, key_path, now)
  local x509 = require "openssl.x509"
  local name = require "openssl.x509.name"
  local altname = require "openssl.x509.altname"
  local bignum = require "openssl.bignum"
  local rand = require "openssl.rand"
  local key = pkey.new { type = "EC", curve = "prime256v1" }
  local crt = x509.new()
  crt:setVersion(3)
  crt:setSerial(bignum.fromBinary(rand.bytes(8)))
  local n = name.new()
  n:add("CN", "knox-sim")
  crt:setSubject(n)
  crt:setIssuer(n)
  crt:setPublicKey(key)
  crt:setLifetime(now - 3600, now + 30 * 86400)
  local alt = altname.new()
  alt:add("IP", "127.0.0.1")
  alt:add("IP", "::1")
  alt:add("DNS", "localhost")
  crt:setSubjectAlt(alt)
  crt:setBasicConstraints { CA = true }
  crt:setBasicConstraintsCritical(true)
  crt:sign(key, "sha256")
  local f = assert(io.open(cert_path, "w"))
  f:write(tostring(crt))
  f:close()
  f = assert(io.open(key_path, "w"))
  f:write(key:toPEM("private"))
  f:close()
end

return M
