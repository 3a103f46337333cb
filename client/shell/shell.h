/*
 * shell.h — the state one `orderkv` shell session shares between its parts.
 *
 * main owns the context: it connects, fills it in, hands it to
 * shell_commands.c for every command and to shell_complete.c for completion,
 * and frees it at exit.
 */
#ifndef OKV_SHELL_H
#define OKV_SHELL_H

#include <stdio.h>

#include "orderkv.h"

/* Table names as last seen in a status reply, for tab completion. */
typedef struct shell_tables {
    char **names;
    size_t count;
    int tried;            /* a fetch was attempted at least once */
    double fetched_at;    /* monotonic seconds of the last attempt */
} shell_tables;

typedef struct shell_ctx {
    okv_client *client;
    int timeout_ms;       /* per call; 0 = the client's default */
    int json;             /* one JSON object per result instead of text */
    FILE *out;            /* results */
    FILE *err;            /* human-mode errors (JSON mode reports on out) */
    int quit;             /* set by quit/exit: stop reading commands */
    shell_tables tables;
    okv_tx *tx;           /* an open transaction (begin), or NULL */
    /* --tls-ca, --tls-cert, --tls-key (NULL: not given), for every client
     * the shell opens. */
    const char *tls_ca, *tls_cert, *tls_key;
    /* --user and its password (NULL: not given), likewise. */
    const char *user, *password;
} shell_ctx;

/* The password of --user: the first line of file (NULL: none), else
 * $ORDERKV_PASSWORD, else typed on the terminal (echo off). 0, or -1 after
 * saying on stderr what is missing (shell_users.c). */
int shell_read_password(const char *file, const char *user, char *out, size_t cap);

#endif
