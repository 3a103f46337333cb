/*
 * json.c — a recursive-descent JSON reader with a depth limit.
 *
 * Strings are decoded in two passes: the first finds the closing quote (so
 * the decoded copy, never longer than the raw text, is allocated once), the
 * second decodes and validates. Every byte of the input is looked at a
 * bounded number of times, so parsing is O(n).
 */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

typedef struct parser {
    const char *text;
    size_t len;
    size_t pos;
    int depth;
    arena nodes; /* nodes and decoded strings */
    okv_error *err;
} parser;

struct json_doc {
    parser ps;
    json_node *root;
};

struct json_stream {
    parser ps;
    bool done;   /* the closing ']' was read */
    bool broken; /* an error was returned; later calls repeat it */
    bool first;
};

/* ---- errors ---- */

static void describe_at(const parser *ps, size_t pos, char *buf, size_t n)
{
    if (pos >= ps->len) {
        snprintf(buf, n, "end of input");
        return;
    }
    unsigned char c = (unsigned char)ps->text[pos];
    if (c >= 0x21 && c < 0x7f)
        snprintf(buf, n, "'%c'", c);
    else
        snprintf(buf, n, "byte 0x%02x", c);
}

__attribute__((format(printf, 3, 4)))
static int fail(parser *ps, size_t pos, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return okv_error_set(ps->err, OKV_EINVAL, "byte %zu: %s", pos, msg);
}

static int fail_expected(parser *ps, const char *what)
{
    char found[32];
    describe_at(ps, ps->pos, found, sizeof found);
    return fail(ps, ps->pos, "expected %s, found %s", what, found);
}

static int oom(parser *ps)
{
    return okv_error_set(ps->err, OKV_ENOMEM, "out of memory at byte %zu", ps->pos);
}

/* ---- lexical helpers ---- */

static void skip_ws(parser *ps)
{
    while (ps->pos < ps->len) {
        char c = ps->text[ps->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        ps->pos++;
    }
}

static int peek(const parser *ps)
{
    return ps->pos < ps->len ? (unsigned char)ps->text[ps->pos] : -1;
}

static json_node *new_node(parser *ps, json_type t, size_t offset)
{
    json_node *n = arena_alloc(&ps->nodes, sizeof *n);
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    n->type = t;
    n->offset = offset;
    return n;
}

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits of a \u escape starting at pos. */
static int read_u4(parser *ps, size_t pos, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < 4; i++) {
        int d = pos + i < ps->len ? hex_digit((unsigned char)ps->text[pos + i]) : -1;
        if (d < 0)
            return fail(ps, pos + i, "\\u escape needs 4 hex digits");
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *dst, unsigned cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xe0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        dst[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no
 * overlongs, no surrogates, nothing above U+10FFFF), or 0 if ill-formed. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < need + 1)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i <= need; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return need + 1;
}

/* ---- values ---- */

