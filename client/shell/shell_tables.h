/*
 * shell_tables.h — a cache of the cluster's table names for tab completion.
 *
 * Completion runs on every Tab press, so it must not ask the server each time
 * (nor hang for a whole call timeout when the server is down): names are
 * fetched once, refreshed by the `tables` and `status` commands, and a failed
 * fetch is retried only after SHELL_TABLES_RETRY_S seconds.
 */
#ifndef OKV_SHELL_TABLES_H
#define OKV_SHELL_TABLES_H

#include "shell.h"

#define SHELL_TABLES_RETRY_S 10.0
/* Completion waits at most this long for a status reply. */
#define SHELL_TABLES_FETCH_TIMEOUT_MS 1000

/* Replaces the cache with the tables listed in s. */
void shell_tables_update(shell_tables *t, const okv_status *s);

/* Returns the cache, first fetching from the server if it was never fetched
 * or the last attempt failed long enough ago. Never fails: an unreachable
 * server leaves the cache empty. */
const shell_tables *shell_tables_get(shell_ctx *ctx);

/* Frees the names. Accepts an empty cache. */
void shell_tables_clear(shell_tables *t);

#endif
