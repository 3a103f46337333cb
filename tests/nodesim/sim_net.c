/*
 * sim_net.c — the simulated network and the nemesis that breaks it.
 *
 * Messages travel as the raft codec's bytes (as on the real transport),
 * each with its own delay: usually 0.2-2 ms, sometimes up to 30 ms, so
 * they overtake each other; some are dropped or delivered twice. A cut
 * link drops what is sent on it and what arrives on it. Faults: node
 * isolation, one-way cuts, bridges (two sides that only one node joins),
 * lossy links, crashes with power cuts, pauses (SIGSTOP), and leadership
 * transfers an admin asks for.
 */
#include <stdlib.h>
#include <string.h>

#include "nodesim.h"
#include "raft_codec.h"

int sim_link_up(sim *s, int a, int b)
{
    return a == b || !s->cut[a][b];
}

static uint64_t delay(sim *s, int from, int to)
{
    if (!s->faults_on && s->heal_mode == 1)
        return sim_between(s, 12000, 25000);
    if (!s->faults_on && s->heal_mode == 2 && (from == s->slow_node || to == s->slow_node))
        return sim_between(s, 30000, 60000);
    uint64_t base = sim_chance(s, 3) ? sim_between(s, 2000, 30000) : sim_between(s, 200, 2000);
    return base + s->slow[from][to];
}

void sim_net_send(sim *s, int from, int to, uint64_t group, const struct raft_message *m)
{
    if (to < 0 || to >= s->o.nodes || !sim_link_up(s, from, to) || sim_chance(s, s->drop_pct))
        return;
    size_t len = raft_message_encoded_size(m);
    int copies = sim_chance(s, s->dup_pct) ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        uint8_t *buf = malloc(len ? len : 1);
        size_t written;
        if (!buf || raft_message_encode(m, buf, len, &written) != RAFT_OK)
            abort();
        sim_schedule(s, s->now + delay(s, from, to), EV_DELIVER, to, 0, buf, len, group, (uint64_t)from);
    }
}

int sim_net_send_snapshot(sim *s, int from, int to, uint64_t group, const struct raft_message *m,
                          engine_snapshot *snap)
{
    if (to < 0 || to >= s->o.nodes || !sim_link_up(s, from, to)) {
        engine_snapshot_free(snap);
        return -1;
    }
    char *p = malloc(sizeof *m + sizeof snap);
    if (!p)
        abort();
    struct raft_message copy = *m;
    copy.entries = NULL;
    copy.n_entries = 0;
    copy.snapshot.data = NULL;
    copy.snapshot.len = 0;
    memcpy(p, &copy, sizeof copy);
    memcpy(p + sizeof copy, &snap, sizeof snap);
    sim_schedule(s, s->now + sim_between(s, 3000, 40000), EV_SNAPSHOT, to, 0, p, 0, group,
                 (uint64_t)from);
    return 0;
}

static void restart_in_lease(sim *s, int g, int step);
static void leader_flap(sim *s, int g, int step);
static void restarted_reader(sim *s, int g, int step);

static void clear_cuts(sim *s)
{
    memset(s->cut, 0, sizeof s->cut);
    memset(s->slow, 0, sizeof s->slow);
    s->drop_pct = 0;
    s->dup_pct = 1;
}

static int down_count(const sim *s)
{
    int k = 0;
    for (int i = 0; i < s->o.nodes; i++)
        k += !s->nodes[i].up;
    return k;
}

static void isolate(sim *s, int x)
{
    for (int i = 0; i < s->o.nodes; i++)
        if (i != x)
            s->cut[x][i] = s->cut[i][x] = 1;
}

/* Two sides that only the bridge node joins: with 3 nodes, a - b - c.
 * Returns the bridge. */
static int bridge(sim *s)
{
    int b = (int)sim_between(s, 0, (uint64_t)s->o.nodes - 1);
    for (int i = 0; i < s->o.nodes; i++)
        for (int j = 0; j < s->o.nodes; j++) {
            if (i == j || i == b || j == b)
                continue;
            int side_i = ((i - b + s->o.nodes) % s->o.nodes) % 2;
            int side_j = ((j - b + s->o.nodes) % s->o.nodes) % 2;
            if (side_i != side_j)
                s->cut[i][j] = 1;
        }
    sim_logf(s, "nemesis: bridge through node %d", b + 1);
    return b;
}

static void crash_restart(sim *s, int x, uint64_t lo, uint64_t hi)
{
    sim_node *n = &s->nodes[x];
    if (!n->up || down_count(s) >= (s->o.nodes - 1) / 2)
        return;
    sim_node_crash(s, n);
    sim_schedule(s, s->now + sim_between(s, lo, hi), EV_RESTART, x, n->incarnation, NULL, 0, 0,
                 0);
}

