/*
 * fuzz_request.c — libFuzzer target for request decoding and validation
 * (server/api/request.c: request_decode / request_release).
 *
 * Input: byte 0 picks the request kind (byte % (REQ_KIND_COUNT + 1); the
 * extra value is an unknown kind, which must fail with OKV_EUNIMPLEMENTED;
 * 0xff picks a TxnRequest, server/api/request_txn.c, checked by fuzz_txn;
 * 0xfe a two-phase commit step, server/txn/tpc.c, checked by fuzz_tpc);
 * the rest is the protobuf body a client would send. The catalog is the
 * default one (orders, payments, accounts, stock; CATALOG_DEFAULT_PARTITIONS each).
 *
 * Beyond "no crash, no leak, no UB", every outcome is checked against the
 * contract in request.h and the limits in proto/orderkv.proto:
 *   I1  rc is OK or one of EINVAL / ENOTFOUND / EPROTO (EUNIMPLEMENTED for
 *       the unknown kind); err.code == rc; a failure has a message and leaves
 *       *out zeroed (nothing to release).
 *   I2  success: msg set; keyed kinds: table is a catalog entry and is exactly
 *       the table named on the wire (the last field 1, as protobuf reads it);
 *       key_len in 1..OKV_MAX_KEY_LEN; partition < partitions and equals
 *       keycodec_partition_of(key).
 *   I3  put: value_len <= OKV_MAX_VALUE_LEN; check_version is 0 or 1.
 *   I4  scan: limit in 1..OKV_SCAN_MAX_LIMIT; has_upper iff upper_len > 0;
 *       lower <= upper (strictly without a resume token); a prefix scan's
 *       lower starts with the prefix and its upper is the prefix successor;
 *       single_partition only for a prefix with '/', with the prefix's
 *       partition; otherwise partition 0.
 *   I5  scan: a resume token built (request_resume_token) from a key in the
 *       scan's range is accepted, and moves lower to just past that key.
 *   I6  status: no table.
 * Every byte the request points at is read, so ASan catches a pointer that
 * outlives or overruns its buffer. A failed invariant calls abort(), which
 * libFuzzer reports as a crash with the input saved.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "command.h"
#include "range_digest.h"
#include "request_txn.h"
#include "tpc.h"
#include "txn.h"
#include "errors.h"
#include "hash.h"
#include "keycodec.h"
#include "orderkv.pb-c.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static catalog cat;
static volatile uint64_t sink;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "fuzz_request: invariant failed at %s:%d: %s\n", __FILE__,       \
                    __LINE__, #cond);                                                        \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (alen > blen) - (alen < blen);
}

/* Reads every byte, so ASan checks the whole [p, p + len). */
static void touch(const uint8_t *p, size_t len)
{
    if (len) {
        CHECK(p != NULL);
        sink ^= okv_hash64(p, len);
    }
}

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* An independent reading of the wire: the payload of the last top-level
 * field 1 with wire type 2 (the table name in Get/Put/Delete/Scan). Returns
 * 0 and sets *out and *out_len, 1 if absent, -1 if the walk failed (the caller
 * then checks nothing: protobuf-c accepted it, so that would itself be odd,
 * but this walker is deliberately simple). */
