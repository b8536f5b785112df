/* Unit tests for the tag_processor (SPEC 3): stage order, every matching
 * condition, fan-out followed by conditions, stage names in drops, output
 * construction through uns.c, syntax error positions, sloppy `if`
 * expressions, and no compilation or VM creation per message. */
#include "js_test_util.h"

#include "core/log.h"
#include "core/metrics.h"
#include "core/stats.h"

extern const struct tp_processor_plugin tp_processor_tag_processor;

#define TP_PATH "pipeline.processors[0].tag_processor"

#define DEFAULTS                                                                                   \
    "defaults: |\n"                                                                                \
    "  msg.meta.location_path = \"enterprise.plant1.machiningArea.cnc-line.cnc5.plc123\";\n"       \
    "  msg.meta.data_contract = \"_historian\";\n"                                                 \
    "  msg.meta.tag_name = msg.meta.opcua_tag_name;\n"                                             \
    "  return msg;\n"

#define TOPIC_BASE "umh.v1.enterprise.plant1.machiningArea.cnc-line.cnc5.plc123._historian."

static void tp_open(struct proc_fx *f, const char *yaml)
{
    fx_must_open(f, &tp_processor_tag_processor, TP_PATH, yaml, 1);
}

static struct tp_msg *tag_msg(const char *payload, const char *node, const char *tag)
{
    return mk_msg(payload, "opcua_node_id", node, "opcua_tag_name", tag, "timestamp_ms",
                  "1710237600000", NULL);
}

static void test_spec_example(void **state)
{
    (void)state;
    struct proc_fx f;
    tp_open(&f, DEFAULTS "conditions:\n"
                         "  - if: msg.meta.opcua_node_id === \"ns=1;i=2245\"   # the node\n"
                         "    then: |\n"
                         "      msg.meta.virtual_path = \"axis.x.position\";\n"
                         "      return msg;\n"
                         "advancedProcessing: |\n"
                         "  msg.payload = parseFloat(msg.payload) * 2;\n"
                         "  return msg;\n");
    fx_run(&f, tag_msg("23.5", "ns=1;i=2245", "pos"));
    assert_int_equal(f.drops.n, 0);
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_meta(&f, 0, "umh_topic"), TOPIC_BASE "axis.x.position.pos");
    assert_string_equal(out_meta(&f, 0, "topic"), TOPIC_BASE "axis.x.position.pos");
    assert_string_equal(out_payload(&f, 0), "{\"timestamp_ms\":1710237600000,\"value\":47}");
    assert_string_equal(out_meta(&f, 0, "opcua_node_id"), "ns=1;i=2245");

    /* the condition does not match: no virtual_path */
    fx_run(&f, tag_msg("11", "ns=1;i=1", "state"));
    assert_int_equal(f.drops.n, 0);
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_meta(&f, 0, "umh_topic"), TOPIC_BASE "state");
    assert_string_equal(out_payload(&f, 0), "{\"timestamp_ms\":1710237600000,\"value\":22}");
    /* parseFloat("hello") * 2 is NaN */
    fx_run(&f, tag_msg("hello", "ns=1;i=1", "state"));
    one_drop(&f, TP_DROP_INVALID_VALUE, "output");
    fx_close(&f);
}

static void test_string_and_number_values(void **state)
{
    (void)state;
    struct proc_fx f;
    tp_open(&f, DEFAULTS);
    fx_run(&f, tag_msg("hello", "n", "t"));
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_payload(&f, 0), "{\"timestamp_ms\":1710237600000,\"value\":\"hello\"}");
    /* the input's own digits are kept when the value is unchanged */
    fx_run(&f, tag_msg("12345678901234567890", "n", "t"));
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_payload(&f, 0),
                        "{\"timestamp_ms\":1710237600000,\"value\":12345678901234567890}");
    fx_run(&f, tag_msg("{\"b\":1,\"a\":2}", "n", "t"));
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_payload(&f, 0),
                        "{\"timestamp_ms\":1710237600000,\"value\":\"{\\\"a\\\":2,\\\"b\\\":1}\"}");
    fx_close(&f);
}

