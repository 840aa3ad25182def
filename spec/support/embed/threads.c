/*
 * threads.c — a tiny embedding host for spec/embed_spec.lua: N threads,
 * each with its own lua_State, run the same Lua script at the same time.
 *
 *   threads N LUA_PATH LUA_CPATH SCRIPT [ARGS...]
 *
 * Each thread makes a fresh state (luaL_newstate, the standard libraries),
 * sets package.path and package.cpath, sets the globals THREAD (1..N), arg
 * ({[0] = SCRIPT, ARGS...}) and sync() (waits until every thread has called
 * it: a pthread barrier, so the script can start each phase on all threads
 * at once), runs SCRIPT and keeps the string it returns. Then it closes its
 * state (which dlcloses knox.core) while the others may still run.
 *
 * Prints "thread I: <result>" per thread in thread order and exits 0 when
 * every script returned a string starting with "ok", 1 otherwise (an error
 * is printed as "thread I: error: <message>").
 *
 * Built by the spec: cc threads.c $(pkg-config --cflags --libs lua5.4) -lpthread
 */
#define _POSIX_C_SOURCE 200809L

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 16

struct job {
  int index;
  int argc;
  char **argv;            /* LUA_PATH LUA_CPATH SCRIPT ARGS... */
  char result[512];
  int ok;
};

static pthread_barrier_t barrier;

/* sync(): [-0, +0, -] waits for every thread's sync(). */
static int l_sync(lua_State *L)
{
  (void)L;
  pthread_barrier_wait(&barrier);
  return 0;
}

static void set_package_field(lua_State *L, const char *field, const char *value)
{
  lua_getglobal(L, "package");
  lua_pushstring(L, value);
  lua_setfield(L, -2, field);
  lua_pop(L, 1);
}

static void *run(void *p)
{
  struct job *j = p;
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    snprintf(j->result, sizeof j->result, "error: luaL_newstate failed");
    return NULL;
  }
  luaL_openlibs(L);
  set_package_field(L, "path", j->argv[0]);
  set_package_field(L, "cpath", j->argv[1]);
  lua_pushinteger(L, j->index);
  lua_setglobal(L, "THREAD");
  lua_pushcfunction(L, l_sync);
  lua_setglobal(L, "sync");
  lua_createtable(L, j->argc - 3, 1);
  for (int i = 2; i < j->argc; i++) {
    lua_pushstring(L, j->argv[i]);
    lua_rawseti(L, -2, i - 2);
  }
  lua_setglobal(L, "arg");

  int status = luaL_loadfile(L, j->argv[2]);
  if (status == LUA_OK) status = lua_pcall(L, 0, 1, 0);
  const char *s = lua_tostring(L, -1);
  if (s == NULL) s = "(a non-string value)";
  if (status != LUA_OK) {
    snprintf(j->result, sizeof j->result, "error: %s", s);
  } else {
    snprintf(j->result, sizeof j->result, "%s", s);
    j->ok = strncmp(s, "ok", 2) == 0;
  }
  lua_close(L);
  return NULL;
}

int main(int argc, char **argv)
{
  if (argc < 5) {
    fprintf(stderr, "usage: %s N LUA_PATH LUA_CPATH SCRIPT [ARGS...]\n", argv[0]);
    return 2;
  }
  int n = atoi(argv[1]);
  if (n < 1 || n > MAX_THREADS) {
    fprintf(stderr, "threads: N must be 1 to %d\n", MAX_THREADS);
    return 2;
  }
  static struct job jobs[MAX_THREADS];
  pthread_t tids[MAX_THREADS];
  if (pthread_barrier_init(&barrier, NULL, (unsigned)n) != 0) {
    fprintf(stderr, "threads: pthread_barrier_init failed\n");
    return 2;
  }
  int started = 0;
  for (int i = 0; i < n; i++) {
    jobs[i].index = i + 1;
    jobs[i].argc = argc - 2;
    jobs[i].argv = argv + 2;
    /* 8 MB of stack: Lua's C recursion (deep JSON, luaL_loadfile) */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8u << 20);
    int rc = pthread_create(&tids[i], &attr, run, &jobs[i]);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
      /* the others would wait at the barrier for ever */
      fprintf(stderr, "threads: pthread_create failed\n");
      _Exit(2);
    }
    started++;
  }
  int ok = 1;
  for (int i = 0; i < started; i++) {
    pthread_join(tids[i], NULL);
  }
  for (int i = 0; i < started; i++) {
    printf("thread %d: %s\n", jobs[i].index, jobs[i].result);
    ok = ok && jobs[i].ok;
  }
  pthread_barrier_destroy(&barrier);
  return ok ? 0 : 1;
}
