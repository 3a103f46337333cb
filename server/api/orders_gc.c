/*
 * orders_gc.c — dropping idempotency records past their retention
 * (orders_gc.h).
 *
 * An idempotency record must outlive every resend of its request: a
 * client that retries after a lost answer, even hours later, must get the
 * first answer, not a second effect. So records are kept at least the
 * retention (orderkvd --idem-retention-ms, default 24 h) and only then
 * dropped, by this thread, on the node that leads their partition.
 *
 * Reading the partition here (outside the raft loop) only chooses what to
 * delete. The delete itself is a transaction with the condition "version
 * is still the one read", so a record rewritten meanwhile is kept; and a
 * record is rewritten only through a plan's "absent" condition, which a
 * record past retention still fails until it is gone. Deleting costs one
 * Raft entry per record, at most ORDERS_GC_MAX per round.
 */
#define _POSIX_C_SOURCE 200809L
#include "orders_gc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "fsm.h"
#include "keycodec.h"
#include "log.h"
#include "order_idem.h"
#include "order_keys.h"
#include "orderkv.h"
#include "records.pb-c.h"
#include "thread_name.h"
#include "tpc_driver.h"

#define ORDERS_GC_MAX 1000   /* deletions per round */

struct orders_gc {
    node *n;
    int64_t retention_ms;
    int every_ms;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    uint64_t dropped;        /* records deleted since start (tests, logs) */
};

/* Deletes (table, key) if it still has version; 1 if it did. */
static int drop(okv_client *c, const char *table, const uint8_t *key, size_t key_len,
                uint64_t version)
{
    okv_txn_req *t = NULL;
    int rc = okv_txn_req_new(&t);
    if (rc == OKV_OK)
        rc = okv_txn_req_version_is(t, table, key, key_len, version);
    if (rc == OKV_OK)
        rc = okv_txn_req_delete(t, table, key, key_len);
    if (rc == OKV_OK)
        rc = okv_txn_commit(c, t, NULL, 10000);
    okv_txn_req_free(t);
    return rc == OKV_OK;
}

/* One partition this node leads: its expired idempotency records. */
static void sweep_partition(orders_gc *g, okv_client *c, const catalog_table *t, ord_table ot,
                            uint32_t partition, int64_t now, int *budget)
{
    uint8_t lo[KEYCODEC_DATA_PREFIX_LEN], hi[KEYCODEC_DATA_PREFIX_LEN];
    keycodec_data_prefix(lo, t->id, partition);
    size_t hl = keycodec_prefix_successor(lo, sizeof lo, hi);
    engine_iter *it;
    if (engine_iter_new(&it, kvstore_engine(g->n->kv), ENGINE_CF_DATA, lo, sizeof lo, hi, hl,
                        NULL) != OKV_OK)
        return;
    for (; engine_iter_valid(it) && *budget > 0; engine_iter_next(it)) {
        size_t kl, vl, ukl, uvl;
        const uint8_t *k = (const uint8_t *)engine_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)engine_iter_value(it, &vl);
        const uint8_t *uk, *uv;
        uint32_t tid, part;
        uint64_t version;
        ord_key_parts parts;
        ord_error err;
        if (keycodec_data_key_decode(k, kl, &tid, &part, &uk, &ukl) != 0 ||
            keycodec_value_decode(v, vl, &version, &uv, &uvl) != 0 ||
            ord_key_parse(ot, uk, ukl, &parts, &err) != 0 || parts.type != ORD_KEY_IDEM)
            continue;
        Orderkv__V1__IdempotencyRecord *rec =
            orderkv__v1__idempotency_record__unpack(NULL, uvl, uv);
        if (!rec)
            continue;   /* not ours to judge: leave it */
        int expired = ord_idem_expired(rec, now, g->retention_ms);
        orderkv__v1__idempotency_record__free_unpacked(rec, NULL);
        if (!expired)
            continue;
        (*budget)--;
        if (drop(c, t->name, uk, ukl, version)) {
            pthread_mutex_lock(&g->mu);
            g->dropped++;
            pthread_mutex_unlock(&g->mu);
        }
    }
    engine_iter_free(it);
}

static void sweep_round(orders_gc *g)
{
    okv_client *c = g->n->tpc ? tpc_driver_client(g->n->tpc) : NULL;
    if (!c)
        return;
    static const ord_table tables[] = { ORD_TABLE_ORDERS, ORD_TABLE_ACCOUNTS, ORD_TABLE_STOCK };
    const catalog *cat = kvstore_catalog(g->n->kv);
    int64_t now = (int64_t)tpc_wall_ms();
    int budget = ORDERS_GC_MAX;
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        const char *name = ord_table_name(tables[i]);
        const catalog_table *t = catalog_find(cat, name, strlen(name));
        for (uint32_t p = 0; t && p < t->partitions && budget > 0; p++) {
            uint64_t gid = fsm_group_id(t->id, p);
            if (raftstore_leader(g->n->rs, gid) == g->n->node_id)
                sweep_partition(g, c, t, tables[i], p, now, &budget);
        }
    }
}

static void *gc_main(void *arg)
{
    okv_thread_name("okv-orders-gc");
    orders_gc *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += g->every_ms / 1000;
        ts.tv_nsec += (long)(g->every_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        if (g->stop)
            break;
        pthread_mutex_unlock(&g->mu);
        sweep_round(g);
        pthread_mutex_lock(&g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int orders_gc_new(orders_gc **out, node *n, int64_t retention_ms, int every_ms, okv_error *err)
{
    *out = NULL;
    if (retention_ms <= 0)
        return OKV_OK;   /* keep forever: no thread */
    orders_gc *g = calloc(1, sizeof *g);
    if (!g)
        return okv_error_set(err, OKV_ENOMEM, "out of memory starting the orders GC");
    g->n = n;
    g->retention_ms = retention_ms;
    g->every_ms = every_ms > 0 ? every_ms : ORDERS_GC_EVERY_MS;
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&g->th, NULL, gc_main, g) != 0) {
        orders_gc_free(g);
        return okv_error_set(err, OKV_EINTERNAL, "cannot start the orders GC thread");
    }
    g->started = 1;
    *out = g;
    return OKV_OK;
}

void orders_gc_free(orders_gc *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (g->started)
        pthread_join(g->th, NULL);
    if (g->dropped)
        OKV_INFO("orders GC: %llu idempotency records past retention dropped",
                 (unsigned long long)g->dropped);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}