static void test_all_conditions_apply(void **state)
{
    (void)state;
    struct proc_fx f;
    tp_open(&f,
            DEFAULTS "conditions:\n"
                     "  - if: true\n"
                     "    then: 'msg.meta.seen = (msg.meta.seen || \"\") + \"a\"; return msg;'\n"
                     "  - if: msg.meta.seen === \"a\"\n"
                     "    then: 'msg.meta.seen += \"b\"; return msg;'\n"
                     "  - if: false\n"
                     "    then: 'msg.meta.seen += \"X\"; return msg;'\n"
                     "  - if: msg.meta.seen.length === 2 // a trailing comment\n"
                     "    then: 'msg.meta.seen += \"c\"; msg.meta.n = 5; return msg;'\n"
                     "  - if: msg.meta.n === \"5\"\n"
                     "    then: 'msg.meta.seen += \"d\"; return msg;'\n");
    fx_run(&f, tag_msg("1", "n", "t"));
    assert_int_equal(f.drops.n, 0);
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_meta(&f, 0, "seen"), "abcd");
    assert_string_equal(out_meta(&f, 0, "n"), "5");
    fx_close(&f);
}

static void test_fan_out_then_conditions(void **state)
{
    (void)state;
    struct proc_fx f;
    tp_open(&f, DEFAULTS "conditions:\n"
                         "  - if: msg.meta.opcua_tag_name === \"both\"\n"
                         "    then: |\n"
                         "      return [\n"
                         "        {payload: msg.payload.x, meta: {...msg.meta, tag_name: \"x\"}},\n"
                         "        null,\n"
                         "        {payload: msg.payload.y, meta: {...msg.meta, tag_name: \"y\"}},\n"
                         "      ];\n"
                         "  - if: msg.meta.tag_name === \"y\"\n"
                         "    then: 'msg.meta.virtual_path = \"axis\"; return msg;'\n"
                         "  - if: true\n"
                         "    then: 'msg.payload = msg.payload + 1; return msg;'\n"
                         "advancedProcessing: 'msg.meta.adv = \"1\"; return msg;'\n");
    fx_run(&f, tag_msg("{\"x\":10,\"y\":20}", "n", "both"));
    assert_int_equal(f.drops.n, 0);
    assert_int_equal(f.out.len, 2);
    assert_string_equal(out_meta(&f, 0, "umh_topic"), TOPIC_BASE "x");
    assert_string_equal(out_meta(&f, 1, "umh_topic"), TOPIC_BASE "axis.y");
    assert_string_equal(out_payload(&f, 0), "{\"timestamp_ms\":1710237600000,\"value\":11}");
    assert_string_equal(out_payload(&f, 1), "{\"timestamp_ms\":1710237600000,\"value\":21}");
    assert_string_equal(out_meta(&f, 0, "adv"), "1");
    assert_string_equal(out_meta(&f, 1, "adv"), "1");
    assert_null(out_meta(&f, 0, "virtual_path"));
    fx_close(&f);
}

static void test_children_do_not_share(void **state)
{
    (void)state;
    struct proc_fx f;
    tp_open(&f, DEFAULTS "conditions:\n"
                         "  - if: true\n"
                         "    then: 'return [msg, msg];'\n"
                         "  - if: true\n"
                         "    then: |\n"
                         "      if (cache.exists('first')) return msg;\n"
                         "      cache.set('first', 1);\n"
                         "      msg.meta.tag_name = 'changed'; msg.payload.v = 2;\n"
                         "      return msg;\n"
                         "advancedProcessing: 'msg.payload = msg.payload.v; return msg;'\n");
    fx_run(&f, tag_msg("{\"v\":1}", "n", "t"));
    assert_int_equal(f.out.len, 2);
    assert_string_equal(out_meta(&f, 0, "tag_name"), "changed");
    assert_string_equal(out_meta(&f, 1, "tag_name"), "t");
    assert_string_equal(out_payload(&f, 0), "{\"timestamp_ms\":1710237600000,\"value\":2}");
    assert_string_equal(out_payload(&f, 1), "{\"timestamp_ms\":1710237600000,\"value\":1}");
    fx_close(&f);
}

