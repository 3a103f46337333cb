/*
 * raftlog.c — the durable Raft log of every group in the node's RocksDB
 * (contract in raftlog.h, byte layout in docs/storage-format.md).
 *
 * Design notes.
 *
 * Keys live in ENGINE_CF_RAFT and start with a one-byte tag and the group id
 * as u64 big-endian, so all keys of one kind of one group are contiguous and
 * ordered by group (then by index for entries):
 *     'H' group            hard state        raft_hard_state_encode
 *     'L' group index      one log entry     raft_entry_encode
 *     'S' group            latest snapshot   version, index, term, conf,
 *                                            data length, data
 *     'T' group            compaction point  version, index, term, conf
 * Entries are read with an iterator bounded to [L g lo, L g hi), so a read
 * never looks at another group's keys (nor at a tombstone of one).
 *
 * RocksDB's C iterators here only go forward; the last index at open is
 * found by binary search on "is there an entry at or after i" (about 64
 * seeks whatever the log length), not by scanning the log.
 *
 * Invariants I1–I4 are stated in raftlog.h. Every stage function checks
 * all its preconditions before it queues anything, so a refused call leaves
 * the batch as it was; the cache is updated after the last queued
 * operation (see raftlog.h for why updating at stage time is safe).
 */
#include "raftlog.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keycodec.h"
#include "raft_codec.h"

#define TAG_HARD_STATE 'H'
#define TAG_LOG 'L'
#define TAG_SNAPSHOT 'S'
#define TAG_TRUNCATION 'T'

#define GKEY_LEN 9u  /* tag, group */
#define LKEY_LEN 17u /* 'L', group, index */

/* Version byte at the start of our own values ('T' and 'S'). */
#define VALUE_VERSION 1u
#define TRUNC_HDR 17u    /* version, index, term; then the conf */
#define ENTRY_HDR 22u    /* raft_entry_encode: version, term, index, type, len */

/* What the handle knows without reading RocksDB. */
struct rl_cache {
    uint64_t off_index; /* compaction point: first_index - 1 */
    uint64_t off_term;
    struct raft_conf off_conf;
    uint64_t last;
    uint64_t last_term;
    struct raft_hard_state hs;
    uint64_t snap_index;
    uint64_t snap_term;
    struct raft_conf snap_conf;
};

struct raftlog {
    engine *e;
    uint64_t group;
    bool dead; /* destroy staged: only raftlog_free is allowed */
    struct rl_cache c;
    uint8_t *buf; /* scratch for encoding values */
    size_t cap;
    char msg[OKV_ERRMSG_MAX];
};

/* ---- small helpers ------------------------------------------------------ */

