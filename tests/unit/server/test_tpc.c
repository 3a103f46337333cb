/* Two-phase commit (tpc.h): the message and record codecs (round trips,
 * refusal of every truncation and malformed shape), the rules applied to a
 * group in memory (records, locks and data), rule by rule, and a short
 * deterministic randomized run over two groups that checks atomicity. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keycodec.h"
#include "okv_test.h"
#include "range_digest.h"
#include "tpc.h"

#define TABLE 7u
#define has(s, sub) assert_non_null(strstr((s), (sub)))

static const tpc_group G0 = { TABLE, 0 };   /* the coordinator in most tests */
static const tpc_group G1 = { TABLE, 1 };

static int group_eq(tpc_group a, tpc_group b)
{
    return a.table_id == b.table_id && a.partition == b.partition;
}

static int id_eq(const tpc_id *a, const tpc_id *b)
{
    return a->client == b->client && a->req == b->req;
}

/* Buffers a test keeps alive until its teardown. */
static void *kept[512];
static size_t n_kept;

static void *keep(void *p)
{
    assert_non_null(p);
    assert_true(n_kept < sizeof kept / sizeof kept[0]);
    kept[n_kept++] = p;
    return p;
}

static int free_kept(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_kept; i++)
        free(kept[i]);
    n_kept = 0;
    return 0;
}

/* ---- a group in memory: data, records, locks ------------------------------ */

typedef struct entry {
    uint32_t table, partition;
    uint8_t key[32];
    size_t key_len;
    uint8_t val[64];
    size_t val_len;
    uint64_t version;
} entry;

typedef struct rec {
    char kind;
    tpc_id id;
    uint8_t *val;
    size_t len;
} rec;

typedef struct lck {
    uint8_t key[32];
    size_t key_len;
    uint8_t mode;
    tpc_id holder[TPC_LOCK_MAX_HOLDERS];
    size_t nh;
} lck;

typedef struct grp {
    tpc_group g;
    uint64_t index;            /* the last applied log index */
    entry e[64];
    size_t n;
    rec r[64];
    size_t nr;
    lck l[64];
    size_t nl;
    size_t data_writes, rec_puts, lock_puts, rlock_walks;
    int fail_rec_get, fail_rec_put;   /* != 0: every such call fails with it */
    txn_store ds;
    tpc_store ts;
} grp;

static txn_key KP(tpc_group g, const char *key)
{
    txn_key k = { g.table_id, g.partition, (const uint8_t *)key, strlen(key) };
    return k;
}

/* Every key the module hands the data store is one of this group's. */
static void assert_own_key(const grp *g, const txn_key *k)
{
    assert_int_equal(k->table_id, g->g.table_id);
    assert_int_equal(k->partition, g->g.partition);
    assert_true(k->key_len > 0 && k->key_len <= 32);
}

static entry *data_find(grp *g, const txn_key *k)
{
    for (size_t i = 0; i < g->n; i++) {
        entry *e = &g->e[i];
        if (e->table == k->table_id && e->partition == k->partition && e->key_len == k->key_len &&
            memcmp(e->key, k->key, k->key_len) == 0)
            return e;
    }
    return NULL;
}

static void data_set(grp *g, const txn_key *k, const void *val, size_t len, uint64_t version)
{
    entry *e = data_find(g, k);
    if (!e) {
        assert_true(g->n < sizeof g->e / sizeof g->e[0]);
        e = &g->e[g->n++];
        e->table = k->table_id;
        e->partition = k->partition;
        memcpy(e->key, k->key, k->key_len);
        e->key_len = k->key_len;
    }
    assert_true(len <= sizeof e->val);
    memset(e->val, 0, sizeof e->val);
    if (len)
        memcpy(e->val, val, len);
    e->val_len = len;
    e->version = version;
}

static int data_read(void *ctx, const txn_key *k, uint8_t **val, size_t *val_len,
                     uint64_t *version, okv_error *err)
{
    grp *g = ctx;
    assert_own_key(g, k);
    entry *e = data_find(g, k);
    if (!e)
        return okv_error_set(err, OKV_ENOTFOUND, "no such key");
    *val = malloc(e->val_len ? e->val_len : 1);
    assert_non_null(*val);
    memcpy(*val, e->val, e->val_len);
    *val_len = e->val_len;
    *version = e->version;
    return OKV_OK;
}

/* Applies at once: the tests look at the data afterwards. */
static int data_write(void *ctx, const txn_key *k, const uint8_t *val, size_t val_len,
                      uint64_t version, okv_error *err)
{
    (void)err;
    grp *g = ctx;
    assert_own_key(g, k);
    g->data_writes++;
    if (val) {
        data_set(g, k, val, val_len, version);
        return OKV_OK;
    }
    entry *e = data_find(g, k);
    if (e) {
        *e = g->e[--g->n];
        memset(&g->e[g->n], 0, sizeof g->e[0]);
    }
    return OKV_OK;
}

static rec *rec_find(grp *g, char kind, const tpc_id *id)
{
    for (size_t i = 0; i < g->nr; i++)
        if (g->r[i].kind == kind && id_eq(&g->r[i].id, id))
            return &g->r[i];
    return NULL;
}

static int rec_get(void *ctx, char kind, const tpc_id *id, uint8_t **val, size_t *len,
                   okv_error *err)
{
    grp *g = ctx;
    assert_true(kind == 'P' || kind == 'C' || kind == 'H' || kind == 'F' || kind == 'R' ||
                kind == 'N');
    if (g->fail_rec_get)
        return okv_error_set(err, g->fail_rec_get, "record read failed");
    rec *r = rec_find(g, kind, id);
    if (!r)
        return okv_error_set(err, OKV_ENOTFOUND, "no record");
    *val = malloc(r->len ? r->len : 1);
    assert_non_null(*val);
    memcpy(*val, r->val, r->len);
    *len = r->len;
    return OKV_OK;
}

static int rec_put(void *ctx, char kind, const tpc_id *id, const uint8_t *val, size_t len,
                   okv_error *err)
{
    grp *g = ctx;
    assert_true(kind == 'P' || kind == 'C' || kind == 'H' || kind == 'F' || kind == 'R' ||
                kind == 'N');
    g->rec_puts++;
    if (g->fail_rec_put)
        return okv_error_set(err, g->fail_rec_put, "record write failed");
    rec *r = rec_find(g, kind, id);
    if (!val) {
        if (r) {
            free(r->val);
            *r = g->r[--g->nr];
            memset(&g->r[g->nr], 0, sizeof g->r[0]);
        }
        return OKV_OK;
    }
    if (!r) {
        assert_true(g->nr < sizeof g->r / sizeof g->r[0]);
        r = &g->r[g->nr++];
        r->kind = kind;
        r->id = *id;
    } else {
        free(r->val);
    }
    r->val = malloc(len ? len : 1);
    assert_non_null(r->val);
    memcpy(r->val, val, len);
    r->len = len;
    return OKV_OK;
}

static lck *lock_find(grp *g, const uint8_t *key, size_t key_len)
{
    for (size_t i = 0; i < g->nl; i++)
        if (g->l[i].key_len == key_len && memcmp(g->l[i].key, key, key_len) == 0)
            return &g->l[i];
    return NULL;
}

/* The store keeps locks decoded, so every record tpc.c writes is parsed
 * here independently of tpc_lock_decode. */
static int lock_get(void *ctx, const txn_key *k, uint8_t **val, size_t *len, okv_error *err)
{
    grp *g = ctx;
    assert_own_key(g, k);
    lck *l = lock_find(g, k->key, k->key_len);
    if (!l)
        return okv_error_set(err, OKV_ENOTFOUND, "no lock");
    uint8_t *v = malloc(1 + 16 * l->nh);
    assert_non_null(v);
    v[0] = l->mode;
    for (size_t i = 0; i < l->nh; i++) {
        keycodec_put_u64be(v + 1 + 16 * i, l->holder[i].client);
        keycodec_put_u64be(v + 9 + 16 * i, l->holder[i].req);
    }
    *val = v;
    *len = 1 + 16 * l->nh;
    return OKV_OK;
}

static int lock_put(void *ctx, const txn_key *k, const uint8_t *val, size_t len,
                    okv_error *err)
{
    (void)err;
    grp *g = ctx;
    assert_own_key(g, k);
    g->lock_puts++;
    lck *l = lock_find(g, k->key, k->key_len);
    if (!val) {
        assert_non_null(l);
        *l = g->l[--g->nl];
        memset(&g->l[g->nl], 0, sizeof g->l[0]);
        return OKV_OK;
    }
    assert_true(len >= 17 && (len - 1) % 16 == 0);
    size_t nh = (len - 1) / 16;
    assert_true(nh <= TPC_LOCK_MAX_HOLDERS);
    assert_true(val[0] == TPC_LOCK_SHARED || (val[0] == TPC_LOCK_EXCLUSIVE && nh == 1));
    if (!l) {
        assert_true(g->nl < sizeof g->l / sizeof g->l[0]);
        l = &g->l[g->nl++];
        memcpy(l->key, k->key, k->key_len);
        l->key_len = k->key_len;
    } else {
        /* A lock changes by one holder at a time, and keeps its mode. */
        assert_int_equal(l->mode, val[0]);
        assert_true(nh + 1 == l->nh || nh == l->nh + 1);
    }
    l->mode = val[0];
    l->nh = nh;
    for (size_t i = 0; i < nh; i++) {
        l->holder[i] = (tpc_id){ keycodec_get_u64be(val + 1 + 16 * i),
                                 keycodec_get_u64be(val + 9 + 16 * i) };
        for (size_t j = 0; j < i; j++)
            assert_false(id_eq(&l->holder[i], &l->holder[j]));
    }
    return OKV_OK;
}

static int bound_less(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    return c < 0 || (c == 0 && al < bl);
}

/* 1 if key lies in c's [start, end) (an empty end: no end). */
static int in_range(const txn_cond *c, const uint8_t *key, size_t key_len)
{
    return !bound_less(key, key_len, c->k.key, c->k.key_len) &&
           (c->value_len == 0 || bound_less(key, key_len, c->value, c->value_len));
}

static int entry_cmp(const void *x, const void *y)
{
    const entry *a = *(const entry *const *)x, *b = *(const entry *const *)y;
    return bound_less(a->key, a->key_len, b->key, b->key_len) ? -1
           : bound_less(b->key, b->key_len, a->key, a->key_len) ? 1 : 0;
}

/* The range walk of the state machine, over the table in memory: the
 * keys in key order for the digest, and any exclusive lock in the range. */
static int data_range(void *ctx, const txn_cond *c, uint64_t *count, uint64_t *digest,
                      int *locked, okv_error *err)
{
    (void)err;
    grp *g = ctx;
    assert_own_key(g, &(txn_key){ c->k.table_id, c->k.partition, (const uint8_t *)"k", 1 });
    const entry *in[64];
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++)
        if (in_range(c, g->e[i].key, g->e[i].key_len))
            in[n++] = &g->e[i];
    qsort(in, n, sizeof in[0], entry_cmp);
    *count = n;
    *digest = OKV_RANGE_DIGEST_INIT;
    for (size_t i = 0; i < n; i++)
        *digest = okv_range_digest_add(*digest, in[i]->key, in[i]->key_len, in[i]->version);
    *locked = 0;
    for (size_t i = 0; i < g->nl; i++)
        if (g->l[i].mode == TPC_LOCK_EXCLUSIVE && in_range(c, g->l[i].key, g->l[i].key_len))
            *locked = 1;
    return OKV_OK;
}

static int rlock_each(void *ctx, int (*fn)(void *arg, const tpc_id *holder, const uint8_t *val,
                                           size_t len),
                      void *arg, okv_error *err)
{
    (void)err;
    grp *g = ctx;
    g->rlock_walks++;
    for (size_t i = 0; i < g->nr; i++)
        if (g->r[i].kind == 'R' && fn(arg, &g->r[i].id, g->r[i].val, g->r[i].len))
            break;
    return OKV_OK;
}

static grp *grp_new(tpc_group id)
{
    grp *g = calloc(1, sizeof *g);
    assert_non_null(g);
    g->g = id;
    g->index = 100;
    g->ds = (txn_store){ g, data_read, NULL, data_write, data_range };
    g->ts = (tpc_store){ g, rec_get, rec_put, lock_get, lock_put, &g->ds, rlock_each };
    return g;
}

static void grp_free(grp *g)
{
    for (size_t i = 0; i < g->nr; i++)
        free(g->r[i].val);
    free(g);
}

static void data_put(grp *g, const char *key, const char *val, uint64_t version)
{
    txn_key k = KP(g->g, key);
    data_set(g, &k, val, strlen(val), version);
}

static void data_counter(grp *g, const char *key, int64_t v, uint64_t version)
{
    uint8_t b[TXN_COUNTER_LEN];
    txn_counter_encode(v, b);
    txn_key k = KP(g->g, key);
    data_set(g, &k, b, sizeof b, version);
}

static entry *data_get(grp *g, const char *key)
{
    txn_key k = KP(g->g, key);
    return data_find(g, &k);
}

static void assert_data(grp *g, const char *key, const char *val, uint64_t version)
{
    entry *e = data_get(g, key);
    if (!e)
        fail_msg("key '%s' is absent", key);
    assert_int_equal(e->val_len, strlen(val));
    assert_memory_equal(e->val, val, e->val_len);
    assert_int_equal(e->version, version);
}

static void assert_counter(grp *g, const char *key, int64_t v, uint64_t version)
{
    entry *e = data_get(g, key);
    if (!e)
        fail_msg("counter '%s' is absent", key);
    int64_t got = 0;
    assert_int_equal(txn_counter_decode(e->val, e->val_len, &got), 0);
    assert_int_equal(got, v);
    assert_int_equal(e->version, version);
}

/* The data as it is, to compare with later (sorted-insensitive copy). */
typedef struct data_copy {
    entry e[64];
    size_t n;
} data_copy;

static void data_snap(const grp *g, data_copy *c)
{
    memcpy(c->e, g->e, sizeof c->e);
    c->n = g->n;
}

static void assert_data_unchanged(const grp *g, const data_copy *c)
{
    assert_int_equal(g->n, c->n);
    assert_memory_equal(g->e, c->e, sizeof c->e);
}

/* 1 and the lock if key is locked. */
static int lock_of(grp *g, const char *key, uint8_t *mode, tpc_id *holder)
{
    lck *l = lock_find(g, (const uint8_t *)key, strlen(key));
    if (!l)
        return 0;
    *mode = l->mode;
    *holder = l->holder[0];
    return 1;
}

static void assert_lock(grp *g, const char *key, uint8_t mode, tpc_id holder)
{
    uint8_t m = TPC_LOCK_NONE;
    tpc_id h = { 0, 0 };
    if (!lock_of(g, key, &m, &h))
        fail_msg("key '%s' is not locked", key);
    assert_int_equal(m, mode);
    assert_true(id_eq(&h, &holder));
    assert_int_equal(lock_find(g, (const uint8_t *)key, strlen(key))->nh, 1);
}

/* key is locked shared by exactly these n holders, in any order. */
static void assert_shared_by(grp *g, const char *key, const tpc_id *ids, size_t n)
{
    lck *l = lock_find(g, (const uint8_t *)key, strlen(key));
    if (!l)
        fail_msg("key '%s' is not locked", key);
    assert_int_equal(l->mode, TPC_LOCK_SHARED);
    assert_int_equal(l->nh, n);
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < l->nh && !id_eq(&l->holder[j], &ids[i]))
            j++;
        if (j == l->nh)
            fail_msg("key '%s' is not held by %llu/%llu", key,
                     (unsigned long long)ids[i].client, (unsigned long long)ids[i].req);
    }
}

static void assert_unlocked(grp *g, const char *key)
{
    uint8_t m;
    tpc_id h;
    if (lock_of(g, key, &m, &h))
        fail_msg("key '%s' is locked (mode %u)", key, m);
}

/* The P of id (1) or nothing (0); the share points into the store. */
static int prec_of(grp *g, tpc_id id, tpc_prec *p)
{
    rec *r = rec_find(g, 'P', &id);
    if (!r)
        return 0;
    assert_int_equal(tpc_prec_decode(r->val, r->len, p), 0);
    return 1;
}

static int crec_of(grp *g, tpc_id id, tpc_crec *c)
{
    rec *r = rec_find(g, 'C', &id);
    if (!r)
        return 0;
    assert_int_equal(tpc_crec_decode(r->val, r->len, c), 0);
    return 1;
}

static tpc_prec must_prec(grp *g, tpc_id id)
{
    tpc_prec p;
    if (!prec_of(g, id, &p))
        fail_msg("no P for %llu/%llu", (unsigned long long)id.client,
                 (unsigned long long)id.req);
    return p;
}

static tpc_crec must_crec(grp *g, tpc_id id)
{
    tpc_crec c;
    if (!crec_of(g, id, &c))
        fail_msg("no C for %llu/%llu", (unsigned long long)id.client,
                 (unsigned long long)id.req);
    return c;
}

/* A copy of a record's bytes, to check it did not change. */
static uint8_t *rec_bytes(grp *g, char kind, tpc_id id, size_t *len)
{
    rec *r = rec_find(g, kind, &id);
    assert_non_null(r);
    uint8_t *b = keep(malloc(r->len));
    memcpy(b, r->val, r->len);
    *len = r->len;
    return b;
}

