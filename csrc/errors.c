/*
 * errors.c — scans whatever a Knox service answered into facts, and
 * nothing more: the code (normalized to an integer, or AUT_/LIC_/OAuth
 * text), the name the body gives, the message candidates with how
 * specific each is, the ids, whether the body says result "FAIL", and
 * what a WWW-Authenticate header says. The decisions (retryable,
 * auth_action, which message wins, the catalog match, per-service item
 * extraction) are lua/knox/errors.lua's, with the service registry's rules.
 *
 * Bodies are parsed with cJSON and never trusted: every field may be
 * missing, of any type, an array instead of a scalar, or not JSON at all.
 * Nothing here raises for a body; only misuse of the Lua API raises
 * ("bad argument"). The cJSON tree is owned by a guard userdata closed with
 * lua_toclose, so an out-of-memory error from Lua cannot leak it.
 *
 * What the scanner reads, where the docs are silent:
 * - A body that looks like JSON but does not parse (cut short, or as broken
 *   as two of the documented Knox Guard examples) is salvaged: complete
 *   "key": value pairs of the fields read here are used, a cut-off value
 *   never is. Bodies above 4 MiB are not parsed (only salvaged/scanned).
 * - Message candidates and their specificity (higher wins in Lua):
 *   errorMessage 90, error.reason 85, data 80, error_description 75,
 *   detail 70, error.description/detail and WWW-Authenticate's
 *   error_description 65, error.message prose 60, message prose 55, a
 *   JSON string body 50, errors 45, error prose 40, title 35, an HTML
 *   page's <title>/<h1> 20, short readable text 10.
 * - "message" is a NAME (DEVICE_NOT_FOUND) in some services and prose in
 *   others: upper snake case is taken as the name.
 */
#include "knox.h"
#include "text.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define GUARD_MT "knox.errors.guard"

#define ID_MAX 128              /* bytes of an id (error_id, request_id ...) */
#define PARSE_MAX (4u << 20)    /* error bodies above this are not parsed */
#define SCAN_MAX (64u << 10)    /* bytes searched for a bare AUT_/LIC_ code */
#define TABLE_BUDGET 400000     /* values converted from a Lua table */
#define TABLE_DEPTH 32          /* nesting converted from a Lua table */
#define NTEXT 12                /* message candidates kept per body */

/* ------------------------------------------------------------------------
 * Small ASCII helpers (locale-independent on purpose).
 */
static int a_upper(int c) { return c >= 'a' && c <= 'z' ? c - 32 : c; }
static int a_digit(int c) { return c >= '0' && c <= '9'; }
static int a_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int a_alnum(int c) { return a_alpha(c) || a_digit(c); }
static int a_space(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

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
  if (!knox_text_ci_eq(s, 3, "AUT") && !knox_text_ci_eq(s, 3, "LIC")) return 0;
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

/* ------------------------------------------------------------------------
 * Codes.
 */
/* A normalized code: numeric (num > 0) or a string (str[0] != 0). */
struct code {
  lua_Integer num;
  char str[72];
};

static int code_set(const struct code *c) { return c->num > 0 || c->str[0] != 0; }

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
  if (n == 0 || in->ntext >= NTEXT || !visible(s, n > 4 * KNOX_TEXT_MAX ? 4 * KNOX_TEXT_MAX : n)) return;
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
  size_t len = knox_text_one_line(dst, ID_MAX, s, n);
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
  return knox_text_ci_eq(s, n, "FAIL") || knox_text_ci_eq(s, n, "FAILED") || knox_text_ci_eq(s, n, "FAILURE");
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
      const char *open = knox_text_ci_find(s, lim, tags[k][0]);
      if (open == NULL) continue;
      const char *gt = memchr(open, '>', lim - (size_t)(open - s));
      if (gt == NULL) continue;
      gt++;
      const char *close = knox_text_ci_find(gt, lim - (size_t)(gt - s), tags[k][1]);
      size_t len = close != NULL ? (size_t)(close - gt) : 0;
      if (len > 0 && knox_text_readable(gt, len)) {
        add_text(in, gt, len, 20);
        return;
      }
    }
    return;
  }
  if (tn > 4 * KNOX_TEXT_MAX) tn = 4 * KNOX_TEXT_MAX;
  if (knox_text_readable(t, tn)) add_text(in, t, tn, 10);
}

/* WWW-Authenticate: Bearer error="invalid_token", error_description="..."
 * (RFC 6750 §3). Fills the OAuth code and a message candidate. */
