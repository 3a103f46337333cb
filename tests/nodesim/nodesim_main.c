/*
 * nodesim_main.c — okv-nodesim: runs the node simulator over a range of
 * seeds (docs/testing.md "The node simulator").
 *
 *   okv-nodesim --seeds 10000 --from 1        the CI run; any failure exits 1
 *   okv-nodesim --seed 4711 --nodes 5 -v      replays one seed, with its events
 *   okv-nodesim --plant lease-stale --seeds 2000
 *                                             a planted bug: exits 0 once a
 *                                             seed catches it, 1 if none does
 *
 * Without --nodes, odd seeds run 3 nodes and even seeds 5.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nodesim.h"

static const struct {
    const char *name;
    unsigned bit;
    const char *what;
} plants[] = {
    { "lease-stale", PLANT_LEASE_STALE, "lease reads ignore applied < commit (item 1)" },
    { "restart-campaign", PLANT_RESTART_CAMPAIGN, "a restarted node campaigns at once (item 2)" },
    { "late-timeout-now", PLANT_LATE_TIMEOUT_NOW, "a lease is retaken after an aborted transfer "
                                                  "(item 3)" },
    { "proposal-order", PLANT_PROPOSAL_ORDER, "proposals answered in arrival order (item 4)" },
    { "request-id-reset", PLANT_REQUEST_ID_RESET, "a new session restarts request ids at 1 "
                                                  "(item 5)" },
    { "read-retry-ctx", PLANT_READ_RETRY_CTX, "a read's retry drops its earlier context (item 6)" },
    { "rebalance-lagging", PLANT_REBALANCE_LAGGING, "rebalance toward a lagging node (item 7)" },
    { "read-ctx-reset", PLANT_READ_CTX_RESET, "read contexts restart at 1 on every start "
                                              "(found by the simulator)" },
    { "vote-nosync", PLANT_VOTE_NOSYNC, "a new term or vote is not synced (only commit-only "
                                        "hard states may skip the sync)" },
    { "clock-beyond", 0, "one node's clock runs at a quarter speed, beyond the lease's bound" },
    /* Transactions (tpc.c's and fsm.c's failpoints, sim_failpoints.c);
     * these run the transactional workload (--bank) */
    { "tpc-drop-commit", PLANT_TPC_DROP_COMMIT, "a participant other than the coordinator "
                                                "drops its writes on COMMIT (--bank)" },
    { "txn-check-ignore-locks", PLANT_TXN_CHECK_IGNORE_LOCKS, "a read-only check passes over "
                                                              "an exclusive lock (--bank)" },
    { "txn-partial", PLANT_TXN_PARTIAL, "a transaction stopped by a floor still applies the "
                                        "writes before it (--bank)" },
};
#define BANK_PLANTS (PLANT_TPC_DROP_COMMIT | PLANT_TXN_CHECK_IGNORE_LOCKS | PLANT_TXN_PARTIAL)
#define NPLANTS (sizeof plants / sizeof plants[0])

static void usage(void)
{
    fprintf(stderr, "usage: okv-nodesim [--seeds N] [--from S | --seed S] [--nodes 3|5] "
                    "[--plant NAME] [--faults all|staged] [--fault-ms MS] [--bank] [-v]\n"
                    "  --bank: also run the transactional workload (2PC transfers, "
                    "sim_bank.c)\nplanted bugs:\n");
    for (size_t i = 0; i < NPLANTS; i++)
        fprintf(stderr, "  %-22s %s\n", plants[i].name, plants[i].what);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    uint64_t from = 1, count = 1;
    int nodes = 0, verbose = 0, plant = -1, staged = 0, bank = 0;
    uint64_t fault_ms = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = 1;
            continue;
        }
        if (!strcmp(a, "--bank")) {
            bank = 1;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (!strcmp(a, "--seeds"))
            count = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--from") || !strcmp(a, "--seed"))
            from = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--nodes"))
            nodes = atoi(v);
        else if (!strcmp(a, "--faults") && (!strcmp(v, "all") || !strcmp(v, "staged")))
            staged = !strcmp(v, "staged");
        else if (!strcmp(a, "--fault-ms"))
            fault_ms = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--plant")) {
            for (size_t k = 0; k < NPLANTS; k++)
                if (!strcmp(v, plants[k].name))
                    plant = (int)k;
            if (plant < 0) {
                usage();
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    if ((nodes && nodes != 3 && nodes != 5) || count == 0) {
        usage();
        return 2;
    }
    if (plant >= 0 && (plants[plant].bit & BANK_PLANTS))
        bank = 1;
    double t0 = mono_s();
    uint64_t events = 0;
    for (uint64_t k = 0; k < count; k++) {
        sim_options o;
        memset(&o, 0, sizeof o);
        o.seed = from + k;
        o.nodes = nodes ? nodes : (o.seed % 2 ? 3 : 5);
        o.verbose = verbose;
        o.staged_only = staged;
        o.fault_us = fault_ms * 1000;
        o.bank = bank;
        if (plant >= 0) {
            o.planted = plants[plant].bit;
            o.clock_beyond = plants[plant].bit == 0;
        }
        char why[1200];
        uint64_t ev = 0;
        int bad = sim_run(&o, why, sizeof why, &ev);
        events += ev;
        if (!bad)
            continue;
        char replay[200];
        char extra[64] = "";
        if (fault_ms)
            snprintf(extra, sizeof extra, " --fault-ms %llu", (unsigned long long)fault_ms);
        snprintf(replay, sizeof replay, "okv-nodesim --seed %llu --nodes %d%s%s%s%s%s",
                 (unsigned long long)o.seed, o.nodes, plant >= 0 ? " --plant " : "",
                 plant >= 0 ? plants[plant].name : "", staged ? " --faults staged" : "",
                 bank && !(plant >= 0 && (plants[plant].bit & BANK_PLANTS)) ? " --bank" : "",
                 extra);
        if (plant >= 0) {
            printf("planted %s: caught by seed %llu, after %llu seeds (%.1f s): %s\n"
                   "replay: %s -v\n",
                   plants[plant].name, (unsigned long long)o.seed, (unsigned long long)k + 1,
                   mono_s() - t0, why, replay);
            return 0;
        }
        printf("seed %llu FAILED: %s\nreplay: %s -v\n", (unsigned long long)o.seed, why, replay);
        sim_bank_stats_print();
        return 1;
    }
    double dt = mono_s() - t0;
    if (plant >= 0) {
        printf("planted %s: NOT caught in %llu seeds from %llu (%.1f s)\n", plants[plant].name,
               (unsigned long long)count, (unsigned long long)from, dt);
        return 1;
    }
    printf("%llu seeds from %llu passed: %llu events in %.1f s (%.0f seeds/s)\n",
           (unsigned long long)count, (unsigned long long)from, (unsigned long long)events, dt,
           dt > 0 ? (double)count / dt : 0.0);
    sim_bank_stats_print();
    return 0;
}
