/*
 * errors.h — the project-wide error record.
 *
 * Codes are the public OKV_E* codes of orderkv.h, so a code travels unchanged
 * from RocksDB through the server to a client. Internal functions return the
 * code and, when the caller passes an okv_error, also a message a user can act
 * on ("data dir ./data was written by format version 2; this orderkvd reads 1").
 */
#ifndef OKV_COMMON_ERRORS_H
#define OKV_COMMON_ERRORS_H

#include "orderkv.h"

#define OKV_ERRMSG_MAX 512

typedef struct okv_error {
    int code;
    char msg[OKV_ERRMSG_MAX];
} okv_error;

/* Sets err (if not NULL) to code and a printf-style message; returns code so
 * callers can write `return okv_error_set(err, OKV_EINVAL, "...")`. */
int okv_error_set(okv_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err to OKV_OK and an empty message. Accepts NULL. */
void okv_error_clear(okv_error *err);

#endif
