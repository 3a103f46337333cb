/*
 * test_checker_json.c — the strict JSON reader: what it accepts, the byte
 * offsets its errors name, and that truncated or garbage input is rejected
 * cleanly (these tests also run under ASan+UBSan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "json.h"

static json_doc *parse_ok(const char *text)
{
    okv_error e;
    okv_error_clear(&e);
    json_doc *d = NULL;
    if (json_parse(&d, text, strlen(text), &e))
        fail_msg("json_parse(%s): %s", text, e.msg);
    return d;
}

/* Expects text to be rejected with a message starting "byte <offset>:". */
static void expect_error(const char *text, size_t len, size_t offset, const char *needle)
{
    okv_error e;
    okv_error_clear(&e);
    json_doc *d = NULL;
    int rc = json_parse(&d, text, len, &e);
    if (rc == 0)
        fail_msg("json_parse accepted \"%s\"", text);
    assert_int_equal(rc, OKV_EINVAL);
    assert_null(d);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "byte %zu:", offset);
    if (strncmp(e.msg, prefix, strlen(prefix)) != 0 || (needle && !strstr(e.msg, needle)))
        fail_msg("for \"%s\" expected \"%s ...%s...\", got \"%s\"", text, prefix, needle ? needle : "", e.msg);
}

#define EXPECT_ERROR(text, offset, needle) expect_error(text, strlen(text), offset, needle)

static void test_json__scalars_and_containers(void **state)
{
    json_doc *d = parse_ok(" {\"a\": [1, -2, null, true, false, \"x\", 2.5e1, {}], \"b\": {\"c\": []}} ");
    const json_node *root = json_doc_root(d);
    assert_int_equal(root->type, JSON_OBJECT);
    assert_int_equal(root->u.kids.count, 2);
    const json_node *a = json_member(root, "a");
    assert_non_null(a);
    assert_int_equal(a->type, JSON_ARRAY);
    assert_int_equal(a->u.kids.count, 8);
    const json_node *k = a->u.kids.first;
    assert_int_equal(k->type, JSON_INT);
    assert_int_equal(k->u.i, 1);
    k = k->next;
    assert_int_equal(k->u.i, -2);
    k = k->next;
    assert_int_equal(k->type, JSON_NULL);
    k = k->next;
    assert_int_equal(k->type, JSON_TRUE);
    k = k->next;
    assert_int_equal(k->type, JSON_FALSE);
    k = k->next;
    assert_int_equal(k->type, JSON_STRING);
    assert_string_equal(k->u.str.s, "x");
    k = k->next;
    assert_int_equal(k->type, JSON_FLOAT);
    assert_true(k->u.d == 25.0);
    k = k->next;
    assert_int_equal(k->type, JSON_OBJECT);
    assert_int_equal(k->u.kids.count, 0);
    assert_null(k->next);
    const json_node *b = json_member(root, "b");
    assert_int_equal(json_member(b, "c")->type, JSON_ARRAY);
    assert_null(json_member(root, "zz"));
    assert_int_equal(a->offset, 7);
    json_doc_free(d);
}

static void test_json__int64_bounds(void **state)
{
    json_doc *d = parse_ok("[9223372036854775807, -9223372036854775808, 0, -0]");
    const json_node *k = json_doc_root(d)->u.kids.first;
    assert_true(k->u.i == INT64_MAX);
    assert_true(k->next->u.i == INT64_MIN);
    assert_true(k->next->next->u.i == 0);
    assert_true(k->next->next->next->u.i == 0);
    json_doc_free(d);
    EXPECT_ERROR("9223372036854775808", 0, "64 bits");
    EXPECT_ERROR("[-9223372036854775809]", 1, "64 bits");
    EXPECT_ERROR("[1, 99999999999999999999999]", 4, "64 bits");
}

static void test_json__string_escapes(void **state)
{
    json_doc *d = parse_ok("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u20ac\", \"\\ud83d\\ude00\", \"x\\u0000y\", \"\xc3\xa9\"]");
    const json_node *k = json_doc_root(d)->u.kids.first;
    assert_string_equal(k->u.str.s, "a\"b\\c/d\b\f\n\r\t");
    k = k->next;
    assert_string_equal(k->u.str.s, "\xc3\xa9\xe2\x82\xac");
    k = k->next;
    assert_string_equal(k->u.str.s, "\xf0\x9f\x98\x80");
    k = k->next;
    assert_int_equal(k->u.str.len, 3);
    assert_memory_equal(k->u.str.s, "x\0y", 3);
    k = k->next;
    assert_string_equal(k->u.str.s, "\xc3\xa9");
    json_doc_free(d);
}

