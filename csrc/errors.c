/*
 * errors.c — turns whatever a Knox service answered into one knox.Error:
 * the code, the name, the HTTP status, the best message, the ids, whether a
 * retry or a fresh token can help. Also the per-item failures inside 2xx
 * bulk answers, and look-ups in the code catalog (catalog.c).
 *
 * Bodies are parsed with cJSON and never trusted: every field may be
 * missing, of any type, an array instead of a scalar, or not JSON at all.
 * Nothing here raises for a body; only misuse of the Lua API raises
 * ("bad argument"). The cJSON tree is owned by a guard userdata closed with
 * lua_toclose, so an out-of-memory error from Lua cannot leak it.
 *
 * Decisions where the docs are silent (see also lua/knox/errors.lua):
 * - service: as given; else inferred from the URL path (/kcs/v1/kme -> kme,
 *   /kcs/v1.1/kg -> kg, /msp/v1 -> msp, /kcs/v1/rp and /bulkenroll -> kdp,
 *   /kcs/v1/kc and /kc/v2 -> kc, /kai/v1 -> kai, /ams/v1/oauth2 -> oauth2,
 *   other /ams/ -> auth).
 * - Look-ups are per service; a kcs service's own table is searched first,
 *   then the Knox Cloud Authentication table (the token check in front of
 *   every service answers with those codes). AUT_/LIC_ codes are looked up
 *   among Samsung Account codes and OAuth error strings among RFC 6749/6750
 *   codes whatever the service. With no service, a name is taken from the
 *   catalog only when every service that knows the code agrees on it.
 * - A plain 401 (no renew code) still gets auth_action "renew" unless it
 *   came from a token endpoint (auth, oauth2, samsung_account): a stale or
 *   expired bearer token is the common cause and one renewal is cheap; the
 *   client renews at most once per request.
 * - request_id: from x-request-id, x-amzn-requestid, x-amz-request-id,
 *   x-correlation-id or x-knox-transactionid response headers. UNCONFIRMED:
 *   Knox documents no request-id response header (api-notes §5).
 * - body: the raw body cut to 4 KiB on a UTF-8 boundary, with token-like
 *   values (JWTs, "...token"/"...secret" JSON or form values, Bearer
 *   credentials) replaced by "[redacted]". message and method get the same
 *   redaction; every text field (ids too) is one line of valid UTF-8.
 * - url: no userinfo, no fragment, secret-looking query values redacted.
 * - A body that looks like JSON but does not parse (cut short, or as broken
 *   as two of the documented Knox Guard examples) is salvaged: complete
 *   "key": value pairs of the fields read here are used, a cut-off value
 *   never is. Bodies above 4 MiB are not parsed (only salvaged/scanned).
 * - message: the body's most specific text (errorMessage, error.reason,
 *   data, error_description, detail, message prose, ...) unless it only
 *   repeats the name or code; else the catalog description; else the HTTP
 *   reason phrase. HTML pages give their <title>.
 * - items(): per-item errors have kind "api" (or "auth" for credential
 *   codes), no status (the response was a success), and retryable from the
 *   code's own HTTP class. kind "partial" is for the whole response
 *   (knox.errors.partial in Lua).
 */
#include "knox.h"
#include "catalog.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define GUARD_MT "knox.errors.guard"

#define BODY_KEEP 4096          /* bytes of raw body kept in err.body */
#define TEXT_MAX 480            /* bytes of one-line message text */
#define ID_MAX 128              /* bytes of an id (error_id, request_id ...) */
#define PARSE_MAX (4u << 20)    /* error bodies above this are not parsed */
#define SCAN_MAX (64u << 10)    /* bytes searched for a bare AUT_/LIC_ code */
#define ITEMS_MAX 100000        /* list elements looked at by items() */
#define TABLE_DEPTH 32          /* nesting converted from a Lua table */
#define NCAND 16                /* catalog candidates for one code */
#define NTEXT 12                /* message candidates kept per body */

/* ------------------------------------------------------------------------
 * Small ASCII helpers (locale-independent on purpose).
 */
static int a_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static int a_upper(int c) { return c >= 'a' && c <= 'z' ? c - 32 : c; }
static int a_digit(int c) { return c >= '0' && c <= '9'; }
static int a_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int a_alnum(int c) { return a_alpha(c) || a_digit(c); }
static int a_space(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }
static int b64url(int c) { return a_alnum(c) || c == '-' || c == '_'; }

static int ci_eq(const char *a, size_t alen, const char *b)
{
  size_t blen = strlen(b);
  if (alen != blen) return 0;
  for (size_t i = 0; i < alen; i++) {
    if (a_lower((unsigned char)a[i]) != a_lower((unsigned char)b[i])) return 0;
  }
  return 1;
}

/* Case-insensitive search for needle in s[0..n). */
static const char *ci_find(const char *s, size_t n, const char *needle)
{
  size_t m = strlen(needle);
  if (m == 0 || m > n) return NULL;
  for (size_t i = 0; i + m <= n; i++) {
    size_t j = 0;
    while (j < m && a_lower((unsigned char)s[i + j]) == a_lower((unsigned char)needle[j])) j++;
    if (j == m) return s + i;
  }
  return NULL;
}

static void trim(const char **s, size_t *n)
{
  while (*n > 0 && a_space((unsigned char)**s)) { (*s)++; (*n)--; }
  while (*n > 0 && a_space((unsigned char)(*s)[*n - 1])) (*n)--;
}

/* A Knox error name: upper snake case such as DEVICE_NOT_FOUND. */
static int is_name(const char *s, size_t n)
{
  if (n < 2 || n > 96 || !(s[0] >= 'A' && s[0] <= 'Z')) return 0;
  for (size_t i = 1; i < n; i++) {
    int c = (unsigned char)s[i];
    if (!((c >= 'A' && c <= 'Z') || a_digit(c) || c == '_')) return 0;
  }
  return 1;
}

/* An OAuth 2.0 error code as servers send them: invalid_grant. */
static int is_oauth_code(const char *s, size_t n)
{
  if (n < 3 || n > 64 || !(s[0] >= 'a' && s[0] <= 'z')) return 0;
  for (size_t i = 1; i < n; i++) {
    int c = (unsigned char)s[i];
    if (!((c >= 'a' && c <= 'z') || c == '_')) return 0;
  }
  return 1;
}

/* A Samsung Account code: AUT_1234 or LIC_1234 (any case). */
static int is_sa_code(const char *s, size_t n)
{
  if (n != 8 || s[3] != '_') return 0;
  if (!ci_eq(s, 3, "AUT") && !ci_eq(s, 3, "LIC")) return 0;
  for (size_t i = 4; i < 8; i++) if (!a_digit((unsigned char)s[i])) return 0;
  return 1;
}

/* Knox codes are positive integers (7 or 8 digits in practice). */
#define CODE_LIMIT 1e15

static int digits_to_code(const char *s, size_t n, lua_Integer *out)
{
  if (n == 0 || n > 15) return 0;
  lua_Integer v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!a_digit((unsigned char)s[i])) return 0;
    v = v * 10 + (s[i] - '0');
  }
  if (v < 1) return 0;
  *out = v;
  return 1;
}

static int double_to_code(double d, lua_Integer *out)
{
  if (!isfinite(d) || d < 1 || d >= CODE_LIMIT || floor(d) != d) return 0;
  *out = (lua_Integer)d;
  return 1;
}

/* The HTTP status class a Knox code stands for: its first three digits. */
static int code_class(lua_Integer code)
{
  if (code < 100) return 0;
  while (code >= 1000) code /= 10;
  return (int)code;
}

/* ------------------------------------------------------------------------
 * Text: one line, valid UTF-8, bounded, secrets redacted.
 */
struct sink {
  char *p;
  size_t len, cap;
};

static void put(struct sink *k, const char *s, size_t n)
{
  size_t room = k->cap - k->len;
  if (n > room) n = room;
  memcpy(k->p + k->len, s, n);
  k->len += n;
}

static void putc1(struct sink *k, char c) { put(k, &c, 1); }

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
  unsigned c = s[0];
  size_t len;
  unsigned min, cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
  else return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

/* The longest prefix of s[0..n) not ending inside a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
  if (n <= max) return n;
  size_t cut = max;
  size_t back = 0;
  while (cut > 0 && back < 3 && ((unsigned char)s[cut] & 0xC0) == 0x80) { cut--; back++; }
  return cut;
}

/* Key names whose values are secrets. "code" is one only in a URL (an
 * OAuth authorization code); in bodies it is the Knox error code. */
