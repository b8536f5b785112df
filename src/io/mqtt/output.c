/* MQTT output on the project's own client (src/io/mqtt/). submit() renders
 * the topics and encodes a batch's PUBLISH packets on the pipeline's writer
 * thread (a message whose topic cannot be built is an invalid_topic drop)
 * and, while connected, sends what the in-flight window allows right there
 * with one non-blocking write (QoS 0: the batch is complete when written).
 * The output's network thread reads PUBACKs (PUBREC/PUBCOMP for QoS 2) with
 * one read per round, sends what a full socket or window held back, keeps
 * the keepalive and reconnects (broker list, back-off), sending every
 * unacknowledged message again (DUP) after a reconnect. Both threads work
 * on the client under one mutex, which the network thread releases only
 * while it waits in poll() or connects. A batch is completed (plugin.h) when
 * every message is acknowledged (QoS 0: written to the socket), in order;
 * many batches are in flight. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/plugin.h"
#include "core/template.h"
#include "io/mqtt/internal.h"

struct mqtt_out_config {
    struct tp__mqtt_common common;
    char *topic;
    int retain;
    int64_t max_inflight;
};

static const struct tp_option mqtt_out_options[] = {
    /* MQTT 3.1.1 by default: with 5 mosquitto announces its
     * max_inflight_messages (default 20) as Receive Maximum, which would cap
     * the window at 20 (measured: twice the system calls per message). */
    TP__MQTT_COMMON_OPTIONS(struct mqtt_out_config, "true", "3.1.1"),
    TP_OPTION(struct mqtt_out_config, topic, "topic", TP_OPT_STRING, NULL,
              "topic template with {{meta.KEY}}, ${! meta(\"KEY\") } or ${! @KEY } placeholders "
              "(default: "
              "umh_topic with '.' -> '/')",
              .flags = TP_OPT_TEMPLATE),
    TP_OPTION(struct mqtt_out_config, retain, "retain", TP_OPT_BOOL, "false",
              "publish with the retain flag"),
    TP_OPTION(struct mqtt_out_config, max_inflight, "max_inflight", TP_OPT_INT, "1000",
              "maximum unacknowledged messages (MQTT 5: also the broker's Receive Maximum)",
              .min = 1, .max = 60000),
    {0},
};

/* A PUBLISH's bytes besides topic and payload: fixed header (5), topic
 * length (2), packet id (2), MQTT 5 property length (1). */
#define PUBLISH_HEADER_MAX 10

/* Per message state. */
enum { M_NEW, M_SENT, M_RELEASED, M_DONE };

/* One submitted batch's sendable messages, encoded. */
struct out_batch {
    struct out_batch *next;
    struct tp_out_batch *ob; /* the pipeline's batch, completed when done */
    struct tp_buf bytes;     /* the PUBLISH packets back to back */
    uint32_t *off;           /* n + 1 packet offsets into bytes */
    uint32_t *idpos;         /* QoS > 0: offset of each packet's id field */
    uint16_t *ids;
    uint8_t *state;
    size_t n, next_send, n_done;
    uint64_t end_written; /* QoS 0: stream position of the batch's last byte */
    int queued_all;       /* QoS 0: all bytes are in the socket's queue */
    int refused;          /* a v5 PUBACK with an error reason code */
};

struct mqtt_out {
    const struct mqtt_out_config *cfg;
    struct tp__mqtt_conn conn;
    struct tp_mqtt_client cl;
    struct tp_template *tpl; /* NULL: the default topic */
    struct tp_buf topic;
    int qos;

    int wake_pipe[2];
    pthread_t thread;
    int thread_started;
    /* Guards everything below, and the client while `live`: the network
     * thread holds it except while it waits in poll() or (not live)
     * connects; submit() takes it to queue and send a batch. */
    pthread_mutex_t lock;
    int live; /* connected and resent: submit() may use the client */
    int stopping, quit;
    /* The network thread blocks in poll (polling); submit() writes a wake
     * byte only then, once (wake_sent), and only when it needs the thread
     * (bytes the socket did not take, a failed write). */
    int polling, wake_sent;
    struct out_batch *fl_head, *fl_tail; /* submitted, not yet completed */
    struct out_batch **pending;          /* by packet id: the batch of the message */
    uint32_t *pending_index;             /* by packet id: its index in the batch */
    size_t inflight;
    uint16_t next_id;
};

