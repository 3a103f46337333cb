/*
 * raftstore.c — the loop (raftstore.h); the other concerns are in the
 * raftstore_*.c files listed in raftstore_int.h.
 */
#include "thread_name.h"
#include "raftstore_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failpoint.h"
#include "trace.h"
#include "planted.h"
#include "raftlog.h"

static uint64_t mono_ms(void);
static void drain_stopped(raftstore *rs, item *list);

uint64_t rs_now_ms(const raftstore *rs)
{
    return rs->cfg.now_ms ? rs->cfg.now_ms(rs->cfg.clock_ctx) : mono_ms();
}

void rs_logf(raftstore *rs, int level, const char *fmt, ...)
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
void rs_fatal(raftstore *rs, const char *what)
{
    rs_logf(rs, 0, "fatal: %s", what);
    if (rs->cfg.fatal)
        rs->cfg.fatal(rs->cfg.fatal_ctx, what);
    fprintf(stderr, "orderkvd: fatal: %s\n", what);
    abort();
}

grp *rs_find_group(raftstore *rs, uint64_t id)
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
    rs_logf(g->rs, level == RAFT_LOG_WARN ? 1 : level == RAFT_LOG_INFO ? 2 : 3,
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
        rs_logf(rs, 0, "cannot open raft group %llu: %s", (unsigned long long)id, err.msg);
        raft_free(g->node);
        raftlog_free(g->log);
        free(g);
        return OKV_ECORRUPT;
    }
    return 0;
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
        rc = rs_recover_snapshots(rs, err);
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
    if (rs_find_group(rs, id))
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

void rs_push(raftstore *rs, item *it)
{
    it->next = NULL;
    it->queued_ns = OKV_TRACE_NOW();
    pthread_mutex_lock(&rs->mu);
    if (rs->stopping) {
        pthread_mutex_unlock(&rs->mu);
        if (it->kind == ITEM_MSG)
            raft_message_release(&it->msg);
        else if (it->kind == ITEM_PROPOSE)
            it->pcb(it->arg, OKV_EUNAVAILABLE, NULL, 0);
        else if (it->kind == ITEM_READ)
            it->rcb(it->arg, OKV_EUNAVAILABLE, 0);
        else if (it->kind == ITEM_CUT)
            it->ccb(it->arg, OKV_EUNAVAILABLE, NULL, 0, 0, 0);
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
    rs_push(rs, it);
}

int raftstore_receive_snapshot(raftstore *rs, uint64_t group, struct raft_message *m)
{
    item *it = calloc(1, sizeof *it);
    if (!it)
        return OKV_ENOMEM;
    it->kind = ITEM_SNAP;
    it->group = group;
    it->msg = *m;
    rs_push(rs, it);
    return OKV_OK;
}

/* ---- the loop --------------------------------------------------------------- */

uint64_t rs_leader_of(const grp *g)
{
    struct raft_status st;
    raft_status(g->node, &st);
    return st.leader;
}

static void handle_item(raftstore *rs, item *it)
{
    grp *g = rs_find_group(rs, it->group);
    if (it->kind == ITEM_SNAP) {
        rs_step_snapshot(rs, g, it);
        return;
    }
    if (it->kind == ITEM_MSG && it->msg.type == RAFT_MSG_SNAPSHOT) {
        /* Snapshots arrive only whole, through the snapshot receiver; one on
         * the transport comes from a node that predates streamed snapshots,
         * and its data is not something this node can install. */
        uint64_t n = ++rs->transport_snaps;
        if ((n & (n - 1)) == 0)
            rs_logf(rs, 1, "group %llu: a snapshot from node %llu came over the transport and was "
                         "dropped (%llu so far); is that node running an older orderkvd?",
                  (unsigned long long)it->group, (unsigned long long)it->msg.from,
                  (unsigned long long)n);
        raft_message_release(&it->msg);
        return;
    }
    if (it->kind == ITEM_MSG) {
        if (g && it->msg.type == RAFT_MSG_TIMEOUT_NOW && it->msg.ctx == RS_CTX_HANDBACK &&
            rs_refuses_handback(rs, g) && !OKV_PLANTED(PLANT_REBALANCE_LAGGING)) {
            rs_logf(rs, 1, "group %u/%u: turned down a leadership hand-back from node %llu: this "
                         "node lost the leadership %llu ticks ago",
                  (unsigned)(g->id >> 32), (unsigned)g->id, (unsigned long long)it->msg.from,
                  (unsigned long long)(rs->ticks - g->lost_lead_tick));
            raft_message_release(&it->msg);
            return;
        }
        if (g && it->msg.type == RAFT_MSG_TIMEOUT_NOW)
            g->transfer_term = it->msg.term;
        if (OKV_TRACING && g) {
            if (it->msg.type == RAFT_MSG_APPEND && it->msg.n_entries)
                OKV_TRACE(rs->cfg.node_id, "recv_append", g->id,
                          it->msg.index + it->msg.n_entries, it->queued_ns);
            else if (it->msg.type == RAFT_MSG_APPEND_RESP)
                OKV_TRACE(rs->cfg.node_id, "recv_ack", g->id, it->msg.index, it->queued_ns);
        }
        if (g) {
            raft_step(g->node, &it->msg);
            rs_lease_check(g);
        }
        raft_message_release(&it->msg);
        return;
    }
    if (!g) {
        if (it->kind == ITEM_PROPOSE)
            it->pcb(it->arg, OKV_ENOTFOUND, NULL, 0);
        else if (it->kind == ITEM_READ)
            it->rcb(it->arg, OKV_ENOTFOUND, 0);
        else if (it->kind == ITEM_CUT)
            it->ccb(it->arg, OKV_ENOTFOUND, NULL, 0, 0, 0);
        return;
    }
    if (it->kind == ITEM_CUT) {
        rs_cut(rs, g, it);
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
        g->handback_term = 0;
        int rc = raft_transfer_leader(g->node, it->to);
        if (rc)
            rs_logf(rs, 1, "transfer of group %llu to node %llu refused: %s",
                  (unsigned long long)g->id, (unsigned long long)it->to, raft_strerror(rc));
        return;
    }
    if (it->kind == ITEM_PROPOSE)
        rs_propose_start(rs, g, it);
    else
        rs_read_start(rs, g, it);
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
                rs_fatal(rs, what);
            }
        } else {
            fsm_set_applied(rs->fsm, g->id, e->index);
        }
        if (rs->cfg.applied)
            rs->cfg.applied(rs->cfg.applied_ctx, g->id, e, &results[i]);
        g->applied = e->index;
    }
}

