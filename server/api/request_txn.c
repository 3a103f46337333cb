#include "request_txn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keycodec.h"
#include "orderkv.pb-c.h"
#include "request.h"

/* The proto's kind and comparison numbers are txn.h's (proto/orderkv.proto
 * and txn.h say so); anything else is refused by txn_validate. */

static int resolve(const catalog *cat, const char *what, size_t idx, const char *table,
                   const ProtobufCBinaryData *key, txn_key *out, okv_error *err)
{
    size_t tlen = strlen(table);
    if (tlen == 0)
        return okv_error_set(err, OKV_EINVAL, "%s %zu: table name is empty", what, idx);
    if (tlen > OKV_MAX_TABLE_NAME_LEN)
        return okv_error_set(err, OKV_EINVAL, "%s %zu: table name is %zu bytes; the limit is %u",
                             what, idx, tlen, OKV_MAX_TABLE_NAME_LEN);
    const catalog_table *t = catalog_find(cat, table, tlen);
    if (!t) {
        char names[256];
        catalog_names(cat, names, sizeof names);
        return okv_error_set(err, OKV_ENOTFOUND, "%s %zu: unknown table '%s' (tables: %s)", what,
                             idx, table, names);
    }
    if (key->len == 0)
        return okv_error_set(err, OKV_EINVAL, "%s %zu: key is empty", what, idx);
    if (key->len > OKV_MAX_KEY_LEN)
        return okv_error_set(err, OKV_EINVAL, "%s %zu: key is %zu bytes; the limit is %u", what,
                             idx, key->len, OKV_MAX_KEY_LEN);
    out->table_id = t->id;
    out->partition = keycodec_partition_of(key->data, key->len, t->partitions);
    out->key = key->data;
    out->key_len = key->len;
    return OKV_OK;
}

/* A RANGE condition names its partition; either bound may be empty. */
static int resolve_range(const catalog *cat, size_t idx, const Orderkv__V1__TxnCondition *c,
                         txn_cond *d, okv_error *err)
{
    ProtobufCBinaryData probe = { 1, (uint8_t *)"r" };
    int rc = resolve(cat, "condition", idx, c->table, &probe, &d->k, err);
    if (rc)
        return rc;
    const catalog_table *t = catalog_find(cat, c->table, strlen(c->table));
    if (c->partition >= t->partitions)
        return okv_error_set(err, OKV_EINVAL, "condition %zu: table '%s' has %u partitions, "
                             "not partition %u", idx, c->table, t->partitions, c->partition);
    if (c->key.len > TXN_RANGE_BOUND_MAX || c->end.len > TXN_RANGE_BOUND_MAX)
        return okv_error_set(err, OKV_EINVAL, "condition %zu: a range bound is over the limit "
                             "of %u bytes", idx, TXN_RANGE_BOUND_MAX);
    if (c->count > INT64_MAX)
        return okv_error_set(err, OKV_EINVAL, "condition %zu: a range of %llu keys", idx,
                             (unsigned long long)c->count);
    d->kind = TXN_COND_RANGE;
    d->k.partition = c->partition;
    d->k.key = c->key.data;
    d->k.key_len = c->key.len;
    d->value = c->end.data;
    d->value_len = c->end.len;
    d->num = (int64_t)c->count;
    d->version = c->version;
    return OKV_OK;
}

/* A table name (field 2 of a TxnCondition or TxnWrite) with a NUL byte:
 * protobuf-c would hand over only the part before it, naming another
 * table. */
static int nul_in_table(void *ctx, uint32_t field, const uint8_t *data, size_t len)
{
    (void)ctx;
    return field == 2 && memchr(data, 0, len) != NULL;
}

static int item_has_nul_table(void *ctx, uint32_t field, const uint8_t *data, size_t len)
{
    (void)ctx;
    return (field == 1 || field == 2) && request_wire_each(data, len, nul_in_table, NULL) == 1;
}

