/* kvstore + committer over a real RocksDB in a temp dir: versions, conditions,
 * deletes, ordering of writes to one key, scans merged across partitions,
 * and that nothing is lost or reused across a reopen. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "committer.h"
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

static void prep(op_box *b, kvstore *kv, const char *key, const char *value, int is_delete)
{
    memset(b, 0, sizeof *b);
    snprintf(b->key, sizeof b->key, "%s", key);
    snprintf(b->value, sizeof b->value, "%s", value ? value : "");
    const catalog_table *t = &kvstore_catalog(kv)->tables[0];
    b->op.w.table = t;
    b->op.w.is_delete = is_delete;
    b->op.w.key = (const uint8_t *)b->key;
    b->op.w.key_len = strlen(b->key);
    b->op.w.value = (const uint8_t *)b->value;
    b->op.w.value_len = strlen(b->value);
    b->op.w.partition = keycodec_partition_of(b->key, strlen(b->key), t->partitions);
    b->op.done = on_done;
}

static void submit(committer *c, op_box *b)
{
    pthread_mutex_lock(&W.mu);
    W.pending++;
    pthread_mutex_unlock(&W.mu);
    committer_submit(c, &b->op);
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

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = okv_test_tmpdir("kvstore");
    open_fx(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    close_fx(f);
    okv_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void get_ok(kvstore *kv, const char *key, const char *want, uint64_t *version)
{
    const catalog_table *t = &kvstore_catalog(kv)->tables[0];
    uint8_t *val;
    size_t len;
    okv_error err;
    int rc = kvstore_get(kv, t, keycodec_partition_of(key, strlen(key), t->partitions),
                         (const uint8_t *)key, strlen(key), &val, &len, version, &err);
    assert_int_equal(rc, OKV_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(val, want, len);
    free(val);
}

static void test_kvstore__many_writes_each_done_once_unique_versions(void **state)
{
    fixture *f = *state;
    enum { N = 2000 };
    op_box *boxes = calloc(N, sizeof *boxes);
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof k, "cust%d/o%d", i % 37, i);
        prep(&boxes[i], f->kv, k, "v", 0);
        submit(f->com, &boxes[i]);
    }
    wait_all();
    for (int i = 0; i < N; i++) {
        assert_int_equal(boxes[i].done_count, 1);
        assert_int_equal(boxes[i].done_code, OKV_OK);
        for (int j = 0; j < i; j++)
            if (boxes[j].op.w.partition == boxes[i].op.w.partition)
                assert_true(boxes[j].op.w.version < boxes[i].op.w.version);
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
    prep(&b[0], f->kv, "k", "first", 0);
    prep(&b[1], f->kv, "k", NULL, 1);
    prep(&b[2], f->kv, "k", NULL, 1);
    prep(&b[3], f->kv, "k", "last", 0);
    for (int i = 0; i < 4; i++)
        submit(f->com, &b[i]);
    wait_all();
    assert_true(b[1].op.w.existed);    /* saw "first" */
    assert_false(b[2].op.w.existed);   /* saw the delete */
    assert_true(b[0].op.w.version < b[1].op.w.version);
    assert_true(b[2].op.w.version < b[3].op.w.version);
    uint64_t v;
    get_ok(f->kv, "k", "last", &v);
    assert_int_equal(v, b[3].op.w.version);
}

static void test_kvstore__version_conditions(void **state)
{
    fixture *f = *state;
    op_box b;
    prep(&b, f->kv, "acct1", "100", 0);
    b.op.w.check_version = 1;
    b.op.w.expected_version = 0;   /* must be absent */
    submit(f->com, &b);
    wait_all();
    assert_int_equal(b.done_code, OKV_OK);
    uint64_t v1 = b.op.w.version;

    prep(&b, f->kv, "acct1", "200", 0);
    b.op.w.check_version = 1;
    b.op.w.expected_version = 0;
    submit(f->com, &b);
    wait_all();
    assert_int_equal(b.done_code, OKV_ECONFLICT);
    assert_non_null(strstr(b.op.err.msg, "version condition failed"));

    prep(&b, f->kv, "acct1", "300", 0);
    b.op.w.check_version = 1;
    b.op.w.expected_version = v1;
    submit(f->com, &b);
    wait_all();
    assert_int_equal(b.done_code, OKV_OK);
    uint64_t v;
    get_ok(f->kv, "acct1", "300", &v);
    assert_int_equal(v, b.op.w.version);
}

static void test_kvstore__durable_and_versions_not_reused_after_reopen(void **state)
{
    fixture *f = *state;
    op_box b;
    prep(&b, f->kv, "p/1", "x", 0);
    submit(f->com, &b);
    wait_all();
    uint64_t before = b.op.w.version;
    close_fx(f);
    open_fx(f);
    uint64_t v;
    get_ok(f->kv, "p/1", "x", &v);
    assert_int_equal(v, before);
    prep(&b, f->kv, "p/2", "y", 0);   /* same partition key "p" */
    submit(f->com, &b);
    wait_all();
    assert_true(b.op.w.version > before);
}

static void test_kvstore__scan_merges_partitions_in_key_order(void **state)
{
    fixture *f = *state;
    static const char *keys[] = { "b", "a/2", "c/1", "a/1", "ab", "zz", "a" };
    op_box b[7];
    for (int i = 0; i < 7; i++) {
        prep(&b[i], f->kv, keys[i], keys[i], 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kvstore__many_writes_each_done_once_unique_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kvstore__writes_to_one_key_apply_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kvstore__version_conditions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kvstore__durable_and_versions_not_reused_after_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kvstore__scan_merges_partitions_in_key_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kvstore__partitions_flag_ignored_on_existing_dir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
