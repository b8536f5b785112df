/* Unit tests for the JavaScript layer (src/js): the cache store, payload and
 * metadata marshalling, the return-value rules (SPEC 3.2/3.3) seen through
 * nodered_js, limits (timeout, regex backtracking, memory, recursion), the
 * environment (console, cache) and the naive engine mode. */
#include "js_test_util.h"

#include "core/log.h"
#include "core/metrics.h"
#include "core/stats.h"
#include "js/cache.h"
#include "js/vm.h"

extern const struct tp_processor_plugin tp_processor_nodered_js;

#define NR_PATH "pipeline.processors[0].nodered_js"

/* ---- cache store (pure C) ---- */

static void test_cache_store(void **state)
{
    (void)state;
    struct tp_js_cache *c = tp_js_cache_new(3, 1 << 20);
    assert_non_null(c);
    size_t len = 0;
    assert_null(tp_js_cache_get(c, "a", 1, &len));
    assert_int_equal(tp_js_cache_set(c, "a", 1, "1", 1), 0);
    assert_int_equal(tp_js_cache_set(c, "b", 1, "\"two\"", 5), 0);
    assert_int_equal(tp_js_cache_set(c, "c", 1, "[3]", 3), 0);
    char *v = tp_js_cache_get(c, "b", 1, &len);
    assert_string_equal(v, "\"two\"");
    assert_int_equal(len, 5);
    free(v);
    free(tp_js_cache_get(c, "a", 1, NULL)); /* order now: a, b, c (c least recent) */
    assert_int_equal(tp_js_cache_set(c, "d", 1, "4", 1), 0);
    assert_int_equal(tp_js_cache_count(c), 3);
    assert_false(tp_js_cache_exists(c, "c", 1));
    assert_true(tp_js_cache_exists(c, "a", 1));
    assert_true(tp_js_cache_exists(c, "d", 1));
    /* replacing keeps the count */
    assert_int_equal(tp_js_cache_set(c, "a", 1, "11", 2), 0);
    assert_int_equal(tp_js_cache_count(c), 3);
    v = tp_js_cache_get(c, "a", 1, NULL);
    assert_string_equal(v, "11");
    free(v);
    assert_true(tp_js_cache_delete(c, "a", 1));
    assert_false(tp_js_cache_delete(c, "a", 1));
    assert_int_equal(tp_js_cache_count(c), 2);
    tp_js_cache_free(c);
}

static void test_cache_many(void **state)
{
    (void)state;
    struct tp_js_cache *c = tp_js_cache_new(1000, 1 << 20);
    char k[32];
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(k, sizeof(k), "key%d", i);
        assert_int_equal(tp_js_cache_set(c, k, (size_t)n, k, (size_t)n), 0);
    }
    assert_int_equal(tp_js_cache_count(c), 1000);
    assert_false(tp_js_cache_exists(c, "key3999", 7));
    assert_true(tp_js_cache_exists(c, "key4000", 7));
    char *v = tp_js_cache_get(c, "key4999", 7, NULL);
    assert_string_equal(v, "key4999");
    free(v);
    tp_js_cache_free(c);
}

/* ---- return values through nodered_js ---- */

static void nr_open(struct proc_fx *f, const char *yaml)
{
    fx_must_open(f, &tp_processor_nodered_js, NR_PATH, yaml, 1);
}

