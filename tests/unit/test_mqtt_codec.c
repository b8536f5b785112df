/* Unit tests for the MQTT 3.1.1 / 5 packet codec (src/io/mqtt/codec.c):
 * encode -> decode round trips of every packet the client uses, MQTT 5
 * properties (Receive Maximum, reason string, user properties), packets cut
 * at every length (TP_AGAIN), and malformed or hostile packets (TP_PARSE
 * with a reason, never a read past the bytes given). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "io/mqtt/codec.h"

/* Decodes a heap copy of exactly len bytes (so ASan sees overreads). */
static int decode(const void *bytes, size_t len, int version, struct tp_mqtt_packet *pkt,
                  size_t *used, char *why)
{
    static uint8_t *copy;
    free(copy);
    copy = malloc(len ? len : 1);
    memcpy(copy, bytes, len);
    why[0] = '\0';
    return tp_mqtt_decode(copy, len, version, pkt, used, why, 200);
}

/* Every strict prefix of a valid packet is incomplete, never malformed. */
static void assert_prefixes_again(const struct tp_buf *b, int version)
{
    struct tp_mqtt_packet pkt;
    size_t used;
    char why[200];
    for (size_t n = 0; n < b->len; n++)
        assert_int_equal(decode(b->data, n, version, &pkt, &used, why), TP_AGAIN);
}

static void test_connect_roundtrip(void **state)
{
    (void)state;
    for (int v = TP_MQTT_V311; v <= TP_MQTT_V5; v++) {
        struct tp_buf b;
        tp_buf_init(&b);
        struct tp_mqtt_connect c = {.version = v,
                                    .clean_start = 0,
                                    .keepalive = 30,
                                    .client_id = "tp-sub",
                                    .username = "user",
                                    .password = "secret",
                                    .session_expiry = 0xFFFFFFFFu,
                                    .receive_maximum = 65535,
                                    .maximum_packet_size = TP_MQTT_MAX_PACKET};
        assert_int_equal(tp_mqtt_encode_connect(&b, &c), TP_OK);
        struct tp_mqtt_packet pkt;
        size_t used;
        char why[200];
        assert_int_equal(decode(b.data, b.len, 0, &pkt, &used, why), TP_OK);
        assert_int_equal(used, b.len);
        assert_int_equal(pkt.type, TP_MQTT_CONNECT);
        assert_int_equal(pkt.version, v);
        assert_int_equal(pkt.clean_start, 0);
        assert_int_equal(pkt.keepalive, 30);
        assert_int_equal(pkt.client_id.len, 6);
        assert_memory_equal(pkt.client_id.p, "tp-sub", 6);
        assert_true(pkt.has_username && pkt.has_password);
        assert_memory_equal(pkt.password.p, "secret", 6);
        if (v == TP_MQTT_V5) {
            assert_int_equal(pkt.props.receive_maximum, 65535);
            assert_int_equal(pkt.props.session_expiry, 0xFFFFFFFFu);
            assert_int_equal(pkt.props.maximum_packet_size, TP_MQTT_MAX_PACKET);
        }
        assert_prefixes_again(&b, v);
        tp_buf_free(&b);
    }
}

static void test_publish_roundtrip(void **state)
{
    (void)state;
    static char big[20000];
    memset(big, 'x', sizeof(big));
    for (int v = TP_MQTT_V311; v <= TP_MQTT_V5; v++)
        for (int qos = 0; qos <= 2; qos++) {
            struct tp_buf b;
            tp_buf_init(&b);
            size_t id_pos = 0;
            assert_int_equal(
                tp_mqtt_encode_publish(&b, v, "umh/v1/a", 8, "{\"v\":1}", 7, qos, 1, 0, 0, &id_pos),
                TP_OK);
            /* Second packet in the same buffer: a large payload (3-byte length). */
            size_t first = b.len;
            assert_int_equal(
                tp_mqtt_encode_publish(&b, v, "t", 1, big, sizeof(big), qos, 0, qos > 0, 77, NULL),
                TP_OK);
            if (qos) { /* assign the first packet's id afterwards, as the output does */
                b.data[id_pos] = 0x12;
                b.data[id_pos + 1] = 0x34;
            }
            struct tp_mqtt_packet pkt;
            size_t used;
            char why[200];
            assert_int_equal(decode(b.data, b.len, v, &pkt, &used, why), qos ? TP_OK : TP_OK);
            assert_int_equal(used, first);
            assert_int_equal(pkt.type, TP_MQTT_PUBLISH);
            assert_int_equal(pkt.qos, qos);
            assert_int_equal(pkt.retain, 1);
            assert_int_equal(pkt.dup, 0);
            assert_int_equal(pkt.id, qos ? 0x1234 : 0);
            assert_int_equal(pkt.topic.len, 8);
            assert_memory_equal(pkt.topic.p, "umh/v1/a", 8);
            assert_int_equal(pkt.payload_len, 7);
            assert_memory_equal(pkt.payload, "{\"v\":1}", 7);
            assert_int_equal(decode(b.data + first, b.len - first, v, &pkt, &used, why), TP_OK);
            assert_int_equal(pkt.payload_len, sizeof(big));
            assert_int_equal(pkt.dup, qos > 0);
            assert_int_equal(pkt.id, qos ? 77 : 0);
            tp_buf_free(&b);
        }
}

