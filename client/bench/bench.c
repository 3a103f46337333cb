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
 *
 * --workload transfer: bank transfers across partitions. Every key is an
 * account (--keys, default 10,000, in table `accounts`) holding an 8-byte
 * counter set to --balance first; each request moves 1 from one account to
 * another, in a different partition for orderkv. Each target does it the
 * way its users would: orderkv in one transaction (okv_txn_commit_async:
 * add_floor(from, -1, floor 0), add(to, +1); two-phase commit across the
 * two partitions); etcd in two calls chained on the completion thread, a
 * read of both accounts (one read-only Txn of two Ranges) and then a Txn
 * comparing both keys' mod_revision with what the read saw and putting
 * both new balances. A transfer that does not commit (a lock, a changed
 * key, no funds) is counted by cause and not retried, on both targets.
 * --verify sums every balance after the run.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver.h"
#include "etcd_kv.h"
#include "hash.h"
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
    int keys_given;
    int table_given;
    int64_t balance;       /* transfer: every account's starting balance */
    int verify;            /* transfer: sum every balance after the run */
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
    uint32_t partitions;         /* orderkv transfer: the table's partition count */
    int etcd_timeout_ms;         /* etcd: a call's deadline when the driver passes 0 */
} bench;

/* A transfer moves this much. */
#define TRANSFER_AMOUNT 1

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

/* Why a transaction did not commit, from its outcome. */
static int okv_cause(const okv_result *r, int code)
{
    if (code != OKV_ECONFLICT && code != OKV_ECONDITION)
        return DRIVER_CAUSE_NONE;
    okv_txn_outcome o;
    okv_result_txn_outcome(r, &o);
    if (code == OKV_ECONFLICT)
        return o.reason == OKV_TXN_LOCKED ? DRIVER_CAUSE_LOCKED : DRIVER_CAUSE_ABORTED;
    return o.reason == OKV_TXN_FLOOR ? DRIVER_CAUSE_FLOOR : DRIVER_CAUSE_CONDITION;
}

/* Committed transfers that reported a version: only a transaction within
 * one partition does (one across partitions reports 0), so any here means
 * okv_partition placed two accounts apart that the cluster keeps together.
 * Reported, never expected. */
static _Atomic uint64_t okv_one_partition_commits;

static void okv_transfer_done(void *arg, const okv_result *r)
{
    int code = okv_result_code(r);
    if (code == OKV_OK) {
        okv_txn_outcome o;
        okv_result_txn_outcome(r, &o);
        if (o.version != 0)
            atomic_fetch_add_explicit(&okv_one_partition_commits, 1, memory_order_relaxed);
    }
    driver_complete_cause(arg, code, okv_cause(r, code), okv_result_errmsg(r));
}

/* One transaction; the debit comes first, so the payer's partition
 * coordinates the two-phase commit. */
static int okv_start_transfer(void *ctx, driver_req *req, const void *from, const void *to,
                              size_t key_len, int64_t amount, int timeout_ms)
{
    const bench *b = ctx;
    okv_txn_req *t;
    int rc = okv_txn_req_new(&t);
    if (rc)
        return rc;
    rc = okv_txn_req_add_floor(t, b->o->table, from, key_len, -amount, 0);
    if (rc == OKV_OK)
        rc = okv_txn_req_add(t, b->o->table, to, key_len, amount);
    if (rc == OKV_OK)
        rc = okv_txn_commit_async(b->c, t, timeout_ms, okv_transfer_done, req);
    okv_txn_req_free(t);
    return rc;
}

static void okv_read_done(void *arg, const okv_result *r)
{
    size_t len = 0;
    const void *v = okv_result_value(r, &len);
    driver_complete_value(arg, okv_result_code(r), okv_result_errmsg(r), v, len);
}

static int okv_start_read(void *ctx, driver_req *req, const void *key, size_t key_len,
                          int timeout_ms)
{
    const bench *b = ctx;
    return okv_get_async(b->c, b->o->table, key, key_len, timeout_ms, okv_read_done, req);
}

