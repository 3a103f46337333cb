/*
 * client_tx_scan.c — scans inside an interactive transaction (okv_tx_scan).
 *
 * A page is one okv_scan (linearizable per partition, merged across
 * partitions) plus what the scan saw, kept per partition: the range it
 * covered, how many keys and their digest (range_digest.h). At commit each
 * becomes a RANGE condition, so an insert, a delete or a write anywhere in a
 * scanned range since the scan makes the commit fail with OKV_ECONFLICT:
 * no phantoms. Partitions the page returned no key from count too (an
 * insert there is a phantom as well): a scan of a whole table names every
 * partition of it; a prefix with a '/' names its one partition.
 *
 * The range a page covered: its lower bound (the prefix, the start, or just
 * past the last key of the previous page for a resumed scan) up to its
 * upper bound, or, when the page was cut at its limit, up to just past its
 * last key (key + "\0"): every key of every partition below that was
 * returned, since the server merges the partitions in key order.
 *
 * The page the caller gets shows the transaction's own buffered writes in
 * that range (puts and adds with version 0, deletes gone), as okv_tx_get
 * does for one key.
 */
#include <stdlib.h>
#include <string.h>

#include "client_result.h"
#include "client_tx.h"
#include "orderkv.pb-c.h"
#include "range_digest.h"

/* The resume token's format (server/api/request.c): a version byte, then
 * the last key returned. The next page starts just past that key. */
#define RESUME_TOKEN_V1 0x01

#define BOUND_MAX (OKV_MAX_KEY_LEN + 1u)

typedef struct bounds {
    uint8_t lo[BOUND_MAX], hi[BOUND_MAX];
    size_t lo_len, hi_len;     /* hi_len 0: no upper bound */
    long partition;            /* >= 0: the prefix names one partition */
} bounds;

static int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    return c ? c : (al > bl) - (al < bl);
}

static int in_bounds(const bounds *b, const void *key, size_t len)
{
    return key_cmp(key, len, b->lo, b->lo_len) >= 0 &&
           (b->hi_len == 0 || key_cmp(key, len, b->hi, b->hi_len) < 0);
}

/* The smallest string above every string with this prefix (storage/
 * keycodec.c does the same for the server): 0 when there is none. */
static size_t prefix_successor(const uint8_t *p, size_t len, uint8_t *out)
{
    while (len && p[len - 1] == 0xff)
        len--;
    if (!len)
        return 0;
    memcpy(out, p, len);
    out[len - 1]++;
    return len;
}

/* The page's range from the options and its result. */
static int page_bounds(okv_tx *t, const char *table, const okv_scan_opts *o,
                       const okv_scan_result *res, bounds *b)
{
    memset(b, 0, sizeof *b);
    b->partition = -1;
    if (o->prefix_len) {
        memcpy(b->lo, o->prefix, o->prefix_len);
        b->lo_len = o->prefix_len;
        b->hi_len = prefix_successor(o->prefix, o->prefix_len, b->hi);
        if (memchr(o->prefix, '/', o->prefix_len))
            b->partition = client_route_partition(t->c, table, o->prefix, o->prefix_len);
    } else {
        if (o->start_len)
            memcpy(b->lo, o->start, o->start_len);
        b->lo_len = o->start_len;
        if (o->end_len)
            memcpy(b->hi, o->end, o->end_len);
        b->hi_len = o->end_len;
    }
    if (o->resume_len) {
        const uint8_t *tok = o->resume;
        if (tok[0] != RESUME_TOKEN_V1 || o->resume_len < 2 || o->resume_len - 1 > OKV_MAX_KEY_LEN)
            return client_fail(t->c, OKV_EINVAL, "okv_tx_scan: a resume token this client "
                               "cannot read (from another version?)");
        memcpy(b->lo, tok + 1, o->resume_len - 1);
        b->lo[o->resume_len - 1] = 0;
        b->lo_len = o->resume_len;
    }
    size_t rlen;
    if (okv_scan_result_resume(res, &rlen) && okv_scan_result_count(res)) {
        size_t n = okv_scan_result_count(res), kl;
        const void *last = okv_scan_result_key(res, n - 1, &kl);
        memcpy(b->hi, last, kl);
        b->hi[kl] = 0;
        b->hi_len = kl + 1;
    }
    return OKV_OK;
}

