/*
 * snap_format.c — see snap_format.h; the layout, byte by byte, is in
 * docs/storage-format.md "Partition snapshots".
 */
#include "snap_format.h"

#include <stdlib.h>
#include <string.h>

#include "keycodec.h"
#include "raft_codec.h"

static const uint8_t magic[4] = { 'O', 'K', 'V', 'S' };

uint64_t snap_checksum(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void put_prefix(uint8_t *b, int kind)
{
    memcpy(b, magic, 4);
    b[4] = SNAP_VERSION;
    b[5] = (uint8_t)kind;
}

int snap_kind_of(const uint8_t *b, size_t len)
{
    if (len < SNAP_PREFIX_LEN || memcmp(b, magic, 4) != 0 || b[4] != SNAP_VERSION)
        return -1;
    return b[5];
}

size_t snap_header_encode(const struct snap_header *h, uint8_t *buf, size_t cap)
{
    if (cap < SNAP_HEADER_FIXED)
        return 0;
    put_prefix(buf, SNAP_HEADER);
    const uint64_t v[7] = { h->cluster_id, h->from, h->to, h->group, h->term, h->meta.index,
                            h->meta.term };
    for (int i = 0; i < 7; i++)
        keycodec_put_u64be(buf + SNAP_PREFIX_LEN + 8 * i, v[i]);
    size_t cl;
    if (raft_conf_encode(&h->meta.conf, buf + SNAP_HEADER_FIXED, cap - SNAP_HEADER_FIXED, &cl))
        return 0;
    return SNAP_HEADER_FIXED + cl;
}

int snap_header_decode(const uint8_t *b, size_t len, struct snap_header *h)
{
    memset(h, 0, sizeof *h);
    if (snap_kind_of(b, len) != SNAP_HEADER || len < SNAP_HEADER_FIXED)
        return -1;
    uint64_t v[7];
    for (int i = 0; i < 7; i++)
        v[i] = keycodec_get_u64be(b + SNAP_PREFIX_LEN + 8 * i);
    h->cluster_id = v[0];
    h->from = v[1];
    h->to = v[2];
    h->group = v[3];
    h->term = v[4];
    h->meta.index = v[5];
    h->meta.term = v[6];
    size_t used;
    if (raft_conf_decode(b + SNAP_HEADER_FIXED, len - SNAP_HEADER_FIXED, &h->meta.conf, &used) ||
        used != len - SNAP_HEADER_FIXED)
        return -1;
    return 0;
}

size_t snap_trailer_encode(const struct snap_trailer *t, uint8_t buf[SNAP_TRAILER_LEN])
{
    put_prefix(buf, SNAP_TRAILER);
    keycodec_put_u32be(buf + 6, t->chunks);
    keycodec_put_u64be(buf + 10, t->records);
    keycodec_put_u64be(buf + 18, t->bytes);
    keycodec_put_u64be(buf + 26, t->checksum);
    return SNAP_TRAILER_LEN;
}

int snap_trailer_decode(const uint8_t *b, size_t len, struct snap_trailer *t)
{
    memset(t, 0, sizeof *t);
    if (snap_kind_of(b, len) != SNAP_TRAILER || len != SNAP_TRAILER_LEN)
        return -1;
    t->chunks = keycodec_get_u32be(b + 6);
    t->records = keycodec_get_u64be(b + 10);
    t->bytes = keycodec_get_u64be(b + 18);
    t->checksum = keycodec_get_u64be(b + 26);
    return 0;
}

/* ---- chunks -------------------------------------------------------------- */

static int reserve(snap_chunk *c, size_t more)
{
    if (c->len + more <= c->cap)
        return 0;
    size_t cap = c->cap ? c->cap : 64 * 1024;
    while (cap < c->len + more)
        cap *= 2;
    uint8_t *p = realloc(c->buf, cap);
    if (!p)
        return -1;
    c->buf = p;
    c->cap = cap;
    return 0;
}

int snap_chunk_begin(snap_chunk *c, uint32_t seq)
{
    c->len = 0;
    c->nrec = 0;
    if (reserve(c, SNAP_CHUNK_HDR))
        return -1;
    put_prefix(c->buf, SNAP_CHUNK);
    keycodec_put_u32be(c->buf + 6, seq);
    keycodec_put_u32be(c->buf + 10, 0);
    c->len = SNAP_CHUNK_HDR;
    return 0;
}

int snap_chunk_add(snap_chunk *c, int cf, const void *key, size_t key_len, const void *val,
                   size_t val_len)
{
    if (key_len > UINT32_MAX || val_len > UINT32_MAX ||
        reserve(c, SNAP_RECORD_HDR + key_len + val_len))
        return -1;
    uint8_t *p = c->buf + c->len;
    p[0] = (uint8_t)cf;
    keycodec_put_u32be(p + 1, (uint32_t)key_len);
    if (key_len)
        memcpy(p + 5, key, key_len);
    keycodec_put_u32be(p + 5 + key_len, (uint32_t)val_len);
    if (val_len)
        memcpy(p + 9 + key_len, val, val_len);
    c->len += SNAP_RECORD_HDR + key_len + val_len;
    c->nrec++;
    return 0;
}

void snap_chunk_seal(snap_chunk *c) { keycodec_put_u32be(c->buf + 10, c->nrec); }

void snap_chunk_free(snap_chunk *c)
{
    free(c->buf);
    memset(c, 0, sizeof *c);
}

int snap_chunk_open(snap_chunk_reader *r, const uint8_t *b, size_t len)
{
    memset(r, 0, sizeof *r);
    if (snap_kind_of(b, len) != SNAP_CHUNK || len < SNAP_CHUNK_HDR)
        return -1;
    r->b = b;
    r->len = len;
    r->off = SNAP_CHUNK_HDR;
    r->seq = keycodec_get_u32be(b + 6);
    r->nrec = keycodec_get_u32be(b + 10);
    return 0;
}

int snap_chunk_next(snap_chunk_reader *r, struct snap_record *rec)
{
    size_t left = r->len - r->off;
    if (left == 0)
        return r->seen == r->nrec ? 0 : -1;
    if (r->seen == r->nrec || left < SNAP_RECORD_HDR)
        return -1;
    const uint8_t *p = r->b + r->off;
    if (p[0] != SNAP_CF_DATA && p[0] != SNAP_CF_META)
        return -1;
    size_t kl = keycodec_get_u32be(p + 1);
    if (kl > left - SNAP_RECORD_HDR)
        return -1;
    size_t vl = keycodec_get_u32be(p + 5 + kl);
    if (vl > left - SNAP_RECORD_HDR - kl)
        return -1;
    rec->cf = p[0];
    rec->key = p + 5;
    rec->key_len = kl;
    rec->val = p + 9 + kl;
    rec->val_len = vl;
    r->off += SNAP_RECORD_HDR + kl + vl;
    r->seen++;
    return 1;
}
