/*
 * json_fuzz.c — libFuzzer harness for knox.json (csrc/json.c), both ways.
 *
 * Decode: the input, as JSON text, goes to core.json.decode (with a
 * max_depth picked from its length). It must either raise a knox.Error of
 * kind "decode" whose offset lies within the text, or give a value that
 * encodes (sorted keys) to valid UTF-8, decodes again to an equal value
 * (fz_same) and re-encodes to the very same text.
 *
 * Encode: the same bytes drive a small builder of Lua values (integers,
 * raw float bits (NaN and infinities included), strings of raw bytes,
 * booleans, knox.null, arrays, objects, marked and unmarked empty tables,
 * sparse arrays, mixed and odd keys, cycles, shared subtables, functions,
 * deep nesting). core.json.encode must either raise a knox.Error of kind
 * "usage" or give valid UTF-8 text that decodes to an equal value.
 *
 * Seeds (fuzz/corpus/json/) are plain JSON texts. Built and run by
 * `make fuzz`; by hand from the repository root:
 *   build/fuzz/json_fuzz fuzz/corpus/json
 */
#include "fuzz.h"

#include <math.h>

static lua_State *L;
static int DECODE, ENCODE, ARRAY, OBJECT;   /* registry references */
static int deep_done;                       /* one deep nest per input: they are slow */

/* The bytes the builder reads; past the end it reads zeros. */
struct src {
  const uint8_t *p;
  size_t n, i;
};

static uint8_t next(struct src *s)
{
  return s->i < s->n ? s->p[s->i++] : 0;
}

static int at_end(const struct src *s)
{
  return s->i >= s->n;
}

static void push_ref(int ref)
{
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
}

/* Marks the table at the top with json.array or json.object. */
static void mark(int ref)
{
  push_ref(ref);
  lua_insert(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) fz_fail("json.array/object raised");
}

/* Pushes a key for an object: usually a string, sometimes an integer or
 * a key JSON cannot hold. */
static void push_key(struct src *s)
{
  uint8_t k = next(s);
  switch (k % 16) {
  case 0: lua_pushinteger(L, (lua_Integer)(int8_t)next(s)); break;
  case 1: lua_pushnumber(L, 0.5 + next(s)); break;
  case 2: lua_pushboolean(L, k & 16); break;
  default: {
    size_t len = next(s) % 12;
    char buf[12];
    for (size_t j = 0; j < len; j++) buf[j] = (char)next(s);
    lua_pushlstring(L, buf, len);
  }
  }
}

/* Pushes a value built from the bytes; table is the outermost table so
 * far (0 when none), for cycles and shared subtables. */
static void build(struct src *s, int depth, int outer)
{
  luaL_checkstack(L, 8, NULL);
  uint8_t op = at_end(s) ? 0 : next(s);
  switch (op % 20) {
  case 0: lua_pushinteger(L, (lua_Integer)(op / 20)); break;
  case 1: {
    uint64_t u = 0;
    for (int j = 0; j < 8; j++) u = (u << 8) | next(s);
    lua_pushinteger(L, (lua_Integer)u);
    break;
  }
  case 2: {
    uint64_t u = 0;
    for (int j = 0; j < 8; j++) u = (u << 8) | next(s);
    double d;
    memcpy(&d, &u, sizeof d);
    lua_pushnumber(L, d);
    break;
  }
  case 3: lua_pushnumber(L, ((int8_t)next(s)) / 8.0); break;
  case 4: case 5: {
    size_t len = next(s) % 24;
    char buf[24];
    for (size_t j = 0; j < len; j++) buf[j] = (char)next(s);
    lua_pushlstring(L, buf, len);
    break;
  }
  case 6: lua_pushboolean(L, op & 32); break;
  case 7: lua_pushlightuserdata(L, NULL); break;     /* knox.null */
  case 8: case 9: case 10: {                          /* array */
    int n = next(s) % 6;
    lua_createtable(L, n, 0);
    if (outer == 0) outer = lua_gettop(L);
    for (int i = 1; i <= n && depth < 64; i++) {
      build(s, depth + 1, outer);
      lua_rawseti(L, -2, i);
    }
    if (op & 64) mark(ARRAY);
    break;
  }
  case 11: case 12: case 13: {                        /* object */
    int n = next(s) % 6;
    lua_createtable(L, 0, n);
    if (outer == 0) outer = lua_gettop(L);
    for (int i = 0; i < n && depth < 64; i++) {
      push_key(s);
      build(s, depth + 1, outer);
      lua_rawset(L, -3);
    }
    if (op & 64) mark(OBJECT);
    break;
  }
  case 14: lua_newtable(L); if (op & 32) mark(op & 64 ? ARRAY : OBJECT); break;
  case 15: {                                          /* sparse or zero-based */
    lua_newtable(L);
    lua_pushboolean(L, 1);
    lua_rawseti(L, -2, (lua_Integer)(next(s) % 4));
    lua_pushboolean(L, 0);
    lua_rawseti(L, -2, (lua_Integer)(next(s) % 4) + 2);
    break;
  }
  case 16:                                            /* the outer table again */
    if (outer != 0) lua_pushvalue(L, outer);
    else lua_pushinteger(L, 16);
    break;
  case 17: {                                          /* nesting near max_depth */
    if (deep_done++) {
      lua_pushinteger(L, 17);
      break;
    }
    int n = 500 + next(s) % 32;
    lua_newtable(L);
    for (int i = 0; i < n; i++) {
      lua_newtable(L);
      lua_pushvalue(L, -2);
      lua_rawseti(L, -2, 1);
      lua_remove(L, -2);
    }
    break;
  }
  case 18: lua_pushcfunction(L, luaopen_knox_core); break;
  default: lua_pushlightuserdata(L, &L); break;       /* not knox.null */
  }
}

