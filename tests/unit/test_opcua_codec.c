/* Unit tests for the OPC UA client's codec (src/io/opcua/codec*.c), frame
 * assembly (transport.c via ua_conn_feed), Publish response handling
 * (subscription.c) and the metadata helpers of browse.c: encodings round
 * trip, NodeId text forms, Variant -> JSON per type, and every truncated or
 * over-limit input fails cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/error.h"
#include "io/opcua/browse.h"
#include "io/opcua/codec.h"
#include "io/opcua/subscription.h"
#include "io/opcua/transport.h"

static void test_primitives(void **state)
{
    (void)state;
    struct tp_buf b;
    tp_buf_init(&b);
    assert_int_equal(ua_enc_u8(&b, 0xab), 0);
    ua_enc_u16(&b, 0x1234);
    ua_enc_u32(&b, 0xdeadbeef);
    ua_enc_u64(&b, 0x0102030405060708ull);
    ua_enc_f64(&b, -2.5);
    ua_enc_cstring(&b, "héllo");
    ua_enc_string(&b, NULL, -1);
    assert_memory_equal(b.data, "\xab\x34\x12\xef\xbe\xad\xde", 7);
    struct ua_dec d;
    ua_dec_init(&d, b.data, b.len);
    assert_int_equal(ua_dec_u8(&d), 0xab);
    assert_int_equal(ua_dec_u16(&d), 0x1234);
    assert_int_equal(ua_dec_u32(&d), 0xdeadbeef);
    assert_true(ua_dec_u64(&d) == 0x0102030405060708ull);
    assert_true(ua_dec_f64(&d) == -2.5);
    struct ua_str s = ua_dec_string(&d);
    assert_int_equal(s.len, 6);
    assert_memory_equal(s.s, "héllo", 6);
    s = ua_dec_string(&d);
    assert_int_equal(s.len, -1);
    assert_null(s.s);
    assert_int_equal(d.err, 0);
    assert_int_equal(d.pos, b.len);
    /* reading past the end: error, zero values, and the error sticks */
    assert_int_equal(ua_dec_u32(&d), 0);
    assert_int_equal(d.err, 1);
    tp_buf_free(&b);
}

static void test_lengths_limited(void **state)
{
    (void)state;
    struct ua_dec d;
    const uint8_t minus2[] = {0xfe, 0xff, 0xff, 0xff};
    ua_dec_init(&d, minus2, sizeof(minus2));
    ua_dec_string(&d);
    assert_int_equal(d.err, 1);
    const uint8_t huge[] = {0x00, 0x00, 0x00, 0x7f, 'a'};
    ua_dec_init(&d, huge, sizeof(huge));
    ua_dec_string(&d);
    assert_int_equal(d.err, 1);
    const uint8_t short_str[] = {0x05, 0x00, 0x00, 0x00, 'a', 'b'};
    ua_dec_init(&d, short_str, sizeof(short_str));
    struct ua_str s = ua_dec_string(&d);
    assert_int_equal(d.err, 1);
    assert_null(s.s);
    /* an array count far beyond the bytes present stops at the first missing element */
    const uint8_t arr[] = {0x01 | 0x80, 0x00, 0x00, 0x10, 0x00, 1, 2, 3, 4};
    struct ua_variant v;
    ua_dec_init(&d, arr, sizeof(arr));
    ua_dec_variant(&d, &v);
    assert_int_equal(d.err, 1);
    assert_int_equal(v.type, UA_NULL);
}

static void roundtrip_nodeid(const char *text, size_t want_enc_len)
{
    struct tp_buf store, enc, back;
    tp_buf_init(&store);
    tp_buf_init(&enc);
    tp_buf_init(&back);
    struct ua_nodeid id, id2;
    if (ua_nodeid_parse(text, &id, &store) != 0)
        fail_msg("parse %s", text);
    assert_int_equal(ua_enc_nodeid(&enc, &id), 0);
    if (want_enc_len)
        assert_int_equal(enc.len, want_enc_len);
    struct ua_dec d;
    ua_dec_init(&d, enc.data, enc.len);
    ua_dec_nodeid(&d, &id2);
    assert_int_equal(d.err, 0);
    assert_int_equal(d.pos, enc.len);
    assert_int_equal(ua_nodeid_format(&id2, &back), 0);
    assert_string_equal(back.data, text);
    tp_buf_free(&store);
    tp_buf_free(&enc);
    tp_buf_free(&back);
}

