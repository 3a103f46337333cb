/* liborderkv without a server: argument checks, address parsing, error codes,
 * ownership rules, and that an unreachable node is a clean failure. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "okv_test.h"
#include "orderkv.h"

/* Port 1 on loopback: nothing listens there, connections are refused. */
#define DEAD_ADDR "127.0.0.1:1"

static void test_client__strerror_covers_every_code(void **state)
{
    (void)state;
    for (int code = OKV_EAUTH; code <= 0; code++) {
        const char *s = okv_strerror(code);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error code");
    }
    assert_string_equal(okv_strerror(-999), "unknown error code");
    assert_string_equal(okv_strerror(OKV_EUNKNOWN), "outcome unknown");
}

/* okv_options version 4: user and password are checked and copied. */
static void test_client__connect_checks_the_user(void **state)
{
    (void)state;
    okv_client *c = NULL;
    okv_options o = OKV_OPTIONS_INIT;
    o.password = "pw";   /* a password without a user */
    assert_int_equal(okv_connect(&c, DEAD_ADDR, &o), OKV_EINVAL);
    assert_non_null(strstr(okv_errmsg(NULL), "user"));
    char longname[100];
    memset(longname, 'u', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    o.user = longname;
    assert_int_equal(okv_connect(&c, DEAD_ADDR, &o), OKV_EINVAL);
    o.user = "bad\nname";
    assert_int_equal(okv_connect(&c, DEAD_ADDR, &o), OKV_EINVAL);
    char user[16] = "alice", pw[16] = "secret";
    o.user = user;
    o.password = pw;
    assert_int_equal(okv_connect(&c, DEAD_ADDR, &o), OKV_OK);
    /* Copied: the caller's buffers may change at once. */
    memset(user, 0, sizeof user);
    memset(pw, 0, sizeof pw);
    okv_value *v = NULL;
    int rc = okv_get(c, "orders", "k", 1, &v, 200);   /* nobody there: never sent */
    assert_true(rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT);
    okv_close(c);
    /* A version 3 struct has no user: its fields past tls_key are not read. */
    okv_options old = OKV_OPTIONS_INIT;
    old.version = 3;
    old.user = (const char *)0x1;   /* would crash if read */
    assert_int_equal(okv_connect(&c, DEAD_ADDR, &old), OKV_OK);
    okv_close(c);
}

static void test_client__connect_rejects_bad_address_lists(void **state)
{
    (void)state;
    static const char *bad[] = { "", "localhost", "a:1,,b:2", ":7400", "host:", "a:1;b:2" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        okv_client *c = (okv_client *)0x1;
        assert_int_equal(okv_connect(&c, bad[i], NULL), OKV_EINVAL);
        assert_null(c);
        assert_true(strlen(okv_errmsg(NULL)) > 0);
    }
    okv_client *c;
    assert_int_equal(okv_connect(&c, NULL, NULL), OKV_EINVAL);
    okv_options o = OKV_OPTIONS_INIT;
    o.version = 99;
    assert_int_equal(okv_connect(&c, DEAD_ADDR, &o), OKV_EINVAL);
    assert_non_null(strstr(okv_errmsg(NULL), "version"));
    /* A caller built against version 1 (no listed_nodes_only) still works;
     * the field it does not have is never read. */
    okv_options v1 = OKV_OPTIONS_INIT;
    v1.version = 1;
    v1.listed_nodes_only = 12345;
    assert_int_equal(okv_connect(&c, DEAD_ADDR, &v1), OKV_OK);
    okv_close(c);
    /* Version 2 (no TLS fields): they are never read. */
    okv_options v2 = OKV_OPTIONS_INIT;
    v2.version = 2;
    v2.tls_ca = "/no/such/ca.crt";
    assert_int_equal(okv_connect(&c, DEAD_ADDR, &v2), OKV_OK);
    okv_close(c);
    /* Version 3: TLS files are read and checked by okv_connect. */
    okv_options v3 = OKV_OPTIONS_INIT;
    v3.tls_ca = "/no/such/ca.crt";
    assert_int_equal(okv_connect(&c, DEAD_ADDR, &v3), OKV_EINVAL);
    assert_non_null(strstr(okv_errmsg(NULL), "tls_ca: cannot read /no/such/ca.crt"));
    v3.tls_ca = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
    assert_int_equal(okv_connect(&c, DEAD_ADDR, &v3), OKV_EINVAL);
    assert_non_null(strstr(okv_errmsg(NULL), "no PEM certificate"));
    v3.tls_cert = "client.crt";   /* without tls_key */
    assert_int_equal(okv_connect(&c, DEAD_ADDR, &v3), OKV_EINVAL);
    assert_non_null(strstr(okv_errmsg(NULL), "tls_key"));
}

static void test_client__free_functions_accept_null(void **state)
{
    (void)state;
    okv_close(NULL);
    okv_value_free(NULL);
    okv_scan_result_free(NULL);
    okv_status_free(NULL);
}

static void test_client__arguments_checked_before_any_io(void **state)
{
    (void)state;
    okv_client *c;
    assert_int_equal(okv_connect(&c, DEAD_ADDR, NULL), OKV_OK);
    okv_value *v = NULL;
    char big[OKV_MAX_KEY_LEN + 1];
    memset(big, 'k', sizeof big);
    assert_int_equal(okv_get(c, "orders", "", 0, &v, 0), OKV_EINVAL);
    assert_non_null(strstr(okv_errmsg(c), "key is empty"));
    assert_int_equal(okv_get(c, "", "k", 1, &v, 0), OKV_EINVAL);
    assert_int_equal(okv_get(c, NULL, "k", 1, &v, 0), OKV_EINVAL);
    assert_int_equal(okv_put(c, "orders", big, sizeof big, "v", 1, NULL, 0), OKV_EINVAL);
    assert_non_null(strstr(okv_errmsg(c), "1025 bytes"));
    assert_int_equal(okv_put(c, "orders", "k", 1, NULL, (size_t)OKV_MAX_VALUE_LEN + 1, NULL, 0),
                     OKV_EINVAL);
    assert_int_equal(okv_put(c, "orders", "k", 1, NULL, 3, NULL, 0), OKV_EINVAL);
    assert_int_equal(okv_delete(c, "orders", "", 0, NULL, 0), OKV_EINVAL);

    okv_scan_opts so = OKV_SCAN_OPTS_INIT;
    okv_scan_result *r = NULL;
    so.prefix = "a";
    so.prefix_len = 1;
    so.start = "b";
    so.start_len = 1;
    assert_int_equal(okv_scan(c, "orders", &so, &r), OKV_EINVAL);
    assert_non_null(strstr(okv_errmsg(c), "not both"));
    okv_scan_opts so2 = OKV_SCAN_OPTS_INIT;
    so2.limit = OKV_SCAN_MAX_LIMIT + 1;
    assert_int_equal(okv_scan(c, "orders", &so2, &r), OKV_EINVAL);
    so2.limit = 0;
    so2.version = 7;
    assert_int_equal(okv_scan(c, "orders", &so2, &r), OKV_EINVAL);
    assert_null(r);
    assert_null(v);
    okv_close(c);
}

static void test_client__unreachable_node_is_a_clean_failure(void **state)
{
    (void)state;
    okv_client *c;
    assert_int_equal(okv_connect(&c, DEAD_ADDR, NULL), OKV_OK);
    okv_value *v = NULL;
    /* The client retries with backoff until the deadline, then gives up
     * with a code that says "not applied". */
    int grc = okv_get(c, "orders", "k", 1, &v, 500);
    assert_true(grc == OKV_EUNAVAILABLE || grc == OKV_ETIMEDOUT);
    assert_non_null(strstr(okv_errmsg(c), DEAD_ADDR));
    /* A write that never reached any node did not apply: a clean failure,
     * not OKV_EUNKNOWN. */
    int rc = okv_put(c, "orders", "k", 1, "v", 1, NULL, 500);
    assert_true(rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT);
    okv_status *s = NULL;
    rc = okv_status_get(c, &s, 500);
    assert_true(rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT);
    assert_null(s);
    okv_close(c);
}

static void *other_thread(void *arg)
{
    okv_client *c = arg;
    okv_value *v;
    okv_get(c, "orders", "", 0, &v, 0);   /* fails: key is empty */
    return NULL;
}

static void test_client__error_messages_are_per_thread(void **state)
{
    (void)state;
    okv_client *c;
    assert_int_equal(okv_connect(&c, DEAD_ADDR, NULL), OKV_OK);
    okv_value *v;
    assert_int_equal(okv_put(c, "", "k", 1, "v", 1, NULL, 0), OKV_EINVAL);
    pthread_t t;
    pthread_create(&t, NULL, other_thread, c);
    pthread_join(t, NULL);
    /* The other thread's failure does not overwrite ours. */
    assert_non_null(strstr(okv_errmsg(c), "table name is empty"));
    (void)v;
    okv_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client__strerror_covers_every_code),
        cmocka_unit_test(test_client__connect_rejects_bad_address_lists),
        cmocka_unit_test(test_client__connect_checks_the_user),
        cmocka_unit_test(test_client__free_functions_accept_null),
        cmocka_unit_test(test_client__arguments_checked_before_any_io),
        cmocka_unit_test(test_client__unreachable_node_is_a_clean_failure),
        cmocka_unit_test(test_client__error_messages_are_per_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
