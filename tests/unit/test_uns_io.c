/* Unit tests for the uns output and input (src/io/uns/) against an
 * in-process librdkafka mock cluster: record key (sanitised UMH topic),
 * headers (metadata without kafka_*, plus bridged_by), invalid_topic drops,
 * the umh_topics filter, umh_topic/kafka_* metadata, acked offsets committed,
 * config errors at their FILE:LINE:COL, and errors and logs naming uns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kafka_mock_util.h"
#include "msg_test_util.h"

extern const struct tp_input_plugin tp_input_uns;
extern const struct tp_output_plugin tp_output_uns;

/* The first line of the tests' configs: the mock as the broker. */
#define AT_MOCK "broker_address: 'BOOT'\n"

static int setup(void **state)
{
    (void)state;
    return mock_start("umh.messages", 1, NULL);
}

/* Writes msgs through the output; returns the drops (caller frees). */
static struct tp_out_drop *write_all(struct inst *out, struct tp_msg **msgs, size_t n,
                                     size_t *n_drops)
{
    struct tp_error err = {0};
    struct tp_out_drop *drops = NULL;
    int rc = tp_output_write_sync(&tp_output_uns, out->state, msgs, n, &drops, n_drops, &err);
    if (rc)
        fail_msg("write: %s", err.msg);
    for (size_t i = 0; i < n; i++)
        tp_msg_free(msgs[i]);
    return drops;
}

static void assert_meta(const struct tp_msg *m, const char *k, const char *want)
{
    const char *v = tp_msg_meta_get(m, k, NULL);
    if (!want && v)
        fail_msg("metadata %s: expected none, got \"%s\"", k, v);
    if (want && (!v || strcmp(v, want) != 0))
        fail_msg("metadata %s: expected \"%s\", got %s%s%s", k, want, v ? "\"" : "", v ? v : "none",
                 v ? "\"" : "");
}

static void test_output_records_and_invalid_topic(void **state)
{
    (void)state;
    struct inst out, in;
    open_output(&out, &tp_output_uns, AT_MOCK);
    struct tp_msg *msgs[] = {
        mk_msg("1", "umh_topic",
               "umh.v1.acme.plant 1._historian.temp\xc2\xb0"
               "C",
               "site", "p1", "kafka_offset", "999", "bridged_by", "someone-else", NULL),
        mk_msg("2", "site", "p2", NULL), /* no umh_topic */
        mk_msg("3", "umh_topic", "", NULL),
        mk_msg("4", "umh_topic", "umh.v1.acme._historian.rpm", NULL),
    };
    size_t n_drops = 0;
    struct tp_out_drop *drops = write_all(&out, msgs, 4, &n_drops);
    assert_int_equal(n_drops, 2);
    assert_int_equal(drops[0].index, 1);
    assert_int_equal(drops[0].reason, TP_DROP_INVALID_TOPIC);
    assert_non_null(strstr(drops[0].error, "umh_topic"));
    assert_int_equal(drops[1].index, 2);
    assert_int_equal(drops[1].reason, TP_DROP_INVALID_TOPIC);
    assert_non_null(strstr(drops[1].error, "empty"));
    free(drops);

    open_input(&in, &tp_input_uns, AT_MOCK "consumer_group: g1\n");
    struct tp_batch b;
    tp_batch_init(&b);
    read_n(&in, &b, 2);
    const struct tp_msg *m = b.msgs[0];
    assert_string_equal(m->payload, "1");
    /* one '_' per illegal character, multi-byte ones included */
    assert_meta(m, "kafka_key", "umh.v1.acme.plant_1._historian.temp_C");
    assert_meta(m, "kafka_msg_key", "umh.v1.acme.plant_1._historian.temp_C");
    assert_meta(m, "umh_topic", "umh.v1.acme.plant_1._historian.temp_C");
    assert_meta(m, "kafka_topic", "umh.messages");
    assert_meta(m, "kafka_offset", "0");
    assert_meta(m, "site", "p1");
    assert_meta(m, "bridged_by", "umh-core"); /* the option's default replaces the metadata */
    assert_string_equal(b.msgs[1]->payload, "4");
    assert_meta(b.msgs[1], "umh_topic", "umh.v1.acme._historian.rpm");
    assert_meta(b.msgs[1], "site", NULL);
    for (size_t i = 0; i < b.len; i++)
        tp_input_uns.ack(in.state, b.msgs[i]->ack);
    tp_batch_free(&b);
    inst_close(&in);
    inst_close(&out);
}

