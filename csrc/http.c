/*
 * http.c — knox.Session, the only code in knox that touches the network.
 *
 * A session owns one libcurl easy handle that is reused for every
 * session:request (so connections, DNS answers and TLS sessions stay warm),
 * a share handle for DNS and TLS sessions, and, once session:batch is used,
 * a multi handle with a pool of easy handles that later batches reuse.
 *
 * Mechanism only: no retries, no auth, no JSON. Every libcurl callback
 * is plain C that fills a buffer; Lua runs only after curl has returned
 * (results, knox.Error objects, and the debug hook, which is called under
 * lua_pcall with events buffered during the transfer and redacted).
 *
 * This file: session lifetime and options, request checking and setup,
 * session:request, results. Beside it: http_error.c (transport failures),
 * http_text.c (headers and redaction), http_debug.c (debug events),
 * http_batch.c (session:batch).
 */
#include "http_internal.h"

#include <limits.h>
#include <math.h>
#include <strings.h>

/* ---------------------------------------------------------------------
 * libcurl callbacks: C only, never Lua.
 */
static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
  Transfer *t = ud;
  size_t n = size * nmemb;
  if ((curl_off_t)n > t->max_body - (curl_off_t)t->body.len) {
    t->fail = FAIL_TOO_LARGE;
    return 0;
  }
  if (t->body.len == 0) {
    /* A declared length is only a hint (compressed, or a lie), so it sizes
     * the first allocation but never bounds the body. */
    curl_off_t cl = -1;
    if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
        cl > 0 && cl <= t->max_body && (uint64_t)cl < SIZE_MAX / 4) {
      (void)buf_reserve(&t->body, (size_t)cl);
    }
  }
  if (!buf_add(&t->body, ptr, n)) {
    t->fail = FAIL_OOM;
    return 0;
  }
  return n;
}

/* The request body of a request that must not be replayed is handed to
 * curl through this callback instead of CURLOPT_POSTFIELDS, so that curl
 * has to rewind it to send it again. */
static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
  Transfer *t = ud;
  size_t n = size * nitems;
  if (n > t->upload_left) n = t->upload_left;
  memcpy(buf, t->upload, n);
  t->upload += n;
  t->upload_left -= n;
  return n;
}

/* ... and the rewind always fails. libcurl silently sends a request again
 * on a fresh connection when a reused one dies before any response byte
 * arrives ("Connection died, retrying a fresh connect"), whatever the
 * method; the server may have acted on the first copy. For a write that
 * would be a retry behind the caller's back, so here it ends the transfer
 * with CURLE_SEND_FAIL_REWIND, an ambiguous failure the retry policy sees. */
static int seek_refuse_cb(void *ud, curl_off_t offset, int origin)
{
  (void)ud;
  (void)offset;
  (void)origin;
  return CURL_SEEKFUNC_CANTSEEK;
}

static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
  Transfer *t = ud;
  size_t n = size * nmemb;
  /* A new status line starts a new block (after 100 Continue, or a proxy's
   * CONNECT reply): only the final response's headers are kept. */
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) t->head.len = 0;
  if (n > HEADER_LIMIT - t->head.len) {
    t->fail = FAIL_HEADERS_TOO_LARGE;
    return 0;
  }
  if (!buf_add(&t->head, ptr, n)) {
    t->fail = FAIL_OOM;
    return 0;
  }
  return n;
}

/* ---------------------------------------------------------------------
 * Results.
 */
long knox_http_info_long(CURL *h, CURLINFO what, long def)
{
  long v = def;
  if (curl_easy_getinfo(h, what, &v) != CURLE_OK) return def;
  return v;
}

const char *knox_http_version_text(long v)
{
  switch (v) {
  case CURL_HTTP_VERSION_1_0: return "1.0";
  case CURL_HTTP_VERSION_1_1: return "1.1";
  case CURL_HTTP_VERSION_2_0: return "2";
  case CURL_HTTP_VERSION_3: return "3";
  default: return NULL;
  }
}

/* The keys of info tables and request tables, interned once into a table
 * that the session methods hold as their first upvalue: a raw access with
 * a ready key string is cheaper than lua_setfield/lua_getfield, and this
 * runs for every request and response. */
