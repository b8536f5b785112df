/* Unit tests for the MQTT plugins' broker-independent parts: URL parsing,
 * option validation, the topic template and default topic, and that open,
 * stop, read and close behave while no broker is reachable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "builtin_plugins.h"
#include "config/config.h"
#include "core/plugin.h"
#include "io/mqtt/internal.h"

static void test_url_parse(void **state)
{
    (void)state;
    struct tp__mqtt_endpoint ep;
    struct tp_error err = {0};
    assert_int_equal(tp__mqtt_url_parse("tcp://127.0.0.1:1884", "x", &ep, &err), TP_OK);
    assert_string_equal(ep.host, "127.0.0.1");
    assert_int_equal(ep.port, 1884);
    assert_int_equal(ep.tls, 0);
    assert_int_equal(tp__mqtt_url_parse("mqtt://broker.local", "x", &ep, &err), TP_OK);
    assert_string_equal(ep.host, "broker.local");
    assert_int_equal(ep.port, 1883);
    assert_int_equal(tp__mqtt_url_parse("mqtts://broker/", "x", &ep, &err), TP_OK);
    assert_int_equal(ep.port, 8883);
    assert_int_equal(ep.tls, 1);
    assert_int_equal(tp__mqtt_url_parse("ssl://[::1]:9000", "x", &ep, &err), TP_OK);
    assert_string_equal(ep.host, "::1");
    assert_int_equal(ep.port, 9000);
    assert_int_equal(ep.tls, 1);

    assert_int_equal(tp__mqtt_url_parse("127.0.0.1:1883", "input.mqtt", &ep, &err), TP_CONFIG);
    assert_non_null(strstr(err.msg, "input.mqtt.url"));
    assert_int_equal(tp__mqtt_url_parse("http://h:1", "x", &ep, &err), TP_CONFIG);
    assert_non_null(strstr(err.msg, "unknown scheme"));
    assert_int_equal(tp__mqtt_url_parse("tcp://h:0", "x", &ep, &err), TP_CONFIG);
    assert_int_equal(tp__mqtt_url_parse("tcp://h:70000", "x", &ep, &err), TP_CONFIG);
    assert_int_equal(tp__mqtt_url_parse("tcp://h:12x", "x", &ep, &err), TP_CONFIG);
    assert_int_equal(tp__mqtt_url_parse("tcp://:1883", "x", &ep, &err), TP_CONFIG);
    assert_int_equal(tp__mqtt_url_parse("tcp://[::1", "x", &ep, &err), TP_CONFIG);
    assert_int_equal(tp__mqtt_url_parse(NULL, "x", &ep, &err), TP_CONFIG);
}

static void test_default_topic(void **state)
{
    (void)state;
    struct tp_buf out;
    tp_buf_init(&out);
    struct tp_msg *m = tp_msg_new();
    int valid = 1;
    assert_int_equal(tp__mqtt_default_topic(m, &out, &valid), TP_INVAL);
    assert_int_equal(valid, 0);
    assert_int_equal(tp_msg_meta_sets(m, "umh_topic", "umh.v1.ent.site._historian.axis.x"), 0);
    assert_int_equal(tp__mqtt_default_topic(m, &out, &valid), TP_OK);
    assert_string_equal(out.data, "umh/v1/ent/site/_historian/axis/x");
    assert_int_equal(valid, 1);
    /* what is not plain ASCII is not known valid (the output checks it fully),
     * wherever it sits in the 8-byte steps */
    static const char *const unplain[] = {"a.b+",
                                          "a/#",
                                          "plant1.caf\xc3\xa9",
                                          "x.y.z.w.v.u+.t",
                                          "umh.v1.#.axis.x.y",
                                          "\xc3\xa9.abcdefghijkl",
                                          "umh.v1.enterprise.plant1.machining+.x",
                                          "umh.v1.enterprise.plant1.machiningArea.cnc-line#",
                                          "umh.v1.enterprise.plant1.machiningArea\x01.x\xff"};
    for (size_t i = 0; i < sizeof(unplain) / sizeof(unplain[0]); i++) {
        assert_int_equal(tp_msg_meta_sets(m, "umh_topic", unplain[i]), 0);
        assert_int_equal(tp__mqtt_default_topic(m, &out, &valid), TP_OK);
        assert_int_equal(valid, 0);
    }
    /* every length and position of the dots, against the byte-wise rule */
    char v[100], want[100];
    for (size_t len = 1; len < sizeof(v); len++) {
        for (size_t i = 0; i < len; i++) {
            v[i] = (i * 7 + len) % 3 == 0 ? '.' : (char)('a' + i % 26);
            want[i] = v[i] == '.' ? '/' : v[i];
        }
        v[len] = want[len] = '\0';
        assert_int_equal(tp_msg_meta_sets(m, "umh_topic", v), 0);
        assert_int_equal(tp__mqtt_default_topic(m, &out, &valid), TP_OK);
        assert_int_equal(out.len, len);
        assert_string_equal(out.data, want);
        assert_int_equal(valid, 1);
        for (size_t at = 0; at < len; at++) { /* one unplain byte anywhere */
            char keep = v[at];
            v[at] = at % 2 ? '#' : '\x80';
            assert_int_equal(tp_msg_meta_sets(m, "umh_topic", v), 0);
            assert_int_equal(tp__mqtt_default_topic(m, &out, &valid), TP_OK);
            assert_int_equal(valid, 0);
            v[at] = keep;
        }
    }
    tp_msg_free(m);
    tp_buf_free(&out);
}