void client_tx_range_free(tx_range *r)
{
    free(r->table);
    free(r->lo);
    free(r->hi);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    if (d && len)
        memcpy(d, p, len);
    return d;
}

/* Records what the page saw of partition p. */
static int record(okv_tx *t, const char *table, uint32_t p, const bounds *b,
                  const okv_scan_result *res)
{
    if (t->n_ranges + t->n_reads >= OKV_TXN_MAX_ITEMS)
        return client_fail(t->c, OKV_EINVAL, "a transaction reads at most %u keys and ranges "
                           "(a scan counts one per partition)", OKV_TXN_MAX_ITEMS);
    if (t->n_ranges == t->cap_ranges) {
        size_t ncap = t->cap_ranges ? t->cap_ranges * 2 : 8;
        tx_range *nr = realloc(t->ranges, ncap * sizeof *nr);
        if (!nr)
            return client_fail(t->c, OKV_ENOMEM, "out of memory");
        t->ranges = nr;
        t->cap_ranges = ncap;
    }
    tx_range *r = &t->ranges[t->n_ranges];
    memset(r, 0, sizeof *r);
    r->partition = p;
    r->digest = OKV_RANGE_DIGEST_INIT;
    for (size_t i = 0; i < okv_scan_result_count(res); i++) {
        size_t kl;
        const void *k = okv_scan_result_key(res, i, &kl);
        if (b->partition < 0 && client_route_partition(t->c, table, k, kl) != (long)p)
            continue;
        r->count++;
        r->digest = okv_range_digest_add(r->digest, k, kl, okv_scan_result_version(res, i));
    }
    r->table = strdup(table);
    r->lo = dup_bytes(b->lo, b->lo_len);
    r->hi = dup_bytes(b->hi, b->hi_len);
    r->lo_len = b->lo_len;
    r->hi_len = b->hi_len;
    if (!r->table || !r->lo || !r->hi) {
        client_tx_range_free(r);
        return client_fail(t->c, OKV_ENOMEM, "out of memory");
    }
    t->n_ranges++;
    return OKV_OK;
}

int client_tx_add_ranges(const okv_tx *t, okv_txn_req *q)
{
    int rc = OKV_OK;
    for (size_t i = 0; i < t->n_ranges && rc == OKV_OK; i++) {
        const tx_range *r = &t->ranges[i];
        rc = client_txn_req_range(q, r->table, r->partition, r->lo, r->lo_len, r->hi, r->hi_len,
                                  r->count, r->digest);
    }
    return rc;
}

/* ---- the page the caller sees: the scan with the buffered writes -------- */

typedef struct row {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    uint64_t version;
    uint8_t counter[8];        /* an add's value */
} row;

static int row_cmp(const void *x, const void *y)
{
    const row *a = x, *b = y;
    return key_cmp(a->key, a->key_len, b->key, b->key_len);
}

/* The page with t's writes in b laid over it, as a new result (the scan's
 * resume token kept). */
