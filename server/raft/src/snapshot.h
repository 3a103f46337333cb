/*
 * snapshot.h — log compaction and InstallSnapshot (Raft paper §7).
 *
 * The snapshot's content is opaque; the core only knows its metadata (last
 * included index and term, configuration at that index). The host takes
 * snapshots of its applied state and compacts storage itself.
 *
 *   S1 (Leaders) When a follower needs an entry that is no longer in the
 *      log, send the latest snapshot instead and pause that follower until it
 *      answers (or a stall timeout re-probes it).
 *   S2 (InstallSnapshot receiver) If the snapshot is not newer than our
 *      commit index, ignore it. If our log has an entry with the snapshot's
 *      index and term, keep the log and just advance commit (the snapshot is
 *      a prefix of what we have). Otherwise discard the whole log and reset
 *      from the snapshot, including its configuration.
 */
#ifndef ORDERKV_RAFT_SNAPSHOT_H
#define ORDERKV_RAFT_SNAPSHOT_H

#include "raft_int.h"

/* S1. Returns true if a snapshot message was queued. */
bool raft_snapshot_send(struct raft_node *r, struct raft_progress *pr);
/* S2. */
void raft_snapshot_handle(struct raft_node *r, const struct raft_message *m);

#endif
