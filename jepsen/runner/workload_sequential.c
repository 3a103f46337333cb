/*
 * workload_sequential.c — sequential consistency across partitions.
 *
 * One writer (thread 0) writes keys i = 0, 1, 2, ... in order, each only
 * after the previous write completed: write value i, key "q<i>" in table
 * payments. A fail retries the same i (nothing was written); after an info
 * the thread's next process goes on with i + 1. The keys have no '/', so
 * consecutive keys land on unrelated partitions (Raft groups).
 *
 * Every other thread reads: invoke `read` with value m = the highest index
 * the writer has invoked so far, then get m, m-1, ..., 0 in that order, and
 * complete ok with the list of indices found, in the order read. Since
 * write i completed before write i+1 began, and the gets run in descending
 * order, a read that sees i+1 must also see i (and everything below): any
 * hole under the highest index seen is an anomaly. A get error fails the
 * whole read (reads have no effect, so fail is exact).
 *
 * To keep each read bounded the writer stops after SEQ_MAX_KEYS keys
 * (readers then keep reading the complete range).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"

#define SEQ_TABLE "payments"
#define SEQ_MAX_KEYS 2000

typedef struct seq_state {
    atomic_llong next;             /* the index the writer writes next */
    atomic_llong highest_invoked;  /* -1: none yet */
} seq_state;

static void *seq_new(const run_config *cfg)
{
    (void)cfg;
    seq_state *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    atomic_init(&s->next, 0);
    atomic_init(&s->highest_invoked, -1);
    return s;
}

static void seq_free(void *p) { free(p); }

static void seq_write(jclient *cl, seq_state *s)
{
    const run_config *cfg = runner_config(cl->r);
    long long i = atomic_load(&s->next);
    if (i >= SEQ_MAX_KEYS) {
        sleep_ms(20);
        return;
    }
    char k[32], v[32], err[512];
    int klen = snprintf(k, sizeof k, "q%lld", i);
    int vlen = snprintf(v, sizeof v, "%lld", i);
    client_invoke(cl, "write", jv_int(i));
    if (atomic_load(&s->highest_invoked) < i)
        atomic_store(&s->highest_invoked, i);
    int rc = okv_put(cl->c, SEQ_TABLE, k, (size_t)klen, v, (size_t)vlen, NULL, cfg->op_timeout_ms);
    hist_type t = client_write_outcome(rc);
    client_complete(cl, t, jv_int(i), t == HIST_OK ? NULL : client_error(cl, rc, err, sizeof err));
    if (t != HIST_FAIL)
        atomic_store(&s->next, i + 1);
}

static void seq_read(jclient *cl, seq_state *s)
{
    const run_config *cfg = runner_config(cl->r);
    long long m = atomic_load(&s->highest_invoked);
    if (m < 0) {
        sleep_ms(10);
        return;
    }
    client_invoke(cl, "read", jv_int(m));
    jv *found = jv_list();
    char err[512];
    for (long long i = m; i >= 0; i--) {
        if (runner_stopping(cl->r)) {
            jv_free(found);
            client_complete(cl, HIST_FAIL, jv_int(m), "read abandoned: the run ended");
            return;
        }
        char k[32];
        int klen = snprintf(k, sizeof k, "q%lld", i);
        okv_value *v = NULL;
        int rc = okv_get(cl->c, SEQ_TABLE, k, (size_t)klen, &v, cfg->op_timeout_ms);
        okv_value_free(v);
        if (rc == OKV_OK) {
            jv_push(found, jv_int(i));
        } else if (rc != OKV_ENOTFOUND) {
            jv_free(found);
            client_error(cl, rc, err, sizeof err);
            char msg[600];
            snprintf(msg, sizeof msg, "get q%lld: %s", i, err);
            client_complete(cl, HIST_FAIL, jv_int(m), msg);
            return;
        }
    }
    client_complete(cl, HIST_OK, found, NULL);
}

static void seq_step(jclient *cl)
{
    seq_state *s = runner_workload_state(cl->r);
    int writer = runner_config(cl->r)->concurrency == 1 ? client_rand_below(cl, 2) == 0
                                                         : cl->thread_no == 0;
    if (writer)
        seq_write(cl, s);
    else
        seq_read(cl, s);
}

const workload workload_sequential = {
    .name = "sequential",
    .table = SEQ_TABLE,
    .state_new = seq_new,
    .state_free = seq_free,
    .step = seq_step,
    .final = NULL,
};