static int is_sensitive_key(const char *k, size_t n, int url)
{
  static const char *const exact[] = {"key", "sig", "pwd", "pw", "auth", "authorization"};
  if (url && ci_eq(k, n, "code")) return 1;
  static const char *const part[] = {"token", "secret", "passw", "apikey", "api_key", "api-key",
                                     "signature", "assertion", "jwt", "credential", "session",
                                     "private", "cookie"};
  for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
    if (ci_eq(k, n, exact[i])) return 1;
  }
  for (size_t i = 0; i < sizeof part / sizeof part[0]; i++) {
    if (ci_find(k, n, part[i]) != NULL) return 1;
  }
  return 0;
}

#define REDACTED "[redacted]"

/* Copies s[0..n) to k replacing secrets: JWT-shaped strings, the values of
 * JSON members and form fields whose key looks secret, Bearer/Basic
 * credentials. Each secret is skipped whole, so a cut made afterwards can
 * never show part of one. */
static void scrub(struct sink *k, const char *s, size_t n)
{
  size_t i = 0;
  while (i < n && k->len < k->cap) {
    unsigned char c = (unsigned char)s[i];
    int boundary = i == 0 || !b64url((unsigned char)s[i - 1]);

    /* a JWT: eyJ... . ... [. ...] */
    if (c == 'e' && boundary && i + 3 <= n && memcmp(s + i, "eyJ", 3) == 0) {
      size_t j = i, dots = 0;
      while (j < n && (b64url((unsigned char)s[j]) || s[j] == '.')) {
        if (s[j] == '.') dots++;
        j++;
      }
      if (dots >= 1 && j - i >= 16) {
        put(k, REDACTED, sizeof REDACTED - 1);
        i = j;
        continue;
      }
    }
    /* "Bearer xxx", "Basic xxx" */
    if ((c == 'B' || c == 'b') && boundary) {
      size_t w = 0;
      if (i + 7 <= n && ci_eq(s + i, 6, "bearer") && s[i + 6] == ' ') w = 7;
      else if (i + 6 <= n && ci_eq(s + i, 5, "basic") && s[i + 5] == ' ') w = 6;
      if (w > 0) {
        size_t j = i + w;
        while (j < n && s[j] == ' ') j++;
        size_t v = j;
        while (j < n && !a_space((unsigned char)s[j]) && s[j] != '"' && s[j] != ',' && s[j] != '\'') j++;
        if (j - v >= 8) {
          put(k, s + i, w);
          put(k, REDACTED, sizeof REDACTED - 1);
          i = j;
          continue;
        }
      }
    }
    /* "key": "value" with a secret-looking key */
    if (c == '"') {
      size_t j = i + 1;
      while (j < n && j - i <= 64 && s[j] != '"' && s[j] != '\\') j++;
      if (j < n && s[j] == '"' && is_sensitive_key(s + i + 1, j - i - 1, 0)) {
        size_t m = j + 1;
        while (m < n && a_space((unsigned char)s[m])) m++;
        if (m < n && s[m] == ':') {
          m++;
          while (m < n && a_space((unsigned char)s[m])) m++;
          if (m < n && s[m] == '"') {
            size_t e = m + 1;
            while (e < n && s[e] != '"') e += (s[e] == '\\' && e + 1 < n) ? 2 : 1;
            put(k, s + i, m + 1 - i);
            put(k, REDACTED, sizeof REDACTED - 1);
            i = e; /* the closing quote (if any) is copied next */
            continue;
          }
        }
      }
    }
    /* key=value (form or query text) with a secret-looking key */
    if (a_alpha(c) && (i == 0 || !(a_alnum((unsigned char)s[i - 1]) || s[i - 1] == '_'))) {
      size_t j = i;
      while (j < n && j - i <= 64 && (a_alnum((unsigned char)s[j]) || s[j] == '_' || s[j] == '-' || s[j] == '.')) j++;
      if (j < n && s[j] == '=' && is_sensitive_key(s + i, j - i, 0)) {
        size_t e = j + 1;
        while (e < n && s[e] != '&' && !a_space((unsigned char)s[e]) && s[e] != '"' &&
               s[e] != '\'' && s[e] != '<' && s[e] != ',') e++;
        put(k, s + i, j + 1 - i);
        if (e > j + 1) put(k, REDACTED, sizeof REDACTED - 1);
        i = e;
        continue;
      }
      /* copy the whole word so its tail is not re-examined */
      put(k, s + i, j - i);
      i = j;
      continue;
    }
    putc1(k, (char)c);
    i++;
  }
}

/* Makes one line of valid UTF-8 from s: controls become spaces, runs of
 * spaces collapse, invalid bytes become U+FFFD. Returns bytes written. */
static size_t one_line(char *out, size_t cap, const char *s, size_t n)
{
  struct sink k = {out, 0, cap};
  int space = 1;
  size_t i = 0;
  while (i < n && k.len < cap) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7F || c == ' ') {
      if (!space) putc1(&k, ' ');
      space = 1;
      i++;
      continue;
    }
    size_t len = utf8_seq((const unsigned char *)s + i, n - i);
    if (len == 0) {
      if (k.len + 3 > cap) break;
      put(&k, "\xEF\xBF\xBD", 3);
      i++;
    } else {
      if (k.len + len > cap) break;
      put(&k, s + i, len);
      i += len;
    }
    space = 0;
  }
  while (k.len > 0 && out[k.len - 1] == ' ') k.len--;
  return k.len;
}

/* Pushes the display form of s: one line, redacted, at most max bytes
 * (cut on a character boundary, marked with "..."). */
static void push_text(lua_State *L, const char *s, size_t n, size_t max)
{
  char line[2 * TEXT_MAX + 8];
  char red[2 * TEXT_MAX + 32];
  if (n > 4 * TEXT_MAX) n = 4 * TEXT_MAX;
  size_t ln = one_line(line, sizeof line, s, n);
  struct sink k = {red, 0, sizeof red};
  scrub(&k, line, ln);
  if (k.len > max) {
    size_t cut = utf8_cut(red, k.len, max - 3);
    while (cut > 0 && red[cut - 1] == ' ') cut--;
    memcpy(red + cut, "...", 3);
    k.len = cut + 3;
  }
  lua_pushlstring(L, red, k.len);
}

/* Whether a text is mostly readable: plain-text bodies that are binary
 * noise are not worth showing. */
static int readable(const char *s, size_t n)
{
  size_t bad = 0, i = 0;
  if (n == 0) return 0;
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    size_t len = utf8_seq((const unsigned char *)s + i, n - i);
    if (len == 0 || (c < 0x20 && !a_space(c)) || c == 0x7F) { bad++; i++; }
    else i += len;
  }
  return bad * 10 <= n;
}

/* ------------------------------------------------------------------------
 * The catalog.
 */
struct service {
  const char *name;
  const char *fallback; /* searched when the own table does not know a code */
  int token;            /* a token endpoint: a 401 is a credential problem */
};

static const struct service services[] = {
  {"kme", "auth", 0},  {"kg", "auth", 0},   {"msp", "auth", 0},
  {"kdp", "auth", 0},  {"kc", "auth", 0},   {"kai", "auth", 0},
  {"auth", NULL, 1},   {"oauth2", "auth", 1}, {"samsung_account", NULL, 1},
};

static const struct service *find_service(const char *name)
{
  if (name == NULL) return NULL;
  for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
    if (strcmp(services[i].name, name) == 0) return &services[i];
  }
  return NULL;
}

/* A normalized code: numeric (num > 0) or a string (str[0] != 0). */
struct code {
  lua_Integer num;
  char str[72];
};

static int code_set(const struct code *c) { return c->num > 0 || c->str[0] != 0; }

static void code_text(const struct code *c, char *buf, size_t cap)
{
  if (c->num > 0) snprintf(buf, cap, "%lld", (long long)c->num);
  else snprintf(buf, cap, "%s", c->str);
}

/* Parses s as a code: digits, AUT_/LIC_ (upper-cased) or an OAuth code. */
static int code_from_string(struct code *c, const char *s, size_t n, int allow_oauth)
{
  trim(&s, &n);
  if (digits_to_code(s, n, &c->num)) return 1;
  if (is_sa_code(s, n)) {
    for (size_t i = 0; i < n; i++) c->str[i] = (char)a_upper((unsigned char)s[i]);
    c->str[n] = 0;
    return 1;
  }
  if (allow_oauth && is_oauth_code(s, n)) {
    memcpy(c->str, s, n);
    c->str[n] = 0;
    return 1;
  }
  return 0;
}