/* As orderkvd places keys: the hash of the part before the first '/',
 * modulo the table's partitions (client_route.c, common/hash.h). */
static uint32_t okv_partition(void *ctx, const void *key, size_t key_len)
{
    const bench *b = ctx;
    const char *slash = memchr(key, '/', key_len);
    size_t pk = slash ? (size_t)(slash - (const char *)key) : key_len;
    return (uint32_t)(okv_hash64(key, pk) % b->partitions);
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

/* An etcd transfer is a chain of two calls (driver.h): the read's
 * completion starts the compare-and-swap. What the second call needs from
 * the first request lives in the slot's state. */
typedef struct etcd_transfer {
    const bench *b;
    const void *from, *to;       /* the slot's keys: unchanged until driver_complete */
    size_t key_len;
    int64_t amount;
    double deadline;             /* the whole chain's, monotonic seconds */
} etcd_transfer;

static void etcd_transfer_cas_done(void *arg, int code, const char *errmsg)
{
    int cause = code == OKV_ECONFLICT ? DRIVER_CAUSE_CHANGED : DRIVER_CAUSE_NONE;
    driver_complete_cause(arg, code, cause, errmsg);
}

/* On etcd_kv's completion thread: check the funds the read saw, then swap
 * both balances if neither key changed since. Never waits: the Txn is
 * started and its own completion ends the request. */
static void etcd_transfer_read_done(void *arg, int code, const char *errmsg,
                                    const etcd_kv_kv *kvs, size_t n)
{
    driver_req *req = arg;
    const etcd_transfer *x = driver_req_state(req);
    if (code != OKV_OK) {
        driver_complete(req, code, errmsg);
        return;
    }
    int64_t from_bal, to_bal;
    if (n != 2 || !kvs[0].found || !kvs[1].found) {
        driver_complete(req, OKV_ENOTFOUND, "an account does not exist (not preloaded?)");
        return;
    }
    if (okv_counter_decode(kvs[0].value, kvs[0].value_len, &from_bal) != OKV_OK ||
        okv_counter_decode(kvs[1].value, kvs[1].value_len, &to_bal) != OKV_OK) {
        driver_complete(req, OKV_EINVAL, "an account does not hold an 8-byte balance");
        return;
    }
    /* What add_floor(from, -amount, 0) refuses in orderkv. */
    if (from_bal < x->amount) {
        driver_complete_cause(req, OKV_ECONDITION, DRIVER_CAUSE_FLOOR, "insufficient funds");
        return;
    }
    if (to_bal > INT64_MAX - x->amount) {
        driver_complete(req, OKV_EINVAL, "the payee's balance would overflow");
        return;
    }
    uint8_t nf[8], nt[8];
    okv_counter_encode(from_bal - x->amount, nf);
    okv_counter_encode(to_bal + x->amount, nt);
    etcd_kv_cas items[2] = {
        { x->from, x->key_len, kvs[0].mod_revision, nf, sizeof nf },
        { x->to, x->key_len, kvs[1].mod_revision, nt, sizeof nt },
    };
    double left_ms = (x->deadline - now_s()) * 1e3;
    if (left_ms < 1) {
        driver_complete(req, OKV_ETIMEDOUT, "the transfer's deadline passed after the read");
        return;
    }
    int rc = etcd_kv_cas_async(x->b->e, items, 2, (int)left_ms, etcd_transfer_cas_done, req);
    if (rc != OKV_OK)   /* not started: this completion ends the request */
        driver_complete(req, rc, etcd_kv_errmsg());
}

static int etcd_start_transfer(void *ctx, driver_req *req, const void *from, const void *to,
                               size_t key_len, int64_t amount, int timeout_ms)
{
    const bench *b = ctx;
    etcd_transfer *x = driver_req_state(req);
    int ms = timeout_ms > 0 ? timeout_ms : b->etcd_timeout_ms;
    *x = (etcd_transfer){ b, from, to, key_len, amount, now_s() + ms / 1e3 };
    const void *keys[2] = { from, to };
    const size_t lens[2] = { key_len, key_len };
    return etcd_kv_read_async(b->e, keys, lens, 2, ms, etcd_transfer_read_done, req);
}

static void etcd_read_done(void *arg, int code, const char *errmsg, const etcd_kv_kv *kvs,
                           size_t n)
{
    if (code == OKV_OK && (n != 1 || !kvs[0].found))
        code = OKV_ENOTFOUND;
    driver_complete_value(arg, code, errmsg, code == OKV_OK ? kvs[0].value : NULL,
                          code == OKV_OK ? kvs[0].value_len : 0);
}

static int etcd_start_read(void *ctx, driver_req *req, const void *key, size_t key_len,
                           int timeout_ms)
{
    const bench *b = ctx;
    return etcd_kv_read_async(b->e, &key, &key_len, 1, timeout_ms, etcd_read_done, req);
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
          "  -w, --workload W       put | get | mixed | transfer (default put)\n"
          "      --read-pct P       mixed: percent of gets (default 50)\n"
          "      --key-size B       default 16\n"
          "      --key-prefix P     keys are P/...: every request to one partition\n"
          "      --value-size B     default 256\n"
          "      --keys N           distinct keys, default 100000 (transfer: 10000)\n"
          "      --dist D           uniform | zipfian (default uniform)\n"
          "      --zipf-theta T     default 0.99\n"
          "      --table T          orderkv table, default orders; transfer: accounts\n"
          "                         (etcd: unused)\n"
          "      --preload          put every key once before the run (64 in flight;\n"
          "                         transfer always sets every balance first)\n"
          "      --no-progress      no live progress line\n"
          "      --json             one JSON object with the results\n"
          "transfer only (one transfer moves 1 between two accounts; orderkv: one\n"
          "transaction across two partitions; etcd: a read of both, then a Txn\n"
          "comparing both mod_revisions):\n"
          "      --balance N        every account's starting balance (default 1000000)\n"
          "      --verify           after the run, read every account back and check\n"
          "                         that the balances still sum to keys x balance\n"
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
    o->balance = 1000000;
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
            else if (strcmp(v, "transfer") == 0) o->workload = DRIVER_TRANSFER;
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
        else if (OPT("--keys", "--keys")) { NEED(); o->keys = strtoull(v, NULL, 10); o->keys_given = 1; }
        else if (OPT("--balance", "--balance")) { NEED(); o->balance = strtoll(v, NULL, 10); }
        else if (OPT("--verify", "--verify")) o->verify = 1;
        else if (OPT("--dist", "--dist")) {
            NEED();
            if (strcmp(v, "uniform") == 0) o->zipf = 0;
            else if (strcmp(v, "zipfian") == 0) o->zipf = 1;
            else { fprintf(stderr, "orderkv-bench: unknown distribution '%s'\n", v); return -1; }
        }
        else if (OPT("--zipf-theta", "--zipf-theta")) { NEED(); o->zipf_theta = atof(v); }
        else if (OPT("--table", "--table")) { NEED(); snprintf(o->table, sizeof o->table, "%s", v); o->table_given = 1; }
        else if (OPT("--preload", "--preload")) o->preload = 1;
        else if (OPT("--no-progress", "--no-progress")) o->progress = 0;
        else if (OPT("--json", "--json")) o->json = 1;
        else { fprintf(stderr, "orderkv-bench: unknown option '%s' (see --help)\n", a); return -1; }
    }
    if (o->workload == DRIVER_TRANSFER) {
        if (!o->keys_given)
            o->keys = 10000;
        if (!o->table_given)
            snprintf(o->table, sizeof o->table, "accounts");
        if (o->key_prefix[0]) {
            fprintf(stderr, "orderkv-bench: --key-prefix puts every account in one partition; "
                            "transfer needs them spread\n");
            return -1;
        }
        if (o->balance < 0) {
            fprintf(stderr, "orderkv-bench: --balance must be >= 0\n");
            return -1;
        }
    } else if (o->verify) {
        fprintf(stderr, "orderkv-bench: --verify needs --workload transfer\n");
        return -1;
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
    return w == DRIVER_PUT     ? "put"
           : w == DRIVER_GET   ? "get"
           : w == DRIVER_MIXED ? "mixed"
                               : "transfer";
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
    if (o->progress && o->workload == DRIVER_TRANSFER)
        fprintf(stderr, "set %llu accounts to %" PRId64 " in %s in %.1f s\n",
                (unsigned long long)o->keys, o->balance, target_name(o->target), now_s() - t0);
    else if (o->progress)
        fprintf(stderr, "preloaded %llu keys into %s in %.1f s\n", (unsigned long long)o->keys,
                target_name(o->target), now_s() - t0);
    return 0;
}

/* --verify: the sum of every balance, read back once the run is over. */
typedef struct verify_result {
    int done;                    /* the pass ran to the end */
    int code;                    /* its failure, if not */
    char msg[256];
    driver_sum s;
    int64_t expected;            /* keys x balance */
    int ok;                      /* every account found, the sum as expected */
} verify_result;

static void verify(driver *d, const bench_opts *o, verify_result *v)
{
    memset(v, 0, sizeof *v);
    v->expected = (int64_t)o->keys * o->balance;
    v->code = driver_verify(d, PRELOAD_IN_FLIGHT, PRELOAD_TIMEOUT_MS, &v->s, v->msg, sizeof v->msg);
    v->done = v->code == OKV_OK;
    v->ok = v->done && v->s.found == o->keys && v->s.sum == v->expected;
}

/* orderkv transfer: the table's partition count, from the cluster's status,
 * so that accounts are placed as orderkvd places them. */
static int table_partitions(bench *b)
{
    okv_status *s = NULL;
    int rc = okv_status_get(b->c, &s, 5000);
    if (rc) {
        fprintf(stderr, "orderkv-bench: status: %s: %s\n", okv_strerror(rc), okv_errmsg(b->c));
        return rc;
    }
    for (size_t i = 0; i < okv_status_table_count(s); i++)
        if (strcmp(okv_status_table_name(s, i), b->o->table) == 0)
            b->partitions = okv_status_table_partitions(s, i);
    okv_status_free(s);
    if (b->partitions == 0) {
        fprintf(stderr, "orderkv-bench: the cluster has no table '%s'\n", b->o->table);
        return OKV_ENOTFOUND;
    }
    if (b->partitions < 2) {
        fprintf(stderr, "orderkv-bench: table '%s' has one partition: no transfer can cross two\n",
                b->o->table);
        return OKV_EINVAL;
    }
    return OKV_OK;
}

static uint64_t attempts(const driver_result *r)
{
    return r->ok + r->conflicts + r->condition_aborts + r->errors;
}

/* slot i of by_code is code -i; the last slot is every other code. */
static int slot_code(int i)
{
    return i < DRIVER_NCODES - 1 ? -i : 1;
}

static void json_transfer(const bench_opts *o, const bench *b, const driver_result *r,
                          const verify_result *v)
{
    uint64_t n = attempts(r);
    printf(",\"committed\":%llu,\"conflicts\":%llu,\"conflict_rate\":%.6f,"
           "\"condition_aborts\":%llu,\"attempts\":%llu,\"balance\":%" PRId64 ",\"amount\":%d",
           (unsigned long long)r->ok, (unsigned long long)r->conflicts,
           n ? (double)r->conflicts / (double)n : 0.0, (unsigned long long)r->condition_aborts,
           (unsigned long long)n, o->balance, TRANSFER_AMOUNT);
    if (o->target == T_ORDERKV)
        printf(",\"partitions\":%u,\"one_partition_commits\":%llu", b->partitions,
               (unsigned long long)atomic_load(&okv_one_partition_commits));
    printf(",\"aborts\":{");
    for (int i = 1; i < DRIVER_NCAUSES; i++)
        printf("%s\"%s\":%llu", i > 1 ? "," : "", driver_cause_name(i),
               (unsigned long long)r->by_cause[i]);
    printf("}");
    if (v)
        printf(",\"verify\":{\"ok\":%s,\"done\":%s,\"sum\":%" PRId64 ",\"expected\":%" PRId64
               ",\"found\":%llu,\"missing\":%llu,\"not_counter\":%llu}",
               v->ok ? "true" : "false", v->done ? "true" : "false", v->s.sum, v->expected,
               (unsigned long long)v->s.found, (unsigned long long)v->s.missing,
               (unsigned long long)v->s.not_counter);
}

static void text_transfer(const bench_opts *o, const driver_result *r)
{
    uint64_t n = attempts(r);
    printf("  %.0f committed transfers/s (%llu committed, %llu conflicts, %llu condition aborts, "
           "%llu errors)\n",
           r->elapsed_s > 0 ? (double)r->ok / r->elapsed_s : 0.0, (unsigned long long)r->ok,
           (unsigned long long)r->conflicts, (unsigned long long)r->condition_aborts,
           (unsigned long long)r->errors);
    printf("  conflict rate %.3f%% of %llu attempts; aborts by cause:",
           n ? 100.0 * (double)r->conflicts / (double)n : 0.0, (unsigned long long)n);
    int any = 0;
    for (int i = 1; i < DRIVER_NCAUSES; i++)
        if (r->by_cause[i]) {
            printf(" %s %llu", driver_cause_name(i), (unsigned long long)r->by_cause[i]);
            any = 1;
        }
    printf("%s\n", any ? "" : " none");
}

static void text_verify(const bench_opts *o, const verify_result *v)
{
    if (!v->done) {
        printf("  verify: FAILED to read every account: %s: %s\n", okv_strerror(v->code), v->msg);
        return;
    }
    printf("  verify: %llu accounts sum to %" PRId64 ", expected %llu x %" PRId64 " = %" PRId64
           ": %s",
           (unsigned long long)v->s.found, v->s.sum, (unsigned long long)o->keys, o->balance,
           v->expected, v->ok ? "OK" : "MISMATCH");
    if (v->s.missing || v->s.not_counter)
        printf(" (%llu missing, %llu not an 8-byte balance)", (unsigned long long)v->s.missing,
               (unsigned long long)v->s.not_counter);
    printf("\n");
}

static void report(const bench_opts *o, const bench *b, const driver_result *r,
                   const verify_result *v)
{
    const histogram *h = &r->hist;
    int transfer = o->workload == DRIVER_TRANSFER;
    size_t value_size = transfer ? 8 : o->value_size;
    double ops_s = r->elapsed_s > 0 ? (double)r->ok / r->elapsed_s : 0;
    double cpu_us_op = r->ok ? r->cpu_s * 1e6 / (double)r->ok : 0;
    double ms = 1e-3;
    if (o->json) {
        printf("{\"target\":\"%s\",\"workload\":\"%s\",\"clients\":%d,\"duration_s\":%.2f,"
               "\"key_size\":%zu,\"value_size\":%zu,\"keys\":%llu,\"dist\":\"%s\","
               "\"ops\":%llu,\"errors\":%llu,\"not_found\":%llu,\"ops_per_s\":%.1f,"
               "\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
               "\"cpu_s\":%.3f,\"cpu_us_per_op\":%.1f",
               target_name(o->target), workload_name(o->workload), o->clients, r->elapsed_s,
               o->key_size, value_size, (unsigned long long)o->keys,
               o->zipf ? "zipfian" : "uniform", (unsigned long long)r->ok,
               (unsigned long long)r->errors, (unsigned long long)r->not_found, ops_s,
               (double)histogram_quantile(h, 0.50) * ms, (double)histogram_quantile(h, 0.95) * ms,
               (double)histogram_quantile(h, 0.99) * ms, (double)histogram_quantile(h, 0.999) * ms,
               (double)h->max_us * ms, r->cpu_s, cpu_us_op);
        printf(",\"errors_by_code\":[");
        for (int i = 0, first = 1; i < DRIVER_NCODES; i++)
            if (r->by_code[i]) {
                printf("%s{\"code\":%d,\"name\":\"%s\",\"count\":%llu}", first ? "" : ",",
                       slot_code(i), i < DRIVER_NCODES - 1 ? okv_strerror(slot_code(i)) : "other",
                       (unsigned long long)r->by_code[i]);
                first = 0;
            }
        printf("]");
        if (transfer)
            json_transfer(o, b, r, v);
        printf("}\n");
        return;
    }
    if (transfer) {
        printf("%s transfer: %d in flight, %.1f s, %zu-byte keys, %s over %llu accounts",
               target_name(o->target), o->clients, r->elapsed_s, o->key_size,
               o->zipf ? "zipfian" : "uniform", (unsigned long long)o->keys);
        if (o->target == T_ORDERKV)
            printf(" in table %s (%u partitions; payer and payee always in different ones)\n",
                   o->table, b->partitions);
        else
            printf("\n");
    } else {
        printf("%s %s: %d in flight, %.1f s, %zu-byte keys, %zu-byte values, %s over %llu keys\n",
               target_name(o->target), workload_name(o->workload), o->clients, r->elapsed_s,
               o->key_size, o->value_size, o->zipf ? "zipfian" : "uniform",
               (unsigned long long)o->keys);
    }
    if (o->target == T_ETCD && transfer)
        printf("  etcd: endpoints %s; a transfer is a Txn of two %s Ranges, then a Txn "
               "comparing both mod_revisions and putting both balances\n",
               o->etcd_policy == ETCD_KV_ENDPOINTS_FIRST ? "first only" : "all, round-robin",
               o->etcd_serializable ? "serializable" : "linearizable");
    else if (o->target == T_ETCD)
        printf("  etcd: endpoints %s; gets are %s Ranges\n",
               o->etcd_policy == ETCD_KV_ENDPOINTS_FIRST ? "first only" : "all, round-robin",
               o->etcd_serializable ? "serializable" : "linearizable");
    else if (transfer)
        printf("  orderkv: one transaction per transfer: add_floor(payer, -%d, 0), "
               "add(payee, +%d)\n", TRANSFER_AMOUNT, TRANSFER_AMOUNT);
    if (transfer)
        text_transfer(o, r);
    else
        printf("  %.0f ops/s (%llu ok, %llu errors)\n", ops_s, (unsigned long long)r->ok,
               (unsigned long long)r->errors);
    if (r->errors) {
        printf("  errors by code:");
        for (int i = 0; i < DRIVER_NCODES; i++)
            if (r->by_code[i])
                printf(" %s %llu", i < DRIVER_NCODES - 1 ? okv_strerror(slot_code(i)) : "other",
                       (unsigned long long)r->by_code[i]);
        printf("\n");
    }
    printf("  latency ms%s: p50 %.3f  p95 %.3f  p99 %.3f  p999 %.3f  max %.3f\n",
           transfer ? " (committed)" : "",
           (double)histogram_quantile(h, 0.50) * ms, (double)histogram_quantile(h, 0.95) * ms,
           (double)histogram_quantile(h, 0.99) * ms, (double)histogram_quantile(h, 0.999) * ms,
           (double)h->max_us * ms);
    printf("  bench cpu: %.2f s user+sys over the window (%.0f%% of a core), %.1f us per %s\n",
           r->cpu_s, r->elapsed_s > 0 ? 100.0 * r->cpu_s / r->elapsed_s : 0.0, cpu_us_op,
           transfer ? "committed transfer" : "op");
    uint64_t same = atomic_load(&okv_one_partition_commits);
    if (transfer && same)
        printf("  WARNING: %llu transfers committed within one partition: the bench's partition "
               "of a key is not the cluster's\n", (unsigned long long)same);
    if (v)
        text_verify(o, v);
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
    bench b = { &o, NULL, NULL, 0, 0 };
    driver_target t;
    int rc;
    if (o.target == T_ETCD) {
        etcd_kv_options eo = ETCD_KV_OPTIONS_INIT;
        eo.policy = o.etcd_policy;
        eo.serializable = o.etcd_serializable;
        eo.completion_threads = o.etcd_cq_threads;
        b.etcd_timeout_ms = eo.default_timeout_ms;
        rc = etcd_kv_connect(&b.e, o.addr, &eo);
        if (rc)
            fprintf(stderr, "orderkv-bench: %s: %s\n", okv_strerror(rc), etcd_kv_errmsg());
        t = (driver_target){ &b, etcd_start_put, etcd_start_get, etcd_start_errmsg,
                             etcd_start_transfer, etcd_start_read, NULL, sizeof(etcd_transfer) };
    } else {
        rc = okv_connect(&b.c, o.addr, NULL);
        if (rc)
            fprintf(stderr, "orderkv-bench: %s: %s\n", okv_strerror(rc), okv_errmsg(NULL));
        else if (o.workload == DRIVER_TRANSFER)
            rc = table_partitions(&b);
        t = (driver_target){ &b, okv_start_put, okv_start_get, okv_start_errmsg,
                             okv_start_transfer, okv_start_read, okv_partition, 0 };
    }
    if (rc) {
        close_target(&b);
        return 2;
    }
    uint8_t start_balance[8];
    okv_counter_encode(o.balance, start_balance);
    int transfer = o.workload == DRIVER_TRANSFER;
    driver_config cfg = {
        .in_flight = o.clients, .warmup_s = o.warmup_s, .duration_s = o.duration_s,
        .workload = o.workload, .read_pct = o.read_pct, .key_size = o.key_size,
        .key_prefix = o.key_prefix,
        .value_size = transfer ? sizeof start_balance : o.value_size,
        .fixed_value = transfer ? start_balance : NULL, .amount = TRANSFER_AMOUNT,
        .keys = o.keys, .zipf = o.zipf,
        .zipf_theta = o.zipf_theta, .timeout_ms = 0, .progress = o.progress,
    };
    driver *d = NULL;
    rc = driver_new(&d, &cfg, &t);
    if (rc) {
        fprintf(stderr, "orderkv-bench: %s%s\n", okv_strerror(rc),
                transfer && rc == OKV_EINVAL && t.partition
                    ? ": every account falls in one partition (more --keys?)" : "");
        close_target(&b);
        return 2;
    }
    if ((o.preload || transfer) && preload(d, &o)) {
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
    verify_result v = { 0 };
    if (rc == OKV_OK && o.verify)
        verify(d, &o, &v);
    if (rc)
        fprintf(stderr, "orderkv-bench: every request slot stopped: %s: %s\n",
                okv_strerror(r->last_error), r->last_msg);
    else
        report(&o, &b, r, o.verify ? &v : NULL);
    if (r->lost && !rc)
        fprintf(stderr, "orderkv-bench: %llu of %d requests in flight stopped early: a submit failed\n",
                (unsigned long long)r->lost, o.clients);
    if (r->errors || r->lost)
        fprintf(stderr, "orderkv-bench: %llu requests failed; last: %s: %s\n",
                (unsigned long long)r->errors, okv_strerror(r->last_error), r->last_msg);
    int status = rc || (r->errors && r->ok == 0) || (o.verify && !v.ok) ? 1 : 0;
    close_target(&b);
    driver_free(d);
    free(r);
    return status;
}
