/* The hand-written JSON fast path: a strict RFC 8259 scanner that decodes
 * envelopes, validates, minifies and canonicalises without a parser handle or
 * per-call allocation beyond its outputs (yajl costs several mallocs and a
 * callback per token). Whatever it rejects goes to the yajl path in json.c,
 * which is the reference and writes the error messages. */
#include "core/json_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "core/number.h"

struct scan {
    const unsigned char *p, *end;
    int depth;
    int unsure;               /* gave up for a reason where yajl may still accept the text */
    int strict;               /* envelope rule: invalid UTF-8 and lone surrogates are errors */
    const unsigned char *bad; /* strict: where the text broke the rule */
};

/* First byte at or after p that is not plain (end when none), eight bytes at
 * a time. A byte is flagged when below 0x20, '"', '\\' or >= 0x80; a borrow
 * can only flag bytes above a genuinely flagged one, so the lowest flag is
 * exact. The tail is padded with plain 'a' bytes instead of read past end. */
static inline const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    for (;;) {
        size_t left = (size_t)(end - p);
        uint64_t x;
        if (left >= 8) {
            memcpy(&x, p, 8);
        } else {
            if (!left)
                return p;
            x = ones * 'a';
            memcpy(&x, p, left);
        }
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        uint64_t m = ((x - ones * 0x20) | (q - ones) | (b - ones) | x) & highs;
        if (m)
            return p + (__builtin_ctzll(m) >> 3);
        if (left <= 8)
            return end;
        p += 8;
    }
#else
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
        p++;
    return p;
#endif
}

/* Length of the strict UTF-8 sequence at p (1-4), 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    if (c < 0xc2)
        return 0;
    if (c < 0xe0)
        return avail >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c < 0xf0) {
        if (avail < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
            return 0; /* overlong, surrogate */
        return 3;
    }
    if (c < 0xf5) {
        if (avail < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
            return 0; /* overlong, above U+10FFFF */
        return 4;
    }
    return 0;
}

int tp_json_write_string(struct tp_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
    if (tp_buf_reserve(out, len + 2))
        return TP_NOMEM;
    out->data[out->len++] = '"';
    if (skip_plain(p, end) == end) { /* nothing to escape: one copy */
        memcpy(out->data + out->len, s, len);
        out->len += len;
        out->data[out->len++] = '"';
        out->data[out->len] = '\0';
        return TP_OK;
    }
    while (p < end) {
        p = skip_plain(p, end);
        if (p >= end)
            break;
        unsigned char c = *p;
        size_t n = c >= 0x80 ? utf8_len(p, (size_t)(end - p)) : 0;
        if (n) {
            p += n;
            continue;
        }
        if (p > run && tp_buf_append(out, (const char *)run, (size_t)(p - run)))
            return TP_NOMEM;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            if (c >= 0x80) { /* invalid UTF-8 byte: U+FFFD */
                memcpy(esc, "\xef\xbf\xbd", 3);
                elen = 3;
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            }
        }
        if (tp_buf_append(out, esc, elen))
            return TP_NOMEM;
        run = ++p;
    }
    if (p > run && tp_buf_append(out, (const char *)run, (size_t)(p - run)))
        return TP_NOMEM;
    return tp_buf_putc(out, '"');
}

static inline void ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static int hex4(const unsigned char *p, unsigned *v)
{
    unsigned r = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        r = r << 4 | d;
    }
    *v = r;
    return 0;
}

