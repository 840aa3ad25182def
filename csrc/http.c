/*
 * http.c — knox.Session, the only code in knox that touches the network.
 *
 * A session owns one libcurl easy handle that is reused for every
 * session:request (so connections, DNS answers and TLS sessions stay warm),
 * a share handle for DNS and TLS sessions, and, once session:batch is used,
 * a multi handle with a pool of easy handles that later batches reuse.
 *
 * Mechanism only: no retries, no auth, no JSON. Every libcurl callback here
 * is plain C that fills a buffer; Lua runs only after curl has returned
 * (results, knox.Error objects, and the debug hook, which is called under
 * lua_pcall with events buffered during the transfer and redacted).
 */
#include "knox.h"

#include <curl/curl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
 * Transport failure names: every CURLE_* code of libcurl 7.88, in enum
 * order, with what a caller's retry policy needs to know about it.
 * F_RETRY: a transient network condition; trying again can help.
 * F_PRESEND: fails before any byte of the request can have been sent, so
 * the request provably never reached the server (cause.ambiguous false).
 */
#define F_RETRY 1
#define F_PRESEND 2
#define F_BOTH (F_RETRY | F_PRESEND)

#define CURL_CODES(X) \
  X(UNSUPPORTED_PROTOCOL, F_PRESEND) \
  X(FAILED_INIT, F_PRESEND) \
  X(URL_MALFORMAT, F_PRESEND) \
  X(NOT_BUILT_IN, F_PRESEND) \
  X(COULDNT_RESOLVE_PROXY, F_BOTH) \
  X(COULDNT_RESOLVE_HOST, F_BOTH) \
  X(COULDNT_CONNECT, F_BOTH) \
  X(WEIRD_SERVER_REPLY, 0) \
  X(REMOTE_ACCESS_DENIED, 0) \
  X(FTP_ACCEPT_FAILED, 0) \
  X(FTP_WEIRD_PASS_REPLY, 0) \
  X(FTP_ACCEPT_TIMEOUT, 0) \
  X(FTP_WEIRD_PASV_REPLY, 0) \
  X(FTP_WEIRD_227_FORMAT, 0) \
  X(FTP_CANT_GET_HOST, 0) \
  X(HTTP2, 0) \
  X(FTP_COULDNT_SET_TYPE, 0) \
  X(PARTIAL_FILE, F_RETRY) \
  X(FTP_COULDNT_RETR_FILE, 0) \
  X(QUOTE_ERROR, 0) \
  X(HTTP_RETURNED_ERROR, 0) \
  X(WRITE_ERROR, 0) \
  X(UPLOAD_FAILED, 0) \
  X(READ_ERROR, 0) \
  X(OUT_OF_MEMORY, 0) \
  X(OPERATION_TIMEDOUT, F_RETRY) \
  X(FTP_PORT_FAILED, 0) \
  X(FTP_COULDNT_USE_REST, 0) \
  X(RANGE_ERROR, 0) \
  X(HTTP_POST_ERROR, 0) \
  X(SSL_CONNECT_ERROR, F_PRESEND) \
  X(BAD_DOWNLOAD_RESUME, 0) \
  X(FILE_COULDNT_READ_FILE, 0) \
  X(LDAP_CANNOT_BIND, 0) \
  X(LDAP_SEARCH_FAILED, 0) \
  X(FUNCTION_NOT_FOUND, 0) \
  X(ABORTED_BY_CALLBACK, 0) \
  X(BAD_FUNCTION_ARGUMENT, F_PRESEND) \
  X(INTERFACE_FAILED, F_PRESEND) \
  X(TOO_MANY_REDIRECTS, 0) \
  X(UNKNOWN_OPTION, F_PRESEND) \
  X(SETOPT_OPTION_SYNTAX, F_PRESEND) \
  X(GOT_NOTHING, F_RETRY) \
  X(SSL_ENGINE_NOTFOUND, F_PRESEND) \
  X(SSL_ENGINE_SETFAILED, F_PRESEND) \
  X(SEND_ERROR, F_RETRY) \
  X(RECV_ERROR, F_RETRY) \
  X(SSL_CERTPROBLEM, F_PRESEND) \
  X(SSL_CIPHER, F_PRESEND) \
  X(PEER_FAILED_VERIFICATION, F_PRESEND) \
  X(BAD_CONTENT_ENCODING, 0) \
  X(FILESIZE_EXCEEDED, 0) \
  X(USE_SSL_FAILED, F_PRESEND) \
  X(SEND_FAIL_REWIND, F_RETRY) \
  X(SSL_ENGINE_INITFAILED, F_PRESEND) \
  X(LOGIN_DENIED, 0) \
  X(TFTP_NOTFOUND, 0) \
  X(TFTP_PERM, 0) \
  X(REMOTE_DISK_FULL, 0) \
  X(TFTP_ILLEGAL, 0) \
  X(TFTP_UNKNOWNID, 0) \
  X(REMOTE_FILE_EXISTS, 0) \
  X(TFTP_NOSUCHUSER, 0) \
  X(SSL_CACERT_BADFILE, F_PRESEND) \
  X(REMOTE_FILE_NOT_FOUND, 0) \
  X(SSH, 0) \
  X(SSL_SHUTDOWN_FAILED, 0) \
  X(AGAIN, F_RETRY) \
  X(SSL_CRL_BADFILE, F_PRESEND) \
  X(SSL_ISSUER_ERROR, F_PRESEND) \
  X(FTP_PRET_FAILED, 0) \
  X(RTSP_CSEQ_ERROR, 0) \
  X(RTSP_SESSION_ERROR, 0) \
  X(FTP_BAD_FILE_LIST, 0) \
  X(CHUNK_FAILED, 0) \
  X(NO_CONNECTION_AVAILABLE, F_BOTH) \
  X(SSL_PINNEDPUBKEYNOTMATCH, F_PRESEND) \
  X(SSL_INVALIDCERTSTATUS, F_PRESEND) \
  X(HTTP2_STREAM, F_RETRY) \
  X(RECURSIVE_API_CALL, 0) \
  X(AUTH_ERROR, 0) \
  X(HTTP3, 0) \
  X(QUIC_CONNECT_ERROR, F_BOTH)