static int merge_writes(okv_tx *t, const char *table, const bounds *b, okv_scan_result *res,
                        okv_scan_result **out)
{
    size_t n = okv_scan_result_count(res), cap = n + t->n_writes, m = 0;
    row *rows = calloc(cap ? cap : 1, sizeof *rows);
    if (!rows)
        return client_fail(t->c, OKV_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        row *r = &rows[m++];
        r->key = okv_scan_result_key(res, i, &r->key_len);
        r->value = okv_scan_result_value(res, i, &r->value_len);
        r->version = okv_scan_result_version(res, i);
    }
    int rc = OKV_OK;
    for (size_t w = 0; w < t->n_writes && rc == OKV_OK; w++) {
        const tx_write *tw = &t->writes[w];
        if (strcmp(tw->k.table, table) != 0 || !in_bounds(b, tw->k.key, tw->k.key_len))
            continue;
        row probe = { tw->k.key, tw->k.key_len, NULL, 0, 0, { 0 } };
        row *hit = bsearch(&probe, rows, n, sizeof *rows, row_cmp);
        if (tw->kind == TXW_DELETE) {
            if (hit)
                hit->key = NULL;   /* dropped below */
            continue;
        }
        row *r = hit ? hit : &rows[m++];
        int64_t base = 0, sum = 0;
        if (tw->kind == TXW_ADD && hit &&
            okv_counter_decode(hit->value, hit->value_len, &base) != OKV_OK)
            rc = client_fail(t->c, OKV_EINVAL, "key %.*s holds %zu bytes, not a counter",
                             (int)(tw->k.key_len > 64 ? 64 : tw->k.key_len),
                             (const char *)tw->k.key, hit->value_len);
        else if (tw->kind == TXW_ADD && __builtin_add_overflow(base, tw->delta, &sum))
            rc = client_fail(t->c, OKV_EINVAL, "an add overflows int64");
        *r = probe;
        if (tw->kind == TXW_PUT) {
            r->value = tw->value;
            r->value_len = tw->value_len;
        } else if (rc == OKV_OK) {
            okv_counter_encode(sum, r->counter);
            r->value = r->counter;
            r->value_len = sizeof r->counter;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < m; i++)
        if (rows[i].key)
            rows[kept++] = rows[i];
    qsort(rows, kept, sizeof *rows, row_cmp);
    /* A normal result object: a ScanResponse packed and read back. */
    Orderkv__V1__KeyValue *kv = calloc(kept ? kept : 1, sizeof *kv);
    Orderkv__V1__KeyValue **kp = calloc(kept ? kept : 1, sizeof *kp);
    uint8_t *buf = NULL;
    if (rc == OKV_OK && kv && kp) {
        Orderkv__V1__ScanResponse sr = ORDERKV__V1__SCAN_RESPONSE__INIT;
        for (size_t i = 0; i < kept; i++) {
            orderkv__v1__key_value__init(&kv[i]);
            kv[i].key.data = (uint8_t *)rows[i].key;
            kv[i].key.len = rows[i].key_len;
            kv[i].value.data = (uint8_t *)rows[i].value;
            kv[i].value.len = rows[i].value_len;
            kv[i].version = rows[i].version;
            kp[i] = &kv[i];
        }
        sr.n_items = kept;
        sr.items = kp;
        size_t tl;
        const void *tok = okv_scan_result_resume(res, &tl);
        sr.resume_token.data = (uint8_t *)tok;
        sr.resume_token.len = tok ? tl : 0;
        size_t len = orderkv__v1__scan_response__get_packed_size(&sr);
        buf = malloc(len ? len : 1);
        ProtobufCMessage *copy = NULL;
        if (buf) {
            orderkv__v1__scan_response__pack(&sr, buf);
            copy = &orderkv__v1__scan_response__unpack(NULL, len, buf)->base;
        }
        *out = copy ? client_scan_from(copy) : NULL;
        if (!*out) {
            if (copy)
                protobuf_c_message_free_unpacked(copy, NULL);
            rc = client_fail(t->c, OKV_ENOMEM, "out of memory");
        }
    } else if (rc == OKV_OK) {
        rc = client_fail(t->c, OKV_ENOMEM, "out of memory");
    }
    free(buf);
    free(kv);
    free(kp);
    free(rows);
    return rc;
}

int okv_tx_scan(okv_tx *t, const char *table, const okv_scan_opts *opts, okv_scan_result **out)
{
    if (!t || !out)
        return OKV_EINVAL;
    *out = NULL;
    okv_scan_opts o = OKV_SCAN_OPTS_INIT;
    if (opts)
        o = *opts;
    okv_scan_result *res = NULL;
    int rc = okv_scan(t->c, table, &o, &res);
    if (rc != OKV_OK)
        return rc;
    /* The table list first: page_bounds asks which partition a prefix
     * with a '/' names. */
    long nparts = client_route_partitions(t->c, table, o.timeout_ms);
    bounds b;
    if (nparts <= 0)
        rc = client_fail(t->c, OKV_EUNAVAILABLE, "okv_tx_scan: the partitions of table %s are "
                         "not known yet (the cluster's table list did not load); retry",
                         table);
    else
        rc = page_bounds(t, table, &o, res, &b);
    for (long p = 0; rc == OKV_OK && p < nparts; p++)
        if (b.partition < 0 || b.partition == p)
            rc = record(t, table, (uint32_t)p, &b, res);
    if (rc == OKV_OK)
        rc = merge_writes(t, table, &b, res, out);
    okv_scan_result_free(res);
    return rc;
}
