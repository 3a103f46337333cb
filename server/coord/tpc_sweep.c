/*
 * tpc_sweep.c — the driver's life cycle, its sweeper (what a crash or a
 * lost message left undone), and settling a lock a read met
 * (tpc_driver.h).
 *
 * The sweeper looks only at groups this node leads, once a second, and
 * starts a chain of steps per record that needs one:
 *   C PENDING past its deadline      CHECK with abort at the coordinator
 *                                    (the decision, as a compare-and-swap),
 *                                    then as for a decided C;
 *   C decided, not finished          RESOLVE at every other participant,
 *                                    then FINISH;
 *   P PREPARED past its deadline     CHECK with abort at its coordinator
 *                                    (a participant never aborts on its own:
 *                                    the coordinator decides), then RESOLVE
 *                                    here with the answer;
 *   C finished / P settled, past its retention (tpc.h T5)
 *                                    FORGET.
 * A round starts only when the previous round's chains are done, so a
 * record is never worked on twice at once. Reading RocksDB here, outside
 * the raft loop, only chooses what to send: each step's rules are checked
 * again when its entry applies.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_md.h"
#include "node_auth.h"
#include "tls_creds.h"
#include "fsm.h"
#include "keycodec.h"
#include "log.h"
#include "node.h"
#include "orderkv.pb-c.h"
#include "thread_name.h"
#include "tpc_int.h"

#define SWEEP_EVERY_MS 1000
/* Past a deadline, this much longer before a sweeper steps in: the driver
 * that runs the transaction usually finishes it first. */
#define SWEEP_GRACE_MS 1000u
#define SWEEP_MAX_CHAINS 256

int tpc_driver_stopping(tpc_driver *d) { return atomic_load(&d->stopping); }

okv_client *tpc_driver_client(tpc_driver *d) { return d->client; }

okv_client *tpc_driver_client_hold(tpc_driver *d)
{
    pthread_mutex_lock(&d->client_mu);
    okv_client *c = d->client;
    if (c)
        d->client_users++;
    pthread_mutex_unlock(&d->client_mu);
    return c;
}

void tpc_driver_client_release(tpc_driver *d)
{
    pthread_mutex_lock(&d->client_mu);
    if (--d->client_users == 0)
        pthread_cond_broadcast(&d->client_cv);
    pthread_mutex_unlock(&d->client_mu);
}

const catalog_table *tpc_table(tpc_driver *d, uint32_t table_id)
{
    const catalog *cat = kvstore_catalog(d->n->kv);
    for (size_t i = 0; i < cat->count; i++)
        if (cat->tables[i].id == table_id)
            return &cat->tables[i];
    return NULL;
}

int tpc_code_of(int error_code)
{
    switch (error_code) {
    case ORDERKV__V1__ERROR_CODE__OK: return OKV_OK;
    case ORDERKV__V1__ERROR_CODE__CONDITION_FAILED: return OKV_ECONDITION;
    case ORDERKV__V1__ERROR_CODE__INVALID_ARGUMENT: return OKV_EINVAL;
    default: return OKV_ECONFLICT;
    }
}

/* ---- chains -------------------------------------------------------------- */

typedef struct chain {
    tpc_driver *d;
    tpc_id id;
    tpc_group self;           /* the group whose record started the chain */
    tpc_group coord;
    int is_coord_record;      /* a C: resolve its participants; a P: resolve self */
    tpc_crec c;
    uint8_t decision;
    _Atomic int left_over;    /* a RESOLVE did not settle: try next round */
    _Atomic int waiting;
    void (*done)(void *arg, int rc);   /* tpc_driver_unlock's caller */
    void *done_arg;
} chain;

static void chain_end(chain *ch, int rc)
{
    if (ch->done)
        ch->done(ch->done_arg, rc);
    else
        atomic_fetch_sub(&ch->d->sweep_live, 1);
    free(ch);
}

static tpc_msg chain_msg(const chain *ch, uint8_t kind, tpc_group self)
{
    tpc_msg m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.id = ch->id;
    m.clock_ms = tpc_wall_ms();
    m.self = self;
    m.coord = ch->coord;
    return m;
}