#define INFO_KEYS(X) \
  X(TOTAL_TIME, "total_time") X(NAMELOOKUP_TIME, "namelookup_time") \
  X(CONNECT_TIME, "connect_time") X(TLS_TIME, "tls_time") \
  X(STARTTRANSFER_TIME, "starttransfer_time") X(HTTP_VERSION, "http_version") \
  X(REMOTE_IP, "remote_ip") X(REMOTE_PORT, "remote_port") X(LOCAL_PORT, "local_port") \
  X(NUM_CONNECTS, "num_connects") X(REUSED, "reused") X(REQUEST_SIZE, "request_size") \
  X(METHOD, "method") X(URL, "url") X(HEADERS, "headers") X(BODY, "body") X(TIMEOUT, "timeout") \
  X(REPLAYABLE, "replayable")

enum {
#define X(id, name) K_##id,
  INFO_KEYS(X)
#undef X
  K_COUNT
};

static void push_info_keys(lua_State *L)
{
  static const char *const names[] = {
#define X(id, name) name,
    INFO_KEYS(X)
#undef X
  };
  lua_createtable(L, K_COUNT, 0);
  for (int k = 0; k < K_COUNT; k++) {
    lua_pushstring(L, names[k]);
    lua_rawseti(L, -2, k + 1);
  }
}

/* Sets info[key] = the value on top (popped); the info table is at -2. */
static void set_info(lua_State *L, int key)
{
  lua_rawgeti(L, lua_upvalueindex(1), key + 1);
  lua_insert(L, -2);
  lua_rawset(L, -3);
}

static void info_seconds(lua_State *L, CURL *h, CURLINFO what, int key)
{
  curl_off_t us = 0;
  if (curl_easy_getinfo(h, what, &us) != CURLE_OK) return;
  lua_pushnumber(L, (lua_Number)us / 1e6);
  set_info(L, key);
}

/* [-0, +1, m] the info table of the last transfer on h. Only for
 * l_request and knox_http_batch, which carry the keys as upvalue 1. */
