/*
 * meta.c — writes the meta group's record at a cluster's first boot and
 * checks this node against it (meta.h).
 *
 * meta_new reads the record from this node's disk (a later boot has it)
 * and judges it before Raft starts. If it is not settled there, one thread
 * polls the replica's applied rows (a local read: each row is written once,
 * so any applied copy is the record) every META_POLL_MS; while a row is
 * missing and this node leads group 0, it proposes the missing rows as
 * put-if-absent commands. Once the record is whole it is compared with
 * this node's map, catalog and timing, and the thread ends.
 */
#define _POSIX_C_SOURCE 200809L
#include "thread_name.h"
#include "meta.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
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
#include "request.h"

#define META_POLL_MS 100
#define META_PROPOSE_WAIT_MS 1000

static const char *const ROWS[] = { "map", "catalog", "timing", "epoch" };   /* write order */

#define TIMING_MAX 128

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
    /* This node's side, fixed at meta_new. */
    meta_timing timing;
    char map[CLUSTER_MAX_NODES * (CLUSTER_ADDR_MAX + 24)];
    char cat[CATALOG_MAX_TABLES * 128];
    char timing_text[TIMING_MAX];
    int settled;                 /* nothing left to watch (meta_new or the thread) */
    int untimed;                 /* the record had no timing row when first seen */
    /* meta_set_first_row: written if absent by the leader; first_done once
     * it is there (read or written). Only the thread touches first_done. */
    char *first_row, *first_value;
    int first_done;
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
 * OKV_OK when the row is there afterwards; *wrote says whether this
 * proposal wrote it (0: it was written before). */
static int put_if_absent(meta *m, const char *row, const char *value, int *wrote)
{
    *wrote = 0;
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
    *wrote = code == OKV_OK;
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

static const catalog_table meta_rows_table = { .name = "meta", .id = CLUSTER_META_TABLE };

int meta_row_get(node *n, const char *row, uint8_t **out, size_t *len, uint64_t *version)
{
    okv_error err;
    okv_error_clear(&err);
    *out = NULL;
    *len = 0;
    *version = 0;
    int rc = kvstore_get(n->kv, &meta_rows_table, 0, (const uint8_t *)row, strlen(row), out, len,
                         version, &err);
    if (rc == OKV_ENOTFOUND)
        return OKV_OK;
    if (rc)
        OKV_WARN("meta group: cannot read row %s: %s", row, err.msg);
    return rc;
}

int meta_rows_list(node *n, const char *prefix, size_t max, char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    size_t plen = strlen(prefix);
    if (plen == 0 || plen > 64 || (uint8_t)prefix[plen - 1] == 0xff)
        return OKV_EINVAL;
    char upper[65];
    memcpy(upper, prefix, plen);
    upper[plen - 1] = (char)((uint8_t)prefix[plen - 1] + 1);   /* past every key with prefix */
    request r;
    memset(&r, 0, sizeof r);
    r.kind = REQ_SCAN;
    r.table = &meta_rows_table;
    r.partition = 0;
    r.single_partition = 1;
    r.lower = (const uint8_t *)prefix;
    r.lower_len = plen;
    r.upper = (const uint8_t *)upper;
    r.upper_len = plen;
    r.has_upper = 1;
    r.limit = (uint32_t)max;
    kv_item *items = NULL;
    size_t got = 0;
    int more = 0;
    okv_error err;
    okv_error_clear(&err);
    int rc = kvstore_scan(n->kv, &r, &items, &got, &more, &err);
    if (rc)
        return rc;
    char **out = calloc(got ? got : 1, sizeof *out);
    for (size_t i = 0; out && i < got; i++) {
        out[i] = malloc(items[i].key_len + 1);
        if (!out[i]) {
            for (size_t k = 0; k < i; k++)
                free(out[k]);
            free(out);
            out = NULL;
            break;
        }
        memcpy(out[i], items[i].key, items[i].key_len);
        out[i][items[i].key_len] = '\0';
    }
    kvstore_items_free(items, got);
    if (!out)
        return OKV_ENOMEM;
    *names = out;
    *count = got;
    return OKV_OK;
}

int meta_set_first_row(meta *m, const char *row, const char *value)
{
    if (atomic_load(&m->state) == META_NOT_HELD)
        return OKV_OK;   /* the nodes that hold the group write it */
    free(m->first_row);
    free(m->first_value);
    m->first_row = strdup(row);
    m->first_value = strdup(value);
    return m->first_row && m->first_value ? OKV_OK : OKV_ENOMEM;
}

/* Leader only: writes the first row (meta_set_first_row) if absent. */
static void write_first_row(meta *m)
{
    if (!m->first_row || m->first_done)
        return;
    uint8_t *have = NULL;
    size_t len = 0;
    if (read_row(m, m->first_row, &have, &len))
        return;
    int wrote = 0;
    if (have || put_if_absent(m, m->first_row, m->first_value, &wrote) == OKV_OK) {
        m->first_done = 1;
        if (wrote)
            OKV_INFO("meta group: wrote row %s (the first admin)", m->first_row);
    }
    free(have);
}

/* What this node believes: its map and tables as text, and its timing as
 * the "timing" row would hold it. */
static void local_values(meta *m)
{
    size_t ml = cluster_encode(&m->n->map, m->map, sizeof m->map);
    m->map[ml < sizeof m->map ? ml : 0] = '\0';
    size_t cl = catalog_encode(kvstore_catalog(m->n->kv), m->cat, sizeof m->cat);
    m->cat[cl < sizeof m->cat ? cl : 0] = '\0';
    snprintf(m->timing_text, sizeof m->timing_text, "tick-ms=%d election-ticks=%d read-mode=%s",
             m->timing.tick_ms, m->timing.election_ticks,
             m->timing.lease_reads ? "lease" : "read-index");
}

/* Parses a "timing" row (meta.h); OKV_ECORRUPT if it is not one. */
static int timing_decode(const uint8_t *v, size_t len, meta_timing *t)
{
    char text[TIMING_MAX], mode[16];
    if (len >= sizeof text)
        return OKV_ECORRUPT;
    memcpy(text, v, len);
    text[len] = '\0';
    if (sscanf(text, "tick-ms=%d election-ticks=%d read-mode=%15s", &t->tick_ms,
               &t->election_ticks, mode) != 3)
        return OKV_ECORRUPT;
    if (strcmp(mode, "lease") == 0)
        t->lease_reads = 1;
    else if (strcmp(mode, "read-index") == 0)
        t->lease_reads = 0;
    else
        return OKV_ECORRUPT;
    return OKV_OK;
}

static void appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = *len + (size_t)n < cap ? *len + (size_t)n : cap;
}

