/* Allocation-failure injection (issue 9): the test binary is linked with
 * -Wl,--wrap for malloc, calloc, realloc, strdup and strndup (see
 * CMakeLists.txt), so every allocation of tagproc_core and QuickJS goes
 * through a hook that can fail the Nth one. Each scenario (config loading with
 * JS compilation, the envelope decoder, message building, a processor chain)
 * runs once per N until it completes without reaching N: every run must end
 * in success or a clean error status, never a crash, and the sanitizer build
 * checks that nothing leaks. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "builtin_plugins.h"
#include "config/config.h"
#include "pipeline/chain.h"
#include "core/json.h"
#include "core/log.h"
#include "core/msg.h"
#include "ops/lint.h"
#include "pipeline/pipeline.h"

/* ---- the hook ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static long fail_at; /* 0: never */
static long calls;   /* allocations since arm() */
static int paused;   /* inside JS_NewContext: allocations are not counted */

static int fail_now(void)
{
    return fail_at && !paused && ++calls == fail_at;
}

/* Two parts of QuickJS do not survive a failed allocation: a context's
 * intrinsics (JS_AddIntrinsic* ignore their failures; JS_FreeRuntime then
 * asserts on the half-built objects) and the compiler (a failed bytecode
 * buffer reaches js_def_malloc(0), which asserts). Both run only at start-up,
 * on a reload and when a worker starts, never per message, so the injection
 * leaves JS_NewContext and JS_Eval alone and tests everything around them. */
#include "quickjs.h"

JSContext *__real_JS_NewContext(JSRuntime *rt);
JSContext *__wrap_JS_NewContext(JSRuntime *rt);
JSValue __real_JS_Eval(JSContext *ctx, const char *input, size_t input_len, const char *filename,
                       int eval_flags);
JSValue __wrap_JS_Eval(JSContext *ctx, const char *input, size_t input_len, const char *filename,
                       int eval_flags);

JSContext *__wrap_JS_NewContext(JSRuntime *rt)
{
    paused++;
    JSContext *ctx = __real_JS_NewContext(rt);
    paused--;
    return ctx;
}

JSValue __wrap_JS_Eval(JSContext *ctx, const char *input, size_t input_len, const char *filename,
                       int eval_flags)
{
    paused++;
    JSValue v = __real_JS_Eval(ctx, input, input_len, filename, eval_flags);
    paused--;
    return v;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fail_now() ? NULL : __real_strndup(s, n);
}

static void arm(long n)
{
    calls = 0;
    fail_at = n;
}

/* Disarms; 1 when the Nth allocation was reached (the failure happened). */
static int disarm(void)
{
    int hit = fail_at && calls >= fail_at;
    fail_at = 0;
    return hit;
}

/* Runs scenario(ctx) with allocation N failing, for N = 1, 2, ... until a run
 * completes without reaching N. Runs with allocation counts in the
 * thousands take every Nth with a stride so the loop stays a few hundred
 * runs. Returns how many failures were injected. */
static long inject_all(const char *name, int (*scenario)(void *ctx, int injected), void *ctx)
{
    arm(LONG_MAX); /* count the allocations of a clean run */
    assert_int_equal(scenario(ctx, 0), 0);
    long total = calls;
    disarm();
    long stride = total > 600 ? total / 300 : 1, injected = 0;
    for (long n = 1; n <= total + 1; n += n < 200 ? 1 : stride) {
        if (getenv("TP_ALLOC_VERBOSE"))
            fprintf(stderr, "%s: failing allocation %ld of %ld\n", name, n, total);
        arm(n);
        int rc = scenario(ctx, 1);
        int hit = disarm();
        if (!hit) {
            assert_int_equal(rc, 0);
            break;
        }
        injected++;
        if (rc == 0)
            continue; /* the failure was absorbed (e.g. a cache, or a retry) */
        if (rc != TP_NOMEM && rc != TP_CONFIG && rc != TP_PARSE && rc != TP_JS)
            fail_msg("%s: allocation %ld failed: unexpected status %d", name, n, rc);
    }
    printf("%s: %ld allocations, %ld injected failures\n", name, total, injected);
    return injected;
}

/* ---- scenarios: 0 on success, else the status (err text checked) ---- */