/* Codes younger than the oldest libcurl we build against. */
#if LIBCURL_VERSION_NUM >= 0x074900
#define CURL_CODES_7_73(X) X(PROXY, F_PRESEND)
#else
#define CURL_CODES_7_73(X)
#endif
#if LIBCURL_VERSION_NUM >= 0x074d00
#define CURL_CODES_7_77(X) X(SSL_CLIENTCERT, F_PRESEND)
#else
#define CURL_CODES_7_77(X)
#endif
#if LIBCURL_VERSION_NUM >= 0x075400
#define CURL_CODES_7_84(X) X(UNRECOVERABLE_POLL, 0)
#else
#define CURL_CODES_7_84(X)
#endif

/* The symbolic name and flags of a libcurl code; NULL name when unknown. */
static const char *code_name(CURLcode rc, int *flags)
{
  switch (rc) {
#define X(name, f) case CURLE_##name: *flags = (f); return #name;
    CURL_CODES(X)
    CURL_CODES_7_73(X)
    CURL_CODES_7_77(X)
    CURL_CODES_7_84(X)
#undef X
  default:
    *flags = 0;
    return NULL;
  }
}

/* ---------------------------------------------------------------------
 * Growing byte buffers, owned by a Transfer (so by the session userdata):
 * a Lua error between two uses never leaks them.
 */
typedef struct {
  char *data;
  size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra)
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

static int buf_add(Buf *b, const void *p, size_t n)
{
  if (n == 0) return 1;
  if (!buf_reserve(b, n)) return 0;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 1;
}

static void buf_free(Buf *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* After a transfer: keep a small buffer for the next one, free a big one. */
static void buf_trim(Buf *b)
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
} Req;

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

/* Records curl's informational text and the request headers it sent; the
 * events are built and redacted after the transfer. */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
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

/* ---------------------------------------------------------------------
 * Redaction: secrets never reach the debug hook or an error's url.
 * Names are matched case-insensitively as whole words, then the value that
 * follows ':' or '=' is replaced: a JSON key's value (string, number,
 * object), a header's value to the end of the line, a form or query
 * field's value to the next separator.
 */
typedef struct {
  const char *name;
  size_t len;
} Name;

#define N(s) {s, sizeof(s) - 1}
static const Name secret_names[] = {
  N("x-knox-apitoken"), N("authorization"), N("proxy-authorization"),
  N("cookie"), N("set-cookie"), N("client_secret"), N("clientIdentifierJwt"),
  N("accessToken"), N("access_token"), N("refresh_token"), N("Private"),
  N("id_token"), N("password"), N("client_assertion"), N("token"),
};
#undef N
#define NSECRETS (sizeof secret_names / sizeof secret_names[0])

static const char REDACTED[] = "[redacted]";

static int is_word(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-';
}

