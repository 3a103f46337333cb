#include "fsm.h"

#include "failpoint.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "keycodec.h"
#include "range_digest.h"
#include "tpc.h"
#include "txn.h"

/* Meta-CF keys of the state machine:
 *   'A' u64-BE group                          -> u64-BE applied index
 *   'D' u64-BE group u64-BE client u64-BE req -> command result (command.h)
 *   'W' u64-BE group u64-BE client            -> u64-BE watermark: the client
 *        promised never to retry a request id below it
 *   'T' u64-BE group 'L' user key             -> lock (tpc.h)
 *   'T' u64-BE group 'P' u64-BE client u64-BE req -> participant record (tpc.h)
 *   'T' u64-BE group 'C' u64-BE client u64-BE req -> coordinator record (tpc.h)
 *   'T' u64-BE group 'R' u64-BE client u64-BE req -> the transaction's range
 *        locks (tpc.h, tpc_rlock_covers)
 *   'T' u64-BE group 'N' u64-BE 0 u64-BE 0    -> u64-BE number of 'R' records of
 *        the group; absent when none (every write reads it: one point read)
 */
#define WATERMARK_KEY_LEN 17
#define APPLIED_KEY_LEN 9
#define DEDUP_KEY_LEN 25
#define TPC_REC_KEY_LEN FSM_TPC_REC_KEY_LEN
#define TPC_LOCK_PREFIX_LEN 10

/* Overlay: the batch's latest value per key, so later entries in the same
 * batch read what earlier ones wrote (invariant 5). Open addressing; it
 * grows, and is emptied at every flush. It is also what the flush writes:
 * one put or delete per key, whatever number of entries touched it (a
 * client's watermark moves with each of its requests; written per request
 * it was a memtable insert per put on every node), in key order (RocksDB's
 * skip list then reuses the previous insert's position for the levels the
 * next key shares with it). */
typedef struct ov_slot {
    uint8_t *key;          /* cf byte + key; NULL = empty slot */
    size_t key_len;
    uint8_t *val;          /* NULL = deleted */
    size_t val_len;
    uint64_t hash;
} ov_slot;

#define APPLIED_SLOTS 64

#define RL_SLOTS 256

static size_t rl_slot(uint64_t group)
{
    return (size_t)((group * 0x9E3779B97F4A7C15ull) >> 56);   /* 256 slots */
}

struct fsm {
    engine *e;
    engine_batch *b;
    /* Applied index per group since the last flush, written once at the
     * flush (same batch as the data, so invariant 1 holds). */
    uint64_t applied_group[APPLIED_SLOTS];
    uint64_t applied_index[APPLIED_SLOTS];
    size_t napplied;
    ov_slot *slots;
    size_t cap, used;
    int oom;               /* a stage ran out of memory: the flush fails */
    /* Groups known to hold no range lock (their 'N' record absent), so a
     * write skips reading it: direct-mapped by group, filled when a read
     * finds it absent, dropped when this fsm stages an 'N' write for the
     * group, and all dropped when a batch is thrown away or a snapshot is
     * ingested behind the fsm's back (fsm_forget_range_locks). */
    uint64_t norl_group[RL_SLOTS];
    uint8_t norl_known[RL_SLOTS];
};

uint64_t fsm_group_id(uint32_t table_id, uint32_t partition)
{
    return ((uint64_t)table_id << 32) | partition;
}

int fsm_new(fsm **out, engine *e, okv_error *err)
{
    *out = NULL;
    fsm *f = calloc(1, sizeof *f);
    if (!f || !(f->b = engine_batch_new()) || !(f->slots = calloc(1024, sizeof *f->slots))) {
        if (f)
            engine_batch_free(f->b);
        free(f);
        return okv_error_set(err, OKV_ENOMEM, "out of memory creating the state machine");
    }
    f->e = e;
    f->cap = 1024;
    *out = f;
    return OKV_OK;
}

static void ov_clear(fsm *f)
{
    for (size_t i = 0; i < f->cap; i++) {
        free(f->slots[i].key);
        free(f->slots[i].val);
    }
    memset(f->slots, 0, f->cap * sizeof *f->slots);
    f->used = 0;
}

void fsm_free(fsm *f)
{
    if (!f)
        return;
    f->napplied = 0;   /* staged, unflushed work is dropped */
    ov_clear(f);
    free(f->slots);
    engine_batch_free(f->b);
    free(f);
}

static ov_slot *ov_find(fsm *f, const uint8_t *k, size_t klen, uint64_t h)
{
    size_t i = (size_t)h & (f->cap - 1);
    while (f->slots[i].key) {
        ov_slot *s = &f->slots[i];
        if (s->hash == h && s->key_len == klen && memcmp(s->key, k, klen) == 0)
            return s;
        i = (i + 1) & (f->cap - 1);
    }
    return &f->slots[i];
}

static int ov_grow(fsm *f)
{
    size_t ncap = f->cap * 2;
    ov_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    ov_slot *old = f->slots;
    size_t ocap = f->cap;
    f->slots = ns;
    f->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key)
            *ov_find(f, old[i].key, old[i].key_len, old[i].hash) = old[i];
    free(old);
    return 0;
}

/* Key of the overlay: the column family byte, then the storage key. */
static size_t ov_key(uint8_t *buf, enum engine_cf cf, const uint8_t *k, size_t klen)
{
    buf[0] = (uint8_t)cf;
    memcpy(buf + 1, k, klen);
    return klen + 1;
}

static int stage_oom(fsm *f, okv_error *err)
{
    f->oom = 1;
    return okv_error_set(err, OKV_ENOMEM, "out of memory applying an entry");
}

/* Stages a put (val != NULL) or delete in the overlay. */
static int stage(fsm *f, enum engine_cf cf, const uint8_t *k, size_t klen, const uint8_t *val,
                 size_t vlen, okv_error *err)
{
    if (f->used * 2 >= f->cap && ov_grow(f))
        return stage_oom(f, err);
    uint8_t okey[1 + KEYCODEC_DATA_PREFIX_LEN + OKV_MAX_KEY_LEN + DEDUP_KEY_LEN];
    size_t olen = ov_key(okey, cf, k, klen);
    uint64_t h = okv_hash64(okey, olen);
    ov_slot *s = ov_find(f, okey, olen, h);
    uint8_t *nv = NULL;
    if (val) {
        nv = malloc(vlen ? vlen : 1);
        if (!nv)
            return stage_oom(f, err);
        memcpy(nv, val, vlen);
    }
    if (!s->key) {
        s->key = malloc(olen);
        if (!s->key) {
            free(nv);
            return stage_oom(f, err);
        }
        memcpy(s->key, okey, olen);
        s->key_len = olen;
        s->hash = h;
        f->used++;
    }
    free(s->val);
    s->val = nv;
    s->val_len = vlen;
    return OKV_OK;
}