static void test_payload_marshalling(void **state)
{
    (void)state;
    struct proc_fx f;
    nr_open(&f, "code: |\n"
                "  msg.payload = [typeof msg.payload, msg.payload];\n"
                "  return msg;\n");
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"23.5", "[\"number\",23.5]"},
        {"-0.5e2", "[\"number\",-50]"},
        {" 7 ", "[\"number\",7]"},
        {"12abc", "[\"string\",\"12abc\"]"},
        {"01", "[\"string\",\"01\"]"},
        {"hello", "[\"string\",\"hello\"]"},
        {"\"quoted\"", "[\"string\",\"quoted\"]"},
        {"true", "[\"boolean\",true]"},
        {"false", "[\"boolean\",false]"},
        {"null", "[\"object\",null]"},
        {"{\"a\":[1,2]}", "[\"object\",{\"a\":[1,2]}]"},
        {"{\"a\":", "[\"string\",\"{\\\"a\\\":\"]"},
        {"", "[\"string\",\"\"]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx_run(&f, mk_msg(cases[i].in, NULL));
        assert_int_equal(f.drops.n, 0);
        assert_int_equal(f.out.len, 1);
        assert_string_equal(out_payload(&f, 0), cases[i].out);
        assert_true(f.out.msgs[0]->flags & TP_MSG_PAYLOAD_JSON);
    }
    fx_close(&f);
}

static void test_return_object(void **state)
{
    (void)state;
    struct proc_fx f;
    /* no meta key: no metadata; payload key kept */
    nr_open(&f, "code: 'return {payload: msg.payload + 1};'\n");
    fx_run(&f, mk_msg("41", "a", "x", NULL));
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_payload(&f, 0), "42");
    assert_int_equal(f.out.msgs[0]->n_meta, 0);
    fx_close(&f);

    /* no payload key: payload unchanged */
    nr_open(&f, "code: 'return {meta: {b: \"y\"}};'\n");
    fx_run(&f, mk_msg("{\"v\":1}", "a", "x", NULL));
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_payload(&f, 0), "{\"v\":1}");
    assert_null(out_meta(&f, 0, "a"));
    assert_string_equal(out_meta(&f, 0, "b"), "y");
    fx_close(&f);

    /* `return msg` after deleting the payload keeps the previous payload */
    nr_open(&f, "code: 'delete msg.payload; return msg;'\n");
    fx_run(&f, mk_msg("5", "a", "x", NULL));
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_payload(&f, 0), "5");
    assert_string_equal(out_meta(&f, 0, "a"), "x");
    fx_close(&f);
}

static void test_return_filtered(void **state)
{
    (void)state;
    static const char *const codes[] = {
        "code: 'return null;'\n", "code: 'return undefined;'\n",    "code: 'msg.payload = 1;'\n",
        "code: 'return [];'\n",   "code: 'return [null, null];'\n",
    };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        struct proc_fx f;
        nr_open(&f, codes[i]);
        fx_run(&f, mk_msg("1", NULL));
        const char *e = one_drop(&f, TP_DROP_FILTERED, "code");
        assert_string_equal(e, "");
        fx_close(&f);
    }
}

static void test_return_errors(void **state)
{
    (void)state;
    static const struct {
        const char *code, *needle, *stage;
    } cases[] = {
        {"code: 'return 5;'\n", "returned a number", "code"},
        {"code: 'return \"x\";'\n", "returned a string", "code"},
        {"code: 'return true;'\n", "returned a boolean", "code"},
        {"code: 'return [msg, 5];'\n", "element 1 is a number", "code"},
        {"code: 'return [msg, \"s\"];'\n", "element 1 is a string", "code"},
        {"code: 'return {payload: 1, meta: \"m\"};'\n", "msg.meta must be an object", "code"},
        {"code: 'msg.meta.s = Symbol(\"x\"); return msg;'\n", "TypeError", "output"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct proc_fx f;
        nr_open(&f, cases[i].code);
        fx_run(&f, mk_msg("1", NULL));
        const char *e = one_drop(&f, TP_DROP_JS_ERROR, cases[i].stage);
        if (!strstr(e, cases[i].needle))
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, e, cases[i].needle);
        fx_close(&f);
    }
}

