/* Transactions: the codec (round trips, refusal of every malformed shape,
 * random mutations), validation, evaluation against a store in memory, and
 * the outcome's message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "okv_test.h"
#include "range_digest.h"
#include "txn.h"

#define ORDERS 1u
#define ACCOUNTS 3u
#define has(s, sub) assert_non_null(strstr((s), (sub)))

/* ---- a store in memory ------------------------------------------------- */

typedef struct entry {
    uint32_t table, partition;
    uint8_t key[32];
    size_t key_len;
    uint8_t val[64];
    size_t val_len;
    uint64_t version;
} entry;

typedef struct mem {
    entry e[16];
    size_t n;
    const char *locked[4];     /* keys locked in any table */
    size_t n_locked;
    int read_rc;               /* != 0: every read fails with it */
    int read_sets_err;         /* the failing read sets err itself */
    int write_rc;              /* != 0: every write fails with it */
    size_t reads, writes, lock_checks;
} mem;

static txn_key K(uint32_t table, const char *key)
{
    txn_key k = { table, 0, (const uint8_t *)key, strlen(key) };
    return k;
}

static entry *mem_find(mem *m, const txn_key *k)
{
    for (size_t i = 0; i < m->n; i++) {
        entry *e = &m->e[i];
        if (e->table == k->table_id && e->partition == k->partition && e->key_len == k->key_len &&
            memcmp(e->key, k->key, k->key_len) == 0)
            return e;
    }
    return NULL;
}

