/* Unit tests for the JavaScript limits and drop reasons of issue 9: the
 * fan-out bound (max_fan_out, items 8), truthful drop reasons (`throw null`
 * and "out of memory" texts are js_error, only a memory_limit_mb breach is
 * js_memory, Promise jobs cut by the deadline are js_timeout; item 9) and the
 * byte bound of the cache store (cache_max_bytes, item 12). */
#include "builtin_plugins.h"
#include "js_test_util.h"

#include "pipeline/chain.h"
#include "core/log.h"
#include "js/cache.h"

extern const struct tp_processor_plugin tp_processor_nodered_js;

#define NR_PATH "pipeline.processors[0].nodered_js"

static void nr_open(struct proc_fx *f, const char *yaml)
{
    fx_must_open(f, &tp_processor_nodered_js, NR_PATH, yaml, 1);
}

/* ---- max_fan_out ---- */

static const char fan_code[] = "code: |\n"
                               "  const n = Number(msg.meta.n);\n"
                               "  return Array.from({length: n}, (_, i) => i % 2 ? null :\n"
                               "    {payload: i, meta: msg.meta});\n";

static void test_max_fan_out(void **state)
{
    (void)state;
    struct proc_fx f;
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "max_fan_out: 3\n%s", fan_code);
    nr_open(&f, yaml);
    fx_run(&f, mk_msg("0", "n", "6", NULL)); /* 3 children: null elements are none */
    assert_int_equal(f.out.len, 3);
    assert_int_equal(f.drops.n, 0);
    assert_string_equal(out_meta(&f, 2, "n"), "6");
    fx_run(&f, mk_msg("0", "n", "7", NULL)); /* 4 children */
    const char *e = one_drop(&f, TP_DROP_INVALID_VALUE, "code");
    assert_non_null(strstr(e, "max_fan_out (3)"));
    assert_non_null(strstr(e, "4 returned"));
    fx_close(&f);
    /* the default is 1000 */
    nr_open(&f, fan_code);
    fx_run(&f, mk_msg("0", "n", "2000", NULL));
    assert_int_equal(f.out.len, 1000);
    fx_run(&f, mk_msg("0", "n", "2002", NULL));
    one_drop(&f, TP_DROP_INVALID_VALUE, "code");
    fx_close(&f);
}

/* A tp_drop_fn keeping what the chain reports. */
static void drops_collect(void *opaque, const struct tp_msg *in, const struct tp_drop *d)
{
    (void)in;
    tp_drops_add(opaque, d->reason, d->stage, "%s", d->error);
}

/* Fan-out in two stages (each within the bound, together beyond it): the
 * input is dropped once for the bound, not once per child and memory error. */
static void test_fan_out_per_input(void **state)
{
    (void)state;
    static const char yaml[] =
        "pipeline:\n"
        "  processors:\n"
        "    - tag_processor:\n"
        "        defaults: |\n"
        "          msg.meta.location_path = 'e.s'; msg.meta.data_contract = '_h';\n"
        "          msg.meta.tag_name = 't'; return msg;\n"
        "        conditions:\n"
        "          - if: true\n"
        "            then: |\n"
        "              return Array.from({length: 40}, (_, i) => ({payload: i, meta: msg.meta}));\n"
        "          - if: true\n"
        "            then: |\n"
        "              return Array.from({length: 40}, (_, i) => ({payload: i, meta: msg.meta}));\n"
        "          - if: msg.payload === 3\n"
        "            then: throw new Error('three')\n";
    struct tp_config *cfg;
    struct tp_error err = {0};
    assert_int_equal(tp_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, &err), 0);
    const struct tp_node *procs = tp_node_get(tp_node_get(cfg->root, "pipeline"), "processors");
    struct tp_chain *c;
    if (tp_chain_new(procs, "pipeline.processors", 1, NULL, &c, &err) != 0)
        fail_msg("%s", err.msg);
    struct tp_chain_worker w;
    assert_int_equal(tp_chain_worker_init(&w, c, 0, &err), 0);
    struct tp_batch out;
    tp_batch_init(&out);
    struct tp_drops seen;
    tp_drops_init(&seen);
    struct tp_msg *in = mk_msg("1", NULL);
    /* 40 x 40 = 1600 > 1000: one invalid_value drop, no output */
    assert_int_equal(tp_chain_process(&w, in, &out, drops_collect, &seen), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.v[0].reason, TP_DROP_INVALID_VALUE);
    assert_string_equal(seen.v[0].stage, "conditions[1].then");
    tp_msg_free(in);
    tp_chain_worker_free(&w);
    tp_chain_free(c);
    tp_config_free(cfg);
    tp_batch_free(&out);
    tp_drops_free(&seen);
}

/* ---- drop reasons ---- */

