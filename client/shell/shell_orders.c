/*
 * shell_orders.c — the `order`, `account` and `stock` commands over the
 * orders service (orderkv_orders.h, docs/orders.md):
 *
 *   order create CUSTOMER CURRENCY SKU:QTY:PRICE... [--merchant M] [--reserve] [--key K]
 *   order show|ship|complete CUSTOMER ORDER
 *   order list CUSTOMER [--limit N] [--after ORDER]
 *   order pay CUSTOMER ORDER [AMOUNT] [--account A] [--method M] [--key K]
 *   order cancel CUSTOMER ORDER [--reason R]
 *   order refund CUSTOMER ORDER AMOUNT [--reason R] [--key K]
 *   account create ACCOUNT CURRENCY [--owner O]
 *   account show ACCOUNT
 *   account deposit ACCOUNT AMOUNT [--key K]
 *   stock set SKU N | show SKU | reserve SKU N [--customer C] [--key K]
 *
 * Amounts are typed and shown in major units with the currency ("12.34",
 * "30.00 CNY"), converted exactly by liborderkv's okv_money_* (the server's
 * own rules, no floating point). An amount of an existing order or account
 * is read in that record's currency, so `order pay` and `account deposit`
 * read the record first; `order pay` without AMOUNT pays the order's total.
 * JSON output gives every amount twice: minor units (an integer) and the
 * text ("total" and "total_text").
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "orderkv_orders.h"
#include "shell_cmd_int.h"

#define MAX_ITEMS 100
#define MAX_FLAGS 6

/* ---- arguments ------------------------------------------------------------------- */

/* A subcommand's syntax: positionals and the flags it takes ("--reserve"
 * is the one flag without a value). */
typedef struct sub_def {
    const char *name;
    const char *usage;
    size_t min_pos, max_pos;       /* after the subcommand; max SIZE_MAX: any */
    const char *flags[MAX_FLAGS];
} sub_def;

typedef struct sub_args {
    const shell_arg *pos[MAX_ITEMS + 3];
    size_t npos;
    const shell_arg *flag[MAX_FLAGS];   /* value, NULL if absent */
    int has[MAX_FLAGS];                 /* given (for --reserve) */
} sub_args;

/* Wrong arguments of a subcommand: its own usage line, and the problem. */
static int sub_usage(shell_ctx *ctx, const shell_cmd_def *def, const sub_def *sd,
                     const char *problem)
{
    char msg[300];
    snprintf(msg, sizeof msg, "%s (%s)", sd->usage, problem);
    return shell_cmd_report(ctx, def->name, "usage", 0, 0, msg);
}

static int is_flag(const shell_arg *a)
{
    return !a->quoted && a->len > 2 && a->bytes[0] == '-' && a->bytes[1] == '-';
}

static int flag_takes_value(const char *f) { return strcmp(f, "--reserve") != 0; }

/* args[2..] of cmd into sa; a usage failure is reported (-1). */
static int parse_sub(shell_ctx *ctx, const shell_cmd_def *def, const sub_def *sd,
                     const shell_command *cmd, sub_args *sa)
{
    char problem[160];
    memset(sa, 0, sizeof *sa);
    for (size_t i = 2; i < cmd->argc; i++) {
        const shell_arg *arg = &cmd->args[i];
        if (!is_flag(arg)) {
            if (sa->npos == sd->max_pos || sa->npos == sizeof sa->pos / sizeof sa->pos[0])
                return sub_usage(ctx, def, sd, "too many arguments");
            if (strlen(arg->bytes) != arg->len)
                return sub_usage(ctx, def, sd, "ids and amounts cannot hold NUL bytes");
            sa->pos[sa->npos++] = arg;
            continue;
        }
        size_t f = 0;
        while (f < MAX_FLAGS && sd->flags[f] && strcmp(sd->flags[f], arg->bytes) != 0)
            f++;
        if (f == MAX_FLAGS || !sd->flags[f]) {
            snprintf(problem, sizeof problem, "%s %s takes no option %.60s", def->name, sd->name,
                     arg->bytes);
            return sub_usage(ctx, def, sd, problem);
        }
        if (sa->has[f]) {
            snprintf(problem, sizeof problem, "%s given twice", sd->flags[f]);
            return sub_usage(ctx, def, sd, problem);
        }
        sa->has[f] = 1;
        if (!flag_takes_value(sd->flags[f]))
            continue;
        if (i + 1 == cmd->argc) {
            snprintf(problem, sizeof problem, "%s needs a value", sd->flags[f]);
            return sub_usage(ctx, def, sd, problem);
        }
        sa->flag[f] = &cmd->args[++i];
        if (strlen(sa->flag[f]->bytes) != sa->flag[f]->len)
            return sub_usage(ctx, def, sd, "option values cannot hold NUL bytes");
    }
    if (sa->npos < sd->min_pos)
        return sub_usage(ctx, def, sd, "missing arguments");
    return 0;
}

