/*
 * raftstore_int.h — the raft store's private structures, shared by its
 * files (raftstore.h is the contract; nothing outside the module includes
 * this):
 *   raftstore.c            the loop: inbox, ticks, Readies, apply, status
 *   raftstore_props.c      proposals and their answers
 *   raftstore_read.c       reads: ReadIndex, leased read points, retries
 *   raftstore_lease.c      leader leases
 *   raftstore_rebalance.c  handing leadership back to preferred nodes
 *   raftstore_snap.c       snapshots: offered, installed, recovered; compaction
 * Everything here runs on the loop thread unless a comment says otherwise.
 */
#ifndef OKV_SERVER_RAFTSTORE_INT_H
#define OKV_SERVER_RAFTSTORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fsm.h"
#include "fsm_snapshot.h"
#include "raftstore.h"

typedef struct pending_prop {
    uint64_t index, term;
    raftstore_propose_cb cb;
    void *arg;
    struct pending_prop *next;
} pending_prop;

typedef struct pending_read {
    uint64_t ctx;
    uint64_t index;           /* 0 until the read state arrives */
    int ticks;                /* ticks waited */
    uint64_t issued_ms;       /* when asked, as leader of lease_term (else 0) */
    uint64_t lease_term;
    raftstore_read_cb cb;
    void *arg;
    struct pending_read *next;
} pending_read;

typedef struct grp {
    uint64_t id;
    struct raftstore *rs;
    struct raftlog *log;
    struct raft_node *node;
    pending_prop *props, *props_tail;   /* in index order */
    pending_read *reads;
    uint64_t applied;
    /* For lease reads on other threads: the commit index this node knows,
     * published before any message carrying it leaves (so no follower can
     * have applied past it), and the applied index, published once what it
     * covers is flushed to RocksDB. */
    _Atomic uint64_t commit_seen, applied_pub;
    /* A transfer was started in this term: a TIMEOUT_NOW may still be on
     * its way, and the vote it starts bypasses every follower's lease, so
     * no lease is taken again in this term (ReadIndex stays safe). */
    uint64_t no_lease_term;
    /* Rebalancer (rebalance()): passes to wait before this node hands the
     * group back again, the wait after the next hand-back (doubling), and
     * passes since the last hand-back (the wait halves every 64). */
    int rebalance_wait, rebalance_backoff, rebalance_quiet;
    /* Leadership this node lost other than by handing it over (an
     * election elsewhere, check-quorum): the tick it was noticed, 0 if
     * never. For a while after, this node turns down TIMEOUT_NOW: a node
     * that cannot keep the leadership (a failing disk, a slow link) must
     * not have it handed back again and again (rebalance()). */
    uint64_t lost_lead_tick;
    int led, led_transferring;   /* as last seen by track_leadership */
    /* Term in which this node, leading, started a hand-back (0: none).
     * Its TIMEOUT_NOW carries RS_CTX_HANDBACK, so the target turns down
     * only hand-backs: a transfer an admin asked for always goes ahead. */
    uint64_t handback_term;
    /* Lease (raftstore_config.lease_reads): reads on other threads may use
     * the applied state while now < lease_until. Only the loop writes it,
     * and zeroes it whenever this node may stop leading. */
    _Atomic uint64_t lease_until;
    uint64_t lease_term;
    _Atomic int lease_renewing;       /* a background ReadIndex is under way */
    /* Term of a TIMEOUT_NOW this replica received: a leadership won in the
     * next term came from a transfer (an admin's or the rebalancer's), and
     * the rebalancer leaves it alone — an admin's choice must stick. */
    uint64_t transfer_term;
    int has_rd;
    struct raft_ready rd;
    /* The term and vote of the last hard state staged (hs_known: one was).
     * A hard state that changes only the commit index needs no sync
     * (readies_begin). */
    uint64_t hs_term;
    uint64_t hs_vote;
    int hs_known;
    /* Dirs (names under the snap root) of snapshots stepped since the last
     * Ready: removed once that Ready is persisted, whether the core
     * installed one of them or turned them down. */
    char (*recv_dirs)[FSM_SNAPSHOT_NAME_MAX + 1];
    size_t n_recv_dirs, cap_recv_dirs;
} grp;

/* ITEM_SNAP: a received snapshot (raftstore_receive_snapshot). */
enum item_kind { ITEM_MSG, ITEM_PROPOSE, ITEM_READ, ITEM_TRANSFER, ITEM_SNAP, ITEM_CUT };

