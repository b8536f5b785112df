/* Native `if` evaluation and the literal index (src/js/native_if.c, engine.c):
 * which expressions qualify, and for qualifying shapes and near misses the
 * same outputs, drops and per-rule metrics as the forced JavaScript path
 * (TAGPROC_NATIVE_IF=0), byte for byte. */
#pragma GCC diagnostic ignored "-Wunused-function" /* helpers this file does not use */
#include "js_test_util.h"

#include "core/buf.h"
#include "js/native_if.h"
#include "js/vm.h"
#include "ops/metrics.h"

extern const struct tp_processor_plugin tp_processor_tag_processor;

#define TP_PATH "pipeline.processors[0].tag_processor"

static int qualifies(const char *src, const char *key, const char *lit, int neg)
{
    struct tp_js_native_if ni;
    if (!tp__js_native_if_parse(src, &ni))
        return 0;
    int ok = strcmp(ni.key, key) == 0 && strcmp(ni.lit, lit) == 0 && ni.negated == neg;
    tp__js_native_if_fini(&ni);
    return ok;
}

static void test_parse(void **state)
{
    (void)state;
    assert_true(
        qualifies("msg.meta.opcua_node_id === \"ns=1;i=2245\"", "opcua_node_id", "ns=1;i=2245", 0));
    assert_true(qualifies("  msg.meta.a=='x'  ", "a", "x", 0));
    assert_true(qualifies("msg.meta[\"a-b\"] !== 'x'", "a-b", "x", 1));
    assert_true(qualifies("msg.meta['k'] != \"\"", "k", "", 1));
    assert_true(qualifies("((msg.meta.$k_1 === \"a\\\"b\\\\c\\n\"))  // comment\n", "$k_1",
                          "a\"b\\c\n", 0));
    assert_true(qualifies("\"x\" === msg.meta.a", "a", "x", 0));
    assert_true(qualifies("\n( 'x' !=\tmsg.meta.a )\n", "a", "x", 1));
    static const char *const no[] = {
        "msg.meta.a === b",
        "msg.meta.a.length === 3",
        "msg.meta.a === 3",
        "msg.meta.a === `x`",
        "msg.meta.a === \"x\" && msg.meta.b === \"y\"",
        "msg.meta.a === \"x\" || true",
        "msg.meta.a === \"\\u0078\"",
        "msg.meta.a === \"\\x78\"",
        "msg.meta.a === \"\xc3\xa4\"",
        "msg.meta.a = \"x\"",
        "msg.meta.a ==== \"x\"",
        "msg.meta.a === \"x\")",
        "(msg.meta.a === \"x\"",
        "msg.meta.a === \"x\" /* c */",
        "msg.meta[\"0\"] === \"x\"",
        "msg.meta[a] === \"x\"",
        "msg.meta.a() === \"x\"",
        "msg.metadata.a === \"x\"",
        "msg . meta.a === \"x\"",
        "msg.meta.a === \"x\"; 1",
        "\"x\" === \"x\"",
        "msg.meta.a === msg.meta.b",
        "msg.meta.a === \"x\" ? 1 : 0",
        "msg.meta.\\u0061 === \"x\"",
        "",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        struct tp_js_native_if ni;
        if (tp__js_native_if_parse(no[i], &ni)) {
            tp__js_native_if_fini(&ni);
            fail_msg("qualified but must not: %s", no[i]);
        }
    }
}

/* Everything observable of one processed message, as text. */
static void describe(struct proc_fx *f, struct tp_buf *b)
{
    for (size_t i = 0; i < f->out.len; i++) {
        struct tp_msg *m = f->out.msgs[i];
        tp_buf_printf(b, "out %zu: %s\n", i, m->payload);
        for (uint32_t k = 0; k < m->n_meta; k++)
            tp_buf_printf(b, "  %s=%s\n", tp_msg_meta_key(m, k), tp_msg_meta_val(m, k));
    }
    for (size_t i = 0; i < f->drops.n; i++)
        tp_buf_printf(b, "drop: %s at %s: %s\n", tp_drop_reason_name(f->drops.v[i].reason),
                      f->drops.v[i].stage, f->drops.v[i].error);
}

