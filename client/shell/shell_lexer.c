/*
 * shell_lexer.c — the tokenizer behind shell_lexer.h.
 *
 * One pass over the input with a growable buffer for the argument being built.
 * An argument "exists" as soon as a bare byte or a quote opens it, which is how
 * "" yields an empty argument (a put of an empty value) while plain spaces yield
 * none.
 */
#include "shell_lexer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Growable byte buffer for the current argument. */
typedef struct buf {
    char *data;
    size_t len, cap;
} buf;

/* Lexer state shared by the helpers below. */
typedef struct lexer {
    buf cur;
    int in_arg;          /* an argument has been opened (maybe still empty) */
    int cur_quoted;
    shell_command cmd;   /* the command being built */
    size_t cmd_cap;
    shell_line *out;
    size_t line_cap;
} lexer;

static int buf_push(buf *b, char c)
{
    if (b->len + 1 >= b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        char *p = realloc(b->data, cap);
        if (!p)
            return SHELL_LEX_ENOMEM;
        b->data = p;
        b->cap = cap;
    }
    b->data[b->len++] = c;
    return SHELL_LEX_OK;
}

static void command_clear(shell_command *c)
{
    for (size_t i = 0; i < c->argc; i++)
        free(c->args[i].bytes);
    free(c->args);
    c->args = NULL;
    c->argc = 0;
}

void shell_line_clear(shell_line *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        command_clear(&l->cmds[i]);
    free(l->cmds);
    l->cmds = NULL;
    l->count = 0;
}

/* Moves the current argument (if one was opened) into the current command. */
static int end_arg(lexer *lx)
{
    if (!lx->in_arg)
        return SHELL_LEX_OK;
    if (lx->cmd.argc == lx->cmd_cap) {
        size_t cap = lx->cmd_cap ? lx->cmd_cap * 2 : 4;
        shell_arg *p = realloc(lx->cmd.args, cap * sizeof *p);
        if (!p)
            return SHELL_LEX_ENOMEM;
        lx->cmd.args = p;
        lx->cmd_cap = cap;
    }
    /* Terminate so callers may treat plain-text arguments as C strings. */
    if (buf_push(&lx->cur, '\0') != SHELL_LEX_OK)
        return SHELL_LEX_ENOMEM;
    shell_arg *a = &lx->cmd.args[lx->cmd.argc++];
    a->bytes = lx->cur.data;
    a->len = lx->cur.len - 1;
    a->quoted = lx->cur_quoted;
    lx->cur = (buf){ NULL, 0, 0 };
    lx->in_arg = 0;
    lx->cur_quoted = 0;
    return SHELL_LEX_OK;
}

/* Moves the current command (if it has arguments) into the line. */
static int end_command(lexer *lx)
{
    int rc = end_arg(lx);
    if (rc != SHELL_LEX_OK || lx->cmd.argc == 0)
        return rc;
    if (lx->out->count == lx->line_cap) {
        size_t cap = lx->line_cap ? lx->line_cap * 2 : 2;
        shell_command *p = realloc(lx->out->cmds, cap * sizeof *p);
        if (!p)
            return SHELL_LEX_ENOMEM;
        lx->out->cmds = p;
        lx->line_cap = cap;
    }
    lx->out->cmds[lx->out->count++] = lx->cmd;
    lx->cmd = (shell_command){ NULL, 0 };
    lx->cmd_cap = 0;
    return SHELL_LEX_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Records an error (err may be NULL) and returns code. */
static int fail(shell_lex_error *err, int code, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(shell_lex_error *err, int code, size_t pos, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->pos = pos;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/*
 * Decodes the escape whose backslash is at text[*i] (inside quotes) and appends
 * the byte. On return *i is the index of the escape's last byte.
 */
static int lex_escape(lexer *lx, const char *text, size_t len, size_t *i, shell_lex_error *err)
{
    size_t at = *i;
    if (at + 1 >= len)
        return fail(err, SHELL_LEX_EUNTERMINATED, at,
                    "unterminated string: backslash at column %zu ends the line", at + 1);
    char e = text[at + 1];
    char c;
    switch (e) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case 'n': c = '\n'; break;
    case 't': c = '\t'; break;
    case 'r': c = '\r'; break;
    case '0': c = '\0'; break;
    case 'x': {
        int hi = at + 2 < len ? hexval(text[at + 2]) : -1;
        int lo = at + 3 < len ? hexval(text[at + 3]) : -1;
        if (hi < 0 || lo < 0)
            return fail(err, SHELL_LEX_EBADESCAPE, at,
                        "bad escape at column %zu: \\x needs exactly two hex digits", at + 1);
        c = (char)(unsigned char)(hi * 16 + lo);
        *i = at + 3;
        return buf_push(&lx->cur, c);
    }
    default: {
        char shown[8];
        unsigned char u = (unsigned char)e;
        if (u >= 0x20 && u < 0x7f)
            snprintf(shown, sizeof shown, "\\%c", e);
        else
            snprintf(shown, sizeof shown, "\\x%02x", u);
        return fail(err, SHELL_LEX_EBADESCAPE, at,
                    "unknown escape %s at column %zu (use \\\" \\\\ \\n \\t \\r \\0 or \\xNN)",
                    shown, at + 1);
    }
    }
    *i = at + 1;
    return buf_push(&lx->cur, c);
}

/* The main loop; on error the caller frees whatever was built. */
static int lex_all(lexer *lx, const char *text, size_t len, shell_lex_error *err)
{
    int rc = SHELL_LEX_OK;
    int in_quote = 0;
    size_t quote_start = 0;

    for (size_t i = 0; i < len && rc == SHELL_LEX_OK; i++) {
        char c = text[i];
        if (in_quote) {
            if (c == '"')
                in_quote = 0;
            else if (c == '\\')
                rc = lex_escape(lx, text, len, &i, err);
            else
                rc = buf_push(&lx->cur, c);
            continue;
        }
        switch (c) {
        case ' ': case '\t': case '\n': case '\r':
            rc = end_arg(lx);
            break;
        case ';':
            rc = end_command(lx);
            break;
        case '"':
            in_quote = 1;
            quote_start = i;
            lx->in_arg = 1;
            lx->cur_quoted = 1;
            break;
        case '#':
            if (!lx->in_arg)
                return end_command(lx);   /* comment: ignore the rest */
            rc = buf_push(&lx->cur, c);
            break;
        default:
            lx->in_arg = 1;
            rc = buf_push(&lx->cur, c);
            break;
        }
    }
    if (rc != SHELL_LEX_OK)
        return rc;
    if (in_quote)
        return fail(err, SHELL_LEX_EUNTERMINATED, quote_start,
                    "unterminated string: the quote at column %zu is never closed",
                    quote_start + 1);
    return end_command(lx);
}

int shell_lex(const char *text, size_t len, shell_line *out, shell_lex_error *err)
{
    lexer lx;
    memset(&lx, 0, sizeof lx);
    lx.out = out;
    if (err) {
        err->pos = 0;
        err->msg[0] = '\0';
    }
    int rc = lex_all(&lx, text, len, err);
    if (rc != SHELL_LEX_OK) {
        free(lx.cur.data);
        command_clear(&lx.cmd);
        shell_line_clear(out);
        if (rc == SHELL_LEX_ENOMEM && err)
            snprintf(err->msg, sizeof err->msg, "out of memory");
    }
    return rc;
}
