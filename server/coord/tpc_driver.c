/*
 * tpc_driver.c — driving one transaction across partitions, and the
 * internal client every step travels on (tpc_driver.h).
 *
 * The commit, for a transaction split into shares by partition (share 0
 * is the coordinator's: the first write's partition):
 *   1. PREPARE every other share at once.
 *   2. When every answer is in and all PREPARED, the coordinator votes
 *      last: its PREPARE with flag 1 checks its own share and, if that
 *      passes, commits the transaction in the same entry (tpc.h). One
 *      entry and one round fewer than PREPARE at the coordinator followed
 *      by DECIDE. Otherwise DECIDE ABORT with the first refusal (numbered
 *      as the request numbers its items). A PREPARE that got no answer
 *      counts as a refusal: aborting is always allowed before the decision.
 *   3. The client's answer is the applied decision: the vote's COMMITTED,
 *      or DECIDE's outcome. DECIDE is a compare-and-swap, so if a sweeper
 *      aborted the transaction first (its deadline passed), the answer
 *      says aborted. No answer to DECIDE is OKV_EUNKNOWN: it may have
 *      applied; TxnStatus tells.
 *   4. RESOLVE every other share with the decision; once all applied,
 *      FINISH at the coordinator, batched with other transactions'
 *      (tpc_batch.c). A lost RESOLVE or FINISH is the sweeper's to resend
 *      (the coordinator's record stays unfinished until then).
 */
#define _POSIX_C_SOURCE 200809L
#include "tpc_driver.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_async.h"
#include "failpoint.h"
#include "log.h"
#include "node.h"
#include "orderkv.pb-c.h"
#include "tpc_int.h"

uint64_t tpc_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- one step, to the leader of its partition (tpc_local.c when that is
 * this node) --------------------------------------------------------------- */

typedef struct step {
    tpc_step_fn fn;
    void *arg;
} step;

static void step_done(client_op *op)
{
    step *s = op->done_arg;
    tpc_reply r;
    memset(&r, 0, sizeof r);
    r.rc = op->rc;
    if (op->rc == OKV_OK && op->resp) {
        const Orderkv__V1__TxnPartResponse *resp = (const Orderkv__V1__TxnPartResponse *)op->resp;
        r.state = (uint8_t)resp->state;
        r.fail.code = tpc_code_of(resp->refusal);
        r.fail.failed = resp->failed;
        r.fail.reason = (uint8_t)resp->reason;
    }
    snprintf(r.msg, sizeof r.msg, "%.200s", op->err);
    client_op_free(op);
    s->fn(s->arg, &r);
    free(s);
}

void tpc_send(tpc_driver *d, const tpc_msg *m, int timeout_ms, tpc_step_fn fn, void *arg)
{
    if (!tpc_send_local(d, m, timeout_ms, fn, arg))
        tpc_send_remote(d, m, timeout_ms, fn, arg);
}

