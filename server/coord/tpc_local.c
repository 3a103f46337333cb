/*
 * tpc_local.c — a 2PC step for a group this node leads, proposed straight
 * to the raft loop instead of through the internal client and gRPC to
 * itself (tpc_int.h tpc_send_local).
 *
 * The coordinator's steps (its vote, DECIDE, FINISH) are always to a group
 * the node leads, since clients send a transaction to its coordinator's
 * leader; so are some participants'. Through gRPC each cost a call to
 * self: protobuf both ways, HTTP/2 on loopback, four thread hops. Here it
 * is one queued proposal, answered on the raft loop thread when its entry
 * applies, exactly as service_tpc.c answers a KV.TxnPart call.
 *
 * A local proposal has no deadline of its own: a leader cut off from the
 * others keeps it pending until its entry applies or another takes its
 * index. The remote path's calls time out, and the driver's rules count on
 * every step being answered in bounded time (an unanswered PREPARE means
 * abort, an unanswered DECIDE means "unknown"). So each local step is also
 * listed with its deadline, and the sweeper answers those past it as
 * unanswered (OKV_EUNKNOWN: it may still apply, which every step allows,
 * tpc.h T4). Whichever of the two answers first is the answer; the other
 * only frees. A step the leader turns down (not the leader any more, or
 * its index went to another entry: certainly not applied) goes the remote
 * way, which finds the new leader.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failpoint.h"
#include "fsm.h"
#include "node.h"
#include "tpc_int.h"

struct tpc_local {
    tpc_driver *d;
    struct tpc_local *prev, *next;   /* d->local; guarded by d->mu */
    int listed;                      /* guarded by d->mu */
    _Atomic int taken;               /* 1 once someone answers fn */
    uint64_t deadline_ms;            /* node_now_ms */
    int timeout_ms;
    tpc_step_fn fn;
    void *arg;
    uint8_t *enc;                    /* the step, for the remote way */
    size_t enc_len;
};

static void unlist(tpc_driver *d, tpc_local *l)
{
    if (!l->listed)
        return;
    if (l->prev)
        l->prev->next = l->next;
    else
        d->local = l->next;
    if (l->next)
        l->next->prev = l->prev;
    l->listed = 0;
}

static void local_free(tpc_local *l)
{
    free(l->enc);
    free(l);
}

/* The leader's answer. Runs on the raft loop thread (or at once, on the
 * sender's, if the store is stopping). */
static void local_applied(void *arg, int code, const command_result *r, uint64_t leader)
{
    (void)leader;
    tpc_local *l = arg;
    tpc_driver *d = l->d;
    int won = atomic_exchange(&l->taken, 1) == 0;
    pthread_mutex_lock(&d->mu);
    unlist(d, l);
    pthread_mutex_unlock(&d->mu);
    if (!won) {   /* the sweeper answered it as timed out */
        local_free(l);
        return;
    }
    if ((code == OKV_ENOTLEADER || code == OKV_EUNAVAILABLE) && !tpc_driver_stopping(d)) {
        tpc_msg m;
        okv_error err;
        okv_error_clear(&err);
        if (tpc_msg_decode(l->enc, l->enc_len, &m, &err) == OKV_OK) {
            tpc_send_remote(d, &m, l->timeout_ms, l->fn, l->arg);   /* copies m */
            local_free(l);
            return;
        }
    }
    tpc_reply rep;
    memset(&rep, 0, sizeof rep);
    rep.rc = code;
    if (code == OKV_OK && r) {
        rep.state = r->tpc_state;
        /* As the remote way reports it: through the wire's error codes. */
        rep.fail.code = r->code ? tpc_code_of(service_error_code(r->code)) : OKV_OK;
        rep.fail.failed = r->failed;
        rep.fail.reason = r->reason;
    } else if (code == OKV_OK) {
        rep.rc = OKV_EINTERNAL;
    }
    snprintf(rep.msg, sizeof rep.msg, "%s", code == OKV_OK ? "" : okv_strerror(code));
    l->fn(l->arg, &rep);
    local_free(l);
}

