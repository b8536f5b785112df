/* Unit tests for the JSON envelope codec (core/json.c, core/json_scan.c):
 * decoding (number text kept, unicode, errors with columns), encoding
 * (SPEC 6 output lines), validation, canonical form, and agreement between the
 * hand-written fast path and the yajl reference path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/json.h"
#include "core/json_internal.h"
#include "core/msg.h"

static struct tp_msg *decode_ok(const char *line)
{
    struct tp_msg *m = tp_msg_new();
    struct tp_error err = {0};
    int rc = tp_json_decode_envelope(line, strlen(line), m, TP_JSON_MAX_META_KEYS, &err);
    if (rc != TP_OK)
        fail_msg("decode of %s failed: %s", line, err.msg);
    return m;
}

static void decode_fails(const char *line, const char *want)
{
    struct tp_msg *m = tp_msg_new();
    struct tp_error err = {0};
    int rc = tp_json_decode_envelope(line, strlen(line), m, TP_JSON_MAX_META_KEYS, &err);
    if (rc != TP_PARSE)
        fail_msg("decode of %s: rc %d, expected TP_PARSE", line, rc);
    if (want && !strstr(err.msg, want))
        fail_msg("decode of %s: error '%s' does not contain '%s'", line, err.msg, want);
    assert_non_null(strstr(err.msg, "column"));
    assert_true(err.col >= 1);
    tp_msg_free(m);
}

static void assert_payload(const struct tp_msg *m, const char *want, size_t want_len)
{
    assert_int_equal(m->payload_len, want_len);
    assert_memory_equal(m->payload, want, want_len);
    assert_int_equal(m->payload[m->payload_len], '\0');
}

static void test_decode_basic(void **state)
{
    (void)state;
    struct tp_msg *m = decode_ok("{\"payload\": 23.5, \"meta\": {\"a\": \"b\", \"c\": \"\"}}");
    assert_payload(m, "23.5", 4);
    assert_true(m->flags & TP_MSG_PAYLOAD_JSON);
    assert_int_equal(m->n_meta, 2);
    assert_string_equal(tp_msg_meta_key(m, 0), "a");
    assert_string_equal(tp_msg_meta_val(m, 0), "b");
    assert_string_equal(tp_msg_meta_key(m, 1), "c");
    assert_string_equal(tp_msg_meta_val(m, 1), "");
    tp_msg_free(m);

    m = decode_ok(
        "  {\"meta\":{\"x\":\"1\"},\"other\":{\"y\":[1,{\"z\":null}]},\"payload\":true} \r");
    assert_payload(m, "true", 4);
    assert_string_equal(tp_msg_meta_val(m, 0), "1");
    tp_msg_free(m);

    m = decode_ok("{\"payload\":null}");
    assert_payload(m, "null", 4);
    assert_true(m->flags & TP_MSG_PAYLOAD_JSON);
    tp_msg_free(m);
}

static void test_decode_numbers_kept(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"{\"payload\":12345678901234567890}", "12345678901234567890"},
        {"{\"payload\":1.50}", "1.50"},
        {"{\"payload\":-0.0e+10}", "-0.0e+10"},
        {"{\"payload\":1E400}", "1E400"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tp_msg *m = decode_ok(cases[i][0]);
        assert_payload(m, cases[i][1], strlen(cases[i][1]));
        tp_msg_free(m);
    }
}

static void test_decode_object_payload_compact(void **state)
{
    (void)state;
    struct tp_msg *m = decode_ok("{\"payload\": { \"b\" : 1.50 ,\n \"a\":[1, 2 ,{\"x\":null}, [ ]],"
                                 " \"s\":\"\\u00e9\\/\\\"\", \"e\":{} }, \"meta\":{}}");
    const char *want = "{\"b\":1.50,\"a\":[1,2,{\"x\":null},[]],\"s\":\"\xc3\xa9/\\\"\",\"e\":{}}";
    assert_payload(m, want, strlen(want));
    assert_true(m->flags & TP_MSG_PAYLOAD_JSON);
    assert_int_equal(m->n_meta, 0);
    tp_msg_free(m);
}

static void test_decode_string_payload(void **state)
{
    (void)state;
    struct tp_msg *m = decode_ok("{\"payload\":\"hello \\\"w\\\"\\n\\t\"}");
    assert_payload(m, "hello \"w\"\n\t", 11);
    assert_true(m->flags & TP_MSG_PAYLOAD_NOTJSON);
    tp_msg_free(m);

    /* a string payload is text even when it looks like JSON (SPEC 3.6) */
    m = decode_ok("{\"payload\":\"23.5\"}");
    assert_payload(m, "23.5", 4);
    assert_true(m->flags & TP_MSG_PAYLOAD_NOTJSON);
    assert_false(m->flags & TP_MSG_PAYLOAD_JSON);
    tp_msg_free(m);

    m = decode_ok("{\"payload\":\"\\u0000x\"}");
    assert_payload(m, "\0x", 2);
    tp_msg_free(m);
}

