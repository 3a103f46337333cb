/*
 * client_int.h — liborderkv internals shared by its files.
 */
#ifndef OKV_CLIENT_INT_H
#define OKV_CLIENT_INT_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <protobuf-c/protobuf-c.h>
#include <stdatomic.h>

#include "client_reqid.h"
#include "orderkv.h"
#include "tls_creds.h"

#define CLIENT_MAX_ADDRS 16
#define CLIENT_ADDR_MAX 256
/* Connections per node. gRPC runs each HTTP/2 connection's transport work
 * serially, so one connection caps a busy client; calls spread over a few. */
#define CLIENT_CONNS_PER_NODE 4

#define CLIENT_MAX_TABLES 16

/* A write in flight (client_inflight.c); lives on the caller's stack. */
typedef struct client_write {
    uint64_t id;
    struct client_write *prev, *next;
} client_write;

/* Every tag on the client's completion queue (client_async.c). */
typedef struct client_tag {
    void (*fn)(struct client_tag *t, int ok);
} client_tag;

/* Batched streams per node (client_stream.c): calls spread over them,
 * each on its own connection. */
#define CLIENT_STREAMS_PER_NODE 2

struct client_op;
struct client_stream;

/* Cached leaders of one table's partitions (client_route.c). */
typedef struct route_table {
    char name[72];
    uint32_t id;
    uint32_t partitions;
    long *leader;          /* per partition: index into addrs, -1 = unknown */
} route_table;

/* What a routed call is about: its key decides the partition, unless
 * partition >= 0 names it (a node's calls to another partition's leader). */
typedef struct client_route_key {
    const char *table;
    const void *key;
    size_t key_len;
    long partition;
} client_route_key;

/* Methods, indexing okv_client.methods. The Orders methods
 * (M_ORDERS_FIRST..M_COUNT-1) are served by any node of a cluster and carry
 * no request id (client_orders.c). */
enum client_method {
    M_GET, M_PUT, M_DELETE, M_SCAN, M_STATUS, M_TRANSFER, M_BATCH, M_TXN, M_TXN_PART, M_TXN_STATUS,
    M_WHOAMI, M_USER_ADD, M_USER_SET, M_USER_DELETE, M_USER_LIST,
    M_AUDIT_TAIL,
    M_BACKUP_FENCE, M_BACKUP_CUT, M_BACKUP_READ,
    M_ORDER_CREATE, M_ORDER_GET, M_ORDER_LIST, M_ORDER_PAY, M_ORDER_CANCEL, M_ORDER_SHIP,
    M_ORDER_COMPLETE, M_ORDER_REFUND, M_ACCOUNT_CREATE, M_ACCOUNT_GET, M_ACCOUNT_DEPOSIT,
    M_STOCK_SET, M_STOCK_GET, M_STOCK_RESERVE,
    M_COUNT
};
#define M_ORDERS_FIRST M_ORDER_CREATE

