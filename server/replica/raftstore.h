/*
 * raftstore.h — the multi-Raft store: every Raft group (partition replica)
 * on this node, driven by one raft loop thread over the node's one RocksDB.
 *
 * Each loop iteration (DESIGN.md "Node internals"):
 *   1. takes everything other threads queued: peer messages, proposals,
 *      read requests, leadership transfers; steps them into the groups;
 *   2. ticks every group when a tick is due;
 *   3. gathers every group's Ready and persists all of it — entries, hard
 *      states, snapshots — in ONE synced RocksDB batch (group commit across
 *      groups; a snapshot's files are ingested just before, invariant 5),
 *      sending the messages that may go before the sync meanwhile;
 *   4. sends the messages that had to wait for the sync;
 *   5. applies committed entries through the state machine (fsm.h: data and
 *      applied index in one batch), then answers the proposals those
 *      entries settle and the reads whose read index is now applied;
 *   6. advances every group.
 *
 * Invariants:
 *   1. Nothing is acknowledged before a majority has it synced: a proposal
 *      is answered only when its entry applies, and entries apply only once
 *      committed.
 *   2. A proposal is answered from the applied outcome (its entry, matched
 *      by index and term); if another entry took its index, it certainly did
 *      not commit and is answered OKV_EUNAVAILABLE.
 *   3. A failed synced write of the raft log is fatal (raftlog.h R2): the
 *      process aborts and recovers from disk.
 *   5. A snapshot from the leader replaces the partition's state, its
 *      exactly-once records and its applied index all or nothing, also
 *      across a crash: an install marker is synced first, the received SST
 *      files are ingested (each column family atomically), and the log's
 *      snapshot record, the applied index and the marker's deletion go into
 *      the loop's synced batch; a marker found at start is finished before
 *      the group runs (fsm_snapshot.h I1–I3).
 *   6. Snapshots never travel through `net.send`: a RAFT_MSG_SNAPSHOT the
 *      core emits is diverted to `net.send_snapshot` with a RocksDB
 *      snapshot taken between apply batches, so it is exactly the group's
 *      applied state, and the message's metadata is set to that applied
 *      index (the core accepts any index >= the one it asked for).
 *   4. Linearizable reads: a read waits for a read index confirmed by a
 *      quorum (ReadIndex) and for the group's applied index to reach it.
 *
 * Callbacks run on the loop thread and must not block.
 */
#ifndef OKV_SERVER_RAFTSTORE_H
#define OKV_SERVER_RAFTSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "engine.h"
#include "engine_sst.h"
#include "errors.h"
#include "raft.h"

typedef struct raftstore raftstore;

/* The network: send queues one message (copying what it needs); flush is
 * called once per loop iteration after the sends of that iteration.
 * send_snapshot (optional; without it snapshots are dropped and a follower
 * behind the compacted log never catches up) takes a snapshot transfer: m
 * is a RAFT_MSG_SNAPSHOT whose metadata describes the state `snap` pinned
 * (its data is meaningless), and the callee owns snap in every case
 * (engine_snapshot_free). It must not block; a refusal (busy) is fine: the
 * core asks again after an election timeout. */
typedef struct raftstore_net {
    void (*send)(void *ctx, uint64_t to_node, uint64_t group, const struct raft_message *m);
    void (*flush)(void *ctx);
    int (*send_snapshot)(void *ctx, uint64_t to_node, uint64_t group,
                         const struct raft_message *m, engine_snapshot *snap);
    void *ctx;
} raftstore_net;

