/*
 * test_backup.c — online backup and restore with real orderkvd processes
 * (docs/operations.md "Backup and restore").
 *
 *  a. Under load (a writer thread of unique puts, a thread of transfers
 *     between accounts in different partitions), a backup is taken; it is
 *     restored with `orderkv restore` into the fresh data dirs of a second
 *     cluster, which is started: every put acknowledged before the backup
 *     began is there with its value, and the accounts' sum is exactly the
 *     opening sum (no transfer split by the backup's cuts).
 *  a'. The same, with the leader of the first partition cut killed right
 *     after its cut: the later cuts go to new leaders (which hold the
 *     fences), wait out what the dead node left PREPARED, and the restored
 *     cluster still has every acknowledged put and the opening sum.
 *  b. Bad input: a backup with a flipped byte in a partition file, a
 *     missing file, a damaged or truncated MANIFEST is refused by
 *     `orderkv restore` with a message naming the problem, and no data dir
 *     is left behind.
 *  c. (failpoint builds, --fence) The fence is what keeps transactions
 *     whole, shown deterministically: between the cut of account y's
 *     partition and the (later) cut of account x's, the backup's progress
 *     callback runs a transfer x -> y. With the fence it is refused
 *     (CONFLICT) and the restored sum holds; with the planted bug
 *     tpc.prepare.ignore_fence (--planted) it commits, and the restored
 *     cluster must show the split (x debited, y not credited): the checker
 *     catching the bad case is part of the test.
 *
 * Waits are bounded; nothing depends on timing or on who wins a race.
 * OKV_KEEP_CLUSTER_DIR=1 keeps the data dirs and logs.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keycodec.h"
#include "okv_cluster.h"
#include "okv_test.h"
#include "orderkv.h"

static const char *orderkvd_path = ORDERKVD_PATH;
static const char *shell_path = ORDERKV_SHELL_PATH;

#define NODES 3
#define TICK_MS 50
#define BOUND_MS 60000
#define NACC 6
#define INIT 100
#define MAX_PUTS 200000

static const char *ACC = "accounts";
static int planted_mode;   /* --planted: tpc.prepare.ignore_fence on every node */

static int64_t now_ms(void) { return okv_cluster_now_ms(); }
static void sleep_ms(int ms) { okv_cluster_sleep_ms(ms); }

static int transient(int rc)
{
    return rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT || rc == OKV_ENOTLEADER ||
           rc == OKV_EUNKNOWN;
}

static uint32_t partitions_of(okv_client *cl, const char *table)
{
    okv_status *s;
    assert_int_equal(okv_status_get(cl, &s, 10000), OKV_OK);
    uint32_t n = 0;
    for (size_t i = 0; i < okv_status_table_count(s); i++)
        if (strcmp(okv_status_table_name(s, i), table) == 0)
            n = okv_status_table_partitions(s, i);
    okv_status_free(s);
    assert_true(n > 1);
    return n;
}

static uint32_t table_id_of(okv_client *cl, const char *table)
{
    okv_status *s;
    assert_int_equal(okv_status_get(cl, &s, 10000), OKV_OK);
    uint32_t id = 0;
    int found = 0;
    for (size_t i = 0; i < okv_status_table_count(s); i++)
        if (strcmp(okv_status_table_name(s, i), table) == 0) {
            id = okv_status_table_id(s, i);
            found = 1;
        }
    okv_status_free(s);
    assert_true(found);
    return id;
}

static void put_counter(okv_client *cl, const char *key, int64_t v)
{
    uint8_t b[8];
    okv_counter_encode(v, b);
    int64_t end = now_ms() + BOUND_MS;
    int rc;
    while ((rc = okv_put(cl, ACC, key, strlen(key), b, 8, NULL, 10000)) != OKV_OK) {
        if (!transient(rc) || now_ms() > end)
            fail_msg("put %s: %s: %s", key, okv_strerror(rc), okv_errmsg(cl));
        sleep_ms(100);
    }
}