/* Reads through the overlay. OKV_ENOTFOUND if absent; *val malloc'd. */
static int read_key(fsm *f, enum engine_cf cf, const uint8_t *k, size_t klen, uint8_t **val,
                    size_t *vlen, okv_error *err)
{
    uint8_t okey[1 + KEYCODEC_DATA_PREFIX_LEN + OKV_MAX_KEY_LEN + DEDUP_KEY_LEN];
    size_t olen = ov_key(okey, cf, k, klen);
    ov_slot *s = ov_find(f, okey, olen, okv_hash64(okey, olen));
    if (s->key) {
        if (!s->val)
            return OKV_ENOTFOUND;
        *val = malloc(s->val_len + 1);
        if (!*val)
            return okv_error_set(err, OKV_ENOMEM, "out of memory");
        memcpy(*val, s->val, s->val_len);
        *vlen = s->val_len;
        return OKV_OK;
    }
    char *raw = NULL;
    int rc = engine_get(f->e, cf, k, klen, &raw, vlen, err);
    *val = (uint8_t *)raw;
    return rc;
}

void fsm_meta_prefix(uint8_t out[FSM_META_PREFIX_LEN], char tag, uint64_t group)
{
    out[0] = (uint8_t)tag;
    keycodec_put_u64be(out + 1, group);
}

static void applied_key(uint8_t out[APPLIED_KEY_LEN], uint64_t group)
{
    fsm_meta_prefix(out, 'A', group);
}

static void dedup_key(uint8_t out[DEDUP_KEY_LEN], uint64_t group, uint64_t client, uint64_t req)
{
    out[0] = 'D';
    keycodec_put_u64be(out + 1, group);
    keycodec_put_u64be(out + 9, client);
    keycodec_put_u64be(out + 17, req);
}

static void stage_applied(fsm *f, uint64_t group, uint64_t index)
{
    uint8_t k[APPLIED_KEY_LEN], v[8];
    applied_key(k, group);
    keycodec_put_u64be(v, index);
    /* Cannot fail but for memory; f->oom remembers that and the flush
     * reports it, so the error is not lost. */
    (void)stage(f, ENGINE_CF_META, k, sizeof k, v, sizeof v, NULL);
}

static void stage_all_applied(fsm *f)
{
    for (size_t i = 0; i < f->napplied; i++)
        stage_applied(f, f->applied_group[i], f->applied_index[i]);
    f->napplied = 0;
}

void fsm_set_applied(fsm *f, uint64_t group, uint64_t index)
{
    for (size_t i = 0; i < f->napplied; i++) {
        if (f->applied_group[i] == group) {
            f->applied_index[i] = index;
            return;
        }
    }
    if (f->napplied == APPLIED_SLOTS)
        stage_all_applied(f);   /* many groups in one batch: write some now */
    f->applied_group[f->napplied] = group;
    f->applied_index[f->napplied] = index;
    f->napplied++;
}

int fsm_applied_index(fsm *f, uint64_t group, uint64_t *out, okv_error *err)
{
    for (size_t i = 0; i < f->napplied; i++) {
        if (f->applied_group[i] == group) {
            *out = f->applied_index[i];
            return OKV_OK;
        }
    }
    uint8_t k[APPLIED_KEY_LEN];
    applied_key(k, group);
    uint8_t *v = NULL;
    size_t vlen = 0;
    int rc = read_key(f, ENGINE_CF_META, k, sizeof k, &v, &vlen, err);
    if (rc == OKV_ENOTFOUND) {
        *out = 0;
        return OKV_OK;
    }
    if (rc)
        return rc;
    int bad = vlen != 8;
    if (!bad)
        *out = keycodec_get_u64be(v);
    free(v);
    return bad ? okv_error_set(err, OKV_ECORRUPT, "applied index of group %llu is %zu bytes",
                               (unsigned long long)group, vlen)
               : OKV_OK;
}

/* Current version of a data key (0 if absent). */
static int current_version(fsm *f, const uint8_t *dkey, size_t dlen, uint64_t *version,
                           okv_error *err)
{
    uint8_t *raw = NULL;
    size_t rlen = 0;
    int rc = read_key(f, ENGINE_CF_DATA, dkey, dlen, &raw, &rlen, err);
    *version = 0;
    if (rc == OKV_ENOTFOUND)
        return OKV_OK;
    if (rc)
        return rc;
    const uint8_t *v;
    size_t vl;
    int bad = keycodec_value_decode(raw, rlen, version, &v, &vl);
    free(raw);
    return bad ? okv_error_set(err, OKV_ECORRUPT, "stored value with a bad header") : OKV_OK;
}

static void watermark_key(uint8_t out[WATERMARK_KEY_LEN], uint64_t group, uint64_t client)
{
    out[0] = 'W';
    keycodec_put_u64be(out + 1, group);
    keycodec_put_u64be(out + 9, client);
}

static int stored_watermark(fsm *f, uint64_t group, uint64_t client, uint64_t *w, okv_error *err)
{
    uint8_t k[WATERMARK_KEY_LEN];
    watermark_key(k, group, client);
    uint8_t *v = NULL;
    size_t vlen = 0;
    *w = 0;
    int rc = read_key(f, ENGINE_CF_META, k, sizeof k, &v, &vlen, err);
    if (rc == OKV_ENOTFOUND)
        return OKV_OK;
    if (rc)
        return rc;
    int bad = vlen != 8;
    if (!bad)
        *w = keycodec_get_u64be(v);
    free(v);
    return bad ? okv_error_set(err, OKV_ECORRUPT, "watermark record with a bad format") : OKV_OK;
}