static void push_info(lua_State *L, CURL *h)
{
  char *ip = NULL;
  lua_createtable(L, 0, K_COUNT);
  info_seconds(L, h, CURLINFO_TOTAL_TIME_T, K_TOTAL_TIME);
  info_seconds(L, h, CURLINFO_NAMELOOKUP_TIME_T, K_NAMELOOKUP_TIME);
  info_seconds(L, h, CURLINFO_CONNECT_TIME_T, K_CONNECT_TIME);
  info_seconds(L, h, CURLINFO_APPCONNECT_TIME_T, K_TLS_TIME);
  info_seconds(L, h, CURLINFO_STARTTRANSFER_TIME_T, K_STARTTRANSFER_TIME);
  const char *ver = knox_http_version_text(knox_http_info_long(h, CURLINFO_HTTP_VERSION, 0));
  if (ver != NULL) {
    lua_pushstring(L, ver);
    set_info(L, K_HTTP_VERSION);
  }
  if (curl_easy_getinfo(h, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip != NULL && ip[0] != '\0') {
    lua_pushstring(L, ip);
    set_info(L, K_REMOTE_IP);
  }
  long port = knox_http_info_long(h, CURLINFO_PRIMARY_PORT, 0);
  if (port > 0) {
    lua_pushinteger(L, port);
    set_info(L, K_REMOTE_PORT);
  }
  long lport = knox_http_info_long(h, CURLINFO_LOCAL_PORT, 0);
  if (lport > 0) {
    lua_pushinteger(L, lport);
    set_info(L, K_LOCAL_PORT);
  }
  long nconn = knox_http_info_long(h, CURLINFO_NUM_CONNECTS, 0);
  lua_pushinteger(L, nconn);
  set_info(L, K_NUM_CONNECTS);
  lua_pushboolean(L, nconn == 0);
  set_info(L, K_REUSED);
  lua_pushinteger(L, knox_http_info_long(h, CURLINFO_REQUEST_SIZE, 0));
  set_info(L, K_REQUEST_SIZE);
}

/* [-0, +4, m] status, headers, body, info of a finished transfer. */
void knox_http_push_response(lua_State *L, Transfer *t)
{
  lua_pushinteger(L, knox_http_info_long(t->easy, CURLINFO_RESPONSE_CODE, 0));
  knox_http_push_header_block(L, t->head.data, t->head.len, 1, 0);
  lua_pushlstring(L, t->body.data != NULL ? t->body.data : "", t->body.len);
  push_info(L, t->easy);
}

/* ---------------------------------------------------------------------
 * Easy handle setup.
 */
#define SETOPT(h, opt, val) \
  do { \
    CURLcode rc_ = curl_easy_setopt((h), (opt), (val)); \
    if (rc_ != CURLE_OK) return rc_; \
  } while (0)

/* Session-wide options, set once on each easy handle the session creates. */
CURLcode knox_http_apply_session(const Session *S, Transfer *t)
{
  CURL *h = t->easy;
  long verify = S->verify ? 1L : 0L;
  t->max_body = S->max_response;
  SETOPT(h, CURLOPT_SHARE, S->share);
  SETOPT(h, CURLOPT_PRIVATE, (void *)t);
  SETOPT(h, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
  SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
  SETOPT(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  SETOPT(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  SETOPT(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
  SETOPT(h, CURLOPT_ERRORBUFFER, t->errbuf);
  SETOPT(h, CURLOPT_WRITEFUNCTION, write_cb);
  SETOPT(h, CURLOPT_WRITEDATA, (void *)t);
  SETOPT(h, CURLOPT_HEADERFUNCTION, header_cb);
  SETOPT(h, CURLOPT_HEADERDATA, (void *)t);
  SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, S->connect_timeout_ms);
  SETOPT(h, CURLOPT_LOW_SPEED_LIMIT, S->low_speed_limit);
  SETOPT(h, CURLOPT_LOW_SPEED_TIME, S->low_speed_time);
  if (S->proxy != NULL) SETOPT(h, CURLOPT_PROXY, S->proxy);
  if (S->noproxy != NULL) SETOPT(h, CURLOPT_NOPROXY, S->noproxy);
  if (S->ca_file != NULL || S->ca_path != NULL) {
    /* A CA the caller names replaces libcurl's built-in bundle and
     * directory instead of joining them (NULL clears the other one), so
     * ca_file = "private-ca.pem" trusts that CA only. A proxy may also be
     * verified with it, on top of the defaults. */
    SETOPT(h, CURLOPT_CAINFO, S->ca_file);
    SETOPT(h, CURLOPT_CAPATH, S->ca_path);
    if (S->ca_file != NULL) SETOPT(h, CURLOPT_PROXY_CAINFO, S->ca_file);
    if (S->ca_path != NULL) SETOPT(h, CURLOPT_PROXY_CAPATH, S->ca_path);
  }
  SETOPT(h, CURLOPT_SSL_VERIFYPEER, verify);
  SETOPT(h, CURLOPT_SSL_VERIFYHOST, verify * 2);
  SETOPT(h, CURLOPT_PROXY_SSL_VERIFYPEER, verify);
  SETOPT(h, CURLOPT_PROXY_SSL_VERIFYHOST, verify * 2);
  SETOPT(h, CURLOPT_USERAGENT, S->user_agent);
  if (S->http_version != 0) SETOPT(h, CURLOPT_HTTP_VERSION, S->http_version);
  if (S->accept_encoding != NULL) SETOPT(h, CURLOPT_ACCEPT_ENCODING, S->accept_encoding);
  SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
  SETOPT(h, CURLOPT_TCP_KEEPIDLE, 60L);
  SETOPT(h, CURLOPT_TCP_KEEPINTVL, 30L);
  /* a proxy's CONNECT reply is not the response; custom headers (tokens)
   * go to the origin only, never to the proxy */
  SETOPT(h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  SETOPT(h, CURLOPT_HEADEROPT, CURLHEADER_SEPARATE);
  if (S->has_debug) {
    SETOPT(h, CURLOPT_DEBUGFUNCTION, knox_http_debug_cb);
    SETOPT(h, CURLOPT_DEBUGDATA, (void *)t);
    SETOPT(h, CURLOPT_VERBOSE, 1L);
  }
  return CURLE_OK;
}

/* Per-request options. Every option a previous request may have set is set
 * again, so nothing leaks from one request on a reused handle to the next. */
CURLcode knox_http_apply_request(Transfer *t, const Req *r)
{
  CURL *h = t->easy;
  t->body.len = t->head.len = t->dbg.len = 0;
  t->fail = FAIL_NONE;
  t->dbg_dropped = 0;
  t->errbuf[0] = '\0';
  SETOPT(h, CURLOPT_URL, r->url);
  SETOPT(h, CURLOPT_HTTPHEADER, t->headers);
  if (r->body != NULL && !r->replayable) {
    t->upload = r->body;
    t->upload_left = r->body_len;
    SETOPT(h, CURLOPT_NOBODY, 0L);
    SETOPT(h, CURLOPT_POST, 1L);
    SETOPT(h, CURLOPT_POSTFIELDS, (const char *)NULL);
    SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    SETOPT(h, CURLOPT_READFUNCTION, read_cb);
    SETOPT(h, CURLOPT_READDATA, (void *)t);
    SETOPT(h, CURLOPT_SEEKFUNCTION, seek_refuse_cb);
    SETOPT(h, CURLOPT_SEEKDATA, (void *)t);
    SETOPT(h, CURLOPT_CUSTOMREQUEST, strcmp(r->method, "POST") == 0 ? (const char *)NULL : r->method);
  } else if (r->body != NULL) {
    SETOPT(h, CURLOPT_NOBODY, 0L);
    SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    SETOPT(h, CURLOPT_POSTFIELDS, r->body);
    SETOPT(h, CURLOPT_SEEKFUNCTION, (curl_seek_callback)NULL);
    SETOPT(h, CURLOPT_CUSTOMREQUEST, strcmp(r->method, "POST") == 0 ? (const char *)NULL : r->method);
  } else {
    SETOPT(h, CURLOPT_HTTPGET, 1L);
    SETOPT(h, CURLOPT_NOBODY, r->head ? 1L : 0L);
    SETOPT(h, CURLOPT_CUSTOMREQUEST,
           (r->head || strcmp(r->method, "GET") == 0) ? (const char *)NULL : r->method);
  }
  /* curl rewinds (and so can refuse to resend, see seek_refuse_cb) only a
   * body it has sent bytes of: a write with no body bytes that must not be
   * replayed gets a connection of its own instead, so there is no dead
   * reused connection for curl to retry from */
  SETOPT(h, CURLOPT_FRESH_CONNECT, (!r->replayable && r->body_len == 0) ? 1L : 0L);
  SETOPT(h, CURLOPT_TIMEOUT_MS, r->timeout_ms);
  /* curl checks a declared length against the limit even for HEAD, which
   * has no body; the write callback still bounds whatever does arrive */
  SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, r->head ? (curl_off_t)0 : t->max_body);
  return CURLE_OK;
}

/* ---------------------------------------------------------------------
 * Argument checking.
 */
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

static long seconds_to_ms(lua_Number s)
{
  lua_Number ms = ceil(s * 1000.0);
  if (ms < 1) ms = 1;
  if (ms > (lua_Number)LONG_MAX / 2) ms = (lua_Number)LONG_MAX / 2;
  return (long)ms;
}

/* Reads and checks the request table at idx into r; with t != NULL also
 * builds t->headers. Pushes the body string (or nil) so that it stays
 * anchored while curl points at it. Raises "bad argument" on misuse. */
/* Pushes the raw field `key` (a K_* key) of the table at idx. */
static int rawfield(lua_State *L, int idx, int key)
{
  lua_rawgeti(L, lua_upvalueindex(1), key + 1);
  return lua_rawget(L, idx);
}

void knox_http_load_request(lua_State *L, int idx, const Session *S, Transfer *t, Req *r,
                         int argn, lua_Integer item)
{
  size_t len;
  int has_ctype = 0, has_expect = 0;

  r->timeout_ms = S->timeout_ms;
  if (rawfield(L, idx, K_TIMEOUT) != LUA_TNIL) {
    int isnum;
    lua_Number s = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !(s > 0) || !isfinite(s)) knox_http_req_error(L, argn, item, "field 'timeout' must be a positive number");
    r->timeout_ms = seconds_to_ms(s);
  }
  lua_pop(L, 1);

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

  if (rawfield(L, idx, K_URL) != LUA_TSTRING) knox_http_req_error(L, argn, item, "field 'url' must be a string");
  r->url = lua_tolstring(L, -1, &len);
  if (len == 0 || strlen(r->url) != len) knox_http_req_error(L, argn, item, "field 'url' must be a non-empty string without NUL");
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)r->url[i];
    if (c <= ' ' || c == 0x7f) knox_http_req_error(L, argn, item, "field 'url' contains a space or control character");
  }
  lua_pop(L, 1);

  ty = rawfield(L, idx, K_HEADERS);
  if (ty != LUA_TNIL && ty != LUA_TTABLE) knox_http_req_error(L, argn, item, "field 'headers' must be a table");
  if (t != NULL) {
    curl_slist_free_all(t->headers);
    t->headers = NULL;
  }
  if (ty == LUA_TTABLE) {
    int h = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, h) != 0) {
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
      if (strcasecmp(name, "content-type") == 0) has_ctype = 1;
      if (strcasecmp(name, "expect") == 0) has_expect = 1;
      if (t != NULL) {
        /* "Name: value"; "Name;" sends an empty value; "Name:" (false)
         * removes a header curl would add */
        const char *line = val == NULL ? lua_pushfstring(L, "%s:", name)
                         : vlen == 0 ? lua_pushfstring(L, "%s;", name)
                         : lua_pushfstring(L, "%s: %s", name, val);
        struct curl_slist *nl = curl_slist_append(t->headers, line);
        if (nl == NULL) luaL_error(L, "out of memory");
        t->headers = nl;
        lua_pop(L, 1);
      }
      lua_settop(L, h + 1);
    }
  }
  lua_pop(L, 1);

  /* replayable: may libcurl send the request again by itself when a reused
   * connection turns out dead? Default: only for GET, HEAD and OPTIONS. */
  ty = rawfield(L, idx, K_REPLAYABLE);
  if (ty == LUA_TNIL) {
    r->replayable = r->head || strcmp(r->method, "GET") == 0 || strcmp(r->method, "OPTIONS") == 0;
  } else if (ty == LUA_TBOOLEAN) {
    r->replayable = lua_toboolean(L, -1);
  } else {
    knox_http_req_error(L, argn, item, "field 'replayable' must be a boolean");
  }
  lua_pop(L, 1);

  ty = rawfield(L, idx, K_BODY);
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
  if (t != NULL && r->body != NULL) {
    /* no 100-continue round trip; no invented form Content-Type */
    const char *extra[2] = {has_expect ? NULL : "Expect:", has_ctype ? NULL : "Content-Type:"};
    for (int k = 0; k < 2; k++) {
      if (extra[k] == NULL) continue;
      struct curl_slist *nl = curl_slist_append(t->headers, extra[k]);
      if (nl == NULL) luaL_error(L, "out of memory");
      t->headers = nl;
    }
  }
  /* the body (or nil) stays on the stack */
}

