/*
 * engine_batch.c — write batches (engine.h) and the helpers both engine
 * implementations share; the record layout is in engine_batch_int.h.
 */
#include "engine_batch_int.h"

#include <stdlib.h>
#include <string.h>

int engine_cf_ok(enum engine_cf cf)
{
    return (int)cf >= 0 && (int)cf < ENGINE_CF_COUNT;
}

int engine_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

int engine_batch_rec_next(const uint8_t *buf, size_t len, size_t *off, engine_batch_rec *r)
{
    if (*off >= len)
        return 0;
    const uint8_t *p = buf + *off;
    memcpy(&r->key_len, p + 2, 4);
    memcpy(&r->val_len, p + 6, 4);
    r->op = p[0];
    r->cf = (enum engine_cf)p[1];
    r->key = (const char *)p + BATCH_REC_HEADER;
    r->val = r->key + r->key_len;
    *off += BATCH_REC_HEADER + (size_t)r->key_len + r->val_len;
    return 1;
}

engine_batch *engine_batch_new(void)
{
    return calloc(1, sizeof(engine_batch));
}

void engine_batch_free(engine_batch *b)
{
    if (!b)
        return;
    free(b->buf);
    free(b);
}

static void batch_append(engine_batch *b, int op, enum engine_cf cf, const void *key,
                         size_t key_len, const void *val, size_t val_len)
{
    if (b->error)
        return;
    /* RocksDB's WriteBatch stores lengths as varint32. */
    if (!engine_cf_ok(cf) || key_len > UINT32_MAX || val_len > UINT32_MAX) {
        b->error = OKV_EINVAL;
        return;
    }
    size_t need = BATCH_REC_HEADER + key_len + val_len;
    if (b->cap - b->len < need) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < need)
            cap *= 2;
        uint8_t *nb = realloc(b->buf, cap);
        if (!nb) {
            b->error = OKV_ENOMEM;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
    uint8_t *p = b->buf + b->len;
    uint32_t kl = (uint32_t)key_len, vl = (uint32_t)val_len;
    p[0] = (uint8_t)op;
    p[1] = (uint8_t)cf;
    memcpy(p + 2, &kl, 4);
    memcpy(p + 6, &vl, 4);
    if (key_len)
        memcpy(p + BATCH_REC_HEADER, key, key_len);
    if (val_len)
        memcpy(p + BATCH_REC_HEADER + key_len, val, val_len);
    b->len += need;
    b->count++;
}

void engine_batch_put(engine_batch *b, enum engine_cf cf, const void *key, size_t key_len,
                      const void *val, size_t val_len)
{
    batch_append(b, BATCH_OP_PUT, cf, key, key_len, val, val_len);
}

void engine_batch_delete(engine_batch *b, enum engine_cf cf, const void *key, size_t key_len)
{
    batch_append(b, BATCH_OP_DELETE, cf, key, key_len, NULL, 0);
}

void engine_batch_delete_range(engine_batch *b, enum engine_cf cf, const void *begin,
                               size_t begin_len, const void *end, size_t end_len)
{
    batch_append(b, BATCH_OP_DELETE_RANGE, cf, begin, begin_len, end, end_len);
}

void engine_batch_clear(engine_batch *b)
{
    b->len = 0;
    b->count = 0;
    b->error = OKV_OK;
}

size_t engine_batch_count(const engine_batch *b)
{
    return b->count;
}


size_t engine_prefix_successor(const void *prefix, size_t prefix_len, uint8_t *out)
{
    const uint8_t *p = prefix;
    size_t i = prefix_len;
    while (i > 0 && p[i - 1] == 0xff)
        i--;
    if (i == 0)
        return 0;
    memcpy(out, p, i);
    out[i - 1]++;
    return i;
}