/* The value of flag name, or dflt. */
static char *flag_or(const sub_def *sd, const sub_args *sa, const char *name, const char *dflt)
{
    for (size_t f = 0; f < MAX_FLAGS && sd->flags[f]; f++)
        if (strcmp(sd->flags[f], name) == 0 && sa->flag[f])
            return sa->flag[f]->bytes;
    return (char *)dflt;
}

static int flag_given(const sub_def *sd, const sub_args *sa, const char *name)
{
    for (size_t f = 0; f < MAX_FLAGS && sd->flags[f]; f++)
        if (strcmp(sd->flags[f], name) == 0)
            return sa->has[f];
    return 0;
}

static const sub_def *find_sub(const sub_def *subs, size_t n, const shell_command *cmd)
{
    if (cmd->argc < 2)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(subs[i].name, cmd->args[1].bytes) == 0)
            return &subs[i];
    return NULL;
}

/* An amount in major units of currency; a usage failure is reported (-1). */
static int parse_amount(shell_ctx *ctx, const shell_cmd_def *def, const char *text,
                        const char *currency, int64_t *out)
{
    int rc = okv_money_parse(text, currency, out);
    return rc == OKV_OK ? 0 : shell_cmd_fail_code(ctx, def, rc, okv_errmsg(NULL));
}

/* ---- failures ----------------------------------------------------------------------- */

/* What to do about each code an orders call can end with (docs/orders.md
 * "Errors"); NULL when the message says it all. */
static const char *hint(int rc, int reason)
{
    if (reason == ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_REFUND_EXCEEDS_CAPTURED)
        return "refund at most what is left";
    switch (rc) {
    case OKV_EILLEGAL: return "the order's status does not allow it; show the order";
    case OKV_EFUNDS: return "nothing was charged; deposit, or pay another way";
    case OKV_ESOLDOUT: return "nothing was taken; retrying will not help";
    case OKV_EIDEMPOTENCY: return "a new request needs a new --key";
    case OKV_EINPROGRESS: return "resend the same command with the same --key shortly";
    case OKV_EUNKNOWN:
        return "it may or may not have applied: resend it with the same --key, or read "
               "before retrying";
    case OKV_EUNIMPLEMENTED: return "the orders service runs on a cluster";
    default: return NULL;
    }
}

static int fail(shell_ctx *ctx, const shell_cmd_def *def, int rc)
{
    int reason = okv_orders_reason(ctx->client);
    return shell_cmd_fail_reason(ctx, def, rc, reason ? okv_orders_reason_name(reason) : NULL,
                                 hint(rc, reason));
}

/* ---- output --------------------------------------------------------------------------- */

static const char *status_name(int s)
{
    static const char *const names[] = { "UNSPECIFIED", "CREATED", "PAID", "SHIPPED",
                                         "COMPLETED", "CANCELLED", "REFUNDED",
                                         "PARTIALLY_REFUNDED" };
    return s >= 0 && s < (int)(sizeof names / sizeof names[0]) ? names[s] : "UNKNOWN";
}

/* "12.34 CNY" into buf (OKV_MONEY_TEXT_MAX). */
static const char *money(char *buf, int64_t minor, const char *currency)
{
    okv_money_format(buf, OKV_MONEY_TEXT_MAX, minor, currency);
    return buf;
}

static void json_money(shell_json *j, const char *key, int64_t minor, const char *currency)
{
    char text_key[64], buf[OKV_MONEY_TEXT_MAX];
    shell_json_int(j, key, (long long)minor);
    snprintf(text_key, sizeof text_key, "%s_text", key);
    shell_json_str(j, text_key, money(buf, minor, currency));
}

static void json_order(shell_json *j, const char *key, const Orderkv__V1__Order *o)
{
    shell_json_object_begin(j, key);
    shell_json_str(j, "order_id", o->order_id);
    shell_json_str(j, "customer_id", o->customer_id);
    shell_json_str(j, "merchant_id", o->merchant_id);
    shell_json_str(j, "status", status_name(o->status));
    shell_json_str(j, "currency", o->currency);
    json_money(j, "total", o->total, o->currency);
    json_money(j, "captured", o->captured, o->currency);
    json_money(j, "refunded", o->refunded, o->currency);
    shell_json_str(j, "payment_id", o->payment_id);
    shell_json_str(j, "account_id", o->account_id);
    shell_json_array_begin(j, "items");
    for (size_t i = 0; i < o->n_items; i++) {
        const Orderkv__V1__OrderItem *it = o->items[i];
        shell_json_object_begin(j, NULL);
        shell_json_str(j, "sku", it->sku);
        shell_json_u64(j, "quantity", it->quantity);
        json_money(j, "unit_price", it->unit_price, o->currency);
        shell_json_str(j, "reservation_id", it->reservation_id);
        shell_json_object_end(j);
    }
    shell_json_array_end(j);
    shell_json_int(j, "created_at_ms", (long long)o->created_at_ms);
    shell_json_int(j, "updated_at_ms", (long long)o->updated_at_ms);
    shell_json_object_end(j);
}

