/*
 * meta.h — the meta group: the cluster's own, replicated record of its map
 * and tables (DESIGN.md "Cluster map and routing").
 *
 * Raft group 0 (table id CLUSTER_META_TABLE, partition 0) is a partition
 * like any other, placed on the first min(N, 5) nodes (cluster.h). At the
 * first boot of a cluster its leader writes three rows through Raft, each
 * only if absent (so two bootstrappers, or a restarted one, never
 * overwrite each other):
 *
 *   "map"      the cluster map text (cluster_encode)
 *   "catalog"  the tables and partition counts (catalog_encode)
 *   "epoch"    "1" — written last, so its presence means the record is whole
 *
 * Every node holding a meta replica compares the record with what its own
 * data dir says, and serves client requests only once they match: a node
 * whose tables were created with another partition count would hash keys
 * to other partitions than its peers and misplace data. Until its replica
 * has applied the record (first boot: until the meta group has a majority;
 * later boots: at once, the record is on its disk) it answers UNAVAILABLE;
 * on a mismatch it logs both sides and stops with exit status 1, as a data
 * dir of another cluster does.
 *
 * The map is static today: the record is written once. Membership changes,
 * when they come, are writes to this group (a new map with the next epoch).
 */
#ifndef OKV_SERVER_META_H
#define OKV_SERVER_META_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define META_GROUP 0u

struct node;
typedef struct meta meta;

enum meta_state {
    META_NOT_HELD = 0,   /* this node holds no meta replica */
    META_WAITING,        /* the record is not (yet) applied here */
    META_OK,             /* the record matches this node's map and tables */
    META_MISMATCH        /* it does not: the node is stopping */
};

/* Starts watching (and, as its leader, bootstrapping) the meta group when
 * this node holds a replica. Call after raftstore_start. */
int meta_new(meta **out, struct node *n, okv_error *err);

/* Stops the watcher; call before raftstore_free. Accepts NULL. */
void meta_free(meta *m);

/* The state, the record's epoch (0 until applied here) and a human
 * sentence about it (detail, cap bytes). Accepts NULL (META_NOT_HELD). */
enum meta_state meta_status(meta *m, uint64_t *epoch, char *detail, size_t cap);

/* 1 when client requests must be refused (META_WAITING, META_MISMATCH);
 * cheap, for the request path. Accepts NULL. */
int meta_refuses(const meta *m);

const char *meta_state_name(enum meta_state s);

#endif
