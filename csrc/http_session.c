/*
 * http_session.c — transport layer 5 (top, under http_batch.c): knox.Session.
 * A session owns one libcurl easy handle that is reused for every
 * session:request (so connections, DNS answers and TLS sessions stay warm),
 * a share handle for DNS and TLS sessions, and, once session:batch is used
 * (http_batch.c), a multi handle with a pool of easy handles that later
 * batches reuse.
 *
 * Every libcurl callback is plain C that fills a buffer; Lua runs only
 * after curl has returned (results, knox.Error objects, and the debug hook,
 * which is called under lua_pcall with events buffered during the transfer
 * and redacted).
 *
 * This file: session creation and options, the busy guard, close, and
 * session:request.
 * May call: layers 0-4 (http_state.h, http_error.h, http_debug.h,
 * http_request.h, http_transfer.h), kerror.c, libcurl. Interface:
 * http_session.h.
 */
#include "http_session.h"
#include "http_debug.h"
#include "http_error.h"
#include "http_request.h"
#include "http_text.h"
#include "http_transfer.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#define SESSION_MT "knox.Session"
#define GUARD_MT "knox.Session.guard"

#define DEFAULT_TIMEOUT_MS 60000L
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_MAX_RESPONSE ((curl_off_t)64 * 1024 * 1024)
/* The receive buffers of all the transfers of one batch together: each of
 * the n transfers that run at once may buffer max_batch_bytes / n
 * (http_batch.c), so a batch's memory no longer grows with its
 * concurrency. 64 MiB: 8 MiB per transfer at the default concurrency 8,
 * far above any Knox page or bulk answer. */
#define DEFAULT_MAX_BATCH ((curl_off_t)64 * 1024 * 1024)

/* ---------------------------------------------------------------------
 * Session lifetime.
 */
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

/* session:close() (also __close): [-0, +0, v] frees the handles;
 * idempotent. Raises when called from inside the session's own request
 * (e.g. by a finalizer), since the transfer still uses them. */
int knox_http_close(lua_State *L)
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


/* ---------------------------------------------------------------------
 * Options.
 */
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
  "max_batch_bytes", "accept_encoding", "debug", NULL,
};

/* Raises "bad argument" for a key of the options table that is no option. */
static void check_option_names(lua_State *L)
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
}

/* A byte count option, clamped to what a curl_off_t holds exactly. */
static curl_off_t opt_bytes(lua_State *L, const char *key, curl_off_t def)
{
  lua_Number v = opt_number(L, key, (lua_Number)def);
  return v >= 9.0e15 ? (curl_off_t)9000000000000000LL : (curl_off_t)v;
}

/* timeout, connect_timeout, low_speed_limit/_time, max_response_bytes,
 * max_batch_bytes. */
static void read_limits(lua_State *L, Session *S)
{
  S->timeout_ms = knox_http_seconds_to_ms(opt_number(L, "timeout", DEFAULT_TIMEOUT_MS / 1000.0));
  S->connect_timeout_ms =
    knox_http_seconds_to_ms(opt_number(L, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_MS / 1000.0));
  lua_Number lsl = opt_number(L, "low_speed_limit", -1);
  lua_Number lst = opt_number(L, "low_speed_time", -1);
  if (lsl > 0 || lst > 0) {
    /* either one enables the check; the other gets a sensible default */
    S->low_speed_limit = lsl > 0 ? (long)fmin(lsl, (lua_Number)LONG_MAX / 2) : 1L;
    S->low_speed_time = lst > 0 ? (long)ceil(fmin(lst, 86400.0)) : 30L;
  }
  S->max_response = opt_bytes(L, "max_response_bytes", DEFAULT_MAX_RESPONSE);
  S->max_batch = opt_bytes(L, "max_batch_bytes", DEFAULT_MAX_BATCH);
  if (S->max_response < 1 || S->max_batch < 1) {
    luaL_argerror(L, 1, "options 'max_response_bytes' and 'max_batch_bytes' must be at least 1");
  }
}