static int64_t get_counter(okv_client *cl, const char *key)
{
    int64_t end = now_ms() + BOUND_MS;
    for (;;) {
        okv_value *v = NULL;
        int rc = okv_get(cl, ACC, key, strlen(key), &v, 10000);
        if (rc == OKV_OK) {
            int64_t x = 0;
            assert_int_equal(okv_counter_decode(okv_value_data(v), okv_value_len(v), &x), OKV_OK);
            okv_value_free(v);
            return x;
        }
        if (!transient(rc) || now_ms() > end)
            fail_msg("get %s: %s: %s", key, okv_strerror(rc), okv_errmsg(cl));
        sleep_ms(100);
    }
}

/* A transfer of amt from a to b, floor 0 at a; a's partition coordinates. */
static int transfer(okv_client *cl, const char *a, const char *b, int64_t amt)
{
    okv_txn_req *t;
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_add_floor(t, ACC, a, strlen(a), -amt, 0), OKV_OK);
    assert_int_equal(okv_txn_req_add(t, ACC, b, strlen(b), amt), OKV_OK);
    okv_txn_outcome o;
    int rc = okv_txn_commit(cl, t, &o, 15000);
    okv_txn_req_free(t);
    return rc;
}

/* n account keys in distinct partitions of accounts. */
static void pick_accounts(uint32_t parts, char keys[][32], int n)
{
    int have = 0;
    for (unsigned i = 1; have < n; i++) {
        char k[32];
        snprintf(k, sizeof k, "acct%u", i);
        uint32_t p = keycodec_partition_of(k, strlen(k), parts);
        int dup = 0;
        for (int j = 0; j < have; j++)
            dup |= keycodec_partition_of(keys[j], strlen(keys[j]), parts) == p;
        if (!dup)
            snprintf(keys[have++], 32, "%s", k);
    }
}

/* ---- restoring into a second cluster ----------------------------------------- */

/* Runs a command line; its exit status (-1 if it did not run). */
static int run_cmd(const char *cmd)
{
    fflush(stdout);   /* its output after ours */
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `orderkv restore` for node id of c from backup, output into log. */
static int restore_node(okv_cluster *c, int id, const char *backup, const char *log)
{
    char cmd[16000];
    snprintf(cmd, sizeof cmd, "'%s' restore '%s' --node-id %d --initial-cluster '%s' "
             "--data-dir '%s' >'%s' 2>&1", shell_path, backup, id, c->spec, c->data[id], log);
    return run_cmd(cmd);
}

static void print_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f))
        fprintf(stderr, "    %s", line);
    if (f)
        fclose(f);
}

/* A second cluster, on ports of its own, started from backup. */
static okv_cluster *restored_cluster(const char *backup)
{
    okv_cluster *c;
    if (okv_cluster_start(&c, orderkvd_path, NODES, TICK_MS) != 0)
        fail_msg("the second cluster did not start");
    for (int id = 1; id <= NODES; id++)
        okv_cluster_node_stop(c, id, 0);
    for (int id = 1; id <= NODES; id++) {
        okv_test_rmtree(c->data[id]);
        char log[4400];
        snprintf(log, sizeof log, "%s/restore%d.log", c->dir, id);
        int st = restore_node(c, id, backup, log);
        printf("  restore node %d: exit %d\n", id, st);
        print_file(log);
        if (st != 0)
            fail_msg("orderkv restore of node %d failed", id);
    }
    for (int id = 1; id <= NODES; id++)
        if (okv_cluster_node_start(c, id) != 0) {
            okv_cluster_dump_logs(c, 20);
            fail_msg("restored node %d did not start", id);
        }
    if (okv_cluster_wait_leaders(c, BOUND_MS) != 0) {
        okv_cluster_dump_logs(c, 20);
        fail_msg("the restored cluster elected no leader for some partition");
    }
    return c;
}