static void mem_set(mem *m, const txn_key *k, const void *val, size_t len, uint64_t version)
{
    entry *e = mem_find(m, k);
    if (!e) {
        assert_true(m->n < sizeof m->e / sizeof m->e[0]);
        assert_true(k->key_len <= sizeof e->key);
        e = &m->e[m->n++];
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

static void mem_put(mem *m, uint32_t table, const char *key, const char *val, uint64_t version)
{
    txn_key k = K(table, key);
    mem_set(m, &k, val, strlen(val), version);
}

static void mem_counter(mem *m, uint32_t table, const char *key, int64_t v, uint64_t version)
{
    uint8_t b[TXN_COUNTER_LEN];
    txn_counter_encode(v, b);
    txn_key k = K(table, key);
    mem_set(m, &k, b, sizeof b, version);
}

/* The counter at key, which must exist and be one. */
static int64_t mem_get_counter(mem *m, uint32_t table, const char *key)
{
    txn_key k = K(table, key);
    entry *e = mem_find(m, &k);
    assert_non_null(e);
    int64_t v = 0;
    assert_int_equal(txn_counter_decode(e->val, e->val_len, &v), 0);
    return v;
}

static int mem_read(void *ctx, const txn_key *k, uint8_t **val, size_t *val_len,
                    uint64_t *version, okv_error *err)
{
    mem *m = ctx;
    m->reads++;
    if (m->read_rc) {
        if (m->read_sets_err)
            return okv_error_set(err, m->read_rc, "disk on fire");
        return m->read_rc;
    }
    entry *e = mem_find(m, k);
    if (!e)
        return okv_error_set(err, OKV_ENOTFOUND, "no such key");
    *val = malloc(e->val_len ? e->val_len : 1);
    assert_non_null(*val);
    memcpy(*val, e->val, e->val_len);
    *val_len = e->val_len;
    *version = e->version;
    return OKV_OK;
}

static int mem_locked(void *ctx, const txn_key *k, int write)
{
    mem *m = ctx;
    (void)write;
    m->lock_checks++;
    for (size_t i = 0; i < m->n_locked; i++)
        if (strlen(m->locked[i]) == k->key_len && memcmp(m->locked[i], k->key, k->key_len) == 0)
            return 1;
    return 0;
}

/* Staging applies at once: the tests look at the store afterwards. */
static int mem_write(void *ctx, const txn_key *k, const uint8_t *val, size_t val_len,
                     uint64_t version, okv_error *err)
{
    mem *m = ctx;
    m->writes++;
    if (m->write_rc)
        return m->write_rc;
    if (val) {
        mem_set(m, k, val, val_len, version);
        return OKV_OK;
    }
    entry *e = mem_find(m, k);
    if (e) {
        *e = m->e[--m->n];
        memset(&m->e[m->n], 0, sizeof m->e[0]);
    }
    return OKV_OK;
}

static int key_order(const void *x, const void *y)
{
    const entry *a = *(const entry *const *)x, *b = *(const entry *const *)y;
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    return c ? c : (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static int in_range(const txn_cond *c, const uint8_t *k, size_t kl)
{
    entry probe, lo, hi;
    const entry *pp = &probe, *plo = &lo, *phi = &hi;
    memset(&probe, 0, sizeof probe);
    memset(&lo, 0, sizeof lo);
    memset(&hi, 0, sizeof hi);
    memcpy(probe.key, k, kl);
    probe.key_len = kl;
    memcpy(lo.key, c->k.key, c->k.key_len);
    lo.key_len = c->k.key_len;
    memcpy(hi.key, c->value, c->value_len);
    hi.key_len = c->value_len;
    return key_order(&pp, &plo) >= 0 && (c->value_len == 0 || key_order(&pp, &phi) < 0);
}

/* The range's keys in key order, as the state machine walks them. */
static int mem_range(void *ctx, const txn_cond *c, uint64_t *count, uint64_t *digest,
                     int *locked, okv_error *err)
{
    (void)err;
    mem *m = ctx;
    m->reads++;
    if (m->read_rc)
        return m->read_rc;
    const entry *in[16];
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++) {
        const entry *e = &m->e[i];
        if (e->table == c->k.table_id && e->partition == c->k.partition &&
            in_range(c, e->key, e->key_len))
            in[n++] = e;
    }
    qsort(in, n, sizeof in[0], key_order);
    *count = n;
    *digest = OKV_RANGE_DIGEST_INIT;
    for (size_t i = 0; i < n; i++)
        *digest = okv_range_digest_add(*digest, in[i]->key, in[i]->key_len, in[i]->version);
    *locked = 0;
    for (size_t i = 0; i < m->n_locked; i++)
        *locked |= in_range(c, (const uint8_t *)m->locked[i], strlen(m->locked[i]));
    return OKV_OK;
}

static txn_store store_of(mem *m)
{
    txn_store s = { m, mem_read, mem_locked, mem_write, mem_range };
    return s;
}

/* ---- building transactions ----------------------------------------------- */

static txn_cond cond(uint8_t kind, uint32_t table, const char *key)
{
    txn_cond c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.k = K(table, key);
    return c;
}

static txn_cond cond_int(uint32_t table, const char *key, uint8_t cmp, int64_t num)
{
    txn_cond c = cond(TXN_COND_INT, table, key);
    c.cmp = cmp;
    c.num = num;
    return c;
}

static txn_write wr(uint8_t kind, uint32_t table, const char *key)
{
    txn_write w;
    memset(&w, 0, sizeof w);
    w.kind = kind;
    w.k = K(table, key);
    return w;
}

static txn_write put(uint32_t table, const char *key, const char *val)
{
    txn_write w = wr(TXN_PUT, table, key);
    w.value = (const uint8_t *)val;
    w.value_len = strlen(val);
    return w;
}

static txn_write add(uint32_t table, const char *key, int64_t delta)
{
    txn_write w = wr(TXN_ADD, table, key);
    w.delta = delta;
    return w;
}

static txn_write add_floor(uint32_t table, const char *key, int64_t delta, int64_t floor)
{
    txn_write w = add(table, key, delta);
    w.has_floor = 1;
    w.floor = floor;
    return w;
}

#define TXN_OF(c, w) { sizeof(c) / sizeof(c)[0], (c), sizeof(w) / sizeof(w)[0], (w) }
#define TXN_WRITES(w) { 0, NULL, sizeof(w) / sizeof(w)[0], (w) }

/* Encodes into a buffer of exactly the encoded size, so ASan sees any read
 * past its end. */
static uint8_t *encode(const txn *t, size_t *len)
{
    *len = txn_encoded_size(t);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    txn_encode(t, buf);
    return buf;
}

/* Decodes a copy of exactly n bytes of buf. */
static int decode_n(const uint8_t *buf, size_t n, okv_error *err)
{
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, buf, n);
    txn d;
    int rc = txn_decode(copy, n, &d, err);
    txn_clear(&d);
    free(copy);
    return rc;
}

/* Every kind of condition and write, with edge values. */
static txn_cond sample_conds[6];
static txn_write sample_writes[5];

static txn sample(void)
{
    static const uint8_t binkey[] = { 'a', 0, 0xff, '\'' };
    sample_conds[0] = cond(TXN_COND_EXISTS, ORDERS, "o1");
    sample_conds[1] = cond(TXN_COND_ABSENT, ORDERS, "o2");
    sample_conds[2] = cond(TXN_COND_VERSION_EQ, ORDERS, "o1");
    sample_conds[2].version = 0x1122334455667788ULL;
    sample_conds[3] = cond(TXN_COND_VALUE_EQ, ORDERS, "o3");
    sample_conds[3].value = (const uint8_t *)"\x00paid";
    sample_conds[3].value_len = 5;
    sample_conds[4] = cond_int(ACCOUNTS, "acct/9", TXN_GE, INT64_MIN);
    sample_conds[5] = cond(TXN_COND_VALUE_EQ, ORDERS, "o4");   /* empty value */
    sample_conds[5].k.partition = 0xfffffffeu;
    sample_conds[5].value = (const uint8_t *)"";
    sample_writes[0] = put(ORDERS, "o1", "shipped");
    sample_writes[1] = wr(TXN_DELETE, ORDERS, "o3");
    sample_writes[2] = add(ACCOUNTS, "acct/9", INT64_MAX);
    sample_writes[3] = add_floor(ACCOUNTS, "acct/10", -500, INT64_MIN);
    sample_writes[4] = put(0xffffffffu, "x", "");
    sample_writes[4].k.key = binkey;
    sample_writes[4].k.key_len = sizeof binkey;
    txn t = TXN_OF(sample_conds, sample_writes);
    return t;
}

/* ---- the codec ----------------------------------------------------------- */

static void assert_key_equal(const txn_key *a, const txn_key *b)
{
    assert_int_equal(a->table_id, b->table_id);
    assert_int_equal(a->partition, b->partition);
    assert_int_equal(a->key_len, b->key_len);
    assert_memory_equal(a->key, b->key, a->key_len);
}

static void test_txn__roundtrip_every_kind(void **state)
{
    (void)state;
    txn t = sample(), d;
    size_t len;
    uint8_t *buf = encode(&t, &len);
    okv_error err;
    assert_int_equal(txn_validate(&t, &err), OKV_OK);
    assert_int_equal(txn_decode(buf, len, &d, &err), OKV_OK);
    assert_int_equal(d.n_conds, t.n_conds);
    assert_int_equal(d.n_writes, t.n_writes);
    for (size_t i = 0; i < t.n_conds; i++) {
        const txn_cond *a = &t.conds[i], *b = &d.conds[i];
        assert_int_equal(b->kind, a->kind);
        assert_int_equal(b->cmp, a->cmp);
        assert_key_equal(&b->k, &a->k);
        if (a->kind == TXN_COND_VERSION_EQ)
            assert_true(b->version == a->version);
        if (a->kind == TXN_COND_INT)
            assert_true(b->num == a->num);
        if (a->kind == TXN_COND_VALUE_EQ) {
            assert_int_equal(b->value_len, a->value_len);
            assert_memory_equal(b->value, a->value, a->value_len);
            /* Borrowed from the input, not copied. */
            assert_true(b->value >= buf && b->value <= buf + len);
        }
    }
    for (size_t i = 0; i < t.n_writes; i++) {
        const txn_write *a = &t.writes[i], *b = &d.writes[i];
        assert_int_equal(b->kind, a->kind);
        assert_int_equal(b->has_floor, a->has_floor);
        assert_key_equal(&b->k, &a->k);
        assert_true(b->k.key >= buf && b->k.key < buf + len);
        if (a->kind == TXN_PUT) {
            assert_int_equal(b->value_len, a->value_len);
            assert_memory_equal(b->value, a->value, a->value_len);
        }
        if (a->kind == TXN_ADD) {
            assert_true(b->delta == a->delta);
            if (a->has_floor)
                assert_true(b->floor == a->floor);
        }
    }
    /* Canonical: the decoded transaction encodes to the same bytes. */
    size_t len2;
    uint8_t *buf2 = encode(&d, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(buf2, buf, len);
    free(buf2);
    txn_clear(&d);
    free(buf);
}

/* The layout of a small transaction, pinned byte by byte against txn.c's
 * comment (and docs/storage-format.md). */
static void test_txn__encoding_is_the_documented_layout(void **state)
{
    (void)state;
    txn_cond c[] = { cond_int(ACCOUNTS, "a", TXN_LT, -2) };
    txn_write w[] = { add_floor(ACCOUNTS, "a", 1, 0) };
    w[0].k.partition = 5;
    txn t = TXN_OF(c, w);
    static const uint8_t want[] = {
        1, 0, 1, 0, 1,                                   /* format, n_conds, n_writes */
        5, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 1, 'a',         /* INT, <, table 3, part 0, "a" */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,  /* -2 */
        3, 1, 0, 0, 0, 3, 0, 0, 0, 5, 0, 1, 'a',         /* ADD, floor, table 3, part 5 */
        0, 0, 0, 0, 0, 0, 0, 1,                          /* delta 1 */
        0, 0, 0, 0, 0, 0, 0, 0,                          /* floor 0 */
    };
    size_t len;
    uint8_t *buf = encode(&t, &len);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    free(buf);
}

static void test_txn__every_truncation_is_refused(void **state)
{
    (void)state;
    txn t = sample();
    size_t len;
    uint8_t *buf = encode(&t, &len);
    okv_error err;
    for (size_t n = 0; n < len; n++) {
        okv_error_clear(&err);
        assert_int_equal(decode_n(buf, n, &err), OKV_ECORRUPT);
        assert_int_equal(err.code, OKV_ECORRUPT);
        assert_true(strlen(err.msg) > 0);
    }
    assert_int_equal(decode_n(buf, len, &err), OKV_OK);
    free(buf);
}

static void test_txn__trailing_bytes_are_refused(void **state)
{
    (void)state;
    txn t = sample();
    size_t len = txn_encoded_size(&t);
    uint8_t *buf = calloc(1, len + 3);
    txn_encode(&t, buf);
    okv_error err;
    assert_int_equal(decode_n(buf, len + 1, &err), OKV_ECORRUPT);
    assert_int_equal(decode_n(buf, len + 3, &err), OKV_ECORRUPT);
    has(err.msg, "3 trailing bytes");
    free(buf);
}

static void test_txn__decode_accepts_no_writes(void **state)
{
    (void)state;
    static const uint8_t empty[] = { TXN_FORMAT, 0, 0, 0, 0 };
    txn d;
    okv_error err;
    assert_int_equal(txn_decode(empty, sizeof empty, &d, &err), OKV_OK);
    assert_int_equal(d.n_conds, 0);
    assert_int_equal(d.n_writes, 0);
    assert_null(d.conds);
    assert_null(d.writes);
    /* ...which validation then refuses. */
    assert_int_equal(txn_validate(&d, &err), OKV_EINVAL);
    txn_clear(&d);
}

/* One condition (offset 5: EXISTS "k", 13 bytes), then one write (offset 18:
 * PUT "k" = "v"). Each case breaks one byte; the message names the item. */
static void test_txn__malformed_fields_are_refused(void **state)
{
    (void)state;
    txn_cond c[] = { cond(TXN_COND_EXISTS, ORDERS, "k") };
    txn_write w[] = { put(ORDERS, "k", "v") };
    txn t = TXN_OF(c, w);
    struct { size_t off; uint8_t val; const char *msg; } cases[] = {
        { 0, 2, "format 2" },
        { 0, 0, "format 0" },
        { 1, 0x01, "257 conditions" },     /* n_conds = 257 */
        { 3, 0x01, "257 writes" },
        { 5, 0, "condition 0: unknown kind 0" },
        { 5, 7, "condition 0: unknown kind 7" },
        { 6, 3, "condition 0: comparison 3" },   /* a cmp on an EXISTS */
        { 16, 0, "condition 0: key length 0" },
        { 15, 0x04, "condition 0: key length 1025" },
        { 15, 0x01, "condition 0: truncated in its key" },   /* 257: runs past the end */
        { 18, 0, "write 0: unknown kind 0" },
        { 18, 4, "write 0: unknown kind 4" },
        { 19, 0x01, "write 0: a put has no floor" },
        { 19, 0x02, "write 0: unknown flags 0x02" },
        { 19, 0x80, "write 0: unknown flags 0x80" },
        { 29, 0, "write 0: key length 0" },
        { 32, 0x10, "write 0: value length 1048577" },   /* 0x00100001 */
        { 34, 9, "write 0: truncated in its value" },
    };
    size_t len;
    okv_error err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *buf = encode(&t, &len);
        assert_int_equal(len, 36);
        buf[cases[i].off] = cases[i].val;
        okv_error_clear(&err);
        assert_int_equal(decode_n(buf, len, &err), OKV_ECORRUPT);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err.msg, cases[i].msg);
        free(buf);
    }
}

static void test_txn__bad_comparisons_and_add_flags_are_refused(void **state)
{
    (void)state;
    txn_cond c[] = { cond_int(ACCOUNTS, "a", TXN_GT, 0) };
    txn_write w[] = { add(ACCOUNTS, "a", 1) };
    txn t = TXN_OF(c, w);
    size_t len;
    okv_error err;
    /* cmp at offset 6; the write's flags at 5 + 13 + 8 + 1 = 27. */
    uint8_t bad_cmp[] = { 0, 6, 0xff };
    for (size_t i = 0; i < sizeof bad_cmp; i++) {
        uint8_t *buf = encode(&t, &len);
        buf[6] = bad_cmp[i];
        assert_int_equal(decode_n(buf, len, &err), OKV_ECORRUPT);
        has(err.msg, "condition 0: comparison");
        free(buf);
    }
    uint8_t *buf = encode(&t, &len);
    buf[27] = 0x03;
    assert_int_equal(decode_n(buf, len, &err), OKV_ECORRUPT);
    has(err.msg, "write 0: unknown flags 0x03");
    /* The floor flag without the floor's 8 bytes is a truncation. */
    buf[27] = 0x01;
    assert_int_equal(decode_n(buf, len, &err), OKV_ECORRUPT);
    has(err.msg, "write 0: truncated in its floor");
    free(buf);
}

/* Random mutations of a valid encoding never crash or read past the end
 * (ASan), and whatever decodes re-encodes to the same bytes, validates or
 * not without crashing, and describes itself within its buffer. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_txn__random_mutations_never_crash(void **state)
{
    (void)state;
    txn t = sample();
    size_t len;
    uint8_t *orig = encode(&t, &len);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    size_t decoded = 0;
    for (int round = 0; round < 20000; round++) {
        size_t n = len;
        uint8_t *buf = malloc(len + 8);
        memcpy(buf, orig, len);
        int edits = 1 + (int)(rng_next(&seed) % 4);
        for (int e = 0; e < edits; e++) {
            uint64_t r = rng_next(&seed);
            size_t at = (size_t)(r >> 8) % n;
            switch (r % 5) {
            case 0: buf[at] = (uint8_t)(r >> 40); break;
            case 1: buf[at] ^= (uint8_t)(1u << ((r >> 32) % 8)); break;
            case 2: buf[at] = (r >> 33) & 1 ? 0 : 0xff; break;
            case 3: if (n > 1) n = at + 1; break;                    /* truncate */
            case 4: if (n < len + 8) buf[n++] = (uint8_t)(r >> 48); break;   /* extend */
            }
        }
        uint8_t *exact = malloc(n);
        memcpy(exact, buf, n);
        free(buf);
        txn d;
        okv_error err;
        int rc = txn_decode(exact, n, &d, &err);
        if (rc == OKV_OK) {
            decoded++;
            size_t n2;
            uint8_t *again = encode(&d, &n2);
            assert_int_equal(n2, n);
            assert_memory_equal(again, exact, n);
            free(again);
            (void)txn_validate(&d, &err);
            txn_outcome o = { OKV_ECONDITION, TXN_FAIL_CONDITION, (uint32_t)(round % 16), 0 };
            char msg[96];
            txn_outcome_describe(&d, &o, msg, sizeof msg);
            assert_true(strlen(msg) < sizeof msg);
        } else {
            assert_int_equal(rc, OKV_ECORRUPT);
            assert_int_equal(err.code, OKV_ECORRUPT);
        }
        txn_clear(&d);
        free(exact);
    }
    /* Some mutations (in key, value or number bytes) must still decode. */
    assert_true(decoded > 100);
    free(orig);
}

