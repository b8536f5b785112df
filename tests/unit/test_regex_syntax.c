/* Regex options (TP_OPT_REGEX: uns umh_topics, kafka key_filter) are written
 * in Go's RE2 syntax, as benthos-umh configs are, and run by POSIX regcomp:
 * the classes RE2 and POSIX spell differently (\d \w \s, their negations,
 * escapes inside [...]) match what RE2 matches, [[:digit:]] still works, and
 * what POSIX cannot say is an error at its FILE:LINE:COL, never a pattern
 * that silently matches nothing. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/regex_syntax.h"

/* Whether the RE2 pattern re, translated, matches s (unanchored, as RE2). */
static int matches(const char *re, const char *s)
{
    char *posix = NULL;
    struct tp_regex_error e;
    if (tp_regex_to_posix(re, &posix, &e) != 0)
        fail_msg("%s: refused at %zu: %s", re, e.offset, e.why);
    regex_t r;
    if (regcomp(&r, posix, REG_EXTENDED | REG_NOSUB))
        fail_msg("%s: translated to '%s', which does not compile", re, posix);
    int m = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    free(posix);
    return m;
}

static const struct {
    const char *re, *s;
    int want;
} cases[] = {
    {"plant\\d+$", "umh.v1.acme.plant12", 1},
    {"plant\\d+$", "umh.v1.acme.plantd", 0},
    {"^\\D+$", "abc", 1},
    {"^\\D+$", "ab1", 0},
    {"^\\w+\\.\\w+$", "area_1.tag9", 1},
    {"^\\w+$", "a-b", 0},
    {"\\W", "a-b", 1},
    {"\\W", "a_b", 0},
    {"a\\sb", "a b", 1},
    {"a\\sb", "a\tb", 1},
    {"a\\Sb", "a b", 0},
    {"a\\Sb", "axb", 1},
    {"^[\\d.]+$", "1.25", 1},
    {"^[\\d.]+$", "1,25", 0},
    {"^[^\\d]+$", "abc", 1},
    {"^[^\\d]+$", "a1c", 0},
    {"^[\\w-]+$", "plant-1_a", 1},
    {"^[[:digit:]]+$", "123", 1},
    {"^[[:digit:]]+$", "12a", 0},
    {"^[[:alpha:]\\d]+$", "ab12", 1},
    {"^[\\]\\-a]+$", "]-a", 1}, /* escaped ']' and '-' inside [...] */
    {"^[\\]\\-a]+$", "b", 0},
    {"^[\\\\]$", "\\", 1}, /* an escaped backslash: one backslash */
    {"^[\\.]$", "\\", 0},  /* POSIX alone would take this backslash literally */
    {"^[\\^]$", "^", 1},
    {"^[\\^]$", "a", 0},
    {"^[^\\^]$", "a", 1},
    {"^[\\^\\-]+$", "-^", 1},
    {"\\.", "a.b", 1},
    {"\\.", "ab", 0},
    {"^a\\<b$", "a<b", 1}, /* escaped punctuation is itself (glibc: a word start) */
    {"a\\tb", "a\tb", 1},
    {"(x|y)\\d{2}", "y42", 1},
};

static void test_translation_matches_like_re2(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (matches(cases[i].re, cases[i].s) != cases[i].want)
            fail_msg("'%s' on '%s': expected %s", cases[i].re, cases[i].s,
                     cases[i].want ? "a match" : "no match");
}

static const struct {
    const char *re;
    size_t offset;
    const char *says;
} refused[] = {
    {"umh\\.\\pL", 5, "\\p"},
    {"a\\x41", 1, "\\x"},
    {"\\Aumh", 0, "\\A"},
    {"(a)\\1", 3, "\\1"},
    {"^[\\D]", 2, "\\D"},
    {"x[a\\S]", 3, "\\S"},
    {"[[:^digit:]]", 1, "[:^digit:]"},
};

static void test_what_posix_cannot_say_is_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char *posix = NULL;
        struct tp_regex_error e;
        if (tp_regex_to_posix(refused[i].re, &posix, &e) != TP_CONFIG)
            fail_msg("'%s' accepted as '%s'", refused[i].re, posix ? posix : "?");
        if (e.offset != refused[i].offset || !strstr(e.why, refused[i].says))
            fail_msg("'%s': refused at %zu (expected %zu): %s", refused[i].re, e.offset,
                     refused[i].offset, e.why);
    }
}

/* Through the option tables: the stored value is the POSIX translation; a
 * refused construct is an error at its own column. */
struct filter {
    struct tp_strlist topics;
    char *one;
};

static const struct tp_option filter_opts[] = {
    TP_OPTION(struct filter, topics, "umh_topics", TP_OPT_STRINGS, NULL, "regexes",
              .flags = TP_OPT_REGEX),
    TP_OPTION(struct filter, one, "umh_topic", TP_OPT_STRING, NULL, "a regex",
              .flags = TP_OPT_REGEX),
    {0},
};

static int parse(const char *yaml, struct filter *out, struct tp_config **cfg, struct tp_error *err)
{
    memset(out, 0, sizeof(*out));
    assert_int_equal(tp_config_load_string("t.yaml", yaml, strlen(yaml), cfg, err), TP_OK);
    return tp_options_parse(filter_opts, (*cfg)->root, "input.uns", out, err);
}

static void test_options_store_the_translation(void **state)
{
    (void)state;
    struct filter f;
    struct tp_config *cfg;
    struct tp_error err = {0};
    assert_int_equal(
        parse("umh_topics: ['plant\\d+$', '[[:digit:]]']\numh_topic: '\\w'\n", &f, &cfg, &err),
        TP_OK);
    assert_string_equal(f.topics.v[0], "plant[0-9]+$");
    assert_string_equal(f.topics.v[1], "[[:digit:]]");
    assert_string_equal(f.one, "[0-9A-Za-z_]");
    tp_options_free(filter_opts, &f);
    tp_config_free(cfg);

    assert_int_equal(parse("umh_topics:\n  - 'umh\\.v1'\n  - 'umh\\.\\pL'\n", &f, &cfg, &err),
                     TP_CONFIG);
    assert_string_equal(err.file, "t.yaml");
    assert_int_equal(err.line, 3);
    assert_int_equal(err.col, 11); /* the \p */
    assert_non_null(strstr(err.msg, "input.uns.umh_topics[1]"));
    assert_non_null(strstr(err.msg, "\\p"));
    tp_options_free(filter_opts, &f);
    tp_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translation_matches_like_re2),
        cmocka_unit_test(test_what_posix_cannot_say_is_refused),
        cmocka_unit_test(test_options_store_the_translation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
