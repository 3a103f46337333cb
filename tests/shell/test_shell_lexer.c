/*
 * test_shell_lexer.c — the shell's tokenizer: splitting, quoting, escapes,
 * command separators, comments, and clear errors for malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shell_lexer.h"

/* Lexes a C string that must succeed. */
static shell_line lex_ok(const char *text)
{
    shell_line l = SHELL_LINE_INIT;
    shell_lex_error err;
    int rc = shell_lex(text, strlen(text), &l, &err);
    if (rc != SHELL_LEX_OK)
        fail_msg("lexing <%s> failed: %s", text, err.msg);
    return l;
}

static void assert_arg(const shell_arg *a, const void *bytes, size_t len)
{
    assert_int_equal(a->len, len);
    assert_memory_equal(a->bytes, bytes, len);
    assert_int_equal(a->bytes[len], '\0');
}

#define ASSERT_ARG(a, lit) assert_arg((a), (lit), sizeof(lit) - 1)

static void test_shell_lexer__splits_on_whitespace(void **state)
{
    shell_line l = lex_ok("  put\torders   cust1/o1 hello  ");
    assert_int_equal(l.count, 1);
    assert_int_equal(l.cmds[0].argc, 4);
    ASSERT_ARG(&l.cmds[0].args[0], "put");
    ASSERT_ARG(&l.cmds[0].args[1], "orders");
    ASSERT_ARG(&l.cmds[0].args[2], "cust1/o1");
    ASSERT_ARG(&l.cmds[0].args[3], "hello");
    assert_false(l.cmds[0].args[3].quoted);
    shell_line_clear(&l);
}

static void test_shell_lexer__blank_input_has_no_commands(void **state)
{
    const char *inputs[] = { "", "   ", "\t\n", ";", " ; ;; ", "# only a comment", "\n" };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        shell_line l = lex_ok(inputs[i]);
        assert_int_equal(l.count, 0);
        assert_null(l.cmds);
        shell_line_clear(&l);
    }
}

static void test_shell_lexer__quotes_keep_spaces_and_mark_quoted(void **state)
{
    shell_line l = lex_ok("put t \"two words\" \"--if-version\"");
    assert_int_equal(l.cmds[0].argc, 4);
    ASSERT_ARG(&l.cmds[0].args[2], "two words");
    assert_true(l.cmds[0].args[2].quoted);
    ASSERT_ARG(&l.cmds[0].args[3], "--if-version");
    assert_true(l.cmds[0].args[3].quoted);
    shell_line_clear(&l);
}

static void test_shell_lexer__empty_quotes_are_an_empty_argument(void **state)
{
    shell_line l = lex_ok("put t k \"\"");
    assert_int_equal(l.cmds[0].argc, 4);
    assert_int_equal(l.cmds[0].args[3].len, 0);
    assert_true(l.cmds[0].args[3].quoted);
    shell_line_clear(&l);
}

static void test_shell_lexer__adjacent_parts_join(void **state)
{
    shell_line l = lex_ok("ab\"c d\"e");
    assert_int_equal(l.cmds[0].argc, 1);
    ASSERT_ARG(&l.cmds[0].args[0], "abc de");
    shell_line_clear(&l);
}

static void test_shell_lexer__escapes_in_quotes(void **state)
{
    shell_line l = lex_ok("\"q\\\" b\\\\ n\\n t\\t r\\r\"");
    ASSERT_ARG(&l.cmds[0].args[0], "q\" b\\ n\n t\t r\r");
    shell_line_clear(&l);
}

static void test_shell_lexer__hex_escapes_give_binary_bytes(void **state)
{
    shell_line l = lex_ok("\"\\x00\\xff\\x41\\xAb\\0z\"");
    static const unsigned char want[] = { 0x00, 0xff, 0x41, 0xab, 0x00, 'z' };
    assert_arg(&l.cmds[0].args[0], want, sizeof want);
    shell_line_clear(&l);
}

static void test_shell_lexer__backslash_is_literal_outside_quotes(void **state)
{
    shell_line l = lex_ok("a\\b c\\x41");
    ASSERT_ARG(&l.cmds[0].args[0], "a\\b");
    ASSERT_ARG(&l.cmds[0].args[1], "c\\x41");
    shell_line_clear(&l);
}

static void test_shell_lexer__semicolon_separates_commands(void **state)
{
    shell_line l = lex_ok("put t k v; get t k;del t k");
    assert_int_equal(l.count, 3);
    assert_int_equal(l.cmds[0].argc, 4);
    ASSERT_ARG(&l.cmds[0].args[3], "v");
    assert_int_equal(l.cmds[1].argc, 3);
    ASSERT_ARG(&l.cmds[1].args[0], "get");
    ASSERT_ARG(&l.cmds[2].args[0], "del");
    shell_line_clear(&l);
}

static void test_shell_lexer__semicolon_and_hash_in_quotes_are_data(void **state)
{
    shell_line l = lex_ok("put t \"a;b\" \"#x\"");
    assert_int_equal(l.count, 1);
    ASSERT_ARG(&l.cmds[0].args[2], "a;b");
    ASSERT_ARG(&l.cmds[0].args[3], "#x");
    shell_line_clear(&l);
}

static void test_shell_lexer__hash_starts_comment_only_at_word_start(void **state)
{
    shell_line l = lex_ok("get t a#b # the rest; put t k v");
    assert_int_equal(l.count, 1);
    assert_int_equal(l.cmds[0].argc, 3);
    ASSERT_ARG(&l.cmds[0].args[2], "a#b");
    shell_line_clear(&l);
}

