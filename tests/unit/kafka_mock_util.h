/* Test helper shared by the Kafka and uns unit tests (test_kafka.c,
 * test_uns_io.c): an in-process librdkafka mock cluster, and input or output
 * plugin instances opened from YAML text against it, where BOOT stands for
 * the cluster's bootstrap address; the log (stderr) captured into a file.
 * Header-only; include after <cmocka.h>. */
#ifndef TP_KAFKA_MOCK_UTIL_H
#define TP_KAFKA_MOCK_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "config/config.h"
#include "core/plugin.h"

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static char mock_bootstrap[256];

/* Where a read failure would be described (the reads here must not fail). */
static struct tp_error read_err;

/* Starts a one-broker mock cluster with the topics given as (name,
 * partitions) pairs, NULL-terminated. 0, or -1 when it cannot start. */
static inline int mock_start(const char *topic, ...)
{
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", why, sizeof(why));
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    mock = mock_rk ? rd_kafka_mock_cluster_new(mock_rk, 1) : NULL;
    if (!mock)
        return -1;
    va_list ap;
    va_start(ap, topic);
    for (const char *t = topic; t; t = va_arg(ap, const char *))
        rd_kafka_mock_topic_create(mock, t, va_arg(ap, int), 1);
    va_end(ap);
    snprintf(mock_bootstrap, sizeof(mock_bootstrap), "%s", rd_kafka_mock_cluster_bootstraps(mock));
    return 0;
}

/* cmocka group teardown. */
static inline int mock_stop(void **state)
{
    (void)state;
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(mock_rk);
    return 0;
}

/* The offset group has committed for topic partition 0 (-1: none, -2: the
 * cluster did not say). */
static inline int64_t mock_committed(const char *group, const char *topic)
{
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", mock_bootstrap, why, sizeof(why));
    rd_kafka_conf_set(conf, "group.id", group, why, sizeof(why));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0);
    int64_t off = -2;
    if (rd_kafka_committed(rk, parts, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        off = parts->elems[0].offset < 0 ? -1 : parts->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return off;
}

/* A plugin instance: its config parsed from YAML, then opened. */
struct inst {
    struct tp_config *cfg;
    const struct tp_option *options;
    void *config;
    void *state;
    const struct tp_input_plugin *input; /* the plugin, by open_input / open_output */
    const struct tp_output_plugin *output;
};

/* Parses yaml (each BOOT replaced by the mock's address) with the options
 * of plugin `name` (the path errors name) and opens it. Free x with
 * inst_free whatever the status. */
static inline int inst_open(struct inst *x, const char *name, const struct tp_option *options,
                            size_t size, int (*open)(const void *, void **, struct tp_error *),
                            const char *yaml, struct tp_error *err)
{
    char text[2048];
    size_t n = 0;
    for (const char *p = yaml; *p && n + sizeof(mock_bootstrap) < sizeof(text);)
        if (strncmp(p, "BOOT", 4) == 0) {
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", mock_bootstrap);
            p += 4;
        } else {
            text[n++] = *p++;
        }
    text[n] = '\0';
    memset(x, 0, sizeof(*x));
    x->options = options;
    x->config = calloc(1, size);
    int rc = tp_config_load_string("t.yaml", text, strlen(text), &x->cfg, err);
    if (!rc)
        rc = tp_options_parse(options, x->cfg->root, name, x->config, err);
    if (!rc)
        rc = open(x->config, &x->state, err);
    return rc;
}

/* inst_open of an input or output plugin struct (same field names). */
#define INST_OPEN(x, plugin, yaml, err)                                                            \
    inst_open(x, (plugin).name, (plugin).options, (plugin).config_size, (plugin).open, yaml, err)

static inline void inst_free(struct inst *x)
{
    tp_options_free(x->options, x->config);
    free(x->config);
    tp_config_free(x->cfg);
}

/* Opens input p from yaml; a failure fails the test. */
static inline void open_input(struct inst *x, const struct tp_input_plugin *p, const char *yaml)
{
    struct tp_error err = {0};
    if (INST_OPEN(x, *p, yaml, &err))
        fail_msg("%s input open: %s", p->name, err.msg);
    x->input = p;
}

static inline void open_output(struct inst *x, const struct tp_output_plugin *p, const char *yaml)
{
    struct tp_error err = {0};
    if (INST_OPEN(x, *p, yaml, &err))
        fail_msg("%s output open: %s", p->name, err.msg);
    x->output = p;
}

/* Closes what open_input / open_output opened, and frees x. */
static inline void inst_close(struct inst *x)
{
    if (x->input)
        x->input->close(x->state);
    if (x->output)
        x->output->close(x->state);
    inst_free(x);
}

/* Reads with input `in` until want messages are in b. */
static inline void read_n(struct inst *in, struct tp_batch *b, size_t want)
{
    struct tp_drops drops;
    tp_drops_init(&drops);
    while (b->len < want)
        assert_int_equal(in->input->read(in->state, b, want - b->len, &drops, &read_err), TP_OK);
    tp_drops_free(&drops);
    assert_int_equal(b->len, want);
}

/* ---- the log (stderr) captured into a file ---- */

static char log_path[] = "/tmp/test_kafka_log.XXXXXX";
static int saved_stderr = -1;

static inline void log_capture_start(void)
{
    fflush(stderr);
    int fd = mkstemp(log_path);
    assert_true(fd >= 0);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0 && dup2(fd, 2) == 2);
    close(fd);
}

/* What was logged so far (caller frees). */
static inline char *log_text(void)
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
static inline int log_wait_for(const char *want)
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

static inline void log_capture_stop(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    unlink(log_path);
    strcpy(log_path + strlen(log_path) - 6, "XXXXXX");
}

#endif
