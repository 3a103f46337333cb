/*
 * workload_register.c — linearizable registers on independent keys.
 *
 * Ops (value [key, v]): read (invoke v null; ok v = int or null),
 * write (v = 0..4), cas (v = [old, new]). Each key is one register; the
 * checker splits the history by key. Keys are "r<key>" in table accounts:
 * no '/', so the whole key is the partition key and keys spread over every
 * partition.
 *
 * Threads form groups (two when C >= 4, else one); a group works on one key
 * at a time, so about C/2 processes contend on each key, and moves to a
 * fresh key after ops_per_key ops: short per-key histories keep the
 * linearizability check tractable.
 *
 * --register-layout one-partition names them "r/<key>" instead: the partition
 * key is "r" for all, so every register lives in one partition and leader
 * faults aim at it. A fault at that leader then meets the clients of every
 * key, and those pinned to the faulted node (--pin-nodes) keep asking it:
 * what it answers while cut off is checked on every op, not by luck.
 *
 * cas(old, new) by value on an API whose CAS is by version: get the key; if
 * its value is not old, the op fails (nothing was written); else put_if with
 * the version read. The put_if applies only if no write happened since the
 * get (every write makes a new version), i.e. only if the register still
 * holds old at the moment it applies: a value CAS linearized at the put_if,
 * inside the op's interval.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"

#define REG_TABLE "accounts"
#define REG_GROUPS_MAX 2

typedef struct reg_group {
    int64_t key;
    int ops_left;
} reg_group;

typedef struct reg_state {
    pthread_mutex_t mu;
    int ngroups;
    int ops_per_key;
    int64_t next_key;
    int64_t keys_used;
    reg_group g[REG_GROUPS_MAX];
} reg_state;

static void *reg_new(const run_config *cfg)
{
    reg_state *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    pthread_mutex_init(&s->mu, NULL);
    s->ngroups = cfg->concurrency >= 4 ? 2 : 1;
    s->ops_per_key = cfg->ops_per_key > 0 ? cfg->ops_per_key : 100;
    for (int k = 0; k < s->ngroups; k++) {
        s->g[k].key = s->next_key++;
        s->g[k].ops_left = s->ops_per_key;
    }
    s->keys_used = s->next_key;
    return s;
}

static void reg_free(void *p)
{
    reg_state *s = p;
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* The key this thread's next op goes to. */
static int64_t take_key(reg_state *s, int thread_no)
{
    pthread_mutex_lock(&s->mu);
    reg_group *g = &s->g[thread_no % s->ngroups];
    if (g->ops_left <= 0) {
        g->key = s->next_key++;
        g->ops_left = s->ops_per_key;
        s->keys_used = s->next_key;
    }
    g->ops_left--;
    int64_t key = g->key;
    pthread_mutex_unlock(&s->mu);
    return key;
}

static size_t key_bytes(const run_config *cfg, char *buf, size_t size, int64_t key)
{
    return (size_t)snprintf(buf, size, cfg->register_one_partition ? "r/%lld" : "r%lld",
                            (long long)key);
}

/* Parses a stored register value; 0 if it is not one of ours. */
static int parse_value(const okv_value *v, int64_t *out)
{
    char tmp[32];
    size_t n = okv_value_len(v);
    if (n == 0 || n >= sizeof tmp)
        return 0;
    memcpy(tmp, okv_value_data(v), n);
    tmp[n] = 0;
    char *end;
    long long x = strtoll(tmp, &end, 10);
    if (*end)
        return 0;
    *out = x;
    return 1;
}

/* A read of key, recorded as one op. */
static void do_read(jclient *cl, int64_t key)
{
    const run_config *cfg = runner_config(cl->r);
    char k[32], err[512];
    size_t klen = key_bytes(cfg, k, sizeof k, key);
    client_invoke(cl, "read", jv_pair(jv_int(key), jv_null()));
    okv_value *v = NULL;
    int rc = okv_get(cl->c, REG_TABLE, k, klen, &v, cfg->op_timeout_ms);
    int64_t x;
    if (rc == OKV_ENOTFOUND) {
        client_complete(cl, HIST_OK, jv_pair(jv_int(key), jv_null()), NULL);
    } else if (rc == OKV_OK && parse_value(v, &x)) {
        client_complete(cl, HIST_OK, jv_pair(jv_int(key), jv_int(x)), NULL);
    } else if (rc == OKV_OK) {
        client_complete(cl, HIST_FAIL, jv_pair(jv_int(key), jv_null()), "unparseable value");
    } else {
        /* A read has no effect: any error is a definite failure. */
        client_complete(cl, HIST_FAIL, jv_pair(jv_int(key), jv_null()),
                        client_error(cl, rc, err, sizeof err));
    }
    okv_value_free(v);
}

