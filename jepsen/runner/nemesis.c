/*
 * nemesis.c — faults through hosts.sh and okv_transfer_leader (nemesis.h).
 *
 * Node numbers are hosts.sh's: node I is entry I of the client address
 * list. Raft node ids are learned from each node's status, so "the leader"
 * (a node id in the replica status) maps back to a node number.
 */
#include "nemesis.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hash.h"

#define MAX_NODES 16
#define MAX_WORDS 32
#define HOSTS_TIMEOUT_MS 60000
#define STATUS_TIMEOUT_MS 500
#define MAX_FOCUS 256

extern char **environ;

enum kind { K_NONE, K_KILL, K_PAUSE, K_PARTITION, K_CLOCK_SKEW, K_CLOCK_STROBE, K_TRANSFER };
enum target { T_ONE, T_MINORITY, T_LEADER, T_ALL, T_HALVES, T_RING, T_BRIDGE, T_NA };

typedef struct nemesis_def {
    const char *name;
    enum kind kind;
    enum target target;
} nemesis_def;

static const nemesis_def defs[] = {
    { "none", K_NONE, T_NA },
    { "kill-one", K_KILL, T_ONE },
    { "kill-minority", K_KILL, T_MINORITY },
    { "kill-leader", K_KILL, T_LEADER },
    { "kill-all", K_KILL, T_ALL },
    { "pause-one", K_PAUSE, T_ONE },
    { "pause-minority", K_PAUSE, T_MINORITY },
    { "pause-leader", K_PAUSE, T_LEADER },
    { "pause-all", K_PAUSE, T_ALL },
    { "partition-one", K_PARTITION, T_ONE },
    { "partition-leader", K_PARTITION, T_LEADER },
    { "partition-halves", K_PARTITION, T_HALVES },
    { "partition-ring", K_PARTITION, T_RING },
    { "partition-bridge", K_PARTITION, T_BRIDGE },
    { "clock-skew", K_CLOCK_SKEW, T_ALL },
    { "clock-strobe", K_CLOCK_STROBE, T_ALL },
    { "transfer-storm", K_TRANSFER, T_NA },
};
#define NDEFS (sizeof defs / sizeof defs[0])

int nemesis_known(const char *name)
{
    if (strcmp(name, "mix") == 0)
        return 1;
    for (size_t k = 0; k < NDEFS; k++)
        if (strcmp(defs[k].name, name) == 0)
            return 1;
    return 0;
}

const char *nemesis_names(void)
{
    return "none, kill-one, kill-minority, kill-leader, kill-all, pause-one, pause-minority, "
           "pause-leader, pause-all, partition-one, partition-leader, partition-halves, "
           "partition-ring, partition-bridge, clock-skew, clock-strobe, transfer-storm, mix";
}

struct nemesis {
    const run_config *cfg;
    history *h;
    FILE *log, *tsv;
    const char *table;
    /* The focus keys (nemesis_new's comma-separated list, borrowed): where
     * leader faults and transfers aim; none = a random partition. */
    size_t nfocus;
    const char *focus[MAX_FOCUS];
    int focus_len[MAX_FOCUS];
    okv_client *c;
    pthread_t th;
    int running;
    atomic_int stop;
    uint64_t rng;
    int n;                          /* nodes */
    uint64_t node_id[MAX_NODES];    /* Raft node id of node I+1; 0 unknown */
    int killed[MAX_NODES], paused[MAX_NODES], skewed[MAX_NODES];
    int cut;
    int faults;
};

/* ---- small helpers ------------------------------------------------------- */

static uint64_t rnd(nemesis *n)
{
    uint64_t x = n->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return n->rng = x;
}

static int rnd_below(nemesis *n, int k) { return k > 0 ? (int)(rnd(n) % (uint64_t)k) : 0; }

