/*
 * progress.h — the leader's view of one follower (etcd's Progress, and the
 * nextIndex/matchIndex of the paper's Figure 2 "Volatile state on leaders").
 *
 * States:
 *   PROBE      we do not know where the follower's log matches ours; send
 *              one append at a time and wait for its answer (or the next
 *              heartbeat) before sending another.
 *   REPLICATE  the follower matched; stream appends optimistically: next is
 *              advanced as soon as a message is sent (pipelining, dissertation
 *              §10.2.1), bounded by an in-flight window of max_inflight
 *              messages that acknowledgements free.
 *   SNAPSHOT   the entries it needs are compacted; a snapshot is on its way
 *              and nothing else is sent until it is acknowledged or fails.
 *
 * Invariants:
 *   P1. match < next.
 *   P2. in REPLICATE, every in-flight entry is a last index sent, in
 *       increasing order, all > match.
 */
#ifndef ORDERKV_RAFT_PROGRESS_H
#define ORDERKV_RAFT_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "raft.h"

enum raft_progress_state {
    RAFT_PR_PROBE = 0,
    RAFT_PR_REPLICATE = 1,
    RAFT_PR_SNAPSHOT = 2
};

struct raft_progress {
    raft_id id;
    bool voter;
    uint8_t state;
    bool probe_sent;     /* PROBE: an append is outstanding */
    bool recent_active;  /* heard from since the last check-quorum round */
    uint64_t match;
    uint64_t next;
    uint64_t pending_snapshot; /* SNAPSHOT: index of the snapshot sent */
    uint64_t read_ack;   /* highest read sequence acknowledged */
    uint32_t stalled_ticks; /* SNAPSHOT: ticks since the snapshot left */
    uint64_t *inflight;  /* ring of last indexes of appends in flight */
    uint32_t in_start;
    uint32_t in_count;
    uint32_t in_cap;
};

/* Starts tracking a member: match 0, next = next, PROBE. Allocates the
 * in-flight ring of max_inflight slots. */
void raft_progress_init(struct raft_progress *p, raft_id id, bool voter,
                        uint64_t next, uint32_t max_inflight);
void raft_progress_close(struct raft_progress *p);

void raft_progress_become_probe(struct raft_progress *p);
void raft_progress_become_replicate(struct raft_progress *p);
void raft_progress_become_snapshot(struct raft_progress *p, uint64_t index);

/* A successful append response for index n: raise match (and next). Returns
 * true if match moved (the commit index may move too). */
bool raft_progress_maybe_update(struct raft_progress *p, uint64_t n);

/* A rejection of the append whose prev index was `rejected`; `next_hint` is
 * where the leader computed the logs may match from the follower's conflict
 * hint. Returns false for stale rejections (already matched past them, or
 * not the probe we are waiting for), leaving p unchanged. */
bool raft_progress_maybe_decr_to(struct raft_progress *p, uint64_t rejected,
                                 uint64_t next_hint);

/* Bookkeeping after sending entries up to `last` (n > 0 entries). */
void raft_progress_sent(struct raft_progress *p, uint64_t last, size_t n);

/* True when nothing more may be sent to this follower right now. */
bool raft_progress_is_paused(const struct raft_progress *p);

/* Frees in-flight slots up to and including index. */
void raft_progress_free_to(struct raft_progress *p, uint64_t index);

/* The largest index a quorum of `values` has reached: sorts a copy and
 * takes the quorum-th largest. n > 0, quorum in [1, n]. */
uint64_t raft_quorum_value(const uint64_t *values, uint32_t n,
                           uint32_t quorum);

#endif /* ORDERKV_RAFT_PROGRESS_H */
