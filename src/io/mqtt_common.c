/* MQTT helpers shared by the input and the output: broker URL parsing,
 * client creation (client id, credentials, TLS, MQTT 3.1.1) and the output
 * topic template ({{meta.KEY}} placeholders, default umh_topic with / for .). */
#include "io/mqtt_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const struct tp_option tp__mqtt_tls_options[] = {
    {"ca_file", TP_OPT_STRING, offsetof(struct tp__mqtt_tls, ca_file), NULL,
     "PEM file of trusted CA certificates (default: the system's)", 0, NULL, 0, NULL},
    {"cert_file", TP_OPT_STRING, offsetof(struct tp__mqtt_tls, cert_file), NULL,
     "PEM client certificate (needs key_file)", 0, NULL, 0, NULL},
    {"key_file", TP_OPT_STRING, offsetof(struct tp__mqtt_tls, key_file), NULL,
     "PEM private key of cert_file", 0, NULL, 0, NULL},
    {"insecure", TP_OPT_BOOL, offsetof(struct tp__mqtt_tls, insecure), "false",
     "skip certificate and host name verification (testing only)", 0, NULL, 0, NULL},
    {0},
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init_once(void)
{
    mosquitto_lib_init();
}

void tp__mqtt_lib_init(void)
{
    pthread_once(&lib_once, lib_init_once);
}

uint64_t tp__mqtt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int tp__mqtt_url_parse(const char *url, const char *path, struct tp__mqtt_endpoint *ep,
                       struct tp_error *err)
{
    static const struct {
        const char *scheme;
        int tls, port;
    } schemes[] = {{"tcp", 0, 1883},
                   {"mqtt", 0, 1883},
                   {"ssl", 1, 8883},
                   {"tls", 1, 8883},
                   {"mqtts", 1, 8883}};
    memset(ep, 0, sizeof(*ep));
    const char *sep = url ? strstr(url, "://") : NULL;
    if (!sep)
        return tp_error_set(err, TP_CONFIG,
                            "%s.url: expected scheme://host[:port] (tcp, mqtt, ssl, tls, mqtts), "
                            "got \"%s\"",
                            path, url ? url : "");
    size_t slen = (size_t)(sep - url);
    int found = 0;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (strlen(schemes[i].scheme) == slen && strncasecmp(url, schemes[i].scheme, slen) == 0) {
            ep->tls = schemes[i].tls;
            ep->port = schemes[i].port;
            found = 1;
        }
    if (!found)
        return tp_error_set(err, TP_CONFIG,
                            "%s.url: unknown scheme \"%.*s\"; valid schemes: tcp, mqtt, ssl, tls, "
                            "mqtts",
                            path, (int)slen, url);
    const char *h = sep + 3, *end = h + strlen(h);
    if (end > h && end[-1] == '/')
        end--;
    const char *hend, *colon = NULL;
    if (*h == '[') {
        hend = memchr(h, ']', (size_t)(end - h));
        if (!hend)
            return tp_error_set(err, TP_CONFIG, "%s.url: unclosed '[' in \"%s\"", path, url);
        h++;
        if (hend + 1 < end) {
            if (hend[1] != ':')
                return tp_error_set(err, TP_CONFIG, "%s.url: expected ':' after ']' in \"%s\"",
                                    path, url);
            colon = hend + 1;
        }
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        hend = colon ? colon : end;
    }
    if (hend == h || (size_t)(hend - h) >= sizeof(ep->host) || memchr(h, '/', (size_t)(hend - h)))
        return tp_error_set(err, TP_CONFIG, "%s.url: invalid host in \"%s\"", path, url);
    memcpy(ep->host, h, (size_t)(hend - h));
    if (colon) {
        char *pend;
        long port = strtol(colon + 1, &pend, 10);
        if (colon + 1 == end || pend != end || port < 1 || port > 65535)
            return tp_error_set(err, TP_CONFIG, "%s.url: invalid port in \"%s\" (1..65535)", path,
                                url);
        ep->port = (int)port;
    }
    return TP_OK;
}

