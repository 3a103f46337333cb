/*
 * raftlog.h — the durable Raft log of every group on a node, in the node's
 * one RocksDB (column family ENGINE_CF_RAFT).
 *
 * One struct raftlog per Raft group (one per partition replica, identified by
 * a u64 group id). It implements the core's struct raft_storage_ops
 * (raft.h) — `raftlog_ops`, with the struct raftlog as ctx — and behaves
 * exactly like the simulator's tests/sim/memstore.c, including its error
 * codes and its malloc ownership. The byte layout of the keys and values is
 * documented in docs/storage-format.md ("raft column family").
 *
 * Writes are *staged*: every raftlog_stage_* call queues puts and deletes in
 * an engine_batch the caller owns. The raft loop stages every group's Ready
 * into one batch and persists them all with ONE synced engine_write (group
 * commit across groups), then sends, applies and advances.
 *
 * The in-memory cache. Each handle caches the group's compaction point
 * (index, term, configuration), its last index and last term, its hard state
 * and its snapshot's index and configuration, so that first_index,
 * last_index, initial_state, term(first - 1) and term(last) never touch
 * RocksDB (term(i) of an entry in between is one point read). The cache is
 * updated when a change is *staged*, not when it is written. That is safe
 * because of two rules the host keeps:
 *
 *   R1. Between staging into a batch and engine_write of that batch, the host
 *       makes no raft call on that group (the raft loop stages between
 *       raft_ready and raft_advance, where the core answers RAFT_ERR_BUSY to
 *       everything, so it cannot read storage in that window).
 *   R2. A failed synced write is fatal for the node: it must exit and recover
 *       from disk (raftlog_open). After an fsync error the kernel may have
 *       dropped the dirty pages, so nothing in memory may be trusted as
 *       durable any more; continuing would let the node send votes and
 *       acknowledgements for state it may not have.
 *
 * So while the process lives, the cache equals what it believes is durable,
 * and after a crash the cache is rebuilt from what actually is. A host that
 * wants to throw a staged batch away without writing it (tests, an aborted
 * start-up) calls raftlog_reload on every group it staged for.
 *
 * Invariants (checked at open, kept by every stage call):
 *   I1. Stored entries are exactly the indices first..last, contiguous, where
 *       first = compaction index + 1 (none when last == compaction index).
 *   I2. Every stored entry's own index field equals the index in its key.
 *   I3. The snapshot's index is >= the compaction index (a compaction never
 *       goes past the latest snapshot, and installing a snapshot sets both).
 *   I4. Each group has exactly one 'T' (compaction point), one 'H' (hard
 *       state) and one 'S' (snapshot) key, written by raftlog_create in one
 *       batch; the 'T' key is what makes a group exist (raftlog_list_groups).
 *
 * Errors: every function returns 0 or a negative RAFT_ERR_* code (raft.h):
 *   RAFT_ERR_COMPACTED / RAFT_ERR_UNAVAILABLE  the storage callbacks, as in
 *       raft.h; raftlog_open of a group this engine does not hold returns
 *       RAFT_ERR_UNAVAILABLE.
 *   RAFT_ERR_CORRUPT   stored bytes failed a check (bad encoding, an entry
 *       whose index does not match its key, a hole in the log).
 *   RAFT_ERR_STORAGE   RocksDB failed (read or iterator error).
 *   RAFT_ERR_INVALID   a stage call violated its precondition (the staged
 *       batch is untouched), or raftlog_create of a group that exists.
 *   RAFT_ERR_NOMEM     allocation failed.
 * The module never prints and never exits. What went wrong and where (group,
 * index, RocksDB's message) is kept per handle: raftlog_errmsg. Functions
 * without a handle (open, create, list) take an optional okv_error for it.
 *
 * Threads: a handle belongs to one thread (the raft loop); different handles
 * over one engine may be used from different threads (the engine is
 * thread-safe, a batch is not).
 */
#ifndef OKV_SERVER_RAFTLOG_H
#define OKV_SERVER_RAFTLOG_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "raft.h"

struct raftlog;

/* The storage callbacks for raft_config.storage; storage_ctx is the struct
 * raftlog * of the group. Memory as raft.h says: entries and snapshot data
 * are malloc()ed and owned by the caller (the core frees them). */
extern const struct raft_storage_ops raftlog_ops;

/* ---- lifecycle --------------------------------------------------------- */

/* A brand-new replica of `group`: stages its compaction point (index 0, term
 * 0, configuration `conf`), a zero hard state and an empty snapshot at index
 * 0 into b. `conf` lists the initial voters for a group being bootstrapped,
 * or is empty (n_voters == 0) for a replica that will join an existing group
 * and learn the membership from the log or a snapshot. The handle is usable
 * at once (R1: write b before the first raft call). RAFT_ERR_INVALID if the
 * engine already holds the group. *out is owned by the caller
 * (raftlog_free). e must outlive the handle. */
