/*
 * tpc.c — two-phase commit's codec and rules (tpc.h states them).
 *
 * Message, format 1 (the value of a TPC command, command.h; on-disk format
 * because it lives in the raft log; integers big-endian):
 *   0   u8   format (TPC_FORMAT)
 *   1   u8   kind (enum tpc_kind)
 *   2   u8   flag
 *   3   u64  id.client        11  u64  id.req
 *   19  u64  clock_ms         27  u64  deadline_ms
 *   35  u32  self table       39  u32  self partition
 *   43  u32  coord table      47  u32  coord partition
 *   51  i32  fail.code        55  u32  fail.failed      59  u8  fail.reason
 *   60  u32  nparts (0..TPC_MAX_PARTS), then nparts x (u32 table, u32 partition)
 *       u32  share length S, then S bytes (PREPARE only; 0 otherwise)
 *
 * Participant record (meta CF, value of a 'P' key):
 *   0 u8 format (1)  1 u8 state  2 u64 deadline  10 u64 settled
 *   18 u32 coord table  22 u32 coord partition  26 i32 code  30 u32 failed
 *   34 u8 reason  35 u32 share length S, then S bytes
 * Coordinator record ('C'):
 *   0 u8 format (1)  1 u8 state  2 u8 finished  3 u64 deadline  11 u64 settled
 *   19 i32 code  23 u32 failed  27 u8 reason  28 u32 nparts, then nparts x 8 bytes
 * Lock: 0 u8 mode  1 u64 holder client  9 u64 holder request.
 * Range lock ('R', per transaction): 0 u8 format (1)  1 u16 n, then n x
 *   (u16 S, S bytes of start, u16 E, E bytes of end; E = 0: no end).
 * Range-lock count ('N', id {0, 0}): 0 u64 number of R records.
 */
#include "tpc.h"

#include <stdlib.h>
#include <string.h>

#include "failpoint.h"
#include "keycodec.h"

#define MSG_FIXED_LEN 64u
#define PREC_FIXED_LEN 39u
#define CREC_FIXED_LEN 32u

static void put_i32(uint8_t *p, int32_t v) { keycodec_put_u32be(p, (uint32_t)v); }

static int32_t get_i32(const uint8_t *p)
{
    uint32_t u = keycodec_get_u32be(p);
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : -(int32_t)~u - 1;
}

static void put_group(uint8_t *p, const tpc_group *g)
{
    keycodec_put_u32be(p, g->table_id);
    keycodec_put_u32be(p + 4, g->partition);
}

static void get_group(const uint8_t *p, tpc_group *g)
{
    g->table_id = keycodec_get_u32be(p);
    g->partition = keycodec_get_u32be(p + 4);
}

static int group_eq(const tpc_group *a, const tpc_group *b)
{
    return a->table_id == b->table_id && a->partition == b->partition;
}

static int id_eq(const tpc_id *a, const tpc_id *b)
{
    return a->client == b->client && a->req == b->req;
}

const char *tpc_state_name(uint8_t state)
{
    switch (state) {
    case TPC_NONE: return "unknown";
    case TPC_PENDING: return "pending";
    case TPC_PREPARED: return "prepared";
    case TPC_COMMITTED: return "committed";
    case TPC_ABORTED: return "aborted";
    default: return "?";
    }
}

/* ---- messages ------------------------------------------------------------ */

size_t tpc_msg_encoded_size(const tpc_msg *m)
{
    return MSG_FIXED_LEN + 8u * m->nparts + 4u + m->share_len;
}

void tpc_msg_encode(const tpc_msg *m, uint8_t *out)
{
    out[0] = TPC_FORMAT;
    out[1] = m->kind;
    out[2] = m->flag;
    keycodec_put_u64be(out + 3, m->id.client);
    keycodec_put_u64be(out + 11, m->id.req);
    keycodec_put_u64be(out + 19, m->clock_ms);
    keycodec_put_u64be(out + 27, m->deadline_ms);
    put_group(out + 35, &m->self);
    put_group(out + 43, &m->coord);
    put_i32(out + 51, m->fail.code);
    keycodec_put_u32be(out + 55, m->fail.failed);
    out[59] = m->fail.reason;
    keycodec_put_u32be(out + 60, m->nparts);
    uint8_t *p = out + MSG_FIXED_LEN;
    for (uint32_t i = 0; i < m->nparts; i++, p += 8)
        put_group(p, &m->parts[i]);
    keycodec_put_u32be(p, (uint32_t)m->share_len);
    if (m->share_len)
        memcpy(p + 4, m->share, m->share_len);
}

static int flag_valid(const tpc_msg *m)
{
    switch (m->kind) {
    case TPC_DECIDE:
    case TPC_RESOLVE: return m->flag <= 1;
    case TPC_CHECK: return m->flag <= TPC_CHECK_SETTLE;
    case TPC_FORGET: return m->flag == 'C' || m->flag == 'P';
    case TPC_FENCE: return m->flag <= 1 && m->id.client != 0;
    case TPC_PREPARE:   /* 1: the coordinator votes last (only there) */
        return m->flag == 0 || (m->flag == 1 && group_eq(&m->self, &m->coord));
    default: return m->flag == 0;
    }
}