static int fail(struct raftlog *rl, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct raftlog *rl, int code, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(rl->msg, sizeof(rl->msg), "raft group %llu: ",
                     (unsigned long long)rl->group);
    if (n < 0 || (size_t)n >= sizeof(rl->msg))
        return code;
    va_start(ap, fmt);
    vsnprintf(rl->msg + n, sizeof(rl->msg) - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

static int okv_code_of(int raft_rc)
{
    switch (raft_rc) {
    case RAFT_ERR_CORRUPT: return OKV_ECORRUPT;
    case RAFT_ERR_STORAGE: return OKV_EIO;
    case RAFT_ERR_UNAVAILABLE: return OKV_ENOTFOUND;
    case RAFT_ERR_INVALID: return OKV_EINVAL;
    case RAFT_ERR_NOMEM: return OKV_ENOMEM;
    default: return OKV_EINTERNAL;
    }
}

static void gkey(uint8_t k[GKEY_LEN], uint8_t tag, uint64_t group)
{
    k[0] = tag;
    keycodec_put_u64be(k + 1, group);
}

static void lkey(uint8_t k[LKEY_LEN], uint64_t group, uint64_t index)
{
    k[0] = TAG_LOG;
    keycodec_put_u64be(k + 1, group);
    keycodec_put_u64be(k + 9, index);
}

static int reserve(struct raftlog *rl, size_t n)
{
    if (n <= rl->cap)
        return 0;
    uint8_t *p = realloc(rl->buf, n);
    if (p == NULL)
        return fail(rl, RAFT_ERR_NOMEM, "out of memory (%zu bytes)", n);
    rl->buf = p;
    rl->cap = n;
    return 0;
}

static bool conf_sane(const struct raft_conf *c)
{
    return c->n_voters <= RAFT_MAX_NODES && c->n_learners <= RAFT_MAX_NODES &&
           c->n_voters + c->n_learners <= RAFT_MAX_NODES;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = v << 8 | p[k];
    return v;
}

/* Reads a group key. NOTFOUND is returned as RAFT_ERR_UNAVAILABLE so the
 * caller decides whether absence is corruption. */
static int get_gkey(struct raftlog *rl, uint8_t tag, char **val, size_t *len)
{
    uint8_t k[GKEY_LEN];
    okv_error err;
    gkey(k, tag, rl->group);
    int rc = engine_get(rl->e, ENGINE_CF_RAFT, k, sizeof(k), val, len, &err);
    if (rc == OKV_ENOTFOUND)
        return RAFT_ERR_UNAVAILABLE;
    if (rc != OKV_OK)
        return fail(rl, RAFT_ERR_STORAGE, "reading the '%c' key: %s", tag,
                    err.msg);
    return 0;
}

/* ---- value codecs ------------------------------------------------------- */

/* 'T' and the head of 'S': version u8, index u64be, term u64be, conf. */
static size_t encode_point(uint8_t *p, uint64_t index, uint64_t term,
                           const struct raft_conf *conf)
{
    size_t n = 0;
    p[0] = VALUE_VERSION;
    keycodec_put_u64be(p + 1, index);
    keycodec_put_u64be(p + 9, term);
    (void)raft_conf_encode(conf, p + TRUNC_HDR, raft_conf_encoded_size(conf),
                           &n);
    return TRUNC_HDR + n;
}

/* Decodes the head; *used gets its length. */
static bool decode_point(const uint8_t *p, size_t len, uint64_t *index,
                         uint64_t *term, struct raft_conf *conf, size_t *used)
{
    size_t n = 0;
    if (len < TRUNC_HDR || p[0] != VALUE_VERSION)
        return false;
    *index = keycodec_get_u64be(p + 1);
    *term = keycodec_get_u64be(p + 9);
    if (raft_conf_decode(p + TRUNC_HDR, len - TRUNC_HDR, conf, &n) != 0)
        return false;
    *used = TRUNC_HDR + n;
    return true;
}

/* 'S' value: the head, then data length u64be and the data. On success
 * *data points into p. */
static bool decode_snapshot(const uint8_t *p, size_t len,
                            struct raft_snapshot_meta *m,
                            const uint8_t **data, uint64_t *data_len)
{
    size_t used;
    if (!decode_point(p, len, &m->index, &m->term, &m->conf, &used))
        return false;
    if (len - used < 8)
        return false;
    *data_len = keycodec_get_u64be(p + used);
    used += 8;
    if (*data_len != (uint64_t)(len - used))
        return false;
    *data = p + used;
    return (m->index == 0) == (m->term == 0);
}

/* Stages the 'S' key. */
static int put_snapshot(struct raftlog *rl, engine_batch *b,
                        const struct raft_snapshot_meta *m, const void *data,
                        uint64_t len)
{
    uint8_t k[GKEY_LEN];
    size_t head = TRUNC_HDR + raft_conf_encoded_size(&m->conf);
    int rc = reserve(rl, head + 8 + (size_t)len);
    if (rc != 0)
        return rc;
    size_t n = encode_point(rl->buf, m->index, m->term, &m->conf);
    keycodec_put_u64be(rl->buf + n, len);
    n += 8;
    if (len > 0)
        memcpy(rl->buf + n, data, (size_t)len);
    n += (size_t)len;
    gkey(k, TAG_SNAPSHOT, rl->group);
    engine_batch_put(b, ENGINE_CF_RAFT, k, sizeof(k), rl->buf, n);
    return 0;
}

/* Stages the 'T' key (the scratch buffer is big enough: see callers). */
static void put_trunc(struct raftlog *rl, engine_batch *b, uint64_t index,
                      uint64_t term, const struct raft_conf *conf)
{
    uint8_t k[GKEY_LEN];
    uint8_t v[TRUNC_HDR + 8 + 8 * RAFT_MAX_NODES];
    size_t n = encode_point(v, index, term, conf);
    gkey(k, TAG_TRUNCATION, rl->group);
    engine_batch_put(b, ENGINE_CF_RAFT, k, sizeof(k), v, n);
}

static void put_hard_state(struct raftlog *rl, engine_batch *b,
                           const struct raft_hard_state *hs)
{
    uint8_t k[GKEY_LEN];
    uint8_t v[RAFT_HARD_STATE_SIZE];
    (void)raft_hard_state_encode(hs, v);
    gkey(k, TAG_HARD_STATE, rl->group);
    engine_batch_put(b, ENGINE_CF_RAFT, k, sizeof(k), v, sizeof(v));
}

/* Deletes the entry keys [lo, hi]. Many at once (a compaction drops up to
 * snapshot-entries of them) go as one range tombstone: a point delete per
 * entry cost a memtable insert each, and a compaction of 100,000 entries
 * stalled the loop for a tenth of a second. Reads of this column family
 * are rare (a lagging follower, a restart), so the few tombstones cost
 * them little. */
#define RANGE_DELETE_MIN 64
static void delete_entries(struct raftlog *rl, engine_batch *b, uint64_t lo,
                           uint64_t hi)
{
    uint8_t k[LKEY_LEN];
    if (hi >= lo && hi - lo >= RANGE_DELETE_MIN && hi < UINT64_MAX) {
        uint8_t end[LKEY_LEN];
        lkey(k, rl->group, lo);
        lkey(end, rl->group, hi + 1);
        engine_batch_delete_range(b, ENGINE_CF_RAFT, k, sizeof(k), end, sizeof(end));
        return;
    }
    for (uint64_t i = lo; i <= hi && i >= lo; i++) {
        lkey(k, rl->group, i);
        engine_batch_delete(b, ENGINE_CF_RAFT, k, sizeof(k));
    }
}

/* The term of a stored entry without copying its payload: checks the frame
 * of raft_entry_encode (codec.c: version u8, term u64le, index u64le, type
 * u8, len u32le, payload) and that the entry is the one its key names. */
static int peek_term(struct raftlog *rl, const uint8_t *v, size_t len,
                     uint64_t index, uint64_t *term)
{
    if (len < ENTRY_HDR || v[0] != RAFT_CODEC_VERSION || v[17] > 1 ||
        le64(v + 9) != index ||
        (uint64_t)v[18] + ((uint64_t)v[19] << 8) + ((uint64_t)v[20] << 16) +
                ((uint64_t)v[21] << 24) != (uint64_t)(len - ENTRY_HDR))
        return fail(rl, RAFT_ERR_CORRUPT,
                    "entry %llu: stored bytes do not decode",
                    (unsigned long long)index);
    *term = le64(v + 1);
    return 0;
}

/* Term of entry i, from the cache when it can. */
static int term_at(struct raftlog *rl, uint64_t i, uint64_t *term)
{
    uint8_t k[LKEY_LEN];
    okv_error err;
    char *v = NULL;
    size_t len = 0;

    *term = 0;
    if (i < rl->c.off_index)
        return RAFT_ERR_COMPACTED;
    if (i > rl->c.last)
        return RAFT_ERR_UNAVAILABLE;
    if (i == rl->c.off_index) {
        *term = rl->c.off_term;
        return 0;
    }
    if (i == rl->c.last) {
        *term = rl->c.last_term;
        return 0;
    }
    lkey(k, rl->group, i);
    int rc = engine_get(rl->e, ENGINE_CF_RAFT, k, sizeof(k), &v, &len, &err);
    if (rc == OKV_ENOTFOUND)
        return fail(rl, RAFT_ERR_CORRUPT, "entry %llu is missing (log %llu..%llu)",
                    (unsigned long long)i,
                    (unsigned long long)(rl->c.off_index + 1),
                    (unsigned long long)rl->c.last);
    if (rc != OKV_OK)
        return fail(rl, RAFT_ERR_STORAGE, "reading entry %llu: %s",
                    (unsigned long long)i, err.msg);
    rc = peek_term(rl, (const uint8_t *)v, len, i, term);
    free(v);
    return rc;
}

/* ---- loading the cache from disk ---------------------------------------- */

/* Finds the last entry at or after `first` by binary search on "some key
 * >= L g i exists"; the first stored entry must be exactly `first` (I1). */
static int load_last(struct raftlog *rl, struct rl_cache *c)
{
    uint8_t pfx[GKEY_LEN], k[LKEY_LEN];
    engine_iter *it = NULL;
    okv_error err;
    size_t klen, vlen;
    int rc;

    gkey(pfx, TAG_LOG, rl->group);
    if (engine_iter_new_prefix(&it, rl->e, ENGINE_CF_RAFT, pfx, sizeof(pfx),
                               &err) != OKV_OK)
        return fail(rl, RAFT_ERR_STORAGE, "opening a log iterator: %s",
                    err.msg);
    c->last = c->off_index;
    c->last_term = c->off_term;
    if (!engine_iter_valid(it))
        goto done;
    const uint8_t *key = (const uint8_t *)engine_iter_key(it, &klen);
    if (klen != LKEY_LEN || keycodec_get_u64be(key + 9) != c->off_index + 1) {
        rc = fail(rl, RAFT_ERR_CORRUPT,
                  "first stored entry is %llu, expected %llu",
                  klen == LKEY_LEN ? (unsigned long long)keycodec_get_u64be(key + 9) : 0ull,
                  (unsigned long long)(c->off_index + 1));
        engine_iter_free(it);
        return rc;
    }
    uint64_t lo = c->off_index + 1, hi = UINT64_MAX;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2 + 1;
        lkey(k, rl->group, mid);
        engine_iter_seek(it, k, sizeof(k));
        if (engine_iter_valid(it))
            lo = mid;
        else
            hi = mid - 1;
    }
    lkey(k, rl->group, lo);
    engine_iter_seek(it, k, sizeof(k));
    if (!engine_iter_valid(it))
        goto done; /* an iterator error: reported below */
    key = (const uint8_t *)engine_iter_key(it, &klen);
    const uint8_t *val = (const uint8_t *)engine_iter_value(it, &vlen);
    if (klen != LKEY_LEN || memcmp(key, k, LKEY_LEN) != 0) {
        engine_iter_free(it);
        return fail(rl, RAFT_ERR_CORRUPT, "malformed entry key near %llu",
                    (unsigned long long)lo);
    }
    rc = peek_term(rl, val, vlen, lo, &c->last_term);
    if (rc != 0) {
        engine_iter_free(it);
        return rc;
    }
    c->last = lo;
    if (c->last_term < c->off_term) {
        engine_iter_free(it);
        return fail(rl, RAFT_ERR_CORRUPT,
                    "last entry %llu has term %llu below the compaction "
                    "point's %llu",
                    (unsigned long long)lo, (unsigned long long)c->last_term,
                    (unsigned long long)c->off_term);
    }
done:
    if (engine_iter_status(it, &err) != OKV_OK) {
        engine_iter_free(it);
        return fail(rl, RAFT_ERR_STORAGE, "iterating the log: %s", err.msg);
    }
    engine_iter_free(it);
    return 0;
}

static int load(struct raftlog *rl, struct rl_cache *c)
{
    char *v = NULL;
    size_t len = 0, used = 0;
    const uint8_t *data;
    uint64_t data_len;
    struct raft_snapshot_meta m;
    int rc;

    memset(c, 0, sizeof(*c));
    rc = get_gkey(rl, TAG_TRUNCATION, &v, &len);
    if (rc == RAFT_ERR_UNAVAILABLE)
        return fail(rl, rc, "not stored on this node");
    if (rc != 0)
        return rc;
    bool ok = decode_point((const uint8_t *)v, len, &c->off_index,
                           &c->off_term, &c->off_conf, &used) && used == len;
    free(v);
    if (!ok)
        return fail(rl, RAFT_ERR_CORRUPT, "compaction point ('T') does not "
                                          "decode");

    rc = get_gkey(rl, TAG_HARD_STATE, &v, &len);
    if (rc == RAFT_ERR_UNAVAILABLE)
        return fail(rl, RAFT_ERR_CORRUPT, "hard state ('H') is missing");
    if (rc != 0)
        return rc;
    rc = raft_hard_state_decode((const uint8_t *)v, len, &c->hs);
    free(v);
    if (rc != 0)
        return fail(rl, RAFT_ERR_CORRUPT, "hard state ('H') does not decode");

    rc = get_gkey(rl, TAG_SNAPSHOT, &v, &len);
    if (rc == RAFT_ERR_UNAVAILABLE)
        return fail(rl, RAFT_ERR_CORRUPT, "snapshot ('S') is missing");
    if (rc != 0)
        return rc;
    ok = decode_snapshot((const uint8_t *)v, len, &m, &data, &data_len);
    free(v);
    if (!ok)
        return fail(rl, RAFT_ERR_CORRUPT, "snapshot ('S') does not decode");
    if (m.index < c->off_index) /* I3 */
        return fail(rl, RAFT_ERR_CORRUPT,
                    "snapshot index %llu is below the compaction point %llu",
                    (unsigned long long)m.index,
                    (unsigned long long)c->off_index);
    c->snap_index = m.index;
    c->snap_term = m.term;
    c->snap_conf = m.conf;
    return load_last(rl, c);
}

/* ---- lifecycle ---------------------------------------------------------- */

static struct raftlog *handle_new(engine *e, uint64_t group)
{
    struct raftlog *rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return NULL;
    rl->e = e;
    rl->group = group;
    return rl;
}

/* Hands a failure of a handle-less call to err and frees the handle. */
static int give_up(struct raftlog *rl, int rc, okv_error *err)
{
    okv_error_set(err, okv_code_of(rc), "%s", rl->msg);
    raftlog_free(rl);
    return rc;
}

int raftlog_create(struct raftlog **out, engine *e, uint64_t group,
                   const struct raft_conf *conf, engine_batch *b,
                   okv_error *err)
{
    char *v = NULL;
    size_t len = 0;
    struct raft_snapshot_meta m;

    okv_error_clear(err);
    *out = NULL;
    struct raftlog *rl = handle_new(e, group);
    if (rl == NULL) {
        okv_error_set(err, OKV_ENOMEM, "raft group %llu: out of memory",
                      (unsigned long long)group);
        return RAFT_ERR_NOMEM;
    }
    if (!conf_sane(conf))
        return give_up(rl, fail(rl, RAFT_ERR_INVALID,
                                "initial configuration has %u voters and %u "
                                "learners (at most %d members)",
                                conf->n_voters, conf->n_learners,
                                RAFT_MAX_NODES),
                       err);
    int rc = get_gkey(rl, TAG_TRUNCATION, &v, &len);
    free(v);
    if (rc == 0)
        return give_up(rl, fail(rl, RAFT_ERR_INVALID, "already exists"), err);
    if (rc != RAFT_ERR_UNAVAILABLE)
        return give_up(rl, rc, err);

    memset(&m, 0, sizeof(m));
    m.conf = *conf;
    rc = put_snapshot(rl, b, &m, NULL, 0);
    if (rc != 0)
        return give_up(rl, rc, err);
    put_trunc(rl, b, 0, 0, conf);
    memset(&rl->c, 0, sizeof(rl->c));
    put_hard_state(rl, b, &rl->c.hs);
    rl->c.off_conf = *conf;
    rl->c.snap_conf = *conf;
    *out = rl;
    return 0;
}

int raftlog_open(struct raftlog **out, engine *e, uint64_t group,
                 okv_error *err)
{
    okv_error_clear(err);
    *out = NULL;
    struct raftlog *rl = handle_new(e, group);
    if (rl == NULL) {
        okv_error_set(err, OKV_ENOMEM, "raft group %llu: out of memory",
                      (unsigned long long)group);
        return RAFT_ERR_NOMEM;
    }
    int rc = load(rl, &rl->c);
    if (rc != 0)
        return give_up(rl, rc, err);
    *out = rl;
    return 0;
}

int raftlog_reload(struct raftlog *rl)
{
    struct rl_cache c;
    if (rl->dead)
        return fail(rl, RAFT_ERR_INVALID, "destroyed");
    int rc = load(rl, &c);
    if (rc == 0)
        rl->c = c;
    return rc;
}

void raftlog_free(struct raftlog *rl)
{
    if (rl == NULL)
        return;
    free(rl->buf);
    free(rl);
}

int raftlog_destroy_stage(struct raftlog *rl, engine_batch *b)
{
    uint8_t k[GKEY_LEN];
    engine_iter *it = NULL;
    okv_error err;

    if (rl->dead)
        return fail(rl, RAFT_ERR_INVALID, "destroyed");
    /* Stored entries, including any stray one outside first..last, then
     * the range the cache knows (it may hold entries staged but unwritten). */
    gkey(k, TAG_LOG, rl->group);
    if (engine_iter_new_prefix(&it, rl->e, ENGINE_CF_RAFT, k, sizeof(k),
                               &err) != OKV_OK)
        return fail(rl, RAFT_ERR_STORAGE, "opening a log iterator: %s",
                    err.msg);
    for (; engine_iter_valid(it); engine_iter_next(it)) {
        size_t klen;
        const char *key = engine_iter_key(it, &klen);
        engine_batch_delete(b, ENGINE_CF_RAFT, key, klen);
    }
    int rc = engine_iter_status(it, &err);
    engine_iter_free(it);
    if (rc != OKV_OK)
        return fail(rl, RAFT_ERR_STORAGE, "iterating the log: %s", err.msg);
    if (rl->c.last > rl->c.off_index)
        delete_entries(rl, b, rl->c.off_index + 1, rl->c.last);
    const uint8_t tags[] = {TAG_HARD_STATE, TAG_SNAPSHOT, TAG_TRUNCATION};
    for (size_t t = 0; t < sizeof(tags); t++) {
        gkey(k, tags[t], rl->group);
        engine_batch_delete(b, ENGINE_CF_RAFT, k, sizeof(k));
    }
    rl->dead = true;
    return 0;
}

int raftlog_list_groups(engine *e, int (*fn)(void *ctx, uint64_t group),
                        void *ctx, okv_error *err)
{
    const uint8_t tag = TAG_TRUNCATION;
    engine_iter *it = NULL;
    int rc = 0;

    okv_error_clear(err);
    if (engine_iter_new_prefix(&it, e, ENGINE_CF_RAFT, &tag, 1, err) != OKV_OK)
        return RAFT_ERR_STORAGE;
    for (; engine_iter_valid(it); engine_iter_next(it)) {
        size_t klen;
        const uint8_t *key = (const uint8_t *)engine_iter_key(it, &klen);
        if (klen != GKEY_LEN) {
            okv_error_set(err, OKV_ECORRUPT,
                          "raft column family: a 'T' key of %zu bytes "
                          "(expected %u)", klen, GKEY_LEN);
            engine_iter_free(it);
            return RAFT_ERR_CORRUPT;
        }
        rc = fn(ctx, keycodec_get_u64be(key + 1));
        if (rc != 0)
            break;
    }
    if (rc == 0 && engine_iter_status(it, err) != OKV_OK)
        rc = RAFT_ERR_STORAGE;
    engine_iter_free(it);
    return rc;
}

/* ---- staged writes ------------------------------------------------------ */

int raftlog_stage_entries(struct raftlog *rl, engine_batch *b,
                          const struct raft_entry *ents, size_t n)
{
    uint8_t k[LKEY_LEN];
    size_t biggest = 0;

    if (rl->dead)
        return fail(rl, RAFT_ERR_INVALID, "destroyed");
    if (n == 0)
        return 0;
    uint64_t first = ents[0].index;
    if (first <= rl->c.off_index || first > rl->c.last + 1)
        return fail(rl, RAFT_ERR_INVALID,
                    "append at %llu outside (%llu, %llu]",
                    (unsigned long long)first,
                    (unsigned long long)rl->c.off_index,
                    (unsigned long long)(rl->c.last + 1));
    for (size_t j = 0; j < n; j++) {
        const struct raft_entry *e = &ents[j];
        if (e->index != first + j || e->type > RAFT_ENTRY_CONF ||
            (e->len > 0 && e->data == NULL) ||
            (j > 0 && e->term < ents[j - 1].term))
            return fail(rl, RAFT_ERR_INVALID,
                        "append: entry %zu (index %llu, term %llu) breaks "
                        "the run starting at %llu",
                        j, (unsigned long long)e->index,
                        (unsigned long long)e->term,
                        (unsigned long long)first);
        if (e->len > biggest)
            biggest = e->len;
    }
    int rc = reserve(rl, ENTRY_HDR + biggest);
    if (rc != 0)
        return rc;
    for (size_t j = 0; j < n; j++) {
        size_t len = 0;
        rc = raft_entry_encode(&ents[j], rl->buf, rl->cap, &len);
        if (rc != 0) /* cannot happen after the checks above */
            return fail(rl, RAFT_ERR_INVALID, "append: entry %llu does not "
                        "encode", (unsigned long long)ents[j].index);
        lkey(k, rl->group, ents[j].index);
        engine_batch_put(b, ENGINE_CF_RAFT, k, sizeof(k), rl->buf, len);
    }
    uint64_t new_last = first + n - 1;
    if (rl->c.last > new_last)
        delete_entries(rl, b, new_last + 1, rl->c.last); /* stale tail */
    rl->c.last = new_last;
    rl->c.last_term = ents[n - 1].term;
    return 0;
}

int raftlog_stage_hard_state(struct raftlog *rl, engine_batch *b,
                             const struct raft_hard_state *hs)
{
    if (rl->dead)
        return fail(rl, RAFT_ERR_INVALID, "destroyed");
    put_hard_state(rl, b, hs);
    rl->c.hs = *hs;
    return 0;
}

int raftlog_stage_snapshot(struct raftlog *rl, engine_batch *b,
                           const struct raft_snapshot *snap)
{
    const struct raft_snapshot_meta *m = &snap->meta;
    if (rl->dead)
        return fail(rl, RAFT_ERR_INVALID, "destroyed");
    if (!conf_sane(&m->conf) || (snap->len > 0 && snap->data == NULL) ||
        (m->index > 0 && m->term == 0))
        return fail(rl, RAFT_ERR_INVALID, "install: malformed snapshot at "
                    "%llu", (unsigned long long)m->index);
    int rc = put_snapshot(rl, b, m, snap->data, snap->len);
    if (rc != 0)
        return rc;
    if (rl->c.last > rl->c.off_index)
        delete_entries(rl, b, rl->c.off_index + 1, rl->c.last);
    put_trunc(rl, b, m->index, m->term, &m->conf);
    rl->c.off_index = rl->c.last = rl->c.snap_index = m->index;
    rl->c.off_term = rl->c.last_term = rl->c.snap_term = m->term;
    rl->c.off_conf = rl->c.snap_conf = m->conf;
    return 0;
}

int raftlog_stage_save_snapshot(struct raftlog *rl, engine_batch *b,
                                uint64_t index, const struct raft_conf *conf,
                                const void *data, uint64_t len)
{
    struct raft_snapshot_meta m;
    if (rl->dead)
        return fail(rl, RAFT_ERR_INVALID, "destroyed");
    if (index < rl->c.off_index || index > rl->c.last || !conf_sane(conf) ||
        (len > 0 && data == NULL))
        return fail(rl, RAFT_ERR_INVALID,
                    "snapshot at %llu: outside the log [%llu, %llu] or "
                    "malformed", (unsigned long long)index,
                    (unsigned long long)rl->c.off_index,
                    (unsigned long long)rl->c.last);
    if (index <= rl->c.snap_index)
        return 0; /* never go backwards */
    memset(&m, 0, sizeof(m));
    m.index = index;
    m.conf = *conf;
    int rc = term_at(rl, index, &m.term);
    if (rc != 0)
        return rc;
    rc = put_snapshot(rl, b, &m, data, len);
    if (rc != 0)
        return rc;
    rl->c.snap_index = index;
    rl->c.snap_term = m.term;
    rl->c.snap_conf = *conf;
    return 0;
}

int raftlog_stage_compact(struct raftlog *rl, engine_batch *b, uint64_t upto,
                          const struct raft_conf *conf)
{
    uint64_t term;
    if (rl->dead)
        return fail(rl, RAFT_ERR_INVALID, "destroyed");
    if (upto <= rl->c.off_index)
        return 0;
    if (upto > rl->c.snap_index || upto > rl->c.last)
        return fail(rl, RAFT_ERR_INVALID,
                    "compact to %llu: beyond the snapshot (%llu) or the log "
                    "(%llu)", (unsigned long long)upto,
                    (unsigned long long)rl->c.snap_index,
                    (unsigned long long)rl->c.last);
    if (conf == NULL) {
        if (upto != rl->c.snap_index)
            return fail(rl, RAFT_ERR_INVALID,
                        "compact to %llu without a configuration (only "
                        "allowed at the snapshot index %llu)",
                        (unsigned long long)upto,
                        (unsigned long long)rl->c.snap_index);
        conf = &rl->c.snap_conf;
    }
    if (!conf_sane(conf))
        return fail(rl, RAFT_ERR_INVALID, "compact: malformed configuration");
    int rc = term_at(rl, upto, &term);
    if (rc != 0)
        return rc;
    struct raft_conf keep = *conf; /* conf may point into the cache */
    delete_entries(rl, b, rl->c.off_index + 1, upto);
    put_trunc(rl, b, upto, term, &keep);
    rl->c.off_index = upto;
    rl->c.off_term = term;
    rl->c.off_conf = keep;
    return 0;
}

/* ---- introspection ------------------------------------------------------ */

uint64_t raftlog_group(const struct raftlog *rl)
{
    return rl->group;
}

uint64_t raftlog_first_index(const struct raftlog *rl)
{
    return rl->c.off_index + 1;
}

uint64_t raftlog_last_index(const struct raftlog *rl)
{
    return rl->c.last;
}

uint64_t raftlog_snapshot_index(const struct raftlog *rl)
{
    return rl->c.snap_index;
}

void raftlog_hard_state(const struct raftlog *rl, struct raft_hard_state *out)
{
    *out = rl->c.hs;
}

const char *raftlog_errmsg(const struct raftlog *rl)
{
    return rl->msg;
}

/* ---- raft_storage_ops --------------------------------------------------- */

static int rl_initial_state(void *ctx, struct raft_hard_state *hs,
                            struct raft_conf *conf)
{
    struct raftlog *rl = ctx;
    *hs = rl->c.hs;
    *conf = rl->c.off_conf;
    return 0;
}

static void free_entries(struct raft_entry *v, size_t n)
{
    for (size_t j = 0; j < n; j++)
        free(v[j].data);
    free(v);
}

/* Entries [lo, hi), at most max_bytes of payload but at least one entry;
 * the iterator is bounded to exactly those keys. */
static int rl_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                      struct raft_entry **out, size_t *n_out)
{
    struct raftlog *rl = ctx;
    uint8_t klo[LKEY_LEN], khi[LKEY_LEN];
    engine_iter *it = NULL;
    okv_error err;
    uint64_t bytes = 0, want = lo;
    size_t n = 0, cap;
    int rc = 0;

    *out = NULL;
    *n_out = 0;
    if (lo <= rl->c.off_index)
        return RAFT_ERR_COMPACTED;
    if (hi > rl->c.last + 1 || lo >= hi)
        return RAFT_ERR_UNAVAILABLE;
    cap = hi - lo < 64 ? (size_t)(hi - lo) : 64;
    struct raft_entry *v = malloc(cap * sizeof(*v));
    if (v == NULL)
        return fail(rl, RAFT_ERR_NOMEM, "out of memory");
    lkey(klo, rl->group, lo);
    lkey(khi, rl->group, hi);
    if (engine_iter_new(&it, rl->e, ENGINE_CF_RAFT, klo, sizeof(klo), khi,
                        sizeof(khi), &err) != OKV_OK) {
        free(v);
        return fail(rl, RAFT_ERR_STORAGE, "opening a log iterator: %s",
                    err.msg);
    }
    for (; engine_iter_valid(it); engine_iter_next(it), want++) {
        size_t klen, vlen;
        struct raft_entry e;
        const uint8_t *key = (const uint8_t *)engine_iter_key(it, &klen);
        const uint8_t *val = (const uint8_t *)engine_iter_value(it, &vlen);
        if (klen != LKEY_LEN || keycodec_get_u64be(key + 9) != want) {
            rc = fail(rl, RAFT_ERR_CORRUPT, "entry %llu is missing",
                      (unsigned long long)want);
            break;
        }
        rc = raft_entry_decode(val, vlen, &e);
        if (rc == RAFT_ERR_NOMEM) {
            rc = fail(rl, rc, "out of memory");
            break;
        }
        if (rc != 0 || e.index != want) {
            free(e.data);
            rc = fail(rl, RAFT_ERR_CORRUPT,
                      "entry %llu: stored bytes do not decode",
                      (unsigned long long)want);
            break;
        }
        if (n > 0 && bytes + e.len > max_bytes) {
            free(e.data);
            break;
        }
        if (n == cap) {
            struct raft_entry *nv = realloc(v, 2 * cap * sizeof(*v));
            if (nv == NULL) {
                free(e.data);
                rc = fail(rl, RAFT_ERR_NOMEM, "out of memory");
                break;
            }
            v = nv;
            cap *= 2;
        }
        bytes += e.len;
        v[n++] = e;
    }
    if (rc == 0 && engine_iter_status(it, &err) != OKV_OK)
        rc = fail(rl, RAFT_ERR_STORAGE, "iterating the log: %s", err.msg);
    if (rc == 0 && !engine_iter_valid(it) && want < hi)
        rc = fail(rl, RAFT_ERR_CORRUPT, "entry %llu is missing",
                  (unsigned long long)want);
    engine_iter_free(it);
    if (rc != 0) {
        free_entries(v, n);
        return rc;
    }
    *out = v;
    *n_out = n;
    return 0;
}