/* Deletes the client's dedup records for request ids [from, to) in group:
 * those already in RocksDB and those staged in this batch, one point delete
 * each. Not a range tombstone: RocksDB 7.8 re-fragments every range
 * tombstone of a memtable on each point read of that column family, so a
 * tombstone per step made every apply's dedup lookup slower until the next
 * flush (perf: a tenth of a node's time during 256-client puts). */
static int drop_dedup_records(fsm *f, uint64_t group, uint64_t client, uint64_t from,
                              uint64_t to, okv_error *err)
{
    uint8_t lo[DEDUP_KEY_LEN], hi[DEDUP_KEY_LEN];
    dedup_key(lo, group, client, from);
    dedup_key(hi, group, client, to);
    engine_iter *it;
    int rc = engine_iter_new(&it, f->e, ENGINE_CF_META, lo, sizeof lo, hi, sizeof hi, err);
    if (rc)
        return rc;
    for (; engine_iter_valid(it) && rc == OKV_OK; engine_iter_next(it)) {
        size_t kl;
        const char *k = engine_iter_key(it, &kl);
        rc = stage(f, ENGINE_CF_META, (const uint8_t *)k, kl, NULL, 0, err);
    }
    if (rc == OKV_OK)
        rc = engine_iter_status(it, err);
    engine_iter_free(it);
    /* Staged ones: collected first, as staging may grow the table. */
    uint8_t (*keys)[DEDUP_KEY_LEN] = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < f->cap && rc == OKV_OK; i++) {
        const ov_slot *sl = &f->slots[i];
        if (!sl->key || !sl->val || sl->key_len != 1 + DEDUP_KEY_LEN ||
            sl->key[0] != (uint8_t)ENGINE_CF_META || memcmp(sl->key + 1, lo, sizeof lo) < 0 ||
            memcmp(sl->key + 1, hi, sizeof hi) >= 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            void *nk = realloc(keys, ncap * sizeof *keys);
            if (!nk) {
                rc = okv_error_set(err, OKV_ENOMEM, "out of memory applying an entry");
                break;
            }
            keys = nk;
            cap = ncap;
        }
        memcpy(keys[n++], sl->key + 1, DEDUP_KEY_LEN);
    }
    for (size_t i = 0; i < n && rc == OKV_OK; i++)
        rc = stage(f, ENGINE_CF_META, keys[i], DEDUP_KEY_LEN, NULL, 0, err);
    free(keys);
    return rc;
}

/* Raises the client's watermark and drops the dedup records below the last
 * FSM_DEDUP_GC_STEP boundary it passed (invariant 4). A request below the
 * stored watermark is refused without effect, so dropping its record can
 * never let it apply twice; records between the boundary and the
 * watermark wait for the next step. */
static int raise_watermark(fsm *f, uint64_t group, const command *c, uint64_t stored,
                           okv_error *err)
{
    if (c->watermark <= stored)
        return OKV_OK;
    uint8_t k[WATERMARK_KEY_LEN], v[8];
    watermark_key(k, group, c->client_id);
    keycodec_put_u64be(v, c->watermark);
    int rc = stage(f, ENGINE_CF_META, k, sizeof k, v, sizeof v, err);
    if (rc)
        return rc;
    uint64_t from = stored - stored % FSM_DEDUP_GC_STEP;
    uint64_t to = c->watermark - c->watermark % FSM_DEDUP_GC_STEP;
    if (to > from)
        return drop_dedup_records(f, group, c->client_id, from, to, err);
    return OKV_OK;
}

/* ---- two-phase commit's records (tpc.h) --------------------------------- */

static size_t lock_key(uint8_t *out, uint64_t group, const uint8_t *key, size_t key_len)
{
    fsm_meta_prefix(out, 'T', group);
    out[FSM_META_PREFIX_LEN] = 'L';
    if (key_len)
        memcpy(out + TPC_LOCK_PREFIX_LEN, key, key_len);
    return TPC_LOCK_PREFIX_LEN + key_len;
}

void fsm_tpc_rec_key(uint8_t out[FSM_TPC_REC_KEY_LEN], uint64_t group, char kind,
                     uint64_t client, uint64_t req)
{
    fsm_meta_prefix(out, 'T', group);
    out[FSM_META_PREFIX_LEN] = (uint8_t)kind;
    keycodec_put_u64be(out + 10, client);
    keycodec_put_u64be(out + 18, req);
}

static void tpc_rec_key(uint8_t out[TPC_REC_KEY_LEN], uint64_t group, char kind,
                        const tpc_id *id)
{
    fsm_tpc_rec_key(out, group, kind, id->client, id->req);
}

/* The lock on a key as this batch sees it: OKV_OK, OKV_ENOTFOUND or an error. */
static int lock_read(fsm *f, uint64_t group, const uint8_t *key, size_t key_len,
                     uint8_t *mode, tpc_id *holder, okv_error *err)
{
    uint8_t k[TPC_LOCK_PREFIX_LEN + OKV_MAX_KEY_LEN];
    size_t kl = lock_key(k, group, key, key_len);
    uint8_t *v = NULL;
    size_t vl = 0;
    int rc = read_key(f, ENGINE_CF_META, k, kl, &v, &vl, err);
    if (rc)
        return rc;
    int bad = tpc_lock_decode(v, vl, mode, holder);
    free(v);
    return bad ? okv_error_set(err, OKV_ECORRUPT, "lock record with a bad format") : OKV_OK;
}

int fsm_lock_get(engine *e, uint32_t table_id, uint32_t partition, const uint8_t *key,
                 size_t key_len, uint8_t *mode, uint64_t *holder_client, uint64_t *holder_req,
                 okv_error *err)
{
    uint8_t k[TPC_LOCK_PREFIX_LEN + OKV_MAX_KEY_LEN];
    size_t kl = lock_key(k, fsm_group_id(table_id, partition), key, key_len);
    char *v = NULL;
    size_t vl = 0;
    int rc = engine_get(e, ENGINE_CF_META, k, kl, &v, &vl, err);
    if (rc)
        return rc;
    tpc_id h;
    int bad = tpc_lock_decode((const uint8_t *)v, vl, mode, &h);
    free(v);
    if (bad)
        return okv_error_set(err, OKV_ECORRUPT, "lock record with a bad format");
    *holder_client = h.client;
    *holder_req = h.req;
    return OKV_OK;
}