static void test_fan_out(void **state)
{
    (void)state;
    struct proc_fx f;
    nr_open(&f, "code: |\n"
                "  return [msg, null, {payload: {n: 2}, meta: msg.meta}, {meta: {k: 'z'}}];\n");
    fx_run(&f, mk_msg("1", "k", "v", NULL));
    assert_int_equal(f.drops.n, 0);
    assert_int_equal(f.out.len, 3);
    assert_string_equal(out_payload(&f, 0), "1");
    assert_string_equal(out_payload(&f, 1), "{\"n\":2}");
    assert_string_equal(out_payload(&f, 2), "1");
    assert_string_equal(out_meta(&f, 0, "k"), "v");
    assert_string_equal(out_meta(&f, 1, "k"), "v");
    assert_string_equal(out_meta(&f, 2, "k"), "z");
    fx_close(&f);
}

static void test_meta_conversion(void **state)
{
    (void)state;
    struct proc_fx f;
    nr_open(&f, "code: |\n"
                "  msg.meta.ts = 1640995200000; msg.meta.f = 1.5; msg.meta.big = 1e21;\n"
                "  msg.meta.yes = true; msg.meta.no = false; msg.meta.gone = null;\n"
                "  msg.meta.undef = undefined; msg.meta.obj = {a: 1, b: [true]};\n"
                "  msg.meta.arr = [1, 'x']; msg.meta.s = 'str'; msg.meta.neg = -0.25;\n"
                "  return msg;\n");
    fx_run(&f, mk_msg("0", "gone", "was here", NULL));
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_meta(&f, 0, "ts"), "1640995200000");
    assert_string_equal(out_meta(&f, 0, "f"), "1.5");
    assert_string_equal(out_meta(&f, 0, "big"), "1e+21");
    assert_string_equal(out_meta(&f, 0, "yes"), "true");
    assert_string_equal(out_meta(&f, 0, "no"), "false");
    assert_null(out_meta(&f, 0, "gone"));
    assert_null(out_meta(&f, 0, "undef"));
    assert_string_equal(out_meta(&f, 0, "obj"), "{\"a\":1,\"b\":[true]}");
    assert_string_equal(out_meta(&f, 0, "arr"), "[1,\"x\"]");
    assert_string_equal(out_meta(&f, 0, "s"), "str");
    assert_string_equal(out_meta(&f, 0, "neg"), "-0.25");
    fx_close(&f);
}

/* The output metadata in order, as "k=v;k=v;". */
static const char *meta_list(struct proc_fx *f, size_t i, char *buf, size_t n)
{
    const struct tp_msg *m = f->out.msgs[i];
    size_t o = 0;
    buf[0] = '\0';
    for (uint32_t k = 0; k < m->n_meta && o < n; k++)
        o += (size_t)snprintf(buf + o, n - o, "%s=%s;", tp_msg_meta_key(m, k),
                              tp_msg_meta_val(m, k));
    return buf;
}

/* Metadata read back from JS keeps Object.keys order and UTF-8 text whether
 * the object is read from its shape (plain data) or through the public API
 * (index keys, getters, symbols, hidden or deleted keys). */
static void test_meta_export_paths(void **state)
{
    (void)state;
    static const struct {
        const char *code, *want;
    } cases[] = {
        {"code: 'msg.meta.n = 2.5; msg.meta.b = true; msg.meta.x = null; return msg;'\n",
         "a=1;z=\xc3\xa9;w=\xe2\x82\xac;n=2.5;b=true;"},
        {"code: |\n"
         "  msg.meta['7'] = 'seven'; msg.meta['4294967294'] = 'big';\n"
         "  Object.defineProperty(msg.meta, 'hidden', {value: 'h', enumerable: false});\n"
         "  msg.meta[Symbol('s')] = 'sym'; delete msg.meta.a; msg.meta.a = 'again';\n"
         "  return msg;\n",
         "7=seven;4294967294=big;z=\xc3\xa9;w=\xe2\x82\xac;a=again;"},
        {"code: |\n"
         "  Object.defineProperty(msg.meta, 'g', {get() { return 'got'; }, enumerable: true});\n"
         "  return msg;\n",
         "a=1;z=\xc3\xa9;w=\xe2\x82\xac;g=got;"},
        {"code: 'msg.meta = {k: 1}; msg.meta.k2 = \"\\u00ff\"; return msg;'\n", "k=1;k2=\xc3\xbf;"},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct proc_fx f;
        nr_open(&f, cases[i].code);
        for (int rep = 0; rep < 2; rep++) { /* second run: caches warm */
            fx_run(&f, mk_msg("1", "a", "1", "z", "\xc3\xa9", "w", "\xe2\x82\xac", NULL));
            assert_int_equal(f.drops.n, 0);
            assert_int_equal(f.out.len, 1);
            if (strcmp(meta_list(&f, 0, buf, sizeof buf), cases[i].want) != 0)
                fail_msg("case %zu: got \"%s\", want \"%s\"", i, buf, cases[i].want);
        }
        fx_close(&f);
    }
}

