/*
 * workload_orders.h — the orders workload's pieces (workload_orders.c: the
 * ops of the main phase; workload_orders_req.c: the keyed requests and
 * their resends; workload_orders_dup.c: copies of one keyed request sent
 * at once; workload_orders_final.c: setup and the final reads). The history format is the checker's (jepsen/checker/orders_check.h).
 */
#ifndef OKV_JEPSEN_WORKLOAD_ORDERS_H
#define OKV_JEPSEN_WORKLOAD_ORDERS_H

#include <pthread.h>

#include "orderkv_orders.h"
#include "runner.h"

#define OW_CUSTOMERS 6
#define OW_ACCOUNTS 4
#define OW_SKUS 3            /* hot skus: every reservation takes from one of them */
#define OW_STOCK 60          /* units of each hot sku: sold out within seconds,
                                then cancels give units back */
#define OW_SETUP_DEPOSIT 2000000   /* minor units per account at the start */
#define OW_CURRENCY "CNY"
#define OW_RETRIES 5         /* attempts of one keyed request after ambiguous outcomes */
#define OW_RETRY_PAUSE_MS 50
#define OW_RECENT 48         /* ops on orders pick among the latest ones */
#define OW_MAX_ORDERS 65536

/* An order the workload placed (acknowledged), for later ops on it. */
typedef struct ow_order {
    char customer[16];
    char id[136];
    int64_t total;
} ow_order;

typedef struct ow_state {
    pthread_mutex_t mu;
    ow_order *orders;
    size_t n;
} ow_state;

/* Names of the fixed entities. */
void ow_customer(char *buf, size_t n, int i);
void ow_account(char *buf, size_t n, int i);
void ow_sku(char *buf, size_t n, int i);
/* A fresh idempotency key, unique in the run ("<prefix><thread>-<seq>"). */
void ow_new_key(jclient *cl, const char *prefix, char *buf, size_t n);

/* The history's outcome of an orders call: ok; fail for a rule's refusal
 * (a refused request changed nothing) and for the codes that mean nothing
 * was applied; info for the rest (OKV_EUNKNOWN, OKV_EINPROGRESS: a copy may
 * still apply, ...). */
hist_type ow_outcome(int rc);
/* Worth resending the same keyed request: the outcome is unknown, or the
 * request did not get through. */
int ow_should_retry(int rc);

/* The order tuple O of orders_check.h; NULL order -> null. */
jv *ow_order_jv(const Orderkv__V1__Order *o);
/* Remembers an acknowledged order. */
void ow_remember(jclient *cl, const Orderkv__V1__Order *o);
/* A recent order, copied to *out: 1, or 0 if there is none yet. */
int ow_pick(jclient *cl, ow_order *out);

/* The pay request every client sends for an order: its account and key
 * follow from the order, so copies from any thread are one request. */
void ow_pay_account(const char *order_id, char *buf, size_t n);

/* workload_orders_dup.c: several copies of one keyed request at once. */
void ow_dup_burst(jclient *cl);

/* workload_orders_final.c */
int ow_setup(jclient *cl);
void ow_final(jclient *cl);

/* Keyed calls shared by the step and the bursts: build the invoke value,
 * run the call, the ok value. */
typedef enum ow_kind { OW_CREATE, OW_PAY, OW_DEPOSIT, OW_RESERVE } ow_kind;

typedef struct ow_req {
    ow_kind kind;
    Orderkv__V1__CreateOrderRequest create;
    Orderkv__V1__CreateOrderItem items[2], *item_ptrs[2];
    Orderkv__V1__PayOrderRequest pay;
    Orderkv__V1__DepositRequest deposit;
    Orderkv__V1__ReserveStockRequest reserve;
    char key[64], customer[16], account[16], sku[16], order_id[136], plain_sku[16];
    ow_order made;          /* a create's order, once an attempt was ok */
    int made_ok;
} ow_req;

const char *ow_kind_f(ow_kind k);
jv *ow_req_jv(const ow_req *q);
/* The ok value of q answered by resp (the call's response message). */
jv *ow_ok_jv(const ow_req *q, const void *resp);
/* Starts q's call: sync when cb is NULL (then *resp is set), else async. */
int ow_req_call(jclient *cl, const ow_req *q, void **resp, okv_callback cb, void *arg);
/* A create's acknowledged order: remembered, and kept in q->made. */
void ow_req_made(jclient *cl, ow_req *q, const Orderkv__V1__Order *o);
/* Runs q as one op per attempt until it gets an answer or OW_RETRIES. */
void ow_req_run(jclient *cl, ow_req *q);
/* Builders. */
void ow_req_create(jclient *cl, ow_req *q, int keyed);
int ow_req_pay(jclient *cl, ow_req *q, const ow_order *o);
void ow_req_deposit(jclient *cl, ow_req *q);
void ow_req_reserve(jclient *cl, ow_req *q);

#endif
