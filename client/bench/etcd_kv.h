/*
 * etcd_kv.h — the smallest etcd v3 client orderkv-bench needs: unary Put,
 * Range (a single-key get) and Txn on etcd's own gRPC API,
 * /etcdserverpb.KV/Put, /etcdserverpb.KV/Range and /etcdserverpb.KV/Txn,
 * through gRPC C core and protobuf-c. Txn comes in the two shapes an etcd
 * user's optimistic transaction takes: a read of several keys at one
 * revision (a read-only Txn of Ranges), and a conditional write (compares
 * on keys' version or mod_revision, then puts; the compare-and-swap form
 * compares every key's mod_revision with what the read saw). A Range with
 * count_only counts the keys under a prefix (the flash sale's audit).
 *
 * It exists so that one tool, with one load loop, key generator, histogram
 * and output, measures both orderkv and etcd; it is not a general etcd client
 * (no leases, watches, deletes, auth or TLS).
 *
 * Connections: every endpoint gets ETCD_KV_CONNS_PER_ENDPOINT channels, each
 * with its own HTTP/2 connection (a local subchannel pool), the same fan-out
 * liborderkv uses, and calls go round-robin over them. Endpoint policy ALL
 * spreads calls over every endpoint (etcd followers forward writes to the
 * leader and run ReadIndex for linearizable reads); FIRST sends everything to
 * the first endpoint only.
 *
 * Calls are asynchronous: etcd_kv_put_async / etcd_kv_get_async start a
 * unary call on a channel (create call + one batch, tagged with the call's
 * context) and return at once; no thread waits for it. All calls share one
 * completion queue (grpc_completion_queue_create_for_next), served by
 * opts.completion_threads threads (default 1) calling
 * grpc_completion_queue_next: they run gRPC's network work, decode each
 * reply and run the call's callback. So any number of calls may be in
 * flight without a thread each, as with etcd's own Go client (many streams
 * multiplexed on a few HTTP/2 connections).
 *
 * Thread safety: one etcd_kv is shared by any number of threads, callbacks
 * included. Errors are OKV_* codes from orderkv.h.
 */
#ifndef OKV_BENCH_ETCD_KV_H
#define OKV_BENCH_ETCD_KV_H

#include <stddef.h>
#include <stdint.h>

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
    int completion_threads;   /* threads serving the completion queue, 1..8 */
} etcd_kv_options;

#define ETCD_KV_OPTIONS_INIT { ETCD_KV_ENDPOINTS_ALL, 0, 5000, 5000, 1 }

/*
 * Opens channels to the comma-separated "host:port" list and waits until
 * every connection that will carry calls is READY, so that a wrong address
 * fails here with a clear message rather than as errors in the load.
 * Calls grpc_init(); etcd_kv_free() calls grpc_shutdown().
 * Errors: OKV_EINVAL (malformed list), OKV_EUNAVAILABLE / OKV_ETIMEDOUT (an
 * endpoint did not become reachable), OKV_ENOMEM; message in etcd_kv_errmsg().
 */
int etcd_kv_connect(etcd_kv **out, const char *addresses, const etcd_kv_options *opts);

/*
 * The completion of a call: runs once, on a completion thread, never inside
 * the *_async function that started the call. code is OKV_OK, OKV_ENOTFOUND
 * (a get of a missing key) or a code for the gRPC status etcd (or the
 * transport) returned: OKV_EUNAVAILABLE, OKV_ETIMEDOUT, OKV_EINVAL,
 * OKV_EUNIMPLEMENTED (not an etcd), OKV_EPROTO (unparsable reply),
 * OKV_EINTERNAL (anything else, e.g. "too many requests"); errmsg is "" on
 * success, borrowed for the duration of the callback. A callback may start
 * further calls; it must not block.
 */
typedef void (*etcd_kv_callback)(void *arg, int code, const char *errmsg);

/*
 * Starts Put key = value (key and value are copied into the request before
 * this returns). OKV_OK: started, and cb(arg, ...) will run once. Any other
 * code (OKV_EINVAL, OKV_ENOMEM, OKV_EINTERNAL: gRPC refused the call): not
 * started, no callback; etcd_kv_errmsg() gives the detail. timeout_ms 0:
 * opts.default_timeout_ms.
 */
int etcd_kv_put_async(etcd_kv *e, const void *key, size_t key_len, const void *value,
                      size_t value_len, int timeout_ms, etcd_kv_callback cb, void *arg);

/* Starts a Range over exactly `key` (linearizable unless opts.serializable);
 * its callback gets OKV_OK if the key exists, OKV_ENOTFOUND if not. The
 * value is received and discarded. Returns as etcd_kv_put_async. */
int etcd_kv_get_async(etcd_kv *e, const void *key, size_t key_len, int timeout_ms,
                      etcd_kv_callback cb, void *arg);

