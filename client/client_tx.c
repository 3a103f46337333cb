/*
 * client_tx.c — interactive optimistic transactions (okv_tx_*).
 *
 * Reads go to the cluster (linearizable gets) and are remembered: the first
 * read of a key records its version, or that it was absent, and later reads
 * of the key return the same answer. Writes are buffered, one per key (a
 * later write to a key replaces or folds into the earlier one). Commit is
 * one okv_txn_commit: every remembered read becomes a condition (version
 * == v, or absent) and the buffered writes its writes, so the transaction
 * applies only if nothing it read has changed: serializable, and with
 * linearizable reads strictly serializable. A read-only transaction
 * commits by checking its conditions in one more round (a check, which
 * holds at one point of the log, so its reads were all current together).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_async.h"
#include "client_result.h"

#include "client_tx.h"

int client_tx_key_eq(const tx_key *k, const char *table, const void *key, size_t key_len)
{
    return k->key_len == key_len && strcmp(k->table, table) == 0 &&
           memcmp(k->key, key, key_len) == 0;
}

int client_tx_key_set(tx_key *k, const char *table, const void *key, size_t key_len)
{
    k->table = strdup(table);
    k->key = malloc(key_len);
    if (!k->table || !k->key) {
        free(k->table);
        free(k->key);
        return OKV_ENOMEM;
    }
    memcpy(k->key, key, key_len);
    k->key_len = key_len;
    return OKV_OK;
}

void client_tx_key_free(tx_key *k)
{
    free(k->table);
    free(k->key);
}

int okv_tx_begin(okv_client *c, okv_tx **out)
{
    if (!c || !out)
        return OKV_EINVAL;
    *out = calloc(1, sizeof **out);
    if (!*out)
        return client_fail(c, OKV_ENOMEM, "out of memory");
    (*out)->c = c;
    return OKV_OK;
}

void okv_tx_free(okv_tx *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_reads; i++) {
        client_tx_key_free(&t->reads[i].k);
        free(t->reads[i].value);
    }
    for (size_t i = 0; i < t->n_writes; i++) {
        client_tx_key_free(&t->writes[i].k);
        free(t->writes[i].value);
    }
    for (size_t i = 0; i < t->n_ranges; i++)
        client_tx_range_free(&t->ranges[i]);
    free(t->reads);
    free(t->writes);
    free(t->ranges);
    free(t);
}

static tx_read *find_read(okv_tx *t, const char *table, const void *key, size_t key_len)
{
    for (size_t i = 0; i < t->n_reads; i++)
        if (client_tx_key_eq(&t->reads[i].k, table, key, key_len))
            return &t->reads[i];
    return NULL;
}

tx_write *client_tx_find_write(okv_tx *t, const char *table, const void *key, size_t key_len)
{
    for (size_t i = 0; i < t->n_writes; i++)
        if (client_tx_key_eq(&t->writes[i].k, table, key, key_len))
            return &t->writes[i];
    return NULL;
}

/* The key as the transaction first read it, reading it now if it has not. */
static int read_through(okv_tx *t, const char *table, const void *key, size_t key_len,
                        int timeout_ms, tx_read **out)
{
    *out = find_read(t, table, key, key_len);
    if (*out)
        return OKV_OK;
    if (t->n_reads == OKV_TXN_MAX_ITEMS)
        return client_fail(t->c, OKV_EINVAL, "a transaction reads at most %u keys",
                           OKV_TXN_MAX_ITEMS);
    okv_value *v = NULL;
    int rc = okv_get(t->c, table, key, key_len, &v, timeout_ms);
    if (rc != OKV_OK && rc != OKV_ENOTFOUND)
        return rc;
    if (t->n_reads == t->cap_reads) {
        size_t ncap = t->cap_reads ? t->cap_reads * 2 : 8;
        tx_read *nr = realloc(t->reads, ncap * sizeof *nr);
        if (!nr) {
            okv_value_free(v);
            return client_fail(t->c, OKV_ENOMEM, "out of memory");
        }
        t->reads = nr;
        t->cap_reads = ncap;
    }
    tx_read *r = &t->reads[t->n_reads];
    memset(r, 0, sizeof *r);
    if (client_tx_key_set(&r->k, table, key, key_len) != OKV_OK) {
        okv_value_free(v);
        return client_fail(t->c, OKV_ENOMEM, "out of memory");
    }
    if (v) {
        r->exists = 1;
        r->version = okv_value_version(v);
        r->value_len = okv_value_len(v);
        r->value = malloc(r->value_len ? r->value_len : 1);
        if (!r->value) {
            client_tx_key_free(&r->k);
            okv_value_free(v);
            return client_fail(t->c, OKV_ENOMEM, "out of memory");
        }
        memcpy(r->value, okv_value_data(v), r->value_len);
        okv_value_free(v);
    }
    t->n_reads++;
    *out = r;
    return OKV_OK;
}

