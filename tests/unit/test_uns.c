/* Unit tests for UNS output construction (src/processors/uns.c, SPEC 3.5-3.8):
 * JavaScript number text, timestamps, value/datatype rules, topic rules and
 * the whole tp_uns_build step on real messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/drop.h"
#include "core/log.h"
#include "core/msg.h"
#include "processors/uns.h"
#include "msg_test_util.h"

#define FIXED_NOW 1700000000123LL
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- number text ---- */

static void test_number_text(void **state)
{
    (void)state;
    static const struct {
        double d;
        const char *want;
    } cases[] = {
        {0, "0"},
        {-0.0, "0"},
        {1, "1"},
        {-1, "-1"},
        {42, "42"},
        {2340925, "2340925"},
        {23.5, "23.5"},
        {-23.5, "-23.5"},
        {0.1, "0.1"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3.0, "0.3333333333333333"},
        {100, "100"},
        {1e20, "100000000000000000000"},
        {1e21, "1e+21"},
        {-1e21, "-1e+21"},
        {1.5e21, "1.5e+21"},
        {123456789012345680000.0, "123456789012345680000"},
        {12345678901234567890.0, "12345678901234567000"},
        {9007199254740992.0, "9007199254740992"},
        {9007199254740993.0, "9007199254740992"},
        {1640995200000.0, "1640995200000"},
        {0.000001, "0.000001"},
        {0.0000015, "0.0000015"},
        {1e-7, "1e-7"},
        {1.5e-7, "1.5e-7"},
        {-1.5e-7, "-1.5e-7"},
        {123e-20, "1.23e-18"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {2.2250738585072014e-308, "2.2250738585072014e-308"},
        {0.5, "0.5"},
        {1.5, "1.5"},
        {42.7, "42.7"},
        {1e100, "1e+100"},
        {123.456, "123.456"},
        {-0.000123, "-0.000123"},
        {NAN, "NaN"},
        {INFINITY, "Infinity"},
        {-INFINITY, "-Infinity"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char buf[32];
        size_t n = tp_number_text(cases[i].d, buf);
        if (strcmp(buf, cases[i].want) != 0)
            fail_msg("case %zu: %.17g gave \"%s\", want \"%s\"", i, cases[i].d, buf, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
    }
}

/* Every text must read back as the same double (round trip). */
static void test_number_text_round_trip(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d))
            continue;
        char buf[32];
        size_t n = tp_number_text(d, buf);
        assert_true(n < 32);
        assert_true(strtod(buf, NULL) == d);
    }
}

/* Reference: the smallest precision whose %.*e text reads back, by trying
 * every precision (slow and obviously right), laid out as JavaScript does. */
