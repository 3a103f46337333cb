/* Three multi-Raft stores in one process, each over its own real RocksDB,
 * with messages passed through the raft codec (as the transport will):
 * leaders emerge and spread, proposals are answered from applied entries,
 * linearizable reads, a leader's node stops and another takes over, the
 * node restarts from disk and catches up, and all replicas end identical. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsm.h"
#include "keycodec.h"
#include "okv_test.h"
#include "raft_codec.h"
#include "raftstore.h"

#define NODES 3
#define PARTS 4
#define TABLE 1u

static pthread_mutex_t net_mu = PTHREAD_MUTEX_INITIALIZER;
static raftstore *live[NODES + 1];   /* by node id; NULL = down */
static int cut[NODES + 1];           /* by node id: every message to or from it is lost */
static atomic_int turned_down;       /* TIMEOUT_NOWs a store refused */

typedef struct node {
    uint64_t id;
    char *dir;
    engine *e;
    raftstore *rs;
} node;

static node nodes[NODES + 1];

static void net_send(void *ctx, uint64_t to, uint64_t group, const struct raft_message *m)
{
    (void)ctx;
    size_t n = raft_message_encoded_size(m), len;
    uint8_t *buf = malloc(n);
    assert_int_equal(raft_message_encode(m, buf, n, &len), 0);
    struct raft_message copy;
    assert_int_equal(raft_message_decode(buf, len, &copy), 0);
    free(buf);
    pthread_mutex_lock(&net_mu);
    if (to >= 1 && to <= NODES && live[to] && !cut[to] && !(m->from <= NODES && cut[m->from]))
        raftstore_receive(live[to], group, &copy);
    else
        raft_message_release(&copy);
    pthread_mutex_unlock(&net_mu);
}

static void net_flush(void *ctx) { (void)ctx; }

static void store_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    if (strstr(msg, "turned down"))
        atomic_fetch_add(&turned_down, 1);
}

static int campaign(void *ctx, uint64_t group)
{
    const node *n = ctx;
    return (group & 0xffffffffu) % NODES + 1 == n->id;
}

static void start_node(node *n, int bootstrap)
{
    okv_error err;
    assert_int_equal(engine_open(&n->e, n->dir, NULL, &err), OKV_OK);
    raftstore_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.node_id = n->id;
    cfg.e = n->e;
    cfg.net.send = net_send;
    cfg.net.flush = net_flush;
    cfg.tick_ms = 20;   /* fast elections keep the test short */
    cfg.log = store_log;
    if (raftstore_new(&n->rs, &cfg, &err) != OKV_OK)
        fail_msg("raftstore_new: %s", err.msg);
    if (bootstrap) {
        struct raft_conf conf;
        memset(&conf, 0, sizeof conf);
        conf.n_voters = NODES;
        for (int i = 0; i < NODES; i++)
            conf.voters[i] = (raft_id)(i + 1);
        for (uint32_t p = 0; p < PARTS; p++)
            assert_int_equal(raftstore_bootstrap_group(n->rs, fsm_group_id(TABLE, p), &conf, &err),
                             OKV_OK);
    }
    pthread_mutex_lock(&net_mu);
    live[n->id] = n->rs;
    pthread_mutex_unlock(&net_mu);
    assert_int_equal(raftstore_start(n->rs, campaign, n, &err), OKV_OK);
}

static void stop_node(node *n)
{
    pthread_mutex_lock(&net_mu);
    live[n->id] = NULL;
    pthread_mutex_unlock(&net_mu);
    raftstore_free(n->rs);
    engine_close(n->e);
    n->rs = NULL;
    n->e = NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* The leader every live node agrees on, waiting up to 10 s; 0 if none. */
static uint64_t agreed_leader(uint64_t group)
{
    for (int t = 0; t < 1000; t++) {
        uint64_t l = 0;
        int ok = 1;
        for (int i = 1; i <= NODES; i++) {
            if (!nodes[i].rs)
                continue;
            uint64_t li = raftstore_leader(nodes[i].rs, group);
            if (li == 0 || (l && li != l) || !nodes[li].rs)
                ok = 0;
            l = li;
        }
        if (ok && l)
            return l;
        sleep_ms(10);
    }
    return 0;
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int code;
    command_result r;
    uint64_t hint;
} waiter;

static void on_propose(void *arg, int code, const command_result *r, uint64_t hint)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->code = code;
    if (r)
        w->r = *r;
    w->hint = hint;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void on_read(void *arg, int code, uint64_t hint)
{
    on_propose(arg, code, NULL, hint);
}

static void wait_done(waiter *w)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0)
            break;
    int done = w->done;
    pthread_mutex_unlock(&w->mu);
    if (!done)
        fail_msg("no answer within 10 s");
}

