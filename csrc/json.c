/*
 * json.c — knox.json: JSON text <-> Lua values (core.json).
 *
 * Encoding walks the Lua value and writes JSON text straight into one
 * growable buffer (no intermediate tree), so integers stay exact and there is
 * one allocation per doubling rather than one per value.
 *
 * Decoding first tries one strict pass from the text straight to Lua values
 * (struct fast, above l_decode: the cursor's string and number scanners,
 * no tree), which takes every well-formed text of ordinary shape.
 * Anything it does not take -- every error, and a few edge cases -- goes the
 * cJSON way described next, so errors and their offsets are that path's.
 *
 * The cJSON path parses with cJSON and walks the tree into Lua values. cJSON keeps
 * numbers only as doubles and is lenient in places RFC 8259 is not, so the
 * walk keeps a cursor into the source text in document order: it re-reads
 * each number literal (integers come out exact, up to int64) and each string
 * (UTF-8 is validated, raw control characters rejected), and checks the
 * whitespace cJSON skipped. When cJSON rejects the text, a small recognizer
 * finds the first error and its byte offset, because cJSON's own error
 * position is approximate (it points at the last byte for a truncated text).
 * A large text is handed to cJSON in pieces (see decode_split), so that no
 * tree is ever larger than a few cache-sized pieces.
 *
 * No process-wide state: cJSON's allocator hooks are left alone (they are
 * shared with every other cJSON user in the process), and nothing here is
 * mutable outside one call's stack and Lua state, so independent lua_States
 * may decode and encode on several threads at once.
 *
 * Choices where RFC 8259 or the issue leave room:
 * - Decoded arrays carry the marker metatable array_mt (so an empty one
 *   re-encodes as []); decoded objects carry none, which is cheaper, and an
 *   empty table with no marker encodes as {}. JSON null is the light
 *   userdata NULL, core.null, in arrays and objects alike.
 * - Object keys are written in lua_next order (fast, not deterministic);
 *   encode(v, {sort_keys = true}) sorts them by bytes at every level.
 * - An integral float is written without a fraction ("30"); it decodes as
 *   the integer of the same value. "-0" decodes as the float -0.0.
 * - Error offsets are 0-based byte offsets into the text (a UTF-8 byte order
 *   mark, which is skipped, counts). A repeated object key: the last wins.
 * - max_depth (default 512) may be 1..1000: cJSON cannot nest deeper.
 */
#include "knox.h"

#include <cjson/cJSON.h>

#include <langinfo.h>
#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_MT "knox.json.array"
#define OBJECT_MT "knox.json.object"
#define GUARD_MT "knox.json.tree"

#define DEFAULT_DEPTH 512
/* cJSON refuses to nest deeper than this compile-time limit, so a larger
 * max_depth could not be honoured; ours applies on top of it. */
#define DEPTH_LIMIT CJSON_NESTING_LIMIT

/* ------------------------------------------------------------------ */
/* Shared                                                              */
/* ------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence starting at p (p[0] >= 0x80)
 * within n bytes, or 0 when it is malformed, overlong, a surrogate or
 * beyond U+10FFFF. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
  unsigned c = p[0];
  if (c < 0xC2) return 0;
  if (c < 0xE0) return (n >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
  if (c < 0xF0) {
    if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;
    if (c == 0xED && p[1] > 0x9F) return 0;
    return 3;
  }
  if (c < 0xF5) {
    if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
        (p[3] & 0xC0) != 0x80) return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;
    if (c == 0xF4 && p[1] > 0x8F) return 0;
    return 4;
  }
  return 0;
}

/* The decimal point printf and strtod use on this thread (LC_NUMERIC).
 * nl_langinfo, not localeconv: localeconv fills one static struct shared
 * by every thread of the process. */
static const char *radix_point(void)
{
  const char *dp = nl_langinfo(RADIXCHAR);
  return dp != NULL ? dp : ".";
}

/* Reads an integer option in [1, DEPTH_LIMIT] or a boolean option from the
 * options table at arg (nil or absent means defaults). Unknown keys and bad
 * values are programmer errors: "bad argument". */
static void read_options(lua_State *L, int arg, int *max_depth, int *sort_keys)
{
  if (lua_isnoneornil(L, arg)) return;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (k != NULL && strcmp(k, "max_depth") == 0) {
      int isint = 0;
      lua_Integer v = lua_tointegerx(L, -1, &isint);
      if (!isint || v < 1 || v > DEPTH_LIMIT) {
        luaL_argerror(L, arg, lua_pushfstring(L,
          "option 'max_depth' must be an integer from 1 to %d", DEPTH_LIMIT));
      }
      *max_depth = (int)v;
    } else if (k != NULL && sort_keys != NULL && strcmp(k, "sort_keys") == 0) {
      luaL_argexpected(L, lua_type(L, -1) == LUA_TBOOLEAN, arg, "boolean option 'sort_keys'");
      *sort_keys = lua_toboolean(L, -1);
    } else {
      luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'",
        k != NULL ? k : luaL_typename(L, -2)));
    }
    lua_pop(L, 1);
  }
}

/* ------------------------------------------------------------------ */
/* Encoder                                                             */
/* ------------------------------------------------------------------ */

struct enc {
  lua_State *L;
  char *buf;              /* memory of the userdata at stack index slot */
  size_t len, cap;
  int slot;
  int max_depth;
  int sort_keys;
  const void *array_mt, *object_mt;
};

/* One table being encoded: the chain up to the root gives cycle checks and
 * the key path in error messages. */
struct frame {
  const struct frame *up;
  const void *table;
  int key;                /* stack index of the current string key, or 0 */
  lua_Integer index;      /* current array index when key == 0 */
};

/* Why not a luaL_Buffer: Lua 5.4's buffer must sit at the top of the stack
 * at every buffer operation, while this recursive encoder keeps lua_next
 * keys and values above it. This buffer lives in a full userdata at a fixed
 * stack slot instead: still owned by the GC (nothing leaks when an error
 * unwinds), grown by doubling. */
static char *enc_grow(struct enc *e, size_t n)
{
  if (n > ((size_t)-1) / 4 - e->len) luaL_error(e->L, "not enough memory");
  size_t cap = e->cap * 2;
  while (cap < e->len + n) cap *= 2;
  char *nb = lua_newuserdatauv(e->L, cap, 0);
  memcpy(nb, e->buf, e->len);
  lua_replace(e->L, e->slot);
  e->buf = nb;
  e->cap = cap;
  return nb + e->len;
}

static inline char *enc_reserve(struct enc *e, size_t n)
{
  if (e->cap - e->len >= n) return e->buf + e->len;
  return enc_grow(e, n);
}

static inline void enc_put(struct enc *e, const char *s, size_t n)
{
  memcpy(enc_reserve(e, n), s, n);
  e->len += n;
}

static inline void enc_char(struct enc *e, char c)
{
  *enc_reserve(e, 1) = c;
  e->len++;
}

/* Appends t[key] at stack index k to a key path: .name for identifiers,
 * otherwise ["..."] with unprintable bytes escaped, cut at 48 bytes. */
static void path_add_key(luaL_Buffer *b, lua_State *L, int k)
{
  size_t n;
  const unsigned char *s = (const unsigned char *)lua_tolstring(L, k, &n);
  int ident = n > 0 && n <= 48 && !(s[0] >= '0' && s[0] <= '9');
  for (size_t i = 0; ident && i < n; i++) {
    unsigned c = s[i];
    ident = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  }
  if (ident) {
    luaL_addchar(b, '.');
    luaL_addlstring(b, (const char *)s, n);
    return;
  }
  luaL_addstring(b, "[\"");
  for (size_t i = 0; i < n && i < 48; i++) {
    unsigned c = s[i];
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      luaL_addchar(b, (char)c);
    } else {
      char hex[8];
      snprintf(hex, sizeof hex, "\\x%02X", c);
      luaL_addstring(b, hex);
    }
  }
  if (n > 48) luaL_addstring(b, "...");
  luaL_addstring(b, "\"]");
}

