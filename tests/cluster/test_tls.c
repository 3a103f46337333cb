/* TLS (issue 14) on clusters of real orderkvd processes on loopback.
 *
 * Certificates come from scripts/make-certs.sh, run by the test into its
 * temp dir: CA "a" (the cluster's) and CA "b" (another one).
 *
 * - mutual TLS: 3 nodes with --tls-ca/--tls-cert/--tls-key (client auth
 *   required by default) elect leaders, and a client with CA a and a
 *   client certificate puts and gets; every node catches up with its
 *   leaders (so node-to-node mTLS carries Raft); a transaction across
 *   partitions commits (the nodes' internal client, with the node's own
 *   certificate, carries two-phase commit);
 * - on the same cluster: a plaintext client fails with OKV_EUNAVAILABLE and
 *   a message naming TLS, well before its deadline; a client that trusts
 *   CA a but shows no certificate, or one signed by CA b, is refused (an
 *   error naming TLS; that one only at its deadline: gRPC tells a failed
 *   handshake from a refused connection to nobody but its own log);
 * - a TLS client against a plaintext node fails the same way, quickly;
 * - a node whose certificate and CA are b's cannot join a cluster of a's:
 *   the other two elect leaders and serve writes; the rogue node (asked
 *   with a client of CA b) never reports itself leader of anything and its
 *   log never grows (a replica appends only what a leader sends it, or a
 *   no-op when it wins an election: both need its peers). Nothing here
 *   depends on timing beyond bounded waits;
 * - a follower stopped while the others compact their logs catches up by
 *   a snapshot, streamed over mutual TLS (snap_send's own channels).
 *
 * - on the wire: a tap (a forwarding proxy on the node's port, recording
 *   every byte both ways) between a client and a TLS node sees none of the
 *   keys and values put and read; the same tap in front of a plaintext node
 *   sees them (so the tap would catch plaintext).
 *
 * Nothing asserts how fast beyond "before the deadline" for mismatches.
 * OKV_KEEP_CLUSTER_DIR=1 keeps data dirs and logs. */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "okv_cluster.h"
#include "okv_http.h"
#include "okv_test.h"
#include "orderkv.h"

static const char *orderkvd_path = ORDERKVD_PATH;
static const char *make_certs = MAKE_CERTS_PATH;

#define TICK_MS 50
#define TABLE "orders"
#define CALL_MS 10000

typedef struct fixture {
    char *dir;                /* certificates: dir/a, dir/b, dir/r (mixed) */
    char a[4200], b[4200], r[4200];
    char ca_a[4300], ca_b[4300], cl_a_crt[4300], cl_a_key[4300], cl_b_crt[4300],
        cl_b_key[4300];
    okv_cluster *c;
} fixture;

static int run(const char *cmd)
{
    int st = system(cmd);
    if (st != 0)
        fprintf(stderr, "failed (%d): %s\n", st, cmd);
    return st;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = okv_test_tmpdir("tls");
    assert_non_null(f->dir);
    snprintf(f->a, sizeof f->a, "%s/a", f->dir);
    snprintf(f->b, sizeof f->b, "%s/b", f->dir);
    snprintf(f->r, sizeof f->r, "%s/r", f->dir);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "'%s' '%s' 3 >/dev/null && '%s' '%s' 3 >/dev/null", make_certs,
             f->a, make_certs, f->b);
    assert_int_equal(run(cmd), 0);
    /* r: nodes 1 and 2 of CA a, node 3 of CA b, each with its own CA. */
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && cd '%s' && cp ../a/ca.crt ca1.crt && cp ../a/ca.crt ca2.crt && "
             "cp ../b/ca.crt ca3.crt && cp ../a/node1.crt ../a/node1.key ../a/node2.crt "
             "../a/node2.key . && cp ../b/node3.crt ../b/node3.key .",
             f->r, f->r);
    assert_int_equal(run(cmd), 0);
    snprintf(f->ca_a, sizeof f->ca_a, "%s/ca.crt", f->a);
    snprintf(f->ca_b, sizeof f->ca_b, "%s/ca.crt", f->b);
    snprintf(f->cl_a_crt, sizeof f->cl_a_crt, "%s/client.crt", f->a);
    snprintf(f->cl_a_key, sizeof f->cl_a_key, "%s/client.key", f->a);
    snprintf(f->cl_b_crt, sizeof f->cl_b_crt, "%s/client.crt", f->b);
    snprintf(f->cl_b_key, sizeof f->cl_b_key, "%s/client.key", f->b);
    *state = f;
    return 0;
}

