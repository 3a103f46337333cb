/*
 * client_txn.c — one-shot transactions: a builder of conditions + writes,
 * committed as one KV.Txn call on the asynchronous core (routed to the
 * partition of the first write, resent with the same request id).
 */
#include <stdlib.h>
#include <string.h>

#include "client_result.h"
#include "orderkv.pb-c.h"

typedef struct txn_item {
    int is_write;
    int kind;              /* the proto's TxnCondition.Kind / TxnWrite.Kind */
    int cmp;
    char *table;
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
    uint64_t version;
    int64_t num;           /* a condition's number, a write's delta */
    int has_floor;
    int64_t floor;
    long partition;        /* RANGE: the partition named; -1: the key's */
    uint8_t *end;          /* RANGE: the end of [key, end) */
    size_t end_len;
} txn_item;

struct okv_txn_req {
    txn_item *items;
    size_t n, cap;
    size_t n_conds, n_writes;
};

int okv_txn_req_new(okv_txn_req **out)
{
    if (!out)
        return OKV_EINVAL;
    *out = calloc(1, sizeof **out);
    return *out ? OKV_OK : OKV_ENOMEM;
}

void okv_txn_req_free(okv_txn_req *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->items[i].table);
        free(t->items[i].key);
        free(t->items[i].value);
        free(t->items[i].end);
    }
    free(t->items);
    free(t);
}

static txn_item *add(okv_txn_req *t, int is_write, const char *table, const void *key,
                     size_t key_len, const void *value, size_t value_len, int *rc)
{
    *rc = OKV_EINVAL;
    if (!t || !table || !table[0] || strlen(table) > OKV_MAX_TABLE_NAME_LEN || !key ||
        key_len == 0 || key_len > OKV_MAX_KEY_LEN || value_len > OKV_MAX_VALUE_LEN ||
        (value_len && !value) ||
        (is_write ? t->n_writes : t->n_conds) >= OKV_TXN_MAX_ITEMS)
        return NULL;
    *rc = OKV_ENOMEM;
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        txn_item *ni = realloc(t->items, ncap * sizeof *ni);
        if (!ni)
            return NULL;
        t->items = ni;
        t->cap = ncap;
    }
    txn_item *it = &t->items[t->n];
    memset(it, 0, sizeof *it);
    it->partition = -1;
    it->table = strdup(table);
    it->key = malloc(key_len);
    it->value = malloc(value_len ? value_len : 1);
    if (!it->table || !it->key || !it->value) {
        free(it->table);
        free(it->key);
        free(it->value);
        return NULL;
    }
    memcpy(it->key, key, key_len);
    it->key_len = key_len;
    if (value_len)
        memcpy(it->value, value, value_len);
    it->value_len = value_len;
    it->is_write = is_write;
    t->n++;
    if (is_write)
        t->n_writes++;
    else
        t->n_conds++;
    *rc = OKV_OK;
    return it;
}

static int cond(okv_txn_req *t, const char *table, const void *key, size_t key_len, int kind,
                const void *value, size_t value_len, uint64_t version, int cmp, int64_t num)
{
    int rc;
    txn_item *it = add(t, 0, table, key, key_len, value, value_len, &rc);
    if (it) {
        it->kind = kind;
        it->version = version;
        it->cmp = cmp;
        it->num = num;
    }
    return rc;
}

int okv_txn_req_exists(okv_txn_req *t, const char *table, const void *key, size_t key_len)
{
    return cond(t, table, key, key_len, ORDERKV__V1__TXN_CONDITION__KIND__EXISTS, NULL, 0, 0, 0,
                0);
}

int okv_txn_req_absent(okv_txn_req *t, const char *table, const void *key, size_t key_len)
{
    return cond(t, table, key, key_len, ORDERKV__V1__TXN_CONDITION__KIND__ABSENT, NULL, 0, 0, 0,
                0);
}

int okv_txn_req_version_is(okv_txn_req *t, const char *table, const void *key, size_t key_len,
                           uint64_t version)
{
    if (version == 0)   /* no write has version 0: that is okv_txn_req_absent */
        return OKV_EINVAL;
    return cond(t, table, key, key_len, ORDERKV__V1__TXN_CONDITION__KIND__VERSION_EQUALS, NULL, 0,
                version, 0, 0);
}

