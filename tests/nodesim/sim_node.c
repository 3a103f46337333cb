/*
 * sim_node.c — one simulated node: its disk, clock and loop, around the
 * real raftstore. The loop thread becomes two events per iteration
 * (raftstore_step_begin, then raftstore_step_end after the disk's
 * latency); between them other nodes run and clients' lease reads reach
 * this one, as they do while a real loop waits for fsync.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_snapshot.h"
#include "nodesim.h"
#include "raft_codec.h"

/* Placement: with 3 nodes every group lives everywhere; with 5, group g
 * lives on nodes g, g+1, g+2 (mod 5), its first replica preferred. */
int sim_holds(const sim *s, int node_idx, int group_idx)
{
    if (s->o.nodes == 3)
        return 1;
    for (int j = 0; j < 3; j++)
        if ((group_idx + j) % s->o.nodes == node_idx)
            return 1;
    return 0;
}

uint64_t sim_group_id(int group_idx)
{
    return fsm_group_id(SIM_TABLE, (uint32_t)group_idx);
}

int sim_group_index(uint64_t group)
{
    return (int)(uint32_t)group;
}

static int preferred_idx(const sim *s, int group_idx)
{
    return s->o.nodes == 3 ? group_idx % 3 : group_idx % s->o.nodes;
}

/* ---- clock -------------------------------------------------------------------- */

static uint64_t clock_us(const sim_node *n)
{
    return n->clock_base_us + (n->s->now - n->clock_t0) * n->rate_ppm / 1000000u;
}

static uint64_t clock_ms(void *ctx)
{
    return clock_us(ctx) / 1000u;
}

/* The simulated time at which this node's clock reads ms. */
static uint64_t time_of_clock(const sim_node *n, uint64_t ms)
{
    uint64_t c = ms * 1000u;
    if (c <= n->clock_base_us)
        return n->clock_t0;
    return n->clock_t0 + ((c - n->clock_base_us) * 1000000u + n->rate_ppm - 1) / n->rate_ppm;
}

/* ---- the loop ----------------------------------------------------------------- */

static void schedule_step(sim_node *n, uint64_t at)
{
    sim *s = n->s;
    if (at < n->paused_until)
        at = n->paused_until;
    if (n->step_pending && n->step_at <= at)
        return;
    n->step_gen++;
    n->step_pending = 1;
    n->step_at = at;
    sim_schedule(s, at, EV_STEP, n->idx, n->step_gen, NULL, 0, 0, 0);
}

static void schedule_next_tick(sim_node *n)
{
    schedule_step(n, time_of_clock(n, raftstore_next_tick_ms(n->rs)));
}

static void wake(void *ctx)
{
    sim_node *n = ctx;
    if (!n->up)
        return;
    if (n->busy)
        n->woken = 1;
    else
        schedule_step(n, n->s->now + sim_between(n->s, 5, 50));
}

/* A node that stopped itself (raftstore's fatal: a failed fsync) is a
 * crashed node; it comes back later, as a supervisor would restart it. */
static void stopped_on_fatal(sim *s, sim_node *n)
{
    sim_logf(s, "node %d stopped itself: %s", n->idx + 1, n->fatal_msg);
    /* raftstore's apply loop stops on an entry the state machine refused
     * ("group G entry I: ..."): no fault the simulator injects makes
     * fsm_apply fail, and the same entry stops every replica (check C7). */
    unsigned long long g, i;
    if (sscanf(n->fatal_msg, "group %llu entry %llu:", &g, &i) == 2 && !s->failure[0])
        snprintf(s->failure, sizeof s->failure, "C7: node %d cannot apply an entry: %.900s",
                 n->idx + 1, n->fatal_msg);
    sim_node_crash(s, n);
    if (s->faults_on)
        sim_schedule(s, s->now + sim_between(s, 30000, 300000), EV_RESTART, n->idx,
                     n->incarnation, NULL, 0, 0, 0);
    else
        sim_node_start(s, n);
}

static void step(sim *s, sim_node *n, const sim_ev *ev);

