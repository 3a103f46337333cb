/*
 * orderkvd — one orderkv node.
 *
 * Threads: main (start-up, then waits for SIGTERM/SIGINT), gRPC
 * completion-queue threads (decode, validate, read, hand writes on), the
 * committer (group commit) and RocksDB's own. Shutdown order matters: stop
 * taking calls and let in-flight ones finish (their writes still need the
 * committer), then stop the committer, then close RocksDB.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "audit.h"
#include "config.h"
#include "failpoint.h"
#include "fsm.h"
#include "log.h"
#include "meta.h"
#include "node_auth.h"
#include "metrics_http.h"
#include "node_status.h"
#include "node.h"
#include "node_metrics.h"
#include "orders_gc.h"
#include "snap_recv.h"
#include "snap_send.h"
#include "tls_creds.h"
#include "tpc_driver.h"
#include "transport.h"

int node_boot_cluster(node *n, const char *spec, int *clustered, okv_error *err);

/* ---- cluster mode wiring -------------------------------------------------- */

static _Atomic(raftstore *) g_store;   /* set once the store exists */

static void on_peer_message(void *arg, uint64_t from, uint64_t group, struct raft_message *m)
{
    (void)arg;
    (void)from;
    raftstore *rs = atomic_load(&g_store);
    if (rs)
        raftstore_receive(rs, group, m);
    else
        raft_message_release(m);
}

static void net_send(void *ctx, uint64_t to, uint64_t group, const struct raft_message *m)
{
    transport_send(ctx, to, group, m);   /* a drop is fine: Raft retries */
}

static void net_flush(void *ctx) { transport_flush(ctx); }

static void log_bridge(void *ctx, int level, const char *msg)
{
    (void)ctx;
    OKV_LOG(level, "%s", msg);
}

/* Snapshots travel on their own calls, not on the transport (snap_send.h,
 * snap_recv.h). */
static snap_send *g_snap_send;
static snap_recv *g_snap_recv;

static int net_send_snapshot(void *ctx, uint64_t to, uint64_t group,
                             const struct raft_message *m, engine_snapshot *snap)
{
    (void)ctx;
    if (!g_snap_send) {
        engine_snapshot_free(snap);
        return OKV_EUNAVAILABLE;
    }
    return snap_send_start(g_snap_send, to, group, m, snap);
}

static int peer_address(void *ctx, uint64_t id, char *buf, size_t cap)
{
    const node *n = ctx;
    const cluster_node *cn = cluster_node_by_id(&n->map, id);
    if (!cn)
        return -1;
    snprintf(buf, cap, "%s", cn->addr);
    return 0;
}

static int known_peer(void *ctx, uint64_t id)
{
    const node *n = ctx;
    return id != n->node_id && cluster_node_by_id(&n->map, id) != NULL;
}

static int on_snapshot(void *ctx, uint64_t group, struct raft_message *m)
{
    (void)ctx;
    raftstore *rs = atomic_load(&g_store);
    return rs ? raftstore_receive_snapshot(rs, group, m) : OKV_EUNAVAILABLE;
}

/* The snapshot sender and receiver; after raftstore_new (which empties the
 * snap dir) and before rpc_server_start (the receiver's method). */
static int start_snapshots(node *n, okv_error *err)
{
    struct snap_send_options so;
    memset(&so, 0, sizeof so);
    so.cluster_id = n->map.cluster_id;
    so.node_id = n->node_id;
    so.e = kvstore_engine(n->kv);
    so.peer_address = peer_address;
    so.peer_ctx = n;
    so.log = log_bridge;
    so.tls = n->tls;
    so.auth_secret = node_auth_secret(n);
    int rc = snap_send_new(&g_snap_send, &so, err);
    if (rc)
        return rc;
    struct snap_recv_options ro;
    memset(&ro, 0, sizeof ro);
    ro.cluster_id = n->map.cluster_id;
    ro.node_id = n->node_id;
    ro.e = kvstore_engine(n->kv);
    ro.known_peer = known_peer;
    ro.deliver = on_snapshot;
    ro.ctx = n;
    ro.log = log_bridge;
    return snap_recv_new(&g_snap_recv, n->rpc, &ro, err);
}

