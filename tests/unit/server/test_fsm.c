/* The partition state machine over a real RocksDB: versions are Raft
 * indexes, conditions, exactly-once through the dedup table and watermarks,
 * read-your-batch through the overlay, atomicity of data + applied index,
 * and determinism whatever the flush points. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "keycodec.h"
#include "okv_test.h"
#include "range_digest.h"
#include "tpc.h"
#include "txn.h"

#define T 1u   /* table orders */
#define P 3u   /* partition */

typedef struct fx {
    char *dir;
    engine *e;
    fsm *f;
} fx;

static void open_fx(fx *x)
{
    okv_error err;
    assert_int_equal(engine_open(&x->e, x->dir, NULL, &err), OKV_OK);
    assert_int_equal(fsm_new(&x->f, x->e, &err), OKV_OK);
}

static void close_fx(fx *x)
{
    fsm_free(x->f);
    engine_close(x->e);
}

static int setup(void **state)
{
    fx *x = calloc(1, sizeof *x);
    x->dir = okv_test_tmpdir("fsm");
    open_fx(x);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    close_fx(x);
    okv_test_rmtree(x->dir);
    free(x->dir);
    free(x);
    return 0;
}

typedef struct cmd_spec {
    uint8_t op;
    const char *key;
    const char *value;
    int check;
    uint64_t expected;
    uint64_t client, req, watermark;
} cmd_spec;

static command_result apply(fsm *f, uint64_t index, cmd_spec s)
{
    command c;
    memset(&c, 0, sizeof c);
    c.op = s.op;
    c.table_id = T;
    c.partition = P;
    c.key = (const uint8_t *)s.key;
    c.key_len = strlen(s.key);
    c.value = (const uint8_t *)(s.value ? s.value : "");
    c.value_len = s.value ? strlen(s.value) : 0;
    c.check_version = s.check;
    c.expected_version = s.expected;
    c.client_id = s.client;
    c.request_id = s.req;
    c.watermark = s.watermark;
    uint8_t buf[2048];
    command_encode(&c, buf);
    command_result r;
    okv_error err;
    int rc = fsm_apply(f, fsm_group_id(T, P), index, buf, command_encoded_size(&c), &r, &err);
    if (rc)
        fail_msg("apply %llu: %s", (unsigned long long)index, err.msg);
    return r;
}

/* The value and version as applied; version 0 if absent. */
static uint64_t version_of(fsm *f, const char *key, char *val_out)
{
    uint8_t *v = NULL;
    size_t len = 0;
    uint64_t ver = 0;
    okv_error err;
    int rc = fsm_get(f, T, P, (const uint8_t *)key, strlen(key), &v, &len, &ver, &err);
    if (rc == OKV_ENOTFOUND)
        return 0;
    assert_int_equal(rc, OKV_OK);
    if (val_out) {
        memcpy(val_out, v, len);
        val_out[len] = '\0';
    }
    free(v);
    return ver;
}

static void flush(fsm *f)
{
    okv_error err;
    assert_int_equal(fsm_flush(f, &err), OKV_OK);
}

static void test_fsm__version_is_the_raft_index(void **state)
{
    fx *x = *state;
    command_result r = apply(x->f, 17, (cmd_spec){ CMD_PUT, "k", "v1", 0, 0, 0, 0, 0 });
    assert_int_equal(r.code, OKV_OK);
    assert_int_equal(r.version, 17);
    assert_false(r.existed);
    char v[64];
    assert_int_equal(version_of(x->f, "k", v), 17);   /* visible in the batch */
    flush(x->f);
    assert_int_equal(version_of(x->f, "k", v), 17);   /* and after the flush */
    assert_string_equal(v, "v1");
    r = apply(x->f, 18, (cmd_spec){ CMD_DELETE, "k", NULL, 0, 0, 0, 0, 0 });
    assert_true(r.existed);
    assert_int_equal(version_of(x->f, "k", NULL), 0);
}

static void test_fsm__conditions_see_earlier_entries_of_the_same_batch(void **state)
{
    fx *x = *state;
    apply(x->f, 5, (cmd_spec){ CMD_PUT, "acct", "100", 1, 0, 0, 0, 0 });
    /* Not flushed: the overlay must answer. */
    command_result r = apply(x->f, 6, (cmd_spec){ CMD_PUT, "acct", "90", 1, 5, 0, 0, 0 });
    assert_int_equal(r.code, OKV_OK);
    r = apply(x->f, 7, (cmd_spec){ CMD_PUT, "acct", "80", 1, 5, 0, 0, 0 });
    assert_int_equal(r.code, OKV_ECONFLICT);
    assert_int_equal(r.version, 0);
    flush(x->f);
    char v[64];
    assert_int_equal(version_of(x->f, "acct", v), 6);
    assert_string_equal(v, "90");
}

