/* Shared pieces of the NATS input (input.c) and output (output.c): the
 * connection options every NATS plugin accepts, connecting, stream creation,
 * the subject template and header checks (common.c), reading received header
 * blocks (headers.c).
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

/* The raw header block of received message m ("" with *len 0 when it has
 * none; NULL when m is not laid out as libnats 3.x does: then only libnats'
 * own header API can read it). Read it before that API, which rewrites it. */
const char *tp__nats_header_block(natsMsg *m, size_t *len);

/* Called per header line with its key and value (spaces around it trimmed, may
 * be empty); a non-zero return stops the parse and is returned. */
typedef int (*tp__nats_header_fn)(void *arg, const char *key, size_t klen, const char *val,
                                  size_t vlen);

/* Reads header block block[0..len) (as tp__nats_header_block gives it),
 * calling fn per header line in order. 0, fn's non-zero return, or TP_INVAL
 * with why[] saying what is malformed (the header line number). */
int tp__nats_headers_parse(const char *block, size_t len, tp__nats_header_fn fn, void *arg,
                           char *why, size_t size);

/* Creates a message whose frame (hdr_len bytes of an encoded header block,
 * then the payload) is frame[0..len): one allocation, no header map (libnats
 * parses the block only if someone reads a header). reply may be NULL. */
natsStatus tp__nats_msg_create(natsMsg **nm, const char *subject, const char *reply,
                               const char *frame, size_t len, size_t hdr_len);

#endif