static void test_decode_unicode(void **state)
{
    (void)state;
    struct tp_msg *m = decode_ok("{\"payload\":\"\\u00e9\xc3\xa9\\ud83d\\ude00\xf0\x9f\x98\x80\","
                                 "\"meta\":{\"k\\u00e9\":\"caf\xc3\xa9\"}}");
    const char *want = "\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80\xf0\x9f\x98\x80";
    assert_payload(m, want, strlen(want));
    assert_string_equal(tp_msg_meta_key(m, 0), "k\xc3\xa9");
    assert_string_equal(tp_msg_meta_val(m, 0), "caf\xc3\xa9");
    tp_msg_free(m);
}

/* One rule for text that is not UTF-8 (issue 9.10): the line is rejected with
 * the column, never repaired, so keys that differ only there cannot merge. */
static void test_decode_not_utf8(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"meta\":{\"a\\ud800\":\"1\",\"a\\ud801\":\"2\"}}", /* lone high surrogates */
        "{\"meta\":{\"k\":\"\\udc00\"}}",                     /* lone low surrogate */
        "{\"meta\":{\"k\":\"\\ud83dx\"}}",                    /* high without low */
        "{\"meta\":{\"k\xc0\x80\":\"1\"}}",                   /* overlong NUL */
        "{\"meta\":{\"k\xed\xa0\x80\xed\xb0\x80\":\"1\"}}",   /* CESU-8 pair */
        "{\"meta\":{\"k\":\"\xff\"}}",                        /* invalid byte */
        "{\"payload\":\"\xe2\x82\"}",                         /* truncated sequence */
        "{\"payload\":{\"x\":\"\\ud800\"}}",                  /* inside the payload too */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        decode_fails(bad[i], "invalid UTF-8");
    /* deeper than the scanner goes: yajl decodes it, under the same rule */
    int depth = TP_JSON_MAX_DEPTH + 10;
    char *line = malloc((size_t)depth * 2 + 64);
    size_t off = (size_t)sprintf(line, "{\"payload\":");
    for (int i = 0; i < depth; i++)
        line[off++] = '[';
    off += (size_t)sprintf(line + off, "\"\\udfff\"");
    for (int i = 0; i < depth; i++)
        line[off++] = ']';
    strcpy(line + off, "}");
    decode_fails(line, "invalid UTF-8");
    free(line);
    /* a proper pair and the replacement character itself are fine */
    struct tp_msg *m = decode_ok("{\"meta\":{\"a\\ud83d\\ude00\":\"1\",\"a\\ufffd\":\"2\"}}");
    assert_int_equal(m->n_meta, 2);
    tp_msg_free(m);
}

/* Repeated keys keep their first position and take the last value, also when
 * there are too many keys for the small-message shortcut. */
static void test_decode_repeated_keys(void **state)
{
    (void)state;
    struct tp_msg *m = decode_ok("{\"meta\":{\"a\":\"1\",\"b\":\"2\",\"a\":\"3\"}}");
    assert_int_equal(m->n_meta, 2);
    assert_string_equal(tp_msg_meta_key(m, 0), "a");
    assert_string_equal(tp_msg_meta_val(m, 0), "3");
    assert_string_equal(tp_msg_meta_val(m, 1), "2");
    tp_msg_free(m);
    struct tp_buf b;
    tp_buf_init(&b);
    assert_int_equal(tp_buf_append(&b, "{\"meta\":{", 9), 0);
    for (int i = 0; i < 100; i++) /* k0..k49, then k0..k49 again with new values */
        assert_true(tp_buf_printf(&b, "%s\"k%d\":\"v%d\"", i ? "," : "", i % 50, i) >= 0);
    assert_int_equal(tp_buf_append(&b, "}}", 2), 0);
    m = decode_ok(b.data);
    assert_int_equal(m->n_meta, 50);
    for (uint32_t i = 0; i < 50; i++) {
        char k[16], v[16];
        snprintf(k, sizeof(k), "k%u", i);
        snprintf(v, sizeof(v), "v%u", i + 50);
        assert_string_equal(tp_msg_meta_key(m, i), k);
        assert_string_equal(tp_msg_meta_val(m, i), v);
    }
    tp_msg_free(m);
    tp_buf_free(&b);
}