static void reference_text(double d, char *out)
{
    char tmp[40];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
    char dig[24];
    int k = 0, neg = tmp[0] == '-';
    const char *p = tmp + neg;
    for (; *p != 'e'; p++)
        if (*p != '.')
            dig[k++] = *p;
    int e = atoi(p + 1), n = e + 1;
    while (k > 1 && dig[k - 1] == '0')
        k--;
    char *o = out;
    if (neg)
        *o++ = '-';
    if (k <= n && n <= 21) {
        o += sprintf(o, "%.*s%.*s", k, dig, n - k, "000000000000000000000");
    } else if (0 < n && n <= 21) {
        o += sprintf(o, "%.*s.%.*s", n, dig, k - n, dig + n);
    } else if (-6 < n && n <= 0) {
        o += sprintf(o, "0.%.*s%.*s", -n, "000000", k, dig);
    } else {
        o += sprintf(o, "%c", dig[0]);
        if (k > 1)
            o += sprintf(o, ".%.*s", k - 1, dig + 1);
        sprintf(o, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
}

/* The fast paths (integers, <= 15 digits, 15/16/17 precision) agree with the
 * exhaustive reference on decimal-looking values and on random bit patterns. */
static void test_number_text_reference(void **state)
{
    (void)state;
    uint64_t x = 0x2545F4914F6CDD1DULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        if (i % 3 == 0) {
            memcpy(&d, &x, sizeof d);
        } else { /* 1..17 random digits scaled by 10^-20..10^20, sometimes doubled */
            int digits = 1 + (int)(x % 17), scale = (int)((x >> 8) % 41) - 20;
            char txt[64];
            uint64_t m = (x >> 16) % 100000000000000000ULL;
            snprintf(txt, sizeof txt, "%.*llue%d", digits, (unsigned long long)m, scale);
            d = strtod(txt, NULL);
            if (i % 3 == 2)
                d = d * 2;
            if (x & 0x80)
                d = -d;
        }
        if (!isfinite(d) || d == 0 || (d == trunc(d) && fabs(d) < 9007199254740992.0))
            continue;
        char got[32], want[40];
        tp_number_text(d, got);
        reference_text(d, want);
        if (strcmp(got, want) != 0)
            fail_msg("%.17g gave \"%s\", want \"%s\"", d, got, want);
    }
}

/* ---- timestamps ---- */

static void test_timestamp_valid(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t want;
    } cases[] = {
        {"0", 0},
        {"1640995200000", 1640995200000LL},
        {"+1640995200000", 1640995200000LL},
        {"-1", -1},
        {"-86400000", -86400000LL},
        {"007", 7},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
        {"2022-01-01T00:00:00Z", 1640995200000LL},
        {"2022-01-01t00:00:00z", 1640995200000LL},
        {"2022-01-01T00:00:00.000000000Z", 1640995200000LL},
        {"2022-01-01T00:00:00.123Z", 1640995200123LL},
        {"2022-01-01T00:00:00.123456Z", 1640995200123LL},
        {"2022-01-01T00:00:00.1Z", 1640995200100LL},
        {"2022-01-01T00:00:00.12Z", 1640995200120LL},
        {"2022-01-01T00:00:00.9999Z", 1640995200999LL},
        {"2022-01-01T01:00:00+01:00", 1640995200000LL},
        {"2021-12-31T19:30:00-04:30", 1640995200000LL},
        {"2022-01-01T00:00:00+00:00", 1640995200000LL},
        {"2022-01-01T00:00:00-00:00", 1640995200000LL},
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.999Z", -1},
        {"2024-02-29T12:00:00Z", 1709208000000LL},
        {"2000-02-29T00:00:00Z", 951782400000LL},
        {"2016-12-31T23:59:60Z", 1483228800000LL},
        {"0001-01-01T00:00:00Z", -62135596800000LL},
        {"9999-12-31T23:59:59Z", 253402300799000LL},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int64_t ms = 12345;
        if (tp_timestamp_parse(cases[i].s, strlen(cases[i].s), &ms) != 0)
            fail_msg("\"%s\" rejected", cases[i].s);
        if (ms != cases[i].want)
            fail_msg("\"%s\" gave %lld, want %lld", cases[i].s, (long long)ms,
                     (long long)cases[i].want);
    }
}

static void test_timestamp_invalid(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",
        "invalid_timestamp",
        "+",
        "-",
        "12a",
        " 12",
        "12 ",
        "1.5",
        "1e3",
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999",
        "2022-01-01",
        "2022-01-01T00:00:00",
        "2022-01-01 00:00:00Z",
        "2022-01-01T00:00Z",
        "2022-1-01T00:00:00Z",
        "2022-13-01T00:00:00Z",
        "2022-00-01T00:00:00Z",
        "2022-01-00T00:00:00Z",
        "2022-01-32T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2022-04-31T00:00:00Z",
        "2022-01-01T24:00:00Z",
        "2022-01-01T00:60:00Z",
        "2022-01-01T00:00:61Z",
        "2022-01-01T00:00:00.Z",
        "2022-01-01T00:00:00+0100",
        "2022-01-01T00:00:00+24:00",
        "2022-01-01T00:00:00+01:60",
        "2022-01-01T00:00:00+01",
        "2022-01-01T00:00:00ZZ",
        "2022-01-01T00:00:00Z ",
        "2022-01-01X00:00:00Z",
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int64_t ms = 0;
        if (tp_timestamp_parse(cases[i], strlen(cases[i]), &ms) != -1)
            fail_msg("\"%s\" accepted as %lld", cases[i], (long long)ms);
    }
    /* The length bounds the text: no reading past it. */
    int64_t ms = 0;
    assert_int_equal(tp_timestamp_parse("1234xyz", 4, &ms), 0);
    assert_int_equal(ms, 1234);
}

static void test_now_fixed(void **state)
{
    (void)state;
    assert_int_equal(tp_now_ms(), FIXED_NOW);
}

/* ---- the value V ---- */

