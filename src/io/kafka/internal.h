/* Shared by the Kafka connectors: kafka/common.c's helpers (a librdkafka
 * configuration from our options, librdkafka's log and error callbacks
 * routed into the tagproc logger) and the config structs of the Kafka input
 * and output, so that a connector built on them (uns) opens tp_input_kafka /
 * tp_output_kafka with a config it fills itself. Only src/io/kafka/ and
 * src/io/uns/ include this header (it pulls in rdkafka.h). */
#ifndef TP_KAFKA_INTERNAL_H
#define TP_KAFKA_INTERNAL_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "config/config.h"
#include "core/error.h"
#include "core/plugin.h"

extern const struct tp_input_plugin tp_input_kafka;
extern const struct tp_output_plugin tp_output_kafka;

/* Sets one librdkafka property; on failure fills err naming `path`.name. */
int tp__kafka_conf_set(rd_kafka_conf_t *conf, const char *path, const char *name, const char *value,
                       struct tp_error *err);

/* Logs a librdkafka error of rk (the error callback tp__kafka_conf_new
 * sets; also for clients that read their errors as events). */
void tp__kafka_log_error(rd_kafka_t *rk, int err, const char *reason);

/* New configuration with bootstrap.servers (brokers joined by ','), client.id
 * (when not NULL) and the logger/error callbacks set. Caller owns *out (freed
 * by rd_kafka_new on success or rd_kafka_conf_destroy). */
int tp__kafka_conf_new(const char *path, const struct tp_strlist *brokers, const char *client_id,
                       rd_kafka_conf_t **out, struct tp_error *err);

/* How a Kafka input or output names itself in errors and logs: "input.kafka"
 * and "kafka input", or after the connector built on it ("input.uns", "uns
 * input": the user configured that one). The first member of the input's
 * and the output's state, which is librdkafka's opaque: the log and error
 * callbacks find it there (a configuration without an opaque: "kafka"). */
struct tp__kafka_names {
    char path[32]; /* "input.kafka" */
    char who[32];  /* "kafka input" */
};

/* side: "input" or "output"; connector: NULL for "kafka". */
void tp__kafka_names_init(struct tp__kafka_names *n, const char *side, const char *connector);

/* Choices of the input's and the output's `headers` option. */
extern const char *const tp__kafka_header_modes[];

/* 1 when a `headers` option value means "none" (NULL: the default, all). */
int tp__kafka_headers_none(const char *mode);

/* Applies the user's `properties` map as-is, after our defaults. */
int tp__kafka_conf_apply(rd_kafka_conf_t *conf, const char *path, const struct tp_strmap *props,
                         struct tp_error *err);

/* The Kafka input's options (kafka/input.c). */
struct tp__kafka_in_config {
    struct tp_strlist brokers;
    struct tp_strlist topics;
    char *consumer_group;
    char *client_id;
    char *start_offset;
    char *key_filter;
    int64_t max_poll_records;
    int64_t revoke_timeout_ms;
    struct tp_strmap properties;
    int64_t max_meta_keys; /* 0 (a config filled by another connector): the default */
    char *headers;         /* "all" or "none"; NULL (filled by another connector): all */
    const char *connector; /* set by a connector built on this input (uns), else NULL */
};

/* Record key of message i of b for an output built on the Kafka output:
 * sets *key / *len (valid until the next call) and returns 0, or declares
 * message i dropped (tp_out_batch_drop) and returns -1: it is not produced. */
typedef int (*tp__kafka_key_fn)(void *ctx, struct tp_out_batch *b, size_t i, const char **key,
                                size_t *len);

/* The Kafka output's options (kafka/output.c), then fields no option sets. */
struct tp__kafka_out_config {
    struct tp_strlist brokers;
    char *topic;
    char *key_meta;
    char *client_id;
    char *compression;
    int64_t linger_ms;
    int64_t batch_size;
    int idempotent;
    int64_t max_retries;
    char *headers; /* "all" or "none"; NULL (filled by another connector): all */
    struct tp_strmap properties;
    /* Set by a connector built on this output (uns), NULL otherwise: */
    const char *connector;   /* its name, in errors and logs (tp__kafka_names) */
    tp__kafka_key_fn key_fn; /* replaces key_meta */
    void *key_ctx;
    /* One more header on every record, in place of a metadata entry of the
     * same name (uns: bridged_by). */
    const char *extra_header, *extra_header_value;
};

#endif