/* ---------------------------------------------------------------------
 * Session lifetime.
 */
void knox_http_transfer_free(Transfer *t)
{
  if (t->easy != NULL) curl_easy_cleanup(t->easy);
  t->easy = NULL;
  curl_slist_free_all(t->headers);
  t->headers = NULL;
  buf_free(&t->body);
  buf_free(&t->head);
  buf_free(&t->dbg);
}

static void session_free(Session *S)
{
  for (int i = 0; i < S->npool; i++) {
    Transfer *t = S->pool[i];
    if (t->in_multi && S->multi != NULL) curl_multi_remove_handle(S->multi, t->easy);
    knox_http_transfer_free(t);
    free(t);
  }
  free(S->pool);
  S->pool = NULL;
  S->npool = 0;
  if (S->multi != NULL) curl_multi_cleanup(S->multi);
  S->multi = NULL;
  knox_http_transfer_free(&S->main);
  /* last: no easy handle uses the share any more */
  if (S->share != NULL) curl_share_cleanup(S->share);
  S->share = NULL;
  char **strs[] = {&S->proxy, &S->noproxy, &S->ca_file, &S->ca_path, &S->user_agent, &S->accept_encoding};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    free(*strs[i]);
    *strs[i] = NULL;
  }
  S->closed = 1;
}