static void scan_www_authenticate(struct info *in, const char *v, size_t n)
{
  const char *p = knox_text_ci_find(v, n, "bearer");
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
    if (knox_text_ci_eq(k, kn, "error") && is_oauth_code(val, vn)) {
      if (in->oauth[0] == 0) {
        memcpy(in->oauth, val, vn);
        in->oauth[vn] = 0;
      }
      if (knox_text_ci_eq(val, vn, "invalid_token")) in->www_invalid_token = 1;
    } else if (knox_text_ci_eq(k, kn, "error_description")) {
      add_text(in, val, vn, 65);
    }
  }
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
    size_t budget = TABLE_BUDGET;
    to_cjson(L, idx, NULL, NULL, g, 0, &budget);
  }
  return g->root;
}

/* ------------------------------------------------------------------------
 * The facts table.
 */
static void set_str(lua_State *L, const char *field, const char *s)
{
  if (s[0] == 0) return;
  lua_pushstring(L, s);
  lua_setfield(L, -2, field);
}

/* Pushes {code=, name=, oauth=, texts={...}, prios={...}, error_id=,
 * transaction_id=, fail=, www_invalid_token=} for what in says. Texts are
 * trimmed but raw (Lua makes the chosen one a safe line). */
static void push_facts(lua_State *L, const struct info *in)
{
  luaL_checkstack(L, 6, NULL);
  lua_createtable(L, 0, 10);
  if (in->code.num > 0) {
    lua_pushinteger(L, in->code.num);
    lua_setfield(L, -2, "code");
  } else {
    set_str(L, "code", in->code.str);
  }
  set_str(L, "name", in->name);
  set_str(L, "oauth", in->oauth);
  set_str(L, "error_id", in->error_id);
  set_str(L, "transaction_id", in->txn_id);
  lua_createtable(L, in->ntext, 0);
  lua_createtable(L, in->ntext, 0);
  for (int i = 0; i < in->ntext; i++) {
    lua_pushlstring(L, in->text[i].s, in->text[i].n);
    lua_rawseti(L, -3, i + 1);
    lua_pushinteger(L, in->text[i].prio);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -3, "prios");
  lua_setfield(L, -2, "texts");
  lua_pushboolean(L, in->fail);
  lua_setfield(L, -2, "fail");
  lua_pushboolean(L, in->www_invalid_token);
  lua_setfield(L, -2, "www_invalid_token");
}

/* Scans the body at idx (string, decoded table, or nil) into in. */
static void scan_any(lua_State *L, int idx, int html, struct info *in)
{
  guard_t *g = push_guard(L);
  const cJSON *root = load_body(L, idx, g, PARSE_MAX);
  size_t bn = 0;
  const char *body = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &bn) : NULL;
  if (root == NULL && body != NULL && !html) {
    const char *t = body;
    size_t tn = bn;
    trim(&t, &tn);
    if (tn > 0 && (t[0] == '{' || t[0] == '[')) root = g->root = salvage(t, tn);
  }
  if (root != NULL) {
    scan_body(in, root, 0);
    if (cJSON_IsObject(root) && get(root, "reason") != NULL) scan_error_object(in, root);
  } else if (body != NULL) {
    scan_text(in, body, bn, html);
  }
  if (body != NULL) scan_sa_code(in, body, bn);
}

/* errors.scan(body [, opts]): [-0, +1, v] the facts of an error body.
 * body: JSON text, other text, a decoded table, or nil. opts.html: the
 * body is an HTML page (Content-Type); opts.www_authenticate: that
 * header's value. Never raises for a body; "bad argument" for bad types.
 * The texts of the facts point into a copy, so the tree is freed here. */
static int l_scan(lua_State *L)
{
  struct info in;
  int bt = lua_type(L, 1);
  luaL_argexpected(L, bt == LUA_TNONE || bt == LUA_TNIL || bt == LUA_TSTRING || bt == LUA_TTABLE,
                   1, "string or table");
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  int html = 0;
  size_t wn = 0;
  const char *www = NULL;
  if (lua_istable(L, 2)) {
    html = lua_getfield(L, 2, "html") != LUA_TNIL && lua_toboolean(L, -1);
    if (lua_getfield(L, 2, "www_authenticate") == LUA_TSTRING) www = lua_tolstring(L, -1, &wn);
  }
  lua_settop(L, 4);                    /* 3: html, 4: www (kept alive) */
  memset(&in, 0, sizeof in);
  lua_pushnil(L);                      /* 5: placeholder for the facts */
  scan_any(L, 1, html, &in);           /* 6: the guard, open */
  if (www != NULL && wn > 0) scan_www_authenticate(&in, www, wn);
  /* texts point into the tree or the body: push them before the guard closes */
  push_facts(L, &in);
  lua_replace(L, 5);
  lua_settop(L, 5);                    /* closes the guard */
  return 1;
}

int knox_errors_open(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"scan", l_scan},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, GUARD_MT)) {
    lua_pushcfunction(L, guard_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, guard_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, -2, "errors");
  return 0;
}
