/*
 * http_internal.h — what the files of the transport share (http.c,
 * http_error.c, http_text.c, http_debug.c, http_batch.c) and nothing else
 * includes: the session and transfer state, growing buffers, limits, and
 * the knox_http_* functions one file calls in another.
 */
#ifndef KNOX_HTTP_INTERNAL_H
#define KNOX_HTTP_INTERNAL_H

#include "knox.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if LIBCURL_VERSION_NUM < 0x074500
#error "knox needs libcurl 7.69.0 or later"
#endif

#define SESSION_MT "knox.Session"
#define GUARD_MT "knox.Session.guard"

#define DEFAULT_TIMEOUT_MS 60000L
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_MAX_RESPONSE ((curl_off_t)64 * 1024 * 1024)
#define DEFAULT_CONCURRENCY 8
#define MAX_CONCURRENCY 1024
#define HEADER_LIMIT ((size_t)1024 * 1024)  /* all response header lines */
#define DEBUG_LIMIT ((size_t)1024 * 1024)   /* buffered debug records */
#define PREVIEW_BYTES ((size_t)2048)        /* body preview in debug events */
#define KEEP_BUFFER ((size_t)256 * 1024)    /* larger buffers are freed after use */

/* ---------------------------------------------------------------------
 * Growing byte buffers, owned by a Transfer (so by the session userdata):
 * a Lua error between two uses never leaks them.
 */
typedef struct {
  char *data;
  size_t len, cap;
} Buf;

static inline int buf_reserve(Buf *b, size_t extra)
{
  if (extra <= b->cap - b->len) return 1;
  if (extra > SIZE_MAX / 2 - b->len) return 0;
  size_t need = b->len + extra;
  size_t cap = b->cap > 0 ? b->cap : 1024;
  while (cap < need) cap *= 2;
  char *p = realloc(b->data, cap);
  if (p == NULL) return 0;
  b->data = p;
  b->cap = cap;
  return 1;
}

static inline int buf_add(Buf *b, const void *p, size_t n)
{
  if (n == 0) return 1;
  if (!buf_reserve(b, n)) return 0;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 1;
}

static inline void buf_free(Buf *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* After a transfer: keep a small buffer for the next one, free a big one. */
static inline void buf_trim(Buf *b)
{
  if (b->cap > KEEP_BUFFER) buf_free(b);
  else b->len = 0;
}

/* ---------------------------------------------------------------------
 * Session and transfer state.
 */
enum { FAIL_NONE, FAIL_TOO_LARGE, FAIL_HEADERS_TOO_LARGE, FAIL_OOM };

typedef struct {
  CURL *easy;
  struct curl_slist *headers; /* the current request's header lines */
  Buf body;                   /* response body, decoded */
  Buf head;                   /* the last response header block, raw */
  Buf dbg;                    /* debug records: tag, length, bytes */
  curl_off_t max_body;
  int fail;                   /* why a callback stopped the transfer */
  int dbg_dropped;
  int in_multi;
  lua_Integer index;          /* batch: 1-based input position, 0 when idle */
  const char *upload;         /* request body not yet handed to read_cb */
  size_t upload_left;
  char errbuf[CURL_ERROR_SIZE];
} Transfer;

typedef struct {
  Transfer main;              /* session:request */
  Transfer **pool;            /* session:batch, reused across batches */
  int npool;
  CURLSH *share;
  CURLM *multi;
  long timeout_ms, connect_timeout_ms, low_speed_limit, low_speed_time;
  long http_version;          /* 0: let curl negotiate */
  curl_off_t max_response;
  char *proxy, *noproxy, *ca_file, *ca_path, *user_agent, *accept_encoding;
  int verify;
  int has_debug;
  int busy;                   /* a request or batch is running */
  int closed;
} Session;

typedef struct {
  char method[32];            /* copied: nothing can collect it */
  const char *url;
  const char *body;           /* NULL: no request body */
  size_t body_len;
  long timeout_ms;
  int head;
  int replayable;             /* curl may resend it on its own */
} Req;

/* ---------------------------------------------------------------------
 * Cross-file functions. Stack effects as in Lua's manual.
 */

/* http.c */
long knox_http_info_long(CURL *h, CURLINFO what, long def);
const char *knox_http_version_text(long v);
CURLcode knox_http_apply_session(const Session *S, Transfer *t);
CURLcode knox_http_apply_request(Transfer *t, const Req *r);
void knox_http_load_request(lua_State *L, int idx, const Session *S, Transfer *t, Req *r,
                            int argn, lua_Integer item);
int knox_http_req_error(lua_State *L, int argn, lua_Integer item, const char *msg);
void knox_http_push_response(lua_State *L, Transfer *t);
void knox_http_transfer_free(Transfer *t);
Session *knox_http_check_session(lua_State *L, int idx);
void knox_http_begin_busy(lua_State *L, Session *S);

/* http_error.c */
void knox_http_set_request_fields(lua_State *L, int req);
void knox_http_push_transport_error(lua_State *L, const Session *S, const Transfer *t, CURLcode rc, int req);

/* http_text.c */
void knox_http_push_redacted(lua_State *L, const char *s, size_t n);
void knox_http_push_safe_url(lua_State *L, const char *url);
void knox_http_add_header(lua_State *L, int tbl, const char *name, size_t nlen,
                          const char *val, size_t vlen, int redact, const char *sep, int maybe_dup);
void knox_http_push_header_block(lua_State *L, const char *p, size_t n, int skip_first, int redact);

/* http_debug.c */
int knox_http_debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *ud);
void knox_http_push_events(lua_State *L, int ev, const Session *S, const Transfer *t, int req,
                           const Req *r, int err);
int knox_http_deliver_events(lua_State *L, int ev);

/* http_batch.c */
int knox_http_batch(lua_State *L);

#endif
