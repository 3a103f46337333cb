/*
 * meta.c — writes the meta group's record at a cluster's first boot and
 * checks this node against it (meta.h).
 *
 * One thread per node that holds a meta replica. It polls the replica's
 * applied rows (a local read: the record is written once, so any applied
 * copy is the record) every META_POLL_MS until "epoch" is there; while it
 * is missing and this node leads group 0, it proposes the missing rows as
 * put-if-absent commands. Once the record is applied it is compared with
 * this node's map and catalog, and the thread ends.
 */
#define _POSIX_C_SOURCE 200809L
#include "meta.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "command.h"
#include "log.h"
#include "node.h"

#define META_POLL_MS 100
#define META_PROPOSE_WAIT_MS 1000

static const char *const ROWS[] = { "map", "catalog", "epoch" };   /* write order */

struct meta {
    node *n;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;           /* CLOCK_MONOTONIC */
    int stop;                    /* guarded by mu */
    _Atomic int state;           /* enum meta_state */
    uint64_t epoch;              /* guarded by mu */
    char detail[1024];           /* guarded by mu */
};

/* A proposal's answer. Shared by the waiting thread and the raft loop's
 * callback, so that a wait given up at shutdown never leaves the callback
 * writing into freed memory: whoever drops the last reference frees it. */
typedef struct pending {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs, done, code;
    command_result res;
} pending;

static void pending_unref(pending *p)
{
    pthread_mutex_lock(&p->mu);
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (last) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        free(p);
    }
}

static void proposed(void *arg, int code, const command_result *r, uint64_t leader_hint)
{
    (void)leader_hint;
    pending *p = arg;
    pthread_mutex_lock(&p->mu);
    p->done = 1;
    p->code = code;
    if (r)
        p->res = *r;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pending_unref(p);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static pthread_cond_t *cond_new_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return cv;
}

/* Proposes "row = value if absent" to group 0 and waits for the answer.
 * OKV_OK when the row is there afterwards (written now or before). */
static int put_if_absent(meta *m, const char *row, const char *value)
{
    command c;
    memset(&c, 0, sizeof c);
    c.op = CMD_PUT;
    c.check_version = 1;       /* expected version 0: the row must be absent */
    c.table_id = CLUSTER_META_TABLE;
    c.partition = 0;
    c.key = (const uint8_t *)row;
    c.key_len = strlen(row);
    c.value = (const uint8_t *)value;
    c.value_len = strlen(value);
    size_t len = command_encoded_size(&c);
    uint8_t *buf = malloc(len);
    pending *p = calloc(1, sizeof *p);
    if (!buf || !p) {
        free(buf);
        free(p);
        return OKV_ENOMEM;
    }
    command_encode(&c, buf);
    pthread_mutex_init(&p->mu, NULL);
    cond_new_monotonic(&p->cv);
    p->refs = 2;
    raftstore_propose(m->n->rs, META_GROUP, buf, len, proposed, p);
    free(buf);   /* the store keeps its own copy */
    struct timespec until;
    deadline_in(&until, META_PROPOSE_WAIT_MS);
    pthread_mutex_lock(&p->mu);
    while (!p->done && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
        ;
    int code = p->done ? (p->code ? p->code : p->res.code) : OKV_ETIMEDOUT;
    pthread_mutex_unlock(&p->mu);
    pending_unref(p);
    return code == OKV_ECONFLICT ? OKV_OK : code;   /* conflict: already written */
}

/* Reads a row of this replica; *out is NULL when absent. */
static int read_row(meta *m, const char *row, uint8_t **out, size_t *len)
{
    static const catalog_table meta_table = { .name = "meta", .id = CLUSTER_META_TABLE };
    uint64_t version;
    okv_error err;
    okv_error_clear(&err);
    *out = NULL;
    int rc = kvstore_get(m->n->kv, &meta_table, 0, (const uint8_t *)row, strlen(row), out, len,
                         &version, &err);
    if (rc == OKV_ENOTFOUND)
        return OKV_OK;
    if (rc)
        OKV_WARN("meta group: cannot read row %s: %s", row, err.msg);
    return rc;
}

/* What this node believes: its map and tables as text. */
static void local_values(meta *m, char *map, size_t mcap, char *cat, size_t ccap)
{
    size_t ml = cluster_encode(&m->n->map, map, mcap);
    map[ml < mcap ? ml : 0] = '\0';
    size_t cl = catalog_encode(kvstore_catalog(m->n->kv), cat, ccap);
    cat[cl < ccap ? cl : 0] = '\0';
}

/* The node must not run on: main's sigwait takes the signal and stops it
 * with exit status 1 (node.h must_exit). */
static void refuse_to_run(meta *m, uint64_t epoch, const char *detail);

static void set_state(meta *m, enum meta_state s, uint64_t epoch, const char *detail)
{
    pthread_mutex_lock(&m->mu);
    m->epoch = epoch;
    snprintf(m->detail, sizeof m->detail, "%s", detail);
    atomic_store(&m->state, (int)s);
    pthread_mutex_unlock(&m->mu);
}

static void refuse_to_run(meta *m, uint64_t epoch, const char *detail)
{
    OKV_ERROR("meta group: %s", detail);
    set_state(m, META_MISMATCH, epoch, detail);
    atomic_store(&m->n->must_exit, 1);
    kill(getpid(), SIGTERM);
}

/* Compares an applied record with this node; returns 1 when settled. */
static int check_record(meta *m, const char *map, const char *cat)
{
    uint8_t *rmap = NULL, *rcat = NULL, *repoch = NULL;
    size_t lmap = 0, lcat = 0, lepoch = 0;
    int settled = 0;
    if (read_row(m, "epoch", &repoch, &lepoch) || !repoch ||
        read_row(m, "map", &rmap, &lmap) || read_row(m, "catalog", &rcat, &lcat))
        goto out;
    settled = 1;
    uint64_t epoch = strtoull((const char *)repoch, NULL, 10);
    char detail[1024];
    if (!rmap || !rcat) {
        snprintf(detail, sizeof detail, "meta group record at epoch %llu lacks its %s row",
                 (unsigned long long)epoch, rmap ? "catalog" : "map");
        refuse_to_run(m, epoch, detail);
    } else if (strlen(map) != lmap || memcmp(map, rmap, lmap) != 0) {
        snprintf(detail, sizeof detail,
                 "this node's cluster map (%.200s) differs from the cluster's (%.*s)", map,
                 (int)(lmap < 200 ? lmap : 200), (const char *)rmap);
        refuse_to_run(m, epoch, detail);
    } else if (strlen(cat) != lcat || memcmp(cat, rcat, lcat) != 0) {
        snprintf(detail, sizeof detail,
                 "this node's data dir was created with tables %.150s but the cluster has %.*s; "
                 "keys would land in other partitions than on its peers. Stop it, move its "
                 "data dir away and start it again with the cluster's --partitions",
                 cat, (int)(lcat < 150 ? lcat : 150), (const char *)rcat);
        refuse_to_run(m, epoch, detail);
    } else {
        snprintf(detail, sizeof detail, "cluster record at epoch %llu matches this node",
                 (unsigned long long)epoch);
        OKV_INFO("meta group: %s", detail);
        set_state(m, META_OK, epoch, detail);
    }
out:
    free(rmap);
    free(rcat);
    free(repoch);
    return settled;
}

/* Leader only: writes the rows still missing, epoch last. */
static void bootstrap(meta *m, const char *map, const char *cat)
{
    const char *values[] = { map, cat, "1" };
    for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
        uint8_t *have = NULL;
        size_t len = 0;
        if (read_row(m, ROWS[i], &have, &len))
            return;
        free(have);
        if (have)
            continue;
        int rc = put_if_absent(m, ROWS[i], values[i]);
        if (rc) {
            OKV_DEBUG("meta group: writing row %s: %s (will retry)", ROWS[i], okv_strerror(rc));
            return;
        }
    }
    OKV_INFO("meta group: wrote the cluster record (epoch 1)");
}

