/* MQTT input (libmosquitto). The network loop runs inside read() on the
 * pipeline's reader thread (poll + mosquitto_loop_read/write/misc), so a
 * message is taken off the socket only when the pipeline has room for it:
 * backpressure reaches the broker through TCP and the broker's queue, and no
 * acknowledged message ever waits in a private queue that a stop could lose.
 * Reconnects use an exponential back-off; stop() wakes poll() through a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/plugin.h"
#include "io/mqtt_internal.h"

struct mqtt_in_config {
    struct tp__mqtt_common common;
    struct tp_strlist topics;
};

static const struct tp_option mqtt_in_options[] = {
    TP__MQTT_COMMON_OPTIONS(struct mqtt_in_config, "false"),
    {"topics", TP_OPT_STRINGS, offsetof(struct mqtt_in_config, topics), NULL,
     "topic filters to subscribe to (wildcards + and # allowed)", TP_OPT_REQUIRED, NULL, 0, NULL},
    {0},
};

struct mqtt_in {
    const struct mqtt_in_config *cfg;
    struct mosquitto *mosq;
    struct tp__mqtt_endpoint ep;
    int stop_pipe[2];
    int stopping;             /* set by stop() from another thread: atomic access */
    uint64_t next_attempt_ms; /* earliest time of the next reconnect attempt */
    uint64_t backoff_ms;
    int sub_mid;
    struct tp_batch *batch;   /* the batch read() is filling, NULL outside read() */
    struct tp_batch overflow; /* messages that arrived outside read() */
    int nomem;
};

/* ---------- callbacks (run inside mosquitto_loop_* on the reader thread) ---------- */

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    struct mqtt_in *st = obj;
    if (rc != 0) {
        tp_log_limited(TP_LOG_ERROR, "mqtt-in-refused", "mqtt input: %s refused the connection: %s",
                       st->cfg->common.url, mosquitto_connack_string(rc));
        return;
    }
    st->backoff_ms = (uint64_t)st->cfg->common.reconnect_delay * 1000u;
    tp_log(TP_LOG_INFO, "mqtt input: connected to %s", st->cfg->common.url);
    /* Subscribing again on every connect is harmless for a persistent session
     * and required for a clean one. */
    int n = (int)st->cfg->topics.n;
    rc = mosquitto_subscribe_multiple(mosq, &st->sub_mid, n, st->cfg->topics.v,
                                      (int)st->cfg->common.qos, 0, NULL);
    if (rc != MOSQ_ERR_SUCCESS)
        tp_log(TP_LOG_ERROR, "mqtt input: subscribe failed: %s", mosquitto_strerror(rc));
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted)
{
    (void)mosq;
    struct mqtt_in *st = obj;
    if (mid != st->sub_mid)
        return;
    for (int i = 0; i < n && i < (int)st->cfg->topics.n; i++) {
        if (granted[i] >= 0 && granted[i] <= 2)
            tp_log(TP_LOG_INFO, "mqtt input: subscribed to %s (qos %d)", st->cfg->topics.v[i],
                   granted[i]);
        else
            tp_log(TP_LOG_ERROR, "mqtt input: the broker refused the subscription to %s",
                   st->cfg->topics.v[i]);
    }
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *mm)
{
    (void)mosq;
    struct mqtt_in *st = obj;
    struct tp_msg *m = tp_msg_new();
    char qos[4];
    snprintf(qos, sizeof(qos), "%d", mm->qos);
    if (!m || tp_msg_set_payload(m, mm->payload ? mm->payload : "", (size_t)mm->payloadlen) ||
        tp_msg_meta_sets(m, "mqtt_topic", mm->topic) || tp_msg_meta_sets(m, "mqtt_qos", qos) ||
        tp_msg_meta_sets(m, "mqtt_retain", mm->retain ? "true" : "false")) {
        tp_msg_free(m);
        st->nomem = 1;
        return;
    }
    if (tp_batch_push(st->batch ? st->batch : &st->overflow, m))
        st->nomem = 1;
}

