/*
 * engine.c — the storage engine over RocksDB's C API.
 *
 * Design notes
 * ------------
 * One RocksDB per node holds four column families: RocksDB's mandatory
 * "default" (never written) and "raft", "data", "meta" (engine.h). The byte
 * layout of everything stored is in docs/storage-format.md.
 *
 * Opening is the dangerous moment: pointed at the wrong dir, a careless open
 * would create column families in somebody else's RocksDB, or start writing a
 * format it does not understand. So engine_open decides from what is on disk
 * before letting RocksDB write anything:
 *   1. no dir, or a dir holding no CURRENT file and nothing but files RocksDB
 *      itself may have left from an interrupted create: a fresh dir. Only then
 *      are create_if_missing / create_missing_column_families turned on.
 *   2. CURRENT present: list the column families (this reads CURRENT and the
 *      MANIFEST without opening the DB). Exactly ours: open. A superset of
 *      ours: open read-only just to read the format record, so an orderkv of a
 *      later format that added families is reported by its version. Anything
 *      else: refuse, naming the families found.
 *   3. read the format record in meta. Absent on a fresh dir: write it,
 *      synced. Absent with every family empty: a create that crashed between
 *      RocksDB creating the families and our record reaching disk; finish it.
 *      Absent otherwise, malformed, or another version: refuse.
 *
 * Invariants
 * ----------
 * I1. RocksDB is never opened writable on a dir whose column families are not
 *     exactly ours, and never with create flags on a dir that had CURRENT.
 * I2. An engine handed out by engine_open has read format record
 *     ENGINE_FORMAT_VERSION from its own meta family.
 * I3. Every errptr RocksDB fills is freed with rocksdb_free exactly once
 *     (rocks_fail does it), and every RocksDB object is destroyed in
 *     engine_close / engine_iter_free in reverse order of dependency: column
 *     family handles before the DB, the DB before the options and the cache
 *     its tables point at.
 * I4. An iterator's bound buffers live exactly as long as its read options,
 *     which hold pointers into them.
 */
#include "engine.h"
#include "engine_int.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define DEFAULT_BLOCK_CACHE_BYTES ((size_t)64 << 20)
#define BLOOM_BITS_PER_KEY 10.0
#define FORMAT_PREFIX "orderkv-format:"
#define FORMAT_KEY_LEN (sizeof ENGINE_FORMAT_KEY - 1)

static const char *const rocks_cf_names[ENGINE_NUM_ROCKS_CFS] = {
    "default", "raft", "data", "meta"
};

static rocksdb_column_family_handle_t *cf_handle(const engine *e, enum engine_cf cf)
{
    return e->cf[(int)cf + 1];
}

/* ---- RocksDB status -> OKV code ------------------------------------------ */

/* RocksDB reports a Status only as Status::ToString() in errptr, whose prefix
 * names the code. IOError covers NoSpace ("IO error: No space left..."). */
static int code_of_rocks(const char *msg)
{
    static const struct { const char *prefix; int code; } map[] = {
        { "NotFound:", OKV_ENOTFOUND },
        { "Corruption:", OKV_ECORRUPT },
        { "IO error:", OKV_EIO },
        { "Invalid argument:", OKV_EINVAL },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strncmp(msg, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].code;
    return OKV_EINTERNAL;
}

/* Turns a filled errptr into our code and message, and frees it. */
static int rocks_fail(okv_error *err, char *errptr, const char *dir, const char *what)
{
    int code = code_of_rocks(errptr);
    okv_error_set(err, code, "data dir %s: %s: %s", dir, what, errptr);
    rocksdb_free(errptr);
    return code;
}

/* rocks_fail for listing and opening an existing dir. We saw CURRENT, so a
 * file RocksDB cannot find (CURRENT names a MANIFEST that is gone, the
 * MANIFEST names a missing SST) is a damaged dir, not an I/O failure. */
static int rocks_open_fail(okv_error *err, char *errptr, const char *dir, const char *what)
{
    if (code_of_rocks(errptr) == OKV_EIO && strstr(errptr, "No such file or directory")) {
        okv_error_set(err, OKV_ECORRUPT, "data dir %s: %s: a file the dir refers to is "
                      "missing: %s", dir, what, errptr);
        rocksdb_free(errptr);
        return OKV_ECORRUPT;
    }
    return rocks_fail(err, errptr, dir, what);
}

/* ---- the dir itself ------------------------------------------------------ */

/* mkdir -p: RocksDB's own create only makes the last component. */
static int mkdir_p(const char *dir, okv_error *err)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n >= sizeof path)
        return okv_error_set(err, OKV_EINVAL, "data dir path too long: %s", dir);
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return okv_error_set(err, OKV_EIO, "cannot create data dir %s: mkdir %s: %s",
                                 dir, path, strerror(errno));
        path[i] = saved;
    }
    return OKV_OK;
}