/* Messages of one key layout in a row (the bridge's layout memos and kept
 * shapes in use), broken by a stage that deletes, adds, changes, nulls,
 * reorders or replaces metadata, merges a JSON envelope with Object.assign
 * or builds meta anew: each message's metadata, in order, and payload. */
static void test_meta_layout_memos(void **state)
{
    (void)state;
    static const struct {
        const char *op, *payload, *want_meta, *want_payload;
    } cases[] = {
        {"none", "0", "a=1;b=2;op=none;", "0"},
        {"del", "0", "a=1;op=del;", "0"},
        {"add", "0", "a=1;b=2;op=add;z=new;", "0"},
        {"chg", "0", "a=changed;b=2;op=chg;", "0"},
        {"num", "0", "a=7;op=num;", "0"},
        {"order", "0", "b=2;op=order;a=1;", "0"},
        {"replace", "0", "r=1;", "0"},
        {"assign", "0", "a=1;b=2;op=assign;x=y;", "0"},
        {"none", "{\"payload\":5,\"meta\":{\"e\":\"E\",\"a\":\"A\"}}", "a=A;b=2;op=none;e=E;", "5"},
        {"num", "{\"payload\":[1,{\"k\":-0}],\"meta\":{\"a\":\"A\"}}", "a=7;op=num;",
         "[1,{\"k\":0}]"},
    };
    struct proc_fx f;
    nr_open(&f,
            "code: |\n"
            "  const env = msg.payload;\n"
            "  if (env && typeof env === 'object' && env.meta) {\n"
            "    Object.assign(msg.meta, env.meta); msg.payload = env.payload;\n"
            "  }\n"
            "  const op = msg.meta.op;\n"
            "  if (op === 'del') delete msg.meta.b;\n"
            "  if (op === 'add') msg.meta.z = 'new';\n"
            "  if (op === 'chg') msg.meta.a = 'changed';\n"
            "  if (op === 'num') { msg.meta.a = 7; msg.meta.b = null; }\n"
            "  if (op === 'order') { const t = msg.meta.a; delete msg.meta.a; msg.meta.a = t; }\n"
            "  if (op === 'replace') msg.meta = {r: '1'};\n"
            "  if (op === 'assign') msg.meta = Object.assign({}, msg.meta, {x: 'y'});\n"
            "  return msg;\n");
    size_t n = sizeof(cases) / sizeof(cases[0]);
    char buf[256];
    for (size_t step = 0; step < 4 * n; step++) {
        /* each case twice in a row, forwards, then backwards */
        size_t i = step < 2 * n ? step / 2 : n - 1 - (step - 2 * n) / 2;
        fx_run(&f, mk_msg(cases[i].payload, "a", "1", "b", "2", "op", cases[i].op, NULL));
        assert_int_equal(f.drops.n, 0);
        assert_int_equal(f.out.len, 1);
        if (strcmp(meta_list(&f, 0, buf, sizeof buf), cases[i].want_meta) != 0)
            fail_msg("step %zu (%s): got \"%s\", want \"%s\"", step, cases[i].op, buf,
                     cases[i].want_meta);
        assert_string_equal(out_payload(&f, 0), cases[i].want_payload);
    }
    fx_close(&f);
}

