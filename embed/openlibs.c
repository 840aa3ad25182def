/*
 * openlibs.c — knox_openlibs (include/knox.h): puts knox.core and every
 * Lua module embedded in libknox.a into package.preload, so that a host's
 * require "knox" needs no file on disk.
 */
#include "knox.h"

#include <lauxlib.h>
#include <lua.h>

#include "embed.h"

/* The loader of embedded module number upvalue 1, called by require as
 * loader(name, ":preload:"): [-0, +1, e] compiles the module's text and
 * runs it with (name, file name), as the file searcher would, returning
 * its value. A text that does not compile (it cannot happen with a
 * generated table: embed/gen.lua compiles each file) raises a string
 * naming the module. */
static int load_embedded(lua_State *L)
{
  const struct knox_embedded_module *m = &knox_embedded_modules[lua_tointeger(L, lua_upvalueindex(1))];
  if (luaL_loadbufferx(L, m->text, m->size, m->chunkname, "t") != LUA_OK) {
    return luaL_error(L, "knox: the embedded module '%s' does not load: %s", m->name, lua_tostring(L, -1));
  }
  lua_pushstring(L, m->name);
  lua_pushstring(L, m->chunkname + 1);
  lua_call(L, 2, 1);
  return 1;
}

/* knox_openlibs: [-0, +0, e] see include/knox.h. */
int knox_openlibs(lua_State *L)
{
  luaL_checkversion(L);
  luaL_checkstack(L, 3, "knox_openlibs");
  /* package.preload is the registry's _PRELOAD table, made by the package
   * library; without it require does not exist either */
  if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE) != LUA_TTABLE) {
    lua_pop(L, 1);
    return luaL_error(L, "knox_openlibs: the package library is not open in this lua_State "
                         "(call luaL_openlibs(L), or luaL_requiref(L, LUA_LOADLIBNAME, luaopen_package, 1), first)");
  }
  lua_pushcfunction(L, luaopen_knox_core);
  lua_setfield(L, -2, "knox.core");
  for (lua_Integer i = 0; knox_embedded_modules[i].name != NULL; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, knox_embedded_modules[i].name);
  }
  lua_pop(L, 1);
  return 0;
}
