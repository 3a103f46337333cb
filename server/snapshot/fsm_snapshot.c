/*
 * fsm_snapshot.c — see fsm_snapshot.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "fsm_snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsm.h"
#include "keycodec.h"
#include "raft_codec.h"
#include "snap_format.h"

#define DESC_MAGIC "OKVSNAPD"
#define DESC_HDR 11                /* magic 8, kind 1, name length 2 */
#define MARKER_VERSION 1
#define DATA_FILE "data.sst"
#define META_FILE "meta.sst"

/* ---- the key ranges of a group --------------------------------------------- */

typedef struct ranges {
    uint8_t data[KEYCODEC_DATA_PREFIX_LEN];
    uint8_t dedup[FSM_META_PREFIX_LEN], tpc[FSM_META_PREFIX_LEN], wm[FSM_META_PREFIX_LEN];
} ranges;

static void group_ranges(ranges *r, uint64_t group)
{
    keycodec_data_prefix(r->data, (uint32_t)(group >> 32), (uint32_t)group);
    fsm_meta_prefix(r->dedup, 'D', group);
    fsm_meta_prefix(r->tpc, 'T', group);
    fsm_meta_prefix(r->wm, 'W', group);
}

static int has_prefix(const uint8_t *k, size_t kl, const uint8_t *p, size_t pl)
{
    return kl >= pl && memcmp(k, p, pl) == 0;
}

static int owns(const ranges *r, int cf, const uint8_t *k, size_t kl)
{
    if (cf == SNAP_CF_DATA)
        return has_prefix(k, kl, r->data, sizeof r->data);
    if (cf == SNAP_CF_META)
        return has_prefix(k, kl, r->dedup, sizeof r->dedup) ||
               has_prefix(k, kl, r->tpc, sizeof r->tpc) ||
               has_prefix(k, kl, r->wm, sizeof r->wm);
    return 0;
}

/* ---- descriptors ------------------------------------------------------------ */

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > FSM_SNAPSHOT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

size_t fsm_snapshot_desc_encode(uint8_t *buf, int kind, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n > FSM_SNAPSHOT_NAME_MAX)
        n = FSM_SNAPSHOT_NAME_MAX;
    memcpy(buf, DESC_MAGIC, 8);
    buf[8] = (uint8_t)kind;
    buf[9] = (uint8_t)(n >> 8);
    buf[10] = (uint8_t)n;
    if (n)
        memcpy(buf + DESC_HDR, name, n);
    return DESC_HDR + n;
}

int fsm_snapshot_desc_decode(const uint8_t *d, size_t len, char *name)
{
    name[0] = '\0';
    if (!d || len < DESC_HDR || memcmp(d, DESC_MAGIC, 8) != 0)
        return -1;
    size_t n = ((size_t)d[9] << 8) | d[10];
    if (len != DESC_HDR + n)
        return -1;
    if (d[8] == FSM_SNAPSHOT_LOCAL)
        return n == 0 ? FSM_SNAPSHOT_LOCAL : -1;
    if (d[8] != FSM_SNAPSHOT_RECEIVED || !name_ok((const char *)d + DESC_HDR, n))
        return -1;
    memcpy(name, d + DESC_HDR, n);
    name[n] = '\0';
    return FSM_SNAPSHOT_RECEIVED;
}

/* ---- dirs ------------------------------------------------------------------- */

int fsm_snapshot_root(engine *e, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/snap", engine_dir(e));
    return n < 0 || (size_t)n >= cap ? OKV_EINVAL : OKV_OK;
}

void fsm_snapshot_dir_name(char *buf, size_t cap, uint64_t group, uint64_t index, uint64_t from,
                           uint64_t n)
{
    snprintf(buf, cap, "%llu-%llu-%llu-%llu", (unsigned long long)group,
             (unsigned long long)index, (unsigned long long)from, (unsigned long long)n);
}

int fsm_snapshot_remove_dir(const char *dir, okv_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? OKV_OK
                               : okv_error_set(err, OKV_EIO, "cannot open snapshot dir %s: %s",
                                               dir, strerror(errno));
    struct dirent *de;
    char path[4200];
    int rc = OKV_OK;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path) != 0 && errno != ENOENT && rc == OKV_OK)
            rc = okv_error_set(err, OKV_EIO, "cannot remove %s: %s", path, strerror(errno));
    }
    closedir(d);
    if (rmdir(dir) != 0 && errno != ENOENT && rc == OKV_OK)
        rc = okv_error_set(err, OKV_EIO, "cannot remove snapshot dir %s: %s", dir,
                           strerror(errno));
    return rc;
}

