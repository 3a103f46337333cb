/*
 * workload_orders_final.c — the orders workload's setup and final reads.
 *
 * setup (thread 0, recorded like any op; each call repeated until ok):
 * set-stock of every hot sku (before any reservation, so the checker's
 * stock equation starts there), open-account of every account, and one
 * keyed deposit of OW_SETUP_DEPOSIT into each.
 *
 * final (after healing; the entities split over the threads, each read
 * tried up to OW_FINAL_ATTEMPTS times):
 *   final-orders    every order of a customer (ListOrders, all pages)
 *   final-payments  the customer's Payment and Refund records: scans of
 *                   table payments, prefixes "<customer>/p/", "<customer>/r/"
 *   final-stock     GetStock and the sku's Reservation records (scan of
 *                   table stock, prefix "<sku>/r/")
 *   final-account   GetAccount's balance and the deposits recorded: the
 *                   IdempotencyRecords under "<account>/i/deposit/" of table
 *                   accounts, each holding the DepositResponse it answered
 * The raw records are read with plain okv_scan, not through the service,
 * so the checker sees what is stored. Nothing writes any more, so reads
 * made one after the other describe one state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload_orders.h"

#define OW_FINAL_ATTEMPTS 8
#define OW_FINAL_PAUSE_MS 200
#define OW_SETUP_ATTEMPTS 40

/* ---- setup ----------------------------------------------------------------------- */

/* One setup call until ok: 0, or -1 after OW_SETUP_ATTEMPTS. */
static int setup_call(jclient *cl, const char *f, jv *value, int which, const char *name)
{
    int t = runner_config(cl->r)->op_timeout_ms;
    for (int attempt = 0; attempt < OW_SETUP_ATTEMPTS; attempt++) {
        char err[512], key[64];
        int rc;
        client_invoke(cl, f, jv_copy(value));
        if (which == 0) {
            Orderkv__V1__SetStockRequest r = ORDERKV__V1__SET_STOCK_REQUEST__INIT;
            r.sku = (char *)name;
            r.available = OW_STOCK;
            rc = okv_stock_set(cl->c, &r, NULL, t);
        } else if (which == 1) {
            Orderkv__V1__CreateAccountRequest r = ORDERKV__V1__CREATE_ACCOUNT_REQUEST__INIT;
            r.account_id = (char *)name;
            r.currency = (char *)OW_CURRENCY;
            r.owner = (char *)"jepsen";
            rc = okv_account_create(cl->c, &r, NULL, t);
        } else {
            Orderkv__V1__DepositRequest r = ORDERKV__V1__DEPOSIT_REQUEST__INIT;
            snprintf(key, sizeof key, "setup-%s", name);
            r.account_id = (char *)name;
            r.amount = OW_SETUP_DEPOSIT;
            r.idempotency_key = key;
            rc = okv_account_deposit(cl->c, &r, NULL, t);
        }
        hist_type ht = ow_outcome(rc);
        client_complete(cl, ht, jv_copy(value), ht == HIST_OK ? NULL : client_error(cl, rc, err, sizeof err));
        if (rc == OKV_OK) {
            jv_free(value);
            return 0;
        }
        sleep_ms(250);
    }
    fprintf(stderr, "okv-jepsen: orders: setup %s %s never succeeded\n", f, name);
    jv_free(value);
    return -1;
}

int ow_setup(jclient *cl)
{
    char name[32], key[64];
    for (int i = 0; i < OW_SKUS; i++) {
        ow_sku(name, sizeof name, i);
        if (setup_call(cl, "set-stock", jv_pair(jv_str(name), jv_int(OW_STOCK)), 0, name))
            return -1;
    }
    for (int i = 0; i < OW_ACCOUNTS; i++) {
        ow_account(name, sizeof name, i);
        if (setup_call(cl, "open-account", jv_push(jv_list(), jv_str(name)), 1, name))
            return -1;
        snprintf(key, sizeof key, "setup-%s", name);
        jv *v = jv_pair(jv_str(name), jv_int(OW_SETUP_DEPOSIT));
        if (setup_call(cl, "deposit", jv_push(v, jv_str(key)), 2, name))
            return -1;
    }
    fprintf(stderr, "okv-jepsen: orders: %d customers, %d accounts, %d hot skus of %d units\n",
            OW_CUSTOMERS, OW_ACCOUNTS, OW_SKUS, OW_STOCK);
    return 0;
}

/* ---- scans ------------------------------------------------------------------------- */

typedef int (*row_fn)(jv *list, const char *key, size_t klen, const void *val, size_t vlen,
                      size_t prefix_len, char *err, size_t errsize);

