/*
 * okv-jepsen — runs one Jepsen-style test against a running orderkv
 * cluster and records its history (docs/jepsen.md).
 *
 *   okv-jepsen --addrs A1,A2,A3 --workload register|set|sequential|bank|list-append|orders --time S
 *              --concurrency C --out DIR [--nemesis NAME] [--nemesis-interval S]
 *              [--hosts 'PATH/hosts.sh --run DIR'] [--seed N] [--op-timeout-ms MS]
 *              [--rate OPS/S] [--accounts N] [--bank-layout spread|one-partition]
 *              [--register-layout spread|one-partition]
 *              [--append-keys N] [--appends-per-key N] ...
 *
 * Phases: wait until the cluster serves (bounded) -> the workload's setup
 * (the bank's accounts) -> C client threads and the nemesis for --time
 * seconds -> heal everything -> wait until the cluster serves again
 * (bounded) and a quiet period -> the workload's final ops -> write
 * history.json, history.edn, latency.tsv, nemesis.log, nemesis.tsv,
 * summary.json in --out.
 *
 * Exit status: 0 when the run completed, whatever the history shows
 * (checking is okv-jepsen-check's job); 1 setup error (cluster never
 * served, the workload's setup failed, cannot write --out); 2 bad command
 * line.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "history.h"
#include "nemesis.h"
#include "runner.h"

#define PROBE_KEYS 64
#define PROBE_TIMEOUT_MS 1000

struct runner {
    run_config cfg;
    history *h;
    const workload *wl;
    void *wl_state;
    atomic_int stopping;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ---- services for workloads ---------------------------------------------- */

const run_config *runner_config(const runner *r) { return &r->cfg; }
history *runner_history(runner *r) { return r->h; }
void *runner_workload_state(runner *r) { return r->wl_state; }
int runner_stopping(const runner *r) { return atomic_load(&r->stopping); }

void sleep_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = { (time_t)(ms / 1000), (long)((ms - (double)(long)(ms / 1000) * 1000) * 1e6) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

uint64_t client_rand(jclient *cl)
{
    uint64_t x = cl->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return cl->rng = x;
}

uint64_t client_rand_below(jclient *cl, uint64_t n) { return n ? client_rand(cl) % n : 0; }

/* With --pin-nodes, thread T's client reaches only node T % nodes, as a
 * client of another language that keeps one connection would: its reads
 * are served wherever they land (followers answer through a read index),
 * and its writes to partitions led elsewhere fail cleanly (NOT_LEADER). */
static int client_open(jclient *cl)
{
    okv_options o = OKV_OPTIONS_INIT;
    o.default_timeout_ms = cl->r->cfg.op_timeout_ms;
    if (!cl->r->cfg.pin_nodes)
        return okv_connect(&cl->c, cl->r->cfg.addrs, &o);
    const char *a = cl->r->cfg.addrs;
    int n = 1;
    for (const char *q = a; *q; q++)
        n += *q == ',';
    for (int skip = cl->thread_no % n; skip > 0; skip--)
        a = strchr(a, ',') + 1;
    char one[256];
    size_t len = strcspn(a, ",");
    snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one ? len : sizeof one - 1), a);
    o.listed_nodes_only = 1;
    return okv_connect(&cl->c, one, &o);
}

void client_invoke(jclient *cl, const char *f, jv *value)
{
    history_invoke(cl->r->h, &cl->proc, f, value);
}

void client_complete(jclient *cl, hist_type type, jv *value, const char *error)
{
    int retired = 0;
    history_complete(cl->r->h, &cl->proc, type, value, error, &retired);
    if (retired) {
        /* A new process: a new connection and a new client id. */
        okv_close(cl->c);
        cl->c = NULL;
        if (client_open(cl) != OKV_OK) {
            fprintf(stderr, "okv-jepsen: reconnect failed: %s\n", okv_errmsg(NULL));
            abort();
        }
    }
}

hist_type client_write_outcome(int rc)
{
    switch (rc) {
    case OKV_OK: return HIST_OK;
    case OKV_ECONFLICT:
    case OKV_ETIMEDOUT:
    case OKV_EUNAVAILABLE: return HIST_FAIL;
    default: return HIST_INFO;
    }
}

