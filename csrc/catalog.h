/*
 * catalog.h — the documented Knox error codes as data (catalog.c), read by
 * errors.c. Facts only: which service, which code, its name, its HTTP class
 * and what the documentation says it means, plus how a client should treat
 * it (flags). No logic lives with the data.
 */
#ifndef KNOX_CATALOG_H
#define KNOX_CATALOG_H

#include <stddef.h>

/* How a client should treat a code (independent of the HTTP status). */
enum {
  KX_AUTH = 1,    /* an authentication/credential problem: kind "auth" */
  KX_RENEW = 2,   /* a freshly issued token can fix it: auth_action "renew" */
  KX_RETRY = 4,   /* a server-side failure the docs say to try again */
  KX_NORETRY = 8  /* a 5xx that repeating the same request cannot fix */
};

struct knox_code {
  const char *service;     /* "kme", "kg", "msp", "kdp", "kc", "kai", "auth",
                              "samsung_account", "oauth2" */
  const char *code;        /* "4040300", "40300000", "AUT_1001", "invalid_grant" */
  const char *name;        /* "DEVICE_NOT_FOUND"; Samsung Account and OAuth
                              codes are their own names */
  int status;              /* HTTP class the code is documented with */
  unsigned flags;          /* KX_* */
  const char *description;
};

/* Catalog order is significant only for codes that have two names in one
 * service (KME 4001701): the first is what lookup() reports as the name. */
extern const struct knox_code knox_catalog[];
extern const size_t knox_catalog_size;

#endif
