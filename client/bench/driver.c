/*
 * driver.c — N requests in flight, restarted from the completion path
 * (the model is in driver.h).
 *
 * Invariants:
 *  1. A slot (driver_req) has at most one request in flight. Its fields are
 *     written by the thread that starts the request, before the submit, and
 *     read by the thread that completes it; the target's hand-over from
 *     submit to completion orders the two. After a submit returns OKV_OK the
 *     submitting thread no longer touches the slot: the completion may
 *     already be running elsewhere.
 *  2. in_flight counts slots that still have a request in flight or about
 *     to be started. A slot leaves it exactly once ("retires"): when it
 *     would start a request but the driver is stopping (or the preload is
 *     done), or when its submit fails. Whoever brings in_flight to 0 wakes
 *     the main thread.
 *  3. Statistics are per completing thread and per round (one preload, run
 *     or verify); a round's statistics are read only after in_flight reached
 *     0, which orders every thread's last update before the read.
 *  4. A chain (driver.h) is one request to the driver: the slot is in
 *     flight from the first submit to the one driver_complete*() of its
 *     last call, and the driver touches neither the slot's keys, value nor
 *     state in between.
 *  5. A flash sale's sold_out_ns goes from 0 to the time of the first
 *     sold-out answer once (compare-and-swap) and never back within a run;
 *     from then on issue() retires every slot instead of starting a
 *     request, so in_flight drains to 0 and the main thread ends the run.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "driver.h"
#include "orderkv.h"

enum phase { PH_WARMUP, PH_MEASURE, PH_STOP };
enum mode { MODE_RUN, MODE_PRELOAD, MODE_VERIFY };
enum kind { K_PUT, K_GET, K_TRANSFER, K_READ, K_CAS, K_RESERVE, K_SETUP, K_PAY };

/* Margin added to the request deadline when waiting for the last requests. */
#define DRAIN_MARGIN_S 10.0
#define DEFAULT_TIMEOUT_MS 5000

typedef struct thread_stats {
    struct thread_stats *next;
    histogram hist;
    uint64_t ok, errors, not_found, lost;
    uint64_t conflicts, condition_aborts, sold_out, retries;
    uint64_t by_cause[DRIVER_NCAUSES];
    uint64_t by_code[DRIVER_NCODES];
    int last_error;
    char last_msg[256];
} thread_stats;

struct driver_req {
    driver *d;
    uint64_t rng;
    uint64_t t0_ns;
    enum kind kind;
    int slot;                    /* index in the round */
    uint64_t seq;                /* requests this slot started in the round */
    char *key;                   /* kcap bytes; a transfer's payer */
    char *key2;                  /* kcap bytes: a transfer's payee, a reservation key */
    size_t key2_len;
    char *value;                 /* DRIVER_CAS: value_size bytes, stamped per request */
    void *state;                 /* the target's state_size bytes (driver_req_state) */
};

struct driver {
    driver_config cfg;
    driver_target t;
    char *value;                 /* value_size bytes every put writes, shared read-only */
    double zeta_n, alpha, eta;   /* zipfian constants */
    uint32_t *part;              /* DRIVER_TRANSFER with partitions: each key's */
    char *stock_key;             /* DRIVER_FLASH_SALE: a copy of cfg.stock_key */
    size_t stock_len;
    size_t kcap;                 /* bytes of each of a slot's two key buffers */

    /* The current round. */
    uint64_t round;              /* unique in the process: keys thread-locals */
    enum mode mode;
    int nreqs;
    driver_req *reqs;
    char *keybuf;                /* two keys per slot */
    char *valbuf;                /* DRIVER_CAS: a value per slot */
    char *statebuf;              /* state_size bytes per slot */
    atomic_int phase;
    atomic_int in_flight;
    _Atomic uint64_t completed;  /* every completion, for the progress line */
    _Atomic uint64_t preload_next;
    atomic_int preload_failed;
    int preload_code;            /* first preload failure, under mu */
    char preload_msg[256];
    /* driver_verify's sums, added to by every completing thread. */
    _Atomic int64_t v_sum;
    _Atomic uint64_t v_found, v_missing, v_not_counter;
    _Atomic uint64_t sold_out_ns;  /* flash sale: first sold-out answer (invariant 5) */