int tpc_msg_decode(const uint8_t *buf, size_t len, tpc_msg *out, okv_error *err)
{
    memset(out, 0, sizeof *out);
    if (len < MSG_FIXED_LEN + 4u || buf[0] != TPC_FORMAT)
        return okv_error_set(err, OKV_ECORRUPT, "2PC message: %s",
                             len < MSG_FIXED_LEN + 4u ? "too short" : "unknown format");
    out->kind = buf[1];
    out->flag = buf[2];
    out->id.client = keycodec_get_u64be(buf + 3);
    out->id.req = keycodec_get_u64be(buf + 11);
    out->clock_ms = keycodec_get_u64be(buf + 19);
    out->deadline_ms = keycodec_get_u64be(buf + 27);
    get_group(buf + 35, &out->self);
    get_group(buf + 43, &out->coord);
    out->fail.code = get_i32(buf + 51);
    out->fail.failed = keycodec_get_u32be(buf + 55);
    out->fail.reason = buf[59];
    uint32_t n = keycodec_get_u32be(buf + 60);
    if (out->kind < TPC_PREPARE || out->kind > TPC_FENCE || !flag_valid(out))
        return okv_error_set(err, OKV_ECORRUPT, "2PC message: kind %u flag %u", out->kind,
                             out->flag);
    if (n > TPC_MAX_PARTS || (size_t)n * 8u > len - MSG_FIXED_LEN - 4u)
        return okv_error_set(err, OKV_ECORRUPT, "2PC message: %u participants", n);
    out->nparts = n;
    const uint8_t *p = buf + MSG_FIXED_LEN;
    for (uint32_t i = 0; i < n; i++, p += 8)
        get_group(p, &out->parts[i]);
    size_t left = len - MSG_FIXED_LEN - 8u * n;
    uint32_t s = keycodec_get_u32be(p);
    if ((size_t)s != left - 4u)
        return okv_error_set(err, OKV_ECORRUPT, "2PC message: share of %u bytes in %zu", s,
                             left - 4u);
    out->share = s ? p + 4 : NULL;
    out->share_len = s;
    int is_coord = group_eq(&out->self, &out->coord);
    /* Only the coordinator's group decides, answers for and finishes a
     * transaction: such a step for any other group could never apply
     * (tpc_apply), and must not reach a log. */
    if ((out->kind == TPC_DECIDE || out->kind == TPC_CHECK || out->kind == TPC_FINISH) &&
        !is_coord)
        return okv_error_set(err, OKV_ECORRUPT, "2PC message: kind %u for table %u partition "
                             "%u, which does not coordinate the transaction", out->kind,
                             out->self.table_id, out->self.partition);
    if (out->kind == TPC_PREPARE) {
        /* A coordinator's PREPARE names every participant, itself among them;
         * nobody else's names any. */
        int self_listed = 0;
        for (uint32_t i = 0; i < n; i++)
            self_listed |= group_eq(&out->parts[i], &out->self);
        if (!s || (is_coord ? n < 2 || !self_listed : n != 0))
            return okv_error_set(err, OKV_ECORRUPT, "2PC message: a PREPARE with %u "
                                 "participants and a share of %u bytes", n, s);
    } else if (s || n) {
        return okv_error_set(err, OKV_ECORRUPT, "2PC message: kind %u carries a share or "
                             "participants", out->kind);
    }
    return OKV_OK;
}

/* ---- records ------------------------------------------------------------- */

uint8_t *tpc_prec_encode(const tpc_prec *r, size_t *len)
{
    *len = PREC_FIXED_LEN + r->share_len;
    uint8_t *b = malloc(*len);
    if (!b)
        return NULL;
    b[0] = 1;
    b[1] = r->state;
    keycodec_put_u64be(b + 2, r->deadline_ms);
    keycodec_put_u64be(b + 10, r->settled_ms);
    put_group(b + 18, &r->coord);
    put_i32(b + 26, r->fail.code);
    keycodec_put_u32be(b + 30, r->fail.failed);
    b[34] = r->fail.reason;
    keycodec_put_u32be(b + 35, (uint32_t)r->share_len);
    if (r->share_len)
        memcpy(b + PREC_FIXED_LEN, r->share, r->share_len);
    return b;
}

int tpc_prec_decode(const uint8_t *b, size_t len, tpc_prec *r)
{
    memset(r, 0, sizeof *r);
    if (len < PREC_FIXED_LEN || b[0] != 1 || keycodec_get_u32be(b + 35) != len - PREC_FIXED_LEN)
        return -1;
    r->state = b[1];
    if (r->state != TPC_PREPARED && r->state != TPC_COMMITTED && r->state != TPC_ABORTED)
        return -1;
    r->deadline_ms = keycodec_get_u64be(b + 2);
    r->settled_ms = keycodec_get_u64be(b + 10);
    get_group(b + 18, &r->coord);
    r->fail.code = get_i32(b + 26);
    r->fail.failed = keycodec_get_u32be(b + 30);
    r->fail.reason = b[34];
    r->share_len = len - PREC_FIXED_LEN;
    r->share = r->share_len ? b + PREC_FIXED_LEN : NULL;
    return 0;
}

uint8_t *tpc_crec_encode(const tpc_crec *r, size_t *len)
{
    *len = CREC_FIXED_LEN + 8u * r->nparts;
    uint8_t *b = malloc(*len);
    if (!b)
        return NULL;
    b[0] = 1;
    b[1] = r->state;
    b[2] = r->finished;
    keycodec_put_u64be(b + 3, r->deadline_ms);
    keycodec_put_u64be(b + 11, r->settled_ms);
    put_i32(b + 19, r->fail.code);
    keycodec_put_u32be(b + 23, r->fail.failed);
    b[27] = r->fail.reason;
    keycodec_put_u32be(b + 28, r->nparts);
    for (uint32_t i = 0; i < r->nparts; i++)
        put_group(b + CREC_FIXED_LEN + 8u * i, &r->parts[i]);
    return b;
}

int tpc_crec_decode(const uint8_t *b, size_t len, tpc_crec *r)
{
    memset(r, 0, sizeof *r);
    if (len < CREC_FIXED_LEN || b[0] != 1)
        return -1;
    uint32_t n = keycodec_get_u32be(b + 28);
    if (n > TPC_MAX_PARTS || len != CREC_FIXED_LEN + 8u * n)
        return -1;
    r->state = b[1];
    r->finished = b[2];
    if ((r->state != TPC_PENDING && r->state != TPC_COMMITTED && r->state != TPC_ABORTED) ||
        r->finished > 1)
        return -1;
    r->deadline_ms = keycodec_get_u64be(b + 3);
    r->settled_ms = keycodec_get_u64be(b + 11);
    r->fail.code = get_i32(b + 19);
    r->fail.failed = keycodec_get_u32be(b + 23);
    r->fail.reason = b[27];
    r->nparts = n;
    for (uint32_t i = 0; i < n; i++)
        get_group(b + CREC_FIXED_LEN + 8u * i, &r->parts[i]);
    return 0;
}

void tpc_lock_encode(uint8_t mode, const tpc_id *holder, uint8_t out[TPC_LOCK_LEN])
{
    out[0] = mode;
    keycodec_put_u64be(out + 1, holder->client);
    keycodec_put_u64be(out + 9, holder->req);
}

