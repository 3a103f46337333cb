/*
 * audit_format.h — one audit record as a JSON line (audit.h "Escaping").
 * Pure: no I/O, no clock; the caller passes the time.
 */
#ifndef OKV_SERVER_AUDIT_FORMAT_H
#define OKV_SERVER_AUDIT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* Formats {"time":...,"who":...,"from":...,"what":...,"result":...}\n
 * for the instant unix_ms (milliseconds since the epoch, UTC). NULL
 * strings become null. Returns a malloc'd buffer of *len bytes (plus a
 * NUL not counted), or NULL when out of memory. */
char *audit_format_line(int64_t unix_ms, const char *who, const char *from, const char *what,
                        const char *result, size_t *len);

/* Appends s as a JSON string literal (quotes included; NULL: null) to buf
 * and returns the new length. buf must have room for
 * audit_format_max_escaped(strlen(s)) more bytes. */
size_t audit_format_json_string(char *buf, size_t len, const char *s);

/* Most bytes audit_format_json_string writes for an input of n bytes. */
size_t audit_format_max_escaped(size_t n);

#endif