static void batch_free(struct out_batch *b)
{
    if (!b)
        return;
    tp_buf_free(&b->bytes);
    free(b->off);
    free(b->idpos);
    free(b->ids);
    free(b->state);
    free(b);
}

/* ---------- both threads, with the lock held ---------- */

static uint16_t alloc_id(struct mqtt_out *st)
{
    do
        st->next_id = st->next_id == 65535 ? 1 : st->next_id + 1;
    while (st->pending[st->next_id]);
    return st->next_id;
}

/* Marks message i of b sent and patches its packet id (and DUP) into its
 * bytes; the caller queues them. */
static void prepare_msg(struct mqtt_out *st, struct out_batch *b, size_t i, int dup)
{
    uint8_t *p = (uint8_t *)b->bytes.data;
    if (st->qos > 0) {
        if (b->state[i] == M_NEW || !b->ids[i])
            b->ids[i] = alloc_id(st);
        p[b->idpos[i]] = (uint8_t)(b->ids[i] >> 8);
        p[b->idpos[i] + 1] = (uint8_t)b->ids[i];
        if (dup)
            p[b->off[i]] |= 0x08;
        st->pending[b->ids[i]] = b;
        st->pending_index[b->ids[i]] = (uint32_t)i;
        st->inflight++;
        b->state[i] = M_SENT;
    }
}

/* Queues messages first..end-1 of b, back to back in its bytes, for the socket. */
static int queue_msgs(struct mqtt_out *st, struct out_batch *b, size_t first, size_t end)
{
    return tp_buf_append(tp_mqtt_client_out(&st->cl), b->bytes.data + b->off[first],
                         b->off[end] - b->off[first]);
}

/* Appends message i of b to the socket queue (patching id and DUP). */
static int send_msg(struct mqtt_out *st, struct out_batch *b, size_t i, int dup)
{
    prepare_msg(st, b, i, dup);
    return queue_msgs(st, b, i, i + 1);
}

static void send_window(struct mqtt_out *st)
{
    struct tp_mqtt_net *net = &st->cl.net;
    size_t window = (size_t)st->cfg->max_inflight;
    if (st->cl.o.version == TP_MQTT_V5 && st->cl.send_quota < window)
        window = st->cl.send_quota;
    for (struct out_batch *b = st->fl_head; b; b = b->next) {
        if (st->qos == 0) {
            if (!b->queued_all) {
                if (tp_buf_append(&net->wbuf, b->bytes.data, b->bytes.len)) {
                    tp_mqtt_client_lost(&st->cl, "out of memory");
                    return;
                }
                b->queued_all = 1;
                b->end_written = net->written + (net->wbuf.len - net->wpos);
            }
            continue;
        }
        /* What the window allows, in one append. */
        size_t first = b->next_send;
        for (; b->next_send < b->n && st->inflight < window; b->next_send++)
            prepare_msg(st, b, b->next_send, 0);
        if (b->next_send > first && queue_msgs(st, b, first, b->next_send)) {
            tp_mqtt_client_lost(&st->cl, "out of memory");
            return;
        }
        if (st->inflight >= window)
            return;
    }
}