/* verify and http_version. */
static void read_protocol(lua_State *L, Session *S)
{
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
}

/* proxy, noproxy, ca_file, ca_path, user_agent and accept_encoding, copied
 * into S (which owns them at once). */
static void read_strings(lua_State *L, Session *S)
{
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
  int ty = lua_getfield(L, 1, "accept_encoding");
  int enc_off = ty == LUA_TBOOLEAN && !lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!enc_off) {
    const char *enc = opt_string(L, "accept_encoding");
    if (enc == NULL) {
      enc = (curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_BROTLI) ? "gzip, br" : "gzip";
    }
    S->accept_encoding = dup_or_raise(L, enc);
  }
}

/* Reads the options table at index 1 into S (the session userdata at 2,
 * whose uservalue 1 becomes the debug hook); raises "bad argument". */
static void read_options(lua_State *L, Session *S)
{
  check_option_names(L);
  read_limits(L, S);
  read_protocol(L, S);
  read_strings(L, S);

  int ty = lua_getfield(L, 1, "debug");
  if (ty != LUA_TNIL && ty != LUA_TFUNCTION) luaL_argerror(L, 1, "option 'debug' must be a function");
  S->has_debug = ty == LUA_TFUNCTION;
  lua_setiuservalue(L, 2, 1);
}

/* ---------------------------------------------------------------------
 * Creation, session:request.
 */
/* Creates the share handle and the main easy handle of S (owned by the
 * session userdata); raises knox.Error kind "transport" on failure.
 * Returns 0. */
static int open_handles(lua_State *L, Session *S)
{
  CURLSHcode sc;
  S->share = curl_share_init();
  if (S->share == NULL) {
    knox_http_push_transport_error(L, S, NULL, CURLE_OUT_OF_MEMORY, 0);
    return knox_error_raise(L);
  }
  if ((sc = curl_share_setopt(S->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS)) != CURLSHE_OK ||
      (sc = curl_share_setopt(S->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION)) != CURLSHE_OK) {
    knox_http_push_share_error(L, sc);
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
  return 0;
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
  open_handles(L, S);
  lua_settop(L, 2);
  return 1;
}

/* session:request{ method=, url=, headers=, body=, timeout= }:
 * [-0, +4, e] status, headers, body, info. Raises knox.Error kind
 * "transport" (after curl has returned) for a transport failure, kind
 * "closed" on a closed session, "bad argument" for a malformed request,
 * and re-raises whatever the debug hook raised. */
int knox_http_request(lua_State *L)
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

/* Bytes allocated in the buffers of t. */
static size_t transfer_bytes(const Transfer *t)
{
  return t->body.cap + t->head.cap + t->dbg.cap;
}

/* session:buffer_bytes(): [-0, +1, v] the bytes the session's receive and
 * debug buffers hold now, outside Lua's heap: what session:request keeps
 * for the next request (at most 256 KiB per buffer); a batch releases all
 * of its own when it ends. Raises kind "closed" on a closed session. */
int knox_http_buffer_bytes(lua_State *L)
{
  Session *S = luaL_checkudata(L, 1, SESSION_MT);
  if (S->closed) return knox_error_throw(L, "closed", "knox.Session is closed");
  size_t n = transfer_bytes(&S->main);
  for (int i = 0; i < S->npool; i++) n += transfer_bytes(S->pool[i]);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* ---------------------------------------------------------------------
 * Registration.
 */
void knox_http_session_register(lua_State *L, const luaL_Reg *methods)
{
  static const luaL_Reg meta[] = {
    {"__gc", l_gc},
    {"__close", knox_http_close},
    {"__tostring", l_tostring},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, SESSION_MT)) {
    int n = 0;
    while (methods[n].name != NULL) n++;
    luaL_setfuncs(L, meta, 0);
    lua_createtable(L, 0, n);
    knox_http_push_keys(L);
    knox_http_push_header_names(L);
    luaL_setfuncs(L, methods, 2);
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
}