int tpc_lock_decode(const uint8_t *b, size_t len, uint8_t *mode, tpc_id *holder)
{
    if (len < TPC_LOCK_LEN || len > TPC_LOCK_MAX_LEN || (len - 1) % 16 != 0)
        return -1;
    if (b[0] != TPC_LOCK_SHARED && !(b[0] == TPC_LOCK_EXCLUSIVE && len == TPC_LOCK_LEN))
        return -1;
    *mode = b[0];
    *holder = tpc_lock_holder(b, 0);
    return 0;
}

size_t tpc_lock_holders(size_t len)
{
    return (len - 1) / 16;
}

tpc_id tpc_lock_holder(const uint8_t *b, size_t i)
{
    tpc_id h = { keycodec_get_u64be(b + 1 + 16 * i), keycodec_get_u64be(b + 9 + 16 * i) };
    return h;
}

/* ---- reading and writing records through the store ------------------------ */

/* P of id: OKV_OK with *r (its share points into *buf, which the caller
 * frees), OKV_ENOTFOUND, or an error. */
static int prec_load(const tpc_store *s, const tpc_id *id, tpc_prec *r, uint8_t **buf,
                     okv_error *err)
{
    size_t len = 0;
    *buf = NULL;
    int rc = s->rec_get(s->ctx, 'P', id, buf, &len, err);
    if (rc)
        return rc;
    if (tpc_prec_decode(*buf, len, r))
        return okv_error_set(err, OKV_ECORRUPT, "participant record of %llu/%llu is malformed",
                             (unsigned long long)id->client, (unsigned long long)id->req);
    return OKV_OK;
}

static int prec_store(const tpc_store *s, const tpc_id *id, const tpc_prec *r, okv_error *err)
{
    size_t len;
    uint8_t *b = tpc_prec_encode(r, &len);
    if (!b)
        return okv_error_set(err, OKV_ENOMEM, "out of memory writing a participant record");
    int rc = s->rec_put(s->ctx, 'P', id, b, len, err);
    free(b);
    return rc;
}

static int crec_load(const tpc_store *s, const tpc_id *id, tpc_crec *r, okv_error *err)
{
    uint8_t *b = NULL;
    size_t len = 0;
    int rc = s->rec_get(s->ctx, 'C', id, &b, &len, err);
    if (rc)
        return rc;
    rc = tpc_crec_decode(b, len, r);
    free(b);
    return rc ? okv_error_set(err, OKV_ECORRUPT, "coordinator record of %llu/%llu is malformed",
                              (unsigned long long)id->client, (unsigned long long)id->req)
              : OKV_OK;
}

static int crec_store(const tpc_store *s, const tpc_id *id, const tpc_crec *r, okv_error *err)
{
    size_t len;
    uint8_t *b = tpc_crec_encode(r, &len);
    if (!b)
        return okv_error_set(err, OKV_ENOMEM, "out of memory writing a coordinator record");
    int rc = s->rec_put(s->ctx, 'C', id, b, len, err);
    free(b);
    return rc;
}

static void result_of_prec(const tpc_prec *p, tpc_result *out)
{
    out->state = p->state;
    out->code = p->state == TPC_ABORTED ? p->fail.code : OKV_OK;
    out->fail = p->fail;
}

/* A share's keys, as (key, written?) pairs, for the lock table. */
static const txn_key *share_key(const txn *t, size_t i, int *write)
{
    *write = i >= t->n_conds;
    return *write ? &t->writes[i - t->n_conds].k : &t->conds[i].k;
}

/* 1 when key i of t is also written by t (a condition on a key it writes). */
static int written_later(const txn *t, const txn_key *k)
{
    for (size_t w = 0; w < t->n_writes; w++) {
        const txn_key *x = &t->writes[w].k;
        if (x->key_len == k->key_len && memcmp(x->key, k->key, k->key_len) == 0)
            return 1;
    }
    return 0;
}

static int decode_share(const tpc_msg *m, const uint8_t *b, size_t len, txn *t, okv_error *err)
{
    int rc = txn_decode(b, len, t, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < t->n_conds + t->n_writes; i++) {
        int w;
        const txn_key *k = share_key(t, i, &w);
        if (k->table_id != m->self.table_id || k->partition != m->self.partition)
            return okv_error_set(err, OKV_ECORRUPT, "a 2PC share for table %u partition %u "
                                 "names a key of table %u partition %u", m->self.table_id,
                                 m->self.partition, k->table_id, k->partition);
    }
    return OKV_OK;
}

int tpc_msg_check(const tpc_msg *m, okv_error *err)
{
    if (m->kind != TPC_PREPARE)
        return OKV_OK;
    txn t;
    okv_error e;
    int rc = decode_share(m, m->share, m->share_len, &t, &e);
    txn_clear(&t);
    if (rc)
        return okv_error_set(err, OKV_EINVAL, "2PC PREPARE: %s", e.msg);
    return OKV_OK;
}

/* ---- locks ------------------------------------------------------------------ */

/* The lock on k: OKV_OK with its well-formed record in *v (the caller
 * frees) and its mode, OKV_ENOTFOUND, or an error. */
static int lock_load(const tpc_store *s, const txn_key *k, uint8_t **v, size_t *len,
                     uint8_t *mode, okv_error *err)
{
    *v = NULL;
    *len = 0;
    int rc = s->lock_get(s->ctx, k, v, len, err);
    tpc_id first;
    if (rc == OKV_OK && tpc_lock_decode(*v, *len, mode, &first))
        rc = okv_error_set(err, OKV_ECORRUPT, "a lock record of %zu bytes with a bad format",
                           *len);
    if (rc) {
        free(*v);
        *v = NULL;
    }
    return rc;
}

static int lock_held_by(const uint8_t *v, size_t len, const tpc_id *id)
{
    for (size_t i = 0; i < tpc_lock_holders(len); i++) {
        tpc_id h = tpc_lock_holder(v, i);
        if (id_eq(&h, id))
            return 1;
    }
    return 0;
}

/* id holds k in mode: a new lock, or one more holder of a shared one (the
 * caller checked that it may). A key named twice in a share is taken once. */
