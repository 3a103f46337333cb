/*
 * tpc_driver.h — the node side of two-phase commit (docs/transactions.md,
 * "Across partitions"): what sends the steps whose rules tpc.h applies.
 *
 *   tpc_driver_commit   drives one transaction: PREPARE at every
 *                       participant (the coordinator's records PENDING),
 *                       DECIDE at the coordinator, the answer from the
 *                       applied decision, then RESOLVE everywhere and
 *                       FINISH;
 *   the sweeper         (a thread) finishes what a crash or a lost message
 *                       left in the groups this node leads: it decides a
 *                       PENDING record past its deadline (CHECK with abort),
 *                       resends RESOLVE for decided, unfinished records,
 *                       asks the coordinator about PREPARED participants
 *                       past their deadline, and forgets settled records
 *                       past their retention;
 *   tpc_driver_unlock   settles a lock a read or a write met.
 *
 * Every step travels as KV.TxnPart to the leader of its partition, through
 * an internal liborderkv client (routing, NOT_LEADER redirects, retries),
 * and is applied only when its entry applies (service_tpc.c). Steps are
 * idempotent (tpc.h T4), so resending any of them, from any node, at any
 * time is safe; safety never depends on this file's timing, only
 * liveness does.
 *
 * Threads: callbacks run on the internal client's completion thread, or
 * on the raft loop thread for a step to a group this node leads
 * (tpc_local.c): they must not block.
 */
#ifndef OKV_SERVER_TPC_DRIVER_H
#define OKV_SERVER_TPC_DRIVER_H

#include <stdint.h>

#include "errors.h"
#include "tpc.h"
#include "txn.h"

struct node;
typedef struct tpc_driver tpc_driver;

/* Starts the driver and its sweeper thread (cluster mode only).
 * timeout_ms: each transaction's deadline (orderkvd --txn-timeout-ms); past
 * it (and a grace period) the sweepers may abort one still undecided. */
int tpc_driver_new(tpc_driver **out, struct node *n, int timeout_ms, okv_error *err);
/* Stops the sweeper, answers the steps proposed to this node's own groups
 * as "stopping", and waits for every step sent to other nodes (each is
 * bounded by its deadline). Call it while the raft store still runs;
 * accepts NULL. */
void tpc_driver_stop(tpc_driver *d);
/* Frees the driver (stopping it first if need be). Call it after the raft
 * store is freed: a step proposed here may still be answered until then,
 * and its answer looks at the driver. Accepts NULL. */
void tpc_driver_free(tpc_driver *d);

typedef struct tpc_answer {
    int code;           /* OKV_OK committed; OKV_ECONDITION / OKV_ECONFLICT / OKV_EINVAL
                         * aborted; OKV_EUNKNOWN undetermined (ask TxnStatus) */
    uint32_t failed;    /* OKV_ECONDITION etc.: the item, numbered as in the request */
    uint8_t reason;     /* enum txn_fail */
    char msg[256];
} tpc_answer;

typedef void (*tpc_done_fn)(void *arg, const tpc_answer *a);

/* Commits t (validated, keys in several partitions) as transaction id;
 * t is copied. done runs exactly once, on another thread. */
void tpc_driver_commit(tpc_driver *d, const txn *t, tpc_id id, tpc_done_fn done, void *arg);

/* A fresh transaction id for a commit that has no client's id (a KV.Txn
 * call without one, the orders service's own commits): unique in the
 * cluster, never reused across restarts. */
tpc_id tpc_driver_new_id(tpc_driver *d);

/* A read (or write) met holder's lock in (table, partition). Asks the
 * coordinator; a decided transaction is resolved there. done(arg, rc):
 * OKV_OK resolved (read again), OKV_ECONFLICT undecided (the value under the
 * lock is the current one), else an error. */
void tpc_driver_unlock(tpc_driver *d, uint32_t table_id, uint32_t partition, tpc_id holder,
                       void (*done)(void *arg, int rc), void *arg);

/* Runs fn(arg, 0) on the sweeper thread about delay_ms from now (it must
 * not block), or fn(arg, 1) once the driver stops first. For the orders
 * service's backoff between attempts. */
void tpc_driver_after(tpc_driver *d, int delay_ms, void (*fn)(void *arg, int stopping),
                      void *arg);

/* The node's internal client (routing to every partition's leader), for
 * other services of the node; valid until tpc_driver_stop. */
struct okv_client *tpc_driver_client(tpc_driver *d);
/* The client for one submission from a thread that may run after
 * tpc_driver_stop (the raft loop answers this node's own proposals until
 * the store stops): NULL once stopping, else held until
 * tpc_driver_client_release, which must follow at once (stop waits). */
struct okv_client *tpc_driver_client_hold(tpc_driver *d);
void tpc_driver_client_release(tpc_driver *d);

/* The wall clock in milliseconds (deadlines travel between nodes). */
uint64_t tpc_wall_ms(void);

#endif
