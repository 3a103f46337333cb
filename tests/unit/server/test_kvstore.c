/* kvstore + committer over a real RocksDB in a temp dir: single-node writes
 * go through the state machine (fsm.h). Versions are the partition group's
 * applied index + 1, conditions, deletes, exactly-once by (client id,
 * request id), ordering of writes to one key, scans merged across
 * partitions, nothing lost or reused across a reopen, the same stored bytes
 * as cluster mode for the same commands, and a data dir written by the
 * older single-node code (per-partition `S` sequences) opening and going
 * on. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "committer.h"
#include "fsm.h"
#include "keycodec.h"
#include "kvstore.h"
#include "okv_test.h"

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;
} waiter;

static waiter W = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

typedef struct op_box {
    commit_op op;
    char key[32];
    char value[32];
    int done_code;
    int done_count;
} op_box;

static void on_done(commit_op *op)
{
    op_box *b = (op_box *)op;
    b->done_code = op->code;
    pthread_mutex_lock(&W.mu);
    b->done_count++;
    W.pending--;
    pthread_cond_broadcast(&W.cv);
    pthread_mutex_unlock(&W.mu);
}

static void wait_all(void)
{
    pthread_mutex_lock(&W.mu);
    while (W.pending > 0)
        pthread_cond_wait(&W.cv, &W.mu);
    pthread_mutex_unlock(&W.mu);
}

/* A put (value != NULL) or delete of key in table number ti of kv's catalog. */
static void prep_in(op_box *b, kvstore *kv, size_t ti, const char *key, const char *value)
{
    memset(b, 0, sizeof *b);
    snprintf(b->key, sizeof b->key, "%s", key);
    snprintf(b->value, sizeof b->value, "%s", value ? value : "");
    const catalog_table *t = &kvstore_catalog(kv)->tables[ti];
    command *c = &b->op.cmd;
    c->op = value ? CMD_PUT : CMD_DELETE;
    c->table_id = t->id;
    c->partition = keycodec_partition_of(b->key, strlen(b->key), t->partitions);
    c->key = (const uint8_t *)b->key;
    c->key_len = strlen(b->key);
    c->value = (const uint8_t *)b->value;
    c->value_len = value ? strlen(b->value) : 0;
    b->op.done = on_done;
}

static void prep(op_box *b, kvstore *kv, const char *key, const char *value)
{
    prep_in(b, kv, 0, key, value);
}

static void submit(committer *c, op_box *b)
{
    pthread_mutex_lock(&W.mu);
    W.pending++;
    pthread_mutex_unlock(&W.mu);
    committer_submit(c, &b->op);
}

/* Submits b, waits, and expects it applied and durable. */
static const command_result *write_ok(committer *c, op_box *b)
{
    submit(c, b);
    wait_all();
    assert_int_equal(b->done_count, 1);
    assert_int_equal(b->done_code, OKV_OK);
    return &b->op.result;
}

typedef struct fixture {
    char *dir;
    kvstore *kv;
    committer *com;
} fixture;

static void open_fx(fixture *f)
{
    okv_error err;
    int ignored;
    assert_int_equal(kvstore_open(&f->kv, f->dir, 4, &ignored, &err), OKV_OK);
    assert_int_equal(committer_new(&f->com, f->kv, &err), OKV_OK);
}

static void close_fx(fixture *f)
{
    committer_free(f->com);
    kvstore_close(f->kv);
    f->com = NULL;
    f->kv = NULL;
}

static fixture *new_fx(const char *tag)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = okv_test_tmpdir(tag);
    return f;
}

static void free_fx(fixture *f)
{
    close_fx(f);
    okv_test_rmtree(f->dir);
    free(f->dir);
    free(f);
}

