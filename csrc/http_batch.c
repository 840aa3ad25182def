/*
 * http_batch.c — transport layer 6 (top, over http_session.c):
 * session:batch: many requests at once over curl multi and a pool of easy
 * handles that the session keeps for later batches.
 *
 * Memory: the n transfers that run at once (the concurrency, or fewer
 * requests) each buffer at most max_batch_bytes / n of response body
 * (and never more than max_response_bytes); a body over its share fails
 * that item alone with RESPONSE_TOO_LARGE, non-retryable, naming
 * max_batch_bytes. The share is fixed for the whole batch, so whether an
 * item fits depends on its size, the concurrency and the options only,
 * never on which other transfers happen to be running. Results handed to
 * Lua are the caller's and are not counted. When the batch ends the pool
 * releases every buffer (the handles and their connections stay).
 * May call: layers 0-5 (http_state.h, http_error.h, http_debug.h,
 * http_request.h, http_transfer.h, http_session.h), libcurl.
 * Interface: http_batch.h.
 */
#include "http_batch.h"
#include "http_debug.h"
#include "http_error.h"
#include "http_request.h"
#include "http_session.h"
#include "http_transfer.h"

#include <string.h>
#include <strings.h>

#define DEFAULT_CONCURRENCY 8
#define MAX_CONCURRENCY 1024

/* Stack slots of knox_http_batch. */
enum { B_REQS = 2, B_RESULTS = 4, B_ANCHORS = 5, B_EVENTS = 6 };

/* One running batch. */
typedef struct {
  Session *S;
  lua_Integer n;              /* requests */
  lua_Integer next;           /* the next request to start, 1-based */
  int conc;                   /* pool slots in use, at most n */
  curl_off_t share;           /* body bytes each transfer may buffer */
  int active;                 /* transfers in the multi handle */
  int ev;                     /* B_EVENTS with a debug hook, else 0 */
} Batch;

/* ---------------------------------------------------------------------
 * The pool of easy handles.
 */
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

/* Frees the buffers of every pool handle (after a batch: the next one
 * may be smaller, and a session may sit idle for long). */
static void release_buffers(Session *S)
{
  for (int k = 0; k < S->npool; k++) {
    Transfer *t = S->pool[k];
    buf_free(&t->body);
    buf_free(&t->head);
    buf_free(&t->dbg);
  }
}

/* Takes every pool handle out of the multi handle and marks it idle. */
static void detach_all(Session *S)
{
  for (int k = 0; k < S->npool; k++) {
    Transfer *t = S->pool[k];
    if (t->in_multi) curl_multi_remove_handle(S->multi, t->easy);
    t->in_multi = 0;
    t->index = 0;
  }
}

/* ---------------------------------------------------------------------
 * Items.
 */
/* The debug events of the finished item t; the request table is at req,
 * its error (if any) just above it. */
static void item_events(lua_State *L, const Batch *b, const Transfer *t, CURLcode rc, int req)
{
  Req r;
  memset(&r, 0, sizeof r);
  lua_pushliteral(L, "method");
  lua_rawget(L, req); /* raw: no metamethod may raise mid-batch */
  strcpy(r.method, "GET");
  if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) < sizeof r.method) {
    memcpy(r.method, lua_tostring(L, -1), lua_rawlen(L, -1) + 1);
  }
  lua_rawgeti(L, B_ANCHORS, t->index);
  if (lua_type(L, -1) == LUA_TSTRING) r.body = lua_tolstring(L, -1, &r.body_len);
  knox_http_push_events(L, b->ev, b->S, t, req, &r, rc != CURLE_OK ? req + 1 : 0);
  lua_pop(L, 2);
}

/* Stores the result of the finished transfer t in results[t->index] and
 * makes t idle. */
static void finish_item(lua_State *L, const Batch *b, Transfer *t, CURLcode rc)
{
  lua_Integer i = t->index;
  lua_rawgeti(L, B_REQS, i);
  int req = lua_gettop(L);
  if (rc != CURLE_OK) {
    knox_http_push_transport_error(L, b->S, t, rc, req);
  } else {
    lua_createtable(L, 0, 4);
    knox_http_push_response(L, t);
    lua_setfield(L, -5, "info");
    lua_setfield(L, -4, "body");
    lua_setfield(L, -3, "headers");
    lua_setfield(L, -2, "status");
  }
  if (b->ev) item_events(L, b, t, rc, req);
  lua_rawseti(L, B_RESULTS, i);
  lua_pop(L, 1);
  /* a kept body buffer is the next item's on this slot: within its share */
  buf_trim_to(&t->body, (uint64_t)b->share < KEEP_BUFFER ? (size_t)b->share : KEEP_BUFFER);
  buf_trim(&t->head);
  buf_trim(&t->dbg);
  t->index = 0;
}

/* Starts request i on the idle transfer t. Returns 1 when t joined the
 * multi handle, 0 when the item already has its result (an error). */
