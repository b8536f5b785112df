/* Unit tests for our QuickJS 2021-03-27 patches (patches/quickjs/): regular
 * expression backtracking honours the interrupt handler (uncatchable
 * "interrupted" error, context usable afterwards), and deeply nested
 * JSON.stringify / JSON.parse input throws instead of overflowing the C stack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "quickjs.h"

/* Far below the 8 MiB main-thread stack, with room for ASan's larger frames. */
#define QJS_STACK_SIZE (1024 * 1024)
/* Interrupt deadline for scripts meant to be interrupted: the patterns below
 * need about 2^40 steps, so only the interrupt ends them. */
#define DEADLINE_MS 100
/* Deadline for scripts meant to finish: never reached in practice. */
#define FAR_DEADLINE_MS (3600 * 1000)
/* Unpatched, JSON.stringify overflowed the 8 MiB stack from about 5e4 levels. */
#define DEEP "200000"

struct qjs_fx {
    JSRuntime *rt;
    JSContext *ctx;
    int armed;
    struct timespec deadline;
    unsigned calls; /* handler calls while armed */
    unsigned fired; /* handler calls that asked to interrupt */
};

static int interrupt_handler(JSRuntime *rt, void *opaque)
{
    (void)rt;
    struct qjs_fx *fx = opaque;
    struct timespec now;
    if (!fx->armed)
        return 0;
    fx->calls++;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > fx->deadline.tv_sec ||
        (now.tv_sec == fx->deadline.tv_sec && now.tv_nsec >= fx->deadline.tv_nsec)) {
        fx->fired++;
        return 1;
    }
    return 0;
}

static int fx_setup(void **state)
{
    struct qjs_fx *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    fx->rt = JS_NewRuntime();
    if (!fx->rt)
        return -1;
    JS_SetMaxStackSize(fx->rt, QJS_STACK_SIZE);
    JS_SetInterruptHandler(fx->rt, interrupt_handler, fx);
    fx->ctx = JS_NewContext(fx->rt);
    if (!fx->ctx)
        return -1;
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct qjs_fx *fx = *state;
    JS_FreeContext(fx->ctx);
    JS_FreeRuntime(fx->rt);
    free(fx);
    return 0;
}

/* Evaluates code with the interrupt deadline armed ms from now. */
static JSValue fx_eval(struct qjs_fx *fx, const char *code, long ms)
{
    JSValue v;
    clock_gettime(CLOCK_MONOTONIC, &fx->deadline);
    fx->deadline.tv_sec += ms / 1000;
    fx->deadline.tv_nsec += (ms % 1000) * 1000000L;
    if (fx->deadline.tv_nsec >= 1000000000L) {
        fx->deadline.tv_sec++;
        fx->deadline.tv_nsec -= 1000000000L;
    }
    fx->calls = 0;
    fx->fired = 0;
    fx->armed = 1;
    JS_UpdateStackTop(fx->rt);
    v = JS_Eval(fx->ctx, code, strlen(code), "<test>", JS_EVAL_TYPE_GLOBAL);
    fx->armed = 0;
    return v;
}

/* Converts v (freed) to text in buf, so that failures leak no JS value. */
static void take_text(struct qjs_fx *fx, JSValue v, char *buf, size_t n)
{
    const char *s = JS_ToCString(fx->ctx, v);
    snprintf(buf, n, "%s", s ? s : "<not convertible>");
    if (!s)
        JS_FreeValue(fx->ctx, JS_GetException(fx->ctx));
    JS_FreeCString(fx->ctx, s);
    JS_FreeValue(fx->ctx, v);
}

/* Evaluates code expected to return a value whose text is want. */
static void js_expect_str(struct qjs_fx *fx, const char *code, const char *want)
{
    char got[256];
    JSValue v = fx_eval(fx, code, FAR_DEADLINE_MS);
    if (JS_IsException(v)) {
        take_text(fx, JS_GetException(fx->ctx), got, sizeof(got));
        fail_msg("%s: unexpected exception %s", code, got);
    }
    take_text(fx, v, got, sizeof(got));
    if (strcmp(got, want) != 0)
        fail_msg("%s: got %s, want %s", code, got, want);
}

/* The context still evaluates scripts, regular expressions and JSON. */
static void js_expect_usable(struct qjs_fx *fx)
{
    JSValue v = fx_eval(fx, "1+1", FAR_DEADLINE_MS);
    assert_int_equal(JS_VALUE_GET_TAG(v), JS_TAG_INT);
    assert_int_equal(JS_VALUE_GET_INT(v), 2);
    js_expect_str(fx, "'abcb'.replace(/b/g, 'x') + JSON.stringify({a: [1, {b: 2}]})",
                  "axcx{\"a\":[1,{\"b\":2}]}");
}

/* v must be the exception marker; the pending exception's text must contain
 * want and its uncatchable flag must match. */
static void js_expect_exc(struct qjs_fx *fx, JSValue v, const char *code, const char *want,
                          int uncatchable)
{
    char got[256];
    JSValue ex;
    int unc;
    if (!JS_IsException(v)) {
        take_text(fx, v, got, sizeof(got));
        fail_msg("%s: no exception, got %s", code, got);
    }
    ex = JS_GetException(fx->ctx);
    unc = JS_IsUncatchableError(fx->ctx, ex);
    take_text(fx, ex, got, sizeof(got));
    if (!strstr(got, want))
        fail_msg("%s: exception %s, want %s", code, got, want);
    if (unc != uncatchable)
        fail_msg("%s: exception %s: uncatchable %d, want %d", code, got, unc, uncatchable);
}