int okv_txn_req_value_is(okv_txn_req *t, const char *table, const void *key, size_t key_len,
                         const void *value, size_t value_len)
{
    return cond(t, table, key, key_len, ORDERKV__V1__TXN_CONDITION__KIND__VALUE_EQUALS, value,
                value_len, 0, 0, 0);
}

int okv_txn_req_compare(okv_txn_req *t, const char *table, const void *key, size_t key_len,
                        okv_cmp cmp, int64_t num)
{
    if (cmp < OKV_LT || cmp > OKV_GT)
        return OKV_EINVAL;
    return cond(t, table, key, key_len, ORDERKV__V1__TXN_CONDITION__KIND__INT_COMPARE, NULL, 0, 0,
                (int)cmp, num);
}

static int write(okv_txn_req *t, const char *table, const void *key, size_t key_len, int kind,
                 const void *value, size_t value_len, int64_t delta, int has_floor,
                 int64_t floor)
{
    int rc;
    txn_item *it = add(t, 1, table, key, key_len, value, value_len, &rc);
    if (it) {
        it->kind = kind;
        it->num = delta;
        it->has_floor = has_floor;
        it->floor = floor;
    }
    return rc;
}

int okv_txn_req_put(okv_txn_req *t, const char *table, const void *key, size_t key_len,
                    const void *value, size_t value_len)
{
    return write(t, table, key, key_len, ORDERKV__V1__TXN_WRITE__KIND__PUT, value, value_len, 0,
                 0, 0);
}

int okv_txn_req_delete(okv_txn_req *t, const char *table, const void *key, size_t key_len)
{
    return write(t, table, key, key_len, ORDERKV__V1__TXN_WRITE__KIND__DELETE, NULL, 0, 0, 0, 0);
}

int okv_txn_req_add(okv_txn_req *t, const char *table, const void *key, size_t key_len,
                    int64_t delta)
{
    return write(t, table, key, key_len, ORDERKV__V1__TXN_WRITE__KIND__ADD, NULL, 0, delta, 0, 0);
}

int okv_txn_req_add_floor(okv_txn_req *t, const char *table, const void *key, size_t key_len,
                          int64_t delta, int64_t floor)
{
    return write(t, table, key, key_len, ORDERKV__V1__TXN_WRITE__KIND__ADD, NULL, 0, delta, 1,
                 floor);
}

int client_txn_req_range(okv_txn_req *t, const char *table, uint32_t partition, const void *lo,
                         size_t lo_len, const void *hi, size_t hi_len, uint64_t count,
                         uint64_t digest)
{
    /* add() wants a key: give it the end's room and put the bounds after. */
    if (lo_len > OKV_MAX_KEY_LEN + 1 || hi_len > OKV_MAX_KEY_LEN + 1 || (lo_len && !lo) ||
        (hi_len && !hi) || count > INT64_MAX)
        return OKV_EINVAL;
    int rc;
    txn_item *it = add(t, 0, table, "r", 1, NULL, 0, &rc);
    if (!it)
        return rc;
    uint8_t *k = malloc(lo_len ? lo_len : 1), *e = malloc(hi_len ? hi_len : 1);
    if (!k || !e) {
        free(k);
        free(e);
        t->n--;
        t->n_conds--;
        free(it->table);
        free(it->key);
        free(it->value);
        return OKV_ENOMEM;
    }
    if (lo_len)
        memcpy(k, lo, lo_len);
    if (hi_len)
        memcpy(e, hi, hi_len);
    free(it->key);
    it->key = k;
    it->key_len = lo_len;
    it->end = e;
    it->end_len = hi_len;
    it->kind = ORDERKV__V1__TXN_CONDITION__KIND__RANGE;
    it->partition = (long)partition;
    it->num = (int64_t)count;
    it->version = digest;
    return OKV_OK;
}

int client_txn_req_has_range(const okv_txn_req *t)
{
    for (size_t i = 0; t && i < t->n; i++)
        if (t->items[i].partition >= 0)
            return 1;
    return 0;
}

/* The op for t: packed TxnRequest, routed by its first write's key. */
/* The first write's item (or the first condition's): the partition that
 * decides the transaction, where the client routes it. */