/* "<digits><suffix>", RocksDB's numbered files (000001.dbtmp). */
static int is_numbered(const char *name, const char *suffix)
{
    size_t n = strlen(name), sl = strlen(suffix), i = 0;
    if (n <= sl || strcmp(name + n - sl, suffix) != 0)
        return 0;
    while (i < n - sl && name[i] >= '0' && name[i] <= '9')
        i++;
    return i == n - sl;
}

/* Files RocksDB writes into a DB dir before CURRENT exists. A dir holding only
 * these is the remains of an interrupted create and safe to initialise; any
 * other file means the dir is somebody else's. */
static int is_rocks_file(const char *name)
{
    static const char *const exact[] = { ".", "..", "LOCK", "LOG", "IDENTITY" };
    static const char *const prefixes[] = { "LOG.old.", "MANIFEST-", "OPTIONS-" };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(name, exact[i]) == 0)
            return 1;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    /* Not "*.log": RocksDB makes the first WAL only after CURRENT, and
     * itself refuses to create a DB over one (that is a damaged DB). */
    return is_numbered(name, ".dbtmp");
}

/* Decides whether dir is fresh (*fresh = 1: to be created) or holds a RocksDB
 * (*fresh = 0), creating it if absent and allowed. */
static int examine_dir(const char *dir, int create, int *fresh, okv_error *err)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT)
            return okv_error_set(err, OKV_EIO, "cannot access data dir %s: %s", dir,
                                 strerror(errno));
        if (!create)
            return okv_error_set(err, OKV_ENOTFOUND,
                                 "data dir %s does not exist (and create_if_missing is off)",
                                 dir);
        *fresh = 1;
        return mkdir_p(dir, err);
    }
    if (!S_ISDIR(st.st_mode))
        return okv_error_set(err, OKV_EINVAL, "data dir %s exists but is not a directory", dir);

    DIR *d = opendir(dir);
    if (!d)
        return okv_error_set(err, OKV_EIO, "cannot read data dir %s: %s", dir, strerror(errno));
    int has_current = 0;
    char foreign[256] = "";
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, "CURRENT") == 0)
            has_current = 1;
        else if (!foreign[0] && !is_rocks_file(de->d_name))
            snprintf(foreign, sizeof foreign, "%s", de->d_name);
    }
    closedir(d);

    if (has_current) {
        *fresh = 0;
        return OKV_OK;
    }
    if (foreign[0])
        return okv_error_set(err, OKV_EFORMAT,
                             "data dir %s is not empty and holds no database (found '%s'); "
                             "refusing to initialise it", dir, foreign);
    if (!create)
        return okv_error_set(err, OKV_ENOTFOUND,
                             "data dir %s holds no database (and create_if_missing is off)", dir);
    *fresh = 1;
    return OKV_OK;
}

/* ---- options ------------------------------------------------------------- */