/* After a (re)connect: everything unacknowledged goes out again. */
static void resend_all(struct mqtt_out *st)
{
    memset(st->pending, 0, 65536 * sizeof(*st->pending));
    st->inflight = 0;
    struct tp_buf *out = tp_mqtt_client_out(&st->cl);
    for (struct out_batch *b = st->fl_head; b; b = b->next) {
        b->queued_all = 0;
        if (st->qos == 0)
            continue;
        for (size_t i = 0; i < b->next_send; i++) {
            int rc = TP_OK;
            if (b->state[i] == M_SENT)
                rc = send_msg(st, b, i, 1);
            else if (b->state[i] == M_RELEASED) {
                st->pending[b->ids[i]] = b;
                st->pending_index[b->ids[i]] = (uint32_t)i;
                st->inflight++;
                rc = tp_mqtt_encode_ack(out, st->cl.o.version, TP_MQTT_PUBREL, b->ids[i]);
            }
            if (rc) {
                tp_mqtt_client_lost(&st->cl, "out of memory");
                return;
            }
        }
    }
}

/* Marks the message with packet id `id` acknowledged at `stage`. */
static void on_ack(struct mqtt_out *st, const struct tp_mqtt_packet *pkt)
{
    struct out_batch *b = st->pending[pkt->id];
    if (!b)
        return; /* not ours (e.g. acknowledged before a reconnect) */
    size_t i = st->pending_index[pkt->id];
    if (i >= b->next_send || b->ids[i] != pkt->id)
        return;
    if (pkt->type == TP_MQTT_PUBREC && pkt->reason < 0x80) {
        b->state[i] = M_RELEASED;
        if (tp_mqtt_encode_ack(tp_mqtt_client_out(&st->cl), st->cl.o.version, TP_MQTT_PUBREL,
                               pkt->id))
            tp_mqtt_client_lost(&st->cl, "out of memory");
        return;
    }
    if (pkt->reason >= 0x80) {
        tp_log_limited(TP_LOG_ERROR, "mqtt-out-refused",
                       "mqtt output: the broker refused a message (reason 0x%02x%s%.*s)",
                       (unsigned)pkt->reason, pkt->props.reason_string.len ? ": " : "",
                       (int)pkt->props.reason_string.len,
                       pkt->props.reason_string.p ? pkt->props.reason_string.p : "");
        b->refused = 1;
    }
    st->pending[pkt->id] = NULL;
    st->inflight--;
    b->state[i] = M_DONE;
    b->n_done++;
}

static void handle_packets(struct mqtt_out *st)
{
    struct tp_mqtt_packet pkt;
    while (tp_mqtt_client_next(&st->cl, &pkt) == TP_OK) {
        switch (pkt.type) {
        case TP_MQTT_PUBACK:
        case TP_MQTT_PUBREC:
        case TP_MQTT_PUBCOMP:
            on_ack(st, &pkt);
            break;
        default:
            tp_mqtt_client_lost(&st->cl, "unexpected packet from the broker");
            return;
        }
    }
}

/* Completes b (taken off its list) with status and frees it. */
static void finish(struct out_batch *b, int status, const struct tp_error *err)
{
    struct tp_error refused;
    if (status == TP_OK && b->refused) {
        status = TP_IO;
        tp_error_set(&refused, TP_IO, "mqtt output: the broker refused messages of the batch");
        err = &refused;
    }
    tp_out_batch_complete(b->ob, status, err);
    batch_free(b);
}

/* Confirms finished batches, in order. */
static void complete(struct mqtt_out *st)
{
    while (st->fl_head) {
        struct out_batch *b = st->fl_head;
        if (st->qos == 0
                ? !(b->queued_all && st->cl.connected && st->cl.net.written >= b->end_written)
                : b->n_done < b->n)
            break;
        st->fl_head = b->next;
        if (!st->fl_head)
            st->fl_tail = NULL;
        finish(b, TP_OK, NULL);
    }
}

/* The bytes the broker still owes for the oldest batch: a 4-byte PUBACK
 * (PUBREC, PUBCOMP; MQTT 5 may add a reason) per message sent and not yet
 * acknowledged. The network thread then wakes about once per batch rather
 * than for every few PUBACKs the broker writes. */
static uint32_t acks_due(const struct mqtt_out *st)
{
    const struct out_batch *b = st->fl_head;
    if (st->qos == 0 || !b)
        return 0;
    size_t n = b->next_send - b->n_done;
    return n > 16384 ? 65536 : (uint32_t)n * 4;
}

