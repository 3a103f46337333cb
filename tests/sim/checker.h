/*
 * checker.h — the safety properties the simulator checks at every step.
 *
 *   K1 Election Safety: at most one leader per term.
 *   K2 One vote per term: a node never grants two different candidates a
 *      vote in the same term (checked on the granted VOTE_RESPs it sends,
 *      so a vote forgotten across a crash is caught too).
 *   K3 Log Matching: every persisted entry (index, term) has one content
 *      and one predecessor term across all nodes and all time; hence two
 *      logs with an equal (index, term) are equal up to it.
 *   K4 Leader Completeness: a node that becomes leader of term T holds every
 *      entry that some leader of a term below T had seen committed.
 *   K5 State Machine Safety: each node applies G in order (its applied
 *      sequence is a prefix of G); snapshots carry G's running hash.
 *   K6 Durability: nothing acknowledged to a client is lost — acknowledged
 *      writes are in G at the index they were acknowledged with, and (K5)
 *      every node that later applies that index applies the same entry.
 *   K7 Linearizable reads: a read index is >= the index of every write
 *      acknowledged before the read was issued.
 *   K8 Persistent state is monotonic: a node's stored term and commit index
 *      never decrease.
 * A violation records the first message and stops the run.
 */
#ifndef ORDERKV_SIM_CHECKER_H
#define ORDERKV_SIM_CHECKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

struct chk_slot {
    uint64_t k1, k2;
    uint64_t v1, v2, v3;
    bool used;
};

struct chk_map {
    struct chk_slot *s;
    size_t cap; /* power of two */
    size_t n;
};

void chk_map_clear(struct chk_map *m);
void chk_map_free(struct chk_map *m);
struct chk_slot *chk_map_get(struct chk_map *m, uint64_t k1, uint64_t k2);
/* Returns the slot for (k1, k2), inserting it zeroed if missing; *fresh
 * tells which. */
struct chk_slot *chk_map_put(struct chk_map *m, uint64_t k1, uint64_t k2,
                             bool *fresh);

struct sim_checker {
    /* G, 1-based: g_term[i], g_hash[i] (entry), g_roll[i] (running hash). */
    uint64_t *g_term, *g_hash, *g_roll;
    uint64_t g_len;
    size_t g_cap;
    /* Commit terms, 1-based up to c_len: entry i was seen committed by the
     * leader of term c_term[i] (so it was committed in that term or
     * earlier) and has term c_eterm[i] (0: unknown). K4 requires leaders of
     * later terms only: a leader of an older term can legitimately be
     * elected late by delayed votes while a newer term already commits. */
    uint64_t *c_term, *c_eterm;
    uint64_t c_len;
    size_t c_cap;
    struct chk_map leaders; /* term -> leader */
    struct chk_map votes;   /* (voter, term) -> candidate */
    struct chk_map logm;    /* (index, term) -> (content hash, prev term) */
    struct chk_map props;   /* seq -> (node, index, term) */
    struct chk_map reads;   /* ctx -> (node, floor) */
    uint64_t max_acked_index;
    bool violated;
    char msg[512];
};

void chk_init(struct sim_checker *k);
void chk_reset(struct sim_checker *k);
void chk_free(struct sim_checker *k);

void chk_fail(struct sim_checker *k, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

uint64_t chk_hash_bytes(const void *data, size_t len, uint64_t h);
uint64_t chk_entry_hash(const struct raft_entry *e);
uint64_t chk_roll(uint64_t prev, uint64_t entry_hash);

void chk_leader(struct sim_checker *k, uint64_t term, raft_id id);   /* K1 */
void chk_vote(struct sim_checker *k, raft_id voter, uint64_t term,
              raft_id candidate);                                   /* K2 */
void chk_persist(struct sim_checker *k, raft_id node, uint64_t prev_term,
                 const struct raft_entry *e);                       /* K3 */
/* Records that the leader of `term` has commit index `commit`; term_of
 * gives entry terms (from that leader's log). */
void chk_commit_seen(struct sim_checker *k, uint64_t term, uint64_t commit,
                     uint64_t (*term_of)(void *ctx, uint64_t i), void *ctx);

/* K5: node applies entry with index i; roll_prev is its running hash
 * before. Returns the new running hash. */
uint64_t chk_apply(struct sim_checker *k, raft_id node,
                   const struct raft_entry *e, uint64_t roll_prev);
void chk_snapshot(struct sim_checker *k, raft_id node, uint64_t index,
                  uint64_t roll);

#endif