static const txn_item *first_item(const okv_txn_req *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->items[i].is_write)
            return &t->items[i];
    return &t->items[0];
}

static client_op *txn_op(okv_client *c, const okv_txn_req *t, int timeout_ms, int *rc)
{
    if (!t || t->n == 0) {
        *rc = client_fail(c, OKV_EINVAL, "a transaction needs at least one write or condition");
        return NULL;
    }
    /* Routed like the server picks the partition: the first write, or the
     * first condition of a check. */
    const txn_item *first = first_item(t);
    Orderkv__V1__TxnCondition *cs = calloc(t->n_conds ? t->n_conds : 1, sizeof *cs);
    Orderkv__V1__TxnCondition **cp = calloc(t->n_conds ? t->n_conds : 1, sizeof *cp);
    Orderkv__V1__TxnWrite *ws = calloc(t->n_writes ? t->n_writes : 1, sizeof *ws);
    Orderkv__V1__TxnWrite **wp = calloc(t->n_writes ? t->n_writes : 1, sizeof *wp);
    client_route_key rk = { first->table, first->key, first->key_len, first->partition };
    client_op *op = cs && cp && ws && wp
                        ? client_op_new(c, M_TXN, &orderkv__v1__txn_response__descriptor, 1,
                                        timeout_ms, &rk)
                        : NULL;
    if (op) {
        Orderkv__V1__TxnRequest req = ORDERKV__V1__TXN_REQUEST__INIT;
        size_t nc = 0, nw = 0;
        for (size_t i = 0; i < t->n; i++) {
            const txn_item *it = &t->items[i];
            if (it->is_write) {
                Orderkv__V1__TxnWrite *w = &ws[nw];
                orderkv__v1__txn_write__init(w);
                w->kind = it->kind;
                w->table = it->table;
                w->key.data = it->key;
                w->key.len = it->key_len;
                w->value.data = it->value;
                w->value.len = it->value_len;
                w->delta = it->num;
                w->has_floor = it->has_floor;
                w->floor = it->floor;
                wp[nw++] = w;
            } else {
                Orderkv__V1__TxnCondition *d = &cs[nc];
                orderkv__v1__txn_condition__init(d);
                d->kind = it->kind;
                d->table = it->table;
                d->key.data = it->key;
                d->key.len = it->key_len;
                d->value.data = it->value;
                d->value.len = it->value_len;
                d->version = it->version;
                d->cmp = it->cmp;
                d->num = it->num;
                if (it->partition >= 0) {
                    d->num = 0;
                    d->partition = (uint32_t)it->partition;
                    d->end.data = it->end;
                    d->end.len = it->end_len;
                    d->count = (uint64_t)it->num;
                }
                cp[nc++] = d;
            }
        }
        req.n_conditions = nc;
        req.conditions = cp;
        req.n_writes = nw;
        req.writes = wp;
        req.client_id = c->opts.client_id;
        req.request_id = op->w.id;
        req.watermark = op->watermark;
        if (client_op_pack(op, &req.base)) {
            client_op_free(op);
            op = NULL;
        }
    }
    free(cs);
    free(cp);
    free(ws);
    free(wp);
    if (!op)
        *rc = client_fail(c, OKV_ENOMEM, "out of memory");
    return op;
}

static void outcome_of(const client_op *op, okv_txn_outcome *out)
{
    memset(out, 0, sizeof *out);
    const Orderkv__V1__TxnResponse *r = (const Orderkv__V1__TxnResponse *)op->resp;
    if (!r || op->m != M_TXN)
        return;
    out->version = r->committed ? r->version : 0;
    out->failed = r->failed;
    out->reason = (int)r->reason;
}


int okv_txn_commit(okv_client *c, const okv_txn_req *t, okv_txn_outcome *out, int timeout_ms)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!c)
        return OKV_EINVAL;
    int rc;
    client_op *op = txn_op(c, t, timeout_ms, &rc);
    if (!op)
        return rc;
    rc = client_op_wait(c, op);
    if (out) {
        outcome_of(op, out);
        out->txn_id = op->w.id;
    }
    client_op_free(op);
    return rc;
}