void sim_node_step_event(sim *s, sim_node *n, const sim_ev *ev)
{
    if (!n->up)
        return;
    if (setjmp(n->jb)) {
        n->in_step = 0;
        stopped_on_fatal(s, n);
        return;
    }
    n->in_step = 1;
    step(s, n, ev);
    n->in_step = 0;
}

static void step(sim *s, sim_node *n, const sim_ev *ev)
{
    if (ev->kind == EV_STEP) {
        if (ev->gen != n->step_gen || !n->step_pending)
            return;
        n->step_pending = 0;
        if (n->busy)
            return;   /* step_end schedules the next one */
        if (s->now < n->paused_until) {
            schedule_step(n, n->paused_until);
            return;
        }
        if (raftstore_step_begin(n->rs)) {
            n->busy = 1;
            /* fsync: usually fast, sometimes slow (a busy disk) */
            uint64_t lat = sim_chance(s, 5) ? sim_between(s, 3000, 15000) : sim_between(s, 80, 1500);
            if (!s->faults_on && s->heal_mode == 2 && n->idx == s->slow_node)
                lat = sim_between(s, 100000, 200000);   /* a failing disk */
            sim_schedule(s, s->now + lat, EV_STEP_END, n->idx, n->incarnation, NULL, 0, 0, 0);
        } else {
            schedule_next_tick(n);
        }
        return;
    }
    if (ev->gen != n->incarnation || !n->busy)
        return;
    if (s->now < n->paused_until) {
        sim_schedule(s, n->paused_until, EV_STEP_END, n->idx, n->incarnation, NULL, 0, 0, 0);
        return;
    }
    raftstore_step_end(n->rs);
    n->busy = 0;
    if (n->woken) {
        n->woken = 0;
        schedule_step(n, s->now + sim_between(s, 5, 50));
    } else {
        schedule_next_tick(n);
    }
}

/* ---- raftstore's host interfaces ------------------------------------------------ */

static void net_send(void *ctx, uint64_t to_node, uint64_t group, const struct raft_message *m)
{
    sim_node *n = ctx;
    sim_net_send(n->s, n->idx, (int)to_node - 1, group, m);
}

static void net_flush(void *ctx)
{
    (void)ctx;
}

static int net_send_snapshot(void *ctx, uint64_t to_node, uint64_t group,
                             const struct raft_message *m, engine_snapshot *snap)
{
    sim_node *n = ctx;
    return sim_net_send_snapshot(n->s, n->idx, (int)to_node - 1, group, m, snap);
}

static void on_fatal(void *ctx, const char *what)
{
    sim_node *n = ctx;
    snprintf(n->fatal_msg, sizeof n->fatal_msg, "%s", what);
    if (n->in_step)
        longjmp(n->jb, 1);   /* the node stops here, as orderkvd would abort */
    /* Outside a step the simulator cannot unwind: the process aborts, and
     * the seed is what replays it. */
    fprintf(stderr, "node %d: fatal: %s\nnodesim: replay with okv-nodesim --seed %llu --nodes %d\n",
            n->idx + 1, what, (unsigned long long)n->s->o.seed, n->s->o.nodes);
}

static void on_applied(void *ctx, uint64_t group, const struct raft_entry *e,
                       const command_result *r)
{
    sim_node *n = ctx;
    sim_observe_apply(n->s, n->idx, group, e, r);
}

static void on_answered(void *ctx, uint64_t group, uint64_t index, uint64_t term, int code)
{
    sim_node *n = ctx;
    sim_observe_answer(n->s, n->idx, group, index, term, code);
}

static void store_log(void *ctx, int level, const char *msg)
{
    sim_node *n = ctx;
    if (level <= 2)
        sim_logf(n->s, "node %d: %s", n->idx + 1, msg);
}

static uint64_t preferred_leader(void *ctx, uint64_t group)
{
    sim_node *n = ctx;
    return (uint64_t)preferred_idx(n->s, sim_group_index(group)) + 1;
}

