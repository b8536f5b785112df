/* NATS protocol codec (codec.h): server operations are read from a byte
 * buffer without copying (the frame points into it), client operations are
 * appended to a tp_buf. Protocol words are case-insensitive, lines end with
 * CRLF (a bare LF is accepted); payload sizes are checked against the bytes
 * that follow and must be followed by CRLF. */
#include "io/nats/codec.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"

/* Copies up to 60 bytes of s into dst as printable text for messages. */
static void quote(char *dst, size_t size, const char *s, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && i < 60 && j + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= ' ' && c < 0x7f && c != '"' && c != '\\')
            dst[j++] = (char)c;
        else
            j += (size_t)snprintf(dst + j, size - j, "\\x%02x", c);
    }
    if (n > 60 && j + 4 < size)
        dst[j++] = '.', dst[j++] = '.', dst[j++] = '.';
    dst[j] = '\0';
}

static int bad_line(const char *line, size_t n, const char *what, char *why, size_t why_len)
{
    char q[300];
    quote(q, sizeof(q), line, n);
    snprintf(why, why_len, "%s: \"%s\"", what, q);
    return TP_PARSE;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* The first space or tab of p[0..end), or end: 8 bytes at a time. */
static const char *word_end(const char *p, const char *end)
{
    for (; end - p >= 8; p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t hit = tp_nats_byte_is(w, ' ') | tp_nats_byte_is(w, '\t');
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (hit) /* the lowest flagged byte is exact, and the first in memory */
            return p + (__builtin_ctzll(hit) >> 3);
#else
        if (hit)
            break;
#endif
    }
    while (p < end && !is_space(*p))
        p++;
    return p;
}

/* Digits only, at most TP_NATS_MAX_PAYLOAD (sizes) or UINT64 (sids). */
static int parse_uint(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (i >= 19 && v > (UINT64_MAX - d) / 10) /* 19 digits cannot overflow */
            return 0;
        v = v * 10 + d;
    }
    if (v > max)
        return 0;
    *out = v;
    return 1;
}

/* MSG / HMSG arguments after the op word: [subject, sid, reply?, sizes...]. */
static int decode_msg(const char *buf, size_t len, const char *line, size_t line_len,
                      size_t word_len, size_t after_line, int with_hdr, struct tp_nats_frame *f,
                      size_t *used, char *why, size_t why_len)
{
    const char *tok[6];
    size_t tl[6], n = 0;
    const char *p = line + word_len, *end = line + line_len;
    while (p < end) {
        while (p < end && is_space(*p))
            p++;
        if (p == end)
            break;
        if (n == 6)
            return bad_line(line, line_len, "too many arguments", why, why_len);
        tok[n] = p;
        p = word_end(p, end);
        tl[n] = (size_t)(p - tok[n]);
        n++;
    }
    size_t want = with_hdr ? 4 : 3;
    if (n != want && n != want + 1)
        return bad_line(line, line_len,
                        with_hdr ? "HMSG needs subject, sid, [reply,] header and total size"
                                 : "MSG needs subject, sid, [reply,] size",
                        why, why_len);
    uint64_t sid, hdr = 0, total;
    if (!parse_uint(tok[1], tl[1], UINT64_MAX, &sid))
        return bad_line(line, line_len, "invalid subscription id", why, why_len);
    if (!parse_uint(tok[n - 1], tl[n - 1], TP_NATS_MAX_PAYLOAD, &total) ||
        (with_hdr && !parse_uint(tok[n - 2], tl[n - 2], TP_NATS_MAX_PAYLOAD, &hdr)))
        return bad_line(line, line_len, "invalid or too large size", why, why_len);
    if (hdr > total)
        return bad_line(line, line_len, "header size larger than the total size", why, why_len);
    if (len - after_line < total + 2)
        return TP_AGAIN;
    const char *data = buf + after_line;
    if (data[total] != '\r' || data[total + 1] != '\n')
        return bad_line(line, line_len, "message not followed by CRLF after its size", why,
                        why_len);
    int has_reply = n == want + 1;
    f->op = TP_NATS_MSG;
    f->subject = tok[0];
    f->subject_len = tl[0];
    f->sid = sid;
    f->reply = has_reply ? tok[2] : NULL;
    f->reply_len = has_reply ? tl[2] : 0;
    f->hdr = with_hdr ? data : NULL;
    f->hdr_len = (size_t)hdr;
    f->payload = data + hdr;
    f->payload_len = (size_t)(total - hdr);
    *used = after_line + (size_t)total + 2;
    return TP_OK;
}

