/* /metrics on a 3-node cluster of real orderkvd processes on loopback
 * (docs/operations.md "Metrics").
 *
 * test_cluster_metrics:
 *   - every node is started with --metrics-listen 127.0.0.1:0 and logs
 *     the address it bound;
 *   - a scrape of each node parses as the text format 0.0.4: every line
 *     is `# HELP`, `# TYPE` or a sample `name{labels} value`, and every
 *     sample's family has HELP and TYPE before it;
 *   - after PUTS puts through liborderkv, the put counter summed over the
 *     cluster grew by at least PUTS, and so did the Raft proposals; a
 *     committed, a refused and a two-phase transaction are counted;
 *   - garbage and an oversized request get 400 and the node goes on
 *     serving both /metrics and its clients.
 * test_cluster_metrics --prometheus: a real Prometheus (PROMETHEUS, else
 *   `prometheus` on PATH; exit 77 = skipped if there is none) scrapes the
 *   three nodes every second; within 90 s its query API shows three
 *   targets up and the put counter at PUTS or more. Prometheus is killed
 *   by PID at the end (and, should this test die first, by the kernel:
 *   PR_SET_PDEATHSIG).
 *
 * OKV_KEEP_CLUSTER_DIR=1 keeps the data dirs and logs. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "okv_cluster.h"
#include "okv_http.h"
#include "okv_test.h"
#include "orderkv.h"

static const char *orderkvd_path = ORDERKVD_PATH;

#define TICK_MS 50
#define PUTS 40
#define CALL_MS 10000
#define PUT_SERIES "orderkv_rpc_requests_total{method=\"KV/Put\",code=\"OK\"}"

static int with_prometheus;
static pid_t prom_pid;

/* ---- the exposition format ------------------------------------------------------- */

/* Checks text line by line; fails the test naming the line. Returns the
 * number of samples. */
