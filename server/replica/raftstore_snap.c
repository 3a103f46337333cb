/*
 * raftstore_snap.c — snapshots: offered to lagging followers, installed
 * from a leader, finished after a crash; log compaction (raftstore.h
 * invariants 5-6).
 */
#include "raftstore_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failpoint.h"
#include "planted.h"
#include "raftlog.h"

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
    rs_logf(rs, 1, "group %u/%u: finished a snapshot install a crash interrupted (index %llu, "
                 "files %s)",
          (unsigned)(group >> 32), (unsigned)group, (unsigned long long)m->index, dir);
    return OKV_OK;
}

/* Invariant 5 across a crash, before any group is opened (so nothing reads
 * or applies a partition caught between its old and its new state); then
 * the snap root is emptied of what a crash left (partial streams, dirs
 * installed or never used). If an install cannot be finished the node does
 * not start, and the files stay for inspection. */
int rs_recover_snapshots(raftstore *rs, okv_error *err)
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

void rs_remove_snap_dir(raftstore *rs, const char *name)
{
    char dir[4400];
    okv_error err;
    snprintf(dir, sizeof dir, "%s/%s", rs->snap_root, name);
    if (fsm_snapshot_remove_dir(dir, &err) != OKV_OK)
        rs_logf(rs, 1, "%s", err.msg);
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
void rs_step_snapshot(raftstore *rs, grp *g, item *it)
{
    char name[FSM_SNAPSHOT_NAME_MAX + 1];
    if (fsm_snapshot_desc_decode(it->msg.snapshot.data, (size_t)it->msg.snapshot.len, name) !=
        FSM_SNAPSHOT_RECEIVED) {
        rs_logf(rs, 1, "group %llu: a received snapshot without files was dropped",
              (unsigned long long)it->group);
    } else if (!g || remember_dir(g, name) != 0) {
        rs_remove_snap_dir(rs, name);
    } else {
        raft_step(g->node, &it->msg);
    }
    raft_message_release(&it->msg);
}

/* Invariant 6: a snapshot the core wants sent. Called only where every
 * applied entry is flushed and none of this iteration's is applied yet, so
 * RocksDB holds exactly g's state at g->applied: a RocksDB snapshot taken
 * now is the state the message's metadata describes. A snapshot that
 * cannot be offered now is dropped: the core asks again after an election
 * timeout without an acknowledgement. */
void rs_offer_snapshot(raftstore *rs, const grp *g, const struct raft_message *m)
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
        rs_logf(rs, 1, "group %llu: cannot take a RocksDB snapshot: %s", (unsigned long long)g->id,
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
        rs_logf(rs, 2, "group %u/%u: streaming a snapshot at index %llu to node %llu",
              (unsigned)(g->id >> 32), (unsigned)g->id, (unsigned long long)g->applied,
              (unsigned long long)m->to);
    }
}

/* Invariant 5 (fsm_snapshot.h I1-I3): marker synced, files ingested, then
 * the log's snapshot record, the applied index and the marker's deletion
 * staged into the loop's one synced batch. Runs on the loop thread before
 * any of this Ready's entries are staged or applied, so no apply of the
 * group runs in between; readers on other threads see the data family
 * switch from the old state to the new one in one step (one ingest). Any
 * failure is fatal: the core already moved its log to the snapshot, and
 * the marker makes the restart finish (or refuse) the install. */
