/*
 * progress.c — per-follower replication flow control (see progress.h).
 *
 * The in-flight window is what makes pipelining safe for memory: the leader
 * never has more than max_inflight unacknowledged appends outstanding to one
 * follower, so a slow follower costs a bounded amount of buffering, and a
 * rejection drops the pipeline back to PROBE so the leader stops streaming
 * entries the follower cannot accept.
 */
#include <stdlib.h>
#include <string.h>

#include "progress.h"
#include "raft_assert.h"

void raft_progress_init(struct raft_progress *p, raft_id id, bool voter,
                        uint64_t next, uint32_t max_inflight)
{
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->voter = voter;
    p->next = next;
    p->state = RAFT_PR_PROBE;
    p->in_cap = max_inflight > 0 ? max_inflight : 1;
    p->inflight = malloc(p->in_cap * sizeof(*p->inflight));
    raft_assert(p->inflight != NULL);
}

void raft_progress_close(struct raft_progress *p)
{
    free(p->inflight);
    p->inflight = NULL;
}

static void reset_state(struct raft_progress *p, uint8_t state)
{
    p->probe_sent = false;
    p->pending_snapshot = 0;
    p->state = state;
    p->in_start = 0;
    p->in_count = 0;
    p->stalled_ticks = 0;
}

void raft_progress_become_probe(struct raft_progress *p)
{
    if (p->state == RAFT_PR_SNAPSHOT) {
        /* The snapshot covered up to pending_snapshot: resume after it (or
         * after match, if the follower confirmed more). */
        uint64_t ps = p->pending_snapshot;
        reset_state(p, RAFT_PR_PROBE);
        p->next = (p->match > ps ? p->match : ps) + 1;
    } else {
        reset_state(p, RAFT_PR_PROBE);
        p->next = p->match + 1;
    }
}

void raft_progress_become_replicate(struct raft_progress *p)
{
    reset_state(p, RAFT_PR_REPLICATE);
    p->next = p->match + 1;
}

void raft_progress_become_snapshot(struct raft_progress *p, uint64_t index)
{
    reset_state(p, RAFT_PR_SNAPSHOT);
    p->pending_snapshot = index;
}

bool raft_progress_maybe_update(struct raft_progress *p, uint64_t n)
{
    bool updated = false;
    if (p->match < n) {
        p->match = n;
        updated = true;
        p->probe_sent = false;
    }
    if (p->next < n + 1)
        p->next = n + 1;
    return updated;
}

bool raft_progress_maybe_decr_to(struct raft_progress *p, uint64_t rejected,
                                 uint64_t next_hint)
{
    if (p->state == RAFT_PR_REPLICATE) {
        /* A rejection at or below match is a reordered old message. */
        if (rejected <= p->match)
            return false;
        /* Pipelined appends beyond `rejected` are doomed too: fall back to
         * probing from the hint, never below what the follower already
         * acknowledged and never above the rejected position. */
        reset_state(p, RAFT_PR_PROBE);
        p->next = next_hint < rejected ? next_hint : rejected;
        if (p->next < p->match + 1)
            p->next = p->match + 1;
        return true;
    }
    /* PROBE / SNAPSHOT: only the answer to the probe we sent counts. */
    if (p->next == 0 || p->next - 1 != rejected)
        return false;
    uint64_t nx = next_hint;
    if (nx > rejected)
        nx = rejected;
    if (nx < p->match + 1)
        nx = p->match + 1;
    if (nx < 1)
        nx = 1;
    p->next = nx;
    p->probe_sent = false;
    return true;
}

void raft_progress_sent(struct raft_progress *p, uint64_t last, size_t n)
{
    switch (p->state) {
    case RAFT_PR_REPLICATE:
        if (n > 0) {
            raft_assert(p->in_count < p->in_cap);
            p->inflight[(p->in_start + p->in_count) % p->in_cap] = last;
            p->in_count++;
            p->next = last + 1;
        }
        break;
    case RAFT_PR_PROBE:
        p->probe_sent = true;
        break;
    default:
        break;
    }
}

bool raft_progress_is_paused(const struct raft_progress *p)
{
    switch (p->state) {
    case RAFT_PR_PROBE:
        return p->probe_sent;
    case RAFT_PR_REPLICATE:
        return p->in_count >= p->in_cap;
    default:
        return true;
    }
}

void raft_progress_free_to(struct raft_progress *p, uint64_t index)
{
    while (p->in_count > 0 && p->inflight[p->in_start] <= index) {
        p->in_start = (p->in_start + 1) % p->in_cap;
        p->in_count--;
    }
    if (p->in_count == 0)
        p->in_start = 0;
}

uint64_t raft_quorum_value(const uint64_t *values, uint32_t n,
                           uint32_t quorum)
{
    uint64_t v[RAFT_MAX_NODES];
    raft_assert(n > 0 && n <= RAFT_MAX_NODES && quorum >= 1 && quorum <= n);
    memcpy(v, values, n * sizeof(*v));
    /* Insertion sort, descending: n <= 16. */
    for (uint32_t i = 1; i < n; i++) {
        uint64_t x = v[i];
        uint32_t j = i;
        while (j > 0 && v[j - 1] < x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
    return v[quorum - 1];
}
