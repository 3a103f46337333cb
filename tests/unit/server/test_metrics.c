/* The metrics registry, its exposition text and the /metrics endpoint
 * (server/metrics/). */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "metrics_http.h"
#include "okv_http.h"
#include "okv_test.h"

static char *render_all(metrics_registry *r)
{
    size_t need = metrics_render(r, NULL, 0);
    char *buf = malloc(need + 1);
    assert_non_null(buf);
    assert_int_equal(metrics_render(r, buf, need + 1), need);
    assert_int_equal(strlen(buf), need);
    return buf;
}

static double half(void *ctx) { return *(double *)ctx / 2; }

/* The exact text of a small registry: families in registration order,
 * HELP and TYPE once each, series in creation order, histograms
 * cumulative with +Inf, _sum and _count. */
static void test_metrics__render_exact_text(void **state)
{
    (void)state;
    metrics_registry *r = metrics_registry_new();
    metrics_label get_ok[2] = { { "method", "KV/Get" }, { "code", "OK" } };
    metrics_label put_ok[2] = { { "method", "KV/Put" }, { "code", "OK" } };
    metrics_counter *g = metrics_counter_get(r, "t_requests_total", "Calls.", get_ok, 2);
    metrics_counter *p = metrics_counter_get(r, "t_requests_total", "ignored", put_ok, 2);
    metrics_gauge *lag = metrics_gauge_get(r, "t_lag", "Lag\\ of\nthings.", NULL, 0);
    double b[3] = { 0.001, 0.01, 1 };
    metrics_histogram *h = metrics_histogram_get(r, "t_seconds", "Latency.", b, 3, NULL, 0);
    double cb = 5;
    assert_int_equal(metrics_callback_add(r, METRICS_GAUGE, "t_half", "Half.", NULL, 0, half, &cb),
                     0);
    metrics_counter_add(g, 3);
    metrics_counter_inc(p);
    metrics_gauge_set(lag, 10);
    metrics_gauge_add(lag, -12);
    metrics_histogram_observe(h, 0.0005);
    metrics_histogram_observe(h, 0.01);   /* upper-inclusive: the 0.01 bucket */
    metrics_histogram_observe(h, 0.5);
    metrics_histogram_observe(h, 2);
    /* The same name and labels give the same series. */
    assert_ptr_equal(metrics_counter_get(r, "t_requests_total", "Calls.", get_ok, 2), g);
    char *text = render_all(r);
    assert_string_equal(text,
                        "# HELP t_requests_total Calls.\n"
                        "# TYPE t_requests_total counter\n"
                        "t_requests_total{method=\"KV/Get\",code=\"OK\"} 3\n"
                        "t_requests_total{method=\"KV/Put\",code=\"OK\"} 1\n"
                        "# HELP t_lag Lag\\\\ of\\nthings.\n"
                        "# TYPE t_lag gauge\n"
                        "t_lag -2\n"
                        "# HELP t_seconds Latency.\n"
                        "# TYPE t_seconds histogram\n"
                        "t_seconds_bucket{le=\"0.001\"} 1\n"
                        "t_seconds_bucket{le=\"0.01\"} 2\n"
                        "t_seconds_bucket{le=\"1\"} 3\n"
                        "t_seconds_bucket{le=\"+Inf\"} 4\n"
                        "t_seconds_sum 2.5105\n"
                        "t_seconds_count 4\n"
                        "# HELP t_half Half.\n"
                        "# TYPE t_half gauge\n"
                        "t_half 2.5\n");
    free(text);
    metrics_registry_free(r);
}

