/* The runner's history recorder (jepsen/runner/history.h): the exact JSON
 * and EDN it writes, the info -> fresh process rule, index/time order under
 * concurrent appends, and latency.tsv pairing. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "okv_test.h"

/* Runs fn(h, stream) into a malloc'd string. */
static char *render(const history *h, int (*fn)(const history *, FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(fn(h, f), 0);
    fclose(f);
    return buf;
}

static char *render_value(const jv *v, int edn)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    if (edn)
        jv_write_edn(f, v);
    else
        jv_write_json(f, v);
    fclose(f);
    return buf;
}

/* A small history with every kind of op: a register write that succeeds, a
 * cas that fails, a nemesis op, a read that ends in info. */
static history *sample(void)
{
    history *h = history_new(history_clock_ns(), 2);
    hist_proc p0 = { .id = 0 }, p1 = { .id = 1 };
    history_invoke(h, &p0, "write", jv_pair(jv_int(3), jv_int(4)));
    history_invoke(h, &p1, "cas", jv_pair(jv_int(3), jv_pair(jv_int(1), jv_int(2))));
    history_complete(h, &p0, HIST_OK, jv_pair(jv_int(3), jv_int(4)), "ignored on ok", NULL);
    history_complete(h, &p1, HIST_FAIL, jv_pair(jv_int(3), jv_pair(jv_int(1), jv_int(2))),
                     "conflict", NULL);
    history_append(h, HIST_INFO, HIST_NEMESIS, "kill", jv_str("nodes 1,3"), NULL);
    history_invoke(h, &p0, "read", jv_pair(jv_int(3), jv_null()));
    history_complete(h, &p0, HIST_INFO, jv_pair(jv_int(3), jv_null()), "outcome unknown", NULL);
    return h;
}

/* Replaces every "time":N / :time N with 0 so output compares exactly. */
static void zero_times(char *s, const char *tag)
{
    size_t tl = strlen(tag);
    for (char *p = strstr(s, tag); p; p = strstr(p + tl, tag)) {
        char *d = p + tl;
        if (*d < '0' || *d > '9')
            continue;
        char *e = d;
        while (*e >= '0' && *e <= '9')
            e++;
        *d = '0';
        memmove(d + 1, e, strlen(e) + 1);
    }
}

static void test_history_format__json_is_one_array_in_index_order(void **state)
{
    (void)state;
    history *h = sample();
    char *s = render(h, history_write_json);
    zero_times(s, "\"time\":");
    assert_string_equal(
        s,
        "[\n"
        "{\"index\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":[3,4],\"process\":0,\"time\":0},\n"
        "{\"index\":1,\"type\":\"invoke\",\"f\":\"cas\",\"value\":[3,[1,2]],\"process\":1,\"time\":0},\n"
        "{\"index\":2,\"type\":\"ok\",\"f\":\"write\",\"value\":[3,4],\"process\":0,\"time\":0},\n"
        "{\"index\":3,\"type\":\"fail\",\"f\":\"cas\",\"value\":[3,[1,2]],\"process\":1,\"time\":0,\"error\":\"conflict\"},\n"
        "{\"index\":4,\"type\":\"info\",\"f\":\"kill\",\"value\":\"nodes 1,3\",\"process\":\"nemesis\",\"time\":0},\n"
        "{\"index\":5,\"type\":\"invoke\",\"f\":\"read\",\"value\":[3,null],\"process\":0,\"time\":0},\n"
        "{\"index\":6,\"type\":\"info\",\"f\":\"read\",\"value\":[3,null],\"process\":0,\"time\":0,\"error\":\"outcome unknown\"}\n"
        "]\n");
    free(s);
    history_free(h);
}

static void test_history_format__edn_is_one_map_per_line(void **state)
{
    (void)state;
    history *h = sample();
    char *s = render(h, history_write_edn);
    zero_times(s, ":time ");
    assert_string_equal(
        s,
        "{:index 0, :type :invoke, :f :write, :value [3 4], :process 0, :time 0}\n"
        "{:index 1, :type :invoke, :f :cas, :value [3 [1 2]], :process 1, :time 0}\n"
        "{:index 2, :type :ok, :f :write, :value [3 4], :process 0, :time 0}\n"
        "{:index 3, :type :fail, :f :cas, :value [3 [1 2]], :process 1, :time 0, :error \"conflict\"}\n"
        "{:index 4, :type :info, :f :kill, :value \"nodes 1,3\", :process :nemesis, :time 0}\n"
        "{:index 5, :type :invoke, :f :read, :value [3 nil], :process 0, :time 0}\n"
        "{:index 6, :type :info, :f :read, :value [3 nil], :process 0, :time 0, :error \"outcome unknown\"}\n");
    free(s);
    history_free(h);
}

