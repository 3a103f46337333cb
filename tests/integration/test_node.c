/* A real orderkvd process on a free loopback port, driven through
 * liborderkv: every call, concurrency, restarts (clean and kill -9) with
 * every acknowledged write read back, SIGTERM with writes in flight, and
 * data dirs the node must refuse. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "okv_test.h"
#include "orderkv.h"

static const char *orderkvd_path = ORDERKVD_PATH;

typedef struct fx {
    char *dir;
    char data[4200];
    okv_test_server srv;
    okv_client *c;
} fx;

static void start(fx *f)
{
    if (okv_test_server_start(&f->srv, orderkvd_path, f->data, NULL) != 0)
        fail_msg("orderkvd did not start; log: %s", f->srv.log_path);
    assert_int_equal(okv_connect(&f->c, f->srv.address, NULL), OKV_OK);
}

static int stop(fx *f, int hard)
{
    okv_close(f->c);
    f->c = NULL;
    return okv_test_server_stop(&f->srv, hard);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = okv_test_tmpdir("node");
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    start(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->srv.pid > 0)
        stop(f, 1);
    okv_close(f->c);
    okv_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void expect_stored(okv_client *c, const char *table, const char *key, const void *want,
                         size_t want_len)
{
    okv_value *v = NULL;
    int rc = okv_get(c, table, key, strlen(key), &v, 5000);
    if (rc)
        fail_msg("get %s/%s: %s: %s", table, key, okv_strerror(rc), okv_errmsg(c));
    assert_int_equal(okv_value_len(v), want_len);
    assert_memory_equal(okv_value_data(v), want, want_len);
    okv_value_free(v);
}

static void test_node__put_get_delete(void **state)
{
    fx *f = *state;
    uint64_t v1, v2;
    assert_int_equal(okv_put(f->c, "orders", "cust1/o1", 8, "hello", 5, &v1, 0), OKV_OK);
    expect_stored(f->c, "orders", "cust1/o1", "hello", 5);
    assert_int_equal(okv_put(f->c, "orders", "cust1/o1", 8, "", 0, &v2, 0), OKV_OK);
    assert_true(v2 > v1);
    expect_stored(f->c, "orders", "cust1/o1", "", 0);
    okv_value *v;
    assert_int_equal(okv_get(f->c, "orders", "cust1/o1", 8, &v, 0), OKV_OK);
    assert_int_equal(okv_value_version(v), v2);
    okv_value_free(v);
    int existed = -1;
    assert_int_equal(okv_delete(f->c, "orders", "cust1/o1", 8, &existed, 0), OKV_OK);
    assert_int_equal(existed, 1);
    assert_int_equal(okv_delete(f->c, "orders", "cust1/o1", 8, &existed, 0), OKV_OK);
    assert_int_equal(existed, 0);
    assert_int_equal(okv_get(f->c, "orders", "cust1/o1", 8, &v, 0), OKV_ENOTFOUND);
    /* Tables are separate keyspaces. */
    assert_int_equal(okv_put(f->c, "payments", "k", 1, "p", 1, NULL, 0), OKV_OK);
    assert_int_equal(okv_get(f->c, "accounts", "k", 1, &v, 0), OKV_ENOTFOUND);
}

static void test_node__bad_requests_get_precise_errors(void **state)
{
    fx *f = *state;
    okv_value *v;
    assert_int_equal(okv_get(f->c, "refunds", "k", 1, &v, 0), OKV_ENOTFOUND);
    assert_non_null(strstr(okv_errmsg(f->c), "unknown table 'refunds'"));
    assert_int_equal(okv_put(f->c, "refunds", "k", 1, "v", 1, NULL, 0), OKV_ENOTFOUND);
    char *big = calloc(1, OKV_MAX_VALUE_LEN);
    assert_int_equal(okv_put(f->c, "orders", "big", 3, big, OKV_MAX_VALUE_LEN, NULL, 10000), OKV_OK);
    expect_stored(f->c, "orders", "big", big, OKV_MAX_VALUE_LEN);
    free(big);
    /* The server is still up and serving. */
    assert_int_equal(okv_put(f->c, "orders", "after", 5, "ok", 2, NULL, 0), OKV_OK);
}

