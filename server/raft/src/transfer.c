/*
 * transfer.c — leadership transfer (rules T1-T3, transfer.h).
 *
 * Design notes
 * ------------
 * TIMEOUT_NOW is sent only once the target's match equals our last index:
 * the target then wins the election it starts (its log is as up-to-date as
 * ours, and its vote request bypasses leader stickiness). Proposals are
 * refused meanwhile so the target does not fall behind again; if the target
 * is slow or gone, the election-timeout abort (T3) restores service.
 */
#include "replication.h"
#include "transfer.h"

void raft_transfer_maybe_finish(struct raft_node *r, struct raft_progress *pr)
{
    if (r->transferee == RAFT_NONE || pr->id != r->transferee)
        return;
    if (pr->match == raft_log_last_index(&r->log)) {
        raft_send(r, pr->id, RAFT_MSG_TIMEOUT_NOW, false);
        raft_logf(r, RAFT_LOG_INFO, "sent timeout-now to %llu",
                  (unsigned long long)pr->id);
    }
}

void raft_transfer_abort(struct raft_node *r)
{
    raft_logf(r, RAFT_LOG_INFO, "leadership transfer to %llu aborted",
              (unsigned long long)r->transferee);
    r->transferee = RAFT_NONE;
}

int raft_transfer_leader(struct raft_node *r, raft_id to)
{
    if (r->ready_outstanding)
        return RAFT_ERR_BUSY;
    if (r->role != RAFT_LEADER)
        return RAFT_ERR_NOT_LEADER;
    if (to == r->id)
        return 0; /* already leader */
    if (!raft_conf_is_voter(&r->conf, to))
        return RAFT_ERR_INVALID;
    if (r->transferee == to)
        return 0;
    struct raft_progress *pr = raft_progress_find(r, to);
    raft_assert(pr != NULL);
    r->transferee = to;
    /* T3 measures the transfer from now: a full election timeout. */
    r->election_elapsed = 0;
    if (pr->match == raft_log_last_index(&r->log))
        raft_transfer_maybe_finish(r, pr);
    else
        raft_replication_send_append(r, pr, true);
    return 0;
}