/* Every row under prefix, each turned into a list item by fn. */
static int scan_all(jclient *cl, const char *table, const char *prefix, row_fn fn, jv *list,
                    char *err, size_t errsize)
{
    char *resume = NULL;
    size_t resume_len = 0;
    int rc;
    for (;;) {
        okv_scan_opts o = OKV_SCAN_OPTS_INIT;
        o.prefix = prefix;
        o.prefix_len = strlen(prefix);
        o.limit = 1000;
        o.resume = resume;
        o.resume_len = resume_len;
        o.timeout_ms = runner_config(cl->r)->op_timeout_ms;
        okv_scan_result *r = NULL;
        rc = okv_scan(cl->c, table, &o, &r);
        free(resume);
        resume = NULL;
        if (rc != OKV_OK) {
            client_error(cl, rc, err, errsize);
            return rc;
        }
        for (size_t i = 0; rc == OKV_OK && i < okv_scan_result_count(r); i++) {
            size_t klen, vlen;
            const char *k = okv_scan_result_key(r, i, &klen);
            const void *v = okv_scan_result_value(r, i, &vlen);
            rc = fn(list, k, klen, v, vlen, o.prefix_len, err, errsize);
        }
        const void *tok = okv_scan_result_resume(r, &resume_len);
        if (rc == OKV_OK && tok && (resume = malloc(resume_len ? resume_len : 1)) != NULL)
            memcpy(resume, tok, resume_len);
        okv_scan_result_free(r);
        if (rc != OKV_OK || !tok)
            return rc;
        if (!resume)
            return OKV_ENOMEM;
    }
}

/* A record that does not decode fails the read, saying where. */
static int undecodable(const char *what, const char *key, size_t klen, char *err, size_t n)
{
    snprintf(err, n, "a %s record at key '%.*s' does not decode", what, (int)klen, key);
    return OKV_ECORRUPT;
}

static jv *s_or_empty(const char *s) { return jv_str(s ? s : ""); }

static int payment_row(jv *list, const char *key, size_t klen, const void *val, size_t vlen,
                       size_t plen, char *err, size_t n)
{
    (void)plen;
    Orderkv__V1__Payment *p = orderkv__v1__payment__unpack(NULL, vlen, val);
    if (!p)
        return undecodable("payment", key, klen, err, n);
    jv *x = jv_pair(s_or_empty(p->payment_id), s_or_empty(p->order_id));
    jv_push(x, jv_int(p->amount));
    jv_push(x, s_or_empty(p->account_id));
    jv_push(list, jv_push(x, s_or_empty(p->idempotency_key)));
    orderkv__v1__payment__free_unpacked(p, NULL);
    return OKV_OK;
}

static int refund_row(jv *list, const char *key, size_t klen, const void *val, size_t vlen,
                      size_t plen, char *err, size_t n)
{
    (void)plen;
    Orderkv__V1__Refund *r = orderkv__v1__refund__unpack(NULL, vlen, val);
    if (!r)
        return undecodable("refund", key, klen, err, n);
    jv *x = jv_pair(s_or_empty(r->refund_id), s_or_empty(r->order_id));
    jv_push(x, s_or_empty(r->payment_id));
    jv_push(x, jv_int(r->amount));
    jv_push(x, s_or_empty(r->account_id));
    jv_push(list, jv_push(x, s_or_empty(r->idempotency_key)));
    orderkv__v1__refund__free_unpacked(r, NULL);
    return OKV_OK;
}

static int reservation_row(jv *list, const char *key, size_t klen, const void *val, size_t vlen,
                           size_t plen, char *err, size_t n)
{
    (void)plen;
    Orderkv__V1__Reservation *r = orderkv__v1__reservation__unpack(NULL, vlen, val);
    if (!r)
        return undecodable("reservation", key, klen, err, n);
    jv *x = jv_pair(s_or_empty(r->reservation_id), s_or_empty(r->order_id));
    jv_push(x, s_or_empty(r->customer_id));
    jv_push(x, jv_int(r->quantity));
    jv_push(list, jv_push(x, jv_str(r->status == ORDERKV__V1__RESERVATION_STATUS__RESERVATION_ACTIVE
                                         ? "ACTIVE" : r->status == ORDERKV__V1__RESERVATION_STATUS__RESERVATION_RELEASED
                                         ? "RELEASED" : "UNKNOWN")));
    orderkv__v1__reservation__free_unpacked(r, NULL);
    return OKV_OK;
}

/* A deposit's idempotency record: [key, the amount its response says]. */
static int deposit_row(jv *list, const char *key, size_t klen, const void *val, size_t vlen,
                       size_t plen, char *err, size_t n)
{
    Orderkv__V1__IdempotencyRecord *rec = orderkv__v1__idempotency_record__unpack(NULL, vlen, val);
    Orderkv__V1__DepositResponse *d =
        rec ? orderkv__v1__deposit_response__unpack(NULL, rec->response.len, rec->response.data) : NULL;
    if (d) {
        char k[300];
        snprintf(k, sizeof k, "%.*s", (int)(klen - plen), key + plen);
        jv_push(list, jv_pair(jv_str(k), jv_int(d->amount)));
        orderkv__v1__deposit_response__free_unpacked(d, NULL);
    }
    if (rec)
        orderkv__v1__idempotency_record__free_unpacked(rec, NULL);
    return d ? OKV_OK : undecodable("deposit idempotency", key, klen, err, n);
}

