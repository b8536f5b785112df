/* The `opcua` input: benthos-umh compatible options; connects (security
 * mode, policy and identity as configured or the most secure offered; the
 * client certificate loaded, or generated and logged once), browses the configured nodes once,
 * then polls every variable at pollRate or subscribes to all of them, and
 * turns each value into one message (payload: the value as JSON; metadata as
 * browse.c prepares it). Connection loss: reconnect after
 * reconnectIntervalInSeconds with autoReconnect, else the input fails. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "core/clock.h"
#include "core/plugin.h"
#include "core/metrics.h"
#include "io/opcua/browse.h"
#include "io/opcua/subscription.h"

#define REQUEST_TIMEOUT_MS 30000
#define POLL_READ_BATCH 1000
/* Messages kept for reuse at most (about 1 KB each); more handed back are freed. */
#define RECYCLED_MAX 4096

struct opcua_config {
    char *endpoint;
    struct tp_strlist node_ids;
    char *username, *password;
    int subscribe_enabled;
    int64_t poll_rate;
    int auto_reconnect;
    int64_t reconnect_interval;
    int use_heartbeat;
    int64_t queue_size;
    double sampling_interval;
    char *security_mode, *security_policy;
    char *client_certificate, *certificate_dir, *server_fingerprint;
    int insecure;
    char *user_certificate, *user_private_key;
    int64_t max_message_size, max_chunk_count;
};

static const char *const security_modes[] = {"None", "Sign", "SignAndEncrypt", NULL};
static const char *const security_policies[] = {"None",
                                                "Basic256Sha256",
                                                "Aes128_Sha256_RsaOaep",
                                                "Aes256_Sha256_RsaPss",
                                                "Basic256",
                                                "Basic128Rsa15",
                                                NULL};