static void pause_node(sim *s, int x, uint64_t at, uint64_t lo, uint64_t hi)
{
    sim_node *n = &s->nodes[x];
    uint64_t until = at + sim_between(s, lo, hi);
    if (!n->up || until <= n->paused_until)
        return;
    /* A pause that starts later stops the node from then on: model it as
     * one from `at`, which the loop and the request path both honour. */
    if (at > s->now) {
        sim_schedule(s, at, EV_NEMESIS, x, NEM_PAUSE, NULL, 0, until, 0);
        return;
    }
    n->paused_until = until;
    sim_logf(s, "nemesis: pause node %d for %.1f ms", x + 1, (double)(until - s->now) / 1000.0);
}

void sim_delayed_fault(sim *s, const sim_ev *ev)
{
    if (ev->gen >= NEM_REREAD_1 && ev->gen <= NEM_REREAD_END) {
        restarted_reader(s, ev->node, (int)(ev->gen - NEM_REREAD_1) + 1);
        return;
    }
    if (ev->gen == NEM_FLAP_HEAL) {
        leader_flap(s, ev->node, 1);
        return;
    }
    if (ev->gen == NEM_RESTART_IN_LEASE_1 || ev->gen == NEM_RESTART_IN_LEASE_2) {
        restart_in_lease(s, ev->node, ev->gen == NEM_RESTART_IN_LEASE_1 ? 1 : 2);
        return;
    }
    if (ev->gen == NEM_FAST_RESTART) {
        int b = ev->node;
        crash_restart(s, b, 2000, 30000);
        int y = (int)sim_between(s, 0, (uint64_t)s->o.nodes - 1);
        if (y != b)
            s->slow[b][y] = sim_between(s, 20000, 60000);
        return;
    }
    sim_pause_event(s, ev);
}

void sim_pause_event(sim *s, const sim_ev *ev)
{
    sim_node *n = &s->nodes[ev->node];
    if (n->up && ev->a > n->paused_until) {
        n->paused_until = ev->a;
        sim_logf(s, "nemesis: pause node %d for %.1f ms", ev->node + 1,
                 (double)(ev->a - s->now) / 1000.0);
    }
}

/* An admin's transfer-leader of a random group to a random replica;
 * returns the target, or -1. */
static int transfer(sim *s, int *from)
{
    int g = (int)sim_between(s, 0, (uint64_t)s->ngroups - 1);
    for (int i = 0; i < s->o.nodes; i++) {
        sim_node *n = &s->nodes[i];
        if (!n->up || !sim_holds(s, i, g))
            continue;
        if (raftstore_leader(n->rs, sim_group_id(g)) != (uint64_t)i + 1)
            continue;
        int to = (int)sim_between(s, 0, (uint64_t)s->o.nodes - 1);
        if (to != i && sim_holds(s, to, g)) {
            raftstore_transfer_leader(n->rs, sim_group_id(g), (uint64_t)to + 1);
            sim_logf(s, "nemesis: transfer group %d from node %d to node %d", g, i + 1, to + 1);
            *from = i;
            return to;
        }
        return -1;
    }
    return -1;
}

/* The node every up replica of group g names as leader, or -1. */
static int leader_of(sim *s, int g)
{
    int l = -1;
    for (int i = 0; i < s->o.nodes; i++) {
        if (!s->nodes[i].up || !sim_holds(s, i, g))
            continue;
        uint64_t id = raftstore_leader(s->nodes[i].rs, sim_group_id(g));
        if (!id || (l >= 0 && (int)id - 1 != l))
            return -1;
        l = (int)id - 1;
    }
    return l >= 0 && s->nodes[l].up ? l : -1;
}

/* A replica of g that is neither a nor b, or -1. */
static int third(sim *s, int g, int a, int b)
{
    for (int i = 0; i < s->o.nodes; i++)
        if (i != a && i != b && sim_holds(s, i, g))
            return i;
    return -1;
}

static int preferred(const sim *s, int g)
{
    return g % s->o.nodes;
}

/* The hazard of issue 10 item 2, staged: group g's preferred node b
 * follows another leader A; the third replica C stops hearing A (long
 * enough to vote again); then b restarts at once and its messages to A
 * are slow. A restarted node must not win an election while A still
 * holds the lease b's last acknowledgement gave it. Steps: 0 set up the
 * leader, 1 cut A from C, 2 restart b. */
