/*
 * log.h — the node's view of its Raft log: stable storage plus an in-memory
 * tail.
 *
 * Layout (indexes grow to the right):
 *
 *     storage:  [first ........................ stable]
 *     memory:                [mem_first ........ stable ....... last]
 *                             persisted, cached  |  not yet persisted
 *
 * Entries below mem_first are read through the storage vtable; entries from
 * mem_first to last are held in memory (those above `stable` only there).
 * A restored snapshot that the host has not installed yet is `pending_snap`.
 *
 * Invariants (checked by raft_log_check):
 *   L1. mem_first - 1 <= stable <= last, where last = mem_first + n - 1.
 *   L2. applied <= committed <= last.
 *   L3. memory entries have consecutive indexes starting at mem_first and
 *       non-decreasing terms.
 *   L4. committed never decreases and no entry at or below committed is ever
 *       truncated (Figure 2: "Leader Completeness" relies on it).
 */
#ifndef ORDERKV_RAFT_LOG_H
#define ORDERKV_RAFT_LOG_H

#include "raft.h"

struct raft_log {
    const struct raft_storage_ops *ops;
    void *ctx;
    struct raft_entry *mem; /* ring-less array; live entries at [head, head+n) */
    size_t head;
    size_t n;
    size_t cap;
    uint64_t mem_first;
    uint64_t stable;
    uint64_t committed;
    uint64_t applied;
    struct raft_snapshot *pending_snap; /* owned; installed at advance */
};

/* A run of entries: `v` is an array of shallow copies whose data belongs to
 * the log (valid until the log changes) or to `owned` (entries read from
 * storage, freed by raft_slice_free). */
struct raft_slice {
    struct raft_entry *v;
    size_t n;
    struct raft_entry *owned;
    size_t n_owned;
};

/* Reads first/last index from storage. Precondition: ops valid. */
int raft_log_init(struct raft_log *l, const struct raft_storage_ops *ops,
                  void *ctx);
void raft_log_close(struct raft_log *l);

uint64_t raft_log_last_index(const struct raft_log *l);
uint64_t raft_log_last_term(const struct raft_log *l);
/* First index that can still be read (snapshot index + 1). */
uint64_t raft_log_first_index(const struct raft_log *l);

/* Term of entry i; 0 with RAFT_ERR_COMPACTED / RAFT_ERR_UNAVAILABLE if the
 * entry is not in the log. term(0) is 0. */
int raft_log_term(const struct raft_log *l, uint64_t i, uint64_t *term);
/* term_or_zero: convenience for comparisons where missing means "no match". */
uint64_t raft_log_term_or_zero(const struct raft_log *l, uint64_t i);
bool raft_log_match_term(const struct raft_log *l, uint64_t i, uint64_t term);

/* §5.4.1 election restriction: is (last_term, last_index) at least as
 * up-to-date as our log? Compare last terms, then lengths. */
bool raft_log_is_up_to_date(const struct raft_log *l, uint64_t last_index,
                            uint64_t last_term);

/* Leader append: takes ownership of e->data. Precondition: e->index is
 * last + 1 (the caller sets index and term). */
void raft_log_append_owned(struct raft_log *l, struct raft_entry *e);

/* Follower append, Figure 2 AppendEntries receiver rules 2-5. If the entry
 * at prev_index does not have prev_term, returns false and changes nothing.
 * Otherwise deletes conflicting entries (rule 3; never committed ones),
 * appends copies of the new ones (rule 4), sets committed to
 * min(leader_commit, index of last new entry) (rule 5) and returns true with
 * *last_new = prev_index + n. *truncated_at gets the first index removed by
 * a conflict, or 0. keep_conflict is the planted "skip rule 3" bug. */
bool raft_log_maybe_append(struct raft_log *l, uint64_t prev_index,
                           uint64_t prev_term, uint64_t leader_commit,
                           const struct raft_entry *ents, size_t n,
                           uint64_t *last_new, uint64_t *truncated_at,
                           bool keep_conflict);

/* Raises committed to c (never lowers it). Precondition: c <= last. */
void raft_log_commit_to(struct raft_log *l, uint64_t c);

/* First index of the run of entries with the term of entry i, scanning back
 * no further than floor (fast backtracking hint, §5.3). */
uint64_t raft_log_first_of_term(const struct raft_log *l, uint64_t i,
                                uint64_t floor);
/* Last index <= i whose term is t, or 0 when none in [floor, i]. */
uint64_t raft_log_last_of_term(const struct raft_log *l, uint64_t i,
                               uint64_t t, uint64_t floor);

/* Collects entries [lo, hi) up to max_bytes (at least one). */
int raft_log_slice(const struct raft_log *l, uint64_t lo, uint64_t hi,
                   uint64_t max_bytes, struct raft_slice *s);
void raft_slice_free(struct raft_slice *s);

/* Replaces the whole log with a snapshot (takes ownership of snap). */
void raft_log_restore(struct raft_log *l, struct raft_snapshot *snap);

/* The host persisted everything up to `index` and applied up to `applied`;
 * the memory tail drops what both cover. */
void raft_log_stable_to(struct raft_log *l, uint64_t index);
void raft_log_applied_to(struct raft_log *l, uint64_t applied);

/* Memory entry access for ready.c: entries (stable, last]. */
const struct raft_entry *raft_log_unstable(const struct raft_log *l,
                                           size_t *n);

void raft_log_check(const struct raft_log *l);

#endif /* ORDERKV_RAFT_LOG_H */
