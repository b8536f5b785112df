/* The operations HTTP endpoint (libmicrohttpd): GET /metrics (Prometheus
 * text), /ready and /health. Runs its own thread; callbacks are called on it. */
#ifndef TP_HTTP_H
#define TP_HTTP_H

#include "core/buf.h"
#include "core/error.h"

struct tp_http_handlers {
    void *ud;
    /* Appends the metrics text to out. */
    void (*metrics)(void *ud, struct tp_buf *out);
    /* 1 when ready to process (workers started) / healthy (no fatal error). */
    int (*ready)(void *ud);
    int (*healthy)(void *ud);
};

struct tp_http;

/* Listens on address "HOST:PORT" (HOST must be an IPv4 address, e.g.
 * 127.0.0.1; port 0 picks a free port, see tp_http_port). h is copied.
 * Free with tp_http_stop. */
int tp_http_start(const char *address, const struct tp_http_handlers *h, struct tp_http **out,
                  struct tp_error *err);
/* The port actually listened on. */
int tp_http_port(const struct tp_http *s);
void tp_http_stop(struct tp_http *s);

#endif