static void test_nodeid_forms(void **state)
{
    (void)state;
    roundtrip_nodeid("i=85", 2);        /* two-byte */
    roundtrip_nodeid("ns=2;i=1001", 4); /* four-byte */
    roundtrip_nodeid("ns=300;i=70000", 7);
    roundtrip_nodeid("ns=2;s=FolderNode", 0);
    roundtrip_nodeid("s=Plain", 0);
    roundtrip_nodeid("ns=1;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", 19);
    roundtrip_nodeid("ns=1;b=AQID", 0);
    roundtrip_nodeid("ns=2;s=with;semicolon=and spaces", 0);
    const char *bad[] = {"",     "ns=;i=1",       "ns=70000;i=1", "i=-1",      "i=abc", "x=1",
                         "ns=2", "ns=1;g=nothex", "i=4294967296", "ns=1;b=!!", "i="};
    struct tp_buf store;
    tp_buf_init(&store);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ua_nodeid id;
        if (ua_nodeid_parse(bad[i], &id, &store) == 0)
            fail_msg("'%s' parsed", bad[i]);
    }
    tp_buf_free(&store);
    /* an unknown NodeId encoding byte is an error */
    const uint8_t unknown[] = {0x07, 0, 0};
    struct ua_dec d;
    struct ua_nodeid id;
    ua_dec_init(&d, unknown, sizeof(unknown));
    ua_dec_nodeid(&d, &id);
    assert_int_equal(d.err, 1);
    /* ExpandedNodeId with namespace URI and server index */
    const uint8_t exp[] = {0xc1, 2, 0x10, 0x00, 3, 0, 0, 0, 'u', 'r', 'n', 9, 0, 0, 0, 0xaa};
    ua_dec_init(&d, exp, sizeof(exp));
    ua_dec_expanded_nodeid(&d, &id);
    assert_int_equal(d.err, 0);
    assert_int_equal(id.ns, 2);
    assert_int_equal(id.num, 16);
    assert_int_equal(d.pos, sizeof(exp) - 1);
}

/* Encodes a scalar variant of `type` whose value bytes follow. */
static void variant_json(const void *enc, size_t len, const char *want, enum ua_json_kind want_kind)
{
    struct ua_dec d;
    struct ua_variant v;
    ua_dec_init(&d, enc, len);
    ua_dec_variant(&d, &v);
    if (d.err || d.pos != len)
        fail_msg("decode for %s: err %d, %zu of %zu bytes", want, d.err, d.pos, len);
    struct tp_buf out;
    tp_buf_init(&out);
    enum ua_json_kind kind;
    int rc = ua_variant_to_json(&v, &out, &kind);
    if (rc)
        fail_msg("to_json rc %d for %s", rc, want);
    assert_string_equal(out.data, want);
    assert_int_equal(kind, want_kind);
    tp_buf_free(&out);
}

static void test_variant_json(void **state)
{
    (void)state;
    variant_json("\x01\x01", 2, "true", UA_JSON_BOOL);
    variant_json("\x02\xff", 2, "-1", UA_JSON_NUMBER);
    variant_json("\x06\xfe\xff\xff\xff", 5, "-2", UA_JSON_NUMBER);
    variant_json("\x07\xff\xff\xff\xff", 5, "4294967295", UA_JSON_NUMBER);
    variant_json("\x09\xff\xff\xff\xff\xff\xff\xff\xff", 9, "18446744073709551615", UA_JSON_NUMBER);
    variant_json("\x0a\x00\x00\xc0\x3f", 5, "1.5", UA_JSON_NUMBER); /* float */
    variant_json("\x0b\x9a\x99\x99\x99\x99\x99\xb9\x3f", 9, "0.1", UA_JSON_NUMBER);
    variant_json("\x0b\x00\x00\x00\x00\x00\x00\xf8\x7f", 9, "\"NaN\"", UA_JSON_NUMBER);
    variant_json("\x0c\x04\x00\x00\x00\x61\"\\b", 9, "\"a\\\"\\\\b\"", UA_JSON_STRING);
    variant_json("\x0c\xff\xff\xff\xff", 5, "null", UA_JSON_STRING);
    variant_json("\x0f\x03\x00\x00\x00\x01\x02\x03", 8, "\"AQID\"", UA_JSON_STRING);
    /* 2024-03-12T10:00:00.123Z = (1710237600123 ms * 10000) + epoch delta */
    int64_t dt = 1710237600123LL * 10000 + 116444736000000000LL;
    uint8_t dtv[9] = {0x0d};
    for (int i = 0; i < 8; i++)
        dtv[1 + i] = (uint8_t)(dt >> (8 * i));
    variant_json(dtv, 9, "\"2024-03-12T10:00:00.123000Z\"", UA_JSON_STRING);
    variant_json("\x11\x01\x02\x05\x00", 5, "\"ns=2;i=5\"", UA_JSON_STRING);
    variant_json("\x14\x02\x00\x02\x00\x00\x00qn", 9, "{\"NamespaceIndex\":2,\"Name\":\"qn\"}",
                 UA_JSON_OTHER);
    variant_json("\x15\x03\x02\x00\x00\x00\x65n\x02\x00\x00\x00hi", 14,
                 "{\"Locale\":\"en\",\"Text\":\"hi\"}", UA_JSON_OTHER);
    variant_json("\x86\x02\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00", 13, "[1,2]",
                 UA_JSON_OTHER);
    variant_json("\x8c\x00\x00\x00\x00", 5, "[]", UA_JSON_OTHER);
    /* array of Variants holding different types */
    variant_json("\x98\x02\x00\x00\x00\x01\x01\x0c\x01\x00\x00\x00x", 13, "[true,\"x\"]",
                 UA_JSON_OTHER);
}