static size_t collect_in(const char *svc, const struct code *c, const struct knox_code **out,
                         size_t n)
{
  char text[80];
  code_text(c, text, sizeof text);
  for (size_t i = 0; i < knox_catalog_size && n < NCAND; i++) {
    const struct knox_code *e = &knox_catalog[i];
    if ((svc == NULL || strcmp(e->service, svc) == 0) && strcmp(e->code, text) == 0) out[n++] = e;
  }
  return n;
}

/* The catalog entries a code may stand for in a service (NULL: any). */
static size_t collect(const struct service *svc, const struct code *c,
                      const struct knox_code **out)
{
  size_t n;
  if (!code_set(c)) return 0;
  if (svc == NULL) return collect_in(NULL, c, out, 0);
  n = collect_in(svc->name, c, out, 0);
  if (n == 0 && svc->fallback != NULL) n = collect_in(svc->fallback, c, out, 0);
  if (n == 0 && c->num == 0) {
    n = collect_in(is_sa_code(c->str, strlen(c->str)) ? "samsung_account" : "oauth2", c, out, 0);
  }
  return n;
}

static const struct knox_code *by_name_in(const char *svc, const char *name)
{
  for (size_t i = 0; i < knox_catalog_size; i++) {
    const struct knox_code *e = &knox_catalog[i];
    if ((svc == NULL || strcmp(e->service, svc) == 0) && strcmp(e->name, name) == 0) return e;
  }
  return NULL;
}

static const struct knox_code *by_name(const struct service *svc, const char *name)
{
  const struct knox_code *e = NULL;
  if (svc == NULL) return NULL;
  e = by_name_in(svc->name, name);
  if (e == NULL && svc->fallback != NULL) e = by_name_in(svc->fallback, name);
  return e;
}

/* ------------------------------------------------------------------------
 * What a body says.
 */
struct cand {
  const char *s;
  size_t n;
  int prio;
};

struct info {
  struct code code;
  char name[100];
  struct cand text[NTEXT];
  int ntext;
  char error_id[ID_MAX + 1];
  char txn_id[ID_MAX + 1];
  char oauth[72];           /* an OAuth "error" value, used when no code */
  int fail;                 /* result: "FAIL" */
  int www_invalid_token;    /* WWW-Authenticate: Bearer error="invalid_token" */
};

/* Whether s has anything to show once controls become spaces. */
static int visible(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c > 0x20 && c != 0x7F) return 1;
  }
  return 0;
}

static void add_text(struct info *in, const char *s, size_t n, int prio)
{
  trim(&s, &n);
  if (n == 0 || in->ntext >= NTEXT || !visible(s, n > 4 * TEXT_MAX ? 4 * TEXT_MAX : n)) return;
  in->text[in->ntext].s = s;
  in->text[in->ntext].n = n;
  in->text[in->ntext].prio = prio;
  in->ntext++;
}

static void set_name(struct info *in, const char *s, size_t n)
{
  if (in->name[0] == 0 && is_name(s, n)) {
    memcpy(in->name, s, n);
    in->name[n] = 0;
  }
}

static void copy_id(char *dst, const char *s, size_t n)
{
  trim(&s, &n);
  if (dst[0] != 0 || n == 0) return;
  size_t len = one_line(dst, ID_MAX, s, n);
  dst[len] = 0;
}

static const cJSON *get(const cJSON *o, const char *key)
{
  if (!cJSON_IsObject(o)) return NULL;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return v != NULL ? v : cJSON_GetObjectItem(o, key);
}

/* A scalar, or the first element of an array of scalars (the array-shaped
 * bodies of KBA-1242 wrap every field in a list). */
static const cJSON *scalar(const cJSON *v)
{
  if (cJSON_IsArray(v)) v = v->child;
  if (v == NULL || cJSON_IsArray(v) || cJSON_IsObject(v) || cJSON_IsNull(v)) return NULL;
  return v;
}

static const char *str_of(const cJSON *v, size_t *n)
{
  v = scalar(v);
  if (!cJSON_IsString(v) || v->valuestring == NULL) return NULL;
  *n = strlen(v->valuestring);
  return v->valuestring;
}

/* The first code found wins; a NAME found in a code field (MSP Portal's
 * "code") is taken as the name whatever came first. */
static void take_code(struct info *in, const cJSON *v)
{
  size_t n;
  const char *s;
  struct code c;
  memset(&c, 0, sizeof c);
  v = scalar(v);
  if (cJSON_IsNumber(v)) {
    double_to_code(v->valuedouble, &c.num);
  } else if ((s = str_of(v, &n)) != NULL) {
    if (!code_from_string(&c, s, n, 0)) {
      trim(&s, &n);
      set_name(in, s, n);
    }
  }
  if (!code_set(&in->code) && code_set(&c)) in->code = c;
}

static void take_id(char *dst, const cJSON *v)
{
  size_t n;
  const char *s;
  char num[32];
  v = scalar(v);
  if ((s = str_of(v, &n)) != NULL) {
    copy_id(dst, s, n);
  } else if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
    if (floor(v->valuedouble) == v->valuedouble && fabs(v->valuedouble) < 1e15) {
      snprintf(num, sizeof num, "%.0f", v->valuedouble);
    } else {
      snprintf(num, sizeof num, "%.17g", v->valuedouble);
    }
    copy_id(dst, num, strlen(num));
  }
}

/* "message" is a NAME in some services and prose in others. */
static void take_message(struct info *in, const cJSON *v, int prio)
{
  size_t n;
  const char *s = str_of(v, &n);
  if (s == NULL) return;
  trim(&s, &n);
  if (is_name(s, n)) set_name(in, s, n);
  else add_text(in, s, n, prio);
}

static void take_text(struct info *in, const cJSON *v, int prio)
{
  size_t n;
  const char *s = str_of(v, &n);
  if (s != NULL) add_text(in, s, n, prio);
}

static int is_fail_word(const char *s, size_t n)
{
  trim(&s, &n);
  return ci_eq(s, n, "FAIL") || ci_eq(s, n, "FAILED") || ci_eq(s, n, "FAILURE");
}

/* Knox Guard / KAI error object {code, message, reason}, or the first of
 * an "errors" list. */
static void scan_error_object(struct info *in, const cJSON *e)
{
  take_code(in, get(e, "code"));
  take_code(in, get(e, "errorCode"));
  take_message(in, get(e, "message"), 60);
  take_text(in, get(e, "reason"), 85);
  take_text(in, get(e, "description"), 65);
  take_text(in, get(e, "detail"), 65);
  take_id(in->error_id, get(e, "errorId"));
}

static void scan_body(struct info *in, const cJSON *root, int depth)
{
  size_t n;
  const char *s;
  const cJSON *e;

  if (cJSON_IsArray(root)) {
    /* a list of error objects: the first one speaks for the response */
    for (e = root->child; e != NULL; e = e->next) {
      if (cJSON_IsObject(e)) {
        if (depth < 2) scan_body(in, e, depth + 1);
        return;
      }
    }
    return;
  }
  if (cJSON_IsString(root) && root->valuestring != NULL) {
    add_text(in, root->valuestring, strlen(root->valuestring), 50);
    return;
  }
  if (!cJSON_IsObject(root)) return;

  if ((s = str_of(get(root, "result"), &n)) != NULL && is_fail_word(s, n)) in->fail = 1;

  take_code(in, get(root, "errorCode"));          /* MSP Portal */
  e = get(root, "error");
  if (cJSON_IsObject(e)) {
    scan_error_object(in, e);                     /* Knox Guard, KAI */
  } else if (cJSON_IsArray(e) && cJSON_IsObject(e->child)) {
    scan_error_object(in, e->child);
  } else if ((s = str_of(e, &n)) != NULL) {
    trim(&s, &n);
    if (is_oauth_code(s, n)) {                    /* OAuth 2.0 */
      memcpy(in->oauth, s, n);
      in->oauth[n] = 0;
    } else {
      add_text(in, s, n, 40);                     /* e.g. Spring's "Not Found" */
    }
  }
  e = get(root, "errors");
  if (cJSON_IsArray(e) && cJSON_IsObject(e->child)) scan_error_object(in, e->child);
  else take_text(in, e, 45);

  take_code(in, get(root, "code"));               /* KME, KDP, KC */
  take_code(in, get(root, "error_code"));         /* Samsung Account */
  take_message(in, get(root, "message"), 55);
  take_text(in, get(root, "errorMessage"), 90);
  take_text(in, get(root, "data"), 80);
  take_text(in, get(root, "error_description"), 75);
  take_text(in, get(root, "detail"), 70);         /* RFC 9457 problem details */
  take_text(in, get(root, "title"), 35);
  take_id(in->error_id, get(root, "errorId"));
  take_id(in->txn_id, get(root, "transactionalId"));
  take_id(in->txn_id, get(root, "transactionId"));
}

