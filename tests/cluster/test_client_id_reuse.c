/* A client_id reused by a later session, on a 3-node cluster of real
 * orderkvd processes on loopback (issue 10, item 5).
 *
 * Partitions answer a write they have seen before, keyed by (client_id,
 * request_id), from their exactly-once record. Request ids used to restart
 * at 1 on every okv_connect, so a service that reconnected with a fixed
 * client_id got the old session's answer for a new write: OK and the old
 * version, for a put that was never applied. Now a session's ids start
 * from the wall clock (client_request_id_first, client/client_int.h).
 *
 * - within one process: connect as 4242, put x/k = a, close; connect as
 *   4242 again, put x/k = b: it applies (a higher version) and a get
 *   returns b;
 * - across processes (a restarted service, where only the clock separates
 *   the sessions): two child processes of this binary put x/k = c and then
 *   x/k = d as 4242; each applies and a get returns d.
 *
 * Nothing asserts how fast. OKV_KEEP_CLUSTER_DIR=1 keeps the data dirs and
 * logs. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "okv_cluster.h"
#include "okv_test.h"
#include "orderkv.h"

static const char *orderkvd_path = ORDERKVD_PATH;

#define TICK_MS 50
#define CLIENT_ID 4242
#define TABLE "orders"
#define KEY "x/k"
#define CALL_MS 10000

static int connect_as_4242(const char *addresses, okv_client **out)
{
    okv_options o = OKV_OPTIONS_INIT;
    o.client_id = CLIENT_ID;
    return okv_connect(out, addresses, &o);
}

/* One session: connect as 4242, put KEY = value, close. */
static int put_in_new_session(const char *addresses, const char *value, uint64_t *version)
{
    okv_client *cl = NULL;
    int rc = connect_as_4242(addresses, &cl);
    if (rc == OKV_OK) {
        rc = okv_put(cl, TABLE, KEY, strlen(KEY), value, strlen(value), version, CALL_MS);
        if (rc != OKV_OK)
            fprintf(stderr, "put %s = %s: %s: %s\n", KEY, value, okv_strerror(rc),
                    okv_errmsg(cl));
    }
    okv_close(cl);
    return rc;
}

/* The same, in a child process running this binary with --put: a session
 * of another process, as after a service restart. */
static int put_in_child_process(const char *addresses, const char *value, uint64_t *version)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char cmd[PATH_MAX + 1024];
    snprintf(cmd, sizeof cmd, "'%s' --put '%s' '%s'", self, addresses, value);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    int rc = -1;
    unsigned long long v = 0;
    if (fscanf(p, "%d %llu", &rc, &v) != 2)
        rc = -1;
    int status = pclose(p);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = -1;
    *version = v;
    return rc;
}

/* The value and version of KEY, read on a fresh client. */
static void get_key(const char *addresses, char *value, size_t cap, uint64_t *version)
{
    okv_client *cl = NULL;
    okv_value *v = NULL;
    assert_int_equal(okv_connect(&cl, addresses, NULL), OKV_OK);
    int rc = okv_get(cl, TABLE, KEY, strlen(KEY), &v, CALL_MS);
    if (rc != OKV_OK)
        fprintf(stderr, "get %s: %s: %s\n", KEY, okv_strerror(rc), okv_errmsg(cl));
    okv_close(cl);
    assert_int_equal(rc, OKV_OK);
    snprintf(value, cap, "%.*s", (int)okv_value_len(v), (const char *)okv_value_data(v));
    *version = okv_value_version(v);
    okv_value_free(v);
}

static void reconnected_client_id_gets_its_own_answers(void **state)
{
    okv_cluster **cp = (okv_cluster **)state;
    int started = okv_cluster_start(cp, orderkvd_path, 3, TICK_MS);
    okv_cluster *c = *cp;
    if (started == 0)
        started = okv_cluster_wait_leaders(c, 15000);
    if (started != 0)
        okv_cluster_dump_logs(c, 20);
    assert_int_equal(started, 0);

    /* The reported scenario, within one process. With ids from 1 the
     * second put was answered "ok, version v1" from the first one's record
     * and the get returned "a". */
    uint64_t v1 = 0, v2 = 0, got_version = 0;
    char got[64];
    assert_int_equal(put_in_new_session(c->all, "a", &v1), OKV_OK);
    assert_int_equal(put_in_new_session(c->all, "b", &v2), OKV_OK);
    get_key(c->all, got, sizeof got, &got_version);
    fprintf(stderr, "same process: put a -> version %llu, put b -> version %llu, get -> %s "
            "version %llu\n", (unsigned long long)v1, (unsigned long long)v2, got,
            (unsigned long long)got_version);
    assert_true(v2 > v1);
    assert_string_equal(got, "b");
    assert_int_equal(got_version, v2);

    /* Sessions in other processes: only the clock orders their ids. */
    uint64_t v3 = 0, v4 = 0;
    int rc3 = put_in_child_process(c->all, "c", &v3);
    int rc4 = put_in_child_process(c->all, "d", &v4);
    get_key(c->all, got, sizeof got, &got_version);
    fprintf(stderr, "child processes: put c -> %d version %llu, put d -> %d version %llu, "
            "get -> %s version %llu\n", rc3, (unsigned long long)v3, rc4,
            (unsigned long long)v4, got, (unsigned long long)got_version);
    assert_int_equal(rc3, OKV_OK);
    assert_true(v3 > v2);
    assert_int_equal(rc4, OKV_OK);
    assert_true(v4 > v3);
    assert_string_equal(got, "d");
    assert_int_equal(got_version, v4);
}

/* Runs after a failed assertion too: every node started is killed. */
static int teardown(void **state)
{
    okv_cluster_free(*state);
    *state = NULL;
    return 0;
}

int main(int argc, char **argv)
{
    /* Child mode (put_in_child_process): one session, "rc version" on stdout. */
    if (argc == 4 && strcmp(argv[1], "--put") == 0) {
        uint64_t version = 0;
        int rc = put_in_new_session(argv[2], argv[3], &version);
        printf("%d %llu\n", rc, (unsigned long long)version);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(reconnected_client_id_gets_its_own_answers, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
