/* MQTT 3.1.1 and 5.0 packet codec: encoders that append whole packets to a
 * byte buffer, and one decoder that splits a byte stream into packets and
 * checks them (lengths, flags, property identifiers and types, UTF-8 rules
 * of topics). No I/O here: the socket layer (net.h) and the client
 * (client.h) use it, and the unit tests and the fuzz target drive it alone. */
#ifndef TP_MQTT_CODEC_H
#define TP_MQTT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define TP_MQTT_V311 4
#define TP_MQTT_V5 5

/* The largest packet the client accepts (announced as Maximum Packet Size
 * with MQTT 5; a bigger one from a 3.1.1 broker is a protocol error). */
#define TP_MQTT_MAX_PACKET (64u * 1024u * 1024u)

enum tp_mqtt_type {
    TP_MQTT_CONNECT = 1,
    TP_MQTT_CONNACK = 2,
    TP_MQTT_PUBLISH = 3,
    TP_MQTT_PUBACK = 4,
    TP_MQTT_PUBREC = 5,
    TP_MQTT_PUBREL = 6,
    TP_MQTT_PUBCOMP = 7,
    TP_MQTT_SUBSCRIBE = 8,
    TP_MQTT_SUBACK = 9,
    TP_MQTT_UNSUBSCRIBE = 10,
    TP_MQTT_UNSUBACK = 11,
    TP_MQTT_PINGREQ = 12,
    TP_MQTT_PINGRESP = 13,
    TP_MQTT_DISCONNECT = 14,
    TP_MQTT_AUTH = 15,
};

/* A length-prefixed string or binary field, pointing into the decoded bytes. */
struct tp_mqtt_str {
    const char *p;
    size_t len;
};

/* The MQTT 5 properties the client uses; the others are checked and skipped.
 * user_props points at the whole property block (iterate it with
 * tp_mqtt_user_prop_next); n_user counts the User Property entries. */
struct tp_mqtt_props {
    uint32_t session_expiry;               /* 0x11 */
    uint16_t receive_maximum;              /* 0x21, 0 = absent (the spec's default is 65535) */
    uint32_t maximum_packet_size;          /* 0x27, 0 = absent */
    int maximum_qos;                       /* 0x24, -1 = absent */
    int retain_available;                  /* 0x25, -1 = absent */
    uint16_t topic_alias_maximum;          /* 0x22 */
    uint16_t topic_alias;                  /* 0x23 */
    int server_keep_alive;                 /* 0x13, -1 = absent */
    struct tp_mqtt_str assigned_client_id; /* 0x12 */
    struct tp_mqtt_str reason_string;      /* 0x1F */
    const uint8_t *block;                  /* the raw property bytes */
    size_t block_len;
    size_t n_user;
};

/* One decoded packet. Pointers refer into the decoder's input. */
struct tp_mqtt_packet {
    enum tp_mqtt_type type;
    uint8_t flags; /* low nibble of the first byte */
    uint16_t id;   /* packet identifier (PUBLISH QoS>0, PUBACK.., SUBSCRIBE, SUBACK) */
    int reason;    /* CONNACK return/reason code; PUBACK.. and DISCONNECT reason (v5) */
    /* CONNACK */
    int session_present;
    /* PUBLISH */
    int qos, retain, dup;
    struct tp_mqtt_str topic;
    const uint8_t *payload;
    size_t payload_len;
    /* SUBACK: one return code per filter; SUBSCRIBE: the raw filter list */
    const uint8_t *list;
    size_t list_len;
    /* CONNECT (decoded for tests and the fuzz target) */
    int version, clean_start, keepalive;
    struct tp_mqtt_str client_id, username, password;
    int has_username, has_password;
    struct tp_mqtt_props props;
};

/* Decodes the packet at the start of buf[0..len). Returns TP_OK (*used =
 * its size), TP_AGAIN (incomplete: read more bytes) or TP_PARSE (malformed:
 * why says what, the connection must be closed). `version` is the protocol
 * level of the connection (4 or 5); a CONNECT decodes with its own. */
int tp_mqtt_decode(const uint8_t *buf, size_t len, int version, struct tp_mqtt_packet *pkt,
                   size_t *used, char *why, size_t why_len);

/* Iterates the User Property pairs of props: start with *pos = 0; returns 1
 * with key and value set, 0 at the end. */
int tp_mqtt_user_prop_next(const struct tp_mqtt_props *props, size_t *pos, struct tp_mqtt_str *key,
                           struct tp_mqtt_str *val);

/* 1 when s is a valid topic name (publish: no wildcards) or, with filter
 * set, a valid topic filter (+ and # rules); UTF-8 checked, no NUL. */
int tp_mqtt_topic_valid(const char *s, size_t len, int filter);
/* Copies the len bytes at s to out with every '.' replaced by '/' (16
 * bytes a step with SSE2, else 8). Returns 1 when the copy is a valid topic name found in the same
 * pass (1..65535 ASCII bytes without NUL, '+' or '#'); 0: not known, check
 * it with tp_mqtt_topic_valid. */
int tp_mqtt_topic_undot(const char *s, size_t len, char *out);

struct tp_mqtt_connect {
    int version; /* 4 or 5 */
    int clean_start;
    int keepalive;
    const char *client_id;
    const char *username;         /* NULL: none */
    const char *password;         /* NULL: none */
    uint32_t session_expiry;      /* v5 */
    uint16_t receive_maximum;     /* v5, 0: not sent */
    uint32_t maximum_packet_size; /* v5, 0: not sent */
};

/* Encoders: append one packet to out; 0 or TP_NOMEM (TP_INVAL for a field
 * longer than MQTT allows). */
int tp_mqtt_encode_connect(struct tp_buf *out, const struct tp_mqtt_connect *c);
/* PUBLISH; with MQTT 5 an empty property block. id is ignored for QoS 0.
 * id_pos (may be NULL) gets the offset in out of the packet id field, so a
 * sender can assign the id later. */
int tp_mqtt_encode_publish(struct tp_buf *out, int version, const char *topic, size_t topic_len,
                           const void *payload, size_t payload_len, int qos, int retain, int dup,
                           uint16_t id, size_t *id_pos);
/* PUBACK, PUBREC, PUBREL, PUBCOMP (success). */
int tp_mqtt_encode_ack(struct tp_buf *out, int version, enum tp_mqtt_type type, uint16_t id);
/* One SUBSCRIBE for n filters, each with the same maximum QoS. */
int tp_mqtt_encode_subscribe(struct tp_buf *out, int version, uint16_t id,
                             const char *const *filters, size_t n, int qos);
int tp_mqtt_encode_pingreq(struct tp_buf *out);
int tp_mqtt_encode_disconnect(struct tp_buf *out, int version);
/* Server side, for tests: CONNACK and SUBACK. */
int tp_mqtt_encode_connack(struct tp_buf *out, int version, int session_present, int reason,
                           uint16_t receive_maximum);
int tp_mqtt_encode_suback(struct tp_buf *out, int version, uint16_t id, const uint8_t *codes,
                          size_t n);

/* Text for a CONNACK code (3.1.1 return code or 5 reason code). */
const char *tp_mqtt_connack_text(int version, int code);

#endif
