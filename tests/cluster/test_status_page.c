/* The status page on the metrics port of a 3-node cluster of real orderkvd
 * processes on loopback (docs/operations.md "Status page").
 *
 * test_status_page:
 *   - GET / on every node is 200 text/html, the same page, and names no
 *     external URL (no "http:", "https:", "src=", "url(" ...);
 *   - GET /status.json on every node parses (python3's json module when
 *     python3 is installed, plus checks here): three nodes, the leader
 *     changes the elections made, and within 15 s all three nodes up and
 *     every partition with a leader; after some puts, the samples count
 *     requests within a few seconds.
 * test_status_page --chromium: a headless Chromium (CHROMIUM, else
 *   `chromium` on PATH; exit 77 = skipped if there is none) renders the
 *   page node 1 serves (--dump-dom after the page's script ran): it shows
 *   the three nodes up; then node 3 is killed (SIGKILL) and, polling with
 *   a fresh rendering every second, within DOWN_WITHIN_MS the page shows
 *   node 3 down and nodes 1 and 2 up. Every Chromium runs in its own
 *   process group under a profile in the cluster's temp dir, is bounded
 *   by CHROME_MS and killed (its group, by its PID) if it overruns; its
 *   helpers are killed and reaped with its group (the test is their
 *   subreaper); the kernel kills the browser should this test die first
 *   (PR_SET_PDEATHSIG).
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
#include <strings.h>
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
#define PUTS 30
#define CALL_MS 10000
#define CHROME_MS 30000        /* one rendering, at most */
#define UP_WITHIN_MS 30000
#define DOWN_WITHIN_MS 30000

typedef struct fixture {
    okv_cluster *c;
    char metrics[OKV_CLUSTER_MAX_NODES + 1][128];   /* host:port by node id */
} fixture;

static char *chromium_bin;

/* The body of a 200 answer to GET path (malloc'd); fails the test otherwise.
 * The Content-Type header's value into type (if not NULL). */
static char *http_get_ok(const char *hostport, const char *path, char *type, size_t type_cap)
{
    char *body = okv_http_get(hostport, path, type, type_cap);
    if (!body)
        fail_msg("GET %s from %s: no 200 answer", path, hostport);
    return body;
}

/* ---- the cluster ------------------------------------------------------------------- */

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    *state = fx;
    return okv_cluster_start_with_metrics(&fx->c, orderkvd_path, 3, TICK_MS, fx->metrics);
}

static int teardown(void **state)
{
    fixture *fx = *state;
    if (fx)
        okv_cluster_free(fx->c);
    free(fx);
    return 0;
}

static void do_puts(fixture *fx, int n)
{
    okv_client *cl = NULL;
    assert_int_equal(okv_connect(&cl, fx->c->all, NULL), OKV_OK);
    for (int i = 0; i < n; i++) {
        char key[32], val[32];
        snprintf(key, sizeof key, "s%d/k", i);
        snprintf(val, sizeof val, "v%d", i);
        uint64_t version;
        int rc = okv_put(cl, "orders", key, strlen(key), val, strlen(val), &version, CALL_MS);
        if (rc != OKV_OK)
            fail_msg("put %s: %s: %s", key, okv_strerror(rc), okv_errmsg(cl));
    }
    okv_close(cl);
}

/* ---- the page and the JSON over HTTP -------------------------------------------- */

static void check_page(const char *page, int id)
{
    static const char *const banned[] = { "http:", "https:", "//cdn", "@import", "src=",
                                          "url(", "ws:", "wss:" };
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        if (strcasestr(page, banned[i]))
            fail_msg("node %d: the status page contains \"%s\"", id, banned[i]);
    assert_non_null(strstr(page, "<!DOCTYPE html>"));
    assert_non_null(strstr(page, "/status.json"));
}

/* python3's verdict on json (node id `id`): with strict, all three nodes
 * up and every partition with a leader are expected too (a node learns a
 * leader from its first message, so right after the cluster has leaders
 * one node may not know them all yet: the caller polls). The requests its
 * samples count; -1 when python3 is not installed; -2 if python3 rejects
 * it (its complaint on stderr). */
