/*
 * raft.c — node lifecycle, the step dispatcher and the client entry points.
 *
 * Design notes
 * ------------
 * raft_step applies the term rules common to every message first (Figure 2,
 * "All Servers": a higher term makes us a follower; lower-term messages are
 * stale), then hands the message to the role's handler. Everything else —
 * elections, replication, reads, membership — lives in its own module.
 *
 * Invariants maintained across every public call:
 *   N1. term never decreases; vote is RAFT_NONE or was granted in `term`.
 *   N2. role == LEADER implies leader == id and the node is (or was, until
 *       its removal commits) a voter of its configuration.
 *   N3. Between raft_ready and raft_advance no state changes (BUSY).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "election.h"
#include "membership.h"
#include "raft_codec.h"
#include "raft_int.h"
#include "readindex.h"
#include "replication.h"
#include "snapshot.h"
#include "transfer.h"

void raft_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "raft: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

const char *raft_strerror(int rc)
{
    switch (rc) {
    case RAFT_OK: return "ok";
    case RAFT_ERR_NOT_LEADER: return "not leader";
    case RAFT_ERR_TRANSFERRING: return "leadership transfer in progress";
    case RAFT_ERR_TOO_LARGE: return "proposal too large";
    case RAFT_ERR_CONF_PENDING: return "membership change pending";
    case RAFT_ERR_NOT_CAUGHT_UP: return "learner not caught up";
    case RAFT_ERR_INVALID: return "invalid argument";
    case RAFT_ERR_COMPACTED: return "entry compacted";
    case RAFT_ERR_UNAVAILABLE: return "entry unavailable";
    case RAFT_ERR_SNAPSHOT_TEMP: return "snapshot temporarily unavailable";
    case RAFT_ERR_NOMEM: return "out of memory";
    case RAFT_ERR_BUSY: return "ready outstanding";
    case RAFT_ERR_CORRUPT: return "corrupt input";
    case RAFT_ERR_STORAGE: return "storage error";
    case RAFT_ERR_DROPPED: return "no leader to forward to";
    default: return "unknown error";
    }
}

void raft_config_init(struct raft_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->election_tick = 10;
    cfg->heartbeat_tick = 1;
    cfg->pre_vote = true;
    cfg->check_quorum = true;
    cfg->max_msg_bytes = 1u << 20;
    cfg->max_inflight = 256;
    cfg->max_entry_bytes = 8u << 20;
    cfg->max_apply_bytes = 64u << 20;
    cfg->log_level = RAFT_LOG_WARN;
}

static const char *role_name(enum raft_role role)
{
    static const char *names[] = {"follower", "pre-candidate", "candidate",
                                  "leader"};
    return names[role];
}

void raft_logf(const struct raft_node *r, int level, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    int k;

    if (r->cfg.log_fn == NULL || level < r->cfg.log_level)
        return;
    k = snprintf(buf, sizeof(buf), "[%llu t%llu %s] ",
                 (unsigned long long)r->id, (unsigned long long)r->term,
                 role_name(r->role));
    if (k < 0 || (size_t)k >= sizeof(buf))
        k = 0;
    va_start(ap, fmt);
    vsnprintf(buf + k, sizeof(buf) - (size_t)k, fmt, ap);
    va_end(ap);
    r->cfg.log_fn(r->cfg.log_ctx, level, buf);
}

struct raft_message *raft_send(struct raft_node *r, raft_id to, uint8_t type,
                               bool after_persist)
{
    struct raft_msgvec *v = after_persist ? &r->msgs_after : &r->msgs;
    if (v->n == v->cap) {
        size_t cap = v->cap == 0 ? 16 : v->cap * 2;
        struct raft_message *nv = realloc(v->v, cap * sizeof(*nv));
        raft_assert(nv != NULL);
        v->v = nv;
        v->cap = cap;
    }
    struct raft_message *m = &v->v[v->n++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = r->id;
    m->to = to;
    m->term = r->term;
    return m;
}

uint64_t raft_rand(struct raft_node *r)
{
    /* splitmix64: tiny, full period, and good enough for timeouts. */
    uint64_t z = (r->prng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

bool raft_is_voter(const struct raft_node *r)
{
    return raft_conf_is_voter(&r->conf, r->id);
}

uint32_t raft_quorum(const struct raft_node *r)
{
    return r->conf.n_voters / 2 + 1;
}

static int validate_config(const struct raft_config *c)
{
    if (c->id == RAFT_NONE || c->storage == NULL)
        return RAFT_ERR_INVALID;
    if (c->heartbeat_tick <= 0 || c->election_tick <= c->heartbeat_tick)
        return RAFT_ERR_INVALID;
    if (c->max_inflight == 0 || c->max_msg_bytes == 0)
        return RAFT_ERR_INVALID;
    const struct raft_storage_ops *s = c->storage;
    if (!s->initial_state || !s->entries || !s->term || !s->first_index ||
        !s->last_index || !s->snapshot)
        return RAFT_ERR_INVALID;
    return 0;
}

/* Rebuilds the configuration from the snapshot's and every CONF entry in
 * the stored log (M1: the latest entry in the log wins). */
static int replay_conf(struct raft_node *r, const struct raft_conf *boot)
{
    uint64_t first = raft_log_first_index(&r->log);
    uint64_t last = raft_log_last_index(&r->log);
    raft_membership_reset(r, boot, 0);
    for (uint64_t i = first; i <= last;) {
        struct raft_slice s;
        int rc = raft_log_slice(&r->log, i, last + 1, 1u << 20, &s);
        if (rc != 0)
            return RAFT_ERR_STORAGE;
        for (size_t k = 0; k < s.n; k++) {
            if (s.v[k].type == RAFT_ENTRY_CONF)
                raft_membership_apply_entry(r, &s.v[k]);
        }
        i += s.n;
        raft_slice_free(&s);
    }
    return 0;
}

int raft_new(const struct raft_config *cfg, struct raft_node **out)
{
    struct raft_hard_state hs;
    struct raft_conf conf;
    struct raft_node *r;
    int rc;

    *out = NULL;
    rc = validate_config(cfg);
    if (rc != 0)
        return rc;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return RAFT_ERR_NOMEM;
    r->cfg = *cfg;
    r->id = cfg->id;
    r->prng = cfg->seed ^ (cfg->id * 0x2545f4914f6cdd1dull);
    rc = raft_log_init(&r->log, cfg->storage, cfg->storage_ctx);
    if (rc == 0) {
        memset(&conf, 0, sizeof(conf));
        rc = cfg->storage->initial_state(cfg->storage_ctx, &hs, &conf) == 0
                 ? 0 : RAFT_ERR_STORAGE;
    }
    if (rc == 0 && (conf.n_voters > RAFT_MAX_NODES ||
                    conf.n_learners > RAFT_MAX_NODES ||
                    conf.n_voters + conf.n_learners > RAFT_MAX_NODES))
        rc = RAFT_ERR_STORAGE;
    if (rc == 0)
        rc = replay_conf(r, &conf);
    if (rc != 0) {
        raft_log_close(&r->log);
        free(r);
        return rc;
    }
    uint64_t floor = raft_log_first_index(&r->log) - 1;
    uint64_t commit = hs.commit > floor ? hs.commit : floor;
    if (commit > raft_log_last_index(&r->log))
        commit = raft_log_last_index(&r->log); /* host lost its tail */
    r->log.committed = commit;
    r->log.applied = floor;
    if (cfg->applied > floor && cfg->applied <= commit)
        r->log.applied = cfg->applied;
    r->term = hs.term;
    r->vote = hs.vote;
    r->prev_hs = hs;
    r->prev_hs.commit = commit;
    raft_become_follower(r, hs.term, RAFT_NONE);
    r->boot_quiet = cfg->boot_quiet && cfg->check_quorum && hs.term > 0;
    raft_logf(r, RAFT_LOG_INFO, "started: last %llu commit %llu voters %u",
              (unsigned long long)raft_log_last_index(&r->log),
              (unsigned long long)commit, r->conf.n_voters);
    *out = r;
    return 0;
}

static void free_msgvec(struct raft_msgvec *v)
{
    for (size_t k = 0; k < v->n; k++)
        raft_message_release(&v->v[k]);
    free(v->v);
    memset(v, 0, sizeof(*v));
}

void raft_free(struct raft_node *r)
{
    if (r == NULL)
        return;
    for (uint32_t k = 0; k < r->n_prs; k++)
        raft_progress_close(&r->prs[k]);
    free_msgvec(&r->msgs);
    free_msgvec(&r->msgs_after);
    raft_slice_free(&r->rd.apply);
    free(r->reads);
    free(r->read_states);
    raft_log_close(&r->log);
    free(r);
}

int raft_tick(struct raft_node *r)
{
    if (r->ready_outstanding)
        return RAFT_ERR_BUSY;
    if (r->role == RAFT_LEADER)
        raft_election_tick_leader(r);
    else
        raft_election_tick(r);
    return 0;
}

static bool from_leader_type(uint8_t t)
{
    return t == RAFT_MSG_APPEND || t == RAFT_MSG_HEARTBEAT ||
           t == RAFT_MSG_SNAPSHOT;
}

static void step_follower(struct raft_node *r, const struct raft_message *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        r->election_elapsed = 0;
        r->leader = m->from;
        if (m->type == RAFT_MSG_APPEND)
            raft_replication_handle_append(r, m);
        else if (m->type == RAFT_MSG_HEARTBEAT)
            raft_replication_handle_heartbeat(r, m);
        else
            raft_snapshot_handle(r, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        /* T2: only a voter may take over; learners ignore it. */
        if (raft_is_voter(r))
            raft_campaign_start(r, false, true);
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        raft_readindex_add_state(r, m->index, m->ctx);
        break;
    default:
        break; /* responses to a role we no longer have */
    }
}

static void step_candidate(struct raft_node *r, const struct raft_message *m)
{
    if (from_leader_type(m->type)) {
        /* E2: a leader exists in our term; follow it. */
        raft_become_follower(r, m->term, m->from);
        step_follower(r, m);
        return;
    }
    if ((m->type == RAFT_MSG_VOTE_RESP && r->role == RAFT_CANDIDATE) ||
        (m->type == RAFT_MSG_PREVOTE_RESP && r->role == RAFT_PRE_CANDIDATE))
        raft_election_handle_response(r, m);
}

static void step_leader(struct raft_node *r, const struct raft_message *m)
{
    struct raft_progress *pr = raft_progress_find(r, m->from);
    if (pr != NULL)
        pr->recent_active = true;
    switch (m->type) {
    case RAFT_MSG_APPEND_RESP:
        if (pr != NULL)
            raft_replication_handle_append_resp(r, m);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        if (pr != NULL)
            raft_replication_handle_heartbeat_resp(r, m);
        break;
    case RAFT_MSG_READ_INDEX:
        raft_readindex_request(r, m->from, m->ctx);
        break;
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        /* Another leader in our term would violate Election Safety. */
        raft_logf(r, RAFT_LOG_WARN, "leader message from %llu in own term",
                  (unsigned long long)m->from);
        break;
    default:
        break;
    }
}

/* Figure 2, All Servers: "If RPC request or response contains term T >
 * currentTerm: set currentTerm = T, convert to follower". Returns false when
 * the message must be dropped. */
static bool step_term(struct raft_node *r, const struct raft_message *m)
{
    if (m->term > r->term) {
        if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
            if (!m->transfer && raft_election_in_lease(r)) {
                raft_logf(r, RAFT_LOG_DEBUG,
                          "ignoring vote from %llu: leader lease",
                          (unsigned long long)m->from);
                return false; /* E5 */
            }
        }
        if (m->type == RAFT_MSG_PREVOTE)
            return true; /* E4: a pre-vote never changes our term */
        if (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)
            return true; /* a grant carries the term we would campaign in */
        raft_become_follower(r, m->term,
                             from_leader_type(m->type) ? m->from : RAFT_NONE);
        return true;
    }
    if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
            (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT)) {
            /* A stale leader would otherwise never learn our term: with
             * leader stickiness its own vote requests are ignored. */
            raft_send(r, m->from, RAFT_MSG_APPEND_RESP, true);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            struct raft_message *resp =
                raft_send(r, m->from, RAFT_MSG_PREVOTE_RESP, true);
            resp->reject = 1;
        }
        return false;
    }
    return true;
}

