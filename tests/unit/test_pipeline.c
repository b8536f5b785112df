/* The pipeline in-process with a fake input (numbered messages, a read
 * error or a hook on request) and a fake output (records what it gets, may
 * fail a batch), around a nodered_js processor that tags, refuses, fans out
 * and delays messages: input order kept with several workers, a reload
 * between batches switching every later batch to the new processors, a
 * refused reload (bad rules; a trial worker that cannot start) keeping the
 * running ones, the fatal paths (input read error, output failure), drop accounting, two
 * pipelines of one process counting apart, and without processors the input's own
 * messages handed to the output (not copies, acks taken off), also across a reload,
 * every message handed back to the input (recycle) once its input was acknowledged, and
 * an input with ack_batch getting each batch's tokens in one call, in order. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "builtin_plugins.h"
#include "config/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/plugin.h"
#include "core/stats.h"
#include "pipeline/pipeline.h"

#define MAX_MSGS 5000

/* ---------- fake input: payload "i", a failure or a hook ---------- */

static struct {
    pthread_mutex_t lock;
    int total;   /* messages to read */
    int next;    /* messages read so far */
    int fail_at; /* read fails (TP_IO) once this many were read; -1: never */
    int hook_at; /* before reading message hook_at, hook() runs; -1: never */
    void (*hook)(void);
    int acks[MAX_MSGS];
    int n_acks;
    const struct tp_msg *made[MAX_MSGS]; /* the message of each number, as read */
    int recycled, recycled_early;        /* handed back; of those before their ack */
    int tokenless_mod;                   /* > 0: message i % mod == 0 has no ack token */
    int ack_calls, null_tokens;          /* ack_batch: calls, NULL tokens handed over */
} in;

static int in_open(const void *config, void **state, struct tp_error *err)
{
    (void)config, (void)err;
    *state = &in;
    return TP_OK;
}

static int in_read(void *state, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                   struct tp_error *err)
{
    (void)state, (void)drops;
    if (in.hook && in.next == in.hook_at) {
        in.hook();
        in.hook = NULL;
    }
    pthread_mutex_lock(&in.lock);
    int rc = TP_OK;
    for (size_t k = 0; k < max && in.next < in.total; k++) {
        if (in.next == in.fail_at) {
            rc = tp_error_set(err, TP_IO, "fake input: refused at %d", in.next);
            break;
        }
        struct tp_msg *m = tp_msg_new();
        char p[16];
        snprintf(p, sizeof(p), "%d", in.next);
        assert_int_equal(tp_msg_set_payload(m, p, strlen(p)), TP_OK);
        if (!in.tokenless_mod || in.next % in.tokenless_mod)
            m->ack = (void *)(uintptr_t)(in.next + 1);
        in.made[in.next] = m;
        in.next++;
        assert_int_equal(tp_batch_push(batch, m), TP_OK);
        if (in.next == in.hook_at)
            break; /* the hook runs between two batches */
    }
    if (rc == TP_OK && in.next >= in.total)
        rc = TP_EOF;
    pthread_mutex_unlock(&in.lock);
    return rc;
}

static void in_ack(void *state, void *token)
{
    (void)state;
    pthread_mutex_lock(&in.lock);
    in.acks[in.n_acks++] = (int)(uintptr_t)token - 1;
    pthread_mutex_unlock(&in.lock);
}

static void in_ack_batch(void *state, void *const *tokens, size_t n)
{
    (void)state;
    pthread_mutex_lock(&in.lock);
    in.ack_calls++;
    for (size_t k = 0; k < n; k++) {
        if (tokens[k])
            in.acks[in.n_acks++] = (int)(uintptr_t)tokens[k] - 1;
        else
            in.null_tokens++;
    }
    pthread_mutex_unlock(&in.lock);
}

static void in_close(void *state)
{
    (void)state;
}

/* Messages handed back (inputs and processor outputs, payload "i"): each
 * must come after input i was acknowledged. */
static void in_recycle(void *state, struct tp_batch *b)
{
    (void)state;
    pthread_mutex_lock(&in.lock);
    for (size_t k = 0; k < b->len; k++) {
        in.recycled++;
        if (atoi(b->msgs[k]->payload) >= in.n_acks)
            in.recycled_early++;
        tp_msg_free(b->msgs[k]);
    }
    b->len = 0;
    pthread_mutex_unlock(&in.lock);
}

static const struct tp_input_plugin fake_input = {.name = "fake",
                                                  .open = in_open,
                                                  .read = in_read,
                                                  .ack = in_ack,
                                                  .close = in_close,
                                                  .recycle = in_recycle};

