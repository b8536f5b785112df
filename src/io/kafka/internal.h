/* Helpers shared by the Kafka input (input.c) and output (output.c):
 * building a librdkafka configuration from our options and routing
 * librdkafka's log and error callbacks into the tagproc logger.
 * Only src/io/kafka*.c include this header (it pulls in rdkafka.h). */
#ifndef TP_KAFKA_INTERNAL_H
#define TP_KAFKA_INTERNAL_H

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "core/error.h"

/* Sets one librdkafka property; on failure fills err naming `path`.name. */
int tp__kafka_conf_set(rd_kafka_conf_t *conf, const char *path, const char *name, const char *value,
                       struct tp_error *err);

/* New configuration with bootstrap.servers (brokers joined by ','), client.id
 * (when not NULL) and the logger/error callbacks set. Caller owns *out (freed
 * by rd_kafka_new on success or rd_kafka_conf_destroy). */
int tp__kafka_conf_new(const char *path, const struct tp_strlist *brokers, const char *client_id,
                       rd_kafka_conf_t **out, struct tp_error *err);

/* Applies the user's `properties` map as-is, after our defaults. */
int tp__kafka_conf_apply(rd_kafka_conf_t *conf, const char *path, const struct tp_strmap *props,
                         struct tp_error *err);

#endif
