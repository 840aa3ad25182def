/*
 * http_text.h — transport layer 0 (bottom): raw HTTP text to Lua values
 * (header blocks to tables) and redaction of secrets. Lua API only: no
 * curl, no transport state; calls nothing in the transport.
 * Defined in http_text.c. Stack effects as in Lua's manual.
 */
#ifndef KNOX_HTTP_TEXT_H
#define KNOX_HTTP_TEXT_H

#include "knox.h"

#include <stddef.h>

/* Redaction (to move, as is, into a shared text module). */
/* [-0, +1, m] s[0..n) with every secret value replaced by "[redacted]". */
void knox_http_push_redacted(lua_State *L, const char *s, size_t n);
/* [-0, +1, m] url without userinfo and with secret query values redacted. */
void knox_http_push_safe_url(lua_State *L, const char *url);

/* Header blocks. */
/* [-0, +0, m] tbl[lower(name)] = val, redacted when redact is set. With
 * maybe_dup, a name already in tbl keeps its value and gains sep and val
 * (as a list of parts: knox_http_join_headers must follow the last add). */
void knox_http_add_header(lua_State *L, int tbl, const char *name, size_t nlen,
                          const char *val, size_t vlen, int redact, const char *sep, int maybe_dup);
/* [-0, +0, m] joins every list of parts in tbl into one string. */
void knox_http_join_headers(lua_State *L, int tbl);
/* [-0, +1, m] the table of the common lower-case header names, which
 * knox_http_push_header_block takes as names. */
void knox_http_push_header_names(lua_State *L);
/* [-0, +1, m] the header table of a block of lines; skip_first drops a
 * status or request line; names: the index of the table of
 * knox_http_push_header_names (a session method's upvalue 2), or 0. */
void knox_http_push_header_block(lua_State *L, const char *p, size_t n, int skip_first, int redact, int names);

#endif
