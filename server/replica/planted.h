/*
 * planted.h — known bugs the node simulator re-plants to prove its checks
 * catch them (tests/nodesim, docs/testing.md "The node simulator").
 *
 * Compiled in only where OKV_SIM_PLANTED is defined: the simulator's own
 * build of the node code (library okv_replica_sim). Everywhere else
 * OKV_PLANTED is the constant 0 and the code behind it vanishes, so
 * orderkvd carries none of it. Each bit is one bug of issue 10's list, put
 * back exactly as it was before its fix.
 */
#ifndef OKV_SERVER_PLANTED_H
#define OKV_SERVER_PLANTED_H

enum okv_plant {
    PLANT_LEASE_STALE = 1u << 0,       /* 1: lease reads ignore applied < commit */
    PLANT_RESTART_CAMPAIGN = 1u << 1,  /* 2: every start campaigns for preferred groups */
    PLANT_LATE_TIMEOUT_NOW = 1u << 2,  /* 3: a lease is retaken after an aborted transfer */
    PLANT_PROPOSAL_ORDER = 1u << 3,    /* 4: pending proposals settled in arrival order */
    PLANT_REQUEST_ID_RESET = 1u << 4,  /* 5: a reconnecting client restarts ids at 1 */
    PLANT_READ_RETRY_CTX = 1u << 5,    /* 6: a read's retry replaces its context */
    PLANT_REBALANCE_LAGGING = 1u << 6, /* 7: rebalance toward a lagging preferred leader */
    PLANT_READ_CTX_RESET = 1u << 7,    /* found by the simulator: read contexts from 1 at
                                          every start */
    PLANT_VOTE_NOSYNC = 1u << 8,       /* a new term or vote is written without a sync
                                          (only commit-only hard states may be) */
    /* Two-phase commit (server/txn/tpc.c): its failpoints, which only the
     * simulator's own build of tpc.c (tests/nodesim/sim_tpc.c) routes to
     * this bit; orderkvd's tpc.c has none of it. */
    PLANT_TPC_DROP_COMMIT = 1u << 9,   /* tpc.resolve.drop_commit: a participant other
                                          than the coordinator drops its writes on COMMIT */
    /* Transactions (server/sm/fsm.c's failpoints, routed the same way by
     * the simulator's own build of fsm.c, tests/nodesim/sim_fsm.c). */
    PLANT_TXN_CHECK_IGNORE_LOCKS = 1u << 10, /* txn.check.ignore_locks: a read-only check
                                                passes over an exclusive lock */
    PLANT_TXN_PARTIAL = 1u << 11       /* txn.partial: a transaction stopped by a floor
                                          still applies the writes before it */
};

#ifdef OKV_SIM_PLANTED
extern unsigned okv_planted;   /* set by the simulator before it starts nodes */
#define OKV_PLANTED(bit) ((okv_planted & (bit)) != 0)
#else
#define OKV_PLANTED(bit) 0
#endif

#endif
