/*
 * test_engine.c — the RocksDB engine: open/refuse, point ops per column
 * family, atomic batches, bounded and prefix iterators.
 *
 * Every test gets its own mkdtemp dir under /tmp (the setup) and removes it
 * (the teardown). Tests that need a second process (a crash, a lock held by
 * someone else, an unprivileged user) re-execute this binary with "--child";
 * a fresh exec, unlike a bare fork, inherits none of RocksDB's threads.
 */
#define _XOPEN_SOURCE 700

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "engine.h"

#define FORMAT_KEY_LEN (sizeof ENGINE_FORMAT_KEY - 1)

static const char *self_exe;

/* ---- fixture ------------------------------------------------------------- */

struct fixture {
    char dir[64];   /* the mkdtemp dir */
    char db[128];   /* dir/db: the data dir most tests open */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/okv-test-engine-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->db, sizeof f->db, "%s/db", f->dir);
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    chmod(path, 0700); /* undo the permission tests so the walk can remove all */
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    chmod(f->dir, 0700);
    int rc = nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

/* ---- helpers ------------------------------------------------------------- */

static engine *open_ok(const char *dir)
{
    engine *e = NULL;
    okv_error err;
    int rc = engine_open(&e, dir, NULL, &err);
    if (rc != OKV_OK)
        fprintf(stderr, "engine_open(%s): %d %s\n", dir, rc, err.msg);
    assert_int_equal(rc, OKV_OK);
    assert_non_null(e);
    return e;
}

static void put_ok(engine *e, enum engine_cf cf, const char *k, const char *v, int sync)
{
    okv_error err;
    assert_int_equal(engine_put(e, cf, k, strlen(k), v, strlen(v), sync, &err), OKV_OK);
}

/* Asserts cf holds k = v (v NULL: k absent). */
static void expect(engine *e, enum engine_cf cf, const char *k, const char *v)
{
    char *got = NULL;
    size_t len = 0;
    okv_error err;
    int rc = engine_get(e, cf, k, strlen(k), &got, &len, &err);
    if (!v) {
        assert_int_equal(rc, OKV_ENOTFOUND);
        return;
    }
    assert_int_equal(rc, OKV_OK);
    assert_int_equal(len, strlen(v));
    assert_memory_equal(got, v, len);
    free(got);
}

/* The format record's key starts with a NUL, so expect() cannot take it. */
static void expect_format(engine *e, const char *want)
{
    char *got = NULL;
    size_t len = 0;
    okv_error err;
    assert_int_equal(engine_get(e, ENGINE_CF_META, ENGINE_FORMAT_KEY, FORMAT_KEY_LEN, &got,
                                &len, &err), OKV_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
    free(got);
}

static int has_text(const char *msg, const char *needle)
{
    if (strstr(msg, needle))
        return 1;
    fprintf(stderr, "message \"%s\" lacks \"%s\"\n", msg, needle);
    return 0;
}

/* Opens a RocksDB by hand with the given column families; the tests use it to
 * forge dirs engine_open must refuse. */
static rocksdb_t *rocks_open(const char *dir, const char *const *names, int n, int create,
                             rocksdb_column_family_handle_t **h)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, (unsigned char)create);
    rocksdb_options_set_create_missing_column_families(o, (unsigned char)create);
    const rocksdb_options_t *cfo[8];
    for (int i = 0; i < n; i++)
        cfo[i] = o;
    char *errptr = NULL;
    rocksdb_t *db = rocksdb_open_column_families(o, dir, n, names, cfo, h, &errptr);
    if (errptr) {
        fprintf(stderr, "rocks_open(%s): %s\n", dir, errptr);
        rocksdb_free(errptr);
    }
    rocksdb_options_destroy(o);
    assert_non_null(db);
    return db;
}

static void rocks_close(rocksdb_t *db, rocksdb_column_family_handle_t **h, int n)
{
    for (int i = 0; i < n; i++)
        rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_close(db);
}

static const char *const our_cfs[] = { "default", "raft", "data", "meta" };

/* Rewrites (val != NULL) or deletes the format record of an orderkv dir. */
static void forge_format(const char *dir, const char *val)
{
    rocksdb_column_family_handle_t *h[4];
    rocksdb_t *db = rocks_open(dir, our_cfs, 4, 0, h);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, 1);
    char *errptr = NULL;
    if (val)
        rocksdb_put_cf(db, wo, h[3], ENGINE_FORMAT_KEY, FORMAT_KEY_LEN, val, strlen(val),
                       &errptr);
    else
        rocksdb_delete_cf(db, wo, h[3], ENGINE_FORMAT_KEY, FORMAT_KEY_LEN, &errptr);
    assert_null(errptr);
    rocksdb_writeoptions_destroy(wo);
    rocks_close(db, h, 4);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void read_current(const char *db, char *manifest, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/CURRENT", db);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(manifest, (int)cap, fp));
    fclose(fp);
    manifest[strcspn(manifest, "\n")] = '\0';
}

/* ---- child processes ----------------------------------------------------- */

/* Runs in a re-executed copy of this binary:
 *   --child hold DIR     open DIR, print "OK", hold it until stdin closes
 *   --child crash DIR    open DIR, write synced, then SIGKILL ourselves
 *   --child open DIR     open DIR and print "<code> <message>" */
static int child_main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    const char *mode = argv[2], *dir = argv[3];
    engine *e = NULL;
    okv_error err;
    int rc = engine_open(&e, dir, NULL, &err);
    if (strcmp(mode, "open") == 0) {
        printf("%d %s\n", rc, rc ? err.msg : "");
        engine_close(e);
        return 0;
    }
    if (rc != OKV_OK) {
        printf("ERR %d %s\n", rc, err.msg);
        return 1;
    }
    if (strcmp(mode, "hold") == 0) {
        printf("OK\n");
        fflush(stdout);
        char c;
        while (read(0, &c, 1) > 0)
            ;
        engine_close(e);
        return 0;
    }
    if (strcmp(mode, "crash") == 0) {
        char k[32];
        for (int i = 0; i < 100; i++) {
            int n = snprintf(k, sizeof k, "k%03d", i);
            if (engine_put(e, ENGINE_CF_DATA, k, (size_t)n, "v", 1, 1, &err) != OKV_OK)
                return 1;
        }
        engine_batch *b = engine_batch_new();
        engine_batch_put(b, ENGINE_CF_RAFT, "entry", 5, "e1", 2);
        engine_batch_delete(b, ENGINE_CF_DATA, "k000", 4);
        if (engine_write(e, b, 1, &err) != OKV_OK)
            return 1;
        /* Acknowledged and synced; now die without engine_close. */
        kill(getpid(), SIGKILL);
    }
    return 2;
}