static void test_fsm__a_retried_request_applies_once(void **state)
{
    fx *x = *state;
    command_result a = apply(x->f, 10, (cmd_spec){ CMD_PUT, "pay", "first", 0, 0, 7, 1, 0 });
    flush(x->f);
    /* The same (client, request) again, as after a client retry whose first
     * attempt did commit: the first result, and no second effect. */
    command_result b = apply(x->f, 11, (cmd_spec){ CMD_PUT, "pay", "second", 0, 0, 7, 1, 0 });
    assert_int_equal(b.code, a.code);
    assert_int_equal(b.version, 10);
    char v[64];
    assert_int_equal(version_of(x->f, "pay", v), 10);
    assert_string_equal(v, "first");
    /* A conflict result is remembered too. */
    command_result c = apply(x->f, 12, (cmd_spec){ CMD_PUT, "pay", "x", 1, 99, 7, 2, 0 });
    assert_int_equal(c.code, OKV_ECONFLICT);
    apply(x->f, 13, (cmd_spec){ CMD_PUT, "pay", "y", 0, 0, 0, 0, 0 });
    command_result d = apply(x->f, 14, (cmd_spec){ CMD_PUT, "pay", "x", 1, 13, 7, 2, 0 });
    assert_int_equal(d.code, OKV_ECONFLICT);
    /* Another client with the same request id is another request. */
    command_result e = apply(x->f, 15, (cmd_spec){ CMD_PUT, "pay", "z", 0, 0, 8, 1, 0 });
    assert_int_equal(e.version, 15);
}

/* Records are dropped below the last FSM_DEDUP_GC_STEP boundary the
 * watermark passed; anything below the watermark itself is refused. */
static void test_fsm__watermark_drops_records_and_refuses_stale_ids(void **state)
{
    fx *x = *state;
    const uint64_t s0 = FSM_DEDUP_GC_STEP;
    for (uint64_t req = s0 - 2; req <= s0 + 2; req++) {
        char key[16];
        snprintf(key, sizeof key, "w%llu", (unsigned long long)req);
        apply(x->f, 100 + req, (cmd_spec){ CMD_PUT, key, "v", 0, 0, 9, req, 0 });
    }
    flush(x->f);
    /* Request s0+3 says: answers for every id below s0+1 have arrived. */
    apply(x->f, 100 + s0 + 3, (cmd_spec){ CMD_PUT, "w-last", "v", 0, 0, 9, s0 + 3, s0 + 1 });
    flush(x->f);
    /* Records below the step boundary s0 are gone from disk; s0.. remain. */
    uint8_t lo[25] = { 'D' }, hi[25] = { 'D' };
    keycodec_put_u64be(lo + 1, fsm_group_id(T, P));
    keycodec_put_u64be(lo + 9, 9);
    memcpy(hi, lo, 17);
    keycodec_put_u64be(hi + 17, UINT64_MAX);
    engine_iter *it;
    okv_error err;
    assert_int_equal(engine_iter_new(&it, x->e, ENGINE_CF_META, lo, sizeof lo, hi, sizeof hi, &err),
                     OKV_OK);
    uint64_t seen[8];
    size_t n = 0;
    for (; engine_iter_valid(it) && n < 8; engine_iter_next(it)) {
        size_t kl;
        const char *k = engine_iter_key(it, &kl);
        seen[n++] = keycodec_get_u64be((const uint8_t *)k + 17);
    }
    engine_iter_free(it);
    assert_int_equal(n, 4);
    assert_int_equal(seen[0], s0);
    assert_int_equal(seen[3], s0 + 3);
    /* Late duplicates below the watermark, with or without a record: no
     * effect. */
    char key[16];
    snprintf(key, sizeof key, "w%llu", (unsigned long long)(s0 - 1));
    command_result r = apply(x->f, 200 + s0, (cmd_spec){ CMD_PUT, key, "again", 0, 0, 9, s0 - 1, 0 });
    assert_int_equal(r.code, OKV_EINVAL);
    assert_int_equal(version_of(x->f, key, NULL), 100 + s0 - 1);
    snprintf(key, sizeof key, "w%llu", (unsigned long long)s0);
    r = apply(x->f, 201 + s0, (cmd_spec){ CMD_PUT, key, "again", 0, 0, 9, s0, 0 });
    assert_int_equal(r.code, OKV_EINVAL);
    assert_int_equal(version_of(x->f, key, NULL), 100 + s0);
}

/* A client whose watermark rises with every write costs a bounded amount
 * per write: its data, its record, its watermark, and once per
 * FSM_DEDUP_GC_STEP writes a point delete of each record below the step
 * (range tombstones, first one per write and then one per step, made every
 * later point read slower: write latency grew tenfold in 30 s). */
/* Keys of the meta column family whose first byte is tag. */
static size_t count_meta_prefix(fx *x, char tag)
{
    engine_iter *it;
    okv_error err;
    assert_int_equal(engine_iter_new_prefix(&it, x->e, ENGINE_CF_META, &tag, 1, &err), OKV_OK);
    size_t n = 0;
    for (; engine_iter_valid(it); engine_iter_next(it))
        n++;
    engine_iter_free(it);
    return n;
}

static void test_fsm__watermark_gc_is_stepped(void **state)
{
    fx *x = *state;
    const uint64_t writes = 2 * FSM_DEDUP_GC_STEP;
    for (uint64_t req = 1; req <= writes; req++) {
        char key[16];
        snprintf(key, sizeof key, "g%llu", (unsigned long long)req);
        apply(x->f, 1000 + req, (cmd_spec){ CMD_PUT, key, "v", 0, 0, 11, req, req });
    }
    size_t staged = fsm_pending(x->f);
    assert_true(staged <= 4 * writes + 1);   /* + one delete per record + the applied index */
    flush(x->f);
    /* The records below the last step are gone, the ones above it kept. */
    assert_int_equal(count_meta_prefix(x, 'D'), 1);   /* request 512's own */
}