void rs_install_snapshot(raftstore *rs, grp *g, const struct raft_snapshot *snap)
{
    char name[FSM_SNAPSHOT_NAME_MAX + 1], dir[4400], what[5200];
    okv_error err;
    if (fsm_snapshot_desc_decode(snap->data, (size_t)snap->len, name) != FSM_SNAPSHOT_RECEIVED) {
        snprintf(what, sizeof what, "group %llu: a snapshot at %llu without its files reached "
                                    "the install", (unsigned long long)g->id,
                 (unsigned long long)snap->meta.index);
        rs_fatal(rs, what);
    }
    snprintf(dir, sizeof dir, "%s/%s", rs->snap_root, name);
    uint64_t t0 = rs_now_ms(rs);
    int rc = fsm_snapshot_mark_installing(rs->cfg.e, g->id, &snap->meta, name, &err);
    OKV_FAILPOINT("snap.install.after_mark");
    if (!rc)
        rc = fsm_snapshot_ingest(rs->cfg.e, dir, &err);
    fsm_forget_range_locks(rs->fsm);   /* the group's records came from elsewhere */
    if (rc) {
        snprintf(what, sizeof what, "group %llu: installing the snapshot at %llu from %s: %s",
                 (unsigned long long)g->id, (unsigned long long)snap->meta.index, dir, err.msg);
        rs_fatal(rs, what);
    }
    OKV_FAILPOINT("snap.install.after_ingest");
    uint8_t desc[FSM_SNAPSHOT_DESC_MAX];
    struct raft_snapshot local = *snap;
    local.data = desc;
    local.len = fsm_snapshot_desc_encode(desc, FSM_SNAPSHOT_LOCAL, NULL);
    if (raftlog_stage_snapshot(g->log, rs->batch, &local) != 0)
        rs_fatal(rs, raftlog_errmsg(g->log));
    fsm_snapshot_stage_installed(rs->batch, g->id, snap->meta.index);
    g->applied = snap->meta.index;
    rs_settle_props_snapshot(g, snap->meta.index);
    atomic_fetch_add(&rs->snap_installed, 1);
    rs_logf(rs, 2, "group %u/%u: installed a snapshot at index %llu (streamed, %s; ingested in "
                 "%llu ms)",
          (unsigned)(g->id >> 32), (unsigned)g->id, (unsigned long long)snap->meta.index, name,
          (unsigned long long)(rs_now_ms(rs) - t0));
}

/* Log compaction for one group that is due (see raftstore_config). Runs
 * between loop iterations, where every applied entry is flushed, so the
 * partition's state in RocksDB is exactly its state at g->applied. Only
 * applied (hence stable) entries are dropped, so a Ready the core may be
 * holding for its next handout is unaffected. */
int rs_maybe_snapshot(raftstore *rs, grp *g)
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
        rs_fatal(rs, raftlog_errmsg(g->log));   /* the cache is staged: R2 */
    if (engine_write(rs->cfg.e, rs->batch, 1, &err) != OKV_OK)
        rs_fatal(rs, err.msg);
    engine_batch_clear(rs->batch);
    atomic_fetch_add(&rs->snap_recorded, 1);
    rs_logf(rs, 2, "group %u/%u: snapshot recorded at %llu, log compacted to %llu",
          (unsigned)(g->id >> 32), (unsigned)g->id, (unsigned long long)g->applied,
          (unsigned long long)upto);
    return 1;
}

/* A backup's cut (raftstore_cut). Items are handled between iterations,
 * where every applied entry is flushed (as for rs_maybe_snapshot), so a
 * RocksDB snapshot taken now holds exactly g's state at g->applied. Only
 * the leader answers: its applied index covers every write it
 * acknowledged, and the caller checks (through its fence record) that the
 * cut is past the entry it cares about. */
void rs_cut(raftstore *rs, grp *g, item *it)
{
    struct raft_status st;
    raft_status(g->node, &st);
    if (st.role != RAFT_LEADER) {
        it->ccb(it->arg, OKV_ENOTLEADER, NULL, 0, 0, st.leader);
        return;
    }
    uint64_t term;
    engine_snapshot *es = NULL;
    okv_error err;
    if (g->rd.snapshot || raft_term_at(g->node, g->applied, &term) != RAFT_OK ||
        engine_snapshot_new(&es, rs->cfg.e, &err) != OKV_OK) {
        it->ccb(it->arg, OKV_EUNAVAILABLE, NULL, 0, 0, 0);
        return;
    }
    rs_logf(rs, 2, "group %u/%u: backup cut at index %llu (term %llu)", (unsigned)(g->id >> 32),
            (unsigned)g->id, (unsigned long long)g->applied, (unsigned long long)term);
    it->ccb(it->arg, OKV_OK, es, g->applied, term, 0);
}