/* w[0..n) is op (upper case letters, '+', '-'), letters in any case. */
static int word_is(const char *w, size_t n, const char *op)
{
    size_t i = 0;
    for (; i < n && op[i]; i++)
        if (w[i] != op[i] && (op[i] < 'A' || op[i] > 'Z' || w[i] != op[i] + ('a' - 'A')))
            return 0;
    return i == n && !op[i];
}

int tp_nats_decode(const char *buf, size_t len, struct tp_nats_frame *f, size_t *used, char *why,
                   size_t why_len)
{
    size_t scan = len < TP_NATS_MAX_LINE + 2 ? len : TP_NATS_MAX_LINE + 2;
    const char *nl = scan ? memchr(buf, '\n', scan) : NULL;
    if (!nl) {
        if (len >= TP_NATS_MAX_LINE + 2)
            return bad_line(buf, len, "protocol line longer than 4096 bytes", why, why_len);
        return TP_AGAIN;
    }
    size_t line_len = (size_t)(nl - buf), after = line_len + 1;
    if (line_len && buf[line_len - 1] == '\r')
        line_len--;
    const char *line = buf;
    size_t wl = (size_t)(word_end(line, line + line_len) - line);
    memset(f, 0, sizeof(*f));
    if (word_is(line, wl, "HMSG"))
        return decode_msg(buf, len, line, line_len, wl, after, 1, f, used, why, why_len);
    if (word_is(line, wl, "MSG"))
        return decode_msg(buf, len, line, line_len, wl, after, 0, f, used, why, why_len);
    const char *rest = line + wl, *rest_end = line + line_len;
    while (rest < rest_end && is_space(*rest))
        rest++;
    while (rest_end > rest && is_space(rest_end[-1]))
        rest_end--;
    int no_args = rest == rest_end;
    if (word_is(line, wl, "PING") && no_args)
        f->op = TP_NATS_PING;
    else if (word_is(line, wl, "PONG") && no_args)
        f->op = TP_NATS_PONG;
    else if (word_is(line, wl, "+OK") && no_args)
        f->op = TP_NATS_OK;
    else if (word_is(line, wl, "INFO") && rest < rest_end && *rest == '{')
        f->op = TP_NATS_INFO;
    else if (word_is(line, wl, "-ERR")) {
        f->op = TP_NATS_ERR;
        if (rest_end - rest >= 2 && *rest == '\'' && rest_end[-1] == '\'')
            rest++, rest_end--;
    } else
        return bad_line(line, line_len, "not a NATS protocol line", why, why_len);
    f->text = rest;
    f->text_len = (size_t)(rest_end - rest);
    *used = after;
    return TP_OK;
}

/* ---------- encoding ---------- */

char *tp_nats_write_uint(char *p, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(p, tmp + i, sizeof(tmp) - i);
    return p + sizeof(tmp) - i;
}

int tp_nats_put_uint(struct tp_buf *out, uint64_t v)
{
    if (tp_buf_reserve(out, 20))
        return TP_NOMEM;
    out->len = (size_t)(tp_nats_write_uint(out->data + out->len, v) - out->data);
    out->data[out->len] = '\0';
    return TP_OK;
}

static int put_field(struct tp_buf *out, int *first, const char *key, const char *val)
{
    if (!val)
        return TP_OK;
    int rc = tp_buf_puts(out, *first ? "\"" : ",\"");
    *first = 0;
    rc = rc ? rc : tp_buf_puts(out, key);
    rc = rc ? rc : tp_buf_puts(out, "\":");
    return rc ? rc : tp_json_write_string(out, val, strlen(val));
}

