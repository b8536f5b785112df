/* MQTT 3.1.1 / 5.0 packet encoders and the checking decoder (codec.h).
 * The decoder reads through a bounds-checked cursor: every field read fails
 * cleanly at the end of the packet, so a hostile length can never make it
 * read past the bytes it was given. */
#include "io/mqtt/codec.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "core/error.h"

/* ---------- validation helpers ---------- */

/* Well-formed UTF-8 without U+0000, surrogates or overlong forms. */
static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3Fu);
        }
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static int unplain_byte(unsigned char c)
{
    return c == 0 || c == '+' || c == '#' || c >= 0x80;
}

#ifdef __SSE2__
/* Copies the 16 bytes at s to out ('.' -> '/' when undot is set); returns
 * a bit per byte that is NUL, '+', '#' or not ASCII (0: all plain). */
static int step16(const char *s, char *out, int undot)
{
    __m128i w = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i bad = _mm_or_si128(
        _mm_cmpeq_epi8(w, _mm_setzero_si128()),
        _mm_or_si128(_mm_cmpeq_epi8(w, _mm_set1_epi8('+')), _mm_cmpeq_epi8(w, _mm_set1_epi8('#'))));
    if (undot) { /* '.' ^ '/' is 1: flip each dot's low bit */
        __m128i dots = _mm_cmpeq_epi8(w, _mm_set1_epi8('.'));
        _mm_storeu_si128((__m128i *)(void *)out,
                         _mm_xor_si128(w, _mm_and_si128(dots, _mm_set1_epi8(1))));
    }
    return _mm_movemask_epi8(bad) | _mm_movemask_epi8(w); /* high bit: not ASCII */
}
#define STEP 16
#define STEP_BAD(s, out, undot) (uint64_t) step16(s, out, undot)
#else
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* The high bit set in each byte of w that is zero (exactly those bytes). */
static uint64_t zero_bytes(uint64_t w)
{
    return ~(((w & ~HIGHS) + ~HIGHS) | w | ~HIGHS);
}

/* The high bit set in each byte of w that is NUL, '+', '#' or not ASCII:
 * the bytes that keep a topic name from being plain. */
static uint64_t unplain_bytes(uint64_t w)
{
    return (zero_bytes(w) | zero_bytes(w ^ (ONES * '+')) | zero_bytes(w ^ (ONES * '#')) | w) &
           HIGHS;
}

/* Copies the 8 bytes at s to out ('.' -> '/' when undot is set); returns
 * their unplain_bytes. */
static uint64_t step8(const char *s, char *out, int undot)
{
    uint64_t w;
    memcpy(&w, s, 8);
    uint64_t bad = unplain_bytes(w);
    if (undot) {
        w ^= zero_bytes(w ^ (ONES * '.')) >> 7; /* '.' ^ '/' is 1: flip each dot's low bit */
        memcpy(out, &w, 8);
    }
    return bad;
}
#define STEP 8
#define STEP_BAD(s, out, undot) step8(s, out, undot)
#endif

/* The unplain bytes of the len bytes at s (0: ASCII without NUL, '+' or
 * '#'), copied to out with '.' -> '/' when undot is set: STEP bytes a step,
 * the last step overlapping the one before; byte by byte below STEP. */
static uint64_t scan_topic(const char *s, size_t len, char *out, int undot)
{
    uint64_t bad = 0;
    size_t i = 0;
    if (len < STEP) {
        for (; i < len; i++) {
            bad |= (uint64_t)unplain_byte((unsigned char)s[i]);
            if (undot)
                out[i] = s[i] == '.' ? '/' : s[i];
        }
        return bad;
    }
    for (; i + STEP <= len; i += STEP)
        bad |= STEP_BAD(s + i, out + i, undot);
    if (i < len) /* the rest: the last STEP bytes again, from s */
        bad |= STEP_BAD(s + len - STEP, out + len - STEP, undot);
    return bad;
}

