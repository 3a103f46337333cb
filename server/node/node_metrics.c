/*
 * node_metrics.c — see node_metrics.h. Everything read at scrape time goes
 * through a callback over the node; the callbacks only read counters and
 * status copies the modules publish for any thread.
 */
#include "node_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "engine.h"
#include "errors.h"
#include "node.h"

/* A RocksDB property of one column family, read at scrape time. */
typedef struct prop_ctx {
    node_metrics *m;
    enum engine_cf cf;
    const char *prop;
} prop_ctx;

#define N_PROPS 12

struct node_metrics {
    metrics_registry *reg;
    struct node *n;
    /* [enum node_txn_path] */
    metrics_counter *txn_commits[2], *txn_aborts[2], *txn_conflicts[2];
    prop_ctx props[N_PROPS];
};

node_metrics *node_metrics_new(void)
{
    node_metrics *m = calloc(1, sizeof *m);
    if (!m || !(m->reg = metrics_registry_new())) {
        free(m);
        return NULL;
    }
    static const char *const paths[2] = { "one_partition", "two_phase" };
    for (int p = 0; p < 2; p++) {
        metrics_label l = { "path", paths[p] };
        m->txn_commits[p] = metrics_counter_get(m->reg, "orderkv_txn_commits_total",
                                                "Transactions (KV.Txn) that committed.", &l, 1);
        m->txn_aborts[p] = metrics_counter_get(
            m->reg, "orderkv_txn_aborts_total",
            "Transactions (KV.Txn) decided not to apply: a condition failed or a conflict.",
            &l, 1);
        m->txn_conflicts[p] = metrics_counter_get(
            m->reg, "orderkv_txn_conflicts_total",
            "Transactions (KV.Txn) aborted because they met another transaction (also "
            "counted in orderkv_txn_aborts_total).",
            &l, 1);
    }
    return m;
}

void node_metrics_free(node_metrics *m)
{
    if (!m)
        return;
    metrics_registry_free(m->reg);
    free(m);
}

metrics_registry *node_metrics_registry(node_metrics *m) { return m ? m->reg : NULL; }

void node_metrics_txn(node_metrics *m, enum node_txn_path path, int code, int reason)
{
    if (!m)
        return;
    if (code == OKV_OK) {
        metrics_counter_inc(m->txn_commits[path]);
    } else if (code == OKV_ECONFLICT) {
        metrics_counter_inc(m->txn_aborts[path]);
        metrics_counter_inc(m->txn_conflicts[path]);
    } else if (reason || code == OKV_ECONDITION) {
        metrics_counter_inc(m->txn_aborts[path]);
    }
}

/* ---- read at scrape time ---------------------------------------------------------- */

static double one(void *ctx)
{
    (void)ctx;
    return 1;
}

/* The raft store's group statuses (as of its last tick), or NULL. */
static raftstore_group_info *groups(node *n, size_t *count)
{
    *count = 0;
    if (!n->rs)
        return NULL;
    size_t want = raftstore_groups(n->rs, NULL, 0);
    raftstore_group_info *g = calloc(want ? want : 1, sizeof *g);
    if (!g)
        return NULL;
    size_t have = raftstore_groups(n->rs, g, want);
    *count = have < want ? have : want;
    return g;
}

static double partitions_led(void *ctx)
{
    node_metrics *m = ctx;
    double led = 0;
    if (!m->n->rs) {   /* a node alone leads every partition */
        const catalog *cat = m->n->kv ? kvstore_catalog(m->n->kv) : NULL;
        for (size_t t = 0; cat && t < cat->count; t++)
            led += cat->tables[t].partitions;
        return led;
    }
    size_t k;
    raftstore_group_info *g = groups(m->n, &k);
    for (size_t i = 0; i < k; i++)
        if (g[i].st.role == RAFT_LEADER && (g[i].group >> 32) != CLUSTER_META_TABLE)
            led++;
    free(g);
    return led;
}

static double groups_led(void *ctx)
{
    node_metrics *m = ctx;
    size_t k;
    raftstore_group_info *g = groups(m->n, &k);
    double led = 0;
    for (size_t i = 0; i < k; i++)
        led += g[i].st.role == RAFT_LEADER;
    free(g);
    return led;
}