    pthread_mutex_t mu;
    pthread_cond_t idle;         /* in_flight reached 0 (monotonic clock) */
    thread_stats *stats;         /* this round's, one per thread; under mu */
};

static _Atomic uint64_t next_round = 1;

/* The calling thread's statistics for the round it last completed in. */
static _Thread_local struct {
    uint64_t round;
    thread_stats *s;
} here;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double now_s(void)
{
    return (double)now_ns() / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static double uniform01(uint64_t *s)
{
    return (double)(xorshift(s) >> 11) / 9007199254740992.0;
}

/* Gray et al., "Quickly generating billion-record synthetic databases". */
static void zipf_init(driver *d)
{
    double theta = d->cfg.zipf_theta;
    uint64_t n = d->cfg.keys;
    double zeta = 0, zeta2 = 1.0 + pow(0.5, theta);
    for (uint64_t i = 1; i <= n; i++)
        zeta += 1.0 / pow((double)i, theta);
    d->zeta_n = zeta;
    d->alpha = 1.0 / (1.0 - theta);
    d->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / zeta);
}

static uint64_t next_key(const driver *d, uint64_t *rng)
{
    uint64_t n = d->cfg.keys;
    if (!d->cfg.zipf)
        return xorshift(rng) % n;
    double u = uniform01(rng), uz = u * d->zeta_n;
    if (uz < 1.0)
        return 0;
    if (uz < 1.0 + pow(0.5, d->cfg.zipf_theta))
        return 1;
    uint64_t k = (uint64_t)((double)n * pow(d->eta * u - d->eta + 1.0, d->alpha));
    return k < n ? k : n - 1;
}

/* Fixed-size key: [prefix "/"] "k" + zero-padded number, padded/truncated
 * to size (the prefix is kept whole; bench.c checks it fits). */
static void make_key(char *buf, size_t size, const char *prefix, uint64_t k)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "k%019llu", (unsigned long long)k);
    size_t pl = prefix && prefix[0] ? strlen(prefix) + 1 : 0;
    if (pl) {
        memcpy(buf, prefix, pl - 1);
        buf[pl - 1] = '/';
    }
    buf += pl;
    size -= pl;
    memset(buf, 'x', size);
    size_t take = (size_t)n < size ? (size_t)n : size;
    memcpy(buf + size - take, tmp + (size_t)n - take, take);
}

/* A transfer's payee for payer `from`: another account, in another
 * partition when the target has partitions. Drawn like every key (zipfian
 * if asked), then uniformly if 64 draws found none; driver_new checked that
 * the keys span two partitions, so one exists for every payer. */
static uint64_t pick_payee(const driver *d, uint64_t *rng, uint64_t from)
{
    for (int i = 0;; i++) {
        uint64_t to = i < 64 ? next_key(d, rng) : xorshift(rng) % d->cfg.keys;
        if (to != from && (!d->part || d->part[to] != d->part[from]))
            return to;
    }
}

static int code_slot(int code)
{
    return code <= 0 && code > -(DRIVER_NCODES - 1) ? -code : DRIVER_NCODES - 1;
}

const char *driver_cause_name(int cause)
{
    static const char *const names[DRIVER_NCAUSES] = {
        "none", "locked", "aborted", "revision_changed", "floor", "condition",
    };
    return cause >= 0 && cause < DRIVER_NCAUSES ? names[cause] : "?";
}

void *driver_req_state(driver_req *req)
{
    return req->state;
}

static thread_stats *stats_here(driver *d)
{
    if (here.round == d->round)
        return here.s;
    thread_stats *s = calloc(1, sizeof *s);
    if (!s) {
        /* No way to go on counting correctly; a benchmark that cannot
         * allocate 20 KB is not measuring anything useful. */
        fputs("orderkv-bench: out of memory\n", stderr);
        abort();
    }
    pthread_mutex_lock(&d->mu);
    s->next = d->stats;
    d->stats = s;
    pthread_mutex_unlock(&d->mu);
    here.round = d->round;
    here.s = s;
    return s;
}