/* max_meta_keys bounds the entries of one envelope (issue 9.11). */
static void test_decode_max_meta_keys(void **state)
{
    (void)state;
    const char *line = "{\"meta\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}}";
    struct tp_msg *m = tp_msg_new();
    struct tp_error err = {0};
    assert_int_equal(tp_json_decode_envelope(line, strlen(line), m, 3, &err), TP_OK);
    tp_msg_free(m);
    m = tp_msg_new();
    assert_int_equal(tp_json_decode_envelope(line, strlen(line), m, 2, &err), TP_PARSE);
    assert_string_equal(err.msg, "meta has 3 keys, more than max_meta_keys (2)");
    tp_msg_free(m);
}

static void test_decode_missing_payload(void **state)
{
    (void)state;
    struct tp_msg *m = decode_ok("{\"meta\":{\"a\":\"b\"}}");
    assert_payload(m, "", 0);
    assert_true(m->flags & TP_MSG_PAYLOAD_NOTJSON);
    assert_int_equal(m->n_meta, 1);
    tp_msg_free(m);
    m = decode_ok("{}");
    assert_payload(m, "", 0);
    tp_msg_free(m);
}

static void test_decode_errors(void **state)
{
    (void)state;
    decode_fails("{\"payload\":1", NULL);
    decode_fails("{\"payload\":1,", NULL);
    decode_fails("{\"payload\":\"abc", NULL);
    decode_fails("", NULL);
    decode_fails("[1,2]", "not a JSON object");
    decode_fails("42", "not a JSON object");
    decode_fails("\"x\"", "not a JSON object");
    decode_fails("{\"payload\":1} x", NULL);
    decode_fails("{\"payload\":1}{}", NULL);
    decode_fails("{\"payload\":01}", NULL);
    decode_fails("{\"payload\":tru}", NULL);
    decode_fails("{\"payload\":\"a\x01\"}", NULL);
    decode_fails("{\"payload\":1,\"meta\":{\"a\":1}}", "meta value for \"a\" is not a string");
    decode_fails("{\"meta\":{\"ok\":\"x\",\"a\":{\"b\":\"c\"}}}",
                 "meta value for \"a\" is not a string");
    decode_fails("{\"meta\":{\"a\":null}}", "meta value for \"a\" is not a string");
    decode_fails("{\"meta\":[\"a\"]}", "meta is not an object");
    decode_fails("{\"meta\":\"a\"}", "meta is not an object");

    /* the column points at the problem */
    struct tp_msg *m = tp_msg_new();
    struct tp_error err = {0};
    const char *line = "{\"payload\":1,  x}";
    assert_int_equal(tp_json_decode_envelope(line, strlen(line), m, TP_JSON_MAX_META_KEYS, &err),
                     TP_PARSE);
    assert_in_range(err.col, 14, 17);
    tp_msg_free(m);
}

static void test_decode_big_line(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    char *line = malloc(n + 64);
    assert_non_null(line);
    strcpy(line, "{\"payload\":\"");
    size_t off = strlen(line);
    memset(line + off, 'x', n);
    strcpy(line + off + n, "\",\"meta\":{\"a\":\"b\"}}");
    struct tp_msg *m = tp_msg_new();
    struct tp_error err = {0};
    assert_int_equal(tp_json_decode_envelope(line, strlen(line), m, TP_JSON_MAX_META_KEYS, &err),
                     TP_OK);
    assert_int_equal(m->payload_len, n);
    assert_int_equal(m->payload[n - 1], 'x');
    assert_string_equal(tp_msg_meta_val(m, 0), "b");
    tp_msg_free(m);

    /* a 1 MiB array payload */
    strcpy(line, "{\"payload\":[");
    off = strlen(line);
    for (size_t i = 0; i < n / 2; i++) {
        line[off++] = '1';
        line[off++] = ',';
    }
    strcpy(line + off, "1 ]}");
    m = tp_msg_new();
    assert_int_equal(tp_json_decode_envelope(line, strlen(line), m, TP_JSON_MAX_META_KEYS, &err),
                     TP_OK);
    assert_int_equal(m->payload_len, n + 3);
    assert_int_equal(m->payload[m->payload_len - 1], ']');
    tp_msg_free(m);
    free(line);
}

