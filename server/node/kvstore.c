#include "kvstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "keycodec.h"

struct kvstore {
    engine *eng;
    catalog cat;
};

/* First boot writes the catalog; later boots read it. */
static int load_catalog(kvstore *kv, uint32_t partitions, int *ignored, okv_error *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = engine_get(kv->eng, ENGINE_CF_META, CATALOG_KEY, sizeof CATALOG_KEY - 1, &text,
                        &len, err);
    if (rc == OKV_ENOTFOUND) {
        catalog_init_default(&kv->cat, partitions);
        char buf[1024];
        size_t n = catalog_encode(&kv->cat, buf, sizeof buf);
        return engine_put(kv->eng, ENGINE_CF_META, CATALOG_KEY, sizeof CATALOG_KEY - 1, buf, n,
                          1, err);
    }
    if (rc)
        return rc;
    rc = catalog_decode(&kv->cat, text, len, err);
    free(text);
    if (rc)
        return okv_error_set(err, rc, "data dir %s: stored catalog: %s", engine_dir(kv->eng),
                             err ? err->msg : "malformed");
    for (size_t i = 0; i < kv->cat.count; i++)
        if (kv->cat.tables[i].partitions != partitions)
            *ignored = 1;
    return OKV_OK;
}

int kvstore_open(kvstore **out, const char *dir, uint32_t partitions, int *partitions_ignored,
                 okv_error *err)
{
    *out = NULL;
    *partitions_ignored = 0;
    kvstore *kv = calloc(1, sizeof *kv);
    if (!kv)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    engine_options opts = ENGINE_OPTIONS_INIT;
    int rc = engine_open(&kv->eng, dir, &opts, err);
    if (!rc)
        rc = load_catalog(kv, partitions, partitions_ignored, err);
    if (rc) {
        kvstore_close(kv);
        return rc;
    }
    *out = kv;
    return OKV_OK;
}

void kvstore_close(kvstore *kv)
{
    if (!kv)
        return;
    engine_close(kv->eng);
    free(kv);
}

const catalog *kvstore_catalog(const kvstore *kv) { return &kv->cat; }
engine *kvstore_engine(kvstore *kv) { return kv->eng; }

static int corrupt_value(kvstore *kv, const catalog_table *t, uint32_t p, okv_error *err)
{
    return okv_error_set(err, OKV_ECORRUPT,
                         "data dir %s: a stored value in %s partition %u has a bad header",
                         engine_dir(kv->eng), t->name, p);
}

int kvstore_get(kvstore *kv, const catalog_table *t, uint32_t partition, const uint8_t *key,
                size_t key_len, uint8_t **value_out, size_t *value_len, uint64_t *version,
                okv_error *err)
{
    uint8_t ekey[KEYCODEC_DATA_PREFIX_LEN + OKV_MAX_KEY_LEN];
    size_t elen = keycodec_data_key(ekey, t->id, partition, key, key_len);
    char *raw = NULL;
    size_t raw_len = 0;
    int rc = engine_get(kv->eng, ENGINE_CF_DATA, ekey, elen, &raw, &raw_len, err);
    if (rc == OKV_ENOTFOUND)
        return okv_error_set(err, rc, "key not found in table %s", t->name);
    if (rc)
        return rc;
    const uint8_t *val;
    size_t vlen;
    if (keycodec_value_decode(raw, raw_len, version, &val, &vlen)) {
        free(raw);
        return corrupt_value(kv, t, partition, err);
    }
    /* Shift the user value to the front so the caller frees one block. */
    memmove(raw, val, vlen);
    raw[vlen] = '\0';   /* raw_len >= vlen + 8, so there is room */
    *value_out = (uint8_t *)raw;
    *value_len = vlen;
    return OKV_OK;
}

void kvstore_items_free(kv_item *items, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(items[i].key);
        free(items[i].value);
    }
    free(items);
}

/* One cursor per partition; a scan merges them so results come in user-key
 * order whatever partition a key hashed to. */