const char *client_error(jclient *cl, int rc, char *buf, size_t size)
{
    const char *m = cl->c ? okv_errmsg(cl->c) : "";
    snprintf(buf, size, "%s%s%s", okv_strerror(rc), m[0] ? ": " : "", m);
    return buf;
}

/* ---- phases -------------------------------------------------------------- */

static const workload *workload_find(const char *name)
{
    static const workload *all[] = { &workload_register, &workload_set, &workload_sequential,
                                     &workload_bank, &workload_append, &workload_orders };
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (strcmp(all[k]->name, name) == 0)
            return all[k];
    return NULL;
}

/* Serving = PROBE_KEYS linearizable reads of keys spread over every
 * partition of the workload's table all answer (each needs its partition's
 * leader to confirm a quorum). Polls until then or the timeout. */
static int wait_serving(const run_config *cfg, const char *table, double timeout_s, double *took_s)
{
    okv_client *c;
    okv_options o = OKV_OPTIONS_INIT;
    o.default_timeout_ms = PROBE_TIMEOUT_MS;
    if (okv_connect(&c, cfg->addrs, &o) != OKV_OK)
        return -1;
    uint64_t t0 = history_clock_ns();
    int ok = 0;
    while (!ok && !interrupted) {
        ok = 1;
        for (int k = 0; k < PROBE_KEYS && ok; k++) {
            char key[32];
            int klen = snprintf(key, sizeof key, "probe-%d", k);
            okv_value *v = NULL;
            int rc = okv_get(c, table, key, (size_t)klen, &v, PROBE_TIMEOUT_MS);
            okv_value_free(v);
            ok = rc == OKV_OK || rc == OKV_ENOTFOUND;
        }
        if (ok || (double)(history_clock_ns() - t0) / 1e9 > timeout_s)
            break;
        sleep_ms(200);
    }
    *took_s = (double)(history_clock_ns() - t0) / 1e9;
    okv_close(c);
    return ok ? 0 : -1;
}

typedef struct thread_arg {
    runner *r;
    jclient *cl;
    int final;
} thread_arg;

static void *client_main(void *arg)
{
    thread_arg *ta = arg;
    runner *r = ta->r;
    jclient *cl = ta->cl;
    if (ta->final) {
        if (r->wl->final)
            r->wl->final(cl);
        return NULL;
    }
    /* --rate: each thread starts an op at most every C / rate seconds. */
    double gap_ns = r->cfg.rate > 0 ? (double)r->cfg.concurrency / r->cfg.rate * 1e9 : 0;
    uint64_t next = history_clock_ns();
    while (!atomic_load(&r->stopping)) {
        if (gap_ns > 0) {
            uint64_t now = history_clock_ns();
            if (now < next)
                sleep_ms((double)(next - now) / 1e6);
            next += (uint64_t)gap_ns;
        }
        r->wl->step(cl);
    }
    return NULL;
}