/* Pushes the key path of the value being encoded inside frame f (the root
 * value when f is NULL), e.g. value.devices[3].tags. Indices are Lua's. */
static void push_path(lua_State *L, const struct frame *f)
{
  const struct frame *chain[DEPTH_LIMIT + 2];
  int n = 0;
  for (; f != NULL && n < DEPTH_LIMIT + 2; f = f->up) chain[n++] = f;
  int total = n, skip = n > 20 ? n - 20 : 0;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "value");
  while (n-- > 0) {
    /* a very deep path keeps its first 8 and last 12 steps */
    if (n == 11 && skip > 0) {
      lua_pushfstring(L, "...(%d more)...", skip);
      luaL_addvalue(&b);
    }
    if (n >= 12 && total - n > 8) {
      continue;
    }
    if (chain[n]->key != 0) {
      path_add_key(&b, L, chain[n]->key);
    } else {
      lua_pushfstring(L, "[%I]", (LUAI_UACINT)chain[n]->index);
      luaL_addvalue(&b);
    }
  }
  luaL_pushresult(&b);
}

/* Raises knox.Error kind "usage": "JSON encode: <what> at <path>", with the
 * path also in field "path". Never includes the offending value. */
static int enc_fail(struct enc *e, const struct frame *f, const char *fmt, ...)
{
  lua_State *L = e->L;
  luaL_checkstack(L, 8, NULL);
  va_list ap;
  va_start(ap, fmt);
  const char *what = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  push_path(L, f);
  const char *path = lua_tostring(L, -1);
  const char *msg = lua_pushfstring(L, "JSON encode: %s at %s", what, path);
  knox_error_new(L, "usage", msg);
  knox_error_setstr(L, "path", path);
  return lua_error(L);
}

/* Bytes that go into a JSON string as they are: printable ASCII other than
 * '"' and '\\' (control characters are escaped, non-ASCII is validated). */
static const unsigned char str_plain[256] = {
  ['\x20'] = 1, ['\x21'] = 1, ['\x23'] = 1, ['\x24'] = 1, ['\x25'] = 1, ['\x26'] = 1, ['\x27'] = 1,
  ['\x28'] = 1, ['\x29'] = 1, ['\x2a'] = 1, ['\x2b'] = 1, ['\x2c'] = 1, ['\x2d'] = 1, ['\x2e'] = 1,
  ['\x2f'] = 1, ['\x30'] = 1, ['\x31'] = 1, ['\x32'] = 1, ['\x33'] = 1, ['\x34'] = 1, ['\x35'] = 1,
  ['\x36'] = 1, ['\x37'] = 1, ['\x38'] = 1, ['\x39'] = 1, ['\x3a'] = 1, ['\x3b'] = 1, ['\x3c'] = 1,
  ['\x3d'] = 1, ['\x3e'] = 1, ['\x3f'] = 1, ['\x40'] = 1, ['\x41'] = 1, ['\x42'] = 1, ['\x43'] = 1,
  ['\x44'] = 1, ['\x45'] = 1, ['\x46'] = 1, ['\x47'] = 1, ['\x48'] = 1, ['\x49'] = 1, ['\x4a'] = 1,
  ['\x4b'] = 1, ['\x4c'] = 1, ['\x4d'] = 1, ['\x4e'] = 1, ['\x4f'] = 1, ['\x50'] = 1, ['\x51'] = 1,
  ['\x52'] = 1, ['\x53'] = 1, ['\x54'] = 1, ['\x55'] = 1, ['\x56'] = 1, ['\x57'] = 1, ['\x58'] = 1,
  ['\x59'] = 1, ['\x5a'] = 1, ['\x5b'] = 1, ['\x5d'] = 1, ['\x5e'] = 1, ['\x5f'] = 1, ['\x60'] = 1,
  ['\x61'] = 1, ['\x62'] = 1, ['\x63'] = 1, ['\x64'] = 1, ['\x65'] = 1, ['\x66'] = 1, ['\x67'] = 1,
  ['\x68'] = 1, ['\x69'] = 1, ['\x6a'] = 1, ['\x6b'] = 1, ['\x6c'] = 1, ['\x6d'] = 1, ['\x6e'] = 1,
  ['\x6f'] = 1, ['\x70'] = 1, ['\x71'] = 1, ['\x72'] = 1, ['\x73'] = 1, ['\x74'] = 1, ['\x75'] = 1,
  ['\x76'] = 1, ['\x77'] = 1, ['\x78'] = 1, ['\x79'] = 1, ['\x7a'] = 1, ['\x7b'] = 1, ['\x7c'] = 1,
  ['\x7d'] = 1, ['\x7e'] = 1, ['\x7f'] = 1,
};

/* Writes s as a JSON string per RFC 8259: '"' and '\\' escaped, control
 * characters as \b \f \n \r \t or \u00XX, everything else (including '/')
 * as is. Raises "usage" for invalid UTF-8. */
static void enc_string(struct enc *e, const char *s, size_t n, const struct frame *f, int is_key)
{
  static const char hexd[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  /* invariant: room for the rest of the input and the closing quote */
  enc_reserve(e, n + 2);
  char *o = e->buf + e->len;
  *o++ = '"';
  while (p < end) {
    const unsigned char *run = p;
    while (p < end && str_plain[*p]) p++;
    memcpy(o, run, (size_t)(p - run));
    o += p - run;
    if (p == end) break;
    unsigned c = *p;
    if (c >= 0x80) {
      size_t k = utf8_len(p, (size_t)(end - p));
      if (k == 0) {
        e->len = (size_t)(o - e->buf);
        enc_fail(e, f, "%s is not valid UTF-8 (byte %d)", is_key ? "object key" : "string",
                 (int)(p - (const unsigned char *)s) + 1);
      }
      memcpy(o, p, k);
      o += k;
      p += k;
      continue;
    }
    e->len = (size_t)(o - e->buf);
    enc_reserve(e, (size_t)(end - p) + 7);
    o = e->buf + e->len;
    *o++ = '\\';
    switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '\b': *o++ = 'b'; break;
    case '\f': *o++ = 'f'; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    default:
      *o++ = 'u';
      *o++ = '0';
      *o++ = '0';
      *o++ = hexd[c >> 4];
      *o++ = hexd[c & 15];
    }
    p++;
  }
  *o++ = '"';
  e->len = (size_t)(o - e->buf);
}

/* Decimal digits of v into out (at least 24 bytes); returns the length. */
static size_t fmt_integer(char *out, lua_Integer v)
{
  char tmp[24];
  size_t n = 0, k = 0;
  lua_Unsigned u = v < 0 ? 0u - (lua_Unsigned)v : (lua_Unsigned)v;
  do {
    tmp[n++] = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u != 0);
  if (v < 0) out[k++] = '-';
  while (n > 0) out[k++] = tmp[--n];
  return k;
}

