/* MQTT input on the project's own client (src/io/mqtt/). The network loop
 * runs inside read() on the pipeline's reader thread: one read() drains the
 * socket, whole packets become messages, and a message is taken out of the
 * buffer only when the pipeline has room for it. When messages arrive
 * faster than batches are handed over (the socket holds several by the
 * time read() is called again), read() waits `linger` once per batch for
 * more before handing it over (then before its first read of the next
 * batch), so that a dense stream makes batches of many messages instead of
 * one thread hand-off per few messages; a message that read() had to wait
 * for, or one alone, is handed over at once. QoS 1/2 messages are
 * acknowledged (PUBACK / PUBREC) only when the pipeline acks them, i.e. after
 * the output confirmed everything produced from them: ack_batch() queues a
 * batch's packet ids and wakes read(), which sends all queued acks with one
 * write.
 * Acks of an earlier connection are dropped: the broker sends those
 * messages again (duplicates, never losses). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/plugin.h"
#include "io/mqtt/internal.h"

/* MQTT 5 Receive Maximum: the broker may keep this many QoS 1/2 messages
 * in flight to us while the pipeline works on them. */
#define IN_RECEIVE_MAXIMUM 65535

struct mqtt_in_config {
    struct tp__mqtt_common common;
    struct tp_strlist topics;
    int64_t linger; /* ms; see tp__mqtt_in_linger_ms */
    int linger_given;
};

static const struct tp_option mqtt_in_options[] = {
    /* MQTT 5 by default: Receive Maximum 65535 lets the broker keep many
     * messages in flight to us while their PUBACKs wait for the output. */
    TP__MQTT_COMMON_OPTIONS(struct mqtt_in_config, "false", "5"),
    TP_OPTION(struct mqtt_in_config, topics, "topics", TP_OPT_STRINGS, NULL,
              "topic filters to subscribe to (wildcards + and # allowed)",
              .flags = TP_OPT_REQUIRED),
    TP_OPTION(struct mqtt_in_config, linger, "linger", TP_OPT_DURATION, NULL,
              "how long a partial batch may wait for more messages before it is handed on "
              "(once per batch: the most latency it adds); fewer, larger batches cost less CPU "
              "per message; 0: hand it on at once. Default: 2ms at qos 0, 5ms at qos 1 and 2.",
              .min = 0, .max = 1000, .given = TP_OPT_GIVEN_AT(struct mqtt_in_config, linger_given)),
    {0},
};

/* The linger when the config does not set one. At QoS 0 the broker sends
 * without waiting for us and a closed-loop publisher waits on the latency
 * a longer linger adds; at QoS 1 the broker's pace (PUBACK round trips)
 * gathers fewer messages per ms, and a batch's thread hand-offs are a
 * fixed cost (docs/mqtt.md, Batching). */
#define LINGER_QOS0_MS 2
#define LINGER_QOS1_MS 5

int64_t tp__mqtt_in_linger_ms(const void *config)
{
    const struct mqtt_in_config *cfg = config;
    if (cfg->linger_given)
        return cfg->linger;
    return cfg->common.qos == 0 ? LINGER_QOS0_MS : LINGER_QOS1_MS;
}

/* An ack token: (generation << 18) | (qos << 16) | packet id, never 0. */
#define TOKEN(gen, qos, id) ((uintptr_t)(((uint64_t)(gen) << 18) | ((uint64_t)(qos) << 16) | (id)))
#define TOKEN_GEN(t) ((uint64_t)(t) >> 18)
#define TOKEN_QOS(t) ((int)(((uint64_t)(t) >> 16) & 3))
#define TOKEN_ID(t) ((uint16_t)(t))

struct mqtt_in {
    const struct mqtt_in_config *cfg;
    int64_t linger; /* ms: tp__mqtt_in_linger_ms */
    struct tp__mqtt_conn conn;
    struct tp_mqtt_client cl;
    int wake_pipe[2]; /* stop() and ack() wake a waiting read() */
    int stopping;     /* atomic */
    uint16_t sub_id;

    pthread_mutex_t lock; /* guards the ack queue, gen and woken */
    uintptr_t *acks;
    size_t n_acks, cap_acks;
    uint64_t gen; /* connection generation acks must match */
    int woken;    /* a wake byte is in the pipe */
    int waiting;  /* read() blocks in poll: an ack must wake it */
    int nomem;
    int streaming; /* reader thread: the last read() lingered for its batch */
};