/* The preferred leader of each partition campaigns at start. */
static int campaign(void *ctx, uint64_t group)
{
    const node *n = ctx;
    uint64_t r[CLUSTER_MAX_NODES];
    cluster_replicas(&n->map, (uint32_t)(group >> 32), (uint32_t)group, r);
    return r[0] == n->node_id;
}

static uint64_t preferred_leader(void *ctx, uint64_t group)
{
    const node *n = ctx;
    uint64_t r[CLUSTER_MAX_NODES];
    cluster_replicas(&n->map, (uint32_t)(group >> 32), (uint32_t)group, r);
    return r[0];
}

static transport *g_transport;
static metrics_http *g_metrics_http;   /* --metrics-listen */
static node_status *g_status;          /* its /status.json */

static int peer_alive(void *ctx, uint64_t node_id)
{
    (void)ctx;
    struct transport_stats st;
    return g_transport && transport_stats(g_transport, node_id, &st) == 0 && st.connected;
}

/* Creates (or loads) the group of (table, partition) if this node holds a
 * replica of it. */
static int bootstrap_group(node *n, uint32_t table_id, uint32_t partition, okv_error *err)
{
    if (!cluster_holds(&n->map, n->node_id, table_id, partition))
        return OKV_OK;
    uint64_t r[CLUSTER_MAX_NODES];
    size_t nr = cluster_replicas(&n->map, table_id, partition, r);
    struct raft_conf conf;
    memset(&conf, 0, sizeof conf);
    conf.n_voters = (uint32_t)nr;
    for (size_t k = 0; k < nr; k++)
        conf.voters[k] = r[k];
    return raftstore_bootstrap_group(n->rs, fsm_group_id(table_id, partition), &conf, err);
}

/* Creates the transport and the multi-Raft store, bootstrapping the meta
 * group and the groups of every partition this node holds (existing ones
 * are loaded). */
static int start_cluster(node *n, const config *cfg, transport **tp, okv_error *err)
{
    struct transport_options to = TRANSPORT_OPTIONS_INIT;
    to.cluster_id = n->map.cluster_id;
    to.node_id = n->node_id;
    to.on_message = on_peer_message;
    to.on_message_arg = n;
    to.log = log_bridge;
    to.log_level = okv_log_level;
    to.tls = n->tls;
    to.auth_secret = node_auth_secret(n);
    int rc = transport_new(tp, n->rpc, &to, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n->map.n; i++)
        if (n->map.nodes[i].id != n->node_id &&
            (rc = transport_set_peer(*tp, n->map.nodes[i].id, n->map.nodes[i].addr)))
            return okv_error_set(err, rc, "cannot add peer %s", n->map.nodes[i].addr);
    raftstore_config rc_cfg;
    memset(&rc_cfg, 0, sizeof rc_cfg);
    rc_cfg.node_id = n->node_id;
    rc_cfg.e = kvstore_engine(n->kv);
    rc_cfg.net.send = net_send;
    rc_cfg.net.flush = net_flush;
    rc_cfg.net.send_snapshot = net_send_snapshot;
    rc_cfg.net.ctx = *tp;
    rc_cfg.tick_ms = cfg->tick_ms;
    rc_cfg.election_ticks = cfg->election_ticks;   /* what the meta group records */
    /* raftstore: 0 = its default, -1 = never; the flag's 0 means never. */
    rc_cfg.snapshot_entries = cfg->snapshot_entries ? cfg->snapshot_entries : -1;
    rc_cfg.log_keep = cfg->log_keep ? cfg->log_keep : -1;
    rc_cfg.lease_reads = cfg->lease_reads;
    rc_cfg.log = log_bridge;
    rc_cfg.preferred_leader = preferred_leader;
    rc_cfg.peer_alive = peer_alive;
    rc_cfg.balance_ctx = n;
    g_transport = *tp;
    if ((rc = raftstore_new(&n->rs, &rc_cfg, err)) || (rc = start_snapshots(n, err)))
        return rc;
    if ((rc = bootstrap_group(n, CLUSTER_META_TABLE, 0, err)))
        return rc;
    const catalog *cat = kvstore_catalog(n->kv);
    for (size_t t = 0; t < cat->count; t++)
        for (uint32_t p = 0; p < cat->tables[t].partitions; p++)
            if ((rc = bootstrap_group(n, cat->tables[t].id, p, err)))
                return rc;
    atomic_store(&g_store, n->rs);
    return OKV_OK;
}

