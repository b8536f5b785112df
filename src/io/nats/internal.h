/* Shared pieces of the NATS input (input.c) and output (output.c): the
 * connection options every NATS plugin accepts, connecting, stream creation,
 * durations, the subject template and header checks (common.c).
 * Only the src/io/nats*.c files (and their unit test) include this header. */
#ifndef TP_NATS_INTERNAL_H
#define TP_NATS_INTERNAL_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/msg.h"
#include "core/template.h"

/* Connection options, embedded as `conn` in the input and output configs. */
struct tp__nats_conn_config {
    struct tp_strlist urls;
    char *name;
    char *user;
    char *password;
    char *token;
    char *reconnect_wait;
    char *connect_timeout;
};

/* Option table rows for struct tp__nats_conn_config embedded at member `conn` of `type`. */
// clang-format off
#define TP_NATS_CONN_OPT(type, key, t, field, def, desc, flags)                                   \
    {key, t, offsetof(type, conn.field), def, desc, flags, NULL, 0, NULL}
#define TP_NATS_CONN_OPTIONS(type)                                                                 \
    TP_NATS_CONN_OPT(type, "urls", TP_OPT_STRINGS, urls, NULL,                                     \
        "server URLs (nats://host:port); reconnects try them forever", TP_OPT_REQUIRED),           \
    TP_NATS_CONN_OPT(type, "name", TP_OPT_STRING, name, "tagproc",                                 \
        "connection name shown by the server", 0),                                                 \
    TP_NATS_CONN_OPT(type, "user", TP_OPT_STRING, user, NULL, "user name", 0),                     \
    TP_NATS_CONN_OPT(type, "password", TP_OPT_STRING, password, NULL, "password", 0),             \
    TP_NATS_CONN_OPT(type, "token", TP_OPT_STRING, token, NULL, "authentication token", 0),       \
    TP_NATS_CONN_OPT(type, "reconnect_wait", TP_OPT_STRING, reconnect_wait, "1s",                  \
        "wait between reconnect attempts to one server (reconnects never give up)", 0),            \
    TP_NATS_CONN_OPT(type, "connect_timeout", TP_OPT_STRING, connect_timeout, "5s",                \
        "timeout of one connection attempt", 0)
// clang-format on

/* Connects with cfg (reconnecting forever, logging disconnects/reconnects
 * under `label`). 0 or TP_IO / TP_CONFIG with err. Caller destroys *nc. */
int tp__nats_connect(const struct tp__nats_conn_config *cfg, const char *label, natsConnection **nc,
                     struct tp_error *err);

/* Creates stream `name` (subjects, storage "file" or "memory") unless it
 * exists already (an existing stream is left unchanged). 0 or TP_IO. */
int tp__nats_ensure_stream(jsCtx *js, const char *name, const struct tp_strlist *subjects,
                           const char *storage, struct tp_error *err);

/* The text of the last libnats error (never NULL). */
const char *tp__nats_errtext(natsStatus s);

/* Parses a duration "250ms", "5s", "2m", "1h" (or "0") into milliseconds.
 * 0, or TP_CONFIG with err naming `what`. */
int tp__nats_duration_ms(const char *text, const char *what, int64_t *ms, struct tp_error *err);

/* Renders the subject template t for m into out. Returns 0 when the result
 * is a valid publish subject; otherwise TP_INVAL with a reason in why[size]
 * (a missing metadata key, an empty token, white space or a wildcard).
 * TP_NOMEM on allocation failure. */
int tp__nats_subject_render(const struct tp_template *t, const struct tp_msg *m, struct tp_buf *out,
                            char *why, size_t size);

/* 1 when metadata entry key=val can be sent as a NATS header: the key is
 * printable ASCII without ':' or spaces and does not start with "nats_" or
 * "Nats-" (our own metadata and the server's reserved headers); the value has
 * no CR/LF. */
int tp__nats_header_ok(const char *key, const char *val);

#endif
