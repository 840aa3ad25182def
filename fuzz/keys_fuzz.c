/*
 * keys_fuzz.c — libFuzzer harness for key loading and KME encryption
 * (csrc/key.c over OpenSSL). The first byte picks what the rest is:
 *
 *   '0' (byte % 4 == 0)  keys.json text for core.keys.from_json
 *   '1'                  a key file's content (keys.json or PEM private
 *                        key) for core.keys.load, written to a temp file
 *   '2'                  opts.public_key (PEM or base64 DER) for
 *                        core.encrypt of a fixed text
 *   '3'                  the text for core.encrypt under Samsung's key
 *
 * Every call must return a well-formed result or raise a knox.Error of
 * kind "key" (or "usage" for a text longer than the key holds). A key that
 * loads must describe itself ("knox.Key: RSA-<bits> <16 hex>"), have 2048
 * to 16384 bits, re-load from its own to_json() with the same fingerprint,
 * sign a client identifier as a three-part JWS, and encrypt under itself
 * and under its public_key() text to base64 of its modulus size. Seeds
 * (fuzz/corpus/keys/) are text files whose first character is the mode.
 */
#include "fuzz.h"

#include <unistd.h>

static lua_State *L;
static char path[64];

/* Checks that the string at idx is standard padded base64 of nbytes, or
 * (nbytes 0) of an RSA block of any accepted size (256 to 2048 bytes). */
static void check_b64(int idx, size_t nbytes)
{
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  if (s == NULL) fz_fail("encrypt: no string");
  if (nbytes != 0 ? n != (nbytes + 2) / 3 * 4 : (n % 4 != 0 || n < 344 || n > 2732)) {
    fz_fail("encrypt: base64 length");
  }
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '+' || c == '/' || (c == '=' && i + 2 >= n);
    if (!ok) fz_fail("encrypt: not base64");
  }
}

/* The checks of a knox.Key at the top of the stack. */
static void check_key(void)
{
  int k = lua_gettop(L);
  lua_getglobal(L, "key_facts");
  lua_pushvalue(L, k);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "knox fuzz: %s\n", luaL_tolstring(L, -1, NULL));
    fz_fail("a loaded key misbehaves");
  }
  if (!lua_isinteger(L, -1)) fz_fail("key_facts result");
  size_t bytes = (size_t)lua_tointeger(L, -1);
  lua_pop(L, 1);
  /* encrypt under the key and under its public_key() text */
  lua_getfield(L, k, "public_key");
  lua_pushvalue(L, k);
  lua_call(L, 1, 1);
  int pub = lua_gettop(L);
  for (int i = 0; i < 2; i++) {
    lua_getglobal(L, "encrypt");
    lua_pushliteral(L, "354612345678901");
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, i == 0 ? k : pub);
    lua_setfield(L, -2, "public_key");
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) fz_fail("encrypt under a loaded key raised");
    check_b64(-1, bytes);
    lua_pop(L, 1);
  }
  lua_settop(L, k);
}

/* Checks the result of a load: a knox.Key (then its checks) or a
 * knox.Error of kind "key". */
static void loaded(int status)
{
  if (status != LUA_OK) {
    fz_check_error(L, -1, "key");
    return;
  }
  check_key();
  lua_getfield(L, -1, "close");
  lua_insert(L, -2);
  lua_call(L, 1, 0);
}

static void encrypted(int status, size_t bytes, int may_be_usage)
{
  if (status != LUA_OK) {
    int usage = 0;
    if (may_be_usage && lua_getfield(L, -1, "kind") == LUA_TSTRING) {
      usage = strcmp(lua_tostring(L, -1), "usage") == 0;
    }
    if (may_be_usage) lua_pop(L, 1);
    fz_check_error(L, -1, usage ? "usage" : "key");
    return;
  }
  check_b64(-1, bytes);
}

static const char SETUP[] =
  "local core = require 'knox.core'\n"
  "from_json, load, encrypt = core.keys.from_json, core.keys.load, core.encrypt\n"
  "function key_facts(k)\n"
  "  local s = tostring(k)\n"
  "  local bits, fp = s:match '^knox%.Key: RSA%-(%d+) (%x+)$'\n"
  "  assert(bits and #fp == 16 and fp == k:fingerprint(), s)\n"
  "  bits = math.tointeger(bits)\n"
  "  assert(bits == k:bits() and bits >= 2048 and bits <= 16384)\n"
  "  local again = from_json(k:to_json())\n"
  "  assert(again:fingerprint() == fp, 'to_json does not re-load to the same key')\n"
  "  again:close()\n"
  "  local jws = k:sign_client_identifier('fuzz-client', { now = 1700000000 })\n"
  "  assert(select(2, jws:gsub('%.', '')) == 2, 'not a three-part JWS')\n"
  "  return (bits + 7) // 8\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (L == NULL) {
    L = fz_state();
    if (luaL_dostring(L, SETUP) != LUA_OK) fz_fail(lua_tostring(L, -1));
    snprintf(path, sizeof path, "/tmp/knox-keys-fuzz-%ld", (long)getpid());
  }
  if (size == 0) return 0;
  const char *rest = (const char *)data + 1;
  size_t n = size - 1;
  switch (data[0] % 4) {
  case 0:
    lua_getglobal(L, "from_json");
    lua_pushlstring(L, rest, n);
    loaded(lua_pcall(L, 1, 1, 0));
    break;
  case 1: {
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(rest, 1, n, f) != n || fclose(f) != 0) fz_fail("cannot write the temp file");
    lua_getglobal(L, "load");
    lua_pushstring(L, path);
    loaded(lua_pcall(L, 1, 1, 0));
    unlink(path);
    break;
  }
  case 2:
    lua_getglobal(L, "encrypt");
    lua_pushliteral(L, "354612345678901");
    lua_createtable(L, 0, 1);
    lua_pushlstring(L, rest, n);
    lua_setfield(L, -2, "public_key");
    encrypted(lua_pcall(L, 2, 1, 0), 0, 0);
    break;
  default:
    lua_getglobal(L, "encrypt");
    lua_pushlstring(L, rest, n);
    encrypted(lua_pcall(L, 1, 1, 0), 256, n > 245);
    if (n <= 245 && !lua_isstring(L, -1)) fz_fail("encrypt of a short text failed");
    break;
  }
  lua_settop(L, 0);
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