static void test_history_format__info_retires_the_process(void **state)
{
    (void)state;
    /* Threads run as processes 0..2; fresh ids start at 3. */
    history *h = history_new(history_clock_ns(), 3);
    hist_proc p = { .id = 1 };
    int retired = -1;
    history_invoke(h, &p, "write", jv_int(1));
    history_complete(h, &p, HIST_OK, jv_int(1), NULL, &retired);
    assert_int_equal(retired, 0);
    assert_int_equal(p.id, 1);
    history_invoke(h, &p, "write", jv_int(2));
    history_complete(h, &p, HIST_FAIL, jv_int(2), "unavailable", &retired);
    assert_int_equal(retired, 0);
    assert_int_equal(p.id, 1);
    history_invoke(h, &p, "write", jv_int(3));
    history_complete(h, &p, HIST_INFO, jv_int(3), "unknown", &retired);
    assert_int_equal(retired, 1);
    assert_int_equal(p.id, 3);
    hist_proc q = { .id = 2 };
    history_invoke(h, &q, "read", NULL);
    history_complete(h, &q, HIST_INFO, NULL, "unknown", NULL);
    assert_int_equal(q.id, 4);
    history_invoke(h, &p, "read", NULL);
    history_complete(h, &p, HIST_INFO, NULL, "unknown", NULL);
    assert_int_equal(p.id, 5);
    /* The completion carries the old id and the invoke's f. */
    const hist_op *op = history_op(h, 5);
    assert_int_equal(op->process, 1);
    assert_int_equal(op->type, HIST_INFO);
    assert_string_equal(op->f, "write");
    /* The retired id never appears again. */
    for (size_t i = 6; i < history_count(h); i++)
        assert_true(history_op(h, i)->process != 1 || history_op(h, i)->type != HIST_INVOKE);
    assert_null(history_op(h, history_count(h)));
    history_free(h);
}

static void test_history_format__values_and_escapes(void **state)
{
    (void)state;
    jv *v = jv_list();
    jv_push(v, jv_null());
    jv_push(v, jv_int(-7));
    jv_push(v, jv_str("a\"b\\c\nd\te\x01"));
    jv_push(v, jv_list());
    jv_push(v, jv_pair(jv_int(INT64_MAX), jv_int(INT64_MIN)));
    char *j = render_value(v, 0), *e = render_value(v, 1);
    assert_string_equal(j, "[null,-7,\"a\\\"b\\\\c\\nd\\te?\",[],[9223372036854775807,-9223372036854775808]]");
    assert_string_equal(e, "[nil -7 \"a\\\"b\\\\c\\nd\\te?\" [] [9223372036854775807 -9223372036854775808]]");
    jv *c = jv_copy(v);
    char *j2 = render_value(c, 0);
    assert_string_equal(j, j2);
    free(j);
    free(e);
    free(j2);
    jv_free(v);
    jv_free(c);
    jv_free(NULL);
}

/* A list-append txn value: keywords are EDN keywords and JSON strings, the
 * shape Elle's list-append reads ([[:append 3 7] [:r 4 [1 2]]]). */
static void test_history_format__list_append_txn_value(void **state)
{
    (void)state;
    jv *app = jv_push(jv_pair(jv_kw("append"), jv_int(3)), jv_int(7));
    jv *rd = jv_push(jv_pair(jv_kw("r"), jv_int(4)), jv_pair(jv_int(1), jv_int(2)));
    jv *v = jv_pair(app, rd);
    char *j = render_value(v, 0), *e = render_value(v, 1);
    assert_string_equal(j, "[[\"append\",3,7],[\"r\",4,[1,2]]]");
    assert_string_equal(e, "[[:append 3 7] [:r 4 [1 2]]]");
    jv *c = jv_copy(v);
    char *e2 = render_value(c, 1);
    assert_string_equal(e, e2);
    history *h = history_new(history_clock_ns(), 1);
    hist_proc p0 = { .id = 0 };
    history_invoke(h, &p0, "txn", v);
    history_complete(h, &p0, HIST_OK, c, NULL, NULL);
    char *edn = render(h, history_write_edn);
    assert_non_null(strstr(edn, ":type :ok, :f :txn, :value [[:append 3 7] [:r 4 [1 2]]], :process 0"));
    free(edn);
    history_free(h);
    free(j);
    free(e);
    free(e2);
}