static int lock_take(const tpc_store *s, const txn_key *k, uint8_t mode, const tpc_id *id,
                     okv_error *err)
{
    uint8_t *v, cur, buf[TPC_LOCK_MAX_LEN];
    size_t len;
    int rc = lock_load(s, k, &v, &len, &cur, err);
    if (rc == OKV_ENOTFOUND) {
        tpc_lock_encode(mode, id, buf);
        return s->lock_put(s->ctx, k, buf, TPC_LOCK_LEN, err);
    }
    if (rc)
        return rc;
    int have = lock_held_by(v, len, id);
    if (!have && len + 16 <= sizeof buf) {
        memcpy(buf, v, len);
        keycodec_put_u64be(buf + len, id->client);
        keycodec_put_u64be(buf + len + 8, id->req);
    }
    free(v);
    if (have)
        return OKV_OK;
    if (len + 16 > sizeof buf)
        return okv_error_set(err, OKV_ECORRUPT, "2PC %llu/%llu: a lock with %u holders "
                             "already was given another", (unsigned long long)id->client,
                             (unsigned long long)id->req, TPC_LOCK_MAX_HOLDERS);
    return s->lock_put(s->ctx, k, buf, len + 16, err);
}

/* id no longer holds k; the last holder out removes the lock. */
static int lock_release(const tpc_store *s, const txn_key *k, const tpc_id *id, okv_error *err)
{
    uint8_t *v, mode, buf[TPC_LOCK_MAX_LEN];
    size_t len;
    int rc = lock_load(s, k, &v, &len, &mode, err);
    if (rc == OKV_ENOTFOUND)
        return OKV_OK;
    if (rc)
        return rc;
    size_t n = 0;
    buf[0] = mode;
    for (size_t i = 0; i < tpc_lock_holders(len); i++) {
        tpc_id h = tpc_lock_holder(v, i);
        if (id_eq(&h, id))
            continue;
        memcpy(buf + 1 + 16 * n++, v + 1 + 16 * i, 16);
    }
    int had = n < tpc_lock_holders(len);
    free(v);
    if (!had)
        return OKV_OK;
    return n ? s->lock_put(s->ctx, k, buf, 1 + 16 * n, err) : s->lock_put(s->ctx, k, NULL, 0, err);
}

/* ---- range locks (T6) ------------------------------------------------------ */

static const tpc_id RLOCK_COUNT_ID = { 0, 0 };

static int has_range(const txn *t)
{
    for (size_t i = 0; i < t->n_conds; i++)
        if (t->conds[i].kind == TXN_COND_RANGE)
            return 1;
    return 0;
}

static int key_less(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    return c < 0 || (c == 0 && al < bl);
}

int tpc_rlock_covers(const uint8_t *val, size_t len, const uint8_t *key, size_t key_len)
{
    if (len < 3 || val[0] != TPC_RLOCK_FORMAT)
        return -1;
    size_t n = ((size_t)val[1] << 8) | val[2], off = 3;
    if (n == 0 || n > TXN_MAX_CONDS)
        return -1;
    int covers = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b[2];
        size_t bl[2];
        for (int j = 0; j < 2; j++) {
            if (len - off < 2)
                return -1;
            bl[j] = ((size_t)val[off] << 8) | val[off + 1];
            off += 2;
            if (bl[j] > TXN_RANGE_BOUND_MAX || len - off < bl[j])
                return -1;
            b[j] = val + off;
            off += bl[j];
        }
        /* start <= key, and key < end unless the range is open-ended */
        if (!key_less(key, key_len, b[0], bl[0]) &&
            (bl[1] == 0 || key_less(key, key_len, b[1], bl[1])))
            covers = 1;
    }
    return off == len ? covers : -1;
}

/* The share's ranges as an 'R' record, malloc'd; NULL when out of memory. */
static uint8_t *rlock_encode(const txn *t, size_t *len)
{
    size_t n = 0, total = 3;
    for (size_t i = 0; i < t->n_conds; i++) {
        const txn_cond *c = &t->conds[i];
        if (c->kind != TXN_COND_RANGE)
            continue;
        n++;
        total += 4 + c->k.key_len + c->value_len;
    }
    uint8_t *b = malloc(total), *p = b;
    if (!b)
        return NULL;
    *p++ = TPC_RLOCK_FORMAT;
    *p++ = (uint8_t)(n >> 8);
    *p++ = (uint8_t)n;
    for (size_t i = 0; i < t->n_conds; i++) {
        const txn_cond *c = &t->conds[i];
        if (c->kind != TXN_COND_RANGE)
            continue;
        const uint8_t *bound[2] = { c->k.key, c->value };
        size_t bl[2] = { c->k.key_len, c->value_len };
        for (int j = 0; j < 2; j++) {
            *p++ = (uint8_t)(bl[j] >> 8);
            *p++ = (uint8_t)bl[j];
            if (bl[j])
                memcpy(p, bound[j], bl[j]);
            p += bl[j];
        }
    }
    *len = total;
    return b;
}

static int rlock_count(const tpc_store *s, uint64_t *n, okv_error *err)
{
    uint8_t *b = NULL;
    size_t len = 0;
    *n = 0;
    int rc = s->rec_get(s->ctx, 'N', &RLOCK_COUNT_ID, &b, &len, err);
    if (rc == OKV_OK && len == 8)
        *n = keycodec_get_u64be(b);
    else if (rc == OKV_OK)
        rc = okv_error_set(err, OKV_ECORRUPT, "range-lock count record is %zu bytes", len);
    free(b);
    return rc == OKV_ENOTFOUND ? OKV_OK : rc;
}

/* N += delta; 0 removes the record, so a group without range locks looks
 * exactly like one from before they existed. */
static int rlock_count_add(const tpc_store *s, int delta, okv_error *err)
{
    uint64_t n;
    int rc = rlock_count(s, &n, err);
    if (rc)
        return rc;
    if (delta < 0 && n == 0)
        return okv_error_set(err, OKV_ECORRUPT, "a range lock released while the group "
                             "counts none");
    n = delta < 0 ? n - 1 : n + 1;
    if (n == 0)
        return s->rec_put(s->ctx, 'N', &RLOCK_COUNT_ID, NULL, 0, err);
    uint8_t v[8];
    keycodec_put_u64be(v, n);
    return s->rec_put(s->ctx, 'N', &RLOCK_COUNT_ID, v, sizeof v, err);
}

typedef struct rlock_probe {
    const txn_key *k;
    const tpc_id *self;
    int locked;
    int bad;
} rlock_probe;