/* Pushes decode(text) or raises inside pcall; returns the pcall status. */
static int decode(int text, int max_depth)
{
  text = lua_absindex(L, text);
  push_ref(DECODE);
  lua_pushvalue(L, text);
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, max_depth);
  lua_setfield(L, -2, "max_depth");
  return lua_pcall(L, 2, 1, 0);
}

static int encode(int v, int sorted)
{
  v = lua_absindex(L, v);
  push_ref(ENCODE);
  lua_pushvalue(L, v);
  lua_createtable(L, 0, 2);
  lua_pushboolean(L, sorted);
  lua_setfield(L, -2, "sort_keys");
  lua_pushinteger(L, 1000);
  lua_setfield(L, -2, "max_depth");
  return lua_pcall(L, 2, 1, 0);
}

static void check_text(int idx)
{
  size_t n;
  if (lua_type(L, idx) != LUA_TSTRING) fz_fail("encode gave no string");
  const char *t = lua_tolstring(L, idx, &n);
  if (n == 0 || !fz_utf8(t, n)) fz_fail("encode gave invalid UTF-8");
}

static void decode_round_trip(const uint8_t *data, size_t size)
{
  int top = lua_gettop(L);
  int max_depth = size % 7 == 0 ? 1 + (int)(size % 40) : 1000;
  lua_pushlstring(L, (const char *)data, size);
  int text = lua_gettop(L);
  if (decode(text, max_depth) != LUA_OK) {
    fz_check_error(L, -1, "decode");
    if (lua_getfield(L, -1, "offset") != LUA_TNUMBER || !lua_isinteger(L, -1)) fz_fail("decode offset");
    lua_Integer off = lua_tointeger(L, -1);
    if (off < 0 || (size_t)off > size) fz_fail("decode offset range");
    lua_settop(L, top);
    return;
  }
  int v = lua_gettop(L);
  if (encode(v, 1) != LUA_OK) {
    fz_check_error(L, -1, NULL);
    fz_fail("a decoded value does not encode");
  }
  check_text(-1);
  int t1 = lua_gettop(L);
  if (decode(t1, 1000) != LUA_OK) fz_fail("encoded text does not decode");
  int v2 = lua_gettop(L);
  if (!fz_same(L, v, v2, 0)) fz_fail("decode(encode(v)) differs from v");
  if (encode(v2, 1) != LUA_OK) fz_fail("second encode raised");
  if (!lua_rawequal(L, -1, t1)) fz_fail("encode(decode(t)) ~= t");
  /* unsorted order must decode to the same value too */
  if (encode(v, 0) != LUA_OK) fz_fail("unsorted encode raised");
  if (decode(-1, 1000) != LUA_OK || !fz_same(L, v, -1, 0)) fz_fail("unsorted round trip");
  lua_settop(L, top);
}

static void encode_round_trip(const uint8_t *data, size_t size)
{
  int top = lua_gettop(L);
  struct src s = {data, size, 0};
  deep_done = 0;
  build(&s, 0, 0);
  int v = lua_gettop(L);
  if (lua_isnil(L, v)) { lua_settop(L, top); return; }
  if (encode(v, size & 1) != LUA_OK) {
    fz_check_error(L, -1, "usage");
    lua_settop(L, top);
    return;
  }
  check_text(-1);
  if (decode(-1, 1000) != LUA_OK) {
    fz_check_error(L, -1, NULL);
    fz_fail("encoded value does not decode");
  }
  if (!fz_same(L, v, -1, 0)) fz_fail("decode(encode(v)) differs from v");
  lua_settop(L, top);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (L == NULL) {
    L = fz_state();
    lua_getglobal(L, "require");
    lua_pushliteral(L, "knox.core");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "json");
    lua_getfield(L, -1, "decode");
    DECODE = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "encode");
    ENCODE = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "array");
    ARRAY = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "object");
    OBJECT = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
  }
  decode_round_trip(data, size);
  encode_round_trip(data, size);
  lua_settop(L, 0);
  /* keeps memory flat across millions of runs */
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
