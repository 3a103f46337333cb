/*
 * driver.h — orderkv-bench's load engine: keeps N requests in flight against
 * one target, with no thread per request.
 *
 * The model. The driver owns N request slots. The main thread starts one
 * request per slot; when a request completes, the target calls
 * driver_complete() on its own completion thread, which records the
 * request's latency and outcome and, in that same call, starts the slot's
 * next request. So there are always N requests in flight, whatever the
 * target's latency, and the only threads are the main thread (which starts
 * the first N, keeps time and prints progress) and the target's completion
 * thread(s).
 *
 * Phases: WARMUP (results not counted), MEASURE (counted), STOP (no new
 * request is started; the driver waits for the ones in flight). A request
 * counts in MEASURE if it completes while the phase is MEASURE. Latency is
 * taken per request from just before the submit to the start of
 * driver_complete() on the monotonic clock. The measured window's CPU time
 * (getrusage(RUSAGE_SELF): every thread of the process, the target
 * library's included) is reported with the results.
 *
 * Thread safety: driver_complete() may run on any number of completion
 * threads at once; a slot has one request in flight at a time, so only one
 * thread touches a slot at a time. Each thread that completes requests gets
 * its own statistics (found through a thread-local), merged after the stop.
 *
 * Chains. A request may be several calls in a row on the target: etcd's
 * transfer is a read of both accounts, then a compare-and-swap Txn built
 * from what the read returned. The target starts the first call in its
 * start function; the first call's completion (on the target's completion
 * thread) starts the next one right there, without waiting for anything;
 * only the last completion calls driver_complete(). A later call that
 * cannot be started ends the chain: the target calls driver_complete() with
 * that code from the completion thread it is on, and the slot goes on with
 * its next request. What a chain carries from one call to the next lives in
 * the slot's state (driver_req_state: driver_target.state_size bytes per
 * slot, owned by the target while the request is in flight). Latency is
 * the whole chain's, from the first submit to driver_complete(); the target
 * keeps the whole chain within the request's timeout, which bounds the
 * driver's wait for the last requests after the stop.
 *
 * Transfers (DRIVER_TRANSFER). Every key is an account holding an 8-byte
 * counter (okv_counter_encode); driver_preload() writes the starting
 * balance (driver_config.fixed_value) into every one. A transfer moves
 * `amount` from one account to another: two distinct accounts, and when the
 * target has partitions (driver_target.partition), accounts in different
 * partitions. A transfer that does not commit is not retried: the slot goes
 * on with a new pair, on both targets alike. Outcomes: committed (ok),
 * conflict (OKV_ECONFLICT: another transaction's lock, or etcd's compare
 * failed because a key changed after the read), condition abort
 * (OKV_ECONDITION: the debit would go below 0), or an error, counted by
 * code. driver_verify() sums every balance afterwards: transfers move money
 * but never create it, whatever committed or failed.
 *
 * Conditional writes (DRIVER_CAS). Every key is preloaded first; each
 * request is one write of a fresh value to a random key, conditional on
 * the key existing, evaluated by the server in one round (target.cas). The
 * condition cannot fail after the preload, so a failure (OKV_ECONDITION)
 * is an error like any other, counted by code.
 *
 * The flash sale (DRIVER_FLASH_SALE). One stock key (config.stock_key, an
 * 8-byte counter the caller has set) and no other keys: each request takes
 * one unit and records a reservation key "STOCK/r/RUN-SLOT-SEQ" (RUN is
 * config.run_id in hex, SLOT the slot's index, SEQ the slot's count of
 * reservations asked for: unique within the process and, through RUN,
 * across runs) holding value_size bytes of fixed_value, atomically
 * (target.reserve). Outcomes: reserved (ok); sold out (OKV_ECONDITION with
 * DRIVER_CAUSE_FLOOR: the stock is 0; a result, never retried); conflict
 * (OKV_ECONFLICT); an error. The first sold-out answer, in any phase, ends
 * the sale: no slot starts another request, the run ends once the requests
 * in flight have completed, and the measured window ends at that answer
 * (driver_result.sold_out_at_s), so a rate is reservations per second of
 * the sale. A target that retries inside a request (etcd's
 * compare-and-swap loop) counts each retry with driver_count_retry().
 *
 * Orders paid (DRIVER_PAY_ORDER). Every key names a customer and that
 * customer's account; the target maps a key to both ids. driver_preload()
 * calls target.setup once per key instead of a put (open the account and
 * fund it: a chain of two calls), and driver_verify() reads each account's
 * balance through target.read, as an 8-byte counter. Each request is
 * target.pay_order: place an order for the key's customer, then pay it from
 * the key's account; a chain whose latency is the whole of it. Outcomes:
 * paid (ok) or an error, counted by code (a rule's refusal included: after
 * a funded preload none is expected); nothing is retried by the driver.
 */
#ifndef OKV_BENCH_DRIVER_H
#define OKV_BENCH_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "histogram.h"

typedef struct driver driver;
typedef struct driver_req driver_req;