static size_t utf8_put(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Text that is not UTF-8 at p (an invalid byte sequence, or a \\u escape of a
 * lone surrogate): an error under the envelope rule, else left to yajl. */
static const unsigned char *not_utf8(struct scan *s, const unsigned char *p)
{
    if (s->strict)
        s->bad = p;
    else
        s->unsure = 1;
    return NULL;
}

/* Decodes the escaped string body [p, end-quote) into dec (NULL: validate
 * only). Lone surrogates become U+FFFD (an error under the envelope rule). Returns the position
 * after the closing quote, or NULL. */
static const unsigned char *decode_string(struct scan *s, const unsigned char *p,
                                          struct tp_buf *dec)
{
    const unsigned char *end = s->end, *run = p;
    for (;;) {
        p = skip_plain(p, end);
        if (p >= end)
            return NULL;
        unsigned char c = *p;
        if (c >= 0x80) {
            size_t n = utf8_len(p, (size_t)(end - p));
            if (!n)
                return not_utf8(s, p);
            p += n;
            continue;
        }
        if (c != '"' && c != '\\')
            return NULL; /* raw control character */
        if (dec && p > run && tp_buf_append(dec, (const char *)run, (size_t)(p - run)))
            return NULL;
        if (c == '"')
            return p + 1;
        if (p + 1 >= end)
            return NULL;
        char o[8];
        size_t olen = 1;
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
            o[0] = (char)p[1];
            break;
        case 'b':
            o[0] = '\b';
            break;
        case 'f':
            o[0] = '\f';
            break;
        case 'n':
            o[0] = '\n';
            break;
        case 'r':
            o[0] = '\r';
            break;
        case 't':
            o[0] = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (end - p < 6 || hex4(p + 2, &cp))
                return NULL;
            if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 12 && p[6] == '\\' && p[7] == 'u' &&
                !hex4(p + 8, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            } else if (cp >= 0xd800 && cp <= 0xdfff) {
                if (s->strict) /* distinct keys must not merge into one U+FFFD */
                    return not_utf8(s, p);
                cp = 0xfffd; /* lone surrogate */
            }
            olen = utf8_put(o, cp);
            p += 4;
            break;
        }
        default:
            return NULL;
        }
        if (dec && tp_buf_append(dec, o, olen))
            return NULL;
        p += 2;
        run = p;
    }
}

/* On entry *s->p is '"'. Points str and len at the string's bytes: the raw
 * input when it has no escapes (returns 0), else dec's decoded copy (returns
 * 1). dec NULL: validate only. -1 on error. */
static int scan_string(struct scan *s, struct tp_buf *dec, const char **str, size_t *len)
{
    const unsigned char *p = s->p + 1, *start = p, *end = s->end;
    for (;;) {
        p = skip_plain(p, end);
        if (p >= end)
            return -1;
        if (*p == '"') {
            if (str) {
                *str = (const char *)start;
                *len = (size_t)(p - start);
            }
            s->p = p + 1;
            return 0;
        }
        if (*p < 0x80)
            break; /* backslash or control character */
        size_t n = utf8_len(p, (size_t)(end - p));
        if (!n) {
            not_utf8(s, p);
            return -1;
        }
        p += n;
    }
    if (*p != '\\')
        return -1;
    if (dec)
        tp_buf_reset(dec);
    const unsigned char *after = decode_string(s, start, dec);
    if (!after)
        return -1;
    s->p = after;
    if (str) {
        if (dec && tp_buf_reserve(dec, 0))
            return -1;
        *str = dec ? dec->data : "";
        *len = dec ? dec->len : 0;
    }
    return 1;
}

static int scan_number(struct scan *s)
{
    size_t n = tp_number_span((const char *)s->p, (size_t)(s->end - s->p), 0, NULL);
    if (n == 0)
        return -1;
    s->p += n;
    return 0;
}

static int scan_literal(struct scan *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

/* Scans one scalar (string, number, literal) at s->p (white space skipped). */
static int scan_scalar(struct scan *s)
{
    switch (*s->p) {
    case '"':
        return scan_string(s, NULL, NULL, NULL) < 0 ? -1 : 0;
    case 't':
        return scan_literal(s, "true", 4);
    case 'f':
        return scan_literal(s, "false", 5);
    case 'n':
        return scan_literal(s, "null", 4);
    default:
        return scan_number(s);
    }
}

/* Scans one value; when out is not NULL appends its compact form (strings
 * re-escaped canonically, numbers as written). tmp: scratch for decoding. */
static int scan_value(struct scan *s, struct tp_buf *out, struct tp_buf *tmp)
{
    ws(s);
    if (s->p >= s->end)
        return -1;
    unsigned char open = *s->p;
    if (open != '{' && open != '[') {
        const unsigned char *start = s->p;
        if (open == '"' && out) {
            const char *str;
            size_t n;
            int r = scan_string(s, tmp, &str, &n);
            if (r < 0)
                return -1;
            if (r == 1)
                return tp_json_write_string(out, str, n) ? -1 : 0;
        } else if (scan_scalar(s)) {
            return -1;
        }
        return out && tp_buf_append(out, (const char *)start, (size_t)(s->p - start)) ? -1 : 0;
    }
    if (++s->depth > TP_JSON_MAX_DEPTH) {
        s->unsure = 1;
        return -1;
    }
    unsigned char close = open == '{' ? '}' : ']';
    s->p++;
    if (out && tp_buf_putc(out, (char)open))
        return -1;
    ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return out && tp_buf_putc(out, (char)close) ? -1 : 0;
    }
    for (;;) {
        if (open == '{') {
            ws(s);
            if (s->p >= s->end || *s->p != '"' || scan_value(s, out, tmp))
                return -1;
            ws(s);
            if (s->p >= s->end || *s->p != ':')
                return -1;
            s->p++;
            if (out && tp_buf_putc(out, ':'))
                return -1;
        }
        if (scan_value(s, out, tmp))
            return -1;
        ws(s);
        if (s->p >= s->end)
            return -1;
        unsigned char c = *s->p++;
        if (out && tp_buf_putc(out, (char)c))
            return -1;
        if (c == close)
            break;
        if (c != ',')
            return -1;
    }
    s->depth--;
    return 0;
}