static void test_stage_names(void **state)
{
    (void)state;
    struct proc_fx f;
    tp_open(&f, DEFAULTS "conditions:\n"
                         "  - if: msg.meta.opcua_tag_name === \"iferr\" && nosuch.x\n"
                         "    then: 'return msg;'\n"
                         "  - if: msg.meta.opcua_tag_name === \"filter\"\n"
                         "    then: 'return null;'\n"
                         "  - if: msg.meta.opcua_tag_name === \"throw\"\n"
                         "    then: |\n"
                         "      const a = 1;\n"
                         "      throw new Error('boom ' + a);\n"
                         "  - if: msg.meta.opcua_tag_name === \"spin\"\n"
                         "    then: 'for (;;) {}'\n"
                         "advancedProcessing: |\n"
                         "  if (msg.meta.opcua_tag_name === 'adv') return 42;\n"
                         "  return msg;\n"
                         "timeout_ms: 30\n");
    const char *e;
    fx_run(&f, tag_msg("1", "n", "iferr"));
    e = one_drop(&f, TP_DROP_JS_ERROR, "conditions[0].if");
    assert_non_null(strstr(e, "ReferenceError"));
    assert_non_null(strstr(e, "nosuch"));
    assert_non_null(strstr(e, "(JS line 1)"));
    fx_run(&f, tag_msg("1", "n", "filter"));
    assert_string_equal(one_drop(&f, TP_DROP_FILTERED, "conditions[1].then"), "");
    fx_run(&f, tag_msg("1", "n", "throw"));
    e = one_drop(&f, TP_DROP_JS_ERROR, "conditions[2].then");
    assert_non_null(strstr(e, "Error: boom 1"));
    assert_non_null(strstr(e, "(JS line 2)"));
    fx_run(&f, tag_msg("1", "n", "spin"));
    one_drop(&f, TP_DROP_JS_TIMEOUT, "conditions[3].then");
    fx_run(&f, tag_msg("1", "n", "adv"));
    e = one_drop(&f, TP_DROP_JS_ERROR, "advancedProcessing");
    assert_non_null(strstr(e, "number"));
    fx_run(&f, mk_msg("1", "opcua_tag_name", "t", NULL)); /* defaults ok, tag ok */
    assert_int_equal(f.out.len, 1);
    fx_close(&f);

    tp_open(&f, "defaults: 'return msg.meta.keep === \"yes\" ? msg : undefined;'\n");
    fx_run(&f, tag_msg("1", "n", "t"));
    assert_string_equal(one_drop(&f, TP_DROP_FILTERED, "defaults"), "");
    fx_run(&f, mk_msg("1", "keep", "yes", "tag_name", "t", NULL));
    e = one_drop(&f, TP_DROP_MISSING_FIELD, "output");
    assert_non_null(strstr(e, "location_path"));
    assert_non_null(strstr(e, "data_contract"));
    fx_close(&f);
}

static void test_output_drops(void **state)
{
    (void)state;
    struct proc_fx f;
    tp_open(&f, DEFAULTS "advancedProcessing: |\n"
                         "  if (msg.meta.opcua_tag_name === 'bad.topic.') return msg;\n"
                         "  if (msg.payload === 'nan') msg.payload = NaN;\n"
                         "  return msg;\n");
    fx_run(&f, tag_msg("1", "n", "bad.topic."));
    one_drop(&f, TP_DROP_INVALID_TOPIC, "output");
    fx_run(&f, tag_msg("nan", "n", "t"));
    one_drop(&f, TP_DROP_INVALID_VALUE, "output");
    fx_run(&f, tag_msg("1", "n", "t"));
    assert_int_equal(f.out.len, 1);
    fx_close(&f);
}

