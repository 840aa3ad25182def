/*
 * threads.c — two lua_States on two threads of one process, each with
 * knox from libknox.a, making real requests at the same time. Each thread
 * builds its own client from the environment (as host.c does: KNOX_BASE_URL
 * or KNOX_REGION, KNOX_KEYS_FILE, KNOX_CLIENT_ID), walks the Knox Guard
 * device list, then locks and unlocks its own device (thread 1 the first
 * active device, thread 2 the second) ROUNDS times, reading the status back
 * after each change.
 *
 *   cc -o threads examples/embed/threads.c $(pkg-config --cflags --libs knox lua5.4) -lpthread
 *   ./threads [ROUNDS]            (default 5)
 *
 * Prints "thread N: ok <device> <requests> requests" per thread (the Knox
 * Guard calls it made: list pages, then 4 per round), in thread order, and exits 0 when both succeeded; otherwise prints the thread's
 * error and exits 1. knox keeps no process-wide state of its own; libcurl's
 * global initialisation, which each state's knox.core runs, is thread-safe
 * in the libcurl this builds on (7.84 and later).
 */
#define _POSIX_C_SOURCE 200809L

#include <knox.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 2

/* both threads start their requests together, once each has loaded knox */
static pthread_barrier_t start;

static const char script[] =
  "local index, rounds = ...\n"
  "local knox = require 'knox'\n"
  "local client <close> = knox.client()\n"
  "local requests, active = 0, {}\n"
  "local count = { on_page = function() requests = requests + 1 end }\n"
  "for d in client.kg:each_device({ pageSize = 7 }, count) do\n"
  "  if d.status == 'Active' then active[#active + 1] = d end\n"
  "end\n"
  "local d = assert(active[index], 'fewer active devices than threads')\n"
  "for round = 1, rounds do\n"
  "  for _, step in ipairs { { 'lock', 'Locked' }, { 'unlock', 'Active' } } do\n"
  "    local args = { deviceUid = d.deviceUid }\n"
  "    if step[1] == 'lock' then args.message = 'thread ' .. index .. ' round ' .. round end\n"
  "    client.kg[step[1]](client.kg, args)\n"
  "    local now = client.kg:get_device { objectId = d.objectId }\n"
  "    requests = requests + 2\n"
  "    if now.status ~= step[2] then\n"
  "      error(('round %d: %s left %s %s, not %s'):format(round, step[1], d.deviceUid, now.status, step[2]), 0)\n"
  "    end\n"
  "  end\n"
  "end\n"
  "return ('ok %s %d requests'):format(d.deviceUid, requests)\n";

struct job {
  int index;
  int rounds;
  pthread_t tid;
  int ok;
  char result[512];
};

/* The message handler: tostring of any error value (a knox.Error's one
 * line), a traceback for strings. [-1, +1, -] */
static int on_error(lua_State *L)
{
  if (lua_type(L, 1) == LUA_TSTRING) {
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
  } else {
    luaL_tolstring(L, 1, NULL);
  }
  return 1;
}

static void *run(void *p)
{
  struct job *j = p;
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    snprintf(j->result, sizeof j->result, "error: cannot create a Lua state (out of memory)");
    return NULL;
  }
  luaL_openlibs(L);
  lua_pushcfunction(L, on_error);
  lua_pushcfunction(L, knox_openlibs);
  int status = lua_pcall(L, 0, 0, 1);
  if (status == LUA_OK) status = luaL_loadbufferx(L, script, sizeof script - 1, "=threads", "t");
  pthread_barrier_wait(&start);   /* reached on every path: the other thread waits here too */
  if (status == LUA_OK) {
    lua_pushinteger(L, j->index);
    lua_pushinteger(L, j->rounds);
    status = lua_pcall(L, 2, 1, 1);
  }
  const char *s = lua_tostring(L, -1);
  snprintf(j->result, sizeof j->result, "%s%s", status == LUA_OK ? "" : "error: ", s ? s : "(no message)");
  j->ok = status == LUA_OK;
  lua_close(L);
  return NULL;
}

int main(int argc, char **argv)
{
  long rounds = 5;
  char *end = NULL;
  if (argc == 2) rounds = strtol(argv[1], &end, 10);
  if (argc > 2 || (argc == 2 && (end == argv[1] || *end != '\0' || rounds < 1 || rounds > 1000))) {
    fprintf(stderr, "usage: %s [ROUNDS]   (1 to 1000, default 5)\n", argv[0]);
    return 2;
  }
  struct job jobs[THREADS];
  memset(jobs, 0, sizeof jobs);
  int rc = pthread_barrier_init(&start, NULL, THREADS);
  if (rc != 0) {
    fprintf(stderr, "threads: pthread_barrier_init failed: %s\n", strerror(rc));
    return 1;
  }
  int started = 0;
  for (int i = 0; i < THREADS; i++) {
    jobs[i].index = i + 1;
    jobs[i].rounds = (int)rounds;
    rc = pthread_create(&jobs[i].tid, NULL, run, &jobs[i]);
    if (rc != 0) {
      /* the thread already started would wait at the barrier for ever */
      fprintf(stderr, "threads: pthread_create failed: %s\n", strerror(rc));
      _Exit(1);
    }
    started++;
  }
  int ok = started == THREADS;
  for (int i = 0; i < started; i++) {
    pthread_join(jobs[i].tid, NULL);
    printf("thread %d: %s\n", jobs[i].index, jobs[i].result);
    ok = ok && jobs[i].ok;
  }
  pthread_barrier_destroy(&start);
  return ok ? 0 : 1;
}
