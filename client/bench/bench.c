/*
 * orderkv-bench — load generator for orderkv (through liborderkv) and, with
 * --target etcd, for etcd (through etcd's own gRPC KV API, etcd_kv.h).
 *
 * Each of --clients threads issues one request at a time through one shared
 * client handle (okv_client or etcd_kv, both thread-safe), so --clients is
 * the number of requests in flight. Both targets share everything else: the
 * threads, keys, values, timing, histogram and output; only the two calls
 * in do_put() / do_get() differ. Latency is measured per request from the caller's side;
 * throughput counts only successful requests inside the measured window
 * (after --warmup). Keys are --key-size bytes drawn from --keys distinct keys,
 * uniformly or with a zipfian skew.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "etcd_kv.h"
#include "histogram.h"
#include "orderkv.h"

enum workload { W_PUT, W_GET, W_MIXED };
enum target { T_ORDERKV, T_ETCD };

typedef struct bench_opts {
    enum target target;
    char addr[1024];
    int addr_given;
    char table[65];
    int clients;
    double duration_s;
    double warmup_s;
    enum workload workload;
    int read_pct;          /* mixed: share of gets */
    size_t key_size;
    size_t value_size;
    uint64_t keys;
    int zipf;              /* 0 uniform, 1 zipfian */
    double zipf_theta;
    int json;
    int preload;
    int progress;
    int etcd_serializable;       /* etcd gets: serializable instead of linearizable */
    enum etcd_kv_policy etcd_policy;
    int etcd_flags_given;        /* an --etcd-* flag was used (rejected for orderkv) */
} bench_opts;

typedef struct shared {
    const bench_opts *o;
    okv_client *c;               /* --target orderkv */
    etcd_kv *e;                  /* --target etcd */
    atomic_int phase;            /* 0 warmup, 1 measure, 2 stop */
    _Atomic uint64_t live_ops;   /* for the progress line */
    double zeta_n, alpha, eta;   /* zipfian constants */
} shared;

typedef struct worker {
    shared *s;
    pthread_t th;
    uint64_t rng;
    histogram hist;
    uint64_t ok, errors, not_found;
    int last_error;
    char last_msg[256];
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
static void zipf_init(shared *s)
{
    double theta = s->o->zipf_theta;
    uint64_t n = s->o->keys;
    double zeta = 0, zeta2 = 1.0 + pow(0.5, theta);
    for (uint64_t i = 1; i <= n; i++)
        zeta += 1.0 / pow((double)i, theta);
    s->zeta_n = zeta;
    s->alpha = 1.0 / (1.0 - theta);
    s->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / zeta);
}

static uint64_t next_key(worker *w)
{
    const shared *s = w->s;
    uint64_t n = s->o->keys;
    if (!s->o->zipf)
        return xorshift(&w->rng) % n;
    double u = uniform01(&w->rng), uz = u * s->zeta_n;
    if (uz < 1.0)
        return 0;
    if (uz < 1.0 + pow(0.5, s->o->zipf_theta))
        return 1;
    uint64_t k = (uint64_t)((double)n * pow(s->eta * u - s->eta + 1.0, s->alpha));
    return k < n ? k : n - 1;
}

/* Fixed-size key: "k" + zero-padded number, padded/truncated to key_size. */
static void make_key(char *buf, size_t size, uint64_t k)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "k%019llu", (unsigned long long)k);
    memset(buf, 'x', size);
    size_t take = (size_t)n < size ? (size_t)n : size;
    memcpy(buf + size - take, tmp + (size_t)n - take, take);
}

/* The only target-specific code on the load path. Both return OKV_OK,
 * OKV_ENOTFOUND (gets) or another OKV_E* code. timeout_ms 0: the client's
 * default (5 s for both). */
static int do_put(const shared *s, const char *key, const char *value, int timeout_ms)
{
    const bench_opts *o = s->o;
    if (o->target == T_ETCD)
        return etcd_kv_put(s->e, key, o->key_size, value, o->value_size, timeout_ms);
    return okv_put(s->c, o->table, key, o->key_size, value, o->value_size, NULL, timeout_ms);
}

