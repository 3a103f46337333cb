/* The status page's pure parts (server/metrics/status_json.c): the JSON of
 * a fixed view, the quantile estimate, samples and their ring, the up/down
 * rule; and the page and /status.json as the metrics endpoint serves them
 * (status_page.c, metrics_http.c). */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics_http.h"
#include "okv_http.h"
#include "okv_test.h"
#include "status_json.h"
#include "status_page.h"

static void test_status_json__exact_text(void **state)
{
    (void)state;
    status_peer nodes[3] = {
        { .id = 1, .address = "127.0.0.1:7401", .self = 1, .heard_ms_ago = -1 },
        { .id = 2, .address = "127.0.0.1:7402", .connected = 1, .heard_ms_ago = 40 },
        { .id = 3, .address = "a\"b\\c\n", .connected = 0, .heard_ms_ago = 5000 },
    };
    status_partition parts[2] = {
        { .table = "meta", .table_id = 0, .partition = 0, .leader = 2, .role = "follower",
          .term = 3, .commit = 10, .applied = 9, .last_index = 10 },
        { .table = "orders", .table_id = 1, .partition = 1, .leader = 1, .role = "leader",
          .term = 4, .commit = 20, .applied = 20, .last_index = 21, .n_replicas = 2,
          .replicas = { { 2, 21 }, { 3, 15 } } },
    };
    status_leader_change changes[1] = {
        { .at_ms = 1700000000123, .table = "orders", .partition = 1, .leader = 1, .term = 4 },
    };
    status_sample samples[2] = {
        { .at_ms = 1700000002000, .requests = 0, .rps = 0, .p50_ms = -1, .p99_ms = -1 },
        { .at_ms = 1700000004000, .requests = 300, .rps = 150, .p50_ms = 1.25, .p99_ms = 9.5 },
    };
    status_view v = { .node_id = 1, .address = "127.0.0.1:7401", .version = "0.1.0",
                      .mode = "cluster", .uptime_s = 12.5, .now_ms = 1700000005000,
                      .nodes = nodes, .n_nodes = 3, .parts = parts, .n_parts = 2,
                      .changes = changes, .n_changes = 1, .samples = samples, .n_samples = 2 };
    size_t len = 0;
    char *json = status_json(&v, &len);
    assert_non_null(json);
    const char *want =
        "{\"node\":{\"id\":1,\"address\":\"127.0.0.1:7401\",\"version\":\"0.1.0\","
        "\"mode\":\"cluster\",\"uptime_s\":12.500,\"now_ms\":1700000005000},"
        "\"down_after_ms\":3000,"
        "\"nodes\":["
        "{\"id\":1,\"address\":\"127.0.0.1:7401\",\"self\":true,\"up\":true,"
        "\"connected\":false,\"heard_ms_ago\":null},"
        "{\"id\":2,\"address\":\"127.0.0.1:7402\",\"self\":false,\"up\":true,"
        "\"connected\":true,\"heard_ms_ago\":40},"
        "{\"id\":3,\"address\":\"a\\\"b\\\\c\\u000a\",\"self\":false,\"up\":false,"
        "\"connected\":false,\"heard_ms_ago\":5000}],"
        "\"partitions\":["
        "{\"table\":\"meta\",\"table_id\":0,\"partition\":0,\"leader\":2,\"role\":\"follower\","
        "\"term\":3,\"commit\":10,\"applied\":9,\"last_index\":10,\"replicas\":[]},"
        "{\"table\":\"orders\",\"table_id\":1,\"partition\":1,\"leader\":1,\"role\":\"leader\","
        "\"term\":4,\"commit\":20,\"applied\":20,\"last_index\":21,\"replicas\":["
        "{\"node\":2,\"match\":21,\"lag\":0},{\"node\":3,\"match\":15,\"lag\":6}]}],"
        "\"leader_changes\":[{\"at_ms\":1700000000123,\"table\":\"orders\",\"partition\":1,"
        "\"leader\":1,\"term\":4}],"
        "\"samples\":["
        "{\"at_ms\":1700000002000,\"requests\":0,\"rps\":0.000,\"p50_ms\":null,\"p99_ms\":null},"
        "{\"at_ms\":1700000004000,\"requests\":300,\"rps\":150.000,\"p50_ms\":1.250,"
        "\"p99_ms\":9.500}]}\n";
    assert_string_equal(json, want);
    assert_int_equal(len, strlen(want));
    free(json);

    /* Empty lists and an unknown leader. */
    parts[0].leader = 0;
    status_view e = { .node_id = 7, .address = "", .version = "v", .mode = "single",
                      .parts = parts, .n_parts = 1 };
    json = status_json(&e, NULL);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"nodes\":[],"));
    assert_non_null(strstr(json, "\"leader\":null,"));
    assert_non_null(strstr(json, "\"leader_changes\":[],\"samples\":[]}"));
    free(json);
}

static void test_status_json__peer_up(void **state)
{
    (void)state;
    status_peer p = { .id = 2, .heard_ms_ago = -1 };
    assert_false(status_peer_up(&p));   /* never heard, no stream */
    p.connected = 1;
    assert_true(status_peer_up(&p));    /* a stream, nothing heard */
    p.connected = 0;
    p.heard_ms_ago = STATUS_DOWN_AFTER_MS;
    assert_true(status_peer_up(&p));
    p.heard_ms_ago = STATUS_DOWN_AFTER_MS + 1;
    assert_false(status_peer_up(&p));
    p.self = 1;
    assert_true(status_peer_up(&p));
}

