/*
 * raftstore_lease.c — leader leases (raftstore.h, raftstore_config.lease_reads).
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

static uint64_t lease_ms(const raftstore *rs)
{
    /* A follower's lease lasts at least election_ticks - 1 of its ticks
     * (the first may come at once); 10% off for clock rates. */
    return (uint64_t)(rs->cfg.election_ticks - 1) * (uint64_t)rs->cfg.tick_ms * 9 / 10;
}

/* The lease a majority's confirmation of read r gives (raftstore.h): the
 * heartbeat round that confirmed it left after r->issued_ms, and followers
 * that answered ignore votes for election_ticks ticks after it, so no other
 * leader can exist before issued_ms + lease_ms. Also proves the leader has
 * applied an entry of its term (r->index is such a commit index). */
void rs_lease_extend(grp *g, const pending_read *r)
{
    raftstore *rs = g->rs;
    if (!rs->cfg.lease_reads || !r->issued_ms)
        return;
    struct raft_status st;
    raft_status(g->node, &st);
    if (st.role != RAFT_LEADER || st.term != r->lease_term || st.transferee != RAFT_NONE ||
        st.term == g->no_lease_term)
        return;
    uint64_t until = r->issued_ms + lease_ms(rs);
    if (OKV_FAILPOINT("lease.never_ends"))
        until = UINT64_MAX / 2;   /* planted bug: the lease outlives the leadership */
    if (g->lease_term != st.term || until > atomic_load(&g->lease_until)) {
        g->lease_term = st.term;
        atomic_store(&g->lease_until, until);
    }
}

/* Ends the lease of every group this node may no longer lead (another
 * term, a transfer under way); before each Ready is handled and before a
 * transfer starts. */
void rs_lease_check(grp *g)
{
    if (!atomic_load(&g->lease_until) || OKV_FAILPOINT("lease.never_ends"))
        return;
    struct raft_status st;
    raft_status(g->node, &st);
    if (st.role != RAFT_LEADER || st.term != g->lease_term || st.transferee != RAFT_NONE)
        atomic_store(&g->lease_until, 0);
}

static void lease_renewed(void *arg, int code, uint64_t leader_hint)
{
    (void)code;
    (void)leader_hint;
    grp *g = arg;
    atomic_store(&g->lease_renewing, 0);
}

int raftstore_lease_read(raftstore *rs, uint64_t group)
{
    if (!rs->cfg.lease_reads)
        return 0;
    grp *g = rs_find_group(rs, group);   /* groups never change once started */
    if (!g)
        return 0;
    uint64_t until = atomic_load(&g->lease_until), now = rs_now_ms(rs);
    if (now >= until)
        return 0;
    if (atomic_load(&g->applied_pub) < atomic_load(&g->commit_seen) &&
        !OKV_PLANTED(PLANT_LEASE_STALE))
        return 0;   /* raftstore_read answers once the apply catches up */
    int expected = 0;
    if (until - now < lease_ms(rs) / 2 &&
        atomic_compare_exchange_strong(&g->lease_renewing, &expected, 1))
        rs_read_item(rs, group, lease_renewed, g, 1);   /* a renewal needs the round */
    return 1;
}
