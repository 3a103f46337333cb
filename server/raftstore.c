/*
 * raftstore.c — see raftstore.h for the loop and its invariants.
 */
#include "raftstore.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failpoint.h"
#include "fsm.h"
#include "fsm_snapshot.h"
#include "planted.h"
#include "raftlog.h"

/* Reads not answered within this many ticks are failed (a read request can
 * be lost on a leader change; the caller may retry it safely). */
#define READ_TIMEOUT_TICKS 30
/* A read index request or its answer can be lost on the way (a dropped
 * connection, a leader change); a read still without its index asks again
 * every this many ticks, under a new context. Asking twice is harmless:
 * the first answer that arrives is used. */
#define READ_RETRY_TICKS 3

typedef struct pending_prop {
    uint64_t index, term;
    raftstore_propose_cb cb;
    void *arg;
    struct pending_prop *next;
} pending_prop;

typedef struct pending_read {
    uint64_t ctx;
    uint64_t index;           /* 0 until the read state arrives */
    int ticks;                /* ticks waited */
    uint64_t issued_ms;       /* when asked, as leader of lease_term (else 0) */
    uint64_t lease_term;
    raftstore_read_cb cb;
    void *arg;
    struct pending_read *next;
} pending_read;

typedef struct grp {
    uint64_t id;
    struct raftstore *rs;
    struct raftlog *log;
    struct raft_node *node;
    pending_prop *props, *props_tail;   /* in index order */
    pending_read *reads;
    uint64_t applied;
    /* For lease reads on other threads: the commit index this node knows,
     * published before any message carrying it leaves (so no follower can
     * have applied past it), and the applied index, published once what it
     * covers is flushed to RocksDB. */
    _Atomic uint64_t commit_seen, applied_pub;
    /* A transfer was started in this term: a TIMEOUT_NOW may still be on
     * its way, and the vote it starts bypasses every follower's lease, so
     * no lease is taken again in this term (ReadIndex stays safe). */
    uint64_t no_lease_term;
    /* Rebalancer (rebalance()): passes to wait before this node hands the
     * group back again, the wait after the next hand-back (doubling), and
     * passes since the last hand-back (the wait halves every 64). */
    int rebalance_wait, rebalance_backoff, rebalance_quiet;
    /* Leadership this node lost other than by handing it over (an
     * election elsewhere, check-quorum): the tick it was noticed, 0 if
     * never. For a while after, this node turns down TIMEOUT_NOW: a node
     * that cannot keep the leadership (a failing disk, a slow link) must
     * not have it handed back again and again (rebalance()). */
    uint64_t lost_lead_tick;
    int led, led_transferring;   /* as last seen by track_leadership */
    /* Lease (raftstore_config.lease_reads): reads on other threads may use
     * the applied state while now < lease_until. Only the loop writes it,
     * and zeroes it whenever this node may stop leading. */
    _Atomic uint64_t lease_until;
    uint64_t lease_term;
    _Atomic int lease_renewing;       /* a background ReadIndex is under way */
    /* Term of a TIMEOUT_NOW this replica received: a leadership won in the
     * next term came from a transfer (an admin's or the rebalancer's), and
     * the rebalancer leaves it alone — an admin's choice must stick. */
    uint64_t transfer_term;
    int has_rd;
    struct raft_ready rd;
    /* Dirs (names under the snap root) of snapshots stepped since the last
     * Ready: removed once that Ready is persisted, whether the core
     * installed one of them or turned them down. */
    char (*recv_dirs)[FSM_SNAPSHOT_NAME_MAX + 1];
    size_t n_recv_dirs, cap_recv_dirs;
} grp;

/* ITEM_SNAP: a received snapshot (raftstore_receive_snapshot). */
enum item_kind { ITEM_MSG, ITEM_PROPOSE, ITEM_READ, ITEM_TRANSFER, ITEM_SNAP };

typedef struct item {
    enum item_kind kind;
    uint64_t group;
    struct raft_message msg;
    uint8_t *cmd;
    size_t len;
    uint64_t to;                /* ITEM_TRANSFER */
    int round;                  /* ITEM_READ: a quorum round even under a lease */
    raftstore_propose_cb pcb;
    raftstore_read_cb rcb;
    void *arg;
    struct item *next;
} item;

struct raftstore {
    raftstore_config cfg;
    grp **groups;            /* sorted by id */
    size_t ngroups, cap;
    fsm *fsm;
    engine_batch *batch;
    uint64_t read_seq;

    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    item *inbox, *inbox_tail;  /* guarded by mu */
    int stopping;              /* guarded by mu */

    int ticks_since_rebalance;
    uint64_t next_tick;        /* clock time of the next tick */
    int iter_tick, iter_open;  /* the step under way ticked / awaits step_end */
    int crashed;               /* raftstore_free_crashed: leave the disk alone */
    uint64_t ticks;            /* ticks since start */
    size_t snap_cursor;        /* where the next compaction check starts */
    char snap_root[4096];      /* <data dir>/snap: received snapshots */
    uint64_t transport_snaps;  /* RAFT_MSG_SNAPSHOTs dropped off the transport */
    _Atomic uint64_t snap_recorded, snap_offered, snap_installed, snap_recovered;

    pthread_mutex_t status_mu;
    raftstore_group_info *status;   /* guarded by status_mu */
    size_t nstatus;
};

