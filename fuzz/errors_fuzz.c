/*
 * errors_fuzz.c — libFuzzer harness for error normalization: the C
 * scanner (errors.c, text.c) under the Lua classifier (lua/knox/errors.lua,
 * loaded from the checkout: run from the repository root). Feeds arbitrary
 * bytes as the body of a response, with a status, service and headers
 * picked from the first bytes, to knox.errors.from_response, check and
 * items, and aborts on anything but a well-formed knox.Error (or, for
 * items, a list of them). Not part of `make test`: `make fuzz` builds and
 * runs it with the others (seeds: fuzz/corpus/errors/, the error fixtures);
 * by hand (clang with libFuzzer), the commands below this comment.
 * (Corpus files are plain bodies; the harness takes its first three bytes
 * as status/service/header choices, so seeds work as they are.)
 */
// FLAGS="$(pkg-config --cflags lua5.4 libcjson)"
// LIBS="$(pkg-config --libs lua5.4 libcjson libcurl openssl) -lm"
// clang -g -O1 -fsanitize=fuzzer,address,undefined -Icsrc $FLAGS fuzz/errors_fuzz.c csrc/*.c $LIBS -o build/errors_fuzz
// mkdir -p build/fuzz-corpus && cp spec/fixtures/errors/* build/fuzz-corpus/
// build/errors_fuzz -max_total_time=60 build/fuzz-corpus
#include "knox.h"

#include <lualib.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int luaopen_knox_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

static void fail(const char *why)
{
  (void)why;
  abort();
}

/* Checks the knox.Error at the top of the stack. */
static void check_error(int idx)
{
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) fail("not a table with a metatable");
  luaL_getmetatable(L, KNOX_ERROR_MT);
  if (!lua_rawequal(L, -1, -2)) fail("not a knox.Error");
  lua_pop(L, 2);
  size_t n;
  if (lua_getfield(L, idx, "kind") != LUA_TSTRING) fail("kind");
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "message") != LUA_TSTRING) fail("message");
  const char *m = lua_tolstring(L, -1, &n);
  if (n == 0 || memchr(m, '\n', n) != NULL) fail("message text");
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "retryable") != LUA_TBOOLEAN) fail("retryable");
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "body") == LUA_TSTRING && lua_rawlen(L, -1) > 4096) fail("body size");
  lua_pop(L, 1);
  const char *s = luaL_tolstring(L, idx, &n);
  if (strncmp(s, "knox: ", 6) != 0 || memchr(s, '\n', n) != NULL) fail("tostring");
  lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const int statuses[] = {0, 200, 206, 400, 401, 403, 404, 429, 500, 502, 503, 504};
  static const char *const services[] = {NULL, "kme", "kg", "msp", "kdp", "kc", "auth", "oauth2",
                                         "samsung_account", "other"};
  if (L == NULL) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "knox.core", luaopen_knox_core, 0);
    if (luaL_dostring(L, "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path\n"
                         "E = require 'knox.errors'") != LUA_OK) {
      fail("cannot load knox.errors (run from the repository root)");
    }
    lua_settop(L, 0);
  }
  uint8_t a = size > 0 ? data[0] : 0, b = size > 1 ? data[1] : 0, c = size > 2 ? data[2] : 0;
  const char *body = size > 3 ? (const char *)data + 3 : "";
  size_t blen = size > 3 ? size - 3 : 0;

  lua_getglobal(L, "E");
  int E = lua_gettop(L);
  lua_createtable(L, 0, 6); /* the response */
  int R = lua_gettop(L);
  int st = statuses[a % (sizeof statuses / sizeof statuses[0])];
  if (st) {
    lua_pushinteger(L, st);
    lua_setfield(L, R, "status");
  }
  const char *svc = services[b % (sizeof services / sizeof services[0])];
  if (svc) {
    lua_pushstring(L, svc);
    lua_setfield(L, R, "service");
  }
  lua_pushlstring(L, body, blen);
  lua_setfield(L, R, "body");
  lua_pushliteral(L, "https://u:p@h/kcs/v1/kme/devices/list?access_token=x");
  lua_setfield(L, R, "url");
  lua_newtable(L);
  if (c & 1) { lua_pushlstring(L, body, blen < 40 ? blen : 40); lua_setfield(L, -2, "retry-after"); }
  if (c & 2) { lua_pushlstring(L, body, blen < 80 ? blen : 80); lua_setfield(L, -2, "WWW-Authenticate"); }
  if (c & 4) { lua_pushliteral(L, "text/html"); lua_setfield(L, -2, "content-type"); }
  if (c & 8) { lua_pushlstring(L, body, blen < 40 ? blen : 40); lua_setfield(L, -2, "date"); }
  lua_setfield(L, R, "headers");

  lua_getfield(L, E, "from_response");
  lua_pushvalue(L, R);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) fail("from_response raised");
  check_error(-1);
  lua_pop(L, 1);

  lua_getfield(L, E, "check");
  lua_pushvalue(L, R);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) fail("check raised");
  if (!lua_isnil(L, -1)) check_error(-1);
  lua_pop(L, 1);

  lua_getfield(L, E, "items");
  lua_pushlstring(L, body, blen);
  if (svc) lua_pushstring(L, svc);
  else lua_pushnil(L);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_istable(L, -1)) fail("items");
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "error");
    check_error(-1);
    lua_pop(L, 2);
  }
  lua_settop(L, 0);
  return 0;
}