static rocksdb_block_based_table_options_t *table_options(rocksdb_cache_t *cache, int bloom)
{
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, cache);
    /* Point reads in data go to many partitions' keys; a full-key bloom filter
     * spares a disk read per SST that does not hold the key. The filter policy
     * is owned by t from here on. */
    if (bloom)
        rocksdb_block_based_options_set_filter_policy(
            t, rocksdb_filterpolicy_create_bloom_full(BLOOM_BITS_PER_KEY));
    return t;
}

static void setup_options(engine *e, size_t cache_bytes)
{
    e->cache = rocksdb_cache_create_lru(cache_bytes ? cache_bytes : DEFAULT_BLOCK_CACHE_BYTES);

    e->db_opts = rocksdb_options_create();
    /* Two background threads: the machine is shared with the raft loop and
     * gRPC threads, and compaction must keep up without starving them. */
    rocksdb_options_increase_parallelism(e->db_opts, 2);
    rocksdb_options_set_keep_log_file_num(e->db_opts, 10);
    /* The table factory copies the table options, so they are freed at once;
     * the cache is shared by reference count and destroyed in engine_close. */
    rocksdb_block_based_table_options_t *plain = table_options(e->cache, 0);
    rocksdb_options_set_block_based_table_factory(e->db_opts, plain);
    rocksdb_block_based_options_destroy(plain);

    e->cf_opts[0] = e->db_opts;
    for (int i = 1; i < ENGINE_NUM_ROCKS_CFS; i++)
        e->cf_opts[i] = rocksdb_options_create_copy(e->db_opts);
    rocksdb_block_based_table_options_t *bloom = table_options(e->cache, 1);
    rocksdb_options_set_block_based_table_factory(e->cf_opts[ENGINE_CF_DATA + 1], bloom);
    rocksdb_block_based_options_destroy(bloom);
    /* Applying an entry looks up keys that are mostly absent: a lock on a
     * written key, a transaction's records, an exactly-once record. In a
     * full memtable each miss walks the skip list (in a profile of 2PC
     * transfers, a sixth of the raft loop's time); a whole-key bloom filter
     * in the memtable answers most misses without it. */
    for (int cf = ENGINE_CF_DATA; cf <= ENGINE_CF_META; cf++) {
        rocksdb_options_set_memtable_prefix_bloom_size_ratio(e->cf_opts[cf + 1], 0.05);
        rocksdb_options_set_memtable_whole_key_filtering(e->cf_opts[cf + 1], 1);
    }

    e->ropts = rocksdb_readoptions_create();
    e->wopts_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(e->wopts_sync, 1);
    e->wopts_nosync = rocksdb_writeoptions_create();
}

/* ---- column families and the format record ------------------------------- */

