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
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "config/config.h"
#include "core/plugin.h"

extern const struct tp_input_plugin tp_input_uns;
extern const struct tp_output_plugin tp_output_uns;

/* Where a read failure would be described (the reads here must not fail). */
static struct tp_error read_err;

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;

static int setup(void **state)
{
    (void)state;
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", why, sizeof(why));
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    mock = rd_kafka_mock_cluster_new(mock_rk, 1);
    if (!mock)
        return -1;
    rd_kafka_mock_topic_create(mock, "umh.messages", 1, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(mock_rk);
    return 0;
}

/* A plugin instance: its config parsed from YAML (broker_address: the mock
 * is prepended unless the YAML sets one), then opened. */
struct inst {
    struct tp_config *cfg;
    const struct tp_option *options;
    void *config;
    void *state;
};

static int inst_open(struct inst *x, const struct tp_option *options, size_t size,
                     int (*open)(const void *, void **, struct tp_error *), const char *yaml,
                     struct tp_error *err)
{
    char text[2048];
    if (strstr(yaml, "broker_address:")) /* a broker of its own */
        snprintf(text, sizeof(text), "%s", yaml);
    else
        snprintf(text, sizeof(text), "broker_address: '%s'\n%s",
                 rd_kafka_mock_cluster_bootstraps(mock), yaml);
    memset(x, 0, sizeof(*x));
    x->options = options;
    x->config = calloc(1, size);
    int rc = tp_config_load_string("t.yaml", text, strlen(text), &x->cfg, err);
    if (!rc)
        rc = tp_options_parse(options, x->cfg->root, "uns", x->config, err);
    if (!rc)
        rc = open(x->config, &x->state, err);
    return rc;
}

static void inst_free(struct inst *x)
{
    tp_options_free(x->options, x->config);
    free(x->config);
    tp_config_free(x->cfg);
}

static void open_out(struct inst *x, const char *yaml)
{
    struct tp_error err = {0};
    if (inst_open(x, tp_output_uns.options, tp_output_uns.config_size, tp_output_uns.open, yaml,
                  &err))
        fail_msg("output open: %s", err.msg);
}

static void open_in(struct inst *x, const char *yaml)
{
    struct tp_error err = {0};
    if (inst_open(x, tp_input_uns.options, tp_input_uns.config_size, tp_input_uns.open, yaml, &err))
        fail_msg("input open: %s", err.msg);
}

static void close_in(struct inst *x)
{
    tp_input_uns.close(x->state);
    inst_free(x);
}

/* A message with payload p and metadata pairs k1, v1, ..., NULL. */
static struct tp_msg *msg(const char *p, ...)
{
    struct tp_msg *m = tp_msg_new();
    tp_msg_set_payload(m, p, strlen(p));
    va_list ap;
    va_start(ap, p);
    for (const char *k; (k = va_arg(ap, const char *));)
        tp_msg_meta_sets(m, k, va_arg(ap, const char *));
    va_end(ap);
    return m;
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

static void read_n(struct inst *in, struct tp_batch *b, size_t want)
{
    struct tp_drops drops;
    tp_drops_init(&drops);
    while (b->len < want)
        assert_int_equal(tp_input_uns.read(in->state, b, want - b->len, &drops, &read_err), TP_OK);
    tp_drops_free(&drops);
    assert_int_equal(b->len, want);
}

/* The offset group has committed for umh.messages partition 0 (-1: none). */
static int64_t committed(const char *group)
{
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mock), why,
                      sizeof(why));
    rd_kafka_conf_set(conf, "group.id", group, why, sizeof(why));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, "umh.messages", 0);
    int64_t off = -2;
    if (rd_kafka_committed(rk, parts, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        off = parts->elems[0].offset < 0 ? -1 : parts->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return off;
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
    open_out(&out, "");
    struct tp_msg *msgs[] = {
        msg("1", "umh_topic",
            "umh.v1.acme.plant 1._historian.temp\xc2\xb0"
            "C",
            "site", "p1", "kafka_offset", "999", "bridged_by", "someone-else", NULL),
        msg("2", "site", "p2", NULL), /* no umh_topic */
        msg("3", "umh_topic", "", NULL),
        msg("4", "umh_topic", "umh.v1.acme._historian.rpm", NULL),
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

    open_in(&in, "consumer_group: g1\n");
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
    close_in(&in);
    tp_output_uns.close(out.state);
    inst_free(&out);
}

static void test_input_filter_and_acked_commit(void **state)
{
    (void)state;
    struct inst out, in;
    open_out(&out, "bridged_by: edge-7\numh_topic: 'umh.v1.${! meta(\"area\") }.{{meta.tag}}'\n");
    struct tp_msg *msgs[] = {
        msg("a1", "area", "berlin", "tag", "x", NULL),
        msg("b1", "area", "munich", "tag", "y", NULL),
        msg("c1", "area", "paris", "tag", "z", NULL),
        msg("a2", "area", "berlin", "tag", "w", NULL),
    };
    size_t n_drops = 0;
    free(write_all(&out, msgs, 4, &n_drops));
    assert_int_equal(n_drops, 0);

    open_in(&in, "consumer_group: g2\numh_topics: ['^umh\\.v1\\.berlin\\.', 'munich\\.y$']\n");
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
    close_in(&in);
    assert_int_equal(committed("g2"), 4);

    open_in(&in, "consumer_group: g3\numh_topic: 'v\\d\\.berlin'\n"); /* one pattern, RE2's \d */
    read_n(&in, &b, 2);
    assert_string_equal(b.msgs[0]->payload, "a1");
    assert_string_equal(b.msgs[1]->payload, "a2");
    assert_meta(b.msgs[1], "kafka_offset", "5");
    tp_batch_free(&b);
    close_in(&in);
    tp_output_uns.close(out.state);
    inst_free(&out);
}

/* ---- the log (stderr) captured into a file ---- */

static char log_path[] = "/tmp/test_uns_io.logXXXXXX";
static int saved_stderr = -1;

static void log_capture_start(void)
{
    fflush(stderr);
    int fd = mkstemp(log_path);
    assert_true(fd >= 0);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0 && dup2(fd, 2) == 2);
    close(fd);
}

/* What was logged so far (caller frees). */
static char *log_text(void)
{
    fflush(stderr);
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char *text = calloc(1, 1 << 16);
    assert_non_null(text);
    fread(text, 1, (1 << 16) - 1, f);
    fclose(f);
    return text;
}

/* Waits (up to 60 s: librdkafka logs from its own threads) until the log
 * has `want`. */
static int log_wait_for(const char *want)
{
    for (int waited_ms = 0; waited_ms < 60000; waited_ms += 50) {
        char *text = log_text();
        int found = strstr(text, want) != NULL;
        free(text);
        if (found)
            return 1;
        usleep(50 * 1000);
    }
    return 0;
}

static void log_capture_stop(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    unlink(log_path);
    strcpy(log_path + strlen(log_path) - 6, "XXXXXX");
}

/* The user configured uns: errors, drops and librdkafka's log lines name the
 * uns connector ("uns output: ...", "uns input: ..."), not the Kafka
 * connector it runs on. */
static void test_messages_name_uns(void **state)
{
    (void)state;
    struct inst out;
    open_out(&out, "");
    enum { BIG = 1100 * 1000 }; /* over librdkafka's message.max.bytes (1000000) */
    char *big = malloc(BIG + 1);
    assert_non_null(big);
    memset(big, 'x', BIG);
    big[BIG] = '\0';
    struct tp_msg *m = msg(big, "umh_topic", "umh.v1.acme._historian.big", NULL);
    free(big);
    size_t n_drops = 0;
    struct tp_out_drop *drops = write_all(&out, &m, 1, &n_drops);
    assert_int_equal(n_drops, 1);
    assert_int_equal(drops[0].reason, TP_DROP_INVALID_VALUE);
    if (strncmp(drops[0].error, "uns output: record of 1100000 bytes for umh.messages", 52))
        fail_msg("drop: %s", drops[0].error);
    free(drops);
    tp_output_uns.close(out.state);
    inst_free(&out);

    /* A broker that refuses connections: librdkafka's complaint names uns. */
    struct inst in;
    log_capture_start();
    open_in(&in, "broker_address: '127.0.0.1:1'\nconsumer_group: g9\n");
    int named = log_wait_for("uns input: ");
    close_in(&in);
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
    assert_int_equal(inst_open(&x, tp_input_uns.options, tp_input_uns.config_size,
                               tp_input_uns.open, "umh_topics:\n  - 'umh\\.v1'\n  - 'a(b'\n", &err),
                     TP_CONFIG);
    assert_string_equal(err.file, "t.yaml");
    assert_int_equal(err.line, 4);
    assert_int_equal(err.col, 5);
    assert_non_null(strstr(err.msg, "umh_topics[1]"));
    assert_non_null(strstr(err.msg, "a(b"));
    inst_free(&x);
    assert_int_equal(inst_open(&x, tp_input_uns.options, tp_input_uns.config_size,
                               tp_input_uns.open, "umh_topic: '[z-a]'\n", &err),
                     TP_CONFIG);
    assert_int_equal(err.line, 2);
    assert_non_null(strstr(err.msg, "umh_topic"));
    inst_free(&x);
    assert_int_equal(inst_open(&x, tp_input_uns.options, tp_input_uns.config_size,
                               tp_input_uns.open, "umh_topic: a\numh_topics: [b]\n", &err),
                     TP_CONFIG);
    assert_non_null(strstr(err.msg, "cannot both"));
    inst_free(&x);
    assert_int_equal(inst_open(&x, tp_output_uns.options, tp_output_uns.config_size,
                               tp_output_uns.open, "umh_topic: 'umh.v1.${! now() }'\n", &err),
                     TP_CONFIG);
    assert_int_equal(err.line, 2);
    assert_non_null(strstr(err.msg, "umh_topic"));
    inst_free(&x);
    assert_int_equal(inst_open(&x, tp_output_uns.options, tp_output_uns.config_size,
                               tp_output_uns.open, "topic: x\n", &err),
                     TP_CONFIG);
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
    return cmocka_run_group_tests(tests, setup, teardown);
}
