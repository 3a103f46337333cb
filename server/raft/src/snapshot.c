/*
 * snapshot.c — sending and installing snapshots (rules S1-S2, snapshot.h).
 *
 * Design notes
 * ------------
 * A snapshot travels whole in one message; orderkv partitions are small and
 * the transport chunks large messages itself. While a follower is in
 * SNAPSHOT state nothing else is sent to it. If the snapshot is lost the
 * follower keeps answering heartbeats without catching up; after an election
 * timeout of that (progress.stalled_ticks) the leader re-probes and, if the
 * entries are still compacted, sends the snapshot again.
 *
 * Invariants:
 *   S-a. A follower never installs a snapshot at or below its commit index
 *        (it would roll back applied state).
 *   S-b. After installing, commit == applied-to-be == snapshot index and the
 *        configuration is the snapshot's.
 */
#include <stdlib.h>
#include <string.h>

#include "membership.h"
#include "replication.h"
#include "snapshot.h"

bool raft_snapshot_send(struct raft_node *r, struct raft_progress *pr)
{
    struct raft_snapshot snap;

    memset(&snap, 0, sizeof(snap));
    int rc = r->cfg.storage->snapshot(r->cfg.storage_ctx, &snap);
    if (rc != 0) {
        /* SNAPSHOT_TEMP: the host is still producing one; retry on the next
         * heartbeat response. */
        free(snap.data);
        return false;
    }
    if (snap.meta.index == 0) {
        free(snap.data);
        return false;
    }
    struct raft_message *m = raft_send(r, pr->id, RAFT_MSG_SNAPSHOT, false);
    m->snapshot = snap; /* the message owns the data now */
    raft_progress_become_snapshot(pr, snap.meta.index);
    raft_logf(r, RAFT_LOG_INFO, "sending snapshot at %llu to %llu",
              (unsigned long long)snap.meta.index,
              (unsigned long long)pr->id);
    return true;
}

static bool conf_valid(const struct raft_conf *c)
{
    return c->n_voters >= 1 && c->n_voters <= RAFT_MAX_NODES &&
           c->n_learners <= RAFT_MAX_NODES &&
           c->n_voters + c->n_learners <= RAFT_MAX_NODES;
}

void raft_snapshot_handle(struct raft_node *r, const struct raft_message *m)
{
    const struct raft_snapshot_meta *meta = &m->snapshot.meta;
    struct raft_log *l = &r->log;
    struct raft_message *resp;

    if (meta->index == 0 || meta->term == 0 || meta->term > m->term ||
        !conf_valid(&meta->conf) ||
        (m->snapshot.len > 0 && m->snapshot.data == NULL))
        return; /* malformed */
    resp = raft_send(r, m->from, RAFT_MSG_APPEND_RESP, true);
    if (meta->index <= l->committed) {
        resp->index = l->committed; /* S-a */
        return;
    }
    if (raft_log_match_term(l, meta->index, meta->term)) {
        /* Our log already contains the snapshot's last entry, hence (Log
         * Matching) everything it covers: keep the log, advance commit. */
        raft_log_commit_to(l, meta->index);
        resp->index = l->committed;
        return;
    }
    struct raft_snapshot *copy = malloc(sizeof(*copy));
    raft_assert(copy != NULL);
    *copy = m->snapshot;
    copy->data = NULL;
    if (m->snapshot.len > 0) {
        copy->data = malloc((size_t)m->snapshot.len);
        raft_assert(copy->data != NULL);
        memcpy(copy->data, m->snapshot.data, (size_t)m->snapshot.len);
    }
    raft_log_restore(l, copy);
    raft_membership_reset(r, &meta->conf, meta->index);
    resp->index = raft_log_last_index(l);
    raft_logf(r, RAFT_LOG_INFO, "restored snapshot at %llu term %llu",
              (unsigned long long)meta->index,
              (unsigned long long)meta->term);
}
