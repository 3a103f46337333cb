/*
 * membership.c — single-server configuration changes (rules M1-M4,
 * membership.h).
 *
 * Design notes
 * ------------
 * Why single-server changes and not joint consensus: with one voter added or
 * removed at a time, every majority of the old configuration overlaps every
 * majority of the new one, so using "the latest configuration in my log"
 * (M1) is safe without a joint phase — provided M2 holds. M2's first half
 * (one uncommitted change at a time) keeps configurations one step apart;
 * its second half (commit an entry of your own term first) closes the bug
 * where a new leader's change lets a quorum of a stale configuration elect a
 * leader that overwrites a committed change.
 *
 * Invariants:
 *   C1. conf is the configuration of the last CONF entry in the log at
 *       conf_index (or of the snapshot/boot state when conf_index is the
 *       snapshot index or 0); conf_prev is the one before it.
 *   C2. The leader appends a CONF entry only if conf_index <= commit and
 *       log[commit].term == currentTerm.
 *   C3. prs[] holds exactly conf's voters and learners.
 */
#include <stdlib.h>
#include <string.h>

#include "membership.h"
#include "raft_codec.h"
#include "replication.h"

/* ---- configuration values (public raft_conf_*) ----------------------------
 * A configuration is two small arrays of ids. Voters and learners are
 * disjoint, ids are never RAFT_NONE, and a configuration with members has at
 * least one voter (raft_conf_apply refuses to remove the last one). */

static int find(const raft_id *v, uint32_t n, raft_id id)
{
    for (uint32_t k = 0; k < n; k++) {
        if (v[k] == id)
            return (int)k;
    }
    return -1;
}

bool raft_conf_is_voter(const struct raft_conf *c, raft_id id)
{
    return find(c->voters, c->n_voters, id) >= 0;
}

bool raft_conf_is_learner(const struct raft_conf *c, raft_id id)
{
    return find(c->learners, c->n_learners, id) >= 0;
}

static void remove_at(raft_id *v, uint32_t *n, int k)
{
    memmove(v + k, v + k + 1, (size_t)(*n - (uint32_t)k - 1) * sizeof(*v));
    (*n)--;
}

int raft_conf_apply(struct raft_conf *c, const struct raft_conf_change *cc)
{
    int kv, kl;

    if (cc->node == RAFT_NONE)
        return RAFT_ERR_INVALID;
    kv = find(c->voters, c->n_voters, cc->node);
    kl = find(c->learners, c->n_learners, cc->node);
    switch (cc->type) {
    case RAFT_CC_ADD_LEARNER:
        if (kv >= 0 || kl >= 0 ||
            c->n_voters + c->n_learners >= RAFT_MAX_NODES)
            return RAFT_ERR_INVALID;
        c->learners[c->n_learners++] = cc->node;
        return 0;
    case RAFT_CC_PROMOTE:
        if (kl < 0)
            return RAFT_ERR_INVALID;
        remove_at(c->learners, &c->n_learners, kl);
        c->voters[c->n_voters++] = cc->node;
        return 0;
    case RAFT_CC_REMOVE:
        if (kl >= 0) {
            remove_at(c->learners, &c->n_learners, kl);
            return 0;
        }
        if (kv < 0 || c->n_voters == 1)
            return RAFT_ERR_INVALID;
        remove_at(c->voters, &c->n_voters, kv);
        return 0;
    default:
        return RAFT_ERR_INVALID;
    }
}

/* ---- membership of this node ------------------------------------------- */

void raft_membership_sync_progress(struct raft_node *r)
{
    struct raft_progress nprs[RAFT_MAX_NODES];
    uint32_t n = 0;
    uint64_t next = raft_log_last_index(&r->log) + 1;
    bool used[RAFT_MAX_NODES] = {false};

    for (uint32_t pass = 0; pass < 2; pass++) {
        const raft_id *ids = pass == 0 ? r->conf.voters : r->conf.learners;
        uint32_t cnt = pass == 0 ? r->conf.n_voters : r->conf.n_learners;
        for (uint32_t k = 0; k < cnt; k++) {
            uint32_t j;
            for (j = 0; j < r->n_prs; j++) {
                if (!used[j] && r->prs[j].id == ids[k])
                    break;
            }
            if (j < r->n_prs) {
                nprs[n] = r->prs[j];
                used[j] = true;
            } else {
                raft_progress_init(&nprs[n], ids[k], false, next,
                                   r->cfg.max_inflight);
                if (ids[k] == r->id)
                    nprs[n].match = r->log.stable;
                nprs[n].recent_active = true;
            }
            nprs[n].voter = pass == 0;
            n++;
        }
    }
    for (uint32_t j = 0; j < r->n_prs; j++) {
        if (!used[j])
            raft_progress_close(&r->prs[j]);
    }
    memcpy(r->prs, nprs, n * sizeof(*nprs));
    r->n_prs = n;
}

