/*
 * clock.c — wall clock, monotonic clock and sleep for the Lua layer, which
 * needs sub-second time for backoff and token lifetimes (os.time is whole
 * seconds). The client makes these injectable; these are the defaults.
 * Also the one HTTP-date parser (core.http_date).
 */
#include "knox.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <time.h>

static int a_digit(int c) { return c >= '0' && c <= '9'; }
static int a_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int a_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int ci_eq3(const char *a, const char *b)
{
  for (int i = 0; i < 3; i++) {
    if (a_lower((unsigned char)a[i]) != b[i]) return 0;
  }
  return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int month_of(const char *s)
{
  static const char *const names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                      "jul", "aug", "sep", "oct", "nov", "dec"};
  for (int i = 0; i < 12; i++) {
    if (ci_eq3(s, names[i])) return i + 1;
  }
  return 0;
}

static int read_int(const char **p, const char *end, int maxdigits, int *out)
{
  int v = 0, k = 0;
  while (*p < end && a_digit((unsigned char)**p) && k < maxdigits) {
    v = v * 10 + (**p - '0');
    (*p)++;
    k++;
  }
  if (k == 0 || (*p < end && a_digit((unsigned char)**p))) return 0;
  *out = v;
  return k;
}

static int read_hms(const char **p, const char *end, int *h, int *mi, int *se)
{
  if (read_int(p, end, 2, h) == 0 || *p >= end || **p != ':') return 0;
  (*p)++;
  if (read_int(p, end, 2, mi) == 0 || *p >= end || **p != ':') return 0;
  (*p)++;
  return read_int(p, end, 2, se) != 0;
}

static void skip_sp(const char **p, const char *end)
{
  while (*p < end && **p == ' ') (*p)++;
}

/* An HTTP-date (IMF-fixdate, RFC 850 or asctime) as epoch seconds. */
static int parse_http_date(const char *s, size_t n, int64_t *out)
{
  const char *p = s, *end = s + n;
  int day = 0, mon = 0, year = 0, h = 0, mi = 0, se = 0, k;
  while (p < end && a_alpha((unsigned char)*p)) p++;   /* weekday */
  if (p == s) return 0;
  if (p < end && *p == ',') p++;
  skip_sp(&p, end);
  if (p < end && a_digit((unsigned char)*p)) {
    /* "06 Nov 1994 08:49:37 GMT" or "06-Nov-94 08:49:37 GMT" */
    if (read_int(&p, end, 2, &day) == 0 || p >= end) return 0;
    char sep = *p;
    if (sep != ' ' && sep != '-') return 0;
    p++;
    if (end - p < 3 || (mon = month_of(p)) == 0) return 0;
    p += 3;
    if (p >= end || *p != sep) return 0;
    p++;
    k = read_int(&p, end, 4, &year);
    if (k == 2) year += year < 70 ? 2000 : 1900;
    else if (k != 4) return 0;
    skip_sp(&p, end);
    if (!read_hms(&p, end, &h, &mi, &se)) return 0;
    skip_sp(&p, end);
    if (end - p < 3 || !ci_eq3(p, "gmt")) return 0;
  } else {
    /* asctime: "Nov  6 08:49:37 1994" */
    if (end - p < 3 || (mon = month_of(p)) == 0) return 0;
    p += 3;
    skip_sp(&p, end);
    if (read_int(&p, end, 2, &day) == 0) return 0;
    skip_sp(&p, end);
    if (!read_hms(&p, end, &h, &mi, &se)) return 0;
    skip_sp(&p, end);
    if (read_int(&p, end, 4, &year) != 4) return 0;
  }
  if (day < 1 || day > 31 || h > 23 || mi > 59 || se > 60) return 0;
  *out = days_from_civil(year, mon, day) * 86400 + h * 3600 + mi * 60 + se;
  return 1;
}

/* core.http_date(s): [-0, +1, -] the epoch seconds of an HTTP-date
 * (IMF-fixdate, RFC 850 or asctime; RFC 9110 §5.6.7), or nil. The one
 * HTTP-date parser: Retry-After and the clock-skew check both use it. */
static int l_http_date(lua_State *L)
{
  size_t n;
  const char *s = lua_tolstring(L, 1, &n);
  int64_t t;
  if (lua_type(L, 1) != LUA_TSTRING || !parse_http_date(s, n, &t)) {
    lua_pushnil(L);
  } else {
    lua_pushinteger(L, (lua_Integer)t);
  }
  return 1;
}


static double timespec_seconds(clockid_t id)
{
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0) return 0.0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* core.now(): [-0, +1, -] seconds since the epoch (UTC), as a float. */
static int l_now(lua_State *L)
{
  lua_pushnumber(L, timespec_seconds(CLOCK_REALTIME));
  return 1;
}

/* core.monotime(): [-0, +1, -] seconds of a monotonic clock, as a float. */
static int l_monotime(lua_State *L)
{
  lua_pushnumber(L, timespec_seconds(CLOCK_MONOTONIC));
  return 1;
}

/* core.sleep(seconds): [-0, +0, v] sleeps; restarts after signals.
 * Raises "bad argument" for a negative or non-finite duration. */
static int l_sleep(lua_State *L)
{
  lua_Number s = luaL_checknumber(L, 1);
  luaL_argcheck(L, isfinite(s) && s >= 0, 1, "non-negative finite number expected");
  if (s > 86400.0 * 365) s = 86400.0 * 365;
  struct timespec req, rem;
  req.tv_sec = (time_t)s;
  req.tv_nsec = (long)((s - (lua_Number)req.tv_sec) * 1e9);
  if (req.tv_nsec > 999999999L) req.tv_nsec = 999999999L;
  while (nanosleep(&req, &rem) != 0 && errno == EINTR) req = rem;
  return 0;
}

int knox_clock_open(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"now", l_now},
    {"monotime", l_monotime},
    {"sleep", l_sleep},
    {"http_date", l_http_date},
    {NULL, NULL},
  };
  luaL_setfuncs(L, fns, 0);
  return 0;
}