static void shuffle(nemesis *n, int *a, int k)
{
    for (int i = k - 1; i > 0; i--) {
        int j = rnd_below(n, i + 1), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static double now_s(const nemesis *n) { return (double)history_now(n->h) / 1e9; }

static void logf_(nemesis *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(nemesis *n, const char *fmt, ...)
{
    if (!n->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(n->log, "%9.3f s  ", now_s(n));
    vfprintf(n->log, fmt, ap);
    fputc('\n', n->log);
    fflush(n->log);
    va_end(ap);
}

/* Records a nemesis op and the matching log line. */
static void record(nemesis *n, const char *f, const char *value, const char *error)
{
    history_append(n->h, HIST_INFO, HIST_NEMESIS, f, jv_str(value), error);
    logf_(n, "%-9s %s%s%s", f, value, error ? "  FAILED: " : "", error ? error : "");
}

/* "1,3" from a node list (1-based). */
static void node_list(char *buf, size_t size, const int *nodes, int k)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < k && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%d", i ? "," : "", nodes[i]);
}

/* Sleeps until `until_s` (history time) or stop; 1 if stopped. */
static int sleep_until(nemesis *n, double until_s)
{
    while (!atomic_load(&n->stop)) {
        double left = until_s - now_s(n);
        if (left <= 0)
            return 0;
        sleep_ms(left > 0.05 ? 50 : left * 1000);
    }
    return 1;
}

/* ---- hosts.sh ------------------------------------------------------------ */

/* Starts `hosts.sh` with argv (see hosts_run); its pid, or -1. */
static pid_t hosts_spawn(const run_config *cfg, const char *const *argv)
{
    if (!cfg->hosts[0])
        return -1;
    char words_buf[sizeof cfg->hosts];
    snprintf(words_buf, sizeof words_buf, "%s", cfg->hosts);
    char *words[MAX_WORDS];
    int nw = 0;
    for (char *save = NULL, *w = strtok_r(words_buf, " \t", &save); w && nw < MAX_WORDS;
         w = strtok_r(NULL, " \t", &save))
        words[nw++] = w;
    if (nw == 0 || !argv[0])
        return -1;
    /* program SUBCOMMAND [the rest of --hosts] ARGS... */
    char *full[MAX_WORDS * 2 + 2];
    int k = 0;
    full[k++] = words[0];
    full[k++] = (char *)argv[0];
    for (int i = 1; i < nw; i++)
        full[k++] = words[i];
    for (int i = 1; argv[i] && k < (int)(sizeof full / sizeof full[0]) - 1; i++)
        full[k++] = (char *)argv[i];
    full[k] = NULL;

    char logpath[4200];
    snprintf(logpath, sizeof logpath, "%s/hosts.log", cfg->out_dir);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        /* One write per line: parallel commands do not interleave. */
        char line[2048];
        size_t used = 0, cap = sizeof line - 1; /* room for the newline */
        for (int i = 0; full[i] && used < cap; i++)
            used += (size_t)snprintf(line + used, cap - used, "%s%s", i ? " " : "+ ", full[i]);
        if (used > cap)
            used = cap;
        line[used++] = '\n';
        ssize_t wr = write(fd, line, used);
        (void)wr;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (fd >= 0) {
        posix_spawn_file_actions_adddup2(&fa, fd, 1);
        posix_spawn_file_actions_adddup2(&fa, fd, 2);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, full[0], &fa, NULL, full, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (fd >= 0)
        close(fd);
    return rc == 0 ? pid : -1;
}

/* Waits for a hosts.sh (bounded: SIGKILL after HOSTS_TIMEOUT_MS). */
static int hosts_wait(pid_t pid)
{
    if (pid < 0)
        return -1;
    int status = 0;
    for (int waited = 0;; waited += 10) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return -1;
        if (waited >= HOSTS_TIMEOUT_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        sleep_ms(10);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int hosts_run(const run_config *cfg, const char *const *argv)
{
    return hosts_wait(hosts_spawn(cfg, argv));
}

/* Runs `hosts.sh CMD --node I [OPT ARG_I]` for k nodes at once (each node
 * has its own lock in hosts.sh, so they proceed in parallel: a kill-all
 * kills every node within milliseconds, a clock strobe flips every node
 * together). args may be NULL. Returns how many failed. */
static int hosts_nodes(nemesis *n, const char *cmd, const int *nodes, int k, const char *opt,
                       char (*args)[32])
{
    pid_t pids[MAX_NODES];
    for (int i = 0; i < k; i++) {
        char nbuf[16];
        snprintf(nbuf, sizeof nbuf, "%d", nodes[i]);
        const char *argv[8] = { cmd, "--node", nbuf, NULL, NULL, NULL };
        if (opt && args) {
            argv[3] = opt;
            argv[4] = args[i];
        } else if (opt && strcmp(cmd, "start") == 0) {
            argv[3] = opt;
            argv[4] = n->cfg->start_env;
        }
        pids[i] = hosts_spawn(n->cfg, argv);
    }
    int failed = 0;
    for (int i = 0; i < k; i++)
        failed += hosts_wait(pids[i]) != 0;
    return failed;
}

/* Restarts the given nodes (with --start-env). */
static int hosts_start(nemesis *n, const int *nodes, int k)
{
    return hosts_nodes(n, "start", nodes, k, n->cfg->start_env[0] ? "--env" : NULL, NULL);
}

/* ---- the cluster as the nodes report it ---------------------------------- */

typedef struct view {
    uint32_t table_id;
    uint32_t partitions;            /* at most 256 (the arrays below) */
    uint32_t partitions_total;      /* the table's real count, for hashing */
    int have_table;
    /* per partition: leader node number (1-based, 0 none), its term, holders */
    int leader[256];
    uint64_t leader_term[256];
    int holders[256][MAX_NODES];
    int nholders[256];
} view;

static int node_of_id(const nemesis *n, uint64_t id)
{
    for (int i = 0; i < n->n; i++)
        if (n->node_id[i] == id)
            return i + 1;
    return 0;
}

/* Asks every node for its status; fills v for n->table. */
static void view_load(nemesis *n, view *v)
{
    memset(v, 0, sizeof *v);
    char addrs[sizeof n->cfg->addrs];
    snprintf(addrs, sizeof addrs, "%s", n->cfg->addrs);
    char *save = NULL;
    int i = 0;
    okv_status *st[MAX_NODES] = { 0 };
    for (char *a = strtok_r(addrs, ",", &save); a && i < n->n; a = strtok_r(NULL, ",", &save), i++) {
        if (okv_status_get_at(n->c, a, &st[i], STATUS_TIMEOUT_MS) == OKV_OK)
            n->node_id[i] = okv_status_node_id(st[i]);
    }
    for (i = 0; i < n->n; i++) {
        okv_status *s = st[i];
        if (!s)
            continue;
        if (!v->have_table) {
            for (size_t t = 0; t < okv_status_table_count(s); t++)
                if (strcmp(okv_status_table_name(s, t), n->table) == 0) {
                    v->table_id = okv_status_table_id(s, t);
                    v->partitions = okv_status_table_partitions(s, t);
                    v->partitions_total = v->partitions;
                    if (v->partitions > 256)
                        v->partitions = 256;
                    v->have_table = 1;
                }
        }
        if (!v->have_table)
            continue;
        for (size_t r = 0; r < okv_status_replica_count(s); r++) {
            okv_replica_info ri;
            if (okv_status_replica(s, r, &ri) != OKV_OK || ri.table_id != v->table_id ||
                ri.partition >= v->partitions)
                continue;
            uint32_t p = ri.partition;
            if (v->nholders[p] < MAX_NODES)
                v->holders[p][v->nholders[p]++] = i + 1;
            int node = node_of_id(n, okv_status_node_id(s));
            if (ri.role && strcmp(ri.role, "leader") == 0 && node &&
                (v->leader[p] == 0 || ri.term > v->leader_term[p])) {
                v->leader[p] = node;
                v->leader_term[p] = ri.term;
            }
        }
    }
    for (i = 0; i < n->n; i++)
        okv_status_free(st[i]);
}

/* The partition leader faults and transfers aim at: the partition of a
 * focus key chosen at random (a workload that lives in one partition, like
 * the one-partition bank, names a key of it, or a random partition would
 * miss it most of the time; the spread bank names every account), else a
 * random one. *key (may be NULL) gets the focus key's index, or -1.
 * Computed as the servers do: FNV-1a of the partition key, the part before
 * the first '/' (common/hash.h). */
static uint32_t pick_partition(nemesis *n, const view *v, int *key)
{
    if (key)
        *key = -1;
    if (n->nfocus) {
        int f = rnd_below(n, (int)n->nfocus);
        const char *k = n->focus[f];
        const char *slash = memchr(k, '/', (size_t)n->focus_len[f]);
        size_t pk = slash ? (size_t)(slash - k) : (size_t)n->focus_len[f];
        uint32_t p = (uint32_t)(okv_hash64(k, pk) % v->partitions_total);
        if (p < v->partitions) {
            if (key)
                *key = f;
            return p;
        }
    }
    return (uint32_t)rnd_below(n, (int)v->partitions);
}

/* The leader of the partition pick_partition chooses (or, with no focus
 * key and that one leaderless, of the next partition that has one), or a
 * random node if no leader is known. */
static int pick_leader(nemesis *n, char *why, size_t whysize)
{
    view *v = malloc(sizeof *v);
    if (!v)
        abort();
    view_load(n, v);
    int node = 0;
    if (v->have_table && v->partitions > 0) {
        int f;
        uint32_t p0 = pick_partition(n, v, &f);
        uint32_t tries = n->nfocus ? 1 : v->partitions;
        for (uint32_t k = 0; k < tries && !node; k++) {
            uint32_t p = (p0 + k) % v->partitions;
            if (v->leader[p]) {
                node = v->leader[p];
                if (f >= 0)
                    snprintf(why, whysize, "leader of %s/%u (holds %.*s) in term %llu", n->table,
                             p, n->focus_len[f], n->focus[f],
                             (unsigned long long)v->leader_term[p]);
                else
                    snprintf(why, whysize, "leader of %s/%u in term %llu", n->table, p,
                             (unsigned long long)v->leader_term[p]);
            }
        }
    }
    if (!node) {
        node = 1 + rnd_below(n, n->n);
        snprintf(why, whysize, "no leader known; node chosen at random");
    }
    free(v);
    return node;
}

/* ---- targets ------------------------------------------------------------- */

/* Fills nodes (1-based) for a node-set target; returns how many. */
static int pick_nodes(nemesis *n, enum target t, int *nodes, char *why, size_t whysize)
{
    int all[MAX_NODES];
    for (int i = 0; i < n->n; i++)
        all[i] = i + 1;
    shuffle(n, all, n->n);
    why[0] = 0;
    switch (t) {
    case T_ONE: nodes[0] = all[0]; return 1;
    case T_MINORITY: {
        int k = (n->n - 1) / 2;
        memcpy(nodes, all, (size_t)k * sizeof *nodes);
        return k;
    }
    case T_LEADER: nodes[0] = pick_leader(n, why, whysize); return 1;
    default:
        for (int i = 0; i < n->n; i++)
            nodes[i] = i + 1;
        return n->n;
    }
}

static void add_pair(char *buf, size_t size, int a, int b)
{
    size_t used = strlen(buf);
    if (a > b) {
        int t = a;
        a = b;
        b = t;
    }
    snprintf(buf + used, size - used, "%s%d-%d", used ? "," : "", a, b);
}

/* The node pairs to cut for a partition target, "1-2,1-3". */
static void pick_pairs(nemesis *n, enum target t, char *pairs, size_t size, char *why,
                       size_t whysize)
{
    int perm[MAX_NODES];
    for (int i = 0; i < n->n; i++)
        perm[i] = i + 1;
    shuffle(n, perm, n->n);
    pairs[0] = 0;
    why[0] = 0;
    switch (t) {
    case T_ONE:
    case T_LEADER: {
        int x = t == T_LEADER ? pick_leader(n, why, whysize) : perm[0];
        for (int y = 1; y <= n->n; y++)
            if (y != x)
                add_pair(pairs, size, x, y);
        if (t == T_ONE)
            snprintf(why, whysize, "node %d isolated", x);
        break;
    }
    case T_HALVES: {
        int h = n->n / 2;
        for (int i = 0; i < h; i++)
            for (int j = h; j < n->n; j++)
                add_pair(pairs, size, perm[i], perm[j]);
        snprintf(why, whysize, "halves of %d and %d nodes", h, n->n - h);
        break;
    }
    case T_RING:
        if (n->n <= 3) {
            /* Each node must see a majority (2 of 3): only one pair can go. */
            add_pair(pairs, size, perm[0], perm[1]);
        } else {
            /* Ring perm[0..n-1]: a node keeps its two ring neighbours. */
            for (int i = 0; i < n->n; i++)
                for (int j = i + 1; j < n->n; j++) {
                    int d = j - i < n->n - (j - i) ? j - i : n->n - (j - i);
                    if (d > 1)
                        add_pair(pairs, size, perm[i], perm[j]);
                }
        }
        snprintf(why, whysize, "majorities ring");
        break;
    case T_BRIDGE: {
        int h = n->n / 2; /* perm[0..h-1] | bridge perm[h] | perm[h+1..] */
        for (int i = 0; i < h; i++)
            for (int j = h + 1; j < n->n; j++)
                add_pair(pairs, size, perm[i], perm[j]);
        snprintf(why, whysize, "bridge node %d", perm[h]);
        break;
    }
    default: break;
    }
}

/* ---- one fault window ---------------------------------------------------- */

/* Sets every node's clock offset: random in [-60, 60] s (strobe_phase < 0)
 * or +-30 s alternating across nodes and phases. */
static void clock_offsets(nemesis *n, int strobe_phase, char *value, size_t size, int *failed)
{
    int nodes[MAX_NODES];
    char offs[MAX_NODES][32];
    size_t used = (size_t)snprintf(value, size, "offsets ");
    for (int i = 1; i <= n->n; i++) {
        double off = strobe_phase < 0 ? (double)rnd_below(n, 120001) / 1000.0 - 60.0
                                      : (strobe_phase + i) % 2 ? 30.0 : -30.0;
        nodes[i - 1] = i;
        snprintf(offs[i - 1], sizeof offs[i - 1], "%+.3f", off);
        n->skewed[i - 1] = 1;
        if (used < size)
            used += (size_t)snprintf(value + used, size - used, "%s%d:%s", i > 1 ? "," : "", i,
                                     offs[i - 1]);
    }
    *failed += hosts_nodes(n, "clock", nodes, n->n, "--offset", offs);
}

/* Resets the skewed nodes' clocks to offset 0. */
static void clock_reset(nemesis *n, char *value, size_t size, int *failed)
{
    int nodes[MAX_NODES], k = 0;
    char offs[MAX_NODES][32];
    size_t used = (size_t)snprintf(value, size, "offsets ");
    for (int i = 1; i <= n->n; i++) {
        if (!n->skewed[i - 1])
            continue;
        snprintf(offs[k], sizeof offs[k], "0");
        nodes[k++] = i;
        n->skewed[i - 1] = 0;
        if (used < size)
            used += (size_t)snprintf(value + used, size - used, "%s%d:0", k > 1 ? "," : "", i);
    }
    *failed += hosts_nodes(n, "clock", nodes, k, "--offset", offs);
}

/* One leader transfer of a partition (pick_partition) to a random holder. */
static int transfer_one(nemesis *n, const view *v)
{
    if (!v->have_table || v->partitions == 0)
        return -1;
    uint32_t p = pick_partition(n, v, NULL);
    if (v->nholders[p] == 0)
        return -1;
    int node = v->holders[p][rnd_below(n, v->nholders[p])];
    uint64_t id = n->node_id[node - 1];
    if (!id)
        return -1;
    return okv_transfer_leader(n->c, n->table, p, id, STATUS_TIMEOUT_MS);
}

static const char *fail_text(int failed) { return failed ? "a hosts.sh command failed (hosts.log)" : NULL; }

/* Applies def for one window ending at until_s; heals before returning. */
static void run_window(nemesis *n, const nemesis_def *d, double until_s)
{
    char value[1024], why[256] = "", detail[1400];
    int nodes[MAX_NODES] = { 0 }, k = 0, failed = 0;
    double begin = now_s(n);
    n->faults++;
    switch (d->kind) {
    case K_KILL:
    case K_PAUSE: {
        k = pick_nodes(n, d->target, nodes, why, sizeof why);
        const char *cmd = d->kind == K_KILL ? "kill" : "pause";
        failed = hosts_nodes(n, cmd, nodes, k, NULL, NULL);
        for (int i = 0; i < k; i++)
            (d->kind == K_KILL ? n->killed : n->paused)[nodes[i] - 1] = 1;
        char list[256];
        node_list(list, sizeof list, nodes, k);
        snprintf(value, sizeof value, "nodes %s", list);
        record(n, cmd, value, fail_text(failed));
        break;
    }
    case K_PARTITION: {
        char pairs[512];
        pick_pairs(n, d->target, pairs, sizeof pairs, why, sizeof why);
        const char *argv[] = { "cut", "--pairs", pairs, NULL };
        failed = hosts_run(n->cfg, argv) != 0;
        n->cut = 1;
        snprintf(value, sizeof value, "pairs %s", pairs);
        record(n, "cut", value, fail_text(failed));
        break;
    }
    case K_CLOCK_SKEW:
        clock_offsets(n, -1, value, sizeof value, &failed);
        record(n, "clock", value, fail_text(failed));
        break;
    case K_CLOCK_STROBE:
        snprintf(value, sizeof value, "strobe all nodes +-30 s every 100 ms");
        record(n, "clock", value, NULL);
        break;
    case K_TRANSFER:
        snprintf(value, sizeof value, "storm on table %s", n->table);
        record(n, "transfer", value, NULL);
        break;
    case K_NONE: break;
    }
    if (why[0])
        logf_(n, "          (%s: %s)", d->name, why);
    snprintf(detail, sizeof detail, "%s", value);

    /* The window itself: the repeating faults act all along. */
    int actions = 0, refused = 0;
    if (d->kind == K_CLOCK_STROBE) {
        /* A flip every 100 ms, or as fast as hosts.sh goes. */
        int phase = 0;
        while (now_s(n) < until_s && !atomic_load(&n->stop)) {
            double t0 = now_s(n);
            char tmp[512];
            int f2 = 0;
            clock_offsets(n, phase++, tmp, sizeof tmp, &f2);
            failed += f2;
            actions++;
            sleep_ms(100 - (now_s(n) - t0) * 1000);
        }
    } else if (d->kind == K_TRANSFER) {
        view *v = malloc(sizeof *v);
        if (!v)
            abort();
        view_load(n, v);
        while (now_s(n) < until_s && !atomic_load(&n->stop)) {
            if (transfer_one(n, v) != OKV_OK)
                refused++;
            actions++;
            if (actions % 20 == 0)
                view_load(n, v);
            sleep_ms(50);
        }
        free(v);
    } else {
        sleep_until(n, until_s);
    }

    /* Heal. */
    failed = 0;
    switch (d->kind) {
    case K_KILL:
    case K_PAUSE: {
        int healed[MAX_NODES] = { 0 }, kh = 0;
        int *state = d->kind == K_KILL ? n->killed : n->paused;
        for (int i = 0; i < n->n; i++)
            if (state[i]) {
                healed[kh++] = i + 1;
                state[i] = 0;
            }
        failed = d->kind == K_KILL ? hosts_start(n, healed, kh)
                                   : hosts_nodes(n, "resume", healed, kh, NULL, NULL);
        char list[256];
        node_list(list, sizeof list, healed, kh);
        snprintf(value, sizeof value, "nodes %s", list);
        record(n, d->kind == K_KILL ? "start" : "resume", value, fail_text(failed));
        break;
    }
    case K_PARTITION: {
        const char *argv[] = { "heal", NULL };
        failed = hosts_run(n->cfg, argv) != 0;
        if (!failed)
            n->cut = 0;
        record(n, "heal", "all", fail_text(failed));
        break;
    }
    case K_CLOCK_SKEW:
    case K_CLOCK_STROBE:
        clock_reset(n, value, sizeof value, &failed);
        if (d->kind == K_CLOCK_STROBE)
            logf_(n, "          (clock-strobe: %d flips)", actions);
        record(n, "clock", value, fail_text(failed));
        break;
    case K_TRANSFER:
        snprintf(value, sizeof value, "storm ended: %d transfers, %d refused", actions, refused);
        record(n, "transfer", value, NULL);
        break;
    case K_NONE: break;
    }
    if (n->tsv) {
        fprintf(n->tsv, "%.3f\t%.3f\t%s\t%s\n", begin, now_s(n), d->name, detail);
        fflush(n->tsv);
    }
}

static const nemesis_def *def_named(const char *name)
{
    for (size_t k = 0; k < NDEFS; k++)
        if (strcmp(defs[k].name, name) == 0)
            return &defs[k];
    return NULL;
}

static void *nemesis_main(void *arg)
{
    nemesis *n = arg;
    double interval = n->cfg->nemesis_interval_s;
    int mix = strcmp(n->cfg->nemesis, "mix") == 0;
    const nemesis_def *fixed = mix ? NULL : def_named(n->cfg->nemesis);
    double t = now_s(n);
    for (;;) {
        t += interval;
        if (sleep_until(n, t))
            break;
        const nemesis_def *d = fixed ? fixed : &defs[1 + rnd_below(n, (int)NDEFS - 1)];
        if (!d || d->kind == K_NONE)
            continue;
        logf_(n, "--- %s", d->name);
        t += interval;
        run_window(n, d, t);
        t = now_s(n);
        if (atomic_load(&n->stop))
            break;
    }
    return NULL;
}

/* ---- lifecycle ----------------------------------------------------------- */

nemesis *nemesis_new(const run_config *cfg, history *h, FILE *log, FILE *tsv, const char *table,
                     const char *focus_key)
{
    nemesis *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    n->cfg = cfg;
    n->h = h;
    n->log = log;
    n->tsv = tsv;
    n->table = table;
    for (const char *k = focus_key; k && *k && n->nfocus < MAX_FOCUS;) {
        size_t len = strcspn(k, ",");
        if (len) {
            n->focus[n->nfocus] = k;
            n->focus_len[n->nfocus++] = (int)len;
        }
        k += len + (k[len] == ',');
    }
    n->rng = cfg->seed * 0x9E3779B97F4A7C15ull + 0x5bd1e995u;
    if (!n->rng)
        n->rng = 1;
    n->n = cfg->nodes < MAX_NODES ? cfg->nodes : MAX_NODES;
    atomic_init(&n->stop, 0);
    okv_options o = OKV_OPTIONS_INIT;
    o.default_timeout_ms = STATUS_TIMEOUT_MS;
    if (okv_connect(&n->c, cfg->addrs, &o) != OKV_OK) {
        free(n);
        return NULL;
    }
    return n;
}

void nemesis_free(nemesis *n)
{
    if (!n)
        return;
    okv_close(n->c);
    free(n);
}

int nemesis_start(nemesis *n)
{
    if (strcmp(n->cfg->nemesis, "none") == 0)
        return 0;
    if (pthread_create(&n->th, NULL, nemesis_main, n) != 0)
        return -1;
    n->running = 1;
    return 0;
}

void nemesis_stop(nemesis *n)
{
    atomic_store(&n->stop, 1);
    if (n->running)
        pthread_join(n->th, NULL);
    n->running = 0;
}

int nemesis_fault_count(const nemesis *n) { return n->faults; }

int nemesis_heal_all(nemesis *n)
{
    if (!n->cfg->hosts[0])
        return 0;
    int failed = 0;
    const char *argv[] = { "heal", NULL };
    int f1 = hosts_run(n->cfg, argv) != 0;
    failed += f1;
    n->cut = 0;
    record(n, "heal", "all (final)", fail_text(f1));
    int nodes[MAX_NODES] = { 0 }, k = 0, f2 = 0;
    char list[256], value[512];
    for (int i = 0; i < n->n; i++)
        if (n->paused[i]) {
            n->paused[i] = 0;
            nodes[k++] = i + 1;
        }
    if (k) {
        f2 = hosts_nodes(n, "resume", nodes, k, NULL, NULL);
        node_list(list, sizeof list, nodes, k);
        snprintf(value, sizeof value, "nodes %s (final)", list);
        record(n, "resume", value, fail_text(f2));
        failed += f2;
    }
    k = 0;
    f2 = 0;
    for (int i = 0; i < n->n; i++)
        if (n->killed[i]) {
            n->killed[i] = 0;
            nodes[k++] = i + 1;
        }
    if (k) {
        f2 = hosts_start(n, nodes, k);
        node_list(list, sizeof list, nodes, k);
        snprintf(value, sizeof value, "nodes %s (final)", list);
        record(n, "start", value, fail_text(f2));
        failed += f2;
    }
    int any = 0;
    for (int i = 0; i < n->n; i++)
        any |= n->skewed[i];
    if (any) {
        f2 = 0;
        clock_reset(n, value, sizeof value, &f2);
        record(n, "clock", value, fail_text(f2));
        failed += f2;
    }
    return failed;
}