static int do_get(const shared *s, const char *key)
{
    const bench_opts *o = s->o;
    if (o->target == T_ETCD)
        return etcd_kv_get(s->e, key, o->key_size, 0);
    okv_value *v = NULL;
    int rc = okv_get(s->c, o->table, key, o->key_size, &v, 0);
    okv_value_free(v);
    return rc;
}

/* This thread's message for its last failed call. */
static const char *op_errmsg(const shared *s)
{
    return s->o->target == T_ETCD ? etcd_kv_errmsg() : okv_errmsg(s->c);
}

static const char *target_name(enum target t)
{
    return t == T_ETCD ? "etcd" : "orderkv";
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    shared *s = w->s;
    const bench_opts *o = s->o;
    char *key = malloc(o->key_size);
    char *value = malloc(o->value_size + 1);
    for (size_t i = 0; i < o->value_size; i++)
        value[i] = (char)('a' + xorshift(&w->rng) % 26);
    while (atomic_load(&s->phase) < 2) {
        make_key(key, o->key_size, next_key(w));
        int is_get = o->workload == W_GET ||
                     (o->workload == W_MIXED && (int)(xorshift(&w->rng) % 100) < o->read_pct);
        double t0 = now_s();
        int rc = is_get ? do_get(s, key) : do_put(s, key, value, 0);
        double t1 = now_s();
        atomic_fetch_add(&s->live_ops, 1);
        if (atomic_load(&s->phase) != 1)
            continue;
        if (rc == OKV_OK || (is_get && rc == OKV_ENOTFOUND)) {
            histogram_record(&w->hist, (uint64_t)((t1 - t0) * 1e6));
            w->ok++;
            w->not_found += rc == OKV_ENOTFOUND;
        } else {
            w->errors++;
            w->last_error = rc;
            snprintf(w->last_msg, sizeof w->last_msg, "%s", op_errmsg(s));
        }
    }
    free(key);
    free(value);
    return NULL;
}

static void usage(FILE *f)
{
    fputs("usage: orderkv-bench [options]\n"
          "  -t, --target T         orderkv | etcd (default orderkv)\n"
          "  -a, --addr ADDRS       comma-separated HOST:PORT list (default: orderkv\n"
          "                         $ORDERKV_ADDR or 127.0.0.1:7400; etcd 127.0.0.1:2379)\n"
          "  -c, --clients N        concurrent requests (threads), default 16\n"
          "  -d, --duration SEC     measured time, default 10\n"
          "      --warmup SEC       unmeasured time before, default 1\n"
          "  -w, --workload W       put | get | mixed (default put)\n"
          "      --read-pct P       mixed: percent of gets (default 50)\n"
          "      --key-size B       default 16\n"
          "      --value-size B     default 256\n"
          "      --keys N           distinct keys, default 100000\n"
          "      --dist D           uniform | zipfian (default uniform)\n"
          "      --zipf-theta T     default 0.99\n"
          "      --table T          orderkv table, default orders (etcd: unused)\n"
          "      --preload          put every key once before the run (64 threads)\n"
          "      --no-progress      no live progress line\n"
          "      --json             one JSON object with the results\n"
          "etcd only:\n"
          "      --etcd-serializable  gets are serializable Ranges (local, may be\n"
          "                         stale); default linearizable (ReadIndex)\n"
          "      --etcd-endpoint-policy P  all: round-robin over every endpoint\n"
          "                         (default); first: everything to the first\n",
          f);
}

