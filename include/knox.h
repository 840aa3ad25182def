/*
 * knox.h — the public header of libknox.a, for C programs that embed Lua
 * 5.4 and want knox in it with no files on disk: the C core and every Lua
 * module of the library are inside the archive.
 *
 *   lua_State *L = luaL_newstate();
 *   luaL_openlibs(L);                 // knox needs the package library
 *   lua_pushcfunction(L, knox_openlibs);
 *   if (lua_pcall(L, 0, 0, 0) != LUA_OK) { ...lua_tostring(L, -1)... }
 *   // now require "knox" works in L, from memory
 *
 * Build: cc host.c $(pkg-config --cflags --libs knox lua5.4)
 *
 * Each lua_State is independent: two threads may each run their own state
 * at the same time (a state itself is not to be shared between threads
 * without the host's own locking, as for any Lua state).
 *
 * (The knox.h in the source tree's csrc/ is the C core's internal header,
 * never installed; this one is guarded by KNOX_PUBLIC_H.)
 */
#ifndef KNOX_PUBLIC_H
#define KNOX_PUBLIC_H

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The C core as a Lua module: [-0, +1, e] pushes the knox.core table.
 * knox_openlibs registers it in package.preload; a host that loads only
 * the core may call it through luaL_requiref(L, "knox.core", ...). */
int luaopen_knox_core(lua_State *L);

/* Registers knox.core and every knox Lua module (knox, knox.client, ...,
 * knox.sim.*) in package.preload, so require finds them before any file.
 * [-0, +0, e]: raises an error (a string) when the package library is not
 * open in L, or on out-of-memory; returns 0, so it is also a lua_CFunction
 * and can be called with lua_pcall as above. Calling it again re-registers
 * the same loaders; modules already required stay as they are. */
int knox_openlibs(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