/* Starts `self --child mode dir`; as_nobody drops to uid/gid 65534 first when
 * we are root (a non-root user is already subject to permissions). The
 * child's stdout is *out_fd, its stdin *in_fd (pass NULL to give it none). */
static pid_t spawn_child(const char *mode, const char *dir, int as_nobody, int *out_fd,
                         int *in_fd)
{
    int out[2], in[2];
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(in), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. */
        dup2(out[1], 1);
        dup2(in[0], 0);
        close(out[0]);
        close(out[1]);
        close(in[0]);
        close(in[1]);
        if (as_nobody && geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(77);
        char *const argv[] = { (char *)self_exe, (char *)"--child", (char *)mode,
                               (char *)dir, NULL };
        execv(self_exe, argv);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    *out_fd = out[0];
    if (in_fd)
        *in_fd = in[1];
    else
        close(in[1]);
    return pid;
}

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    return n;
}

static int wait_child(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

/* ---- opening ------------------------------------------------------------- */

static void test_engine__open_creates_missing_dir_with_parents(void **state)
{
    struct fixture *f = *state;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/a/b/c", f->dir);
    engine *e = open_ok(dir);
    assert_string_equal(engine_dir(e), dir);
    expect_format(e, "orderkv-format:1");
    engine_close(e);
    engine_close(NULL);
}

static void test_engine__open_initialises_existing_empty_dir(void **state)
{
    struct fixture *f = *state;
    engine *e = open_ok(f->dir);
    expect_format(e, "orderkv-format:1");
    engine_close(e);
}

static void test_engine__reopen_keeps_data(void **state)
{
    struct fixture *f = *state;
    engine *e = open_ok(f->db);
    put_ok(e, ENGINE_CF_RAFT, "r", "raft-value", 1);
    put_ok(e, ENGINE_CF_DATA, "d", "data-value", 0);
    put_ok(e, ENGINE_CF_META, "m", "meta-value", 1);
    engine_close(e);
    for (int round = 0; round < 2; round++) {
        e = open_ok(f->db);
        expect(e, ENGINE_CF_RAFT, "r", "raft-value");
        expect(e, ENGINE_CF_DATA, "d", "data-value");
        expect(e, ENGINE_CF_META, "m", "meta-value");
        expect_format(e, "orderkv-format:1");
        engine_close(e);
    }
}

static void test_engine__no_create_if_missing_reports_not_found(void **state)
{
    struct fixture *f = *state;
    engine_options o = ENGINE_OPTIONS_INIT;
    o.create_if_missing = 0;
    engine *e = (engine *)1;
    okv_error err;
    assert_int_equal(engine_open(&e, f->db, &o, &err), OKV_ENOTFOUND);
    assert_null(e);
    assert_true(has_text(err.msg, f->db));
    /* An empty existing dir is not initialised either. */
    assert_int_equal(engine_open(&e, f->dir, &o, &err), OKV_ENOTFOUND);
    struct stat st;
    char current[128];
    snprintf(current, sizeof current, "%s/CURRENT", f->dir);
    assert_int_equal(stat(current, &st), -1);
}

static void test_engine__refuses_regular_file(void **state)
{
    struct fixture *f = *state;
    write_file(f->db, "hello", 5);
    engine *e = NULL;
    okv_error err;
    assert_int_equal(engine_open(&e, f->db, NULL, &err), OKV_EINVAL);
    assert_true(has_text(err.msg, f->db));
    assert_true(has_text(err.msg, "not a directory"));
    /* A path through a regular file cannot be created either. */
    char below[256];
    snprintf(below, sizeof below, "%s/sub", f->db);
    assert_true(engine_open(&e, below, NULL, &err) < 0);
    assert_null(e);
}

static void test_engine__refuses_non_empty_dir_without_database(void **state)
{
    struct fixture *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/notes.txt", f->dir);
    write_file(path, "mine", 4);
    engine *e = NULL;
    okv_error err;
    assert_int_equal(engine_open(&e, f->dir, NULL, &err), OKV_EFORMAT);
    assert_true(has_text(err.msg, f->dir));
    assert_true(has_text(err.msg, "notes.txt"));
    snprintf(path, sizeof path, "%s/CURRENT", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), -1); /* nothing was written */

    /* A name that merely looks like RocksDB's is not taken for one, nor is a
     * write-ahead log without CURRENT (a damaged database)... */
    assert_int_equal(mkdir(f->db, 0755), 0);
    snprintf(path, sizeof path, "%s/LOGBOOK", f->db);
    write_file(path, "x", 1);
    assert_int_equal(engine_open(&e, f->db, NULL, &err), OKV_EFORMAT);
    assert_true(has_text(err.msg, "LOGBOOK"));
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof path, "%s/000003.log", f->db);
    write_file(path, "x", 1);
    assert_int_equal(engine_open(&e, f->db, NULL, &err), OKV_EFORMAT);
    assert_true(has_text(err.msg, "000003.log"));
}

/* ...but what an interrupted RocksDB create leaves behind (no CURRENT yet) is,
 * and the dir is initialised. */