static void test_metrics__histogram_buckets(void **state)
{
    (void)state;
    metrics_registry *r = metrics_registry_new();
    double b[2] = { 1, 2 };
    metrics_label l = { "method", "x" };
    metrics_histogram *h = metrics_histogram_get(r, "h", "H.", b, 2, &l, 1);
    double vals[] = { -1, 0, 1, 1.0000001, 2, 2.5, INFINITY };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        metrics_histogram_observe(h, vals[i]);
    assert_int_equal(metrics_histogram_bucket(h, 0), 3);   /* -1, 0, 1 */
    assert_int_equal(metrics_histogram_bucket(h, 1), 2);   /* 1.0000001, 2 */
    assert_int_equal(metrics_histogram_bucket(h, 2), 2);   /* 2.5, +Inf */
    assert_int_equal(metrics_histogram_count(h), 7);
    /* Same bounds: same family; other bounds or another type: refused. */
    metrics_label l2 = { "method", "y" };
    assert_non_null(metrics_histogram_get(r, "h", "H.", b, 2, &l2, 1));
    double other[2] = { 1, 3 };
    assert_null(metrics_histogram_get(r, "h", "H.", other, 2, &l2, 1));
    assert_null(metrics_counter_get(r, "h", "H.", NULL, 0));
    double bad[2] = { 2, 1 };
    assert_null(metrics_histogram_get(r, "h2", "H.", bad, 2, NULL, 0));
    char *text = render_all(r);
    assert_non_null(strstr(text, "h_bucket{method=\"x\",le=\"1\"} 3\n"
                                 "h_bucket{method=\"x\",le=\"2\"} 5\n"
                                 "h_bucket{method=\"x\",le=\"+Inf\"} 7\n"
                                 "h_sum{method=\"x\"} +Inf\n"
                                 "h_count{method=\"x\"} 7\n"));
    free(text);
    metrics_registry_free(r);
}

