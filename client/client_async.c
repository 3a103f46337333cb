/*
 * client_async.c — the asynchronous core: the completion thread, timers,
 * and each call's retry rules as a state machine (client_async.h).
 *
 * The rules are client_call.c's (see client_unary there); only who waits
 * changes. Where the unary path sleeps a backoff, an op goes on the timer
 * list; where it blocks on a call, the op sits in a stream until its
 * answer, the stream's failure, or its attempt's deadline comes back here
 * as an event on the completion thread.
 *
 * The completion thread wakes for every gRPC event and at least every
 * TICK_MS, when it runs due timers and sweeps the streams for ops past
 * their attempt's deadline: a deadline is enforced within TICK_MS.
 */
#define _POSIX_C_SOURCE 200809L
#include <grpc/support/time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_async.h"
#include "thread_name.h"

#define TICK_MS 5

enum { TIMER_ATTEMPT, TIMER_UNREACHABLE };

static _Thread_local int on_cq_thread;
static _Thread_local int corked;

int client_on_completion_thread(void) { return on_cq_thread; }

int64_t client_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void client_cork(void) { corked = 1; }

void client_uncork(void)
{
    corked = 0;
    client_streams_flush_corked();
}

int client_corked(void) { return corked; }

/* ---- ops ----------------------------------------------------------------- */

client_op *client_op_new(okv_client *c, enum client_method m,
                         const ProtobufCMessageDescriptor *resp_desc, int is_write,
                         int timeout_ms, const client_route_key *rk)
{
    client_op *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->c = c;
    op->m = m;
    op->resp_desc = resp_desc;
    op->is_write = is_write;
    op->timeout_ms = timeout_ms > 0 ? timeout_ms : c->opts.default_timeout_ms;
    if (rk) {
        op->routed = 1;
        op->rk_table = strdup(rk->table);
        op->rk_key = malloc(rk->key_len ? rk->key_len : 1);
        if (!op->rk_table || !op->rk_key) {
            client_op_free(op);
            return NULL;
        }
        memcpy(op->rk_key, rk->key, rk->key_len);
        op->rk_key_len = rk->key_len;
        op->rk_partition = rk->partition;
    }
    if (is_write) {
        op->watermark = client_write_begin(c, &op->w);
        op->w_active = 1;
    }
    return op;
}

int client_op_pack(client_op *op, const ProtobufCMessage *req)
{
    op->req_len = protobuf_c_message_get_packed_size(req);
    op->req = malloc(op->req_len ? op->req_len : 1);
    if (!op->req)
        return OKV_ENOMEM;
    protobuf_c_message_pack(req, op->req);
    return OKV_OK;
}

void client_op_free(client_op *op)
{
    if (!op)
        return;
    if (op->w_active)
        client_write_end(op->c, &op->w);
    if (op->resp)
        protobuf_c_message_free_unpacked(op->resp, NULL);
    free(op->req);
    free(op->rk_table);
    free(op->rk_key);
    free(op);
}

static client_route_key op_route(const client_op *op)
{
    client_route_key rk = { op->rk_table, op->rk_key, op->rk_key_len, op->rk_partition };
    return rk;
}

static void op_learn(client_op *op, long idx)
{
    if (!op->routed)
        return;
    client_route_key rk = op_route(op);
    client_route_learn(op->c, &rk, idx);
}

