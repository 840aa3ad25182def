/*
 * http_batch.c — session:batch: many requests at once over curl multi and
 * a pool of easy handles that the session keeps for later batches.
 */
#include "http_internal.h"

#include <strings.h>

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
  knox_http_set_request_fields(L, req);
}

/* Grows the pool to want handles; raises knox.Error on failure. */
static void ensure_pool(lua_State *L, Session *S, int want)
{
  if (S->multi == NULL) {
    S->multi = curl_multi_init();
    if (S->multi == NULL) {
      knox_http_push_transport_error(L, S, NULL, CURLE_OUT_OF_MEMORY, 0);
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
    CURLcode rc = t->easy == NULL ? CURLE_FAILED_INIT : knox_http_apply_session(S, t);
    if (rc != CURLE_OK) {
      knox_http_transfer_free(t);
      free(t);
      knox_http_push_transport_error(L, S, NULL, rc, 0);
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
    knox_http_push_transport_error(L, S, t, rc, req);
  } else {
    lua_createtable(L, 0, 4);
    knox_http_push_response(L, t);
    lua_setfield(L, -5, "info");
    lua_setfield(L, -4, "body");
    lua_setfield(L, -3, "headers");
    lua_setfield(L, -2, "status");
  }
  if (ev) {
    Req r;
    memset(&r, 0, sizeof r);
    lua_pushliteral(L, "method");
  lua_rawget(L, req); /* raw: no metamethod may raise mid-batch */
    strcpy(r.method, "GET");
    if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) < sizeof r.method) {
      memcpy(r.method, lua_tostring(L, -1), lua_rawlen(L, -1) + 1);
    }
    lua_rawgeti(L, anchors, i);
    if (lua_type(L, -1) == LUA_TSTRING) r.body = lua_tolstring(L, -1, &r.body_len);
    knox_http_push_events(L, ev, S, t, req, &r, rc != CURLE_OK ? req + 1 : 0);
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
int knox_http_batch(lua_State *L)
{
  Session *S = knox_http_check_session(L, 1);
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
    if (lua_rawgeti(L, 2, i) != LUA_TTABLE) knox_http_req_error(L, 2, i, "must be a table");
    knox_http_load_request(L, 4, S, NULL, &r, 2, i);
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
  knox_http_begin_busy(L, S);

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
      knox_http_load_request(L, req, S, t, &r, 2, i);
      lua_rawseti(L, 5, i); /* anchor the body */
      t->index = i;
      CURLcode rc = knox_http_apply_request(t, &r);
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
  if (ev && knox_http_deliver_events(L, ev)) return lua_error(L);
  lua_pushvalue(L, 4);
  return 1;
}

