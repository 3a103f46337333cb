/*
 * sim_main.c — raft-sim: drives seeded clusters through faults and checks
 * the safety properties of checker.h at every step, then liveness.
 *
 *   raft-sim --seed S [--trace]          one seed (replay, with a trace)
 *   raft-sim --seeds N [--start S]       N seeds from S (soak)
 *   raft-sim --plant BUG --expect-violation --seeds N
 *                                        self-test: must find a violation
 *
 * One seed = one scenario. The seed picks the cluster (3, 5 or 7 voters, up
 * to 2 spares), the raft options, the network (drop, duplicate, delay up to
 * 3 ticks, hence reordering) and the fault rates; then for the fault phase
 * every tick may change the partition shape (isolate one, halves, majority
 * ring, bridge, one-way cut), crash a node (losing what it had not
 * persisted, sometimes right after it sent its messages), restart one,
 * propose a membership change or a leadership transfer; clients propose and
 * read throughout. Then the faults stop: everything heals and restarts, and
 * within a bounded number of ticks a leader must emerge and a marker entry
 * must be applied by every member.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"

struct opts {
    uint64_t start;
    uint64_t count;
    bool single;
    bool trace;
    bool expect_violation;
    bool quiet;
    bool no_codec;
    unsigned planted;
    char plant_names[256];
    int size; /* 0 = by seed */
};

static const struct {
    const char *name;
    unsigned bit;
} bugs[] = {
    {"vote-twice", RAFT_BUG_VOTE_TWICE},
    {"old-term-commit", RAFT_BUG_OLD_TERM_COMMIT},
    {"no-persist-vote", RAFT_BUG_NO_PERSIST_VOTE},
    {"no-log-check", RAFT_BUG_NO_LOG_CHECK},
    {"stale-read", RAFT_BUG_STALE_READ},
    {"keep-conflict", RAFT_BUG_KEEP_CONFLICT},
};

/* ---- scenario ----------------------------------------------------------- */

struct scenario {
    uint32_t fault_ticks;
    uint32_t liveness_ticks;
    uint32_t p_partition; /* per tick, permille */
    uint32_t p_crash;
    uint32_t p_restart;
    uint32_t p_conf;
    uint32_t p_transfer;
    uint32_t p_propose; /* per sub-step */
    uint32_t p_read;
    uint32_t p_tick_skip; /* clock drift */
};

static void pick(struct sim_cluster *c, struct sim_params *p,
                 struct scenario *s, const struct opts *o)
{
    /* 1 byte: every append carries exactly one entry. */
    static const uint64_t msg_bytes[] = {1, 48, 200, 1024, 1u << 20};
    uint32_t sizes[] = {3, 5, 7};
    p->n_voters = o->size > 0 ? (uint32_t)o->size : sizes[sim_below(c, 3)];
    p->n_spare = (uint32_t)sim_below(c, 3);
    p->heartbeat_tick = 1 + (int)sim_below(c, 2);
    p->election_tick = 10;
    p->pre_vote = sim_chance(c, 700);
    p->check_quorum = sim_chance(c, 850);
    p->max_msg_bytes = msg_bytes[sim_below(c, 5)];
    p->max_inflight = 1 + (uint32_t)sim_below(c, 8);
    p->max_entry_bytes = 200;

    s->fault_ticks = 80 + (uint32_t)sim_below(c, 160);
    s->liveness_ticks = 200;
    s->p_partition = 10 + (uint32_t)sim_below(c, 60);
    s->p_crash = (uint32_t)sim_below(c, 40);
    s->p_restart = 50 + (uint32_t)sim_below(c, 200);
    s->p_conf = (uint32_t)sim_below(c, 60);
    s->p_transfer = (uint32_t)sim_below(c, 30);
    s->p_propose = 100 + (uint32_t)sim_below(c, 500);
    s->p_read = (uint32_t)sim_below(c, 300);
    s->p_tick_skip = (uint32_t)sim_below(c, 100);
    if (sim_chance(c, 250)) {
        /* High churn: leadership changes every few ticks, so logs diverge
         * in the ways Figure 8 of the paper is about. */
        s->p_partition = 150 + (uint32_t)sim_below(c, 250);
        s->p_crash = 30 + (uint32_t)sim_below(c, 70);
        s->p_restart = 300;
    }
}