static const char config_text[] =
    "input:\n"
    "  stdin: {}\n"
    "pipeline:\n"
    "  processors:\n"
    "    - tag_processor:\n"
    "        defaults: |\n"
    "          msg.meta.location_path = 'enterprise.site.area';\n"
    "          msg.meta.data_contract = '_historian';\n"
    "          msg.meta.tag_name = msg.meta.opcua_tag_name;\n"
    "          return msg;\n"
    "        conditions:\n"
    "          - if: msg.meta.opcua_node_id === 'ns=1;i=2245'\n"
    "            then: |\n"
    "              msg.meta.virtual_path = 'axis.x';\n"
    "              cache.set('last', msg.payload);\n"
    "              return [msg, {payload: cache.get('last'), meta: msg.meta}];\n"
    "        advancedProcessing: |\n"
    "          msg.payload = {v: msg.payload, n: Object.keys(msg.meta).length};\n"
    "          return msg;\n"
    "output:\n"
    "  stdout: {}\n";

static int checked(int rc, const struct tp_error *err)
{
    if (rc != 0 && !err->msg[0])
        fail_msg("status %d without an error message", rc);
    return rc;
}

static int load_config(void *ctx, int injected)
{
    (void)ctx;
    (void)injected;
    struct tp_config *cfg = NULL;
    struct tp_error err = {0};
    int rc = tp_config_load_string("t.yaml", config_text, strlen(config_text), &cfg, &err);
    if (rc == 0) {
        const struct tp_node *procs = tp_node_get(tp_node_get(cfg->root, "pipeline"), "processors");
        struct tp_chain *c = NULL;
        rc = tp_chain_new(procs, "pipeline.processors", 1, NULL, &c, &err);
        tp_chain_free(c);
    }
    tp_config_free(cfg);
    return checked(rc, &err);
}

static const char *const lines[] = {
    "{\"payload\":23.5,\"meta\":{\"opcua_node_id\":\"ns=1;i=2245\",\"a\":\"1\",\"a\":\"2\"}}",
    "{\"payload\":{\"x\":[1,\"\\u00e9\",{\"y\":null}]},\"meta\":{\"k\\\"q\":\"v\\n\"}}",
    "{\"payload\":\"text\",\"other\":[true,false]}",
    "{\"payload\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}",
    "not json",
};

static int decode_envelopes(void *ctx, int injected)
{
    (void)ctx;
    (void)injected;
    int rc = 0;
    struct tp_buf out;
    tp_buf_init(&out);
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]) && (rc == 0 || rc == TP_PARSE); i++) {
        struct tp_msg *m = tp_msg_new();
        if (!m) {
            rc = TP_NOMEM;
            break;
        }
        struct tp_error err = {0};
        rc = checked(
            tp_json_decode_envelope(lines[i], strlen(lines[i]), m, TP_JSON_MAX_META_KEYS, &err),
            &err);
        if (rc == 0)
            rc = tp_json_encode_envelope(m, &out);
        tp_msg_free(m);
        if (rc == TP_PARSE && i == 4)
            rc = 0; /* the malformed line is meant to fail */
    }
    tp_buf_free(&out);
    return rc;
}

static int build_messages(void *ctx, int injected)
{
    (void)ctx;
    (void)injected;
    struct tp_batch b;
    tp_batch_init(&b);
    int rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++) {
        struct tp_msg *m = tp_msg_new();
        if (!m) {
            rc = TP_NOMEM;
            break;
        }
        char k[32], v[64];
        for (int j = 0; j < 12 && rc == 0; j++) {
            snprintf(k, sizeof(k), "key%d", j);
            snprintf(v, sizeof(v), "value %d of message %d", j, i);
            rc = tp_msg_meta_sets(m, k, v);
        }
        if (rc == 0)
            rc = tp_msg_set_payload(m, "{\"v\":1}", 7);
        if (rc == 0)
            rc = tp_msg_meta_dedupe(m);
        struct tp_msg *c = rc == 0 ? tp_msg_clone(m) : NULL;
        if (rc == 0 && !c)
            rc = TP_NOMEM;
        tp_msg_free(m);
        if (c)
            rc = tp_batch_push(&b, c); /* frees c on failure */
    }
    tp_batch_free(&b);
    return rc;
}

struct chain_fx {
    struct tp_config *cfg;
    struct tp_chain *chain;
    struct tp_chain_worker w;
    struct tp_msg *in[3];
    size_t drops;
};

static void count_drop(void *opaque, const struct tp_msg *in, const struct tp_drop *d)
{
    (void)in;
    (void)d;
    ((struct chain_fx *)opaque)->drops++;
}

/* A fresh worker (its VM's allocations start from nothing) runs the inputs;
 * then the long-lived worker must still process normally. */