static void chain_finished(void *arg, const tpc_reply *r)
{
    chain_end(arg, r->rc);
}

static void chain_resolved(void *arg, const tpc_reply *r)
{
    chain *ch = arg;
    if (r->rc != OKV_OK || r->state == TPC_PREPARED)
        atomic_store(&ch->left_over, 1);   /* try again next round */
    if (atomic_fetch_sub(&ch->waiting, 1) != 1)
        return;
    int left = atomic_load(&ch->left_over);
    if (!ch->is_coord_record || left || tpc_driver_stopping(ch->d)) {
        chain_end(ch, left ? OKV_EUNAVAILABLE : OKV_OK);
        return;
    }
    tpc_msg m = chain_msg(ch, TPC_FINISH, ch->coord);
    tpc_send(ch->d, &m, 5000, chain_finished, ch);
}

/* The decision is known: resolve what the chain is about. */
static void chain_resolve(chain *ch)
{
    if (tpc_driver_stopping(ch->d)) {
        chain_end(ch, OKV_EUNAVAILABLE);
        return;
    }
    if (!ch->is_coord_record) {
        atomic_store(&ch->waiting, 1);
        tpc_msg m = chain_msg(ch, TPC_RESOLVE, ch->self);
        m.flag = ch->decision == TPC_COMMITTED;
        tpc_send(ch->d, &m, 5000, chain_resolved, ch);
        return;
    }
    int others = 0;
    for (uint32_t i = 0; i < ch->c.nparts; i++)
        others += ch->c.parts[i].table_id != ch->coord.table_id ||
                  ch->c.parts[i].partition != ch->coord.partition;
    if (others == 0) {
        atomic_store(&ch->waiting, 1);
        tpc_reply none = { OKV_OK, ch->decision, { 0, 0, 0 }, "" };
        chain_resolved(ch, &none);
        return;
    }
    /* The last answer frees ch: the targets are copied out first. */
    tpc_group targets[TPC_MAX_PARTS];
    int k = 0;
    for (uint32_t i = 0; i < ch->c.nparts; i++) {
        const tpc_group *g = &ch->c.parts[i];
        if (g->table_id != ch->coord.table_id || g->partition != ch->coord.partition)
            targets[k++] = *g;
    }
    tpc_msg m = chain_msg(ch, TPC_RESOLVE, targets[0]);
    m.flag = ch->decision == TPC_COMMITTED;
    tpc_driver *d = ch->d;
    atomic_store(&ch->waiting, others);
    for (int i = 0; i < k; i++) {
        m.self = targets[i];
        tpc_send(d, &m, 5000, chain_resolved, ch);
    }
}

static void chain_checked(void *arg, const tpc_reply *r)
{
    chain *ch = arg;
    if (r->rc != OKV_OK) {
        chain_end(ch, OKV_EUNAVAILABLE);
        return;
    }
    if (r->state != TPC_COMMITTED && r->state != TPC_ABORTED) {
        chain_end(ch, OKV_ECONFLICT);   /* undecided */
        return;
    }
    ch->decision = r->state;
    chain_resolve(ch);
}

static chain *chain_new(tpc_driver *d, tpc_id id, tpc_group self, tpc_group coord)
{
    chain *ch = calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    ch->d = d;
    ch->id = id;
    ch->self = self;
    ch->coord = coord;
    return ch;
}

/* CHECK at the coordinator (abort: ABORT_IF_UNDECIDED), then resolve. */
static void chain_check(chain *ch, int abort)
{
    tpc_msg m = chain_msg(ch, TPC_CHECK, ch->coord);
    m.flag = (uint8_t)abort;
    tpc_send(ch->d, &m, 5000, chain_checked, ch);
}

/* ---- settling a lock a read met --------------------------------------------- */

static int read_prec(tpc_driver *d, uint64_t group, char kind, tpc_id id, uint8_t **buf,
                     size_t *len)
{
    uint8_t k[FSM_TPC_REC_KEY_LEN];
    fsm_tpc_rec_key(k, group, kind, id.client, id.req);
    char *v = NULL;
    int rc = engine_get(kvstore_engine(d->n->kv), ENGINE_CF_META, k, sizeof k, &v, len, NULL);
    *buf = (uint8_t *)v;
    return rc;
}

