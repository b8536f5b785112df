/* OPC UA TCP transport and secure channel: the TCP connection,
 * Hello/Acknowledge, OpenSecureChannel (issue and renew before the token's
 * lifetime runs out), message chunking in both directions with size and
 * chunk-count limits, ERR frames, CloseSecureChannel. Chunks are signed /
 * encrypted through secure.h when a security mode is set. Every wait also
 * watches a wake fd so a stop request interrupts it. */
#ifndef TP_OPCUA_TRANSPORT_H
#define TP_OPCUA_TRANSPORT_H

#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "io/opcua/secure.h"

struct ua_conn {
    int fd;
    int wake_fd; /* borrowed; readable = stop */
    uint32_t channel_id, token_id, seq, next_req;
    uint32_t send_chunk;   /* peer's receive buffer size */
    uint32_t max_msg_size; /* ours; 0 = unlimited is never used */
    uint32_t max_chunks;
    int64_t renew_at_ms;            /* monotonic time to renew the channel token */
    uint32_t lifetime_ms;           /* revised by the server */
    uint32_t requested_lifetime_ms; /* 0: 10 minutes */
    struct tp_buf rx;               /* bytes read, not yet consumed */
    struct tp_buf assembly;         /* chunks of the message being received */
    uint32_t assembly_req;
    uint32_t assembly_chunks;
    char *endpoint;
    struct ua_sec *sec;  /* borrowed; NULL or mode None: no security */
    struct tp_buf plain; /* a secured frame, opened */
    uint64_t renewals;   /* channel tokens renewed */
};

void ua_conn_init(struct ua_conn *c, int wake_fd, uint32_t max_msg_size, uint32_t max_chunks);
/* Connects to "opc.tcp://host:port[/path]", says Hello and opens a secure
 * channel with c->sec's policy and mode (None without c->sec). TP_OK, TP_EOF (stop), TP_IO /
 * TP_PARSE. */
int ua_conn_open(struct ua_conn *c, const char *endpoint, int timeout_ms, struct tp_error *err);
/* Sends one service request: body starts with the request's type NodeId.
 * Chunks it to the peer's buffer size. *req_id gets the request id. */
int ua_conn_send(struct ua_conn *c, const struct tp_buf *body, uint32_t *req_id,
                 struct tp_error *err);
/* Waits up to timeout_ms for the next complete service response; its body
 * (type NodeId first) replaces `body`. TP_OK, TP_AGAIN (timeout), TP_EOF
 * (stop requested), or TP_IO / TP_PARSE with err filled. */
int ua_conn_recv(struct ua_conn *c, int timeout_ms, uint32_t *req_id, struct tp_buf *body,
                 struct tp_error *err);
/* Says CloseSecureChannel (best effort) and closes the socket. */
void ua_conn_close(struct ua_conn *c);
void ua_conn_free(struct ua_conn *c);

/* Splits the frames in buf[0..len) as a server would send them; used by the
 * fuzz target to drive the frame parser without a socket: returns what
 * ua_conn_recv would for a connection that received exactly these bytes. */
int ua_conn_feed(struct ua_conn *c, const uint8_t *buf, size_t len, uint32_t *req_id,
                 struct tp_buf *body, struct tp_error *err);

#endif