/* The same input acknowledging a batch at a time (ack_batch, no ack). */
static const struct tp_input_plugin fake_batch_ack_input = {
    .name = "fake", .open = in_open, .read = in_read, .ack_batch = in_ack_batch, .close = in_close};
static const struct tp_input_plugin *input_plugin = &fake_input;

/* ---------- the processor: tags, refuses, fans out, delays ---------- */

/* A pipeline of `threads` workers whose nodered_js processor tags every
 * message with gen, refuses (js_error) i % drop_mod == 1, fans out
 * i % fan_mod == 2 into two copies and is slow on i % 5 == 0, so that
 * workers finish out of order. */
static char *yaml(int threads, char gen, int drop_mod, int fan_mod)
{
    char *text = NULL;
    int n = asprintf(
        &text,
        "input: {fake: {}}\n"
        "pipeline:\n"
        "  threads: %d\n"
        "  batch_size: 8\n"
        "  processors:\n"
        "    - nodered_js:\n"
        "        code: |\n"
        "          const i = Number(msg.payload);\n"
        "          if (i %% 5 === 0) { let x = 0; for (let k = 0; k < 2000; k++) x += k; }\n"
        "          if (%d > 0 && i %% %d === 1) throw new Error('message ' + i + ' refused');\n"
        "          msg.meta.gen = '%c';\n"
        "          if (%d > 0 && i %% %d === 2) return [msg, {payload: msg.payload, meta: "
        "msg.meta}];\n"
        "          return msg;\n"
        "output: {fake: {}}\n",
        threads, drop_mod, drop_mod ? drop_mod : 1, gen, fan_mod, fan_mod ? fan_mod : 1);
    assert_true(n > 0);
    return text;
}

/* ---------- fake output: records payload and gen ---------- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int got[MAX_MSGS * 2];
    char gen[MAX_MSGS * 2];
    int input_own; /* messages that are the input's own (not copies), no ack on them */
    int n;
    int fail_seq; /* this batch fails (TP_IO); -1: none */
} out;

static int out_open(const void *config, void **state, struct tp_error *err)
{
    (void)config, (void)err;
    *state = &out;
    return TP_OK;
}

static int out_submit(void *state, struct tp_out_batch *b)
{
    (void)state;
    if ((int)b->seq == out.fail_seq) {
        struct tp_error err;
        tp_error_set(&err, TP_IO, "fake output: batch %d refused", (int)b->seq);
        return tp_out_batch_fail(b, TP_IO, &err);
    }
    pthread_mutex_lock(&out.lock);
    for (size_t i = 0; i < b->n; i++) {
        const char *g = tp_msg_meta_get(b->msgs[i], "gen", NULL);
        out.got[out.n] = atoi(b->msgs[i]->payload);
        out.gen[out.n++] = g ? g[0] : '?';
        int i_in = atoi(b->msgs[i]->payload);
        if (i_in >= 0 && i_in < MAX_MSGS && b->msgs[i] == in.made[i_in] && !b->msgs[i]->ack)
            out.input_own++;
    }
    pthread_cond_broadcast(&out.cond);
    pthread_mutex_unlock(&out.lock);
    tp_out_batch_complete(b, TP_OK, NULL);
    return TP_OK;
}

static void out_close(void *state)
{
    (void)state;
}

static const struct tp_output_plugin fake_output = {
    .name = "fake", .open = out_open, .submit = out_submit, .close = out_close};

/* ---------- harness ---------- */

static void reset(int total)
{
    in.total = total;
    in.next = in.n_acks = in.recycled = in.recycled_early = 0;
    in.fail_at = in.hook_at = -1;
    in.hook = NULL;
    in.tokenless_mod = in.ack_calls = in.null_tokens = 0;
    input_plugin = &fake_input;
    out.n = out.input_own = 0;
    out.fail_seq = -1;
}

static struct tp_config *config(const char *yaml)
{
    struct tp_config *cfg = NULL;
    struct tp_error err = {0};
    if (tp_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, &err))
        fail_msg("config: %s", err.msg);
    return cfg;
}

static struct tp_pipeline *pipeline;
static struct tp_stats counts; /* the counters of the last run's pipeline */

/* The pipeline of text (freed) with the fake input and output; its
 * configuration (to free after it) in *cfg. */
static struct tp_pipeline *build(char *text, struct tp_config **cfg)
{
    *cfg = config(text);
    free(text);
    struct tp_pipeline_opts opts = {.input_plugin = input_plugin, .output_plugin = &fake_output};
    struct tp_pipeline *p = NULL;
    struct tp_error err = {0};
    if (tp_pipeline_new(*cfg, &opts, &p, &err))
        fail_msg("pipeline: %s", err.msg);
    return p;
}