int fsm_snapshot_clean_root(engine *e, int (*keep)(void *ctx, const char *name), void *ctx,
                            okv_error *err)
{
    char root[4096];
    if (fsm_snapshot_root(e, root, sizeof root))
        return okv_error_set(err, OKV_EINVAL, "data dir path too long: %s", engine_dir(e));
    if (mkdir(root, 0755) != 0 && errno != EEXIST)
        return okv_error_set(err, OKV_EIO, "cannot create snapshot dir %s: %s", root,
                             strerror(errno));
    DIR *d = opendir(root);
    if (!d)
        return okv_error_set(err, OKV_EIO, "cannot open snapshot dir %s: %s", root,
                             strerror(errno));
    struct dirent *de;
    char path[4400];
    int rc = OKV_OK;
    while (rc == OKV_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (keep && keep(ctx, de->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", root, de->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            rc = fsm_snapshot_remove_dir(path, err);
        else if (unlink(path) != 0 && errno != ENOENT)
            rc = okv_error_set(err, OKV_EIO, "cannot remove %s: %s", path, strerror(errno));
    }
    closedir(d);
    return rc;
}

/* A new file's name survives a crash only once its dir is synced. */
static int sync_dir(const char *dir, okv_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return okv_error_set(err, OKV_EIO, "cannot sync snapshot dir %s: %s", dir, strerror(e));
    }
    close(fd);
    return OKV_OK;
}

/* ---- reading ---------------------------------------------------------------- */

struct fsm_snapshot_reader {
    engine_snapshot *snap;
    ranges r;
    int stage;          /* 0 data, then meta in key order: 1 'D', 2 'T', 3 'W'; 4 done */
    engine_iter *it;
    int advance;        /* step it before reading (the last record was handed out) */
};

int fsm_snapshot_reader_new(fsm_snapshot_reader **out, engine_snapshot *s, uint64_t group,
                            okv_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return okv_error_set(err, OKV_ENOMEM, "out of memory reading a snapshot");
    (*out)->snap = s;
    group_ranges(&(*out)->r, group);
    return OKV_OK;
}

int fsm_snapshot_reader_next(fsm_snapshot_reader *r, int *cf, const uint8_t **key,
                             size_t *key_len, const uint8_t **val, size_t *val_len,
                             okv_error *err)
{
    while (r->stage < 4) {
        if (!r->it) {
            const uint8_t *p = r->stage == 0   ? r->r.data
                               : r->stage == 1 ? r->r.dedup
                               : r->stage == 2 ? r->r.tpc
                                               : r->r.wm;
            size_t pl = r->stage == 0 ? sizeof r->r.data : FSM_META_PREFIX_LEN;
            int rc = engine_iter_new_prefix_at(&r->it, r->snap,
                                               r->stage == 0 ? ENGINE_CF_DATA : ENGINE_CF_META,
                                               p, pl, err);
            if (rc)
                return rc;
            r->advance = 0;
        } else if (r->advance) {
            engine_iter_next(r->it);
            r->advance = 0;
        }
        if (engine_iter_valid(r->it)) {
            *cf = r->stage == 0 ? SNAP_CF_DATA : SNAP_CF_META;
            *key = (const uint8_t *)engine_iter_key(r->it, key_len);
            *val = (const uint8_t *)engine_iter_value(r->it, val_len);
            r->advance = 1;
            return 1;
        }
        int rc = engine_iter_status(r->it, err);
        engine_iter_free(r->it);
        r->it = NULL;
        if (rc)
            return rc;
        r->stage++;
    }
    return 0;
}

void fsm_snapshot_reader_free(fsm_snapshot_reader *r)
{
    if (!r)
        return;
    engine_iter_free(r->it);
    free(r);
}

/* ---- writing ---------------------------------------------------------------- */

struct fsm_snapshot_writer {
    ranges r;
    char dir[4096];
    engine_sst *sst[2];          /* [0] data, [1] meta */
    uint8_t *last[2];            /* last key added per column family */
    size_t last_len[2], last_cap[2];
    int has_last[2];
    int broken;
};

static int delete_prefix(engine_sst *w, const uint8_t *p, size_t pl, okv_error *err)
{
    uint8_t succ[16];
    size_t sl = engine_prefix_successor(p, pl, succ);   /* never all 0xff: see ranges */
    return engine_sst_delete_range(w, p, pl, succ, sl, err);
}

int fsm_snapshot_writer_new(fsm_snapshot_writer **out, engine *e, uint64_t group,
                            const char *dir, okv_error *err)
{
    *out = NULL;
    fsm_snapshot_writer *w = calloc(1, sizeof *w);
    if (!w)
        return okv_error_set(err, OKV_ENOMEM, "out of memory receiving a snapshot");
    group_ranges(&w->r, group);
    if (snprintf(w->dir, sizeof w->dir, "%s", dir) >= (int)sizeof w->dir) {
        free(w);
        return okv_error_set(err, OKV_EINVAL, "snapshot dir path too long: %s", dir);
    }
    if (mkdir(dir, 0755) != 0) {
        int e2 = errno;
        free(w);
        return okv_error_set(err, OKV_EIO, "cannot create snapshot dir %s: %s", dir,
                             strerror(e2));
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/" DATA_FILE, dir);
    int rc = engine_sst_new(&w->sst[0], e, ENGINE_CF_DATA, path, err);
    if (!rc)
        rc = delete_prefix(w->sst[0], w->r.data, sizeof w->r.data, err);
    snprintf(path, sizeof path, "%s/" META_FILE, dir);
    if (!rc)
        rc = engine_sst_new(&w->sst[1], e, ENGINE_CF_META, path, err);
    if (!rc)
        rc = delete_prefix(w->sst[1], w->r.dedup, sizeof w->r.dedup, err);
    if (!rc)
        rc = delete_prefix(w->sst[1], w->r.tpc, sizeof w->r.tpc, err);
    if (!rc)
        rc = delete_prefix(w->sst[1], w->r.wm, sizeof w->r.wm, err);
    if (rc) {
        fsm_snapshot_writer_free(w);
        return rc;
    }
    *out = w;
    return OKV_OK;
}

static int key_after(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    return c > 0 || (c == 0 && al > bl);
}

int fsm_snapshot_writer_add(fsm_snapshot_writer *w, int cf, const uint8_t *key, size_t key_len,
                            const uint8_t *val, size_t val_len, okv_error *err)
{
    if (w->broken)
        return okv_error_set(err, OKV_EINVAL, "snapshot writer used after a failure");
    if (!owns(&w->r, cf, key, key_len)) {
        w->broken = 1;
        return okv_error_set(err, OKV_ECORRUPT,
                             "snapshot record outside its partition (column family %d, %zu-byte "
                             "key)", cf, key_len);
    }
    int i = cf == SNAP_CF_DATA ? 0 : 1;
    if (w->has_last[i] && !key_after(key, key_len, w->last[i], w->last_len[i])) {
        w->broken = 1;
        return okv_error_set(err, OKV_ECORRUPT,
                             "snapshot records out of order (column family %d)", cf);
    }
    int rc = engine_sst_put(w->sst[i], key, key_len, val, val_len, err);
    if (rc) {
        w->broken = 1;
        return rc;
    }
    if (key_len > w->last_cap[i]) {
        uint8_t *p = realloc(w->last[i], key_len);
        if (!p) {
            w->broken = 1;
            return okv_error_set(err, OKV_ENOMEM, "out of memory receiving a snapshot");
        }
        w->last[i] = p;
        w->last_cap[i] = key_len;
    }
    memcpy(w->last[i], key, key_len);
    w->last_len[i] = key_len;
    w->has_last[i] = 1;
    return OKV_OK;
}

int fsm_snapshot_writer_finish(fsm_snapshot_writer *w, okv_error *err)
{
    if (w->broken)
        return okv_error_set(err, OKV_EINVAL, "snapshot writer used after a failure");
    int rc = engine_sst_finish(w->sst[0], NULL, err);
    if (!rc)
        rc = engine_sst_finish(w->sst[1], NULL, err);
    if (!rc)
        rc = sync_dir(w->dir, err);
    if (rc)
        w->broken = 1;
    return rc;
}

void fsm_snapshot_writer_free(fsm_snapshot_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < 2; i++) {
        engine_sst_free(w->sst[i]);
        free(w->last[i]);
    }
    free(w);
}

/* ---- installing ------------------------------------------------------------- */

int fsm_snapshot_mark_installing(engine *e, uint64_t group, const struct raft_snapshot_meta *m,
                                 const char *name, okv_error *err)
{
    uint8_t key[FSM_META_PREFIX_LEN];
    fsm_meta_prefix(key, 'I', group);
    uint8_t val[19 + FSM_SNAPSHOT_NAME_MAX + 8 + 16 * RAFT_MAX_NODES];
    size_t n = strlen(name);
    if (!name_ok(name, n))
        return okv_error_set(err, OKV_EINVAL, "bad snapshot dir name '%s'", name);
    val[0] = MARKER_VERSION;
    keycodec_put_u64be(val + 1, m->index);
    keycodec_put_u64be(val + 9, m->term);
    val[17] = (uint8_t)(n >> 8);
    val[18] = (uint8_t)n;
    memcpy(val + 19, name, n);
    size_t cl;
    if (raft_conf_encode(&m->conf, val + 19 + n, sizeof val - 19 - n, &cl))
        return okv_error_set(err, OKV_EINVAL, "snapshot of group %llu: bad configuration",
                             (unsigned long long)group);
    return engine_put(e, ENGINE_CF_META, key, sizeof key, val, 19 + n + cl, 1, err);
}

int fsm_snapshot_ingest(engine *e, const char *dir, okv_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/" DATA_FILE, dir);
    int rc = engine_ingest(e, ENGINE_CF_DATA, path, err);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/" META_FILE, dir);
    return engine_ingest(e, ENGINE_CF_META, path, err);
}

void fsm_snapshot_stage_installed(engine_batch *b, uint64_t group, uint64_t index)
{
    uint8_t ak[FSM_META_PREFIX_LEN], av[8], ik[FSM_META_PREFIX_LEN];
    fsm_meta_prefix(ak, 'A', group);
    keycodec_put_u64be(av, index);
    engine_batch_put(b, ENGINE_CF_META, ak, sizeof ak, av, sizeof av);
    fsm_meta_prefix(ik, 'I', group);
    engine_batch_delete(b, ENGINE_CF_META, ik, sizeof ik);
}

void fsm_snapshot_stage_unmark(engine_batch *b, uint64_t group)
{
    uint8_t ik[FSM_META_PREFIX_LEN];
    fsm_meta_prefix(ik, 'I', group);
    engine_batch_delete(b, ENGINE_CF_META, ik, sizeof ik);
}

static int decode_marker(const uint8_t *v, size_t len, struct raft_snapshot_meta *m, char *name)
{
    memset(m, 0, sizeof *m);
    if (len < 19 || v[0] != MARKER_VERSION)
        return -1;
    m->index = keycodec_get_u64be(v + 1);
    m->term = keycodec_get_u64be(v + 9);
    size_t n = ((size_t)v[17] << 8) | v[18];
    if (len < 19 + n || !name_ok((const char *)v + 19, n))
        return -1;
    memcpy(name, v + 19, n);
    name[n] = '\0';
    size_t used;
    if (raft_conf_decode(v + 19 + n, len - 19 - n, &m->conf, &used) || used != len - 19 - n)
        return -1;
    return 0;
}

int fsm_snapshot_list_installing(engine *e,
                                 int (*fn)(void *ctx, uint64_t group,
                                           const struct raft_snapshot_meta *m, const char *name),
                                 void *ctx, okv_error *err)
{
    engine_iter *it;
    int rc = engine_iter_new_prefix(&it, e, ENGINE_CF_META, "I", 1, err);
    if (rc)
        return rc;
    for (; engine_iter_valid(it); engine_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)engine_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)engine_iter_value(it, &vl);
        struct raft_snapshot_meta m;
        char name[FSM_SNAPSHOT_NAME_MAX + 1];
        if (kl != FSM_META_PREFIX_LEN || decode_marker(v, vl, &m, name) != 0) {
            engine_iter_free(it);
            return okv_error_set(err, OKV_ECORRUPT,
                                 "data dir %s: a snapshot install marker ('I' key, %zu bytes) "
                                 "does not decode", engine_dir(e), kl);
        }
        rc = fn(ctx, keycodec_get_u64be(k + 1), &m, name);
        if (rc) {
            engine_iter_free(it);
            return rc;
        }
    }
    rc = engine_iter_status(it, err);
    engine_iter_free(it);
    return rc;
}