static int write_port_file(const char *path, const char *address)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%s\n", address) > 0;
    ok = (fclose(f) == 0) && ok;
    /* rename makes the file appear whole: a test polling for it never reads
     * half an address. */
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Shutdown order: stop taking calls and let in-flight ones be answered
 * while the committer or the raft loop still runs; stop those (answering
 * anything left); then tear down gRPC, the transport (after the server that
 * hosts its streams) and RocksDB. */
static void stop_all(node *n, transport *tp)
{
    metrics_http_free(g_metrics_http);   /* first: its scrapes read every module */
    g_metrics_http = NULL;
    node_status_free(g_status);          /* its sampler reads the registry */
    g_status = NULL;
    rpc_server_drain(n->rpc, 0);
    orders_gc_free(n->orders_gc);   /* uses the driver's client */
    n->orders_gc = NULL;
    tpc_driver_stop(n->tpc);   /* its steps in flight end by their deadlines */
    meta_free(n->meta);
    n->meta = NULL;
    atomic_store(&g_store, NULL);
    raftstore_free(n->rs);
    tpc_driver_free(n->tpc);   /* after the store: its own steps' answers look at it */
    n->tpc = NULL;
    snap_send_free(g_snap_send);   /* the loop hands it no more transfers */
    g_snap_send = NULL;
    g_transport = NULL;
    committer_free(n->com);
    rpc_server_shutdown_and_free(n->rpc, 0);
    transport_free(tp);
    auth_free(n->auth);   /* after the server: its checks used it */
    n->auth = NULL;
    snap_recv_free(g_snap_recv);   /* after the server released its streams */
    g_snap_recv = NULL;
    service_backup_free(n);   /* its snapshots pin the engine */
    kvstore_close(n->kv);
    n->kv = NULL;
    audit_log_free(n->audit);   /* after the server: no handler appends any more */
    n->audit = NULL;
    node_metrics_free(n->metrics);   /* last: the server's methods pointed into it */
    n->metrics = NULL;
}

