/*
 * orderkv.h — the liborderkv client API.
 *
 * Conventions (see docs/client-api.md for every function):
 *  - Every call returns an int: OKV_OK (0) on success or a negative OKV_E* code.
 *    okv_strerror(code) names the code; okv_errmsg(client) gives the detail of
 *    the last failed call made *by the calling thread* on that client.
 *  - An object returned through `**out` belongs to the caller, who frees it with
 *    that type's _free function. Every _free accepts NULL.
 *  - A returned `const` pointer is borrowed from the object it came from and lives
 *    as long as that object.
 *  - An okv_client is thread-safe: many threads may issue calls on one handle.
 *  - timeout_ms on a call: 0 means the client's default (okv_options), otherwise
 *    the deadline for the whole call, including retries.
 *  - Keys are 1..OKV_MAX_KEY_LEN bytes, values 0..OKV_MAX_VALUE_LEN bytes.
 */
#ifndef ORDERKV_H
#define ORDERKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OKV_VERSION_STRING "0.1.0"

/* Marks the functions liborderkv exports; everything else in it is hidden. */
#if defined(__GNUC__)
#define OKV_API __attribute__((visibility("default")))
#else
#define OKV_API
#endif

/* Limits enforced by client and server alike. */
#define OKV_MAX_KEY_LEN 1024u
#define OKV_MAX_VALUE_LEN (1024u * 1024u)
#define OKV_MAX_TABLE_NAME_LEN 64u
#define OKV_SCAN_DEFAULT_LIMIT 100u
#define OKV_SCAN_MAX_LIMIT 10000u

/* Result codes. Specific codes exist only for what callers handle. */
enum okv_code {
    OKV_OK = 0,
    OKV_ENOTFOUND = -1,      /* key (or table) does not exist */
    OKV_EINVAL = -2,         /* bad argument: empty key, over a limit, bad table name */
    OKV_EUNAVAILABLE = -3,   /* no server reachable; nothing was applied */
    OKV_ETIMEDOUT = -4,      /* deadline passed before the request was sent: not applied */
    OKV_ENOTLEADER = -5,     /* the node is not the partition's leader */
    OKV_ECONFLICT = -6,      /* put_if: the expected version did not hold; a transaction:
                                another transaction holds a lock (retryable) */
    OKV_EUNKNOWN = -7,       /* outcome unknown: the write may or may not have applied */
    OKV_EINTERNAL = -8,      /* server-side failure; see okv_errmsg */
    OKV_ENOMEM = -9,         /* allocation failed */
    OKV_ECORRUPT = -10,      /* stored data failed a check; the server refuses it */
    OKV_EIO = -11,           /* storage I/O error */
    OKV_EUNIMPLEMENTED = -12,/* the server does not know the request */
    OKV_EFORMAT = -13,       /* data dir of another format version */
    OKV_EPROTO = -14,        /* malformed message on the wire */
    OKV_ECONDITION = -15,    /* a transaction's condition (or an add's floor) did not
                                hold: nothing applied; okv_txn_result tells which */
    /* The orders service's rule outcomes (docs/orders.md): nothing applied,
     * and the same request against the same state gets the same answer. */
    OKV_EILLEGAL = -16,      /* not allowed in the order's status (illegal transition,
                                or a refund beyond what was captured) */
    OKV_EFUNDS = -17,        /* the account's balance is below the amount */
    OKV_ESOLDOUT = -18,      /* too few units of a sku available */
    OKV_EIDEMPOTENCY = -19,  /* the idempotency key was used with another request */
    OKV_EINPROGRESS = -20,   /* a request with the same idempotency key is being
                                applied: resend shortly to get its result */
    OKV_EPERMISSION = -21,   /* the authenticated user may not do this (its role or
                              * table grants; docs/operations.md "Users and roles") */
    OKV_EAUTH = -22          /* not authenticated: no credentials, an unknown user or
                              * a wrong password; nothing was done */
};

/* Static English name of a code, e.g. "not found". Never NULL. */
OKV_API const char *okv_strerror(int code);

typedef struct okv_client okv_client;
typedef struct okv_value okv_value;
typedef struct okv_scan_result okv_scan_result;
typedef struct okv_status okv_status;

/* ---- connecting ---------------------------------------------------------- */