/* Objects a script keeps (global state) are never reused for later messages,
 * and many distinct keys (cache slots shared and evicted) keep their text. */
static void test_objects_kept_by_scripts(void **state)
{
    (void)state;
    struct proc_fx f;
    nr_open(&f, "code: |\n"
                "  const prev = globalThis.lastMeta, prevMsg = globalThis.lastMsg;\n"
                "  globalThis.lastMeta = msg.meta;\n"
                "  if (msg.meta.k === '3') globalThis.lastMsg = msg;\n"
                "  if (prev) msg.meta.prev = prev.k;\n"
                "  if (prevMsg) msg.meta.prevMsg = prevMsg.meta.k + '/' + prevMsg.payload;\n"
                "  return msg;\n");
    char buf[512];
    static const char *const want[] = {
        "k=1;", "k=2;prev=1;", "k=3;prev=2;", "k=4;prev=3;prevMsg=3/3;", "k=5;prev=4;prevMsg=3/3;",
    };
    for (int i = 0; i < 5; i++) {
        char k[8];
        snprintf(k, sizeof k, "%d", i + 1);
        fx_run(&f, mk_msg(k, "k", k, NULL));
        assert_int_equal(f.out.len, 1);
        if (strcmp(meta_list(&f, 0, buf, sizeof buf), want[i]) != 0)
            fail_msg("message %d: got \"%s\", want \"%s\"", i + 1, buf, want[i]);
    }
    fx_close(&f);

    nr_open(&f, "code: 'msg.meta.n = Object.keys(msg.meta).length; return msg;'\n");
    for (int round = 0; round < 40; round++) {
        struct tp_msg *m = tp_msg_new();
        assert_non_null(m);
        assert_int_equal(tp_msg_set_payload(m, "0", 1), 0);
        char want_list[4096] = "";
        size_t o = 0;
        for (int j = 0; j < 20; j++) {
            char key[32], val[32];
            snprintf(key, sizeof key, "key_%d_%d", round, (j * 7 + round) % 23);
            snprintf(val, sizeof val, "v%d.%d", round % 3, j);
            if (tp_msg_meta_get(m, key, NULL))
                continue;
            assert_int_equal(tp_msg_meta_sets(m, key, val), 0);
            o += (size_t)snprintf(want_list + o, sizeof want_list - o, "%s=%s;", key, val);
        }
        snprintf(want_list + o, sizeof want_list - o, "n=%u;", m->n_meta);
        fx_run(&f, m);
        assert_int_equal(f.out.len, 1);
        char got[4096];
        if (strcmp(meta_list(&f, 0, got, sizeof got), want_list) != 0)
            fail_msg("round %d: got \"%s\", want \"%s\"", round, got, want_list);
    }
    fx_close(&f);
}

static void test_strict_mode(void **state)
{
    (void)state;
    struct proc_fx f;
    nr_open(&f, "code: |\n"
                "  let a = 1;\n"
                "  undeclared = a;\n"
                "  return msg;\n");
    fx_run(&f, mk_msg("1", NULL));
    const char *e = one_drop(&f, TP_DROP_JS_ERROR, "code");
    assert_non_null(strstr(e, "ReferenceError"));
    assert_non_null(strstr(e, "undeclared"));
    assert_non_null(strstr(e, "(JS line 2)"));
    fx_close(&f);
}

static void test_undefined_payload(void **state)
{
    (void)state;
    struct proc_fx f;
    nr_open(&f, "code: 'msg.payload = undefined; return msg;'\n");
    fx_run(&f, mk_msg("1", NULL));
    one_drop(&f, TP_DROP_JS_ERROR, "output");
    fx_close(&f);
}

/* ---- limits: each breach is followed by a normal message ---- */

static void expect_ok_after(struct proc_fx *f)
{
    fx_run(f, mk_msg("{\"ok\":1}", NULL));
    assert_int_equal(f->drops.n, 0);
    assert_int_equal(f->out.len, 1);
}