int tpc_send_local(tpc_driver *d, const tpc_msg *m, int timeout_ms, tpc_step_fn fn, void *arg)
{
    node *n = d->n;
    uint64_t gid = fsm_group_id(m->self.table_id, m->self.partition);
    if (raftstore_leader(n->rs, gid) != n->node_id)
        return 0;
    tpc_msg copy = *m;
    /* The leader's clock judges a PREPARE's or CHECK's deadline when it is
     * proposed, as service_tpc.c stamps a step that arrives by gRPC. */
    if (copy.kind == TPC_PREPARE || copy.kind == TPC_CHECK)
        copy.clock_ms = tpc_wall_ms();
    size_t ml = tpc_msg_encoded_size(&copy);
    tpc_local *l = calloc(1, sizeof *l);
    uint8_t *enc = malloc(ml);
    if (!l || !enc) {
        free(l);
        free(enc);
        return 0;   /* the remote way reports the shortage */
    }
    tpc_msg_encode(&copy, enc);
    size_t clen;
    uint8_t *cmd = command_tpc_new(CMD_TPC, m->self.table_id, m->self.partition, enc, ml, &clen);
    if (!cmd) {
        free(l);
        free(enc);
        return 0;
    }
    l->d = d;
    l->timeout_ms = timeout_ms;
    l->deadline_ms = node_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    l->fn = fn;
    l->arg = arg;
    l->enc = enc;
    l->enc_len = ml;
    pthread_mutex_lock(&d->mu);
    if (d->stop) {
        pthread_mutex_unlock(&d->mu);
        free(cmd);
        local_free(l);
        return 0;   /* the remote way answers "stopping" */
    }
    l->next = d->local;
    if (d->local)
        d->local->prev = l;
    d->local = l;
    l->listed = 1;
    pthread_mutex_unlock(&d->mu);
    raftstore_propose_owned(n->rs, gid, cmd, clen, local_applied, l);
    /* crash: the coordinator's leader handed its decision (its vote, or
     * DECIDE) to the raft loop; the entry may be committed later by the
     * next leader, or truncated */
    int coord = m->self.table_id == m->coord.table_id && m->self.partition == m->coord.partition;
    if (m->kind == TPC_DECIDE || (m->kind == TPC_PREPARE && m->flag && coord))
        (void)OKV_FAILPOINT("tpc.local.after_propose_decision");
    return 1;
}

void tpc_local_expire(tpc_driver *d, int all)
{
    typedef struct { tpc_step_fn fn; void *arg; } due;
    for (;;) {
        due batch[64];
        size_t nb = 0;
        uint64_t now = node_now_ms();
        pthread_mutex_lock(&d->mu);
        tpc_local *l = d->local;
        while (l && nb < sizeof batch / sizeof batch[0]) {
            tpc_local *next = l->next;
            if ((all || now >= l->deadline_ms) && atomic_exchange(&l->taken, 1) == 0) {
                /* Copied now: once off the list and unlocked, the leader's
                 * answer may free l at any moment. */
                batch[nb].fn = l->fn;
                batch[nb].arg = l->arg;
                nb++;
                unlist(d, l);
            }
            l = next;
        }
        pthread_mutex_unlock(&d->mu);
        for (size_t i = 0; i < nb; i++) {
            tpc_reply r;
            memset(&r, 0, sizeof r);
            r.rc = all ? OKV_EUNAVAILABLE : OKV_EUNKNOWN;
            snprintf(r.msg, sizeof r.msg, "%s", all ? "the node is stopping"
                     : "no answer from this node's own group within the step's time");
            batch[i].fn(batch[i].arg, &r);
        }
        if (nb < sizeof batch / sizeof batch[0])
            return;
    }
}
