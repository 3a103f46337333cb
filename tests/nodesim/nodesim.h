/*
 * nodesim.h — the node simulator: N real replicas (raftstore + fsm +
 * raftlog + snapshots, the code orderkvd runs) in one thread, from one
 * seed (DESIGN.md "The node under simulation"; docs/testing.md).
 *
 * What is real and what is simulated:
 *   real       server/replica/raftstore.c, raftlog.c, fsm.c, fsm_snapshot.c, the
 *              raft core, the command encoding, the raft codec on the wire,
 *              the client's request-id rule (client/client_reqid.c)
 *   simulated  the clock (raftstore_config.now_ms: one per node, each with
 *              its own rate), the network (raftstore_config.net: delays,
 *              drops, duplicates, reordering, partitions), the disk
 *              (storage/engine_mem.c: power cuts that lose unsynced
 *              writes, torn tails), the loop thread (raftstore_step_begin /
 *              _end as events, with other work between them as a gRPC
 *              thread's lease read would), and the clients (the service's
 *              read and write paths over raftstore's API).
 *
 * Time is in microseconds of simulated time. Everything random comes from
 * the seed's PRNG, so one seed is one run, replayable.
 *
 * With --bank (sim_bank.c) the run also moves money across groups through
 * the real two-phase commit rules (server/txn/tpc.c, applied by fsm.c),
 * driven and swept as server/coord/tpc_driver.c and tpc_sweep.c do.
 */
#ifndef OKV_NODESIM_H
#define OKV_NODESIM_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "engine_mem.h"
#include "fsm.h"
#include "planted.h"
#include "raftstore.h"

#define SIM_MAX_NODES 5
#define SIM_MAX_GROUPS 3
#define SIM_KEYS_PER_GROUP 2
#define SIM_MAX_KEYS (SIM_MAX_GROUPS * SIM_KEYS_PER_GROUP)
#define SIM_CLIENTS 5
#define SIM_TABLE 3u
#define SIM_TICK_MS 10

typedef struct sim sim;

/* ---- options ----------------------------------------------------------------- */

typedef struct sim_options {
    uint64_t seed;
    int nodes;              /* 3 or 5 */
    unsigned planted;       /* enum okv_plant bits */
    int clock_beyond;       /* planted: one node's clock runs at half speed */
    int verbose;            /* event log on stderr */
    int staged_only;        /* faults: only the staged hazards (--faults staged) */
    uint64_t fault_us;      /* length of the fault phase */
    uint64_t heal_us;       /* liveness bound after healing */
    int bank;               /* the transactional workload too (sim_bank.c, --bank) */
} sim_options;

/* Runs one seed. Returns 0 if every check passed; otherwise 1 and `why`
 * (cap bytes) says which check failed and how. */
int sim_run(const sim_options *o, char *why, size_t cap, uint64_t *events_out);

/* ---- PRNG (splitmix64) ---------------------------------------------------- */

uint64_t sim_rand(sim *s);
/* Uniform in [lo, hi]. */
uint64_t sim_between(sim *s, uint64_t lo, uint64_t hi);
/* 1 with probability pct / 100. */
int sim_chance(sim *s, unsigned pct);

/* ---- events ------------------------------------------------------------------ */

enum sim_ev_kind {
    EV_DELIVER,        /* a raft message reaches a node */
    EV_SNAPSHOT,       /* a snapshot transfer completes at a node */
    EV_STEP,           /* a node's loop runs raftstore_step_begin */
    EV_STEP_END,       /* ... and raftstore_step_end, after the disk's latency */
    EV_CLIENT,         /* a client's turn: start an op, or give up waiting */
    EV_REQUEST,        /* a client request reaches a node */
    EV_REPLY,          /* a node's answer reaches a client */
    EV_NEMESIS,        /* the next fault */
    EV_RESTART,        /* a crashed node comes back */
    EV_BANK            /* the transactional workload (sim_bank.c); node: its sub-kind */
};

typedef struct sim_ev {
    uint64_t at, seq;
    int kind;
    int node;          /* node index, or client index for client events */
    uint64_t gen;      /* EV_STEP*: the node's step generation; client events: op id */
    void *p;           /* owned payload */
    size_t len;
    uint64_t a, b;
} sim_ev;

