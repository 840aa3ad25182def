/*
 * http_text.c — transport layer 0 (bottom): raw HTTP text to Lua values,
 * safely: response and request header blocks to tables, and the redaction
 * that keeps secrets out of debug events and error urls.
 * May call: the Lua API, the C library and the text-safety module
 * (text.h: the secret-name table); no curl, no transport state, no other
 * transport file. Interface: http_text.h.
 */
#include "http_text.h"
#include "text.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------------
 * Redaction: secrets never reach the debug hook or an error's url.
 * Which names are secret is the one table in text.c (knox_text_is_secret):
 * a whole word (letters, digits, '_', '-') is looked up there, then the
 * value that follows ':' or '=' is replaced: a JSON key's value (string,
 * number, object), a header's value to the end of the line, a form or
 * query field's value to the next separator.
 */
typedef struct {
  const char *name;
  size_t len;
} Name;

static const char REDACTED[] = "[redacted]";

static unsigned char lower(unsigned char c)
{
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static int is_word(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-';
}

/* The length of the secret name (a whole word) starting at s, or 0. */
static size_t match_secret(const char *s, size_t n)
{
  size_t len = 0;
  while (len < n && len < 256 && is_word((unsigned char)s[len])) len++;
  if (len == 0 || (len < n && is_word((unsigned char)s[len]))) return 0;
  return knox_text_is_secret(s, len, 0) ? len : 0;
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
    /* userinfo in a URL (a proxy from the environment, as curl reports
     * it): scheme://user:password@host */
    if (i + 3 <= n && memcmp(s + i, "://", 3) == 0) {
      size_t j = i + 3, at = 0;
      while (j < n && strchr("/ \t\r\n\"'<>", s[j]) == NULL) {
        if (s[j] == '@') at = j;
        j++;
      }
      if (at != 0) {
        luaL_addlstring(b, s + from, i + 3 - from);
        luaL_addstring(b, REDACTED);
        from = i = at;
        continue;
      }
      i += 3;
      continue;
    }
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

void knox_http_push_redacted(lua_State *L, const char *s, size_t n)
{
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  redact_add(&b, s, n);
  luaL_pushresult(&b);
}

/* Pushes url without userinfo and with secret query values redacted. */
void knox_http_push_safe_url(lua_State *L, const char *url)
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
 *
 * Joining is linear: the parts of a repeated name collect in a list (value,
 * separator, value, ...) and knox_http_join_headers concatenates each list
 * once, at the end. Concatenating at every repeat instead copied the whole
 * value each time: quadratic, 0.9 s of CPU for 50,000 lines of one name.
 */
/* [-0, +1, m] the value of one header line, redacted when asked. */
static void push_value(lua_State *L, const char *name, size_t nlen, const char *val, size_t vlen,
                       int redact)
{
  if (redact && is_secret_name(name, nlen)) lua_pushstring(L, REDACTED);
  else if (redact) knox_http_push_redacted(L, val, vlen);
  else lua_pushlstring(L, val, vlen);
}

void knox_http_add_header(lua_State *L, int tbl, const char *name, size_t nlen,
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
  /* the common case: a name not seen before in this block */
  int ty = LUA_TNIL;
  if (maybe_dup) {
    lua_pushvalue(L, -1);
    ty = lua_rawget(L, tbl);
  }
  if (ty == LUA_TTABLE) {
    /* a third or later line: two more parts */
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    lua_pushstring(L, sep);
    lua_rawseti(L, -2, n + 1);
    push_value(L, name, nlen, val, vlen, redact);
    lua_rawseti(L, -2, n + 2);
    lua_pop(L, 2);
    return;
  }
  if (ty == LUA_TSTRING) {
    /* the second line: the value becomes a list of parts */
    lua_createtable(L, 8, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, sep);
    lua_rawseti(L, -2, 2);
    push_value(L, name, nlen, val, vlen, redact);
    lua_rawseti(L, -2, 3);
  } else {
    if (maybe_dup) lua_pop(L, 1);
    push_value(L, name, nlen, val, vlen, redact);
  }
  lua_rawset(L, tbl);
}

void knox_http_join_headers(lua_State *L, int tbl)
{
  lua_pushnil(L);
  while (lua_next(L, tbl) != 0) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      int parts = lua_gettop(L);
      lua_Integer n = (lua_Integer)lua_rawlen(L, parts);
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, parts, i);
        luaL_addvalue(&b);
      }
      luaL_pushresult(&b);
      /* replacing the value of a key lua_next is at is allowed */
      lua_pushvalue(L, parts - 1);
      lua_insert(L, -2);
      lua_rawset(L, tbl);
    }
    lua_pop(L, 1);
  }
}

/* The lower-case names of the headers most responses carry (nginx, the
 * simulator, Knox's gateways). knox_http_push_header_names makes a table
 * of them that the session methods hold as an upvalue: a name found here
 * is pushed from that table instead of being lower-cased and interned
 * again for every response, and repeats of it are found with a bit mask
 * instead of a comparison with every earlier name.
 *
 * The same table remembers the last short value of each of these names
 * (at N_COMMON + id + 1): most of them (Server, Content-Type, Connection,
 * ETag, the Date of this second) repeat from response to response, and
 * comparing the bytes is cheaper than hashing and interning them again.
 * Lua strings are immutable, so handing the same string to two responses
 * is invisible; a long value (over 40 bytes, which Lua neither hashes nor
 * interns) is not kept. */