static void test_engine__initialises_leftovers_of_interrupted_create(void **state)
{
    struct fixture *f = *state;
    static const char *const left[] = { "LOCK", "LOG", "IDENTITY", "MANIFEST-000001",
                                        "000001.dbtmp" };
    char path[256];
    assert_int_equal(mkdir(f->db, 0755), 0);
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", f->db, left[i]);
        write_file(path, "", 0);
    }
    engine *e = open_ok(f->db);
    expect_format(e, "orderkv-format:1");
    engine_close(e);
}

/* Permission errors, run as an unprivileged child (as root they would pass). */
static void test_engine__unwritable_parent_and_unreadable_dir(void **state)
{
    struct fixture *f = *state;
    char ro[128], target[256], noread[128], out[1024];
    assert_int_equal(chmod(f->dir, 0755), 0);
    snprintf(ro, sizeof ro, "%s/ro", f->dir);
    assert_int_equal(mkdir(ro, 0555), 0);
    assert_int_equal(chmod(ro, 0555), 0);
    snprintf(target, sizeof target, "%s/sub/db", ro);
    snprintf(noread, sizeof noread, "%s/noread", f->dir);
    assert_int_equal(mkdir(noread, 0000), 0);

    int fd;
    pid_t pid = spawn_child("open", target, 1, &fd, NULL);
    read_all(fd, out, sizeof out);
    close(fd);
    int st = wait_child(pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
        skip(); /* cannot drop privileges here */
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(atoi(out), OKV_EIO);
    assert_true(has_text(out, "cannot create data dir"));
    assert_true(has_text(out, target));
    assert_true(has_text(out, "Permission denied"));

    pid = spawn_child("open", noread, 1, &fd, NULL);
    read_all(fd, out, sizeof out);
    close(fd);
    st = wait_child(pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(atoi(out), OKV_EIO);
    assert_true(has_text(out, "cannot read data dir"));
    assert_true(has_text(out, noread));
}

/* ---- refusing dirs that are not ours ------------------------------------- */

static void test_engine__refuses_other_format_version(void **state)
{
    struct fixture *f = *state;
    engine_close(open_ok(f->db));
    forge_format(f->db, "orderkv-format:2");
    engine *e = NULL;
    okv_error err;
    assert_int_equal(engine_open(&e, f->db, NULL, &err), OKV_EFORMAT);
    assert_null(e);
    assert_int_equal(err.code, OKV_EFORMAT);
    assert_true(has_text(err.msg, f->db));
    assert_true(has_text(err.msg, "format version 2"));
    assert_true(has_text(err.msg, "reads 1"));
    /* Refusing wrote nothing: the record is still version 2. */
    assert_int_equal(engine_open(&e, f->db, NULL, &err), OKV_EFORMAT);
    assert_true(has_text(err.msg, "format version 2"));
}

static void test_engine__refuses_missing_format_record(void **state)
{
    struct fixture *f = *state;
    engine *e = open_ok(f->db);
    put_ok(e, ENGINE_CF_DATA, "row", "value", 1);
    engine_close(e);
    forge_format(f->db, NULL);
    okv_error err;
    assert_int_equal(engine_open(&e, f->db, NULL, &err), OKV_EFORMAT);
    assert_true(has_text(err.msg, f->db));
    assert_true(has_text(err.msg, "no format record"));
}

/* Our families, all empty, no record: a create that died before the record
 * was written. Finishing it loses nothing, refusing would strand the node. */
static void test_engine__finishes_interrupted_create(void **state)
{
    struct fixture *f = *state;
    rocksdb_column_family_handle_t *h[4];
    rocks_close(rocks_open(f->db, our_cfs, 4, 1, h), h, 4);
    engine *e = open_ok(f->db);
    expect_format(e, "orderkv-format:1");
    engine_close(e);
}

static void test_engine__refuses_malformed_format_record(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = { "orderkv-format:", "orderkv-format:1x",
                                       "orderkv-format:0", "something else" };
    engine_close(open_ok(f->db));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        forge_format(f->db, bad[i]);
        engine *e = NULL;
        okv_error err;
        assert_int_equal(engine_open(&e, f->db, NULL, &err), OKV_ECORRUPT);
        assert_true(has_text(err.msg, f->db));
        assert_true(has_text(err.msg, "malformed format record"));
    }
}

static void test_engine__refuses_foreign_rocksdb(void **state)
{
    struct fixture *f = *state;
    static const char *const theirs[] = { "default", "foo" };
    rocksdb_column_family_handle_t *h[4];
    rocks_close(rocks_open(f->db, theirs, 2, 1, h), h, 2);

    engine *e = NULL;
    okv_error err;
    assert_int_equal(engine_open(&e, f->db, NULL, &err), OKV_EFORMAT);
    assert_true(has_text(err.msg, f->db));
    assert_true(has_text(err.msg, "not an orderkv data dir"));
    assert_true(has_text(err.msg, "default, foo"));

    /* Nothing was added to their database. */
    rocksdb_options_t *o = rocksdb_options_create();
    size_t n = 0;
    char *errptr = NULL;
    char **names = rocksdb_list_column_families(o, f->db, &n, &errptr);
    assert_null(errptr);
    assert_int_equal(n, 2);
    rocksdb_list_column_families_destroy(names, n);
    rocksdb_options_destroy(o);

    /* A plain RocksDB with only "default". */
    char plain[256];
    snprintf(plain, sizeof plain, "%s/plain", f->dir);
    rocks_close(rocks_open(plain, our_cfs, 1, 1, h), h, 1);
    assert_int_equal(engine_open(&e, plain, NULL, &err), OKV_EFORMAT);
    assert_true(has_text(err.msg, "(column families: default)"));
}

/* Our families plus another: a later format is named by its version, anything
 * else is a stranger. */
static void test_engine__refuses_extra_column_families(void **state)
{
    struct fixture *f = *state;
    static const char *const more[] = { "default", "raft", "data", "meta", "locks" };
    rocksdb_column_family_handle_t *h[5];
    engine *e = NULL;
    okv_error err;

    engine_close(open_ok(f->db));
    rocks_close(rocks_open(f->db, more, 5, 1, h), h, 5);
    assert_int_equal(engine_open(&e, f->db, NULL, &err), OKV_EFORMAT);
    assert_true(has_text(err.msg, "not an orderkv data dir"));
    assert_true(has_text(err.msg, "locks"));

    rocksdb_t *db = rocks_open(f->db, more, 5, 0, h);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    char *errptr = NULL;
    rocksdb_put_cf(db, wo, h[3], ENGINE_FORMAT_KEY, FORMAT_KEY_LEN, "orderkv-format:3", 16,
                   &errptr);
    assert_null(errptr);
    rocksdb_writeoptions_destroy(wo);
    rocks_close(db, h, 5);
    assert_int_equal(engine_open(&e, f->db, NULL, &err), OKV_EFORMAT);
    assert_true(has_text(err.msg, "format version 3"));
    assert_true(has_text(err.msg, "reads 1"));
}

/* Damage CURRENT or the MANIFEST in several ways: every open must fail with a
 * code that says "not usable" and a message naming the dir; none may crash. */
static void test_engine__refuses_corrupt_dir(void **state)
{
    struct fixture *f = *state;
    enum { EMPTY_CURRENT, CURRENT_NO_NEWLINE, CURRENT_NAMES_MISSING, GARBLED_MANIFEST,
           TRUNCATED_MANIFEST, CASES };
    for (int c = 0; c < CASES; c++) {
        char db[256], path[512], manifest[128];
        snprintf(db, sizeof db, "%s/db%d", f->dir, c);
        engine *e = open_ok(db);
        put_ok(e, ENGINE_CF_DATA, "k", "v", 1);
        engine_close(e);
        read_current(db, manifest, sizeof manifest);
        snprintf(path, sizeof path, "%s/CURRENT", db);
        if (c == EMPTY_CURRENT)
            write_file(path, "", 0);
        else if (c == CURRENT_NO_NEWLINE)
            write_file(path, "MANIFEST-00\xff", 12);
        else if (c == CURRENT_NAMES_MISSING)
            write_file(path, "MANIFEST-999999\n", 16);
        else {
            struct stat st;
            snprintf(path, sizeof path, "%s/%s", db, manifest);
            assert_int_equal(stat(path, &st), 0);
            if (c == GARBLED_MANIFEST) {
                int fd = open(path, O_WRONLY);
                static const char junk[16] = "\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa"
                                             "\xaa\xaa\xaa\xaa\xaa\xaa\xaa";
                assert_int_equal(pwrite(fd, junk, sizeof junk, 9), (ssize_t)sizeof junk);
                close(fd);
            } else {
                assert_int_equal(truncate(path, st.st_size / 2), 0);
            }
        }
        okv_error err;
        e = NULL;
        int rc = engine_open(&e, db, NULL, &err);
        if (rc == OKV_OK) {
            fprintf(stderr, "case %d: corrupt dir opened\n", c);
            engine_close(e);
        } else if (rc != OKV_ECORRUPT && rc != OKV_EFORMAT) {
            fprintf(stderr, "case %d: %d %s\n", c, rc, err.msg);
        }
        assert_true(rc == OKV_ECORRUPT || rc == OKV_EFORMAT);
        assert_null(e);
        assert_true(has_text(err.msg, db));
        if (c == TRUNCATED_MANIFEST && rc == OKV_EFORMAT)
            assert_true(has_text(err.msg, "MANIFEST is damaged"));
    }
}

/* ---- locking ------------------------------------------------------------- */

static void test_engine__second_open_in_same_process_fails_cleanly(void **state)
{
    struct fixture *f = *state;
    engine *e = open_ok(f->db);
    engine *e2 = NULL;
    okv_error err;
    assert_int_equal(engine_open(&e2, f->db, NULL, &err), OKV_EIO);
    assert_null(e2);
    assert_true(has_text(err.msg, "is in use by another process"));
    assert_true(has_text(err.msg, f->db));
    /* The first engine is unharmed. */
    put_ok(e, ENGINE_CF_DATA, "k", "v", 1);
    expect(e, ENGINE_CF_DATA, "k", "v");
    engine_close(e);
    e = open_ok(f->db);
    expect(e, ENGINE_CF_DATA, "k", "v");
    engine_close(e);
}

static void test_engine__open_of_dir_locked_by_other_process_fails(void **state)
{
    struct fixture *f = *state;
    int out, in;
    char buf[256];
    pid_t pid = spawn_child("hold", f->db, 0, &out, &in);
    ssize_t n = read(out, buf, 3);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "OK\n", 3);

    engine *e = NULL;
    okv_error err;
    assert_int_equal(engine_open(&e, f->db, NULL, &err), OKV_EIO);
    assert_null(e);
    assert_true(has_text(err.msg, "is in use by another process"));

    close(in); /* the child closes its engine and exits */
    close(out);
    int st = wait_child(pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    engine_close(open_ok(f->db));
}

/* ---- point operations ---------------------------------------------------- */

static void test_engine__column_families_are_independent(void **state)
{
    struct fixture *f = *state;
    engine *e = open_ok(f->db);
    put_ok(e, ENGINE_CF_RAFT, "k", "in-raft", 0);
    put_ok(e, ENGINE_CF_DATA, "k", "in-data", 0);
    put_ok(e, ENGINE_CF_META, "k", "in-meta", 0);
    expect(e, ENGINE_CF_RAFT, "k", "in-raft");
    expect(e, ENGINE_CF_DATA, "k", "in-data");
    expect(e, ENGINE_CF_META, "k", "in-meta");

    okv_error err;
    assert_int_equal(engine_delete(e, ENGINE_CF_DATA, "k", 1, 0, &err), OKV_OK);
    expect(e, ENGINE_CF_DATA, "k", NULL);
    expect(e, ENGINE_CF_RAFT, "k", "in-raft");
    expect(e, ENGINE_CF_META, "k", "in-meta");
    /* Deleting an absent key is not an error. */
    assert_int_equal(engine_delete(e, ENGINE_CF_DATA, "k", 1, 1, &err), OKV_OK);
    expect(e, ENGINE_CF_RAFT, "nope", NULL);

    /* Overwrite, binary keys and values, and an empty value (present, not absent). */
    put_ok(e, ENGINE_CF_RAFT, "k", "again", 0);
    expect(e, ENGINE_CF_RAFT, "k", "again");
    assert_int_equal(engine_put(e, ENGINE_CF_DATA, "\x00\xff", 2, "\x00v\xff", 3, 0, &err),
                     OKV_OK);
    char *v = NULL;
    size_t len = 0;
    assert_int_equal(engine_get(e, ENGINE_CF_DATA, "\x00\xff", 2, &v, &len, &err), OKV_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "\x00v\xff", 3);
    free(v);
    put_ok(e, ENGINE_CF_META, "empty", "", 0);
    expect(e, ENGINE_CF_META, "empty", "");

    /* A bad column family is an argument error, not a crash. */
    assert_int_equal(engine_get(e, ENGINE_CF_COUNT, "k", 1, &v, &len, &err), OKV_EINVAL);
    assert_int_equal(engine_put(e, (enum engine_cf)-1, "k", 1, "v", 1, 0, &err), OKV_EINVAL);
    engine_close(e);
}

/* A process that dies right after synced writes were acknowledged, without
 * engine_close, loses none of them. */
static void test_engine__sync_writes_survive_crash(void **state)
{
    struct fixture *f = *state;
    int out;
    char buf[256];
    pid_t pid = spawn_child("crash", f->db, 0, &out, NULL);
    read_all(out, buf, sizeof buf);
    close(out);
    int st = wait_child(pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    engine *e = open_ok(f->db);
    char k[32];
    expect(e, ENGINE_CF_DATA, "k000", NULL);
    for (int i = 1; i < 100; i++) {
        snprintf(k, sizeof k, "k%03d", i);
        expect(e, ENGINE_CF_DATA, k, "v");
    }
    expect(e, ENGINE_CF_RAFT, "entry", "e1");
    engine_close(e);
}

static void test_engine__sync_writes_survive_reopen(void **state)
{
    struct fixture *f = *state;
    engine *e = open_ok(f->db);
    put_ok(e, ENGINE_CF_RAFT, "hard-state", "term 7", 1);
    put_ok(e, ENGINE_CF_RAFT, "gone", "x", 1);
    okv_error err;
    assert_int_equal(engine_delete(e, ENGINE_CF_RAFT, "gone", 4, 1, &err), OKV_OK);
    engine_close(e);
    e = open_ok(f->db);
    expect(e, ENGINE_CF_RAFT, "hard-state", "term 7");
    expect(e, ENGINE_CF_RAFT, "gone", NULL);
    engine_close(e);
}

/* ---- batches ------------------------------------------------------------- */

static void test_engine__batch_applies_everything_across_reopen(void **state)
{
    struct fixture *f = *state;
    engine *e = open_ok(f->db);
    put_ok(e, ENGINE_CF_DATA, "old", "x", 1);
    put_ok(e, ENGINE_CF_META, "applied", "4", 1);

    engine_batch *b = engine_batch_new();
    assert_non_null(b);
    engine_batch_put(b, ENGINE_CF_RAFT, "entry5", 6, "e5", 2);
    engine_batch_put(b, ENGINE_CF_DATA, "new", 3, "y", 1);
    engine_batch_delete(b, ENGINE_CF_DATA, "old", 3);
    engine_batch_put(b, ENGINE_CF_META, "applied", 7, "5", 1);
    engine_batch_put(b, ENGINE_CF_DATA, "tmp", 3, "t", 1);
    engine_batch_delete(b, ENGINE_CF_DATA, "tmp", 3); /* later op wins */
    engine_batch_put(b, ENGINE_CF_DATA, "empty", 5, "", 0);
    assert_int_equal(engine_batch_count(b), 7);

    /* Nothing is visible before the write. */
    expect(e, ENGINE_CF_RAFT, "entry5", NULL);
    expect(e, ENGINE_CF_META, "applied", "4");

    okv_error err;
    assert_int_equal(engine_write(e, b, 1, &err), OKV_OK);
    assert_int_equal(engine_batch_count(b), 7); /* left unchanged */
    engine_close(e);

    e = open_ok(f->db);
    expect(e, ENGINE_CF_RAFT, "entry5", "e5");
    expect(e, ENGINE_CF_DATA, "new", "y");
    expect(e, ENGINE_CF_DATA, "old", NULL);
    expect(e, ENGINE_CF_META, "applied", "5");
    expect(e, ENGINE_CF_DATA, "tmp", NULL);
    expect(e, ENGINE_CF_DATA, "empty", "");

    /* The same batch can be written again (idempotent here), then cleared. */
    assert_int_equal(engine_write(e, b, 0, &err), OKV_OK);
    engine_batch_clear(b);
    assert_int_equal(engine_batch_count(b), 0);
    assert_int_equal(engine_write(e, b, 1, &err), OKV_OK); /* empty batch */
    engine_batch_put(b, ENGINE_CF_DATA, "after-clear", 11, "z", 1);
    assert_int_equal(engine_batch_count(b), 1);
    assert_int_equal(engine_write(e, b, 1, &err), OKV_OK);
    expect(e, ENGINE_CF_DATA, "after-clear", "z");
    expect(e, ENGINE_CF_RAFT, "entry5", "e5");
    engine_batch_free(b);
    engine_batch_free(NULL);
    engine_close(e);
}

static void test_engine__unwritten_batch_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    engine *e = open_ok(f->db);
    put_ok(e, ENGINE_CF_DATA, "keep", "k", 1);
    engine_batch *b = engine_batch_new();
    engine_batch_put(b, ENGINE_CF_DATA, "a", 1, "1", 1);
    engine_batch_delete(b, ENGINE_CF_DATA, "keep", 4);
    engine_batch_put(b, ENGINE_CF_META, "m", 1, "1", 1);
    engine_batch_free(b);

    b = engine_batch_new();
    engine_batch_put(b, ENGINE_CF_RAFT, "r", 1, "1", 1);
    engine_batch_clear(b); /* cleared, then written: writes nothing */
    okv_error err;
    assert_int_equal(engine_write(e, b, 1, &err), OKV_OK);
    engine_batch_free(b);
    engine_close(e);

    e = open_ok(f->db);
    expect(e, ENGINE_CF_DATA, "a", NULL);
    expect(e, ENGINE_CF_DATA, "keep", "k");
    expect(e, ENGINE_CF_META, "m", NULL);
    expect(e, ENGINE_CF_RAFT, "r", NULL);
    engine_close(e);
}

/* A batch with a bad operation is refused whole, before RocksDB sees it. */
static void test_engine__batch_with_bad_operation_writes_nothing(void **state)
{
    struct fixture *f = *state;
    engine *e = open_ok(f->db);
    engine_batch *b = engine_batch_new();
    engine_batch_put(b, ENGINE_CF_DATA, "a", 1, "1", 1);
    engine_batch_put(b, ENGINE_CF_COUNT, "b", 1, "2", 1);
    engine_batch_put(b, ENGINE_CF_META, "c", 1, "3", 1);
    okv_error err;
    assert_int_equal(engine_write(e, b, 1, &err), OKV_EINVAL);
    assert_true(has_text(err.msg, "batch not written"));
    expect(e, ENGINE_CF_DATA, "a", NULL);
    expect(e, ENGINE_CF_META, "c", NULL);
    engine_batch_clear(b); /* clears the error too */
    engine_batch_put(b, ENGINE_CF_DATA, "a", 1, "1", 1);
    assert_int_equal(engine_write(e, b, 1, &err), OKV_OK);
    expect(e, ENGINE_CF_DATA, "a", "1");
    engine_batch_free(b);
    engine_close(e);
}

/* A real failing write: RLIMIT_FSIZE makes the WAL append fail with EFBIG
 * part-way through the batch's record. The write must report an I/O error,
 * nothing of the batch may be visible, and after reopening (RocksDB replays
 * the WAL, whose tail now holds a torn record) still nothing may be. */
static void test_engine__failed_batch_write_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    enum { LIMIT = 4 << 20, BIG = 8 << 20 };
    engine *e = open_ok(f->db);
    put_ok(e, ENGINE_CF_DATA, "before", "b", 1);

    char *big = malloc(BIG);
    assert_non_null(big);
    memset(big, 'x', BIG);
    engine_batch *b = engine_batch_new();
    engine_batch_put(b, ENGINE_CF_RAFT, "r", 1, "1", 1);
    engine_batch_delete(b, ENGINE_CF_DATA, "before", 6);
    engine_batch_put(b, ENGINE_CF_DATA, "big", 3, big, BIG);
    engine_batch_put(b, ENGINE_CF_META, "m", 1, "1", 1);

    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = LIMIT;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    okv_error err;
    int rc = engine_write(e, b, 1, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);

    assert_int_equal(rc, OKV_EIO);
    assert_true(has_text(err.msg, f->db));
    expect(e, ENGINE_CF_RAFT, "r", NULL);
    expect(e, ENGINE_CF_DATA, "before", "b");
    expect(e, ENGINE_CF_META, "m", NULL);
    engine_batch_free(b);
    free(big);
    engine_close(e);

    e = open_ok(f->db);
    expect(e, ENGINE_CF_RAFT, "r", NULL);
    expect(e, ENGINE_CF_DATA, "before", "b");
    expect(e, ENGINE_CF_DATA, "big", NULL);
    expect(e, ENGINE_CF_META, "m", NULL);
    put_ok(e, ENGINE_CF_DATA, "after", "a", 1); /* and the dir is writable again */
    engine_close(e);
}