static long python_check(fixture *fx, const char *json, int id, int strict)
{
    if (system("command -v python3 >/dev/null 2>&1") != 0)
        return -1;
    char path[4300], cmd[9000];
    snprintf(path, sizeof path, "%s/status-%d.json", fx->c->dir, id);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "python3 -c '\n"
             "import json, sys\n"
             "d = json.load(open(sys.argv[1]))\n"
             "assert d[\"node\"][\"id\"] == %d, d[\"node\"]\n"
             "assert d[\"node\"][\"mode\"] == \"cluster\"\n"
             "assert sorted(n[\"id\"] for n in d[\"nodes\"]) == [1, 2, 3], d[\"nodes\"]\n"
             "tables = set(p[\"table\"] for p in d[\"partitions\"])\n"
             "assert \"meta\" in tables and \"orders\" in tables, tables\n"
             "if %d:\n"
             "    assert all(n[\"up\"] for n in d[\"nodes\"]), d[\"nodes\"]\n"
             "    for p in d[\"partitions\"]:\n"
             "        assert p[\"leader\"] in (1, 2, 3), (\"no leader known\", p)\n"
             "for p in d[\"partitions\"]:\n"
             "    assert (len(p[\"replicas\"]) == 2) == (p[\"role\"] == \"leader\"), p\n"
             "    assert p[\"applied\"] <= p[\"commit\"] <= p[\"last_index\"], p\n"
             "assert len(d[\"leader_changes\"]) >= 1\n"
             "print(sum(s[\"requests\"] for s in d[\"samples\"]))\n"
             "' %s",
             id, strict, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[64] = "";
    if (!fgets(out, sizeof out, p))
        out[0] = '\0';
    int st = pclose(p);
    if (st != 0) {
        fprintf(stderr, "node %d: python3 rejects /status.json (saved as %s)\n", id, path);
        return -2;
    }
    return strtol(out, NULL, 10);
}

static void page_and_json_on_every_node(void **state)
{
    fixture *fx = *state;
    char *first = NULL;
    for (int id = 1; id <= 3; id++) {
        char type[128];
        char *page = http_get_ok(fx->metrics[id], "/", type, sizeof type);
        assert_string_equal(type, "text/html; charset=utf-8");
        check_page(page, id);
        if (!first)
            first = page;
        else {
            assert_string_equal(page, first);
            free(page);
        }
        char *again = http_get_ok(fx->metrics[id], "/status", NULL, 0);
        assert_string_equal(again, first);
        free(again);
    }
    free(first);

    /* Every node soon shows the two others up and a leader for every
     * partition (each learns them from the leaders' messages). */
    for (int id = 1; id <= 3; id++) {
        char type[128];
        char *json = NULL;
        long req = -1;
        int64_t deadline = okv_cluster_now_ms() + 15000;
        for (;;) {
            json = http_get_ok(fx->metrics[id], "/status.json", type, sizeof type);
            int ups = 0;
            for (const char *at = json; (at = strstr(at, "\"up\":true")); at++)
                ups++;
            req = python_check(fx, json, id, 1);
            int leaders_ok = req != -2 && (req >= 0 || !strstr(json, "\"leader\":null"));
            if (ups == 3 && leaders_ok)
                break;
            if (okv_cluster_now_ms() > deadline)
                fail_msg("node %d: /status.json never showed 3 nodes up and every leader: %s",
                         id, json);
            free(json);
            okv_cluster_sleep_ms(200);
        }
        assert_string_equal(type, "application/json");
        assert_true(json[0] == '{');
        assert_non_null(strstr(json, "\"nodes\":["));
        assert_non_null(strstr(json, "\"partitions\":["));
        assert_non_null(strstr(json, "\"leader_changes\":["));
        assert_non_null(strstr(json, "\"samples\":["));
        fprintf(stderr, "node %d: /status.json %zu bytes, %s\n", id, strlen(json),
                req < 0 ? "python3 not installed: checked here only" : "python3 parsed it");
        free(json);
    }

    /* Puts show in the samples within two sampling periods or so. */
    do_puts(fx, PUTS);
    long total = 0;
    int64_t deadline = okv_cluster_now_ms() + 15000;
    while (okv_cluster_now_ms() < deadline) {
        total = 0;
        for (int id = 1; id <= 3; id++) {
            char *json = http_get_ok(fx->metrics[id], "/status.json", NULL, 0);
            long r = python_check(fx, json, id, 0);
            if (r == -2)
                fail_msg("node %d: python3 rejects /status.json: %s", id, json);
            if (r < 0) {   /* no python3: count here */
                r = 0;
                for (const char *at = json; (at = strstr(at, "\"requests\":")); at++)
                    r += strtol(at + 11, NULL, 10);
            }
            total += r;
            free(json);
        }
        if (total >= PUTS)
            break;
        okv_cluster_sleep_ms(500);
    }
    fprintf(stderr, "requests counted in the samples: %ld (after %d puts)\n", total, PUTS);
    assert_true(total >= PUTS);
    assert_int_equal(okv_cluster_reap_dead(fx->c), 0);
}