static void assert_rec_is(grp *g, char kind, tpc_id id, const uint8_t *b, size_t len)
{
    rec *r = rec_find(g, kind, &id);
    assert_non_null(r);
    assert_int_equal(r->len, len);
    assert_memory_equal(r->val, b, len);
}

/* ---- building transactions and messages ------------------------------------ */

static txn_cond cond(uint8_t kind, tpc_group g, const char *key)
{
    txn_cond c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.k = KP(g, key);
    return c;
}

static txn_cond cond_value(tpc_group g, const char *key, const char *val)
{
    txn_cond c = cond(TXN_COND_VALUE_EQ, g, key);
    c.value = (const uint8_t *)val;
    c.value_len = strlen(val);
    return c;
}

static txn_cond cond_int(tpc_group g, const char *key, uint8_t cmp, int64_t num)
{
    txn_cond c = cond(TXN_COND_INT, g, key);
    c.cmp = cmp;
    c.num = num;
    return c;
}

static txn_write wr(uint8_t kind, tpc_group g, const char *key)
{
    txn_write w;
    memset(&w, 0, sizeof w);
    w.kind = kind;
    w.k = KP(g, key);
    return w;
}

static txn_write put(tpc_group g, const char *key, const char *val)
{
    txn_write w = wr(TXN_PUT, g, key);
    w.value = (const uint8_t *)val;
    w.value_len = strlen(val);
    return w;
}

static txn_write del(tpc_group g, const char *key)
{
    return wr(TXN_DELETE, g, key);
}

static txn_write add(tpc_group g, const char *key, int64_t delta)
{
    txn_write w = wr(TXN_ADD, g, key);
    w.delta = delta;
    return w;
}

static txn_write add_floor(tpc_group g, const char *key, int64_t delta, int64_t floor)
{
    txn_write w = add(g, key, delta);
    w.has_floor = 1;
    w.floor = floor;
    return w;
}

#define TXN_OF(c, w) { sizeof(c) / sizeof(c)[0], (c), sizeof(w) / sizeof(w)[0], (w) }
#define TXN_WRITES(w) { 0, NULL, sizeof(w) / sizeof(w)[0], (w) }
#define TXN_CONDS(c) { sizeof(c) / sizeof(c)[0], (c), 0, NULL }

static const uint8_t *share_of(const txn *t, size_t *len)
{
    *len = txn_encoded_size(t);
    uint8_t *b = keep(malloc(*len));
    txn_encode(t, b);
    return b;
}

static tpc_msg msg(uint8_t kind, uint8_t flag, tpc_id id, tpc_group self, tpc_group coord,
                   uint64_t clock)
{
    tpc_msg m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.flag = flag;
    m.id = id;
    m.self = self;
    m.coord = coord;
    m.clock_ms = clock;
    return m;
}

/* A PREPARE of t for self; at the coordinator it names G0 and G1. */
static tpc_msg prepare(tpc_id id, tpc_group self, tpc_group coord, const txn *t, uint64_t clock,
                       uint64_t deadline)
{
    tpc_msg m = msg(TPC_PREPARE, 0, id, self, coord, clock);
    m.deadline_ms = deadline;
    if (group_eq(self, coord)) {
        m.nparts = 2;
        m.parts[0] = G0;
        m.parts[1] = G1;
    }
    m.share = share_of(t, &m.share_len);
    return m;
}

static uint8_t *encode_msg(const tpc_msg *m, size_t *len)
{
    *len = tpc_msg_encoded_size(m);
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    tpc_msg_encode(m, b);
    return b;
}

/* Applies the encoded bytes at the group's next index, as the state
 * machine does: decode, apply, then the entry's bytes are gone (poisoned
 * first, so a record that kept a pointer into them would show). */
static int apply_bytes(grp *g, uint8_t *b, size_t len, tpc_msg *decoded, tpc_result *r,
                       okv_error *err)
{
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, b, len);
    tpc_msg d;
    okv_error_clear(err);
    assert_int_equal(tpc_msg_decode(copy, len, &d, err), OKV_OK);
    memset(r, 0x5a, sizeof *r);
    int rc = tpc_apply(&d, ++g->index, &g->ts, r, err);
    if (decoded) {
        *decoded = d;
        decoded->share = NULL;
    }
    memset(copy, 0xee, len);
    free(copy);
    return rc;
}

static int apply_rc(grp *g, const tpc_msg *m, tpc_result *r, okv_error *err)
{
    size_t len;
    uint8_t *b = encode_msg(m, &len);
    int rc = apply_bytes(g, b, len, NULL, r, err);
    free(b);
    return rc;
}

static tpc_result apply(grp *g, const tpc_msg *m)
{
    tpc_result r;
    okv_error err;
    int rc = apply_rc(g, m, &r, &err);
    if (rc != OKV_OK)
        fail_msg("tpc_apply kind %u: %d %s", m->kind, rc, err.msg);
    return r;
}

static void assert_fail_is(tpc_fail f, int32_t code, uint32_t failed, uint8_t reason)
{
    assert_int_equal(f.code, code);
    assert_int_equal(f.failed, failed);
    assert_int_equal(f.reason, reason);
}

static void assert_result(const tpc_result *r, int code, uint8_t state)
{
    if (r->code != code || r->state != state)
        fail_msg("result code %d state %s, expected code %d state %s", r->code,
                 tpc_state_name(r->state), code, tpc_state_name(state));
}

static void assert_same_result(const tpc_result *a, const tpc_result *b)
{
    assert_int_equal(a->code, b->code);
    assert_int_equal(a->state, b->state);
    assert_fail_is(a->fail, b->fail.code, b->fail.failed, b->fail.reason);
}

/* ---- messages: codec --------------------------------------------------------- */

static const uint8_t SAMPLE_SHARE[] = { 1, 0, 0, 0, 1, 0xff, 0x00, 'x' };

/* One message of every kind and flag, with edge values in every field. */
static size_t sample_msgs(tpc_msg *out)
{
    tpc_id id = { 0x1122334455667788ULL, 0x99aabbccddeeff00ULL };
    tpc_group self = { 0x01020304u, 0x05060708u };
    tpc_group other = { 0x01020304u, 0xfffffffeu };
    size_t n = 0;

    tpc_msg m = msg(TPC_PREPARE, 0, id, self, self, 0xfedcba9876543210ULL);
    m.deadline_ms = UINT64_MAX;
    m.fail = (tpc_fail){ INT32_MIN, 0xffffffffu, 0xff };
    m.nparts = 3;
    m.parts[0] = other;
    m.parts[1] = self;
    m.parts[2] = (tpc_group){ 0, 0 };
    m.share = SAMPLE_SHARE;
    m.share_len = sizeof SAMPLE_SHARE;
    out[n++] = m;

    m = msg(TPC_PREPARE, 0, id, other, self, 1);
    m.deadline_ms = 2;
    m.share = SAMPLE_SHARE;
    m.share_len = 1;
    out[n++] = m;

    static const uint8_t kinds[][2] = { { TPC_DECIDE, 0 }, { TPC_DECIDE, 1 }, { TPC_RESOLVE, 0 },
                                        { TPC_RESOLVE, 1 }, { TPC_CHECK, 0 }, { TPC_CHECK, 1 },
                                        { TPC_FINISH, 0 }, { TPC_FORGET, 'C' },
                                        { TPC_FORGET, 'P' } };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        /* DECIDE, CHECK and FINISH only ever go to the coordinator. */
        int coord_only = kinds[i][0] == TPC_DECIDE || kinds[i][0] == TPC_CHECK ||
                         kinds[i][0] == TPC_FINISH;
        m = msg(kinds[i][0], kinds[i][1], (tpc_id){ i, UINT64_MAX - i }, self,
                coord_only || i % 2 ? self : other, 1000 + i);
        m.deadline_ms = i;
        m.fail = (tpc_fail){ OKV_ECONDITION, (uint32_t)i, TXN_FAIL_FLOOR };
        out[n++] = m;
    }
    return n;
}

static void assert_msg_equal(const tpc_msg *a, const tpc_msg *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->flag, b->flag);
    assert_true(id_eq(&a->id, &b->id));
    assert_int_equal(a->clock_ms, b->clock_ms);
    assert_int_equal(a->deadline_ms, b->deadline_ms);
    assert_true(group_eq(a->self, b->self));
    assert_true(group_eq(a->coord, b->coord));
    assert_fail_is(a->fail, b->fail.code, b->fail.failed, b->fail.reason);
    assert_int_equal(a->nparts, b->nparts);
    for (uint32_t i = 0; i < a->nparts; i++)
        assert_true(group_eq(a->parts[i], b->parts[i]));
    assert_int_equal(a->share_len, b->share_len);
    if (a->share_len)
        assert_memory_equal(a->share, b->share, a->share_len);
    else
        assert_null(b->share);
}

/* Decodes a copy of exactly n bytes of buf (so a read past n is a read past
 * the allocation). */
static int decode_n(const uint8_t *buf, size_t n, tpc_msg *out, okv_error *err)
{
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, buf, n);
    okv_error_clear(err);
    int rc = tpc_msg_decode(copy, n, out, err);
    free(copy);
    return rc;
}

static void test_tpc__msg_roundtrip_every_kind(void **state)
{
    (void)state;
    tpc_msg s[16];
    size_t n = sample_msgs(s);
    assert_int_equal(n, 11);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *b = encode_msg(&s[i], &len);
        assert_int_equal(len, 64 + 8 * s[i].nparts + 4 + s[i].share_len);
        /* The documented layout, at its landmarks. */
        assert_int_equal(b[0], TPC_FORMAT);
        assert_int_equal(b[1], s[i].kind);
        assert_int_equal(b[2], s[i].flag);
        assert_int_equal(b[3], (uint8_t)(s[i].id.client >> 56));
        assert_int_equal(b[18], (uint8_t)s[i].id.req);
        assert_int_equal(b[63], (uint8_t)s[i].nparts);
        assert_int_equal(b[64 + 8 * s[i].nparts + 3], (uint8_t)s[i].share_len);

        tpc_msg d;
        okv_error err;
        uint8_t *copy = keep(malloc(len));
        memcpy(copy, b, len);
        assert_int_equal(tpc_msg_decode(copy, len, &d, &err), OKV_OK);
        assert_msg_equal(&s[i], &d);
        if (d.share_len)   /* borrowed from the bytes, not copied */
            assert_ptr_equal(d.share, copy + 64 + 8 * d.nparts + 4);
        /* Re-encoding gives the same bytes. */
        size_t len2;
        uint8_t *b2 = encode_msg(&d, &len2);
        assert_int_equal(len2, len);
        assert_memory_equal(b2, b, len);
        free(b2);
        free(b);
    }
    /* Negative codes survive (two's complement). */
    assert_int_equal(s[0].fail.code, INT32_MIN);
}

static void test_tpc__msg_every_truncation_is_refused(void **state)
{
    (void)state;
    tpc_msg s[16];
    size_t n = sample_msgs(s);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *b = encode_msg(&s[i], &len);
        for (size_t cut = 0; cut < len; cut++) {
            tpc_msg d;
            okv_error err;
            if (decode_n(b, cut, &d, &err) != OKV_ECORRUPT)
                fail_msg("sample %zu cut to %zu of %zu bytes was accepted", i, cut, len);
            assert_int_equal(err.code, OKV_ECORRUPT);
            assert_true(strlen(err.msg) > 0);
        }
        /* Trailing bytes too. */
        uint8_t *longer = keep(calloc(1, len + 8));
        memcpy(longer, b, len);
        for (size_t extra = 1; extra <= 8; extra++) {
            tpc_msg d;
            okv_error err;
            if (decode_n(longer, len + extra, &d, &err) != OKV_ECORRUPT)
                fail_msg("sample %zu with %zu trailing bytes was accepted", i, extra);
            has(err.msg, "share of");
        }
        tpc_msg d;
        okv_error err;
        assert_int_equal(decode_n(b, len, &d, &err), OKV_OK);
        free(b);
    }
}

/* Encodes m, lets poke change the bytes, expects a refusal saying `say`. */
static void expect_corrupt(const tpc_msg *m, size_t at, uint8_t byte, const char *say)
{
    size_t len;
    uint8_t *b = encode_msg(m, &len);
    if (at != SIZE_MAX) {
        assert_true(at < len);
        b[at] = byte;
    }
    tpc_msg d;
    okv_error err;
    int rc = decode_n(b, len, &d, &err);
    free(b);
    if (rc != OKV_ECORRUPT)
        fail_msg("kind %u flag %u (byte %zu = %u) was accepted", m->kind, m->flag, at, byte);
    assert_int_equal(err.code, OKV_ECORRUPT);
    if (!strstr(err.msg, say))
        fail_msg("\"%s\" does not say \"%s\"", err.msg, say);
}

static void test_tpc__msg_malformed_is_refused(void **state)
{
    (void)state;
    tpc_msg s[16];
    sample_msgs(s);
    const tpc_msg *coord_prep = &s[0], *part_prep = &s[1], *decide = &s[2];

    /* Format, kind, flag. */
    expect_corrupt(decide, 0, 0, "unknown format");
    expect_corrupt(decide, 0, 2, "unknown format");
    expect_corrupt(decide, 1, 0, "kind 0");
    expect_corrupt(decide, 1, 7, "kind 7");
    expect_corrupt(decide, 1, 0xff, "kind 255");
    expect_corrupt(decide, 2, 2, "flag 2");          /* DECIDE */
    expect_corrupt(&s[4], 2, 2, "flag 2");           /* RESOLVE */
    expect_corrupt(&s[6], 2, 3, "flag 3");           /* CHECK (2: settle) */
    expect_corrupt(coord_prep, 2, 2, "flag 2");      /* PREPARE (1: vote last) */
    expect_corrupt(&s[8], 2, 1, "flag 1");           /* FINISH */
    expect_corrupt(&s[9], 2, 0, "flag 0");           /* FORGET */
    expect_corrupt(&s[9], 2, 'X', "flag 88");
    expect_corrupt(&s[9], 2, 'c', "flag 99");
    expect_corrupt(part_prep, 2, 1, "flag 1");       /* PREPARE */

    /* Participant counts past the limit or past the bytes. */
    expect_corrupt(decide, 63, 65, "65 participants");
    expect_corrupt(decide, 60, 0xff, "participants");
    expect_corrupt(decide, 63, 1, "1 participants");
    expect_corrupt(coord_prep, 63, 5, "5 participants");
    /* A share length that is not what is left. */
    expect_corrupt(decide, 67, 1, "share of 1 bytes in 0");
    expect_corrupt(decide, 64, 0xff, "share of");
    expect_corrupt(part_prep, 67, 0, "share of 0 bytes in 1");
    expect_corrupt(part_prep, 67, 2, "share of 2 bytes in 1");

    /* Shapes the encoder writes but the decoder refuses. */
    tpc_group self = coord_prep->self, other = { 9, 9 };
    tpc_msg m = *coord_prep;
    m.parts[1] = other;   /* the coordinator does not name itself */
    expect_corrupt(&m, SIZE_MAX, 0, "a PREPARE with 3 participants");
    m = *coord_prep;
    m.nparts = 1;
    m.parts[0] = self;    /* only itself */
    expect_corrupt(&m, SIZE_MAX, 0, "a PREPARE with 1 participants");
    m.nparts = 0;
    expect_corrupt(&m, SIZE_MAX, 0, "a PREPARE with 0 participants");
    m = *coord_prep;
    m.share = NULL;
    m.share_len = 0;      /* nothing to prepare */
    expect_corrupt(&m, SIZE_MAX, 0, "share of 0 bytes");
    m = *part_prep;
    m.nparts = 2;         /* a participant's PREPARE names participants */
    m.parts[0] = part_prep->self;
    m.parts[1] = part_prep->coord;
    expect_corrupt(&m, SIZE_MAX, 0, "a PREPARE with 2 participants");
    m = *part_prep;
    m.share_len = 0;
    m.share = NULL;
    expect_corrupt(&m, SIZE_MAX, 0, "a PREPARE with 0 participants and a share of 0 bytes");
    for (size_t i = 2; i < 11; i++) {
        m = s[i];
        m.share = SAMPLE_SHARE;
        m.share_len = 3;
        expect_corrupt(&m, SIZE_MAX, 0, "carries a share or participants");
        m = s[i];
        m.nparts = 2;
        m.parts[0] = m.self;
        m.parts[1] = other;
        expect_corrupt(&m, SIZE_MAX, 0, "carries a share or participants");
    }

    /* A coordinator's step for a group that does not coordinate: no group
     * could apply it (it once reached the log through KV.TxnPart and
     * stopped every replica). */
    for (size_t i = 2; i < 11; i++) {
        if (s[i].kind != TPC_DECIDE && s[i].kind != TPC_CHECK && s[i].kind != TPC_FINISH)
            continue;
        m = s[i];
        m.coord = other;
        expect_corrupt(&m, SIZE_MAX, 0, "does not coordinate");
    }

    /* The valid ones still pass after all that. */
    for (size_t i = 0; i < 11; i++) {
        size_t len;
        uint8_t *b = encode_msg(&s[i], &len);
        tpc_msg d;
        okv_error err;
        assert_int_equal(decode_n(b, len, &d, &err), OKV_OK);
        free(b);
    }
}

/* Random byte flips never crash, and what is accepted re-encodes to the
 * same bytes. */