/* Stopping while the broker is unreachable: every batch in flight fails
 * (its input stays unacknowledged and is delivered again on the next start). */
static void fail_all(struct mqtt_out *st)
{
    if (!st->fl_head)
        return;
    struct tp_error err;
    tp_error_set(&err, TP_IO,
                 "mqtt output: stopping while %s is unreachable: messages not acknowledged",
                 st->conn.brokers[0].url);
    memset(st->pending, 0, 65536 * sizeof(*st->pending));
    st->inflight = 0;
    while (st->fl_head) {
        struct out_batch *b = st->fl_head;
        st->fl_head = b->next;
        finish(b, TP_IO, &err);
    }
    st->fl_tail = NULL;
}

static void wake(struct mqtt_out *st)
{
    ssize_t w = write(st->wake_pipe[1], "x", 1);
    (void)w;
}

/* Writes the queued bytes from submit (the writer thread). A write error is
 * left to the network thread, woken for it: its next round fails the same
 * way and drops the connection (this thread does not close the socket
 * under the other's poll). It is woken too for bytes the socket did not
 * take (it polls for POLLOUT) and for a connection send_window dropped. */
static void send_direct(struct mqtt_out *st)
{
    struct tp_mqtt_net *net = &st->cl.net;
    int rc = TP_IO;
    if (st->cl.connected) {
        uint64_t before = net->written;
        char why[256];
        rc = tp_mqtt_net_flush(net, why, sizeof(why));
        if (net->written != before)
            st->cl.last_send_ms = tp_mono_ms();
    }
    if ((rc || tp_mqtt_net_want_write(net)) && st->polling && !st->wake_sent) {
        st->wake_sent = 1;
        wake(st);
    }
}

/* ---------- network thread ---------- */

static void drain_wake(struct mqtt_out *st)
{
    char buf[256];
    while (read(st->wake_pipe[0], buf, sizeof(buf)) > 0)
        ;
}

