/*
 * engine_mem.c — engine.h and engine_sst.h over memory, for the node
 * simulator (engine_mem.h has the crash model M1-M4).
 *
 * Design notes
 * ------------
 * Each disk holds two states of every column family: `cur`, what a running
 * node reads, and `dur`, what survives a power cut. Unsynced batches are
 * applied to cur at once and kept, as copies of their records, in `pending`;
 * a synced write or an ingest replays pending into dur in order and clears
 * it (M3, M4); a crash replays a prefix of pending into dur and makes cur a
 * copy of dur (M1, M2). A column family is a sorted array: the simulator's
 * partitions hold hundreds of keys, where a memmove beats a tree.
 *
 * Iterators and snapshots copy what they cover when they are made: RocksDB's
 * iterators see one consistent state while writes go on, and so do these.
 */
#include "engine.h"
#include "engine_batch_int.h"
#include "engine_mem.h"
#include "engine_sst.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct kv {
    char *k, *v;
    size_t kl, vl;
} kv;

typedef struct kvmap {
    kv *a;
    size_t n, cap;
} kvmap;

typedef struct pending_batch {
    uint8_t *buf;
    size_t len;
} pending_batch;

struct engine_mem_disk {
    char *dir;
    kvmap cur[ENGINE_CF_COUNT], dur[ENGINE_CF_COUNT];
    pending_batch *pending;
    size_t n_pending, cap_pending;
    int open;
    int fail_syncs;
    unsigned long syncs;
    engine_mem_disk *next;
};

struct engine {
    engine_mem_disk *d;
};

struct engine_iter {
    kvmap m;          /* owned copy of what the bounds cover */
    size_t pos;
    char *lower, *upper;
    size_t lower_len, upper_len;
    int has_upper;
};

struct engine_snapshot {
    kvmap m[ENGINE_CF_COUNT];
};

struct engine_sst {
    FILE *f;
    char *path;
    char *last;
    size_t last_len;
    int has_last;
};

static engine_mem_disk *disks;   /* every live disk; single-threaded */

static void die_oom(void)
{
    fprintf(stderr, "engine_mem: out of memory\n");
    abort();
}

static char *dup_bytes(const void *p, size_t len)
{
    char *c = malloc(len ? len : 1);
    if (!c)
        die_oom();
    if (len)
        memcpy(c, p, len);
    return c;
}

/* ---- sorted maps ---------------------------------------------------------- */

/* Index of the first entry >= key. */
static size_t lower_bound(const kvmap *m, const void *key, size_t kl)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (engine_key_cmp(m->a[mid].k, m->a[mid].kl, key, kl) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int found(const kvmap *m, size_t i, const void *key, size_t kl)
{
    return i < m->n && engine_key_cmp(m->a[i].k, m->a[i].kl, key, kl) == 0;
}

static void map_put(kvmap *m, const void *key, size_t kl, const void *val, size_t vl)
{
    size_t i = lower_bound(m, key, kl);
    if (found(m, i, key, kl)) {
        free(m->a[i].v);
        m->a[i].v = dup_bytes(val, vl);
        m->a[i].vl = vl;
        return;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        kv *a = realloc(m->a, cap * sizeof *a);
        if (!a)
            die_oom();
        m->a = a;
        m->cap = cap;
    }
    if (i < m->n)
        memmove(m->a + i + 1, m->a + i, (m->n - i) * sizeof *m->a);
    m->a[i].k = dup_bytes(key, kl);
    m->a[i].kl = kl;
    m->a[i].v = dup_bytes(val, vl);
    m->a[i].vl = vl;
    m->n++;
}

static void drop_range(kvmap *m, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        free(m->a[i].k);
        free(m->a[i].v);
    }
    if (to < m->n)
        memmove(m->a + from, m->a + to, (m->n - to) * sizeof *m->a);
    m->n -= to - from;
}

static void map_del(kvmap *m, const void *key, size_t kl)
{
    size_t i = lower_bound(m, key, kl);
    if (found(m, i, key, kl))
        drop_range(m, i, i + 1);
}

static void map_del_range(kvmap *m, const void *b, size_t bl, const void *e, size_t el)
{
    size_t from = lower_bound(m, b, bl), to = lower_bound(m, e, el);
    if (from < to)
        drop_range(m, from, to);
}

static void map_clear(kvmap *m)
{
    drop_range(m, 0, m->n);
}

static void map_free(kvmap *m)
{
    map_clear(m);
    free(m->a);
    memset(m, 0, sizeof *m);
}

