/* One-partition transactions through liborderkv against a real orderkvd:
 * a transfer commits all its writes at one version, a failed condition or
 * floor applies nothing and names the item, the async call reports the
 * same outcome, keys in several partitions are refused, and the builder
 * refuses bad arguments before any round trip. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "okv_test.h"
#include "orderkv.h"

static const char *orderkvd_path = ORDERKVD_PATH;

typedef struct fx {
    char *dir;
    char data[4200];
    okv_test_server srv;
    okv_client *c;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = okv_test_tmpdir("txn");
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    if (okv_test_server_start(&f->srv, orderkvd_path, f->data, NULL) != 0)
        fail_msg("orderkvd did not start; log: %s", f->srv.log_path);
    assert_int_equal(okv_connect(&f->c, f->srv.address, NULL), OKV_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    okv_close(f->c);
    if (f->srv.pid > 0)
        assert_int_equal(okv_test_server_stop(&f->srv, 0), 0);
    okv_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

#define K(s) (s), strlen(s)

static int64_t counter(fx *f, const char *key, uint64_t *version)
{
    okv_value *v = NULL;
    assert_int_equal(okv_get(f->c, "accounts", K(key), &v, 5000), OKV_OK);
    int64_t n = 0;
    assert_int_equal(okv_counter_decode(okv_value_data(v), okv_value_len(v), &n), OKV_OK);
    if (version)
        *version = okv_value_version(v);
    okv_value_free(v);
    return n;
}

static int commit(fx *f, okv_txn_req *t, okv_txn_outcome *o)
{
    int rc = okv_txn_commit(f->c, t, o, 5000);
    okv_txn_req_free(t);
    return rc;
}

static void test_txn__transfer_commits_at_one_version(void **state)
{
    fx *f = *state;
    okv_txn_req *t;
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_add(t, "accounts", K("shop1/alice"), 1000), OKV_OK);
    okv_txn_outcome o;
    assert_int_equal(commit(f, t, &o), OKV_OK);
    assert_true(o.version > 0);

    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_compare(t, "accounts", K("shop1/alice"), OKV_GE, 300), OKV_OK);
    assert_int_equal(okv_txn_req_add_floor(t, "accounts", K("shop1/alice"), -300, 0), OKV_OK);
    assert_int_equal(okv_txn_req_add(t, "accounts", K("shop1/bob"), 300), OKV_OK);
    okv_txn_outcome o2;
    assert_int_equal(commit(f, t, &o2), OKV_OK);
    assert_true(o2.version > o.version);
    uint64_t va, vb;
    assert_int_equal(counter(f, "shop1/alice", &va), 700);
    assert_int_equal(counter(f, "shop1/bob", &vb), 300);
    assert_int_equal(va, o2.version);
    assert_int_equal(vb, o2.version);
}

static void test_txn__failures_apply_nothing_and_name_the_item(void **state)
{
    fx *f = *state;
    okv_txn_req *t;
    okv_txn_outcome o;
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_add(t, "accounts", K("s/a"), 10), OKV_OK);
    assert_int_equal(okv_txn_req_put(t, "accounts", K("s/tag"), "x", 1), OKV_OK);
    assert_int_equal(commit(f, t, &o), OKV_OK);
    uint64_t tag_version = o.version;

    /* The credit comes first and the floored debit stops it: neither applies. */
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_exists(t, "accounts", K("s/tag")), OKV_OK);
    assert_int_equal(okv_txn_req_add(t, "accounts", K("s/b"), 50), OKV_OK);
    assert_int_equal(okv_txn_req_add_floor(t, "accounts", K("s/a"), -50, 0), OKV_OK);
    assert_int_equal(commit(f, t, &o), OKV_ECONDITION);
    assert_int_equal(o.failed, 2);   /* 1 condition, then write 1 */
    assert_int_equal(o.reason, OKV_TXN_FLOOR);
    assert_non_null(strstr(okv_errmsg(f->c), "floor"));
    assert_int_equal(counter(f, "s/a", NULL), 10);
    okv_value *v = NULL;
    assert_int_equal(okv_get(f->c, "accounts", K("s/b"), &v, 5000), OKV_ENOTFOUND);

    /* A version condition that does not hold. */
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_version_is(t, "accounts", K("s/tag"), tag_version + 1), OKV_OK);
    assert_int_equal(okv_txn_req_delete(t, "accounts", K("s/tag")), OKV_OK);
    assert_int_equal(commit(f, t, &o), OKV_ECONDITION);
    assert_int_equal(o.failed, 0);
    assert_int_equal(o.reason, OKV_TXN_CONDITION);
    /* ... and one that does: the delete applies. */
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_version_is(t, "accounts", K("s/tag"), tag_version), OKV_OK);
    assert_int_equal(okv_txn_req_value_is(t, "accounts", K("s/tag"), "x", 1), OKV_OK);
    assert_int_equal(okv_txn_req_delete(t, "accounts", K("s/tag")), OKV_OK);
    assert_int_equal(commit(f, t, &o), OKV_OK);
    assert_int_equal(okv_get(f->c, "accounts", K("s/tag"), &v, 5000), OKV_ENOTFOUND);

    /* A counter condition on a value that is not a counter. */
    assert_int_equal(okv_put(f->c, "accounts", K("s/text"), "hello", 5, NULL, 5000), OKV_OK);
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_add(t, "accounts", K("s/text"), 1), OKV_OK);
    assert_int_equal(commit(f, t, &o), OKV_EINVAL);
    assert_int_equal(o.reason, OKV_TXN_NOT_COUNTER);
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, code;
    okv_txn_outcome o;
} waiter;

