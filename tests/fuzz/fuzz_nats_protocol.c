/* Fuzz target for the NATS protocol decoder (src/io/nats/codec.c): the input
 * is a byte stream from a "server", decoded operation by operation until it
 * is incomplete or malformed. Every decoded operation must consume bytes
 * inside the input, every field must lie inside the consumed bytes, a
 * malformed line must say why, and a stream cut one byte before the end of
 * an operation must ask for more (never decode differently). Header blocks
 * of HMSG go through the header reader, the status and PubAck readers, and
 * reply subjects through the JetStream ack subject reader. Any violation
 * aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/nats/codec.h"
#include "io/nats/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_nats_protocol: property violated: %s\n", what);
        abort();
    }
}

static void inside(const char *p, size_t n, const char *start, size_t len, const char *what)
{
    if (n == 0)
        return;
    check(p && p >= start && p + n <= start + len, what);
}

static int count_header(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    check(!memchr(key, '\n', klen) && !memchr(val, '\n', vlen), "one header per line");
    ++*(size_t *)arg;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t pos = 0;
    while (pos < size) {
        struct tp_nats_frame f;
        size_t used = 0;
        char why[300] = "";
        int rc = tp_nats_decode(buf + pos, size - pos, &f, &used, why, sizeof(why));
        if (rc == TP_AGAIN)
            break;
        if (rc != TP_OK) {
            check(rc == TP_PARSE && why[0] != '\0', "a malformed line says why");
            break;
        }
        check(used > 0 && used <= size - pos, "consumed bytes inside the input");
        const char *op = buf + pos;
        inside(f.subject, f.subject_len, op, used, "subject inside");
        inside(f.reply, f.reply_len, op, used, "reply inside");
        inside(f.hdr, f.hdr_len, op, used, "header block inside");
        inside(f.payload, f.payload_len, op, used, "payload inside");
        inside(f.text, f.text_len, op, used, "text inside");
        /* one byte less is never a whole operation */
        struct tp_nats_frame g;
        size_t used2 = 0;
        check(tp_nats_decode(op, used - 1, &g, &used2, why, sizeof(why)) != TP_OK ||
                  used2 <= used - 1,
              "a cut operation decodes within the cut");
        if (f.op == TP_NATS_MSG) {
            check(f.subject_len > 0, "MSG has a subject");
            size_t n = 0;
            char hwhy[200];
            if (f.hdr_len)
                tp__nats_headers_parse(f.hdr, f.hdr_len, count_header, &n, hwhy, sizeof(hwhy));
            check(n <= f.hdr_len / 3, "at most one header per 3 bytes");
            const char *d;
            size_t dl;
            int code = tp_nats_status(f.hdr, f.hdr_len, &d, &dl);
            check(code >= 0 && code <= 999, "status code range");
            inside(d, dl, f.hdr ? f.hdr : op, f.hdr ? f.hdr_len : used, "status text inside");
            char awhy[300];
            tp_nats_pub_ack_ok(f.hdr, f.hdr_len, f.payload, f.payload_len, awhy, sizeof(awhy));
            struct tp_nats_js_meta md;
            if (tp_nats_js_ack_parse(f.reply, f.reply_len, &md)) {
                inside(md.stream, md.stream_len, f.reply, f.reply_len, "stream inside the reply");
                inside(md.sequence, md.sequence_len, f.reply, f.reply_len, "sequence inside");
                inside(md.delivered, md.delivered_len, f.reply, f.reply_len, "delivered inside");
            }
        }
        pos += used;
    }
    return 0;
}
