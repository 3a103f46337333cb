/*
 * memstore.h — in-memory implementation of raft_storage_ops for the
 * simulator, the unit tests and the benchmark.
 *
 * It models exactly what a node's RocksDB column family will hold: the hard
 * state, the latest snapshot (metadata + opaque data), and the log entries
 * after a compaction point. A simulated crash frees the raft node but keeps
 * the memstore: whatever was written here survived, everything else is lost.
 *
 * Layout: entries[k] has index off_index + 1 + k; (off_index, off_term) is
 * the compaction point (term(off_index) stays answerable, like etcd's dummy
 * entry). The snapshot index is always >= off_index.
 */
#ifndef ORDERKV_SIM_MEMSTORE_H
#define ORDERKV_SIM_MEMSTORE_H

#include "raft.h"

struct memstore {
    struct raft_hard_state hs;
    struct raft_snapshot snap; /* meta.conf is the boot conf at index 0 */
    uint64_t off_index;
    uint64_t off_term;
    struct raft_conf off_conf; /* configuration as of off_index */
    struct raft_entry *ents;
    size_t n;
    size_t cap;
    /* Fault injection for unit tests: fail the next snapshot() call with
     * RAFT_ERR_SNAPSHOT_TEMP this many times. */
    int snapshot_temp_failures;
};

extern const struct raft_storage_ops memstore_ops;

/* A brand-new replica: empty log, configuration `conf` (n_voters may be 0
 * for a node that will join as a learner). */
void memstore_init(struct memstore *ms, const struct raft_conf *conf);
void memstore_close(struct memstore *ms);

uint64_t memstore_last_index(const struct memstore *ms);
int memstore_term(const struct memstore *ms, uint64_t i, uint64_t *term);

/* Ready handling, in the order the contract requires. */
void memstore_install_snapshot(struct memstore *ms,
                               const struct raft_snapshot *snap);
/* Drops stored entries >= ents[0].index, then appends copies. */
void memstore_append(struct memstore *ms, const struct raft_entry *ents,
                     size_t n);
void memstore_set_hard_state(struct memstore *ms,
                             const struct raft_hard_state *hs);

/* Host-side snapshot: records a snapshot of the applied state at `index`
 * (<= last, > the current snapshot) and first compacts the log up to the
 * previous snapshot, so the entries between the two stay readable (a
 * follower slightly behind still gets entries, one far behind a snapshot). */
void memstore_create_snapshot(struct memstore *ms, uint64_t index,
                              const struct raft_conf *conf,
                              const void *data, uint64_t len);
/* Drops every entry up to the current snapshot's index. */
void memstore_compact_to_snapshot(struct memstore *ms);

#endif