int fsm_lock_first(engine *e, uint32_t table_id, uint32_t partition, const uint8_t *lower,
                   size_t lower_len, const uint8_t *upper, size_t upper_len, int has_upper,
                   uint64_t *holder_client, uint64_t *holder_req, okv_error *err)
{
    uint64_t group = fsm_group_id(table_id, partition);
    uint8_t lo[TPC_LOCK_PREFIX_LEN + OKV_MAX_KEY_LEN], hi[TPC_LOCK_PREFIX_LEN + OKV_MAX_KEY_LEN];
    size_t ll = lock_key(lo, group, lower, lower_len), hl;
    if (has_upper) {
        hl = lock_key(hi, group, upper, upper_len);
    } else {
        uint8_t p[TPC_LOCK_PREFIX_LEN];
        lock_key(p, group, NULL, 0);
        hl = keycodec_prefix_successor(p, sizeof p, hi);
    }
    engine_iter *it;
    int rc = engine_iter_new(&it, e, ENGINE_CF_META, lo, ll, hi, hl, err);
    if (rc)
        return rc;
    rc = OKV_ENOTFOUND;
    for (; engine_iter_valid(it); engine_iter_next(it)) {
        size_t vl;
        const uint8_t *v = (const uint8_t *)engine_iter_value(it, &vl);
        uint8_t mode;
        tpc_id h;
        if (tpc_lock_decode(v, vl, &mode, &h) == 0 && mode == TPC_LOCK_EXCLUSIVE) {
            *holder_client = h.client;
            *holder_req = h.req;
            rc = OKV_OK;
            break;
        }
    }
    if (rc == OKV_ENOTFOUND && engine_iter_status(it, err) != OKV_OK)
        rc = err ? err->code : OKV_EIO;
    engine_iter_free(it);
    return rc;
}

static int range_locked(fsm *f, uint64_t group, const uint8_t *key, size_t key_len);

/* 1 when a lock stops a write (any lock, or a range lock over the key) or
 * a read-only condition (an exclusive one) of a transaction that holds
 * none. A read error counts as locked: the entry then fails retryably
 * instead of ignoring a lock. */
static int key_locked(fsm *f, uint64_t group, const uint8_t *key, size_t key_len, int write)
{
    uint8_t mode;
    tpc_id holder;
    int rc = lock_read(f, group, key, key_len, &mode, &holder, NULL);
    if (rc == OKV_ENOTFOUND)
        return write && range_locked(f, group, key, key_len);
    return rc != OKV_OK || write || mode == TPC_LOCK_EXCLUSIVE;
}

static int apply_write(fsm *f, uint64_t index, const command *c, command_result *out,
                       okv_error *err)
{
    uint8_t dkey[KEYCODEC_DATA_PREFIX_LEN + OKV_MAX_KEY_LEN];
    size_t dlen = keycodec_data_key(dkey, c->table_id, c->partition, c->key, c->key_len);
    if (key_locked(f, fsm_group_id(c->table_id, c->partition), c->key, c->key_len, 1)) {
        /* A prepared transaction will write or has checked this key: the
         * write waits for its decision. Nothing applied and no dedup
         * record, so the client's resend is evaluated afresh. */
        out->code = OKV_EUNAVAILABLE;
        return OKV_OK;
    }
    /* Only deletes report whether the key existed and only conditions
     * compare versions: a plain put needs no read. */
    uint64_t cur = 0;
    int rc;
    if (c->op == CMD_DELETE || c->check_version) {
        if ((rc = current_version(f, dkey, dlen, &cur, err)))
            return rc;
    }
    out->existed = cur != 0;
    if (c->check_version && cur != c->expected_version) {
        out->code = OKV_ECONFLICT;
        out->version = 0;
        return OKV_OK;
    }
    out->code = OKV_OK;
    out->version = index;
    if (c->op == CMD_DELETE)
        return stage(f, ENGINE_CF_DATA, dkey, dlen, NULL, 0, err);
    uint8_t *val = malloc(KEYCODEC_VALUE_HEADER_LEN + c->value_len);
    if (!val)
        return okv_error_set(err, OKV_ENOMEM, "out of memory applying an entry");
    keycodec_value_header(val, index);
    if (c->value_len)
        memcpy(val + KEYCODEC_VALUE_HEADER_LEN, c->value, c->value_len);
    rc = stage(f, ENGINE_CF_DATA, dkey, dlen, val, KEYCODEC_VALUE_HEADER_LEN + c->value_len, err);
    free(val);
    return rc;
}

/* ---- transactions in one partition (txn.h) ---------------------------- */

typedef struct txn_ctx {
    fsm *f;
    uint64_t group;
} txn_ctx;

static int txn_locked(void *ctx, const txn_key *k, int write)
{
    txn_ctx *t = ctx;
    /* Planted bug (jepsen bank): a condition ignores an exclusive lock, so
     * a read-only check passes on a key whose new value is committed but
     * not yet resolved here. */
    if (!write && OKV_FAILPOINT("txn.check.ignore_locks"))
        return 0;
    return key_locked(t->f, t->group, k->key, k->key_len, write);
}

static int txn_stage_read(void *ctx, const txn_key *k, uint8_t **val, size_t *val_len,
                    uint64_t *version, okv_error *err)
{
    txn_ctx *t = ctx;
    return fsm_get(t->f, k->table_id, k->partition, k->key, k->key_len, val, val_len, version,
                   err);
}

static int txn_stage_write(void *ctx, const txn_key *k, const uint8_t *val, size_t val_len,
                     uint64_t version, okv_error *err)
{
    txn_ctx *t = ctx;
    uint8_t dkey[KEYCODEC_DATA_PREFIX_LEN + OKV_MAX_KEY_LEN];
    size_t dlen = keycodec_data_key(dkey, k->table_id, k->partition, k->key, k->key_len);
    if (!val)
        return stage(t->f, ENGINE_CF_DATA, dkey, dlen, NULL, 0, err);
    uint8_t *v = malloc(KEYCODEC_VALUE_HEADER_LEN + val_len);
    if (!v)
        return okv_error_set(err, OKV_ENOMEM, "out of memory applying a transaction");
    keycodec_value_header(v, version);
    if (val_len)
        memcpy(v + KEYCODEC_VALUE_HEADER_LEN, val, val_len);
    int rc = stage(t->f, ENGINE_CF_DATA, dkey, dlen, v, KEYCODEC_VALUE_HEADER_LEN + val_len, err);
    free(v);
    return rc;
}