void tpc_send_remote(tpc_driver *d, const tpc_msg *m, int timeout_ms, tpc_step_fn fn, void *arg)
{
    tpc_reply fail;
    memset(&fail, 0, sizeof fail);
    /* A step may be sent from a raft loop or a finishing step after the
     * driver stopped: the hold sees the client gone rather than freed. */
    okv_client *c = tpc_driver_client_hold(d);
    if (!c) {
        fail.rc = OKV_EUNAVAILABLE;
        snprintf(fail.msg, sizeof fail.msg, "this node is shutting down; a 2PC step was not sent");
        fn(arg, &fail);
        return;
    }
    fail.rc = OKV_ENOMEM;
    const catalog_table *t = tpc_table(d, m->self.table_id);
    size_t len = tpc_msg_encoded_size(m);
    uint8_t *enc = malloc(len);
    step *s = malloc(sizeof *s);
    client_op *op = NULL;
    if (t && enc && s) {
        tpc_msg_encode(m, enc);
        Orderkv__V1__TxnPartRequest req = ORDERKV__V1__TXN_PART_REQUEST__INIT;
        req.table = (char *)t->name;
        req.partition = m->self.partition;
        req.message.data = enc;
        req.message.len = len;
        client_route_key rk = { t->name, "", 0, (long)m->self.partition };
        op = client_op_new(c, M_TXN_PART, &orderkv__v1__txn_part_response__descriptor, 0,
                           timeout_ms, &rk);
        if (op && client_op_pack(op, &req.base) != OKV_OK) {
            client_op_free(op);
            op = NULL;
        }
    }
    free(enc);
    if (!op) {
        tpc_driver_client_release(d);
        free(s);
        if (!t)
            fail.rc = OKV_ENOTFOUND;
        snprintf(fail.msg, sizeof fail.msg, "%s", t ? "out of memory sending a 2PC step"
                                                    : "2PC step for a table this node lacks");
        fn(arg, &fail);
        return;
    }
    s->fn = fn;
    s->arg = arg;
    op->done = step_done;
    op->done_arg = s;
    client_op_submit(op);
    tpc_driver_client_release(d);
}

/* ---- commit -------------------------------------------------------------- */

struct run;

typedef struct share {
    struct run *r;
    tpc_group g;
    txn t;                 /* conds and writes of this partition (borrowed keys) */
    uint32_t *orig;        /* share item i -> the request's item number */
    uint8_t *enc;
    size_t enc_len;
    tpc_reply prep;
    int lock_waits;        /* PREPAREs sent again after meeting a lock */
} share;

typedef struct run {
    tpc_driver *d;
    tpc_id id;
    uint64_t deadline_ms;
    txn copy;              /* the request's items; keys and values point into buf */
    uint8_t *buf;
    size_t nshares;
    share shares[TPC_MAX_PARTS];
    _Atomic int waiting;
    tpc_done_fn done;
    void *arg;
    uint8_t decision;
    uint8_t answered;       /* planted tpc.driver.answer_early told the client already */
    _Atomic int left_over;  /* a RESOLVE did not settle its share: no FINISH */
} run;

static void run_free(run *r)
{
    for (size_t i = 0; i < r->nshares; i++) {
        free(r->shares[i].t.conds);
        free(r->shares[i].t.writes);
        free(r->shares[i].orig);
        free(r->shares[i].enc);
    }
    txn_clear(&r->copy);
    free(r->buf);
    free(r);
}

static share *share_of(run *r, const txn_key *k)
{
    for (size_t i = 0; i < r->nshares; i++)
        if (r->shares[i].g.table_id == k->table_id && r->shares[i].g.partition == k->partition)
            return &r->shares[i];
    if (r->nshares == TPC_MAX_PARTS)
        return NULL;
    share *s = &r->shares[r->nshares++];
    s->g.table_id = k->table_id;
    s->g.partition = k->partition;
    return s;
}