static int check_common(const struct tp__mqtt_common *c, const char *path,
                        const struct tp__mqtt_endpoint *ep, struct tp_error *err)
{
    if (c->qos < 0 || c->qos > 2)
        return tp_error_set(err, TP_CONFIG, "%s.qos: expected 0, 1 or 2, got %lld", path,
                            (long long)c->qos);
    if (c->keepalive < 5 || c->keepalive > 65535)
        return tp_error_set(err, TP_CONFIG, "%s.keepalive: expected 5..65535 seconds, got %lld",
                            path, (long long)c->keepalive);
    if (c->reconnect_delay < 1 || c->reconnect_delay > 3600)
        return tp_error_set(err, TP_CONFIG, "%s.reconnect_delay: expected 1..3600, got %lld", path,
                            (long long)c->reconnect_delay);
    if (c->reconnect_delay_max < c->reconnect_delay || c->reconnect_delay_max > 3600)
        return tp_error_set(err, TP_CONFIG,
                            "%s.reconnect_delay_max: expected reconnect_delay..3600, got %lld",
                            path, (long long)c->reconnect_delay_max);
    if (c->password && !c->username)
        return tp_error_set(err, TP_CONFIG, "%s.password: needs username", path);
    const struct tp__mqtt_tls *t = &c->tls;
    if (!ep->tls && (t->ca_file || t->cert_file || t->key_file || t->insecure))
        return tp_error_set(err, TP_CONFIG,
                            "%s.tls: TLS options need an ssl://, tls:// or mqtts:// url", path);
    if (!t->cert_file != !t->key_file)
        return tp_error_set(err, TP_CONFIG, "%s.tls: cert_file and key_file go together", path);
    return TP_OK;
}

static int setup_tls(struct mosquitto *mosq, const struct tp__mqtt_tls *t, const char *path,
                     struct tp_error *err)
{
    /* Without ca_file: the system CA directory. (MOSQ_OPT_TLS_USE_OS_CERTS
     * would be the obvious choice, but libmosquitto 2.0.11 then fails every
     * reconnect with "used without specifying cafile, capath or psk".) */
    int rc = mosquitto_tls_set(mosq, t->ca_file, t->ca_file ? NULL : "/etc/ssl/certs", t->cert_file,
                               t->key_file, NULL);
    if (rc == MOSQ_ERR_SUCCESS && t->insecure) {
        rc = mosquitto_tls_insecure_set(mosq, true);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_tls_opts_set(mosq, 0 /* SSL_VERIFY_NONE */, NULL, NULL);
    }
    if (rc != MOSQ_ERR_SUCCESS)
        return tp_error_set(err, TP_CONFIG, "%s.tls: %s", path, mosquitto_strerror(rc));
    return TP_OK;
}

int tp__mqtt_client_new(const struct tp__mqtt_common *c, const char *path, const char *id_suffix,
                        void *obj, struct mosquitto **out, struct tp__mqtt_endpoint *ep,
                        struct tp_error *err)
{
    *out = NULL;
    int rc = tp__mqtt_url_parse(c->url, path, ep, err);
    if (rc)
        return rc;
    rc = check_common(c, path, ep, err);
    if (rc)
        return rc;
    tp__mqtt_lib_init();
    char id[128];
    if (c->client_id)
        snprintf(id, sizeof(id), "%s", c->client_id);
    else
        snprintf(id, sizeof(id), "tagproc-%ld%s", (long)getpid(), id_suffix);
    struct mosquitto *mosq = mosquitto_new(id, c->clean_session ? true : false, obj);
    if (!mosq)
        return tp_error_set(err, TP_CONFIG, "%s: cannot create MQTT client (client_id \"%s\")",
                            path, id);
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    /* Small PUBLISH/PUBACK packets: without this Nagle + delayed ACK stall each batch. */
    mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
    if (c->username) {
        rc = mosquitto_username_pw_set(mosq, c->username, c->password);
        if (rc != MOSQ_ERR_SUCCESS) {
            mosquitto_destroy(mosq);
            return tp_error_set(err, TP_CONFIG, "%s.username: %s", path, mosquitto_strerror(rc));
        }
    }
    if (ep->tls && setup_tls(mosq, &c->tls, path, err)) {
        mosquitto_destroy(mosq);
        return TP_CONFIG;
    }
    *out = mosq;
    return TP_OK;
}

