/*
 * http_debug.h — transport layer 3: the debug hook. Recording during a
 * transfer (a C-only libcurl debug callback), then events built and
 * delivered after it. Defined in http_debug.c, which may call layers 0-2
 * only (http_text.h, http_state.h, http_error.h). Stack effects as in
 * Lua's manual.
 */
#ifndef KNOX_HTTP_DEBUG_H
#define KNOX_HTTP_DEBUG_H

#include "http_state.h"

/* CURLOPT_DEBUGFUNCTION, with the Transfer as CURLOPT_DEBUGDATA: records
 * curl's text and the request headers it sent into t->dbg. Never Lua. */
int knox_http_debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *ud);

/* [-0, +0, m] appends the events of the finished transfer t (request table
 * at req, checked request r) to the list at ev; err is the index of its
 * error object, or 0. */
void knox_http_push_events(lua_State *L, int ev, const Session *S, const Transfer *t, int req,
                           const Req *r, int err);

/* [-0, +(0|1), -] calls the debug hook (uservalue 1 of the session at
 * index 1) with each event under lua_pcall. Returns 0, or 1 with the
 * hook's error on top of the stack. */
int knox_http_deliver_events(lua_State *L, int ev);

#endif