static int peer_alive(void *ctx, uint64_t node)
{
    sim_node *n = ctx;
    /* As the transport judges it: the connection to that node is up. */
    int to = (int)node - 1;
    return to >= 0 && to < n->s->o.nodes && n->s->nodes[to].up && sim_link_up(n->s, n->idx, to);
}

static int campaign_first(void *ctx, uint64_t group)
{
    sim_node *n = ctx;
    return preferred_idx(n->s, sim_group_index(group)) == n->idx;
}

/* ---- start, crash ------------------------------------------------------------ */

int sim_node_start(sim *s, sim_node *n)
{
    okv_error err;
    n->clock_base_us = clock_us(n);
    n->clock_t0 = s->now;
    if (engine_open(&n->e, n->dir, NULL, &err) != OKV_OK) {
        snprintf(s->failure, sizeof s->failure, "node %d: engine_open: %s", n->idx + 1, err.msg);
        return -1;
    }
    raftstore_config c;
    memset(&c, 0, sizeof c);
    c.node_id = (uint64_t)n->idx + 1;
    c.e = n->e;
    c.net.send = net_send;
    c.net.flush = net_flush;
    c.net.send_snapshot = net_send_snapshot;
    c.net.ctx = n;
    c.tick_ms = SIM_TICK_MS;
    c.election_ticks = 10;
    c.heartbeat_ticks = 1;
    c.seed = sim_rand(s) | 1;
    c.preferred_leader = preferred_leader;
    c.peer_alive = peer_alive;
    c.balance_ctx = n;
    c.rebalance_ticks = 10;
    c.lease_reads = 1;
    c.snapshot_entries = (int)sim_between(s, 20, 60);   /* compaction and snapshots, often */
    c.log_keep = (int)sim_between(s, 2, 10);
    c.now_ms = clock_ms;
    c.clock_ctx = n;
    c.wake = wake;
    c.wake_ctx = n;
    c.fatal = on_fatal;
    c.fatal_ctx = n;
    c.applied = on_applied;
    c.applied_ctx = n;
    c.answered = on_answered;
    c.answered_ctx = n;
    if (s->o.verbose) {
        c.log = store_log;
        c.log_ctx = n;
    }
    if (raftstore_new(&n->rs, &c, &err) != OKV_OK) {
        snprintf(s->failure, sizeof s->failure, "node %d: raftstore_new: %s", n->idx + 1, err.msg);
        engine_close(n->e);
        n->e = NULL;
        return -1;
    }
    for (int g = 0; g < s->ngroups; g++) {
        if (!sim_holds(s, n->idx, g))
            continue;
        struct raft_conf voters;
        memset(&voters, 0, sizeof voters);
        for (int i = 0; i < s->o.nodes; i++)
            if (sim_holds(s, i, g))
                voters.voters[voters.n_voters++] = (raft_id)i + 1;
        if (raftstore_bootstrap_group(n->rs, sim_group_id(g), &voters, &err) != OKV_OK) {
            snprintf(s->failure, sizeof s->failure, "node %d: bootstrap: %s", n->idx + 1,
                     err.msg);
            return -1;
        }
    }
    if (fsm_new(&n->reader, n->e, &err) != OKV_OK ||
        raftstore_start_manual(n->rs, campaign_first, n, &err) != OKV_OK) {
        snprintf(s->failure, sizeof s->failure, "node %d: start: %s", n->idx + 1, err.msg);
        return -1;
    }
    n->up = 1;
    n->busy = 0;
    n->woken = 0;
    sim_logf(s, "node %d up (incarnation %llu)", n->idx + 1, (unsigned long long)n->incarnation);
    schedule_step(n, s->now + sim_between(s, 10, 100));
    return 0;
}

static void stop(sim_node *n, int crashed)
{
    if (crashed)
        raftstore_free_crashed(n->rs);
    else
        raftstore_free(n->rs);
    n->rs = NULL;
    fsm_free(n->reader);
    n->reader = NULL;
    engine_close(n->e);
    n->e = NULL;
}