/* Proposes put key=value, following NOT_LEADER hints; returns the version. */
static uint64_t put(const char *key, const char *value)
{
    uint32_t p = keycodec_partition_of(key, strlen(key), PARTS);
    uint64_t group = fsm_group_id(TABLE, p);
    command c;
    memset(&c, 0, sizeof c);
    c.op = CMD_PUT;
    c.table_id = TABLE;
    c.partition = p;
    c.key = (const uint8_t *)key;
    c.key_len = strlen(key);
    c.value = (const uint8_t *)value;
    c.value_len = strlen(value);
    uint8_t buf[256];
    command_encode(&c, buf);
    for (int attempt = 0; attempt < 50; attempt++) {
        uint64_t l = agreed_leader(group);
        assert_true(l != 0);
        waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, { 0, 0, 0, 0, 0, 0 }, 0 };
        raftstore_propose(nodes[l].rs, group, buf, command_encoded_size(&c), on_propose, &w);
        wait_done(&w);
        if (w.code == OKV_OK) {
            assert_int_equal(w.r.code, OKV_OK);
            assert_true(w.r.version > 0);
            return w.r.version;
        }
        assert_true(w.code == OKV_ENOTLEADER || w.code == OKV_EUNAVAILABLE);
        sleep_ms(20);
    }
    fail_msg("put %s never succeeded", key);
    return 0;
}

static int stored(node *n, const char *key, char *val, uint64_t *version)
{
    uint8_t ek[64];
    uint32_t p = keycodec_partition_of(key, strlen(key), PARTS);
    size_t el = keycodec_data_key(ek, TABLE, p, key, strlen(key));
    char *raw = NULL;
    size_t len = 0;
    okv_error err;
    int rc = engine_get(n->e, ENGINE_CF_DATA, ek, el, &raw, &len, &err);
    if (rc)
        return rc;
    const uint8_t *v;
    size_t vl;
    assert_int_equal(keycodec_value_decode(raw, len, version, &v, &vl), 0);
    memcpy(val, v, vl);
    val[vl] = '\0';
    free(raw);
    return OKV_OK;
}

/* What the status page shows (node_status.c): the new leader l of group g
 * has the change in its leader history (newest first), and its published
 * status carries each voter's match, its own being its last index. */
static void check_status_page_data(uint64_t g, uint64_t l)
{
    struct raftstore_leader_change h[RAFTSTORE_LEADER_HISTORY];
    size_t k = raftstore_leader_history(nodes[l].rs, h, RAFTSTORE_LEADER_HISTORY);
    assert_true(k >= 1);
    int seen = 0;
    for (size_t i = 0; i < k; i++) {
        if (i)
            assert_true(h[i - 1].at_ms >= h[i].at_ms);
        if (h[i].group == g && h[i].leader == l && h[i].term > 0)
            seen = 1;
    }
    assert_true(seen);
    assert_int_equal(raftstore_leader_history(nodes[l].rs, h, 1), 1);

    size_t n = raftstore_groups(nodes[l].rs, NULL, 0);
    raftstore_group_info *gi = calloc(n, sizeof *gi);
    assert_int_equal(raftstore_groups(nodes[l].rs, gi, n), n);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (gi[i].group != g || gi[i].st.role != RAFT_LEADER)
            continue;
        found = 1;
        for (uint32_t v = 0; v < gi[i].st.conf.n_voters; v++) {
            assert_true(gi[i].match[v] <= gi[i].st.last_index);
            if (gi[i].st.conf.voters[v] == l)
                assert_int_equal(gi[i].match[v], gi[i].st.last_index);
        }
    }
    free(gi);
    assert_true(found);
}

