/*
 * http_state.h — transport layer 1: the state every part of the
 * transport shares. Header only: the Transfer, Session and Req structs,
 * the keys of request and info tables, and two readers of a finished easy
 * handle. Includes only http_buf.h (layer 0), libcurl and knox.h; calls
 * nothing in the transport.
 */
#ifndef KNOX_HTTP_STATE_H
#define KNOX_HTTP_STATE_H

#include "knox.h"
#include "http_buf.h"

#include <curl/curl.h>

#if LIBCURL_VERSION_NUM < 0x074500
#error "knox needs libcurl 7.69.0 or later"
#endif

/* Why a callback stopped the transfer (Transfer.fail). */
enum { FAIL_NONE, FAIL_TOO_LARGE, FAIL_HEADERS_TOO_LARGE, FAIL_HEADERS_TOO_MANY, FAIL_OOM };

/* Response header limits (http_transfer.c enforces them, http_error.c
 * names them). The byte limit is below libcurl's own total (300 KiB of
 * every header line of every block of a transfer, counted as here, in the
 * libcurl we build on), so that knox's limit and its non-retryable error
 * fire first; a single line over CURL_MAX_HTTP_HEADER (100 KiB) never
 * reaches knox at all, and http_error.c recognises that failure. */
#define HEADER_BYTES_LIMIT ((size_t)256 * 1024)
#define HEADER_LINES_LIMIT 1000

/* One easy handle and what its transfers fill. */
typedef struct {
  CURL *easy;
  struct curl_slist *headers; /* the current request's header lines */
  Buf body;                   /* response body, decoded */
  Buf head;                   /* the last response header block, raw */
  Buf dbg;                    /* debug records: tag, length, bytes */
  curl_off_t max_body;        /* max_response_bytes, or a batch's share */
  int batch_ways;             /* >0: max_body is max_batch_bytes / batch_ways */
  size_t head_bytes;          /* every header line of this transfer so far */
  int head_lines;             /* header lines of the current block */
  int head_done;              /* the final header block ended (a blank line) */
  int fail;                   /* why a callback stopped the transfer */
  int dbg_dropped;
  int in_multi;
  lua_Integer index;          /* batch: 1-based input position, 0 when idle */
  const char *upload;         /* request body not yet handed to read_cb */
  size_t upload_left;
  char errbuf[CURL_ERROR_SIZE];
} Transfer;

/* The knox.Session userdata. */
typedef struct {
  Transfer main;              /* session:request */
  Transfer **pool;            /* session:batch, reused across batches */
  int npool;
  CURLSH *share;
  CURLM *multi;
  long timeout_ms, connect_timeout_ms, low_speed_limit, low_speed_time;
  long http_version;          /* 0: let curl negotiate */
  curl_off_t max_response;
  curl_off_t max_batch;       /* all receive buffers of one batch */
  char *proxy, *noproxy, *ca_file, *ca_path, *user_agent, *accept_encoding;
  int verify;
  int has_debug;
  int busy;                   /* a request or batch is running */
  int closed;
} Session;

/* One request, as checked from its Lua table (which anchors the strings). */
typedef struct {
  char method[32];            /* copied: nothing can collect it */
  const char *url;
  const char *body;           /* NULL: no request body */
  size_t body_len;
  long timeout_ms;
  int head;
  int replayable;             /* curl may resend it on its own */
} Req;

/* The keys of info tables and request tables, interned once into a table
 * that the session methods hold as their first upvalue (built by
 * knox_http_push_keys, http_transfer.c): a raw access with a ready key
 * string is cheaper than lua_setfield/lua_getfield, and this runs for
 * every request and response. K_x is at index K_x + 1 of that table. */
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

/* A long from curl_easy_getinfo, or def when curl has none. */
static inline long knox_http_info_long(CURL *h, CURLINFO what, long def)
{
  long v = def;
  if (curl_easy_getinfo(h, what, &v) != CURLE_OK) return def;
  return v;
}

/* "1.0", "1.1", "2", "3" for a CURL_HTTP_VERSION_* value, else NULL. */
static inline const char *knox_http_version_text(long v)
{
  switch (v) {
  case CURL_HTTP_VERSION_1_0: return "1.0";
  case CURL_HTTP_VERSION_1_1: return "1.1";
  case CURL_HTTP_VERSION_2_0: return "2";
  case CURL_HTTP_VERSION_3: return "3";
  default: return NULL;
  }
}

#endif