typedef struct okv_options {
    unsigned version;            /* OKV_OPTIONS_VERSION */
    int default_timeout_ms;      /* deadline of calls that pass timeout_ms = 0 */
    /* 0: a random id is chosen. Tags every write: with its request id it
     * lets a partition apply a resent write once (docs/client-api.md).
     * Clients with the same non-zero client_id must not be open at the
     * same time. A later client may reuse it: its request ids start from
     * the wall clock (CLOCK_REALTIME in microseconds, times 1024), above
     * every id of a client closed earlier in this process and, across
     * processes, above every id an earlier client used, provided (1) the
     * clock at the new okv_connect reads later than it did when the
     * earlier client began its last write, and (2) the earlier client
     * began under 1024 writes per microsecond of clock time on average
     * (a billion a second). If the clock stepped back so that (1) fails,
     * the new client's writes may be refused (OKV_EINVAL, "refused when
     * applied") and a few may even be answered with the earlier client's
     * result without being applied. After a step back, connect with a
     * new client_id, or only once the clock again reads later than when
     * the earlier client closed. */
    uint64_t client_id;
    /* Since version 2. 0 (default): the client adds every node the cluster
     * names and sends each call to its partition's leader. 1: it talks only
     * to the listed addresses (for tools and tests that must reach one
     * particular node; writes to partitions led elsewhere then fail with
     * OKV_ENOTLEADER). */
    int listed_nodes_only;
    /* Since version 3: TLS (docs/operations.md "TLS"). Each is a file name
     * or the PEM text itself (text starting with "-----BEGIN"); read and
     * checked by okv_connect, which copies them. tls_ca NULL: plaintext.
     * tls_ca set: every connection is TLS and the node's certificate must
     * be signed by it and name the address dialled (an IP SAN for an IP).
     * tls_cert + tls_key: the client's own certificate, for nodes started
     * with --tls-client-auth require (the default with TLS); give both or
     * neither. A client never falls back to plaintext, nor a plaintext
     * client to TLS: a mismatch with the node fails the call with a
     * message naming TLS. */
    const char *tls_ca;
    const char *tls_cert;
    const char *tls_key;
    /* Since version 4: who this client is, for nodes started with --auth on
     * (docs/operations.md "Users and roles"). user NULL: no name is sent,
     * and the node knows the client by its TLS certificate (its common
     * name), or not at all. Both strings are copied; every call carries
     * them, so use TLS when the network between client and node is not
     * trusted. */
    const char *user;
    const char *password;
} okv_options;

#define OKV_OPTIONS_VERSION 4
#define OKV_OPTIONS_INIT { OKV_OPTIONS_VERSION, 5000, 0, 0, NULL, NULL, NULL, NULL, NULL }

/*
 * Opens a client on a comma-separated list of "host:port" addresses of cluster
 * nodes, e.g. "127.0.0.1:7400,127.0.0.1:7401". No network I/O happens here:
 * the first call finds a reachable node. opts may be NULL for defaults.
 * Errors: OKV_EINVAL (empty or malformed list; a TLS file unreadable, not
 * PEM, or a key that does not match its certificate), OKV_ENOMEM; since there is
 * no handle then, okv_errmsg(NULL) gives the detail.
 */
OKV_API int okv_connect(okv_client **out, const char *addresses, const okv_options *opts);

/* Closes the client and frees it. No call may be in flight. Accepts NULL. */
OKV_API void okv_close(okv_client *client);

/* Detail of the last failed call by this thread on this client ("" if none). */
OKV_API const char *okv_errmsg(const okv_client *client);

/* ---- key-value ----------------------------------------------------------- */

/*
 * Reads a key. On success *out holds the value and its version.
 * Errors: OKV_ENOTFOUND (no such key, or no such table — see okv_errmsg),
 * OKV_EINVAL, OKV_EUNAVAILABLE, OKV_ETIMEDOUT.
 */
OKV_API int okv_get(okv_client *client, const char *table, const void *key, size_t key_len,
            okv_value **out, int timeout_ms);

OKV_API const void *okv_value_data(const okv_value *v);   /* borrowed; NUL-terminated for convenience */
OKV_API size_t okv_value_len(const okv_value *v);
OKV_API uint64_t okv_value_version(const okv_value *v);
OKV_API void okv_value_free(okv_value *v);

/*
 * Writes a key; acknowledged only once durable. *version_out (may be NULL)
 * receives the version the write produced.
 * Errors: OKV_EINVAL, OKV_ENOTFOUND (no such table), OKV_EUNAVAILABLE (not
 * applied), OKV_EUNKNOWN (deadline or connection lost mid-flight: may have applied).
 */