int okv_tx_get(okv_tx *t, const char *table, const void *key, size_t key_len, okv_value **out,
               int timeout_ms)
{
    if (!t || !out)
        return OKV_EINVAL;
    *out = NULL;
    int rc = client_check_table_key(t->c, table, key, key_len);
    if (rc)
        return rc;
    /* Its own writes first; a buffered write has no version yet (0). */
    const tx_write *w = client_tx_find_write(t, table, key, key_len);
    if (w && w->kind == TXW_DELETE)
        return client_fail(t->c, OKV_ENOTFOUND, "deleted in this transaction");
    if (w && w->kind == TXW_PUT) {
        *out = client_value_new(w->value, w->value_len, 0);
        return *out ? OKV_OK : client_fail(t->c, OKV_ENOMEM, "out of memory");
    }
    tx_read *r;
    if ((rc = read_through(t, table, key, key_len, timeout_ms, &r)))
        return rc;
    if (w) {   /* an add: the counter as it will be */
        int64_t base = 0, sum;
        if (r->exists && okv_counter_decode(r->value, r->value_len, &base) != OKV_OK)
            return client_fail(t->c, OKV_EINVAL, "the key holds %zu bytes, not a counter",
                               r->value_len);
        if (__builtin_add_overflow(base, w->delta, &sum))
            return client_fail(t->c, OKV_EINVAL, "the add overflows int64");
        uint8_t enc[8];
        okv_counter_encode(sum, enc);
        *out = client_value_new(enc, sizeof enc, 0);
        return *out ? OKV_OK : client_fail(t->c, OKV_ENOMEM, "out of memory");
    }
    if (!r->exists)
        return client_fail(t->c, OKV_ENOTFOUND, "key not found");
    *out = client_value_new(r->value, r->value_len, r->version);
    return *out ? OKV_OK : client_fail(t->c, OKV_ENOMEM, "out of memory");
}

/* The write slot for a key: the existing one, or a new one (*created). */
static int slot(okv_tx *t, const char *table, const void *key, size_t key_len, tx_write **out,
                int *created)
{
    *created = 0;
    int rc = client_check_table_key(t->c, table, key, key_len);
    if (rc)
        return rc;
    if ((*out = client_tx_find_write(t, table, key, key_len)))
        return OKV_OK;
    if (t->n_writes == OKV_TXN_MAX_ITEMS)
        return client_fail(t->c, OKV_EINVAL, "a transaction writes at most %u keys",
                           OKV_TXN_MAX_ITEMS);
    if (t->n_writes == t->cap_writes) {
        size_t ncap = t->cap_writes ? t->cap_writes * 2 : 8;
        tx_write *nw = realloc(t->writes, ncap * sizeof *nw);
        if (!nw)
            return client_fail(t->c, OKV_ENOMEM, "out of memory");
        t->writes = nw;
        t->cap_writes = ncap;
    }
    tx_write *w = &t->writes[t->n_writes];
    memset(w, 0, sizeof *w);
    if (client_tx_key_set(&w->k, table, key, key_len) != OKV_OK)
        return client_fail(t->c, OKV_ENOMEM, "out of memory");
    t->n_writes++;
    *out = w;
    *created = 1;
    return OKV_OK;
}

static int set_put(okv_tx *t, tx_write *w, const void *value, size_t value_len)
{
    uint8_t *copy = malloc(value_len ? value_len : 1);
    if (!copy)
        return client_fail(t->c, OKV_ENOMEM, "out of memory");
    if (value_len)
        memcpy(copy, value, value_len);
    free(w->value);
    w->kind = TXW_PUT;
    w->value = copy;
    w->value_len = value_len;
    w->has_floor = 0;
    return OKV_OK;
}

int okv_tx_put(okv_tx *t, const char *table, const void *key, size_t key_len, const void *value,
               size_t value_len)
{
    if (!t)
        return OKV_EINVAL;
    if (value_len > OKV_MAX_VALUE_LEN || (value_len && !value))
        return client_fail(t->c, OKV_EINVAL, "value is %zu bytes (the limit is %u) or NULL",
                           value_len, OKV_MAX_VALUE_LEN);
    tx_write *w;
    int created;
    int rc = slot(t, table, key, key_len, &w, &created);
    return rc ? rc : set_put(t, w, value, value_len);
}