/* Runs after a failed assertion too: every node started is killed by PID. */
static int teardown(void **state)
{
    fixture *f = *state;
    okv_cluster_free(f->c);
    if (!getenv("OKV_KEEP_CLUSTER_DIR"))
        okv_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static okv_options tls_opts(const char *ca, const char *crt, const char *key)
{
    okv_options o = OKV_OPTIONS_INIT;
    o.tls_ca = ca;
    o.tls_cert = crt;
    o.tls_key = key;
    return o;
}

/* Starts 3 nodes whose files are dir/ca@ID@.crt or dir/ca.crt, and
 * dir/node@ID@.{crt,key}, with extra flags (NULL: none); waits for leaders. */
static void start_ex(fixture *f, const char *dir, int per_node_ca, const okv_options *client,
                     const char *extra)
{
    char flags[1024];
    snprintf(flags, sizeof flags, "--tls-ca %s/ca%s.crt --tls-cert %s/node@ID@.crt "
             "--tls-key %s/node@ID@.key %s", dir, per_node_ca ? "@ID@" : "", dir, dir,
             extra ? extra : "");
    int rc = okv_cluster_start_opts(&f->c, orderkvd_path, 3, TICK_MS, NULL, flags, client);
    if (rc == 0)
        rc = okv_cluster_wait_leaders(f->c, 20000);
    if (rc != 0)
        okv_cluster_dump_logs(f->c, 30);
    assert_int_equal(rc, 0);
}

static void start(fixture *f, const char *dir, int per_node_ca, const okv_options *client)
{
    start_ex(f, dir, per_node_ca, client, NULL);
}

/* A put then a get of key = value through a fresh client with opts. */
static int put_get(const char *addrs, const okv_options *opts, const char *key,
                   const char *value, int timeout_ms, char *why, size_t cap)
{
    okv_client *cl = NULL;
    int rc = okv_connect(&cl, addrs, opts);
    if (rc != OKV_OK) {
        snprintf(why, cap, "connect: %s", okv_errmsg(NULL));
        return rc;
    }
    rc = okv_put(cl, TABLE, key, strlen(key), value, strlen(value), NULL, timeout_ms);
    okv_value *v = NULL;
    if (rc == OKV_OK)
        rc = okv_get(cl, TABLE, key, strlen(key), &v, timeout_ms);
    if (rc == OKV_OK && (okv_value_len(v) != strlen(value) ||
                         memcmp(okv_value_data(v), value, strlen(value)) != 0))
        rc = OKV_EINTERNAL;
    snprintf(why, cap, "%s", okv_errmsg(cl));
    okv_value_free(v);
    okv_close(cl);
    return rc;
}

/* A client that must be refused: the call fails with a message naming TLS
 * within max_ms. */
static void expect_refused(const char *what, const char *addrs, const okv_options *o,
                           int timeout_ms, int max_ms)
{
    char why[600];
    int64_t t0 = okv_cluster_now_ms();
    int rc = put_get(addrs, o, "refused", "x", timeout_ms, why, sizeof why);
    int64_t took = okv_cluster_now_ms() - t0;
    fprintf(stderr, "%s: %s after %lld ms: %s\n", what, okv_strerror(rc), (long long)took, why);
    assert_true(rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT);
    assert_non_null(strstr(why, "TLS"));
    assert_true(took <= max_ms);
}

static void mutual_tls_cluster(void **state)
{
    fixture *f = *state;
    okv_options good = tls_opts(f->ca_a, f->cl_a_crt, f->cl_a_key);
    start(f, f->a, 0, &good);
    okv_cluster *c = f->c;

    char key[32], why[600];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "tls/%d", i);
        int rc = put_get(c->all, &good, key, key, CALL_MS, why, sizeof why);
        if (rc != OKV_OK)
            fprintf(stderr, "put/get %s: %s: %s\n", key, okv_strerror(rc), why);
        assert_int_equal(rc, OKV_OK);
    }
    /* Replication over mutual TLS: every node applies what its leaders
     * committed. */
    for (int id = 1; id <= 3; id++)
        assert_int_equal(okv_cluster_wait_caught_up(c, id, 20000), 0);

    /* Two-phase commit goes through the nodes' internal client. */
    okv_client *cl = NULL;
    assert_int_equal(okv_connect(&cl, c->all, &good), OKV_OK);
    okv_tx *tx = NULL;
    assert_int_equal(okv_tx_begin(cl, &tx), OKV_OK);
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "tx/%d", i);
        assert_int_equal(okv_tx_put(tx, TABLE, key, strlen(key), "t", 1), OKV_OK);
    }
    int rc = okv_tx_commit(tx, NULL, CALL_MS);
    if (rc != OKV_OK)
        fprintf(stderr, "tx commit: %s: %s\n", okv_strerror(rc), okv_errmsg(cl));
    assert_int_equal(rc, OKV_OK);
    okv_tx_free(tx);
    okv_close(cl);

    /* Plaintext against mutual TLS: refused, and said so long before the
     * deadline. */
    okv_options plain = OKV_OPTIONS_INIT;
    expect_refused("plaintext client", c->all, &plain, CALL_MS, CALL_MS / 2);
    /* Trusts the CA but shows no certificate / one of another CA. */
    okv_options nocert = tls_opts(f->ca_a, NULL, NULL);
    expect_refused("client without certificate", c->all, &nocert, 2000, 4000);
    okv_options other = tls_opts(f->ca_a, f->cl_b_crt, f->cl_b_key);
    expect_refused("client with another CA's certificate", c->all, &other, 2000, 4000);
    /* Trusts another CA: the nodes' certificates do not verify. */
    okv_options wrong_ca = tls_opts(f->ca_b, f->cl_b_crt, f->cl_b_key);
    expect_refused("client trusting another CA", c->all, &wrong_ca, 2000, 4000);
}

