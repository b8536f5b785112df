/* Unit tests for the one number grammar (src/core/number.c): JSON's exact
 * grammar and the looser forms used for UNS datatype strings and YAML option
 * values, integer digits, plus the clock deadline helper (src/core/clock.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/number.h"

#define YAML (TP_NUM_PLUS | TP_NUM_LEADING_ZEROS | TP_NUM_BARE_DOT)

static int is(const char *s, unsigned flags)
{
    return tp_number_is(s, strlen(s), flags);
}

static void test_json_grammar(void **state)
{
    (void)state;
    const char *good[] = {"0",   "-0",   "12",     "-12.5",
                          "1e5", "1E+5", "0.5e-3", "123456789012345678901"};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        assert_true(is(good[i], 0));
    const char *bad[] = {"", "-", "+1", "01", "1.", ".5", "1e", "1e+", "--1", "1x", " 1", "0x10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_false(is(bad[i], 0));
}

static void test_span_stops_at_the_number(void **state)
{
    (void)state;
    int integer = -1;
    assert_int_equal(tp_number_span("12,3", 4, 0, &integer), 2);
    assert_int_equal(integer, 1);
    assert_int_equal(tp_number_span("1.5]", 4, 0, &integer), 3);
    assert_int_equal(integer, 0);
    assert_int_equal(tp_number_span("01", 2, 0, NULL), 1); /* JSON: "0", then "1" is left */
    assert_int_equal(tp_number_span("1.x", 3, 0, NULL), 0);
    assert_int_equal(tp_number_span("2e}", 3, 0, NULL), 0);
}

static void test_loose_grammars(void **state)
{
    (void)state;
    /* UNS datatype "number" strings: leading zeros, nothing else */
    assert_true(is("007", TP_NUM_LEADING_ZEROS));
    assert_true(is("-00.50e2", TP_NUM_LEADING_ZEROS));
    assert_false(is("+1", TP_NUM_LEADING_ZEROS));
    assert_false(is("5.", TP_NUM_LEADING_ZEROS));
    /* YAML scalars: a sign and a bare dot too */
    assert_true(is("+1", YAML));
    assert_true(is("5.", YAML));
    assert_true(is("-.5e3", YAML));
    assert_false(is(".", YAML));
    assert_false(is("+", YAML));
    assert_false(is(".e5", YAML));
    int integer = -1;
    assert_int_equal(tp_number_span("+0042", 5, YAML, &integer), 5);
    assert_int_equal(integer, 1);
    assert_int_equal(tp_number_span("42.", 3, YAML, &integer), 3);
    assert_int_equal(integer, 0);
}

static void test_number_text(void **state)
{
    (void)state;
    char buf[32];
    tp_number_text(0.1 + 0.2, buf);
    assert_string_equal(buf, "0.30000000000000004");
    tp_number_text(1e21, buf);
    assert_string_equal(buf, "1e+21");
    tp_number_text(-42, buf);
    assert_string_equal(buf, "-42");
}

/* Integer digits (two per division) against printf at every power of ten
 * and its neighbours, and the ends of the range. */
static void test_u64_digits(void **state)
{
    (void)state;
    char got[24], want[24];
    uint64_t p = 1;
    for (int i = 0; i < 20; i++, p *= 10) {
        const uint64_t vals[] = {p - 1, p, p + 1, p * 2 + 7, UINT64_MAX, 1700000000123u};
        for (size_t k = 0; k < sizeof(vals) / sizeof(vals[0]); k++) {
            int n = tp_u64_digits(vals[k], got);
            got[n] = '\0';
            snprintf(want, sizeof want, "%" PRIu64, vals[k]);
            assert_string_equal(got, want);
        }
        if (i == 19)
            break; /* 10^19 * 10 wraps */
    }
}

/* The exact fast path gives strtod's double, bit for bit (signed zeros
 * too), wherever it answers: fixed cases at its limits and generated
 * numbers of 1-17 digits with fractions and exponents. */
static void test_number_fast(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int fast;
    } fixed[] = {
        {"0", 1},
        {"-0", 1},
        {"-0.0e5", 1},
        {"56.76", 1},
        {"1e22", 1},
        {"1e23", 0},
        {"1.5e-22", 0},
        {"123456789012345", 1},
        {"1234567890123456", 0},
        {"0.1", 1},
        {"9007199254740993", 0},
        {"1E+2", 1},
        {"12.", 0},
        {"1e", 0},
        {"-", 0},
        {"", 0},
        {"1e999", 0},
        {"4.35e-20", 1},
        {"1x", 0},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        double d = 42;
        int fast = tp_number_fast(fixed[i].s, strlen(fixed[i].s), &d);
        if (fast != fixed[i].fast)
            fail_msg("\"%s\": fast path %d, want %d", fixed[i].s, fast, fixed[i].fast);
        double want = strtod(fixed[i].s, NULL);
        if (fast && memcmp(&d, &want, sizeof d) != 0)
            fail_msg("\"%s\": %.17g, strtod %.17g", fixed[i].s, d, want);
    }
    uint64_t x = 88172645463325252ull, answered = 0;
    char buf[64];
    for (int k = 0; k < 200000; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        int digits = 1 + (int)(x % 17), point = (int)((x >> 8) % (uint64_t)(digits + 1));
        int exp = (int)((x >> 16) % 61) - 30, o = 0;
        uint64_t r = x >> 24;
        if (x & (1u << 5))
            buf[o++] = '-';
        for (int i = 0; i < digits; i++, r /= 10) {
            if (i == point && i > 0)
                buf[o++] = '.';
            buf[o++] = (char)('0' + (i == 0 && digits > 1 && point != 1 ? 1 + r % 9 : r % 10));
        }
        if (x & (1u << 6))
            o += snprintf(buf + o, sizeof buf - (size_t)o, "e%d", exp);
        buf[o] = '\0';
        double d, want = strtod(buf, NULL);
        if (tp_number_fast(buf, (size_t)o, &d)) {
            answered++;
            if (memcmp(&d, &want, sizeof d) != 0)
                fail_msg("\"%s\": %.17g, strtod %.17g", buf, d, want);
        }
    }
    assert_true(answered > 50000); /* the generator reaches the fast path */
}

static void test_deadline(void **state)
{
    (void)state;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct timespec d = tp_deadline_in_ms(1500);
    assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000);
    int64_t diff_ms = ((int64_t)d.tv_sec - now.tv_sec) * 1000 + (d.tv_nsec - now.tv_nsec) / 1000000;
    assert_true(diff_ms >= 1500);
    struct timespec z = tp_deadline_in_ms(-5); /* negative: now */
    assert_true(z.tv_nsec >= 0 && z.tv_nsec < 1000000000);
    assert_true(tp_mono_ms() <= tp_mono_ns() / 1000000 + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_grammar),   cmocka_unit_test(test_span_stops_at_the_number),
        cmocka_unit_test(test_loose_grammars), cmocka_unit_test(test_number_text),
        cmocka_unit_test(test_u64_digits),     cmocka_unit_test(test_number_fast),
        cmocka_unit_test(test_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