typedef struct cursor {
    engine_iter *it;
} cursor;

static int cursor_open(kvstore *kv, cursor *c, const request *r, uint32_t p, okv_error *err)
{
    uint8_t lo[KEYCODEC_DATA_PREFIX_LEN + OKV_MAX_KEY_LEN + 1];
    uint8_t hi[KEYCODEC_DATA_PREFIX_LEN + OKV_MAX_KEY_LEN + 1];
    size_t lo_len = keycodec_data_key(lo, r->table->id, p, r->lower, r->lower_len);
    size_t hi_len;
    if (r->has_upper) {
        hi_len = keycodec_data_key(hi, r->table->id, p, r->upper, r->upper_len);
    } else {
        /* No user upper bound: stop at the end of this partition. */
        uint8_t pre[KEYCODEC_DATA_PREFIX_LEN];
        keycodec_data_prefix(pre, r->table->id, p);
        hi_len = keycodec_prefix_successor(pre, sizeof pre, hi);
    }
    return engine_iter_new(&c->it, kv->eng, ENGINE_CF_DATA, lo, lo_len, hi_len ? hi : NULL,
                           hi_len, err);
}

static const uint8_t *cursor_user_key(const cursor *c, size_t *len)
{
    size_t klen;
    const char *k = engine_iter_key(c->it, &klen);
    *len = klen - KEYCODEC_DATA_PREFIX_LEN;
    return (const uint8_t *)k + KEYCODEC_DATA_PREFIX_LEN;
}

/* Index of the cursor holding the smallest user key, or -1 when all are done. */
static int cursor_min(const cursor *cs, size_t n)
{
    int best = -1;
    const uint8_t *bk = NULL;
    size_t bl = 0;
    for (size_t i = 0; i < n; i++) {
        if (!engine_iter_valid(cs[i].it))
            continue;
        size_t l;
        const uint8_t *k = cursor_user_key(&cs[i], &l);
        size_t m = l < bl ? l : bl;
        int c = best < 0 ? -1 : (m ? memcmp(k, bk, m) : 0);
        if (best < 0 || c < 0 || (c == 0 && l < bl)) {
            best = (int)i;
            bk = k;
            bl = l;
        }
    }
    return best;
}

static int take_item(kvstore *kv, const request *r, const cursor *c, uint32_t p, kv_item *it,
                     okv_error *err)
{
    size_t klen, rawlen, vlen;
    const uint8_t *k = cursor_user_key(c, &klen);
    const char *raw = engine_iter_value(c->it, &rawlen);
    const uint8_t *v;
    if (keycodec_value_decode(raw, rawlen, &it->version, &v, &vlen))
        return corrupt_value(kv, r->table, p, err);
    it->key = malloc(klen + 1);
    it->value = malloc(vlen + 1);
    if (!it->key || !it->value)
        return okv_error_set(err, OKV_ENOMEM, "out of memory in scan");
    memcpy(it->key, k, klen);
    memcpy(it->value, v, vlen);
    it->key_len = klen;
    it->value_len = vlen;
    return OKV_OK;
}

int kvstore_scan(kvstore *kv, const request *r, kv_item **items_out, size_t *count_out,
                 int *more, okv_error *err)
{
    *items_out = NULL;
    *count_out = 0;
    *more = 0;
    uint32_t first = r->single_partition ? r->partition : 0;
    size_t ncur = r->single_partition ? 1 : r->table->partitions;
    cursor *cs = calloc(ncur, sizeof *cs);
    kv_item *items = calloc(r->limit, sizeof *items);
    size_t n = 0;
    int rc = (!cs || !items) ? okv_error_set(err, OKV_ENOMEM, "out of memory in scan") : OKV_OK;
    for (size_t i = 0; !rc && i < ncur; i++)
        rc = cursor_open(kv, &cs[i], r, first + (uint32_t)i, err);
    while (!rc) {
        int m = cursor_min(cs, ncur);
        if (m < 0)
            break;
        if (n == r->limit) {
            *more = 1;
            break;
        }
        rc = take_item(kv, r, &cs[m], first + (uint32_t)m, &items[n], err);
        n++;
        engine_iter_next(cs[m].it);
    }
    for (size_t i = 0; i < ncur && cs; i++) {
        if (!rc && cs[i].it)
            rc = engine_iter_status(cs[i].it, err);
        engine_iter_free(cs[i].it);
    }
    free(cs);
    if (rc) {
        kvstore_items_free(items, n);
        return rc;
    }
    *items_out = items;
    *count_out = n;
    return OKV_OK;
}