/* Finds a bare AUT_1234 / LIC_1234 in text. */
static void scan_sa_code(struct info *in, const char *s, size_t n)
{
  if (code_set(&in->code)) return;
  if (n > SCAN_MAX) n = SCAN_MAX;
  for (size_t i = 0; i + 8 <= n; i++) {
    if (s[i + 3] != '_') continue;
    if (i > 0 && (a_alnum((unsigned char)s[i - 1]) || s[i - 1] == '_')) continue;
    if (i + 8 < n && (a_alnum((unsigned char)s[i + 8]) || s[i + 8] == '_')) continue;
    if (is_sa_code(s + i, 8) && code_from_string(&in->code, s + i, 8, 0)) return;
  }
}

/* A body that looks like JSON but does not parse (cut short by a proxy or
 * a size limit, or as broken as two of the documented examples): the
 * first complete "key": value of each field we read, as a flat object.
 * Strings must be closed and numbers followed by a delimiter, so a cut
 * never yields a shortened code. */
static cJSON *salvage(const char *s, size_t n)
{
  static const char *const keys[] = {
    "errorCode", "code", "error_code", "message", "data", "reason", "errorMessage",
    "error_description", "detail", "error", "errorId", "transactionalId", "transactionId",
    "result"};
  char val[1024];
  cJSON *o = cJSON_CreateObject();
  if (o == NULL) return NULL;
  if (n > SCAN_MAX) n = SCAN_MAX;
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    size_t kl = strlen(keys[k]);
    for (size_t i = 0; i + kl + 2 < n; i++) {
      if (s[i] != '"' || memcmp(s + i + 1, keys[k], kl) != 0 || s[i + 1 + kl] != '"') continue;
      size_t j = i + kl + 2;
      while (j < n && a_space((unsigned char)s[j])) j++;
      if (j >= n || s[j] != ':') continue;
      j++;
      while (j < n && a_space((unsigned char)s[j])) j++;
      if (j >= n) break;
      cJSON *v = NULL;
      if (s[j] == '"') {
        size_t m = 0, e = j + 1;
        while (e < n && s[e] != '"') {
          char c = s[e];
          if (c == '\\' && e + 1 < n) {
            c = s[++e];
            if (c == 'n' || c == 't' || c == 'r') c = ' ';
          }
          if (m < sizeof val - 1) val[m++] = c;
          e++;
        }
        if (e >= n) break; /* not closed: cut short */
        val[m] = 0;
        v = cJSON_CreateString(val);
      } else if (a_digit((unsigned char)s[j]) || s[j] == '-') {
        size_t e = j;
        while (e < n && (a_digit((unsigned char)s[e]) || s[e] == '.' || s[e] == '-' ||
                         s[e] == '+' || s[e] == 'e' || s[e] == 'E')) e++;
        if (e >= n || e - j >= sizeof val) break;
        memcpy(val, s + j, e - j);
        val[e - j] = 0;
        v = cJSON_Parse(val);
      } else {
        continue;
      }
      if (v != NULL && !cJSON_AddItemToObject(o, keys[k], v)) cJSON_Delete(v);
      break;
    }
  }
  return o;
}

/* Text bodies: the <title> of an HTML page, or short readable text. */
static void scan_text(struct info *in, const char *s, size_t n, int html)
{
  const char *t = s;
  size_t tn = n;
  trim(&t, &tn);
  if (tn == 0) return;
  if (!html && t[0] == '<') html = 1;
  if (html) {
    static const char *const tags[][2] = {{"<title", "</title"}, {"<h1", "</h1"}};
    size_t lim = n > SCAN_MAX ? SCAN_MAX : n;
    for (size_t k = 0; k < 2; k++) {
      const char *open = ci_find(s, lim, tags[k][0]);
      if (open == NULL) continue;
      const char *gt = memchr(open, '>', lim - (size_t)(open - s));
      if (gt == NULL) continue;
      gt++;
      const char *close = ci_find(gt, lim - (size_t)(gt - s), tags[k][1]);
      size_t len = close != NULL ? (size_t)(close - gt) : 0;
      if (len > 0 && readable(gt, len)) {
        add_text(in, gt, len, 20);
        return;
      }
    }
    return;
  }
  if (tn > 4 * TEXT_MAX) tn = 4 * TEXT_MAX;
  if (readable(t, tn)) add_text(in, t, tn, 10);
}

/* ------------------------------------------------------------------------
 * HTTP bits: reason phrases, Retry-After, WWW-Authenticate.
 */
static const char *reason_phrase(int status)
{
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 206: return "Partial Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 402: return "Payment Required";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 407: return "Proxy Authentication Required";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 416: return "Range Not Satisfiable";
  case 417: return "Expectation Failed";
  case 421: return "Misdirected Request";
  case 422: return "Unprocessable Entity";
  case 423: return "Locked";
  case 425: return "Too Early";
  case 426: return "Upgrade Required";
  case 428: return "Precondition Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 451: return "Unavailable For Legal Reasons";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  case 507: return "Insufficient Storage";
  case 508: return "Loop Detected";
  case 511: return "Network Authentication Required";
  default: return NULL;
  }
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int month_of(const char *s)
{
  static const char *const names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                      "jul", "aug", "sep", "oct", "nov", "dec"};
  for (int i = 0; i < 12; i++) {
    if (ci_eq(s, 3, names[i])) return i + 1;
  }
  return 0;
}

static int read_int(const char **p, const char *end, int maxdigits, int *out)
{
  int v = 0, k = 0;
  while (*p < end && a_digit((unsigned char)**p) && k < maxdigits) {
    v = v * 10 + (**p - '0');
    (*p)++;
    k++;
  }
  if (k == 0 || (*p < end && a_digit((unsigned char)**p))) return 0;
  *out = v;
  return k;
}

static int read_hms(const char **p, const char *end, int *h, int *mi, int *se)
{
  if (read_int(p, end, 2, h) == 0 || *p >= end || **p != ':') return 0;
  (*p)++;
  if (read_int(p, end, 2, mi) == 0 || *p >= end || **p != ':') return 0;
  (*p)++;
  return read_int(p, end, 2, se) != 0;
}

static void skip_sp(const char **p, const char *end)
{
  while (*p < end && **p == ' ') (*p)++;
}

/* An HTTP-date (IMF-fixdate, RFC 850 or asctime) as epoch seconds. */
static int parse_http_date(const char *s, size_t n, int64_t *out)
{
  const char *p = s, *end = s + n;
  int day = 0, mon = 0, year = 0, h = 0, mi = 0, se = 0, k;
  while (p < end && a_alpha((unsigned char)*p)) p++;   /* weekday */
  if (p == s) return 0;
  if (p < end && *p == ',') p++;
  skip_sp(&p, end);
  if (p < end && a_digit((unsigned char)*p)) {
    /* "06 Nov 1994 08:49:37 GMT" or "06-Nov-94 08:49:37 GMT" */
    if (read_int(&p, end, 2, &day) == 0 || p >= end) return 0;
    char sep = *p;
    if (sep != ' ' && sep != '-') return 0;
    p++;
    if (end - p < 3 || (mon = month_of(p)) == 0) return 0;
    p += 3;
    if (p >= end || *p != sep) return 0;
    p++;
    k = read_int(&p, end, 4, &year);
    if (k == 2) year += year < 70 ? 2000 : 1900;
    else if (k != 4) return 0;
    skip_sp(&p, end);
    if (!read_hms(&p, end, &h, &mi, &se)) return 0;
    skip_sp(&p, end);
    if (end - p < 3 || !ci_eq(p, 3, "GMT")) return 0;
  } else {
    /* asctime: "Nov  6 08:49:37 1994" */
    if (end - p < 3 || (mon = month_of(p)) == 0) return 0;
    p += 3;
    skip_sp(&p, end);
    if (read_int(&p, end, 2, &day) == 0) return 0;
    skip_sp(&p, end);
    if (!read_hms(&p, end, &h, &mi, &se)) return 0;
    skip_sp(&p, end);
    if (read_int(&p, end, 4, &year) != 4) return 0;
  }
  if (day < 1 || day > 31 || h > 23 || mi > 59 || se > 60) return 0;
  *out = days_from_civil(year, mon, day) * 86400 + h * 3600 + mi * 60 + se;
  return 1;
}

/* Retry-After: delta-seconds or an HTTP-date (relative to the response's
 * Date, else to now), clamped to [0, 1e9]. */