static const struct tp_option opcua_options[] = {
    TP_OPTION(struct opcua_config, endpoint, "endpoint", TP_OPT_STRING, NULL,
              "server address, opc.tcp://host:port[/path]", .flags = TP_OPT_REQUIRED),
    TP_OPTION(struct opcua_config, node_ids, "nodeIDs", TP_OPT_STRINGS, NULL,
              "start NodeIds (ns=2;s=Folder, ns=1;i=1001, g=..., b=...); folders and objects are "
              "browsed recursively (depth <= 10)",
              .flags = TP_OPT_REQUIRED),
    TP_OPTION(struct opcua_config, username, "username", TP_OPT_STRING, NULL,
              "user name; unset: anonymous"),
    TP_OPTION(struct opcua_config, password, "password", TP_OPT_STRING, NULL,
              "password for username"),
    TP_OPTION(struct opcua_config, subscribe_enabled, "subscribeEnabled", TP_OPT_BOOL, "false",
              "true: subscribe (a message per change); false: poll every variable at pollRate"),
    TP_OPTION(struct opcua_config, poll_rate, "pollRate", TP_OPT_INT, "1000",
              "poll period in milliseconds", .min = 1, .max = 86400000),
    TP_OPTION(struct opcua_config, auto_reconnect, "autoReconnect", TP_OPT_BOOL, "false",
              "reconnect after a connection loss (else the input fails, exit 1)"),
    TP_OPTION(struct opcua_config, reconnect_interval, "reconnectIntervalInSeconds", TP_OPT_INT,
              "5", "seconds between reconnection attempts", .min = 0, .max = 86400),
    TP_OPTION(struct opcua_config, use_heartbeat, "useHeartbeat", TP_OPT_BOOL, "false",
              "also read the server's CurrentTime (opcua_heartbeat_message=true); subscribe mode "
              "reconnects when nothing arrives for 10 s"),
    TP_OPTION(struct opcua_config, queue_size, "queueSize", TP_OPT_INT, "10",
              "server-side queue size per monitored item", .min = 1, .max = 1000000),
    TP_OPTION(struct opcua_config, sampling_interval, "samplingInterval", TP_OPT_DOUBLE, "0.0",
              "sampling interval per monitored item in milliseconds (0: fastest)", .min = 0,
              .max = INT64_MAX),
    TP_OPTION(struct opcua_config, security_mode, "securityMode", TP_OPT_STRING, NULL,
              "None, Sign or SignAndEncrypt; unset: the most secure the server offers",
              .choices = security_modes),
    TP_OPTION(struct opcua_config, security_policy, "securityPolicy", TP_OPT_STRING, NULL,
              "None, Basic256Sha256 (recommended), Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss "
              "(Basic256, Basic128Rsa15: deprecated); unset: the most secure the server offers",
              .choices = security_policies),
    TP_OPTION(struct opcua_config, client_certificate, "clientCertificate", TP_OPT_STRING, NULL,
              "client certificate and private key: base64 of a PEM bundle (cert + key); unset: "
              "generated at start-up (logged once) or taken from certificate_dir"),
    TP_OPTION(struct opcua_config, certificate_dir, "certificate_dir", TP_OPT_STRING, NULL,
              "directory that keeps the generated client certificate "
              "(tagproc-opcua-client.pem) across restarts"),
    TP_OPTION(struct opcua_config, server_fingerprint, "serverCertificateFingerprint",
              TP_OPT_STRING, NULL,
              "SHA3-512 fingerprint (hex) of the server certificate to pin; unset: logged"),
    TP_OPTION(struct opcua_config, insecure, "insecure", TP_OPT_BOOL, "false",
              "skip the server certificate checks (validity, application URI): testing only"),
    TP_OPTION(struct opcua_config, user_certificate, "userCertificate", TP_OPT_STRING, NULL,
              "user certificate identity: base64 of PEM (with userPrivateKey)"),
    TP_OPTION(struct opcua_config, user_private_key, "userPrivateKey", TP_OPT_STRING, NULL,
              "private key of userCertificate: base64 of PEM"),
    TP_OPTION(struct opcua_config, max_message_size, "max_message_size", TP_OPT_INT, "16777216",
              "largest response accepted, bytes (a bigger one is a connection error)", .min = 65536,
              .max = 1073741824),
    TP_OPTION(struct opcua_config, max_chunk_count, "max_chunk_count", TP_OPT_INT, "512",
              "most chunks of one response accepted", .min = 1, .max = 65536),
    {0},
};

struct opcua_in {
    const struct opcua_config *c;
    struct ua_client cl;
    struct ua_session_opts opts;
    struct ua_cert user_cert;
    struct ua_var_list vars;
    struct ua_subscription sub;
    int wake_fd;
    int connected, browsed;
    int64_t next_poll_ms;
    size_t poll_pos;       /* the next variable of the poll round (0: round done) */
    struct tp_batch queue; /* messages made, not yet handed out */
    size_t qpos;
    /* Messages the pipeline is done with, for the next values: handed back
     * on the writer thread into `recycled` (lock), taken over by the reader
     * thread into `spare` a batch at a time. */
    pthread_mutex_t recycle_lock;
    struct tp_batch recycled, spare;
    struct tp_buf json;
    struct ua_datetime_cache source_ts, server_ts; /* the last second's text of each */
    struct tp_drops *drops;                        /* the current read()'s */
    uint64_t unsupported, reconnects;              /* reconnects: attempts */
    uint64_t reconnected;                          /* connections re-established after a loss */
    uint64_t counted[4]; /* the metrics below, as last added to /metrics */
    int metrics_shown;
    int64_t lost_at_ms; /* when the connection was lost (0: never / reconnected) */
};

static void opcua_close(void *state);

#define CERT_FILE "tagproc-opcua-client.pem"

/* The client certificate when a secure endpoint needs one and none is
 * configured: from certificate_dir, else generated (and kept there). The
 * generated bundle is logged once so it can be pasted into clientCertificate. */