static int variant_rc(const void *enc, size_t len)
{
    struct ua_dec d;
    struct ua_variant v;
    ua_dec_init(&d, enc, len);
    ua_dec_variant(&d, &v);
    assert_int_equal(d.err, 0);
    struct tp_buf out;
    tp_buf_init(&out);
    enum ua_json_kind kind;
    int rc = ua_variant_to_json(&v, &out, &kind);
    tp_buf_free(&out);
    return rc;
}

static void test_variant_unsupported(void **state)
{
    (void)state;
    /* 2x2 Int32 matrix: array + dimensions */
    const uint8_t matrix[] = {0xc6, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0,
                              4,    0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0};
    assert_int_equal(variant_rc(matrix, sizeof(matrix)), TP_UNSUPPORTED);
    /* ExtensionObject with a 2-byte body */
    const uint8_t eo[] = {0x16, 0x01, 0x00, 0x41, 0x01, 0x01, 0x02, 0, 0, 0, 0xaa, 0xbb};
    assert_int_equal(variant_rc(eo, sizeof(eo)), TP_UNSUPPORTED);
    assert_int_equal(variant_rc("\x00", 1), TP_UNSUPPORTED);
    /* type ids above DiagnosticInfo are invalid */
    struct ua_dec d;
    struct ua_variant v;
    ua_dec_init(&d, "\x1a\x00", 2);
    ua_dec_variant(&d, &v);
    assert_int_equal(d.err, 1);
}

static void test_nesting_limited(void **state)
{
    (void)state;
    /* DiagnosticInfo with inner infos nested deeper than the limit */
    uint8_t deep[64];
    memset(deep, 0x40, sizeof(deep));
    struct ua_dec d;
    ua_dec_init(&d, deep, sizeof(deep));
    ua_dec_skip_diagnostic_info(&d);
    assert_int_equal(d.err, 1);
    /* a reasonable one: symbolic id + additional info + inner with locale */
    const uint8_t diag[] = {0x51, 1, 0, 0, 0, 2, 0, 0, 0, 'h', 'i', 0x08, 7, 0, 0, 0, 0xee};
    ua_dec_init(&d, diag, sizeof(diag));
    ua_dec_skip_diagnostic_info(&d);
    assert_int_equal(d.err, 0);
    assert_int_equal(d.pos, sizeof(diag) - 1);
    /* variants nested in variants */
    uint8_t vv[40];
    memset(vv, 0x18, sizeof(vv));
    struct ua_variant v;
    ua_dec_init(&d, vv, sizeof(vv));
    ua_dec_variant(&d, &v);
    assert_int_equal(d.err, 1);
    /* ExtensionObject with an invalid body encoding */
    struct ua_nodeid id;
    const uint8_t *body;
    size_t blen;
    uint8_t enc;
    ua_dec_init(&d, "\x00\x01\x03", 3);
    ua_dec_extension_object(&d, &id, &body, &blen, &enc);
    assert_int_equal(d.err, 1);
}

