/*
 * fsm_snapshot.c — see fsm_snapshot.h.
 */
#include "fsm_snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "hash.h"
#include "keycodec.h"

#define SNAP_MAGIC "OKVSNAP1"
#define SNAP_HDR_LEN (8 + 8 + 8)
#define SNAP_SUM_LEN 8
#define CF_DATA 1
#define CF_META 2

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static int buf_add(buf *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

/* The key ranges of a group's state: its data prefix, and its 'D' and 'W'
 * meta prefixes. */
typedef struct ranges {
    uint8_t data[KEYCODEC_DATA_PREFIX_LEN];
    uint8_t dedup[FSM_META_PREFIX_LEN], wm[FSM_META_PREFIX_LEN];
} ranges;

static void group_ranges(ranges *r, uint64_t group)
{
    keycodec_data_prefix(r->data, (uint32_t)(group >> 32), (uint32_t)group);
    fsm_meta_prefix(r->dedup, 'D', group);
    fsm_meta_prefix(r->wm, 'W', group);
}

static int add_range(buf *b, engine *e, int cf_tag, enum engine_cf cf, const uint8_t *prefix,
                     size_t plen, okv_error *err)
{
    engine_iter *it;
    int rc = engine_iter_new_prefix(&it, e, cf, prefix, plen, err);
    if (rc)
        return rc;
    for (; engine_iter_valid(it); engine_iter_next(it)) {
        size_t kl, vl;
        const char *k = engine_iter_key(it, &kl);
        const char *v = engine_iter_value(it, &vl);
        uint8_t tag = (uint8_t)cf_tag, kh[4], vh[4];
        keycodec_put_u32be(kh, (uint32_t)kl);
        keycodec_put_u32be(vh, (uint32_t)vl);
        if (buf_add(b, &tag, 1) || buf_add(b, kh, 4) || buf_add(b, k, kl) ||
            buf_add(b, vh, 4) || buf_add(b, v, vl)) {
            engine_iter_free(it);
            return okv_error_set(err, OKV_ENOMEM, "out of memory building a snapshot");
        }
    }
    rc = engine_iter_status(it, err);
    engine_iter_free(it);
    return rc;
}

int fsm_snapshot_build(engine *e, uint64_t group, uint64_t index, uint8_t **out, size_t *len,
                       okv_error *err)
{
    *out = NULL;
    *len = 0;
    buf b = { 0 };
    uint8_t hdr[SNAP_HDR_LEN];
    memcpy(hdr, SNAP_MAGIC, 8);
    keycodec_put_u64be(hdr + 8, group);
    keycodec_put_u64be(hdr + 16, index);
    ranges r;
    group_ranges(&r, group);
    int rc = buf_add(&b, hdr, sizeof hdr)
                 ? okv_error_set(err, OKV_ENOMEM, "out of memory building a snapshot")
                 : OKV_OK;
    if (!rc)
        rc = add_range(&b, e, CF_DATA, ENGINE_CF_DATA, r.data, sizeof r.data, err);
    if (!rc)
        rc = add_range(&b, e, CF_META, ENGINE_CF_META, r.dedup, sizeof r.dedup, err);
    if (!rc)
        rc = add_range(&b, e, CF_META, ENGINE_CF_META, r.wm, sizeof r.wm, err);
    if (!rc) {
        uint8_t sum[SNAP_SUM_LEN];
        keycodec_put_u64be(sum, okv_hash64(b.p, b.len));
        if (buf_add(&b, sum, sizeof sum))
            rc = okv_error_set(err, OKV_ENOMEM, "out of memory building a snapshot");
    }
    if (rc) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    *len = b.len;
    return OKV_OK;
}

static int has_prefix(const uint8_t *k, size_t kl, const uint8_t *p, size_t pl)
{
    return kl >= pl && memcmp(k, p, pl) == 0;
}

/* Walks the records; with b == NULL only checks them. */
static int walk(const uint8_t *data, size_t len, const ranges *r, engine_batch *b,
                okv_error *err)
{
    size_t off = SNAP_HDR_LEN, end = len - SNAP_SUM_LEN;
    while (off < end) {
        if (end - off < 5)
            return okv_error_set(err, OKV_ECORRUPT, "snapshot record header cut short");
        uint8_t tag = data[off];
        uint32_t kl = keycodec_get_u32be(data + off + 1);
        off += 5;
        if (kl > end - off || end - off - kl < 4)
            return okv_error_set(err, OKV_ECORRUPT, "snapshot key runs past the end");
        const uint8_t *k = data + off;
        off += kl;
        uint32_t vl = keycodec_get_u32be(data + off);
        off += 4;
        if (vl > end - off)
            return okv_error_set(err, OKV_ECORRUPT, "snapshot value runs past the end");
        const uint8_t *v = data + off;
        off += vl;
        int ok = tag == CF_DATA ? has_prefix(k, kl, r->data, sizeof r->data)
                 : tag == CF_META ? has_prefix(k, kl, r->dedup, sizeof r->dedup) ||
                                        has_prefix(k, kl, r->wm, sizeof r->wm)
                                  : 0;
        if (!ok)
            return okv_error_set(err, OKV_ECORRUPT,
                                 "snapshot record outside its partition (column family tag %u)",
                                 (unsigned)tag);
        if (b)
            engine_batch_put(b, tag == CF_DATA ? ENGINE_CF_DATA : ENGINE_CF_META, k, kl, v, vl);
    }
    return OKV_OK;
}

static void delete_prefix(engine_batch *b, enum engine_cf cf, const uint8_t *p, size_t pl)
{
    uint8_t succ[16];
    size_t sl = engine_prefix_successor(p, pl, succ);
    engine_batch_delete_range(b, cf, p, pl, succ, sl);
}

int fsm_snapshot_stage_install(engine_batch *b, uint64_t group, uint64_t index,
                               const uint8_t *data, size_t len, okv_error *err)
{
    if (len < SNAP_HDR_LEN + SNAP_SUM_LEN || memcmp(data, SNAP_MAGIC, 8) != 0)
        return okv_error_set(err, OKV_ECORRUPT, "not a partition snapshot (%zu bytes)", len);
    if (keycodec_get_u64be(data + len - SNAP_SUM_LEN) != okv_hash64(data, len - SNAP_SUM_LEN))
        return okv_error_set(err, OKV_ECORRUPT, "partition snapshot checksum mismatch");
    if (keycodec_get_u64be(data + 8) != group || keycodec_get_u64be(data + 16) != index)
        return okv_error_set(err, OKV_ECORRUPT,
                             "snapshot of group %llu at %llu arrived as group %llu at %llu",
                             (unsigned long long)keycodec_get_u64be(data + 8),
                             (unsigned long long)keycodec_get_u64be(data + 16),
                             (unsigned long long)group, (unsigned long long)index);
    ranges r;
    group_ranges(&r, group);
    int rc = walk(data, len, &r, NULL, err);
    if (rc)
        return rc;
    /* Range tombstones first: the puts after them in the batch win. (The
     * prefixes never end in 0xff bytes only, so a successor exists.) */
    delete_prefix(b, ENGINE_CF_DATA, r.data, sizeof r.data);
    delete_prefix(b, ENGINE_CF_META, r.dedup, sizeof r.dedup);
    delete_prefix(b, ENGINE_CF_META, r.wm, sizeof r.wm);
    walk(data, len, &r, b, err);
    uint8_t ak[FSM_META_PREFIX_LEN], av[8];
    fsm_meta_prefix(ak, 'A', group);
    keycodec_put_u64be(av, index);
    engine_batch_put(b, ENGINE_CF_META, ak, sizeof ak, av, sizeof av);
    return OKV_OK;
}
