/*
 * sbuf.h — a growable string for building explanations and reports.
 *
 * Running out of memory is sticky: later appends do nothing and sbuf_take
 * returns NULL, so builders check once at the end instead of after every
 * append.
 */
#ifndef OKV_JEPSEN_SBUF_H
#define OKV_JEPSEN_SBUF_H

#include <stddef.h>

typedef struct sbuf {
    char *s;
    size_t len;
    size_t cap;
    int oom;
} sbuf;

#define SBUF_INIT { NULL, 0, 0, 0 }

/* Appends printf-formatted text. */
void sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends n bytes of s. */
void sbuf_append(sbuf *b, const char *s, size_t n);

/* Appends s as a JSON string literal, quotes included. */
void sbuf_json_string(sbuf *b, const char *s);

/* The text so far, malloc'd and owned by the caller (an empty string if
 * nothing was appended), or NULL if memory ran out. The buffer is left empty. */
char *sbuf_take(sbuf *b);

/* Drops the text; accepts an sbuf that was taken or never used. */
void sbuf_free(sbuf *b);

#endif
