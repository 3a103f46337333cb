/*
 * election.h — leader election (Raft paper §5.2, §5.4.1; dissertation §9.6
 * pre-vote, §6.2 / §9.6 check-quorum and leader stickiness).
 *
 * Rules implemented here:
 *   E1 (Figure 2, Followers) If election timeout elapses without receiving
 *      AppendEntries from the current leader or granting a vote: convert to
 *      candidate. Timeouts are randomized in [T, 2T) (§5.2).
 *   E2 (Figure 2, Candidates) On conversion: increment currentTerm, vote for
 *      self, reset the election timer, send RequestVote to all other voters.
 *      Majority of votes: become leader. AppendEntries from a leader of the
 *      same term: become follower.
 *   E3 (RequestVote receiver) Reply false if term < currentTerm; grant if
 *      votedFor is null or candidateId and the candidate's log is at least as
 *      up-to-date as ours (§5.4.1). A server votes at most once per term.
 *   E4 (pre-vote) Before E2, ask "would you vote for me in term+1?" without
 *      changing any state; only a quorum of yes starts a real election, so a
 *      partitioned node rejoining does not disrupt a working leader.
 *   E5 (leader stickiness) With check_quorum, a node that heard from a leader
 *      within the election timeout ignores (pre-)vote requests, unless the
 *      request comes from a leadership transfer.
 *   E6 (check-quorum) A leader that has not heard from a quorum within an
 *      election timeout steps down.
 * Only voters of the node's latest configuration campaign; learners never do.
 */
#ifndef ORDERKV_RAFT_ELECTION_H
#define ORDERKV_RAFT_ELECTION_H

#include "raft_int.h"

/* Follower/candidate tick: E1. */
void raft_election_tick(struct raft_node *r);
/* Leader tick: heartbeats, E6, transfer timeout. */
void raft_election_tick_leader(struct raft_node *r);

/* Starts a campaign: pre-vote first when `pre` (E4), else a real election
 * (E2). `transfer` marks a campaign ordered by TIMEOUT_NOW (bypasses E5). */
void raft_campaign_start(struct raft_node *r, bool pre, bool transfer);

/* E3/E4 receiver side for VOTE and PREVOTE. Precondition: term handling in
 * raft_step already ran (m->term >= r->term for VOTE). */
void raft_election_handle_request(struct raft_node *r,
                                  const struct raft_message *m);
/* Candidate side: counts VOTE_RESP / PREVOTE_RESP. */
void raft_election_handle_response(struct raft_node *r,
                                   const struct raft_message *m);

/* E5: true when a (pre-)vote request for a higher term must be ignored. */
bool raft_election_in_lease(const struct raft_node *r);

#endif