void driver_count_retry(driver_req *req)
{
    driver *d = req->d;
    if (d->mode == MODE_RUN && atomic_load(&d->phase) == PH_MEASURE)
        stats_here(d)->retries++;
}

static void set_msg(char *dst, size_t size, const char *msg)
{
    snprintf(dst, size, "%s", msg ? msg : "");
}

static void retire(driver *d)
{
    if (atomic_fetch_sub(&d->in_flight, 1) == 1) {
        pthread_mutex_lock(&d->mu);
        pthread_cond_broadcast(&d->idle);
        pthread_mutex_unlock(&d->mu);
    }
}

static void preload_fail(driver *d, int code, const char *msg)
{
    pthread_mutex_lock(&d->mu);
    if (!atomic_load(&d->preload_failed)) {
        d->preload_code = code;
        set_msg(d->preload_msg, sizeof d->preload_msg, msg);
        atomic_store(&d->preload_failed, 1);
    }
    pthread_mutex_unlock(&d->mu);
}

/* DRIVER_CAS: the slot's value with its first bytes replaced by the slot
 * and the request's sequence number, so that every write puts a value the
 * key has not held (the rest stays the run's random letters). */
static void stamp_value(const driver *d, driver_req *r)
{
    char tmp[48];
    int n = snprintf(tmp, sizeof tmp, "%d-%llu-", r->slot, (unsigned long long)r->seq);
    size_t take = (size_t)n < d->cfg.value_size ? (size_t)n : d->cfg.value_size;
    memcpy(r->value, tmp, take);
}

/* DRIVER_FLASH_SALE: "STOCK/r/RUN-SLOT-SEQ" into r->key2 (driver.h); its
 * length. kcap leaves 64 bytes past the stock key, more than the suffix
 * can take (3 + 8 + 1 + 4 + 1 + 20 and the NUL). */
static size_t reservation_key(const driver *d, driver_req *r)
{
    int n = snprintf(r->key2, d->kcap, "%s/r/%08lx-%d-%llu", d->stock_key,
                     (unsigned long)d->cfg.run_id, r->slot, (unsigned long long)r->seq);
    return (size_t)n;
}

/* Fills r's keys (and value) for its next request and returns its kind;
 * -1 if a preload or verify pass has no key left for it. */
static int prepare(driver *d, driver_req *r)
{
    const driver_config *c = &d->cfg;
    if (d->mode != MODE_RUN) {   /* preload or verify: every key once */
        uint64_t k = atomic_fetch_add(&d->preload_next, 1);
        if (k >= c->keys || atomic_load(&d->preload_failed))
            return -1;
        make_key(r->key, c->key_size, c->key_prefix, k);
        if (d->mode == MODE_VERIFY)
            return K_READ;
        return c->workload == DRIVER_PAY_ORDER ? K_SETUP : K_PUT;
    }
    if (c->workload == DRIVER_FLASH_SALE) {   /* the stock key is d->stock_key */
        r->key2_len = reservation_key(d, r);
        return K_RESERVE;
    }
    uint64_t k = next_key(d, &r->rng);
    make_key(r->key, c->key_size, c->key_prefix, k);
    switch (c->workload) {
    case DRIVER_TRANSFER:
        make_key(r->key2, c->key_size, c->key_prefix, pick_payee(d, &r->rng, k));
        return K_TRANSFER;
    case DRIVER_CAS:
        stamp_value(d, r);
        return K_CAS;
    case DRIVER_PAY_ORDER:
        return K_PAY;
    default: {
        int is_get = c->workload == DRIVER_GET ||
                     (c->workload == DRIVER_MIXED && (int)(xorshift(&r->rng) % 100) < c->read_pct);
        return is_get ? K_GET : K_PUT;
    }
    }
}