static void limit_case_at(const char *yaml, enum tp_drop_reason want, const char *stage,
                          const char *needle)
{
    struct proc_fx f;
    nr_open(&f, yaml);
    for (int round = 0; round < 2; round++) {
        fx_run(&f, mk_msg("{\"bad\":true}", NULL));
        const char *e = one_drop(&f, want, stage);
        if (needle && !strstr(e, needle))
            fail_msg("error \"%s\" lacks \"%s\"", e, needle);
        expect_ok_after(&f);
    }
    fx_close(&f);
}

static void limit_case(const char *yaml, enum tp_drop_reason want, const char *needle)
{
    limit_case_at(yaml, want, "code", needle);
}

static void test_timeout(void **state)
{
    (void)state;
    limit_case("timeout_ms: 50\n"
               "code: |\n"
               "  if (msg.payload.bad) { for (;;) {} }\n"
               "  return msg;\n",
               TP_DROP_JS_TIMEOUT, "timeout");
    /* a script cannot catch the interrupt */
    limit_case("timeout_ms: 50\n"
               "code: |\n"
               "  if (msg.payload.bad) { try { for (;;) {} } catch (e) { return msg; } }\n"
               "  return msg;\n",
               TP_DROP_JS_TIMEOUT, NULL);
}

static void test_regex_timeout(void **state)
{
    (void)state;
    /* Needs the QuickJS patch that polls the interrupt handler while backtracking. */
    limit_case("timeout_ms: 100\n"
               "code: |\n"
               "  if (msg.payload.bad) /(a+)+$/.test('a'.repeat(40) + 'b');\n"
               "  return msg;\n",
               TP_DROP_JS_TIMEOUT, NULL);
}

static void test_memory_limit(void **state)
{
    (void)state;
    limit_case("timeout_ms: 60000\n"
               "memory_limit_mb: 16\n"
               "code: |\n"
               "  if (msg.payload.bad) { let a = []; for (;;) a.push(new Array(1e6).fill(0)); }\n"
               "  return msg;\n",
               TP_DROP_JS_MEMORY, "out of memory");
    limit_case("timeout_ms: 60000\n"
               "memory_limit_mb: 16\n"
               "code: |\n"
               "  if (msg.payload.bad) { let a = []; for (;;) a.push(new Array(1e6)); }\n"
               "  return msg;\n",
               TP_DROP_JS_MEMORY, NULL);
}

static void test_recursion(void **state)
{
    (void)state;
    limit_case("code: |\n"
               "  function f() { return f(); }\n"
               "  if (msg.payload.bad) f();\n"
               "  return msg;\n",
               TP_DROP_JS_ERROR, "stack overflow");
}

static void test_deep_values(void **state)
{
    (void)state;
    /* JSON.stringify of a very deep payload: an error, not a crash */
    limit_case_at("timeout_ms: 60000\n"
                  "code: |\n"
                  "  if (msg.payload.bad) {\n"
                  "    let o = {};\n"
                  "    for (let i = 0; i < 100000; i++) o = {o};\n"
                  "    msg.payload = o;\n"
                  "  }\n"
                  "  return msg;\n",
                  TP_DROP_JS_ERROR, "output", "stack overflow");
    /* a deeply nested input payload is still delivered (as text at worst) */
    struct proc_fx f;
    nr_open(&f, "code: 'return msg;'\n");
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    fx_run(&f, mk_msg(deep, NULL));
    assert_int_equal(f.out.len + f.drops.n, 1);
    free(deep);
    expect_ok_after(&f);
    fx_close(&f);
}

/* ---- environment ---- */

static void test_no_host_objects(void **state)
{
    (void)state;
    struct proc_fx f;
    nr_open(&f, "code: |\n"
                "  msg.payload = [typeof require, typeof process, typeof setTimeout,\n"
                "                 typeof std, typeof os, typeof console.log, typeof cache.get];\n"
                "  return msg;\n");
    fx_run(&f, mk_msg("1", NULL));
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_payload(&f, 0), "[\"undefined\",\"undefined\",\"undefined\","
                                            "\"undefined\",\"undefined\",\"function\","
                                            "\"function\"]");
    fx_close(&f);
}

