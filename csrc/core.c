/*
 * core.c — entry point of knox.core: the version, knox.null, and the
 * registration of every part (errors, clock, json, key, http, errors
 * normalization). The public API is the Lua module "knox"; this module is
 * its private mechanism layer.
 */
#include "knox.h"

#include <curl/curl.h>

static const lua_CFunction parts[] = {
  knox_error_open,   /* first: the other parts raise knox.Error */
  knox_clock_open,
  knox_json_open,
  knox_key_open,
  knox_http_open,
  knox_errors_open,
  knox_catalog_open,
  knox_text_open,
};

/* The one symbol core.so exports: everything else is built with
 * -fvisibility=hidden (Makefile KCFLAGS). */
__attribute__((visibility("default"))) int luaopen_knox_core(lua_State *L);

/* luaopen_knox_core: [-0, +1, e] returns the module table. */
int luaopen_knox_core(lua_State *L)
{
  luaL_checkversion(L);
  lua_newtable(L);

  lua_pushliteral(L, KNOX_VERSION);
  lua_setfield(L, -2, "version");

  /* JSON null: a light userdata NULL, the same sentinel lua-cjson uses, so
   * values interoperate. */
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");

  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "curl_version");

  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    parts[i](L);
  }
  return 1;
}