static void expect_config_error(const char *yaml, int line, int col, const char *needle)
{
    struct proc_fx f;
    struct tp_error err = {0};
    int rc = fx_open(&f, &tp_processor_tag_processor, TP_PATH, yaml, 1, &err);
    assert_int_equal(rc, TP_CONFIG);
    if (!strstr(err.msg, needle))
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, needle);
    if (line > 0) {
        assert_string_equal(err.file, "test.yaml");
    }
    if (err.line != line || err.col != col)
        fail_msg("position %d:%d, want %d:%d (%s)", err.line, err.col, line, col, err.msg);
    fx_close(&f);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_config_error("defaults: |\n"
                        "  return msg;\n"
                        "conditions:\n"
                        "  - if: msg.meta.a === '1'\n"
                        "    then: 'return msg;'\n"
                        "  - if: msg.meta.a === '2'\n"
                        "    then: |\n"
                        "      msg.payload = 1;\n"
                        "      return foo(msg;\n",
                        9, 7, TP_PATH ".conditions[1].then: SyntaxError: ");
    expect_config_error("defaults: |\n"
                        "  msg.payload = 1;\n"
                        "  return foo(msg;\n",
                        3, 3, "(JS line 2)");
    expect_config_error("conditions:\n"
                        "  - if: return true\n"
                        "    then: 'return msg;'\n",
                        2, 9, TP_PATH ".conditions[0].if: SyntaxError");
    expect_config_error("advancedProcessing: 'return msg;;; }'\n", 1, 22,
                        TP_PATH ".advancedProcessing: SyntaxError");
    /* function bodies are strict mode: `with` does not compile */
    expect_config_error("defaults: |\n"
                        "  with (msg) { return msg; }\n",
                        2, 3, "SyntaxError");
    expect_config_error("timeout_ms: 0\n", 1, 13, "timeout_ms: expected an integer in 1..86400000");
    expect_config_error("memory_limit_mb: 0\n", 1, 18, "memory_limit_mb");
    expect_config_error("cache_max_entries: 0\n", 1, 20, "cache_max_entries");
}

static void test_sloppy_if(void **state)
{
    (void)state;
    struct proc_fx f;
    tp_open(&f,
            DEFAULTS "conditions:\n"
                     "  - if: (function () { with (msg.meta) { return tag_name === 't'; } })()\n"
                     "    then: 'msg.meta.virtual_path = \" null \"; return msg;'\n");
    fx_run(&f, tag_msg("1", "n", "t"));
    assert_int_equal(f.out.len, 1);
    assert_string_equal(out_meta(&f, 0, "umh_topic"), TOPIC_BASE "t");
    fx_close(&f);
}

static void test_empty_stages(void **state)
{
    (void)state;
    struct proc_fx f;
    tp_open(&f, DEFAULTS "conditions:\n"
                         "  - if: ''\n"
                         "    then: 'return null;'\n"
                         "  - if: 'true'\n"
                         "    then: \"  \\n\"\n"
                         "advancedProcessing: ''\n");
    fx_run(&f, tag_msg("1", "n", "t"));
    assert_int_equal(f.drops.n, 0);
    assert_int_equal(f.out.len, 1);
    fx_close(&f);
}

