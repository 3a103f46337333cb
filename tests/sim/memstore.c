/*
 * memstore.c — in-memory raft storage (see memstore.h).
 */
#include <stdlib.h>
#include <string.h>

#include "memstore.h"
#include "raft_codec.h"

static void *xmalloc(size_t n)
{
    void *p = malloc(n > 0 ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

void memstore_init(struct memstore *ms, const struct raft_conf *conf)
{
    memset(ms, 0, sizeof(*ms));
    ms->snap.meta.conf = *conf;
    ms->off_conf = *conf;
}

void memstore_close(struct memstore *ms)
{
    for (size_t k = 0; k < ms->n; k++)
        free(ms->ents[k].data);
    free(ms->ents);
    free(ms->snap.data);
    memset(ms, 0, sizeof(*ms));
}

uint64_t memstore_last_index(const struct memstore *ms)
{
    return ms->off_index + ms->n;
}

int memstore_term(const struct memstore *ms, uint64_t i, uint64_t *term)
{
    *term = 0;
    if (i < ms->off_index)
        return RAFT_ERR_COMPACTED;
    if (i > memstore_last_index(ms))
        return RAFT_ERR_UNAVAILABLE;
    *term = i == ms->off_index ? ms->off_term
                               : ms->ents[i - ms->off_index - 1].term;
    return 0;
}

static int ms_initial_state(void *ctx, struct raft_hard_state *hs,
                            struct raft_conf *conf)
{
    struct memstore *ms = ctx;
    *hs = ms->hs;
    *conf = ms->off_conf;
    return 0;
}

static int ms_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                      struct raft_entry **out, size_t *n_out)
{
    struct memstore *ms = ctx;
    uint64_t bytes = 0;
    size_t n = 0;

    *out = NULL;
    *n_out = 0;
    if (lo <= ms->off_index)
        return RAFT_ERR_COMPACTED;
    if (hi > memstore_last_index(ms) + 1 || lo >= hi)
        return RAFT_ERR_UNAVAILABLE;
    struct raft_entry *v = xmalloc((size_t)(hi - lo) * sizeof(*v));
    for (uint64_t i = lo; i < hi; i++) {
        const struct raft_entry *e = &ms->ents[i - ms->off_index - 1];
        if (n > 0 && bytes + e->len > max_bytes)
            break;
        bytes += e->len;
        v[n] = *e;
        v[n].data = NULL;
        if (e->len > 0) {
            v[n].data = xmalloc(e->len);
            memcpy(v[n].data, e->data, e->len);
        }
        n++;
    }
    *out = v;
    *n_out = n;
    return 0;
}

static int ms_term(void *ctx, uint64_t i, uint64_t *term)
{
    return memstore_term(ctx, i, term);
}

static int ms_first_index(void *ctx, uint64_t *out)
{
    const struct memstore *ms = ctx;
    *out = ms->off_index + 1;
    return 0;
}

static int ms_last_index(void *ctx, uint64_t *out)
{
    *out = memstore_last_index(ctx);
    return 0;
}

static int ms_snapshot(void *ctx, struct raft_snapshot *out)
{
    struct memstore *ms = ctx;
    if (ms->snapshot_temp_failures > 0) {
        ms->snapshot_temp_failures--;
        memset(out, 0, sizeof(*out));
        return RAFT_ERR_SNAPSHOT_TEMP;
    }
    *out = ms->snap;
    out->data = NULL;
    if (ms->snap.len > 0) {
        out->data = xmalloc((size_t)ms->snap.len);
        memcpy(out->data, ms->snap.data, (size_t)ms->snap.len);
    }
    return 0;
}

const struct raft_storage_ops memstore_ops = {
    ms_initial_state, ms_entries, ms_term,
    ms_first_index,   ms_last_index, ms_snapshot,
};

static void set_snap(struct memstore *ms, const struct raft_snapshot_meta *m,
                     const void *data, uint64_t len)
{
    free(ms->snap.data);
    ms->snap.meta = *m;
    ms->snap.len = len;
    ms->snap.data = NULL;
    if (len > 0) {
        ms->snap.data = xmalloc((size_t)len);
        memcpy(ms->snap.data, data, (size_t)len);
    }
}

void memstore_install_snapshot(struct memstore *ms,
                               const struct raft_snapshot *snap)
{
    for (size_t k = 0; k < ms->n; k++)
        free(ms->ents[k].data);
    ms->n = 0;
    ms->off_index = snap->meta.index;
    ms->off_term = snap->meta.term;
    ms->off_conf = snap->meta.conf;
    set_snap(ms, &snap->meta, snap->data, snap->len);
}

void memstore_append(struct memstore *ms, const struct raft_entry *ents,
                     size_t n)
{
    if (n == 0)
        return;
    uint64_t first = ents[0].index;
    if (first <= ms->off_index)
        abort(); /* the core never rewrites compacted entries */
    if (first > memstore_last_index(ms) + 1)
        abort(); /* gap: the core hands entries contiguously */
    size_t keep = (size_t)(first - ms->off_index - 1);
    for (size_t k = keep; k < ms->n; k++)
        free(ms->ents[k].data);
    ms->n = keep;
    if (ms->n + n > ms->cap) {
        size_t cap = ms->cap == 0 ? 64 : ms->cap;
        while (cap < ms->n + n)
            cap *= 2;
        struct raft_entry *v = realloc(ms->ents, cap * sizeof(*v));
        if (v == NULL)
            abort();
        ms->ents = v;
        ms->cap = cap;
    }
    for (size_t k = 0; k < n; k++) {
        struct raft_entry *e = &ms->ents[ms->n++];
        *e = ents[k];
        e->data = NULL;
        if (ents[k].len > 0) {
            e->data = xmalloc(ents[k].len);
            memcpy(e->data, ents[k].data, ents[k].len);
        }
    }
}

void memstore_set_hard_state(struct memstore *ms,
                             const struct raft_hard_state *hs)
{
    ms->hs = *hs;
}

void memstore_compact_to_snapshot(struct memstore *ms)
{
    uint64_t to = ms->snap.meta.index;
    uint64_t t;
    if (to <= ms->off_index)
        return;
    (void)memstore_term(ms, to, &t);
    size_t drop = (size_t)(to - ms->off_index);
    for (size_t k = 0; k < drop; k++)
        free(ms->ents[k].data);
    memmove(ms->ents, ms->ents + drop, (ms->n - drop) * sizeof(*ms->ents));
    ms->n -= drop;
    ms->off_index = to;
    ms->off_term = t;
    ms->off_conf = ms->snap.meta.conf;
}

void memstore_create_snapshot(struct memstore *ms, uint64_t index,
                              const struct raft_conf *conf,
                              const void *data, uint64_t len)
{
    struct raft_snapshot_meta m;
    if (index > memstore_last_index(ms) || index < ms->off_index)
        abort();
    if (index <= ms->snap.meta.index)
        return; /* never go backwards */
    memstore_compact_to_snapshot(ms);
    memset(&m, 0, sizeof(m));
    m.index = index;
    (void)memstore_term(ms, index, &m.term);
    m.conf = *conf;
    set_snap(ms, &m, data, len);
}