static int setup(void **state)
{
    fixture *f = new_fx("kvstore");
    open_fx(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free_fx(*state);
    return 0;
}

static void get_in(kvstore *kv, size_t ti, const char *key, const char *want, uint64_t *version)
{
    const catalog_table *t = &kvstore_catalog(kv)->tables[ti];
    uint8_t *val;
    size_t len;
    okv_error err;
    int rc = kvstore_get(kv, t, keycodec_partition_of(key, strlen(key), t->partitions),
                         (const uint8_t *)key, strlen(key), &val, &len, version, &err);
    if (!want) {
        assert_int_equal(rc, OKV_ENOTFOUND);
        return;
    }
    assert_int_equal(rc, OKV_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(val, want, len);
    free(val);
}

static void get_ok(kvstore *kv, const char *key, const char *want, uint64_t *version)
{
    get_in(kv, 0, key, want, version);
}

static void test_kvstore__many_writes_each_done_once_versions_count_up(void **state)
{
    fixture *f = *state;
    enum { N = 2000 };
    op_box *boxes = calloc(N, sizeof *boxes);
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof k, "cust%d/o%d", i % 37, i);
        prep(&boxes[i], f->kv, k, "v");
        submit(f->com, &boxes[i]);
    }
    wait_all();
    /* A fresh partition numbers its writes 1, 2, 3, ... in submission order. */
    uint64_t next[4] = { 1, 1, 1, 1 };
    for (int i = 0; i < N; i++) {
        assert_int_equal(boxes[i].done_count, 1);
        assert_int_equal(boxes[i].done_code, OKV_OK);
        assert_int_equal(boxes[i].op.result.code, OKV_OK);
        assert_int_equal(boxes[i].op.result.version, next[boxes[i].op.cmd.partition]++);
    }
    committer_stats st;
    committer_get_stats(f->com, &st);
    assert_int_equal(st.writes, N);
    assert_true(st.syncs >= 1 && st.syncs <= N);
    free(boxes);
}

static void test_kvstore__writes_to_one_key_apply_in_order(void **state)
{
    fixture *f = *state;
    op_box b[4];
    prep(&b[0], f->kv, "k", "first");
    prep(&b[1], f->kv, "k", NULL);
    prep(&b[2], f->kv, "k", NULL);
    prep(&b[3], f->kv, "k", "last");
    for (int i = 0; i < 4; i++)
        submit(f->com, &b[i]);   /* likely one batch: the state machine's overlay orders them */
    wait_all();
    assert_true(b[1].op.result.existed);    /* saw "first" */
    assert_false(b[2].op.result.existed);   /* saw the delete */
    assert_true(b[0].op.result.version < b[1].op.result.version);
    assert_true(b[2].op.result.version < b[3].op.result.version);
    uint64_t v;
    get_ok(f->kv, "k", "last", &v);
    assert_int_equal(v, b[3].op.result.version);
}

static void test_kvstore__version_conditions(void **state)
{
    fixture *f = *state;
    op_box b;
    prep(&b, f->kv, "acct1", "100");
    b.op.cmd.check_version = 1;
    b.op.cmd.expected_version = 0;   /* must be absent */
    uint64_t v1 = write_ok(f->com, &b)->version;
    assert_int_equal(b.op.result.code, OKV_OK);

    prep(&b, f->kv, "acct1", "200");
    b.op.cmd.check_version = 1;
    b.op.cmd.expected_version = 0;
    assert_int_equal(write_ok(f->com, &b)->code, OKV_ECONFLICT);
    assert_int_equal(b.op.result.version, 0);

    prep(&b, f->kv, "acct1", "300");
    b.op.cmd.check_version = 1;
    b.op.cmd.expected_version = v1;
    assert_int_equal(write_ok(f->com, &b)->code, OKV_OK);
    uint64_t v;
    get_ok(f->kv, "acct1", "300", &v);
    assert_int_equal(v, b.op.result.version);
    /* The conflict took an index too (fsm.h: every entry is applied). */
    assert_int_equal(v, v1 + 2);
}

static void test_kvstore__durable_and_versions_not_reused_after_reopen(void **state)
{
    fixture *f = *state;
    op_box b;
    prep(&b, f->kv, "p/1", "x");
    uint64_t before = write_ok(f->com, &b)->version;
    assert_int_equal(before, 1);
    close_fx(f);
    open_fx(f);
    uint64_t v;
    get_ok(f->kv, "p/1", "x", &v);
    assert_int_equal(v, before);
    prep(&b, f->kv, "p/2", "y");   /* same partition key "p" */
    assert_int_equal(write_ok(f->com, &b)->version, before + 1);
    /* The applied index is the partition's sequence. */
    uint8_t akey[FSM_META_PREFIX_LEN];
    fsm_meta_prefix(akey, 'A', fsm_group_id(b.op.cmd.table_id, b.op.cmd.partition));
    char *raw;
    size_t len;
    okv_error err;
    assert_int_equal(engine_get(kvstore_engine(f->kv), ENGINE_CF_META, akey, sizeof akey, &raw,
                                &len, &err),
                     OKV_OK);
    assert_int_equal(len, 8);
    assert_int_equal(keycodec_get_u64be((const uint8_t *)raw), before + 1);
    free(raw);
}

