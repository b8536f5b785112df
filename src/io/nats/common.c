/* Helpers shared by the NATS input and output: connecting (the first time
 * must succeed; client.c reconnects forever), JetStream API calls and
 * stream creation, the subject checks, the metadata -> header filter and
 * the header block encoder. */
#include "io/nats/internal.h"

#include <ctype.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"

/* ---------- subject ---------- */

int tp__nats_subject_render(const struct tp_template *t, const struct tp_msg *m, struct tp_buf *out,
                            char *why, size_t size)
{
    const char *missing = NULL;
    if (tp_template_render(t, m, out, &missing))
        return TP_NOMEM;
    if (missing) {
        snprintf(why, size, "metadata \"%s\" is missing", missing);
        return TP_INVAL;
    }
    const char *s = out->data ? out->data : "";
    if (!*s) {
        snprintf(why, size, "subject is empty");
        return TP_INVAL;
    }
    const char *tok = s;
    for (const char *c = s;; c++) {
        if (*c == '.' || *c == '\0') {
            size_t n = (size_t)(c - tok);
            if (n == 0) {
                snprintf(why, size, "subject \"%.200s\" has an empty token", s);
                return TP_INVAL;
            }
            if (n == 1 && (*tok == '*' || *tok == '>')) {
                snprintf(why, size, "subject \"%.200s\" contains a wildcard", s);
                return TP_INVAL;
            }
            if (*c == '\0')
                break;
            tok = c + 1;
        } else if ((unsigned char)*c <= ' ' || *c == 0x7f) {
            snprintf(why, size, "subject \"%.200s\" contains white space or a control character",
                     s);
            return TP_INVAL;
        }
    }
    return TP_OK;
}

/* A header name: printable ASCII (0x21-0x7e) without ':'. */
static uint64_t bad_key_bytes(uint64_t w)
{
    return tp_nats_byte_below(w, 0x21) | tp_nats_byte_above(w, 0x7e) | tp_nats_byte_is(w, ':');
}
/* A header value: no CR or LF. */
static uint64_t bad_value_bytes(uint64_t w)
{
    if (!tp_nats_byte_below(w, '\r' + 1)) /* the usual case: no control byte up to CR */
        return 0;
    return tp_nats_byte_is(w, '\r') | tp_nats_byte_is(w, '\n');
}

/* 1 when bad(word) is 0 for every byte of s[0..n): whole words, then the
 * last 8 bytes again (overlapping), or short strings padded with pad (a
 * byte bad() accepts). */
static int bytes_ok(const char *s, size_t n, uint64_t (*bad)(uint64_t), char pad)
{
    uint64_t w;
    if (n < 8) {
        char tmp[8];
        memset(tmp, pad, 8);
        memcpy(tmp, s, n);
        memcpy(&w, tmp, 8);
        return !bad(w);
    }
    for (size_t i = 0; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        if (bad(w))
            return 0;
    }
    memcpy(&w, s + n - 8, 8);
    return !bad(w);
}

/* tp__nats_header_ok with the lengths known (the output's path, per entry). */
static int header_ok_n(const char *key, size_t klen, const char *val, size_t vlen)
{
    if (!klen)
        return 0;
    if (klen >= 5 && (key[0] | 0x20) == 'n' && (key[1] | 0x20) == 'a' && (key[2] | 0x20) == 't' &&
        (key[3] | 0x20) == 's' && (key[4] == '_' || key[4] == '-'))
        return 0; /* nats_* (ours), Nats-* (the server's), any case */
    return bytes_ok(key, klen, bad_key_bytes, 'a') && bytes_ok(val, vlen, bad_value_bytes, ' ');
}

int tp__nats_header_ok(const char *key, const char *val)
{
    return header_ok_n(key, strlen(key), val, strlen(val));
}

/* Writes "key: value\r\n" at p; returns the end. */
static char *put_header(char *p, const char *k, size_t kl, const char *v, size_t vl)
{
    memcpy(p, k, kl);
    p += kl;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, v, vl);
    p += vl;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

int tp__nats_headers_encode(const struct tp_msg *m, int with_meta, const char *const *extra,
                            struct tp_buf *out)
{
    size_t most = 12; /* "NATS/1.0\r\n" ... "\r\n": room for every line, one reservation */
    for (uint32_t j = 0; with_meta && j < m->n_meta; j++)
        most += (size_t)m->meta[j].key_len + m->meta[j].val_len + 4;
    for (size_t j = 0; extra && extra[j]; j += 2)
        most += strlen(extra[j]) + strlen(extra[j + 1]) + 4;
    if (tp_buf_reserve(out, most))
        return TP_NOMEM;
    char *start = out->data + out->len, *p = start + 10;
    for (uint32_t j = 0; with_meta && j < m->n_meta; j++) {
        const struct tp_meta *e = &m->meta[j];
        const char *k = m->strs + e->key_off, *v = m->strs + e->val_off;
        if (header_ok_n(k, e->key_len, v, e->val_len))
            p = put_header(p, k, e->key_len, v, e->val_len);
    }
    for (size_t j = 0; extra && extra[j]; j += 2)
        p = put_header(p, extra[j], strlen(extra[j]), extra[j + 1], strlen(extra[j + 1]));
    if (p == start + 10) { /* no header: no block */
        *start = '\0';
        return TP_OK;
    }
    memcpy(start, "NATS/1.0\r\n", 10);
    *p++ = '\r';
    *p++ = '\n';
    *p = '\0';
    out->len = (size_t)(p - out->data);
    return TP_OK;
}

/* ---------- connection ---------- */