/* Rule counters of the scrape (evaluations, matches, errors). */
static void rule_lines(struct tp_buf *b)
{
    struct tp_buf s;
    tp_buf_init(&s);
    assert_int_equal(tp_metrics_write(fx_metrics, &s, NULL, NULL), 0);
    const char *p = s.data;
    while (p && *p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (strncmp(p, "tagproc_rule_evaluations_total{", 31) == 0 ||
            strncmp(p, "tagproc_rule_matches_total{", 27) == 0 ||
            strncmp(p, "tagproc_rule_errors_total{", 26) == 0)
            tp_buf_printf(b, "%.*s\n", (int)n, p);
        p = e ? e + 1 : NULL;
    }
    tp_buf_free(&s);
}

/* Runs every message through the processor built from yaml; returns the text. */
static char *run_all(const char *yaml, int native, struct tp_msg *(*make)(int), int count)
{
    tp_js_set_native_if(native);
    fx_metrics = tp_metrics_new(1);
    struct proc_fx f;
    fx_must_open(&f, &tp_processor_tag_processor, TP_PATH, yaml, 1);
    struct tp_buf b;
    tp_buf_init(&b);
    for (int i = 0; i < count; i++) {
        tp_buf_printf(&b, "== message %d\n", i);
        fx_run(&f, make(i));
        describe(&f, &b);
    }
    fx_close(&f);
    rule_lines(&b);
    tp_metrics_free(fx_metrics);
    fx_metrics = NULL;
    tp_js_set_native_if(1);
    return b.data;
}

static void same_both_ways(const char *yaml, struct tp_msg *(*make)(int), int count)
{
    char *js = run_all(yaml, 0, make, count);
    char *nat = run_all(yaml, 1, make, count);
    if (strcmp(js, nat) != 0) {
        size_t d = 0;
        while (js[d] && js[d] == nat[d])
            d++;
        size_t from = d > 400 ? d - 400 : 0;
        fprintf(stderr, "first difference at %zu\n--- javascript\n%.600s\n--- native\n%.600s\n", d,
                js + from, nat + from);
        fail_msg("native and JavaScript results differ");
    }
    assert_non_null(strstr(js, "out 0"));
    free(js);
    free(nat);
}

static const char *const values[] = {
    "a", "b", "c", "f", "x", "5", "", "zz", "\xc3\xa4", "\xe2\x82\xac", "a\"b\\c\n", "p", NULL,
};
#define NVALUES (sizeof(values) / sizeof(values[0]))

/* Message i: key k set to values[i % NVALUES] (NULL: absent). */
static struct tp_msg *make_msg(int i)
{
    const char *v = values[(size_t)i % NVALUES];
    if (!v)
        return mk_msg("1", "opcua_tag_name", "t", "other", "o", "timestamp_ms", "1710237600000",
                      NULL);
    return mk_msg("1", "opcua_tag_name", "t", "k", v, "other", "o", "timestamp_ms", "1710237600000",
                  NULL);
}

#define DEFAULTS                                                                                   \
    "defaults: |\n"                                                                                \
    "  msg.meta.location_path = \"e.p\";\n"                                                        \
    "  msg.meta.data_contract = \"_historian\";\n"                                                 \
    "  msg.meta.tag_name = msg.meta.opcua_tag_name;\n"                                             \
    "  return msg;\n"                                                                              \
    "conditions:\n"

