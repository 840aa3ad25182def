/*
 * http_error.h — transport layer 2: transport failures as knox.Error
 * objects. Defined in http_error.c, which may call layers 0-1 only
 * (http_text.h, http_state.h). Stack effects as in Lua's manual.
 */
#ifndef KNOX_HTTP_ERROR_H
#define KNOX_HTTP_ERROR_H

#include "http_state.h"

/* [-0, +0, m] sets error.method and error.url (sanitized) on the table at
 * the top from the request table at req (0: none). */
void knox_http_set_request_fields(lua_State *L, int req);

/* [-0, +1, m] the knox.Error for a transfer (t may be NULL for failures
 * outside a transfer) that ended with rc, for the request table at req
 * (0: none). kind "transport"; cause = {curl_code, name, text, ambiguous}. */
void knox_http_push_transport_error(lua_State *L, const Session *S, const Transfer *t, CURLcode rc,
                                    int req);

/* [-0, +1, m] the knox.Error for a broken curl multi handle, for the
 * request table at req. cause = {multi_code, name, text, ambiguous=true}. */
void knox_http_push_multi_error(lua_State *L, CURLMcode mc, int req);

/* [-0, +1, m] the knox.Error for a share handle that refused an option.
 * cause = {share_code, name="SHARE_ERROR", text}. */
void knox_http_push_share_error(lua_State *L, CURLSHcode sc);

#endif