static int has_name(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

static void join_names(char *out, size_t cap, char **names, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        int w = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* Parses "orderkv-format:<decimal>" strictly. Returns the version, or 0 if the
 * value is malformed (version 0 was never written). */
static unsigned long parse_format(const char *val, size_t len)
{
    size_t plen = strlen(FORMAT_PREFIX);
    unsigned long v = 0;
    if (len <= plen || len > plen + 9 || memcmp(val, FORMAT_PREFIX, plen) != 0)
        return 0;
    for (size_t i = plen; i < len; i++) {
        if (val[i] < '0' || val[i] > '9')
            return 0;
        v = v * 10 + (unsigned long)(val[i] - '0');
    }
    return v;
}

/* Reads the format record from meta: *version = 0 if absent. OKV_ECORRUPT if
 * present but malformed. */
static int read_format(rocksdb_t *db, rocksdb_readoptions_t *ro,
                       rocksdb_column_family_handle_t *meta, const char *dir,
                       unsigned long *version, okv_error *err)
{
    char *errptr = NULL;
    rocksdb_pinnableslice_t *v = rocksdb_get_pinned_cf(db, ro, meta, ENGINE_FORMAT_KEY,
                                                       FORMAT_KEY_LEN, &errptr);
    *version = 0;
    if (errptr)
        return rocks_fail(err, errptr, dir, "reading the format record");
    if (!v)
        return OKV_OK;
    size_t len;
    const char *val = rocksdb_pinnableslice_value(v, &len);
    *version = parse_format(val, len);
    if (*version == 0) {
        int shown = len > 64 ? 64 : (int)len;
        rocksdb_pinnableslice_destroy(v);
        return okv_error_set(err, OKV_ECORRUPT,
                             "data dir %s: malformed format record (%d bytes starting '%.*s')",
                             dir, (int)len, shown, val);
    }
    rocksdb_pinnableslice_destroy(v);
    return OKV_OK;
}

static int version_refused(const char *dir, unsigned long version, okv_error *err)
{
    return okv_error_set(err, OKV_EFORMAT,
                         "data dir %s was written by format version %lu; this orderkvd "
                         "reads %u (see docs/storage-format.md)",
                         dir, version, ENGINE_FORMAT_VERSION);
}

/* A dir holding our families and more: opened read-only (writes nothing, takes
 * no lock) only to tell a later orderkv format from a stranger. */
static int refuse_superset(engine *e, char **names, size_t n, const char *list, okv_error *err)
{
    rocksdb_options_t **opts = calloc(n, sizeof *opts);
    rocksdb_column_family_handle_t **h = calloc(n, sizeof *h);
    size_t meta = 0;
    int rc;
    if (!opts || !h) {
        rc = okv_error_set(err, OKV_ENOMEM, "data dir %s: out of memory", e->dir);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        opts[i] = e->db_opts;
        if (strcmp(names[i], "meta") == 0)
            meta = i;
    }
    char *errptr = NULL;
    rocksdb_t *db = rocksdb_open_for_read_only_column_families(
        e->db_opts, e->dir, (int)n, (const char *const *)names,
        (const rocksdb_options_t *const *)opts, h, 0, &errptr);
    if (errptr) {
        rc = rocks_open_fail(err, errptr, e->dir, "opening read-only to check the format");
        goto out;
    }
    unsigned long version = 0;
    rc = read_format(db, e->ropts, h[meta], e->dir, &version, err);
    for (size_t i = 0; i < n; i++)
        rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_close(db);
    if (rc == OKV_OK && version != 0 && version != ENGINE_FORMAT_VERSION)
        rc = version_refused(e->dir, version, err);
    else if (rc == OKV_OK)
        rc = okv_error_set(err, OKV_EFORMAT,
                           "data dir %s is not an orderkv data dir (column families: %s)",
                           e->dir, list);
out:
    free(opts);
    free(h);
    return rc;
}

/* Step 2 of the design notes: the dir holds a RocksDB; is it ours? */
static int check_column_families(engine *e, okv_error *err)
{
    char *errptr = NULL;
    size_t n = 0;
    char **names = rocksdb_list_column_families(e->db_opts, e->dir, &n, &errptr);
    if (errptr) {
        /* RocksDB returns a malloc'd (empty) array even on failure. */
        rocksdb_list_column_families_destroy(names, n);
        return rocks_open_fail(err, errptr, e->dir, "listing column families");
    }

    char list[256];
    join_names(list, sizeof list, names, n);
    size_t ours = 0;
    for (int i = 0; i < ENGINE_NUM_ROCKS_CFS; i++)
        ours += (size_t)has_name(names, n, rocks_cf_names[i]);

    int rc = OKV_OK;
    if (ours == ENGINE_NUM_ROCKS_CFS && n > ours)
        rc = refuse_superset(e, names, n, list, err);
    else if (ours != ENGINE_NUM_ROCKS_CFS || n != ours)
        /* Only some of ours and nothing else is also what a MANIFEST cut
         * short looks like (RocksDB reads a truncated one without complaint
         * and loses the records that created the families), so say so. */
        rc = okv_error_set(err, OKV_EFORMAT,
                           "data dir %s is not an orderkv data dir (column families: %s)%s",
                           e->dir, list, n == ours ? "; if it was one, its MANIFEST is "
                           "damaged" : "");
    rocksdb_list_column_families_destroy(names, n);
    return rc;
}

static int open_db(engine *e, int fresh, okv_error *err)
{
    char *errptr = NULL;
    rocksdb_options_set_create_if_missing(e->db_opts, (unsigned char)fresh);
    rocksdb_options_set_create_missing_column_families(e->db_opts, (unsigned char)fresh);
    e->db = rocksdb_open_column_families(e->db_opts, e->dir, ENGINE_NUM_ROCKS_CFS,
                                         rocks_cf_names,
                                         (const rocksdb_options_t *const *)e->cf_opts,
                                         e->cf, &errptr);
    if (!errptr)
        return OKV_OK;
    /* The LOCK file is RocksDB's guard against two writers; its error text
     * ("While lock file: …/LOCK: Resource temporarily unavailable", or "lock
     * hold by current process" within one process) does not tell an operator
     * what is wrong, so say it plainly. */
    if (code_of_rocks(errptr) == OKV_EIO && strstr(errptr, "/LOCK:")) {
        okv_error_set(err, OKV_EIO,
                      "data dir %s is in use by another process (or another engine in "
                      "this one): %s", e->dir, errptr);
        rocksdb_free(errptr);
        return OKV_EIO;
    }
    return rocks_open_fail(err, errptr, e->dir, "opening RocksDB");
}

static int cf_is_empty(engine *e, int idx)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(e->db, e->ropts, e->cf[idx]);
    rocksdb_iter_seek_to_first(it);
    int empty = !rocksdb_iter_valid(it);
    rocksdb_iter_destroy(it);
    return empty;
}

/* Step 3 of the design notes. */
static int check_format(engine *e, int fresh, int create, okv_error *err)
{
    unsigned long version;
    int rc = read_format(e->db, e->ropts, cf_handle(e, ENGINE_CF_META), e->dir, &version, err);
    if (rc != OKV_OK)
        return rc;
    if (version == ENGINE_FORMAT_VERSION)
        return OKV_OK;
    if (version != 0)
        return version_refused(e->dir, version, err);

    int interrupted_create = 0;
    if (!fresh && create) {
        interrupted_create = 1;
        for (int i = 0; i < ENGINE_NUM_ROCKS_CFS; i++)
            interrupted_create &= cf_is_empty(e, i);
    }
    if (!fresh && !interrupted_create)
        return okv_error_set(err, OKV_EFORMAT,
                             "data dir %s has orderkv's column families but no format record; "
                             "refusing to guess its format (see docs/storage-format.md)", e->dir);

    char rec[64];
    int n = snprintf(rec, sizeof rec, FORMAT_PREFIX "%u", ENGINE_FORMAT_VERSION);
    char *errptr = NULL;
    rocksdb_put_cf(e->db, e->wopts_sync, cf_handle(e, ENGINE_CF_META), ENGINE_FORMAT_KEY,
                   FORMAT_KEY_LEN, rec, (size_t)n, &errptr);
    if (errptr)
        return rocks_fail(err, errptr, e->dir, "writing the format record");
    return OKV_OK;
}

/* ---- open / close -------------------------------------------------------- */

int engine_open(engine **out, const char *dir, const engine_options *opts, okv_error *err)
{
    static const engine_options defaults = ENGINE_OPTIONS_INIT;
    okv_error_clear(err);
    if (!out || !dir || !dir[0])
        return okv_error_set(err, OKV_EINVAL, "engine_open: no data dir given");
    *out = NULL;
    if (!opts)
        opts = &defaults;

    int fresh = 0;
    int rc = examine_dir(dir, opts->create_if_missing, &fresh, err);
    if (rc != OKV_OK)
        return rc;

    engine *e = calloc(1, sizeof *e);
    if (!e || !(e->dir = strdup(dir))) {
        free(e);
        return okv_error_set(err, OKV_ENOMEM, "data dir %s: out of memory", dir);
    }
    setup_options(e, opts->block_cache_bytes);

    if (!fresh && (rc = check_column_families(e, err)) != OKV_OK)
        goto fail;
    if ((rc = open_db(e, fresh, err)) != OKV_OK)
        goto fail;
    if ((rc = check_format(e, fresh, opts->create_if_missing, err)) != OKV_OK)
        goto fail;
    *out = e;
    return OKV_OK;
fail:
    engine_close(e);
    return rc;
}

void engine_close(engine *e)
{
    if (!e)
        return;
    /* Handles first: RocksDB requires every column family handle destroyed
     * before the DB is closed. */
    for (int i = 0; i < ENGINE_NUM_ROCKS_CFS; i++)
        if (e->cf[i])
            rocksdb_column_family_handle_destroy(e->cf[i]);
    if (e->db)
        rocksdb_close(e->db);
    for (int i = 1; i < ENGINE_NUM_ROCKS_CFS; i++)
        if (e->cf_opts[i])
            rocksdb_options_destroy(e->cf_opts[i]);
    if (e->db_opts)
        rocksdb_options_destroy(e->db_opts);
    if (e->cache)
        rocksdb_cache_destroy(e->cache);
    if (e->ropts)
        rocksdb_readoptions_destroy(e->ropts);
    if (e->wopts_sync)
        rocksdb_writeoptions_destroy(e->wopts_sync);
    if (e->wopts_nosync)
        rocksdb_writeoptions_destroy(e->wopts_nosync);
    free(e->dir);
    free(e);
}

const char *engine_dir(const engine *e)
{
    return e->dir;
}

/* ---- point operations ---------------------------------------------------- */

/* RocksDB counts every key comparison and step into a thread-local perf
 * context unless the calling thread turns that off: in a profile of puts
 * the counting (__tls_get_addr and the perf_context TLS init) took about 7%
 * of a node's CPU, next to the memtable comparisons it counts. Nothing here
 * reads those counters. The level is per thread, so each thread that enters
 * the engine sets it once. */
static void perf_off(void)
{
    static __thread int done;
    if (!done) {
        rocksdb_set_perf_level(1);   /* rocksdb::PerfLevel::kDisable */
        done = 1;
    }
}

static rocksdb_writeoptions_t *wopts(const engine *e, int sync)
{
    perf_off();
    return sync ? e->wopts_sync : e->wopts_nosync;
}

int engine_property_uint(engine *e, enum engine_cf cf, const char *name, uint64_t *out)
{
    if ((unsigned)cf >= ENGINE_CF_COUNT)
        return OKV_EINVAL;
    return rocksdb_property_int_cf(e->db, e->cf[cf + 1], name, out) == 0 ? OKV_OK
                                                                          : OKV_ENOTFOUND;
}

int engine_get(engine *e, enum engine_cf cf, const void *key, size_t key_len,
               char **val_out, size_t *len_out, okv_error *err)
{
    okv_error_clear(err);
    *val_out = NULL;
    *len_out = 0;
    if (!engine_cf_ok(cf))
        return okv_error_set(err, OKV_EINVAL, "engine_get: bad column family %d", (int)cf);
    perf_off();
    char *errptr = NULL;
    /* Pinned: one copy (ours, below) instead of two, and NULL means absent
     * without ambiguity for empty values. */
    rocksdb_pinnableslice_t *v = rocksdb_get_pinned_cf(e->db, e->ropts, cf_handle(e, cf),
                                                       key, key_len, &errptr);
    if (errptr)
        return rocks_fail(err, errptr, e->dir, "get");
    if (!v)
        return okv_error_set(err, OKV_ENOTFOUND, "key not found");
    size_t len;
    const char *p = rocksdb_pinnableslice_value(v, &len);
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        rocksdb_pinnableslice_destroy(v);
        return okv_error_set(err, OKV_ENOMEM, "engine_get: out of memory (%zu bytes)", len);
    }
    if (len)
        memcpy(copy, p, len);
    rocksdb_pinnableslice_destroy(v);
    *val_out = copy;
    *len_out = len;
    return OKV_OK;
}