struct okv_client {
    okv_options opts;            /* its tls_* pointers are NULL: see tls */
    tls_pem tls;                 /* read at okv_connect; every channel uses it */
    /* okv_options.user and .password as the metadata every call sends
     * (client_auth.c); auth_md_count is 0 when no user was given. */
    grpc_metadata auth_md[2];
    size_t auth_md_count;
    char *auth_user, *auth_password;   /* copies, for clients made from this one */
    /* Nodes: those given to okv_connect, then any the cluster names (its
     * Status node list, NOT_LEADER hints). Entries are appended, under
     * addr_mu, and published by the release store of naddrs; an entry
     * never changes once published, so readers need no lock. */
    atomic_size_t naddrs;
    pthread_mutex_t addr_mu;
    char addrs[CLIENT_MAX_ADDRS][CLIENT_ADDR_MAX];
    grpc_channel *channels[CLIENT_MAX_ADDRS][CLIENT_CONNS_PER_NODE];
    void *methods[CLIENT_MAX_ADDRS][CLIENT_CONNS_PER_NODE][M_COUNT];  /* registered calls */
    atomic_uint next_conn;                /* round-robin over a node's connections */
    atomic_size_t current;                /* index of the node last reached */
    pthread_mutex_t inflight_mu;
    uint64_t next_request_id;              /* guarded by inflight_mu */
    client_write *inflight_head, *inflight_tail;   /* in id order */
    /* The cluster deduplicates writes by request id (cluster mode), so a
     * write whose answer was lost may be sent again (client_call.c). */
    atomic_int servers_dedup;
    char addr_list[CLIENT_MAX_ADDRS * CLIENT_ADDR_MAX];  /* for messages */
    /* Idle completion queues, reused by calls: creating and destroying one
     * per call costs more than the call's own work on loopback. */
    pthread_mutex_t route_mu;
    route_table routes[CLIENT_MAX_TABLES];   /* guarded by route_mu */
    size_t nroutes;
    int routes_loaded;
    atomic_int routes_tried;
    pthread_mutex_t cq_mu;
    grpc_completion_queue **cq_free;
    size_t cq_nfree, cq_cap;
    /* The asynchronous core (client_async.c). */
    grpc_completion_queue *async_cq;
    pthread_t cq_thread;
    pthread_mutex_t timer_mu;
    struct client_op *timers;              /* by wake time; guarded by timer_mu */
    pthread_mutex_t ops_mu;
    pthread_cond_t ops_cv;
    long ops_live;                         /* submitted, done not yet run */
    /* Batched streams (client_stream.c), guarded by stream_mu. */
    pthread_mutex_t stream_mu;
    pthread_cond_t stream_cv;
    struct client_stream *streams[CLIENT_MAX_ADDRS][CLIENT_STREAMS_PER_NODE];
    long streams_live;                     /* allocated, not yet freed */
    atomic_int no_batch[CLIENT_MAX_ADDRS]; /* the node serves no KV.Batch: unary calls */
    atomic_uint next_stream;
    int closing;                           /* no new streams */
    /* client_tls_diagnose's last probe per node: result + 1 and when
     * (monotonic ms); reused for a second, so many calls failing at once
     * probe a node once. */
    atomic_int probe_res[CLIENT_MAX_ADDRS];
    _Atomic int64_t probe_ms[CLIENT_MAX_ADDRS];
};

/* A pluck completion queue for one call; give it back with client_cq_put. */
grpc_completion_queue *client_cq_get(okv_client *c);
void client_cq_put(okv_client *c, grpc_completion_queue *cq);

/* Request ids of a session: client_reqid.h. */


/* Gives w the next request id and counts it in flight; returns the
 * watermark to send with it. Pair with client_write_end. */
uint64_t client_write_begin(okv_client *c, client_write *w);
void client_write_end(okv_client *c, client_write *w);

/* How many nodes the client knows now (acquire: their channels are ready). */
size_t client_naddrs(okv_client *c);

/* Index of addr among the client's nodes, adding it (with its channels) if
 * it is new; -1 if it is malformed or the list is full. */
long client_node_add(okv_client *c, const char *addr);

/* Records code + message as this thread's last error on c; returns code. */
/* client_auth.c: takes okv_options.user / .password (validated; copied),
 * frees them, and points a SEND_INITIAL_METADATA op at them. */
int client_auth_init(okv_client *c, const char *user, const char *password);
void client_auth_free(okv_client *c);
void client_auth_md(const okv_client *c, grpc_op *send_initial_metadata);