/* ---- Chromium ------------------------------------------------------------------------ */

/* CHROMIUM, or `chromium` / `chromium-browser` on PATH; NULL if none. */
static char *find_chromium(void)
{
    const char *env = getenv("CHROMIUM");
    if (env && *env)
        return access(env, X_OK) == 0 ? strdup(env) : NULL;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    static const char *const names[] = { "chromium", "chromium-browser" };
    for (size_t k = 0; k < 2; k++) {
        char *copy = strdup(path), *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
            char full[4096];
            snprintf(full, sizeof full, "%s/%s", d, names[k]);
            if (access(full, X_OK) == 0) {
                free(copy);
                return strdup(full);
            }
        }
        free(copy);
    }
    return NULL;
}

/* Renders url in a headless Chromium and returns the DOM after its script
 * ran (malloc'd; "" if it printed nothing). The browser runs in its own
 * process group, which is killed by its PID after CHROME_MS and in any
 * case once the browser has exited (no helper process outlives it). */
static char *render(fixture *fx, const char *url)
{
    static int runs;
    char out_path[4300], err_path[4300], profile[4300], a_profile[4400];
    snprintf(out_path, sizeof out_path, "%s/chromium-dom.html", fx->c->dir);
    snprintf(err_path, sizeof err_path, "%s/chromium.log", fx->c->dir);
    snprintf(profile, sizeof profile, "%s/chromium-profile", fx->c->dir);
    snprintf(a_profile, sizeof a_profile, "--user-data-dir=%s", profile);
    runs++;
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (o < 0 || e < 0)
            _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        close(o);
        close(e);
        /* --virtual-time-budget: the dump waits until the page has had
         * 4 s of (virtual) time, i.e. loaded and polled /status.json;
         * the rest keeps a browser on a machine with no network quiet. */
        execl(chromium_bin, chromium_bin, "--headless", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--disable-extensions", a_profile,
              "--virtual-time-budget=4000", "--dump-dom", url, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);   /* also here: no race with the child's own call */
    int64_t deadline = okv_cluster_now_ms() + CHROME_MS;
    int status = 0, done = 0;
    while (!done) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            done = 1;
        } else if (okv_cluster_now_ms() > deadline) {
            fprintf(stderr, "chromium (pid %d) still rendering after %d ms: killed\n", (int)pid,
                    CHROME_MS);
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            done = 1;
        } else {
            okv_cluster_sleep_ms(50);
        }
    }
    /* Helpers of that browser, if any are left: killed, and reaped here
     * (this process is their subreaper, see main). */
    kill(-pid, SIGKILL);
    while (waitpid(-pid, NULL, 0) > 0)
        ;
    FILE *f = fopen(out_path, "r");
    char *dom = NULL;
    size_t len = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        dom = calloc(1, (size_t)(sz > 0 ? sz : 0) + 1);
        len = fread(dom, 1, (size_t)(sz > 0 ? sz : 0), f);
        dom[len] = '\0';
        fclose(f);
    } else {
        dom = strdup("");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "chromium run %d: %s %d (log %s)\n", runs,
                WIFEXITED(status) ? "exit status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), err_path);
    return dom;
}