static int rlock_probe_one(void *arg, const tpc_id *holder, const uint8_t *val, size_t len)
{
    rlock_probe *p = arg;
    if (p->self && id_eq(holder, p->self))
        return 0;
    int c = tpc_rlock_covers(val, len, p->k->key, p->k->key_len);
    if (c < 0)
        p->bad = 1;
    else
        p->locked = c;
    return c != 0;
}

int tpc_range_lock_count(const tpc_store *s, uint64_t *n, okv_error *err)
{
    return rlock_count(s, n, err);
}

int tpc_range_locked(const tpc_store *s, const txn_key *k, const tpc_id *self, int *locked,
                     okv_error *err)
{
    *locked = 0;
    uint64_t n;
    int rc = rlock_count(s, &n, err);
    if (rc || n == 0)
        return rc;   /* the fast path: no range lock in the group */
    if (!s->rlock_each)
        return okv_error_set(err, OKV_ECORRUPT, "the group counts %llu range locks but its "
                             "store cannot list them", (unsigned long long)n);
    rlock_probe p = { k, self, 0, 0 };
    if ((rc = s->rlock_each(s->ctx, rlock_probe_one, &p, err)))
        return rc;
    if (p.bad)
        return okv_error_set(err, OKV_ECORRUPT, "a range-lock record with a bad format");
    *locked = p.locked;
    return OKV_OK;
}

/* id holds the ranges of t (its RANGE conditions) until RESOLVE. */
static int rlock_take(const tpc_store *s, const tpc_id *id, const txn *t, okv_error *err)
{
    size_t len;
    uint8_t *b = rlock_encode(t, &len);
    if (!b)
        return okv_error_set(err, OKV_ENOMEM, "out of memory writing a range lock");
    int rc = s->rec_put(s->ctx, 'R', id, b, len, err);
    free(b);
    return rc ? rc : rlock_count_add(s, +1, err);
}

/* id's range locks, if it holds any, are released. */
static int rlock_release(const tpc_store *s, const tpc_id *id, okv_error *err)
{
    uint8_t *b = NULL;
    size_t len = 0;
    int rc = s->rec_get(s->ctx, 'R', id, &b, &len, err);
    free(b);
    if (rc == OKV_ENOTFOUND)
        return OKV_OK;   /* none taken (tpc.range.no_lock), or released already */
    if (rc || (rc = s->rec_put(s->ctx, 'R', id, NULL, 0, err)))
        return rc;
    return rlock_count_add(s, -1, err);
}

/* Resolves this group's part of id with the decision (T3): applies the
 * intents on commit, drops them on abort, releases every lock id holds.
 * Idempotent; a P already settled is left as it is. */
static int resolve_here(const tpc_msg *m, uint64_t index, const tpc_store *s, int commit,
                        tpc_result *out, okv_error *err)
{
    tpc_prec p;
    uint8_t *buf;
    int rc = prec_load(s, &m->id, &p, &buf, err);
    if (rc == OKV_ENOTFOUND) {
        free(buf);
        if (commit) {
            /* Settled and forgotten long ago: a late duplicate. */
            out->state = TPC_NONE;
            return OKV_OK;
        }
        /* Aborted before it prepared here: the tombstone turns a late
         * PREPARE down. */
        tpc_prec t = { TPC_ABORTED, 0, m->clock_ms, m->coord, { OKV_ECONFLICT, 0, 0 }, NULL, 0 };
        out->state = TPC_ABORTED;
        return prec_store(s, &m->id, &t, err);
    }
    if (rc) {
        free(buf);
        return rc;
    }
    if (p.state != TPC_PREPARED) {
        /* Settled: the state only, as the first RESOLVE answered (T4); a
         * PREPARE's refusal reason is PREPARE's answer, not RESOLVE's. */
        out->state = p.state;
        free(buf);
        return OKV_OK;
    }
    txn t;
    rc = decode_share(m, p.share, p.share_len, &t, err);
    for (size_t i = 0; rc == OKV_OK && i < t.n_conds + t.n_writes; i++) {
        int w;
        const txn_key *k = share_key(&t, i, &w);
        if (!w && t.conds[i].kind == TXN_COND_RANGE)
            continue;   /* a range's start is no key of its own */
        rc = lock_release(s, k, &m->id, err);
    }
    if (rc == OKV_OK && has_range(&t))
        rc = rlock_release(s, &m->id, err);
    /* Planted bug (jepsen bank): a participant other than the coordinator
     * releases its locks on COMMIT but drops the writes. */
    int drop = commit && !group_eq(&m->self, &p.coord) && OKV_FAILPOINT("tpc.resolve.drop_commit");
    if (rc == OKV_OK && commit && t.n_writes && !drop) {
        /* The writes alone: the conditions held at PREPARE, and the locks
         * kept every key as it was then, so the values are the ones PREPARE
         * computed. */
        txn w = { 0, NULL, t.n_writes, t.writes };
        txn_store ds = *s->data;
        ds.locked = NULL;
        txn_outcome o;
        rc = txn_eval(&w, index, &ds, &o, err);
        if (rc == OKV_OK && o.code != OKV_OK)
            rc = okv_error_set(err, OKV_ECORRUPT, "2PC %llu/%llu: write %u failed at RESOLVE "
                               "though PREPARE checked it under locks",
                               (unsigned long long)m->id.client, (unsigned long long)m->id.req,
                               o.failed);
        out->version = o.version;
    }
    txn_clear(&t);
    if (rc == OKV_OK) {
        tpc_prec done = { commit ? TPC_COMMITTED : TPC_ABORTED, p.deadline_ms, m->clock_ms,
                          p.coord, { commit ? OKV_OK : OKV_ECONFLICT, 0, 0 }, NULL, 0 };
        out->state = done.state;
        rc = prec_store(s, &m->id, &done, err);
    }
    free(buf);
    return rc;
}

/* ---- the rules ------------------------------------------------------------- */

static int refuse_prepare(const tpc_msg *m, const tpc_store *s, tpc_fail f, tpc_result *out,
                          okv_error *err)
{
    tpc_prec p = { TPC_ABORTED, m->deadline_ms, m->clock_ms, m->coord, f, NULL, 0 };
    out->state = TPC_ABORTED;
    out->code = f.code;
    out->fail = f;
    return prec_store(s, &m->id, &p, err);
}