void sim_node_crash(sim *s, sim_node *n)
{
    if (!n->up)
        return;
    n->up = 0;
    n->incarnation++;
    n->step_gen++;
    n->step_pending = 0;
    n->busy = 0;
    n->crashes++;
    stop(n, 1);
    /* A power cut keeps a prefix of what was not synced (engine_mem.h M2);
     * half the time a process crash, which keeps it all. */
    engine_mem_disk_fail_syncs(n->disk, 0);
    size_t unsynced = engine_mem_disk_unsynced(n->disk);
    size_t keep = sim_chance(s, 50) ? unsynced : (size_t)sim_between(s, 0, unsynced);
    engine_mem_disk_crash(n->disk, keep);
    sim_logf(s, "node %d crashed (kept %zu of %zu unsynced batches)", n->idx + 1, keep, unsynced);
}

void sim_node_free(sim_node *n)
{
    if (n->up) {
        n->up = 0;
        stop(n, 0);
    }
}

/* ---- arrivals ------------------------------------------------------------------ */

void sim_node_deliver(sim *s, sim_node *n, const sim_ev *ev)
{
    int from = (int)ev->b;
    if (!n->up || !sim_link_up(s, from, n->idx))
        return;
    struct raft_message m;
    if (raft_message_decode(ev->p, ev->len, &m) != RAFT_OK) {
        snprintf(s->failure, sizeof s->failure, "a message from node %d does not decode",
                 from + 1);
        return;
    }
    raftstore_receive(n->rs, ev->a, &m);
}

/* A transfer that arrived whole: the receiver's half of snap_recv.c, from
 * the sender's pinned state straight into the receiver's SST files. */
void sim_node_snapshot(sim *s, sim_node *n, const sim_ev *ev)
{
    const struct raft_message *m = ev->p;
    engine_snapshot **pin = (engine_snapshot **)((char *)ev->p + sizeof *m);
    int from = (int)ev->b;
    uint64_t group = ev->a;
    if (!n->up || !sim_link_up(s, from, n->idx))
        return;
    char root[512], name[FSM_SNAPSHOT_NAME_MAX + 1], dir[700];
    okv_error err;
    if (fsm_snapshot_root(n->e, root, sizeof root) != OKV_OK)
        return;
    static uint64_t stream_seq;
    fsm_snapshot_dir_name(name, sizeof name, group, m->snapshot.meta.index, (uint64_t)from + 1,
                          ++stream_seq);
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    fsm_snapshot_writer *w = NULL;
    fsm_snapshot_reader *r = NULL;
    int rc = fsm_snapshot_writer_new(&w, n->e, group, dir, &err);
    if (!rc)
        rc = fsm_snapshot_reader_new(&r, *pin, group, &err);
    for (;;) {
        if (rc)
            break;
        int cf;
        const uint8_t *k, *v;
        size_t kl, vl;
        int more = fsm_snapshot_reader_next(r, &cf, &k, &kl, &v, &vl, &err);
        if (more <= 0) {
            rc = more;
            break;
        }
        rc = fsm_snapshot_writer_add(w, cf, k, kl, v, vl, &err);
    }
    if (!rc)
        rc = fsm_snapshot_writer_finish(w, &err);
    fsm_snapshot_reader_free(r);
    fsm_snapshot_writer_free(w);
    if (rc) {
        snprintf(s->failure, sizeof s->failure, "snapshot of group %llu to node %d: %s",
                 (unsigned long long)group, n->idx + 1, err.msg);
        return;
    }
    uint8_t *desc = malloc(FSM_SNAPSHOT_DESC_MAX);
    if (!desc)
        abort();
    struct raft_message msg = *m;
    msg.snapshot.data = desc;
    msg.snapshot.len = fsm_snapshot_desc_encode(desc, FSM_SNAPSHOT_RECEIVED, name);
    if (raftstore_receive_snapshot(n->rs, group, &msg) != OKV_OK) {
        free(desc);
        fsm_snapshot_remove_dir(dir, &err);
    }
    sim_logf(s, "node %d received a snapshot of group %d at %llu from node %d", n->idx + 1,
             sim_group_index(group), (unsigned long long)m->snapshot.meta.index, from + 1);
}
