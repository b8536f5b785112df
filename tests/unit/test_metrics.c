/* Metrics registry: per-worker rule blocks summed at scrape time and kept
 * across a block's end (reload), rule names from stages, drops by reason and
 * stage, and the Prometheus text of the per-rule series. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "ops/metrics.h"

static const char *const rules[] = {"defaults", "conditions[0]", "advancedProcessing"};

static struct tp_metrics *m; /* a fresh registry per test */

static int setup(void **state)
{
    (void)state;
    m = tp_metrics_new(1);
    return m ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tp_metrics_free(m);
    m = NULL;
    return 0;
}

static char *scrape(void)
{
    struct tp_buf b;
    tp_buf_init(&b);
    assert_int_equal(tp_metrics_write(m, &b, "stdin", "stdout"), 0);
    size_t len;
    return tp_buf_take(&b, &len);
}

static void test_rule_of_stage(void **state)
{
    (void)state;
    char r[64];
    tp_metrics_rule_of_stage("conditions[12].then", r, sizeof(r));
    assert_string_equal(r, "conditions[12]");
    tp_metrics_rule_of_stage("conditions[3].if", r, sizeof(r));
    assert_string_equal(r, "conditions[3]");
    tp_metrics_rule_of_stage("defaults", r, sizeof(r));
    assert_string_equal(r, "defaults");
    tp_metrics_rule_of_stage("output", r, sizeof(r));
    assert_string_equal(r, "output");
}

static void test_blocks_merge_and_survive(void **state)
{
    (void)state;
    struct tp_rule_block *a =
        tp_metrics_block_new(m, "p0.tag_processor", "tag_processor", 3, rules);
    struct tp_rule_block *b =
        tp_metrics_block_new(m, "p0.tag_processor", "tag_processor", 3, rules);
    assert_non_null(a);
    assert_non_null(b);
    TP_MET_ADD(a->rules[1].evals, 5);
    TP_MET_ADD(a->rules[1].matches, 2);
    TP_MET_ADD(b->rules[1].evals, 7);
    TP_MET_ADD(b->rules[1].matches, 1);
    TP_MET_ADD(b->rules[0].errors, 3);
    TP_MET_ADD(a->msgs_in, 4);
    TP_MET_ADD(b->msgs_in, 6);
    tp_metrics_rule_time(&a->rules[2], 0); /* fastest bucket, weighted */
    char *t = scrape();
    assert_non_null(strstr(t, "tagproc_rule_evaluations_total{processor=\"p0.tag_processor\","
                              "rule=\"conditions[0]\"} 12\n"));
    assert_non_null(strstr(t, "tagproc_rule_matches_total{processor=\"p0.tag_processor\","
                              "rule=\"conditions[0]\"} 3\n"));
    assert_null(strstr(t, "tagproc_rule_matches_total{processor=\"p0.tag_processor\","
                          "rule=\"defaults\"}"));
    assert_non_null(strstr(t, "tagproc_rule_errors_total{processor=\"p0.tag_processor\","
                              "rule=\"defaults\"} 3\n"));
    assert_non_null(strstr(t, "tagproc_processor_received_total{processor=\"p0.tag_processor\","
                              "plugin=\"tag_processor\"} 10\n"));
    char want[200];
    snprintf(want, sizeof(want),
             "tagproc_rule_duration_seconds_bucket{processor=\"p0.tag_processor\","
             "rule=\"advancedProcessing\",le=\"1e-06\"} %d\n",
             TP_RULE_SAMPLE);
    assert_non_null(strstr(t, want));
    free(t);

    /* A reload frees the blocks: the series keep their counts. */
    tp_metrics_block_free(a);
    tp_metrics_block_free(b);
    struct tp_rule_block *c =
        tp_metrics_block_new(m, "p0.tag_processor", "tag_processor", 3, rules);
    TP_MET_ADD(c->rules[1].evals, 1);
    t = scrape();
    assert_non_null(strstr(t, "tagproc_rule_evaluations_total{processor=\"p0.tag_processor\","
                              "rule=\"conditions[0]\"} 13\n"));
    free(t);
    tp_metrics_block_free(c);
}

static void test_drops_and_reloads(void **state)
{
    (void)state;
    tp_metrics_drop(m, TP_DROP_JS_ERROR, "conditions[2].then");
    tp_metrics_drop(m, TP_DROP_JS_ERROR, "conditions[2].then");
    tp_metrics_drop(m, TP_DROP_FILTERED, "defaults");
    tp_metrics_reload(m, 1);
    tp_metrics_reload(m, 0);
    tp_metrics_reload(m, 1);
    char *t = scrape();
    assert_non_null(
        strstr(t, "tagproc_dropped_total{reason=\"js_error\",stage=\"conditions[2].then\"} 2\n"));
    assert_non_null(strstr(t, "tagproc_dropped_total{reason=\"filtered\",stage=\"defaults\"} 1\n"));
    assert_non_null(strstr(t, "tagproc_reloads_total 2\n"));
    assert_non_null(strstr(t, "tagproc_reload_failures_total 1\n"));
    assert_non_null(strstr(t, "tagproc_input_received_total{plugin=\"stdin\"}"));
    free(t);
}

static void test_off(void **state)
{
    (void)state;
    struct tp_metrics *off = tp_metrics_new(0);
    assert_non_null(off);
    assert_null(tp_metrics_block_new(off, "p", "tag_processor", 3, rules));
    assert_null(tp_metrics_block_new(NULL, "p", "tag_processor", 3, rules));
    tp_metrics_free(off);
}

/* Two registries (two pipelines in one process) count apart. */
static void test_registries_apart(void **state)
{
    (void)state;
    struct tp_metrics *other = tp_metrics_new(1);
    assert_non_null(other);
    tp_metrics_drop(other, TP_DROP_JS_ERROR, "defaults");
    tp_metrics_reload(other, 1);
    struct tp_rule_block *b =
        tp_metrics_block_new(other, "p1.tag_processor", "tag_processor", 3, rules);
    TP_MET_ADD(b->rules[0].evals, 9);
    char *t = scrape();
    assert_null(strstr(t, "tagproc_dropped_total{reason=\"js_error\""));
    assert_non_null(strstr(t, "tagproc_reloads_total 0\n"));
    assert_null(strstr(t, "p1.tag_processor"));
    free(t);
    tp_metrics_block_free(b);
    tp_metrics_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rule_of_stage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocks_merge_and_survive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drops_and_reloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registries_apart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