int engine_put(engine *e, enum engine_cf cf, const void *key, size_t key_len,
               const void *val, size_t val_len, int sync, okv_error *err)
{
    okv_error_clear(err);
    if (!engine_cf_ok(cf))
        return okv_error_set(err, OKV_EINVAL, "engine_put: bad column family %d", (int)cf);
    char *errptr = NULL;
    rocksdb_put_cf(e->db, wopts(e, sync), cf_handle(e, cf), key, key_len, val, val_len,
                   &errptr);
    return errptr ? rocks_fail(err, errptr, e->dir, "put") : OKV_OK;
}

int engine_delete(engine *e, enum engine_cf cf, const void *key, size_t key_len, int sync,
                  okv_error *err)
{
    okv_error_clear(err);
    if (!engine_cf_ok(cf))
        return okv_error_set(err, OKV_EINVAL, "engine_delete: bad column family %d", (int)cf);
    char *errptr = NULL;
    rocksdb_delete_cf(e->db, wopts(e, sync), cf_handle(e, cf), key, key_len, &errptr);
    return errptr ? rocks_fail(err, errptr, e->dir, "delete") : OKV_OK;
}

int engine_write(engine *e, engine_batch *b, int sync, okv_error *err)
{
    okv_error_clear(err);
    if (b->error)
        return okv_error_set(err, b->error, "data dir %s: batch not written: %s while it was "
                             "being built", e->dir,
                             b->error == OKV_ENOMEM ? "out of memory" : "a bad column family "
                             "or a key or value over 4 GiB");
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    engine_batch_rec r;
    for (size_t off = 0; engine_batch_rec_next(b->buf, b->len, &off, &r);) {
        rocksdb_column_family_handle_t *h = cf_handle(e, r.cf);
        if (r.op == BATCH_OP_PUT)
            rocksdb_writebatch_put_cf(wb, h, r.key, r.key_len, r.val, r.val_len);
        else if (r.op == BATCH_OP_DELETE_RANGE)
            rocksdb_writebatch_delete_range_cf(wb, h, r.key, r.key_len, r.val, r.val_len);
        else
            rocksdb_writebatch_delete_cf(wb, h, r.key, r.key_len);
    }
    engine_assert((size_t)rocksdb_writebatch_count(wb) == b->count);
    char *errptr = NULL;
    rocksdb_write(e->db, wopts(e, sync), wb, &errptr);
    rocksdb_writebatch_destroy(wb);
    return errptr ? rocks_fail(err, errptr, e->dir, "write batch") : OKV_OK;
}