static void test_console(void **state)
{
    (void)state;
    enum tp_log_level saved = tp_log_get_level();
    tp_log_set_level(TP_LOG_OFF);
    struct proc_fx f;
    nr_open(&f,
            "code: |\n"
            "  const cyc = {a: 1}; cyc.self = cyc;\n"
            "  console.log('text', 1, {a: [1, 2]}, [3], null, undefined, cyc, Symbol('s'),\n"
            "              () => 1);\n"
            "  console.debug(msg); console.info(msg.meta); console.warn(); console.error('e');\n"
            "  return msg;\n");
    fx_run(&f, mk_msg("1", "k", "v", NULL));
    assert_int_equal(f.out.len, 1);
    tp_log_set_level(TP_LOG_TRACE); /* now with formatting and writing */
    fx_run(&f, mk_msg("2", "k", "v", NULL));
    assert_int_equal(f.out.len, 1);
    tp_log_set_level(saved);
    fx_close(&f);
}

static void test_cache_js(void **state)
{
    (void)state;
    struct proc_fx f;
    struct tp_error err = {0};
    int rc = fx_open(&f, &tp_processor_nodered_js, NR_PATH,
                     "cache_max_entries: 2\n"
                     "code: |\n"
                     "  const op = msg.meta.op, k = msg.meta.key;\n"
                     "  if (op === 'set') { cache.set(k, msg.payload); msg.payload = 'set'; }\n"
                     "  else if (op === 'get') { const v = cache.get(k);\n"
                     "    if (v && typeof v === 'object') v.mutated = true;\n"
                     "    msg.payload = v === undefined ? 'absent' : cache.get(k); }\n"
                     "  else if (op === 'exists') msg.payload = cache.exists(k);\n"
                     "  else if (op === 'delete') msg.payload = cache.delete(k);\n"
                     "  else if (op === 'bad') cache.set(k, () => 1);\n"
                     "  else if (op === 'cyc') { const o = {}; o.o = o; cache.set(k, o); }\n"
                     "  return msg;\n",
                     2, &err);
    assert_int_equal(rc, 0);
#define OP(w, op, key, payload) fx_run_on(&f, w, mk_msg(payload, "op", op, "key", key, NULL))
    OP(0, "set", "a", "{\"x\":1}");
    assert_string_equal(out_payload(&f, 0), "\"set\"");
    OP(1, "get", "a", "0"); /* shared between workers, copied out */
    assert_string_equal(out_payload(&f, 0), "{\"x\":1}");
    OP(0, "exists", "a", "0");
    assert_string_equal(out_payload(&f, 0), "true");
    OP(0, "exists", "nope", "0");
    assert_string_equal(out_payload(&f, 0), "false");
    OP(1, "get", "nope", "0");
    assert_string_equal(out_payload(&f, 0), "\"absent\"");
    /* LRU: a was used last, so adding c evicts b */
    OP(0, "set", "b", "2");
    OP(0, "get", "a", "0");
    OP(1, "set", "c", "3");
    OP(0, "exists", "b", "0");
    assert_string_equal(out_payload(&f, 0), "false");
    OP(0, "exists", "a", "0");
    assert_string_equal(out_payload(&f, 0), "true");
    OP(0, "delete", "a", "0");
    assert_string_equal(out_payload(&f, 0), "true");
    OP(0, "delete", "a", "0");
    assert_string_equal(out_payload(&f, 0), "false");
    /* errors */
    OP(0, "set", "", "1");
    assert_non_null(strstr(one_drop(&f, TP_DROP_JS_ERROR, "code"), "TypeError"));
    OP(0, "get", "", "1");
    assert_non_null(strstr(one_drop(&f, TP_DROP_JS_ERROR, "code"), "non-empty"));
    OP(0, "bad", "k", "1");
    assert_non_null(strstr(one_drop(&f, TP_DROP_JS_ERROR, "code"), "JSON-serialisable"));
    OP(0, "cyc", "k", "1");
    assert_non_null(strstr(one_drop(&f, TP_DROP_JS_ERROR, "code"), "TypeError"));
#undef OP
    fx_close(&f);
}