static void test_datavalue(void **state)
{
    (void)state;
    struct tp_buf b;
    tp_buf_init(&b);
    ua_enc_u8(&b, 0x3f);
    ua_enc_u8(&b, UA_DOUBLE);
    ua_enc_f64(&b, 23.5);
    ua_enc_u32(&b, 0x808C0000u);
    ua_enc_u64(&b, 1000);
    ua_enc_u16(&b, 7);
    ua_enc_u64(&b, 2000);
    ua_enc_u16(&b, 8);
    struct ua_dec d;
    struct ua_datavalue dv;
    ua_dec_init(&d, b.data, b.len);
    ua_dec_datavalue(&d, &dv);
    assert_int_equal(d.err, 0);
    assert_int_equal(d.pos, b.len);
    assert_true(dv.has_value);
    assert_int_equal(dv.status, 0x808C0000u);
    assert_int_equal(dv.source_ts, 1000);
    assert_int_equal(dv.server_ts, 2000);
    char tmp[16];
    assert_string_equal(ua_status_name(dv.status, tmp), "BadSensorFailure");
    assert_string_equal(ua_status_name(0, tmp), "Good");
    assert_string_equal(ua_status_name(0x80EE0000u, tmp), "0x80EE0000");
    /* truncated: every prefix fails */
    for (size_t n = 0; n < b.len; n++) {
        ua_dec_init(&d, b.data, n);
        ua_dec_datavalue(&d, &dv);
        assert_int_equal(d.err, 1);
    }
    tp_buf_free(&b);
}

static void test_text_helpers(void **state)
{
    (void)state;
    char ts[64];
    ua_datetime_format(0, ts);
    assert_string_equal(ts, "0001-01-01T00:00:00.000000Z");
    ua_datetime_format(116444736000000000LL + 15, ts);
    assert_string_equal(ts, "1970-01-01T00:00:00.000001Z");
    struct tp_buf b;
    tp_buf_init(&b);
    ua_sanitize("Odd Name/with.dots-ok_1", 23, &b);
    assert_string_equal(b.data, "Odd_Name_with_dots-ok_1");
    tp_buf_reset(&b);
    ua_sanitize("Temp°C", strlen("Temp°C"), &b);
    assert_string_equal(b.data, "Temp_C");
    tp_buf_reset(&b);
    ua_accesslevel_text(3, &b);
    assert_string_equal(b.data, "AccessLevelTypeCurrentRead|AccessLevelTypeCurrentWrite");
    tp_buf_reset(&b);
    struct ua_nodeid dbl = {.num = 11}, dur = {.num = 290}, custom = {.ns = 3, .num = 3005};
    ua_datatype_text(&dbl, &b);
    assert_string_equal(b.data, "Double");
    tp_buf_reset(&b);
    ua_datatype_text(&dur, &b);
    assert_string_equal(b.data, "Duration");
    tp_buf_reset(&b);
    ua_datatype_text(&custom, &b);
    assert_string_equal(b.data, "ns=3;i=3005");
    assert_string_equal(ua_nodeclass_name(2), "NodeClassVariable");
    tp_buf_free(&b);
}

/* The timestamp text as gmtime and printf would make it (ours uses neither). */
static void datetime_reference(int64_t dt, char want[64])
{
    const int64_t delta = 116444736000000000LL, per_s = 10000000;
    int64_t unix100 = dt - delta, sec = unix100 / per_s, frac = unix100 % per_s;
    if (frac < 0) {
        frac += per_s;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999)
        snprintf(want, 64, "0001-01-01T00:00:00.000000Z");
    else
        snprintf(want, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(frac / 10));
}

/* Leap days, century years and the range ends agree with gmtime. */
static void test_datetime_calendar(void **state)
{
    (void)state;
    const int64_t delta = 116444736000000000LL, per_s = 10000000;
    char got[64], want[64];
    size_t checked = 0;
    /* 1601-01-01 (the DateTime epoch) to past 9999-12-31, every 997,001 s */
    for (int64_t s = -11644473600LL; s <= 253402300799LL + 10 * 997001LL; s += 997001LL) {
        int64_t dt = delta + s * per_s + 1234567;
        ua_datetime_format(dt, got);
        datetime_reference(dt, want);
        if (strcmp(got, want) != 0)
            fail_msg("DateTime %lld: got %s, want %s", (long long)dt, got, want);
        checked++;
    }
    assert_true(checked > 250000);
    ua_datetime_format(delta + (951782400LL + 86399) * per_s, got);
    assert_string_equal(got, "2000-02-29T23:59:59.000000Z");
    ua_datetime_format(delta + 4107456000LL * per_s, got); /* 2100 is no leap year */
    assert_string_equal(got, "2100-02-28T00:00:00.000000Z");
    ua_datetime_format(delta + 253402300799LL * per_s + 9999999, got);
    assert_string_equal(got, "9999-12-31T23:59:59.999999Z");
    ua_datetime_format(delta + 253402300800LL * per_s, got); /* year 10000 */
    assert_string_equal(got, "0001-01-01T00:00:00.000000Z");
    ua_datetime_format(1, got);
    assert_string_equal(got, "1601-01-01T00:00:00.000000Z");
}

