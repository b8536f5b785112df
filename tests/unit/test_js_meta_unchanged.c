/* The export of metadata entries a rule left unchanged (src/js/bridge.c,
 * unchanged_prefix): they are copied from the input message instead of being
 * converted back from JavaScript. Each case runs several times in a row (the
 * bridge's layout memos warm) and checks the output metadata, in order, is
 * exactly what converting every entry back gives. */
#include "js_test_util.h"

#include "core/log.h"

extern const struct tp_processor_plugin tp_processor_nodered_js;
extern const struct tp_processor_plugin tp_processor_tag_processor;

#define NR_PATH "pipeline.processors[0].nodered_js"

static void expect_one(struct proc_fx *f, const char *want, const char *what)
{
    assert_int_equal(f->drops.n, 0);
    assert_int_equal(f->out.len, 1);
    expect_meta(f, 0, want, strlen(want), what);
}

/* Entries left alone, changed, deleted, re-added, swapped, given other types,
 * hidden, or moved under another key with the very same string. */
static void test_unchanged_and_changed_entries(void **state)
{
    (void)state;
    static const struct {
        const char *op, *v1, *v2, *want;
    } cases[] = {
        {"none", "a", "b", "k1=a;k2=b;k3=c;op=none;"},
        {"add", "a", "b", "k1=a;k2=b;k3=c;op=add;k4=d;"},
        {"chg1", "a", "b", "k1=x;k2=b;k3=c;op=chg1;"},
        {"chg3", "a", "b", "k1=a;k2=b;k3=x;op=chg3;"},
        {"del2", "a", "b", "k1=a;k3=c;op=del2;"},
        {"readd", "a", "b", "k1=a;k3=c;op=readd;k2=b;"},
        {"swap", "a", "b", "k1=b;k2=a;k3=c;op=swap;"},
        {"types", "a", "b", "k1=7;k2=true;op=types;"},
        {"obj", "a", "b", "k1=a;k2={\"x\":1};k3=c;op=obj;"},
        {"copy", "a", "b", "k1=a;k2=b;k3=c;op=copy;"},
        {"hide", "a", "b", "k1=a;k3=c;op=hide;"},
        /* k2 takes slot 0 with the string k1 was made from (equal values
         * share one string): it is k2's entry, not k1's */
        {"rebuild", "s", "s", "k2=s;k3=c;op=rebuild;"},
        {"none", "s", "s", "k1=s;k2=s;k3=c;op=none;"},
    };
    struct proc_fx f;
    fx_must_open(
        &f, &tp_processor_nodered_js, NR_PATH,
        "code: |\n"
        "  const op = msg.meta.op;\n"
        "  if (op === 'add') msg.meta.k4 = 'd';\n"
        "  if (op === 'chg1') msg.meta.k1 = 'x';\n"
        "  if (op === 'chg3') msg.meta.k3 = 'x';\n"
        "  if (op === 'del2') delete msg.meta.k2;\n"
        "  if (op === 'readd') { const t = msg.meta.k2; delete msg.meta.k2;"
        " msg.meta.k2 = t; }\n"
        "  if (op === 'swap') { const t = msg.meta.k1; msg.meta.k1 = msg.meta.k2;"
        " msg.meta.k2 = t; }\n"
        "  if (op === 'types') { msg.meta.k1 = 7; msg.meta.k2 = true;"
        " msg.meta.k3 = null; }\n"
        "  if (op === 'obj') msg.meta.k2 = {x: 1};\n"
        "  if (op === 'copy') msg.meta.k1 = ('#' + msg.meta.k1).slice(1);\n"
        "  if (op === 'hide') Object.defineProperty(msg.meta, 'k2', {enumerable: false});\n"
        "  if (op === 'rebuild') msg.meta = {k2: msg.meta.k2, k3: msg.meta.k3, op: op};\n"
        "  return msg;\n",
        1);
    size_t n = sizeof(cases) / sizeof(cases[0]);
    char what[64];
    for (size_t step = 0; step < 6 * n; step++) {
        /* each case three times in a row, forwards, then backwards */
        size_t i = step < 3 * n ? step / 3 : n - 1 - (step - 3 * n) / 3;
        snprintf(what, sizeof what, "step %zu (%s)", step, cases[i].op);
        fx_run(&f, mk_msg("0", "k1", cases[i].v1, "k2", cases[i].v2, "k3", "c", "op", cases[i].op,
                          NULL));
        expect_one(&f, cases[i].want, what);
        assert_string_equal(out_payload(&f, 0), "0");
    }
    fx_close(&f);
}

/* Non-ASCII keys and values, and invalid UTF-8 (U+FFFD in JavaScript, EF BF
 * BD out), left unchanged: converted back, never copied byte for byte. */
