/*
 * shell_gather.c — one status call per cluster node, in parallel
 * (shell_gather.h).
 */
#include "shell_gather.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One node's ask, run on its own thread. */
typedef struct ask {
    okv_client *client;
    const char *address;
    int timeout_ms;
    okv_status *status;
    int rc;
    char *error;
} ask;

static void *ask_run(void *arg)
{
    ask *a = arg;
    a->rc = okv_status_get_at(a->client, a->address, &a->status, a->timeout_ms);
    /* okv_errmsg is per thread: read it here, on the thread that failed. */
    if (a->rc != OKV_OK)
        a->error = strdup(okv_errmsg(a->client));
    return NULL;
}

static int ask_all(ask *asks, size_t n)
{
    pthread_t *th = calloc(n ? n : 1, sizeof *th);
    int *started = calloc(n ? n : 1, sizeof *started);
    if (!th || !started) {
        free(th);
        free(started);
        return OKV_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        started[i] = pthread_create(&th[i], NULL, ask_run, &asks[i]) == 0;
    for (size_t i = 0; i < n; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            ask_run(&asks[i]);   /* no thread to spare: ask inline */
    }
    free(th);
    free(started);
    return OKV_OK;
}

/* Copies node i's replica list into g (the aggregation input). */
static int take_replicas(shell_gather *g, size_t i)
{
    const okv_status *s = g->status[i];
    size_t n = okv_status_replica_count(s);
    g->replicas[i] = calloc(n ? n : 1, sizeof *g->replicas[i]);
    if (!g->replicas[i])
        return OKV_ENOMEM;
    size_t m = 0;
    for (size_t j = 0; j < n; j++)
        if (okv_status_replica(s, j, &g->replicas[i][m]) == OKV_OK)
            m++;
    g->nodes[i].replicas = g->replicas[i];
    g->nodes[i].replica_count = m;
    return OKV_OK;
}

static int alloc_arrays(shell_gather *g, size_t tables)
{
    size_t n = g->node_count ? g->node_count : 1;
    g->nodes = calloc(n, sizeof *g->nodes);
    g->status = calloc(n, sizeof *g->status);
    g->rc = calloc(n, sizeof *g->rc);
    g->error = calloc(n, sizeof *g->error);
    g->replicas = calloc(n, sizeof *g->replicas);
    g->tables = calloc(tables ? tables : 1, sizeof *g->tables);
    return g->nodes && g->status && g->rc && g->error && g->replicas && g->tables ? OKV_OK
                                                                                  : OKV_ENOMEM;
}

static int gather_nodes(shell_gather *g, okv_client *c, int timeout_ms)
{
    const okv_status *s = g->first;
    size_t nt = okv_status_table_count(s);
    g->node_count = okv_status_node_count(s);
    if (alloc_arrays(g, nt) != OKV_OK)
        return OKV_ENOMEM;
    for (size_t t = 0; t < nt; t++)
        g->tables[t] = (shell_cluster_table){ okv_status_table_id(s, t),
                                              okv_status_table_name(s, t),
                                              okv_status_table_partitions(s, t) };
    ask *asks = calloc(g->node_count ? g->node_count : 1, sizeof *asks);
    if (!asks)
        return OKV_ENOMEM;
    for (size_t i = 0; i < g->node_count; i++) {
        g->nodes[i].id = okv_status_node_id_at(s, i);
        g->nodes[i].address = okv_status_node_address_at(s, i);
        asks[i] = (ask){ c, g->nodes[i].address, timeout_ms, NULL, OKV_OK, NULL };
    }
    int rc = ask_all(asks, g->node_count);
    for (size_t i = 0; i < g->node_count; i++) {
        g->status[i] = asks[i].status;
        g->rc[i] = asks[i].rc;
        g->error[i] = asks[i].error;
        g->nodes[i].up = asks[i].rc == OKV_OK && asks[i].status;
        if (rc == OKV_OK && g->nodes[i].up)
            rc = take_replicas(g, i);
    }
    free(asks);
    g->input = (shell_cluster_input){ g->nodes, g->node_count, g->tables, nt };
    return rc;
}

int shell_gather_run(okv_client *c, int timeout_ms, shell_gather **out)
{
    *out = NULL;
    shell_gather *g = calloc(1, sizeof *g);
    if (!g)
        return OKV_ENOMEM;
    int rc = okv_status_get(c, &g->first, timeout_ms);
    if (rc == OKV_OK) {
        g->single = okv_status_cluster_id(g->first) == 0;
        if (!g->single)
            rc = gather_nodes(g, c, timeout_ms);
    }
    if (rc != OKV_OK) {
        shell_gather_free(g);
        return rc;
    }
    *out = g;
    return OKV_OK;
}

size_t shell_gather_find_node(const shell_gather *g, uint64_t id)
{
    for (size_t i = 0; i < g->node_count; i++)
        if (g->nodes[i].id == id)
            return i;
    return (size_t)-1;
}

size_t shell_gather_find_table(const shell_gather *g, const char *name)
{
    for (size_t i = 0; i < okv_status_table_count(g->first); i++)
        if (strcmp(okv_status_table_name(g->first, i), name) == 0)
            return i;
    return (size_t)-1;
}

void shell_gather_free(shell_gather *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->node_count; i++) {
        if (g->status)
            okv_status_free(g->status[i]);
        if (g->error)
            free(g->error[i]);
        if (g->replicas)
            free(g->replicas[i]);
    }
    okv_status_free(g->first);
    free(g->nodes);
    free(g->status);
    free(g->rc);
    free(g->error);
    free(g->replicas);
    free(g->tables);
    free(g);
}
