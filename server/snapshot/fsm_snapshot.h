/*
 * fsm_snapshot.h — a partition replica's applied state as a Raft snapshot,
 * moved between nodes without ever being held in memory
 * (docs/storage-format.md "Partition snapshots").
 *
 * The state of group G is: its user keys (data CF, prefix table ‖
 * partition), its exactly-once records, two-phase commit's locks and
 * records, and client watermarks (meta CF, 'D', 'T' and 'W' keys of G); with its applied index ('A') that is everything
 * the state machine (fsm.h) keeps for G.
 *
 * What a Raft snapshot's `data` holds is a small DESCRIPTOR, never the
 * partition:
 *   LOCAL     "the state is this node's engine at the snapshot's index" —
 *             what compaction records in the raft log ('S' key), in O(1);
 *   RECEIVED  "the state is in SST files under <data dir>/snap/<name>" —
 *             what the snapshot receiver hands to the raft loop once a
 *             stream from the leader arrived whole and checked.
 *
 * Sending: a reader walks G's keys in a RocksDB snapshot (engine_sst.h),
 * data prefix first, then 'D', 'T', 'W' — byte order within each column
 * family, which is the order SST files need.
 *
 * Receiving: a writer puts the records into two SST files (one per column
 * family), each opening with range deletions of G's ranges, so ingesting a
 * file replaces G's state in that family atomically (engine_sst.h).
 *
 * Installing, crash-safe (ingestion cannot join a write batch):
 *   I1. fsm_snapshot_mark_installing: a synced marker in the meta CF
 *       ('I' key of G: index, term, configuration, dir name);
 *   I2. fsm_snapshot_ingest: data.sst, then meta.sst (each atomic; the
 *       files are copied, so they survive for a redo);
 *   I3. the caller's synced batch: the raft log's snapshot record, the
 *       applied index (fsm_snapshot_stage_installed) and the marker's
 *       deletion, together; only then is the dir removed.
 * A crash anywhere after I1 leaves the marker; at the next start the raft
 * store redoes I2 and I3 from the kept files before the group runs
 * (fsm_snapshot_list_installing). Ingesting twice gives the same state.
 *
 * Threads: readers and writers belong to one thread each; the rest is
 * called from the raft loop (or before it starts).
 */
#ifndef OKV_SERVER_FSM_SNAPSHOT_H
#define OKV_SERVER_FSM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "engine_sst.h"
#include "errors.h"
#include "raft.h"

/* ---- descriptors ---------------------------------------------------------- */

enum fsm_snapshot_desc_kind { FSM_SNAPSHOT_LOCAL = 1, FSM_SNAPSHOT_RECEIVED = 2 };

/* Longest dir name under the snap root ("<group>-<index>-<from>-<n>" in
 * decimal, n counting the node's incoming streams), and the largest
 * descriptor. */
#define FSM_SNAPSHOT_NAME_MAX 96
#define FSM_SNAPSHOT_DESC_MAX (11 + FSM_SNAPSHOT_NAME_MAX)

/* Encodes a descriptor into buf (FSM_SNAPSHOT_DESC_MAX bytes suffice);
 * returns its length. name is NULL for LOCAL. */
size_t fsm_snapshot_desc_encode(uint8_t *buf, int kind, const char *name);

/* Returns the kind, filling name (FSM_SNAPSHOT_NAME_MAX + 1 bytes) for
 * RECEIVED; -1 if d is not a descriptor or the name is not one the snapshot
 * receiver makes (so it can never point outside the snap root). */
int fsm_snapshot_desc_decode(const uint8_t *d, size_t len, char *name);

/* ---- dirs ----------------------------------------------------------------- */

/* "<engine dir>/snap" into buf. OKV_EINVAL if it does not fit. */
int fsm_snapshot_root(engine *e, char *buf, size_t cap);

