/*
 * text.c — the one text-safety module. One table of secret names and the
 * functions that keep secrets and broken text out of everything knox
 * shows: error fields (message, body, url, ids), debug events, hooks and
 * the command's output. C callers use text.h; Lua gets the same functions
 * as knox.core.text (wrapped by lua/knox/text.lua).
 *
 * Locale-independent on purpose: ASCII case folding only.
 */
#include "text.h"

#include <string.h>

static int a_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static int a_digit(int c) { return c >= '0' && c <= '9'; }
static int a_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int a_alnum(int c) { return a_alpha(c) || a_digit(c); }
static int a_space(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }
static int b64url(int c) { return a_alnum(c) || c == '-' || c == '_'; }

int knox_text_ci_eq(const char *a, size_t alen, const char *b)
{
  size_t blen = strlen(b);
  if (alen != blen) return 0;
  for (size_t i = 0; i < alen; i++) {
    if (a_lower((unsigned char)a[i]) != a_lower((unsigned char)b[i])) return 0;
  }
  return 1;
}

const char *knox_text_ci_find(const char *s, size_t n, const char *needle)
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
size_t knox_text_utf8_seq(const unsigned char *s, size_t n)
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
size_t knox_text_utf8_cut(const char *s, size_t n, size_t max)
{
  if (n <= max) return n;
  size_t cut = max;
  size_t back = 0;
  while (cut > 0 && back < 3 && ((unsigned char)s[cut] & 0xC0) == 0x80) { cut--; back++; }
  return cut;
}

/* The one table of secret names: a header, JSON member, form field or
 * query key whose name matches an entry has a secret value. EXACT entries
 * match the whole name, PART entries any name containing them, both
 * ignoring case. Adding a secret name is adding a line here: every output
 * (error bodies, messages and urls, debug events, hooks, the command's
 * verbose output) redacts through this table. */
enum { EXACT, PART, URL_ONLY, PUBLIC };

static const struct {
  const char *name;
  int match;
} secret_names[] = {
  {"key", EXACT}, {"sig", EXACT}, {"pwd", EXACT}, {"pw", EXACT}, {"auth", EXACT},
  {"authorization", EXACT}, {"proxy-authorization", EXACT},
  {"token", PART}, {"secret", PART}, {"passw", PART}, {"apikey", PART}, {"api_key", PART},
  {"api-key", PART}, {"signature", PART}, {"assertion", PART}, {"jwt", PART},
  {"credential", PART}, {"session", PART}, {"private", PART}, {"cookie", PART},
  /* an OAuth authorization code in a URL; in bodies "code" is Knox's error code */
  {"code", URL_ONLY},
  /* names a PART entry would catch that hold no secret (matched first) */
  {"token_type", PUBLIC},
};

#define NSECRETS (sizeof secret_names / sizeof secret_names[0])

/* Whether a name (header, JSON key, form or query key) holds a secret;
 * url: the name is a URL query key. */
int knox_text_is_secret(const char *k, size_t n, int url)
{
  for (size_t i = 0; i < NSECRETS; i++) {
    if (secret_names[i].match == PUBLIC && knox_text_ci_eq(k, n, secret_names[i].name)) return 0;
  }
  for (size_t i = 0; i < NSECRETS; i++) {
    int m = secret_names[i].match;
    if (m == PUBLIC) continue;
    if (m == PART ? knox_text_ci_find(k, n, secret_names[i].name) != NULL
                  : (m == EXACT || url) && knox_text_ci_eq(k, n, secret_names[i].name)) {
      return 1;
    }
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
      if (i + 7 <= n && knox_text_ci_eq(s + i, 6, "bearer") && s[i + 6] == ' ') w = 7;
      else if (i + 6 <= n && knox_text_ci_eq(s + i, 5, "basic") && s[i + 5] == ' ') w = 6;
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
      if (j < n && s[j] == '"' && knox_text_is_secret(s + i + 1, j - i - 1, 0)) {
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
      if (j < n && s[j] == '=' && knox_text_is_secret(s + i, j - i, 0)) {
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
size_t knox_text_one_line(char *out, size_t cap, const char *s, size_t n)
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
    size_t len = knox_text_utf8_seq((const unsigned char *)s + i, n - i);
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
void knox_text_push_line(lua_State *L, const char *s, size_t n, size_t max)
{
  char line[2 * KNOX_TEXT_MAX + 8];
  char red[2 * KNOX_TEXT_MAX + 32];
  if (max > KNOX_TEXT_MAX) max = KNOX_TEXT_MAX;
  if (n > 4 * KNOX_TEXT_MAX) n = 4 * KNOX_TEXT_MAX;
  size_t ln = knox_text_one_line(line, sizeof line, s, n);
  struct sink k = {red, 0, sizeof red};
  scrub(&k, line, ln);
  if (k.len > max) {
    size_t cut = knox_text_utf8_cut(red, k.len, max - 3);
    while (cut > 0 && red[cut - 1] == ' ') cut--;
    memcpy(red + cut, "...", 3);
    k.len = cut + 3;
  }
  lua_pushlstring(L, red, k.len);
}

/* Whether a text is mostly readable: plain-text bodies that are binary
 * noise are not worth showing. */
int knox_text_readable(const char *s, size_t n)
{
  size_t bad = 0, i = 0;
  if (n == 0) return 0;
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    size_t len = knox_text_utf8_seq((const unsigned char *)s + i, n - i);
    if (len == 0 || (c < 0x20 && !a_space(c)) || c == 0x7F) { bad++; i++; }
    else i += len;
  }
  return bad * 10 <= n;
}

void knox_text_push_clean_url(lua_State *L, const char *url, size_t n)
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
        if (knox_text_is_secret(key, kn, 1) && p > val) put(&k, REDACTED, sizeof REDACTED - 1);
        else put(&k, val, (size_t)(p - val));
      }
      if (p < end && *p == '&') putc1(&k, *p++);
    }
  }
  /* never let control characters or a cut sequence into a one-line field */
  char line[2300];
  size_t ln = knox_text_one_line(line, sizeof line, out, k.len);
  lua_pushlstring(L, line, ln);
}