/* The cached form gives the same text as the plain one, whether the second
 * changes or not, past the range end and for 0 too. */
static void test_datetime_cached(void **state)
{
    (void)state;
    const int64_t delta = 116444736000000000LL, per_s = 10000000;
    const int64_t seconds[] = {1700000000LL,   1700000000LL,   1700000001LL, -1000LL,
                               253402300800LL, 253402300800LL, 1700000001LL};
    struct ua_datetime_cache c = {0};
    char got[64], want[64];
    for (size_t i = 0; i < sizeof(seconds) / sizeof(seconds[0]); i++)
        for (int64_t f = 0; f < per_s; f += 999983) {
            int64_t dt = delta + seconds[i] * per_s + f;
            size_t len = ua_datetime_format_cached(dt, got, &c);
            ua_datetime_format(dt, want);
            assert_string_equal(got, want);
            assert_int_equal(len, strlen(want));
        }
    const int64_t odd[] = {0, -5, 1, 9, INT64_MAX, 1};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        ua_datetime_format_cached(odd[i], got, &c);
        ua_datetime_format(odd[i], want);
        assert_string_equal(got, want);
    }
}

/* Whole numbers are printed without printf: the same text as %.15g (double)
 * and %.6g (float) where those round-trip, exponent forms and -0 included. */
static void test_whole_number_text(void **state)
{
    (void)state;
    const double doubles[] = {
        0,    -0.0,  1,   -1,  42, 123456789, 1e14, -1e14, 1e15, -1e15, 999999999999999.0,
        1e16, 1e300, 0.5, -2.5};
    for (size_t i = 0; i < sizeof(doubles) / sizeof(doubles[0]); i++) {
        uint8_t enc[9] = {0x0b};
        memcpy(enc + 1, &doubles[i], 8);
        char want[40];
        snprintf(want, sizeof(want), "%.15g", doubles[i]);
        variant_json(enc, 9, want, UA_JSON_NUMBER);
    }
    const float floats[] = {0, -0.0f, 7, -7, 999999, -999999, 1e6f, 0.25f};
    for (size_t i = 0; i < sizeof(floats) / sizeof(floats[0]); i++) {
        uint8_t enc[5] = {0x0a};
        memcpy(enc + 1, &floats[i], 4);
        char want[40];
        snprintf(want, sizeof(want), "%.6g", floats[i]);
        variant_json(enc, 5, want, UA_JSON_NUMBER);
    }
}

/* Variables keep their strings in one arena, shared ones once; a value's
 * message carries the metadata in benthos-umh's order. */