int okv_txn_status(okv_client *c, const okv_txn_req *t, uint64_t txn_id, okv_txn_outcome *out,
                   int timeout_ms)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!c)
        return OKV_EINVAL;
    if (!t || t->n == 0 || !txn_id)
        return client_fail(c, OKV_EINVAL, "okv_txn_status needs the transaction and its id");
    const txn_item *first = first_item(t);
    Orderkv__V1__TxnStatusRequest req = ORDERKV__V1__TXN_STATUS_REQUEST__INIT;
    req.table = first->table;
    req.key.data = first->key;
    req.key.len = first->key_len;
    req.client_id = c->opts.client_id;
    req.request_id = txn_id;
    client_route_key rk = { first->table, first->key, first->key_len, -1 };
    /* Across partitions the coordinator can make the answer final. (One
     * partition: the exactly-once record answers; nothing to settle.) */
    (void)client_route_pick(c, &rk, timeout_ms > 0 ? timeout_ms : c->opts.default_timeout_ms);
    long p0 = client_route_partition(c, first->table, first->key, first->key_len);
    for (size_t i = 0; i < t->n && !req.settle; i++) {
        const txn_item *it = &t->items[i];
        long p = it->partition >= 0
                     ? it->partition
                     : client_route_partition(c, it->table, it->key, it->key_len);
        req.settle = p0 < 0 || strcmp(it->table, first->table) != 0 || p != p0;
    }
    client_op *op = client_op_new(c, M_TXN_STATUS, &orderkv__v1__txn_status_response__descriptor,
                                  0, timeout_ms, &rk);
    if (!op || client_op_pack(op, &req.base)) {
        client_op_free(op);
        return client_fail(c, OKV_ENOMEM, "out of memory");
    }
    int rc = client_op_wait(c, op);
    const Orderkv__V1__TxnStatusResponse *r = (const Orderkv__V1__TxnStatusResponse *)op->resp;
    if (rc == OKV_OK && r) {
        if (out) {
            out->failed = r->failed;
            out->reason = (int)r->reason;
            out->txn_id = txn_id;
        }
        switch (r->state) {
        case ORDERKV__V1__TXN_PART_RESPONSE__STATE__COMMITTED:
            rc = OKV_OK;
            break;
        case ORDERKV__V1__TXN_PART_RESPONSE__STATE__ABORTED:
            rc = r->refusal == ORDERKV__V1__ERROR_CODE__CONDITION_FAILED
                     ? client_fail(c, OKV_ECONDITION, "the transaction did not apply: item %u "
                                   "failed", (unsigned)r->failed)
                     : client_fail(c, OKV_ECONFLICT, "the transaction was aborted (a lock or "
                                   "its deadline); nothing applied");
            break;
        case ORDERKV__V1__TXN_PART_RESPONSE__STATE__NONE:
            rc = client_fail(c, OKV_ENOTFOUND, "the cluster knows nothing of transaction "
                             "%llu: it settled long ago and was forgotten (or, in one "
                             "partition, never arrived)", (unsigned long long)txn_id);
            break;
        default:
            rc = client_fail(c, OKV_EUNKNOWN, "transaction %llu is not decided yet; ask again",
                             (unsigned long long)txn_id);
        }
    }
    client_op_free(op);
    return rc;
}

int okv_txn_commit_async(okv_client *c, const okv_txn_req *t, int timeout_ms, okv_callback cb,
                         void *arg)
{
    if (!c)
        return OKV_EINVAL;
    int rc;
    client_op *op = txn_op(c, t, timeout_ms, &rc);
    return op ? client_op_submit_async(c, op, cb, arg) : rc;
}

void okv_result_txn_outcome(const okv_result *r, okv_txn_outcome *out)
{
    if (!out)
        return;
    const client_op *op = client_result_op(r);
    if (op) {
        outcome_of(op, out);
        out->txn_id = op->w.id;
    } else {
        memset(out, 0, sizeof *out);
    }
}

void okv_counter_encode(int64_t v, uint8_t out[8])
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)u;
        u >>= 8;
    }
}

int okv_counter_decode(const void *val, size_t len, int64_t *out)
{
    if (!val || len != 8 || !out)
        return OKV_EINVAL;
    const uint8_t *p = val;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    *out = (int64_t)u;
    return OKV_OK;
}