/* ---- validation ---------------------------------------------------------- */

static void expect_invalid(const txn *t, const char *msg)
{
    okv_error err;
    okv_error_clear(&err);
    assert_int_equal(txn_validate(t, &err), OKV_EINVAL);
    assert_int_equal(err.code, OKV_EINVAL);
    if (!strstr(err.msg, msg))
        fail_msg("\"%s\" does not say \"%s\"", err.msg, msg);
}

static void test_txn__validate_refuses_bad_counts(void **state)
{
    (void)state;
    txn none = { 0, NULL, 0, NULL };
    expect_invalid(&none, "at least one write or condition");

    txn_write *many = calloc(TXN_MAX_WRITES + 1, sizeof *many);
    for (size_t i = 0; i <= TXN_MAX_WRITES; i++)
        many[i] = wr(TXN_DELETE, ORDERS, "k");   /* counts are checked first */
    txn t = { 0, NULL, TXN_MAX_WRITES + 1, many };
    expect_invalid(&t, "at most 256 writes, not 257");

    txn_cond *conds = calloc(TXN_MAX_CONDS + 1, sizeof *conds);
    for (size_t i = 0; i <= TXN_MAX_CONDS; i++)
        conds[i] = cond(TXN_COND_EXISTS, ORDERS, "k");
    txn u = { TXN_MAX_CONDS + 1, conds, 1, many };
    expect_invalid(&u, "at most 256 conditions, not 257");

    /* Exactly the limits pass (conditions may all name the same key). */
    char keys[TXN_MAX_WRITES][8];
    for (size_t i = 0; i < TXN_MAX_WRITES; i++) {
        snprintf(keys[i], sizeof keys[i], "k%zu", i);
        many[i] = wr(TXN_DELETE, ORDERS, keys[i]);
    }
    txn v = { TXN_MAX_CONDS, conds, TXN_MAX_WRITES, many };
    okv_error err;
    assert_int_equal(txn_validate(&v, &err), OKV_OK);
    free(conds);
    free(many);
}

