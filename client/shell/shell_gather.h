/*
 * shell_gather.h — asks every node of the cluster map for its status, at the
 * same time, and packs the answers as shell_cluster.h input.
 *
 * The map and the catalog come from the node the client reaches first; then
 * each map address is asked with okv_status_get_at on its own thread, so a
 * cluster with dead nodes costs one timeout, not one per dead node. A node
 * that does not answer within the timeout is down; its error is kept for
 * display.
 */
#ifndef OKV_SHELL_GATHER_H
#define OKV_SHELL_GATHER_H

#include "orderkv.h"
#include "shell_cluster.h"

typedef struct shell_gather {
    okv_status *first;          /* the reached node: map and catalog */
    int single;                 /* cluster id 0: a node running alone */
    size_t node_count;
    shell_cluster_node *nodes;  /* aggregation input, one per map node */
    okv_status **status;        /* per node; NULL when down */
    int *rc;                    /* per node: OKV_OK or why it is down */
    char **error;               /* per node: okv_errmsg text when down, else NULL */
    okv_replica_info **replicas;/* per node: the copied replica list */
    shell_cluster_table *tables;
    shell_cluster_input input;  /* points into the arrays above */
} shell_gather;

/*
 * Gathers the cluster's state. timeout_ms bounds every status call (0: the
 * client's default). In single-node mode only `first` and `single` are
 * filled. Returns OKV_OK with *out the caller's (free with shell_gather_free),
 * or the okv code of the first status call (okv_errmsg(c) has the detail on
 * this thread), or OKV_ENOMEM.
 */
int shell_gather_run(okv_client *c, int timeout_ms, shell_gather **out);

/* Index of node `id` in g's map, or (size_t)-1. */
size_t shell_gather_find_node(const shell_gather *g, uint64_t id);

/* Index of table `name` in g's catalog, or (size_t)-1. */
size_t shell_gather_find_table(const shell_gather *g, const char *name);

/* Frees everything. Accepts NULL. */
void shell_gather_free(shell_gather *g);

#endif
