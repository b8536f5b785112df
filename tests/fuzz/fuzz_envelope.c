/* Fuzz target and property test for the JSON Lines envelope codec (json.h):
 * decode the input; when it decodes, the encoded line must be one valid JSON
 * line that decodes to the same metadata and to the payload the spec promises
 * (text, e.g. a payload that arrived as a JSON string, unchanged byte for byte;
 * JSON kept with its own text minus white space; a JSON string literal
 * unwrapped). The expectations are computed by small
 * independent helpers here, not by the codec. Any mismatch aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *a, size_t an, const char *b, size_t bn)
{
    fprintf(stderr, "fuzz_envelope: property violated: %s\n", what);
    if (a)
        fprintf(stderr, "  expected (%zu bytes): %.*s\n", an, (int)(an > 2000 ? 2000 : an), a);
    if (b)
        fprintf(stderr, "  got      (%zu bytes): %.*s\n", bn, (int)(bn > 2000 ? 2000 : bn), b);
    abort();
}

static void check(int ok, const char *what)
{
    if (!ok)
        fail(what, NULL, 0, NULL, 0);
}

static void expect_bytes(const char *what, const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn || memcmp(a, b, an) != 0)
        fail(what, a, an, b, bn);
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_strict(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        if ((size_t)(end - p) <= k)
            return 0;
        for (size_t i = 1; i <= k; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += k + 1;
    }
    return 1;
}

/* Valid JSON text without the white space outside strings. */
static void minify(const char *s, size_t n, struct tp_buf *out)
{
    int in_str = 0, esc = 0;
    tp_buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (is_ws((unsigned char)c)) {
            continue;
        }
        check(tp_buf_putc(out, c) == 0, "out of memory");
    }
}

static void put_utf8(struct tp_buf *out, unsigned cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    check(tp_buf_append(out, b, n) == 0, "out of memory");
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* Contents of the valid JSON string literal s[0..n) ("..." with escapes);
 * lone surrogates become U+FFFD (json.h's decoder does the same). */
static void unescape(const char *s, size_t n, struct tp_buf *out)
{
    tp_buf_reset(out);
    for (size_t i = 1; i + 1 < n; i++) {
        if (s[i] != '\\') {
            check(tp_buf_putc(out, s[i]) == 0, "out of memory");
            continue;
        }
        char e = s[++i];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e != 'u' && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            check(tp_buf_putc(out, map[simple - "\"\\/bfnrt"]) == 0, "out of memory");
            continue;
        }
        unsigned cp = hex4(s + i + 1);
        i += 4;
        if (cp >= 0xd800 && cp <= 0xdbff && i + 6 < n && s[i + 1] == '\\' && s[i + 2] == 'u') {
            unsigned lo = hex4(s + i + 3);
            if (lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
        }
        if (cp >= 0xd800 && cp <= 0xdfff)
            cp = 0xfffd;
        put_utf8(out, cp);
    }
}

#define CANONICAL_MAX_DEPTH 512

/* Deepest container nesting of JSON text s. */
static int max_depth(const char *s, size_t n)
{
    int in_str = 0, esc = 0, d = 0, max = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++d > max)
                max = d;
        } else if (c == ']' || c == '}') {
            d--;
        }
    }
    return max;
}

/* The payload b (decoded from the encoding of a) is what the spec promises for a. */
static void check_payload(const struct tp_msg *a, const struct tp_msg *b, struct tp_buf *t1,
                          struct tp_buf *t2)
{
    const char *p = a->payload;
    size_t n = a->payload_len;
    int valid = tp_json_is_valid(p, n);
    check(!((a->flags & TP_MSG_PAYLOAD_JSON) && (a->flags & TP_MSG_PAYLOAD_NOTJSON)),
          "payload flags exclusive");
    if (a->flags & TP_MSG_PAYLOAD_JSON)
        check(valid, "TP_MSG_PAYLOAD_JSON only on valid JSON");
    /* NOTJSON means "text" (also for valid JSON that arrived as a JSON string) */
    int as_json =
        (a->flags & TP_MSG_PAYLOAD_JSON) || (!(a->flags & TP_MSG_PAYLOAD_NOTJSON) && valid);
    int strict = utf8_strict(p, n);
    if (!strict) { /* invalid bytes are written as U+FFFD: only the result's form is checked */
        check(utf8_strict(b->payload, b->payload_len), "re-decoded payload is UTF-8");
        return;
    }
    if (!as_json) {
        expect_bytes("a text payload survives the round trip byte for byte", p, n, b->payload,
                     b->payload_len);
        check(b->flags & TP_MSG_PAYLOAD_NOTJSON, "a text payload stays text");
        return;
    }
    check(b->flags & TP_MSG_PAYLOAD_JSON || (n && *p == '"'), "a JSON payload stays JSON");
    while (n && is_ws((unsigned char)*p))
        p++, n--;
    while (n && is_ws((unsigned char)p[n - 1]))
        n--;
    if (*p == '"') {
        unescape(p, n, t1);
        expect_bytes("a JSON string payload comes back as its contents", t1->data, t1->len,
                     b->payload, b->payload_len);
        return;
    }
    minify(b->payload, b->payload_len, t1);
    expect_bytes("a JSON payload comes back compact", t1->data, t1->len, b->payload,
                 b->payload_len);
    if (!memchr(p, '\\', n)) {
        minify(p, n, t1);
        expect_bytes("a JSON payload keeps its own text", t1->data, t1->len, b->payload,
                     b->payload_len);
    }
    tp_buf_reset(t1);
    tp_buf_reset(t2);
    int c1 = tp_json_canonical(p, n, t1), c2 = tp_json_canonical(b->payload, b->payload_len, t2);
    if (max_depth(p, n) > CANONICAL_MAX_DEPTH) {
        /* known limit: tp_json_canonical rejects valid JSON nested deeper
         * than the scanner goes (TP_JSON_MAX_DEPTH in json_internal.h) */
        check((c1 == 0) == (c2 == 0), "canonical form of deep JSON: same answer both times");
        if (c1 != 0)
            return;
    }
    check(c1 == 0, "canonical form of a valid payload");
    check(c2 == 0, "canonical form of the result");
    expect_bytes("same JSON value after the round trip", t1->data, t1->len, t2->data, t2->len);
}