/* ---- iterators ----------------------------------------------------------- */

/* Collects what it yields as "k1,k2,..." (printable keys only). */
static void collect(engine_iter *it, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (; engine_iter_valid(it); engine_iter_next(it)) {
        size_t kl, vl;
        const char *k = engine_iter_key(it, &kl);
        engine_iter_value(it, &vl);
        used += (size_t)snprintf(out + used, cap - used, "%s%.*s", used ? "," : "", (int)kl, k);
    }
    okv_error err;
    assert_int_equal(engine_iter_status(it, &err), OKV_OK);
}

static void test_engine__iter_lower_inclusive_upper_exclusive(void **state)
{
    struct fixture *f = *state;
    engine *e = open_ok(f->db);
    static const char *const keys[] = { "a", "b", "ba", "c", "d" };
    for (size_t i = 0; i < 5; i++)
        put_ok(e, ENGINE_CF_DATA, keys[i], keys[i], 0);
    put_ok(e, ENGINE_CF_RAFT, "b2", "other cf", 0);

    engine_iter *it;
    char got[256];
    okv_error err;
    assert_int_equal(engine_iter_new(&it, e, ENGINE_CF_DATA, "b", 1, "d", 1, &err), OKV_OK);
    collect(it, got, sizeof got);
    assert_string_equal(got, "b,ba,c");
    size_t len = 99;
    assert_null(engine_iter_key(it, &len)); /* exhausted */
    assert_int_equal(len, 0);
    engine_iter_next(it); /* a no-op at the end */
    assert_false(engine_iter_valid(it));
    engine_iter_free(it);

    assert_int_equal(engine_iter_new(&it, e, ENGINE_CF_DATA, NULL, 0, "c", 1, &err), OKV_OK);
    collect(it, got, sizeof got);
    assert_string_equal(got, "a,b,ba");
    engine_iter_free(it);

    assert_int_equal(engine_iter_new(&it, e, ENGINE_CF_DATA, "bb", 2, NULL, 0, &err), OKV_OK);
    collect(it, got, sizeof got);
    assert_string_equal(got, "c,d");
    engine_iter_free(it);

    assert_int_equal(engine_iter_new(&it, e, ENGINE_CF_DATA, "x", 0, NULL, 0, &err), OKV_OK);
    collect(it, got, sizeof got);
    assert_string_equal(got, "a,b,ba,c,d");
    engine_iter_free(it);

    /* Values are the right ones and borrowed until the iterator moves. */
    assert_int_equal(engine_iter_new(&it, e, ENGINE_CF_RAFT, NULL, 0, NULL, 0, &err), OKV_OK);
    assert_true(engine_iter_valid(it));
    size_t vl;
    const char *v = engine_iter_value(it, &vl);
    assert_int_equal(vl, 8);
    assert_memory_equal(v, "other cf", 8);
    engine_iter_free(it);
    engine_iter_free(NULL);
    engine_close(e);
}