static unsigned char lower(unsigned char c)
{
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* The length of the secret name starting at s, or 0. */
static size_t match_secret(const char *s, size_t n)
{
  unsigned char c = lower((unsigned char)s[0]);
  for (size_t k = 0; k < NSECRETS; k++) {
    size_t len = secret_names[k].len;
    if (lower((unsigned char)secret_names[k].name[0]) != c || len > n) continue;
    if (strncasecmp(s, secret_names[k].name, len) == 0 &&
        (len == n || !is_word((unsigned char)s[len]))) {
      return len;
    }
  }
  return 0;
}

static int is_secret_name(const char *s, size_t n)
{
  return n > 0 && match_secret(s, n) == n;
}

static size_t skip_blank(const char *s, size_t n, size_t i)
{
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  return i;
}

/* The index after a quoted string opened by a quote token of length q at
 * s[i] ('"', or '\"' inside an escaped JSON document), or n. */
static size_t quoted_end(const char *s, size_t n, size_t i, size_t q)
{
  for (i += q; i < n; i++) {
    if (q == 1) {
      if (s[i] == '\\') i++;
      else if (s[i] == '"') return i + 1;
    } else if (s[i] == '\\' && i + 1 < n) {
      if (s[i + 1] == '"') return i + 2;
      i++;
    }
  }
  return n;
}

/* The index after a JSON object or array starting at s[i], or n. */
static size_t balanced_end(const char *s, size_t n, size_t i)
{
  int depth = 0;
  while (i < n) {
    char c = s[i];
    if (c == '"') {
      i = quoted_end(s, n, i, 1);
      continue;
    }
    if (c == '{' || c == '[') depth++;
    else if ((c == '}' || c == ']') && --depth == 0) return i + 1;
    i++;
  }
  return n;
}

enum { V_JSON, V_FORM, V_HEADER };

static size_t scalar_end(const char *s, size_t n, size_t i, int kind)
{
  for (; i < n; i++) {
    char c = s[i];
    if (c == '\r' || c == '\n') break;
    if (kind == V_JSON && (c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t')) break;
    if (kind == V_FORM && strchr("&;#,\"' \t]<>", c) != NULL) break;
  }
  return i;
}

/* Appends s[0..n) to b with every secret value replaced. */
static void redact_add(luaL_Buffer *b, const char *s, size_t n)
{
  size_t i = 0, from = 0;
  while (i < n) {
    size_t m;
    if ((i > 0 && is_word((unsigned char)s[i - 1])) || (m = match_secret(s + i, n - i)) == 0) {
      i++;
      continue;
    }
    /* a quoted key: "name" or \"name\" */
    size_t q = 0, j = i + m;
    if (i >= 1 && s[i - 1] == '"') {
      size_t open = (i >= 2 && s[i - 2] == '\\') ? 2 : 1;
      if (open == 1 && j < n && s[j] == '"') q = 1;
      else if (open == 2 && j + 1 < n && s[j] == '\\' && s[j + 1] == '"') q = 2;
      j += q;
    }
    j = skip_blank(s, n, j);
    if (j >= n || (s[j] != ':' && s[j] != '=')) {
      i += m;
      continue;
    }
    int kind = q ? V_JSON : (s[j] == '=' ? V_FORM : V_HEADER);
    j = skip_blank(s, n, j + 1);
    size_t vq = 0, end;
    if (j < n && s[j] == '"') vq = 1;
    else if (j + 1 < n && s[j] == '\\' && s[j + 1] == '"') vq = 2;
    if (vq) end = quoted_end(s, n, j, vq);
    else if (kind == V_JSON && j < n && (s[j] == '{' || s[j] == '[')) end = balanced_end(s, n, j);
    else end = scalar_end(s, n, j, kind);
    luaL_addlstring(b, s + from, j - from);
    if (vq) {
      luaL_addlstring(b, s + j, vq);
      luaL_addstring(b, REDACTED);
      if (end >= j + 2 * vq && end <= n) luaL_addlstring(b, s + end - vq, vq);
    } else {
      luaL_addstring(b, REDACTED);
    }
    from = i = end;
  }
  luaL_addlstring(b, s + from, n - from);
}

static void push_redacted(lua_State *L, const char *s, size_t n)
{
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  redact_add(&b, s, n);
  luaL_pushresult(&b);
}

/* Pushes url without userinfo and with secret query values redacted. */
static void push_safe_url(lua_State *L, const char *url)
{
  luaL_Buffer b;
  size_t n = strlen(url);
  const char *p = strstr(url, "://");
  luaL_buffinit(L, &b);
  if (p != NULL) {
    const char *host = p + 3;
    size_t auth_len = strcspn(host, "/?#");
    const char *at = NULL;
    for (size_t k = 0; k < auth_len; k++) {
      if (host[k] == '@') at = host + k;
    }
    luaL_addlstring(&b, url, (size_t)(host - url));
    if (at != NULL) {
      url = at + 1;
    } else {
      url = host;
    }
    n = strlen(url);
  }
  redact_add(&b, url, n);
  luaL_pushresult(&b);
}

/* ---------------------------------------------------------------------
 * Headers: raw lines -> a Lua table with lower-case names, repeated names
 * joined with ", ". With redact set, secret header values become
 * "[redacted]" and every other value is scanned for embedded secrets.
 */
static void add_header(lua_State *L, int tbl, const char *name, size_t nlen,
                       const char *val, size_t vlen, int redact, const char *sep, int maybe_dup)
{
  char small[64] = {0};
  if (nlen <= sizeof small) {
    for (size_t k = 0; k < nlen; k++) small[k] = (char)lower((unsigned char)name[k]);
    lua_pushlstring(L, small, nlen);
  } else {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t k = 0; k < nlen; k++) luaL_addchar(&b, (char)lower((unsigned char)name[k]));
    luaL_pushresult(&b);
  }
  if (!maybe_dup) {
    /* the common case: a name not seen before in this block */
    if (redact && is_secret_name(name, nlen)) lua_pushstring(L, REDACTED);
    else if (redact) push_redacted(L, val, vlen);
    else lua_pushlstring(L, val, vlen);
    lua_rawset(L, tbl);
    return;
  }
  lua_pushvalue(L, -1);
  lua_rawget(L, tbl);
  if (redact && is_secret_name(name, nlen)) lua_pushstring(L, REDACTED);
  else if (redact) push_redacted(L, val, vlen);
  else lua_pushlstring(L, val, vlen);
  if (lua_isnil(L, -2)) {
    lua_remove(L, -2);
  } else {
    lua_pushstring(L, sep);
    lua_insert(L, -2);
    lua_concat(L, 3);
  }
  lua_rawset(L, tbl);
}

/* [-0, +1, m] the header table of a block of lines; skip_first drops a
 * status or request line. */
static void push_header_block(lua_State *L, const char *p, size_t n, int skip_first, int redact)
{
  const char *prev = NULL;
  size_t prev_len = 0;
  enum { MAX_SEEN = 48 };
  Name seen[MAX_SEEN];
  int first = 1, lines = 0, nseen = 0;
  for (const char *q = p; q != NULL && q < p + n; lines++) {
    q = memchr(q, '\n', (size_t)(p + n - q));
    if (q != NULL) q++;
  }
  /* sized once: growing a table rehashes it and feeds the collector */
  lua_createtable(L, 0, lines);
  int tbl = lua_gettop(L);
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    size_t len = nl != NULL ? (size_t)(nl - p) : n;
    size_t adv = nl != NULL ? len + 1 : n;
    const char *line = p;
    p += adv;
    n -= adv;
    if (len > 0 && line[len - 1] == '\r') len--;
    if (first) {
      first = 0;
      if (skip_first) continue;
    }
    if (len == 0) continue;
    if (line[0] == ' ' || line[0] == '\t') {
      /* obsolete line folding: continues the previous header's value */
      size_t s = skip_blank(line, len, 0);
      if (prev != NULL && s < len) add_header(L, tbl, prev, prev_len, line + s, len - s, redact, " ", 1);
      continue;
    }
    const char *colon = memchr(line, ':', len);
    if (colon == NULL || colon == line) continue;
    size_t nlen = (size_t)(colon - line);
    size_t vs = skip_blank(line, len, nlen + 1);
    size_t ve = len;
    while (ve > vs && (line[ve - 1] == ' ' || line[ve - 1] == '\t')) ve--;
    prev = line;
    prev_len = nlen;
    /* repeated names are found here in C, so that only they pay for a
     * table look-up */
    int dup = nseen == MAX_SEEN;
    for (int k = 0; k < nseen && !dup; k++) {
      dup = seen[k].len == nlen && strncasecmp(seen[k].name, line, nlen) == 0;
    }
    if (!dup && nseen < MAX_SEEN) {
      seen[nseen].name = line;
      seen[nseen++].len = nlen;
    }
    add_header(L, tbl, line, nlen, line + vs, ve - vs, redact, ", ", dup);
  }
}

/* ---------------------------------------------------------------------
 * Results.
 */
static void set_seconds(lua_State *L, CURL *h, CURLINFO what, const char *field)
{
  curl_off_t us = 0;
  if (curl_easy_getinfo(h, what, &us) != CURLE_OK) return;
  lua_pushnumber(L, (lua_Number)us / 1e6);
  lua_setfield(L, -2, field);
}

static long info_long(CURL *h, CURLINFO what, long def)
{
  long v = def;
  if (curl_easy_getinfo(h, what, &v) != CURLE_OK) return def;
  return v;
}

static const char *version_text(long v)
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
  X(METHOD, "method") X(URL, "url") X(HEADERS, "headers") X(BODY, "body") X(TIMEOUT, "timeout")

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
 * l_request and l_batch, which carry the keys as upvalue 1. */
static void push_info(lua_State *L, CURL *h)
{
  char *ip = NULL;
  lua_createtable(L, 0, K_COUNT);
  info_seconds(L, h, CURLINFO_TOTAL_TIME_T, K_TOTAL_TIME);
  info_seconds(L, h, CURLINFO_NAMELOOKUP_TIME_T, K_NAMELOOKUP_TIME);
  info_seconds(L, h, CURLINFO_CONNECT_TIME_T, K_CONNECT_TIME);
  info_seconds(L, h, CURLINFO_APPCONNECT_TIME_T, K_TLS_TIME);
  info_seconds(L, h, CURLINFO_STARTTRANSFER_TIME_T, K_STARTTRANSFER_TIME);
  const char *ver = version_text(info_long(h, CURLINFO_HTTP_VERSION, 0));
  if (ver != NULL) {
    lua_pushstring(L, ver);
    set_info(L, K_HTTP_VERSION);
  }
  if (curl_easy_getinfo(h, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip != NULL && ip[0] != '\0') {
    lua_pushstring(L, ip);
    set_info(L, K_REMOTE_IP);
  }
  long port = info_long(h, CURLINFO_PRIMARY_PORT, 0);
  if (port > 0) {
    lua_pushinteger(L, port);
    set_info(L, K_REMOTE_PORT);
  }
  long lport = info_long(h, CURLINFO_LOCAL_PORT, 0);
  if (lport > 0) {
    lua_pushinteger(L, lport);
    set_info(L, K_LOCAL_PORT);
  }
  long nconn = info_long(h, CURLINFO_NUM_CONNECTS, 0);
  lua_pushinteger(L, nconn);
  set_info(L, K_NUM_CONNECTS);
  lua_pushboolean(L, nconn == 0);
  set_info(L, K_REUSED);
  lua_pushinteger(L, info_long(h, CURLINFO_REQUEST_SIZE, 0));
  set_info(L, K_REQUEST_SIZE);
}

/* [-0, +4, m] status, headers, body, info of a finished transfer. */
static void push_response(lua_State *L, Transfer *t)
{
  lua_pushinteger(L, info_long(t->easy, CURLINFO_RESPONSE_CODE, 0));
  push_header_block(L, t->head.data, t->head.len, 1, 0);
  lua_pushlstring(L, t->body.data != NULL ? t->body.data : "", t->body.len);
  push_info(L, t->easy);
}

/* Sets error.method and error.url (sanitized) from the request table. */
static void set_request_fields(lua_State *L, int req)
{
  if (req == 0) return;
  lua_getfield(L, req, "method");
  if (lua_type(L, -1) == LUA_TSTRING) lua_setfield(L, -2, "method");
  else {
    lua_pop(L, 1);
    lua_pushliteral(L, "GET");
    lua_setfield(L, -2, "method");
  }
  lua_getfield(L, req, "url");
  if (lua_type(L, -1) == LUA_TSTRING) {
    push_safe_url(L, lua_tostring(L, -1));
    lua_setfield(L, -3, "url");
  }
  lua_pop(L, 1);
}

/* [-0, +1, m] the knox.Error for a transfer (t may be NULL for failures
 * outside a transfer) that ended with rc, for the request table at req
 * (0: none). kind "transport"; cause = {curl_code, name, text, ambiguous}. */
static void push_transport_error(lua_State *L, const Session *S, const Transfer *t, CURLcode rc, int req)
{
  int flags;
  const char *name = code_name(rc, &flags);
  const char *text = curl_easy_strerror(rc);
  int fail = t != NULL ? t->fail : FAIL_NONE;
  long sent = t != NULL ? info_long(t->easy, CURLINFO_REQUEST_SIZE, 0) : 0;
  int top = lua_gettop(L);

  if (fail == FAIL_TOO_LARGE || rc == CURLE_FILESIZE_EXCEEDED) {
    name = "RESPONSE_TOO_LARGE";
    flags = 0;
    lua_pushfstring(L, "response body larger than max_response_bytes (%I bytes)",
                    (lua_Integer)S->max_response);
  } else if (fail == FAIL_HEADERS_TOO_LARGE) {
    name = "RESPONSE_TOO_LARGE";
    flags = 0;
    lua_pushliteral(L, "response headers larger than 1 MiB");
  } else if (fail == FAIL_OOM) {
    name = "OUT_OF_MEMORY";
    flags = 0;
    lua_pushliteral(L, "out of memory while receiving the response");
  } else if (t != NULL && t->errbuf[0] != '\0') {
    size_t len = strnlen(t->errbuf, sizeof t->errbuf);
    while (len > 0 && (t->errbuf[len - 1] == '\n' || t->errbuf[len - 1] == '\r')) len--;
    push_redacted(L, t->errbuf, len);
  } else {
    lua_pushstring(L, text);
  }
  if (name == NULL) {
    lua_pushfstring(L, "CURLE_%d", (int)rc);
    name = lua_tostring(L, -1);
  }
  knox_error_new(L, "transport", lua_tostring(L, top + 1));
  lua_createtable(L, 0, 4);
  knox_error_setint(L, "curl_code", (lua_Integer)rc);
  knox_error_setstr(L, "name", name);
  knox_error_setstr(L, "text", text);
  /* The request may have reached the server unless the failure provably
   * came before the first byte left (CURLINFO_REQUEST_SIZE counts the
   * bytes of the request written so far, reset per transfer). */
  knox_error_setbool(L, "ambiguous", !(flags & F_PRESEND) && sent > 0);
  lua_setfield(L, -2, "cause");
  knox_error_setbool(L, "retryable", (flags & F_RETRY) != 0);
  set_request_fields(L, req);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

/* ---------------------------------------------------------------------
 * Debug events, built after the transfer from the buffered records.
 */
static void set_preview(lua_State *L, const char *body, size_t len)
{
  if (body == NULL) return;
  push_redacted(L, body, len > PREVIEW_BYTES ? PREVIEW_BYTES : len);
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
  push_redacted(L, text, len);
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
  set_request_fields(L, req);
  if (block != NULL) {
    push_header_block(L, block, blen, 1, 1);
  } else {
    lua_newtable(L);
    int tbl = lua_gettop(L);
    for (const struct curl_slist *l = t->headers; l != NULL; l = l->next) {
      const char *colon = strpbrk(l->data, ":;");
      if (colon == NULL) continue;
      const char *v = colon + 1;
      while (*v == ' ') v++;
      if (*v == '\0' && *colon == ':') continue; /* a curl header removal */
      add_header(L, tbl, l->data, (size_t)(colon - l->data), v, strlen(v), 1, ", ", 1);
    }
  }
  lua_setfield(L, -2, "headers");
  lua_pushboolean(L, block != NULL);
  lua_setfield(L, -2, "sent");
  lua_pushboolean(L, S->verify);
  lua_setfield(L, -2, "verify");
  set_preview(L, r->body, r->body_len);
  append_event(L, ev, t->index);
}

/* Appends the events of a finished transfer to the list at ev. The error
 * object (if any) is at err. */
static void push_events(lua_State *L, int ev, const Session *S, const Transfer *t, int req,
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
  long status = info_long(t->easy, CURLINFO_RESPONSE_CODE, 0);
  if (status > 0) {
    lua_createtable(L, 0, 8);
    lua_pushliteral(L, "response");
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    const char *ver = version_text(info_long(t->easy, CURLINFO_HTTP_VERSION, 0));
    if (ver != NULL) {
      lua_pushstring(L, ver);
      lua_setfield(L, -2, "http_version");
    }
    push_header_block(L, t->head.data, t->head.len, 1, 1);
    lua_setfield(L, -2, "headers");
    set_preview(L, t->body.data != NULL ? t->body.data : "", t->body.len);
    set_seconds(L, t->easy, CURLINFO_TOTAL_TIME_T, "total_time");
    append_event(L, ev, t->index);
  }
  if (err != 0) {
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, "info");
    lua_setfield(L, -2, "type");
    lua_pushliteral(L, "transfer failed");
    lua_setfield(L, -2, "text");
    lua_pushvalue(L, err);
    lua_setfield(L, -2, "error");
    append_event(L, ev, t->index);
  }
}

/* Calls the debug hook with each event under lua_pcall. Returns 0, or 1
 * with the hook's error on top of the stack. */
static int deliver_events(lua_State *L, int ev)
{
  lua_Integer n = (lua_Integer)lua_rawlen(L, ev);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_getiuservalue(L, 1, 1);
    lua_rawgeti(L, ev, i);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) return 1;
  }
  return 0;
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
static CURLcode apply_session(const Session *S, Transfer *t)
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
  if (S->ca_file != NULL) {
    SETOPT(h, CURLOPT_CAINFO, S->ca_file);
    SETOPT(h, CURLOPT_PROXY_CAINFO, S->ca_file);
  }
  if (S->ca_path != NULL) {
    SETOPT(h, CURLOPT_CAPATH, S->ca_path);
    SETOPT(h, CURLOPT_PROXY_CAPATH, S->ca_path);
  }
  SETOPT(h, CURLOPT_SSL_VERIFYPEER, verify);
  SETOPT(h, CURLOPT_SSL_VERIFYHOST, verify * 2);
  SETOPT(h, CURLOPT_PROXY_SSL_VERIFYPEER, verify);
  SETOPT(h, CURLOPT_PROXY_SSL_VERIFYHOST, verify * 2);
  SETOPT(h, CURLOPT_USERAGENT, S->user_agent);
  if (S->http_version != 0) SETOPT(h, CURLOPT_HTTP_VERSION, S->http_version);
  SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, S->max_response);
  if (S->accept_encoding != NULL) SETOPT(h, CURLOPT_ACCEPT_ENCODING, S->accept_encoding);
  SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
  SETOPT(h, CURLOPT_TCP_KEEPIDLE, 60L);
  SETOPT(h, CURLOPT_TCP_KEEPINTVL, 30L);
  /* a proxy's CONNECT reply is not the response; custom headers (tokens)
   * go to the origin only, never to the proxy */
  SETOPT(h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  SETOPT(h, CURLOPT_HEADEROPT, CURLHEADER_SEPARATE);
  if (S->has_debug) {
    SETOPT(h, CURLOPT_DEBUGFUNCTION, debug_cb);
    SETOPT(h, CURLOPT_DEBUGDATA, (void *)t);
    SETOPT(h, CURLOPT_VERBOSE, 1L);
  }
  return CURLE_OK;
}