static void on_log(struct mosquitto *mosq, void *obj, int level, const char *text)
{
    (void)mosq;
    (void)obj;
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
        tp_log_limited(TP_LOG_WARN, "mqtt-in-lib", "mqtt input: libmosquitto: %s", text);
}

/* ---------- connection handling ---------- */

static void schedule_reconnect(struct mqtt_in *st, const char *why)
{
    tp_log_limited(TP_LOG_WARN, "mqtt-in-lost", "mqtt input: %s: %s; retrying in %llu ms",
                   st->cfg->common.url, why, (unsigned long long)st->backoff_ms);
    st->next_attempt_ms = tp__mqtt_now_ms() + st->backoff_ms;
    uint64_t max = (uint64_t)st->cfg->common.reconnect_delay_max * 1000u;
    st->backoff_ms = st->backoff_ms * 2 > max ? max : st->backoff_ms * 2;
}

/* Waits for the stop pipe up to ms milliseconds; 1 when stop was requested. */
static int wait_stop(struct mqtt_in *st, int ms)
{
    struct pollfd p = {st->stop_pipe[0], POLLIN, 0};
    if (poll(&p, 1, ms) > 0 || __atomic_load_n(&st->stopping, __ATOMIC_ACQUIRE))
        return 1;
    return 0;
}

static void drain_overflow(struct mqtt_in *st, struct tp_batch *batch)
{
    for (size_t i = 0; i < st->overflow.len; i++)
        if (tp_batch_push(batch, st->overflow.msgs[i]))
            st->nomem = 1;
    st->overflow.len = 0;
}

static int in_read(void *p, struct tp_batch *batch, size_t max, struct tp_drops *drops)
{
    (void)drops;
    struct mqtt_in *st = p;
    drain_overflow(st, batch);
    st->batch = batch;
    int rc = TP_OK;
    while (!__atomic_load_n(&st->stopping, __ATOMIC_ACQUIRE) && batch->len < max) {
        if (st->nomem) {
            rc = TP_NOMEM;
            break;
        }
        int sock = mosquitto_socket(st->mosq);
        if (sock < 0) {
            if (batch->len)
                break; /* hand over what we have before waiting */
            uint64_t now = tp__mqtt_now_ms();
            if (now < st->next_attempt_ms && wait_stop(st, (int)(st->next_attempt_ms - now)))
                break;
            int mrc = mosquitto_reconnect(st->mosq);
            if (mrc != MOSQ_ERR_SUCCESS)
                schedule_reconnect(st, mrc == MOSQ_ERR_ERRNO ? strerror(errno)
                                                             : mosquitto_strerror(mrc));
            continue;
        }
        struct pollfd fds[2] = {
            {sock, (short)(POLLIN | (mosquitto_want_write(st->mosq) ? POLLOUT : 0)), 0},
            {st->stop_pipe[0], POLLIN, 0},
        };
        int n = poll(fds, 2, batch->len ? 0 : 1000);
        if (n < 0 && errno != EINTR) {
            tp_log(TP_LOG_ERROR, "mqtt input: poll: %s", strerror(errno));
            rc = TP_IO;
            break;
        }
        if (n > 0 && fds[1].revents)
            break;
        int mrc = MOSQ_ERR_SUCCESS;
        if (n > 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP)))
            mrc = mosquitto_loop_read(st->mosq, 1);
        if (mrc == MOSQ_ERR_SUCCESS && mosquitto_want_write(st->mosq))
            mrc = mosquitto_loop_write(st->mosq, 1);
        if (mrc == MOSQ_ERR_SUCCESS)
            mrc = mosquitto_loop_misc(st->mosq);
        /* libmosquitto closes the socket on every connection error. */
        if (mosquitto_socket(st->mosq) < 0) {
            schedule_reconnect(st, mrc == MOSQ_ERR_ERRNO ? strerror(errno)
                                   : mrc                 ? mosquitto_strerror(mrc)
                                                         : "connection closed");
            continue;
        }
        if (mrc == MOSQ_ERR_NOMEM) {
            rc = TP_NOMEM;
            break;
        }
        if (n == 0 && batch->len)
            break; /* nothing more right now */
    }
    st->batch = NULL;
    if (rc)
        return rc;
    return __atomic_load_n(&st->stopping, __ATOMIC_ACQUIRE) ? TP_EOF : TP_OK;
}