static void test_metrics__labels_escaped_names_checked(void **state)
{
    (void)state;
    metrics_registry *r = metrics_registry_new();
    metrics_label l = { "v", "a\"b\\c\nd" };
    metrics_counter_inc(metrics_counter_get(r, "c_total", "C.", &l, 1));
    char *text = render_all(r);
    assert_non_null(strstr(text, "c_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
    free(text);
    assert_null(metrics_counter_get(r, "1bad", "x", NULL, 0));
    assert_null(metrics_counter_get(r, "bad-name", "x", NULL, 0));
    metrics_label bad = { "bad-label", "x" };
    assert_null(metrics_counter_get(r, "ok_total", "x", &bad, 1));
    metrics_label le = { "le", "x" };
    assert_null(metrics_counter_get(r, "ok_total", "x", &le, 1));
    /* NULL everywhere is a no-op. */
    assert_null(metrics_counter_get(NULL, "x", "x", NULL, 0));
    metrics_counter_inc(NULL);
    metrics_gauge_set(NULL, 1);
    metrics_histogram_observe(NULL, 1);
    assert_int_equal(metrics_counter_value(NULL), 0);
    metrics_registry_free(NULL);
    metrics_registry_free(r);
}

/* Like snprintf: a short buffer gets a NUL-terminated prefix and the
 * length the whole needs. */
static void test_metrics__render_truncates(void **state)
{
    (void)state;
    metrics_registry *r = metrics_registry_new();
    metrics_counter_add(metrics_counter_get(r, "c_total", "C.", NULL, 0), 42);
    char small[10];
    size_t need = metrics_render(r, small, sizeof small);
    assert_int_equal(need, strlen("# HELP c_total C.\n# TYPE c_total counter\nc_total 42\n"));
    assert_string_equal(small, "# HELP c_");
    metrics_registry_free(r);
}

static void test_metrics__process(void **state)
{
    (void)state;
    metrics_registry *r = metrics_registry_new();
    assert_int_equal(metrics_register_process(r), 0);
    char *text = render_all(r);
    const char *names[] = { "\nprocess_cpu_seconds_total ", "\nprocess_resident_memory_bytes ",
                            "\nprocess_open_fds ", "\nprocess_start_time_seconds " };
    for (size_t i = 0; i < 4; i++) {
        const char *at = strstr(text, names[i]);
        assert_non_null(at);
        double v = strtod(at + strlen(names[i]), NULL);
        assert_true(v >= 0);
        if (i == 1 || i == 2)
            assert_true(v > 0);
        if (i == 3)
            assert_true(fabs(v - (double)time(NULL)) < 3600);
    }
    free(text);
    metrics_registry_free(r);
}

/* ---- the HTTP endpoint ---------------------------------------------------------- */

static int connect_to(const char *addr)
{
    int fd = okv_http_connect(addr);
    assert_true(fd >= 0);
    return fd;
}

/* Sends req (len bytes), then reads the answer until the server closes
 * (bounded by 10 s). */
static char *exchange(const char *addr, const char *req, size_t len)
{
    char *resp = okv_http_exchange(addr, req, len);
    assert_non_null(resp);
    return resp;
}

static void expect_status(const char *addr, const char *req, size_t len, const char *status)
{
    char *resp = exchange(addr, req, len);
    if (strncmp(resp, status, strlen(status)) != 0)
        fail_msg("request %.40s...: expected %s, got %.80s", req, status, resp);
    assert_non_null(strstr(resp, "Connection: close\r\n"));
    free(resp);
}

/* A literal request (its bytes without the final NUL). */
#define EXPECT(req, status) expect_status(addr, req, sizeof req - 1, status)

static void test_metrics__http_endpoint(void **state)
{
    (void)state;
    metrics_registry *r = metrics_registry_new();
    metrics_counter_add(metrics_counter_get(r, "c_total", "C.", NULL, 0), 7);
    metrics_http *h;
    okv_error err;
    assert_int_equal(metrics_http_new(&h, r, "127.0.0.1:0", &err), OKV_OK);
    const char *addr = metrics_http_address(h);
    assert_non_null(strstr(addr, "127.0.0.1:"));

    const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    char *resp = exchange(addr, get, strlen(get));
    assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(resp, "\r\n\r\n# HELP c_total C.\n# TYPE c_total counter\nc_total 7\n"));
    free(resp);
    EXPECT("GET /metrics?x=1 HTTP/1.0\n\n", "HTTP/1.1 200 ");
    EXPECT("HEAD /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 200 ");
    EXPECT("GET /nope HTTP/1.1\r\n\r\n", "HTTP/1.1 404 ");
    EXPECT("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 ");           /* the status page */
    EXPECT("GET /status.json HTTP/1.1\r\n\r\n", "HTTP/1.1 503 "); /* no source set */
    EXPECT("POST /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 ");
    EXPECT("garbage\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT("GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT("GET  /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT("\x01\x02\x03\xff binary", "HTTP/1.1 400 ");
    /* Over the bound, with and without an end: 400, and the node goes on. */
    size_t big = 3 * METRICS_HTTP_MAX_REQUEST;
    char *huge = malloc(big);
    memcpy(huge, "GET /metrics HTTP/1.1\r\nX: ", 26);
    memset(huge + 26, 'a', big - 26);
    expect_status(addr, huge, big, "HTTP/1.1 400 ");
    memcpy(huge + big - 4, "\r\n\r\n", 4);
    expect_status(addr, huge, big, "HTTP/1.1 400 ");
    free(huge);
    /* A client that connects and says nothing holds only its own slot. */
    int idle = connect_to(addr);
    expect_status(addr, get, strlen(get), "HTTP/1.1 200 ");
    /* More silent clients than slots: the others wait, nothing breaks. */
    int silent[METRICS_HTTP_MAX_CONNS];
    for (int i = 0; i < METRICS_HTTP_MAX_CONNS; i++)
        silent[i] = connect_to(addr);
    for (int i = 0; i < METRICS_HTTP_MAX_CONNS; i++)
        close(silent[i]);
    expect_status(addr, get, strlen(get), "HTTP/1.1 200 ");
    /* Freed with a connection still open: no leak, no hang. */
    metrics_http_free(h);
    close(idle);
    metrics_registry_free(r);

    assert_int_equal(metrics_http_new(&h, NULL, "nonsense", &err), OKV_EINVAL);
    assert_int_equal(metrics_http_new(&h, NULL, "256.1.1.1:0", &err), OKV_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics__render_exact_text),
        cmocka_unit_test(test_metrics__histogram_buckets),
        cmocka_unit_test(test_metrics__labels_escaped_names_checked),
        cmocka_unit_test(test_metrics__render_truncates),
        cmocka_unit_test(test_metrics__process),
        cmocka_unit_test(test_metrics__http_endpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