static int need_cert(void *ud, struct ua_cert *own, struct tp_error *err)
{
    struct opcua_in *in = ud;
    const char *dir = in->c->certificate_dir;
    char path[4096];
    if (dir) {
        snprintf(path, sizeof(path), "%s/%s", dir, CERT_FILE);
        struct tp_buf text;
        tp_buf_init(&text);
        FILE *f = fopen(path, "r");
        char chunk[4096];
        size_t n;
        while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            if (tp_buf_append(&text, chunk, n)) {
                tp_buf_free(&text);
                fclose(f);
                return tp_error_set(err, TP_NOMEM, "out of memory");
            }
        int rc = 0;
        if (f) {
            fclose(f);
            rc = tp_buf_putc(&text, 0) ? TP_NOMEM : ua_cert_load(text.data, 1, path, own, err);
            tp_log(rc ? TP_LOG_ERROR : TP_LOG_INFO, "opcua: client certificate from %s%s", path,
                   rc ? ": unreadable" : "");
        }
        if (text.data)
            memset(text.data, 0, text.len);
        tp_buf_free(&text);
        if (f)
            return rc;
    }
    struct tp_buf pem, b64;
    tp_buf_init(&pem);
    tp_buf_init(&b64);
    int rc = ua_cert_generate("urn:tagproc:client", own, &pem, err);
    if (!rc && dir) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, pem.data, pem.len) != (ssize_t)pem.len)
            tp_log(TP_LOG_WARN, "opcua: cannot keep the client certificate in %s: %s", path,
                   strerror(errno));
        else
            tp_log(TP_LOG_INFO, "opcua: generated a client certificate, kept in %s", path);
        if (fd >= 0)
            close(fd);
    }
    if (!rc && !tp_buf_base64(&b64, pem.data, pem.len))
        tp_log(TP_LOG_INFO,
               "opcua: generated a client certificate (RSA 2048, urn:tagproc:client); to keep "
               "it, set clientCertificate to this base64 PEM bundle (it holds the private key): "
               "%.*s",
               (int)b64.len, b64.data);
    if (pem.data)
        memset(pem.data, 0, pem.len);
    tp_buf_free(&pem);
    tp_buf_free(&b64);
    return rc;
}

/* The session options from the config; user certificate loaded. */
static int security_options(struct opcua_in *in, struct tp_error *err)
{
    const struct opcua_config *c = in->c;
    struct ua_session_opts *o = &in->opts;
    o->mode = !c->security_mode                                 ? 0
              : strcmp(c->security_mode, "Sign") == 0           ? UA_MODE_SIGN
              : strcmp(c->security_mode, "SignAndEncrypt") == 0 ? UA_MODE_SIGN_ENCRYPT
                                                                : UA_MODE_NONE;
    o->policy = c->security_policy ? ua_policy_by_name(c->security_policy) : NULL;
    if (o->policy && o->policy->deprecated)
        tp_log(TP_LOG_WARN,
               "opcua: securityPolicy %s is deprecated (broken algorithms); use Basic256Sha256",
               o->policy->name);
    if ((o->mode == UA_MODE_NONE) != (o->policy == &ua_policy_none) && o->mode && o->policy)
        return tp_error_set(err, TP_CONFIG,
                            "opcua: securityMode %s does not go with securityPolicy %s",
                            c->security_mode, c->security_policy);
    o->server_fingerprint = c->server_fingerprint;
    o->insecure = c->insecure;
    o->username = c->username;
    o->password = c->password;
    o->need_cert = need_cert;
    o->need_cert_ud = in;
    if (c->user_certificate) {
        int rc = ua_cert_load(c->user_certificate, 0, "userCertificate", &in->user_cert, err);
        if (!rc)
            rc = ua_cert_load_key(c->user_private_key, "userPrivateKey", &in->user_cert, err);
        if (rc)
            return rc;
        o->user_cert = &in->user_cert;
    }
    return 0;
}