static void test_input_filter_and_acked_commit(void **state)
{
    (void)state;
    struct inst out, in;
    open_output(&out, &tp_output_uns,
                AT_MOCK
                "bridged_by: edge-7\numh_topic: 'umh.v1.${! meta(\"area\") }.{{meta.tag}}'\n");
    struct tp_msg *msgs[] = {
        mk_msg("a1", "area", "berlin", "tag", "x", NULL),
        mk_msg("b1", "area", "munich", "tag", "y", NULL),
        mk_msg("c1", "area", "paris", "tag", "z", NULL),
        mk_msg("a2", "area", "berlin", "tag", "w", NULL),
    };
    size_t n_drops = 0;
    free(write_all(&out, msgs, 4, &n_drops));
    assert_int_equal(n_drops, 0);

    open_input(&in, &tp_input_uns,
               AT_MOCK
               "consumer_group: g2\numh_topics: ['^umh\\.v1\\.berlin\\.', 'munich\\.y$']\n");
    struct tp_batch b;
    tp_batch_init(&b);
    read_n(&in, &b, 3);
    assert_string_equal(b.msgs[0]->payload, "a1");
    assert_meta(b.msgs[0], "umh_topic", "umh.v1.berlin.x");
    assert_meta(b.msgs[0], "area", "berlin");
    assert_meta(b.msgs[0], "bridged_by", "edge-7");
    assert_string_equal(b.msgs[1]->payload, "b1");
    assert_string_equal(b.msgs[2]->payload, "a2");
    /* Ack the first two only (offsets 2 and 3; test 1 wrote 0 and 1): the
     * group's committed offset stops before a2 (offset 5; c1 at 4 was
     * skipped behind it), so a2 comes again. */
    tp_input_uns.ack(in.state, b.msgs[0]->ack);
    tp_input_uns.ack(in.state, b.msgs[1]->ack);
    tp_batch_clear(&b);
    inst_close(&in);
    assert_int_equal(mock_committed("g2", "umh.messages"), 4);

    open_input(&in, &tp_input_uns,
               AT_MOCK
               "consumer_group: g3\numh_topic: 'v\\d\\.berlin'\n"); /* one pattern, RE2's \d */
    read_n(&in, &b, 2);
    assert_string_equal(b.msgs[0]->payload, "a1");
    assert_string_equal(b.msgs[1]->payload, "a2");
    assert_meta(b.msgs[1], "kafka_offset", "5");
    tp_batch_free(&b);
    inst_close(&in);
    inst_close(&out);
}

/* The user configured uns: errors, drops and librdkafka's log lines name the
 * uns connector ("uns output: ...", "uns input: ..."), not the Kafka
 * connector it runs on. */
static void test_messages_name_uns(void **state)
{
    (void)state;
    struct inst out;
    open_output(&out, &tp_output_uns, AT_MOCK);
    enum { BIG = 1100 * 1000 }; /* over librdkafka's message.max.bytes (1000000) */
    char *big = malloc(BIG + 1);
    assert_non_null(big);
    memset(big, 'x', BIG);
    big[BIG] = '\0';
    struct tp_msg *m = mk_msg(big, "umh_topic", "umh.v1.acme._historian.big", NULL);
    free(big);
    size_t n_drops = 0;
    struct tp_out_drop *drops = write_all(&out, &m, 1, &n_drops);
    assert_int_equal(n_drops, 1);
    assert_int_equal(drops[0].reason, TP_DROP_INVALID_VALUE);
    if (strncmp(drops[0].error, "uns output: record of 1100000 bytes for umh.messages", 52))
        fail_msg("drop: %s", drops[0].error);
    free(drops);
    inst_close(&out);

    /* A broker that refuses connections: librdkafka's complaint names uns. */
    struct inst in;
    log_capture_start();
    open_input(&in, &tp_input_uns, "broker_address: '127.0.0.1:1'\nconsumer_group: g9\n");
    int named = log_wait_for("uns input: ");
    inst_close(&in);
    char *text = log_text();
    log_capture_stop();
    if (!named || strstr(text, "kafka input") || strstr(text, "kafka: "))
        fail_msg("the log does not name the uns input:\n%s", text);
    free(text);
}

/* Config errors name the option and where it is (line 1 holds broker_address). */
static void test_config_errors(void **state)
{
    (void)state;
    struct inst x;
    struct tp_error err = {0};
    assert_int_equal(
        INST_OPEN(&x, tp_input_uns, AT_MOCK "umh_topics:\n  - 'umh\\.v1'\n  - 'a(b'\n", &err),
        TP_CONFIG);
    assert_string_equal(err.file, "t.yaml");
    assert_int_equal(err.line, 4);
    assert_int_equal(err.col, 5);
    assert_non_null(strstr(err.msg, "umh_topics[1]"));
    assert_non_null(strstr(err.msg, "a(b"));
    inst_free(&x);
    assert_int_equal(INST_OPEN(&x, tp_input_uns, AT_MOCK "umh_topic: '[z-a]'\n", &err), TP_CONFIG);
    assert_int_equal(err.line, 2);
    assert_non_null(strstr(err.msg, "umh_topic"));
    inst_free(&x);
    assert_int_equal(INST_OPEN(&x, tp_input_uns, AT_MOCK "umh_topic: a\numh_topics: [b]\n", &err),
                     TP_CONFIG);
    assert_non_null(strstr(err.msg, "cannot both"));
    inst_free(&x);
    assert_int_equal(
        INST_OPEN(&x, tp_output_uns, AT_MOCK "umh_topic: 'umh.v1.${! now() }'\n", &err), TP_CONFIG);
    assert_int_equal(err.line, 2);
    assert_non_null(strstr(err.msg, "umh_topic"));
    inst_free(&x);
    assert_int_equal(INST_OPEN(&x, tp_output_uns, AT_MOCK "topic: x\n", &err), TP_CONFIG);
    inst_free(&x);
}

int main(void)
{
    alarm(120); /* a hang is a failure, not a stuck test run */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_records_and_invalid_topic),
        cmocka_unit_test(test_input_filter_and_acked_commit),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_messages_name_uns),
    };
    return cmocka_run_group_tests(tests, setup, mock_stop);
}
