/*
 * http_session.h — transport layer 5: knox.Session (creation, options,
 * the busy guard, close, session:request). Defined in http_session.c,
 * which may call layers 0-4 only. Stack effects as in Lua's manual.
 */
#ifndef KNOX_HTTP_SESSION_H
#define KNOX_HTTP_SESSION_H

#include "http_state.h"

/* [-0, +0, v] the open, idle knox.Session at idx. Raises knox.Error kind
 * "closed" on a closed session, an error when it is busy. */
Session *knox_http_check_session(lua_State *L, int idx);

/* [-0, +1, -] marks the session (at index 1) busy until the calling C
 * function returns or raises: pushes the session's guard as a
 * to-be-closed value. */
void knox_http_begin_busy(lua_State *L, Session *S);

/* session:request{...}: [-0, +4, e] status, headers, body, info. */
int knox_http_request(lua_State *L);

/* session:buffer_bytes(): [-0, +1, v] bytes held in the session's
 * buffers (outside Lua's heap). */
int knox_http_buffer_bytes(lua_State *L);

/* session:close(): [-0, +0, v] frees the handles; idempotent. */
int knox_http_close(lua_State *L);

/* [-0, +0, m] creates the knox.Session metatable (__gc, __close,
 * __tostring; __index = methods, a NULL-terminated list whose functions get
 * the keys table of knox_http_push_keys as upvalue 1) and the guard's, and
 * sets core.session in the module table at -1. */
void knox_http_session_register(lua_State *L, const luaL_Reg *methods);

#endif
