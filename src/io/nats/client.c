/* NATS client session (client.h): connect to the servers in order, the
 * INFO -> CONNECT + PING -> PONG handshake, PING answers, a PING of our own
 * after a quiet minute (two unanswered: the connection is lost), and the
 * decoding loop over the buffered socket. */
#include "io/nats/client.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"

#define PING_INTERVAL_MS 60000u
#define MAX_PINGS_OUT 2u

int tp_nats_url_parse(const char *url, struct tp_nats_server *s, char *why, size_t why_len)
{
    memset(s, 0, sizeof(*s));
    s->url = url;
    s->port = 4222;
    const char *p = url;
    const char *scheme = strstr(url, "://");
    if (scheme) {
        size_t n = (size_t)(scheme - url);
        if (n == 3 && strncmp(url, "tls", 3) == 0) {
            snprintf(why, why_len, "\"%s\": TLS (tls://) is not supported by the nats connector",
                     url);
            return TP_CONFIG;
        }
        if (n != 4 || strncmp(url, "nats", 4) != 0) {
            snprintf(why, why_len, "\"%s\": expected nats://host[:port]", url);
            return TP_CONFIG;
        }
        p = scheme + 3;
    }
    const char *at = strchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ul = (size_t)((colon ? colon : at) - p);
        size_t pl = colon ? (size_t)(at - colon - 1) : 0;
        if (ul >= sizeof(s->user) || pl >= sizeof(s->pass)) {
            snprintf(why, why_len, "\"%s\": user information too long", url);
            return TP_CONFIG;
        }
        memcpy(s->user, p, ul);
        if (colon)
            memcpy(s->pass, colon + 1, pl);
        p = at + 1;
    }
    const char *end = p + strcspn(p, "/");
    const char *colon = NULL;
    if (*p == '[') { /* [v6 address]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb) {
            snprintf(why, why_len, "\"%s\": missing ']'", url);
            return TP_CONFIG;
        }
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
        if ((size_t)(rb - p - 1) >= sizeof(s->host))
            goto too_long;
        memcpy(s->host, p + 1, (size_t)(rb - p - 1));
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        size_t hl = (size_t)((colon ? colon : end) - p);
        if (hl >= sizeof(s->host))
            goto too_long;
        memcpy(s->host, p, hl);
    }
    if (!*s->host) {
        snprintf(why, why_len, "\"%s\": no host", url);
        return TP_CONFIG;
    }
    if (colon) {
        char *e = NULL;
        long port = strtol(colon + 1, &e, 10);
        if (e != end || port < 1 || port > 65535) {
            snprintf(why, why_len, "\"%s\": invalid port", url);
            return TP_CONFIG;
        }
        s->port = (int)port;
    }
    return TP_OK;
too_long:
    snprintf(why, why_len, "\"%s\": host name too long", url);
    return TP_CONFIG;
}

void tp_nats_client_init(struct tp_nats_client *c, const struct tp_nats_client_opts *o)
{
    memset(c, 0, sizeof(*c));
    c->o = *o;
    tp_mqtt_net_init(&c->net);
}

void tp_nats_client_free(struct tp_nats_client *c)
{
    tp_mqtt_net_free(&c->net);
}

void tp_nats_client_lost(struct tp_nats_client *c, const char *why)
{
    tp_mqtt_net_close(&c->net);
    if (c->connected)
        tp_log_limited(TP_LOG_WARN, c->o.who, "%s: lost the connection to %s: %s; reconnecting",
                       c->o.who, c->o.servers[c->server].url, why);
    c->connected = 0;
    c->next_attempt_ms = tp_mono_ms() + c->o.reconnect_wait_ms;
}

static int do_flush(struct tp_nats_client *c)
{
    char why[256];
    if (tp_mqtt_net_flush(&c->net, why, sizeof(why))) {
        tp_nats_client_lost(c, why);
        return TP_IO;
    }
    return TP_OK;
}

int tp_nats_client_send(struct tp_nats_client *c)
{
    if (!c->connected)
        return TP_IO;
    return tp_mqtt_net_want_write(&c->net) ? do_flush(c) : TP_OK;
}

uint64_t tp_nats_client_ping(struct tp_nats_client *c)
{
    if (tp_buf_append(&c->net.wbuf, "PING\r\n", 6) == TP_OK)
        c->pings++;
    return c->pings;
}

/* Waits for the socket to become readable (or wake_fd) until deadline and
 * reads. TP_OK, TP_EOF (woken), TP_IO with c->why. */
static int wait_read(struct tp_nats_client *c, uint64_t deadline, int wake_fd, const char *what)
{
    uint64_t now = tp_mono_ms();
    struct pollfd p[2] = {{c->net.fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int r = now >= deadline ? 0 : poll(p, wake_fd >= 0 ? 2 : 1, (int)(deadline - now));
    if (r > 0 && wake_fd >= 0 && p[1].revents)
        return TP_EOF;
    if (r <= 0) {
        snprintf(c->why, sizeof(c->why), "no %s within %d ms", what, c->o.connect_timeout_ms);
        return TP_IO;
    }
    char why[256];
    int rc = tp_mqtt_net_fill(&c->net, why, sizeof(why));
    if (rc)
        snprintf(c->why, sizeof(c->why), "%s", rc == TP_EOF ? "closed by the server" : why);
    return rc ? TP_IO : TP_OK;
}

/* The next operation of the handshake (waiting for it). */
static int handshake_next(struct tp_nats_client *c, uint64_t deadline, int wake_fd,
                          const char *what, struct tp_nats_frame *f)
{
    for (;;) {
        size_t used = 0;
        char why[256];
        int rc = tp_nats_decode((const char *)c->net.rbuf + c->net.rpos, c->net.rlen - c->net.rpos,
                                f, &used, why, sizeof(why));
        if (rc == TP_PARSE) {
            snprintf(c->why, sizeof(c->why), "malformed protocol line from the server: %s", why);
            return TP_IO;
        }
        if (rc == TP_OK) {
            c->net.rpos += used;
            return TP_OK;
        }
        rc = wait_read(c, deadline, wake_fd, what);
        if (rc)
            return rc;
    }
}

/* INFO, then CONNECT + PING, then PONG (or -ERR: refused). */
static int handshake(struct tp_nats_client *c, const struct tp_nats_server *s, int wake_fd)
{
    uint64_t deadline = tp_mono_ms() + (uint64_t)c->o.connect_timeout_ms;
    struct tp_nats_frame f;
    int rc = handshake_next(c, deadline, wake_fd, "INFO", &f);
    if (rc)
        return rc;
    if (f.op != TP_NATS_INFO) {
        snprintf(c->why, sizeof(c->why), "the server did not start with INFO");
        return TP_IO;
    }
    const char *v;
    size_t vl;
    if (tp_json_object_member(f.text, f.text_len, "tls_required", &v, &vl) && vl == 4 &&
        memcmp(v, "true", 4) == 0) {
        snprintf(c->why, sizeof(c->why),
                 "the server requires TLS, which the nats connector does not support");
        return TP_IO;
    }
    struct tp_nats_connect cn = {
        .name = c->o.name,
        .user = *s->user ? s->user : c->o.user,
        .pass = *s->pass ? s->pass : c->o.pass,
        .token = c->o.token,
    };
    if (*s->user && !*s->pass && !c->o.token) { /* nats://token@host */
        cn.token = s->user;
        cn.user = c->o.user;
    }
    if (tp_nats_encode_connect(&c->net.wbuf, &cn) || tp_buf_append(&c->net.wbuf, "PING\r\n", 6) ||
        tp_mqtt_net_flush_wait(&c->net, c->o.connect_timeout_ms)) {
        snprintf(c->why, sizeof(c->why), "cannot send CONNECT");
        return TP_IO;
    }
    for (;;) {
        rc = handshake_next(c, deadline, wake_fd, "PONG", &f);
        if (rc)
            return rc;
        if (f.op == TP_NATS_PONG)
            return TP_OK;
        if (f.op == TP_NATS_ERR) {
            snprintf(c->why, sizeof(c->why), "the server refused the connection: %.*s",
                     (int)(f.text_len > 200 ? 200 : f.text_len), f.text);
            return TP_IO;
        }
        if (f.op == TP_NATS_PING && tp_buf_append(&c->net.wbuf, "PONG\r\n", 6)) {
            snprintf(c->why, sizeof(c->why), "out of memory");
            return TP_IO;
        }
    }
}

int tp_nats_client_connect(struct tp_nats_client *c, int wake_fd)
{
    if (c->connected)
        return TP_OK;
    int due = tp_mqtt_net_wait_due(c->next_attempt_ms, wake_fd);
    if (due != TP_OK)
        return due;
    for (size_t k = 0; k < c->o.n_servers; k++) {
        const struct tp_nats_server *s = &c->o.servers[c->server];
        int rc = tp_mqtt_net_connect(&c->net, s->host, s->port, 0, 0, c->o.connect_timeout_ms,
                                     wake_fd, c->why, sizeof(c->why));
        if (rc == TP_OK)
            rc = handshake(c, s, wake_fd);
        if (rc == TP_EOF) {
            tp_mqtt_net_close(&c->net);
            return TP_EOF;
        }
        if (rc == TP_OK) {
            c->connected = 1;
            c->generation++;
            c->pings = c->pongs = 0;
            c->last_read_ms = tp_mono_ms();
            c->ping_due_ms = c->last_read_ms + PING_INTERVAL_MS;
            if (c->generation > 1)
                tp_log(TP_LOG_INFO, "%s: reconnected to %s", c->o.who, s->url);
            return TP_OK;
        }
        tp_mqtt_net_close(&c->net);
        if (c->generation)
            tp_log_limited(TP_LOG_WARN, c->o.who, "%s: cannot connect to %s: %s", c->o.who, s->url,
                           c->why);
        if (k + 1 < c->o.n_servers)
            c->server = (c->server + 1) % c->o.n_servers;
    }
    c->next_attempt_ms = tp_mono_ms() + c->o.reconnect_wait_ms;
    return TP_AGAIN;
}

/* A PING after a quiet interval; two unanswered end the connection. */
static int keepalive(struct tp_nats_client *c, uint64_t now)
{
    if (now < c->ping_due_ms)
        return TP_OK;
    if (c->pings - c->pongs >= MAX_PINGS_OUT) {
        tp_nats_client_lost(c, "the server did not answer PINGs");
        return TP_IO;
    }
    tp_nats_client_ping(c);
    c->ping_due_ms = now + PING_INTERVAL_MS;
    return TP_OK;
}

int tp_nats_client_poll(struct tp_nats_client *c, int timeout_ms, int wake_fd, int *woken)
{
    *woken = 0;
    if (!c->connected)
        return TP_IO;
    uint64_t now = tp_mono_ms();
    if (keepalive(c, now) || (tp_mqtt_net_want_write(&c->net) && do_flush(c)))
        return TP_IO;
    if (c->ping_due_ms > now && (uint64_t)timeout_ms > c->ping_due_ms - now)
        timeout_ms = (int)(c->ping_due_ms - now);
    struct pollfd p[2] = {
        {c->net.fd, (short)(POLLIN | (tp_mqtt_net_want_write(&c->net) ? POLLOUT : 0)), 0},
        {wake_fd, POLLIN, 0},
    };
    if (c->poll_unlock)
        pthread_mutex_unlock(c->poll_unlock);
    int r = poll(p, wake_fd >= 0 ? 2 : 1, timeout_ms);
    if (c->poll_unlock)
        pthread_mutex_lock(c->poll_unlock);
    if (r <= 0 || !c->connected)
        return c->connected ? TP_OK : TP_IO;
    if (wake_fd >= 0 && p[1].revents)
        *woken = 1;
    if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) {
        char why[256];
        int rc = tp_mqtt_net_fill(&c->net, why, sizeof(why));
        if (rc) {
            tp_nats_client_lost(c, rc == TP_EOF ? "connection closed by the server" : why);
            return TP_IO;
        }
        c->last_read_ms = tp_mono_ms();
        c->ping_due_ms = c->last_read_ms + PING_INTERVAL_MS;
    }
    if ((p[0].revents & POLLOUT) && do_flush(c))
        return TP_IO;
    return TP_OK;
}

int tp_nats_client_next(struct tp_nats_client *c, struct tp_nats_frame *f)
{
    while (c->connected) {
        size_t used = 0;
        char why[256];
        int rc = tp_nats_decode((const char *)c->net.rbuf + c->net.rpos, c->net.rlen - c->net.rpos,
                                f, &used, why, sizeof(why));
        if (rc == TP_AGAIN)
            return TP_AGAIN;
        if (rc) {
            char msg[300];
            snprintf(msg, sizeof(msg), "malformed protocol line from the server: %s", why);
            tp_log(TP_LOG_ERROR, "%s: %s", c->o.who, msg);
            tp_nats_client_lost(c, msg);
            return TP_IO;
        }
        c->net.rpos += used;
        switch (f->op) {
        case TP_NATS_MSG:
            return TP_OK;
        case TP_NATS_PING:
            if (tp_buf_append(&c->net.wbuf, "PONG\r\n", 6)) {
                tp_nats_client_lost(c, "out of memory");
                return TP_IO;
            }
            break;
        case TP_NATS_PONG:
            if (c->pongs < c->pings)
                c->pongs++;
            break;
        case TP_NATS_ERR: {
            char msg[300];
            snprintf(msg, sizeof(msg), "the server reported an error: %.*s",
                     (int)(f->text_len > 200 ? 200 : f->text_len), f->text);
            if (f->text_len >= 21 && strncasecmp(f->text, "Permissions Violation", 21) == 0) {
                tp_log_limited(TP_LOG_ERROR, "nats-permissions", "%s: %s", c->o.who, msg);
                break;
            }
            tp_log(TP_LOG_ERROR, "%s: %s", c->o.who, msg);
            tp_nats_client_lost(c, msg);
            return TP_IO;
        }
        default: /* +OK, INFO */
            break;
        }
    }
    return TP_IO;
}

int tp_nats_client_flush(struct tp_nats_client *c, int timeout_ms)
{
    if (!c->connected)
        return TP_IO;
    uint64_t want = tp_nats_client_ping(c), deadline = tp_mono_ms() + (uint64_t)timeout_ms;
    while (c->connected && c->pongs < want) {
        struct tp_nats_frame f;
        int rc;
        while ((rc = tp_nats_client_next(c, &f)) == TP_OK)
            ; /* messages that arrive meanwhile are not wanted any more */
        if (rc == TP_IO || c->pongs >= want)
            break;
        uint64_t now = tp_mono_ms();
        int woken;
        if (now >= deadline || tp_nats_client_poll(c, (int)(deadline - now), -1, &woken))
            return TP_IO;
    }
    return c->connected && c->pongs >= want ? TP_OK : TP_IO;
}

int tp_nats_client_request(struct tp_nats_client *c, const char *subject, const char *payload,
                           const char *inbox, uint64_t sid, int timeout_ms, struct tp_buf *out,
                           int *status, char *why, size_t why_len)
{
    struct tp_buf *w = &c->net.wbuf;
    *status = 0;
    if (!c->connected || tp_nats_encode_sub(w, inbox, NULL, sid) ||
        tp_nats_encode_pub(w, subject, strlen(subject), inbox, strlen(inbox), NULL, 0, payload,
                           strlen(payload))) {
        snprintf(why, why_len, "%s", c->connected ? "out of memory" : "not connected");
        return TP_IO;
    }
    uint64_t deadline = tp_mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        struct tp_nats_frame f;
        int rc;
        while ((rc = tp_nats_client_next(c, &f)) == TP_OK) {
            if (f.sid != sid)
                continue;
            const char *d;
            size_t dl;
            *status = f.hdr ? tp_nats_status(f.hdr, f.hdr_len, &d, &dl) : 0;
            tp_buf_reset(out);
            if (tp_buf_append(out, f.payload, f.payload_len) || tp_nats_encode_unsub(w, sid)) {
                snprintf(why, why_len, "out of memory");
                return TP_IO;
            }
            return TP_OK;
        }
        uint64_t now = tp_mono_ms();
        int woken;
        if (rc == TP_IO || now >= deadline ||
            tp_nats_client_poll(c, (int)(deadline - now), -1, &woken)) {
            if (c->connected)
                tp_nats_encode_unsub(w, sid);
            snprintf(why, why_len, "%s", c->connected ? "no answer in time" : "connection lost");
            return TP_IO;
        }
    }
}

void tp_nats_client_close(struct tp_nats_client *c)
{
    tp_mqtt_net_close(&c->net);
    c->connected = 0;
}
