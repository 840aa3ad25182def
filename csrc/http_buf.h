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

/* Room for extra more bytes, growing by doubling but never past max bytes
 * in all (so a buffer bounded by a limit costs at most the limit, not
 * twice it). Returns 0 when that would take more than max, or on OOM. */
static inline int buf_reserve_max(Buf *b, size_t extra, size_t max)
{
  if (extra <= b->cap - b->len) return 1;
  if (max > SIZE_MAX / 2) max = SIZE_MAX / 2;
  if (b->len > max || extra > max - b->len) return 0;
  size_t need = b->len + extra;
  size_t cap = b->cap > 0 ? b->cap : 1024;
  while (cap < need) cap *= 2;
  if (cap > max) cap = max;
  char *p = realloc(b->data, cap);
  if (p == NULL) return 0;
  b->data = p;
  b->cap = cap;
  return 1;
}

static inline int buf_reserve(Buf *b, size_t extra)
{
  return buf_reserve_max(b, extra, SIZE_MAX / 2);
}

/* Appends p[0..n) within max bytes in all (see buf_reserve_max). */
static inline int buf_add_max(Buf *b, const void *p, size_t n, size_t max)
{
  if (n == 0) return 1;
  if (!buf_reserve_max(b, n, max)) return 0;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 1;
}

static inline int buf_add(Buf *b, const void *p, size_t n)
{
  return buf_add_max(b, p, n, SIZE_MAX / 2);
}

static inline void buf_free(Buf *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* After a transfer: keep a buffer of at most keep bytes for the next one,
 * free a bigger one. */
static inline void buf_trim_to(Buf *b, size_t keep)
{
  if (b->cap > keep) buf_free(b);
  else b->len = 0;
}

static inline void buf_trim(Buf *b)
{
  buf_trim_to(b, KEEP_BUFFER);
}

#endif
