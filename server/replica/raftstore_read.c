/*
 * raftstore_read.c — linearizable reads: ReadIndex rounds, read points under
 * a lease, retries (raftstore.h invariant 4).
 */
#include "raftstore_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failpoint.h"
#include "planted.h"
#include "raftlog.h"

/* Reads not answered within this many ticks are failed (a read request can
 * be lost on a leader change; the caller may retry it safely). */
#define READ_TIMEOUT_TICKS 30
/* A read index request or its answer can be lost on the way (a dropped
 * connection, a leader change); a read still without its index asks again
 * every this many ticks, under a new context. Asking twice is harmless:
 * the first answer that arrives is used. */
#define READ_RETRY_TICKS 3

void raftstore_read(raftstore *rs, uint64_t group, raftstore_read_cb cb, void *arg)
{
    rs_read_item(rs, group, cb, arg, 0);
}

void rs_read_item(raftstore *rs, uint64_t group, raftstore_read_cb cb, void *arg, int round)
{
    item *it = calloc(1, sizeof *it);
    if (!it) {
        cb(arg, OKV_EUNAVAILABLE, 0);
        return;
    }
    it->round = round;
    it->kind = ITEM_READ;
    it->group = group;
    it->rcb = cb;
    it->arg = arg;
    rs_push(rs, it);
}

/* A read from the inbox: under a valid lease its read point is the
 * commit index (only the apply is awaited); otherwise a ReadIndex round. */
void rs_read_start(raftstore *rs, grp *g, item *it)
{
    pending_read *r = calloc(1, sizeof *r);
    if (!r) {
        it->rcb(it->arg, OKV_EUNAVAILABLE, 0);
        return;
    }
    r->ctx = ++rs->read_seq;
    r->cb = it->rcb;
    r->arg = it->arg;
    struct raft_status st;
    raft_status(g->node, &st);
    if (st.role == RAFT_LEADER) {
        r->issued_ms = rs_now_ms(rs);
        r->lease_term = st.term;
        if (!it->round && r->issued_ms < atomic_load(&g->lease_until) &&
            st.term == g->lease_term && st.transferee == RAFT_NONE) {
            /* Leased: every write acknowledged so far is at or below the
             * commit index; only the apply is awaited (serve_reads). */
            r->index = st.commit ? st.commit : 1;
            r->issued_ms = 0;   /* extends nothing: no quorum answered */
            r->next = g->reads;
            g->reads = r;
            return;
        }
    }
    int rc = raft_read_index(g->node, r->ctx);
    if (rc) {
        free(r);
        it->rcb(it->arg, OKV_ENOTLEADER, rs_leader_of(g));
        return;
    }
    r->next = g->reads;
    g->reads = r;
}

void rs_serve_reads(grp *g, int tick)
{
    pending_read **pp = &g->reads;
    while (*pp) {
        pending_read *r = *pp;
        if (tick)
            r->ticks++;
        if (r->index && g->applied >= r->index) {
            *pp = r->next;
            rs_lease_extend(g, r);
            r->cb(r->arg, OKV_OK, 0);
            free(r);
        } else if (r->ticks > READ_TIMEOUT_TICKS) {
            *pp = r->next;
            r->cb(r->arg, OKV_EUNAVAILABLE, rs_leader_of(g));
            free(r);
        } else {
            if (tick && !r->index && r->ticks % READ_RETRY_TICKS == 0) {
                /* The same context: an answer to any of the rounds asked
                 * for this read is a valid read point for it. */
                uint64_t ctx = OKV_PLANTED(PLANT_READ_RETRY_CTX) ? ++g->rs->read_seq : r->ctx;
                if (raft_read_index(g->node, ctx) == RAFT_OK)
                    r->ctx = ctx;
            }
            pp = &r->next;
        }
    }
}

void rs_note_read_states(grp *g, const struct raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_read_states; i++)
        for (pending_read *r = g->reads; r; r = r->next)
            if (r->ctx == rd->read_states[i].ctx)
                r->index = rd->read_states[i].index;
}
