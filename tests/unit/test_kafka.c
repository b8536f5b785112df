/* Unit tests for the Kafka input and output (src/io/kafka/) against an
 * in-process librdkafka mock cluster: metadata and headers, keys, only acked
 * offsets committed (a new member of the group resumes after the last ack;
 * acked offsets stored in runs still reach the commit, never past an
 * unacked message), key_filter skipping, record fields and headers as
 * metadata, `headers: none` on both sides, the output's librdkafka errors
 * and statistics logged (read as events), and config errors. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "kafka_mock_util.h"

extern const struct tp_input_plugin tp_input_kafka;
extern const struct tp_output_plugin tp_output_kafka;

/* The mock coordinator (librdkafka 2.0.2) keeps a member that left until its
 * session times out, delaying the next join by as much: keep sessions short. */
#define GROUP_PROPS "properties: {session.timeout.ms: '3000', heartbeat.interval.ms: '500'}\n"

static int setup(void **state)
{
    (void)state;
    return mock_start("t1", 2, "t2", 1, "t3", 1, "t4", 1, "t5", 1, "t6", 1, NULL);
}

static void produce(struct inst *out, const char *key, int from, int to)
{
    struct tp_msg *msgs[64] = {0};
    int n = 0;
    for (int i = from; i < to; i++) {
        struct tp_msg *m = tp_msg_new();
        char p[32], k[32];
        snprintf(p, sizeof(p), "%d", i);
        if (key)
            snprintf(k, sizeof(k), "%s", key);
        else
            snprintf(k, sizeof(k), "k%d", i % 2);
        tp_msg_set_payload(m, p, strlen(p));
        tp_msg_meta_sets(m, "umh_topic", k);
        tp_msg_meta_sets(m, "site", "plant1");
        tp_msg_meta_sets(m, "kafka_offset", "999"); /* never becomes a header */
        msgs[n++] = m;
    }
    struct tp_error err = {0};
    int rc = tp_output_write_sync(&tp_output_kafka, out->state, msgs, (size_t)n, NULL, NULL, &err);
    if (rc)
        fail_msg("write: %s", err.msg);
    for (int i = 0; i < n; i++)
        tp_msg_free(msgs[i]);
}

static void test_roundtrip_and_acked_commit(void **state)
{
    (void)state;
    struct inst out, in;
    open_output(&out, &tp_output_kafka, "brokers: BOOT\ntopic: t1\ncompression: lz4\n");
    produce(&out, NULL, 0, 10);

    open_input(&in, &tp_input_kafka,
               "brokers: [BOOT]\ntopics: [t1]\nconsumer_group: g1\n" GROUP_PROPS);
    struct tp_batch b;
    tp_batch_init(&b);
    read_n(&in, &b, 10);
    int seen[10] = {0};
    for (size_t i = 0; i < b.len; i++) {
        struct tp_msg *m = b.msgs[i];
        int v = atoi(m->payload);
        assert_true(v >= 0 && v < 10);
        seen[v]++;
        char k[8];
        snprintf(k, sizeof(k), "k%d", v % 2);
        assert_string_equal(tp_msg_meta_get(m, "kafka_key", NULL), k);
        assert_string_equal(tp_msg_meta_get(m, "kafka_topic", NULL), "t1");
        assert_non_null(tp_msg_meta_get(m, "kafka_partition", NULL));
        assert_non_null(tp_msg_meta_get(m, "kafka_timestamp_ms", NULL));
        assert_string_equal(tp_msg_meta_get(m, "site", NULL), "plant1");
        assert_string_equal(tp_msg_meta_get(m, "umh_topic", NULL), k);
        assert_string_not_equal(tp_msg_meta_get(m, "kafka_offset", NULL), "999");
        assert_non_null(m->ack);
    }
    for (int i = 0; i < 10; i++)
        assert_int_equal(seen[i], 1);
    /* Per key (one partition each) offsets come in order: payloads rise. */
    int last[2] = {-1, -1};
    for (size_t i = 0; i < b.len; i++) {
        int v = atoi(b.msgs[i]->payload);
        assert_true(v > last[v % 2]);
        last[v % 2] = v;
    }
    /* Ack only the first 4 read; the rest must come again to the next member. */
    int acked[10] = {0};
    for (size_t i = 0; i < 4; i++) {
        tp_input_kafka.ack(in.state, b.msgs[i]->ack);
        acked[atoi(b.msgs[i]->payload)] = 1;
    }
    tp_batch_clear(&b);
    inst_close(&in);

    open_input(&in, &tp_input_kafka,
               "brokers: [BOOT]\ntopics: [t1]\nconsumer_group: g1\n" GROUP_PROPS);
    read_n(&in, &b, 6);
    for (size_t i = 0; i < b.len; i++) {
        int v = atoi(b.msgs[i]->payload);
        assert_false(acked[v]);
        acked[v] = 1;
        tp_input_kafka.ack(in.state, b.msgs[i]->ack);
    }
    tp_batch_clear(&b);
    inst_close(&in);

    /* Everything acked: a third member sees only what is produced next. */
    produce(&out, NULL, 10, 11);
    open_input(&in, &tp_input_kafka,
               "brokers: [BOOT]\ntopics: [t1]\nconsumer_group: g1\n" GROUP_PROPS);
    read_n(&in, &b, 1);
    assert_string_equal(b.msgs[0]->payload, "10");
    tp_input_kafka.ack(in.state, b.msgs[0]->ack);
    tp_batch_free(&b);
    inst_close(&in);
    inst_close(&out);
}