static int parse(bench_opts *o, int argc, char **argv)
{
    snprintf(o->addr, sizeof o->addr, "%s", getenv("ORDERKV_ADDR") ? getenv("ORDERKV_ADDR") : "127.0.0.1:7400");
    snprintf(o->table, sizeof o->table, "orders");
    o->clients = 16;
    o->duration_s = 10;
    o->warmup_s = 1;
    o->read_pct = 50;
    o->key_size = 16;
    o->value_size = 256;
    o->keys = 100000;
    o->zipf_theta = 0.99;
    o->progress = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(s, l) (strcmp(a, s) == 0 || strcmp(a, l) == 0)
#define NEED() do { if (!v) { fprintf(stderr, "orderkv-bench: %s needs a value\n", a); return -1; } i++; } while (0)
        if (OPT("-h", "--help")) { usage(stdout); exit(0); }
        else if (OPT("-a", "--addr")) { NEED(); snprintf(o->addr, sizeof o->addr, "%s", v); o->addr_given = 1; }
        else if (OPT("-t", "--target")) {
            NEED();
            if (strcmp(v, "orderkv") == 0) o->target = T_ORDERKV;
            else if (strcmp(v, "etcd") == 0) o->target = T_ETCD;
            else { fprintf(stderr, "orderkv-bench: unknown target '%s' (orderkv | etcd)\n", v); return -1; }
        }
        else if (OPT("--etcd-serializable", "--etcd-serializable")) { o->etcd_serializable = 1; o->etcd_flags_given = 1; }
        else if (OPT("--etcd-endpoint-policy", "--etcd-endpoint-policy")) {
            NEED();
            o->etcd_flags_given = 1;
            if (strcmp(v, "all") == 0) o->etcd_policy = ETCD_KV_ENDPOINTS_ALL;
            else if (strcmp(v, "first") == 0) o->etcd_policy = ETCD_KV_ENDPOINTS_FIRST;
            else { fprintf(stderr, "orderkv-bench: unknown endpoint policy '%s' (all | first)\n", v); return -1; }
        }
        else if (OPT("-c", "--clients")) { NEED(); o->clients = atoi(v); }
        else if (OPT("-d", "--duration")) { NEED(); o->duration_s = atof(v); }
        else if (OPT("--warmup", "--warmup")) { NEED(); o->warmup_s = atof(v); }
        else if (OPT("-w", "--workload")) {
            NEED();
            if (strcmp(v, "put") == 0) o->workload = W_PUT;
            else if (strcmp(v, "get") == 0) o->workload = W_GET;
            else if (strcmp(v, "mixed") == 0) o->workload = W_MIXED;
            else { fprintf(stderr, "orderkv-bench: unknown workload '%s'\n", v); return -1; }
        }
        else if (OPT("--read-pct", "--read-pct")) { NEED(); o->read_pct = atoi(v); }
        else if (OPT("--key-size", "--key-size")) { NEED(); o->key_size = (size_t)atol(v); }
        else if (OPT("--value-size", "--value-size")) { NEED(); o->value_size = (size_t)atol(v); }
        else if (OPT("--keys", "--keys")) { NEED(); o->keys = strtoull(v, NULL, 10); }
        else if (OPT("--dist", "--dist")) {
            NEED();
            if (strcmp(v, "uniform") == 0) o->zipf = 0;
            else if (strcmp(v, "zipfian") == 0) o->zipf = 1;
            else { fprintf(stderr, "orderkv-bench: unknown distribution '%s'\n", v); return -1; }
        }
        else if (OPT("--zipf-theta", "--zipf-theta")) { NEED(); o->zipf_theta = atof(v); }
        else if (OPT("--table", "--table")) { NEED(); snprintf(o->table, sizeof o->table, "%s", v); }
        else if (OPT("--preload", "--preload")) o->preload = 1;
        else if (OPT("--no-progress", "--no-progress")) o->progress = 0;
        else if (OPT("--json", "--json")) o->json = 1;
        else { fprintf(stderr, "orderkv-bench: unknown option '%s' (see --help)\n", a); return -1; }
    }
    if (o->clients < 1 || o->clients > 4096 || o->duration_s <= 0 || o->key_size < 1 ||
        o->key_size > OKV_MAX_KEY_LEN || o->value_size > OKV_MAX_VALUE_LEN || o->keys < 2 ||
        o->read_pct < 0 || o->read_pct > 100 || o->zipf_theta <= 0 || o->zipf_theta >= 1) {
        fprintf(stderr, "orderkv-bench: an option is out of range (see --help)\n");
        return -1;
    }
    if (o->etcd_flags_given && o->target != T_ETCD) {
        fprintf(stderr, "orderkv-bench: --etcd-* options need --target etcd\n");
        return -1;
    }
    if (o->target == T_ETCD && !o->addr_given)
        snprintf(o->addr, sizeof o->addr, "127.0.0.1:2379");
    return 0;
}

