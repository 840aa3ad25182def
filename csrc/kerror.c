/*
 * kerror.c — the knox.Error object: the one C constructor every runtime
 * failure in the core goes through, its one-line __tostring, and err:is().
 * The metatable lives in the registry under "knox.Error"; lua/knox/errors.lua
 * takes the same table (core.Error) and adds its Lua-side methods, so an
 * error raised from C and one built in Lua are the same kind of object.
 */
#include "knox.h"

#include <stdarg.h>
#include <string.h>

void knox_error_new(lua_State *L, const char *kind, const char *message)
{
  lua_createtable(L, 0, 8);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  if (message != NULL) {
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
  }
  luaL_setmetatable(L, KNOX_ERROR_MT);
}

void knox_error_setstr(lua_State *L, const char *field, const char *value)
{
  if (value == NULL) return;
  lua_pushstring(L, value);
  lua_setfield(L, -2, field);
}

void knox_error_setint(lua_State *L, const char *field, lua_Integer value)
{
  lua_pushinteger(L, value);
  lua_setfield(L, -2, field);
}

void knox_error_setbool(lua_State *L, const char *field, int value)
{
  lua_pushboolean(L, value);
  lua_setfield(L, -2, field);
}

int knox_error_raise(lua_State *L)
{
  return lua_error(L);
}

int knox_error_throw(lua_State *L, const char *kind, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  knox_error_new(L, kind, lua_tostring(L, -1));
  lua_remove(L, -2);
  return lua_error(L);
}

/* Pushes t[field] if it is a non-empty string or a number, else nothing;
 * returns whether something was pushed. */
static int push_field_text(lua_State *L, int t, const char *field)
{
  int ty = lua_getfield(L, t, field);
  if ((ty == LUA_TSTRING && lua_rawlen(L, -1) > 0) || ty == LUA_TNUMBER) {
    return 1;
  }
  lua_pop(L, 1);
  return 0;
}

/* The part of a URL after scheme://authority, so one-line messages stay
 * short and never show userinfo. */
static const char *url_path(const char *url)
{
  const char *p = strstr(url, "://");
  if (p == NULL) return url;
  p += 3;
  const char *slash = strchr(p, '/');
  return slash != NULL ? slash : "/";
}

/* Whether err.code is a string equal to err.name (Samsung Account and
 * OAuth codes are their own names), so the line need not say it twice. */
static int code_is_name(lua_State *L)
{
  int same = lua_getfield(L, 1, "code") == LUA_TSTRING &&
             lua_getfield(L, 1, "name") == LUA_TSTRING && lua_rawequal(L, -1, -2);
  lua_settop(L, 1);
  return same;
}

/* Replaces the control characters (newlines...) of the string on top, so
 * the line stays one line whatever a message holds. */
static void one_line(lua_State *L)
{
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  size_t i = 0;
  while (i < len && (unsigned char)s[i] >= 0x20 && s[i] != 0x7F) i++;
  if (i == len) return;
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, len);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    out[i] = (char)(c < 0x20 || c == 0x7F ? ' ' : c);
  }
  luaL_pushresultsize(&b, len);
  lua_remove(L, -2);
}

/* Replaces the value on top with its text (luaL_tolstring). */
static void to_text(lua_State *L)
{
  luaL_tolstring(L, -1, NULL);
  lua_remove(L, -2);
}

/* __tostring(err): [-0, +1, m]
 * "knox: NAME (CODE, HTTP STATUS) METHOD PATH: message", always one line.
 * Never raises on a malformed error table; missing parts are left out.
 * The pieces are pushed in order and joined once at the end (no
 * luaL_Buffer: it must stay on top of the stack, and each field is read
 * onto the stack first). */