OKV_API int okv_put(okv_client *client, const char *table, const void *key, size_t key_len,
            const void *value, size_t value_len, uint64_t *version_out, int timeout_ms);

/*
 * Compare-and-set: writes only if the key's current version equals
 * expected_version (0 = the key must be absent). OKV_ECONFLICT otherwise.
 */
OKV_API int okv_put_if(okv_client *client, const char *table, const void *key, size_t key_len,
               const void *value, size_t value_len, uint64_t expected_version,
               uint64_t *version_out, int timeout_ms);

/*
 * Deletes a key. Deleting a missing key succeeds (*existed_out = 0).
 * existed_out may be NULL. Errors as okv_put.
 */
OKV_API int okv_delete(okv_client *client, const char *table, const void *key, size_t key_len,
               int *existed_out, int timeout_ms);

/* Which keys a scan visits: all keys with `prefix`, or the range [start, end).
 * Give a prefix or a range, not both; an empty end means "to the end".
 * Results come in key order; `resume` continues after a previous page. */
typedef struct okv_scan_opts {
    unsigned version;            /* OKV_SCAN_OPTS_VERSION */
    const void *prefix; size_t prefix_len;
    const void *start;  size_t start_len;
    const void *end;    size_t end_len;
    uint32_t limit;              /* 0: OKV_SCAN_DEFAULT_LIMIT; max OKV_SCAN_MAX_LIMIT */
    const void *resume; size_t resume_len; /* token from okv_scan_result_resume */
    int timeout_ms;
} okv_scan_opts;

#define OKV_SCAN_OPTS_VERSION 1
#define OKV_SCAN_OPTS_INIT { OKV_SCAN_OPTS_VERSION, NULL, 0, NULL, 0, NULL, 0, 0, NULL, 0, 0 }

/* Errors: OKV_EINVAL (prefix and range both given, limit too large, bad token),
 * OKV_ENOTFOUND (no such table), OKV_EUNAVAILABLE, OKV_ETIMEDOUT. */
OKV_API int okv_scan(okv_client *client, const char *table, const okv_scan_opts *opts,
             okv_scan_result **out);

OKV_API size_t okv_scan_result_count(const okv_scan_result *r);
OKV_API const void *okv_scan_result_key(const okv_scan_result *r, size_t i, size_t *len_out);
OKV_API const void *okv_scan_result_value(const okv_scan_result *r, size_t i, size_t *len_out);
OKV_API uint64_t okv_scan_result_version(const okv_scan_result *r, size_t i);
/* Token for the next page, or NULL when the scan is complete. */
OKV_API const void *okv_scan_result_resume(const okv_scan_result *r, size_t *len_out);
OKV_API void okv_scan_result_free(okv_scan_result *r);

/* ---- asynchronous calls ------------------------------------------------- */
/*
 * Every call above has an asynchronous form: it returns at once and its
 * callback runs later, exactly once, on the client's completion thread.
 * Many calls may be in flight on one client without a thread each; calls to
 * one node travel together, batched on a long-lived stream. The synchronous
 * calls above are these calls plus a wait, with the same rules (routing to
 * the leader, resending a write with the same request id, OKV_EUNKNOWN when
 * a write may or may not have applied, deadlines).
 *
 * Threading rules (docs/client-api.md, "Asynchronous calls"):
 *  - A *_async function returns OKV_OK once the call is submitted; then the
 *    callback runs exactly once, never inside the *_async function itself.
 *    Any other return (a bad argument, OKV_ENOMEM, the client is closing)
 *    means no callback will run; okv_errmsg gives the detail.
 *  - Callbacks run on the client's completion thread, one at a time. They
 *    must not block: a callback may submit further *_async calls, but a
 *    synchronous call from a callback fails with OKV_EINVAL.
 *  - The okv_result is valid only during the callback; take what you need
 *    (okv_result_take_value / _take_scan transfer ownership).
 *  - okv_close waits until every submitted call has had its callback.
 *  - The first routed call of a client may block its caller while the
 *    client loads the cluster's table list (one Status call).
 */
typedef struct okv_result okv_result;
typedef void (*okv_callback)(void *arg, const okv_result *r);