static void test_key_filter_skips_and_commits(void **state)
{
    (void)state;
    struct inst out, in;
    open_output(&out, &tp_output_kafka, "brokers: BOOT\ntopic: t2\nkey_meta: umh_topic\n");
    produce(&out, "keep.a", 0, 2);
    produce(&out, "drop.b", 2, 5);
    produce(&out, "keep.c", 5, 6);
    produce(&out, "drop.d", 6, 8);

    open_input(
        &in, &tp_input_kafka,
        "brokers: BOOT\ntopics: t2\nconsumer_group: g2\nkey_filter: '^keep\\.'\n" GROUP_PROPS);
    struct tp_batch b;
    tp_batch_init(&b);
    read_n(&in, &b, 3);
    assert_string_equal(b.msgs[0]->payload, "0");
    assert_string_equal(b.msgs[1]->payload, "1");
    assert_string_equal(b.msgs[2]->payload, "5");
    for (size_t i = 0; i < b.len; i++)
        tp_input_kafka.ack(in.state, b.msgs[i]->ack);
    tp_batch_clear(&b);
    /* The trailing skipped records are committed too once read: produce a
     * sentinel and read it, so that the skipped ones have passed. */
    produce(&out, "keep.e", 8, 9);
    read_n(&in, &b, 1);
    assert_string_equal(b.msgs[0]->payload, "8");
    tp_batch_clear(&b); /* not acked: must come again */
    inst_close(&in);

    open_input(&in, &tp_input_kafka, "brokers: BOOT\ntopics: t2\nconsumer_group: g2\n" GROUP_PROPS);
    read_n(&in, &b, 1);
    assert_string_equal(b.msgs[0]->payload, "8");
    assert_string_equal(tp_msg_meta_get(b.msgs[0], "kafka_offset", NULL), "8");
    tp_input_kafka.ack(in.state, b.msgs[0]->ack);
    tp_batch_free(&b);
    inst_close(&in);
    inst_close(&out);
}

/* Polls the group's committed offset of topic (partition 0) until it is
 * `want` (up to 10 s); returns the last value seen. */
static int64_t committed_becomes(const char *group, const char *topic, int64_t want)
{
    int64_t c = -2;
    for (int i = 0; i < 100 && (c = mock_committed(group, topic)) != want; i++)
        usleep(100000);
    return c;
}

/* Acks advance the stored offset in runs (input.c: every STORE_EVERY
 * offsets, when the partition has nothing in flight, before a wait and
 * every commit); whatever the batching, the committed offset reaches
 * every acked message and never passes an unacked one. */