static void test_var_list_message(void **state)
{
    (void)state;
    struct ua_var_list l = {0};
    struct ua_interned shared = {0};
    uint32_t group = 0;
    for (int i = 0; i < 2000; i++) { /* the set grows (rehashes) while strings repeat */
        char text[32];
        snprintf(text, sizeof(text), "Folder.F%d", i % 50);
        uint32_t off = ua_var_list_adds(&l, &shared, text);
        assert_int_not_equal(off, UA_NO_OFFSET);
        assert_string_equal(ua_var_str(&l, off), text);
        if (i == 0)
            group = off;
        else if (i % 50 == 0)
            assert_int_equal(off, group);
    }
    size_t len = l.arena.len;
    assert_int_equal(ua_var_list_add(&l, &shared, "Folder.F7\0tail", 14),
                     ua_var_list_adds(&l, &shared, "Folder.F7"));
    assert_int_equal(l.arena.len, len);
    uint32_t unshared = ua_var_list_adds(&l, NULL, "Folder.F7");
    assert_int_equal(l.arena.len, len + 10);
    struct ua_var v = {.node_id = ua_var_list_adds(&l, NULL, "ns=2;s=V1"),
                       .browse_name = ua_var_list_adds(&l, NULL, "V 1"),
                       .description = ua_var_list_adds(&l, &shared, ""),
                       .access_level = ua_var_list_adds(&l, &shared, "AccessLevelTypeCurrentRead"),
                       .data_type = ua_var_list_adds(&l, &shared, "Double"),
                       .group = unshared,
                       .tag_name = ua_var_list_adds(&l, NULL, "V_1"),
                       .nodeclass = 2};
    ua_var_list_shrink(&l);
    assert_int_equal(l.arena.cap, l.arena.len + 1);
    struct ua_value_meta dyn = {"2024-03-12T10:00:00.000000Z", "2024-03-12T10:00:01.000000Z",
                                "Good", "number"};
    const char *want[][2] = {{"opcua_source_timestamp", "2024-03-12T10:00:00.000000Z"},
                             {"opcua_server_timestamp", "2024-03-12T10:00:01.000000Z"},
                             {"opcua_attr_nodeid", "ns=2;s=V1"},
                             {"opcua_attr_nodeclass", "NodeClassVariable"},
                             {"opcua_attr_browsename", "V 1"},
                             {"opcua_attr_description", ""},
                             {"opcua_attr_accesslevel", "AccessLevelTypeCurrentRead"},
                             {"opcua_attr_datatype", "Double"},
                             {"opcua_attr_statuscode", "Good"},
                             {"opcua_tag_group", "Folder.F7"},
                             {"opcua_tag_name", "V_1"},
                             {"opcua_tag_path", "Folder.F7"},
                             {"opcua_tag_type", "number"},
                             {"opcua_node_id", "ns=2;s=V1"},
                             {"opcua_heartbeat_message", "true"}};
    for (int heartbeat = 0; heartbeat < 2; heartbeat++) {
        v.heartbeat = (uint8_t)heartbeat;
        struct tp_msg *m = ua_var_message(&l, &v, "42", 2, &dyn, NULL);
        assert_non_null(m);
        assert_string_equal(m->payload, "42");
        assert_int_equal(m->n_meta, heartbeat ? 15 : 14);
        for (uint32_t i = 0; i < m->n_meta; i++) {
            assert_string_equal(tp_msg_meta_key(m, i), want[i][0]);
            assert_string_equal(tp_msg_meta_val(m, i), want[i][1]);
        }
        /* built to its exact size: still grows like any message */
        assert_true(m->flags == 0 && m->ack == NULL && m->seq == 0);
        assert_int_equal(tp_msg_meta_sets(m, "opcua_attr_statuscode", "BadLongerStatus"), TP_OK);
        assert_int_equal(tp_msg_meta_sets(m, "extra", "x"), TP_OK);
        assert_int_equal(tp_msg_set_payload(m, "4242", 4), TP_OK);
        assert_string_equal(m->payload, "4242");
        assert_string_equal(tp_msg_meta_get(m, "opcua_attr_statuscode", NULL), "BadLongerStatus");
        assert_string_equal(tp_msg_meta_get(m, "extra", NULL), "x");
        assert_string_equal(tp_msg_meta_key(m, 0), "opcua_source_timestamp");
        /* built again in that message (reused, grown where too small): the
         * same as a new one; then in a message with smaller buffers */
        for (int round = 0; round < 2; round++) {
            if (round) {
                tp_msg_free(m);
                m = tp_msg_new();
                m->flags = TP_MSG_PAYLOAD_NOTJSON;
                m->seq = 7;
                m->ack = m;
            }
            m = ua_var_message(&l, &v, "12345", 5, &dyn, m);
            assert_non_null(m);
            assert_string_equal(m->payload, "12345");
            assert_true(m->flags == 0 && m->ack == NULL && m->seq == 0);
            assert_int_equal(m->n_meta, heartbeat ? 15 : 14);
            for (uint32_t i = 0; i < m->n_meta; i++) {
                assert_string_equal(tp_msg_meta_key(m, i), want[i][0]);
                assert_string_equal(tp_msg_meta_val(m, i), want[i][1]);
            }
        }
        tp_msg_free(m);
    }
    v.group = ua_var_list_adds(&l, &shared, ""); /* a start node: the group is its tag name */
    struct tp_msg *m = ua_var_message(&l, &v, "", 0, &dyn, NULL);
    assert_string_equal(tp_msg_meta_get(m, "opcua_tag_group", NULL), "V_1");
    assert_string_equal(tp_msg_meta_get(m, "opcua_tag_path", NULL), "");
    tp_msg_free(m);
    free(shared.slot);
    ua_var_list_free(&l);
}