static void count_of(struct tp_pipeline *p, struct tp_stats *st)
{
    tp_stats_snapshot(tp_metrics_stats(tp_pipeline_metrics(p)), st);
}

/* Runs the pipeline of text (freed) to its end. */
static int run(char *text, struct tp_error *err)
{
    struct tp_config *cfg;
    pipeline = build(text, &cfg);
    int rc = tp_pipeline_run(pipeline, err);
    count_of(pipeline, &counts);
    tp_pipeline_free(pipeline);
    pipeline = NULL;
    tp_config_free(cfg);
    return rc;
}

/* ---------- tests ---------- */

/* Four workers finishing out of order: every message once, in input order,
 * fan-out copies next to their input; every input acknowledged in order. */
static void test_order_kept_with_threads(void **state)
{
    (void)state;
    reset(3000);
    struct tp_error err = {0};
    assert_int_equal(run(yaml(4, 'a', 0, 7), &err), TP_OK);
    int k = 0;
    for (int i = 0; i < 3000; i++)
        for (int copies = i % 7 == 2 ? 2 : 1; copies > 0; copies--, k++) {
            assert_true(k < out.n);
            assert_int_equal(out.got[k], i);
        }
    assert_int_equal(out.n, k);
    assert_int_equal(in.n_acks, 3000);
    for (int i = 0; i < 3000; i++)
        assert_int_equal(in.acks[i], i);
    assert_int_equal(counts.received, 3000);
    assert_int_equal(counts.processed, k);
    assert_int_equal(in.recycled, 3000 + k); /* inputs and outputs, after their acks */
    assert_int_equal(in.recycled_early, 0);
}

/* The reload hook runs in the input's read, between two batches, once the
 * output has every message read so far: those ran on generation a, all
 * later ones must run on generation b. */
#define RELOAD_AT 400

static void reload_now(void)
{
    pthread_mutex_lock(&out.lock);
    while (out.n < RELOAD_AT)
        pthread_cond_wait(&out.cond, &out.lock);
    pthread_mutex_unlock(&out.lock);
    struct tp_error err = {0};
    char *text = yaml(3, 'b', 0, 0);
    struct tp_config *cfg = config(text);
    free(text);
    assert_int_equal(tp_pipeline_reload(pipeline, cfg, &err), TP_OK); /* takes cfg */
}

static void test_reload_between_batches(void **state)
{
    (void)state;
    reset(1200);
    in.hook_at = RELOAD_AT;
    in.hook = reload_now;
    struct tp_error err = {0};
    assert_int_equal(run(yaml(3, 'a', 0, 0), &err), TP_OK);
    assert_int_equal(out.n, 1200);
    for (int i = 0; i < 1200; i++) {
        assert_int_equal(out.got[i], i);
        assert_int_equal(out.gen[i], i < RELOAD_AT ? 'a' : 'b');
    }
    assert_int_equal(in.n_acks, 1200);
}

/* No processors, four workers: the input's messages themselves reach the
 * output (not copies, their ack tokens taken off), in order, every input
 * acknowledged in order after its batch was confirmed. */
static char *yaml_passthrough(int threads)
{
    char *text = NULL;
    assert_true(asprintf(&text,
                         "input: {fake: {}}\npipeline: {threads: %d, batch_size: 8}\n"
                         "output: {fake: {}}\n",
                         threads) > 0);
    return text;
}

static void test_passthrough_hands_on_input_messages(void **state)
{
    (void)state;
    reset(3000);
    struct tp_error err = {0};
    assert_int_equal(run(yaml_passthrough(4), &err), TP_OK);
    assert_int_equal(out.n, 3000);
    assert_int_equal(out.input_own, 3000);
    for (int i = 0; i < 3000; i++) {
        assert_int_equal(out.got[i], i);
        assert_int_equal(in.acks[i], i);
    }
    assert_int_equal(in.n_acks, 3000);
    assert_int_equal(counts.received, 3000);
    assert_int_equal(counts.processed, 3000);
    assert_int_equal(in.recycled, 3000); /* each once, after its ack */
    assert_int_equal(in.recycled_early, 0);
}

/* A reload from no processors to some, in the read of the batch starting at
 * RELOAD_AT (which the reader therefore does not route: the workers do):
 * the messages before pass through as they are, every later one runs on the
 * new processors, in order, all acknowledged. */
