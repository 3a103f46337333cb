/*
 * test_checker_cli.c — okv-jepsen-check end to end, in-process: exit
 * statuses, the verdict line, the JSON report (read back with our own
 * parser), workload inference, and usage and parse errors. Each test works
 * in its own mkdtemp directory under /tmp and removes it.
 */
#include "checker_test.h"

#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"

typedef struct fixture {
    char dir[64];
    char history[128];
    char json[128];
    char *out;
    char *err;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/okvtest-checker-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->history, sizeof f->history, "%s/history.json", f->dir);
    snprintf(f->json, sizeof f->json, "%s/result.json", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unlink(f->history);
    unlink(f->json);
    rmdir(f->dir);
    free(f->out);
    free(f->err);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static char *slurp(FILE *fp)
{
    long n = ftell(fp);
    rewind(fp);
    char *s = calloc(1, (size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, fp);
    s[got] = '\0';
    fclose(fp);
    return s;
}

/* Runs the CLI with the NULL-terminated extra arguments; keeps stdout and
 * stderr in f->out / f->err. */
static int run(fixture *f, ...)
{
    char *argv[16] = { "okv-jepsen-check" };
    int argc = 1;
    va_list ap;
    va_start(ap, f);
    char *a;
    while (argc < 15 && (a = va_arg(ap, char *)) != NULL)
        argv[argc++] = a;
    va_end(ap);
    FILE *out = tmpfile(), *err = tmpfile();
    int status = cli_run(argc, argv, out, err);
    free(f->out);
    free(f->err);
    f->out = slurp(out);
    f->err = slurp(err);
    return status;
}

static const char REGISTER_BAD[] = "["
    OP(0, invoke, write, "[3,1]", 0) "," OP(1, ok, write, "[3,1]", 0) ","
    NEM(2, kill) ","
    OP(3, invoke, read, "[3,null]", 1) "," OP(4, ok, read, "[3,9]", 1) "]";

static void test_cli__valid_register(void **state)
{
    fixture *f = *state;
    write_file(f->history, "["
        OP(0, invoke, write, "[3,1]", 0) "," OP(1, ok, write, "[3,1]", 0) ","
        OP(2, invoke, read, "[3,null]", 1) "," OP(3, ok, read, "[3,1]", 1) "]");
    assert_int_equal(run(f, "--workload", "register", "--history", f->history, NULL), CLI_EXIT_VALID);
    assert_contains(f->out, "checker linearizable-register: valid (2 ops, 1 keys, ");
    assert_contains(f->out, "history: 4 ops, 2 client operations, 0 nemesis ops\n");
    assert_string_equal(f->err, "");
}

static void test_cli__invalid_register_with_json(void **state)
{
    fixture *f = *state;
    write_file(f->history, REGISTER_BAD);
    assert_int_equal(run(f, "--workload=register", "--history", f->history, "--json", f->json, NULL),
                     CLI_EXIT_INVALID);
    assert_contains(f->out, "checker linearizable-register: invalid (2 ops, 1 keys, ");
    assert_contains(f->out, "key 3: not linearizable");
    assert_contains(f->out, "nemesis ops (kill 1)");

    FILE *fp = fopen(f->json, "r");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    char *text = slurp(fp);
    okv_error e;
    json_doc *d = NULL;
    if (json_parse(&d, text, strlen(text), &e))
        fail_msg("the --json output does not parse: %s\n%s", e.msg, text);
    const json_node *root = json_doc_root(d);
    assert_string_equal(json_member(root, "workload")->u.str.s, "register");
    assert_string_equal(json_member(root, "valid")->u.str.s, "invalid");
    const json_node *bad = json_member(json_member(root, "anomalies"), "invalid-keys");
    assert_int_equal(json_member(bad, "count")->u.i, 1);
    assert_int_equal(json_member(bad, "examples")->u.kids.first->u.i, 3);
    assert_int_equal(json_member(json_member(json_member(root, "nemesis"), "f"), "kill")->u.i, 1);
    assert_contains(json_member(root, "explanation")->u.str.s, "phantom value");
    json_doc_free(d);
    free(text);
}

static void test_cli__unknown_when_budget_is_tiny(void **state)
{
    fixture *f = *state;
    write_file(f->history, "["
        OP(0, invoke, write, "[1,1]", 0) "," OP(1, invoke, write, "[1,2]", 1) ","
        OP(2, invoke, write, "[1,3]", 2) "," OP(3, invoke, read, "[1,null]", 3) ","
        OP(4, ok, write, "[1,1]", 0) "," OP(5, ok, write, "[1,2]", 1) ","
        OP(6, ok, write, "[1,3]", 2) "," OP(7, ok, read, "[1,2]", 3) "]");
    assert_int_equal(run(f, "--history", f->history, "--max-states-per-key", "2", NULL), CLI_EXIT_UNKNOWN);
    assert_contains(f->out, "checker linearizable-register: unknown");
    assert_contains(f->out, "state budget exhausted");
    assert_int_equal(run(f, "--history", f->history, "--time-limit-s", "0", NULL), CLI_EXIT_VALID);
}

static void test_cli__auto_infers_each_workload(void **state)
{
    fixture *f = *state;
    write_file(f->history, REGISTER_BAD);
    assert_int_equal(run(f, "--workload", "auto", "--history", f->history, NULL), CLI_EXIT_INVALID);
    assert_contains(f->out, "checker linearizable-register:");

    write_file(f->history, "["
        OP(0, invoke, add, "1", 0) "," OP(1, ok, add, "1", 0) ","
        OP(2, invoke, read, "null", 1) "," OP(3, ok, read, "[]", 1) "]");
    assert_int_equal(run(f, "--history", f->history, NULL), CLI_EXIT_INVALID);
    assert_contains(f->out, "checker set: invalid (2 ops, 1 keys, ");
    assert_contains(f->out, "lost: 1 element");

    write_file(f->history, "["
        OP(0, invoke, write, "0", 0) "," OP(1, ok, write, "0", 0) ","
        OP(2, invoke, read, "0", 1) "," OP(3, ok, read, "[0]", 1) "]");
    assert_int_equal(run(f, "--history", f->history, NULL), CLI_EXIT_VALID);
    assert_contains(f->out, "checker sequential: valid");

    /* A bank's reads are null reads too: the transfers say it is a bank. */
    write_file(f->history, "["
        OP(0, invoke, init, "[2,10]", 0) "," OP(1, ok, init, "[2,10]", 0) ","
        OP(2, invoke, read, "null", 1) "," OP(3, ok, read, "[[0,10],[1,10]]", 1) ","
        OP(4, invoke, transfer, "[0,1,5]", 0) "," OP(5, ok, transfer, "[0,1,5]", 0) "]");
    assert_int_equal(run(f, "--history", f->history, NULL), CLI_EXIT_VALID);
    assert_contains(f->out, "checker bank: valid (3 ops, 2 keys, ");

    /* A txn is list-append's. */
    write_file(f->history, "["
        OP(0, invoke, txn, "[[\"append\",1,1]]", 0) "," OP(1, ok, txn, "[[\"append\",1,1]]", 0) ","
        OP(2, invoke, txn, "[[\"r\",1,null]]", 1) "," OP(3, ok, txn, "[[\"r\",1,[1]]]", 1) "]");
    assert_int_equal(run(f, "--history", f->history, NULL), CLI_EXIT_VALID);
    assert_contains(f->out, "checker list-append: valid (2 ops, 1 keys, ");

    /* An orders op is the orders workload's. */
    write_file(f->history, "["
        OP(0, invoke, set-stock, "[\"s1\",3]", 0) "," OP(1, ok, set-stock, "[\"s1\",3]", 0) ","
        OP(2, invoke, final-stock, "[\"s1\"]", 0) "," OP(3, ok, final-stock, "[\"s1\",3,[]]", 0) "]");
    assert_int_equal(run(f, "--history", f->history, NULL), CLI_EXIT_VALID);
    assert_contains(f->out, "checker orders: valid (2 ops, 0 keys, ");

    /* Null reads alone are the set's (as before the bank existed). */
    write_file(f->history, "[" OP(0, invoke, read, "null", 1) "," OP(1, ok, read, "[]", 1) "]");
    assert_int_equal(run(f, "--history", f->history, NULL), CLI_EXIT_VALID);
    assert_contains(f->out, "checker set: valid");

    write_file(f->history, "[" OP(0, invoke, add, "1", 0) "," OP(1, invoke, transfer, "[0,1,5]", 1) "]");
    assert_int_equal(run(f, "--history", f->history, NULL), CLI_EXIT_USAGE);
    assert_contains(f->err, "op index 0 (f \"add\") looks like set but op index 1 (f \"transfer\") looks like bank");

    write_file(f->history, "[" OP(0, invoke, add, "1", 0) "," OP(1, invoke, cas, "[1,[1,2]]", 1) "]");
    assert_int_equal(run(f, "--history", f->history, NULL), CLI_EXIT_USAGE);
    assert_contains(f->err, "cannot infer the workload: op index 1 (f \"cas\") looks like register but op index 0 (f \"add\") looks like set");
}

/* The bank's verdict line, explanation and JSON document. */
static void test_cli__invalid_bank_with_json(void **state)
{
    fixture *f = *state;
    write_file(f->history, "["
        OP(0, invoke, init, "[2,10]", 0) "," OP(1, ok, init, "[2,10]", 0) ","
        OP(2, invoke, transfer, "[0,1,15]", 0) "," OP(3, fail, transfer, "[0,1,15]", 0) ","
        NEM(4, kill) ","
        OP(5, invoke, read, "null", 1) "," OP(6, ok, read, "[[0,10],[1,25]]", 1) "]");
    assert_int_equal(run(f, "--workload", "bank", "--history", f->history, "--json", f->json, NULL),
                     CLI_EXIT_INVALID);
    assert_contains(f->out, "checker bank: invalid (3 ops, 2 keys, ");
    assert_contains(f->out, "wrong-total: 1 of 1 ok reads saw a total other than 20 (2 accounts x 10)");
    assert_contains(f->out, "nemesis ops (kill 1)");

    FILE *fp = fopen(f->json, "r");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    char *text = slurp(fp);
    okv_error e;
    json_doc *d = NULL;
    if (json_parse(&d, text, strlen(text), &e))
        fail_msg("the --json output does not parse: %s\n%s", e.msg, text);
    const json_node *root = json_doc_root(d);
    assert_string_equal(json_member(root, "workload")->u.str.s, "bank");
    assert_string_equal(json_member(root, "checker")->u.str.s, "bank");
    assert_string_equal(json_member(root, "valid")->u.str.s, "invalid");
    const json_node *wrong = json_member(json_member(root, "anomalies"), "wrong-total");
    assert_int_equal(json_member(wrong, "count")->u.i, 1);
    assert_int_equal(json_member(wrong, "examples")->u.kids.first->u.i, 5);
    assert_int_equal(json_member(json_member(json_member(root, "anomalies"), "negative-balance"), "count")->u.i, 0);
    assert_int_equal(json_member(json_member(root, "counts"), "transfers-failed")->u.i, 1);
    json_doc_free(d);
    free(text);
}

static void test_cli__usage_errors(void **state)
{
    fixture *f = *state;
    assert_int_equal(run(f, NULL), CLI_EXIT_USAGE);
    assert_contains(f->err, "missing --history PATH");
    assert_int_equal(run(f, "--history", NULL), CLI_EXIT_USAGE);
    assert_contains(f->err, "--history needs a value");
    assert_int_equal(run(f, "--history", "x", "--workload", "elle", NULL), CLI_EXIT_USAGE);
    assert_contains(f->err, "--workload must be register, set, sequential, bank, list-append, orders "
                            "or auto, not \"elle\"");
    assert_int_equal(run(f, "--history", "x", "--time-limit-s", "-3", NULL), CLI_EXIT_USAGE);
    assert_contains(f->err, "--time-limit-s must be a whole number of seconds");
    assert_int_equal(run(f, "--history", "x", "--frobnicate", NULL), CLI_EXIT_USAGE);
    assert_contains(f->err, "unknown argument \"--frobnicate\"");
    assert_int_equal(run(f, "--help", NULL), CLI_EXIT_VALID);
    assert_contains(f->out, "exit status: 0 valid, 1 invalid, 2 unknown, 3 usage or parse error");
}

static void test_cli__parse_errors(void **state)
{
    fixture *f = *state;
    assert_int_equal(run(f, "--history", "/nonexistent/okv/history.json", NULL), CLI_EXIT_USAGE);
    assert_contains(f->err, "cannot open /nonexistent/okv/history.json: No such file or directory");

    write_file(f->history, "[" OP(0, invoke, write, "[1,1]", 0) ",");
    assert_int_equal(run(f, "--history", f->history, NULL), CLI_EXIT_USAGE);
    assert_contains(f->err, "byte 76: expected a JSON value, found end of input");

    write_file(f->history, "[" OP(0, invoke, write, "[1,1]", 0) "," OP(1, ok, read, "[1,1]", 0) "]");
    assert_int_equal(run(f, "--history", f->history, "--json", f->json, NULL), CLI_EXIT_USAGE);
    assert_contains(f->err, "is \"write\"");
    assert_int_equal(access(f->json, F_OK), -1); /* no report for a history that could not be checked */

    write_file(f->history, "[" OP(0, invoke, write, "[1,1]", 0) "]");
    assert_int_equal(run(f, "--workload", "set", "--history", f->history, NULL), CLI_EXIT_USAGE);
    assert_contains(f->err, "set workload: op index 0 (byte 1): f \"write\" is not add or read");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cli__valid_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli__invalid_register_with_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli__unknown_when_budget_is_tiny, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli__auto_infers_each_workload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli__invalid_bank_with_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli__usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli__parse_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
