/* tagproc's own NATS client session, used by the nats input and output:
 * server list tried in order (reconnect_wait between rounds, forever once
 * connected), the INFO/CONNECT/PING/PONG handshake with credentials, PING
 * answers and keepalive, and framing (codec.h) over the project's buffered
 * non-blocking socket (src/io/mqtt/net.h: one read() drains the socket, one
 * write() sends what is queued). The caller owns the thread: every call runs
 * on it, unless the caller guards the client with a mutex (poll_unlock). */
#ifndef TP_NATS_CLIENT_H
#define TP_NATS_CLIENT_H

#include <pthread.h>
#include <stdint.h>

#include "core/error.h"
#include "io/mqtt/net.h"
#include "io/nats/codec.h"

struct tp_nats_server {
    char host[256];
    int port;
    char user[128], pass[128]; /* from nats://user:pass@host (or a token as user) */
    const char *url;           /* as configured, for messages */
};

struct tp_nats_client_opts {
    const char *who; /* "input.nats" / "output.nats", for log lines */
    const struct tp_nats_server *servers;
    size_t n_servers;
    const char *name, *user, *pass, *token;
    uint64_t reconnect_wait_ms;
    int connect_timeout_ms;
};

struct tp_nats_client {
    struct tp_nats_client_opts o;
    struct tp_mqtt_net net;
    int connected;
    size_t server;         /* index of the server in use / tried next */
    uint64_t generation;   /* incremented on every successful connect */
    uint64_t pings, pongs; /* PINGs sent and PONGs received on this connection */
    uint64_t next_attempt_ms, last_read_ms, ping_due_ms;
    char why[300]; /* the last connection error */
    /* When set, the caller holds this mutex around every call on the
     * client, and tp_nats_client_poll releases it while it waits in
     * poll(), so that another thread may queue and write meanwhile. */
    pthread_mutex_t *poll_unlock;
};

/* Parses "nats://[user:pass@]host[:port]" (also without scheme; port 4222).
 * TP_CONFIG with why filled (tls:// is refused: no TLS support). */
int tp_nats_url_parse(const char *url, struct tp_nats_server *s, char *why, size_t why_len);

void tp_nats_client_init(struct tp_nats_client *c, const struct tp_nats_client_opts *o);
void tp_nats_client_free(struct tp_nats_client *c);

/* Not connected: waits until the next attempt is due (or wake_fd), then
 * tries the servers in order. TP_OK connected (a new generation: the caller
 * subscribes again), TP_AGAIN not yet (logged, next round scheduled),
 * TP_EOF woken through wake_fd. */
int tp_nats_client_connect(struct tp_nats_client *c, int wake_fd);

/* Connected: writes what is queued, polls the socket and wake_fd for up to
 * timeout_ms, reads what arrived (one read()). *woken = 1 when wake_fd is
 * readable (not drained here). TP_OK or TP_IO (connection lost, logged). */
int tp_nats_client_poll(struct tp_nats_client *c, int timeout_ms, int wake_fd, int *woken);

/* Decodes the next buffered operation. PING (answered), PONG (counted),
 * +OK and INFO are consumed here; a -ERR from the server ends the
 * connection (logged with its text) except a permissions violation (logged).
 * TP_OK with f a MSG/HMSG (pointing into the read buffer, valid until the next
 * poll), TP_AGAIN when no whole operation is buffered, TP_IO when the
 * connection was lost (a malformed line, -ERR). */
int tp_nats_client_next(struct tp_nats_client *c, struct tp_nats_frame *f);

/* The queue of bytes to send; tp_nats_client_send writes it out now. */
static inline struct tp_buf *tp_nats_client_out(struct tp_nats_client *c)
{
    return &c->net.wbuf;
}
/* TP_OK, or TP_IO when not connected / the write failed (lost, logged). */
int tp_nats_client_send(struct tp_nats_client *c);
/* Queues a PING; its PONG makes c->pongs reach the returned count. */
uint64_t tp_nats_client_ping(struct tp_nats_client *c);

/* Drops the connection (logged with why) and schedules the next attempt. */
void tp_nats_client_lost(struct tp_nats_client *c, const char *why);

/* Sends what is queued plus a PING and waits up to timeout_ms for its PONG
 * (the server has then processed everything before it). TP_OK or TP_IO. */
int tp_nats_client_flush(struct tp_nats_client *c, int timeout_ms);

/* A request/reply exchange on the connection, for JetStream API calls made
 * before any other traffic: subscribes inbox once (sid), publishes payload to
 * subject with reply inbox and copies the first answer's payload into out
 * (its status code, 503 no responders included, in *status; 0 when none).
 * Other messages are discarded. TP_OK, or TP_IO with why (timeout, lost). */
int tp_nats_client_request(struct tp_nats_client *c, const char *subject, const char *payload,
                           const char *inbox, uint64_t sid, int timeout_ms, struct tp_buf *out,
                           int *status, char *why, size_t why_len);

void tp_nats_client_close(struct tp_nats_client *c);

#endif