static struct tp_value vnum(double d)
{
    struct tp_value v = {.type = TP_VALUE_NUMBER, .number = d};
    return v;
}
static struct tp_value vstr(const char *s)
{
    struct tp_value v = {.type = TP_VALUE_STRING, .str = s, .len = strlen(s)};
    return v;
}
static struct tp_value vbool(int b)
{
    struct tp_value v = {.type = TP_VALUE_BOOL, .boolean = b};
    return v;
}
static struct tp_value vjson(const char *s)
{
    struct tp_value v = {.type = TP_VALUE_JSON, .str = s, .len = strlen(s)};
    return v;
}
static struct tp_value vtype(enum tp_value_type t)
{
    struct tp_value v = {.type = t};
    return v;
}

/* Asserts that value under datatype gives exactly `want` (NULL: rejected,
 * with a `why` containing want_why). */
static void check_value(int line, struct tp_value v, const char *datatype,
                        const struct tp_orig_number *orig, const char *want, const char *want_why)
{
    struct tp_buf out;
    tp_buf_init(&out);
    tp_buf_puts(&out, "prefix:");
    char why[256] = "untouched";
    int rc = tp_uns_value(&v, datatype, orig, &out, why, sizeof why);
    if (want) {
        if (rc != 0)
            fail_msg("line %d: rejected (%s), want %s", line, why, want);
        if (strncmp(out.data, "prefix:", 7) != 0)
            fail_msg("line %d: prefix lost", line);
        if (strcmp(out.data + 7, want) != 0)
            fail_msg("line %d: got %s, want %s", line, out.data + 7, want);
    } else {
        if (rc != -1)
            fail_msg("line %d: accepted as %s", line, out.data + 7);
        if (strcmp(out.data, "prefix:") != 0)
            fail_msg("line %d: output not rolled back: %s", line, out.data);
        if (!strstr(why, want_why))
            fail_msg("line %d: why \"%s\" lacks \"%s\"", line, why, want_why);
    }
    tp_buf_free(&out);
}

#define OK(v, dt, want) check_value(__LINE__, v, dt, NULL, want, NULL)
#define BAD(v, dt, why) check_value(__LINE__, v, dt, NULL, NULL, why)

static void test_value_auto(void **state)
{
    (void)state;
    OK(vbool(1), NULL, "true");
    OK(vbool(0), NULL, "false");
    OK(vnum(23.5), NULL, "23.5");
    OK(vnum(2340925), NULL, "2340925");
    OK(vnum(0.1 + 0.2), NULL, "0.30000000000000004");
    OK(vnum(1e21), NULL, "1e+21");
    OK(vnum(-0.0), NULL, "0");
    OK(vstr("hello world"), NULL, "\"hello world\"");
    OK(vstr("23.5"), NULL, "\"23.5\"");
    OK(vstr(""), NULL, "\"\"");
    OK(vstr("a\"b\\c\n"), NULL, "\"a\\\"b\\\\c\\n\"");
    OK(vstr("true"), "", "\"true\"");
    OK(vjson("[\"a\",\"b\",\"c\"]"), NULL, "\"[\\\"a\\\",\\\"b\\\",\\\"c\\\"]\"");
    OK(vjson("[1, 2, 3]"), NULL, "\"[1,2,3]\"");
    OK(vjson("{\"key2\":42,\"key1\":\"value1\"}"), NULL,
       "\"{\\\"key1\\\":\\\"value1\\\",\\\"key2\\\":42}\"");
    OK(vjson("{\"b\":{\"d\":1,\"c\":[{\"z\":1,\"y\":2}]},\"a\":null}"), NULL,
       "\"{\\\"a\\\":null,\\\"b\\\":{\\\"c\\\":[{\\\"y\\\":2,\\\"z\\\":1}],\\\"d\\\":1}}\"");
    OK(vjson("{}"), NULL, "\"{}\"");
    BAD(vtype(TP_VALUE_NULL), NULL, "null");
    BAD(vtype(TP_VALUE_UNDEFINED), NULL, "undefined");
    BAD(vnum(NAN), NULL, "NaN");
    BAD(vnum(INFINITY), NULL, "Infinity");
    BAD(vnum(-INFINITY), NULL, "-Infinity");
    BAD(vjson("{not json"), NULL, "not valid JSON");
    BAD(vnum(1), "integer", "unknown datatype \"integer\"");
}