int raft_step(struct raft_node *r, const struct raft_message *m)
{
    if (r->ready_outstanding)
        return RAFT_ERR_BUSY;
    if (m->to != r->id || m->from == RAFT_NONE || m->from == r->id ||
        m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_TYPE_MAX_)
        return RAFT_ERR_INVALID;
    if (!step_term(r, m))
        return 0;
    if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
        raft_election_handle_request(r, m);
        return 0;
    }
    switch (r->role) {
    case RAFT_LEADER:
        step_leader(r, m);
        break;
    case RAFT_CANDIDATE:
    case RAFT_PRE_CANDIDATE:
        step_candidate(r, m);
        break;
    default:
        step_follower(r, m);
        break;
    }
    return 0;
}

/* The checks raft_propose and raft_propose_owned share. */
static int propose_check(const struct raft_node *r, const void *data, uint32_t len)
{
    if (r->ready_outstanding)
        return RAFT_ERR_BUSY;
    if (r->role != RAFT_LEADER)
        return RAFT_ERR_NOT_LEADER;
    if (r->transferee != RAFT_NONE)
        return RAFT_ERR_TRANSFERRING;
    if (r->cfg.max_entry_bytes > 0 && len > r->cfg.max_entry_bytes)
        return RAFT_ERR_TOO_LARGE;
    if (len > 0 && data == NULL)
        return RAFT_ERR_INVALID;
    return 0;
}

