--- bench/sign.lua: RS512 access-token signing with a loaded 2048-bit key,
-- against `openssl speed -seconds 3 rsa2048` (raw RSA private-key signs)
-- measured in the same run. Prints rates and the ratio; asserts nothing.
-- Run with `make bench` (or LUA_PATH/LUA_CPATH as the Makefile sets them).
local knox = require "knox"
local core = require "knox.core"

local TOKENS = tonumber(arg and arg[1]) or 5000

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  return ok and out or nil, out
end

-- A loaded key, as the client uses it: a keys.json file read by knox.keys.load.
local dir = assert(sh("mktemp -d")):gsub("%s+$", "")
local file = dir .. "/keys.json"
do
  local f = assert(io.open(file, "wb"))
  f:write(knox.keys.generate { bits = 2048 }:to_json())
  f:close()
end
local key = knox.keys.load(file)
os.remove(file)
os.remove(dir)

-- Rates are per second of this process's CPU time (os.clock), as `openssl
-- speed` divides by CPU user time unless given -elapsed: other load on the
-- machine then skews neither side. Wall time is printed alongside.
local function knox_rate(n)
  local token = ("t"):rep(200)   -- Knox access tokens are opaque strings of this order
  collectgarbage()   -- no run pays for the garbage of the one before
  local c0, t0 = os.clock(), core.monotime()
  for _ = 1, n do key:sign_access_token(token) end
  return n / (os.clock() - c0), n / (core.monotime() - t0)
end

local function openssl_rate()
  local out, raw = sh("openssl speed -seconds 3 rsa2048 2>/dev/null")
  local rate = out and out:match("rsa%s+2048 bits%s+[%d.]+s%s+[%d.]+s%s+([%d.]+)")
  assert(rate, "cannot read `openssl speed` output:\n" .. tostring(raw))
  return tonumber(rate)
end

knox_rate(200)  -- warm up: blinding, caches, CPU clock
-- knox and openssl take turns, twice each, so slow drift of the machine's
-- speed (other load, clock scaling) falls on both sides alike.
local k1, w1 = knox_rate(TOKENS)
local s1 = openssl_rate()
local k2, w2 = knox_rate(TOKENS)
local s2 = openssl_rate()
local knox_mean, ssl_mean = (k1 + k2) / 2, (s1 + s2) / 2

print(("knox sign_access_token, 2 runs of %d tokens: %.1f, %.1f tokens/s of CPU (wall: %.1f, %.1f)")
  :format(TOKENS, k1, k2, w1, w2))
print(("openssl speed -seconds 3 rsa2048, 2 runs:   %.1f, %.1f sign/s"):format(s1, s2))
print(("ratio knox / openssl: %.3f  (mean %.1f / mean %.1f; target >= 0.9)")
  :format(knox_mean / ssl_mean, knox_mean, ssl_mean))