static int run_threads(runner *r, jclient *cls, int final)
{
    int c = r->cfg.concurrency;
    pthread_t *th = calloc((size_t)c, sizeof *th);
    thread_arg *ta = calloc((size_t)c, sizeof *ta);
    if (!th || !ta)
        abort();
    int started = 0;
    for (int i = 0; i < c; i++) {
        ta[i] = (thread_arg){ r, &cls[i], final };
        if (pthread_create(&th[i], NULL, client_main, &ta[i]) != 0)
            break;
        started++;
    }
    if (!final) {
        uint64_t end = history_clock_ns() + (uint64_t)(r->cfg.time_s * 1e9);
        while (history_clock_ns() < end && !interrupted)
            sleep_ms(50);
        atomic_store(&r->stopping, 1);
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
    free(ta);
    return started == c ? 0 : -1;
}

/* ---- output -------------------------------------------------------------- */

static FILE *open_out(const run_config *cfg, const char *name, const char *mode)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", cfg->out_dir, name);
    FILE *f = fopen(path, mode);
    if (!f)
        fprintf(stderr, "okv-jepsen: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

static int write_file(const run_config *cfg, const char *name, const history *h,
                      int (*fn)(const history *, FILE *))
{
    FILE *f = open_out(cfg, name, "w");
    if (!f)
        return -1;
    int rc = fn(h, f);
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static void write_counts(FILE *f, const history_counts *c)
{
    fprintf(f, "{\"invoke\":%zu,\"ok\":%zu,\"fail\":%zu,\"info\":%zu}", c->invoke, c->ok, c->fail,
            c->info);
}

static int write_summary(const runner *r, int faults, int recovered, double recover_s,
                         double run_s)
{
    FILE *f = open_out(&r->cfg, "summary.json", "w");
    if (!f)
        return -1;
    const run_config *cfg = &r->cfg;
    history_counts all;
    history_count_types(r->h, NULL, &all);
    fprintf(f, "{\n  \"workload\": \"%s\",\n  \"nemesis\": \"%s\",\n", cfg->workload, cfg->nemesis);
    fprintf(f, "  \"nodes\": %d,\n  \"concurrency\": %d,\n  \"time_s\": %.3f,\n", cfg->nodes,
            cfg->concurrency, cfg->time_s);
    fprintf(f, "  \"seed\": %" PRIu64 ",\n  \"op_timeout_ms\": %d,\n", cfg->seed, cfg->op_timeout_ms);
    fprintf(f, "  \"history_ops\": %zu,\n  \"ops\": ", history_count(r->h));
    write_counts(f, &all);
    fputs(",\n  \"by_f\": {", f);
    /* Distinct f names of client ops, in order of first appearance. */
    char seen[16][HIST_F_MAX];
    int nseen = 0;
    for (size_t k = 0; k < history_count(r->h); k++) {
        const hist_op *op = history_op(r->h, k);
        if (op->process == HIST_NEMESIS)
            continue;
        int dup = 0;
        for (int s = 0; s < nseen; s++)
            dup |= strcmp(seen[s], op->f) == 0;
        if (dup || nseen == 16)
            continue;
        snprintf(seen[nseen++], HIST_F_MAX, "%s", op->f);
    }
    for (int s = 0; s < nseen; s++) {
        history_counts c;
        history_count_types(r->h, seen[s], &c);
        fprintf(f, "%s\"%s\": ", s ? ", " : "", seen[s]);
        write_counts(f, &c);
    }
    fprintf(f, "},\n  \"faults\": %d,\n  \"nemesis_ops\": %zu,\n", faults, all.nemesis);
    fprintf(f, "  \"recovered\": %s,\n  \"recover_s\": %.3f,\n  \"run_s\": %.3f\n}\n",
            recovered ? "true" : "false", recover_s, run_s);
    return fclose(f) == 0 ? 0 : -1;
}

static int mkdir_p(const char *path)
{
    char tmp[2048];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* ---- command line -------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: okv-jepsen --addrs A1,A2,A3 --workload register|set|sequential|bank|list-append|orders\n"
            "                  --time S"
            "                  --concurrency C --out DIR [options]\n"
            "  --nemesis NAME           none (default) or one of:\n"
            "                           %s\n"
            "  --nemesis-interval S     quiet S, fault S, ... (default 5)\n"
            "  --hosts 'CMD --run DIR'  how to reach hosts.sh (needed by every nemesis but\n"
            "                           none and transfer-storm)\n"
            "  --start-env 'K=V ...'    passed as --env to `hosts.sh start` on restarts\n"
            "  --seed N                 random seed (default: from the clock; printed)\n"
            "  --op-timeout-ms MS       deadline of each client call (default 1000)\n"
            "  --rate OPS/S             cap on total op starts per second (default none)\n"
            "  --ops-per-key N          register: ops per key before a fresh key (default 100)\n"
            "  --register-layout L      register: spread (default; keys r0, r1.. in every\n"
            "                           partition) or one-partition (r/0, r/1.. in one\n"
            "                           partition, where leader faults then aim)\n"
            "  --accounts N             bank: number of accounts, 2..%u (default 8)\n"
            "  --bank-layout L          bank: spread (default; accounts acct-0.. in several\n"
            "                           partitions, transfers and reads across partitions)\n"
            "                           or one-partition (bank/0.. in one partition)\n"
            "  --bank-read R            bank, spread: get (default; okv_tx_get of every\n"
            "                           account) or scan (one okv_tx_scan of them all)\n"
            "  --append-keys N          list-append: key slots, 2..%d, slot s in partition s\n"
            "                           mod the partition count (default 8)\n"
            "  --appends-per-key N      list-append: appends to a key before its slot takes a\n"
            "                           fresh key, 1..%d (default 64)\n"
            "  --quiet S                after healing, before final reads (default 3)\n"
            "  --recover-timeout S      bound on waiting for the cluster to serve (default 60)\n"
            "  --pin-nodes              client thread T talks only to node T %% nodes (reads\n"
            "                           land on followers; writes led elsewhere fail cleanly)\n",
            nemesis_names(), BANK_MAX_ACCOUNTS, LA_MAX_SLOTS, LA_MAX_APPENDS_PER_KEY);
}

static int parse_args(int argc, char **argv, run_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->nemesis, sizeof cfg->nemesis, "none");
    cfg->time_s = 30;
    cfg->concurrency = 5;
    cfg->nemesis_interval_s = 5;
    cfg->op_timeout_ms = 1000;
    cfg->ops_per_key = 100;
    cfg->quiet_s = 3;
    cfg->recover_timeout_s = 60;
    cfg->accounts = 8;
    cfg->append_keys = 8;
    cfg->appends_per_key = 64;
    cfg->seed = history_clock_ns() ^ (uint64_t)time(NULL);
    enum { O_ADDRS = 256, O_WL, O_TIME, O_CONC, O_OUT, O_NEM, O_INT, O_HOSTS, O_ENV, O_SEED,
           O_OPTO, O_RATE, O_OPK, O_QUIET, O_RECOVER, O_PIN, O_ACCOUNTS, O_LAYOUT, O_RLAYOUT, O_BREAD, O_AKEYS, O_APK, O_HELP };
    static const struct option opts[] = {
        { "addrs", required_argument, NULL, O_ADDRS },
        { "workload", required_argument, NULL, O_WL },
        { "time", required_argument, NULL, O_TIME },
        { "concurrency", required_argument, NULL, O_CONC },
        { "out", required_argument, NULL, O_OUT },
        { "nemesis", required_argument, NULL, O_NEM },
        { "nemesis-interval", required_argument, NULL, O_INT },
        { "hosts", required_argument, NULL, O_HOSTS },
        { "start-env", required_argument, NULL, O_ENV },
        { "seed", required_argument, NULL, O_SEED },
        { "op-timeout-ms", required_argument, NULL, O_OPTO },
        { "rate", required_argument, NULL, O_RATE },
        { "ops-per-key", required_argument, NULL, O_OPK },
        { "quiet", required_argument, NULL, O_QUIET },
        { "recover-timeout", required_argument, NULL, O_RECOVER },
        { "pin-nodes", no_argument, NULL, O_PIN },
        { "accounts", required_argument, NULL, O_ACCOUNTS },
        { "bank-layout", required_argument, NULL, O_LAYOUT },
        { "register-layout", required_argument, NULL, O_RLAYOUT },
        { "bank-read", required_argument, NULL, O_BREAD },
        { "append-keys", required_argument, NULL, O_AKEYS },
        { "appends-per-key", required_argument, NULL, O_APK },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    const char *layout = "spread", *reg_layout = "spread", *bank_read = "get";
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_ADDRS: snprintf(cfg->addrs, sizeof cfg->addrs, "%s", optarg); break;
        case O_WL: snprintf(cfg->workload, sizeof cfg->workload, "%s", optarg); break;
        case O_TIME: cfg->time_s = atof(optarg); break;
        case O_CONC: cfg->concurrency = atoi(optarg); break;
        case O_OUT: snprintf(cfg->out_dir, sizeof cfg->out_dir, "%s", optarg); break;
        case O_NEM: snprintf(cfg->nemesis, sizeof cfg->nemesis, "%s", optarg); break;
        case O_INT: cfg->nemesis_interval_s = atof(optarg); break;
        case O_HOSTS: snprintf(cfg->hosts, sizeof cfg->hosts, "%s", optarg); break;
        case O_ENV: snprintf(cfg->start_env, sizeof cfg->start_env, "%s", optarg); break;
        case O_SEED: cfg->seed = strtoull(optarg, NULL, 10); break;
        case O_OPTO: cfg->op_timeout_ms = atoi(optarg); break;
        case O_RATE: cfg->rate = atof(optarg); break;
        case O_OPK: cfg->ops_per_key = atoi(optarg); break;
        case O_QUIET: cfg->quiet_s = atof(optarg); break;
        case O_RECOVER: cfg->recover_timeout_s = atof(optarg); break;
        case O_PIN: cfg->pin_nodes = 1; break;
        case O_ACCOUNTS: cfg->accounts = atoi(optarg); break;
        case O_LAYOUT: layout = optarg; break;
        case O_RLAYOUT: reg_layout = optarg; break;
        case O_BREAD: bank_read = optarg; break;
        case O_AKEYS: cfg->append_keys = atoi(optarg); break;
        case O_APK: cfg->appends_per_key = atoi(optarg); break;
        case O_HELP: usage(stdout); exit(0);
        default: return -1;
        }
    }
    const char *bad = NULL;
    if (optind != argc)
        bad = "unexpected argument";
    else if (!cfg->addrs[0])
        bad = "--addrs is required";
    else if (!cfg->workload[0] || !workload_find(cfg->workload))
        bad = "--workload must be register, set, sequential, bank or list-append";
    else if (!cfg->out_dir[0])
        bad = "--out is required";
    else if (!nemesis_known(cfg->nemesis))
        bad = "unknown --nemesis";
    else if (cfg->time_s <= 0 || cfg->concurrency < 1 || cfg->concurrency > 256)
        bad = "--time must be > 0 and --concurrency 1..256";
    else if (cfg->nemesis_interval_s <= 0 || cfg->op_timeout_ms <= 0 || cfg->rate < 0)
        bad = "--nemesis-interval, --op-timeout-ms must be > 0, --rate >= 0";
    else if (strcmp(cfg->nemesis, "none") != 0 && strcmp(cfg->nemesis, "transfer-storm") != 0 &&
             !cfg->hosts[0])
        bad = "this nemesis needs --hosts";
    else if (cfg->accounts < 2 || cfg->accounts > (int)BANK_MAX_ACCOUNTS)
        bad = "--accounts must be 2.." BANK_MAX_ACCOUNTS_STR
              " (the bank's read is one transaction over every account)";
    else if (cfg->append_keys < 2 || cfg->append_keys > LA_MAX_SLOTS)
        bad = "--append-keys must be 2.." LA_MAX_SLOTS_STR;
    else if (cfg->appends_per_key < 1 || cfg->appends_per_key > LA_MAX_APPENDS_PER_KEY)
        bad = "--appends-per-key must be 1.." LA_MAX_APPENDS_PER_KEY_STR;
    else if (strcmp(layout, "spread") != 0 && strcmp(layout, "one-partition") != 0)
        bad = "--bank-layout must be spread or one-partition";
    else if (strcmp(reg_layout, "spread") != 0 && strcmp(reg_layout, "one-partition") != 0)
        bad = "--register-layout must be spread or one-partition";
    else if (strcmp(bank_read, "get") != 0 && strcmp(bank_read, "scan") != 0)
        bad = "--bank-read must be get or scan";
    if (bad) {
        fprintf(stderr, "okv-jepsen: %s\n", bad);
        return -1;
    }
    cfg->bank_one_partition = strcmp(layout, "one-partition") == 0;
    cfg->register_one_partition = strcmp(reg_layout, "one-partition") == 0;
    cfg->bank_read_scan = strcmp(bank_read, "scan") == 0;
    cfg->nodes = 1;
    for (const char *p = cfg->addrs; *p; p++)
        cfg->nodes += *p == ',';
    return 0;
}