/* A MSG frame (channel 7) carrying `body` as chunk type `chunk`. */
static void msg_frame(struct tp_buf *out, char chunk, uint32_t req, const char *body, size_t n)
{
    size_t start = out->len;
    tp_buf_append(out, "MSG", 3);
    tp_buf_putc(out, chunk);
    ua_enc_u32(out, 0);
    ua_enc_u32(out, 7);
    ua_enc_u32(out, 1);
    ua_enc_u32(out, 1);
    ua_enc_u32(out, req);
    tp_buf_append(out, body, n);
    ua_put_u32_at(out, start + 4, (uint32_t)(out->len - start));
}

static void test_chunk_assembly(void **state)
{
    (void)state;
    struct ua_conn c;
    ua_conn_init(&c, -1, 1000, 3);
    c.channel_id = 7;
    struct tp_buf in, body;
    tp_buf_init(&in);
    tp_buf_init(&body);
    msg_frame(&in, 'C', 5, "hello ", 6);
    msg_frame(&in, 'F', 5, "world", 5);
    struct tp_error err = {.msg = ""};
    uint32_t req = 0;
    assert_int_equal(ua_conn_feed(&c, (const uint8_t *)in.data, in.len, &req, &body, &err), TP_OK);
    assert_int_equal(req, 5);
    assert_int_equal(body.len, 11);
    assert_memory_equal(body.data, "hello world", 11);
    /* more chunks than max_chunks */
    tp_buf_reset(&in);
    for (int i = 0; i < 4; i++)
        msg_frame(&in, 'C', 6, "x", 1);
    assert_int_equal(ua_conn_feed(&c, (const uint8_t *)in.data, in.len, &req, &body, &err),
                     TP_PARSE);
    assert_non_null(strstr(err.msg, "chunks"));
    ua_conn_free(&c);

    /* a message larger than max_msg_size */
    ua_conn_init(&c, -1, 16, 100);
    c.channel_id = 7;
    tp_buf_reset(&in);
    msg_frame(&in, 'C', 1, "0123456789", 10);
    msg_frame(&in, 'F', 1, "0123456789", 10);
    assert_int_equal(ua_conn_feed(&c, (const uint8_t *)in.data, in.len, &req, &body, &err),
                     TP_PARSE);
    assert_non_null(strstr(err.msg, "larger"));
    ua_conn_free(&c);

    /* wrong channel, huge frame size, unknown type, ERR frame */
    ua_conn_init(&c, -1, 1000, 10);
    c.channel_id = 8;
    tp_buf_reset(&in);
    msg_frame(&in, 'F', 1, "x", 1);
    assert_int_equal(ua_conn_feed(&c, (const uint8_t *)in.data, in.len, &req, &body, &err),
                     TP_PARSE);
    ua_conn_free(&c);
    ua_conn_init(&c, -1, 1000, 10);
    assert_int_equal(
        ua_conn_feed(&c, (const uint8_t *)"MSGF\xff\xff\xff\x7f", 8, &req, &body, &err), TP_PARSE);
    ua_conn_free(&c);
    ua_conn_init(&c, -1, 1000, 10);
    assert_int_equal(ua_conn_feed(&c, (const uint8_t *)"XYZF\x08\0\0\0", 8, &req, &body, &err),
                     TP_PARSE);
    ua_conn_free(&c);
    ua_conn_init(&c, -1, 1000, 10);
    tp_buf_reset(&in);
    tp_buf_append(&in, "ERRF\0\0\0\0", 8);
    ua_enc_u32(&in, 0x80800000u);
    ua_enc_cstring(&in, "too big");
    ua_put_u32_at(&in, 4, (uint32_t)in.len);
    assert_int_equal(ua_conn_feed(&c, (const uint8_t *)in.data, in.len, &req, &body, &err), TP_IO);
    assert_non_null(strstr(err.msg, "BadTcpMessageTooLarge: too big"));
    /* an incomplete frame just waits for more bytes */
    ua_conn_free(&c);
    ua_conn_init(&c, -1, 1000, 10);
    assert_int_equal(ua_conn_feed(&c, (const uint8_t *)"MSGF\x20\0", 6, &req, &body, &err),
                     TP_AGAIN);
    ua_conn_free(&c);
    tp_buf_free(&in);
    tp_buf_free(&body);
}

static int got_handles[16], got_values[16], n_got;