static void test_acks_subscribe_ping(void **state)
{
    (void)state;
    struct tp_mqtt_packet pkt;
    size_t used;
    char why[200];
    for (int v = TP_MQTT_V311; v <= TP_MQTT_V5; v++) {
        struct tp_buf b;
        tp_buf_init(&b);
        enum tp_mqtt_type types[] = {TP_MQTT_PUBACK, TP_MQTT_PUBREC, TP_MQTT_PUBREL,
                                     TP_MQTT_PUBCOMP};
        for (size_t i = 0; i < 4; i++) {
            tp_buf_reset(&b);
            assert_int_equal(tp_mqtt_encode_ack(&b, v, types[i], 65535), TP_OK);
            assert_int_equal(decode(b.data, b.len, v, &pkt, &used, why), TP_OK);
            assert_int_equal(pkt.type, types[i]);
            assert_int_equal(pkt.id, 65535);
            assert_int_equal(pkt.reason, 0);
        }
        tp_buf_reset(&b);
        const char *filters[] = {"umh/v1/#", "a/+/c"};
        assert_int_equal(tp_mqtt_encode_subscribe(&b, v, 9, filters, 2, 1), TP_OK);
        assert_int_equal(decode(b.data, b.len, v, &pkt, &used, why), TP_OK);
        assert_int_equal(pkt.type, TP_MQTT_SUBSCRIBE);
        assert_int_equal(pkt.id, 9);
        assert_int_equal(pkt.list_len, 2 + 8 + 1 + 2 + 5 + 1);
        tp_buf_reset(&b);
        const uint8_t codes[] = {1, 0x80};
        assert_int_equal(tp_mqtt_encode_suback(&b, v, 9, codes, 2), TP_OK);
        assert_int_equal(decode(b.data, b.len, v, &pkt, &used, why), TP_OK);
        assert_int_equal(pkt.type, TP_MQTT_SUBACK);
        assert_int_equal(pkt.list_len, 2);
        assert_int_equal(pkt.list[1], 0x80);
        tp_buf_reset(&b);
        assert_int_equal(tp_mqtt_encode_pingreq(&b), TP_OK);
        assert_int_equal(tp_mqtt_encode_disconnect(&b, v), TP_OK);
        assert_int_equal(decode(b.data, b.len, v, &pkt, &used, why), TP_OK);
        assert_int_equal(pkt.type, TP_MQTT_PINGREQ);
        assert_int_equal(used, 2);
        assert_int_equal(decode(b.data + 2, 2, v, &pkt, &used, why), TP_OK);
        assert_int_equal(pkt.type, TP_MQTT_DISCONNECT);
        tp_buf_reset(&b);
        assert_int_equal(tp_mqtt_encode_connack(&b, v, 1, 0, 20), TP_OK);
        assert_int_equal(decode(b.data, b.len, v, &pkt, &used, why), TP_OK);
        assert_int_equal(pkt.type, TP_MQTT_CONNACK);
        assert_int_equal(pkt.session_present, 1);
        assert_int_equal(pkt.props.receive_maximum, v == TP_MQTT_V5 ? 20 : 0);
        tp_buf_free(&b);
    }
}

