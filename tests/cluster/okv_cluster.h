/*
 * okv_cluster.h — a cluster of real orderkvd processes on loopback for the
 * cluster tests: fixed free ports, one data dir per node under one temp dir,
 * start / kill / SIGSTOP / restart by node id, and the Raft status of every
 * replica as the nodes report it (okv_status_get_at).
 *
 * Nodes are numbered 1..n (= --node-id). Every process is started with
 * okv_test_server_start (tests/lib), so its log is DIR/nodeI.log and it is
 * waited for until it serves. okv_cluster_free kills every process it
 * started, by PID, and removes the temp dir: call it from teardown, also
 * after a failed assertion.
 */
#ifndef OKV_CLUSTER_H
#define OKV_CLUSTER_H

#include <stdint.h>

#include "okv_test.h"
#include "orderkv.h"

#define OKV_CLUSTER_MAX_NODES 5
#define OKV_CLUSTER_MAX_GROUPS 64

typedef struct okv_cluster {
    int n;
    int tick_ms;
    char *dir;                                   /* temp dir, removed by _free */
    const char *orderkvd;
    char addr[OKV_CLUSTER_MAX_NODES + 1][64];    /* by node id; [0] unused */
    char data[OKV_CLUSTER_MAX_NODES + 1][4200];
    okv_test_server node[OKV_CLUSTER_MAX_NODES + 1];   /* pid 0: not running */
    int stopped[OKV_CLUSTER_MAX_NODES + 1];      /* SIGSTOPped */
    char spec[512];                              /* --initial-cluster */
    char all[512];                               /* every address, for okv_connect */
    okv_client *admin;                           /* for okv_status_get_at */
    char flags[1024];                            /* extra flags, split into flag[] */
    const char *flag[11];                        /* NULL-terminated */
    okv_options client_opts;                     /* admin and connect_one clients */
} okv_cluster;

/* One replica as one node reported it. */
typedef struct okv_cluster_replica {
    uint64_t node;
    uint32_t table_id, partition;
    char role[16];
    uint64_t term, leader, commit, applied, last_index;
} okv_cluster_replica;

/* Picks n free loopback ports, starts n nodes with --raft-tick-ms tick_ms
 * and waits until each serves. 0 on success; on failure *out is still set
 * (free it) and the failing node's log is named on stderr. */
int okv_cluster_start(okv_cluster **out, const char *orderkvd, int n, int tick_ms);

/* As okv_cluster_start, every node with one extra NAME=VALUE in its
 * environment (e.g. "ORDERKV_FAILPOINTS=..."; NULL = none) and extra
 * orderkvd flags (space-separated, at most 10 words; NULL = none), kept for
 * restarts. */
int okv_cluster_start_ex(okv_cluster **out, const char *orderkvd, int n, int tick_ms,
                         const char *env, const char *flags);
int okv_cluster_start_env(okv_cluster **out, const char *orderkvd, int n, int tick_ms,
                          const char *env);

/* As okv_cluster_start_ex, with the options of the cluster's own clients
 * (the admin client, okv_cluster_connect_one; copied, so pointers in it
 * must outlive the cluster; NULL: defaults). In flags, "@ID@" stands for
 * the node id, so each node gets its own files, e.g.
 * "--tls-cert DIR/node@ID@.crt". */
int okv_cluster_start_opts(okv_cluster **out, const char *orderkvd, int n, int tick_ms,
                           const char *env, const char *flags, const okv_options *client);

/* Sets (NULL: clears) node id's extra NAME=VALUE for its next start. */
void okv_cluster_set_env(okv_cluster *c, int id, const char *env);

/* Starts node id again with the same flags (its data dir is kept). */
int okv_cluster_node_start(okv_cluster *c, int id);

/* SIGKILL (hard) or SIGTERM and wait; returns okv_test_server_stop's status. */
int okv_cluster_node_stop(okv_cluster *c, int id, int hard);

/* SIGSTOP / SIGCONT. */
void okv_cluster_node_pause(okv_cluster *c, int id);
void okv_cluster_node_resume(okv_cluster *c, int id);

/* Reaps nodes that exited on their own, saying how on stderr; returns how
 * many did. */
int okv_cluster_reap_dead(okv_cluster *c);

/* Reports dead nodes, then prints the last `lines` lines of every node's
 * log to stderr. */
void okv_cluster_dump_logs(okv_cluster *c, int lines);

/* Kills every running node by PID (SIGCONT first, then SIGKILL), removes the
 * temp dir and frees c. Accepts NULL. */
void okv_cluster_free(okv_cluster *c);

/* Status of every replica node id holds, into out (room for
 * OKV_CLUSTER_MAX_GROUPS); returns how many, or -1 if the node did not
 * answer within timeout_ms. */
int okv_cluster_replicas(okv_cluster *c, int id, okv_cluster_replica *out, int timeout_ms);

/* The node a live node reports as leader of (table_id, partition) with role
 * "leader" and the highest term; 0 if none does right now. Skips nodes that
 * are down or SIGSTOPped. */
uint64_t okv_cluster_leader(okv_cluster *c, uint32_t table_id, uint32_t partition);

/* Waits until every partition of every table has a leader; 0 or -1 on timeout. */
int okv_cluster_wait_leaders(okv_cluster *c, int timeout_ms);

/* Waits until node id has applied, in every group it holds, at least the
 * commit index its group's leader reported when this was called. 0 or -1. */
int okv_cluster_wait_caught_up(okv_cluster *c, int id, int timeout_ms);

/* A client that talks to node id alone (okv_options.listed_nodes_only):
 * what that node answers, never another node. OKV_OK or the okv_connect code. */
int okv_cluster_connect_one(okv_cluster *c, int id, okv_client **out);

/* Monotonic clock in milliseconds. */
int64_t okv_cluster_now_ms(void);
void okv_cluster_sleep_ms(int ms);

/* Starts a cluster of n nodes, each with --metrics-listen 127.0.0.1:0, waits
 * (up to 15 s) until every partition has a leader, and reads each node's
 * metrics address from its log ("serving metrics at http://ADDR/metrics")
 * into metrics[id]. 0, or -1 with the nodes' logs printed. */
int okv_cluster_start_with_metrics(okv_cluster **out, const char *orderkvd, int n, int tick_ms,
                                   char metrics[][128]);

#endif