static void wake(struct mqtt_in *st)
{
    ssize_t w = write(st->wake_pipe[1], "x", 1);
    (void)w;
}

/* Reads the wake pipe empty. */
static void drain_wake(struct mqtt_in *st)
{
    char b[64];
    pthread_mutex_lock(&st->lock);
    while (read(st->wake_pipe[0], b, sizeof(b)) > 0)
        ;
    st->woken = 0;
    pthread_mutex_unlock(&st->lock);
}

/* Queues the acks of tokens[0..n-1] (NULL: a QoS 0 message, nothing to
 * ack) under one lock, and wakes a waiting read() once. */
static void in_ack_batch(void *p, void *const *tokens, size_t n)
{
    struct mqtt_in *st = p;
    int queued = 0;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < n; i++) {
        uintptr_t t = (uintptr_t)tokens[i];
        if (!t || TOKEN_GEN(t) != st->gen)
            continue;
        if (st->n_acks == st->cap_acks) {
            size_t cap = st->cap_acks ? st->cap_acks * 2 : 1024;
            uintptr_t *a = realloc(st->acks, cap * sizeof(*a));
            if (a) {
                st->acks = a;
                st->cap_acks = cap;
            }
        }
        /* Without memory the ack is lost: the broker redelivers after a reconnect. */
        if (st->n_acks < st->cap_acks) {
            st->acks[st->n_acks++] = t;
            queued = 1;
        }
    }
    /* A busy read() sends the acks on its next round anyway. */
    if (queued && st->waiting && !st->woken) {
        st->woken = 1;
        wake(st);
    }
    pthread_mutex_unlock(&st->lock);
}

/* Encodes the queued acks of the current connection (one write follows). */
static void take_acks(struct mqtt_in *st)
{
    struct tp_buf *out = tp_mqtt_client_out(&st->cl);
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < st->n_acks; i++) {
        uintptr_t t = st->acks[i];
        enum tp_mqtt_type type = TOKEN_QOS(t) == 2 ? TP_MQTT_PUBREC : TP_MQTT_PUBACK;
        if (TOKEN_GEN(t) == st->gen && tp_mqtt_encode_ack(out, st->cl.o.version, type, TOKEN_ID(t)))
            st->nomem = 1;
    }
    st->n_acks = 0;
    pthread_mutex_unlock(&st->lock);
}

static void on_connected(struct mqtt_in *st)
{
    pthread_mutex_lock(&st->lock);
    st->gen = st->cl.generation;
    st->n_acks = 0; /* acks of the old connection: the broker sends those again */
    pthread_mutex_unlock(&st->lock);
    /* Subscribing on every connect is harmless for a persistent session and
     * required for a clean one. */
    st->sub_id = st->sub_id == 65535 ? 1 : st->sub_id + 1;
    if (tp_mqtt_encode_subscribe(tp_mqtt_client_out(&st->cl), st->cl.o.version, st->sub_id,
                                 (const char *const *)st->cfg->topics.v, st->cfg->topics.n,
                                 (int)st->cfg->common.qos))
        st->nomem = 1;
    tp_mqtt_client_send(&st->cl);
}

static void on_suback(struct mqtt_in *st, const struct tp_mqtt_packet *pkt)
{
    if (pkt->id != st->sub_id)
        return;
    for (size_t i = 0; i < pkt->list_len && i < st->cfg->topics.n; i++) {
        if (pkt->list[i] <= 2)
            tp_log(TP_LOG_INFO, "mqtt input: subscribed to %s (qos %d)", st->cfg->topics.v[i],
                   pkt->list[i]);
        else
            tp_log(TP_LOG_ERROR,
                   "mqtt input: the broker refused the subscription to %s (code 0x%02x)",
                   st->cfg->topics.v[i], pkt->list[i]);
    }
}

/* MQTT 5 User Properties become metadata, in packet order; a repeated name
 * keeps its last value; the mqtt_* keys appended after them win. */
static int append_user_props(struct tp_msg *m, const struct tp_mqtt_props *props)
{
    struct tp_mqtt_str k, v;
    size_t pos = 0;
    while (tp_mqtt_user_prop_next(props, &pos, &k, &v))
        if (tp_msg_meta_append(m, k.p, k.len, v.p, v.len))
            return TP_NOMEM;
    return TP_OK;
}