/* Appends a checked proposal; takes data. */
static int propose_append(struct raft_node *r, void *data, uint32_t len, uint64_t *index_out,
                          uint64_t *term_out)
{
    if (len == 0) {
        free(data);
        data = NULL;
    }
    raft_replication_append_local(r, RAFT_ENTRY_NORMAL, data, len);
    if (index_out != NULL)
        *index_out = raft_log_last_index(&r->log);
    if (term_out != NULL)
        *term_out = r->term;
    return 0;
}

int raft_propose_owned(struct raft_node *r, void *data, uint32_t len, uint64_t *index_out,
                       uint64_t *term_out)
{
    int rc = propose_check(r, data, len);
    return rc ? rc : propose_append(r, data, len, index_out, term_out);
}

int raft_propose(struct raft_node *r, const void *data, uint32_t len,
                 uint64_t *index_out, uint64_t *term_out)
{
    int rc = propose_check(r, data, len);
    if (rc)
        return rc;
    uint8_t *copy = NULL;
    if (len > 0) {
        copy = malloc(len);
        if (copy == NULL)
            return RAFT_ERR_NOMEM;
        memcpy(copy, data, len);
    }
    return propose_append(r, copy, len, index_out, term_out);
}

int raft_read_index(struct raft_node *r, uint64_t ctx)
{
    if (r->ready_outstanding)
        return RAFT_ERR_BUSY;
    if (r->role == RAFT_LEADER) {
        raft_readindex_request(r, RAFT_NONE, ctx);
        return 0;
    }
    if (r->leader == RAFT_NONE)
        return RAFT_ERR_DROPPED;
    struct raft_message *m = raft_send(r, r->leader, RAFT_MSG_READ_INDEX,
                                       false);
    m->ctx = ctx;
    return 0;
}

