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
 */
#ifndef OKV_BENCH_DRIVER_H
#define OKV_BENCH_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "histogram.h"

typedef struct driver driver;
typedef struct driver_req driver_req;

enum driver_workload { DRIVER_PUT, DRIVER_GET, DRIVER_MIXED };

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
    uint64_t keys;               /* distinct keys, >= 2 */
    int zipf;                    /* 0 uniform, 1 zipfian with zipf_theta in (0, 1) */
    double zipf_theta;
    int timeout_ms;              /* per request; 0: the target's default */
    int progress;                /* a live ops/s line on stderr, once a second */
} driver_config;

typedef struct driver_result {
    histogram hist;              /* latency (us) of successful measured requests */
    uint64_t ok;                 /* successful requests completed in the window */
    uint64_t errors;             /* failed requests completed in the window */
    uint64_t not_found;          /* gets of a missing key (counted in ok too) */
    int last_error;              /* code of the last failure (0: none) */
    char last_msg[256];          /* its message */
    double elapsed_s;            /* length of the window, as measured */
    double cpu_s;                /* user + system CPU of the process in the window */
    uint64_t lost;               /* slots stopped because a submit failed */
} driver_result;

/* cfg and target are copied. Errors: OKV_EINVAL (a field out of range),
 * OKV_ENOMEM. */
int driver_new(driver **out, const driver_config *cfg, const driver_target *target);

/*
 * Puts every key 0..keys-1 once, in_flight at a time, each with a deadline
 * of timeout_ms; stops at the first failure. OKV_OK, or the code of the
 * first failure with its message in msg (msgsize bytes).
 */
int driver_preload(driver *d, int in_flight, int timeout_ms, char *msg, size_t msgsize);

/*
 * Runs WARMUP, MEASURE and STOP, then waits until no request is in flight
 * (or gives up after the request deadline plus a margin: OKV_ETIMEDOUT,
 * with requests still in flight — the target must not be closed then).
 * Fills *out. OKV_OK, or OKV_EUNAVAILABLE if every slot stopped early
 * because its submits failed (out->last_msg says why).
 */
int driver_run(driver *d, driver_result *out);

/* The target's completion of req: code is OKV_OK, OKV_ENOTFOUND (a get of a
 * missing key, a success) or another OKV_E* code with errmsg (may be NULL).
 * Starts the slot's next request unless the driver is stopping. */
void driver_complete(driver_req *req, int code, const char *errmsg);

/* Accepts NULL. No request may be in flight. */
void driver_free(driver *d);

#endif
