/*
 * http_buf.h — transport layer 0 (bottom): growing byte buffers.
 * Header only, calls nothing but the C library. Included by http_state.h.
 *
 * A Buf is owned by a Transfer (so by the session userdata): a Lua error
 * between two uses never leaks it.
 */
#ifndef KNOX_HTTP_BUF_H
#define KNOX_HTTP_BUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEEP_BUFFER ((size_t)256 * 1024) /* larger buffers are freed after use */

typedef struct {
  char *data;
  size_t len, cap;
} Buf;

static inline int buf_reserve(Buf *b, size_t extra)
{
  if (extra <= b->cap - b->len) return 1;
  if (extra > SIZE_MAX / 2 - b->len) return 0;
  size_t need = b->len + extra;
  size_t cap = b->cap > 0 ? b->cap : 1024;
  while (cap < need) cap *= 2;
  char *p = realloc(b->data, cap);
  if (p == NULL) return 0;
  b->data = p;
  b->cap = cap;
  return 1;
}

static inline int buf_add(Buf *b, const void *p, size_t n)
{
  if (n == 0) return 1;
  if (!buf_reserve(b, n)) return 0;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 1;
}

static inline void buf_free(Buf *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* After a transfer: keep a small buffer for the next one, free a big one. */
static inline void buf_trim(Buf *b)
{
  if (b->cap > KEEP_BUFFER) buf_free(b);
  else b->len = 0;
}

#endif