/* ---------- topic template ---------- */

void tp__mqtt_template_free(struct tp__mqtt_template *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->parts[i].text);
    free(t->parts);
    t->parts = NULL;
    t->n = 0;
}

static int tpl_add(struct tp__mqtt_template *t, int is_meta, const char *s, size_t len)
{
    if (len == 0)
        return TP_OK;
    struct tp__mqtt_tpl_part *p = realloc(t->parts, (t->n + 1) * sizeof(*p));
    if (!p)
        return TP_NOMEM;
    t->parts = p;
    char *text = strndup(s, len);
    if (!text)
        return TP_NOMEM;
    t->parts[t->n++] = (struct tp__mqtt_tpl_part){is_meta, text, len};
    return TP_OK;
}

int tp__mqtt_template_compile(const char *text, const char *path, struct tp__mqtt_template *t,
                              struct tp_error *err)
{
    memset(t, 0, sizeof(*t));
    const char *s = text;
    int rc = TP_OK;
    while (rc == TP_OK && *s) {
        const char *open = strstr(s, "{{");
        if (!open) {
            rc = tpl_add(t, 0, s, strlen(s));
            break;
        }
        rc = tpl_add(t, 0, s, (size_t)(open - s));
        if (rc)
            break;
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            rc = tp_error_set(err, TP_CONFIG, "%s: unclosed \"{{\" in \"%s\"", path, text);
            break;
        }
        const char *a = open + 2, *b = close;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if ((size_t)(b - a) <= 5 || strncmp(a, "meta.", 5) != 0 ||
            memchr(a, ' ', (size_t)(b - a))) {
            rc = tp_error_set(err, TP_CONFIG, "%s: expected {{meta.KEY}}, got \"%.*s\" in \"%s\"",
                              path, (int)(close + 2 - open), open, text);
            break;
        }
        rc = tpl_add(t, 1, a + 5, (size_t)(b - a - 5));
        s = close + 2;
    }
    if (rc == TP_NOMEM)
        tp_error_set(err, TP_NOMEM, "out of memory");
    if (rc)
        tp__mqtt_template_free(t);
    return rc;
}

int tp__mqtt_template_render(const struct tp__mqtt_template *t, const struct tp_msg *m,
                             struct tp_buf *out)
{
    tp_buf_reset(out);
    for (size_t i = 0; i < t->n; i++) {
        const struct tp__mqtt_tpl_part *p = &t->parts[i];
        if (!p->is_meta) {
            if (tp_buf_append(out, p->text, p->len))
                return TP_NOMEM;
            continue;
        }
        size_t vlen = 0;
        const char *v = tp_msg_meta_get(m, p->text, &vlen);
        if (v && tp_buf_append(out, v, vlen))
            return TP_NOMEM;
    }
    return tp_buf_reserve(out, 0);
}

int tp__mqtt_default_topic(const struct tp_msg *m, struct tp_buf *out)
{
    tp_buf_reset(out);
    size_t len = 0;
    const char *v = tp_msg_meta_get(m, "umh_topic", &len);
    if (!v || !len)
        return TP_INVAL;
    if (tp_buf_append(out, v, len))
        return TP_NOMEM;
    for (size_t i = 0; i < out->len; i++)
        if (out->data[i] == '.')
            out->data[i] = '/';
    return TP_OK;
}