static int64_t sum_of(okv_client *cl, char keys[][32], int n)
{
    int64_t s = 0;
    for (int i = 0; i < n; i++)
        s += get_counter(cl, keys[i]);
    return s;
}

/* ---- a. under load --------------------------------------------------------------- */

typedef struct load {
    okv_cluster *c;
    char acc[NACC][32];
    atomic_int stop;
    atomic_int backup_began;
    int *acked;          /* put numbers acknowledged before the backup began */
    atomic_int nacked;
    atomic_int puts_total, xfers_ok, xfers_refused;
} load;

static void *writer(void *arg)
{
    load *l = arg;
    okv_client *cl;
    if (okv_connect(&cl, l->c->all, NULL) != OKV_OK)
        return NULL;
    for (int n = 0; !atomic_load(&l->stop) && n < MAX_PUTS; n++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "w%d/k", n);
        snprintf(v, sizeof v, "value-%d", n);
        int rc = okv_put(cl, "orders", k, strlen(k), v, strlen(v), NULL, 10000);
        /* Read after the answer: set before the backup started means the
         * write was acknowledged before it. */
        if (rc == OKV_OK && !atomic_load(&l->backup_began))
            l->acked[atomic_fetch_add(&l->nacked, 1)] = n;
        atomic_fetch_add(&l->puts_total, 1);
    }
    okv_close(cl);
    return NULL;
}

static void *transferer(void *arg)
{
    load *l = arg;
    okv_client *cl;
    if (okv_connect(&cl, l->c->all, NULL) != OKV_OK)
        return NULL;
    unsigned seed = 7;
    while (!atomic_load(&l->stop)) {
        int a = (int)(rand_r(&seed) % NACC), b = (int)(rand_r(&seed) % NACC);
        if (a == b)
            continue;
        int rc = transfer(cl, l->acc[a], l->acc[b], 1 + (int64_t)(rand_r(&seed) % 7));
        if (rc == OKV_OK)
            atomic_fetch_add(&l->xfers_ok, 1);
        else if (rc == OKV_ECONFLICT)
            atomic_fetch_add(&l->xfers_refused, 1);
    }
    okv_close(cl);
    return NULL;
}

/* The leader of the partition just cut is killed (SIGKILL) right after
 * its cut was written: the cuts still to come meet a dead node, new
 * leaders (which hold the fences: a fence is answered once applied, so a
 * majority has it) and transactions the dead node left PREPARED, which
 * must settle before their partition can be cut. */
typedef struct killer {
    load *l;
    int killed;   /* node id, 0 before */
} killer;

static void kill_after_first_cut(void *arg, const char *table, uint32_t partition,
                                 uint64_t index, uint64_t term)
{
    (void)index, (void)term;
    killer *k = arg;
    if (k->killed)
        return;
    okv_client *cl;
    if (okv_connect(&cl, k->l->c->all, NULL) != OKV_OK)
        return;
    uint64_t leader = okv_cluster_leader(k->l->c, table_id_of(cl, table), partition);
    okv_close(cl);
    k->killed = leader ? (int)leader : 1;
    okv_cluster_node_stop(k->l->c, k->killed, 1);
    printf("  node %d (led %s/%u) killed after that partition's cut\n", k->killed, table,
           partition);
}