/* OKV_OK or an OKV_E* code, as the synchronous call would return it. */
OKV_API int okv_result_code(const okv_result *r);
/* Detail of a failure ("" on success); valid during the callback. */
OKV_API const char *okv_result_errmsg(const okv_result *r);
/* Put, delete: the version the write produced (0 for a delete). Get: the
 * value's version. */
OKV_API uint64_t okv_result_version(const okv_result *r);
/* Delete: whether the key existed. */
OKV_API int okv_result_existed(const okv_result *r);
/* Get: the value (borrowed; NULL for other calls or on failure). */
OKV_API const void *okv_result_value(const okv_result *r, size_t *len_out);
/* Get / scan: moves the result out of r (free as usual); NULL if none. */
OKV_API okv_value *okv_result_take_value(const okv_result *r);
OKV_API okv_scan_result *okv_result_take_scan(const okv_result *r);
/* okv_batch_submit: how many writes the batch held, and the result of the
 * i-th (in the order they were added). */
OKV_API size_t okv_result_count(const okv_result *r);
OKV_API const okv_result *okv_result_at(const okv_result *r, size_t i);

OKV_API int okv_get_async(okv_client *client, const char *table, const void *key,
                          size_t key_len, int timeout_ms, okv_callback cb, void *arg);
OKV_API int okv_put_async(okv_client *client, const char *table, const void *key,
                          size_t key_len, const void *value, size_t value_len, int timeout_ms,
                          okv_callback cb, void *arg);
OKV_API int okv_put_if_async(okv_client *client, const char *table, const void *key,
                             size_t key_len, const void *value, size_t value_len,
                             uint64_t expected_version, int timeout_ms, okv_callback cb,
                             void *arg);
OKV_API int okv_delete_async(okv_client *client, const char *table, const void *key,
                             size_t key_len, int timeout_ms, okv_callback cb, void *arg);
OKV_API int okv_scan_async(okv_client *client, const char *table, const okv_scan_opts *opts,
                           okv_callback cb, void *arg);

/*
 * A batch of writes submitted together: each write is routed, sent (those
 * for one node in one message), retried and answered on its own, as if
 * submitted one by one; the callback runs once, after the last, with one
 * result per write (okv_result_at). Not atomic: some writes may apply and
 * others fail (atomic writes across keys are transactions).
 */
typedef struct okv_batch okv_batch;
OKV_API int okv_batch_new(okv_batch **out);
/* Copies table, key and value. Errors: OKV_EINVAL (as okv_put), OKV_ENOMEM. */
OKV_API int okv_batch_put(okv_batch *b, const char *table, const void *key, size_t key_len,
                          const void *value, size_t value_len);
OKV_API int okv_batch_delete(okv_batch *b, const char *table, const void *key,
                             size_t key_len);
OKV_API size_t okv_batch_count(const okv_batch *b);
/* Submits the batch (b may be freed or reused after this returns). An
 * empty batch is OKV_EINVAL. */
OKV_API int okv_batch_submit(okv_client *client, const okv_batch *b, int timeout_ms,
                             okv_callback cb, void *arg);
OKV_API void okv_batch_free(okv_batch *b);

/* ---- transactions ----------------------------------------------------------
 *
 * A transaction is conditions + writes that apply together or not at all
 * (docs/transactions.md). Every condition is checked against the state
 * before the transaction; if all hold, every write applies and gets one
 * version. A condition that does not hold (or an add that would go below
 * its floor) is OKV_ECONDITION: nothing applied, and okv_txn_outcome says
 * which item and why. OKV_ECONFLICT: another transaction holds a lock on a
 * key; retry after a backoff. Resends carry the same request id, so a
 * transaction applies at most once; OKV_EUNKNOWN means it may or may not
 * have applied.
 *
 * Counters are values of exactly 8 bytes: a signed 64-bit integer,
 * big-endian two's complement (okv_counter_encode). An add to an absent
 * key starts from 0.
 *
 * Keys in one partition (one table, keys sharing the part before their
 * first '/': "cust42/a", "cust42/b") commit in one Raft entry. Keys in
 * several partitions or tables commit with two-phase commit, driven by the
 * cluster: the same rules and outcomes, plus OKV_ECONFLICT when the
 * transaction ran past its deadline (orderkvd --txn-timeout-ms) and was
 * aborted. A committed transaction across partitions reports version 0
 * (its writes get one version per partition). A single node (no
 * --initial-cluster) refuses keys in several partitions with
 * OKV_EUNIMPLEMENTED.
 */