static void tls_client_plaintext_node(void **state)
{
    fixture *f = *state;
    int rc = okv_cluster_start(&f->c, orderkvd_path, 1, TICK_MS);
    if (rc == 0)
        rc = okv_cluster_wait_leaders(f->c, 20000);
    assert_int_equal(rc, 0);
    char why[600];
    okv_options plain = OKV_OPTIONS_INIT;
    assert_int_equal(put_get(f->c->all, &plain, "plain", "p", CALL_MS, why, sizeof why), OKV_OK);
    okv_options good = tls_opts(f->ca_a, f->cl_a_crt, f->cl_a_key);
    expect_refused("TLS client, plaintext node", f->c->all, &good, CALL_MS, CALL_MS / 2);
}

/* ---- what crosses the wire --------------------------------------------------------- */

#define TAP_PAIRS 8

/* A forwarding proxy on 127.0.0.1:port to target that records every byte
 * it forwards, both ways: what a capture on the node's port would see. */
typedef struct tap {
    int lfd, port;
    const char *target;
    pthread_t th;
    volatile int stop;
    pthread_mutex_t mu;
    char *buf;
    size_t len, cap;
} tap;

static void tap_record(tap *t, const char *b, size_t n)
{
    pthread_mutex_lock(&t->mu);
    if (t->len + n > t->cap) {
        size_t ncap = (t->len + n) * 2;
        char *nb = realloc(t->buf, ncap);
        assert_non_null(nb);
        t->buf = nb;
        t->cap = ncap;
    }
    memcpy(t->buf + t->len, b, n);
    t->len += n;
    pthread_mutex_unlock(&t->mu);
}