/* What a decoded message promises about its metadata: keys and values are
 * strict UTF-8 (the envelope rejects anything else) and no key repeats. */
static void check_decoded_meta(const struct tp_msg *m)
{
    for (uint32_t i = 0; i < m->n_meta; i++) {
        const struct tp_meta *e = &m->meta[i];
        check(utf8_strict(tp_msg_meta_key(m, i), e->key_len), "decoded key is UTF-8");
        check(utf8_strict(tp_msg_meta_val(m, i), e->val_len), "decoded value is UTF-8");
        for (uint32_t j = 0; j < i && m->n_meta <= 256; j++)
            check(e->key_len != m->meta[j].key_len ||
                      memcmp(tp_msg_meta_key(m, i), tp_msg_meta_key(m, j), e->key_len) != 0,
                  "decoded keys are distinct");
    }
}

static void check_meta(const struct tp_msg *a, const struct tp_msg *b)
{
    check_decoded_meta(a);
    check_decoded_meta(b);
    check(a->n_meta == b->n_meta, "same number of metadata entries");
    for (uint32_t i = 0; i < a->n_meta; i++) {
        const struct tp_meta *x = &a->meta[i], *y = &b->meta[i];
        expect_bytes("metadata key", tp_msg_meta_key(a, i), x->key_len, tp_msg_meta_key(b, i),
                     y->key_len);
        expect_bytes("metadata value", tp_msg_meta_val(a, i), x->val_len, tp_msg_meta_val(b, i),
                     y->val_len);
    }
}

/* Encodes m into line and checks it is one valid JSON line. */
static void encode(const struct tp_msg *m, struct tp_buf *line)
{
    tp_buf_reset(line);
    check(tp_json_encode_envelope(m, line) == 0, "encoding succeeds");
    check(line->data && !memchr(line->data, '\n', line->len) &&
              !memchr(line->data, '\r', line->len),
          "encoded envelope is one line");
    check(tp_json_is_valid(line->data, line->len), "encoded envelope is valid JSON");
}

static struct tp_msg *decode(const struct tp_buf *line)
{
    struct tp_msg *m = tp_msg_new();
    check(m != NULL, "out of memory");
    struct tp_error err;
    memset(&err, 0, sizeof(err));
    if (tp_json_decode_envelope(line->data, line->len, m, TP_JSON_MAX_META_KEYS, &err) != 0)
        fail("an encoded envelope decodes", NULL, 0, line->data, line->len);
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tp_msg *m1 = tp_msg_new();
    check(m1 != NULL, "out of memory");
    struct tp_error err;
    memset(&err, 0, sizeof(err));
    if (tp_json_decode_envelope((const char *)data, size, m1, TP_JSON_MAX_META_KEYS, &err) != 0) {
        check(memchr(err.msg, '\0', sizeof(err.msg)) && err.msg[0], "a failure has a message");
        tp_msg_free(m1);
        return 0;
    }
    check(m1->payload && m1->payload[m1->payload_len] == '\0', "payload NUL-terminated");

    struct tp_buf e1, e2, t1, t2;
    tp_buf_init(&e1);
    tp_buf_init(&e2);
    tp_buf_init(&t1);
    tp_buf_init(&t2);
    encode(m1, &e1);
    struct tp_msg *m2 = decode(&e1);
    check_meta(m1, m2);
    check_payload(m1, m2, &t1, &t2);

    /* Second round: the same promises hold for the decoded message. */
    encode(m2, &e2);
    struct tp_msg *m3 = decode(&e2);
    check_meta(m2, m3);
    check_payload(m2, m3, &t1, &t2);

    tp_msg_free(m1);
    tp_msg_free(m2);
    tp_msg_free(m3);
    tp_buf_free(&e1);
    tp_buf_free(&e2);
    tp_buf_free(&t1);
    tp_buf_free(&t2);
    return 0;
}
