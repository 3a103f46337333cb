/*
 * orders.c — a complete liborderkv program over the orders service
 * (orderkv_orders.h, docs/orders.md): open an account and fund it, stock a
 * sku, place an order that reserves stock, pay it with an idempotency key,
 * lose the answer to a timeout and resend, refund part, and show that the
 * account was charged exactly once.
 *
 *   orders ADDRS
 *   e.g. orders 127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403
 *
 * Needs a cluster (orderkvd --initial-cluster; scripts/cluster.sh up). Ids
 * carry the process id and time, so it can run again on the same cluster.
 * Exit status: 0 every step did what the rules promise, 1 a step failed or
 * a check did not hold, 2 usage or connection error.
 */
#define _POSIX_C_SOURCE 200809L   /* nanosleep */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "orderkv.h"
#include "orderkv_orders.h"

#define CALL_MS 10000

static okv_client *c;
static char suffix[48];

/* Says what failed, with the rule the cluster named. */
static int failed(const char *what, int rc)
{
    int reason = okv_orders_reason(c);
    fprintf(stderr, "orders: %s: %s%s%s: %s\n", what, okv_strerror(rc), reason ? " / " : "",
            reason ? okv_orders_reason_name(reason) : "", okv_errmsg(c));
    return 1;
}

static const char *money(char buf[OKV_MONEY_TEXT_MAX], int64_t minor)
{
    okv_money_format(buf, OKV_MONEY_TEXT_MAX, minor, "CNY");
    return buf;
}

static int balance(const char *acct, int64_t *out)
{
    Orderkv__V1__GetAccountRequest rq = ORDERKV__V1__GET_ACCOUNT_REQUEST__INIT;
    rq.account_id = (char *)acct;
    Orderkv__V1__GetAccountResponse *r = NULL;
    int rc = okv_account_get(c, &rq, &r, CALL_MS);
    if (rc == OKV_OK)
        *out = r->balance;
    okv_orders_response_free(r);
    return rc;
}

/* Pays with `key`, resending after answers that leave the outcome open: the
 * key makes every resend a replay of the first payment, never a second one. */
static int pay(const char *cust, const char *oid, const char *acct, int64_t amount,
               const char *key, int timeout_ms, char *payment_id, size_t cap)
{
    Orderkv__V1__PayOrderRequest rq = ORDERKV__V1__PAY_ORDER_REQUEST__INIT;
    rq.customer_id = (char *)cust;
    rq.order_id = (char *)oid;
    rq.account_id = (char *)acct;
    rq.amount = amount;
    rq.idempotency_key = (char *)key;
    Orderkv__V1__PayOrderResponse *r = NULL;
    int rc = okv_order_pay(c, &rq, &r, timeout_ms);
    if (rc == OKV_OK)
        snprintf(payment_id, cap, "%s", r->payment->payment_id);
    okv_orders_response_free(r);
    return rc;
}

