/* The payload JSON parser of the bridge (src/js/json_parse.c) against
 * QuickJS's JSON.parse: for hand-picked edge cases and ~20,000 generated
 * documents (valid and broken), whatever the fast parser accepts must be
 * the value JS_ParseJSON gives (types, -0, key order, property flags,
 * prototypes, string contents), and what it declines must be left to
 * JS_ParseJSON. Also: objects built on a kept shape are independent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "js/js_internal.h"
#include "js/json_parse.h"
#include "js/vm.h"

static struct tp_js_vm vm;

static int setup(void **state)
{
    (void)state;
    struct tp_js_limits lim = {1000, 64, 100, 100, 1 << 20};
    struct tp_error err = {0};
    return tp__js_vm_init(&vm, &lim, "test", NULL, NULL, &err);
}

static int teardown(void **state)
{
    (void)state;
    tp__js_vm_fini(&vm);
    return 0;
}

/* Everything observable of v as text (b gets it). */
static void describe(JSContext *ctx, JSValueConst v, struct tp_buf *b, int depth)
{
    assert_true(depth < 200);
    switch (JS_VALUE_GET_TAG(v)) {
    case JS_TAG_INT:
        tp_buf_printf(b, "i%d", JS_VALUE_GET_INT(v));
        return;
    case JS_TAG_FLOAT64:
        tp_buf_printf(b, "f%a", JS_VALUE_GET_FLOAT64(v));
        return;
    case JS_TAG_BOOL:
        tp_buf_printf(b, JS_VALUE_GET_BOOL(v) ? "true" : "false");
        return;
    case JS_TAG_NULL:
        tp_buf_printf(b, "null");
        return;
    case JS_TAG_STRING: {
        size_t n;
        const char *s = JS_ToCStringLen(ctx, &n, v); /* lone surrogates as CESU-8 */
        assert_non_null(s);
        tp_buf_printf(b, "s%zu:", n);
        for (size_t i = 0; i < n; i++)
            tp_buf_printf(b, "%02x", (unsigned char)s[i]);
        JS_FreeCString(ctx, s);
        return;
    }
    case JS_TAG_OBJECT:
        break;
    default:
        fail_msg("unexpected tag %d", JS_VALUE_GET_TAG(v));
    }
    JSValue proto = JS_GetPrototype(ctx, v);
    JSValue global = JS_GetGlobalObject(ctx);
    const char *cls = JS_IsArray(ctx, v) ? "Array" : "Object";
    JSValue ctor = JS_GetPropertyStr(ctx, global, cls);
    JSValue want = JS_GetPropertyStr(ctx, ctor, "prototype");
    assert_true(JS_VALUE_GET_PTR(proto) == JS_VALUE_GET_PTR(want));
    JS_FreeValue(ctx, want);
    JS_FreeValue(ctx, ctor);
    JS_FreeValue(ctx, global);
    JS_FreeValue(ctx, proto);
    assert_true(JS_IsExtensible(ctx, v));
    JSPropertyEnum *tab;
    uint32_t len;
    assert_int_equal(
        JS_GetOwnPropertyNames(ctx, &tab, &len, v, JS_GPN_STRING_MASK | JS_GPN_SYMBOL_MASK), 0);
    tp_buf_printf(b, "%s{", cls);
    for (uint32_t i = 0; i < len; i++) {
        JSPropertyDescriptor d;
        assert_int_equal(JS_GetOwnProperty(ctx, &d, v, tab[i].atom), 1);
        const char *k = JS_AtomToCString(ctx, tab[i].atom);
        tp_buf_printf(b, "%s%s/%d:", i ? "," : "", k, d.flags);
        JS_FreeCString(ctx, k);
        describe(ctx, d.value, b, depth + 1);
        JS_FreeValue(ctx, d.value);
        JS_FreeValue(ctx, d.getter);
        JS_FreeValue(ctx, d.setter);
        JS_FreeAtom(ctx, tab[i].atom);
    }
    js_free(ctx, tab);
    tp_buf_printf(b, "}");
}

static long accepted, declined;

/* Parses text both ways; returns 1 when the fast parser accepted it. */
static int check(const char *text, size_t len)
{
    JSContext *ctx = vm.ctx;
    char *z = malloc(len + 1); /* JS_ParseJSON reads a NUL-terminated buffer */
    memcpy(z, text, len);
    z[len] = '\0';
    JSValue fast = tp__js_json_parse(&vm, z, len);
    assert_false(JS_IsException(fast));
    assert_true(JS_IsNull(JS_GetException(ctx))); /* nothing left pending */
    JSValue ref = JS_ParseJSON(ctx, z, len, "<test>");
    if (JS_IsUndefined(fast)) {
        declined++;
        if (JS_IsException(ref))
            JS_FreeValue(ctx, JS_GetException(ctx));
        JS_FreeValue(ctx, ref);
        free(z);
        return 0;
    }
    accepted++;
    if (JS_IsException(ref))
        fail_msg("accepted what JSON.parse rejects: %s", z);
    struct tp_buf a, r;
    tp_buf_init(&a);
    tp_buf_init(&r);
    describe(ctx, fast, &a, 0);
    describe(ctx, ref, &r, 0);
    if (a.len != r.len || memcmp(a.data, r.data, a.len) != 0)
        fail_msg("differs for %s:\n fast %s\n  ref %s", z, a.data, r.data);
    tp_buf_free(&a);
    tp_buf_free(&r);
    JS_FreeValue(ctx, fast);
    JS_FreeValue(ctx, ref);
    free(z);
    return 1;
}