static void test_batched_store_commits_acked_only(void **state)
{
    (void)state;
    struct inst out, in;
    open_output(&out, &tp_output_kafka, "brokers: BOOT\ntopic: t5\n");
    for (int i = 0; i < 300; i += 60)
        produce(&out, "k", i, i + 60);
    open_input(&in, &tp_input_kafka,
               "brokers: [BOOT]\ntopics: [t5]\nconsumer_group: g5\n"
               "properties: {session.timeout.ms: '3000', heartbeat.interval.ms: '500', "
               "auto.commit.interval.ms: '50'}\n");
    struct tp_batch b;
    tp_batch_init(&b);
    read_n(&in, &b, 300);
    for (size_t i = 0; i < 300; i++)
        assert_int_equal(atoi(b.msgs[i]->payload), (int)i);
    /* 200 acked, 100 still in flight: fewer than a run, nothing stored yet
     * by the acks themselves; auto commit must never pass offset 200. */
    for (size_t i = 0; i < 200; i++)
        tp_input_kafka.ack(in.state, b.msgs[i]->ack);
    usleep(300000);
    assert_true(mock_committed("g5", "t5") <= 200);
    /* The reader's next wait stores the pending run: committed reaches 200
     * (and stays there: 200..299 are in flight). */
    produce(&out, "k", 300, 301);
    struct tp_batch more;
    tp_batch_init(&more);
    read_n(&in, &more, 1);
    assert_string_equal(more.msgs[0]->payload, "300");
    assert_int_equal(committed_becomes("g5", "t5", 200), 200);
    usleep(300000);
    assert_int_equal(mock_committed("g5", "t5"), 200);
    /* The partition drains (every message acked): stored at once, committed
     * without another read. */
    for (size_t i = 200; i < 300; i++)
        tp_input_kafka.ack(in.state, b.msgs[i]->ack);
    tp_input_kafka.ack(in.state, more.msgs[0]->ack);
    assert_int_equal(committed_becomes("g5", "t5", 301), 301);
    tp_batch_free(&b);
    tp_batch_free(&more);
    inst_close(&in);
    inst_close(&out);
}

/* 1 when a thread of this process is named `name` (/proc/self/task). */
static int has_thread(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int found = 0;
    for (struct dirent *e; (e = readdir(d)) && !found;) {
        char path[300], comm[64] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* . and .., or a thread that ended */
        if (fgets(comm, sizeof(comm), f))
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
        found = strcmp(comm, name) == 0;
    }
    closedir(d);
    return found;
}

/* headers: none - the output produces records without headers, the input
 * ignores the headers of records that have them; kafka_* entries stay. The
 * output's delivery-report thread is named tp-kafka-dr. */
static void test_headers_none(void **state)
{
    (void)state;
    struct inst plain, with, in;
    open_output(&plain, &tp_output_kafka, "brokers: BOOT\ntopic: t6\nheaders: none\n");
    int named = 0; /* the thread names itself when it starts running */
    for (int i = 0; i < 500 && !(named = has_thread("tp-kafka-dr")); i++)
        usleep(10000);
    assert_true(named);
    produce(&plain, "a", 0, 2);
    open_output(&with, &tp_output_kafka, "brokers: BOOT\ntopic: t6\n");
    produce(&with, "b", 2, 3);
    inst_close(&plain);
    inst_close(&with);

    static const char *const groups[] = {"g6a", "g6b"};
    for (int g = 0; g < 2; g++) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml),
                 "brokers: [BOOT]\ntopics: [t6]\nconsumer_group: %s\n%s" GROUP_PROPS, groups[g],
                 g ? "headers: none\n" : "");
        open_input(&in, &tp_input_kafka, yaml);
        struct tp_batch b;
        tp_batch_init(&b);
        read_n(&in, &b, 3);
        for (size_t i = 0; i < 3; i++) {
            struct tp_msg *m = b.msgs[i];
            assert_string_equal(tp_msg_meta_get(m, "kafka_key", NULL), i < 2 ? "a" : "b");
            assert_non_null(tp_msg_meta_get(m, "kafka_offset", NULL));
            /* only the record of the default output carries headers (site,
             * umh_topic), and only the input with headers: all sees them */
            int headers = i == 2 && g == 0;
            assert_int_equal(tp_msg_meta_get(m, "site", NULL) != NULL, headers);
            assert_int_equal(m->n_meta, headers ? 7u : 5u);
            tp_input_kafka.ack(in.state, m->ack);
        }
        tp_batch_free(&b);
        inst_close(&in);
    }
}

/* Record fields and headers become metadata in a fixed order: kafka_key,
 * _topic, _partition, _offset, _timestamp_ms, then the headers; a repeated
 * header name keeps its first place and its last value, a header without a
 * value gives "", and a header never hides one of the record's own kafka_*
 * entries (a keyless record's kafka_key header is kept: nothing to hide);
 * names of equal length are told apart, and a record with many headers
 * merges a repeated one the same way. */
