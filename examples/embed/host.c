/*
 * host.c — a C program that embeds Lua 5.4 with knox inside it: libknox.a
 * carries the C core and every Lua module, so nothing is read from disk.
 * It lists Knox Guard devices and locks the first active one, against the
 * Knox the environment names (KNOX_BASE_URL or KNOX_REGION, KNOX_KEYS_FILE
 * and KNOX_CLIENT_ID: Knox Guard takes keys.json credentials only) -- run
 * `knox sim --env` and paste what it prints to try it on the simulator.
 *
 *   make static
 *   cc -o host examples/embed/host.c $(pkg-config --cflags --libs knox lua5.4)
 *   ./host
 *
 * (PKG_CONFIG_PATH=build for a build tree; an installed knox.pc is found
 * on its own.) Exits 0 when the device is locked, 1 with the error on
 * stderr otherwise: a knox.Error prints as its one-line tostring.
 */
#include <knox.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>

static const char script[] =
  "local knox = require 'knox'\n"
  "local client <close> = knox.client()\n"
  "local page = client.kg:list_devices { pageSize = 10 }\n"
  "print(('%d Knox Guard devices, %d on this page'):format(page.totalCount, #page.deviceList))\n"
  "local target\n"
  "for _, d in ipairs(page.deviceList) do\n"
  "  print(d.deviceUid, d.status)\n"
  "  if not target and d.status == 'Active' then target = d end\n"
  "end\n"
  "if not target then error('no active device on the first page', 0) end\n"
  "client.kg:lock { deviceUid = target.deviceUid, message = 'Call IT: +1 555 0100' }\n"
  "local now = client.kg:get_device { objectId = target.objectId }\n"
  "print('locked ' .. target.deviceUid .. ': ' .. now.status)\n"
  "if now.status ~= 'Locked' then error('the device is ' .. tostring(now.status) .. ', not Locked', 0) end\n";

/* The message handler: a traceback for strings, tostring (a knox.Error's
 * one line) for anything else. [-1, +1, -] */
static int on_error(lua_State *L)
{
  if (lua_type(L, 1) == LUA_TSTRING) {
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
  } else {
    luaL_tolstring(L, 1, NULL);
  }
  return 1;
}

int main(void)
{
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fputs("host: cannot create a Lua state (out of memory)\n", stderr);
    return 1;
  }
  luaL_openlibs(L);
  lua_pushcfunction(L, on_error);
  lua_pushcfunction(L, knox_openlibs);
  int status = lua_pcall(L, 0, 0, 1);
  if (status == LUA_OK) status = luaL_loadbufferx(L, script, sizeof script - 1, "=host", "t");
  if (status == LUA_OK) status = lua_pcall(L, 0, 0, 1);
  if (status != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
  }
  lua_close(L);
  return status == LUA_OK ? 0 : 1;
}
