/* uns input (benthos-umh semantics): reads the Kafka topic umh.messages in a
 * consumer group, keeps the records whose key (the UMH topic) matches one
 * of `umh_topics` (all by default), and gives each message the record's
 * headers, `umh_topic` (the key) and the kafka_* metadata (kafka_msg_key
 * too, benthos-umh's name of the key). Runs the Kafka input underneath:
 * at-least-once (offsets committed only once acked). */
#include <stdlib.h>
#include <string.h>

#include "io/kafka/internal.h"
#include "io/uns/internal.h"

#define IN_PATH "input.uns"

struct uns_in_config {
    char *broker_address;
    struct tp_strlist umh_topics;
    char *umh_topic;
    char *consumer_group;
};

static const struct tp_option uns_in_options[] = {
    TP_OPTION(struct uns_in_config, broker_address, "broker_address", TP_OPT_STRING,
              TP_UNS_BROKER_DEFAULT, "Kafka bootstrap brokers, host:port, comma-separated"),
    TP_OPTION(struct uns_in_config, umh_topics, "umh_topics", TP_OPT_STRINGS, NULL,
              "regular expressions (Go/RE2 syntax as in benthos-umh: \\d \\w \\s and "
              "[[:digit:]] classes; unanchored) on the record key, the UMH topic: a record "
              "matching any of them is read (default: every record)",
              .flags = TP_OPT_REGEX),
    TP_OPTION(struct uns_in_config, umh_topic, "umh_topic", TP_OPT_STRING, NULL,
              "one such regular expression (benthos-umh's single-pattern form; not with "
              "umh_topics)",
              .flags = TP_OPT_REGEX),
    TP_OPTION(struct uns_in_config, consumer_group, "consumer_group", TP_OPT_STRING, "uns_plugin",
              "consumer group id (offsets are committed for it)"),
    {0},
};

struct uns_in {
    struct tp__kafka_in_config kcfg;
    char *brokers[1];
    char *topics[1];
    void *kafka; /* the Kafka input's state */
};

/* The patterns as one alternation "(p1)|(p2)|...", or NULL when there are
 * none (every record is read). Each pattern compiled on its own when the
 * config was parsed (TP_OPT_REGEX), so the alternation compiles too. */
static int key_filter(const struct uns_in_config *cfg, char **out)
{
    const char *one[1] = {cfg->umh_topic};
    const char *const *v = cfg->umh_topic ? one : (const char *const *)cfg->umh_topics.v;
    size_t n = cfg->umh_topic ? 1 : cfg->umh_topics.n;
    *out = NULL;
    if (!n)
        return TP_OK;
    struct tp_buf b;
    tp_buf_init(&b);
    int rc = TP_OK;
    for (size_t i = 0; i < n && !rc; i++)
        rc = tp_buf_printf(&b, "%s(%s)", i ? "|" : "", v[i]);
    if (rc) {
        tp_buf_free(&b);
        return TP_NOMEM;
    }
    *out = tp_buf_take(&b, NULL);
    return *out ? TP_OK : TP_NOMEM;
}

static void uns_in_close(void *state);

static int uns_in_open(const void *config, void **outp, struct tp_error *err)
{
    const struct uns_in_config *cfg = config;
    struct uns_in *in = calloc(1, sizeof(*in));
    if (!in)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    int rc = TP_OK;
    if (!cfg->broker_address || !cfg->broker_address[0]) {
        rc = tp_error_set(err, TP_CONFIG, IN_PATH ".broker_address: expected host:port");
        goto fail;
    }
    if (cfg->umh_topic && cfg->umh_topics.n) {
        rc = tp_error_set(err, TP_CONFIG,
                          IN_PATH ": umh_topic and umh_topics cannot both be set (use umh_topics)");
        goto fail;
    }
    struct tp__kafka_in_config *k = &in->kcfg;
    if (key_filter(cfg, &k->key_filter)) {
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
        goto fail;
    }
    in->brokers[0] = cfg->broker_address;
    in->topics[0] = (char *)TP_UNS_TOPIC;
    k->brokers.v = in->brokers;
    k->brokers.n = 1;
    k->topics.v = in->topics;
    k->topics.n = 1;
    k->consumer_group = cfg->consumer_group;
    k->client_id = (char *)"tagproc";
    k->start_offset = (char *)"earliest";
    k->revoke_timeout_ms = 10000;
    k->connector = "uns"; /* its errors and logs name uns, not kafka */
    rc = tp_input_kafka.open(k, &in->kafka, err);
    if (rc)
        goto fail;
    *outp = in;
    return TP_OK;
fail:
    uns_in_close(in);
    return rc;
}

/* Reads like the Kafka input, then names each new message's UMH topic
 * (the record key) in `umh_topic`, over a header of that name, and in
 * `kafka_msg_key` (benthos-umh's name for kafka_key). */
static int uns_in_read(void *state, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                       struct tp_error *err)
{
    struct uns_in *in = state;
    size_t first = batch->len;
    int rc = tp_input_kafka.read(in->kafka, batch, max, drops, err);
    for (size_t i = first; i < batch->len; i++) {
        struct tp_msg *m = batch->msgs[i];
        size_t len = 0;
        const char *v = tp_msg_meta_get(m, "kafka_key", &len);
        if (!v)
            continue;
        /* a copy: setting metadata may move the message's metadata storage */
        char *key = malloc(len + 1);
        if (!key)
            return tp_error_set(err, TP_NOMEM, "out of memory");
        memcpy(key, v, len + 1);
        int bad = tp_msg_meta_set(m, "kafka_msg_key", 13, key, len) ||
                  tp_msg_meta_set(m, "umh_topic", 9, key, len);
        free(key);
        if (bad)
            return tp_error_set(err, TP_NOMEM, "out of memory");
    }
    return rc;
}

static void uns_in_ack(void *state, void *token)
{
    struct uns_in *in = state;
    tp_input_kafka.ack(in->kafka, token);
}

static void uns_in_stop(void *state)
{
    struct uns_in *in = state;
    tp_input_kafka.stop(in->kafka);
}

static void uns_in_close(void *state)
{
    struct uns_in *in = state;
    if (!in)
        return;
    if (in->kafka)
        tp_input_kafka.close(in->kafka);
    free(in->kcfg.key_filter);
    free(in);
}

const struct tp_input_plugin tp_input_uns = {
    .name = "uns",
    .options = uns_in_options,
    .config_size = sizeof(struct uns_in_config),
    .open = uns_in_open,
    .read = uns_in_read,
    .ack = uns_in_ack,
    .stop = uns_in_stop,
    .close = uns_in_close,
};