static void human_order(FILE *f, const Orderkv__V1__Order *o)
{
    char a[OKV_MONEY_TEXT_MAX], b[OKV_MONEY_TEXT_MAX], c[OKV_MONEY_TEXT_MAX];
    fprintf(f, "order %s  customer %s%s%s\n", o->order_id, o->customer_id,
            o->merchant_id[0] ? "  merchant " : "", o->merchant_id);
    fprintf(f, "  status    %s\n", status_name(o->status));
    fprintf(f, "  total     %s  (captured %s, refunded %s)\n",
            money(a, o->total, o->currency), money(b, o->captured, o->currency),
            money(c, o->refunded, o->currency));
    for (size_t i = 0; i < o->n_items; i++) {
        const Orderkv__V1__OrderItem *it = o->items[i];
        fprintf(f, "  item      %s x %" PRIu32 " at %s%s\n", it->sku, it->quantity,
                money(a, it->unit_price, o->currency),
                it->reservation_id[0] ? "  (stock reserved)" : "");
    }
    if (o->payment_id[0])
        fprintf(f, "  payment   %s%s%s\n", o->payment_id, o->account_id[0] ? " from account " : "",
                o->account_id);
}

static void json_payment(shell_json *j, const Orderkv__V1__Payment *p)
{
    shell_json_object_begin(j, "payment");
    shell_json_str(j, "payment_id", p->payment_id);
    shell_json_str(j, "order_id", p->order_id);
    json_money(j, "amount", p->amount, p->currency);
    shell_json_str(j, "currency", p->currency);
    shell_json_str(j, "method", p->method);
    shell_json_str(j, "account_id", p->account_id);
    shell_json_str(j, "idempotency_key", p->idempotency_key);
    shell_json_object_end(j);
}

static void json_refund(shell_json *j, const Orderkv__V1__Refund *r)
{
    shell_json_object_begin(j, "refund");
    shell_json_str(j, "refund_id", r->refund_id);
    shell_json_str(j, "order_id", r->order_id);
    json_money(j, "amount", r->amount, r->currency);
    shell_json_str(j, "currency", r->currency);
    shell_json_str(j, "reason", r->reason);
    shell_json_str(j, "account_id", r->account_id);
    shell_json_object_end(j);
}

/* Starts a success object naming the subcommand. */
static void json_ok(shell_ctx *ctx, shell_json *j, const shell_cmd_def *def, const sub_def *sd)
{
    shell_cmd_json_ok(ctx, j, def);
    shell_json_str(j, "subcommand", sd->name);
}

/* The order (and payment, refund) one call answered with. */
static void print_order_result(shell_ctx *ctx, const shell_cmd_def *def, const sub_def *sd,
                               const Orderkv__V1__Order *o, const Orderkv__V1__Payment *p,
                               const Orderkv__V1__Refund *r)
{
    if (ctx->json) {
        shell_json j;
        json_ok(ctx, &j, def, sd);
        if (o)
            json_order(&j, "order", o);
        if (p)
            json_payment(&j, p);
        if (r)
            json_refund(&j, r);
        shell_json_end(&j);
        return;
    }
    char a[OKV_MONEY_TEXT_MAX];
    if (p)
        fprintf(ctx->out, "paid %s: payment %s\n", money(a, p->amount, p->currency),
                p->payment_id);
    if (r)
        fprintf(ctx->out, "refunded %s%s%s: refund %s\n", money(a, r->amount, r->currency),
                r->account_id[0] ? " to account " : "", r->account_id, r->refund_id);
    if (o)
        human_order(ctx->out, o);
}

/* ---- order ------------------------------------------------------------------------------- */

