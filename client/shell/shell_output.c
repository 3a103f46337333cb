/*
 * shell_output.c — byte escaping and the one-line JSON writer (shell_output.h).
 */
#include "shell_output.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int printable(unsigned char c)
{
    return c >= 0x20 && c < 0x7f;
}

/* Verbatim only when it cannot be mistaken for the quoted form: an empty
 * string would be invisible and a '"' would look like the start of one. */
static int needs_quoting(const unsigned char *p, size_t len)
{
    if (len == 0)
        return 1;
    for (size_t i = 0; i < len; i++)
        if (!printable(p[i]) || p[i] == '"')
            return 1;
    return 0;
}

/* Writes the escape for p[i] into dst (at least 5 bytes); returns its length. */
static size_t escape_byte(char *dst, unsigned char c)
{
    switch (c) {
    case '"': memcpy(dst, "\\\"", 2); return 2;
    case '\\': memcpy(dst, "\\\\", 2); return 2;
    case '\n': memcpy(dst, "\\n", 2); return 2;
    case '\t': memcpy(dst, "\\t", 2); return 2;
    case '\r': memcpy(dst, "\\r", 2); return 2;
    default:
        if (printable(c)) {
            dst[0] = (char)c;
            return 1;
        }
        snprintf(dst, 5, "\\x%02x", c);
        return 4;
    }
}

char *shell_out_human(const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    if (!needs_quoting(p, len)) {
        char *s = malloc(len + 1);
        if (s) {
            memcpy(s, p, len);
            s[len] = '\0';
        }
        return s;
    }
    /* Worst case every byte becomes \xNN, plus two quotes and the NUL. */
    if (len > (SIZE_MAX - 3) / 4)
        return NULL;
    char *s = malloc(len * 4 + 3);
    if (!s)
        return NULL;
    size_t n = 0;
    s[n++] = '"';
    for (size_t i = 0; i < len; i++)
        n += escape_byte(s + n, p[i]);
    s[n++] = '"';
    s[n] = '\0';
    return s;
}

void shell_out_human_write(FILE *f, const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    if (!needs_quoting(p, len)) {
        fwrite(p, 1, len, f);
        return;
    }
    char tmp[5];
    fputc('"', f);
    for (size_t i = 0; i < len; i++)
        fwrite(tmp, 1, escape_byte(tmp, p[i]), f);
    fputc('"', f);
}

void shell_out_json_bytes(FILE *f, const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\t': fputs("\\t", f); break;
        case '\r': fputs("\\r", f); break;
        default:
            /* Bytes >= 0x80 too: as U+0080..U+00FF, never as raw UTF-8, so the
             * mapping back to bytes is exact (see the header). */
            if (printable(c))
                fputc(c, f);
            else
                fprintf(f, "\\u%04x", c);
        }
    }
    fputc('"', f);
}

/* ---- the JSON writer ------------------------------------------------------ */

/* Writes the separator and the key (if any) before a member. */
static void member(shell_json *j, const char *key)
{
    assert(j->depth > 0);
    if (j->need_comma[j->depth - 1])
        fputc(',', j->f);
    j->need_comma[j->depth - 1] = 1;
    if (key) {
        shell_out_json_bytes(j->f, key, strlen(key));
        fputc(':', j->f);
    }
}

static void open_level(shell_json *j, char c)
{
    assert(j->depth < SHELL_JSON_MAX_DEPTH);
    fputc(c, j->f);
    j->need_comma[j->depth++] = 0;
}

static void close_level(shell_json *j, char c)
{
    assert(j->depth > 0);
    j->depth--;
    fputc(c, j->f);
}

void shell_json_begin(shell_json *j, FILE *f)
{
    j->f = f;
    j->depth = 0;
    open_level(j, '{');
}

void shell_json_end(shell_json *j)
{
    close_level(j, '}');
    assert(j->depth == 0);
    fputc('\n', j->f);
    /* A reader pipes us line by line; don't make it wait for a full buffer. */
    fflush(j->f);
}

void shell_json_bytes(shell_json *j, const char *key, const void *bytes, size_t len)
{
    member(j, key);
    shell_out_json_bytes(j->f, bytes, len);
}

void shell_json_str(shell_json *j, const char *key, const char *s)
{
    member(j, key);
    if (s)
        shell_out_json_bytes(j->f, s, strlen(s));
    else
        fputs("null", j->f);
}

void shell_json_u64(shell_json *j, const char *key, uint64_t v)
{
    member(j, key);
    fprintf(j->f, "%" PRIu64, v);
}

void shell_json_int(shell_json *j, const char *key, long long v)
{
    member(j, key);
    fprintf(j->f, "%lld", v);
}

void shell_json_bool(shell_json *j, const char *key, int v)
{
    member(j, key);
    fputs(v ? "true" : "false", j->f);
}

void shell_json_object_begin(shell_json *j, const char *key)
{
    member(j, key);
    open_level(j, '{');
}

void shell_json_object_end(shell_json *j)
{
    close_level(j, '}');
}

void shell_json_array_begin(shell_json *j, const char *key)
{
    member(j, key);
    open_level(j, '[');
}

void shell_json_array_end(shell_json *j)
{
    close_level(j, ']');
}