typedef struct raftstore_config {
    uint64_t node_id;
    engine *e;                   /* borrowed; outlives the store */
    raftstore_net net;
    int tick_ms;                 /* default 100 */
    int election_ticks;          /* default 10 (1 s) */
    int heartbeat_ticks;         /* default 1 */
    uint64_t seed;               /* election timeout randomness; default from node id */
    void (*log)(void *ctx, int level, const char *msg);   /* optional */
    void *log_ctx;
    /* Leader re-spreading (optional): every rebalance_ticks (default 10),
     * a group this node leads is handed to its preferred leader when that
     * node is another one and peer_alive says it is reachable — so leaders
     * spread out again after a node comes back. A leadership won through a
     * transfer (raftstore_transfer_leader, e.g. an admin's transfer-leader)
     * is left where it is for that term. */
    uint64_t (*preferred_leader)(void *ctx, uint64_t group);
    int (*peer_alive)(void *ctx, uint64_t node);
    void *balance_ctx;
    int rebalance_ticks;
    /* Leader leases (1 = on): a leader whose leadership a majority confirmed
     * (a ReadIndex round it started at time T) may read locally until
     * T + lease, lease = 0.9 x (election_ticks - 1) x tick_ms. Safe while
     * clocks' rates differ by less than 10%: followers ignore votes for
     * election_ticks ticks after hearing from it (raft.h check_quorum), and
     * a restarted follower for its first election timeout (boot_quiet). */
    int lease_reads;
    /* Log compaction: once a group has applied snapshot_entries entries
     * past its last snapshot (default 100000, as etcd's snapshot-count;
     * -1 = never), the loop records a snapshot at its applied index (a
     * small descriptor in the raft log: the partition itself stays where it
     * is, fsm_snapshot.h) and drops the log up to log_keep entries before
     * it (default 5000), so a follower only slightly behind still catches
     * up from the log and one further behind gets a snapshot, streamed from
     * a RocksDB snapshot of the leader's state when it is needed. At most
     * one group per tick. */
    int snapshot_entries;
    int log_keep;
    /* The host's interfaces (DESIGN.md "The node under simulation"); all
     * optional. now_ms: a monotonic clock in milliseconds, called from any
     * thread (default CLOCK_MONOTONIC). wake: called (on the pushing
     * thread, outside any lock of the store) whenever work is queued for
     * the loop, for hosts that drive it with raftstore_step_*. fatal: a
     * broken storage invariant or a failed synced write; the default
     * aborts the process (invariant 3). A simulator may end the node there
     * instead of the process; if it returns, the process aborts anyway. */
    uint64_t (*now_ms)(void *ctx);
    void *clock_ctx;
    void (*wake)(void *ctx);
    void *wake_ctx;
    void (*fatal)(void *ctx, const char *what);
    void *fatal_ctx;
    /* Optional observer of every applied entry and its result (on the loop
     * thread, before the answers): the node simulator checks exactly-once
     * and state machine safety with it. */
    void (*applied)(void *ctx, uint64_t group, const struct raft_entry *e,
                    const command_result *r);
    void *applied_ctx;
    /* Optional observer of every proposal settled from an applied entry:
     * the (index, term) it was proposed at and its answer (OKV_OK, or
     * OKV_EUNAVAILABLE: "certainly not applied"), so the simulator can
     * hold the store to that word. */
    void (*answered)(void *ctx, uint64_t group, uint64_t index, uint64_t term, int code);
    void *answered_ctx;
} raftstore_config;

/* Answer to a proposal: code OKV_OK with the applied result in *r (whose own
 * code may be OKV_ECONFLICT etc.), or OKV_ENOTLEADER (leader_hint = the
 * node the group believes leads, 0 if unknown), OKV_EUNAVAILABLE (certainly
 * not applied), OKV_EINVAL (too large), OKV_ENOTFOUND (no such group here). */
typedef void (*raftstore_propose_cb)(void *arg, int code, const command_result *r,
                                     uint64_t leader_hint);

/* Answer to a read request: OKV_OK once the group's applied state reflects
 * every write acknowledged before the request (read it now, from this
 * thread); or OKV_ENOTLEADER / OKV_ENOTFOUND / OKV_EUNAVAILABLE. */
typedef void (*raftstore_read_cb)(void *arg, int code, uint64_t leader_hint);

/* Opens the store: every group this engine holds is loaded (raftlog). */
int raftstore_new(raftstore **out, const raftstore_config *cfg, okv_error *err);

/* Creates a brand-new group with the given voters (bootstrap), before
 * raftstore_start. A group that already exists is left alone (restarts). */