static void test_fsm__unflushed_work_is_lost_together(void **state)
{
    fx *x = *state;
    apply(x->f, 1, (cmd_spec){ CMD_PUT, "a", "1", 0, 0, 0, 0, 0 });
    flush(x->f);
    apply(x->f, 2, (cmd_spec){ CMD_PUT, "b", "2", 0, 0, 0, 0, 0 });
    /* "Crash": the staged entry 2 is dropped with its applied index. */
    close_fx(x);
    open_fx(x);
    uint64_t applied;
    okv_error err;
    assert_int_equal(fsm_applied_index(x->f, fsm_group_id(T, P), &applied, &err), OKV_OK);
    assert_int_equal(applied, 1);
    assert_int_equal(version_of(x->f, "a", NULL), 1);
    assert_int_equal(version_of(x->f, "b", NULL), 0);
}

/* Single-node mode's flush (committer.h): the same batch, written synced. */
static void test_fsm__synced_flush_writes_the_batch(void **state)
{
    fx *x = *state;
    apply(x->f, 1, (cmd_spec){ CMD_PUT, "a", "1", 0, 0, 5, 1, 0 });
    assert_true(fsm_pending(x->f) > 0);
    okv_error err;
    assert_int_equal(fsm_flush_synced(x->f, &err), OKV_OK);
    assert_int_equal(fsm_pending(x->f), 0);
    assert_int_equal(fsm_flush_synced(x->f, &err), OKV_OK);   /* nothing staged: no write */
    close_fx(x);
    open_fx(x);
    uint64_t applied;
    assert_int_equal(fsm_applied_index(x->f, fsm_group_id(T, P), &applied, &err), OKV_OK);
    assert_int_equal(applied, 1);
    assert_int_equal(version_of(x->f, "a", NULL), 1);
    command_result r = apply(x->f, 2, (cmd_spec){ CMD_PUT, "a", "2", 0, 0, 5, 1, 0 });
    assert_int_equal(r.version, 1);   /* its dedup record was in the batch */
}

static void test_fsm__a_command_of_another_group_is_corruption(void **state)
{
    fx *x = *state;
    command c;
    memset(&c, 0, sizeof c);
    c.op = CMD_PUT;
    c.table_id = T;
    c.partition = P + 1;
    c.key = (const uint8_t *)"k";
    c.key_len = 1;
    uint8_t buf[128];
    command_encode(&c, buf);
    command_result r;
    okv_error err;
    assert_int_equal(fsm_apply(x->f, fsm_group_id(T, P), 1, buf, command_encoded_size(&c), &r, &err),
                     OKV_ECORRUPT);
    assert_int_equal(fsm_apply(x->f, fsm_group_id(T, P), 1, buf, 3, &r, &err), OKV_ECORRUPT);
}

/* Dumps the data and meta CFs into one string, to compare replicas. */
static char *dump(engine *e)
{
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    for (int cf = ENGINE_CF_DATA; cf <= ENGINE_CF_META; cf++) {
        engine_iter *it;
        okv_error err;
        assert_int_equal(engine_iter_new(&it, e, (enum engine_cf)cf, NULL, 0, NULL, 0, &err), OKV_OK);
        for (; engine_iter_valid(it); engine_iter_next(it)) {
            size_t kl, vl;
            const char *k = engine_iter_key(it, &kl);
            const char *v = engine_iter_value(it, &vl);
            if (cf == ENGINE_CF_META && kl && k[0] != 'A' && k[0] != 'D' && k[0] != 'W')
                continue;   /* the format record */
            assert_true(len + kl + vl + 2 < cap);
            memcpy(out + len, k, kl);
            len += kl;
            out[len++] = '=';
            memcpy(out + len, v, vl);
            len += vl;
            out[len++] = ';';
        }
        engine_iter_free(it);
    }
    out[len] = '\0';
    return out;
}

static void test_fsm__replicas_agree_whatever_their_flush_points(void **state)
{
    (void)state;
    fx a = { okv_test_tmpdir("fsm-a"), NULL, NULL }, b = { okv_test_tmpdir("fsm-b"), NULL, NULL };
    open_fx(&a);
    open_fx(&b);
    uint64_t seed = 12345;
    for (uint64_t index = 1; index <= 3000; index++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t r = seed >> 33;
        char key[16], val[16];
        snprintf(key, sizeof key, "k%llu", (unsigned long long)(r % 50));
        snprintf(val, sizeof val, "v%llu", (unsigned long long)index);
        cmd_spec s = { (r >> 8) % 5 == 0 ? CMD_DELETE : CMD_PUT, key, NULL, (r >> 12) % 3 == 0,
                       (r >> 16) % 2 ? index - 1 : 0, (r >> 20) % 4, (r >> 24) % 500, 0 };
        if (s.op == CMD_PUT)
            s.value = val;
        if (s.client)
            s.watermark = s.req > 100 ? s.req - 100 : 0;
        command_result ra = apply(a.f, index, s), rb = apply(b.f, index, s);
        assert_int_equal(ra.code, rb.code);
        assert_int_equal(ra.version, rb.version);
        assert_int_equal(ra.existed, rb.existed);
        if (index % 7 == 0)
            flush(a.f);        /* replica a flushes often */
        if ((r >> 30) % 97 == 0)
            flush(b.f);        /* replica b rarely */
    }
    flush(a.f);
    flush(b.f);
    char *da = dump(a.e), *db = dump(b.e);
    assert_string_equal(da, db);
    free(da);
    free(db);
    close_fx(&a);
    close_fx(&b);
    okv_test_rmtree(a.dir);
    okv_test_rmtree(b.dir);
    free(a.dir);
    free(b.dir);
}

