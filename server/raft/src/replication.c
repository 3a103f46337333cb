/*
 * replication.c — AppendEntries on both sides and the commit rule (R1-R4 in
 * replication.h).
 *
 * Design notes
 * ------------
 * Proposals do not send anything by themselves: they set bcast_pending and
 * raft_ready broadcasts once, so every proposal accepted since the last
 * Ready travels in the same append (up to max_msg_bytes per message). This
 * is the batching that lets one fsync and one message carry thousands of
 * entries.
 *
 * The leader's appends do not wait for its own fsync (they go in Ready.msgs):
 * the leader counts itself towards a quorum only for entries it has
 * persisted (its match is log.stable), so sending early is safe (dissertation
 * §10.2.1). Followers' acknowledgements do wait (Ready.msgs_after_persist).
 *
 * Invariants:
 *   A1. An APPEND_RESP that is not a rejection acknowledges only entries the
 *       follower has persisted by the time it leaves (after-persist).
 *   A2. The leader commits index N only if log[N].term == currentTerm (R3).
 *   A3. An append carries consecutive entries starting at prev index + 1
 *       with terms >= prev term and <= the message term; followers drop
 *       messages that do not (a corrupt or hostile peer cannot make them
 *       truncate committed entries).
 */
#include <stdlib.h>
#include <string.h>

#include "membership.h"
#include "raft_codec.h"
#include "readindex.h"
#include "replication.h"
#include "snapshot.h"
#include "transfer.h"

struct raft_progress *raft_progress_find(struct raft_node *r, raft_id id)
{
    for (uint32_t k = 0; k < r->n_prs; k++) {
        if (r->prs[k].id == id)
            return &r->prs[k];
    }
    return NULL;
}

/* Copies entries into one allocation (array followed by payloads) so a
 * message is released with a single free; the codec decodes the same way. */
static void set_entries(struct raft_message *m, const struct raft_entry *v,
                        size_t n)
{
    size_t bytes = n * sizeof(*v);
    for (size_t k = 0; k < n; k++)
        bytes += v[k].len;
    uint8_t *block = malloc(bytes);
    raft_assert(block != NULL);
    struct raft_entry *ents = (struct raft_entry *)(void *)block;
    uint8_t *p = block + n * sizeof(*v);
    for (size_t k = 0; k < n; k++) {
        ents[k] = v[k];
        if (v[k].len > 0) {
            memcpy(p, v[k].data, v[k].len);
            ents[k].data = p;
            p += v[k].len;
        } else {
            ents[k].data = NULL;
        }
    }
    m->entries = ents;
    m->n_entries = (uint32_t)n;
}

void raft_replication_append_local(struct raft_node *r, uint8_t type,
                                   uint8_t *data, uint32_t len)
{
    struct raft_entry e;
    e.term = r->term;
    e.index = raft_log_last_index(&r->log) + 1;
    e.type = type;
    e.len = len;
    e.data = data;
    raft_log_append_owned(&r->log, &e);
    r->bcast_pending = true;
}

bool raft_replication_send_append(struct raft_node *r,
                                  struct raft_progress *pr,
                                  bool send_if_empty)
{
    uint64_t prev_term, last = raft_log_last_index(&r->log);
    struct raft_slice s;
    int rc;

    if (raft_progress_is_paused(pr))
        return false;
    uint64_t prev = pr->next - 1;
    rc = raft_log_term(&r->log, prev, &prev_term);
    if (rc != 0)
        return raft_snapshot_send(r, pr); /* S1 */
    memset(&s, 0, sizeof(s));
    if (pr->next <= last) {
        rc = raft_log_slice(&r->log, pr->next, last + 1,
                            r->cfg.max_msg_bytes, &s);
        if (rc == RAFT_ERR_COMPACTED)
            return raft_snapshot_send(r, pr);
        raft_assert(rc == 0);
    }
    if (s.n == 0 && !send_if_empty && pr->state == RAFT_PR_REPLICATE) {
        raft_slice_free(&s);
        return false;
    }
    struct raft_message *m = raft_send(r, pr->id, RAFT_MSG_APPEND, false);
    m->index = prev;
    m->log_term = prev_term;
    m->commit = r->log.committed;
    if (s.n > 0)
        set_entries(m, s.v, s.n);
    raft_progress_sent(pr, prev + s.n, s.n);
    raft_slice_free(&s);
    return true;
}

