/*
 * audit_format.c — an audit record as one line of JSON in valid UTF-8,
 * whatever bytes its fields hold (audit.h "Escaping").
 */
#include "audit_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"

/* Worst case per input byte: \u00XX (6 bytes) for a control byte, \uFFFD
 * (6) for an invalid one; a well-formed sequence is copied as it is. */
#define ESC_PER_BYTE 6
/* "...[+N bytes]" for a cut field. */
#define CUT_NOTE_MAX 40

size_t audit_format_max_escaped(size_t n)
{
    if (n > AUDIT_FIELD_MAX)
        n = AUDIT_FIELD_MAX;
    return n * ESC_PER_BYTE + CUT_NOTE_MAX + 2;   /* + the quotes */
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0
 * if s does not start one: overlong forms, surrogates (U+D800..U+DFFF) and
 * code points above U+10FFFF are not well-formed (RFC 3629, section 4). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;   /* the second byte's range */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;   /* overlong below U+0800 */
        else if (c == 0xED)
            hi = 0x9F;   /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;   /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F;   /* above U+10FFFF */
    } else {
        return 0;        /* ASCII is handled by the caller; 0x80..0xC1, 0xF5.. never start one */
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

static size_t put(char *buf, size_t len, const char *text)
{
    size_t n = strlen(text);
    memcpy(buf + len, text, n);
    return len + n;
}

size_t audit_format_json_string(char *buf, size_t len, const char *str)
{
    if (!str)
        return put(buf, len, "null");
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str), cut = 0;
    if (n > AUDIT_FIELD_MAX) {
        cut = n - AUDIT_FIELD_MAX;
        n = AUDIT_FIELD_MAX;
    }
    buf[len++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            /* A sequence the cut went through counts as invalid: its
             * bytes become U+FFFD, and the note says bytes were cut. */
            size_t k = utf8_len(s + i, n - i);
            if (k) {
                memcpy(buf + len, s + i, k);
                len += k;
                i += k;
            } else {
                len = put(buf, len, "\\uFFFD");
                i++;
            }
            continue;
        }
        i++;
        switch (c) {
        case '"': len = put(buf, len, "\\\""); break;
        case '\\': len = put(buf, len, "\\\\"); break;
        case '\b': len = put(buf, len, "\\b"); break;
        case '\f': len = put(buf, len, "\\f"); break;
        case '\n': len = put(buf, len, "\\n"); break;
        case '\r': len = put(buf, len, "\\r"); break;
        case '\t': len = put(buf, len, "\\t"); break;
        default:
            if (c < 0x20 || c == 0x7F)
                len += (size_t)sprintf(buf + len, "\\u%04x", c);
            else
                buf[len++] = (char)c;
        }
    }
    if (cut)
        len += (size_t)sprintf(buf + len, "...[+%zu bytes]", cut);
    buf[len++] = '"';
    return len;
}

char *audit_format_line(int64_t unix_ms, const char *who, const char *from, const char *what,
                        const char *result, size_t *len)
{
    const char *fields[4] = { who, from, what, result };
    static const char *const names[4] = { ",\"who\":", ",\"from\":", ",\"what\":",
                                          ",\"result\":" };
    size_t cap = 64;   /* {"time":"...Z"} and the newline */
    for (int i = 0; i < 4; i++)
        cap += strlen(names[i]) + (fields[i] ? audit_format_max_escaped(strlen(fields[i])) : 4);
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = (size_t)snprintf(buf, cap, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                tm.tm_min, tm.tm_sec, (int)(unix_ms % 1000));
    for (int i = 0; i < 4; i++) {
        n = put(buf, n, names[i]);
        n = audit_format_json_string(buf, n, fields[i]);
    }
    buf[n++] = '}';
    buf[n++] = '\n';
    buf[n] = '\0';
    *len = n;
    return buf;
}
