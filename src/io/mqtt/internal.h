/* Internals shared by the MQTT input (input.c) and output (output.c):
 * the connection options common to both, URL parsing, client set-up
 * (broker list, credentials, TLS, protocol version) and the output topic
 * template. The MQTT protocol itself is in src/io/mqtt/ (codec, socket,
 * client session). */
#ifndef TP_MQTT_INTERNAL_H
#define TP_MQTT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/msg.h"
#include "io/mqtt/client.h"

struct tp__mqtt_tls {
    char *ca_file;
    char *cert_file;
    char *key_file;
    int insecure;
};

/* Options shared by input and output (the first member of both configs). */
struct tp__mqtt_common {
    char *url;
    struct tp_strlist urls;
    char *protocol;
    char *client_id;
    char *username;
    char *password;
    int clean_session;
    int64_t qos;
    int64_t keepalive;           /* ms */
    int64_t reconnect_delay;     /* ms, first retry */
    int64_t reconnect_delay_max; /* ms, cap of the exponential back-off */
    struct tp__mqtt_tls tls;
};

extern const struct tp_option tp__mqtt_tls_options[];
extern const char *const tp__mqtt_protocols[];

/* Option table rows for struct tp__mqtt_common embedded as member `common`
 * of config struct T; `clean` is the clean_session default ("true"/"false"),
 * `proto` the protocol default ("5" / "3.1.1"). */
#define TP__MQTT_COMMON_OPTIONS(T, clean, proto)                                                   \
    TP_OPTION(T, common.url, "url", TP_OPT_STRING, NULL,                                           \
              "broker address: tcp://host:port or mqtt:// (1883), ssl://, tls:// or mqtts:// "     \
              "(8883); this or urls is required"),                                                 \
        TP_OPTION(T, common.urls, "urls", TP_OPT_STRINGS, NULL,                                    \
                  "broker addresses (as url), tried in order on every (re)connect; instead of "    \
                  "url"),                                                                          \
        TP_OPTION(T, common.protocol, "protocol", TP_OPT_STRING, proto,                            \
                  "MQTT protocol version: 5 or 3.1.1", .choices = tp__mqtt_protocols),             \
        TP_OPTION(T, common.client_id, "client_id", TP_OPT_STRING, NULL,                           \
                  "MQTT client id (default tagproc-<pid>, -out suffix for the output); set it "    \
                  "for a persistent session that survives a restart"),                             \
        TP_OPTION(T, common.username, "username", TP_OPT_STRING, NULL, "user name"),               \
        TP_OPTION(T, common.password, "password", TP_OPT_STRING, NULL,                             \
                  "password (needs username)"),                                                    \
        TP_OPTION(T, common.clean_session, "clean_session", TP_OPT_BOOL, clean,                    \
                  "false: persistent session (the broker keeps subscriptions and queued QoS>0 "    \
                  "messages)"),                                                                    \
        TP_OPTION(T, common.qos, "qos", TP_OPT_INT, "1", "quality of service 0, 1 or 2", .min = 0, \
                  .max = 2),                                                                       \
        TP_OPTION(T, common.keepalive, "keepalive", TP_OPT_DURATION, "30s",                        \
                  "keepalive interval (whole seconds on the wire)", .min = 5000, .max = 65535000,  \
                  .int_ms = 1000, .flags = TP_OPT_INT_DEPRECATED),                                 \
        TP_OPTION(T, common.reconnect_delay, "reconnect_delay", TP_OPT_DURATION, "1s",             \
                  "wait before the first reconnect attempt; doubles per failure", .min = 1000,     \
                  .max = 3600000, .int_ms = 1000, .flags = TP_OPT_INT_DEPRECATED),                 \
        TP_OPTION(T, common.reconnect_delay_max, "reconnect_delay_max", TP_OPT_DURATION, "30s",    \
                  "longest wait between reconnect attempts (at least reconnect_delay)",            \
                  .min = 1000, .max = 3600000, .int_ms = 1000, .flags = TP_OPT_INT_DEPRECATED),    \
        TP_OPTION(T, common.tls, "tls", TP_OPT_OBJECT, NULL,                                       \
                  "TLS settings (used with ssl://, tls:// or mqtts:// urls)",                      \
                  .sub = tp__mqtt_tls_options)

/* A parsed broker address. */
struct tp__mqtt_endpoint {
    char host[256];
    int port;
    int tls;
};

/* Parses "tcp://host:port" (schemes tcp, mqtt: plain, default port 1883;
 * ssl, tls, mqtts: TLS, default port 8883; "[v6addr]:port" allowed).
 * TP_CONFIG with a message naming `path` on error. */
int tp__mqtt_url_parse(const char *url, const char *path, struct tp__mqtt_endpoint *ep,
                       struct tp_error *err);

/* A configured connection: the broker list and client id the client
 * options point into (must outlive the client). */
struct tp__mqtt_conn {
    struct tp_mqtt_broker *brokers;
    size_t n_brokers;
    char client_id[128];
};

/* Checks the common options (path names them in errors, e.g. "input.mqtt")
 * and initialises cl: brokers from url/urls, client id (default
 * tagproc-<pid><id_suffix>), credentials, protocol, TLS context. `who` is
 * the log prefix, receive_maximum the MQTT 5 Receive Maximum announced.
 * On error nothing needs freeing; else tp__mqtt_conn_free after the client. */
int tp__mqtt_conn_setup(const struct tp__mqtt_common *c, const char *path, const char *who,
                        const char *id_suffix, uint16_t receive_maximum, struct tp__mqtt_conn *conn,
                        struct tp_mqtt_client *cl, struct tp_error *err);
void tp__mqtt_conn_free(struct tp__mqtt_conn *conn, struct tp_mqtt_client *cl);

/* The default output topic: metadata umh_topic with '.' -> '/'. TP_INVAL
 * when the message has no (or an empty) umh_topic. *valid: 1 when the
 * topic is known to be a valid topic name (tp_mqtt_topic_undot). */
int tp__mqtt_default_topic(const struct tp_msg *m, struct tp_buf *out, int *valid);

/* The input's linger in ms for its parsed config (tp_input_mqtt's option
 * table): the `linger` given, else a default that depends on the QoS. */
int64_t tp__mqtt_in_linger_ms(const void *config);

#endif