/* MQTT 5 packets with properties, built by hand. */
static void test_v5_properties(void **state)
{
    (void)state;
    struct tp_mqtt_packet pkt;
    size_t used;
    char why[200];
    /* CONNACK: session present, success, Receive Maximum 100, Maximum QoS 1,
     * Reason String "ok", User Property ("k", "v"), Assigned Client Id "id". */
    const uint8_t connack[] = {0x20, 25,   0x01, 0x00, 22,   0x21, 0x00, 100,  0x24,
                               0x01, 0x1F, 0x00, 0x02, 'o',  'k',  0x26, 0x00, 0x01,
                               'k',  0x00, 0x01, 'v',  0x12, 0x00, 0x02, 'i',  'd'};
    assert_int_equal(decode(connack, sizeof(connack), TP_MQTT_V5, &pkt, &used, why), TP_OK);
    assert_int_equal(pkt.props.receive_maximum, 100);
    assert_int_equal(pkt.props.maximum_qos, 1);
    assert_int_equal(pkt.props.n_user, 1);
    assert_int_equal(pkt.props.reason_string.len, 2);
    assert_memory_equal(pkt.props.assigned_client_id.p, "id", 2);
    size_t pos = 0;
    struct tp_mqtt_str k, val;
    assert_int_equal(tp_mqtt_user_prop_next(&pkt.props, &pos, &k, &val), 1);
    assert_memory_equal(k.p, "k", 1);
    assert_memory_equal(val.p, "v", 1);
    assert_int_equal(tp_mqtt_user_prop_next(&pkt.props, &pos, &k, &val), 0);
    /* PUBACK with reason "not authorized" (0x87) and no properties. */
    const uint8_t puback[] = {0x40, 3, 0x00, 0x05, 0x87};
    assert_int_equal(decode(puback, sizeof(puback), TP_MQTT_V5, &pkt, &used, why), TP_OK);
    assert_int_equal(pkt.reason, 0x87);
    /* PUBLISH with Message Expiry, Subscription Identifier and Content Type. */
    const uint8_t publish[] = {0x32, 19, 0x00, 0x01, 't',  0x00, 0x07, 11,  0x02, 0,  0,
                               0,    60, 0x0B, 0x05, 0x03, 0x00, 0x01, 'j', 'x',  'y'};
    assert_int_equal(decode(publish, sizeof(publish), TP_MQTT_V5, &pkt, &used, why), TP_OK);
    assert_int_equal(pkt.id, 7);
    assert_int_equal(pkt.payload_len, 2);
    assert_memory_equal(pkt.payload, "xy", 2);
    /* DISCONNECT from the broker with reason 0x8B (server shutting down). */
    const uint8_t disc[] = {0xE0, 1, 0x8B};
    assert_int_equal(decode(disc, sizeof(disc), TP_MQTT_V5, &pkt, &used, why), TP_OK);
    assert_int_equal(pkt.reason, 0x8B);
}

struct bad_case {
    const char *name;
    int version;
    uint8_t bytes[24];
    size_t len;
    const char *why; /* expected part of the reason */
};

static void test_malformed(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"5-byte remaining length", 4, {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, 6, "longer than 4"},
        {"packet over the maximum", 4, {0x30, 0xFF, 0xFF, 0xFF, 0x7F}, 5, "maximum packet size"},
        {"QoS 3", 4, {0x36, 5, 0, 1, 't', 0, 1}, 7, "QoS 3"},
        {"QoS 0 with DUP", 4, {0x38, 3, 0, 1, 't'}, 5, "DUP"},
        {"topic with wildcard", 4, {0x30, 3, 0, 1, '#'}, 5, "wildcard"},
        {"topic with NUL", 4, {0x30, 4, 0, 2, 'a', 0}, 6, "UTF-8"},
        {"overlong UTF-8", 4, {0x30, 4, 0, 2, 0xC0, 0x80}, 6, "UTF-8"},
        {"UTF-16 surrogate", 4, {0x30, 5, 0, 3, 0xED, 0xA0, 0x80}, 7, "UTF-8"},
        {"topic beyond packet", 4, {0x30, 3, 0, 9, 't'}, 5, "beyond"},
        {"empty topic", 4, {0x30, 2, 0, 0}, 4, "empty topic"},
        {"packet id 0", 4, {0x32, 5, 0, 1, 't', 0, 0}, 7, "identifier 0"},
        {"PUBACK id 0", 4, {0x40, 2, 0, 0}, 4, "identifier 0"},
        {"PUBACK too long (3.1.1)", 4, {0x40, 3, 0, 1, 0}, 5, "longer than 2"},
        {"PUBREL flags", 4, {0x60, 2, 0, 1}, 4, "fixed header flags"},
        {"CONNACK reserved flags", 4, {0x20, 2, 0x02, 0}, 4, "reserved"},
        {"CONNACK too short", 4, {0x20, 1, 0}, 3, "too short"},
        {"PINGRESP with body", 4, {0xD0, 1, 0}, 3, "body"},
        {"SUBACK empty", 4, {0x90, 2, 0, 1}, 4, "without"},
        {"reserved type 0", 4, {0x00, 0}, 2, "unsupported"},
        {"AUTH", 5, {0xF0, 0}, 2, "unsupported"},
        {"unknown property", 5, {0x40, 6, 0, 1, 0, 2, 0x7F, 0}, 8, "unknown property"},
        {"property twice", 5, {0x40, 10, 0, 1, 0, 6, 0x21, 0, 1, 0x21, 0, 1}, 12, "twice"},
        {"property length beyond packet", 5, {0x40, 5, 0, 1, 0, 9, 0x21}, 7, "beyond"},
        {"Receive Maximum 0", 5, {0x20, 6, 0, 0, 3, 0x21, 0, 0}, 8, "Receive Maximum"},
        {"property value cut", 5, {0x40, 6, 0, 1, 0, 2, 0x21, 0}, 8, "too short"},
        {"user property cut", 5, {0x40, 8, 0, 1, 0, 4, 0x26, 0, 5, 'k'}, 10, "beyond"},
        {"CONNECT bad name",
         4,
         {0x10, 12, 0, 4, 'M', 'Q', 'T', 'X', 4, 2, 0, 30, 0, 0},
         14,
         "not MQTT"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bad_case *c = &cases[i];
        struct tp_mqtt_packet pkt;
        size_t used;
        char why[200];
        int rc = decode(c->bytes, c->len, c->version, &pkt, &used, why);
        if (rc != TP_PARSE || !strstr(why, c->why)) {
            fprintf(stderr, "case \"%s\": rc %d, why \"%s\"\n", c->name, rc, why);
            fail();
        }
    }
}