static void test_status_json__quantile(void **state)
{
    (void)state;
    const double b[3] = { 1, 2, 4 };
    uint64_t none[4] = { 0, 0, 0, 0 };
    assert_true(status_quantile(b, 3, none, 0.5) < 0);
    /* 10 in (0,1], 10 in (1,2]: the median is the first bucket's top. */
    uint64_t two[4] = { 10, 10, 0, 0 };
    assert_true(fabs(status_quantile(b, 3, two, 0.5) - 1.0) < 1e-9);
    assert_true(fabs(status_quantile(b, 3, two, 0.75) - 1.5) < 1e-9);
    assert_true(fabs(status_quantile(b, 3, two, 0.25) - 0.5) < 1e-9);
    /* Above every bound: the highest finite one. */
    uint64_t inf[4] = { 0, 0, 0, 5 };
    assert_true(fabs(status_quantile(b, 3, inf, 0.99) - 4.0) < 1e-9);
    /* Empty buckets below are skipped: all 4 in (2,4]. */
    uint64_t top[4] = { 0, 0, 4, 0 };
    assert_true(fabs(status_quantile(b, 3, top, 0.5) - 3.0) < 1e-9);
}

static void test_status_json__sample_and_ring(void **state)
{
    (void)state;
    const double b[2] = { 0.001, 0.01 };   /* seconds */
    uint64_t prev[3] = { 5, 5, 0 }, cur[3] = { 105, 105, 0 };
    status_sample s;
    status_sample_make(&s, 42, 2000, b, 2, prev, cur);
    assert_int_equal(s.at_ms, 42);
    assert_int_equal(s.requests, 200);
    assert_true(fabs(s.rps - 100.0) < 1e-9);
    assert_true(fabs(s.p50_ms - 1.0) < 1e-9);
    assert_true(fabs(s.p99_ms - 9.82) < 1e-9);   /* 0.001 + 0.009 * 98/100 */
    status_sample_make(&s, 43, 2000, b, 2, cur, cur);
    assert_int_equal(s.requests, 0);
    assert_true(s.p50_ms < 0 && s.p99_ms < 0);

    status_ring *r = calloc(1, sizeof *r);
    status_sample *out = calloc(STATUS_HISTORY, sizeof *out);
    assert_int_equal(status_ring_copy(r, out), 0);
    for (uint64_t i = 1; i <= STATUS_HISTORY + 7; i++) {
        status_sample x = { .at_ms = i };
        status_ring_push(r, &x);
    }
    assert_int_equal(status_ring_copy(r, out), STATUS_HISTORY);
    assert_int_equal(out[0].at_ms, 8);   /* oldest first; the first 7 fell out */
    assert_int_equal(out[STATUS_HISTORY - 1].at_ms, STATUS_HISTORY + 7);
    free(out);
    free(r);
}

/* The page refers to nothing outside itself. */
static void test_status_json__page_self_contained(void **state)
{
    (void)state;
    size_t len = 0;
    const char *page = status_page_html(&len);
    assert_non_null(page);
    assert_int_equal(len, strlen(page));
    assert_true(strncmp(page, "<!DOCTYPE html>", 15) == 0);
    assert_non_null(strstr(page, "/status.json"));
    assert_non_null(strstr(page, "</html>"));
    static const char *const banned[] = { "http:", "https:", "//cdn", "@import", "src=",
                                          "url(", "ws:", "wss:" };
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        if (strcasestr(page, banned[i]))
            fail_msg("the status page contains \"%s\"", banned[i]);
}

/* ---- through the endpoint ------------------------------------------------------- */

/* GET path without Connection: close (the server closes anyway): the
 * whole answer. */
static char *get(const char *addr, const char *path)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    char *resp = okv_http_exchange(addr, req, (size_t)n);
    assert_non_null(resp);
    return resp;
}

static int calls;

static char *fixed_json(void *ctx, size_t *len)
{
    calls++;
    *len = strlen(ctx);
    return strdup(ctx);
}

static void test_status_json__served(void **state)
{
    (void)state;
    metrics_registry *r = metrics_registry_new();
    metrics_http *h;
    okv_error err;
    assert_int_equal(metrics_http_new(&h, r, "127.0.0.1:0", &err), OKV_OK);
    const char *addr = metrics_http_address(h);

    char *resp = get(addr, "/");
    assert_true(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(resp, "Content-Type: text/html; charset=utf-8\r\n"));
    const char *body = strstr(resp, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, status_page_html(NULL));
    free(resp);
    resp = get(addr, "/status");
    assert_true(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
    free(resp);

    resp = get(addr, "/status.json");
    assert_true(strncmp(resp, "HTTP/1.1 503 ", 13) == 0);
    free(resp);
    metrics_http_set_status(h, fixed_json, "{\"ok\":true}\n");
    resp = get(addr, "/status.json?t=1");
    assert_true(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(resp, "Content-Type: application/json\r\n"));
    assert_non_null(strstr(resp, "Content-Length: 12\r\n"));
    assert_non_null(strstr(resp, "\r\n\r\n{\"ok\":true}\n"));
    assert_int_equal(calls, 1);
    free(resp);
    metrics_http_set_status(h, NULL, NULL);
    resp = get(addr, "/status.json");
    assert_true(strncmp(resp, "HTTP/1.1 503 ", 13) == 0);
    free(resp);
    metrics_http_free(h);
    metrics_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_json__exact_text),
        cmocka_unit_test(test_status_json__peer_up),
        cmocka_unit_test(test_status_json__quantile),
        cmocka_unit_test(test_status_json__sample_and_ring),
        cmocka_unit_test(test_status_json__page_self_contained),
        cmocka_unit_test(test_status_json__served),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