static void test_engine__iter_empty_ranges(void **state)
{
    struct fixture *f = *state;
    engine *e = open_ok(f->db);
    put_ok(e, ENGINE_CF_DATA, "a", "", 0);
    put_ok(e, ENGINE_CF_DATA, "b", "", 0);
    put_ok(e, ENGINE_CF_DATA, "c", "", 0);
    static const struct { const char *lo, *hi; } r[] = {
        { "b", "b" },   /* lower == upper */
        { "c", "a" },   /* lower > upper */
        { "bb", "c" },  /* no key inside */
        { "d", NULL },  /* past the last key */
        { NULL, "" },   /* upper "" excludes everything */
        { NULL, "a" },
    };
    engine_iter *it;
    okv_error err;
    char got[64];
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        assert_int_equal(engine_iter_new(&it, e, ENGINE_CF_DATA, r[i].lo,
                                         r[i].lo ? strlen(r[i].lo) : 0, r[i].hi,
                                         r[i].hi ? strlen(r[i].hi) : 0, &err), OKV_OK);
        collect(it, got, sizeof got);
        assert_string_equal(got, "");
        engine_iter_seek(it, "b", 1); /* seeking cannot escape the range either */
        collect(it, got, sizeof got);
        assert_string_equal(got, "");
        engine_iter_free(it);
    }
    /* An empty column family. */
    assert_int_equal(engine_iter_new(&it, e, ENGINE_CF_RAFT, NULL, 0, NULL, 0, &err), OKV_OK);
    assert_false(engine_iter_valid(it));
    engine_iter_free(it);
    engine_close(e);
}

