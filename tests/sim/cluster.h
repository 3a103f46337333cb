/*
 * cluster.h — a deterministic in-memory raft cluster for the simulator and
 * the unit tests.
 *
 * The cluster owns the nodes (raft core + memstore + a toy state machine),
 * a network of encoded messages with per-message delivery times, a link
 * matrix for partitions, and the invariant checker (checker.h). Everything
 * random comes from one splitmix64 stream seeded by the caller, so a seed
 * replays bit for bit.
 *
 * Time: `now` counts sub-steps; nodes tick every SIM_SUBSTEPS sub-steps (in
 * the simulator) so that several message round trips fit in one tick.
 *
 * The state machine of each node is a running hash of the applied entries:
 * snapshots carry (index, hash), so "applied sequences are prefixes of one
 * global sequence" can be checked across snapshot installs too.
 */
#ifndef ORDERKV_SIM_CLUSTER_H
#define ORDERKV_SIM_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "checker.h"
#include "memstore.h"
#include "raft.h"

#define SIM_MAX_NODES 10
#define SIM_SUBSTEPS 4

struct sim_params {
    uint32_t n_voters;     /* initial voters, ids 1..n_voters */
    uint32_t n_spare;      /* extra ids that may join as learners */
    int election_tick;
    int heartbeat_tick;
    bool pre_vote;
    bool check_quorum;
    uint64_t max_msg_bytes;
    uint32_t max_inflight;
    uint32_t max_entry_bytes;
    unsigned planted;      /* raft_planted_bug mask */
    bool codec;            /* route messages through the binary codec */
    bool trace;
    FILE *trace_out;
};

void sim_params_default(struct sim_params *p, uint32_t n_voters);

struct sim_node {
    raft_id id;
    bool exists;   /* has ever been started (has a store) */
    bool up;
    bool removed;  /* removal committed: stopped for good */
    bool retired;  /* a removal was proposed: never re-added */
    struct raft_node *raft;
    struct memstore store;
    /* toy state machine */
    uint64_t applied;
    uint64_t hash;
    struct raft_conf conf; /* configuration as of `applied` */
    uint64_t boot_seed;
};

struct sim_msg {
    uint64_t at;     /* delivery time (sub-step) */
    raft_id from;
    raft_id to;
    size_t len;
    uint8_t *buf;            /* encoded (codec mode) */
    struct raft_message m;   /* deep copy (non-codec mode) */
};

struct sim_cluster {
    struct sim_params p;
    uint64_t seed;
    uint64_t rng;
    uint64_t now;
    uint32_t n_total;
    struct sim_node nodes[SIM_MAX_NODES + 1]; /* index = id */
    bool link[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];
    /* network */
    struct sim_msg *net;
    size_t n_net, cap_net;
    uint32_t drop_permille;
    uint32_t dup_permille;
    uint32_t max_delay; /* sub-steps */
    bool reorder;       /* shuffle messages due together; off = FIFO */
    uint64_t last_at;   /* FIFO mode: latest delivery time handed out */
    uint32_t crash_mid_ready_permille;
    uint32_t defer_ready_permille;
    /* snapshots */
    uint64_t snapshot_every; /* entries between snapshots; 0 = never */
    /* client */
    uint64_t next_seq;
    uint64_t next_read;
    uint64_t proposals;
    uint64_t acked;
    uint64_t reads_done;
    struct sim_checker chk;
    uint64_t events;
    /* statistics, summed over seeds by raft-sim */
    uint64_t n_leaders, n_crashes, n_snap_installs, n_conf_ok, n_transfer_ok;
};

uint64_t sim_rand(struct sim_cluster *c);
/* Uniform in [0, n). */
uint64_t sim_below(struct sim_cluster *c, uint64_t n);
bool sim_chance(struct sim_cluster *c, uint32_t permille);

void sim_trace(struct sim_cluster *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Creates the cluster and starts the initial voters. */
void sim_cluster_init(struct sim_cluster *c, const struct sim_params *p,
                      uint64_t seed);
void sim_cluster_close(struct sim_cluster *c);

/* Node lifecycle. start: a spare joining with an empty configuration. */
void sim_node_start(struct sim_cluster *c, raft_id id);
void sim_node_crash(struct sim_cluster *c, raft_id id);
void sim_node_restart(struct sim_cluster *c, raft_id id);

void sim_tick(struct sim_cluster *c, raft_id id);
/* Processes the node's Ready if it has one; `allow_crash` lets the fault
 * model crash it between sending Ready.msgs and persisting. Returns true if
 * a Ready was processed. */
bool sim_process_ready(struct sim_cluster *c, raft_id id, bool allow_crash);
/* Delivers messages due at `now` (shuffled). */
void sim_deliver_due(struct sim_cluster *c);
/* Unit-test helper: deliver everything and process every Ready until the
 * cluster is quiet or max_rounds passed. Returns rounds used. */
int sim_stabilize(struct sim_cluster *c, int max_rounds);

/* Client operations. */
int sim_propose(struct sim_cluster *c, raft_id id, uint32_t extra_bytes);
int sim_read(struct sim_cluster *c, raft_id id);

/* Highest-term leader among up nodes, or RAFT_NONE. */
raft_id sim_leader(struct sim_cluster *c);

/* Partitions (links are directed; these set both directions). */
void sim_heal(struct sim_cluster *c);
void sim_isolate(struct sim_cluster *c, raft_id id);
void sim_cut(struct sim_cluster *c, raft_id a, raft_id b);

/* Takes a snapshot of the node's applied state into its store. */
void sim_snapshot(struct sim_cluster *c, raft_id id, bool compact);

#endif