/* The dir name of the n-th incoming stream, a snapshot of group at index
 * from node `from`. n keeps names unique while the process lives (a resend
 * of the same snapshot never meets a dir the raft loop may be ingesting);
 * the root is emptied at every start. */
void fsm_snapshot_dir_name(char *buf, size_t cap, uint64_t group, uint64_t index, uint64_t from,
                           uint64_t n);

/* Removes dir and the files in it (it holds no subdirs). Missing is fine. */
int fsm_snapshot_remove_dir(const char *dir, okv_error *err);

/* Creates the snap root if needed and removes every dir in it except those
 * for which keep(ctx, name) returns 1 (keep may be NULL): what a crash left
 * behind. Before the snapshot receiver runs. */
int fsm_snapshot_clean_root(engine *e, int (*keep)(void *ctx, const char *name), void *ctx,
                            okv_error *err);

/* ---- reading (sender) ----------------------------------------------------- */

typedef struct fsm_snapshot_reader fsm_snapshot_reader;

/* A reader over group's state as s pinned it. s must outlive the reader. */
int fsm_snapshot_reader_new(fsm_snapshot_reader **out, engine_snapshot *s, uint64_t group,
                            okv_error *err);

/* 1 with the next record (cf is an enum snap_cf; key and value are borrowed
 * until the next call), 0 after the last, or a negative OKV_E* code. */
int fsm_snapshot_reader_next(fsm_snapshot_reader *r, int *cf, const uint8_t **key,
                             size_t *key_len, const uint8_t **val, size_t *val_len,
                             okv_error *err);

void fsm_snapshot_reader_free(fsm_snapshot_reader *r);   /* accepts NULL */

/* ---- writing (receiver) --------------------------------------------------- */

typedef struct fsm_snapshot_writer fsm_snapshot_writer;

/* Creates dir (which must not exist) with data.sst and meta.sst for group.
 * e supplies the column families' table options; nothing is written to it. */
int fsm_snapshot_writer_new(fsm_snapshot_writer **out, engine *e, uint64_t group,
                            const char *dir, okv_error *err);

/* Adds one record. OKV_ECORRUPT if the key is outside group's ranges or not
 * strictly after the previous key of its column family (a stream that is
 * damaged or not meant for this group); the writer is then unusable. */
int fsm_snapshot_writer_add(fsm_snapshot_writer *w, int cf, const uint8_t *key, size_t key_len,
                            const uint8_t *val, size_t val_len, okv_error *err);

/* Finishes and syncs both files and the dir. */
int fsm_snapshot_writer_finish(fsm_snapshot_writer *w, okv_error *err);

/* Frees the writer; the dir stays (remove it with fsm_snapshot_remove_dir
 * unless finished and handed on). Accepts NULL. */
void fsm_snapshot_writer_free(fsm_snapshot_writer *w);

/* ---- installing (raft loop) ----------------------------------------------- */

/* I1: writes the install marker of group (synced). */
int fsm_snapshot_mark_installing(engine *e, uint64_t group, const struct raft_snapshot_meta *m,
                                 const char *name, okv_error *err);

/* I2: ingests dir's data.sst, then meta.sst. */
int fsm_snapshot_ingest(engine *e, const char *dir, okv_error *err);

/* I3: stages applied index = index and the marker's deletion into b. */
void fsm_snapshot_stage_installed(engine_batch *b, uint64_t group, uint64_t index);

/* Stages only the marker's deletion (an install found already complete). */
void fsm_snapshot_stage_unmark(engine_batch *b, uint64_t group);

/* Calls fn for every install marker (an install a crash interrupted), in
 * group order. A non-zero return from fn stops the walk and is returned.
 * OKV_ECORRUPT for a marker that does not decode. */
int fsm_snapshot_list_installing(engine *e,
                                 int (*fn)(void *ctx, uint64_t group,
                                           const struct raft_snapshot_meta *m, const char *name),
                                 void *ctx, okv_error *err);

#endif
