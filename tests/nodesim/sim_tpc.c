/*
 * sim_tpc.c — the simulator's own build of server/txn/tpc.c: the same
 * source, with its failpoints compiled in and answered by the planted-bug
 * switches (nodesim_failpoint, sim_failpoints.c) instead of by
 * common/failpoint.c.
 *
 * tpc.c lives in okv_request, which is built once, without OKV_SIM_PLANTED
 * (orderkvd links it). okv-nodesim links this object directly, so the
 * linker takes every tpc_* symbol from here and never pulls tpc.o out of
 * the okv_request archive; orderkvd and every other program keep the
 * production tpc.c, whose failpoints exist only in ORDERKV_FAILPOINTS
 * builds. The rename keeps this apart from okv_fp_eval in a failpoints
 * build of the simulator, where common/failpoint.c is linked too.
 */
#ifndef ORDERKV_FAILPOINTS
#define ORDERKV_FAILPOINTS 1
#endif
#define okv_fp_eval nodesim_failpoint
#include "../../server/txn/tpc.c"
