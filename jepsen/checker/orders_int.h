/*
 * orders_int.h — the orders checker's state, shared by its files:
 *   orders_check.c    the steps, the verdict, the explanation
 *   orders_collect.c  reading the history: format, entities, final state
 *   orders_idem.c     keys, lost acknowledged records, payments per order
 *   orders_money.c    stock and accounts
 *   orders_status.c   order states and transitions over time
 *
 * Everything is named by strmap ids: a customer, sku, account; an order
 * ("customer/order_id": ids hold no '/'); a key ("kind:key"); a payment,
 * refund ("customer/id"), reservation ("sku/id") or deposit
 * ("account/key") of the final state.
 */
#ifndef OKV_JEPSEN_ORDERS_INT_H
#define OKV_JEPSEN_ORDERS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "orders_check.h"
#include "sbuf.h"
#include "strmap.h"

#define NONE ((size_t)-1)

/* Fields of an order tuple O and of its times (orders_check.h). */
enum { O_ID, O_CUSTOMER, O_STATUS, O_TOTAL, O_CAPTURED, O_REFUNDED, O_PAYMENT, O_ACCOUNT,
       O_MERCHANT, O_ITEMS, O_TIMES, O_FIELDS };
enum { T_CREATED, T_PAID, T_SHIPPED, T_COMPLETED, T_CANCELLED, T_REFUNDED, T_FIELDS };
enum { S_CREATED = 1, S_PAID, S_SHIPPED, S_COMPLETED, S_CANCELLED, S_REFUNDED,
       S_PARTIALLY_REFUNDED, S_COUNT };

/* The kinds of keyed requests. */
enum { K_CREATE, K_PAY, K_REFUND, K_DEPOSIT, K_RESERVE, K_KINDS };

/* Anomaly classes, in the order the explanation lists them. */
enum { A_KEY_TWO, A_PAID_TWICE, A_LOST_ORDER, A_LOST_PAYMENT, A_LOST_REFUND,
       A_LOST_RESERVATION, A_LOST_DEPOSIT, A_FAILED_PRESENT, A_OVERSELL, A_STOCK,
       A_RES_STATUS, A_ACCOUNT, A_NEGATIVE, A_ILLEGAL_STATE, A_ILLEGAL_TRANSITION,
       A_OVER_REFUND, A_REFUND_MISMATCH, A_CLASSES };

#define DETAILS 3 /* cases explained per class */

/* One observation of an order: where an ok op returned its tuple. */
typedef struct o_snap {
    size_t ord;
    const history_value *o;
    size_t inv, ret;        /* positions of the op */
    bool timed;             /* the state held within [inv, ret]; a keyed
                               request's answer may replay an older one */
} o_snap;

typedef struct ord_info {
    const history_value *final;   /* the tuple in final-orders, or NULL */
    size_t final_inv;
    size_t n_payments;            /* final payments naming this order */
    size_t first_payment;         /* pays map id of the first, or NONE */
    int64_t refunds;              /* sum of its final refunds */
    size_t first_refund;          /* refunds map id, NONE */
    uint32_t flagged;             /* classes already reported for it (1 << A_*) */
} ord_info;

typedef struct cust_info {
    size_t orders_inv, payments_inv;  /* final reads (invoke positions), NONE */
    const history_value *orders;      /* [O, ...] */
    const history_value *payments, *refunds;
} cust_info;

typedef struct sku_info {
    bool has_init;
    int64_t init;
    size_t init_inv;
    size_t final_inv;
    int64_t available;
    const history_value *reservations;
} sku_info;

typedef struct acct_info {
    size_t final_inv;
    int64_t balance;
    const history_value *deposits;    /* [[key, amount], ...] */
} acct_info;

typedef struct key_info {
    int kind;
    const char *key;
    const char *answer;           /* the first id an ok attempt answered */
    size_t answer_inv;
    bool any_ok, any_info;
    size_t first_inv;
    size_t n_records;             /* records of this key in the final state */
    size_t record_inv;            /* the final read that showed one */
} key_info;

/* A record of the final state: payment, refund, reservation or deposit. */
typedef struct frec {
    const history_value *v;
    size_t inv;                   /* the final read's invoke position */
    size_t owner;                 /* customer / sku / account id */
} frec;

typedef struct ostate {
    const history *h;
    check_result *res;
    strmap customers, orders, skus, accounts, keys, pays, refunds, reservations, deposits;
    cust_info *cust;
    ord_info *ord;
    sku_info *sku;
    acct_info *acct;
    key_info *key;
    frec *pay, *refund, *resv, *dep;
    size_t cap_cust, cap_ord, cap_sku, cap_acct, cap_key, cap_pay, cap_refund, cap_resv, cap_dep;
    o_snap *snaps;
    size_t n_snaps, cap_snaps;
    bool all_payments_read;       /* every customer's final-payments was read */
    size_t final_reads;
    uint64_t ops_by_outcome[3];   /* ok, fail, info of the main-phase writes */
    sbuf detail[A_CLASSES];
    size_t n_detail[A_CLASSES];
    bool oom;
} ostate;

/* ---- orders_collect.c ---- */
int orders_collect(ostate *s, okv_error *err);
/* The id a keyed request's ok value at index `at` answered: a string, or
 * the id of the order tuple there (create). */
const char *orders_answer(const history_value *ok, int at);
/* Keyed op f: its kind and the index of its key in the invoke value, and
 * the return value is the index of the answered id in the ok value (-1:
 * none, a deposit). -1 for an op that is not a keyed request. */
int orders_keyed(const char *f, int *kind, int *key_at);
/* The id of s's map entry for these parts joined by '/', adding it (and
 * growing the matching info array, zeroed with NONE positions). NONE when
 * memory ran out (s->oom set). */
size_t orders_order_id(ostate *s, const char *customer, const char *oid);

/* ---- orders_idem.c, orders_money.c, orders_status.c ---- */
void orders_check_keys(ostate *s);
void orders_check_lost(ostate *s);
void orders_check_stock(ostate *s);
void orders_check_accounts(ostate *s);
void orders_check_states(ostate *s);
void orders_check_paths(ostate *s);

/* ---- orders_check.c: reporting ---- */
/* Counts one case of class c, example = the op index at position pos; 1 if
 * the caller should describe it (fewer than DETAILS so far), into *b. */
bool orders_flag(ostate *s, int c, size_t pos, sbuf **b);
/* "create [\"c1\",\"k7\",...] (index 12, process 3, invoked t=..s, ok t=..s)" */
void orders_describe(const ostate *s, sbuf *b, size_t inv);
/* A value as compact JSON, strings quoted, cut after max bytes. */
void orders_value(sbuf *b, const history_value *v, size_t max);

/* ---- helpers on values ---- */
static inline const char *ov_str(const history_value *v)
{
    return v && v->kind == HV_OTHER ? v->s : NULL;
}
static inline int64_t ov_int(const history_value *v) { return v->kind == HV_INT ? v->i : 0; }
int orders_status_of(const char *name);          /* S_*, or 0 */
const char *orders_status_name(int status);
const char *orders_kind_name(int kind);

#endif