static void test_tpc__msg_random_mutations_never_crash(void **state)
{
    (void)state;
    tpc_msg s[16];
    size_t n = sample_msgs(s);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int round = 0; round < 3000; round++) {
        const tpc_msg *m = &s[(size_t)round % n];
        size_t len;
        uint8_t *b = encode_msg(m, &len);
        int flips = 1 + round % 4;
        for (int f = 0; f < flips; f++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            b[x % len] = (uint8_t)(x >> 32);
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t cut = (x & 7) == 0 ? (size_t)((x >> 8) % len) : len;
        tpc_msg d;
        okv_error err;
        uint8_t *copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, b, cut);
        okv_error_clear(&err);
        int rc = tpc_msg_decode(copy, cut, &d, &err);
        if (rc == OKV_OK) {
            size_t len2;
            uint8_t *b2 = encode_msg(&d, &len2);
            assert_int_equal(len2, cut);
            assert_memory_equal(b2, copy, cut);
            free(b2);
        } else {
            assert_int_equal(rc, OKV_ECORRUPT);
            assert_int_equal(err.code, OKV_ECORRUPT);
        }
        free(copy);
        free(b);
    }
}

/* ---- records: codec ---------------------------------------------------------- */

static void test_tpc__prec_roundtrip_and_rejects(void **state)
{
    (void)state;
    static const uint8_t sh[] = { 'a', 0, 'b', 0xff };
    tpc_prec samples[] = {
        { TPC_PREPARED, 0x0102030405060708ULL, 0, { 3, 4 }, { 0, 0, 0 }, sh, sizeof sh },
        { TPC_ABORTED, UINT64_MAX, 77, { 0xffffffffu, 0 }, { INT32_MIN, 0xfffffffeu, 5 }, NULL,
          0 },
        { TPC_COMMITTED, 1, 2, { 5, 6 }, { OKV_ECONFLICT, 3, TXN_FAIL_LOCKED }, NULL, 0 },
    };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        size_t len;
        uint8_t *b = tpc_prec_encode(&samples[i], &len);
        assert_non_null(b);
        assert_int_equal(len, 39 + samples[i].share_len);
        assert_int_equal(b[0], 1);
        assert_int_equal(b[1], samples[i].state);
        tpc_prec d;
        assert_int_equal(tpc_prec_decode(b, len, &d), 0);
        assert_int_equal(d.state, samples[i].state);
        assert_int_equal(d.deadline_ms, samples[i].deadline_ms);
        assert_int_equal(d.settled_ms, samples[i].settled_ms);
        assert_true(group_eq(d.coord, samples[i].coord));
        assert_fail_is(d.fail, samples[i].fail.code, samples[i].fail.failed,
                       samples[i].fail.reason);
        assert_int_equal(d.share_len, samples[i].share_len);
        if (d.share_len) {
            assert_ptr_equal(d.share, b + 39);
            assert_memory_equal(d.share, sh, sizeof sh);
        } else {
            assert_null(d.share);
        }
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *c = malloc(cut ? cut : 1);
            assert_non_null(c);
            memcpy(c, b, cut);
            if (tpc_prec_decode(c, cut, &d) != -1)
                fail_msg("P %zu cut to %zu bytes was accepted", i, cut);
            free(c);
        }
        uint8_t *longer = keep(calloc(1, len + 1));
        memcpy(longer, b, len);
        assert_int_equal(tpc_prec_decode(longer, len + 1, &d), -1);
        static const uint8_t bad_states[] = { TPC_NONE, TPC_PENDING, 5, 0xff };
        for (size_t k = 0; k < sizeof bad_states; k++) {
            uint8_t save = b[1];
            b[1] = bad_states[k];
            assert_int_equal(tpc_prec_decode(b, len, &d), -1);
            b[1] = save;
        }
        b[0] = 2;
        assert_int_equal(tpc_prec_decode(b, len, &d), -1);
        b[0] = 0;
        assert_int_equal(tpc_prec_decode(b, len, &d), -1);
        b[0] = 1;
        b[38] ^= 1;   /* share length off by one */
        assert_int_equal(tpc_prec_decode(b, len, &d), -1);
        b[38] ^= 1;
        assert_int_equal(tpc_prec_decode(b, len, &d), 0);
        free(b);
    }
}

static void test_tpc__crec_roundtrip_and_rejects(void **state)
{
    (void)state;
    tpc_crec samples[3];
    memset(samples, 0, sizeof samples);
    samples[0].state = TPC_PENDING;
    samples[0].deadline_ms = 0x1112131415161718ULL;
    samples[0].nparts = 3;
    samples[0].parts[0] = G0;
    samples[0].parts[1] = G1;
    samples[0].parts[2] = (tpc_group){ 0xffffffffu, 0xfffffffeu };
    samples[1].state = TPC_ABORTED;
    samples[1].finished = 1;
    samples[1].settled_ms = UINT64_MAX;
    samples[1].fail = (tpc_fail){ INT32_MIN, 7, TXN_FAIL_FLOOR };
    samples[2].state = TPC_COMMITTED;
    samples[2].nparts = TPC_MAX_PARTS;
    for (uint32_t i = 0; i < TPC_MAX_PARTS; i++)
        samples[2].parts[i] = (tpc_group){ i, i * 3 };
    for (size_t i = 0; i < 3; i++) {
        size_t len;
        uint8_t *b = tpc_crec_encode(&samples[i], &len);
        assert_non_null(b);
        assert_int_equal(len, 32 + 8 * samples[i].nparts);
        tpc_crec d;
        assert_int_equal(tpc_crec_decode(b, len, &d), 0);
        assert_int_equal(d.state, samples[i].state);
        assert_int_equal(d.finished, samples[i].finished);
        assert_int_equal(d.deadline_ms, samples[i].deadline_ms);
        assert_int_equal(d.settled_ms, samples[i].settled_ms);
        assert_fail_is(d.fail, samples[i].fail.code, samples[i].fail.failed,
                       samples[i].fail.reason);
        assert_int_equal(d.nparts, samples[i].nparts);
        for (uint32_t p = 0; p < d.nparts; p++)
            assert_true(group_eq(d.parts[p], samples[i].parts[p]));
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *c = malloc(cut ? cut : 1);
            assert_non_null(c);
            memcpy(c, b, cut);
            if (tpc_crec_decode(c, cut, &d) != -1)
                fail_msg("C %zu cut to %zu bytes was accepted", i, cut);
            free(c);
        }
        uint8_t *longer = keep(calloc(1, len + 8));
        memcpy(longer, b, len);
        assert_int_equal(tpc_crec_decode(longer, len + 1, &d), -1);
        /* Trailing room for exactly one more participant, count not raised. */
        assert_int_equal(tpc_crec_decode(longer, len + 8, &d), -1);
        static const uint8_t bad_states[] = { TPC_NONE, TPC_PREPARED, 5, 0xff };
        for (size_t k = 0; k < sizeof bad_states; k++) {
            uint8_t save = b[1];
            b[1] = bad_states[k];
            assert_int_equal(tpc_crec_decode(b, len, &d), -1);
            b[1] = save;
        }
        b[2] = 2;
        assert_int_equal(tpc_crec_decode(b, len, &d), -1);
        b[2] = samples[i].finished;
        b[0] = 2;
        assert_int_equal(tpc_crec_decode(b, len, &d), -1);
        b[0] = 1;
        b[31] ^= 1;   /* participant count off by one */
        assert_int_equal(tpc_crec_decode(b, len, &d), -1);
        b[31] ^= 1;
        assert_int_equal(tpc_crec_decode(b, len, &d), 0);
        free(b);
    }
    /* 65 participants, with the bytes for them: over the limit. */
    uint8_t *big = keep(calloc(1, 32 + 8 * 65));
    big[0] = 1;
    big[1] = TPC_COMMITTED;
    big[31] = 65;
    tpc_crec d;
    assert_int_equal(tpc_crec_decode(big, 32 + 8 * 65, &d), -1);
    big[31] = 64;
    assert_int_equal(tpc_crec_decode(big, 32 + 8 * 64, &d), 0);
}

static void test_tpc__lock_roundtrip_and_rejects(void **state)
{
    (void)state;
    tpc_id h = { 0x0102030405060708ULL, 0xf0e0d0c0b0a09080ULL };
    for (uint8_t mode = TPC_LOCK_SHARED; mode <= TPC_LOCK_EXCLUSIVE; mode++) {
        uint8_t b[TPC_LOCK_LEN + 1];
        memset(b, 0xcc, sizeof b);
        tpc_lock_encode(mode, &h, b);
        assert_int_equal(b[TPC_LOCK_LEN], 0xcc);   /* nothing past 17 bytes */
        assert_int_equal(b[0], mode);
        assert_int_equal(b[1], 0x01);
        assert_int_equal(b[8], 0x08);
        assert_int_equal(b[9], 0xf0);
        assert_int_equal(b[16], 0x80);
        uint8_t m = 0;
        tpc_id d = { 0, 0 };
        assert_int_equal(tpc_lock_decode(b, TPC_LOCK_LEN, &m, &d), 0);
        assert_int_equal(m, mode);
        assert_true(id_eq(&d, &h));
        assert_int_equal(tpc_lock_decode(b, TPC_LOCK_LEN - 1, &m, &d), -1);
        assert_int_equal(tpc_lock_decode(b, TPC_LOCK_LEN + 1, &m, &d), -1);
        assert_int_equal(tpc_lock_decode(b, 0, &m, &d), -1);
        b[0] = TPC_LOCK_NONE;
        assert_int_equal(tpc_lock_decode(b, TPC_LOCK_LEN, &m, &d), -1);
        b[0] = 3;
        assert_int_equal(tpc_lock_decode(b, TPC_LOCK_LEN, &m, &d), -1);
    }
    /* Several holders: shared only, whole 16-byte ids, at most the cap. */
    uint8_t many[TPC_LOCK_MAX_LEN + 16];
    memset(many, 0, sizeof many);
    many[0] = TPC_LOCK_SHARED;
    for (size_t i = 0; i < TPC_LOCK_MAX_HOLDERS + 1; i++) {
        keycodec_put_u64be(many + 1 + 16 * i, 100 + i);
        keycodec_put_u64be(many + 9 + 16 * i, 7);
    }
    uint8_t m = 0;
    tpc_id d = { 0, 0 };
    assert_int_equal(tpc_lock_decode(many, 1 + 16 * 3, &m, &d), 0);
    assert_int_equal(tpc_lock_holders(1 + 16 * 3), 3);
    assert_int_equal(tpc_lock_holder(many, 2).client, 102);
    assert_int_equal(tpc_lock_holder(many, 2).req, 7);
    assert_int_equal(d.client, 100);
    assert_int_equal(tpc_lock_decode(many, TPC_LOCK_MAX_LEN, &m, &d), 0);
    assert_int_equal(tpc_lock_decode(many, TPC_LOCK_MAX_LEN + 16, &m, &d), -1);
    assert_int_equal(tpc_lock_decode(many, 1 + 16 * 3 - 1, &m, &d), -1);
    assert_int_equal(tpc_lock_decode(many, 1 + 16 * 3 + 1, &m, &d), -1);
    many[0] = TPC_LOCK_EXCLUSIVE;
    assert_int_equal(tpc_lock_decode(many, 1 + 16 * 2, &m, &d), -1);
    assert_int_equal(tpc_lock_decode(many, 1 + 16, &m, &d), 0);

    assert_string_equal(tpc_state_name(TPC_NONE), "unknown");
    assert_string_equal(tpc_state_name(TPC_PENDING), "pending");
    assert_string_equal(tpc_state_name(TPC_PREPARED), "prepared");
    assert_string_equal(tpc_state_name(TPC_COMMITTED), "committed");
    assert_string_equal(tpc_state_name(TPC_ABORTED), "aborted");
    assert_string_equal(tpc_state_name(9), "?");
}

/* ---- PREPARE at a participant ------------------------------------------------- */

static const tpc_id T1 = { 11, 1 };
static const tpc_id T2 = { 22, 2 };
static const tpc_id T3 = { 33, 3 };

/* G1's usual data: a, r, d and the counter c. */
static grp *participant(void)
{
    grp *g = grp_new(G1);
    data_put(g, "a", "old", 5);
    data_put(g, "r", "ref", 6);
    data_put(g, "d", "gone", 7);
    data_counter(g, "c", 10, 8);
    return g;
}

/* T1's share at G1: conditions on r (read only) and d (also written);
 * writes a, d, c and the absent n. */
static txn_cond t1_conds[3];
static txn_write t1_writes[4];

static txn t1_share(void)
{
    t1_conds[0] = cond_value(G1, "r", "ref");
    t1_conds[1] = cond(TXN_COND_VERSION_EQ, G1, "d");
    t1_conds[1].version = 7;
    t1_conds[2] = cond_int(G1, "c", TXN_GE, 10);
    t1_writes[0] = put(G1, "a", "new");
    t1_writes[1] = del(G1, "d");
    t1_writes[2] = add(G1, "c", -4);
    t1_writes[3] = add(G1, "n", 7);
    txn t = TXN_OF(t1_conds, t1_writes);
    return t;
}

static tpc_result prepare_t1(grp *g, const tpc_msg *m)
{
    tpc_result r = apply(g, m);
    assert_result(&r, OKV_OK, TPC_PREPARED);
    assert_fail_is(r.fail, 0, 0, 0);
    assert_int_equal(r.version, 0);
    return r;
}

static void test_tpc__prepare_locks_and_records_intents(void **state)
{
    (void)state;
    grp *g = participant();
    data_copy before;
    data_snap(g, &before);
    txn t = t1_share();
    tpc_msg m = prepare(T1, G1, G0, &t, 1000, 2000);
    tpc_result r = prepare_t1(g, &m);

    /* Exclusive on every written key, shared on r only (c and d are
     * written too, so their conditions need no lock of their own). */
    assert_int_equal(g->nl, 5);
    assert_lock(g, "a", TPC_LOCK_EXCLUSIVE, T1);
    assert_lock(g, "d", TPC_LOCK_EXCLUSIVE, T1);
    assert_lock(g, "c", TPC_LOCK_EXCLUSIVE, T1);
    assert_lock(g, "n", TPC_LOCK_EXCLUSIVE, T1);
    assert_lock(g, "r", TPC_LOCK_SHARED, T1);

    /* P = PREPARED with the share; no C at a participant; no data. */
    assert_int_equal(g->nr, 1);
    tpc_prec p = must_prec(g, T1);
    assert_int_equal(p.state, TPC_PREPARED);
    assert_int_equal(p.deadline_ms, 2000);
    assert_int_equal(p.settled_ms, 0);
    assert_true(group_eq(p.coord, G0));
    assert_fail_is(p.fail, 0, 0, 0);
    assert_int_equal(p.share_len, m.share_len);
    assert_memory_equal(p.share, m.share, m.share_len);
    assert_null(rec_find(g, 'C', &T1));
    assert_int_equal(g->data_writes, 0);
    assert_data_unchanged(g, &before);

    /* Again (T4): the same answer, nothing written. */
    size_t puts = g->rec_puts, lputs = g->lock_puts, plen;
    uint8_t *pb = rec_bytes(g, 'P', T1, &plen);
    tpc_result r2 = prepare_t1(g, &m);
    assert_same_result(&r, &r2);
    assert_int_equal(g->rec_puts, puts);
    assert_int_equal(g->lock_puts, lputs);
    assert_rec_is(g, 'P', T1, pb, plen);
    assert_int_equal(g->nl, 5);
    assert_int_equal(g->data_writes, 0);
    grp_free(g);
}

static void test_tpc__prepare_meeting_a_lock_it_cannot_share_is_refused(void **state)
{
    (void)state;
    grp *g = participant();
    txn t = t1_share();
    tpc_msg m1 = prepare(T1, G1, G0, &t, 1000, 2000);
    prepare_t1(g, &m1);

    /* Three ways to meet T1 that cannot share: a write on its shared key
     * (after a free condition), a condition on its exclusive key, a write
     * on its exclusive key. (A condition on its shared key shares it:
     * test_tpc__readers_share_a_key.) */
    txn_cond c1[] = { cond(TXN_COND_ABSENT, G1, "z") };
    txn_write w1[] = { put(G1, "r", "mine") };
    txn s1 = TXN_OF(c1, w1);
    txn_cond c2[] = { cond(TXN_COND_EXISTS, G1, "a") };
    txn s2 = TXN_CONDS(c2);
    txn_write w4[] = { put(G1, "z", "free"), add(G1, "c", 1) };
    txn s4 = TXN_WRITES(w4);
    struct {
        txn *t;
        uint32_t failed;
    } cases[] = { { &s1, 1 }, { &s2, 0 }, { &s4, 1 } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tpc_id id = { 100 + i, 1 };
        tpc_msg m = prepare(id, G1, G0, cases[i].t, 1100, 2000);
        tpc_result r = apply(g, &m);
        assert_result(&r, OKV_ECONFLICT, TPC_NONE);
        assert_fail_is(r.fail, OKV_ECONFLICT, cases[i].failed, TXN_FAIL_LOCKED);
        /* "Not now": no record, so it may be sent again. */
        assert_null(rec_find(g, 'P', &id));
        /* T1's locks as they were; none for the refused one (not on z). */
        assert_int_equal(g->nl, 5);
        assert_lock(g, "r", TPC_LOCK_SHARED, T1);
        assert_lock(g, "a", TPC_LOCK_EXCLUSIVE, T1);
        assert_lock(g, "c", TPC_LOCK_EXCLUSIVE, T1);
        assert_unlocked(g, "z");
        assert_int_equal(g->data_writes, 0);
        /* Again: the same refusal, nothing written. */
        size_t puts = g->rec_puts, lputs = g->lock_puts;
        tpc_result r2 = apply(g, &m);
        assert_same_result(&r, &r2);
        assert_int_equal(g->rec_puts, puts);
        assert_int_equal(g->lock_puts, lputs);
    }

    /* Once T1 resolved, a refused id sent again prepares (the wait for a
     * hot key), and a new id meets its locks in turn. */
    tpc_msg res = msg(TPC_RESOLVE, 0, T1, G1, G0, 1200);
    tpc_result rr = apply(g, &res);
    assert_int_equal(rr.state, TPC_ABORTED);
    assert_int_equal(g->nl, 0);
    tpc_msg again = prepare((tpc_id){ 100, 1 }, G1, G0, &s1, 1100, 2000);
    tpc_result r = apply(g, &again);
    assert_result(&r, OKV_OK, TPC_PREPARED);
    assert_lock(g, "r", TPC_LOCK_EXCLUSIVE, ((tpc_id){ 100, 1 }));
    assert_lock(g, "z", TPC_LOCK_SHARED, ((tpc_id){ 100, 1 }));
    tpc_msg fresh = prepare(T3, G1, G0, &s1, 1300, 2000);
    r = apply(g, &fresh);
    assert_result(&r, OKV_ECONFLICT, TPC_NONE);
    assert_int_equal(g->data_writes, 0);
    grp_free(g);
}

