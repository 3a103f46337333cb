/*
 * shell_cluster.h — turns what each node of a cluster says about its own
 * replicas into one row per partition: who leads it, in which term, and how
 * far each replica's applied index trails the leader's commit index.
 *
 * Pure: no I/O, no liborderkv calls (only its plain okv_replica_info struct),
 * so it is unit-tested on hand-made input. shell_gather.h fills the input from
 * real status replies.
 *
 * Rules (numbered for the tests):
 *  1. A row exists for every partition the catalog lists (0..partitions-1 of
 *     each table) and for every (table, partition) some node reported, even if
 *     the catalog does not name it. Rows are ordered by table id, then partition.
 *  2. Only nodes that answered (up) contribute replicas. A node that reports the
 *     same partition twice contributes the first report only.
 *  3. The leader is the replica whose role is "leader" with the highest term; a
 *     stale leader of an older term (a deposed node that has not heard yet)
 *     keeps its role in its own replica entry but does not lead the row. A row
 *     with no such replica has no leader (has_leader 0, leader 0).
 *  4. The row's term is the leader's term, or with no leader the highest term
 *     any replica reported.
 *  5. lag = leader's commit - that replica's applied, clamped at 0 (the nodes
 *     are asked at slightly different moments). Without a leader lag is unknown.
 *  6. Replicas within a row are ordered by node id.
 */
#ifndef OKV_SHELL_CLUSTER_H
#define OKV_SHELL_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "orderkv.h"

/* One node of the cluster map and what it answered. */
typedef struct shell_cluster_node {
    uint64_t id;
    const char *address;
    int up;                              /* it answered the status request */
    const okv_replica_info *replicas;    /* its replicas (may be NULL if none) */
    size_t replica_count;
} shell_cluster_node;

/* One table of the catalog. */
typedef struct shell_cluster_table {
    uint32_t id;
    const char *name;
    uint32_t partitions;
} shell_cluster_table;

typedef struct shell_cluster_input {
    const shell_cluster_node *nodes;
    size_t node_count;
    const shell_cluster_table *tables;
    size_t table_count;
} shell_cluster_input;

/* One replica of a partition, as its node reported it. */
typedef struct shell_replica_row {
    uint64_t node;
    const char *role;         /* borrowed from the input */
    uint64_t term;
    uint64_t leader_seen;     /* the leader this replica believes in, 0 if none */
    uint64_t commit;
    uint64_t applied;
    uint64_t last_index;
    int lag_known;            /* 0 when the row has no leader (rule 5) */
    uint64_t lag;
} shell_replica_row;

/* One partition. */
typedef struct shell_partition_row {
    uint32_t table_id;
    const char *table;        /* borrowed from the input; NULL if not in the catalog */
    uint32_t partition;
    int has_leader;
    uint64_t leader;          /* node id; 0 without a leader */
    uint64_t term;
    uint64_t leader_commit;   /* meaningful only with a leader */
    shell_replica_row *replicas;
    size_t replica_count;
} shell_partition_row;

typedef struct shell_cluster_view {
    shell_partition_row *rows;
    size_t count;
    size_t leaderless;        /* rows without a leader */
} shell_cluster_view;

/*
 * Builds the per-partition view of `in` (rules above). On success *out is the
 * caller's, freed with shell_cluster_view_free; it borrows strings from `in`,
 * which must outlive it. Returns 0, or -1 when out of memory (*out NULL).
 */
int shell_cluster_aggregate(const shell_cluster_input *in, shell_cluster_view **out);

/* Frees a view. Accepts NULL. */
void shell_cluster_view_free(shell_cluster_view *v);

/* The catalog name of table_id in `in`, or NULL. */
const char *shell_cluster_table_name(const shell_cluster_input *in, uint32_t table_id);

#endif