static void net_faults(struct sim_cluster *c)
{
    c->drop_permille = (uint32_t)sim_below(c, 120);
    c->dup_permille = (uint32_t)sim_below(c, 60);
    c->max_delay = 1 + (uint32_t)sim_below(c, 3 * SIM_SUBSTEPS);
    c->crash_mid_ready_permille = (uint32_t)sim_below(c, 30);
    c->defer_ready_permille = (uint32_t)sim_below(c, 400);
    c->snapshot_every = sim_chance(c, 600) ? 3 + sim_below(c, 40) : 0;
}

static raft_id random_node(struct sim_cluster *c, bool want_up)
{
    raft_id ids[SIM_MAX_NODES];
    uint32_t n = 0;
    for (raft_id id = 1; id <= c->n_total; id++) {
        struct sim_node *nd = &c->nodes[id];
        if (!nd->exists || nd->removed)
            continue;
        if (nd->up == want_up)
            ids[n++] = id;
    }
    return n == 0 ? RAFT_NONE : ids[sim_below(c, n)];
}

static void partition(struct sim_cluster *c)
{
    raft_id ids[SIM_MAX_NODES];
    uint32_t n = 0;
    for (raft_id id = 1; id <= c->n_total; id++)
        ids[n++] = id;
    for (uint32_t k = n; k > 1; k--) { /* shuffle */
        uint32_t j = (uint32_t)sim_below(c, k);
        raft_id t = ids[k - 1];
        ids[k - 1] = ids[j];
        ids[j] = t;
    }
    sim_heal(c);
    switch (sim_below(c, 6)) {
    case 0:
        sim_trace(c, "PARTITION heal");
        break;
    case 1: { /* isolate one; the leader half the time */
        raft_id x = sim_leader(c);
        if (x == RAFT_NONE || sim_chance(c, 500))
            x = ids[0];
        sim_isolate(c, x);
        sim_trace(c, "PARTITION isolate %llu", (unsigned long long)x);
        break;
    }
    case 2: { /* halves */
        uint32_t cut = 1 + (uint32_t)sim_below(c, n - 1);
        for (uint32_t a = 0; a < cut; a++)
            for (uint32_t b = cut; b < n; b++)
                sim_cut(c, ids[a], ids[b]);
        sim_trace(c, "PARTITION halves at %u of %u", cut, n);
        break;
    }
    case 3: /* majority ring: each node reaches only its two neighbours */
        for (uint32_t a = 0; a < n; a++)
            for (uint32_t b = 0; b < n; b++) {
                uint32_t d = (a + n - b) % n;
                if (a != b && d != 1 && d != n - 1)
                    c->link[ids[a]][ids[b]] = false;
            }
        sim_trace(c, "PARTITION ring");
        break;
    case 4: { /* bridge: two halves joined only through ids[0] */
        uint32_t cut = 1 + (n - 1) / 2;
        for (uint32_t a = 1; a < cut; a++)
            for (uint32_t b = cut; b < n; b++)
                sim_cut(c, ids[a], ids[b]);
        sim_trace(c, "PARTITION bridge via %llu",
                  (unsigned long long)ids[0]);
        break;
    }
    default: /* one-way: a hears nothing from b */
        c->link[ids[1]][ids[0]] = false;
        sim_trace(c, "PARTITION one-way %llu -/-> %llu",
                  (unsigned long long)ids[1], (unsigned long long)ids[0]);
        break;
    }
}