static void test_topic_valid(void **state)
{
    (void)state;
    assert_true(tp_mqtt_topic_valid("a/b/c", 5, 0));
    assert_true(tp_mqtt_topic_valid("#", 1, 1));
    assert_true(tp_mqtt_topic_valid("a/+/c/#", 7, 1));
    assert_true(tp_mqtt_topic_valid("+", 1, 1));
    assert_true(tp_mqtt_topic_valid("/", 1, 1));
    assert_true(tp_mqtt_topic_valid("gr\xC3\xBCn", 5, 0));
    assert_false(tp_mqtt_topic_valid("a/+/c", 5, 0));
    assert_false(tp_mqtt_topic_valid("a/#/b", 5, 1));
    assert_false(tp_mqtt_topic_valid("a#", 2, 1));
    assert_false(tp_mqtt_topic_valid("a/b+", 4, 1));
    assert_false(tp_mqtt_topic_valid("+a", 2, 1));
    assert_false(tp_mqtt_topic_valid("", 0, 1));
    assert_false(tp_mqtt_topic_valid("\xFF", 1, 0));
    /* topic names longer than a word: the 8-bytes-a-step path */
    assert_true(tp_mqtt_topic_valid("umh/v1/enterprise/site/_historian/x", 35, 0));
    assert_false(tp_mqtt_topic_valid("umh/v1/+/site/_historian/x", 26, 0));
    assert_false(tp_mqtt_topic_valid("umh/v1/enterprise/site/_historian/#", 35, 0));
    assert_false(tp_mqtt_topic_valid("umh/v1/e\0nterprise", 18, 0));
    assert_true(tp_mqtt_topic_valid("umh/v1/gr\xC3\xBCn/site", 17, 0));
    assert_false(tp_mqtt_topic_valid("umh/v1/gr\xC3/site/xx", 18, 0));
}

/* Topic names of random bytes: valid exactly when the filter check (no
 * shortcut) accepts them and they hold no wildcard. */
static void test_topic_valid_random(void **state)
{
    (void)state;
    static const char alphabet[] = {'a',  '/',        '.',        '+',        '#',
                                    '\0', (char)0xC3, (char)0xBC, (char)0xFF, 'Z'};
    uint32_t r = 12345;
    char s[40];
    for (int k = 0; k < 200000; k++) {
        r = r * 1103515245u + 12345u;
        size_t len = 1 + (r >> 16) % sizeof(s);
        for (size_t i = 0; i < len; i++) {
            r = r * 1103515245u + 12345u;
            unsigned x = (r >> 16) % 40; /* mostly plain letters */
            s[i] = x < sizeof(alphabet) ? alphabet[x] : (char)('a' + x % 26);
        }
        int wild = memchr(s, '+', len) || memchr(s, '#', len);
        int want = !wild && tp_mqtt_topic_valid(s, len, 1);
        if (tp_mqtt_topic_valid(s, len, 0) != want)
            fail_msg("case %d (len %zu): got %d", k, len, !want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_roundtrip),   cmocka_unit_test(test_publish_roundtrip),
        cmocka_unit_test(test_acks_subscribe_ping), cmocka_unit_test(test_v5_properties),
        cmocka_unit_test(test_malformed),           cmocka_unit_test(test_topic_valid),
        cmocka_unit_test(test_topic_valid_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
