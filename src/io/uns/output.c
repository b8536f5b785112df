/* uns output (benthos-umh semantics): every message becomes a record of the
 * Kafka topic umh.messages, keyed by its UMH topic (the `umh_topic` template,
 * default the umh_topic metadata; characters outside [A-Za-z0-9._-] become
 * '_'), with every metadata entry except kafka_* plus `bridged_by` as
 * headers. Runs the Kafka output underneath (same delivery guarantees); a
 * message without a UMH topic is dropped as invalid_topic (dead-lettered). */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/template.h"
#include "io/kafka/internal.h"
#include "io/uns/internal.h"

#define OUT_PATH "output.uns"
/* How long open() waits for the broker to say whether umh.messages exists
 * and, if not, to create it. */
#define TOPIC_CHECK_MS 10000

struct uns_out_config {
    char *broker_address;
    char *umh_topic;
    char *bridged_by;
};

static const struct tp_option uns_out_options[] = {
    TP_OPTION(struct uns_out_config, broker_address, "broker_address", TP_OPT_STRING,
              TP_UNS_BROKER_DEFAULT, "Kafka bootstrap brokers, host:port, comma-separated"),
    TP_OPTION(struct uns_out_config, umh_topic, "umh_topic", TP_OPT_STRING,
              "${! meta(\"umh_topic\") }",
              "template of the record key (the UMH topic); characters outside [A-Za-z0-9._-] "
              "become '_'; a message for which it names missing metadata or renders empty is "
              "dropped as invalid_topic",
              .flags = TP_OPT_TEMPLATE),
    TP_OPTION(struct uns_out_config, bridged_by, "bridged_by", TP_OPT_STRING, "umh-core",
              "value of the bridged_by header added to every record"),
    {0},
};

struct uns_out {
    struct tp__kafka_out_config kcfg;
    char *brokers[1];
    struct tp_template *tpl;
    struct tp_buf key;
    void *kafka; /* the Kafka output's state */
};

/* Replaces, in place, every character outside [A-Za-z0-9._-] by '_' (one
 * per UTF-8 character, as benthos-umh does); returns the new length. */
static size_t sanitize_key(char *k, size_t len)
{
    size_t o = 0;
    for (size_t j = 0; j < len; j++) {
        unsigned char c = (unsigned char)k[j];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '-') {
            k[o++] = (char)c;
            continue;
        }
        k[o++] = '_';
        int follow = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
        while (follow-- > 0 && j + 1 < len && ((unsigned char)k[j + 1] & 0xC0) == 0x80)
            j++;
    }
    return o;
}

/* The record key of message i: the rendered template, sanitised; a message
 * it cannot be built for is dropped. Called by the Kafka output's submit. */
static int record_key(void *ctx, struct tp_out_batch *b, size_t i, const char **key, size_t *len)
{
    struct uns_out *out = ctx;
    const char *missing = NULL;
    int rc = tp_template_render(out->tpl, b->msgs[i], &out->key, &missing);
    if (rc) {
        tp_out_batch_drop(b, i, TP_DROP_INVALID_TOPIC, "uns output: out of memory");
        return -1;
    }
    if (missing) {
        tp_out_batch_drop(b, i, TP_DROP_INVALID_TOPIC,
                          "uns output: message without %s metadata: no UMH topic for the record "
                          "key (set it, e.g. with tag_processor, or set output.uns.umh_topic)",
                          missing);
        return -1;
    }
    if (out->key.len == 0) {
        tp_out_batch_drop(b, i, TP_DROP_INVALID_TOPIC,
                          "uns output: the UMH topic is empty (output.uns.umh_topic)");
        return -1;
    }
    *len = sanitize_key(out->key.data, out->key.len);
    *key = out->key.data;
    return 0;
}

/* Creates umh.messages (1 partition, cleanup.policy=compact,delete) when the
 * broker does not have it. A broker that cannot be asked in time only gets
 * a warning: the Kafka output keeps retrying, as for any unreachable broker. */