/* Per-request options. Every option a previous request may have set is set
 * again, so nothing leaks from one request on a reused handle to the next. */
static CURLcode apply_request(Transfer *t, const Req *r)
{
  CURL *h = t->easy;
  t->body.len = t->head.len = t->dbg.len = 0;
  t->fail = FAIL_NONE;
  t->dbg_dropped = 0;
  t->errbuf[0] = '\0';
  SETOPT(h, CURLOPT_URL, r->url);
  SETOPT(h, CURLOPT_HTTPHEADER, t->headers);
  if (r->body != NULL) {
    SETOPT(h, CURLOPT_NOBODY, 0L);
    SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    SETOPT(h, CURLOPT_POSTFIELDS, r->body);
    SETOPT(h, CURLOPT_CUSTOMREQUEST, strcmp(r->method, "POST") == 0 ? (const char *)NULL : r->method);
  } else {
    SETOPT(h, CURLOPT_HTTPGET, 1L);
    SETOPT(h, CURLOPT_NOBODY, r->head ? 1L : 0L);
    SETOPT(h, CURLOPT_CUSTOMREQUEST,
           (r->head || strcmp(r->method, "GET") == 0) ? (const char *)NULL : r->method);
  }
  SETOPT(h, CURLOPT_TIMEOUT_MS, r->timeout_ms);
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
static int req_error(lua_State *L, int argn, lua_Integer item, const char *msg)
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

static void load_request(lua_State *L, int idx, const Session *S, Transfer *t, Req *r,
                         int argn, lua_Integer item)
{
  size_t len;
  int has_ctype = 0, has_expect = 0;

  r->timeout_ms = S->timeout_ms;
  if (rawfield(L, idx, K_TIMEOUT) != LUA_TNIL) {
    int isnum;
    lua_Number s = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !(s > 0) || !isfinite(s)) req_error(L, argn, item, "field 'timeout' must be a positive number");
    r->timeout_ms = seconds_to_ms(s);
  }
  lua_pop(L, 1);

  int ty = rawfield(L, idx, K_METHOD);
  if (ty == LUA_TNIL) {
    strcpy(r->method, "GET");
  } else {
    if (ty != LUA_TSTRING) req_error(L, argn, item, "field 'method' must be a string");
    const char *m = lua_tolstring(L, -1, &len);
    if (!is_token(m, len) || len >= sizeof r->method) {
      req_error(L, argn, item, "field 'method' is not an HTTP method");
    }
    memcpy(r->method, m, len + 1);
  }
  lua_pop(L, 1);
  r->head = strcmp(r->method, "HEAD") == 0;

  if (rawfield(L, idx, K_URL) != LUA_TSTRING) req_error(L, argn, item, "field 'url' must be a string");
  r->url = lua_tolstring(L, -1, &len);
  if (len == 0 || strlen(r->url) != len) req_error(L, argn, item, "field 'url' must be a non-empty string without NUL");
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)r->url[i];
    if (c <= ' ' || c == 0x7f) req_error(L, argn, item, "field 'url' contains a space or control character");
  }
  lua_pop(L, 1);

  ty = rawfield(L, idx, K_HEADERS);
  if (ty != LUA_TNIL && ty != LUA_TTABLE) req_error(L, argn, item, "field 'headers' must be a table");
  if (t != NULL) {
    curl_slist_free_all(t->headers);
    t->headers = NULL;
  }
  if (ty == LUA_TTABLE) {
    int h = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, h) != 0) {
      size_t nlen, vlen = 0;
      if (lua_type(L, -2) != LUA_TSTRING) req_error(L, argn, item, "header names must be strings");
      const char *name = lua_tolstring(L, -2, &nlen);
      if (!is_token(name, nlen)) req_error(L, argn, item, lua_pushfstring(L, "invalid header name '%s'", name));
      const char *val = NULL;
      int vt = lua_type(L, -1);
      if (vt == LUA_TSTRING || vt == LUA_TNUMBER) {
        lua_pushvalue(L, -1); /* convert a copy: lua_next needs the key intact */
        val = lua_tolstring(L, -1, &vlen);
        if (strlen(val) != vlen || strpbrk(val, "\r\n") != NULL) {
          req_error(L, argn, item, lua_pushfstring(L, "header '%s' has a CR, LF or NUL in its value", name));
        }
      } else if (!(vt == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
        req_error(L, argn, item, lua_pushfstring(L, "header '%s' must be a string, a number or false", name));
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

  ty = rawfield(L, idx, K_BODY);
  if (ty == LUA_TSTRING) {
    r->body = lua_tolstring(L, -1, &r->body_len);
    if (r->head) req_error(L, argn, item, "a HEAD request cannot have a body");
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
    req_error(L, argn, item, "field 'body' must be a string");
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
static void transfer_free(Transfer *t)
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
    transfer_free(t);
    free(t);
  }
  free(S->pool);
  S->pool = NULL;
  S->npool = 0;
  if (S->multi != NULL) curl_multi_cleanup(S->multi);
  S->multi = NULL;
  transfer_free(&S->main);
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

static Session *check_session(lua_State *L, int idx)
{
  Session *S = luaL_checkudata(L, idx, SESSION_MT);
  if (S->closed) knox_error_throw(L, "closed", "knox.Session is closed");
  if (S->busy) luaL_error(L, "knox.Session is busy (used again from inside its own request)");
  return S;
}

/* Marks the session busy until the calling C function returns or raises:
 * pushes the session's guard as a to-be-closed value. */
static void begin_busy(lua_State *L, Session *S)
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

static lua_Number opt_number(lua_State *L, const char *key, lua_Number def, lua_Number min, int allow_min)
{
  int isnum;
  if (lua_getfield(L, 1, key) == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  lua_Number v = lua_tonumberx(L, -1, &isnum);
  if (!isnum || !isfinite(v) || v < min || (!allow_min && v == min)) {
    luaL_argerror(L, 1, lua_pushfstring(L, "option '%s' must be a number %s %f", key,
                                        allow_min ? ">=" : ">", (double)min));
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

  S->timeout_ms = seconds_to_ms(opt_number(L, "timeout", DEFAULT_TIMEOUT_MS / 1000.0, 0, 0));
  S->connect_timeout_ms =
    seconds_to_ms(opt_number(L, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_MS / 1000.0, 0, 0));
  lua_Number lsl = opt_number(L, "low_speed_limit", -1, 0, 0);
  lua_Number lst = opt_number(L, "low_speed_time", -1, 0, 0);
  if (lsl > 0 || lst > 0) {
    /* either one enables the check; the other gets a sensible default */
    S->low_speed_limit = lsl > 0 ? (long)fmin(lsl, (lua_Number)LONG_MAX / 2) : 1L;
    S->low_speed_time = lst > 0 ? (long)ceil(fmin(lst, 86400.0)) : 30L;
  }
  lua_Number max = opt_number(L, "max_response_bytes", (lua_Number)DEFAULT_MAX_RESPONSE, 0, 0);
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

  ty = lua_getfield(L, 1, "accept_encoding");
  lua_pop(L, 1);
  if (ty == LUA_TBOOLEAN) {
    lua_getfield(L, 1, "accept_encoding");
    if (lua_toboolean(L, -1)) luaL_argerror(L, 1, "option 'accept_encoding' must be a string or false");
    lua_pop(L, 1);
  } else {
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
    push_transport_error(L, S, NULL, CURLE_OUT_OF_MEMORY, 0);
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
    push_transport_error(L, S, NULL, CURLE_FAILED_INIT, 0);
    return knox_error_raise(L);
  }
  CURLcode rc = apply_session(S, &S->main);
  if (rc != CURLE_OK) {
    push_transport_error(L, S, NULL, rc, 0);
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
  Session *S = check_session(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  Transfer *t = &S->main;
  Req r;
  load_request(L, 2, S, t, &r, 2, 0); /* body anchored at 3 */
  int ev = 0;
  if (S->has_debug) {
    lua_newtable(L);
    ev = lua_gettop(L);
  }
  begin_busy(L, S);

  CURLcode rc = apply_request(t, &r);
  if (rc == CURLE_OK) rc = curl_easy_perform(t->easy);

  /* curl has returned; Lua may run again */
  int base = lua_gettop(L);
  if (rc != CURLE_OK) push_transport_error(L, S, t, rc, 2);
  else push_response(L, t);
  if (ev) push_events(L, ev, S, t, 2, &r, rc != CURLE_OK ? base + 1 : 0);
  buf_trim(&t->body);
  buf_trim(&t->head);
  buf_trim(&t->dbg);
  S->busy = 0;
  if (ev && deliver_events(L, ev)) return lua_error(L);
  if (rc != CURLE_OK) return knox_error_raise(L);
  return 4;
}

/* ---------------------------------------------------------------------
 * Batches: curl multi over a pool of easy handles.
 */
static void push_multi_error(lua_State *L, CURLMcode mc, int req)
{
  const char *name = mc == CURLM_OUT_OF_MEMORY ? "OUT_OF_MEMORY" : "MULTI_ERROR";
  knox_error_new(L, "transport", curl_multi_strerror(mc));
  lua_createtable(L, 0, 4);
  knox_error_setint(L, "multi_code", (lua_Integer)mc);
  knox_error_setstr(L, "name", name);
  knox_error_setstr(L, "text", curl_multi_strerror(mc));
  knox_error_setbool(L, "ambiguous", 1);
  lua_setfield(L, -2, "cause");
  knox_error_setbool(L, "retryable", 0);
  set_request_fields(L, req);
}

/* Grows the pool to want handles; raises knox.Error on failure. */
static void ensure_pool(lua_State *L, Session *S, int want)
{
  if (S->multi == NULL) {
    S->multi = curl_multi_init();
    if (S->multi == NULL) {
      push_transport_error(L, S, NULL, CURLE_OUT_OF_MEMORY, 0);
      knox_error_raise(L);
    }
  }
  if (S->npool >= want) return;
  Transfer **p = realloc(S->pool, (size_t)want * sizeof *p);
  if (p == NULL) luaL_error(L, "out of memory");
  S->pool = p;
  while (S->npool < want) {
    Transfer *t = calloc(1, sizeof *t);
    if (t == NULL) luaL_error(L, "out of memory");
    t->easy = curl_easy_init();
    CURLcode rc = t->easy == NULL ? CURLE_FAILED_INIT : apply_session(S, t);
    if (rc != CURLE_OK) {
      transfer_free(t);
      free(t);
      push_transport_error(L, S, NULL, rc, 0);
      knox_error_raise(L);
    }
    S->pool[S->npool++] = t;
  }
}

/* Stores the result of the finished transfer t in results[t->index]. */
static void finish_item(lua_State *L, Session *S, Transfer *t, CURLcode rc, int reqs, int results,
                        int anchors, int ev)
{
  lua_Integer i = t->index;
  lua_rawgeti(L, reqs, i);
  int req = lua_gettop(L);
  if (rc != CURLE_OK) {
    push_transport_error(L, S, t, rc, req);
  } else {
    lua_createtable(L, 0, 4);
    push_response(L, t);
    lua_setfield(L, -5, "info");
    lua_setfield(L, -4, "body");
    lua_setfield(L, -3, "headers");
    lua_setfield(L, -2, "status");
  }
  if (ev) {
    Req r;
    memset(&r, 0, sizeof r);
    lua_getfield(L, req, "method");
    strcpy(r.method, "GET");
    if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) < sizeof r.method) {
      memcpy(r.method, lua_tostring(L, -1), lua_rawlen(L, -1) + 1);
    }
    lua_rawgeti(L, anchors, i);
    if (lua_type(L, -1) == LUA_TSTRING) r.body = lua_tolstring(L, -1, &r.body_len);
    push_events(L, ev, S, t, req, &r, rc != CURLE_OK ? req + 1 : 0);
    lua_pop(L, 2);
  }
  lua_rawseti(L, results, i);
  lua_pop(L, 1);
  buf_trim(&t->body);
  buf_trim(&t->head);
  buf_trim(&t->dbg);
  t->index = 0;
}

/* session:batch(requests [, { concurrency = n }]): [-0, +1, e] runs the
 * requests at once (at most n at a time, default 8) and returns a list in
 * input order whose items are {status=, headers=, body=, info=} or a
 * knox.Error (not raised). Raises "bad argument" for a malformed request
 * (before anything is sent), kind "closed" on a closed session, and
 * re-raises whatever the debug hook raised. */
static int l_batch(lua_State *L)
{
  Session *S = check_session(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer conc = DEFAULT_CONCURRENCY;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (lua_getfield(L, 3, "concurrency") != LUA_TNIL) {
      int isint;
      conc = lua_tointegerx(L, -1, &isint);
      luaL_argcheck(L, isint && conc >= 1 && conc <= MAX_CONCURRENCY, 3,
                    "'concurrency' must be an integer from 1 to 1024");
    }
  }
  lua_settop(L, 3);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
  for (lua_Integer i = 1; i <= n; i++) {
    Req r;
    if (lua_rawgeti(L, 2, i) != LUA_TTABLE) req_error(L, 2, i, "must be a table");
    load_request(L, 4, S, NULL, &r, 2, i);
    lua_settop(L, 3);
  }
  lua_createtable(L, (int)(n < 1 << 20 ? n : 0), 0); /* 4: results */
  lua_createtable(L, 0, 0);                            /* 5: body anchors */
  int ev = 0;
  if (S->has_debug) {
    lua_newtable(L);
    ev = 6;
  }
  if (n == 0) {
    lua_pushvalue(L, 4);
    return 1;
  }
  if (conc > n) conc = n;
  ensure_pool(L, S, (int)conc);
  for (int k = 0; k < S->npool; k++) {
    /* left attached by a batch that a Lua error interrupted */
    Transfer *t = S->pool[k];
    if (t->in_multi) curl_multi_remove_handle(S->multi, t->easy);
    t->in_multi = 0;
    t->index = 0;
  }
  long maxconn = conc > 8 ? (long)conc : 8L;
  CURLMcode mc = curl_multi_setopt(S->multi, CURLMOPT_MAXCONNECTS, maxconn);
  begin_busy(L, S);

  lua_Integer next = 1;
  int active = 0;
  while (mc == CURLM_OK && (next <= n || active > 0)) {
    for (int k = 0; k < conc && next <= n; k++) {
      Transfer *t = S->pool[k];
      if (t->index != 0) continue;
      lua_Integer i = next++;
      Req r;
      lua_rawgeti(L, 2, i);
      int req = lua_gettop(L);
      load_request(L, req, S, t, &r, 2, i);
      lua_rawseti(L, 5, i); /* anchor the body */
      t->index = i;
      CURLcode rc = apply_request(t, &r);
      /* Over TLS, wait for a connection that may multiplex (HTTP/2) rather
       * than open one per request; over plain HTTP nothing multiplexes and
       * waiting would serialize the first round. */
      long pipewait = strncasecmp(r.url, "https://", 8) == 0 && S->http_version != CURL_HTTP_VERSION_1_1;
      if (rc == CURLE_OK) rc = curl_easy_setopt(t->easy, CURLOPT_PIPEWAIT, pipewait);
      if (rc != CURLE_OK) {
        lua_pop(L, 1);
        finish_item(L, S, t, rc, 2, 4, 5, ev);
        continue;
      }
      CURLMcode amc = curl_multi_add_handle(S->multi, t->easy);
      if (amc != CURLM_OK) {
        push_multi_error(L, amc, req);
        lua_rawseti(L, 4, i);
        lua_pop(L, 1);
        t->index = 0;
        continue;
      }
      lua_pop(L, 1);
      t->in_multi = 1;
      active++;
    }
    if (active == 0) continue;
    int running = 0;
    mc = curl_multi_perform(S->multi, &running);
    CURLMsg *m;
    int left, freed = 0;
    while ((m = curl_multi_info_read(S->multi, &left)) != NULL) {
      if (m->msg != CURLMSG_DONE) continue;
      CURL *h = m->easy_handle;
      CURLcode rc = m->data.result; /* m dies with remove_handle */
      char *priv = NULL;
      curl_multi_remove_handle(S->multi, h);
      if (curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv) != CURLE_OK || priv == NULL) continue;
      Transfer *t = (Transfer *)(void *)priv;
      t->in_multi = 0;
      active--;
      freed = 1;
      finish_item(L, S, t, rc, 2, 4, 5, ev);
    }
    /* a freed slot is refilled at once, not after the next socket event */
    if (mc == CURLM_OK && active > 0 && !(freed && next <= n)) {
      mc = curl_multi_poll(S->multi, NULL, 0, 1000, NULL);
    }
  }
  if (mc != CURLM_OK) {
    /* the multi handle broke: every unfinished item gets the error */
    for (int k = 0; k < S->npool; k++) {
      Transfer *t = S->pool[k];
      if (t->in_multi) curl_multi_remove_handle(S->multi, t->easy);
      t->in_multi = 0;
      t->index = 0;
    }
    for (lua_Integer i = 1; i <= n; i++) {
      if (lua_rawgeti(L, 4, i) == LUA_TNIL) {
        lua_rawgeti(L, 2, i);
        push_multi_error(L, mc, lua_gettop(L));
        lua_rawseti(L, 4, i);
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
  }
  S->busy = 0;
  if (ev && deliver_events(L, ev)) return lua_error(L);
  lua_pushvalue(L, 4);
  return 1;
}

int knox_http_open(lua_State *L)
{
  static const luaL_Reg methods[] = {
    {"request", l_request},
    {"batch", l_batch},
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