static void test_value_string(void **state)
{
    (void)state;
    OK(vnum(23.5), "string", "\"23.5\"");
    OK(vnum(1e21), "string", "\"1e+21\"");
    OK(vnum(0.1 + 0.2), "string", "\"0.30000000000000004\"");
    OK(vstr("abc"), "string", "\"abc\"");
    OK(vbool(1), "string", "\"true\"");
    OK(vbool(0), "string", "\"false\"");
    OK(vjson("{\"b\":1,\"a\":2}"), "string", "\"{\\\"a\\\":2,\\\"b\\\":1}\"");
    OK(vjson("[true,null]"), "string", "\"[true,null]\"");
    BAD(vtype(TP_VALUE_NULL), "string", "null");
    BAD(vtype(TP_VALUE_UNDEFINED), "string", "undefined");
    BAD(vnum(NAN), "string", "NaN");
}

static void test_value_number(void **state)
{
    (void)state;
    OK(vnum(23.5), "number", "23.5");
    OK(vnum(-7), "number", "-7");
    OK(vstr("23.5"), "number", "23.5");
    OK(vstr("-23.50"), "number", "-23.5");
    OK(vstr("42"), "number", "42");
    OK(vstr("007"), "number", "7");
    OK(vstr("1e3"), "number", "1000");
    OK(vstr("1.5E-7"), "number", "1.5e-7");
    OK(vstr("2.5e+21"), "number", "2.5e+21");
    OK(vstr("-0"), "number", "0");
    OK(vstr("0.1"), "number", "0.1");
    BAD(vstr("abc"), "number", "is not a decimal number");
    BAD(vstr(""), "number", "is not a decimal number");
    BAD(vstr(" 1"), "number", "is not a decimal number");
    BAD(vstr("1 "), "number", "is not a decimal number");
    BAD(vstr("+1"), "number", "is not a decimal number");
    BAD(vstr(".5"), "number", "is not a decimal number");
    BAD(vstr("5."), "number", "is not a decimal number");
    BAD(vstr("1e"), "number", "is not a decimal number");
    BAD(vstr("0x10"), "number", "is not a decimal number");
    BAD(vstr("NaN"), "number", "is not a decimal number");
    BAD(vstr("Infinity"), "number", "is not a decimal number");
    BAD(vstr("1e400"), "number", "out of range");
    BAD(vbool(1), "number", "does not accept a boolean");
    BAD(vjson("[1]"), "number", "does not accept a array");
    BAD(vjson("{\"a\":1}"), "number", "does not accept a object");
    BAD(vtype(TP_VALUE_NULL), "number", "null");
    BAD(vnum(NAN), "number", "NaN");
    BAD(vnum(INFINITY), "number", "Infinity");
}

static void test_value_bool(void **state)
{
    (void)state;
    OK(vbool(1), "bool", "true");
    OK(vbool(0), "bool", "false");
    static const char *const yes[] = {"true", "1", "t", "T", "TRUE", "True"};
    static const char *const no[] = {"false", "0", "f", "F", "FALSE", "False"};
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        OK(vstr(yes[i]), "bool", "true");
        OK(vstr(no[i]), "bool", "false");
    }
    OK(vnum(1), "bool", "true");
    OK(vnum(0), "bool", "false");
    OK(vnum(-0.0), "bool", "false");
    BAD(vnum(2), "bool", "number 2 is not 0 or 1");
    BAD(vnum(0.5), "bool", "number 0.5 is not 0 or 1");
    BAD(vnum(-1), "bool", "not 0 or 1");
    BAD(vstr("yes"), "bool", "string \"yes\" is not a boolean");
    BAD(vstr("tRUE"), "bool", "is not a boolean");
    BAD(vstr(""), "bool", "is not a boolean");
    BAD(vstr(" true"), "bool", "is not a boolean");
    BAD(vstr("2"), "bool", "is not a boolean");
    BAD(vjson("[true]"), "bool", "does not accept a array");
    BAD(vjson("{}"), "bool", "does not accept a object");
    BAD(vtype(TP_VALUE_NULL), "bool", "null");
    BAD(vtype(TP_VALUE_UNDEFINED), "bool", "undefined");
    BAD(vnum(NAN), "bool", "NaN");
}