static int run(void)
{
    char acct[96], cust[96], sku[96], key[160];
    char m1[OKV_MONEY_TEXT_MAX], m2[OKV_MONEY_TEXT_MAX], m3[OKV_MONEY_TEXT_MAX];
    snprintf(acct, sizeof acct, "acct-%s", suffix);
    snprintf(cust, sizeof cust, "cust-%s", suffix);
    snprintf(sku, sizeof sku, "tea-%s", suffix);

    /* 1. An account in CNY, funded with 100.00 (amounts are minor units;
     *    okv_money_parse reads "100.00" exactly). */
    Orderkv__V1__CreateAccountRequest ca = ORDERKV__V1__CREATE_ACCOUNT_REQUEST__INIT;
    ca.account_id = acct;
    ca.currency = "CNY";
    ca.owner = cust;
    int rc = okv_account_create(c, &ca, NULL, CALL_MS);
    if (rc)
        return failed("create the account", rc);
    Orderkv__V1__DepositRequest dep = ORDERKV__V1__DEPOSIT_REQUEST__INIT;
    dep.account_id = acct;
    if (okv_money_parse("100.00", "CNY", &dep.amount) != OKV_OK)
        return failed("parse 100.00", OKV_EINVAL);
    snprintf(key, sizeof key, "deposit-%s", suffix);
    dep.idempotency_key = key;
    if ((rc = okv_account_deposit(c, &dep, NULL, CALL_MS)) != OKV_OK)
        return failed("deposit", rc);
    printf("account %s: deposited %s\n", acct, money(m1, dep.amount));

    /* 2. Ten units of a sku. */
    Orderkv__V1__SetStockRequest ss = ORDERKV__V1__SET_STOCK_REQUEST__INIT;
    ss.sku = sku;
    ss.available = 10;
    if ((rc = okv_stock_set(c, &ss, NULL, CALL_MS)) != OKV_OK)
        return failed("set the stock", rc);

    /* 3. An order of 2 x 15.00, taking the stock in the same transaction. */
    Orderkv__V1__CreateOrderItem item = ORDERKV__V1__CREATE_ORDER_ITEM__INIT;
    item.sku = sku;
    item.quantity = 2;
    item.unit_price = 1500;
    item.reserve_stock = 1;
    Orderkv__V1__CreateOrderItem *items[] = { &item };
    Orderkv__V1__CreateOrderRequest co = ORDERKV__V1__CREATE_ORDER_REQUEST__INIT;
    co.customer_id = cust;
    co.currency = "CNY";
    co.n_items = 1;
    co.items = items;
    snprintf(key, sizeof key, "cart-%s", suffix);
    co.idempotency_key = key;
    Orderkv__V1__CreateOrderResponse *cr = NULL;
    if ((rc = okv_order_create(c, &co, &cr, CALL_MS)) != OKV_OK)
        return failed("create the order", rc);
    char oid[128];
    snprintf(oid, sizeof oid, "%s", cr->order->order_id);
    int64_t total = cr->order->total;
    okv_orders_response_free(cr);
    printf("order %s: %s, 2 units of %s reserved\n", oid, money(m1, total), sku);

    /* 4. Pay with an idempotency key. The first attempt has 1 ms, so its
     *    answer is usually lost (OKV_ETIMEDOUT: never sent; OKV_EUNKNOWN:
     *    sent, may have applied), as a network timeout would lose it. The
     *    answer is to resend the same request with the same key. */
    char pay_key[160], p1[128] = "", p2[128] = "";
    snprintf(pay_key, sizeof pay_key, "pay-%s", oid);
    rc = pay(cust, oid, acct, total, pay_key, 1, p1, sizeof p1);
    printf("pay, first attempt (1 ms deadline): %s\n", okv_strerror(rc));
    int tries = 0;
    do {
        rc = pay(cust, oid, acct, total, pay_key, CALL_MS, p1, sizeof p1);
        if (rc == OKV_EINPROGRESS) {   /* the first copy is still applying */
            struct timespec pause = { 0, 50 * 1000 * 1000 };
            nanosleep(&pause, NULL);
        }
    } while ((rc == OKV_EINPROGRESS || rc == OKV_EUNKNOWN) && ++tries < 20);
    if (rc)
        return failed("pay", rc);
    printf("paid: payment %s\n", p1);
    /* And once more, as a client that never saw that answer would. */
    if ((rc = pay(cust, oid, acct, total, pay_key, CALL_MS, p2, sizeof p2)) != OKV_OK)
        return failed("resend the payment", rc);
    printf("resent with the same key: payment %s (%s)\n", p2,
           strcmp(p1, p2) == 0 ? "the same payment, not a second one" : "A SECOND PAYMENT");
    if (strcmp(p1, p2) != 0)
        return 1;

    /* 5. Refund 10.00 of it. */
    Orderkv__V1__RefundOrderRequest rf = ORDERKV__V1__REFUND_ORDER_REQUEST__INIT;
    rf.customer_id = cust;
    rf.order_id = oid;
    rf.reason = "one tin arrived dented";
    if (okv_money_parse("10.00", "CNY", &rf.amount) != OKV_OK)
        return failed("parse 10.00", OKV_EINVAL);
    snprintf(key, sizeof key, "refund-%s", oid);
    rf.idempotency_key = key;
    Orderkv__V1__RefundOrderResponse *rr = NULL;
    if ((rc = okv_order_refund(c, &rf, &rr, CALL_MS)) != OKV_OK)
        return failed("refund", rc);
    printf("refunded %s: order is %s, %s of %s refunded\n", money(m1, rr->refund->amount),
           rr->order->status == ORDERKV__V1__ORDER_STATUS__PARTIALLY_REFUNDED
               ? "PARTIALLY_REFUNDED" : "?",
           money(m2, rr->order->refunded), money(m3, rr->order->captured));
    okv_orders_response_free(rr);

    /* 6. The balance: 100.00 - 30.00 (charged once) + 10.00. */
    int64_t b = 0;
    if ((rc = balance(acct, &b)) != OKV_OK)
        return failed("read the balance", rc);
    printf("final balance of %s: %s\n", acct, money(m1, b));
    if (b != 100 * 100 - total + 1000) {
        fprintf(stderr, "orders: the balance should be %s\n",
                money(m1, 100 * 100 - total + 1000));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: orders ADDRS (a cluster's host:port list)\n");
        return 2;
    }
    if (okv_connect(&c, argv[1], NULL) != OKV_OK) {
        fprintf(stderr, "orders: %s\n", okv_errmsg(NULL));
        return 2;
    }
    snprintf(suffix, sizeof suffix, "%ld-%lld", (long)getpid(), (long long)time(NULL));
    int status = run();
    okv_close(c);
    return status;
}
