/* MQTT output (libmosquitto, its own network thread via mosquitto_loop_start).
 * write() publishes a batch and returns only when the broker acknowledged
 * every message (PUBACK / PUBCOMP; QoS 0: written to the socket). While the
 * broker is away libmosquitto keeps the unacknowledged QoS>0 messages and
 * sends them again after its automatic reconnect (exponential back-off);
 * write() simply keeps waiting for their acknowledgements. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/plugin.h"
#include "io/mqtt_internal.h"

struct mqtt_out_config {
    struct tp__mqtt_common common;
    char *topic;
    int retain;
    int64_t max_inflight;
};

static const struct tp_option mqtt_out_options[] = {
    TP__MQTT_COMMON_OPTIONS(struct mqtt_out_config, "true"),
    {"topic", TP_OPT_STRING, offsetof(struct mqtt_out_config, topic), NULL,
     "topic template with {{meta.KEY}} placeholders (default: umh_topic with '.' -> '/')", 0, NULL,
     0, NULL},
    {"retain", TP_OPT_BOOL, offsetof(struct mqtt_out_config, retain), "false",
     "publish with the retain flag", 0, NULL, 0, NULL},
    {"max_inflight", TP_OPT_INT, offsetof(struct mqtt_out_config, max_inflight), "1000",
     "maximum unacknowledged messages (1..60000)", 0, NULL, 0, NULL},
    {0},
};

#define N_MIDS 65536

struct mqtt_out {
    const struct mqtt_out_config *cfg;
    struct mosquitto *mosq;
    struct tp__mqtt_endpoint ep;
    struct tp__mqtt_template tpl;
    int has_tpl;
    int loop_started;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    int connected;
    int stopping;                  /* stop() was called: stop waiting for an unreachable broker */
    unsigned char pending[N_MIDS]; /* 1: published, not yet acknowledged */
    size_t n_pending;
    struct tp_buf topic;
};

/* ---------- callbacks (libmosquitto's network thread) ---------- */

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq;
    struct mqtt_out *st = obj;
    pthread_mutex_lock(&st->lock);
    if (rc == 0) {
        st->connected = 1;
        tp_log(TP_LOG_INFO, "mqtt output: connected to %s (%zu messages awaiting ack)",
               st->cfg->common.url, st->n_pending);
    } else {
        tp_log_limited(TP_LOG_ERROR, "mqtt-out-refused",
                       "mqtt output: %s refused the connection: %s", st->cfg->common.url,
                       mosquitto_connack_string(rc));
    }
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq;
    struct mqtt_out *st = obj;
    pthread_mutex_lock(&st->lock);
    st->connected = 0;
    if (rc != 0)
        tp_log_limited(TP_LOG_WARN, "mqtt-out-lost",
                       "mqtt output: lost the connection to %s: %s (%zu messages awaiting ack, "
                       "reconnecting)",
                       st->cfg->common.url, mosquitto_strerror(rc), st->n_pending);
    if (st->cfg->common.qos == 0 && st->n_pending) {
        /* QoS 0 packets not yet written are discarded by libmosquitto. */
        tp_log(TP_LOG_WARN, "mqtt output: up to %zu QoS 0 messages lost with the connection",
               st->n_pending);
        memset(st->pending, 0, sizeof(st->pending));
        st->n_pending = 0;
    }
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    (void)mosq;
    struct mqtt_out *st = obj;
    pthread_mutex_lock(&st->lock);
    if (mid >= 0 && mid < N_MIDS && st->pending[mid]) {
        st->pending[mid] = 0;
        st->n_pending--;
        /* The writer waits for "all acknowledged" or "room for one more". */
        if (st->n_pending == 0 || st->n_pending + 1 == (size_t)st->cfg->max_inflight)
            pthread_cond_broadcast(&st->cond);
    }
    pthread_mutex_unlock(&st->lock);
}

static void on_log(struct mosquitto *mosq, void *obj, int level, const char *text)
{
    (void)mosq;
    (void)obj;
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
        tp_log_limited(TP_LOG_WARN, "mqtt-out-lib", "mqtt output: libmosquitto: %s", text);
}