int okv_tx_delete(okv_tx *t, const char *table, const void *key, size_t key_len)
{
    if (!t)
        return OKV_EINVAL;
    tx_write *w;
    int created;
    int rc = slot(t, table, key, key_len, &w, &created);
    if (rc)
        return rc;
    free(w->value);
    w->value = NULL;
    w->value_len = 0;
    w->kind = TXW_DELETE;
    w->has_floor = 0;
    return OKV_OK;
}

/* An add folds into a buffered write of the key: into a put's counter (the
 * floor checked now), into an earlier add (deltas summed, the higher floor
 * kept: a floor bounds the key's final value), or after a delete (from 0). */
static int add(okv_tx *t, const char *table, const void *key, size_t key_len, int64_t delta,
               int has_floor, int64_t floor)
{
    if (!t)
        return OKV_EINVAL;
    tx_write *w;
    int created;
    int rc = slot(t, table, key, key_len, &w, &created);
    if (rc)
        return rc;
    if (created) {
        w->kind = TXW_ADD;
        w->delta = delta;
        w->has_floor = has_floor;
        w->floor = floor;
        return OKV_OK;
    }
    if (w->kind == TXW_ADD) {
        if (__builtin_add_overflow(w->delta, delta, &w->delta))
            return client_fail(t->c, OKV_EINVAL, "the adds to one key overflow int64");
        if (has_floor && (!w->has_floor || floor > w->floor)) {
            w->has_floor = 1;
            w->floor = floor;
        }
        return OKV_OK;
    }
    int64_t base = 0, sum;
    if (w->kind == TXW_PUT && okv_counter_decode(w->value, w->value_len, &base) != OKV_OK)
        return client_fail(t->c, OKV_EINVAL, "this transaction put %zu bytes, not a counter, "
                                             "to the key", w->value_len);
    if (__builtin_add_overflow(base, delta, &sum))
        return client_fail(t->c, OKV_EINVAL, "the add overflows int64");
    if (has_floor && sum < floor)
        return client_fail(t->c, OKV_ECONDITION, "the add would leave the key below its floor");
    uint8_t enc[8];
    okv_counter_encode(sum, enc);
    return set_put(t, w, enc, sizeof enc);
}

int okv_tx_add(okv_tx *t, const char *table, const void *key, size_t key_len, int64_t delta)
{
    return add(t, table, key, key_len, delta, 0, 0);
}

int okv_tx_add_floor(okv_tx *t, const char *table, const void *key, size_t key_len,
                     int64_t delta, int64_t floor)
{
    return add(t, table, key, key_len, delta, 1, floor);
}

/* ---- a read-only transaction across partitions -------------------------------
 *
 * It commits without locks or two-phase commit: one check per partition
 * (its versions, as a one-partition transaction of conditions), all sent
 * after every read. Each check applies at some point v_i after the last
 * read T, and confirms that its keys still had the versions read — and
 * fails on a key a prepared transaction holds exclusively (txn.h: a
 * condition meets an exclusive lock). So every key kept, from its read
 * until its check, the value read, and at T all of them held together:
 * the reads are one snapshot at T, inside the transaction's lifetime. */

typedef struct check_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int left;
    int rc;                   /* the first failure */
    int locked_only;          /* every failure was a lock (worth a second look) */
    char msg[256];
} check_wait;

