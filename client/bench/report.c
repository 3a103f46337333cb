/*
 * report.c — orderkv-bench's results on stdout: a few lines of text, or one
 * JSON object (--json). The JSON's common fields are the same for every
 * workload and target; a workload adds its own after them (docs/bench.md),
 * so a reader of older output keeps working.
 */
#include <inttypes.h>
#include <stdio.h>

#include "bench.h"
#include "orderkv.h"

const char *target_name(enum target t)
{
    return t == T_ETCD ? "etcd" : "orderkv";
}

const char *workload_name(enum driver_workload w)
{
    switch (w) {
    case DRIVER_PUT: return "put";
    case DRIVER_GET: return "get";
    case DRIVER_MIXED: return "mixed";
    case DRIVER_TRANSFER: return "transfer";
    case DRIVER_CAS: return "cas";
    case DRIVER_FLASH_SALE: return "flash-sale";
    case DRIVER_PAY_ORDER: return "pay-order";
    }
    return "?";
}

static const char *json_bool(int b)
{
    return b ? "true" : "false";
}

static uint64_t attempts(const driver_result *r)
{
    return r->ok + r->conflicts + r->condition_aborts + r->errors;
}

/* slot i of by_code is code -i; the last slot is every other code. */
static int slot_code(int i)
{
    return i < DRIVER_NCODES - 1 ? -i : 1;
}

/* The slot of a code (driver.h: code -i in slot i, the last slot every
 * code outside that range). */
static int code_slot_of(int code)
{
    return code <= 0 && code > -(DRIVER_NCODES - 1) ? -code : DRIVER_NCODES - 1;
}

static const char *slot_name(int i)
{
    return i < DRIVER_NCODES - 1 ? okv_strerror(slot_code(i)) : "other";
}

/* Bytes each request writes as a value: transfers and reservations write
 * an 8-byte counter whatever --value-size says. */
static size_t written_value_size(const bench_opts *o)
{
    if (o->workload == DRIVER_PAY_ORDER)   /* records, not values of ours */
        return 0;
    int counter = o->workload == DRIVER_TRANSFER || o->workload == DRIVER_FLASH_SALE;
    return counter ? 8 : o->value_size;
}

static double ops_per_s(const driver_result *r)
{
    return r->elapsed_s > 0 ? (double)r->ok / r->elapsed_s : 0;
}

/* ---- JSON ---- */

static void json_aborts(const driver_result *r)
{
    printf(",\"aborts\":{");
    for (int i = 1; i < DRIVER_NCAUSES; i++)
        printf("%s\"%s\":%llu", i > 1 ? "," : "", driver_cause_name(i),
               (unsigned long long)r->by_cause[i]);
    printf("}");
}

static void json_transfer(const bench_opts *o, const driver_result *r, const bench_outcome *x)
{
    uint64_t n = attempts(r);
    const verify_result *v = x->verify;
    printf(",\"committed\":%llu,\"conflicts\":%llu,\"conflict_rate\":%.6f,"
           "\"condition_aborts\":%llu,\"attempts\":%llu,\"balance\":%" PRId64 ",\"amount\":%d",
           (unsigned long long)r->ok, (unsigned long long)r->conflicts,
           n ? (double)r->conflicts / (double)n : 0.0, (unsigned long long)r->condition_aborts,
           (unsigned long long)n, o->balance, TRANSFER_AMOUNT);
    if (o->target == T_ORDERKV)
        printf(",\"partitions\":%u,\"one_partition_commits\":%llu", x->partitions,
               (unsigned long long)x->one_partition_commits);
    json_aborts(r);
    if (v)
        printf(",\"verify\":{\"ok\":%s,\"done\":%s,\"sum\":%" PRId64 ",\"expected\":%" PRId64
               ",\"found\":%llu,\"missing\":%llu,\"not_counter\":%llu}",
               json_bool(v->ok), json_bool(v->done), v->s.sum, v->expected,
               (unsigned long long)v->s.found, (unsigned long long)v->s.missing,
               (unsigned long long)v->s.not_counter);
}

/* A failed condition cannot happen after the preload: it is an error,
 * counted by code too, and named here so nobody has to look for it. */
