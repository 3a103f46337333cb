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

#include "config.h"
#include "log.h"
#include "node.h"

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

static void stop_all(node *n)
{
    rpc_server_shutdown_and_free(n->rpc, 0);
    committer_free(n->com);
    kvstore_close(n->kv);
}

static int run(const config *cfg, const sigset_t *sigs)
{
    node n;
    memset(&n, 0, sizeof n);
    n.node_id = cfg->node_id;
    n.started_ms = node_now_ms();
    snprintf(n.data_dir, sizeof n.data_dir, "%s", cfg->data_dir);

    okv_error err;
    okv_error_clear(&err);
    /* Bind first: a port in use must not leave a fresh data dir behind. */
    int rc = rpc_server_new(&n.rpc, cfg->listen, &err);
    if (rc) {
        OKV_ERROR("cannot start: %s", err.msg);
        return 1;
    }
    int ignored = 0;
    rc = kvstore_open(&n.kv, cfg->data_dir, cfg->partitions, &ignored, &err);
    if (rc) {
        OKV_ERROR("cannot open data dir %s: %s: %s", cfg->data_dir, okv_strerror(rc), err.msg);
        stop_all(&n);
        return 1;
    }
    if (ignored && cfg->partitions_set)
        OKV_WARN("--partitions %u ignored: data dir %s was created with its own partition "
                 "counts, which never change",
                 cfg->partitions, cfg->data_dir);
    if ((rc = committer_new(&n.com, n.kv, &err)) || (rc = service_kv_register(&n, &err)) ||
        (rc = service_admin_register(&n, &err)) ||
        (rc = rpc_server_start(n.rpc, cfg->threads, &err))) {
        OKV_ERROR("cannot start: %s", err.msg);
        stop_all(&n);
        return 1;
    }
    snprintf(n.listen_address, sizeof n.listen_address, "%s", rpc_server_address(n.rpc));
    if (cfg->port_file[0] && write_port_file(cfg->port_file, n.listen_address) != 0) {
        /* Whoever asked for the file waits for it: failing loudly beats
         * serving on a port nobody can learn. */
        OKV_ERROR("cannot write --port-file %s: %s", cfg->port_file, strerror(errno));
        stop_all(&n);
        return 1;
    }
    OKV_INFO("orderkvd %s serving on %s, data dir %s", OKV_VERSION_STRING, n.listen_address,
             cfg->data_dir);

    int sig = 0;
    sigwait(sigs, &sig);
    OKV_INFO("received %s; finishing in-flight requests",
             sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM");
    rpc_server_shutdown_and_free(n.rpc, cfg->shutdown_grace_ms);
    n.rpc = NULL;
    committer_free(n.com);
    kvstore_close(n.kv);
    if (cfg->port_file[0])
        unlink(cfg->port_file);   /* a stale address would mislead the next reader */
    OKV_INFO("stopped cleanly");
    return 0;
}

int main(int argc, char **argv)
{
    config cfg;
    config_defaults(&cfg);
    okv_error err;
    okv_error_clear(&err);
    if (config_parse_args(&cfg, argc, argv, &err)) {
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