static int opcua_open(const void *config, void **out, struct tp_error *err)
{
    const struct opcua_config *c = config;
    if (strncmp(c->endpoint, "opc.tcp://", 10) != 0)
        return tp_error_set(err, TP_CONFIG, "opcua: endpoint must start with opc.tcp://, got '%s'",
                            c->endpoint);
    if (c->node_ids.n == 0)
        return tp_error_set(err, TP_CONFIG, "opcua: nodeIDs must list at least one NodeId");
    if (c->password && !c->username)
        return tp_error_set(err, TP_CONFIG, "opcua: password given without username");
    if (!c->user_certificate != !c->user_private_key)
        return tp_error_set(err, TP_CONFIG,
                            "opcua: userCertificate and userPrivateKey go together");
    if (c->user_certificate && c->username)
        return tp_error_set(err, TP_CONFIG,
                            "opcua: username and userCertificate are two identities: set one");
    struct opcua_in *in = calloc(1, sizeof(*in));
    if (!in)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    in->c = c;
    int rc = security_options(in, err);
    if (rc) {
        ua_cert_free(&in->user_cert);
        free(in);
        return rc;
    }
    in->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (in->wake_fd < 0) {
        ua_cert_free(&in->user_cert);
        free(in);
        return tp_error_set(err, TP_IO, "opcua: eventfd failed");
    }
    ua_client_init(&in->cl, in->wake_fd, (uint32_t)c->max_message_size,
                   (uint32_t)c->max_chunk_count, REQUEST_TIMEOUT_MS);
    in->cl.opts = &in->opts;
    tp_batch_init(&in->queue);
    tp_batch_init(&in->recycled);
    tp_batch_init(&in->spare);
    pthread_mutex_init(&in->recycle_lock, NULL);
    tp_buf_init(&in->json);
    if (c->client_certificate &&
        (rc = ua_cert_load(c->client_certificate, 1, "clientCertificate", &in->cl.own, err))) {
        opcua_close(in);
        return rc;
    }
    /* a poll must come before the server drops the session for inactivity */
    if (c->poll_rate * 3.0 > in->cl.session_timeout_ms)
        in->cl.session_timeout_ms = (double)c->poll_rate * 3.0;
    *out = in;
    return TP_OK;
}

/* A message done with for the next value, or NULL (none left: a new one). */
static struct tp_msg *spare_message(struct opcua_in *in)
{
    if (!in->spare.len) {
        pthread_mutex_lock(&in->recycle_lock);
        struct tp_batch b = in->spare; /* empty: its storage goes back */
        in->spare = in->recycled;
        in->recycled = b;
        pthread_mutex_unlock(&in->recycle_lock);
    }
    return in->spare.len ? in->spare.msgs[--in->spare.len] : NULL;
}

/* The pipeline hands back messages it is done with (writer thread). */
static void opcua_recycle(void *state, struct tp_batch *b)
{
    struct opcua_in *in = state;
    size_t i = 0;
    pthread_mutex_lock(&in->recycle_lock);
    for (; i < b->len && in->recycled.len < RECYCLED_MAX; i++)
        if (tp_batch_push(&in->recycled, b->msgs[i])) { /* freed it */
            i++;
            break;
        }
    pthread_mutex_unlock(&in->recycle_lock);
    for (; i < b->len; i++)
        tp_msg_free(b->msgs[i]);
    b->len = 0;
}