static void send_all(raftstore *rs, const grp *g, const struct raft_message *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (m[i].type == RAFT_MSG_SNAPSHOT) {
            rs_offer_snapshot(rs, g, &m[i]);
        } else if (m[i].type == RAFT_MSG_TIMEOUT_NOW && g->handback_term == m[i].term) {
            struct raft_message h = m[i];
            h.ctx = RS_CTX_HANDBACK;
            rs->cfg.net.send(rs->cfg.net.ctx, h.to, g->id, &h);
        } else
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
        /* A group's leader as seen at two ticks in a row: a new known one
         * is a change (one within a tick goes uncounted). */
        uint64_t before = rs->status[i].group == rs->groups[i]->id ? rs->status[i].st.leader : 0;
        rs->status[i].group = rs->groups[i]->id;
        raftstore_group_info *gi = &rs->status[i];
        raft_status(rs->groups[i]->node, &gi->st);
        memset(gi->match, 0, sizeof gi->match);
        if (gi->st.role == RAFT_LEADER)
            for (uint32_t v = 0; v < gi->st.conf.n_voters && v < RAFT_MAX_NODES; v++)
                raft_peer_match(rs->groups[i]->node, gi->st.conf.voters[v], &gi->match[v]);
        if (gi->st.leader != RAFT_NONE && gi->st.leader != before) {
            atomic_fetch_add_explicit(&rs->io_leader_changes, 1, memory_order_relaxed);
            rs->lhist[rs->lhist_next] = (struct raftstore_leader_change){
                rs_now_ms(rs), gi->group, gi->st.leader, gi->st.term
            };
            rs->lhist_next = (rs->lhist_next + 1) % RAFTSTORE_LEADER_HISTORY;
            if (rs->lhist_n < RAFTSTORE_LEADER_HISTORY)
                rs->lhist_n++;
        }
    }
    pthread_mutex_unlock(&rs->status_mu);
}

