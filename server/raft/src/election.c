/*
 * election.c — role transitions, campaigns and votes (rules E1-E6 in
 * election.h).
 *
 * Design notes
 * ------------
 * Election Safety (at most one leader per term) rests on two facts kept
 * here: a node grants at most one vote per term (E3: `vote` is part of the
 * hard state and is persisted before the grant leaves — the response is an
 * after-persist message), and a candidate needs a quorum of its latest
 * configuration, which overlaps any other quorum of a configuration that
 * differs by one server (membership.h).
 *
 * Invariants:
 *   V1. A granted VOTE_RESP for term T is only sent with vote == candidate
 *       and term == T recorded in the hard state of the same Ready.
 *   V2. A pre-vote changes neither term nor vote on either side.
 *   V3. A candidate counts only answers from voters of its configuration.
 */
#include <string.h>

#include "election.h"
#include "membership.h"
#include "readindex.h"
#include "replication.h"
#include "transfer.h"

static void randomize_timeout(struct raft_node *r)
{
    int t = r->cfg.election_tick;
    r->randomized_timeout = t + (int)(raft_rand(r) % (uint64_t)t);
}

void raft_reset(struct raft_node *r, uint64_t term)
{
    if (term != r->term) {
        raft_assert(term > r->term); /* N1 */
        r->term = term;
        r->vote = RAFT_NONE;
    }
    r->leader = RAFT_NONE;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    randomize_timeout(r);
    r->transferee = RAFT_NONE;
    r->n_votes = 0;
    r->bcast_pending = false;
    r->hb_pending = false;
    raft_readindex_reset(r);
}

void raft_become_follower(struct raft_node *r, uint64_t term, raft_id leader)
{
    raft_reset(r, term);
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    raft_logf(r, RAFT_LOG_DEBUG, "became follower (leader %llu)",
              (unsigned long long)leader);
}

void raft_become_pre_candidate(struct raft_node *r)
{
    raft_assert(r->role != RAFT_LEADER);
    /* V2: term and vote stay; only the campaign bookkeeping resets. */
    r->role = RAFT_PRE_CANDIDATE;
    r->leader = RAFT_NONE;
    r->n_votes = 0;
    randomize_timeout(r);
    raft_logf(r, RAFT_LOG_DEBUG, "became pre-candidate");
}

void raft_become_candidate(struct raft_node *r)
{
    raft_assert(r->role != RAFT_LEADER);
    raft_reset(r, r->term + 1);
    r->vote = r->id;
    r->role = RAFT_CANDIDATE;
    raft_logf(r, RAFT_LOG_DEBUG, "became candidate");
}

void raft_become_leader(struct raft_node *r)
{
    uint64_t last;

    raft_assert(r->role == RAFT_CANDIDATE);
    raft_reset(r, r->term);
    r->role = RAFT_LEADER;
    r->leader = r->id;
    last = raft_log_last_index(&r->log);
    for (uint32_t k = 0; k < r->n_prs; k++) {
        struct raft_progress *pr = &r->prs[k];
        bool voter = pr->voter;
        raft_id id = pr->id;
        uint32_t cap = pr->in_cap;
        raft_progress_close(pr);
        raft_progress_init(pr, id, voter, last + 1, cap);
        if (id == r->id)
            pr->match = r->log.stable;
    }
    /* §5.4.2 / §8: commit an entry of the new term as soon as possible so
     * that earlier entries commit with it and reads become possible (Q1). */
    raft_replication_append_local(r, RAFT_ENTRY_NORMAL, NULL, 0);
    raft_logf(r, RAFT_LOG_INFO, "became leader at %llu",
              (unsigned long long)(last + 1));
}

bool raft_election_in_lease(const struct raft_node *r)
{
    return r->cfg.check_quorum && (r->leader != RAFT_NONE || r->boot_quiet) &&
           r->election_elapsed < r->cfg.election_tick;
}

enum poll_result { POLL_PENDING, POLL_WON, POLL_LOST };

/* V3: records one answer and tallies the configuration's voters. */
static enum poll_result tally(struct raft_node *r, raft_id from, bool granted)
{
    uint32_t yes = 0, no = 0, q = raft_quorum(r);
    bool seen = false;

    for (uint32_t k = 0; k < r->n_votes; k++) {
        if (r->votes_from[k] == from)
            seen = true;
    }
    if (!seen && r->n_votes < RAFT_MAX_NODES) {
        r->votes_from[r->n_votes] = from;
        r->votes_granted[r->n_votes] = granted;
        r->n_votes++;
    }
    for (uint32_t k = 0; k < r->n_votes; k++) {
        if (!raft_conf_is_voter(&r->conf, r->votes_from[k]))
            continue;
        if (r->votes_granted[k])
            yes++;
        else
            no++;
    }
    if (yes >= q)
        return POLL_WON;
    if (no >= q)
        return POLL_LOST;
    return POLL_PENDING;
}

