/*
 * sim_bank_int.h — what sim_bank.c (the transactional workload: tellers,
 * the 2PC driver and sweeper) and sim_bank_check.c (the state at the end,
 * checks B1-B5, totals) share.
 */
#ifndef OKV_NODESIM_BANK_INT_H
#define OKV_NODESIM_BANK_INT_H

#include <stdint.h>
#include <stdio.h>

#include "nodesim.h"
#include "tpc.h"
#include "txn.h"

#define BANK_ACCTS_PER_GROUP 2
#define BANK_MAX_ACCTS (SIM_MAX_GROUPS * BANK_ACCTS_PER_GROUP)
#define BANK_TELLERS 3
#define BANK_INIT 100
#define BANK_MAX_AMOUNT 60
#define BANK_LONG_US 1000000u        /* RESOLVE, FINISH, CHECK: 5000 ms in tpc_driver.c */
#define BANK_ATTEMPT_US 250000u      /* one attempt of a step, then resend */
#define BANK_ATTEMPT_HEALED_US 1000000u
#define BANK_HEALED_TIMEOUT_MS 1500u  /* T after healing */
#define BANK_SKEW_MS 25
#define BANK_WALL_EPOCH_US 1700000000000000ULL
#define BANK_FOREVER UINT64_MAX

/* EV_BANK sub-kinds (sim_ev.node). */
enum {
    BEV_STEP_REQ,      /* a step's attempt reaches its target: a=step, b=target, gen */
    BEV_STEP_REPLY,    /* its answer reaches the sender: a=step, b=target, gen, p=reply */
    BEV_STEP_TIMEOUT,  /* the attempt waited long enough: a=step, gen */
    BEV_TELLER,        /* a teller's turn: a=teller, gen */
    BEV_TELLER_REQ,    /* a teller's KV.Txn reaches the driver's node: a=xfer */
    BEV_TELLER_REPLY,  /* the driver's answer reaches the teller: a=xfer, gen */
    BEV_TELLER_GIVEUP, /* is the teller's call still alive? a=teller, gen */
    BEV_SWEEP,         /* a node's sweeper wakes: a=node */
    BEV_LATER,         /* a PREPARE sent again after meeting a lock: a=xfer, b=share */
    BEV_AUDIT          /* the auditor's turn: gen; b=1: its checks again */
};

/* Who a step answers. */
enum { OWN_FUND, OWN_1PC, OWN_AUDIT_READ, OWN_AUDIT_CHECK, OWN_STATUS, OWN_PREPARE, OWN_VOTE,
       OWN_DECIDE, OWN_RESOLVE, OWN_FINISH, OWN_CH_CHECK, OWN_CH_RESOLVE, OWN_CH_FINISH,
       OWN_CH_FORGET };

/* Driver phases; a driver that died keeps the phase it died in. */
enum { XP_NEW, XP_PREPARE, XP_VOTE, XP_DECIDE, XP_RESOLVE, XP_FINISH, XP_DONE, XP_NPHASES };

typedef struct step_reply {
    int rc;                 /* OKV_OK: applied; else the call's failure */
    uint8_t state;          /* tpc_state (TPC) */
    tpc_fail fail;          /* TPC refusal, as tpc_code_of maps it back */
    int rcode;              /* the command's own result code (1PC, funding) */
    uint64_t leader;        /* NOT_LEADER hint */
    /* the auditor's reads: a group's accounts at a linearizable point */
    int64_t val[BANK_ACCTS_PER_GROUP];
    uint64_t ver[BANK_ACCTS_PER_GROUP];
} step_reply;

typedef struct bank_step {
    int live;
    int owner_kind, owner, slot;
    int home;               /* the sender's node, -1: an outside client (no cuts) */
    uint64_t home_inc;
    int group;
    uint8_t kind;           /* tpc kind, 0 for 1PC and funding */
    uint8_t *msg;           /* TPC: the encoded tpc_msg (the TxnPart payload) */
    size_t msg_len;
    uint8_t *cmd;           /* otherwise: the command */
    size_t cmd_len;
    uint64_t gen, end;
    int first_target, attempts;
    step_reply last;
} bank_step;