/* Partition snapshots (streamed, SST files, install and its crash
 * recovery) are tested in test_snapshot.c. */

/* ---- transactions (txn.h) applied as one entry ----------------------- */

static txn_key tkey(const char *k)
{
    txn_key x = { T, P, (const uint8_t *)k, strlen(k) };
    return x;
}

static int apply_txn_rc(fsm *f, uint64_t index, const txn *t, uint64_t client, uint64_t req,
                        command_result *r, okv_error *err)
{
    size_t n = txn_encoded_size(t);
    uint8_t *enc = malloc(n);
    txn_encode(t, enc);
    command c;
    memset(&c, 0, sizeof c);
    c.op = CMD_TXN;
    c.table_id = T;
    c.partition = P;
    c.client_id = client;
    c.request_id = req;
    c.value = enc;
    c.value_len = n;
    size_t clen = command_encoded_size(&c);
    uint8_t *buf = malloc(clen);
    command_encode(&c, buf);
    int rc = fsm_apply(f, fsm_group_id(T, P), index, buf, clen, r, err);
    free(buf);
    free(enc);
    return rc;
}

static command_result apply_txn(fsm *f, uint64_t index, const txn *t, uint64_t client,
                                uint64_t req)
{
    command_result r;
    okv_error err;
    if (apply_txn_rc(f, index, t, client, req, &r, &err))
        fail_msg("apply txn %llu: %s", (unsigned long long)index, err.msg);
    return r;
}

static int64_t counter_of(fsm *f, const char *key)
{
    uint8_t *v = NULL;
    size_t len = 0;
    uint64_t ver = 0;
    okv_error err;
    assert_int_equal(fsm_get(f, T, P, (const uint8_t *)key, strlen(key), &v, &len, &ver, &err),
                     OKV_OK);
    int64_t n = 0;
    assert_int_equal(txn_counter_decode(v, len, &n), 0);
    free(v);
    return n;
}

static void test_fsm__a_transfer_applies_all_its_writes_at_one_version(void **state)
{
    fx *x = *state;
    txn_write fund = { TXN_ADD, 0, tkey("s/a"), NULL, 0, 100, 0 };
    txn t = { 0, NULL, 1, &fund };
    command_result r = apply_txn(x->f, 5, &t, 0, 0);
    assert_int_equal(r.code, OKV_OK);
    assert_int_equal(r.version, 5);
    txn_cond enough = { TXN_COND_INT, TXN_GE, tkey("s/a"), 0, 30, NULL, 0 };
    txn_write moves[2] = { { TXN_ADD, 1, tkey("s/a"), NULL, 0, -30, 0 },
                           { TXN_ADD, 0, tkey("s/b"), NULL, 0, 30, 0 } };
    txn tr = { 1, &enough, 2, moves };
    r = apply_txn(x->f, 6, &tr, 0, 0);   /* same batch: sees entry 5 */
    assert_int_equal(r.code, OKV_OK);
    assert_int_equal(r.version, 6);
    flush(x->f);
    assert_int_equal(counter_of(x->f, "s/a"), 70);
    assert_int_equal(counter_of(x->f, "s/b"), 30);
    assert_int_equal(version_of(x->f, "s/a", NULL), 6);
    assert_int_equal(version_of(x->f, "s/b", NULL), 6);
}

static void test_fsm__a_failed_transaction_writes_nothing_and_replays_its_answer(void **state)
{
    fx *x = *state;
    txn_write fund = { TXN_ADD, 0, tkey("s/a"), NULL, 0, 10, 0 };
    txn t = { 0, NULL, 1, &fund };
    apply_txn(x->f, 1, &t, 0, 0);
    /* The credit comes first, the floored debit fails: neither applies. */
    txn_write moves[2] = { { TXN_ADD, 0, tkey("s/b"), NULL, 0, 50, 0 },
                           { TXN_ADD, 1, tkey("s/a"), NULL, 0, -50, 0 } };
    txn tr = { 0, NULL, 2, moves };
    command_result r = apply_txn(x->f, 2, &tr, 9, 1);
    assert_int_equal(r.code, OKV_ECONDITION);
    assert_int_equal(r.reason, TXN_FAIL_FLOOR);
    assert_int_equal(r.failed, 1);
    assert_int_equal(version_of(x->f, "s/b", NULL), 0);
    flush(x->f);
    assert_int_equal(counter_of(x->f, "s/a"), 10);
    assert_int_equal(version_of(x->f, "s/b", NULL), 0);
    /* Funds arrive; a resend of request 1 still gets its first answer
     * (exactly once: the outcome is recorded, not re-evaluated). */
    txn_write more = { TXN_ADD, 0, tkey("s/a"), NULL, 0, 100, 0 };
    txn t2 = { 0, NULL, 1, &more };
    apply_txn(x->f, 3, &t2, 0, 0);
    r = apply_txn(x->f, 4, &tr, 9, 1);
    assert_int_equal(r.code, OKV_ECONDITION);
    assert_int_equal(r.reason, TXN_FAIL_FLOOR);
    assert_int_equal(r.failed, 1);
    flush(x->f);
    assert_int_equal(counter_of(x->f, "s/a"), 110);
    assert_int_equal(version_of(x->f, "s/b", NULL), 0);
}

