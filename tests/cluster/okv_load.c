/*
 * okv_load.c — see okv_load.h.
 */
#include "okv_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keycodec.h"
#include "okv_cluster.h"
#include "okv_test.h"

static void value_of(const char *key, char *val, size_t cap)
{
    snprintf(val, cap, "value-of:%s:%s", key, key);
}

static void note_ok(okv_load *l, int64_t t0, int64_t t1)
{
    long long mark = atomic_load(&l->mark);
    if (mark <= 0 || t0 < mark)
        return;
    long long cur = atomic_load(&l->first_ok);
    while ((cur == 0 || t1 < cur) && !atomic_compare_exchange_weak(&l->first_ok, &cur, t1))
        ;
}

static void *writer_main(void *p)
{
    okv_load_writer *w = p;
    okv_load *l = w->l;
    for (size_t seq = 0; !atomic_load(&l->stop); seq++) {
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 1024;
            okv_load_rec *r = realloc(w->recs, cap * sizeof *r);
            if (!r)
                break;
            w->recs = r;
            w->cap = cap;
        }
        okv_load_rec *r = &w->recs[w->n];
        for (unsigned salt = 0;; salt++) {
            snprintf(r->key, sizeof r->key, "%s.w%d.%zu.%u/k", l->name, w->id, seq, salt);
            if (l->target < 0 ||
                keycodec_partition_of(r->key, strlen(r->key), l->partitions) == (uint32_t)l->target)
                break;
        }
        char val[100];
        value_of(r->key, val, sizeof val);
        r->t0 = okv_cluster_now_ms();
        r->rc = okv_put(w->c, "orders", r->key, strlen(r->key), val, strlen(val), NULL,
                        OKV_LOAD_WRITE_TIMEOUT_MS);
        r->t1 = okv_cluster_now_ms();
        w->n++;
        if (r->rc == OKV_OK)
            note_ok(l, r->t0, r->t1);
        else
            okv_cluster_sleep_ms(20);   /* the client already backed off; don't spin on a dead cluster */
        okv_cluster_sleep_ms(2);        /* moderate volume: the read-back reads every key */
    }
    return NULL;
}

void okv_load_start(okv_load *l, const char *addrs, uint32_t partitions, const char *name,
                    int target, int nw)
{
    memset(l, 0, sizeof *l);
    snprintf(l->name, sizeof l->name, "%s", name);
    l->target = target;
    l->partitions = partitions;
    l->nw = nw;
    for (int i = 0; i < nw; i++) {
        l->w[i].l = l;
        l->w[i].id = i;
        assert_int_equal(okv_connect(&l->w[i].c, addrs, NULL), OKV_OK);
    }
    for (int i = 0; i < nw; i++)
        assert_int_equal(pthread_create(&l->th[i], NULL, writer_main, &l->w[i]), 0);
}

/* Starts timing: first_ok will be the end of the first OK write that
 * started at or after now. */
int64_t okv_load_mark(okv_load *l)
{
    int64_t t = okv_cluster_now_ms();
    atomic_store(&l->first_ok, 0);
    atomic_store(&l->mark, t);
    return t;
}

/* Waits (bounded) until a write that started after the mark succeeded;
 * returns the time from the mark to its acknowledgement, or -1. */
int64_t okv_load_wait_first_ok(okv_load *l, int timeout_ms)
{
    int64_t end = okv_cluster_now_ms() + timeout_ms;
    while (okv_cluster_now_ms() < end) {
        long long t = atomic_load(&l->first_ok);
        if (t)
            return t - atomic_load(&l->mark);
        okv_cluster_sleep_ms(5);
    }
    return -1;
}

void okv_load_stop(okv_load *l)
{
    atomic_store(&l->stop, 1);
    for (int i = 0; i < l->nw; i++)
        pthread_join(l->th[i], NULL);
    for (int i = 0; i < l->nw; i++) {
        okv_close(l->w[i].c);
        l->w[i].c = NULL;
    }
}

void okv_load_free(okv_load *l)
{
    for (int i = 0; i < l->nw; i++) {
        free(l->w[i].recs);
        l->w[i].recs = NULL;
    }
}

static int is_clean_failure(int rc)
{
    return rc == OKV_ENOTLEADER || rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT;
}

/* OK writes that started after `from` and ended before `to`. */
size_t okv_load_ok_between(const okv_load *l, int64_t from, int64_t to)
{
    size_t n = 0;
    for (int i = 0; i < l->nw; i++)
        for (size_t k = 0; k < l->w[i].n; k++) {
            const okv_load_rec *r = &l->w[i].recs[k];
            n += r->rc == OKV_OK && r->t0 > from && r->t1 < to;
        }
    return n;
}

/* Reads back every write of the load through c (see the file comment);
 * returns how many acknowledged writes it read. */
size_t okv_load_verify(const okv_load *l, okv_client *c, const char *via)
{
    size_t ok = 0, unknown = 0, unknown_found = 0, clean = 0, other = 0;
    for (int i = 0; i < l->nw; i++) {
        for (size_t k = 0; k < l->w[i].n; k++) {
            const okv_load_rec *r = &l->w[i].recs[k];
            char want[100];
            value_of(r->key, want, sizeof want);
            okv_value *v = NULL;
            int rc = okv_get(c, "orders", r->key, strlen(r->key), &v, 10000);
            if (rc != OKV_OK && rc != OKV_ENOTFOUND)
                fail_msg("%s: reading %s back via %s: %s: %s", l->name, r->key, via,
                         okv_strerror(rc), okv_errmsg(c));
            if (rc == OKV_OK && (okv_value_len(v) != strlen(want) ||
                                 memcmp(okv_value_data(v), want, strlen(want)) != 0)) {
                fail_msg("%s: %s holds a wrong value '%.*s' (write returned %s)", l->name,
                         r->key, (int)okv_value_len(v), (const char *)okv_value_data(v),
                         okv_strerror(r->rc));
            }
            okv_value_free(v);
            if (r->rc == OKV_OK) {
                if (rc != OKV_OK)
                    fail_msg("%s: acknowledged write %s is lost (read via %s: %s)", l->name,
                             r->key, via, okv_strerror(rc));
                ok++;
            } else if (r->rc == OKV_EUNKNOWN) {
                unknown++;
                unknown_found += rc == OKV_OK;
            } else if (is_clean_failure(r->rc)) {
                if (rc == OKV_OK)
                    fail_msg("%s: write %s failed cleanly (%s) but was applied", l->name,
                             r->key, okv_strerror(r->rc));
                clean++;
            } else {
                other++;   /* allowed either way, but reported */
                fprintf(stderr, "  %s: write %s returned %s (%s)\n", l->name, r->key,
                        okv_strerror(r->rc), rc == OKV_OK ? "applied" : "absent");
            }
        }
    }
    printf("  %s: %zu acknowledged writes read back via %s; %zu unknown (%zu applied), "
           "%zu clean failures, %zu other\n",
           l->name, ok, via, unknown, unknown_found, clean, other);
    return ok;
}

size_t okv_load_count(const okv_load *l, int rc)
{
    size_t n = 0;
    for (int i = 0; i < l->nw; i++)
        for (size_t k = 0; k < l->w[i].n; k++)
            n += l->w[i].recs[k].rc == rc;
    return n;
}
