/* The MQTT client session used by the mqtt input and output: broker list
 * tried in order with exponential back-off, CONNECT/CONNACK handshake
 * (3.1.1 or 5, credentials, persistent session, Receive Maximum),
 * keepalive (PINGREQ/PINGRESP) and packet framing over net.h. The caller
 * owns the thread: every call runs on it; only wake_fd is shared, unless
 * the caller guards the client with a mutex (poll_unlock, below). */
#ifndef TP_MQTT_CLIENT_H
#define TP_MQTT_CLIENT_H

#include <pthread.h>
#include <stdint.h>

#include "io/mqtt/codec.h"
#include "io/mqtt/net.h"

struct tp_mqtt_broker {
    char host[256];
    int port;
    int tls;
    const char *url; /* as configured, for messages */
};

struct tp_mqtt_client_opts {
    const char *who; /* "mqtt input" / "mqtt output", for log lines */
    const struct tp_mqtt_broker *brokers;
    size_t n_brokers;
    int insecure;
    int version; /* TP_MQTT_V311 or TP_MQTT_V5 */
    const char *client_id, *username, *password;
    int clean_session;
    int keepalive_s;
    uint64_t reconnect_delay_ms, reconnect_delay_max_ms;
    uint16_t receive_maximum; /* MQTT 5: announced in CONNECT (0: not sent) */
};

struct tp_mqtt_client {
    struct tp_mqtt_client_opts o;
    struct tp_mqtt_net net;
    int connected;
    size_t broker;       /* index of the broker in use / tried next */
    uint64_t generation; /* incremented on every successful connect */
    int session_present; /* of the last CONNACK */
    uint16_t send_quota; /* the broker's Receive Maximum (65535 when absent) */
    uint64_t next_attempt_ms, backoff_ms;
    uint64_t last_send_ms, ping_sent_ms;
    /* At least this many bytes are due from the broker (e.g. the PUBACKs
     * of a batch sent) and will come without anything else sent:
     * tp_mqtt_client_poll wakes only once they are there (or a PINGRESP is
     * due, or the connection fails; plain TCP only). 0: any byte. */
    uint32_t expect_bytes;
    char why[256]; /* the last connection error */
    /* When set, the caller holds this mutex around every call on a
     * connected client, and tp_mqtt_client_poll releases it while it waits
     * in poll(), so that another thread may queue and write bytes
     * meanwhile (the MQTT output's submit). NULL: single-threaded. */
    pthread_mutex_t *poll_unlock;
};

void tp_mqtt_client_init(struct tp_mqtt_client *c, const struct tp_mqtt_client_opts *o);
void tp_mqtt_client_free(struct tp_mqtt_client *c);

/* Not connected: waits for the back-off (or wake_fd), then tries the
 * brokers in order. TP_OK connected (a new generation), TP_AGAIN not yet,
 * TP_EOF woken through wake_fd. Logs what happens. */
int tp_mqtt_client_connect(struct tp_mqtt_client *c, int wake_fd);

/* Connected: polls the socket (POLLOUT too while output is queued) and
 * wake_fd for up to timeout_ms (capped by the keepalive), reads what
 * arrived, writes what is queued, sends PINGREQ when due. *woken = 1 when
 * wake_fd is readable (not drained here). TP_OK, or TP_IO when the
 * connection was lost (already closed and logged). */
int tp_mqtt_client_poll(struct tp_mqtt_client *c, int timeout_ms, int wake_fd, int *woken);

/* Connected: the keepalive and the queued bytes as in tp_mqtt_client_poll,
 * then one read() of what the socket holds, without waiting (for a caller
 * that expects bytes: no poll() before the read). TP_OK (possibly nothing
 * read: net.drained), or TP_IO when the connection was lost. */
int tp_mqtt_client_read(struct tp_mqtt_client *c);

/* Sets expect_bytes and applies it to the socket at once (also while
 * another thread waits in tp_mqtt_client_poll: a lower mark wakes it when
 * enough is there already). */
void tp_mqtt_client_expect(struct tp_mqtt_client *c, uint32_t bytes);

/* Decodes the next buffered packet (PINGRESP is consumed here). TP_OK with
 * *pkt pointing into the read buffer (valid until the next poll), TP_AGAIN
 * when no whole packet is buffered, TP_IO on a malformed packet or a
 * DISCONNECT from the broker (connection closed and logged). */
int tp_mqtt_client_next(struct tp_mqtt_client *c, struct tp_mqtt_packet *pkt);

/* The queue of bytes to send; tp_mqtt_client_send writes it out now. */
static inline struct tp_buf *tp_mqtt_client_out(struct tp_mqtt_client *c)
{
    return &c->net.wbuf;
}
int tp_mqtt_client_send(struct tp_mqtt_client *c);

/* Drops the connection (log why) and schedules the next attempt. */
void tp_mqtt_client_lost(struct tp_mqtt_client *c, const char *why);

/* Sends DISCONNECT (after what is queued, waiting up to timeout_ms) and closes. */
void tp_mqtt_client_disconnect(struct tp_mqtt_client *c, int timeout_ms);

#endif