enum driver_workload {
    DRIVER_PUT, DRIVER_GET, DRIVER_MIXED, DRIVER_TRANSFER, DRIVER_CAS, DRIVER_FLASH_SALE,
    DRIVER_PAY_ORDER
};

/* Why a transfer did not commit (driver_complete_cause), beyond its code. */
enum driver_cause {
    DRIVER_CAUSE_NONE = 0,     /* committed, or an error without an abort cause */
    DRIVER_CAUSE_LOCKED,       /* OKV_ECONFLICT: a key held by another transaction's lock */
    DRIVER_CAUSE_ABORTED,      /* OKV_ECONFLICT: aborted otherwise (e.g. past its deadline) */
    DRIVER_CAUSE_CHANGED,      /* OKV_ECONFLICT: a key changed between the read and the
                                  compare-and-swap (etcd: a mod_revision compare failed) */
    DRIVER_CAUSE_FLOOR,        /* OKV_ECONDITION: the debit would go below 0 (a flash
                                  sale: sold out) */
    DRIVER_CAUSE_CONDITION,    /* OKV_ECONDITION: another condition did not hold */
    DRIVER_NCAUSES
};

/* Static name of a cause ("locked", "floor", ...). */
const char *driver_cause_name(int cause);

/* Failures are counted by code: slot i holds OKV_E* code -i, the last slot
 * any code outside that range. */
#define DRIVER_NCODES 21

/*
 * How the driver starts a request on a target. put / get return OKV_OK once
 * the request is started; then exactly one driver_complete(req, ...)
 * follows, on a thread of the target's, never inside put / get themselves.
 * Any other return means nothing was started and no completion will follow;
 * errmsg(ctx) then gives the detail on the calling thread. key and value
 * stay valid and unchanged until the completion.
 */
typedef struct driver_target {
    void *ctx;
    int (*put)(void *ctx, driver_req *req, const void *key, size_t key_len, const void *value,
               size_t value_len, int timeout_ms);
    int (*get)(void *ctx, driver_req *req, const void *key, size_t key_len, int timeout_ms);
    const char *(*errmsg)(void *ctx);
    /* DRIVER_TRANSFER (else may be NULL): moves `amount` from account `from`
     * to account `to` (key_len bytes each) in one atomic transaction; may be
     * a chain (above); completes with driver_complete_cause(). */
    int (*transfer)(void *ctx, driver_req *req, const void *from, const void *to,
                    size_t key_len, int64_t amount, int timeout_ms);
    /* driver_verify (else may be NULL): a get that completes with
     * driver_complete_value(). */
    int (*read)(void *ctx, driver_req *req, const void *key, size_t key_len, int timeout_ms);
    /* DRIVER_TRANSFER: the partition a key lives in; NULL if the target has
     * no partitions (any two distinct accounts will do). */
    uint32_t (*partition)(void *ctx, const void *key, size_t key_len);
    size_t state_size;           /* bytes of per-slot state for chains, 0: none */
    /* DRIVER_CAS (else may be NULL): put value to key if key exists, the
     * condition evaluated by the server in the same round; completes with
     * driver_complete() (a failed condition: OKV_ECONDITION). */
    int (*cas)(void *ctx, driver_req *req, const void *key, size_t key_len, const void *value,
               size_t value_len, int timeout_ms);
    /* DRIVER_FLASH_SALE (else may be NULL): take one unit of `stock` and put
     * `res` = value, atomically; may be a chain; completes with
     * driver_complete_cause() (sold out: OKV_ECONDITION, DRIVER_CAUSE_FLOOR). */
    int (*reserve)(void *ctx, driver_req *req, const void *stock, size_t stock_len,
                   const void *res, size_t res_len, const void *value, size_t value_len,
                   int timeout_ms);
    /* DRIVER_PAY_ORDER (else may be NULL): driver_preload's step for key
     * (key_len bytes) in place of a put: make the key's account ready for
     * the run; may be a chain; completes with driver_complete(). */
    int (*setup)(void *ctx, driver_req *req, const void *key, size_t key_len, int timeout_ms);
    /* DRIVER_PAY_ORDER (else may be NULL): place an order for key's customer
     * and pay it from key's account; a chain; completes with
     * driver_complete() once the payment is answered (or a step failed). */
    int (*pay_order)(void *ctx, driver_req *req, const void *key, size_t key_len,
                     int timeout_ms);
} driver_target;

typedef struct driver_config {
    int in_flight;               /* N: requests in flight, >= 1 */
    double warmup_s;             /* unmeasured time before the window */
    double duration_s;           /* the measured window */
    enum driver_workload workload;
    int read_pct;                /* DRIVER_MIXED: share of gets, 0..100 */
    size_t key_size;             /* >= 1 */
    /* "" or a partition key: every key is "PREFIX/..." (key_size bytes in
     * all), so all requests go to one partition (orderkv hashes the part
     * before the first '/'). */
    const char *key_prefix;
    size_t value_size;
    /* NULL: every put writes value_size random letters; else these
     * value_size bytes (a transfer's preload: the starting balance). */
    const void *fixed_value;
    int64_t amount;              /* DRIVER_TRANSFER: moved by each transfer, >= 1 */
    uint64_t keys;               /* distinct keys, >= 2 (DRIVER_FLASH_SALE: unused;
                                    DRIVER_PAY_ORDER: customers, one account each) */
    int zipf;                    /* 0 uniform, 1 zipfian with zipf_theta in (0, 1) */
    double zipf_theta;
    int timeout_ms;              /* per request; 0: the target's default */
    int progress;                /* a live ops/s line on stderr, once a second */
    const char *stock_key;       /* DRIVER_FLASH_SALE: 1..OKV_MAX_KEY_LEN - 64 bytes, no '/' */
    uint32_t run_id;             /* DRIVER_FLASH_SALE: part of every reservation key */
} driver_config;

