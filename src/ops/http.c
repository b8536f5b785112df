/* HTTP endpoint on libmicrohttpd's internal polling thread: small GET-only
 * handlers that build the response text with the caller's callbacks. */
#include "ops/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tp_http {
    struct MHD_Daemon *d;
    struct tp_http_handlers h;
    int port;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type, char *body,
                             size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned code, const char *text)
{
    char *body = strdup(text);
    return body ? reply(c, code, "text/plain; charset=utf-8", body, strlen(body)) : MHD_NO;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_size;
    (void)con_cls;
    struct tp_http *s = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/metrics") == 0) {
        struct tp_buf b;
        tp_buf_init(&b);
        if (s->h.metrics)
            s->h.metrics(s->h.ud, &b);
        size_t len;
        char *body = b.data ? tp_buf_take(&b, &len) : strdup("");
        if (!body)
            return MHD_NO;
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body,
                     strlen(body));
    }
    if (strcmp(url, "/ready") == 0) {
        int ok = !s->h.ready || s->h.ready(s->h.ud);
        return reply_text(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                          ok ? "ready\n" : "not ready\n");
    }
    if (strcmp(url, "/health") == 0) {
        int ok = !s->h.healthy || s->h.healthy(s->h.ud);
        return reply_text(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                          ok ? "ok\n" : "failed\n");
    }
    return reply_text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /ready or /health\n");
}

int tp_http_start(const char *address, const struct tp_http_handlers *h, struct tp_http **out,
                  struct tp_error *err)
{
    char host[64];
    const char *colon = address ? strrchr(address, ':') : NULL;
    if (!colon || (size_t)(colon - address) >= sizeof(host))
        return tp_error_set(err, TP_CONFIG, "http.address: expected HOST:PORT, got \"%s\"",
                            address ? address : "");
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (*end || end == colon + 1 || port < 0 || port > 65535 ||
        inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &sa.sin_addr) != 1)
        return tp_error_set(
            err, TP_CONFIG,
            "http.address: expected IPv4 HOST:PORT (e.g. 127.0.0.1:4195), got \"%s\"", address);
    struct tp_http *s = calloc(1, sizeof(*s));
    if (!s)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    s->h = *h;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!s->d) {
        free(s);
        return tp_error_set(err, TP_IO, "http: cannot listen on %s", address);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? (int)info->port : (int)port;
    *out = s;
    return TP_OK;
}

int tp_http_port(const struct tp_http *s)
{
    return s->port;
}

void tp_http_stop(struct tp_http *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    free(s);
}