static void conf_change(struct sim_cluster *c)
{
    raft_id l = sim_leader(c);
    struct raft_status st;
    struct raft_conf_change cc;
    if (l == RAFT_NONE)
        return;
    raft_status(c->nodes[l].raft, &st);
    memset(&cc, 0, sizeof(cc));
    uint64_t r = sim_below(c, 3);
    if (r == 0) { /* add a learner */
        raft_id cand[SIM_MAX_NODES];
        uint32_t n = 0;
        for (raft_id id = 1; id <= c->n_total; id++) {
            if (!c->nodes[id].removed && !c->nodes[id].retired &&
                !raft_conf_is_voter(&st.conf, id) &&
                !raft_conf_is_learner(&st.conf, id))
                cand[n++] = id;
        }
        if (n == 0)
            return;
        cc.type = RAFT_CC_ADD_LEARNER;
        cc.node = cand[sim_below(c, n)];
        if (!c->nodes[cc.node].exists)
            sim_node_start(c, cc.node);
    } else if (r == 1) {
        if (st.conf.n_learners == 0)
            return;
        cc.type = RAFT_CC_PROMOTE;
        cc.node = st.conf.learners[sim_below(c, st.conf.n_learners)];
    } else {
        uint32_t members = st.conf.n_voters + st.conf.n_learners;
        if (members == 0)
            return;
        uint32_t k = (uint32_t)sim_below(c, members);
        cc.type = RAFT_CC_REMOVE;
        if (k < st.conf.n_voters) {
            if (st.conf.n_voters <= 3)
                return; /* keep a fault-tolerant quorum */
            cc.node = st.conf.voters[k];
        } else {
            cc.node = st.conf.learners[k - st.conf.n_voters];
        }
    }
    int rc = raft_propose_conf_change(c->nodes[l].raft, &cc, NULL);
    if (rc == 0)
        c->n_conf_ok++;
    if (rc == 0 && cc.type == RAFT_CC_REMOVE)
        c->nodes[cc.node].retired = true; /* ids are never reused */
    sim_trace(c, "CONF %s %llu via leader %llu: %s",
              cc.type == RAFT_CC_ADD_LEARNER ? "add-learner"
              : cc.type == RAFT_CC_PROMOTE   ? "promote"
                                             : "remove",
              (unsigned long long)cc.node, (unsigned long long)l,
              raft_strerror(rc));
}

static void stop_removed(struct sim_cluster *c)
{
    for (raft_id id = 1; id <= c->n_total; id++) {
        if (c->nodes[id].removed && c->nodes[id].up)
            sim_node_crash(c, id);
    }
}

static void client_ops(struct sim_cluster *c, const struct scenario *s)
{
    if (sim_chance(c, s->p_propose)) {
        raft_id l = sim_leader(c);
        raft_id to = (l != RAFT_NONE && sim_chance(c, 800))
                         ? l : random_node(c, true);
        if (to != RAFT_NONE) {
            uint32_t extra = (uint32_t)sim_below(c, 64);
            if (sim_chance(c, 20))
                extra = 250; /* over max_entry_bytes: TOO_LARGE */
            int rc = sim_propose(c, to, extra);
            if (rc == RAFT_ERR_TOO_LARGE && extra != 250)
                chk_fail(&c->chk, "small proposal refused as too large");
        }
    }
    if (sim_chance(c, s->p_read)) {
        raft_id to = random_node(c, true);
        if (to != RAFT_NONE)
            (void)sim_read(c, to);
    }
}

static void process_all(struct sim_cluster *c, bool faults)
{
    for (raft_id id = 1; id <= c->n_total; id++) {
        if (faults && sim_chance(c, c->defer_ready_permille))
            continue; /* the host is slow: state stays unpersisted longer */
        sim_process_ready(c, id, faults);
    }
    stop_removed(c);
}