/* Nesting deeper than the scanner's limit is decoded by yajl. */
static void test_decode_deep(void **state)
{
    (void)state;
    int depth = TP_JSON_MAX_DEPTH + 100;
    char *line = malloc((size_t)depth * 2 + 64);
    char *want = malloc((size_t)depth * 2 + 8);
    strcpy(line, "{\"payload\": ");
    size_t off = strlen(line), w = 0;
    for (int i = 0; i < depth; i++)
        line[off++] = '[', want[w++] = '[';
    line[off++] = '1', want[w++] = '1';
    for (int i = 0; i < depth; i++)
        line[off++] = ']', want[w++] = ']';
    strcpy(line + off, ", \"meta\": {\"a\":\"b\"}}");
    want[w] = '\0';
    struct tp_msg *m = decode_ok(line);
    assert_payload(m, want, w);
    assert_true(m->flags & TP_MSG_PAYLOAD_JSON);
    assert_string_equal(tp_msg_meta_val(m, 0), "b");
    tp_msg_free(m);
    assert_int_equal(tp_json_is_valid(line, strlen(line)), 1);
    line[strlen(line) - 1] = '\0';
    assert_int_equal(tp_json_is_valid(line, strlen(line)), 0);
    free(line);
    free(want);
}

/* The fast path and yajl decode valid envelopes identically. */
static void test_fast_path_matches_yajl(void **state)
{
    (void)state;
    const char *lines[] = {
        "{\"payload\":23.5,\"meta\":{\"opcua_node_id\":\"ns=1;i=2245\",\"b\":\"x\"}}",
        "{\"payload\":\"hello\"}",
        "{\"payload\":\"{\\\"a\\\":1}\"}",
        "{\"payload\":[1,\"a\\u0001\\n\",{\"k\":{\"z\":false}}],\"meta\":{}}",
        "{ \"meta\" : { \"a\\\"q\" : \"\\u00e9\\ud83d\\ude00\" } , \"payload\" : { } }",
        "{\"payload\":-12.5e-3,\"x\":[{},[]],\"meta\":{\"a\":\"1\",\"a\":\"2\"}}",
        "{\"payload\":\"\"}",
        "{\"meta\":{\"t\":\"\\t\"}}",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct tp_msg *a = tp_msg_new(), *b = tp_msg_new();
        struct tp_error err = {0};
        size_t n = strlen(lines[i]);
        assert_int_equal(tp__json_scan_envelope(lines[i], n, a, NULL), 0);
        if (tp__json_decode_envelope_yajl(lines[i], n, b, &err) != TP_OK)
            fail_msg("yajl rejects %s: %s", lines[i], err.msg);
        assert_int_equal(a->payload_len, b->payload_len);
        assert_memory_equal(a->payload, b->payload, a->payload_len);
        assert_int_equal(a->flags, b->flags);
        assert_int_equal(a->n_meta, b->n_meta);
        for (uint32_t k = 0; k < a->n_meta; k++) {
            assert_string_equal(tp_msg_meta_key(a, k), tp_msg_meta_key(b, k));
            assert_string_equal(tp_msg_meta_val(a, k), tp_msg_meta_val(b, k));
        }
        tp_msg_free(a);
        tp_msg_free(b);
    }
}

static char *encode(const struct tp_msg *m)
{
    struct tp_buf b;
    tp_buf_init(&b);
    assert_int_equal(tp_json_encode_envelope(m, &b), TP_OK);
    return tp_buf_take(&b, NULL);
}

static void test_encode(void **state)
{
    (void)state;
    struct tp_msg *m = tp_msg_new();
    tp_msg_set_payload(m, "{\"timestamp_ms\":1,\"value\":1.50}", 31);
    tp_msg_meta_sets(m, "a", "x\"y");
    tp_msg_meta_sets(m, "umh_topic", "umh.v1.e._h.t");
    char *s = encode(m);
    assert_string_equal(s, "{\"topic\":\"umh.v1.e._h.t\",\"payload\":{\"timestamp_ms\":1,\"value\":"
                           "1.50},\"meta\":{\"a\":\"x\\\"y\",\"umh_topic\":\"umh.v1.e._h.t\"}}");
    free(s);

    /* no umh_topic: no topic; invalid JSON payload written as a string */
    tp_msg_meta_del(m, "umh_topic");
    tp_msg_set_payload(m, "hello \"x\"\n\x01", 11);
    s = encode(m);
    assert_string_equal(s,
                        "{\"payload\":\"hello \\\"x\\\"\\n\\u0001\",\"meta\":{\"a\":\"x\\\"y\"}}");
    free(s);

    /* valid JSON with line breaks stays one line */
    const char *pretty = " {\n \"a\": [1, \"b c\"]\r\n}\n";
    tp_msg_set_payload(m, pretty, strlen(pretty));
    tp_msg_meta_clear(m);
    s = encode(m);
    assert_string_equal(s, "{\"payload\":{\"a\":[1,\"b c\"]},\"meta\":{}}");
    free(s);

    /* flags are trusted; empty payload is a string */
    tp_msg_set_payload(m, "", 0);
    s = encode(m);
    assert_string_equal(s, "{\"payload\":\"\",\"meta\":{}}");
    free(s);
    tp_msg_set_payload(m, "42", 2);
    m->flags |= TP_MSG_PAYLOAD_NOTJSON;
    s = encode(m);
    assert_string_equal(s, "{\"payload\":\"42\",\"meta\":{}}");
    free(s);
    tp_msg_free(m);
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *line = "{\"payload\":{\"v\":12345678901234567890},\"meta\":{\"k\":\"\\u00e9\\n\"}}";
    struct tp_msg *m = decode_ok(line);
    char *s = encode(m);
    assert_string_equal(
        s, "{\"payload\":{\"v\":12345678901234567890},\"meta\":{\"k\":\"\xc3\xa9\\n\"}}");
    free(s);
    tp_msg_free(m);
}