/* The legacy `S` records of the meta CF: tag, u32be table, u32be partition. */
#define SEQ_TAG 'S'

/* Stages A = max(A, seq) for the group of the 9-byte S key k, and the
 * deletion of k. */
static int migrate_one(kvstore *kv, engine_batch *b, const uint8_t *k, size_t klen,
                       const uint8_t *v, size_t vlen, okv_error *err)
{
    if (klen != KEYCODEC_SEQ_KEY_LEN || vlen != 8)
        return okv_error_set(err, OKV_ECORRUPT,
                             "data dir %s: a partition sequence record has a %zu-byte key and "
                             "a %zu-byte value, expected 9 and 8",
                             engine_dir(kv->eng), klen, vlen);
    uint64_t group = fsm_group_id(keycodec_get_u32be(k + 1), keycodec_get_u32be(k + 5));
    uint64_t seq = keycodec_get_u64be(v);
    uint8_t akey[FSM_META_PREFIX_LEN];
    fsm_meta_prefix(akey, 'A', group);
    char *raw = NULL;
    size_t rlen = 0;
    uint64_t applied = 0;
    int rc = engine_get(kv->eng, ENGINE_CF_META, akey, sizeof akey, &raw, &rlen, err);
    if (rc == OKV_OK) {
        int bad = rlen != 8;
        if (!bad)
            applied = keycodec_get_u64be((const uint8_t *)raw);
        free(raw);
        if (bad)
            return okv_error_set(err, OKV_ECORRUPT,
                                 "data dir %s: applied index of group %llu is %zu bytes",
                                 engine_dir(kv->eng), (unsigned long long)group, rlen);
    } else if (rc != OKV_ENOTFOUND) {
        return rc;
    }
    if (seq > applied) {
        uint8_t aval[8];
        keycodec_put_u64be(aval, seq);
        engine_batch_put(b, ENGINE_CF_META, akey, sizeof akey, aval, sizeof aval);
    }
    engine_batch_delete(b, ENGINE_CF_META, k, klen);
    return OKV_OK;
}

int kvstore_migrate_sequences(kvstore *kv, okv_error *err)
{
    static const uint8_t lo[1] = { SEQ_TAG }, hi[1] = { SEQ_TAG + 1 };
    engine_batch *b = engine_batch_new();
    if (!b)
        return okv_error_set(err, OKV_ENOMEM, "out of memory migrating sequences");
    engine_iter *it;
    int rc = engine_iter_new(&it, kv->eng, ENGINE_CF_META, lo, sizeof lo, hi, sizeof hi, err);
    if (rc) {
        engine_batch_free(b);
        return rc;
    }
    for (; rc == OKV_OK && engine_iter_valid(it); engine_iter_next(it)) {
        size_t klen, vlen;
        const char *k = engine_iter_key(it, &klen);
        const char *v = engine_iter_value(it, &vlen);
        rc = migrate_one(kv, b, (const uint8_t *)k, klen, (const uint8_t *)v, vlen, err);
    }
    if (rc == OKV_OK)
        rc = engine_iter_status(it, err);
    engine_iter_free(it);
    if (rc == OKV_OK && engine_batch_count(b))
        rc = engine_write(kv->eng, b, 1, err);
    engine_batch_free(b);
    return rc;
}