/* 1 when the len bytes at s are ASCII without NUL, '+' or '#': a valid
 * topic name with nothing more to check (the common case). */
static int plain_topic(const char *s, size_t len)
{
    return scan_topic(s, len, (char *)s, 0) == 0; /* out: not written without undot */
}

int tp_mqtt_topic_undot(const char *s, size_t len, char *out)
{
    uint64_t bad = scan_topic(s, len, out, 1);
    return len > 0 && len <= 65535 && bad == 0;
}

int tp_mqtt_topic_valid(const char *s, size_t len, int filter)
{
    if (len > 0 && len <= 65535 && !filter && plain_topic(s, len))
        return 1;
    if (len == 0 || len > 65535 || !utf8_valid((const uint8_t *)s, len))
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '+' && s[i] != '#')
            continue;
        if (!filter)
            return 0;
        /* A wildcard fills a whole level; # only as the last one. */
        if (i > 0 && s[i - 1] != '/')
            return 0;
        if (s[i] == '#' && i + 1 != len)
            return 0;
        if (s[i] == '+' && i + 1 < len && s[i + 1] != '/')
            return 0;
    }
    return 1;
}

/* ---------- decoder ---------- */

struct cur {
    const uint8_t *p, *end;
    char *why;
    size_t why_len;
};

static int bad(struct cur *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct cur *c, const char *fmt, ...)
{
    if (c->why && c->why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, c->why_len, fmt, ap);
        va_end(ap);
    }
    return TP_PARSE;
}

static int get_u8(struct cur *c, uint8_t *v, const char *what)
{
    *v = 0;
    if (c->p >= c->end)
        return bad(c, "%s: packet too short", what);
    *v = *c->p++;
    return TP_OK;
}

static int get_u16(struct cur *c, uint16_t *v, const char *what)
{
    *v = 0;
    if (c->end - c->p < 2)
        return bad(c, "%s: packet too short", what);
    *v = (uint16_t)((c->p[0] << 8) | c->p[1]);
    c->p += 2;
    return TP_OK;
}

static int get_u32(struct cur *c, uint32_t *v, const char *what)
{
    *v = 0;
    if (c->end - c->p < 4)
        return bad(c, "%s: packet too short", what);
    *v = ((uint32_t)c->p[0] << 24) | ((uint32_t)c->p[1] << 16) | ((uint32_t)c->p[2] << 8) | c->p[3];
    c->p += 4;
    return TP_OK;
}

/* Variable byte integer; TP_AGAIN when the bytes end inside it and `partial`. */
static int get_varint(struct cur *c, uint32_t *v, const char *what, int partial)
{
    uint32_t val = 0;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        if (c->p >= c->end)
            return partial ? TP_AGAIN : bad(c, "%s: packet too short", what);
        uint8_t b = *c->p++;
        val |= (uint32_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *v = val;
            return TP_OK;
        }
    }
    return bad(c, "%s: variable length integer longer than 4 bytes", what);
}

static int get_bin(struct cur *c, struct tp_mqtt_str *s, const char *what)
{
    s->p = "";
    s->len = 0;
    uint16_t n;
    if (get_u16(c, &n, what))
        return TP_PARSE;
    if ((size_t)(c->end - c->p) < n)
        return bad(c, "%s: length beyond the packet", what);
    s->p = (const char *)c->p;
    s->len = n;
    c->p += n;
    return TP_OK;
}

static int get_str(struct cur *c, struct tp_mqtt_str *s, const char *what)
{
    if (get_bin(c, s, what))
        return TP_PARSE;
    if (!utf8_valid((const uint8_t *)s->p, s->len))
        return bad(c, "%s: invalid UTF-8 or NUL character", what);
    return TP_OK;
}

/* Property types by identifier (MQTT 5 section 2.2.2.2). */
enum prop_kind { P_NONE, P_BYTE, P_U16, P_U32, P_VARINT, P_STR, P_BIN, P_PAIR };