static void json_cas(const driver_result *r)
{
    printf(",\"condition_failures\":%llu",
           (unsigned long long)r->by_code[code_slot_of(OKV_ECONDITION)]);
}

static void json_flash_sale(const bench_opts *o, const driver_result *r, const bench_outcome *x)
{
    const flash_sale_audit *a = x->audit;
    printf(",\"sku\":\"%s\",\"stock\":%" PRId64 ",\"run_id\":\"%08lx\",\"unsafe_reserve\":%s,"
           "\"reservations\":%llu,\"sold_out\":%llu,\"conflicts\":%llu,\"retries\":%llu",
           o->sku, o->stock, (unsigned long)x->run_id, json_bool(o->unsafe_reserve),
           (unsigned long long)r->ok, (unsigned long long)r->sold_out,
           (unsigned long long)r->conflicts, (unsigned long long)r->retries);
    if (r->sold_out_at_s >= 0)
        printf(",\"sold_out_at_s\":%.3f", r->sold_out_at_s);
    else
        printf(",\"sold_out_at_s\":null");
    printf(",\"sold_out_in_warmup\":%s", json_bool(r->sold_out_in_warmup));
    json_aborts(r);
    if (!a) {
        printf(",\"oversell\":null");
        return;
    }
    printf(",\"oversell\":%" PRId64 ",\"verify\":{\"ok\":%s,\"done\":%s,\"initial\":%" PRId64
           ",\"available\":%" PRId64 ",\"reservations\":%llu,\"before\":%llu,\"after\":%llu,"
           "\"oversell\":%" PRId64 ",\"unaccounted\":%" PRId64 "}",
           a->oversell, json_bool(a->ok), json_bool(a->done), a->initial, a->available,
           (unsigned long long)a->reservations, (unsigned long long)a->before,
           (unsigned long long)a->after, a->oversell, a->unaccounted);
}

static void json_pay_order(const bench_opts *o, const driver_result *r, const bench_outcome *x)
{
    const pay_tally *t = x->tally;
    const pay_check *p = x->pay;
    printf(",\"paid\":%llu,\"price\":%d,\"currency\":\"%s\",\"balance\":%" PRId64
           ",\"run_id\":\"%08lx\"",
           (unsigned long long)r->ok, PAY_ORDER_PRICE, PAY_ORDER_CURRENCY, o->balance,
           (unsigned long)x->run_id);
    printf(",\"tally\":{\"created\":%llu,\"create_failed\":%llu,\"paid\":%llu,"
           "\"pay_refused\":%llu,\"pay_unknown\":%llu,\"create_mean_ms\":%.3f,"
           "\"pay_mean_ms\":%.3f}",
           (unsigned long long)t->created, (unsigned long long)t->create_failed,
           (unsigned long long)t->paid, (unsigned long long)t->pay_refused,
           (unsigned long long)t->pay_unknown, t->create_ms, t->pay_ms);
    if (!p) {
        printf(",\"verify\":null");
        return;
    }
    printf(",\"verify\":{\"ok\":%s,\"done\":%s,\"balances\":%" PRId64 ",\"paid_amount\":%"
           PRId64 ",\"deposits\":%" PRId64 ",\"gap\":%" PRId64 ",\"unknown\":%llu,"
           "\"found\":%llu,\"missing\":%llu}",
           json_bool(p->ok), json_bool(p->done), p->s.sum, p->paid_amount, p->deposits, p->gap,
           (unsigned long long)p->unknown, (unsigned long long)p->s.found,
           (unsigned long long)p->s.missing);
}