static double group_count(void *ctx)
{
    node_metrics *m = ctx;
    return m->n->rs ? (double)raftstore_groups(m->n->rs, NULL, 0) : 0;
}

/* Entries known committed but not yet applied, over every group here. */
static double apply_lag(void *ctx)
{
    node_metrics *m = ctx;
    size_t k;
    raftstore_group_info *g = groups(m->n, &k);
    double lag = 0;
    for (size_t i = 0; i < k; i++)
        if (g[i].st.commit > g[i].st.applied)
            lag += (double)(g[i].st.commit - g[i].st.applied);
    free(g);
    return lag;
}

static double max_term(void *ctx)
{
    node_metrics *m = ctx;
    size_t k;
    raftstore_group_info *g = groups(m->n, &k);
    double t = 0;
    for (size_t i = 0; i < k; i++)
        if ((double)g[i].st.term > t)
            t = (double)g[i].st.term;
    free(g);
    return t;
}

static struct raftstore_io_stats io(node_metrics *m)
{
    struct raftstore_io_stats st;
    memset(&st, 0, sizeof st);
    if (m->n->rs)
        raftstore_io_stats_get(m->n->rs, &st);
    return st;
}

static double leader_changes(void *ctx) { return (double)io(ctx).leader_changes; }
static double proposals(void *ctx) { return (double)io(ctx).proposals; }
static double entries_applied(void *ctx) { return (double)io(ctx).entries_applied; }

static struct raftstore_snap_stats snaps(node_metrics *m)
{
    struct raftstore_snap_stats st;
    memset(&st, 0, sizeof st);
    if (m->n->rs)
        raftstore_snap_stats_get(m->n->rs, &st);
    return st;
}

static double snaps_sent(void *ctx) { return (double)snaps(ctx).offered; }
static double snaps_installed(void *ctx) { return (double)snaps(ctx).installed; }
static double snaps_recorded(void *ctx) { return (double)snaps(ctx).recorded; }

/* Synced writes: the raft log's (cluster) or the committer's (a node
 * alone). */
static double syncs(void *ctx)
{
    node_metrics *m = ctx;
    if (m->n->rs)
        return (double)io(m).syncs;
    committer_stats st = { 0, 0 };
    if (m->n->com)
        committer_get_stats(m->n->com, &st);
    return (double)st.syncs;
}

static double synced_entries(void *ctx)
{
    node_metrics *m = ctx;
    if (m->n->rs)
        return (double)io(m).entries_synced;
    committer_stats st = { 0, 0 };
    if (m->n->com)
        committer_get_stats(m->n->com, &st);
    return (double)st.writes;
}

static double rocks_prop(void *ctx)
{
    prop_ctx *p = ctx;
    uint64_t v = 0;
    if (!p->m->n->kv || engine_property_uint(kvstore_engine(p->m->n->kv), p->cf, p->prop, &v))
        return 0;
    return (double)v;
}

static double uptime_s(void *ctx)
{
    node_metrics *m = ctx;
    return (double)(node_now_ms() - m->n->started_ms) / 1000.0;
}

typedef struct cb_def {
    enum metrics_type t;
    const char *name, *help;
    metrics_read_fn fn;
} cb_def;

static int add_all(node_metrics *m, const cb_def *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (metrics_callback_add(m->reg, d[i].t, d[i].name, d[i].help, NULL, 0, d[i].fn, m))
            return -1;
    return 0;
}

