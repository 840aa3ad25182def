/*
 * headers_fuzz.c — libFuzzer harness for what knox reads from response
 * headers and how it redacts text: the HTTP-date parser (core.http_date,
 * csrc/clock.c), Retry-After (knox.headers.retry_after, Lua over it),
 * WWW-Authenticate (core.errors.scan's www_authenticate option,
 * csrc/errors.c) and the redactor (core.text.redact/line/one_line/
 * clean_url, csrc/text.c). Loads lua/ from the checkout: run from the
 * repository root, as `make fuzz` does.
 *
 * Input: up to four lines, then free text:
 *   Retry-After \n Date \n WWW-Authenticate \n URL \n body text...
 * Checks:
 * - http_date gives nil or an integer; a time t taken from the input,
 *   written as IMF-fixdate, asctime and (years 1970-2069) RFC 850 by libc's
 *   gmtime_r/strftime, parses back to t; whatever date it accepts,
 *   written back as IMF-fixdate, parses to the same time.
 * - retry_after gives nil or an integer of seconds in [0, 1e9].
 * - scan gives a table of facts of the documented types; an oauth code
 *   is [a-z][a-z_]{2,63}; from_response with these headers (401, 429)
 *   gives a well-formed knox.Error.
 * - redact/line/one_line/clean_url stay within their limits; line,
 *   one_line and clean_url give one line of valid UTF-8; a secret planted
 *   in the text (form field, Bearer credential, JSON member) or the URL
 *   (userinfo, access_token) never shows, wherever the fuzzed text puts
 *   it.
 */
#include "fuzz.h"

#include <time.h>

static lua_State *L;
static int T_DATE, T_RETRY, T_SCAN, T_REDACT, T_LINE, T_ONE, T_URL, T_FROM;

#define SENT "Zq7SENTzq7Q"

struct field {
  const char *s;
  size_t n;
};

static void push_ref(int ref)
{
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
}

static int ref_field(const char *expr)
{
  if (luaL_loadstring(L, expr) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) fz_fail(lua_tostring(L, -1));
  if (!lua_isfunction(L, -1)) fz_fail(expr);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* http_date(s, n): 1 and *t when it parses, 0 for nil. */
static int http_date(const char *s, size_t n, lua_Integer *t)
{
  push_ref(T_DATE);
  lua_pushlstring(L, s, n);
  lua_call(L, 1, 1);
  int ok = 0;
  if (lua_isinteger(L, -1)) {
    *t = lua_tointeger(L, -1);
    ok = 1;
  } else if (!lua_isnil(L, -1)) {
    fz_fail("http_date: neither nil nor an integer");
  }
  lua_pop(L, 1);
  return ok;
}

/* Writes t in the three HTTP-date forms and checks each parses back. */
static void dates_round_trip(int64_t t)
{
  time_t tt = (time_t)t;
  struct tm tm;
  if (gmtime_r(&tt, &tm) == NULL) return;
  long year = (long)tm.tm_year + 1900;
  if (year < 1000 || year > 9999) return;
  static const char *const forms[] = {"%a, %d %b %Y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y",
                                      "%A, %d-%b-%y %H:%M:%S GMT"};
  for (int i = 0; i < 3; i++) {
    if (i == 2 && (year < 1970 || year > 2069)) continue;
    char buf[64];
    size_t n = strftime(buf, sizeof buf, forms[i], &tm);
    lua_Integer back;
    if (n == 0 || !http_date(buf, n, &back) || back != t) {
      fprintf(stderr, "knox fuzz: %lld written as \"%s\"\n", (long long)t, buf);
      fz_fail("http_date does not read back what strftime wrote");
    }
  }
}

static void check_dates(const uint8_t *data, size_t size, struct field date)
{
  lua_Integer t;
  if (http_date(date.s, date.n, &t)) dates_round_trip(t);
  uint64_t u = 0;
  for (size_t i = 0; i < 8 && i < size; i++) u = (u << 8) | data[i];
  /* years 1000 to 9999 */
  const int64_t lo = -30610224000, hi = 253402300799;
  dates_round_trip(lo + (int64_t)(u % (uint64_t)(hi - lo + 1)));
}

static void check_retry_after(struct field ra, struct field date, lua_Integer now)
{
  push_ref(T_RETRY);
  lua_createtable(L, 0, 2);
  lua_pushlstring(L, ra.s, ra.n);
  lua_setfield(L, -2, "Retry-After");
  lua_pushlstring(L, date.s, date.n);
  lua_setfield(L, -2, "date");
  lua_pushinteger(L, now);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) fz_fail("retry_after raised");
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1)) fz_fail("retry_after: not an integer");
    lua_Integer s = lua_tointeger(L, -1);
    if (s < 0 || s > 1000000000) fz_fail("retry_after: out of [0, 1e9]");
  }
  lua_pop(L, 1);
}