static int parse_retry_after(const char *v, size_t n, const char *date, size_t dn,
                             lua_Integer *out)
{
  lua_Integer secs;
  trim(&v, &n);
  if (n == 0) return 0;
  if (a_digit((unsigned char)v[0])) {
    size_t i = 0;
    secs = 0;
    while (i < n && a_digit((unsigned char)v[i])) {
      if (secs < 1000000000) secs = secs * 10 + (v[i] - '0');
      i++;
    }
    if (i != n) return 0;
  } else {
    int64_t when, now;
    if (!parse_http_date(v, n, &when)) return 0;
    trim(&date, &dn);
    if (dn == 0 || !parse_http_date(date, dn, &now)) now = (int64_t)time(NULL);
    int64_t d = when - now;
    secs = d < 0 ? 0 : (lua_Integer)d;
  }
  if (secs > 1000000000) secs = 1000000000;
  *out = secs;
  return 1;
}

/* WWW-Authenticate: Bearer error="invalid_token", error_description="..."
 * (RFC 6750 §3). Fills the OAuth code and a message candidate. */
static void scan_www_authenticate(struct info *in, const char *v, size_t n)
{
  const char *p = ci_find(v, n, "bearer");
  if (p == NULL) return;
  const char *end = v + n;
  p += 6;
  while (p < end) {
    while (p < end && (a_space((unsigned char)*p) || *p == ',')) p++;
    const char *k = p;
    while (p < end && *p != '=' && *p != ',' && !a_space((unsigned char)*p)) p++;
    size_t kn = (size_t)(p - k);
    if (p >= end || *p != '=') continue;
    p++;
    const char *val = p;
    size_t vn;
    if (p < end && *p == '"') {
      val = ++p;
      while (p < end && *p != '"') p += (*p == '\\' && p + 1 < end) ? 2 : 1;
      vn = (size_t)(p - val);
      if (p < end) p++;
    } else {
      while (p < end && *p != ',' && !a_space((unsigned char)*p)) p++;
      vn = (size_t)(p - val);
    }
    if (ci_eq(k, kn, "error") && is_oauth_code(val, vn)) {
      if (in->oauth[0] == 0) {
        memcpy(in->oauth, val, vn);
        in->oauth[vn] = 0;
      }
      if (ci_eq(val, vn, "invalid_token")) in->www_invalid_token = 1;
    } else if (ci_eq(k, kn, "error_description")) {
      add_text(in, val, vn, 65);
    }
  }
}

/* ------------------------------------------------------------------------
 * URLs: no userinfo, no fragment, secret query values redacted; and the
 * service a path belongs to.
 */
static void push_clean_url(lua_State *L, const char *url, size_t n)
{
  char out[2300];
  struct sink k = {out, 0, 2048};
  const char *end = url + (n > 8192 ? 8192 : n);
  const char *p = url;
  const char *sch = NULL;

  for (const char *q = url; q + 3 <= end && q - url < 16; q++) {
    if (q[0] == ':' && q[1] == '/' && q[2] == '/') { sch = q; break; }
  }
  if (sch != NULL) {
    const char *auth = sch + 3;
    const char *aend = auth;
    while (aend < end && *aend != '/' && *aend != '?' && *aend != '#') aend++;
    const char *at = NULL;
    for (const char *q = auth; q < aend; q++) if (*q == '@') at = q;
    put(&k, url, (size_t)(auth - url));
    if (at != NULL) auth = at + 1;
    put(&k, auth, (size_t)(aend - auth));
    p = aend;
  }
  while (p < end && *p != '?' && *p != '#') putc1(&k, *p++);
  if (p < end && *p == '?') {
    putc1(&k, *p++);
    while (p < end && *p != '#') {
      const char *key = p;
      while (p < end && *p != '=' && *p != '&' && *p != '#') p++;
      size_t kn = (size_t)(p - key);
      put(&k, key, kn);
      if (p < end && *p == '=') {
        const char *val = ++p;
        while (p < end && *p != '&' && *p != '#') p++;
        putc1(&k, '=');
        if (is_sensitive_key(key, kn, 1) && p > val) put(&k, REDACTED, sizeof REDACTED - 1);
        else put(&k, val, (size_t)(p - val));
      }
      if (p < end && *p == '&') putc1(&k, *p++);
    }
  }
  /* never let control characters or a cut sequence into a one-line field */
  char line[2300];
  size_t ln = one_line(line, sizeof line, out, k.len);
  lua_pushlstring(L, line, ln);
}

static const char *service_from_url(const char *url, size_t n)
{
  static const char *const map[][2] = {
    {"/ams/v1/oauth2", "oauth2"}, {"/ams/v0/oauth2", "oauth2"}, {"/ams/", "auth"},
    {"/kcs/v1/kme", "kme"}, {"/kcs/v2/kme", "kme"}, {"/kcs/v1.1/kme", "kme"},
    {"/kcs/v1.1/kg", "kg"}, {"/kcs/v1/kg", "kg"}, {"/msp/v1", "msp"},
    {"/kcs/v1/rp", "kdp"}, {"/bulkenroll/", "kdp"}, {"/kcs/v1/kc", "kc"},
    {"/kc/v2", "kc"}, {"/kai/v1", "kai"},
  };
  const char *p = url, *end = url + n;
  const char *sch = NULL;
  for (const char *q = url; q + 3 <= end && q - url < 16; q++) {
    if (q[0] == ':' && q[1] == '/' && q[2] == '/') { sch = q; break; }
  }
  if (sch != NULL) {
    p = sch + 3;
    while (p < end && *p != '/' && *p != '?' && *p != '#') p++;
  }
  const char *pend = p;
  while (pend < end && *pend != '?' && *pend != '#') pend++;
  size_t pn = (size_t)(pend - p);
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    size_t mlen = strlen(map[i][0]);
    for (size_t j = 0; j + mlen <= pn; j++) {
      if (memcmp(p + j, map[i][0], mlen) != 0) continue;
      char next = j + mlen < pn ? p[j + mlen] : '/';
      if (map[i][0][mlen - 1] == '/' || next == '/' || next == '-') return map[i][1];
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------------
 * The guard that owns a cJSON tree while Lua code may raise.
 */
typedef struct {
  cJSON *root;
} guard_t;

/* guard:__close / __gc: [-0, +0, -] frees the tree once. */
static int guard_close(lua_State *L)
{
  guard_t *g = (guard_t *)luaL_checkudata(L, 1, GUARD_MT);
  if (g->root != NULL) {
    cJSON_Delete(g->root);
    g->root = NULL;
  }
  return 0;
}

static guard_t *push_guard(lua_State *L)
{
  guard_t *g = (guard_t *)lua_newuserdatauv(L, sizeof *g, 0);
  g->root = NULL;
  luaL_setmetatable(L, GUARD_MT);
  lua_toclose(L, -1);
  return g;
}

/* Converts the Lua value at idx into cJSON under parent (or as the guard's
 * root). Raw access only, so no metamethod runs; bounded depth and size. */
static void to_cjson(lua_State *L, int idx, cJSON *parent, const char *key, guard_t *g, int depth,
                     size_t *budget)
{
  cJSON *v = NULL;
  idx = lua_absindex(L, idx);
  if (*budget == 0) return;
  (*budget)--;
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN: v = cJSON_CreateBool(lua_toboolean(L, idx)); break;
  case LUA_TNUMBER: v = cJSON_CreateNumber((double)lua_tonumber(L, idx)); break;
  case LUA_TSTRING: v = cJSON_CreateString(lua_tostring(L, idx)); break;
  case LUA_TTABLE: {
    int array = lua_rawlen(L, idx) > 0;
    v = array ? cJSON_CreateArray() : cJSON_CreateObject();
    break;
  }
  default: v = cJSON_CreateNull(); break;
  }
  if (v == NULL) return;
  if (parent == NULL) {
    g->root = v;
  } else if (!(cJSON_IsArray(parent) ? cJSON_AddItemToArray(parent, v)
                                     : cJSON_AddItemToObject(parent, key, v))) {
    cJSON_Delete(v);
    return;
  }
  if (lua_type(L, idx) != LUA_TTABLE || depth >= TABLE_DEPTH) return;

  luaL_checkstack(L, 4, "knox.errors: table too deep");
  if (cJSON_IsArray(v)) {
    lua_Unsigned len = lua_rawlen(L, idx);
    for (lua_Unsigned i = 1; i <= len && *budget > 0; i++) {
      lua_rawgeti(L, idx, (lua_Integer)i);
      to_cjson(L, -1, v, NULL, g, depth + 1, budget);
      lua_pop(L, 1);
    }
  } else {
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      if (lua_type(L, -2) == LUA_TSTRING && *budget > 0) {
        to_cjson(L, -1, v, lua_tostring(L, -2), g, depth + 1, budget);
      }
      lua_pop(L, 1);
    }
  }
}

