/*
 * node.h — what the services of one orderkvd node share.
 */
#ifndef OKV_SERVER_NODE_H
#define OKV_SERVER_NODE_H

#include <stdatomic.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "cluster.h"
#include "committer.h"
#include "kvstore.h"
#include "raftstore.h"
#include "rpc_server.h"

typedef struct node {
    uint64_t node_id;
    char data_dir[4096];
    char listen_address[128];
    uint64_t started_ms;            /* monotonic clock at start */
    kvstore *kv;
    committer *com;            /* single-node mode */
    rpc_server *rpc;
    _Atomic uint64_t reads;
    _Atomic uint64_t lease_reads;   /* reads a leader served under its lease */
    /* Cluster mode (--initial-cluster): writes go through Raft. */
    raftstore *rs;
    cluster_map map;
    struct meta *meta;              /* the meta group's watcher (meta.h) */
    struct tpc_driver *tpc;         /* two-phase commit (tpc_driver.h) */
    struct orders_gc *orders_gc;    /* idempotency records' retention (orders_gc.h) */
    struct node_metrics *metrics;   /* what /metrics shows (node_metrics.h); may be NULL */
    struct audit_log *audit;        /* DATA/audit.log (audit.h); NULL: nothing recorded */
    struct service_backup *backup;  /* backup sessions (service_backup.c) */
    _Atomic int must_exit;          /* set (then SIGTERM) when the node may not run on */
    _Atomic uint64_t next_client_seq;
    /* TLS material (client/tls_creds.h), NULL when plaintext: the server,
     * the transport, snapshots and the internal client all use it. */
    const struct tls_pem *tls;
    /* Users and roles (--auth on; server/auth/auth.h); NULL when off. */
    struct auth *auth;
} node;

/* Who the audit log names for id: the user (or AUTH_NODE_USER),
 * "anonymous" without credentials (or with --auth off), "unauthenticated"
 * for credentials that did not check out. */
const char *node_audit_who(const rpc_identity *id);

/* Records an admin action or a refused call in the audit log. */
void node_audit(node *n, const rpc_identity *who, const char *what, const char *result);

/* Registers WhoAmI and the user calls of orderkv.v1.Admin (service_users.c). */
int service_users_register(node *n, okv_error *err);

/* Registers orderkv.v1.KV served through the multi-Raft store. */
int service_kv_raft_register(node *n, okv_error *err);

/* 1 after answering UNAVAILABLE when the meta group refuses this node
 * (its tables differ from the cluster's record, meta.h); 0 otherwise. */
int service_refused_by_meta(rpc_call *call, node *n);

/* Answers NOT_LEADER with the leader's id and client address when known. */
void service_reply_not_leader(rpc_call *call, const node *n, uint64_t leader);

/* Registers orderkv.v1.KV (Get, Put, Delete, Scan) on the node's server. */
int service_kv_register(node *n, okv_error *err);

/* Registers Get, Put, Delete, Scan of orderkv.v1.KV with these handlers
 * (in that order), for either mode. */
int service_kv_methods_register(node *n, const rpc_handler fns[4], okv_error *err);

/* Registers orderkv.v1.Admin (Status, TransferLeader, AuditTail). */
int service_admin_register(node *n, okv_error *err);

/* service_audit.c: records an admin action handled on call in the node's
 * audit log: who (for now always "anonymous"), from (the call's peer),
 * what, and the result: "ok" for code OKV_OK, else "error: <code name>:
 * <msg>". */
void service_audit_action(node *n, rpc_call *call, const char *what, int code, const char *msg);

/* service_audit.c: registers Admin.AuditTail. */
int service_audit_register(node *n, okv_error *err);

/* Answers a call with an error: the gRPC status plus a response body whose
 * field 1 is the Error message. Every orderkv response message has `Error
 * error = 1` and nothing else set on failure, so one encoding serves all. */
void service_reply_error(rpc_call *call, int code, const char *msg);

/* Packs a response message and answers the call with it (status OK). */
void service_reply_message(rpc_call *call, const ProtobufCMessage *msg);

/* Answers a get with a value and its version. */
void service_reply_value(rpc_call *call, const uint8_t *val, size_t len, uint64_t version);

/* The answer to an applied write: its version, or the conflict or refusal
 * the state machine found (single-node and cluster mode alike). */
void service_reply_applied(rpc_call *call, int is_delete, const command_result *r);

/* Answers a put (is_delete = 0) or a delete with its outcome. */
void service_reply_write(rpc_call *call, int is_delete, uint64_t version, int existed);

/* Answers a scan with one page of items; more = keys may follow the last. */
void service_reply_scan(rpc_call *call, const kv_item *items, size_t count, int more);

/* Proto ErrorCode for an OKV_E* code. */
int service_error_code(int code);

/* service_txn.c: the KV.Txn handler for this node's mode (single node:
 * through the committer; cluster: proposed to the partition's group). */
rpc_handler service_txn_handler(const node *n);

/* service_orders.c, service_orders_read.c: orderkv.v1.Orders (docs/orders.md);
 * a node alone answers UNIMPLEMENTED. */
int service_orders_register(node *n, okv_error *err);

/* service_tpc.c: KV.TxnPart and KV.TxnStatus (cluster mode). */
int service_tpc_register(node *n, okv_error *err);

/* service_backup.c: Admin.BackupFence, BackupCut, BackupRead (cluster
 * mode); _free releases the sessions' RocksDB snapshots (after the server
 * stopped, before the engine closes). */
int service_backup_register(node *n, okv_error *err);
void service_backup_free(node *n);

/* node_boot.c: stores the cluster record a first boot in cluster mode
 * writes (this node's id and the map, placement version current), synced:
 * also what a restore writes into the data dirs it makes. */
int node_boot_write_record(engine *e, uint64_t node_id, const cluster_map *map, okv_error *err);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t node_now_ms(void);

#endif
