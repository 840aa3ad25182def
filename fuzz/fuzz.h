/*
 * fuzz.h — what the libFuzzer harnesses in fuzz/ share: one lua_State
 * with knox.core (and, from the checkout, the Lua modules: run from the
 * repository root, as `make fuzz` does), the knox.Error check, UTF-8 and
 * deep-equality checks. Header-only (static functions) so each harness
 * stays one translation unit; built by `make fuzz`.
 */
#ifndef KNOX_FUZZ_H
#define KNOX_FUZZ_H

/* gmtime_r, getpid, unlink: POSIX, whatever flags the harness is built with */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "knox.h"

#include <lualib.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int luaopen_knox_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed property: says which on stderr (libFuzzer keeps the input). */
static inline void fz_fail(const char *why)
{
  fprintf(stderr, "knox fuzz: property failed: %s\n", why);
  abort();
}

/* A fresh lua_State with knox.core preloaded as "knox.core" and the
 * checkout's lua/ first on package.path. */
static inline lua_State *fz_state(void)
{
  lua_State *L = luaL_newstate();
  if (L == NULL) fz_fail("luaL_newstate");
  luaL_openlibs(L);
  luaL_requiref(L, "knox.core", luaopen_knox_core, 0);
  lua_pop(L, 1);
  if (luaL_dostring(L, "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path") != LUA_OK) {
    fz_fail("package.path");
  }
  return L;
}

/* Requires module name and leaves it on the stack; aborts when it cannot
 * be loaded (the harness was not started from the repository root). */
static inline void fz_require(lua_State *L, const char *name)
{
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "knox fuzz: cannot load %s (run from the repository root): %s\n", name,
            lua_tostring(L, -1));
    abort();
  }
}

/* Whether s[0..n) is well-formed UTF-8 (no overlongs, surrogates or
 * code points above U+10FFFF). */
static inline int fz_utf8(const char *str, size_t n)
{
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t len;
    unsigned cp, min;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (i + len > n) return 0;
    for (size_t j = 1; j < len; j++) {
      if ((s[i + j] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + j] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += len;
  }
  return 1;
}

/* Whether s[0..n) has a control character (C0, DEL). */
static inline int fz_has_control(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7F) return 1;
  }
  return 0;
}

/* Whether the value at idx is a knox.Error (by its metatable). */
static inline int fz_is_error(lua_State *L, int idx)
{
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, KNOX_ERROR_MT);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

/* Checks that the value at idx is a well-formed knox.Error: string kind,
 * one non-empty line of message, boolean retryable when present, a bounded
 * body, a one-line tostring starting "knox: "; kind (when not NULL) must
 * be the one expected. */
static inline void fz_check_error(lua_State *L, int idx, const char *kind)
{
  size_t n;
  idx = lua_absindex(L, idx);
  if (!fz_is_error(L, idx)) {
    fprintf(stderr, "knox fuzz: raised: %s\n", luaL_tolstring(L, idx, NULL));
    fz_fail("not a knox.Error");
  }
  if (lua_getfield(L, idx, "kind") != LUA_TSTRING) fz_fail("error kind");
  if (kind != NULL && strcmp(lua_tostring(L, -1), kind) != 0) {
    fprintf(stderr, "knox fuzz: kind %s, expected %s: %s\n", lua_tostring(L, -1), kind,
            luaL_tolstring(L, idx, NULL));
    fz_fail("error kind");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "message") != LUA_TSTRING) fz_fail("error message");
  const char *m = lua_tolstring(L, -1, &n);
  if (n == 0 || memchr(m, '\n', n) != NULL) fz_fail("error message text");
  lua_pop(L, 1);
  int t = lua_getfield(L, idx, "retryable");
  if (t != LUA_TNIL && t != LUA_TBOOLEAN) fz_fail("error retryable");
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "body") == LUA_TSTRING && lua_rawlen(L, -1) > 4096) fz_fail("error body size");
  lua_pop(L, 1);
  const char *s = luaL_tolstring(L, idx, &n);
  if (strncmp(s, "knox: ", 6) != 0 || memchr(s, '\n', n) != NULL) fz_fail("error tostring");
  lua_pop(L, 1);
}

/* Deep equality of two JSON-like values (metatables ignored; numbers by
 * value, so the integer 1 equals the float 1.0, which JSON cannot tell
 * apart). */
static inline int fz_same(lua_State *L, int a, int b, int depth)
{
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  if (depth > 1100) fz_fail("fz_same: too deep");
  int ta = lua_type(L, a);
  if (ta != lua_type(L, b)) return 0;
  if (ta != LUA_TTABLE) return lua_rawequal(L, a, b);
  luaL_checkstack(L, 8, NULL);
  lua_Integer na = 0, nb = 0;
  lua_pushnil(L);
  while (lua_next(L, a)) {
    na++;
    lua_pushvalue(L, -2);
    lua_rawget(L, b);
    if (!fz_same(L, -2, -1, depth + 1)) {
      lua_pop(L, 3);
      return 0;
    }
    lua_pop(L, 2);
  }
  lua_pushnil(L);
  while (lua_next(L, b)) {
    nb++;
    lua_pop(L, 1);
  }
  return na == nb;
}

#endif