void sim_schedule(sim *s, uint64_t at, int kind, int node, uint64_t gen, void *p, size_t len,
                  uint64_t a, uint64_t b);
uint64_t sim_now(const sim *s);
void sim_logf(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- nodes (sim_node.c) --------------------------------------------------- */

typedef struct sim_node {
    sim *s;
    int idx;                    /* 0-based; node id = idx + 1 */
    int up;
    engine_mem_disk *disk;
    engine *e;
    raftstore *rs;
    fsm *reader;                /* reads for clients, as the service's */
    char dir[256];
    /* clock: reading = base_us + (t - t0) * rate_ppm / 1e6 */
    uint64_t clock_base_us, clock_t0;
    uint64_t rate_ppm;
    /* the loop: one step event pending at most */
    uint64_t step_gen, step_at;
    int step_pending, busy, woken;
    uint64_t paused_until;
    uint64_t incarnation;       /* bumps at each crash */
    uint64_t crashes;
    /* raftstore's fatal hook ends the step it happens in (a longjmp back
     * to sim_node_step_event): the node is then crashed, as orderkvd
     * aborts. */
    jmp_buf jb;
    int in_step;
    char fatal_msg[600];
    int64_t wall_skew_us;       /* --bank: this node's wall clock against true time */
} sim_node;

int sim_node_start(sim *s, sim_node *n);
void sim_node_crash(sim *s, sim_node *n);
void sim_node_step_event(sim *s, sim_node *n, const sim_ev *ev);
void sim_node_deliver(sim *s, sim_node *n, const sim_ev *ev);
void sim_node_snapshot(sim *s, sim_node *n, const sim_ev *ev);
void sim_node_free(sim_node *n);
/* Groups this node holds a replica of; their preferred leader. */
int sim_holds(const sim *s, int node_idx, int group_idx);
uint64_t sim_group_id(int group_idx);
int sim_group_index(uint64_t group);

/* ---- network (sim_net.c) --------------------------------------------------- */

/* 1 if a message from node a to node b gets through now. */
int sim_link_up(sim *s, int a, int b);
void sim_net_send(sim *s, int from, int to, uint64_t group, const struct raft_message *m);
int sim_net_send_snapshot(sim *s, int from, int to, uint64_t group, const struct raft_message *m,
                          engine_snapshot *snap);
void sim_nemesis(sim *s);
void sim_pause_event(sim *s, const sim_ev *ev);
/* EV_NEMESIS with gen != 0: a fault an earlier one scheduled. */
enum {
    NEM_PAUSE = 1,
    NEM_FAST_RESTART = 2,
    NEM_RESTART_IN_LEASE_1 = 3,
    NEM_RESTART_IN_LEASE_2 = 4,
    NEM_FLAP_HEAL = 5,
    NEM_REREAD_1 = 6,
    NEM_REREAD_2 = 7,
    NEM_REREAD_END = 8
};
void sim_delayed_fault(sim *s, const sim_ev *ev);
void sim_heal(sim *s);

/* ---- clients and history (sim_client.c) ------------------------------------ */

enum sim_op_kind { OP_READ, OP_WRITE };
enum sim_op_type { OP_PENDING, OP_OK, OP_FAIL, OP_INFO };

typedef struct sim_op {
    int kind, type;
    int client, key;
    int64_t value;              /* write: the value; read: the result */
    int null;                   /* read: absent */
    uint64_t call, ret;         /* history positions */
    uint64_t request_id, client_id;
    uint64_t version;
} sim_op;

void sim_client_event(sim *s, const sim_ev *ev);
void sim_client_request(sim *s, const sim_ev *ev);
void sim_client_reply(sim *s, const sim_ev *ev);
void sim_clients_start(sim *s);
void sim_clients_final_reads(sim *s);
int sim_clients_idle(const sim *s);
int sim_final_writes_done(const sim *s);

/* ---- the transactional workload (sim_bank.c) --------------------------------- */

typedef struct sim_bank sim_bank;

/* Starts it (--bank): accounts funded, tellers, an auditor, the nodes' 2PC
 * sweepers. */
void sim_bank_start(sim *s);
void sim_bank_event(sim *s, const sim_ev *ev);
/* At healing: every teller runs one last transfer to a definite outcome. */
void sim_bank_heal(sim *s);
/* 1 once tellers are done, no driver runs, and every group's replicas have
 * applied the same index and hold no lock, no PREPARED or undecided
 * record and no unfinished coordinator record. */
int sim_bank_settled(sim *s);
/* B1-B3 and B5 at the end (sim_bank_check.c; B4 fails the run as it
 * happens). */
int sim_bank_check(sim *s, char *why, size_t cap);
void sim_bank_free(sim *s);
/* Totals over every seed run so far (what hit which step of 2PC). */
void sim_bank_stats_print(void);

/* The failpoints of the simulator's builds of tpc.c and fsm.c (sim_tpc.c,
 * sim_fsm.c): 1 when the planted bug of that name is on. */
int nodesim_failpoint(const char *name);

/* ---- checks (sim_check.c) ---------------------------------------------------- */

/* The apply observer (raftstore_config.applied). */
void sim_observe_apply(sim *s, int node, uint64_t group, const struct raft_entry *e,
                       const command_result *r);
/* The answer observer (raftstore_config.answered). */
void sim_observe_answer(sim *s, int node, uint64_t group, uint64_t index, uint64_t term,
                        int code);
int sim_check_history(sim *s, char *why, size_t cap);
int sim_check_applied(sim *s, char *why, size_t cap);
int sim_check_live(sim *s, char *why, size_t cap);
int sim_check_leaders(sim *s, char *why, size_t cap);
int sim_leaders_agree(sim *s);

/* ---- the world ----------------------------------------------------------------- */

typedef struct sim_applied {
    uint64_t index, client_id, request_id, term;
    int64_t value;
    int effect;                 /* the write took effect at this entry */
    uint64_t digest;            /* of the entry's bytes */
    uint64_t outcome;           /* TXN and TPC entries: of the applied result */
} sim_applied;

typedef struct sim_client {
    uint64_t client_id;
    uint64_t next_rid, session_start;
    uint64_t watermark;
    int leader_guess[SIM_MAX_GROUPS];
    int64_t op;                 /* index into ops of the op in flight, -1 */
    uint64_t op_gen;            /* ids this client's events carry */
    int attempts, ambiguous;
    uint64_t deadline;
    uint8_t *cmd;
    size_t cmd_len;
    int done;                   /* no more ops (after the fault phase) */
    int final_writes;           /* writes left after healing */
    int final_reads;            /* keys left to read at the end */
} sim_client;

struct sim {
    sim_options o;
    uint64_t rng;
    uint64_t now, seq, events;
    sim_ev *heap;
    size_t nheap, capheap;
    int ngroups, nkeys;
    sim_node nodes[SIM_MAX_NODES];
    int cut[SIM_MAX_NODES][SIM_MAX_NODES];   /* 1: a -> b dropped */
    uint64_t slow[SIM_MAX_NODES][SIM_MAX_NODES];   /* extra delay a -> b, us */
    unsigned drop_pct, dup_pct;
    /* After healing, one of: 0 a quick network; 1 a slow one (every
     * message 12-25 ms: ReadIndex rounds outlast the read's retry
     * interval); 2 one slow node (the preferred leader of group 0: its
     * messages take 30-60 ms, so it lags while writes flow). */
    int heal_mode, slow_node;
    int read_bias_node, read_bias_group;   /* staged: reads of that group go there (-1: none) */
    int faults_on;
    char root[192];
    sim_client clients[SIM_CLIENTS];
    sim_op *ops;
    size_t nops, capops;
    uint64_t pos;               /* history position counter */
    int64_t next_value;
    unsigned write_pct;         /* share of client ops that write */
    /* per node, per group: what applied at each index (for checks) */
    sim_applied *applied[SIM_MAX_NODES][SIM_MAX_GROUPS];
    size_t napplied[SIM_MAX_NODES][SIM_MAX_GROUPS], capapplied[SIM_MAX_NODES][SIM_MAX_GROUPS];
    char failure[1024];         /* first internal failure (fatal on a node) */
    /* proposals a store answered "certainly not applied" (check C6) */
    struct sim_claim {
        int node, group;
        uint64_t index, term;
    } *claims;
    size_t nclaims, capclaims;
    sim_bank *bank;             /* --bank */
    uint64_t bank_checked_at;   /* last sim_bank_settled probe */
};

#endif
