/*
 * cluster.c — simulated nodes, network and client for the raft simulator
 * (see cluster.h). Every host duty of the Ready contract is done here the
 * way orderkvd will do it: send Ready.msgs, persist to the store, send
 * Ready.msgs_after_persist, apply, answer reads, advance.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "raft_codec.h"

#define PAYLOAD_HDR 16 /* seq u64 + proposer u64 */

static const char *msg_names[] = {
    "?",        "APPEND",      "APPEND_RESP",    "VOTE",
    "VOTE_RESP", "PREVOTE",    "PREVOTE_RESP",   "HEARTBEAT",
    "HEARTBEAT_RESP", "SNAPSHOT", "TIMEOUT_NOW", "READ_INDEX",
    "READ_INDEX_RESP"};

uint64_t sim_rand(struct sim_cluster *c)
{
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t sim_below(struct sim_cluster *c, uint64_t n)
{
    return n == 0 ? 0 : sim_rand(c) % n;
}

bool sim_chance(struct sim_cluster *c, uint32_t permille)
{
    return permille > 0 && sim_below(c, 1000) < permille;
}

void sim_trace(struct sim_cluster *c, const char *fmt, ...)
{
    va_list ap;
    if (!c->p.trace)
        return;
    FILE *f = c->p.trace_out != NULL ? c->p.trace_out : stdout;
    fprintf(f, "[%6llu t%llu] ", (unsigned long long)c->now,
            (unsigned long long)(c->now / SIM_SUBSTEPS));
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
}

static void trace_log(void *ctx, int level, const char *msg)
{
    struct sim_cluster *c = ctx;
    sim_trace(c, "  raft: %s", msg);
}

void sim_params_default(struct sim_params *p, uint32_t n_voters)
{
    memset(p, 0, sizeof(*p));
    p->n_voters = n_voters;
    p->election_tick = 10;
    p->heartbeat_tick = 1;
    p->pre_vote = true;
    p->check_quorum = true;
    p->max_msg_bytes = 1u << 20;
    p->max_inflight = 64;
    p->max_entry_bytes = 1u << 20;
    p->codec = true;
}

/* ---- nodes -------------------------------------------------------------- */

static void boot(struct sim_cluster *c, struct sim_node *n)
{
    struct raft_config cfg;
    raft_config_init(&cfg);
    cfg.id = n->id;
    cfg.election_tick = c->p.election_tick;
    cfg.heartbeat_tick = c->p.heartbeat_tick;
    cfg.pre_vote = c->p.pre_vote;
    cfg.check_quorum = c->p.check_quorum;
    cfg.max_msg_bytes = c->p.max_msg_bytes;
    cfg.max_inflight = c->p.max_inflight;
    cfg.max_entry_bytes = c->p.max_entry_bytes;
    cfg.seed = c->seed ^ (++n->boot_seed * 0x9e3779b97f4a7c15ull);
    cfg.storage = &memstore_ops;
    cfg.storage_ctx = &n->store;
    cfg.planted_bugs = c->p.planted;
    if (c->p.trace) {
        cfg.log_fn = trace_log;
        cfg.log_ctx = c;
        cfg.log_level = RAFT_LOG_DEBUG;
    }
    /* The state machine restarts from the stored snapshot (it keeps nothing
     * else durable), and tells raft where it is. */
    const struct raft_snapshot *s = &n->store.snap;
    n->applied = s->meta.index;
    n->hash = 0;
    if (s->len == 16) {
        uint64_t idx;
        memcpy(&idx, s->data, 8);
        memcpy(&n->hash, s->data + 8, 8);
        if (idx != s->meta.index)
            chk_fail(&c->chk, "snapshot data index mismatch on %llu",
                     (unsigned long long)n->id);
    }
    n->conf = s->meta.conf;
    cfg.applied = n->applied;
    int rc = raft_new(&cfg, &n->raft);
    if (rc != 0) {
        chk_fail(&c->chk, "raft_new(%llu) failed: %s",
                 (unsigned long long)n->id, raft_strerror(rc));
        n->raft = NULL;
        return;
    }
    n->up = true;
}

void sim_node_start(struct sim_cluster *c, raft_id id)
{
    struct sim_node *n = &c->nodes[id];
    struct raft_conf conf;
    if (n->exists)
        return;
    memset(&conf, 0, sizeof(conf));
    if (id <= c->p.n_voters) {
        conf.n_voters = c->p.n_voters;
        for (uint32_t k = 0; k < c->p.n_voters; k++)
            conf.voters[k] = k + 1;
    }
    n->id = id;
    n->exists = true;
    memstore_init(&n->store, &conf);
    sim_trace(c, "start node %llu", (unsigned long long)id);
    boot(c, n);
}

void sim_node_crash(struct sim_cluster *c, raft_id id)
{
    struct sim_node *n = &c->nodes[id];
    if (!n->up)
        return;
    c->n_crashes++;
    sim_trace(c, "CRASH node %llu (unpersisted state lost)",
              (unsigned long long)id);
    raft_free(n->raft);
    n->raft = NULL;
    n->up = false;
}

void sim_node_restart(struct sim_cluster *c, raft_id id)
{
    struct sim_node *n = &c->nodes[id];
    if (n->up || !n->exists || n->removed)
        return;
    sim_trace(c, "RESTART node %llu from store (term %llu, last %llu)",
              (unsigned long long)id, (unsigned long long)n->store.hs.term,
              (unsigned long long)memstore_last_index(&n->store));
    boot(c, n);
}

void sim_cluster_init(struct sim_cluster *c, const struct sim_params *p,
                      uint64_t seed)
{
    struct sim_checker chk = c->chk; /* keep allocations across seeds */
    struct sim_msg *net = c->net;
    size_t cap_net = c->cap_net;
    memset(c, 0, sizeof(*c));
    c->chk = chk;
    c->net = net;
    c->cap_net = cap_net;
    chk_reset(&c->chk);
    c->p = *p;
    c->seed = seed;
    c->rng = seed * 0x2545f4914f6cdd1dull + 1;
    c->n_total = p->n_voters + p->n_spare;
    if (c->n_total > SIM_MAX_NODES)
        c->n_total = SIM_MAX_NODES;
    c->max_delay = 1;
    c->reorder = true;
    sim_heal(c);
    for (raft_id id = 1; id <= p->n_voters; id++)
        sim_node_start(c, id);
}

static void free_msg(struct sim_msg *m)
{
    free(m->buf);
    m->buf = NULL;
    raft_message_release(&m->m);
}

void sim_cluster_close(struct sim_cluster *c)
{
    for (raft_id id = 1; id <= SIM_MAX_NODES; id++) {
        struct sim_node *n = &c->nodes[id];
        if (n->raft != NULL)
            raft_free(n->raft);
        if (n->exists)
            memstore_close(&n->store);
        memset(n, 0, sizeof(*n));
    }
    for (size_t k = 0; k < c->n_net; k++)
        free_msg(&c->net[k]);
    c->n_net = 0;
}

/* ---- observation -------------------------------------------------------- */

static uint64_t term_of(void *ctx, uint64_t i)
{
    uint64_t t = 0;
    (void)raft_term_at(ctx, i, &t);
    return t;
}

/* K1 and K4, checked whenever a node may have changed role or commit. */
static void observe(struct sim_cluster *c, struct sim_node *n)
{
    struct raft_status st;
    if (!n->up)
        return;
    raft_status(n->raft, &st);
    if (st.role != RAFT_LEADER)
        return;
    struct sim_checker *k = &c->chk;
    chk_commit_seen(k, st.term, st.commit, term_of, n->raft);
    bool fresh;
    struct chk_slot *s = chk_map_put(&k->leaders, st.term, 0, &fresh);
    if (!fresh) {
        if (s->v1 != n->id)
            chk_fail(k, "K1 election safety: term %llu has leaders %llu and "
                        "%llu",
                     (unsigned long long)st.term, (unsigned long long)s->v1,
                     (unsigned long long)n->id);
        return;
    }
    s->v1 = n->id;
    c->n_leaders++;
    sim_trace(c, "LEADER node %llu term %llu (last %llu commit %llu)",
              (unsigned long long)n->id, (unsigned long long)st.term,
              (unsigned long long)st.last_index,
              (unsigned long long)st.commit);
    /* K4: every entry a leader of an earlier term saw committed is here
     * (entries below our snapshot are covered by it: K5 checks those). */
    uint64_t from = st.first_index > 1 ? st.first_index : 1;
    for (uint64_t i = from; i <= k->c_len; i++) {
        if (k->c_term[i] >= st.term || k->c_eterm[i] == 0)
            continue;
        uint64_t t = 0;
        if (raft_term_at(n->raft, i, &t) != 0 || t != k->c_eterm[i]) {
            chk_fail(k, "K4 leader completeness: leader %llu of term %llu "
                        "has term %llu at %llu, committed in term <= %llu "
                        "with term %llu",
                     (unsigned long long)n->id, (unsigned long long)st.term,
                     (unsigned long long)t, (unsigned long long)i,
                     (unsigned long long)k->c_term[i],
                     (unsigned long long)k->c_eterm[i]);
            return;
        }
    }
}

raft_id sim_leader(struct sim_cluster *c)
{
    raft_id best = RAFT_NONE;
    uint64_t best_term = 0;
    for (raft_id id = 1; id <= c->n_total; id++) {
        struct sim_node *n = &c->nodes[id];
        struct raft_status st;
        if (!n->up)
            continue;
        raft_status(n->raft, &st);
        if (st.role == RAFT_LEADER && st.term >= best_term) {
            best = id;
            best_term = st.term;
        }
    }
    return best;
}

/* ---- network ------------------------------------------------------------ */

static struct sim_msg *net_push(struct sim_cluster *c)
{
    if (c->n_net == c->cap_net) {
        size_t cap = c->cap_net == 0 ? 256 : c->cap_net * 2;
        struct sim_msg *v = realloc(c->net, cap * sizeof(*v));
        if (v == NULL)
            abort();
        c->net = v;
        c->cap_net = cap;
    }
    struct sim_msg *m = &c->net[c->n_net++];
    memset(m, 0, sizeof(*m));
    return m;
}

static void copy_message(struct raft_message *dst,
                         const struct raft_message *src)
{
    *dst = *src;
    dst->entries = NULL;
    dst->snapshot.data = NULL;
    if (src->n_entries > 0) {
        size_t bytes = src->n_entries * sizeof(struct raft_entry);
        for (uint32_t k = 0; k < src->n_entries; k++)
            bytes += src->entries[k].len;
        uint8_t *block = malloc(bytes);
        if (block == NULL)
            abort();
        dst->entries = (struct raft_entry *)(void *)block;
        uint8_t *p = block + src->n_entries * sizeof(struct raft_entry);
        for (uint32_t k = 0; k < src->n_entries; k++) {
            dst->entries[k] = src->entries[k];
            dst->entries[k].data = NULL;
            if (src->entries[k].len > 0) {
                memcpy(p, src->entries[k].data, src->entries[k].len);
                dst->entries[k].data = p;
                p += src->entries[k].len;
            }
        }
    }
    if (src->snapshot.len > 0) {
        dst->snapshot.data = malloc((size_t)src->snapshot.len);
        if (dst->snapshot.data == NULL)
            abort();
        memcpy(dst->snapshot.data, src->snapshot.data,
               (size_t)src->snapshot.len);
    }
}

static void trace_msg(struct sim_cluster *c, const char *what,
                      const struct raft_message *m)
{
    if (!c->p.trace)
        return;
    sim_trace(c, "%s %s %llu->%llu term %llu idx %llu logterm %llu commit "
                 "%llu n %u%s%s ctx %llu",
              what, msg_names[m->type], (unsigned long long)m->from,
              (unsigned long long)m->to, (unsigned long long)m->term,
              (unsigned long long)m->index, (unsigned long long)m->log_term,
              (unsigned long long)m->commit, m->n_entries,
              m->reject ? " REJECT" : "", m->transfer ? " TRANSFER" : "",
              (unsigned long long)m->ctx);
}

static void send(struct sim_cluster *c, const struct raft_message *m)
{
    if (sim_chance(c, c->drop_permille)) {
        trace_msg(c, "drop", m);
        return;
    }
    int copies = sim_chance(c, c->dup_permille) ? 2 : 1;
    trace_msg(c, copies == 2 ? "send(dup)" : "send", m);
    for (int k = 0; k < copies; k++) {
        struct sim_msg *s = net_push(c);
        s->at = c->now + 1 + sim_below(c, c->max_delay);
        if (!c->reorder && s->at < c->last_at)
            s->at = c->last_at; /* FIFO: never overtake an earlier send */
        c->last_at = s->at;
        s->from = m->from;
        s->to = m->to;
        if (c->p.codec) {
            size_t cap = raft_message_encoded_size(m);
            s->buf = malloc(cap);
            if (s->buf == NULL ||
                raft_message_encode(m, s->buf, cap, &s->len) != 0)
                abort();
        } else {
            copy_message(&s->m, m);
        }
    }
}

static void deliver(struct sim_cluster *c, struct sim_msg *s)
{
    struct sim_node *n = &c->nodes[s->to];
    struct raft_message m;
    if (s->to == 0 || s->to > SIM_MAX_NODES || !n->up ||
        !c->link[s->from][s->to]) {
        free_msg(s);
        return;
    }
    if (c->p.codec) {
        if (raft_message_decode(s->buf, s->len, &m) != 0) {
            chk_fail(&c->chk, "codec: a message we encoded failed to decode");
            free_msg(s);
            return;
        }
    } else {
        m = s->m;
        memset(&s->m, 0, sizeof(s->m));
    }
    trace_msg(c, "deliver", &m);
    int rc = raft_step(n->raft, &m);
    if (rc != 0 && rc != RAFT_ERR_INVALID)
        chk_fail(&c->chk, "raft_step returned %s", raft_strerror(rc));
    raft_message_release(&m);
    free_msg(s);
    c->events++;
    observe(c, n);
}

void sim_deliver_due(struct sim_cluster *c)
{
    struct sim_msg due[512];
    size_t nd = 0, keep = 0;
    /* Stable partition: what is not due keeps its send order. */
    for (size_t k = 0; k < c->n_net; k++) {
        if (c->net[k].at <= c->now && nd < 512)
            due[nd++] = c->net[k];
        else
            c->net[keep++] = c->net[k];
    }
    c->n_net = keep;
    /* Messages due together arrive in random order unless the network is
     * in its well-behaved (FIFO) mode. */
    for (size_t k = nd; c->reorder && k > 1; k--) {
        size_t j = (size_t)sim_below(c, k);
        struct sim_msg t = due[k - 1];
        due[k - 1] = due[j];
        due[j] = t;
    }
    for (size_t k = 0; k < nd; k++)
        deliver(c, &due[k]);
}

void sim_heal(struct sim_cluster *c)
{
    for (int a = 0; a <= SIM_MAX_NODES; a++)
        for (int b = 0; b <= SIM_MAX_NODES; b++)
            c->link[a][b] = true;
}

void sim_isolate(struct sim_cluster *c, raft_id id)
{
    for (int b = 0; b <= SIM_MAX_NODES; b++) {
        if ((raft_id)b == id)
            continue;
        c->link[id][b] = false;
        c->link[b][id] = false;
    }
}

void sim_cut(struct sim_cluster *c, raft_id a, raft_id b)
{
    c->link[a][b] = false;
    c->link[b][a] = false;
}

/* ---- ready handling ----------------------------------------------------- */

static void apply_entry(struct sim_cluster *c, struct sim_node *n,
                        const struct raft_entry *e)
{
    if (e->index != n->applied + 1) {
        chk_fail(&c->chk, "node %llu applied %llu after %llu",
                 (unsigned long long)n->id, (unsigned long long)e->index,
                 (unsigned long long)n->applied);
        return;
    }
    n->hash = chk_apply(&c->chk, n->id, e, n->hash); /* K5 */
    n->applied = e->index;
    if (e->type == RAFT_ENTRY_CONF) {
        struct raft_conf_change cc;
        struct raft_conf after;
        if (raft_conf_entry_decode(e->data, e->len, &cc, &after) != 0) {
            chk_fail(&c->chk, "undecodable conf entry at %llu",
                     (unsigned long long)e->index);
            return;
        }
        n->conf = after;
        if (cc.type == RAFT_CC_REMOVE && cc.node <= SIM_MAX_NODES &&
            !c->nodes[cc.node].removed) {
            c->nodes[cc.node].removed = true;
            sim_trace(c, "node %llu removal committed",
                      (unsigned long long)cc.node);
        }
        return;
    }
    if (e->len < PAYLOAD_HDR)
        return;
    uint64_t seq, proposer;
    memcpy(&seq, e->data, 8);
    memcpy(&proposer, e->data + 8, 8);
    if (proposer != n->id)
        return;
    struct chk_slot *s = chk_map_get(&c->chk.props, seq, 0);
    if (s == NULL || s->v3 == 1)
        return;
    if (s->v1 != e->index || s->v2 != e->term) {
        chk_fail(&c->chk, "proposal %llu accepted at (%llu, term %llu) "
                          "applied at (%llu, term %llu)",
                 (unsigned long long)seq, (unsigned long long)s->v1,
                 (unsigned long long)s->v2, (unsigned long long)e->index,
                 (unsigned long long)e->term);
        return;
    }
    s->v3 = 1; /* acknowledged to the client: K6 from now on */
    c->acked++;
    if (e->index > c->chk.max_acked_index)
        c->chk.max_acked_index = e->index;
}

static void persist(struct sim_cluster *c, struct sim_node *n,
                    const struct raft_ready *rd)
{
    struct memstore *ms = &n->store;
    if (rd->snapshot != NULL)
        memstore_install_snapshot(ms, rd->snapshot);
    if (rd->n_entries > 0) {
        uint64_t prev;
        if (memstore_term(ms, rd->entries[0].index - 1, &prev) != 0)
            chk_fail(&c->chk, "node %llu persists %llu without its "
                              "predecessor",
                     (unsigned long long)n->id,
                     (unsigned long long)rd->entries[0].index);
        for (size_t k = 0; k < rd->n_entries; k++) {
            chk_persist(&c->chk, n->id, prev, &rd->entries[k]); /* K3 */
            prev = rd->entries[k].term;
        }
        memstore_append(ms, rd->entries, rd->n_entries);
    }
    if (rd->hs_changed) {
        if (rd->hs.term < ms->hs.term || rd->hs.commit < ms->hs.commit)
            chk_fail(&c->chk, "K8 node %llu persisted term/commit %llu/%llu "
                              "after %llu/%llu",
                     (unsigned long long)n->id,
                     (unsigned long long)rd->hs.term,
                     (unsigned long long)rd->hs.commit,
                     (unsigned long long)ms->hs.term,
                     (unsigned long long)ms->hs.commit);
        memstore_set_hard_state(ms, &rd->hs);
    }
}

bool sim_process_ready(struct sim_cluster *c, raft_id id, bool allow_crash)
{
    struct sim_node *n = &c->nodes[id];
    struct raft_ready rd;

    if (!n->up || !raft_has_ready(n->raft))
        return false;
    if (raft_ready(n->raft, &rd) != 0) {
        chk_fail(&c->chk, "raft_ready failed on %llu",
                 (unsigned long long)id);
        return false;
    }
    for (size_t k = 0; k < rd.n_msgs; k++)
        send(c, &rd.msgs[k]);
    if (allow_crash && sim_chance(c, c->crash_mid_ready_permille)) {
        sim_trace(c, "crash of %llu after sending, before persisting",
                  (unsigned long long)id);
        sim_node_crash(c, id);
        return true;
    }
    persist(c, n, &rd);
    for (size_t k = 0; k < rd.n_msgs_after_persist; k++) {
        const struct raft_message *m = &rd.msgs_after_persist[k];
        if (m->type == RAFT_MSG_VOTE_RESP && !m->reject)
            chk_vote(&c->chk, m->from, m->term, m->to); /* K2 */
        send(c, m);
    }
    if (rd.snapshot != NULL) {
        uint64_t idx = 0, roll = 0;
        if (rd.snapshot->len == 16) {
            memcpy(&idx, rd.snapshot->data, 8);
            memcpy(&roll, rd.snapshot->data + 8, 8);
        }
        chk_snapshot(&c->chk, id, rd.snapshot->meta.index, roll);
        n->applied = rd.snapshot->meta.index;
        n->hash = roll;
        n->conf = rd.snapshot->meta.conf;
        c->n_snap_installs++;
        sim_trace(c, "node %llu installed snapshot at %llu",
                  (unsigned long long)id,
                  (unsigned long long)rd.snapshot->meta.index);
    }
    for (size_t k = 0; k < rd.n_committed; k++)
        apply_entry(c, n, &rd.committed[k]);
    for (size_t k = 0; k < rd.n_read_states; k++) {
        const struct raft_read_state *rs = &rd.read_states[k];
        struct chk_slot *s = chk_map_get(&c->chk.reads, rs->ctx, 0);
        if (s == NULL || s->v1 != id || s->v3 == 1)
            continue;
        s->v3 = 1;
        c->reads_done++;
        sim_trace(c, "read %llu on %llu: index %llu (floor %llu)",
                  (unsigned long long)rs->ctx, (unsigned long long)id,
                  (unsigned long long)rs->index, (unsigned long long)s->v2);
        if (rs->index < s->v2) /* K7 */
            chk_fail(&c->chk, "K7 stale read: read %llu on node %llu got "
                              "index %llu but a write at %llu was "
                              "acknowledged before it began",
                     (unsigned long long)rs->ctx, (unsigned long long)id,
                     (unsigned long long)rs->index,
                     (unsigned long long)s->v2);
    }
    raft_advance(n->raft);
    observe(c, n);
    if (c->snapshot_every > 0 &&
        n->applied >= n->store.snap.meta.index + c->snapshot_every)
        sim_snapshot(c, id, false);
    return true;
}

void sim_snapshot(struct sim_cluster *c, raft_id id, bool compact)
{
    struct sim_node *n = &c->nodes[id];
    uint8_t data[16];
    if (n->applied > memstore_last_index(&n->store))
        return;
    memcpy(data, &n->applied, 8);
    memcpy(data + 8, &n->hash, 8);
    memstore_create_snapshot(&n->store, n->applied, &n->conf, data, 16);
    if (compact)
        memstore_compact_to_snapshot(&n->store);
    sim_trace(c, "node %llu snapshot at %llu (log from %llu)",
              (unsigned long long)id, (unsigned long long)n->applied,
              (unsigned long long)(n->store.off_index + 1));
}

void sim_tick(struct sim_cluster *c, raft_id id)
{
    struct sim_node *n = &c->nodes[id];
    if (!n->up)
        return;
    raft_tick(n->raft);
    observe(c, n);
}

int sim_stabilize(struct sim_cluster *c, int max_rounds)
{
    int round;
    for (round = 0; round < max_rounds; round++) {
        bool any = false;
        for (raft_id id = 1; id <= c->n_total; id++)
            any |= sim_process_ready(c, id, false);
        if (c->n_net > 0) {
            any = true;
            for (size_t k = 0; k < c->n_net; k++)
                c->net[k].at = c->now;
            sim_deliver_due(c);
        }
        c->now++;
        if (!any || c->chk.violated)
            break;
    }
    return round;
}

/* ---- client ------------------------------------------------------------- */

int sim_propose(struct sim_cluster *c, raft_id id, uint32_t extra_bytes)
{
    struct sim_node *n = &c->nodes[id];
    uint8_t buf[PAYLOAD_HDR + 256];
    uint64_t idx, term;
    if (!n->up)
        return RAFT_ERR_NOT_LEADER;
    if (extra_bytes > 256)
        extra_bytes = 256;
    uint64_t seq = ++c->next_seq;
    memcpy(buf, &seq, 8);
    memcpy(buf + 8, &n->id, 8);
    for (uint32_t k = 0; k < extra_bytes; k++)
        buf[PAYLOAD_HDR + k] = (uint8_t)(seq + k);
    int rc = raft_propose(n->raft, buf, PAYLOAD_HDR + extra_bytes, &idx,
                          &term);
    if (rc != 0)
        return rc;
    bool fresh;
    struct chk_slot *s = chk_map_put(&c->chk.props, seq, 0, &fresh);
    s->v1 = idx;
    s->v2 = term;
    c->proposals++;
    sim_trace(c, "propose seq %llu on %llu -> (%llu, term %llu)",
              (unsigned long long)seq, (unsigned long long)id,
              (unsigned long long)idx, (unsigned long long)term);
    return 0;
}

int sim_read(struct sim_cluster *c, raft_id id)
{
    struct sim_node *n = &c->nodes[id];
    if (!n->up)
        return RAFT_ERR_NOT_LEADER;
    uint64_t ctx = ++c->next_read;
    int rc = raft_read_index(n->raft, ctx);
    if (rc != 0)
        return rc;
    bool fresh;
    struct chk_slot *s = chk_map_put(&c->chk.reads, ctx, 0, &fresh);
    s->v1 = id;
    s->v2 = c->chk.max_acked_index;
    sim_trace(c, "read %llu issued on %llu (floor %llu)",
              (unsigned long long)ctx, (unsigned long long)id,
              (unsigned long long)s->v2);
    return 0;
}
