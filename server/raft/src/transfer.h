/*
 * transfer.h — leadership transfer (dissertation §3.10).
 *
 *   T1 The leader stops accepting proposals, brings the target's log up to
 *      date, then sends it TIMEOUT_NOW.
 *   T2 On TIMEOUT_NOW the target starts a real election at once (no
 *      pre-vote, flagged so that E5 leader stickiness does not reject it).
 *   T3 If the transfer does not complete within an election timeout, the
 *      leader aborts it and accepts proposals again.
 */
#ifndef ORDERKV_RAFT_TRANSFER_H
#define ORDERKV_RAFT_TRANSFER_H

#include "raft_int.h"

/* Leader: the target's progress moved; send TIMEOUT_NOW if caught up (T1). */
void raft_transfer_maybe_finish(struct raft_node *r,
                                struct raft_progress *pr);
void raft_transfer_abort(struct raft_node *r);

#endif