static void test_txn__validate_refuses_bad_items(void **state)
{
    (void)state;
    static char longkey[OKV_MAX_KEY_LEN + 2];
    memset(longkey, 'k', OKV_MAX_KEY_LEN + 1);
    txn_cond c[2];
    txn_write w[1];
    txn t = TXN_OF(c, w);

    /* A reset: a valid transaction, then one thing broken per case. */
#define RESET()                                                  \
    do {                                                         \
        c[0] = cond(TXN_COND_EXISTS, ORDERS, "a");               \
        c[1] = cond_int(ACCOUNTS, "acct/1", TXN_GE, 0);          \
        w[0] = put(ORDERS, "a", "v");                            \
    } while (0)

    RESET();
    okv_error err;
    assert_int_equal(txn_validate(&t, &err), OKV_OK);

    RESET(); c[0].k.key_len = 0;
    expect_invalid(&t, "condition 0: key length 0");
    RESET(); c[1].k = K(ACCOUNTS, longkey);
    expect_invalid(&t, "condition 1: key length 1025");
    RESET(); c[1].k.key = NULL;
    expect_invalid(&t, "condition 1: key of 6 bytes is NULL");
    RESET(); w[0].k.key_len = 0;
    expect_invalid(&t, "write 0: key length 0");
    RESET(); w[0].k = K(ORDERS, longkey);
    expect_invalid(&t, "write 0: key length 1025");
    RESET(); c[0].kind = 0;
    expect_invalid(&t, "condition 0: unknown kind 0");
    RESET(); c[0].kind = 7;
    expect_invalid(&t, "condition 0: unknown kind 7");
    RESET(); w[0].kind = 4;
    expect_invalid(&t, "write 0: unknown kind 4");
    RESET(); c[1].cmp = 0;
    expect_invalid(&t, "condition 1: comparison 0 is not one of");
    RESET(); c[1].cmp = 6;
    expect_invalid(&t, "condition 1: comparison 6 is not one of");
    RESET(); c[0].cmp = TXN_EQ;
    expect_invalid(&t, "condition 0: only a counter condition takes a comparison");
    RESET(); c[0].kind = TXN_COND_VALUE_EQ; c[0].value = (const uint8_t *)"x";
    c[0].value_len = OKV_MAX_VALUE_LEN + 1;
    expect_invalid(&t, "condition 0: value of 1048577 bytes is over the limit");
    RESET(); w[0].value_len = OKV_MAX_VALUE_LEN + 1;
    expect_invalid(&t, "write 0: value of 1048577 bytes is over the limit");
    RESET(); w[0].value = NULL;
    expect_invalid(&t, "write 0: value of 1 bytes is NULL");
    RESET(); w[0].has_floor = 1;
    expect_invalid(&t, "write 0: only an add takes a floor, and this is a put");
    RESET(); w[0] = wr(TXN_DELETE, ORDERS, "a"); w[0].has_floor = 1;
    expect_invalid(&t, "write 0: only an add takes a floor, and this is a delete");
#undef RESET
}

static void test_txn__validate_refuses_a_key_written_twice(void **state)
{
    (void)state;
    txn_write w[] = { put(ORDERS, "k1", "a"), put(ORDERS, "k2", "b"), add(ORDERS, "k1", 1) };
    txn t = TXN_WRITES(w);
    expect_invalid(&t, "write 2 writes orders key 'k1' again (write 0 wrote it): a transaction "
                       "writes a key at most once");
    /* A delete and a put of one key, in a table the catalog does not name. */
    txn_write x[] = { wr(TXN_DELETE, 77, "\x01z"), put(77, "\x01z", "") };
    txn u = TXN_WRITES(x);
    expect_invalid(&u, "write 1 writes table 77 key '\\x01z' again");
}

static void test_txn__validate_allows_repeated_keys_elsewhere(void **state)
{
    (void)state;
    /* Conditions may repeat keys and name written keys; the same user key
     * in another table or partition is another key. */
    txn_cond c[] = { cond(TXN_COND_EXISTS, ORDERS, "k"), cond(TXN_COND_VERSION_EQ, ORDERS, "k"),
                     cond(TXN_COND_EXISTS, ORDERS, "k") };
    txn_write w[] = { put(ORDERS, "k", "v"), put(ACCOUNTS, "k", "v"), put(ORDERS, "k2", "v") };
    c[1].version = 3;
    w[2].k.partition = 1;
    w[2].k.key_len = 1;   /* "k" in partition 1 */
    txn t = TXN_OF(c, w);
    okv_error err;
    assert_int_equal(txn_validate(&t, &err), OKV_OK);
    /* The largest key and value pass. */
    static char longkey[OKV_MAX_KEY_LEN];
    memset(longkey, 'k', sizeof longkey);
    uint8_t *big = calloc(1, OKV_MAX_VALUE_LEN);
    txn_write y[] = { put(ORDERS, "", "") };
    y[0].k.key = (const uint8_t *)longkey;
    y[0].k.key_len = OKV_MAX_KEY_LEN;
    y[0].value = big;
    y[0].value_len = OKV_MAX_VALUE_LEN;
    txn u = TXN_WRITES(y);
    assert_int_equal(txn_validate(&u, &err), OKV_OK);
    free(big);
}

/* ---- counters ------------------------------------------------------------ */

static void test_txn__counter_codec(void **state)
{
    (void)state;
    int64_t vals[] = { 0, 1, -1, 255, -256, INT64_MAX, INT64_MIN, INT64_MIN + 1 };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t b[TXN_COUNTER_LEN];
        int64_t v = 7;
        txn_counter_encode(vals[i], b);
        assert_int_equal(txn_counter_decode(b, sizeof b, &v), 0);
        assert_true(v == vals[i]);
    }
    uint8_t b[TXN_COUNTER_LEN + 1];
    txn_counter_encode(-2, b);
    assert_memory_equal(b, "\xff\xff\xff\xff\xff\xff\xff\xfe", 8);
    txn_counter_encode(INT64_MIN, b);
    assert_memory_equal(b, "\x80\0\0\0\0\0\0\0", 8);
    txn_counter_encode(0x0102030405060708LL, b);
    assert_memory_equal(b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    int64_t v;
    assert_int_equal(txn_counter_decode(b, 7, &v), -1);
    assert_int_equal(txn_counter_decode(b, 9, &v), -1);
    assert_int_equal(txn_counter_decode(b, 0, &v), -1);
}

/* ---- evaluation ---------------------------------------------------------- */