int tp_nats_encode_connect(struct tp_buf *out, const struct tp_nats_connect *c)
{
    int first = 0;
    int rc = tp_buf_puts(out, "CONNECT {\"verbose\":false,\"pedantic\":false,"
                              "\"tls_required\":false,\"lang\":\"C\",\"version\":\"tagproc\","
                              "\"protocol\":1,\"headers\":true,\"no_responders\":true");
    rc = rc ? rc : put_field(out, &first, "name", c->name);
    rc = rc ? rc : put_field(out, &first, "user", c->user);
    rc = rc ? rc : put_field(out, &first, "pass", c->pass);
    rc = rc ? rc : put_field(out, &first, "auth_token", c->token);
    return rc ? rc : tp_buf_puts(out, "}\r\n");
}

int tp_nats_encode_pub(struct tp_buf *out, const char *subject, size_t subject_len,
                       const char *reply, size_t reply_len, const char *hdr, size_t hdr_len,
                       const char *payload, size_t payload_len)
{
    /* per message on the output's and the acks' path: one reservation */
    if (tp_buf_reserve(out, subject_len + reply_len + hdr_len + payload_len + 56))
        return TP_NOMEM;
    char *p = out->data + out->len;
    memcpy(p, hdr_len ? "HPUB " : "PUB ", hdr_len ? 5 : 4);
    p += hdr_len ? 5 : 4;
    memcpy(p, subject, subject_len);
    p += subject_len;
    *p++ = ' ';
    if (reply) {
        memcpy(p, reply, reply_len);
        p += reply_len;
        *p++ = ' ';
    }
    if (hdr_len) {
        p = tp_nats_write_uint(p, hdr_len);
        *p++ = ' ';
    }
    p = tp_nats_write_uint(p, hdr_len + payload_len);
    *p++ = '\r';
    *p++ = '\n';
    if (hdr_len)
        memcpy(p, hdr, hdr_len);
    p += hdr_len;
    if (payload_len)
        memcpy(p, payload, payload_len);
    p += payload_len;
    *p++ = '\r';
    *p++ = '\n';
    *p = '\0';
    out->len = (size_t)(p - out->data);
    return TP_OK;
}

int tp_nats_encode_sub(struct tp_buf *out, const char *subject, const char *queue, uint64_t sid)
{
    int rc = tp_buf_puts(out, "SUB ");
    rc = rc ? rc : tp_buf_puts(out, subject);
    if (!rc && queue) {
        rc = tp_buf_putc(out, ' ');
        rc = rc ? rc : tp_buf_puts(out, queue);
    }
    rc = rc ? rc : tp_buf_putc(out, ' ');
    rc = rc ? rc : tp_nats_put_uint(out, sid);
    return rc ? rc : tp_buf_append(out, "\r\n", 2);
}

int tp_nats_encode_unsub(struct tp_buf *out, uint64_t sid)
{
    int rc = tp_buf_puts(out, "UNSUB ");
    rc = rc ? rc : tp_nats_put_uint(out, sid);
    return rc ? rc : tp_buf_append(out, "\r\n", 2);
}

/* ---------- JetStream answers ---------- */

int tp_nats_status(const char *hdr, size_t hdr_len, const char **desc, size_t *desc_len)
{
    *desc = "";
    *desc_len = 0;
    if (hdr_len < 12 || memcmp(hdr, "NATS/1.0 ", 9) != 0)
        return 0;
    int code = 0;
    for (size_t i = 9; i < 12; i++) {
        if (hdr[i] < '0' || hdr[i] > '9')
            return 0;
        code = code * 10 + (hdr[i] - '0');
    }
    const char *d = hdr + 12, *end = hdr + hdr_len;
    while (d < end && is_space(*d))
        d++;
    const char *e = d;
    while (e < end && *e != '\r' && *e != '\n')
        e++;
    *desc = d;
    *desc_len = (size_t)(e - d);
    return code;
}