static int op_fail(client_op *op, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int op_fail(client_op *op, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->err, sizeof op->err, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- timers --------------------------------------------------------------- */

/* Puts op on the timer list; at wake_ms its next attempt starts
 * (TIMER_ATTEMPT) or its unsent attempt is given up (TIMER_UNREACHABLE). */
static void op_sleep(client_op *op, int64_t wake_ms, int act)
{
    op->timer_act = act;
    okv_client *c = op->c;
    op->wake_ms = wake_ms < op->deadline_ms ? wake_ms : op->deadline_ms;
    pthread_mutex_lock(&c->timer_mu);
    client_op **pp = &c->timers;
    while (*pp && (*pp)->wake_ms <= op->wake_ms)
        pp = &(*pp)->tnext;
    op->tnext = *pp;
    *pp = op;
    pthread_mutex_unlock(&c->timer_mu);
}

static void op_attempt(client_op *op);
static void op_unreachable(client_op *op, int timed_out);

static void run_timers(okv_client *c, int64_t now)
{
    for (;;) {
        pthread_mutex_lock(&c->timer_mu);
        client_op *op = c->timers;
        if (op && op->wake_ms <= now)
            c->timers = op->tnext;
        else
            op = NULL;
        pthread_mutex_unlock(&c->timer_mu);
        if (!op)
            return;
        op->tnext = NULL;
        if (op->timer_act == TIMER_ATTEMPT)
            op_attempt(op);
        else
            op_unreachable(op, 0);
    }
}

/* ---- the state machine ---------------------------------------------------- */

static void op_finish(client_op *op)
{
    okv_client *c = op->c;
    int rc = op->rc;
    /* Any replica answers a read: only a write's answer (or a step of a
     * node's transaction, which only leaders apply) names the leader. */
    if (rc == OKV_OK && (op->is_write || op->m == M_TXN_PART) && !op->orders_call)
        op_learn(op, (long)op->idx);
    if (op->ambiguous && !client_settles_request(rc)) {
        op->rc = op_fail(op, OKV_EUNKNOWN,
                         "no answer settled the write within %d ms (sent again with the same "
                         "request id, so it applied at most once); it may or may not have "
                         "applied",
                         op->timeout_ms);
    } else if (!op->reached && op->tls_mismatch) {
        /* rc and err are set */
    } else if (!op->reached &&
               (op->tls_why[0] ||
                (tls_pem_on(&c->tls) &&
                 client_tls_diagnose(c, op->idx, op->tls_why, sizeof op->tls_why)))) {
        /* As client_unary: a TLS client whose attempts only timed out. */
        op->rc = op_fail(op, op->timed_out ? OKV_ETIMEDOUT : OKV_EUNAVAILABLE,
                         "no node of %s reachable within %d ms; %s", c->addr_list,
                         op->timeout_ms, op->tls_why);
    } else if (!op->reached) {
        if (op->timed_out)
            op->rc = op_fail(op, OKV_ETIMEDOUT, "no node of %s became reachable within %d ms%s",
                             c->addr_list, op->timeout_ms, client_tls_hint(c));
        else
            op->rc = op_fail(op, OKV_EUNAVAILABLE,
                             "cannot connect to %s (is orderkvd running there?%s)", c->addr_list,
                             client_tls_hint(c));
    }
    if (op->rc == OKV_OK)
        op->err[0] = '\0';
    if (op->w_active) {
        client_write_end(c, &op->w);
        op->w_active = 0;
    }
    op->done(op);
    /* done may have freed op: c is all that is left to touch. */
    pthread_mutex_lock(&c->ops_mu);
    if (--c->ops_live == 0)
        pthread_cond_broadcast(&c->ops_cv);
    pthread_mutex_unlock(&c->ops_mu);
}

/* The next attempt, now or after a backoff. */
static void op_continue(client_op *op, int with_backoff)
{
    op->attempt_no++;
    if (with_backoff)
        op_sleep(op, client_now_ms() + client_backoff_ms(op->attempt_no - 1), TIMER_ATTEMPT);
    else
        op_attempt(op);
}

/* One attempt's share of the deadline when another attempt could follow:
 * half of what is left, at least 250 ms (client_call.c attempt_deadline). */
static int64_t attempt_deadline(const client_op *op, int64_t now)
{
    int64_t half = (op->deadline_ms - now) / 2;
    if (half < 250)
        half = 250;
    return now + half < op->deadline_ms ? now + half : op->deadline_ms;
}

static void op_attempt(client_op *op)
{
    okv_client *c = op->c;
    int64_t now = client_now_ms();
    if (op->attempt_no > 0 && now >= op->deadline_ms) {
        op_finish(op);
        return;
    }
    size_t n = client_naddrs(c);
    op->unsent_deadline_ms = n > 1 ? attempt_deadline(op, now) : op->deadline_ms;
    op->sent_deadline_ms = op->may_resend ? attempt_deadline(op, now) : op->deadline_ms;
    if (client_stream_enqueue(c, op->idx, op) == 0)
        return;
    /* Handled on the completion thread, so that an op that fails at once
     * never calls done inside the *_async call that submitted it. */
    if (!on_cq_thread)
        op_sleep(op, now, TIMER_UNREACHABLE);
    else
        op_unreachable(op, 0);
}

/* Nothing of this attempt was sent: trying another node is safe. */
static void op_unreachable(client_op *op, int timed_out)
{
    okv_client *c = op->c;
    if (!timed_out && !op->tls_probed && !op->reached) {
        /* The connection failed (not merely slow): plaintext against TLS
         * cannot succeed by retrying, so say so now (client_probe.c). */
        op->tls_probed = 1;
        int d = client_tls_diagnose(c, op->idx, op->tls_why, sizeof op->tls_why);
        if (d == 1) {
            op->tls_mismatch = 1;
            op->rc = op_fail(op, OKV_EUNAVAILABLE, "%s", op->tls_why);
            op_finish(op);
            return;
        }
        if (d == 0)
            op->tls_why[0] = '\0';
    }
    int64_t now = client_now_ms();
    op->timed_out |= timed_out && now >= op->deadline_ms;
    op->idx = (op->idx + 1) % client_naddrs(c);
    if (++op->unreachable_in_a_row >= (int)client_naddrs(c)) {
        if (op->reached) {
            op_finish(op);   /* keep the last server's answer */
            return;
        }
        op->rc = op_fail(op, OKV_EUNAVAILABLE, "cannot connect to %s (is orderkvd running there?%s)",
                         c->addr_list, client_tls_hint(c));
        if (now >= op->deadline_ms) {
            op_finish(op);
            return;
        }
        op->unreachable_in_a_row = 0;
        op_continue(op, 1);
        return;
    }
    op_continue(op, 0);
}

void client_op_answered(client_op *op, const client_answer *ans)
{
    okv_client *c = op->c;
    op->unreachable_in_a_row = 0;
    op->reached = 1;
    atomic_store(&c->current, op->idx);
    if (op->resp) {
        protobuf_c_message_free_unpacked(op->resp, NULL);
        op->resp = NULL;
    }
    client_attempt at;
    op->rc = client_interpret(c, op->idx, ans, op->resp_desc, op->is_write, &op->resp, &at,
                              op->err, sizeof op->err);
    int rc = op->rc;
    size_t n = client_naddrs(c);
    if (rc == OKV_ENOTLEADER) {
        long li = at.leader[0] ? client_node_add(c, at.leader) : -1;
        op_learn(op, li);
        if (li >= 0 && (size_t)li != op->idx) {
            op->idx = (size_t)li;
            op_continue(op, 0);
            return;
        }
        op->idx = (op->idx + 1) % client_naddrs(c);
        op_continue(op, 1);
        return;
    }
    if (rc == OKV_EUNAVAILABLE && at.from_server) {
        op->idx = (op->idx + 1) % n;
        op_continue(op, 1);
        return;
    }
    if (!op->is_write && !ans->has_body && (rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT)) {
        op->idx = (op->idx + 1) % n;
        op_continue(op, 0);
        return;
    }
    if (op->is_write && rc == OKV_EUNKNOWN && op->may_resend) {
        op->ambiguous = 1;
        op_learn(op, -1);
        op->idx = (op->idx + 1) % n;
        op_continue(op, 1);
        return;
    }
    op_finish(op);
}

void client_op_resend(client_op *op) { op_continue(op, 0); }

void client_op_stream_failed(client_op *op, int sent)
{
    if (!sent) {
        op_unreachable(op, 0);
        return;
    }
    /* As a unary call whose connection broke: no body, UNAVAILABLE. */
    client_answer ans = { GRPC_STATUS_UNAVAILABLE, "the connection to the node was lost", NULL,
                          0, 0 };
    client_op_answered(op, &ans);
}

void client_op_expired(client_op *op, int sent)
{
    if (!sent) {
        op_unreachable(op, 1);
        return;
    }
    client_answer ans = { GRPC_STATUS_DEADLINE_EXCEEDED, "Deadline Exceeded", NULL, 0, 0 };
    client_op_answered(op, &ans);
}

/* Whether an attempt that may have reached a server can be followed by
 * another (client_call.c's rules): reads always; KV writes when the
 * cluster deduplicates them by request id; Orders writes only with an
 * idempotency key. */
static int op_may_resend(const client_op *op)
{
    if (!op->is_write)
        return 1;
    if (op->orders_call)
        return op->resend_safe;
    return atomic_load(&op->c->servers_dedup);
}

void client_op_submit(client_op *op)
{
    okv_client *c = op->c;
    pthread_mutex_lock(&c->ops_mu);
    c->ops_live++;
    pthread_mutex_unlock(&c->ops_mu);
    int64_t now = client_now_ms();
    op->deadline_ms = now + op->timeout_ms;
    op->may_resend = op_may_resend(op);
    long routed = -1;
    if (op->routed) {
        client_route_key rk = op_route(op);
        /* Loads the table list the first time, blocking this (submitting)
         * thread; never on the completion thread, where a blocking call
         * would wait for itself. */
        routed = on_cq_thread ? client_route_peek(c, &rk) : client_route_pick(c, &rk, op->timeout_ms);
        op->may_resend = op_may_resend(op);
    }
    op->idx = routed >= 0 ? (size_t)routed : atomic_load(&c->current) % client_naddrs(c);
    op->rc = OKV_EUNAVAILABLE;
    op_attempt(op);
}

/* ---- the completion thread ------------------------------------------------ */

static void *cq_main(void *arg)
{
    okv_thread_name("okv-client");
    okv_client *c = arg;
    on_cq_thread = 1;
    int64_t next_tick = client_now_ms() + TICK_MS;
    for (;;) {
        gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                          gpr_time_from_millis(TICK_MS, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(c->async_cq, until, NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE) {
            client_tag *t = ev.tag;
            t->fn(t, ev.success);
        }
        int64_t now = client_now_ms();
        if (now >= next_tick) {
            next_tick = now + TICK_MS;
            run_timers(c, now);
            client_streams_sweep(c, now);
        }
    }
    return NULL;
}

int client_async_start(okv_client *c)
{
    pthread_mutex_init(&c->timer_mu, NULL);
    pthread_mutex_init(&c->ops_mu, NULL);
    pthread_mutex_init(&c->stream_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->ops_cv, &ca);
    pthread_cond_init(&c->stream_cv, &ca);
    pthread_condattr_destroy(&ca);
    c->async_cq = grpc_completion_queue_create_for_next(NULL);
    if (pthread_create(&c->cq_thread, NULL, cq_main, c) != 0) {
        grpc_completion_queue_shutdown(c->async_cq);
        grpc_completion_queue_destroy(c->async_cq);
        return OKV_EINTERNAL;
    }
    return OKV_OK;
}

void client_async_stop(okv_client *c)
{
    /* Every op finishes by its deadline: wait for their callbacks. */
    pthread_mutex_lock(&c->ops_mu);
    while (c->ops_live > 0)
        pthread_cond_wait(&c->ops_cv, &c->ops_mu);
    pthread_mutex_unlock(&c->ops_mu);
    client_streams_shutdown(c);
    grpc_completion_queue_shutdown(c->async_cq);
    pthread_join(c->cq_thread, NULL);
    grpc_completion_queue_destroy(c->async_cq);
    pthread_mutex_destroy(&c->timer_mu);
    pthread_mutex_destroy(&c->ops_mu);
    pthread_mutex_destroy(&c->stream_mu);
    pthread_cond_destroy(&c->ops_cv);
    pthread_cond_destroy(&c->stream_cv);
}