typedef struct driver_result {
    histogram hist;              /* latency (us) of successful measured requests */
    uint64_t ok;                 /* successful requests completed in the window
                                    (transfers: committed) */
    uint64_t errors;             /* failed requests completed in the window (transfers:
                                    other than conflicts and condition aborts) */
    uint64_t not_found;          /* gets of a missing key (counted in ok too) */
    uint64_t conflicts;          /* transfers, flash sale: OKV_ECONFLICT in the window */
    uint64_t condition_aborts;   /* transfers: OKV_ECONDITION in the window */
    uint64_t by_cause[DRIVER_NCAUSES];  /* conflicts and condition aborts, by cause */
    uint64_t by_code[DRIVER_NCODES];    /* errors (and submit failures), by code */
    int last_error;              /* code of the last failure (0: none) */
    char last_msg[256];          /* its message */
    uint64_t sold_out;           /* flash sale: sold-out answers in the window */
    uint64_t retries;            /* driver_count_retry() calls in the window */
    /* Flash sale: seconds from the window's start to the first sold-out
     * answer (then also elapsed_s); -1: not sold out in the window. */
    double sold_out_at_s;
    int sold_out_in_warmup;      /* flash sale: sold out before the window opened */
    double elapsed_s;            /* length of the window, as measured */
    double cpu_s;                /* user + system CPU of the process in the window */
    uint64_t lost;               /* slots stopped because a submit failed */
} driver_result;

/* cfg and target are copied. Errors: OKV_EINVAL (a field out of range),
 * OKV_ENOMEM. */
int driver_new(driver **out, const driver_config *cfg, const driver_target *target);

/*
 * Puts every key 0..keys-1 once (DRIVER_PAY_ORDER: target.setup of every
 * key), in_flight at a time, each with a deadline of timeout_ms; stops at
 * the first failure. OKV_OK, or the code of the
 * first failure with its message in msg (msgsize bytes).
 */
int driver_preload(driver *d, int in_flight, int timeout_ms, char *msg, size_t msgsize);

/* The sum of every key's 8-byte counter (driver_verify). */
typedef struct driver_sum {
    int64_t sum;                 /* of the counters found */
    uint64_t found;              /* keys holding an 8-byte counter */
    uint64_t missing;            /* keys that do not exist */
    uint64_t not_counter;        /* keys holding something else */
} driver_sum;

/*
 * Reads every key 0..keys-1 once through target.read, in_flight at a time,
 * each with a deadline of timeout_ms, and sums their counters into *out;
 * stops at the first failure. No run may be going on. OKV_OK, or the code
 * of the first failure with its message in msg (msgsize bytes).
 */
int driver_verify(driver *d, int in_flight, int timeout_ms, driver_sum *out, char *msg,
                  size_t msgsize);

/*
 * Runs WARMUP, MEASURE and STOP, then waits until no request is in flight
 * (or gives up after the request deadline plus a margin: OKV_ETIMEDOUT,
 * with requests still in flight — the target must not be closed then).
 * Fills *out. OKV_OK (also when a flash sale sold out and ended early),
 * or OKV_EUNAVAILABLE if every slot stopped early because its submits
 * failed (out->last_msg says why).
 */
int driver_run(driver *d, driver_result *out);

/* The target's completion of req: code is OKV_OK, OKV_ENOTFOUND (a get of a
 * missing key, a success) or another OKV_E* code with errmsg (may be NULL).
 * Starts the slot's next request unless the driver is stopping. */
void driver_complete(driver_req *req, int code, const char *errmsg);

/* driver_complete for a transfer that did not commit, with why
 * (enum driver_cause); DRIVER_CAUSE_NONE is driver_complete. */
void driver_complete_cause(driver_req *req, int code, int cause, const char *errmsg);

/* driver_complete for target.read: on OKV_OK, value (value_len bytes,
 * borrowed for the call) is the key's value. */
void driver_complete_value(driver_req *req, int code, const char *errmsg, const void *value,
                           size_t value_len);

/* A target's retry inside req (a flash sale's compare-and-swap that found
 * the stock changed and starts over): counted in driver_result.retries if
 * the window is open. Any thread, while req is in flight. */
void driver_count_retry(driver_req *req);

/* The slot's state_size bytes for the target's chains: zeroed when the
 * round starts, then the target's alone (the driver never touches them). */
void *driver_req_state(driver_req *req);

/* Accepts NULL. No request may be in flight. */
void driver_free(driver *d);

#endif