static const char *workload_name(enum workload w)
{
    return w == W_PUT ? "put" : w == W_GET ? "get" : "mixed";
}

/* Preload: every key is put once, by PRELOAD_THREADS threads (thread i takes
 * keys i, i + PRELOAD_THREADS, ...), whatever --clients is: one thread
 * would need minutes for 100,000 synced puts at ~1 ms each. */
#define PRELOAD_THREADS 64

typedef struct preloader {
    const shared *s;
    pthread_t th;
    uint64_t first;
    int rc;
    char msg[256];
} preloader;

static void *preload_main(void *arg)
{
    preloader *p = arg;
    const bench_opts *o = p->s->o;
    char *key = malloc(o->key_size), *value = malloc(o->value_size + 1);
    memset(value, 'p', o->value_size);
    for (uint64_t k = p->first; k < o->keys && !p->rc; k += PRELOAD_THREADS) {
        make_key(key, o->key_size, k);
        p->rc = do_put(p->s, key, value, 10000);
        if (p->rc)
            snprintf(p->msg, sizeof p->msg, "%s", op_errmsg(p->s));
    }
    free(key);
    free(value);
    return NULL;
}

static int preload(const shared *s)
{
    const bench_opts *o = s->o;
    double t0 = now_s();
    preloader ps[PRELOAD_THREADS];
    memset(ps, 0, sizeof ps);
    int n = o->keys < PRELOAD_THREADS ? (int)o->keys : PRELOAD_THREADS;
    for (int i = 0; i < n; i++) {
        ps[i].s = s;
        ps[i].first = (uint64_t)i;
        pthread_create(&ps[i].th, NULL, preload_main, &ps[i]);
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(ps[i].th, NULL);
        if (ps[i].rc && !rc) {
            fprintf(stderr, "orderkv-bench: preload: %s: %s\n", okv_strerror(ps[i].rc), ps[i].msg);
            rc = -1;
        }
    }
    if (!rc && o->progress)
        fprintf(stderr, "preloaded %llu keys into %s in %.1f s\n", (unsigned long long)o->keys,
                target_name(o->target), now_s() - t0);
    return rc;
}

