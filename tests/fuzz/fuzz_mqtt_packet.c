/* Fuzz target for the MQTT packet decoder (src/io/mqtt/codec.c): the first
 * byte picks the protocol level (even: 3.1.1, odd: 5), the rest is a byte
 * stream from a "broker" split into packets until it is incomplete or
 * malformed. Every decoded packet must lie inside the input, every pointer
 * field inside the packet, a malformed one must say why; PUBLISH and the
 * acknowledgements must re-encode to bytes that decode to the same fields,
 * and the User Property iterator must find exactly n_user pairs. Any
 * violation aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "io/mqtt/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_mqtt_packet: property violated: %s\n", what);
        abort();
    }
}

static void inside(const void *p, size_t n, const uint8_t *start, size_t len, const char *what)
{
    if (n == 0)
        return;
    const uint8_t *q = p;
    check(q >= start && q + n <= start + len, what);
}

static void check_props(const struct tp_mqtt_props *pr, const uint8_t *pkt, size_t len)
{
    inside(pr->block, pr->block_len, pkt, len, "property block inside the packet");
    inside(pr->reason_string.p, pr->reason_string.len, pkt, len, "reason string inside");
    size_t pos = 0, n = 0;
    struct tp_mqtt_str k, v;
    while (tp_mqtt_user_prop_next(pr, &pos, &k, &v)) {
        inside(k.p, k.len, pkt, len, "user property name inside");
        inside(v.p, v.len, pkt, len, "user property value inside");
        n++;
    }
    check(n == pr->n_user, "user property iterator finds n_user pairs");
}

static void roundtrip(const struct tp_mqtt_packet *p, int version)
{
    struct tp_buf b;
    tp_buf_init(&b);
    int rc = TP_OK;
    if (p->type == TP_MQTT_PUBLISH)
        rc = tp_mqtt_encode_publish(&b, version, p->topic.p, p->topic.len, p->payload,
                                    p->payload_len, p->qos, p->retain, p->dup, p->id, NULL);
    else if (p->type >= TP_MQTT_PUBACK && p->type <= TP_MQTT_PUBCOMP)
        rc = tp_mqtt_encode_ack(&b, version, p->type, p->id);
    else {
        tp_buf_free(&b);
        return;
    }
    check(rc == TP_OK, "a decoded packet re-encodes");
    struct tp_mqtt_packet q;
    size_t used = 0;
    char why[200];
    check(tp_mqtt_decode((const uint8_t *)b.data, b.len, version, &q, &used, why, sizeof(why)) ==
              TP_OK,
          "the re-encoded packet decodes");
    check(used == b.len, "the re-encoded packet is consumed whole");
    check(q.type == p->type && q.id == p->id, "type and id survive");
    if (p->type == TP_MQTT_PUBLISH) {
        check(q.qos == p->qos && q.retain == p->retain && q.dup == p->dup, "flags survive");
        check(q.topic.len == p->topic.len && !memcmp(q.topic.p, p->topic.p, q.topic.len),
              "topic survives");
        check(q.payload_len == p->payload_len &&
                  (!q.payload_len || !memcmp(q.payload, p->payload, q.payload_len)),
              "payload survives");
    }
    tp_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int version = (data[0] & 1) ? TP_MQTT_V5 : TP_MQTT_V311;
    const uint8_t *p = data + 1, *end = data + size;
    while (p < end) {
        struct tp_mqtt_packet pkt;
        size_t used = 0;
        char why[200] = "";
        int rc = tp_mqtt_decode(p, (size_t)(end - p), version, &pkt, &used, why, sizeof(why));
        if (rc == TP_AGAIN)
            break;
        if (rc == TP_PARSE) {
            check(why[0] != '\0', "a malformed packet says why");
            break;
        }
        check(rc == TP_OK, "decode returns OK, AGAIN or PARSE");
        check(used >= 2 && used <= (size_t)(end - p), "a packet lies inside the input");
        inside(pkt.topic.p, pkt.topic.len, p, used, "topic inside the packet");
        inside(pkt.payload, pkt.payload_len, p, used, "payload inside the packet");
        inside(pkt.list, pkt.list_len, p, used, "list inside the packet");
        inside(pkt.client_id.p, pkt.client_id.len, p, used, "client id inside the packet");
        if (pkt.type == TP_MQTT_PUBLISH)
            check(tp_mqtt_topic_valid(pkt.topic.p, pkt.topic.len, 0), "PUBLISH topic is valid");
        check_props(&pkt.props, p, used);
        roundtrip(&pkt, pkt.type == TP_MQTT_CONNECT ? pkt.version : version);
        p += used;
    }
    return 0;
}
