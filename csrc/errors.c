/*
 * errors.c — placeholder so the module links while this part is being built
 * (see the open issue for it). Registers nothing.
 */
#include "knox.h"

int knox_errors_open(lua_State *L)
{
  (void)L;
  return 0;
}