static void backup_under_load(int kill_a_leader)
{
    load l;
    memset(&l, 0, sizeof l);
    l.acked = calloc(MAX_PUTS, sizeof *l.acked);
    assert_non_null(l.acked);
    assert_int_equal(okv_cluster_start(&l.c, orderkvd_path, NODES, TICK_MS), 0);
    assert_int_equal(okv_cluster_wait_leaders(l.c, BOUND_MS), 0);
    okv_client *cl;
    assert_int_equal(okv_connect(&cl, l.c->all, NULL), OKV_OK);
    pick_accounts(partitions_of(cl, ACC), l.acc, NACC);
    for (int i = 0; i < NACC; i++)
        put_counter(cl, l.acc[i], INIT);
    pthread_t w, t;
    assert_int_equal(pthread_create(&w, NULL, writer, &l), 0);
    assert_int_equal(pthread_create(&t, NULL, transferer, &l), 0);
    int64_t end = now_ms() + BOUND_MS;
    while ((atomic_load(&l.nacked) < 300 || atomic_load(&l.xfers_ok) < 20) && now_ms() < end)
        sleep_ms(20);
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/backup", l.c->dir);
    atomic_store(&l.backup_began, 1);
    okv_backup_options o = OKV_BACKUP_OPTIONS_INIT;
    killer kl = { &l, 0 };
    if (kill_a_leader) {
        o.on_cut = kill_after_first_cut;
        o.ctx = &kl;
    }
    int rc = okv_backup(cl, dir, &o);
    if (rc)
        fail_msg("backup: %s: %s", okv_strerror(rc), okv_errmsg(cl));
    assert_true(!kill_a_leader || kl.killed);
    int puts_during = atomic_load(&l.puts_total);
    atomic_store(&l.stop, 1);
    pthread_join(w, NULL);
    pthread_join(t, NULL);
    int nacked = atomic_load(&l.nacked);
    printf("  %d puts acknowledged before the backup; %d puts and %d transfers (%d refused) in "
           "all\n", nacked, puts_during, atomic_load(&l.xfers_ok), atomic_load(&l.xfers_refused));
    assert_true(nacked >= 300);
    assert_int_equal(sum_of(cl, l.acc, NACC), NACC * INIT);   /* the live cluster itself */
    okv_close(cl);
    for (int id = 1; id <= NODES; id++)   /* the old cluster is gone; the backup is all */
        if (id != kl.killed)
            okv_cluster_node_stop(l.c, id, 1);

    okv_cluster *r = restored_cluster(dir);
    okv_client *rc_cl;
    assert_int_equal(okv_connect(&rc_cl, r->all, NULL), OKV_OK);
    for (int i = 0; i < nacked; i++) {
        char k[32], want[32];
        snprintf(k, sizeof k, "w%d/k", l.acked[i]);
        snprintf(want, sizeof want, "value-%d", l.acked[i]);
        okv_value *v = NULL;
        int grc;
        int64_t gend = now_ms() + BOUND_MS;
        while ((grc = okv_get(rc_cl, "orders", k, strlen(k), &v, 10000)) != OKV_OK &&
               transient(grc) && now_ms() < gend)
            sleep_ms(100);
        if (grc != OKV_OK)
            fail_msg("restored cluster: %s (acknowledged before the backup): %s", k,
                     okv_strerror(grc));
        assert_int_equal(okv_value_len(v), strlen(want));
        assert_memory_equal(okv_value_data(v), want, strlen(want));
        okv_value_free(v);
    }
    int64_t sum = sum_of(rc_cl, l.acc, NACC);
    printf("  restored: all %d acknowledged puts present; sum of balances %lld (want %d)\n",
           nacked, (long long)sum, NACC * INIT);
    assert_int_equal(sum, NACC * INIT);
    /* The restored cluster takes writes and transactions (no fence came along). */
    int xrc;
    int64_t xend = now_ms() + BOUND_MS;
    while ((xrc = transfer(rc_cl, l.acc[0], l.acc[1], 1)) != OKV_OK && now_ms() < xend)
        sleep_ms(100);
    assert_int_equal(xrc, OKV_OK);
    okv_close(rc_cl);
    okv_cluster_free(r);
    okv_cluster_free(l.c);
    free(l.acked);
}

static void test_backup__under_load_restores_every_acknowledged_write(void **state)
{
    (void)state;
    backup_under_load(0);
}

static void test_backup__a_leader_killed_between_cuts(void **state)
{
    (void)state;
    backup_under_load(1);
}

/* ---- b. bad input ---------------------------------------------------------------- */

/* Restores a copy of good with `damage` (a shell command run in the copy's
 * dir) applied; expects exit 1, a message containing `want` and no data dir. */