static void check_opt_string(int t, const char *name)
{
  int ty = lua_getfield(L, t, name);
  if (ty != LUA_TNIL && ty != LUA_TSTRING) fz_fail(name);
  lua_pop(L, 1);
}

static void check_facts(int t)
{
  t = lua_absindex(L, t);
  if (!lua_istable(L, t)) fz_fail("scan: not a table");
  int ty = lua_getfield(L, t, "code");
  if (ty != LUA_TNIL && ty != LUA_TSTRING && !(ty == LUA_TNUMBER && lua_isinteger(L, -1))) fz_fail("scan code");
  lua_pop(L, 1);
  check_opt_string(t, "name");
  check_opt_string(t, "error_id");
  check_opt_string(t, "transaction_id");
  if (lua_getfield(L, t, "oauth") == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    if (n < 3 || n > 64 || s[0] < 'a' || s[0] > 'z') fz_fail("scan oauth");
    for (size_t i = 1; i < n; i++) {
      if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_')) fz_fail("scan oauth chars");
    }
  } else if (!lua_isnil(L, -1)) {
    fz_fail("scan oauth type");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, t, "texts") != LUA_TTABLE || lua_getfield(L, t, "prios") != LUA_TTABLE) fz_fail("scan texts");
  lua_Unsigned n = lua_rawlen(L, -2);
  if (lua_rawlen(L, -1) != n) fz_fail("scan texts/prios");
  for (lua_Unsigned i = 1; i <= n; i++) {
    if (lua_rawgeti(L, -2, (lua_Integer)i) != LUA_TSTRING || lua_rawlen(L, -1) == 0) fz_fail("scan text");
    if (lua_rawgeti(L, -2, (lua_Integer)i) != LUA_TNUMBER || !lua_isinteger(L, -1)) fz_fail("scan prio");
    lua_pop(L, 2);
  }
  lua_pop(L, 2);
  if (lua_getfield(L, t, "fail") != LUA_TBOOLEAN) fz_fail("scan fail");
  if (lua_getfield(L, t, "www_invalid_token") != LUA_TBOOLEAN) fz_fail("scan www_invalid_token");
  lua_pop(L, 2);
}

static void check_scan(struct field www, struct field ra, const char *body, size_t bn, int html)
{
  for (int with_body = 0; with_body < 2; with_body++) {
    push_ref(T_SCAN);
    if (with_body) lua_pushlstring(L, body, bn);
    else lua_pushnil(L);
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, www.s, www.n);
    lua_setfield(L, -2, "www_authenticate");
    lua_pushboolean(L, html);
    lua_setfield(L, -2, "html");
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) fz_fail("scan raised");
    check_facts(-1);
    lua_pop(L, 1);
  }
  static const int statuses[] = {401, 429};
  for (int i = 0; i < 2; i++) {
    push_ref(T_FROM);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, statuses[i]);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, body, bn);
    lua_setfield(L, -2, "body");
    lua_pushliteral(L, "https://h/kcs/v1/kme/devices/list");
    lua_setfield(L, -2, "url");
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, www.s, www.n);
    lua_setfield(L, -2, "www-authenticate");
    lua_pushlstring(L, ra.s, ra.n);
    lua_setfield(L, -2, "retry-after");
    lua_setfield(L, -2, "headers");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) fz_fail("from_response raised");
    fz_check_error(L, -1, NULL);
    lua_pop(L, 1);
  }
}

static int contains(const char *s, size_t n, const char *needle)
{
  size_t m = strlen(needle);
  for (size_t i = 0; i + m <= n; i++) {
    if (memcmp(s + i, needle, m) == 0) return 1;
  }
  return 0;
}

/* Calls the text function ref on (s, max) (max < 0: none); leaves the
 * result and returns its text. */
static const char *text_fn(int ref, const char *s, size_t n, lua_Integer max, size_t *out)
{
  push_ref(ref);
  lua_pushlstring(L, s, n);
  if (max >= 0) lua_pushinteger(L, max);
  else lua_pushnil(L);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) fz_fail("a text function raised");
  if (lua_type(L, -1) != LUA_TSTRING) fz_fail("a text function gave no string");
  return lua_tolstring(L, -1, out);
}

static void check_one_line(const char *s, size_t n, const char *what)
{
  if (!fz_utf8(s, n) || fz_has_control(s, n)) fz_fail(what);
}

static void check_text(const char *body, size_t bn, lua_Integer max)
{
  size_t n;
  const char *r = text_fn(T_REDACT, body, bn, max, &n);
  if ((lua_Integer)n > max) fz_fail("redact: longer than max");
  lua_pop(L, 1);
  lua_Integer lmax = max < 4 ? 4 : max;
  r = text_fn(T_LINE, body, bn, lmax, &n);
  if ((lua_Integer)n > (lmax < 480 ? lmax : 480)) fz_fail("line: longer than max");
  check_one_line(r, n, "line: not one line of UTF-8");
  lua_pop(L, 1);
  lua_Integer omax = 1 + max % 4096;
  r = text_fn(T_ONE, body, bn, omax, &n);
  if ((lua_Integer)n > omax) fz_fail("one_line: longer than max");
  check_one_line(r, n, "one_line: not one line of UTF-8");
  if (n > 0 && (r[0] == ' ' || r[n - 1] == ' ')) fz_fail("one_line: not trimmed");
  lua_pop(L, 1);
}