void raft_replication_bcast_append(struct raft_node *r)
{
    for (uint32_t k = 0; k < r->n_prs; k++) {
        struct raft_progress *pr = &r->prs[k];
        if (pr->id == r->id)
            continue;
        /* First message always (it carries the commit index); then keep
         * streaming while the window allows — that is the pipeline. */
        if (!raft_replication_send_append(r, pr, true))
            continue;
        while (pr->state == RAFT_PR_REPLICATE &&
               raft_replication_send_append(r, pr, false))
            ;
    }
}

void raft_replication_bcast_heartbeat(struct raft_node *r)
{
    for (uint32_t k = 0; k < r->n_prs; k++) {
        struct raft_progress *pr = &r->prs[k];
        if (pr->id == r->id)
            continue;
        struct raft_message *m = raft_send(r, pr->id, RAFT_MSG_HEARTBEAT,
                                           false);
        /* Never tell a follower to commit past what it is known to hold. */
        m->commit = pr->match < r->log.committed ? pr->match
                                                 : r->log.committed;
        m->ctx = r->read_seq;
    }
}

bool raft_replication_maybe_commit(struct raft_node *r)
{
    uint64_t vals[RAFT_MAX_NODES];
    uint32_t n = 0;

    for (uint32_t k = 0; k < r->n_prs; k++) {
        const struct raft_progress *pr = &r->prs[k];
        if (!pr->voter)
            continue;
        vals[n++] = pr->id == r->id ? r->log.stable : pr->match;
    }
    if (n == 0)
        return false;
    uint64_t idx = raft_quorum_value(vals, n, n / 2 + 1);
    if (idx <= r->log.committed)
        return false;
    bool current = raft_log_term_or_zero(&r->log, idx) == r->term; /* A2 */
#ifdef RAFT_PLANTED_BUGS
    if (RAFT_BUG(r, RAFT_BUG_OLD_TERM_COMMIT))
        current = true;
#endif
    if (!current)
        return false;
    raft_log_commit_to(&r->log, idx);
    r->bcast_pending = true; /* followers learn the new commit index */
    raft_readindex_on_commit(r);
    raft_membership_on_commit(r);
    return true;
}

/* A3: reject malformed appends outright instead of trusting the sender. */
static bool append_well_formed(const struct raft_message *m)
{
    uint64_t prev_term = m->log_term;
    if (m->n_entries > 0 && m->entries == NULL)
        return false;
    for (uint32_t k = 0; k < m->n_entries; k++) {
        const struct raft_entry *e = &m->entries[k];
        if (e->index != m->index + 1 + k || e->term < prev_term ||
            e->term > m->term || e->type > RAFT_ENTRY_CONF ||
            (e->len > 0 && e->data == NULL))
            return false;
        if (e->type == RAFT_ENTRY_CONF) {
            struct raft_conf_change cc;
            struct raft_conf after;
            if (raft_conf_entry_decode(e->data, e->len, &cc, &after) != 0)
                return false;
        }
        prev_term = e->term;
    }
    return m->log_term <= m->term;
}

void raft_replication_handle_append(struct raft_node *r,
                                    const struct raft_message *m)
{
    struct raft_log *l = &r->log;
    uint64_t last_new, truncated;
    struct raft_message *resp;

    if (!append_well_formed(m))
        return;
    if (m->index < l->committed) {
        /* Everything up to our commit index already matches the leader. */
        resp = raft_send(r, m->from, RAFT_MSG_APPEND_RESP, true);
        resp->index = l->committed;
        return;
    }
    bool keep_conflict = false;
#ifdef RAFT_PLANTED_BUGS
    keep_conflict = RAFT_BUG(r, RAFT_BUG_KEEP_CONFLICT);
#endif
    uint64_t commit = m->commit;
    if (raft_log_maybe_append(l, m->index, m->log_term, commit, m->entries,
                              m->n_entries, &last_new, &truncated,
                              keep_conflict)) {
        if (truncated != 0 && truncated <= r->conf_index)
            raft_membership_revert(r);
        for (uint32_t k = 0; k < m->n_entries; k++) {
            const struct raft_entry *e = &m->entries[k];
            if (e->type == RAFT_ENTRY_CONF && e->index > r->conf_index)
                raft_membership_apply_entry(r, e); /* M1 */
        }
        resp = raft_send(r, m->from, RAFT_MSG_APPEND_RESP, true);
        resp->index = last_new;
        return;
    }
    /* R1 rejection with the fast-backtracking hint (R2). */
    resp = raft_send(r, m->from, RAFT_MSG_APPEND_RESP, true);
    resp->reject = 1;
    resp->index = m->index;
    uint64_t last = raft_log_last_index(l);
    if (m->index > last) {
        resp->hint_term = 0;
        resp->hint_index = last + 1;
    } else {
        resp->hint_term = raft_log_term_or_zero(l, m->index);
        resp->hint_index =
            raft_log_first_of_term(l, m->index, l->committed + 1);
    }
}