/* Hands r's request to the target; its return as the target's. */
static int submit(driver *d, driver_req *r)
{
    const driver_config *c = &d->cfg;
    void *ctx = d->t.ctx;
    switch (r->kind) {
    case K_GET:
        return d->t.get(ctx, r, r->key, c->key_size, c->timeout_ms);
    case K_READ:
        return d->t.read(ctx, r, r->key, c->key_size, c->timeout_ms);
    case K_TRANSFER:
        return d->t.transfer(ctx, r, r->key, r->key2, c->key_size, c->amount, c->timeout_ms);
    case K_CAS:
        return d->t.cas(ctx, r, r->key, c->key_size, r->value, c->value_size, c->timeout_ms);
    case K_SETUP:
        return d->t.setup(ctx, r, r->key, c->key_size, c->timeout_ms);
    case K_PAY:
        return d->t.pay_order(ctx, r, r->key, c->key_size, c->timeout_ms);
    case K_RESERVE:
        return d->t.reserve(ctx, r, d->stock_key, d->stock_len, r->key2, r->key2_len, d->value,
                            c->value_size, c->timeout_ms);
    default:
        return d->t.put(ctx, r, r->key, c->key_size, d->value, c->value_size, c->timeout_ms);
    }
}

/* A submit that failed: nothing is in flight for r, which retires. */
static void submit_failed(driver *d, int rc)
{
    const char *msg = d->t.errmsg(d->t.ctx);
    if (d->mode != MODE_RUN) {
        preload_fail(d, rc, msg);
        return;
    }
    thread_stats *s = stats_here(d);
    s->lost++;
    if (atomic_load(&d->phase) == PH_MEASURE) {
        s->errors++;
        s->by_code[code_slot(rc)]++;
    }
    s->last_error = rc;
    set_msg(s->last_msg, sizeof s->last_msg, msg);
}

/* Starts r's next request, or retires r (invariants 2 and 5). */
static void issue(driver_req *r)
{
    driver *d = r->d;
    if (atomic_load(&d->phase) == PH_STOP ||
        (d->mode == MODE_RUN && atomic_load(&d->sold_out_ns) != 0)) {
        retire(d);
        return;
    }
    int kind = prepare(d, r);
    if (kind < 0) {
        retire(d);
        return;
    }
    r->kind = (enum kind)kind;
    r->seq++;
    r->t0_ns = now_ns();
    int rc = submit(d, r);
    if (rc == OKV_OK)
        return;   /* r belongs to the completion now (invariant 1) */
    submit_failed(d, rc);
    retire(d);
}

/* A verify read's value: added to the round's sums. */
static void verify_add(driver *d, int code, const void *value, size_t value_len)
{
    int64_t v;
    if (code == OKV_ENOTFOUND)
        atomic_fetch_add(&d->v_missing, 1);
    else if (okv_counter_decode(value, value_len, &v) != OKV_OK)
        atomic_fetch_add(&d->v_not_counter, 1);
    else {
        atomic_fetch_add(&d->v_sum, v);
        atomic_fetch_add(&d->v_found, 1);
    }
}

static int sold_out(const driver_req *r, int code, int cause)
{
    return r->kind == K_RESERVE && code == OKV_ECONDITION && cause == DRIVER_CAUSE_FLOOR;
}

/* A measured completion into the calling thread's statistics. */
static void count(driver *d, const driver_req *r, int code, int cause, const char *errmsg,
                  uint64_t t1)
{
    thread_stats *s = stats_here(d);
    int reads = r->kind == K_GET || r->kind == K_READ;
    int txn = r->kind == K_TRANSFER || r->kind == K_RESERVE;
    int c = cause >= 0 && cause < DRIVER_NCAUSES ? cause : DRIVER_CAUSE_NONE;
    if (code == OKV_OK || (reads && code == OKV_ENOTFOUND)) {
        histogram_record(&s->hist, (t1 - r->t0_ns) / 1000);
        s->ok++;
        s->not_found += code == OKV_ENOTFOUND;
    } else if (sold_out(r, code, cause)) {
        s->sold_out++;
    } else if (txn && code == OKV_ECONFLICT) {
        s->conflicts++;
        s->by_cause[c]++;
    } else if (r->kind == K_TRANSFER && code == OKV_ECONDITION) {
        s->condition_aborts++;
        s->by_cause[c]++;
    } else {
        s->errors++;
        s->by_code[code_slot(code)]++;
        s->last_error = code;
        set_msg(s->last_msg, sizeof s->last_msg, errmsg);
    }
}