/* Expects m refused with fail, P = ABORTED, and nothing else touched. */
static void expect_refused(grp *g, const tpc_msg *m, int32_t code, uint32_t failed,
                           uint8_t reason)
{
    size_t lputs = g->lock_puts, nl = g->nl;
    data_copy before;
    data_snap(g, &before);
    tpc_result r = apply(g, m);
    assert_result(&r, code, TPC_ABORTED);
    assert_fail_is(r.fail, code, failed, reason);
    tpc_prec p = must_prec(g, m->id);
    assert_int_equal(p.state, TPC_ABORTED);
    assert_fail_is(p.fail, code, failed, reason);
    assert_int_equal(p.share_len, 0);
    assert_int_equal(p.deadline_ms, m->deadline_ms);
    assert_int_equal(p.settled_ms, m->clock_ms);
    assert_int_equal(g->lock_puts, lputs);
    assert_int_equal(g->nl, nl);
    assert_int_equal(g->data_writes, 0);
    assert_data_unchanged(g, &before);
    assert_null(rec_find(g, 'C', &m->id));
    /* The second time: the same. */
    size_t puts = g->rec_puts;
    tpc_result r2 = apply(g, m);
    assert_same_result(&r, &r2);
    assert_int_equal(g->rec_puts, puts);
}

/* Conditions share a key (T3 holds while every reader is PREPARED: none
 * writes it); a write waits until the last reader is resolved. */
static void test_tpc__readers_share_a_key(void **state)
{
    (void)state;
    grp *g = participant();
    txn t = t1_share();
    tpc_msg m1 = prepare(T1, G1, G0, &t, 1000, 2000);
    prepare_t1(g, &m1);

    /* T2 checks r twice and z; T3 checks r and writes w. */
    txn_cond c2[] = { cond(TXN_COND_EXISTS, G1, "r"), cond_value(G1, "r", "ref"),
                      cond(TXN_COND_ABSENT, G1, "z") };
    txn s2 = TXN_CONDS(c2);
    txn_cond c3[] = { cond(TXN_COND_EXISTS, G1, "r") };
    txn_write w3[] = { put(G1, "w", "three") };
    txn s3 = TXN_OF(c3, w3);
    tpc_msg m2 = prepare(T2, G1, G0, &s2, 1010, 2000), m3 = prepare(T3, G1, G0, &s3, 1020, 2000);
    tpc_result r = apply(g, &m2);
    assert_result(&r, OKV_OK, TPC_PREPARED);
    r = apply(g, &m3);
    assert_result(&r, OKV_OK, TPC_PREPARED);
    tpc_id three[] = { T1, T2, T3 };
    assert_shared_by(g, "r", three, 3);
    assert_shared_by(g, "z", &T2, 1);
    assert_lock(g, "w", TPC_LOCK_EXCLUSIVE, T3);

    /* A writer of r meets the readers, however many are left. */
    tpc_id t4 = { 44, 4 };
    txn_write w4[] = { put(G1, "r", "four") };
    txn s4 = TXN_WRITES(w4);
    tpc_msg m4 = prepare(t4, G1, G0, &s4, 1030, 2000);
    r = apply(g, &m4);
    assert_result(&r, OKV_ECONFLICT, TPC_NONE);
    assert_fail_is(r.fail, OKV_ECONFLICT, 0, TXN_FAIL_LOCKED);
    tpc_msg res1 = msg(TPC_RESOLVE, 1, T1, G1, G0, 1100);
    r = apply(g, &res1);
    assert_int_equal(r.state, TPC_COMMITTED);
    tpc_id two[] = { T2, T3 };
    assert_shared_by(g, "r", two, 2);
    r = apply(g, &m4);
    assert_result(&r, OKV_ECONFLICT, TPC_NONE);
    tpc_msg res2 = msg(TPC_RESOLVE, 0, T2, G1, G0, 1110);
    apply(g, &res2);
    assert_shared_by(g, "r", &T3, 1);
    assert_unlocked(g, "z");
    tpc_msg res3 = msg(TPC_RESOLVE, 1, T3, G1, G0, 1120);
    apply(g, &res3);
    assert_unlocked(g, "r");
    assert_unlocked(g, "w");
    r = apply(g, &m4);
    assert_result(&r, OKV_OK, TPC_PREPARED);
    assert_lock(g, "r", TPC_LOCK_EXCLUSIVE, t4);
    tpc_msg res4 = msg(TPC_RESOLVE, 0, t4, G1, G0, 1130);
    apply(g, &res4);
    assert_int_equal(g->nl, 0);

    /* At most TPC_LOCK_MAX_HOLDERS readers; the next one waits. */
    for (uint64_t i = 0; i <= TPC_LOCK_MAX_HOLDERS; i++) {
        tpc_msg mi = prepare((tpc_id){ 500 + i, 1 }, G1, G0, &s2, 1200, 2000);
        r = apply(g, &mi);
        if (i < TPC_LOCK_MAX_HOLDERS) {
            assert_result(&r, OKV_OK, TPC_PREPARED);
        } else {
            assert_result(&r, OKV_ECONFLICT, TPC_NONE);
            assert_null(rec_find(g, 'P', &mi.id));
        }
    }
    assert_int_equal(lock_find(g, (const uint8_t *)"r", 1)->nh, TPC_LOCK_MAX_HOLDERS);
    grp_free(g);
}

static void test_tpc__prepare_failed_check_aborts_without_locks(void **state)
{
    (void)state;
    grp *g = participant();

    /* A condition that does not hold: ECONDITION, which one. */
    txn_cond c1[] = { cond(TXN_COND_EXISTS, G1, "a"), cond_value(G1, "r", "nope") };
    txn_write w1[] = { put(G1, "a", "x") };
    txn s1 = TXN_OF(c1, w1);
    tpc_msg m = prepare((tpc_id){ 1, 1 }, G1, G0, &s1, 1000, 2000);
    expect_refused(g, &m, OKV_ECONDITION, 1, TXN_FAIL_CONDITION);

    /* A floor: write 1 after one condition is number 2. */
    txn_cond c2[] = { cond(TXN_COND_EXISTS, G1, "a") };
    txn_write w2[] = { put(G1, "a", "x"), add_floor(G1, "c", -11, 0) };
    txn s2 = TXN_OF(c2, w2);
    m = prepare((tpc_id){ 2, 1 }, G1, G0, &s2, 1000, 2000);
    expect_refused(g, &m, OKV_ECONDITION, 2, TXN_FAIL_FLOOR);

    /* An add to a value that is not a counter. */
    txn_write w3[] = { put(G1, "z", "x"), add(G1, "a", 1) };
    txn s3 = TXN_WRITES(w3);
    m = prepare((tpc_id){ 3, 1 }, G1, G0, &s3, 1000, 2000);
    expect_refused(g, &m, OKV_EINVAL, 1, TXN_FAIL_NOT_COUNTER);

    /* A share txn_validate refuses (a key written twice). */
    txn_write w4[] = { put(G1, "a", "x"), put(G1, "a", "y") };
    txn s4 = TXN_WRITES(w4);
    m = prepare((tpc_id){ 4, 1 }, G1, G0, &s4, 1000, 2000);
    expect_refused(g, &m, OKV_EINVAL, 0, 0);

    /* Past the deadline by the proposer's clock; at it is still in time. */
    txn t = t1_share();
    m = prepare((tpc_id){ 5, 1 }, G1, G0, &t, 2001, 2000);
    expect_refused(g, &m, OKV_ECONFLICT, 0, 0);
    m = prepare((tpc_id){ 6, 1 }, G1, G0, &t, 2000, 2000);
    tpc_result r = apply(g, &m);
    assert_result(&r, OKV_OK, TPC_PREPARED);
    assert_int_equal(g->nl, 5);
    assert_int_equal(g->data_writes, 0);

    /* A share naming another group's key is the sender's error, refused
     * (a tombstone, no lock, no write) alike on every replica: it once
     * stopped them all, from one KV.TxnPart call. tpc_msg_check names it
     * before such a step is proposed. */
    txn_write w5[] = { put(G0, "q", "x") };
    txn s5 = TXN_WRITES(w5);
    m = prepare((tpc_id){ 7, 1 }, G1, G0, &s5, 1000, 2000);
    okv_error err;
    assert_int_equal(tpc_msg_check(&m, &err), OKV_EINVAL);
    has(err.msg, "names a key of table 7 partition 0");
    expect_refused(g, &m, OKV_EINVAL, 0, 0);
    /* A share that is not a transaction at all: likewise. */
    static const uint8_t junk[] = { 9, 9, 9 };
    m.id = (tpc_id){ 8, 1 };
    m.share = junk;
    m.share_len = sizeof junk;
    assert_int_equal(tpc_msg_check(&m, &err), OKV_EINVAL);
    expect_refused(g, &m, OKV_EINVAL, 0, 0);
    /* A good share passes the check. */
    m = prepare((tpc_id){ 9, 1 }, G1, G0, &t, 1000, 2000);
    assert_int_equal(tpc_msg_check(&m, &err), OKV_OK);
    grp_free(g);
}

/* ---- PREPARE at the coordinator ------------------------------------------------ */

static txn_cond co_conds[1];
static txn_write co_writes[3];

/* G0's share: a condition on d (written), put a, add to the absent c,
 * delete d. */
static txn co_share(void)
{
    co_conds[0] = cond(TXN_COND_VERSION_EQ, G0, "d");
    co_conds[0].version = 4;
    co_writes[0] = put(G0, "a", "1");
    co_writes[1] = add(G0, "c", 3);
    co_writes[2] = del(G0, "d");
    txn t = TXN_OF(co_conds, co_writes);
    return t;
}

static grp *coordinator(void)
{
    grp *g = grp_new(G0);
    data_put(g, "d", "bye", 4);
    data_put(g, "r", "keep", 3);
    return g;
}

static void test_tpc__coordinator_prepare_writes_pending(void **state)
{
    (void)state;
    grp *g = coordinator();
    txn t = co_share();
    tpc_msg m = prepare(T1, G0, G0, &t, 1000, 2000);
    tpc_result r = prepare_t1(g, &m);
    assert_int_equal(g->nr, 2);
    tpc_prec p = must_prec(g, T1);
    assert_int_equal(p.state, TPC_PREPARED);
    assert_true(group_eq(p.coord, G0));
    tpc_crec c = must_crec(g, T1);
    assert_int_equal(c.state, TPC_PENDING);
    assert_int_equal(c.finished, 0);
    assert_int_equal(c.deadline_ms, 2000);
    assert_int_equal(c.settled_ms, 0);
    assert_fail_is(c.fail, 0, 0, 0);
    assert_int_equal(c.nparts, 2);
    assert_true(group_eq(c.parts[0], G0));
    assert_true(group_eq(c.parts[1], G1));
    assert_int_equal(g->nl, 3);
    assert_lock(g, "a", TPC_LOCK_EXCLUSIVE, T1);
    assert_lock(g, "c", TPC_LOCK_EXCLUSIVE, T1);
    assert_lock(g, "d", TPC_LOCK_EXCLUSIVE, T1);
    assert_int_equal(g->data_writes, 0);

    size_t clen, puts = g->rec_puts, lputs = g->lock_puts;
    uint8_t *cb = rec_bytes(g, 'C', T1, &clen);
    tpc_result r2 = prepare_t1(g, &m);
    assert_same_result(&r, &r2);
    assert_int_equal(g->rec_puts, puts);
    assert_int_equal(g->lock_puts, lputs);
    assert_rec_is(g, 'C', T1, cb, clen);

    /* Refused at the coordinator: no C at all (DECIDE can only abort). */
    txn_cond bad[] = { cond(TXN_COND_EXISTS, G0, "nothing") };
    txn_write bw[] = { put(G0, "b", "1") };
    txn bt = TXN_OF(bad, bw);
    tpc_msg m2 = prepare(T2, G0, G0, &bt, 1000, 2000);
    tpc_result r3 = apply(g, &m2);
    assert_result(&r3, OKV_ECONDITION, TPC_ABORTED);
    assert_null(rec_find(g, 'C', &T2));
    assert_int_equal(must_prec(g, T2).state, TPC_ABORTED);
    grp_free(g);
}

static void test_tpc__check_abort_first_refuses_the_coordinators_prepare(void **state)
{
    (void)state;
    grp *g = coordinator();

    /* CHECK without abort on nothing: says so, writes nothing. */
    tpc_msg chk = msg(TPC_CHECK, 0, T1, G0, G0, 500);
    tpc_result r = apply(g, &chk);
    assert_result(&r, OKV_OK, TPC_NONE);
    assert_int_equal(g->rec_puts, 0);

    /* CHECK(abort) before the PREPARE applied: the tombstone. */
    chk.flag = 1;
    r = apply(g, &chk);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    assert_fail_is(r.fail, OKV_ECONFLICT, 0, 0);
    tpc_crec c = must_crec(g, T1);
    assert_int_equal(c.state, TPC_ABORTED);
    assert_int_equal(c.finished, 1);
    assert_int_equal(c.settled_ms, 500);
    assert_int_equal(c.nparts, 0);
    size_t clen;
    uint8_t *cb = rec_bytes(g, 'C', T1, &clen);

    /* The late PREPARE (in time by its own clock) is refused: no locks,
     * C stays ABORTED, and DECIDE commit cannot revive it (T1). */
    txn t = co_share();
    tpc_msg prep = prepare(T1, G0, G0, &t, 400, 2000);
    r = apply(g, &prep);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    assert_int_equal(g->nl, 0);
    assert_int_equal(g->lock_puts, 0);
    assert_rec_is(g, 'C', T1, cb, clen);
    tpc_msg dec = msg(TPC_DECIDE, 1, T1, G0, G0, 600);
    r = apply(g, &dec);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    assert_rec_is(g, 'C', T1, cb, clen);
    assert_int_equal(g->data_writes, 0);

    /* The C alone turns it down too: with the P forgotten after its
     * retention, the PREPARE meets only the C tombstone. */
    tpc_msg fp = msg(TPC_FORGET, 'P', T1, G0, G0, 500 + TPC_RETAIN_MS);
    r = apply(g, &fp);
    assert_int_equal(r.state, TPC_NONE);
    assert_null(rec_find(g, 'P', &T1));
    r = apply(g, &prep);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    assert_fail_is(r.fail, OKV_ECONFLICT, 0, 0);
    assert_int_equal(g->nl, 0);
    assert_int_equal(g->lock_puts, 0);
    assert_rec_is(g, 'C', T1, cb, clen);
    assert_int_equal(must_prec(g, T1).state, TPC_ABORTED);
    assert_int_equal(g->data_writes, 0);
    grp_free(g);
}

/* ---- DECIDE -------------------------------------------------------------------- */

static void test_tpc__decide_commit_applies_the_coordinators_writes(void **state)
{
    (void)state;
    grp *g = coordinator();
    txn t = co_share();
    tpc_msg prep = prepare(T1, G0, G0, &t, 1000, 2000);
    prepare_t1(g, &prep);

    tpc_msg dec = msg(TPC_DECIDE, 1, T1, G0, G0, 1500);
    tpc_result r = apply(g, &dec);
    uint64_t at = g->index;
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    assert_fail_is(r.fail, 0, 0, 0);
    assert_int_equal(r.version, at);
    assert_data(g, "a", "1", at);
    assert_counter(g, "c", 3, at);
    assert_null(data_get(g, "d"));
    assert_data(g, "r", "keep", 3);
    assert_int_equal(g->nl, 0);
    tpc_crec c = must_crec(g, T1);
    assert_int_equal(c.state, TPC_COMMITTED);
    assert_int_equal(c.settled_ms, 1500);
    assert_int_equal(c.finished, 0);
    assert_int_equal(c.nparts, 2);
    tpc_prec p = must_prec(g, T1);
    assert_int_equal(p.state, TPC_COMMITTED);
    assert_int_equal(p.settled_ms, 1500);
    assert_int_equal(p.share_len, 0);

    /* The opposite decision later, the same one again, a CHECK(abort):
     * COMMITTED stays, nothing is applied twice (T1, T4). */
    data_copy after;
    data_snap(g, &after);
    size_t writes = g->data_writes, clen;
    uint8_t *cb = rec_bytes(g, 'C', T1, &clen);
    tpc_msg no = msg(TPC_DECIDE, 0, T1, G0, G0, 1600);
    no.fail = (tpc_fail){ OKV_ECONDITION, 1, TXN_FAIL_CONDITION };
    tpc_msg chk = msg(TPC_CHECK, 1, T1, G0, G0, 99999);
    const tpc_msg *later[] = { &no, &dec, &chk, &prep };
    for (size_t i = 0; i < 4; i++) {
        r = apply(g, later[i]);
        assert_result(&r, OKV_OK, TPC_COMMITTED);
        assert_int_equal(g->data_writes, writes);
        assert_data_unchanged(g, &after);
        assert_rec_is(g, 'C', T1, cb, clen);
        assert_int_equal(g->nl, 0);
    }
    grp_free(g);
}

