/*
 * orders_exec.c — one orders request: reads, plan, commit, answer
 * (orders_exec.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "orders_exec.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failpoint.h"
#include "orderkv.h"
#include "orders_local.h"
#include "tpc_driver.h"

/* Attempts of one request: re-reads after a record changed, and waits
 * after a conflict with another transaction's lock. */
#define OX_ATTEMPTS 8
#define OX_TIMEOUT_MS 10000
#define OX_BACKOFF_FIRST_MS 2

struct ox {
    node *n;
    rpc_call *call;
    ox_spec s;
    _Atomic int pending;       /* reads in flight */
    int attempt;
    _Atomic int read_rc;       /* first read failure of this attempt */
    char read_msg[OKV_ERRMSG_MAX];
    ord_plan *plan;
    /* confirm_refusal: the refusal waiting for the idempotency records'
     * second reads, how many are in flight, what they found. */
    ord_error refusal;
    _Atomic int confirm_pending;
    _Atomic int confirm_found;
    _Atomic int confirm_rc;
};

static _Atomic uint32_t id_counter;

int64_t ox_now_ms(void)
{
    return (int64_t)tpc_wall_ms();
}

void ox_new_id(const ox *x, char *buf, size_t cap)
{
    /* Hex wall clock first, so ids sort by creation; then the node and a
     * counter, so two nodes (or two requests in one millisecond) differ. */
    uint32_t k = atomic_fetch_add(&id_counter, 1);
    snprintf(buf, cap, "%011" PRIx64 "%02" PRIx64 "%06" PRIx32, (uint64_t)ox_now_ms(),
             x->n->node_id & 0xff, k & 0xffffff);
}

const ox_read *ox_read_at(const ox *x, size_t i)
{
    return i < x->s.nreads && x->s.reads[i].found ? &x->s.reads[i] : NULL;
}

void ox_reply_error(rpc_call *call, const ord_error *err)
{
    Orderkv__V1__Error e = ORDERKV__V1__ERROR__INIT;
    e.code = service_error_code(err->code);
    e.message = (char *)err->msg;
    /* Any response message would do: they all start with these two. */
    Orderkv__V1__GetOrderResponse r = ORDERKV__V1__GET_ORDER_RESPONSE__INIT;
    r.error = &e;
    r.reason = err->reason;
    uint8_t buf[OKV_ERRMSG_MAX + 64];
    size_t len = protobuf_c_message_get_packed_size(&r.base);
    if (len > sizeof buf) {
        rpc_call_reply(call, err->code, err->msg, NULL, 0);
        return;
    }
    protobuf_c_message_pack(&r.base, buf);
    rpc_call_reply(call, err->code, err->msg, buf, len);
}

void ox_reply_errorf(rpc_call *call, int code, int reason, const char *fmt, ...)
{
    ord_error err;
    ord_error_clear(&err);
    err.code = code;
    err.reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    ox_reply_error(call, &err);
}

static void clear_reads(ox *x)
{
    for (size_t i = 0; i < x->s.nreads; i++) {
        free(x->s.reads[i].val);
        x->s.reads[i].val = NULL;
        x->s.reads[i].len = 0;
        x->s.reads[i].found = 0;
        x->s.reads[i].version = 0;
    }
}

static void ox_free(ox *x)
{
    clear_reads(x);
    ord_plan_free(x->plan);
    if (x->s.req_free)
        x->s.req_free(x->s.req);
    free(x);
}

/* Answers x's call with an error and frees x. */
#define finish_error(x, ...)                       \
    do {                                           \
        ox_reply_errorf((x)->call, __VA_ARGS__);   \
        ox_free(x);                                \
    } while (0)

/* Every attempt met records that changed between its reads and its commit. */
static void finish_kept_changing(ox *x)
{
    finish_error(x, OKV_ECONFLICT, ORD_R(NONE), "%s: the records kept changing while it ran "
                 "(%d attempts); nothing applied, retry", x->s.what, OX_ATTEMPTS);
}

static void finish_plan(ox *x)
{
    size_t len = 0;
    const uint8_t *resp = ord_plan_response(x->plan, &len);
    rpc_call_reply(x->call, OKV_OK, NULL, resp, len);
    ox_free(x);
}

static void start_reads(ox *x);

/* okv_get_async through the node's internal client. Steps of a request may
 * run on the raft loop (orders_local.c answers there) after the 2PC driver
 * stopped and closed the client: then OKV_EUNAVAILABLE, nothing sent. */
