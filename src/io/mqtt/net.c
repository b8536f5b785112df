/* Buffered non-blocking socket with optional TLS (net.h). TLS uses OpenSSL
 * with read-ahead, so one SSL_read pulls everything the kernel holds with a
 * single read(); decrypted bytes OpenSSL still holds are drained into the
 * read buffer before returning, so poll() never misses them. */
#include "io/mqtt/net.h"

#include <arpa/inet.h>
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

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/clock.h"
#include "core/error.h"
#include "io/mqtt/codec.h"

#define READ_CHUNK (256u * 1024u)

static void ssl_why(char *why, size_t why_len, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(why, why_len, "%s%s%s", what, e ? ": " : "", buf);
    ERR_clear_error();
}

void tp_mqtt_net_init(struct tp_mqtt_net *n)
{
    memset(n, 0, sizeof(*n));
    n->fd = -1;
    n->lowat = 1;
    tp_buf_init(&n->wbuf);
}

int tp_mqtt_net_tls_setup(struct tp_mqtt_net *n, const struct tp_mqtt_tls_opts *o, char *why,
                          size_t why_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ssl_why(why, why_len, "cannot create a TLS context");
        return TP_CONFIG;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    int ok = o->ca_file ? SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL)
                        : SSL_CTX_set_default_verify_paths(ctx);
    if (!ok) {
        ssl_why(why, why_len, o->ca_file ? "cannot load ca_file" : "cannot load the system CAs");
        SSL_CTX_free(ctx);
        return TP_CONFIG;
    }
    if (o->cert_file && (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1 ||
                         SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1 ||
                         SSL_CTX_check_private_key(ctx) != 1)) {
        ssl_why(why, why_len, "cannot load cert_file/key_file");
        SSL_CTX_free(ctx);
        return TP_CONFIG;
    }
    SSL_CTX_set_verify(ctx, o->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    n->ctx = ctx;
    return TP_OK;
}

/* Waits for events on fd or for wake_fd; 1 ready, 0 timeout, -1 woken/error. */
static int wait_fd(int fd, short events, int wake_fd, int ms)
{
    struct pollfd p[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    int r = poll(p, wake_fd >= 0 ? 2 : 1, ms < 0 ? 0 : ms);
    if (r < 0)
        return errno == EINTR ? 0 : -1;
    if (r > 0 && wake_fd >= 0 && p[1].revents)
        return -1;
    return r > 0 ? 1 : 0;
}

static int tcp_connect(struct tp_mqtt_net *n, const char *host, int port, uint64_t deadline,
                       int wake_fd, char *why, size_t why_len)
{
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    int gai = getaddrinfo(host, ports, &hints, &res);
    if (gai) {
        snprintf(why, why_len, "cannot resolve %s: %s", host, gai_strerror(gai));
        return TP_IO;
    }
    int rc = TP_IO;
    snprintf(why, why_len, "no address for %s", host);
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, wake_fd, (int)(deadline - tp_mono_ms()));
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (w < 0 && wake_fd >= 0) {
                close(fd);
                rc = TP_EOF;
                break;
            }
            if (w == 0)
                snprintf(why, why_len, "connect to %s:%d timed out", host, port);
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
                n->fd = fd;
                rc = TP_OK;
                break;
            } else
                snprintf(why, why_len, "connect to %s:%d: %s", host, port, strerror(soerr));
        } else {
            snprintf(why, why_len, "connect to %s:%d: %s", host, port, strerror(errno));
        }
        close(fd);
    }
    freeaddrinfo(res);
    return rc;
}