static int l_error_tostring(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  int label_is_kind = 0;
  int skip_code = code_is_name(L);

  lua_pushliteral(L, "knox: ");

  /* label: the Knox name, else the transport cause's name, else the kind */
  if (!push_field_text(L, 1, "name")) {
    int found = 0;
    if (lua_getfield(L, 1, "cause") == LUA_TTABLE) {
      found = push_field_text(L, lua_gettop(L), "name");
      if (found) lua_remove(L, -2);
    }
    if (!found) {
      lua_settop(L, 2);
      if (!push_field_text(L, 1, "kind")) lua_pushliteral(L, "error");
      label_is_kind = 1;
    }
  }
  to_text(L);

  /* parenthesis: code and HTTP status, or the kind when the label is not */
  int nparts = 0;
  if (!skip_code && push_field_text(L, 1, "code")) {
    to_text(L);
    lua_pushliteral(L, " (");
    lua_insert(L, -2);
    nparts++;
  }
  if (lua_getfield(L, 1, "status") == LUA_TNUMBER) {
    lua_Integer st = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushfstring(L, nparts ? ", HTTP %I" : " (HTTP %I", st);
    nparts++;
  } else {
    lua_pop(L, 1);
  }
  if (nparts == 0 && !label_is_kind && push_field_text(L, 1, "kind")) {
    to_text(L);
    lua_pushliteral(L, " (");
    lua_insert(L, -2);
    nparts++;
  }
  if (nparts) lua_pushliteral(L, ")");

  if (push_field_text(L, 1, "method")) {
    to_text(L);
    lua_pushliteral(L, " ");
    lua_insert(L, -2);
  }
  if (lua_getfield(L, 1, "url") == LUA_TSTRING) {
    lua_pushfstring(L, " %s", url_path(lua_tostring(L, -1)));
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1);
  }
  if (push_field_text(L, 1, "message")) {
    to_text(L);
    lua_pushliteral(L, ": ");
    lua_insert(L, -2);
  }
  lua_concat(L, lua_gettop(L) - 1);
  one_line(L);
  return 1;
}

/* Whether the value at index v equals x (index 2), comparing numbers with
 * numeric strings as numbers. */
static int matches(lua_State *L, int v)
{
  if (lua_isnoneornil(L, v)) return 0;
  if (lua_rawequal(L, v, 2)) return 1;
  int tv = lua_type(L, v), tx = lua_type(L, 2);
  if ((tv == LUA_TNUMBER && tx == LUA_TSTRING) ||
      (tv == LUA_TSTRING && tx == LUA_TNUMBER)) {
    int s = tv == LUA_TSTRING ? v : 2;
    int n = tv == LUA_TSTRING ? 2 : v;
    size_t len;
    const char *str = lua_tolstring(L, s, &len);
    if (len == 0) return 0;
    size_t used = lua_stringtonumber(L, str);
    if (used != len + 1) {
      if (used != 0) lua_pop(L, 1);
      return 0;
    }
    int eq = lua_compare(L, -1, n, LUA_OPEQ);
    lua_pop(L, 1);
    return eq;
  }
  return 0;
}

/* err:is(x): [-0, +1, -] true when x equals the error's name, code, kind or
 * transport cause name. */
static int l_error_is(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  static const char *const fields[] = {"name", "code", "kind"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    lua_getfield(L, 1, fields[i]);
    int m = matches(L, lua_gettop(L));
    lua_pop(L, 1);
    if (m) {
      lua_pushboolean(L, 1);
      return 1;
    }
  }
  if (lua_getfield(L, 1, "cause") == LUA_TTABLE) {
    lua_getfield(L, -1, "name");
    if (matches(L, lua_gettop(L))) {
      lua_pushboolean(L, 1);
      return 1;
    }
  }
  lua_pushboolean(L, 0);
  return 1;
}

/* core.error(t): [-0, +1, v] gives table t the knox.Error metatable and
 * returns it. t.kind must be a string. */
static int l_error_make(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "kind");
  luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "field 'kind' must be a string");
  lua_pop(L, 1);
  lua_settop(L, 1);
  luaL_setmetatable(L, KNOX_ERROR_MT);
  return 1;
}

/* core.is_error(v): [-0, +1, -] whether v carries the knox.Error metatable. */
static int l_is_error(lua_State *L)
{
  int yes = 0;
  if (lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, KNOX_ERROR_MT);
    yes = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, yes);
  return 1;
}

int knox_error_open(lua_State *L)
{
  if (luaL_newmetatable(L, KNOX_ERROR_MT)) {
    lua_pushcfunction(L, l_error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_newtable(L);
    lua_pushcfunction(L, l_error_is);
    lua_setfield(L, -2, "is");
    lua_setfield(L, -2, "__index");
  }
  lua_setfield(L, -2, "Error");

  lua_pushcfunction(L, l_error_make);
  lua_setfield(L, -2, "error");
  lua_pushcfunction(L, l_is_error);
  lua_setfield(L, -2, "is_error");
  return 0;
}
