/*
 * orderkv-bench — load generator for orderkv (through liborderkv) and, with
 * --target etcd, for etcd (through etcd's own gRPC KV API, etcd_kv.h).
 *
 * The load model: --clients N is the number of requests in flight, not a
 * number of threads. The engine (driver.h) starts N requests from the main
 * thread; whenever one completes, on the target's completion thread, it
 * records the latency and starts the next one right there, so N stay in
 * flight with no thread per request. Both targets are driven the same way
 * through their asynchronous calls: liborderkv's okv_put_async /
 * okv_get_async (callbacks on the client's completion thread) and
 * etcd_kv's, which start gRPC core calls on one completion queue served by
 * its own completion thread (--etcd-cq-threads). Everything else is shared:
 * keys, values, phases, histogram and output; only the two small adapters
 * below differ, so a difference in the numbers is a difference in the
 * servers (and in the client libraries).
 *
 * Latency is measured per request from submit to completion on the
 * monotonic clock; throughput counts only successful requests that
 * complete inside the measured window (after --warmup). Keys are --key-size
 * bytes drawn from --keys distinct keys, uniformly or with a zipfian skew.
 * The tool reports its own CPU time (getrusage, user + system, all of its
 * threads) over the measured window, since it shares the machine with the
 * servers it measures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver.h"
#include "etcd_kv.h"
#include "histogram.h"
#include "orderkv.h"

enum target { T_ORDERKV, T_ETCD };

typedef struct bench_opts {
    enum target target;
    char addr[1024];
    int addr_given;
    char table[65];
    int clients;                 /* requests in flight */
    double duration_s;
    double warmup_s;
    enum driver_workload workload;
    int read_pct;          /* mixed: share of gets */
    size_t key_size;
    char key_prefix[64];
    size_t value_size;
    uint64_t keys;
    int zipf;              /* 0 uniform, 1 zipfian */
    double zipf_theta;
    int json;
    int preload;
    int progress;
    int etcd_serializable;       /* etcd gets: serializable instead of linearizable */
    enum etcd_kv_policy etcd_policy;
    int etcd_cq_threads;         /* etcd_kv completion threads */
    int etcd_flags_given;        /* an --etcd-* flag was used (rejected for orderkv) */
} bench_opts;

/* What the target adapters need. */
typedef struct bench {
    const bench_opts *o;
    okv_client *c;               /* --target orderkv */
    etcd_kv *e;                  /* --target etcd */
} bench;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *target_name(enum target t)
{
    return t == T_ETCD ? "etcd" : "orderkv";
}

/* ---- the two targets: the only target-specific code on the load path ---- */

/* liborderkv runs this on its completion thread; r is valid only here. */
static void okv_done(void *arg, const okv_result *r)
{
    driver_complete(arg, okv_result_code(r), okv_result_errmsg(r));
}

static int okv_start_put(void *ctx, driver_req *req, const void *key, size_t key_len,
                         const void *value, size_t value_len, int timeout_ms)
{
    const bench *b = ctx;
    return okv_put_async(b->c, b->o->table, key, key_len, value, value_len, timeout_ms, okv_done,
                         req);
}

static int okv_start_get(void *ctx, driver_req *req, const void *key, size_t key_len,
                         int timeout_ms)
{
    const bench *b = ctx;
    return okv_get_async(b->c, b->o->table, key, key_len, timeout_ms, okv_done, req);
}

static const char *okv_start_errmsg(void *ctx)
{
    const bench *b = ctx;
    return okv_errmsg(b->c);
}

/* etcd_kv runs this on its completion thread. */
static void etcd_done(void *arg, int code, const char *errmsg)
{
    driver_complete(arg, code, errmsg);
}

static int etcd_start_put(void *ctx, driver_req *req, const void *key, size_t key_len,
                          const void *value, size_t value_len, int timeout_ms)
{
    const bench *b = ctx;
    return etcd_kv_put_async(b->e, key, key_len, value, value_len, timeout_ms, etcd_done, req);
}