static void on_txn(void *arg, const okv_result *r)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->code = okv_result_code(r);
    okv_result_txn_outcome(r, &w->o);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int commit_async(fx *f, const okv_txn_req *t, waiter *w)
{
    memset(&w->o, 0, sizeof w->o);
    w->done = 0;
    int rc = okv_txn_commit_async(f->c, t, 5000, on_txn, w);
    if (rc)
        return rc;
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);   /* the call ends by its deadline */
    pthread_mutex_unlock(&w->mu);
    return w->code;
}

static void test_txn__async_reports_the_same_outcomes(void **state)
{
    fx *f = *state;
    waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, { 0, 0, 0, 0 } };
    okv_txn_req *t;
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_absent(t, "orders", K("c1/o1")), OKV_OK);
    assert_int_equal(okv_txn_req_put(t, "orders", K("c1/o1"), "created", 7), OKV_OK);
    assert_int_equal(commit_async(f, t, &w), OKV_OK);
    assert_true(w.o.version > 0);
    /* The same transaction again: its condition no longer holds. */
    assert_int_equal(commit_async(f, t, &w), OKV_ECONDITION);
    assert_int_equal(w.o.failed, 0);
    assert_int_equal(w.o.reason, OKV_TXN_CONDITION);
    okv_txn_req_free(t);
}

static void test_txn__several_partitions_and_bad_arguments_are_refused(void **state)
{
    fx *f = *state;
    okv_txn_req *t;
    okv_txn_outcome o;
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_put(t, "orders", K("c1/x"), "1", 1), OKV_OK);
    assert_int_equal(okv_txn_req_put(t, "payments", K("c1/x"), "1", 1), OKV_OK);
    /* A single node commits within one partition; across partitions is
     * two-phase commit, on a cluster (tests/cluster/test_tpc.c). */
    assert_int_equal(commit(f, t, &o), OKV_EUNIMPLEMENTED);
    assert_non_null(strstr(okv_errmsg(f->c), "across partitions run on a cluster"));
    okv_value *v = NULL;
    assert_int_equal(okv_get(f->c, "orders", K("c1/x"), &v, 5000), OKV_ENOTFOUND);

    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_put(t, "orders", K("c1/x"), "1", 1), OKV_OK);
    assert_int_equal(okv_txn_req_put(t, "orders", K("c1/x"), "2", 1), OKV_OK);
    assert_int_equal(commit(f, t, &o), OKV_EINVAL);
    assert_non_null(strstr(okv_errmsg(f->c), "at most once"));

    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(commit(f, t, &o), OKV_EINVAL);   /* nothing at all */
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_absent(t, "orders", K("c1/x")), OKV_OK);
    assert_int_equal(commit(f, t, &o), OKV_OK);       /* a check */

    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_put(t, "", K("k"), "v", 1), OKV_EINVAL);
    assert_int_equal(okv_txn_req_put(t, "orders", "", 0, "v", 1), OKV_EINVAL);
    assert_int_equal(okv_txn_req_version_is(t, "orders", K("k"), 0), OKV_EINVAL);
    assert_int_equal(okv_txn_req_compare(t, "orders", K("k"), (okv_cmp)9, 1), OKV_EINVAL);
    for (unsigned i = 0; i < OKV_TXN_MAX_ITEMS; i++) {
        char key[32];
        snprintf(key, sizeof key, "c2/%u", i);
        assert_int_equal(okv_txn_req_delete(t, "orders", K(key)), OKV_OK);
    }
    assert_int_equal(okv_txn_req_delete(t, "orders", K("c2/one-too-many")), OKV_EINVAL);
    assert_int_equal(commit(f, t, &o), OKV_OK);   /* 256 deletes of absent keys */

    assert_int_equal(okv_put(f->c, "orders", K("c3/k"), "v", 1, NULL, 5000), OKV_OK);
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_put(t, "nosuchtable", K("k"), "v", 1), OKV_OK);
    assert_int_equal(commit(f, t, &o), OKV_ENOTFOUND);
    assert_non_null(strstr(okv_errmsg(f->c), "unknown table"));
}