static void json_report(const bench_opts *o, const driver_result *r, const bench_outcome *x)
{
    const histogram *h = &r->hist;
    double ms = 1e-3;
    printf("{\"target\":\"%s\",\"workload\":\"%s\",\"clients\":%d,\"duration_s\":%.2f,"
           "\"key_size\":%zu,\"value_size\":%zu,\"keys\":%llu,\"dist\":\"%s\","
           "\"ops\":%llu,\"errors\":%llu,\"not_found\":%llu,\"ops_per_s\":%.1f,"
           "\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
           "\"cpu_s\":%.3f,\"cpu_us_per_op\":%.1f",
           target_name(o->target), workload_name(o->workload), o->clients, r->elapsed_s,
           o->key_size, written_value_size(o), (unsigned long long)o->keys,
           o->zipf ? "zipfian" : "uniform", (unsigned long long)r->ok,
           (unsigned long long)r->errors, (unsigned long long)r->not_found, ops_per_s(r),
           (double)histogram_quantile(h, 0.50) * ms, (double)histogram_quantile(h, 0.95) * ms,
           (double)histogram_quantile(h, 0.99) * ms, (double)histogram_quantile(h, 0.999) * ms,
           (double)h->max_us * ms, r->cpu_s, r->ok ? r->cpu_s * 1e6 / (double)r->ok : 0);
    printf(",\"errors_by_code\":[");
    for (int i = 0, first = 1; i < DRIVER_NCODES; i++)
        if (r->by_code[i]) {
            printf("%s{\"code\":%d,\"name\":\"%s\",\"count\":%llu}", first ? "" : ",",
                   slot_code(i), slot_name(i), (unsigned long long)r->by_code[i]);
            first = 0;
        }
    printf("]");
    if (o->workload == DRIVER_TRANSFER)
        json_transfer(o, r, x);
    else if (o->workload == DRIVER_CAS)
        json_cas(r);
    else if (o->workload == DRIVER_FLASH_SALE)
        json_flash_sale(o, r, x);
    else if (o->workload == DRIVER_PAY_ORDER)
        json_pay_order(o, r, x);
    printf("}\n");
}

/* ---- text ---- */

static const char *policy_name(const bench_opts *o)
{
    return o->etcd_policy == ETCD_KV_ENDPOINTS_FIRST ? "first only" : "all, round-robin";
}

static const char *read_mode(const bench_opts *o)
{
    return o->etcd_serializable ? "serializable" : "linearizable";
}

/* The first lines: what ran, against what, and how each target does it. */
static void text_header(const bench_opts *o, const driver_result *r, const bench_outcome *x)
{
    const char *t = target_name(o->target);
    int etcd = o->target == T_ETCD;
    switch (o->workload) {
    case DRIVER_TRANSFER:
        printf("%s transfer: %d in flight, %.1f s, %zu-byte keys, %s over %llu accounts", t,
               o->clients, r->elapsed_s, o->key_size, o->zipf ? "zipfian" : "uniform",
               (unsigned long long)o->keys);
        if (!etcd)
            printf(" in table %s (%u partitions; payer and payee always in different ones)\n",
                   o->table, x->partitions);
        else
            printf("\n");
        if (etcd)
            printf("  etcd: endpoints %s; a transfer is a Txn of two %s Ranges, then a Txn "
                   "comparing both mod_revisions and putting both balances\n",
                   policy_name(o), read_mode(o));
        else
            printf("  orderkv: one transaction per transfer: add_floor(payer, -%d, 0), "
                   "add(payee, +%d)\n", TRANSFER_AMOUNT, TRANSFER_AMOUNT);
        return;
    case DRIVER_FLASH_SALE:
        printf("%s flash-sale: %d in flight, %.1f s, SKU '%s' with %" PRId64 " units%s%s%s\n", t,
               o->clients, r->elapsed_s, o->sku, o->stock, etcd ? "" : " in table ",
               etcd ? "" : o->table, o->unsafe_reserve ? " (--unsafe-reserve: MAY OVERSELL)" : "");
        if (etcd)
            printf("  etcd: endpoints %s; a reservation is a %s Range of the stock, then a Txn "
                   "%sputting stock - 1 and the reservation, retried from the Range while "
                   "the compare fails\n", policy_name(o), read_mode(o),
                   o->unsafe_reserve ? "(no compare) " : "comparing its mod_revision, ");
        else
            printf("  orderkv: one transaction per reservation in the stock's partition: "
                   "%s(%s, -1%s), put(%s/r/...)\n", o->unsafe_reserve ? "add" : "add_floor",
                   o->sku, o->unsafe_reserve ? "" : ", 0", o->sku);
        return;
    case DRIVER_PAY_ORDER:
        printf("%s pay-order: %d in flight, %.1f s, %llu customers with an account each, %s\n",
               t, o->clients, r->elapsed_s, (unsigned long long)o->keys,
               o->zipf ? "zipfian" : "uniform");
        printf("  orderkv: CreateOrder (1 item at %d minor units of %s), then PayOrder from "
               "the customer's account with an idempotency key, chained on the completion "
               "thread\n", PAY_ORDER_PRICE, PAY_ORDER_CURRENCY);
        return;
    default:
        printf("%s %s: %d in flight, %.1f s, %zu-byte keys, %zu-byte values, %s over %llu keys\n",
               t, workload_name(o->workload), o->clients, r->elapsed_s, o->key_size,
               o->value_size, o->zipf ? "zipfian" : "uniform", (unsigned long long)o->keys);
        if (etcd && o->workload == DRIVER_CAS)
            printf("  etcd: endpoints %s; a write is a Txn: Compare(version(key) > 0) Then "
                   "Put(key, value)\n", policy_name(o));
        else if (etcd)
            printf("  etcd: endpoints %s; gets are %s Ranges\n", policy_name(o), read_mode(o));
        else if (o->workload == DRIVER_CAS)
            printf("  orderkv: one transaction per write: exists(key), put(key, value)\n");
        return;
    }
}

