/*
 * rpc_server.h — unary gRPC methods served with gRPC's C core.
 *
 * A small layer over grpc_server so services deal in bytes in, bytes out:
 *   - methods are registered by path before start; each gets a pool of
 *     pre-requested calls whose request message arrives with the call;
 *   - unknown methods are answered UNIMPLEMENTED at once (a catch-all slot);
 *   - a handler runs on a completion-queue thread and must not block: it
 *     answers at once (reads) or passes the call to another thread, which
 *     answers later (writes, after their sync). rpc_call_reply may be called
 *     from any thread, exactly once per call.
 *   - shutdown is graceful: no new calls, in-flight ones finish (up to a grace
 *     period, then they are cancelled), and only then are the queue and the
 *     server destroyed (GRPC-CORE-NOTES pitfall 7).
 */
#ifndef OKV_SERVER_RPC_SERVER_H
#define OKV_SERVER_RPC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "errors.h"

typedef struct rpc_server rpc_server;
typedef struct rpc_call rpc_call;

/* Who a call (or a batched stream, once for all its items) comes from, as
 * the server's authenticator found it (server/auth/auth.h). */
enum rpc_id_state {
    RPC_ID_ANONYMOUS = 0,   /* no credentials */
    RPC_ID_USER,            /* a user: password checked, or a client certificate */
    RPC_ID_NODE,            /* another orderkv node (the cluster's secret) */
    RPC_ID_FAILED           /* credentials that did not check out: see failure */
};
typedef struct rpc_identity {
    enum rpc_id_state state;
    char user[65];
    char from[80];          /* the peer, as gRPC names it ("ipv4:127.0.0.1:5412") */
    /* What the authenticator re-checks on each call of a stream (the
     * password hash it verified against), opaque to the server. */
    char proof[256];
    char failure[160];
} rpc_identity;

/* Set by the node when it runs with --auth on. identify establishes who a
 * call is from from its metadata and TLS peer (called once per unary call,
 * once per stream). authorize decides one call (req/len its request; NULL
 * for the opening of a stream): OKV_OK, or the code and message (msg, cap
 * bytes) to answer with. Both run on queue threads and must not block. */
typedef struct rpc_auth_ops {
    void (*identify)(void *arg, grpc_call *call, const grpc_metadata_array *md, rpc_identity *id);
    int (*authorize)(void *arg, const rpc_identity *id, const char *path, const uint8_t *req,
                     size_t len, char *msg, size_t cap);
} rpc_auth_ops;

/* Handles one call. req/len: the serialized request, valid only during the
 * handler. The handler (or whoever it hands the call to) must call
 * rpc_call_reply exactly once. */
typedef void (*rpc_handler)(rpc_call *call, const uint8_t *req, size_t len, void *arg);

/* Creates a server listening on `address` (host:port; port 0 picks a free
 * one). Nothing is served before rpc_server_start. */
int rpc_server_new(rpc_server **out, const char *address, okv_error *err);

struct tls_pem;
/* As rpc_server_new, serving TLS when tls holds a CA, certificate and key
 * (client/tls_creds.h; borrowed, only during the call), plaintext when tls
 * is NULL. require_client 1: only clients showing a certificate the CA
 * signed are served (mutual TLS); 2: a certificate is asked for and
 * checked when shown, but not required; 0: none is asked for. */
int rpc_server_new_tls(rpc_server **out, const char *address, const struct tls_pem *tls,
                       int require_client, okv_error *err);

/* The address actually bound, e.g. "127.0.0.1:34567" (borrowed). */
const char *rpc_server_address(const rpc_server *s);

/* Records, for every unary call (batched items included), a counter by
 * method and result code and a latency histogram by method in reg
 * (borrowed; it must outlive the server): orderkv_rpc_requests_total and
 * orderkv_rpc_duration_seconds (docs/operations.md "Metrics"). Call it
 * before any method is added. The hot path is two relaxed atomic adds and
 * a compare-and-swap loop on the histogram's sum. */
struct metrics_registry;
void rpc_server_set_metrics(rpc_server *s, struct metrics_registry *reg);

/* Every call, stream and batched item is checked with ops (borrowed;
 * arg must outlive the server) before its handler runs. Before start only;
 * without it every call runs. */
void rpc_server_set_auth(rpc_server *s, const rpc_auth_ops *ops, void *arg);

/* Who the call comes from (for the audit log and WhoAmI); all zero when
 * the server runs without authentication. */
const rpc_identity *rpc_call_identity(const rpc_call *c);

/* The path of every method registered, one at a time (i from 0; NULL past
 * the last): to check each has a permission rule. */
const char *rpc_server_method_path(const rpc_server *s, size_t i);

/* Registers a method by full path ("/orderkv.v1.KV/Get"). Before start only. */
int rpc_server_add_method(rpc_server *s, const char *path, rpc_handler fn, void *arg,
                          okv_error *err);

/* Registers the batched stream (proto/orderkv.proto, KV.Batch) at path:
 * its items are dispatched to the unary methods registered at the paths
 * they name, and answered on the stream (rpc_batch.c). Before start only. */
int rpc_server_add_batch_method(rpc_server *s, const char *path, okv_error *err);
/* The initial-metadata key a batched stream is opened with (the client
 * waits for it before it sends). */
#define RPC_BATCH_MARK_KEY "okv-batch-stream"

/* Starts serving with `threads` completion-queue threads. */
int rpc_server_start(rpc_server *s, int threads, okv_error *err);

/* Answers a call. code is OKV_OK or an OKV_E* code (mapped to a gRPC status);
 * msg is the status message for errors (copied); resp/resp_len the
 * serialized response message (copied), or NULL for none. */
void rpc_call_reply(rpc_call *call, int code, const char *msg, const uint8_t *resp,
                    size_t resp_len);

/* The peer address gRPC reports for the call ("ipv4:127.0.0.1:53412",
 * "ipv6:[::1]:4000", "unix:..."); for an item of a batched stream, the
 * stream's peer. For the audit log. Owned by the call: valid until
 * rpc_call_reply. Never NULL: "" if gRPC did not say. Called by whoever
 * holds the call (one thread at a time, as for rpc_call_reply). */
const char *rpc_call_peer(rpc_call *call);

/* First half of shutdown: stops accepting calls and waits up to grace_ms for
 * the calls in flight to be answered. Call it while whatever answers them
 * (the committer, the raft loop) still runs; stop those next, so that any
 * call still waiting is answered, then call rpc_server_shutdown_and_free. */
void rpc_server_drain(rpc_server *s, int grace_ms);

/* Drains (if not done yet), cancels what is left, joins the threads and
 * frees everything. Accepts NULL. */
void rpc_server_shutdown_and_free(rpc_server *s, int grace_ms);

/* gRPC status code for an OKV_E* code (exposed for tests). */
int rpc_status_for_code(int code);

#endif