int raftstore_bootstrap_group(raftstore *rs, uint64_t group, const struct raft_conf *voters,
                              okv_error *err);

/* Starts the loop thread. Brand-new groups (term 0: the cluster's first
 * boot) for which `campaign` returns 1 campaign at once (the preferred
 * leader), so leaders spread without waiting for timeouts. A group that
 * has run before never campaigns here: at a restart another leader may
 * hold a lease, and only pre-vote and boot_quiet respect it; the
 * rebalancer hands leadership back once this node has caught up. campaign
 * may be NULL. */
int raftstore_start(raftstore *rs, int (*campaign)(void *ctx, uint64_t group), void *ctx,
                    okv_error *err);

/* The loop as a step function, for a host with no loop thread (the node
 * simulator): raftstore_start_manual does what raftstore_start does but
 * starts no thread. Then, on one thread:
 *   raftstore_step_begin: takes the queued work, ticks if a tick is due,
 *     gathers every group's Ready, sends what may leave before the sync
 *     and stages the synced batch (steps 1-3 up to the write). Returns 1
 *     if raftstore_step_end must follow, 0 if there was nothing to do.
 *   raftstore_step_end: the synced write, the messages that waited for
 *     it, apply, answers, advance (steps 3-6).
 * Between the two the host may run anything but the loop: other nodes,
 * lease reads on this one (as gRPC threads do while the loop syncs).
 * raftstore_next_tick_ms: the clock time of the next tick. */
int raftstore_start_manual(raftstore *rs, int (*campaign)(void *ctx, uint64_t group), void *ctx,
                           okv_error *err);
int raftstore_step_begin(raftstore *rs);
void raftstore_step_end(raftstore *rs);
uint64_t raftstore_next_tick_ms(const raftstore *rs);

/* For the node simulator's power cuts: frees the store as raftstore_free
 * does (callers still get their answers, so nothing leaks) but leaves the
 * data dir exactly as a killed process would, received snapshot files
 * included. */
void raftstore_free_crashed(raftstore *rs);

/* Stops the loop (pending proposals get OKV_EUNKNOWN: their entries may still
 * commit), frees every group. Accepts NULL. */
void raftstore_free(raftstore *rs);

/* ---- thread-safe inputs -------------------------------------------------- */

/* A message from a peer; ownership of *m's entries/snapshot passes to the
 * store (the struct itself is copied). A RAFT_MSG_SNAPSHOT arriving this
 * way is dropped: snapshots come only through raftstore_receive_snapshot. */
void raftstore_receive(raftstore *rs, uint64_t group, struct raft_message *m);

/* A snapshot that arrived whole and checked (snap_recv.h): m's data is a
 * RECEIVED descriptor naming its dir under the snap root. Ownership of *m's
 * data and of the dir passes to the store, which removes the dir once the
 * snapshot is installed or turned down. OKV_ENOMEM if it could not be
 * queued (the caller keeps both). */
int raftstore_receive_snapshot(raftstore *rs, uint64_t group, struct raft_message *m);

/* Proposes a command (cmd is copied). cb is called exactly once. */
void raftstore_propose(raftstore *rs, uint64_t group, const uint8_t *cmd, size_t len,
                       raftstore_propose_cb cb, void *arg);
/* As raftstore_propose, but takes cmd (malloc'ed) instead of copying it:
 * the command's bytes go from the decoder to the raft log unmoved. */
void raftstore_propose_owned(raftstore *rs, uint64_t group, uint8_t *cmd, size_t len,
                             raftstore_propose_cb cb, void *arg);

/* 1 when this node leads group under a valid lease (lease_reads) AND has
 * applied everything it knows committed, so a read of its applied state is
 * linearizable now, without asking the followers; any thread. (The leader
 * sends a new commit index to followers before it syncs and applies it
 * itself: a follower may already answer reads with entry i while the
 * leader has not applied i. So the leader publishes its commit index
 * before any message carrying it leaves, and a lease read needs applied >=
 * that index.) 0 otherwise: use raftstore_read, which under a valid lease
 * needs no quorum round, only the apply. Keeps the lease fresh by starting
 * a ReadIndex round in the background once half of it has passed. */
