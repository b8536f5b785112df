/* OPC UA values as text: Variant -> JSON (the message payload), NodeId text
 * forms (format and parse), DateTime as RFC 3339, StatusCode names, base64.
 * Values are re-decoded from the bytes ua_dec_variant validated, still with
 * the bounds-checked decoder. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/json.h"
#include "io/opcua/codec.h"

/* 100 ns intervals between 1601-01-01 and 1970-01-01. */
#define UA_EPOCH_DELTA 116444736000000000LL

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

static int unbase64(const char *s, struct tp_buf *out)
{
    uint32_t acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        int v = b64_val(*s);
        if (v < 0)
            return TP_PARSE;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (tp_buf_putc(out, (char)(acc >> bits & 0xff)))
                return TP_NOMEM;
        }
    }
    return 0;
}

int64_t ua_datetime_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 10000000 + ts.tv_nsec / 100 + UA_EPOCH_DELTA;
}

/* Writes v as `width` decimal digits (zero-padded) and returns the end. */
static char *put_digits(char *o, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        o[i] = (char)('0' + v % 10);
    return o + width;
}

/* Without printf or gmtime (this runs for every value received): days since
 * 1970-01-01 to a proleptic Gregorian date, counted in 400-year cycles of
 * 146,097 days starting on a 1 March, so leap days fall at a cycle's end. */
static const char datetime_zero[] = "0001-01-01T00:00:00.000000Z"; /* out of range */

void ua_datetime_format(int64_t dt, char out[64])
{
    const char *zero = datetime_zero;
    if (dt <= 0 || dt > INT64_MAX / 2) {
        memcpy(out, zero, sizeof(datetime_zero));
        return;
    }
    int64_t unix100 = dt - UA_EPOCH_DELTA;
    int64_t sec = unix100 / 10000000, frac = unix100 % 10000000;
    if (frac < 0) {
        frac += 10000000;
        sec--;
    }
    int64_t days = sec / 86400, sod = sec % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t shifted = days + 719468; /* days since 0000-03-01 */
    int64_t cycle = (shifted >= 0 ? shifted : shifted - 146096) / 146097;
    int64_t day_of_cycle = shifted - cycle * 146097; /* 0 .. 146096 */
    int64_t year_of_cycle =
        (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36524 - day_of_cycle / 146096) /
        365; /* 0 .. 399 */
    int64_t day_of_year = day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 -
                                          year_of_cycle / 100); /* from 1 March */
    int64_t month_from_march = (5 * day_of_year + 2) / 153;     /* 0 = March */
    int64_t mday = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    int64_t month = month_from_march < 10 ? month_from_march + 3 : month_from_march - 9;
    int64_t year = cycle * 400 + year_of_cycle + (month <= 2);
    if (year < 0 || year > 9999) {
        memcpy(out, zero, sizeof(datetime_zero));
        return;
    }
    char *o = put_digits(out, (unsigned)year, 4);
    *o++ = '-';
    o = put_digits(o, (unsigned)month, 2);
    *o++ = '-';
    o = put_digits(o, (unsigned)mday, 2);
    *o++ = 'T';
    o = put_digits(o, (unsigned)(sod / 3600), 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)(sod / 60 % 60), 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)(sod % 60), 2);
    *o++ = '.';
    o = put_digits(o, (unsigned)(frac / 10), 6);
    *o++ = 'Z';
    *o = '\0';
}

#define UA_DATETIME_SECOND_LEN 20 /* "2024-03-12T10:00:00." */
#define UA_DATETIME_LEN 27        /* and "123456Z" */