static void test_engine__iter_seek_clamps_to_bounds(void **state)
{
    struct fixture *f = *state;
    engine *e = open_ok(f->db);
    static const char *const keys[] = { "a", "b", "c", "d", "e" };
    for (size_t i = 0; i < 5; i++)
        put_ok(e, ENGINE_CF_META, keys[i], "", 0);
    engine_iter *it;
    okv_error err;
    char got[64];
    assert_int_equal(engine_iter_new(&it, e, ENGINE_CF_META, "b", 1, "e", 1, &err), OKV_OK);
    engine_iter_seek(it, "a", 1);         /* below: clamped to lower */
    collect(it, got, sizeof got);
    assert_string_equal(got, "b,c,d");
    engine_iter_seek(it, "", 0);
    collect(it, got, sizeof got);
    assert_string_equal(got, "b,c,d");
    engine_iter_seek(it, "bz", 2);        /* between keys */
    collect(it, got, sizeof got);
    assert_string_equal(got, "c,d");
    engine_iter_seek(it, "d", 1);
    collect(it, got, sizeof got);
    assert_string_equal(got, "d");
    engine_iter_seek(it, "e", 1);         /* at upper: nothing */
    collect(it, got, sizeof got);
    assert_string_equal(got, "");
    engine_iter_seek(it, "zzz", 3);       /* past upper */
    collect(it, got, sizeof got);
    assert_string_equal(got, "");
    engine_iter_seek(it, "c", 1);         /* back again after exhaustion */
    collect(it, got, sizeof got);
    assert_string_equal(got, "c,d");
    engine_iter_free(it);

    assert_int_equal(engine_iter_new_prefix(&it, e, ENGINE_CF_META, "c", 1, &err), OKV_OK);
    engine_iter_seek(it, "a", 1);
    collect(it, got, sizeof got);
    assert_string_equal(got, "c");
    engine_iter_seek(it, "d", 1);
    collect(it, got, sizeof got);
    assert_string_equal(got, "");
    engine_iter_free(it);
    engine_close(e);
}