void tpc_driver_unlock(tpc_driver *d, uint32_t table_id, uint32_t partition, tpc_id holder,
                       void (*done)(void *arg, int rc), void *arg)
{
    tpc_group self = { table_id, partition };
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_prec(d, fsm_group_id(table_id, partition), 'P', holder, &buf, &len);
    tpc_prec p;
    if (rc == OKV_OK && tpc_prec_decode(buf, len, &p) == 0 && p.state == TPC_PREPARED) {
        chain *ch = chain_new(d, holder, self, p.coord);
        free(buf);
        if (!ch) {
            done(arg, OKV_ENOMEM);
            return;
        }
        ch->done = done;
        ch->done_arg = arg;
        chain_check(ch, 0);
        return;
    }
    free(buf);
    /* Settled meanwhile (or the lock is older than this replica's view):
     * read again. */
    done(arg, rc == OKV_OK || rc == OKV_ENOTFOUND ? OKV_OK : rc);
}

/* ---- steps sent later ----------------------------------------------------------- */

typedef struct tpc_later {
    uint64_t due_ms;           /* monotonic */
    tpc_msg m;                 /* the share it names is copied into buf */
    uint8_t *buf;
    int timeout_ms;
    tpc_step_fn fn;
    void *arg;
    void (*tick)(void *arg, int stopping);   /* tpc_driver_after: called, not sent */
    struct tpc_later *next;
} tpc_later;