/* The planted secrets: each text is body + a secret in some syntax. */
static void check_planted(const char *body, size_t bn)
{
  if (contains(body, bn, SENT)) return;
  static const char *const plants[] = {"&password=" SENT "&", " Bearer " SENT " ",
                                       "&client_secret=" SENT, ", \"client_secret\": \"" SENT "\"}"};
  int quotes = memchr(body, '"', bn) != NULL || memchr(body, '\\', bn) != NULL;
  luaL_Buffer b;
  for (int i = 0; i < 4; i++) {
    /* a JSON member is only a member outside a string: no quotes before */
    if (i == 3 && quotes) continue;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, body, bn);
    luaL_addstring(&b, plants[i]);
    luaL_pushresult(&b);
    size_t tn, n;
    const char *t = lua_tolstring(L, -1, &tn);
    /* room for all of it: "[redacted]" grows a secret of 1 byte by 9 */
    lua_Integer room = (lua_Integer)(tn * 10 + 64);
    const char *r = text_fn(T_REDACT, t, tn, room < (1 << 20) ? room : (1 << 20), &n);
    if (contains(r, n, SENT)) {
      fprintf(stderr, "knox fuzz: redact shows the secret: %.*s\n", (int)n, r);
      fz_fail("redact shows a planted secret");
    }
    lua_pop(L, 1);
    r = text_fn(T_LINE, t, tn, 480, &n);
    if (contains(r, n, SENT)) {
      fprintf(stderr, "knox fuzz: line shows the secret: %.*s\n", (int)n, r);
      fz_fail("line shows a planted secret");
    }
    lua_pop(L, 2);
  }
}

static void check_url(struct field url)
{
  size_t n;
  const char *r = text_fn(T_URL, url.s, url.n, -1, &n);
  if (n > 2300) fz_fail("clean_url: too long");
  check_one_line(r, n, "clean_url: not one line of UTF-8");
  lua_pop(L, 1);
  if (contains(url.s, url.n, SENT)) return;
  /* https://user:SECRET@<host>/p?<query>&access_token=SECRET&x=1: the
   * host without / ? #, the query without # */
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "https://user:" SENT "@");
  for (size_t i = 0; i < url.n && i < 200; i++) {
    char c = url.s[i];
    luaL_addchar(&b, c == '/' || c == '?' || c == '#' ? '_' : c);
  }
  luaL_addstring(&b, "/p?");
  for (size_t i = 0; i < url.n && i < 400; i++) {
    char c = url.s[i];
    luaL_addchar(&b, c == '#' ? '_' : c);
  }
  luaL_addstring(&b, "&access_token=" SENT "&x=1#frag");
  luaL_pushresult(&b);
  size_t tn;
  const char *t = lua_tolstring(L, -1, &tn);
  r = text_fn(T_URL, t, tn, -1, &n);
  if (contains(r, n, SENT) || memchr(r, '#', n) != NULL) {
    fprintf(stderr, "knox fuzz: clean_url gives: %.*s\n", (int)n, r);
    fz_fail("clean_url shows a secret or the fragment");
  }
  lua_pop(L, 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (L == NULL) {
    L = fz_state();
    T_DATE = ref_field("return require('knox.core').http_date");
    T_RETRY = ref_field("return require('knox.headers').retry_after");
    T_SCAN = ref_field("return require('knox.core').errors.scan");
    T_REDACT = ref_field("return require('knox.core').text.redact");
    T_LINE = ref_field("return require('knox.core').text.line");
    T_ONE = ref_field("return require('knox.core').text.one_line");
    T_URL = ref_field("return require('knox.core').text.clean_url");
    T_FROM = ref_field("return require('knox.errors').from_response");
    lua_settop(L, 0);
  }
  struct field f[4];
  const char *p = (const char *)data, *end = p + size;
  for (int i = 0; i < 4; i++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl != NULL ? nl : end;
    f[i].s = p;
    f[i].n = (size_t)(stop - p);
    p = nl != NULL ? nl + 1 : end;
  }
  const char *body = p;
  size_t bn = (size_t)(end - p);
  lua_Integer max = (lua_Integer)((size * 31) % 600);

  check_dates(data, size, f[1]);
  check_retry_after(f[0], f[1], 1700000000 + (lua_Integer)(size * 7919 % 100000));
  check_scan(f[2], f[0], body, bn, (int)(size & 1));
  check_text(body, bn, max);
  check_planted(body, bn);
  check_url(f[3]);
  lua_settop(L, 0);
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