/* Copies the entries of src with lower <= k < upper (upper NULL: no bound). */
static void map_copy_range(kvmap *dst, const kvmap *src, const void *lower, size_t ll,
                           const void *upper, size_t ul)
{
    memset(dst, 0, sizeof *dst);
    size_t from = lower ? lower_bound(src, lower, ll) : 0;
    size_t to = upper ? lower_bound(src, upper, ul) : src->n;
    if (to <= from)
        return;
    dst->a = malloc((to - from) * sizeof *dst->a);
    if (!dst->a)
        die_oom();
    dst->cap = to - from;
    for (size_t i = from; i < to; i++) {
        kv *x = &dst->a[dst->n++];
        x->k = dup_bytes(src->a[i].k, src->a[i].kl);
        x->kl = src->a[i].kl;
        x->v = dup_bytes(src->a[i].v, src->a[i].vl);
        x->vl = src->a[i].vl;
    }
}

static void apply_records(kvmap *maps, const uint8_t *buf, size_t len)
{
    engine_batch_rec r;
    for (size_t off = 0; engine_batch_rec_next(buf, len, &off, &r);) {
        kvmap *m = &maps[r.cf];
        if (r.op == BATCH_OP_PUT)
            map_put(m, r.key, r.key_len, r.val, r.val_len);
        else if (r.op == BATCH_OP_DELETE_RANGE)
            map_del_range(m, r.key, r.key_len, r.val, r.val_len);
        else
            map_del(m, r.key, r.key_len);
    }
}

/* ---- the disk ------------------------------------------------------------- */

int engine_mem_disk_new(engine_mem_disk **out, const char *dir, okv_error *err)
{
    okv_error_clear(err);
    engine_mem_disk *d = calloc(1, sizeof *d);
    if (!d)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    d->dir = dup_bytes(dir, strlen(dir) + 1);
    d->next = disks;
    disks = d;
    *out = d;
    return OKV_OK;
}

static void drop_pending(engine_mem_disk *d, size_t from)
{
    for (size_t i = from; i < d->n_pending; i++)
        free(d->pending[i].buf);
    d->n_pending = from;
}

void engine_mem_disk_free(engine_mem_disk *d)
{
    if (!d)
        return;
    for (engine_mem_disk **p = &disks; *p; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            break;
        }
    for (int c = 0; c < ENGINE_CF_COUNT; c++) {
        map_free(&d->cur[c]);
        map_free(&d->dur[c]);
    }
    drop_pending(d, 0);
    free(d->pending);
    free(d->dir);
    free(d);
}

size_t engine_mem_disk_unsynced(const engine_mem_disk *d)
{
    return d->n_pending;
}

unsigned long engine_mem_disk_syncs(const engine_mem_disk *d)
{
    return d->syncs;
}

void engine_mem_disk_fail_syncs(engine_mem_disk *d, int n)
{
    d->fail_syncs = n;
}

/* M3/M4: everything written so far becomes durable. */
static void make_durable(engine_mem_disk *d)
{
    for (size_t i = 0; i < d->n_pending; i++)
        apply_records(d->dur, d->pending[i].buf, d->pending[i].len);
    drop_pending(d, 0);
    d->syncs++;
}

void engine_mem_disk_crash(engine_mem_disk *d, size_t keep)
{
    if (d->open) {
        fprintf(stderr, "engine_mem: crash of %s while an engine is open on it\n", d->dir);
        abort();
    }
    if (keep > d->n_pending)
        keep = d->n_pending;
    for (size_t i = 0; i < keep; i++)
        apply_records(d->dur, d->pending[i].buf, d->pending[i].len);
    drop_pending(d, 0);
    for (int c = 0; c < ENGINE_CF_COUNT; c++) {
        map_free(&d->cur[c]);
        map_copy_range(&d->cur[c], &d->dur[c], NULL, 0, NULL, 0);
    }
}

/* ---- engine.h --------------------------------------------------------------- */

int engine_open(engine **out, const char *dir, const engine_options *opts, okv_error *err)
{
    (void)opts;
    okv_error_clear(err);
    *out = NULL;
    engine_mem_disk *d = disks;
    while (d && strcmp(d->dir, dir) != 0)
        d = d->next;
    if (!d)
        return okv_error_set(err, OKV_EIO, "data dir %s: no simulated disk there", dir);
    if (d->open)
        return okv_error_set(err, OKV_EIO, "data dir %s is in use by another engine", dir);
    engine *e = calloc(1, sizeof *e);
    if (!e)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    e->d = d;
    d->open = 1;
    *out = e;
    return OKV_OK;
}

void engine_close(engine *e)
{
    if (!e)
        return;
    e->d->open = 0;
    free(e);
}