static void test_reason_js_error(void **state)
{
    (void)state;
    struct proc_fx f;
    nr_open(&f, "code: |\n"
                "  if (msg.payload === 1) throw null;\n"
                "  if (msg.payload === 2) throw new Error('out of memory');\n"
                "  if (msg.payload === 3) throw new InternalError('out of memory');\n"
                "  return msg;\n");
    for (int i = 1; i <= 3; i++) {
        char p[8];
        snprintf(p, sizeof(p), "%d", i);
        fx_run(&f, mk_msg(p, NULL));
        one_drop(&f, TP_DROP_JS_ERROR, "code");
    }
    fx_close(&f);
}

/* A memory breach caught by the script, then an ordinary error: js_error. */
static void test_reason_caught_memory(void **state)
{
    (void)state;
    struct proc_fx f;
    nr_open(&f, "memory_limit_mb: 16\n"
                "code: |\n"
                "  try { let a = []; for (;;) a.push(new Array(1e6).fill(0)); } catch (e) {}\n"
                "  throw new TypeError('later');\n");
    fx_run(&f, mk_msg("1", NULL));
    assert_non_null(strstr(one_drop(&f, TP_DROP_JS_ERROR, "code"), "later"));
    fx_close(&f);
}

static void test_promise_job_timeout(void **state)
{
    (void)state;
    struct proc_fx f;
    nr_open(&f, "timeout_ms: 50\n"
                "code: |\n"
                "  if (msg.payload === 1) Promise.resolve().then(() => { for (;;) {} });\n"
                "  return msg;\n");
    fx_run(&f, mk_msg("1", NULL));
    assert_int_equal(f.out.len, 1); /* the message itself was done */
    assert_int_equal(f.drops.n, 1);
    assert_int_equal(f.drops.v[0].reason, TP_DROP_JS_TIMEOUT);
    assert_string_equal(f.drops.v[0].stage, "promise job");
    fx_run(&f, mk_msg("2", NULL));
    assert_int_equal(f.out.len, 1);
    assert_int_equal(f.drops.n, 0);
    fx_close(&f);
}

/* ---- cache_max_bytes ---- */

static void test_cache_bytes(void **state)
{
    (void)state;
    struct tp_js_cache *c = tp_js_cache_new(100, 100);
    char v[100];
    memset(v, 'x', sizeof(v));
    assert_int_equal(tp_js_cache_set(c, "a", 1, v, 40), 0);
    assert_int_equal(tp_js_cache_set(c, "b", 1, v, 40), 0);
    assert_int_equal(tp_js_cache_bytes(c), 82);
    free(tp_js_cache_get(c, "a", 1, NULL)); /* b is now least recently used */
    assert_int_equal(tp_js_cache_set(c, "c", 1, v, 40), 0);
    assert_false(tp_js_cache_exists(c, "b", 1));
    assert_true(tp_js_cache_exists(c, "a", 1));
    assert_int_equal(tp_js_cache_bytes(c), 82);
    assert_int_equal(tp_js_cache_set(c, "a", 1, "1", 1), 0); /* replacing counts anew */
    assert_int_equal(tp_js_cache_bytes(c), 43);
    assert_int_equal(tp_js_cache_set(c, "big", 3, v, 98), TP_INVAL);
    assert_int_equal(tp_js_cache_bytes(c), 43);               /* nothing changed */
    assert_int_equal(tp_js_cache_set(c, "big", 3, v, 97), 0); /* exactly the bound */
    assert_int_equal(tp_js_cache_count(c), 1);
    assert_true(tp_js_cache_delete(c, "big", 3));
    assert_int_equal(tp_js_cache_bytes(c), 0);
    tp_js_cache_free(c);
}

static void test_cache_bytes_js(void **state)
{
    (void)state;
    struct proc_fx f;
    nr_open(&f, "cache_max_bytes: 1000\n"
                "code: |\n"
                "  cache.set(msg.meta.k, 'v'.repeat(Number(msg.meta.n)));\n"
                "  msg.payload = ['a', 'b', 'c'].filter((k) => cache.exists(k));\n"
                "  return msg;\n");
    fx_run(&f, mk_msg("0", "k", "a", "n", "400", NULL));
    fx_run(&f, mk_msg("0", "k", "b", "n", "400", NULL));
    fx_run(&f, mk_msg("0", "k", "c", "n", "400", NULL)); /* a evicted */
    assert_string_equal(out_payload(&f, 0), "[\"b\",\"c\"]");
    fx_run(&f, mk_msg("0", "k", "a", "n", "1000", NULL)); /* 1 + 1002 bytes of JSON */
    const char *e = one_drop(&f, TP_DROP_JS_ERROR, "code");
    assert_non_null(strstr(e, "RangeError"));
    assert_non_null(strstr(e, "cache_max_bytes (1000)"));
    fx_close(&f);
}

int main(void)
{
    tp_plugins_use(&tp_builtin_plugins);
    tp_log_set_level(TP_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_fan_out),         cmocka_unit_test(test_fan_out_per_input),
        cmocka_unit_test(test_reason_js_error),     cmocka_unit_test(test_reason_caught_memory),
        cmocka_unit_test(test_promise_job_timeout), cmocka_unit_test(test_cache_bytes),
        cmocka_unit_test(test_cache_bytes_js),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