static int campaign(struct raft_node *r, bool pre_vote)
{
    if (r->ready_outstanding)
        return RAFT_ERR_BUSY;
    if (r->role == RAFT_LEADER)
        return 0;
    if (!raft_is_voter(r))
        return RAFT_ERR_INVALID;
    raft_campaign_start(r, pre_vote, false);
    return 0;
}

int raft_campaign(struct raft_node *r) { return campaign(r, false); }

int raft_campaign_prevote(struct raft_node *r) { return campaign(r, r->cfg.pre_vote); }

void raft_status(const struct raft_node *r, struct raft_status *st)
{
    memset(st, 0, sizeof(*st));
    st->id = r->id;
    st->role = r->role;
    st->term = r->term;
    st->vote = r->vote;
    st->leader = r->leader;
    st->commit = r->log.committed;
    st->applied = r->log.applied;
    st->last_index = raft_log_last_index(&r->log);
    st->first_index = raft_log_first_index(&r->log);
    st->transferee = r->transferee;
    st->conf = r->conf;
    st->conf_index = r->conf_index;
}

int raft_peer_match(const struct raft_node *r, raft_id id, uint64_t *match)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ERR_NOT_LEADER;
    if (id == r->id) {
        *match = raft_log_last_index(&r->log);
        return 0;
    }
    const struct raft_progress *pr = raft_progress_find((struct raft_node *)r, id);
    if (!pr)
        return RAFT_ERR_INVALID;
    *match = pr->match;
    return 0;
}

int raft_term_at(const struct raft_node *r, uint64_t i, uint64_t *term)
{
    return raft_log_term(&r->log, i, term);
}
