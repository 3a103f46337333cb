/*
 * shell_lexer.h — splits one line of shell input into commands and arguments.
 *
 * Pure: no I/O, no globals, so it is unit-tested on its own
 * (tests/shell/test_shell_lexer.c).
 *
 * Syntax (docs/shell.md is the user-facing version):
 *  - Arguments are separated by spaces or tabs.
 *  - A double-quoted part may hold any bytes; inside it \" \\ \n \t \r \0 and
 *    \xNN (exactly two hex digits) are escapes, any other backslash is an error.
 *    This is how binary keys and values are typed.
 *  - Outside quotes every byte is literal (a backslash too), so paths like
 *    a\b need no quoting. Quoted and bare parts that touch form one argument:
 *    ab"c d" is the argument `abc d`.
 *  - `;` outside quotes ends a command, so one line may hold several.
 *  - `#` at the start of an argument (outside quotes) starts a comment that
 *    runs to the end of the line.
 *  - Empty commands (blank line, `;;`) are dropped.
 */
#ifndef OKV_SHELL_LEXER_H
#define OKV_SHELL_LEXER_H

#include <stddef.h>

/* One argument. `bytes` is NUL-terminated for convenience but may contain NUL
 * bytes itself, so always use `len`. */
typedef struct shell_arg {
    char *bytes;
    size_t len;
    int quoted;   /* any part was quoted: "--limit" in quotes is data, not a flag */
} shell_arg;

typedef struct shell_command {
    shell_arg *args;
    size_t argc;  /* >= 1: empty commands are never produced */
} shell_command;

typedef struct shell_line {
    shell_command *cmds;
    size_t count;
} shell_line;

#define SHELL_LINE_INIT { NULL, 0 }

enum shell_lex_code {
    SHELL_LEX_OK = 0,
    SHELL_LEX_EUNTERMINATED = -1, /* a double quote was never closed */
    SHELL_LEX_EBADESCAPE = -2,    /* unknown \c or a \x without two hex digits */
    SHELL_LEX_ENOMEM = -3
};

typedef struct shell_lex_error {
    size_t pos;        /* byte offset in the input where the problem starts */
    char msg[128];     /* e.g. "bad escape \x4g at column 12: \x needs two hex digits" */
} shell_lex_error;

/*
 * Tokenizes text[0..len). On success *out holds the commands (caller frees them
 * with shell_line_clear). On failure *out is left empty, err (may be NULL)
 * explains, and a negative SHELL_LEX_* code is returned.
 * Precondition: *out is empty (SHELL_LINE_INIT or cleared).
 */
int shell_lex(const char *text, size_t len, shell_line *out, shell_lex_error *err);

/* Frees everything shell_lex put in l and leaves it empty. Accepts NULL. */
void shell_line_clear(shell_line *l);

#endif