static void restart_in_lease(sim *s, int g, int step)
{
    int b = preferred(s, g), a = leader_of(s, g);
    if (step == 0) {
        if (a < 0)
            return;
        if (a == b) {
            int to = third(s, g, b, -1);
            raftstore_transfer_leader(s->nodes[a].rs, sim_group_id(g), (uint64_t)to + 1);
        }
        sim_schedule(s, s->now + 150000, EV_NEMESIS, g, NEM_RESTART_IN_LEASE_1, NULL, 0, 0, 0);
        return;
    }
    if (a < 0 || a == b || !s->nodes[b].up)
        return;
    int c = third(s, g, a, b);
    if (step == 1) {
        clear_cuts(s);
        s->cut[a][c] = s->cut[c][a] = 1;
        sim_logf(s, "nemesis: group %d: leader %d cut from %d; %d restarts soon", g, a + 1,
                 c + 1, b + 1);
        sim_schedule(s, s->now + sim_between(s, 120000, 250000), EV_NEMESIS, g,
                     NEM_RESTART_IN_LEASE_2, NULL, 0, 0, 0);
        return;
    }
    crash_restart(s, b, 2000, 20000);
    s->slow[b][a] = sim_between(s, 30000, 60000);
}

/* The hazard of item 3, staged: a transfer of g from A to T; T stalls
 * right after its TIMEOUT_NOW left, past A's abort, and what A receives is
 * slow. A must not hold a lease in that term: the late TIMEOUT_NOW's vote
 * bypasses every follower's lease. */
static void late_timeout_now(sim *s, int g)
{
    int a = leader_of(s, g);
    if (a < 0)
        return;
    int t = third(s, g, a, -1);
    if (t < 0 || !s->nodes[t].up)
        return;
    clear_cuts(s);
    raftstore_transfer_leader(s->nodes[a].rs, sim_group_id(g), (uint64_t)t + 1);
    sim_logf(s, "nemesis: group %d: transfer %d -> %d, which then stalls", g, a + 1, t + 1);
    pause_node(s, t, s->now + sim_between(s, 300, 3000), 150000, 300000);
    /* What reaches A is slow: the new term reaches it late. */
    int c = third(s, g, a, t);
    s->slow[t][a] = sim_between(s, 30000, 60000);
    if (c >= 0)
        s->slow[c][a] = sim_between(s, 30000, 60000);
}

/* The hazard of item 4, staged: group g's leader A, its preferred node,
 * is cut off while clients keep writing to it (its log fills with entries
 * it cannot commit), another node leads meanwhile, and once A is back the
 * rebalancer hands it the group again: its new proposals then take
 * indexes below the old ones still pending. */
static void leader_flap(sim *s, int g, int step)
{
    int a = leader_of(s, g);
    if (step == 0) {
        if (a < 0 || a != preferred(s, g))
            return;
        clear_cuts(s);
        isolate(s, a);
        sim_logf(s, "nemesis: group %d: leader %d cut off for a while", g, a + 1);
        sim_schedule(s, s->now + sim_between(s, 150000, 300000), EV_NEMESIS, g, NEM_FLAP_HEAL,
                     NULL, 0, 0, 0);
        return;
    }
    clear_cuts(s);
    sim_logf(s, "nemesis: group %d: the cut-off node is back", g);
}

/* The hazard the simulator found (read contexts reused across restarts),
 * staged: reads of group g go to a follower F; F restarts at once; the
 * leader's answers to F become slow; F restarts at once again while
 * answers to its previous run are on their way, and its new reads must
 * not take them. */
static void restarted_reader(sim *s, int g, int step)
{
    int a = leader_of(s, g);
    int f = a >= 0 ? third(s, g, a, -1) : -1;
    if (step == 0) {
        if (f < 0)
            return;
        clear_cuts(s);
        s->read_bias_node = f;
        s->read_bias_group = g;
        crash_restart(s, f, 2000, 5000);
        sim_logf(s, "nemesis: group %d: reads go to node %d, which restarts", g, f + 1);
        sim_schedule(s, s->now + sim_between(s, 30000, 80000), EV_NEMESIS, g, NEM_REREAD_1, NULL,
                     0, 0, 0);
    } else if (step == 1) {
        if (a >= 0 && s->read_bias_node >= 0)
            s->slow[a][s->read_bias_node] = sim_between(s, 30000, 80000);
        sim_schedule(s, s->now + sim_between(s, 5000, 20000), EV_NEMESIS, g, NEM_REREAD_2, NULL,
                     0, 0, 0);
    } else if (step == 2) {
        if (s->read_bias_node >= 0)
            crash_restart(s, s->read_bias_node, 2000, 5000);
        sim_schedule(s, s->now + sim_between(s, 80000, 150000), EV_NEMESIS, g, NEM_REREAD_END,
                     NULL, 0, 0, 0);
    } else {
        s->read_bias_node = -1;
        clear_cuts(s);
    }
}