static void test_node__compare_and_set(void **state)
{
    fx *f = *state;
    uint64_t v1, v2;
    assert_int_equal(okv_put_if(f->c, "accounts", "a1", 2, "100", 3, 0, &v1, 0), OKV_OK);
    assert_int_equal(okv_put_if(f->c, "accounts", "a1", 2, "999", 3, 0, NULL, 0), OKV_ECONFLICT);
    assert_int_equal(okv_put_if(f->c, "accounts", "a1", 2, "150", 3, v1 + 1000, NULL, 0),
                     OKV_ECONFLICT);
    assert_int_equal(okv_put_if(f->c, "accounts", "a1", 2, "150", 3, v1, &v2, 0), OKV_OK);
    assert_true(v2 > v1);
    expect_stored(f->c, "accounts", "a1", "150", 3);
}

static void test_node__scan_pages_in_key_order(void **state)
{
    fx *f = *state;
    enum { N = 57 };
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "c%02d/o", i);
        assert_int_equal(okv_put(f->c, "orders", key, strlen(key), key, strlen(key), NULL, 0), OKV_OK);
    }
    assert_int_equal(okv_put(f->c, "orders", "d/x", 3, "x", 1, NULL, 0), OKV_OK);
    okv_scan_opts o = OKV_SCAN_OPTS_INIT;
    o.prefix = "c";
    o.prefix_len = 1;
    o.limit = 10;
    int seen = 0, pages = 0;
    char *resume = NULL;
    for (;;) {
        okv_scan_result *r;
        assert_int_equal(okv_scan(f->c, "orders", &o, &r), OKV_OK);
        pages++;
        for (size_t i = 0; i < okv_scan_result_count(r); i++) {
            size_t kl;
            const char *k = okv_scan_result_key(r, i, &kl);
            snprintf(key, sizeof key, "c%02d/o", seen);
            assert_int_equal(kl, strlen(key));
            assert_memory_equal(k, key, kl);
            assert_true(okv_scan_result_version(r, i) > 0);
            seen++;
        }
        size_t tl;
        const void *tok = okv_scan_result_resume(r, &tl);
        free(resume);
        resume = tok ? malloc(tl) : NULL;
        if (tok)
            memcpy(resume, tok, tl);
        okv_scan_result_free(r);
        if (!resume)
            break;
        o.resume = resume;
        o.resume_len = tl;
    }
    assert_int_equal(seen, N);
    assert_int_equal(pages, 6);
    /* A range scan with one partition key. */
    okv_scan_opts o2 = OKV_SCAN_OPTS_INIT;
    o2.start = "c10";
    o2.start_len = 3;
    o2.end = "c13";
    o2.end_len = 3;
    okv_scan_result *r;
    assert_int_equal(okv_scan(f->c, "orders", &o2, &r), OKV_OK);
    assert_int_equal(okv_scan_result_count(r), 3);
    okv_scan_result_free(r);
}

static void test_node__status(void **state)
{
    fx *f = *state;
    assert_int_equal(okv_put(f->c, "orders", "s", 1, "v", 1, NULL, 0), OKV_OK);
    okv_status *s;
    assert_int_equal(okv_status_get(f->c, &s, 0), OKV_OK);
    assert_int_equal(okv_status_table_count(s), 4);
    assert_string_equal(okv_status_table_name(s, 0), "orders");
    assert_int_equal(okv_status_table_partitions(s, 1), 8);
    assert_string_equal(okv_status_server_version(s), OKV_VERSION_STRING);
    assert_true(okv_status_counter(s, "writes") >= 1);
    assert_true(okv_status_counter(s, "syncs") >= 1);
    assert_string_equal(okv_status_address(s), f->srv.address);
    okv_status_free(s);
}