Session *knox_http_check_session(lua_State *L, int idx)
{
  Session *S = luaL_checkudata(L, idx, SESSION_MT);
  if (S->closed) knox_error_throw(L, "closed", "knox.Session is closed");
  if (S->busy) luaL_error(L, "knox.Session is busy (used again from inside its own request)");
  return S;
}

/* Marks the session busy until the calling C function returns or raises:
 * pushes the session's guard as a to-be-closed value. */
void knox_http_begin_busy(lua_State *L, Session *S)
{
  lua_getiuservalue(L, 1, 2);
  lua_toclose(L, -1);
  S->busy = 1;
}

/* guard:__close(): [-0, +0, -] clears the busy mark. */
static int l_guard_close(lua_State *L)
{
  /* only ever called on the guard that begin_busy marked */
  Session **pS = lua_touserdata(L, 1);
  if (pS == NULL) return 0;
  if (*pS != NULL) (*pS)->busy = 0;
  return 0;
}

/* session:close() (also __gc, __close): [-0, +0, v] frees the handles;
 * idempotent. Raises when called from inside the session's own request
 * (e.g. by a finalizer), since the transfer still uses them. */
static int l_close(lua_State *L)
{
  Session *S = luaL_checkudata(L, 1, SESSION_MT);
  if (S->busy) return luaL_error(L, "knox.Session is busy (closed from inside its own request)");
  if (!S->closed) session_free(S);
  return 0;
}