/* Parses (string) or converts (table) the body at idx into the guard. */
static const cJSON *load_body(lua_State *L, int idx, guard_t *g, size_t max)
{
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if (n == 0 || n > max) return NULL;
    g->root = cJSON_ParseWithLength(s, n);
  } else if (lua_type(L, idx) == LUA_TTABLE) {
    size_t budget = 4 * (size_t)ITEMS_MAX;
    to_cjson(L, idx, NULL, NULL, g, 0, &budget);
  }
  return g->root;
}

/* ------------------------------------------------------------------------
 * Building the error.
 */
struct ctx {
  int status;                      /* 0: none (per-item errors) */
  const struct service *svc;       /* catalog view; NULL: unknown */
  const char *service;             /* err.service */
  int has_retry_after;
  lua_Integer retry_after;
  char request_id[ID_MAX + 1];
};

static int retry_status(int s) { return s == 429 || s == 500 || s == 502 || s == 503 || s == 504; }

/* Pushes the knox.Error for what in says. */
static void push_error(lua_State *L, const struct ctx *cx, struct info *in)
{
  const struct knox_code *cand[NCAND];
  const struct knox_code *entry = NULL;   /* the catalog's word on this error */
  const struct knox_code *flags_of = NULL;
  const char *name = NULL;
  int ambiguous = 0;
  unsigned flags = 0;

  if (!code_set(&in->code) && in->oauth[0] != 0) {
    snprintf(in->code.str, sizeof in->code.str, "%s", in->oauth);
  }
  size_t nc = collect(cx->svc, &in->code, cand);

  if (in->name[0] != 0) {
    name = in->name; /* the body's name wins over the catalog */
    for (size_t i = 0; i < nc && entry == NULL; i++) {
      if (strcmp(cand[i]->name, name) == 0) entry = cand[i];
    }
    if (entry == NULL && !code_set(&in->code)) {
      entry = by_name(cx->svc, name);
      if (entry != NULL) {
        if (!code_from_string(&in->code, entry->code, strlen(entry->code), 1)) entry = NULL;
      }
    }
    /* flags: this entry, else the code's, else the name's in this
     * service, else in any service */
    flags_of = entry;
    if (flags_of == NULL && nc > 0) flags_of = cand[0];
    if (flags_of == NULL) flags_of = by_name(cx->svc, name);
    if (flags_of == NULL) flags_of = by_name_in(NULL, name);
  } else if (nc > 0) {
    for (size_t i = 1; i < nc; i++) {
      if (strcmp(cand[i]->name, cand[0]->name) != 0) ambiguous = 1;
    }
    if (!ambiguous) {
      entry = flags_of = cand[0];
      name = entry->name;
    } else {
      flags = KX_AUTH | KX_RENEW | KX_RETRY | KX_NORETRY;
      for (size_t i = 0; i < nc; i++) flags &= cand[i]->flags; /* only what all agree on */
    }
  }
  if (name == NULL && in->code.num == 0 && in->code.str[0] != 0) {
    name = in->code.str; /* AUT_1001, invalid_grant: the code is the name */
  }
  if (flags_of != NULL) flags = flags_of->flags;

  /* classification */
  int status = cx->status;
  int eff = status;
  if (status < 400) {
    eff = in->code.num > 0 ? code_class(in->code.num) : (entry != NULL ? entry->status : 0);
  }
  int token = cx->svc != NULL && cx->svc->token;
  int is_auth = status == 401 || (flags & KX_AUTH) != 0;
  int renew = (flags & KX_RENEW) != 0 || in->www_invalid_token ||
              (status == 401 && !token);
  int retry = 0;
  if (flags & KX_NORETRY) retry = 0;
  else if (retry_status(status)) retry = 1;
  else if (status >= 400 && status < 500) retry = 0;
  else if ((flags & KX_RETRY) || retry_status(eff)) retry = 1;

  /* the best message: body text that says more than the name, else the
   * catalog's description, else the reason phrase */
  const struct cand *best = NULL;
  char ctext[80];
  code_text(&in->code, ctext, sizeof ctext);
  for (int i = 0; i < in->ntext; i++) {
    const struct cand *t = &in->text[i];
    if (name != NULL && ci_eq(t->s, t->n, name)) continue;
    if (code_set(&in->code) && ci_eq(t->s, t->n, ctext)) continue;
    if (best == NULL || t->prio > best->prio) best = t;
  }
  if (is_auth && !renew && !token && best != NULL && ci_find(best->s, best->n, "expired") != NULL) {
    renew = 1; /* KBA-1242: AUTHENTICATION_FAIL "... access token has expired" */
  }

  if (best != NULL) {
    push_text(L, best->s, best->n, TEXT_MAX);
  } else if (entry != NULL) {
    lua_pushstring(L, entry->description);
  } else if (status > 0 && reason_phrase(status) != NULL) {
    lua_pushstring(L, reason_phrase(status));
  } else if (status > 0) {
    lua_pushfstring(L, "HTTP %d", status);
  } else {
    lua_pushliteral(L, "unknown error");
  }
  knox_error_new(L, is_auth ? "auth" : "api", NULL);
  lua_insert(L, -2);
  lua_setfield(L, -2, "message");

  if (status > 0) knox_error_setint(L, "status", status);
  if (in->code.num > 0) knox_error_setint(L, "code", in->code.num);
  else if (in->code.str[0] != 0) knox_error_setstr(L, "code", in->code.str);
  knox_error_setstr(L, "name", name);
  if (entry != NULL) knox_error_setstr(L, "description", entry->description);
  knox_error_setstr(L, "service", cx->service);
  if (in->error_id[0] != 0) knox_error_setstr(L, "error_id", in->error_id);
  if (in->txn_id[0] != 0) knox_error_setstr(L, "transaction_id", in->txn_id);
  if (cx->request_id[0] != 0) knox_error_setstr(L, "request_id", cx->request_id);
  knox_error_setbool(L, "retryable", retry);
  if (cx->has_retry_after) knox_error_setint(L, "retry_after", cx->retry_after);
  if (renew) knox_error_setstr(L, "auth_action", "renew");
}

/* ------------------------------------------------------------------------
 * Reading the response table.
 */

/* Copies header `name` (any case) from the table at hidx into buf; returns
 * its length, or -1 when absent. A list value gives its first element. */
static long header(lua_State *L, int hidx, const char *name, char *buf, size_t cap)
{
  long res = -1;
  if (hidx == 0) return -1;
  int top = lua_gettop(L);
  lua_getfield(L, hidx, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, hidx) != 0) {
      size_t kn;
      if (lua_type(L, -2) == LUA_TSTRING) {
        const char *k = lua_tolstring(L, -2, &kn);
        if (ci_eq(k, kn, name)) break; /* leaves key, value */
      }
      lua_pop(L, 1);
    }
    if (lua_gettop(L) == top) lua_pushnil(L);
  }
  if (lua_type(L, -1) == LUA_TTABLE) lua_rawgeti(L, -1, 1);
  if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
    size_t n;
    const char *v = lua_tolstring(L, -1, &n);
    if (n >= cap) n = cap - 1;
    memcpy(buf, v, n);
    buf[n] = 0;
    res = (long)n;
  }
  lua_settop(L, top);
  return res;
}

enum { R_TABLE = 1, R_HEADERS, R_BODY, R_SERVICE, R_METHOD, R_URL, R_GUARD };

/* Reads and checks the response table at 1 into slots R_HEADERS..R_URL. */
static int read_response(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  int t;
  lua_Integer status = 0;

  t = lua_getfield(L, 1, "status");
  if (t == LUA_TNUMBER) {
    int ok;
    status = lua_tointegerx(L, -1, &ok);
    luaL_argcheck(L, ok && status >= 0 && status <= 999, 1, "field 'status' must be an HTTP status");
  } else {
    luaL_argcheck(L, t == LUA_TNIL, 1, "field 'status' must be an HTTP status");
  }
  lua_pop(L, 1);
  t = lua_getfield(L, 1, "headers");
  luaL_argcheck(L, t == LUA_TNIL || t == LUA_TTABLE, 1, "field 'headers' must be a table");
  t = lua_getfield(L, 1, "body");
  luaL_argcheck(L, t == LUA_TNIL || t == LUA_TSTRING || t == LUA_TTABLE, 1,
                "field 'body' must be a string");
  t = lua_getfield(L, 1, "service");
  luaL_argcheck(L, t == LUA_TNIL || t == LUA_TSTRING, 1, "field 'service' must be a string");
  t = lua_getfield(L, 1, "method");
  luaL_argcheck(L, t == LUA_TNIL || t == LUA_TSTRING, 1, "field 'method' must be a string");
  t = lua_getfield(L, 1, "url");
  luaL_argcheck(L, t == LUA_TNIL || t == LUA_TSTRING, 1, "field 'url' must be a string");
  return (int)status;
}

