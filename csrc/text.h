/*
 * text.h — the one text-safety module (text.c): the secret-name table and
 * the functions every output goes through, in C and (as knox.core.text)
 * in Lua: redaction of bodies and URLs, one-line UTF-8-safe text.
 */
#ifndef KNOX_TEXT_H
#define KNOX_TEXT_H

#include "knox.h"

#include <stddef.h>

#define KNOX_TEXT_MAX 480   /* bytes of one line of message text */

/* ASCII case-insensitive comparison of a[0..alen) with the string b, and
 * search for needle in s[0..n) (locale-independent on purpose). */
int knox_text_ci_eq(const char *a, size_t alen, const char *b);
const char *knox_text_ci_find(const char *s, size_t n, const char *needle);

/* Whether the name k[0..n) (a header, JSON key, form or query key) holds a
 * secret; url: it is a URL query key ("code" counts there). */
int knox_text_is_secret(const char *k, size_t n, int url);

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0. */
size_t knox_text_utf8_seq(const unsigned char *s, size_t n);

/* The longest prefix of s[0..n), at most max bytes, not ending inside a
 * UTF-8 sequence. */
size_t knox_text_utf8_cut(const char *s, size_t n, size_t max);

/* One line of valid UTF-8 from s into out (cap bytes): controls become
 * spaces, runs of spaces collapse, invalid bytes become U+FFFD. Returns
 * the bytes written. */
size_t knox_text_one_line(char *out, size_t cap, const char *s, size_t n);

/* Copies s[0..n) into out (cap bytes) with every secret replaced by
 * "[redacted]"; returns the bytes written. Secrets are skipped whole, so
 * a cut made afterwards never shows part of one. */
size_t knox_text_redact(char *out, size_t cap, const char *s, size_t n);

/* Whether s is mostly readable text (not binary noise). */
int knox_text_readable(const char *s, size_t n);

/* [-0, +1, m] pushes s as one redacted line of at most max bytes (at most
 * KNOX_TEXT_MAX), cut on a character boundary and marked "...". */
void knox_text_push_line(lua_State *L, const char *s, size_t n, size_t max);

/* [-0, +1, m] pushes url without userinfo or fragment, secret query
 * values redacted, as one line. */
void knox_text_push_clean_url(lua_State *L, const char *url, size_t n);

#endif