static void test_fsm__a_transaction_naming_another_partition_is_corruption(void **state)
{
    fx *x = *state;
    txn_write w[2] = { { TXN_PUT, 0, tkey("s/a"), (const uint8_t *)"v", 1, 0, 0 },
                       { TXN_PUT, 0, { T, P + 1, (const uint8_t *)"z", 1 },
                         (const uint8_t *)"v", 1, 0, 0 } };
    txn t = { 0, NULL, 2, w };
    command_result r;
    okv_error err;
    assert_int_equal(apply_txn_rc(x->f, 1, &t, 0, 0, &r, &err), OKV_ECORRUPT);
    assert_non_null(strstr(err.msg, "partition"));
}

/* ---- 2PC messages batched in one entry (command.h TPC_MANY) ----------- */

static int apply_value_rc(fsm *f, uint64_t index, uint8_t op, const uint8_t *val, size_t len,
                          command_result *r, okv_error *err)
{
    command c;
    memset(&c, 0, sizeof c);
    c.op = op;
    c.table_id = T;
    c.partition = P;
    c.value = val;
    c.value_len = len;
    size_t clen = command_encoded_size(&c);
    uint8_t *buf = malloc(clen);
    command_encode(&c, buf);
    int rc = fsm_apply(f, fsm_group_id(T, P), index, buf, clen, r, err);
    free(buf);
    return rc;
}

static tpc_msg tpc_step(uint8_t kind, uint8_t flag, uint64_t req, uint64_t clock)
{
    tpc_msg m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.flag = flag;
    m.id = (tpc_id){ 77, req };
    m.self = (tpc_group){ T, P };
    m.coord = m.self;
    m.clock_ms = clock;
    return m;
}

static command_result apply_step(fsm *f, uint64_t index, const tpc_msg *m)
{
    size_t n = tpc_msg_encoded_size(m);
    uint8_t *enc = malloc(n);
    tpc_msg_encode(m, enc);
    command_result r;
    okv_error err;
    if (apply_value_rc(f, index, CMD_TPC, enc, n, &r, &err))
        fail_msg("apply 2PC step at %llu: %s", (unsigned long long)index, err.msg);
    free(enc);
    return r;
}

/* The coordinator commits transaction req alone (its vote names a second,
 * already prepared participant, so the record waits for FINISH). */
static void commit_alone(fsm *f, uint64_t index, uint64_t req, const char *key)
{
    txn_write w = { TXN_PUT, 0, tkey(key), (const uint8_t *)"v", 1, 0, 0 };
    txn t = { 0, NULL, 1, &w };
    size_t n = txn_encoded_size(&t);
    uint8_t *share = malloc(n);
    txn_encode(&t, share);
    tpc_msg m = tpc_step(TPC_PREPARE, 1, req, 1000);
    m.deadline_ms = 60000;
    m.nparts = 2;
    m.parts[0] = m.self;
    m.parts[1] = (tpc_group){ T, P + 1 };
    m.share = share;
    m.share_len = n;
    command_result r = apply_step(f, index, &m);
    assert_int_equal(r.code, OKV_OK);
    assert_int_equal(r.tpc_state, TPC_COMMITTED);
    free(share);
}

/* A participant (the coordinator is the next partition) prepares req:
 * key written (an exclusive lock), or only checked (shared). */
static void prepare_here(fsm *f, uint64_t index, uint64_t req, const char *key, int write)
{
    txn_write w = { TXN_PUT, 0, tkey(key), (const uint8_t *)"v", 1, 0, 0 };
    txn_cond c = { TXN_COND_ABSENT, 0, tkey(key), 0, 0, NULL, 0 };
    txn t = write ? (txn){ 0, NULL, 1, &w } : (txn){ 1, &c, 0, NULL };
    size_t n = txn_encoded_size(&t);
    uint8_t *share = malloc(n);
    txn_encode(&t, share);
    tpc_msg m = tpc_step(TPC_PREPARE, 0, req, 1000);
    m.deadline_ms = 60000;
    m.coord = (tpc_group){ T, P + 1 };
    m.share = share;
    m.share_len = n;
    command_result r = apply_step(f, index, &m);
    assert_int_equal(r.code, OKV_OK);
    assert_int_equal(r.tpc_state, TPC_PREPARED);
    free(share);
}

static txn_cond range_of(const char *lo, const char *hi, int64_t count, uint64_t digest)
{
    txn_cond c = { TXN_COND_RANGE, 0, tkey(lo), digest, count, (const uint8_t *)hi, strlen(hi) };
    return c;
}

