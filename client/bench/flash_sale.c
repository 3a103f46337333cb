/*
 * flash_sale.c — set and audit a flash sale's stock (flash_sale.h).
 *
 * orderkv through liborderkv's synchronous calls; etcd through etcd_kv's
 * asynchronous ones, each waited for on a condition variable (etcd_kv has
 * no synchronous form, and these few calls do not need one).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flash_sale.h"

/* "STOCK/r/": every reservation key starts with it (driver.h). */
static int prefix_of(const char *stock_key, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/r/", stock_key);
    return n > 0 && (size_t)n < size ? n : -1;
}

/* ---- etcd: one call, waited for ---- */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int code;
    char msg[256];
    int found;                   /* a read: the key exists */
    uint8_t value[8];            /* its value, if 8 bytes long */
    size_t value_len;
    int64_t count;               /* a count */
} waiter;

static void waiter_init(waiter *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

/* On etcd_kv's completion thread: hands the outcome to the waiting thread. */
static void wake(waiter *w, int code, const char *msg)
{
    pthread_mutex_lock(&w->mu);
    w->code = code;
    snprintf(w->msg, sizeof w->msg, "%s", msg ? msg : "");
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Waits for the call started with w (every call has a deadline, so the
 * callback comes), or takes rc if it was not started; frees w's lock. */
static int wait_for(waiter *w, int rc, char *msg, size_t msgsize)
{
    if (rc == OKV_OK) {
        pthread_mutex_lock(&w->mu);
        while (!w->done)
            pthread_cond_wait(&w->cv, &w->mu);
        pthread_mutex_unlock(&w->mu);
        rc = w->code;
        snprintf(msg, msgsize, "%s", w->msg);
    } else {
        snprintf(msg, msgsize, "%s", etcd_kv_errmsg());
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    return rc;
}

static void put_done(void *arg, int code, const char *errmsg)
{
    wake(arg, code, errmsg);
}

static void read_done(void *arg, int code, const char *errmsg, const etcd_kv_kv *kvs, size_t n)
{
    waiter *w = arg;
    if (code == OKV_OK && n == 1 && kvs[0].found) {
        w->found = 1;
        w->value_len = kvs[0].value_len;
        if (w->value_len == sizeof w->value)
            memcpy(w->value, kvs[0].value, sizeof w->value);
    }
    wake(w, code, errmsg);
}

static void count_done(void *arg, int code, const char *errmsg, int64_t count)
{
    waiter *w = arg;
    w->count = count;
    wake(w, code, errmsg);
}

/* ---- both targets ---- */

int flash_sale_stock_set(const flash_sale_target *t, const char *stock_key, int64_t units,
                         char *msg, size_t msgsize)
{
    uint8_t v[8];
    okv_counter_encode(units, v);
    size_t len = strlen(stock_key);
    if (t->okv) {
        int rc = okv_put(t->okv, t->table, stock_key, len, v, sizeof v, NULL, t->timeout_ms);
        snprintf(msg, msgsize, "%s", rc ? okv_errmsg(t->okv) : "");
        return rc;
    }
    waiter w;
    waiter_init(&w);
    int rc = etcd_kv_put_async(t->etcd, stock_key, len, v, sizeof v, t->timeout_ms, put_done, &w);
    return wait_for(&w, rc, msg, msgsize);
}

/* The stock's counter; OKV_ENOTFOUND if the key is gone, OKV_EINVAL if it
 * does not hold 8 bytes. */
static int stock_get(const flash_sale_target *t, const char *stock_key, int64_t *out, char *msg,
                     size_t msgsize)
{
    size_t len = strlen(stock_key);
    if (t->okv) {
        okv_value *v = NULL;
        int rc = okv_get(t->okv, t->table, stock_key, len, &v, t->timeout_ms);
        snprintf(msg, msgsize, "%s", rc ? okv_errmsg(t->okv) : "");
        if (rc == OKV_OK && okv_counter_decode(okv_value_data(v), okv_value_len(v), out)) {
            snprintf(msg, msgsize, "the stock key does not hold an 8-byte counter");
            rc = OKV_EINVAL;
        }
        okv_value_free(v);
        return rc;
    }
    waiter w;
    waiter_init(&w);
    int rc = etcd_kv_read_async(t->etcd, (const void *const *)&stock_key, &len, 1, t->timeout_ms,
                                read_done, &w);
    rc = wait_for(&w, rc, msg, msgsize);
    if (rc == OKV_OK && !w.found) {
        snprintf(msg, msgsize, "the stock key does not exist");
        rc = OKV_ENOTFOUND;
    } else if (rc == OKV_OK && okv_counter_decode(w.value, w.value_len, out)) {
        snprintf(msg, msgsize, "the stock key does not hold an 8-byte counter");
        rc = OKV_EINVAL;
    }
    return rc;
}

/* orderkv: a prefix scan, page by page; each page's resume token is copied
 * out before the page is freed. */
static int okv_count(const flash_sale_target *t, const char *prefix, size_t plen, uint64_t *out,
                     char *msg, size_t msgsize)
{
    okv_scan_opts so = OKV_SCAN_OPTS_INIT;
    so.prefix = prefix;
    so.prefix_len = plen;
    so.limit = OKV_SCAN_MAX_LIMIT;
    so.timeout_ms = t->timeout_ms;
    void *token = NULL;
    int rc;
    for (;;) {
        okv_scan_result *r = NULL;
        rc = okv_scan(t->okv, t->table, &so, &r);
        if (rc) {
            snprintf(msg, msgsize, "%s", okv_errmsg(t->okv));
            break;
        }
        *out += okv_scan_result_count(r);
        size_t len = 0;
        const void *next = okv_scan_result_resume(r, &len);
        void *copy = next ? malloc(len ? len : 1) : NULL;
        if (copy)
            memcpy(copy, next, len);
        okv_scan_result_free(r);
        free(token);
        token = copy;
        if (!next)
            break;
        if (!copy) {
            snprintf(msg, msgsize, "out of memory");
            rc = OKV_ENOMEM;
            break;
        }
        so.resume = token;
        so.resume_len = len;
    }
    free(token);
    return rc;
}

int flash_sale_count(const flash_sale_target *t, const char *stock_key, uint64_t *out,
                     char *msg, size_t msgsize)
{
    char prefix[OKV_MAX_KEY_LEN + 1];
    int plen = prefix_of(stock_key, prefix, sizeof prefix);
    *out = 0;
    if (plen < 0) {
        snprintf(msg, msgsize, "the stock key is too long");
        return OKV_EINVAL;
    }
    if (t->okv)
        return okv_count(t, prefix, (size_t)plen, out, msg, msgsize);
    waiter w;
    waiter_init(&w);
    int rc = etcd_kv_count_async(t->etcd, prefix, (size_t)plen, t->timeout_ms, count_done, &w);
    rc = wait_for(&w, rc, msg, msgsize);
    if (rc == OKV_OK)
        *out = w.count < 0 ? 0 : (uint64_t)w.count;
    return rc;
}

void flash_sale_audit_run(const flash_sale_target *t, const char *stock_key, int64_t initial,
                          uint64_t before, flash_sale_audit *out)
{
    memset(out, 0, sizeof *out);
    out->initial = initial;
    out->before = before;
    out->code = stock_get(t, stock_key, &out->available, out->msg, sizeof out->msg);
    if (out->code == OKV_OK)
        out->code = flash_sale_count(t, stock_key, &out->after, out->msg, sizeof out->msg);
    if (out->code != OKV_OK)
        return;
    out->done = 1;
    out->reservations = out->after >= before ? out->after - before : 0;
    int64_t sold = (int64_t)out->reservations;
    out->oversell = sold > initial ? sold - initial : 0;
    out->unaccounted = initial - out->available - sold;
    out->ok = out->available >= 0 && out->oversell == 0 && out->unaccounted == 0 &&
              out->after >= before;
}