static void test_reload_from_passthrough(void **state)
{
    (void)state;
    reset(1200);
    in.hook_at = RELOAD_AT;
    in.hook = reload_now;
    struct tp_error err = {0};
    assert_int_equal(run(yaml_passthrough(3), &err), TP_OK);
    assert_int_equal(out.n, 1200);
    for (int i = 0; i < 1200; i++) {
        assert_int_equal(out.got[i], i);
        assert_int_equal(out.gen[i], i < RELOAD_AT ? '?' : 'b');
    }
    assert_int_equal(out.input_own, RELOAD_AT);
    assert_int_equal(in.n_acks, 1200);
    for (int i = 0; i < 1200; i++)
        assert_int_equal(in.acks[i], i);
}

/* A reload the new processors cannot take is refused; the running ones stay. */
static void reload_bad(void)
{
    struct tp_error err = {0};
    struct tp_config *cfg =
        config("pipeline: {threads: 2, processors: [{nodered_js: {code: \"return (\"}}]}\n");
    assert_int_not_equal(tp_pipeline_reload(pipeline, cfg, &err), TP_OK); /* takes cfg */
    assert_non_null(strstr(err.msg, "pipeline.processors[0].nodered_js"));
}

/* Runs 600 messages with a reload refused by `refused` after 200: every
 * message comes out once, in order, on the running processors, and is
 * acknowledged. */
static void run_refused_reload(void (*refused)(void))
{
    reset(600);
    in.hook_at = 200;
    in.hook = refused;
    struct tp_error err = {0};
    assert_int_equal(run(yaml(2, 'a', 0, 0), &err), TP_OK);
    assert_null(in.hook); /* the reload was tried */
    assert_int_equal(out.n, 600);
    for (int i = 0; i < 600; i++) {
        assert_int_equal(out.got[i], i);
        assert_int_equal(out.gen[i], 'a');
    }
    assert_int_equal(in.n_acks, 600);
    assert_int_equal(counts.received, 600);
    assert_int_equal(counts.processed, 600);
}

static void test_bad_reload_keeps_running_chain(void **state)
{
    (void)state;
    run_refused_reload(reload_bad);
}

/* A reload whose processors compile but whose trial worker cannot start
 * (the rule's bytecode does not fit its memory_limit_mb) is refused too. */
static void reload_trial_worker_fails(void)
{
    enum { BIG = 1536 * 1024 }; /* a string literal over the 1 MB limit */
    static const char head[] = "pipeline:\n"
                               "  processors:\n"
                               "    - nodered_js:\n"
                               "        memory_limit_mb: 1\n"
                               "        code: |\n"
                               "          const big = '";
    static const char tail[] = "';\n"
                               "          msg.meta.gen = String(big.length);\n"
                               "          return msg;\n";
    char *text = malloc(sizeof(head) + BIG + sizeof(tail));
    assert_non_null(text);
    memcpy(text, head, sizeof(head) - 1);
    memset(text + sizeof(head) - 1, 'x', BIG);
    memcpy(text + sizeof(head) - 1 + BIG, tail, sizeof(tail));
    struct tp_config *cfg = config(text);
    free(text);
    struct tp_error err = {0};
    assert_int_not_equal(tp_pipeline_reload(pipeline, cfg, &err), TP_OK); /* takes cfg */
    if (!strstr(err.msg, "cannot start the new processors") ||
        !strstr(err.msg, "memory_limit_mb 1"))
        fail_msg("reload refused, but not by its trial worker: %s", err.msg);
}

static void test_reload_refused_when_trial_worker_fails(void **state)
{
    (void)state;
    run_refused_reload(reload_trial_worker_fails);
}

/* The input's read fails: the run fails naming the input; what was read
 * before is still delivered and acknowledged. */
static void test_input_read_error_is_fatal(void **state)
{
    (void)state;
    reset(1000);
    in.fail_at = 300;
    struct tp_error err = {0};
    assert_int_equal(run(yaml(2, 'a', 0, 0), &err), TP_IO);
    assert_non_null(strstr(err.msg, "input.fake: read failed: fake input: refused at 300"));
    assert_int_equal(in.next, 300);
    assert_int_equal(out.n, 300); /* what was read is drained */
    for (int i = 0; i < out.n; i++)
        assert_int_equal(out.got[i], i);
    assert_int_equal(in.n_acks, 300);
}

/* The output fails batch 10: the run fails with its error, no input of
 * that batch or later is acknowledged. */
static void test_output_failure_is_fatal(void **state)
{
    (void)state;
    reset(1000);
    out.fail_seq = 10;
    struct tp_error err = {0};
    assert_int_equal(run(yaml(2, 'a', 0, 0), &err), TP_IO);
    assert_non_null(strstr(err.msg, "fake output: batch 10 refused"));
    assert_true(in.n_acks <= 10 * 8);
    for (int i = 0; i < in.n_acks; i++)
        assert_int_equal(in.acks[i], i);
}