/* Makes the message of one value of variable `index`; 0 or TP_NOMEM. */
static int emit(void *ud, size_t index, const struct ua_datavalue *dv)
{
    struct opcua_in *in = ud;
    if (index >= in->vars.n)
        return 0;
    struct ua_var *v = &in->vars.v[index];
    tp_buf_reset(&in->json);
    enum ua_json_kind kind = UA_JSON_NONE;
    int rc = dv->has_value ? ua_variant_to_json(&dv->value, &in->json, &kind) : TP_UNSUPPORTED;
    if (rc == TP_NOMEM)
        return rc;
    if (rc && (dv->has_value && dv->value.type != UA_NULL)) { /* a value we cannot express */
        in->unsupported++; /* all counted; reported (logged, dead-lettered) once per node */
        if (!v->unsupported_logged && in->drops) {
            v->unsupported_logged = 1;
            tp_drops_add(in->drops, TP_DROP_INVALID_INPUT, "opcua",
                         "opcua_node_id=%s: unsupported value type %u%s (reported once per node)",
                         ua_var_str(&in->vars, v->node_id), dv->value.type,
                         dv->value.multi_dim ? " (multi-dimensional array)" : "");
        }
        return 0;
    }
    if (rc) { /* no value: deliver the status with a null payload */
        tp_buf_reset(&in->json);
        tp_buf_puts(&in->json, "null");
    }
    char src[64], srv[64], tmp[16];
    ua_datetime_format_cached(dv->source_ts, src, &in->source_ts);
    ua_datetime_format_cached(dv->server_ts, srv, &in->server_ts);
    struct ua_value_meta dyn = {.source_ts = src,
                                .server_ts = srv,
                                .status = ua_status_name(dv->status, tmp),
                                .type = kind == UA_JSON_NUMBER ? "number"
                                        : kind == UA_JSON_BOOL ? "bool"
                                        : rc                   ? "null"
                                                               : "string"};
    struct tp_msg *m =
        ua_var_message(&in->vars, v, in->json.data, in->json.len, &dyn, spare_message(in));
    if (!m)
        return TP_NOMEM;
    m->flags |= TP_MSG_PAYLOAD_JSON;
    return tp_batch_push(&in->queue, m);
}

#define MISSED_HELP                                                                                \
    "opcua: notification messages lost (Publish sequence gaps that Republish could not fill)"
#define REPUBLISHED_HELP "opcua: notification messages recovered by Republish"
#define RECONNECTS_HELP "opcua: reconnections after a connection loss"
#define RENEWALS_HELP "opcua: secure channel tokens renewed"

/* Adds what the counters grew by since the last call to /metrics. */
static void count_metrics(struct opcua_in *in)
{
    static const char *const names[4] = {
        "tagproc_opcua_notifications_missed_total", "tagproc_opcua_notifications_republished_total",
        "tagproc_opcua_reconnects_total", "tagproc_opcua_channel_renewals_total"};
    static const char *const help[4] = {MISSED_HELP, REPUBLISHED_HELP, RECONNECTS_HELP,
                                        RENEWALS_HELP};
    uint64_t now[4] = {in->sub.missed, in->sub.republished, in->reconnected, in->cl.conn.renewals};
    for (int i = 0; i < 4; i++) {
        if (now[i] < in->counted[i]) /* a counter started over */
            in->counted[i] = now[i];
        if (now[i] != in->counted[i] || !in->metrics_shown)
            tp_metrics_count(names[i], help[i], now[i] - in->counted[i]);
        in->counted[i] = now[i];
    }
    in->metrics_shown = 1;
}

/* Waits up to ms for a stop request: 1 when stopping. */
static int sleep_or_stop(struct opcua_in *in, int64_t ms)
{
    struct pollfd p = {.fd = in->wake_fd, .events = POLLIN};
    return poll(&p, 1, ms > 0 ? (int)ms : 0) > 0;
}