/* Steps 3 (up to the write) of the loop for every group with a Ready:
 * gathers the Readies, sends what may leave before the sync, stages the
 * synced batch. Returns 1 if any group had a Ready. */
static int readies_begin(raftstore *rs)
{
    engine_batch_clear(rs->batch);
    rs->must_sync = 0;
    int any = 0;
    for (size_t i = 0; i < rs->ngroups; i++) {
        grp *g = rs->groups[i];
        rs_lease_check(g);   /* ticks may have ended a leadership */
        g->has_rd = raft_has_ready(g->node);
        if (!g->has_rd)
            continue;
        any = 1;
        rs_track_leadership(rs, g);
        raft_ready(g->node, &g->rd);
        const struct raft_ready *rd = &g->rd;
        /* raftstore_lease_read: published before any message carrying the
         * new commit index can leave. */
        if (rd->hs_changed && rd->hs.commit > atomic_load(&g->commit_seen))
            atomic_store(&g->commit_seen, rd->hs.commit);
        send_all(rs, g, rd->msgs, rd->n_msgs);
        int rc = 0;
        /* What Raft needs on disk before messages that depend on it leave
         * (msgs_after_persist): new entries, a snapshot, a new term or
         * vote. A hard state that only moves the commit index does not
         * (the commit index is volatile in Raft; a restarted node learns
         * it again from the leader), and at one write in flight every
         * commit would otherwise cost the leader a second fsync before it
         * could apply and answer. Written unsynced, it still lands in the
         * WAL before anything applied after it (RocksDB recovers a prefix
         * of the WAL), so applied never passes the stored commit. */
        if (rd->snapshot || rd->n_entries ||
            (rd->hs_changed && !OKV_PLANTED(PLANT_VOTE_NOSYNC) &&
             (!g->hs_known || rd->hs.term != g->hs_term || rd->hs.vote != g->hs_vote)))
            rs->must_sync = 1;
        if (rd->snapshot)
            rs_install_snapshot(rs, g, rd->snapshot);
        if (rd->n_entries) {
            OKV_TRACE(rs->cfg.node_id, "append", g->id, rd->entries[rd->n_entries - 1].index, 0);
            rc = raftlog_stage_entries(g->log, rs->batch, rd->entries, rd->n_entries);
            atomic_fetch_add_explicit(&rs->io_entries_synced, rd->n_entries,
                                      memory_order_relaxed);
        }
        if (!rc && rd->hs_changed) {
            rc = raftlog_stage_hard_state(g->log, rs->batch, &rd->hs);
            g->hs_term = rd->hs.term;
            g->hs_vote = rd->hs.vote;
            g->hs_known = 1;
        }
        if (rc)
            rs_fatal(rs, raftlog_errmsg(g->log));
    }
    /* Messages that need no sync (the leader's appends, votes asked for)
     * leave now, so followers write while we do: the leader's fsync and
     * the replication round trip overlap. */
    if (any)
        rs->cfg.net.flush(rs->cfg.net.ctx);
    return any;
}

/* trace.h: event for the last new entry of every group with a Ready (that
 * answers someone for them, if answering). */
static void trace_entries(raftstore *rs, const char *event, int answering)
{
    for (size_t i = 0; i < rs->ngroups; i++) {
        const grp *g = rs->groups[i];
        if (g->has_rd && g->rd.n_entries && (!answering || g->rd.n_msgs_after_persist))
            OKV_TRACE(rs->cfg.node_id, event, g->id,
                      g->rd.entries[g->rd.n_entries - 1].index, 0);
    }
}

