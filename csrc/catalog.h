/*
 * catalog.h — the documented Knox error codes as data (catalog.c), read by
 * errors.c. Facts only: which service, which code, its name, its HTTP class
 * and what the documentation says it means. No logic lives with the data
 * (catalog_find.c reads it; the registry's error rules classify it).
 */
#ifndef KNOX_CATALOG_H
#define KNOX_CATALOG_H

#include <stddef.h>

struct knox_code {
  const char *service;     /* "kme", "kg", "msp", "kdp", "kc", "kai", "auth",
                              "samsung_account", "oauth2" */
  const char *code;        /* "4040300", "40300000", "AUT_1001", "invalid_grant" */
  const char *name;        /* "DEVICE_NOT_FOUND"; Samsung Account and OAuth
                              codes are their own names */
  int status;              /* HTTP class the code is documented with */
  const char *description;
};

/* Catalog order is significant only for codes that have two names in one
 * service (KME 4001701): the first is what lookup() reports as the name. */
extern const struct knox_code knox_catalog[];
extern const size_t knox_catalog_size;

#endif
