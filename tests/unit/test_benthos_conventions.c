/* Unit tests of the Benthos config conventions: `${VAR:default}` environment
 * interpolation of config values (numbers too, positioned errors for unset
 * variables, `$${` escape, JS code kept as written) and the one template
 * engine of topic/subject/key fields ({{meta.K}}, ${! meta("k") }, ${! @k }). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/msg.h"
#include "core/template.h"

struct opts {
    char *host;
    int64_t port;
    int enabled;
    struct tp_strlist urls;
    struct tp_js_snippet js;
};

static const struct tp_option opts_table[] = {
    {.name = "host", .type = TP_OPT_STRING, .offset = offsetof(struct opts, host)},
    {.name = "port", .type = TP_OPT_INT, .offset = offsetof(struct opts, port), .def = "1"},
    {.name = "enabled", .type = TP_OPT_BOOL, .offset = offsetof(struct opts, enabled)},
    {.name = "urls", .type = TP_OPT_STRINGS, .offset = offsetof(struct opts, urls)},
    {.name = "js", .type = TP_OPT_JS, .offset = offsetof(struct opts, js)},
    {0},
};

/* Loads yaml and parses its `s` map; returns the status, the error text in msg. */
static int parse(const char *yaml, struct opts *out, char *msg, size_t size)
{
    struct tp_config *cfg = NULL;
    struct tp_error err = {0};
    msg[0] = '\0';
    int rc = tp_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, &err);
    if (rc == TP_OK)
        rc = tp_options_parse(opts_table, tp_node_get(cfg->root, "s"), "s", out, &err);
    if (rc)
        tp_error_format(&err, msg, size);
    if (rc && rc != TP_CONFIG)
        fail_msg("%s", msg);
    tp_config_free(cfg);
    return rc;
}

static void test_env_values(void **state)
{
    (void)state;
    setenv("TP_T_HOST", "broker.local", 1);
    setenv("TP_T_PORT", "9093", 1);
    unsetenv("TP_T_UNSET");
    struct opts o = {0};
    char msg[600];
    assert_int_equal(parse("s:\n"
                           "  host: tcp://${TP_T_HOST}:${TP_T_UNSET:1883}/x\n"
                           "  port: ${TP_T_PORT:1}\n"
                           "  enabled: ${TP_T_UNSET:true}\n"
                           "  urls: [\"${TP_T_UNSET:a}\", '$${TP_T_HOST}']\n"
                           "  js: return `${msg.payload}` + '${TP_T_UNSET:d}' + `$${x}`;\n",
                           &o, msg, sizeof(msg)),
                     TP_OK);
    assert_string_equal(o.host, "tcp://broker.local:1883/x");
    assert_int_equal(o.port, 9093);
    assert_int_equal(o.enabled, 1);
    assert_int_equal(o.urls.n, 2);
    assert_string_equal(o.urls.v[0], "a");
    assert_string_equal(o.urls.v[1], "${TP_T_HOST}");
    /* JavaScript keeps its own ${...} template literals (and $${); only
     * references with a default are environment variables there */
    assert_string_equal(o.js.code, "return `${msg.payload}` + 'd' + `$${x}`;");
    tp_options_free(opts_table, &o);

    /* a Bloblang interpolation is not an environment reference */
    memset(&o, 0, sizeof(o));
    assert_int_equal(parse("s:\n  host: 'a/${! meta(\"k\") }'\n", &o, msg, sizeof(msg)), TP_OK);
    assert_string_equal(o.host, "a/${! meta(\"k\") }");
    tp_options_free(opts_table, &o);
}

static void test_env_unset_is_positioned_error(void **state)
{
    (void)state;
    unsetenv("TP_T_UNSET");
    struct opts o = {0};
    char msg[600];
    assert_int_equal(parse("s:\n  host: x-${TP_T_UNSET}\n", &o, msg, sizeof(msg)), TP_CONFIG);
    assert_string_equal(msg, "t.yaml:2:11: s.host: environment variable TP_T_UNSET is not set "
                             "and has no default (write ${TP_T_UNSET:default})");
    memset(&o, 0, sizeof(o));
    assert_int_equal(parse("s:\n  port: ${TP_T_UNSET}\n", &o, msg, sizeof(msg)), TP_CONFIG);
    assert_string_equal(msg, "t.yaml:2:9: s.port: environment variable TP_T_UNSET is not set "
                             "and has no default (write ${TP_T_UNSET:default})");
    /* an unset variable in JS code is not an error: it is a JS template literal */
    memset(&o, 0, sizeof(o));
    assert_int_equal(parse("s:\n  js: return `${TP_T_UNSET}`;\n", &o, msg, sizeof(msg)), TP_OK);
    tp_options_free(opts_table, &o);
}