/* __gc: [-0, +0, -] like close, but never raises. */
static int l_gc(lua_State *L)
{
  Session *S = luaL_checkudata(L, 1, SESSION_MT);
  if (!S->closed) session_free(S);
  return 0;
}

/* __tostring: [-0, +1, m] */
static int l_tostring(lua_State *L)
{
  Session *S = luaL_checkudata(L, 1, SESSION_MT);
  if (S->closed) lua_pushliteral(L, "knox.Session (closed)");
  else lua_pushfstring(L, "knox.Session (%p)", (void *)S);
  return 1;
}

static char *dup_or_raise(lua_State *L, const char *s)
{
  char *d = strdup(s);
  if (d == NULL) luaL_error(L, "out of memory");
  return d;
}

/* A string option: NULL when absent; raises "bad argument" otherwise. */
static const char *opt_string(lua_State *L, const char *key)
{
  size_t len;
  int ty = lua_getfield(L, 1, key);
  if (ty == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (ty != LUA_TSTRING) luaL_argerror(L, 1, lua_pushfstring(L, "option '%s' must be a string", key));
  const char *s = lua_tolstring(L, -1, &len);
  if (strlen(s) != len) luaL_argerror(L, 1, lua_pushfstring(L, "option '%s' contains NUL", key));
  lua_pop(L, 1); /* the options table keeps the string; it is copied at once */
  return s;
}

/* A positive finite number option, or def when absent. */
static lua_Number opt_number(lua_State *L, const char *key, lua_Number def)
{
  int isnum;
  if (lua_getfield(L, 1, key) == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  lua_Number v = lua_tonumberx(L, -1, &isnum);
  if (!isnum || !isfinite(v) || !(v > 0)) {
    luaL_argerror(L, 1, lua_pushfstring(L, "option '%s' must be a positive number", key));
  }
  lua_pop(L, 1);
  return v;
}

static const char *const session_options[] = {
  "timeout", "connect_timeout", "low_speed_limit", "low_speed_time", "proxy", "noproxy",
  "ca_file", "ca_path", "verify", "user_agent", "http_version", "max_response_bytes",
  "accept_encoding", "debug", NULL,
};

/* Reads the options table at index 1 into S; raises "bad argument". */
static void read_options(lua_State *L, Session *S)
{
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    int known = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      for (int i = 0; session_options[i] != NULL; i++) known |= strcmp(k, session_options[i]) == 0;
    }
    if (!known) {
      lua_pushvalue(L, -2);
      luaL_argerror(L, 1, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -1, NULL)));
    }
    lua_pop(L, 1);
  }

  S->timeout_ms = seconds_to_ms(opt_number(L, "timeout", DEFAULT_TIMEOUT_MS / 1000.0));
  S->connect_timeout_ms =
    seconds_to_ms(opt_number(L, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_MS / 1000.0));
  lua_Number lsl = opt_number(L, "low_speed_limit", -1);
  lua_Number lst = opt_number(L, "low_speed_time", -1);
  if (lsl > 0 || lst > 0) {
    /* either one enables the check; the other gets a sensible default */
    S->low_speed_limit = lsl > 0 ? (long)fmin(lsl, (lua_Number)LONG_MAX / 2) : 1L;
    S->low_speed_time = lst > 0 ? (long)ceil(fmin(lst, 86400.0)) : 30L;
  }
  lua_Number max = opt_number(L, "max_response_bytes", (lua_Number)DEFAULT_MAX_RESPONSE);
  S->max_response = max >= 9.0e15 ? (curl_off_t)9000000000000000LL : (curl_off_t)max;

  int ty = lua_getfield(L, 1, "verify");
  if (ty != LUA_TNIL && ty != LUA_TBOOLEAN) luaL_argerror(L, 1, "option 'verify' must be a boolean");
  S->verify = ty == LUA_TNIL || lua_toboolean(L, -1);
  lua_pop(L, 1);

  const char *v = opt_string(L, "http_version");
  if (v == NULL) S->http_version = 0;
  else if (strcmp(v, "1.1") == 0) S->http_version = CURL_HTTP_VERSION_1_1;
  else if (strcmp(v, "2") == 0) S->http_version = CURL_HTTP_VERSION_2_0;
  else if (strcmp(v, "2-prior-knowledge") == 0) S->http_version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
  else luaL_argerror(L, 1, "option 'http_version' must be \"1.1\", \"2\" or \"2-prior-knowledge\"");

  static const char *const str_keys[] = {"proxy", "noproxy", "ca_file", "ca_path", "user_agent"};
  char **str_dst[] = {&S->proxy, &S->noproxy, &S->ca_file, &S->ca_path, &S->user_agent};
  for (size_t i = 0; i < sizeof str_keys / sizeof str_keys[0]; i++) {
    const char *s = opt_string(L, str_keys[i]);
    if (s != NULL) *str_dst[i] = dup_or_raise(L, s);
  }
  if (S->user_agent == NULL) {
    const char *ua = lua_pushfstring(L, "knox-lua/%s libcurl/%s Lua %s.%s", KNOX_VERSION,
                                     curl_version_info(CURLVERSION_NOW)->version,
                                     LUA_VERSION_MAJOR, LUA_VERSION_MINOR);
    S->user_agent = dup_or_raise(L, ua);
    lua_pop(L, 1);
  }

  /* false: no Accept-Encoding, bodies come back as sent */
  ty = lua_getfield(L, 1, "accept_encoding");
  int enc_off = ty == LUA_TBOOLEAN && !lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!enc_off) {
    const char *enc = opt_string(L, "accept_encoding");
    if (enc == NULL) {
      enc = (curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_BROTLI) ? "gzip, br" : "gzip";
    }
    S->accept_encoding = dup_or_raise(L, enc);
  }

  ty = lua_getfield(L, 1, "debug");
  if (ty != LUA_TNIL && ty != LUA_TFUNCTION) luaL_argerror(L, 1, "option 'debug' must be a function");
  S->has_debug = ty == LUA_TFUNCTION;
  lua_setiuservalue(L, 2, 1);
}