static void test_shell_lexer__trailing_newline_is_ignored(void **state)
{
    shell_line l = lex_ok("get t k\r\n");
    assert_int_equal(l.cmds[0].argc, 3);
    ASSERT_ARG(&l.cmds[0].args[2], "k");
    shell_line_clear(&l);
}

static void test_shell_lexer__input_with_nul_uses_length(void **state)
{
    /* Input read with getline may hold NUL bytes; they are data. */
    const char text[] = { 'g', ' ', 'a', '\0', 'b' };
    shell_line l = SHELL_LINE_INIT;
    assert_int_equal(shell_lex(text, sizeof text, &l, NULL), SHELL_LEX_OK);
    assert_int_equal(l.cmds[0].argc, 2);
    assert_arg(&l.cmds[0].args[1], "a\0b", 3);
    shell_line_clear(&l);
}

/* Lexes text that must fail with code; returns the message. */
static void lex_fails(const char *text, int code, size_t pos, const char *needle)
{
    shell_line l = SHELL_LINE_INIT;
    shell_lex_error err;
    int rc = shell_lex(text, strlen(text), &l, &err);
    assert_int_equal(rc, code);
    assert_int_equal(l.count, 0);
    assert_null(l.cmds);
    assert_int_equal(err.pos, pos);
    if (!strstr(err.msg, needle))
        fail_msg("message <%s> lacks <%s>", err.msg, needle);
}

static void test_shell_lexer__unterminated_quote_is_an_error(void **state)
{
    lex_fails("put t k \"abc", SHELL_LEX_EUNTERMINATED, 8, "never closed");
    lex_fails("put t k \"abc; get t k", SHELL_LEX_EUNTERMINATED, 8, "column 9");
    /* A backslash escaping the closing quote leaves the string open. */
    lex_fails("\"abc\\\"", SHELL_LEX_EUNTERMINATED, 0, "never closed");
    lex_fails("\"abc\\", SHELL_LEX_EUNTERMINATED, 4, "backslash");
}

static void test_shell_lexer__bad_hex_escape_is_an_error(void **state)
{
    lex_fails("\"\\x4g\"", SHELL_LEX_EBADESCAPE, 1, "two hex digits");
    lex_fails("\"\\x4\"", SHELL_LEX_EBADESCAPE, 1, "two hex digits");
    lex_fails("\"\\x", SHELL_LEX_EBADESCAPE, 1, "two hex digits");
    lex_fails("get t \"ab\\xZZ\"", SHELL_LEX_EBADESCAPE, 9, "column 10");
}

static void test_shell_lexer__unknown_escape_is_an_error(void **state)
{
    lex_fails("\"\\q\"", SHELL_LEX_EBADESCAPE, 1, "unknown escape \\q");
    lex_fails("\"\\\x01\"", SHELL_LEX_EBADESCAPE, 1, "unknown escape \\x01");
}

static void test_shell_lexer__error_leaves_earlier_commands_unrun(void **state)
{
    /* The whole line is rejected, not just the bad command: running half a
     * line the user mistyped would surprise. */
    lex_fails("put t k v; get t \"x", SHELL_LEX_EUNTERMINATED, 17, "never closed");
}

static void test_shell_lexer__clear_accepts_null_and_empty(void **state)
{
    shell_line l = SHELL_LINE_INIT;
    shell_line_clear(NULL);
    shell_line_clear(&l);
    shell_line_clear(&l);
}

static void test_shell_lexer__long_argument_grows(void **state)
{
    char text[5000];
    memset(text, 'k', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    shell_line l = lex_ok(text);
    assert_int_equal(l.cmds[0].args[0].len, sizeof text - 1);
    shell_line_clear(&l);

    /* Many arguments and commands exercise the other growth paths. */
    char many[4000] = "";
    for (int i = 0; i < 300; i++)
        strcat(many, i % 10 == 9 ? "a;" : "a ");
    l = lex_ok(many);
    assert_int_equal(l.count, 30);
    for (size_t i = 0; i < l.count; i++)
        assert_int_equal(l.cmds[i].argc, 10);
    shell_line_clear(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shell_lexer__splits_on_whitespace),
        cmocka_unit_test(test_shell_lexer__blank_input_has_no_commands),
        cmocka_unit_test(test_shell_lexer__quotes_keep_spaces_and_mark_quoted),
        cmocka_unit_test(test_shell_lexer__empty_quotes_are_an_empty_argument),
        cmocka_unit_test(test_shell_lexer__adjacent_parts_join),
        cmocka_unit_test(test_shell_lexer__escapes_in_quotes),
        cmocka_unit_test(test_shell_lexer__hex_escapes_give_binary_bytes),
        cmocka_unit_test(test_shell_lexer__backslash_is_literal_outside_quotes),
        cmocka_unit_test(test_shell_lexer__semicolon_separates_commands),
        cmocka_unit_test(test_shell_lexer__semicolon_and_hash_in_quotes_are_data),
        cmocka_unit_test(test_shell_lexer__hash_starts_comment_only_at_word_start),
        cmocka_unit_test(test_shell_lexer__trailing_newline_is_ignored),
        cmocka_unit_test(test_shell_lexer__input_with_nul_uses_length),
        cmocka_unit_test(test_shell_lexer__unterminated_quote_is_an_error),
        cmocka_unit_test(test_shell_lexer__bad_hex_escape_is_an_error),
        cmocka_unit_test(test_shell_lexer__unknown_escape_is_an_error),
        cmocka_unit_test(test_shell_lexer__error_leaves_earlier_commands_unrun),
        cmocka_unit_test(test_shell_lexer__clear_accepts_null_and_empty),
        cmocka_unit_test(test_shell_lexer__long_argument_grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
