/* MQTT client session (client.h): connect to the brokers in order with
 * back-off, handshake, keepalive, framing. One thread drives it (the
 * input's reader thread, the output's network thread); the output's submit
 * also writes on it, under the output's mutex (client.h: poll_unlock). */
#include "io/mqtt/client.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"

#define CONNECT_TIMEOUT_MS 10000

void tp_mqtt_client_init(struct tp_mqtt_client *c, const struct tp_mqtt_client_opts *o)
{
    memset(c, 0, sizeof(*c));
    c->o = *o;
    tp_mqtt_net_init(&c->net);
    c->backoff_ms = o->reconnect_delay_ms;
    c->send_quota = 65535;
}

void tp_mqtt_client_free(struct tp_mqtt_client *c)
{
    tp_mqtt_net_free(&c->net);
}

static void schedule(struct tp_mqtt_client *c)
{
    c->next_attempt_ms = tp_mono_ms() + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > c->o.reconnect_delay_max_ms ? c->o.reconnect_delay_max_ms
                                                                    : c->backoff_ms * 2;
}

void tp_mqtt_client_lost(struct tp_mqtt_client *c, const char *why)
{
    tp_mqtt_net_close(&c->net);
    if (c->connected)
        tp_log_limited(TP_LOG_WARN, c->o.who, "%s: lost the connection to %s: %s; reconnecting",
                       c->o.who, c->o.brokers[c->broker].url, why);
    c->connected = 0;
    c->ping_sent_ms = 0;
    c->broker = 0; /* reconnect: the list in order again */
    schedule(c);
}

/* Flushes and keeps the keepalive clock. */
static int do_flush(struct tp_mqtt_client *c)
{
    uint64_t before = c->net.written;
    char why[256];
    if (tp_mqtt_net_flush(&c->net, why, sizeof(why))) {
        tp_mqtt_client_lost(c, why);
        return TP_IO;
    }
    if (c->net.written != before)
        c->last_send_ms = tp_mono_ms();
    return TP_OK;
}

int tp_mqtt_client_send(struct tp_mqtt_client *c)
{
    if (!c->connected || !tp_mqtt_net_want_write(&c->net))
        return c->connected ? TP_OK : TP_IO;
    return do_flush(c);
}