static int run_chain(void *ctx, int injected)
{
    struct chain_fx *fx = ctx;
    struct tp_chain_worker w;
    struct tp_error err = {0};
    int rc = checked(tp_chain_worker_init(&w, fx->chain, 1, &err), &err);
    if (rc != 0)
        return rc;
    struct tp_batch out;
    tp_batch_init(&out);
    for (size_t i = 0; i < 3 && rc == 0; i++) {
        size_t outs = out.len, drops = fx->drops;
        rc = tp_chain_process(&w, fx->in[i], &out, count_drop, fx);
        if (rc == 0 && out.len == outs && fx->drops == drops) /* a drop not recorded */
            fail_msg("input %zu: neither output nor drop, processing successful", i);
    }
    if (rc == 0 && !injected) /* 2 + 2 (fan-out) + 0 (no tag name: dropped) */
        assert_int_equal(out.len, 4);
    tp_batch_free(&out);
    tp_chain_worker_free(&w);
    if (injected) {
        struct tp_batch again;
        tp_batch_init(&again);
        paused++;
        assert_int_equal(tp_chain_process(&fx->w, fx->in[1], &again, count_drop, fx), 0);
        paused--;
        assert_int_equal(again.len, 2);
        tp_batch_free(&again);
    }
    return rc;
}

/* Lint: a finding lost to out of memory must fail the lint (TP_NOMEM) or be
 * replaced by an "out of memory" finding, never pass as a shorter report. */
static const char lint_text[] = "input:\n"
                                "  stdin: {}\n"
                                "  bogus_key: 1\n"
                                "pipeline:\n"
                                "  processors:\n"
                                "    - tag_processor:\n"
                                "        defaults: 'return msg;'\n"
                                "        conditions:\n"
                                "          - if: msg.meta.a === 'x'\n"
                                "            then: 'return msg;'\n"
                                "          - if: msg.meta.a === 'x'\n"
                                "            then: 'return msg;'\n"
                                "output:\n"
                                "  stdout: {}\n"
                                "unknown_section: {}\n";

struct lint_fx {
    struct tp_config *cfg;
    size_t findings; /* of a clean run */
};

static int lint_findings(void *ctx, int injected)
{
    struct lint_fx *fx = ctx;
    struct tp_lint_report rep = {0};
    int rc = tp_lint_config(fx->cfg, 0, &rep);
    int said = 0;
    for (size_t i = 0; i < rep.n; i++)
        said |= strstr(rep.v[i].text, "out of memory") != NULL;
    if (rc == TP_OK && injected && rep.n != fx->findings && !said)
        fail_msg("lint: %zu of %zu findings, reported as complete", rep.n, fx->findings);
    if (!injected)
        fx->findings = rep.n;
    tp_lint_report_free(&rep);
    return rc;
}

static void test_lint_findings(void **state)
{
    (void)state;
    struct lint_fx fx = {0};
    struct tp_error err = {0};
    assert_int_equal(tp_config_load_string("t.yaml", lint_text, strlen(lint_text), &fx.cfg, &err),
                     0);
    assert_true(inject_all("lint findings", lint_findings, &fx) > 2);
    assert_true(fx.findings >= 2);
    tp_config_free(fx.cfg);
}

/* Pipeline: an input drop whose report cannot be built (out of memory) is
 * fatal, never silently gone (BEHAVIOUR 4.2). The input's only read returns
 * undecodable records and the end; one allocation fails: the drop's message
 * when the read has recorded its drops, else the recording itself (a fifth
 * drop outgrows the list's first 4 slots; a record's raw copy). */
enum drop_fail { FAIL_REPORT, FAIL_FIFTH_DROP, FAIL_RAW_COPY };
static enum drop_fail drop_fail;

static int drop_in_open(const void *config, void **state, struct tp_error *err)
{
    (void)config, (void)err;
    *state = NULL;
    return TP_OK;
}

static int drop_in_read(void *state, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                        struct tp_error *err)
{
    (void)state, (void)batch, (void)max, (void)err;
    int n = drop_fail == FAIL_FIFTH_DROP ? 5 : 1;
    for (int i = 1; i <= n; i++) {
        if (i == n && drop_fail == FAIL_FIFTH_DROP)
            arm(1);
        tp_drops_add(drops, TP_DROP_INVALID_INPUT, "input", "input line %d: not JSON", i);
    }
    if (drop_fail != FAIL_FIFTH_DROP)
        arm(1);
    if (drop_fail == FAIL_RAW_COPY)
        tp_drops_set_raw(drops, "not JSON", 8);
    return TP_EOF;
}

static void drop_in_close(void *state)
{
    (void)state;
}

