/*
 * test_shell_output.c — how the shell renders bytes: the human form must be
 * pasteable back into the shell, the JSON form must be valid JSON that maps
 * back to the exact bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shell_lexer.h"
#include "shell_output.h"

/* Runs fn into a memory buffer and returns what it wrote (caller frees). */
static char *capture(void (*fn)(FILE *, const void *, size_t), const void *bytes, size_t len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    assert_non_null(f);
    fn(f, bytes, len);
    fclose(f);
    return buf;
}

static void assert_human(const void *bytes, size_t len, const char *want)
{
    char *s = shell_out_human(bytes, len);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
    s = capture(shell_out_human_write, bytes, len);
    assert_string_equal(s, want);
    free(s);
}

static void test_shell_output__printable_text_is_verbatim(void **state)
{
    assert_human("cust1/o1", 8, "cust1/o1");
    assert_human("two words", 9, "two words");
}

static void test_shell_output__other_bytes_are_quoted_and_escaped(void **state)
{
    assert_human("", 0, "\"\"");
    assert_human("\"x", 2, "\"\\\"x\"");
    assert_human("a\"b", 3, "\"a\\\"b\"");
    assert_human("a\nb", 3, "\"a\\nb\"");
    assert_human("a\\b\t", 4, "\"a\\\\b\\t\"");
    assert_human("\x00\xff\x7f", 3, "\"\\x00\\xff\\x7f\"");
}

/* The property that matters: the lexer reads the human form back exactly. */
static void test_shell_output__human_form_lexes_back_to_the_bytes(void **state)
{
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char *s = shell_out_human(all, sizeof all);
    shell_line l = SHELL_LINE_INIT;
    assert_int_equal(shell_lex(s, strlen(s), &l, NULL), SHELL_LEX_OK);
    assert_int_equal(l.count, 1);
    assert_int_equal(l.cmds[0].argc, 1);
    assert_int_equal(l.cmds[0].args[0].len, sizeof all);
    assert_memory_equal(l.cmds[0].args[0].bytes, all, sizeof all);
    shell_line_clear(&l);
    free(s);
}

static void test_shell_output__json_escapes_every_non_printable_byte(void **state)
{
    char *s = capture(shell_out_json_bytes, "a\"\\\n\t\r\x01\x7f\x80\xff", 10);
    assert_string_equal(s, "\"a\\\"\\\\\\n\\t\\r\\u0001\\u007f\\u0080\\u00ff\"");
    free(s);
}

static void test_shell_output__json_writer_places_commas(void **state)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    shell_json j;
    shell_json_begin(&j, f);
    shell_json_bool(&j, "ok", 1);
    shell_json_str(&j, "cmd", "scan");
    shell_json_str(&j, "none", NULL);
    shell_json_array_begin(&j, "items");
    shell_json_object_begin(&j, NULL);
    shell_json_bytes(&j, "key", "k\0", 2);
    shell_json_u64(&j, "version", UINT64_MAX);
    shell_json_object_end(&j);
    shell_json_object_begin(&j, NULL);
    shell_json_int(&j, "code", -6);
    shell_json_object_end(&j);
    shell_json_array_end(&j);
    shell_json_array_begin(&j, "empty");
    shell_json_array_end(&j);
    shell_json_end(&j);
    fclose(f);
    assert_string_equal(buf, "{\"ok\":true,\"cmd\":\"scan\",\"none\":null,\"items\":["
                             "{\"key\":\"k\\u0000\",\"version\":18446744073709551615},"
                             "{\"code\":-6}],\"empty\":[]}\n");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shell_output__printable_text_is_verbatim),
        cmocka_unit_test(test_shell_output__other_bytes_are_quoted_and_escaped),
        cmocka_unit_test(test_shell_output__human_form_lexes_back_to_the_bytes),
        cmocka_unit_test(test_shell_output__json_escapes_every_non_printable_byte),
        cmocka_unit_test(test_shell_output__json_writer_places_commas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
