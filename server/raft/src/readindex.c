/*
 * readindex.c — ReadIndex (rules Q1-Q3, readindex.h).
 *
 * Design notes
 * ------------
 * Rather than one heartbeat round per request, requests accepted since the
 * last heartbeat share a sequence number: read_seq is incremented once per
 * batch, heartbeats carry it, responses echo it, and every voter's highest
 * echo is kept in its progress (read_ack). The sequence a quorum has
 * acknowledged is the quorum value of those echoes (self counts as read_seq),
 * and every request with seq at or below it is confirmed.
 *
 * Invariants:
 *   I1. A request's index is the commit index at a moment after the leader
 *       committed an entry of its term and before the heartbeat round that
 *       confirms it was sent.
 *   I2. reads[] is ordered by seq, with seq == 0 (waiting for Q1) only in a
 *       prefix.
 *   I3. Leaving the leader role drops every pending request.
 */
#include <stdlib.h>
#include <string.h>

#include "readindex.h"

static bool committed_in_term(const struct raft_node *r)
{
    return raft_log_term_or_zero(&r->log, r->log.committed) == r->term;
}

static void respond(struct raft_node *r, raft_id from, uint64_t index,
                    uint64_t ctx)
{
    if (from == RAFT_NONE || from == r->id) {
        raft_readindex_add_state(r, index, ctx);
        return;
    }
    struct raft_message *m = raft_send(r, from, RAFT_MSG_READ_INDEX_RESP,
                                       false);
    m->index = index;
    m->ctx = ctx;
}

static uint64_t next_seq(struct raft_node *r)
{
    /* One new heartbeat round per Ready at most: requests in the same Ready
     * share the round's sequence. */
    if (!r->hb_pending) {
        r->read_seq++;
        r->hb_pending = true;
    }
    return r->read_seq;
}

void raft_readindex_request(struct raft_node *r, raft_id from, uint64_t ctx)
{
#ifdef RAFT_PLANTED_BUGS
    if (RAFT_BUG(r, RAFT_BUG_STALE_READ)) {
        respond(r, from, r->log.committed, ctx); /* no Q1, no Q2 */
        return;
    }
#endif
    bool ready = committed_in_term(r);
    if (ready && r->conf.n_voters == 1 && raft_is_voter(r)) {
        respond(r, from, r->log.committed, ctx); /* we are the quorum */
        return;
    }
    if (r->n_reads == r->cap_reads) {
        size_t cap = r->cap_reads == 0 ? 16 : r->cap_reads * 2;
        struct raft_read_req *v = realloc(r->reads, cap * sizeof(*v));
        raft_assert(v != NULL);
        r->reads = v;
        r->cap_reads = cap;
    }
    struct raft_read_req *q = &r->reads[r->n_reads++];
    q->ctx = ctx;
    q->from = from;
    q->index = ready ? r->log.committed : 0;
    q->seq = ready ? next_seq(r) : 0;
}

void raft_readindex_on_commit(struct raft_node *r)
{
    if (!committed_in_term(r))
        return;
    for (size_t k = 0; k < r->n_reads && r->reads[k].seq == 0; k++) {
        r->reads[k].index = r->log.committed;
        r->reads[k].seq = next_seq(r);
    }
    if (r->conf.n_voters == 1 && raft_is_voter(r))
        raft_readindex_ack(r, r->id, r->read_seq);
}

void raft_readindex_ack(struct raft_node *r, raft_id from, uint64_t seq)
{
    uint64_t vals[RAFT_MAX_NODES];
    uint32_t n = 0;

    for (uint32_t k = 0; k < r->n_prs; k++) {
        struct raft_progress *pr = &r->prs[k];
        if (pr->id == from && pr->read_ack < seq)
            pr->read_ack = seq;
        if (pr->voter)
            vals[n++] = pr->id == r->id ? r->read_seq : pr->read_ack;
    }
    if (n == 0 || r->n_reads == 0)
        return;
    uint64_t acked = raft_quorum_value(vals, n, n / 2 + 1);
    size_t done = 0;
    while (done < r->n_reads && r->reads[done].seq != 0 &&
           r->reads[done].seq <= acked) {
        respond(r, r->reads[done].from, r->reads[done].index,
                r->reads[done].ctx);
        done++;
    }
    if (done > 0) {
        memmove(r->reads, r->reads + done,
                (r->n_reads - done) * sizeof(*r->reads));
        r->n_reads -= done;
    }
}

void raft_readindex_add_state(struct raft_node *r, uint64_t index,
                              uint64_t ctx)
{
    if (r->n_read_states == r->cap_read_states) {
        size_t cap = r->cap_read_states == 0 ? 16 : r->cap_read_states * 2;
        struct raft_read_state *v =
            realloc(r->read_states, cap * sizeof(*v));
        raft_assert(v != NULL);
        r->read_states = v;
        r->cap_read_states = cap;
    }
    r->read_states[r->n_read_states].index = index;
    r->read_states[r->n_read_states].ctx = ctx;
    r->n_read_states++;
}

void raft_readindex_reset(struct raft_node *r)
{
    r->n_reads = 0; /* I3: callers time out and retry elsewhere */
    for (uint32_t k = 0; k < r->n_prs; k++)
        r->prs[k].read_ack = 0;
}