int tp__json_scan_valid(const char *text, size_t len)
{
    struct scan s = {(const unsigned char *)text, (const unsigned char *)text + len, 0, 0, 0, NULL};
    if (scan_value(&s, NULL, NULL) == 0) {
        ws(&s);
        if (s.p == s.end)
            return 1;
    }
    return s.unsure ? -1 : 0;
}

int tp_json_object_member(const char *text, size_t len, const char *key, const char **val,
                          size_t *vlen)
{
    struct scan s = {(const unsigned char *)text, (const unsigned char *)text + len, 0, 0, 0, NULL};
    size_t klen = strlen(key);
    int found = 0;
    ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return 0;
    s.p++;
    ws(&s);
    if (s.p < s.end && *s.p == '}')
        return 0;
    for (;;) {
        const char *k = NULL;
        size_t kl = 0;
        ws(&s);
        if (s.p >= s.end || *s.p != '"')
            return 0;
        int escaped = scan_string(&s, NULL, &k, &kl);
        if (escaped < 0)
            return 0;
        ws(&s);
        if (s.p >= s.end || *s.p != ':')
            return 0;
        s.p++;
        ws(&s);
        const unsigned char *start = s.p;
        if (scan_value(&s, NULL, NULL))
            return 0;
        if (escaped == 0 && kl == klen && memcmp(k, key, klen) == 0) {
            *val = (const char *)start;
            *vlen = (size_t)(s.p - start);
            found = 1;
        }
        ws(&s);
        if (s.p >= s.end)
            return 0;
        unsigned char c = *s.p++;
        if (c == '}')
            break;
        if (c != ',')
            return 0;
    }
    ws(&s);
    return s.p == s.end ? found : 0;
}

int tp_json_write_meta(struct tp_buf *out, const struct tp_msg *m)
{
    int rc = tp_buf_putc(out, '{');
    for (uint32_t i = 0; rc == 0 && i < m->n_meta; i++) {
        if (i)
            rc = tp_buf_putc(out, ',');
        if (rc == 0)
            rc = tp_json_write_string(out, tp_msg_meta_key(m, i), m->meta[i].key_len);
        if (rc == 0)
            rc = tp_buf_putc(out, ':');
        if (rc == 0)
            rc = tp_json_write_string(out, tp_msg_meta_val(m, i), m->meta[i].val_len);
    }
    return rc ? rc : tp_buf_putc(out, '}');
}

/* A payload that arrived as a JSON string is text: JavaScript sees a string
 * even when the text looks like JSON ("23.5" stays "23.5"; SPEC 3.6), and the
 * stdout envelope writes it back as the same JSON string. */
void tp__json_flag_string_payload(struct tp_msg *m)
{
    m->flags |= TP_MSG_PAYLOAD_NOTJSON;
}

static int scan_payload(struct scan *s, struct tp_msg *m, struct tp_buf *pb, struct tp_buf *tmp)
{
    const unsigned char *start = s->p;
    if (*start == '"') {
        const char *str;
        size_t n;
        if (scan_string(s, tmp, &str, &n) < 0 || tp_msg_set_payload(m, str, n))
            return -1;
        tp__json_flag_string_payload(m);
        return 0;
    }
    if (*start == '{' || *start == '[') {
        size_t left = (size_t)(s->end - start);
        tp_buf_reset(pb);
        if (tp_buf_reserve(pb, left < 256 ? left : 256) || scan_value(s, pb, tmp))
            return -1;
        size_t n;
        char *data = tp_buf_take(pb, &n);
        if (!data)
            return -1;
        tp_msg_take_payload(m, data, n);
    } else {
        if (scan_scalar(s) || tp_msg_set_payload(m, (const char *)start, (size_t)(s->p - start)))
            return -1;
    }
    m->flags |= TP_MSG_PAYLOAD_JSON;
    return 0;
}