static void check_done(void *arg, const okv_result *r)
{
    check_wait *w = arg;
    int rc = okv_result_code(r);
    okv_txn_outcome o;
    okv_result_txn_outcome(r, &o);
    pthread_mutex_lock(&w->mu);
    if (rc != OKV_OK && !(rc == OKV_ECONFLICT && o.reason == OKV_TXN_LOCKED))
        w->locked_only = 0;
    if (rc != OKV_OK && w->rc == OKV_OK) {
        w->rc = rc;
        snprintf(w->msg, sizeof w->msg, "%s", okv_result_errmsg(r));
    }
    if (--w->left == 0)
        pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void run_checks(okv_tx *t, okv_txn_req *const *req, size_t ng, int timeout_ms,
                       check_wait *out);

/* 1 if it ran (*rc set), 0 if the reads' partitions are not all known or
 * lie in one partition (the ordinary path then commits them). */
static int commit_read_only(okv_tx *t, int timeout_ms, int *rc)
{
    enum { MAX_GROUPS = 64 };
    long part[MAX_GROUPS];
    const char *table[MAX_GROUPS];
    okv_txn_req *req[MAX_GROUPS];
    size_t ng = 0;
    if (client_on_completion_thread())
        return 0;   /* a synchronous call from a callback: refused as usual */
    for (size_t i = 0; i < t->n_reads; i++) {
        const tx_read *r = &t->reads[i];
        long p = client_route_partition(t->c, r->k.table, r->k.key, r->k.key_len);
        if (p < 0)
            goto ordinary;
        size_t g = 0;
        while (g < ng && !(part[g] == p && strcmp(table[g], r->k.table) == 0))
            g++;
        if (g == ng) {
            if (ng == MAX_GROUPS)
                goto ordinary;
            part[ng] = p;
            table[ng] = r->k.table;
            if (okv_txn_req_new(&req[ng]) != OKV_OK)
                goto ordinary;
            ng++;
        }
        int brc = r->exists ? okv_txn_req_version_is(req[g], r->k.table, r->k.key, r->k.key_len,
                                                     r->version)
                            : okv_txn_req_absent(req[g], r->k.table, r->k.key, r->k.key_len);
        if (brc != OKV_OK)
            goto ordinary;
    }
    for (size_t i = 0; i < t->n_ranges; i++) {
        const tx_range *r = &t->ranges[i];
        size_t g = 0;
        while (g < ng && !(part[g] == (long)r->partition && strcmp(table[g], r->table) == 0))
            g++;
        if (g == ng) {
            if (ng == MAX_GROUPS)
                goto ordinary;
            part[ng] = (long)r->partition;
            table[ng] = r->table;
            if (okv_txn_req_new(&req[ng]) != OKV_OK)
                goto ordinary;
            ng++;
        }
        if (client_txn_req_range(req[g], r->table, r->partition, r->lo, r->lo_len, r->hi,
                                 r->hi_len, r->count, r->digest) != OKV_OK)
            goto ordinary;
    }
    if (ng < 2)
        goto ordinary;
    /* A check that met only a lock (a transfer being committed) is worth a
     * second look once that is resolved: it is as valid later. */
    check_wait w;
    for (int attempt = 0;; attempt++) {
        run_checks(t, req, ng, timeout_ms, &w);
        if (w.rc != OKV_ECONFLICT || !w.locked_only || attempt == 3)
            break;
        struct timespec ts = { 0, (long)(5 + 10 * attempt) * 1000000L };
        nanosleep(&ts, NULL);
    }
    for (size_t g = 0; g < ng; g++)
        okv_txn_req_free(req[g]);
    if (w.rc == OKV_ECONDITION || w.rc == OKV_ECONFLICT)
        *rc = client_fail(t->c, OKV_ECONFLICT, "something this transaction read changed, or is "
                          "held by a transaction being committed (%s); run it again "
                          "(okv_tx_run does)", w.msg);
    else
        *rc = w.rc == OKV_OK ? OKV_OK : client_fail(t->c, w.rc, "%s", w.msg);
    return 1;
ordinary:
    for (size_t g = 0; g < ng; g++)
        okv_txn_req_free(req[g]);
    return 0;
}

static void run_checks(okv_tx *t, okv_txn_req *const *req, size_t ng, int timeout_ms,
                       check_wait *out)
{
    check_wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, OKV_OK, 1, "" };
    w.left = (int)ng;
    for (size_t g = 0; g < ng; g++) {
        int src = okv_txn_commit_async(t->c, req[g], timeout_ms, check_done, &w);
        if (src != OKV_OK) {
            pthread_mutex_lock(&w.mu);
            w.locked_only = 0;
            if (w.rc == OKV_OK) {
                w.rc = src;
                snprintf(w.msg, sizeof w.msg, "%s", okv_errmsg(t->c));
            }
            w.left--;
            pthread_mutex_unlock(&w.mu);
        }
    }
    pthread_mutex_lock(&w.mu);
    while (w.left > 0)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    out->rc = w.rc;
    out->locked_only = w.locked_only;
    memcpy(out->msg, w.msg, sizeof out->msg);
}

/* The transaction as okv_txn_commit sends it: every remembered read a
 * condition, then the buffered writes. okv_tx_status rebuilds the same
 * request, so it asks the partition that decides it. */