/* Steps 3 (the write) to 6 for every group with a Ready. */
static void readies_end(raftstore *rs, int tick)
{
    if (engine_batch_count(rs->batch)) {
        okv_error err;
        OKV_FAILPOINT("raft.persist.before_sync");
        if (engine_write(rs->cfg.e, rs->batch, rs->must_sync, &err) != OKV_OK)
            rs_fatal(rs, err.msg);   /* invariant 3 */
        if (rs->must_sync)
            atomic_fetch_add_explicit(&rs->io_syncs, 1, memory_order_relaxed);
        OKV_FAILPOINT("raft.persist.after_sync");
        if (OKV_TRACING)
            trace_entries(rs, "synced", 0);
    }
    /* The snapshots stepped before this Ready are installed (durably) or
     * were turned down: their files are no longer needed. */
    for (size_t i = 0; i < rs->ngroups; i++) {
        grp *g = rs->groups[i];
        if (!g->has_rd)
            continue;
        for (size_t k = 0; k < g->n_recv_dirs; k++)
            rs_remove_snap_dir(rs, g->recv_dirs[k]);
        g->n_recv_dirs = 0;
    }
    for (size_t i = 0; i < rs->ngroups; i++) {
        grp *g = rs->groups[i];
        if (g->has_rd)
            send_all(rs, g, g->rd.msgs_after_persist, g->rd.n_msgs_after_persist);
    }
    rs->cfg.net.flush(rs->cfg.net.ctx);
    if (OKV_TRACING)
        trace_entries(rs, "answered", 1);

    /* Apply everything, make it visible (flush), then answer. */
    size_t total = 0;
    for (size_t i = 0; i < rs->ngroups; i++)
        if (rs->groups[i]->has_rd)
            total += rs->groups[i]->rd.n_committed;
    command_result *results = total ? calloc(total, sizeof *results) : NULL;
    if (total && !results)
        rs_fatal(rs, "out of memory applying entries");
    size_t off = 0;
    for (size_t i = 0; i < rs->ngroups; i++) {
        grp *g = rs->groups[i];
        if (g->has_rd && g->rd.n_committed) {
            apply_entries(rs, g, g->rd.committed, g->rd.n_committed, results + off);
            atomic_fetch_add_explicit(&rs->io_entries_applied, g->rd.n_committed,
                                      memory_order_relaxed);
            off += g->rd.n_committed;
        }
    }
    okv_error err;
    if (fsm_pending(rs->fsm) && fsm_flush(rs->fsm, &err) != OKV_OK)
        rs_fatal(rs, err.msg);
    off = 0;
    for (size_t i = 0; i < rs->ngroups; i++) {
        grp *g = rs->groups[i];
        if (g->has_rd) {
            atomic_store(&g->applied_pub, g->applied);   /* flushed above */
            if (g->rd.n_committed)
                OKV_TRACE(rs->cfg.node_id, "applied", g->id,
                          g->rd.committed[g->rd.n_committed - 1].index, 0);
            for (size_t k = 0; k < g->rd.n_committed; k++)
                rs_settle_props(g, g->rd.committed[k].index, g->rd.committed[k].term,
                             &results[off + k]);
            off += g->rd.n_committed;
            rs_note_read_states(g, &g->rd);
            raft_advance(g->node);
            g->has_rd = 0;
        }
        rs_serve_reads(g, tick);
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

/* Drains a queue taken at stop so every callback is called once. */
static void drain_stopped(raftstore *rs, item *list)
{
    while (list) {
        item *next = list->next;
        if (list->kind == ITEM_SNAP && !rs->crashed) {
            char name[FSM_SNAPSHOT_NAME_MAX + 1];
            if (fsm_snapshot_desc_decode(list->msg.snapshot.data, (size_t)list->msg.snapshot.len,
                                         name) == FSM_SNAPSHOT_RECEIVED)
                rs_remove_snap_dir(rs, name);
        }
        if (list->kind == ITEM_MSG || list->kind == ITEM_SNAP)
            raft_message_release(&list->msg);
        else if (list->kind == ITEM_PROPOSE)
            list->pcb(list->arg, OKV_EUNAVAILABLE, NULL, 0);
        else if (list->kind == ITEM_READ)
            list->rcb(list->arg, OKV_EUNAVAILABLE, 0);
        else if (list->kind == ITEM_CUT)
            list->ccb(list->arg, OKV_EUNAVAILABLE, NULL, 0, 0, 0);
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
    uint64_t now = rs_now_ms(rs);
    if (now >= rs->next_tick) {
        rs->ticks++;
        for (size_t i = 0; i < rs->ngroups; i++) {
            raft_tick(rs->groups[i]->node);
            rs_track_leadership(rs, rs->groups[i]);
        }
        rs->next_tick += (uint64_t)rs->cfg.tick_ms;
        if (rs->next_tick < now)   /* fell behind: do not burst ticks */
            rs->next_tick = now + (uint64_t)rs->cfg.tick_ms;
        tick = 1;
        for (size_t i = 0; i < rs->ngroups; i++) {
            grp *g = rs->groups[(rs->snap_cursor + i) % rs->ngroups];
            if (rs_maybe_snapshot(rs, g)) {
                rs->snap_cursor = (rs->snap_cursor + i + 1) % rs->ngroups;
                break;
            }
        }
        if (++rs->ticks_since_rebalance >= rs->cfg.rebalance_ticks) {
            rs->ticks_since_rebalance = 0;
            rs_rebalance(rs);
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
    okv_thread_name("okv-raft");
    raftstore *rs = arg;
    for (;;) {
        pthread_mutex_lock(&rs->mu);
        while (!rs->inbox && !rs->stopping && rs_now_ms(rs) < rs->next_tick) {
            uint64_t wait = rs->next_tick - rs_now_ms(rs);
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
            campaign(ctx, rs->groups[i]->id)) {
            /* Through pre-vote: a node restarted with an empty data dir
             * is at term 0 too, and must not depose a running leader. */
            if (OKV_PLANTED(PLANT_RESTART_CAMPAIGN))
                raft_campaign(rs->groups[i]->node);
            else
                raft_campaign_prevote(rs->groups[i]->node);
        }
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
    rs->next_tick = rs_now_ms(rs) + (uint64_t)rs->cfg.tick_ms;
    rs->read_seq = OKV_PLANTED(PLANT_READ_CTX_RESET) ? 0 : rs_now_ms(rs) << 16;
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
            rs_remove_snap_dir(rs, g->recv_dirs[k]);
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

void raftstore_cut(raftstore *rs, uint64_t group, raftstore_cut_cb cb, void *arg)
{
    item *it = calloc(1, sizeof *it);
    if (!it) {
        cb(arg, OKV_EUNAVAILABLE, NULL, 0, 0, 0);
        return;
    }
    it->kind = ITEM_CUT;
    it->group = group;
    it->ccb = cb;
    it->arg = arg;
    rs_push(rs, it);
}

int raftstore_transfer_leader(raftstore *rs, uint64_t group, uint64_t to)
{
    item *it = calloc(1, sizeof *it);
    if (!it)
        return OKV_ENOMEM;
    it->kind = ITEM_TRANSFER;
    it->group = group;
    it->to = to;
    rs_push(rs, it);
    return OKV_OK;
}

size_t raftstore_groups(raftstore *rs, raftstore_group_info *out, size_t cap)
{
    pthread_mutex_lock(&rs->status_mu);
    size_t n = rs->nstatus;
    if (out) {
        n = n < cap ? n : cap;
        for (size_t i = 0; i < n; i++)
            out[i] = rs->status[i];
    }
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

size_t raftstore_leader_history(raftstore *rs, struct raftstore_leader_change *out, size_t cap)
{
    pthread_mutex_lock(&rs->status_mu);
    size_t n = rs->lhist_n < cap ? rs->lhist_n : cap;
    for (size_t k = 0; k < n; k++)
        out[k] = rs->lhist[(rs->lhist_next + RAFTSTORE_LEADER_HISTORY - 1 - k) %
                           RAFTSTORE_LEADER_HISTORY];
    pthread_mutex_unlock(&rs->status_mu);
    return n;
}

void raftstore_snap_stats_get(raftstore *rs, struct raftstore_snap_stats *out)
{
    out->recorded = atomic_load(&rs->snap_recorded);
    out->offered = atomic_load(&rs->snap_offered);
    out->installed = atomic_load(&rs->snap_installed);
    out->recovered = atomic_load(&rs->snap_recovered);
}

void raftstore_io_stats_get(raftstore *rs, struct raftstore_io_stats *out)
{
    out->syncs = atomic_load(&rs->io_syncs);
    out->entries_synced = atomic_load(&rs->io_entries_synced);
    out->entries_applied = atomic_load(&rs->io_entries_applied);
    out->proposals = atomic_load(&rs->io_proposals);
    out->leader_changes = atomic_load(&rs->io_leader_changes);
}