const char *engine_dir(const engine *e)
{
    return e->d->dir;
}

int engine_property_uint(engine *e, enum engine_cf cf, const char *name, uint64_t *out)
{
    (void)e;
    (void)cf;
    (void)name;
    *out = 0;
    return OKV_ENOTFOUND;
}

int engine_get(engine *e, enum engine_cf cf, const void *key, size_t key_len, char **val_out,
               size_t *len_out, okv_error *err)
{
    okv_error_clear(err);
    *val_out = NULL;
    *len_out = 0;
    if (!engine_cf_ok(cf))
        return okv_error_set(err, OKV_EINVAL, "engine_get: bad column family %d", (int)cf);
    const kvmap *m = &e->d->cur[cf];
    size_t i = lower_bound(m, key, key_len);
    if (!found(m, i, key, key_len))
        return okv_error_set(err, OKV_ENOTFOUND, "key not found");
    *val_out = dup_bytes(m->a[i].v, m->a[i].vl);
    *len_out = m->a[i].vl;
    return OKV_OK;
}

int engine_write(engine *e, engine_batch *b, int sync, okv_error *err)
{
    okv_error_clear(err);
    engine_mem_disk *d = e->d;
    if (b->error)
        return okv_error_set(err, b->error, "data dir %s: batch not written: %s while it was "
                             "being built", d->dir,
                             b->error == OKV_ENOMEM ? "out of memory" : "a bad column family");
    if (sync && d->fail_syncs > 0) {
        d->fail_syncs--;
        return okv_error_set(err, OKV_EIO, "data dir %s: write batch: IO error: fsync failed "
                             "(simulated)", d->dir);
    }
    if (b->len == 0 && !sync)
        return OKV_OK;
    apply_records(d->cur, b->buf, b->len);
    if (d->n_pending == d->cap_pending) {
        size_t cap = d->cap_pending ? d->cap_pending * 2 : 16;
        pending_batch *p = realloc(d->pending, cap * sizeof *p);
        if (!p)
            die_oom();
        d->pending = p;
        d->cap_pending = cap;
    }
    d->pending[d->n_pending].buf = (uint8_t *)dup_bytes(b->buf, b->len);
    d->pending[d->n_pending].len = b->len;
    d->n_pending++;
    if (sync)
        make_durable(d);
    return OKV_OK;
}

static int write_one(engine *e, int op, enum engine_cf cf, const void *key, size_t key_len,
                     const void *val, size_t val_len, int sync, okv_error *err)
{
    okv_error_clear(err);
    if (!engine_cf_ok(cf))
        return okv_error_set(err, OKV_EINVAL, "bad column family %d", (int)cf);
    engine_batch *b = engine_batch_new();
    if (!b)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    if (op == BATCH_OP_PUT)
        engine_batch_put(b, cf, key, key_len, val, val_len);
    else
        engine_batch_delete(b, cf, key, key_len);
    int rc = engine_write(e, b, sync, err);
    engine_batch_free(b);
    return rc;
}

int engine_put(engine *e, enum engine_cf cf, const void *key, size_t key_len, const void *val,
               size_t val_len, int sync, okv_error *err)
{
    return write_one(e, BATCH_OP_PUT, cf, key, key_len, val, val_len, sync, err);
}

int engine_delete(engine *e, enum engine_cf cf, const void *key, size_t key_len, int sync,
                  okv_error *err)
{
    return write_one(e, BATCH_OP_DELETE, cf, key, key_len, NULL, 0, sync, err);
}

/* ---- iterators ---------------------------------------------------------------- */

static int iter_over(engine_iter **out, const kvmap *src, const void *lower, size_t lower_len,
                     const void *upper, size_t upper_len, okv_error *err)
{
    engine_iter *it = calloc(1, sizeof *it);
    if (!it)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    if (lower && lower_len) {
        it->lower = dup_bytes(lower, lower_len);
        it->lower_len = lower_len;
    }
    if (upper) {
        it->upper = dup_bytes(upper, upper_len);
        it->upper_len = upper_len;
        it->has_upper = 1;
    }
    map_copy_range(&it->m, src, it->lower, it->lower_len, it->has_upper ? it->upper : NULL,
                   it->upper_len);
    *out = it;
    return OKV_OK;
}

int engine_iter_new(engine_iter **out, engine *e, enum engine_cf cf, const void *lower,
                    size_t lower_len, const void *upper, size_t upper_len, okv_error *err)
{
    okv_error_clear(err);
    *out = NULL;
    if (!engine_cf_ok(cf))
        return okv_error_set(err, OKV_EINVAL, "engine_iter_new: bad column family %d", (int)cf);
    return iter_over(out, &e->d->cur[cf], lower, lower_len, upper, upper_len, err);
}