static int check_str(const char *text)
{
    return check(text, strlen(text));
}

static void test_cases(void **state)
{
    (void)state;
    static const char *const yes[] = {
        "{\"payload\":20.00,\"meta\":{\"opcua_node_id\":\"ns=1;i=2200\",\"timestamp_ms\":"
        "\"1700000000000\"}}",
        "{}",
        "[]",
        " \t\r\n{ \"a\" : [ 1 , -0 , 0.5 , -1.5e3 , 1E-2 , 1e+2 , 0 , 2147483648 ] } \n",
        "\"text\"",
        "\"\"",
        "[true,false,null,{\"a\":{}}]",
        "{\"a\":1,\"b\":2,\"a\":3}",
        "{\"b\":1,\"10\":2,\"2\":3,\"a\":4,\"4294967295\":5,\"-1\":6,\"01\":7}",
        "{\"__proto__\":{\"x\":1},\"constructor\":2}",
        "{\"esc\":\"q\\\"b\\\\s\\/n\\nt\\tr\\rb\\bf\\f u\\u0041\\u007f\"}",
        "{\"k\\u0041y\":\"v\"}",
        "{\"\xc3\xa9t\xc3\xa9\":\"\xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xb0"
        "C\"}",
        "[9007199254740993,9999999999999999999,123456789012345678,-0]",
        "[0.1,0.2,0.30000000000000004,1.7976931348623157e308,5e-324,1e400,-1e400,1e-400]",
        "[123456789012345.6,1234567890123456.7,0.000001,100.0,-0.0,1.0e0]",
        "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
    };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!check_str(yes[i]))
            fail_msg("declined: %s", yes[i]);
    static const char *const no[] = {
        "{\"a\":1,}",
        "[1,]",
        "{'a':1}",
        "{a:1}",
        "[01]",
        "[1.]",
        "[.5]",
        "[+1]",
        "[1e]",
        "[-]",
        "[0x10]",
        "[Infinity]",
        "[NaN]",
        "\"\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud800\"",
        "\"\\u0000\"",
        "\"\\x41\"",
        "\"\\'\"",
        "\"\\v\"",
        "\"a\tb\"",
        "\"\xff\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "[12345678901234567890]",
        "{\"a\":1} x",
        "{\"a\":1}{}",
        "[1 2]",
        "{\"a\" 1}",
        "[tru]",
        "[nulls]",
        "\"open",
        "{\"a\":[1,2}",
        "// c\n1",
        "[\x0b]",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (check_str(no[i]))
            fail_msg("accepted: %s", no[i]);
    /* Nesting: 64 levels parsed here, deeper ones left to JSON.parse. */
    char deep[300];
    for (int levels = 60; levels <= 70; levels += 10) {
        memset(deep, '[', (size_t)levels);
        memset(deep + levels, ']', (size_t)levels);
        assert_int_equal(check(deep, 2 * (size_t)levels), levels <= 64);
    }
}

/* Objects of a recurring key sequence take a kept shape (from the second
 * sighting on); each must still be an object of its own. */
static void test_kept_shapes(void **state)
{
    (void)state;
    JSContext *ctx = vm.ctx;
    const char *t = "{\"p\":1,\"m\":{\"a\":\"x\",\"b\":\"y\"}}";
    JSValue v[4];
    for (int i = 0; i < 4; i++) {
        assert_true(check_str(t));
        v[i] = tp__js_json_parse(&vm, t, strlen(t));
        assert_true(JS_IsObject(v[i]));
    }
    JSValue m0 = JS_GetPropertyStr(ctx, v[2], "m");
    JS_SetPropertyStr(ctx, m0, "a", JS_NewInt32(ctx, 7));
    JS_SetPropertyStr(ctx, m0, "c", JS_NewInt32(ctx, 8));
    JSAtom p = JS_NewAtom(ctx, "p");
    JS_DeleteProperty(ctx, v[2], p, 0);
    JS_FreeAtom(ctx, p);
    JS_FreeValue(ctx, m0);
    struct tp_buf a, b;
    tp_buf_init(&a);
    tp_buf_init(&b);
    describe(ctx, v[1], &a, 0);
    describe(ctx, v[3], &b, 0);
    assert_string_equal(a.data, b.data);
    assert_non_null(strstr(a.data, "p/7:i1"));
    tp_buf_reset(&a);
    describe(ctx, v[2], &a, 0);
    assert_null(strstr(a.data, "p/"));
    assert_non_null(strstr(a.data, "a/7:i7"));
    assert_non_null(strstr(a.data, "c/7:i8"));
    tp_buf_free(&a);
    tp_buf_free(&b);
    for (int i = 0; i < 4; i++)
        JS_FreeValue(ctx, v[i]);
}