static void test_tpc__decide_abort_releases_the_coordinators_locks(void **state)
{
    (void)state;
    grp *g = coordinator();
    data_copy before;
    data_snap(g, &before);
    txn t = co_share();
    tpc_msg prep = prepare(T1, G0, G0, &t, 1000, 2000);
    prepare_t1(g, &prep);
    assert_int_equal(g->nl, 3);

    /* The driver relays a participant's refusal. */
    tpc_msg dec = msg(TPC_DECIDE, 0, T1, G0, G0, 1500);
    dec.fail = (tpc_fail){ OKV_ECONDITION, 2, TXN_FAIL_CONDITION };
    tpc_result r = apply(g, &dec);
    assert_result(&r, OKV_ECONDITION, TPC_ABORTED);
    assert_fail_is(r.fail, OKV_ECONDITION, 2, TXN_FAIL_CONDITION);
    assert_int_equal(r.version, 0);
    assert_int_equal(g->nl, 0);
    assert_int_equal(g->data_writes, 0);
    assert_data_unchanged(g, &before);
    tpc_crec c = must_crec(g, T1);
    assert_int_equal(c.state, TPC_ABORTED);
    assert_int_equal(c.settled_ms, 1500);
    assert_fail_is(c.fail, OKV_ECONDITION, 2, TXN_FAIL_CONDITION);
    assert_int_equal(must_prec(g, T1).state, TPC_ABORTED);

    /* A commit afterwards gets the abort and its kept reason. */
    tpc_msg yes = msg(TPC_DECIDE, 1, T1, G0, G0, 1600);
    r = apply(g, &yes);
    assert_result(&r, OKV_ECONDITION, TPC_ABORTED);
    assert_fail_is(r.fail, OKV_ECONDITION, 2, TXN_FAIL_CONDITION);
    assert_int_equal(g->data_writes, 0);
    tpc_msg chk = msg(TPC_CHECK, 0, T1, G0, G0, 1700);
    r = apply(g, &chk);
    assert_result(&r, OKV_ECONDITION, TPC_ABORTED);

    /* An abort without a reason is a conflict. */
    tpc_msg prep2 = prepare(T2, G0, G0, &t, 1000, 2000);
    prepare_t1(g, &prep2);
    tpc_msg dec2 = msg(TPC_DECIDE, 0, T2, G0, G0, 1500);
    r = apply(g, &dec2);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    assert_fail_is(must_crec(g, T2).fail, OKV_ECONFLICT, 0, 0);
    assert_int_equal(g->nl, 0);
    grp_free(g);
}

static void test_tpc__decide_from_nothing_only_aborts(void **state)
{
    (void)state;
    grp *g = coordinator();
    tpc_msg no = msg(TPC_DECIDE, 0, T1, G0, G0, 700);
    tpc_result r = apply(g, &no);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    tpc_crec c = must_crec(g, T1);
    assert_int_equal(c.state, TPC_ABORTED);
    assert_int_equal(c.finished, 1);
    assert_int_equal(c.settled_ms, 700);
    assert_fail_is(c.fail, OKV_ECONFLICT, 0, 0);

    /* A commit of what never prepared here is an abort. */
    tpc_msg yes = msg(TPC_DECIDE, 1, T2, G0, G0, 800);
    r = apply(g, &yes);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    assert_int_equal(r.version, 0);
    assert_int_equal(must_crec(g, T2).state, TPC_ABORTED);
    assert_int_equal(g->data_writes, 0);
    assert_int_equal(g->nl, 0);

    /* And the PREPARE that comes afterwards is refused. */
    txn t = co_share();
    tpc_msg prep = prepare(T2, G0, G0, &t, 600, 2000);
    r = apply(g, &prep);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    assert_int_equal(g->nl, 0);
    assert_int_equal(must_crec(g, T2).state, TPC_ABORTED);
    r = apply(g, &yes);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    assert_int_equal(g->data_writes, 0);
    grp_free(g);
}

/* ---- RESOLVE at a participant ------------------------------------------------------ */

static void test_tpc__resolve_commit_applies_the_intents_once(void **state)
{
    (void)state;
    grp *g = participant();
    txn t = t1_share();
    tpc_msg prep = prepare(T1, G1, G0, &t, 1000, 2000);
    prepare_t1(g, &prep);

    tpc_msg res = msg(TPC_RESOLVE, 1, T1, G1, G0, 3000);
    tpc_result r = apply(g, &res);
    uint64_t at = g->index;
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    assert_int_equal(r.version, at);
    assert_data(g, "a", "new", at);
    assert_null(data_get(g, "d"));
    assert_counter(g, "c", 6, at);
    assert_counter(g, "n", 7, at);
    assert_data(g, "r", "ref", 6);   /* only read */
    assert_int_equal(g->data_writes, 4);
    assert_int_equal(g->nl, 0);
    tpc_prec p = must_prec(g, T1);
    assert_int_equal(p.state, TPC_COMMITTED);
    assert_int_equal(p.settled_ms, 3000);
    assert_int_equal(p.deadline_ms, 2000);
    assert_true(group_eq(p.coord, G0));
    assert_int_equal(p.share_len, 0);

    /* Again, the opposite, and the PREPARE once more: no change (T4). */
    data_copy after;
    data_snap(g, &after);
    size_t plen;
    uint8_t *pb = rec_bytes(g, 'P', T1, &plen);
    tpc_msg no = msg(TPC_RESOLVE, 0, T1, G1, G0, 3100);
    const tpc_msg *later[] = { &res, &no, &prep, &res };
    for (size_t i = 0; i < 4; i++) {
        tpc_result r2 = apply(g, later[i]);
        assert_result(&r2, OKV_OK, TPC_COMMITTED);
        assert_int_equal(g->data_writes, 4);
        assert_data_unchanged(g, &after);
        assert_rec_is(g, 'P', T1, pb, plen);
        assert_int_equal(g->nl, 0);
    }
    grp_free(g);
}

static void test_tpc__resolve_abort_drops_the_intents(void **state)
{
    (void)state;
    grp *g = participant();
    data_copy before;
    data_snap(g, &before);
    txn t = t1_share();
    tpc_msg prep = prepare(T1, G1, G0, &t, 1000, 2000);
    prepare_t1(g, &prep);

    tpc_msg res = msg(TPC_RESOLVE, 0, T1, G1, G0, 3000);
    tpc_result r = apply(g, &res);
    assert_int_equal(r.state, TPC_ABORTED);
    assert_int_equal(r.version, 0);
    assert_int_equal(g->nl, 0);
    assert_int_equal(g->data_writes, 0);
    assert_data_unchanged(g, &before);
    tpc_prec p = must_prec(g, T1);
    assert_int_equal(p.state, TPC_ABORTED);
    assert_int_equal(p.settled_ms, 3000);
    assert_int_equal(p.share_len, 0);

    /* Again (the same answer, T4), and a commit after it: nothing. */
    size_t plen, puts = g->rec_puts;
    uint8_t *pb = rec_bytes(g, 'P', T1, &plen);
    tpc_result r2 = apply(g, &res);
    assert_same_result(&r, &r2);
    assert_int_equal(g->rec_puts, puts);
    tpc_msg yes = msg(TPC_RESOLVE, 1, T1, G1, G0, 3100);
    r2 = apply(g, &yes);
    assert_int_equal(r2.state, TPC_ABORTED);
    assert_int_equal(r2.version, 0);
    assert_int_equal(g->data_writes, 0);
    assert_data_unchanged(g, &before);
    assert_rec_is(g, 'P', T1, pb, plen);
    r2 = apply(g, &prep);
    assert_int_equal(r2.state, TPC_ABORTED);
    assert_int_equal(g->nl, 0);

    /* The keys are free again. */
    tpc_msg other = prepare(T2, G1, G0, &t, 3200, 4000);
    r2 = apply(g, &other);
    assert_result(&r2, OKV_OK, TPC_PREPARED);
    assert_lock(g, "a", TPC_LOCK_EXCLUSIVE, T2);
    grp_free(g);
}

static void test_tpc__resolve_without_a_record(void **state)
{
    (void)state;
    grp *g = participant();

    /* Abort before PREPARE: a tombstone, and the PREPARE is turned down. */
    tpc_msg no = msg(TPC_RESOLVE, 0, T1, G1, G0, 900);
    tpc_result r = apply(g, &no);
    assert_int_equal(r.state, TPC_ABORTED);
    assert_int_equal(r.version, 0);
    tpc_prec p = must_prec(g, T1);
    assert_int_equal(p.state, TPC_ABORTED);
    assert_int_equal(p.settled_ms, 900);
    assert_true(group_eq(p.coord, G0));
    tpc_result r2 = apply(g, &no);
    assert_same_result(&r, &r2);
    txn t = t1_share();
    tpc_msg prep = prepare(T1, G1, G0, &t, 800, 2000);
    r = apply(g, &prep);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    assert_int_equal(g->nl, 0);
    assert_int_equal(g->lock_puts, 0);
    assert_int_equal(g->data_writes, 0);

    /* Commit of an unknown id: a harmless no-op. */
    size_t puts = g->rec_puts;
    tpc_msg yes = msg(TPC_RESOLVE, 1, T2, G1, G0, 900);
    r = apply(g, &yes);
    assert_result(&r, OKV_OK, TPC_NONE);
    assert_int_equal(r.version, 0);
    assert_int_equal(g->rec_puts, puts);
    assert_null(rec_find(g, 'P', &T2));
    assert_int_equal(g->data_writes, 0);
    grp_free(g);
}

/* ---- CHECK --------------------------------------------------------------------- */

static void test_tpc__check_reports_and_aborts_only_when_due(void **state)
{
    (void)state;
    grp *g = coordinator();
    txn t = co_share();
    tpc_msg prep = prepare(T1, G0, G0, &t, 1000, 2000);
    prepare_t1(g, &prep);
    size_t clen, puts = g->rec_puts, lputs = g->lock_puts;
    uint8_t *cb = rec_bytes(g, 'C', T1, &clen);

    /* Without abort: the state, never a write, even long past the
     * deadline. */
    tpc_msg look = msg(TPC_CHECK, 0, T1, G0, G0, 1500);
    tpc_result r = apply(g, &look);
    assert_result(&r, OKV_OK, TPC_PENDING);
    look.clock_ms = 99999;
    r = apply(g, &look);
    assert_result(&r, OKV_OK, TPC_PENDING);
    /* With abort, up to the deadline: still PENDING. */
    tpc_msg ab = msg(TPC_CHECK, 1, T1, G0, G0, 1999);
    r = apply(g, &ab);
    assert_result(&r, OKV_OK, TPC_PENDING);
    ab.clock_ms = 2000;
    r = apply(g, &ab);
    assert_result(&r, OKV_OK, TPC_PENDING);
    assert_int_equal(g->rec_puts, puts);
    assert_int_equal(g->lock_puts, lputs);
    assert_rec_is(g, 'C', T1, cb, clen);
    assert_int_equal(g->nl, 3);

    /* Past it: ABORTED, and the coordinator's own locks go. */
    ab.clock_ms = 2001;
    r = apply(g, &ab);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    assert_fail_is(r.fail, OKV_ECONFLICT, 0, 0);
    tpc_crec c = must_crec(g, T1);
    assert_int_equal(c.state, TPC_ABORTED);
    assert_int_equal(c.settled_ms, 2001);
    assert_int_equal(c.finished, 0);   /* the participants still resolve */
    assert_int_equal(c.nparts, 2);
    assert_int_equal(must_prec(g, T1).state, TPC_ABORTED);
    assert_int_equal(g->nl, 0);
    assert_int_equal(g->data_writes, 0);

    /* Decided: CHECK(abort) changes nothing, a commit neither. */
    cb = rec_bytes(g, 'C', T1, &clen);
    puts = g->rec_puts;
    ab.clock_ms = 5000;
    r = apply(g, &ab);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    assert_int_equal(g->rec_puts, puts);
    assert_rec_is(g, 'C', T1, cb, clen);

    /* A committed one likewise stays committed. */
    tpc_msg prep2 = prepare(T2, G0, G0, &t, 3000, 4000);
    data_put(g, "d", "bye", 4);
    prepare_t1(g, &prep2);
    tpc_msg dec = msg(TPC_DECIDE, 1, T2, G0, G0, 3500);
    r = apply(g, &dec);
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    cb = rec_bytes(g, 'C', T2, &clen);
    puts = g->rec_puts;
    size_t writes = g->data_writes;
    tpc_msg ab2 = msg(TPC_CHECK, 1, T2, G0, G0, 99999);
    r = apply(g, &ab2);
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    assert_int_equal(g->rec_puts, puts);
    assert_int_equal(g->data_writes, writes);
    assert_rec_is(g, 'C', T2, cb, clen);
    grp_free(g);
}

/* ---- FINISH and FORGET ---------------------------------------------------------- */

static tpc_result forget(grp *g, char kind, tpc_id id, uint64_t clock)
{
    tpc_msg m = msg(TPC_FORGET, (uint8_t)kind, id, g->g, G0, clock);
    return apply(g, &m);
}

static void test_tpc__finish_and_forget_keep_what_is_still_needed(void **state)
{
    (void)state;
    grp *g = coordinator();
    txn t = co_share();
    tpc_msg prep = prepare(T1, G0, G0, &t, 1000, 2000);
    prepare_t1(g, &prep);
    const uint64_t far = UINT64_MAX / 2;

    /* PENDING C and PREPARED P: neither FINISH nor FORGET touch them. */
    tpc_msg fin = msg(TPC_FINISH, 0, T1, G0, G0, 1100);
    size_t puts = g->rec_puts;
    tpc_result r = apply(g, &fin);
    assert_result(&r, OKV_OK, TPC_PENDING);
    r = forget(g, 'C', T1, far);
    assert_int_equal(r.state, TPC_PENDING);
    r = forget(g, 'P', T1, far);
    assert_int_equal(r.state, TPC_PREPARED);
    assert_int_equal(g->rec_puts, puts);
    assert_int_equal(must_crec(g, T1).finished, 0);

    /* Decided but not finished: C stays. */
    tpc_msg dec = msg(TPC_DECIDE, 1, T1, G0, G0, 100000);
    r = apply(g, &dec);
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    puts = g->rec_puts;
    r = forget(g, 'C', T1, far);
    assert_int_equal(r.state, TPC_COMMITTED);
    assert_int_equal(g->rec_puts, puts);

    /* FINISH: finished, settled at its clock; once. */
    fin.clock_ms = 200000;
    r = apply(g, &fin);
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    tpc_crec c = must_crec(g, T1);
    assert_int_equal(c.finished, 1);
    assert_int_equal(c.settled_ms, 200000);
    assert_int_equal(c.state, TPC_COMMITTED);
    puts = g->rec_puts;
    fin.clock_ms = 300000;
    r = apply(g, &fin);
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    assert_int_equal(g->rec_puts, puts);
    assert_int_equal(must_crec(g, T1).settled_ms, 200000);

    /* FORGET C: not a millisecond before the retention has passed. */
    r = forget(g, 'C', T1, 200000 + TPC_RETAIN_MS - 1);
    assert_int_equal(r.state, TPC_COMMITTED);
    assert_int_equal(g->rec_puts, puts);
    assert_non_null(rec_find(g, 'C', &T1));
    r = forget(g, 'C', T1, 200000 + TPC_RETAIN_MS);
    assert_result(&r, OKV_OK, TPC_NONE);
    assert_null(rec_find(g, 'C', &T1));
    /* FORGET P: resolved at the DECIDE's clock. */
    r = forget(g, 'P', T1, 100000 + TPC_P_RETAIN_MS - 1);
    assert_int_equal(r.state, TPC_COMMITTED);
    assert_non_null(rec_find(g, 'P', &T1));
    r = forget(g, 'P', T1, 100000 + TPC_P_RETAIN_MS);
    assert_result(&r, OKV_OK, TPC_NONE);
    assert_null(rec_find(g, 'P', &T1));
    /* What is left: the client's horizon, the highest forgotten C. */
    assert_int_equal(g->nr, 1);
    assert_non_null(rec_find(g, 'H', &((tpc_id){ T1.client, 0 })));

    /* Nothing to forget, nothing to finish: no-ops. */
    puts = g->rec_puts;
    r = forget(g, 'C', T1, far);
    assert_result(&r, OKV_OK, TPC_NONE);
    r = forget(g, 'P', T1, far);
    assert_result(&r, OKV_OK, TPC_NONE);
    r = apply(g, &fin);
    assert_result(&r, OKV_OK, TPC_NONE);
    assert_int_equal(g->rec_puts, puts);

    /* A participant's P: kept while PREPARED, then for the retention after
     * its RESOLVE. */
    grp *p = participant();
    txn t1 = t1_share();
    tpc_msg pp = prepare(T2, G1, G0, &t1, 1000, 2000);
    prepare_t1(p, &pp);
    r = forget(p, 'P', T2, far);
    assert_int_equal(r.state, TPC_PREPARED);
    assert_non_null(rec_find(p, 'P', &T2));
    tpc_msg res = msg(TPC_RESOLVE, 0, T2, G1, G0, 5000);
    apply(p, &res);
    r = forget(p, 'P', T2, 5000 + TPC_P_RETAIN_MS - 1);
    assert_int_equal(r.state, TPC_ABORTED);
    assert_non_null(rec_find(p, 'P', &T2));
    r = forget(p, 'P', T2, 5000 + TPC_P_RETAIN_MS);
    assert_result(&r, OKV_OK, TPC_NONE);
    assert_null(rec_find(p, 'P', &T2));
    assert_int_equal(p->nl, 0);
    grp_free(p);
    grp_free(g);
}