static int prefix_bounds(const void *prefix, size_t prefix_len, uint8_t **succ, size_t *succ_len,
                         okv_error *err)
{
    if (!prefix || prefix_len == 0)
        return okv_error_set(err, OKV_EINVAL, "engine_iter_new_prefix: empty prefix");
    *succ = malloc(prefix_len);
    if (!*succ)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    *succ_len = engine_prefix_successor(prefix, prefix_len, *succ);
    return OKV_OK;
}

int engine_iter_new_prefix(engine_iter **out, engine *e, enum engine_cf cf, const void *prefix,
                           size_t prefix_len, okv_error *err)
{
    okv_error_clear(err);
    *out = NULL;
    uint8_t *succ;
    size_t succ_len;
    int rc = prefix_bounds(prefix, prefix_len, &succ, &succ_len, err);
    if (rc)
        return rc;
    rc = engine_iter_new(out, e, cf, prefix, prefix_len, succ_len ? succ : NULL, succ_len, err);
    free(succ);
    return rc;
}

void engine_iter_free(engine_iter *it)
{
    if (!it)
        return;
    map_free(&it->m);
    free(it->lower);
    free(it->upper);
    free(it);
}

int engine_iter_valid(const engine_iter *it)
{
    return it->pos < it->m.n;
}

void engine_iter_next(engine_iter *it)
{
    if (it->pos < it->m.n)
        it->pos++;
}

void engine_iter_seek(engine_iter *it, const void *key, size_t key_len)
{
    it->pos = lower_bound(&it->m, key, key_len);
}

const char *engine_iter_key(const engine_iter *it, size_t *len_out)
{
    if (it->pos >= it->m.n) {
        *len_out = 0;
        return NULL;
    }
    *len_out = it->m.a[it->pos].kl;
    return it->m.a[it->pos].k;
}

const char *engine_iter_value(const engine_iter *it, size_t *len_out)
{
    if (it->pos >= it->m.n) {
        *len_out = 0;
        return NULL;
    }
    *len_out = it->m.a[it->pos].vl;
    return it->m.a[it->pos].v;
}

int engine_iter_status(const engine_iter *it, okv_error *err)
{
    (void)it;
    okv_error_clear(err);
    return OKV_OK;
}

/* ---- engine_sst.h -------------------------------------------------------------- */

int engine_snapshot_new(engine_snapshot **out, engine *e, okv_error *err)
{
    okv_error_clear(err);
    engine_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return okv_error_set(err, OKV_ENOMEM, "out of memory taking a snapshot");
    for (int c = 0; c < ENGINE_CF_COUNT; c++)
        map_copy_range(&s->m[c], &e->d->cur[c], NULL, 0, NULL, 0);
    *out = s;
    return OKV_OK;
}

void engine_snapshot_free(engine_snapshot *s)
{
    if (!s)
        return;
    for (int c = 0; c < ENGINE_CF_COUNT; c++)
        map_free(&s->m[c]);
    free(s);
}

int engine_iter_new_prefix_at(engine_iter **out, engine_snapshot *s, enum engine_cf cf,
                              const void *prefix, size_t prefix_len, okv_error *err)
{
    okv_error_clear(err);
    *out = NULL;
    if (!engine_cf_ok(cf))
        return okv_error_set(err, OKV_EINVAL, "bad column family %d", (int)cf);
    uint8_t *succ;
    size_t succ_len;
    int rc = prefix_bounds(prefix, prefix_len, &succ, &succ_len, err);
    if (rc)
        return rc;
    rc = iter_over(out, &s->m[cf], prefix, prefix_len, succ_len ? succ : NULL, succ_len, err);
    free(succ);
    return rc;
}

/* The file: records in the batch layout (engine_batch_int.h), written as
 * they come; the column family is the ingest's. */
static int sst_record(engine_sst *w, int op, const void *k, size_t kl, const void *v, size_t vl,
                      okv_error *err)
{
    uint8_t h[BATCH_REC_HEADER];
    uint32_t k32 = (uint32_t)kl, v32 = (uint32_t)vl;
    h[0] = (uint8_t)op;
    h[1] = 0;
    memcpy(h + 2, &k32, 4);
    memcpy(h + 6, &v32, 4);
    if (fwrite(h, 1, sizeof h, w->f) != sizeof h || (kl && fwrite(k, 1, kl, w->f) != kl) ||
        (vl && fwrite(v, 1, vl, w->f) != vl))
        return okv_error_set(err, OKV_EIO, "write %s failed", w->path);
    return OKV_OK;
}

