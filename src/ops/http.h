/* The operations HTTP endpoint (libmicrohttpd, one internal epoll/poll
 * thread): GET /metrics (Prometheus text), /ready, /health, and the Topic
 * Browser and its API (ops/ui.h). Bounded: a connection limit and an idle
 * timeout per connection; optional HTTP basic auth. Callbacks run on its thread. */
#ifndef TP_HTTP_H
#define TP_HTTP_H

#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "ops/ui.h"

struct tp_http_handlers {
    void *ud;
    /* Appends the metrics text to out. */
    void (*metrics)(void *ud, struct tp_buf *out);
    /* 1 when ready to process (workers started) / healthy (no fatal error). */
    int (*ready)(void *ud);
    int (*healthy)(void *ud);
    struct tp_ui *ui;         /* the Topic Browser, or NULL (ui.enabled: false) */
    struct tp_ui_source info; /* /version, /config, /api/stats */
};

struct tp_http;

/* Listens on cfg->address "HOST:PORT" (HOST an IPv4 address, e.g.
 * 127.0.0.1; port 0 picks a free port, see tp_http_port). h is copied, cfg
 * must outlive the server. Free with tp_http_stop. */
int tp_http_start(const struct tp_http_config *cfg, const struct tp_http_handlers *h,
                  struct tp_http **out, struct tp_error *err);
/* The port actually listened on. */
int tp_http_port(const struct tp_http *s);
/* 1 when the server listens on a loopback address. */
int tp_http_is_loopback(const struct tp_http *s);
void tp_http_stop(struct tp_http *s);

#endif