static const sub_def ORDER_SUBS[] = {
    { "create",
      "order create CUSTOMER CURRENCY SKU:QTY:PRICE... [--merchant M] [--reserve] [--key K]",
      3, MAX_ITEMS + 2, { "--merchant", "--reserve", "--key", NULL } },
    { "show", "order show CUSTOMER ORDER", 2, 2, { NULL } },
    { "list", "order list CUSTOMER [--limit N] [--after ORDER]",
      1, 1, { "--limit", "--after", NULL } },
    { "pay", "order pay CUSTOMER ORDER [AMOUNT] [--account A] [--method M] [--key K]",
      2, 3, { "--account", "--method", "--key", NULL } },
    { "cancel", "order cancel CUSTOMER ORDER [--reason R]", 2, 2, { "--reason", NULL } },
    { "ship", "order ship CUSTOMER ORDER", 2, 2, { NULL } },
    { "complete", "order complete CUSTOMER ORDER", 2, 2, { NULL } },
    { "refund", "order refund CUSTOMER ORDER AMOUNT [--reason R] [--key K]",
      3, 3, { "--reason", "--key", NULL } },
};
#define N_ORDER_SUBS (sizeof ORDER_SUBS / sizeof ORDER_SUBS[0])

/* "SKU:QTY:PRICE" (split at the last two ':', so a sku may hold ':'). */
static int parse_item(shell_ctx *ctx, const shell_cmd_def *def, const sub_def *sd, const char *spec,
                      const char *currency, Orderkv__V1__CreateOrderItem *it, char *sku,
                      size_t cap)
{
    const char *c2 = strrchr(spec, ':');
    const char *c1 = NULL;
    for (const char *p = spec; c2 && p < c2; p++)
        if (*p == ':')
            c1 = p;
    char problem[200];
    if (!c1 || c1 == spec || (size_t)(c1 - spec) >= cap) {
        snprintf(problem, sizeof problem, "item '%.60s' is not SKU:QTY:PRICE (e.g. tea:2:15.00)",
                 spec);
        return sub_usage(ctx, def, sd, problem);
    }
    memcpy(sku, spec, (size_t)(c1 - spec));
    sku[c1 - spec] = '\0';
    shell_arg q = { (char *)c1 + 1, (size_t)(c2 - c1 - 1), 0 };
    char qbuf[24];
    if (q.len == 0 || q.len >= sizeof qbuf) {
        snprintf(problem, sizeof problem, "item '%.60s': QTY must be a number from 1", spec);
        return sub_usage(ctx, def, sd, problem);
    }
    memcpy(qbuf, q.bytes, q.len);
    qbuf[q.len] = '\0';
    q.bytes = qbuf;
    uint64_t qty = 0;
    if (shell_cmd_parse_u64(&q, &qty) != 0 || qty == 0 || qty > UINT32_MAX) {
        snprintf(problem, sizeof problem, "item '%.60s': QTY must be a number from 1", spec);
        return sub_usage(ctx, def, sd, problem);
    }
    orderkv__v1__create_order_item__init(it);
    it->sku = sku;
    it->quantity = (uint32_t)qty;
    return parse_amount(ctx, def, c2 + 1, currency, &it->unit_price);
}

static int order_create(shell_ctx *ctx, const shell_cmd_def *def, const sub_def *sd,
                        const sub_args *sa)
{
    size_t n = sa->npos - 2;
    Orderkv__V1__CreateOrderItem items[MAX_ITEMS], *ip[MAX_ITEMS];
    char (*skus)[160] = calloc(n, sizeof *skus);
    if (!skus)
        return shell_cmd_fail_code(ctx, def, OKV_ENOMEM, "out of memory");
    const char *currency = sa->pos[1]->bytes;
    for (size_t i = 0; i < n; i++) {
        if (parse_item(ctx, def, sd, sa->pos[2 + i]->bytes, currency, &items[i], skus[i],
                       sizeof skus[i]) != 0) {
            free(skus);
            return -1;
        }
        ip[i] = &items[i];
    }
    Orderkv__V1__CreateOrderRequest rq = ORDERKV__V1__CREATE_ORDER_REQUEST__INIT;
    rq.customer_id = sa->pos[0]->bytes;
    rq.currency = (char *)currency;
    rq.merchant_id = flag_or(sd, sa, "--merchant", "");
    rq.reserve_stock = flag_given(sd, sa, "--reserve");
    rq.idempotency_key = flag_or(sd, sa, "--key", "");
    rq.n_items = n;
    rq.items = ip;
    Orderkv__V1__CreateOrderResponse *r = NULL;
    int rc = okv_order_create(ctx->client, &rq, &r, ctx->timeout_ms);
    free(skus);
    if (rc != OKV_OK)
        return fail(ctx, def, rc);
    print_order_result(ctx, def, sd, r->order, NULL, NULL);
    okv_orders_response_free(r);
    return 0;
}

/* Reads an order: for show, and for the currency (and total) of pay and
 * refund. A failure is reported. */