int engine_sst_new(engine_sst **out, engine *e, enum engine_cf cf, const char *path,
                   okv_error *err)
{
    (void)e;
    okv_error_clear(err);
    *out = NULL;
    if (!engine_cf_ok(cf))
        return okv_error_set(err, OKV_EINVAL, "bad column family %d", (int)cf);
    engine_sst *w = calloc(1, sizeof *w);
    if (!w)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    w->path = dup_bytes(path, strlen(path) + 1);
    if (!(w->f = fopen(path, "wb"))) {
        okv_error_set(err, OKV_EIO, "cannot create %s", path);
        engine_sst_free(w);
        return OKV_EIO;
    }
    *out = w;
    return OKV_OK;
}

int engine_sst_delete_range(engine_sst *w, const void *begin, size_t begin_len, const void *end,
                            size_t end_len, okv_error *err)
{
    okv_error_clear(err);
    return sst_record(w, BATCH_OP_DELETE_RANGE, begin, begin_len, end, end_len, err);
}

int engine_sst_put(engine_sst *w, const void *key, size_t key_len, const void *val,
                   size_t val_len, okv_error *err)
{
    okv_error_clear(err);
    if (w->has_last && engine_key_cmp(w->last, w->last_len, key, key_len) >= 0)
        return okv_error_set(err, OKV_EINVAL, "Invalid argument: keys must be added in strict "
                             "ascending order (%s)", w->path);
    free(w->last);
    w->last = dup_bytes(key, key_len);
    w->last_len = key_len;
    w->has_last = 1;
    return sst_record(w, BATCH_OP_PUT, key, key_len, val, val_len, err);
}

int engine_sst_finish(engine_sst *w, uint64_t *size_out, okv_error *err)
{
    okv_error_clear(err);
    long size = ftell(w->f);
    int bad = fclose(w->f) != 0;
    w->f = NULL;
    if (bad || size < 0)
        return okv_error_set(err, OKV_EIO, "finish %s failed", w->path);
    if (size_out)
        *size_out = (uint64_t)size;
    return OKV_OK;
}

void engine_sst_free(engine_sst *w)
{
    if (!w)
        return;
    if (w->f)
        fclose(w->f);
    free(w->path);
    free(w->last);
    free(w);
}

static int read_file(const char *path, uint8_t **buf, size_t *len, okv_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return okv_error_set(err, OKV_ENOTFOUND, "NotFound: %s", path);
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    if (!b)
        die_oom();
    size_t got;
    while ((got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            uint8_t *nb = realloc(b, cap);
            if (!nb)
                die_oom();
            b = nb;
        }
    }
    fclose(f);
    *buf = b;
    *len = n;
    return OKV_OK;
}

int engine_ingest(engine *e, enum engine_cf cf, const char *path, okv_error *err)
{
    okv_error_clear(err);
    if (!engine_cf_ok(cf))
        return okv_error_set(err, OKV_EINVAL, "bad column family %d", (int)cf);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len, err);
    if (rc)
        return rc;
    /* The whole file is checked before any of it applies: a cut or
     * damaged file is refused, never half ingested. */
    for (size_t off = 0; off < len;) {
        uint32_t kl, vl;
        if (len - off < BATCH_REC_HEADER)
            goto corrupt;
        memcpy(&kl, buf + off + 2, 4);
        memcpy(&vl, buf + off + 6, 4);
        if ((uint64_t)len - off - BATCH_REC_HEADER < (uint64_t)kl + vl)
            goto corrupt;
        off += BATCH_REC_HEADER + (size_t)kl + vl;
    }
    engine_mem_disk *d = e->d;
    make_durable(d);   /* M4 */
    /* A range deletion never deletes the file's own keys: all of them
     * first, then the puts. */
    for (int pass = 0; pass < 2; pass++) {
        engine_batch_rec r;
        for (size_t off = 0; engine_batch_rec_next(buf, len, &off, &r);) {
            if (pass == 0 && r.op == BATCH_OP_DELETE_RANGE) {
                map_del_range(&d->cur[cf], r.key, r.key_len, r.val, r.val_len);
                map_del_range(&d->dur[cf], r.key, r.key_len, r.val, r.val_len);
            } else if (pass == 1 && r.op == BATCH_OP_PUT) {
                map_put(&d->cur[cf], r.key, r.key_len, r.val, r.val_len);
                map_put(&d->dur[cf], r.key, r.key_len, r.val, r.val_len);
            }
        }
    }
    free(buf);
    return OKV_OK;
corrupt:
    free(buf);
    return okv_error_set(err, OKV_ECORRUPT, "Corruption: truncated file %s", path);
}
