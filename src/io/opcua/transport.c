/* OPC UA TCP transport and secure channel (see transport.h): framing, chunk
 * assembly with limits, Hello/Acknowledge, OpenSecureChannel issue/renew and
 * CloseSecureChannel; secured chunks are sealed/opened by secure.c. */
#include "io/opcua/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "io/opcua/codec.h"

#define OUR_BUFFER 65536u
#define HEADER 8u             /* message type (3), chunk type (1), size (4) */
#define SYM_HEADER 16u        /* channel id, token id, sequence number, request id */
#define MIN_PEER_BUFFER 8192u /* the spec's minimum buffer size */
#define OPN_REQUEST 446
#define OPN_RESPONSE 449
#define CLO_REQUEST 452
#define TOKEN_LIFETIME_MS 600000u

void ua_conn_init(struct ua_conn *c, int wake_fd, uint32_t max_msg_size, uint32_t max_chunks)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->wake_fd = wake_fd;
    c->max_msg_size = max_msg_size;
    c->max_chunks = max_chunks;
    tp_buf_init(&c->rx);
    tp_buf_init(&c->assembly);
    tp_buf_init(&c->plain);
}

/* Waits until fd is ready for `events`: 0, TP_AGAIN (timeout) or TP_EOF (wake). */
static int wait_fd(struct ua_conn *c, short events, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = c->fd, .events = events}, {.fd = c->wake_fd, .events = POLLIN}};
    for (;;) {
        int n = poll(p, c->wake_fd >= 0 ? 2 : 1, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return TP_IO;
        if (n == 0)
            return TP_AGAIN;
        if (c->wake_fd >= 0 && (p[1].revents & POLLIN))
            return TP_EOF;
        return 0;
    }
}

static int send_all(struct ua_conn *c, const char *p, size_t n, struct tp_error *err)
{
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(c, POLLOUT, 10000);
            if (rc == TP_AGAIN)
                return tp_error_set(err, TP_IO, "opcua: send timed out");
            if (rc)
                return rc == TP_EOF ? TP_EOF : tp_error_set(err, TP_IO, "opcua: send failed");
            continue;
        }
        return tp_error_set(err, TP_IO, "opcua: send failed: %s", strerror(errno));
    }
    return 0;
}

/* The 3-byte message type for messages: as text when printable, else in hex. */
static const char *type_text(const char *type, char out[16])
{
    const unsigned char *t = (const unsigned char *)type;
    if (t[0] >= 'A' && t[0] <= 'Z' && t[1] >= 'A' && t[1] <= 'Z' && t[2] >= 'A' && t[2] <= 'Z')
        snprintf(out, 16, "'%.3s'", type);
    else
        snprintf(out, 16, "0x%02x%02x%02x", t[0], t[1], t[2]);
    return out;
}

/* One frame of the stream in c->rx: 1 when complete (*type, *chunk, *len
 * set), 0 when more bytes are needed, TP_PARSE for a bad header. */
static int frame_ready(struct ua_conn *c, char type[4], char *chunk, uint32_t *len,
                       struct tp_error *err)
{
    if (c->rx.len < HEADER)
        return 0;
    const uint8_t *p = (const uint8_t *)c->rx.data;
    uint32_t size =
        (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    memcpy(type, p, 3);
    type[3] = 0;
    *chunk = (char)p[3];
    char tt[16];
    if (size < HEADER || size > OUR_BUFFER)
        return tp_error_set(err, TP_PARSE, "opcua: server sent a %s frame of %u bytes (limit %u)",
                            type_text(type, tt), size, OUR_BUFFER);
    if (c->rx.len < size)
        return 0;
    *len = size;
    return 1;
}

static void consume(struct ua_conn *c, size_t n)
{
    memmove(c->rx.data, c->rx.data + n, c->rx.len - n);
    c->rx.len -= n;
}

static int read_more(struct ua_conn *c, int64_t deadline, struct tp_error *err)
{
    int64_t left = deadline - tp_mono_ms();
    if (left < 0)
        left = 0;
    int rc = wait_fd(c, POLLIN, (int)left);
    if (rc == TP_AGAIN || rc == TP_EOF)
        return rc;
    if (rc)
        return tp_error_set(err, TP_IO, "opcua: poll failed");
    if (tp_buf_reserve(&c->rx, OUR_BUFFER))
        return tp_error_set(err, TP_NOMEM, "out of memory");
    ssize_t n = recv(c->fd, c->rx.data + c->rx.len, OUR_BUFFER, 0);
    if (n == 0)
        return tp_error_set(err, TP_IO, "opcua: server closed the connection");
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 0;
        return tp_error_set(err, TP_IO, "opcua: receive failed: %s", strerror(errno));
    }
    c->rx.len += (size_t)n;
    return 0;
}