static const double pow10_exact[] = {
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* Shortest decimal text (out: at least 40 bytes) that reads back as exactly
 * x, x finite. Returns the length. An integral float prints without a
 * fraction ("30", "-0"): JSON has one number type, and Knox fields declared
 * int32 reject "30.0". decode gives such a literal back as an integer of the
 * same value ("-0" as the float -0.0, which no integer can hold). */
static size_t fmt_float(char *out, double x)
{
  if (x == 0) {
    if (signbit(x)) {
      memcpy(out, "-0", 3);
      return 2;
    }
    memcpy(out, "0", 2);
    return 1;
  }
  /* Fast exact path for plain decimals: the fewest fraction digits k such
   * that m / 10^k == x with m and 10^k exact doubles. IEEE division rounds
   * correctly, as does strtod, so that text reads back as x. */
  double ax = fabs(x);
  if (ax >= 1e-4 && ax < 1e15) {
    for (int k = 0; k <= 18; k++) {
      double r = x * pow10_exact[k];
      if (fabs(r) >= 9007199254740992.0) break;
      /* a guess, checked below (core.so does not link libm: no nearbyint) */
      double m = (double)(long long)(r < 0 ? r - 0.5 : r + 0.5);
      if (m / pow10_exact[k] != x) continue;
      char digits[24];
      size_t nd = fmt_integer(digits, (lua_Integer)fabs(m));
      size_t o = 0;
      if (m < 0) out[o++] = '-';
      if (k == 0) {
        memcpy(out + o, digits, nd);
        o += nd;
      } else if (nd <= (size_t)k) {
        out[o++] = '0';
        out[o++] = '.';
        for (size_t z = nd; z < (size_t)k; z++) out[o++] = '0';
        memcpy(out + o, digits, nd);
        o += nd;
      } else {
        memcpy(out + o, digits, nd - (size_t)k);
        o += nd - (size_t)k;
        out[o++] = '.';
        memcpy(out + o, digits + nd - k, (size_t)k);
        o += (size_t)k;
      }
      out[o] = '\0';
      return o;
    }
  }
  /* General path: %.15g is the shortest for a normal double when any text
   * of 15 digits or fewer reads back (DBL_DIG = 15); otherwise 16, then 17,
   * which always reads back. Subnormals have fewer significant bits, so
   * try every precision for them. (%g switches to exponent notation at
   * 1e17 and above, and below 1e-4.) */
  int prec = ax < 2.2250738585072014e-308 ? 1 : 15;
  /* the fast path finds every text of 15 significant digits or fewer */
  if (ax >= 1e-4 && ax < 1e15) prec = 16;
  int n = 0;
  for (; prec <= 17; prec++) {
    n = snprintf(out, 40, "%.*g", prec, x);
    if (strtod(out, NULL) == x) break;
  }
  /* printf and strtod follow LC_NUMERIC; JSON wants '.' */
  const char *dp = radix_point();
  size_t dl = strlen(dp);
  if (dl > 0 && !(dl == 1 && dp[0] == '.')) {
    char *at = strstr(out, dp);
    if (at != NULL) {
      *at = '.';
      memmove(at + 1, at + dl, strlen(at + dl) + 1);
      n -= (int)dl - 1;
    }
  }
  return (size_t)n;
}

static void enc_value(struct enc *e, int idx, const struct frame *f, int depth);

/* The key at stack index k of the table encoded in frame fr has an
 * unsupported type for the table's shape; raises. */
static int enc_bad_key(struct enc *e, const struct frame *fr, int k, int shape_object)
{
  lua_State *L = e->L;
  if (lua_isinteger(L, k) || lua_type(L, k) == LUA_TSTRING) {
    if (shape_object == 1) return enc_fail(e, fr->up, "table marked as a JSON object has an integer key");
    if (shape_object == 0) return enc_fail(e, fr->up, "table marked as a JSON array has a string key");
    return enc_fail(e, fr->up, "table mixes integer and string keys");
  }
  if (lua_type(L, k) == LUA_TNUMBER) return enc_fail(e, fr->up, "table has a non-integer number key");
  return enc_fail(e, fr->up, "table has a %s key (only string or integer keys can be encoded)",
                  luaL_typename(L, k));
}

struct skey {
  const char *s;
  size_t n;
  lua_Integer i;        /* position in the anchor table */
};

static int skey_cmp(const void *a, const void *b)
{
  const struct skey *x = a, *y = b;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->s, y->s, n);
  if (c != 0) return c;
  return x->n < y->n ? -1 : x->n > y->n;
}

/* Object with sort_keys: the pair from lua_next is on the stack. Keys are
 * anchored in a fresh table so the sorted pointers stay valid. */
static void enc_object_sorted(struct enc *e, int idx, struct frame *fr, int depth, int shape)
{
  lua_State *L = e->L;
  struct skey local[32];
  lua_pop(L, 2);
  lua_createtable(L, 16, 0);
  int anchor = lua_gettop(L);
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) enc_bad_key(e, fr, lua_gettop(L) - 1, shape);
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, anchor, ++n);
  }
  struct skey *ks = local;
  if (n > 32) ks = lua_newuserdatauv(L, (size_t)n * sizeof *ks, 0);
  else lua_pushnil(L);   /* keeps the stack layout the same */
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, anchor, i + 1);
    ks[i].s = lua_tolstring(L, -1, &ks[i].n);
    ks[i].i = i + 1;
    lua_pop(L, 1);
  }
  qsort(ks, (size_t)n, sizeof *ks, skey_cmp);
  enc_char(e, '{');
  for (lua_Integer i = 0; i < n; i++) {
    if (i > 0) enc_char(e, ',');
    lua_rawgeti(L, anchor, ks[i].i);
    fr->key = lua_gettop(L);
    enc_string(e, ks[i].s, ks[i].n, fr->up, 1);
    enc_char(e, ':');
    lua_pushvalue(L, -1);
    lua_rawget(L, idx);
    enc_value(e, lua_gettop(L), fr, depth);
    lua_pop(L, 2);
  }
  enc_char(e, '}');
  lua_pop(L, 2);
}

static void enc_table(struct enc *e, int idx, const struct frame *up, int depth)
{
  lua_State *L = e->L;
  const void *t = lua_topointer(L, idx);
  if (depth > e->max_depth) enc_fail(e, up, "tables nested deeper than %d", e->max_depth);
  for (const struct frame *g = up; g != NULL; g = g->up) {
    if (g->table == t) enc_fail(e, up, "cycle: a table contains itself");
  }
  luaL_checkstack(L, 8, "JSON encode");
  int shape = -1;       /* 0 array, 1 object, -1 unmarked */
  if (lua_getmetatable(L, idx)) {
    const void *mt = lua_topointer(L, -1);
    lua_pop(L, 1);
    if (mt == e->array_mt) shape = 0;
    else if (mt == e->object_mt) shape = 1;
  }
  struct frame fr = {up, t, 0, 0};
  lua_pushnil(L);
  if (!lua_next(L, idx)) {
    enc_put(e, shape == 0 ? "[]" : "{}", 2);
    return;
  }
  int k = lua_gettop(L) - 1;
  if (lua_type(L, k) == LUA_TSTRING && shape != 0) {
    if (e->sort_keys) {
      enc_object_sorted(e, idx, &fr, depth, shape);
      return;
    }
    enc_char(e, '{');
    fr.key = k;
    int first = 1;
    do {
      if (lua_type(L, k) != LUA_TSTRING) enc_bad_key(e, &fr, k, shape);
      if (!first) enc_char(e, ',');
      first = 0;
      size_t n;
      const char *s = lua_tolstring(L, k, &n);
      enc_string(e, s, n, up, 1);
      enc_char(e, ':');
      enc_value(e, k + 1, &fr, depth);
      lua_pop(L, 1);
    } while (lua_next(L, idx));
    enc_char(e, '}');
    return;
  }
  if (!lua_isinteger(L, k) || shape == 1) enc_bad_key(e, &fr, k, shape);
  /* An array: keys exactly 1..n. Check them all before writing. */
  lua_Integer n = 0, max = 0;
  do {
    if (!lua_isinteger(L, k)) enc_bad_key(e, &fr, k, shape);
    lua_Integer i = lua_tointeger(L, k);
    if (i < 1) max = -1;
    if (max >= 0 && i > max) max = i;
    n++;
    lua_pop(L, 1);
  } while (lua_next(L, idx));
  if (max != n) {
    enc_fail(e, up, "sparse array: integer keys must be 1..n without holes (%I keys, %s %I)",
             (LUAI_UACINT)n, max < 0 ? "a key below" : "largest", (LUAI_UACINT)(max < 0 ? 1 : max));
  }
  enc_char(e, '[');
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1) enc_char(e, ',');
    fr.index = i;
    lua_rawgeti(L, idx, i);
    enc_value(e, lua_gettop(L), &fr, depth);
    lua_pop(L, 1);
  }
  enc_char(e, ']');
}

