/* Fuzz target for the OPC UA client's decoders (src/io/opcua): the first byte
 * picks what the rest is fed to — the frame/chunk parser (ua_conn_feed, then
 * the assembled body as a Publish response), a Variant, a DataValue, a
 * Publish response body, NodeId text, or a run of DiagnosticInfo /
 * ExtensionObject / skipped values. Nothing may crash, trip a sanitizer or
 * leak, and every Variant that converts must give valid JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "io/opcua/codec.h"
#include "io/opcua/subscription.h"
#include "io/opcua/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_value(void *ud, size_t index, const struct ua_datavalue *dv);

static void check_json(const struct ua_variant *v)
{
    struct tp_buf out;
    tp_buf_init(&out);
    enum ua_json_kind kind;
    if (ua_variant_to_json(v, &out, &kind) == 0 && !tp_json_is_valid(out.data, out.len)) {
        fprintf(stderr, "fuzz_opcua: invalid JSON from a variant: %.*s\n", (int)out.len, out.data);
        abort();
    }
    tp_buf_free(&out);
}

static int on_value(void *ud, size_t index, const struct ua_datavalue *dv)
{
    (void)ud;
    (void)index;
    if (dv->has_value)
        check_json(&dv->value);
    return 0;
}

static void publish(const uint8_t *p, size_t n)
{
    struct ua_subscription s;
    memset(&s, 0, sizeof(s));
    s.on_value = on_value;
    struct tp_buf body = {.data = (char *)p, .len = n, .cap = n};
    struct tp_error err;
    ua_sub_handle_response(&s, &body, &err);
    ua_sub_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    struct ua_dec d;
    ua_dec_init(&d, p, n);
    switch (data[0] % 6) {
    case 0: { /* frames as a server sends them */
        struct ua_conn c;
        ua_conn_init(&c, -1, 1u << 20, 16);
        c.channel_id = 1;
        struct tp_buf body;
        tp_buf_init(&body);
        struct tp_error err;
        uint32_t req;
        if (ua_conn_feed(&c, p, n, &req, &body, &err) == 0)
            publish((const uint8_t *)body.data, body.len);
        tp_buf_free(&body);
        ua_conn_free(&c);
        break;
    }
    case 1: {
        struct ua_variant v;
        ua_dec_variant(&d, &v);
        if (!d.err) {
            check_json(&v);
            (void)ua_variant_int(&v);
        }
        break;
    }
    case 2: {
        struct ua_datavalue dv;
        ua_dec_datavalue(&d, &dv);
        if (!d.err && dv.has_value)
            check_json(&dv.value);
        break;
    }
    case 3:
        publish(p, n);
        break;
    case 4: { /* NodeId text: parse, encode, decode, format */
        char *text = malloc(n + 1);
        if (!text)
            return 0;
        memcpy(text, p, n);
        text[n] = 0;
        struct tp_buf store, enc, back;
        tp_buf_init(&store);
        tp_buf_init(&enc);
        tp_buf_init(&back);
        struct ua_nodeid id;
        if (ua_nodeid_parse(text, &id, &store) == 0 && ua_enc_nodeid(&enc, &id) == 0) {
            ua_dec_init(&d, enc.data, enc.len);
            ua_dec_nodeid(&d, &id);
            if (d.err)
                abort();
            ua_nodeid_format(&id, &back);
        }
        free(text);
        tp_buf_free(&store);
        tp_buf_free(&enc);
        tp_buf_free(&back);
        break;
    }
    default: /* a run of values of the types the next bytes name */
        while (!d.err && d.pos < d.len) {
            uint8_t t = ua_dec_u8(&d);
            if (t & 0x80)
                ua_dec_skip_array(&d, (enum ua_type)(t & 0x1f));
            else
                ua_dec_skip(&d, (enum ua_type)(t & 0x1f));
        }
        break;
    }
    return 0;
}