/* One key as a read found it; borrowed for the duration of the callback. */
typedef struct etcd_kv_kv {
    int found;                /* 0: the key does not exist (the rest is 0) */
    const void *value;
    size_t value_len;
    int64_t mod_revision;     /* the revision of the key's last write */
    int64_t version;          /* writes since the key was created */
} etcd_kv_kv;

/* A read's completion: as etcd_kv_callback; on OKV_OK kvs[i] is keys[i]
 * (n entries), otherwise kvs is NULL and n 0. */
typedef void (*etcd_kv_read_callback)(void *arg, int code, const char *errmsg,
                                      const etcd_kv_kv *kvs, size_t n);

#define ETCD_KV_MAX_KEYS 8    /* per read or compare-and-swap */

/*
 * Reads keys[0..n-1] (1..ETCD_KV_MAX_KEYS) at one revision: n == 1 is a
 * Range, more is one read-only Txn of n Ranges (one call; etcd serves it
 * like a Range, linearizable unless opts.serializable). Absent keys are
 * found = 0, not an error. Returns as etcd_kv_put_async.
 */
int etcd_kv_read_async(etcd_kv *e, const void *const *keys, const size_t *key_lens, size_t n,
                       int timeout_ms, etcd_kv_read_callback cb, void *arg);

/* One key of a compare-and-swap. */
typedef struct etcd_kv_cas {
    const void *key;
    size_t key_len;
    int64_t mod_revision;     /* compare: the key's mod_revision is still this */
    const void *value;        /* and if every compare holds: put this */
    size_t value_len;
} etcd_kv_cas;

/*
 * Starts one Txn (etcd_kv_txn_async below): compares mod_revision(key) ==
 * mod_revision for every item (MOD, EQUAL) and puts every value if all
 * hold. n is 1..ETCD_KV_MAX_KEYS.
 */
int etcd_kv_cas_async(etcd_kv *e, const etcd_kv_cas *items, size_t n, int timeout_ms,
                      etcd_kv_callback cb, void *arg);

/* A compare of a Txn (etcd's Compare, values as on the wire): the key's
 * `target` stands in relation `result` to `num`. An absent key has version
 * and mod_revision 0. */
enum etcd_kv_cmp_target { ETCD_KV_CMP_VERSION = 0, ETCD_KV_CMP_MOD = 2 };
enum etcd_kv_cmp_result {
    ETCD_KV_CMP_EQUAL = 0,
    ETCD_KV_CMP_GREATER = 1,
    ETCD_KV_CMP_LESS = 2,
    ETCD_KV_CMP_NOT_EQUAL = 3,
};

typedef struct etcd_kv_cmp {
    const void *key;
    size_t key_len;
    enum etcd_kv_cmp_target target;
    enum etcd_kv_cmp_result result;
    int64_t num;              /* the version or mod_revision compared with */
} etcd_kv_cmp;

typedef struct etcd_kv_put {
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
} etcd_kv_put;

/*
 * Starts one Txn: if every compare holds (ncmps 0..ETCD_KV_MAX_KEYS; none:
 * always), every put applies (nputs 1..ETCD_KV_MAX_KEYS), at one revision;
 * no failure ops. Keys and values are copied into the request before this
 * returns. Its callback gets OKV_OK if the puts applied, OKV_ECONFLICT if a
 * compare did not hold (etcd's `succeeded` false: nothing written), or a
 * call failure as etcd_kv_callback. Returns as etcd_kv_put_async.
 */
int etcd_kv_txn_async(etcd_kv *e, const etcd_kv_cmp *cmps, size_t ncmps, const etcd_kv_put *puts,
                      size_t nputs, int timeout_ms, etcd_kv_callback cb, void *arg);

/* A count's completion: as etcd_kv_callback; on OKV_OK, count is the number
 * of keys the Range matched. */
typedef void (*etcd_kv_count_callback)(void *arg, int code, const char *errmsg, int64_t count);

/*
 * Starts a count of the keys starting with prefix (1..1024 bytes): a Range
 * from prefix to the prefix's range end with count_only set, linearizable
 * unless opts.serializable; no key or value comes back. Returns as
 * etcd_kv_put_async.
 */
int etcd_kv_count_async(etcd_kv *e, const void *prefix, size_t prefix_len, int timeout_ms,
                        etcd_kv_count_callback cb, void *arg);

/* The calling thread's message for its last failed etcd_kv_connect or
 * *_async call; borrowed until that thread's next call. */
const char *etcd_kv_errmsg(void);

/* Stops the completion threads and closes every channel; accepts NULL.
 * No call may be in flight (every callback has returned), and it must not
 * be called from a callback. */
void etcd_kv_free(etcd_kv *e);

#endif
