/* A buffered non-blocking client socket, plain TCP or TLS (OpenSSL), for the
 * MQTT client and the NATS client (src/io/nats/client.c): one fill() drains
 * what the socket holds into the read buffer with one read() (TLS:
 * read-ahead, so one read() as well), one flush() writes all queued bytes
 * with one write(). Connecting (TCP + TLS handshake) waits with poll() and
 * can be interrupted through a wake fd. */
#ifndef TP_MQTT_NET_H
#define TP_MQTT_NET_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct tp_mqtt_tls_opts {
    const char *ca_file; /* NULL: the system's CAs */
    const char *cert_file, *key_file;
    int insecure; /* no certificate or host name verification */
};

struct tp_mqtt_net {
    int fd;    /* -1 when closed */
    void *ctx; /* SSL_CTX *, kept across reconnects; NULL for plain TCP */
    void *ssl; /* SSL * of the current connection */
    uint8_t *rbuf;
    size_t rpos, rlen, rcap; /* unread bytes are rbuf[rpos..rlen) */
    struct tp_buf wbuf;      /* queued output; wbuf[wpos..len) not yet written */
    size_t wpos;
    uint64_t written; /* bytes written since the connection opened */
    uint64_t nread;   /* bytes read since the connection opened */
    int drained;      /* the last fill left nothing in the socket (short read) */
    int lowat;        /* the socket's SO_RCVLOWAT */
};

void tp_mqtt_net_init(struct tp_mqtt_net *n);
/* Creates the TLS context (CA file or system CAs, client certificate).
 * TP_CONFIG with why filled on error. */
int tp_mqtt_net_tls_setup(struct tp_mqtt_net *n, const struct tp_mqtt_tls_opts *o, char *why,
                          size_t why_len);
/* Connects to host:port (with tls, over the TLS context set up before: SNI and, unless
 * insecure, certificate and host name verification). Waits at most
 * timeout_ms; returns TP_OK, TP_EOF when wake_fd became readable (stop), or
 * TP_IO with why filled. */
int tp_mqtt_net_connect(struct tp_mqtt_net *n, const char *host, int port, int tls, int insecure,
                        int timeout_ms, int wake_fd, char *why, size_t why_len);
/* Waits until tp_mono_ms() reaches due_ms (a reconnect attempt) or wake_fd
 * (-1: none) is readable. TP_OK due, TP_EOF woken, TP_AGAIN not yet due
 * (poll interrupted). */
int tp_mqtt_net_wait_due(uint64_t due_ms, int wake_fd);
/* Reads what the socket holds (one read). TP_OK (possibly 0 bytes: would
 * block), TP_EOF when the peer closed, TP_IO with why on an error. */
int tp_mqtt_net_fill(struct tp_mqtt_net *n, char *why, size_t why_len);
/* Writes queued bytes (one write while the socket takes them). TP_OK or
 * TP_IO with why. */
int tp_mqtt_net_flush(struct tp_mqtt_net *n, char *why, size_t why_len);
static inline int tp_mqtt_net_want_write(const struct tp_mqtt_net *n)
{
    return n->wpos < n->wbuf.len;
}
/* poll() reports the socket readable only once it holds `bytes` (at least 1;
 * SO_RCVLOWAT; a closed or failed connection is reported at once). Plain
 * TCP only: with TLS it stays 1. */
void tp_mqtt_net_set_lowat(struct tp_mqtt_net *n, uint32_t bytes);
/* Flushes with poll() until everything is written or timeout_ms passed. */
int tp_mqtt_net_flush_wait(struct tp_mqtt_net *n, int timeout_ms);
/* Closes the connection, drops buffered bytes (the TLS context stays). */
void tp_mqtt_net_close(struct tp_mqtt_net *n);
void tp_mqtt_net_free(struct tp_mqtt_net *n);

#endif