static int get_async(ox *x, const ox_read *rd, okv_callback cb, void *arg)
{
    /* cb may finish and free x before the call returns: nothing of x is
     * read after it. */
    tpc_driver *d = x->n->tpc;
    okv_client *c = tpc_driver_client_hold(d);
    if (!c)
        return OKV_EUNAVAILABLE;
    int rc = okv_get_async(c, ord_table_name(rd->table), rd->key.buf, rd->key.len, OX_TIMEOUT_MS,
                           cb, arg);
    tpc_driver_client_release(d);
    return rc;
}

static void again_now(void *arg, int stopping)
{
    ox *x = arg;
    if (stopping) {
        finish_error(x, OKV_EUNAVAILABLE, ORD_R(NONE), "%s: the node is stopping; nothing was "
                     "applied by this attempt, retry", x->s.what);
        return;
    }
    start_reads(x);
}

/* Runs the request again from its reads: at once, or after a backoff. */
static void again(ox *x, int backoff)
{
    ord_plan_free(x->plan);
    x->plan = NULL;
    clear_reads(x);
    if (!backoff) {
        start_reads(x);
        return;
    }
    int delay = OX_BACKOFF_FIRST_MS << (x->attempt < 6 ? x->attempt : 6);
    delay += rand() % (delay / 2 + 1);   /* jitter: copies that met do not meet again */
    tpc_driver_after(x->n->tpc, delay, again_now, x);
}

/* ---- a refusal is final only on one snapshot ------------------------------ */

/* The reads run in parallel, so they are not one snapshot. A request's
 * idempotency record read absent before another request with the same key
 * committed, and its order read after that commit (already PAID, by that
 * very request), plan "illegal transition" where the answer is a replay of
 * the first response (found by cluster.orders' same-key payers under
 * valgrind). So before a refusal is answered, the idempotency records
 * read absent are read again, after every first read has completed. Still
 * absent: no request with that key had committed when any of the other
 * records was read (a kept idempotency record is never deleted), so the
 * reads agree with one moment and the refusal stands. Found: the request
 * runs again and replays. */
static void confirm_settled(ox *x)
{
    if (atomic_load(&x->confirm_found)) {
        if (++x->attempt >= OX_ATTEMPTS) {
            finish_kept_changing(x);
            return;
        }
        again(x, 0);
        return;
    }
    int rc = atomic_load(&x->confirm_rc);
    if (rc) {
        finish_error(x, rc, ORD_R(NONE), "%s: reading its idempotency record again: %s; "
                     "nothing applied, retry", x->s.what, okv_strerror(rc));
        return;
    }
    ox_reply_error(x->call, &x->refusal);
    ox_free(x);
}

static void confirm_done(void *arg, const okv_result *r)
{
    ox *x = arg;
    int rc = okv_result_code(r);
    if (rc == OKV_OK) {
        atomic_store(&x->confirm_found, 1);
    } else if (rc != OKV_ENOTFOUND) {
        int none = 0;
        atomic_compare_exchange_strong(&x->confirm_rc, &none, rc);
    }
    if (atomic_fetch_sub(&x->confirm_pending, 1) == 1)
        confirm_settled(x);
}

/* Answers the refusal err, at once or after the second reads above. */
static void confirm_refusal(ox *x, const ord_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < x->s.nreads; i++)
        n += x->s.reads[i].idem && !x->s.reads[i].found;
    if (n == 0 || OKV_FAILPOINT("orders.confirm.skip")) {
        ox_reply_error(x->call, err);
        ox_free(x);
        return;
    }
    x->refusal = *err;
    atomic_store(&x->confirm_found, 0);
    atomic_store(&x->confirm_rc, 0);
    atomic_store(&x->confirm_pending, (int)n + 1);   /* +1: this loop's own hold */
    for (size_t i = 0; i < x->s.nreads; i++) {
        const ox_read *rd = &x->s.reads[i];
        if (!rd->idem || rd->found)
            continue;
        int rc = get_async(x, rd, confirm_done, x);
        if (rc != OKV_OK) {
            int none = 0;
            atomic_compare_exchange_strong(&x->confirm_rc, &none, rc);
            atomic_fetch_sub(&x->confirm_pending, 1);
        }
    }
    if (atomic_fetch_sub(&x->confirm_pending, 1) == 1)
        confirm_settled(x);
}

/* The plan's transaction ended: rc and, for a failed item, its number and
 * reason (okv_txn_outcome's), errmsg for other errors. */
