/*
 * http_transfer.c — transport layer 4 (the transfer layer, beside
 * http_request.c): one easy handle and one transfer on it. The libcurl
 * callbacks (C only, never Lua: they fill the Transfer's buffers), the
 * session-wide and per-request options of an easy handle, the response of
 * a finished transfer (status, headers table, body, info), and freeing.
 * Mechanism only: no retries, no auth, no JSON.
 * May call: layers 0-3 (http_buf.h, http_text.h, http_state.h,
 * http_debug.h for its libcurl callback), libcurl. Interface:
 * http_transfer.h.
 */
#include "http_transfer.h"
#include "http_debug.h"
#include "http_text.h"

#include <string.h>

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
  /* never more capacity than the limit: a batch's shares add up to
   * max_batch_bytes (http_batch.c) */
  size_t max = (uint64_t)t->max_body > SIZE_MAX ? SIZE_MAX : (size_t)t->max_body;
  if (!buf_add_max(&t->body, ptr, n, max)) {
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

/* Whether the header line ptr[0..n) is the blank line that ends a block. */
static int is_blank_line(const char *ptr, size_t n)
{
  return (n == 2 && ptr[0] == '\r' && ptr[1] == '\n') || (n == 1 && ptr[0] == '\n');
}

static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
  Transfer *t = ud;
  size_t n = size * nmemb;
  /* every line of every block (1xx, the final one, trailers) counts, as in
   * libcurl's own total */
  if (n > HEADER_BYTES_LIMIT - t->head_bytes) {
    t->fail = FAIL_HEADERS_TOO_LARGE;
    return 0;
  }
  t->head_bytes += n;
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
    /* A new status line starts a new block (after 100 Continue, or a
     * proxy's CONNECT reply): only the final response's headers are kept. */
    t->head.len = 0;
    t->head_lines = 0;
    t->head_done = 0;
  } else if (is_blank_line(ptr, n)) {
    /* the end of a block; another follows a 1xx one */
    long code = knox_http_info_long(t->easy, CURLINFO_RESPONSE_CODE, 0);
    t->head_done = code < 100 || code >= 200;
  } else if (++t->head_lines > HEADER_LINES_LIMIT) {
    t->fail = FAIL_HEADERS_TOO_MANY;
    return 0;
  }
  if (!buf_add_max(&t->head, ptr, n, HEADER_BYTES_LIMIT)) {
    t->fail = FAIL_OOM;
    return 0;
  }
  return n;
}

/* ---------------------------------------------------------------------
 * Results.
 */
/* [-0, +1, m] the table of key strings (K_* + 1 -> name) that the session
 * methods hold as upvalue 1. */
void knox_http_push_keys(lua_State *L)
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

/* info[key] = value, in the table on top: the key first, so that no value
 * has to be moved under it. */
#define INFO_KEY(L, key) lua_rawgeti((L), lua_upvalueindex(1), (key) + 1)
#define INFO_SET(L) lua_rawset((L), -3)

static void info_seconds(lua_State *L, CURL *h, CURLINFO what, int key)
{
  curl_off_t us = 0;
  if (curl_easy_getinfo(h, what, &us) != CURLE_OK) return;
  INFO_KEY(L, key);
  lua_pushnumber(L, (lua_Number)us / 1e6);
  INFO_SET(L);
}

static void info_integer(lua_State *L, int key, lua_Integer v)
{
  INFO_KEY(L, key);
  lua_pushinteger(L, v);
  INFO_SET(L);
}

/* The number of fields push_info sets at most. */
#define INFO_FIELDS 12

/* [-0, +1, m] the info table of the last transfer on h. Only for
 * knox_http_request and knox_http_batch, which carry the keys as upvalue 1. */
static void push_info(lua_State *L, CURL *h)
{
  char *ip = NULL;
  lua_createtable(L, 0, INFO_FIELDS);
  info_seconds(L, h, CURLINFO_TOTAL_TIME_T, K_TOTAL_TIME);
  info_seconds(L, h, CURLINFO_NAMELOOKUP_TIME_T, K_NAMELOOKUP_TIME);
  info_seconds(L, h, CURLINFO_CONNECT_TIME_T, K_CONNECT_TIME);
  info_seconds(L, h, CURLINFO_APPCONNECT_TIME_T, K_TLS_TIME);
  info_seconds(L, h, CURLINFO_STARTTRANSFER_TIME_T, K_STARTTRANSFER_TIME);
  const char *ver = knox_http_version_text(knox_http_info_long(h, CURLINFO_HTTP_VERSION, 0));
  if (ver != NULL) {
    INFO_KEY(L, K_HTTP_VERSION);
    lua_pushstring(L, ver);
    INFO_SET(L);
  }
  if (curl_easy_getinfo(h, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip != NULL && ip[0] != '\0') {
    INFO_KEY(L, K_REMOTE_IP);
    lua_pushstring(L, ip);
    INFO_SET(L);
  }
  long port = knox_http_info_long(h, CURLINFO_PRIMARY_PORT, 0);
  if (port > 0) info_integer(L, K_REMOTE_PORT, port);
  long lport = knox_http_info_long(h, CURLINFO_LOCAL_PORT, 0);
  if (lport > 0) info_integer(L, K_LOCAL_PORT, lport);
  long nconn = knox_http_info_long(h, CURLINFO_NUM_CONNECTS, 0);
  info_integer(L, K_NUM_CONNECTS, nconn);
  INFO_KEY(L, K_REUSED);
  lua_pushboolean(L, nconn == 0);
  INFO_SET(L);
  info_integer(L, K_REQUEST_SIZE, knox_http_info_long(h, CURLINFO_REQUEST_SIZE, 0));
}

/* [-0, +4, m] status, headers, body, info of a finished transfer. */
void knox_http_push_response(lua_State *L, Transfer *t)
{
  lua_pushinteger(L, knox_http_info_long(t->easy, CURLINFO_RESPONSE_CODE, 0));
  knox_http_push_header_block(L, t->head.data, t->head.len, 1, 0, lua_upvalueindex(2));
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
  t->batch_ways = 0;
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
  t->head_bytes = 0;
  t->head_lines = t->head_done = 0;
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
 * Freeing.
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
