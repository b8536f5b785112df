/* Shared pieces of the NATS input (input.c) and output (output.c): the
 * connection options every NATS plugin accepts, connecting, JetStream API
 * calls (stream creation), the subject template and header checks
 * (common.c), reading received header blocks (headers.c) and messages
 * (received.c). The protocol is
 * codec.c, the session client.c.
 * Only the src/io/nats/ sources (and their unit tests) include this header. */
#ifndef TP_NATS_INTERNAL_H
#define TP_NATS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/msg.h"
#include "core/template.h"
#include "io/nats/client.h"

/* Connection options, embedded as `conn` in the input and output configs. */
struct tp__nats_conn_config {
    struct tp_strlist urls;
    char *name;
    char *user;
    char *password;
    char *token;
    int64_t reconnect_wait_ms;
    int64_t connect_timeout_ms; /* 0: 2s */
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
                  "timeout of one connection attempt (0: 2s)")

/* A client with its server list (parsed from the urls option). */
struct tp__nats_conn {
    struct tp_nats_server *servers;
    struct tp_nats_client c;
    char inbox[48]; /* a unique "_INBOX.<random>" of this connection's owner */
};

/* Parses cfg, then connects (the first connection must succeed: each
 * server is tried once). 0 or TP_CONFIG / TP_IO / TP_NOMEM with err naming
 * `label` and the server. Later reconnects (client.h) never give up.
 * Call tp__nats_conn_free even after a failure. */
int tp__nats_conn_open(struct tp__nats_conn *conn, const struct tp__nats_conn_config *cfg,
                       const char *label, struct tp_error *err);
void tp__nats_conn_free(struct tp__nats_conn *conn);

/* A JetStream API call ($JS.API.<api>, JSON payload) on a connected
 * client, waiting up to 5 s. TP_OK with the answer in out; *error_code is
 * the answer's error.code (404: not found; 0: success) with its description
 * in why; TP_IO with why when there is no answer (no responders: JetStream
 * not enabled). */
int tp__nats_js_api(struct tp__nats_conn *conn, const char *api, const char *payload,
                    struct tp_buf *out, int *error_code, char *why, size_t why_len);

/* Creates stream `name` (subjects, storage "file" or "memory") unless it
 * exists already (an existing stream is left unchanged). 0 or TP_IO. */
int tp__nats_ensure_stream(struct tp__nats_conn *conn, const char *name,
                           const struct tp_strlist *subjects, const char *storage,
                           struct tp_error *err);

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

/* Called per header line with its key and value (spaces around it trimmed, may
 * be empty); a non-zero return stops the parse and is returned. */
typedef int (*tp__nats_header_fn)(void *arg, const char *key, size_t klen, const char *val,
                                  size_t vlen);

/* Reads header block block[0..len) (an HMSG's, ending with its empty line),
 * calling fn per header line in order. 0, fn's non-zero return, or TP_INVAL
 * with why[] saying what is malformed (the header line number). */
int tp__nats_headers_parse(const char *block, size_t len, tp__nats_header_fn fn, void *arg,
                           char *why, size_t size);

/* A received message f as a new message (*out, received.c): its payload,
 * nats_subject, then nats_reply (core NATS) or nats_stream, nats_sequence
 * and nats_num_delivered (JetStream: read from the ack subject), then one
 * entry per header in order; a repeated key (also a header named like a
 * nats_* field) keeps its first position and its last value. TP_INVAL with
 * why[] (a malformed header block; more than max_meta entries), TP_NOMEM. */
int tp__nats_msg_from_frame(const struct tp_nats_frame *f, int use_js, uint64_t max_meta,
                            struct tp_msg **out, char *why, size_t why_len);

#endif