typedef struct item {
    enum item_kind kind;
    uint64_t group;
    struct raft_message msg;
    uint8_t *cmd;
    size_t len;
    uint64_t to;                /* ITEM_TRANSFER */
    int round;                  /* ITEM_READ: a quorum round even under a lease */
    raftstore_propose_cb pcb;
    raftstore_read_cb rcb;
    raftstore_cut_cb ccb;       /* ITEM_CUT */
    void *arg;
    uint64_t queued_ns;         /* trace.h: when rs_push queued it (0 untraced) */
    struct item *next;
} item;

struct raftstore {
    raftstore_config cfg;
    grp **groups;            /* sorted by id */
    size_t ngroups, cap;
    fsm *fsm;
    engine_batch *batch;
    /* ReadIndex contexts: unique across this node's restarts, not only
     * within one run. A leader may answer a context the previous run of
     * this node asked for (it was waiting for its heartbeat round when the
     * node restarted); with contexts from 1 again, that old, lower read
     * point would settle a new read (found by the node simulator). So
     * they start at the clock's reading in ms x 2^16 (fewer than 65,536
     * reads per ms). */
    uint64_t read_seq;

    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    item *inbox, *inbox_tail;  /* guarded by mu */
    int stopping;              /* guarded by mu */

    int ticks_since_rebalance;
    uint64_t next_tick;        /* clock time of the next tick */
    int iter_tick, iter_open;  /* the step under way ticked / awaits step_end */
    int crashed;               /* raftstore_free_crashed: leave the disk alone */
    uint64_t ticks;            /* ticks since start */
    size_t snap_cursor;        /* where the next compaction check starts */
    char snap_root[4096];      /* <data dir>/snap: received snapshots */
    uint64_t transport_snaps;  /* RAFT_MSG_SNAPSHOTs dropped off the transport */
    _Atomic uint64_t snap_recorded, snap_offered, snap_installed, snap_recovered;
    _Atomic uint64_t io_syncs, io_entries_synced, io_entries_applied, io_proposals;
    _Atomic uint64_t io_leader_changes;   /* publish_status */
    int must_sync;                 /* this iteration's batch holds what Raft needs durable */

    pthread_mutex_t status_mu;
    raftstore_group_info *status;   /* guarded by status_mu */
    size_t nstatus;
    /* raftstore_leader_history: a ring, guarded by status_mu */
    struct raftstore_leader_change lhist[RAFTSTORE_LEADER_HISTORY];
    size_t lhist_next, lhist_n;
};

/* raftstore.c */
void rs_logf(raftstore *rs, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
uint64_t rs_now_ms(const raftstore *rs);
void rs_fatal(raftstore *rs, const char *what);
grp *rs_find_group(raftstore *rs, uint64_t id);
uint64_t rs_leader_of(const grp *g);
void rs_push(raftstore *rs, item *it);

/* raftstore_lease.c: leader leases (raftstore_config.lease_reads) */
void rs_lease_extend(grp *g, const pending_read *r);
void rs_lease_check(grp *g);

/* raftstore_read.c: linearizable reads */
void rs_read_item(raftstore *rs, uint64_t group, raftstore_read_cb cb, void *arg, int round);
void rs_read_start(raftstore *rs, grp *g, item *it);
void rs_serve_reads(grp *g, int tick);
void rs_note_read_states(grp *g, const struct raft_ready *rd);

/* raftstore_props.c: proposals and their answers */
void rs_propose_start(raftstore *rs, grp *g, item *it);
void rs_track_prop(grp *g, pending_prop *p);
void rs_settle_props(grp *g, uint64_t index, uint64_t term, const command_result *r);
void rs_settle_props_snapshot(grp *g, uint64_t index);

/* raftstore_rebalance.c: leaders back to their preferred nodes */
void rs_track_leadership(raftstore *rs, grp *g);
/* TIMEOUT_NOW's ctx when the rebalancer, not an admin, started the
 * transfer (nodes that predate it send 0: treated as an admin's). */
#define RS_CTX_HANDBACK 1u
int rs_refuses_handback(const raftstore *rs, const grp *g);
void rs_rebalance(raftstore *rs);

/* raftstore_snap.c: snapshots offered, installed, recovered; compaction */
int rs_recover_snapshots(raftstore *rs, okv_error *err);
void rs_remove_snap_dir(raftstore *rs, const char *name);
void rs_step_snapshot(raftstore *rs, grp *g, item *it);
void rs_offer_snapshot(raftstore *rs, const grp *g, const struct raft_message *m);
void rs_install_snapshot(raftstore *rs, grp *g, const struct raft_snapshot *snap);
int rs_maybe_snapshot(raftstore *rs, grp *g);
void rs_cut(raftstore *rs, grp *g, item *it);

#endif