static void commit_outcome(ox *x, int rc, uint32_t failed, int reason, const char *errmsg)
{
    if (rc == OKV_OK) {
        finish_plan(x);
        return;
    }
    int last = ++x->attempt >= OX_ATTEMPTS;
    if (rc == OKV_ECONDITION) {
        ord_error err;
        ord_error_clear(&err);
        int f = ord_plan_failure(x->plan, failed, reason, &err);
        if (f != ORD_PLAN_RETRY) {
            confirm_refusal(x, &err);
        } else if (last) {
            finish_kept_changing(x);
        } else {
            again(x, 0);
        }
        return;
    }
    if (rc == OKV_ECONFLICT) {
        if (last) {
            ord_error err;
            ord_error_clear(&err);
            ord_plan_conflict(x->plan, &err);
            ox_reply_error(x->call, &err);
            ox_free(x);
        } else {
            again(x, 1);
        }
        return;
    }
    int unknown = rc == OKV_EUNKNOWN || rc == OKV_ETIMEDOUT;
    if ((unknown || rc == OKV_EUNAVAILABLE) && !last &&
        (x->s.idempotent || ord_plan_has_idem(x->plan))) {
        again(x, 1);   /* the next run replays or finds it done */
        return;
    }
    if (unknown)
        finish_error(x, OKV_EUNKNOWN, ORD_R(NONE), "%s: the transaction got no answer (%s); it "
                     "may have applied: read the records, or send requests that change money "
                     "with an idempotency key so a resend is safe", x->s.what,
                     errmsg ? errmsg : okv_strerror(rc));
    else
        finish_error(x, rc, ORD_R(NONE), "%s: %s", x->s.what, errmsg ? errmsg : okv_strerror(rc));
}

/* The internal client's answer (the commit went as a KV.Txn call). */
static void committed(void *arg, const okv_result *r)
{
    okv_txn_outcome out;
    memset(&out, 0, sizeof out);
    okv_result_txn_outcome(r, &out);
    commit_outcome(arg, okv_result_code(r), out.failed, out.reason, okv_result_errmsg(r));
}

static int add_op(okv_txn_req *t, const ord_op *op)
{
    const char *tn = ord_table_name(op->table);
    const uint8_t *k = op->key.buf;
    size_t kl = op->key.len;
    switch (op->kind) {
    case ORD_OP_EXISTS: return okv_txn_req_exists(t, tn, k, kl);
    case ORD_OP_ABSENT: return okv_txn_req_absent(t, tn, k, kl);
    case ORD_OP_VERSION_IS: return okv_txn_req_version_is(t, tn, k, kl, op->version);
    case ORD_OP_PUT: return okv_txn_req_put(t, tn, k, kl, op->value, op->value_len);
    case ORD_OP_DELETE: return okv_txn_req_delete(t, tn, k, kl);
    case ORD_OP_ADD:
        return op->has_floor ? okv_txn_req_add_floor(t, tn, k, kl, op->delta, op->floor)
                             : okv_txn_req_add(t, tn, k, kl, op->delta);
    }
    return OKV_EINVAL;
}

static void commit_via_client(ox *x)
{
    size_t n = ord_plan_len(x->plan);
    okv_txn_req *t = NULL;
    int rc = okv_txn_req_new(&t);
    for (size_t i = 0; rc == OKV_OK && i < n; i++)
        rc = add_op(t, ord_plan_op(x->plan, i));
    /* As get_async: no client once the node stops, and committed() may
     * free x before okv_txn_commit_async returns. */
    tpc_driver *d = x->n->tpc;
    okv_client *c = rc == OKV_OK ? tpc_driver_client_hold(d) : NULL;
    if (c) {
        rc = okv_txn_commit_async(c, t, OX_TIMEOUT_MS, committed, x);
        tpc_driver_client_release(d);
    } else if (rc == OKV_OK) {
        rc = OKV_EUNAVAILABLE;
    }
    okv_txn_req_free(t);
    if (rc != OKV_OK)
        finish_error(x, rc, ORD_R(NONE), "%s: cannot send its transaction: %s", x->s.what,
                     okv_strerror(rc));
}

/* orders_local.c's answer (the commit went from here, no call to self). */
static void committed_here(void *arg, int rc, uint32_t failed, int reason, const char *msg)
{
    ox *x = arg;
    if (rc == OKV_ENOTLEADER) {   /* certainly not applied: the leader is elsewhere now */
        commit_via_client(x);
        return;
    }
    commit_outcome(x, rc, failed, reason, msg);
}

static void plan_and_commit(ox *x)
{
    int read_rc = atomic_load(&x->read_rc);
    if (read_rc) {
        finish_error(x, read_rc, ORD_R(NONE), "%s: reading its records: %s", x->s.what,
                     x->read_msg);
        return;
    }
    ord_error err;
    ord_error_clear(&err);
    if (x->s.plan(x, x->s.req, &x->plan, &err) != 0) {
        confirm_refusal(x, &err);
        return;
    }
    size_t n = ord_plan_len(x->plan);
    if (n == 0) {
        finish_plan(x);   /* a replay, or already so */
        return;
    }
    if (!ox_commit_local(x->n, x->plan, committed_here, x))
        commit_via_client(x);
}