static enum prop_kind prop_kind(uint32_t id)
{
    switch (id) {
    case 0x01:
    case 0x17:
    case 0x19:
    case 0x24:
    case 0x25:
    case 0x28:
    case 0x29:
    case 0x2A:
        return P_BYTE;
    case 0x13:
    case 0x21:
    case 0x22:
    case 0x23:
        return P_U16;
    case 0x02:
    case 0x11:
    case 0x18:
    case 0x27:
        return P_U32;
    case 0x0B:
        return P_VARINT;
    case 0x03:
    case 0x08:
    case 0x12:
    case 0x15:
    case 0x1A:
    case 0x1C:
    case 0x1F:
        return P_STR;
    case 0x09:
    case 0x16:
        return P_BIN;
    case 0x26:
        return P_PAIR;
    default:
        return P_NONE;
    }
}

/* One property as read from a block. */
struct prop {
    uint32_t id;
    enum prop_kind kind;
    uint32_t num;             /* P_BYTE, P_U16, P_U32, P_VARINT */
    struct tp_mqtt_str s, s2; /* P_STR, P_BIN; P_PAIR: name and value */
};

/* Reads the property at c: the one property walker behind get_props and
 * tp_mqtt_user_prop_next. With `seen` (the identifiers met so far in this
 * block) it also checks: no single-valued property twice, strings UTF-8. */
static int get_prop(struct cur *c, struct prop *p, uint64_t *seen)
{
    memset(p, 0, sizeof *p);
    if (get_varint(c, &p->id, "property identifier", 0))
        return TP_PARSE;
    p->kind = prop_kind(p->id);
    if (p->kind == P_NONE)
        return bad(c, "unknown property identifier 0x%02x", (unsigned)p->id);
    if (seen && p->id != 0x26 && p->id != 0x0B) {
        if (*seen & ((uint64_t)1 << p->id))
            return bad(c, "%s", "property given twice");
        *seen |= (uint64_t)1 << p->id;
    }
    int (*get_text)(struct cur *, struct tp_mqtt_str *, const char *) = seen ? get_str : get_bin;
    uint8_t b;
    uint16_t h;
    int rc = TP_OK;
    switch (p->kind) {
    case P_BYTE:
        rc = get_u8(c, &b, "property");
        p->num = b;
        break;
    case P_U16:
        rc = get_u16(c, &h, "property");
        p->num = h;
        break;
    case P_U32:
        rc = get_u32(c, &p->num, "property");
        break;
    case P_VARINT:
        rc = get_varint(c, &p->num, "property", 0);
        break;
    case P_STR:
        rc = get_text(c, &p->s, "property");
        break;
    case P_BIN:
        rc = get_bin(c, &p->s, "property");
        break;
    case P_PAIR:
        rc = get_text(c, &p->s, "user property name");
        if (!rc)
            rc = get_text(c, &p->s2, "user property value");
        break;
    case P_NONE:
        break;
    }
    return rc;
}

static int get_props(struct cur *c, struct tp_mqtt_props *pr)
{
    uint32_t len;
    if (get_varint(c, &len, "properties", 0))
        return TP_PARSE;
    if ((size_t)(c->end - c->p) < len)
        return bad(c, "%s: property length beyond the packet", "properties");
    struct cur pc = {c->p, c->p + len, c->why, c->why_len};
    pr->block = c->p;
    pr->block_len = len;
    c->p += len;
    uint64_t seen = 0;
    while (pc.p < pc.end) {
        struct prop p;
        if (get_prop(&pc, &p, &seen))
            return TP_PARSE;
        uint32_t id = p.id, v = p.num;
        switch (p.kind) {
        case P_BYTE:
            if (v > 1)
                return bad(c, "%s",
                           id == 0x24 ? "Maximum QoS not 0 or 1"
                                      : "property byte value not 0 or 1");
            if (id == 0x24)
                pr->maximum_qos = (int)v;
            if (id == 0x25)
                pr->retain_available = (int)v;
            break;
        case P_U16:
            if (id == 0x21 && v == 0)
                return bad(c, "%s", "Receive Maximum of 0");
            if (id == 0x13)
                pr->server_keep_alive = (int)v;
            else if (id == 0x21)
                pr->receive_maximum = (uint16_t)v;
            else if (id == 0x22)
                pr->topic_alias_maximum = (uint16_t)v;
            else
                pr->topic_alias = (uint16_t)v;
            break;
        case P_U32:
            if (id == 0x27 && v == 0)
                return bad(c, "%s", "Maximum Packet Size of 0");
            if (id == 0x11)
                pr->session_expiry = v;
            else if (id == 0x27)
                pr->maximum_packet_size = v;
            break;
        case P_VARINT:
            if (v == 0)
                return bad(c, "%s", "Subscription Identifier of 0");
            break;
        case P_STR:
            if (id == 0x12)
                pr->assigned_client_id = p.s;
            else if (id == 0x1F)
                pr->reason_string = p.s;
            break;
        case P_PAIR:
            pr->n_user++;
            break;
        case P_BIN:
        case P_NONE:
            break;
        }
    }
    return TP_OK;
}

