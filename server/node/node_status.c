/*
 * node_status.c — see node_status.h.
 *
 * Times: the raft store and the transport stamp with CLOCK_MONOTONIC
 * (node_now_ms); the page shows wall-clock times, so a stamp t becomes
 * wall_now - (mono_now - t) when the view is built.
 */
#include "node_status.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "kvstore.h"
#include "metrics.h"
#include "node.h"
#include "raftstore.h"
#include "status_json.h"
#include "thread_name.h"
#include "transport.h"

/* The histogram every answered call is observed in (rpc_server.c). */
#define LATENCY_FAMILY "orderkv_rpc_duration_seconds"

struct node_status {
    node *n;
    transport *tp;
    metrics_registry *reg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;              /* guarded by mu */
    status_ring ring;          /* guarded by mu */
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the sampler ---------------------------------------------------------------- */

typedef struct reading {
    int n_bounds;              /* -1: no call answered yet */
    double bounds[METRICS_MAX_BUCKETS];
    uint64_t buckets[METRICS_MAX_BUCKETS + 1];
    uint64_t mono_ms;
} reading;

static void read_latency(node_status *s, reading *r)
{
    r->n_bounds = metrics_histogram_family_sum(s->reg, LATENCY_FAMILY, r->bounds, r->buckets);
    if (r->n_bounds < 0)
        memset(r->buckets, 0, sizeof r->buckets);
    r->mono_ms = node_now_ms();
}

static void *sample_loop(void *arg)
{
    node_status *s = arg;
    okv_thread_name("okv-status");
    reading prev, cur;
    read_latency(s, &prev);
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);   /* pthread_cond_timedwait's clock */
        until.tv_sec += STATUS_SAMPLE_MS / 1000;
        until.tv_nsec += (long)(STATUS_SAMPLE_MS % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!s->stopping && pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT)
            ;
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->mu);
        read_latency(s, &cur);
        status_sample smp;
        /* Before the first call the family does not exist: zero buckets. */
        int nb = cur.n_bounds >= 0 ? cur.n_bounds : 0;
        if (prev.n_bounds != cur.n_bounds)
            memset(prev.buckets, 0, sizeof prev.buckets);
        status_sample_make(&smp, wall_ms(), cur.mono_ms - prev.mono_ms, cur.bounds, (size_t)nb,
                           prev.buckets, cur.buckets);
        prev = cur;
        pthread_mutex_lock(&s->mu);
        status_ring_push(&s->ring, &smp);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int node_status_new(node_status **out, node *n, transport *tp, metrics_registry *reg,
                    okv_error *err)
{
    *out = NULL;
    node_status *s = calloc(1, sizeof *s);
    if (!s)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    s->n = n;
    s->tp = tp;
    s->reg = reg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, sample_loop, s) != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return okv_error_set(err, OKV_EUNAVAILABLE, "status: cannot start its thread");
    }
    *out = s;
    return OKV_OK;
}

