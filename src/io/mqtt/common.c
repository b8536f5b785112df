/* MQTT helpers shared by the input and the output: broker URL parsing,
 * client set-up (broker list, client id, credentials, TLS, protocol
 * version) and the output default topic (umh_topic with / for .). */
#include "io/mqtt/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct tp_option tp__mqtt_tls_options[] = {
    TP_OPTION(struct tp__mqtt_tls, ca_file, "ca_file", TP_OPT_STRING, NULL,
              "PEM file of trusted CA certificates (default: the system's)",
              .flags = TP_OPT_READABLE),
    TP_OPTION(struct tp__mqtt_tls, cert_file, "cert_file", TP_OPT_STRING, NULL,
              "PEM client certificate (needs key_file)", .flags = TP_OPT_READABLE),
    TP_OPTION(struct tp__mqtt_tls, key_file, "key_file", TP_OPT_STRING, NULL,
              "PEM private key of cert_file", .flags = TP_OPT_READABLE),
    TP_OPTION(struct tp__mqtt_tls, insecure, "insecure", TP_OPT_BOOL, "false",
              "skip certificate and host name verification (testing only)"),
    {0},
};

const char *const tp__mqtt_protocols[] = {"5", "3.1.1", NULL};

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
    /* qos, keepalive and the delays' ranges are in the option table */
    if (c->reconnect_delay_max < c->reconnect_delay)
        return tp_error_set(err, TP_CONFIG,
                            "%s.reconnect_delay_max: expected at least reconnect_delay (%lld ms), "
                            "got %lld ms",
                            path, (long long)c->reconnect_delay, (long long)c->reconnect_delay_max);
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

static int parse_brokers(const struct tp__mqtt_common *c, const char *path,
                         struct tp__mqtt_conn *conn, struct tp_error *err)
{
    if (c->url && c->urls.n)
        return tp_error_set(err, TP_CONFIG, "%s: give url or urls, not both", path);
    if (!c->url && !c->urls.n)
        return tp_error_set(err, TP_CONFIG, "%s.url: required (or urls: a list of brokers)", path);
    size_t n = c->url ? 1 : c->urls.n;
    conn->brokers = calloc(n, sizeof(*conn->brokers));
    if (!conn->brokers)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    conn->n_brokers = n;
    for (size_t i = 0; i < n; i++) {
        const char *url = c->url ? c->url : c->urls.v[i];
        char p[160];
        if (c->url)
            snprintf(p, sizeof(p), "%s", path);
        else
            snprintf(p, sizeof(p), "%s.urls[%zu]", path, i);
        struct tp__mqtt_endpoint ep;
        int rc = tp__mqtt_url_parse(url, p, &ep, err);
        if (rc)
            return rc;
        memcpy(conn->brokers[i].host, ep.host, sizeof(ep.host));
        conn->brokers[i].port = ep.port;
        conn->brokers[i].tls = ep.tls;
        conn->brokers[i].url = url;
    }
    return TP_OK;
}

void tp__mqtt_conn_free(struct tp__mqtt_conn *conn, struct tp_mqtt_client *cl)
{
    if (cl)
        tp_mqtt_client_free(cl);
    free(conn->brokers);
    conn->brokers = NULL;
    conn->n_brokers = 0;
}

int tp__mqtt_conn_setup(const struct tp__mqtt_common *c, const char *path, const char *who,
                        const char *id_suffix, uint16_t receive_maximum, struct tp__mqtt_conn *conn,
                        struct tp_mqtt_client *cl, struct tp_error *err)
{
    memset(conn, 0, sizeof(*conn));
    int rc = parse_brokers(c, path, conn, err);
    int any_tls = 0;
    for (size_t i = 0; rc == TP_OK && i < conn->n_brokers; i++)
        any_tls |= conn->brokers[i].tls;
    struct tp__mqtt_endpoint tls_ep = {.tls = any_tls};
    if (rc == TP_OK)
        rc = check_common(c, path, &tls_ep, err);
    if (rc) {
        tp__mqtt_conn_free(conn, NULL);
        return rc;
    }
    if (c->client_id)
        snprintf(conn->client_id, sizeof(conn->client_id), "%s", c->client_id);
    else
        snprintf(conn->client_id, sizeof(conn->client_id), "tagproc-%ld%s", (long)getpid(),
                 id_suffix);
    struct tp_mqtt_client_opts o = {
        .who = who,
        .brokers = conn->brokers,
        .n_brokers = conn->n_brokers,
        .insecure = c->tls.insecure,
        .version = c->protocol && strcmp(c->protocol, "3.1.1") == 0 ? TP_MQTT_V311 : TP_MQTT_V5,
        .client_id = conn->client_id,
        .username = c->username,
        .password = c->password,
        .clean_session = c->clean_session,
        .keepalive_s = (int)(c->keepalive / 1000),
        .reconnect_delay_ms = (uint64_t)c->reconnect_delay,
        .reconnect_delay_max_ms = (uint64_t)c->reconnect_delay_max,
        .receive_maximum = receive_maximum,
    };
    tp_mqtt_client_init(cl, &o);
    if (any_tls) {
        struct tp_mqtt_tls_opts t = {c->tls.ca_file, c->tls.cert_file, c->tls.key_file,
                                     c->tls.insecure};
        char why[300];
        if (tp_mqtt_net_tls_setup(&cl->net, &t, why, sizeof(why))) {
            tp__mqtt_conn_free(conn, cl);
            return tp_error_set(err, TP_CONFIG, "%s.tls: %s", path, why);
        }
    }
    return TP_OK;
}

/* ---------- default topic ---------- */

int tp__mqtt_default_topic(const struct tp_msg *m, struct tp_buf *out, int *valid)
{
    tp_buf_reset(out);
    *valid = 0;
    size_t len = 0;
    const char *v = tp_msg_meta_get(m, "umh_topic", &len);
    if (!v || !len)
        return TP_INVAL;
    if (tp_buf_reserve(out, len))
        return TP_NOMEM;
    *valid = tp_mqtt_topic_undot(v, len, out->data);
    out->len = len;
    out->data[len] = '\0';
    return TP_OK;
}
