/* The NATS client protocol codec used by tagproc's own NATS client
 * (client.c): decoding what a server sends (INFO, MSG, HMSG, PING, PONG,
 * +OK, -ERR), encoding what a client sends (CONNECT, PUB, HPUB, SUB, UNSUB),
 * and reading the JetStream answers carried in messages (PubAck JSON, status
 * headers, ack subjects). No I/O, no allocation except into a tp_buf. */
#ifndef TP_NATS_CODEC_H
#define TP_NATS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Longest protocol line read (nats-server's max_control_line default). */
#define TP_NATS_MAX_LINE 4096
/* Largest payload accepted from a server, whatever its INFO says. */
#define TP_NATS_MAX_PAYLOAD (64u * 1024u * 1024u)

/* Byte tests on 8 bytes at a time, for the per-message scans of the codec
 * and of the header filter (common.c): non-zero exactly when some byte of w
 * is below n (n <= 128), above n (n <= 127), or equal to c. (Which bytes
 * are flagged above the lowest flagged one is not exact.) */
#define TP_NATS_ONES 0x0101010101010101ull
#define TP_NATS_HIGHS 0x8080808080808080ull
static inline uint64_t tp_nats_byte_below(uint64_t w, unsigned n)
{
    return (w - TP_NATS_ONES * n) & ~w & TP_NATS_HIGHS;
}
static inline uint64_t tp_nats_byte_above(uint64_t w, unsigned n)
{
    return ((w + TP_NATS_ONES * (127 - n)) | w) & TP_NATS_HIGHS;
}
static inline uint64_t tp_nats_byte_is(uint64_t w, unsigned char c)
{
    return tp_nats_byte_below(w ^ (TP_NATS_ONES * c), 1);
}

enum tp_nats_op { TP_NATS_INFO, TP_NATS_MSG, TP_NATS_PING, TP_NATS_PONG, TP_NATS_OK, TP_NATS_ERR };

/* One decoded server operation; pointers point into the decoded bytes. */
struct tp_nats_frame {
    enum tp_nats_op op;
    const char *subject, *reply; /* MSG/HMSG; reply NULL when absent */
    size_t subject_len, reply_len;
    uint64_t sid;
    const char *hdr; /* HMSG: the header block ("NATS/1.0..." up to its empty line) */
    size_t hdr_len;  /* 0: MSG */
    const char *payload;
    size_t payload_len;
    const char *text; /* INFO: the JSON object; -ERR: the text without quotes */
    size_t text_len;
};

/* Decodes the operation at the start of buf[0..len). TP_OK with *used bytes
 * consumed; TP_AGAIN when more bytes are needed; TP_PARSE when the bytes are
 * not NATS protocol (why[] says what, quoting the start of the line). */
int tp_nats_decode(const char *buf, size_t len, struct tp_nats_frame *f, size_t *used, char *why,
                   size_t why_len);

struct tp_nats_connect {
    const char *name, *user, *pass, *token; /* NULL: not sent */
};

/* Appends CONNECT {...} (verbose off, headers and no_responders on). */
int tp_nats_encode_connect(struct tp_buf *out, const struct tp_nats_connect *c);
/* Appends PUB (hdr_len 0) or HPUB with hdr[0..hdr_len) then payload. reply may be NULL. */
int tp_nats_encode_pub(struct tp_buf *out, const char *subject, size_t subject_len,
                       const char *reply, size_t reply_len, const char *hdr, size_t hdr_len,
                       const char *payload, size_t payload_len);
/* Appends v in decimal (no printf: per message on the output's path). */
int tp_nats_put_uint(struct tp_buf *out, uint64_t v);
/* Writes v in decimal at p (room for 20 bytes, no NUL); returns the end. */
char *tp_nats_write_uint(char *p, uint64_t v);
/* Appends SUB subject [queue] sid (queue may be NULL). */
int tp_nats_encode_sub(struct tp_buf *out, const char *subject, const char *queue, uint64_t sid);
/* Appends UNSUB sid. */
int tp_nats_encode_unsub(struct tp_buf *out, uint64_t sid);

/* The status code of a header block whose first line is "NATS/1.0 <code>
 * [description]" (JetStream: 404 no messages, 408 request timeout, 409,
 * 503 no responders, 100 heartbeat); 0 when there is none. *desc points at
 * the description (may be empty). */
int tp_nats_status(const char *hdr, size_t hdr_len, const char **desc, size_t *desc_len);

/* 1 when a JetStream publish answer (header block hdr, payload) is a positive
 * PubAck ({"stream":..,"seq":..}); else 0 with the reason in why (a
 * JetStream error with its code, no stream for the subject, an unexpected
 * answer). */
int tp_nats_pub_ack_ok(const char *hdr, size_t hdr_len, const char *payload, size_t len, char *why,
                       size_t why_len);

/* Stream, delivery count and stream sequence of a JetStream message, read
 * from its ack subject: "$JS.ACK.<stream>.<consumer>.<delivered>.<stream
 * seq>.<consumer seq>.<time>.<pending>" (or the newer form with domain and
 * account hash first). Points into reply. */
struct tp_nats_js_meta {
    const char *stream, *delivered, *sequence;
    size_t stream_len, delivered_len, sequence_len;
};
/* 1 when reply[0..len) is such an ack subject (fills md), else 0. */
int tp_nats_js_ack_parse(const char *reply, size_t len, struct tp_nats_js_meta *md);

#endif