void raft_replication_handle_heartbeat(struct raft_node *r,
                                       const struct raft_message *m)
{
    uint64_t last = raft_log_last_index(&r->log);
    /* The leader sends min(match, commit); clamp anyway: a restarted node
     * may have lost unpersisted entries the leader believed matched. */
    raft_log_commit_to(&r->log, m->commit < last ? m->commit : last);
    struct raft_message *resp =
        raft_send(r, m->from, RAFT_MSG_HEARTBEAT_RESP, true);
    resp->ctx = m->ctx;
}

static void after_progress(struct raft_node *r, struct raft_progress *pr)
{
    if (raft_replication_maybe_commit(r)) {
        /* Commit moved: everyone hears about it at the next broadcast. */
    }
    if (r->role != RAFT_LEADER)
        return; /* M4 may have stepped us down */
    while (raft_replication_send_append(r, pr, false))
        if (pr->state != RAFT_PR_REPLICATE)
            break;
    if (pr->id == r->transferee)
        raft_transfer_maybe_finish(r, pr);
}

void raft_replication_handle_append_resp(struct raft_node *r,
                                         const struct raft_message *m)
{
    struct raft_progress *pr = raft_progress_find(r, m->from);
    if (pr->id == r->id)
        return;
    if (m->reject) {
        uint64_t hint;
        if (m->hint_term == 0) {
            hint = m->hint_index;
        } else {
            uint64_t j = raft_log_last_of_term(&r->log, m->index,
                                               m->hint_term, 0);
            hint = j != 0 ? j + 1 : m->hint_index;
        }
        if (hint == 0)
            hint = 1;
        if (raft_progress_maybe_decr_to(pr, m->index, hint))
            raft_replication_send_append(r, pr, true);
        return;
    }
    if (m->index > raft_log_last_index(&r->log))
        return; /* acknowledges entries we never had: stale or bogus */
    if (raft_progress_maybe_update(pr, m->index)) {
        if (pr->state == RAFT_PR_PROBE) {
            raft_progress_become_replicate(pr);
        } else if (pr->state == RAFT_PR_SNAPSHOT &&
                   pr->match >= pr->pending_snapshot) {
            raft_progress_become_probe(pr);
            raft_progress_become_replicate(pr);
        } else {
            raft_progress_free_to(pr, m->index);
        }
        after_progress(r, pr);
    } else if (pr->id == r->transferee) {
        raft_transfer_maybe_finish(r, pr);
    }
}

void raft_replication_handle_heartbeat_resp(struct raft_node *r,
                                            const struct raft_message *m)
{
    struct raft_progress *pr = raft_progress_find(r, m->from);
    if (pr->id == r->id)
        return;
    pr->probe_sent = false; /* a dropped probe must not stall PROBE forever */
    if (pr->state == RAFT_PR_SNAPSHOT &&
        pr->stalled_ticks >= (uint32_t)r->cfg.election_tick)
        raft_progress_become_probe(pr); /* the snapshot was lost: re-probe */
    if (pr->state == RAFT_PR_REPLICATE && pr->in_count >= pr->in_cap)
        raft_progress_free_to(pr, pr->inflight[pr->in_start]);
    /* An empty append at next - 1 doubles as a probe: if appends in flight
     * were lost, the follower rejects it and we fall back to PROBE. */
    if (pr->match < raft_log_last_index(&r->log))
        raft_replication_send_append(r, pr, true);
    if (pr->voter)
        raft_readindex_ack(r, m->from, m->ctx);
}
