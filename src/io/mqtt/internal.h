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
    int64_t keepalive;           /* seconds */
    int64_t reconnect_delay;     /* seconds, first retry */
    int64_t reconnect_delay_max; /* seconds, cap of the exponential back-off */
    struct tp__mqtt_tls tls;
};

extern const struct tp_option tp__mqtt_tls_options[];
extern const char *const tp__mqtt_protocols[];

/* Option table rows for struct tp__mqtt_common embedded as member `common`
 * of config struct T; `clean` is the clean_session default ("true"/"false"),
 * `proto` the protocol default ("5" / "3.1.1"). */
#define TP__MQTT_COMMON_OPTIONS(T, clean, proto)                                                   \
    {"url",                                                                                        \
     TP_OPT_STRING,                                                                                \
     offsetof(T, common.url),                                                                      \
     NULL,                                                                                         \
     "broker address: tcp://host:port or mqtt:// (1883), ssl://, tls:// or mqtts:// (8883); "      \
     "this or urls is required",                                                                   \
     0,                                                                                            \
     NULL,                                                                                         \
     0,                                                                                            \
     NULL},                                                                                        \
        {"urls",                                                                                   \
         TP_OPT_STRINGS,                                                                           \
         offsetof(T, common.urls),                                                                 \
         NULL,                                                                                     \
         "broker addresses (as url), tried in order on every (re)connect; instead of url",         \
         0,                                                                                        \
         NULL,                                                                                     \
         0,                                                                                        \
         NULL},                                                                                    \
        {"protocol",                                                                               \
         TP_OPT_STRING,                                                                            \
         offsetof(T, common.protocol),                                                             \
         proto,                                                                                    \
         "MQTT protocol version: 5 or 3.1.1",                                                      \
         0,                                                                                        \
         NULL,                                                                                     \
         0,                                                                                        \
         tp__mqtt_protocols},                                                                      \
        {"client_id",                                                                              \
         TP_OPT_STRING,                                                                            \
         offsetof(T, common.client_id),                                                            \
         NULL,                                                                                     \
         "MQTT client id (default tagproc-<pid>, -out suffix for the output); set it for a "       \
         "persistent session that survives a restart",                                             \
         0,                                                                                        \
         NULL,                                                                                     \
         0,                                                                                        \
         NULL},                                                                                    \
        {"username", TP_OPT_STRING, offsetof(T, common.username), NULL, "user name", 0, NULL,      \
         0,          NULL},                                                                        \
        {"password",                                                                               \
         TP_OPT_STRING,                                                                            \
         offsetof(T, common.password),                                                             \
         NULL,                                                                                     \
         "password (needs username)",                                                              \
         0,                                                                                        \
         NULL,                                                                                     \
         0,                                                                                        \
         NULL},                                                                                    \
        {"clean_session",                                                                          \
         TP_OPT_BOOL,                                                                              \
         offsetof(T, common.clean_session),                                                        \
         clean,                                                                                    \
         "false: persistent session (the broker keeps subscriptions and queued QoS>0 messages)",   \
         0,                                                                                        \
         NULL,                                                                                     \
         0,                                                                                        \
         NULL},                                                                                    \
        {"qos", TP_OPT_INT, offsetof(T, common.qos), "1", "quality of service 0, 1 or 2", 0, NULL, \
         0,     NULL},                                                                             \
        {"keepalive",                                                                              \
         TP_OPT_INT,                                                                               \
         offsetof(T, common.keepalive),                                                            \
         "30",                                                                                     \
         "keepalive interval in seconds (5..65535)",                                               \
         0,                                                                                        \
         NULL,                                                                                     \
         0,                                                                                        \
         NULL},                                                                                    \
        {"reconnect_delay",                                                                        \
         TP_OPT_INT,                                                                               \
         offsetof(T, common.reconnect_delay),                                                      \
         "1",                                                                                      \
         "seconds before the first reconnect attempt; doubles per failure",                        \
         0,                                                                                        \
         NULL,                                                                                     \
         0,                                                                                        \
         NULL},                                                                                    \
        {"reconnect_delay_max",                                                                    \
         TP_OPT_INT,                                                                               \
         offsetof(T, common.reconnect_delay_max),                                                  \
         "30",                                                                                     \
         "maximum seconds between reconnect attempts",                                             \
         0,                                                                                        \
         NULL,                                                                                     \
         0,                                                                                        \
         NULL},                                                                                    \
    {                                                                                              \
        "tls", TP_OPT_OBJECT, offsetof(T, common.tls), NULL,                                       \
            "TLS settings (used with ssl://, tls:// or mqtts:// urls)", 0, tp__mqtt_tls_options,   \
            0, NULL                                                                                \
    }

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
 * when the message has no (or an empty) umh_topic. */
int tp__mqtt_default_topic(const struct tp_msg *m, struct tp_buf *out);

#endif