/* ---- coordinator messages sent elsewhere, store errors ----------------------------- */

static void test_tpc__coordinator_messages_elsewhere_are_refused(void **state)
{
    (void)state;
    grp *g = participant();
    txn t = t1_share();
    tpc_msg prep = prepare(T1, G1, G0, &t, 1000, 2000);
    prepare_t1(g, &prep);
    size_t puts = g->rec_puts, lputs = g->lock_puts, plen;
    uint8_t *pb = rec_bytes(g, 'P', T1, &plen);
    tpc_msg ms[] = { msg(TPC_DECIDE, 1, T1, G1, G0, 1500), msg(TPC_DECIDE, 0, T1, G1, G0, 1500),
                     msg(TPC_CHECK, 0, T1, G1, G0, 1500), msg(TPC_CHECK, 1, T1, G1, G0, 99999),
                     msg(TPC_FINISH, 0, T1, G1, G0, 1500),
                     msg(TPC_DECIDE, 0, T2, G1, G0, 1500) };
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        tpc_result r;
        okv_error err;
        okv_error_clear(&err);
        /* Refused on the wire (decoding), and a no-op in a log an older
         * build let it into. */
        size_t len;
        uint8_t *b = encode_msg(&ms[i], &len);
        tpc_msg d;
        assert_int_equal(tpc_msg_decode(b, len, &d, &err), OKV_ECORRUPT);
        has(err.msg, "does not coordinate");
        free(b);
        assert_int_equal(tpc_apply(&ms[i], ++g->index, &g->ts, &r, &err), OKV_OK);
        assert_int_equal(r.code, OKV_EINVAL);
        assert_int_equal(r.state, TPC_NONE);
    }
    assert_int_equal(g->rec_puts, puts);
    assert_int_equal(g->lock_puts, lputs);
    assert_int_equal(g->data_writes, 0);
    assert_rec_is(g, 'P', T1, pb, plen);
    assert_int_equal(g->nl, 5);
    grp_free(g);
}

static void test_tpc__store_errors_and_bad_records_propagate(void **state)
{
    (void)state;
    grp *g = participant();
    txn t = t1_share();
    tpc_msg prep = prepare(T1, G1, G0, &t, 1000, 2000);
    tpc_result r;
    okv_error err;

    g->fail_rec_get = OKV_EIO;
    assert_int_equal(apply_rc(g, &prep, &r, &err), OKV_EIO);
    assert_int_equal(g->lock_puts, 0);
    assert_int_equal(g->rec_puts, 0);
    g->fail_rec_get = 0;
    g->fail_rec_put = OKV_EIO;
    assert_int_equal(apply_rc(g, &prep, &r, &err), OKV_EIO);
    g->fail_rec_put = 0;

    /* A P that does not decode is corruption, for PREPARE and RESOLVE. */
    grp *h = participant();
    static const uint8_t junk[] = { 1, 2, 3 };
    okv_error e2;
    assert_int_equal(rec_put(h, 'P', &T1, junk, sizeof junk, &e2), OKV_OK);
    assert_int_equal(apply_rc(h, &prep, &r, &err), OKV_ECORRUPT);
    has(err.msg, "participant record");
    tpc_msg res = msg(TPC_RESOLVE, 1, T1, G1, G0, 3000);
    assert_int_equal(apply_rc(h, &res, &r, &err), OKV_ECORRUPT);
    assert_int_equal(h->nl, 0);
    assert_int_equal(h->data_writes, 0);
    /* A C that does not decode likewise, for CHECK and DECIDE. */
    grp *c = coordinator();
    assert_int_equal(rec_put(c, 'C', &T1, junk, sizeof junk, &e2), OKV_OK);
    tpc_msg chk = msg(TPC_CHECK, 1, T1, G0, G0, 3000);
    assert_int_equal(apply_rc(c, &chk, &r, &err), OKV_ECORRUPT);
    has(err.msg, "coordinator record");
    tpc_msg dec = msg(TPC_DECIDE, 1, T1, G0, G0, 3000);
    assert_int_equal(apply_rc(c, &dec, &r, &err), OKV_ECORRUPT);
    grp_free(c);
    grp_free(h);
    grp_free(g);
}

/* ---- a randomized run over two groups ----------------------------------------------- */

#define SIM_TXNS 5
#define SIM_CTRS 5
#define SIM_ROUNDS 40
#define SIM_STEPS 150
#define SIM_DEADLINE 400u
#define SIM_START_CTR 3

typedef struct sim_txn {
    tpc_id id;
    int coord;                 /* index of the coordinator's group */
    uint8_t *prep[2];          /* its PREPARE for each group, encoded once */
    size_t prep_len[2];
    int ctr[2];                /* the counter it adds to, per group */
    int64_t delta[2];
    uint8_t answer[2];         /* the first answer to its PREPARE, per group */
    tpc_fail why;              /* a refusal's reason, relayed by DECIDE abort */
    uint8_t decision;          /* as the driver learned it: 0, COMMITTED, ABORTED */
    uint8_t c_seen;            /* the decided C state once seen in the store */
    uint64_t applied_at[2];    /* the version its writes got, per group */
} sim_txn;

typedef struct sim {
    grp *g[2];
    sim_txn t[SIM_TXNS];
    uint64_t now, rng;
    struct {
        int group;
        uint8_t *b;
        size_t len;
    } sent[SIM_STEPS * 2];
    size_t n_sent;
} sim;

static uint64_t rnd(sim *s)
{
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->rng = x;
    return x * 0x2545f4914f6cdd1dULL >> 11;
}

static tpc_group sim_group(int i)
{
    return i ? G1 : G0;
}

static sim_txn *sim_txn_of(sim *s, const tpc_id *id)
{
    for (int i = 0; i < SIM_TXNS; i++)
        if (id_eq(&s->t[i].id, id))
            return &s->t[i];
    fail_msg("unknown transaction %llu/%llu", (unsigned long long)id->client,
             (unsigned long long)id->req);
    return NULL;
}

static void learn(sim_txn *t, uint8_t decision)
{
    assert_true(decision == TPC_COMMITTED || decision == TPC_ABORTED);
    if (t->decision && t->decision != decision)
        fail_msg("transaction %llu: decided %s, then %s (T1)", (unsigned long long)t->id.client,
                 tpc_state_name(t->decision), tpc_state_name(decision));
    t->decision = decision;
}

/* Delivers bytes to group gi and checks the answer against what the driver
 * knows. */
static void sim_deliver(sim *s, int gi, uint8_t *b, size_t len)
{
    tpc_msg m;
    tpc_result r;
    okv_error err;
    int rc = apply_bytes(s->g[gi], b, len, &m, &r, &err);
    if (rc != OKV_OK)
        fail_msg("kind %u at group %d: %d %s", m.kind, gi, rc, err.msg);
    sim_txn *t = sim_txn_of(s, &m.id);
    switch (m.kind) {
    case TPC_PREPARE:
        if (r.state == TPC_NONE) {
            /* Met a lock: "not now", nothing recorded; this driver takes
             * it as a refusal (a later copy may still prepare). */
            assert_int_equal(r.code, OKV_ECONFLICT);
            assert_int_equal(r.fail.reason, TXN_FAIL_LOCKED);
            r.state = TPC_ABORTED;
        }
        assert_true(r.state == TPC_PREPARED || r.state == TPC_ABORTED ||
                    r.state == TPC_COMMITTED);
        assert_int_equal(r.code == OKV_OK, r.state != TPC_ABORTED);
        if (r.state == TPC_COMMITTED)
            assert_int_equal(t->decision, TPC_COMMITTED);
        if (!t->answer[gi]) {
            t->answer[gi] = r.state;
            if (r.state == TPC_ABORTED)
                t->why = r.fail;
        }
        break;
    case TPC_DECIDE:
        learn(t, r.state);
        break;
    case TPC_CHECK:
        if (r.state == TPC_COMMITTED || r.state == TPC_ABORTED)
            learn(t, r.state);
        else
            assert_true(r.state == TPC_PENDING || (r.state == TPC_NONE && !m.flag));
        break;
    case TPC_RESOLVE:
        assert_int_equal(r.state, m.flag ? TPC_COMMITTED : TPC_ABORTED);
        break;
    default:
        fail_msg("the driver sent kind %u", m.kind);
    }
    if (r.version) {
        /* Applied here now: exactly once, and only a commit. */
        assert_int_equal(r.state, TPC_COMMITTED);
        assert_int_equal(r.version, s->g[gi]->index);
        if (t->applied_at[gi])
            fail_msg("transaction %llu applied twice at group %d", (unsigned long long)t->id.client,
                     gi);
        t->applied_at[gi] = r.version;
    }
}

static void sim_send(sim *s, int gi, const tpc_msg *m)
{
    size_t len;
    uint8_t *b = keep(encode_msg(m, &len));
    assert_true(s->n_sent < sizeof s->sent / sizeof s->sent[0]);
    s->sent[s->n_sent].group = gi;
    s->sent[s->n_sent].b = b;
    s->sent[s->n_sent].len = len;
    s->n_sent++;
    sim_deliver(s, gi, b, len);
}

/* What must hold between any two steps. */
static void sim_check(sim *s)
{
    for (int gi = 0; gi < 2; gi++) {
        grp *g = s->g[gi];
        /* Every lock is held by a transaction PREPARED here (T3). */
        for (size_t i = 0; i < g->nl; i++) {
            for (size_t h = 0; h < g->l[i].nh; h++) {
                sim_txn_of(s, &g->l[i].holder[h]);
                tpc_prec p = must_prec(g, g->l[i].holder[h]);
                assert_int_equal(p.state, TPC_PREPARED);
            }
        }
    }
    for (int i = 0; i < SIM_TXNS; i++) {
        sim_txn *t = &s->t[i];
        tpc_crec c;
        if (crec_of(s->g[t->coord], t->id, &c) && c.state != TPC_PENDING) {
            /* One decision (T1). */
            if (t->c_seen)
                assert_int_equal(c.state, t->c_seen);
            t->c_seen = c.state;
        }
        for (int gi = 0; gi < 2; gi++) {
            tpc_prec p;
            int has_p = prec_of(s->g[gi], t->id, &p);
            if (has_p && p.state == TPC_COMMITTED)
                assert_int_equal(t->c_seen, TPC_COMMITTED);
            if (t->c_seen == TPC_COMMITTED)   /* T2: everybody prepared */
                assert_true(has_p && (p.state == TPC_PREPARED || p.state == TPC_COMMITTED));
            char key[16];
            snprintf(key, sizeof key, "m%d", i);
            entry *e = data_get(s->g[gi], key);
            assert_int_equal(e != NULL, has_p && p.state == TPC_COMMITTED);
        }
    }
}

static void sim_make_txn(sim *s, int i, uint64_t round)
{
    sim_txn *t = &s->t[i];
    memset(t, 0, sizeof *t);
    t->id = (tpc_id){ 1000 + (uint64_t)i, round };
    t->coord = (int)(rnd(s) % 2);
    uint64_t start = s->now + rnd(s) % 200;
    for (int gi = 0; gi < 2; gi++) {
        tpc_group g = sim_group(gi);
        char marker[16], value[16], ctr[8], other[8];
        snprintf(marker, sizeof marker, "m%d", i);
        snprintf(value, sizeof value, "v%d.%llu", i, (unsigned long long)round);
        t->ctr[gi] = (int)(rnd(s) % SIM_CTRS);
        t->delta[gi] = (int64_t)(rnd(s) % 7) - 2;
        snprintf(ctr, sizeof ctr, "k%d", t->ctr[gi]);
        snprintf(other, sizeof other, "k%d", (t->ctr[gi] + 1) % SIM_CTRS);
        txn_cond c[2];
        size_t nc = 0;
        switch (rnd(s) % 4) {
        case 0:   /* a read-only condition that may fail: a shared lock */
            c[nc++] = cond_int(g, other, TXN_GE, (int64_t)(rnd(s) % 6));
            break;
        case 1:   /* a condition on the key it writes: no lock of its own */
            c[nc++] = cond(TXN_COND_EXISTS, g, ctr);
            break;
        case 2:
            c[nc++] = cond(TXN_COND_ABSENT, g, marker);
            c[nc++] = cond_int(g, other, TXN_LE, 100);
            break;
        default:
            break;
        }
        txn_write w[2] = { put(g, marker, value),
                           rnd(s) % 3 ? add(g, ctr, t->delta[gi])
                                      : add_floor(g, ctr, t->delta[gi], 0) };
        txn x = { nc, nc ? c : NULL, 2, w };
        /* Most PREPAREs are proposed in time, some too late. */
        uint64_t clock = rnd(s) % 12 ? start + rnd(s) % SIM_DEADLINE
                                     : start + SIM_DEADLINE + 1 + rnd(s) % 50;
        tpc_msg m = prepare(t->id, g, sim_group(t->coord), &x, clock, start + SIM_DEADLINE);
        t->prep[gi] = keep(encode_msg(&m, &t->prep_len[gi]));
    }
}

static void sim_step(sim *s)
{
    s->now += rnd(s) % 4;
    sim_txn *t = &s->t[rnd(s) % SIM_TXNS];
    tpc_group coord = sim_group(t->coord);
    unsigned a = (unsigned)(rnd(s) % 100);
    if (a < 35) {
        int gi = (int)(rnd(s) % 2);
        sim_deliver(s, gi, t->prep[gi], t->prep_len[gi]);
    } else if (a < 50) {
        int ok0 = t->answer[0] == TPC_PREPARED || t->answer[0] == TPC_COMMITTED;
        int ok1 = t->answer[1] == TPC_PREPARED || t->answer[1] == TPC_COMMITTED;
        int refused = t->answer[0] == TPC_ABORTED || t->answer[1] == TPC_ABORTED;
        tpc_msg m = msg(TPC_DECIDE, 0, t->id, coord, coord, s->now);
        if (ok0 && ok1 && rnd(s) % 10)
            m.flag = 1;
        else if (refused)
            m.fail = t->why;
        else if (rnd(s) % 16)
            return;   /* still waiting for answers (else the client gives up) */
        sim_send(s, t->coord, &m);
    } else if (a < 60) {
        /* A status query, or now and then a sweeper's ABORT_IF_UNDECIDED
         * (which aborts at once a C not written yet). */
        tpc_msg m = msg(TPC_CHECK, rnd(s) % 5 == 0, t->id, coord, coord, s->now);
        sim_send(s, t->coord, &m);
    } else if (a < 85) {
        if (!t->decision)
            return;
        int gi = (int)(rnd(s) % 2);
        tpc_msg m = msg(TPC_RESOLVE, t->decision == TPC_COMMITTED, t->id, sim_group(gi), coord,
                        s->now);
        sim_send(s, gi, &m);
    } else if (a < 97) {
        if (!s->n_sent)
            return;
        size_t k = rnd(s) % s->n_sent;
        sim_deliver(s, s->sent[k].group, s->sent[k].b, s->sent[k].len);
    } else {
        s->now += rnd(s) % 300;
    }
}