/* Puts l in the queue by due time; 0, or -1 when the driver stopped. */
static int later_push(tpc_driver *d, tpc_later *l)
{
    pthread_mutex_lock(&d->mu);
    int stopped = d->stop;
    if (!stopped) {
        tpc_later **pp = &d->later;
        while (*pp && (*pp)->due_ms <= l->due_ms)
            pp = &(*pp)->next;
        l->next = *pp;
        *pp = l;
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    return stopped ? -1 : 0;
}

void tpc_driver_after(tpc_driver *d, int delay_ms, void (*fn)(void *arg, int stopping),
                      void *arg)
{
    tpc_later *l = calloc(1, sizeof *l);
    if (!l) {
        fn(arg, 0);   /* no memory to wait: now */
        return;
    }
    l->due_ms = node_now_ms() + (uint64_t)(delay_ms > 0 ? delay_ms : 0);
    l->tick = fn;
    l->arg = arg;
    if (later_push(d, l) != 0) {
        free(l);
        fn(arg, 1);
    }
}

void tpc_send_later(tpc_driver *d, const tpc_msg *m, int delay_ms, int timeout_ms,
                    tpc_step_fn fn, void *arg)
{
    tpc_later *l = calloc(1, sizeof *l);
    uint8_t *buf = m->share_len ? malloc(m->share_len) : NULL;
    if (!l || (m->share_len && !buf)) {
        free(l);
        free(buf);
        tpc_send(d, m, timeout_ms, fn, arg);   /* no memory to wait: now */
        return;
    }
    l->m = *m;
    if (buf) {
        memcpy(buf, m->share, m->share_len);
        l->m.share = buf;
    }
    l->buf = buf;
    l->due_ms = node_now_ms() + (uint64_t)(delay_ms > 0 ? delay_ms : 0);
    l->timeout_ms = timeout_ms;
    l->fn = fn;
    l->arg = arg;
    if (later_push(d, l) != 0) {
        tpc_reply r = { OKV_EUNAVAILABLE, TPC_NONE, { 0, 0, 0 }, "the node is stopping" };
        free(buf);
        free(l);
        fn(arg, &r);
    }
}

/* Sends what is due; called on the sweeper thread with mu held (drops it
 * around the sends). */
static void send_due(tpc_driver *d, int all_failed)
{
    for (;;) {
        tpc_later *l = d->later;
        if (!l || (!all_failed && l->due_ms > node_now_ms()))
            return;
        d->later = l->next;
        pthread_mutex_unlock(&d->mu);
        if (l->tick) {
            l->tick(l->arg, all_failed);
        } else if (all_failed) {
            tpc_reply r = { OKV_EUNAVAILABLE, TPC_NONE, { 0, 0, 0 }, "the node is stopping" };
            l->fn(l->arg, &r);
        } else {
            tpc_send(d, &l->m, l->timeout_ms, l->fn, l->arg);
        }
        free(l->buf);
        free(l);
        pthread_mutex_lock(&d->mu);
    }
}

/* ---- the sweeper ----------------------------------------------------------- */

static void sweep_kind(tpc_driver *d, uint64_t group, char kind, uint64_t now, int *budget)
{
    uint8_t lo[FSM_TPC_REC_KEY_LEN], hi[FSM_TPC_REC_PREFIX_LEN + 1];
    fsm_tpc_rec_key(lo, group, kind, 0, 0);
    size_t hl = engine_prefix_successor(lo, FSM_TPC_REC_PREFIX_LEN, hi);
    engine_iter *it;
    if (engine_iter_new(&it, kvstore_engine(d->n->kv), ENGINE_CF_META, lo,
                        FSM_TPC_REC_PREFIX_LEN, hi, hl, NULL) != OKV_OK)
        return;
    tpc_group self = { (uint32_t)(group >> 32), (uint32_t)group };
    for (; engine_iter_valid(it) && *budget > 0; engine_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)engine_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)engine_iter_value(it, &vl);
        if (kl != FSM_TPC_REC_KEY_LEN)
            continue;
        tpc_id id = { keycodec_get_u64be(k + 10), keycodec_get_u64be(k + 18) };
        chain *ch = NULL;
        if (kind == 'C') {
            tpc_crec c;
            if (tpc_crec_decode(v, vl, &c))
                continue;
            int expired = c.state == TPC_PENDING && now > c.deadline_ms + SWEEP_GRACE_MS;
            int unresolved = c.state != TPC_PENDING && !c.finished &&
                             now > c.settled_ms + SWEEP_GRACE_MS;
            int old = c.finished && now >= c.settled_ms + tpc_retain_ms('C');
            if (!expired && !unresolved && !old)
                continue;
            if (!(ch = chain_new(d, id, self, self)))
                break;
            ch->is_coord_record = 1;
            ch->c = c;
            atomic_fetch_add(&d->sweep_live, 1);
            (*budget)--;
            if (old) {
                tpc_msg m = chain_msg(ch, TPC_FORGET, self);
                m.flag = 'C';
                tpc_send(d, &m, 5000, chain_finished, ch);
            } else if (expired) {
                chain_check(ch, 1);
            } else {
                ch->decision = c.state;
                chain_resolve(ch);
            }
        } else {
            tpc_prec p;
            if (tpc_prec_decode(v, vl, &p))
                continue;
            int expired = p.state == TPC_PREPARED && now > p.deadline_ms + SWEEP_GRACE_MS;
            uint64_t since = p.settled_ms > p.deadline_ms ? p.settled_ms : p.deadline_ms;
            int old = p.state != TPC_PREPARED && now >= since + tpc_retain_ms('P');
            if (!expired && !old)
                continue;
            if (!(ch = chain_new(d, id, self, p.coord)))
                break;
            atomic_fetch_add(&d->sweep_live, 1);
            (*budget)--;
            if (old) {
                tpc_msg m = chain_msg(ch, TPC_FORGET, self);
                m.flag = 'P';
                tpc_send(d, &m, 5000, chain_finished, ch);
            } else {
                chain_check(ch, 1);
            }
        }
    }
    engine_iter_free(it);
}

static void sweep_round(tpc_driver *d)
{
    raftstore_group_info info[512];
    size_t n = raftstore_groups(d->n->rs, info, 512);
    if (n > 512)
        n = 512;
    uint64_t now = tpc_wall_ms();
    int budget = SWEEP_MAX_CHAINS;
    for (size_t i = 0; i < n && budget > 0; i++) {
        if (info[i].group == 0 || info[i].st.role != RAFT_LEADER)
            continue;
        sweep_kind(d, info[i].group, 'C', now, &budget);
        sweep_kind(d, info[i].group, 'P', now, &budget);
    }
}