static int read_order(shell_ctx *ctx, const shell_cmd_def *def, const sub_args *sa,
                      Orderkv__V1__GetOrderResponse **out)
{
    Orderkv__V1__GetOrderRequest rq = ORDERKV__V1__GET_ORDER_REQUEST__INIT;
    rq.customer_id = sa->pos[0]->bytes;
    rq.order_id = sa->pos[1]->bytes;
    int rc = okv_order_get(ctx->client, &rq, out, ctx->timeout_ms);
    return rc == OKV_OK ? 0 : fail(ctx, def, rc);
}

static int order_list(shell_ctx *ctx, const shell_cmd_def *def, const sub_def *sd,
                      const sub_args *sa)
{
    Orderkv__V1__ListOrdersRequest rq = ORDERKV__V1__LIST_ORDERS_REQUEST__INIT;
    rq.customer_id = sa->pos[0]->bytes;
    rq.start_after = flag_or(sd, sa, "--after", "");
    const char *lim = flag_or(sd, sa, "--limit", NULL);
    if (lim) {
        shell_arg la = { (char *)lim, strlen(lim), 0 };
        uint64_t v = 0;
        if (shell_cmd_parse_u64(&la, &v) != 0 || v == 0 || v > 1000)
            return sub_usage(ctx, def, sd, "--limit needs a number from 1 to 1000");
        rq.limit = (uint32_t)v;
    }
    Orderkv__V1__ListOrdersResponse *r = NULL;
    int rc = okv_order_list(ctx->client, &rq, &r, ctx->timeout_ms);
    if (rc != OKV_OK)
        return fail(ctx, def, rc);
    if (ctx->json) {
        shell_json j;
        json_ok(ctx, &j, def, sd);
        shell_json_str(&j, "customer_id", rq.customer_id);
        shell_json_u64(&j, "count", r->n_orders);
        shell_json_array_begin(&j, "orders");
        for (size_t i = 0; i < r->n_orders; i++)
            json_order(&j, NULL, r->orders[i]);
        shell_json_array_end(&j);
        shell_json_str(&j, "next_start_after", r->next_start_after);
        shell_json_end(&j);
    } else {
        char a[OKV_MONEY_TEXT_MAX];
        fprintf(ctx->out, "%-24s  %-18s  %s\n", "ORDER", "STATUS", "TOTAL");
        for (size_t i = 0; i < r->n_orders; i++) {
            const Orderkv__V1__Order *o = r->orders[i];
            fprintf(ctx->out, "%-24s  %-18s  %s\n", o->order_id, status_name(o->status),
                    money(a, o->total, o->currency));
        }
        fprintf(ctx->out, "(%zu order%s%s%s)\n", r->n_orders, r->n_orders == 1 ? "" : "s",
                r->next_start_after[0] ? "; more follow: --after " : "", r->next_start_after);
    }
    okv_orders_response_free(r);
    return 0;
}

static int order_pay(shell_ctx *ctx, const shell_cmd_def *def, const sub_def *sd,
                     const sub_args *sa)
{
    Orderkv__V1__GetOrderResponse *g = NULL;
    if (read_order(ctx, def, sa, &g) != 0)
        return -1;
    Orderkv__V1__PayOrderRequest rq = ORDERKV__V1__PAY_ORDER_REQUEST__INIT;
    rq.amount = g->order->total;
    if (sa->npos == 3 && parse_amount(ctx, def, sa->pos[2]->bytes, g->order->currency,
                                      &rq.amount) != 0) {
        okv_orders_response_free(g);
        return -1;
    }
    okv_orders_response_free(g);
    rq.customer_id = sa->pos[0]->bytes;
    rq.order_id = sa->pos[1]->bytes;
    rq.account_id = flag_or(sd, sa, "--account", "");
    rq.method = flag_or(sd, sa, "--method", "");
    rq.idempotency_key = flag_or(sd, sa, "--key", "");
    Orderkv__V1__PayOrderResponse *r = NULL;
    int rc = okv_order_pay(ctx->client, &rq, &r, ctx->timeout_ms);
    if (rc != OKV_OK)
        return fail(ctx, def, rc);
    print_order_result(ctx, def, sd, r->order, r->payment, NULL);
    okv_orders_response_free(r);
    return 0;
}

