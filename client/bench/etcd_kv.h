/*
 * etcd_kv.h — the smallest etcd v3 client orderkv-bench needs: unary Put and
 * Range (a single-key get) on etcd's own gRPC API, /etcdserverpb.KV/Put and
 * /etcdserverpb.KV/Range, through gRPC C core and protobuf-c.
 *
 * It exists so that one tool, with one load loop, key generator, histogram
 * and output, measures both orderkv and etcd; it is not a general etcd client
 * (no leases, watches, transactions, auth or TLS).
 *
 * Connections: every endpoint gets ETCD_KV_CONNS_PER_ENDPOINT channels, each
 * with its own HTTP/2 connection (a local subchannel pool), the same fan-out
 * liborderkv uses, and calls go round-robin over them. Endpoint policy ALL
 * spreads calls over every endpoint (etcd followers forward writes to the
 * leader and run ReadIndex for linearizable reads); FIRST sends everything to
 * the first endpoint only.
 *
 * Thread safety: one etcd_kv is shared by any number of threads; each call
 * blocks its caller. Errors are OKV_* codes from orderkv.h, with a message for
 * the calling thread in etcd_kv_errmsg().
 */
#ifndef OKV_BENCH_ETCD_KV_H
#define OKV_BENCH_ETCD_KV_H

#include <stddef.h>

#define ETCD_KV_CONNS_PER_ENDPOINT 4
#define ETCD_KV_MAX_ENDPOINTS 16

typedef struct etcd_kv etcd_kv;

enum etcd_kv_policy {
    ETCD_KV_ENDPOINTS_ALL,    /* round-robin over every endpoint */
    ETCD_KV_ENDPOINTS_FIRST,  /* everything to the first endpoint */
};

typedef struct etcd_kv_options {
    enum etcd_kv_policy policy;
    int serializable;         /* gets: 0 linearizable (etcd's default), 1 serializable */
    int default_timeout_ms;   /* deadline of calls passing timeout_ms = 0 */
    int connect_timeout_ms;   /* every connection must be READY within this */
} etcd_kv_options;

#define ETCD_KV_OPTIONS_INIT { ETCD_KV_ENDPOINTS_ALL, 0, 5000, 5000 }

/*
 * Opens channels to the comma-separated "host:port" list and waits until
 * every connection that will carry calls is READY, so that a wrong address
 * fails here with a clear message rather than as errors in the load.
 * Calls grpc_init(); etcd_kv_free() calls grpc_shutdown().
 * Errors: OKV_EINVAL (malformed list), OKV_EUNAVAILABLE / OKV_ETIMEDOUT (an
 * endpoint did not become reachable), OKV_ENOMEM; message in etcd_kv_errmsg().
 */
int etcd_kv_connect(etcd_kv **out, const char *addresses, const etcd_kv_options *opts);

/* Put key = value. OKV_OK, or a code for the gRPC status etcd (or the
 * transport) returned: OKV_EUNAVAILABLE, OKV_ETIMEDOUT, OKV_EINVAL,
 * OKV_EUNIMPLEMENTED (not an etcd), OKV_EPROTO (unparsable reply),
 * OKV_EINTERNAL (anything else, e.g. "too many requests"). */
int etcd_kv_put(etcd_kv *e, const void *key, size_t key_len, const void *value,
                size_t value_len, int timeout_ms);

/* Range over exactly `key`; OKV_OK if it exists, OKV_ENOTFOUND if not,
 * otherwise the codes of etcd_kv_put. The value is received and discarded. */
int etcd_kv_get(etcd_kv *e, const void *key, size_t key_len, int timeout_ms);

/* The calling thread's message for its last failed call; borrowed until that
 * thread's next call. */
const char *etcd_kv_errmsg(void);

/* Closes every channel; accepts NULL. No call may be in flight. */
void etcd_kv_free(etcd_kv *e);

#endif