/* The common part of from_response and check. Pushes the error, or nothing
 * (returns 0) when only_failures and the response is a success. */
static int response_error(lua_State *L, int only_failures)
{
  struct ctx cx;
  struct info in;
  char buf[512], date[128];
  long n, dn;
  int hidx;

  memset(&cx, 0, sizeof cx);
  memset(&in, 0, sizeof in);
  cx.status = read_response(L);
  hidx = lua_istable(L, R_HEADERS) ? R_HEADERS : 0;

  /* service: as given, else from the URL path */
  cx.service = lua_tostring(L, R_SERVICE);
  if (cx.service == NULL && lua_isstring(L, R_URL)) {
    size_t un;
    const char *u = lua_tolstring(L, R_URL, &un);
    cx.service = service_from_url(u, un);
  }
  cx.svc = find_service(cx.service);

  /* headers are copied before any tree exists */
  n = header(L, hidx, "retry-after", buf, sizeof buf);
  dn = header(L, hidx, "date", date, sizeof date);
  if (n >= 0) {
    cx.has_retry_after = parse_retry_after(buf, (size_t)n, date, dn < 0 ? 0 : (size_t)dn,
                                           &cx.retry_after);
  }
  static const char *const rid[] = {"x-request-id", "x-amzn-requestid", "x-amz-request-id",
                                    "x-correlation-id", "x-knox-transactionid"};
  for (size_t i = 0; i < sizeof rid / sizeof rid[0] && cx.request_id[0] == 0; i++) {
    n = header(L, hidx, rid[i], buf, sizeof buf);
    if (n > 0) copy_id(cx.request_id, buf, (size_t)n);
  }
  char www[512];
  long wn = header(L, hidx, "www-authenticate", www, sizeof www);
  n = header(L, hidx, "content-type", buf, sizeof buf);
  int html = n > 0 && ci_find(buf, (size_t)n, "html") != NULL;

  /* the body */
  guard_t *g = push_guard(L); /* slot R_GUARD */
  const cJSON *root = load_body(L, R_BODY, g, PARSE_MAX);
  size_t bn = 0;
  const char *body = lua_type(L, R_BODY) == LUA_TSTRING ? lua_tolstring(L, R_BODY, &bn) : NULL;
  if (root == NULL && body != NULL && !html) {
    const char *t = body;
    size_t tn = bn;
    trim(&t, &tn);
    if (tn > 0 && (t[0] == '{' || t[0] == '[')) root = g->root = salvage(t, tn);
  }
  if (root != NULL) {
    scan_body(&in, root, 0);
    if (cJSON_IsObject(root) && get(root, "reason") != NULL) scan_error_object(&in, root);
  } else if (body != NULL) {
    scan_text(&in, body, bn, html);
  }
  if (body != NULL) scan_sa_code(&in, body, bn);
  if (wn > 0) scan_www_authenticate(&in, www, (size_t)wn);

  if (only_failures && cx.status >= 200 && cx.status < 300 && !in.fail) return 0;

  push_error(L, &cx, &in);
  if (lua_isstring(L, R_METHOD)) {
    size_t mn;
    const char *m = lua_tolstring(L, R_METHOD, &mn);
    push_text(L, m, mn, 32);
    lua_setfield(L, -2, "method");
  }
  if (lua_isstring(L, R_URL)) {
    size_t un;
    const char *u = lua_tolstring(L, R_URL, &un);
    push_clean_url(L, u, un);
    lua_setfield(L, -2, "url");
  }
  if (body != NULL && bn > 0) {
    char red[BODY_KEEP + 64];
    struct sink k = {red, 0, BODY_KEEP + 16};
    scrub(&k, body, bn);
    lua_pushlstring(L, red, utf8_cut(red, k.len, BODY_KEEP));
    lua_setfield(L, -2, "body");
  }
  return 1;
}

/* errors.from_response{status=, headers=, body=, service=, method=, url=}:
 * [-0, +1, v] the knox.Error that response stands for. Never raises for a
 * body; raises "bad argument" for fields of the wrong type. */
static int l_from_response(lua_State *L)
{
  response_error(L, 0);
  return 1;
}

/* errors.check(response): [-0, +1, v] nil for a success (2xx without a
 * top-level result "FAIL"), else the knox.Error, as from_response. */
static int l_check(lua_State *L)
{
  if (!response_error(L, 1)) lua_pushnil(L);
  return 1;
}

/* ------------------------------------------------------------------------
 * Per-item failures inside 2xx bulk answers.
 */
enum { LIST_NONE, LIST_FAILED, LIST_NOT_FOUND, LIST_INVALID };

static int list_kind(const char *k)
{
  size_t n = k != NULL ? strlen(k) : 0;
  if (n == 0) return LIST_NONE;
  if (n >= 8 && ci_eq(k, 8, "notfound")) return LIST_NOT_FOUND;
  if (n >= 7 && ci_eq(k, 7, "invalid")) return LIST_INVALID;
  if (n >= 4 && ci_eq(k, 4, "fail")) return LIST_FAILED;
  if (n >= 5 && ci_eq(k, 5, "error")) return LIST_FAILED;
  return LIST_NONE;
}

static int looks_failed(const cJSON *o)
{
  /* not "state": device states such as Knox Configure's "Error" describe
   * the device, not the outcome of this request */
  static const char *const state[] = {"result", "status"};
  size_t n;
  const char *s;
  const cJSON *v;
  for (size_t i = 0; i < sizeof state / sizeof state[0]; i++) {
    if ((s = str_of(get(o, state[i]), &n)) != NULL) {
      if (is_fail_word(s, n)) return 1;
      trim(&s, &n);
      if (ci_eq(s, n, "SUCCESS") || ci_eq(s, n, "OK")) return 0;
    }
  }
  v = get(o, "error");
  if (cJSON_IsObject(v) || ((s = str_of(v, &n)) != NULL && n > 0)) return 1;
  if (get(o, "errorCode") != NULL) return 1;
  struct info in;
  memset(&in, 0, sizeof in);
  take_code(&in, get(o, "code"));
  return in.code.num > 0 && code_class(in.code.num) >= 400;
}

static void push_id(lua_State *L, const cJSON *o)
{
  static const char *const keys[] = {"requestedId", "deviceUid", "imei", "meid", "serialNumber",
                                     "serial", "deviceId", "imeiOrSerial", "objectId", "id",
                                     "approveId", "customerId", "profileId"};
  char id[ID_MAX + 1];
  if (!cJSON_IsObject(o)) {
    id[0] = 0;
    take_id(id, o);
    if (id[0] != 0) { lua_pushstring(L, id); return; }
    lua_pushnil(L);
    return;
  }
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    id[0] = 0;
    take_id(id, get(o, keys[i]));
    if (id[0] != 0) { lua_pushstring(L, id); return; }
  }
  lua_pushnil(L);
}

/* Appends {id=, error=} for one failed element to the list at lidx. */
static void add_item(lua_State *L, int lidx, const struct ctx *cx, const cJSON *el, int kind)
{
  struct info in;
  memset(&in, 0, sizeof in);
  if (cJSON_IsObject(el)) scan_body(&in, el, 0);
  if (!code_set(&in.code) && in.name[0] == 0) {
    static const char *const says[] = {"The operation failed for this item.",
                                       "The operation failed for this item.",
                                       "The device was not found.", "The device ID is invalid."};
    if (kind == LIST_NOT_FOUND) set_name(&in, "DEVICE_NOT_FOUND", 16);
    if (in.ntext == 0) add_text(&in, says[kind], strlen(says[kind]), 1);
  }
  luaL_checkstack(L, 4, NULL);
  lua_createtable(L, 0, 2);
  push_id(L, el);
  lua_setfield(L, -2, "id");
  push_error(L, cx, &in);
  lua_setfield(L, -2, "error");
  lua_rawseti(L, lidx, (lua_Integer)lua_rawlen(L, lidx) + 1);
}

