/*
 * shell_output.h — how the shell shows bytes to humans and to programs.
 *
 * Two renderings of arbitrary bytes (keys and values are binary):
 *  - Human: verbatim when the text is not empty and every byte is printable
 *    ASCII other than '"'; otherwise a double-quoted string in the shell's own
 *    input syntax (\" \\ \n \t \r \xNN), which pastes back as an argument
 *    holding exactly those bytes.
 *  - JSON: a JSON string in which byte b becomes code point U+00bb. Printable
 *    ASCII stays as it is; " and \ are escaped; every other byte is \u00XX.
 *    Decoding the string and encoding it as Latin-1 gives the exact bytes back
 *    (Python: json.loads(line)["value"].encode("latin-1")).
 *
 * The JSON writer emits one object per command result on one line; it only
 * tracks where commas go, and never fails (stdio reports write errors).
 */
#ifndef OKV_SHELL_OUTPUT_H
#define OKV_SHELL_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Human rendering of bytes as a new NUL-terminated string (caller frees), or
 * NULL when out of memory. */
char *shell_out_human(const void *bytes, size_t len);

/* Writes the human rendering to f. */
void shell_out_human_write(FILE *f, const void *bytes, size_t len);

/* Writes bytes to f as a JSON string literal, quotes included. */
void shell_out_json_bytes(FILE *f, const void *bytes, size_t len);

#define SHELL_JSON_MAX_DEPTH 8

/* A streaming writer for one JSON value. */
typedef struct shell_json {
    FILE *f;
    int depth;
    int need_comma[SHELL_JSON_MAX_DEPTH];
} shell_json;

/* Starts the top-level object. */
void shell_json_begin(shell_json *j, FILE *f);
/* Closes the top-level object and ends the line. */
void shell_json_end(shell_json *j);

/* Members. `key` is NULL for an array element. */
void shell_json_bytes(shell_json *j, const char *key, const void *bytes, size_t len);
void shell_json_str(shell_json *j, const char *key, const char *s); /* s NULL: null */
void shell_json_u64(shell_json *j, const char *key, uint64_t v);
void shell_json_int(shell_json *j, const char *key, long long v);
void shell_json_bool(shell_json *j, const char *key, int v);
void shell_json_object_begin(shell_json *j, const char *key);
void shell_json_object_end(shell_json *j);
void shell_json_array_begin(shell_json *j, const char *key);
void shell_json_array_end(shell_json *j);

#endif