int tp_mqtt_user_prop_next(const struct tp_mqtt_props *props, size_t *pos, struct tp_mqtt_str *key,
                           struct tp_mqtt_str *val)
{
    if (!props->block) /* no property block: nothing to iterate (NULL + 0 is UB) */
        return 0;
    struct cur c = {props->block + *pos, props->block + props->block_len, NULL, 0};
    while (c.p < c.end) {
        struct prop p;
        if (get_prop(&c, &p, NULL))
            return 0;
        if (p.kind == P_PAIR) {
            *key = p.s;
            *val = p.s2;
            *pos = (size_t)(c.p - props->block);
            return 1;
        }
    }
    *pos = props->block_len;
    return 0;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
static int dec_ack(struct cur *c, int version, struct tp_mqtt_packet *pkt)
{
    if (get_u16(c, &pkt->id, "packet identifier"))
        return TP_PARSE;
    if (pkt->id == 0)
        return bad(c, "%s", "packet identifier 0");
    if (version < TP_MQTT_V5) {
        if (c->p != c->end)
            return bad(c, "%s", "acknowledgement longer than 2 bytes");
        return TP_OK;
    }
    uint8_t r = 0;
    if (c->p < c->end && get_u8(c, &r, "reason code"))
        return TP_PARSE;
    pkt->reason = r;
    if (c->p < c->end && get_props(c, &pkt->props))
        return TP_PARSE;
    return c->p == c->end ? TP_OK : bad(c, "%s", "trailing bytes after properties");
}

static int dec_publish(struct cur *c, int version, struct tp_mqtt_packet *pkt)
{
    pkt->qos = (pkt->flags >> 1) & 3;
    pkt->dup = (pkt->flags >> 3) & 1;
    pkt->retain = pkt->flags & 1;
    if (pkt->qos == 3)
        return bad(c, "%s", "PUBLISH with QoS 3");
    if (pkt->qos == 0 && pkt->dup)
        return bad(c, "%s", "PUBLISH with QoS 0 and DUP set");
    /* The topic's UTF-8 is checked with its characters below (one pass). */
    if (get_bin(c, &pkt->topic, "topic name"))
        return TP_PARSE;
    if (pkt->qos > 0) {
        if (get_u16(c, &pkt->id, "packet identifier"))
            return TP_PARSE;
        if (pkt->id == 0)
            return bad(c, "%s", "packet identifier 0");
    }
    if (version >= TP_MQTT_V5 && get_props(c, &pkt->props))
        return TP_PARSE;
    if (pkt->topic.len == 0)
        return bad(c, "%s", "empty topic name (topic aliases are not enabled)");
    if (!tp_mqtt_topic_valid(pkt->topic.p, pkt->topic.len, 0))
        return bad(c, "%s",
                   utf8_valid((const uint8_t *)pkt->topic.p, pkt->topic.len)
                       ? "topic name with a wildcard"
                       : "topic name: invalid UTF-8 or NUL character");
    pkt->payload = c->p;
    pkt->payload_len = (size_t)(c->end - c->p);
    return TP_OK;
}

static int dec_connect(struct cur *c, struct tp_mqtt_packet *pkt)
{
    struct tp_mqtt_str name;
    uint8_t level, fl;
    uint16_t ka;
    if (get_str(c, &name, "protocol name") || get_u8(c, &level, "protocol level") ||
        get_u8(c, &fl, "connect flags") || get_u16(c, &ka, "keepalive"))
        return TP_PARSE;
    if (name.len != 4 || memcmp(name.p, "MQTT", 4) != 0)
        return bad(c, "%s", "protocol name is not MQTT");
    if (level != TP_MQTT_V311 && level != TP_MQTT_V5)
        return bad(c, "%s", "unsupported protocol level");
    if (fl & 1)
        return bad(c, "%s", "reserved connect flag set");
    pkt->version = level;
    pkt->clean_start = (fl >> 1) & 1;
    pkt->keepalive = ka;
    int will = (fl >> 2) & 1, will_qos = (fl >> 3) & 3;
    if (will_qos == 3 || (!will && (will_qos || (fl & 0x20))))
        return bad(c, "%s", "invalid will flags");
    pkt->has_username = (fl >> 7) & 1;
    pkt->has_password = (fl >> 6) & 1;
    if (level >= TP_MQTT_V5 && get_props(c, &pkt->props))
        return TP_PARSE;
    if (get_str(c, &pkt->client_id, "client identifier"))
        return TP_PARSE;
    if (will) {
        struct tp_mqtt_props wp = {0};
        struct tp_mqtt_str wt, wm;
        if ((level >= TP_MQTT_V5 && get_props(c, &wp)) || get_str(c, &wt, "will topic") ||
            get_bin(c, &wm, "will message"))
            return TP_PARSE;
    }
    if (pkt->has_username && get_str(c, &pkt->username, "user name"))
        return TP_PARSE;
    if (pkt->has_password && get_bin(c, &pkt->password, "password"))
        return TP_PARSE;
    return c->p == c->end ? TP_OK : bad(c, "%s", "trailing bytes after CONNECT payload");
}

static int dec_body(struct cur *c, int version, struct tp_mqtt_packet *pkt)
{
    uint8_t b;
    switch (pkt->type) {
    case TP_MQTT_CONNECT:
        return dec_connect(c, pkt);
    case TP_MQTT_CONNACK: {
        uint8_t ack_flags;
        if (get_u8(c, &ack_flags, "acknowledge flags") || get_u8(c, &b, "return code"))
            return TP_PARSE;
        if (ack_flags & 0xFE)
            return bad(c, "%s", "reserved CONNACK flags set");
        pkt->session_present = ack_flags & 1;
        pkt->reason = b;
    }
        if (version >= TP_MQTT_V5 && get_props(c, &pkt->props))
            return TP_PARSE;
        return c->p == c->end ? TP_OK : bad(c, "%s", "trailing bytes after CONNACK");
    case TP_MQTT_PUBLISH:
        return dec_publish(c, version, pkt);
    case TP_MQTT_PUBACK:
    case TP_MQTT_PUBREC:
    case TP_MQTT_PUBREL:
    case TP_MQTT_PUBCOMP:
        return dec_ack(c, version, pkt);
    case TP_MQTT_SUBSCRIBE:
    case TP_MQTT_SUBACK:
        if (get_u16(c, &pkt->id, "packet identifier"))
            return TP_PARSE;
        if (pkt->id == 0)
            return bad(c, "%s", "packet identifier 0");
        if (version >= TP_MQTT_V5 && get_props(c, &pkt->props))
            return TP_PARSE;
        pkt->list = c->p;
        pkt->list_len = (size_t)(c->end - c->p);
        if (pkt->list_len == 0)
            return bad(c, "%s", "SUBSCRIBE/SUBACK without a topic or return code");
        if (pkt->type == TP_MQTT_SUBSCRIBE) { /* each filter: string + options byte */
            while (c->p < c->end) {
                struct tp_mqtt_str f;
                if (get_str(c, &f, "topic filter") || get_u8(c, &b, "subscription options"))
                    return TP_PARSE;
                if (!tp_mqtt_topic_valid(f.p, f.len, 1))
                    return bad(c, "%s", "invalid topic filter");
            }
        }
        return TP_OK;
    case TP_MQTT_PINGREQ:
    case TP_MQTT_PINGRESP:
        return c->p == c->end ? TP_OK : bad(c, "%s", "PINGREQ/PINGRESP with a body");
    case TP_MQTT_DISCONNECT:
        if (version < TP_MQTT_V5)
            return c->p == c->end ? TP_OK : bad(c, "%s", "DISCONNECT with a body");
        if (c->p < c->end) {
            if (get_u8(c, &b, "reason code"))
                return TP_PARSE;
            pkt->reason = b;
        }
        if (c->p < c->end && get_props(c, &pkt->props))
            return TP_PARSE;
        return c->p == c->end ? TP_OK : bad(c, "%s", "trailing bytes after DISCONNECT");
    default:
        return bad(c, "%s", "unsupported packet type (UNSUBSCRIBE, UNSUBACK, AUTH or 0)");
    }
}

int tp_mqtt_decode(const uint8_t *buf, size_t len, int version, struct tp_mqtt_packet *pkt,
                   size_t *used, char *why, size_t why_len)
{
    struct cur c = {buf, buf + len, why, why_len};
    if (len < 2)
        return TP_AGAIN;
    memset(pkt, 0, sizeof(*pkt));
    pkt->props.maximum_qos = pkt->props.retain_available = pkt->props.server_keep_alive = -1;
    uint8_t h = *c.p++;
    pkt->type = (enum tp_mqtt_type)(h >> 4);
    pkt->flags = h & 0x0F;
    uint32_t rem;
    int rc = get_varint(&c, &rem, "remaining length", 1);
    if (rc)
        return rc;
    if (rem > TP_MQTT_MAX_PACKET)
        return bad(&c, "%s", "packet larger than the maximum packet size");
    if ((size_t)(c.end - c.p) < rem)
        return TP_AGAIN;
    *used = (size_t)(c.p - buf) + rem;
    c.end = c.p + rem;
    /* Fixed header flags: PUBLISH carries its own, PUBREL/SUBSCRIBE 0010. */
    uint8_t want = (pkt->type == TP_MQTT_PUBREL || pkt->type == TP_MQTT_SUBSCRIBE ||
                    pkt->type == TP_MQTT_UNSUBSCRIBE)
                       ? 2
                       : 0;
    if (pkt->type != TP_MQTT_PUBLISH && pkt->flags != want)
        return bad(&c, "%s", "invalid fixed header flags");
    return dec_body(&c, version, pkt);
}

/* ---------- encoders ---------- */

static size_t varint_len(uint32_t v)
{
    return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static void put_varint(uint8_t **p, uint32_t v)
{
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        *(*p)++ = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
}

static void put_u16(uint8_t **p, uint16_t v)
{
    *(*p)++ = (uint8_t)(v >> 8);
    *(*p)++ = (uint8_t)v;
}

static void put_u32(uint8_t **p, uint32_t v)
{
    put_u16(p, (uint16_t)(v >> 16));
    put_u16(p, (uint16_t)v);
}

static void put_bytes(uint8_t **p, const void *s, size_t n)
{
    if (n)
        memcpy(*p, s, n);
    *p += n;
}

static void put_str(uint8_t **p, const char *s, size_t n)
{
    put_u16(p, (uint16_t)n);
    put_bytes(p, s, n);
}

/* Reserves the header for a body of `body` bytes; returns the write cursor. */
static uint8_t *start(struct tp_buf *out, uint8_t first, size_t body)
{
    if (body > 268435455u || tp_buf_reserve(out, 5 + body))
        return NULL;
    uint8_t *p = (uint8_t *)out->data + out->len;
    *p++ = first;
    put_varint(&p, (uint32_t)body);
    return p;
}

static int finish(struct tp_buf *out, uint8_t *p)
{
    out->len = (size_t)((char *)p - out->data);
    out->data[out->len] = '\0';
    return TP_OK;
}

int tp_mqtt_encode_connect(struct tp_buf *out, const struct tp_mqtt_connect *c)
{
    size_t idl = strlen(c->client_id), ul = c->username ? strlen(c->username) : 0,
           pl = c->password ? strlen(c->password) : 0;
    if (idl > 65535 || ul > 65535 || pl > 65535)
        return TP_INVAL;
    size_t props = 0;
    if (c->version >= TP_MQTT_V5) {
        props += c->session_expiry ? 5 : 0;
        props += c->receive_maximum ? 3 : 0;
        props += c->maximum_packet_size ? 5 : 0;
    }
    size_t body = 10 + (c->version >= TP_MQTT_V5 ? varint_len((uint32_t)props) + props : 0) + 2 +
                  idl + (c->username ? 2 + ul : 0) + (c->password ? 2 + pl : 0);
    uint8_t *p = start(out, TP_MQTT_CONNECT << 4, body);
    if (!p)
        return TP_NOMEM;
    put_str(&p, "MQTT", 4);
    *p++ = (uint8_t)c->version;
    *p++ = (uint8_t)((c->username ? 0x80 : 0) | (c->password ? 0x40 : 0) |
                     (c->clean_start ? 0x02 : 0));
    put_u16(&p, (uint16_t)c->keepalive);
    if (c->version >= TP_MQTT_V5) {
        put_varint(&p, (uint32_t)props);
        if (c->session_expiry) {
            *p++ = 0x11;
            put_u32(&p, c->session_expiry);
        }
        if (c->receive_maximum) {
            *p++ = 0x21;
            put_u16(&p, c->receive_maximum);
        }
        if (c->maximum_packet_size) {
            *p++ = 0x27;
            put_u32(&p, c->maximum_packet_size);
        }
    }
    put_str(&p, c->client_id, idl);
    if (c->username)
        put_str(&p, c->username, ul);
    if (c->password)
        put_str(&p, c->password, pl);
    return finish(out, p);
}

int tp_mqtt_encode_publish(struct tp_buf *out, int version, const char *topic, size_t topic_len,
                           const void *payload, size_t payload_len, int qos, int retain, int dup,
                           uint16_t id, size_t *id_pos)
{
    if (topic_len > 65535)
        return TP_INVAL;
    size_t body = 2 + topic_len + (qos ? 2 : 0) + (version >= TP_MQTT_V5 ? 1 : 0) + payload_len;
    if (body > 268435455u)
        return TP_INVAL;
    uint8_t *p = start(
        out, (uint8_t)(TP_MQTT_PUBLISH << 4 | (dup && qos ? 8 : 0) | (qos << 1) | (retain ? 1 : 0)),
        body);
    if (!p)
        return TP_NOMEM;
    put_str(&p, topic, topic_len);
    if (id_pos)
        *id_pos = (size_t)((char *)p - out->data);
    if (qos)
        put_u16(&p, id);
    if (version >= TP_MQTT_V5)
        *p++ = 0; /* no properties */
    put_bytes(&p, payload, payload_len);
    return finish(out, p);
}

int tp_mqtt_encode_ack(struct tp_buf *out, int version, enum tp_mqtt_type type, uint16_t id)
{
    (void)version; /* MQTT 5: remaining length 2 means reason Success, no properties */
    uint8_t *p = start(out, (uint8_t)(type << 4 | (type == TP_MQTT_PUBREL ? 2 : 0)), 2);
    if (!p)
        return TP_NOMEM;
    put_u16(&p, id);
    return finish(out, p);
}

int tp_mqtt_encode_subscribe(struct tp_buf *out, int version, uint16_t id,
                             const char *const *filters, size_t n, int qos)
{
    size_t body = 2 + (version >= TP_MQTT_V5 ? 1 : 0);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(filters[i]);
        if (l > 65535)
            return TP_INVAL;
        body += 3 + l;
    }
    uint8_t *p = start(out, TP_MQTT_SUBSCRIBE << 4 | 2, body);
    if (!p)
        return TP_NOMEM;
    put_u16(&p, id);
    if (version >= TP_MQTT_V5)
        *p++ = 0;
    for (size_t i = 0; i < n; i++) {
        put_str(&p, filters[i], strlen(filters[i]));
        *p++ = (uint8_t)qos;
    }
    return finish(out, p);
}

int tp_mqtt_encode_pingreq(struct tp_buf *out)
{
    uint8_t *p = start(out, TP_MQTT_PINGREQ << 4, 0);
    return p ? finish(out, p) : TP_NOMEM;
}

int tp_mqtt_encode_disconnect(struct tp_buf *out, int version)
{
    (void)version; /* MQTT 5: no body means Normal disconnection */
    uint8_t *p = start(out, TP_MQTT_DISCONNECT << 4, 0);
    return p ? finish(out, p) : TP_NOMEM;
}

int tp_mqtt_encode_connack(struct tp_buf *out, int version, int session_present, int reason,
                           uint16_t receive_maximum)
{
    size_t props = version >= TP_MQTT_V5 && receive_maximum ? 3 : 0;
    uint8_t *p = start(out, TP_MQTT_CONNACK << 4, 2 + (version >= TP_MQTT_V5 ? 1 + props : 0));
    if (!p)
        return TP_NOMEM;
    *p++ = (uint8_t)(session_present ? 1 : 0);
    *p++ = (uint8_t)reason;
    if (version >= TP_MQTT_V5) {
        *p++ = (uint8_t)props;
        if (props) {
            *p++ = 0x21;
            put_u16(&p, receive_maximum);
        }
    }
    return finish(out, p);
}

int tp_mqtt_encode_suback(struct tp_buf *out, int version, uint16_t id, const uint8_t *codes,
                          size_t n)
{
    uint8_t *p = start(out, TP_MQTT_SUBACK << 4, 2 + (version >= TP_MQTT_V5 ? 1 : 0) + n);
    if (!p)
        return TP_NOMEM;
    put_u16(&p, id);
    if (version >= TP_MQTT_V5)
        *p++ = 0;
    put_bytes(&p, codes, n);
    return finish(out, p);
}

const char *tp_mqtt_connack_text(int version, int code)
{
    if (version < TP_MQTT_V5) {
        static const char *const v4[] = {
            "accepted",           "unacceptable protocol version", "client identifier rejected",
            "server unavailable", "bad user name or password",     "not authorized"};
        return code >= 0 && code <= 5 ? v4[code] : "unknown return code";
    }
    switch (code) {
    case 0x00:
        return "success";
    case 0x80:
        return "unspecified error";
    case 0x81:
        return "malformed packet";
    case 0x82:
        return "protocol error";
    case 0x83:
        return "implementation specific error";
    case 0x84:
        return "unsupported protocol version";
    case 0x85:
        return "client identifier not valid";
    case 0x86:
        return "bad user name or password";
    case 0x87:
        return "not authorized";
    case 0x88:
        return "server unavailable";
    case 0x89:
        return "server busy";
    case 0x8A:
        return "banned";
    case 0x8C:
        return "bad authentication method";
    case 0x95:
        return "packet too large";
    case 0x97:
        return "quota exceeded";
    case 0x99:
        return "payload format invalid";
    case 0x9A:
        return "retain not supported";
    case 0x9B:
        return "QoS not supported";
    case 0x9C:
        return "use another server";
    case 0x9D:
        return "server moved";
    case 0x9F:
        return "connection rate exceeded";
    default:
        return "unknown reason code";
    }
}
