/*
 * membership.h — single-server membership changes (dissertation §4.1-4.3).
 *
 *   M1 A configuration takes effect on a server as soon as its entry is in
 *      that server's log (appended, not committed). If the entry is removed
 *      by a conflict, the server reverts to the previous configuration.
 *   M2 A leader appends a change only when the previous change is committed
 *      (at most one uncommitted change per log) and only after it has
 *      committed an entry of its current term: without that second rule a
 *      leader can overwrite a change committed under another leader (the
 *      single-server change bug, raft-dev 2015).
 *   M3 New servers join as learners (non-voting) and are promoted only after
 *      catching up to the commit index, so adding them never stalls commits.
 *   M4 A leader that removed itself keeps leading (without counting its own
 *      vote) until the change commits, then steps down.
 * Consequence of M1+M2 used by the revert logic: in any log, every
 * configuration entry except the last is committed, so a truncation can
 * remove at most one configuration entry and conf_prev suffices.
 */
#ifndef ORDERKV_RAFT_MEMBERSHIP_H
#define ORDERKV_RAFT_MEMBERSHIP_H

#include "raft_int.h"

/* M1: applies the change carried by a CONF entry at `index`. */
void raft_membership_apply_entry(struct raft_node *r,
                                 const struct raft_entry *e);
/* M1: the entry at conf_index was truncated. */
void raft_membership_revert(struct raft_node *r);
/* Installs a configuration from a snapshot or from storage at boot. */
void raft_membership_reset(struct raft_node *r, const struct raft_conf *c,
                           uint64_t index);
/* Rebuilds r->prs to match r->conf, keeping existing progress. */
void raft_membership_sync_progress(struct raft_node *r);
/* M4: called by the leader after commit moved. */
void raft_membership_on_commit(struct raft_node *r);

#endif