/* Splits the copy into shares, the coordinator's first. */
static int split(run *r, okv_error *err)
{
    txn *t = &r->copy;
    const txn_key *first = t->n_writes ? &t->writes[0].k : &t->conds[0].k;
    share_of(r, first);
    size_t n = t->n_conds + t->n_writes;
    for (size_t i = 0; i < n; i++) {
        const txn_key *k = i < t->n_conds ? &t->conds[i].k : &t->writes[i - t->n_conds].k;
        if (!share_of(r, k))
            return okv_error_set(err, OKV_EINVAL, "a transaction may span at most %u "
                                 "partitions", TPC_MAX_PARTS);
    }
    for (size_t s = 0; s < r->nshares; s++) {
        share *sh = &r->shares[s];
        sh->t.conds = calloc(t->n_conds + 1, sizeof *sh->t.conds);
        sh->t.writes = calloc(t->n_writes + 1, sizeof *sh->t.writes);
        sh->orig = calloc(n, sizeof *sh->orig);
        if (!sh->t.conds || !sh->t.writes || !sh->orig)
            return okv_error_set(err, OKV_ENOMEM, "out of memory splitting a transaction");
    }
    /* Conditions first, then writes, in each share as in the request:
     * a share's item numbers map back through orig. */
    for (size_t i = 0; i < t->n_conds; i++) {
        share *sh = share_of(r, &t->conds[i].k);
        sh->orig[sh->t.n_conds] = (uint32_t)i;
        sh->t.conds[sh->t.n_conds++] = t->conds[i];
    }
    for (size_t s = 0; s < r->nshares; s++) {
        share *sh = &r->shares[s];
        for (size_t w = 0; w < t->n_writes; w++) {
            if (t->writes[w].k.table_id != sh->g.table_id ||
                t->writes[w].k.partition != sh->g.partition)
                continue;
            sh->orig[sh->t.n_conds + sh->t.n_writes] = (uint32_t)(t->n_conds + w);
            sh->t.writes[sh->t.n_writes++] = t->writes[w];
        }
        sh->enc_len = txn_encoded_size(&sh->t);
        sh->enc = malloc(sh->enc_len);
        if (!sh->enc)
            return okv_error_set(err, OKV_ENOMEM, "out of memory splitting a transaction");
        txn_encode(&sh->t, sh->enc);
    }
    return OKV_OK;
}

static tpc_msg base_msg(const run *r, uint8_t kind, const share *sh)
{
    tpc_msg m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.id = r->id;
    m.clock_ms = tpc_wall_ms();
    m.deadline_ms = r->deadline_ms;
    m.self = sh->g;
    m.coord = r->shares[0].g;
    return m;
}

/* Share i's PREPARE; the coordinator's (share 0) names every participant. */
static tpc_msg prepare_msg(const run *r, size_t i)
{
    const share *sh = &r->shares[i];
    tpc_msg m = base_msg(r, TPC_PREPARE, sh);
    m.share = sh->enc;
    m.share_len = sh->enc_len;
    if (i == 0) {
        m.nparts = (uint32_t)r->nshares;
        for (size_t k = 0; k < r->nshares; k++)
            m.parts[k] = r->shares[k].g;
    }
    return m;
}

static void answer(run *r, int code, uint32_t failed, uint8_t reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void answer(run *r, int code, uint32_t failed, uint8_t reason, const char *fmt, ...)
{
    tpc_answer a;
    memset(&a, 0, sizeof a);
    a.code = code;
    a.failed = failed;
    a.reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a.msg, sizeof a.msg, fmt, ap);
    va_end(ap);
    if (r->answered)
        return;
    r->answered = 1;
    r->done(r->arg, &a);
}

/* The driver is stopping: no further step (the sweepers finish it). */
static int stopping(run *r)
{
    if (!tpc_driver_stopping(r->d))
        return 0;
    run_free(r);
    return 1;
}

static void resolved(void *arg, const tpc_reply *rep)
{
    run *r = arg;
    /* Answers may come on two threads (a send that fails at once answers
     * on its caller's): the flag is atomic, set before the count drops. */
    if (rep->rc != OKV_OK || rep->state == TPC_PREPARED)
        atomic_store(&r->left_over, 1);   /* no FINISH: the sweeper resends */
    int left = atomic_fetch_sub(&r->waiting, 1);
    /* crash: one participant resolved, the others maybe not */
    if (left > 1 && rep->rc == OKV_OK)
        (void)OKV_FAILPOINT("tpc.driver.after_first_resolve");
    if (left != 1)
        return;
    if (atomic_load(&r->left_over)) {
        run_free(r);
        return;
    }
    if (stopping(r))
        return;
    tpc_msg m = base_msg(r, TPC_FINISH, &r->shares[0]);
    tpc_finish(r->d, &m);
    run_free(r);
}

