/* The output contract (plugin.h) as the pipeline keeps it, with a scripted
 * input that records acks and a scripted output that holds batches in
 * flight and completes them out of order, fails one, or drops messages:
 * order and exactly-once with a window > 1, nothing acked past a failure,
 * per-message drops counted and dead-lettered once, a dead letter on a full
 * disk fatal with the input not acked, and a stop that drains the window. */
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
#include "pipeline/pipeline.h"
#include "core/metrics.h"
#include "core/plugin.h"
#include "core/stats.h"

#define MAX_MSGS 4096

/* ---------- scripted input: payload "i", ack token i+1 ---------- */

static struct {
    pthread_mutex_t lock;
    int total; /* messages to read; -1: until stop */
    int next;  /* messages read so far */
    int stopped;
    int acks[MAX_MSGS]; /* ack order */
    int n_acks;
} in_state;

static int fake_in_open(const void *config, void **in, struct tp_error *err)
{
    (void)config;
    (void)err;
    *in = &in_state;
    return TP_OK;
}

static int fake_in_read(void *in, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                        struct tp_error *err)
{
    (void)in;
    (void)drops;
    (void)err;
    pthread_mutex_lock(&in_state.lock);
    for (size_t k = 0; k < max && in_state.next < MAX_MSGS && !in_state.stopped &&
                       (in_state.total < 0 || in_state.next < in_state.total);
         k++) {
        struct tp_msg *m = tp_msg_new();
        char p[32], topic[32];
        snprintf(p, sizeof(p), "%d", in_state.next);
        snprintf(topic, sizeof(topic), "k%d", in_state.next % 3);
        assert_int_equal(tp_msg_set_payload(m, p, strlen(p)), TP_OK);
        assert_int_equal(tp_msg_meta_sets(m, "umh_topic", topic), TP_OK);
        m->ack = (void *)(uintptr_t)(in_state.next + 1);
        in_state.next++;
        assert_int_equal(tp_batch_push(batch, m), TP_OK);
    }
    int end = in_state.stopped || in_state.next >= MAX_MSGS ||
              (in_state.total >= 0 && in_state.next >= in_state.total);
    pthread_mutex_unlock(&in_state.lock);
    return end ? TP_EOF : TP_OK;
}

static void fake_in_ack(void *in, void *token)
{
    (void)in;
    pthread_mutex_lock(&in_state.lock);
    in_state.acks[in_state.n_acks++] = (int)(uintptr_t)token - 1;
    pthread_mutex_unlock(&in_state.lock);
}

static void fake_in_stop(void *in)
{
    (void)in;
    pthread_mutex_lock(&in_state.lock);
    in_state.stopped = 1;
    pthread_mutex_unlock(&in_state.lock);
}

static void fake_in_close(void *in)
{
    (void)in;
}

static const struct tp_input_plugin fake_input = {
    .name = "scripted",
    .open = fake_in_open,
    .read = fake_in_read,
    .ack = fake_in_ack,
    .stop = fake_in_stop,
    .close = fake_in_close,
};

/* ---------- scripted output: a completer thread ---------- */

#define MAX_HELD 64

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct tp_out_batch *held[MAX_HELD]; /* submitted, not completed */
    int n_held, max_held;
    int window;     /* complete once this many are held (or input ended) */
    int fail_batch; /* seq of the batch that fails, -1: none */
    int drop_mod;   /* drop messages whose number % drop_mod == 3 (0: none) */
    int sent[MAX_MSGS];
    int n_sent;
    int closing;
    pthread_t completer;
} out_state;

static int payload_num(const struct tp_msg *m)
{
    return atoi(m->payload);
}

/* Completes every held batch, newest first (out of order on purpose). */
static void complete_held_locked(void)
{
    while (out_state.n_held) {
        struct tp_out_batch *b = out_state.held[--out_state.n_held];
        if ((int)b->seq == out_state.fail_batch) {
            struct tp_error err;
            tp_error_set(&err, TP_IO, "scripted failure of batch %llu", (unsigned long long)b->seq);
            tp_out_batch_complete(b, TP_IO, &err);
        } else {
            tp_out_batch_complete(b, TP_OK, NULL);
        }
    }
}

static void *completer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&out_state.lock);
    while (!out_state.closing) {
        int input_over = 0;
        pthread_mutex_lock(&in_state.lock);
        input_over = in_state.stopped || (in_state.total >= 0 && in_state.next >= in_state.total);
        pthread_mutex_unlock(&in_state.lock);
        if (out_state.n_held >= out_state.window || (input_over && out_state.n_held)) {
            complete_held_locked();
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 5000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&out_state.cond, &out_state.lock, &ts);
    }
    pthread_mutex_unlock(&out_state.lock);
    return NULL;
}

static int fake_out_open(const void *config, void **out, struct tp_error *err)
{
    (void)config;
    (void)err;
    out_state.closing = 0;
    assert_int_equal(pthread_create(&out_state.completer, NULL, completer_main, NULL), 0);
    *out = &out_state;
    return TP_OK;
}

