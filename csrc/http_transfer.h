/*
 * http_transfer.h — transport layer 4 (the transfer layer, with
 * http_request.h): one easy handle and one transfer on it. Defined in
 * http_transfer.c, which may call layers 0-3 only. Stack effects as in
 * Lua's manual.
 */
#ifndef KNOX_HTTP_TRANSFER_H
#define KNOX_HTTP_TRANSFER_H

#include "http_state.h"

/* Session-wide options, set once on each easy handle the session creates
 * (t->easy must be set). */
CURLcode knox_http_apply_session(const Session *S, Transfer *t);

/* Per-request options; resets the transfer's buffers and failure state.
 * Every option a previous request may have set is set again. */
CURLcode knox_http_apply_request(Transfer *t, const Req *r);

/* [-0, +1, m] the table of key strings for INFO_KEYS (http_state.h), which
 * the session methods hold as upvalue 1. */
void knox_http_push_keys(lua_State *L);

/* [-0, +4, m] status, headers, body, info of a finished transfer. Only in
 * a C function that holds the keys as upvalue 1. */
void knox_http_push_response(lua_State *L, Transfer *t);

/* Frees the easy handle, header list and buffers of t (not t itself). */
void knox_http_transfer_free(Transfer *t);

#endif