/* ---- range conditions (txn.h TXN_COND_RANGE) ------------------------------ */

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

typedef struct ov_hit {
    const uint8_t *key;          /* the storage key (no column family byte) */
    size_t key_len;
    const uint8_t *val;          /* NULL: staged delete */
    size_t val_len;
} ov_hit;

static int hit_cmp(const void *x, const void *y)
{
    const ov_hit *a = x, *b = y;
    return key_cmp(a->key, a->key_len, b->key, b->key_len);
}

typedef int (*walk_fn)(void *arg, const uint8_t *key, size_t key_len, const uint8_t *val,
                       size_t val_len);

/* Calls fn, in key order, for every record of cf in [lo, hi) as this batch
 * sees it: RocksDB with what the batch staged laid over it (a staged put
 * wins, a staged delete hides). fn returning non-zero stops the walk. The
 * staged records are found by going through the whole overlay: range
 * conditions are rare, and the overlay holds one batch. */
static int walk(fsm *f, enum engine_cf cf, const uint8_t *lo, size_t lo_len, const uint8_t *hi,
                size_t hi_len, walk_fn fn, void *arg, okv_error *err)
{
    ov_hit *hits = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < f->cap; i++) {
        const ov_slot *sl = &f->slots[i];
        if (!sl->key || sl->key[0] != (uint8_t)cf)
            continue;
        const uint8_t *k = sl->key + 1;
        size_t kl = sl->key_len - 1;
        if (key_cmp(k, kl, lo, lo_len) < 0 || key_cmp(k, kl, hi, hi_len) >= 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            ov_hit *nh = realloc(hits, cap * sizeof *nh);
            if (!nh) {
                free(hits);
                return okv_error_set(err, OKV_ENOMEM, "out of memory walking a range");
            }
            hits = nh;
        }
        hits[n++] = (ov_hit){ k, kl, sl->val, sl->val_len };
    }
    if (n > 1)
        qsort(hits, n, sizeof *hits, hit_cmp);
    engine_iter *it;
    int rc = engine_iter_new(&it, f->e, cf, lo, lo_len, hi, hi_len, err);
    size_t h = 0;
    for (int stop = 0; rc == OKV_OK && !stop;) {
        int on_disk = engine_iter_valid(it);
        if (!on_disk && h == n)
            break;
        size_t ekl = 0, evl = 0;
        const uint8_t *ek = on_disk ? (const uint8_t *)engine_iter_key(it, &ekl) : NULL;
        int c = !on_disk ? 1 : h == n ? -1 : key_cmp(ek, ekl, hits[h].key, hits[h].key_len);
        if (c < 0) {
            const uint8_t *ev = (const uint8_t *)engine_iter_value(it, &evl);
            stop = fn(arg, ek, ekl, ev, evl);
            engine_iter_next(it);
            continue;
        }
        if (hits[h].val)
            stop = fn(arg, hits[h].key, hits[h].key_len, hits[h].val, hits[h].val_len);
        if (c == 0)
            engine_iter_next(it);
        h++;
    }
    if (rc == OKV_OK && engine_iter_status(it, err) != OKV_OK)
        rc = err && err->code ? err->code : OKV_EIO;
    engine_iter_free(it);
    free(hits);
    return rc;
}

typedef struct range_sum {
    uint64_t count, digest;
    int bad;
} range_sum;

static int sum_key(void *arg, const uint8_t *key, size_t key_len, const uint8_t *val,
                   size_t val_len)
{
    range_sum *r = arg;
    uint64_t version;
    const uint8_t *v;
    size_t vl;
    if (keycodec_value_decode(val, val_len, &version, &v, &vl) != 0) {
        r->bad = 1;
        return 1;
    }
    r->count++;
    r->digest = okv_range_digest_add(r->digest, key + KEYCODEC_DATA_PREFIX_LEN,
                                     key_len - KEYCODEC_DATA_PREFIX_LEN, version);
    return 0;
}

static int exclusive_lock(void *arg, const uint8_t *key, size_t key_len, const uint8_t *val,
                          size_t val_len)
{
    (void)key;
    (void)key_len;
    uint8_t mode;
    tpc_id h;
    /* A record it cannot read counts as a lock: retried, never ignored. */
    if (tpc_lock_decode(val, val_len, &mode, &h) != 0 || mode == TPC_LOCK_EXCLUSIVE) {
        *(int *)arg = 1;
        return 1;
    }
    return 0;
}

/* [lo, hi) of the group's keys under prefix (plen bytes), as storage keys:
 * an empty start is the prefix itself, an empty end the prefix's
 * successor. */
static void range_bounds(const uint8_t *prefix, size_t plen, const txn_cond *c, uint8_t *lo,
                         size_t *lo_len, uint8_t *hi, size_t *hi_len)
{
    memcpy(lo, prefix, plen);
    if (c->k.key_len)
        memcpy(lo + plen, c->k.key, c->k.key_len);
    *lo_len = plen + c->k.key_len;
    if (c->value_len) {
        memcpy(hi, prefix, plen);
        memcpy(hi + plen, c->value, c->value_len);
        *hi_len = plen + c->value_len;
    } else {
        *hi_len = keycodec_prefix_successor(prefix, plen, hi);
    }
}