static void complete(driver_req *r, int code, int cause, const char *errmsg, const void *value,
                     size_t value_len)
{
    uint64_t t1 = now_ns();
    driver *d = r->d;
    atomic_fetch_add_explicit(&d->completed, 1, memory_order_relaxed);
    if (d->mode != MODE_RUN) {
        int ok = code == OKV_OK || (r->kind == K_READ && code == OKV_ENOTFOUND);
        if (!ok)
            preload_fail(d, code, errmsg);
        else if (d->mode == MODE_VERIFY)
            verify_add(d, code, value, value_len);
    } else {
        if (sold_out(r, code, cause)) {   /* the first one ends the sale (invariant 5) */
            uint64_t none = 0;
            atomic_compare_exchange_strong(&d->sold_out_ns, &none, t1);
        }
        if (atomic_load(&d->phase) == PH_MEASURE)
            count(d, r, code, cause, errmsg, t1);
    }
    issue(r);
}

void driver_complete(driver_req *r, int code, const char *errmsg)
{
    complete(r, code, DRIVER_CAUSE_NONE, errmsg, NULL, 0);
}

void driver_complete_cause(driver_req *r, int code, int cause, const char *errmsg)
{
    complete(r, code, cause, errmsg, NULL, 0);
}

void driver_complete_value(driver_req *r, int code, const char *errmsg, const void *value,
                           size_t value_len)
{
    complete(r, code, DRIVER_CAUSE_NONE, errmsg, value, value_len);
}

/* DRIVER_TRANSFER with partitions: every key's partition, and a check that
 * the keys span at least two (else no pair could ever be drawn). */
static int partitions_init(driver *d)
{
    const driver_config *c = &d->cfg;
    d->part = malloc(c->keys * sizeof *d->part);
    char *key = malloc(c->key_size);
    if (!d->part || !key) {
        free(key);
        return OKV_ENOMEM;
    }
    int spread = 0;
    for (uint64_t k = 0; k < c->keys; k++) {
        make_key(key, c->key_size, c->key_prefix, k);
        d->part[k] = d->t.partition(d->t.ctx, key, c->key_size);
        spread |= d->part[k] != d->part[0];
    }
    free(key);
    return spread ? OKV_OK : OKV_EINVAL;
}

/* The configuration's checks beyond what bench.c's parser checks. */
static int config_ok(const driver_config *cfg, const driver_target *t)
{
    int flash = cfg->workload == DRIVER_FLASH_SALE;
    if (cfg->in_flight < 1 || cfg->key_size < 1 || (!flash && cfg->keys < 2) ||
        cfg->read_pct < 0 || cfg->read_pct > 100 ||
        (cfg->zipf && (cfg->zipf_theta <= 0 || cfg->zipf_theta >= 1)) || !t->put || !t->get ||
        !t->errmsg)
        return 0;
    if (cfg->workload == DRIVER_TRANSFER &&
        (!t->transfer || cfg->amount < 1 || !cfg->fixed_value || cfg->value_size != 8))
        return 0;
    if (cfg->workload == DRIVER_CAS && !t->cas)
        return 0;
    if (cfg->workload == DRIVER_PAY_ORDER && (!t->setup || !t->pay_order))
        return 0;
    if (flash && (!t->reserve || !cfg->stock_key || !cfg->stock_key[0] ||
                  strchr(cfg->stock_key, '/') || strlen(cfg->stock_key) > OKV_MAX_KEY_LEN - 64))
        return 0;
    return 1;
}

/* The run's value: fixed_value, or value_size random letters. */
static char *value_new(const driver_config *cfg)
{
    char *v = malloc(cfg->value_size + 1);
    if (!v)
        return NULL;
    uint64_t rng = 0x2545f4914f6cdd1dULL ^ (uint64_t)time(NULL);
    for (size_t i = 0; i < cfg->value_size; i++)
        v[i] = cfg->fixed_value ? ((const char *)cfg->fixed_value)[i]
                                : (char)('a' + xorshift(&rng) % 26);
    v[cfg->value_size] = '\0';
    return v;
}