static void expect_refused(okv_cluster *c, const char *good, const char *name,
                           const char *damage, const char *want)
{
    char copy[4400], cmd[16000], log[4400], data[4400];
    snprintf(copy, sizeof copy, "%s/bad-%s", c->dir, name);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && cd '%s' && %s", good, copy, copy, damage);
    assert_int_equal(run_cmd(cmd), 0);
    snprintf(log, sizeof log, "%s/restore-%s.log", c->dir, name);
    snprintf(data, sizeof data, "%s/data-%s", c->dir, name);
    snprintf(cmd, sizeof cmd, "'%s' restore '%s' --node-id 1 --initial-cluster '%s' "
             "--data-dir '%s' >'%s' 2>&1", shell_path, copy, c->spec, data, log);
    int st = run_cmd(cmd);
    char text[4096] = "";
    FILE *f = fopen(log, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    printf("  %s: exit %d: %s", name, st, text);
    assert_int_equal(st, 1);
    if (!strstr(text, want))
        fail_msg("%s: the message does not say '%s'", name, want);
    struct stat sb;
    char tmp[4500];
    snprintf(tmp, sizeof tmp, "%s.restoring", data);
    assert_int_not_equal(stat(data, &sb), 0);
    assert_int_not_equal(stat(tmp, &sb), 0);
}

static void test_backup__restore_refuses_a_damaged_backup(void **state)
{
    (void)state;
    okv_cluster *c;
    assert_int_equal(okv_cluster_start(&c, orderkvd_path, NODES, TICK_MS), 0);
    assert_int_equal(okv_cluster_wait_leaders(c, BOUND_MS), 0);
    okv_client *cl;
    assert_int_equal(okv_connect(&cl, c->all, NULL), OKV_OK);
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        put_counter(cl, k, i);
    }
    char good[4400];
    snprintf(good, sizeof good, "%s/good", c->dir);
    int rc = okv_backup(cl, good, NULL);
    if (rc)
        fail_msg("backup: %s: %s", okv_strerror(rc), okv_errmsg(cl));
    okv_close(cl);
    /* The verify mode says a good backup is good. */
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "'%s' restore --verify '%s' >/dev/null", shell_path, good);
    assert_int_equal(run_cmd(cmd), 0);
    /* A byte in the middle of a partition file's records, flipped. */
    expect_refused(c, good, "flipped", "f=accounts-0.snap; s=$(stat -c %s $f); "
                   "o=$((s / 2)); b=$(dd if=$f bs=1 skip=$o count=1 2>/dev/null | od -An -tu1); "
                   "printf \"$(printf '\\\\%03o' $(( (b ^ 1) & 255 )))\" | "
                   "dd of=$f bs=1 seek=$o conv=notrunc 2>/dev/null",
                   "is damaged: its SHA-256");
    expect_refused(c, good, "missing", "rm payments-1.snap", "is missing");
    expect_refused(c, good, "truncated", "truncate -s -10 orders-2.snap", "truncated");
    expect_refused(c, good, "manifest", "sed -i 's/^part 1 0 /part 1 0 1/' MANIFEST",
                   "MANIFEST is damaged");
    expect_refused(c, good, "manifest-cut", "head -c 100 MANIFEST > M && mv M MANIFEST",
                   "MANIFEST is truncated");
    expect_refused(c, good, "no-manifest", "rm MANIFEST", "not a backup");
    okv_cluster_free(c);
}

/* ---- c. the fence ------------------------------------------------------------------ */

typedef struct fence_probe {
    okv_client *cl;
    uint32_t y_part;
    const char *x, *y;
    int ran, rc;
} fence_probe;