static int txn_range(void *ctx, const txn_cond *c, uint64_t *count, uint64_t *digest,
                     int *locked, okv_error *err)
{
    txn_ctx *t = ctx;
    uint8_t p[TPC_LOCK_PREFIX_LEN], lo[TPC_LOCK_PREFIX_LEN + TXN_RANGE_BOUND_MAX];
    uint8_t hi[TPC_LOCK_PREFIX_LEN + TXN_RANGE_BOUND_MAX];
    size_t lo_len, hi_len;
    /* Exclusive locks first: a prepared write in the range may be committed
     * at its coordinator already, so the range as stored is not current. */
    *locked = 0;
    lock_key(p, t->group, NULL, 0);
    range_bounds(p, TPC_LOCK_PREFIX_LEN, c, lo, &lo_len, hi, &hi_len);
    int rc = walk(t->f, ENGINE_CF_META, lo, lo_len, hi, hi_len, exclusive_lock, locked, err);
    if (rc)
        return rc;
    keycodec_data_prefix(p, c->k.table_id, c->k.partition);
    range_bounds(p, KEYCODEC_DATA_PREFIX_LEN, c, lo, &lo_len, hi, &hi_len);
    range_sum r = { 0, OKV_RANGE_DIGEST_INIT, 0 };
    rc = walk(t->f, ENGINE_CF_DATA, lo, lo_len, hi, hi_len, sum_key, &r, err);
    if (rc)
        return rc;
    if (r.bad)
        return okv_error_set(err, OKV_ECORRUPT, "a stored value in a scanned range has a bad "
                             "header");
    *count = r.count;
    *digest = r.digest;
    return OKV_OK;
}

/* A transaction whose keys all lie in the command's partition: evaluated
 * here, on every replica, against the state this entry sees. The leader
 * validated it before proposing; a replica that cannot decode it, or finds
 * a key of another partition in it, stops (the log is not what was
 * proposed). One that fails validation is refused without effect, the
 * same way on every replica. */
static int apply_txn(fsm *f, uint64_t index, const command *c, command_result *out,
                     okv_error *err)
{
    txn t;
    int rc = txn_decode(c->value, c->value_len, &t, err);
    if (rc) {
        txn_clear(&t);
        return rc;
    }
    for (size_t i = 0; i < t.n_conds + t.n_writes; i++) {
        const txn_key *k = i < t.n_conds ? &t.conds[i].k : &t.writes[i - t.n_conds].k;
        if (k->table_id != c->table_id || k->partition != c->partition) {
            okv_error_set(err, OKV_ECORRUPT,
                          "entry %llu: a transaction of table %u partition %u names a key of "
                          "table %u partition %u",
                          (unsigned long long)index, c->table_id, c->partition, k->table_id,
                          k->partition);
            txn_clear(&t);
            return OKV_ECORRUPT;
        }
    }
    okv_error verr;
    if (txn_validate(&t, &verr) != OKV_OK) {
        txn_clear(&t);
        out->code = OKV_EINVAL;
        return OKV_OK;
    }
    txn_ctx ctx = { f, fsm_group_id(c->table_id, c->partition) };
    txn_store store = { &ctx, txn_stage_read, txn_locked, txn_stage_write, txn_range };
    txn_outcome o;
    rc = txn_eval(&t, index, &store, &o, err);
    if (rc == OKV_OK && o.code != OKV_OK && o.failed > t.n_conds &&
        OKV_FAILPOINT("txn.partial")) {
        /* Planted bug (jepsen bank workload): the writes before the one
         * that failed apply anyway. */
        txn_outcome partial;
        txn head = { 0, NULL, o.failed - t.n_conds, t.writes };
        rc = txn_eval(&head, index, &store, &partial, err);
    }
    txn_clear(&t);
    if (rc)
        return rc;
    out->code = o.code;
    out->version = o.code == OKV_OK ? o.version : 0;
    out->failed = o.failed;
    out->reason = o.reason;
    return OKV_OK;
}

static int tpc_rec_get(void *ctx, char kind, const tpc_id *id, uint8_t **val, size_t *len,
                       okv_error *err)
{
    txn_ctx *t = ctx;
    uint8_t k[TPC_REC_KEY_LEN];
    tpc_rec_key(k, t->group, kind, id);
    return read_key(t->f, ENGINE_CF_META, k, sizeof k, val, len, err);
}

static int tpc_rec_put(void *ctx, char kind, const tpc_id *id, const uint8_t *val, size_t len,
                       okv_error *err)
{
    txn_ctx *t = ctx;
    if (kind == 'N')
        t->f->norl_known[rl_slot(t->group)] = 0;   /* the count changes: read it again */
    uint8_t k[TPC_REC_KEY_LEN];
    tpc_rec_key(k, t->group, kind, id);
    return stage(t->f, ENGINE_CF_META, k, sizeof k, val, len, err);
}

static int tpc_lock_get_cb(void *ctx, const txn_key *k, uint8_t **val, size_t *len,
                           okv_error *err)
{
    txn_ctx *t = ctx;
    uint8_t key[TPC_LOCK_PREFIX_LEN + OKV_MAX_KEY_LEN];
    size_t kl = lock_key(key, t->group, k->key, k->key_len);
    return read_key(t->f, ENGINE_CF_META, key, kl, val, len, err);
}

static int tpc_lock_put_cb(void *ctx, const txn_key *k, const uint8_t *val, size_t len,
                           okv_error *err)
{
    txn_ctx *t = ctx;
    uint8_t key[TPC_LOCK_PREFIX_LEN + OKV_MAX_KEY_LEN];
    size_t kl = lock_key(key, t->group, k->key, k->key_len);
    return stage(t->f, ENGINE_CF_META, key, kl, val, val ? len : 0, err);
}

/* Every 'R' record of the group (tpc_store.rlock_each), as this batch
 * sees it: only walked while the group's 'N' record counts some. */
typedef struct rlock_walk {
    int (*fn)(void *arg, const tpc_id *holder, const uint8_t *val, size_t len);
    void *arg;
} rlock_walk;

static int rlock_walk_one(void *arg, const uint8_t *key, size_t key_len, const uint8_t *val,
                          size_t val_len)
{
    rlock_walk *w = arg;
    if (key_len != TPC_REC_KEY_LEN)
        return 0;
    tpc_id h = { keycodec_get_u64be(key + 10), keycodec_get_u64be(key + 18) };
    return w->fn(w->arg, &h, val, val_len);
}

static int tpc_rlock_each_cb(void *ctx,
                             int (*fn)(void *arg, const tpc_id *holder, const uint8_t *val,
                                       size_t len),
                             void *arg, okv_error *err)
{
    txn_ctx *t = ctx;
    uint8_t lo[TPC_LOCK_PREFIX_LEN], hi[TPC_LOCK_PREFIX_LEN];
    fsm_meta_prefix(lo, 'T', t->group);
    lo[FSM_META_PREFIX_LEN] = 'R';
    memcpy(hi, lo, sizeof hi);
    hi[FSM_META_PREFIX_LEN] = 'R' + 1;
    rlock_walk w = { fn, arg };
    return walk(t->f, ENGINE_CF_META, lo, sizeof lo, hi, sizeof hi, rlock_walk_one, &w, err);
}

