/* orderkvd flags and config file: precedence and precise errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "config.h"
#include "log.h"
#include "okv_test.h"

static void test_config__defaults(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    assert_string_equal(c.data_dir, "./data");
    assert_string_equal(c.listen, "127.0.0.1:7400");
    assert_int_equal(c.partitions, CATALOG_DEFAULT_PARTITIONS);
    assert_int_equal(c.log_level, OKV_LOG_INFO);
    assert_int_equal(c.snapshot_entries, 100000);
    assert_int_equal(c.log_keep, 5000);
}

/* --metrics-listen: off by default, set by flag or file, HOST:PORT only. */
static void test_config__metrics_listen(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    assert_string_equal(c.metrics_listen, "");
    okv_error err;
    char *argv[] = { "orderkvd", "--metrics-listen", "127.0.0.1:9400", NULL };
    assert_int_equal(config_parse_args(&c, 3, argv, &err), OKV_OK);
    assert_string_equal(c.metrics_listen, "127.0.0.1:9400");
    assert_int_equal(config_parse_text(&c, "metrics-listen = [::1]:0\n", "f", &err), OKV_OK);
    assert_string_equal(c.metrics_listen, "[::1]:0");
    char *bad[] = { "orderkvd", "--metrics-listen", "9400", NULL };
    assert_int_equal(config_parse_args(&c, 3, bad, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "--metrics-listen"));
    assert_non_null(strstr(config_usage(), "--metrics-listen"));
}

/* Compaction settings: 0 switches snapshots off; nonsense is refused. */
static void test_config__compaction_flags(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    char *argv[] = { "orderkvd", "--raft-snapshot-entries", "0", "--raft-log-keep", "10", NULL };
    okv_error err;
    assert_int_equal(config_parse_args(&c, 5, argv, &err), OKV_OK);
    assert_int_equal(c.snapshot_entries, 0);
    assert_int_equal(c.log_keep, 10);
    char *bad[] = { "orderkvd", "--raft-snapshot-entries", "-5", NULL };
    assert_int_equal(config_parse_args(&c, 3, bad, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "--raft-snapshot-entries"));
}

/* Read mode: lease by default, read-index on request, nonsense refused. */
static void test_config__read_mode(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    assert_int_equal(c.lease_reads, 1);
    char *argv[] = { "orderkvd", "--read-mode", "read-index", NULL };
    okv_error err;
    assert_int_equal(config_parse_args(&c, 3, argv, &err), OKV_OK);
    assert_int_equal(c.lease_reads, 0);
    char *back[] = { "orderkvd", "--read-mode=lease", NULL };
    assert_int_equal(config_parse_args(&c, 2, back, &err), OKV_OK);
    assert_int_equal(c.lease_reads, 1);
    char *bad[] = { "orderkvd", "--read-mode", "stale", NULL };
    assert_int_equal(config_parse_args(&c, 3, bad, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "read-mode"));
}

static void test_config__flags(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    char *argv[] = { "orderkvd", "--data-dir", "/tmp/x", "--listen=0.0.0.0:9", "--log-level",
                     "debug", "--partitions", "16", NULL };
    okv_error err;
    assert_int_equal(config_parse_args(&c, 8, argv, &err), OKV_OK);
    assert_string_equal(c.data_dir, "/tmp/x");
    assert_string_equal(c.listen, "0.0.0.0:9");
    assert_int_equal(c.log_level, OKV_LOG_DEBUG);
    assert_int_equal(c.partitions, 16);
}

/* TLS: the three files come together (also from a config file);
 * --tls-client-auth takes require or none, and only with them. */
static void test_config__tls(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    okv_error err;
    assert_int_equal(c.tls_client_auth, -1);
    assert_int_equal(config_check(&c, &err), OKV_OK);   /* plaintext */
    char *some[] = { "orderkvd", "--tls-ca", "ca.crt", "--tls-cert", "n1.crt", NULL };
    assert_int_equal(config_parse_args(&c, 5, some, &err), OKV_OK);
    assert_int_equal(config_check(&c, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "--tls-key missing"));
    assert_int_equal(config_parse_text(&c, "tls-key = n1.key\ntls-client-auth = none\n", "f",
                                       &err), OKV_OK);
    assert_string_equal(c.tls_key, "n1.key");
    assert_int_equal(c.tls_client_auth, 0);
    assert_int_equal(config_check(&c, &err), OKV_OK);
    char *bad[] = { "orderkvd", "--tls-client-auth", "sometimes", NULL };
    assert_int_equal(config_parse_args(&c, 3, bad, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "--tls-client-auth"));
    config_defaults(&c);
    char *alone[] = { "orderkvd", "--tls-client-auth", "require", NULL };
    assert_int_equal(config_parse_args(&c, 3, alone, &err), OKV_OK);
    assert_int_equal(config_check(&c, &err), OKV_EINVAL);
}