/* core.session([opts]): [-0, +1, e] a new knox.Session. Raises "bad
 * argument" for a wrong option, knox.Error kind "transport" when libcurl
 * cannot create or configure its handles. */
static int l_session(lua_State *L)
{
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);

  /* the userdata first: from here on __gc owns whatever gets allocated */
  Session *S = lua_newuserdatauv(L, sizeof *S, 2);
  memset(S, 0, sizeof *S);
  luaL_setmetatable(L, SESSION_MT);

  Session **guard = lua_newuserdatauv(L, sizeof *guard, 0);
  *guard = S;
  luaL_setmetatable(L, GUARD_MT);
  lua_setiuservalue(L, 2, 2);

  read_options(L, S);

  CURLSHcode sc;
  S->share = curl_share_init();
  if (S->share == NULL) {
    knox_http_push_transport_error(L, S, NULL, CURLE_OUT_OF_MEMORY, 0);
    return knox_error_raise(L);
  }
  if ((sc = curl_share_setopt(S->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS)) != CURLSHE_OK ||
      (sc = curl_share_setopt(S->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION)) != CURLSHE_OK) {
    knox_error_new(L, "transport", curl_share_strerror(sc));
    lua_createtable(L, 0, 3);
    knox_error_setint(L, "share_code", (lua_Integer)sc);
    knox_error_setstr(L, "name", "SHARE_ERROR");
    knox_error_setstr(L, "text", curl_share_strerror(sc));
    lua_setfield(L, -2, "cause");
    knox_error_setbool(L, "retryable", 0);
    return knox_error_raise(L);
  }
  S->main.easy = curl_easy_init();
  if (S->main.easy == NULL) {
    knox_http_push_transport_error(L, S, NULL, CURLE_FAILED_INIT, 0);
    return knox_error_raise(L);
  }
  CURLcode rc = knox_http_apply_session(S, &S->main);
  if (rc != CURLE_OK) {
    knox_http_push_transport_error(L, S, NULL, rc, 0);
    return knox_error_raise(L);
  }
  lua_settop(L, 2);
  return 1;
}