static void resolve_all(run *r)
{
    if (stopping(r))
        return;
    /* The last answer may free r before the loop looks at it again: the
     * messages are built first. */
    size_t n = r->nshares - 1;
    tpc_msg *ms = malloc(n * sizeof *ms);
    if (!ms) {
        run_free(r);   /* the sweeper resends them */
        return;
    }
    for (size_t i = 0; i < n; i++) {
        ms[i] = base_msg(r, TPC_RESOLVE, &r->shares[i + 1]);
        ms[i].flag = r->decision == TPC_COMMITTED;
    }
    tpc_driver *d = r->d;
    atomic_store(&r->waiting, (int)n);
    for (size_t i = 0; i < n; i++)
        tpc_send(d, &ms[i], 5000, resolved, r);
    free(ms);
}

/* Failpoints tpc.driver.delay_*: how far past the deadline a step is held
 * (the sweepers step in SWEEP_GRACE_MS, a second, after it). */
#define FP_DELAY_MS 2500

static void resolve_later(void *arg, int stopping)
{
    run *r = arg;
    if (stopping) {
        run_free(r);   /* the sweepers finish it */
        return;
    }
    resolve_all(r);
}

static void decided(void *arg, const tpc_reply *rep)
{
    run *r = arg;
    if (rep->rc != OKV_OK) {
        answer(r, OKV_EUNKNOWN, 0, 0, "the decision on transaction %" PRIu64 "/%" PRIu64
               " got no answer (%s); it may have committed: ask its status", r->id.client,
               r->id.req, rep->msg);
        run_free(r);   /* the coordinator's sweeper finishes it */
        return;
    }
    r->decision = rep->state;
    (void)OKV_FAILPOINT("tpc.driver.before_reply");   /* crash: decided, nobody told */
    if (rep->state == TPC_COMMITTED)
        answer(r, OKV_OK, 0, 0, "committed");
    else
        answer(r, rep->fail.code ? rep->fail.code : OKV_ECONFLICT, rep->fail.failed,
               rep->fail.reason, "aborted");
    if (rep->state != TPC_COMMITTED && rep->state != TPC_ABORTED) {
        run_free(r);
        return;
    }
    /* crash: answered, the participants still PREPARED */
    (void)OKV_FAILPOINT("tpc.driver.before_resolve");
    if (OKV_FAILPOINT("tpc.driver.delay_resolve")) {
        /* Past the deadline and the sweepers' grace: a participant's
         * sweeper asks the coordinator first (the commit stands). */
        tpc_driver_after(r->d, r->d->timeout_ms + FP_DELAY_MS, resolve_later, r);
        return;
    }
    resolve_all(r);
}

/* Every PREPARE answered: the decision. */
static void prepared(void *arg, const tpc_reply *rep);
static void voted(void *arg, const tpc_reply *rep);

/* A hot key: a PREPARE that met another transaction's lock recorded
 * nothing, so it is sent again a little later, a few times, within the
 * deadline, before the transaction gives up with a conflict. */
#define LOCK_WAITS 6
#define LOCK_WAIT_FIRST_MS 2

static int wait_for_lock(share *sh, const tpc_reply *rep)
{
    run *r = sh->r;
    if (rep->rc != OKV_OK || rep->state != TPC_NONE || rep->fail.reason != TXN_FAIL_LOCKED ||
        sh->lock_waits >= LOCK_WAITS || tpc_driver_stopping(r->d))
        return 0;
    int delay = LOCK_WAIT_FIRST_MS << sh->lock_waits;
    delay += (int)((uint64_t)rand() % (uint64_t)(delay / 2 + 1));   /* apart, not in step */
    if (tpc_wall_ms() + (uint64_t)delay + 100u >= r->deadline_ms)
        return 0;
    sh->lock_waits++;
    size_t i = (size_t)(sh - r->shares);
    tpc_msg m = prepare_msg(r, i);
    m.flag = i == 0;   /* share 0 is the coordinator's vote */
    tpc_send_later(r->d, &m, delay, r->d->timeout_ms / 2, i == 0 ? voted : prepared, sh);
    return 1;
}