static const char *mode_name(int lease_reads) { return lease_reads ? "lease" : "read-index"; }

/* Says in detail how this node's timing differs from the record's, each
 * setting with both values and the flag to change; 0 if it does not. */
static int timing_differs(const meta *m, const meta_timing *rec, const char *rec_text,
                          char *detail, size_t cap)
{
    const meta_timing *here = &m->timing;
    char what[512] = "", fix[128] = "";
    size_t wl = 0, fl = 0;
    if (here->tick_ms != rec->tick_ms) {
        appendf(what, sizeof what, &wl, "--raft-tick-ms is %d here but %d in the cluster's record",
                here->tick_ms, rec->tick_ms);
        appendf(fix, sizeof fix, &fl, " --raft-tick-ms %d", rec->tick_ms);
    }
    if (here->election_ticks != rec->election_ticks)
        appendf(what, sizeof what, &wl,
                "%sthis orderkvd waits %d ticks for a leader before an election but the "
                "cluster's record has %d (no flag sets this: run the orderkvd the cluster runs)",
                wl ? "; " : "", here->election_ticks, rec->election_ticks);
    if (here->lease_reads != rec->lease_reads) {
        appendf(what, sizeof what, &wl, "%s--read-mode is %s here but %s in the cluster's record",
                wl ? "; " : "", mode_name(here->lease_reads), mode_name(rec->lease_reads));
        appendf(fix, sizeof fix, &fl, " --read-mode %s", mode_name(rec->lease_reads));
    }
    if (!wl)
        return 0;
    snprintf(detail, cap,
             "this node's Raft timing differs from the cluster's record (%s): %s. Leader leases "
             "are safe only while every node times elections and reads alike; restart this "
             "node with%s",
             rec_text, what, fl ? fix : " the cluster's orderkvd");
    return 1;
}

enum verdict {
    RECORD_INCOMPLETE,   /* no epoch yet (or a row could not be read): wait */
    RECORD_UNTIMED,      /* whole, matches, but made before the timing row */
    RECORD_MATCHES,
    RECORD_DIFFERS       /* detail says how; the node must not run */
};

/* Reads the record as applied on this replica and compares it with this
 * node. Side-effect free: meta_new and the thread act on the verdict. */