static int noop_write(void *ctx, const txn_key *k, const uint8_t *val, size_t val_len,
                      uint64_t version, okv_error *err)
{
    (void)ctx, (void)k, (void)val, (void)val_len, (void)version, (void)err;
    return OKV_OK;
}

/* The coordinator votes last (PREPARE with flag 1, sent once every other
 * participant PREPARED): its share's checks passed, so the transaction
 * commits in this entry: C = COMMITTED (never PENDING), its own writes
 * applied now, no locks taken here. One entry instead of PREPARE + DECIDE.
 * Clears t. */
static int vote_last(const tpc_msg *m, uint64_t index, const tpc_store *s, txn *t,
                     tpc_result *out, okv_error *err)
{
    txn_store ds = *s->data;
    ds.locked = NULL;
    txn_outcome o;
    int rc = txn_eval(t, index, &ds, &o, err);
    txn_clear(t);
    if (rc == OKV_OK && o.code != OKV_OK)
        rc = okv_error_set(err, OKV_ECORRUPT, "2PC %llu/%llu: the coordinator's share failed "
                           "when applied though its check passed in the same entry",
                           (unsigned long long)m->id.client, (unsigned long long)m->id.req);
    if (rc)
        return rc;
    tpc_crec c;
    memset(&c, 0, sizeof c);
    c.state = TPC_COMMITTED;
    c.deadline_ms = m->deadline_ms;
    c.settled_ms = m->clock_ms;
    c.nparts = m->nparts;
    memcpy(c.parts, m->parts, m->nparts * sizeof *m->parts);
    tpc_prec p = { TPC_COMMITTED, m->deadline_ms, m->clock_ms, m->coord, { 0, 0, 0 }, NULL, 0 };
    if ((rc = crec_store(s, &m->id, &c, err)) || (rc = prec_store(s, &m->id, &p, err)))
        return rc;
    out->state = TPC_COMMITTED;
    out->version = o.version;
    return OKV_OK;
}

static int horizon_get(const tpc_store *s, uint64_t client, uint64_t *out, okv_error *err);

/* For PREPARE's dry run: the point locks were judged already (readers
 * share a key), so only a RANGE condition's walk can find one, an
 * exclusive lock in its range (txn_eval then answers CONFLICT/LOCKED). */
static int no_point_lock(void *ctx, const txn_key *k, int write)
{
    (void)ctx, (void)k, (void)write;
    return 0;
}

/* A PREPARE that meets another transaction's lock records nothing and
 * answers "not now": its sender may try again once the holders are
 * resolved (a bounded wait for hot keys). Until the decision, any copy may
 * still prepare; after an abort, RESOLVE's tombstone turns it down; in
 * between, the coordinator decides (T1), never this refusal. */
static int not_now(tpc_result *out, size_t failed)
{
    out->code = OKV_ECONFLICT;
    out->state = TPC_NONE;
    out->fail = (tpc_fail){ OKV_ECONFLICT, (uint32_t)failed, TXN_FAIL_LOCKED };
    return OKV_OK;
}