/* A share's refusal as DECIDE ABORT carries it: numbered as the request
 * numbers its items (the C record keeps it for resends and TxnStatus). */
static tpc_fail refusal_of(const run *r, const share *s)
{
    if (s->prep.rc == OKV_OK && s->prep.fail.code) {
        tpc_fail f = s->prep.fail;
        size_t items = s->t.n_conds + s->t.n_writes;
        f.failed = f.failed < items ? s->orig[f.failed] : 0;
        return f;
    }
    OKV_WARN("2PC %" PRIu64 "/%" PRIu64 ": PREPARE at table %u partition %u got no answer (%s); "
             "aborting", r->id.client, r->id.req, s->g.table_id, s->g.partition, s->prep.msg);
    return (tpc_fail){ OKV_ECONFLICT, 0, 0 };
}

static void decide_abort(run *r, tpc_fail why)
{
    tpc_msg m = base_msg(r, TPC_DECIDE, &r->shares[0]);
    m.flag = 0;
    m.fail = why;
    tpc_send(r->d, &m, r->d->timeout_ms, decided, r);
}

/* The coordinator's vote (share 0, sent last): COMMITTED in its entry, or
 * refused (then DECIDE ABORT with why), or "not now" (a lock: wait). No
 * answer: DECIDE ABORT, a compare-and-swap, tells what happened, since a
 * vote that applied left C COMMITTED and one that did not will be turned
 * down by the tombstone the abort leaves. */
static void voted(void *arg, const tpc_reply *rep)
{
    share *sh = arg;
    run *r = sh->r;
    if (wait_for_lock(sh, rep))
        return;
    sh->prep = *rep;
    if (rep->rc == OKV_OK && rep->state == TPC_COMMITTED) {
        decided(r, rep);
        return;
    }
    if (rep->rc == OKV_OK && rep->state == TPC_PREPARED) {
        /* Prepared by an earlier copy without the vote: decide as usual. */
        tpc_msg m = base_msg(r, TPC_DECIDE, &r->shares[0]);
        m.flag = 1;
        tpc_send(r->d, &m, r->d->timeout_ms, decided, r);
        return;
    }
    /* Refused (ABORTED), still locked after the waits (NONE, its fail
     * names the key), or no answer. */
    tpc_fail why = { OKV_ECONFLICT, 0, 0 };
    if (rep->rc == OKV_OK)
        why = refusal_of(r, sh);
    decide_abort(r, why);
}

static void send_vote(run *r)
{
    tpc_msg m = prepare_msg(r, 0);
    m.flag = 1;
    tpc_send(r->d, &m, r->d->timeout_ms, voted, &r->shares[0]);
}

static void vote_later(void *arg, int stopping)
{
    run *r = arg;
    if (stopping) {
        answer(r, OKV_EUNAVAILABLE, 0, 0, "the node is stopping; the transaction was not "
               "decided and will be aborted");
        run_free(r);
        return;
    }
    send_vote(r);
}

/* Every other participant answered: the coordinator votes last if all of
 * them PREPARED, else the transaction aborts. */