static int connect_all(struct opcua_in *in, struct tp_error *err)
{
    int rc = ua_session_open(&in->cl, in->c->endpoint, err);
    if (!rc && !in->browsed) {
        rc = ua_browse(&in->cl, in->c->node_ids.v, in->c->node_ids.n, &in->vars, err);
        if (!rc && in->c->use_heartbeat)
            rc = ua_browse_add_heartbeat(&in->vars) ? tp_error_set(err, TP_NOMEM, "out of memory")
                                                    : 0;
        if (!rc && in->vars.n == 0)
            tp_log(TP_LOG_WARN, "opcua: no variables found under the configured nodeIDs");
        in->browsed = !rc;
    }
    if (!rc && in->c->subscribe_enabled) {
        struct ua_sub_params p = {.queue_size = (uint32_t)in->c->queue_size,
                                  .sampling_ms = in->c->sampling_interval,
                                  .heartbeat = in->c->use_heartbeat};
        rc = ua_sub_create(&in->sub, &in->cl, &in->vars, &p, emit, in, err);
    }
    if (!rc) {
        in->connected = 1;
        in->next_poll_ms = tp_mono_ms();
        in->poll_pos = 0;
        tp_log(TP_LOG_INFO, "opcua: connected to %s (%zu variables, %s)", in->c->endpoint,
               in->vars.n, in->c->subscribe_enabled ? "subscribed" : "polling");
        if (in->lost_at_ms) {
            tp_log(TP_LOG_WARN,
                   "opcua: reconnected after %.1f s without a connection: changes during that "
                   "time are missed (the current values follow)",
                   (double)(tp_mono_ms() - in->lost_at_ms) / 1000.0);
            in->lost_at_ms = 0;
            in->reconnected++;
        }
    }
    return rc;
}

/* One Read of the next POLL_READ_BATCH variables' values: a poll round is
 * handed out batch by batch, so that its messages never all wait at once. */
static int poll_batch(struct opcua_in *in, struct tp_error *err)
{
    struct ua_client *cl = &in->cl;
    size_t start = in->poll_pos;
    if (start < in->vars.n) {
        size_t end = start + POLL_READ_BATCH < in->vars.n ? start + POLL_READ_BATCH : in->vars.n;
        in->poll_pos = end < in->vars.n ? end : 0;
        int rc = ua_req_begin(cl, UA_READ_REQ, REQUEST_TIMEOUT_MS) || ua_enc_f64(&cl->req, 0) ||
                 ua_enc_u32(&cl->req, 2) || ua_enc_u32(&cl->req, (uint32_t)(end - start));
        for (size_t i = start; i < end && !rc; i++) {
            const struct ua_var *v = &in->vars.v[i];
            rc = tp_buf_append(&cl->req, (const char *)ua_var_enc(&in->vars, v), v->enc_len) ||
                 ua_enc_u32(&cl->req, 13) || ua_enc_string(&cl->req, NULL, -1) ||
                 ua_enc_u16(&cl->req, 0) || ua_enc_string(&cl->req, NULL, -1);
        }
        if (rc)
            return tp_error_set(err, TP_NOMEM, "out of memory");
        struct ua_dec d;
        if ((rc = ua_call(cl, UA_READ_RESP, &d, err)) != 0)
            return rc;
        if (ua_dec_len(&d, UA_MAX_ARRAY_LEN) != (int32_t)(end - start))
            return tp_error_set(err, TP_PARSE, "opcua: Read returned a wrong number of values");
        for (size_t i = start; i < end; i++) {
            struct ua_datavalue dv;
            ua_dec_datavalue(&d, &dv);
            if (d.err)
                return tp_error_set(err, TP_PARSE, "opcua: malformed Read response");
            if ((rc = emit(in, i, &dv)) != 0)
                return tp_error_set(err, rc, "out of memory");
        }
    }
    return TP_OK;
}

/* Hands queued messages to the batch; 1 when some were handed out. */
static int drain(struct opcua_in *in, struct tp_batch *batch, size_t max)
{
    size_t n = 0;
    while (in->qpos < in->queue.len && n < max) {
        struct tp_msg *m = in->queue.msgs[in->qpos];
        in->queue.msgs[in->qpos++] = NULL;
        if (tp_batch_push(batch, m))
            return -1;
        n++;
    }
    if (in->qpos == in->queue.len) {
        in->queue.len = 0;
        in->qpos = 0;
    }
    return n > 0;
}