static void ensure_topic(const struct tp_strlist *brokers)
{
    struct tp_error err = {0};
    rd_kafka_conf_t *conf = NULL;
    if (tp__kafka_conf_new(OUT_PATH, brokers, "tagproc", &conf, &err) ||
        tp__kafka_conf_set(conf, OUT_PATH, "allow.auto.create.topics", "false", &err)) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        tp_log(TP_LOG_WARN, "uns output: cannot check topic " TP_UNS_TOPIC ": %s", err.msg);
        return;
    }
    struct tp__kafka_names names; /* librdkafka's log lines name uns */
    tp__kafka_names_init(&names, "output", "uns");
    rd_kafka_conf_set_opaque(conf, &names);
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        tp_log(TP_LOG_WARN, "uns output: cannot check topic " TP_UNS_TOPIC ": %s", why);
        return;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, TP_UNS_TOPIC, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, TOPIC_CHECK_MS);
    rd_kafka_resp_err_t terr = e ? e : md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__FAIL;
    int partitions = !e && md->topic_cnt ? md->topics[0].partition_cnt : 0;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (terr == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (partitions != 1)
            tp_log(TP_LOG_WARN,
                   "uns output: topic " TP_UNS_TOPIC " has %d partitions (UMH uses 1): records "
                   "of one key stay in order, records of different keys may not",
                   partitions);
    } else if (terr != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        tp_log(TP_LOG_WARN, "uns output: cannot check topic " TP_UNS_TOPIC ": %s",
               rd_kafka_err2str(terr));
    } else {
        rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(TP_UNS_TOPIC, 1, -1, why, sizeof(why));
        rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact,delete");
        rd_kafka_AdminOptions_t *opt =
            rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_AdminOptions_set_operation_timeout(opt, TOPIC_CHECK_MS, why, sizeof(why));
        rd_kafka_AdminOptions_set_request_timeout(opt, TOPIC_CHECK_MS, why, sizeof(why));
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, TOPIC_CHECK_MS + 2000);
        const rd_kafka_CreateTopics_result_t *res =
            ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
        rd_kafka_resp_err_t ce = !ev                        ? RD_KAFKA_RESP_ERR__TIMED_OUT
                                 : rd_kafka_event_error(ev) ? rd_kafka_event_error(ev)
                                 : n                        ? rd_kafka_topic_result_error(tr[0])
                                                            : RD_KAFKA_RESP_ERR__FAIL;
        if (ce == RD_KAFKA_RESP_ERR_NO_ERROR)
            tp_log(TP_LOG_INFO, "uns output: created topic " TP_UNS_TOPIC
                                " (1 partition, cleanup.policy=compact,delete)");
        else if (ce != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            tp_log(TP_LOG_WARN, "uns output: cannot create topic " TP_UNS_TOPIC ": %s",
                   ev && rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev)
                   : n && rd_kafka_topic_result_error_string(tr[0])
                       ? rd_kafka_topic_result_error_string(tr[0])
                       : rd_kafka_err2str(ce));
        if (ev)
            rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        rd_kafka_AdminOptions_destroy(opt);
        rd_kafka_NewTopic_destroy(nt);
    }
    rd_kafka_destroy(rk);
}

static void uns_out_close(void *state);

static int uns_out_open(const void *config, void **outp, struct tp_error *err)
{
    const struct uns_out_config *cfg = config;
    struct uns_out *out = calloc(1, sizeof(*out));
    if (!out)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    tp_buf_init(&out->key);
    int rc = TP_OK;
    struct tp_template_error te;
    if (!cfg->broker_address || !cfg->broker_address[0]) {
        rc = tp_error_set(err, TP_CONFIG, OUT_PATH ".broker_address: expected host:port");
        goto fail;
    }
    rc = tp_template_compile(cfg->umh_topic, &out->tpl, &te);
    if (rc) {
        if (rc == TP_CONFIG)
            tp_error_set(err, rc, OUT_PATH ".umh_topic: %s", te.why);
        else
            tp_error_set(err, rc, "out of memory");
        goto fail;
    }
    /* benthos-umh's batching: 100 records or 100 ms, whichever comes first. */
    struct tp__kafka_out_config *k = &out->kcfg;
    out->brokers[0] = cfg->broker_address;
    k->brokers.v = out->brokers;
    k->brokers.n = 1;
    k->topic = (char *)TP_UNS_TOPIC;
    k->client_id = (char *)"tagproc";
    k->compression = (char *)"none";
    k->linger_ms = 100;
    k->batch_size = 100;
    k->idempotent = 1;
    k->max_retries = -1;
    k->key_fn = record_key;
    k->key_ctx = out;
    k->extra_header = "bridged_by";
    k->extra_header_value = cfg->bridged_by ? cfg->bridged_by : "";
    k->connector = "uns"; /* its errors and logs name uns, not kafka */
    ensure_topic(&k->brokers);
    rc = tp_output_kafka.open(k, &out->kafka, err);
    if (rc)
        goto fail;
    *outp = out;
    return TP_OK;
fail:
    uns_out_close(out);
    return rc;
}

static int uns_out_submit(void *state, struct tp_out_batch *b)
{
    struct uns_out *out = state;
    return tp_output_kafka.submit(out->kafka, b);
}

static void uns_out_stop(void *state)
{
    struct uns_out *out = state;
    tp_output_kafka.stop(out->kafka);
}

static void uns_out_close(void *state)
{
    struct uns_out *out = state;
    if (!out)
        return;
    if (out->kafka)
        tp_output_kafka.close(out->kafka);
    tp_template_free(out->tpl);
    tp_buf_free(&out->key);
    free(out);
}

const struct tp_output_plugin tp_output_uns = {
    .name = "uns",
    .options = uns_out_options,
    .config_size = sizeof(struct uns_out_config),
    .open = uns_out_open,
    .submit = uns_out_submit,
    .close = uns_out_close,
    .stop = uns_out_stop,
};