static int fake_out_submit(void *out, struct tp_out_batch *b)
{
    (void)out;
    pthread_mutex_lock(&out_state.lock);
    for (size_t i = 0; i < b->n; i++) {
        int num = payload_num(b->msgs[i]);
        if (out_state.drop_mod && num % out_state.drop_mod == 3)
            tp_out_batch_drop(b, i, TP_DROP_INVALID_TOPIC, "scripted: no topic for %d", num);
        else
            out_state.sent[out_state.n_sent++] = num;
    }
    assert_true(out_state.n_held < MAX_HELD);
    out_state.held[out_state.n_held++] = b;
    if (out_state.n_held > out_state.max_held)
        out_state.max_held = out_state.n_held;
    pthread_cond_broadcast(&out_state.cond);
    pthread_mutex_unlock(&out_state.lock);
    return TP_OK;
}

static void fake_out_close(void *out)
{
    (void)out;
    pthread_mutex_lock(&out_state.lock);
    out_state.closing = 1;
    out_state.n_held = 0; /* abandoned */
    pthread_cond_broadcast(&out_state.cond);
    pthread_mutex_unlock(&out_state.lock);
    pthread_join(out_state.completer, NULL);
}

static const struct tp_output_plugin fake_output = {
    .name = "scripted",
    .submit = fake_out_submit,
    .open = fake_out_open,
    .close = fake_out_close,
};

/* ---------- harness ---------- */

static void reset(int total, int window, int fail_batch, int drop_mod)
{
    pthread_mutex_lock(&in_state.lock);
    in_state.total = total;
    in_state.next = 0;
    in_state.stopped = 0;
    in_state.n_acks = 0;
    pthread_mutex_unlock(&in_state.lock);
    pthread_mutex_lock(&out_state.lock);
    out_state.n_held = out_state.max_held = out_state.n_sent = 0;
    out_state.window = window;
    out_state.fail_batch = fail_batch;
    out_state.drop_mod = drop_mod;
    pthread_mutex_unlock(&out_state.lock);
}

static struct tp_pipeline *new_pipeline(const char *yaml, struct tp_config **cfg)
{
    struct tp_error err = {0};
    assert_int_equal(tp_config_load_string("t.yaml", yaml, strlen(yaml), cfg, &err), TP_OK);
    struct tp_pipeline_opts opts = {.input_plugin = &fake_input, .output_plugin = &fake_output};
    struct tp_pipeline *p = NULL;
    if (tp_pipeline_new(*cfg, &opts, &p, &err))
        fail_msg("pipeline: %s", err.msg);
    return p;
}

static struct tp_stats counts; /* the counters of the last run's pipeline */

static int run(const char *yaml, struct tp_error *err)
{
    struct tp_config *cfg = NULL;
    struct tp_pipeline *p = new_pipeline(yaml, &cfg);
    int rc = tp_pipeline_run(p, err);
    tp_stats_snapshot(tp_metrics_stats(tp_pipeline_metrics(p)), &counts);
    tp_pipeline_free(p);
    tp_config_free(cfg);
    return rc;
}

#define BASE_YAML                                                                                  \
    "input: {scripted: {}}\n"                                                                      \
    "pipeline: {threads: 2, batch_size: 4}\n"                                                      \
    "output: {max_in_flight: 4, scripted: {}}\n"

/* Window 4, completions newest first: every message sent once, in input
 * order; acks in input order, all of them. */
static void test_window_order_exactly_once(void **state)
{
    (void)state;
    reset(400, 4, -1, 0);
    struct tp_error err = {0};
    assert_int_equal(run(BASE_YAML, &err), TP_OK);
    assert_int_equal(out_state.max_held, 4); /* the window was used, never exceeded */
    assert_int_equal(out_state.n_sent, 400);
    for (int i = 0; i < 400; i++)
        assert_int_equal(out_state.sent[i], i);
    assert_int_equal(in_state.n_acks, 400);
    for (int i = 0; i < 400; i++)
        assert_int_equal(in_state.acks[i], i);
    assert_int_equal(counts.processed, 400);
}

/* Batch 5 fails while later batches are in flight and confirmed: nothing
 * from batch 5 on is acked, and the run fails with the output's error. */
static void test_failed_batch_acks_nothing_after(void **state)
{
    (void)state;
    reset(400, 4, 5, 0);
    struct tp_error err = {0};
    assert_int_equal(run(BASE_YAML, &err), TP_IO);
    assert_non_null(strstr(err.msg, "scripted failure of batch 5"));
    assert_int_equal(in_state.n_acks, 5 * 4);
    for (int i = 0; i < in_state.n_acks; i++)
        assert_int_equal(in_state.acks[i], i);
}