static const char yaml_run[] =
    DEFAULTS "  - if: msg.meta.k === \"a\"\n"
             "    then: 'msg.meta.k = \"b\"; msg.meta.log = \"1\"; return msg;'\n"
             "  - if: msg.meta.k === \"a\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"2\"; return msg;'\n"
             "  - if: msg.meta.k == 'b'\n"
             "    then: 'msg.meta.k = \"c\"; msg.meta.log += \"3\"; return msg;'\n"
             "  - if: (msg.meta[\"k\"] === \"c\") // c\n"
             "    then: 'msg.meta.k = 5; msg.meta.log += \"4\"; return msg;'\n"
             "  - if: msg.meta.k === \"5\"\n"
             "    then: 'delete msg.meta.k; msg.meta.log += \"5\"; return msg;'\n"
             "  - if: msg.meta.k === \"x\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"6\"; return msg;'\n"
             "  - if: '\"c\" === msg.meta.k'\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"7\"; return msg;'\n"
             "  - if: msg.meta.k === \"a\\\"b\\\\c\\n\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"q\"; return msg;'\n"
             "  - if: msg.meta.k === \"zz\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"z\"; return msg;'\n"
             "  - if: msg.meta.k === \"p\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"p\"; return msg;'\n"
             "  - if: msg.meta.k !== \"zz\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"8\"; return msg;'\n"
             "  - if: msg.meta.k != \"\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"9\"; return msg;'\n"
             "  - if: msg.meta.other === \"o\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"o\"; return msg;'\n"
             "  - if: msg.meta.k === \"b\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"b\"; return msg;'\n";

static const char yaml_fan[] =
    DEFAULTS "  - if: msg.meta.k === \"f\"\n"
             "    then: |\n"
             "      return [{payload: 1, meta: {...msg.meta, k: \"g\"}}, null,\n"
             "              {payload: 2, meta: {...msg.meta, k: \"f2\"}}, {payload: 3, meta: "
             "{...msg.meta}},\n"
             "              {payload: 4, meta: {...msg.meta, k: \"drop\"}}];\n"
             "  - if: msg.meta.k === \"g\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"g\"; return msg;'\n"
             "  - if: msg.meta.k === \"f2\"\n"
             "    then: 'msg.meta.log = \"f2\"; msg.meta.k = \"g\"; return msg;'\n"
             "  - if: msg.meta.k === \"drop\"\n"
             "    then: return null\n"
             "  - if: msg.meta.k === \"f\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"f\"; return msg;'\n"
             "  - if: msg.meta.k === \"g\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"G\"; return msg;'\n"
             "  - if: msg.meta.k === \"a\"\n"
             "    then: 'return [msg, {payload: 9, meta: {k: \"g\", opcua_tag_name: \"u\"}}];'\n"
             "  - if: msg.meta.k === \"g\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"H\"; return msg;'\n";

static const char yaml_near[] =
    DEFAULTS "  - if: \"true\"\n"
             "    then: 'globalThis.b = \"a\"; return msg;'\n"
             "  - if: msg.meta.k === \"a\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"1\"; return msg;'\n"
             "  - if: msg.meta.k.length === 1\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"2\"; return msg;'\n"
             "  - if: msg.meta.k == 5\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"3\"; return msg;'\n"
             "  - if: msg.meta.k === `x`\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"4\"; return msg;'\n"
             "  - if: msg.meta.k === \"a\" && msg.meta.other === \"o\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"5\"; return msg;'\n"
             "  - if: msg.meta.k === \"\\u0061\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"6\"; return msg;'\n"
             "  - if: msg.meta.k === \"ä\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"7\"; return msg;'\n"
             "  - if: msg.meta.toString === \"x\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"8\"; return msg;'\n"
             "  - if: msg.meta.__proto__ !== \"x\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"9\"; return msg;'\n"
             "  - if: msg.meta.constructor == \"x\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"10\"; return msg;'\n"
             "  - if: msg.meta.k === \"b\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"11\"; return msg;'\n"
             "  - if: msg.meta.k === b\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"12\"; return msg;'\n";