static enum verdict judge(meta *m, uint64_t *epoch, char *detail, size_t cap)
{
    uint8_t *rmap = NULL, *rcat = NULL, *rtiming = NULL, *repoch = NULL;
    size_t lmap = 0, lcat = 0, ltiming = 0, lepoch = 0;
    enum verdict v = RECORD_INCOMPLETE;
    *epoch = 0;
    if (read_row(m, "epoch", &repoch, &lepoch) || !repoch ||
        read_row(m, "map", &rmap, &lmap) || read_row(m, "catalog", &rcat, &lcat) ||
        read_row(m, "timing", &rtiming, &ltiming))
        goto out;
    char num[24];
    snprintf(num, sizeof num, "%.*s", (int)(lepoch < 20 ? lepoch : 20), (const char *)repoch);
    *epoch = strtoull(num, NULL, 10);
    unsigned long long e = (unsigned long long)*epoch;
    meta_timing rec;
    v = RECORD_DIFFERS;
    if (!rmap || !rcat) {
        snprintf(detail, cap, "meta group record at epoch %llu lacks its %s row", e,
                 rmap ? "catalog" : "map");
    } else if (strlen(m->map) != lmap || memcmp(m->map, rmap, lmap) != 0) {
        snprintf(detail, cap, "this node's cluster map (%.200s) differs from the cluster's (%.*s)",
                 m->map, (int)(lmap < 200 ? lmap : 200), (const char *)rmap);
    } else if (strlen(m->cat) != lcat || memcmp(m->cat, rcat, lcat) != 0) {
        snprintf(detail, cap,
                 "this node's data dir was created with tables %.150s but the cluster has %.*s; "
                 "keys would land in other partitions than on its peers. Stop it, move its "
                 "data dir away and start it again with the cluster's --partitions",
                 m->cat, (int)(lcat < 150 ? lcat : 150), (const char *)rcat);
    } else if (!rtiming) {
        v = RECORD_UNTIMED;
        snprintf(detail, cap,
                 "cluster record at epoch %llu matches this node's map and tables; it has no "
                 "timing row yet (it was made before orderkvd recorded one): the meta group's "
                 "leader adds its own, then every node is checked against it",
                 e);
    } else if (timing_decode(rtiming, ltiming, &rec) != OKV_OK) {
        snprintf(detail, cap, "meta group record at epoch %llu has a malformed timing row '%.*s'",
                 e, (int)(ltiming < 100 ? ltiming : 100), (const char *)rtiming);
    } else {
        char rec_text[TIMING_MAX];
        snprintf(rec_text, sizeof rec_text, "%.*s", (int)ltiming, (const char *)rtiming);
        if (!timing_differs(m, &rec, rec_text, detail, cap)) {
            v = RECORD_MATCHES;
            snprintf(detail, cap, "cluster record at epoch %llu (%s) matches this node", e,
                     rec_text);
        }
    }
out:
    free(rmap);
    free(rcat);
    free(rtiming);
    free(repoch);
    return v;
}

static void set_state(meta *m, enum meta_state s, uint64_t epoch, const char *detail)
{
    pthread_mutex_lock(&m->mu);
    m->epoch = epoch;
    snprintf(m->detail, sizeof m->detail, "%s", detail);
    atomic_store(&m->state, (int)s);
    pthread_mutex_unlock(&m->mu);
}

/* The node must not run on: main's sigwait takes the signal and stops it
 * with exit status 1 (node.h must_exit). */
static void refuse_to_run(meta *m, uint64_t epoch, const char *detail)
{
    OKV_ERROR("meta group: %s", detail);
    set_state(m, META_MISMATCH, epoch, detail);
    atomic_store(&m->n->must_exit, 1);
    kill(getpid(), SIGTERM);
}

/* The thread's turn: acts on the record as applied now. A record without
 * a timing row lets the node serve (as before the row existed) but is
 * watched until the row appears. Sets m->settled when nothing is left. */
static void settle(meta *m)
{
    uint64_t epoch;
    char detail[1024];
    switch (judge(m, &epoch, detail, sizeof detail)) {
    case RECORD_DIFFERS:
        refuse_to_run(m, epoch, detail);
        m->settled = 1;
        break;
    case RECORD_MATCHES:
        if (m->untimed)
            OKV_INFO("meta group: the cluster record now has a timing row (adopted for a record "
                     "made before it existed)");
        OKV_INFO("meta group: %s", detail);
        set_state(m, META_OK, epoch, detail);
        m->settled = 1;
        break;
    case RECORD_UNTIMED:
        if (!m->untimed) {
            OKV_INFO("meta group: %s", detail);
            set_state(m, META_OK, epoch, detail);
            m->untimed = 1;
        }
        break;
    case RECORD_INCOMPLETE:
        break;
    }
}

/* Leader only: writes the rows still missing, epoch last. A record that
 * has its epoch but no timing row (made before the row existed) gets this
 * node's timing: it is adopted as the cluster's. */