static const struct tp_input_plugin drop_input = {
    .name = "fake", .open = drop_in_open, .read = drop_in_read, .close = drop_in_close};

static int drops_seen;

static void on_dropped(void *ud, const struct tp_msg *in, const char *proc, const struct tp_drop *d)
{
    (void)ud, (void)in, (void)proc, (void)d;
    drops_seen++;
}

static void run_input_drop(enum drop_fail how)
{
    static const char text[] = "input: {fake: {}}\n"
                               "pipeline: {processors: []}\n"
                               "output: {stdout: {}}\n";
    struct tp_config *cfg = NULL;
    struct tp_pipeline *p = NULL;
    struct tp_error err = {0};
    assert_int_equal(tp_config_load_string("t.yaml", text, strlen(text), &cfg, &err), 0);
    struct tp_pipeline_opts opts = {.input_plugin = &drop_input};
    assert_int_equal(tp_pipeline_new(cfg, &opts, &p, &err), 0);
    struct tp_pipeline_hooks hooks = {.dropped = on_dropped};
    tp_pipeline_set_hooks(p, &hooks);
    drop_fail = how;
    drops_seen = 0;
    int rc = tp_pipeline_run(p, &err);
    assert_true(disarm());
    tp_pipeline_free(p);
    tp_config_free(cfg);
    if (rc == TP_OK)
        fail_msg("case %d: an input drop was lost to out of memory: %d reported, run successful",
                 (int)how, drops_seen);
    if (!strstr(err.msg, "processing failed: out of memory"))
        fail_msg("case %d: status %d, error '%s'", (int)how, rc, err.msg);
}

static void test_pipeline_input_drop(void **state)
{
    (void)state;
    run_input_drop(FAIL_REPORT);
}

/* The drop list must not overwrite a recorded drop when it cannot grow, nor
 * report a drop without the record the input attached to it. */
static void test_pipeline_input_drop_not_recorded(void **state)
{
    (void)state;
    run_input_drop(FAIL_FIFTH_DROP);
    run_input_drop(FAIL_RAW_COPY);
}

static void test_config_loading(void **state)
{
    (void)state;
    assert_true(inject_all("config loading", load_config, NULL) > 100);
}

static void test_envelope_decoder(void **state)
{
    (void)state;
    assert_true(inject_all("envelope decoder", decode_envelopes, NULL) > 10);
}

static void test_message_building(void **state)
{
    (void)state;
    assert_true(inject_all("message building", build_messages, NULL) > 10);
}

static void test_processor_chain(void **state)
{
    (void)state;
    struct chain_fx fx = {0};
    struct tp_error err = {0};
    assert_int_equal(
        tp_config_load_string("t.yaml", config_text, strlen(config_text), &fx.cfg, &err), 0);
    const struct tp_node *procs = tp_node_get(tp_node_get(fx.cfg->root, "pipeline"), "processors");
    assert_int_equal(tp_chain_new(procs, "pipeline.processors", 1, NULL, &fx.chain, &err), 0);
    assert_int_equal(tp_chain_worker_init(&fx.w, fx.chain, 0, &err), 0);
    const char *const in[3] = {lines[0], "{\"payload\":1,\"meta\":{\"opcua_tag_name\":\"t\"}}",
                               "{\"payload\":2}"};
    for (int i = 0; i < 3; i++) {
        fx.in[i] = tp_msg_new();
        assert_int_equal(
            tp_json_decode_envelope(in[i], strlen(in[i]), fx.in[i], TP_JSON_MAX_META_KEYS, &err),
            0);
    }
    tp_msg_meta_sets(fx.in[0], "opcua_tag_name", "x"); /* fans out to 2 */
    tp_msg_meta_sets(fx.in[1], "opcua_node_id", "ns=1;i=2245");
    assert_true(inject_all("processor chain", run_chain, &fx) > 10);
    for (int i = 0; i < 3; i++)
        tp_msg_free(fx.in[i]);
    tp_chain_worker_free(&fx.w);
    tp_chain_free(fx.chain);
    tp_config_free(fx.cfg);
}

int main(void)
{
    tp_plugins_use(&tp_builtin_plugins);
    tp_log_set_level(TP_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_loading),
        cmocka_unit_test(test_envelope_decoder),
        cmocka_unit_test(test_message_building),
        cmocka_unit_test(test_processor_chain),
        cmocka_unit_test(test_lint_findings),
        cmocka_unit_test(test_pipeline_input_drop),
        cmocka_unit_test(test_pipeline_input_drop_not_recorded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