static int opcua_read(void *state, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                      struct tp_error *rerr)
{
    struct opcua_in *in = state;
    in->drops = drops;
    for (;;) {
        int got = drain(in, batch, max);
        if (got)
            return got < 0 ? TP_NOMEM : TP_OK;
        if (sleep_or_stop(in, 0))
            return TP_EOF;
        struct tp_error err = {.msg = ""};
        int rc;
        count_metrics(in);
        if (!in->connected) {
            rc = connect_all(in, &err);
        } else if (in->c->subscribe_enabled) {
            rc = ua_sub_step(&in->sub, &in->cl, 500, &err);
        } else {
            int64_t wait = in->next_poll_ms - tp_mono_ms();
            if (in->poll_pos == 0 && wait > 0) { /* between poll rounds */
                if (sleep_or_stop(in, wait))
                    return TP_EOF;
                continue;
            }
            if (in->poll_pos == 0) {
                in->next_poll_ms += in->c->poll_rate;
                if (in->next_poll_ms < tp_mono_ms())
                    in->next_poll_ms = tp_mono_ms() + in->c->poll_rate;
            }
            rc = poll_batch(in, &err);
        }
        if (rc == TP_EOF)
            return TP_EOF;
        if (rc == TP_OK || rc == TP_AGAIN)
            continue;
        if (rc == TP_NOMEM || rc == TP_CONFIG || rc == TP_UNSUPPORTED || !in->c->auto_reconnect) {
            return tp_error_set(rerr, rc == TP_CONFIG ? TP_CONFIG : TP_IO, "%s",
                                err.msg[0] ? err.msg : tp_strerror(rc));
        }
        tp_log(TP_LOG_WARN, "%s; reconnecting in %lld s", err.msg[0] ? err.msg : tp_strerror(rc),
               (long long)in->c->reconnect_interval);
        ua_session_close(&in->cl);
        if (in->connected) {
            ua_sub_lost(&in->sub);
            in->lost_at_ms = tp_mono_ms();
        }
        in->connected = 0;
        in->reconnects++;
        if (sleep_or_stop(in, in->c->reconnect_interval * 1000))
            return TP_EOF;
    }
}

static void opcua_stop(void *state)
{
    struct opcua_in *in = state;
    uint64_t one = 1;
    (void)!write(in->wake_fd, &one, sizeof(one));
}

static void opcua_close(void *state)
{
    struct opcua_in *in = state;
    if (!in)
        return;
    /* the wake fd is readable after a stop: close without waiting on it */
    in->cl.conn.wake_fd = -1;
    ua_session_close(&in->cl);
    ua_sub_free(&in->sub);
    if (in->unsupported || in->reconnects || in->sub.missed || in->cl.conn.renewals)
        tp_log(TP_LOG_INFO,
               "opcua: %llu unsupported values, %llu reconnects, %llu notifications missed, "
               "%llu secure channel renewals",
               (unsigned long long)in->unsupported, (unsigned long long)in->reconnects,
               (unsigned long long)in->sub.missed, (unsigned long long)in->cl.conn.renewals);
    ua_client_free(&in->cl);
    ua_cert_free(&in->user_cert);
    ua_var_list_free(&in->vars);
    for (size_t i = in->qpos; i < in->queue.len; i++)
        tp_msg_free(in->queue.msgs[i]);
    in->queue.len = 0;
    tp_batch_free(&in->queue);
    tp_batch_free(&in->recycled);
    tp_batch_free(&in->spare);
    pthread_mutex_destroy(&in->recycle_lock);
    tp_buf_free(&in->json);
    close(in->wake_fd);
    free(in);
}

const struct tp_input_plugin tp_input_opcua = {
    .name = "opcua",
    .options = opcua_options,
    .config_size = sizeof(struct opcua_config),
    .open = opcua_open,
    .read = opcua_read,
    .stop = opcua_stop,
    .close = opcua_close,
    .recycle = opcua_recycle,
};
