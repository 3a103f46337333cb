/*
 * sim_failpoints.c — the failpoints of the simulator's own builds of tpc.c
 * and fsm.c (sim_tpc.c, sim_fsm.c), answered by the planted-bug switches
 * (server/replica/planted.h, --plant). Every other name never fires.
 */
#include <string.h>

#include "nodesim.h"

int nodesim_failpoint(const char *name)
{
    if (!strcmp(name, "tpc.resolve.drop_commit"))
        return OKV_PLANTED(PLANT_TPC_DROP_COMMIT);
    if (!strcmp(name, "txn.check.ignore_locks"))
        return OKV_PLANTED(PLANT_TXN_CHECK_IGNORE_LOCKS);
    if (!strcmp(name, "txn.partial"))
        return OKV_PLANTED(PLANT_TXN_PARTIAL);
    /* Not planted here (the jepsen suite catches them: jepsen/tests/
     * planted.sh): tpc.prepare.ignore_tombstone (the simulated clients do
     * not settle unknown outcomes), tpc.locks.skip_shared and
     * tpc.locks.shared_admits_writer (the transfers' only condition always
     * holds), fsm.dedup.skip (exactly-once: C2 of the registers). */
    return 0;
}