/* ---- generated documents ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void ws(struct tp_buf *b)
{
    static const char *const w[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
    tp_buf_printf(b, "%s", w[rnd(7)]);
}

static void gen_string(struct tp_buf *b)
{
    static const char *const parts[] = {
        "a",
        "opcua_node_id",
        "ns=1;i=2200",
        "x y",
        "\\\"",
        "\\\\",
        "\\/",
        "\\n",
        "\\u0041",
        "\\u00e9",
        "\\ud83d",
        "\\ude00",
        "\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "0",
        "10",
        "__proto__",
        "-1",
        "\\t",
        "",
    };
    tp_buf_printf(b, "\"");
    for (unsigned i = 0, n = rnd(4); i < n; i++)
        tp_buf_printf(b, "%s", parts[rnd(sizeof(parts) / sizeof(parts[0]))]);
    tp_buf_printf(b, "\"");
}

static void gen_number(struct tp_buf *b)
{
    if (rnd(2))
        tp_buf_printf(b, "-");
    unsigned digits = 1 + rnd(rnd(4) ? 6 : 24);
    tp_buf_printf(b, "%u", 1 + rnd(9));
    for (unsigned i = 1; i < digits; i++)
        tp_buf_printf(b, "%u", rnd(10));
    if (rnd(3) == 0)
        b->data[b->len - digits] = '0', b->len -= digits - 1, b->data[b->len] = '\0';
    if (rnd(2)) {
        tp_buf_printf(b, ".");
        for (unsigned i = 0, n = 1 + rnd(rnd(4) ? 4 : 20); i < n; i++)
            tp_buf_printf(b, "%u", rnd(10));
    }
    if (rnd(4) == 0)
        tp_buf_printf(b, "%s%s%u", rnd(2) ? "e" : "E",
                      rnd(3) == 0 ? "-"
                      : rnd(2)    ? "+"
                                  : "",
                      rnd(rnd(3) ? 30 : 400));
}

static void gen_value(struct tp_buf *b, int depth)
{
    unsigned k = rnd(depth > 6 ? 6 : 8);
    ws(b);
    switch (k) {
    case 0:
    case 1:
        gen_string(b);
        break;
    case 2:
    case 3:
        gen_number(b);
        break;
    case 4:
        tp_buf_printf(b, "%s", rnd(3) == 0 ? "null" : rnd(2) ? "true" : "false");
        break;
    case 5:
        tp_buf_printf(b, "%d", (int)rnd(100));
        break;
    case 6: {
        tp_buf_printf(b, "{");
        unsigned n = rnd(rnd(8) ? 6 : 40);
        for (unsigned i = 0; i < n; i++) {
            if (i)
                tp_buf_printf(b, ",");
            ws(b);
            gen_string(b);
            ws(b);
            tp_buf_printf(b, ":");
            gen_value(b, depth + 1);
        }
        ws(b);
        tp_buf_printf(b, "}");
        break;
    }
    default: {
        tp_buf_printf(b, "[");
        unsigned n = rnd(6);
        for (unsigned i = 0; i < n; i++) {
            if (i)
                tp_buf_printf(b, ",");
            gen_value(b, depth + 1);
        }
        ws(b);
        tp_buf_printf(b, "]");
        break;
    }
    }
    ws(b);
}

static void test_generated(void **state)
{
    (void)state;
    struct tp_buf b;
    tp_buf_init(&b);
    accepted = declined = 0;
    for (int i = 0; i < 20000; i++) {
        tp_buf_reset(&b);
        gen_value(&b, 0);
        if (rnd(4) == 0 && b.len > 1) { /* break it: cut, or change one byte */
            size_t at = rnd((unsigned)b.len);
            if (rnd(2))
                b.len = at;
            else
                b.data[at] = "{}[],:\"\\0e.-x \x80"[rnd(15)];
        }
        check(b.data, b.len);
    }
    tp_buf_free(&b);
    print_message("accepted %ld, declined %ld\n", accepted, declined);
    /* not vacuous: most documents take the fast path, some do not */
    assert_true(accepted > 8000);
    assert_true(declined > 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_kept_shapes),
        cmocka_unit_test(test_generated),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
