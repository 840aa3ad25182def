/*
 * http_request.c — transport layer 4 (the transfer layer, beside
 * http_transfer.c): request tables from Lua. Checks method, url, headers,
 * body, timeout and replayable into a Req, and builds the Transfer's
 * curl header list. Raises "bad argument" on misuse, before anything is
 * sent.
 * May call: layers 0-1 (http_state.h), the Lua API, libcurl's slist.
 * Interface: http_request.h.
 */
#include "http_request.h"

#include <limits.h>
#include <math.h>
#include <string.h>
#include <strings.h>

static int is_tchar(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_token(const char *s, size_t n)
{
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    if (!is_tchar((unsigned char)s[i])) return 0;
  }
  return 1;
}

/* Raises "bad argument #argn" naming the batch item when item > 0. */
int knox_http_req_error(lua_State *L, int argn, lua_Integer item, const char *msg)
{
  if (item > 0) msg = lua_pushfstring(L, "request #%I: %s", item, msg);
  return luaL_argerror(L, argn, msg);
}

long knox_http_seconds_to_ms(lua_Number s)
{
  lua_Number ms = ceil(s * 1000.0);
  if (ms < 1) ms = 1;
  if (ms > (lua_Number)LONG_MAX / 2) ms = (lua_Number)LONG_MAX / 2;
  return (long)ms;
}

/* Pushes the raw field `key` (a K_* key) of the table at idx. */
static int rawfield(lua_State *L, int idx, int key)
{
  lua_rawgeti(L, lua_upvalueindex(1), key + 1);
  return lua_rawget(L, idx);
}

/* Where the next header line of the request goes in t->headers. The list
 * of the last request on this transfer is kept and walked in step: a line
 * equal to the one already there (a client sends the same Accept and the
 * same token header request after request) stays, with no allocation;
 * from the first that differs, the rest of the old list is freed and new
 * lines are appended. t->headers is a whole list at every step, so a raise
 * leaks nothing. */
typedef struct {
  struct curl_slist **at;
} Lines;

/* Puts the line (NUL-terminated, len bytes) at ls->at; raises "out of
 * memory". */
static void put_line(lua_State *L, Lines *ls, const char *line, size_t len)
{
  struct curl_slist *cur = *ls->at;
  if (cur != NULL && strncmp(cur->data, line, len + 1) == 0) {
    ls->at = &cur->next;
    return;
  }
  *ls->at = NULL;
  curl_slist_free_all(cur);
  struct curl_slist *nl = curl_slist_append(NULL, line);
  if (nl == NULL) luaL_error(L, "out of memory");
  *ls->at = nl;
  ls->at = &nl->next;
}

/* Ends the list at ls->at: drops what is left of the old one. */
static void end_lines(Lines *ls)
{
  struct curl_slist *rest = *ls->at;
  *ls->at = NULL;
  curl_slist_free_all(rest);
}

/* Puts "name" sep " value" (value may be NULL) as a line. */
static void put_header_line(lua_State *L, Lines *ls, const char *name, size_t nlen, char sep,
                            const char *val, size_t vlen)
{
  char small[512];
  size_t len = nlen + 1 + (val != NULL ? 1 + vlen : 0);
  if (len < sizeof small) {
    memcpy(small, name, nlen);
    small[nlen] = sep;
    if (val != NULL) {
      small[nlen + 1] = ' ';
      memcpy(small + nlen + 2, val, vlen);
    }
    small[len] = '\0';
    put_line(L, ls, small, len);
  } else {
    const char *line = val != NULL ? lua_pushfstring(L, "%s%c %s", name, sep, val) : lua_pushfstring(L, "%s%c", name, sep);
    put_line(L, ls, line, len);
    lua_pop(L, 1);
  }
}

static void load_timeout(lua_State *L, int idx, const Session *S, Req *r, int argn, lua_Integer item)
{
  r->timeout_ms = S->timeout_ms;
  if (rawfield(L, idx, K_TIMEOUT) != LUA_TNIL) {
    int isnum;
    lua_Number s = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !(s > 0) || !isfinite(s)) knox_http_req_error(L, argn, item, "field 'timeout' must be a positive number");
    r->timeout_ms = knox_http_seconds_to_ms(s);
  }
  lua_pop(L, 1);
}

static void load_method(lua_State *L, int idx, Req *r, int argn, lua_Integer item)
{
  size_t len;
  int ty = rawfield(L, idx, K_METHOD);
  if (ty == LUA_TNIL) {
    strcpy(r->method, "GET");
  } else {
    if (ty != LUA_TSTRING) knox_http_req_error(L, argn, item, "field 'method' must be a string");
    const char *m = lua_tolstring(L, -1, &len);
    if (!is_token(m, len) || len >= sizeof r->method) {
      knox_http_req_error(L, argn, item, "field 'method' is not an HTTP method");
    }
    memcpy(r->method, m, len + 1);
  }
  lua_pop(L, 1);
  r->head = strcmp(r->method, "HEAD") == 0;
}

/* The url string stays anchored by the request table. */
static void load_url(lua_State *L, int idx, Req *r, int argn, lua_Integer item)
{
  size_t len;
  if (rawfield(L, idx, K_URL) != LUA_TSTRING) knox_http_req_error(L, argn, item, "field 'url' must be a string");
  r->url = lua_tolstring(L, -1, &len);
  if (len == 0 || strlen(r->url) != len) knox_http_req_error(L, argn, item, "field 'url' must be a non-empty string without NUL");
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)r->url[i];
    if (c <= ' ' || c == 0x7f) knox_http_req_error(L, argn, item, "field 'url' contains a space or control character");
  }
  lua_pop(L, 1);
}

