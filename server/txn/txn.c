/*
 * txn.c — the transaction codec, its validation, and the rules that apply
 * one (txn.h states them; this file follows them in the same order).
 *
 * Transaction, format 1. It lives in the raft log, so it is on-disk format:
 * all integers big-endian, i64 in two's complement.
 *   0   u8   format (TXN_FORMAT = 1)
 *   1   u16  n_conds   (0..TXN_MAX_CONDS)
 *   3   u16  n_writes  (0..TXN_MAX_WRITES; txn_validate wants a write or a
 *                       condition)
 *   5   n_conds conditions, then n_writes writes, then nothing.
 *
 * Condition:
 *   0   u8   kind (enum txn_cond_kind, 1..6)
 *   1   u8   cmp  (enum txn_cmp, 1..5) for TXN_COND_INT; 0 for every other kind
 *   2   u32  table id
 *   6   u32  partition
 *   10  u16  key length K (1..OKV_MAX_KEY_LEN; RANGE: 0..TXN_RANGE_BOUND_MAX), then K
 *            key bytes
 *   then, by kind:
 *         VERSION_EQ      u64 version
 *         VALUE_EQ        u32 value length V (0..OKV_MAX_VALUE_LEN), then V bytes
 *         INT             i64 number
 *         RANGE           u32 end length E (0..TXN_RANGE_BOUND_MAX), then E bytes (the
 *                         key is the start; an empty end: to the partition's last
 *                         key), u64 key count, u64 digest
 *         EXISTS, ABSENT  nothing
 *
 * Write:
 *   0   u8   kind (enum txn_write_kind, 1..3)
 *   1   u8   flags: bit 0 = has_floor (TXN_ADD only); every other bit 0
 *   2   u32  table id
 *   6   u32  partition
 *   10  u16  key length K (1..OKV_MAX_KEY_LEN), then K key bytes
 *   then, by kind:
 *         PUT     u32 value length V (0..OKV_MAX_VALUE_LEN), then V bytes
 *         DELETE  nothing
 *         ADD     i64 delta, then i64 floor if has_floor
 *
 * The encoding is canonical: the decoder accepts nothing the encoder would
 * not write (no unknown kind, comparison or flag bit, no trailing byte), so
 * a decoded transaction re-encodes to the same bytes.
 *
 * Evaluation (txn_eval), invariants:
 *  1. Nothing is staged until every condition holds and every write's new
 *     value is known, so a failed transaction writes nothing.
 *  2. Every read sees the state before the transaction: reads all happen
 *     before the first write is staged, and the store need not show staged
 *     writes to later reads.
 *  3. The outcome depends only on t, index and what the store answers, so
 *     replicas that apply the same entry to the same state agree.
 *  4. A stager error can come after some writes were staged; it is returned
 *     as an error, and the caller discards its whole batch (it must not
 *     commit a batch that a failed txn_eval touched).
 */
#include "txn.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "failpoint.h"
#include "keycodec.h"

#define HEADER_LEN 5u
#define ITEM_FIXED_LEN 12u       /* kind, cmp/flags, table, partition, key length */
#define WRITE_FLAG_FLOOR 0x01u

/* Keys and values in messages: at most this many bytes are shown, each as
 * at most 4 characters (\xNN), then "..." when cut. */
#define KEY_SHOW 64u
#define VALUE_SHOW 32u
#define QUOTED_CAP(show) ((show) * 4u + 4u)

/* ---- integers ---------------------------------------------------------- */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

/* Two's complement without the implementation-defined unsigned-to-signed
 * conversion. */
static int64_t i64_from_u64(uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX)
        return (int64_t)v;
    return -(int64_t)~v - 1;
}

void txn_counter_encode(int64_t v, uint8_t out[TXN_COUNTER_LEN])
{
    keycodec_put_u64be(out, (uint64_t)v);
}

int txn_counter_decode(const uint8_t *val, size_t len, int64_t *out)
{
    if (len != TXN_COUNTER_LEN || !val)
        return -1;
    *out = i64_from_u64(keycodec_get_u64be(val));
    return 0;
}

/* ---- names and text for messages ---------------------------------------- */

static int cond_kind_valid(unsigned kind)
{
    return kind >= TXN_COND_EXISTS && kind <= TXN_COND_RANGE;
}

static int cmp_valid(unsigned cmp)
{
    return cmp >= TXN_LT && cmp <= TXN_GT;
}

static int write_kind_valid(unsigned kind)
{
    return kind >= TXN_PUT && kind <= TXN_ADD;
}

static const char *cond_kind_name(unsigned kind)
{
    switch (kind) {
    case TXN_COND_EXISTS: return "exists";
    case TXN_COND_ABSENT: return "absent";
    case TXN_COND_VERSION_EQ: return "version";
    case TXN_COND_VALUE_EQ: return "value";
    case TXN_COND_INT: return "counter";
    case TXN_COND_RANGE: return "range";
    default: return "unknown";
    }
}