static int start_item(lua_State *L, Batch *b, Transfer *t, lua_Integer i)
{
  Session *S = b->S;
  Req r;
  lua_rawgeti(L, B_REQS, i);
  int req = lua_gettop(L);
  knox_http_load_request(L, req, S, t, &r, B_REQS, i);
  lua_rawseti(L, B_ANCHORS, i); /* anchor the body */
  t->index = i;
  t->max_body = b->share;
  t->batch_ways = b->share < S->max_response ? b->conc : 0;
  CURLcode rc = knox_http_apply_request(t, &r);
  /* Over TLS, wait for a connection that may multiplex (HTTP/2) rather
   * than open one per request; over plain HTTP nothing multiplexes and
   * waiting would serialize the first round. */
  long pipewait = strncasecmp(r.url, "https://", 8) == 0 && S->http_version != CURL_HTTP_VERSION_1_1;
  if (rc == CURLE_OK) rc = curl_easy_setopt(t->easy, CURLOPT_PIPEWAIT, pipewait);
  if (rc != CURLE_OK) {
    lua_pop(L, 1);
    finish_item(L, b, t, rc);
    return 0;
  }
  CURLMcode amc = curl_multi_add_handle(S->multi, t->easy);
  if (amc != CURLM_OK) {
    knox_http_push_multi_error(L, amc, req);
    lua_rawseti(L, B_RESULTS, i);
    lua_pop(L, 1);
    t->index = 0;
    return 0;
  }
  lua_pop(L, 1);
  t->in_multi = 1;
  return 1;
}

/* Starts the next requests on every idle pool slot. */
static void fill_slots(lua_State *L, Batch *b)
{
  for (int k = 0; k < b->conc && b->next <= b->n; k++) {
    Transfer *t = b->S->pool[k];
    if (t->index != 0) continue;
    b->active += start_item(L, b, t, b->next++);
  }
}

/* Finishes every transfer curl reports done. Returns how many. */
static int collect_done(lua_State *L, Batch *b)
{
  CURLMsg *m;
  int left, done = 0;
  while ((m = curl_multi_info_read(b->S->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *h = m->easy_handle;
    CURLcode rc = m->data.result; /* m dies with remove_handle */
    char *priv = NULL;
    curl_multi_remove_handle(b->S->multi, h);
    if (curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv) != CURLE_OK || priv == NULL) continue;
    Transfer *t = (Transfer *)(void *)priv;
    t->in_multi = 0;
    b->active--;
    done++;
    finish_item(L, b, t, rc);
  }
  return done;
}

/* Runs the batch until every item has a result or the multi handle
 * breaks; returns the multi handle's last code. */
static CURLMcode run(lua_State *L, Batch *b)
{
  CURLMcode mc = CURLM_OK;
  while (mc == CURLM_OK && (b->next <= b->n || b->active > 0)) {
    fill_slots(L, b);
    if (b->active == 0) continue;
    int running = 0;
    mc = curl_multi_perform(b->S->multi, &running);
    int done = collect_done(L, b);
    /* a freed slot is refilled at once, not after the next socket event */
    if (mc == CURLM_OK && b->active > 0 && !(done > 0 && b->next <= b->n)) {
      mc = curl_multi_poll(b->S->multi, NULL, 0, 1000, NULL);
    }
  }
  return mc;
}

/* The multi handle broke: every unfinished item gets the error. */
static void fail_unfinished(lua_State *L, const Batch *b, CURLMcode mc)
{
  detach_all(b->S);
  for (lua_Integer i = 1; i <= b->n; i++) {
    if (lua_rawgeti(L, B_RESULTS, i) == LUA_TNIL) {
      lua_rawgeti(L, B_REQS, i);
      knox_http_push_multi_error(L, mc, lua_gettop(L));
      lua_rawseti(L, B_RESULTS, i);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

/* ---------------------------------------------------------------------
 * session:batch.
 */
/* The concurrency option of the table at 3 (if any); raises "bad argument". */
static lua_Integer read_concurrency(lua_State *L)
{
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
  return conc;
}

/* Checks every request before anything is sent; raises "bad argument". */
static void check_requests(lua_State *L, const Session *S, lua_Integer n)
{
  for (lua_Integer i = 1; i <= n; i++) {
    Req r;
    if (lua_rawgeti(L, B_REQS, i) != LUA_TTABLE) knox_http_req_error(L, B_REQS, i, "must be a table");
    knox_http_load_request(L, 4, S, NULL, &r, B_REQS, i);
    lua_settop(L, 3);
  }
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
  luaL_checktype(L, B_REQS, LUA_TTABLE);
  lua_Integer conc = read_concurrency(L);
  lua_settop(L, 3);
  lua_Integer n = (lua_Integer)lua_rawlen(L, B_REQS);
  check_requests(L, S, n);
  lua_createtable(L, (int)(n < 1 << 20 ? n : 0), 0); /* B_RESULTS */
  lua_createtable(L, 0, 0);                            /* B_ANCHORS */
  Batch b = {.S = S, .n = n, .next = 1};
  if (S->has_debug) {
    lua_newtable(L);
    b.ev = B_EVENTS;
  }
  if (n == 0) {
    lua_pushvalue(L, B_RESULTS);
    return 1;
  }
  if (conc > n) conc = n;
  b.conc = (int)conc;
  b.share = S->max_batch / b.conc;
  if (b.share > S->max_response) b.share = S->max_response;
  if (b.share < 1) b.share = 1;
  ensure_pool(L, S, b.conc);
  detach_all(S); /* left attached by a batch that a Lua error interrupted */
  long maxconn = conc > 8 ? (long)conc : 8L;
  CURLMcode mc = curl_multi_setopt(S->multi, CURLMOPT_MAXCONNECTS, maxconn);
  knox_http_begin_busy(L, S);

  if (mc == CURLM_OK) mc = run(L, &b);
  if (mc != CURLM_OK) fail_unfinished(L, &b, mc);
  release_buffers(S);
  S->busy = 0;
  if (b.ev && knox_http_deliver_events(L, b.ev)) return lua_error(L);
  lua_pushvalue(L, B_RESULTS);
  return 1;
}
