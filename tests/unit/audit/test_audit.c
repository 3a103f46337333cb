/*
 * The audit log (server/audit/audit.h): escaping of hostile strings, every
 * line valid JSON in valid UTF-8 (checked by Python's json module), rotation
 * at the size bound, tail across rotations, a torn last line, write
 * failures, and appends from several threads never mixing within a line.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "audit_format.h"
#include "okv_test.h"

#define PY "/usr/bin/python3"

/* Every line of every file named: UTF-8 (strict), JSON, exactly the five
 * keys in order, a well-formed time, strings or null, no raw control byte.
 * Exits 1 with the offending line on failure. */
static const char checker[] =
    "import json, re, sys\n"
    "for path in sys.argv[1:]:\n"
    "    text = open(path, 'rb').read().decode('utf-8')\n"
    "    assert text == '' or text.endswith('\\n'), (path, text[-80:])\n"
    "    for line in text.split('\\n')[:-1]:\n"
    "        assert not any(ord(c) < 0x20 or ord(c) == 0x7f for c in line), line\n"
    "        o = json.loads(line)\n"
    "        assert list(o) == ['time', 'who', 'from', 'what', 'result'], line\n"
    "        assert re.fullmatch(r'\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z', o['time']), line\n"
    "        for k in ('who', 'from', 'what', 'result'):\n"
    "            assert o[k] is None or isinstance(o[k], str), line\n";

