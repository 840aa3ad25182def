/*
 * catalog_find.c — knox.core.catalog: look-ups in the code catalog
 * (catalog.c) for the Lua layer. Exact matches only: which table to search
 * first, what to fall back on and how a code is classified are policy, in
 * lua/knox/errors.lua and the service registry.
 */
#include "knox.h"
#include "catalog.h"

#include <stdio.h>
#include <string.h>

/* Pushes one entry as {service=, code=, name=, description=, status=};
 * code is an integer for numeric codes ("4040300"), else the string. */
static void push_entry(lua_State *L, const struct knox_code *e)
{
  const char *p = e->code;
  lua_Integer num = 0;
  int digits = *p != 0 && strlen(p) <= 15;
  for (; digits && *p != 0; p++) {
    if (*p < '0' || *p > '9') digits = 0;
    else num = num * 10 + (*p - '0');
  }
  lua_createtable(L, 0, 5);
  lua_pushstring(L, e->service);
  lua_setfield(L, -2, "service");
  if (digits) lua_pushinteger(L, num);
  else lua_pushstring(L, e->code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, e->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, e->description);
  lua_setfield(L, -2, "description");
  lua_pushinteger(L, e->status);
  lua_setfield(L, -2, "status");
}

static int in_service(const struct knox_code *e, const char *svc)
{
  return svc == NULL || strcmp(e->service, svc) == 0;
}

/* catalog.find(service, code): [-0, +1, m] a new list of the entries of
 * service (nil: every service) whose code is code (an integer or a
 * string, compared as its decimal or exact text), in catalog order. */
static int l_find(lua_State *L)
{
  const char *svc = luaL_optstring(L, 1, NULL);
  char num[32];
  const char *code;
  if (lua_type(L, 2) == LUA_TNUMBER && lua_isinteger(L, 2)) {
    snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, 2));
    code = num;
  } else {
    code = luaL_checkstring(L, 2);
  }
  lua_newtable(L);
  lua_Integer k = 0;
  for (size_t i = 0; i < knox_catalog_size; i++) {
    const struct knox_code *e = &knox_catalog[i];
    if (in_service(e, svc) && strcmp(e->code, code) == 0) {
      push_entry(L, e);
      lua_rawseti(L, -2, ++k);
    }
  }
  return 1;
}

/* catalog.by_name(service, name): [-0, +1, m] the first entry of service
 * (nil: any service) named name, or nil. */
static int l_by_name(lua_State *L)
{
  const char *svc = luaL_optstring(L, 1, NULL);
  const char *name = luaL_checkstring(L, 2);
  for (size_t i = 0; i < knox_catalog_size; i++) {
    const struct knox_code *e = &knox_catalog[i];
    if (in_service(e, svc) && strcmp(e->name, name) == 0) {
      push_entry(L, e);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

/* catalog.list([service]): [-0, +1, m] a new list of every entry (of one
 * service), in catalog order. */
static int l_list(lua_State *L)
{
  const char *svc = luaL_optstring(L, 1, NULL);
  lua_createtable(L, svc == NULL ? (int)knox_catalog_size : 0, 0);
  lua_Integer k = 0;
  for (size_t i = 0; i < knox_catalog_size; i++) {
    if (!in_service(&knox_catalog[i], svc)) continue;
    push_entry(L, &knox_catalog[i]);
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

int knox_catalog_open(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"find", l_find},
    {"by_name", l_by_name},
    {"list", l_list},
    {NULL, NULL},
  };
  lua_createtable(L, 0, 3);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, -2, "catalog");
  return 0;
}