/* Between two cuts: right after y's partition was cut (x's comes later). */
static void between_cuts(void *arg, const char *table, uint32_t partition, uint64_t index,
                         uint64_t term)
{
    (void)index, (void)term;
    fence_probe *p = arg;
    if (strcmp(table, ACC) != 0 || partition != p->y_part || p->ran)
        return;
    p->ran = 1;
    p->rc = transfer(p->cl, p->x, p->y, 10);
    printf("  transfer %s -> %s between the cuts: %s\n", p->x, p->y, okv_strerror(p->rc));
}

static void test_backup__fence_keeps_transactions_whole(void **state)
{
    (void)state;
    okv_cluster *c;
    const char *env = planted_mode ? "ORDERKV_FAILPOINTS=tpc.prepare.ignore_fence=on" : NULL;
    assert_int_equal(okv_cluster_start_env(&c, orderkvd_path, NODES, TICK_MS, env), 0);
    assert_int_equal(okv_cluster_wait_leaders(c, BOUND_MS), 0);
    okv_client *cl;
    assert_int_equal(okv_connect(&cl, c->all, NULL), OKV_OK);
    uint32_t parts = partitions_of(cl, ACC);
    /* x and y with y's partition cut before x's (the backup goes in
     * partition order): x coordinates the transfer. */
    char acc[2][32];
    pick_accounts(parts, acc, 2);
    uint32_t p0 = keycodec_partition_of(acc[0], strlen(acc[0]), parts);
    uint32_t p1 = keycodec_partition_of(acc[1], strlen(acc[1]), parts);
    const char *x = p0 > p1 ? acc[0] : acc[1], *y = p0 > p1 ? acc[1] : acc[0];
    put_counter(cl, x, INIT);
    put_counter(cl, y, INIT);
    fence_probe probe = { cl, p0 > p1 ? p1 : p0, x, y, 0, 0 };
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/backup", c->dir);
    okv_backup_options o = OKV_BACKUP_OPTIONS_INIT;
    o.on_cut = between_cuts;
    o.ctx = &probe;
    int rc = okv_backup(cl, dir, &o);
    if (rc)
        fail_msg("backup: %s: %s", okv_strerror(rc), okv_errmsg(cl));
    assert_true(probe.ran);
    /* With the fence the transfer is refused; with the planted bug it commits. */
    assert_int_equal(probe.rc, planted_mode ? OKV_OK : OKV_ECONFLICT);
    okv_close(cl);
    for (int id = 1; id <= NODES; id++)
        okv_cluster_node_stop(c, id, 1);
    okv_cluster *r = restored_cluster(dir);
    okv_client *rcl;
    assert_int_equal(okv_connect(&rcl, r->all, NULL), OKV_OK);
    int64_t vx = get_counter(rcl, x), vy = get_counter(rcl, y);
    int whole = vx + vy == 2 * INIT;
    printf("  restored: %s = %lld, %s = %lld: %s\n", x, (long long)vx, y, (long long)vy,
           whole ? "the sum holds" : "SPLIT: the transfer is in one cut and not the other");
    okv_close(rcl);
    okv_cluster_free(r);
    okv_cluster_free(c);
    if (planted_mode && whole)
        fail_msg("the planted bug (PREPAREs ignore the fence) was not caught: the checker "
                 "cannot be trusted");
    if (!planted_mode && !whole)
        fail_msg("the backup split a transaction");
}

int main(int argc, char **argv)
{
    int fence_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--planted") == 0)
            planted_mode = fence_only = 1;
        else if (strcmp(argv[i], "--fence") == 0)
            fence_only = 1;
    }
    const struct CMUnitTest all[] = {
        cmocka_unit_test(test_backup__under_load_restores_every_acknowledged_write),
        cmocka_unit_test(test_backup__a_leader_killed_between_cuts),
        cmocka_unit_test(test_backup__restore_refuses_a_damaged_backup),
    };
    const struct CMUnitTest fence[] = {
        cmocka_unit_test(test_backup__fence_keeps_transactions_whole),
    };
    return fence_only ? cmocka_run_group_tests(fence, NULL, NULL)
                      : cmocka_run_group_tests(all, NULL, NULL);
}