static int check_format(const char *text)
{
    char helped[256][128], typed[256][128];
    int nh = 0, nt = 0, samples = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            fail_msg("last line has no newline: %.80s", p);
        char line[4096];
        size_t len = (size_t)(nl - p);
        assert_true(len < sizeof line);
        memcpy(line, p, len);
        line[len] = '\0';
        p = nl + 1;
        char name[128];
        if (strncmp(line, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%127s", name), 1);
            assert_true(nh < 256);
            snprintf(helped[nh++], sizeof helped[0], "%s", name);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char type[32];
            assert_int_equal(sscanf(line + 7, "%127s %31s", name, type), 2);
            if (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram"))
                fail_msg("bad type: %s", line);
            assert_true(nt < 256);
            snprintf(typed[nt++], sizeof typed[0], "%s", name);
            continue;
        }
        /* name{labels} value */
        size_t k = 0;
        while (line[k] && (line[k] == '_' || line[k] == ':' || (line[k] >= 'a' && line[k] <= 'z') ||
                           (line[k] >= 'A' && line[k] <= 'Z') || (line[k] >= '0' && line[k] <= '9')))
            k++;
        if (k == 0 || k >= sizeof name)
            fail_msg("not a sample: %s", line);
        memcpy(name, line, k);
        name[k] = '\0';
        const char *rest = line + k;
        if (*rest == '{') {
            /* label="value" pairs, values with \" \\ \n escapes */
            rest++;
            while (*rest != '}') {
                const char *eq = strchr(rest, '=');
                if (!eq || eq == rest || eq[1] != '"')
                    fail_msg("bad labels: %s", line);
                rest = eq + 2;
                while (*rest && *rest != '"')
                    rest += *rest == '\\' && rest[1] ? 2 : 1;
                if (*rest != '"')
                    fail_msg("unterminated label value: %s", line);
                rest++;
                if (*rest == ',')
                    rest++;
                else if (*rest != '}')
                    fail_msg("bad labels: %s", line);
            }
            rest++;
        }
        if (*rest != ' ')
            fail_msg("no value: %s", line);
        rest++;
        char *end;
        if (strcmp(rest, "+Inf") && strcmp(rest, "-Inf") && strcmp(rest, "NaN")) {
            strtod(rest, &end);
            if (end == rest || *end)
                fail_msg("bad value: %s", line);
        }
        /* Its family: the name itself, or without a histogram suffix. */
        int found = 0;
        for (int i = 0; i < nt && !found; i++) {
            size_t fl = strlen(typed[i]);
            if (strcmp(name, typed[i]) == 0 ||
                (strncmp(name, typed[i], fl) == 0 &&
                 (!strcmp(name + fl, "_bucket") || !strcmp(name + fl, "_sum") ||
                  !strcmp(name + fl, "_count"))))
                for (int j = 0; j < nh && !found; j++)
                    found = strcmp(helped[j], typed[i]) == 0;
        }
        if (!found)
            fail_msg("sample of a family without HELP and TYPE: %s", line);
        samples++;
    }
    return samples;
}

/* The value of the sample whose name and labels are exactly `series`, or
 * 0 if absent. */
static double sample_value(const char *text, const char *series)
{
    size_t sl = strlen(series);
    for (const char *p = text; (p = strstr(p, series)); p += sl)
        if ((p == text || p[-1] == '\n') && p[sl] == ' ')
            return strtod(p + sl + 1, NULL);
    return 0;
}

/* ---- the cluster ------------------------------------------------------------------ */

typedef struct fixture {
    okv_cluster *c;
    char metrics[OKV_CLUSTER_MAX_NODES + 1][128];   /* host:port by node id */
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    *state = fx;
    return okv_cluster_start_with_metrics(&fx->c, orderkvd_path, 3, TICK_MS, fx->metrics);
}

static void stop_prometheus(void)
{
    if (prom_pid <= 0)
        return;
    kill(prom_pid, SIGTERM);
    int status;
    for (int i = 0; i < 100; i++) {   /* 10 s, then SIGKILL */
        if (waitpid(prom_pid, &status, WNOHANG) == prom_pid) {
            prom_pid = 0;
            return;
        }
        okv_cluster_sleep_ms(100);
    }
    kill(prom_pid, SIGKILL);
    waitpid(prom_pid, &status, 0);
    prom_pid = 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    stop_prometheus();
    if (fx)
        okv_cluster_free(fx->c);
    free(fx);
    return 0;
}

/* The put counter summed over the three nodes; every scrape checked. */
static double cluster_puts(fixture *fx)
{
    double sum = 0;
    for (int id = 1; id <= 3; id++) {
        char *text = okv_http_get(fx->metrics[id], "/metrics", NULL, 0);
        if (!text)
            fail_msg("node %d: GET /metrics at %s failed", id, fx->metrics[id]);
        assert_true(check_format(text) > 10);
        sum += sample_value(text, PUT_SERIES);
        free(text);
    }
    return sum;
}

static void do_puts(fixture *fx, int n)
{
    okv_client *cl = NULL;
    assert_int_equal(okv_connect(&cl, fx->c->all, NULL), OKV_OK);
    for (int i = 0; i < n; i++) {
        char key[32], val[32];
        snprintf(key, sizeof key, "m%d/k", i);
        snprintf(val, sizeof val, "v%d", i);
        uint64_t version;
        int rc = okv_put(cl, "orders", key, strlen(key), val, strlen(val), &version, CALL_MS);
        if (rc != OKV_OK)
            fail_msg("put %s: %s: %s", key, okv_strerror(rc), okv_errmsg(cl));
    }
    okv_close(cl);
}

/* A series summed over the three nodes. */
static double cluster_sum(fixture *fx, const char *series)
{
    double sum = 0;
    for (int id = 1; id <= 3; id++) {
        char *text = okv_http_get(fx->metrics[id], "/metrics", NULL, 0);
        assert_non_null(text);
        sum += sample_value(text, series);
        free(text);
    }
    return sum;
}

/* One transaction in one partition that commits, one that a condition
 * stops, one across tables (two-phase commit) that commits. */
static void do_txns(fixture *fx)
{
    okv_client *cl = NULL;
    assert_int_equal(okv_connect(&cl, fx->c->all, NULL), OKV_OK);
    okv_txn_req *t = NULL;
    okv_txn_outcome o;
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    okv_txn_req_put(t, "orders", "t1/a", 4, "x", 1);
    okv_txn_req_put(t, "orders", "t1/b", 4, "y", 1);
    assert_int_equal(okv_txn_commit(cl, t, &o, CALL_MS), OKV_OK);
    okv_txn_req_free(t);
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    okv_txn_req_absent(t, "orders", "t1/a", 4);
    okv_txn_req_put(t, "orders", "t1/c", 4, "z", 1);
    assert_int_equal(okv_txn_commit(cl, t, &o, CALL_MS), OKV_ECONDITION);
    okv_txn_req_free(t);
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    okv_txn_req_put(t, "orders", "t2/a", 4, "x", 1);
    okv_txn_req_put(t, "payments", "t2/b", 4, "y", 1);
    int rc = okv_txn_commit(cl, t, &o, CALL_MS);
    if (rc != OKV_OK)
        fail_msg("two-phase txn: %s: %s", okv_strerror(rc), okv_errmsg(cl));
    okv_txn_req_free(t);
    okv_close(cl);
}

static void scrape_counts_puts_and_survives_garbage(void **state)
{
    fixture *fx = *state;
    double before = cluster_puts(fx);
    do_puts(fx, PUTS);
    double after = cluster_puts(fx);
    fprintf(stderr, "put counter over the cluster: %.0f -> %.0f after %d puts\n", before, after,
            PUTS);
    assert_true(after - before >= PUTS);

    /* Each node: the info gauge with its id, Raft proposals counted. */
    double proposals = 0, led = 0;
    for (int id = 1; id <= 3; id++) {
        char *text = okv_http_get(fx->metrics[id], "/metrics", NULL, 0);
        assert_non_null(text);
        char info[128];
        snprintf(info, sizeof info,
                 "orderkv_node_info{node_id=\"%d\",version=\"%s\",mode=\"cluster\"}", id,
                 OKV_VERSION_STRING);
        assert_true(sample_value(text, info) == 1);
        proposals += sample_value(text, "orderkv_raft_proposals_total");
        led += sample_value(text, "orderkv_partitions_led");
        assert_non_null(strstr(text, "\nprocess_resident_memory_bytes "));
        free(text);
    }
    assert_true(proposals >= PUTS);
    assert_true(led >= 1);

    /* Transactions: by path and outcome. */
    do_txns(fx);
    assert_true(cluster_sum(fx, "orderkv_txn_commits_total{path=\"one_partition\"}") >= 1);
    assert_true(cluster_sum(fx, "orderkv_txn_aborts_total{path=\"one_partition\"}") >= 1);
    assert_true(cluster_sum(fx, "orderkv_txn_commits_total{path=\"two_phase\"}") >= 1);

    /* Garbage, an oversized head, a bad method: 400/405, and the node
     * still serves /metrics and its clients. */
    const char *addr = fx->metrics[1];
    static const char garbage[] = "\x16\x03\x01\x02\x00 not http\r\n\r\n";
    char *resp = okv_http_exchange(addr, garbage, sizeof garbage - 1);
    assert_non_null(resp);
    assert_int_equal(strncmp(resp, "HTTP/1.1 400 ", 13), 0);
    free(resp);
    size_t big = 64 * 1024;
    char *huge = malloc(big);
    memcpy(huge, "GET /metrics HTTP/1.1\r\nX-Big: ", 30);
    memset(huge + 30, 'a', big - 30);
    resp = okv_http_exchange(addr, huge, big);
    free(huge);
    assert_non_null(resp);
    assert_int_equal(strncmp(resp, "HTTP/1.1 400 ", 13), 0);
    free(resp);
    static const char delete[] = "DELETE /metrics HTTP/1.1\r\n\r\n";
    resp = okv_http_exchange(addr, delete, sizeof delete - 1);
    assert_non_null(resp);
    assert_int_equal(strncmp(resp, "HTTP/1.1 405 ", 13), 0);
    free(resp);
    /* A connection that never sends: the node is not held up by it. */
    int idle = okv_http_connect(addr);
    assert_true(idle >= 0);
    before = cluster_puts(fx);
    do_puts(fx, 5);
    assert_true(cluster_puts(fx) - before >= 5);
    close(idle);
    assert_int_equal(okv_cluster_reap_dead(fx->c), 0);
}

/* ---- a real Prometheus ------------------------------------------------------------- */

/* PROMETHEUS, or `prometheus` on PATH; NULL if there is none. */
static char *find_prometheus(void)
{
    const char *env = getenv("PROMETHEUS");
    if (env && *env)
        return access(env, X_OK) == 0 ? strdup(env) : NULL;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char *copy = strdup(path), *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char full[4096];
        snprintf(full, sizeof full, "%s/prometheus", d);
        if (access(full, X_OK) == 0) {
            free(copy);
            return strdup(full);
        }
    }
    free(copy);
    return NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    socklen_t sl = sizeof sa;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void start_prometheus(fixture *fx, const char *bin, const char *listen)
{
    char yml[4300], tsdb[4300], log[4300];
    snprintf(yml, sizeof yml, "%s/prometheus.yml", fx->c->dir);
    snprintf(tsdb, sizeof tsdb, "%s/prometheus-data", fx->c->dir);
    snprintf(log, sizeof log, "%s/prometheus.log", fx->c->dir);
    FILE *f = fopen(yml, "w");
    assert_non_null(f);
    fprintf(f,
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "scrape_configs:\n"
            "  - job_name: orderkv\n"
            "    static_configs:\n"
            "      - targets: ['%s', '%s', '%s']\n",
            fx->metrics[1], fx->metrics[2], fx->metrics[3]);
    fclose(f);
    char a_cfg[4400], a_tsdb[4400], a_web[256];
    snprintf(a_cfg, sizeof a_cfg, "--config.file=%s", yml);
    snprintf(a_tsdb, sizeof a_tsdb, "--storage.tsdb.path=%s", tsdb);
    snprintf(a_web, sizeof a_web, "--web.listen-address=%s", listen);
    pid_t parent = getpid();
    prom_pid = fork();
    assert_true(prom_pid >= 0);
    if (prom_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(bin, bin, a_cfg, a_tsdb, a_web, "--log.level=warn", (char *)NULL);
        _exit(127);
    }
    fprintf(stderr, "prometheus %s (pid %d) on %s, log %s\n", bin, (int)prom_pid, listen, log);
}

/* The first sample's value of an instant query's answer, or -1. */
static double query_value(const char *listen, const char *encoded_query)
{
    char path[1024];
    snprintf(path, sizeof path, "/api/v1/query?query=%s", encoded_query);
    char *body = okv_http_get(listen, path, NULL, 0);
    if (!body)
        return -1;
    double v = -1;
    const char *at = strstr(body, "\"value\":[");
    if (strstr(body, "\"status\":\"success\"") && at) {
        const char *q = strchr(at + 9, '"');   /* after the timestamp: "value" */
        if (q)
            v = strtod(q + 1, NULL);
    }
    free(body);
    return v;
}

static void real_prometheus_scrapes_the_cluster(void **state)
{
    fixture *fx = *state;
    char *bin = find_prometheus();
    assert_non_null(bin);   /* main checked */
    int port = free_port();
    assert_true(port > 0);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    start_prometheus(fx, bin, listen);
    free(bin);
    do_puts(fx, PUTS);
    int64_t deadline = okv_cluster_now_ms() + 90000;   /* a loaded machine starts it slowly */
    double up = -1, puts = -1;
    while (okv_cluster_now_ms() < deadline) {
        up = query_value(listen, "sum(up)");
        puts = query_value(listen, "sum(orderkv_rpc_requests_total%7Bmethod%3D%22KV%2FPut%22%2C"
                                   "code%3D%22OK%22%7D)");
        if (up == 3 && puts >= PUTS)
            break;
        int status;
        if (waitpid(prom_pid, &status, WNOHANG) == prom_pid) {
            prom_pid = 0;
            fail_msg("prometheus exited (status %d); see prometheus.log under %s", status,
                     fx->c->dir);
        }
        okv_cluster_sleep_ms(500);
    }
    fprintf(stderr, "prometheus: sum(up) = %g, put counter = %g\n", up, puts);
    if (up != 3 || puts < PUTS) {
        char *targets = okv_http_get(listen, "/api/v1/targets", NULL, 0);
        fprintf(stderr, "targets: %.2000s\n", targets ? targets : "(no answer)");
        free(targets);
    }
    assert_true(up == 3);
    assert_true(puts >= PUTS);
    stop_prometheus();
    assert_int_equal(okv_cluster_reap_dead(fx->c), 0);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    with_prometheus = argc > 1 && strcmp(argv[1], "--prometheus") == 0;
    if (with_prometheus) {
        char *bin = find_prometheus();
        if (!bin) {
            printf("SKIP: no prometheus binary (set PROMETHEUS or install the Debian package "
                   "`prometheus`)\n");
            return 77;
        }
        free(bin);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(real_prometheus_scrapes_the_cluster, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(scrape_counts_puts_and_survives_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