/* Keys and prefixes over a small alphabet that includes 0x00 and 0xff: every
 * prefix iterator must yield exactly the stored keys that start with the
 * prefix, in order — also for prefixes ending in 0xff and all-0xff ones. */
static const uint8_t alpha[] = { 0x00, 0x01, 0x7f, 0xfe, 0xff };
enum { ALPHA = sizeof alpha, MAXLEN = 3 };

struct bkey {
    uint8_t b[MAXLEN];
    size_t len;
};

static size_t all_keys(struct bkey *out, size_t min_len)
{
    size_t n = 0;
    for (size_t len = min_len; len <= MAXLEN; len++) {
        size_t count = 1;
        for (size_t i = 0; i < len; i++)
            count *= ALPHA;
        for (size_t c = 0; c < count; c++) {
            size_t x = c;
            out[n].len = len;
            for (size_t i = len; i-- > 0; x /= ALPHA)
                out[n].b[i] = alpha[x % ALPHA];
            n++;
        }
    }
    return n;
}

static int bkey_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (alen < blen ? -1 : alen > blen);
}

static int bkey_qcmp(const void *a, const void *b)
{
    const struct bkey *x = a, *y = b;
    return bkey_cmp(x->b, x->len, y->b, y->len);
}

/* Checks that it yields exactly those of keys[0..n) (sorted) that pass
 * lower <= k < upper (or start with prefix if prefix is set). */