typedef struct read_arg {
    ox *x;
    size_t i;
} read_arg;

/* Two reads may fail at once, on two threads: the first failure keeps its
 * message; the pending count orders the message before its reader. */
static void read_failed(ox *x, int rc, const char *msg)
{
    int none = 0;
    if (atomic_compare_exchange_strong(&x->read_rc, &none, rc))
        snprintf(x->read_msg, sizeof x->read_msg, "%s", msg ? msg : okv_strerror(rc));
}

static void one_read_done(void *arg, const okv_result *r)
{
    read_arg *ra = arg;
    ox *x = ra->x;
    ox_read *rd = &x->s.reads[ra->i];
    free(ra);
    int rc = okv_result_code(r);
    if (rc == OKV_OK) {
        size_t len = 0;
        const void *p = okv_result_value(r, &len);
        rd->val = malloc(len ? len : 1);
        if (rd->val) {
            if (len)
                memcpy(rd->val, p, len);
            rd->len = len;
            rd->found = 1;
            rd->version = okv_result_version(r);
        } else {
            read_failed(x, OKV_ENOMEM, "out of memory");
        }
    } else if (rc != OKV_ENOTFOUND) {
        read_failed(x, rc, okv_result_errmsg(r));
    }
    if (atomic_fetch_sub(&x->pending, 1) == 1)
        plan_and_commit(x);
}

static void start_one_read(ox *x, size_t i)
{
    ox_read *rd = &x->s.reads[i];
    if (ox_read_local(x->n, rd->table, rd->key.buf, rd->key.len, &rd->found, &rd->val, &rd->len,
                      &rd->version)) {
        atomic_fetch_sub(&x->pending, 1);   /* the caller holds one more: never the last */
        return;
    }
    read_arg *ra = malloc(sizeof *ra);
    int rc = OKV_ENOMEM;
    if (ra) {
        ra->x = x;
        ra->i = i;
        rc = get_async(x, rd, one_read_done, ra);
        if (rc != OKV_OK)
            free(ra);
    }
    if (rc != OKV_OK) {
        read_failed(x, rc, okv_strerror(rc));
        atomic_fetch_sub(&x->pending, 1);
    }
}

/* Failpoint orders.reads.idem_first: the reads other than idempotency
 * records start this much later, so a test can commit a same-key request
 * between the two (cluster.orders_idem_race). */
#define FP_REST_DELAY_MS 1500

static void start_rest(void *arg, int stopping)
{
    (void)stopping;   /* the reads then fail, and the request with them */
    ox *x = arg;
    for (size_t i = 0; i < x->s.nreads; i++)
        if (!x->s.reads[i].idem)
            start_one_read(x, i);
    if (atomic_fetch_sub(&x->pending, 1) == 1)
        plan_and_commit(x);
}

static void start_reads(ox *x)
{
    atomic_store(&x->read_rc, 0);
    x->read_msg[0] = '\0';
    if (x->s.nreads == 0) {
        plan_and_commit(x);
        return;
    }
    int idem_first = OKV_FAILPOINT("orders.reads.idem_first");
    atomic_store(&x->pending, (int)x->s.nreads + 1);   /* +1: this loop's own hold */
    for (size_t i = 0; i < x->s.nreads; i++)
        if (!idem_first || x->s.reads[i].idem)
            start_one_read(x, i);
    if (idem_first) {
        tpc_driver_after(x->n->tpc, FP_REST_DELAY_MS, start_rest, x);   /* takes the hold */
        return;
    }
    if (atomic_fetch_sub(&x->pending, 1) == 1)
        plan_and_commit(x);
}

void ox_start(node *n, rpc_call *call, const ox_spec *spec)
{
    ox *x = calloc(1, sizeof *x);
    if (!x) {
        if (spec->req_free)
            spec->req_free(spec->req);
        rpc_call_reply(call, OKV_ENOMEM, "out of memory", NULL, 0);
        return;
    }
    x->n = n;
    x->call = call;
    x->s = *spec;
    int client = n->tpc && tpc_driver_client(n->tpc);
    if (!client && n->rs) {
        finish_error(x, OKV_EUNAVAILABLE, ORD_R(NONE), "%s: the node is starting; retry",
                     spec->what);
        return;
    }
    if (!client) {
        finish_error(x, OKV_EUNIMPLEMENTED, ORD_R(NONE), "%s: the orders service runs on a "
                     "cluster (orderkvd --initial-cluster); this node runs alone", spec->what);
        return;
    }
    start_reads(x);
}