int main(int argc, char **argv)
{
    bench_opts o;
    memset(&o, 0, sizeof o);
    if (parse(&o, argc, argv))
        return 2;
    shared s;
    memset(&s, 0, sizeof s);
    s.o = &o;
    int rc;
    if (o.target == T_ETCD) {
        etcd_kv_options eo = ETCD_KV_OPTIONS_INIT;
        eo.policy = o.etcd_policy;
        eo.serializable = o.etcd_serializable;
        rc = etcd_kv_connect(&s.e, o.addr, &eo);
        if (rc)
            fprintf(stderr, "orderkv-bench: %s: %s\n", okv_strerror(rc), etcd_kv_errmsg());
    } else {
        rc = okv_connect(&s.c, o.addr, NULL);
        if (rc)
            fprintf(stderr, "orderkv-bench: %s: %s\n", okv_strerror(rc), okv_errmsg(NULL));
    }
    if (rc)
        return 2;
    if (o.preload && preload(&s)) {
        okv_close(s.c);
        etcd_kv_free(s.e);
        return 1;
    }
    if (o.zipf)
        zipf_init(&s);
    worker *ws = calloc((size_t)o.clients, sizeof *ws);
    for (int i = 0; i < o.clients; i++) {
        ws[i].s = &s;
        ws[i].rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1) ^ (uint64_t)time(NULL);
        pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
    }
    double start = now_s();
    double measure_start = start + o.warmup_s, end = measure_start + o.duration_s;
    uint64_t last_ops = 0;
    double last_t = start;
    while (now_s() < end) {
        struct timespec tick = { 0, 100000000L };
        nanosleep(&tick, NULL);
        double t = now_s();
        if (atomic_load(&s.phase) == 0 && t >= measure_start)
            atomic_store(&s.phase, 1);
        if (o.progress && t - last_t >= 1.0) {
            uint64_t ops = atomic_load(&s.live_ops);
            fprintf(stderr, "\r[%5.1fs] %s %10.0f ops/s   ", t - start,
                    t < measure_start ? "warmup " : "measure", (double)(ops - last_ops) / (t - last_t));
            last_ops = ops;
            last_t = t;
        }
    }
    double elapsed = now_s() - measure_start;
    atomic_store(&s.phase, 2);
    histogram all;
    memset(&all, 0, sizeof all);
    uint64_t ok = 0, errors = 0, nf = 0;
    int last_error = 0;
    const char *last_msg = "";
    for (int i = 0; i < o.clients; i++) {
        pthread_join(ws[i].th, NULL);
        histogram_merge(&all, &ws[i].hist);
        ok += ws[i].ok;
        errors += ws[i].errors;
        nf += ws[i].not_found;
        if (ws[i].last_error) {
            last_error = ws[i].last_error;
            last_msg = ws[i].last_msg;
        }
    }
    if (o.progress)
        fputs("\n", stderr);
    double ops_s = (double)ok / elapsed;
    double ms = 1e-3;
    if (o.json) {
        printf("{\"target\":\"%s\",\"workload\":\"%s\",\"clients\":%d,\"duration_s\":%.2f,"
               "\"key_size\":%zu,\"value_size\":%zu,\"keys\":%llu,\"dist\":\"%s\","
               "\"ops\":%llu,\"errors\":%llu,\"not_found\":%llu,\"ops_per_s\":%.1f,"
               "\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f}\n",
               target_name(o.target), workload_name(o.workload), o.clients, elapsed, o.key_size,
               o.value_size, (unsigned long long)o.keys, o.zipf ? "zipfian" : "uniform",
               (unsigned long long)ok,
               (unsigned long long)errors, (unsigned long long)nf, ops_s,
               (double)histogram_quantile(&all, 0.50) * ms, (double)histogram_quantile(&all, 0.95) * ms,
               (double)histogram_quantile(&all, 0.99) * ms, (double)histogram_quantile(&all, 0.999) * ms,
               (double)all.max_us * ms);
    } else {
        printf("%s %s: %d clients, %.1f s, %zu-byte keys, %zu-byte values, %s over %llu keys\n",
               target_name(o.target), workload_name(o.workload), o.clients, elapsed, o.key_size,
               o.value_size, o.zipf ? "zipfian" : "uniform", (unsigned long long)o.keys);
        if (o.target == T_ETCD)
            printf("  etcd: endpoints %s; gets are %s Ranges\n",
                   o.etcd_policy == ETCD_KV_ENDPOINTS_FIRST ? "first only" : "all, round-robin",
                   o.etcd_serializable ? "serializable" : "linearizable");
        printf("  %.0f ops/s (%llu ok, %llu errors)\n", ops_s, (unsigned long long)ok,
               (unsigned long long)errors);
        printf("  latency ms: p50 %.3f  p95 %.3f  p99 %.3f  p999 %.3f  max %.3f\n",
               (double)histogram_quantile(&all, 0.50) * ms, (double)histogram_quantile(&all, 0.95) * ms,
               (double)histogram_quantile(&all, 0.99) * ms, (double)histogram_quantile(&all, 0.999) * ms,
               (double)all.max_us * ms);
    }
    if (errors)
        fprintf(stderr, "orderkv-bench: %llu requests failed; last: %s: %s\n",
                (unsigned long long)errors, okv_strerror(last_error), last_msg);
    free(ws);
    okv_close(s.c);
    etcd_kv_free(s.e);
    return errors && ok == 0 ? 1 : 0;
}
