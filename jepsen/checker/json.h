/*
 * json.h — a small, strict JSON reader for Jepsen histories.
 *
 * Grammar: RFC 8259 exactly — objects, arrays, strings (all escapes,
 * surrogate pairs, UTF-8 validated), numbers, true, false, null; nothing
 * else (no comments, trailing commas, NaN, leading zeros, single quotes).
 * Integers that fit in int64 become JSON_INT; numbers with a fraction or an
 * exponent become JSON_FLOAT; an integer outside int64 is an error. Nesting
 * deeper than JSON_MAX_DEPTH is an error, so hostile input cannot exhaust the
 * stack. Every error is OKV_EINVAL with a message naming the byte offset
 * ("byte 812: expected ',' or ']' in array, found 'x'"); OKV_ENOMEM when
 * memory runs out. Time is linear in the input length.
 *
 * Two ways in:
 *   json_parse         the whole text as one tree (tests, small inputs);
 *   json_stream_*      the elements of a top-level array one at a time, so a
 *                      history of a million ops never needs a million trees
 *                      alive at once: each json_stream_next replaces the
 *                      previous element's tree.
 *
 * The reader does no I/O: callers hand it the text.
 */
#ifndef OKV_JEPSEN_JSON_H
#define OKV_JEPSEN_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define JSON_MAX_DEPTH 64

typedef enum json_type {
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_INT,
    JSON_FLOAT,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_type;

typedef struct json_node json_node;

struct json_node {
    json_type type;
    size_t offset;        /* byte offset of the value's first character */
    const char *key;      /* member name (NUL-terminated) inside an object, else NULL */
    size_t key_len;       /* may differ from strlen(key) if the name holds \u0000 */
    json_node *next;      /* next element or member of the parent, or NULL */
    union {
        int64_t i;                                   /* JSON_INT */
        double d;                                    /* JSON_FLOAT */
        struct { const char *s; size_t len; } str;   /* JSON_STRING, NUL-terminated */
        struct { json_node *first; size_t count; } kids; /* JSON_ARRAY, JSON_OBJECT */
    } u;
};

/* ---- whole documents ---- */

typedef struct json_doc json_doc;

/* Parses text[0..len) as one JSON value (surrounding whitespace allowed).
 * On success *out owns the tree; free it with json_doc_free. */
int json_parse(json_doc **out, const char *text, size_t len, okv_error *err);

/* The root value; borrowed, valid until json_doc_free. */
const json_node *json_doc_root(const json_doc *doc);

/* Accepts NULL. */
void json_doc_free(json_doc *doc);

/* ---- streaming the elements of a top-level array ---- */

typedef struct json_stream json_stream;

/* Starts reading text[0..len), which must be a JSON array; the text must
 * outlive the stream. Fails (OKV_EINVAL) if the text does not start with '['. */
int json_stream_new(json_stream **out, const char *text, size_t len, okv_error *err);

/* Parses the next element. Returns 1 and sets *elem (borrowed, valid until
 * the next call or json_stream_free), 0 at the closing ']' (after checking
 * that only whitespace follows it), or a negative code. After an error the
 * stream must not be read again. */
int json_stream_next(json_stream *s, const json_node **elem, okv_error *err);

/* Accepts NULL. */
void json_stream_free(json_stream *s);

/* ---- helpers ---- */

/* The first member of obj named name, or NULL (also when obj is not an object). */
const json_node *json_member(const json_node *obj, const char *name);

/* "null", "integer", ... for messages. */
const char *json_type_name(json_type t);

#endif