/* Encodes the value at stack index idx (absolute), found inside frame f. */
static void enc_value(struct enc *e, int idx, const struct frame *f, int depth)
{
  lua_State *L = e->L;
  char num[48];
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    enc_put(e, "null", 4);
    break;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, idx)) enc_put(e, "true", 4);
    else enc_put(e, "false", 5);
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      enc_put(e, num, fmt_integer(num, lua_tointeger(L, idx)));
    } else {
      lua_Number x = lua_tonumber(L, idx);
      if (!isfinite(x)) enc_fail(e, f, "%s cannot be encoded", isnan(x) ? "NaN" : "infinity");
      enc_put(e, num, fmt_float(num, (double)x));
    }
    break;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    enc_string(e, s, n, f, 0);
    break;
  }
  case LUA_TTABLE:
    enc_table(e, idx, f, depth + 1);
    break;
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) {
      enc_put(e, "null", 4);
      break;
    }
    enc_fail(e, f, "a light userdata other than knox.null cannot be encoded");
    break;
  default:
    enc_fail(e, f, "a %s cannot be encoded", luaL_typename(L, idx));
  }
}

/* Pushes the buffer userdata and sets up e. */
static void enc_init(struct enc *e, lua_State *L, int max_depth, int sort_keys)
{
  e->L = L;
  e->len = 0;
  e->cap = 1024;
  e->buf = lua_newuserdatauv(L, e->cap, 0);
  e->slot = lua_gettop(L);
  e->max_depth = max_depth;
  e->sort_keys = sort_keys;
  luaL_getmetatable(L, ARRAY_MT);
  e->array_mt = lua_topointer(L, -1);
  luaL_getmetatable(L, OBJECT_MT);
  e->object_mt = lua_topointer(L, -1);
  lua_pop(L, 2);
}

/* Encodes the value at idx and leaves the text where the buffer was. */
static void encode_at(lua_State *L, int idx, int max_depth, int sort_keys)
{
  struct enc e;
  idx = lua_absindex(L, idx);
  enc_init(&e, L, max_depth, sort_keys);
  enc_value(&e, idx, NULL, 0);
  lua_pushlstring(L, e.buf, e.len);
  lua_replace(L, e.slot);
}

void knox_json_encode(lua_State *L, int idx)
{
  encode_at(L, idx, DEFAULT_DEPTH, 0);
}

/* json.encode(v [, opts]): [-0, +1, e] compact JSON text of v.
 * opts.sort_keys (default false): object keys in byte order, for
 * deterministic output; otherwise in lua_next order. opts.max_depth
 * (default 512, at most 1000): tables nested deeper are refused.
 * Raises knox.Error kind "usage" (message and field path say what and
 * where) for NaN/inf, cycles, sparse arrays, mixed or unsupported keys,
 * functions/userdata/threads, invalid UTF-8, too deep nesting; "bad
 * argument" for a missing value or bad options. */