static void fault_tick(struct sim_cluster *c, const struct scenario *s)
{
    if (sim_chance(c, s->p_partition))
        partition(c);
    if (sim_chance(c, s->p_crash)) {
        raft_id x = random_node(c, true);
        if (sim_chance(c, 300) && sim_leader(c) != RAFT_NONE)
            x = sim_leader(c); /* leaders dying mid-replication */
        if (x != RAFT_NONE)
            sim_node_crash(c, x);
    }
    if (sim_chance(c, s->p_restart)) {
        raft_id x = random_node(c, false);
        if (x != RAFT_NONE)
            sim_node_restart(c, x);
    }
    if (sim_chance(c, s->p_conf))
        conf_change(c);
    if (sim_chance(c, s->p_transfer)) {
        raft_id l = sim_leader(c);
        raft_id to = random_node(c, true);
        if (l != RAFT_NONE && to != RAFT_NONE && to != l) {
            int rc = raft_transfer_leader(c->nodes[l].raft, to);
            if (rc == 0)
                c->n_transfer_ok++;
            sim_trace(c, "TRANSFER %llu -> %llu: %s", (unsigned long long)l,
                      (unsigned long long)to, raft_strerror(rc));
        }
    }
}

/* Liveness: all faults off; a leader must get a marker entry applied on
 * every up member within liveness_ticks. */
static void liveness(struct sim_cluster *c, const struct scenario *s)
{
    c->drop_permille = 0;
    c->dup_permille = 0;
    c->crash_mid_ready_permille = 0;
    c->reorder = false;
    c->max_delay = 2;
    sim_heal(c);
    for (raft_id id = 1; id <= c->n_total; id++)
        sim_node_restart(c, id);
    sim_trace(c, "FAULTS OFF: healed and restarted everything");

    uint64_t marker_seq = 0, marker_idx = 0, marker_term = 0;
    raft_id marker_node = RAFT_NONE;
    /* The bound: a fixed allowance for elections plus two ticks per entry
     * a lagging member may have to fetch (the tightest configurations
     * carry one 48-byte entry per message with one message in flight). */
    uint64_t backlog = 0;
    for (raft_id id = 1; id <= c->n_total; id++) {
        if (c->nodes[id].exists)
            backlog = memstore_last_index(&c->nodes[id].store) > backlog
                          ? memstore_last_index(&c->nodes[id].store)
                          : backlog;
    }
    uint64_t bound = s->liveness_ticks + 2 * backlog;
    uint64_t end = c->now + bound * SIM_SUBSTEPS;
    for (; c->now < end && !c->chk.violated; c->now++) {
        if (c->now % SIM_SUBSTEPS == 0) {
            for (raft_id id = 1; id <= c->n_total; id++)
                sim_tick(c, id);
        }
        sim_deliver_due(c);
        raft_id l = sim_leader(c);
        if (l != RAFT_NONE) {
            /* (Re)propose the marker if it never went in or was lost. */
            uint64_t t = 0;
            bool lost = marker_node == RAFT_NONE ||
                        !c->nodes[marker_node].up ||
                        (raft_term_at(c->nodes[marker_node].raft, marker_idx,
                                      &t) == 0 && t != marker_term) ||
                        marker_node != l;
            struct chk_slot *ms =
                marker_seq ? chk_map_get(&c->chk.props, marker_seq, 0)
                           : NULL;
            if (lost && (ms == NULL || ms->v3 == 0) &&
                sim_propose(c, l, 0) == 0) {
                marker_seq = c->next_seq;
                marker_node = l;
                struct raft_status st;
                raft_status(c->nodes[l].raft, &st);
                marker_idx = st.last_index;
                marker_term = st.term;
            }
        }
        process_all(c, false);
        if (marker_seq == 0)
            continue;
        struct chk_slot *ms = chk_map_get(&c->chk.props, marker_seq, 0);
        if (ms == NULL || ms->v3 == 0)
            continue;
        /* Acknowledged; now every member must have applied it. */
        raft_id cur = sim_leader(c);
        if (cur == RAFT_NONE)
            continue;
        bool all = true;
        struct raft_status st;
        raft_status(c->nodes[cur].raft, &st);
        for (raft_id id = 1; id <= c->n_total && all; id++) {
            struct sim_node *n = &c->nodes[id];
            if (!raft_conf_is_voter(&st.conf, id) &&
                !raft_conf_is_learner(&st.conf, id))
                continue;
            if (n->removed)
                continue; /* its removal committed: stopped for good */
            if (!n->up || n->applied < ms->v1)
                all = false;
        }
        if (all) {
            sim_trace(c, "LIVE: marker at %llu applied everywhere",
                      (unsigned long long)ms->v1);
            return;
        }
    }
    if (!c->chk.violated)
        chk_fail(&c->chk, "liveness: no marker committed and applied on all "
                          "members within %llu ticks after faults stopped "
                          "(leader %llu)",
                 (unsigned long long)bound, (unsigned long long)sim_leader(c));
}

