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
 * completion thread, or on this thread if nothing could be sent). */
void tpc_send(tpc_driver *d, const tpc_msg *m, int timeout_ms, tpc_step_fn fn, void *arg);

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