static void test_raftstore__replicates_fails_over_and_catches_up(void **state)
{
    (void)state;
    for (int i = 1; i <= NODES; i++) {
        nodes[i].id = (uint64_t)i;
        nodes[i].dir = okv_test_tmpdir("raftstore");
        start_node(&nodes[i], 1);
    }
    /* Every group elects a leader all replicas agree on. Which node wins
     * is a race on a loaded machine (the preferred node campaigns first,
     * but another may time out sooner), so nothing here depends on it. */
    int led = 0;
    for (uint32_t p = 0; p < PARTS; p++)
        led += agreed_leader(fsm_group_id(TABLE, p)) != 0;
    assert_int_equal(led, PARTS);

    enum { N1 = 200, N2 = 100 };
    uint64_t versions[N1 + N2];
    char key[32], val[32], got[64];
    for (int i = 0; i < N1; i++) {
        snprintf(key, sizeof key, "c%d/o%d", i % 17, i);
        snprintf(val, sizeof val, "v%d", i);
        versions[i] = put(key, val);
    }

    /* A linearizable read at the leader sees the last acknowledged write. */
    uint64_t g0 = fsm_group_id(TABLE, keycodec_partition_of(key, strlen(key), PARTS));
    uint64_t l0 = agreed_leader(g0);
    waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, { 0, 0, 0, 0, 0, 0 }, 0 };
    raftstore_read(nodes[l0].rs, g0, on_read, &w);
    wait_done(&w);
    assert_int_equal(w.code, OKV_OK);
    uint64_t ver;
    assert_int_equal(stored(&nodes[l0], key, got, &ver), OKV_OK);
    assert_string_equal(got, val);

    /* The leader's node stops; the others elect a leader and go on. */
    stop_node(&nodes[l0]);
    for (int i = N1; i < N1 + N2; i++) {
        snprintf(key, sizeof key, "c%d/o%d", i % 17, i);
        snprintf(val, sizeof val, "v%d", i);
        versions[i] = put(key, val);
    }
    assert_true(agreed_leader(g0) != l0);
    check_status_page_data(g0, agreed_leader(g0));

    /* It restarts from its data dir and catches up. */
    start_node(&nodes[l0], 0);
    for (int t = 0; t < 1000; t++) {
        snprintf(key, sizeof key, "c%d/o%d", (N1 + N2 - 1) % 17, N1 + N2 - 1);
        if (stored(&nodes[l0], key, got, &ver) == OKV_OK)
            break;
        sleep_ms(10);
    }
    for (int i = 0; i < N1 + N2; i++) {
        snprintf(key, sizeof key, "c%d/o%d", i % 17, i);
        snprintf(val, sizeof val, "v%d", i);
        for (int n = 1; n <= NODES; n++) {
            int rc = OKV_ENOTFOUND;
            for (int t = 0; t < 500 && rc != OKV_OK; t++) {
                rc = stored(&nodes[n], key, got, &ver);
                if (rc != OKV_OK)
                    sleep_ms(10);
            }
            if (rc != OKV_OK)
                fail_msg("node %d lacks %s", n, key);
            assert_string_equal(got, val);
            assert_int_equal(ver, versions[i]);   /* the same Raft index everywhere */
        }
    }
    for (int i = 1; i <= NODES; i++) {
        stop_node(&nodes[i]);
        okv_test_rmtree(nodes[i].dir);
        free(nodes[i].dir);
    }
}

static void set_cut(uint64_t id, int on)
{
    pthread_mutex_lock(&net_mu);
    cut[id] = on;
    pthread_mutex_unlock(&net_mu);
}

/* A node that lost a leadership to an election turns down hand-backs for
 * a while (a node that cannot keep it must not get it back again and
 * again), but a transfer an admin asks for is not a hand-back: it goes
 * ahead at once. */
static void test_raftstore__admin_transfer_to_a_node_that_just_lost_leadership(void **state)
{
    (void)state;
    for (int i = 1; i <= NODES; i++) {
        nodes[i].id = (uint64_t)i;
        nodes[i].dir = okv_test_tmpdir("raftstore");
        start_node(&nodes[i], 1);
    }
    const char *key = "transfer-me";
    uint64_t g = fsm_group_id(TABLE, keycodec_partition_of(key, strlen(key), PARTS));
    put(key, "1");
    uint64_t old = agreed_leader(g);
    assert_true(old != 0);

    /* Cut off, the leader steps down (check-quorum) and the others elect
     * another: a leadership lost, not handed over. */
    set_cut(old, 1);
    uint64_t other = 0;
    for (int t = 0; t < 1000 && !other; t++) {
        for (uint64_t i = 1; i <= NODES; i++)
            if (i != old && raftstore_leader(nodes[i].rs, g) == i &&
                raftstore_leader(nodes[old].rs, g) != old)
                other = i;
        if (!other)
            sleep_ms(10);
    }
    assert_true(other != 0);
    set_cut(old, 0);
    put(key, "2");
    assert_int_equal(agreed_leader(g), other);

    /* The admin moves it back; the transfer may abort while the old
     * leader catches up, so it is asked again until it lands. */
    int moved = 0;
    for (int t = 0; t < 20 && !moved; t++) {
        uint64_t l = agreed_leader(g);
        assert_true(l != 0);
        if (l == old) {
            moved = 1;
            break;
        }
        raftstore_transfer_leader(nodes[l].rs, g, old);
        for (int k = 0; k < 50 && !moved; k++) {
            moved = raftstore_leader(nodes[old].rs, g) == old;
            if (!moved)
                sleep_ms(10);
        }
    }
    assert_int_equal(atomic_load(&turned_down), 0);
    assert_true(moved);
    put(key, "3");
    for (int i = 1; i <= NODES; i++) {
        stop_node(&nodes[i]);
        okv_test_rmtree(nodes[i].dir);
        free(nodes[i].dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raftstore__replicates_fails_over_and_catches_up),
        cmocka_unit_test(test_raftstore__admin_transfer_to_a_node_that_just_lost_leadership),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