static void in_stop(void *p)
{
    struct mqtt_in *st = p;
    __atomic_store_n(&st->stopping, 1, __ATOMIC_RELEASE);
    ssize_t w = write(st->stop_pipe[1], "x", 1);
    (void)w;
}

static void in_close(void *p)
{
    struct mqtt_in *st = p;
    if (!st)
        return;
    if (st->mosq) {
        if (mosquitto_socket(st->mosq) >= 0) {
            /* Messages the broker sent but we did not read were not
             * acknowledged: a persistent session gets them again. */
            mosquitto_disconnect(st->mosq);
            mosquitto_loop_write(st->mosq, 1);
        }
        mosquitto_destroy(st->mosq);
    }
    tp_batch_free(&st->overflow);
    if (st->stop_pipe[0] >= 0) {
        close(st->stop_pipe[0]);
        close(st->stop_pipe[1]);
    }
    free(st);
}

static int in_open(const void *config, void **out, struct tp_error *err)
{
    const struct mqtt_in_config *cfg = config;
    struct mqtt_in *st = calloc(1, sizeof(*st));
    if (!st)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    st->cfg = cfg;
    st->stop_pipe[0] = st->stop_pipe[1] = -1;
    tp_batch_init(&st->overflow);
    int rc = TP_OK;
    if (cfg->topics.n == 0) {
        rc = tp_error_set(err, TP_CONFIG, "input.mqtt.topics: expected at least one topic");
        goto fail;
    }
    for (size_t i = 0; i < cfg->topics.n; i++)
        if (mosquitto_sub_topic_check(cfg->topics.v[i]) != MOSQ_ERR_SUCCESS) {
            rc = tp_error_set(err, TP_CONFIG, "input.mqtt.topics[%zu]: invalid topic filter \"%s\"",
                              i, cfg->topics.v[i]);
            goto fail;
        }
    if (pipe2(st->stop_pipe, O_CLOEXEC | O_NONBLOCK)) {
        rc = tp_error_set(err, TP_IO, "input.mqtt: pipe: %s", strerror(errno));
        goto fail;
    }
    rc = tp__mqtt_client_new(&cfg->common, "input.mqtt", "", st, &st->mosq, &st->ep, err);
    if (rc)
        goto fail;
    if (!cfg->common.clean_session && !cfg->common.client_id)
        tp_log(TP_LOG_WARN, "input.mqtt: persistent session (clean_session: false) with a "
                            "generated client id: the next process will not resume it; set "
                            "client_id");
    mosquitto_connect_callback_set(st->mosq, on_connect);
    mosquitto_subscribe_callback_set(st->mosq, on_subscribe);
    mosquitto_message_callback_set(st->mosq, on_message);
    mosquitto_log_callback_set(st->mosq, on_log);
    st->backoff_ms = (uint64_t)cfg->common.reconnect_delay * 1000u;
    /* A broker that is down at start-up is not an error: read() retries. */
    int mrc = mosquitto_connect(st->mosq, st->ep.host, st->ep.port, (int)cfg->common.keepalive);
    if (mrc == MOSQ_ERR_INVAL) {
        rc = tp_error_set(err, TP_CONFIG, "input.mqtt.url: invalid broker address");
        goto fail;
    }
    if (mrc != MOSQ_ERR_SUCCESS)
        schedule_reconnect(st, mrc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(mrc));
    *out = st;
    return TP_OK;
fail:
    in_close(st);
    return rc;
}

const struct tp_input_plugin tp_input_mqtt = {
    .name = "mqtt",
    .options = mqtt_in_options,
    .config_size = sizeof(struct mqtt_in_config),
    .open = in_open,
    .read = in_read,
    .ack = NULL,
    .stop = in_stop,
    .close = in_close,
};
