/* HTTP endpoint on libmicrohttpd's internal polling thread (epoll, else
 * poll: no FD_SETSIZE limit), with a connection limit, an idle timeout per
 * connection, libmicrohttpd's messages routed through the logger, optional
 * basic auth (crypt(3) hashes, the last good credentials cached), and small
 * GET-only handlers; the Topic Browser's URLs go to ops/ui_api.c. */
#include "ops/http.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/log.h"

struct tp_http {
    struct MHD_Daemon *d;
    struct tp_http_handlers h;
    const struct tp_http_config *cfg;
    int port;
    int loopback;
    char *auth_ok; /* the last password that matched (only used on the MHD thread) */
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

/* 1 when the request carries the configured user and a password matching its hash. */
static int authorized(struct tp_http *s, struct MHD_Connection *c)
{
    const struct tp_http_basic_auth *a = &s->cfg->basic_auth;
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(c, &pass);
    int ok = 0;
    if (user && pass && strcmp(user, a->username) == 0) {
        if (s->auth_ok && strcmp(s->auth_ok, pass) == 0)
            ok = 1;
        else {
            struct crypt_data cd;
            memset(&cd, 0, sizeof(cd));
            const char *h = crypt_r(pass, a->password_hash, &cd);
            ok = h && h[0] != '*' && strcmp(h, a->password_hash) == 0;
            if (ok) {
                free(s->auth_ok);
                s->auth_ok = strdup(pass);
            }
        }
    }
    MHD_free(user);
    MHD_free(pass);
    return ok;
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
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed (read-only)\n");
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
    if (s->cfg->basic_auth.username && !authorized(s, c)) {
        struct MHD_Response *r = MHD_create_response_from_buffer(
            strlen("unauthorized\n"), (void *)"unauthorized\n", MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        enum MHD_Result rc = MHD_queue_basic_auth_fail_response(c, "tagproc", r);
        MHD_destroy_response(r);
        return rc;
    }
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
    int rc = tp_ui_http(s->h.ui, &s->h.info, c, url);
    if (rc)
        return (enum MHD_Result)(rc - 1);
    return reply_text(c, MHD_HTTP_NOT_FOUND,
                      s->h.ui ? "not found: try /, /api/stats, /metrics, /ready or /health\n"
                              : "not found: try /metrics, /ready or /health\n");
}

/* libmicrohttpd's own messages, as warnings in the log. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    tp_log_limited(TP_LOG_WARN, "http: libmicrohttpd", "http: %s", text);
}

/* Room for max_connections sockets: raise the soft descriptor limit. */
static void raise_fd_limit(int64_t connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)connections + 256;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        tp_log(TP_LOG_WARN,
               "http: open file limit %llu is below http.max_connections + 256; connections "
               "beyond it are refused",
               (unsigned long long)rl.rlim_cur);
}

int tp_http_start(const struct tp_http_config *cfg, const struct tp_http_handlers *h,
                  struct tp_http **out, struct tp_error *err)
{
    const char *address = cfg->address;
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
    if (cfg->basic_auth.username &&
        (!cfg->basic_auth.password_hash || cfg->basic_auth.password_hash[0] != '$'))
        return tp_error_set(err, TP_CONFIG,
                            "http.basic_auth.password_hash: expected a crypt(3) hash such as "
                            "\"$2b$...\" (bcrypt) or \"$5$...\" (sha-256)");
    struct tp_http *s = calloc(1, sizeof(*s));
    if (!s)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    s->h = *h;
    s->cfg = cfg;
    s->loopback = (ntohl(sa.sin_addr.s_addr) >> 24) == 127;
    raise_fd_limit(cfg->max_connections);
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
        (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL);
    s->d =
        MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)(cfg->timeout_ms / 1000), MHD_OPTION_END);
    if (!s->d) {
        free(s);
        return tp_error_set(err, TP_IO, "http: cannot listen on %s", address);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? (int)info->port : (int)port;
    if (!s->loopback && !cfg->basic_auth.username)
        tp_log(TP_LOG_WARN,
               "http: %s is not a loopback address and http.basic_auth is not set: anyone who "
               "can reach it sees the Topic Browser, the API and /config",
               address);
    *out = s;
    return TP_OK;
}

int tp_http_port(const struct tp_http *s)
{
    return s->port;
}

int tp_http_is_loopback(const struct tp_http *s)
{
    return s->loopback;
}

void tp_http_stop(struct tp_http *s)
{
    if (!s)
        return;
    tp_ui_close_streams(s->h.ui);
    MHD_stop_daemon(s->d);
    free(s->auth_ok);
    free(s);
}
