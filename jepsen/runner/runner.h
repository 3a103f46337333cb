/*
 * runner.h — what okv-jepsen's pieces share: the run's configuration, a
 * client thread, and the workload interface.
 *
 * A run: C client threads each run one op at a time as a Jepsen "process"
 * (hist_proc) through their own okv_client; a nemesis thread injects faults
 * (nemesis.h); after the time is up everything is healed, the cluster is
 * given time to recover, and each thread runs its workload's final ops.
 *
 * A workload is a vtable. Adding one (list-append, ...) means one file
 * with a `const workload workload_<name>` and a line in workload_find()
 * (main.c); the runner knows nothing else about it.
 */
#ifndef OKV_JEPSEN_RUNNER_H
#define OKV_JEPSEN_RUNNER_H

#include <stdatomic.h>
#include <stdint.h>

#include "history.h"
#include "orderkv.h"

typedef struct run_config {
    char addrs[2048];            /* client address list, node I = entry I */
    int nodes;
    char workload[32];
    char nemesis[32];
    double time_s;
    int concurrency;
    char out_dir[2048];
    double nemesis_interval_s;
    char hosts[2048];            /* "PATH/hosts.sh --run DIR"; "" = no hosts */
    char start_env[2048];        /* --env passed to hosts.sh start */
    uint64_t seed;
    int op_timeout_ms;
    double rate;                 /* total ops/s cap; 0 = none */
    int ops_per_key;             /* register */
    double quiet_s;              /* after healing, before final reads */
    double recover_timeout_s;    /* bound on waiting for the cluster to serve */
    int pin_nodes;               /* client thread T talks only to node T % nodes */
    int accounts;                /* bank: number of accounts */
    int bank_one_partition;      /* bank: --bank-layout one-partition (default spread) */
    int register_one_partition;  /* register: --register-layout one-partition */
    int bank_read_scan;          /* bank: --bank-read scan (default get) */
    int append_keys;             /* list-append: key slots (--append-keys) */
    int appends_per_key;         /* list-append: appends before a slot takes a fresh key */
} run_config;

/* list-append: bounds of --append-keys and --appends-per-key (a read's
 * list is at most the latter long). */
#define LA_MAX_SLOTS 64
#define LA_MAX_SLOTS_STR "64"
#define LA_MAX_APPENDS_PER_KEY 1000
#define LA_MAX_APPENDS_PER_KEY_STR "1000"

/* A spread bank's read is one transaction that reads every account (a
 * condition per account at commit), at most OKV_TXN_MAX_ITEMS. */
#define BANK_MAX_ACCOUNTS 256u
#define BANK_MAX_ACCOUNTS_STR "256"
_Static_assert(BANK_MAX_ACCOUNTS <= OKV_TXN_MAX_ITEMS, "one read transaction per bank");

typedef struct runner runner;
typedef struct workload workload;

/* One client thread. Its process id changes after every `info`. */
typedef struct jclient {
    runner *r;
    int thread_no;               /* 0..C-1, stable for the whole run */
    hist_proc proc;
    okv_client *c;
    uint64_t rng;
    void *wl_local;              /* the workload's per-thread state */
} jclient;

/* The runner's services for workloads (main.c). */
const run_config *runner_config(const runner *r);
history *runner_history(runner *r);
void *runner_workload_state(runner *r);
/* 1 once the run's time is up (main phase ops should stop). */
int runner_stopping(const runner *r);

/* Records an invoke for the client's current process. */
void client_invoke(jclient *cl, const char *f, jv *value);
/* Records the completion; after HIST_INFO the client reconnects (a new
 * process gets a new connection and client id, as in Jepsen). */
void client_complete(jclient *cl, hist_type type, jv *value, const char *error);
/* Completion type for a write's result code: ok, fail only when the code
 * means certainly not applied (ECONFLICT, ETIMEDOUT, EUNAVAILABLE), info for
 * everything else. */
hist_type client_write_outcome(int rc);
/* "<strerror>: <errmsg>" of the last call on this client, in buf. */
const char *client_error(jclient *cl, int rc, char *buf, size_t size);

uint64_t client_rand(jclient *cl);
/* Uniform in [0, n). */
uint64_t client_rand_below(jclient *cl, uint64_t n);

struct workload {
    const char *name;
    const char *table;           /* the orderkv table it uses */
    /* NULL, or a key of the one partition the workload lives in: leader
     * faults and transfer-storm aim at that partition, not a random one. */
    const char *focus_key;
    /* NULL, or (overriding focus_key) the keys the workload lives in for
     * this configuration, comma-separated: each leader fault and each
     * transfer aims at the partition of one of them, chosen at random.
     * The string must outlive the run (static storage). */
    const char *(*focus_keys)(const run_config *cfg);
    /* Shared state for the run; NULL allowed. */
    void *(*state_new)(const run_config *cfg);
    void (*state_free)(void *state);
    /* Before the main phase, on thread 0's client (e.g. the bank's
     * accounts); records its ops like any other. Nonzero: the run cannot
     * go on (the reason is on stderr). May be NULL. */
    int (*setup)(jclient *cl);
    /* Runs exactly one op (invoke + completion) for cl. Called repeatedly
     * until the time is up. */
    void (*step)(jclient *cl);
    /* After healing and the quiet period: the thread's final ops (e.g. the
     * set's final read). May be NULL. */
    void (*final)(jclient *cl);
};

extern const workload workload_register;
extern const workload workload_set;
extern const workload workload_sequential;
extern const workload workload_bank;
extern const workload workload_append;
extern const workload workload_orders;

/* Sleeps ms milliseconds. */
void sleep_ms(double ms);

#endif
