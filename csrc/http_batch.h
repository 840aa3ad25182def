/*
 * http_batch.h — transport layer 6 (top, over http_session.h):
 * session:batch. Defined in http_batch.c, which may call layers 0-5 only.
 * Stack effects as in Lua's manual.
 */
#ifndef KNOX_HTTP_BATCH_H
#define KNOX_HTTP_BATCH_H

#include "knox.h"

/* session:batch(requests [, opts]): [-0, +1, e] the list of results. */
int knox_http_batch(lua_State *L);

#endif