static int order_refund(shell_ctx *ctx, const shell_cmd_def *def, const sub_def *sd,
                        const sub_args *sa)
{
    Orderkv__V1__GetOrderResponse *g = NULL;
    if (read_order(ctx, def, sa, &g) != 0)
        return -1;
    Orderkv__V1__RefundOrderRequest rq = ORDERKV__V1__REFUND_ORDER_REQUEST__INIT;
    int bad = parse_amount(ctx, def, sa->pos[2]->bytes, g->order->currency, &rq.amount);
    okv_orders_response_free(g);
    if (bad)
        return -1;
    rq.customer_id = sa->pos[0]->bytes;
    rq.order_id = sa->pos[1]->bytes;
    rq.reason = flag_or(sd, sa, "--reason", "");
    rq.idempotency_key = flag_or(sd, sa, "--key", "");
    Orderkv__V1__RefundOrderResponse *r = NULL;
    int rc = okv_order_refund(ctx->client, &rq, &r, ctx->timeout_ms);
    if (rc != OKV_OK)
        return fail(ctx, def, rc);
    print_order_result(ctx, def, sd, r->order, NULL, r->refund);
    okv_orders_response_free(r);
    return 0;
}

/* show, cancel, ship, complete: CUSTOMER ORDER, answered with the order. */
static int order_step(shell_ctx *ctx, const shell_cmd_def *def, const sub_def *sd,
                      const sub_args *sa)
{
    char *cust = sa->pos[0]->bytes, *oid = sa->pos[1]->bytes;
    const char *s = sd->name;
    int rc;
    void *resp = NULL;
    const Orderkv__V1__Order *o = NULL;
    const Orderkv__V1__Refund *refund = NULL;
    if (strcmp(s, "show") == 0) {
        Orderkv__V1__GetOrderResponse *r = NULL;
        rc = read_order(ctx, def, sa, &r);
        if (rc != 0)
            return -1;
        resp = r;
        o = r->order;
    } else if (strcmp(s, "cancel") == 0) {
        Orderkv__V1__CancelOrderRequest rq = ORDERKV__V1__CANCEL_ORDER_REQUEST__INIT;
        rq.customer_id = cust;
        rq.order_id = oid;
        rq.reason = flag_or(sd, sa, "--reason", "");
        Orderkv__V1__CancelOrderResponse *r = NULL;
        if ((rc = okv_order_cancel(ctx->client, &rq, &r, ctx->timeout_ms)) != OKV_OK)
            return fail(ctx, def, rc);
        resp = r;
        o = r->order;
        refund = r->refund;
    } else if (strcmp(s, "ship") == 0) {
        Orderkv__V1__ShipOrderRequest rq = ORDERKV__V1__SHIP_ORDER_REQUEST__INIT;
        rq.customer_id = cust;
        rq.order_id = oid;
        Orderkv__V1__ShipOrderResponse *r = NULL;
        if ((rc = okv_order_ship(ctx->client, &rq, &r, ctx->timeout_ms)) != OKV_OK)
            return fail(ctx, def, rc);
        resp = r;
        o = r->order;
    } else {
        Orderkv__V1__CompleteOrderRequest rq = ORDERKV__V1__COMPLETE_ORDER_REQUEST__INIT;
        rq.customer_id = cust;
        rq.order_id = oid;
        Orderkv__V1__CompleteOrderResponse *r = NULL;
        if ((rc = okv_order_complete(ctx->client, &rq, &r, ctx->timeout_ms)) != OKV_OK)
            return fail(ctx, def, rc);
        resp = r;
        o = r->order;
    }
    print_order_result(ctx, def, sd, o, NULL, refund);
    okv_orders_response_free(resp);
    return 0;
}

int shell_cmd_order(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    const sub_def *sd = find_sub(ORDER_SUBS, N_ORDER_SUBS, a->raw);
    if (!sd)
        return shell_cmd_fail_usage(ctx, def, "create, show, list, pay, cancel, ship, complete "
                                              "or refund");
    sub_args sa;
    if (parse_sub(ctx, def, sd, a->raw, &sa) != 0)
        return -1;
    if (strcmp(sd->name, "create") == 0)
        return order_create(ctx, def, sd, &sa);
    if (strcmp(sd->name, "list") == 0)
        return order_list(ctx, def, sd, &sa);
    if (strcmp(sd->name, "pay") == 0)
        return order_pay(ctx, def, sd, &sa);
    if (strcmp(sd->name, "refund") == 0)
        return order_refund(ctx, def, sd, &sa);
    return order_step(ctx, def, sd, &sa);
}

/* ---- account ----------------------------------------------------------------------------- */

static const sub_def ACCOUNT_SUBS[] = {
    { "create", "account create ACCOUNT CURRENCY [--owner O]", 2, 2, { "--owner", NULL } },
    { "show", "account show ACCOUNT", 1, 1, { NULL } },
    { "deposit", "account deposit ACCOUNT AMOUNT [--key K]", 2, 2, { "--key", NULL } },
};
#define N_ACCOUNT_SUBS (sizeof ACCOUNT_SUBS / sizeof ACCOUNT_SUBS[0])