static int l_encode(lua_State *L)
{
  int max_depth = DEFAULT_DEPTH, sort_keys = 0;
  luaL_checkany(L, 1);
  read_options(L, 2, &max_depth, &sort_keys);
  lua_settop(L, 1);
  encode_at(L, 1, max_depth, sort_keys);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Decoder                                                             */
/* ------------------------------------------------------------------ */

enum derr {
  DE_NONE, DE_EMPTY, DE_END, DE_UTF8, DE_CTRL, DE_ESCAPE, DE_SURROGATE, DE_CHAR,
  DE_LITERAL, DE_NUMBER, DE_RANGE, DE_DEPTH, DE_TRAILING, DE_KEY, DE_COLON,
  DE_AFTER_ITEM, DE_AFTER_MEMBER, DE_PARSER,
};

static const char *const derr_text[] = {
  "no error", "empty input", "unexpected end of input", "invalid UTF-8",
  "unescaped control character in string", "invalid escape sequence",
  "lone surrogate in \\u escape", "unexpected character", "invalid literal",
  "invalid number", "number out of range", "nesting deeper than %d",
  "unexpected text after the JSON value", "expected a string key", "expected ':'",
  "expected ',' or ']'", "expected ',' or '}'", "the JSON parser (cJSON) failed",
};

/* Raises knox.Error kind "decode": "JSON decode: <what> at offset N" with
 * field offset = N (bytes before the error, from 0). Quotes at most the one
 * offending character when it is printable ASCII, never more of the input. */
static int dec_raise(lua_State *L, const unsigned char *s, size_t len, int code,
                     size_t off, int max_depth)
{
  char what[64], extra[32] = "";
  luaL_checkstack(L, 4, NULL);
  if (code == DE_DEPTH) snprintf(what, sizeof what, derr_text[code], max_depth);
  else snprintf(what, sizeof what, "%s", derr_text[code]);
  if ((code == DE_CHAR || code == DE_KEY || code == DE_COLON || code == DE_AFTER_ITEM ||
       code == DE_AFTER_MEMBER || code == DE_TRAILING) && off < len) {
    unsigned c = s[off];
    if (c > 0x20 && c < 0x7F) snprintf(extra, sizeof extra, " ('%c')", (char)c);
    else snprintf(extra, sizeof extra, " (byte 0x%02X)", c);
  }
  const char *msg = lua_pushfstring(L, "JSON decode: %s%s at offset %I", what, extra,
                                    (LUAI_UACINT)off);
  knox_error_new(L, "decode", msg);
  knox_error_setint(L, "offset", (lua_Integer)off);
  return lua_error(L);
}

static int is_ws(unsigned c)
{
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static int hex4(const unsigned char *p, unsigned *out)
{
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned c = p[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return 0;
    v = v << 4 | d;
  }
  *out = v;
  return 1;
}

#define STR_ESC 1u   /* the string has escapes */
#define STR_NUL 2u   /* ... one of which is \u0000 */

/* Checks the string token whose opening quote is at *pos: escapes, \u
 * surrogate pairs, UTF-8, no raw control characters. On success *pos is
 * past the closing quote; on error it is the error's offset. */
static int scan_string(const unsigned char *s, size_t len, size_t *pos, unsigned *flags)
{
  size_t p = *pos + 1;
  unsigned f = 0;
  for (;;) {
    while (p < len && str_plain[s[p]]) p++;
    if (p >= len) {
      *pos = len;
      return DE_END;
    }
    unsigned c = s[p];
    if (c == '"') {
      *pos = p + 1;
      *flags = f;
      return DE_NONE;
    }
    if (c == '\\') {
      f |= STR_ESC;
      if (p + 1 >= len) {
        *pos = len;
        return DE_END;
      }
      c = s[p + 1];
      if (c != 'u') {
        if (strchr("\"\\/bfnrt", (int)c) == NULL || c == 0) {
          *pos = p;
          return DE_ESCAPE;
        }
        p += 2;
        continue;
      }
      unsigned cp, lo;
      if (len - p < 6) {
        *pos = len;
        return DE_END;
      }
      if (!hex4(s + p + 2, &cp)) {
        *pos = p;
        return DE_ESCAPE;
      }
      if (cp == 0) f |= STR_NUL;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        /* a high surrogate must be followed by an escaped low one */
        if (len - p < 12) {
          int prefix = (len - p < 7 || s[p + 6] == '\\') && (len - p < 8 || s[p + 7] == 'u');
          *pos = prefix ? len : p;
          return prefix ? DE_END : DE_SURROGATE;
        }
        if (s[p + 6] != '\\' || s[p + 7] != 'u') {
          *pos = p;
          return DE_SURROGATE;
        }
        if (!hex4(s + p + 8, &lo)) {
          *pos = p + 6;
          return DE_ESCAPE;
        }
        if (lo < 0xDC00 || lo > 0xDFFF) {
          *pos = p;
          return DE_SURROGATE;
        }
        p += 12;
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        *pos = p;
        return DE_SURROGATE;
      } else {
        p += 6;
      }
    } else if (c < 0x20) {
      *pos = p;
      return DE_CTRL;
    } else {
      size_t k = utf8_len(s + p, len - p);
      if (k == 0) {
        *pos = p;
        return DE_UTF8;
      }
      p += k;
    }
  }
}

struct num {
  int is_int;           /* no fraction, no exponent */
  int neg;
  int overflow;         /* magnitude beyond 64 bits */
  uint64_t mag;
};

/* Checks the number token at *pos against RFC 8259's grammar (cJSON also
 * takes "01", "1." and "-01"); reads the magnitude of integer literals. */
static int scan_number(const unsigned char *s, size_t len, size_t *pos, struct num *nm)
{
  size_t p = *pos;
  nm->is_int = 1;
  nm->neg = 0;
  nm->overflow = 0;
  nm->mag = 0;
  if (s[p] == '-') {
    nm->neg = 1;
    p++;
  }
  if (p >= len) goto end;
  if (s[p] == '0') {
    p++;
    if (p < len && s[p] >= '0' && s[p] <= '9') goto bad;  /* leading zero */
  } else if (s[p] >= '1' && s[p] <= '9') {
    uint64_t m = 0;
    for (; p < len && s[p] >= '0' && s[p] <= '9'; p++) {
      unsigned d = s[p] - '0';
      if (m > (UINT64_MAX - d) / 10) nm->overflow = 1;
      else m = m * 10 + d;
    }
    nm->mag = m;
  } else {
    goto bad;
  }
  if (p < len && s[p] == '.') {
    nm->is_int = 0;
    p++;
    if (p >= len) goto end;
    if (!(s[p] >= '0' && s[p] <= '9')) goto bad;
    while (p < len && s[p] >= '0' && s[p] <= '9') p++;
  }
  if (p < len && (s[p] == 'e' || s[p] == 'E')) {
    nm->is_int = 0;
    p++;
    if (p < len && (s[p] == '+' || s[p] == '-')) p++;
    if (p >= len) goto end;
    if (!(s[p] >= '0' && s[p] <= '9')) goto bad;
    while (p < len && s[p] >= '0' && s[p] <= '9') p++;
  }
  *pos = p;
  return DE_NONE;
end:
  *pos = len;
  return DE_END;
bad:
  *pos = p;
  return DE_NUMBER;
}

/* Whether the integer literal fits a lua_Integer; stores it. "-0" does
 * not: no integer holds the sign, so it stays the float -0.0. */
static int num_integer(const struct num *nm, lua_Integer *out)
{
  if (!nm->is_int || nm->overflow) return 0;
  if (nm->neg) {
    if (nm->mag == 0 || nm->mag > (uint64_t)LUA_MAXINTEGER + 1) return 0;
    *out = (lua_Integer)(0u - (lua_Unsigned)nm->mag);
    return 1;
  }
  if (nm->mag > (uint64_t)LUA_MAXINTEGER) return 0;
  *out = (lua_Integer)nm->mag;
  return 1;
}

/* Whether the number literal s[0..n) overflows a double. Only for the
 * diagnosis of rejected text (cJSON gives the value otherwise); strtod is
 * given the locale's decimal point, as cJSON does. */
static int literal_overflows(const unsigned char *s, size_t n)
{
  char small[128];
  char *b = n < sizeof small ? small : malloc(n + 1);
  if (b == NULL) return 0;
  const char *dp = radix_point();
  memcpy(b, s, n);
  b[n] = '\0';
  char *dot = memchr(b, '.', n);
  if (dot != NULL && dp[0] != '\0' && dp[1] == '\0') *dot = dp[0];
  double x = strtod(b, NULL);
  if (b != small) free(b);
  return isinf(x);
}

/* The error at p where something else was expected: invalid UTF-8 when
 * that is what is there, else code. */
static int unexpected(const unsigned char *s, size_t len, size_t p, int code)
{
  if (s[p] >= 0x80 && utf8_len(s + p, len - p) == 0) return DE_UTF8;
  return code;
}

static int scan_literal(const unsigned char *s, size_t len, size_t *pos, const char *word)
{
  size_t p = *pos;
  for (size_t i = 0; word[i] != '\0'; i++) {
    if (p + i >= len) {
      *pos = len;
      return DE_END;
    }
    if (s[p + i] != (unsigned char)word[i]) return DE_LITERAL;
  }
  *pos = p + strlen(word);
  return DE_NONE;
}

/* A full RFC 8259 recognizer, run only on text cJSON rejected (or accepted
 * with trailing text): it finds the first error in document order and its
 * exact offset, which cJSON's return_parse_end only approximates. Returns
 * the error code (DE_NONE if it finds none) and stores the offset. */
static int diagnose(const unsigned char *s, size_t len, size_t start, int max_depth, size_t *at)
{
  enum { S_VALUE, S_FIRST_VALUE, S_FIRST_KEY, S_KEY, S_COLON, S_AFTER } st = S_VALUE;
  unsigned char open[DEPTH_LIMIT + 1];
  int depth = 0, err;
  size_t p = start;
  for (;;) {
    while (p < len && is_ws(s[p])) p++;
    if (p >= len) {
      *at = len;
      if (depth == 0 && st == S_AFTER) return DE_NONE;
      return depth == 0 && st == S_VALUE ? DE_EMPTY : DE_END;
    }
    unsigned c = s[p];
    *at = p;
    switch (st) {
    case S_AFTER:
      if (depth == 0) return DE_TRAILING;
      if (c == ',') {
        st = open[depth - 1] == '[' ? S_VALUE : S_KEY;
        p++;
      } else if (c == (open[depth - 1] == '[' ? ']' : '}')) {
        depth--;
        p++;
      } else {
        return unexpected(s, len, p, open[depth - 1] == '[' ? DE_AFTER_ITEM : DE_AFTER_MEMBER);
      }
      continue;
    case S_COLON:
      if (c != ':') return unexpected(s, len, p, DE_COLON);
      p++;
      st = S_VALUE;
      continue;
    case S_FIRST_KEY:
      if (c == '}') {
        depth--;
        p++;
        st = S_AFTER;
        continue;
      }
      /* fall through */
    case S_KEY: {
      unsigned flags;
      if (c != '"') return unexpected(s, len, p, DE_KEY);
      if ((err = scan_string(s, len, &p, &flags)) != DE_NONE) {
        *at = p;
        return err;
      }
      st = S_COLON;
      continue;
    }
    case S_FIRST_VALUE:
      if (c == ']') {
        depth--;
        p++;
        st = S_AFTER;
        continue;
      }
      /* fall through */
    case S_VALUE:
      break;
    }
    /* a value */
    st = S_AFTER;
    if (c == '[' || c == '{') {
      if (depth >= max_depth) return DE_DEPTH;
      open[depth++] = (unsigned char)c;
      st = c == '[' ? S_FIRST_VALUE : S_FIRST_KEY;
      p++;
      continue;
    }
    if (c == '"') {
      unsigned flags;
      err = scan_string(s, len, &p, &flags);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      struct num nm;
      size_t q = p;
      err = scan_number(s, len, &q, &nm);
      if (err == DE_NONE && (!nm.is_int || nm.overflow) && literal_overflows(s + p, q - p)) {
        err = DE_RANGE;
        q = p;
      }
      p = q;
    } else if (c == 't') {
      err = scan_literal(s, len, &p, "true");
    } else if (c == 'f') {
      err = scan_literal(s, len, &p, "false");
    } else if (c == 'n') {
      err = scan_literal(s, len, &p, "null");
    } else {
      return unexpected(s, len, p, DE_CHAR);
    }
    if (err != DE_NONE) {
      *at = p;
      return err;
    }
  }
}

/* The cJSON tree of one decode call, freed by close (__close, and __gc as
 * a backstop), also when an error unwinds the walk. */
struct guard {
  cJSON *root;
};

/* guard:close(): [-0, +0, -] frees the tree; idempotent. */
static int l_guard_close(lua_State *L)
{
  struct guard *g = luaL_checkudata(L, 1, GUARD_MT);
  if (g->root != NULL) cJSON_Delete(g->root);
  g->root = NULL;
  return 0;
}

struct dec {
  lua_State *L;
  const unsigned char *s;
  size_t len;
  size_t pos;           /* cursor: document order, in step with the walk */
  int max_depth;
  int array_mt;         /* stack index of array_mt */
};

/* Bytes the cursor steps over between values: whitespace and the
 * punctuation cJSON has already checked. */
static const unsigned char cursor_skip[256] = {
  [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [','] = 1, [':'] = 1, [']'] = 1, ['}'] = 1,
};

static void dec_error(const struct dec *d, int code, size_t off)
{
  dec_raise(d->L, d->s, d->len, code, off, d->max_depth);
}

/* First bytes of each kind of token, for dec_next. */
enum { T_STRING = 1, T_NUMBER = 2, T_ARRAY = 4, T_OBJECT = 8, T_TRUE = 16, T_FALSE = 32, T_NULL = 64 };
static const unsigned char token_start[256] = {
  ['"'] = T_STRING, ['-'] = T_NUMBER, ['0'] = T_NUMBER, ['1'] = T_NUMBER, ['2'] = T_NUMBER,
  ['3'] = T_NUMBER, ['4'] = T_NUMBER, ['5'] = T_NUMBER, ['6'] = T_NUMBER, ['7'] = T_NUMBER,
  ['8'] = T_NUMBER, ['9'] = T_NUMBER, ['['] = T_ARRAY, ['{'] = T_OBJECT, ['t'] = T_TRUE,
  ['f'] = T_FALSE, ['n'] = T_NULL,
};

/* Moves the cursor to the next token and checks it is of the kind cJSON
 * says (cJSON skips any byte <= 0x20 as whitespace; JSON allows only
 * four). Returns the token's offset. */
static size_t dec_next(struct dec *d, unsigned kind)
{
  size_t p = d->pos;
  while (p < d->len && cursor_skip[d->s[p]]) p++;
  if (p >= d->len) dec_error(d, DE_PARSER, p);
  if (token_start[d->s[p]] != kind) dec_error(d, unexpected(d->s, d->len, p, DE_CHAR), p);
  d->pos = p;
  return p;
}

/* Writes the decoded string between p and end (checked by scan_string) as
 * a Lua string; only for strings holding \u0000, which cJSON cuts short. */
static void push_unescaped(lua_State *L, const unsigned char *p, const unsigned char *end)
{
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while (p < end) {
    if (*p != '\\') {
      luaL_addchar(&b, (char)*p++);
      continue;
    }
    unsigned c = p[1], cp, lo;
    p += 2;
    switch (c) {
    case 'b': luaL_addchar(&b, '\b'); break;
    case 'f': luaL_addchar(&b, '\f'); break;
    case 'n': luaL_addchar(&b, '\n'); break;
    case 'r': luaL_addchar(&b, '\r'); break;
    case 't': luaL_addchar(&b, '\t'); break;
    case 'u':
      hex4(p, &cp);
      p += 4;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        hex4(p + 2, &lo);
        p += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      if (cp < 0x80) {
        luaL_addchar(&b, (char)cp);
      } else if (cp < 0x800) {
        luaL_addchar(&b, (char)(0xC0 | cp >> 6));
        luaL_addchar(&b, (char)(0x80 | (cp & 0x3F)));
      } else if (cp < 0x10000) {
        luaL_addchar(&b, (char)(0xE0 | cp >> 12));
        luaL_addchar(&b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        luaL_addchar(&b, (char)(0x80 | (cp & 0x3F)));
      } else {
        luaL_addchar(&b, (char)(0xF0 | cp >> 18));
        luaL_addchar(&b, (char)(0x80 | ((cp >> 12) & 0x3F)));
        luaL_addchar(&b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        luaL_addchar(&b, (char)(0x80 | (cp & 0x3F)));
      }
      break;
    default: luaL_addchar(&b, (char)c); break;   /* " \ / */
    }
  }
  luaL_pushresult(&b);
}

/* Pushes the string token at the cursor; text is cJSON's decoded copy. */
static void dec_string(struct dec *d, const char *text)
{
  size_t start = dec_next(d, T_STRING), p = start;
  unsigned flags;
  int err = scan_string(d->s, d->len, &p, &flags);
  if (err != DE_NONE) dec_error(d, err, p);
  if (text == NULL) dec_error(d, DE_PARSER, start);
  /* no escapes: the bytes are in the source, already in cache (cJSON's
   * copy is one more allocation to touch) */
  if (!(flags & STR_ESC)) lua_pushlstring(d->L, (const char *)d->s + start + 1, p - start - 2);
  else if (!(flags & STR_NUL)) lua_pushstring(d->L, text);
  else push_unescaped(d->L, d->s + start + 1, d->s + p - 1);
  d->pos = p;
}

static void dec_value(struct dec *d, const cJSON *node, int depth)
{
  lua_State *L = d->L;
  size_t p;
  switch (node->type & 0xFF) {
  case cJSON_NULL:
    dec_next(d, T_NULL);
    d->pos += 4;
    lua_pushlightuserdata(L, NULL);
    break;
  case cJSON_False:
    dec_next(d, T_FALSE);
    d->pos += 5;
    lua_pushboolean(L, 0);
    break;
  case cJSON_True:
    dec_next(d, T_TRUE);
    d->pos += 4;
    lua_pushboolean(L, 1);
    break;
  case cJSON_Number: {
    struct num nm;
    lua_Integer i;
    size_t start = dec_next(d, T_NUMBER);
    p = start;
    int err = scan_number(d->s, d->len, &p, &nm);
    if (err != DE_NONE) dec_error(d, err, p);
    if (num_integer(&nm, &i)) {
      lua_pushinteger(L, i);
    } else {
      /* a fraction, an exponent, or an integer beyond int64: a float, as
       * Lua's own lexer reads it */
      if (!isfinite(node->valuedouble)) dec_error(d, DE_RANGE, start);
      lua_pushnumber(L, (lua_Number)node->valuedouble);
    }
    d->pos = p;
    break;
  }
  case cJSON_String:
    dec_string(d, node->valuestring);
    break;
  case cJSON_Array: {
    p = dec_next(d, T_ARRAY);
    if (depth >= d->max_depth) dec_error(d, DE_DEPTH, p);
    d->pos = p + 1;
    luaL_checkstack(L, 4, "JSON nesting");
    int n = 0;
    for (const cJSON *c = node->child; c != NULL && n < INT32_MAX; c = c->next) n++;
    lua_createtable(L, n, 0);
    lua_Integer i = 0;
    for (const cJSON *c = node->child; c != NULL; c = c->next) {
      dec_value(d, c, depth + 1);
      lua_rawseti(L, -2, ++i);
    }
    lua_pushvalue(L, d->array_mt);
    lua_setmetatable(L, -2);
    break;
  }
  case cJSON_Object: {
    p = dec_next(d, T_OBJECT);
    if (depth >= d->max_depth) dec_error(d, DE_DEPTH, p);
    d->pos = p + 1;
    luaL_checkstack(L, 4, "JSON nesting");
    int n = 0;
    for (const cJSON *c = node->child; c != NULL && n < INT32_MAX; c = c->next) n++;
    lua_createtable(L, 0, n);
    for (const cJSON *c = node->child; c != NULL; c = c->next) {
      dec_string(d, c->string);
      dec_value(d, c, depth + 1);
      lua_rawset(L, -3);   /* a repeated key: the last one wins */
    }
    break;
  }
  default:
    dec_error(d, DE_PARSER, d->pos);
  }
}

/* decode_split: large texts are parsed in pieces. A cJSON tree of a whole large text is
 * many times the text's size and cold in cache by the time it is walked;
 * cJSON_Delete then visits it once more. So when the text is a container
 * longer than SPLIT_BYTES, decode_split reads that container's own
 * punctuation and keys itself and hands each member value to cJSON on its
 * own (recursing into members that are themselves that large): every tree
 * is small, walked while hot, and freed into malloc's caches for the next
 * one. cJSON still parses every value.
 * The split reader is strict (RFC 8259 whitespace only, and it checks the
 * bytes between a member's last token and cJSON's end), so it accepts no
 * text the whole-text path would refuse, and builds the same values with
 * the same walk. On anything else it gives up (raises inside a protected
 * call) and l_decode runs the whole-text path from the start, which gives
 * the error and offset the whole-text path always gave. */
#ifndef SPLIT_BYTES   /* -DSPLIT_BYTES=2 makes nearly every text split, for testing */
#define SPLIT_BYTES (16 * 1024)
#endif

struct split {
  lua_State *L;
  const unsigned char *s;
  size_t len, pos;
  int max_depth;
  struct guard *g;
};

static void split_fail(lua_State *L)
{
  lua_pushnil(L);
  lua_error(L);
}

static void split_ws(struct split *sp)
{
  while (sp->pos < sp->len && is_ws(sp->s[sp->pos])) sp->pos++;
}

/* Bytes split_fits stops at outside strings, and inside them. */
static const unsigned char fits_out[256] = {
  ['"'] = 1, ['['] = 1, [']'] = 1, ['{'] = 1, ['}'] = 1,
};
static const unsigned char fits_in[256] = {['"'] = 1, ['\\'] = 1};

/* Whether the container starting at p closes within SPLIT_BYTES. Only a
 * size estimate: strings are skipped without checking them. */
static int split_fits(const unsigned char *s, size_t len, size_t p)
{
  size_t lim = len - p > SPLIT_BYTES ? p + SPLIT_BYTES : len;
  int depth = 0;
  for (;;) {
    while (p < lim && !fits_out[s[p]]) p++;
    if (p >= lim) return 0;
    unsigned c = s[p++];
    if (c == '"') {
      for (;;) {
        while (p < lim && !fits_in[s[p]]) p++;
        if (p >= lim) return 0;
        if (s[p] == '"') break;
        p += 2;
      }
      p++;
    } else if (c == '[' || c == '{') {
      depth++;
    } else if (--depth == 0) {
      return 1;
    }
  }
}

/* Pushes the value at sp->pos (a token's first byte) parsed by cJSON on
 * its own, and moves past it. */
static void split_piece(struct split *sp, int depth)
{
  lua_State *L = sp->L;
  const char *end = NULL;
  const char *at = (const char *)sp->s + sp->pos;
  sp->g->root = cJSON_ParseWithLengthOpts(at, sp->len - sp->pos, &end, 0);
  size_t stop = end != NULL ? (size_t)(end - (const char *)sp->s) : 0;
  if (sp->g->root == NULL || end == NULL) split_fail(L);
  struct dec d = {L, sp->s, sp->len, sp->pos, sp->max_depth, 3};
  dec_value(&d, sp->g->root, depth);
  cJSON_Delete(sp->g->root);
  sp->g->root = NULL;
  /* what the whole-text walk would have stepped over before its next token */
  for (size_t p = d.pos; p < stop; p++) {
    if (!cursor_skip[sp->s[p]]) split_fail(L);
  }
  sp->pos = stop;
}

/* check: 0 to parse the value as one piece, 1 to split it if it is a
 * large container, 2 when it is known to be one. */
static void split_value(struct split *sp, int depth, int check)
{
  lua_State *L = sp->L;
  const unsigned char *s = sp->s;
  unsigned c = s[sp->pos];
  if ((c != '[' && c != '{') || check == 0 || (check == 1 && split_fits(s, sp->len, sp->pos))) {
    split_piece(sp, depth);
    return;
  }
  if (depth >= sp->max_depth) split_fail(L);
  luaL_checkstack(L, 6, "JSON nesting");
  lua_newtable(L);
  int t = lua_gettop(L);
  sp->pos++;
  split_ws(sp);
  if (sp->pos >= sp->len) split_fail(L);
  if (s[sp->pos] == (c == '[' ? ']' : '}')) {
    sp->pos++;
  } else {
    lua_Integer i = 0;
    /* An object's members are each checked (a wrapper may hold small
     * members and one large one, in any order). An array's items are
     * assumed to be alike: the next one is checked only when this one was
     * not small, so a page of many small items is not scanned twice. */
    int next_check = 1;
    for (;;) {
      if (c == '{') {
        size_t p = sp->pos;
        unsigned flags;
        if (s[p] != '"' || scan_string(s, sp->len, &p, &flags) != DE_NONE) split_fail(L);
        if (!(flags & STR_ESC)) lua_pushlstring(L, (const char *)s + sp->pos + 1, p - sp->pos - 2);
        else push_unescaped(L, s + sp->pos + 1, s + p - 1);
        sp->pos = p;
        split_ws(sp);
        if (sp->pos >= sp->len || s[sp->pos] != ':') split_fail(L);
        sp->pos++;
        split_ws(sp);
      }
      if (sp->pos >= sp->len) split_fail(L);
      size_t start = sp->pos;
      split_value(sp, depth + 1, c == '{' || next_check);
      next_check = sp->pos - start > SPLIT_BYTES / 16;
      if (c == '{') lua_rawset(L, t);   /* a repeated key: the last one wins */
      else lua_rawseti(L, t, ++i);
      split_ws(sp);
      if (sp->pos >= sp->len) split_fail(L);
      if (s[sp->pos] == ',') {
        sp->pos++;
        split_ws(sp);
        continue;
      }
      if (s[sp->pos] != (c == '[' ? ']' : '}')) split_fail(L);
      sp->pos++;
      break;
    }
  }
  if (c == '[') {
    lua_pushvalue(L, 3);
    lua_setmetatable(L, t);
  }
}

/* Protected: [1] the struct split (light userdata). Returns the value, or
 * raises when the text is not for the split reader. */
static int l_decode_split(lua_State *L)
{
  struct split *sp = lua_touserdata(L, 1);
  sp->L = L;
  sp->g = lua_newuserdatauv(L, sizeof *sp->g, 0);
  sp->g->root = NULL;
  luaL_setmetatable(L, GUARD_MT);
  lua_toclose(L, 2);
  luaL_getmetatable(L, ARRAY_MT);
  split_value(sp, 0, 2);
  split_ws(sp);
  if (sp->pos != sp->len) split_fail(L);
  return 1;
}

/* The fast path (see the banner): one strict pass from the text to Lua values,
 * with the cursor's own scanners (scan_string, scan_number) and RFC 8259's
 * four whitespace bytes, and no cJSON tree to build, walk and free. It
 * takes only what the cJSON path would take and decodes it to the same
 * values (floats through strtod, as cJSON reads them); for anything else
 * (any error, a container at max_depth, a float literal of 64 bytes or
 * more, which cJSON cuts short, a Lua stack that cannot grow) it gives up
 * and l_decode runs the cJSON path, so errors, their offsets and every
 * edge case stay that path's. Elements and members collect on the Lua
 * stack first, so that each table is created at its final size. */
struct fast {
  lua_State *L;
  const unsigned char *s;
  size_t len, pos;
  int max_depth;
  int array_mt;         /* stack index of array_mt */
};

static size_t fast_ws(const struct fast *f, size_t p)
{
  while (p < f->len && is_ws(f->s[p])) p++;
  return p;
}

static int fast_value(struct fast *f, int depth);

/* A string token at f->pos: pushes it. */
static int fast_string(struct fast *f)
{
  size_t p = f->pos, q = p;
  unsigned flags;
  if (scan_string(f->s, f->len, &q, &flags) != DE_NONE) return 0;
  if (!(flags & STR_ESC)) lua_pushlstring(f->L, (const char *)f->s + p + 1, q - p - 2);
  else push_unescaped(f->L, f->s + p + 1, f->s + q - 1);
  f->pos = q;
  return 1;
}

static int fast_number(struct fast *f)
{
  size_t p = f->pos, q = p;
  struct num nm;
  lua_Integer i;
  if (scan_number(f->s, f->len, &q, &nm) != DE_NONE) return 0;
  if (num_integer(&nm, &i)) {
    lua_pushinteger(f->L, i);
  } else {
    char buf[64];
    size_t n = q - p;
    if (n >= sizeof buf) return 0;
    memcpy(buf, f->s + p, n);
    buf[n] = '\0';
    /* Lua's reader is strtod with the locale's decimal point, as cJSON's */
    if (lua_stringtonumber(f->L, buf) == 0) return 0;
    if (lua_isinteger(f->L, -1)) {
      /* only "-0" gets here as an integer: it is the float -0.0 */
      lua_pop(f->L, 1);
      lua_pushnumber(f->L, -0.0);
    } else if (!isfinite(lua_tonumber(f->L, -1))) {
      lua_pop(f->L, 1);
      return 0;
    }
  }
  f->pos = q;
  return 1;
}

static int fast_array(struct fast *f, int depth)
{
  lua_State *L = f->L;
  int n = 0;
  size_t p = fast_ws(f, f->pos + 1);
  if (p < f->len && f->s[p] == ']') {
    f->pos = p + 1;
  } else {
    for (;;) {
      if (n == INT_MAX - 1 || !lua_checkstack(L, 3)) return 0;
      f->pos = p;
      if (!fast_value(f, depth + 1)) return 0;
      n++;
      p = fast_ws(f, f->pos);
      if (p >= f->len) return 0;
      if (f->s[p] == ']') break;
      if (f->s[p] != ',') return 0;
      p = fast_ws(f, p + 1);
    }
    f->pos = p + 1;
  }
  lua_createtable(L, n, 0);
  lua_insert(L, -n - 1);
  for (int i = n; i >= 1; i--) lua_rawseti(L, -i - 1, i);
  lua_pushvalue(L, f->array_mt);
  lua_setmetatable(L, -2);
  return 1;
}

static int fast_object(struct fast *f, int depth)
{
  lua_State *L = f->L;
  int n = 0, base = lua_gettop(L);
  size_t p = fast_ws(f, f->pos + 1);
  if (p < f->len && f->s[p] == '}') {
    f->pos = p + 1;
  } else {
    for (;;) {
      if (n >= INT_MAX / 2 - 1 || !lua_checkstack(L, 4)) return 0;
      if (p >= f->len || f->s[p] != '"') return 0;
      f->pos = p;
      if (!fast_string(f)) return 0;
      p = fast_ws(f, f->pos);
      if (p >= f->len || f->s[p] != ':') return 0;
      f->pos = fast_ws(f, p + 1);
      if (!fast_value(f, depth + 1)) return 0;
      n++;
      p = fast_ws(f, f->pos);
      if (p >= f->len) return 0;
      if (f->s[p] == '}') break;
      if (f->s[p] != ',') return 0;
      p = fast_ws(f, p + 1);
    }
    f->pos = p + 1;
  }
  lua_createtable(L, 0, n);
  /* in document order, so that of a repeated key the last one wins */
  for (int i = 0; i < n; i++) {
    lua_pushvalue(L, base + 2 * i + 1);
    lua_pushvalue(L, base + 2 * i + 2);
    lua_rawset(L, -3);
  }
  if (n > 0) {
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
  }
  return 1;
}

/* [-0, +1 (or 0 on a give-up, with whatever it pushed left above), m]
 * the value at f->pos (a token's first byte). */
static int fast_value(struct fast *f, int depth)
{
  const unsigned char *s = f->s;
  size_t p = f->pos, left = f->len - p;
  if (p >= f->len) return 0;
  switch (s[p]) {
  case '"': return fast_string(f);
  case '{': return depth < f->max_depth && fast_object(f, depth);
  case '[': return depth < f->max_depth && fast_array(f, depth);
  case 't':
    if (left < 4 || memcmp(s + p, "true", 4) != 0) return 0;
    lua_pushboolean(f->L, 1);
    f->pos = p + 4;
    return 1;
  case 'f':
    if (left < 5 || memcmp(s + p, "false", 5) != 0) return 0;
    lua_pushboolean(f->L, 0);
    f->pos = p + 5;
    return 1;
  case 'n':
    if (left < 4 || memcmp(s + p, "null", 4) != 0) return 0;
    lua_pushlightuserdata(f->L, NULL);
    f->pos = p + 4;
    return 1;
  default:
    if (s[p] == '-' || (s[p] >= '0' && s[p] <= '9')) return fast_number(f);
    return 0;
  }
}

/* json.decode(s [, opts]): [-0, +1, e] the Lua value of JSON text s.
 * Integer literals that fit lua_Integer come back as integers, other numbers
 * as floats; arrays carry array_mt; objects are plain tables; null is
 * core.null. A leading UTF-8 byte order mark is ignored. opts.max_depth
 * (default 512, at most 1000) bounds the nesting. Raises knox.Error kind
 * "decode" with field offset (0-based byte offset, also in the message) for
 * any text that is not exactly one RFC 8259 value; "bad argument" when s is
 * not a string or opts is bad. */
static int l_decode(lua_State *L)
{
  int max_depth = DEFAULT_DEPTH;
  size_t len;
  if (lua_type(L, 1) != LUA_TSTRING) return luaL_typeerror(L, 1, "string");
  const unsigned char *s = (const unsigned char *)lua_tolstring(L, 1, &len);
  read_options(L, 2, &max_depth, NULL);
  lua_settop(L, 2);

  /* cJSON skips a byte order mark only in texts longer than 4 bytes;
   * strip it here so every length is treated alike */
  size_t base = len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
  luaL_getmetatable(L, ARRAY_MT);
  struct fast f = {L, s, len, base, max_depth, 3};
  f.pos = fast_ws(&f, base);
  if (fast_value(&f, 0) && fast_ws(&f, f.pos) == len) return 1;
  lua_settop(L, 2);

  struct guard *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->root = NULL;
  luaL_setmetatable(L, GUARD_MT);
  lua_toclose(L, 3);
  luaL_getmetatable(L, ARRAY_MT);

  if (len - base > SPLIT_BYTES) {
    struct split sp = {L, s, len, base, max_depth, NULL};
    split_ws(&sp);
    if (sp.pos < len && (s[sp.pos] == '[' || s[sp.pos] == '{') && !split_fits(s, len, sp.pos)) {
      lua_pushcfunction(L, l_decode_split);
      lua_pushlightuserdata(L, &sp);
      int status = lua_pcall(L, 1, 1, 0);
      if (status == LUA_OK) return 1;
      if (status == LUA_ERRMEM) return lua_error(L);
      lua_pop(L, 1);   /* not for the split reader: the whole-text path says why */
    }
  }
  const char *end = NULL;
  g->root = cJSON_ParseWithLengthOpts((const char *)s + base, len - base, &end, 0);
  size_t stop = end != NULL ? (size_t)(end - (const char *)s) : base;
  if (g->root != NULL) {
    while (stop < len && is_ws(s[stop])) stop++;
  }
  if (g->root == NULL || stop != len) {
    size_t at;
    int err = diagnose(s, len, base, max_depth, &at);
    if (err == DE_NONE) {
      err = DE_PARSER;
      at = stop;
    }
    return dec_raise(L, s, len, err, at, max_depth);
  }

  struct dec d = {L, s, len, base, max_depth, 4};
  dec_value(&d, g->root, 0);
  return 1;   /* returning closes the guard: the tree is freed here */
}

/* ------------------------------------------------------------------ */
/* Markers                                                             */
/* ------------------------------------------------------------------ */

static int mark(lua_State *L, const char *mtname)
{
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  if (lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, ARRAY_MT);
    luaL_getmetatable(L, OBJECT_MT);
    if (!lua_rawequal(L, -3, -2) && !lua_rawequal(L, -3, -1)) {
      return luaL_argerror(L, 1, "table already has a metatable");
    }
    lua_settop(L, 1);
  }
  luaL_setmetatable(L, mtname);
  return 1;
}

/* json.array([t]): [-0, +1, v] gives t (or a new table) the array marker
 * metatable and returns it: it encodes as a JSON array, [] when empty.
 * "bad argument" if t is not a table or has another metatable. */
static int l_array(lua_State *L)
{
  return mark(L, ARRAY_MT);
}

/* json.object([t]): [-0, +1, v] same with the object marker: {} when
 * empty, and integer keys are refused rather than making it an array. */
static int l_object(lua_State *L)
{
  return mark(L, OBJECT_MT);
}

int knox_json_open(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"decode", l_decode},
    {"encode", l_encode},
    {"array", l_array},
    {"object", l_object},
    {NULL, NULL},
  };
  luaL_newmetatable(L, GUARD_MT);
  lua_pushcfunction(L, l_guard_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, l_guard_close);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  lua_createtable(L, 0, 8);
  luaL_setfuncs(L, fns, 0);
  luaL_newmetatable(L, ARRAY_MT);
  lua_setfield(L, -2, "array_mt");
  luaL_newmetatable(L, OBJECT_MT);
  lua_setfield(L, -2, "object_mt");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_setfield(L, -2, "json");
  return 0;
}