void raft_membership_reset(struct raft_node *r, const struct raft_conf *c,
                           uint64_t index)
{
    r->conf = *c;
    r->conf_prev = *c;
    r->conf_index = index;
    raft_membership_sync_progress(r);
}

static void changed(struct raft_node *r)
{
    raft_membership_sync_progress(r);
    if (r->role != RAFT_LEADER)
        return;
    /* A smaller quorum may already cover more entries (or more reads). */
    raft_replication_maybe_commit(r);
    if (r->role == RAFT_LEADER)
        r->bcast_pending = true;
}

void raft_membership_apply_entry(struct raft_node *r,
                                 const struct raft_entry *e)
{
    struct raft_conf_change cc;
    struct raft_conf next;

    raft_assert(e->type == RAFT_ENTRY_CONF);
    /* Replicated CONF entries were validated on receipt (A3) and our own
     * when proposed; one that does not decode means the log is corrupt. */
    raft_assert(raft_conf_entry_decode(e->data, e->len, &cc, &next) == 0);
    r->conf_prev = r->conf;
    r->conf = next;
    r->conf_index = e->index;
    raft_logf(r, RAFT_LOG_INFO, "configuration at %llu: %u voters, %u learners",
              (unsigned long long)e->index, next.n_voters, next.n_learners);
    changed(r);
}

void raft_membership_revert(struct raft_node *r)
{
    raft_logf(r, RAFT_LOG_INFO, "configuration at %llu truncated, reverting",
              (unsigned long long)r->conf_index);
    r->conf = r->conf_prev;
    /* conf_prev's entry is committed (M2), so it is at or below commit. */
    r->conf_index = r->log.committed < r->conf_index ? r->log.committed
                                                       : r->conf_index;
    changed(r);
}

void raft_membership_on_commit(struct raft_node *r)
{
    if (r->role == RAFT_LEADER && !raft_is_voter(r) &&
        r->log.committed >= r->conf_index) {
        raft_logf(r, RAFT_LOG_INFO, "removed from the configuration: "
                                    "stepping down");
        raft_become_follower(r, r->term, RAFT_NONE); /* M4 */
    }
}

int raft_propose_conf_change(struct raft_node *r,
                             const struct raft_conf_change *cc,
                             uint64_t *index_out)
{
    struct raft_conf next;

    if (r->ready_outstanding)
        return RAFT_ERR_BUSY;
    if (r->role != RAFT_LEADER)
        return RAFT_ERR_NOT_LEADER;
    if (r->transferee != RAFT_NONE)
        return RAFT_ERR_TRANSFERRING;
    /* C2 / M2 */
    if (r->conf_index > r->log.committed ||
        raft_log_term_or_zero(&r->log, r->log.committed) != r->term)
        return RAFT_ERR_CONF_PENDING;
    next = r->conf;
    if (raft_conf_apply(&next, cc) != 0)
        return RAFT_ERR_INVALID;
    if (cc->type == RAFT_CC_PROMOTE) {
        struct raft_progress *pr = raft_progress_find(r, cc->node);
        if (pr == NULL || pr->match < r->log.committed)
            return RAFT_ERR_NOT_CAUGHT_UP; /* M3 */
    }
    size_t len = raft_conf_entry_size(&next);
    uint8_t *data = malloc(len);
    if (data == NULL)
        return RAFT_ERR_NOMEM;
    raft_assert(raft_conf_entry_encode(cc, &next, data, len, &len) == 0);
    raft_replication_append_local(r, RAFT_ENTRY_CONF, data, (uint32_t)len);
    uint64_t idx = raft_log_last_index(&r->log);
    struct raft_entry e;
    e.index = idx;
    e.term = r->term;
    e.type = RAFT_ENTRY_CONF;
    e.len = (uint32_t)len;
    e.data = data;
    raft_membership_apply_entry(r, &e); /* M1: effective when appended */
    if (index_out != NULL)
        *index_out = idx;
    return 0;
}
