#include "kvstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keycodec.h"

struct kvstore {
    engine *eng;
    catalog cat;
    /* Last version handed out, per table (catalog index) and partition. */
    uint64_t *seqs[CATALOG_MAX_TABLES];
    /* Partitions whose sequence moved since the last commit: their new
     * value joins the batch once at commit, not once per write. */
    uint8_t *dirty[CATALOG_MAX_TABLES];
    uint32_t *dirty_list;      /* (table index << 16 | partition) */
    size_t ndirty;
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

static int load_seqs(kvstore *kv, okv_error *err)
{
    kv->dirty_list = calloc(CATALOG_MAX_TABLES * CATALOG_MAX_PARTITIONS, sizeof(uint32_t));
    if (!kv->dirty_list)
        return okv_error_set(err, OKV_ENOMEM, "out of memory loading sequences");
    for (size_t i = 0; i < kv->cat.count; i++) {
        const catalog_table *t = &kv->cat.tables[i];
        kv->seqs[i] = calloc(t->partitions, sizeof(uint64_t));
        kv->dirty[i] = calloc(t->partitions, 1);
        if (!kv->seqs[i] || !kv->dirty[i])
            return okv_error_set(err, OKV_ENOMEM, "out of memory loading sequences");
        for (uint32_t p = 0; p < t->partitions; p++) {
            uint8_t key[KEYCODEC_SEQ_KEY_LEN];
            keycodec_seq_key(key, t->id, p);
            char *val = NULL;
            size_t len = 0;
            int rc = engine_get(kv->eng, ENGINE_CF_META, key, sizeof key, &val, &len, err);
            if (rc == OKV_ENOTFOUND)
                continue;
            if (rc)
                return rc;
            if (len != 8) {
                free(val);
                return okv_error_set(err, OKV_ECORRUPT,
                                     "data dir %s: sequence of %s partition %u is %zu bytes, "
                                     "expected 8",
                                     engine_dir(kv->eng), t->name, p, len);
            }
            kv->seqs[i][p] = keycodec_get_u64be((const uint8_t *)val);
            free(val);
        }
    }
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
    if (!rc)
        rc = load_seqs(kv, err);
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
    for (size_t i = 0; i < CATALOG_MAX_TABLES; i++) {
        free(kv->seqs[i]);
        free(kv->dirty[i]);
    }
    free(kv->dirty_list);
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

int kvstore_stage(kvstore *kv, engine_batch *b, kv_write *w, okv_error *err)
{
    const catalog_table *t = w->table;
    uint8_t ekey[KEYCODEC_DATA_PREFIX_LEN + OKV_MAX_KEY_LEN];
    size_t elen = keycodec_data_key(ekey, t->id, w->partition, w->key, w->key_len);

    /* Deletes report whether the key existed and conditions compare
     * versions, so both read the current value; plain puts skip the read. */
    uint64_t cur = 0;
    if (w->is_delete || w->check_version) {
        char *raw = NULL;
        size_t raw_len = 0;
        int rc = engine_get(kv->eng, ENGINE_CF_DATA, ekey, elen, &raw, &raw_len, err);
        if (rc && rc != OKV_ENOTFOUND)
            return rc;
        if (rc == OKV_OK) {
            const uint8_t *v;
            size_t vl;
            int bad = keycodec_value_decode(raw, raw_len, &cur, &v, &vl);
            free(raw);
            if (bad)
                return corrupt_value(kv, t, w->partition, err);
        }
    }
    w->existed = cur != 0;
    if (w->check_version && cur != w->expected_version)
        return okv_error_set(err, OKV_ECONFLICT,
                             "version condition failed: expected %llu, current %llu%s",
                             (unsigned long long)w->expected_version, (unsigned long long)cur,
                             cur ? "" : " (key absent)");

    uint64_t version = ++kv->seqs[t->index][w->partition];
    w->version = version;
    if (w->is_delete) {
        engine_batch_delete(b, ENGINE_CF_DATA, ekey, elen);
    } else {
        uint8_t *val = malloc(KEYCODEC_VALUE_HEADER_LEN + w->value_len);
        if (!val)
            return okv_error_set(err, OKV_ENOMEM, "out of memory staging a write");
        keycodec_value_header(val, version);
        if (w->value_len)
            memcpy(val + KEYCODEC_VALUE_HEADER_LEN, w->value, w->value_len);
        engine_batch_put(b, ENGINE_CF_DATA, ekey, elen, val,
                         KEYCODEC_VALUE_HEADER_LEN + w->value_len);
        free(val);
    }
    if (!kv->dirty[t->index][w->partition]) {
        kv->dirty[t->index][w->partition] = 1;
        kv->dirty_list[kv->ndirty++] = (uint32_t)(t->index << 16) | w->partition;
    }
    return OKV_OK;
}

int kvstore_commit(kvstore *kv, engine_batch *b, okv_error *err)
{
    /* The sequences go in the same batch as the writes that moved them, so
     * after a crash a partition's sequence is never behind its data. */
    for (size_t i = 0; i < kv->ndirty; i++) {
        size_t ti = kv->dirty_list[i] >> 16;
        uint32_t p = kv->dirty_list[i] & 0xffffu;
        uint8_t skey[KEYCODEC_SEQ_KEY_LEN], sval[8];
        keycodec_seq_key(skey, kv->cat.tables[ti].id, p);
        keycodec_put_u64be(sval, kv->seqs[ti][p]);
        engine_batch_put(b, ENGINE_CF_META, skey, sizeof skey, sval, sizeof sval);
        kv->dirty[ti][p] = 0;
    }
    kv->ndirty = 0;
    if (engine_batch_count(b) == 0)
        return OKV_OK;
    return engine_write(kv->eng, b, 1, err);
}