/* Copies what `from` has to `to`, recorded. 0, or -1 at EOF or an error. */
static int tap_pump(tap *t, int from, int to)
{
    char b[16384];
    ssize_t r = recv(from, b, sizeof b, 0);
    if (r <= 0)
        return -1;
    tap_record(t, b, (size_t)r);
    for (ssize_t off = 0; off < r;) {
        ssize_t w = send(to, b + off, (size_t)(r - off), MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        off += w;
    }
    return 0;
}

static void *tap_main(void *arg)
{
    tap *t = arg;
    int a[TAP_PAIRS], b[TAP_PAIRS], n = 0;
    while (!t->stop) {
        struct pollfd pf[1 + 2 * TAP_PAIRS];
        pf[0] = (struct pollfd){ t->lfd, POLLIN, 0 };
        for (int i = 0; i < n; i++) {
            pf[1 + 2 * i] = (struct pollfd){ a[i], POLLIN, 0 };
            pf[2 + 2 * i] = (struct pollfd){ b[i], POLLIN, 0 };
        }
        if (poll(pf, (nfds_t)(1 + 2 * n), 100) <= 0)
            continue;
        for (int i = n - 1; i >= 0; i--) {
            int bad = ((pf[1 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                       tap_pump(t, a[i], b[i]) != 0) ||
                      ((pf[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                       tap_pump(t, b[i], a[i]) != 0);
            if (bad) {
                close(a[i]);
                close(b[i]);
                a[i] = a[--n];
                b[i] = b[n];
            }
        }
        if (pf[0].revents & POLLIN) {
            int c = accept(t->lfd, NULL, NULL);
            int u = c >= 0 ? okv_http_connect(t->target) : -1;
            if (c >= 0 && u >= 0 && n < TAP_PAIRS) {
                a[n] = c;
                b[n++] = u;
            } else {
                if (c >= 0)
                    close(c);
                if (u >= 0)
                    close(u);
            }
        }
    }
    for (int i = 0; i < n; i++) {
        close(a[i]);
        close(b[i]);
    }
    return NULL;
}

static void tap_start(tap *t, const char *target)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->target = target;
    t->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(t->lfd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(t->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(t->lfd, 16), 0);
    assert_int_equal(getsockname(t->lfd, (struct sockaddr *)&sa, &sl), 0);
    t->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&t->th, NULL, tap_main, t), 0);
}

static void tap_stop(tap *t)
{
    t->stop = 1;
    pthread_join(t->th, NULL);
    close(t->lfd);
    pthread_mutex_destroy(&t->mu);
}

static int contains(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

/* A put and a get of a recognisable key and value through a tap in front
 * of the one node of f's cluster; the tap's bytes in *t (the caller frees
 * t->buf). */
static void put_get_through_tap(fixture *f, const okv_options *opts, tap *t)
{
    tap_start(t, f->c->addr[1]);
    char addr[64], why[600];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", t->port);
    okv_options o = *opts;
    o.listed_nodes_only = 1;   /* every call through the tap, none around it */
    int rc = put_get(addr, &o, "wire/secret-key-4711", "secret-value-0815", CALL_MS, why,
                     sizeof why);
    tap_stop(t);
    if (rc != OKV_OK)
        fprintf(stderr, "put/get through the tap: %s: %s\n", okv_strerror(rc), why);
    assert_int_equal(rc, OKV_OK);
    fprintf(stderr, "the tap forwarded %zu bytes\n", t->len);
    assert_true(t->len > 100);
}

static void wire_carries_no_plaintext(void **state)
{
    fixture *f = *state;
    okv_options good = tls_opts(f->ca_a, f->cl_a_crt, f->cl_a_key);
    char flags[3 * sizeof f->a + 128];
    snprintf(flags, sizeof flags, "--tls-ca %s/ca.crt --tls-cert %s/node@ID@.crt "
             "--tls-key %s/node@ID@.key", f->a, f->a, f->a);
    int rc = okv_cluster_start_opts(&f->c, orderkvd_path, 1, TICK_MS, NULL, flags, &good);
    if (rc == 0)
        rc = okv_cluster_wait_leaders(f->c, 20000);
    assert_int_equal(rc, 0);
    tap t;
    put_get_through_tap(f, &good, &t);
    int leaked = contains(t.buf, t.len, "secret-key-4711") ||
                 contains(t.buf, t.len, "secret-value-0815");
    free(t.buf);
    assert_false(leaked);
    okv_cluster_free(f->c);
    f->c = NULL;

    /* The control: through the same tap, a plaintext node's traffic shows
     * both, so the check above would have caught plaintext. */
    rc = okv_cluster_start(&f->c, orderkvd_path, 1, TICK_MS);
    if (rc == 0)
        rc = okv_cluster_wait_leaders(f->c, 20000);
    assert_int_equal(rc, 0);
    okv_options plain = OKV_OPTIONS_INIT;
    put_get_through_tap(f, &plain, &t);
    int seen = contains(t.buf, t.len, "secret-key-4711") &&
               contains(t.buf, t.len, "secret-value-0815");
    free(t.buf);
    assert_true(seen);
}

/* The rogue node's replicas, through a client of its own CA. */
static int rogue_replicas(fixture *f, okv_cluster_replica *out)
{
    okv_options o = tls_opts(f->ca_b, f->cl_b_crt, f->cl_b_key);
    o.listed_nodes_only = 1;
    okv_client *cl = NULL;
    assert_int_equal(okv_connect(&cl, f->c->addr[3], &o), OKV_OK);
    okv_status *s = NULL;
    int rc = okv_status_get_at(cl, f->c->addr[3], &s, 5000);
    if (rc != OKV_OK)
        fprintf(stderr, "status of node 3: %s: %s\n", okv_strerror(rc), okv_errmsg(cl));
    assert_int_equal(rc, OKV_OK);
    int k = 0;
    for (size_t i = 0; i < okv_status_replica_count(s) && k < OKV_CLUSTER_MAX_GROUPS; i++) {
        okv_replica_info r;
        if (okv_status_replica(s, i, &r) != OKV_OK)
            continue;
        out[k].table_id = r.table_id;
        out[k].partition = r.partition;
        snprintf(out[k].role, sizeof out[k].role, "%s", r.role ? r.role : "");
        out[k].last_index = r.last_index;
        out[k].commit = r.commit;
        k++;
    }
    okv_status_free(s);
    okv_close(cl);
    return k;
}

static void node_of_another_ca_cannot_join(void **state)
{
    fixture *f = *state;
    okv_options good = tls_opts(f->ca_a, f->cl_a_crt, f->cl_a_key);
    start(f, f->r, 1, &good);   /* leaders among nodes 1 and 2 */
    okv_cluster *c = f->c;

    okv_cluster_replica before[OKV_CLUSTER_MAX_GROUPS], after[OKV_CLUSTER_MAX_GROUPS];
    int nb = rogue_replicas(f, before);
    assert_true(nb > 0);

    /* The other two serve: writes commit on a majority without node 3. */
    char two[256], key[32], why[600];
    snprintf(two, sizeof two, "%s,%s", c->addr[1], c->addr[2]);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "two/%d", i);
        int rc = put_get(two, &good, key, key, CALL_MS, why, sizeof why);
        if (rc != OKV_OK)
            fprintf(stderr, "put/get %s: %s: %s\n", key, okv_strerror(rc), why);
        assert_int_equal(rc, OKV_OK);
    }
    for (int id = 1; id <= 2; id++)
        assert_int_equal(okv_cluster_wait_caught_up(c, id, 20000), 0);
    okv_cluster_sleep_ms(20 * TICK_MS);   /* time for anything to reach node 3 */

    int na = rogue_replicas(f, after);
    assert_int_equal(na, nb);
    for (int i = 0; i < na; i++) {
        fprintf(stderr, "node 3, group %u/%u: %s, last index %llu (was %llu), commit %llu\n",
                after[i].table_id, after[i].partition, after[i].role,
                (unsigned long long)after[i].last_index,
                (unsigned long long)before[i].last_index, (unsigned long long)after[i].commit);
        assert_string_not_equal(after[i].role, "leader");
        assert_int_equal(after[i].last_index, before[i].last_index);
        assert_int_equal(after[i].commit, 0);   /* nothing ever committed there */
    }
    /* Nodes 1 and 2 lead every group, and no group names node 3 leader. */
    okv_cluster_replica reps[OKV_CLUSTER_MAX_GROUPS];
    for (int id = 1; id <= 2; id++) {
        int k = okv_cluster_replicas(c, id, reps, 5000);
        assert_true(k > 0);
        for (int i = 0; i < k; i++)
            assert_true(reps[i].leader != 3);
    }
    /* A client of CA b is refused by nodes 1 and 2 as their peer is. */
    okv_options rogue = tls_opts(f->ca_a, f->cl_b_crt, f->cl_b_key);
    expect_refused("client of the rogue CA", two, &rogue, 2000, 4000);
}

/* A follower that fell behind a compacted log catches up by a snapshot,
 * streamed over mutual TLS (snap_send's own channels). */
static void snapshot_over_tls(void **state)
{
    fixture *f = *state;
    okv_options good = tls_opts(f->ca_a, f->cl_a_crt, f->cl_a_key);
    start_ex(f, f->a, 0, &good, "--raft-snapshot-entries 20 --raft-log-keep 5");
    okv_cluster *c = f->c;
    okv_cluster_node_stop(c, 3, 1);
    char two[256], key[32];
    snprintf(two, sizeof two, "%s,%s", c->addr[1], c->addr[2]);
    okv_client *cl = NULL;
    assert_int_equal(okv_connect(&cl, two, &good), OKV_OK);
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "snap/%d", i);
        int rc = okv_put(cl, TABLE, key, strlen(key), "v", 1, NULL, CALL_MS);
        if (rc != OKV_OK)
            fprintf(stderr, "put %s: %s: %s\n", key, okv_strerror(rc), okv_errmsg(cl));
        assert_int_equal(rc, OKV_OK);
    }
    okv_close(cl);
    assert_int_equal(okv_cluster_node_start(c, 3), 0);
    int rc = okv_cluster_wait_caught_up(c, 3, 30000);
    if (rc != 0)
        okv_cluster_dump_logs(c, 30);
    assert_int_equal(rc, 0);
    char cmd[4600];
    snprintf(cmd, sizeof cmd, "grep -q 'installed a snapshot' '%s'", c->node[3].log_path);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(mutual_tls_cluster, setup, teardown),
        cmocka_unit_test_setup_teardown(tls_client_plaintext_node, setup, teardown),
        cmocka_unit_test_setup_teardown(wire_carries_no_plaintext, setup, teardown),
        cmocka_unit_test_setup_teardown(node_of_another_ca_cannot_join, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_over_tls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