static void logf_(raftstore *rs, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static uint64_t mono_ms(void);
static void track_prop(grp *g, pending_prop *p);
static void drain_stopped(raftstore *rs, item *list);
static void settle_props_snapshot(grp *g, uint64_t index);
static void read_item(raftstore *rs, uint64_t group, raftstore_read_cb cb, void *arg, int round);

static uint64_t now_ms_of(const raftstore *rs)
{
    return rs->cfg.now_ms ? rs->cfg.now_ms(rs->cfg.clock_ctx) : mono_ms();
}

static void logf_(raftstore *rs, int level, const char *fmt, ...)
{
    if (!rs->cfg.log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rs->cfg.log(rs->cfg.log_ctx, level, msg);
}

/* A broken invariant of the storage or the state machine: replicas would
 * diverge if this node went on, so it stops here and recovers from disk. */
static void fatal(raftstore *rs, const char *what)
{
    logf_(rs, 0, "fatal: %s", what);
    if (rs->cfg.fatal)
        rs->cfg.fatal(rs->cfg.fatal_ctx, what);
    fprintf(stderr, "orderkvd: fatal: %s\n", what);
    abort();
}

static grp *find_group(raftstore *rs, uint64_t id)
{
    size_t lo = 0, hi = rs->ngroups;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rs->groups[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < rs->ngroups && rs->groups[lo]->id == id ? rs->groups[lo] : NULL;
}

static uint64_t lease_ms(const raftstore *rs)
{
    /* A follower's lease lasts at least election_ticks - 1 of its ticks
     * (the first may come at once); 10% off for clock rates. */
    return (uint64_t)(rs->cfg.election_ticks - 1) * (uint64_t)rs->cfg.tick_ms * 9 / 10;
}

/* The lease a majority's confirmation of read r gives (raftstore.h): the
 * heartbeat round that confirmed it left after r->issued_ms, and followers
 * that answered ignore votes for election_ticks ticks after it, so no other
 * leader can exist before issued_ms + lease_ms. Also proves the leader has
 * applied an entry of its term (r->index is such a commit index). */
static void lease_extend(grp *g, const pending_read *r)
{
    raftstore *rs = g->rs;
    if (!rs->cfg.lease_reads || !r->issued_ms)
        return;
    struct raft_status st;
    raft_status(g->node, &st);
    if (st.role != RAFT_LEADER || st.term != r->lease_term || st.transferee != RAFT_NONE ||
        st.term == g->no_lease_term)
        return;
    uint64_t until = r->issued_ms + lease_ms(rs);
    if (OKV_FAILPOINT("lease.never_ends"))
        until = UINT64_MAX / 2;   /* planted bug: the lease outlives the leadership */
    if (g->lease_term != st.term || until > atomic_load(&g->lease_until)) {
        g->lease_term = st.term;
        atomic_store(&g->lease_until, until);
    }
}

/* Ends the lease of every group this node may no longer lead (another
 * term, a transfer under way); before each Ready is handled and before a
 * transfer starts. */
static void lease_check(grp *g)
{
    if (!atomic_load(&g->lease_until) || OKV_FAILPOINT("lease.never_ends"))
        return;
    struct raft_status st;
    raft_status(g->node, &st);
    if (st.role != RAFT_LEADER || st.term != g->lease_term || st.transferee != RAFT_NONE)
        atomic_store(&g->lease_until, 0);
}

/* Notices a leadership this node lost without handing it over. */
static void track_leadership(raftstore *rs, grp *g)
{
    struct raft_status st;
    raft_status(g->node, &st);
    int leads = st.role == RAFT_LEADER;
    if (g->led && !leads && !g->led_transferring)
        g->lost_lead_tick = rs->ticks ? rs->ticks : 1;
    g->led = leads;
    g->led_transferring = leads && st.transferee != RAFT_NONE;
}

/* Ticks during which a node that lost a leadership turns down hand-backs:
 * 30 election timeouts. */
static int refuses_handback(const raftstore *rs, const grp *g)
{
    return g->lost_lead_tick &&
           rs->ticks - g->lost_lead_tick < 30u * (uint64_t)rs->cfg.election_ticks;
}

static int insert_group(raftstore *rs, grp *g)
{
    if (rs->ngroups == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 32;
        grp **n = realloc(rs->groups, cap * sizeof *n);
        if (!n)
            return -1;
        rs->groups = n;
        rs->cap = cap;
    }
    size_t i = rs->ngroups;
    while (i > 0 && rs->groups[i - 1]->id > g->id) {
        rs->groups[i] = rs->groups[i - 1];
        i--;
    }
    rs->groups[i] = g;
    rs->ngroups++;
    return 0;
}

static void raft_log_cb(void *ctx, int level, const char *msg)
{
    grp *g = ctx;
    logf_(g->rs, level == RAFT_LOG_WARN ? 1 : level == RAFT_LOG_INFO ? 2 : 3,
          "group %u/%u: %s", (unsigned)(g->id >> 32), (unsigned)g->id, msg);
}

/* Creates the raft node of a group whose log handle is open. */
static int start_node(raftstore *rs, grp *g, okv_error *err)
{
    uint64_t applied = 0;
    int rc = fsm_applied_index(rs->fsm, g->id, &applied, err);
    if (rc)
        return rc;
    struct raft_config c;
    raft_config_init(&c);
    c.id = rs->cfg.node_id;
    c.election_tick = rs->cfg.election_ticks;
    c.heartbeat_tick = rs->cfg.heartbeat_ticks;
    /* Leases rely on check_quorum (on by default) and on a restarted node
     * not voting at once (raft.h boot_quiet). */
    c.boot_quiet = rs->cfg.lease_reads != 0;
    c.seed = rs->cfg.seed ^ (g->id * 0x9e3779b97f4a7c15ULL);
    c.applied = applied;
    c.storage = &raftlog_ops;
    c.storage_ctx = g->log;
    g->rs = rs;
    c.log_fn = raft_log_cb;
    c.log_ctx = g;
    c.log_level = RAFT_LOG_INFO;
    g->applied = applied;
    rc = raft_new(&c, &g->node);
    if (rc)
        return okv_error_set(err, OKV_EINTERNAL, "raft group %llu: %s (%s)",
                             (unsigned long long)g->id, raft_strerror(rc),
                             raftlog_errmsg(g->log));
    return OKV_OK;
}

static int open_group_cb(void *ctx, uint64_t id)
{
    raftstore *rs = ctx;
    grp *g = calloc(1, sizeof *g);
    okv_error err;
    if (!g)
        return OKV_ENOMEM;
    g->id = id;
    if (raftlog_open(&g->log, rs->cfg.e, id, &err) != 0 || start_node(rs, g, &err) != OKV_OK ||
        insert_group(rs, g) != 0) {
        logf_(rs, 0, "cannot open raft group %llu: %s", (unsigned long long)id, err.msg);
        raft_free(g->node);
        raftlog_free(g->log);
        free(g);
        return OKV_ECORRUPT;
    }
    return 0;
}

/* ---- snapshot installs a crash interrupted ------------------------------ */

typedef struct recover_ctx {
    raftstore *rs;
    okv_error *err;
} recover_ctx;

/* Finishes one install (fsm_snapshot.h I2-I3) from the files its marker
 * names: the files were complete and synced before the marker was written,
 * and ingesting them again gives the same state. The hard state may lag
 * the snapshot (the Ready that would have raised it was never written):
 * its commit is raised to the snapshot's index, and its term to the
 * snapshot's term (with no vote), never lowered. */
static int recover_one(void *ctx, uint64_t group, const struct raft_snapshot_meta *m,
                       const char *name)
{
    recover_ctx *x = ctx;
    raftstore *rs = x->rs;
    engine *e = rs->cfg.e;
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/%s", rs->snap_root, name);
    struct raftlog *rl;
    okv_error ie;
    if (raftlog_open(&rl, e, group, &ie) != 0)
        return okv_error_set(x->err, OKV_ECORRUPT,
                             "group %llu: a snapshot install (index %llu) was interrupted and its "
                             "raft log does not open: %s",
                             (unsigned long long)group, (unsigned long long)m->index, ie.msg);
    engine_batch_clear(rs->batch);
    int rc = OKV_OK;
    if (raftlog_snapshot_index(rl) >= m->index) {
        fsm_snapshot_stage_unmark(rs->batch, group);   /* it completed; only the marker is left */
    } else if (fsm_snapshot_ingest(e, dir, &ie) != OKV_OK) {
        rc = okv_error_set(x->err, OKV_ECORRUPT,
                           "group %llu: a snapshot install (index %llu) was interrupted by a "
                           "crash and cannot be finished: %s. This replica's state is unknown: "
                           "stop the node, move its data dir aside and start it with an empty "
                           "one, so it rejoins and receives a fresh snapshot",
                           (unsigned long long)group, (unsigned long long)m->index, ie.msg);
    } else {
        uint8_t desc[FSM_SNAPSHOT_DESC_MAX];
        struct raft_snapshot snap;
        memset(&snap, 0, sizeof snap);
        snap.meta = *m;
        snap.data = desc;
        snap.len = fsm_snapshot_desc_encode(desc, FSM_SNAPSHOT_LOCAL, NULL);
        struct raft_hard_state hs;
        raftlog_hard_state(rl, &hs);
        int hs_changed = 0;
        if (hs.term < m->term) {
            hs.term = m->term;
            hs.vote = 0;
            hs_changed = 1;
        }
        if (hs.commit < m->index) {
            hs.commit = m->index;
            hs_changed = 1;
        }
        if (raftlog_stage_snapshot(rl, rs->batch, &snap) != 0 ||
            (hs_changed && raftlog_stage_hard_state(rl, rs->batch, &hs) != 0))
            rc = okv_error_set(x->err, OKV_ECORRUPT, "group %llu: %s", (unsigned long long)group,
                               raftlog_errmsg(rl));
        fsm_snapshot_stage_installed(rs->batch, group, m->index);
    }
    if (!rc)
        rc = engine_write(e, rs->batch, 1, x->err);
    engine_batch_clear(rs->batch);
    raftlog_free(rl);
    if (rc)
        return rc;
    atomic_fetch_add(&rs->snap_recovered, 1);
    logf_(rs, 1, "group %u/%u: finished a snapshot install a crash interrupted (index %llu, "
                 "files %s)",
          (unsigned)(group >> 32), (unsigned)group, (unsigned long long)m->index, dir);
    return OKV_OK;
}

/* Invariant 5 across a crash, before any group is opened (so nothing reads
 * or applies a partition caught between its old and its new state); then
 * the snap root is emptied of what a crash left (partial streams, dirs
 * installed or never used). If an install cannot be finished the node does
 * not start, and the files stay for inspection. */
static int recover_snapshots(raftstore *rs, okv_error *err)
{
    if (fsm_snapshot_root(rs->cfg.e, rs->snap_root, sizeof rs->snap_root))
        return okv_error_set(err, OKV_EINVAL, "data dir path too long: %s",
                             engine_dir(rs->cfg.e));
    recover_ctx x = { rs, err };
    int rc = fsm_snapshot_list_installing(rs->cfg.e, recover_one, &x, err);
    if (!rc)
        rc = fsm_snapshot_clean_root(rs->cfg.e, NULL, NULL, err);
    return rc;
}

static void remove_snap_dir(raftstore *rs, const char *name)
{
    char dir[4400];
    okv_error err;
    snprintf(dir, sizeof dir, "%s/%s", rs->snap_root, name);
    if (fsm_snapshot_remove_dir(dir, &err) != OKV_OK)
        logf_(rs, 1, "%s", err.msg);
}

int raftstore_new(raftstore **out, const raftstore_config *cfg, okv_error *err)
{
    *out = NULL;
    raftstore *rs = calloc(1, sizeof *rs);
    if (!rs)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    rs->cfg = *cfg;
    if (rs->cfg.tick_ms <= 0)
        rs->cfg.tick_ms = 100;
    if (rs->cfg.election_ticks <= 0)
        rs->cfg.election_ticks = 10;
    if (rs->cfg.heartbeat_ticks <= 0)
        rs->cfg.heartbeat_ticks = 1;
    if (rs->cfg.rebalance_ticks <= 0)
        rs->cfg.rebalance_ticks = 10;
    if (rs->cfg.snapshot_entries == 0)
        rs->cfg.snapshot_entries = 100000;
    if (rs->cfg.log_keep <= 0)
        rs->cfg.log_keep = rs->cfg.log_keep < 0 ? 0 : 5000;
    if (!rs->cfg.seed)
        rs->cfg.seed = 0x5eed0000ULL + cfg->node_id;
    pthread_mutex_init(&rs->mu, NULL);
    /* The loop's tick wait runs on the monotonic clock: a wall-clock step
     * (NTP, an admin's date -s) must neither stall ticks nor burst them. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rs->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&rs->status_mu, NULL);
    int rc = fsm_new(&rs->fsm, cfg->e, err);
    if (!rc && !(rs->batch = engine_batch_new()))
        rc = okv_error_set(err, OKV_ENOMEM, "out of memory");
    if (!rc)
        rc = recover_snapshots(rs, err);
    if (!rc && raftlog_list_groups(cfg->e, open_group_cb, rs, err) != 0)
        rc = okv_error_set(err, OKV_ECORRUPT, "cannot load the raft groups of this data dir");
    if (rc) {
        raftstore_free(rs);
        return rc;
    }
    *out = rs;
    return OKV_OK;
}

int raftstore_bootstrap_group(raftstore *rs, uint64_t id, const struct raft_conf *voters,
                              okv_error *err)
{
    if (find_group(rs, id))
        return OKV_OK;
    grp *g = calloc(1, sizeof *g);
    if (!g)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    g->id = id;
    engine_batch_clear(rs->batch);
    int rrc = raftlog_create(&g->log, rs->cfg.e, id, voters, rs->batch, err);
    int rc = rrc ? okv_error_set(err, OKV_EINTERNAL, "create raft group %llu: %s",
                                 (unsigned long long)id, raft_strerror(rrc))
                 : engine_write(rs->cfg.e, rs->batch, 1, err);
    engine_batch_clear(rs->batch);
    if (!rc)
        rc = start_node(rs, g, err);
    if (!rc && insert_group(rs, g) != 0)
        rc = okv_error_set(err, OKV_ENOMEM, "out of memory");
    if (rc) {
        raft_free(g->node);
        raftlog_free(g->log);
        free(g);
    }
    return rc;
}

/* ---- inbox ---------------------------------------------------------------- */

static void push(raftstore *rs, item *it)
{
    it->next = NULL;
    pthread_mutex_lock(&rs->mu);
    if (rs->stopping) {
        pthread_mutex_unlock(&rs->mu);
        if (it->kind == ITEM_MSG)
            raft_message_release(&it->msg);
        else if (it->kind == ITEM_PROPOSE)
            it->pcb(it->arg, OKV_EUNAVAILABLE, NULL, 0);
        else if (it->kind == ITEM_READ)
            it->rcb(it->arg, OKV_EUNAVAILABLE, 0);
        free(it->cmd);
        free(it);
        return;
    }
    if (rs->inbox_tail)
        rs->inbox_tail->next = it;
    else
        rs->inbox = it;
    rs->inbox_tail = it;
    pthread_cond_signal(&rs->cv);
    pthread_mutex_unlock(&rs->mu);
    if (rs->cfg.wake)
        rs->cfg.wake(rs->cfg.wake_ctx);
}

void raftstore_receive(raftstore *rs, uint64_t group, struct raft_message *m)
{
    item *it = calloc(1, sizeof *it);
    if (!it) {
        raft_message_release(m);
        return;   /* Raft tolerates a lost message */
    }
    it->kind = ITEM_MSG;
    it->group = group;
    it->msg = *m;
    push(rs, it);
}

int raftstore_receive_snapshot(raftstore *rs, uint64_t group, struct raft_message *m)
{
    item *it = calloc(1, sizeof *it);
    if (!it)
        return OKV_ENOMEM;
    it->kind = ITEM_SNAP;
    it->group = group;
    it->msg = *m;
    push(rs, it);
    return OKV_OK;
}

void raftstore_propose(raftstore *rs, uint64_t group, const uint8_t *cmd, size_t len,
                       raftstore_propose_cb cb, void *arg)
{
    item *it = calloc(1, sizeof *it);
    uint8_t *copy = malloc(len ? len : 1);
    if (!it || !copy) {
        free(it);
        free(copy);
        cb(arg, OKV_EUNAVAILABLE, NULL, 0);
        return;
    }
    memcpy(copy, cmd, len);
    it->kind = ITEM_PROPOSE;
    it->group = group;
    it->cmd = copy;
    it->len = len;
    it->pcb = cb;
    it->arg = arg;
    push(rs, it);
}

static void lease_renewed(void *arg, int code, uint64_t leader_hint)
{
    (void)code;
    (void)leader_hint;
    grp *g = arg;
    atomic_store(&g->lease_renewing, 0);
}

int raftstore_lease_read(raftstore *rs, uint64_t group)
{
    if (!rs->cfg.lease_reads)
        return 0;
    grp *g = find_group(rs, group);   /* groups never change once started */
    if (!g)
        return 0;
    uint64_t until = atomic_load(&g->lease_until), now = now_ms_of(rs);
    if (now >= until)
        return 0;
    if (atomic_load(&g->applied_pub) < atomic_load(&g->commit_seen) &&
        !OKV_PLANTED(PLANT_LEASE_STALE))
        return 0;   /* raftstore_read answers once the apply catches up */
    int expected = 0;
    if (until - now < lease_ms(rs) / 2 &&
        atomic_compare_exchange_strong(&g->lease_renewing, &expected, 1))
        read_item(rs, group, lease_renewed, g, 1);   /* a renewal needs the round */
    return 1;
}

void raftstore_read(raftstore *rs, uint64_t group, raftstore_read_cb cb, void *arg)
{
    read_item(rs, group, cb, arg, 0);
}

static void read_item(raftstore *rs, uint64_t group, raftstore_read_cb cb, void *arg, int round)
{
    item *it = calloc(1, sizeof *it);
    if (!it) {
        cb(arg, OKV_EUNAVAILABLE, 0);
        return;
    }
    it->round = round;
    it->kind = ITEM_READ;
    it->group = group;
    it->rcb = cb;
    it->arg = arg;
    push(rs, it);
}

/* ---- the loop --------------------------------------------------------------- */

static uint64_t leader_of(const grp *g)
{
    struct raft_status st;
    raft_status(g->node, &st);
    return st.leader;
}

/* Remembers a received snapshot's dir until the next Ready is persisted. */
static int remember_dir(grp *g, const char *name)
{
    if (g->n_recv_dirs == g->cap_recv_dirs) {
        size_t cap = g->cap_recv_dirs ? g->cap_recv_dirs * 2 : 4;
        void *p = realloc(g->recv_dirs, cap * sizeof *g->recv_dirs);
        if (!p)
            return -1;
        g->recv_dirs = p;
        g->cap_recv_dirs = cap;
    }
    snprintf(g->recv_dirs[g->n_recv_dirs++], sizeof *g->recv_dirs, "%s", name);
    return 0;
}

/* A snapshot that arrived whole (ITEM_SNAP): the core decides whether to
 * install it (it turns down one at or below its commit index); its dir is
 * kept until the Ready that installs it is durable. */
static void step_snapshot(raftstore *rs, grp *g, item *it)
{
    char name[FSM_SNAPSHOT_NAME_MAX + 1];
    if (fsm_snapshot_desc_decode(it->msg.snapshot.data, (size_t)it->msg.snapshot.len, name) !=
        FSM_SNAPSHOT_RECEIVED) {
        logf_(rs, 1, "group %llu: a received snapshot without files was dropped",
              (unsigned long long)it->group);
    } else if (!g || remember_dir(g, name) != 0) {
        remove_snap_dir(rs, name);
    } else {
        raft_step(g->node, &it->msg);
    }
    raft_message_release(&it->msg);
}

static void handle_item(raftstore *rs, item *it)
{
    grp *g = find_group(rs, it->group);
    if (it->kind == ITEM_SNAP) {
        step_snapshot(rs, g, it);
        return;
    }
    if (it->kind == ITEM_MSG && it->msg.type == RAFT_MSG_SNAPSHOT) {
        /* Snapshots arrive only whole, through the snapshot receiver; one on
         * the transport comes from a node that predates streamed snapshots,
         * and its data is not something this node can install. */
        uint64_t n = ++rs->transport_snaps;
        if ((n & (n - 1)) == 0)
            logf_(rs, 1, "group %llu: a snapshot from node %llu came over the transport and was "
                         "dropped (%llu so far); is that node running an older orderkvd?",
                  (unsigned long long)it->group, (unsigned long long)it->msg.from,
                  (unsigned long long)n);
        raft_message_release(&it->msg);
        return;
    }
    if (it->kind == ITEM_MSG) {
        if (g && it->msg.type == RAFT_MSG_TIMEOUT_NOW && refuses_handback(rs, g) &&
            !OKV_PLANTED(PLANT_REBALANCE_LAGGING)) {
            logf_(rs, 1, "group %u/%u: turned down a leadership hand-back from node %llu: this "
                         "node lost the leadership %llu ticks ago",
                  (unsigned)(g->id >> 32), (unsigned)g->id, (unsigned long long)it->msg.from,
                  (unsigned long long)(rs->ticks - g->lost_lead_tick));
            raft_message_release(&it->msg);
            return;
        }
        if (g && it->msg.type == RAFT_MSG_TIMEOUT_NOW)
            g->transfer_term = it->msg.term;
        if (g) {
            raft_step(g->node, &it->msg);
            lease_check(g);
        }
        raft_message_release(&it->msg);
        return;
    }
    if (!g) {
        if (it->kind == ITEM_PROPOSE)
            it->pcb(it->arg, OKV_ENOTFOUND, NULL, 0);
        else if (it->kind == ITEM_READ)
            it->rcb(it->arg, OKV_ENOTFOUND, 0);
        return;
    }
    if (it->kind == ITEM_TRANSFER) {
        /* The transferee campaigns at once, past every follower's lease;
         * its TIMEOUT_NOW may arrive after the transfer aborted. */
        atomic_store(&g->lease_until, 0);
        if (!OKV_PLANTED(PLANT_LATE_TIMEOUT_NOW)) {
            struct raft_status st;
            raft_status(g->node, &st);
            if (st.role == RAFT_LEADER)
                g->no_lease_term = st.term;
        }
        int rc = raft_transfer_leader(g->node, it->to);
        if (rc)
            logf_(rs, 1, "transfer of group %llu to node %llu refused: %s",
                  (unsigned long long)g->id, (unsigned long long)it->to, raft_strerror(rc));
        return;
    }
    if (it->kind == ITEM_PROPOSE) {
        uint64_t index, term;
        int rc = raft_propose(g->node, it->cmd, (uint32_t)it->len, &index, &term);
        if (rc == RAFT_ERR_TOO_LARGE) {
            it->pcb(it->arg, OKV_EINVAL, NULL, 0);
            return;
        }
        if (rc) {
            it->pcb(it->arg, rc == RAFT_ERR_NOT_LEADER ? OKV_ENOTLEADER : OKV_EUNAVAILABLE, NULL,
                    leader_of(g));
            return;
        }
        pending_prop *p = calloc(1, sizeof *p);
        if (!p) {
            /* Proposed but untracked: the entry may still commit. */
            it->pcb(it->arg, OKV_EUNKNOWN, NULL, 0);
            return;
        }
        if (OKV_FAILPOINT("kv.ack.before_commit")) {
            /* Planted bug: acknowledged before any quorum has the entry. */
            command_result fake;
            memset(&fake, 0, sizeof fake);
            fake.version = index;
            free(p);
            it->pcb(it->arg, OKV_OK, &fake, 0);
            return;
        }
        p->index = index;
        p->term = term;
        p->cb = it->pcb;
        p->arg = it->arg;
        track_prop(g, p);
        return;
    }
    pending_read *r = calloc(1, sizeof *r);
    if (!r) {
        it->rcb(it->arg, OKV_EUNAVAILABLE, 0);
        return;
    }
    r->ctx = ++rs->read_seq;
    r->cb = it->rcb;
    r->arg = it->arg;
    struct raft_status st;
    raft_status(g->node, &st);
    if (st.role == RAFT_LEADER) {
        r->issued_ms = now_ms_of(rs);
        r->lease_term = st.term;
        if (!it->round && r->issued_ms < atomic_load(&g->lease_until) &&
            st.term == g->lease_term && st.transferee == RAFT_NONE) {
            /* Leased: every write acknowledged so far is at or below the
             * commit index; only the apply is awaited (serve_reads). */
            r->index = st.commit ? st.commit : 1;
            r->issued_ms = 0;   /* extends nothing: no quorum answered */
            r->next = g->reads;
            g->reads = r;
            return;
        }
    }
    int rc = raft_read_index(g->node, r->ctx);
    if (rc) {
        free(r);
        it->rcb(it->arg, OKV_ENOTLEADER, leader_of(g));
        return;
    }
    r->next = g->reads;
    g->reads = r;
}

/* Keeps g->props in index order (settle_props relies on it). Proposals
 * arrive in index order within a term, but those of an earlier leadership
 * stay pending (their entries may still commit), and a node that leads
 * again proposes at indexes below them once its log was truncated. */
static void track_prop(grp *g, pending_prop *p)
{
    if (OKV_PLANTED(PLANT_PROPOSAL_ORDER) || !g->props_tail || g->props_tail->index <= p->index) {
        if (g->props_tail)
            g->props_tail->next = p;
        else
            g->props = p;
        g->props_tail = p;
        return;
    }
    pending_prop **pp = &g->props;
    while (*pp && (*pp)->index <= p->index)
        pp = &(*pp)->next;
    p->next = *pp;
    *pp = p;
}

/* A snapshot installed at `index` replaced the log up to it without
 * applying its entries here: a proposal at or below it may or may not be
 * in the state the snapshot brought, so its outcome is unknown (the
 * client resends with the same request id, which the exactly-once table
 * answers). */
static void settle_props_snapshot(grp *g, uint64_t index)
{
    if (OKV_PLANTED(PLANT_PROPOSAL_ORDER))
        return;
    while (g->props && g->props->index <= index) {
        pending_prop *p = g->props;
        g->props = p->next;
        if (!g->props)
            g->props_tail = NULL;
        p->cb(p->arg, OKV_EUNKNOWN, NULL, 0);
        free(p);
    }
}

/* Settles the proposals the entry at (index, term) decides. */
static void settle_props(grp *g, uint64_t index, uint64_t term, const command_result *r)
{
    while (g->props && g->props->index <= index) {
        pending_prop *p = g->props;
        g->props = p->next;
        if (!g->props)
            g->props_tail = NULL;
        if (p->index == index && p->term == term)
            p->cb(p->arg, OKV_OK, r, 0);
        else
            p->cb(p->arg, OKV_EUNAVAILABLE, NULL, 0);   /* its index went to another entry */
        free(p);
    }
}

/* Applies committed entries, recording each entry's result in results[]. */
static void apply_entries(raftstore *rs, grp *g, const struct raft_entry *ents, size_t n,
                          command_result *results)
{
    for (size_t i = 0; i < n; i++) {
        const struct raft_entry *e = &ents[i];
        memset(&results[i], 0, sizeof results[i]);
        if (e->type == RAFT_ENTRY_NORMAL && e->len > 0) {
            okv_error err;
            if (fsm_apply(rs->fsm, g->id, e->index, e->data, e->len, &results[i], &err) != OKV_OK) {
                char what[700];
                snprintf(what, sizeof what, "group %llu entry %llu: %s",
                         (unsigned long long)g->id, (unsigned long long)e->index, err.msg);
                fatal(rs, what);
            }
        } else {
            fsm_set_applied(rs->fsm, g->id, e->index);
        }
        if (rs->cfg.applied)
            rs->cfg.applied(rs->cfg.applied_ctx, g->id, e, &results[i]);
        g->applied = e->index;
    }
}

static void serve_reads(grp *g, int tick)
{
    pending_read **pp = &g->reads;
    while (*pp) {
        pending_read *r = *pp;
        if (tick)
            r->ticks++;
        if (r->index && g->applied >= r->index) {
            *pp = r->next;
            lease_extend(g, r);
            r->cb(r->arg, OKV_OK, 0);
            free(r);
        } else if (r->ticks > READ_TIMEOUT_TICKS) {
            *pp = r->next;
            r->cb(r->arg, OKV_EUNAVAILABLE, leader_of(g));
            free(r);
        } else {
            if (tick && !r->index && r->ticks % READ_RETRY_TICKS == 0) {
                /* The same context: an answer to any of the rounds asked
                 * for this read is a valid read point for it. */
                uint64_t ctx = OKV_PLANTED(PLANT_READ_RETRY_CTX) ? ++g->rs->read_seq : r->ctx;
                if (raft_read_index(g->node, ctx) == RAFT_OK)
                    r->ctx = ctx;
            }
            pp = &r->next;
        }
    }
}

static void note_read_states(grp *g, const struct raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_read_states; i++)
        for (pending_read *r = g->reads; r; r = r->next)
            if (r->ctx == rd->read_states[i].ctx)
                r->index = rd->read_states[i].index;
}

/* Invariant 6: a snapshot the core wants sent. Called only where every
 * applied entry is flushed and none of this iteration's is applied yet, so
 * RocksDB holds exactly g's state at g->applied: a RocksDB snapshot taken
 * now is the state the message's metadata describes. A snapshot that
 * cannot be offered now is dropped: the core asks again after an election
 * timeout without an acknowledgement. */
static void offer_snapshot(raftstore *rs, const grp *g, const struct raft_message *m)
{
    if (!rs->cfg.net.send_snapshot || g->rd.snapshot)
        return;   /* no sender; or installing one itself, so not at g->applied */
    struct raft_status st;
    raft_status(g->node, &st);
    uint64_t term;
    if (st.conf_index > g->applied || g->applied < m->snapshot.meta.index ||
        raft_term_at(g->node, g->applied, &term) != RAFT_OK)
        return;   /* the configuration as of applied is not at hand; next time */
    engine_snapshot *es;
    okv_error err;
    if (engine_snapshot_new(&es, rs->cfg.e, &err) != OKV_OK) {
        logf_(rs, 1, "group %llu: cannot take a RocksDB snapshot: %s", (unsigned long long)g->id,
              err.msg);
        return;
    }
    struct raft_message out = *m;
    out.entries = NULL;
    out.n_entries = 0;
    out.snapshot.meta.index = g->applied;
    out.snapshot.meta.term = term;
    out.snapshot.meta.conf = st.conf;
    out.snapshot.data = NULL;
    out.snapshot.len = 0;
    if (rs->cfg.net.send_snapshot(rs->cfg.net.ctx, m->to, g->id, &out, es) == 0) {
        atomic_fetch_add(&rs->snap_offered, 1);
        logf_(rs, 2, "group %u/%u: streaming a snapshot at index %llu to node %llu",
              (unsigned)(g->id >> 32), (unsigned)g->id, (unsigned long long)g->applied,
              (unsigned long long)m->to);
    }
}

static void send_all(raftstore *rs, const grp *g, const struct raft_message *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (m[i].type == RAFT_MSG_SNAPSHOT)
            offer_snapshot(rs, g, &m[i]);
        else
            rs->cfg.net.send(rs->cfg.net.ctx, m[i].to, g->id, &m[i]);
    }
}

static void publish_status(raftstore *rs)
{
    pthread_mutex_lock(&rs->status_mu);
    if (rs->nstatus != rs->ngroups) {
        free(rs->status);
        rs->status = calloc(rs->ngroups ? rs->ngroups : 1, sizeof *rs->status);
        rs->nstatus = rs->status ? rs->ngroups : 0;
    }
    for (size_t i = 0; i < rs->nstatus; i++) {
        rs->status[i].group = rs->groups[i]->id;
        raft_status(rs->groups[i]->node, &rs->status[i].st);
    }
    pthread_mutex_unlock(&rs->status_mu);
}

/* Invariant 5 (fsm_snapshot.h I1-I3): marker synced, files ingested, then
 * the log's snapshot record, the applied index and the marker's deletion
 * staged into the loop's one synced batch. Runs on the loop thread before
 * any of this Ready's entries are staged or applied, so no apply of the
 * group runs in between; readers on other threads see the data family
 * switch from the old state to the new one in one step (one ingest). Any
 * failure is fatal: the core already moved its log to the snapshot, and
 * the marker makes the restart finish (or refuse) the install. */
static void install_snapshot(raftstore *rs, grp *g, const struct raft_snapshot *snap)
{
    char name[FSM_SNAPSHOT_NAME_MAX + 1], dir[4400], what[5200];
    okv_error err;
    if (fsm_snapshot_desc_decode(snap->data, (size_t)snap->len, name) != FSM_SNAPSHOT_RECEIVED) {
        snprintf(what, sizeof what, "group %llu: a snapshot at %llu without its files reached "
                                    "the install", (unsigned long long)g->id,
                 (unsigned long long)snap->meta.index);
        fatal(rs, what);
    }
    snprintf(dir, sizeof dir, "%s/%s", rs->snap_root, name);
    uint64_t t0 = now_ms_of(rs);
    int rc = fsm_snapshot_mark_installing(rs->cfg.e, g->id, &snap->meta, name, &err);
    OKV_FAILPOINT("snap.install.after_mark");
    if (!rc)
        rc = fsm_snapshot_ingest(rs->cfg.e, dir, &err);
    if (rc) {
        snprintf(what, sizeof what, "group %llu: installing the snapshot at %llu from %s: %s",
                 (unsigned long long)g->id, (unsigned long long)snap->meta.index, dir, err.msg);
        fatal(rs, what);
    }
    OKV_FAILPOINT("snap.install.after_ingest");
    uint8_t desc[FSM_SNAPSHOT_DESC_MAX];
    struct raft_snapshot local = *snap;
    local.data = desc;
    local.len = fsm_snapshot_desc_encode(desc, FSM_SNAPSHOT_LOCAL, NULL);
    if (raftlog_stage_snapshot(g->log, rs->batch, &local) != 0)
        fatal(rs, raftlog_errmsg(g->log));
    fsm_snapshot_stage_installed(rs->batch, g->id, snap->meta.index);
    g->applied = snap->meta.index;
    settle_props_snapshot(g, snap->meta.index);
    atomic_fetch_add(&rs->snap_installed, 1);
    logf_(rs, 2, "group %u/%u: installed a snapshot at index %llu (streamed, %s; ingested in "
                 "%llu ms)",
          (unsigned)(g->id >> 32), (unsigned)g->id, (unsigned long long)snap->meta.index, name,
          (unsigned long long)(now_ms_of(rs) - t0));
}

/* Log compaction for one group that is due (see raftstore_config). Runs
 * between loop iterations, where every applied entry is flushed, so the
 * partition's state in RocksDB is exactly its state at g->applied. Only
 * applied (hence stable) entries are dropped, so a Ready the core may be
 * holding for its next handout is unaffected. */
static int maybe_snapshot(raftstore *rs, grp *g)
{
    if (rs->cfg.snapshot_entries < 0 ||
        g->applied < raftlog_snapshot_index(g->log) + (uint64_t)rs->cfg.snapshot_entries)
        return 0;
    struct raft_status st;
    raft_status(g->node, &st);
    if (st.conf_index > g->applied)
        return 0;   /* the configuration as of applied is not at hand; next time */
    /* The snapshot is a descriptor: the partition stays in RocksDB, and a
     * follower that needs it gets it streamed from a RocksDB snapshot
     * (offer_snapshot). So compaction costs one small synced write. */
    uint8_t data[FSM_SNAPSHOT_DESC_MAX];
    size_t len = fsm_snapshot_desc_encode(data, FSM_SNAPSHOT_LOCAL, NULL);
    okv_error err;
    uint64_t upto = g->applied > (uint64_t)rs->cfg.log_keep ? g->applied - (uint64_t)rs->cfg.log_keep
                                                           : 0;
    engine_batch_clear(rs->batch);
    int rc = raftlog_stage_save_snapshot(g->log, rs->batch, g->applied, &st.conf, data, len);
    if (!rc && upto > raftlog_first_index(g->log))
        rc = raftlog_stage_compact(g->log, rs->batch, upto, &st.conf);
    if (rc)
        fatal(rs, raftlog_errmsg(g->log));   /* the cache is staged: R2 */
    if (engine_write(rs->cfg.e, rs->batch, 1, &err) != OKV_OK)
        fatal(rs, err.msg);
    engine_batch_clear(rs->batch);
    atomic_fetch_add(&rs->snap_recorded, 1);
    logf_(rs, 2, "group %u/%u: snapshot recorded at %llu, log compacted to %llu",
          (unsigned)(g->id >> 32), (unsigned)g->id, (unsigned long long)g->applied,
          (unsigned long long)upto);
    return 1;
}

/* Steps 3 (up to the write) of the loop for every group with a Ready:
 * gathers the Readies, sends what may leave before the sync, stages the
 * synced batch. Returns 1 if any group had a Ready. */
static int readies_begin(raftstore *rs)
{
    engine_batch_clear(rs->batch);
    int any = 0;
    for (size_t i = 0; i < rs->ngroups; i++) {
        grp *g = rs->groups[i];
        lease_check(g);   /* ticks may have ended a leadership */
        g->has_rd = raft_has_ready(g->node);
        if (!g->has_rd)
            continue;
        any = 1;
        track_leadership(rs, g);
        raft_ready(g->node, &g->rd);
        const struct raft_ready *rd = &g->rd;
        /* raftstore_lease_read: published before any message carrying the
         * new commit index can leave. */
        if (rd->hs_changed && rd->hs.commit > atomic_load(&g->commit_seen))
            atomic_store(&g->commit_seen, rd->hs.commit);
        send_all(rs, g, rd->msgs, rd->n_msgs);
        int rc = 0;
        if (rd->snapshot)
            install_snapshot(rs, g, rd->snapshot);
        if (rd->n_entries)
            rc = raftlog_stage_entries(g->log, rs->batch, rd->entries, rd->n_entries);
        if (!rc && rd->hs_changed)
            rc = raftlog_stage_hard_state(g->log, rs->batch, &rd->hs);
        if (rc)
            fatal(rs, raftlog_errmsg(g->log));
    }
    /* Messages that need no sync (the leader's appends, votes asked for)
     * leave now, so followers write while we do: the leader's fsync and
     * the replication round trip overlap. */
    if (any)
        rs->cfg.net.flush(rs->cfg.net.ctx);
    return any;
}

/* Steps 3 (the write) to 6 for every group with a Ready. */
static void readies_end(raftstore *rs, int tick)
{
    if (engine_batch_count(rs->batch)) {
        okv_error err;
        OKV_FAILPOINT("raft.persist.before_sync");
        if (engine_write(rs->cfg.e, rs->batch, 1, &err) != OKV_OK)
            fatal(rs, err.msg);   /* invariant 3 */
        OKV_FAILPOINT("raft.persist.after_sync");
    }
    /* The snapshots stepped before this Ready are installed (durably) or
     * were turned down: their files are no longer needed. */
    for (size_t i = 0; i < rs->ngroups; i++) {
        grp *g = rs->groups[i];
        if (!g->has_rd)
            continue;
        for (size_t k = 0; k < g->n_recv_dirs; k++)
            remove_snap_dir(rs, g->recv_dirs[k]);
        g->n_recv_dirs = 0;
    }
    for (size_t i = 0; i < rs->ngroups; i++) {
        grp *g = rs->groups[i];
        if (g->has_rd)
            send_all(rs, g, g->rd.msgs_after_persist, g->rd.n_msgs_after_persist);
    }
    rs->cfg.net.flush(rs->cfg.net.ctx);

    /* Apply everything, make it visible (flush), then answer. */
    size_t total = 0;
    for (size_t i = 0; i < rs->ngroups; i++)
        if (rs->groups[i]->has_rd)
            total += rs->groups[i]->rd.n_committed;
    command_result *results = total ? calloc(total, sizeof *results) : NULL;
    if (total && !results)
        fatal(rs, "out of memory applying entries");
    size_t off = 0;
    for (size_t i = 0; i < rs->ngroups; i++) {
        grp *g = rs->groups[i];
        if (g->has_rd && g->rd.n_committed) {
            apply_entries(rs, g, g->rd.committed, g->rd.n_committed, results + off);
            off += g->rd.n_committed;
        }
    }
    okv_error err;
    if (fsm_pending(rs->fsm) && fsm_flush(rs->fsm, &err) != OKV_OK)
        fatal(rs, err.msg);
    off = 0;
    for (size_t i = 0; i < rs->ngroups; i++) {
        grp *g = rs->groups[i];
        if (g->has_rd) {
            atomic_store(&g->applied_pub, g->applied);   /* flushed above */
            for (size_t k = 0; k < g->rd.n_committed; k++)
                settle_props(g, g->rd.committed[k].index, g->rd.committed[k].term,
                             &results[off + k]);
            off += g->rd.n_committed;
            note_read_states(g, &g->rd);
            raft_advance(g->node);
            g->has_rd = 0;
        }
        serve_reads(g, tick);
    }
    free(results);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int any_ready(raftstore *rs)
{
    for (size_t i = 0; i < rs->ngroups; i++)
        if (raft_has_ready(rs->groups[i]->node))
            return 1;
    return 0;
}

/* A hand-back is worth asking for only when the target has every entry
 * the leader has: the core sends TIMEOUT_NOW only then, and refuses
 * proposals until it does (or the transfer aborts after an election
 * timeout). Asking for a lagging target would refuse this group's writes
 * for an election timeout every time. */
static int caught_up(const grp *g, uint64_t to, const struct raft_status *st)
{
    uint64_t match = 0;
    if (OKV_PLANTED(PLANT_REBALANCE_LAGGING))
        return 1;
    return raft_peer_match(g->node, to, &match) == RAFT_OK && match >= st->last_index;
}

/* Counts a pass for every group's hand-back wait (see grp). */
static void rebalance_pass(grp *g)
{
    if (g->rebalance_wait > 0)
        g->rebalance_wait--;
    if (++g->rebalance_quiet >= 64) {
        g->rebalance_quiet = 0;
        g->rebalance_backoff /= 2;
    }
}

/* Hands groups this node leads back to their preferred leaders (see
 * raftstore_config). One group per pass, so leadership moves gradually and
 * a slow catch-up of one target never blocks many groups at once.
 *
 * A preferred leader that cannot keep the leadership (a failing disk, a
 * slow link: it loses it again to an election, or its TIMEOUT_NOW comes
 * after the abort) would otherwise get it handed back every pass, and the
 * group would spend its time in transfers and elections that refuse
 * writes. So each hand-back doubles the wait before this node hands the
 * group back again (1, 2, 4 ... 32 passes), kept across leaderships and
 * halved every 64 passes without a hand-back. */
static void rebalance(raftstore *rs)
{
    if (!rs->cfg.preferred_leader || !rs->cfg.peer_alive)
        return;
    for (size_t i = 0; i < rs->ngroups; i++)
        rebalance_pass(rs->groups[i]);
    for (size_t i = 0; i < rs->ngroups; i++) {
        grp *g = rs->groups[i];
        struct raft_status st;
        raft_status(g->node, &st);
        if (st.role != RAFT_LEADER ||
            (g->rebalance_wait > 0 && !OKV_PLANTED(PLANT_REBALANCE_LAGGING)))
            continue;
        if (st.transferee != RAFT_NONE || (g->transfer_term && st.term == g->transfer_term + 1))
            continue;
        uint64_t want = rs->cfg.preferred_leader(rs->cfg.balance_ctx, g->id);
        if (!want || want == rs->cfg.node_id || !rs->cfg.peer_alive(rs->cfg.balance_ctx, want) ||
            !caught_up(g, want, &st))
            continue;
        atomic_store(&g->lease_until, 0);   /* as in handle_item's ITEM_TRANSFER */
        if (!OKV_PLANTED(PLANT_LATE_TIMEOUT_NOW))
            g->no_lease_term = st.term;
        if (raft_transfer_leader(g->node, want) == RAFT_OK) {
            g->rebalance_backoff = g->rebalance_backoff ? g->rebalance_backoff * 2 : 1;
            if (g->rebalance_backoff > 32)
                g->rebalance_backoff = 32;
            g->rebalance_wait = g->rebalance_backoff;
            g->rebalance_quiet = 0;
            logf_(rs, 2, "group %u/%u: handing leadership back to preferred node %llu",
                  (unsigned)(g->id >> 32), (unsigned)g->id, (unsigned long long)want);
            return;
        }
    }
}

/* Drains a queue taken at stop so every callback is called once. */
static void drain_stopped(raftstore *rs, item *list)
{
    while (list) {
        item *next = list->next;
        if (list->kind == ITEM_SNAP && !rs->crashed) {
            char name[FSM_SNAPSHOT_NAME_MAX + 1];
            if (fsm_snapshot_desc_decode(list->msg.snapshot.data, (size_t)list->msg.snapshot.len,
                                         name) == FSM_SNAPSHOT_RECEIVED)
                remove_snap_dir(rs, name);
        }
        if (list->kind == ITEM_MSG || list->kind == ITEM_SNAP)
            raft_message_release(&list->msg);
        else if (list->kind == ITEM_PROPOSE)
            list->pcb(list->arg, OKV_EUNAVAILABLE, NULL, 0);
        else if (list->kind == ITEM_READ)
            list->rcb(list->arg, OKV_EUNAVAILABLE, 0);
        free(list->cmd);
        free(list);
        list = next;
    }
}

/* Steps 1-2 and the first half of 3 on a queue already taken. */
static int step_begin_with(raftstore *rs, item *list)
{
    while (list) {
        item *next = list->next;
        handle_item(rs, list);
        free(list->cmd);
        free(list);
        list = next;
    }
    int tick = 0;
    uint64_t now = now_ms_of(rs);
    if (now >= rs->next_tick) {
        rs->ticks++;
        for (size_t i = 0; i < rs->ngroups; i++) {
            raft_tick(rs->groups[i]->node);
            track_leadership(rs, rs->groups[i]);
        }
        rs->next_tick += (uint64_t)rs->cfg.tick_ms;
        if (rs->next_tick < now)   /* fell behind: do not burst ticks */
            rs->next_tick = now + (uint64_t)rs->cfg.tick_ms;
        tick = 1;
        for (size_t i = 0; i < rs->ngroups; i++) {
            grp *g = rs->groups[(rs->snap_cursor + i) % rs->ngroups];
            if (maybe_snapshot(rs, g)) {
                rs->snap_cursor = (rs->snap_cursor + i + 1) % rs->ngroups;
                break;
            }
        }
        if (++rs->ticks_since_rebalance >= rs->cfg.rebalance_ticks) {
            rs->ticks_since_rebalance = 0;
            rebalance(rs);
        }
    }
    if (!tick && !any_ready(rs))
        return 0;
    rs->iter_tick = tick;
    rs->iter_open = 1;
    readies_begin(rs);
    return 1;
}

int raftstore_step_begin(raftstore *rs)
{
    if (rs->iter_open)
        return 1;
    pthread_mutex_lock(&rs->mu);
    item *list = rs->inbox;
    rs->inbox = rs->inbox_tail = NULL;
    pthread_mutex_unlock(&rs->mu);
    return step_begin_with(rs, list);
}

void raftstore_step_end(raftstore *rs)
{
    if (!rs->iter_open)
        return;
    readies_end(rs, rs->iter_tick);
    rs->iter_open = 0;
    /* Status is for admins and routing hints: a tick old is fresh enough,
     * and copying it on every iteration would tax the loop. */
    if (rs->iter_tick)
        publish_status(rs);
}

uint64_t raftstore_next_tick_ms(const raftstore *rs)
{
    return rs->next_tick;
}

static void *loop_main(void *arg)
{
    raftstore *rs = arg;
    for (;;) {
        pthread_mutex_lock(&rs->mu);
        while (!rs->inbox && !rs->stopping && now_ms_of(rs) < rs->next_tick) {
            uint64_t wait = rs->next_tick - now_ms_of(rs);
            struct timespec dl;
            clock_gettime(CLOCK_MONOTONIC, &dl);
            dl.tv_sec += (time_t)(wait / 1000);
            dl.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&rs->cv, &rs->mu, &dl);
        }
        int stop = rs->stopping;
        item *list = rs->inbox;
        rs->inbox = rs->inbox_tail = NULL;
        pthread_mutex_unlock(&rs->mu);
        if (stop) {
            drain_stopped(rs, list);
            break;
        }
        if (step_begin_with(rs, list))
            raftstore_step_end(rs);
    }
    return NULL;
}

/* Campaigns for the brand-new groups the host prefers (raftstore.h). */
static void first_campaigns(raftstore *rs, int (*campaign)(void *ctx, uint64_t group), void *ctx)
{
    if (!campaign)
        return;
    for (size_t i = 0; i < rs->ngroups; i++) {
        struct raft_status st;
        raft_status(rs->groups[i]->node, &st);
        if ((st.term == 0 || OKV_PLANTED(PLANT_RESTART_CAMPAIGN)) &&
            campaign(ctx, rs->groups[i]->id))
            raft_campaign(rs->groups[i]->node);
    }
}

int raftstore_start_manual(raftstore *rs, int (*campaign)(void *ctx, uint64_t group), void *ctx,
                           okv_error *err)
{
    (void)err;
    first_campaigns(rs, campaign, ctx);
    for (size_t i = 0; i < rs->ngroups; i++) {
        struct raft_status st;
        raft_status(rs->groups[i]->node, &st);
        atomic_store(&rs->groups[i]->commit_seen, st.commit);
        atomic_store(&rs->groups[i]->applied_pub, rs->groups[i]->applied);
    }
    rs->next_tick = now_ms_of(rs) + (uint64_t)rs->cfg.tick_ms;
    publish_status(rs);
    return OKV_OK;
}

int raftstore_start(raftstore *rs, int (*campaign)(void *ctx, uint64_t group), void *ctx,
                    okv_error *err)
{
    raftstore_start_manual(rs, campaign, ctx, err);
    if (pthread_create(&rs->thread, NULL, loop_main, rs) != 0)
        return okv_error_set(err, OKV_EINTERNAL, "cannot start the raft loop thread");
    rs->started = 1;
    return OKV_OK;
}

void raftstore_free_crashed(raftstore *rs)
{
    if (!rs)
        return;
    rs->crashed = 1;
    raftstore_free(rs);
}

void raftstore_free(raftstore *rs)
{
    if (!rs)
        return;
    pthread_mutex_lock(&rs->mu);
    rs->stopping = 1;
    pthread_cond_signal(&rs->cv);
    item *left = rs->inbox;   /* only without a loop thread (step mode) */
    rs->inbox = rs->inbox_tail = NULL;
    pthread_mutex_unlock(&rs->mu);
    if (rs->started)
        pthread_join(rs->thread, NULL);
    drain_stopped(rs, left);
    for (size_t i = 0; i < rs->ngroups; i++) {
        grp *g = rs->groups[i];
        while (g->props) {
            pending_prop *p = g->props;
            g->props = p->next;
            p->cb(p->arg, OKV_EUNKNOWN, NULL, 0);   /* its entry may still commit */
            free(p);
        }
        while (g->reads) {
            pending_read *r = g->reads;
            g->reads = r->next;
            r->cb(r->arg, OKV_EUNAVAILABLE, 0);
            free(r);
        }
        for (size_t k = 0; k < g->n_recv_dirs && !rs->crashed; k++)
            remove_snap_dir(rs, g->recv_dirs[k]);
        free(g->recv_dirs);
        raft_free(g->node);
        raftlog_free(g->log);
        free(g);
    }
    free(rs->groups);
    fsm_free(rs->fsm);
    engine_batch_free(rs->batch);
    free(rs->status);
    pthread_mutex_destroy(&rs->mu);
    pthread_cond_destroy(&rs->cv);
    pthread_mutex_destroy(&rs->status_mu);
    free(rs);
}

int raftstore_transfer_leader(raftstore *rs, uint64_t group, uint64_t to)
{
    item *it = calloc(1, sizeof *it);
    if (!it)
        return OKV_ENOMEM;
    it->kind = ITEM_TRANSFER;
    it->group = group;
    it->to = to;
    push(rs, it);
    return OKV_OK;
}

size_t raftstore_groups(raftstore *rs, raftstore_group_info *out, size_t cap)
{
    pthread_mutex_lock(&rs->status_mu);
    size_t n = rs->nstatus;
    for (size_t i = 0; i < n && i < cap; i++)
        out[i] = rs->status[i];
    pthread_mutex_unlock(&rs->status_mu);
    return n;
}

uint64_t raftstore_leader(raftstore *rs, uint64_t group)
{
    uint64_t leader = 0;
    pthread_mutex_lock(&rs->status_mu);
    for (size_t i = 0; i < rs->nstatus; i++)
        if (rs->status[i].group == group)
            leader = rs->status[i].st.leader;
    pthread_mutex_unlock(&rs->status_mu);
    return leader;
}

void raftstore_snap_stats_get(raftstore *rs, struct raftstore_snap_stats *out)
{
    out->recorded = atomic_load(&rs->snap_recorded);
    out->offered = atomic_load(&rs->snap_offered);
    out->installed = atomic_load(&rs->snap_installed);
    out->recovered = atomic_load(&rs->snap_recovered);
}