/* session:request{ method=, url=, headers=, body=, timeout= }:
 * [-0, +4, e] status, headers, body, info. Raises knox.Error kind
 * "transport" (after curl has returned) for a transport failure, kind
 * "closed" on a closed session, "bad argument" for a malformed request,
 * and re-raises whatever the debug hook raised. */
static int l_request(lua_State *L)
{
  Session *S = knox_http_check_session(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  Transfer *t = &S->main;
  Req r;
  knox_http_load_request(L, 2, S, t, &r, 2, 0); /* body anchored at 3 */
  int ev = 0;
  if (S->has_debug) {
    lua_newtable(L);
    ev = lua_gettop(L);
  }
  knox_http_begin_busy(L, S);

  CURLcode rc = knox_http_apply_request(t, &r);
  if (rc == CURLE_OK) rc = curl_easy_perform(t->easy);

  /* curl has returned; Lua may run again */
  int base = lua_gettop(L);
  if (rc != CURLE_OK) knox_http_push_transport_error(L, S, t, rc, 2);
  else knox_http_push_response(L, t);
  if (ev) knox_http_push_events(L, ev, S, t, 2, &r, rc != CURLE_OK ? base + 1 : 0);
  buf_trim(&t->body);
  buf_trim(&t->head);
  buf_trim(&t->dbg);
  S->busy = 0;
  if (ev && knox_http_deliver_events(L, ev)) return lua_error(L);
  if (rc != CURLE_OK) return knox_error_raise(L);
  return 4;
}

int knox_http_open(lua_State *L)
{
  static const luaL_Reg methods[] = {
    {"request", l_request},
    {"batch", knox_http_batch},
    {"close", l_close},
    {NULL, NULL},
  };
  static const luaL_Reg meta[] = {
    {"__gc", l_gc},
    {"__close", l_close},
    {"__tostring", l_tostring},
    {NULL, NULL},
  };
  /* thread-safe and reference-counted in the libcurl versions we build on;
   * never cleaned up, since other code in the process may use libcurl */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    return knox_error_throw(L, "transport", "libcurl failed to initialise");
  }
  if (luaL_newmetatable(L, SESSION_MT)) {
    luaL_setfuncs(L, meta, 0);
    luaL_newlibtable(L, methods);
    push_info_keys(L);
    luaL_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, GUARD_MT)) {
    lua_pushcfunction(L, l_guard_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_session);
  lua_setfield(L, -2, "session");
  return 0;
}

