/*
 * workload_orders_dup.c — copies of one keyed request sent at once.
 *
 * A resend after a timeout usually finds the first attempt's idempotency
 * record and replays it; the dangerous case is two copies that both read
 * "no record" before either commits (a client that resends while its first
 * attempt is still being applied, or two workers handling one message).
 * Only the conditions of the transaction keep those from both applying, so
 * the workload sends OW_DUP copies of one create, deposit, reservation or
 * payment of a fresh order on the asynchronous API, all in flight together.
 * Each copy is recorded as an op of a process of its own (a fresh process
 * id per copy: one op in flight per process), then, if no copy got an
 * answer, the request is resent with the same key as usual.
 */
#include <stdio.h>
#include <string.h>

#include "workload_orders.h"

#define OW_DUP 3

typedef struct dup_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int left;
} dup_wait;

typedef struct dup_slot {
    dup_wait *w;
    int rc;
    void *resp;
    char err[512];
} dup_slot;

/* On the client's completion thread: keep the answer, count down. */
static void on_done(void *arg, const okv_result *r)
{
    dup_slot *s = arg;
    s->rc = okv_result_code(r);
    s->resp = s->rc == OKV_OK ? okv_result_take_orders_response(r) : NULL;
    snprintf(s->err, sizeof s->err, "%s: %s", okv_strerror(s->rc), okv_result_errmsg(r));
    pthread_mutex_lock(&s->w->mu);
    if (--s->w->left == 0)
        pthread_cond_signal(&s->w->cv);
    pthread_mutex_unlock(&s->w->mu);
}

/* The request of the burst: 1 if q is ready. A payment needs a fresh
 * order, placed first (its own op). */
static int pick_request(jclient *cl, ow_req *q)
{
    switch (client_rand_below(cl, 4)) {
    case 0:
        ow_req_create(cl, q, 1);
        return 1;
    case 1:
        ow_req_deposit(cl, q);
        return 1;
    case 2:
        ow_req_reserve(cl, q);
        return 1;
    default: {
        ow_req c;
        ow_req_create(cl, &c, 1);
        ow_req_run(cl, &c);
        return c.made_ok && ow_req_pay(cl, q, &c.made) == 0;
    }
    }
}

void ow_dup_burst(jclient *cl)
{
    ow_req q;
    if (!pick_request(cl, &q))
        return;
    history *h = runner_history(cl->r);
    dup_wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, OW_DUP };
    hist_proc procs[OW_DUP];
    dup_slot slots[OW_DUP];
    memset(procs, 0, sizeof procs);
    memset(slots, 0, sizeof slots);
    for (int i = 0; i < OW_DUP; i++) {
        procs[i].id = history_new_process(h);
        slots[i].w = &w;
        history_invoke(h, &procs[i], ow_kind_f(q.kind), ow_req_jv(&q));
    }
    for (int i = 0; i < OW_DUP; i++) {
        int rc = ow_req_call(cl, &q, NULL, on_done, &slots[i]);
        if (rc != OKV_OK) {   /* not submitted: no callback will come */
            slots[i].rc = rc;
            snprintf(slots[i].err, sizeof slots[i].err, "%s: %s", okv_strerror(rc), okv_errmsg(cl->c));
            pthread_mutex_lock(&w.mu);
            w.left--;
            pthread_mutex_unlock(&w.mu);
        }
    }
    pthread_mutex_lock(&w.mu);
    while (w.left > 0)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    int answered = 0;
    for (int i = 0; i < OW_DUP; i++) {
        dup_slot *s = &slots[i];
        hist_type t = ow_outcome(s->rc);
        if (t == HIST_OK && q.kind == OW_CREATE)
            ow_req_made(cl, &q, ((Orderkv__V1__CreateOrderResponse *)s->resp)->order);
        /* Completed after the wait: a completion stamped late only widens
         * the op's interval, which the checker allows. */
        history_complete(h, &procs[i], t, t == HIST_OK ? ow_ok_jv(&q, s->resp) : ow_req_jv(&q),
                         t == HIST_OK ? NULL : s->err, NULL);
        okv_orders_response_free(s->resp);
        answered |= !ow_should_retry(s->rc);
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (!answered)
        ow_req_run(cl, &q);
}