static void test_json__errors_name_the_byte(void **state)
{
    EXPECT_ERROR("", 0, "end of input");
    EXPECT_ERROR("   ", 3, "end of input");
    EXPECT_ERROR("[1,2,,3]", 5, "expected a JSON value");
    EXPECT_ERROR("[1 2]", 3, "',' or ']'");
    EXPECT_ERROR("{\"a\" 1}", 5, "':'");
    EXPECT_ERROR("{\"a\":1,}", 7, "member name");
    EXPECT_ERROR("{1:2}", 1, "member name");
    EXPECT_ERROR("[1,]", 3, "expected a JSON value");
    EXPECT_ERROR("[1] x", 4, "after the JSON value");
    EXPECT_ERROR("[tru]", 1, "expected a JSON value");
    EXPECT_ERROR("nul", 0, NULL);
    EXPECT_ERROR("01", 0, "leading zero");
    EXPECT_ERROR("-", 1, "digit");
    EXPECT_ERROR("1.", 2, "digit after '.'");
    EXPECT_ERROR(".5", 0, NULL);
    EXPECT_ERROR("1e", 2, "exponent");
    EXPECT_ERROR("+1", 0, NULL);
    EXPECT_ERROR("NaN", 0, NULL);
    EXPECT_ERROR("1e999", 0, "out of range");
    EXPECT_ERROR("[\"abc", 1, "unterminated string");
    EXPECT_ERROR("\"a\\q\"", 2, "invalid escape");
    EXPECT_ERROR("\"\\u12\"", 5, "4 hex digits");
    EXPECT_ERROR("\"\\udc00\"", 1, "lone low surrogate");
    EXPECT_ERROR("\"\\ud800x\"", 1, "high surrogate");
    EXPECT_ERROR("\"\\ud800\\u0041\"", 1, "high surrogate");
    EXPECT_ERROR("\"a\tb\"", 2, "control character");
    EXPECT_ERROR("\"\xff\"", 1, "UTF-8");
    EXPECT_ERROR("\"\xc0\xaf\"", 1, "UTF-8");      /* overlong '/' */
    EXPECT_ERROR("\"\xed\xa0\x80\"", 1, "UTF-8");  /* encoded surrogate */
    EXPECT_ERROR("\"\xe2\x82\"", 1, "UTF-8");      /* truncated sequence */
    EXPECT_ERROR("[1] [2]", 4, NULL);
    expect_error("[1,\0]", 5, 3, "byte 0x00");
}

static void test_json__depth_limit(void **state)
{
    char buf[2 * (JSON_MAX_DEPTH + 1) + 1];
    for (int depth = JSON_MAX_DEPTH; depth <= JSON_MAX_DEPTH + 1; depth++) {
        memset(buf, '[', (size_t)depth);
        memset(buf + depth, ']', (size_t)depth);
        buf[2 * depth] = '\0';
        okv_error e;
        json_doc *d = NULL;
        int rc = json_parse(&d, buf, strlen(buf), &e);
        if (depth == JSON_MAX_DEPTH) {
            assert_int_equal(rc, 0);
            json_doc_free(d);
        } else {
            assert_int_equal(rc, OKV_EINVAL);
            assert_non_null(strstr(e.msg, "nesting deeper"));
        }
    }
    /* far deeper than the limit: rejected at the limit, not by the stack */
    static char deep[100000];
    memset(deep, '[', sizeof deep - 1);
    EXPECT_ERROR(deep, JSON_MAX_DEPTH, "nesting deeper");
}

static void test_json__stream_reads_elements_one_at_a_time(void **state)
{
    const char *text = " [ {\"a\":1} , 2 ,[3] ] \n";
    okv_error e;
    json_stream *s = NULL;
    assert_int_equal(json_stream_new(&s, text, strlen(text), &e), 0);
    const json_node *n;
    assert_int_equal(json_stream_next(s, &n, &e), 1);
    assert_int_equal(json_member(n, "a")->u.i, 1);
    assert_int_equal(json_stream_next(s, &n, &e), 1);
    assert_int_equal(n->u.i, 2);
    assert_int_equal(json_stream_next(s, &n, &e), 1);
    assert_int_equal(n->type, JSON_ARRAY);
    assert_int_equal(json_stream_next(s, &n, &e), 0);
    assert_int_equal(json_stream_next(s, &n, &e), 0);
    json_stream_free(s);

    text = "[1, 2 3]";
    assert_int_equal(json_stream_new(&s, text, strlen(text), &e), 0);
    assert_int_equal(json_stream_next(s, &n, &e), 1);
    assert_int_equal(json_stream_next(s, &n, &e), 1);
    assert_int_equal(json_stream_next(s, &n, &e), OKV_EINVAL);
    assert_non_null(strstr(e.msg, "byte 6:"));
    assert_int_equal(json_stream_next(s, &n, &e), OKV_EINVAL); /* stays failed */
    json_stream_free(s);

    text = "{\"not\":\"an array\"}";
    assert_int_equal(json_stream_new(&s, text, strlen(text), &e), OKV_EINVAL);
    assert_null(s);
    assert_non_null(strstr(e.msg, "byte 0:"));
}