/* Some servers (node-opcua) answer a refused OpenSecureChannel with an ERR
 * frame shaped like an unsecured OPN carrying a ServiceFault: its status and
 * first string-table entry. 0 when the frame is not of that shape. */
static uint32_t fault_in_err(const uint8_t *p, size_t len, struct ua_str *reason)
{
    struct ua_dec d;
    ua_dec_init(&d, p, len);
    ua_dec_u32(&d);    /* channel */
    ua_dec_string(&d); /* policy */
    ua_dec_string(&d); /* certificate */
    ua_dec_string(&d); /* thumbprint */
    ua_dec_u32(&d);    /* sequence number */
    ua_dec_u32(&d);    /* request id */
    struct ua_nodeid type;
    ua_dec_nodeid(&d, &type);
    ua_dec_i64(&d);
    ua_dec_u32(&d);
    uint32_t code = ua_dec_u32(&d);
    ua_dec_skip_diagnostic_info(&d);
    int32_t n = ua_dec_len(&d, 1024);
    *reason = n > 0 ? ua_dec_string(&d) : (struct ua_str){NULL, -1};
    return !d.err && type.num == 397 && (code & 0x80000000u) ? code : 0;
}

static int error_frame(const uint8_t *p, size_t len, struct tp_error *err)
{
    struct ua_dec d;
    ua_dec_init(&d, p, len);
    uint32_t code = ua_dec_u32(&d);
    struct ua_str reason = ua_dec_string(&d);
    struct ua_str fault_reason;
    uint32_t fault = (code & 0x80000000u) ? 0 : fault_in_err(p, len, &fault_reason);
    if (fault) {
        code = fault;
        reason = fault_reason;
    }
    char tmp[16], text[200];
    size_t n = 0;
    for (int32_t i = 0; i < reason.len && n + 1 < sizeof(text); i++) { /* printable only */
        unsigned char ch = (unsigned char)reason.s[i];
        text[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    text[n] = 0;
    return tp_error_set(err, TP_IO, "opcua: server error %s: %s", ua_status_name(code, tmp), text);
}

/* Handles an OpenSecureChannel response body (after the sequence header). */
static int opn_response(struct ua_conn *c, struct ua_dec *d, struct tp_error *err)
{
    struct ua_nodeid type;
    ua_dec_nodeid(d, &type);
    if (d->err || type.num != OPN_RESPONSE)
        return tp_error_set(err, TP_PARSE, "opcua: unexpected OpenSecureChannel response");
    ua_dec_i64(d);
    ua_dec_u32(d);
    uint32_t result = ua_dec_u32(d);
    ua_dec_skip_diagnostic_info(d);
    ua_dec_skip_array(d, UA_STRING);
    ua_dec_skip(d, UA_EXTENSIONOBJECT);
    ua_dec_u32(d); /* server protocol version */
    uint32_t channel = ua_dec_u32(d), token = ua_dec_u32(d);
    ua_dec_i64(d);
    uint32_t lifetime = ua_dec_u32(d);
    struct ua_str nonce = ua_dec_string(d);
    if (d->err)
        return tp_error_set(err, TP_PARSE, "opcua: truncated OpenSecureChannel response");
    char tmp[16];
    if (result & 0x80000000u)
        return tp_error_set(err, TP_IO, "opcua: OpenSecureChannel failed: %s",
                            ua_status_name(result, tmp));
    if (ua_sec_on(c->sec)) {
        int rc = ua_sec_derive(c->sec, token, (const uint8_t *)nonce.s,
                               nonce.len > 0 ? (size_t)nonce.len : 0, err);
        if (rc)
            return rc;
    }
    if (c->token_id && token != c->token_id) {
        c->renewals++;
        tp_log(TP_LOG_DEBUG, "opcua: secure channel token %u replaces %u (lifetime %u ms)", token,
               c->token_id, lifetime);
    }
    c->channel_id = channel;
    c->token_id = token;
    c->lifetime_ms = lifetime ? lifetime : TOKEN_LIFETIME_MS;
    c->renew_at_ms = tp_mono_ms() + c->lifetime_ms * 3 / 4;
    return 0;
}

/* Processes one complete frame from c->rx. 1: a whole service message is in
 * body; 0: consumed (chunk, renew response); <0 never; errors as status. */
static int process_frame(struct ua_conn *c, const char *type, char chunk, uint32_t len,
                         uint32_t *req_id, struct tp_buf *body, struct tp_error *err)
{
    const uint8_t *p = (const uint8_t *)c->rx.data + HEADER;
    size_t n = len - HEADER;
    int rc = 0;
    if (ua_sec_on(c->sec) && (strcmp(type, "OPN") == 0 || strcmp(type, "MSG") == 0)) {
        const uint8_t *f = (const uint8_t *)c->rx.data;
        rc = strcmp(type, "OPN") == 0 ? ua_sec_asym_open(c->sec, f, len, &c->plain, err)
                                      : ua_sec_sym_open(c->sec, f, len, &c->plain, err);
        if (rc) {
            consume(c, len);
            return rc;
        }
        p = (const uint8_t *)c->plain.data;
        n = c->plain.len;
    }
    struct ua_dec d;
    ua_dec_init(&d, p, n);
    if (strcmp(type, "ERR") == 0) {
        rc = error_frame(p, n, err);
    } else if (strcmp(type, "OPN") == 0) {
        ua_dec_u32(&d);
        ua_dec_string(&d); /* policy */
        ua_dec_string(&d); /* certificate */
        ua_dec_string(&d); /* thumbprint */
        ua_dec_u32(&d);
        *req_id = ua_dec_u32(&d);
        rc = d.err ? tp_error_set(err, TP_PARSE, "opcua: truncated OPN frame")
                   : opn_response(c, &d, err);
    } else if (strcmp(type, "MSG") == 0) {
        uint32_t channel = ua_dec_u32(&d);
        ua_dec_u32(&d); /* token */
        ua_dec_u32(&d); /* sequence number */
        uint32_t rid = ua_dec_u32(&d);
        if (d.err)
            rc = tp_error_set(err, TP_PARSE, "opcua: truncated MSG frame");
        else if (channel != c->channel_id)
            rc = tp_error_set(err, TP_PARSE, "opcua: MSG for secure channel %u, ours is %u",
                              channel, c->channel_id);
        else if (c->assembly_chunks && rid != c->assembly_req)
            rc = tp_error_set(err, TP_PARSE, "opcua: interleaved chunks of requests %u and %u",
                              c->assembly_req, rid);
        else if (chunk == 'A') { /* the server aborted this message */
            c->assembly_chunks = 0;
            tp_buf_reset(&c->assembly);
            rc = error_frame(p + SYM_HEADER, n - SYM_HEADER, err);
        } else if (chunk != 'C' && chunk != 'F') {
            rc = tp_error_set(err, TP_PARSE, "opcua: bad chunk type 0x%02x", (unsigned char)chunk);
        } else if (++c->assembly_chunks > c->max_chunks) {
            rc = tp_error_set(err, TP_PARSE, "opcua: response has more than %u chunks",
                              c->max_chunks);
        } else if (c->assembly.len + (n - SYM_HEADER) > c->max_msg_size) {
            rc = tp_error_set(err, TP_PARSE, "opcua: response larger than %u bytes",
                              c->max_msg_size);
        } else {
            c->assembly_req = rid;
            if (tp_buf_append(&c->assembly, (const char *)p + SYM_HEADER, n - SYM_HEADER))
                rc = tp_error_set(err, TP_NOMEM, "out of memory");
            else if (chunk == 'F') {
                tp_buf_reset(body);
                if (tp_buf_append(body, c->assembly.data, c->assembly.len))
                    rc = tp_error_set(err, TP_NOMEM, "out of memory");
                *req_id = rid;
                c->assembly_chunks = 0;
                tp_buf_reset(&c->assembly);
                if (!rc)
                    rc = 1;
            }
        }
    } else {
        char tt[16];
        rc = tp_error_set(err, TP_PARSE, "opcua: unexpected message type %s", type_text(type, tt));
    }
    consume(c, len);
    return rc;
}

static int send_opn(struct ua_conn *c, uint32_t request_type, struct tp_error *err);

/* Renews the channel token when 3/4 of its lifetime have passed; the
 * response is handled by ua_conn_recv (until then the old token is used).
 * One renewal at a time: its keys derive from the nonce it sent, so no second
 * request (with another nonce) goes out before the response, which sets the
 * next renewal time. */
static int maybe_renew(struct ua_conn *c, struct tp_error *err)
{
    if (c->fd < 0 || !c->channel_id || tp_mono_ms() < c->renew_at_ms)
        return 0;
    c->renew_at_ms = INT64_MAX;
    return send_opn(c, 1, err);
}

int ua_conn_recv(struct ua_conn *c, int timeout_ms, uint32_t *req_id, struct tp_buf *body,
                 struct tp_error *err)
{
    int64_t deadline = tp_mono_ms() + timeout_ms;
    for (;;) {
        int rc0 = maybe_renew(c, err);
        if (rc0)
            return rc0;
        char type[4], chunk;
        uint32_t len = 0;
        int rc = frame_ready(c, type, &chunk, &len, err);
        if (rc < 0 || (rc > 0 && rc != 1))
            return rc;
        if (rc == 1) {
            rc = process_frame(c, type, chunk, len, req_id, body, err);
            if (rc == 1)
                return TP_OK;
            if (rc)
                return rc;
            continue;
        }
        int64_t until = c->channel_id && c->renew_at_ms < deadline ? c->renew_at_ms : deadline;
        if ((rc = read_more(c, until, err)) != 0 && !(rc == TP_AGAIN && until < deadline))
            return rc;
    }
}

int ua_conn_feed(struct ua_conn *c, const uint8_t *buf, size_t len, uint32_t *req_id,
                 struct tp_buf *body, struct tp_error *err)
{
    if (tp_buf_append(&c->rx, (const char *)buf, len))
        return TP_NOMEM;
    for (;;) {
        char type[4], chunk;
        uint32_t flen = 0;
        int rc = frame_ready(c, type, &chunk, &flen, err);
        if (rc != 1)
            return rc ? rc : TP_AGAIN;
        rc = process_frame(c, type, chunk, flen, req_id, body, err);
        if (rc == 1)
            return TP_OK;
        if (rc)
            return rc;
    }
}

/* Writes the 8-byte frame header at off. */
static void put_header(struct tp_buf *b, size_t off, const char *type, char chunk)
{
    memcpy(b->data + off, type, 3);
    b->data[off + 3] = chunk;
    ua_put_u32_at(b, off + 4, (uint32_t)(b->len - off));
}

static int send_opn(struct ua_conn *c, uint32_t request_type, struct tp_error *err)
{
    struct tp_buf b;
    tp_buf_init(&b);
    uint32_t rid = ++c->next_req;
    struct ua_sec *sec = ua_sec_on(c->sec) ? c->sec : NULL;
    uint8_t thumb[UA_THUMBPRINT_LEN];
    if (sec) {
        ua_cert_thumbprint(sec->peer, thumb);
        if (ua_sec_new_nonce(sec))
            return tp_error_set(err, TP_IO, "opcua: no random bytes for the channel nonce");
    }
    const char *own = sec ? (const char *)sec->own->der : NULL;
    int32_t own_len = sec ? (int32_t)sec->own->der_len : -1;
    int rc = tp_buf_append(&b, "OPNF\0\0\0\0", 8) || ua_enc_u32(&b, c->channel_id) ||
             ua_enc_cstring(&b, sec ? sec->policy->uri : ua_policy_none.uri) ||
             ua_enc_string(&b, own, own_len) ||
             ua_enc_string(&b, sec ? (const char *)thumb : NULL, sec ? UA_THUMBPRINT_LEN : -1);
    size_t seq_off = b.len;
    rc = rc || ua_enc_u32(&b, ++c->seq) || ua_enc_u32(&b, rid) ||
         ua_enc_numeric_nodeid(&b, 0, OPN_REQUEST) ||
         /* request header */
         ua_enc_numeric_nodeid(&b, 0, 0) || ua_enc_u64(&b, (uint64_t)ua_datetime_now()) ||
         ua_enc_u32(&b, rid) || ua_enc_u32(&b, 0) || ua_enc_string(&b, NULL, -1) ||
         ua_enc_u32(&b, 10000) || ua_enc_numeric_nodeid(&b, 0, 0) || ua_enc_u8(&b, 0) ||
         /* OpenSecureChannel */
         ua_enc_u32(&b, 0) || ua_enc_u32(&b, request_type) ||
         ua_enc_u32(&b, sec ? (uint32_t)sec->mode : UA_MODE_NONE) ||
         ua_enc_string(&b, sec ? (const char *)sec->client_nonce : "",
                       sec ? sec->policy->nonce_len : 0) ||
         ua_enc_u32(&b, c->requested_lifetime_ms ? c->requested_lifetime_ms : TOKEN_LIFETIME_MS);
    if (rc) {
        tp_buf_free(&b);
        return tp_error_set(err, TP_NOMEM, "out of memory");
    }
    put_header(&b, 0, "OPN", 'F');
    if (sec && (rc = ua_sec_asym_seal(sec, &b, seq_off, err)) != 0) {
        tp_buf_free(&b);
        return rc;
    }
    rc = send_all(c, b.data, b.len, err);
    tp_buf_free(&b);
    return rc;
}

/* Waits for a frame during the handshake (Acknowledge, OPN). */
static int handshake_frame(struct ua_conn *c, const char *want, int64_t deadline, uint32_t *len_out,
                           struct tp_error *err)
{
    for (;;) {
        char type[4], chunk;
        uint32_t len = 0;
        int rc = frame_ready(c, type, &chunk, &len, err);
        if (rc < 0 || rc > 1)
            return rc;
        if (rc == 1) {
            if (strcmp(type, "ERR") == 0) {
                rc = error_frame((const uint8_t *)c->rx.data + HEADER, len - HEADER, err);
                consume(c, len);
                return rc;
            }
            if (strcmp(type, want) != 0) {
                consume(c, len);
                char tt[16];
                return tp_error_set(err, TP_PARSE, "opcua: expected %s from the server, got %s",
                                    want, type_text(type, tt));
            }
            *len_out = len;
            return 0;
        }
        rc = read_more(c, deadline, err);
        if (rc == TP_AGAIN)
            return tp_error_set(err, TP_IO, "opcua: no %s from the server in time", want);
        if (rc)
            return rc;
    }
}

static int tcp_connect(struct ua_conn *c, const char *endpoint, int64_t deadline,
                       struct tp_error *err)
{
    const char *rest = endpoint + strlen("opc.tcp://");
    if (strncmp(endpoint, "opc.tcp://", 10) != 0)
        return tp_error_set(err, TP_CONFIG, "opcua: endpoint must start with opc.tcp://, got %s",
                            endpoint);
    char host[256], port[16] = "4840";
    size_t hl = strcspn(rest, ":/");
    if (rest[0] == '[') { /* [IPv6] */
        const char *close = strchr(rest, ']');
        if (!close)
            return tp_error_set(err, TP_CONFIG, "opcua: bad endpoint %s", endpoint);
        hl = (size_t)(close - rest - 1);
        rest++;
    }
    if (hl == 0 || hl >= sizeof(host))
        return tp_error_set(err, TP_CONFIG, "opcua: bad endpoint host in %s", endpoint);
    memcpy(host, rest, hl);
    host[hl] = 0;
    const char *after = rest + hl + (rest[hl] == ']');
    if (*after == ':') {
        size_t pl = strcspn(after + 1, "/");
        if (pl == 0 || pl >= sizeof(port))
            return tp_error_set(err, TP_CONFIG, "opcua: bad endpoint port in %s", endpoint);
        memcpy(port, after + 1, pl);
        port[pl] = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai)
        return tp_error_set(err, TP_IO, "opcua: cannot resolve %s: %s", host, gai_strerror(gai));
    int rc = TP_IO;
    for (struct addrinfo *a = res; a && rc; a = a->ai_next) {
        c->fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->fd < 0)
            continue;
        if (connect(c->fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
            int64_t left = deadline - tp_mono_ms();
            int w = wait_fd(c, POLLOUT, left > 0 ? (int)left : 0);
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (w == TP_EOF) {
                rc = TP_EOF;
                break;
            }
            if (w == 0 && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && !soerr) {
                rc = 0;
                break;
            }
            errno = soerr ? soerr : ETIMEDOUT;
        }
        tp_error_set(err, TP_IO, "opcua: cannot connect to %s: %s", endpoint, strerror(errno));
        close(c->fd);
        c->fd = -1;
    }
    freeaddrinfo(res);
    if (rc == 0) {
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return rc;
}

int ua_conn_open(struct ua_conn *c, const char *endpoint, int timeout_ms, struct tp_error *err)
{
    int64_t deadline = tp_mono_ms() + timeout_ms;
    tp_buf_reset(&c->rx);
    tp_buf_reset(&c->assembly);
    c->assembly_chunks = 0;
    c->channel_id = c->token_id = c->seq = 0;
    free(c->endpoint);
    if (!(c->endpoint = strdup(endpoint)))
        return tp_error_set(err, TP_NOMEM, "out of memory");
    int rc = tcp_connect(c, endpoint, deadline, err);
    if (rc)
        return rc;
    struct tp_buf b;
    tp_buf_init(&b);
    rc = tp_buf_append(&b, "HELF\0\0\0\0", 8) || ua_enc_u32(&b, 0) || ua_enc_u32(&b, OUR_BUFFER) ||
         ua_enc_u32(&b, OUR_BUFFER) || ua_enc_u32(&b, c->max_msg_size) ||
         ua_enc_u32(&b, c->max_chunks) || ua_enc_cstring(&b, endpoint);
    if (rc) {
        tp_buf_free(&b);
        return tp_error_set(err, TP_NOMEM, "out of memory");
    }
    put_header(&b, 0, "HEL", 'F');
    rc = send_all(c, b.data, b.len, err);
    tp_buf_free(&b);
    uint32_t len;
    if (rc || (rc = handshake_frame(c, "ACK", deadline, &len, err)) != 0)
        return rc;
    struct ua_dec d;
    ua_dec_init(&d, c->rx.data + HEADER, c->rx.len - HEADER);
    ua_dec_u32(&d);
    uint32_t peer_recv = ua_dec_u32(&d);
    ua_dec_u32(&d); /* peer send buffer */
    consume(c, len);
    if (d.err)
        return tp_error_set(err, TP_PARSE, "opcua: truncated Acknowledge");
    if (peer_recv < MIN_PEER_BUFFER)
        return tp_error_set(err, TP_PARSE, "opcua: server receive buffer %u below %u", peer_recv,
                            MIN_PEER_BUFFER);
    c->send_chunk = peer_recv > OUR_BUFFER ? OUR_BUFFER : peer_recv;
    if ((rc = send_opn(c, 0, err)) != 0 ||
        (rc = handshake_frame(c, "OPN", deadline, &len, err)) != 0)
        return rc;
    uint32_t rid;
    return process_frame(c, "OPN", 'F', len, &rid, NULL, err);
}

int ua_conn_send(struct ua_conn *c, const struct tp_buf *body, uint32_t *req_id,
                 struct tp_error *err)
{
    if (c->fd < 0)
        return tp_error_set(err, TP_IO, "opcua: not connected");
    int rc0 = maybe_renew(c, err);
    if (rc0)
        return rc0;
    uint32_t rid = ++c->next_req;
    *req_id = rid;
    struct ua_sec *sec = ua_sec_on(c->sec) ? c->sec : NULL;
    size_t max_body =
               sec ? ua_sec_sym_max_body(sec, c->send_chunk) : c->send_chunk - HEADER - SYM_HEADER,
           off = 0;
    struct tp_buf b;
    tp_buf_init(&b);
    int rc = 0;
    do {
        size_t n = body->len - off > max_body ? max_body : body->len - off;
        int last = off + n == body->len;
        tp_buf_reset(&b);
        if (tp_buf_append(&b, "MSGF\0\0\0\0", 8) || ua_enc_u32(&b, c->channel_id) ||
            ua_enc_u32(&b, c->token_id) || ua_enc_u32(&b, ++c->seq) || ua_enc_u32(&b, rid) ||
            tp_buf_append(&b, body->data + off, n)) {
            rc = tp_error_set(err, TP_NOMEM, "out of memory");
            break;
        }
        put_header(&b, 0, "MSG", last ? 'F' : 'C');
        if (sec && (rc = ua_sec_sym_seal(sec, &b, err)) != 0)
            break;
        rc = send_all(c, b.data, b.len, err);
        off += n;
    } while (!rc && off < body->len);
    tp_buf_free(&b);
    return rc;
}

void ua_conn_close(struct ua_conn *c)
{
    if (c->fd < 0)
        return;
    struct tp_buf b;
    tp_buf_init(&b);
    if (c->channel_id && !tp_buf_append(&b, "CLOF\0\0\0\0", 8) && !ua_enc_u32(&b, c->channel_id) &&
        !ua_enc_u32(&b, c->token_id) && !ua_enc_u32(&b, ++c->seq) &&
        !ua_enc_u32(&b, ++c->next_req) && !ua_enc_numeric_nodeid(&b, 0, CLO_REQUEST) &&
        !ua_enc_numeric_nodeid(&b, 0, 0) && !ua_enc_u64(&b, (uint64_t)ua_datetime_now()) &&
        !ua_enc_u32(&b, c->next_req) && !ua_enc_u32(&b, 0) && !ua_enc_string(&b, NULL, -1) &&
        !ua_enc_u32(&b, 1000) && !ua_enc_numeric_nodeid(&b, 0, 0) && !ua_enc_u8(&b, 0)) {
        put_header(&b, 0, "CLO", 'F');
        struct tp_error err;
        if (!ua_sec_on(c->sec) || !ua_sec_sym_seal(c->sec, &b, &err))
            (void)!send(c->fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    tp_buf_free(&b);
    close(c->fd);
    c->fd = -1;
}

void ua_conn_free(struct ua_conn *c)
{
    ua_conn_close(c);
    tp_buf_free(&c->rx);
    tp_buf_free(&c->assembly);
    tp_buf_free(&c->plain);
    free(c->endpoint);
    c->endpoint = NULL;
}