int driver_new(driver **out, const driver_config *cfg, const driver_target *target)
{
    *out = NULL;
    if (!config_ok(cfg, target))
        return OKV_EINVAL;
    driver *d = calloc(1, sizeof *d);
    if (!d)
        return OKV_ENOMEM;
    d->cfg = *cfg;
    d->t = *target;
    d->kcap = cfg->key_size;
    if (cfg->workload == DRIVER_FLASH_SALE) {
        d->stock_len = strlen(cfg->stock_key);
        d->stock_key = malloc(d->stock_len + 1);
        if (d->stock_key)
            memcpy(d->stock_key, cfg->stock_key, d->stock_len + 1);
        d->cfg.stock_key = d->stock_key;
        if (d->kcap < d->stock_len + 64)
            d->kcap = d->stock_len + 64;
    }
    d->value = value_new(cfg);
    int rc = d->value && (cfg->workload != DRIVER_FLASH_SALE || d->stock_key) ? OKV_OK
                                                                               : OKV_ENOMEM;
    if (rc == OKV_OK && cfg->zipf && cfg->workload != DRIVER_FLASH_SALE)
        zipf_init(d);
    if (rc == OKV_OK && cfg->workload == DRIVER_TRANSFER && target->partition)
        rc = partitions_init(d);
    if (rc) {
        free(d->part);
        free(d->stock_key);
        free(d->value);
        free(d);
        return rc;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->idle, &ca);
    pthread_condattr_destroy(&ca);
    *out = d;
    return OKV_OK;
}

/* Frees the round's slots and statistics. Precondition: it is idle
 * (or it never started). */
static void round_end(driver *d)
{
    for (thread_stats *s = d->stats, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    d->stats = NULL;
    free(d->reqs);
    free(d->keybuf);
    free(d->statebuf);
    free(d->valbuf);
    d->reqs = NULL;
    d->keybuf = NULL;
    d->statebuf = NULL;
    d->valbuf = NULL;
}

/* Sets up a round of n slots; all of them count as in flight. */
static int round_begin(driver *d, enum mode mode, int n)
{
    size_t ss = d->t.state_size;
    size_t vs = d->cfg.value_size + 1;
    int cas = mode == MODE_RUN && d->cfg.workload == DRIVER_CAS;
    d->reqs = calloc((size_t)n, sizeof *d->reqs);
    d->keybuf = malloc((size_t)n * 2 * d->kcap);
    d->statebuf = ss ? calloc((size_t)n, ss) : NULL;
    d->valbuf = cas ? malloc((size_t)n * vs) : NULL;
    if (!d->reqs || !d->keybuf || (ss && !d->statebuf) || (cas && !d->valbuf)) {
        round_end(d);
        return OKV_ENOMEM;
    }
    d->round = atomic_fetch_add(&next_round, 1);
    d->mode = mode;
    d->nreqs = n;
    d->stats = NULL;
    atomic_store(&d->phase, mode == MODE_RUN ? PH_WARMUP : PH_MEASURE);
    atomic_store(&d->in_flight, n);
    atomic_store(&d->completed, 0);
    atomic_store(&d->preload_next, 0);
    atomic_store(&d->preload_failed, 0);
    atomic_store(&d->v_sum, 0);
    atomic_store(&d->v_found, 0);
    atomic_store(&d->v_missing, 0);
    atomic_store(&d->v_not_counter, 0);
    atomic_store(&d->sold_out_ns, 0);
    uint64_t seed = (uint64_t)time(NULL);
    for (int i = 0; i < n; i++) {
        driver_req *r = &d->reqs[i];
        r->d = d;
        r->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1) ^ seed;
        if (r->rng == 0)
            r->rng = 1;
        r->slot = i;
        r->key = d->keybuf + (size_t)i * 2 * d->kcap;
        r->key2 = r->key + d->kcap;
        r->state = ss ? d->statebuf + (size_t)i * ss : NULL;
        if (cas) {
            r->value = d->valbuf + (size_t)i * vs;
            memcpy(r->value, d->value, vs);
        }
    }
    return OKV_OK;
}

