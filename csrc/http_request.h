/*
 * http_request.h — transport layer 4 (the transfer layer, with
 * http_transfer.h): a request table from Lua, checked into a Req and the
 * header list of a Transfer. Defined in http_request.c, which may call
 * layers 0-1 only. Stack effects as in Lua's manual.
 */
#ifndef KNOX_HTTP_REQUEST_H
#define KNOX_HTTP_REQUEST_H

#include "http_state.h"

/* [-0, +1, v] reads and checks the request table at idx into r; with
 * t != NULL also builds t->headers. Pushes the body string (or nil) so
 * that it stays anchored while curl points at it. Raises "bad argument
 * #argn" (naming batch item `item` when item > 0) on misuse. Only in a C
 * function that holds the keys (knox_http_push_keys) as upvalue 1. */
void knox_http_load_request(lua_State *L, int idx, const Session *S, Transfer *t, Req *r,
                            int argn, lua_Integer item);

/* [-0, +0, v] raises "bad argument #argn" with msg, naming the batch item
 * when item > 0. Never returns. */
int knox_http_req_error(lua_State *L, int argn, lua_Integer item, const char *msg);

/* Seconds (positive, finite) to whole milliseconds, rounded up, at least 1. */
long knox_http_seconds_to_ms(lua_Number s);

#endif