static const char yaml_tricky[] =
    DEFAULTS "  - if: (msg.meta.k === \"5\" && (msg.meta.k = 5), false)\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"0\"; return msg;'\n"
             "  - if: msg.meta.k == \"5\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"1\"; return msg;'\n"
             "  - if: msg.meta.k === \"5\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"2\"; return msg;'\n"
             "  - if: msg.meta.k === \"p\"\n"
             "    then: 'Object.prototype.pp = \"x\"; return msg;'\n"
             "  - if: msg.meta.pp === \"x\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"3\"; return msg;'\n"
             "  - if: msg.meta.pp === \"x\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"4\"; return msg;'\n"
             "  - if: msg.meta.k === \"zz\"\n"
             "    then: 'Object.defineProperty(msg.meta, \"g\", {get() { return \"a\"; }, "
             "enumerable: true}); return msg;'\n"
             "  - if: msg.meta.g === \"a\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"5\"; return msg;'\n"
             "  - if: msg.meta.g === \"a\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"6\"; return msg;'\n"
             "  - if: msg.meta.k === \"x\"\n"
             "    then: 'return {payload: msg.payload, meta: Object.assign(Object.create(null), "
             "msg.meta, {k: \"y\"})};'\n"
             "  - if: msg.meta.k === \"y\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"7\"; return msg;'\n"
             "  - if: msg.meta.k === \"y\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"8\"; return msg;'\n"
             "  - if: msg.meta.k === \"c\"\n"
             "    then: 'throw new Error(\"boom\")'\n"
             "  - if: msg.meta.k === \"c\"\n"
             "    then: 'msg.meta.log = (msg.meta.log || \"\") + \"9\"; return msg;'\n";

/* A run whose thens change the key: later conditions start or stop matching;
 * absent keys, !==, !=, reversed operands, escapes. */
static void test_run_key_changes(void **state)
{
    (void)state;
    char *js = run_all(yaml_run, 0, make_msg, 1);
    assert_non_null(strstr(js, "log=134589o\n")); /* k = "a" goes through 7 conditions */
    free(js);
    same_both_ways(yaml_run, make_msg, 2 * (int)NVALUES);
}

/* Fan-out inside a run: each child continues through the rest of it. */
static void test_fan_out_in_run(void **state)
{
    (void)state;
    same_both_ways(yaml_fan, make_msg, 2 * (int)NVALUES);
}

/* Shapes that must stay JavaScript, between native conditions. */
static void test_near_misses(void **state)
{
    (void)state;
    same_both_ways(yaml_near, make_msg, 2 * (int)NVALUES);
}

/* Values a native read cannot decide: numbers left by a JavaScript if, keys
 * added to Object.prototype, getters, a meta without prototype, errors. */
static void test_fallbacks(void **state)
{
    (void)state;
    same_both_ways(yaml_tricky, make_msg, 2 * (int)NVALUES);
}

/* One rule per tag: many conditions on one key, with matches found through
 * the index (the mapping workload's shape). */
static char yaml_many[1 << 16];

static struct tp_msg *make_node(int i)
{
    char node[32];
    snprintf(node, sizeof(node), "ns=1;i=%d", 2200 + (i * 7) % 230);
    return mk_msg("2.5", "opcua_tag_name", "t", "opcua_node_id", node, "timestamp_ms",
                  "1710237600000", NULL);
}

static void test_many_conditions(void **state)
{
    (void)state;
    struct tp_buf y;
    tp_buf_init(&y);
    tp_buf_puts(&y, DEFAULTS);
    for (int i = 0; i < 200; i++) {
        tp_buf_printf(&y,
                      "  - if: msg.meta.opcua_node_id === \"ns=1;i=%d\"\n"
                      "    then: 'msg.meta.virtual_path = \"axis.n%d\"; return msg;'\n",
                      2200 + i % 150, i);
    }
    snprintf(yaml_many, sizeof(yaml_many), "%s", y.data);
    tp_buf_free(&y);
    same_both_ways(yaml_many, make_node, 300);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),          cmocka_unit_test(test_run_key_changes),
        cmocka_unit_test(test_fan_out_in_run), cmocka_unit_test(test_near_misses),
        cmocka_unit_test(test_fallbacks),      cmocka_unit_test(test_many_conditions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