/* Exactly-once by (client id, request id), as in cluster mode: a resend
 * gets the first answer and has no second effect, in the same batch, in a
 * later one, and after a restart. */
static void test_kvstore__a_retried_request_applies_once(void **state)
{
    fixture *f = *state;
    op_box a, b;
    prep(&a, f->kv, "pay/1", "first");
    a.op.cmd.client_id = 42;
    a.op.cmd.request_id = 7;
    prep(&b, f->kv, "pay/1", "second");
    b.op.cmd.client_id = 42;
    b.op.cmd.request_id = 7;
    submit(f->com, &a);
    submit(f->com, &b);
    wait_all();
    assert_int_equal(a.done_code, OKV_OK);
    assert_int_equal(b.done_code, OKV_OK);
    assert_int_equal(a.op.result.code, OKV_OK);
    assert_int_equal(b.op.result.code, OKV_OK);
    assert_int_equal(b.op.result.version, a.op.result.version);
    uint64_t v;
    get_ok(f->kv, "pay/1", "first", &v);
    assert_int_equal(v, a.op.result.version);

    close_fx(f);
    open_fx(f);
    prep(&b, f->kv, "pay/1", "third");
    b.op.cmd.client_id = 42;
    b.op.cmd.request_id = 7;
    assert_int_equal(write_ok(f->com, &b)->version, a.op.result.version);
    get_ok(f->kv, "pay/1", "first", &v);
    /* A request id below the client's watermark is refused without effect. */
    prep(&b, f->kv, "pay/1", "fourth");
    b.op.cmd.client_id = 42;
    b.op.cmd.request_id = 9;
    b.op.cmd.watermark = 9;
    assert_int_equal(write_ok(f->com, &b)->code, OKV_OK);
    prep(&b, f->kv, "pay/1", "stale");
    b.op.cmd.client_id = 42;
    b.op.cmd.request_id = 8;
    assert_int_equal(write_ok(f->com, &b)->code, OKV_EINVAL);
    get_ok(f->kv, "pay/1", "fourth", &v);
}

/* A malformed command is refused before the state machine sees it, and
 * the committer goes on (it is not poisoned). */
static void test_kvstore__malformed_write_is_refused_alone(void **state)
{
    fixture *f = *state;
    op_box b;
    prep(&b, f->kv, "k", "v");
    b.op.cmd.key_len = 0;
    submit(f->com, &b);
    wait_all();
    assert_int_equal(b.done_code, OKV_EINVAL);
    prep(&b, f->kv, "k", "v");
    b.op.cmd.partition = 4;   /* the table has 4 */
    submit(f->com, &b);
    wait_all();
    assert_int_equal(b.done_code, OKV_EINVAL);
    prep(&b, f->kv, "k", "v");
    assert_int_equal(write_ok(f->com, &b)->version, 1);
}

static void test_kvstore__scan_merges_partitions_in_key_order(void **state)
{
    fixture *f = *state;
    static const char *keys[] = { "b", "a/2", "c/1", "a/1", "ab", "zz", "a" };
    op_box b[7];
    for (int i = 0; i < 7; i++) {
        prep(&b[i], f->kv, keys[i], keys[i]);
        submit(f->com, &b[i]);
    }
    wait_all();
    request r;
    memset(&r, 0, sizeof r);
    r.kind = REQ_SCAN;
    r.table = &kvstore_catalog(f->kv)->tables[0];
    r.lower = (const uint8_t *)"a";
    r.lower_len = 1;
    r.upper = (const uint8_t *)"c";
    r.upper_len = 1;
    r.has_upper = 1;
    r.limit = 3;
    kv_item *items;
    size_t n;
    int more;
    okv_error err;
    assert_int_equal(kvstore_scan(f->kv, &r, &items, &n, &more, &err), OKV_OK);
    assert_int_equal(n, 3);
    assert_true(more);
    assert_memory_equal(items[0].key, "a", 1);
    assert_memory_equal(items[1].key, "a/1", 3);
    assert_memory_equal(items[2].key, "a/2", 3);
    kvstore_items_free(items, n);
    r.limit = 100;
    assert_int_equal(kvstore_scan(f->kv, &r, &items, &n, &more, &err), OKV_OK);
    assert_int_equal(n, 5);   /* a a/1 a/2 ab b */
    assert_false(more);
    assert_memory_equal(items[4].key, "b", 1);
    kvstore_items_free(items, n);
}