static void text_causes(const driver_result *r)
{
    int any = 0;
    for (int i = 1; i < DRIVER_NCAUSES; i++)
        if (r->by_cause[i]) {
            printf(" %s %llu", driver_cause_name(i), (unsigned long long)r->by_cause[i]);
            any = 1;
        }
    printf("%s\n", any ? "" : " none");
}

static void text_transfer(const driver_result *r)
{
    uint64_t n = attempts(r);
    printf("  %.0f committed transfers/s (%llu committed, %llu conflicts, %llu condition aborts, "
           "%llu errors)\n",
           ops_per_s(r), (unsigned long long)r->ok, (unsigned long long)r->conflicts,
           (unsigned long long)r->condition_aborts, (unsigned long long)r->errors);
    printf("  conflict rate %.3f%% of %llu attempts; aborts by cause:",
           n ? 100.0 * (double)r->conflicts / (double)n : 0.0, (unsigned long long)n);
    text_causes(r);
}

static void text_flash_sale(const driver_result *r)
{
    printf("  %.0f reservations/s (%llu reserved, %llu sold-out answers, %llu conflicts, "
           "%llu retries, %llu errors)\n",
           ops_per_s(r), (unsigned long long)r->ok, (unsigned long long)r->sold_out,
           (unsigned long long)r->conflicts, (unsigned long long)r->retries,
           (unsigned long long)r->errors);
    if (r->sold_out_at_s >= 0)
        printf("  sold out %.3f s into the window (the rate is over those seconds)\n",
               r->sold_out_at_s);
    else if (r->sold_out_in_warmup)
        printf("  SOLD OUT DURING THE WARMUP: nothing measured (--warmup 0, or more --stock)\n");
    else
        printf("  not sold out in the window\n");
    if (r->conflicts) {
        printf("  conflicts by cause:");
        text_causes(r);
    }
}

static void text_verify(const bench_opts *o, const verify_result *v)
{
    if (!v->done) {
        printf("  verify: FAILED to read every account: %s: %s\n", okv_strerror(v->code), v->msg);
        return;
    }
    printf("  verify: %llu accounts sum to %" PRId64 ", expected %llu x %" PRId64 " = %" PRId64
           ": %s",
           (unsigned long long)v->s.found, v->s.sum, (unsigned long long)o->keys, o->balance,
           v->expected, v->ok ? "OK" : "MISMATCH");
    if (v->s.missing || v->s.not_counter)
        printf(" (%llu missing, %llu not an 8-byte balance)", (unsigned long long)v->s.missing,
               (unsigned long long)v->s.not_counter);
    printf("\n");
}

static void text_audit(const flash_sale_audit *a)
{
    if (!a->done) {
        printf("  verify: FAILED to audit the stock: %s: %s\n", okv_strerror(a->code), a->msg);
        return;
    }
    printf("  verify: %" PRId64 " units at the start, %" PRId64 " left, %llu reservations "
           "(%llu keys before the run, %llu after): oversell %" PRId64 ", unaccounted %" PRId64
           ": %s\n",
           a->initial, a->available, (unsigned long long)a->reservations,
           (unsigned long long)a->before, (unsigned long long)a->after, a->oversell,
           a->unaccounted, a->ok ? "OK" : "OVERSOLD OR MISMATCH");
}