static void test_tpc__randomized_two_groups_stay_atomic(void **state)
{
    (void)state;
    sim *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->rng = 0x5eed2bc0ffee1234ULL;
    s->now = 10000;
    int committed = 0, aborted = 0, both_prepared_aborted = 0;
    for (uint64_t round = 1; round <= SIM_ROUNDS; round++) {
        s->g[0] = grp_new(G0);
        s->g[1] = grp_new(G1);
        s->n_sent = 0;
        for (int gi = 0; gi < 2; gi++)
            for (int k = 0; k < SIM_CTRS; k++) {
                char ctr[8];
                snprintf(ctr, sizeof ctr, "k%d", k);
                data_counter(s->g[gi], ctr, SIM_START_CTR, 1);
            }
        for (int i = 0; i < SIM_TXNS; i++)
            sim_make_txn(s, i, round);
        for (int step = 0; step < SIM_STEPS; step++) {
            sim_step(s);
            sim_check(s);
        }

        /* Drain: every coordinator decides (past every deadline), then
         * every participant resolves, twice, in a random order. */
        s->now += 100 * SIM_DEADLINE;
        for (int i = 0; i < SIM_TXNS; i++) {
            sim_txn *t = &s->t[i];
            tpc_msg m = msg(TPC_CHECK, 1, t->id, sim_group(t->coord), sim_group(t->coord),
                            s->now);
            s->n_sent = 0;
            sim_send(s, t->coord, &m);
            assert_true(t->decision != 0);
        }
        for (int rep = 0; rep < 2 * SIM_TXNS * 2; rep++) {
            sim_txn *t = &s->t[rnd(s) % SIM_TXNS];
            int gi = (int)(rnd(s) % 2);
            tpc_msg m = msg(TPC_RESOLVE, t->decision == TPC_COMMITTED, t->id, sim_group(gi),
                            sim_group(t->coord), s->now);
            s->n_sent = 0;
            sim_send(s, gi, &m);
        }
        for (int i = 0; i < SIM_TXNS; i++)
            for (int gi = 0; gi < 2; gi++) {
                sim_txn *t = &s->t[i];
                tpc_msg m = msg(TPC_RESOLVE, t->decision == TPC_COMMITTED, t->id,
                                sim_group(gi), sim_group(t->coord), s->now);
                s->n_sent = 0;
                sim_send(s, gi, &m);
            }
        sim_check(s);
        /* Late PREPAREs now find a settled P; late DECIDEs the decision. */
        for (int i = 0; i < SIM_TXNS; i++) {
            sim_txn *t = &s->t[i];
            for (int gi = 0; gi < 2; gi++) {
                sim_deliver(s, gi, t->prep[gi], t->prep_len[gi]);
                assert_int_equal(must_prec(s->g[gi], t->id).state, t->decision);
            }
            tpc_msg m = msg(TPC_DECIDE, t->decision != TPC_COMMITTED, t->id,
                            sim_group(t->coord), sim_group(t->coord), s->now);
            s->n_sent = 0;
            sim_send(s, t->coord, &m);
        }
        sim_check(s);

        /* All resolved: no lock anywhere; each transaction fully applied in
         * both groups or not at all, as its C says. */
        int64_t want[2][SIM_CTRS];
        for (int gi = 0; gi < 2; gi++)
            for (int k = 0; k < SIM_CTRS; k++)
                want[gi][k] = SIM_START_CTR;
        for (int gi = 0; gi < 2; gi++)
            assert_int_equal(s->g[gi]->nl, 0);
        for (int i = 0; i < SIM_TXNS; i++) {
            sim_txn *t = &s->t[i];
            tpc_crec c = must_crec(s->g[t->coord], t->id);
            assert_int_equal(c.state, t->decision);
            assert_int_equal(t->c_seen, t->decision);
            int commit = t->decision == TPC_COMMITTED;
            for (int gi = 0; gi < 2; gi++) {
                char marker[16], value[16];
                snprintf(marker, sizeof marker, "m%d", i);
                snprintf(value, sizeof value, "v%d.%llu", i, (unsigned long long)round);
                assert_int_equal(must_prec(s->g[gi], t->id).state, t->decision);
                if (commit) {
                    assert_true(t->applied_at[gi] != 0);
                    assert_data(s->g[gi], marker, value, t->applied_at[gi]);
                    want[gi][t->ctr[gi]] += t->delta[gi];
                } else {
                    assert_int_equal(t->applied_at[gi], 0);
                    assert_null(data_get(s->g[gi], marker));
                }
            }
            if (commit)
                committed++;
            else
                aborted++;
            if (!commit && t->answer[0] == TPC_PREPARED && t->answer[1] == TPC_PREPARED)
                both_prepared_aborted++;
        }
        for (int gi = 0; gi < 2; gi++)
            for (int k = 0; k < SIM_CTRS; k++) {
                char ctr[8];
                snprintf(ctr, sizeof ctr, "k%d", k);
                entry *e = data_get(s->g[gi], ctr);
                assert_non_null(e);
                int64_t v = 0;
                assert_int_equal(txn_counter_decode(e->val, e->val_len, &v), 0);
                assert_int_equal(v, want[gi][k]);
            }

        /* Garbage collection: finish, then forget everything past the
         * retention; nothing is left. */
        uint64_t late = s->now + TPC_RETAIN_MS + 1;
        for (int i = 0; i < SIM_TXNS; i++) {
            sim_txn *t = &s->t[i];
            grp *cg = s->g[t->coord];
            tpc_msg f = msg(TPC_FINISH, 0, t->id, cg->g, cg->g, s->now);
            tpc_result r = apply(cg, &f);
            assert_int_equal(r.state, t->decision);
            assert_int_equal(must_crec(cg, t->id).finished, 1);
            r = forget(cg, 'C', t->id, late + TPC_RETAIN_MS);
            assert_result(&r, OKV_OK, TPC_NONE);
            for (int gi = 0; gi < 2; gi++) {
                r = forget(s->g[gi], 'P', t->id, late);
                assert_result(&r, OKV_OK, TPC_NONE);
            }
        }
        /* Only the clients' horizons are left (at the coordinators). */
        for (int gi = 0; gi < 2; gi++)
            for (size_t i = 0; i < s->g[gi]->nr; i++)
                assert_int_equal(s->g[gi]->r[i].kind, 'H');
        grp_free(s->g[0]);
        grp_free(s->g[1]);
        free_kept(NULL);
    }
    /* The run exercised both outcomes, and aborts of fully prepared ones
     * (by deadline or by a client giving up). */
    print_message("randomized: %d committed, %d aborted (%d after both prepared)\n", committed,
                  aborted, both_prepared_aborted);
    assert_true(committed >= 20);
    assert_true(aborted >= 20);
    assert_true(both_prepared_aborted >= 1);
    free(s);
}

/* The coordinator votes last: its PREPARE with flag 1 commits in one entry
 * (C COMMITTED, its writes applied, no locks), a failing check refuses it
 * without a C, and a tombstone left by a settling CHECK turns it down. */
static void test_tpc__vote_last_commits_in_one_entry(void **state)
{
    (void)state;
    grp *g = coordinator();
    txn t = co_share();
    tpc_msg m = prepare(T1, G0, G0, &t, 1000, 2000);
    m.flag = 1;
    tpc_result r = apply(g, &m);
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    assert_true(r.version > 0);
    tpc_crec c = must_crec(g, T1);
    assert_int_equal(c.state, TPC_COMMITTED);
    assert_int_equal(c.finished, 0);
    assert_int_equal(c.settled_ms, 1000);
    assert_int_equal(c.nparts, 2);
    assert_int_equal(must_prec(g, T1).state, TPC_COMMITTED);
    assert_int_equal(g->nl, 0);
    assert_data(g, "a", "1", r.version);
    assert_counter(g, "c", 3, r.version);
    assert_null(data_get(g, "d"));

    /* Again: the same answer, nothing written. */
    size_t puts = g->rec_puts, writes = g->data_writes;
    tpc_result r2 = apply(g, &m);
    assert_int_equal(r2.state, TPC_COMMITTED);
    assert_int_equal(g->rec_puts, puts);
    assert_int_equal(g->data_writes, writes);
    /* An abort afterwards loses the compare-and-swap (T1). */
    tpc_msg dec = msg(TPC_DECIDE, 0, T1, G0, G0, 1500);
    r2 = apply(g, &dec);
    assert_int_equal(r2.state, TPC_COMMITTED);
    assert_int_equal(g->data_writes, writes);

    /* A vote whose own check fails: refused like a PREPARE, no C. */
    txn_cond bad[] = { cond(TXN_COND_EXISTS, G0, "nothing") };
    txn_write bw[] = { put(G0, "b", "1") };
    txn bt = TXN_OF(bad, bw);
    tpc_msg m2 = prepare(T2, G0, G0, &bt, 1000, 2000);
    m2.flag = 1;
    r2 = apply(g, &m2);
    assert_result(&r2, OKV_ECONDITION, TPC_ABORTED);
    assert_null(rec_find(g, 'C', &T2));
    assert_null(data_get(g, "b"));

    /* A settling status query came first: its tombstone refuses the vote. */
    tpc_id t4 = { 44, 9 };
    tpc_msg st = msg(TPC_CHECK, TPC_CHECK_SETTLE, t4, G0, G0, 1000);
    r2 = apply(g, &st);
    assert_result(&r2, OKV_ECONFLICT, TPC_ABORTED);
    txn_write w3[] = { put(G0, "e", "x") };
    txn t3 = TXN_WRITES(w3);
    tpc_msg m3 = prepare(t4, G0, G0, &t3, 1000, 2000);
    m3.flag = 1;
    r2 = apply(g, &m3);
    assert_int_equal(r2.state, TPC_ABORTED);
    assert_null(data_get(g, "e"));
    assert_int_equal(must_crec(g, t4).state, TPC_ABORTED);
    grp_free(g);
}

/* A settling CHECK makes the answer final, except for an id its client's
 * forgotten records may cover: then NONE, never a false ABORTED. */
static void test_tpc__settle_is_final_unless_forgotten(void **state)
{
    (void)state;
    grp *g = coordinator();
    txn t = co_share();
    tpc_id id = { 77, 100 };
    tpc_msg m = prepare(id, G0, G0, &t, 1000, 2000);
    m.flag = 1;
    tpc_result r = apply(g, &m);
    assert_int_equal(r.state, TPC_COMMITTED);
    tpc_msg fin = msg(TPC_FINISH, 0, id, G0, G0, 3000);
    apply(g, &fin);
    r = forget(g, 'C', id, 3000 + TPC_RETAIN_MS);
    assert_int_equal(r.state, TPC_NONE);
    assert_null(rec_find(g, 'C', &id));

    /* Forgotten (it committed): unknown, and nothing written. */
    size_t puts = g->rec_puts;
    tpc_msg st = msg(TPC_CHECK, TPC_CHECK_SETTLE, id, G0, G0, 4000 + TPC_RETAIN_MS);
    r = apply(g, &st);
    assert_result(&r, OKV_OK, TPC_NONE);
    assert_int_equal(g->rec_puts, puts);
    /* An older id of the same client: may be forgotten too. */
    st.id.req = 50;
    r = apply(g, &st);
    assert_result(&r, OKV_OK, TPC_NONE);
    assert_int_equal(g->rec_puts, puts);
    /* A newer id never decided here: settled as aborted, for good. */
    st.id.req = 101;
    r = apply(g, &st);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    assert_int_equal(must_crec(g, st.id).state, TPC_ABORTED);
    r = apply(g, &st);
    assert_int_equal(r.state, TPC_ABORTED);
    /* Another client's unknown id: the same, settled. A plain CHECK writes
     * nothing. */
    tpc_msg look = msg(TPC_CHECK, 0, (tpc_id){ 78, 1 }, G0, G0, 5000);
    puts = g->rec_puts;
    r = apply(g, &look);
    assert_result(&r, OKV_OK, TPC_NONE);
    assert_int_equal(g->rec_puts, puts);
    grp_free(g);
}

/* A settling CHECK's tombstone, forgotten past its retention, still turns
 * down its coordinator's vote: a call held up on its way starts its driver
 * (and its deadline) late, so only the client's horizon stops it (found by
 * cluster.tpc_crash, case o). */
static void test_tpc__a_late_vote_after_a_forgotten_settle_is_refused(void **state)
{
    (void)state;
    grp *g = coordinator();
    txn t = co_share();
    tpc_id id = { 79, 200 };
    tpc_msg st = msg(TPC_CHECK, TPC_CHECK_SETTLE, id, G0, G0, 1000);
    tpc_result r = apply(g, &st);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    r = forget(g, 'C', id, 1000 + TPC_RETAIN_MS);
    assert_int_equal(r.state, TPC_NONE);
    r = forget(g, 'P', id, 1000 + TPC_RETAIN_MS);
    assert_null(rec_find(g, 'C', &id));
    assert_null(rec_find(g, 'P', &id));
    /* The vote, within the deadline its late driver set. */
    uint64_t now = 2000 + TPC_RETAIN_MS;
    tpc_msg m = prepare(id, G0, G0, &t, now, now + 10000);
    m.flag = 1;
    r = apply(g, &m);
    assert_int_equal(r.state, TPC_ABORTED);
    assert_null(rec_find(g, 'C', &id));
    assert_null(data_get(g, "a"));
    /* A newer id of the same client still prepares. */
    m.id.req = 201;
    r = apply(g, &m);
    assert_int_equal(r.state, TPC_COMMITTED);
    grp_free(g);
}


/* The backup fence (tpc.h): while it stands every PREPARE is refused for
 * good, the coordinator's too; a second backup's fence is refused; only
 * its own backup lifts it; it expires by the entries' clocks. */
static void test_tpc__fence_refuses_prepares_while_it_stands(void **state)
{
    (void)state;
    grp *g = coordinator();
    txn t = co_share();
    tpc_id f1 = { 77, 0 }, f2 = { 78, 0 };
    tpc_msg up = msg(TPC_FENCE, 1, f1, G0, G0, 1000);
    up.deadline_ms = 5000;   /* stands until clock 6000 */
    tpc_result r = apply(g, &up);
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    tpc_msg other = msg(TPC_FENCE, 1, f2, G0, G0, 1500);
    other.deadline_ms = 5000;
    r = apply(g, &other);
    assert_result(&r, OKV_ECONFLICT, TPC_NONE);
    tpc_msg m = prepare(T1, G0, G0, &t, 2000, 9000);
    r = apply(g, &m);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);   /* refused, with a tombstone */
    assert_int_equal(must_prec(g, T1).state, TPC_ABORTED);
    tpc_msg lift_other = msg(TPC_FENCE, 0, f2, G0, G0, 2500);
    apply(g, &lift_other);                            /* not its fence: still up */
    tpc_msg m2 = prepare(T2, G0, G0, &t, 3000, 9000);
    r = apply(g, &m2);
    assert_result(&r, OKV_ECONFLICT, TPC_ABORTED);
    tpc_msg lift = msg(TPC_FENCE, 0, f1, G0, G0, 3500);
    apply(g, &lift);
    tpc_id t3 = { T1.client, T2.req + 10 };
    tpc_msg m3 = prepare(t3, G0, G0, &t, 4000, 9000);
    r = apply(g, &m3);
    assert_result(&r, OKV_OK, TPC_PREPARED);
    /* A fence that expired refuses nothing and does not block the next. */
    grp *h = coordinator();
    tpc_msg up2 = msg(TPC_FENCE, 1, f1, G0, G0, 1000);
    up2.deadline_ms = 100;
    apply(h, &up2);
    r = apply(h, &other);
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    tpc_msg lift2 = msg(TPC_FENCE, 0, f2, G0, G0, 1600);
    apply(h, &lift2);
    tpc_msg m4 = prepare(T1, G0, G0, &t, 2000, 9000);
    r = apply(h, &m4);
    assert_result(&r, OKV_OK, TPC_PREPARED);
    grp_free(h);
    grp_free(g);
}

/* ---- range locks (T6) ----------------------------------------------------------- */

static const tpc_id T4 = { 44, 4 };

/* G1 with the scanned keys s/1 and s/2, and x and t/1 outside. */
static grp *scanned(void)
{
    grp *g = grp_new(G1);
    data_put(g, "s/1", "one", 5);
    data_put(g, "s/2", "two", 6);
    data_put(g, "x", "old", 7);
    data_put(g, "t/1", "out", 8);
    return g;
}

/* What a scan of [lo, hi) saw in g now. */
static txn_cond range_cond(grp *g, const char *lo, const char *hi)
{
    txn_cond c = { TXN_COND_RANGE, 0, KP(g->g, lo), 0, 0, (const uint8_t *)hi, strlen(hi) };
    uint64_t n, d;
    int locked;
    okv_error err;
    assert_int_equal(data_range(g, &c, &n, &d, &locked, &err), OKV_OK);
    c.num = (int64_t)n;
    c.version = d;
    return c;
}

/* The range-lock count record: 0 when absent. */
static uint64_t rlock_n(grp *g)
{
    rec *r = rec_find(g, 'N', &(tpc_id){ 0, 0 });
    if (!r)
        return 0;
    assert_int_equal(r->len, 8);
    uint64_t n = keycodec_get_u64be(r->val);
    assert_true(n > 0);   /* never left at 0: absent instead */
    return n;
}

static int range_locked_for(grp *g, const char *key, const tpc_id *self)
{
    txn_key k = KP(g->g, key);
    int locked = -1;
    okv_error err;
    assert_int_equal(tpc_range_locked(&g->ts, &k, self, &locked, &err), OKV_OK);
    return locked;
}

/* T's share at G1: the scan of [s/, s0) as a range condition, then a
 * write of x (outside the range). */
static txn_cond rs_conds[2];
static txn_write rs_writes[1];

static txn scan_share(grp *g, const char *write_key)
{
    rs_conds[0] = range_cond(g, "s/", "s0");
    rs_writes[0] = put(G1, write_key, "new");
    txn t = TXN_OF(rs_conds, rs_writes);
    t.n_conds = 1;
    return t;
}

static void expect_not_now(grp *g, const tpc_msg *m, uint32_t failed)
{
    size_t puts = g->rec_puts, lputs = g->lock_puts, nr = g->nr;
    tpc_result r = apply(g, m);
    assert_result(&r, OKV_ECONFLICT, TPC_NONE);
    assert_fail_is(r.fail, OKV_ECONFLICT, failed, TXN_FAIL_LOCKED);
    assert_int_equal(g->rec_puts, puts);   /* nothing recorded: it may come again */
    assert_int_equal(g->lock_puts, lputs);
    assert_int_equal(g->nr, nr);
}