struct totals {
    uint64_t events, proposals, acked, reads, seeds;
    uint64_t leaders, crashes, snaps, confs, transfers;
};

static int run_seed(struct sim_cluster *c, uint64_t seed,
                    const struct opts *o, struct totals *tot)
{
    struct sim_params p;
    struct scenario s;

    /* Parameters come from their own stream so they do not depend on the
     * cluster's consumption of randomness. */
    c->rng = seed * 0x9e3779b97f4a7c15ull + 7;
    sim_params_default(&p, 3);
    pick(c, &p, &s, o);
    p.planted = o->planted;
    p.trace = o->trace;
    p.trace_out = stdout;
    p.codec = !o->no_codec;
    sim_cluster_init(c, &p, seed);
    net_faults(c);
    sim_trace(c, "seed %llu: %u voters + %u spares, prevote %d checkquorum "
                 "%d hb %d msgbytes %llu inflight %u drop %u dup %u delay "
                 "%u snap-every %llu fault-ticks %u",
              (unsigned long long)seed, p.n_voters, p.n_spare, p.pre_vote,
              p.check_quorum, p.heartbeat_tick,
              (unsigned long long)p.max_msg_bytes, p.max_inflight,
              c->drop_permille, c->dup_permille, c->max_delay,
              (unsigned long long)c->snapshot_every, s.fault_ticks);

    uint64_t end = (uint64_t)s.fault_ticks * SIM_SUBSTEPS;
    for (c->now = 0; c->now < end && !c->chk.violated; c->now++) {
        if (c->now % SIM_SUBSTEPS == 0) {
            fault_tick(c, &s);
            for (raft_id id = 1; id <= c->n_total; id++) {
                if (!sim_chance(c, s.p_tick_skip))
                    sim_tick(c, id);
            }
        }
        sim_deliver_due(c);
        client_ops(c, &s);
        process_all(c, true);
    }
    if (!c->chk.violated)
        liveness(c, &s);

    tot->events += c->events;
    tot->proposals += c->proposals;
    tot->acked += c->acked;
    tot->reads += c->reads_done;
    tot->leaders += c->n_leaders;
    tot->crashes += c->n_crashes;
    tot->snaps += c->n_snap_installs;
    tot->confs += c->n_conf_ok;
    tot->transfers += c->n_transfer_ok;
    tot->seeds++;
    int bad = c->chk.violated;
    if (bad && !o->expect_violation) {
        printf("FAIL seed %llu: %s\n", (unsigned long long)seed, c->chk.msg);
        printf("replay: raft-sim --seed %llu --trace", (unsigned long long)seed);
        if (o->planted)
            printf(" --plant %s", o->plant_names);
        if (o->size)
            printf(" --size %d", o->size);
        if (o->no_codec)
            printf(" --no-codec");
        printf("\n");
    } else if (bad && !o->quiet) {
        printf("violation found (as expected) at seed %llu: %s\n",
               (unsigned long long)seed, c->chk.msg);
        printf("replay: raft-sim --seed %llu --trace --plant %s\n",
               (unsigned long long)seed, o->plant_names);
    }
    sim_cluster_close(c);
    return bad;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: raft-sim [--seed S | --seeds N [--start S]] [--trace]\n"
            "                [--size 3|5|7] [--no-codec] [--quiet]\n"
            "                [--plant BUG[,BUG]] [--expect-violation]\n"
            "bugs (need -DORDERKV_RAFT_PLANTED_BUGS=ON):");
    for (size_t k = 0; k < sizeof(bugs) / sizeof(bugs[0]); k++)
        fprintf(stderr, " %s", bugs[k].name);
    fprintf(stderr, "\n");
}

