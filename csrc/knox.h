/*
 * knox.h — internal interface between the parts of the knox.core C module.
 * Nothing here is exported from core.so except luaopen_knox_core.
 */
#ifndef KNOX_H
#define KNOX_H

#include <lua.h>
#include <lauxlib.h>

#define KNOX_VERSION "0.1.0"

/* Registry names of the metatables shared between C and Lua. */
#define KNOX_ERROR_MT "knox.Error"

/* Each part registers its functions into the module table at the top of
 * the stack (index -1 on entry) and leaves the stack as it found it. */
int knox_error_open(lua_State *L);
int knox_clock_open(lua_State *L);
int knox_json_open(lua_State *L);
int knox_key_open(lua_State *L);
int knox_http_open(lua_State *L);
int knox_errors_open(lua_State *L);
int knox_catalog_open(lua_State *L);
int knox_text_open(lua_State *L);

/* Error objects (kerror.c).
 * knox_error_new: pushes a fresh knox.Error table {kind=, message=}.
 * knox_error_setstr / knox_error_setint: set a field on the table at the
 * top of the stack (NULL value leaves the field unset).
 * knox_error_raise: raises the value at the top of the stack; never returns.
 * knox_error_throw: builds {kind=, message=printf(...)} and raises it. */
void knox_error_new(lua_State *L, const char *kind, const char *message);
void knox_error_setstr(lua_State *L, const char *field, const char *value);
void knox_error_setint(lua_State *L, const char *field, lua_Integer value);
void knox_error_setbool(lua_State *L, const char *field, int value);
int knox_error_raise(lua_State *L);
int knox_error_throw(lua_State *L, const char *kind, const char *fmt, ...);

/* JSON (json.c).
 * knox_json_encode: [-0, +1, e] pushes the compact JSON text of the value at
 * index idx (same rules as knox.json.encode); raises knox.Error kind "usage"
 * for a value JSON cannot hold. Used by key.c for JWT claims. */
void knox_json_encode(lua_State *L, int idx);

#endif
