/* Kafka output (librdkafka producer, idempotent by default). write() produces
 * a batch and returns only when every message of it has a successful
 * delivery report, so the pipeline's acks (and the input's commits) follow
 * broker acknowledgements. Headers carry the metadata except kafka_*. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/plugin.h"
#include "io/kafka_internal.h"

#define OUT_PATH "output.kafka"

struct kafka_out_config {
    struct tp_strlist brokers;
    char *topic;
    char *key_meta;
    char *client_id;
    char *compression;
    int64_t linger_ms;
    int64_t batch_size;
    int idempotent;
    int64_t max_retries;
    struct tp_strmap properties;
};

static const char *const codecs[] = {"none", "gzip", "snappy", "lz4", "zstd", NULL};

static const struct tp_option out_options[] = {
    {"brokers", TP_OPT_STRINGS, offsetof(struct kafka_out_config, brokers), NULL,
     "bootstrap brokers, host:port", TP_OPT_REQUIRED, NULL, 0, NULL},
    {"topic", TP_OPT_STRING, offsetof(struct kafka_out_config, topic), "umh.messages",
     "topic to produce to", 0, NULL, 0, NULL},
    {"key_meta", TP_OPT_STRING, offsetof(struct kafka_out_config, key_meta), "umh_topic",
     "metadata entry used as the record key (absent: no key)", 0, NULL, 0, NULL},
    {"client_id", TP_OPT_STRING, offsetof(struct kafka_out_config, client_id), "tagproc",
     "client.id", 0, NULL, 0, NULL},
    {"compression", TP_OPT_STRING, offsetof(struct kafka_out_config, compression), "none",
     "compression.codec", 0, NULL, 0, codecs},
    {"linger_ms", TP_OPT_INT, offsetof(struct kafka_out_config, linger_ms), "5",
     "linger.ms: how long to wait to fill a batch", 0, NULL, 0, NULL},
    {"batch_size", TP_OPT_INT, offsetof(struct kafka_out_config, batch_size), "10000",
     "batch.num.messages: most messages per produce request", 0, NULL, 0, NULL},
    {"idempotent", TP_OPT_BOOL, offsetof(struct kafka_out_config, idempotent), "true",
     "enable.idempotence (no duplicates or reordering from producer retries)", 0, NULL, 0, NULL},
    {"max_retries", TP_OPT_INT, offsetof(struct kafka_out_config, max_retries), "-1",
     "times write() re-produces messages whose delivery failed with a retriable error "
     "(-1: without limit)",
     0, NULL, 0, NULL},
    {"properties", TP_OPT_STRMAP, offsetof(struct kafka_out_config, properties), NULL,
     "extra librdkafka properties, passed as-is", 0, NULL, 0, NULL},
    {0},
};

struct kafka_out {
    const struct kafka_out_config *cfg;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    /* delivery reports of the current write(), indexed by message */
    rd_kafka_resp_err_t *errs;
    size_t cap_errs;
    size_t pending;
    int64_t stop_at_ms; /* monotonic time of stop(), 0 while running (atomic) */
};

/* After a stop, deliveries still pending this long are given up on: the
 * broker is unreachable, and the unacknowledged input comes back later. */
#define STOP_GRACE_MS 10000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int stop_grace_over(struct kafka_out *out)
{
    int64_t at = __atomic_load_n(&out->stop_at_ms, __ATOMIC_RELAXED);
    return at && mono_ms() - at > STOP_GRACE_MS;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    struct kafka_out *out = opaque;
    size_t i = (size_t)(uintptr_t)rkm->_private;
    if (i < out->cap_errs)
        out->errs[i] = rkm->err;
    if (out->pending)
        out->pending--;
}

static void kafka_out_close(void *state);

static int kafka_out_open(const void *config, void **outp, struct tp_error *err)
{
    const struct kafka_out_config *cfg = config;
    struct kafka_out *out = calloc(1, sizeof(*out));
    if (!out)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    out->cfg = cfg;
    rd_kafka_conf_t *conf = NULL;
    char num[32];
    int rc = TP_OK;
    if (cfg->linger_ms < 0 || cfg->batch_size < 1) {
        rc = tp_error_set(err, TP_CONFIG, OUT_PATH ": linger_ms must be >= 0, batch_size >= 1");
        goto fail;
    }
    if (!cfg->topic || !cfg->topic[0]) {
        rc = tp_error_set(err, TP_CONFIG, OUT_PATH ".topic: expected a topic name");
        goto fail;
    }
    rc = tp__kafka_conf_new(OUT_PATH, &cfg->brokers, cfg->client_id, &conf, err);
    if (rc)
        goto fail;
    rc = tp__kafka_conf_set(conf, OUT_PATH, "compression.codec", cfg->compression, err);
    snprintf(num, sizeof(num), "%lld", (long long)cfg->linger_ms);
    if (!rc)
        rc = tp__kafka_conf_set(conf, OUT_PATH, "linger.ms", num, err);
    snprintf(num, sizeof(num), "%lld", (long long)cfg->batch_size);
    if (!rc)
        rc = tp__kafka_conf_set(conf, OUT_PATH, "batch.num.messages", num, err);
    if (!rc)
        rc = tp__kafka_conf_set(conf, OUT_PATH, "enable.idempotence",
                                cfg->idempotent ? "true" : "false", err);
    if (!rc)
        rc = tp__kafka_conf_apply(conf, OUT_PATH, &cfg->properties, err);
    if (rc)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, out);
    char why[512];
    out->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!out->rk) {
        rc = tp_error_set(err, TP_CONFIG, OUT_PATH ": cannot create producer: %s", why);
        goto fail;
    }
    conf = NULL;
    out->rkt = rd_kafka_topic_new(out->rk, cfg->topic, NULL);
    if (!out->rkt) {
        rc = tp_error_set(err, TP_CONFIG, OUT_PATH ".topic: %s",
                          rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    *outp = out;
    return TP_OK;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    kafka_out_close(out);
    return rc;
}

/* Errors worth producing the message again for (the broker may come back). */
static int retriable(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return 1;
    default:
        return 0;
    }
}