static int rl_term(void *ctx, uint64_t i, uint64_t *term)
{
    return term_at(ctx, i, term);
}

static int rl_first_index(void *ctx, uint64_t *out)
{
    *out = raftlog_first_index(ctx);
    return 0;
}

static int rl_last_index(void *ctx, uint64_t *out)
{
    *out = raftlog_last_index(ctx);
    return 0;
}

static int rl_snapshot(void *ctx, struct raft_snapshot *out)
{
    struct raftlog *rl = ctx;
    char *v = NULL;
    size_t len = 0;
    const uint8_t *data;
    uint64_t data_len;

    memset(out, 0, sizeof(*out));
    int rc = get_gkey(rl, TAG_SNAPSHOT, &v, &len);
    if (rc == RAFT_ERR_UNAVAILABLE)
        return fail(rl, RAFT_ERR_CORRUPT, "snapshot ('S') is missing");
    if (rc != 0)
        return rc;
    if (!decode_snapshot((const uint8_t *)v, len, &out->meta, &data,
                         &data_len)) {
        free(v);
        memset(out, 0, sizeof(*out));
        return fail(rl, RAFT_ERR_CORRUPT, "snapshot ('S') does not decode");
    }
    if (data_len > 0) {
        out->data = malloc((size_t)data_len);
        if (out->data == NULL) {
            free(v);
            memset(out, 0, sizeof(*out));
            return fail(rl, RAFT_ERR_NOMEM, "out of memory");
        }
        memcpy(out->data, data, (size_t)data_len);
    }
    out->len = data_len;
    free(v);
    return 0;
}

const struct raft_storage_ops raftlog_ops = {
    rl_initial_state, rl_entries,    rl_term,
    rl_first_index,   rl_last_index, rl_snapshot,
};