static int on_publish(struct mqtt_in *st, const struct tp_mqtt_packet *pkt, struct tp_batch *batch)
{
    static const char *const qos_text[] = {"0", "1", "2"};
    struct tp_msg *m = tp_msg_new_payload((const char *)pkt->payload, pkt->payload_len);
    size_t n_user = pkt->props.n_user;
    /* Room for all entries at once: the mqtt_* keys and values below, each
     * with its NUL (sizeof counts the key's), and the User Properties, whose
     * bytes in the packet are more than their keys and values with NULs. */
    size_t meta_bytes = sizeof("mqtt_topic") + pkt->topic.len + 1 + sizeof("mqtt_qos") + 2 +
                        sizeof("mqtt_retain") + sizeof("false") +
                        (n_user ? pkt->props.block_len : 0);
    if (!m || tp_msg_meta_reserve(m, 3 + (uint32_t)n_user, meta_bytes) ||
        append_user_props(m, &pkt->props) ||
        tp_msg_meta_append(m, "mqtt_topic", 10, pkt->topic.p, pkt->topic.len) ||
        tp_msg_meta_append(m, "mqtt_qos", 8, qos_text[pkt->qos], 1) ||
        tp_msg_meta_append(m, "mqtt_retain", 11, pkt->retain ? "true" : "false",
                           pkt->retain ? 4 : 5) ||
        (n_user && tp_msg_meta_dedupe(m))) {
        tp_msg_free(m);
        return TP_NOMEM;
    }
    if (pkt->qos > 0)
        m->ack = (void *)TOKEN(st->cl.generation, pkt->qos, pkt->id);
    return tp_batch_push(batch, m) ? TP_NOMEM : TP_OK;
}

/* Handles the buffered packets until the batch is full. */
static int handle_packets(struct mqtt_in *st, struct tp_batch *batch, size_t max)
{
    struct tp_mqtt_packet pkt;
    while (batch->len < max && tp_mqtt_client_next(&st->cl, &pkt) == TP_OK) {
        switch (pkt.type) {
        case TP_MQTT_PUBLISH:
            if (on_publish(st, &pkt, batch))
                return TP_NOMEM;
            break;
        case TP_MQTT_SUBACK:
            on_suback(st, &pkt);
            break;
        case TP_MQTT_PUBREL: /* QoS 2: our PUBREC went out after the output confirmed */
            if (tp_mqtt_encode_ack(tp_mqtt_client_out(&st->cl), st->cl.o.version, TP_MQTT_PUBCOMP,
                                   pkt.id))
                return TP_NOMEM;
            break;
        default:
            tp_mqtt_client_lost(&st->cl, "unexpected packet from the broker");
            return TP_OK;
        }
    }
    return TP_OK;
}

/* Marks read() as blocking in poll (on = 1; refused, 0, while acks are
 * queued) or as running again (on = 0). */
static int set_waiting(struct mqtt_in *st, int on)
{
    pthread_mutex_lock(&st->lock);
    int ok = !on || st->n_acks == 0;
    if (ok)
        st->waiting = on;
    pthread_mutex_unlock(&st->lock);
    return ok;
}

static int stopping(struct mqtt_in *st)
{
    return __atomic_load_n(&st->stopping, __ATOMIC_ACQUIRE);
}

/* Waits up to the linger for more messages (stop() cuts it short). */
static void linger(struct mqtt_in *st)
{
    uint64_t end = tp_mono_ms() + (uint64_t)st->linger;
    for (uint64_t now = tp_mono_ms(); now < end && !stopping(st); now = tp_mono_ms()) {
        struct pollfd pw = {st->wake_pipe[0], POLLIN, 0};
        if (poll(&pw, 1, (int)(end - now)) <= 0)
            break;
        drain_wake(st); /* a late ack wake-up or stop() */
    }
}