int raftlog_create(struct raftlog **out, engine *e, uint64_t group,
                   const struct raft_conf *conf, engine_batch *b,
                   okv_error *err);

/* Restart: builds the handle from what the engine holds (hard state,
 * compaction point, snapshot index, last index and term), checking I1–I4 at
 * the ends of the log. RAFT_ERR_UNAVAILABLE if the group is not stored,
 * RAFT_ERR_CORRUPT, RAFT_ERR_STORAGE, RAFT_ERR_NOMEM. */
int raftlog_open(struct raftlog **out, engine *e, uint64_t group,
                 okv_error *err);

/* Rebuilds the cache from disk (as raftlog_open does), e.g. after a staged
 * batch was discarded. On error the handle keeps its old cache. */
int raftlog_reload(struct raftlog *rl);

/* Frees the handle only; stored data is untouched. Accepts NULL. */
void raftlog_free(struct raftlog *rl);

/* Stages the deletion of every key of the group (entries, hard state,
 * compaction point, snapshot), for a replica removed from this node. After
 * it, the handle accepts only raftlog_free (everything else returns
 * RAFT_ERR_INVALID). */
int raftlog_destroy_stage(struct raftlog *rl, engine_batch *b);

/* Calls fn(ctx, group) for each group stored in e, in increasing group
 * order, for discovery at boot. A non-zero return from fn stops the walk and
 * is returned. RAFT_ERR_CORRUPT for a malformed key, RAFT_ERR_STORAGE. */
int raftlog_list_groups(engine *e, int (*fn)(void *ctx, uint64_t group),
                        void *ctx, okv_error *err);

/* ---- writes (staged; the caller writes b with sync = 1) ---------------- */

/* Appends ents[0..n) (the Ready's entries): stored entries at or after
 * ents[0].index are replaced and the stale tail beyond the new last entry
 * is deleted. Preconditions (else RAFT_ERR_INVALID): ents[0].index is in
 * (compaction index, last + 1], indices are consecutive and terms do not
 * decrease. n == 0 is a no-op. */
int raftlog_stage_entries(struct raftlog *rl, engine_batch *b,
                          const struct raft_entry *ents, size_t n);

/* Stores the hard state (the Ready's hs when hs_changed). */
int raftlog_stage_hard_state(struct raftlog *rl, engine_batch *b,
                             const struct raft_hard_state *hs);

/* Installs a snapshot received from the leader (the Ready's snapshot): every
 * stored entry is removed, the log restarts at snap->meta.index (which
 * becomes the compaction point, with the snapshot's term and
 * configuration), and the snapshot (meta + snap->len bytes of data, stored
 * verbatim) becomes the one `snapshot` returns. Stage it before the same
 * Ready's entries. */
int raftlog_stage_snapshot(struct raftlog *rl, engine_batch *b,
                           const struct raft_snapshot *snap);

/* Records a snapshot the application took of its applied state at `index`
 * (its data is opaque bytes the application chose; stored verbatim), so the
 * core can send it to followers that are behind. The log is not touched;
 * compact afterwards with raftlog_stage_compact. index must be in
 * [compaction index, last] (RAFT_ERR_INVALID otherwise); conf is the
 * configuration as of index. An index <= the current snapshot's is a no-op
 * (snapshots never go backwards). The entry at index must already be
 * written (it is an applied one): its term is read from disk. */
int raftlog_stage_save_snapshot(struct raftlog *rl, engine_batch *b,
                                uint64_t index, const struct raft_conf *conf,
                                const void *data, uint64_t len);

/* Log compaction: removes every entry with index <= upto; upto becomes the
 * compaction point (first_index = upto + 1) and term(upto) stays answerable.
 * conf is the configuration as of upto (the application tracks it); NULL is
 * allowed only when upto is the snapshot's index and means the snapshot's.
 * Preconditions (else RAFT_ERR_INVALID): upto <= the latest snapshot's index
 * (I3) and upto <= last. upto <= the current compaction index is a no-op.
 * The entry at upto must already be written (its term is read from disk).
 * (Same meaning as etcd's Compact and memstore_compact_to_snapshot.) */
int raftlog_stage_compact(struct raftlog *rl, engine_batch *b, uint64_t upto,
                          const struct raft_conf *conf);

/* ---- introspection (from the cache; never touch RocksDB) ---------------- */

uint64_t raftlog_group(const struct raftlog *rl);
uint64_t raftlog_first_index(const struct raftlog *rl);
uint64_t raftlog_last_index(const struct raftlog *rl);
uint64_t raftlog_snapshot_index(const struct raftlog *rl);
void raftlog_hard_state(const struct raftlog *rl, struct raft_hard_state *out);

/* What the last failing call on this handle found, e.g. "raft group 7:
 * entry 1234: stored bytes do not decode". Borrowed; valid until the next
 * call on the handle. "" if nothing failed. */
const char *raftlog_errmsg(const struct raftlog *rl);

#endif