static void text_pay_order(const driver_result *r, const pay_tally *t)
{
    printf("  %.0f paid orders/s (%llu paid, %llu errors)\n", ops_per_s(r),
           (unsigned long long)r->ok, (unsigned long long)r->errors);
    printf("  whole run: %llu orders placed, %llu not placed; %llu paid, %llu refused, "
           "%llu of unknown outcome\n",
           (unsigned long long)t->created, (unsigned long long)t->create_failed,
           (unsigned long long)t->paid, (unsigned long long)t->pay_refused,
           (unsigned long long)t->pay_unknown);
    printf("  mean time per step: CreateOrder %.3f ms, PayOrder %.3f ms\n", t->create_ms,
           t->pay_ms);
}

static void text_pay_verify(const pay_check *p)
{
    if (!p->done) {
        printf("  verify: FAILED to read every account: %s: %s\n", okv_strerror(p->code),
               p->msg);
        return;
    }
    printf("  verify: balances %" PRId64 " + payments %" PRId64 " = %" PRId64 ", deposits %"
           PRId64 " (gap %" PRId64 ", %llu payments of unknown outcome): %s",
           p->s.sum, p->paid_amount, p->s.sum + p->paid_amount, p->deposits, p->gap,
           (unsigned long long)p->unknown, p->ok ? "OK" : "MISMATCH");
    if (p->s.missing || p->s.not_counter)
        printf(" (%llu accounts missing)", (unsigned long long)p->s.missing);
    printf("\n");
}

static void text_report(const bench_opts *o, const driver_result *r, const bench_outcome *x)
{
    const histogram *h = &r->hist;
    double ms = 1e-3;
    int txn = o->workload == DRIVER_TRANSFER || o->workload == DRIVER_FLASH_SALE;
    text_header(o, r, x);
    if (o->workload == DRIVER_TRANSFER)
        text_transfer(r);
    else if (o->workload == DRIVER_FLASH_SALE)
        text_flash_sale(r);
    else if (o->workload == DRIVER_PAY_ORDER)
        text_pay_order(r, x->tally);
    else
        printf("  %.0f ops/s (%llu ok, %llu errors)\n", ops_per_s(r), (unsigned long long)r->ok,
               (unsigned long long)r->errors);
    if (r->errors) {
        printf("  errors by code:");
        for (int i = 0; i < DRIVER_NCODES; i++)
            if (r->by_code[i])
                printf(" %s %llu", slot_name(i), (unsigned long long)r->by_code[i]);
        printf("\n");
    }
    int pay = o->workload == DRIVER_PAY_ORDER;
    printf("  latency ms%s: p50 %.3f  p95 %.3f  p99 %.3f  p999 %.3f  max %.3f\n",
           o->workload == DRIVER_TRANSFER ? " (committed)" : txn ? " (reserved)"
           : pay ? " (create + pay, paid)" : "",
           (double)histogram_quantile(h, 0.50) * ms, (double)histogram_quantile(h, 0.95) * ms,
           (double)histogram_quantile(h, 0.99) * ms, (double)histogram_quantile(h, 0.999) * ms,
           (double)h->max_us * ms);
    printf("  bench cpu: %.2f s user+sys over the window (%.0f%% of a core), %.1f us per %s\n",
           r->cpu_s, r->elapsed_s > 0 ? 100.0 * r->cpu_s / r->elapsed_s : 0.0,
           r->ok ? r->cpu_s * 1e6 / (double)r->ok : 0,
           o->workload == DRIVER_TRANSFER ? "committed transfer" : txn ? "reservation"
           : pay ? "paid order" : "op");
    if (o->workload == DRIVER_TRANSFER && x->one_partition_commits)
        printf("  WARNING: %llu transfers committed within one partition: the bench's partition "
               "of a key is not the cluster's\n", (unsigned long long)x->one_partition_commits);
    if (x->verify)
        text_verify(o, x->verify);
    if (x->audit)
        text_audit(x->audit);
    if (x->pay)
        text_pay_verify(x->pay);
}

void report(const bench_opts *o, const driver_result *r, const bench_outcome *x)
{
    if (o->json)
        json_report(o, r, x);
    else
        text_report(o, r, x);
}
