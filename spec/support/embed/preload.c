/*
 * preload.c — a host for spec/static_spec.lua that checks knox_openlibs
 * itself (libknox.a): refused with a clear message in a state without the
 * package library, then, once it is open, every module required from
 * package.preload alone (package.path and package.cpath emptied, so no
 * file can answer). Prints one line per step; exits 0 when each step did
 * what it should.
 *
 * Built by the spec: cc preload.c $(pkg-config --cflags --libs knox lua5.4)
 */
#include <knox.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>

static const char script[] =
  "package.path, package.cpath = '', ''\n"
  "local names = {}\n"
  "for name in pairs(package.preload) do names[#names + 1] = name end\n"
  "table.sort(names)\n"
  "local n = 0\n"
  "for _, name in ipairs(names) do\n"
  "  -- the simulator's modules need luasocket & co., which this host lacks\n"
  "  if not name:match('^knox%.sim') or name == 'knox.sim.deps' then\n"
  "    require(name)\n"
  "    n = n + 1\n"
  "  end\n"
  "end\n"
  "local knox = require 'knox'\n"
  "local ok, err = knox.try(knox.json.decode, '[1,')\n"
  "assert(not ok and knox.is_error(err), 'json.decode accepted a broken text')\n"
  "local sim_ok, sim_err = pcall(require, 'knox.sim')\n"
  "assert(not sim_ok and tostring(sim_err):find('apt-get install lua-socket', 1, true), tostring(sim_err))\n"
  "return ('%d modules preloaded, %d required; knox %s; %s'):format(#names, n, knox.version, err.kind)\n";

int main(void)
{
  lua_State *L = luaL_newstate();
  if (L == NULL) return 2;
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  lua_pop(L, 1);
  lua_pushcfunction(L, knox_openlibs);
  int refused = lua_pcall(L, 0, 0, 0) != LUA_OK;
  printf("without package: %s\n", refused ? lua_tostring(L, -1) : "accepted");
  lua_settop(L, 0);

  luaL_openlibs(L);
  lua_pushcfunction(L, knox_openlibs);
  int status = lua_pcall(L, 0, 0, 0);
  if (status == LUA_OK) status = luaL_loadbufferx(L, script, sizeof script - 1, "=preload", "t");
  if (status == LUA_OK) status = lua_pcall(L, 0, 1, 0);
  printf("with package: %s%s\n", status == LUA_OK ? "" : "error: ", lua_tostring(L, -1));
  lua_close(L);
  return refused && status == LUA_OK ? 0 : 1;
}