static int scan_meta(struct scan *s, struct tp_msg *m, struct tp_buf *kb, struct tp_buf *vb)
{
    if (*s->p != '{')
        return -1;
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    /* Size the message's string storage once (the meta text is at most the
     * rest of the line) instead of growing it entry by entry. */
    size_t want = (size_t)(s->end - s->p) + 16;
    if (want > 4096)
        want = 4096;
    if (m->strs_cap < want) {
        char *p = realloc(m->strs, want);
        if (!p)
            return -1;
        m->strs = p;
        m->strs_cap = (uint32_t)want;
    }
    for (;;) {
        const char *k, *v;
        size_t kl, vl;
        ws(s);
        if (s->p >= s->end || *s->p != '"' || scan_string(s, kb, &k, &kl) < 0)
            return -1;
        ws(s);
        if (s->p >= s->end || *s->p != ':')
            return -1;
        s->p++;
        ws(s);
        if (s->p >= s->end || *s->p != '"' || scan_string(s, vb, &v, &vl) < 0)
            return -1;
        if (tp_msg_meta_append(m, k, kl, v, vl))
            return -1;
        ws(s);
        if (s->p >= s->end)
            return -1;
        unsigned char c = *s->p++;
        if (c == '}')
            return 0;
        if (c != ',')
            return -1;
    }
}

int tp__json_scan_envelope(const char *text, size_t len, struct tp_msg *m, struct tp_error *err)
{
    struct scan s = {(const unsigned char *)text, (const unsigned char *)text + len, 0, 0, 1, NULL};
    struct tp_buf kb, vb, pb;
    int rc = -1, have_payload = 0;
    tp_buf_init(&kb);
    tp_buf_init(&vb);
    tp_buf_init(&pb);
    ws(&s);
    if (s.p >= s.end || *s.p != '{')
        goto out;
    s.p++;
    ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
    } else {
        for (;;) {
            const char *k;
            size_t kl;
            ws(&s);
            if (s.p >= s.end || *s.p != '"' || scan_string(&s, &kb, &k, &kl) < 0)
                goto out;
            ws(&s);
            if (s.p >= s.end || *s.p != ':')
                goto out;
            s.p++;
            ws(&s);
            if (s.p >= s.end)
                goto out;
            if (kl == 7 && memcmp(k, "payload", 7) == 0) {
                if (scan_payload(&s, m, &pb, &vb))
                    goto out;
                have_payload = 1;
            } else if (kl == 4 && memcmp(k, "meta", 4) == 0) {
                if (scan_meta(&s, m, &kb, &vb))
                    goto out;
            } else if (scan_value(&s, NULL, NULL)) {
                goto out;
            }
            ws(&s);
            if (s.p >= s.end)
                goto out;
            unsigned char c = *s.p++;
            if (c == '}')
                break;
            if (c != ',')
                goto out;
        }
    }
    ws(&s);
    if (s.p != s.end)
        goto out;
    if (!have_payload) {
        if (tp_msg_set_payload(m, "", 0))
            goto out;
        m->flags |= TP_MSG_PAYLOAD_NOTJSON;
    }
    rc = 0;
out:
    tp_buf_free(&kb);
    tp_buf_free(&vb);
    tp_buf_free(&pb);
    if (rc && s.bad)
        return tp__json_not_utf8_error(err, (size_t)(s.bad - (const unsigned char *)text));
    return rc;
}

int tp__json_not_utf8_error(struct tp_error *err, size_t off)
{
    return tp_error_set_at(err, TP_PARSE, NULL, 1, (int)(off + 1),
                           "invalid UTF-8 (or a lone surrogate escape) at column %zu", off + 1);
}