static int wire_table(const uint8_t *buf, size_t len, const uint8_t **out, size_t *out_len)
{
    const uint8_t *p = buf, *end = buf + len;
    int found = 1;
    while (p < end) {
        uint64_t tag, v;
        if (read_varint(&p, end, &tag))
            return -1;
        switch (tag & 7) {
        case 0:
            if (read_varint(&p, end, &v))
                return -1;
            break;
        case 1:
            if ((size_t)(end - p) < 8)
                return -1;
            p += 8;
            break;
        case 5:
            if ((size_t)(end - p) < 4)
                return -1;
            p += 4;
            break;
        case 2:
            if (read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return -1;
            if ((tag >> 3) == 1) {
                *out = p;
                *out_len = (size_t)v;
                found = 0;
            }
            p += v;
            break;
        default:
            return -1;
        }
    }
    return found;
}

static void check_failure(int rc, const request *r, const okv_error *err, enum request_kind kind)
{
    if (kind >= REQ_KIND_COUNT)
        CHECK(rc == OKV_EUNIMPLEMENTED);
    else
        CHECK(rc == OKV_EINVAL || rc == OKV_ENOTFOUND || rc == OKV_EPROTO);
    CHECK(err->code == rc);
    CHECK(memchr(err->msg, '\0', sizeof err->msg) != NULL);
    CHECK(err->msg[0] != '\0');
    /* "On failure *out holds nothing to release." */
    CHECK(r->msg == NULL && r->scan_buf == NULL && r->table == NULL);
}

static void check_table(const request *r, const uint8_t *body, size_t len)
{
    CHECK(r->table != NULL);
    CHECK(r->table >= cat.tables && r->table < cat.tables + cat.count);
    CHECK(r->table->partitions > 0);
    const uint8_t *name;
    size_t name_len;
    int w = wire_table(body, len, &name, &name_len);
    if (w == 0) {
        /* The table resolved must be exactly the name on the wire: a name with
         * a NUL inside ("orders\0x") is not "orders". */
        CHECK(name_len == strlen(r->table->name));
        CHECK(memcmp(name, r->table->name, name_len) == 0);
    }
    CHECK(w != 1); /* no table field: the empty name must have been rejected */
}

static void check_key(const request *r)
{
    CHECK(r->key_len >= 1 && r->key_len <= OKV_MAX_KEY_LEN);
    touch(r->key, r->key_len);
    CHECK(r->partition < r->table->partitions);
    CHECK(r->partition == keycodec_partition_of(r->key, r->key_len, r->table->partitions));
}

/* I5: a token for the smallest key of the range must be accepted. */
static void check_resume(const request *r, const Orderkv__V1__ScanRequest *m)
{
    if (r->lower_len == 0 || r->lower_len > OKV_MAX_KEY_LEN)
        return;
    if (r->has_upper && bytes_cmp(r->lower, r->lower_len, r->upper, r->upper_len) >= 0)
        return;
    uint8_t token[OKV_MAX_KEY_LEN + 1];
    size_t tlen = request_resume_token(token, r->lower, r->lower_len);
    CHECK(tlen == r->lower_len + 1 && token[0] == REQUEST_RESUME_TOKEN_V1);

    /* Unknown fields are dropped: protobuf-c 1.4.1 accepts a field number 0
     * written as a two-byte tag (80 00) but re-packs it as 00, which its own
     * parser rejects, so a round trip with them is not the property here. */
    Orderkv__V1__ScanRequest m2 = *m;
    m2.base.n_unknown_fields = 0;
    m2.base.unknown_fields = NULL;
    m2.resume_token.data = token;
    m2.resume_token.len = tlen;
    size_t plen = orderkv__v1__scan_request__get_packed_size(&m2);
    uint8_t *buf = malloc(plen ? plen : 1);
    CHECK(buf != NULL);
    CHECK(orderkv__v1__scan_request__pack(&m2, buf) == plen);

    request r2;
    okv_error err;
    okv_error_clear(&err);
    int rc = request_decode(&r2, REQ_SCAN, &cat, buf, plen, &err);
    if (rc != OKV_OK)
        fprintf(stderr, "fuzz_request: resume token rejected: %s\n", err.msg);
    CHECK(rc == OKV_OK);
    CHECK(r2.lower_len == r->lower_len + 1);
    CHECK(memcmp(r2.lower, r->lower, r->lower_len) == 0 && r2.lower[r->lower_len] == 0);
    CHECK(r2.has_upper == r->has_upper && r2.upper_len == r->upper_len);
    touch(r2.lower, r2.lower_len);
    touch(r2.upper, r2.upper_len);
    request_release(&r2);
    free(buf);
}

static void check_scan(const request *r)
{
    const Orderkv__V1__ScanRequest *m = r->msg;
    CHECK(r->limit >= 1 && r->limit <= OKV_SCAN_MAX_LIMIT);
    CHECK(m->limit == 0 ? r->limit == OKV_SCAN_DEFAULT_LIMIT : r->limit == m->limit);
    touch(r->lower, r->lower_len);
    touch(r->upper, r->upper_len);
    CHECK(r->has_upper == (r->upper_len > 0));
    CHECK(r->lower_len <= OKV_MAX_KEY_LEN + 1 && r->upper_len <= OKV_MAX_KEY_LEN);
    CHECK(!(m->prefix.len && (m->start.len || m->end.len)));
    if (r->has_upper) {
        int c = bytes_cmp(r->lower, r->lower_len, r->upper, r->upper_len);
        CHECK(m->resume_token.len ? c <= 0 : c < 0);
    }
    if (m->prefix.len) {
        const uint8_t *pre = m->prefix.data;
        size_t plen = m->prefix.len;
        CHECK(r->lower_len >= plen && memcmp(r->lower, pre, plen) == 0);
        uint8_t succ[OKV_MAX_KEY_LEN];
        size_t slen = keycodec_prefix_successor(pre, plen, succ);
        CHECK(slen == r->upper_len && (slen == 0 || memcmp(succ, r->upper, slen) == 0));
        int has_slash = memchr(pre, '/', plen) != NULL;
        CHECK(r->single_partition == has_slash);
        if (has_slash)
            CHECK(r->partition == keycodec_partition_of(pre, plen, r->table->partitions));
    } else {
        CHECK(!r->single_partition);
        CHECK(bytes_cmp(r->lower, r->lower_len, m->start.data, m->start.len) >= 0);
        CHECK(r->upper_len == m->end.len);
    }
    if (!r->single_partition)
        CHECK(r->partition == 0);
    CHECK(r->partition < r->table->partitions);
    if (m->resume_token.len == 0)
        check_resume(r, m);
}

/* ---- transactions ---------------------------------------------------------
 *   T1  rc is OK or EINVAL / ENOTFOUND / EPROTO / EUNIMPLEMENTED, with a
 *       message; a failure leaves nothing to release.
 *   T2  success: txn_validate holds; every key is in the one partition the
 *       command names, and that partition is keycodec_partition_of(key);
 *   T3  the command decodes back to the same bytes, and the transaction's
 *       encoding decodes and re-encodes to itself;
 *   T4  evaluated against an empty store it succeeds or fails cleanly, and
 *       stages writes only when it committed. */
static int empty_read(void *ctx, const txn_key *k, uint8_t **val, size_t *val_len,
                      uint64_t *version, okv_error *err)
{
    (void)ctx;
    touch(k->key, k->key_len);
    *val = NULL;
    *val_len = 0;
    *version = 0;
    okv_error_clear(err);
    return OKV_ENOTFOUND;
}

/* A range condition's range in the empty store: no keys, none locked. */
static int empty_range(void *ctx, const txn_cond *c, uint64_t *count, uint64_t *digest,
                       int *locked, okv_error *err)
{
    (void)ctx;
    (void)err;
    touch(c->k.key, c->k.key_len);
    touch(c->value, c->value_len);
    *count = 0;
    *digest = OKV_RANGE_DIGEST_INIT;
    *locked = 0;
    return OKV_OK;
}

static int count_write(void *ctx, const txn_key *k, const uint8_t *val, size_t val_len,
                       uint64_t version, okv_error *err)
{
    (void)err;
    touch(k->key, k->key_len);
    if (val)
        touch(val, val_len);
    CHECK(version == 7);
    (*(size_t *)ctx)++;
    return OKV_OK;
}

static int fuzz_txn(const uint8_t *body, size_t len)
{
    request_txn r;
    okv_error err;
    okv_error_clear(&err);
    int rc = request_txn_decode(&r, &cat, body, len, &err);
    if (rc != OKV_OK) {
        CHECK(rc == OKV_EINVAL || rc == OKV_ENOTFOUND || rc == OKV_EPROTO ||
              rc == OKV_EUNIMPLEMENTED);
        CHECK(err.code == rc && err.msg[0] != '\0');
        CHECK(r.msg == NULL && r.enc == NULL && r.t.conds == NULL);
        return 0;
    }
    CHECK(txn_validate(&r.t, &err) == OKV_OK);
    int spans = 0;
    for (size_t i = 0; i < r.t.n_conds + r.t.n_writes; i++) {
        const txn_key *k = i < r.t.n_conds ? &r.t.conds[i].k : &r.t.writes[i - r.t.n_conds].k;
        spans |= k->table_id != r.table_id || k->partition != r.partition;
        const catalog_table *t = NULL;
        for (size_t j = 0; j < cat.count; j++)
            if (cat.tables[j].id == k->table_id)
                t = &cat.tables[j];
        /* A range condition names its partition; every other item is in
         * its key's. */
        int range = i < r.t.n_conds && r.t.conds[i].kind == TXN_COND_RANGE;
        CHECK(t && (range ? k->partition < t->partitions
                          : k->partition == keycodec_partition_of(k->key, k->key_len,
                                                                  t->partitions)));
    }
    /* Across partitions: left for two-phase commit, no command. */
    CHECK(spans == r.multi);
    if (r.multi) {
        CHECK(r.enc == NULL);
        request_txn_release(&r);
        return 0;
    }
    size_t clen = command_encoded_size(&r.cmd);
    uint8_t *cbuf = malloc(clen);
    CHECK(cbuf);
    command_encode(&r.cmd, cbuf);
    command back;
    CHECK(command_decode(cbuf, clen, &back, &err) == OKV_OK);
    CHECK(back.op == CMD_TXN && back.value_len == r.enc_len &&
          memcmp(back.value, r.enc, r.enc_len) == 0);
    txn again;
    CHECK(txn_decode(r.enc, r.enc_len, &again, &err) == OKV_OK);
    CHECK(txn_encoded_size(&again) == r.enc_len);
    uint8_t *re = malloc(r.enc_len);
    CHECK(re);
    txn_encode(&again, re);
    CHECK(memcmp(re, r.enc, r.enc_len) == 0);
    size_t staged = 0;
    txn_store store = { &staged, empty_read, NULL, count_write, empty_range };
    txn_outcome o;
    CHECK(txn_eval(&again, 7, &store, &o, &err) == OKV_OK);
    CHECK(o.code == OKV_OK || o.code == OKV_ECONDITION || o.code == OKV_EINVAL);
    CHECK(o.code == OKV_OK ? staged == again.n_writes : staged == 0);
    txn_clear(&again);
    free(re);
    free(cbuf);
    request_txn_release(&r);
    return 0;
}

/* A 2PC step as it arrives in KV.TxnPart (or from the log): decoding never
 * reads past the input, and what decodes re-encodes to the same bytes. */
static int fuzz_tpc(const uint8_t *body, size_t len)
{
    tpc_msg m;
    okv_error err;
    okv_error_clear(&err);
    if (tpc_msg_decode(body, len, &m, &err) != OKV_OK) {
        CHECK(err.code == OKV_ECORRUPT && err.msg[0] != '\0');
        return 0;
    }
    CHECK(m.nparts <= TPC_MAX_PARTS && m.kind >= TPC_PREPARE && m.kind <= TPC_FENCE);
    size_t n = tpc_msg_encoded_size(&m);
    CHECK(n == len);
    uint8_t *re = malloc(n);
    CHECK(re);
    tpc_msg_encode(&m, re);
    CHECK(memcmp(re, body, n) == 0);
    free(re);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (cat.count == 0) {
        catalog_init_default(&cat, CATALOG_DEFAULT_PARTITIONS);
    }
    if (data[0] == 0xff)
        return fuzz_txn(data + 1, size - 1);
    if (data[0] == 0xfe)
        return fuzz_tpc(data + 1, size - 1);
    enum request_kind kind = (enum request_kind)(data[0] % (REQ_KIND_COUNT + 1));
    const uint8_t *body = data + 1;
    size_t len = size - 1;

    request r;
    okv_error err;
    okv_error_clear(&err);
    int rc = request_decode(&r, kind, &cat, body, len, &err);
    if (rc != OKV_OK) {
        check_failure(rc, &r, &err, kind);
        request_release(&r); /* accepts a zeroed request */
        return 0;
    }
    CHECK(kind < REQ_KIND_COUNT);
    CHECK(r.kind == kind && r.msg != NULL);
    switch (kind) {
    case REQ_GET:
    case REQ_DELETE:
        check_table(&r, body, len);
        check_key(&r);
        CHECK(r.value == NULL && r.value_len == 0);
        break;
    case REQ_PUT:
        check_table(&r, body, len);
        check_key(&r);
        CHECK(r.value_len <= OKV_MAX_VALUE_LEN);
        touch(r.value, r.value_len);
        CHECK(r.check_version == 0 || r.check_version == 1);
        break;
    case REQ_SCAN:
        check_table(&r, body, len);
        check_scan(&r);
        break;
    case REQ_STATUS:
        CHECK(r.table == NULL);
        break;
    case REQ_TRANSFER:
        check_table(&r, body, len);
        CHECK(r.partition < r.table->partitions);
        CHECK(r.to_node != 0);
        break;
    default:
        CHECK(0);
    }
    if (kind == REQ_DELETE)
        CHECK(r.check_version == 0 || r.check_version == 1);
    request_release(&r);
    CHECK(r.msg == NULL && r.scan_buf == NULL);
    return 0;
}