/* CONNECT, then wait for the CONNACK. TP_OK, TP_EOF (woken) or TP_IO (c->why). */
static int handshake(struct tp_mqtt_client *c, int wake_fd)
{
    struct tp_mqtt_connect cn = {
        .version = c->o.version,
        .clean_start = c->o.clean_session,
        .keepalive = c->o.keepalive_s,
        .client_id = c->o.client_id,
        .username = c->o.username,
        .password = c->o.password,
        /* MQTT 5 persistent session: never expires (3.1.1 semantics). */
        .session_expiry = c->o.clean_session ? 0 : 0xFFFFFFFFu,
        .receive_maximum = c->o.receive_maximum,
        .maximum_packet_size = TP_MQTT_MAX_PACKET,
    };
    if (tp_mqtt_encode_connect(&c->net.wbuf, &cn)) {
        snprintf(c->why, sizeof(c->why), "cannot encode CONNECT (a field too long?)");
        return TP_IO;
    }
    if (tp_mqtt_net_flush_wait(&c->net, CONNECT_TIMEOUT_MS)) {
        snprintf(c->why, sizeof(c->why), "cannot send CONNECT");
        return TP_IO;
    }
    uint64_t deadline = tp_mono_ms() + CONNECT_TIMEOUT_MS;
    for (;;) {
        struct tp_mqtt_packet pkt;
        size_t used = 0;
        char why[200];
        int rc = tp_mqtt_decode(c->net.rbuf + c->net.rpos, c->net.rlen - c->net.rpos, c->o.version,
                                &pkt, &used, why, sizeof(why));
        if (rc == TP_PARSE || (rc == TP_OK && pkt.type != TP_MQTT_CONNACK)) {
            snprintf(c->why, sizeof(c->why), "invalid CONNACK: %s",
                     rc == TP_PARSE ? why : "another packet came first");
            return TP_IO;
        }
        if (rc == TP_OK) {
            c->net.rpos += used;
            if (pkt.reason != 0) {
                snprintf(c->why, sizeof(c->why), "the broker refused the connection: %s",
                         tp_mqtt_connack_text(c->o.version, pkt.reason));
                return TP_IO;
            }
            c->session_present = pkt.session_present;
            c->send_quota = pkt.props.receive_maximum ? pkt.props.receive_maximum : 65535;
            if (pkt.props.server_keep_alive > 0)
                c->o.keepalive_s = pkt.props.server_keep_alive;
            return TP_OK;
        }
        uint64_t now = tp_mono_ms();
        struct pollfd p[2] = {{c->net.fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
        int r = now >= deadline ? 0 : poll(p, wake_fd >= 0 ? 2 : 1, (int)(deadline - now));
        if (r > 0 && wake_fd >= 0 && p[1].revents)
            return TP_EOF;
        if (r <= 0) {
            snprintf(c->why, sizeof(c->why), "no CONNACK within %d s", CONNECT_TIMEOUT_MS / 1000);
            return TP_IO;
        }
        rc = tp_mqtt_net_fill(&c->net, why, sizeof(why));
        if (rc) {
            snprintf(c->why, sizeof(c->why), "%s", rc == TP_EOF ? "closed before CONNACK" : why);
            return TP_IO;
        }
    }
}

int tp_mqtt_client_connect(struct tp_mqtt_client *c, int wake_fd)
{
    if (c->connected)
        return TP_OK;
    int due = tp_mqtt_net_wait_due(c->next_attempt_ms, wake_fd);
    if (due != TP_OK)
        return due;
    for (size_t k = 0; k < c->o.n_brokers; k++) {
        const struct tp_mqtt_broker *b = &c->o.brokers[c->broker];
        int rc = tp_mqtt_net_connect(&c->net, b->host, b->port, b->tls, c->o.insecure,
                                     CONNECT_TIMEOUT_MS, wake_fd, c->why, sizeof(c->why));
        if (rc == TP_OK)
            rc = handshake(c, wake_fd);
        if (rc == TP_EOF) {
            tp_mqtt_net_close(&c->net);
            return TP_EOF;
        }
        if (rc == TP_OK) {
            c->connected = 1;
            c->generation++;
            c->backoff_ms = c->o.reconnect_delay_ms;
            c->last_send_ms = tp_mono_ms();
            c->ping_sent_ms = 0;
            char quota[48] = "";
            if (c->o.version == TP_MQTT_V5 && c->send_quota < 65535)
                snprintf(quota, sizeof(quota), ", broker Receive Maximum %u",
                         (unsigned)c->send_quota);
            tp_log(TP_LOG_INFO, "%s: connected to %s (MQTT %s%s%s)", c->o.who, b->url,
                   c->o.version == TP_MQTT_V5 ? "5" : "3.1.1",
                   c->session_present ? ", session resumed" : "", quota);
            return TP_OK;
        }
        tp_mqtt_net_close(&c->net);
        tp_log_limited(TP_LOG_WARN, c->o.who, "%s: cannot connect to %s: %s", c->o.who, b->url,
                       c->why);
        c->broker = (c->broker + 1) % c->o.n_brokers;
    }
    tp_log_limited(TP_LOG_WARN, c->o.who, "%s: no broker reachable; retrying in %llu ms", c->o.who,
                   (unsigned long long)c->backoff_ms);
    schedule(c);
    return TP_AGAIN;
}

/* The keepalive (a PINGREQ after half the interval without anything sent,
 * the connection lost without its PINGRESP), then what is queued is
 * written. TP_OK or TP_IO (lost). */
static int keepalive_and_flush(struct tp_mqtt_client *c, uint64_t now)
{
    uint64_t ka = (uint64_t)c->o.keepalive_s * 1000u;
    if (c->ping_sent_ms && now - c->ping_sent_ms > ka) {
        tp_mqtt_client_lost(c, "no PINGRESP within the keepalive interval");
        return TP_IO;
    }
    if (!c->ping_sent_ms && now - c->last_send_ms >= ka / 2) {
        if (tp_mqtt_encode_pingreq(&c->net.wbuf)) {
            tp_mqtt_client_lost(c, "out of memory");
            return TP_IO;
        }
        c->ping_sent_ms = now;
    }
    if (tp_mqtt_net_want_write(&c->net) && do_flush(c))
        return TP_IO;
    return TP_OK;
}

int tp_mqtt_client_read(struct tp_mqtt_client *c)
{
    if (!c->connected || keepalive_and_flush(c, tp_mono_ms()))
        return TP_IO;
    char why[256];
    int rc = tp_mqtt_net_fill(&c->net, why, sizeof(why));
    if (rc) {
        tp_mqtt_client_lost(c, rc == TP_EOF ? "connection closed by the broker" : why);
        return TP_IO;
    }
    return TP_OK;
}

void tp_mqtt_client_expect(struct tp_mqtt_client *c, uint32_t bytes)
{
    c->expect_bytes = bytes;
    /* Bytes of a partial packet already read are part of what is due. */
    size_t partial = c->net.rlen - c->net.rpos;
    tp_mqtt_net_set_lowat(&c->net,
                          c->ping_sent_ms || bytes <= partial ? 1 : bytes - (uint32_t)partial);
}

int tp_mqtt_client_poll(struct tp_mqtt_client *c, int timeout_ms, int wake_fd, int *woken)
{
    *woken = 0;
    if (!c->connected)
        return TP_IO;
    uint64_t now = tp_mono_ms(), ka = (uint64_t)c->o.keepalive_s * 1000u;
    if (keepalive_and_flush(c, now))
        return TP_IO;
    uint64_t due = c->last_send_ms + ka / 2;
    if (!c->ping_sent_ms && due > now && (uint64_t)timeout_ms > due - now)
        timeout_ms = (int)(due - now);
    tp_mqtt_client_expect(c, c->expect_bytes);
    struct pollfd p[2] = {
        {c->net.fd, (short)(POLLIN | (tp_mqtt_net_want_write(&c->net) ? POLLOUT : 0)), 0},
        {wake_fd, POLLIN, 0},
    };
    if (c->poll_unlock)
        pthread_mutex_unlock(c->poll_unlock);
    int r = poll(p, wake_fd >= 0 ? 2 : 1, timeout_ms);
    if (c->poll_unlock)
        pthread_mutex_lock(c->poll_unlock);
    if (r <= 0)
        return TP_OK;
    if (wake_fd >= 0 && p[1].revents)
        *woken = 1;
    if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) {
        char why[256];
        int rc = tp_mqtt_net_fill(&c->net, why, sizeof(why));
        if (rc) {
            tp_mqtt_client_lost(c, rc == TP_EOF ? "connection closed by the broker" : why);
            return TP_IO;
        }
    }
    if ((p[0].revents & POLLOUT) && do_flush(c))
        return TP_IO;
    return TP_OK;
}

int tp_mqtt_client_next(struct tp_mqtt_client *c, struct tp_mqtt_packet *pkt)
{
    while (c->connected) {
        size_t used = 0;
        char why[200];
        int rc = tp_mqtt_decode(c->net.rbuf + c->net.rpos, c->net.rlen - c->net.rpos, c->o.version,
                                pkt, &used, why, sizeof(why));
        if (rc == TP_AGAIN)
            return TP_AGAIN;
        if (rc) {
            char msg[256];
            snprintf(msg, sizeof(msg), "malformed packet from the broker: %s", why);
            tp_mqtt_client_lost(c, msg);
            return TP_IO;
        }
        c->net.rpos += used;
        if (pkt->type == TP_MQTT_PINGRESP) {
            c->ping_sent_ms = 0;
            continue;
        }
        if (pkt->type == TP_MQTT_DISCONNECT) {
            char msg[256];
            snprintf(msg, sizeof(msg), "the broker disconnected (reason 0x%02x%s%.*s)",
                     (unsigned)pkt->reason, pkt->props.reason_string.len ? ": " : "",
                     (int)pkt->props.reason_string.len,
                     pkt->props.reason_string.p ? pkt->props.reason_string.p : "");
            tp_mqtt_client_lost(c, msg);
            return TP_IO;
        }
        return TP_OK;
    }
    return TP_IO;
}

void tp_mqtt_client_disconnect(struct tp_mqtt_client *c, int timeout_ms)
{
    if (c->connected && tp_mqtt_encode_disconnect(&c->net.wbuf, c->o.version) == TP_OK)
        tp_mqtt_net_flush_wait(&c->net, timeout_ms);
    tp_mqtt_net_close(&c->net);
    c->connected = 0;
}