typedef struct appender {
    history *h;
    int id;
} appender;

#define APPEND_THREADS 4
#define APPEND_OPS 2000

static void *append_main(void *arg)
{
    appender *a = arg;
    hist_proc p = { .id = a->id };
    for (int i = 0; i < APPEND_OPS; i++) {
        history_invoke(a->h, &p, "add", jv_int(i));
        history_complete(a->h, &p, i % 100 == 99 ? HIST_INFO : HIST_OK, jv_int(i), "x", NULL);
    }
    return NULL;
}

static void test_history_format__concurrent_appends_keep_index_and_time_order(void **state)
{
    (void)state;
    history *h = history_new(history_clock_ns(), APPEND_THREADS);
    pthread_t th[APPEND_THREADS];
    appender a[APPEND_THREADS];
    for (int i = 0; i < APPEND_THREADS; i++) {
        a[i] = (appender){ h, i };
        assert_int_equal(pthread_create(&th[i], NULL, append_main, &a[i]), 0);
    }
    for (int i = 0; i < APPEND_THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(history_count(h), APPEND_THREADS * APPEND_OPS * 2);
    /* Each process: invoke, completion, invoke, ...; no id reused. */
    int64_t max_id = APPEND_THREADS + APPEND_THREADS * (APPEND_OPS / 100);
    int *open = calloc((size_t)max_id, sizeof *open);
    int *retired = calloc((size_t)max_id, sizeof *retired);
    assert_non_null(open);
    assert_non_null(retired);
    for (size_t i = 0; i < history_count(h); i++) {
        const hist_op *op = history_op(h, i);
        assert_int_equal(op->index, i);
        if (i > 0)
            assert_true(op->time_ns >= history_op(h, i - 1)->time_ns);
        assert_true(op->process >= 0 && op->process < max_id);
        assert_false(retired[op->process]);
        if (op->type == HIST_INVOKE) {
            assert_false(open[op->process]);
            open[op->process] = 1;
        } else {
            assert_true(open[op->process]);
            open[op->process] = 0;
            retired[op->process] = op->type == HIST_INFO;
        }
    }
    free(open);
    free(retired);
    history_counts c;
    history_count_types(h, NULL, &c);
    assert_int_equal(c.invoke, APPEND_THREADS * APPEND_OPS);
    assert_int_equal(c.info, APPEND_THREADS * APPEND_OPS / 100);
    assert_int_equal(c.ok, c.invoke - c.info);
    assert_int_equal(c.nemesis, 0);
    history_free(h);
}

static void test_history_format__latency_pairs_each_completion_with_its_invoke(void **state)
{
    (void)state;
    history *h = sample();
    char *s = render(h, history_write_latency);
    /* Header + write ok, cas fail, read info: no line for the nemesis. */
    int lines = 0;
    for (char *p = s; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 4);
    assert_true(strncmp(s, "# time_s\tlatency_ms\ttype\tf\n", 27) == 0);
    assert_non_null(strstr(s, "\tok\twrite\n"));
    assert_non_null(strstr(s, "\tfail\tcas\n"));
    assert_non_null(strstr(s, "\tinfo\tread\n"));
    assert_null(strstr(s, "kill"));
    history_counts c;
    history_count_types(h, "cas", &c);
    assert_int_equal(c.invoke, 1);
    assert_int_equal(c.fail, 1);
    assert_int_equal(c.nemesis, 1);
    free(s);
    history_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_format__json_is_one_array_in_index_order),
        cmocka_unit_test(test_history_format__edn_is_one_map_per_line),
        cmocka_unit_test(test_history_format__info_retires_the_process),
        cmocka_unit_test(test_history_format__values_and_escapes),
        cmocka_unit_test(test_history_format__list_append_txn_value),
        cmocka_unit_test(test_history_format__concurrent_appends_keep_index_and_time_order),
        cmocka_unit_test(test_history_format__latency_pairs_each_completion_with_its_invoke),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