static void *net_main(void *arg)
{
    pthread_setname_np(pthread_self(), "tp-mqtt-net");
    struct mqtt_out *st = arg;
    pthread_mutex_lock(&st->lock);
    while (!st->quit) {
        if (!st->cl.connected) {
            st->live = 0;
            if (st->stopping)
                fail_all(st);
            /* Not live: submit() leaves the client alone while we connect. */
            pthread_mutex_unlock(&st->lock);
            int rc = tp_mqtt_client_connect(&st->cl, st->wake_pipe[0]);
            if (rc == TP_EOF)
                drain_wake(st);
            pthread_mutex_lock(&st->lock);
            if (rc == TP_OK) {
                resend_all(st);
                st->live = 1;
            }
            continue;
        }
        send_window(st);
        tp_mqtt_client_send(&st->cl);
        complete(st);
        /* Nothing due (0): any byte wakes the thread; submit() raises the
         * mark for a batch it sends meanwhile. */
        st->cl.expect_bytes = acks_due(st);
        st->polling = 1; /* poll() releases the lock while it waits */
        int woken = 0, rc = tp_mqtt_client_poll(&st->cl, 1000, st->wake_pipe[0], &woken);
        st->polling = 0;
        st->wake_sent = 0;
        if (rc)
            continue;
        if (woken)
            drain_wake(st);
        handle_packets(st);
        complete(st);
    }
    if (st->cl.connected)
        tp_mqtt_client_disconnect(&st->cl, 2000);
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

/* ---------- submit ---------- */

/* Renders message i's topic into st->topic; a topic that cannot be built
 * (missing metadata, empty, wildcards) drops the message (invalid_topic). */
static int build_topic(struct mqtt_out *st, struct tp_out_batch *ob, size_t i)
{
    const struct tp_msg *m = ob->msgs[i];
    int valid = 0; /* known valid: the default topic checked while it was built */
    int rc = st->tpl ? tp_template_render(st->tpl, m, &st->topic, NULL)
                     : tp__mqtt_default_topic(m, &st->topic, &valid);
    if (rc == TP_NOMEM)
        return rc;
    if (rc)
        tp_out_batch_drop(ob, i, TP_DROP_INVALID_TOPIC,
                          "mqtt output: message without umh_topic metadata; set "
                          "output.mqtt.topic");
    else if (st->topic.len == 0)
        tp_out_batch_drop(ob, i, TP_DROP_INVALID_TOPIC,
                          "mqtt output: topic template \"%s\" rendered empty", st->cfg->topic);
    else if (!valid && !tp_mqtt_topic_valid(st->topic.data, st->topic.len, 0))
        tp_out_batch_drop(ob, i, TP_DROP_INVALID_TOPIC,
                          "mqtt output: cannot publish to \"%s\": invalid topic (wildcard, "
                          "invalid UTF-8 or too long)",
                          st->topic.data);
    else
        return TP_OK;
    return TP_INVAL;
}

/* Encodes the sendable messages of ob (the others are dropped). */
static int encode_batch(struct mqtt_out *st, struct tp_out_batch *ob, struct out_batch **out,
                        struct tp_error *err)
{
    size_t n = ob->n;
    struct out_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    b->ob = ob;
    tp_buf_init(&b->bytes);
    b->off = malloc((n + 1) * sizeof(*b->off));
    b->idpos = malloc((n ? n : 1) * sizeof(*b->idpos));
    b->ids = calloc(n ? n : 1, sizeof(*b->ids));
    b->state = calloc(n ? n : 1, 1);
    /* Room for the whole batch at once (no regrowth while encoding): the
     * payloads, and per packet its header and a topic as long as the last
     * one this output rendered. */
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += ob->msgs[i]->payload_len + st->topic.len + PUBLISH_HEADER_MAX;
    if (!b->off || !b->idpos || !b->ids || !b->state || tp_buf_reserve(&b->bytes, bytes)) {
        batch_free(b);
        return tp_error_set(err, TP_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const struct tp_msg *m = ob->msgs[i];
        int rc = build_topic(st, ob, i);
        if (rc == TP_INVAL)
            continue;
        if (rc) {
            batch_free(b);
            return tp_error_set(err, TP_NOMEM, "out of memory");
        }
        size_t start = b->bytes.len, id_pos = 0;
        rc = tp_mqtt_encode_publish(&b->bytes, st->cl.o.version, st->topic.data, st->topic.len,
                                    m->payload, m->payload_len, st->qos, st->cfg->retain, 0, 0,
                                    &id_pos);
        if (rc == TP_NOMEM) {
            batch_free(b);
            return tp_error_set(err, TP_NOMEM, "out of memory");
        }
        if (rc || b->bytes.len > UINT32_MAX) {
            b->bytes.len = start;
            tp_out_batch_drop(ob, i, TP_DROP_INVALID_VALUE,
                              "mqtt output: payload of %zu bytes too large", m->payload_len);
            continue;
        }
        b->off[b->n] = (uint32_t)start;
        b->idpos[b->n] = (uint32_t)id_pos;
        b->n++;
    }
    b->off[b->n] = (uint32_t)b->bytes.len;
    *out = b;
    return TP_OK;
}

static int out_submit(void *p, struct tp_out_batch *ob)
{
    struct mqtt_out *st = p;
    struct out_batch *b = NULL;
    struct tp_error err = {0};
    int rc = encode_batch(st, ob, &b, &err);
    if (rc)
        return tp_out_batch_fail(ob, rc, &err);
    if (b->n == 0) { /* everything dropped */
        batch_free(b);
        tp_out_batch_complete(ob, TP_OK, NULL);
        return TP_OK;
    }
    pthread_mutex_lock(&st->lock);
    if (st->stopping && !st->live) {
        pthread_mutex_unlock(&st->lock);
        batch_free(b);
        tp_error_set(&err, TP_IO,
                     "mqtt output: stopping while %s is unreachable: messages not acknowledged",
                     st->conn.brokers[0].url);
        return tp_out_batch_fail(ob, TP_IO, &err);
    }
    if (st->fl_tail)
        st->fl_tail->next = b;
    else
        st->fl_head = b;
    st->fl_tail = b;
    /* Connected: send now, on this thread (no hand-off); else the network
     * thread sends it after (re)connecting. A full window waits for the
     * PUBACKs, which wake the network thread anyway. */
    if (st->live) {
        int was_idle = st->fl_head == b; /* b is the oldest: the network thread expects nothing */
        send_window(st);
        send_direct(st);
        complete(st);
        if (was_idle && st->cl.connected)
            tp_mqtt_client_expect(&st->cl, acks_due(st));
    }
    pthread_mutex_unlock(&st->lock);
    return TP_OK;
}

static void out_stop(void *p)
{
    struct mqtt_out *st = p;
    pthread_mutex_lock(&st->lock);
    st->stopping = 1;
    pthread_mutex_unlock(&st->lock);
    wake(st); /* the network thread fails what is unreachable */
}

static void free_list(struct out_batch *b)
{
    while (b) {
        struct out_batch *next = b->next;
        batch_free(b);
        b = next;
    }
}

static void out_close(void *p)
{
    struct mqtt_out *st = p;
    if (!st)
        return;
    if (st->thread_started) {
        pthread_mutex_lock(&st->lock);
        st->quit = 1;
        pthread_mutex_unlock(&st->lock);
        wake(st);
        pthread_join(st->thread, NULL);
    }
    /* Batches still in flight are abandoned (plugin.h: close). */
    free_list(st->fl_head);
    tp__mqtt_conn_free(&st->conn, &st->cl);
    free(st->pending);
    free(st->pending_index);
    tp_template_free(st->tpl);
    tp_buf_free(&st->topic);
    if (st->wake_pipe[0] >= 0) {
        close(st->wake_pipe[0]);
        close(st->wake_pipe[1]);
    }
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static int out_open(const void *config, void **out, struct tp_error *err)
{
    const struct mqtt_out_config *cfg = config;
    struct mqtt_out *st = calloc(1, sizeof(*st));
    if (!st)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    st->cfg = cfg;
    st->qos = (int)cfg->common.qos;
    st->wake_pipe[0] = st->wake_pipe[1] = -1;
    pthread_mutex_init(&st->lock, NULL);
    tp_buf_init(&st->topic);
    tp_mqtt_net_init(&st->cl.net);
    int rc = TP_OK;
    if (cfg->topic) {
        struct tp_template_error te;
        rc = tp_template_compile(cfg->topic, &st->tpl, &te);
        if (rc) {
            rc = rc == TP_NOMEM ? tp_error_set(err, rc, "out of memory")
                                : tp_error_set(err, rc, "output.mqtt.topic: %s", te.why);
            goto fail;
        }
    }
    st->pending = calloc(65536, sizeof(*st->pending));
    st->pending_index = calloc(65536, sizeof(*st->pending_index));
    if (!st->pending || !st->pending_index) {
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
        goto fail;
    }
    if (pipe2(st->wake_pipe, O_CLOEXEC | O_NONBLOCK)) {
        rc = tp_error_set(err, TP_IO, "output.mqtt: pipe: %s", strerror(errno));
        goto fail;
    }
    rc = tp__mqtt_conn_setup(&cfg->common, "output.mqtt", "mqtt output", "-out", 0, &st->conn,
                             &st->cl, err);
    if (rc)
        goto fail;
    st->cl.poll_unlock = &st->lock;
    /* A broker that is down at start-up is not an error: the network thread
     * keeps reconnecting and the batches wait. */
    if (pthread_create(&st->thread, NULL, net_main, st)) {
        rc = tp_error_set(err, TP_IO, "output.mqtt: cannot start the network thread");
        goto fail;
    }
    st->thread_started = 1;
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
    .submit = out_submit,
    .close = out_close,
    .stop = out_stop,
};
