/* The JSON module's public API (json.h) and its yajl reference path. Decoding
 * tries the hand-written scanner (json_scan.c) first; whatever it rejects is
 * decoded again here with yajl, which either accepts it (very deep nesting,
 * loose UTF-8) or names the problem and its column. This is the only file that
 * includes yajl. */
#include "core/json.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "core/json_internal.h"

/* Where the current top-level member's value goes. */
enum where { W_NONE, W_PAYLOAD, W_META, W_SKIP };

/* Payload container stack entries (bytes in ctx.stk). */
#define C_OBJ 0x1
#define C_HAS 0x2

struct yctx {
    struct tp_msg *msg;
    int depth; /* open containers, the envelope object included */
    enum where where;
    struct tp_buf pay; /* compact payload text while a container payload is read */
    struct tp_buf stk; /* one byte per open payload container */
    struct tp_buf key; /* current meta key */
    int have_payload;
    char err[256];
};

static int fail(struct yctx *c, const char *msg)
{
    snprintf(c->err, sizeof(c->err), "%s", msg);
    return 0;
}

/* Separator before a value or key inside the payload's current container. */
static int pay_sep(struct yctx *c, int is_key)
{
    unsigned char *top = (unsigned char *)&c->stk.data[c->stk.len - 1];
    if ((*top & C_OBJ) && !is_key)
        return 0; /* the key already wrote "k": */
    int has = *top & C_HAS;
    *top |= C_HAS;
    return has ? tp_buf_putc(&c->pay, ',') : 0;
}

/* Top-level member values and meta values; other values are ignored. */
static int y_scalar(struct yctx *c, const char *text, size_t n, int is_string)
{
    if (c->depth == 0)
        return fail(c, "line is not a JSON object");
    if (c->depth == 1) {
        enum where w = c->where;
        c->where = W_NONE;
        if (w == W_META)
            return fail(c, "meta is not an object");
        if (w != W_PAYLOAD)
            return 1;
        if (tp_msg_set_payload(c->msg, text, n))
            return fail(c, "out of memory");
        c->have_payload = 1;
        if (is_string)
            tp__json_flag_string_payload(c->msg);
        else
            c->msg->flags |= TP_MSG_PAYLOAD_JSON;
        return 1;
    }
    if (c->where == W_META) {
        if (!is_string) {
            snprintf(c->err, sizeof(c->err), "meta value for \"%.200s\" is not a string",
                     c->key.data ? c->key.data : "");
            return 0;
        }
        if (tp_msg_meta_append(c->msg, c->key.data, c->key.len, text, n))
            return fail(c, "out of memory");
        return 1;
    }
    if (c->where == W_PAYLOAD) {
        int rc = pay_sep(c, 0);
        if (!rc)
            rc = is_string ? tp_json_write_string(&c->pay, text, n)
                           : tp_buf_append(&c->pay, text, n);
        return rc ? fail(c, "out of memory") : 1;
    }
    return 1;
}

static int y_null(void *ctx)
{
    return y_scalar(ctx, "null", 4, 0);
}

static int y_boolean(void *ctx, int b)
{
    return y_scalar(ctx, b ? "true" : "false", b ? 4 : 5, 0);
}

static int y_number(void *ctx, const char *s, size_t n)
{
    return y_scalar(ctx, s, n, 0);
}

static int y_string(void *ctx, const unsigned char *s, size_t n)
{
    return y_scalar(ctx, (const char *)s, n, 1);
}

static int y_start(struct yctx *c, int is_obj)
{
    if (c->depth == 0) {
        if (!is_obj)
            return fail(c, "line is not a JSON object");
        c->depth = 1;
        return 1;
    }
    if (c->where == W_META) {
        if (c->depth != 1 || !is_obj) {
            if (c->depth == 1)
                return fail(c, "meta is not an object");
            snprintf(c->err, sizeof(c->err), "meta value for \"%.200s\" is not a string",
                     c->key.data ? c->key.data : "");
            return 0;
        }
    } else if (c->where == W_PAYLOAD) {
        int rc = 0;
        if (c->depth == 1)
            tp_buf_reset(&c->pay);
        else
            rc = pay_sep(c, 0);
        if (rc || tp_buf_putc(&c->pay, is_obj ? '{' : '[') ||
            tp_buf_putc(&c->stk, (char)(is_obj ? C_OBJ : 0)))
            return fail(c, "out of memory");
    }
    c->depth++;
    return 1;
}