static void test_value_orig_text(void **state)
{
    (void)state;
    const char *big = "12345678901234567890";
    struct tp_orig_number orig = {1, strtod(big, NULL), big, strlen(big)};
    /* Unchanged value: the input's own digits. */
    check_value(__LINE__, vnum(orig.number), NULL, &orig, big, NULL);
    check_value(__LINE__, vnum(orig.number), "number", &orig, big, NULL);
    check_value(__LINE__, vnum(orig.number), "string", &orig, "\"12345678901234567890\"", NULL);
    /* Changed value: JavaScript's text. */
    check_value(__LINE__, vnum(orig.number * 2), NULL, &orig, "24691357802469134000", NULL);
    check_value(__LINE__, vnum(1), NULL, &orig, "1", NULL);
    /* Not present: JavaScript's text. */
    struct tp_orig_number absent = {0, orig.number, big, strlen(big)};
    check_value(__LINE__, vnum(orig.number), NULL, &absent, "12345678901234567000", NULL);
    /* Trailing zeros and exponents of the input are kept when the value is the same. */
    struct tp_orig_number o2 = {1, 23.5, "23.50", 5};
    check_value(__LINE__, vnum(23.5), NULL, &o2, "23.50", NULL);
    check_value(__LINE__, vnum(47), NULL, &o2, "47", NULL);
    /* Booleans and strings are never replaced by the number text. */
    struct tp_orig_number o3 = {1, 1, "1", 1};
    check_value(__LINE__, vbool(1), NULL, &o3, "true", NULL);
    check_value(__LINE__, vstr("1"), NULL, &o3, "\"1\"", NULL);
}

/* ---- topic ---- */

static void check_topic(int line, const char *lp, const char *dc, const char *vp, const char *tn,
                        const char *want, const char *want_why)
{
    struct tp_buf t;
    tp_buf_init(&t);
    char why[256] = "";
    int rc = tp_uns_topic(lp, dc, vp, tn, &t, why, sizeof why);
    if (want) {
        if (rc != 0)
            fail_msg("line %d: rejected: %s", line, why);
        if (strcmp(t.data, want) != 0)
            fail_msg("line %d: got %s, want %s", line, t.data, want);
    } else {
        if (rc != -1)
            fail_msg("line %d: accepted: %s", line, t.data);
        if (!strstr(why, want_why))
            fail_msg("line %d: why \"%s\" lacks \"%s\"", line, why, want_why);
    }
    tp_buf_free(&t);
}

#define TOPIC_OK(lp, dc, vp, tn, want) check_topic(__LINE__, lp, dc, vp, tn, want, NULL)
#define TOPIC_BAD(lp, dc, vp, tn, why) check_topic(__LINE__, lp, dc, vp, tn, NULL, why)

static void test_topic_pass(void **state)
{
    (void)state;
    TOPIC_OK("enterprise", "_historian", NULL, "temperature",
             "umh.v1.enterprise._historian.temperature");
    TOPIC_OK("enterprise.plant1.machiningArea.cnc-line.cnc5.plc123", "_historian",
             "axis.x.position", "actual",
             "umh.v1.enterprise.plant1.machiningArea.cnc-line.cnc5.plc123._historian.axis.x."
             "position.actual");
    TOPIC_OK("enterprise.site", "_analytics", "", "temperature",
             "umh.v1.enterprise.site._analytics.temperature");
    TOPIC_OK("a", "_x", "_System", "t", "umh.v1.a._x._System.t");
    TOPIC_OK("a", "_x", NULL, "_EnableDiagnostics", "umh.v1.a._x._EnableDiagnostics");
    TOPIC_OK("a", "_x", NULL, "motor.speed", "umh.v1.a._x.motor.speed");
    TOPIC_OK("A-1.b_2", "_c-3", "d_4.E-5", "f-6_", "umh.v1.A-1.b_2._c-3.d_4.E-5.f-6_");
    TOPIC_OK("a", "__", NULL, "t", "umh.v1.a.__.t");
}