int tp__nats_conn_open(struct tp__nats_conn *conn, const struct tp__nats_conn_config *cfg,
                       const char *label, struct tp_error *err)
{
    static unsigned counter;
    if (cfg->urls.n == 0)
        return tp_error_set(err, TP_CONFIG, "%s.urls: expected at least one URL", label);
    conn->servers = calloc(cfg->urls.n, sizeof(*conn->servers));
    if (!conn->servers)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    tp_nats_client_init(&conn->c, &(struct tp_nats_client_opts){0}); /* no socket yet */
    for (size_t i = 0; i < cfg->urls.n; i++) {
        char why[400];
        if (tp_nats_url_parse(cfg->urls.v[i], &conn->servers[i], why, sizeof(why)))
            return tp_error_set(err, TP_CONFIG, "%s.urls[%zu]: %s", label, i, why);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(conn->inbox, sizeof(conn->inbox), "_INBOX.%lx%lx%x%x", (unsigned long)ts.tv_sec,
             (unsigned long)ts.tv_nsec, (unsigned)getpid(),
             __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    struct tp_nats_client_opts o = {
        .who = label,
        .servers = conn->servers,
        .n_servers = cfg->urls.n,
        .name = cfg->name,
        .user = cfg->user,
        .pass = cfg->password,
        .token = cfg->token,
        .reconnect_wait_ms = (uint64_t)cfg->reconnect_wait_ms,
        .connect_timeout_ms = cfg->connect_timeout_ms > 0 ? (int)cfg->connect_timeout_ms : 2000,
    };
    tp_nats_client_init(&conn->c, &o);
    if (tp_nats_client_connect(&conn->c, -1) != TP_OK)
        return tp_error_set(err, TP_IO, "%s: cannot connect to %s: %s", label,
                            conn->servers[conn->c.server].url, conn->c.why);
    return TP_OK;
}

void tp__nats_conn_free(struct tp__nats_conn *conn)
{
    if (conn->servers)
        tp_nats_client_free(&conn->c);
    free(conn->servers);
    conn->servers = NULL;
}

/* ---------- JetStream API ---------- */

int tp__nats_js_api(struct tp__nats_conn *conn, const char *api, const char *payload,
                    struct tp_buf *out, int *error_code, char *why, size_t why_len)
{
    char subject[512], inbox[80];
    snprintf(subject, sizeof(subject), "$JS.API.%s", api);
    snprintf(inbox, sizeof(inbox), "%s.api", conn->inbox);
    int status = 0;
    *error_code = 0;
    if (tp_nats_client_request(&conn->c, subject, payload, inbox, 1000000, 5000, out, &status, why,
                               why_len))
        return TP_IO;
    if (status == 503) {
        snprintf(why, why_len, "no JetStream answers (is JetStream enabled on the server?)");
        return TP_IO;
    }
    const char *e, *v;
    size_t el, vl;
    if (!out->len || !tp_json_object_member(out->data, out->len, "error", &e, &el))
        return TP_OK;
    *error_code = -1;
    if (tp_json_object_member(e, el, "code", &v, &vl))
        *error_code = atoi(v);
    if (!tp_json_object_member(e, el, "description", &v, &vl) || vl < 2)
        v = "\"\"", vl = 2;
    const char *c = "?";
    size_t cl = 1;
    if (!tp_json_object_member(e, el, "err_code", &c, &cl))
        c = "?", cl = 1;
    snprintf(why, why_len, "%.*s (code %.*s)", (int)(vl - 2 > 200 ? 200 : vl - 2), v + 1,
             (int)(cl > 20 ? 20 : cl), c);
    return TP_OK;
}

int tp__nats_ensure_stream(struct tp__nats_conn *conn, const char *name,
                           const struct tp_strlist *subjects, const char *storage,
                           struct tp_error *err)
{
    char api[300], why[300];
    struct tp_buf out, req;
    tp_buf_init(&out);
    tp_buf_init(&req);
    int code = 0, rc;
    snprintf(api, sizeof(api), "STREAM.INFO.%s", name);
    rc = tp__nats_js_api(conn, api, "", &out, &code, why, sizeof(why));
    if (rc || (code && code != 404)) {
        rc = tp_error_set(err, TP_IO, "JetStream stream %s: cannot look it up: %s", name, why);
        goto done;
    }
    if (code == 0)
        goto done;
    rc = tp_buf_puts(&req, "{\"name\":");
    rc = rc ? rc : tp_json_write_string(&req, name, strlen(name));
    rc = rc ? rc : tp_buf_puts(&req, ",\"subjects\":[");
    for (size_t i = 0; !rc && i < subjects->n; i++) {
        rc = i ? tp_buf_putc(&req, ',') : TP_OK;
        rc = rc ? rc : tp_json_write_string(&req, subjects->v[i], strlen(subjects->v[i]));
    }
    rc = rc ? rc
            : tp_buf_printf(&req, "],\"storage\":\"%s\"}",
                            storage && strcmp(storage, "memory") == 0 ? "memory" : "file");
    if (rc) {
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
        goto done;
    }
    snprintf(api, sizeof(api), "STREAM.CREATE.%s", name);
    rc = tp__nats_js_api(conn, api, req.data, &out, &code, why, sizeof(why));
    if (rc || code) {
        int again = 0;
        snprintf(api, sizeof(api), "STREAM.INFO.%s", name);
        char why2[300];
        if (tp__nats_js_api(conn, api, "", &out, &again, why2, sizeof(why2)) == TP_OK && !again) {
            rc = TP_OK; /* another process created it at the same moment */
            goto done;
        }
        rc = tp_error_set(err, TP_IO, "JetStream stream %s: cannot create it: %s", name, why);
        goto done;
    }
    tp_log(TP_LOG_INFO, "created JetStream stream %s", name);
done:
    tp_buf_free(&out);
    tp_buf_free(&req);
    return rc;
}
