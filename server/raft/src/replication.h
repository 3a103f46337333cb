/*
 * replication.h — log replication and commitment (Raft paper §5.3, §5.4.2;
 * dissertation §10.2.1 pipelining, §5.3 fast backtracking).
 *
 * Rules implemented here:
 *   R1 (AppendEntries receiver, Figure 2) Reply false if term < currentTerm
 *      or the log has no entry at prevLogIndex with prevLogTerm; delete a
 *      conflicting entry and all that follow; append new entries; set
 *      commitIndex = min(leaderCommit, index of last new entry).
 *   R2 (Leaders) On a successful response update nextIndex and matchIndex;
 *      on rejection decrement nextIndex and retry — here by the conflict
 *      hint: the follower returns the conflicting term and the first index
 *      it holds for that term; the leader skips to just past its own last
 *      entry of that term, or to that first index.
 *   R3 (Leaders, Figure 8 / §5.4.2) commitIndex = N only if a majority has
 *      matchIndex >= N and log[N].term == currentTerm. The leader counts
 *      itself only for entries it has persisted.
 *   R4 Pipelining and flow control: followers in REPLICATE get appends
 *      without waiting for acknowledgement, at most max_inflight messages
 *      and max_msg_bytes of payload each (progress.h).
 */
#ifndef ORDERKV_RAFT_REPLICATION_H
#define ORDERKV_RAFT_REPLICATION_H

#include "raft_int.h"

/* Leader: sends what progress allows to one follower. With send_if_empty an
 * append without entries still goes out (probes, commit updates). Returns
 * true if a message was queued. */
bool raft_replication_send_append(struct raft_node *r,
                                  struct raft_progress *pr,
                                  bool send_if_empty);
/* Leader: appends to every follower (called from raft_ready). */
void raft_replication_bcast_append(struct raft_node *r);
void raft_replication_bcast_heartbeat(struct raft_node *r);

/* Leader: R3. Returns true if commit moved. */
bool raft_replication_maybe_commit(struct raft_node *r);

/* Leader: appends a new entry of the current term; takes data ownership. */
void raft_replication_append_local(struct raft_node *r, uint8_t type,
                                   uint8_t *data, uint32_t len);

/* Follower side of R1 and of heartbeats. */
void raft_replication_handle_append(struct raft_node *r,
                                    const struct raft_message *m);
void raft_replication_handle_heartbeat(struct raft_node *r,
                                       const struct raft_message *m);
/* Leader side of R2. */
void raft_replication_handle_append_resp(struct raft_node *r,
                                         const struct raft_message *m);
void raft_replication_handle_heartbeat_resp(struct raft_node *r,
                                            const struct raft_message *m);

struct raft_progress *raft_progress_find(struct raft_node *r, raft_id id);

#endif
