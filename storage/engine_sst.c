/*
 * engine_sst.c — see engine_sst.h. Part of the engine module: it reaches
 * into engine_int.h for the DB handle, the column family handles and their
 * options, like engine.c.
 */
#include "engine_sst.h"
#include "engine_int.h"

#include <string.h>

struct engine_snapshot {
    engine *e;
    const rocksdb_snapshot_t *snap;
};

struct engine_sst {
    engine *e;
    rocksdb_envoptions_t *env;
    rocksdb_sstfilewriter_t *w;
    char *path;
    int finished;
};

/* RocksDB reports a Status only as text; its prefix names the code. */
static int fail(okv_error *err, char *errptr, const char *what, const char *path)
{
    static const struct { const char *prefix; int code; } map[] = {
        { "NotFound:", OKV_ENOTFOUND },
        { "Corruption:", OKV_ECORRUPT },
        { "IO error:", OKV_EIO },
        { "Invalid argument:", OKV_EINVAL },
    };
    int code = OKV_EINTERNAL;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strncmp(errptr, map[i].prefix, strlen(map[i].prefix)) == 0)
            code = map[i].code;
    okv_error_set(err, code, "%s %s: %s", what, path, errptr);
    rocksdb_free(errptr);
    return code;
}

int engine_snapshot_new(engine_snapshot **out, engine *e, okv_error *err)
{
    okv_error_clear(err);
    *out = NULL;
    engine_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return okv_error_set(err, OKV_ENOMEM, "out of memory taking a RocksDB snapshot");
    s->e = e;
    s->snap = rocksdb_create_snapshot(e->db);
    *out = s;
    return OKV_OK;
}

void engine_snapshot_free(engine_snapshot *s)
{
    if (!s)
        return;
    rocksdb_release_snapshot(s->e->db, s->snap);
    free(s);
}

int engine_iter_new_prefix_at(engine_iter **out, engine_snapshot *s, enum engine_cf cf,
                              const void *prefix, size_t prefix_len, okv_error *err)
{
    okv_error_clear(err);
    *out = NULL;
    if ((int)cf < 0 || (int)cf >= ENGINE_CF_COUNT || !prefix || !prefix_len)
        return okv_error_set(err, OKV_EINVAL, "engine_iter_new_prefix_at: bad arguments");
    engine_iter *it = calloc(1, sizeof *it);
    if (!it || !(it->lower = malloc(prefix_len)) || !(it->upper = malloc(prefix_len))) {
        engine_iter_free(it);
        return okv_error_set(err, OKV_ENOMEM, "engine_iter_new_prefix_at: out of memory");
    }
    it->e = s->e;
    memcpy(it->lower, prefix, prefix_len);
    it->lower_len = prefix_len;
    it->upper_len = engine_prefix_successor(prefix, prefix_len, (uint8_t *)it->upper);
    if (!it->upper_len) {   /* all 0xff: no upper bound needed (engine.c) */
        free(it->upper);
        it->upper = NULL;
    }
    /* Read options own pointers into the bounds (engine_int.h I4). */
    it->ropts = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(it->ropts, s->snap);
    /* A bulk scan (a whole partition, streamed once) must not fill the
     * block cache: it would evict what reads need and grow the process by
     * the cache's size for nothing. */
    rocksdb_readoptions_set_fill_cache(it->ropts, 0);
    rocksdb_readoptions_set_iterate_lower_bound(it->ropts, it->lower, it->lower_len);
    if (it->upper)
        rocksdb_readoptions_set_iterate_upper_bound(it->ropts, it->upper, it->upper_len);
    it->it = rocksdb_create_iterator_cf(s->e->db, it->ropts, s->e->cf[(int)cf + 1]);
    engine_iter_seek(it, prefix, prefix_len);
    *out = it;
    return OKV_OK;
}

int engine_sst_new(engine_sst **out, engine *e, enum engine_cf cf, const char *path,
                   okv_error *err)
{
    okv_error_clear(err);
    *out = NULL;
    if ((int)cf < 0 || (int)cf >= ENGINE_CF_COUNT)
        return okv_error_set(err, OKV_EINVAL, "engine_sst_new: bad column family %d", (int)cf);
    engine_sst *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return okv_error_set(err, OKV_ENOMEM, "out of memory creating SST file %s", path);
    }
    w->e = e;
    w->env = rocksdb_envoptions_create();
    /* The family's own options: the same table format (and, for data, the
     * same bloom filter) as the files RocksDB writes itself. */
    w->w = rocksdb_sstfilewriter_create(w->env, e->cf_opts[(int)cf + 1]);
    char *errptr = NULL;
    rocksdb_sstfilewriter_open(w->w, path, &errptr);
    if (errptr) {
        int rc = fail(err, errptr, "cannot create SST file", path);
        engine_sst_free(w);
        return rc;
    }
    *out = w;
    return OKV_OK;
}

int engine_sst_delete_range(engine_sst *w, const void *begin, size_t begin_len, const void *end,
                            size_t end_len, okv_error *err)
{
    okv_error_clear(err);
    char *errptr = NULL;
    rocksdb_sstfilewriter_delete_range(w->w, begin, begin_len, end, end_len, &errptr);
    return errptr ? fail(err, errptr, "range deletion in SST file", w->path) : OKV_OK;
}

int engine_sst_put(engine_sst *w, const void *key, size_t key_len, const void *val,
                   size_t val_len, okv_error *err)
{
    okv_error_clear(err);
    char *errptr = NULL;
    rocksdb_sstfilewriter_put(w->w, key, key_len, val, val_len, &errptr);
    return errptr ? fail(err, errptr, "put into SST file", w->path) : OKV_OK;
}

int engine_sst_finish(engine_sst *w, uint64_t *size_out, okv_error *err)
{
    okv_error_clear(err);
    char *errptr = NULL;
    /* SstFileWriter::Finish syncs the file before it returns. */
    rocksdb_sstfilewriter_finish(w->w, &errptr);
    if (errptr)
        return fail(err, errptr, "cannot finish SST file", w->path);
    w->finished = 1;
    if (size_out)
        rocksdb_sstfilewriter_file_size(w->w, size_out);
    return OKV_OK;
}

void engine_sst_free(engine_sst *w)
{
    if (!w)
        return;
    if (w->w)
        rocksdb_sstfilewriter_destroy(w->w);
    if (w->env)
        rocksdb_envoptions_destroy(w->env);
    free(w->path);
    free(w);
}

int engine_ingest(engine *e, enum engine_cf cf, const char *path, okv_error *err)
{
    okv_error_clear(err);
    if ((int)cf < 0 || (int)cf >= ENGINE_CF_COUNT)
        return okv_error_set(err, OKV_EINVAL, "engine_ingest: bad column family %d", (int)cf);
    rocksdb_ingestexternalfileoptions_t *o = rocksdb_ingestexternalfileoptions_create();
    /* Copy: a crash between this ingest and the caller's next durable step
     * must find the file again to redo it (move_files would unlink it). */
    rocksdb_ingestexternalfileoptions_set_move_files(o, 0);
    const char *files[1] = { path };
    char *errptr = NULL;
    rocksdb_ingest_external_file_cf(e->db, e->cf[(int)cf + 1], files, 1, o, &errptr);
    rocksdb_ingestexternalfileoptions_destroy(o);
    return errptr ? fail(err, errptr, "cannot ingest SST file", path) : OKV_OK;
}