void node_status_free(node_status *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- the view ------------------------------------------------------------------- */

static const char *role_name(enum raft_role r)
{
    switch (r) {
    case RAFT_LEADER: return "leader";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_PRE_CANDIDATE: return "pre-candidate";
    default: return "follower";
    }
}

static void table_name(const node *n, uint32_t table_id, char *out, size_t cap)
{
    if (table_id == CLUSTER_META_TABLE) {
        snprintf(out, cap, "meta");
        return;
    }
    const catalog *cat = n->kv ? kvstore_catalog(n->kv) : NULL;
    for (size_t t = 0; cat && t < cat->count; t++)
        if (cat->tables[t].id == table_id) {
            snprintf(out, cap, "%s", cat->tables[t].name);
            return;
        }
    snprintf(out, cap, "table %u", (unsigned)table_id);
}

static size_t fill_peers(node_status *s, status_peer *out, uint64_t mono)
{
    node *n = s->n;
    size_t k = 0;
    if (!n->rs) {   /* a node alone */
        out[0] = (status_peer){ .id = n->node_id, .self = 1, .heard_ms_ago = -1 };
        snprintf(out[0].address, sizeof out[0].address, "%s", n->listen_address);
        return 1;
    }
    for (size_t i = 0; i < n->map.n && k < CLUSTER_MAX_NODES; i++, k++) {
        status_peer *p = &out[k];
        memset(p, 0, sizeof *p);
        p->id = n->map.nodes[i].id;
        snprintf(p->address, sizeof p->address, "%s", n->map.nodes[i].addr);
        p->self = p->id == n->node_id;
        p->heard_ms_ago = -1;
        struct transport_stats st;
        if (!p->self && s->tp && transport_stats(s->tp, p->id, &st) == 0) {
            p->connected = st.connected;
            if (st.last_recv_ms)
                p->heard_ms_ago = mono > st.last_recv_ms ? (int64_t)(mono - st.last_recv_ms) : 0;
        }
    }
    return k;
}

static size_t fill_parts(node_status *s, status_partition **out)
{
    node *n = s->n;
    *out = NULL;
    if (!n->rs) {   /* a node alone leads every partition */
        const catalog *cat = n->kv ? kvstore_catalog(n->kv) : NULL;
        size_t total = 0;
        for (size_t t = 0; cat && t < cat->count; t++)
            total += cat->tables[t].partitions;
        status_partition *p = calloc(total ? total : 1, sizeof *p);
        if (!p)
            return 0;
        size_t k = 0;
        for (size_t t = 0; cat && t < cat->count; t++)
            for (uint32_t q = 0; q < cat->tables[t].partitions; q++, k++) {
                snprintf(p[k].table, sizeof p[k].table, "%s", cat->tables[t].name);
                p[k].table_id = cat->tables[t].id;
                p[k].partition = q;
                p[k].leader = n->node_id;
                p[k].role = "leader";
            }
        *out = p;
        return k;
    }
    size_t want = raftstore_groups(n->rs, NULL, 0);
    raftstore_group_info *g = calloc(want ? want : 1, sizeof *g);
    status_partition *p = calloc(want ? want : 1, sizeof *p);
    if (!g || !p) {
        free(g);
        free(p);
        return 0;
    }
    size_t have = raftstore_groups(n->rs, g, want);
    size_t k = have < want ? have : want;
    for (size_t i = 0; i < k; i++) {
        status_partition *d = &p[i];
        d->table_id = (uint32_t)(g[i].group >> 32);
        d->partition = (uint32_t)g[i].group;
        table_name(n, d->table_id, d->table, sizeof d->table);
        d->leader = g[i].st.leader;
        d->role = role_name(g[i].st.role);
        d->term = g[i].st.term;
        d->commit = g[i].st.commit;
        d->applied = g[i].st.applied;
        d->last_index = g[i].st.last_index;
        if (g[i].st.role == RAFT_LEADER)
            for (uint32_t v = 0; v < g[i].st.conf.n_voters && v < STATUS_MAX_REPLICAS; v++) {
                if (g[i].st.conf.voters[v] == n->node_id)
                    continue;
                d->replicas[d->n_replicas++] =
                    (status_replica){ g[i].st.conf.voters[v], g[i].match[v] };
            }
    }
    free(g);
    *out = p;
    return k;
}

static size_t fill_changes(node_status *s, status_leader_change *out, uint64_t mono,
                           uint64_t wall)
{
    if (!s->n->rs)
        return 0;
    struct raftstore_leader_change h[RAFTSTORE_LEADER_HISTORY];
    size_t k = raftstore_leader_history(s->n->rs, h, RAFTSTORE_LEADER_HISTORY);
    for (size_t i = 0; i < k; i++) {
        status_leader_change *c = &out[i];
        uint64_t age = mono > h[i].at_ms ? mono - h[i].at_ms : 0;
        c->at_ms = wall > age ? wall - age : 0;
        table_name(s->n, (uint32_t)(h[i].group >> 32), c->table, sizeof c->table);
        c->partition = (uint32_t)h[i].group;
        c->leader = h[i].leader;
        c->term = h[i].term;
    }
    return k;
}

char *node_status_json(void *arg, size_t *len)
{
    node_status *s = arg;
    node *n = s->n;
    uint64_t mono = node_now_ms(), wall = wall_ms();
    status_view v;
    memset(&v, 0, sizeof v);
    v.node_id = n->node_id;
    snprintf(v.address, sizeof v.address, "%s", n->listen_address);
    v.version = OKV_VERSION_STRING;
    v.mode = n->rs ? "cluster" : "single";
    v.uptime_s = (double)(mono - n->started_ms) / 1000.0;
    v.now_ms = wall;

    status_peer peers[CLUSTER_MAX_NODES];
    v.nodes = peers;
    v.n_nodes = fill_peers(s, peers, mono);
    status_partition *parts = NULL;
    v.n_parts = fill_parts(s, &parts);
    v.parts = parts;
    status_leader_change changes[RAFTSTORE_LEADER_HISTORY];
    v.changes = changes;
    v.n_changes = fill_changes(s, changes, mono, wall);
    status_sample *samples = malloc(STATUS_HISTORY * sizeof *samples);
    if (samples) {
        pthread_mutex_lock(&s->mu);
        v.n_samples = status_ring_copy(&s->ring, samples);
        pthread_mutex_unlock(&s->mu);
        v.samples = samples;
    }
    char *json = status_json(&v, len);
    free(parts);
    free(samples);
    return json;
}