/* ---------- write ---------- */

/* Waits on the condition up to 10 s; logs while the broker is unreachable.
 * After stop(), gives up (TP_IO) when the broker is not connected. */
static int wait_a_while(struct mqtt_out *st, struct tp_error *err)
{
    if (st->stopping && !st->connected)
        return tp_error_set(err, TP_IO,
                            "mqtt output: stopping while %s is unreachable: %zu messages not "
                            "acknowledged",
                            st->cfg->common.url, st->n_pending);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    if (pthread_cond_timedwait(&st->cond, &st->lock, &ts) == ETIMEDOUT)
        tp_log(TP_LOG_WARN, "mqtt output: waiting for %s: %s, %zu messages awaiting ack",
               st->cfg->common.url, st->connected ? "connected" : "not connected", st->n_pending);
    return TP_OK;
}

static int build_topic(struct mqtt_out *st, const struct tp_msg *m, struct tp_error *err)
{
    int rc = st->has_tpl ? tp__mqtt_template_render(&st->tpl, m, &st->topic)
                         : tp__mqtt_default_topic(m, &st->topic);
    if (rc == TP_NOMEM)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    if (rc)
        return tp_error_set(err, TP_IO,
                            "mqtt output: message without umh_topic metadata; set "
                            "output.mqtt.topic");
    if (st->topic.len == 0)
        return tp_error_set(err, TP_IO, "mqtt output: topic template \"%s\" rendered empty",
                            st->cfg->topic);
    return TP_OK;
}

/* Publishes one message, called with st->lock held. */
static int publish_one(struct mqtt_out *st, const struct tp_msg *m, struct tp_error *err)
{
    int qos = (int)st->cfg->common.qos;
    if (m->payload_len > INT_MAX)
        return tp_error_set(err, TP_IO, "mqtt output: payload of %zu bytes too large",
                            m->payload_len);
    int rc = build_topic(st, m, err);
    if (rc)
        return rc;
    for (;;) {
        while (st->n_pending >= (size_t)st->cfg->max_inflight || (qos == 0 && !st->connected))
            if (wait_a_while(st, err))
                return TP_IO;
        int mid = 0;
        /* Holding st->lock here is safe: mosquitto_publish never takes the
         * callback mutex that on_publish runs under, and it assigns the mid
         * before an acknowledgement could arrive for it. */
        int mrc = mosquitto_publish(st->mosq, &mid, st->topic.data, (int)m->payload_len, m->payload,
                                    qos, st->cfg->retain ? true : false);
        if (mrc == MOSQ_ERR_SUCCESS ||
            (qos > 0 && (mrc == MOSQ_ERR_NO_CONN || mrc == MOSQ_ERR_CONN_LOST))) {
            /* QoS > 0 without a connection: queued in libmosquitto, sent
             * after the reconnect. */
            if (mid >= 0 && mid < N_MIDS && !st->pending[mid]) {
                st->pending[mid] = 1;
                st->n_pending++;
            }
            return TP_OK;
        }
        if (qos == 0 && (mrc == MOSQ_ERR_NO_CONN || mrc == MOSQ_ERR_CONN_LOST)) {
            st->connected = 0;
            continue;
        }
        if (mrc == MOSQ_ERR_NOMEM)
            return tp_error_set(err, TP_NOMEM, "out of memory");
        return tp_error_set(err, TP_IO, "mqtt output: cannot publish to \"%s\": %s", st->topic.data,
                            mosquitto_strerror(mrc));
    }
}