#define OKV_TXN_MAX_ITEMS 256u   /* conditions; and writes (a key at most once). With no
                                    writes a transaction is a check of its conditions */

typedef enum okv_cmp { OKV_LT = 1, OKV_LE = 2, OKV_EQ = 3, OKV_GE = 4, OKV_GT = 5 } okv_cmp;

/* Why a transaction did not apply (okv_txn_outcome.reason). */
enum okv_txn_reason {
    OKV_TXN_OK = 0,
    OKV_TXN_CONDITION = 1,     /* a condition did not hold */
    OKV_TXN_FLOOR = 2,         /* an add would have gone below its floor */
    OKV_TXN_NOT_COUNTER = 3,   /* a counter condition or add met a value not 8 bytes long */
    OKV_TXN_OVERFLOW = 4,      /* an add left int64 */
    OKV_TXN_LOCKED = 5         /* another transaction holds a lock (OKV_ECONFLICT) */
};

typedef struct okv_txn_outcome {
    uint64_t version;          /* committed: the version every write got (0 across
                                  partitions) */
    /* Not committed: the item that stopped it, conditions first (0-based,
     * in the order added), then writes (number of conditions + index). */
    uint32_t failed;
    int reason;                /* enum okv_txn_reason */
    uint64_t txn_id;           /* the transaction's id (its request id on this client):
                                  after OKV_EUNKNOWN, ask okv_txn_status */
} okv_txn_outcome;

/* A transaction being built; the add functions copy table, key and value.
 * They return OKV_EINVAL for a bad argument (empty or long key or table,
 * value over OKV_MAX_VALUE_LEN, more than OKV_TXN_MAX_ITEMS items),
 * OKV_ENOMEM, or OKV_OK. */
typedef struct okv_txn_req okv_txn_req;
OKV_API int okv_txn_req_new(okv_txn_req **out);
OKV_API void okv_txn_req_free(okv_txn_req *t);
OKV_API int okv_txn_req_exists(okv_txn_req *t, const char *table, const void *key,
                               size_t key_len);
OKV_API int okv_txn_req_absent(okv_txn_req *t, const char *table, const void *key,
                               size_t key_len);
OKV_API int okv_txn_req_version_is(okv_txn_req *t, const char *table, const void *key,
                                   size_t key_len, uint64_t version);
OKV_API int okv_txn_req_value_is(okv_txn_req *t, const char *table, const void *key,
                                 size_t key_len, const void *value, size_t value_len);
/* The key holds a counter and counter `cmp` num. */
OKV_API int okv_txn_req_compare(okv_txn_req *t, const char *table, const void *key,
                                size_t key_len, okv_cmp cmp, int64_t num);
OKV_API int okv_txn_req_put(okv_txn_req *t, const char *table, const void *key, size_t key_len,
                            const void *value, size_t value_len);
OKV_API int okv_txn_req_delete(okv_txn_req *t, const char *table, const void *key,
                               size_t key_len);
/* Adds delta to a counter; with okv_txn_req_add_floor the transaction
 * fails (OKV_TXN_FLOOR) if the sum would be below floor. */
OKV_API int okv_txn_req_add(okv_txn_req *t, const char *table, const void *key, size_t key_len,
                            int64_t delta);
OKV_API int okv_txn_req_add_floor(okv_txn_req *t, const char *table, const void *key,
                                  size_t key_len, int64_t delta, int64_t floor);

/* Commits t (which may be freed or reused afterwards). out (may be NULL)
 * gets the version, or on OKV_ECONDITION / OKV_ECONFLICT which item
 * stopped it; okv_errmsg describes it ("condition 1 (version == 7) did not
 * hold on key 'k'"). */
OKV_API int okv_txn_commit(okv_client *client, const okv_txn_req *t, okv_txn_outcome *out,
                           int timeout_ms);
OKV_API int okv_txn_commit_async(okv_client *client, const okv_txn_req *t, int timeout_ms,
                                 okv_callback cb, void *arg);
/* In a callback of okv_txn_commit_async: what okv_txn_commit puts in out. */
OKV_API void okv_result_txn_outcome(const okv_result *r, okv_txn_outcome *out);