static int in_read(void *p, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                   struct tp_error *err)
{
    (void)drops;
    struct mqtt_in *st = p;
    /* waited: this call found the socket empty and waited in poll() for
     * its first bytes — a sparse stream, whose batch goes on at once. */
    int rc = TP_OK, lingered = 0, waited = 0, stream = st->streaming;
    st->streaming = 0;
    if (!stream)
        st->cl.net.drained = 0; /* look first: bytes that came meanwhile mean a dense stream */
    while (!stopping(st) && batch->len < max) {
        if (!st->cl.connected) {
            if (batch->len)
                break; /* hand over what we have before waiting */
            int crc = tp_mqtt_client_connect(&st->cl, st->wake_pipe[0]);
            if (crc == TP_EOF)
                drain_wake(st);
            if (crc == TP_OK)
                on_connected(st);
            continue;
        }
        take_acks(st);
        rc = handle_packets(st, batch, max);
        if (rc || st->nomem) {
            rc = TP_NOMEM;
            break;
        }
        if (batch->len >= max || !st->cl.connected)
            continue;
        if (batch->len && st->cl.net.drained) {
            /* The last read() emptied the socket: linger once if messages
             * come densely (several at once, without waiting for them),
             * then hand over what we have. */
            if (lingered || waited || batch->len < 2 || st->linger <= 0)
                break;
            lingered = 1;
            linger(st);
            st->cl.net.drained = 0;
        } else if (stream && !lingered && st->linger > 0) {
            /* Messages kept coming: let the next batch gather first, then
             * read it at once (no poll() for the first of them). */
            lingered = 1;
            linger(st);
            st->cl.net.drained = 0;
        }
        if (!st->cl.net.drained) { /* bytes may be there: read without poll() */
            tp_mqtt_client_read(&st->cl);
            continue;
        }
        /* Nothing buffered, the socket empty: wait for it (or acks, stop). */
        if (!set_waiting(st, 1))
            continue; /* acks arrived: send them first */
        int woken = 0;
        waited = 1;
        int prc = tp_mqtt_client_poll(&st->cl, 1000, st->wake_pipe[0], &woken);
        set_waiting(st, 0);
        if (prc)
            continue;
        if (woken)
            drain_wake(st);
    }
    if (st->cl.connected) {
        take_acks(st);
        tp_mqtt_client_send(&st->cl);
    }
    st->streaming = lingered && batch->len >= 2;
    if (rc)
        return tp_error_set(err, rc, "out of memory");
    return stopping(st) ? TP_EOF : TP_OK;
}

static void in_stop(void *p)
{
    struct mqtt_in *st = p;
    __atomic_store_n(&st->stopping, 1, __ATOMIC_RELEASE);
    wake(st);
}

static void in_close(void *p)
{
    struct mqtt_in *st = p;
    if (!st)
        return;
    if (st->cl.connected) {
        /* The pipeline has drained: send the last acks, then DISCONNECT.
         * Messages the broker sent but we did not read stay unacknowledged:
         * a persistent session gets them again. */
        take_acks(st);
        tp_mqtt_client_disconnect(&st->cl, 2000);
    }
    tp__mqtt_conn_free(&st->conn, &st->cl);
    free(st->acks);
    if (st->wake_pipe[0] >= 0) {
        close(st->wake_pipe[0]);
        close(st->wake_pipe[1]);
    }
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static int in_open(const void *config, void **out, struct tp_error *err)
{
    const struct mqtt_in_config *cfg = config;
    struct mqtt_in *st = calloc(1, sizeof(*st));
    if (!st)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    st->cfg = cfg;
    st->linger = tp__mqtt_in_linger_ms(cfg);
    st->wake_pipe[0] = st->wake_pipe[1] = -1;
    pthread_mutex_init(&st->lock, NULL);
    tp_mqtt_net_init(&st->cl.net);
    int rc = TP_OK;
    if (cfg->topics.n == 0) {
        rc = tp_error_set(err, TP_CONFIG, "input.mqtt.topics: expected at least one topic");
        goto fail;
    }
    for (size_t i = 0; i < cfg->topics.n; i++)
        if (!tp_mqtt_topic_valid(cfg->topics.v[i], strlen(cfg->topics.v[i]), 1)) {
            rc = tp_error_set(err, TP_CONFIG, "input.mqtt.topics[%zu]: invalid topic filter \"%s\"",
                              i, cfg->topics.v[i]);
            goto fail;
        }
    if (pipe2(st->wake_pipe, O_CLOEXEC | O_NONBLOCK)) {
        rc = tp_error_set(err, TP_IO, "input.mqtt: pipe: %s", strerror(errno));
        goto fail;
    }
    rc = tp__mqtt_conn_setup(&cfg->common, "input.mqtt", "mqtt input", "", IN_RECEIVE_MAXIMUM,
                             &st->conn, &st->cl, err);
    if (rc)
        goto fail;
    if (!cfg->common.clean_session && !cfg->common.client_id)
        tp_log(TP_LOG_WARN, "input.mqtt: persistent session (clean_session: false) with a "
                            "generated client id: the next process will not resume it; set "
                            "client_id");
    /* A broker that is down at start-up is not an error: read() connects
     * and retries with the back-off. */
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
    .ack_batch = in_ack_batch,
    .stop = in_stop,
    .close = in_close,
};