static void test_txn__counter_codec_round_trips(void **state)
{
    (void)state;
    int64_t vals[] = { 0, 1, -1, 1000, INT64_MAX, INT64_MIN };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t b[8];
        int64_t back = 42;
        okv_counter_encode(vals[i], b);
        assert_int_equal(okv_counter_decode(b, 8, &back), OKV_OK);
        assert_true(back == vals[i]);
    }
    uint8_t one[8];
    okv_counter_encode(1, one);
    assert_memory_equal(one, "\0\0\0\0\0\0\0\1", 8);
    int64_t x;
    assert_int_equal(okv_counter_decode(one, 7, &x), OKV_EINVAL);
}

/* ---- interactive transactions (okv_tx) ---------------------------------- */

static void put_counter(fx *f, const char *key, int64_t n)
{
    uint8_t b[8];
    okv_counter_encode(n, b);
    assert_int_equal(okv_put(f->c, "accounts", K(key), b, 8, NULL, 5000), OKV_OK);
}

static int64_t tx_counter(okv_tx *t, const char *key, int *rc)
{
    okv_value *v = NULL;
    int64_t n = 0;
    *rc = okv_tx_get(t, "accounts", K(key), &v, 5000);
    if (*rc == OKV_OK) {
        *rc = okv_counter_decode(okv_value_data(v), okv_value_len(v), &n);
        okv_value_free(v);
    }
    return n;
}

static void test_txn__tx_reads_its_writes_and_conflicts_on_changed_reads(void **state)
{
    fx *f = *state;
    put_counter(f, "x/a", 10);
    okv_tx *t;
    int rc;
    assert_int_equal(okv_tx_begin(f->c, &t), OKV_OK);
    assert_int_equal(tx_counter(t, "x/a", &rc), 10);
    assert_int_equal(rc, OKV_OK);
    assert_int_equal(okv_tx_add(t, "accounts", K("x/a"), 5), OKV_OK);
    assert_int_equal(tx_counter(t, "x/a", &rc), 15);       /* its own add */
    assert_int_equal(okv_tx_put(t, "accounts", K("x/b"), "hi", 2), OKV_OK);
    okv_value *v = NULL;
    assert_int_equal(okv_tx_get(t, "accounts", K("x/b"), &v, 5000), OKV_OK);
    assert_int_equal(okv_value_version(v), 0);              /* not committed yet */
    okv_value_free(v);
    assert_int_equal(okv_tx_delete(t, "accounts", K("x/b")), OKV_OK);
    assert_int_equal(okv_tx_get(t, "accounts", K("x/b"), &v, 5000), OKV_ENOTFOUND);
    assert_int_equal(okv_tx_put(t, "accounts", K("x/c"), "c", 1), OKV_OK);
    okv_txn_outcome o, so;
    assert_int_equal(okv_tx_commit(t, &o, 5000), OKV_OK);
    assert_true(o.txn_id != 0);   /* okv_tx_status: tests/cluster/test_tpc.c */
    okv_tx_free(t);
    uint64_t va;
    assert_int_equal(counter(f, "x/a", &va), 15);
    assert_int_equal(va, o.version);

    /* Someone writes what the transaction read: it applies nothing. */
    assert_int_equal(okv_tx_begin(f->c, &t), OKV_OK);
    assert_int_equal(tx_counter(t, "x/a", &rc), 15);
    assert_int_equal(okv_tx_get(t, "accounts", K("x/new"), &v, 5000), OKV_ENOTFOUND);
    put_counter(f, "x/a", 100);
    assert_int_equal(tx_counter(t, "x/a", &rc), 15);       /* repeatable */
    assert_int_equal(okv_tx_put(t, "accounts", K("x/c"), "changed", 7), OKV_OK);
    assert_int_equal(okv_tx_commit(t, &o, 5000), OKV_ECONFLICT);
    assert_non_null(strstr(okv_errmsg(f->c), "changed after this transaction read it"));
    okv_tx_free(t);
    assert_int_equal(okv_get(f->c, "accounts", K("x/c"), &v, 5000), OKV_OK);
    assert_int_equal(okv_value_len(v), 1);
    okv_value_free(v);

    /* An absent key that appears is a change too; so for a read-only one. */
    assert_int_equal(okv_tx_begin(f->c, &t), OKV_OK);
    assert_int_equal(okv_tx_get(t, "accounts", K("x/new"), &v, 5000), OKV_ENOTFOUND);
    assert_int_equal(tx_counter(t, "x/a", &rc), 100);
    assert_int_equal(okv_tx_commit(t, &o, 5000), OKV_OK);   /* a check */
    assert_int_equal(okv_tx_status(t, o.txn_id, &so, 5000), OKV_EINVAL);   /* wrote nothing */
    okv_tx_free(t);
    assert_int_equal(okv_tx_begin(f->c, &t), OKV_OK);
    assert_int_equal(okv_tx_get(t, "accounts", K("x/new"), &v, 5000), OKV_ENOTFOUND);
    put_counter(f, "x/new", 1);
    assert_int_equal(okv_tx_commit(t, &o, 5000), OKV_ECONFLICT);
    okv_tx_free(t);
}