static void test_write_string(void **state)
{
    (void)state;
    struct tp_buf b;
    tp_buf_init(&b);
    const char in[] = "a\"\\\b\f\n\r\t\x1f\x7f/\xe2\x80\xa8\xc3\xa9\xff\xc3(\xed\xa0\x80";
    assert_int_equal(tp_json_write_string(&b, in, sizeof(in) - 1), TP_OK);
    assert_string_equal(b.data, "\"a\\\"\\\\\\b\\f\\n\\r\\t\\u001f\x7f/\xe2\x80\xa8\xc3\xa9"
                                "\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    tp_buf_reset(&b);
    assert_int_equal(tp_json_write_string(&b, "", 0), TP_OK);
    assert_string_equal(b.data, "\"\"");
    tp_buf_free(&b);
}

static void test_is_valid(void **state)
{
    (void)state;
    const char *good[] = {"0",        " -1.5e3 ", "\"x\"", "[]",
                          "{}",       "true",     "null",  "{\"a\":[1,{\"b\":\"\\u00e9\"}]}",
                          "\n[1,2]\n"};
    const char *bad[] = {"",        " ",       "01",    "1.",  ".5",        "+1",
                         "[1,]",    "{\"a\"}", "{a:1}", "'x'", "[1] [2]",   "nul",
                         "\"\\x\"", "\"\t\"",  "hello", "1 2", "{\"a\":1,}"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (tp_json_is_valid(good[i], strlen(good[i])) != 1)
            fail_msg("'%s' should be valid", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (tp_json_is_valid(bad[i], strlen(bad[i])) != 0)
            fail_msg("'%s' should be invalid", bad[i]);
}

static void test_canonical(void **state)
{
    (void)state;
    struct tp_buf b;
    tp_buf_init(&b);
    const char *in = "{ \"b\": 1, \"a\": {\"d\": [1.50, \"x\\u0041\"], \"c\": true}, \"B\": null,"
                     " \"aa\": {}, \"b\": 2 }";
    assert_int_equal(tp_json_canonical(in, strlen(in), &b), TP_OK);
    assert_string_equal(b.data,
                        "{\"B\":null,\"a\":{\"c\":true,\"d\":[1.50,\"xA\"]},\"aa\":{},\"b\":2}");
    tp_buf_reset(&b);
    assert_int_equal(tp_json_canonical("[3, {\"z\":1,\"y\":2}]", 18, &b), TP_OK);
    assert_string_equal(b.data, "[3,{\"y\":2,\"z\":1}]");
    tp_buf_reset(&b);
    assert_int_equal(tp_json_canonical("\"a\"", 3, &b), TP_OK);
    assert_string_equal(b.data, "\"a\"");
    tp_buf_reset(&b);
    assert_int_equal(tp_json_canonical("{\"a\":}", 6, &b), TP_PARSE);
    assert_int_equal(b.len, 0);
    assert_int_equal(tp_json_canonical("[1] x", 5, &b), TP_PARSE);
    tp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_basic),
        cmocka_unit_test(test_decode_numbers_kept),
        cmocka_unit_test(test_decode_object_payload_compact),
        cmocka_unit_test(test_decode_string_payload),
        cmocka_unit_test(test_decode_unicode),
        cmocka_unit_test(test_decode_not_utf8),
        cmocka_unit_test(test_decode_repeated_keys),
        cmocka_unit_test(test_decode_max_meta_keys),
        cmocka_unit_test(test_decode_missing_payload),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_big_line),
        cmocka_unit_test(test_decode_deep),
        cmocka_unit_test(test_fast_path_matches_yajl),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_write_string),
        cmocka_unit_test(test_is_valid),
        cmocka_unit_test(test_canonical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