static const char *write_kind_name(unsigned kind)
{
    switch (kind) {
    case TXN_PUT: return "put";
    case TXN_DELETE: return "delete";
    case TXN_ADD: return "add";
    default: return "unknown";
    }
}

static const char *cmp_text(unsigned cmp)
{
    switch (cmp) {
    case TXN_LT: return "<";
    case TXN_LE: return "<=";
    case TXN_EQ: return "==";
    case TXN_GE: return ">=";
    case TXN_GT: return ">";
    default: return "?";
    }
}

/* Writes up to `show` bytes of p as printable text into out (cap at least
 * QUOTED_CAP(show)): printable ASCII as is, ' and \ escaped, anything else
 * as \xNN; "..." if cut. Keys are user bytes: never print them raw. */
static void quote(const uint8_t *p, size_t len, size_t show, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i = 0;
    for (; i < len && i < show && o + 5 <= cap; i++) {
        uint8_t b = p[i];
        if (b == '\\' || b == '\'') {
            out[o++] = '\\';
            out[o++] = (char)b;
        } else if (b >= 0x20 && b < 0x7f) {
            out[o++] = (char)b;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[b >> 4];
            out[o++] = hex[b & 15];
        }
    }
    if (i < len && o + 4 <= cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* "orders" for a built-in table, else "table 7": the catalog owns the names. */
static void table_label(uint32_t id, char *out, size_t cap)
{
    catalog c;
    catalog_init_default(&c, 1);
    for (size_t i = 0; i < c.count; i++) {
        if (c.tables[i].id == id) {
            snprintf(out, cap, "%s", c.tables[i].name);
            return;
        }
    }
    snprintf(out, cap, "table %" PRIu32, id);
}

/* ---- encoding ----------------------------------------------------------- */

static size_t cond_size(const txn_cond *c)
{
    size_t n = ITEM_FIXED_LEN + c->k.key_len;
    switch (c->kind) {
    case TXN_COND_VERSION_EQ: return n + 8;
    case TXN_COND_VALUE_EQ: return n + 4 + c->value_len;
    case TXN_COND_INT: return n + 8;
    case TXN_COND_RANGE: return n + 4 + c->value_len + 16;
    default: return n;
    }
}

static size_t write_size(const txn_write *w)
{
    size_t n = ITEM_FIXED_LEN + w->k.key_len;
    switch (w->kind) {
    case TXN_PUT: return n + 4 + w->value_len;
    case TXN_ADD: return n + 8 + (w->has_floor ? 8 : 0);
    default: return n;
    }
}

size_t txn_encoded_size(const txn *t)
{
    size_t n = HEADER_LEN;
    for (size_t i = 0; i < t->n_conds; i++)
        n += cond_size(&t->conds[i]);
    for (size_t i = 0; i < t->n_writes; i++)
        n += write_size(&t->writes[i]);
    return n;
}

/* The 12 fixed bytes and the key shared by conditions and writes. */
static uint8_t *put_item_head(uint8_t *p, uint8_t kind, uint8_t second, const txn_key *k)
{
    assert(k->key_len <= UINT16_MAX);
    p[0] = kind;
    p[1] = second;
    keycodec_put_u32be(p + 2, k->table_id);
    keycodec_put_u32be(p + 6, k->partition);
    put_u16(p + 10, (uint16_t)k->key_len);
    p += ITEM_FIXED_LEN;
    if (k->key_len)
        memcpy(p, k->key, k->key_len);
    return p + k->key_len;
}

static uint8_t *put_bytes32(uint8_t *p, const uint8_t *v, size_t len)
{
    assert(len <= UINT32_MAX);
    keycodec_put_u32be(p, (uint32_t)len);
    if (len)
        memcpy(p + 4, v, len);
    return p + 4 + len;
}

static uint8_t *encode_cond(uint8_t *p, const txn_cond *c)
{
    p = put_item_head(p, c->kind, c->kind == TXN_COND_INT ? c->cmp : 0, &c->k);
    switch (c->kind) {
    case TXN_COND_VERSION_EQ:
        keycodec_put_u64be(p, c->version);
        return p + 8;
    case TXN_COND_VALUE_EQ:
        return put_bytes32(p, c->value, c->value_len);
    case TXN_COND_INT:
        keycodec_put_u64be(p, (uint64_t)c->num);
        return p + 8;
    case TXN_COND_RANGE:
        p = put_bytes32(p, c->value, c->value_len);
        keycodec_put_u64be(p, (uint64_t)c->num);
        keycodec_put_u64be(p + 8, c->version);
        return p + 16;
    default:
        return p;
    }
}

static uint8_t *encode_write(uint8_t *p, const txn_write *w)
{
    int floor = w->kind == TXN_ADD && w->has_floor;
    p = put_item_head(p, w->kind, floor ? WRITE_FLAG_FLOOR : 0, &w->k);
    switch (w->kind) {
    case TXN_PUT:
        return put_bytes32(p, w->value, w->value_len);
    case TXN_ADD:
        keycodec_put_u64be(p, (uint64_t)w->delta);
        p += 8;
        if (floor) {
            keycodec_put_u64be(p, (uint64_t)w->floor);
            p += 8;
        }
        return p;
    default:
        return p;
    }
}

/* Precondition: t passed txn_validate (counts and lengths fit their fields;
 * a decoded transaction also qualifies). */
void txn_encode(const txn *t, uint8_t *out)
{
    assert(t->n_conds <= UINT16_MAX && t->n_writes <= UINT16_MAX);
    out[0] = TXN_FORMAT;
    put_u16(out + 1, (uint16_t)t->n_conds);
    put_u16(out + 3, (uint16_t)t->n_writes);
    uint8_t *p = out + HEADER_LEN;
    for (size_t i = 0; i < t->n_conds; i++)
        p = encode_cond(p, &t->conds[i]);
    for (size_t i = 0; i < t->n_writes; i++)
        p = encode_write(p, &t->writes[i]);
    assert((size_t)(p - out) == txn_encoded_size(t));
}

/* ---- decoding ----------------------------------------------------------- */

/* A cursor over the input that checks every length before a read, and
 * names the item it is in ("condition 3") in its messages. */
typedef struct reader {
    const uint8_t *p;
    size_t left;
    char item[32];
    okv_error *err;
} reader;

static int corrupt(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int corrupt(reader *r, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return okv_error_set(r->err, OKV_ECORRUPT, "transaction %s: %s", r->item, msg);
}

static int take(reader *r, size_t n, const char *what, const uint8_t **out)
{
    *out = NULL;
    if (n > r->left) {
        corrupt(r, "truncated in its %s (%zu bytes needed, %zu left)", what, n, r->left);
        return OKV_ECORRUPT;
    }
    *out = r->p;
    r->p += n;
    r->left -= n;
    return OKV_OK;
}

/* Table, partition and key, from the item's fixed bytes h. */
/* A range condition's start may be empty (from the first key). */
static int decode_key(reader *r, const uint8_t *h, txn_key *k, int may_be_empty)
{
    k->table_id = keycodec_get_u32be(h + 2);
    k->partition = keycodec_get_u32be(h + 6);
    size_t klen = get_u16(h + 10);
    size_t max = may_be_empty ? TXN_RANGE_BOUND_MAX : OKV_MAX_KEY_LEN;
    if ((klen == 0 && !may_be_empty) || klen > max)
        return corrupt(r, "key length %zu is outside %d..%zu", klen, may_be_empty ? 0 : 1, max);
    k->key_len = klen;
    return take(r, klen, "key", &k->key);
}

static int decode_value(reader *r, const uint8_t **value, size_t *value_len)
{
    const uint8_t *p = NULL;
    int rc = take(r, 4, "value length", &p);
    if (rc != OKV_OK)
        return rc;
    size_t vlen = keycodec_get_u32be(p);
    if (vlen > OKV_MAX_VALUE_LEN)
        return corrupt(r, "value length %zu is over the limit of %u", vlen, OKV_MAX_VALUE_LEN);
    *value_len = vlen;
    return take(r, vlen, "value", value);
}

static int decode_i64(reader *r, const char *what, int64_t *out)
{
    const uint8_t *p = NULL;
    int rc = take(r, 8, what, &p);
    if (rc == OKV_OK)
        *out = i64_from_u64(keycodec_get_u64be(p));
    return rc;
}

static int decode_cond(reader *r, txn_cond *c)
{
    const uint8_t *h = NULL, *p = NULL;
    int rc = take(r, ITEM_FIXED_LEN, "header", &h);
    if (rc != OKV_OK)
        return rc;
    c->kind = h[0];
    c->cmp = h[1];
    if (!cond_kind_valid(c->kind))
        return corrupt(r, "unknown kind %u", c->kind);
    if (c->kind == TXN_COND_INT ? !cmp_valid(c->cmp) : c->cmp != 0)
        return corrupt(r, "comparison %u is invalid for its kind (%s)", c->cmp,
                       cond_kind_name(c->kind));
    if ((rc = decode_key(r, h, &c->k, c->kind == TXN_COND_RANGE)) != OKV_OK)
        return rc;
    switch (c->kind) {
    case TXN_COND_VERSION_EQ:
        if ((rc = take(r, 8, "version", &p)) == OKV_OK)
            c->version = keycodec_get_u64be(p);
        return rc;
    case TXN_COND_VALUE_EQ:
        return decode_value(r, &c->value, &c->value_len);
    case TXN_COND_INT:
        return decode_i64(r, "number", &c->num);
    case TXN_COND_RANGE:
        if ((rc = decode_value(r, &c->value, &c->value_len)) != OKV_OK)
            return rc;
        if (c->value_len > TXN_RANGE_BOUND_MAX)
            return corrupt(r, "range end of %zu bytes is over the limit of %u", c->value_len,
                           TXN_RANGE_BOUND_MAX);
        if ((rc = decode_i64(r, "key count", &c->num)) != OKV_OK)
            return rc;
        if ((rc = take(r, 8, "digest", &p)) == OKV_OK)
            c->version = keycodec_get_u64be(p);
        return rc;
    default:
        return OKV_OK;
    }
}

static int decode_write(reader *r, txn_write *w)
{
    const uint8_t *h = NULL;
    int rc = take(r, ITEM_FIXED_LEN, "header", &h);
    if (rc != OKV_OK)
        return rc;
    w->kind = h[0];
    if (!write_kind_valid(w->kind))
        return corrupt(r, "unknown kind %u", w->kind);
    if (h[1] & ~WRITE_FLAG_FLOOR)
        return corrupt(r, "unknown flags 0x%02x", h[1]);
    w->has_floor = h[1] & WRITE_FLAG_FLOOR;
    if (w->has_floor && w->kind != TXN_ADD)
        return corrupt(r, "a %s has no floor, but its floor flag is set",
                       write_kind_name(w->kind));
    if ((rc = decode_key(r, h, &w->k, 0)) != OKV_OK)
        return rc;
    switch (w->kind) {
    case TXN_PUT:
        return decode_value(r, &w->value, &w->value_len);
    case TXN_ADD:
        if ((rc = decode_i64(r, "delta", &w->delta)) != OKV_OK || !w->has_floor)
            return rc;
        return decode_i64(r, "floor", &w->floor);
    default:
        return OKV_OK;
    }
}

int txn_decode(const uint8_t *buf, size_t len, txn *out, okv_error *err)
{
    memset(out, 0, sizeof *out);
    if (len < HEADER_LEN)
        return okv_error_set(err, OKV_ECORRUPT,
                             "transaction of %zu bytes is shorter than its %u-byte header", len,
                             HEADER_LEN);
    if (buf[0] != TXN_FORMAT)
        return okv_error_set(err, OKV_ECORRUPT, "transaction format %u is not %d", buf[0],
                             TXN_FORMAT);
    size_t nc = get_u16(buf + 1), nw = get_u16(buf + 3);
    if (nc > TXN_MAX_CONDS)
        return okv_error_set(err, OKV_ECORRUPT,
                             "transaction has %zu conditions; the format allows at most %u", nc,
                             TXN_MAX_CONDS);
    if (nw > TXN_MAX_WRITES)
        return okv_error_set(err, OKV_ECORRUPT,
                             "transaction has %zu writes; the format allows at most %u", nw,
                             TXN_MAX_WRITES);
    if (nc) {
        if (!(out->conds = calloc(nc, sizeof *out->conds)))
            return okv_error_set(err, OKV_ENOMEM, "no memory for %zu conditions", nc);
        out->n_conds = nc;
    }
    if (nw) {
        if (!(out->writes = calloc(nw, sizeof *out->writes)))
            return okv_error_set(err, OKV_ENOMEM, "no memory for %zu writes", nw);
        out->n_writes = nw;
    }
    reader r = { buf + HEADER_LEN, len - HEADER_LEN, "", err };
    for (size_t i = 0; i < nc; i++) {
        snprintf(r.item, sizeof r.item, "condition %zu", i);
        int rc = decode_cond(&r, &out->conds[i]);
        if (rc != OKV_OK)
            return rc;
    }
    for (size_t i = 0; i < nw; i++) {
        snprintf(r.item, sizeof r.item, "write %zu", i);
        int rc = decode_write(&r, &out->writes[i]);
        if (rc != OKV_OK)
            return rc;
    }
    if (r.left)
        return okv_error_set(err, OKV_ECORRUPT,
                             "transaction has %zu trailing bytes after its last write", r.left);
    return OKV_OK;
}

void txn_clear(txn *t)
{
    if (!t)
        return;
    free(t->conds);
    free(t->writes);
    memset(t, 0, sizeof *t);
}

/* ---- validation --------------------------------------------------------- */

static int check_key(const txn_key *k, const char *item, okv_error *err)
{
    if (k->key_len == 0 || k->key_len > OKV_MAX_KEY_LEN)
        return okv_error_set(err, OKV_EINVAL, "%s: key length %zu is outside 1..%u", item,
                             k->key_len, OKV_MAX_KEY_LEN);
    if (!k->key)
        return okv_error_set(err, OKV_EINVAL, "%s: key of %zu bytes is NULL", item,
                             k->key_len);
    return OKV_OK;
}

/* [start, end) of a range condition: either bound may be empty (open);
 * when both are given, start < end. */
static int check_range(const txn_cond *c, const char *item, okv_error *err)
{
    if (c->k.key_len > TXN_RANGE_BOUND_MAX || c->value_len > TXN_RANGE_BOUND_MAX)
        return okv_error_set(err, OKV_EINVAL, "%s: a range bound of %zu bytes is over the limit "
                             "of %u", item,
                             c->k.key_len > c->value_len ? c->k.key_len : c->value_len,
                             TXN_RANGE_BOUND_MAX);
    if ((c->k.key_len && !c->k.key) || (c->value_len && !c->value))
        return okv_error_set(err, OKV_EINVAL, "%s: a range bound is NULL", item);
    if (c->k.key_len && c->value_len) {
        size_t m = c->k.key_len < c->value_len ? c->k.key_len : c->value_len;
        int cmp = memcmp(c->k.key, c->value, m);
        if (cmp > 0 || (cmp == 0 && c->k.key_len >= c->value_len))
            return okv_error_set(err, OKV_EINVAL, "%s: the range's start is not below its end",
                                 item);
    }
    if (c->num < 0)
        return okv_error_set(err, OKV_EINVAL, "%s: a range of %" PRId64 " keys", item, c->num);
    return OKV_OK;
}

static int check_value(const uint8_t *v, size_t len, const char *item, okv_error *err)
{
    if (len > OKV_MAX_VALUE_LEN)
        return okv_error_set(err, OKV_EINVAL, "%s: value of %zu bytes is over the limit of %u",
                             item, len, OKV_MAX_VALUE_LEN);
    if (len && !v)
        return okv_error_set(err, OKV_EINVAL, "%s: value of %zu bytes is NULL", item, len);
    return OKV_OK;
}

static int check_cond(const txn_cond *c, size_t i, okv_error *err)
{
    char item[32];
    snprintf(item, sizeof item, "condition %zu", i);
    if (!cond_kind_valid(c->kind))
        return okv_error_set(err, OKV_EINVAL, "%s: unknown kind %u", item, c->kind);
    if (c->kind == TXN_COND_INT && !cmp_valid(c->cmp))
        return okv_error_set(err, OKV_EINVAL,
                             "%s: comparison %u is not one of <, <=, ==, >=, >", item, c->cmp);
    if (c->kind != TXN_COND_INT && c->cmp != 0)
        return okv_error_set(err, OKV_EINVAL,
                             "%s: only a counter condition takes a comparison (this one is "
                             "'%s')",
                             item, cond_kind_name(c->kind));
    if (c->kind == TXN_COND_RANGE)
        return check_range(c, item, err);
    int rc = check_key(&c->k, item, err);
    if (rc == OKV_OK && c->kind == TXN_COND_VALUE_EQ)
        rc = check_value(c->value, c->value_len, item, err);
    return rc;
}

static int check_write(const txn_write *w, size_t i, okv_error *err)
{
    char item[32];
    snprintf(item, sizeof item, "write %zu", i);
    if (!write_kind_valid(w->kind))
        return okv_error_set(err, OKV_EINVAL, "%s: unknown kind %u", item, w->kind);
    if (w->has_floor && w->kind != TXN_ADD)
        return okv_error_set(err, OKV_EINVAL, "%s: only an add takes a floor, and this is a %s",
                             item, write_kind_name(w->kind));
    int rc = check_key(&w->k, item, err);
    if (rc == OKV_OK && w->kind == TXN_PUT)
        rc = check_value(w->value, w->value_len, item, err);
    return rc;
}

static int same_key(const txn_key *a, const txn_key *b)
{
    return a->table_id == b->table_id && a->partition == b->partition &&
           a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

/* Every write gets the entry's index as its version, and every read sees the
 * state before the transaction: a key written twice would make the second
 * write silently win. So a key is written at most once. Quadratic, but over
 * at most TXN_MAX_WRITES short keys, once per proposal. */
static int check_written_once(const txn *t, okv_error *err)
{
    for (size_t i = 1; i < t->n_writes; i++) {
        const txn_key *k = &t->writes[i].k;
        for (size_t j = 0; j < i; j++) {
            if (!same_key(k, &t->writes[j].k))
                continue;
            char table[OKV_MAX_TABLE_NAME_LEN + 16], key[QUOTED_CAP(KEY_SHOW)];
            table_label(k->table_id, table, sizeof table);
            quote(k->key, k->key_len, KEY_SHOW, key, sizeof key);
            return okv_error_set(err, OKV_EINVAL,
                                 "write %zu writes %s key '%s' again (write %zu wrote it): a "
                                 "transaction writes a key at most once",
                                 i, table, key, j);
        }
    }
    return OKV_OK;
}

int txn_validate(const txn *t, okv_error *err)
{
    /* Conditions alone are a check: all of them held at one point of the
     * partition's log (how a read-only transaction validates its reads). */
    if (t->n_writes == 0 && t->n_conds == 0)
        return okv_error_set(err, OKV_EINVAL,
                             "a transaction needs at least one write or condition");
    if (t->n_writes > TXN_MAX_WRITES)
        return okv_error_set(err, OKV_EINVAL, "a transaction has at most %u writes, not %zu",
                             TXN_MAX_WRITES, t->n_writes);
    if (t->n_conds > TXN_MAX_CONDS)
        return okv_error_set(err, OKV_EINVAL, "a transaction has at most %u conditions, not %zu",
                             TXN_MAX_CONDS, t->n_conds);
    if ((t->n_writes && !t->writes) || (t->n_conds && !t->conds))
        return okv_error_set(err, OKV_EINVAL, "a transaction's condition or write list is NULL");
    for (size_t i = 0; i < t->n_conds; i++) {
        int rc = check_cond(&t->conds[i], i, err);
        if (rc != OKV_OK)
            return rc;
    }
    for (size_t i = 0; i < t->n_writes; i++) {
        int rc = check_write(&t->writes[i], i, err);
        if (rc != OKV_OK)
            return rc;
    }
    return check_written_once(t, err);
}

/* ---- evaluation --------------------------------------------------------- */

/* What the store holds for a key. */
typedef struct current {
    int present;
    uint8_t *val;                /* malloc'd by the store; read_current's caller frees */
    size_t len;
    uint64_t version;
} current;

/* Reads k into *c. OKV_ENOTFOUND is an answer (absent), not an error; any
 * other failure is returned with a message, and c holds nothing to free. */
static int read_current(const txn_store *s, const txn_key *k, current *c, okv_error *err)
{
    memset(c, 0, sizeof *c);
    okv_error_clear(err);
    int rc = s->read(s->ctx, k, &c->val, &c->len, &c->version, err);
    if (rc == OKV_OK) {
        c->present = 1;
        return OKV_OK;
    }
    free(c->val);
    memset(c, 0, sizeof *c);
    if (rc == OKV_ENOTFOUND)
        return OKV_OK;
    if (err && err->code != rc) {
        char key[QUOTED_CAP(KEY_SHOW)];
        quote(k->key, k->key_len, KEY_SHOW, key, sizeof key);
        okv_error_set(err, rc, "transaction: reading key '%s' failed: %s", key,
                      okv_strerror(rc));
    }
    return rc;
}

static void fail(txn_outcome *out, int code, uint8_t reason, size_t failed)
{
    out->code = code;
    out->reason = reason;
    out->failed = (uint32_t)failed;
}

/* What the store said of each range condition, walked once before the
 * lock rule so that the rule and the condition see the same walk. */
typedef struct range_seen {
    uint64_t count, digest;
    int locked;
} range_seen;

static int walk_ranges(const txn *t, const txn_store *s, range_seen **out, okv_error *err)
{
    *out = NULL;
    size_t n = 0;
    for (size_t i = 0; i < t->n_conds; i++)
        n += t->conds[i].kind == TXN_COND_RANGE;
    if (!n)
        return OKV_OK;
    if (!s->range)
        return okv_error_set(err, OKV_EINVAL, "a range condition (a scan) is only evaluated in "
                             "a transaction within one partition, or one that only reads");
    range_seen *r = calloc(t->n_conds, sizeof *r);
    if (!r)
        return okv_error_set(err, OKV_ENOMEM, "no memory for %zu range conditions", n);
    for (size_t i = 0; i < t->n_conds; i++) {
        if (t->conds[i].kind != TXN_COND_RANGE)
            continue;
        okv_error_clear(err);
        int rc = s->range(s->ctx, &t->conds[i], &r[i].count, &r[i].digest, &r[i].locked, err);
        if (rc != OKV_OK) {
            free(r);
            if (err && err->code != rc)
                okv_error_set(err, rc, "transaction: walking the range of condition %zu "
                              "failed: %s", i, okv_strerror(rc));
            return rc;
        }
    }
    *out = r;
    return OKV_OK;
}

/* Rule: a key another transaction holds a lock on fails the transaction
 * before any condition is read. Conditions' keys first, then writes'. A
 * range condition meets an exclusive lock anywhere in its range. */
static int find_locked(const txn *t, const txn_store *s, const range_seen *rs, txn_outcome *out)
{
    for (size_t i = 0; i < t->n_conds; i++) {
        if (t->conds[i].kind == TXN_COND_RANGE) {
            if (rs[i].locked) {
                fail(out, OKV_ECONFLICT, TXN_FAIL_LOCKED, i);
                return 1;
            }
            continue;
        }
        if (s->locked(s->ctx, &t->conds[i].k, 0)) {
            fail(out, OKV_ECONFLICT, TXN_FAIL_LOCKED, i);
            return 1;
        }
    }
    for (size_t i = 0; i < t->n_writes; i++) {
        if (s->locked(s->ctx, &t->writes[i].k, 1)) {
            fail(out, OKV_ECONFLICT, TXN_FAIL_LOCKED, t->n_conds + i);
            return 1;
        }
    }
    return 0;
}

static int compare(int64_t a, unsigned cmp, int64_t b)
{
    switch (cmp) {
    case TXN_LT: return a < b;
    case TXN_LE: return a <= b;
    case TXN_EQ: return a == b;
    case TXN_GE: return a >= b;
    case TXN_GT: return a > b;
    default: return 0;
    }
}

/* Whether c holds on cur: 1 holds, 0 does not, -1 the counter condition met
 * a value that is not a counter. */
static int cond_holds(const txn_cond *c, const current *cur)
{
    int64_t v;
    switch (c->kind) {
    case TXN_COND_EXISTS:
        return cur->present;
    case TXN_COND_ABSENT:
        return !cur->present;
    case TXN_COND_VERSION_EQ:
        return cur->present && cur->version == c->version;
    case TXN_COND_VALUE_EQ:
        return cur->present && cur->len == c->value_len &&
               (cur->len == 0 || memcmp(cur->val, c->value, cur->len) == 0);
    case TXN_COND_INT:
        if (!cur->present)
            return 0;
        if (txn_counter_decode(cur->val, cur->len, &v) != 0)
            return -1;
        return compare(v, c->cmp, c->num);
    default:
        return 0;
    }
}

/* Rule: conditions in order, against the state before the transaction; the
 * first that does not hold fails it. */
static int eval_conds(const txn *t, const txn_store *s, const range_seen *rs, txn_outcome *out,
                      okv_error *err)
{
    for (size_t i = 0; i < t->n_conds; i++) {
        const txn_cond *c = &t->conds[i];
        if (!cond_kind_valid(c->kind))
            return okv_error_set(err, OKV_EINVAL, "transaction condition %zu: unknown kind %u",
                                 i, c->kind);
        if (c->kind == TXN_COND_RANGE) {
            /* Planted bug (jepsen bank, scan reads): a range always holds. */
            if (OKV_FAILPOINT("txn.range.ignore"))
                continue;
            if (rs[i].count != (uint64_t)c->num || rs[i].digest != c->version) {
                fail(out, OKV_ECONDITION, TXN_FAIL_CONDITION, i);
                return OKV_OK;
            }
            continue;
        }
        current cur;
        int rc = read_current(s, &c->k, &cur, err);
        if (rc != OKV_OK)
            return rc;
        int holds = cond_holds(c, &cur);
        free(cur.val);
        if (holds < 0)
            fail(out, OKV_EINVAL, TXN_FAIL_NOT_COUNTER, i);
        else if (!holds)
            fail(out, OKV_ECONDITION, TXN_FAIL_CONDITION, i);
        if (holds != 1)
            return OKV_OK;
    }
    return OKV_OK;
}

/* The new counter of add w into sum, or the outcome's failure. */
static int plan_add(const txn_write *w, size_t failed, const txn_store *s, int64_t *sum,
                    txn_outcome *out, okv_error *err)
{
    current cur;
    int rc = read_current(s, &w->k, &cur, err);
    if (rc != OKV_OK)
        return rc;
    int64_t have = 0;
    int counter = !cur.present || txn_counter_decode(cur.val, cur.len, &have) == 0;
    free(cur.val);
    if (!counter) {
        fail(out, OKV_EINVAL, TXN_FAIL_NOT_COUNTER, failed);
    } else if (__builtin_add_overflow(have, w->delta, sum)) {
        fail(out, OKV_EINVAL, TXN_FAIL_OVERFLOW, failed);
    } else if (w->has_floor && *sum < w->floor) {
        fail(out, OKV_ECONDITION, TXN_FAIL_FLOOR, failed);
    }
    return OKV_OK;
}

/* Rule: every write's effect is computed before anything is staged. Only
 * adds need work: their new counters go to ctr[i]. */
static int plan_writes(const txn *t, const txn_store *s, uint8_t (*ctr)[TXN_COUNTER_LEN],
                       txn_outcome *out, okv_error *err)
{
    for (size_t i = 0; i < t->n_writes; i++) {
        const txn_write *w = &t->writes[i];
        if (!write_kind_valid(w->kind))
            return okv_error_set(err, OKV_EINVAL, "transaction write %zu: unknown kind %u", i,
                                 w->kind);
        if (w->kind != TXN_ADD)
            continue;
        int64_t sum = 0;
        int rc = plan_add(w, t->n_conds + i, s, &sum, out, err);
        if (rc != OKV_OK || out->code != OKV_OK)
            return rc;
        txn_counter_encode(sum, ctr[i]);
    }
    return OKV_OK;
}

/* Rule: every write applies, each at version `index`. A put's value is never
 * NULL here, even when empty: NULL means delete to the stager. */
static int stage_writes(const txn *t, uint64_t index, const txn_store *s,
                        uint8_t (*ctr)[TXN_COUNTER_LEN], okv_error *err)
{
    static const uint8_t empty[1];
    for (size_t i = 0; i < t->n_writes; i++) {
        const txn_write *w = &t->writes[i];
        const uint8_t *val = NULL;
        size_t len = 0;
        if (w->kind == TXN_PUT) {
            val = w->value_len ? w->value : empty;
            len = w->value_len;
        } else if (w->kind == TXN_ADD) {
            val = ctr[i];
            len = TXN_COUNTER_LEN;
        }
        okv_error_clear(err);
        int rc = s->write(s->ctx, &w->k, val, len, index, err);
        if (rc != OKV_OK) {
            if (err && err->code != rc)
                okv_error_set(err, rc, "transaction: staging write %zu failed: %s", i,
                              okv_strerror(rc));
            return rc;
        }
    }
    return OKV_OK;
}

int txn_eval(const txn *t, uint64_t index, const txn_store *s, txn_outcome *out,
             okv_error *err)
{
    memset(out, 0, sizeof *out);
    range_seen *rs = NULL;
    int rc = walk_ranges(t, s, &rs, err);
    if (rc != OKV_OK) {
        out->code = rc;
        return rc;
    }
    if (s->locked && find_locked(t, s, rs, out)) {
        free(rs);
        return OKV_OK;
    }
    rc = eval_conds(t, s, rs, out, err);
    free(rs);
    if (rc == OKV_OK && out->code == OKV_OK && t->n_writes) {
        uint8_t (*ctr)[TXN_COUNTER_LEN] = malloc(t->n_writes * sizeof *ctr);
        if (!ctr) {
            rc = okv_error_set(err, OKV_ENOMEM, "no memory to plan %zu writes", t->n_writes);
        } else {
            rc = plan_writes(t, s, ctr, out, err);
            if (rc == OKV_OK && out->code == OKV_OK)
                rc = stage_writes(t, index, s, ctr, err);
            free(ctr);
        }
    }
    if (rc != OKV_OK) {
        /* A caller that ignores the return still sees a failure. */
        memset(out, 0, sizeof *out);
        out->code = rc;
        return rc;
    }
    if (out->code == OKV_OK)
        out->version = index;
    okv_error_clear(err);
    return OKV_OK;
}

/* ---- describing an outcome ---------------------------------------------- */

/* "condition 2 (version == 17)", "write 1 (add -500, floor 0)". */
static void describe_cond(const txn_cond *c, size_t i, char *out, size_t cap)
{
    char value[QUOTED_CAP(VALUE_SHOW)];
    switch (c->kind) {
    case TXN_COND_VERSION_EQ:
        snprintf(out, cap, "condition %zu (version == %" PRIu64 ")", i, c->version);
        break;
    case TXN_COND_VALUE_EQ:
        quote(c->value, c->value_len, VALUE_SHOW, value, sizeof value);
        snprintf(out, cap, "condition %zu (value == '%s')", i, value);
        break;
    case TXN_COND_INT:
        snprintf(out, cap, "condition %zu (counter %s %" PRId64 ")", i, cmp_text(c->cmp), c->num);
        break;
    case TXN_COND_RANGE:
        quote(c->value, c->value_len, VALUE_SHOW, value, sizeof value);
        snprintf(out, cap, "condition %zu (range up to '%s' unchanged, %" PRId64 " keys)", i,
                 value, c->num);
        break;
    default:
        snprintf(out, cap, "condition %zu (%s)", i, cond_kind_name(c->kind));
        break;
    }
}

static void describe_write(const txn_write *w, size_t i, char *out, size_t cap)
{
    if (w->kind == TXN_ADD && w->has_floor)
        snprintf(out, cap, "write %zu (add %" PRId64 ", floor %" PRId64 ")", i, w->delta,
                 w->floor);
    else if (w->kind == TXN_ADD)
        snprintf(out, cap, "write %zu (add %" PRId64 ")", i, w->delta);
    else
        snprintf(out, cap, "write %zu (%s)", i, write_kind_name(w->kind));
}

void txn_outcome_describe(const txn *t, const txn_outcome *o, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    if (o->code == OKV_OK) {
        snprintf(buf, cap, "committed at version %" PRIu64, o->version);
        return;
    }
    /* The item that failed, and its key, when t has it. */
    char item[80 + QUOTED_CAP(VALUE_SHOW)], key[32 + QUOTED_CAP(KEY_SHOW)];
    const txn_key *k = NULL;
    size_t i = o->failed;
    if (t && i < t->n_conds) {
        describe_cond(&t->conds[i], i, item, sizeof item);
        k = &t->conds[i].k;
    } else if (t && i - t->n_conds < t->n_writes) {
        describe_write(&t->writes[i - t->n_conds], i - t->n_conds, item, sizeof item);
        k = &t->writes[i - t->n_conds].k;
    } else {
        snprintf(item, sizeof item, "item %zu", i);
    }
    int range = t && i < t->n_conds && t->conds[i].kind == TXN_COND_RANGE;
    if (k) {
        char q[QUOTED_CAP(KEY_SHOW)];
        quote(k->key, k->key_len, KEY_SHOW, q, sizeof q);
        if (range)
            snprintf(key, sizeof key, "a key of the range from '%s'", q);
        else
            snprintf(key, sizeof key, "key '%s'", q);
    } else {
        snprintf(key, sizeof key, "a key");
    }
    switch (o->reason) {
    case TXN_FAIL_LOCKED:
        snprintf(buf, cap, "%s is locked by another transaction (retry)", key);
        break;
    case TXN_FAIL_CONDITION:
        snprintf(buf, cap, "%s did not hold on %s", item, key);
        break;
    case TXN_FAIL_FLOOR:
        snprintf(buf, cap, "%s would leave %s below its floor", item, key);
        break;
    case TXN_FAIL_NOT_COUNTER:
        snprintf(buf, cap, "%s: %s holds a value that is not a counter (an 8-byte integer)",
                 item, key);
        break;
    case TXN_FAIL_OVERFLOW:
        snprintf(buf, cap, "%s would take the counter at %s past the 64-bit range", item,
                 key);
        break;
    default:
        snprintf(buf, cap, "transaction failed: %s", okv_strerror(o->code));
        break;
    }
}
