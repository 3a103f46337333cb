/*
 * committer.h — single-node mode's write path: group commit through the
 * state machine.
 *
 * Request threads (gRPC completion-queue threads) never write to RocksDB; they
 * hand each write to committer_submit as a command (command.h) and return at
 * once. The committer thread takes everything queued and applies each command
 * with fsm_apply (fsm.h) — the code that applies Raft entries in cluster mode,
 * so a write does the same thing in both modes, exactly-once by (client id,
 * request id) included. A command gets the next index of its partition's
 * group, the group's applied index + 1: that index is the version it writes,
 * and the applied index, stored in the same batch, is the partition's
 * sequence. The committer writes the batch with a single synced write
 * (fsm_flush_synced), and only then hands it to the completer thread, which
 * calls each write's `done` callback while the committer already runs the
 * next sync. While one sync is in progress, new writes queue up and share the
 * next one, so with N concurrent writers a sync carries up to N writes (see
 * docs/performance.md).
 *
 * Invariants:
 *  1. `done` runs only after the batch holding the write is durable (synced)
 *     or has failed — also for a write whose result is a conflict: its
 *     answer may rest on an earlier write of the same batch.
 *  2. Commands are applied in submission order; each sees the effect of
 *     every earlier one, staged in the same batch or not (fsm.h invariant 5).
 *  3. After a failed sync the committer is poisoned: the disk state of that
 *     batch is unknown (fsync errors are not retryable), so every later write
 *     fails with OKV_EUNAVAILABLE until the node restarts and recovers from
 *     its WAL. Reads keep working. A command fsm_apply fails on poisons it
 *     too: the batch may hold part of that command, so it is never written.
 */
#ifndef OKV_SERVER_COMMITTER_H
#define OKV_SERVER_COMMITTER_H

#include <stdint.h>

#include "command.h"
#include "kvstore.h"

typedef struct committer committer;

typedef struct commit_op commit_op;
struct commit_op {
    /* The write. table_id and partition must be a partition of kv's catalog;
     * key and value are borrowed until `done`. */
    command cmd;
    /* OKV_OK: the command was applied and is durable; `result` is what the
     * client sees (OKV_OK, OKV_ECONFLICT when a version condition failed,
     * OKV_EINVAL for a request id below the client's watermark) — the result
     * fsm_apply gave, or the recorded one for a repeated request. Otherwise
     * `err` says why: OKV_EUNKNOWN (the synced write failed: it may or may
     * not be on disk), OKV_EUNAVAILABLE (not applied), OKV_EINVAL (a
     * malformed command, not applied), or the error fsm_apply failed with
     * (not applied; invariant 3). */
    int code;
    command_result result;
    okv_error err;
    /* Called on the completer thread (or, for a write refused before it was
     * applied, the committer or submitting thread) once the result is final.
     * It may free the op. It must not block for long. */
    void (*done)(commit_op *op);
    commit_op *next;      /* private to the committer */
};

typedef struct committer_stats {
    uint64_t writes;      /* commands made durable (conflicts included) */
    uint64_t syncs;       /* synced batches written */
} committer_stats;

/* Starts the committer thread over kv (borrowed; must outlive the
 * committer). Before that it moves the version sequences of a data dir
 * written by an older orderkvd into the applied indexes
 * (kvstore_migrate_sequences), so single-node mode must be decided first. */
int committer_new(committer **out, kvstore *kv, okv_error *err);

/* Queues op; op->done will be called exactly once. Thread-safe. After
 * committer_free has begun, ops fail with OKV_EUNAVAILABLE. */
void committer_submit(committer *c, commit_op *op);

void committer_get_stats(committer *c, committer_stats *out);

/* Finishes every queued write, stops the thread and frees. Accepts NULL. */
void committer_free(committer *c);

#endif