typedef struct bank_xfer {
    int teller;
    int from, to;
    int64_t amount;
    int two_pc;
    tpc_id id;
    int home;
    uint64_t home_inc;
    uint64_t deadline_ms;
    int started, dead, phase;
    int cond_acct;          /* -1, or an account the transfer only checks */
    int first_debit;        /* the request's first write is the debit */
    int coord_group;        /* the first write's group */
    int nshares;
    struct {
        tpc_group g;
        uint8_t enc[256];
        size_t enc_len;
        size_t items;
        uint32_t orig[3];   /* the share's items as numbered in the request */
        step_reply prep;
        int lock_waits;     /* PREPAREs sent again after meeting a lock */
    } sh[3];
    int waiting;
    uint8_t decision;
    int reported;           /* driver: 0 none, TPC_COMMITTED, TPC_ABORTED, -1 EUNKNOWN */
    int result_1pc;         /* 1PC: 1 committed, 0 refused, -1 not answered yet */
    int final;              /* started after healing */
    int settled;            /* the teller's TxnStatus with settle: -1 not asked, else the
                             * state it answered (COMMITTED, ABORTED: final) */
} bank_xfer;

typedef struct bank_teller {
    uint64_t client_id, next_rid, gen;
    int64_t xfer;           /* in flight, -1 */
    uint64_t giveup_at;     /* its call's deadline */
    int final_left;         /* after healing: transfers left to end with a definite answer */
    int busy;
} bank_teller;

/* The auditor: read-only transactions over every account, committed as
 * client/client_tx.c commits one that spans partitions (reads, then one
 * check of the versions per partition, no locks and no 2PC). */
typedef struct bank_auditor {
    uint64_t client_id, next_rid, gen;
    int busy;
    int waiting;            /* reads or checks outstanding */
    int round;              /* check rounds sent (a lock is worth 3 more looks) */
    int locked_only, failed;
    int64_t val[BANK_MAX_ACCTS];
    uint64_t ver[BANK_MAX_ACCTS];
} bank_auditor;

typedef struct bank_chain {
    int node;
    uint64_t inc;
    tpc_id id;
    tpc_group self, coord;
    int is_coord_record;
    tpc_crec c;
    uint8_t decision;
    int waiting;
    int ended;
} bank_chain;

typedef struct bank_stats {
    uint64_t seeds, seeds_vote_last, xfers, xfers_2pc, committed, aborted, unknown,
        never_started;
    uint64_t votes_committed, votes_refused;
    uint64_t status_committed, status_aborted, status_other, forgets;
    uint64_t one_pc_ok, one_pc_refused, locked_refusals, floor_refusals;
    uint64_t driver_died[XP_NPHASES];
    uint64_t chains_check_c, chains_resolve_c, chains_check_p, chains_died;
    uint64_t check_p_committed;             /* a P-chain's CHECK found the C committed */
    uint64_t three_shares, read_only_shares, lock_waits;
    uint64_t audits_ok, audits_refused, audit_rechecks;
    uint64_t step_moved[TPC_FORGET + 1];      /* answered by another node than first asked */
    uint64_t step_retried[TPC_FORGET + 1];    /* needed more than one attempt */
    uint64_t step_failed[TPC_FORGET + 1];     /* budget ran out */
    uint64_t crash_home[XP_NPHASES + 1], crash_target, transfer_target;
} bank_stats;

struct sim_bank {
    int naccts;
    /* Per seed, at a tenth of production's scale or less (T 10 s, a sweep
     * every 1 s, 1 s of grace), and in changing proportions, so the
     * sweeper's chains race the drivers and each other both ways. */
    uint64_t timeout_ms;            /* T: the driver's transaction timeout */
    uint64_t sweep_us;              /* tpc_sweep.c SWEEP_EVERY_MS */
    uint64_t grace_ms;              /* SWEEP_GRACE_MS */
    int vote_last;                  /* the coordinator votes last (PREPARE flag 1), or
                                     * PREPAREs everywhere, then DECIDE */
    unsigned call_pct;              /* a teller's KV.Txn deadline, in % of T (liborderkv's
                                     * default 5 s against orderkvd's 10 s: 50) */
    unsigned crash_pm;              /* per mille: a crash at a driver's step boundary */
    unsigned target_pm;             /* per mille: the target crashes / hands off after proposing */
    int funded, funding_left;
    bank_teller tellers[BANK_TELLERS];
    bank_auditor auditor;
    int leader_guess[SIM_MAX_NODES + 1][SIM_MAX_GROUPS];   /* [sender + 1][group] */
    bank_step *steps;
    size_t nsteps, capsteps;
    bank_xfer *xfers;
    size_t nxfers, capxfers;
    bank_chain *chains;
    size_t nchains, capchains;
    int sweep_live[SIM_MAX_NODES];
    uint64_t sweep_inc[SIM_MAX_NODES];
    uint64_t next_req;
    bank_stats st;
};

static inline int acct_group(int a)
{
    return a / BANK_ACCTS_PER_GROUP;
}

static inline size_t acct_key(int a, char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap, "bank/%d", a);
}

static inline tpc_group group_of(int g)
{
    return (tpc_group){ SIM_TABLE, (uint32_t)g };
}

#endif