static void test_no_compile_per_message(void **state)
{
    (void)state;
    fx_metrics = tp_metrics_new(0); /* the processors count in its stats */
    struct tp_stats *st = tp_metrics_stats(fx_metrics);
    uint64_t c0 = TP_STAT_GET(st, programs_compiled), v0 = TP_STAT_GET(st, vms_created);
    struct proc_fx f;
    tp_open(&f, DEFAULTS "conditions:\n"
                         "  - if: msg.meta.opcua_node_id === 'a'\n"
                         "    then: 'msg.meta.virtual_path = \"va\"; return msg;'\n"
                         "  - if: msg.meta.opcua_node_id === 'b'\n"
                         "    then: 'return [msg, {payload: 0, meta: msg.meta}];'\n"
                         "advancedProcessing: 'msg.payload = msg.payload * 2; return msg;'\n");
    assert_int_equal(TP_STAT_GET(st, programs_compiled) - c0, 6);
    assert_int_equal(TP_STAT_GET(st, vms_created) - v0, 1);
    c0 = TP_STAT_GET(st, programs_compiled);
    v0 = TP_STAT_GET(st, vms_created);
    size_t outs = 0;
    for (int i = 0; i < 10000; i++) {
        fx_run(&f, tag_msg("21", i % 2 ? "a" : "b", "t"));
        outs += f.out.len;
        assert_int_equal(f.drops.n, 0);
    }
    assert_int_equal(outs, 15000);
    assert_int_equal(TP_STAT_GET(st, programs_compiled), c0);
    assert_int_equal(TP_STAT_GET(st, vms_created), v0);
    fx_close(&f);
    tp_metrics_free(fx_metrics);
    fx_metrics = NULL;
}

/* The output construction remembers the last valid location_path and
 * data_contract of the worker (uns.c): valid and invalid parts in any order,
 * a data_contract text as location_path (other rules), prefixes and a part
 * too long to remember, each checked as on its own. */
static void test_topic_parts_in_a_row(void **state)
{
    (void)state;
    char long_loc[220];
    for (size_t i = 0; i + 1 < sizeof long_loc; i++)
        long_loc[i] = i % 10 == 9 ? '.' : 'a';
    long_loc[sizeof long_loc - 1] = '\0';
    char long_topic[300];
    snprintf(long_topic, sizeof long_topic, "umh.v1.%s._h.t", long_loc);
    static const char *const bad = NULL;
    const struct {
        const char *loc, *dc, *topic; /* topic NULL: dropped as invalid_topic */
    } cases[] = {
        {"a.b", "_h", "umh.v1.a.b._h.t"},
        {"a.b", "_h", "umh.v1.a.b._h.t"},
        {"a..b", "_h", bad},
        {"a.b", "_h", "umh.v1.a.b._h.t"},
        {"_h", "_h", bad},
        {"a.b", "_x.y", bad},
        {"a.b", "h", bad},
        {"a.b.c", "_h", "umh.v1.a.b.c._h.t"},
        {"a.b.", "_h", bad},
        {"a.b!", "_h", bad},
        {long_loc, "_h", long_topic},
        {long_loc, "_h", long_topic},
        {"a.b", "_h", "umh.v1.a.b._h.t"},
    };
    struct proc_fx f;
    tp_open(&f, "defaults: |\n"
                "  msg.meta.location_path = msg.meta.loc;\n"
                "  msg.meta.data_contract = msg.meta.dc;\n"
                "  msg.meta.tag_name = 't';\n"
                "  return msg;\n");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx_run(&f, mk_msg("1", "loc", cases[i].loc, "dc", cases[i].dc, NULL));
        if (!cases[i].topic) {
            one_drop(&f, TP_DROP_INVALID_TOPIC, "output");
            continue;
        }
        assert_int_equal(f.drops.n, 0);
        assert_int_equal(f.out.len, 1);
        assert_string_equal(out_meta(&f, 0, "umh_topic"), cases[i].topic);
    }
    fx_close(&f);
}

int main(void)
{
    tp_log_set_level(TP_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_string_and_number_values),
        cmocka_unit_test(test_all_conditions_apply),
        cmocka_unit_test(test_fan_out_then_conditions),
        cmocka_unit_test(test_children_do_not_share),
        cmocka_unit_test(test_stage_names),
        cmocka_unit_test(test_output_drops),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_sloppy_if),
        cmocka_unit_test(test_empty_stages),
        cmocka_unit_test(test_no_compile_per_message),
        cmocka_unit_test(test_topic_parts_in_a_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