static void test_kvstore__partitions_flag_ignored_on_existing_dir(void **state)
{
    fixture *f = *state;
    close_fx(f);
    okv_error err;
    int ignored = 0;
    assert_int_equal(kvstore_open(&f->kv, f->dir, 16, &ignored, &err), OKV_OK);
    assert_true(ignored);
    assert_int_equal(kvstore_catalog(f->kv)->tables[0].partitions, 4);
    kvstore_close(f->kv);
    open_fx(f);
}

/* ---- one rule: the same bytes as cluster mode ---------------------------- */

/* Every key and value of the data and meta families, in order. */
static char *dump(engine *e, size_t *len_out)
{
    size_t cap = 4 << 20, len = 0;
    char *out = malloc(cap);
    for (int cf = ENGINE_CF_DATA; cf <= ENGINE_CF_META; cf++) {
        engine_iter *it;
        okv_error err;
        assert_int_equal(engine_iter_new(&it, e, (enum engine_cf)cf, NULL, 0, NULL, 0, &err),
                         OKV_OK);
        for (; engine_iter_valid(it); engine_iter_next(it)) {
            size_t kl, vl;
            const char *k = engine_iter_key(it, &kl);
            const char *v = engine_iter_value(it, &vl);
            assert_true(len + kl + vl + 16 < cap);
            out[len++] = (char)cf;
            keycodec_put_u32be((uint8_t *)out + len, (uint32_t)kl);
            memcpy(out + len + 4, k, kl);
            len += 4 + kl;
            keycodec_put_u32be((uint8_t *)out + len, (uint32_t)vl);
            memcpy(out + len + 4, v, vl);
            len += 4 + vl;
        }
        assert_int_equal(engine_iter_status(it, &err), OKV_OK);
        engine_iter_free(it);
    }
    *len_out = len;
    return out;
}

/* One command sequence — puts, deletes, conditions, clients with request
 * ids, repeats and watermarks, over every partition of two tables — goes
 * through the committer into one data dir, and through fsm_apply with
 * per-group Raft-style indexes 1, 2, 3, ... (unsynced flushes at other
 * points, as the raft loop does) into another. Results and every stored
 * byte of the data and meta families must be equal. */