static int out_write(void *p, struct tp_msg *const *msgs, size_t n, struct tp_error *err)
{
    struct mqtt_out *st = p;
    int rc = TP_OK;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; rc == TP_OK && i < n; i++)
        rc = publish_one(st, msgs[i], err);
    /* Even after an error, wait for what was published: it is on its way. */
    struct tp_error werr = {0};
    while (st->n_pending)
        if (wait_a_while(st, rc ? &werr : err)) {
            rc = rc ? rc : TP_IO;
            break;
        }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static int out_flush(void *p, struct tp_error *err)
{
    struct mqtt_out *st = p;
    int rc = TP_OK;
    pthread_mutex_lock(&st->lock);
    while (rc == TP_OK && st->n_pending)
        rc = wait_a_while(st, err);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static void out_stop(void *p)
{
    struct mqtt_out *st = p;
    pthread_mutex_lock(&st->lock);
    st->stopping = 1;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static void out_close(void *p)
{
    struct mqtt_out *st = p;
    if (!st)
        return;
    if (st->mosq) {
        if (st->loop_started) {
            pthread_mutex_lock(&st->lock);
            int connected = st->connected;
            pthread_mutex_unlock(&st->lock);
            int drc = mosquitto_disconnect(st->mosq);
            /* Connected: the loop ends once DISCONNECT is sent. Otherwise it
             * may sleep in its reconnect back-off: cancel it. */
            mosquitto_loop_stop(st->mosq, !(connected && drc == MOSQ_ERR_SUCCESS));
        }
        mosquitto_destroy(st->mosq);
    }
    tp__mqtt_template_free(&st->tpl);
    tp_buf_free(&st->topic);
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->cond);
    free(st);
}

static int out_open(const void *config, void **out, struct tp_error *err)
{
    const struct mqtt_out_config *cfg = config;
    struct mqtt_out *st = calloc(1, sizeof(*st));
    if (!st)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    st->cfg = cfg;
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->cond, NULL);
    tp_buf_init(&st->topic);
    int rc = TP_OK;
    if (cfg->max_inflight < 1 || cfg->max_inflight > 60000) {
        rc = tp_error_set(err, TP_CONFIG, "output.mqtt.max_inflight: expected 1..60000, got %lld",
                          (long long)cfg->max_inflight);
        goto fail;
    }
    if (cfg->topic) {
        rc = tp__mqtt_template_compile(cfg->topic, "output.mqtt.topic", &st->tpl, err);
        if (rc)
            goto fail;
        st->has_tpl = 1;
    }
    rc = tp__mqtt_client_new(&cfg->common, "output.mqtt", "-out", st, &st->mosq, &st->ep, err);
    if (rc)
        goto fail;
    mosquitto_connect_callback_set(st->mosq, on_connect);
    mosquitto_disconnect_callback_set(st->mosq, on_disconnect);
    mosquitto_publish_callback_set(st->mosq, on_publish);
    mosquitto_log_callback_set(st->mosq, on_log);
    mosquitto_int_option(st->mosq, MOSQ_OPT_SEND_MAXIMUM, (int)cfg->max_inflight);
    mosquitto_reconnect_delay_set(st->mosq, (unsigned)cfg->common.reconnect_delay,
                                  (unsigned)cfg->common.reconnect_delay_max, true);
    /* A broker that is down at start-up is not an error: the network thread
     * keeps reconnecting and write() waits. */
    int mrc =
        mosquitto_connect_async(st->mosq, st->ep.host, st->ep.port, (int)cfg->common.keepalive);
    if (mrc == MOSQ_ERR_INVAL) {
        rc = tp_error_set(err, TP_CONFIG, "output.mqtt.url: invalid broker address");
        goto fail;
    }
    if (mrc != MOSQ_ERR_SUCCESS)
        tp_log(TP_LOG_WARN, "mqtt output: cannot connect to %s yet: %s; retrying", cfg->common.url,
               mrc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(mrc));
    mrc = mosquitto_loop_start(st->mosq);
    if (mrc != MOSQ_ERR_SUCCESS) {
        rc = tp_error_set(err, TP_IO, "output.mqtt: cannot start the network thread: %s",
                          mosquitto_strerror(mrc));
        goto fail;
    }
    st->loop_started = 1;
    *out = st;
    return TP_OK;
fail:
    out_close(st);
    return rc;
}

const struct tp_output_plugin tp_output_mqtt = {
    .name = "mqtt",
    .options = mqtt_out_options,
    .config_size = sizeof(struct mqtt_out_config),
    .open = out_open,
    .write = out_write,
    .flush = out_flush,
    .close = out_close,
    .stop = out_stop,
};
