/*
 * orders_exec.h — running one orders request (docs/orders.md, "How the
 * service runs a request"): read the records the rules need, plan
 * (server/orders, pure), commit the plan as one transaction through the
 * node's internal client, and answer; again from the reads when the
 * records changed meanwhile.
 *
 * Everything is asynchronous: the reads and the commit are the internal
 * client's *_async calls, and each step runs on its completion thread (a
 * backoff after a conflict waits on the 2PC sweeper's timer), so no gRPC
 * thread ever waits for a transaction.
 *
 * An outcome the service cannot know (the commit got no answer) is retried
 * only when running the request again cannot do it twice: a request with
 * an idempotency key (the second run finds the first's record and replays
 * its answer) or one that is naturally idempotent (ship, complete, cancel,
 * create-account, set-stock: the second run finds it already so). Anything
 * else is answered OKV_EUNKNOWN with a message saying how to find out.
 */
#ifndef OKV_SERVER_ORDERS_EXEC_H
#define OKV_SERVER_ORDERS_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"
#include "order_keys.h"
#include "order_plan.h"

#define OX_MAX_READS 4

typedef struct ox ox;

/* One record a request reads before planning. */
typedef struct ox_read {
    ord_table table;
    ord_key key;
    /* An idempotency record: if it was absent and the plan refuses, it is
     * read again before the refusal is answered (orders_exec.c,
     * confirm_refusal). */
    int idem;
    int found;            /* after the read */
    uint8_t *val;         /* owned by the ox */
    size_t len;
    uint64_t version;
} ox_read;

/* Plans the request from x's reads: 0 and *out, or an error in err. */
typedef int (*ox_plan_fn)(ox *x, void *req, ord_plan **out, ord_error *err);

typedef struct ox_spec {
    const char *what;          /* "pay order", for messages */
    void *req;                 /* the decoded request, taken (freed with req_free) */
    void (*req_free)(void *req);
    ox_plan_fn plan;
    int idempotent;            /* running it twice cannot do it twice (above) */
    size_t nreads;
    ox_read reads[OX_MAX_READS];   /* table and key set; the rest is filled in */
} ox_spec;

/* Runs spec for call; answers call exactly once. spec is copied. */
void ox_start(node *n, rpc_call *call, const ox_spec *spec);

/* The read at i, after the reads: NULL if absent. */
const ox_read *ox_read_at(const ox *x, size_t i);

/* A fresh id for a new order, payment, refund or reservation: unique in
 * the cluster (node id, wall clock, a counter), and sorting by time. */
void ox_new_id(const ox *x, char *buf, size_t cap);

/* The node's wall clock in ms, as the plans stamp records. */
int64_t ox_now_ms(void);

/* Answers call with an orders error (every response message carries
 * Error as field 1 and OrdersError as field 2). */
void ox_reply_error(rpc_call *call, const ord_error *err);

/* ox_reply_error with the code, reason and message given here. */
void ox_reply_errorf(rpc_call *call, int code, int reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