static void test_topic_fail(void **state)
{
    (void)state;
    /* location_path */
    TOPIC_BAD("", "_historian", NULL, "t", "location_path is empty");
    TOPIC_BAD(NULL, "_historian", NULL, "t", "location_path is empty");
    TOPIC_BAD("_enterprise", "_historian", NULL, "t",
              "location_path segment 1 \"_enterprise\" starts with \"_\"");
    TOPIC_BAD("a._b", "_historian", NULL, "t", "location_path segment 2 \"_b\" starts with \"_\"");
    TOPIC_BAD("a..b", "_historian", NULL, "t", "location_path \"a..b\": segment 2 is empty");
    TOPIC_BAD(".a", "_historian", NULL, "t", "location_path \".a\": segment 1 is empty");
    TOPIC_BAD("a.", "_historian", NULL, "t", "location_path \"a.\": segment 2 is empty");
    TOPIC_BAD("UMH-Systems-GmbH---Dev-Team......", "_historian",
              "Root.Objects.SiemensPLC_fallback._System", "_EnableDiagnostics",
              "segment 2 is empty");
    /* data_contract */
    TOPIC_BAD("a", "", NULL, "t", "data_contract is empty");
    TOPIC_BAD("a", "historian", NULL, "t", "data_contract \"historian\" must start with \"_\"");
    TOPIC_BAD("a", "_", NULL, "t", "data_contract \"_\" needs a name");
    TOPIC_BAD("a", "_a.b", NULL, "t", "data_contract \"_a.b\" must not contain \".\"");
    /* virtual_path */
    TOPIC_BAD("a", "_x", "a..b", "t", "virtual_path \"a..b\": segment 2 is empty");
    TOPIC_BAD("a", "_x", ".a", "t", "virtual_path \".a\": segment 1 is empty");
    TOPIC_BAD("a", "_x", "a.", "t", "virtual_path \"a.\": segment 2 is empty");
    /* tag_name */
    TOPIC_BAD("a", "_x", NULL, "", "tag_name is empty");
    TOPIC_BAD("a", "_x", NULL, NULL, "tag_name is empty");
    TOPIC_BAD("a", "_x", NULL, "t.", "tag_name \"t.\": segment 2 is empty");
    TOPIC_BAD("a", "_x", NULL, ".t", "tag_name \".t\": segment 1 is empty");
    TOPIC_BAD("a", "_x", NULL, "a..t", "tag_name \"a..t\": segment 2 is empty");
    /* characters, in every part */
    TOPIC_BAD("a b", "_x", NULL, "t", "invalid character ' ' in location_path \"a b\"");
    TOPIC_BAD("a", "_x/y", NULL, "t", "invalid character '/' in data_contract");
    TOPIC_BAD("a", "_x", "v#", "t", "invalid character '#' in virtual_path");
    TOPIC_BAD("a", "_x", NULL, "my tag", "invalid character ' ' in tag_name \"my tag\"");
    TOPIC_BAD("a", "_x", NULL, "t+", "invalid character '+' in tag_name");
    TOPIC_BAD("a", "_x", NULL, "caf\xc3\xa9", "invalid byte 0xc3 in tag_name");
    TOPIC_BAD("a", "_x", NULL, "t\n", "invalid byte 0x0a in tag_name");
}

/* ---- tp_uns_build ---- */

#define BASE_META                                                                                  \
    "location_path", "enterprise", "data_contract", "_historian", "tag_name", "temperature"

static void assert_meta(const struct tp_msg *m, const char *key, const char *want)
{
    const char *v = tp_msg_meta_get(m, key, NULL);
    if (!want) {
        if (v)
            fail_msg("meta %s present: \"%s\"", key, v);
        return;
    }
    if (!v || strcmp(v, want) != 0)
        fail_msg("meta %s: got %s, want \"%s\"", key, v ? v : "(absent)", want);
}

static void test_build_ok(void **state)
{
    (void)state;
    struct tp_msg *m = mk_msg("23.5", BASE_META, "umh_topic", "set.by.script", NULL);
    struct tp_value v = vnum(23.5);
    char why[256];
    assert_int_equal(tp_uns_build(m, &v, NULL, NULL, why, sizeof why), TP_UNS_OK);
    assert_string_equal(m->payload, "{\"timestamp_ms\":1700000000123,\"value\":23.5}");
    assert_int_equal(m->payload_len, strlen(m->payload));
    assert_true(m->flags & TP_MSG_PAYLOAD_JSON);
    assert_false(m->flags & TP_MSG_PAYLOAD_NOTJSON);
    assert_meta(m, "umh_topic", "umh.v1.enterprise._historian.temperature");
    assert_meta(m, "topic", "umh.v1.enterprise._historian.temperature");
    assert_meta(m, "location_path", "enterprise");
    tp_msg_free(m);
}

static void test_build_value_from_payload(void **state)
{
    (void)state;
    /* value and orig point into the payload that tp_uns_build replaces. */
    struct tp_msg *m = mk_msg("12345678901234567890", BASE_META, NULL);
    struct tp_value v = vnum(strtod(m->payload, NULL));
    struct tp_orig_number orig = {1, v.number, m->payload, m->payload_len};
    char why[256];
    assert_int_equal(tp_uns_build(m, &v, &orig, NULL, why, sizeof why), TP_UNS_OK);
    assert_string_equal(m->payload,
                        "{\"timestamp_ms\":1700000000123,\"value\":12345678901234567890}");
    tp_msg_free(m);

    m = mk_msg("hello world", BASE_META, NULL);
    struct tp_value s = {.type = TP_VALUE_STRING, .str = m->payload, .len = m->payload_len};
    assert_int_equal(tp_uns_build(m, &s, NULL, NULL, why, sizeof why), TP_UNS_OK);
    assert_string_equal(m->payload, "{\"timestamp_ms\":1700000000123,\"value\":\"hello world\"}");
    tp_msg_free(m);
}