/* A range condition walks RocksDB with the batch's staged records laid over
 * it (new keys, overwrites, deletes), and meets exclusive locks staged or
 * stored in its range. */
static void test_fsm__a_range_condition_sees_the_batch_and_the_disk(void **state)
{
    fx *x = *state;
    apply(x->f, 10, (cmd_spec){ CMD_PUT, "r/1", "a", 0, 0, 0, 0, 0 });
    apply(x->f, 11, (cmd_spec){ CMD_PUT, "r/2", "b", 0, 0, 0, 0, 0 });
    apply(x->f, 12, (cmd_spec){ CMD_PUT, "s/1", "out", 0, 0, 0, 0, 0 });
    flush(x->f);
    apply(x->f, 13, (cmd_spec){ CMD_PUT, "r/3", "c", 0, 0, 0, 0, 0 });
    apply(x->f, 14, (cmd_spec){ CMD_DELETE, "r/1", NULL, 0, 0, 0, 0, 0 });
    apply(x->f, 15, (cmd_spec){ CMD_PUT, "r/2", "b2", 0, 0, 0, 0, 0 });
    uint64_t now = okv_range_digest_add(okv_range_digest_add(OKV_RANGE_DIGEST_INIT, "r/2", 3, 15),
                                        "r/3", 3, 13);
    uint64_t before = okv_range_digest_add(okv_range_digest_add(OKV_RANGE_DIGEST_INIT, "r/1", 3,
                                                                10),
                                           "r/2", 3, 11);
    txn_cond holds = range_of("r/", "r0", 2, now), stale = range_of("r/", "r0", 2, before);
    txn_cond open_end = range_of("r/2", "", 3, 0);   /* r/2, r/3, s/1: a wrong digest */
    txn t_holds = { 1, &holds, 0, NULL }, t_stale = { 1, &stale, 0, NULL };
    txn t_open = { 1, &open_end, 0, NULL };
    assert_int_equal(apply_txn(x->f, 16, &t_holds, 0, 0).code, OKV_OK);
    assert_int_equal(apply_txn(x->f, 17, &t_stale, 0, 0).code, OKV_ECONDITION);
    assert_int_equal(apply_txn(x->f, 18, &t_open, 0, 0).code, OKV_ECONDITION);
    flush(x->f);   /* the same from disk alone */
    assert_int_equal(apply_txn(x->f, 19, &t_holds, 0, 0).code, OKV_OK);
    assert_int_equal(apply_txn(x->f, 20, &t_stale, 0, 0).code, OKV_ECONDITION);

    /* A reader's shared lock in the range is no obstacle; a prepared write
     * (exclusive) is, staged or stored. */
    prepare_here(x->f, 21, 1, "r/6", 0);
    assert_int_equal(apply_txn(x->f, 22, &t_holds, 0, 0).code, OKV_OK);
    prepare_here(x->f, 23, 2, "r/5", 1);
    command_result r = apply_txn(x->f, 24, &t_holds, 0, 0);
    assert_int_equal(r.code, OKV_ECONFLICT);
    assert_int_equal(r.reason, TXN_FAIL_LOCKED);
    flush(x->f);
    assert_int_equal(apply_txn(x->f, 25, &t_holds, 0, 0).code, OKV_ECONFLICT);
    txn_cond other = range_of("s/", "s0", 1, okv_range_digest_add(OKV_RANGE_DIGEST_INIT, "s/1",
                                                                 3, 12));
    txn t_other = { 1, &other, 0, NULL };
    assert_int_equal(apply_txn(x->f, 26, &t_other, 0, 0).code, OKV_OK);
}

/* A participant (the coordinator is the next partition) prepares req: a
 * scan of [lo, hi) that saw count keys with digest d, and a write of wkey. */
static command_result prepare_scan(fsm *f, uint64_t index, uint64_t req, txn_cond range,
                                   const char *wkey)
{
    txn_write w = { TXN_PUT, 0, tkey(wkey), (const uint8_t *)"w", 1, 0, 0 };
    txn t = { 1, &range, 1, &w };
    size_t n = txn_encoded_size(&t);
    uint8_t *share = malloc(n);
    txn_encode(&t, share);
    tpc_msg m = tpc_step(TPC_PREPARE, 0, req, 1000);
    m.deadline_ms = 60000;
    m.coord = (tpc_group){ T, P + 1 };
    m.share = share;
    m.share_len = n;
    command_result r = apply_step(f, index, &m);
    free(share);
    return r;
}

/* A range lock lives in RocksDB: it stops plain writes (UNAVAILABLE, no
 * exactly-once record, so the resend is judged afresh) and one-partition
 * transactions' writes (CONFLICT, LOCKED) into its range, staged or
 * stored and across a restart, lets writes outside it and reads through,
 * and RESOLVE takes it away (with the count record: no trace is left). */