/* What became of transaction t, committed by this client as txn_id
 * (okv_txn_outcome.txn_id), after OKV_EUNKNOWN; asked at the partition
 * that decides it (t's first write). Never re-executes anything.
 * OKV_OK: committed. OKV_ECONDITION / OKV_ECONFLICT: aborted, nothing
 * applied (out says why, as okv_txn_commit would have). Across partitions
 * the answer is final: a transaction its coordinator never decided is
 * decided aborted by this call (it can never commit afterwards).
 * OKV_ENOTFOUND: its record was dropped (a transaction across partitions
 * is remembered 10 minutes after it settles; one in one partition until
 * this client's later writes let the cluster forget it), or, in one
 * partition, it never arrived. OKV_EUNKNOWN: not decided yet (one
 * partition: its entry may still apply; ask again). */
OKV_API int okv_txn_status(okv_client *client, const okv_txn_req *t, uint64_t txn_id,
                           okv_txn_outcome *out, int timeout_ms);

/*
 * Interactive optimistic transactions. okv_tx_get reads through the
 * transaction: its own buffered writes first, else the cluster
 * (linearizably); the first read of a key records its version (or that it
 * was absent) and later reads return the same answer. put, delete and add
 * are buffered, one write per key (a later write replaces an earlier one;
 * adds fold into a buffered add or counter put, a floor bounding the final
 * value). okv_tx_commit sends the recorded versions as conditions with the
 * writes: if anything read changed meanwhile, nothing applies and it
 * returns OKV_ECONFLICT (run the transaction again; okv_tx_run does). A
 * transaction that only read commits by checking its versions in one more
 * round (across partitions, one lock-free check per partition, all after
 * the last read). Keys may lie in any partitions, as for
 * okv_txn_commit. An okv_tx is used by one thread.
 */
typedef struct okv_tx okv_tx;
OKV_API int okv_tx_begin(okv_client *client, okv_tx **out);
/* OKV_ENOTFOUND if absent (or deleted in this transaction). A value this
 * transaction wrote has version 0 (it has none until commit). */
OKV_API int okv_tx_get(okv_tx *t, const char *table, const void *key, size_t key_len,
                       okv_value **out, int timeout_ms);
/* A page of a scan (okv_scan's options, resume tokens included) through the
 * transaction: its own buffered writes in the range show (puts and adds at
 * version 0, deletes gone), and what the page covered is checked at
 * commit: an insert, delete or write in the scanned range since then makes
 * okv_tx_commit fail with OKV_ECONFLICT (no phantoms). Scans, reads and
 * writes may lie in any partitions: across partitions the commit holds
 * each scanned range with a range lock until the decision. Each partition
 * a page covers counts as one read against OKV_TXN_MAX_ITEMS. */
OKV_API int okv_tx_scan(okv_tx *t, const char *table, const okv_scan_opts *opts,
                        okv_scan_result **out);
OKV_API int okv_tx_put(okv_tx *t, const char *table, const void *key, size_t key_len,
                       const void *value, size_t value_len);
OKV_API int okv_tx_delete(okv_tx *t, const char *table, const void *key, size_t key_len);
OKV_API int okv_tx_add(okv_tx *t, const char *table, const void *key, size_t key_len,
                       int64_t delta);
OKV_API int okv_tx_add_floor(okv_tx *t, const char *table, const void *key, size_t key_len,
                             int64_t delta, int64_t floor);
/* OKV_OK (out->version: the writes' version, or the check's), OKV_ECONFLICT
 * (something read changed: nothing applied), OKV_ECONDITION (a floor), or
 * as okv_txn_commit. The transaction is spent either way: free it. */
OKV_API int okv_tx_commit(okv_tx *t, okv_txn_outcome *out, int timeout_ms);
/* After okv_tx_commit returned OKV_EUNKNOWN (call it before okv_tx_free):
 * what became of the commit, out->txn_id of its outcome, as
 * okv_txn_status answers for the same transaction (a stale read is
 * OKV_ECONFLICT, as from okv_tx_commit). Across partitions the answer is
 * final. OKV_EINVAL for a transaction that wrote nothing. */
OKV_API int okv_tx_status(okv_tx *t, uint64_t txn_id, okv_txn_outcome *out, int timeout_ms);
OKV_API void okv_tx_free(okv_tx *t);
/* Runs fn in a fresh transaction and commits it, again after a jittered,
 * growing pause (10 ms up to ~640 ms) while the commit conflicts, until
 * timeout_ms (0: the client's default) has passed. fn returning non-OK
 * stops it with that code and nothing applied. fn may run several times:
 * it must have no effects outside the transaction. */