/* Per-message drops: counted once, dead-lettered once, the input acked. */
static void test_output_drops_dead_lettered_once(void **state)
{
    (void)state;
    char path[] = "/tmp/tp_dead_letter_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char yaml[512];
    snprintf(yaml, sizeof(yaml), BASE_YAML "dead_letter: {file: {path: %s}}\n", path);
    reset(200, 4, -1, 10);
    struct tp_error err = {0};
    assert_int_equal(run(yaml, &err), TP_OK);
    assert_int_equal(counts.dropped[TP_DROP_INVALID_TOPIC], 20);
    assert_int_equal(counts.processed, 180);
    assert_int_equal(in_state.n_acks, 200);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int lines = 0;
    while (fgets(line, sizeof(line), f)) {
        assert_non_null(strstr(line, "\"tagproc_drop_reason\":\"invalid_topic\""));
        assert_non_null(strstr(line, "\"tagproc_drop_stage\":\"output\""));
        char want[64];
        snprintf(want, sizeof(want), "\"payload\":%d3,", lines);
        if (lines == 0)
            snprintf(want, sizeof(want), "\"payload\":3,");
        assert_non_null(strstr(line, want));
        lines++;
    }
    fclose(f);
    unlink(path);
    assert_int_equal(lines, 20);
}

/* A dead letter that cannot be written (full disk) is fatal: exit status
 * non-zero and the input of the dropped message is never acked. */
static void test_dead_letter_full_disk_fatal(void **state)
{
    (void)state;
    reset(200, 4, -1, 10);
    struct tp_error err = {0};
    int rc = run(BASE_YAML "dead_letter: {file: {path: /dev/full, mode: append}}\n", &err);
    assert_int_not_equal(rc, TP_OK);
    assert_non_null(strstr(err.msg, "dead letter"));
    for (int i = 0; i < in_state.n_acks; i++)
        assert_true(in_state.acks[i] < 3); /* message 3 (batch 0) was dropped */
    assert_int_equal(in_state.n_acks, 0);
}

static void *stopper_main(void *arg)
{
    struct tp_pipeline *p = arg;
    pthread_mutex_lock(&out_state.lock);
    while (out_state.max_held < 3)
        pthread_cond_wait(&out_state.cond, &out_state.lock);
    pthread_mutex_unlock(&out_state.lock);
    tp_pipeline_stop(p);
    return NULL;
}

/* Stop while batches are in flight: the window drains, everything read is
 * sent once and acked. */
static void test_stop_drains_in_flight(void **state)
{
    (void)state;
    reset(-1, 8, -1, 0);
    struct tp_config *cfg = NULL;
    struct tp_pipeline *p = new_pipeline("input: {scripted: {}}\n"
                                         "pipeline: {threads: 2, batch_size: 4}\n"
                                         "output: {max_in_flight: 8, scripted: {}}\n",
                                         &cfg);
    pthread_t stopper;
    assert_int_equal(pthread_create(&stopper, NULL, stopper_main, p), 0);
    struct tp_error err = {0};
    assert_int_equal(tp_pipeline_run(p, &err), TP_OK);
    pthread_join(stopper, NULL);
    tp_pipeline_free(p);
    tp_config_free(cfg);
    assert_true(in_state.next >= 12);
    assert_int_equal(out_state.n_sent, in_state.next);
    assert_int_equal(in_state.n_acks, in_state.next);
    for (int i = 0; i < in_state.n_acks; i++)
        assert_int_equal(in_state.acks[i], i);
}

static void keep_first(void *ctx, const struct tp_error *e)
{
    struct tp_error *first = ctx;
    if (!first->msg[0])
        *first = *e;
}

static void test_max_in_flight_config_errors(void **state)
{
    (void)state;
    const char *bad[] = {
        "output: {max_in_flight: 0, drop: {}}\n", "output: {max_in_flight: 2000, drop: {}}\n",
        "output: {max_in_flight: many, drop: {}}\n", "output: {max_in_flight: 4}\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tp_config *cfg = NULL;
        struct tp_error err = {0};
        assert_int_equal(tp_config_load_string("t.yaml", bad[i], strlen(bad[i]), &cfg, &err),
                         TP_OK);
        assert_true(tp_pipeline_check(cfg, keep_first, &err) >= 1);
        assert_non_null(strstr(err.msg, "output"));
        assert_string_equal(err.file, "t.yaml");
        assert_int_equal(err.line, 1);
        tp_config_free(cfg);
    }
}

int main(void)
{
    tp_plugins_use(&tp_builtin_plugins);
    pthread_mutex_init(&in_state.lock, NULL);
    pthread_mutex_init(&out_state.lock, NULL);
    pthread_cond_init(&out_state.cond, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_order_exactly_once),
        cmocka_unit_test(test_failed_batch_acks_nothing_after),
        cmocka_unit_test(test_output_drops_dead_lettered_once),
        cmocka_unit_test(test_dead_letter_full_disk_fatal),
        cmocka_unit_test(test_stop_drains_in_flight),
        cmocka_unit_test(test_max_in_flight_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