static void print_account(shell_ctx *ctx, const shell_cmd_def *def, const sub_def *sd,
                          const Orderkv__V1__Account *acc, int has_balance, int64_t balance,
                          int has_deposit, int64_t deposit)
{
    char a[OKV_MONEY_TEXT_MAX];
    if (ctx->json) {
        shell_json j;
        json_ok(ctx, &j, def, sd);
        shell_json_object_begin(&j, "account");
        shell_json_str(&j, "account_id", acc->account_id);
        shell_json_str(&j, "currency", acc->currency);
        shell_json_str(&j, "owner", acc->owner);
        shell_json_int(&j, "created_at_ms", (long long)acc->created_at_ms);
        shell_json_object_end(&j);
        if (has_balance)
            json_money(&j, "balance", balance, acc->currency);
        if (has_deposit)
            json_money(&j, "deposited", deposit, acc->currency);
        shell_json_end(&j);
        return;
    }
    if (has_deposit)
        fprintf(ctx->out, "deposited %s\n", money(a, deposit, acc->currency));
    fprintf(ctx->out, "account %s  currency %s%s%s\n", acc->account_id, acc->currency,
            acc->owner[0] ? "  owner " : "", acc->owner);
    if (has_balance)
        fprintf(ctx->out, "  balance   %s\n", money(a, balance, acc->currency));
}

int shell_cmd_account(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    const sub_def *sd = find_sub(ACCOUNT_SUBS, N_ACCOUNT_SUBS, a->raw);
    if (!sd)
        return shell_cmd_fail_usage(ctx, def, "create, show or deposit");
    sub_args sa;
    if (parse_sub(ctx, def, sd, a->raw, &sa) != 0)
        return -1;
    char *acct = sa.pos[0]->bytes;
    int rc;
    if (strcmp(sd->name, "create") == 0) {
        Orderkv__V1__CreateAccountRequest rq = ORDERKV__V1__CREATE_ACCOUNT_REQUEST__INIT;
        rq.account_id = acct;
        rq.currency = sa.pos[1]->bytes;
        rq.owner = flag_or(sd, &sa, "--owner", "");
        Orderkv__V1__CreateAccountResponse *r = NULL;
        if ((rc = okv_account_create(ctx->client, &rq, &r, ctx->timeout_ms)) != OKV_OK)
            return fail(ctx, def, rc);
        print_account(ctx, def, sd, r->account, 0, 0, 0, 0);
        okv_orders_response_free(r);
        return 0;
    }
    /* show, and deposit's currency: the account as it is now. */
    Orderkv__V1__GetAccountRequest gq = ORDERKV__V1__GET_ACCOUNT_REQUEST__INIT;
    gq.account_id = acct;
    Orderkv__V1__GetAccountResponse *g = NULL;
    if ((rc = okv_account_get(ctx->client, &gq, &g, ctx->timeout_ms)) != OKV_OK)
        return fail(ctx, def, rc);
    if (strcmp(sd->name, "show") == 0) {
        print_account(ctx, def, sd, g->account, 1, g->balance, 0, 0);
        okv_orders_response_free(g);
        return 0;
    }
    Orderkv__V1__DepositRequest rq = ORDERKV__V1__DEPOSIT_REQUEST__INIT;
    rq.account_id = acct;
    rq.idempotency_key = flag_or(sd, &sa, "--key", "");
    if (parse_amount(ctx, def, sa.pos[1]->bytes, g->account->currency, &rq.amount) != 0) {
        okv_orders_response_free(g);
        return -1;
    }
    okv_orders_response_free(g);
    Orderkv__V1__DepositResponse *r = NULL;
    if ((rc = okv_account_deposit(ctx->client, &rq, &r, ctx->timeout_ms)) != OKV_OK)
        return fail(ctx, def, rc);
    /* The balance after it, read again: the response cannot carry one (a
     * replay could not tell a current balance). */
    g = NULL;
    int has_balance = okv_account_get(ctx->client, &gq, &g, ctx->timeout_ms) == OKV_OK;
    print_account(ctx, def, sd, r->account, has_balance, has_balance ? g->balance : 0, 1,
                  r->amount);
    okv_orders_response_free(g);
    okv_orders_response_free(r);
    return 0;
}

/* ---- stock --------------------------------------------------------------------------------- */

static const sub_def STOCK_SUBS[] = {
    { "set", "stock set SKU N", 2, 2, { NULL } },
    { "show", "stock show SKU", 1, 1, { NULL } },
    { "reserve", "stock reserve SKU N [--customer C] [--key K]",
      2, 2, { "--customer", "--key", NULL } },
};
#define N_STOCK_SUBS (sizeof STOCK_SUBS / sizeof STOCK_SUBS[0])

