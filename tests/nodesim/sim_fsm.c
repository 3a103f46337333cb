/*
 * sim_fsm.c — the simulator's own build of server/sm/fsm.c, as sim_tpc.c is
 * of tpc.c: the same source, its failpoints answered by the planted-bug
 * switches (sim_failpoints.c). Linked directly into okv-nodesim, it stands
 * in for fsm.o of the okv_replica_sim archive, which the linker then never
 * pulls; orderkvd's okv_replica is untouched.
 */
#ifndef ORDERKV_FAILPOINTS
#define ORDERKV_FAILPOINTS 1
#endif
#define okv_fp_eval nodesim_failpoint
#include "../../server/sm/fsm.c"