static void test_fsm__a_range_lock_holds_across_flush_and_restart(void **state)
{
    fx *x = *state;
    apply(x->f, 10, (cmd_spec){ CMD_PUT, "r/1", "a", 0, 0, 0, 0, 0 });
    apply(x->f, 11, (cmd_spec){ CMD_PUT, "r/2", "b", 0, 0, 0, 0, 0 });
    flush(x->f);
    uint64_t d = okv_range_digest_add(okv_range_digest_add(OKV_RANGE_DIGEST_INIT, "r/1", 3, 10),
                                      "r/2", 3, 11);
    command_result r = prepare_scan(x->f, 12, 1, range_of("r/", "r0", 2, d), "w/1");
    assert_int_equal(r.code, OKV_OK);
    assert_int_equal(r.tpc_state, TPC_PREPARED);
    /* In the same batch (staged), then from disk after a restart. */
    assert_int_equal(apply(x->f, 13, (cmd_spec){ CMD_PUT, "r/3", "x", 0, 0, 5, 1, 0 }).code,
                     OKV_EUNAVAILABLE);
    flush(x->f);
    close_fx(x);
    open_fx(x);
    assert_int_equal(apply(x->f, 14, (cmd_spec){ CMD_DELETE, "r/1", NULL, 0, 0, 5, 1, 0 }).code,
                     OKV_EUNAVAILABLE);
    txn_write ins = { TXN_PUT, 0, tkey("r/15"), (const uint8_t *)"v", 1, 0, 0 };
    txn t_ins = { 0, NULL, 1, &ins };
    r = apply_txn(x->f, 15, &t_ins, 0, 0);
    assert_int_equal(r.code, OKV_ECONFLICT);
    assert_int_equal(r.reason, TXN_FAIL_LOCKED);
    /* Outside the range (the end is exclusive), and reads: as ever. */
    assert_int_equal(apply(x->f, 16, (cmd_spec){ CMD_PUT, "r0", "edge", 0, 0, 0, 0, 0 }).code,
                     OKV_OK);
    assert_int_equal(version_of(x->f, "r/1", NULL), 10);
    txn_cond same = range_of("r/", "r0", 2, d);
    txn t_same = { 1, &same, 0, NULL };
    assert_int_equal(apply_txn(x->f, 17, &t_same, 0, 0).code, OKV_OK);
    /* A second scan of the range shares it. */
    r = prepare_scan(x->f, 18, 2, range_of("r/", "r0", 2, d), "w/2");
    assert_int_equal(r.tpc_state, TPC_PREPARED);

    tpc_msg res = tpc_step(TPC_RESOLVE, 1, 1, 2000);
    res.coord = (tpc_group){ T, P + 1 };
    assert_int_equal(apply_step(x->f, 19, &res).tpc_state, TPC_COMMITTED);
    flush(x->f);
    assert_int_equal(apply(x->f, 20, (cmd_spec){ CMD_PUT, "r/3", "x", 0, 0, 5, 1, 0 }).code,
                     OKV_EUNAVAILABLE);   /* req 2 still holds it */
    res.id.req = 2;
    assert_int_equal(apply_step(x->f, 21, &res).tpc_state, TPC_COMMITTED);
    assert_int_equal(apply(x->f, 22, (cmd_spec){ CMD_PUT, "r/3", "x", 0, 0, 5, 1, 0 }).code,
                     OKV_OK);
    flush(x->f);
    assert_int_equal(version_of(x->f, "r/3", NULL), 22);
    assert_int_equal(version_of(x->f, "w/1", NULL), 19);
    /* Nothing of the range locks is left in the meta column family. */
    uint8_t lo[FSM_META_PREFIX_LEN + 1], hi[FSM_META_PREFIX_LEN + 1];
    fsm_meta_prefix(lo, 'T', fsm_group_id(T, P));
    memcpy(hi, lo, sizeof hi);
    lo[FSM_META_PREFIX_LEN] = 'N';
    hi[FSM_META_PREFIX_LEN] = 'S';
    engine_iter *it;
    okv_error err;
    assert_int_equal(engine_iter_new(&it, x->e, ENGINE_CF_META, lo, sizeof lo, hi, sizeof hi,
                                     &err), OKV_OK);
    for (; engine_iter_valid(it); engine_iter_next(it)) {
        size_t kl;
        const char *k = engine_iter_key(it, &kl);
        assert_true(k[FSM_META_PREFIX_LEN] != 'N' && k[FSM_META_PREFIX_LEN] != 'R');
    }
    engine_iter_free(it);
}

/* u32 count, then (u32 length, message) for each of ms. */
static uint8_t *many(const tpc_msg *ms, uint32_t n, size_t *len)
{
    size_t total = 4;
    for (uint32_t i = 0; i < n; i++)
        total += 4 + tpc_msg_encoded_size(&ms[i]);
    uint8_t *b = malloc(total);
    keycodec_put_u32be(b, n);
    size_t off = 4;
    for (uint32_t i = 0; i < n; i++) {
        size_t ml = tpc_msg_encoded_size(&ms[i]);
        keycodec_put_u32be(b + off, (uint32_t)ml);
        tpc_msg_encode(&ms[i], b + off + 4);
        off += 4 + ml;
    }
    *len = total;
    return b;
}

/* State a plain CHECK reports after a FORGET far past every retention: a
 * finished coordinator record is gone (NONE), an unfinished one stays. */
static uint8_t state_after_forget(fsm *f, uint64_t *index, uint64_t req)
{
    uint64_t later = 1000 + 2ull * TPC_RETAIN_MS;
    tpc_msg forget = tpc_step(TPC_FORGET, 'C', req, later);
    apply_step(f, (*index)++, &forget);
    tpc_msg check = tpc_step(TPC_CHECK, 0, req, later);
    return apply_step(f, (*index)++, &check).tpc_state;
}