int raftstore_lease_read(raftstore *rs, uint64_t group);

/* Asks for a linearizable read point. cb is called exactly once. */
void raftstore_read(raftstore *rs, uint64_t group, raftstore_read_cb cb, void *arg);

/* Asks the group (which must be led by this node) to hand leadership to
 * node `to`. Queued; the outcome shows in the group's status (a refusal is
 * logged). OKV_ENOMEM if it could not be queued. */
int raftstore_transfer_leader(raftstore *rs, uint64_t group, uint64_t to);

/* Answer to raftstore_cut: OKV_OK with snap, a RocksDB snapshot of the
 * node's engine taken where the group's state in it is exactly its applied
 * state at `index` (term: that entry's term); the callee owns snap
 * (engine_snapshot_free). Or OKV_ENOTLEADER (leader_hint: who leads, 0 if
 * unknown), OKV_ENOTFOUND (no such group here), OKV_EUNAVAILABLE (not now:
 * installing a snapshot, stopping; snap NULL). Called on the loop thread,
 * between iterations: a short read of snap is fine, a wait is not. */
typedef void (*raftstore_cut_cb)(void *arg, int code, engine_snapshot *snap, uint64_t index,
                                 uint64_t term, uint64_t leader_hint);

/* A backup's cut of group, which this node must lead (a follower's applied
 * index may lag what was acknowledged). cb is called exactly once. */
void raftstore_cut(raftstore *rs, uint64_t group, raftstore_cut_cb cb, void *arg);

/* ---- introspection -------------------------------------------------------- */

typedef struct raftstore_group_info {
    uint64_t group;
    struct raft_status st;
    /* On a leader: each voter's match index (st.conf.voters order, this
     * node's own included), so replica lag = st.last_index - match;
     * all 0 on other roles. */
    uint64_t match[RAFT_MAX_NODES];
} raftstore_group_info;

/* Copies the status of up to cap groups as of the last tick (or start) and
 * returns how many it copied; with out NULL, how many groups the store has.
 * Groups are added while a node starts, so a count asked first may be
 * smaller than the number a later call would copy: it is the cap. */
size_t raftstore_groups(raftstore *rs, raftstore_group_info *out, size_t cap);

/* A group's known leader changed (as seen at two ticks in a row, like
 * raftstore_io_stats.leader_changes): when (the store's clock,
 * raftstore_config.now_ms), which group, the new leader and its term. */
struct raftstore_leader_change {
    uint64_t at_ms;
    uint64_t group;
    uint64_t leader;
    uint64_t term;
};
#define RAFTSTORE_LEADER_HISTORY 64

/* The last (up to RAFTSTORE_LEADER_HISTORY) leader changes, newest first,
 * into out (room for cap); returns how many were copied. Any thread. */
size_t raftstore_leader_history(raftstore *rs, struct raftstore_leader_change *out, size_t cap);

/* The leader the group last saw (0 if unknown or no such group). */
uint64_t raftstore_leader(raftstore *rs, uint64_t group);

/* Snapshot counters since start (any thread). */
struct raftstore_snap_stats {
    uint64_t recorded;     /* compactions: snapshot descriptors recorded */
    uint64_t offered;      /* transfers handed to net.send_snapshot */
    uint64_t installed;    /* snapshots from a leader installed */
    uint64_t recovered;    /* installs a crash interrupted, finished at start */
};
void raftstore_snap_stats_get(raftstore *rs, struct raftstore_snap_stats *out);

/* Write-path counters since start (any thread): where a put's cost goes. */
struct raftstore_io_stats {
    uint64_t syncs;            /* synced writes of the raft log (one per loop iteration) */
    uint64_t entries_synced;   /* log entries those writes made durable */
    uint64_t entries_applied;  /* entries applied to the state machine */
    uint64_t proposals;        /* commands proposed here (as leader) */
    uint64_t leader_changes;   /* a group's known leader differed from the last
                                * tick's (first leader seen included) */
};
void raftstore_io_stats_get(raftstore *rs, struct raftstore_io_stats *out);

#endif