/* ---- iterators ----------------------------------------------------------- */

static char *dup_bytes(const void *p, size_t len)
{
    char *c = malloc(len ? len : 1);
    if (c && len)
        memcpy(c, p, len);
    return c;
}

int engine_iter_new(engine_iter **out, engine *e, enum engine_cf cf, const void *lower,
                    size_t lower_len, const void *upper, size_t upper_len, okv_error *err)
{
    okv_error_clear(err);
    *out = NULL;
    if (!engine_cf_ok(cf))
        return okv_error_set(err, OKV_EINVAL, "engine_iter_new: bad column family %d", (int)cf);
    engine_iter *it = calloc(1, sizeof *it);
    if (!it)
        goto oom;
    it->e = e;
    if (lower && lower_len) {
        if (!(it->lower = dup_bytes(lower, lower_len)))
            goto oom;
        it->lower_len = lower_len;
    }
    if (upper) {
        if (!(it->upper = dup_bytes(upper, upper_len)))
            goto oom;
        it->upper_len = upper_len;
    }
    /* Own read options per iterator: the bounds are per iterator, and RocksDB
     * keeps pointers to them (I4). */
    it->ropts = rocksdb_readoptions_create();
    if (it->lower)
        rocksdb_readoptions_set_iterate_lower_bound(it->ropts, it->lower, it->lower_len);
    if (it->upper)
        rocksdb_readoptions_set_iterate_upper_bound(it->ropts, it->upper, it->upper_len);
    perf_off();
    it->it = rocksdb_create_iterator_cf(e->db, it->ropts, cf_handle(e, cf));
    engine_iter_seek(it, "", 0);
    *out = it;
    return OKV_OK;
oom:
    engine_iter_free(it);
    return okv_error_set(err, OKV_ENOMEM, "engine_iter_new: out of memory");
}