/* ---- scans in a transaction (okv_tx_scan) ------------------------------- */

static void put_str(fx *f, const char *key, const char *val)
{
    assert_int_equal(okv_put(f->c, "accounts", K(key), val, strlen(val), NULL, 5000), OKV_OK);
}

/* The page's keys joined with ',' (values too when with_values). */
static void page_text(const okv_scan_result *r, int with_values, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < okv_scan_result_count(r); i++) {
        size_t kl, vl;
        const char *k = okv_scan_result_key(r, i, &kl);
        const char *v = okv_scan_result_value(r, i, &vl);
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s", i ? "," : "", (int)kl, k);
        if (with_values)
            n += (size_t)snprintf(out + n, cap - n, "=%.*s", (int)vl, v);
    }
}

static okv_scan_result *tx_scan_prefix(okv_tx *t, const char *prefix, uint32_t limit,
                                       const void *resume, size_t resume_len, int want)
{
    okv_scan_opts o = OKV_SCAN_OPTS_INIT;
    o.prefix = prefix;
    o.prefix_len = strlen(prefix);
    o.limit = limit;
    o.resume = resume;
    o.resume_len = resume_len;
    o.timeout_ms = 5000;
    okv_scan_result *r = NULL;
    assert_int_equal(okv_tx_scan(t, "accounts", &o, &r), want);
    return r;
}

static void test_txn__tx_scan_sees_its_writes_and_commits_in_one_partition(void **state)
{
    fx *f = *state;
    put_str(f, "sc1/a", "1");
    put_str(f, "sc1/b", "2");
    put_counter(f, "sc1/n", 5);
    okv_tx *t;
    assert_int_equal(okv_tx_begin(f->c, &t), OKV_OK);
    char text[512];
    okv_scan_result *r = tx_scan_prefix(t, "sc1/", 0, NULL, 0, OKV_OK);
    page_text(r, 0, text, sizeof text);
    assert_string_equal(text, "sc1/a,sc1/b,sc1/n");
    assert_true(okv_scan_result_version(r, 0) > 0);
    okv_scan_result_free(r);
    /* Its own writes show: a new key, a delete, an add. */
    assert_int_equal(okv_tx_put(t, "accounts", K("sc1/c"), "3", 1), OKV_OK);
    assert_int_equal(okv_tx_delete(t, "accounts", K("sc1/a")), OKV_OK);
    assert_int_equal(okv_tx_add(t, "accounts", K("sc1/n"), 2), OKV_OK);
    r = tx_scan_prefix(t, "sc1/", 0, NULL, 0, OKV_OK);
    page_text(r, 0, text, sizeof text);
    assert_string_equal(text, "sc1/b,sc1/c,sc1/n");
    assert_int_equal(okv_scan_result_version(r, 1), 0);   /* not committed yet */
    size_t vl;
    const void *nv = okv_scan_result_value(r, 2, &vl);
    int64_t n = 0;
    assert_int_equal(okv_counter_decode(nv, vl, &n), OKV_OK);
    assert_int_equal(n, 7);
    okv_scan_result_free(r);
    okv_txn_outcome o;
    assert_int_equal(okv_tx_commit(t, &o, 5000), OKV_OK);
    okv_tx_free(t);
    assert_int_equal(counter(f, "sc1/n", NULL), 7);
}