static void test_kvstore__single_node_stores_the_bytes_cluster_mode_does(void **state)
{
    (void)state;
    fixture *single = new_fx("kv-single"), *clus = new_fx("kv-cluster");
    open_fx(single);
    okv_error err;
    int ignored;
    assert_int_equal(kvstore_open(&clus->kv, clus->dir, 4, &ignored, &err), OKV_OK);
    fsm *f;
    assert_int_equal(fsm_new(&f, kvstore_engine(clus->kv), &err), OKV_OK);
    uint64_t next_index[2][4] = { { 0 } };

    enum { N = 3000, CHUNK = 500 };
    op_box *boxes = calloc(N, sizeof *boxes);
    command_result *want = calloc(N, sizeof *want);
    uint64_t seed = 777;
    for (int i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t r = seed >> 33;
        char key[16], val[16];
        snprintf(key, sizeof key, "k%llu", (unsigned long long)(r % 40));
        snprintf(val, sizeof val, "v%d", i);
        size_t ti = (r >> 6) % 2;
        prep_in(&boxes[i], single->kv, ti, key, (r >> 8) % 5 == 0 ? NULL : val);
        command *c = &boxes[i].op.cmd;
        c->check_version = (r >> 12) % 3 == 0;
        c->expected_version = (r >> 14) % 2 ? (r >> 15) % 30 : 0;
        c->client_id = (r >> 20) % 4;   /* 0: no dedup */
        if (c->client_id) {
            c->request_id = 1000 + (uint64_t)i / 3 + (r >> 24) % 4;   /* some repeats */
            c->watermark = c->request_id > 1100 ? c->request_id - 100 : 0;
        }
        /* Cluster mode: the entry the raft loop would apply. */
        uint8_t buf[256];
        command_encode(c, buf);
        uint64_t group = fsm_group_id(c->table_id, c->partition);
        uint64_t index = ++next_index[ti][c->partition];
        assert_int_equal(fsm_apply(f, group, index, buf, command_encoded_size(c), &want[i], &err),
                         OKV_OK);
        if ((r >> 28) % 50 == 0)
            assert_int_equal(fsm_flush(f, &err), OKV_OK);
    }
    assert_int_equal(fsm_flush(f, &err), OKV_OK);
    /* Single-node mode: in chunks, so batches hold repeats and reads of
     * writes staged before them. */
    for (int i = 0; i < N; i += CHUNK) {
        for (int j = i; j < i + CHUNK; j++)
            submit(single->com, &boxes[j]);
        wait_all();
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(boxes[i].done_code, OKV_OK);
        assert_int_equal(boxes[i].op.result.code, want[i].code);
        assert_int_equal(boxes[i].op.result.version, want[i].version);
        assert_int_equal(boxes[i].op.result.existed, want[i].existed);
    }
    size_t la, lb;
    char *da = dump(kvstore_engine(single->kv), &la), *db = dump(kvstore_engine(clus->kv), &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(da, db, la);
    free(da);
    free(db);
    free(want);
    free(boxes);
    fsm_free(f);
    free_fx(single);
    free_fx(clus);
}

/* ---- data dirs of the older single-node code ----------------------------- */

/* The older code kept each partition's last version under meta key
 * 'S' u32be table u32be partition (value u64be) and numbered writes from
 * it; it never wrote 'A', 'D' or 'W'. This builds such a dir byte by byte. */
static void put_raw(engine *e, enum engine_cf cf, const uint8_t *k, size_t kl, const uint8_t *v,
                    size_t vl)
{
    okv_error err;
    assert_int_equal(engine_put(e, cf, k, kl, v, vl, 1, &err), OKV_OK);
}

static void old_row(engine *e, uint32_t table, const char *key, uint32_t partitions,
                    uint64_t version, const char *value)
{
    uint8_t k[64], v[64];
    uint32_t p = keycodec_partition_of(key, strlen(key), partitions);
    keycodec_put_u32be(k, table);
    keycodec_put_u32be(k + 4, p);
    memcpy(k + 8, key, strlen(key));
    keycodec_put_u64be(v, version);
    memcpy(v + 8, value, strlen(value));
    put_raw(e, ENGINE_CF_DATA, k, 8 + strlen(key), v, 8 + strlen(value));
}

static void old_seq(engine *e, uint32_t table, const char *key, uint32_t partitions, uint64_t last)
{
    uint8_t k[9] = { 'S' }, v[8];
    keycodec_put_u32be(k + 1, table);
    keycodec_put_u32be(k + 5, keycodec_partition_of(key, strlen(key), partitions));
    keycodec_put_u64be(v, last);
    put_raw(e, ENGINE_CF_META, k, sizeof k, v, sizeof v);
}

static size_t count_meta_tag(engine *e, char tag)
{
    engine_iter *it;
    okv_error err;
    assert_int_equal(engine_iter_new_prefix(&it, e, ENGINE_CF_META, &tag, 1, &err), OKV_OK);
    size_t n = 0;
    for (; engine_iter_valid(it); engine_iter_next(it))
        n++;
    engine_iter_free(it);
    return n;
}

static void test_kvstore__old_single_node_dir_opens_and_keeps_versions(void **state)
{
    (void)state;
    fixture *f = new_fx("kv-old");
    {
        engine *e;
        okv_error err;
        assert_int_equal(engine_open(&e, f->dir, NULL, &err), OKV_OK);
        catalog cat;
        catalog_init_default(&cat, 4);
        char text[1024];
        size_t tl = catalog_encode(&cat, text, sizeof text);
        put_raw(e, ENGINE_CF_META, (const uint8_t *)CATALOG_KEY, sizeof CATALOG_KEY - 1,
                (const uint8_t *)text, tl);
        /* orders: cust1/a at 5, cust1/b at 7; versions 6 and 8 went to
         * deletes, so the partition's sequence is 8. */
        old_row(e, 1, "cust1/a", 4, 5, "old-a");
        old_row(e, 1, "cust1/b", 4, 7, "old-b");
        old_seq(e, 1, "cust1", 4, 8);
        /* payments: x at 3, sequence 3. */
        old_row(e, 2, "x", 4, 3, "old-x");
        old_seq(e, 2, "x", 4, 3);
        engine_close(e);
    }
    open_fx(f);
    engine *e = kvstore_engine(f->kv);
    assert_int_equal(count_meta_tag(e, 'S'), 0);   /* moved into 'A' */
    assert_int_equal(count_meta_tag(e, 'A'), 2);
    uint64_t v;
    get_ok(f->kv, "cust1/a", "old-a", &v);
    assert_int_equal(v, 5);
    get_in(f->kv, 1, "x", "old-x", &v);
    assert_int_equal(v, 3);

    op_box b;
    prep(&b, f->kv, "cust1/c", "new-c");
    assert_int_equal(write_ok(f->com, &b)->version, 9);
    prep(&b, f->kv, "cust1/a", NULL);
    assert_true(write_ok(f->com, &b)->existed);
    assert_int_equal(b.op.result.version, 10);
    prep(&b, f->kv, "cust1/b", "cas");
    b.op.cmd.check_version = 1;
    b.op.cmd.expected_version = 7;   /* an old version still compares */
    assert_int_equal(write_ok(f->com, &b)->code, OKV_OK);
    assert_int_equal(b.op.result.version, 11);
    prep_in(&b, f->kv, 1, "x/2", "new-x2");   /* partition key "x" */
    assert_int_equal(write_ok(f->com, &b)->version, 4);
    prep(&b, f->kv, "fresh", "1");            /* a partition the old code never wrote */
    if (b.op.cmd.partition != keycodec_partition_of("cust1", 5, 4))
        assert_int_equal(write_ok(f->com, &b)->version, 1);

    /* Reopened (the migration finds nothing left to do): still monotonic. */
    close_fx(f);
    open_fx(f);
    assert_int_equal(count_meta_tag(kvstore_engine(f->kv), 'S'), 0);
    get_ok(f->kv, "cust1/a", NULL, &v);
    get_ok(f->kv, "cust1/b", "cas", &v);
    assert_int_equal(v, 11);
    prep(&b, f->kv, "cust1/d", "new-d");
    assert_int_equal(write_ok(f->com, &b)->version, 12);
    free_fx(f);
}

/* A dir where 'A' is already ahead of a leftover 'S' (say the new code ran
 * and something wrote an old record again) keeps the larger: versions never
 * go back. */
static void test_kvstore__migration_never_lowers_the_applied_index(void **state)
{
    fixture *f = *state;
    op_box b;
    for (int i = 0; i < 3; i++) {
        prep(&b, f->kv, "m/1", "v");
        write_ok(f->com, &b);
    }
    assert_int_equal(b.op.result.version, 3);
    close_fx(f);
    {
        engine *e;
        okv_error err;
        assert_int_equal(engine_open(&e, f->dir, NULL, &err), OKV_OK);
        old_seq(e, 1, "m", 4, 2);
        engine_close(e);
    }
    open_fx(f);
    assert_int_equal(count_meta_tag(kvstore_engine(f->kv), 'S'), 0);
    prep(&b, f->kv, "m/2", "v");
    assert_int_equal(write_ok(f->com, &b)->version, 4);
}

int main(void)
{
#define TT(n) cmocka_unit_test_setup_teardown(n, setup, teardown)
    const struct CMUnitTest tests[] = {
        TT(test_kvstore__many_writes_each_done_once_versions_count_up),
        TT(test_kvstore__writes_to_one_key_apply_in_order),
        TT(test_kvstore__version_conditions),
        TT(test_kvstore__durable_and_versions_not_reused_after_reopen),
        TT(test_kvstore__a_retried_request_applies_once),
        TT(test_kvstore__malformed_write_is_refused_alone),
        TT(test_kvstore__scan_merges_partitions_in_key_order),
        TT(test_kvstore__partitions_flag_ignored_on_existing_dir),
        cmocka_unit_test(test_kvstore__single_node_stores_the_bytes_cluster_mode_does),
        cmocka_unit_test(test_kvstore__old_single_node_dir_opens_and_keeps_versions),
        TT(test_kvstore__migration_never_lowers_the_applied_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
