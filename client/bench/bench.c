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
 *
 * --workload cas: conditional writes in one partition, each evaluated by
 * the server in one round: orderkv a one-shot transaction (exists(key),
 * put(key, value)); etcd a Txn (Compare(version(key) > 0), Put(key,
 * value)). Every key is preloaded first, so a failed condition is an error.
 *
 * --workload flash-sale: one stock key (--sku, --stock units) and 256 (or
 * --clients) buyers taking one unit each until it is sold out (driver.h).
 * orderkv: one transaction in the stock's partition, add_floor(stock, -1,
 * floor 0) and a put of the reservation key; sold out is the floor's
 * OKV_ECONDITION. etcd: the compare-and-swap loop an etcd user writes (a
 * Range of the stock, then a Txn comparing its mod_revision and putting
 * the stock less one and the reservation; re-read and retry while the
 * compare fails, within the request's deadline), chained on the completion
 * thread. --verify audits the stock afterwards (flash_sale.h).
 *
 * --workload pay-order (orderkv only): each request places an order and
 * pays it from the customer's account with an idempotency key, a chain of
 * two calls on liborderkv's asynchronous Orders API (pay_order.h); every
 * account is opened and funded first. There is no etcd counterpart: the
 * issue compares paid orders/s with etcd's plain puts/s, which
 * scripts/bench-cluster.sh measures in the same run. --verify checks that
 * the balances and the payments still add up to the deposits.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "driver.h"
#include "etcd_kv.h"
#include "flash_sale.h"
#include "hash.h"
#include "orderkv.h"

/* What the target adapters need. */
typedef struct bench {
    const bench_opts *o;
    okv_client *c;               /* --target orderkv */
    etcd_kv *e;                  /* --target etcd */
    uint32_t partitions;         /* orderkv transfer: the table's partition count */
    int etcd_timeout_ms;         /* etcd: a call's deadline when the driver passes 0 */
    uint32_t run_id;             /* flash sale, pay-order: part of every key / id */
    pay_order pay;               /* orderkv pay-order */
} bench;

/* A flash sale's default stock: more than any run on this machine sells,
 * so the sale ends by time unless --stock asks for a sell-out. */
#define DEFAULT_STOCK 10000000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

/* ---- conditional writes (--workload cas) ---- */

/* One transaction in the key's partition: the condition and the put are
 * checked and applied by the partition's leader in one Raft entry. */
static int okv_start_cas(void *ctx, driver_req *req, const void *key, size_t key_len,
                         const void *value, size_t value_len, int timeout_ms)
{
    const bench *b = ctx;
    okv_txn_req *t;
    int rc = okv_txn_req_new(&t);
    if (rc)
        return rc;
    rc = okv_txn_req_exists(t, b->o->table, key, key_len);
    if (rc == OKV_OK)
        rc = okv_txn_req_put(t, b->o->table, key, key_len, value, value_len);
    if (rc == OKV_OK)
        rc = okv_txn_commit_async(b->c, t, timeout_ms, okv_done, req);
    okv_txn_req_free(t);
    return rc;
}

/* etcd_kv reports a compare that did not hold as a conflict; here it can
 * only mean the key is absent, which is orderkv's OKV_ECONDITION. */
static void etcd_cas_done(void *arg, int code, const char *errmsg)
{
    if (code == OKV_ECONFLICT)
        driver_complete(arg, OKV_ECONDITION,
                        "Compare(version > 0) did not hold: the key does not exist");
    else
        driver_complete(arg, code, errmsg);
}

static int etcd_start_cas(void *ctx, driver_req *req, const void *key, size_t key_len,
                          const void *value, size_t value_len, int timeout_ms)
{
    const bench *b = ctx;
    etcd_kv_cmp cmp = { key, key_len, ETCD_KV_CMP_VERSION, ETCD_KV_CMP_GREATER, 0 };
    etcd_kv_put put = { key, key_len, value, value_len };
    return etcd_kv_txn_async(b->e, &cmp, 1, &put, 1, timeout_ms, etcd_cas_done, req);
}

/* ---- the flash sale (--workload flash-sale) ---- */

static void okv_reserve_done(void *arg, const okv_result *r)
{
    int code = okv_result_code(r);
    driver_complete_cause(arg, code, okv_cause(r, code), okv_result_errmsg(r));
}

/* One transaction in one partition: the reservation key "STOCK/r/..."
 * has the stock key as its partition key. The floor makes the sold-out
 * check and the decrement one step on the partition's leader.
 * --unsafe-reserve drops the floor (a test aid: the stock goes below 0
 * and the audit must report the oversell). */
static int okv_start_reserve(void *ctx, driver_req *req, const void *stock, size_t stock_len,
                             const void *res, size_t res_len, const void *value,
                             size_t value_len, int timeout_ms)
{
    const bench *b = ctx;
    const char *table = b->o->table;
    okv_txn_req *t;
    int rc = okv_txn_req_new(&t);
    if (rc)
        return rc;
    rc = b->o->unsafe_reserve ? okv_txn_req_add(t, table, stock, stock_len, -1)
                              : okv_txn_req_add_floor(t, table, stock, stock_len, -1, 0);
    if (rc == OKV_OK)
        rc = okv_txn_req_put(t, table, res, res_len, value, value_len);
    if (rc == OKV_OK)
        rc = okv_txn_commit_async(b->c, t, timeout_ms, okv_reserve_done, req);
    okv_txn_req_free(t);
    return rc;
}

/* An etcd reservation is a chain (driver.h): Range the stock; if units
 * are left, a Txn comparing the stock's mod_revision with what the Range
 * saw, putting the stock less one and the reservation; while the compare
 * fails (another buyer got in between), Range again and retry, as
 * clientv3's STM does, until the request's deadline. */
typedef struct etcd_reserve {
    const bench *b;
    const void *stock, *res, *value;   /* the slot's: unchanged until driver_complete */
    size_t stock_len, res_len, value_len;
    double deadline;                   /* the whole chain's, monotonic seconds */
    int attempts;                      /* Txns sent */
} etcd_reserve;

/* The deadline passed: after a Txn that lost a race, the request lost to
 * contention (a conflict); before any, the etcd calls were just slow. */
static void etcd_reserve_give_up(driver_req *req, const etcd_reserve *x)
{
    if (x->attempts > 0)
        driver_complete_cause(req, OKV_ECONFLICT, DRIVER_CAUSE_CHANGED,
                              "the stock kept changing until the deadline");
    else
        driver_complete(req, OKV_ETIMEDOUT, "the deadline passed before the first Txn");
}

static void etcd_reserve_read_done(void *arg, int code, const char *errmsg,
                                   const etcd_kv_kv *kvs, size_t n);

static void etcd_reserve_txn_done(void *arg, int code, const char *errmsg)
{
    driver_req *req = arg;
    etcd_reserve *x = driver_req_state(req);
    if (code != OKV_ECONFLICT) {
        driver_complete(req, code, errmsg);
        return;
    }
    driver_count_retry(req);
    double left_ms = (x->deadline - now_s()) * 1e3;
    if (left_ms < 1) {
        etcd_reserve_give_up(req, x);
        return;
    }
    int rc = etcd_kv_read_async(x->b->e, &x->stock, &x->stock_len, 1, (int)left_ms,
                                etcd_reserve_read_done, req);
    if (rc != OKV_OK)   /* not started: this completion ends the request */
        driver_complete(req, rc, etcd_kv_errmsg());
}

/* On etcd_kv's completion thread: sold out, or the compare-and-swap. */
static void etcd_reserve_read_done(void *arg, int code, const char *errmsg,
                                   const etcd_kv_kv *kvs, size_t n)
{
    driver_req *req = arg;
    etcd_reserve *x = driver_req_state(req);
    int64_t units;
    if (code == OKV_OK && (n != 1 || !kvs[0].found)) {
        code = OKV_ENOTFOUND;
        errmsg = "the stock key does not exist";
    } else if (code == OKV_OK && okv_counter_decode(kvs[0].value, kvs[0].value_len, &units)) {
        code = OKV_EINVAL;
        errmsg = "the stock key does not hold an 8-byte counter";
    }
    if (code != OKV_OK) {
        driver_complete(req, code, errmsg);
        return;
    }
    if (units <= 0) {   /* what add_floor(stock, -1, 0) refuses in orderkv */
        driver_complete_cause(req, OKV_ECONDITION, DRIVER_CAUSE_FLOOR, "sold out");
        return;
    }
    double left_ms = (x->deadline - now_s()) * 1e3;
    if (left_ms < 1) {
        etcd_reserve_give_up(req, x);
        return;
    }
    uint8_t left[8];
    okv_counter_encode(units - 1, left);
    etcd_kv_cmp cmp = { x->stock, x->stock_len, ETCD_KV_CMP_MOD, ETCD_KV_CMP_EQUAL,
                        kvs[0].mod_revision };
    etcd_kv_put puts[2] = {
        { x->stock, x->stock_len, left, sizeof left },
        { x->res, x->res_len, x->value, x->value_len },
    };
    x->attempts++;
    /* --unsafe-reserve leaves the compare out: a lost update sells a unit
     * twice, which the audit must report. */
    int rc = etcd_kv_txn_async(x->b->e, &cmp, x->b->o->unsafe_reserve ? 0 : 1, puts, 2,
                               (int)left_ms, etcd_reserve_txn_done, req);
    if (rc != OKV_OK)
        driver_complete(req, rc, etcd_kv_errmsg());
}

static int etcd_start_reserve(void *ctx, driver_req *req, const void *stock, size_t stock_len,
                              const void *res, size_t res_len, const void *value,
                              size_t value_len, int timeout_ms)
{
    const bench *b = ctx;
    etcd_reserve *x = driver_req_state(req);
    int ms = timeout_ms > 0 ? timeout_ms : b->etcd_timeout_ms;
    *x = (etcd_reserve){ b, stock, res, value, stock_len, res_len, value_len,
                         now_s() + ms / 1e3, 0 };
    return etcd_kv_read_async(b->e, &x->stock, &x->stock_len, 1, ms, etcd_reserve_read_done, req);
}

/* ---- orders paid (--workload pay-order): the chains are in pay_order.c ---- */

static int okv_start_setup(void *ctx, driver_req *req, const void *key, size_t key_len,
                           int timeout_ms)
{
    bench *b = ctx;
    return pay_order_setup(&b->pay, req, key, key_len, timeout_ms);
}

static int okv_start_pay_order(void *ctx, driver_req *req, const void *key, size_t key_len,
                               int timeout_ms)
{
    bench *b = ctx;
    return pay_order_pay(&b->pay, req, key, key_len, timeout_ms);
}

static int okv_start_account_read(void *ctx, driver_req *req, const void *key, size_t key_len,
                                  int timeout_ms)
{
    bench *b = ctx;
    return pay_order_read(&b->pay, req, key, key_len, timeout_ms);
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
          "  -w, --workload W       put | get | mixed | transfer | cas | flash-sale |\n"
          "                         pay-order (default put)\n"
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
          "cas: every key is preloaded, then each request writes a fresh value to a\n"
          "key if it exists, in one server round (orderkv: a transaction exists + put;\n"
          "etcd: a Txn Compare(version > 0) Then Put)\n"
          "flash-sale (one SKU; each request reserves one unit until it is sold out;\n"
          "orderkv: one transaction add_floor(stock, -1, 0) + put(reservation); etcd:\n"
          "Range the stock, then a Txn comparing its mod_revision, retried while it\n"
          "fails):\n"
          "      --sku NAME         the stock key (default sku1; reservations are\n"
          "                         NAME/r/..., in the same partition)\n"
          "      --stock N          units at the start (default 10000000)\n"
          "      --verify           after the run, check stock >= 0 and\n"
          "                         stock at start == stock left + reservations\n"
          "pay-order (orderkv only; --keys customers, default 10000, each with its own\n"
          "account, opened and funded first; each request is CreateOrder, one item at\n"
          "1.00 CNY, then PayOrder from the account with an idempotency key):\n"
          "      --balance N        each account's deposit, minor units (default 1000000)\n"
          "      --verify           after the run, check that the balances plus the\n"
          "                         payments made still equal the deposits\n"
          "etcd only:\n"
          "      --etcd-serializable  gets are serializable Ranges (local, may be\n"
          "                         stale); default linearizable (ReadIndex)\n"
          "      --etcd-endpoint-policy P  all: round-robin over every endpoint\n"
          "                         (default); first: everything to the first\n"
          "      --etcd-cq-threads N  threads serving etcd_kv's completion queue\n"
          "                         (default 1, at most 8)\n"
          "      --tls-ca FILE      orderkv over TLS: the cluster's CA (PEM)\n"
          "      --tls-cert FILE    with --tls-key: a client certificate, for nodes\n"
          "      --tls-key FILE     that require one (--tls-client-auth require)\n",
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
    o->stock = DEFAULT_STOCK;
    snprintf(o->sku, sizeof o->sku, "sku1");
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
        else if (OPT("--tls-ca", "--tls-ca")) { NEED(); snprintf(o->tls_ca, sizeof o->tls_ca, "%s", v); }
        else if (OPT("--tls-cert", "--tls-cert")) { NEED(); snprintf(o->tls_cert, sizeof o->tls_cert, "%s", v); }
        else if (OPT("--tls-key", "--tls-key")) { NEED(); snprintf(o->tls_key, sizeof o->tls_key, "%s", v); }
        else if (OPT("-c", "--clients")) { NEED(); o->clients = atoi(v); }
        else if (OPT("-d", "--duration")) { NEED(); o->duration_s = atof(v); }
        else if (OPT("--warmup", "--warmup")) { NEED(); o->warmup_s = atof(v); }
        else if (OPT("-w", "--workload")) {
            NEED();
            if (strcmp(v, "put") == 0) o->workload = DRIVER_PUT;
            else if (strcmp(v, "get") == 0) o->workload = DRIVER_GET;
            else if (strcmp(v, "mixed") == 0) o->workload = DRIVER_MIXED;
            else if (strcmp(v, "transfer") == 0) o->workload = DRIVER_TRANSFER;
            else if (strcmp(v, "cas") == 0) o->workload = DRIVER_CAS;
            else if (strcmp(v, "flash-sale") == 0) o->workload = DRIVER_FLASH_SALE;
            else if (strcmp(v, "pay-order") == 0) o->workload = DRIVER_PAY_ORDER;
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
        else if (OPT("--balance", "--balance")) { NEED(); o->balance = strtoll(v, NULL, 10); o->balance_given = 1; }
        else if (OPT("--verify", "--verify")) o->verify = 1;
        else if (OPT("--stock", "--stock")) { NEED(); o->stock = strtoll(v, NULL, 10); }
        else if (OPT("--sku", "--sku")) {
            NEED();
            if (!v[0] || strlen(v) >= sizeof o->sku || strchr(v, '/')) {
                fprintf(stderr, "orderkv-bench: --sku must be 1..63 bytes, without '/'\n");
                return -1;
            }
            snprintf(o->sku, sizeof o->sku, "%s", v);
        }
        /* A test aid, left out of --help (docs/bench.md): reservations that
         * can oversell, to show that --verify catches it. */
        else if (OPT("--unsafe-reserve", "--unsafe-reserve")) o->unsafe_reserve = 1;
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
    } else if (o->workload == DRIVER_FLASH_SALE) {
        o->keys = 1;   /* the SKU: no key is drawn */
        o->zipf = 0;
        if (o->stock < 0) {
            fprintf(stderr, "orderkv-bench: --stock must be >= 0\n");
            return -1;
        }
    } else if (o->workload == DRIVER_PAY_ORDER) {
        if (!o->keys_given)
            o->keys = 10000;
        if (o->target != T_ORDERKV) {
            fprintf(stderr, "orderkv-bench: pay-order runs on orderkv's orders service only "
                            "(compare it with etcd's put; docs/bench.md)\n");
            return -1;
        }
        if (o->key_prefix[0] || o->key_size > PAY_ORDER_MAX_KEY) {
            fprintf(stderr, "orderkv-bench: pay-order: keys become customer and account ids: "
                            "no --key-prefix, --key-size at most %d\n", PAY_ORDER_MAX_KEY);
            return -1;
        }
        if (o->balance < 0 || (o->keys > 0 && o->balance > INT64_MAX / (int64_t)o->keys)) {
            fprintf(stderr, "orderkv-bench: --balance must be >= 0, and keys x balance fit "
                            "in int64\n");
            return -1;
        }
    } else if (o->verify) {
        fprintf(stderr, "orderkv-bench: --verify needs --workload transfer, flash-sale or "
                        "pay-order\n");
        return -1;
    }
    if (o->unsafe_reserve && o->workload != DRIVER_FLASH_SALE) {
        fprintf(stderr, "orderkv-bench: --unsafe-reserve needs --workload flash-sale\n");
        return -1;
    }
    if (o->key_prefix[0] && o->key_size < strlen(o->key_prefix) + 2) {
        fprintf(stderr, "orderkv-bench: --key-size must leave room after --key-prefix and '/'\n");
        return -1;
    }
    if (o->clients < 1 || o->clients > 4096 || o->duration_s <= 0 || o->key_size < 1 ||
        o->key_size > OKV_MAX_KEY_LEN || o->value_size > OKV_MAX_VALUE_LEN ||
        (o->keys < 2 && o->workload != DRIVER_FLASH_SALE) ||
        o->read_pct < 0 || o->read_pct > 100 || o->zipf_theta <= 0 || o->zipf_theta >= 1) {
        fprintf(stderr, "orderkv-bench: an option is out of range (see --help)\n");
        return -1;
    }
    if (o->etcd_flags_given && o->target != T_ETCD) {
        fprintf(stderr, "orderkv-bench: --etcd-* options need --target etcd\n");
        return -1;
    }
    if ((o->tls_ca[0] || o->tls_cert[0] || o->tls_key[0]) && o->target != T_ORDERKV) {
        fprintf(stderr, "orderkv-bench: --tls-* options are for --target orderkv\n");
        return -1;
    }
    if (o->target == T_ETCD && !o->addr_given)
        snprintf(o->addr, sizeof o->addr, "127.0.0.1:2379");
    return 0;
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
    if (o->progress && o->workload == DRIVER_PAY_ORDER)
        fprintf(stderr, "opened %llu accounts with %" PRId64 " each in %.1f s\n",
                (unsigned long long)o->keys, o->balance, now_s() - t0);
    else if (o->progress && o->workload == DRIVER_TRANSFER)
        fprintf(stderr, "set %llu accounts to %" PRId64 " in %s in %.1f s\n",
                (unsigned long long)o->keys, o->balance, target_name(o->target), now_s() - t0);
    else if (o->progress)
        fprintf(stderr, "preloaded %llu keys into %s in %.1f s\n", (unsigned long long)o->keys,
                target_name(o->target), now_s() - t0);
    return 0;
}

/* --verify of a transfer: the sum of every balance, read back once the run
 * is over. */
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

static void close_target(bench *b)
{
    okv_close(b->c);
    etcd_kv_free(b->e);
    b->c = NULL;
    b->e = NULL;
}

/* Connects to the target and fills its adapters; OKV_OK or a code (the
 * message printed). */
static int open_target(bench *b, driver_target *t)
{
    const bench_opts *o = b->o;
    int rc;
    if (o->target == T_ETCD) {
        etcd_kv_options eo = ETCD_KV_OPTIONS_INIT;
        eo.policy = o->etcd_policy;
        eo.serializable = o->etcd_serializable;
        eo.completion_threads = o->etcd_cq_threads;
        b->etcd_timeout_ms = eo.default_timeout_ms;
        rc = etcd_kv_connect(&b->e, o->addr, &eo);
        if (rc)
            fprintf(stderr, "orderkv-bench: %s: %s\n", okv_strerror(rc), etcd_kv_errmsg());
        size_t state = sizeof(etcd_transfer) > sizeof(etcd_reserve) ? sizeof(etcd_transfer)
                                                                    : sizeof(etcd_reserve);
        *t = (driver_target){ .ctx = b, .put = etcd_start_put, .get = etcd_start_get,
                              .errmsg = etcd_start_errmsg, .transfer = etcd_start_transfer,
                              .read = etcd_start_read, .partition = NULL, .state_size = state,
                              .cas = etcd_start_cas, .reserve = etcd_start_reserve };
        return rc;
    }
    okv_options oo = OKV_OPTIONS_INIT;
    oo.tls_ca = o->tls_ca[0] ? o->tls_ca : NULL;
    oo.tls_cert = o->tls_cert[0] ? o->tls_cert : NULL;
    oo.tls_key = o->tls_key[0] ? o->tls_key : NULL;
    rc = okv_connect(&b->c, o->addr, &oo);
    if (rc)
        fprintf(stderr, "orderkv-bench: %s: %s\n", okv_strerror(rc), okv_errmsg(NULL));
    else if (o->workload == DRIVER_TRANSFER)
        rc = table_partitions(b);
    *t = (driver_target){ .ctx = b, .put = okv_start_put, .get = okv_start_get,
                          .errmsg = okv_start_errmsg, .transfer = okv_start_transfer,
                          .read = okv_start_read, .partition = okv_partition, .state_size = 0,
                          .cas = okv_start_cas, .reserve = okv_start_reserve };
    if (o->workload == DRIVER_PAY_ORDER) {
        /* Accounts are read through the orders service (the balance is
         * GetAccount's), and the chains carry their ids in the slot. */
        pay_order_init(&b->pay, b->c, b->run_id, o->balance);
        t->setup = okv_start_setup;
        t->pay_order = okv_start_pay_order;
        t->read = okv_start_account_read;
        t->state_size = pay_order_state_size();
    }
    return rc;
}

/* Part of every reservation key, so that the keys of two runs on the same
 * stock key never collide and the audit can count this run's (driver.h). */
static uint32_t new_run_id(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
                 ((uint64_t)getpid() << 40);
    x ^= x >> 31;   /* splitmix64's finaliser: every input bit reaches the low 32 */
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 29;
    return (uint32_t)x;
}

static flash_sale_target sale_target(const bench *b)
{
    return (flash_sale_target){ b->c, b->o->table, b->e, PRELOAD_TIMEOUT_MS };
}

/* A flash sale's start: with --verify, count the reservation keys earlier
 * runs left under the SKU (*before); then set the stock. 0, or -1 with
 * the failure printed. */
static int sale_setup(const bench *b, uint64_t *before)
{
    const bench_opts *o = b->o;
    flash_sale_target ft = sale_target(b);
    char msg[256] = "";
    *before = 0;
    int rc = o->verify ? flash_sale_count(&ft, o->sku, before, msg, sizeof msg) : OKV_OK;
    if (rc == OKV_OK)
        rc = flash_sale_stock_set(&ft, o->sku, o->stock, msg, sizeof msg);
    if (rc) {
        fprintf(stderr, "orderkv-bench: setting up the sale: %s: %s\n", okv_strerror(rc), msg);
        return -1;
    }
    if (o->progress)
        fprintf(stderr, "%s: '%s' holds %" PRId64 " units\n", target_name(o->target), o->sku,
                o->stock);
    return 0;
}

/* The run's exit status (docs/bench.md): 1 if nothing succeeded, a check
 * failed, or a flash sale sold out before anything was measured. */
static int exit_status(const bench_opts *o, int rc, const driver_result *r,
                       const verify_result *v, const flash_sale_audit *a, const pay_check *p)
{
    if (rc || (r->errors && r->ok == 0))
        return 1;
    if (o->workload == DRIVER_TRANSFER && o->verify && !v->ok)
        return 1;
    if (o->workload == DRIVER_FLASH_SALE && (r->sold_out_in_warmup || (o->verify && !a->ok)))
        return 1;
    if (o->workload == DRIVER_PAY_ORDER && o->verify && !p->ok)
        return 1;
    return 0;
}

/* Run-time diagnostics on stderr, after the results. */
static void warn_failures(const bench_opts *o, int rc, const driver_result *r)
{
    if (rc)
        fprintf(stderr, "orderkv-bench: every request slot stopped: %s: %s\n",
                okv_strerror(r->last_error), r->last_msg);
    if (r->lost && !rc)
        fprintf(stderr, "orderkv-bench: %llu of %d requests in flight stopped early: a submit failed\n",
                (unsigned long long)r->lost, o->clients);
    if (r->errors || r->lost)
        fprintf(stderr, "orderkv-bench: %llu requests failed; last: %s: %s\n",
                (unsigned long long)r->errors, okv_strerror(r->last_error), r->last_msg);
    if (r->sold_out_in_warmup)
        fprintf(stderr, "orderkv-bench: sold out during the warmup: nothing was measured "
                        "(use --warmup 0 or a larger --stock)\n");
}

int main(int argc, char **argv)
{
    bench_opts o;
    memset(&o, 0, sizeof o);
    if (parse(&o, argc, argv))
        return 2;
    bench b = { .o = &o, .run_id = new_run_id() };
    driver_target t;
    if (open_target(&b, &t)) {
        close_target(&b);
        return 2;
    }
    int transfer = o.workload == DRIVER_TRANSFER, sale = o.workload == DRIVER_FLASH_SALE;
    int pay = o.workload == DRIVER_PAY_ORDER;
    /* An 8-byte counter: a transfer's starting balance, a reservation's
     * quantity (1). */
    uint8_t counter[8];
    okv_counter_encode(transfer ? o.balance : 1, counter);
    driver_config cfg = {
        .in_flight = o.clients, .warmup_s = o.warmup_s, .duration_s = o.duration_s,
        .workload = o.workload, .read_pct = o.read_pct, .key_size = o.key_size,
        .key_prefix = o.key_prefix,
        .value_size = transfer || sale ? sizeof counter : o.value_size,
        .fixed_value = transfer || sale ? counter : NULL, .amount = TRANSFER_AMOUNT,
        .keys = o.keys, .zipf = o.zipf,
        .zipf_theta = o.zipf_theta, .timeout_ms = 0, .progress = o.progress,
        .stock_key = o.sku, .run_id = b.run_id,
    };
    driver *d = NULL;
    int rc = driver_new(&d, &cfg, &t);
    if (rc) {
        fprintf(stderr, "orderkv-bench: %s%s\n", okv_strerror(rc),
                transfer && rc == OKV_EINVAL && t.partition
                    ? ": every account falls in one partition (more --keys?)" : "");
        close_target(&b);
        return 2;
    }
    uint64_t before = 0;
    driver_result *r = calloc(1, sizeof *r);
    int ready = r != NULL;
    if (!r)
        fputs("orderkv-bench: out of memory\n", stderr);
    else if (sale)
        ready = sale_setup(&b, &before) == 0;
    else if (o.preload || transfer || o.workload == DRIVER_CAS || pay)
        ready = preload(d, &o) == 0;
    if (!ready) {
        close_target(&b);
        driver_free(d);
        free(r);
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
    flash_sale_audit a = { 0 };
    if (rc == OKV_OK && o.verify && transfer)
        verify(d, &o, &v);
    if (rc == OKV_OK && o.verify && sale) {
        flash_sale_target ft = sale_target(&b);
        flash_sale_audit_run(&ft, o.sku, o.stock, before, &a);
    }
    pay_check pc = { 0 };
    pay_tally tally = { 0 };
    if (rc == OKV_OK && pay) {
        pay_order_tally(&b.pay, &tally);
        if (o.verify)
            pay_order_verify(&b.pay, d, o.keys, PRELOAD_IN_FLIGHT, PRELOAD_TIMEOUT_MS, &pc);
    }
    bench_outcome x = { b.partitions, atomic_load(&okv_one_partition_commits), cfg.run_id,
                        o.verify && transfer ? &v : NULL, o.verify && sale ? &a : NULL,
                        pay ? &tally : NULL, o.verify && pay ? &pc : NULL };
    if (rc == OKV_OK)
        report(&o, r, &x);
    warn_failures(&o, rc, r);
    int status = exit_status(&o, rc, r, &v, &a, &pc);
    close_target(&b);
    driver_free(d);
    free(r);
    return status;
}
