/*
 * meta.h — the meta group: the cluster's own, replicated record of its map
 * and tables (DESIGN.md "Cluster map and routing").
 *
 * Raft group 0 (table id CLUSTER_META_TABLE, partition 0) is a partition
 * like any other, placed on the first min(N, 5) nodes (cluster.h). At the
 * first boot of a cluster its leader writes four rows through Raft, each
 * only if absent (so two bootstrappers, or a restarted one, never
 * overwrite each other):
 *
 *   "map"      the cluster map text (cluster_encode)
 *   "catalog"  the tables and partition counts (catalog_encode)
 *   "timing"   what leader leases depend on, as the leader runs:
 *              "tick-ms=100 election-ticks=10 read-mode=lease"
 *              (read-mode is "lease" or "read-index")
 *   "epoch"    "1" — written last, so its presence means the record is whole
 *
 * Every node holding a meta replica compares the record with what its own
 * data dir and settings say, and serves client requests only once they
 * match:
 *
 * 1. Tables: a node whose tables were created with another partition count
 *    would hash keys to other partitions than its peers and misplace data.
 * 2. Timing: a leader's lease lasts 0.9 x (election ticks - 1) x its tick
 *    and is safe only because every follower waits a full election timeout
 *    of its own ticks before voting, and (in lease mode) a restarted node
 *    keeps quiet for one (raftstore_config.lease_reads). A node with
 *    another --raft-tick-ms, election ticks or --read-mode breaks that
 *    without any error, so it must not run.
 *
 * Until its replica has applied the record (first boot: until the meta
 * group has a majority) it answers UNAVAILABLE; on a mismatch it logs both
 * sides and stops with exit status 1, as a data dir of another cluster
 * does. On later boots the record is on its disk and meta_new checks it
 * before Raft starts, so a node restarted with other timing is refused
 * before it can cast a single vote. (At a node's first boot the record
 * must come through Raft: until it is applied, a few heartbeats, the node
 * takes part in Raft with its own timing.)
 *
 * A record written before the timing row existed (epoch present, no
 * "timing") is completed: the meta group's leader writes its own timing,
 * put-if-absent, and every node then checks against that row. Until then
 * the node serves, as before.
 *
 * Nodes that hold no meta replica (ids past the first 5) have no copy of
 * the record to read and are not checked.
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

/* The settings leader leases depend on (raftstore_config). */
typedef struct meta_timing {
    int tick_ms;          /* --raft-tick-ms */
    int election_ticks;   /* raftstore_config.election_ticks (no flag) */
    int lease_reads;      /* --read-mode: 1 lease, 0 read-index */
} meta_timing;

/* Checks this node against the record already applied on its disk, if it
 * holds a meta replica and the record is there. Call after the store is
 * opened (raftstore_new) and before raftstore_start and before the server
 * takes client calls (n->meta must be set by then). OKV_EINVAL, with both
 * sides and the flag to change in err, when the node must not run: the
 * caller exits with status 1. timing is copied. */
int meta_new(meta **out, struct node *n, const meta_timing *timing, okv_error *err);

/* Starts watching (and, as its leader, bootstrapping or completing) the
 * record when it is not settled yet. Call after raftstore_start. */
int meta_start(meta *m, okv_error *err);

/* Stops the watcher; call before raftstore_free. Accepts NULL. */
void meta_free(meta *m);

/* The state, the record's epoch (0 until applied here) and a human
 * sentence about it (detail, cap bytes). Accepts NULL (META_NOT_HELD). */
enum meta_state meta_status(meta *m, uint64_t *epoch, char *detail, size_t cap);

/* 1 when client requests must be refused (META_WAITING, META_MISMATCH);
 * cheap, for the request path. Accepts NULL. */
int meta_refuses(const meta *m);

const char *meta_state_name(enum meta_state s);

/* Reads row of this node's meta replica: *out malloc'd, NULL when absent;
 * *version its version (0 when absent). For the rows kept beside the
 * record (users: server/auth/). */
int meta_row_get(struct node *n, const char *row, uint8_t **out, size_t *len,
                 uint64_t *version);

/* The names of up to max rows starting with prefix, in order: *names and
 * each name malloc'd (NUL-terminated), the caller frees. */
int meta_rows_list(struct node *n, const char *prefix, size_t max, char ***names,
                   size_t *count);

/* A row the meta group's leader writes, if absent, along with the record
 * at bootstrap, or later if the record is older (the first admin user,
 * --auth-admin). Call between meta_new and meta_start; both are copied. */
int meta_set_first_row(meta *m, const char *row, const char *value);

#endif