static void test_tpc__prepare_takes_a_range_lock_resolve_releases_it(void **state)
{
    (void)state;
    grp *g = scanned();
    assert_int_equal(range_locked_for(g, "s/1", NULL), 0);
    assert_int_equal(g->rlock_walks, 0);   /* no count record: one point read, no walk */

    txn t = scan_share(g, "x");
    tpc_msg m = prepare(T1, G1, G0, &t, 1000, 2000);
    tpc_result r = apply(g, &m);
    assert_result(&r, OKV_OK, TPC_PREPARED);
    /* The range is held by one 'R' record, not by a point lock on its
     * start; x is locked exclusive as before. */
    assert_non_null(rec_find(g, 'R', &T1));
    assert_int_equal(rlock_n(g), 1);
    assert_int_equal(g->nl, 1);
    assert_lock(g, "x", TPC_LOCK_EXCLUSIVE, T1);
    assert_unlocked(g, "s/");
    /* [s/, s0): the start is in, the end is not; its holder is not locked
     * out of its own range. */
    assert_int_equal(range_locked_for(g, "s/", NULL), 1);
    assert_int_equal(range_locked_for(g, "s/1", NULL), 1);
    assert_int_equal(range_locked_for(g, "s/zzz", NULL), 1);
    assert_int_equal(range_locked_for(g, "s0", NULL), 0);
    assert_int_equal(range_locked_for(g, "s", NULL), 0);
    assert_int_equal(range_locked_for(g, "t/1", NULL), 0);
    assert_int_equal(range_locked_for(g, "s/1", &T1), 0);

    /* A duplicate PREPARE: the same answer, no second record. */
    size_t puts = g->rec_puts;
    r = apply(g, &m);
    assert_result(&r, OKV_OK, TPC_PREPARED);
    assert_int_equal(g->rec_puts, puts);
    assert_int_equal(rlock_n(g), 1);

    /* RESOLVE commit: x written, the range lock and the count gone. */
    tpc_msg res = msg(TPC_RESOLVE, 1, T1, G1, G0, 1100);
    r = apply(g, &res);
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    assert_data(g, "x", "new", r.version);
    assert_null(rec_find(g, 'R', &T1));
    assert_null(rec_find(g, 'N', &(tpc_id){ 0, 0 }));
    assert_int_equal(range_locked_for(g, "s/1", NULL), 0);
    assert_int_equal(g->nl, 0);
    /* Again: nothing more to release. */
    r = apply(g, &res);
    assert_int_equal(r.state, TPC_COMMITTED);
    assert_int_equal(rlock_n(g), 0);

    /* RESOLVE abort releases the same way. */
    t = scan_share(g, "y");
    tpc_msg m2 = prepare(T2, G1, G0, &t, 1200, 3000);
    assert_result((r = apply(g, &m2), &r), OKV_OK, TPC_PREPARED);
    assert_int_equal(rlock_n(g), 1);
    tpc_msg ab = msg(TPC_RESOLVE, 0, T2, G1, G0, 1300);
    r = apply(g, &ab);
    assert_result(&r, OKV_OK, TPC_ABORTED);
    assert_null(rec_find(g, 'R', &T2));
    assert_int_equal(rlock_n(g), 0);
    assert_null(data_get(g, "y"));
    grp_free(g);
}

static void test_tpc__shared_range_locks_coexist(void **state)
{
    (void)state;
    grp *g = scanned();
    txn t1 = scan_share(g, "a");   /* its write lies before T2's range */
    tpc_msg m1 = prepare(T1, G1, G0, &t1, 1000, 2000);
    tpc_result r = apply(g, &m1);
    assert_result(&r, OKV_OK, TPC_PREPARED);
    /* T2 scans an overlapping range and only reads (a check's share); an
     * open end, so T1's write of x, had it been there, would stop it. */
    txn_cond c2[] = { range_cond(g, "s/1", "") };
    txn t2 = TXN_CONDS(c2);
    tpc_msg m2 = prepare(T2, G1, G0, &t2, 1000, 2000);
    r = apply(g, &m2);
    assert_result(&r, OKV_OK, TPC_PREPARED);
    assert_int_equal(rlock_n(g), 2);
    /* The open-ended range reaches every key from s/1 on. */
    assert_int_equal(range_locked_for(g, "zzz", NULL), 1);
    assert_int_equal(range_locked_for(g, "zzz", &T2), 0);
    assert_int_equal(range_locked_for(g, "s/2", &T1), 1);   /* T2's range */

    tpc_msg res1 = msg(TPC_RESOLVE, 1, T1, G1, G0, 1100);
    r = apply(g, &res1);
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    assert_int_equal(rlock_n(g), 1);
    assert_int_equal(range_locked_for(g, "s/1", NULL), 1);   /* T2 still holds it */
    assert_int_equal(range_locked_for(g, "s/", NULL), 0);    /* only T1 held that */
    tpc_msg res2 = msg(TPC_RESOLVE, 1, T2, G1, G0, 1100);
    r = apply(g, &res2);
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    assert_int_equal(rlock_n(g), 0);
    assert_int_equal(range_locked_for(g, "s/1", NULL), 0);
    grp_free(g);
}

static void test_tpc__a_write_into_a_held_range_waits_one_outside_does_not(void **state)
{
    (void)state;
    grp *g = scanned();
    txn t1 = scan_share(g, "x");
    tpc_msg m1 = prepare(T1, G1, G0, &t1, 1000, 2000);
    tpc_result r = apply(g, &m1);
    assert_result(&r, OKV_OK, TPC_PREPARED);

    /* Another PREPARE inserting into the range: not now, nothing recorded
     * (its write is item 1: after one condition). */
    txn_cond c2[] = { cond(TXN_COND_ABSENT, G1, "q") };
    txn_write w2[] = { put(G1, "s/3", "phantom") };
    txn t2 = TXN_OF(c2, w2);
    tpc_msg m2 = prepare(T2, G1, G0, &t2, 1000, 2000);
    expect_not_now(g, &m2, 1);
    /* Deleting a scanned key: the same. */
    txn_write w3[] = { del(G1, "s/2") };
    txn t3 = TXN_WRITES(w3);
    tpc_msg m3 = prepare(T3, G1, G0, &t3, 1000, 2000);
    expect_not_now(g, &m3, 0);
    /* The coordinator's vote, which would apply its write at once: the
     * same (G1 coordinates T4 here). */
    tpc_msg m4 = prepare(T4, G1, G1, &t3, 1000, 2000);
    m4.flag = 1;
    expect_not_now(g, &m4, 0);
    assert_non_null(data_get(g, "s/2"));
    /* Writes outside the range go ahead. */
    txn_write w5[] = { put(G1, "t/1", "in"), put(G1, "s0", "edge") };
    txn t5 = TXN_WRITES(w5);
    tpc_msg m5 = prepare(T4, G1, G0, &t5, 1000, 2000);
    r = apply(g, &m5);
    assert_result(&r, OKV_OK, TPC_PREPARED);

    /* Once T1 is resolved, T2 prepares. */
    tpc_msg res1 = msg(TPC_RESOLVE, 0, T1, G1, G0, 1100);
    apply(g, &res1);
    r = apply(g, &m2);
    assert_result(&r, OKV_OK, TPC_PREPARED);
    grp_free(g);
}

static void test_tpc__a_range_with_an_exclusive_lock_in_it_waits(void **state)
{
    (void)state;
    grp *g = scanned();
    /* T2 prepared a write of s/5 (exclusive) and a read of s/1 (shared). */
    txn_cond c2[] = { cond(TXN_COND_EXISTS, G1, "s/1") };
    txn_write w2[] = { put(G1, "s/5", "five") };
    txn t2 = TXN_OF(c2, w2);
    tpc_msg m2 = prepare(T2, G1, G0, &t2, 1000, 2000);
    tpc_result r = apply(g, &m2);
    assert_result(&r, OKV_OK, TPC_PREPARED);

    /* T1's scan of [s/, s0): s/5 may be committed already at T2's
     * coordinator, so not now (the range condition is item 0). */
    txn t1 = scan_share(g, "x");
    tpc_msg m1 = prepare(T1, G1, G0, &t1, 1000, 2000);
    expect_not_now(g, &m1, 0);
    assert_int_equal(rlock_n(g), 0);
    /* A scan that only meets the shared lock (s/1 alone) prepares. */
    txn_cond c3[] = { range_cond(g, "s/1", "s/2") };
    txn t3 = TXN_CONDS(c3);
    tpc_msg m3 = prepare(T3, G1, G0, &t3, 1000, 2000);
    r = apply(g, &m3);
    assert_result(&r, OKV_OK, TPC_PREPARED);

    /* T2 commits: s/5 is in the range now, so T1's scan is stale and its
     * PREPARE is refused for good with the range condition. */
    tpc_msg res2 = msg(TPC_RESOLVE, 1, T2, G1, G0, 1100);
    r = apply(g, &res2);
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    r = apply(g, &m1);
    assert_result(&r, OKV_ECONDITION, TPC_ABORTED);
    assert_fail_is(r.fail, OKV_ECONDITION, 0, TXN_FAIL_CONDITION);
    assert_null(rec_find(g, 'R', &T1));
    assert_int_equal(rlock_n(g), 1);   /* T3's */
    grp_free(g);
}

static void test_tpc__a_changed_range_refuses_prepare_and_vote(void **state)
{
    (void)state;
    grp *g = scanned();
    txn t1 = scan_share(g, "x");
    data_put(g, "s/3", "inserted", 9);   /* after the scan */
    tpc_msg m1 = prepare(T1, G1, G0, &t1, 1000, 2000);
    tpc_result r = apply(g, &m1);
    assert_result(&r, OKV_ECONDITION, TPC_ABORTED);
    assert_fail_is(r.fail, OKV_ECONDITION, 0, TXN_FAIL_CONDITION);
    assert_int_equal(rlock_n(g), 0);
    assert_int_equal(g->nl, 0);
    /* A vote checks its range in its own entry, applies, takes no lock. */
    txn t2 = scan_share(g, "x");
    tpc_msg m2 = prepare(T2, G1, G1, &t2, 1000, 2000);
    m2.flag = 1;
    r = apply(g, &m2);
    assert_result(&r, OKV_OK, TPC_COMMITTED);
    assert_data(g, "x", "new", r.version);
    assert_int_equal(rlock_n(g), 0);
    assert_null(rec_find(g, 'R', &T2));
    grp_free(g);
}

/* A store that keeps no range locks (rlock_each NULL) refuses a share with
 * a range as before; a malformed 'R' record is corruption, not "unlocked". */
static void test_tpc__range_lock_records_are_checked(void **state)
{
    (void)state;
    grp *g = scanned();
    g->ts.rlock_each = NULL;
    txn t1 = scan_share(g, "x");
    tpc_msg m1 = prepare(T1, G1, G0, &t1, 1000, 2000);
    tpc_result r = apply(g, &m1);
    assert_result(&r, OKV_EINVAL, TPC_ABORTED);
    g->ts.rlock_each = rlock_each;

    /* covers: a well-formed record of two ranges, then every cut. */
    uint8_t rec2[] = { TPC_RLOCK_FORMAT, 0, 2, 0, 1, 'a', 0, 1, 'c', 0, 0, 0, 0 };
    assert_int_equal(tpc_rlock_covers(rec2, sizeof rec2, (const uint8_t *)"b", 1), 1);
    assert_int_equal(tpc_rlock_covers(rec2, sizeof rec2, (const uint8_t *)"c", 1), 1);   /* [,) */
    assert_int_equal(tpc_rlock_covers(rec2, sizeof rec2, (const uint8_t *)"", 0), 1);
    uint8_t rec1[] = { TPC_RLOCK_FORMAT, 0, 1, 0, 1, 'a', 0, 1, 'c' };
    assert_int_equal(tpc_rlock_covers(rec1, sizeof rec1, (const uint8_t *)"c", 1), 0);
    assert_int_equal(tpc_rlock_covers(rec1, sizeof rec1, (const uint8_t *)"", 0), 0);
    for (size_t cut = 0; cut < sizeof rec2; cut++)
        assert_int_equal(tpc_rlock_covers(rec2, cut, (const uint8_t *)"b", 1), -1);
    uint8_t longer[sizeof rec2 + 1];
    memcpy(longer, rec2, sizeof rec2);
    longer[sizeof rec2] = 0;
    assert_int_equal(tpc_rlock_covers(longer, sizeof longer, (const uint8_t *)"b", 1), -1);
    uint8_t fmt[] = { 2, 0, 1, 0, 0, 0, 0 }, none[] = { TPC_RLOCK_FORMAT, 0, 0 };
    assert_int_equal(tpc_rlock_covers(fmt, sizeof fmt, (const uint8_t *)"b", 1), -1);
    assert_int_equal(tpc_rlock_covers(none, sizeof none, (const uint8_t *)"b", 1), -1);

    okv_error err;
    uint8_t one[8];
    keycodec_put_u64be(one, 1);
    assert_int_equal(rec_put(g, 'N', &(tpc_id){ 0, 0 }, one, 8, &err), OKV_OK);
    assert_int_equal(rec_put(g, 'R', &T2, rec1, sizeof rec1 - 1, &err), OKV_OK);
    txn_key k = KP(G1, "b");
    int locked;
    assert_int_equal(tpc_range_locked(&g->ts, &k, NULL, &locked, &err), OKV_ECORRUPT);
    assert_int_equal(rec_put(g, 'N', &(tpc_id){ 0, 0 }, one, 7, &err), OKV_OK);
    assert_int_equal(tpc_range_locked(&g->ts, &k, NULL, &locked, &err), OKV_ECORRUPT);
    grp_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_tpc__msg_roundtrip_every_kind, free_kept),
        cmocka_unit_test_teardown(test_tpc__msg_every_truncation_is_refused, free_kept),
        cmocka_unit_test_teardown(test_tpc__msg_malformed_is_refused, free_kept),
        cmocka_unit_test_teardown(test_tpc__msg_random_mutations_never_crash, free_kept),
        cmocka_unit_test_teardown(test_tpc__prec_roundtrip_and_rejects, free_kept),
        cmocka_unit_test_teardown(test_tpc__crec_roundtrip_and_rejects, free_kept),
        cmocka_unit_test_teardown(test_tpc__lock_roundtrip_and_rejects, free_kept),
        cmocka_unit_test_teardown(test_tpc__prepare_locks_and_records_intents, free_kept),
        cmocka_unit_test_teardown(test_tpc__prepare_meeting_a_lock_it_cannot_share_is_refused,
                                  free_kept),
        cmocka_unit_test_teardown(test_tpc__readers_share_a_key, free_kept),
        cmocka_unit_test_teardown(test_tpc__prepare_failed_check_aborts_without_locks, free_kept),
        cmocka_unit_test_teardown(test_tpc__coordinator_prepare_writes_pending, free_kept),
        cmocka_unit_test_teardown(test_tpc__fence_refuses_prepares_while_it_stands, free_kept),
        cmocka_unit_test_teardown(test_tpc__check_abort_first_refuses_the_coordinators_prepare,
                                  free_kept),
        cmocka_unit_test_teardown(test_tpc__decide_commit_applies_the_coordinators_writes,
                                  free_kept),
        cmocka_unit_test_teardown(test_tpc__decide_abort_releases_the_coordinators_locks,
                                  free_kept),
        cmocka_unit_test_teardown(test_tpc__decide_from_nothing_only_aborts, free_kept),
        cmocka_unit_test_teardown(test_tpc__resolve_commit_applies_the_intents_once, free_kept),
        cmocka_unit_test_teardown(test_tpc__resolve_abort_drops_the_intents, free_kept),
        cmocka_unit_test_teardown(test_tpc__resolve_without_a_record, free_kept),
        cmocka_unit_test_teardown(test_tpc__check_reports_and_aborts_only_when_due, free_kept),
        cmocka_unit_test_teardown(test_tpc__finish_and_forget_keep_what_is_still_needed,
                                  free_kept),
        cmocka_unit_test_teardown(test_tpc__coordinator_messages_elsewhere_are_refused,
                                  free_kept),
        cmocka_unit_test_teardown(test_tpc__store_errors_and_bad_records_propagate, free_kept),
        cmocka_unit_test_teardown(test_tpc__randomized_two_groups_stay_atomic, free_kept),
        cmocka_unit_test_teardown(test_tpc__vote_last_commits_in_one_entry, free_kept),
        cmocka_unit_test_teardown(test_tpc__prepare_takes_a_range_lock_resolve_releases_it,
                                  free_kept),
        cmocka_unit_test_teardown(test_tpc__shared_range_locks_coexist, free_kept),
        cmocka_unit_test_teardown(test_tpc__a_write_into_a_held_range_waits_one_outside_does_not,
                                  free_kept),
        cmocka_unit_test_teardown(test_tpc__a_range_with_an_exclusive_lock_in_it_waits,
                                  free_kept),
        cmocka_unit_test_teardown(test_tpc__a_changed_range_refuses_prepare_and_vote, free_kept),
        cmocka_unit_test_teardown(test_tpc__range_lock_records_are_checked, free_kept),
        cmocka_unit_test_teardown(test_tpc__settle_is_final_unless_forgotten, free_kept),
        cmocka_unit_test_teardown(test_tpc__a_late_vote_after_a_forgotten_settle_is_refused,
                                  free_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