static void *sweeper_main(void *arg)
{
    okv_thread_name("okv-tpc-sweep");
    tpc_driver *d = arg;
    uint64_t next_sweep = node_now_ms() + SWEEP_EVERY_MS;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        send_due(d, 0);
        uint64_t wake = next_sweep;
        if (d->later && d->later->due_ms < wake)
            wake = d->later->due_ms;
        struct timespec ts = { (time_t)(wake / 1000u), (long)(wake % 1000u) * 1000000L };
        if (wake > node_now_ms())
            pthread_cond_timedwait(&d->cv, &d->mu, &ts);
        if (d->stop)
            break;
        if (node_now_ms() < next_sweep)
            continue;
        next_sweep = node_now_ms() + SWEEP_EVERY_MS;
        pthread_mutex_unlock(&d->mu);
        tpc_local_expire(d, 0);
        if (atomic_load(&d->sweep_live) == 0)
            sweep_round(d);
        pthread_mutex_lock(&d->mu);
    }
    send_due(d, 1);   /* whatever waits is told the node stops */
    pthread_mutex_unlock(&d->mu);
    tpc_local_expire(d, 1);
    return NULL;
}

/* ---- life cycle ------------------------------------------------------------ */

int tpc_driver_new(tpc_driver **out, node *n, int timeout_ms, okv_error *err)
{
    *out = NULL;
    tpc_driver *d = calloc(1, sizeof *d);
    if (!d)
        return okv_error_set(err, OKV_ENOMEM, "out of memory starting two-phase commit");
    d->n = n;
    d->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    char addrs[CLUSTER_MAX_NODES * (CLUSTER_ADDR_MAX + 1)] = "";
    size_t used = 0;
    for (size_t i = 0; i < n->map.n; i++)
        used += (size_t)snprintf(addrs + used, sizeof addrs - used, "%s%s", i ? "," : "",
                                 n->map.nodes[i].addr);
    okv_options o;
    memset(&o, 0, sizeof o);
    o.version = OKV_OPTIONS_VERSION;
    o.default_timeout_ms = d->timeout_ms;
    if (n->tls) {   /* the node's own identity: peers require one (mutual TLS) */
        o.tls_ca = n->tls->ca;
        o.tls_cert = n->tls->cert;
        o.tls_key = n->tls->key;
    }
    if (node_auth_secret(n)) {   /* --auth on: the nodes know each other by the secret */
        o.user = AUTH_NODE_USER;
        o.password = node_auth_secret(n);
    }
    int rc = okv_connect(&d->client, addrs, &o);
    if (rc != OKV_OK) {
        free(d);
        return okv_error_set(err, rc, "cannot open the internal client for two-phase commit: "
                             "%s", okv_errmsg(NULL));
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->fin_mu, NULL);
    pthread_mutex_init(&d->client_mu, NULL);
    pthread_cond_init(&d->client_cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&d->sweeper, NULL, sweeper_main, d) != 0) {
        tpc_driver_free(d);
        return okv_error_set(err, OKV_EINTERNAL, "cannot start the 2PC sweeper thread");
    }
    d->sweeper_started = 1;
    *out = d;
    return OKV_OK;
}

void tpc_driver_stop(tpc_driver *d)
{
    if (!d || d->stopped)
        return;
    d->stopped = 1;
    atomic_store(&d->stopping, 1);
    tpc_finish_stop(d);
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    if (d->sweeper_started)
        pthread_join(d->sweeper, NULL);
    else
        tpc_local_expire(d, 1);
    /* No new holder from here; the ones submitting now finish first. */
    pthread_mutex_lock(&d->client_mu);
    okv_client *c = d->client;
    d->client = NULL;
    while (d->client_users > 0)
        pthread_cond_wait(&d->client_cv, &d->client_mu);
    pthread_mutex_unlock(&d->client_mu);
    okv_close(c);   /* waits for every step in flight */
}

void tpc_driver_free(tpc_driver *d)
{
    if (!d)
        return;
    tpc_driver_stop(d);
    tpc_finish_free(d);
    pthread_mutex_destroy(&d->fin_mu);
    pthread_mutex_destroy(&d->client_mu);
    pthread_cond_destroy(&d->client_cv);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}
