/*
 * raft_int.h — private state of a raft node, shared by the core's modules.
 *
 * Nothing here is visible to users of raft.h. Each module (election.c,
 * replication.c, ...) owns a part of struct raft_node and documents which;
 * this header only gathers the layout and the helpers every module needs.
 */
#ifndef ORDERKV_RAFT_INT_H
#define ORDERKV_RAFT_INT_H

#include <stdarg.h>

#include "raft.h"
#include "raft_assert.h"
#include "log.h"
#include "progress.h"

/* Planted bugs exist only in builds configured with
 * -DORDERKV_RAFT_PLANTED_BUGS=ON; elsewhere every call site is compiled out
 * by the preprocessor, so production objects contain no such code. */
#ifdef RAFT_PLANTED_BUGS
#define RAFT_BUG(r, b) (((r)->cfg.planted_bugs & (b)) != 0)
#endif

/* Growable array of outgoing messages (owned by the node until advance). */
struct raft_msgvec {
    struct raft_message *v;
    size_t n;
    size_t cap;
};

/* One pending linearizable read (readindex.c). */
struct raft_read_req {
    uint64_t ctx;
    raft_id from;   /* RAFT_NONE: asked locally */
    uint64_t index; /* commit index captured when the request was accepted */
    uint64_t seq;   /* heartbeat round that must be acknowledged; 0 while the
                       leader has not committed an entry of its term */
};

struct raft_node {
    struct raft_config cfg;
    raft_id id;

    /* Persistent state (Figure 2), mirrored to storage via Ready.hs. */
    uint64_t term;
    raft_id vote;

    /* Volatile state. */
    enum raft_role role;
    raft_id leader;
    struct raft_log log;

    /* membership.c: latest configuration in the log and the one before it
     * (what we revert to if the entry at conf_index is truncated). */
    struct raft_conf conf;
    uint64_t conf_index;
    struct raft_conf conf_prev;

    /* progress.c: one entry per member of conf (leader only; kept sized
     * with conf on every node so a new leader starts from it). */
    struct raft_progress prs[RAFT_MAX_NODES];
    uint32_t n_prs;

    /* election.c: votes received in the current (pre-)campaign. */
    raft_id votes_from[RAFT_MAX_NODES];
    bool votes_granted[RAFT_MAX_NODES];
    uint32_t n_votes;

    int election_elapsed;
    int heartbeat_elapsed;
    /* cfg.boot_quiet: still within the first election timeout after a
     * restart; counts as a live leader for E5 (votes ignored). */
    bool boot_quiet;
    int randomized_timeout;
    uint64_t prng;

    /* replication.c: an append/heartbeat broadcast is due at the next
     * raft_ready (this is what batches many proposals per message). */
    bool bcast_pending;
    bool hb_pending;

    /* transfer.c */
    raft_id transferee;
    int transfer_elapsed;

    /* readindex.c */
    struct raft_read_req *reads;
    size_t n_reads, cap_reads;
    uint64_t read_seq;
    struct raft_read_state *read_states;
    size_t n_read_states, cap_read_states;

    /* ready.c: outputs gathered since the last advance. */
    struct raft_msgvec msgs;
    struct raft_msgvec msgs_after;
    struct raft_hard_state prev_hs;
    bool ready_outstanding;
    struct raft_ready_ctx {
        uint64_t persist_last;     /* last entry index handed to persist */
        uint64_t apply_last;       /* last committed index handed out */
        bool snapshot;             /* a snapshot was handed out */
        struct raft_hard_state hs; /* hard state handed out */
        struct raft_slice apply;   /* committed entries handed out */
        size_t n_read_states;
    } rd;
};

/* ---- helpers shared by all modules (raft.c) --------------------------- */

/* Formats and forwards a log line if the caller asked for that level. The
 * prefix carries node id, term and role so lines are readable in traces. */
void raft_logf(const struct raft_node *r, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Appends a message to the outbox. after_persist marks messages that state
 * something about our persistent state (votes, append acks) and must not
 * leave before the Ready's write is synced. Returns a pointer to the queued
 * message (zeroed apart from type/from/to/term) for the caller to fill. */
struct raft_message *raft_send(struct raft_node *r, raft_id to, uint8_t type,
                               bool after_persist);

/* Next pseudo-random 64-bit value (splitmix64 on r->prng). */
uint64_t raft_rand(struct raft_node *r);

/* True when r is a voter in its latest configuration. */
bool raft_is_voter(const struct raft_node *r);

/* Quorum size of the latest configuration's voters. */
uint32_t raft_quorum(const struct raft_node *r);

/* Role transitions (election.c). */
void raft_become_follower(struct raft_node *r, uint64_t term, raft_id leader);
void raft_become_pre_candidate(struct raft_node *r);
void raft_become_candidate(struct raft_node *r);
void raft_become_leader(struct raft_node *r);

/* Reset of the per-term timers and leader state shared by all roles. */
void raft_reset(struct raft_node *r, uint64_t term);

#endif /* ORDERKV_RAFT_INT_H */