/* The group's records as tpc.h sees them (data through `data`). */
static tpc_store group_tpc_store(txn_ctx *ctx, const txn_store *data)
{
    return (tpc_store){ ctx, tpc_rec_get, tpc_rec_put, tpc_lock_get_cb, tpc_lock_put_cb, data,
                        tpc_rlock_each_cb };
}

/* 1 when a transaction's range lock covers the key (a write there would
 * change what its scan counted; tpc.h T6), or the check failed (counted
 * as locked, like key_locked). One point read while the group holds no
 * range lock. */
static int range_locked(fsm *f, uint64_t group, const uint8_t *key, size_t key_len)
{
    size_t slot = rl_slot(group);
    if (f->norl_known[slot] && f->norl_group[slot] == group)
        return 0;   /* no range lock, and none taken since we looked */
    txn_ctx ctx = { f, group };
    txn_store data = { &ctx, txn_stage_read, NULL, txn_stage_write, txn_range };
    tpc_store st = group_tpc_store(&ctx, &data);
    uint64_t n = 0;
    if (tpc_range_lock_count(&st, &n, NULL) != OKV_OK)
        return 1;   /* counted as locked, like key_locked */
    if (n == 0) {
        f->norl_group[slot] = group;
        f->norl_known[slot] = 1;
        return 0;
    }
    txn_key k = { (uint32_t)(group >> 32), (uint32_t)group, key, key_len };
    int locked = 0;
    return tpc_range_locked(&st, &k, NULL, &locked, NULL) != OKV_OK || locked;
}

void fsm_forget_range_locks(fsm *f)
{
    memset(f->norl_known, 0, sizeof f->norl_known);
}

/* TxnStatus of a transaction with no coordinator record: one that lay in
 * one partition committed as one entry, whose outcome is its exactly-once
 * record (while the client's watermark keeps it). */
static int status_of_1pc(fsm *f, const tpc_msg *m, tpc_result *r, okv_error *err)
{
    uint8_t dk[DEDUP_KEY_LEN];
    dedup_key(dk, fsm_group_id(m->self.table_id, m->self.partition), m->id.client, m->id.req);
    uint8_t *prev = NULL;
    size_t plen = 0;
    int rc = read_key(f, ENGINE_CF_META, dk, sizeof dk, &prev, &plen, err);
    if (rc == OKV_ENOTFOUND)
        return OKV_OK;
    if (rc)
        return rc;
    command_result cr;
    int bad = command_result_decode(prev, plen, &cr);
    free(prev);
    if (bad)
        return okv_error_set(err, OKV_ECORRUPT, "dedup record with a bad format");
    r->state = cr.code == OKV_OK ? TPC_COMMITTED : TPC_ABORTED;
    r->code = cr.code;
    r->fail = (tpc_fail){ cr.code, cr.failed, cr.reason };
    return OKV_OK;
}

/* A two-phase commit message for this group (tpc.h's rules). */
static int apply_tpc(fsm *f, uint64_t index, const command *c, command_result *out,
                     okv_error *err)
{
    tpc_msg m;
    okv_error derr;
    if (tpc_msg_decode(c->value, c->value_len, &m, &derr) != OKV_OK) {
        /* A step is a sender's bytes, checked before it was proposed; one
         * that fails now is one an older build let into the log (a DECIDE
         * for a group that does not coordinate). Refused alike on every
         * replica, with no effect, rather than a crash of each replica on
         * every restart. */
        out->code = OKV_EINVAL;
        return OKV_OK;
    }
    int rc;
    if (m.self.table_id != c->table_id || m.self.partition != c->partition)
        return okv_error_set(err, OKV_ECORRUPT, "entry %llu: a 2PC message for table %u "
                             "partition %u in the log of table %u partition %u",
                             (unsigned long long)index, m.self.table_id, m.self.partition,
                             c->table_id, c->partition);
    /* crash: a 2PC step committed, not applied here (on the leader that
     * proposed it: the next leader applies it) */
    int coord = m.self.table_id == m.coord.table_id && m.self.partition == m.coord.partition;
    if (m.kind == TPC_PREPARE && !coord)
        (void)OKV_FAILPOINT("tpc.apply.before_prepare");
    if (m.kind == TPC_DECIDE || (m.kind == TPC_PREPARE && m.flag && coord))
        (void)OKV_FAILPOINT("tpc.apply.before_decision");
    txn_ctx ctx = { f, fsm_group_id(c->table_id, c->partition) };
    txn_store data = { &ctx, txn_stage_read, NULL, txn_stage_write, txn_range };
    tpc_store st = group_tpc_store(&ctx, &data);
    tpc_result r;
    if ((rc = tpc_apply(&m, index, &st, &r, err)))
        return rc;
    if (m.kind == TPC_CHECK && !m.flag && r.state == TPC_NONE && (rc = status_of_1pc(f, &m, &r, err)))
        return rc;
    out->code = r.code;
    out->version = r.version;
    out->failed = r.fail.failed;
    out->reason = r.fail.reason;
    out->tpc_state = r.state;
    return OKV_OK;
}

/* Several 2PC messages in one entry (command.h TPC_MANY), in order; the
 * result is the last one's. */
static int apply_tpc_many(fsm *f, uint64_t index, const command *c, command_result *out,
                          okv_error *err)
{
    const uint8_t *p = c->value;
    size_t left = c->value_len;
    uint32_t n = left >= 4 ? keycodec_get_u32be(p) : 0;
    if (n == 0 || n > COMMAND_TPC_MANY_MAX)
        return okv_error_set(err, OKV_ECORRUPT, "entry %llu: a batch of %u 2PC messages",
                             (unsigned long long)index, n);
    p += 4;
    left -= 4;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t ml = left >= 4 ? keycodec_get_u32be(p) : 0;
        if (left < 4 || ml == 0 || ml > left - 4)
            return okv_error_set(err, OKV_ECORRUPT, "entry %llu: 2PC message %u of %u is cut "
                                 "short", (unsigned long long)index, i, n);
        command one = *c;
        one.op = CMD_TPC;
        one.value = p + 4;
        one.value_len = ml;
        int rc = apply_tpc(f, index, &one, out, err);
        if (rc)
            return rc;
        p += 4 + ml;
        left -= 4 + (size_t)ml;
    }
    if (left)
        return okv_error_set(err, OKV_ECORRUPT, "entry %llu: %zu bytes after a batch of 2PC "
                             "messages", (unsigned long long)index, left);
    return OKV_OK;
}