typedef struct fixture {
    char *dir;
    char checker[4200];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = okv_test_tmpdir("audit");
    snprintf(f->checker, sizeof f->checker, "%s/check.py", f->dir);
    FILE *fp = fopen(f->checker, "w");
    fputs(checker, fp);
    fclose(fp);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    okv_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Runs the checker (and, if not NULL, one more Python statement that sees
 * the records of the first file as `recs`) on files; 0 if all hold. */
static int py_check(const fixture *f, const char *extra, const char *files)
{
    char cmd[32768];
    if (extra) {
        char script[4400];
        snprintf(script, sizeof script, "%s/extra.py", f->dir);
        FILE *fp = fopen(script, "w");
        fprintf(fp, "import json, sys\nexec(open('%s').read())\n"
                    "recs = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8')]\n%s\n",
                f->checker, extra);
        fclose(fp);
        snprintf(cmd, sizeof cmd, "%s %s %s", PY, script, files);
    } else {
        snprintf(cmd, sizeof cmd, "%s %s %s", PY, f->checker, files);
    }
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *path_of(const fixture *f, const char *name)
{
    static char buf[4][4400];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", f->dir, name);
    return p;
}

static char *json_of(const char *s)
{
    static char buf[65536];
    size_t n = audit_format_json_string(buf, 0, s);
    buf[n] = '\0';
    return buf;
}

/* ---- escaping ---------------------------------------------------------------- */

static void test_audit__escapes_quotes_backslashes_and_control_bytes(void **state)
{
    (void)state;
    assert_string_equal(json_of("a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_string_equal(json_of("l1\nl2\r\t\b\f"), "\"l1\\nl2\\r\\t\\b\\f\"");
    /* A terminal escape and DEL never reach the file raw. */
    assert_string_equal(json_of("\x1b[31mred\x7f\x01"), "\"\\u001b[31mred\\u007f\\u0001\"");
    /* A forged record: it stays inside one string. */
    assert_string_equal(json_of("x\"}\n{\"who\":\"root"),
                        "\"x\\\"}\\n{\\\"who\\\":\\\"root\"");
    assert_string_equal(json_of(NULL), "null");
    assert_string_equal(json_of(""), "\"\"");
}

static void test_audit__invalid_utf8_becomes_replacement_chars(void **state)
{
    (void)state;
    /* Well-formed: 2, 3 and 4 bytes, kept as they are. */
    assert_string_equal(json_of("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
                        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    /* One U+FFFD per byte that is not part of a well-formed sequence. */
    assert_string_equal(json_of("\xff(\x80"), "\"\\uFFFD(\\uFFFD\"");
    assert_string_equal(json_of("\xc0\xaf"), "\"\\uFFFD\\uFFFD\"");                 /* overlong '/' */
    assert_string_equal(json_of("\xe0\x80\xaf"), "\"\\uFFFD\\uFFFD\\uFFFD\"");      /* overlong */
    assert_string_equal(json_of("\xed\xa0\x80"), "\"\\uFFFD\\uFFFD\\uFFFD\"");      /* surrogate */
    assert_string_equal(json_of("\xf4\x90\x80\x80"),
                        "\"\\uFFFD\\uFFFD\\uFFFD\\uFFFD\"");                          /* > U+10FFFF */
    assert_string_equal(json_of("ab\xe2\x82"), "\"ab\\uFFFD\\uFFFD\"");              /* truncated */
    assert_string_equal(json_of("\xe9t\xe9"), "\"\\uFFFDt\\uFFFD\"");                /* Latin-1 */
}

static void test_audit__long_field_is_cut_and_says_so(void **state)
{
    (void)state;
    size_t n = AUDIT_FIELD_MAX + 904;
    char *s = malloc(n + 1);
    memset(s, 'x', n);
    s[n] = '\0';
    char *j = json_of(s);
    assert_int_equal(strlen(j), 1 + AUDIT_FIELD_MAX + strlen("...[+904 bytes]") + 1);
    assert_non_null(strstr(j, "x...[+904 bytes]\""));
    free(s);
}

/* ---- appending --------------------------------------------------------------- */

static void test_audit__every_line_parses_hostile_and_binary(void **state)
{
    fixture *f = *state;
    audit_log *a;
    okv_error err;
    assert_int_equal(audit_log_open(&a, f->dir, 1 << 20, 2, &err), OKV_OK);
    audit_log_append(a, "anonymous", "ipv4:127.0.0.1:5555", "transfer-leader table=orders", "ok");
    audit_log_append(a, NULL, NULL, NULL, NULL);
    audit_log_append(a, "ev\"il\\", "a\nb\r\n{\"who\":\"root\"}", "\x1b]0;pwn\x07", "\xff\xfe\xc0");
    /* NUL-free binary: every byte 1..255, in a few rotations of the order. */
    char bin[256];
    for (int r = 0; r < 8; r++) {
        for (int i = 0; i < 255; i++)
            bin[i] = (char)(1 + (i * 37 + r * 11) % 255);
        bin[255] = '\0';
        audit_log_append(a, bin, bin + r, bin + 2 * r, "error: not leader: x");
    }
    audit_log_append(a, "quote\" back\\ nl\n tab\t \xc3\xa9 \xe2\x82\xac", "", "what", "res");
    assert_int_equal(audit_log_failures(a), 0);
    audit_log_free(a);
    assert_int_equal(py_check(f, NULL, path_of(f, "audit.log")), 0);
    /* Decoded, the strings are what was appended (well-formed UTF-8 kept). */
    assert_int_equal(
        py_check(f,
                 "assert len(recs) == 12, len(recs)\n"
                 "assert recs[0]['who'] == 'anonymous' and recs[0]['result'] == 'ok'\n"
                 "assert recs[1]['who'] is None and recs[1]['result'] is None\n"
                 "assert recs[2]['from'] == 'a\\nb\\r\\n{\"who\":\"root\"}'\n"
                 "assert recs[2]['result'] == '\\ufffd' * 3\n"
                 "assert recs[11]['who'] == 'quote\" back\\\\ nl\\n tab\\t \\u00e9 \\u20ac'\n",
                 path_of(f, "audit.log")),
        0);
}

static void test_audit__reopen_appends(void **state)
{
    fixture *f = *state;
    audit_log *a;
    okv_error err;
    assert_int_equal(audit_log_open(&a, f->dir, 1 << 20, 1, &err), OKV_OK);
    audit_log_append(a, "w", "f", "first", "ok");
    audit_log_free(a);
    assert_int_equal(audit_log_open(&a, f->dir, 1 << 20, 1, &err), OKV_OK);
    audit_log_append(a, "w", "f", "second", "ok");
    char *t;
    assert_int_equal(audit_log_tail(a, 10, &t, &err), OKV_OK);
    char *first = strstr(t, "\"first\""), *second = strstr(t, "\"second\"");
    assert_non_null(first);
    assert_non_null(second);
    assert_true(first < second);
    free(t);
    audit_log_free(a);
    audit_log_free(NULL);
}

static void test_audit__open_errors_are_actionable(void **state)
{
    fixture *f = *state;
    audit_log *a;
    okv_error err;
    assert_int_equal(audit_log_open(&a, path_of(f, "no/such/dir"), 1 << 20, 1, &err), OKV_EIO);
    assert_null(a);
    assert_non_null(strstr(err.msg, "no/such/dir/audit.log"));
    assert_non_null(strstr(err.msg, "No such file"));
    assert_int_equal(audit_log_open(&a, f->dir, 0, 1, &err), OKV_EINVAL);
    assert_int_equal(audit_log_open(&a, f->dir, 100, -1, &err), OKV_EINVAL);
    assert_int_equal(audit_log_open(&a, f->dir, 100, AUDIT_KEEP_MAX + 1, &err), OKV_EINVAL);
    audit_log_append(NULL, "a", "b", "c", "d");   /* no log: nothing happens */
}

/* ---- rotation and tail ------------------------------------------------------- */

static size_t file_size(const char *path, int *exists)
{
    struct stat st;
    *exists = stat(path, &st) == 0;
    return *exists ? (size_t)st.st_size : 0;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The record numbers ("rec-NN") in text, in order; returns how many. */
static int rec_numbers(const char *text, int *out, int cap)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, "\"rec-")) && n < cap; p += 5)
        out[n++] = atoi(p + 5);
    return n;
}

static char *read_all(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static void test_audit__rotation_keeps_keep_files_and_drops_the_oldest(void **state)
{
    fixture *f = *state;
    audit_log *a;
    okv_error err;
    /* One record is about 110 bytes: three fit under the bound, a fourth
     * would not. */
    size_t one;
    char *sample = audit_format_line(0, "admin", "ipv4:127.0.0.1:1", "rec-00", "ok", &one);
    free(sample);
    uint64_t max = 3 * one + one / 2;
    assert_int_equal(audit_log_open(&a, f->dir, max, 2, &err), OKV_OK);
    for (int i = 0; i < 20; i++) {
        char what[16];
        snprintf(what, sizeof what, "rec-%02d", i);
        audit_log_append(a, "admin", "ipv4:127.0.0.1:1", what, "ok");
    }
    assert_int_equal(audit_log_failures(a), 0);
    int exists;
    const char *names[] = { "audit.log", "audit.log.1", "audit.log.2" };
    int expect_first[] = { 18, 15, 12 };   /* files of 3 records: 18-19, 15-17, 12-14 */
    int expect_count[] = { 2, 3, 3 };
    for (int i = 0; i < 3; i++) {
        size_t sz = file_size(path_of(f, names[i]), &exists);
        assert_true(exists);
        assert_true(sz <= max);
        char *text = read_all(path_of(f, names[i]));
        int nums[8];
        assert_int_equal(rec_numbers(text, nums, 8), expect_count[i]);
        for (int k = 0; k < expect_count[i]; k++)
            assert_int_equal(nums[k], expect_first[i] + k);
        free(text);
    }
    file_size(path_of(f, "audit.log.3"), &exists);
    assert_false(exists);   /* keep = 2: the oldest records were dropped */
    char files[3 * 4400];
    snprintf(files, sizeof files, "%s %s %s", path_of(f, "audit.log"), path_of(f, "audit.log.1"),
             path_of(f, "audit.log.2"));
    assert_int_equal(py_check(f, NULL, files), 0);

    /* Tail across the boundaries, newest last. */
    char *t;
    int nums[32];
    assert_int_equal(audit_log_tail(a, 5, &t, &err), OKV_OK);
    assert_int_equal(count_lines(t), 5);
    assert_int_equal(rec_numbers(t, nums, 32), 5);
    for (int k = 0; k < 5; k++)
        assert_int_equal(nums[k], 15 + k);
    free(t);
    assert_int_equal(audit_log_tail(a, 1000, &t, &err), OKV_OK);   /* all that is kept */
    assert_int_equal(rec_numbers(t, nums, 32), 8);
    for (int k = 0; k < 8; k++)
        assert_int_equal(nums[k], 12 + k);
    free(t);
    assert_int_equal(audit_log_tail(a, 2, &t, &err), OKV_OK);      /* the current file only */
    assert_int_equal(rec_numbers(t, nums, 32), 2);
    assert_int_equal(nums[0], 18);
    free(t);
    assert_int_equal(audit_log_tail(a, 0, &t, &err), OKV_OK);
    assert_string_equal(t, "");
    free(t);
    audit_log_free(a);
}

static void test_audit__keep_zero_keeps_the_current_file_only(void **state)
{
    fixture *f = *state;
    audit_log *a;
    okv_error err;
    assert_int_equal(audit_log_open(&a, f->dir, 150, 0, &err), OKV_OK);
    for (int i = 0; i < 5; i++) {
        char what[16];
        snprintf(what, sizeof what, "rec-%02d", i);
        audit_log_append(a, "admin", "x", what, "ok");
    }
    int exists;
    file_size(path_of(f, "audit.log.1"), &exists);
    assert_false(exists);
    char *t;
    int nums[8];
    assert_int_equal(audit_log_tail(a, 10, &t, &err), OKV_OK);
    assert_int_equal(rec_numbers(t, nums, 8), 1);
    assert_int_equal(nums[0], 4);
    free(t);
    audit_log_free(a);
}

static void test_audit__record_larger_than_bound_is_written_alone(void **state)
{
    fixture *f = *state;
    audit_log *a;
    okv_error err;
    assert_int_equal(audit_log_open(&a, f->dir, 50, 3, &err), OKV_OK);
    audit_log_append(a, "admin", "x", "rec-00", "ok");
    audit_log_append(a, "admin", "x", "rec-01", "ok");
    char *t;
    int nums[8];
    assert_int_equal(audit_log_tail(a, 10, &t, &err), OKV_OK);
    assert_int_equal(rec_numbers(t, nums, 8), 2);
    assert_int_equal(nums[0], 0);
    assert_int_equal(nums[1], 1);
    free(t);
    assert_int_equal(audit_log_failures(a), 0);
    audit_log_free(a);
}

/* Power lost mid-write left a fragment without '\n': the next record goes
 * on a line of its own. */
static void test_audit__torn_last_line_is_not_continued(void **state)
{
    fixture *f = *state;
    FILE *fp = fopen(path_of(f, "audit.log"), "w");
    fputs("{\"time\":\"2026-12-05T14:55:35.123Z\",\"who\":\"adm", fp);
    fclose(fp);
    audit_log *a;
    okv_error err;
    assert_int_equal(audit_log_open(&a, f->dir, 1 << 20, 1, &err), OKV_OK);
    audit_log_append(a, "admin", "x", "rec-07", "ok");
    char *t;
    assert_int_equal(audit_log_tail(a, 1, &t, &err), OKV_OK);
    assert_int_equal(count_lines(t), 1);
    assert_int_equal(strncmp(t, "{\"time\":", 8), 0);
    assert_non_null(strstr(t, "\"rec-07\""));
    free(t);
    assert_int_equal(audit_log_tail(a, 5, &t, &err), OKV_OK);
    assert_int_equal(count_lines(t), 2);
    assert_non_null(strstr(t, "\"who\":\"adm\n{\"time\""));
    free(t);
    audit_log_free(a);
}

/* The file is /dev/full: every write fails with ENOSPC; the log counts
 * and reports, and the caller never notices. */
static void test_audit__write_failures_are_counted_not_fatal(void **state)
{
    fixture *f = *state;
    if (access("/dev/full", W_OK) != 0)
        skip();
    assert_int_equal(symlink("/dev/full", path_of(f, "audit.log")), 0);
    audit_log *a;
    okv_error err;
    assert_int_equal(audit_log_open(&a, f->dir, 1 << 20, 1, &err), OKV_OK);
    for (int i = 0; i < 3; i++)
        audit_log_append(a, "admin", "x", "lost", "ok");
    assert_int_equal(audit_log_failures(a), 3);
    audit_log_free(a);
}

/* ---- concurrency ----------------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 400
#define FILL 300

typedef struct writer {
    audit_log *a;
    int id;
} writer;

static void *write_many(void *arg)
{
    writer *w = arg;
    char what[FILL + 32];
    for (int i = 0; i < PER_THREAD; i++) {
        int n = snprintf(what, sizeof what, "t%d-%05d-", w->id, i);
        memset(what + n, 'a' + w->id, FILL);
        what[n + FILL] = '\0';
        audit_log_append(w->a, "writer", "local", what, "ok");
    }
    return NULL;
}

/* Each line holds one whole record of one thread (its FILL bytes all that
 * thread's letter), and each thread's records appear in the order it
 * appended them, across rotations. */
static void test_audit__concurrent_appends_never_interleave(void **state)
{
    fixture *f = *state;
    audit_log *a;
    okv_error err;
    /* Small files, enough of them kept that nothing is dropped. */
    assert_int_equal(audit_log_open(&a, f->dir, 16384, 200, &err), OKV_OK);
    pthread_t th[THREADS];
    writer w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i].a = a;
        w[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, write_many, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(audit_log_failures(a), 0);
    char *t;
    assert_int_equal(audit_log_tail(a, 100000, &t, &err), OKV_OK);
    assert_int_equal(count_lines(t), THREADS * PER_THREAD);
    int next[THREADS] = { 0 };
    for (char *line = t; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        char *p = strstr(line, "\"what\":\"t");
        assert_non_null(p);
        int id = -1, seq = -1;
        assert_int_equal(sscanf(p, "\"what\":\"t%d-%d-", &id, &seq), 2);
        assert_true(id >= 0 && id < THREADS);
        assert_int_equal(seq, next[id]++);
        char *fill = strchr(strchr(p + 9, '-') + 1, '-') + 1;
        for (int k = 0; k < FILL; k++)
            assert_int_equal(fill[k], 'a' + id);
        assert_int_equal(strcmp(fill + FILL, "\",\"result\":\"ok\"}"), 0);
        line = nl + 1;
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(next[i], PER_THREAD);
    /* And what tail returned is JSON too. */
    free(t);
    assert_int_equal(audit_log_tail(a, 100000, &t, &err), OKV_OK);
    FILE *fp = fopen(path_of(f, "tail.out"), "w");
    fputs(t, fp);
    fclose(fp);
    free(t);
    assert_int_equal(py_check(f, NULL, path_of(f, "tail.out")), 0);
    audit_log_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audit__escapes_quotes_backslashes_and_control_bytes),
        cmocka_unit_test(test_audit__invalid_utf8_becomes_replacement_chars),
        cmocka_unit_test(test_audit__long_field_is_cut_and_says_so),
        cmocka_unit_test_setup_teardown(test_audit__every_line_parses_hostile_and_binary, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit__reopen_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit__open_errors_are_actionable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit__rotation_keeps_keep_files_and_drops_the_oldest,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit__keep_zero_keeps_the_current_file_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit__record_larger_than_bound_is_written_alone,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit__torn_last_line_is_not_continued, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit__write_failures_are_counted_not_fatal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit__concurrent_appends_never_interleave, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
