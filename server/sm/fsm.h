/*
 * fsm.h — the partition state machine: applies committed Raft entries of
 * every partition replica on a node to RocksDB, and in single-node mode
 * every write the committer takes (committer.h).
 *
 * Determinism: applying the same entries in the same order to the same state
 * gives the same state and the same results on every replica. Nothing here
 * reads a clock, a random number or anything outside the data dir.
 *
 * Invariants (DESIGN.md "Node internals"):
 *  1. Data writes, the dedup record and the group's applied index of an entry
 *     go into one batch, so after a crash an entry is either wholly applied
 *     (and its index recorded) or not at all: never twice, never skipped.
 *  2. In cluster mode the batch need not be synced (fsm_flush): the Raft log
 *     holds every committed entry durably, and a replica re-applies from
 *     applied index + 1 at restart. Single-node mode has no log: its
 *     committer (committer.h) numbers each write applied index + 1 of the
 *     write's group and writes every batch synced (fsm_flush_synced) before
 *     it answers, so there the batch itself is the only durable record.
 *  3. A key's version is the Raft index of the entry that wrote it (in
 *     single-node mode, the index the committer gave the write).
 *  4. A write with a client id is applied at most once: its result is kept
 *     under (group, client id, request id) and a repeat of the request gets
 *     that result without touching the data. Records below a client's
 *     watermark are dropped, because the client promised never to retry them.
 *  5. Within one batch, later entries see earlier entries' effects: reads
 *     go through an overlay of what the batch holds before RocksDB.
 *
 * Threads: one fsm belongs to one thread: the raft loop's in cluster mode,
 * the committer's in single-node mode. Both modes apply writes with this
 * code only, so a command sequence stores the same bytes in either.
 */
#ifndef OKV_SERVER_FSM_H
#define OKV_SERVER_FSM_H

#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "engine.h"
#include "errors.h"

typedef struct fsm fsm;

/* Exactly-once records below a client's watermark are dropped in steps of
 * this many request ids: one RocksDB range tombstone per step, not one per
 * write. (Range tombstones pile up in the memtable and every point read
 * there walks them; one per write made latency grow with every write.) */
#define FSM_DEDUP_GC_STEP 256u

/* Group id of a partition: table id in the high 32 bits, partition in the
 * low. Group 0 is the cluster's meta group. */
uint64_t fsm_group_id(uint32_t table_id, uint32_t partition);

int fsm_new(fsm **out, engine *e, okv_error *err);
void fsm_free(fsm *f);   /* accepts NULL; staged, unflushed work is dropped */

/* Applies the command in entry `index` of `group`. *out gets the result the
 * client sees (OKV_OK, OKV_ECONFLICT, ...). Returns OKV_OK when the entry was
 * applied (including a command whose result is a conflict), or OKV_ECORRUPT
 * when the entry cannot be a command of this group: the caller must stop,
 * because replicas would diverge. Also records `index` as applied. */
int fsm_apply(fsm *f, uint64_t group, uint64_t index, const uint8_t *cmd, size_t len,
              command_result *out, okv_error *err);

/* Records `index` as applied for an entry with no command (empty entries a
 * new leader appends, configuration changes). */
void fsm_set_applied(fsm *f, uint64_t group, uint64_t index);

/* The applied index of group as stored (0 if never applied). */
int fsm_applied_index(fsm *f, uint64_t group, uint64_t *out, okv_error *err);

/* Reads a user key's current value as this replica has applied it (overlay
 * first). OKV_ENOTFOUND if absent. *value_out is malloc'd. */
int fsm_get(fsm *f, uint32_t table_id, uint32_t partition, const uint8_t *key, size_t key_len,
            uint8_t **value_out, size_t *value_len, uint64_t *version, okv_error *err);

/* The lock a two-phase commit holds on a user key, as applied (read from
 * the engine, any thread): OKV_OK with the mode (tpc.h enum tpc_lock_mode)
 * and holder's id, OKV_ENOTFOUND when unlocked. Reads call it before they
 * read the key (docs/transactions.md, "Reads meet intents"). */
int fsm_lock_get(engine *e, uint32_t table_id, uint32_t partition, const uint8_t *key,
                 size_t key_len, uint8_t *mode, uint64_t *holder_client, uint64_t *holder_req,
                 okv_error *err);

/* The first exclusive lock on a user key k of (table, partition) with
 * lower <= k and (no upper or k < upper), as applied: OKV_OK with its
 * holder, OKV_ENOTFOUND if none. Scans call it before they read. */
int fsm_lock_first(engine *e, uint32_t table_id, uint32_t partition, const uint8_t *lower,
                   size_t lower_len, const uint8_t *upper, size_t upper_len, int has_upper,
                   uint64_t *holder_client, uint64_t *holder_req, okv_error *err);

/* Key of a two-phase commit record of group: kind 'P' (participant) or
 * 'C' (coordinator) of transaction (client, req). Its first
 * FSM_TPC_REC_PREFIX_LEN bytes are the prefix of every record of that kind
 * in the group (the sweeper scans them). */
#define FSM_TPC_REC_KEY_LEN 26
#define FSM_TPC_REC_PREFIX_LEN 10
void fsm_tpc_rec_key(uint8_t out[FSM_TPC_REC_KEY_LEN], uint64_t group, char kind,
                     uint64_t client, uint64_t req);

/* The 9-byte prefix of group's meta-CF keys of kind tag ('A' applied
 * index, 'D' exactly-once records, 'W' client watermarks, 'T' two-phase
 * commit's locks and records); fsm_snapshot.c uses it. */
#define FSM_META_PREFIX_LEN 9
void fsm_meta_prefix(uint8_t out[FSM_META_PREFIX_LEN], char tag, uint64_t group);

/* Writes everything staged since the last flush (unsynced) and clears the
 * overlay. The raft loop's flush: its entries are durable in the Raft log. */
int fsm_flush(fsm *f, okv_error *err);

/* Drops what the fsm remembers of groups holding no range lock: call after
 * a group's state changed without it (a snapshot ingested). */
void fsm_forget_range_locks(fsm *f);

/* fsm_flush with one synced write (the WAL is fdatasync'd before it
 * returns): single-node mode's flush, where nothing else holds the writes
 * durably (invariant 2). On failure the disk holds all of the batch or none
 * of it, and which is unknown; the staged work is dropped either way. */
int fsm_flush_synced(fsm *f, okv_error *err);

/* Operations staged and not yet flushed. */
size_t fsm_pending(const fsm *f);

#endif
