/*
 * embed.h — the Lua modules compiled into libknox.a: the table that
 * embed/gen.lua generates (build/static/modules.c) and embed/openlibs.c
 * registers. Internal to the archive (localized with objcopy).
 */
#ifndef KNOX_EMBED_H
#define KNOX_EMBED_H

#include <stddef.h>

struct knox_embedded_module {
  const char *name;       /* "knox.client"; NULL ends the table */
  const char *chunkname;  /* "@knox/client.lua" */
  const char *text;       /* the Lua source */
  size_t size;            /* its length in bytes */
};

extern const struct knox_embedded_module knox_embedded_modules[];

#endif