void raft_campaign_start(struct raft_node *r, bool pre, bool transfer)
{
    uint64_t term;
    uint8_t type;

    if (!raft_is_voter(r))
        return; /* learners and removed nodes never campaign */
    if (pre) {
        raft_become_pre_candidate(r);
        term = r->term + 1;
        type = RAFT_MSG_PREVOTE;
    } else {
        raft_become_candidate(r);
        term = r->term;
        type = RAFT_MSG_VOTE;
    }
    if (tally(r, r->id, true) == POLL_WON) {
        /* Single-voter configuration: we are the quorum. */
        if (pre)
            raft_campaign_start(r, false, transfer);
        else
            raft_become_leader(r);
        return;
    }
    uint64_t li = raft_log_last_index(&r->log);
    uint64_t lt = raft_log_last_term(&r->log);
    for (uint32_t k = 0; k < r->conf.n_voters; k++) {
        raft_id to = r->conf.voters[k];
        if (to == r->id)
            continue;
        /* A real request must not leave before term and self-vote are
         * durable (V1 for our own vote); a pre-vote changes nothing. */
        struct raft_message *m = raft_send(r, to, type, !pre);
        m->term = term;
        m->index = li;
        m->log_term = lt;
        m->transfer = transfer ? 1 : 0;
    }
    raft_logf(r, RAFT_LOG_DEBUG, "%s campaign for term %llu",
              pre ? "pre-vote" : "real", (unsigned long long)term);
}

void raft_election_tick(struct raft_node *r)
{
    r->election_elapsed++;
    if (r->election_elapsed >= r->cfg.election_tick)
        r->boot_quiet = false;
    if (!raft_is_voter(r))
        return;
    if (r->election_elapsed >= r->randomized_timeout) {
        r->election_elapsed = 0;
        raft_campaign_start(r, r->cfg.pre_vote, false); /* E1 */
    }
}

/* E6: counts voters heard from since the last round (self included). */
static bool quorum_active(struct raft_node *r)
{
    uint32_t active = 0;
    for (uint32_t k = 0; k < r->n_prs; k++) {
        struct raft_progress *pr = &r->prs[k];
        if (pr->id == r->id) {
            if (pr->voter)
                active++;
            continue;
        }
        if (pr->voter && pr->recent_active)
            active++;
        pr->recent_active = false;
    }
    return active >= raft_quorum(r);
}

void raft_election_tick_leader(struct raft_node *r)
{
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    for (uint32_t k = 0; k < r->n_prs; k++) {
        if (r->prs[k].state == RAFT_PR_SNAPSHOT)
            r->prs[k].stalled_ticks++;
    }
    if (r->election_elapsed >= r->cfg.election_tick) {
        r->election_elapsed = 0;
        if (r->cfg.check_quorum && !quorum_active(r)) {
            raft_logf(r, RAFT_LOG_INFO, "stepping down: no quorum heard");
            raft_become_follower(r, r->term, RAFT_NONE);
            return;
        }
        if (r->transferee != RAFT_NONE)
            raft_transfer_abort(r); /* T3 */
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_tick) {
        r->heartbeat_elapsed = 0;
        raft_replication_bcast_heartbeat(r);
    }
}

void raft_election_handle_request(struct raft_node *r,
                                  const struct raft_message *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    bool can_vote =
        r->vote == m->from ||
        (r->vote == RAFT_NONE && r->leader == RAFT_NONE) ||
        (pre && m->term > r->term);
#ifdef RAFT_PLANTED_BUGS
    if (RAFT_BUG(r, RAFT_BUG_VOTE_TWICE) && !pre)
        can_vote = true;
#endif
    bool up_to_date = raft_log_is_up_to_date(&r->log, m->index, m->log_term);
#ifdef RAFT_PLANTED_BUGS
    if (RAFT_BUG(r, RAFT_BUG_NO_LOG_CHECK))
        up_to_date = true;
#endif
    uint8_t type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
    struct raft_message *resp = raft_send(r, m->from, type, true);
    if (can_vote && up_to_date) {
        /* A pre-vote grant answers in the term asked about (V2). */
        resp->term = m->term;
        if (!pre) {
            r->election_elapsed = 0;
            r->vote = m->from;
        }
        raft_logf(r, RAFT_LOG_DEBUG, "granted %s to %llu for term %llu",
                  pre ? "pre-vote" : "vote", (unsigned long long)m->from,
                  (unsigned long long)m->term);
    } else {
        resp->reject = 1;
    }
}

void raft_election_handle_response(struct raft_node *r,
                                   const struct raft_message *m)
{
    bool pre = r->role == RAFT_PRE_CANDIDATE;
    switch (tally(r, m->from, m->reject == 0)) {
    case POLL_WON:
        if (pre) {
            raft_campaign_start(r, false, false);
        } else {
            raft_become_leader(r);
        }
        break;
    case POLL_LOST:
        raft_become_follower(r, r->term, RAFT_NONE);
        break;
    default:
        break;
    }
}