size_t tp__json_find_not_utf8(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    while (p < end) {
        if (*p >= 0x80) {
            size_t n = utf8_len(p, (size_t)(end - p));
            if (!n)
                return (size_t)(p - (const unsigned char *)text);
            p += n;
        } else if (*p == '\\' && end - p >= 6 && p[1] == 'u') {
            unsigned cp, lo;
            if (hex4(p + 2, &cp) == 0 && cp >= 0xd800 && cp <= 0xdfff) {
                if (cp > 0xdbff || end - p < 12 || p[6] != '\\' || p[7] != 'u' ||
                    hex4(p + 8, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return (size_t)(p - (const unsigned char *)text);
                p += 6;
            }
            p += 6;
        } else {
            p += *p == '\\' ? 2 : 1;
        }
    }
    return SIZE_MAX;
}

int tp__json_minify(const char *text, size_t len, struct tp_buf *out)
{
    const char *p = text, *end = text + len, *run = p;
    int in_str = 0;
    if (tp_buf_reserve(out, len))
        return TP_NOMEM;
    for (; p < end; p++) {
        char c = *p;
        if (in_str) {
            if (c == '\\')
                p++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            if (tp_buf_append(out, run, (size_t)(p - run)))
                return TP_NOMEM;
            run = p + 1;
        }
    }
    if (end > run)
        return tp_buf_append(out, run, (size_t)(end - run));
    return TP_OK;
}

/* ---- canonical form: objects' members sorted by key bytes ---- */

struct member {
    size_t koff, klen, voff, vlen, index;
};

static int member_cmp(const void *a, const void *b, void *arg)
{
    const struct member *x = a, *y = b;
    const char *base = arg;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(base + x->koff, base + y->koff, n);
    if (c)
        return c;
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    return x->index < y->index ? -1 : 1;
}

static int canon_value(struct scan *s, struct tp_buf *out, struct tp_buf *tmp);

static int canon_object(struct scan *s, struct tp_buf *out, struct tp_buf *tmp)
{
    struct tp_buf store;
    struct member *mv = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    tp_buf_init(&store);
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return tp_buf_append(out, "{}", 2) ? -1 : 0;
    }
    for (;;) {
        const char *k;
        size_t kl;
        ws(s);
        if (s->p >= s->end || *s->p != '"' || scan_string(s, tmp, &k, &kl) < 0)
            goto out;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            struct member *nv = realloc(mv, cap * sizeof(*nv));
            if (!nv)
                goto out;
            mv = nv;
        }
        struct member *e = &mv[n];
        e->index = n++;
        e->koff = store.len;
        e->klen = kl;
        if (tp_buf_append(&store, k, kl))
            goto out;
        ws(s);
        if (s->p >= s->end || *s->p != ':')
            goto out;
        s->p++;
        e->voff = store.len;
        if (canon_value(s, &store, tmp))
            goto out;
        e->vlen = store.len - e->voff;
        ws(s);
        if (s->p >= s->end)
            goto out;
        unsigned char c = *s->p++;
        if (c == '}')
            break;
        if (c != ',')
            goto out;
    }
    qsort_r(mv, n, sizeof(*mv), member_cmp, store.data);
    if (tp_buf_putc(out, '{'))
        goto out;
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        const struct member *e = &mv[i];
        /* duplicate keys: the last one wins, as in JSON.parse */
        if (i + 1 < n && e->klen == mv[i + 1].klen &&
            memcmp(store.data + e->koff, store.data + mv[i + 1].koff, e->klen) == 0)
            continue;
        if ((!first && tp_buf_putc(out, ',')) ||
            tp_json_write_string(out, store.data + e->koff, e->klen) || tp_buf_putc(out, ':') ||
            tp_buf_append(out, store.data + e->voff, e->vlen))
            goto out;
        first = 0;
    }
    rc = tp_buf_putc(out, '}') ? -1 : 0;
out:
    free(mv);
    tp_buf_free(&store);
    return rc;
}

static int canon_value(struct scan *s, struct tp_buf *out, struct tp_buf *tmp)
{
    ws(s);
    if (s->p >= s->end)
        return -1;
    if (*s->p != '{' && *s->p != '[')
        return scan_value(s, out, tmp);
    if (++s->depth > TP_JSON_MAX_DEPTH)
        return -1;
    int rc;
    if (*s->p == '{') {
        rc = canon_object(s, out, tmp);
    } else {
        s->p++;
        rc = tp_buf_putc(out, '[') ? -1 : 0;
        ws(s);
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            rc = rc ? rc : (tp_buf_putc(out, ']') ? -1 : 0);
        } else {
            while (!rc) {
                if (canon_value(s, out, tmp)) {
                    rc = -1;
                    break;
                }
                ws(s);
                if (s->p >= s->end) {
                    rc = -1;
                    break;
                }
                unsigned char c = *s->p++;
                if (tp_buf_putc(out, (char)c) || (c != ',' && c != ']'))
                    rc = -1;
                else if (c == ']')
                    break;
            }
        }
    }
    s->depth--;
    return rc;
}

int tp__json_scan_canonical(const char *text, size_t len, struct tp_buf *out)
{
    struct scan s = {(const unsigned char *)text, (const unsigned char *)text + len, 0, 0, 0, NULL};
    struct tp_buf tmp;
    size_t mark = out->len;
    tp_buf_init(&tmp);
    int rc = canon_value(&s, out, &tmp);
    tp_buf_free(&tmp);
    if (rc == 0) {
        ws(&s);
        if (s.p == s.end)
            return TP_OK;
    }
    out->len = mark;
    if (out->data)
        out->data[mark] = '\0';
    return TP_PARSE;
}