static const char HISTORY[] =
    "[{\"index\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":[1,-5],\"process\":0,\"time\":0},\n"
    " {\"index\":1,\"type\":\"info\",\"f\":\"kill\",\"value\":{\"nodes\":[\"n1\"]},\"process\":\"nemesis\",\"time\":7},\n"
    " {\"index\":2,\"type\":\"ok\",\"f\":\"write\",\"value\":[1,-5],\"process\":0,\"time\":10},\n"
    " {\"index\":3,\"type\":\"invoke\",\"f\":\"cas\",\"value\":[1,[-5,6]],\"process\":1,\"time\":20},\n"
    " {\"index\":4,\"type\":\"fail\",\"f\":\"cas\",\"value\":[1,[-5,6]],\"process\":1,\"time\":30,\"error\":\"t\\u00e9mp \\\"x\\\"\"}]\n";

/* Every proper prefix of a history is an error (never success, never a
 * crash); so is every single-byte corruption that breaks the grammar. */
static void test_json__truncated_history_is_rejected(void **state)
{
    size_t len = strlen(HISTORY);
    okv_error e;
    history *h = NULL;
    for (size_t cut = 0; cut < len; cut++) {
        char *copy = malloc(cut + 1); /* exact size: ASan sees any over-read */
        memcpy(copy, HISTORY, cut);
        int rc = history_parse(&h, copy, cut, &e);
        if (cut >= len - 1 && rc == 0) { /* only the trailing newline is missing */
            history_free(h);
            free(copy);
            continue;
        }
        if (rc != OKV_EINVAL)
            fail_msg("prefix of %zu bytes: rc %d", cut, rc);
        assert_null(h);
        assert_non_null(strstr(e.msg, "byte "));
        free(copy);
    }
    assert_int_equal(history_parse(&h, HISTORY, len, &e), 0);
    history_free(h);
}

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* Random bytes drawn mostly from JSON's own alphabet (so the parser gets
 * deep into its states), and random corruptions of a real history: the
 * reader must answer 0 or OKV_EINVAL and never crash or leak. */
static void test_json__garbage_never_crashes(void **state)
{
    static const char alphabet[] = "[]{}\",:0123456789-+.eEtrufalsn \\u\n\t\x01\x80\xc3\xa9\xff";
    rng_state = 0x5eed0001;
    char buf[256];
    size_t accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = rng() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = alphabet[rng() % (sizeof alphabet - 1)];
        char *copy = malloc(n ? n : 1);
        memcpy(copy, buf, n);
        okv_error e;
        json_doc *d = NULL;
        int rc = json_parse(&d, copy, n, &e);
        if (rc != 0 && rc != OKV_EINVAL)
            fail_msg("seed 0x5eed0001 iteration %d: rc %d", iter, rc);
        accepted += rc == 0;
        json_doc_free(d);
        history *h = NULL;
        rc = history_parse(&h, copy, n, &e);
        if (rc != 0 && rc != OKV_EINVAL)
            fail_msg("seed 0x5eed0001 iteration %d: history rc %d", iter, rc);
        history_free(h);
        free(copy);
    }
    size_t len = strlen(HISTORY);
    for (int iter = 0; iter < 20000; iter++) {
        char *copy = malloc(len);
        memcpy(copy, HISTORY, len);
        int flips = 1 + (int)(rng() % 3);
        for (int f = 0; f < flips; f++)
            copy[rng() % len] = (char)(rng() & 0xff);
        okv_error e;
        history *h = NULL;
        int rc = history_parse(&h, copy, len, &e);
        if (rc != 0 && rc != OKV_EINVAL)
            fail_msg("seed 0x5eed0001 corruption %d: rc %d", iter, rc);
        history_free(h);
        free(copy);
    }
    (void)accepted;
}

/* A large history parses in one pass; the size is what a long run produces. */
static void test_json__large_history(void **state)
{
    const size_t n_ops = 200000;
    size_t cap = n_ops * 128 + 16, len = 0;
    char *text = malloc(cap);
    text[len++] = '[';
    for (size_t i = 0; i < n_ops; i++) {
        size_t p = (i / 2) % 50;
        len += (size_t)snprintf(text + len, cap - len,
                                "%s{\"index\":%zu,\"type\":\"%s\",\"f\":\"write\",\"value\":[%zu,%zu],"
                                "\"process\":%zu,\"time\":%zu}",
                                i ? "," : "", i, i % 2 ? "ok" : "invoke", i % 7, i / 2, p, i * 10);
    }
    text[len++] = ']';
    okv_error e;
    history *h = NULL;
    if (history_parse(&h, text, len, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(h->n_ops, n_ops);
    assert_int_equal(h->n_invokes, n_ops / 2);
    assert_int_equal(h->ops[n_ops - 1].pair, n_ops - 2);
    history_free(h);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json__scalars_and_containers),
        cmocka_unit_test(test_json__int64_bounds),
        cmocka_unit_test(test_json__string_escapes),
        cmocka_unit_test(test_json__errors_name_the_byte),
        cmocka_unit_test(test_json__depth_limit),
        cmocka_unit_test(test_json__stream_reads_elements_one_at_a_time),
        cmocka_unit_test(test_json__truncated_history_is_rejected),
        cmocka_unit_test(test_json__garbage_never_crashes),
        cmocka_unit_test(test_json__large_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
