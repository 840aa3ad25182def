/*
 * clock.c — wall clock, monotonic clock and sleep for the Lua layer, which
 * needs sub-second time for backoff and token lifetimes (os.time is whole
 * seconds). The client makes these injectable; these are the defaults.
 */
#include "knox.h"

#include <errno.h>
#include <math.h>
#include <time.h>

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
    {NULL, NULL},
  };
  luaL_setfuncs(L, fns, 0);
  return 0;
}