int node_metrics_add_node(node_metrics *m, struct node *n)
{
    if (!m)
        return 0;
    m->n = n;
    char id[32];
    snprintf(id, sizeof id, "%llu", (unsigned long long)n->node_id);
    metrics_label info[3] = { { "node_id", id },
                              { "version", OKV_VERSION_STRING },
                              { "mode", n->rs ? "cluster" : "single" } };
    if (metrics_callback_add(m->reg, METRICS_GAUGE, "orderkv_node_info",
                             "This node: its id, version and mode; always 1.", info, 3, one, m))
        return -1;
    static const cb_def node_defs[] = {
        { METRICS_GAUGE, "orderkv_partitions_led",
          "Table partitions whose Raft group this node leads (all of them for a node alone).",
          partitions_led },
        { METRICS_GAUGE, "orderkv_uptime_seconds", "Seconds since this node started.",
          uptime_s },
        { METRICS_COUNTER, "orderkv_storage_syncs_total",
          "Synced writes: of the Raft log (cluster) or of the committer (a node alone).",
          syncs },
        { METRICS_COUNTER, "orderkv_storage_synced_entries_total",
          "Log entries (cluster) or commands (a node alone) those synced writes made durable; "
          "divided by orderkv_storage_syncs_total, the entries per sync.",
          synced_entries },
    };
    static const cb_def raft_defs[] = {
        { METRICS_GAUGE, "orderkv_raft_groups", "Raft groups with a replica on this node.",
          group_count },
        { METRICS_GAUGE, "orderkv_raft_groups_led", "Raft groups (meta group included) this "
          "node leads.", groups_led },
        { METRICS_GAUGE, "orderkv_raft_max_term", "The highest term of any group here.",
          max_term },
        { METRICS_COUNTER, "orderkv_raft_leader_changes_total",
          "Times a group's known leader differed from the one seen at the previous tick "
          "(each group's first leader included).",
          leader_changes },
        { METRICS_COUNTER, "orderkv_raft_proposals_total",
          "Commands proposed to a Raft group led here.", proposals },
        { METRICS_COUNTER, "orderkv_raft_entries_applied_total",
          "Log entries applied to the state machine.", entries_applied },
        { METRICS_GAUGE, "orderkv_raft_commit_apply_lag_entries",
          "Entries known committed but not yet applied, summed over the groups here.",
          apply_lag },
        { METRICS_COUNTER, "orderkv_raft_snapshots_sent_total",
          "Snapshots handed to the sender for a follower behind the log.", snaps_sent },
        { METRICS_COUNTER, "orderkv_raft_snapshots_received_total",
          "Snapshots received from a leader and installed.", snaps_installed },
        { METRICS_COUNTER, "orderkv_raft_snapshots_taken_total",
          "Snapshots taken to compact a group's log.", snaps_recorded },
    };
    if (add_all(m, node_defs, sizeof node_defs / sizeof node_defs[0]) ||
        (n->rs && add_all(m, raft_defs, sizeof raft_defs / sizeof raft_defs[0])))
        return -1;

    static const struct {
        const char *prop, *name, *help;
    } props[] = {
        { "rocksdb.estimate-num-keys", "orderkv_rocksdb_estimate_num_keys",
          "RocksDB's estimate of the keys in a column family (rocksdb.estimate-num-keys)." },
        { "rocksdb.cur-size-all-mem-tables", "orderkv_rocksdb_memtable_bytes",
          "Bytes of a column family's memtables (rocksdb.cur-size-all-mem-tables)." },
        { "rocksdb.live-sst-files-size", "orderkv_rocksdb_live_sst_bytes",
          "Bytes of a column family's live SST files (rocksdb.live-sst-files-size)." },
        { "rocksdb.estimate-pending-compaction-bytes",
          "orderkv_rocksdb_pending_compaction_bytes",
          "Bytes RocksDB estimates compaction must rewrite "
          "(rocksdb.estimate-pending-compaction-bytes)." },
    };
    static const char *const cf_names[ENGINE_CF_COUNT] = { "raft", "data", "meta" };
    size_t k = 0;
    for (size_t p = 0; p < sizeof props / sizeof props[0]; p++)
        for (int cf = 0; cf < ENGINE_CF_COUNT && k < N_PROPS; cf++, k++) {
            m->props[k] = (prop_ctx){ m, (enum engine_cf)cf, props[p].prop };
            metrics_label l = { "cf", cf_names[cf] };
            if (metrics_callback_add(m->reg, METRICS_GAUGE, props[p].name, props[p].help, &l, 1,
                                     rocks_prop, &m->props[k]))
                return -1;
        }
    return metrics_register_process(m->reg);
}