static void check_yields(engine_iter *it, const struct bkey *keys, size_t n,
                         const struct bkey *lo, const struct bkey *hi, const struct bkey *prefix)
{
    size_t i = 0;
    for (;; i++) {
        while (i < n) {
            const struct bkey *k = &keys[i];
            int in = prefix ? k->len >= prefix->len && memcmp(k->b, prefix->b, prefix->len) == 0
                            : (!lo || bkey_cmp(k->b, k->len, lo->b, lo->len) >= 0) &&
                                  (!hi || bkey_cmp(k->b, k->len, hi->b, hi->len) < 0);
            if (in)
                break;
            i++;
        }
        if (i == n)
            break;
        assert_true(engine_iter_valid(it));
        size_t kl;
        const char *k = engine_iter_key(it, &kl);
        assert_int_equal(kl, keys[i].len);
        if (kl)
            assert_memory_equal(k, keys[i].b, kl);
        engine_iter_next(it);
    }
    assert_false(engine_iter_valid(it));
}

static void test_engine__prefix_iter_never_leaves_prefix(void **state)
{
    struct fixture *f = *state;
    static struct bkey keys[200], prefixes[200];
    size_t nk = all_keys(keys, 0);
    size_t np = all_keys(prefixes, 1);
    qsort(keys, nk, sizeof keys[0], bkey_qcmp);
    engine *e = open_ok(f->db);
    okv_error err;
    for (size_t i = 0; i < nk; i++)
        assert_int_equal(engine_put(e, ENGINE_CF_DATA, keys[i].b, keys[i].len, "", 0, 0, &err),
                         OKV_OK);
    for (size_t p = 0; p < np; p++) {
        engine_iter *it;
        assert_int_equal(engine_iter_new_prefix(&it, e, ENGINE_CF_DATA, prefixes[p].b,
                                                prefixes[p].len, &err), OKV_OK);
        check_yields(it, keys, nk, NULL, NULL, &prefixes[p]);
        engine_iter_free(it);
    }
    engine_iter *it = (engine_iter *)1;
    assert_int_equal(engine_iter_new_prefix(&it, e, ENGINE_CF_DATA, "", 0, &err), OKV_EINVAL);
    assert_null(it);
    engine_close(e);
}

static void test_engine__bounded_iter_matches_brute_force(void **state)
{
    struct fixture *f = *state;
    static struct bkey keys[200], bounds[40];
    size_t nk = all_keys(keys, 0);
    qsort(keys, nk, sizeof keys[0], bkey_qcmp);
    /* Bounds of length 0..2 (31 of them) and no bound at all. */
    size_t nb = 0;
    for (size_t i = 0; i < nk && nb < 40; i++)
        if (keys[i].len <= 2)
            bounds[nb++] = keys[i];
    engine *e = open_ok(f->db);
    okv_error err;
    for (size_t i = 0; i < nk; i++)
        assert_int_equal(engine_put(e, ENGINE_CF_RAFT, keys[i].b, keys[i].len, "", 0, 0, &err),
                         OKV_OK);
    for (size_t l = 0; l <= nb; l++)
        for (size_t h = 0; h <= nb; h++) {
            const struct bkey *lo = l < nb ? &bounds[l] : NULL;
            const struct bkey *hi = h < nb ? &bounds[h] : NULL;
            engine_iter *it;
            assert_int_equal(engine_iter_new(&it, e, ENGINE_CF_RAFT, lo ? lo->b : NULL,
                                             lo ? lo->len : 0, hi ? hi->b : NULL,
                                             hi ? hi->len : 0, &err), OKV_OK);
            check_yields(it, keys, nk, lo, hi, NULL);
            engine_iter_free(it);
        }
    engine_close(e);
}

static void test_engine__prefix_successor(void **state)
{
    uint8_t out[8];
    assert_int_equal(engine_prefix_successor("ab", 2, out), 2);
    assert_memory_equal(out, "ac", 2);
    assert_int_equal(engine_prefix_successor("a\xff", 2, out), 1);
    assert_memory_equal(out, "b", 1);
    assert_int_equal(engine_prefix_successor("\x01\xff\xff", 3, out), 1);
    assert_int_equal(out[0], 0x02);
    assert_int_equal(engine_prefix_successor("\xfe", 1, out), 1);
    assert_int_equal(out[0], 0xff);
    assert_int_equal(engine_prefix_successor("\x00", 1, out), 1);
    assert_int_equal(out[0], 0x01);
    assert_int_equal(engine_prefix_successor("\xff\xff", 2, out), 0);
    assert_int_equal(engine_prefix_successor("\xff", 1, out), 0);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--child") == 0)
        return child_main(argc, argv);
    /* The binary re-executes itself for the multi-process tests. */
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    self_exe = n > 0 ? exe : argv[0];

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_engine__open_creates_missing_dir_with_parents),
        T(test_engine__open_initialises_existing_empty_dir),
        T(test_engine__reopen_keeps_data),
        T(test_engine__no_create_if_missing_reports_not_found),
        T(test_engine__refuses_regular_file),
        T(test_engine__refuses_non_empty_dir_without_database),
        T(test_engine__initialises_leftovers_of_interrupted_create),
        T(test_engine__unwritable_parent_and_unreadable_dir),
        T(test_engine__refuses_other_format_version),
        T(test_engine__refuses_missing_format_record),
        T(test_engine__finishes_interrupted_create),
        T(test_engine__refuses_malformed_format_record),
        T(test_engine__refuses_foreign_rocksdb),
        T(test_engine__refuses_extra_column_families),
        T(test_engine__refuses_corrupt_dir),
        T(test_engine__second_open_in_same_process_fails_cleanly),
        T(test_engine__open_of_dir_locked_by_other_process_fails),
        T(test_engine__column_families_are_independent),
        T(test_engine__sync_writes_survive_crash),
        T(test_engine__sync_writes_survive_reopen),
        T(test_engine__batch_applies_everything_across_reopen),
        T(test_engine__unwritten_batch_leaves_nothing),
        T(test_engine__batch_with_bad_operation_writes_nothing),
        T(test_engine__failed_batch_write_leaves_nothing),
        T(test_engine__iter_lower_inclusive_upper_exclusive),
        T(test_engine__iter_empty_ranges),
        T(test_engine__iter_seek_clamps_to_bounds),
        T(test_engine__prefix_iter_never_leaves_prefix),
        T(test_engine__bounded_iter_matches_brute_force),
        T(test_engine__prefix_successor),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