size_t ua_datetime_format_cached(int64_t dt, char out[64], struct ua_datetime_cache *c)
{
    int64_t sec = dt / 10000000;
    if (dt <= 0 || dt > INT64_MAX / 2 || !c->valid || sec != c->sec) {
        ua_datetime_format(dt, out);
        size_t len = strlen(out);
        c->valid = 0;
        if (len == UA_DATETIME_LEN && strcmp(out, datetime_zero) != 0) {
            memcpy(c->text, out, len + 1);
            c->sec = sec;
            c->valid = 1;
        }
        return len;
    }
    /* dt > 0 here: the fraction of its second is dt % 10^7 */
    memcpy(out, c->text, UA_DATETIME_SECOND_LEN);
    char *o = put_digits(out + UA_DATETIME_SECOND_LEN, (unsigned)(dt % 10000000 / 10), 6);
    o[0] = 'Z';
    o[1] = '\0';
    return UA_DATETIME_LEN;
}

static const struct {
    uint32_t code;
    const char *name;
} status_names[] = {
    {0x00000000, "Good"},
    {0x40000000, "Uncertain"},
    {0x40900000, "UncertainLastUsableValue"},
    {0x80000000, "Bad"},
    {0x80010000, "BadUnexpectedError"},
    {0x80020000, "BadInternalError"},
    {0x80030000, "BadOutOfMemory"},
    {0x80050000, "BadCommunicationError"},
    {0x80060000, "BadEncodingError"},
    {0x80070000, "BadDecodingError"},
    {0x80080000, "BadEncodingLimitsExceeded"},
    {0x800A0000, "BadTimeout"},
    {0x800B0000, "BadServiceUnsupported"},
    {0x800C0000, "BadShutdown"},
    {0x800F0000, "BadNothingToDo"},
    {0x80100000, "BadTooManyOperations"},
    {0x80120000, "BadCertificateInvalid"},
    {0x80130000, "BadSecurityChecksFailed"},
    {0x80140000, "BadCertificateTimeInvalid"},
    {0x80170000, "BadCertificateUriInvalid"},
    {0x80180000, "BadCertificateUseNotAllowed"},
    {0x801A0000, "BadCertificateUntrusted"},
    {0x801D0000, "BadCertificateRevoked"},
    {0x801F0000, "BadUserAccessDenied"},
    {0x80200000, "BadIdentityTokenInvalid"},
    {0x80210000, "BadIdentityTokenRejected"},
    {0x80220000, "BadSecureChannelIdInvalid"},
    {0x80250000, "BadSessionIdInvalid"},
    {0x80260000, "BadSessionClosed"},
    {0x80280000, "BadSubscriptionIdInvalid"},
    {0x80320000, "BadWaitingForInitialData"},
    {0x80330000, "BadNodeIdInvalid"},
    {0x80340000, "BadNodeIdUnknown"},
    {0x80350000, "BadAttributeIdInvalid"},
    {0x803A0000, "BadNotReadable"},
    {0x80240000, "BadNonceInvalid"},
    {0x80540000, "BadSecurityModeRejected"},
    {0x80550000, "BadSecurityPolicyRejected"},
    {0x80570000, "BadUserSignatureInvalid"},
    {0x80580000, "BadApplicationSignatureInvalid"},
    {0x80560000, "BadTooManySessions"},
    {0x80780000, "BadTooManyPublishRequests"},
    {0x80790000, "BadNoSubscription"},
    {0x807A0000, "BadSequenceNumberUnknown"},
    {0x807B0000, "BadMessageNotAvailable"},
    {0x80800000, "BadTcpMessageTooLarge"},
    {0x80830000, "BadTcpEndpointUrlInvalid"},
    {0x80860000, "BadSecureChannelClosed"},
    {0x80870000, "BadSecureChannelTokenUnknown"},
    {0x808A0000, "BadNotConnected"},
    {0x808B0000, "BadDeviceFailure"},
    {0x808C0000, "BadSensorFailure"},
    {0x808D0000, "BadOutOfService"},
};

const char *ua_status_name(uint32_t status, char tmp[16])
{
    for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
        if (status_names[i].code == (status & 0xffff0000u))
            return status_names[i].name;
    snprintf(tmp, 16, "0x%08" PRIX32, status);
    return tmp;
}