static struct tp_msg *msg_with(const char *k1, const char *v1, const char *k2, const char *v2)
{
    struct tp_msg *m = tp_msg_new();
    assert_non_null(m);
    if (k1)
        assert_int_equal(tp_msg_meta_sets(m, k1, v1), TP_OK);
    if (k2)
        assert_int_equal(tp_msg_meta_sets(m, k2, v2), TP_OK);
    return m;
}

static void test_template_forms(void **state)
{
    (void)state;
    struct tp_msg *m = msg_with("a", "A", "b.c", "BC");
    const char *ok[][2] = {
        {"plain", "plain"},
        {"x/{{meta.a}}/{{ meta.b.c }}", "x/A/BC"},
        {"x/${! meta(\"a\") }/${!meta('b.c')}", "x/A/BC"},
        {"${! @a }.${!@b.c}", "A.BC"},
        {"${! @missing }-{{meta.a}}", "-A"},
    };
    struct tp_buf out;
    tp_buf_init(&out);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct tp_template *t = NULL;
        struct tp_template_error te;
        assert_int_equal(tp_template_compile(ok[i][0], &t, &te), TP_OK);
        const char *missing = NULL;
        assert_int_equal(tp_template_render(t, m, &out, &missing), TP_OK);
        assert_string_equal(out.data, ok[i][1]);
        if (i == 4)
            assert_string_equal(missing, "missing");
        tp_template_free(t);
    }
    tp_buf_free(&out);
    tp_msg_free(m);
}

static void test_template_errors(void **state)
{
    (void)state;
    struct {
        const char *text;
        size_t off;
        const char *why;
    } bad[] = {
        {"a/${! now() }", 2,
         "unsupported Bloblang interpolation \"${! now() }\": only ${! meta(\"key\") } and "
         "${! @key } are supported"},
        {"a/${! meta(\"k\").uppercase() }", 2,
         "unsupported Bloblang interpolation \"${! meta(\"k\").uppercase() }\": only "
         "${! meta(\"key\") } and ${! @key } are supported"},
        {"b/${! @k ", 2, "unclosed \"${!\""},
        {"{{meta.a", 0, "unclosed \"{{\""},
        {"x{{json.a}}", 1, "expected {{meta.KEY}}, got \"{{json.a}}\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tp_template *t = NULL;
        struct tp_template_error te;
        assert_int_equal(tp_template_compile(bad[i].text, &t, &te), TP_CONFIG);
        assert_null(t);
        assert_int_equal(te.offset, bad[i].off);
        assert_string_equal(te.why, bad[i].why);
    }
}

/* A template option is checked at config time: errors point into the value. */
static void test_template_option_position(void **state)
{
    (void)state;
    static const struct tp_option table[] = {
        {.name = "topic", .type = TP_OPT_STRING, .flags = TP_OPT_TEMPLATE},
        {0},
    };
    const char *yaml = "s:\n  topic: 'plant/${! now() }'\n";
    struct tp_config *cfg = NULL;
    struct tp_error err = {0};
    assert_int_equal(tp_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, &err), TP_OK);
    char *topic = NULL;
    assert_int_equal(tp_options_parse(table, tp_node_get(cfg->root, "s"), "s", &topic, &err),
                     TP_CONFIG);
    char msg[600];
    tp_error_format(&err, msg, sizeof(msg));
    assert_string_equal(msg, "t.yaml:2:17: s.topic: unsupported Bloblang interpolation "
                             "\"${! now() }\": only ${! meta(\"key\") } and ${! @key } are "
                             "supported");
    tp_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_values),
        cmocka_unit_test(test_env_unset_is_positioned_error),
        cmocka_unit_test(test_template_forms),
        cmocka_unit_test(test_template_errors),
        cmocka_unit_test(test_template_option_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