/* Parses YAML options for a plugin and opens it; returns open's status. */
struct opened {
    const struct tp_option *table;
    void *config;
    void *state;
};

static int open_input(const char *yaml, struct opened *o, struct tp_error *err)
{
    const struct tp_input_plugin *in = tp_input_find("mqtt");
    assert_non_null(in);
    struct tp_config *cfg = NULL;
    assert_int_equal(tp_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err), TP_OK);
    o->table = in->options;
    o->config = calloc(1, in->config_size);
    o->state = NULL;
    int rc = tp_options_parse(in->options, cfg->root, "input.mqtt", o->config, err);
    if (rc == TP_OK)
        rc = in->open(o->config, &o->state, err);
    tp_config_free(cfg);
    return rc;
}

static int open_output(const char *yaml, struct opened *o, struct tp_error *err)
{
    const struct tp_output_plugin *out = tp_output_find("mqtt");
    assert_non_null(out);
    struct tp_config *cfg = NULL;
    assert_int_equal(tp_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err), TP_OK);
    o->table = out->options;
    o->config = calloc(1, out->config_size);
    o->state = NULL;
    int rc = tp_options_parse(out->options, cfg->root, "output.mqtt", o->config, err);
    if (rc == TP_OK)
        rc = out->open(o->config, &o->state, err);
    tp_config_free(cfg);
    return rc;
}

static void release(struct opened *o)
{
    tp_options_free(o->table, o->config);
    free(o->config);
}

static void test_option_errors(void **state)
{
    (void)state;
    struct tp_error err = {0};
    struct opened o;
    assert_int_equal(open_input("topics: [a]\n", &o, &err), TP_CONFIG); /* url required */
    release(&o);
    assert_int_equal(open_input("url: tcp://127.0.0.1:1\ntopics: [a]\nqos: 3\n", &o, &err),
                     TP_CONFIG);
    assert_non_null(strstr(err.msg, "qos"));
    release(&o);
    assert_int_equal(open_input("url: tcp://127.0.0.1:1\ntopics: ['a/#/b']\n", &o, &err),
                     TP_CONFIG);
    assert_non_null(strstr(err.msg, "invalid topic filter"));
    release(&o);
    assert_int_equal(
        open_input("url: tcp://127.0.0.1:1\ntopics: a\ntls: {insecure: true}\n", &o, &err),
        TP_CONFIG);
    assert_non_null(strstr(err.msg, "TLS options need"));
    release(&o);
    assert_int_equal(/* a missing CA file: at its position, not a TLS library error */
                     open_input(
                         "url: mqtts://127.0.0.1:1\ntopics: a\ntls: {ca_file: /nonexistent.pem}\n",
                         &o, &err),
                     TP_CONFIG);
    assert_non_null(strstr(err.msg, "tls.ca_file: cannot read \"/nonexistent.pem\""));
    assert_int_equal(err.line, 3);
    release(&o);
    assert_int_equal(open_input("url: tcp://127.0.0.1:1\ntopics: a\npassword: p\n", &o, &err),
                     TP_CONFIG);
    assert_non_null(strstr(err.msg, "needs username"));
    release(&o);
    assert_int_equal(open_output("url: tcp://127.0.0.1:1\ntopic: 'x/{{meta}}'\n", &o, &err),
                     TP_CONFIG);
    release(&o);
    assert_int_equal(open_output("url: tcp://127.0.0.1:1\nmax_inflight: 0\n", &o, &err), TP_CONFIG);
    release(&o);
    /* urls: a list instead of url, each entry checked with its index. */
    assert_int_equal(open_input("url: tcp://a:1\nurls: [tcp://b:1]\ntopics: a\n", &o, &err),
                     TP_CONFIG);
    assert_non_null(strstr(err.msg, "not both"));
    release(&o);
    assert_int_equal(open_input("urls: [tcp://a:1, 'b:2']\ntopics: a\n", &o, &err), TP_CONFIG);
    assert_non_null(strstr(err.msg, "input.mqtt.urls[1]"));
    release(&o);
    assert_int_equal(
        open_input("urls: [tcp://a:1, ssl://b]\ntopics: a\ntls: {insecure: true}\n", &o, &err),
        TP_OK);
    tp_input_find("mqtt")->close(o.state);
    release(&o);
    assert_int_equal(open_output("url: tcp://127.0.0.1:1\nprotocol: '4'\n", &o, &err), TP_CONFIG);
    release(&o);
}