static int build_req(okv_tx *t, okv_txn_req **out)
{
    okv_txn_req *q;
    int rc = okv_txn_req_new(&q);
    if (rc)
        return client_fail(t->c, rc, "out of memory");
    for (size_t i = 0; i < t->n_reads && rc == OKV_OK; i++) {
        const tx_read *r = &t->reads[i];
        rc = r->exists ? okv_txn_req_version_is(q, r->k.table, r->k.key, r->k.key_len, r->version)
                       : okv_txn_req_absent(q, r->k.table, r->k.key, r->k.key_len);
    }
    if (rc == OKV_OK)
        rc = client_tx_add_ranges(t, q);
    for (size_t i = 0; i < t->n_writes && rc == OKV_OK; i++) {
        const tx_write *w = &t->writes[i];
        const tx_key *k = &w->k;
        if (w->kind == TXW_PUT)
            rc = okv_txn_req_put(q, k->table, k->key, k->key_len, w->value, w->value_len);
        else if (w->kind == TXW_DELETE)
            rc = okv_txn_req_delete(q, k->table, k->key, k->key_len);
        else if (w->has_floor)
            rc = okv_txn_req_add_floor(q, k->table, k->key, k->key_len, w->delta, w->floor);
        else
            rc = okv_txn_req_add(q, k->table, k->key, k->key_len, w->delta);
    }
    if (rc) {
        okv_txn_req_free(q);
        return client_fail(t->c, rc, "the transaction could not be built (%s)",
                           okv_strerror(rc));
    }
    *out = q;
    return OKV_OK;
}

/* A failed condition that is one of the reads means the transaction's
 * snapshot went stale: to the caller a conflict, not a failed condition. */
static int read_changed(okv_tx *t, int rc, const okv_txn_outcome *o)
{
    if (rc != OKV_ECONDITION || o->reason != OKV_TXN_CONDITION ||
        o->failed >= t->n_reads + t->n_ranges)
        return rc;
    if (o->failed >= t->n_reads) {
        const tx_range *g = &t->ranges[o->failed - t->n_reads];
        return client_fail(t->c, OKV_ECONFLICT,
                           "a key was inserted, deleted or written in a range of table %s "
                           "that this transaction scanned (partition %u); nothing applied, "
                           "run it again (okv_tx_run does)", g->table, g->partition);
    }
    const tx_read *r = &t->reads[o->failed];
    return client_fail(t->c, OKV_ECONFLICT,
                       "table %s key %.*s changed after this transaction read it; nothing "
                       "applied, run it again (okv_tx_run does)",
                       r->k.table, (int)(r->k.key_len > 64 ? 64 : r->k.key_len),
                       (const char *)r->k.key);
}

int okv_tx_commit(okv_tx *t, okv_txn_outcome *out, int timeout_ms)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!t)
        return OKV_EINVAL;
    if (t->n_reads == 0 && t->n_writes == 0 && t->n_ranges == 0)
        return OKV_OK;   /* nothing read, nothing written: nothing to check */
    int rc;
    if (t->n_writes == 0 && commit_read_only(t, timeout_ms, &rc))
        return rc;
    okv_txn_req *q;
    if ((rc = build_req(t, &q)))
        return rc;
    okv_txn_outcome o;
    rc = okv_txn_commit(t->c, q, &o, timeout_ms);
    okv_txn_req_free(q);
    rc = read_changed(t, rc, &o);
    if (out)
        *out = o;
    return rc;
}

int okv_tx_status(okv_tx *t, uint64_t txn_id, okv_txn_outcome *out, int timeout_ms)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!t)
        return OKV_EINVAL;
    if (t->n_writes == 0)
        return client_fail(t->c, OKV_EINVAL, "okv_tx_status: a read-only transaction writes "
                           "nothing and has no outcome to ask about");
    okv_txn_req *q;
    int rc = build_req(t, &q);
    if (rc)
        return rc;
    okv_txn_outcome o;
    rc = okv_txn_status(t->c, q, txn_id, &o, timeout_ms);
    okv_txn_req_free(q);
    rc = read_changed(t, rc, &o);
    if (out)
        *out = o;
    return rc;
}

int okv_tx_run(okv_client *c, okv_tx_fn fn, void *arg, okv_txn_outcome *out, int timeout_ms)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!c || !fn)
        return OKV_EINVAL;
    int budget = timeout_ms > 0 ? timeout_ms : c->opts.default_timeout_ms;
    int64_t deadline = client_now_ms() + budget;
    for (int attempt = 0;; attempt++) {
        okv_tx *t;
        int rc = okv_tx_begin(c, &t);
        if (rc)
            return rc;
        int64_t left = deadline - client_now_ms();
        rc = fn(t, arg);
        if (rc == OKV_OK)
            rc = okv_tx_commit(t, out, left > 0 ? (int)left : 1);
        okv_tx_free(t);
        if (rc != OKV_ECONFLICT)
            return rc;
        /* Someone changed what it read: run it again after a jittered,
         * growing pause, within the deadline. */
        int pause = client_backoff_ms(attempt);
        if (client_now_ms() + pause >= deadline)
            return client_fail(c, OKV_ECONFLICT, "still conflicting after %d attempts within "
                                                 "%d ms; nothing of the last one applied",
                               attempt + 1, budget);
        struct timespec ts = { pause / 1000, (long)(pause % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}