/* The state the rendered page shows for node id: "up", "down" or NULL. */
static const char *shown(const char *dom, int id)
{
    char want[64];
    snprintf(want, sizeof want, "data-node=\"%d\" data-state=\"up\"", id);
    if (strstr(dom, want))
        return "up";
    snprintf(want, sizeof want, "data-node=\"%d\" data-state=\"down\"", id);
    if (strstr(dom, want))
        return "down";
    return NULL;
}

/* Renders until the page shows each node as want[id] ("up"/"down"), or
 * within_ms passes. 0 when it did; the last DOM in *last (malloc'd). */
static int render_until(fixture *fx, const char *url, const char *const want[4], int within_ms,
                        char **last, int *renders)
{
    int64_t deadline = okv_cluster_now_ms() + within_ms;
    *last = NULL;
    for (;;) {
        free(*last);
        *last = render(fx, url);
        (*renders)++;
        int ok = 1;
        for (int id = 1; id <= 3; id++) {
            const char *s = shown(*last, id);
            if (!s || strcmp(s, want[id]) != 0)
                ok = 0;
        }
        if (ok)
            return 0;
        if (okv_cluster_now_ms() > deadline)
            return -1;
        okv_cluster_sleep_ms(1000);
    }
}

static void chromium_shows_a_killed_node_down(void **state)
{
    fixture *fx = *state;
    int64_t t0 = okv_cluster_now_ms();
    char url[200];
    snprintf(url, sizeof url, "http%s//%s/", ":", fx->metrics[1]);
    char *dom = NULL;
    int renders = 0;
    static const char *const all_up[4] = { NULL, "up", "up", "up" };
    if (render_until(fx, url, all_up, UP_WITHIN_MS, &dom, &renders) != 0)
        fail_msg("the page never showed three nodes up; last DOM: %.3000s", dom);
    int64_t t_up = okv_cluster_now_ms();
    fprintf(stderr, "chromium: three nodes up after %lld ms (%d renderings)\n",
            (long long)(t_up - t0), renders);
    assert_non_null(strstr(dom, "<svg"));      /* the sparklines were drawn */
    assert_non_null(strstr(dom, "orders"));    /* the partitions table */
    free(dom);

    okv_cluster_node_stop(fx->c, 3, 1);   /* SIGKILL */
    int64_t t_kill = okv_cluster_now_ms();
    renders = 0;
    static const char *const three_down[4] = { NULL, "up", "up", "down" };
    if (render_until(fx, url, three_down, DOWN_WITHIN_MS, &dom, &renders) != 0)
        fail_msg("%d s after node 3 was killed, the page still does not show it down (and "
                 "1, 2 up); last DOM: %.3000s",
                 DOWN_WITHIN_MS / 1000, dom);
    int64_t t_down = okv_cluster_now_ms();
    fprintf(stderr, "chromium: node 3 shown down %lld ms after SIGKILL (%d renderings); "
                    "whole test %lld ms\n",
            (long long)(t_down - t_kill), renders, (long long)(t_down - t0));
    free(dom);
    assert_int_equal(okv_cluster_reap_dead(fx->c), 0);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "--chromium") == 0) {
        /* Chromium's helper processes outlive its main one for a moment:
         * orphaned, they come to this process (not init), which kills
         * and reaps them with the rest of their group. */
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        chromium_bin = find_chromium();
        if (!chromium_bin) {
            printf("SKIP: no chromium (set CHROMIUM or install the Debian package "
                   "`chromium`)\n");
            return 77;
        }
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(chromium_shows_a_killed_node_down, setup, teardown),
        };
        int rc = cmocka_run_group_tests(tests, NULL, NULL);
        free(chromium_bin);
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(page_and_json_on_every_node, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