int main(int argc, char **argv)
{
    runner r;
    memset(&r, 0, sizeof r);
    if (parse_args(argc, argv, &r.cfg) != 0) {
        usage(stderr);
        return 2;
    }
    run_config *cfg = &r.cfg;
    if (mkdir_p(cfg->out_dir) != 0) {
        fprintf(stderr, "okv-jepsen: cannot create %s: %s\n", cfg->out_dir, strerror(errno));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    r.wl = workload_find(cfg->workload);
    printf("okv-jepsen: workload %s, nemesis %s, %d nodes, concurrency %d, %.0f s, seed %" PRIu64 "\n",
           cfg->workload, cfg->nemesis, cfg->nodes, cfg->concurrency, cfg->time_s, cfg->seed);
    fflush(stdout);

    double took;
    if (wait_serving(cfg, r.wl->table, cfg->recover_timeout_s, &took) != 0) {
        fprintf(stderr, "okv-jepsen: the cluster at %s did not serve within %.0f s\n", cfg->addrs,
                cfg->recover_timeout_s);
        return 1;
    }
    printf("okv-jepsen: cluster serving (%.1f s)\n", took);

    FILE *nlog = open_out(cfg, "nemesis.log", "w");
    FILE *ntsv = open_out(cfg, "nemesis.tsv", "w");
    if (!nlog || !ntsv)
        return 1;
    fprintf(ntsv, "# start_s\tend_s\tnemesis\tdetail\n");
    fflush(ntsv);

    uint64_t t0 = history_clock_ns();
    r.h = history_new(t0, cfg->concurrency);
    r.wl_state = r.wl->state_new ? r.wl->state_new(cfg) : NULL;
    atomic_init(&r.stopping, 0);
    jclient *cls = calloc((size_t)cfg->concurrency, sizeof *cls);
    if (!cls)
        abort();
    for (int i = 0; i < cfg->concurrency; i++) {
        cls[i].r = &r;
        cls[i].thread_no = i;
        cls[i].proc.id = i;
        cls[i].rng = (cfg->seed + (uint64_t)i + 1) * 0x9E3779B97F4A7C15ull | 1;
        if (client_open(&cls[i]) != OKV_OK) {
            fprintf(stderr, "okv-jepsen: okv_connect: %s\n", okv_errmsg(NULL));
            return 1;
        }
    }
    if (r.wl->setup && r.wl->setup(&cls[0]) != 0) {
        fprintf(stderr, "okv-jepsen: the %s workload's setup failed; no run\n", cfg->workload);
        return 1;
    }
    fprintf(nlog, "# okv-jepsen nemesis timeline: %s, interval %.1f s; times since the run's start\n",
            cfg->nemesis, cfg->nemesis_interval_s);
    const char *focus = r.wl->focus_keys ? r.wl->focus_keys(cfg) : r.wl->focus_key;
    nemesis *nem = nemesis_new(cfg, r.h, nlog, ntsv, r.wl->table, focus);
    if (!nem || nemesis_start(nem) != 0) {
        fprintf(stderr, "okv-jepsen: cannot start the nemesis\n");
        return 1;
    }

    /* Main phase. */
    run_threads(&r, cls, 0);
    nemesis_stop(nem);
    double run_s = (double)history_now(r.h) / 1e9;
    printf("okv-jepsen: main phase done at %.1f s, %d faults; healing\n", run_s,
           nemesis_fault_count(nem));
    fflush(stdout);

    /* Heal, recover, quiet period, final ops. */
    int heal_failed = nemesis_heal_all(nem);
    int recovered = wait_serving(cfg, r.wl->table, cfg->recover_timeout_s, &took) == 0;
    fprintf(nlog, "%9.3f s  cluster %s (%.1f s after healing)\n", (double)history_now(r.h) / 1e9,
            recovered ? "serving again" : "NOT serving", took);
    fflush(nlog);
    printf("okv-jepsen: %s after %.1f s%s\n", recovered ? "recovered" : "NOT recovered", took,
           heal_failed ? " (a heal command failed, see hosts.log)" : "");
    sleep_ms(cfg->quiet_s * 1000);
    if (r.wl->final && !interrupted) {
        atomic_store(&r.stopping, 0);
        run_threads(&r, cls, 1);
    }

    int rc = 0;
    rc |= write_file(cfg, "history.json", r.h, history_write_json);
    rc |= write_file(cfg, "history.edn", r.h, history_write_edn);
    rc |= write_file(cfg, "latency.tsv", r.h, history_write_latency);
    rc |= write_summary(&r, nemesis_fault_count(nem), recovered, took, run_s);
    history_counts all;
    history_count_types(r.h, NULL, &all);
    printf("okv-jepsen: %zu ops (%zu ok, %zu fail, %zu info), %d faults; history in %s\n",
           all.invoke, all.ok, all.fail, all.info, nemesis_fault_count(nem), cfg->out_dir);

    nemesis_free(nem);
    fclose(nlog);
    fclose(ntsv);
    for (int i = 0; i < cfg->concurrency; i++)
        okv_close(cls[i].c);
    free(cls);
    if (r.wl->state_free)
        r.wl->state_free(r.wl_state);
    history_free(r.h);
    return rc ? 1 : 0;
}