size_t knox_text_redact(char *out, size_t cap, const char *s, size_t n)
{
  struct sink k = {out, 0, cap};
  scrub(&k, s, n);
  return k.len;
}

/* ------------------------------------------------------------------------
 * knox.core.text
 */

/* text.redact(s [, max]): [-0, +1, m] s with every secret replaced by
 * "[redacted]", cut to at most max bytes (default 4096, at most 1 MiB) on
 * a character boundary. */
static int l_redact(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer max = luaL_optinteger(L, 2, 4096);
  luaL_argcheck(L, max >= 0 && max <= (1 << 20), 2, "must be between 0 and 1048576");
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, (size_t)max + 16);
  size_t len = knox_text_redact(out, (size_t)max + 16, s, n);
  luaL_pushresultsize(&b, knox_text_utf8_cut(out, len, (size_t)max));
  return 1;
}

/* text.line(s [, max]): [-0, +1, m] s as one redacted line of valid UTF-8
 * of at most max bytes (default and limit 480), marked "..." when cut. */
static int l_line(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer max = luaL_optinteger(L, 2, KNOX_TEXT_MAX);
  luaL_argcheck(L, max >= 4, 2, "must be at least 4");
  knox_text_push_line(L, s, n, (size_t)max);
  return 1;
}

/* text.one_line(s [, max]): [-0, +1, m] s trimmed and made one line of
 * valid UTF-8 of at most max bytes (default 128; ids), cut on a character
 * boundary; not redacted. */
static int l_one_line(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer max = luaL_optinteger(L, 2, 128);
  luaL_argcheck(L, max >= 1 && max <= 4096, 2, "must be between 1 and 4096");
  while (n > 0 && a_space((unsigned char)*s)) { s++; n--; }
  while (n > 0 && a_space((unsigned char)s[n - 1])) n--;
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, (size_t)max);
  luaL_pushresultsize(&b, knox_text_one_line(out, (size_t)max, s, n));
  return 1;
}

/* text.clean_url(url): [-0, +1, m] url without userinfo or fragment,
 * secret query values redacted. */
static int l_clean_url(lua_State *L)
{
  size_t n;
  const char *u = luaL_checklstring(L, 1, &n);
  knox_text_push_clean_url(L, u, n);
  return 1;
}

/* text.is_secret(name [, url]): [-0, +1, -] whether values under this
 * name (header, JSON key, form field; url: a query key) are secrets. */
static int l_is_secret(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, knox_text_is_secret(s, n, lua_toboolean(L, 2)));
  return 1;
}

/* text.secret_names(): [-0, +1, m] the secret-name table as a new list of
 * { name =, match = "exact" | "part" | "url" | "public" }. */
static int l_secret_names(lua_State *L)
{
  static const char *const how[] = {"exact", "part", "url", "public"};
  lua_createtable(L, (int)NSECRETS, 0);
  for (size_t i = 0; i < NSECRETS; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, secret_names[i].name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, how[secret_names[i].match]);
    lua_setfield(L, -2, "match");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

int knox_text_open(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"redact", l_redact},
    {"line", l_line},
    {"one_line", l_one_line},
    {"clean_url", l_clean_url},
    {"is_secret", l_is_secret},
    {"secret_names", l_secret_names},
    {NULL, NULL},
  };
  lua_createtable(L, 0, 5);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, -2, "text");
  return 0;
}
