/*
 * checker_test.h — shared by the checker tests: a compact way to write
 * history JSON in C source, and parse-then-check helpers that fail the test
 * with the parser's message.
 *
 * OP(3, ok, read, "[1,2]", 0) is the JSON text
 *   {"index":3,"type":"ok","f":"read","value":[1,2],"process":0,"time":3}
 * Histories are written as "[" OP(...) "," OP(...) ... "]".
 */
#ifndef OKV_JEPSEN_CHECKER_TEST_H
#define OKV_JEPSEN_CHECKER_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "append_check.h"
#include "bank_check.h"
#include "history.h"
#include "register_check.h"
#include "result.h"
#include "sequential_check.h"
#include "set_check.h"

#define OP(i, ty, f, value, p)                                                                     \
    "{\"index\":" #i ",\"type\":\"" #ty "\",\"f\":\"" #f "\",\"value\":" value ",\"process\":" #p \
    ",\"time\":" #i "}"

/* A nemesis op. */
#define NEM(i, f) "{\"index\":" #i ",\"type\":\"info\",\"f\":\"" #f "\",\"value\":null,\"process\":\"nemesis\",\"time\":" #i "}"

static inline history *parse_history(const char *json)
{
    okv_error e;
    okv_error_clear(&e);
    history *h = NULL;
    int rc = history_parse(&h, json, strlen(json), &e);
    if (rc)
        fail_msg("history_parse: %s", e.msg);
    return h;
}

typedef enum { RUN_REGISTER, RUN_SET, RUN_SEQUENTIAL, RUN_BANK, RUN_APPEND } run_kind;

/* The checker of kind k (register with opt, or its defaults when NULL). */
static inline int run_kind_check(run_kind k, check_result **r, const history *h,
                                 const register_options *opt, okv_error *e)
{
    switch (k) {
    case RUN_REGISTER: return register_check(r, h, opt, e);
    case RUN_SET: return set_check(r, h, e);
    case RUN_SEQUENTIAL: return sequential_check(r, h, e);
    case RUN_APPEND: return append_check(r, h, e);
    default: return bank_check(r, h, e);
    }
}

/* Parses json, runs the checker (register with opt, or defaults when NULL),
 * prints the explanation when it is not valid, and returns the result. */
static inline check_result *run_checker(run_kind k, const char *json, const register_options *opt)
{
    history *h = parse_history(json);
    okv_error e;
    okv_error_clear(&e);
    check_result *r = NULL;
    int rc = run_kind_check(k, &r, h, opt, &e);
    history_free(h);
    if (rc)
        fail_msg("checker: %s", e.msg);
    if (r->validity != CHECK_VALID && getenv("CHECKER_TEST_VERBOSE"))
        print_message("%s: %s\n%s", r->checker, check_validity_name(r->validity), r->explanation);
    return r;
}

/* Expects the checker to reject the history's format with OKV_EINVAL whose
 * message contains needle. */
static inline void expect_check_error(run_kind k, const char *json, const char *needle)
{
    history *h = parse_history(json);
    okv_error e;
    okv_error_clear(&e);
    check_result *r = NULL;
    int rc = run_kind_check(k, &r, h, NULL, &e);
    history_free(h);
    assert_int_equal(rc, OKV_EINVAL);
    assert_null(r);
    if (!strstr(e.msg, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", e.msg, needle);
}

#define assert_contains(hay, needle)                                                  \
    do {                                                                              \
        if (!strstr((hay), (needle)))                                                 \
            fail_msg("expected to find \"%s\" in:\n%s", (needle), (hay));             \
    } while (0)

#define assert_not_contains(hay, needle)                                              \
    do {                                                                              \
        if (strstr((hay), (needle)))                                                  \
            fail_msg("did not expect \"%s\" in:\n%s", (needle), (hay));               \
    } while (0)

#endif