static int etcd_start_get(void *ctx, driver_req *req, const void *key, size_t key_len,
                          int timeout_ms)
{
    const bench *b = ctx;
    return etcd_kv_get_async(b->e, key, key_len, timeout_ms, etcd_done, req);
}

static const char *etcd_start_errmsg(void *ctx)
{
    (void)ctx;
    return etcd_kv_errmsg();
}

static void usage(FILE *f)
{
    fputs("usage: orderkv-bench [options]\n"
          "  -t, --target T         orderkv | etcd (default orderkv)\n"
          "  -a, --addr ADDRS       comma-separated HOST:PORT list (default: orderkv\n"
          "                         $ORDERKV_ADDR or 127.0.0.1:7400; etcd 127.0.0.1:2379)\n"
          "  -c, --clients N        requests in flight (not threads), default 16\n"
          "  -d, --duration SEC     measured time, default 10\n"
          "      --warmup SEC       unmeasured time before, default 1\n"
          "  -w, --workload W       put | get | mixed (default put)\n"
          "      --read-pct P       mixed: percent of gets (default 50)\n"
          "      --key-size B       default 16\n"
          "      --key-prefix P     keys are P/...: every request to one partition\n"
          "      --value-size B     default 256\n"
          "      --keys N           distinct keys, default 100000\n"
          "      --dist D           uniform | zipfian (default uniform)\n"
          "      --zipf-theta T     default 0.99\n"
          "      --table T          orderkv table, default orders (etcd: unused)\n"
          "      --preload          put every key once before the run (64 in flight)\n"
          "      --no-progress      no live progress line\n"
          "      --json             one JSON object with the results\n"
          "etcd only:\n"
          "      --etcd-serializable  gets are serializable Ranges (local, may be\n"
          "                         stale); default linearizable (ReadIndex)\n"
          "      --etcd-endpoint-policy P  all: round-robin over every endpoint\n"
          "                         (default); first: everything to the first\n"
          "      --etcd-cq-threads N  threads serving etcd_kv's completion queue\n"
          "                         (default 1, at most 8)\n",
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
    o->etcd_cq_threads = 1;
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
        else if (OPT("--etcd-cq-threads", "--etcd-cq-threads")) {
            NEED();
            o->etcd_flags_given = 1;
            o->etcd_cq_threads = atoi(v);
            if (o->etcd_cq_threads < 1 || o->etcd_cq_threads > 8) {
                fprintf(stderr, "orderkv-bench: --etcd-cq-threads must be 1..8\n");
                return -1;
            }
        }
        else if (OPT("-c", "--clients")) { NEED(); o->clients = atoi(v); }
        else if (OPT("-d", "--duration")) { NEED(); o->duration_s = atof(v); }
        else if (OPT("--warmup", "--warmup")) { NEED(); o->warmup_s = atof(v); }
        else if (OPT("-w", "--workload")) {
            NEED();
            if (strcmp(v, "put") == 0) o->workload = DRIVER_PUT;
            else if (strcmp(v, "get") == 0) o->workload = DRIVER_GET;
            else if (strcmp(v, "mixed") == 0) o->workload = DRIVER_MIXED;
            else { fprintf(stderr, "orderkv-bench: unknown workload '%s'\n", v); return -1; }
        }
        else if (OPT("--read-pct", "--read-pct")) { NEED(); o->read_pct = atoi(v); }
        else if (OPT("--key-size", "--key-size")) { NEED(); o->key_size = (size_t)atol(v); }
        else if (OPT("--key-prefix", "--key-prefix")) {
            NEED();
            if (strlen(v) + 1 >= sizeof o->key_prefix || strchr(v, '/')) {
                fprintf(stderr, "orderkv-bench: --key-prefix must be under 63 bytes, without '/'\n");
                return -1;
            }
            snprintf(o->key_prefix, sizeof o->key_prefix, "%s", v);
        }
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
    if (o->key_prefix[0] && o->key_size < strlen(o->key_prefix) + 2) {
        fprintf(stderr, "orderkv-bench: --key-size must leave room after --key-prefix and '/'\n");
        return -1;
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

static const char *workload_name(enum driver_workload w)
{
    return w == DRIVER_PUT ? "put" : w == DRIVER_GET ? "get" : "mixed";
}

/* Preload: every key is put once, PRELOAD_IN_FLIGHT at a time whatever
 * --clients is: one at a time would need minutes for 100,000 synced puts
 * at ~1 ms each. */
#define PRELOAD_IN_FLIGHT 64
#define PRELOAD_TIMEOUT_MS 10000

static int preload(driver *d, const bench_opts *o)
{
    double t0 = now_s();
    char msg[256];
    int rc = driver_preload(d, PRELOAD_IN_FLIGHT, PRELOAD_TIMEOUT_MS, msg, sizeof msg);
    if (rc) {
        fprintf(stderr, "orderkv-bench: preload: %s: %s\n", okv_strerror(rc), msg);
        return -1;
    }
    if (o->progress)
        fprintf(stderr, "preloaded %llu keys into %s in %.1f s\n", (unsigned long long)o->keys,
                target_name(o->target), now_s() - t0);
    return 0;
}

static void report(const bench_opts *o, const driver_result *r)
{
    const histogram *h = &r->hist;
    double ops_s = r->elapsed_s > 0 ? (double)r->ok / r->elapsed_s : 0;
    double cpu_us_op = r->ok ? r->cpu_s * 1e6 / (double)r->ok : 0;
    double ms = 1e-3;
    if (o->json) {
        printf("{\"target\":\"%s\",\"workload\":\"%s\",\"clients\":%d,\"duration_s\":%.2f,"
               "\"key_size\":%zu,\"value_size\":%zu,\"keys\":%llu,\"dist\":\"%s\","
               "\"ops\":%llu,\"errors\":%llu,\"not_found\":%llu,\"ops_per_s\":%.1f,"
               "\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
               "\"cpu_s\":%.3f,\"cpu_us_per_op\":%.1f}\n",
               target_name(o->target), workload_name(o->workload), o->clients, r->elapsed_s,
               o->key_size, o->value_size, (unsigned long long)o->keys,
               o->zipf ? "zipfian" : "uniform", (unsigned long long)r->ok,
               (unsigned long long)r->errors, (unsigned long long)r->not_found, ops_s,
               (double)histogram_quantile(h, 0.50) * ms, (double)histogram_quantile(h, 0.95) * ms,
               (double)histogram_quantile(h, 0.99) * ms, (double)histogram_quantile(h, 0.999) * ms,
               (double)h->max_us * ms, r->cpu_s, cpu_us_op);
        return;
    }
    printf("%s %s: %d in flight, %.1f s, %zu-byte keys, %zu-byte values, %s over %llu keys\n",
           target_name(o->target), workload_name(o->workload), o->clients, r->elapsed_s,
           o->key_size, o->value_size, o->zipf ? "zipfian" : "uniform",
           (unsigned long long)o->keys);
    if (o->target == T_ETCD)
        printf("  etcd: endpoints %s; gets are %s Ranges\n",
               o->etcd_policy == ETCD_KV_ENDPOINTS_FIRST ? "first only" : "all, round-robin",
               o->etcd_serializable ? "serializable" : "linearizable");
    printf("  %.0f ops/s (%llu ok, %llu errors)\n", ops_s, (unsigned long long)r->ok,
           (unsigned long long)r->errors);
    printf("  latency ms: p50 %.3f  p95 %.3f  p99 %.3f  p999 %.3f  max %.3f\n",
           (double)histogram_quantile(h, 0.50) * ms, (double)histogram_quantile(h, 0.95) * ms,
           (double)histogram_quantile(h, 0.99) * ms, (double)histogram_quantile(h, 0.999) * ms,
           (double)h->max_us * ms);
    printf("  bench cpu: %.2f s user+sys over the window (%.0f%% of a core), %.1f us per op\n",
           r->cpu_s, r->elapsed_s > 0 ? 100.0 * r->cpu_s / r->elapsed_s : 0.0, cpu_us_op);
}

static void close_target(bench *b)
{
    okv_close(b->c);
    etcd_kv_free(b->e);
    b->c = NULL;
    b->e = NULL;
}

int main(int argc, char **argv)
{
    bench_opts o;
    memset(&o, 0, sizeof o);
    if (parse(&o, argc, argv))
        return 2;
    bench b = { &o, NULL, NULL };
    driver_target t;
    int rc;
    if (o.target == T_ETCD) {
        etcd_kv_options eo = ETCD_KV_OPTIONS_INIT;
        eo.policy = o.etcd_policy;
        eo.serializable = o.etcd_serializable;
        eo.completion_threads = o.etcd_cq_threads;
        rc = etcd_kv_connect(&b.e, o.addr, &eo);
        if (rc)
            fprintf(stderr, "orderkv-bench: %s: %s\n", okv_strerror(rc), etcd_kv_errmsg());
        t = (driver_target){ &b, etcd_start_put, etcd_start_get, etcd_start_errmsg };
    } else {
        rc = okv_connect(&b.c, o.addr, NULL);
        if (rc)
            fprintf(stderr, "orderkv-bench: %s: %s\n", okv_strerror(rc), okv_errmsg(NULL));
        t = (driver_target){ &b, okv_start_put, okv_start_get, okv_start_errmsg };
    }
    if (rc)
        return 2;
    driver_config cfg = {
        .in_flight = o.clients, .warmup_s = o.warmup_s, .duration_s = o.duration_s,
        .workload = o.workload, .read_pct = o.read_pct, .key_size = o.key_size,
        .key_prefix = o.key_prefix,
        .value_size = o.value_size, .keys = o.keys, .zipf = o.zipf,
        .zipf_theta = o.zipf_theta, .timeout_ms = 0, .progress = o.progress,
    };
    driver *d = NULL;
    rc = driver_new(&d, &cfg, &t);
    if (rc) {
        fprintf(stderr, "orderkv-bench: %s\n", okv_strerror(rc));
        close_target(&b);
        return 2;
    }
    if (o.preload && preload(d, &o)) {
        close_target(&b);
        driver_free(d);
        return 1;
    }
    driver_result *r = calloc(1, sizeof *r);
    if (!r) {
        fputs("orderkv-bench: out of memory\n", stderr);
        return 1;
    }
    rc = driver_run(d, r);
    if (rc == OKV_ETIMEDOUT) {
        /* Requests are still in flight: closing the client would wait for
         * them, and freeing the driver would pull their slots away. */
        fprintf(stderr, "orderkv-bench: %s\n", r->last_msg);
        fflush(stdout);
        _Exit(1);
    }
    if (rc)
        fprintf(stderr, "orderkv-bench: every request slot stopped: %s: %s\n",
                okv_strerror(r->last_error), r->last_msg);
    else
        report(&o, r);
    if (r->lost && !rc)
        fprintf(stderr, "orderkv-bench: %llu of %d requests in flight stopped early: a submit failed\n",
                (unsigned long long)r->lost, o.clients);
    if (r->errors || r->lost)
        fprintf(stderr, "orderkv-bench: %llu requests failed; last: %s: %s\n",
                (unsigned long long)r->errors, okv_strerror(r->last_error), r->last_msg);
    int status = rc || (r->errors && r->ok == 0) ? 1 : 0;
    close_target(&b);
    driver_free(d);
    free(r);
    return status;
}