static void test_txn__tx_scan_catches_phantoms(void **state)
{
    fx *f = *state;
    put_str(f, "sc2/a", "1");
    okv_tx *t;
    okv_txn_outcome o;

    /* Read-write in the scanned partition: an insert there is a conflict. */
    assert_int_equal(okv_tx_begin(f->c, &t), OKV_OK);
    okv_scan_result_free(tx_scan_prefix(t, "sc2/", 0, NULL, 0, OKV_OK));
    put_str(f, "sc2/b", "phantom");
    assert_int_equal(okv_tx_put(t, "accounts", K("sc2/count"), "1", 1), OKV_OK);
    assert_int_equal(okv_tx_commit(t, &o, 5000), OKV_ECONFLICT);
    assert_non_null(strstr(okv_errmsg(f->c), "inserted, deleted or written in a range"));
    okv_tx_free(t);
    okv_value *v = NULL;
    assert_int_equal(okv_get(f->c, "accounts", K("sc2/count"), &v, 5000), OKV_ENOTFOUND);

    /* A delete and an overwrite are changes too. */
    assert_int_equal(okv_tx_begin(f->c, &t), OKV_OK);
    okv_scan_result_free(tx_scan_prefix(t, "sc2/", 0, NULL, 0, OKV_OK));
    assert_int_equal(okv_delete(f->c, "accounts", K("sc2/b"), NULL, 5000), OKV_OK);
    assert_int_equal(okv_tx_put(t, "accounts", K("sc2/count"), "1", 1), OKV_OK);
    assert_int_equal(okv_tx_commit(t, &o, 5000), OKV_ECONFLICT);
    okv_tx_free(t);
    assert_int_equal(okv_tx_begin(f->c, &t), OKV_OK);
    okv_scan_result_free(tx_scan_prefix(t, "sc2/", 0, NULL, 0, OKV_OK));
    put_str(f, "sc2/a", "2");
    assert_int_equal(okv_tx_commit(t, &o, 5000), OKV_ECONFLICT);   /* read-only too */
    okv_tx_free(t);

    /* Paged with a limit: an insert between two pages' keys falls in the
     * second page's range. */
    put_str(f, "sc2/c", "3");
    assert_int_equal(okv_tx_begin(f->c, &t), OKV_OK);
    okv_scan_result *p1 = tx_scan_prefix(t, "sc2/", 1, NULL, 0, OKV_OK);
    assert_int_equal(okv_scan_result_count(p1), 1);
    size_t tl;
    const void *tok = okv_scan_result_resume(p1, &tl);
    assert_non_null(tok);
    okv_scan_result *p2 = tx_scan_prefix(t, "sc2/", 1, tok, tl, OKV_OK);
    char text[256];
    page_text(p2, 0, text, sizeof text);
    assert_string_equal(text, "sc2/c");
    okv_scan_result_free(p1);
    okv_scan_result_free(p2);
    assert_int_equal(okv_tx_commit(t, &o, 5000), OKV_OK);   /* nothing changed */
    okv_tx_free(t);
    assert_int_equal(okv_tx_begin(f->c, &t), OKV_OK);
    p1 = tx_scan_prefix(t, "sc2/", 1, NULL, 0, OKV_OK);
    tok = okv_scan_result_resume(p1, &tl);
    p2 = tx_scan_prefix(t, "sc2/", 1, tok, tl, OKV_OK);
    okv_scan_result_free(p1);
    okv_scan_result_free(p2);
    put_str(f, "sc2/bb", "between");   /* after sc2/a, before sc2/c */
    assert_int_equal(okv_tx_commit(t, &o, 5000), OKV_ECONFLICT);
    okv_tx_free(t);
}