static int apply_prepare(const tpc_msg *m, uint64_t index, const tpc_store *s, tpc_result *out,
                         okv_error *err)
{
    int is_coord = group_eq(&m->self, &m->coord);
    tpc_prec p;
    uint8_t *buf;
    int rc = prec_load(s, &m->id, &p, &buf, err);
    /* Planted bug (jepsen list-append): refusals are not final; a PREPARE
     * after an abort (here P, at the coordinator C too) prepares anyway. */
    int planted = OKV_FAILPOINT("tpc.prepare.ignore_tombstone");
    if (rc == OKV_OK && planted && p.state == TPC_ABORTED)
        rc = OKV_ENOTFOUND;
    else if (rc == OKV_OK)
        result_of_prec(&p, out);   /* a duplicate: the first answer */
    free(buf);
    if (rc != OKV_ENOTFOUND)
        return rc;
    if (is_coord && !planted) {
        tpc_crec c;
        rc = crec_load(s, &m->id, &c, err);
        if (rc == OKV_OK) {
            /* Decided (aborted) before this PREPARE applied: T1. */
            tpc_fail f = c.fail.code ? c.fail : (tpc_fail){ OKV_ECONFLICT, 0, 0 };
            return refuse_prepare(m, s, f, out, err);
        }
        if (rc != OKV_ENOTFOUND)
            return rc;
        /* No C, but one at or below this client's forgotten horizon may
         * have been decided and forgotten: a status query's tombstone, say,
         * whose answer "aborted" was final. The deadline does not cover it:
         * the driver sets the deadline when it starts, and a call held up
         * on its way may start it after the tombstone's retention. */
        uint64_t horizon;
        if ((rc = horizon_get(s, m->id.client, &horizon, err)))
            return rc;
        if (m->id.req <= horizon)
            return refuse_prepare(m, s, (tpc_fail){ OKV_ECONFLICT, 0, 0 }, out, err);
    }
    if (m->clock_ms > m->deadline_ms)
        return refuse_prepare(m, s, (tpc_fail){ OKV_ECONFLICT, 0, 0 }, out, err);
    /* A backup's fence: refused for good (the tombstone), so the driver
     * aborts at once and the client retries once the fence is down. */
    int fenced = 0;
    if ((rc = tpc_fence_check(m, s, &fenced, err)))
        return rc;
    if (fenced)
        return refuse_prepare(m, s, (tpc_fail){ OKV_ECONFLICT, 0, 0 }, out, err);
    txn t;
    okv_error verr;
    if (decode_share(m, m->share, m->share_len, &t, &verr) != OKV_OK) {
        /* The sender's bytes, not this replica's: refused alike on every
         * replica, never fatal (tpc_msg_check turns most away before). */
        txn_clear(&t);
        return refuse_prepare(m, s, (tpc_fail){ OKV_EINVAL, 0, 0 }, out, err);
    }
    int ranges = has_range(&t);
    if (txn_validate(&t, &verr) != OKV_OK || (ranges && (!s->rlock_each || !s->data->range))) {
        /* A store that keeps no range locks cannot hold a scan's range
         * until RESOLVE: such a share is refused. */
        txn_clear(&t);
        return refuse_prepare(m, s, (tpc_fail){ OKV_EINVAL, 0, 0 }, out, err);
    }
    size_t nkeys = t.n_conds + t.n_writes;
    for (size_t i = 0; i < nkeys; i++) {
        int w;
        const txn_key *k = share_key(&t, i, &w);
        if (!w && t.conds[i].kind == TXN_COND_RANGE)
            continue;   /* its range is judged by the dry run below */
        int excl = w || written_later(&t, k);
        uint8_t *lv, mode;
        size_t ll;
        rc = lock_load(s, k, &lv, &ll, &mode, err);
        if (rc == OKV_OK) {
            /* Readers share a key; a writer needs it alone. (Planted bug:
             * a writer joins the readers, whose conditions it may break.) */
            int join = mode == TPC_LOCK_SHARED && tpc_lock_holders(ll) < TPC_LOCK_MAX_HOLDERS &&
                       (!excl || OKV_FAILPOINT("tpc.locks.shared_admits_writer"));
            free(lv);
            if (join)
                continue;
            txn_clear(&t);
            return not_now(out, i);
        }
        if (rc != OKV_ENOTFOUND) {
            txn_clear(&t);
            return rc;
        }
        /* A write into a range another transaction scanned and holds
         * would change what its RANGE condition counted (T6). This also
         * covers the coordinator's vote, whose writes apply at once. */
        int in_range = 0;
        if (w && (rc = tpc_range_locked(s, k, &m->id, &in_range, err))) {
            txn_clear(&t);
            return rc;
        }
        if (in_range) {
            txn_clear(&t);
            return not_now(out, i);
        }
    }
    txn_store dry = *s->data;
    dry.locked = ranges ? no_point_lock : NULL;
    dry.write = noop_write;
    txn_outcome o;
    rc = txn_eval(&t, index, &dry, &o, err);
    if (rc == OKV_OK && o.code == OKV_ECONFLICT && o.reason == TXN_FAIL_LOCKED) {
        /* An exclusive lock in a scanned range: a prepared write there may
         * be committed already; not now, as for a point lock. */
        txn_clear(&t);
        return not_now(out, o.failed);
    }
    if (rc == OKV_OK && o.code != OKV_OK) {
        txn_clear(&t);
        return refuse_prepare(m, s, (tpc_fail){ o.code, o.failed, o.reason }, out, err);
    }
    if (rc == OKV_OK && m->flag)
        return vote_last(m, index, s, &t, out, err);   /* checked and applied in one entry */
    for (size_t i = 0; rc == OKV_OK && i < nkeys; i++) {
        int w;
        const txn_key *k = share_key(&t, i, &w);
        if (!w && t.conds[i].kind == TXN_COND_RANGE)
            continue;   /* the range lock below covers it */
        if (!w && written_later(&t, k))
            continue;   /* the write's exclusive lock covers it */
        if (!w && OKV_FAILPOINT("tpc.locks.skip_shared"))
            continue;   /* planted bug: conditions unprotected (write skew) */
        rc = lock_take(s, k, w ? TPC_LOCK_EXCLUSIVE : TPC_LOCK_SHARED, &m->id, err);
    }
    /* Planted bug (cluster.tpc_range_planted): the ranges are checked but
     * not held, so an insert before RESOLVE makes a phantom. */
    if (rc == OKV_OK && ranges && !OKV_FAILPOINT("tpc.range.no_lock"))
        rc = rlock_take(s, &m->id, &t, err);
    txn_clear(&t);
    if (rc)
        return rc;
    tpc_prec np = { TPC_PREPARED, m->deadline_ms, 0, m->coord, { 0, 0, 0 }, m->share,
                    m->share_len };
    if ((rc = prec_store(s, &m->id, &np, err)))
        return rc;
    if (is_coord) {
        tpc_crec c;
        memset(&c, 0, sizeof c);
        c.state = TPC_PENDING;
        c.deadline_ms = m->deadline_ms;
        c.nparts = m->nparts;
        memcpy(c.parts, m->parts, m->nparts * sizeof *m->parts);
        if ((rc = crec_store(s, &m->id, &c, err)))
            return rc;
    }
    out->state = TPC_PREPARED;
    return OKV_OK;
}

/* The decision: C from PENDING (or from nothing, to ABORTED only) to
 * `commit`, once (T1); then this group's own part is resolved. */
static int decide(const tpc_msg *m, uint64_t index, const tpc_store *s, int commit,
                  tpc_fail why, tpc_result *out, okv_error *err)
{
    tpc_crec c;
    int rc = crec_load(s, &m->id, &c, err);
    if (rc == OKV_ENOTFOUND) {
        /* Never prepared here: only an abort, and nobody to wait for. */
        memset(&c, 0, sizeof c);
        c.state = TPC_ABORTED;
        c.finished = 1;
        c.settled_ms = m->clock_ms;
        c.fail = why.code ? why : (tpc_fail){ OKV_ECONFLICT, 0, 0 };
        rc = crec_store(s, &m->id, &c, err);
    } else if (rc == OKV_OK && c.state == TPC_PENDING) {
        c.state = commit ? TPC_COMMITTED : TPC_ABORTED;
        c.settled_ms = m->clock_ms;
        c.fail = commit ? (tpc_fail){ 0, 0, 0 }
                        : why.code ? why : (tpc_fail){ OKV_ECONFLICT, 0, 0 };
        rc = crec_store(s, &m->id, &c, err);
    }
    if (rc)
        return rc;
    tpc_result local;
    memset(&local, 0, sizeof local);
    if ((rc = resolve_here(m, index, s, c.state == TPC_COMMITTED, &local, err)))
        return rc;
    out->state = c.state;
    out->code = c.state == TPC_ABORTED ? c.fail.code : OKV_OK;
    out->fail = c.fail;
    out->version = local.version;
    return OKV_OK;
}

/* The highest request id of `client` whose C this group forgot ('H'
 * record, id { client, 0 }); 0 if none. */
static int horizon_get(const tpc_store *s, uint64_t client, uint64_t *out, okv_error *err)
{
    tpc_id h = { client, 0 };
    uint8_t *b = NULL;
    size_t len = 0;
    *out = 0;
    int rc = s->rec_get(s->ctx, 'H', &h, &b, &len, err);
    if (rc == OKV_OK && len == 8)
        *out = keycodec_get_u64be(b);
    else if (rc == OKV_OK)
        rc = okv_error_set(err, OKV_ECORRUPT, "horizon record of client %llu is %zu bytes",
                           (unsigned long long)client, len);
    free(b);
    return rc == OKV_ENOTFOUND ? OKV_OK : rc;
}