int engine_iter_new_prefix(engine_iter **out, engine *e, enum engine_cf cf, const void *prefix,
                           size_t prefix_len, okv_error *err)
{
    okv_error_clear(err);
    *out = NULL;
    if (!prefix || prefix_len == 0)
        return okv_error_set(err, OKV_EINVAL, "engine_iter_new_prefix: empty prefix");
    uint8_t *succ = malloc(prefix_len);
    if (!succ)
        return okv_error_set(err, OKV_ENOMEM, "engine_iter_new_prefix: out of memory");
    size_t succ_len = engine_prefix_successor(prefix, prefix_len, succ);
    /* An all-0xff prefix has no successor, and needs no upper bound: a key
     * k >= prefix that does not start with it would have to differ first at
     * some byte where k's byte is greater than 0xff. */
    int rc = engine_iter_new(out, e, cf, prefix, prefix_len, succ_len ? succ : NULL, succ_len,
                             err);
    free(succ);
    return rc;
}

void engine_iter_free(engine_iter *it)
{
    if (!it)
        return;
    /* Iterator before its read options, read options before the bound
     * buffers they point into. */
    if (it->it)
        rocksdb_iter_destroy(it->it);
    if (it->ropts)
        rocksdb_readoptions_destroy(it->ropts);
    free(it->lower);
    free(it->upper);
    free(it);
}