static rd_kafka_headers_t *make_headers(const struct tp_msg *m)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(m->n_meta ? m->n_meta : 1);
    for (uint32_t i = 0; i < m->n_meta; i++) {
        const char *k = tp_msg_meta_key(m, i);
        if (strncmp(k, "kafka_", 6) == 0)
            continue;
        rd_kafka_header_add(h, k, (ssize_t)m->meta[i].key_len, tp_msg_meta_val(m, i),
                            (ssize_t)m->meta[i].val_len);
    }
    return h;
}

/* Produces message i (waiting while the local queue is full). */
static rd_kafka_resp_err_t produce_one(struct kafka_out *out, const struct tp_msg *m, size_t i)
{
    size_t klen = 0;
    const char *key = tp_msg_meta_get(m, out->cfg->key_meta, &klen);
    for (;;) {
        rd_kafka_headers_t *h = make_headers(m);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            out->rk, RD_KAFKA_V_RKT(out->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE((void *)m->payload, m->payload_len),
            RD_KAFKA_V_KEY((const void *)key, key ? klen : 0), RD_KAFKA_V_HEADERS(h),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)i), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return e;
        rd_kafka_headers_destroy(h);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return e;
        rd_kafka_poll(out->rk, 50); /* serve delivery reports to make room */
    }
}

static int kafka_out_write(void *state, struct tp_msg *const *msgs, size_t n, struct tp_error *err)
{
    struct kafka_out *out = state;
    if (!n)
        return TP_OK;
    if (n > out->cap_errs) {
        rd_kafka_resp_err_t *v = realloc(out->errs, n * sizeof(*v));
        if (!v)
            return tp_error_set(err, TP_NOMEM, "out of memory");
        out->errs = v;
        out->cap_errs = n;
    }
    /* Round 0 produces everything; later rounds only what failed, in order. */
    for (int64_t round = 0;; round++) {
        out->pending = 0;
        for (size_t i = 0; i < n; i++) {
            if (round > 0 && out->errs[i] == RD_KAFKA_RESP_ERR_NO_ERROR)
                continue;
            out->errs[i] = RD_KAFKA_RESP_ERR__IN_PROGRESS;
            rd_kafka_resp_err_t e = produce_one(out, msgs[i], i);
            if (e) {
                out->errs[i] = e;
                if (!retriable(e)) {
                    rd_kafka_flush(out->rk, 10000);
                    return tp_error_set(err, TP_IO, "kafka output: produce to %s: %s",
                                        out->cfg->topic, rd_kafka_err2str(e));
                }
                continue;
            }
            out->pending++;
        }
        int purged = 0;
        while (out->pending) {
            rd_kafka_flush(out->rk, 100);
            if (!purged && out->pending && stop_grace_over(out)) {
                rd_kafka_purge(out->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
                purged = 1;
            }
        }
        size_t failed = 0;
        rd_kafka_resp_err_t first = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (size_t i = 0; i < n; i++)
            if (out->errs[i] != RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (!failed++)
                    first = out->errs[i];
                if (!retriable(out->errs[i]))
                    first = out->errs[i];
            }
        if (!failed)
            return TP_OK;
        char why[256];
        rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(out->rk, why, sizeof(why));
        if (fatal)
            return tp_error_set(err, TP_IO, "kafka output: fatal producer error %s: %s",
                                rd_kafka_err2name(fatal), why);
        if (__atomic_load_n(&out->stop_at_ms, __ATOMIC_RELAXED))
            return tp_error_set(err, TP_IO,
                                "kafka output: stopping while %zu message(s) to %s are not "
                                "acknowledged (%s); their input will be delivered again",
                                failed, out->cfg->topic, rd_kafka_err2str(first));
        if (!retriable(first) || (out->cfg->max_retries >= 0 && round >= out->cfg->max_retries))
            return tp_error_set(err, TP_IO,
                                "kafka output: delivery to %s failed for %zu message(s): %s",
                                out->cfg->topic, failed, rd_kafka_err2str(first));
        tp_log(TP_LOG_WARN, "kafka output: %zu message(s) not delivered (%s), producing them again",
               failed, rd_kafka_err2str(first));
    }
}

static void kafka_out_stop(void *state)
{
    struct kafka_out *out = state;
    __atomic_store_n(&out->stop_at_ms, mono_ms(), __ATOMIC_RELAXED);
}

static int kafka_out_flush(void *state, struct tp_error *err)
{
    struct kafka_out *out = state;
    rd_kafka_resp_err_t e = rd_kafka_flush(out->rk, 30000);
    if (e)
        return tp_error_set(err, TP_IO, "kafka output: flush: %s", rd_kafka_err2str(e));
    return TP_OK;
}

static void kafka_out_close(void *state)
{
    struct kafka_out *out = state;
    if (!out)
        return;
    if (out->rk) {
        rd_kafka_flush(out->rk, 10000);
        if (out->rkt)
            rd_kafka_topic_destroy(out->rkt);
        rd_kafka_destroy(out->rk);
    }
    free(out->errs);
    free(out);
}

const struct tp_output_plugin tp_output_kafka = {
    .name = "kafka",
    .options = out_options,
    .config_size = sizeof(struct kafka_out_config),
    .open = kafka_out_open,
    .write = kafka_out_write,
    .flush = kafka_out_flush,
    .close = kafka_out_close,
    .stop = kafka_out_stop,
};
