/* Helpers shared by the Kafka connectors (kafka/input.c, kafka/output.c and
 * the uns connector built on them): a librdkafka configuration from our
 * options, with librdkafka's log and error callbacks routed into the
 * tagproc logger. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "io/kafka/internal.h"

void tp__kafka_names_init(struct tp__kafka_names *n, const char *side, const char *connector)
{
    const char *name = connector ? connector : "kafka";
    snprintf(n->path, sizeof(n->path), "%s.%s", side, name);
    snprintf(n->who, sizeof(n->who), "%s %s", name, side);
}

/* Who logs for rk: its opaque's names (see internal.h), else "kafka". */
static const char *who(void *opaque)
{
    return opaque ? ((const struct tp__kafka_names *)opaque)->who : "kafka";
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum tp_log_level l = level <= 3 ? TP_LOG_ERROR : level <= 5 ? TP_LOG_WARN : TP_LOG_DEBUG;
    char key[96];
    snprintf(key, sizeof(key), "kafka|%s", fac);
    tp_log_limited(l, key, "%s: %s: %s", who(rd_kafka_opaque(rk)), fac, buf);
}

void tp__kafka_log_error(rd_kafka_t *rk, int err, const char *reason)
{
    const char *name = who(rd_kafka_opaque(rk));
    char key[96];
    snprintf(key, sizeof(key), "kafka-error|%d", err);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[256];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));
        tp_log(TP_LOG_ERROR, "%s: fatal error %s: %s", name, rd_kafka_err2name(orig), why);
        return;
    }
    tp_log_limited(TP_LOG_WARN, key, "%s: %s: %s", name, rd_kafka_err2name(err), reason);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque; /* rd_kafka_opaque(rk) */
    tp__kafka_log_error(rk, err, reason);
}

int tp__kafka_conf_set(rd_kafka_conf_t *conf, const char *path, const char *name, const char *value,
                       struct tp_error *err)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK)
        return tp_error_set(err, TP_CONFIG, "%s: librdkafka property %s=%s: %s", path, name, value,
                            why);
    return TP_OK;
}

int tp__kafka_conf_new(const char *path, const struct tp_strlist *brokers, const char *client_id,
                       rd_kafka_conf_t **out, struct tp_error *err)
{
    if (!brokers->n)
        return tp_error_set(err, TP_CONFIG, "%s.brokers: expected at least one broker", path);
    size_t len = 1;
    for (size_t i = 0; i < brokers->n; i++)
        len += strlen(brokers->v[i]) + 1;
    char *list = malloc(len);
    if (!list)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    list[0] = '\0';
    for (size_t i = 0; i < brokers->n; i++) {
        if (i)
            strcat(list, ",");
        strcat(list, brokers->v[i]);
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = tp__kafka_conf_set(conf, path, "bootstrap.servers", list, err);
    free(list);
    if (rc == TP_OK && client_id)
        rc = tp__kafka_conf_set(conf, path, "client.id", client_id, err);
    /* write() waits for each batch's acknowledgements: with Nagle on, every
     * batch could wait for the peer's delayed ACK (~40 ms). */
    if (rc == TP_OK)
        rc = tp__kafka_conf_set(conf, path, "socket.nagle.disable", "true", err);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    *out = conf;
    return TP_OK;
}

const char *const tp__kafka_header_modes[] = {"all", "none", NULL};

int tp__kafka_headers_none(const char *mode)
{
    return mode && strcmp(mode, "none") == 0;
}

int tp__kafka_conf_apply(rd_kafka_conf_t *conf, const char *path, const struct tp_strmap *props,
                         struct tp_error *err)
{
    char p[128];
    snprintf(p, sizeof(p), "%s.properties", path);
    for (size_t i = 0; i < props->n; i++) {
        int rc = tp__kafka_conf_set(conf, p, props->keys[i], props->vals[i], err);
        if (rc)
            return rc;
    }
    return TP_OK;
}
