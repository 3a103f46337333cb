/*
 * tpc_batch.c — the FINISH steps of many transactions to one coordinator
 * group, in one entry (command.h TPC_MANY; tpc_int.h tpc_finish).
 *
 * FINISH only marks a decided coordinator record as settled everywhere,
 * so it may be forgotten later; nobody waits for it. Sent one entry per
 * transaction it was a quarter of a transfer's entries, each replicated,
 * synced and applied on every replica. Here FINISHes queue per group while
 * one batch is in its log, and the next batch carries all that queued
 * meanwhile: under load a batch holds many, and a lone one goes at once.
 *
 * Losing a batch loses nothing: a decided, unfinished record is the
 * sweeper's, which resends RESOLVE (idempotent) and then FINISH. So a
 * batch whose entry did not apply, or past the queue's bound, is dropped,
 * not retried; one this node cannot propose (it does not lead the group)
 * goes the remote way, one message at a time.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "keycodec.h"
#include "node.h"
#include "tpc_int.h"

struct tpc_finq {
    uint64_t gid;
    tpc_group g;
    uint8_t *buf;        /* queued: u32 count, then (u32 length, message) each */
    size_t len, cap;
    uint32_t count;
    int in_flight;       /* a batch of this group is in its log */
};

static tpc_finq *queue_of(tpc_driver *d, tpc_group g)
{
    uint64_t gid = fsm_group_id(g.table_id, g.partition);
    for (size_t i = 0; i < d->nfinq; i++)
        if (d->finq[i]->gid == gid)
            return d->finq[i];
    tpc_finq **grown = realloc(d->finq, (d->nfinq + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    d->finq = grown;
    tpc_finq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->gid = gid;
    q->g = g;
    d->finq[d->nfinq++] = q;
    return q;
}

static int append(tpc_finq *q, const tpc_msg *m)
{
    size_t ml = tpc_msg_encoded_size(m);
    size_t need = (q->len ? q->len : 4) + 4 + ml;
    if (need > q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 1024;
        while (cap < need)
            cap *= 2;
        uint8_t *b = realloc(q->buf, cap);
        if (!b)
            return -1;
        q->buf = b;
        q->cap = cap;
    }
    if (!q->len)
        q->len = 4;
    keycodec_put_u32be(q->buf + q->len, (uint32_t)ml);
    tpc_msg_encode(m, q->buf + q->len + 4);
    q->len += 4 + ml;
    q->count++;
    keycodec_put_u32be(q->buf, q->count);
    return 0;
}

typedef struct batch {
    tpc_driver *d;
    tpc_finq *q;
} batch;

static void send_batch(tpc_driver *d, tpc_finq *q);

static void ignore_answer(void *arg, const tpc_reply *r)
{
    (void)arg;
    (void)r;
}

static void batch_done(void *arg, int code, const command_result *r, uint64_t leader)
{
    (void)code;   /* not applied: the sweeper finishes those records */
    (void)r;
    (void)leader;
    batch *b = arg;
    tpc_driver *d = b->d;
    tpc_finq *q = b->q;
    free(b);
    pthread_mutex_lock(&d->fin_mu);
    q->in_flight = 0;
    pthread_mutex_unlock(&d->fin_mu);
    send_batch(d, q);
}

/* Proposes what q has queued, unless a batch is in flight or nothing is. */
static void send_batch(tpc_driver *d, tpc_finq *q)
{
    pthread_mutex_lock(&d->fin_mu);
    if (q->in_flight || !q->count || d->fin_stop) {
        pthread_mutex_unlock(&d->fin_mu);
        return;
    }
    uint8_t *msgs = q->buf;
    size_t mlen = q->len;
    q->buf = NULL;
    q->len = q->cap = 0;
    q->count = 0;
    q->in_flight = 1;
    pthread_mutex_unlock(&d->fin_mu);

    node *n = d->n;
    size_t clen;
    uint8_t *cmd = NULL;
    batch *b = NULL;
    if (raftstore_leader(n->rs, q->gid) == n->node_id && mlen <= COMMAND_TXN_MAX &&
        (cmd = command_tpc_new(CMD_TPC_MANY, q->g.table_id, q->g.partition, msgs, mlen,
                               &clen)) &&
        (b = malloc(sizeof *b))) {
        b->d = d;
        b->q = q;
        free(msgs);
        raftstore_propose_owned(n->rs, q->gid, cmd, clen, batch_done, b);
        return;
    }
    free(cmd);
    /* Not the leader here (a stale route sent the transaction to this
     * node, or leadership moved): each goes the remote way. */
    const uint8_t *p = msgs + 4;
    for (size_t left = mlen - 4; left >= 4;) {
        uint32_t ml = keycodec_get_u32be(p);
        tpc_msg m;
        okv_error err;
        okv_error_clear(&err);
        if (ml > left - 4 || tpc_msg_decode(p + 4, ml, &m, &err) != OKV_OK)
            break;
        if (!tpc_driver_stopping(d))
            tpc_send_remote(d, &m, 5000, ignore_answer, NULL);
        p += 4 + ml;
        left -= 4 + (size_t)ml;
    }
    free(msgs);
    pthread_mutex_lock(&d->fin_mu);
    q->in_flight = 0;
    pthread_mutex_unlock(&d->fin_mu);
}

void tpc_finish(tpc_driver *d, const tpc_msg *m)
{
    pthread_mutex_lock(&d->fin_mu);
    tpc_finq *q = d->fin_stop ? NULL : queue_of(d, m->self);
    int ok = q && q->count < COMMAND_TPC_MANY_MAX && append(q, m) == 0;
    pthread_mutex_unlock(&d->fin_mu);
    if (ok)
        send_batch(d, q);
}

void tpc_finish_stop(tpc_driver *d)
{
    pthread_mutex_lock(&d->fin_mu);
    d->fin_stop = 1;
    pthread_mutex_unlock(&d->fin_mu);
}

void tpc_finish_free(tpc_driver *d)
{
    for (size_t i = 0; i < d->nfinq; i++) {
        free(d->finq[i]->buf);
        free(d->finq[i]);
    }
    free(d->finq);
    d->finq = NULL;
    d->nfinq = 0;
}