static void test_record_fields_and_headers(void **state)
{
    (void)state;
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", mock_bootstrap, why, sizeof(why));
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    assert_non_null(p);
    assert_int_equal(
        rd_kafka_producev(p, RD_KAFKA_V_TOPIC("t4"), RD_KAFKA_V_KEY("k1", 2),
                          RD_KAFKA_V_VALUE("v0", 2), RD_KAFKA_V_TIMESTAMP(1700000000123),
                          RD_KAFKA_V_HEADER("dup", "1", 1),
                          RD_KAFKA_V_HEADER("kafka_topic", "evil", 4),
                          RD_KAFKA_V_HEADER("dup", "2", 1), RD_KAFKA_V_HEADER("empty", NULL, 0),
                          RD_KAFKA_V_HEADER("kafka_note", "x", 1), RD_KAFKA_V_END),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("t4"), RD_KAFKA_V_VALUE("v1", 2),
                                       RD_KAFKA_V_HEADER("kafka_key", "hdr", 3),
                                       RD_KAFKA_V_HEADER("aa", "1", 1),
                                       RD_KAFKA_V_HEADER("ab", "2", 1), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    /* more headers than the input reads at once (32): h3 repeated last,
     * a kafka_partition header past the 32nd still hidden */
    rd_kafka_headers_t *many = rd_kafka_headers_new(44);
    for (int i = 0; i < 40; i++) {
        char name[8];
        snprintf(name, sizeof(name), "h%d", i);
        rd_kafka_header_add(many, i == 36 ? "kafka_partition" : name, -1, i == 36 ? "evil" : "v",
                            -1);
    }
    rd_kafka_header_add(many, "h3", -1, "last", 4);
    assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("t4"), RD_KAFKA_V_VALUE("v2", 2),
                                       RD_KAFKA_V_HEADERS(many), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);

    struct inst in;
    open_input(&in, &tp_input_kafka,
               "brokers: [BOOT]\ntopics: [t4]\nconsumer_group: g4\n" GROUP_PROPS);
    struct tp_batch b;
    tp_batch_init(&b);
    read_n(&in, &b, 3);
    static const char *const want0[][2] = {
        {"kafka_key", "k1"},
        {"kafka_topic", "t4"},
        {"kafka_partition", "0"},
        {"kafka_offset", "0"},
        {"kafka_timestamp_ms", "1700000000123"},
        {"dup", "2"},
        {"empty", ""},
        {"kafka_note", "x"},
    };
    struct tp_msg *m = b.msgs[0];
    assert_string_equal(m->payload, "v0");
    assert_int_equal(m->n_meta, sizeof(want0) / sizeof(want0[0]));
    for (uint32_t i = 0; i < m->n_meta; i++) {
        assert_string_equal(tp_msg_meta_key(m, i), want0[i][0]);
        assert_string_equal(tp_msg_meta_val(m, i), want0[i][1]);
    }
    m = b.msgs[1];
    assert_string_equal(m->payload, "v1");
    assert_string_equal(tp_msg_meta_get(m, "kafka_key", NULL), "hdr");
    assert_string_equal(tp_msg_meta_get(m, "kafka_offset", NULL), "1");
    assert_string_equal(tp_msg_meta_get(m, "aa", NULL), "1");
    assert_string_equal(tp_msg_meta_get(m, "ab", NULL), "2");
    m = b.msgs[2];
    /* topic, partition, offset, timestamp; h0..h39 but h36 */
    assert_int_equal(m->n_meta, 4 + 39);
    assert_string_equal(tp_msg_meta_key(m, 4 + 3), "h3");
    assert_string_equal(tp_msg_meta_val(m, 4 + 3), "last");
    assert_string_equal(tp_msg_meta_get(m, "h31", NULL), "v");
    assert_string_equal(tp_msg_meta_get(m, "h32", NULL), "v");
    assert_string_equal(tp_msg_meta_get(m, "h39", NULL), "v");
    assert_string_equal(tp_msg_meta_key(m, 4 + 38), "h39");
    assert_string_equal(tp_msg_meta_get(m, "kafka_partition", NULL), "0");
    for (size_t i = 0; i < b.len; i++)
        tp_input_kafka.ack(in.state, b.msgs[i]->ack);
    tp_batch_free(&b);
    inst_close(&in);
}

static void test_stop_unblocks_read(void **state)
{
    (void)state;
    struct inst in;
    open_input(&in, &tp_input_kafka, "brokers: BOOT\ntopics: t3\nconsumer_group: g3\n" GROUP_PROPS);
    tp_input_kafka.stop(in.state);
    struct tp_batch b;
    tp_batch_init(&b);
    struct tp_drops drops;
    tp_drops_init(&drops);
    assert_int_equal(tp_input_kafka.read(in.state, &b, 10, &drops, &read_err), TP_EOF);
    assert_int_equal(b.len, 0);
    tp_drops_free(&drops);
    tp_batch_free(&b);
    inst_close(&in);
}