static int decode(request_txn *r, const catalog *cat, const uint8_t *buf, size_t len,
                  okv_error *err)
{
    Orderkv__V1__TxnRequest *m = orderkv__v1__txn_request__unpack(NULL, len, buf);
    if (!m)
        return okv_error_set(err, OKV_EPROTO, "malformed TxnRequest (%zu bytes)", len);
    r->msg = m;
    if (request_wire_each(buf, len, item_has_nul_table, NULL) == 1)
        return okv_error_set(err, OKV_EINVAL, "a table name contains a NUL byte");
    if (m->n_writes == 0 && m->n_conditions == 0)
        return okv_error_set(err, OKV_EINVAL,
                             "a transaction needs at least one write or condition");
    if (m->n_writes > TXN_MAX_WRITES || m->n_conditions > TXN_MAX_CONDS)
        return okv_error_set(err, OKV_EINVAL,
                             "a transaction has %zu conditions and %zu writes; the limits are "
                             "%u and %u", m->n_conditions, m->n_writes, TXN_MAX_CONDS,
                             TXN_MAX_WRITES);
    if (m->watermark > m->request_id)
        return okv_error_set(err, OKV_EINVAL, "watermark %llu is above the request id %llu",
                             (unsigned long long)m->watermark,
                             (unsigned long long)m->request_id);
    if (m->watermark && !m->client_id)
        return okv_error_set(err, OKV_EINVAL, "a watermark needs a client_id");
    r->t.conds = calloc(m->n_conditions ? m->n_conditions : 1, sizeof *r->t.conds);
    r->t.writes = calloc(m->n_writes ? m->n_writes : 1, sizeof *r->t.writes);
    if (!r->t.conds || !r->t.writes)
        return okv_error_set(err, OKV_ENOMEM, "out of memory decoding a transaction");
    int rc;
    for (size_t i = 0; i < m->n_conditions; i++) {
        const Orderkv__V1__TxnCondition *c = m->conditions[i];
        txn_cond *d = &r->t.conds[i];
        if (c->kind == ORDERKV__V1__TXN_CONDITION__KIND__RANGE) {
            if ((rc = resolve_range(cat, i, c, d, err)))
                return rc;
            r->t.n_conds++;
            continue;
        }
        if ((rc = resolve(cat, "condition", i, c->table, &c->key, &d->k, err)))
            return rc;
        d->kind = (uint8_t)(c->kind > 255 ? 0 : c->kind);
        d->cmp = (uint8_t)(c->cmp > 255 ? 0 : c->cmp);
        d->version = c->version;
        d->num = c->num;
        d->value = c->value.data;
        d->value_len = c->value.len;
        r->t.n_conds++;
    }
    for (size_t i = 0; i < m->n_writes; i++) {
        const Orderkv__V1__TxnWrite *w = m->writes[i];
        txn_write *d = &r->t.writes[i];
        if ((rc = resolve(cat, "write", i, w->table, &w->key, &d->k, err)))
            return rc;
        d->kind = (uint8_t)(w->kind > 255 ? 0 : w->kind);
        d->has_floor = w->has_floor ? 1 : 0;
        d->value = w->value.data;
        d->value_len = w->value.len;
        d->delta = w->delta;
        d->floor = w->floor;
        r->t.n_writes++;
    }
    if ((rc = txn_validate(&r->t, err)))
        return rc;
    /* One partition: that of the first write (the coordinator's, once
     * two-phase commit exists), or of the first condition of a check. */
    const txn_key *first = r->t.n_writes ? &r->t.writes[0].k : &r->t.conds[0].k;
    r->table_id = first->table_id;
    r->partition = first->partition;
    for (size_t i = 0; i < r->t.n_conds + r->t.n_writes; i++) {
        const txn_key *k = i < r->t.n_conds ? &r->t.conds[i].k : &r->t.writes[i - r->t.n_conds].k;
        if (k->table_id != r->table_id || k->partition != r->partition)
            r->multi = 1;
    }
    r->client_id = m->client_id;
    r->request_id = m->request_id;
    if (r->multi) {
        /* Two-phase commit (tpc.h) splits it by partition; no command here. */
        if (txn_encoded_size(&r->t) > COMMAND_TXN_MAX)
            return okv_error_set(err, OKV_EINVAL, "the transaction is %zu bytes encoded; the "
                                 "limit is %u", txn_encoded_size(&r->t), COMMAND_TXN_MAX);
        return OKV_OK;
    }
    r->enc_len = txn_encoded_size(&r->t);
    if (r->enc_len > COMMAND_TXN_MAX)
        return okv_error_set(err, OKV_EINVAL, "the transaction is %zu bytes encoded; the limit "
                             "is %u", r->enc_len, COMMAND_TXN_MAX);
    r->enc = malloc(r->enc_len);
    if (!r->enc)
        return okv_error_set(err, OKV_ENOMEM, "out of memory encoding a transaction");
    txn_encode(&r->t, r->enc);
    command *c = &r->cmd;
    c->op = CMD_TXN;
    c->table_id = r->table_id;
    c->partition = r->partition;
    c->client_id = m->client_id;
    c->request_id = m->request_id;
    c->watermark = m->watermark;
    c->value = r->enc;
    c->value_len = r->enc_len;
    return OKV_OK;
}

int request_txn_decode(request_txn *out, const catalog *cat, const uint8_t *buf, size_t len,
                       okv_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = decode(out, cat, buf, len, err);
    if (rc)
        request_txn_release(out);
    return rc;
}

void request_txn_release(request_txn *r)
{
    txn_clear(&r->t);
    if (r->msg)
        protobuf_c_message_free_unpacked(r->msg, NULL);
    free(r->enc);
    memset(r, 0, sizeof *r);
}