typedef int (*okv_tx_fn)(okv_tx *t, void *arg);
OKV_API int okv_tx_run(okv_client *client, okv_tx_fn fn, void *arg, okv_txn_outcome *out,
                       int timeout_ms);

/* Counter values (8 bytes, big-endian two's complement). decode: OKV_EINVAL
 * unless len == 8. */
OKV_API void okv_counter_encode(int64_t v, uint8_t out[8]);
OKV_API int okv_counter_decode(const void *val, size_t len, int64_t *out);

/* ---- admin --------------------------------------------------------------- */

/* Status of the node the client reached. */
OKV_API int okv_status_get(okv_client *client, okv_status **out, int timeout_ms);

OKV_API uint64_t okv_status_node_id(const okv_status *s);
OKV_API const char *okv_status_server_version(const okv_status *s);
OKV_API const char *okv_status_address(const okv_status *s);    /* the node that answered */
OKV_API uint64_t okv_status_uptime_ms(const okv_status *s);
OKV_API size_t okv_status_table_count(const okv_status *s);
OKV_API const char *okv_status_table_name(const okv_status *s, size_t i);
OKV_API uint32_t okv_status_table_id(const okv_status *s, size_t i);
OKV_API uint32_t okv_status_table_partitions(const okv_status *s, size_t i);
/* Counters, by name; 0 for an unknown name. Names: "writes", "syncs" (writes
 * made durable and the synced batches that did it; on a cluster node, raft
 * log entries and synced log writes; writes/syncs is the group-commit
 * factor), "reads", "lease_reads", "entries_applied", "proposals" (commands
 * this node proposed as a leader), "snapshots_recorded", "snapshots_offered",
 * "snapshots_installed", "snapshots_recovered". */
OKV_API uint64_t okv_status_counter(const okv_status *s, const char *name);
OKV_API void okv_status_free(okv_status *s);

/* Status of the node at `address` (host:port), which need not be in the
 * client's list: for tools that inspect every node of a cluster. */
OKV_API int okv_status_get_at(okv_client *client, const char *address, okv_status **out,
                              int timeout_ms);

/* Cluster mode: the map and the answering node's partition replicas. A
 * single node reports cluster id 0, no nodes and no replicas. */
OKV_API uint64_t okv_status_cluster_id(const okv_status *s);
OKV_API size_t okv_status_node_count(const okv_status *s);
OKV_API uint64_t okv_status_node_id_at(const okv_status *s, size_t i);
OKV_API const char *okv_status_node_address_at(const okv_status *s, size_t i);

/* The meta group (Raft group 0, the cluster's record of its map and tables)
 * as the answering node sees it: "ok", "waiting" (record not applied there
 * yet), "mismatch" (the node's tables differ from the cluster's, so it
 * refuses requests; *detail says why), "not-held" (no meta replica there),
 * or "" for a single node. epoch and detail may be NULL; detail is
 * borrowed from s. */
OKV_API const char *okv_status_meta(const okv_status *s, uint64_t *epoch, const char **detail);

typedef struct okv_replica_info {
    uint32_t table_id;
    uint32_t partition;
    const char *role;      /* "leader", "follower", ... (borrowed from the status) */
    uint64_t term;
    uint64_t leader;       /* node id, 0 if unknown */
    uint64_t commit;
    uint64_t applied;
    uint64_t last_index;
} okv_replica_info;

OKV_API size_t okv_status_replica_count(const okv_status *s);
/* Fills *out for replica i; OKV_EINVAL if i is out of range. */
OKV_API int okv_status_replica(const okv_status *s, size_t i, okv_replica_info *out);

/* Moves leadership of (table, partition) to node to_node (which must hold a
 * replica). The request finds the current leader by itself; the move itself
 * completes shortly after the call returns (watch okv_status). */
OKV_API int okv_transfer_leader(okv_client *client, const char *table, uint32_t partition,
                                uint64_t to_node, int timeout_ms);

/* The audit log of one node (docs/operations.md "Audit log"): its admin
 * actions and refused requests, one JSON object per line. */
typedef struct okv_audit_lines okv_audit_lines;

/* The last `lines` lines of the audit log of the node at `address`
 * (host:port, which need not be in the client's list; NULL: the first
 * address given to okv_connect), oldest first. lines: 0 = 20; the node
 * answers at most 1000 (and at most 3 MiB of lines). Every node keeps its
 * own log: it records what was asked of it. */
OKV_API int okv_audit_tail(okv_client *client, const char *address, uint32_t lines,
                           okv_audit_lines **out, int timeout_ms);