static int y_end(struct yctx *c, int is_obj)
{
    c->depth--;
    if (c->where == W_PAYLOAD) {
        c->stk.len--;
        if (tp_buf_putc(&c->pay, is_obj ? '}' : ']'))
            return fail(c, "out of memory");
        if (c->depth == 1) {
            size_t n;
            char *data = tp_buf_take(&c->pay, &n);
            if (!data)
                return fail(c, "out of memory");
            tp_msg_take_payload(c->msg, data, n);
            c->msg->flags |= TP_MSG_PAYLOAD_JSON;
            c->have_payload = 1;
        }
    }
    if (c->depth == 1)
        c->where = W_NONE;
    return 1;
}

static int y_start_map(void *ctx)
{
    return y_start(ctx, 1);
}

static int y_end_map(void *ctx)
{
    return y_end(ctx, 1);
}

static int y_start_array(void *ctx)
{
    return y_start(ctx, 0);
}

static int y_end_array(void *ctx)
{
    return y_end(ctx, 0);
}

static int y_map_key(void *ctx, const unsigned char *s, size_t n)
{
    struct yctx *c = ctx;
    const char *k = (const char *)s;
    if (c->depth == 1) {
        if (n == 7 && memcmp(k, "payload", 7) == 0)
            c->where = W_PAYLOAD;
        else if (n == 4 && memcmp(k, "meta", 4) == 0)
            c->where = W_META;
        else
            c->where = W_SKIP;
        return 1;
    }
    int rc = 0;
    if (c->where == W_META && c->depth == 2) {
        tp_buf_reset(&c->key);
        rc = tp_buf_append(&c->key, k, n);
    } else if (c->where == W_PAYLOAD) {
        rc = pay_sep(c, 1) || tp_json_write_string(&c->pay, k, n) || tp_buf_putc(&c->pay, ':');
    }
    return rc ? fail(c, "out of memory") : 1;
}

static const yajl_callbacks envelope_callbacks = {
    y_null,      y_boolean, NULL,      NULL,          y_number,    y_string,
    y_start_map, y_map_key, y_end_map, y_start_array, y_end_array,
};

/* Runs yajl over text; on failure fills err with "<problem> at column N". */
static int yajl_run(const yajl_callbacks *cb, void *ctx, const char *cerr, const char *text,
                    size_t len, struct tp_error *err)
{
    yajl_handle h = yajl_alloc(cb, NULL, ctx);
    if (!h)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    size_t col;
    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
        col = len + 1;
    } else {
        col = yajl_get_bytes_consumed(h) + 1;
    }
    int rc = TP_OK;
    if (st != yajl_status_ok) {
        char what[256];
        if (cerr && cerr[0]) {
            snprintf(what, sizeof(what), "%s", cerr);
        } else {
            unsigned char *e = yajl_get_error(h, 0, NULL, 0);
            snprintf(what, sizeof(what), "%s", e ? (const char *)e : "invalid JSON");
            if (e)
                yajl_free_error(h, e);
            size_t n = strlen(what);
            while (n && (what[n - 1] == '\n' || what[n - 1] == ' ' || what[n - 1] == '.'))
                what[--n] = '\0';
        }
        rc = tp_error_set_at(err, TP_PARSE, NULL, 1, (int)col, "%s at column %zu", what, col);
    }
    yajl_free(h);
    return rc;
}

int tp__json_decode_envelope_yajl(const char *line, size_t len, struct tp_msg *msg,
                                  struct tp_error *err)
{
    struct yctx c;
    memset(&c, 0, sizeof(c));
    c.msg = msg;
    tp_buf_init(&c.pay);
    tp_buf_init(&c.stk);
    tp_buf_init(&c.key);
    int rc = yajl_run(&envelope_callbacks, &c, c.err, line, len, err);
    if (rc == TP_OK && !c.have_payload)
        msg->flags |= TP_MSG_PAYLOAD_NOTJSON; /* missing payload: empty bytes */
    tp_buf_free(&c.pay);
    tp_buf_free(&c.stk);
    tp_buf_free(&c.key);
    return rc;
}