#define COMMON_HEADERS(X) \
  X("date") X("server") X("content-type") X("content-length") X("connection") X("etag") \
  X("last-modified") X("accept-ranges") X("transfer-encoding") X("content-encoding") \
  X("cache-control") X("vary") X("keep-alive") X("expires") X("pragma") X("location") \
  X("retry-after") X("x-request-id") X("strict-transport-security") X("x-content-type-options") \
  X("x-frame-options") X("x-xss-protection") X("access-control-allow-origin") X("set-cookie") \
  X("www-authenticate") X("x-amzn-requestid") X("x-amz-request-id") X("x-correlation-id") \
  X("x-knox-transactionid") X("via") X("age") X("content-language")

static const Name common_headers[] = {
#define X(name) {name, sizeof name - 1},
  COMMON_HEADERS(X)
#undef X
};
enum { N_COMMON = sizeof common_headers / sizeof common_headers[0] };
_Static_assert(N_COMMON <= 64, "common header ids must fit a 64-bit mask");

/* Values up to Lua's short-string length are remembered. */
#define CACHED_VALUE_MAX 40

void knox_http_push_header_names(lua_State *L)
{
  lua_createtable(L, 2 * N_COMMON, 0);
  for (int k = 0; k < N_COMMON; k++) {
    lua_pushlstring(L, common_headers[k].name, common_headers[k].len);
    lua_rawseti(L, -2, k + 1);
  }
}

/* The index in common_headers of the name s[0..n) (any case), or -1. */
static int common_header(const char *s, size_t n)
{
  unsigned char c = lower((unsigned char)s[0]);
  for (int k = 0; k < N_COMMON; k++) {
    const Name *h = &common_headers[k];
    if (h->len != n || (unsigned char)h->name[0] != c) continue;
    size_t i = 1;
    while (i < n && lower((unsigned char)s[i]) == (unsigned char)h->name[i]) i++;
    if (i == n) return k;
  }
  return -1;
}

/* [-0, +1, m] the value val[0..vlen) of the common header id, from the
 * names table when the last response had the same one. */
static void push_common_value(lua_State *L, int names, int id, const char *val, size_t vlen)
{
  if (vlen > CACHED_VALUE_MAX) {
    lua_pushlstring(L, val, vlen);
    return;
  }
  if (lua_rawgeti(L, names, N_COMMON + id + 1) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (len == vlen && memcmp(s, val, vlen) == 0) return;
  }
  lua_pop(L, 1);
  lua_pushlstring(L, val, vlen);
  lua_pushvalue(L, -1);
  lua_rawseti(L, names, N_COMMON + id + 1);
}

/* [-0, +1, m] the header table of a block of lines; skip_first drops a
 * status or request line; names: the index of the table of
 * knox_http_push_header_names, or 0. */
void knox_http_push_header_block(lua_State *L, const char *p, size_t n, int skip_first, int redact, int names)
{
  const char *prev = NULL;
  size_t prev_len = 0;
  enum { MAX_SEEN = 48 };
  Name seen[MAX_SEEN];
  uint64_t common_seen = 0;
  int first = 1, lines = 0, nseen = 0, any_dup = 0;
  for (const char *q = p; q != NULL && q < p + n; lines++) {
    q = memchr(q, '\n', (size_t)(p + n - q));
    if (q != NULL) q++;
  }
  /* sized once: growing a table rehashes it and feeds the collector; the
   * status line and the blank line are no headers */
  lua_createtable(L, 0, lines > 2 ? lines - 2 : lines);
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
      if (prev != NULL && s < len) {
        knox_http_add_header(L, tbl, prev, prev_len, line + s, len - s, redact, " ", 1);
        any_dup = 1;
      }
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
    int dup, common = names != 0 ? common_header(line, nlen) : -1;
    if (common >= 0) {
      dup = (common_seen >> common) & 1;
      common_seen |= (uint64_t)1 << common;
    } else {
      dup = nseen == MAX_SEEN;
      for (int k = 0; k < nseen && !dup; k++) {
        dup = seen[k].len == nlen && strncasecmp(seen[k].name, line, nlen) == 0;
      }
      if (!dup && nseen < MAX_SEEN) {
        seen[nseen].name = line;
        seen[nseen++].len = nlen;
      }
    }
    if (common >= 0 && !dup) {
      /* the common case: a known name, first time in this block */
      lua_rawgeti(L, names, common + 1);
      if (redact) push_value(L, line, nlen, line + vs, ve - vs, redact);
      else push_common_value(L, names, common, line + vs, ve - vs);
      lua_rawset(L, tbl);
    } else {
      knox_http_add_header(L, tbl, line, nlen, line + vs, ve - vs, redact, ", ", dup);
    }
    any_dup |= dup;
  }
  /* only a block with a repeated name (or a folded line) has lists to join */
  if (any_dup) knox_http_join_headers(L, tbl);
}