/* linger: absent, the default follows the QoS; given (0 too), it wins. */
static void test_linger_default(void **state)
{
    (void)state;
    static const struct {
        const char *extra;
        int64_t ms;
    } cases[] = {
        {"qos: 0\n", 2},
        {"qos: 1\n", 5},
        {"qos: 2\n", 5},
        {"", 5}, /* qos 1 by default */
        {"qos: 0\nlinger: 0\n", 0},
        {"qos: 1\nlinger: 0s\n", 0},
        {"qos: 0\nlinger: 7ms\n", 7},
        {"qos: 1\nlinger: 1ms\n", 1},
        {"qos: 1\nlinger: ~\n", 5},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "url: tcp://127.0.0.1:1\ntopics: a\n%s", cases[i].extra);
        struct tp_error err = {0};
        struct opened o;
        assert_int_equal(open_input(yaml, &o, &err), TP_OK);
        if (tp__mqtt_in_linger_ms(o.config) != cases[i].ms)
            fail_msg("%s: linger %lld ms, expected %lld", cases[i].extra,
                     (long long)tp__mqtt_in_linger_ms(o.config), (long long)cases[i].ms);
        tp_input_find("mqtt")->close(o.state);
        release(&o);
    }
}

/* Port 1 on 127.0.0.1 refuses connections: open succeeds (the plugins retry),
 * stop makes a blocked read return TP_EOF, close returns. */
static void test_no_broker(void **state)
{
    (void)state;
    struct tp_error err = {0};
    struct opened o;
    assert_int_equal(
        open_input("url: tcp://127.0.0.1:1\ntopics: [a/#, b]\nreconnect_delay: 1\n", &o, &err),
        TP_OK);
    const struct tp_input_plugin *in = tp_input_find("mqtt");
    in->stop(o.state);
    struct tp_batch b;
    tp_batch_init(&b);
    struct tp_drops d;
    tp_drops_init(&d);
    assert_int_equal(in->read(o.state, &b, 16, &d, &err), TP_EOF);
    assert_int_equal(b.len, 0);
    in->close(o.state);
    tp_batch_free(&b);
    tp_drops_free(&d);
    release(&o);

    assert_int_equal(open_output("url: tcp://127.0.0.1:1\n", &o, &err), TP_OK);
    const struct tp_output_plugin *out = tp_output_find("mqtt");
    assert_int_equal(tp_output_write_sync(out, o.state, NULL, 0, NULL, NULL, &err), TP_OK);
    /* After stop, a write to an unreachable broker fails instead of waiting. */
    struct tp_msg *m = tp_msg_new();
    assert_int_equal(tp_msg_meta_sets(m, "umh_topic", "umh.v1.a._b.c"), 0);
    out->stop(o.state);
    assert_int_equal(tp_output_write_sync(out, o.state, &m, 1, NULL, NULL, &err), TP_IO);
    assert_non_null(strstr(err.msg, "not acknowledged"));
    tp_msg_free(m);
    out->close(o.state);
    release(&o);
}

int main(void)
{
    tp_plugins_use(&tp_builtin_plugins);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse),     cmocka_unit_test(test_default_topic),
        cmocka_unit_test(test_option_errors), cmocka_unit_test(test_linger_default),
        cmocka_unit_test(test_no_broker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
