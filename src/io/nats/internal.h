/* Shared pieces of the NATS input (input.c) and output (output.c): the
 * connection options every NATS plugin accepts, connecting, stream creation,
 * the subject template and header checks (common.c).
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
    int64_t reconnect_wait_ms;
    int64_t connect_timeout_ms; /* 0: the library's */
};

/* Option table rows for struct tp__nats_conn_config embedded at member `conn` of `T`. */
#define TP_NATS_CONN_OPTIONS(T)                                                                    \
    TP_OPTION(T, conn.urls, "urls", TP_OPT_STRINGS, NULL,                                          \
              "server URLs (nats://host:port); reconnects try them forever",                       \
              .flags = TP_OPT_REQUIRED),                                                           \
        TP_OPTION(T, conn.name, "name", TP_OPT_STRING, "tagproc",                                  \
                  "connection name shown by the server"),                                          \
        TP_OPTION(T, conn.user, "user", TP_OPT_STRING, NULL, "user name"),                         \
        TP_OPTION(T, conn.password, "password", TP_OPT_STRING, NULL, "password"),                  \
        TP_OPTION(T, conn.token, "token", TP_OPT_STRING, NULL, "authentication token"),            \
        TP_OPTION(T, conn.reconnect_wait_ms, "reconnect_wait", TP_OPT_DURATION, "1s",              \
                  "wait between reconnect attempts to one server (reconnects never give up)"),     \
        TP_OPTION(T, conn.connect_timeout_ms, "connect_timeout", TP_OPT_DURATION, "5s",            \
                  "timeout of one connection attempt (0: the library's)")

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

/* Appends the NATS header block for m to out: "NATS/1.0\r\nK: V\r\n...\r\n"
 * with m's metadata entries that tp__nats_header_ok accepts (none when
 * !with_meta), then the pairs of extra (key, value, ..., NULL; may be NULL).
 * Appends nothing when there is no header. 0 or TP_NOMEM. */
int tp__nats_headers_encode(const struct tp_msg *m, int with_meta, const char *const *extra,
                            struct tp_buf *out);

/* Creates a message whose frame (hdr_len bytes of an encoded header block,
 * then the payload) is frame[0..len): one allocation, no header map (libnats
 * parses the block only if someone reads a header). reply may be NULL. */
natsStatus tp__nats_msg_create(natsMsg **nm, const char *subject, const char *reply,
                               const char *frame, size_t len, size_t hdr_len);

#endif