static void walk_items(lua_State *L, int lidx, const struct ctx *cx, const cJSON *node,
                       int kind, int depth, size_t *budget)
{
  if (cJSON_IsArray(node)) {
    for (const cJSON *el = node->child; el != NULL && *budget > 0; el = el->next) {
      (*budget)--;
      if (cJSON_IsObject(el)) {
        if (kind != LIST_NONE || looks_failed(el)) add_item(L, lidx, cx, el, kind);
      } else if (kind != LIST_NONE && (cJSON_IsString(el) || cJSON_IsNumber(el))) {
        add_item(L, lidx, cx, el, kind);
      }
    }
    return;
  }
  if (!cJSON_IsObject(node) || depth > 3) return;
  for (const cJSON *c = node->child; c != NULL; c = c->next) {
    const char *k = c->string;
    if (k != NULL && strlen(k) >= 7 && ci_eq(k, 7, "success")) continue;
    if (cJSON_IsArray(c)) walk_items(L, lidx, cx, c, list_kind(k), depth + 1, budget);
    else if (cJSON_IsObject(c)) walk_items(L, lidx, cx, c, LIST_NONE, depth + 1, budget);
  }
}

/* errors.items(body, service): [-0, +1, v] the per-item failures of a 2xx
 * bulk answer (Knox Guard resultList, Deployment Program devices[].code,
 * KME failed/notFound/invalid device lists, Knox Configure failedCount) as
 * a list of {id=, error=knox.Error}; counts without ids give one item with
 * id nil and count=. body: JSON text or a decoded table. Never raises for
 * a body. */
static int l_items(lua_State *L)
{
  struct ctx cx;
  int bt = lua_type(L, 1);
  luaL_argexpected(L, bt == LUA_TNONE || bt == LUA_TNIL || bt == LUA_TSTRING || bt == LUA_TTABLE,
                   1, "string or table");
  const char *service = luaL_optstring(L, 2, NULL);
  lua_settop(L, 2);
  memset(&cx, 0, sizeof cx);
  cx.service = service;
  cx.svc = find_service(service);

  lua_newtable(L);                 /* 3: the list */
  guard_t *g = push_guard(L);      /* 4 */
  const cJSON *root = load_body(L, 1, g, SIZE_MAX);
  if (root == NULL) {
    lua_settop(L, 3);
    return 1;
  }
  size_t budget = ITEMS_MAX;
  walk_items(L, 3, &cx, root, LIST_NONE, 0, &budget);

  if (lua_rawlen(L, 3) == 0 && cJSON_IsObject(root)) {
    /* counts only: Knox Configure assign, or a Knox Guard summary */
    static const char *const failed[] = {"failedCount", "failCount", "fail"};
    static const char *const total[] = {"totalCount", "count"};
    lua_Integer nfail = 0, ntotal = 0;
    for (size_t i = 0; i < 3 && nfail == 0; i++) {
      const cJSON *v = scalar(get(root, failed[i]));
      if (cJSON_IsNumber(v)) double_to_code(v->valuedouble, &nfail);
      else if (cJSON_IsString(v)) digits_to_code(v->valuestring, strlen(v->valuestring), &nfail);
    }
    for (size_t i = 0; i < 2 && ntotal == 0; i++) {
      const cJSON *v = scalar(get(root, total[i]));
      if (cJSON_IsNumber(v)) double_to_code(v->valuedouble, &ntotal);
      else if (cJSON_IsString(v)) digits_to_code(v->valuestring, strlen(v->valuestring), &ntotal);
    }
    if (nfail > 0) {
      struct info in;
      char msg[96];
      memset(&in, 0, sizeof in);
      if (ntotal >= nfail) {
        snprintf(msg, sizeof msg, "%lld of %lld items failed.", (long long)nfail, (long long)ntotal);
      } else {
        snprintf(msg, sizeof msg, "%lld items failed.", (long long)nfail);
      }
      add_text(&in, msg, strlen(msg), 1);
      lua_createtable(L, 0, 2);
      knox_error_setint(L, "count", nfail);
      push_error(L, &cx, &in);
      lua_setfield(L, -2, "error");
      lua_rawseti(L, 3, 1);
    }
  }
  lua_settop(L, 3);
  return 1;
}

/* ------------------------------------------------------------------------
 * Catalog look-ups.
 */
static void push_entry(lua_State *L, const struct knox_code *e)
{
  lua_Integer num;
  lua_createtable(L, 0, 6);
  lua_pushstring(L, e->service);
  lua_setfield(L, -2, "service");
  if (digits_to_code(e->code, strlen(e->code), &num)) lua_pushinteger(L, num);
  else lua_pushstring(L, e->code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, e->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, e->description);
  lua_setfield(L, -2, "description");
  lua_pushinteger(L, e->status);
  lua_setfield(L, -2, "status");
  lua_pushstring(L, (e->flags & KX_AUTH) ? "auth" : "api");
  lua_setfield(L, -2, "kind");
}

/* Reads a code argument: integer, integral float, or string. Returns 0 for
 * a string that is no code (empty, spaces...). Raises for other types. */
static int arg_code(lua_State *L, int arg, struct code *c)
{
  memset(c, 0, sizeof *c);
  if (lua_type(L, arg) == LUA_TNUMBER) {
    return double_to_code((double)lua_tonumber(L, arg), &c->num);
  }
  size_t n;
  const char *s = luaL_checklstring(L, arg, &n);
  if (code_from_string(c, s, n, 1)) return 1;
  trim(&s, &n);
  if (n > 0 && n < sizeof c->str) { /* unknown spellings are simply not found */
    memcpy(c->str, s, n);
    c->str[n] = 0;
    return 1;
  }
  return 0;
}

/* errors.lookup(service, code): [-0, +1, v] {service=, code=, name=,
 * description=, status=, kind=} or nil. service nil searches every service
 * and answers only when they agree on the name. A code with two names in
 * one service (KME 4001701) gives the first, with alternatives={...}.
 * Raises "bad argument" for an unknown service or a code of another type. */
static int l_lookup(lua_State *L)
{
  const struct knox_code *cand[NCAND];
  const struct service *svc = NULL;
  struct code c;
  if (!lua_isnoneornil(L, 1)) {
    const char *s = luaL_checkstring(L, 1);
    svc = find_service(s);
    if (svc == NULL) return luaL_argerror(L, 1, lua_pushfstring(L, "unknown service '%s'", s));
  }
  luaL_argexpected(L, lua_type(L, 2) == LUA_TNUMBER || lua_type(L, 2) == LUA_TSTRING, 2,
                   "integer or string");
  if (!arg_code(L, 2, &c)) {
    lua_pushnil(L);
    return 1;
  }
  size_t n = collect(svc, &c, cand);
  if (n == 0) {
    lua_pushnil(L);
    return 1;
  }
  int same = 1;
  for (size_t i = 1; i < n; i++) same = same && strcmp(cand[i]->name, cand[0]->name) == 0;
  if (svc == NULL && !same) {
    lua_pushnil(L);
    return 1;
  }
  push_entry(L, cand[0]);
  if (!same) {
    lua_createtable(L, (int)n - 1, 0);
    for (size_t i = 1; i < n; i++) {
      push_entry(L, cand[i]);
      lua_rawseti(L, -2, (lua_Integer)i);
    }
    lua_setfield(L, -2, "alternatives");
  }
  return 1;
}

/* errors.catalog([service]): [-0, +1, v] a new list of every catalog entry
 * (of one service), as lookup() gives them, in catalog order. */
static int l_catalog(lua_State *L)
{
  const char *s = luaL_optstring(L, 1, NULL);
  if (s != NULL && find_service(s) == NULL) {
    return luaL_argerror(L, 1, lua_pushfstring(L, "unknown service '%s'", s));
  }
  lua_createtable(L, (int)knox_catalog_size, 0);
  lua_Integer k = 0;
  for (size_t i = 0; i < knox_catalog_size; i++) {
    if (s != NULL && strcmp(knox_catalog[i].service, s) != 0) continue;
    push_entry(L, &knox_catalog[i]);
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

/* errors.clean_url(url): [-0, +1, v] url without userinfo or fragment and
 * with secret-looking query values redacted, as errors carry it. */
static int l_clean_url(lua_State *L)
{
  size_t n;
  const char *u = luaL_checklstring(L, 1, &n);
  push_clean_url(L, u, n);
  return 1;
}

/* errors.service_of(url): [-0, +1, v] the service a URL's path belongs to,
 * or nil. */
static int l_service_of(lua_State *L)
{
  size_t n;
  const char *u = luaL_checklstring(L, 1, &n);
  const char *s = service_from_url(u, n);
  if (s != NULL) lua_pushstring(L, s);
  else lua_pushnil(L);
  return 1;
}

int knox_errors_open(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"from_response", l_from_response},
    {"check", l_check},
    {"items", l_items},
    {"lookup", l_lookup},
    {"catalog", l_catalog},
    {"clean_url", l_clean_url},
    {"service_of", l_service_of},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, GUARD_MT)) {
    lua_pushcfunction(L, guard_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, guard_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 8);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, -2, "errors");
  return 0;
}