OKV_API size_t okv_audit_lines_count(const okv_audit_lines *l);
/* Line i (0 = oldest), without its newline; NULL past the end. Borrowed
 * from l. */
OKV_API const char *okv_audit_lines_at(const okv_audit_lines *l, size_t i);
/* The node that answered (host:port). */
OKV_API const char *okv_audit_lines_address(const okv_audit_lines *l);
OKV_API void okv_audit_lines_free(okv_audit_lines *l);

/* ---- users and roles ------------------------------------------------------
 * For clusters run with --auth on (docs/operations.md "Users and roles").
 * The client names itself with okv_options.user / .password or a TLS client
 * certificate; every call is then checked: OKV_EAUTH when the node does not
 * know who you are, OKV_EPERMISSION when you may not (okv_errmsg says who
 * may not do what). Roles: "admin", "writer", "reader", "none"; a grant
 * gives "reader" or "writer" on one table on top of the role. All calls
 * below but okv_whoami need role admin. */

/* Who the node takes this client for. user/role: cap bytes each (64 is
 * plenty); *auth_enabled 0 when the node runs with --auth off (user and
 * role are then ""). */
OKV_API int okv_whoami(okv_client *client, char *user, size_t user_cap, char *role,
                       size_t role_cap, int *auth_enabled, int timeout_ms);

/* Creates a user. password "" or NULL: it can only log in with a client
 * certificate whose common name is its name. OKV_ECONFLICT if it exists. */
OKV_API int okv_user_add(okv_client *client, const char *name, const char *password,
                         const char *role, int timeout_ms);
OKV_API int okv_user_set_role(okv_client *client, const char *name, const char *role,
                              int timeout_ms);
/* password "" or NULL: certificate only from now on. */
OKV_API int okv_user_set_password(okv_client *client, const char *name, const char *password,
                                  int timeout_ms);
/* access "reader" or "writer" on table; "none" removes the grant. */
OKV_API int okv_user_grant(okv_client *client, const char *name, const char *table,
                           const char *access, int timeout_ms);
OKV_API int okv_user_delete(okv_client *client, const char *name, int timeout_ms);

typedef struct okv_user_list okv_user_list;
/* Every user, in name order. */
OKV_API int okv_user_list_get(okv_client *client, okv_user_list **out, int timeout_ms);
OKV_API size_t okv_user_list_count(const okv_user_list *l);
OKV_API const char *okv_user_list_name(const okv_user_list *l, size_t i);
OKV_API const char *okv_user_list_role(const okv_user_list *l, size_t i);
OKV_API int okv_user_list_has_password(const okv_user_list *l, size_t i);
/* Grants of user i as "table:access,..." ("" for none) into buf (cap). */
OKV_API void okv_user_list_grants(const okv_user_list *l, size_t i, char *buf, size_t cap);
OKV_API void okv_user_list_free(okv_user_list *l);

#ifdef __cplusplus
}
#endif
/* ---- online backup (docs/operations.md "Backup and restore") ---------- */

typedef struct okv_backup_options {
    int version;               /* OKV_BACKUP_OPTIONS_VERSION */
    /* How long the fences live if this process dies (they are lifted when
     * the backup ends); the cuts must be taken within 3/4 of it. While
     * they stand, transactions across partitions get OKV_ECONFLICT (retry
     * them); other writes go on. At most 600000. */
    int fence_ms;
    int timeout_ms;            /* the whole backup */
    /* Optional: called after each partition was cut and written. */
    void (*on_cut)(void *ctx, const char *table, uint32_t partition, uint64_t index,
                   uint64_t term);
    void *ctx;
} okv_backup_options;

#define OKV_BACKUP_OPTIONS_VERSION 1
#define OKV_BACKUP_OPTIONS_INIT { OKV_BACKUP_OPTIONS_VERSION, 60000, 300000, NULL, NULL }

/* Backs up every partition of the cluster into dir (created, or an empty
 * dir) while it serves: one file per partition, cut at a Raft index of
 * its own, and a MANIFEST with their SHA-256, written last. Every write
 * acknowledged before the call is in the backup, and no transaction across
 * partitions is in it in part. Restore with `orderkv restore`. opts may be
 * NULL (defaults). */
OKV_API int okv_backup(okv_client *client, const char *dir, const okv_backup_options *opts);

#endif /* ORDERKV_H */
