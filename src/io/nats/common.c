/* Helpers shared by the NATS input and output: connecting (reconnect forever,
 * log state changes), creating a JetStream stream on request, durations,
 * the subject checks and the metadata -> header filter. */
#include "io/nats/internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

const char *tp__nats_errtext(natsStatus s)
{
    const char *t = nats_GetLastError(NULL);
    return t && *t ? t : natsStatus_GetText(s);
}

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

int tp__nats_header_ok(const char *key, const char *val)
{
    if (!*key || ((*key == 'n' || *key == 'N') &&
                  (strncasecmp(key, "nats_", 5) == 0 || strncasecmp(key, "nats-", 5) == 0)))
        return 0;
    for (const char *c = key; *c; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f || *c == ':')
            return 0;
    for (const char *c = val; *c; c++)
        if (*c == '\r' || *c == '\n')
            return 0;
    return 1;
}

/* libnats spins up to 2000 times on a busy lock before sleeping: on a machine
 * with few cores that burns the CPU the lock holder needs. */
static void open_library(void)
{
    nats_Open(0);
}

/* Opens libnats (once) before its first use. */
static void library_once(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, open_library);
}

int tp__nats_headers_encode(const struct tp_msg *m, int with_meta, const char *const *extra,
                            struct tp_buf *out)
{
    size_t start = out->len;
    int any = 0, rc = TP_OK;
    for (uint32_t j = 0; !rc && with_meta && j < m->n_meta; j++) {
        const char *k = tp_msg_meta_key(m, j), *v = tp_msg_meta_val(m, j);
        if (!tp__nats_header_ok(k, v))
            continue;
        if (!any++)
            rc = tp_buf_append(out, "NATS/1.0\r\n", 10);
        rc = rc ? rc : tp_buf_puts(out, k);
        rc = rc ? rc : tp_buf_append(out, ": ", 2);
        rc = rc ? rc : tp_buf_puts(out, v);
        rc = rc ? rc : tp_buf_append(out, "\r\n", 2);
    }
    for (size_t j = 0; !rc && extra && extra[j]; j += 2) {
        if (!any++)
            rc = tp_buf_append(out, "NATS/1.0\r\n", 10);
        rc = rc ? rc : tp_buf_puts(out, extra[j]);
        rc = rc ? rc : tp_buf_append(out, ": ", 2);
        rc = rc ? rc : tp_buf_puts(out, extra[j + 1]);
        rc = rc ? rc : tp_buf_append(out, "\r\n", 2);
    }
    if (!rc && any)
        rc = tp_buf_append(out, "\r\n", 2);
    if (rc && out->data)
        out->data[out->len = start] = '\0';
    return rc;
}

/* libnats' own constructor of received messages: exported by libnats 3.x
 * (Debian 12: 3.4.1) but not declared in nats.h. natsMsg_Create +
 * natsMsgHeader_Set instead cost a hash map and two allocations per header,
 * about half a microsecond per header and message (docs/nats.md). The unit
 * test test_nats.c checks the headers of such a message read back. */
natsStatus natsMsg_create(natsMsg **newMsg, const char *subject, int subjLen, const char *reply,
                          int replyLen, const char *buf, int bufLen, int hdrLen);

natsStatus tp__nats_msg_create(natsMsg **nm, const char *subject, const char *reply,
                               const char *frame, size_t len, size_t hdr_len)
{
    if (len > INT32_MAX)
        return NATS_INVALID_ARG;
    library_once(); /* natsMsg_Destroy needs it */
    return natsMsg_create(nm, subject, (int)strlen(subject), reply, reply ? (int)strlen(reply) : 0,
                          frame, (int)len, (int)hdr_len);
}

/* ---------- connection ---------- */

static void on_disconnected(natsConnection *nc, void *closure)
{
    if (natsConnection_Status(nc) == NATS_CONN_STATUS_CLOSED)
        return; /* our own close */
    tp_log(TP_LOG_WARN, "%s: disconnected from the NATS server, reconnecting",
           (const char *)closure);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof(url));
    tp_log(TP_LOG_INFO, "%s: reconnected to %s", (const char *)closure, url);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *closure)
{
    (void)nc;
    (void)sub;
    char key[96];
    snprintf(key, sizeof(key), "nats-async-%s-%d", (const char *)closure, (int)s);
    tp_log_limited(TP_LOG_ERROR, key, "%s: asynchronous NATS error: %s", (const char *)closure,
                   natsStatus_GetText(s));
}

int tp__nats_connect(const struct tp__nats_conn_config *cfg, const char *label, natsConnection **nc,
                     struct tp_error *err)
{
    library_once();
    int64_t wait_ms = cfg->reconnect_wait_ms, timeout_ms = cfg->connect_timeout_ms;
    if (cfg->urls.n == 0)
        return tp_error_set(err, TP_CONFIG, "%s.urls: expected at least one URL", label);

    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetServers(opts, (const char **)cfg->urls.v, (int)cfg->urls.n);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, wait_ms);
    if (s == NATS_OK && timeout_ms > 0)
        s = natsOptions_SetTimeout(opts, timeout_ms);
    if (s == NATS_OK && cfg->name)
        s = natsOptions_SetName(opts, cfg->name);
    if (s == NATS_OK && (cfg->user || cfg->password))
        s = natsOptions_SetUserInfo(opts, cfg->user, cfg->password);
    if (s == NATS_OK && cfg->token)
        s = natsOptions_SetToken(opts, cfg->token);
    /* Keep publishes made while disconnected (acks, output) until the reconnect. */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(opts, 64 * 1024 * 1024);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(opts, on_disconnected, (void *)label);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(opts, on_reconnected, (void *)label);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(opts, on_async_error, (void *)label);
    if (s != NATS_OK) {
        int rc = tp_error_set(err, TP_CONFIG, "%s: invalid connection options: %s", label,
                              tp__nats_errtext(s));
        natsOptions_Destroy(opts);
        return rc;
    }
    s = natsConnection_Connect(nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        *nc = NULL;
        return tp_error_set(err, TP_IO, "%s: cannot connect to %s: %s", label, cfg->urls.v[0],
                            tp__nats_errtext(s));
    }
    return TP_OK;
}

int tp__nats_ensure_stream(jsCtx *js, const char *name, const struct tp_strlist *subjects,
                           const char *storage, struct tp_error *err)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, name, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return TP_OK;
    }
    if (s != NATS_NOT_FOUND)
        return tp_error_set(err, TP_IO, "JetStream stream %s: cannot look it up: %s", name,
                            tp__nats_errtext(s));
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = name;
    sc.Subjects = (const char **)subjects->v;
    sc.SubjectsLen = (int)subjects->n;
    sc.Storage = storage && strcmp(storage, "memory") == 0 ? js_MemoryStorage : js_FileStorage;
    s = js_AddStream(&si, js, &sc, NULL, &jerr);
    if (s != NATS_OK) {
        char text[256];
        snprintf(text, sizeof(text), "%s", tp__nats_errtext(s));
        if (js_GetStreamInfo(&si, js, name, NULL, NULL) == NATS_OK) {
            jsStreamInfo_Destroy(si); /* another process created it at the same moment */
            return TP_OK;
        }
        return tp_error_set(err, TP_IO, "JetStream stream %s: cannot create it: %s (code %d)", name,
                            text, (int)jerr);
    }
    jsStreamInfo_Destroy(si);
    tp_log(TP_LOG_INFO, "created JetStream stream %s", name);
    return TP_OK;
}