/* Waits until no slot is in flight; limit_s <= 0 waits without a limit.
 * 1 if idle, 0 on time-out. */
static int wait_idle(driver *d, double limit_s)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (limit_s > 0) {
        until.tv_sec += (time_t)limit_s;
        until.tv_nsec += (long)((limit_s - (double)(time_t)limit_s) * 1e9);
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&d->mu);
    int timed_out = 0;
    while (atomic_load(&d->in_flight) > 0 && !timed_out) {
        if (limit_s > 0)
            timed_out = pthread_cond_timedwait(&d->idle, &d->mu, &until) != 0 &&
                        atomic_load(&d->in_flight) > 0;
        else
            pthread_cond_wait(&d->idle, &d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return !timed_out;
}

/* One pass over every key (preload: puts; verify: reads), n at a time. */
static int walk(driver *d, enum mode mode, int in_flight, int timeout_ms, char *msg,
                size_t msgsize)
{
    int n = (uint64_t)in_flight < d->cfg.keys ? in_flight : (int)d->cfg.keys;
    int rc = round_begin(d, mode, n);
    if (rc) {
        set_msg(msg, msgsize, "out of memory");
        return rc;
    }
    int saved_timeout = d->cfg.timeout_ms;
    d->cfg.timeout_ms = timeout_ms;
    for (int i = 0; i < n; i++)
        issue(&d->reqs[i]);
    wait_idle(d, 0);   /* every request has a deadline */
    d->cfg.timeout_ms = saved_timeout;
    rc = OKV_OK;
    if (atomic_load(&d->preload_failed)) {
        rc = d->preload_code;
        set_msg(msg, msgsize, d->preload_msg);
    }
    round_end(d);
    return rc;
}

int driver_preload(driver *d, int in_flight, int timeout_ms, char *msg, size_t msgsize)
{
    return walk(d, MODE_PRELOAD, in_flight, timeout_ms, msg, msgsize);
}

int driver_verify(driver *d, int in_flight, int timeout_ms, driver_sum *out, char *msg,
                  size_t msgsize)
{
    memset(out, 0, sizeof *out);
    if (!d->t.read) {
        set_msg(msg, msgsize, "the target cannot read values back");
        return OKV_EINVAL;
    }
    int rc = walk(d, MODE_VERIFY, in_flight, timeout_ms, msg, msgsize);
    /* walk waited until idle: every completion's additions are visible. */
    out->sum = atomic_load(&d->v_sum);
    out->found = atomic_load(&d->v_found);
    out->missing = atomic_load(&d->v_missing);
    out->not_counter = atomic_load(&d->v_not_counter);
    return rc;
}

/* Sleeps until `t` (monotonic seconds) or for at most max_s. */
static void sleep_until(double t, double max_s)
{
    double dt = t - now_s();
    if (dt > max_s)
        dt = max_s;
    if (dt <= 0)
        return;
    struct timespec ts = { (time_t)dt, (long)((dt - (double)(time_t)dt) * 1e9) };
    nanosleep(&ts, NULL);
}

/* A flash sale's end, once the run is idle (so a sold-out answer that came
 * during the drain is seen): a sale that sold out inside the window
 * shortens it to the first sold-out answer; one that sold out before it
 * opened measured nothing. */
static void sale_end(driver *d, int window_opened, double measure_start, driver_result *out)
{
    out->sold_out_at_s = -1;
    uint64_t ns = atomic_load(&d->sold_out_ns);
    if (ns == 0)
        return;
    double at = (double)ns / 1e9 - measure_start;
    if (!window_opened || at < 0)
        out->sold_out_in_warmup = 1;
    else if (at < out->elapsed_s)
        out->elapsed_s = out->sold_out_at_s = at;
}

int driver_run(driver *d, driver_result *out)
{
    const driver_config *c = &d->cfg;
    memset(out, 0, sizeof *out);
    int rc = round_begin(d, MODE_RUN, c->in_flight);
    if (rc) {
        set_msg(out->last_msg, sizeof out->last_msg, "out of memory");
        return rc;
    }
    double start = now_s(), cpu_start = cpu_s();
    /* Without a warmup the window opens before the first request, so that
     * every completion counts (a flash sale may be over in milliseconds). */
    if (c->warmup_s <= 0)
        atomic_store(&d->phase, PH_MEASURE);
    for (int i = 0; i < d->nreqs; i++)
        issue(&d->reqs[i]);

    /* The window starts when the phase switches, not at a nominal time, so
     * that elapsed_s and cpu_s cover exactly the counted completions. */
    double measure_start = start + c->warmup_s, end = 0, cpu0 = 0;
    double last_t = start;
    uint64_t last_ops = 0;
    int all_lost = 0;
    for (;;) {
        double t = now_s();
        int ph = atomic_load(&d->phase);
        if (end == 0 && t >= measure_start) {   /* the window opens */
            cpu0 = c->warmup_s <= 0 ? cpu_start : cpu_s();
            measure_start = c->warmup_s <= 0 ? start : now_s();
            end = measure_start + c->duration_s;
            atomic_store(&d->phase, PH_MEASURE);
            ph = PH_MEASURE;
        }
        if (ph == PH_MEASURE && t >= end)
            break;
        if (atomic_load(&d->in_flight) == 0) {   /* a sold-out sale drains so */
            all_lost = atomic_load(&d->sold_out_ns) == 0;
            break;
        }
        if (t - last_t >= 1.0) {
            uint64_t ops = atomic_load(&d->completed);
            if (c->progress)
                fprintf(stderr, "\r[%5.1fs] %s %10.0f ops/s   ", t - start,
                        ph == PH_WARMUP ? "warmup " : "measure",
                        (double)(ops - last_ops) / (t - last_t));
            last_ops = ops;
            last_t = t;
        }
        double next = last_t + 1.0;
        double phase_end = ph == PH_WARMUP ? measure_start : end;
        sleep_until(next < phase_end ? next : phase_end, 0.1);
    }
    atomic_store(&d->phase, PH_STOP);
    if (end > 0) {   /* the window opened */
        out->elapsed_s = now_s() - measure_start;
        out->cpu_s = cpu_s() - cpu0;
    }
    if (c->progress)
        fputs("\n", stderr);

    int timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
    if (!wait_idle(d, timeout_ms / 1000.0 + DRAIN_MARGIN_S)) {
        snprintf(out->last_msg, sizeof out->last_msg,
                 "%d requests still in flight %.0f s after the stop", atomic_load(&d->in_flight),
                 timeout_ms / 1000.0 + DRAIN_MARGIN_S);
        out->last_error = OKV_ETIMEDOUT;
        return OKV_ETIMEDOUT;   /* the slots stay allocated: completions may still come */
    }
    sale_end(d, end > 0, measure_start, out);
    pthread_mutex_lock(&d->mu);
    for (const thread_stats *s = d->stats; s; s = s->next) {
        histogram_merge(&out->hist, &s->hist);
        out->ok += s->ok;
        out->errors += s->errors;
        out->not_found += s->not_found;
        out->lost += s->lost;
        out->conflicts += s->conflicts;
        out->condition_aborts += s->condition_aborts;
        out->sold_out += s->sold_out;
        out->retries += s->retries;
        for (int i = 0; i < DRIVER_NCAUSES; i++)
            out->by_cause[i] += s->by_cause[i];
        for (int i = 0; i < DRIVER_NCODES; i++)
            out->by_code[i] += s->by_code[i];
        if (s->last_error) {
            out->last_error = s->last_error;
            set_msg(out->last_msg, sizeof out->last_msg, s->last_msg);
        }
    }
    pthread_mutex_unlock(&d->mu);
    round_end(d);
    return all_lost ? OKV_EUNAVAILABLE : OKV_OK;
}

void driver_free(driver *d)
{
    if (!d)
        return;
    round_end(d);
    pthread_cond_destroy(&d->idle);
    pthread_mutex_destroy(&d->mu);
    free(d->part);
    free(d->stock_key);
    free(d->value);
    free(d);
}