/* Decodes the escape at ps->pos (just after the backslash) into dst. */
static int decode_escape(parser *ps, char *dst, size_t *written)
{
    size_t at = ps->pos - 1;
    int c = peek(ps);
    ps->pos++;
    switch (c) {
    case '"': *dst = '"'; break;
    case '\\': *dst = '\\'; break;
    case '/': *dst = '/'; break;
    case 'b': *dst = '\b'; break;
    case 'f': *dst = '\f'; break;
    case 'n': *dst = '\n'; break;
    case 'r': *dst = '\r'; break;
    case 't': *dst = '\t'; break;
    case 'u': {
        unsigned cp = 0;
        if (read_u4(ps, ps->pos, &cp))
            return OKV_EINVAL;
        ps->pos += 4;
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return fail(ps, at, "lone low surrogate \\u%04x", cp);
        if (cp >= 0xd800 && cp <= 0xdbff) {
            unsigned lo = 0;
            if (ps->pos + 1 >= ps->len || ps->text[ps->pos] != '\\' || ps->text[ps->pos + 1] != 'u')
                return fail(ps, at, "high surrogate \\u%04x not followed by a \\u low surrogate", cp);
            if (read_u4(ps, ps->pos + 2, &lo))
                return OKV_EINVAL;
            if (lo < 0xdc00 || lo > 0xdfff)
                return fail(ps, at, "high surrogate \\u%04x followed by \\u%04x", cp, lo);
            ps->pos += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        *written = put_utf8(dst, cp);
        return 0;
    }
    default:
        return c < 0 ? fail(ps, at, "unterminated string") : fail(ps, at, "invalid escape");
    }
    *written = 1;
    return 0;
}

/* Parses a string at ps->pos (which holds '"') into a NUL-terminated copy. */
static int parse_string(parser *ps, const char **out, size_t *out_len)
{
    size_t start = ps->pos;
    size_t end = start + 1;
    while (end < ps->len && ps->text[end] != '"')
        end += ps->text[end] == '\\' ? 2 : 1;
    if (end >= ps->len)
        return fail(ps, start, "unterminated string");

    char *dst = arena_alloc(&ps->nodes, end - start);
    if (!dst)
        return oom(ps);
    size_t n = 0;
    ps->pos = start + 1;
    while (ps->pos < end) {
        unsigned char c = (unsigned char)ps->text[ps->pos];
        if (c == '\\') {
            ps->pos++;
            size_t w = 0;
            if (decode_escape(ps, dst + n, &w))
                return OKV_EINVAL;
            n += w;
        } else if (c < 0x20) {
            return fail(ps, ps->pos, "control character 0x%02x in string (must be escaped)", c);
        } else if (c < 0x80) {
            dst[n++] = (char)c;
            ps->pos++;
        } else {
            size_t k = utf8_len((const unsigned char *)ps->text + ps->pos, end - ps->pos);
            if (!k)
                return fail(ps, ps->pos, "invalid UTF-8 in string");
            memcpy(dst + n, ps->text + ps->pos, k);
            n += k;
            ps->pos += k;
        }
    }
    /* An escape can run past the first pass's guess of the end ("\u" right
     * before the quote); the decoder has checked bounds, the quote must be next. */
    if (ps->pos != end)
        return fail(ps, start, "unterminated string");
    ps->pos = end + 1;
    dst[n] = '\0';
    *out = dst;
    *out_len = n;
    return 0;
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int parse_number(parser *ps, json_node **out)
{
    size_t start = ps->pos;
    bool neg = false, is_float = false;
    if (peek(ps) == '-') {
        neg = true;
        ps->pos++;
    }
    if (!is_digit(peek(ps)))
        return fail_expected(ps, "a digit");
    if (peek(ps) == '0') {
        ps->pos++;
        if (is_digit(peek(ps)))
            return fail(ps, ps->pos - 1, "leading zero in number");
    }
    uint64_t mag = 0;
    bool overflow = false;
    while (is_digit(peek(ps))) {
        unsigned d = (unsigned)(ps->text[ps->pos] - '0');
        if (mag > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            mag = mag * 10 + d;
        ps->pos++;
    }
    if (peek(ps) == '.') {
        is_float = true;
        ps->pos++;
        if (!is_digit(peek(ps)))
            return fail_expected(ps, "a digit after '.'");
        while (is_digit(peek(ps)))
            ps->pos++;
    }
    if (peek(ps) == 'e' || peek(ps) == 'E') {
        is_float = true;
        ps->pos++;
        if (peek(ps) == '+' || peek(ps) == '-')
            ps->pos++;
        if (!is_digit(peek(ps)))
            return fail_expected(ps, "a digit in the exponent");
        while (is_digit(peek(ps)))
            ps->pos++;
    }
    json_node *n = new_node(ps, is_float ? JSON_FLOAT : JSON_INT, start);
    if (!n)
        return oom(ps);
    if (is_float) {
        char buf[64];
        size_t len = ps->pos - start;
        if (len >= sizeof buf)
            return fail(ps, start, "number longer than %zu characters", sizeof buf - 1);
        memcpy(buf, ps->text + start, len);
        buf[len] = '\0';
        n->u.d = strtod(buf, NULL);
        if (!isfinite(n->u.d))
            return fail(ps, start, "number out of range");
    } else {
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (overflow || mag > limit)
            return fail(ps, start, "integer does not fit in 64 bits");
        n->u.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        if (neg && mag == (uint64_t)INT64_MAX + 1)
            n->u.i = INT64_MIN;
    }
    *out = n;
    return 0;
}

static int parse_literal(parser *ps, const char *word, json_type t, json_node **out)
{
    size_t n = strlen(word);
    if (ps->len - ps->pos < n || memcmp(ps->text + ps->pos, word, n) != 0)
        return fail_expected(ps, "a JSON value");
    json_node *node = new_node(ps, t, ps->pos);
    if (!node)
        return oom(ps);
    ps->pos += n;
    *out = node;
    return 0;
}

static int parse_value(parser *ps, json_node **out);

/* Parses '[' ... ']' or '{' ... '}' at ps->pos. */
static int parse_container(parser *ps, json_node **out)
{
    bool is_obj = ps->text[ps->pos] == '{';
    char close = is_obj ? '}' : ']';
    json_node *c = new_node(ps, is_obj ? JSON_OBJECT : JSON_ARRAY, ps->pos);
    if (!c)
        return oom(ps);
    if (++ps->depth > JSON_MAX_DEPTH)
        return fail(ps, ps->pos, "nesting deeper than %d levels", JSON_MAX_DEPTH);
    ps->pos++;
    json_node **tail = &c->u.kids.first;
    skip_ws(ps);
    if (peek(ps) == close) {
        ps->pos++;
        ps->depth--;
        *out = c;
        return 0;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        if (is_obj) {
            skip_ws(ps);
            if (peek(ps) != '"')
                return fail_expected(ps, "a member name string");
            if (parse_string(ps, &key, &key_len))
                return OKV_EINVAL;
            skip_ws(ps);
            if (peek(ps) != ':')
                return fail_expected(ps, "':' after member name");
            ps->pos++;
        }
        json_node *v;
        int rc = parse_value(ps, &v);
        if (rc)
            return rc;
        v->key = key;
        v->key_len = key_len;
        *tail = v;
        tail = &v->next;
        c->u.kids.count++;
        skip_ws(ps);
        int ch = peek(ps);
        if (ch == ',') {
            ps->pos++;
            continue;
        }
        if (ch == close) {
            ps->pos++;
            break;
        }
        return fail_expected(ps, is_obj ? "',' or '}' in object" : "',' or ']' in array");
    }
    ps->depth--;
    *out = c;
    return 0;
}

static int parse_value(parser *ps, json_node **out)
{
    skip_ws(ps);
    int c = peek(ps);
    switch (c) {
    case '{':
    case '[':
        return parse_container(ps, out);
    case '"': {
        json_node *n = new_node(ps, JSON_STRING, ps->pos);
        if (!n)
            return oom(ps);
        if (parse_string(ps, &n->u.str.s, &n->u.str.len))
            return OKV_EINVAL;
        *out = n;
        return 0;
    }
    case 't':
        return parse_literal(ps, "true", JSON_TRUE, out);
    case 'f':
        return parse_literal(ps, "false", JSON_FALSE, out);
    case 'n':
        return parse_literal(ps, "null", JSON_NULL, out);
    default:
        if (c == '-' || is_digit(c))
            return parse_number(ps, out);
        return fail_expected(ps, "a JSON value");
    }
}

static void parser_init(parser *ps, const char *text, size_t len)
{
    ps->text = text;
    ps->len = len;
    ps->pos = 0;
    ps->depth = 0;
    arena_init(&ps->nodes, 16 * 1024);
    ps->err = NULL;
}

/* ---- public ---- */

int json_parse(json_doc **out, const char *text, size_t len, okv_error *err)
{
    *out = NULL;
    json_doc *d = calloc(1, sizeof *d);
    if (!d)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    parser_init(&d->ps, text, len);
    d->ps.err = err;
    int rc = parse_value(&d->ps, &d->root);
    if (!rc) {
        skip_ws(&d->ps);
        if (d->ps.pos != len)
            rc = fail(&d->ps, d->ps.pos, "unexpected text after the JSON value");
    }
    d->ps.err = NULL;
    if (rc) {
        json_doc_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

const json_node *json_doc_root(const json_doc *doc)
{
    return doc->root;
}

void json_doc_free(json_doc *doc)
{
    if (!doc)
        return;
    arena_free(&doc->ps.nodes);
    free(doc);
}

int json_stream_new(json_stream **out, const char *text, size_t len, okv_error *err)
{
    *out = NULL;
    json_stream *s = calloc(1, sizeof *s);
    if (!s)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    parser_init(&s->ps, text, len);
    s->ps.err = err;
    skip_ws(&s->ps);
    if (peek(&s->ps) != '[') {
        int rc = fail_expected(&s->ps, "'[' (a history is one JSON array)");
        json_stream_free(s);
        return rc;
    }
    s->ps.pos++;
    s->ps.depth = 1;
    s->ps.err = NULL;
    s->first = true;
    *out = s;
    return 0;
}

int json_stream_next(json_stream *s, const json_node **elem, okv_error *err)
{
    parser *ps = &s->ps;
    *elem = NULL;
    if (s->broken)
        return okv_error_set(err, OKV_EINVAL, "byte %zu: the history stream already failed", ps->pos);
    if (s->done)
        return 0;
    ps->err = err;
    arena_reset(&ps->nodes);
    skip_ws(ps);
    int rc;
    if (peek(ps) == ']') {
        ps->pos++;
        skip_ws(ps);
        rc = ps->pos == ps->len ? 0 : fail(ps, ps->pos, "unexpected text after the JSON value");
        s->done = rc == 0;
        s->broken = rc != 0;
        ps->err = NULL;
        return rc;
    }
    if (!s->first) {
        if (peek(ps) != ',') {
            rc = fail_expected(ps, "',' or ']' in array");
            ps->err = NULL;
            s->broken = true;
            return rc;
        }
        ps->pos++;
    }
    s->first = false;
    json_node *v;
    rc = parse_value(ps, &v);
    ps->err = NULL;
    if (rc) {
        s->broken = true;
        return rc;
    }
    *elem = v;
    return 1;
}

void json_stream_free(json_stream *s)
{
    if (!s)
        return;
    arena_free(&s->ps.nodes);
    free(s);
}

const json_node *json_member(const json_node *obj, const char *name)
{
    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    size_t n = strlen(name);
    for (const json_node *m = obj->u.kids.first; m; m = m->next)
        if (m->key_len == n && memcmp(m->key, name, n) == 0)
            return m;
    return NULL;
}

const char *json_type_name(json_type t)
{
    switch (t) {
    case JSON_NULL: return "null";
    case JSON_FALSE:
    case JSON_TRUE: return "boolean";
    case JSON_INT: return "integer";
    case JSON_FLOAT: return "number with a fraction or exponent";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    }
    return "?";
}
