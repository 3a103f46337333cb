/*
 * raftstore_props.c — proposals: proposed on the loop, answered from the
 * applied entry that took their index (raftstore.h invariants 1-2).
 */
#include "raftstore_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failpoint.h"
#include "trace.h"
#include "planted.h"
#include "raftlog.h"

void raftstore_propose(raftstore *rs, uint64_t group, const uint8_t *cmd, size_t len,
                       raftstore_propose_cb cb, void *arg)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        cb(arg, OKV_EUNAVAILABLE, NULL, 0);
        return;
    }
    memcpy(copy, cmd, len);
    raftstore_propose_owned(rs, group, copy, len, cb, arg);
}

void raftstore_propose_owned(raftstore *rs, uint64_t group, uint8_t *cmd, size_t len,
                             raftstore_propose_cb cb, void *arg)
{
    item *it = calloc(1, sizeof *it);
    if (!it) {
        free(cmd);
        cb(arg, OKV_EUNAVAILABLE, NULL, 0);
        return;
    }
    it->kind = ITEM_PROPOSE;
    it->group = group;
    it->cmd = cmd;
    it->len = len;
    it->pcb = cb;
    it->arg = arg;
    rs_push(rs, it);
}

/* A proposal from the inbox: proposed to g's core and tracked until its
 * index applies (settle_props), or answered at once when refused. */
void rs_propose_start(raftstore *rs, grp *g, item *it)
{
    uint64_t index, term;
    int rc = raft_propose_owned(g->node, it->cmd, (uint32_t)it->len, &index, &term);
    if (rc == 0) {
        it->cmd = NULL;   /* the log has it now */
        OKV_TRACE(rs->cfg.node_id, "propose", g->id, index, it->queued_ns);
    }
    if (rc == RAFT_ERR_TOO_LARGE) {
        it->pcb(it->arg, OKV_EINVAL, NULL, 0);
        return;
    }
    if (rc) {
        it->pcb(it->arg, rc == RAFT_ERR_NOT_LEADER ? OKV_ENOTLEADER : OKV_EUNAVAILABLE, NULL,
                rs_leader_of(g));
        return;
    }
    pending_prop *p = calloc(1, sizeof *p);
    if (!p) {
        /* Proposed but untracked: the entry may still commit. */
        it->pcb(it->arg, OKV_EUNKNOWN, NULL, 0);
        return;
    }
    if (OKV_FAILPOINT("kv.ack.before_commit")) {
        /* Planted bug: acknowledged before any quorum has the entry. */
        command_result fake;
        memset(&fake, 0, sizeof fake);
        fake.version = index;
        free(p);
        it->pcb(it->arg, OKV_OK, &fake, 0);
        return;
    }
    atomic_fetch_add_explicit(&rs->io_proposals, 1, memory_order_relaxed);
    p->index = index;
    p->term = term;
    p->cb = it->pcb;
    p->arg = it->arg;
    rs_track_prop(g, p);
}

/* Keeps g->props in index order (settle_props relies on it). Proposals
 * arrive in index order within a term, but those of an earlier leadership
 * stay pending (their entries may still commit), and a node that leads
 * again proposes at indexes below them once its log was truncated. */
void rs_track_prop(grp *g, pending_prop *p)
{
    if (OKV_PLANTED(PLANT_PROPOSAL_ORDER) || !g->props_tail || g->props_tail->index <= p->index) {
        if (g->props_tail)
            g->props_tail->next = p;
        else
            g->props = p;
        g->props_tail = p;
        return;
    }
    pending_prop **pp = &g->props;
    while (*pp && (*pp)->index <= p->index)
        pp = &(*pp)->next;
    p->next = *pp;
    *pp = p;
}

/* A snapshot installed at `index` replaced the log up to it without
 * applying its entries here: a proposal at or below it may or may not be
 * in the state the snapshot brought, so its outcome is unknown (the
 * client resends with the same request id, which the exactly-once table
 * answers). */
void rs_settle_props_snapshot(grp *g, uint64_t index)
{
    if (OKV_PLANTED(PLANT_PROPOSAL_ORDER))
        return;
    while (g->props && g->props->index <= index) {
        pending_prop *p = g->props;
        g->props = p->next;
        if (!g->props)
            g->props_tail = NULL;
        p->cb(p->arg, OKV_EUNKNOWN, NULL, 0);
        free(p);
    }
}

/* Settles the proposals the entry at (index, term) decides. */
void rs_settle_props(grp *g, uint64_t index, uint64_t term, const command_result *r)
{
    while (g->props && g->props->index <= index) {
        pending_prop *p = g->props;
        g->props = p->next;
        if (!g->props)
            g->props_tail = NULL;
        int code = p->index == index && p->term == term ? OKV_OK : OKV_EUNAVAILABLE;
        if (g->rs->cfg.answered)
            g->rs->cfg.answered(g->rs->cfg.answered_ctx, g->id, p->index, p->term, code);
        /* UNAVAILABLE: its index went to another entry */
        p->cb(p->arg, code, code == OKV_OK ? r : NULL, 0);
        free(p);
    }
}