static void test_build_missing(void **state)
{
    (void)state;
    static const struct {
        const char *lp, *dc, *tn, *want;
    } cases[] = {
        {NULL, "_h", "t", "missing required metadata: location_path"},
        {"", "_h", "t", "missing required metadata: location_path"},
        {"a", NULL, "t", "missing required metadata: data_contract"},
        {"a", "_h", "", "missing required metadata: tag_name"},
        {NULL, "_h", NULL, "missing required metadata: location_path, tag_name"},
        {NULL, NULL, NULL, "missing required metadata: location_path, data_contract, tag_name"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct tp_msg *m = mk_msg("1", NULL);
        if (cases[i].lp)
            tp_msg_meta_sets(m, "location_path", cases[i].lp);
        if (cases[i].dc)
            tp_msg_meta_sets(m, "data_contract", cases[i].dc);
        if (cases[i].tn)
            tp_msg_meta_sets(m, "tag_name", cases[i].tn);
        struct tp_value v = vnum(1);
        char why[256] = "";
        assert_int_equal(tp_uns_build(m, &v, NULL, NULL, why, sizeof why), TP_DROP_MISSING_FIELD);
        assert_string_equal(why, cases[i].want);
        assert_string_equal(m->payload, "1"); /* untouched */
        assert_meta(m, "umh_topic", NULL);
        tp_msg_free(m);
    }
}

static void test_build_invalid(void **state)
{
    (void)state;
    char why[256];
    struct tp_msg *m =
        mk_msg("1", "location_path", "a", "data_contract", "historian", "tag_name", "t", NULL);
    struct tp_value v = vnum(1);
    assert_int_equal(tp_uns_build(m, &v, NULL, NULL, why, sizeof why), TP_DROP_INVALID_TOPIC);
    assert_non_null(strstr(why, "must start with \"_\""));
    assert_meta(m, "umh_topic", NULL);
    tp_msg_free(m);

    m = mk_msg("null", BASE_META, NULL);
    struct tp_value n = vtype(TP_VALUE_NULL);
    assert_int_equal(tp_uns_build(m, &n, NULL, NULL, why, sizeof why), TP_DROP_INVALID_VALUE);
    assert_string_equal(why, "value is null");
    assert_string_equal(m->payload, "null");
    tp_msg_free(m);

    m = mk_msg("\"abc\"", BASE_META, "datatype", "number", NULL);
    struct tp_value s = vstr("abc");
    assert_int_equal(tp_uns_build(m, &s, NULL, NULL, why, sizeof why), TP_DROP_INVALID_VALUE);
    assert_non_null(strstr(why, "not a decimal number"));
    tp_msg_free(m);
}

static void test_build_datatype(void **state)
{
    (void)state;
    char why[256];
    struct tp_msg *m = mk_msg("\"1\"", BASE_META, "datatype", "bool", NULL);
    struct tp_value s = vstr("1");
    assert_int_equal(tp_uns_build(m, &s, NULL, NULL, why, sizeof why), TP_UNS_OK);
    assert_string_equal(m->payload, "{\"timestamp_ms\":1700000000123,\"value\":true}");
    tp_msg_free(m);
}

static void test_build_virtual_path(void **state)
{
    (void)state;
    static const struct {
        const char *vp;      /* input virtual_path */
        const char *want_vp; /* after build; NULL: removed */
        const char *topic;
    } cases[] = {
        {"axis.x", "axis.x", "umh.v1.enterprise._historian.axis.x.temperature"},
        {"  axis.x \t", "axis.x", "umh.v1.enterprise._historian.axis.x.temperature"},
        {"", NULL, "umh.v1.enterprise._historian.temperature"},
        {"   ", NULL, "umh.v1.enterprise._historian.temperature"},
        {"null", NULL, "umh.v1.enterprise._historian.temperature"},
        {"NULL", NULL, "umh.v1.enterprise._historian.temperature"},
        {" Null ", NULL, "umh.v1.enterprise._historian.temperature"},
        {"nil", NULL, "umh.v1.enterprise._historian.temperature"},
        {"NiL", NULL, "umh.v1.enterprise._historian.temperature"},
        {"<nil>", NULL, "umh.v1.enterprise._historian.temperature"},
        {"<NIL>", NULL, "umh.v1.enterprise._historian.temperature"},
        {"undefined", NULL, "umh.v1.enterprise._historian.temperature"},
        {"Undefined", NULL, "umh.v1.enterprise._historian.temperature"},
        {"nullx", "nullx", "umh.v1.enterprise._historian.nullx.temperature"},
        {"_System", "_System", "umh.v1.enterprise._historian._System.temperature"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct tp_msg *m = mk_msg("1", BASE_META, "virtual_path", cases[i].vp, NULL);
        struct tp_value v = vnum(1);
        char why[256] = "";
        int rc = tp_uns_build(m, &v, NULL, NULL, why, sizeof why);
        if (rc != TP_UNS_OK)
            fail_msg("virtual_path \"%s\": dropped (%d): %s", cases[i].vp, rc, why);
        assert_meta(m, "virtual_path", cases[i].want_vp);
        assert_meta(m, "umh_topic", cases[i].topic);
        tp_msg_free(m);
    }
    /* Trimming keeps the key's position. */
    struct tp_msg *m = mk_msg("1", "virtual_path", " v ", BASE_META, NULL);
    struct tp_value v = vnum(1);
    char why[256];
    assert_int_equal(tp_uns_build(m, &v, NULL, NULL, why, sizeof why), TP_UNS_OK);
    assert_string_equal(tp_msg_meta_key(m, 0), "virtual_path");
    assert_string_equal(tp_msg_meta_val(m, 0), "v");
    tp_msg_free(m);
}

static void test_build_timestamp(void **state)
{
    (void)state;
    static const struct {
        const char *ts_ms, *ts; /* NULL: absent */
        int64_t want;
    } cases[] = {
        {NULL, NULL, FIXED_NOW},
        {"1640995200000", NULL, 1640995200000LL},
        {"0", NULL, 0},
        {"-5", NULL, -5},
        {"2022-01-01T00:00:00Z", NULL, 1640995200000LL},
        {NULL, "1640995200000", 1640995200000LL},
        {NULL, "2022-01-01T00:00:00.000000000Z", 1640995200000LL},
        {"1", "2", 1},
        {"invalid_timestamp", NULL, FIXED_NOW},
        {"invalid_timestamp", "2022-01-01T00:00:00.5Z", 1640995200500LL},
        {"", "7", 7},
        {"bad", "worse", FIXED_NOW},
    };
    tp_log_set_level(TP_LOG_OFF); /* the invalid cases warn */
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct tp_msg *m = mk_msg("1", BASE_META, NULL);
        if (cases[i].ts_ms)
            tp_msg_meta_sets(m, "timestamp_ms", cases[i].ts_ms);
        if (cases[i].ts)
            tp_msg_meta_sets(m, "timestamp", cases[i].ts);
        struct tp_value v = vnum(1);
        char why[256], want[96];
        assert_int_equal(tp_uns_build(m, &v, NULL, NULL, why, sizeof why), TP_UNS_OK);
        snprintf(want, sizeof want, "{\"timestamp_ms\":%lld,\"value\":1}",
                 (long long)cases[i].want);
        if (strcmp(m->payload, want) != 0)
            fail_msg("case %zu: got %s, want %s", i, m->payload, want);
        tp_msg_free(m);
    }
    tp_log_set_level(TP_LOG_WARN);
}

int main(void)
{
    assert_int_equal(tp_now_fix("1700000000123"), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_text),
        cmocka_unit_test(test_number_text_round_trip),
        cmocka_unit_test(test_number_text_reference),
        cmocka_unit_test(test_timestamp_valid),
        cmocka_unit_test(test_timestamp_invalid),
        cmocka_unit_test(test_now_fixed),
        cmocka_unit_test(test_value_auto),
        cmocka_unit_test(test_value_string),
        cmocka_unit_test(test_value_number),
        cmocka_unit_test(test_value_bool),
        cmocka_unit_test(test_value_orig_text),
        cmocka_unit_test(test_topic_pass),
        cmocka_unit_test(test_topic_fail),
        cmocka_unit_test(test_build_ok),
        cmocka_unit_test(test_build_value_from_payload),
        cmocka_unit_test(test_build_missing),
        cmocka_unit_test(test_build_invalid),
        cmocka_unit_test(test_build_datatype),
        cmocka_unit_test(test_build_virtual_path),
        cmocka_unit_test(test_build_timestamp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