/* ---- NodeId text ---- */

static int fmt_guid(struct tp_buf *out, const uint8_t *g)
{
    uint32_t d1 =
        (uint32_t)g[0] | (uint32_t)g[1] << 8 | (uint32_t)g[2] << 16 | (uint32_t)g[3] << 24;
    unsigned d2 = (unsigned)(g[4] | g[5] << 8), d3 = (unsigned)(g[6] | g[7] << 8);
    return tp_buf_printf(out, "%08" PRIX32 "-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X", d1, d2,
                         d3, g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

int ua_nodeid_format(const struct ua_nodeid *id, struct tp_buf *out)
{
    if (id->ns && tp_buf_printf(out, "ns=%u;", (unsigned)id->ns))
        return TP_NOMEM;
    switch (id->type) {
    case UA_ID_STRING:
        return tp_buf_puts(out, "s=") || tp_buf_append(out, id->str ? id->str : "",
                                                       id->str_len > 0 ? (size_t)id->str_len : 0)
                   ? TP_NOMEM
                   : 0;
    case UA_ID_GUID:
        return tp_buf_puts(out, "g=") || fmt_guid(out, id->guid) ? TP_NOMEM : 0;
    case UA_ID_OPAQUE:
        return tp_buf_puts(out, "b=") ||
                       tp_buf_base64(out, id->str, id->str_len > 0 ? (size_t)id->str_len : 0)
                   ? TP_NOMEM
                   : 0;
    default:
        return tp_buf_printf(out, "i=%" PRIu32, id->num);
    }
}

static int parse_guid(const char *s, uint8_t g[16])
{
    unsigned v[11];
    int n = 0;
    if (strlen(s) != 36 ||
        sscanf(s, "%8x-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x%n", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &n) != 11 ||
        n != 36)
        return TP_PARSE;
    for (int i = 0; i < 4; i++)
        g[i] = (uint8_t)(v[0] >> (8 * i));
    g[4] = (uint8_t)v[1], g[5] = (uint8_t)(v[1] >> 8);
    g[6] = (uint8_t)v[2], g[7] = (uint8_t)(v[2] >> 8);
    for (int i = 0; i < 8; i++)
        g[8 + i] = (uint8_t)v[3 + i];
    return 0;
}

int ua_nodeid_parse(const char *text, struct ua_nodeid *id, struct tp_buf *store)
{
    memset(id, 0, sizeof(*id));
    const char *s = text;
    if (strncmp(s, "ns=", 3) == 0) {
        char *end;
        unsigned long ns = strtoul(s + 3, &end, 10);
        if (end == s + 3 || *end != ';' || ns > 65535)
            return TP_PARSE;
        id->ns = (uint16_t)ns;
        s = end + 1;
    }
    if (!s[0] || s[1] != '=')
        return TP_PARSE;
    const char *v = s + 2;
    char *end;
    switch (s[0]) {
    case 'i': {
        if (!*v || *v == '-' || *v == '+')
            return TP_PARSE;
        unsigned long long n = strtoull(v, &end, 10);
        if (*end || n > 0xffffffffull)
            return TP_PARSE;
        id->num = (uint32_t)n;
        return 0;
    }
    case 's':
    case 'b': {
        tp_buf_reset(store);
        if (s[0] == 's' ? tp_buf_puts(store, v) : unbase64(v, store))
            return TP_PARSE;
        if (tp_buf_reserve(store, 1))
            return TP_NOMEM;
        id->type = s[0] == 's' ? UA_ID_STRING : UA_ID_OPAQUE;
        id->str = store->data;
        id->str_len = (int32_t)store->len;
        return 0;
    }
    case 'g':
        id->type = UA_ID_GUID;
        return parse_guid(v, id->guid);
    default:
        return TP_PARSE;
    }
}

int ua_nodeid_is_null(const struct ua_nodeid *id)
{
    return id->ns == 0 && id->type == UA_ID_NUMERIC && id->num == 0;
}

/* ---- Variant -> JSON ---- */

static int put_double(struct tp_buf *out, double v, int single)
{
    if (!isfinite(v))
        return tp_buf_puts(out, isnan(v) ? "\"NaN\"" : v > 0 ? "\"+Inf\"" : "\"-Inf\"");
    char tmp[40];
    /* whole numbers that %.6g / %.15g print without an exponent: the same
     * digits without printf (most process values) */
    if (fabs(v) < (single ? 1e6 : 1e15) && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
        int64_t i = (int64_t)v;
        uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        char *o = tmp + sizeof(tmp);
        *--o = '\0';
        do
            *--o = (char)('0' + u % 10);
        while (u /= 10);
        if (i < 0)
            *--o = '-';
        return tp_buf_puts(out, o);
    }
    for (int prec = single ? 6 : 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        double back = strtod(tmp, NULL);
        if (single ? (float)back == (float)v : back == v)
            break;
    }
    return tp_buf_puts(out, tmp);
}

static int put_str(struct tp_buf *out, struct ua_str s)
{
    if (s.len < 0)
        return tp_buf_puts(out, "null");
    return tp_json_write_string(out, s.s, (size_t)s.len);
}

/* Appends one element of a built-in type as JSON. */
static int put_value(struct ua_dec *d, uint8_t type, struct tp_buf *out)
{
    char ts[64];
    struct ua_str a, b;
    uint16_t ns;
    struct ua_nodeid id;
    struct tp_buf tmp;
    int rc;
    switch (type) {
    case UA_BOOLEAN:
        return tp_buf_puts(out, ua_dec_u8(d) ? "true" : "false");
    case UA_SBYTE:
        return tp_buf_printf(out, "%d", (int8_t)ua_dec_u8(d));
    case UA_BYTE:
        return tp_buf_printf(out, "%u", ua_dec_u8(d));
    case UA_INT16:
        return tp_buf_printf(out, "%d", (int16_t)ua_dec_u16(d));
    case UA_UINT16:
        return tp_buf_printf(out, "%u", ua_dec_u16(d));
    case UA_INT32:
        return tp_buf_printf(out, "%" PRId32, ua_dec_i32(d));
    case UA_UINT32:
    case UA_STATUSCODE:
        return tp_buf_printf(out, "%" PRIu32, ua_dec_u32(d));
    case UA_INT64:
        return tp_buf_printf(out, "%" PRId64, ua_dec_i64(d));
    case UA_UINT64:
        return tp_buf_printf(out, "%" PRIu64, ua_dec_u64(d));
    case UA_FLOAT:
        return put_double(out, ua_dec_f32(d), 1);
    case UA_DOUBLE:
        return put_double(out, ua_dec_f64(d), 0);
    case UA_STRING:
    case UA_XMLELEMENT:
        return put_str(out, ua_dec_string(d));
    case UA_DATETIME:
        ua_datetime_format(ua_dec_i64(d), ts);
        return tp_buf_printf(out, "\"%s\"", ts);
    case UA_GUID: {
        const uint8_t *g = ua_dec_bytes(d, 16);
        if (!g)
            return TP_PARSE;
        return tp_buf_putc(out, '"') || fmt_guid(out, g) || tp_buf_putc(out, '"') ? TP_NOMEM : 0;
    }
    case UA_BYTESTRING:
        a = ua_dec_string(d);
        if (a.len < 0)
            return tp_buf_puts(out, "null");
        return tp_buf_putc(out, '"') || tp_buf_base64(out, a.s, (size_t)a.len) ||
                       tp_buf_putc(out, '"')
                   ? TP_NOMEM
                   : 0;
    case UA_NODEID:
    case UA_EXPANDEDNODEID:
        if (type == UA_NODEID)
            ua_dec_nodeid(d, &id);
        else
            ua_dec_expanded_nodeid(d, &id);
        tp_buf_init(&tmp);
        rc = ua_nodeid_format(&id, &tmp);
        if (!rc)
            rc = tp_json_write_string(out, tmp.data ? tmp.data : "", tmp.len);
        tp_buf_free(&tmp);
        return rc;
    case UA_QUALIFIEDNAME:
        ua_dec_qualified_name(d, &ns, &a);
        return tp_buf_printf(out, "{\"NamespaceIndex\":%u,\"Name\":", ns) || put_str(out, a) ||
                       tp_buf_putc(out, '}')
                   ? TP_NOMEM
                   : 0;
    case UA_LOCALIZEDTEXT:
        ua_dec_localized_text(d, &a, &b);
        return tp_buf_puts(out, "{\"Locale\":") || put_str(out, a) ||
                       tp_buf_puts(out, ",\"Text\":") || put_str(out, b) || tp_buf_putc(out, '}')
                   ? TP_NOMEM
                   : 0;
    case UA_VARIANT: {
        struct ua_variant inner;
        ua_dec_variant(d, &inner);
        if (d->err)
            return TP_PARSE;
        enum ua_json_kind k;
        return ua_variant_to_json(&inner, out, &k);
    }
    default:
        return TP_UNSUPPORTED;
    }
}

int ua_variant_to_json(const struct ua_variant *v, struct tp_buf *out, enum ua_json_kind *kind)
{
    *kind = UA_JSON_NONE;
    if (v->type == UA_NULL || v->multi_dim || v->type == UA_EXTENSIONOBJECT ||
        v->type == UA_DATAVALUE || v->type == UA_DIAGNOSTICINFO)
        return TP_UNSUPPORTED;
    struct ua_dec d;
    ua_dec_init(&d, v->raw, v->raw_len);
    int rc = 0;
    if (v->array_len >= 0) {
        rc = tp_buf_putc(out, '[');
        for (int32_t i = 0; i < v->array_len && !rc; i++) {
            if (i)
                rc = tp_buf_putc(out, ',');
            if (!rc)
                rc = put_value(&d, v->type, out);
        }
        if (!rc)
            rc = tp_buf_putc(out, ']');
        *kind = UA_JSON_OTHER;
    } else {
        rc = put_value(&d, v->type, out);
        switch (v->type) {
        case UA_BOOLEAN:
            *kind = UA_JSON_BOOL;
            break;
        case UA_SBYTE:
        case UA_BYTE:
        case UA_INT16:
        case UA_UINT16:
        case UA_INT32:
        case UA_UINT32:
        case UA_INT64:
        case UA_UINT64:
        case UA_FLOAT:
        case UA_DOUBLE:
        case UA_STATUSCODE:
            *kind = UA_JSON_NUMBER;
            break;
        case UA_QUALIFIEDNAME:
        case UA_LOCALIZEDTEXT:
            *kind = UA_JSON_OTHER;
            break;
        default:
            *kind = UA_JSON_STRING;
        }
    }
    if (!rc && d.err)
        rc = TP_PARSE;
    return rc;
}

int64_t ua_variant_int(const struct ua_variant *v)
{
    if (v->array_len >= 0)
        return 0;
    struct ua_dec d;
    ua_dec_init(&d, v->raw, v->raw_len);
    switch (v->type) {
    case UA_BOOLEAN:
    case UA_BYTE:
        return ua_dec_u8(&d);
    case UA_SBYTE:
        return (int8_t)ua_dec_u8(&d);
    case UA_INT16:
        return (int16_t)ua_dec_u16(&d);
    case UA_UINT16:
        return ua_dec_u16(&d);
    case UA_INT32:
        return ua_dec_i32(&d);
    case UA_UINT32:
    case UA_STATUSCODE:
        return ua_dec_u32(&d);
    case UA_INT64:
    case UA_UINT64:
        return ua_dec_i64(&d);
    default:
        return 0;
    }
}