/* ---- the final reads ------------------------------------------------------------------ */

static int read_orders(jclient *cl, const char *cust, jv *list, char *err, size_t n)
{
    char after[160] = "";
    for (;;) {
        Orderkv__V1__ListOrdersRequest r = ORDERKV__V1__LIST_ORDERS_REQUEST__INIT;
        r.customer_id = (char *)cust;
        r.limit = 1000;
        r.start_after = after;
        Orderkv__V1__ListOrdersResponse *resp = NULL;
        int rc = okv_order_list(cl->c, &r, &resp, runner_config(cl->r)->op_timeout_ms);
        if (rc != OKV_OK) {
            client_error(cl, rc, err, n);
            return rc;
        }
        for (size_t i = 0; i < resp->n_orders; i++)
            jv_push(list, ow_order_jv(resp->orders[i]));
        int more = resp->next_start_after && *resp->next_start_after;
        if (more)
            snprintf(after, sizeof after, "%s", resp->next_start_after);
        okv_orders_response_free(resp);
        if (!more)
            return OKV_OK;
    }
}

/* One final read of entity `name`: f, and the ok value's extra items. */
static int final_one(jclient *cl, const char *f, const char *name, jv *ok, char *err, size_t n)
{
    char prefix[64];
    int t = runner_config(cl->r)->op_timeout_ms, rc;
    if (strcmp(f, "final-orders") == 0) {
        jv *l = jv_list();
        rc = read_orders(cl, name, l, err, n);
        jv_push(ok, l);
        return rc;
    }
    if (strcmp(f, "final-payments") == 0) {
        jv *p = jv_list(), *r = jv_list();
        snprintf(prefix, sizeof prefix, "%s/p/", name);
        rc = scan_all(cl, "payments", prefix, payment_row, p, err, n);
        snprintf(prefix, sizeof prefix, "%s/r/", name);
        if (rc == OKV_OK)
            rc = scan_all(cl, "payments", prefix, refund_row, r, err, n);
        jv_push(jv_push(ok, p), r);
        return rc;
    }
    jv *l = jv_list();
    int64_t amount = 0;
    if (strcmp(f, "final-stock") == 0) {
        Orderkv__V1__GetStockRequest r = ORDERKV__V1__GET_STOCK_REQUEST__INIT;
        Orderkv__V1__GetStockResponse *resp = NULL;
        r.sku = (char *)name;
        rc = okv_stock_get(cl->c, &r, &resp, t);
        amount = rc == OKV_OK ? resp->available : 0;
        okv_orders_response_free(resp);
        snprintf(prefix, sizeof prefix, "%s/r/", name);
        if (rc == OKV_OK)
            rc = scan_all(cl, "stock", prefix, reservation_row, l, err, n);
        else
            client_error(cl, rc, err, n);
    } else {
        Orderkv__V1__GetAccountRequest r = ORDERKV__V1__GET_ACCOUNT_REQUEST__INIT;
        Orderkv__V1__GetAccountResponse *resp = NULL;
        r.account_id = (char *)name;
        rc = okv_account_get(cl->c, &r, &resp, t);
        amount = rc == OKV_OK ? resp->balance : 0;
        okv_orders_response_free(resp);
        snprintf(prefix, sizeof prefix, "%s/i/deposit/", name);
        if (rc == OKV_OK)
            rc = scan_all(cl, "accounts", prefix, deposit_row, l, err, n);
        else
            client_error(cl, rc, err, n);
    }
    jv_push(jv_push(ok, jv_int(amount)), l);
    return rc;
}

static void final_read(jclient *cl, const char *f, const char *name)
{
    for (int attempt = 0; attempt < OW_FINAL_ATTEMPTS; attempt++) {
        char err[512] = "";
        client_invoke(cl, f, jv_push(jv_list(), jv_str(name)));
        jv *ok = jv_push(jv_list(), jv_str(name));
        if (final_one(cl, f, name, ok, err, sizeof err) == OKV_OK) {
            client_complete(cl, HIST_OK, ok, NULL);
            return;
        }
        jv_free(ok);
        client_complete(cl, HIST_FAIL, jv_push(jv_list(), jv_str(name)), err);
        sleep_ms(OW_FINAL_PAUSE_MS);
    }
}

/* Entity i of each kind is read by thread i mod C. */
void ow_final(jclient *cl)
{
    int c = runner_config(cl->r)->concurrency;
    char name[32];
    for (int i = cl->thread_no; i < OW_CUSTOMERS; i += c) {
        ow_customer(name, sizeof name, i);
        final_read(cl, "final-orders", name);
        final_read(cl, "final-payments", name);
    }
    for (int i = cl->thread_no; i < OW_SKUS; i += c) {
        ow_sku(name, sizeof name, i);
        final_read(cl, "final-stock", name);
    }
    for (int i = cl->thread_no; i < OW_ACCOUNTS; i += c) {
        ow_account(name, sizeof name, i);
        final_read(cl, "final-account", name);
    }
}