/* ---- concurrency and restarts ---------------------------------------- */

#define WRITERS 8
#define PER_WRITER 150

typedef struct writer_arg {
    okv_client *c;
    int id;
    atomic_int *stop;
    int acked[PER_WRITER * 20];   /* 1 = acknowledged, 2 = unknown outcome */
    int attempted;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *w = p;
    for (int i = 0; i < PER_WRITER * 20; i++) {
        if (w->stop ? atomic_load(w->stop) : i >= PER_WRITER)
            break;
        char key[32], val[32];
        snprintf(key, sizeof key, "w%d/%d", w->id, i);
        snprintf(val, sizeof val, "value-%d-%d", w->id, i);
        int rc = okv_put(w->c, "orders", key, strlen(key), val, strlen(val), NULL, 5000);
        w->acked[i] = rc == OKV_OK ? 1 : rc == OKV_EUNKNOWN ? 2 : 0;
        w->attempted = i + 1;
    }
    return NULL;
}

static void check_acked(okv_client *c, writer_arg *ws, int n)
{
    int checked = 0;
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < ws[t].attempted; i++) {
            if (ws[t].acked[i] != 1)
                continue;
            char key[32], val[32];
            snprintf(key, sizeof key, "w%d/%d", t, i);
            snprintf(val, sizeof val, "value-%d-%d", t, i);
            expect_stored(c, "orders", key, val, strlen(val));
            checked++;
        }
    }
    assert_true(checked > 0);
}

static void test_node__concurrent_writers_then_restart(void **state)
{
    fx *f = *state;
    writer_arg ws[WRITERS];
    pthread_t th[WRITERS];
    memset(ws, 0, sizeof ws);
    for (int t = 0; t < WRITERS; t++) {
        ws[t].c = f->c;   /* one thread-safe handle shared by all */
        ws[t].id = t;
        pthread_create(&th[t], NULL, writer, &ws[t]);
    }
    for (int t = 0; t < WRITERS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < WRITERS; t++)
        for (int i = 0; i < PER_WRITER; i++)
            assert_int_equal(ws[t].acked[i], 1);
    assert_int_equal(stop(f, 0), 0);     /* SIGTERM: clean exit 0 */
    start(f);
    check_acked(f->c, ws, WRITERS);
    assert_int_equal(stop(f, 1), 128 + SIGKILL);   /* kill -9 loses nothing acknowledged */
    start(f);
    check_acked(f->c, ws, WRITERS);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* kill -9 (or SIGTERM) while writers are mid-flight: every write that was
 * acknowledged is there after the restart. */
static void crash_mid_flight(fx *f, int hard)
{
    writer_arg ws[WRITERS];
    pthread_t th[WRITERS];
    atomic_int stop_flag = 0;
    memset(ws, 0, sizeof ws);
    okv_client *clients[WRITERS];
    for (int t = 0; t < WRITERS; t++) {
        assert_int_equal(okv_connect(&clients[t], f->srv.address, NULL), OKV_OK);
        ws[t].c = clients[t];
        ws[t].id = t;
        ws[t].stop = &stop_flag;
        pthread_create(&th[t], NULL, writer, &ws[t]);
    }
    sleep_ms(300);
    int status = okv_test_server_stop(&f->srv, hard);
    if (!hard)
        assert_int_equal(status, 0);
    atomic_store(&stop_flag, 1);
    for (int t = 0; t < WRITERS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < WRITERS; t++)
        okv_close(clients[t]);
    okv_close(f->c);
    f->c = NULL;
    start(f);
    check_acked(f->c, ws, WRITERS);
}

static void test_node__kill9_mid_flight_loses_nothing_acknowledged(void **state)
{
    crash_mid_flight(*state, 1);
}

static void test_node__sigterm_mid_flight_exits_0_and_loses_nothing(void **state)
{
    crash_mid_flight(*state, 0);
}

/* ---- data dirs the node must refuse ------------------------------------ */

static int start_expect_failure(fx *f, const char *needle)
{
    okv_test_server s = { 0 };
    int rc = okv_test_server_start(&s, orderkvd_path, f->data, NULL);
    if (rc == 0) {
        okv_test_server_stop(&s, 1);
        fail_msg("orderkvd started on a data dir it should refuse");
    }
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "grep -q -- \"%s\" '%s'", needle, s.log_path);
    return system(cmd);
}