static int parse_units(shell_ctx *ctx, const shell_cmd_def *def, const sub_def *sd,
                       const shell_arg *a, uint64_t min, uint64_t max, uint64_t *out)
{
    if (shell_cmd_parse_u64(a, out) != 0 || *out < min || *out > max)
        return sub_usage(ctx, def, sd, min ? "N must be a number of units from 1, no sign"
                                           : "N must be a number of units, no sign");
    return 0;
}

static void print_stock(shell_ctx *ctx, const shell_cmd_def *def, const sub_def *sd,
                        const char *sku, int64_t available)
{
    if (ctx->json) {
        shell_json j;
        json_ok(ctx, &j, def, sd);
        shell_json_str(&j, "sku", sku);
        shell_json_int(&j, "available", (long long)available);
        shell_json_end(&j);
    } else {
        fprintf(ctx->out, "sku %s: %" PRId64 " available\n", sku, available);
    }
}

int shell_cmd_stock(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    const sub_def *sd = find_sub(STOCK_SUBS, N_STOCK_SUBS, a->raw);
    if (!sd)
        return shell_cmd_fail_usage(ctx, def, "set, show or reserve");
    sub_args sa;
    if (parse_sub(ctx, def, sd, a->raw, &sa) != 0)
        return -1;
    char *sku = sa.pos[0]->bytes;
    uint64_t n = 0;
    int rc;
    if (strcmp(sd->name, "set") == 0) {
        if (parse_units(ctx, def, sd, sa.pos[1], 0, INT64_MAX, &n) != 0)
            return -1;
        Orderkv__V1__SetStockRequest rq = ORDERKV__V1__SET_STOCK_REQUEST__INIT;
        rq.sku = sku;
        rq.available = (int64_t)n;
        Orderkv__V1__SetStockResponse *r = NULL;
        if ((rc = okv_stock_set(ctx->client, &rq, &r, ctx->timeout_ms)) != OKV_OK)
            return fail(ctx, def, rc);
        print_stock(ctx, def, sd, r->sku, r->available);
        okv_orders_response_free(r);
        return 0;
    }
    if (strcmp(sd->name, "show") == 0) {
        Orderkv__V1__GetStockRequest rq = ORDERKV__V1__GET_STOCK_REQUEST__INIT;
        rq.sku = sku;
        Orderkv__V1__GetStockResponse *r = NULL;
        if ((rc = okv_stock_get(ctx->client, &rq, &r, ctx->timeout_ms)) != OKV_OK)
            return fail(ctx, def, rc);
        print_stock(ctx, def, sd, r->sku, r->available);
        okv_orders_response_free(r);
        return 0;
    }
    if (parse_units(ctx, def, sd, sa.pos[1], 1, UINT32_MAX, &n) != 0)
        return -1;
    Orderkv__V1__ReserveStockRequest rq = ORDERKV__V1__RESERVE_STOCK_REQUEST__INIT;
    rq.sku = sku;
    rq.quantity = (uint32_t)n;
    rq.customer_id = flag_or(sd, &sa, "--customer", "");
    rq.idempotency_key = flag_or(sd, &sa, "--key", "");
    Orderkv__V1__ReserveStockResponse *r = NULL;
    if ((rc = okv_stock_reserve(ctx->client, &rq, &r, ctx->timeout_ms)) != OKV_OK)
        return fail(ctx, def, rc);
    const Orderkv__V1__Reservation *res = r->reservation;
    if (ctx->json) {
        shell_json j;
        json_ok(ctx, &j, def, sd);
        shell_json_object_begin(&j, "reservation");
        shell_json_str(&j, "reservation_id", res->reservation_id);
        shell_json_str(&j, "sku", res->sku);
        shell_json_u64(&j, "quantity", res->quantity);
        shell_json_str(&j, "customer_id", res->customer_id);
        shell_json_object_end(&j);
        shell_json_end(&j);
    } else {
        fprintf(ctx->out, "reserved %" PRIu32 " of %s: reservation %s\n", res->quantity,
                res->sku, res->reservation_id);
    }
    okv_orders_response_free(r);
    return 0;
}

/* First words, for completion. */
const char *const shell_order_subcommands[] = { "create", "show", "list", "pay", "cancel",
                                                "ship", "complete", "refund", NULL };
const char *const shell_account_subcommands[] = { "create", "show", "deposit", NULL };
const char *const shell_stock_subcommands[] = { "set", "show", "reserve", NULL };