int fsm_apply(fsm *f, uint64_t group, uint64_t index, const uint8_t *buf, size_t len,
              command_result *out, okv_error *err)
{
    memset(out, 0, sizeof *out);
    command c;
    int rc = command_decode(buf, len, &c, err);
    if (rc)
        return rc;
    if (fsm_group_id(c.table_id, c.partition) != group)
        return okv_error_set(err, OKV_ECORRUPT,
                             "entry %llu of group %llu carries a command for table %u "
                             "partition %u",
                             (unsigned long long)index, (unsigned long long)group, c.table_id,
                             c.partition);
    uint64_t wm = 0;
    if (c.client_id) {
        if ((rc = stored_watermark(f, group, c.client_id, &wm, err)))
            return rc;
        if (c.request_id < wm || c.request_id < c.watermark) {
            /* The client promised never to send this id again: it is a stale
             * duplicate (or a confused client). No effect. */
            out->code = OKV_EINVAL;
            fsm_set_applied(f, group, index);
            return OKV_OK;
        }
        uint8_t dk[DEDUP_KEY_LEN];
        dedup_key(dk, group, c.client_id, c.request_id);
        uint8_t *prev = NULL;
        size_t plen = 0;
        rc = OKV_FAILPOINT("fsm.dedup.skip") ? OKV_ENOTFOUND
                                              : read_key(f, ENGINE_CF_META, dk, sizeof dk, &prev,
                                                         &plen, err);
        if (rc == OKV_OK) {
            int bad = command_result_decode(prev, plen, out);
            free(prev);
            if (bad)
                return okv_error_set(err, OKV_ECORRUPT, "dedup record with a bad format");
            fsm_set_applied(f, group, index);
            return OKV_OK;   /* a retry: same answer, no second effect */
        }
        if (rc != OKV_ENOTFOUND)
            return rc;
    }
    rc = c.op == CMD_TXN        ? apply_txn(f, index, &c, out, err)
         : c.op == CMD_TPC      ? apply_tpc(f, index, &c, out, err)
         : c.op == CMD_TPC_MANY ? apply_tpc_many(f, index, &c, out, err)
                                : apply_write(f, index, &c, out, err);
    if (rc)
        return rc;
    if (c.client_id && out->code != OKV_EUNAVAILABLE) {
        uint8_t dk[DEDUP_KEY_LEN], rv[COMMAND_RESULT_LEN];
        dedup_key(dk, group, c.client_id, c.request_id);
        size_t rlen = command_result_encode(out, rv);
        if ((rc = raise_watermark(f, group, &c, wm, err)) ||
            (rc = stage(f, ENGINE_CF_META, dk, sizeof dk, rv, rlen, err)))
            return rc;
    }
    fsm_set_applied(f, group, index);
    return OKV_OK;
}

int fsm_get(fsm *f, uint32_t table_id, uint32_t partition, const uint8_t *key, size_t key_len,
            uint8_t **value_out, size_t *value_len, uint64_t *version, okv_error *err)
{
    uint8_t dkey[KEYCODEC_DATA_PREFIX_LEN + OKV_MAX_KEY_LEN];
    size_t dlen = keycodec_data_key(dkey, table_id, partition, key, key_len);
    uint8_t *raw = NULL;
    size_t rlen = 0;
    int rc = read_key(f, ENGINE_CF_DATA, dkey, dlen, &raw, &rlen, err);
    if (rc)
        return rc;
    const uint8_t *v;
    size_t vl;
    if (keycodec_value_decode(raw, rlen, version, &v, &vl)) {
        free(raw);
        return okv_error_set(err, OKV_ECORRUPT, "stored value with a bad header");
    }
    memmove(raw, v, vl);
    *value_out = raw;
    *value_len = vl;
    return OKV_OK;
}

static int slot_cmp(const void *a, const void *b)
{
    const ov_slot *x = *(const ov_slot *const *)a, *y = *(const ov_slot *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* The overlay as one batch, in (column family, key) order. */
static int build_batch(fsm *f, okv_error *err)
{
    ov_slot **order = malloc((f->used ? f->used : 1) * sizeof *order);
    if (!order)
        return okv_error_set(err, OKV_ENOMEM, "out of memory writing applied entries");
    size_t n = 0;
    for (size_t i = 0; i < f->cap; i++)
        if (f->slots[i].key)
            order[n++] = &f->slots[i];
    qsort(order, n, sizeof *order, slot_cmp);
    for (size_t i = 0; i < n; i++) {
        const ov_slot *sl = order[i];
        enum engine_cf cf = (enum engine_cf)sl->key[0];
        if (sl->val)
            engine_batch_put(f->b, cf, sl->key + 1, sl->key_len - 1, sl->val, sl->val_len);
        else
            engine_batch_delete(f->b, cf, sl->key + 1, sl->key_len - 1);
    }
    free(order);
    return OKV_OK;
}

static int flush_batch(fsm *f, int sync, okv_error *err)
{
    stage_all_applied(f);
    int rc = f->oom ? okv_error_set(err, OKV_ENOMEM, "out of memory applying entries; "
                                    "none of this batch was written")
                    : build_batch(f, err);
    if (rc == OKV_OK && engine_batch_count(f->b))
        rc = engine_write(f->e, f->b, sync, err);
    engine_batch_clear(f->b);
    ov_clear(f);
    f->oom = 0;
    if (rc)
        fsm_forget_range_locks(f);   /* what was cached may have read the lost batch */
    return rc;
}

int fsm_flush(fsm *f, okv_error *err) { return flush_batch(f, 0, err); }

int fsm_flush_synced(fsm *f, okv_error *err) { return flush_batch(f, 1, err); }

size_t fsm_pending(const fsm *f) { return f->used + f->napplied + (size_t)f->oom; }