static void test_config__bad_flags(void **state)
{
    (void)state;
    struct { char *argv[4]; int argc; const char *needle; } cases[] = {
        { { "orderkvd", "--bogus", "1", NULL }, 3, "unknown setting 'bogus'" },
        { { "orderkvd", "--partitions", "0", NULL }, 3, "--partitions" },
        { { "orderkvd", "--partitions", "12x", NULL }, 3, "not a number" },
        { { "orderkvd", "--log-level", "loud", NULL }, 3, "not one of" },
        { { "orderkvd", "--listen", "nocolon", NULL }, 3, "HOST:PORT" },
        { { "orderkvd", "--data-dir", NULL, NULL }, 2, "needs a value" },
        { { "orderkvd", "stray", NULL, NULL }, 2, "unexpected argument" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config c;
        config_defaults(&c);
        okv_error err;
        assert_int_equal(config_parse_args(&c, cases[i].argc, cases[i].argv, &err), OKV_EINVAL);
        if (!strstr(err.msg, cases[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].needle);
    }
}

static void test_config__file_then_flags(void **state)
{
    (void)state;
    char path[] = "/tmp/okvtest-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# orderkvd settings\n"
                       "data-dir = /srv/okv   # trailing comment\n"
                       "\n"
                       "listen = 127.0.0.1:7500\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    config c;
    config_defaults(&c);
    char *argv[] = { "orderkvd", "--config", path, "--listen", "127.0.0.1:7600", NULL };
    okv_error err;
    assert_int_equal(config_parse_args(&c, 5, argv, &err), OKV_OK);
    assert_string_equal(c.data_dir, "/srv/okv");
    assert_string_equal(c.listen, "127.0.0.1:7600");   /* the later flag wins */
    unlink(path);
}

static void test_config__file_errors_name_the_line(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    okv_error err;
    assert_int_equal(config_parse_text(&c, "listen = 1:2\nno equals sign\n", "f.conf", &err),
                     OKV_EINVAL);
    assert_non_null(strstr(err.msg, "f.conf:2"));
    assert_int_equal(config_parse_text(&c, "threads = 99\n", "f.conf", &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "f.conf:1"));
    char *argv[] = { "orderkvd", "--config", "/nonexistent/okv.conf", NULL };
    assert_int_equal(config_parse_args(&c, 3, argv, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "cannot open"));
}

static void test_catalog__roundtrip_and_corruption(void **state)
{
    (void)state;
    catalog a, b;
    catalog_init_default(&a, 12);
    char buf[256];
    size_t n = catalog_encode(&a, buf, sizeof buf);
    assert_true(n > 0);
    okv_error err;
    assert_int_equal(catalog_decode(&b, buf, n, &err), OKV_OK);
    assert_int_equal(b.count, 4);
    assert_string_equal(b.tables[1].name, "payments");
    assert_int_equal(b.tables[2].partitions, 12);
    assert_int_equal(catalog_decode(&b, "orders=1", 8, &err), OKV_ECORRUPT);
    assert_int_equal(catalog_decode(&b, "orders=1:0", 10, &err), OKV_ECORRUPT);
    assert_int_equal(catalog_decode(&b, "", 0, &err), OKV_ECORRUPT);
    assert_int_equal(catalog_encode(&a, buf, 8), 0);   /* too small: nothing */
}

/* The audit log's rotation: 64 MiB and 4 files by default; flag or file. */
static void test_config__audit_flags(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    assert_true(c.audit_max_bytes == 64ULL << 20);
    assert_int_equal(c.audit_keep, 4);
    okv_error err;
    char *argv[] = { "orderkvd", "--audit-max-bytes", "1048576", "--audit-keep=0", NULL };
    assert_int_equal(config_parse_args(&c, 4, argv, &err), OKV_OK);
    assert_true(c.audit_max_bytes == 1048576);
    assert_int_equal(c.audit_keep, 0);
    assert_int_equal(config_parse_text(&c, "audit-keep = 9\naudit-max-bytes = 4096\n", "f", &err),
                     OKV_OK);
    assert_int_equal(c.audit_keep, 9);
    assert_true(c.audit_max_bytes == 4096);
    char *small[] = { "orderkvd", "--audit-max-bytes", "100", NULL };
    assert_int_equal(config_parse_args(&c, 3, small, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "--audit-max-bytes: '100' is not a number in 4096.."));
    char *many[] = { "orderkvd", "--audit-keep", "1001", NULL };
    assert_int_equal(config_parse_args(&c, 3, many, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "--audit-keep"));
    assert_non_null(strstr(config_usage(), "--audit-max-bytes"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config__defaults),
        cmocka_unit_test(test_config__audit_flags),
        cmocka_unit_test(test_config__flags),
        cmocka_unit_test(test_config__read_mode),
        cmocka_unit_test(test_config__compaction_flags),
        cmocka_unit_test(test_config__metrics_listen),
        cmocka_unit_test(test_config__bad_flags),
        cmocka_unit_test(test_config__tls),
        cmocka_unit_test(test_config__file_then_flags),
        cmocka_unit_test(test_config__file_errors_name_the_line),
        cmocka_unit_test(test_catalog__roundtrip_and_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
