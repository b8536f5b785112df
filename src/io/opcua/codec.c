/* OPC UA binary encoding: the bounds-checked decoders and the encoders of the
 * built-in types (see codec.h). Text forms and Variant -> JSON are in
 * codec_text.c. */
#include "io/opcua/codec.h"

#include <string.h>

#include "core/error.h"

static void fail(struct ua_dec *d)
{
    d->err = 1;
    d->pos = d->len;
}

const uint8_t *ua_dec_bytes(struct ua_dec *d, size_t n)
{
    if (d->err || n > d->len - d->pos) {
        fail(d);
        return NULL;
    }
    const uint8_t *p = d->p + d->pos;
    d->pos += n;
    return p;
}

uint8_t ua_dec_u8(struct ua_dec *d)
{
    const uint8_t *p = ua_dec_bytes(d, 1);
    return p ? p[0] : 0;
}

uint16_t ua_dec_u16(struct ua_dec *d)
{
    const uint8_t *p = ua_dec_bytes(d, 2);
    return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

uint32_t ua_dec_u32(struct ua_dec *d)
{
    const uint8_t *p = ua_dec_bytes(d, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
             : 0;
}

uint64_t ua_dec_u64(struct ua_dec *d)
{
    uint64_t lo = ua_dec_u32(d);
    return lo | (uint64_t)ua_dec_u32(d) << 32;
}

int32_t ua_dec_i32(struct ua_dec *d)
{
    return (int32_t)ua_dec_u32(d);
}

int64_t ua_dec_i64(struct ua_dec *d)
{
    return (int64_t)ua_dec_u64(d);
}

float ua_dec_f32(struct ua_dec *d)
{
    uint32_t u = ua_dec_u32(d);
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

double ua_dec_f64(struct ua_dec *d)
{
    uint64_t u = ua_dec_u64(d);
    double f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

int32_t ua_dec_len(struct ua_dec *d, uint32_t limit)
{
    int32_t n = ua_dec_i32(d);
    if (n < -1 || (n > 0 && (uint32_t)n > limit)) {
        fail(d);
        return -1;
    }
    return n;
}

struct ua_str ua_dec_string(struct ua_dec *d)
{
    struct ua_str s = {NULL, -1};
    int32_t n = ua_dec_len(d, UA_MAX_STRING_LEN);
    if (n < 0)
        return s;
    const uint8_t *p = ua_dec_bytes(d, (size_t)n);
    if (p) {
        s.s = (const char *)p;
        s.len = n;
    }
    return s;
}

void ua_dec_nodeid(struct ua_dec *d, struct ua_nodeid *id)
{
    memset(id, 0, sizeof(*id));
    uint8_t enc = ua_dec_u8(d);
    struct ua_str s;
    const uint8_t *g;
    switch (enc & 0x3f) {
    case 0: /* two-byte */
        id->num = ua_dec_u8(d);
        break;
    case 1: /* four-byte */
        id->ns = ua_dec_u8(d);
        id->num = ua_dec_u16(d);
        break;
    case 2:
        id->ns = ua_dec_u16(d);
        id->num = ua_dec_u32(d);
        break;
    case 3:
    case 5:
        id->ns = ua_dec_u16(d);
        s = ua_dec_string(d);
        id->type = (enc & 0x3f) == 3 ? UA_ID_STRING : UA_ID_OPAQUE;
        id->str = s.s;
        id->str_len = s.len;
        break;
    case 4:
        id->ns = ua_dec_u16(d);
        id->type = UA_ID_GUID;
        if ((g = ua_dec_bytes(d, 16)) != NULL)
            memcpy(id->guid, g, 16);
        break;
    default:
        fail(d);
    }
    if (d->err)
        memset(id, 0, sizeof(*id));
}

void ua_dec_expanded_nodeid(struct ua_dec *d, struct ua_nodeid *id)
{
    if (d->err || d->pos >= d->len) {
        fail(d);
        memset(id, 0, sizeof(*id));
        return;
    }
    uint8_t enc = d->p[d->pos];
    ua_dec_nodeid(d, id);
    if (enc & 0x80)
        ua_dec_string(d); /* NamespaceUri */
    if (enc & 0x40)
        ua_dec_u32(d); /* ServerIndex */
}

void ua_dec_qualified_name(struct ua_dec *d, uint16_t *ns, struct ua_str *name)
{
    *ns = ua_dec_u16(d);
    *name = ua_dec_string(d);
}

void ua_dec_localized_text(struct ua_dec *d, struct ua_str *locale, struct ua_str *text)
{
    uint8_t mask = ua_dec_u8(d);
    struct ua_str none = {NULL, -1};
    *locale = (mask & 1) ? ua_dec_string(d) : none;
    *text = (mask & 2) ? ua_dec_string(d) : none;
}

void ua_dec_skip_diagnostic_info(struct ua_dec *d)
{
    if (++d->depth > UA_MAX_NESTING) {
        fail(d);
        d->depth--;
        return;
    }
    uint8_t mask = ua_dec_u8(d);
    for (int bit = 0; bit < 4; bit++)
        if (mask & (1u << bit))
            ua_dec_i32(d); /* SymbolicId, NamespaceUri, LocalizedText, Locale */
    if (mask & 0x10)
        ua_dec_string(d); /* AdditionalInfo */
    if (mask & 0x20)
        ua_dec_u32(d); /* InnerStatusCode */
    if (mask & 0x40)
        ua_dec_skip_diagnostic_info(d);
    d->depth--;
}

void ua_dec_extension_object(struct ua_dec *d, struct ua_nodeid *type_id, const uint8_t **body,
                             size_t *body_len, uint8_t *encoding)
{
    ua_dec_nodeid(d, type_id);
    uint8_t enc = ua_dec_u8(d);
    *encoding = enc;
    *body = NULL;
    *body_len = 0;
    if (enc == 0)
        return;
    if (enc != 1 && enc != 2) {
        fail(d);
        return;
    }
    int32_t n = ua_dec_len(d, UA_MAX_STRING_LEN);
    if (n < 0)
        return;
    const uint8_t *p = ua_dec_bytes(d, (size_t)n);
    if (p) {
        *body = p;
        *body_len = (size_t)n;
    }
}

void ua_dec_skip(struct ua_dec *d, enum ua_type type)
{
    struct ua_nodeid id;
    struct ua_str s;
    uint16_t ns;
    const uint8_t *body;
    size_t blen;
    uint8_t enc;
    struct ua_variant v;
    struct ua_datavalue dv;
    switch (type) {
    case UA_BOOLEAN:
    case UA_SBYTE:
    case UA_BYTE:
        ua_dec_bytes(d, 1);
        break;
    case UA_INT16:
    case UA_UINT16:
        ua_dec_bytes(d, 2);
        break;
    case UA_INT32:
    case UA_UINT32:
    case UA_FLOAT:
    case UA_STATUSCODE:
        ua_dec_bytes(d, 4);
        break;
    case UA_INT64:
    case UA_UINT64:
    case UA_DOUBLE:
    case UA_DATETIME:
        ua_dec_bytes(d, 8);
        break;
    case UA_GUID:
        ua_dec_bytes(d, 16);
        break;
    case UA_STRING:
    case UA_BYTESTRING:
    case UA_XMLELEMENT:
        ua_dec_string(d);
        break;
    case UA_NODEID:
        ua_dec_nodeid(d, &id);
        break;
    case UA_EXPANDEDNODEID:
        ua_dec_expanded_nodeid(d, &id);
        break;
    case UA_QUALIFIEDNAME:
        ua_dec_qualified_name(d, &ns, &s);
        break;
    case UA_LOCALIZEDTEXT:
        ua_dec_localized_text(d, &s, &s);
        break;
    case UA_EXTENSIONOBJECT:
        ua_dec_extension_object(d, &id, &body, &blen, &enc);
        break;
    case UA_DATAVALUE:
        ua_dec_datavalue(d, &dv);
        break;
    case UA_VARIANT:
        ua_dec_variant(d, &v);
        break;
    case UA_DIAGNOSTICINFO:
        ua_dec_skip_diagnostic_info(d);
        break;
    default:
        fail(d);
    }
}

void ua_dec_skip_array(struct ua_dec *d, enum ua_type type)
{
    int32_t n = ua_dec_len(d, UA_MAX_ARRAY_LEN);
    for (int32_t i = 0; i < n && !d->err; i++)
        ua_dec_skip(d, type);
}

void ua_dec_variant(struct ua_dec *d, struct ua_variant *v)
{
    memset(v, 0, sizeof(*v));
    v->array_len = -1;
    if (++d->depth > UA_MAX_NESTING) {
        fail(d);
        d->depth--;
        return;
    }
    uint8_t mask = ua_dec_u8(d);
    uint8_t type = mask & 0x3f;
    if (type > UA_DIAGNOSTICINFO) {
        fail(d);
        d->depth--;
        return;
    }
    v->type = type;
    size_t start = d->pos;
    if (mask & 0x80) {
        int32_t n = ua_dec_len(d, UA_MAX_ARRAY_LEN);
        start = d->pos;
        v->array_len = n < 0 ? 0 : n;
        for (int32_t i = 0; i < n && !d->err; i++)
            ua_dec_skip(d, type);
    } else if (type != UA_NULL) {
        ua_dec_skip(d, type);
    }
    v->raw = d->p + start;
    v->raw_len = d->pos - start;
    if (mask & 0x40) { /* ArrayDimensions */
        int32_t dims = ua_dec_len(d, 64);
        for (int32_t i = 0; i < dims; i++)
            ua_dec_i32(d);
        if (dims > 1)
            v->multi_dim = 1;
    }
    if (d->err) {
        memset(v, 0, sizeof(*v));
        v->array_len = -1;
    }
    d->depth--;
}

void ua_dec_datavalue(struct ua_dec *d, struct ua_datavalue *dv)
{
    memset(dv, 0, sizeof(*dv));
    dv->value.array_len = -1;
    uint8_t mask = ua_dec_u8(d);
    if (mask & 0x01) {
        ua_dec_variant(d, &dv->value);
        dv->has_value = !d->err;
    }
    if (mask & 0x02)
        dv->status = ua_dec_u32(d);
    if (mask & 0x04)
        dv->source_ts = ua_dec_i64(d);
    if (mask & 0x10)
        ua_dec_u16(d); /* SourcePicoseconds */
    if (mask & 0x08)
        dv->server_ts = ua_dec_i64(d);
    if (mask & 0x20)
        ua_dec_u16(d); /* ServerPicoseconds */
}

/* ---- encoding ---- */

int ua_enc_u8(struct tp_buf *b, uint8_t v)
{
    return tp_buf_putc(b, (char)v);
}

int ua_enc_u16(struct tp_buf *b, uint16_t v)
{
    char x[2] = {(char)(v & 0xff), (char)(v >> 8)};
    return tp_buf_append(b, x, 2);
}

int ua_enc_u32(struct tp_buf *b, uint32_t v)
{
    char x[4] = {(char)(v & 0xff), (char)(v >> 8 & 0xff), (char)(v >> 16 & 0xff), (char)(v >> 24)};
    return tp_buf_append(b, x, 4);
}

int ua_enc_u64(struct tp_buf *b, uint64_t v)
{
    return ua_enc_u32(b, (uint32_t)v) || ua_enc_u32(b, (uint32_t)(v >> 32)) ? TP_NOMEM : 0;
}

int ua_enc_f64(struct tp_buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return ua_enc_u64(b, u);
}

int ua_enc_string(struct tp_buf *b, const char *s, int32_t len)
{
    if (!s || len < 0)
        return ua_enc_u32(b, 0xffffffffu);
    return ua_enc_u32(b, (uint32_t)len) || tp_buf_append(b, s, (size_t)len) ? TP_NOMEM : 0;
}

int ua_enc_cstring(struct tp_buf *b, const char *s)
{
    return ua_enc_string(b, s, s ? (int32_t)strlen(s) : -1);
}

int ua_enc_numeric_nodeid(struct tp_buf *b, uint16_t ns, uint32_t num)
{
    if (ns == 0 && num <= 0xff)
        return ua_enc_u8(b, 0) || ua_enc_u8(b, (uint8_t)num) ? TP_NOMEM : 0;
    if (ns <= 0xff && num <= 0xffff)
        return ua_enc_u8(b, 1) || ua_enc_u8(b, (uint8_t)ns) || ua_enc_u16(b, (uint16_t)num)
                   ? TP_NOMEM
                   : 0;
    return ua_enc_u8(b, 2) || ua_enc_u16(b, ns) || ua_enc_u32(b, num) ? TP_NOMEM : 0;
}

int ua_enc_nodeid(struct tp_buf *b, const struct ua_nodeid *id)
{
    switch (id->type) {
    case UA_ID_STRING:
    case UA_ID_OPAQUE:
        return ua_enc_u8(b, id->type == UA_ID_STRING ? 3 : 5) || ua_enc_u16(b, id->ns) ||
                       ua_enc_string(b, id->str, id->str_len)
                   ? TP_NOMEM
                   : 0;
    case UA_ID_GUID:
        return ua_enc_u8(b, 4) || ua_enc_u16(b, id->ns) ||
                       tp_buf_append(b, (const char *)id->guid, 16)
                   ? TP_NOMEM
                   : 0;
    default:
        return ua_enc_numeric_nodeid(b, id->ns, id->num);
    }
}

int ua_enc_extension_object(struct tp_buf *b, uint32_t type_id, const char *body, size_t len)
{
    return ua_enc_numeric_nodeid(b, 0, type_id) || ua_enc_u8(b, 1) ||
                   ua_enc_string(b, body, (int32_t)len)
               ? TP_NOMEM
               : 0;
}

void ua_put_u32_at(struct tp_buf *b, size_t off, uint32_t v)
{
    uint8_t *p = (uint8_t *)b->data + off;
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