static void test_txn__tx_scan_of_the_table_is_a_read_only_check(void **state)
{
    fx *f = *state;
    put_str(f, "tab/x", "1");
    put_str(f, "zz-other", "1");
    okv_tx *t;
    okv_txn_outcome o;
    okv_scan_opts so = OKV_SCAN_OPTS_INIT;
    so.start = "tab/";
    so.start_len = 4;
    so.end = "tab0";
    so.end_len = 4;
    /* A range without a '/' prefix spans every partition: read-only, it
     * commits as one check per partition. */
    assert_int_equal(okv_tx_begin(f->c, &t), OKV_OK);
    okv_scan_result *r = NULL;
    assert_int_equal(okv_tx_scan(t, "accounts", &so, &r), OKV_OK);
    assert_int_equal(okv_scan_result_count(r), 1);
    okv_scan_result_free(r);
    put_str(f, "zz-other", "2");   /* outside the range: no matter */
    assert_int_equal(okv_tx_commit(t, &o, 5000), OKV_OK);
    okv_tx_free(t);
    assert_int_equal(okv_tx_begin(f->c, &t), OKV_OK);
    assert_int_equal(okv_tx_scan(t, "accounts", &so, &r), OKV_OK);
    okv_scan_result_free(r);
    put_str(f, "tab/y", "new");    /* in the range, in some partition */
    assert_int_equal(okv_tx_commit(t, &o, 5000), OKV_ECONFLICT);
    okv_tx_free(t);

    /* Writing after such a scan commits across partitions (range locks):
     * a node alone has no two-phase commit and says so; nothing written.
     * (cluster.tpc_range commits it on a cluster.) */
    assert_int_equal(okv_tx_begin(f->c, &t), OKV_OK);
    assert_int_equal(okv_tx_scan(t, "accounts", &so, &r), OKV_OK);
    okv_scan_result_free(r);
    assert_int_equal(okv_tx_put(t, "accounts", K("tab/z"), "1", 1), OKV_OK);
    assert_int_equal(okv_tx_commit(t, &o, 5000), OKV_EUNIMPLEMENTED);
    okv_tx_free(t);
    okv_value *v = NULL;
    assert_int_equal(okv_get(f->c, "accounts", K("tab/z"), &v, 5000), OKV_ENOTFOUND);
}

/* Read-modify-write of one counter (get, then put: no server-side add),
 * from several threads at once: okv_tx_run retries the conflicts and no
 * increment is lost. */
#define RMW_THREADS 4
#define RMW_EACH 15

typedef struct rmw {
    okv_client *c;
    int failures;
} rmw;

static int incr(okv_tx *t, void *arg)
{
    (void)arg;
    okv_value *v = NULL;
    int rc = okv_tx_get(t, "accounts", K("rmw/n"), &v, 5000);
    if (rc)
        return rc;
    int64_t n = 0;
    rc = okv_counter_decode(okv_value_data(v), okv_value_len(v), &n);
    okv_value_free(v);
    if (rc)
        return rc;
    uint8_t b[8];
    okv_counter_encode(n + 1, b);
    return okv_tx_put(t, "accounts", K("rmw/n"), b, 8);
}

static void *rmw_main(void *arg)
{
    rmw *r = arg;
    for (int i = 0; i < RMW_EACH; i++)
        if (okv_tx_run(r->c, incr, NULL, NULL, 60000) != OKV_OK)
            r->failures++;
    return NULL;
}

static void test_txn__tx_run_loses_no_increment(void **state)
{
    fx *f = *state;
    put_counter(f, "rmw/n", 0);
    pthread_t th[RMW_THREADS];
    rmw r[RMW_THREADS];
    for (int i = 0; i < RMW_THREADS; i++) {
        r[i].c = f->c;
        r[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, rmw_main, &r[i]), 0);
    }
    for (int i = 0; i < RMW_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].failures, 0);
    }
    assert_int_equal(counter(f, "rmw/n", NULL), RMW_THREADS * RMW_EACH);
}

int main(void)
{
#define T(n) cmocka_unit_test_setup_teardown(n, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_txn__transfer_commits_at_one_version),
        T(test_txn__failures_apply_nothing_and_name_the_item),
        T(test_txn__async_reports_the_same_outcomes),
        T(test_txn__several_partitions_and_bad_arguments_are_refused),
        T(test_txn__tx_reads_its_writes_and_conflicts_on_changed_reads),
        T(test_txn__tx_run_loses_no_increment),
        T(test_txn__tx_scan_sees_its_writes_and_commits_in_one_partition),
        T(test_txn__tx_scan_catches_phantoms),
        T(test_txn__tx_scan_of_the_table_is_a_read_only_check),
        cmocka_unit_test(test_txn__counter_codec_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
