/*
 * raftstore_rebalance.c — handing leadership back to preferred nodes.
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

/* Notices a leadership this node lost without handing it over. */
void rs_track_leadership(raftstore *rs, grp *g)
{
    struct raft_status st;
    raft_status(g->node, &st);
    int leads = st.role == RAFT_LEADER;
    if (g->led && !leads && !g->led_transferring)
        g->lost_lead_tick = rs->ticks ? rs->ticks : 1;
    g->led = leads;
    g->led_transferring = leads && st.transferee != RAFT_NONE;
}

/* Ticks during which a node that lost a leadership turns down hand-backs:
 * 30 election timeouts. */
int rs_refuses_handback(const raftstore *rs, const grp *g)
{
    return g->lost_lead_tick &&
           rs->ticks - g->lost_lead_tick < 30u * (uint64_t)rs->cfg.election_ticks;
}

/* A hand-back is worth asking for only when the target has every entry
 * the leader has: the core sends TIMEOUT_NOW only then, and refuses
 * proposals until it does (or the transfer aborts after an election
 * timeout). Asking for a lagging target would refuse this group's writes
 * for an election timeout every time. */
static int caught_up(const grp *g, uint64_t to, const struct raft_status *st)
{
    uint64_t match = 0;
    if (OKV_PLANTED(PLANT_REBALANCE_LAGGING))
        return 1;
    return raft_peer_match(g->node, to, &match) == RAFT_OK && match >= st->last_index;
}

/* Counts a pass for every group's hand-back wait (see grp). */
static void rebalance_pass(grp *g)
{
    if (g->rebalance_wait > 0)
        g->rebalance_wait--;
    if (++g->rebalance_quiet >= 64) {
        g->rebalance_quiet = 0;
        g->rebalance_backoff /= 2;
    }
}

/* Hands groups this node leads back to their preferred leaders (see
 * raftstore_config). One group per pass, so leadership moves gradually and
 * a slow catch-up of one target never blocks many groups at once.
 *
 * A preferred leader that cannot keep the leadership (a failing disk, a
 * slow link: it loses it again to an election, or its TIMEOUT_NOW comes
 * after the abort) would otherwise get it handed back every pass, and the
 * group would spend its time in transfers and elections that refuse
 * writes. So each hand-back doubles the wait before this node hands the
 * group back again (1, 2, 4 ... 32 passes), kept across leaderships and
 * halved every 64 passes without a hand-back. */
void rs_rebalance(raftstore *rs)
{
    if (!rs->cfg.preferred_leader || !rs->cfg.peer_alive)
        return;
    for (size_t i = 0; i < rs->ngroups; i++)
        rebalance_pass(rs->groups[i]);
    for (size_t i = 0; i < rs->ngroups; i++) {
        grp *g = rs->groups[i];
        struct raft_status st;
        raft_status(g->node, &st);
        if (st.role != RAFT_LEADER ||
            (g->rebalance_wait > 0 && !OKV_PLANTED(PLANT_REBALANCE_LAGGING)))
            continue;
        if (st.transferee != RAFT_NONE || (g->transfer_term && st.term == g->transfer_term + 1))
            continue;
        uint64_t want = rs->cfg.preferred_leader(rs->cfg.balance_ctx, g->id);
        if (!want || want == rs->cfg.node_id || !rs->cfg.peer_alive(rs->cfg.balance_ctx, want) ||
            !caught_up(g, want, &st))
            continue;
        atomic_store(&g->lease_until, 0);   /* as in handle_item's ITEM_TRANSFER */
        if (!OKV_PLANTED(PLANT_LATE_TIMEOUT_NOW))
            g->no_lease_term = st.term;
        if (raft_transfer_leader(g->node, want) == RAFT_OK) {
            g->handback_term = st.term;
            g->rebalance_backoff = g->rebalance_backoff ? g->rebalance_backoff * 2 : 1;
            if (g->rebalance_backoff > 32)
                g->rebalance_backoff = 32;
            g->rebalance_wait = g->rebalance_backoff;
            g->rebalance_quiet = 0;
            rs_logf(rs, 2, "group %u/%u: handing leadership back to preferred node %llu",
                  (unsigned)(g->id >> 32), (unsigned)g->id, (unsigned long long)want);
            return;
        }
    }
}