static void test_txn__eval_all_hold_stages_every_write(void **state)
{
    (void)state;
    mem m;
    memset(&m, 0, sizeof m);
    mem_put(&m, ORDERS, "o1", "new", 5);
    mem_put(&m, ORDERS, "o3", "x", 2);
    mem_counter(&m, ACCOUNTS, "acct/9", 100, 7);
    txn_cond c[] = { cond(TXN_COND_EXISTS, ORDERS, "o1"), cond(TXN_COND_ABSENT, ORDERS, "o2"),
                     cond(TXN_COND_VERSION_EQ, ORDERS, "o1"), cond(TXN_COND_VALUE_EQ, ORDERS, "o1"),
                     cond_int(ACCOUNTS, "acct/9", TXN_GE, 100) };
    c[2].version = 5;
    c[3].value = (const uint8_t *)"new";
    c[3].value_len = 3;
    txn_write w[] = { put(ORDERS, "o1", "shipped"), wr(TXN_DELETE, ORDERS, "o3"),
                      add_floor(ACCOUNTS, "acct/9", -30, 0), put(ORDERS, "o2", ""),
                      add(ACCOUNTS, "acct/10", 5), wr(TXN_DELETE, ORDERS, "never"),
                      put(ORDERS, "o5", "") };
    w[6].value = NULL;   /* an empty put may carry no pointer at all */
    txn t = TXN_OF(c, w);
    txn_store s = store_of(&m);
    txn_outcome o;
    okv_error err;
    assert_int_equal(txn_eval(&t, 42, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_OK);
    assert_int_equal(o.reason, TXN_FAIL_NONE);
    assert_int_equal(o.version, 42);
    assert_int_equal(m.writes, 7);

    txn_key k = K(ORDERS, "o1");
    entry *e = mem_find(&m, &k);
    assert_non_null(e);
    assert_int_equal(e->val_len, 7);
    assert_memory_equal(e->val, "shipped", 7);
    assert_int_equal(e->version, 42);
    k = K(ORDERS, "o3");
    assert_null(mem_find(&m, &k));
    assert_true(mem_get_counter(&m, ACCOUNTS, "acct/9") == 70);
    assert_true(mem_get_counter(&m, ACCOUNTS, "acct/10") == 5);
    k = K(ACCOUNTS, "acct/10");
    assert_int_equal(mem_find(&m, &k)->version, 42);
    /* An empty put is a put (of nothing), not a delete. */
    k = K(ORDERS, "o2");
    e = mem_find(&m, &k);
    assert_non_null(e);
    assert_int_equal(e->val_len, 0);
    assert_int_equal(e->version, 42);
    k = K(ORDERS, "o5");
    assert_non_null(mem_find(&m, &k));

    char msg[128];
    txn_outcome_describe(&t, &o, msg, sizeof msg);
    assert_string_equal(msg, "committed at version 42");
}

/* One condition at index 1, after one that holds, against a fixed store. */
typedef struct cond_case {
    txn_cond c;
    int code;
    uint8_t reason;
} cond_case;

static txn_cond with_version(txn_cond c, uint64_t v)
{
    c.version = v;
    return c;
}

static txn_cond with_value(txn_cond c, const char *v)
{
    c.value = (const uint8_t *)v;
    c.value_len = strlen(v);
    return c;
}

static void test_txn__eval_each_condition_kind(void **state)
{
    (void)state;
    const int OK = OKV_OK, NO = OKV_ECONDITION;
    const uint8_t N = TXN_FAIL_NONE, C = TXN_FAIL_CONDITION;
    cond_case cases[] = {
        { cond(TXN_COND_EXISTS, ORDERS, "s"), OK, N },
        { cond(TXN_COND_EXISTS, ORDERS, "nope"), NO, C },
        { cond(TXN_COND_EXISTS, ACCOUNTS, "s"), NO, C },   /* another table */
        { cond(TXN_COND_ABSENT, ORDERS, "nope"), OK, N },
        { cond(TXN_COND_ABSENT, ORDERS, "s"), NO, C },
        { cond(TXN_COND_ABSENT, ORDERS, "e"), NO, C },     /* empty is not absent */
        { with_version(cond(TXN_COND_VERSION_EQ, ORDERS, "s"), 3), OK, N },
        { with_version(cond(TXN_COND_VERSION_EQ, ORDERS, "s"), 4), NO, C },
        { with_version(cond(TXN_COND_VERSION_EQ, ORDERS, "nope"), 0), NO, C },
        { with_version(cond(TXN_COND_VERSION_EQ, ORDERS, "nope"), 1), NO, C },
        { with_value(cond(TXN_COND_VALUE_EQ, ORDERS, "s"), "abc"), OK, N },
        { with_value(cond(TXN_COND_VALUE_EQ, ORDERS, "s"), "abd"), NO, C },
        { with_value(cond(TXN_COND_VALUE_EQ, ORDERS, "s"), "ab"), NO, C },
        { with_value(cond(TXN_COND_VALUE_EQ, ORDERS, "s"), "abcd"), NO, C },
        { with_value(cond(TXN_COND_VALUE_EQ, ORDERS, "e"), ""), OK, N },
        { with_value(cond(TXN_COND_VALUE_EQ, ORDERS, "nope"), ""), NO, C },
        { cond_int(ORDERS, "c", TXN_LT, 11), OK, N },
        { cond_int(ORDERS, "c", TXN_LT, 10), NO, C },
        { cond_int(ORDERS, "c", TXN_LE, 10), OK, N },
        { cond_int(ORDERS, "c", TXN_LE, 9), NO, C },
        { cond_int(ORDERS, "c", TXN_EQ, 10), OK, N },
        { cond_int(ORDERS, "c", TXN_EQ, 11), NO, C },
        { cond_int(ORDERS, "c", TXN_GE, 10), OK, N },
        { cond_int(ORDERS, "c", TXN_GE, 11), NO, C },
        { cond_int(ORDERS, "c", TXN_GT, 9), OK, N },
        { cond_int(ORDERS, "c", TXN_GT, 10), NO, C },
        { cond_int(ORDERS, "neg", TXN_LT, 0), OK, N },
        { cond_int(ORDERS, "neg", TXN_GT, INT64_MIN), NO, C },   /* it is INT64_MIN */
        { cond_int(ORDERS, "nope", TXN_EQ, 0), NO, C },          /* absent: does not hold */
        { cond_int(ORDERS, "s", TXN_EQ, 0), OKV_EINVAL, TXN_FAIL_NOT_COUNTER },
        { cond_int(ORDERS, "e", TXN_GE, 0), OKV_EINVAL, TXN_FAIL_NOT_COUNTER },
        { cond_int(ORDERS, "nine", TXN_GE, 0), OKV_EINVAL, TXN_FAIL_NOT_COUNTER },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mem m;
        memset(&m, 0, sizeof m);
        mem_put(&m, ORDERS, "s", "abc", 3);
        mem_put(&m, ORDERS, "e", "", 4);
        mem_put(&m, ORDERS, "nine", "123456789", 5);
        mem_counter(&m, ORDERS, "c", 10, 6);
        mem_counter(&m, ORDERS, "neg", INT64_MIN, 6);
        txn_cond c[] = { cond(TXN_COND_EXISTS, ORDERS, "c"), cases[i].c };
        txn_write w[] = { put(ORDERS, "w", "1") };
        txn t = TXN_OF(c, w);
        txn_store s = store_of(&m);
        txn_outcome o;
        okv_error err;
        assert_int_equal(txn_eval(&t, 9, &s, &o, &err), OKV_OK);
        if (o.code != cases[i].code || o.reason != cases[i].reason)
            fail_msg("case %zu: code %d reason %u, want %d %u", i, o.code, o.reason,
                     cases[i].code, cases[i].reason);
        txn_key wk = K(ORDERS, "w");
        if (cases[i].code == OKV_OK) {
            assert_int_equal(o.version, 9);
            assert_non_null(mem_find(&m, &wk));
        } else {
            assert_int_equal(o.failed, 1);
            assert_int_equal(o.version, 0);
            assert_int_equal(m.writes, 0);
            assert_null(mem_find(&m, &wk));
        }
    }
}

static void test_txn__eval_first_failing_condition_stops(void **state)
{
    (void)state;
    mem m;
    memset(&m, 0, sizeof m);
    mem_put(&m, ORDERS, "s", "abc", 3);
    txn_cond c[] = { cond(TXN_COND_EXISTS, ORDERS, "s"), cond(TXN_COND_ABSENT, ORDERS, "s"),
                     cond(TXN_COND_EXISTS, ORDERS, "nope") };
    txn_write w[] = { add(ORDERS, "n", 1) };
    txn t = TXN_OF(c, w);
    txn_store s = store_of(&m);
    txn_outcome o;
    okv_error err;
    assert_int_equal(txn_eval(&t, 9, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_ECONDITION);
    assert_int_equal(o.failed, 1);
    assert_int_equal(m.reads, 2);   /* neither condition 2 nor the add was read */
    assert_int_equal(m.writes, 0);

    /* A counter condition on a non-counter stops it the same way. */
    c[0] = cond_int(ORDERS, "s", TXN_EQ, 1);
    m.reads = 0;
    assert_int_equal(txn_eval(&t, 9, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_EINVAL);
    assert_int_equal(o.reason, TXN_FAIL_NOT_COUNTER);
    assert_int_equal(o.failed, 0);
    assert_int_equal(m.reads, 1);
    assert_int_equal(m.writes, 0);
}

static void test_txn__eval_floor_failure_leaves_store_untouched(void **state)
{
    (void)state;
    mem m;
    memset(&m, 0, sizeof m);
    mem_counter(&m, ACCOUNTS, "acct/9", 480, 7);
    mem_put(&m, ORDERS, "o1", "new", 5);
    mem before;
    memcpy(&before, &m, sizeof m);
    txn_cond c[] = { cond(TXN_COND_EXISTS, ORDERS, "o1") };
    txn_write w[] = { put(ORDERS, "o1", "paid"), add_floor(ACCOUNTS, "acct/9", -500, 0),
                      add(ACCOUNTS, "acct/10", 5) };
    txn t = TXN_OF(c, w);
    txn_store s = store_of(&m);
    txn_outcome o;
    okv_error err;
    assert_int_equal(txn_eval(&t, 50, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_ECONDITION);
    assert_int_equal(o.reason, TXN_FAIL_FLOOR);
    assert_int_equal(o.failed, 2);   /* 1 condition + write 1 */
    assert_int_equal(m.writes, 0);
    assert_int_equal(m.n, before.n);
    assert_memory_equal(m.e, before.e, sizeof m.e);
    char msg[200];
    txn_outcome_describe(&t, &o, msg, sizeof msg);
    assert_string_equal(msg, "write 1 (add -500, floor 0) would leave key 'acct/9' below its "
                             "floor");

    /* Landing exactly on the floor is allowed; without a floor, anything. */
    w[1].delta = -480;
    assert_int_equal(txn_eval(&t, 51, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_OK);
    assert_true(mem_get_counter(&m, ACCOUNTS, "acct/9") == 0);
    w[1].has_floor = 0;
    w[1].delta = -1;
    assert_int_equal(txn_eval(&t, 52, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_OK);
    assert_true(mem_get_counter(&m, ACCOUNTS, "acct/9") == -1);
    /* A positive add that stays below the floor still fails. */
    w[1].has_floor = 1;
    w[1].delta = 1;
    w[1].floor = 5;
    assert_int_equal(txn_eval(&t, 53, &s, &o, &err), OKV_OK);
    assert_int_equal(o.reason, TXN_FAIL_FLOOR);
    assert_true(mem_get_counter(&m, ACCOUNTS, "acct/9") == -1);
}

static void test_txn__eval_overflow(void **state)
{
    (void)state;
    struct { int64_t have, delta; int ok; } cases[] = {
        { INT64_MAX, 1, 0 },
        { INT64_MAX - 1, 1, 1 },
        { INT64_MIN, -1, 0 },
        { INT64_MIN + 1, -1, 1 },
        { 0, INT64_MIN, 1 },
        { -1, INT64_MIN, 0 },
        { INT64_MAX, INT64_MIN, 1 },
        { 1, INT64_MAX, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mem m;
        memset(&m, 0, sizeof m);
        mem_counter(&m, ACCOUNTS, "a", cases[i].have, 1);
        txn_write w[] = { put(ORDERS, "x", "y"), add(ACCOUNTS, "a", cases[i].delta) };
        txn t = TXN_WRITES(w);
        txn_store s = store_of(&m);
        txn_outcome o;
        okv_error err;
        assert_int_equal(txn_eval(&t, 2, &s, &o, &err), OKV_OK);
        if (cases[i].ok) {
            assert_int_equal(o.code, OKV_OK);
            assert_true(mem_get_counter(&m, ACCOUNTS, "a") == cases[i].have + cases[i].delta);
        } else {
            assert_int_equal(o.code, OKV_EINVAL);
            assert_int_equal(o.reason, TXN_FAIL_OVERFLOW);
            assert_int_equal(o.failed, 1);
            assert_int_equal(m.writes, 0);
            assert_true(mem_get_counter(&m, ACCOUNTS, "a") == cases[i].have);
        }
    }
}

static void test_txn__eval_add_to_absent_starts_from_zero(void **state)
{
    (void)state;
    mem m;
    memset(&m, 0, sizeof m);
    txn_write w[] = { add(ACCOUNTS, "new", -7) };
    txn t = TXN_WRITES(w);
    txn_store s = store_of(&m);
    txn_outcome o;
    okv_error err;
    assert_int_equal(txn_eval(&t, 3, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_OK);
    assert_true(mem_get_counter(&m, ACCOUNTS, "new") == -7);
    /* With a floor of 0, a debit of an absent account fails. */
    txn_write x[] = { add_floor(ACCOUNTS, "other", -1, 0) };
    txn u = TXN_WRITES(x);
    assert_int_equal(txn_eval(&u, 4, &s, &o, &err), OKV_OK);
    assert_int_equal(o.reason, TXN_FAIL_FLOOR);
    assert_int_equal(o.failed, 0);
    txn_key k = K(ACCOUNTS, "other");
    assert_null(mem_find(&m, &k));
    /* An add of INT64_MIN to nothing is INT64_MIN. */
    x[0].has_floor = 0;
    x[0].delta = INT64_MIN;
    assert_int_equal(txn_eval(&u, 5, &s, &o, &err), OKV_OK);
    assert_true(mem_get_counter(&m, ACCOUNTS, "other") == INT64_MIN);
}

static void test_txn__eval_add_to_a_non_counter(void **state)
{
    (void)state;
    mem m;
    memset(&m, 0, sizeof m);
    mem_put(&m, ACCOUNTS, "a", "1234567", 2);   /* 7 bytes */
    txn_write w[] = { put(ORDERS, "x", "y"), add(ACCOUNTS, "a", 1) };
    txn t = TXN_WRITES(w);
    txn_store s = store_of(&m);
    txn_outcome o;
    okv_error err;
    assert_int_equal(txn_eval(&t, 3, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_EINVAL);
    assert_int_equal(o.reason, TXN_FAIL_NOT_COUNTER);
    assert_int_equal(o.failed, 1);
    assert_int_equal(m.writes, 0);
}

static void test_txn__eval_delete(void **state)
{
    (void)state;
    mem m;
    memset(&m, 0, sizeof m);
    mem_put(&m, ORDERS, "o1", "x", 2);
    txn_cond c[] = { with_version(cond(TXN_COND_VERSION_EQ, ORDERS, "o1"), 2) };
    txn_write w[] = { wr(TXN_DELETE, ORDERS, "o1"), wr(TXN_DELETE, ORDERS, "absent") };
    txn t = TXN_OF(c, w);
    txn_store s = store_of(&m);
    txn_outcome o;
    okv_error err;
    assert_int_equal(txn_eval(&t, 8, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_OK);
    assert_int_equal(m.writes, 2);
    assert_int_equal(m.n, 0);
    /* The same transaction again: the version condition no longer holds. */
    assert_int_equal(txn_eval(&t, 9, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_ECONDITION);
    assert_int_equal(m.writes, 2);
}

static void test_txn__eval_lock_conflict_wins_and_writes_nothing(void **state)
{
    (void)state;
    mem m;
    memset(&m, 0, sizeof m);
    mem_put(&m, ORDERS, "s", "abc", 3);
    m.locked[m.n_locked++] = "w2";
    /* Condition 0 would fail and the add would overflow: the lock wins. */
    txn_cond c[] = { cond(TXN_COND_ABSENT, ORDERS, "s") };
    txn_write w[] = { put(ORDERS, "w1", "v"), put(ORDERS, "w2", "v"),
                      add(ORDERS, "s", INT64_MAX) };
    txn t = TXN_OF(c, w);
    txn_store s = store_of(&m);
    txn_outcome o;
    okv_error err;
    assert_int_equal(txn_eval(&t, 4, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_ECONFLICT);
    assert_int_equal(o.reason, TXN_FAIL_LOCKED);
    assert_int_equal(o.failed, 2);   /* 1 condition + write 1 */
    assert_int_equal(m.reads, 0);
    assert_int_equal(m.writes, 0);
    char msg[128];
    txn_outcome_describe(&t, &o, msg, sizeof msg);
    assert_string_equal(msg, "key 'w2' is locked by another transaction (retry)");

    /* A condition's key is checked too, before the writes' keys. */
    m.locked[m.n_locked++] = "s";
    assert_int_equal(txn_eval(&t, 4, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_ECONFLICT);
    assert_int_equal(o.failed, 0);

    /* No lock callback: no locks. */
    s.locked = NULL;
    assert_int_equal(txn_eval(&t, 4, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_ECONDITION);
    assert_int_equal(o.failed, 0);
}

static void test_txn__eval_read_error_propagates(void **state)
{
    (void)state;
    mem m;
    memset(&m, 0, sizeof m);
    m.read_rc = OKV_EIO;
    m.read_sets_err = 1;
    /* The put comes first, but nothing is staged before every read. */
    txn_write w[] = { put(ORDERS, "w", "v"), add(ACCOUNTS, "a\x01", 1) };
    txn t = TXN_WRITES(w);
    txn_store s = store_of(&m);
    txn_outcome o;
    okv_error err;
    assert_int_equal(txn_eval(&t, 4, &s, &o, &err), OKV_EIO);
    assert_int_equal(err.code, OKV_EIO);
    assert_string_equal(err.msg, "disk on fire");
    assert_int_equal(o.code, OKV_EIO);
    assert_int_equal(m.writes, 0);
    /* A store that gives no message gets one naming the key. */
    m.read_sets_err = 0;
    assert_int_equal(txn_eval(&t, 4, &s, &o, &err), OKV_EIO);
    assert_int_equal(err.code, OKV_EIO);
    has(err.msg, "reading key 'a\\x01' failed");
    /* The same from a condition. */
    txn_cond c[] = { cond(TXN_COND_EXISTS, ORDERS, "c") };
    txn u = TXN_OF(c, w);
    assert_int_equal(txn_eval(&u, 4, &s, &o, &err), OKV_EIO);
    assert_int_equal(m.writes, 0);
}

static void test_txn__eval_write_error_propagates(void **state)
{
    (void)state;
    mem m;
    memset(&m, 0, sizeof m);
    m.write_rc = OKV_ENOMEM;
    txn_write w[] = { put(ORDERS, "w", "v"), add(ACCOUNTS, "a", 1) };
    txn t = TXN_WRITES(w);
    txn_store s = store_of(&m);
    txn_outcome o;
    okv_error err;
    assert_int_equal(txn_eval(&t, 4, &s, &o, &err), OKV_ENOMEM);
    assert_int_equal(err.code, OKV_ENOMEM);
    has(err.msg, "staging write 0 failed");
    assert_int_equal(o.code, OKV_ENOMEM);
    assert_int_equal(m.writes, 1);   /* it stopped at the first */
}

/* ---- describing outcomes --------------------------------------------------- */

/* ---- range conditions (what a scan saw) ----------------------------------- */

static txn_cond range_cond(uint32_t table, const char *lo, const char *hi, int64_t count,
                           uint64_t digest)
{
    txn_cond c = cond(TXN_COND_RANGE, table, lo);
    c.value = (const uint8_t *)hi;
    c.value_len = strlen(hi);
    c.num = count;
    c.version = digest;
    return c;
}

/* The digest of the keys (each at its version) as a scan computes it. */
static uint64_t digest_of(const char *const *keys, const uint64_t *versions, size_t n)
{
    uint64_t h = OKV_RANGE_DIGEST_INIT;
    for (size_t i = 0; i < n; i++)
        h = okv_range_digest_add(h, keys[i], strlen(keys[i]), versions[i]);
    return h;
}

static void test_txn__range_codec_and_validation(void **state)
{
    (void)state;
    /* Open bounds both ways; the bytes round trip. */
    txn_cond c[] = { range_cond(ORDERS, "", "", 0, OKV_RANGE_DIGEST_INIT),
                     range_cond(ORDERS, "c1/", "c1/\xff", 3, 0x0102030405060708ULL),
                     range_cond(ORDERS, "a", "", INT64_MAX, 0) };
    txn_write w[] = { put(ORDERS, "c1/x", "v") };
    txn t = TXN_OF(c, w);
    okv_error err;
    assert_int_equal(txn_validate(&t, &err), OKV_OK);
    size_t len;
    uint8_t *buf = encode(&t, &len);
    txn d;
    assert_int_equal(txn_decode(buf, len, &d, &err), OKV_OK);
    assert_int_equal(d.n_conds, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(d.conds[i].kind, TXN_COND_RANGE);
        assert_int_equal(d.conds[i].k.key_len, c[i].k.key_len);
        assert_int_equal(d.conds[i].value_len, c[i].value_len);
        assert_int_equal(d.conds[i].num, c[i].num);
        assert_true(d.conds[i].version == c[i].version);
    }
    assert_memory_equal(d.conds[1].value, "c1/\xff", 4);
    uint8_t *again = malloc(len);
    assert_non_null(again);
    txn_encode(&d, again);
    assert_memory_equal(again, buf, len);
    free(again);
    txn_clear(&d);
    for (size_t n = 0; n < len; n++)   /* every truncation */
        assert_int_equal(decode_n(buf, n, &err), OKV_ECORRUPT);
    free(buf);

    /* start >= end, a negative count, an over-long bound: refused. */
    txn_cond bad[] = { range_cond(ORDERS, "b", "a", 0, 0), range_cond(ORDERS, "b", "b", 0, 0),
                       range_cond(ORDERS, "a", "b", -1, 0) };
    for (size_t i = 0; i < 3; i++) {
        txn one = { 1, &bad[i], 1, w };
        okv_error_clear(&err);
        assert_int_equal(txn_validate(&one, &err), OKV_EINVAL);
        has(err.msg, "condition 0");
    }
    static uint8_t longkey[TXN_RANGE_BOUND_MAX + 1];
    txn_cond lng = range_cond(ORDERS, "a", "", 0, 0);
    lng.value = longkey;
    lng.value_len = sizeof longkey;
    txn one = { 1, &lng, 1, w };
    assert_int_equal(txn_validate(&one, &err), OKV_EINVAL);
    has(err.msg, "over the limit");
}

static void test_txn__range_holds_until_the_range_changes(void **state)
{
    (void)state;
    mem m;
    memset(&m, 0, sizeof m);
    mem_put(&m, ORDERS, "c1/o/1", "a", 10);
    mem_put(&m, ORDERS, "c1/o/2", "b", 11);
    mem_put(&m, ORDERS, "c2/o/1", "c", 12);   /* outside [c1/, c1/\xff) */
    const char *keys[] = { "c1/o/1", "c1/o/2" };
    uint64_t vers[] = { 10, 11 };
    uint64_t dg = digest_of(keys, vers, 2);
    txn_store s = store_of(&m);
    txn_outcome o;
    okv_error err;
    txn_cond c[] = { range_cond(ORDERS, "c1/", "c1/\xff", 2, dg) };
    txn_write w[] = { put(ORDERS, "c1/o/3", "new") };
    txn t = TXN_OF(c, w);

    /* Unchanged (outside writes do not count): holds, the write applies. */
    mem_put(&m, ORDERS, "c2/o/2", "d", 13);
    assert_int_equal(txn_eval(&t, 20, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_OK);
    assert_int_equal(m.writes, 1);

    /* Now c1/o/3 is there: a phantom for the same condition. */
    assert_int_equal(txn_eval(&t, 21, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_ECONDITION);
    assert_int_equal(o.failed, 0);
    assert_int_equal(o.reason, TXN_FAIL_CONDITION);

    /* A new version of a key in range, or a delete: changed too. */
    const char *k3[] = { "c1/o/1", "c1/o/2", "c1/o/3" };
    uint64_t v3[] = { 10, 11, 20 };
    c[0].num = 3;
    c[0].version = digest_of(k3, v3, 3);
    txn check = { 1, c, 0, NULL };
    assert_int_equal(txn_eval(&check, 22, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_OK);
    mem_put(&m, ORDERS, "c1/o/2", "b2", 23);
    assert_int_equal(txn_eval(&check, 24, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_ECONDITION);
    v3[1] = 23;
    c[0].version = digest_of(k3, v3, 3);
    assert_int_equal(txn_eval(&check, 25, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_OK);
    txn_key gone = K(ORDERS, "c1/o/1");
    assert_int_equal(mem_write(&m, &gone, NULL, 0, 26, &err), OKV_OK);
    assert_int_equal(txn_eval(&check, 27, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_ECONDITION);

    /* An empty range is (0, INIT); the open range counts the partition. */
    txn_cond none[] = { range_cond(ORDERS, "c9/", "c9/\xff", 0, OKV_RANGE_DIGEST_INIT) };
    txn tn = { 1, none, 0, NULL };
    assert_int_equal(txn_eval(&tn, 28, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_OK);
    txn_cond all[] = { range_cond(ORDERS, "", "", 4, 0) };
    txn ta = { 1, all, 0, NULL };
    assert_int_equal(txn_eval(&ta, 29, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_ECONDITION);   /* 4 keys, another digest */

    /* An exclusive lock in the range: a conflict before any condition. */
    m.locked[m.n_locked++] = "c1/o/9";
    size_t writes = m.writes;
    assert_int_equal(txn_eval(&t, 30, &s, &o, &err), OKV_OK);
    assert_int_equal(o.code, OKV_ECONFLICT);
    assert_int_equal(o.reason, TXN_FAIL_LOCKED);
    assert_int_equal(m.writes, writes);

    /* A store that cannot walk ranges (2PC's) refuses the condition. */
    s.range = NULL;
    okv_error_clear(&err);
    assert_int_equal(txn_eval(&check, 31, &s, &o, &err), OKV_EINVAL);
    has(err.msg, "range condition");

    char msg[256];
    txn_outcome f = { OKV_ECONDITION, TXN_FAIL_CONDITION, 0, 0 };
    txn_outcome_describe(&t, &f, msg, sizeof msg);
    has(msg, "range up to 'c1/\\xff' unchanged, 3 keys");
}

static void test_txn__describe_each_reason(void **state)
{
    (void)state;
    txn_cond c[] = { cond_int(ACCOUNTS, "acct/9", TXN_GE, 5),
                     with_value(cond(TXN_COND_VALUE_EQ, ORDERS, "o1"), "paid"),
                     with_version(cond(TXN_COND_VERSION_EQ, ORDERS, "k1"), 17),
                     cond(TXN_COND_ABSENT, ORDERS, "o9") };
    txn_write w[] = { add(ACCOUNTS, "acct/1", 5), add_floor(ACCOUNTS, "acct/9", -500, 0),
                      wr(TXN_DELETE, ORDERS, "o1") };
    txn t = TXN_OF(c, w);
    struct { txn_outcome o; const char *want; } cases[] = {
        { { OKV_OK, TXN_FAIL_NONE, 0, 42 }, "committed at version 42" },
        { { OKV_ECONDITION, TXN_FAIL_CONDITION, 2, 0 },
          "condition 2 (version == 17) did not hold on key 'k1'" },
        { { OKV_ECONDITION, TXN_FAIL_CONDITION, 1, 0 },
          "condition 1 (value == 'paid') did not hold on key 'o1'" },
        { { OKV_ECONDITION, TXN_FAIL_CONDITION, 0, 0 },
          "condition 0 (counter >= 5) did not hold on key 'acct/9'" },
        { { OKV_ECONDITION, TXN_FAIL_CONDITION, 3, 0 },
          "condition 3 (absent) did not hold on key 'o9'" },
        { { OKV_ECONDITION, TXN_FAIL_FLOOR, 5, 0 },
          "write 1 (add -500, floor 0) would leave key 'acct/9' below its floor" },
        { { OKV_EINVAL, TXN_FAIL_NOT_COUNTER, 0, 0 },
          "condition 0 (counter >= 5): key 'acct/9' holds a value that is not a counter (an "
          "8-byte integer)" },
        { { OKV_EINVAL, TXN_FAIL_NOT_COUNTER, 4, 0 },
          "write 0 (add 5): key 'acct/1' holds a value that is not a counter (an 8-byte "
          "integer)" },
        { { OKV_EINVAL, TXN_FAIL_OVERFLOW, 4, 0 },
          "write 0 (add 5) would take the counter at key 'acct/1' past the 64-bit range" },
        { { OKV_ECONFLICT, TXN_FAIL_LOCKED, 6, 0 },
          "key 'o1' is locked by another transaction (retry)" },
        /* Not from this transaction: still a message. */
        { { OKV_ECONDITION, TXN_FAIL_CONDITION, 99, 0 }, "item 99 did not hold on a key" },
        { { OKV_EINVAL, 77, 0, 0 }, "transaction failed: invalid argument" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[256];
        txn_outcome_describe(&t, &cases[i].o, msg, sizeof msg);
        if (strcmp(msg, cases[i].want) != 0)
            fail_msg("case %zu: \"%s\", want \"%s\"", i, msg, cases[i].want);
    }
    char msg[64];
    txn_outcome o = { OKV_ECONFLICT, TXN_FAIL_LOCKED, 0, 0 };
    txn_outcome_describe(NULL, &o, msg, sizeof msg);
    assert_string_equal(msg, "a key is locked by another transaction (retry)");
}

static void test_txn__describe_prints_keys_safely(void **state)
{
    (void)state;
    static const uint8_t odd[] = { 'a', 0, 0xff, '\'', '\\', '\n', '~' };
    txn_cond c[] = { cond(TXN_COND_EXISTS, ORDERS, "x") };
    c[0].k.key = odd;
    c[0].k.key_len = sizeof odd;
    txn_write w[] = { put(ORDERS, "y", "") };
    txn t = TXN_OF(c, w);
    txn_outcome o = { OKV_ECONDITION, TXN_FAIL_CONDITION, 0, 0 };
    char msg[256];
    txn_outcome_describe(&t, &o, msg, sizeof msg);
    assert_string_equal(msg, "condition 0 (exists) did not hold on key 'a\\x00\\xff\\'\\\\\\x0a~'");

    /* A long key is cut at 64 bytes. */
    char longkey[300];
    memset(longkey, 'x', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    c[0].k = K(ORDERS, longkey);
    txn_outcome_describe(&t, &o, msg, sizeof msg);
    char want[128];
    snprintf(want, sizeof want, "condition 0 (exists) did not hold on key '%.64s...'", longkey);
    assert_string_equal(msg, want);

    /* Every cap: NUL-terminated, a prefix of the whole, nothing past cap. */
    char full[256];
    txn_outcome_describe(&t, &o, full, sizeof full);
    for (size_t cap = 1; cap <= strlen(full) + 1; cap++) {
        char buf[300];
        memset(buf, '#', sizeof buf);
        txn_outcome_describe(&t, &o, buf, cap);
        assert_int_equal(strlen(buf), cap - 1);
        assert_memory_equal(buf, full, cap - 1);
        assert_int_equal(buf[cap], '#');
    }
    /* cap 0 writes nothing. */
    char one = '#';
    txn_outcome_describe(&t, &o, &one, 0);
    assert_int_equal(one, '#');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txn__roundtrip_every_kind),
        cmocka_unit_test(test_txn__encoding_is_the_documented_layout),
        cmocka_unit_test(test_txn__every_truncation_is_refused),
        cmocka_unit_test(test_txn__trailing_bytes_are_refused),
        cmocka_unit_test(test_txn__decode_accepts_no_writes),
        cmocka_unit_test(test_txn__malformed_fields_are_refused),
        cmocka_unit_test(test_txn__bad_comparisons_and_add_flags_are_refused),
        cmocka_unit_test(test_txn__random_mutations_never_crash),
        cmocka_unit_test(test_txn__validate_refuses_bad_counts),
        cmocka_unit_test(test_txn__validate_refuses_bad_items),
        cmocka_unit_test(test_txn__validate_refuses_a_key_written_twice),
        cmocka_unit_test(test_txn__validate_allows_repeated_keys_elsewhere),
        cmocka_unit_test(test_txn__counter_codec),
        cmocka_unit_test(test_txn__eval_all_hold_stages_every_write),
        cmocka_unit_test(test_txn__eval_each_condition_kind),
        cmocka_unit_test(test_txn__eval_first_failing_condition_stops),
        cmocka_unit_test(test_txn__eval_floor_failure_leaves_store_untouched),
        cmocka_unit_test(test_txn__eval_overflow),
        cmocka_unit_test(test_txn__eval_add_to_absent_starts_from_zero),
        cmocka_unit_test(test_txn__eval_add_to_a_non_counter),
        cmocka_unit_test(test_txn__eval_delete),
        cmocka_unit_test(test_txn__eval_lock_conflict_wins_and_writes_nothing),
        cmocka_unit_test(test_txn__range_codec_and_validation),
        cmocka_unit_test(test_txn__range_holds_until_the_range_changes),
        cmocka_unit_test(test_txn__eval_read_error_propagates),
        cmocka_unit_test(test_txn__eval_write_error_propagates),
        cmocka_unit_test(test_txn__describe_each_reason),
        cmocka_unit_test(test_txn__describe_prints_keys_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