int engine_iter_valid(const engine_iter *it)
{
    return rocksdb_iter_valid(it->it) != 0;
}

void engine_iter_next(engine_iter *it)
{
    /* RocksDB's Next on an invalid iterator is undefined; make it a no-op. */
    if (rocksdb_iter_valid(it->it))
        rocksdb_iter_next(it->it);
}

void engine_iter_seek(engine_iter *it, const void *key, size_t key_len)
{
    /* RocksDB clamps a seek below the lower bound itself, but we do not rely
     * on that; a seek at or past the upper bound lands on the bound, which the
     * upper bound makes invalid. */
    if (it->lower && engine_key_cmp(key, key_len, it->lower, it->lower_len) < 0) {
        key = it->lower;
        key_len = it->lower_len;
    }
    if (it->upper && engine_key_cmp(key, key_len, it->upper, it->upper_len) >= 0) {
        key = it->upper;
        key_len = it->upper_len;
    }
    rocksdb_iter_seek(it->it, key, key_len);
}

const char *engine_iter_key(const engine_iter *it, size_t *len_out)
{
    if (!rocksdb_iter_valid(it->it)) {
        *len_out = 0;
        return NULL;
    }
    return rocksdb_iter_key(it->it, len_out);
}

const char *engine_iter_value(const engine_iter *it, size_t *len_out)
{
    if (!rocksdb_iter_valid(it->it)) {
        *len_out = 0;
        return NULL;
    }
    return rocksdb_iter_value(it->it, len_out);
}

int engine_iter_status(const engine_iter *it, okv_error *err)
{
    okv_error_clear(err);
    char *errptr = NULL;
    rocksdb_iter_get_error(it->it, &errptr);
    if (!errptr)
        return OKV_OK;
    int code = code_of_rocks(errptr);
    okv_error_set(err, code, "data dir %s: iterator: %s", it->e->dir, errptr);
    rocksdb_free(errptr);
    return code;
}