void sim_nemesis(sim *s)
{
    int x = (int)sim_between(s, 0, (uint64_t)s->o.nodes - 1);
    int g = (int)sim_between(s, 0, (uint64_t)s->ngroups - 1);
    /* --faults staged: only the staged hazards (and healing between). */
    uint64_t pick = s->o.staged_only ? (sim_chance(s, 20) ? 0 : 12 + sim_between(s, 0, 3))
                                     : sim_between(s, 0, 17);
    switch (pick) {
    case 15:
        if (s->read_bias_node < 0)
            restarted_reader(s, g, 0);
        break;
    case 14:
        leader_flap(s, g, 0);
        break;
    case 12:
        restart_in_lease(s, g, 0);
        break;
    case 13:
        late_timeout_now(s, g);
        break;
    case 0:
        clear_cuts(s);
        sim_logf(s, "nemesis: heal the network");
        break;
    case 1:
        clear_cuts(s);
        isolate(s, x);
        sim_logf(s, "nemesis: isolate node %d", x + 1);
        break;
    case 2: {
        int y = (int)sim_between(s, 0, (uint64_t)s->o.nodes - 1);
        if (y != x)
            s->cut[x][y] = 1;
        sim_logf(s, "nemesis: cut %d -> %d one way", x + 1, y + 1);
        break;
    }
    case 3:
        clear_cuts(s);
        bridge(s);
        break;
    case 4:
        s->drop_pct = (unsigned)sim_between(s, 5, 30);
        s->dup_pct = (unsigned)sim_between(s, 1, 10);
        sim_logf(s, "nemesis: lossy network (%u%% dropped)", s->drop_pct);
        break;
    case 5:
        crash_restart(s, x, 30000, 600000);
        break;
    case 6:
        /* A fast restart: back within a leader's lease. */
        crash_restart(s, x, 2000, 60000);
        break;
    case 7:
        pause_node(s, x, s->now, 20000, 400000);
        break;
    case 8:
        /* A bridge, and a while later (once the far side no longer hears
         * the leader) the bridge node restarts at once, its messages to
         * one node slow: it may be elected while the leader on the other
         * side still holds a lease it confirmed before the crash. */
        clear_cuts(s);
        sim_schedule(s, s->now + sim_between(s, 120000, 300000), EV_NEMESIS, bridge(s),
                     NEM_FAST_RESTART, NULL, 0, 0, 0);
        break;
    case 9: {
        /* The transferee stalls after its TIMEOUT_NOW may have left, past
         * the leader's abort (an election timeout); its messages to the
         * old leader are slow when it wakes. */
        int from = -1;
        int to = transfer(s, &from);
        if (to >= 0) {
            pause_node(s, to, s->now + sim_between(s, 200, 4000), 120000, 400000);
            s->slow[to][from] = sim_between(s, 20000, 60000);
        }
        break;
    }
    case 11:
        if (s->nodes[x].up) {
            engine_mem_disk_fail_syncs(s->nodes[x].disk, 1);
            sim_logf(s, "nemesis: node %d's next fsync fails", x + 1);
        }
        break;
    case 10: {
        int y = (int)sim_between(s, 0, (uint64_t)s->o.nodes - 1);
        if (y != x) {
            s->slow[x][y] = sim_between(s, 10000, 60000);
            sim_logf(s, "nemesis: link %d -> %d slow (%.1f ms)", x + 1, y + 1,
                     (double)s->slow[x][y] / 1000.0);
        }
        break;
    }
    default: {
        int from;
        transfer(s, &from);
        break;
    }
    }
    sim_schedule(s, s->now + sim_between(s, 30000, 400000), EV_NEMESIS, 0, 0, NULL, 0, 0, 0);
}

void sim_heal(sim *s)
{
    s->heal_mode = (int)sim_between(s, 0, 3);
    if (s->heal_mode == 3)
        s->heal_mode = 0;
    s->slow_node = 0;   /* the preferred leader of group 0 */
    s->read_bias_node = -1;
    clear_cuts(s);
    s->dup_pct = 0;
    for (int i = 0; i < s->o.nodes; i++) {
        sim_node *n = &s->nodes[i];
        n->paused_until = 0;
        if (!n->up)
            sim_node_start(s, n);
    }
    sim_logf(s, "healed: every node up, every link whole");
}