static int parse_plant(struct opts *o, const char *arg)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", arg);
    snprintf(o->plant_names, sizeof(o->plant_names), "%s", arg);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        size_t k;
        for (k = 0; k < sizeof(bugs) / sizeof(bugs[0]); k++) {
            if (strcmp(tok, bugs[k].name) == 0) {
                o->planted |= bugs[k].bit;
                break;
            }
        }
        if (k == sizeof(bugs) / sizeof(bugs[0])) {
            fprintf(stderr, "unknown bug '%s'\n", tok);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof(o));
    o.start = 1;
    o.count = 100;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--seed") == 0 && v) {
            o.start = strtoull(v, NULL, 10);
            o.count = 1;
            o.single = true;
            i++;
        } else if (strcmp(a, "--seeds") == 0 && v) {
            o.count = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--start") == 0 && v) {
            o.start = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--size") == 0 && v) {
            o.size = atoi(v);
            i++;
        } else if (strcmp(a, "--plant") == 0 && v) {
            if (parse_plant(&o, v) != 0)
                return 2;
            i++;
        } else if (strcmp(a, "--trace") == 0) {
            o.trace = true;
        } else if (strcmp(a, "--expect-violation") == 0) {
            o.expect_violation = true;
        } else if (strcmp(a, "--quiet") == 0) {
            o.quiet = true;
        } else if (strcmp(a, "--no-codec") == 0) {
            o.no_codec = true;
        } else {
            usage();
            return 2;
        }
    }
    if (o.size != 0 && o.size != 3 && o.size != 5 && o.size != 7) {
        usage();
        return 2;
    }
#ifndef RAFT_SIM_PLANTED
    if (o.planted) {
        fprintf(stderr, "raft-sim: this build has no planted bugs; "
                        "configure with -DORDERKV_RAFT_PLANTED_BUGS=ON\n");
        return 2;
    }
#endif
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sim_cluster *c = calloc(1, sizeof(*c));
    struct totals tot;
    memset(&tot, 0, sizeof(tot));
    chk_init(&c->chk);
    clock_t t0 = clock();
    uint64_t failures = 0, first_fail = 0;
    for (uint64_t k = 0; k < o.count; k++) {
        uint64_t seed = o.start + k;
        if (run_seed(c, seed, &o, &tot)) {
            if (failures == 0)
                first_fail = seed;
            failures++;
            if (o.expect_violation || o.single)
                break;
        }
    }
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (!o.quiet || failures > 0)
        printf("raft-sim: %llu seeds from %llu in %.1fs cpu: %llu failed; "
               "%llu deliveries, %llu proposals, %llu acknowledged, %llu "
               "reads\n",
               (unsigned long long)tot.seeds, (unsigned long long)o.start,
               secs, (unsigned long long)failures,
               (unsigned long long)tot.events,
               (unsigned long long)tot.proposals,
               (unsigned long long)tot.acked, (unsigned long long)tot.reads);
    if (!o.quiet)
        printf("raft-sim: %llu leaders elected, %llu crashes, %llu snapshots "
               "installed, %llu membership changes, %llu transfers started\n",
               (unsigned long long)tot.leaders,
               (unsigned long long)tot.crashes,
               (unsigned long long)tot.snaps, (unsigned long long)tot.confs,
               (unsigned long long)tot.transfers);
    free(c->net);
    chk_free(&c->chk);
    free(c);
    if (o.expect_violation) {
        if (failures == 0) {
            printf("raft-sim: planted bug %s NOT caught in %llu seeds\n",
                   o.plant_names, (unsigned long long)tot.seeds);
            return 1;
        }
        printf("raft-sim: planted bug %s caught at seed %llu\n",
               o.plant_names, (unsigned long long)first_fail);
        return 0;
    }
    return failures > 0 ? 1 : 0;
}