/* ---- compile once / naive ---- */

static void test_compile_once(void **state)
{
    (void)state;
    fx_metrics = tp_metrics_new(0); /* the processors count in its stats */
    struct tp_stats *st = tp_metrics_stats(fx_metrics);
    uint64_t c0 = TP_STAT_GET(st, programs_compiled), v0 = TP_STAT_GET(st, vms_created);
    struct proc_fx f;
    nr_open(&f, "code: 'msg.payload = msg.payload * 2; return msg;'\n");
    assert_int_equal(TP_STAT_GET(st, programs_compiled) - c0, 1);
    assert_int_equal(TP_STAT_GET(st, vms_created) - v0, 1);
    c0 = TP_STAT_GET(st, programs_compiled);
    v0 = TP_STAT_GET(st, vms_created);
    for (int i = 0; i < 10000; i++) {
        fx_run(&f, mk_msg("21", NULL));
        assert_int_equal(f.out.len, 1);
    }
    assert_string_equal(out_payload(&f, 0), "42");
    assert_int_equal(TP_STAT_GET(st, programs_compiled), c0);
    assert_int_equal(TP_STAT_GET(st, vms_created), v0);
    fx_close(&f);
    tp_metrics_free(fx_metrics);
    fx_metrics = NULL;
}

static void test_naive_mode(void **state)
{
    (void)state;
    fx_metrics = tp_metrics_new(0); /* the processors count in its stats */
    struct tp_stats *st = tp_metrics_stats(fx_metrics);
    tp_js_set_naive(1);
    struct proc_fx f;
    nr_open(&f, "code: 'msg.payload = msg.payload * 2; return msg;'\n");
    tp_js_set_naive(0);
    uint64_t c0 = TP_STAT_GET(st, programs_compiled), v0 = TP_STAT_GET(st, vms_created);
    for (int i = 0; i < 3; i++) {
        fx_run(&f, mk_msg("21", NULL));
        assert_int_equal(f.out.len, 1);
        assert_string_equal(out_payload(&f, 0), "42");
    }
    assert_int_equal(TP_STAT_GET(st, programs_compiled) - c0, 3);
    assert_int_equal(TP_STAT_GET(st, vms_created) - v0, 3);
    fx_close(&f);
    tp_metrics_free(fx_metrics);
    fx_metrics = NULL;
}

int main(void)
{
    tp_log_set_level(TP_LOG_OFF);
    if (getenv("TP_TEST_SKIP")) /* developer aid: e.g. TP_TEST_SKIP=test_regex_timeout */
        cmocka_set_skip_filter(getenv("TP_TEST_SKIP"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_store),
        cmocka_unit_test(test_cache_many),
        cmocka_unit_test(test_payload_marshalling),
        cmocka_unit_test(test_return_object),
        cmocka_unit_test(test_return_filtered),
        cmocka_unit_test(test_return_errors),
        cmocka_unit_test(test_fan_out),
        cmocka_unit_test(test_meta_conversion),
        cmocka_unit_test(test_meta_layout_memos),
        cmocka_unit_test(test_meta_export_paths),
        cmocka_unit_test(test_objects_kept_by_scripts),
        cmocka_unit_test(test_strict_mode),
        cmocka_unit_test(test_undefined_payload),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_regex_timeout),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_recursion),
        cmocka_unit_test(test_deep_values),
        cmocka_unit_test(test_no_host_objects),
        cmocka_unit_test(test_console),
        cmocka_unit_test(test_cache_js),
        cmocka_unit_test(test_compile_once),
        cmocka_unit_test(test_naive_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