int client_fail(const okv_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds an Orders refusal's reason (OrdersError) to this thread's last
 * error on c, which client_fail reset to 0; okv_orders_reason reads it. */
void client_fail_reason(const okv_client *c, int reason);

/* The node to try first for a routed write (-1: no idea). Loads the table
 * list from the cluster the first time. */
long client_route_pick(okv_client *c, const client_route_key *rk, int timeout_ms);
/* Records that addrs[idx] leads rk's partition (-1: unknown). */
void client_route_learn(okv_client *c, const client_route_key *rk, long idx);
/* As client_route_pick, but never loads: for the completion thread. */
long client_route_peek(okv_client *c, const client_route_key *rk);
void client_route_free(okv_client *c);
/* The partition of key in table as the servers compute it; -1 while the
 * table list is not loaded or the table is unknown. */
long client_route_partition(okv_client *c, const char *table, const void *key, size_t key_len);
/* How many partitions table has (the table list is loaded if it was not);
 * -1 if the table is unknown or the list could not be loaded. */
long client_route_partitions(okv_client *c, const char *table, int timeout_ms);

/* A range condition (okv_tx_scan): partition `partition` of table holds
 * `count` keys in [lo, hi) (either bound may be empty: open) whose digest
 * (range_digest.h) is `digest`. */
int client_txn_req_range(okv_txn_req *t, const char *table, uint32_t partition, const void *lo,
                         size_t lo_len, const void *hi, size_t hi_len, uint64_t count,
                         uint64_t digest);
/* 1 if t holds a range condition. */
int client_txn_req_has_range(const okv_txn_req *t);

/* One unary call with failover across addresses. On OKV_OK, *resp_out is the
 * unpacked response (free with protobuf_c_message_free_unpacked). is_write
 * selects the ambiguity rules: a write that may have reached a server never
 * reports a clean failure, it reports OKV_EUNKNOWN. */
int client_unary(okv_client *c, enum client_method m, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *resp_desc, int is_write, int timeout_ms,
                 ProtobufCMessage **resp_out, size_t *addr_index_out,
                 const client_route_key *route);

/* What a server (or gRPC) answered one attempt of a call. */
typedef struct client_answer {
    grpc_status_code status;
    const char *details;             /* status message; never NULL */
    const uint8_t *body;             /* the response message, if has_body */
    size_t body_len;
    int has_body;
} client_answer;

/* What one attempt told us beyond its code. */
typedef struct client_attempt {
    int from_server;                 /* the server answered with an orderkv Error */
    char leader[CLIENT_ADDR_MAX];    /* NOT_LEADER: the leader's address, "" if unknown */
} client_attempt;

/* Turns an answer from addrs[idx] into a code; on OKV_OK *out is the
 * unpacked response, else err holds the detail (and *out, if not NULL, the
 * refusal's response: the caller frees it either way). Shared by the unary path
 * and the asynchronous core, so both map every outcome the same way. */
int client_interpret(okv_client *c, size_t idx, const client_answer *ans,
                     const ProtobufCMessageDescriptor *d, int is_write, ProtobufCMessage **out,
                     client_attempt *at, char *err, size_t errlen);

/* A jittered backoff before retry attempt_no: 10-40 ms, doubling per
 * attempt up to 160-640 ms. */
int client_backoff_ms(int attempt_no);

/* After an attempt of a write may have applied, only an answer that settles
 * the request itself is final (client_call.c). */
int client_settles_request(int rc);

/* After a failed connection attempt to addrs[idx]: asks the node directly
 * whether it speaks plaintext gRPC (client_probe.c, bounded to about 1 s).
 * 1: plaintext and TLS do not match between this client and the node: why
 * says so (trying again cannot help); 2: this TLS client's handshake with a
 * live node failed: why says what to check; 0: nothing learned. */
int client_tls_diagnose(const okv_client *c, size_t idx, char *why, size_t cap);

/* For a connect failure whose cause nobody learned: names TLS as a
 * possible cause (", or does it serve TLS? ..." for a plaintext client,
 * the reverse for a TLS client). Static text. */
const char *client_tls_hint(const okv_client *c);

/* Method path of m (e.g. "/orderkv.v1.KV/Get"). */
const char *client_method_path(enum client_method m);

#endif