static void bootstrap(meta *m)
{
    const char *values[] = { m->map, m->cat, m->timing_text, "1" };
    write_first_row(m);   /* before the epoch: a whole record has its admin */
    uint8_t *epoch = NULL;
    size_t elen = 0;
    if (read_row(m, "epoch", &epoch, &elen))
        return;
    int had_epoch = epoch != NULL, adopted = 0;
    free(epoch);
    for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
        uint8_t *have = NULL;
        size_t len = 0;
        if (read_row(m, ROWS[i], &have, &len))
            return;
        int present = have != NULL;
        free(have);
        if (present)
            continue;
        int wrote = 0;
        int rc = put_if_absent(m, ROWS[i], values[i], &wrote);
        if (rc) {
            OKV_DEBUG("meta group: writing row %s: %s (will retry)", ROWS[i], okv_strerror(rc));
            return;
        }
        adopted |= had_epoch && wrote && strcmp(ROWS[i], "timing") == 0;
    }
    if (adopted)
        OKV_INFO("meta group: the cluster record had no timing row (made before orderkvd "
                 "recorded one); adopted this node's as the cluster's: %s",
                 m->timing_text);
    else if (!had_epoch)
        OKV_INFO("meta group: wrote the cluster record (epoch 1, %s)", m->timing_text);
}

static void *run(void *arg)
{
    okv_thread_name("okv-meta");
    meta *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        pthread_mutex_unlock(&m->mu);
        if (!m->settled)
            settle(m);
        int first_pending = m->first_row && !m->first_done;
        if (m->settled && !first_pending)
            return NULL;
        if (raftstore_leader(m->n->rs, META_GROUP) == m->n->node_id) {
            if (m->settled)
                write_first_row(m);
            else
                bootstrap(m);
        } else if (first_pending) {
            /* Another node leads: the row may be there already. */
            uint8_t *have = NULL;
            size_t len = 0;
            if (read_row(m, m->first_row, &have, &len) == OKV_OK && have)
                m->first_done = 1;
            free(have);
        }
        struct timespec until;
        deadline_in(&until, META_POLL_MS);
        pthread_mutex_lock(&m->mu);
        if (!m->stop)
            pthread_cond_timedwait(&m->cv, &m->mu, &until);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int meta_new(meta **out, node *n, const meta_timing *timing, okv_error *err)
{
    *out = NULL;
    meta *m = calloc(1, sizeof *m);
    if (!m)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    m->n = n;
    m->timing = *timing;
    pthread_mutex_init(&m->mu, NULL);
    cond_new_monotonic(&m->cv);
    if (!cluster_holds(&n->map, n->node_id, CLUSTER_META_TABLE, 0)) {
        atomic_store(&m->state, META_NOT_HELD);
        snprintf(m->detail, sizeof m->detail,
                 "this node holds no meta replica (the first %d nodes do)",
                 CLUSTER_META_MAX_REPLICAS);
        OKV_INFO("meta group: this node holds no meta replica, so its tables and Raft timing "
                 "are not checked against the cluster's record: it must run with the same "
                 "--partitions, --raft-tick-ms and --read-mode as the nodes that do");
        m->settled = 1;
        *out = m;
        return OKV_OK;
    }
    local_values(m);
    uint64_t epoch;
    char detail[1024];
    switch (judge(m, &epoch, detail, sizeof detail)) {
    case RECORD_DIFFERS:
        /* Refused before Raft starts: not one vote with the wrong timing. */
        okv_error_set(err, OKV_EINVAL, "meta group: %s", detail);
        meta_free(m);
        return OKV_EINVAL;
    case RECORD_MATCHES:
        OKV_INFO("meta group: %s", detail);
        set_state(m, META_OK, epoch, detail);
        m->settled = 1;
        break;
    case RECORD_UNTIMED:
        OKV_INFO("meta group: %s", detail);
        set_state(m, META_OK, epoch, detail);
        m->untimed = 1;
        break;
    case RECORD_INCOMPLETE:
        set_state(m, META_WAITING, 0,
                  "this node has not yet checked its tables against the cluster's record in "
                  "the meta group (it needs a majority of the meta group's nodes up); retry, "
                  "or ask another node");
        break;
    }
    *out = m;
    return OKV_OK;
}

int meta_start(meta *m, okv_error *err)
{
    if (m->settled && !m->first_row)
        return OKV_OK;
    if (pthread_create(&m->thread, NULL, run, m) != 0)
        return okv_error_set(err, OKV_ENOMEM, "cannot start the meta group watcher thread");
    m->started = 1;
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
    free(m->first_row);
    free(m->first_value);
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