enum { HAS_CTYPE = 1, HAS_EXPECT = 2 };

/* One entry of a headers table, name at -2 and value at -1: checks it and,
 * with ls != NULL, puts its line. Returns its HAS_* flags; may leave values
 * above the entry (the caller resets the stack). */
static int load_header(lua_State *L, Lines *ls, int argn, lua_Integer item)
{
  size_t nlen, vlen = 0;
  if (lua_type(L, -2) != LUA_TSTRING) knox_http_req_error(L, argn, item, "header names must be strings");
  const char *name = lua_tolstring(L, -2, &nlen);
  if (!is_token(name, nlen)) knox_http_req_error(L, argn, item, lua_pushfstring(L, "invalid header name '%s'", name));
  const char *val = NULL;
  int vt = lua_type(L, -1);
  if (vt == LUA_TSTRING || vt == LUA_TNUMBER) {
    lua_pushvalue(L, -1); /* convert a copy: lua_next needs the key intact */
    val = lua_tolstring(L, -1, &vlen);
    if (strlen(val) != vlen || strpbrk(val, "\r\n") != NULL) {
      knox_http_req_error(L, argn, item, lua_pushfstring(L, "header '%s' has a CR, LF or NUL in its value", name));
    }
  } else if (!(vt == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
    knox_http_req_error(L, argn, item, lua_pushfstring(L, "header '%s' must be a string, a number or false", name));
  }
  int flags = 0;
  if (strcasecmp(name, "content-type") == 0) flags |= HAS_CTYPE;
  if (strcasecmp(name, "expect") == 0) flags |= HAS_EXPECT;
  if (ls != NULL) {
    /* "Name: value"; "Name;" sends an empty value; "Name:" (false)
     * removes a header curl would add */
    if (val == NULL) put_header_line(L, ls, name, nlen, ':', NULL, 0);
    else if (vlen == 0) put_header_line(L, ls, name, nlen, ';', NULL, 0);
    else put_header_line(L, ls, name, nlen, ':', val, vlen);
  }
  return flags;
}

/* The headers field: checks every entry and, with ls != NULL, puts their
 * lines. Returns the HAS_* flags of all entries. */
static int load_headers(lua_State *L, int idx, Lines *ls, int argn, lua_Integer item)
{
  int flags = 0;
  int ty = rawfield(L, idx, K_HEADERS);
  if (ty != LUA_TNIL && ty != LUA_TTABLE) knox_http_req_error(L, argn, item, "field 'headers' must be a table");
  if (ty == LUA_TTABLE) {
    int h = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, h) != 0) {
      flags |= load_header(L, ls, argn, item);
      lua_settop(L, h + 1);
    }
  }
  lua_pop(L, 1);
  return flags;
}

/* replayable: may libcurl send the request again by itself when a reused
 * connection turns out dead? Default: only for GET, HEAD and OPTIONS. */
static void load_replayable(lua_State *L, int idx, Req *r, int argn, lua_Integer item)
{
  int ty = rawfield(L, idx, K_REPLAYABLE);
  if (ty == LUA_TNIL) {
    r->replayable = r->head || strcmp(r->method, "GET") == 0 || strcmp(r->method, "OPTIONS") == 0;
  } else if (ty == LUA_TBOOLEAN) {
    r->replayable = lua_toboolean(L, -1);
  } else {
    knox_http_req_error(L, argn, item, "field 'replayable' must be a boolean");
  }
  lua_pop(L, 1);
}

/* [-0, +1, v] the body field, left on the stack to anchor r->body. */
static void load_body(lua_State *L, int idx, Req *r, int argn, lua_Integer item)
{
  int ty = rawfield(L, idx, K_BODY);
  if (ty == LUA_TSTRING) {
    r->body = lua_tolstring(L, -1, &r->body_len);
    if (r->head) knox_http_req_error(L, argn, item, "a HEAD request cannot have a body");
  } else if (ty == LUA_TNIL) {
    /* POST, PUT and PATCH always carry a length, even when empty, or many
     * servers answer 411 */
    if (strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0 ||
        strcmp(r->method, "PATCH") == 0) {
      r->body = "";
    } else {
      r->body = NULL;
    }
    r->body_len = 0;
  } else {
    knox_http_req_error(L, argn, item, "field 'body' must be a string");
  }
}

/* For a request with a body: no 100-continue round trip; no invented form
 * Content-Type (unless the caller set those headers). */
static void add_body_headers(lua_State *L, Lines *ls, int flags)
{
  const char *extra[2] = {(flags & HAS_EXPECT) ? NULL : "Expect:",
                          (flags & HAS_CTYPE) ? NULL : "Content-Type:"};
  for (int k = 0; k < 2; k++) {
    if (extra[k] != NULL) put_line(L, ls, extra[k], strlen(extra[k]));
  }
}

void knox_http_load_request(lua_State *L, int idx, const Session *S, Transfer *t, Req *r,
                            int argn, lua_Integer item)
{
  load_timeout(L, idx, S, r, argn, item);
  load_method(L, idx, r, argn, item);
  load_url(L, idx, r, argn, item);
  Lines ls = {t != NULL ? &t->headers : NULL};
  Lines *lp = t != NULL ? &ls : NULL;
  int flags = load_headers(L, idx, lp, argn, item);
  load_replayable(L, idx, r, argn, item);
  load_body(L, idx, r, argn, item); /* the body (or nil) stays on the stack */
  if (lp != NULL) {
    if (r->body != NULL) add_body_headers(L, lp, flags);
    end_lines(lp);
  }
}