static int tls_handshake(struct tp_mqtt_net *n, const char *host, int insecure, uint64_t deadline,
                         int wake_fd, char *why, size_t why_len)
{
    SSL *ssl = SSL_new(n->ctx);
    if (!ssl) {
        ssl_why(why, why_len, "SSL_new");
        return TP_IO;
    }
    n->ssl = ssl;
    SSL_set_fd(ssl, n->fd);
    struct in6_addr a6;
    struct in_addr a4;
    int is_ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(ssl, host);
    if (!insecure) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        if (is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(param, host);
        else
            X509_VERIFY_PARAM_set1_host(param, host, 0);
    }
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1)
            return TP_OK;
        int e = SSL_get_error(ssl, r);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev) {
            long vr = SSL_get_verify_result(ssl);
            if (vr != X509_V_OK)
                snprintf(why, why_len, "TLS handshake: certificate verification failed: %s",
                         X509_verify_cert_error_string(vr));
            else
                ssl_why(why, why_len, "TLS handshake failed");
            ERR_clear_error();
            return TP_IO;
        }
        int w = wait_fd(n->fd, ev, wake_fd, (int)(deadline - tp_mono_ms()));
        if (w < 0)
            return TP_EOF;
        if (w == 0) {
            snprintf(why, why_len, "TLS handshake timed out");
            return TP_IO;
        }
    }
}

int tp_mqtt_net_connect(struct tp_mqtt_net *n, const char *host, int port, int tls, int insecure,
                        int timeout_ms, int wake_fd, char *why, size_t why_len)
{
    tp_mqtt_net_close(n);
    uint64_t deadline = tp_mono_ms() + (uint64_t)timeout_ms;
    int rc = tcp_connect(n, host, port, deadline, wake_fd, why, why_len);
    if (rc == TP_OK && tls) {
        if (!n->ctx) {
            snprintf(why, why_len, "TLS not set up");
            rc = TP_IO;
        } else
            rc = tls_handshake(n, host, insecure, deadline, wake_fd, why, why_len);
    }
    if (rc)
        tp_mqtt_net_close(n);
    return rc;
}

/* Room for at least READ_CHUNK more bytes (compacting first). */
static int make_room(struct tp_mqtt_net *n)
{
    if (n->rpos == n->rlen)
        n->rpos = n->rlen = 0;
    if (n->rcap - n->rlen >= READ_CHUNK)
        return TP_OK;
    if (n->rpos) {
        memmove(n->rbuf, n->rbuf + n->rpos, n->rlen - n->rpos);
        n->rlen -= n->rpos;
        n->rpos = 0;
        if (n->rcap - n->rlen >= READ_CHUNK)
            return TP_OK;
    }
    size_t cap = n->rcap ? n->rcap * 2 : 2 * READ_CHUNK;
    if (cap > 2u * TP_MQTT_MAX_PACKET + 2 * READ_CHUNK)
        return TP_NOMEM;
    uint8_t *b = realloc(n->rbuf, cap);
    if (!b)
        return TP_NOMEM;
    n->rbuf = b;
    n->rcap = cap;
    return TP_OK;
}

int tp_mqtt_net_fill(struct tp_mqtt_net *n, char *why, size_t why_len)
{
    if (n->fd < 0) {
        snprintf(why, why_len, "not connected");
        return TP_IO;
    }
    do {
        if (make_room(n)) {
            snprintf(why, why_len, "out of memory for the read buffer");
            return TP_IO;
        }
        size_t room = n->rcap - n->rlen;
        if (!n->ssl) {
            ssize_t r = read(n->fd, n->rbuf + n->rlen, room);
            if (r > 0) {
                n->rlen += (size_t)r;
                n->nread += (uint64_t)r;
                n->drained = (size_t)r < room;
                return TP_OK;
            }
            if (r == 0)
                return TP_EOF;
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                n->drained = 1;
                return TP_OK;
            }
            snprintf(why, why_len, "read: %s", strerror(errno));
            return TP_IO;
        }
        int r = SSL_read(n->ssl, n->rbuf + n->rlen, room > INT32_MAX ? INT32_MAX : (int)room);
        if (r > 0) {
            n->rlen += (size_t)r;
            n->nread += (uint64_t)r;
            continue;
        }
        int e = SSL_get_error(n->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            n->drained = 1;
            return TP_OK;
        }
        if (e == SSL_ERROR_ZERO_RETURN)
            return TP_EOF;
        if (e == SSL_ERROR_SYSCALL && errno == 0) {
            ERR_clear_error();
            return TP_EOF;
        }
        ssl_why(why, why_len, "TLS read");
        return TP_IO;
    } while (SSL_has_pending(n->ssl));
    n->drained = 0; /* read-ahead may have left bytes in the kernel: ask again */
    return TP_OK;
}