/* Drops are counted once each by reason, never sent, and their input is
 * still acknowledged (accounted, not lost). */
static void test_drop_accounting(void **state)
{
    (void)state;
    reset(2000);
    struct tp_error err = {0};
    assert_int_equal(run(yaml(3, 'z', 4, 0), &err), TP_OK);
    int dropped = 0, k = 0;
    for (int i = 0; i < 2000; i++) {
        if (i % 4 == 1) {
            dropped++;
            continue;
        }
        assert_int_equal(out.got[k], i);
        assert_int_equal(out.gen[k], 'z');
        k++;
    }
    assert_int_equal(out.n, k);
    assert_int_equal(counts.dropped[TP_DROP_JS_ERROR], dropped);
    assert_int_equal(counts.processed, k);
    assert_int_equal(in.n_acks, 2000);
}

/* Two pipelines of one process count apart: each has its own received,
 * processed, drops by reason, JS programs compiled and VMs created (the
 * counters were process-wide once: b's run showed in a's numbers). */
static void test_two_pipelines_count_apart(void **state)
{
    (void)state;
    struct tp_config *cfg_a, *cfg_b;
    struct tp_pipeline *a = build(yaml(3, 'a', 4, 0), &cfg_a);
    struct tp_pipeline *b = build(yaml(1, 'b', 0, 7), &cfg_b);
    struct tp_error err = {0};
    reset(2000);
    assert_int_equal(tp_pipeline_run(a, &err), TP_OK);
    reset(300);
    assert_int_equal(tp_pipeline_run(b, &err), TP_OK);
    int fanned = 0; /* b's messages i % 7 == 2 come out twice */
    for (int i = 0; i < 300; i++)
        fanned += i % 7 == 2;
    struct tp_stats sa, sb;
    count_of(a, &sa);
    count_of(b, &sb);
    assert_int_equal(sa.received, 2000);
    assert_int_equal(sa.dropped[TP_DROP_JS_ERROR], 500);
    assert_int_equal(sa.processed, 1500);
    assert_int_equal(sa.programs_compiled, 1);
    assert_int_equal(sa.vms_created, 3);
    assert_int_equal(sb.received, 300);
    assert_int_equal(sb.dropped[TP_DROP_JS_ERROR], 0);
    assert_int_equal(sb.processed, 300 + fanned);
    assert_int_equal(sb.programs_compiled, 1);
    assert_int_equal(sb.vms_created, 1);
    tp_pipeline_free(a);
    tp_pipeline_free(b);
    tp_config_free(cfg_a);
    tp_config_free(cfg_b);
}

/* An input with ack_batch (and no ack): every message with a token
 * acknowledged once, in input order, a batch's tokens in one call (the
 * messages without a token as NULL). */
static void test_batch_acks(void **state)
{
    (void)state;
    reset(3000);
    input_plugin = &fake_batch_ack_input;
    in.tokenless_mod = 10;
    struct tp_error err = {0};
    assert_int_equal(run(yaml(4, 'a', 0, 7), &err), TP_OK);
    assert_int_equal(in.n_acks, 2700);
    assert_int_equal(in.null_tokens, 300);
    for (int i = 0, k = 0; i < 3000; i++)
        if (i % 10)
            assert_int_equal(in.acks[k++], i);
    assert_int_equal(in.ack_calls, 3000 / 8); /* one per batch (batch_size 8) */
}

int main(void)
{
    tp_plugins_use(&tp_builtin_plugins);
    pthread_mutex_init(&in.lock, NULL);
    pthread_mutex_init(&out.lock, NULL);
    pthread_cond_init(&out.cond, NULL);
    tp_log_set_level(TP_LOG_ERROR); /* drops are logged as warnings */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_kept_with_threads),
        cmocka_unit_test(test_reload_between_batches),
        cmocka_unit_test(test_passthrough_hands_on_input_messages),
        cmocka_unit_test(test_reload_from_passthrough),
        cmocka_unit_test(test_bad_reload_keeps_running_chain),
        cmocka_unit_test(test_reload_refused_when_trial_worker_fails),
        cmocka_unit_test(test_input_read_error_is_fatal),
        cmocka_unit_test(test_output_failure_is_fatal),
        cmocka_unit_test(test_drop_accounting),
        cmocka_unit_test(test_two_pipelines_count_apart),
        cmocka_unit_test(test_batch_acks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