/* A message the broker can never take is a per-message drop naming the reason;
 * the batch completes. */
static void test_write_error_names_reason(void **state)
{
    (void)state;
    struct inst out;
    open_output(&out, &tp_output_kafka,
                "brokers: BOOT\ntopic: t3\nproperties: {message.max.bytes: '1000'}\n");
    struct tp_msg *m = tp_msg_new();
    char big[4000];
    memset(big, 'x', sizeof(big));
    tp_msg_set_payload(m, big, sizeof(big));
    struct tp_error err = {0};
    struct tp_out_drop *drops = NULL;
    size_t n_drops = 0;
    assert_int_equal(
        tp_output_write_sync(&tp_output_kafka, out.state, &m, 1, &drops, &n_drops, &err), TP_OK);
    assert_int_equal(n_drops, 1);
    assert_int_equal(drops[0].index, 0);
    assert_int_equal(drops[0].reason, TP_DROP_INVALID_VALUE);
    assert_non_null(strstr(drops[0].error, "t3"));
    assert_non_null(strstr(drops[0].error, "message.max.bytes"));
    free(drops);
    tp_msg_free(m);
    inst_close(&out);
}

/* The output reads librdkafka's errors and statistics as events of its
 * main queue (with the delivery reports): both reach the log, naming the
 * output. */
static void test_output_errors_and_statistics_logged(void **state)
{
    (void)state;
    enum tp_log_level level = tp_log_get_level();
    tp_log_set_level(TP_LOG_DEBUG);
    log_capture_start();
    struct inst out;
    open_output(&out, &tp_output_kafka,
                "brokers: BOOT\ntopic: t5\nproperties: {statistics.interval.ms: '100'}\n");
    produce(&out, "k", 0, 3);
    int stats = log_wait_for("kafka output statistics: broker 1: ");
    inst_close(&out);
    /* nothing listens there: librdkafka reports all brokers down */
    open_output(&out, &tp_output_kafka, "brokers: '127.0.0.1:1'\ntopic: t5\n");
    int down = log_wait_for("kafka output: _ALL_BROKERS_DOWN: ");
    inst_close(&out);
    char *text = log_text();
    log_capture_stop();
    tp_log_set_level(level);
    if (!stats || !down)
        fail_msg("statistics %s, error %s logged:\n%s", stats ? "" : "not", down ? "" : "not",
                 text);
    free(text);
}

static void test_config_errors(void **state)
{
    (void)state;
    struct inst x;
    struct tp_error err = {0};
    assert_int_equal(INST_OPEN(&x, tp_input_kafka,
                               "brokers: BOOT\ntopics: t\nconsumer_group: g\nkey_filter: '('\n",
                               &err),
                     TP_CONFIG);
    assert_non_null(strstr(err.msg, "key_filter"));
    inst_free(&x);
    assert_int_equal(INST_OPEN(&x, tp_input_kafka, "brokers: BOOT\ntopics: t\n", &err), TP_CONFIG);
    assert_non_null(strstr(err.msg, "consumer_group"));
    inst_free(&x);
    assert_int_equal(INST_OPEN(&x, tp_output_kafka,
                               "brokers: BOOT\nproperties: {no.such.property: '1'}\n", &err),
                     TP_CONFIG);
    assert_non_null(strstr(err.msg, "no.such.property"));
    inst_free(&x);
    assert_int_equal(INST_OPEN(&x, tp_output_kafka, "brokers: BOOT\ncompression: brotli\n", &err),
                     TP_CONFIG);
    inst_free(&x);
}

int main(void)
{
    alarm(120); /* a hang is a failure, not a stuck test run */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_acked_commit),
        cmocka_unit_test(test_key_filter_skips_and_commits),
        cmocka_unit_test(test_record_fields_and_headers),
        cmocka_unit_test(test_batched_store_commits_acked_only),
        cmocka_unit_test(test_headers_none),
        cmocka_unit_test(test_stop_unblocks_read),
        cmocka_unit_test(test_write_error_names_reason),
        cmocka_unit_test(test_output_errors_and_statistics_logged),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, setup, mock_stop);
}