static void prepared(void *arg, const tpc_reply *rep)
{
    share *sh = arg;
    run *r = sh->r;
    if (wait_for_lock(sh, rep))
        return;
    sh->prep = *rep;
    if (atomic_fetch_sub(&r->waiting, 1) != 1)
        return;
    (void)OKV_FAILPOINT("tpc.driver.before_decide");   /* crash: every other share answered */
    if (tpc_driver_stopping(r->d)) {
        answer(r, OKV_EUNAVAILABLE, 0, 0, "the node is stopping; the transaction was not "
               "decided and will be aborted");
        run_free(r);
        return;
    }
    for (size_t i = 1; i < r->nshares; i++) {
        const share *s = &r->shares[i];
        if (!(s->prep.rc == OKV_OK &&
              (s->prep.state == TPC_PREPARED || s->prep.state == TPC_COMMITTED))) {
            decide_abort(r, refusal_of(r, s));
            return;
        }
    }
    /* Planted bug: "committed" before the decision applies; the
     * coordinator's own vote may still refuse (a lost acknowledged write). */
    if (OKV_FAILPOINT("tpc.driver.answer_early"))
        answer(r, OKV_OK, 0, 0, "committed");
    if (OKV_FAILPOINT("tpc.driver.slow_vote")) {
        /* A slow path to the coordinator: the vote goes out well within the
         * deadline, but after a client's shorter call deadline, so the
         * client may settle the outcome (okv_txn_status) before it lands. */
        tpc_driver_after(r->d, r->d->timeout_ms / 4, vote_later, r);
        return;
    }
    if (OKV_FAILPOINT("tpc.driver.delay_vote")) {
        /* Past the deadline and the sweepers' grace: the coordinator's
         * sweeper aborts first, and the late vote must be turned down. */
        tpc_driver_after(r->d, r->d->timeout_ms + FP_DELAY_MS, vote_later, r);
        return;
    }
    send_vote(r);
}

tpc_id tpc_driver_new_id(tpc_driver *d)
{
    /* Clients number their ids from 1 with the top bit clear: an id with
     * it set is a node's, its id and wall-clock start in the rest, so no
     * two nodes, and no restart of one, ever make the same. */
    static _Atomic uint64_t seq;
    node *n = d->n;
    uint64_t client = (1ull << 63) | (n->node_id & 0x7fffu) << 48 |
                      ((n->started_ms + tpc_wall_ms() - node_now_ms()) & 0xffffffffffffull);
    return (tpc_id){ client, atomic_fetch_add(&seq, 1) + 1 };
}

void tpc_driver_commit(tpc_driver *d, const txn *t, tpc_id id, tpc_done_fn done, void *arg)
{
    (void)OKV_FAILPOINT("tpc.driver.before_start");   /* sleep(MS): the call reaches it late */
    okv_error err;
    okv_error_clear(&err);
    run *r = calloc(1, sizeof *r);
    size_t len = txn_encoded_size(t);
    uint8_t *buf = malloc(len);
    if (!r || !buf) {
        free(r);
        free(buf);
        tpc_answer a = { OKV_ENOMEM, 0, 0, "out of memory starting a transaction" };
        done(arg, &a);
        return;
    }
    /* A copy the run owns: the caller's request may go away first. */
    txn_encode(t, buf);
    r->buf = buf;
    r->d = d;
    r->id = id;
    r->done = done;
    r->arg = arg;
    r->deadline_ms = tpc_wall_ms() + (uint64_t)d->timeout_ms;
    int rc = txn_decode(buf, len, &r->copy, &err);
    if (rc == OKV_OK)
        rc = split(r, &err);
    if (rc != OKV_OK) {
        answer(r, rc, 0, 0, "%s", err.msg);
        run_free(r);
        return;
    }
    /* The last answer may free r (and the shares' bytes) before this loop
     * looks at it again: every message is encoded before the first leaves
     * (tpc_send copies it). */
    size_t n = r->nshares;
    tpc_msg *ms = malloc(n * sizeof *ms);
    if (!ms) {
        answer(r, OKV_ENOMEM, 0, 0, "out of memory starting a transaction");
        run_free(r);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        r->shares[i].r = r;
        ms[i] = prepare_msg(r, i);
    }
    /* Share 0 (the coordinator's) votes last, once the others answered. */
    int timeout_ms = d->timeout_ms / 2;
    atomic_store(&r->waiting, (int)n - 1);
    for (size_t i = 1; i < n; i++)
        tpc_send(d, &ms[i], timeout_ms, prepared, &r->shares[i]);
    free(ms);
}