/* ---- regular expressions ---- */

#define EVIL "var s = 'a'.repeat(40) + 'b', re = /(a+)+$/;\n"

static void test_regexp_interrupted(void **state)
{
    struct qjs_fx *fx = *state;
    static const char *const scripts[] = {
        EVIL "re.test(s)",
        EVIL "re.exec(s)",
        EVIL "s.match(re)",
        EVIL "s.search(re)",
        EVIL "[...s.matchAll(/(a+)+$/g)]",
        EVIL "s.replace(re, 'x')",
        EVIL "s.replace(re, function (m) { return m; })",
        /* empty replacement with the built-in exec: the JS_RegExpDelete path */
        EVIL "s.replace(/(a+)+$/g, '')",
        EVIL "s.replaceAll(/(a+)+$/g, 'x')",
        EVIL "s.split(re)",
        EVIL "s.split(/(a+)+$/, 3)",
        /* Not catchable by the script itself. */
        EVIL "try { re.test(s); 'finished' } catch (e) { 'caught ' + e }",
        EVIL "for (;;) { try { re.test(s) } catch (e) {} }",
    };
    for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
        JSValue v = fx_eval(fx, scripts[i], DEADLINE_MS);
        js_expect_exc(fx, v, scripts[i], "interrupted", 1);
        assert_true(fx->fired >= 1);
        js_expect_usable(fx);
    }
}

/* Long but finite backtracking polls the handler and, when it does not ask
 * to stop, returns the right result. */
static void test_regexp_polls_handler(void **state)
{
    struct qjs_fx *fx = *state;
    /* One regexp call: the interpreter's own poll (every 10000 operations)
     * is not reached, so the calls come from the backtracking loop. */
    js_expect_str(fx, "String(/(a+)+$/.test('a'.repeat(20) + 'b'))", "false");
    assert_true(fx->calls >= 1);
    assert_int_equal(fx->fired, 0);
    js_expect_str(
        fx, "'a'.repeat(20).replace(/(a+)+$/, 'x') + ('a'.repeat(18) + 'b').split(/(a+)+$/).length",
        "x1");
    js_expect_str(fx, "JSON.stringify(/^(a|ab)*c$/.exec('ab'.repeat(10) + 'c'))",
                  "[\"ababababababababababc\",\"ab\"]");
}

/* ---- JSON ---- */

static void test_json_stringify_deep(void **state)
{
    struct qjs_fx *fx = *state;
    static const char *const scripts[] = {
        "var o = {}; for (var i = 0; i < " DEEP "; i++) o = {a: o}; JSON.stringify(o)",
        "var o = []; for (var i = 0; i < " DEEP "; i++) o = [o]; JSON.stringify(o)",
        "var o = []; for (var i = 0; i < " DEEP "; i++) o = [o]; JSON.stringify(o, null, 2)",
        "var o = {}; for (var i = 0; i < " DEEP "; i++) o = {a: o};"
        " JSON.stringify(o, function (k, v) { return v; })",
        "var o = {}; for (var i = 0; i < " DEEP "; i++) o = {a: o}; JSON.stringify(o, ['a'])",
        "var n = 0; var t = {toJSON: function () { return n++ < " DEEP " ? {a: t} : 1; }};"
        " JSON.stringify(t)",
    };
    for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
        JSValue v = fx_eval(fx, scripts[i], FAR_DEADLINE_MS);
        js_expect_exc(fx, v, scripts[i], "stack overflow", 0);
        assert_int_equal(fx->fired, 0);
        js_expect_usable(fx);
    }
    /* An ordinary error, catchable by the script. */
    js_expect_str(fx,
                  "var o = {}; for (var i = 0; i < " DEEP "; i++) o = {a: o};"
                  " try { JSON.stringify(o); 'finished' } catch (e) { e.name + ': ' + e.message }",
                  "InternalError: stack overflow");
    /* Moderate nesting still works. */
    js_expect_str(fx,
                  "var o = 1; for (var i = 0; i < 100; i++) o = {a: [o]};"
                  " JSON.stringify(o).length",
                  "801");
    js_expect_usable(fx);
}

static void test_json_parse_deep(void **state)
{
    struct qjs_fx *fx = *state;
    static const char *const scripts[] = {
        "JSON.parse('['.repeat(1000000))",
        "JSON.parse('{\"a\":'.repeat(1000000))",
        "JSON.parse('['.repeat(" DEEP ") + ']'.repeat(" DEEP "))",
        "JSON.parse('['.repeat(" DEEP ") + ']'.repeat(" DEEP "), function (k, v) { return v; })",
    };
    for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
        JSValue v = fx_eval(fx, scripts[i], FAR_DEADLINE_MS);
        js_expect_exc(fx, v, scripts[i], "stack overflow", 0);
        js_expect_usable(fx);
    }
    js_expect_str(fx, "JSON.stringify(JSON.parse('['.repeat(100) + ']'.repeat(100))).length",
                  "200");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_regexp_interrupted, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_regexp_polls_handler, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_json_stringify_deep, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_json_parse_deep, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