/* 1 for the answer nats-server gives a stored message (without a status
 * header): {"stream":"<name>", "seq":<digits>...} (spaces after the comma
 * and the colon optional) without "error" after the number, found
 * without a JSON scan (per message on the output's path). 0: the general
 * reading decides. */
static int pub_ack_usual(const char *p, size_t len)
{
    static const char head[] = "{\"stream\":\"", seq[] = "\"seq\":";
    const size_t hl = sizeof(head) - 1, sl = sizeof(seq) - 1;
    if (len < hl || memcmp(p, head, hl) != 0)
        return 0;
    const char *end = p + len, *name = p + hl;
    const char *q = memchr(name, '"', (size_t)(end - name));
    if (!q || memchr(name, '\\', (size_t)(q - name)))
        return 0;
    const char *s = q + 1;
    if (s == end || *s++ != ',')
        return 0;
    while (s < end && *s == ' ')
        s++;
    if ((size_t)(end - s) <= sl || memcmp(s, seq, sl) != 0)
        return 0;
    for (s += sl; s < end && *s == ' ';)
        s++;
    if (s == end || *s < '0' || *s > '9')
        return 0;
    while (s < end && *s >= '0' && *s <= '9')
        s++;
    return memmem(s, (size_t)(end - s), "\"error\"", 7) == NULL; /* usually "}" is left */
}

int tp_nats_pub_ack_ok(const char *hdr, size_t hdr_len, const char *payload, size_t len, char *why,
                       size_t why_len)
{
    if (!hdr_len && pub_ack_usual(payload, len))
        return 1;
    const char *desc, *v, *text, *code;
    size_t dl, vl, tl, cl;
    int status = tp_nats_status(hdr, hdr_len, &desc, &dl);
    if (status == 503) {
        snprintf(why, why_len, "no JetStream stream stores the subject (no responders)");
        return 0;
    }
    if (status && len == 0) {
        snprintf(why, why_len, "status %d %.*s", status, (int)(dl > 100 ? 100 : dl), desc);
        return 0;
    }
    if (tp_json_object_member(payload, len, "error", &v, &vl)) {
        if (!tp_json_object_member(v, vl, "description", &text, &tl) || tl < 2)
            text = "\"\"", tl = 2;
        if (!tp_json_object_member(v, vl, "err_code", &code, &cl) &&
            !tp_json_object_member(v, vl, "code", &code, &cl))
            code = "?", cl = 1;
        snprintf(why, why_len, "%.*s (code %.*s)", (int)(tl - 2 > 200 ? 200 : tl - 2), text + 1,
                 (int)(cl > 20 ? 20 : cl), code);
        return 0;
    }
    if (tp_json_object_member(payload, len, "seq", &v, &vl))
        return 1;
    char q[300];
    quote(q, sizeof(q), payload, len);
    snprintf(why, why_len, "unexpected PubAck \"%s\"", q);
    return 0;
}

int tp_nats_js_ack_parse(const char *reply, size_t len, struct tp_nats_js_meta *md)
{
    const char *tok[12];
    size_t tl[12], n = 0;
    if (!reply || len < 8 || memcmp(reply, "$JS.ACK.", 8) != 0)
        return 0;
    const char *end = reply + len;
    for (const char *t = reply + 8;;) {
        const char *dot = memchr(t, '.', (size_t)(end - t)), *p = dot ? dot : end;
        if (n == 12)
            return 0;
        tok[n] = t;
        tl[n++] = (size_t)(p - t);
        if (!dot)
            break;
        t = dot + 1;
    }
    size_t base = n == 7 ? 0 : n >= 9 ? 2 : SIZE_MAX; /* stream token */
    if (base == SIZE_MAX)
        return 0;
    *md = (struct tp_nats_js_meta){tok[base], tok[base + 2], tok[base + 3],
                                   tl[base],  tl[base + 2],  tl[base + 3]};
    return 1;
}