int tp_json_decode_envelope(const char *line, size_t len, struct tp_msg *msg,
                            uint32_t max_meta_keys, struct tp_error *err)
{
    int rc = tp__json_scan_envelope(line, len, msg, err);
    if (rc == -1) {
        /* Rejected or undecided: start again from a clean message with yajl,
         * under the same Unicode rule (yajl alone is looser). */
        tp_msg_meta_clear(msg);
        if (tp_msg_set_payload(msg, "", 0))
            return tp_error_set(err, TP_NOMEM, "out of memory");
        rc = tp__json_decode_envelope_yajl(line, len, msg, err);
        size_t bad = rc == TP_OK ? tp__json_find_not_utf8(line, len) : SIZE_MAX;
        if (bad != SIZE_MAX)
            rc = tp__json_not_utf8_error(err, bad);
    }
    if (rc != TP_OK)
        return rc;
    if (msg->n_meta > max_meta_keys)
        return tp_error_set(err, TP_PARSE, "meta has %u keys, more than max_meta_keys (%u)",
                            msg->n_meta, max_meta_keys);
    return tp_msg_meta_dedupe(msg) ? tp_error_set(err, TP_NOMEM, "out of memory") : TP_OK;
}

int tp_json_is_valid(const char *s, size_t len)
{
    int r = tp__json_scan_valid(s, len);
    if (r >= 0)
        return r;
    return yajl_run(NULL, NULL, NULL, s, len, NULL) == TP_OK;
}

int tp_json_canonical(const char *s, size_t len, struct tp_buf *out)
{
    return tp__json_scan_canonical(s, len, out);
}

/* tp_buf_putc without the call when there is room. */
static inline int put1(struct tp_buf *b, char c)
{
    if (b->len + 1 < b->cap) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return tp_buf_putc(b, c);
}

int tp_json_encode_envelope(const struct tp_msg *m, struct tp_buf *out)
{
    size_t tlen;
    const char *topic = tp_msg_meta_get(m, "umh_topic", &tlen);
    if (tp_buf_reserve(out, m->payload_len + m->strs_len + 4u * m->n_meta + tlen * !!topic + 40))
        return TP_NOMEM;
    int rc = tp_buf_putc(out, '{');
    if (topic)
        rc = rc || tp_buf_append(out, "\"topic\":", 8) || tp_json_write_string(out, topic, tlen) ||
             tp_buf_putc(out, ',');
    rc = rc || tp_buf_append(out, "\"payload\":", 10);
    const char *p = m->payload;
    size_t n = m->payload_len;
    int is_json;
    if (m->flags & TP_MSG_PAYLOAD_JSON)
        is_json = 1;
    else if (m->flags & TP_MSG_PAYLOAD_NOTJSON)
        is_json = 0;
    else
        is_json = tp_json_is_valid(p, n);
    if (is_json) {
        while (n && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
            p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n' || p[n - 1] == '\r'))
            n--;
        /* a line must stay one line: white space inside is dropped */
        if (memchr(p, '\n', n) || memchr(p, '\r', n))
            rc = rc || tp__json_minify(p, n, out);
        else
            rc = rc || tp_buf_append(out, p, n);
    } else {
        rc = rc || tp_json_write_string(out, p, n);
    }
    rc = rc || tp_buf_append(out, ",\"meta\":{", 9);
    for (uint32_t i = 0; i < m->n_meta && !rc; i++) {
        const struct tp_meta *e = &m->meta[i];
        rc = (i && put1(out, ',')) || tp_json_write_string(out, m->strs + e->key_off, e->key_len) ||
             put1(out, ':') || tp_json_write_string(out, m->strs + e->val_off, e->val_len);
    }
    rc = rc || tp_buf_append(out, "}}", 2);
    return rc ? TP_NOMEM : TP_OK;
}