static void do_write(jclient *cl, int64_t key)
{
    const run_config *cfg = runner_config(cl->r);
    char k[32], val[32], err[512];
    size_t klen = key_bytes(cfg, k, sizeof k, key);
    int64_t x = (int64_t)client_rand_below(cl, 5);
    int vlen = snprintf(val, sizeof val, "%lld", (long long)x);
    client_invoke(cl, "write", jv_pair(jv_int(key), jv_int(x)));
    int rc = okv_put(cl->c, REG_TABLE, k, klen, val, (size_t)vlen, NULL, cfg->op_timeout_ms);
    hist_type t = client_write_outcome(rc);
    client_complete(cl, t, jv_pair(jv_int(key), jv_int(x)),
                    t == HIST_OK ? NULL : client_error(cl, rc, err, sizeof err));
}

static void do_cas(jclient *cl, int64_t key)
{
    const run_config *cfg = runner_config(cl->r);
    char k[32], val[32], err[512];
    size_t klen = key_bytes(cfg, k, sizeof k, key);
    int64_t from = (int64_t)client_rand_below(cl, 5), to = (int64_t)client_rand_below(cl, 5);
    client_invoke(cl, "cas", jv_pair(jv_int(key), jv_pair(jv_int(from), jv_int(to))));
#define CAS_DONE(type, msg) \
    client_complete(cl, type, jv_pair(jv_int(key), jv_pair(jv_int(from), jv_int(to))), msg)
    okv_value *v = NULL;
    int rc = okv_get(cl->c, REG_TABLE, k, klen, &v, cfg->op_timeout_ms);
    int64_t cur;
    if (rc == OKV_ENOTFOUND) {
        CAS_DONE(HIST_FAIL, "register is null");
        return;
    }
    if (rc != OKV_OK) {
        CAS_DONE(HIST_FAIL, client_error(cl, rc, err, sizeof err));
        return;
    }
    if (!parse_value(v, &cur) || cur != from) {
        okv_value_free(v);
        CAS_DONE(HIST_FAIL, "value differs");
        return;
    }
    uint64_t version = okv_value_version(v);
    okv_value_free(v);
    int vlen = snprintf(val, sizeof val, "%lld", (long long)to);
    rc = okv_put_if(cl->c, REG_TABLE, k, klen, val, (size_t)vlen, version, NULL, cfg->op_timeout_ms);
    hist_type t = client_write_outcome(rc);
    CAS_DONE(t, t == HIST_OK ? NULL : client_error(cl, rc, err, sizeof err));
#undef CAS_DONE
}

static void reg_step(jclient *cl)
{
    reg_state *s = runner_workload_state(cl->r);
    int64_t key = take_key(s, cl->thread_no);
    switch (client_rand_below(cl, 3)) {
    case 0: do_read(cl, key); break;
    case 1: do_write(cl, key); break;
    default: do_cas(cl, key); break;
    }
}

/* One read of every key used, spread over the threads: after healing, a
 * write that was acknowledged and then lost shows up here. */
static void reg_final(jclient *cl)
{
    reg_state *s = runner_workload_state(cl->r);
    int threads = runner_config(cl->r)->concurrency;
    for (int64_t key = cl->thread_no; key < s->keys_used; key += threads)
        do_read(cl, key);
}

static const char *reg_focus_keys(const run_config *cfg)
{
    return cfg->register_one_partition ? "r/0" : NULL;
}

const workload workload_register = {
    .name = "register",
    .table = REG_TABLE,
    .focus_keys = reg_focus_keys,
    .state_new = reg_new,
    .state_free = reg_free,
    .step = reg_step,
    .final = reg_final,
};
