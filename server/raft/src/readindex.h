/*
 * readindex.h — linearizable reads without log writes (dissertation §6.4).
 *
 *   Q1 The leader may serve reads only after it has committed an entry of its
 *      own term (then its commit index is at least that of any previous
 *      leader). Requests arriving earlier wait for that commit.
 *   Q2 Record the commit index as the read index, then confirm leadership by
 *      a round of heartbeats: once a quorum of voters acknowledged a
 *      heartbeat sent after the request arrived, no newer leader can have
 *      committed anything the read would miss.
 *   Q3 A follower forwards the request to its leader and gets the read index
 *      back; the host serves the read once applied >= read index.
 * Requests are ordered by heartbeat sequence: acknowledging sequence s
 * confirms every request with seq <= s.
 */
#ifndef ORDERKV_RAFT_READINDEX_H
#define ORDERKV_RAFT_READINDEX_H

#include "raft_int.h"

/* Leader: accepts a read from `from` (RAFT_NONE = local). */
void raft_readindex_request(struct raft_node *r, raft_id from, uint64_t ctx);
/* Leader: a heartbeat response acknowledged sequence `seq`. */
void raft_readindex_ack(struct raft_node *r, raft_id from, uint64_t seq);
/* Leader: commit moved; requests waiting for Q1 may proceed. */
void raft_readindex_on_commit(struct raft_node *r);
/* Follower: the leader answered a forwarded request. */
void raft_readindex_add_state(struct raft_node *r, uint64_t index,
                              uint64_t ctx);
/* Drops every pending request (leadership lost). */
void raft_readindex_reset(struct raft_node *r);

#endif