static void test_node__refuses_other_format_version(void **state)
{
    fx *f = *state;
    stop(f, 0);
    engine *e;
    okv_error err;
    assert_int_equal(engine_open(&e, f->data, NULL, &err), OKV_OK);
    const char rec[] = "orderkv-format:2";
    assert_int_equal(engine_put(e, ENGINE_CF_META, ENGINE_FORMAT_KEY, sizeof ENGINE_FORMAT_KEY - 1,
                                rec, sizeof rec - 1, 1, &err),
                     OKV_OK);
    engine_close(e);
    assert_int_equal(start_expect_failure(f, "format version 2"), 0);
}

static void test_node__refuses_corrupt_data_dir(void **state)
{
    fx *f = *state;
    assert_int_equal(okv_put(f->c, "orders", "k", 1, "v", 1, NULL, 0), OKV_OK);
    stop(f, 0);
    char path[4300];
    snprintf(path, sizeof path, "%s/CURRENT", f->data);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("MANIFEST-999999\n", fp);   /* names a manifest that does not exist */
    fclose(fp);
    assert_int_equal(start_expect_failure(f, "cannot open data dir"), 0);
}

/* A single-node dir whose every row was deleted still holds applied
 * indexes and exactly-once records: a cluster replica started on it would
 * have applied indexes ahead of its empty Raft log. */
static void test_node__cluster_start_refuses_an_emptied_single_node_dir(void **state)
{
    fx *f = *state;
    okv_options o = OKV_OPTIONS_INIT;
    okv_close(f->c);
    o.client_id = 77;
    assert_int_equal(okv_connect(&f->c, f->srv.address, &o), OKV_OK);
    assert_int_equal(okv_put(f->c, "orders", "k", 1, "v", 1, NULL, 0), OKV_OK);
    assert_int_equal(okv_delete(f->c, "orders", "k", 1, NULL, 0), OKV_OK);
    stop(f, 0);
    okv_test_server s = { 0 };
    int rc = okv_test_server_start(&s, orderkvd_path, f->data, "--node-id", "1",
                                   "--initial-cluster", "1=127.0.0.1:1", NULL);
    if (rc == 0) {
        okv_test_server_stop(&s, 1);
        fail_msg("a cluster node started on a single-node data dir");
    }
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "grep -q -- 'holds data of a single-node' '%s'", s.log_path);
    assert_int_equal(system(cmd), 0);
}

static void test_node__refuses_a_second_node_on_the_same_dir(void **state)
{
    fx *f = *state;
    assert_int_equal(start_expect_failure(f, "cannot open data dir"), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_node__put_get_delete),
        T(test_node__bad_requests_get_precise_errors),
        T(test_node__compare_and_set),
        T(test_node__scan_pages_in_key_order),
        T(test_node__status),
        T(test_node__concurrent_writers_then_restart),
        T(test_node__kill9_mid_flight_loses_nothing_acknowledged),
        T(test_node__sigterm_mid_flight_exits_0_and_loses_nothing),
        T(test_node__refuses_other_format_version),
        T(test_node__refuses_corrupt_data_dir),
        T(test_node__refuses_a_second_node_on_the_same_dir),
        T(test_node__cluster_start_refuses_an_emptied_single_node_dir),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