static int horizon_raise(const tpc_store *s, const tpc_id *id, okv_error *err)
{
    uint64_t cur;
    int rc = horizon_get(s, id->client, &cur, err);
    if (rc || cur >= id->req)
        return rc;
    tpc_id h = { id->client, 0 };
    uint8_t v[8];
    keycodec_put_u64be(v, id->req);
    return s->rec_put(s->ctx, 'H', &h, v, sizeof v, err);
}

static int apply_check(const tpc_msg *m, uint64_t index, const tpc_store *s, tpc_result *out,
                       okv_error *err)
{
    tpc_crec c;
    int rc = crec_load(s, &m->id, &c, err);
    if (rc != OKV_OK && rc != OKV_ENOTFOUND)
        return rc;
    if (rc == OKV_ENOTFOUND && m->flag == TPC_CHECK_SETTLE) {
        /* No C: undecided, or decided and forgotten. A client's ids grow,
         * so one at or below the highest forgotten id of its client may
         * have been forgotten (and committed): unknown. Above it, it was
         * never decided here: settle it as aborted (T1), so the answer is
         * final. */
        uint64_t horizon;
        if ((rc = horizon_get(s, m->id.client, &horizon, err)))
            return rc;
        if (m->id.req <= horizon) {
            out->state = TPC_NONE;
            return OKV_OK;
        }
        return decide(m, index, s, 0, (tpc_fail){ OKV_ECONFLICT, 0, 0 }, out, err);
    }
    int undecided = rc == OKV_ENOTFOUND || c.state == TPC_PENDING;
    int expired = rc == OKV_ENOTFOUND || m->clock_ms > c.deadline_ms;
    if (m->flag && undecided && expired)
        return decide(m, index, s, 0, (tpc_fail){ OKV_ECONFLICT, 0, 0 }, out, err);
    out->state = rc == OKV_ENOTFOUND ? TPC_NONE : c.state;
    out->code = out->state == TPC_ABORTED ? c.fail.code : OKV_OK;
    out->fail = rc == OKV_ENOTFOUND ? (tpc_fail){ 0, 0, 0 } : c.fail;
    return OKV_OK;
}

static int apply_finish(const tpc_msg *m, const tpc_store *s, tpc_result *out, okv_error *err)
{
    tpc_crec c;
    int rc = crec_load(s, &m->id, &c, err);
    if (rc == OKV_ENOTFOUND) {
        out->state = TPC_NONE;
        return OKV_OK;
    }
    if (rc)
        return rc;
    out->state = c.state;
    if (c.state == TPC_PENDING || c.finished)
        return OKV_OK;
    c.finished = 1;
    c.settled_ms = m->clock_ms;
    return crec_store(s, &m->id, &c, err);
}

uint64_t tpc_retain_ms(char kind)
{
    int fp_short = OKV_FAILPOINT("tpc.retain.short");
    if (kind == 'C')
        return fp_short ? TPC_RETAIN_SHORT_MS : TPC_RETAIN_MS;
    return fp_short ? TPC_P_RETAIN_SHORT_MS : TPC_P_RETAIN_MS;
}

static int apply_forget(const tpc_msg *m, const tpc_store *s, tpc_result *out, okv_error *err)
{
    uint64_t settled, retain;
    int settled_for_good;
    if (m->flag == 'C') {
        retain = tpc_retain_ms('C');
        tpc_crec c;
        int rc = crec_load(s, &m->id, &c, err);
        if (rc)
            return rc == OKV_ENOTFOUND ? OKV_OK : rc;
        out->state = c.state;
        settled = c.settled_ms;
        settled_for_good = c.finished;
    } else {
        tpc_prec p;
        uint8_t *buf;
        int rc = prec_load(s, &m->id, &p, &buf, err);
        free(buf);
        if (rc)
            return rc == OKV_ENOTFOUND ? OKV_OK : rc;
        out->state = p.state;
        settled = p.settled_ms > p.deadline_ms ? p.settled_ms : p.deadline_ms;
        settled_for_good = p.state != TPC_PREPARED;
        retain = tpc_retain_ms('P');
    }
    /* A record settled at clock 0 (a step sent without a clock) has no
     * age to judge: kept rather than forgotten early. */
    if (!settled_for_good || settled == 0 || m->clock_ms < settled + retain)
        return OKV_OK;   /* still needed (T5) */
    out->state = TPC_NONE;
    int rc = s->rec_put(s->ctx, (char)m->flag, &m->id, NULL, 0, err);
    /* A settling status query must not mistake a forgotten C for one never
     * decided: remember how far this client's forgotten ids reach. */
    if (rc == OKV_OK && m->flag == 'C')
        rc = horizon_raise(s, &m->id, err);
    return rc;
}

int tpc_apply(const tpc_msg *m, uint64_t index, const tpc_store *s, tpc_result *out,
              okv_error *err)
{
    memset(out, 0, sizeof *out);
    int is_coord = group_eq(&m->self, &m->coord);
    switch (m->kind) {
    case TPC_PREPARE:
        return apply_prepare(m, index, s, out, err);
    case TPC_DECIDE:
    case TPC_CHECK:
    case TPC_FINISH:
        if (!is_coord) {
            /* tpc_msg_decode refuses these; an entry written before it did
             * is a no-op, not a crash of every replica. */
            out->code = OKV_EINVAL;
            return OKV_OK;
        }
        if (m->kind == TPC_DECIDE)
            return decide(m, index, s, m->flag, m->fail, out, err);
        return m->kind == TPC_CHECK ? apply_check(m, index, s, out, err)
                                    : apply_finish(m, s, out, err);
    case TPC_RESOLVE:
        return resolve_here(m, index, s, m->flag, out, err);
    case TPC_FORGET:
        return apply_forget(m, s, out, err);
    case TPC_FENCE:
        return tpc_fence_apply(m, s, out, err);
    default:
        return okv_error_set(err, OKV_ECORRUPT, "2PC message of kind %u", m->kind);
    }
}
