/*
 * shell_tables.c — the table-name cache behind completion (shell_tables.h).
 */
#include "shell_tables.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void shell_tables_clear(shell_tables *t)
{
    for (size_t i = 0; i < t->count; i++)
        free(t->names[i]);
    free(t->names);
    t->names = NULL;
    t->count = 0;
}

void shell_tables_update(shell_tables *t, const okv_status *s)
{
    size_t n = okv_status_table_count(s);
    char **names = calloc(n ? n : 1, sizeof *names);
    if (!names)
        return;   /* keep the old cache: completion is best effort */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = okv_status_table_name(s, i);
        if (name && (names[kept] = strdup(name)) != NULL)
            kept++;
    }
    shell_tables_clear(t);
    t->names = names;
    t->count = kept;
    t->tried = 1;
    t->fetched_at = now_s();
}

const shell_tables *shell_tables_get(shell_ctx *ctx)
{
    shell_tables *t = &ctx->tables;
    double now = now_s();
    if (t->tried && (t->count > 0 || now - t->fetched_at < SHELL_TABLES_RETRY_S))
        return t;
    okv_status *s = NULL;
    if (okv_status_get(ctx->client, &s, SHELL_TABLES_FETCH_TIMEOUT_MS) == OKV_OK)
        shell_tables_update(t, s);
    okv_status_free(s);
    t->tried = 1;
    t->fetched_at = now;
    return t;
}