int tp_mqtt_net_flush(struct tp_mqtt_net *n, char *why, size_t why_len)
{
    while (n->wpos < n->wbuf.len) {
        size_t len = n->wbuf.len - n->wpos;
        const char *p = n->wbuf.data + n->wpos;
        if (!n->ssl) {
            ssize_t w = send(n->fd, p, len, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    return TP_OK;
                snprintf(why, why_len, "write: %s", strerror(errno));
                return TP_IO;
            }
            n->wpos += (size_t)w;
            n->written += (uint64_t)w;
            if ((size_t)w < len)
                return TP_OK; /* the socket is full: poll for POLLOUT */
            continue;
        }
        int w = SSL_write(n->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
        if (w <= 0) {
            int e = SSL_get_error(n->ssl, w);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return TP_OK;
            ssl_why(why, why_len, "TLS write");
            return TP_IO;
        }
        n->wpos += (size_t)w;
        n->written += (uint64_t)w;
    }
    n->wpos = 0;
    tp_buf_reset(&n->wbuf);
    return TP_OK;
}

void tp_mqtt_net_set_lowat(struct tp_mqtt_net *n, uint32_t bytes)
{
    /* Not with TLS: OpenSSL's read-ahead may already hold ciphertext of
     * what is due, so the socket might never get that many bytes. */
    int v = n->ssl ? 1 : bytes > 65536 ? 65536 : bytes > 1 ? (int)bytes : 1;
    if (n->fd >= 0 && v != n->lowat &&
        setsockopt(n->fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) == 0)
        n->lowat = v;
}

int tp_mqtt_net_flush_wait(struct tp_mqtt_net *n, int timeout_ms)
{
    char why[64];
    uint64_t deadline = tp_mono_ms() + (uint64_t)timeout_ms;
    while (n->fd >= 0 && tp_mqtt_net_want_write(n)) {
        if (tp_mqtt_net_flush(n, why, sizeof(why)))
            return TP_IO;
        if (!tp_mqtt_net_want_write(n))
            break;
        uint64_t now = tp_mono_ms();
        if (now >= deadline || wait_fd(n->fd, POLLOUT, -1, (int)(deadline - now)) <= 0)
            return TP_IO;
    }
    return TP_OK;
}

void tp_mqtt_net_close(struct tp_mqtt_net *n)
{
    if (n->ssl) {
        SSL_free(n->ssl);
        n->ssl = NULL;
    }
    if (n->fd >= 0) {
        close(n->fd);
        n->fd = -1;
    }
    n->rpos = n->rlen = 0;
    n->wpos = 0;
    n->written = n->nread = 0;
    n->lowat = 1;
    tp_buf_reset(&n->wbuf);
}

void tp_mqtt_net_free(struct tp_mqtt_net *n)
{
    tp_mqtt_net_close(n);
    if (n->ctx)
        SSL_CTX_free(n->ctx);
    n->ctx = NULL;
    free(n->rbuf);
    n->rbuf = NULL;
    n->rcap = 0;
    tp_buf_free(&n->wbuf);
}

int tp_mqtt_net_wait_due(uint64_t due_ms, int wake_fd)
{
    uint64_t now = tp_mono_ms();
    if (now >= due_ms)
        return TP_OK;
    struct pollfd p = {wake_fd, POLLIN, 0};
    if (poll(&p, wake_fd >= 0 ? 1 : 0, (int)(due_ms - now)) > 0)
        return TP_EOF;
    return (uint64_t)tp_mono_ms() < due_ms ? TP_AGAIN : TP_OK;
}