static void *run(void *arg)
{
    meta *m = arg;
    char map[CLUSTER_MAX_NODES * (CLUSTER_ADDR_MAX + 24)];
    char cat[CATALOG_MAX_TABLES * 128];
    local_values(m, map, sizeof map, cat, sizeof cat);
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        pthread_mutex_unlock(&m->mu);
        if (check_record(m, map, cat))
            return NULL;
        if (raftstore_leader(m->n->rs, META_GROUP) == m->n->node_id)
            bootstrap(m, map, cat);
        struct timespec until;
        deadline_in(&until, META_POLL_MS);
        pthread_mutex_lock(&m->mu);
        if (!m->stop)
            pthread_cond_timedwait(&m->cv, &m->mu, &until);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int meta_new(meta **out, node *n, okv_error *err)
{
    *out = NULL;
    meta *m = calloc(1, sizeof *m);
    if (!m)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    m->n = n;
    pthread_mutex_init(&m->mu, NULL);
    cond_new_monotonic(&m->cv);
    if (!cluster_holds(&n->map, n->node_id, CLUSTER_META_TABLE, 0)) {
        atomic_store(&m->state, META_NOT_HELD);
        snprintf(m->detail, sizeof m->detail,
                 "this node holds no meta replica (the first %d nodes do)",
                 CLUSTER_META_MAX_REPLICAS);
        *out = m;
        return OKV_OK;
    }
    atomic_store(&m->state, META_WAITING);
    snprintf(m->detail, sizeof m->detail,
             "this node has not yet checked its tables against the cluster's record in the "
             "meta group (it needs a majority of the meta group's nodes up); retry, or ask "
             "another node");
    if (pthread_create(&m->thread, NULL, run, m) != 0) {
        meta_free(m);
        return okv_error_set(err, OKV_ENOMEM, "cannot start the meta group watcher thread");
    }
    m->started = 1;
    *out = m;
    return OKV_OK;
}

void meta_free(meta *m)
{
    if (!m)
        return;
    if (m->started) {
        pthread_mutex_lock(&m->mu);
        m->stop = 1;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->thread, NULL);
    }
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
}

enum meta_state meta_status(meta *m, uint64_t *epoch, char *detail, size_t cap)
{
    if (epoch)
        *epoch = 0;
    if (!m) {
        if (cap)
            snprintf(detail, cap, "not in cluster mode");
        return META_NOT_HELD;
    }
    pthread_mutex_lock(&m->mu);
    enum meta_state s = (enum meta_state)atomic_load(&m->state);
    if (epoch)
        *epoch = m->epoch;
    if (cap)
        snprintf(detail, cap, "%s", m->detail);
    pthread_mutex_unlock(&m->mu);
    return s;
}

int meta_refuses(const meta *m)
{
    if (!m)
        return 0;
    int s = atomic_load(&m->state);
    return s == META_WAITING || s == META_MISMATCH;
}

const char *meta_state_name(enum meta_state s)
{
    switch (s) {
    case META_WAITING: return "waiting";
    case META_OK: return "ok";
    case META_MISMATCH: return "mismatch";
    default: return "not-held";
    }
}
