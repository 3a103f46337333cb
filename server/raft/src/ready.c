/*
 * ready.c — the output side of the state machine: raft_ready / raft_advance.
 *
 * Design notes
 * ------------
 * The host's contract (raft.h): send Ready.msgs whenever it likes, persist
 * snapshot + entries + hard state durably, only then send
 * Ready.msgs_after_persist, apply the snapshot and committed entries, and
 * call raft_advance. The split of messages is what makes the leader's own
 * disk write overlap with replication while keeping every statement about a
 * node's durable state (votes, acknowledgements) true when it is received.
 *
 * Invariants:
 *   D1. The hard state in a Ready covers every vote and term the Ready's
 *       after-persist messages depend on (they were produced before it was
 *       captured, and nothing runs between raft_ready and raft_advance).
 *   D2. Committed entries handed out never exceed the commit index, and the
 *       Ready that hands them out also persists any of them not yet stable.
 *   D3. raft_advance moves `stable` and `applied` only to what was handed
 *       out, then lets the leader count its own persisted entries (R3).
 */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"
#include "readindex.h"
#include "replication.h"

void raft_message_release(struct raft_message *m)
{
    /* Entries and their payloads share one allocation (see set_entries). */
    free(m->entries);
    m->entries = NULL;
    m->n_entries = 0;
    free(m->snapshot.data);
    m->snapshot.data = NULL;
    m->snapshot.len = 0;
}

static struct raft_hard_state current_hs(const struct raft_node *r)
{
    struct raft_hard_state hs;
    hs.term = r->term;
    hs.vote = r->vote;
    hs.commit = r->log.committed;
#ifdef RAFT_PLANTED_BUGS
    if (RAFT_BUG(r, RAFT_BUG_NO_PERSIST_VOTE) && r->vote != RAFT_NONE &&
        r->vote != r->id)
        hs.vote = r->prev_hs.term == r->term ? r->prev_hs.vote : RAFT_NONE;
#endif
    return hs;
}

static bool hs_equal(const struct raft_hard_state *a,
                     const struct raft_hard_state *b)
{
    return a->term == b->term && a->vote == b->vote && a->commit == b->commit;
}

static uint64_t apply_from(const struct raft_node *r)
{
    uint64_t a = r->log.applied;
    if (r->log.pending_snap != NULL && r->log.pending_snap->meta.index > a)
        a = r->log.pending_snap->meta.index;
    return a + 1;
}

bool raft_has_ready(const struct raft_node *r)
{
    struct raft_hard_state hs;
    size_t n;

    if (r->ready_outstanding)
        return false;
    if (r->msgs.n > 0 || r->msgs_after.n > 0 || r->n_read_states > 0 ||
        r->bcast_pending || r->hb_pending || r->log.pending_snap != NULL)
        return true;
    if (raft_log_unstable(&r->log, &n) != NULL && n > 0)
        return true;
    if (r->log.committed >= apply_from(r))
        return true;
    hs = current_hs(r);
    return !hs_equal(&hs, &r->prev_hs);
}

int raft_ready(struct raft_node *r, struct raft_ready *rd)
{
    memset(rd, 0, sizeof(*rd));
    if (r->ready_outstanding)
        return RAFT_ERR_BUSY;
    if (r->role == RAFT_LEADER) {
        if (r->bcast_pending)
            raft_replication_bcast_append(r);
        if (r->hb_pending)
            raft_replication_bcast_heartbeat(r);
    }
    r->bcast_pending = false;
    r->hb_pending = false;

    memset(&r->rd, 0, sizeof(r->rd));
    r->rd.hs = current_hs(r);
    rd->hs = r->rd.hs;
    rd->hs_changed = !hs_equal(&r->rd.hs, &r->prev_hs);

    if (r->log.pending_snap != NULL) {
        rd->snapshot = r->log.pending_snap;
        r->rd.snapshot = true;
    }
    rd->entries = raft_log_unstable(&r->log, &rd->n_entries);
    r->rd.persist_last = r->log.stable + rd->n_entries;

    uint64_t lo = apply_from(r);
    r->rd.apply_last = lo - 1;
    if (r->log.committed >= lo) {
        int rc = raft_log_slice(&r->log, lo, r->log.committed + 1,
                                r->cfg.max_apply_bytes, &r->rd.apply);
        if (rc != 0)
            return RAFT_ERR_STORAGE;
        rd->committed = r->rd.apply.v;
        rd->n_committed = r->rd.apply.n;
        r->rd.apply_last = lo - 1 + r->rd.apply.n;
    }
    rd->msgs = r->msgs.v;
    rd->n_msgs = r->msgs.n;
    rd->msgs_after_persist = r->msgs_after.v;
    rd->n_msgs_after_persist = r->msgs_after.n;
    rd->read_states = r->read_states;
    rd->n_read_states = r->n_read_states;
    r->rd.n_read_states = r->n_read_states;
    r->ready_outstanding = true;
    return 0;
}

static void clear_msgs(struct raft_msgvec *v)
{
    for (size_t k = 0; k < v->n; k++)
        raft_message_release(&v->v[k]);
    v->n = 0;
}

void raft_advance(struct raft_node *r)
{
    struct raft_log *l = &r->log;

    raft_assert(r->ready_outstanding);
    r->ready_outstanding = false;
    r->prev_hs = r->rd.hs;
    if (r->rd.snapshot) {
        uint64_t si = l->pending_snap->meta.index;
        free(l->pending_snap->data);
        free(l->pending_snap);
        l->pending_snap = NULL;
        if (l->applied < si)
            l->applied = si;
    }
    raft_log_stable_to(l, r->rd.persist_last);
    raft_slice_free(&r->rd.apply);
    raft_log_applied_to(l, r->rd.apply_last > l->applied ? r->rd.apply_last
                                                         : l->applied);
    clear_msgs(&r->msgs);
    clear_msgs(&r->msgs_after);
    r->n_read_states = 0;
    if (r->role == RAFT_LEADER) {
        struct raft_progress *self = raft_progress_find(r, r->id);
        if (self != NULL)
            self->match = l->stable;
        raft_replication_maybe_commit(r); /* D3 */
    }
}
