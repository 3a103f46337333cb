/*
 * tpc_int.h — what the files of the node's two-phase commit share.
 */
#ifndef OKV_SERVER_TPC_INT_H
#define OKV_SERVER_TPC_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "catalog.h"
#include "orderkv.h"
#include "tpc_driver.h"

struct tpc_driver {
    struct node *n;
    okv_client *client;        /* internal: steps to other partitions' leaders */
    int timeout_ms;            /* a transaction's deadline */
    pthread_t sweeper;
    int sweeper_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;                  /* guarded by mu */
    _Atomic int stopping;
    _Atomic long sweep_live;   /* sweeper chains in flight */
    struct tpc_later *later;   /* steps to send later, by due time; guarded by mu */
    struct tpc_local *local;   /* steps proposed here, not yet answered; guarded by mu */
    int stopped;               /* tpc_driver_stop ran */
    pthread_mutex_t client_mu; /* client (closed at stop) against its holders */
    pthread_cond_t client_cv;
    int client_users;          /* tpc_driver_client_hold without release */
    pthread_mutex_t fin_mu;    /* guards the FINISH queues (tpc_batch.c) */
    struct tpc_finq **finq;
    size_t nfinq;
    int fin_stop;
};

/* What one step's leader answered: rc is the call's (OKV_OK: applied), the
 * rest the step's outcome. */
typedef struct tpc_reply {
    int rc;
    uint8_t state;            /* enum tpc_state */
    tpc_fail fail;
    char msg[256];
} tpc_reply;

typedef void (*tpc_step_fn)(void *arg, const tpc_reply *r);

/* Sends m to the leader of m->self; fn runs exactly once (on the client's
 * completion thread, on the raft loop thread when this node leads the
 * group, or on this thread if nothing could be sent). */
void tpc_send(tpc_driver *d, const tpc_msg *m, int timeout_ms, tpc_step_fn fn, void *arg);

/* tpc_send through the internal client (KV.TxnPart to the leader). */
void tpc_send_remote(tpc_driver *d, const tpc_msg *m, int timeout_ms, tpc_step_fn fn,
                     void *arg);

/* tpc_send when this node leads m->self's group: proposes the step to the
 * raft loop directly (tpc_local.c). Returns 0, having done nothing, when
 * it does not (or is stopping, or short of memory): send it remotely. */
typedef struct tpc_local tpc_local;
int tpc_send_local(tpc_driver *d, const tpc_msg *m, int timeout_ms, tpc_step_fn fn, void *arg);

/* Queues FINISH m for its group; queued FINISHes go as one entry
 * (tpc_batch.c). Nobody is answered: what is lost the sweeper redoes. */
typedef struct tpc_finq tpc_finq;
void tpc_finish(tpc_driver *d, const tpc_msg *m);
/* No batch is sent after stop; free releases the queues (after the raft
 * store is freed: a batch's answer looks at its queue). */
void tpc_finish_stop(tpc_driver *d);
void tpc_finish_free(tpc_driver *d);

/* Answers the local steps past their time (all: every one, the node is
 * stopping) as unanswered. Takes mu; call without it. */
void tpc_local_expire(tpc_driver *d, int all);

/* tpc_send after delay_ms (the sweeper thread sends it). When the driver
 * stops first, fn gets OKV_EUNAVAILABLE instead. */
void tpc_send_later(tpc_driver *d, const tpc_msg *m, int delay_ms, int timeout_ms,
                    tpc_step_fn fn, void *arg);

/* The catalog's table with this id (NULL if none). */
const catalog_table *tpc_table(tpc_driver *d, uint32_t table_id);

/* OKV code of a proto ErrorCode in a refusal. */
int tpc_code_of(int error_code);

int tpc_driver_stopping(tpc_driver *d);

#endif
