/*
 * fsm_snapshot.h — a partition replica's applied state as one byte string,
 * for Raft snapshots (docs/storage-format.md "Partition snapshots").
 *
 * A snapshot of group G at index I holds everything the state machine keeps
 * for G: the partition's user keys (data CF) and its exactly-once records
 * and client watermarks (meta CF, 'D' and 'W' keys of G). Installing it
 * replaces all of that and sets G's applied index to I, in the caller's
 * batch — so, written with the Raft log's snapshot record in one synced
 * batch, a crash leaves either the old replica or the new one, never a mix.
 *
 * Format (all integers big-endian):
 *   "OKVSNAP1"  u64 group  u64 index
 *   records: u8 cf (1 data, 2 meta)  u32 key_len  key  u32 val_len  val
 *   u64 FNV-1a of every byte before it
 *
 * Memory: the whole snapshot is built in memory (partitions of a laptop
 * cluster are small); streaming SST files is future work (docs/raft.md).
 */
#ifndef OKV_SERVER_FSM_SNAPSHOT_H
#define OKV_SERVER_FSM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "errors.h"

/* Builds the snapshot of group from what e holds now; the caller must make
 * sure that is exactly the state after applying `index` (the raft loop calls
 * it right after a flush). *out is malloc'd. */
int fsm_snapshot_build(engine *e, uint64_t group, uint64_t index, uint8_t **out, size_t *len,
                       okv_error *err);

/* Checks the snapshot whole (checksum, group, index, every key inside the
 * group's ranges), then stages into b: deletion of the group's current
 * state, the snapshot's records, and applied index = index. OKV_ECORRUPT
 * (b untouched) if anything does not check. */
int fsm_snapshot_stage_install(engine_batch *b, uint64_t group, uint64_t index,
                               const uint8_t *data, size_t len, okv_error *err);

#endif