static void test_fsm__a_batch_of_finish_steps_applies_every_one(void **state)
{
    fx *x = *state;
    commit_alone(x->f, 1, 1, "k/1");
    commit_alone(x->f, 2, 2, "k/2");
    commit_alone(x->f, 3, 3, "k/3");
    tpc_msg fin[2] = { tpc_step(TPC_FINISH, 0, 1, 2000), tpc_step(TPC_FINISH, 0, 3, 2000) };
    size_t len;
    uint8_t *b = many(fin, 2, &len);
    command_result r;
    okv_error err;
    assert_int_equal(apply_value_rc(x->f, 4, CMD_TPC_MANY, b, len, &r, &err), OKV_OK);
    free(b);
    assert_int_equal(r.code, OKV_OK);
    flush(x->f);
    uint64_t index = 5;
    assert_int_equal(state_after_forget(x->f, &index, 1), TPC_NONE);
    assert_int_equal(state_after_forget(x->f, &index, 3), TPC_NONE);
    /* Not in the batch: still unfinished, so kept. */
    assert_int_equal(state_after_forget(x->f, &index, 2), TPC_COMMITTED);
}

/* A DECIDE for a group that does not coordinate, as KV.TxnPart once let
 * into a log: every replica stopped at it, and again at every restart.
 * Now it applies as a refusal with no effect, and the group goes on. */
static void test_fsm__a_step_no_group_could_apply_is_refused_not_fatal(void **state)
{
    fx *x = *state;
    commit_alone(x->f, 1, 1, "k/1");
    tpc_msg bad = tpc_step(TPC_DECIDE, 1, 1, 2000);
    bad.coord = (tpc_group){ T, P + 1 };
    command_result r = apply_step(x->f, 2, &bad);
    assert_int_equal(r.code, OKV_EINVAL);
    assert_int_equal(r.tpc_state, TPC_NONE);
    tpc_msg fin = tpc_step(TPC_FINISH, 0, 1, 2000);
    r = apply_step(x->f, 3, &fin);
    assert_int_equal(r.code, OKV_OK);
    flush(x->f);
    uint64_t index = 4;
    assert_int_equal(state_after_forget(x->f, &index, 1), TPC_NONE);
}

static void test_fsm__a_malformed_batch_of_2pc_steps_is_corruption(void **state)
{
    fx *x = *state;
    tpc_msg fin[2] = { tpc_step(TPC_FINISH, 0, 1, 2000), tpc_step(TPC_FINISH, 0, 2, 2000) };
    size_t len;
    uint8_t *b = many(fin, 2, &len);
    command_result r;
    okv_error err;
    /* Count 0; a count above what follows; a message cut short; bytes
     * after the last message. */
    uint8_t zero[4] = { 0, 0, 0, 0 };
    assert_int_equal(apply_value_rc(x->f, 1, CMD_TPC_MANY, zero, 4, &r, &err), OKV_ECORRUPT);
    keycodec_put_u32be(b, 3);
    assert_int_equal(apply_value_rc(x->f, 1, CMD_TPC_MANY, b, len, &r, &err), OKV_ECORRUPT);
    keycodec_put_u32be(b, 2);
    assert_int_equal(apply_value_rc(x->f, 1, CMD_TPC_MANY, b, len - 1, &r, &err), OKV_ECORRUPT);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, b, len);
    longer[len] = 0;
    assert_int_equal(apply_value_rc(x->f, 1, CMD_TPC_MANY, longer, len + 1, &r, &err),
                     OKV_ECORRUPT);
    assert_non_null(strstr(err.msg, "after a batch"));
    free(longer);
    free(b);
}

int main(void)
{
#define TT(n) cmocka_unit_test_setup_teardown(n, setup, teardown)
    const struct CMUnitTest tests[] = {
        TT(test_fsm__version_is_the_raft_index),
        TT(test_fsm__conditions_see_earlier_entries_of_the_same_batch),
        TT(test_fsm__a_retried_request_applies_once),
        TT(test_fsm__watermark_drops_records_and_refuses_stale_ids),
        TT(test_fsm__watermark_gc_is_stepped),
        TT(test_fsm__unflushed_work_is_lost_together),
        TT(test_fsm__synced_flush_writes_the_batch),
        TT(test_fsm__a_command_of_another_group_is_corruption),
        TT(test_fsm__a_transfer_applies_all_its_writes_at_one_version),
        TT(test_fsm__a_range_condition_sees_the_batch_and_the_disk),
        TT(test_fsm__a_range_lock_holds_across_flush_and_restart),
        TT(test_fsm__a_batch_of_finish_steps_applies_every_one),
        TT(test_fsm__a_step_no_group_could_apply_is_refused_not_fatal),
        TT(test_fsm__a_malformed_batch_of_2pc_steps_is_corruption),
        TT(test_fsm__a_failed_transaction_writes_nothing_and_replays_its_answer),
        TT(test_fsm__a_transaction_naming_another_partition_is_corruption),
        cmocka_unit_test(test_fsm__replicas_agree_whatever_their_flush_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