static int run_with(const config *cfg, const sigset_t *sigs, const tls_pem *tls)
{
    node n;
    memset(&n, 0, sizeof n);
    n.node_id = cfg->node_id;
    n.started_ms = node_now_ms();
    snprintf(n.data_dir, sizeof n.data_dir, "%s", cfg->data_dir);

    okv_error err;
    okv_error_clear(&err);
    n.tls = tls;
    /* Bind first: a port in use must not leave a fresh data dir behind. */
    /* -1 (not given) means require; 2 asks for a certificate and checks one
     * that is shown, without requiring it. */
    int client_auth = cfg->tls_client_auth < 0 ? 1 : cfg->tls_client_auth;
    int rc = rpc_server_new_tls(&n.rpc, cfg->listen, tls, client_auth, &err);
    if (rc) {
        OKV_ERROR("cannot start: %s", err.msg);
        return 1;
    }
    /* Metrics only with --metrics-listen: without it nothing is counted.
     * Bound here too, so a port in use leaves no data dir behind; what a
     * scrape reads of the node is added once it all exists (below). */
    if (cfg->metrics_listen[0]) {
        if (!(n.metrics = node_metrics_new()))
            rc = okv_error_set(&err, OKV_ENOMEM, "out of memory");
        else
            rc = metrics_http_new(&g_metrics_http, node_metrics_registry(n.metrics),
                                  cfg->metrics_listen, &err);
        if (rc) {
            OKV_ERROR("cannot start: %s", err.msg);
            stop_all(&n, NULL);
            return 1;
        }
        rpc_server_set_metrics(n.rpc, node_metrics_registry(n.metrics));
        OKV_INFO("serving metrics at http://%s/metrics", metrics_http_address(g_metrics_http));
        OKV_INFO("status page at http://%s/", metrics_http_address(g_metrics_http));
    }
    int ignored = 0;
    rc = kvstore_open(&n.kv, cfg->data_dir, cfg->partitions, &ignored, &err);
    if (rc) {
        OKV_ERROR("cannot open data dir %s: %s: %s", cfg->data_dir, okv_strerror(rc), err.msg);
        stop_all(&n, NULL);
        return 1;
    }
    if ((rc = node_auth_new(&n, cfg, &err)) ||
        /* In the data dir, which exists now; before any service can record. */
        (rc = audit_log_open(&n.audit, cfg->data_dir, cfg->audit_max_bytes, cfg->audit_keep,
                             &err))) {
        OKV_ERROR("cannot start: %s", err.msg);
        stop_all(&n, NULL);
        return 1;
    }
    if (ignored && cfg->partitions_set)
        OKV_WARN("--partitions %u ignored: data dir %s was created with its own partition "
                 "counts, which never change",
                 cfg->partitions, cfg->data_dir);
    int clustered = 0;
    transport *tp = NULL;
    /* What leader leases depend on; the meta group refuses a node whose
     * values differ from the cluster's (meta.h), before Raft starts when
     * the record is on disk, and before any client call is taken. */
    meta_timing timing = { .tick_ms = cfg->tick_ms,
                           .election_ticks = cfg->election_ticks,
                           .lease_reads = cfg->lease_reads };
    if ((rc = node_boot_cluster(&n, cfg->initial_cluster, &clustered, &err)) ||
        (clustered && (rc = start_cluster(&n, cfg, &tp, &err))) ||
        (clustered && (rc = meta_new(&n.meta, &n, &timing, &err))) ||
        (!clustered && (rc = committer_new(&n.com, n.kv, &err))) ||
        (rc = clustered ? service_kv_raft_register(&n, &err) : service_kv_register(&n, &err)) ||
        (clustered && (rc = service_tpc_register(&n, &err))) ||
        (clustered && (rc = service_backup_register(&n, &err))) ||
        (rc = service_admin_register(&n, &err)) ||
        (rc = service_orders_register(&n, &err)) ||
        (rc = service_users_register(&n, &err)) ||
        (clustered && (rc = node_auth_finish(&n, cfg, &err))) ||
        (rc = rpc_server_start(n.rpc, cfg->threads, &err)) ||
        (clustered && (rc = raftstore_start(n.rs, campaign, &n, &err))) ||
        (clustered && (rc = meta_start(n.meta, &err))) ||
        (clustered && (rc = tpc_driver_new(&n.tpc, &n, cfg->txn_timeout_ms, &err))) ||
        (clustered && (rc = orders_gc_new(&n.orders_gc, &n, cfg->idem_retention_ms,
                                          cfg->idem_gc_every_ms, &err)))) {
        OKV_ERROR("cannot start: %s", err.msg);
        stop_all(&n, tp);
        return 1;
    }
    /* After everything those series read exists, before the port file
     * tells a waiting test the node is up. */
    if (n.metrics && node_metrics_add_node(n.metrics, &n) != 0) {
        OKV_ERROR("cannot start: %s", "out of memory");
        stop_all(&n, tp);
        return 1;
    }
    snprintf(n.listen_address, sizeof n.listen_address, "%s", rpc_server_address(n.rpc));
    /* The status page's data: the whole node exists now. */
    if (n.metrics) {
        if ((rc = node_status_new(&g_status, &n, tp, node_metrics_registry(n.metrics), &err))) {
            OKV_ERROR("cannot start: %s", err.msg);
            stop_all(&n, tp);
            return 1;
        }
        metrics_http_set_status(g_metrics_http, node_status_json, g_status);
    }
    if (cfg->port_file[0] && write_port_file(cfg->port_file, n.listen_address) != 0) {
        /* Whoever asked for the file waits for it: failing loudly beats
         * serving on a port nobody can learn. */
        OKV_ERROR("cannot write --port-file %s: %s", cfg->port_file, strerror(errno));
        stop_all(&n, tp);
        return 1;
    }
    if (clustered)
        OKV_INFO("orderkvd %s: node %llu of cluster %016llx (%zu nodes) serving on %s, data dir %s",
                 OKV_VERSION_STRING, (unsigned long long)n.node_id,
                 (unsigned long long)n.map.cluster_id, n.map.n, n.listen_address, cfg->data_dir);
    else
        OKV_INFO("orderkvd %s serving on %s, data dir %s", OKV_VERSION_STRING, n.listen_address,
                 cfg->data_dir);

    int sig = 0;
    sigwait(sigs, &sig);
    int failed = atomic_load(&n.must_exit);
    if (failed)
        OKV_ERROR("stopping: %s", "this node does not match the cluster's record (above)");
    else
        OKV_INFO("received %s; finishing in-flight requests",
                 sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM");
    rpc_server_drain(n.rpc, cfg->shutdown_grace_ms);
    stop_all(&n, tp);
    if (cfg->port_file[0])
        unlink(cfg->port_file);   /* a stale address would mislead the next reader */
    OKV_INFO("stopped %s", failed ? "(exit status 1)" : "cleanly");
    return failed ? 1 : 0;
}

/* The TLS files are read and checked before anything else, so that a
 * wrong one is an error at start naming it, not a failed handshake later
 * (tls_creds.h). */
static int run(const config *cfg, const sigset_t *sigs)
{
    static const char *const names[3] = { "--tls-ca", "--tls-cert", "--tls-key" };
    tls_pem tls;
    okv_error err;
    okv_error_clear(&err);
    if (tls_pem_load(&tls, cfg->tls_ca, cfg->tls_cert, cfg->tls_key, names, &err)) {
        OKV_ERROR("cannot start: %s", err.msg);
        return 1;
    }
    if (tls_pem_on(&tls))
        OKV_INFO("serving TLS only: certificate %s, CA %s, client certificates %s; peers are "
                 "dialled with TLS showing this certificate",
                 cfg->tls_cert, cfg->tls_ca,
                 cfg->tls_client_auth == 0   ? "not requested"
                 : cfg->tls_client_auth == 2 ? "checked when shown (optional)"
                                             : "required (mutual TLS)");
    else
        OKV_INFO("serving plaintext (no TLS: --tls-ca, --tls-cert, --tls-key not given)");
    int rc = run_with(cfg, sigs, tls_pem_on(&tls) ? &tls : NULL);
    tls_pem_free(&tls);
    return rc;
}

int main(int argc, char **argv)
{
    config cfg;
    config_defaults(&cfg);
    okv_error err;
    okv_error_clear(&err);
    if (config_parse_args(&cfg, argc, argv, &err) || config_check(&cfg, &err)) {
        fprintf(stderr, "orderkvd: %s\n", err.msg);
        return 2;
    }
    if (cfg.show_help) {
        fputs(config_usage(), stdout);
        return 0;
    }
    if (cfg.show_version) {
        printf("orderkvd %s\n", OKV_VERSION_STRING);
        return 0;
    }
    okv_log_level = cfg.log_level;
    okv_log_node_id = (unsigned long)cfg.node_id;
#if OKV_FAILPOINTS_BUILD
    char fpmsg[256];
    if (okv_fp_init(fpmsg, sizeof fpmsg)) {
        fprintf(stderr, "orderkvd: %s\n", fpmsg);
        return 2;
    }
    OKV_WARN("this orderkvd is a failpoint build, not for production (%s)", okv_fp_describe());
#endif

    /* Signals are taken synchronously by main via sigwait; every other thread
     * inherits the blocked mask, so no handler ever runs inside gRPC or RocksDB. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);   /* the terminal went away: stop cleanly too */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    return run(&cfg, &sigs);
}