static int record(void *ud, size_t index, const struct ua_datavalue *dv)
{
    (void)ud;
    if (n_got < 16) {
        got_handles[n_got] = (int)index;
        got_values[n_got++] = (int)ua_variant_int(&dv->value);
    }
    return 0;
}

/* A Publish response with sequence number seq and (handle, Int32 value) pairs. */
static void publish_response(struct tp_buf *b, uint32_t seq, const int *pairs, int n)
{
    tp_buf_reset(b);
    ua_enc_numeric_nodeid(b, 0, UA_PUBLISH_RESP);
    ua_enc_u64(b, 0);
    ua_enc_u32(b, 1);
    ua_enc_u32(b, 0);
    ua_enc_u8(b, 0);
    ua_enc_u32(b, 0xffffffffu);
    ua_enc_numeric_nodeid(b, 0, 0);
    ua_enc_u8(b, 0);
    ua_enc_u32(b, 1); /* subscription id */
    ua_enc_u32(b, 0); /* available sequence numbers */
    ua_enc_u8(b, 0);  /* more notifications */
    ua_enc_u32(b, seq);
    ua_enc_u64(b, 0);
    ua_enc_u32(b, n ? 1 : 0);
    if (n) {
        struct tp_buf body;
        tp_buf_init(&body);
        ua_enc_u32(&body, (uint32_t)n);
        for (int i = 0; i < n; i++) {
            ua_enc_u32(&body, (uint32_t)pairs[2 * i]);
            ua_enc_u8(&body, 0x01);
            ua_enc_u8(&body, UA_INT32);
            ua_enc_u32(&body, (uint32_t)pairs[2 * i + 1]);
        }
        ua_enc_u32(&body, 0);
        ua_enc_extension_object(b, UA_DATA_CHANGE_NOTIFICATION, body.data, body.len);
        tp_buf_free(&body);
    }
    ua_enc_u32(b, 0);
    ua_enc_u32(b, 0);
}

static void test_publish_handling(void **state)
{
    (void)state;
    struct ua_subscription s;
    memset(&s, 0, sizeof(s));
    s.on_value = record;
    s.in_flight = 3;
    struct tp_buf b;
    tp_buf_init(&b);
    struct tp_error err = {.msg = ""};
    int first[] = {0, 10, 1, 11};
    publish_response(&b, 1, first, 2);
    assert_int_equal(ua_sub_handle_response(&s, &b, &err), 0);
    publish_response(&b, 2, NULL, 0); /* keep-alive */
    assert_int_equal(ua_sub_handle_response(&s, &b, &err), 0);
    int later[] = {0, 12};
    publish_response(&b, 4, later, 1); /* 2 and 3 missing */
    assert_int_equal(ua_sub_handle_response(&s, &b, &err), 0);
    assert_int_equal(n_got, 3);
    assert_int_equal(got_handles[0], 0);
    assert_int_equal(got_values[0], 10);
    assert_int_equal(got_values[1], 11);
    assert_int_equal(got_values[2], 12);
    assert_int_equal(s.in_flight, 0);
    assert_int_equal(s.n_acks, 2);
    assert_int_equal(s.acks[0], 1);
    assert_int_equal(s.acks[1], 4);
    assert_int_equal(s.n_gaps, 2);
    assert_int_equal(s.gaps[0], 2);
    assert_int_equal(s.gaps[1], 3);
    /* truncated responses fail cleanly (the trailing results and diagnostics
     * arrays, 8 bytes, are not read) */
    for (size_t n = 0; n + 8 < b.len; n++) {
        struct tp_buf t = {.data = b.data, .len = n, .cap = b.cap};
        assert_int_not_equal(ua_sub_handle_response(&s, &t, &err), 0);
    }
    ua_sub_free(&s);
    tp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primitives),          cmocka_unit_test(test_lengths_limited),
        cmocka_unit_test(test_nodeid_forms),        cmocka_unit_test(test_variant_json),
        cmocka_unit_test(test_variant_unsupported), cmocka_unit_test(test_nesting_limited),
        cmocka_unit_test(test_datavalue),           cmocka_unit_test(test_text_helpers),
        cmocka_unit_test(test_chunk_assembly),      cmocka_unit_test(test_publish_handling),
        cmocka_unit_test(test_datetime_calendar),   cmocka_unit_test(test_datetime_cached),
        cmocka_unit_test(test_whole_number_text),   cmocka_unit_test(test_var_list_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