static void test_unchanged_non_ascii(void **state)
{
    (void)state;
    struct proc_fx f;
    fx_must_open(&f, &tp_processor_nodered_js, NR_PATH, "code: return msg;\n", 1);
    static const struct {
        const char *k, *v, *want;
    } cases[] = {
        {"v", "\xc3\xa9", "a=1;v=\xc3\xa9;z=2;"},
        {"k\xc3\xa9", "v", "a=1;k\xc3\xa9=v;z=2;"},
        {"bad", "\xff", "a=1;bad=\xef\xbf\xbd;z=2;"},
        {"k\xff", "v", "a=1;k\xef\xbf\xbd=v;z=2;"},
        {"over", "\xc0\xaf", "a=1;over=\xef\xbf\xbd;z=2;"},
        {"cesu", "\xed\xa0\x80", "a=1;cesu=\xed\xa0\x80;z=2;"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        for (int rep = 0; rep < 3; rep++) {
            fx_run(&f, mk_msg("0", "a", "1", cases[i].k, cases[i].v, "z", "2", NULL));
            expect_one(&f, cases[i].want, cases[i].k);
        }
    fx_close(&f);
}

/* Unchanged entries in front of a large one the rule replaces: they are
 * copied one by one, so the output does not carry the large value's bytes;
 * when the large one is kept, the input's strings are copied whole. */
static void test_unchanged_before_replaced_large_entry(void **state)
{
    (void)state;
    static char big[4001];
    memset(big, 'x', sizeof big - 1);
    struct proc_fx f;
    fx_must_open(&f, &tp_processor_nodered_js, NR_PATH,
                 "code: |\n"
                 "  if (msg.meta.shrink === 'yes') msg.meta.big = 's';\n"
                 "  return msg;\n",
                 1);
    for (int rep = 0; rep < 6; rep++) {
        const char *shrink = rep % 3 == 2 ? "no" : "yes"; /* twice replaced, once kept */
        fx_run(&f, mk_msg("0", "a", "1", "shrink", shrink, "big", big, "z", "2", NULL));
        assert_int_equal(f.drops.n, 0);
        assert_int_equal(f.out.len, 1);
        const struct tp_msg *m = f.out.msgs[0];
        if (shrink[0] == 'y') {
            expect_one(&f, "a=1;shrink=yes;big=s;z=2;", "replaced");
            assert_true(m->strs_len < 1000);
        } else {
            assert_int_equal(m->n_meta, 4);
            assert_int_equal(m->meta[2].val_len, sizeof big - 1);
            assert_string_equal(tp_msg_meta_get(m, "z", NULL), "2");
        }
    }
    fx_close(&f);
}

/* The seed rules on a Kafka message (kafka_* entries, the envelope's keys and
 * two more headers): the 13 input entries pass unchanged, in order, before
 * the rules' keys and umh_topic; fan-out children get theirs too. */
static void test_tag_processor_wide_metadata(void **state)
{
    (void)state;
    struct proc_fx f;
    fx_must_open(&f, &tp_processor_tag_processor, "pipeline.processors[0].tag_processor",
                 "defaults: |\n"
                 "  msg.meta.location_path = 'enterprise.plant1';\n"
                 "  msg.meta.data_contract = '_historian';\n"
                 "  msg.meta.tag_name = msg.meta.opcua_tag_name;\n"
                 "  return msg;\n"
                 "conditions:\n"
                 "  - if: msg.meta.opcua_node_id === 'ns=1;i=2201'\n"
                 "    then: |\n"
                 "      msg.meta.virtual_path = 'axis';\n"
                 "      return msg;\n"
                 "  - if: msg.meta.opcua_node_id === 'ns=1;i=2202'\n"
                 "    then: |\n"
                 "      return [msg, {payload: 9, meta: msg.meta}];\n",
                 1);
    char want[1024], what[64];
    for (int i = 0; i < 9; i++) {
        int node = 2200 + i % 3;
        char id[32], tag[16], off[16];
        snprintf(id, sizeof id, "ns=1;i=%d", node);
        snprintf(tag, sizeof tag, "Tag%d", i % 3);
        snprintf(off, sizeof off, "%d", 1000 + i);
        fx_run(&f, mk_msg("1.5", "kafka_topic", "umh.input", "kafka_partition", "0", "kafka_offset",
                          off, "kafka_timestamp_ms", "1700000000000", "kafka_key", id,
                          "opcua_node_id", id, "opcua_tag_name", tag, "opcua_tag_group", "Line1",
                          "opcua_tag_type", "number", "opcua_source_timestamp",
                          "2023-11-14T22:13:20.000Z", "timestamp_ms", "1700000000000",
                          "content_type", "application/json", "source", "plc-7", NULL));
        size_t outs = node == 2202 ? 2 : 1;
        assert_int_equal(f.drops.n, 0);
        assert_int_equal(f.out.len, outs);
        char topic[128];
        snprintf(topic, sizeof topic, "umh.v1.enterprise.plant1._historian.%s%s",
                 node == 2201 ? "axis." : "", tag);
        snprintf(want, sizeof want,
                 "kafka_topic=umh.input;kafka_partition=0;kafka_offset=%s;"
                 "kafka_timestamp_ms=1700000000000;kafka_key=%s;opcua_node_id=%s;"
                 "opcua_tag_name=%s;opcua_tag_group=Line1;opcua_tag_type=number;"
                 "opcua_source_timestamp=2023-11-14T22:13:20.000Z;timestamp_ms=1700000000000;"
                 "content_type=application/json;source=plc-7;location_path=enterprise.plant1;"
                 "data_contract=_historian;tag_name=%s;%sumh_topic=%s;topic=%s;",
                 off, id, id, tag, tag, node == 2201 ? "virtual_path=axis;" : "", topic, topic);
        for (size_t o = 0; o < outs; o++) {
            snprintf(what, sizeof what, "message %d output %zu", i, o);
            expect_meta(&f, o, want, strlen(want), what);
        }
    }
    fx_close(&f);
}

int main(void)
{
    tp_log_set_level(TP_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unchanged_and_changed_entries),
        cmocka_unit_test(test_unchanged_non_ascii),
        cmocka_unit_test(test_unchanged_before_replaced_large_entry),
        cmocka_unit_test(test_tag_processor_wide_metadata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
