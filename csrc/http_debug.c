/*
 * http_debug.c — transport layer 3: the debug hook: a C-only libcurl debug
 * callback records curl's text and the request headers it sent; after the
 * transfer these become redacted event tables, which are delivered to the
 * hook under lua_pcall.
 * May call: layers 0-2 (http_text.h, http_state.h, http_error.h), libcurl.
 * Interface: http_debug.h.
 */
#include "http_debug.h"
#include "http_error.h"
#include "http_text.h"

#include <string.h>

#define DEBUG_LIMIT ((size_t)1024 * 1024)   /* buffered debug records */
#define PREVIEW_BYTES ((size_t)2048)        /* body preview in debug events */

/* Records curl's informational text and the request headers it sent; the
 * events are built and redacted after the transfer. */
int knox_http_debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
  Transfer *t = ud;
  char tag;
  (void)h;
  if (type == CURLINFO_TEXT) tag = 'T';
  else if (type == CURLINFO_HEADER_OUT) tag = 'H';
  else return 0;
  if (size > DEBUG_LIMIT - sizeof(size_t) - 1 ||
      t->dbg.len > DEBUG_LIMIT - sizeof(size_t) - 1 - size ||
      !buf_reserve(&t->dbg, 1 + sizeof(size_t) + size)) {
    t->dbg_dropped = 1;
    return 0;
  }
  t->dbg.data[t->dbg.len++] = tag;
  memcpy(t->dbg.data + t->dbg.len, &size, sizeof size);
  t->dbg.len += sizeof size;
  memcpy(t->dbg.data + t->dbg.len, data, size);
  t->dbg.len += size;
  return 0;
}

static void set_seconds(lua_State *L, CURL *h, CURLINFO what, const char *field)
{
  curl_off_t us = 0;
  if (curl_easy_getinfo(h, what, &us) != CURLE_OK) return;
  lua_pushnumber(L, (lua_Number)us / 1e6);
  lua_setfield(L, -2, field);
}

/* ---------------------------------------------------------------------
 * Debug events, built after the transfer from the buffered records.
 */
static void set_preview(lua_State *L, const char *body, size_t len)
{
  if (body == NULL) return;
  knox_http_push_redacted(L, body, len > PREVIEW_BYTES ? PREVIEW_BYTES : len);
  lua_setfield(L, -2, "body");
  lua_pushinteger(L, (lua_Integer)len);
  lua_setfield(L, -2, "body_length");
}

static void append_event(lua_State *L, int ev, lua_Integer index)
{
  if (index > 0) {
    lua_pushinteger(L, index);
    lua_setfield(L, -2, "index");
  }
  lua_rawseti(L, ev, (lua_Integer)lua_rawlen(L, ev) + 1);
}

static void info_event(lua_State *L, int ev, lua_Integer index, const char *text, size_t len)
{
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) len--;
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, "info");
  lua_setfield(L, -2, "type");
  knox_http_push_redacted(L, text, len);
  lua_setfield(L, -2, "text");
  append_event(L, ev, index);
}

/* A request event: headers from what curl sent (block != NULL) or, when
 * nothing was sent, from the header lines the caller asked for. */
static void request_event(lua_State *L, int ev, const Session *S, const Transfer *t, int req,
                          const Req *r, const char *block, size_t blen)
{
  lua_createtable(L, 0, 8);
  lua_pushliteral(L, "request");
  lua_setfield(L, -2, "type");
  lua_pushstring(L, r->method);
  lua_setfield(L, -2, "method");
  knox_http_set_request_fields(L, req);
  if (block != NULL) {
    knox_http_push_header_block(L, block, blen, 1, 1, 0);
  } else {
    lua_newtable(L);
    int tbl = lua_gettop(L);
    for (const struct curl_slist *l = t->headers; l != NULL; l = l->next) {
      const char *colon = strpbrk(l->data, ":;");
      if (colon == NULL) continue;
      const char *v = colon + 1;
      while (*v == ' ') v++;
      if (*v == '\0' && *colon == ':') continue; /* a curl header removal */
      knox_http_add_header(L, tbl, l->data, (size_t)(colon - l->data), v, strlen(v), 1, ", ", 1);
    }
    knox_http_join_headers(L, tbl);
  }
  lua_setfield(L, -2, "headers");
  lua_pushboolean(L, block != NULL);
  lua_setfield(L, -2, "sent");
  lua_pushboolean(L, S->verify);
  lua_setfield(L, -2, "verify");
  set_preview(L, r->body, r->body_len);
  append_event(L, ev, t->index);
}

/* The response event, when a response (a status) arrived. */
static void response_event(lua_State *L, int ev, const Transfer *t)
{
  long status = knox_http_info_long(t->easy, CURLINFO_RESPONSE_CODE, 0);
  if (status <= 0) return;
  lua_createtable(L, 0, 8);
  lua_pushliteral(L, "response");
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  const char *ver = knox_http_version_text(knox_http_info_long(t->easy, CURLINFO_HTTP_VERSION, 0));
  if (ver != NULL) {
    lua_pushstring(L, ver);
    lua_setfield(L, -2, "http_version");
  }
  knox_http_push_header_block(L, t->head.data, t->head.len, 1, 1, 0);
  lua_setfield(L, -2, "headers");
  set_preview(L, t->body.data != NULL ? t->body.data : "", t->body.len);
  set_seconds(L, t->easy, CURLINFO_TOTAL_TIME_T, "total_time");
  append_event(L, ev, t->index);
}

/* The closing event of a failed transfer, carrying the error at err. */
static void failure_event(lua_State *L, int ev, const Transfer *t, int err)
{
  lua_createtable(L, 0, 4);
  lua_pushliteral(L, "info");
  lua_setfield(L, -2, "type");
  lua_pushliteral(L, "transfer failed");
  lua_setfield(L, -2, "text");
  lua_pushvalue(L, err);
  lua_setfield(L, -2, "error");
  append_event(L, ev, t->index);
}

/* Appends the events of a finished transfer to the list at ev. The error
 * object (if any) is at err. */
void knox_http_push_events(lua_State *L, int ev, const Session *S, const Transfer *t, int req,
                           const Req *r, int err)
{
  int sent = 0;
  if (!S->verify) {
    static const char msg[] = "TLS certificate verification is disabled (verify=false)";
    info_event(L, ev, t->index, msg, sizeof msg - 1);
  }
  /* the records are complete because they were written before curl returned */
  const char *p = t->dbg.data;
  size_t left = t->dbg.len;
  while (left >= 1 + sizeof(size_t)) {
    char tag = p[0];
    size_t len;
    memcpy(&len, p + 1, sizeof len);
    const char *d = p + 1 + sizeof len;
    if (len > left - 1 - sizeof len) break;
    if (tag == 'H') {
      request_event(L, ev, S, t, req, r, d, len);
      sent = 1;
    } else {
      info_event(L, ev, t->index, d, len);
    }
    p = d + len;
    left -= 1 + sizeof len + len;
  }
  if (!sent) request_event(L, ev, S, t, req, r, NULL, 0);
  if (t->dbg_dropped) {
    static const char msg[] = "some debug events were dropped (over 1 MiB)";
    info_event(L, ev, t->index, msg, sizeof msg - 1);
  }
  response_event(L, ev, t);
  if (err != 0) failure_event(L, ev, t, err);
}

/* Calls the debug hook with each event under lua_pcall. Returns 0, or 1
 * with the hook's error on top of the stack. */
int knox_http_deliver_events(lua_State *L, int ev)
{
  lua_Integer n = (lua_Integer)lua_rawlen(L, ev);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_getiuservalue(L, 1, 1);
    lua_rawgeti(L, ev, i);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) return 1;
  }
  return 0;
}

