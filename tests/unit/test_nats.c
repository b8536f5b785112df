/* Unit tests for the NATS plugin helpers (src/io/nats/common.c): the
 * {{meta.KEY}} subject template and its subject checks, the metadata ->
 * header filter, the header block encoding and reading (headers.c: empty
 * values, malformed blocks), received messages as tagproc messages
 * (received.c), server URLs (client.c), and option errors of
 * the nats input/output that need no server. The protocol codec has its
 * own test: test_nats_codec.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "builtin_plugins.h"
#include "core/plugin.h"
#include "io/nats/internal.h"

static int render(const char *tmpl, struct tp_msg *m, struct tp_buf *out, char *why)
{
    struct tp_template *t = NULL;
    struct tp_template_error te;
    assert_int_equal(tp_template_compile(tmpl, &t, &te), 0);
    int rc = tp__nats_subject_render(t, m, out, why, 300);
    tp_template_free(t);
    return rc;
}

static void test_template_render(void **state)
{
    (void)state;
    struct tp_msg *m = tp_msg_new();
    struct tp_buf out;
    char why[300];
    tp_buf_init(&out);
    tp_msg_meta_sets(m, "umh_topic", "umh.v1.ent.site._historian.temp");
    tp_msg_meta_sets(m, "line", "l1");
    tp_msg_meta_sets(m, "bad", "a b");
    tp_msg_meta_sets(m, "dots", "a..b");

    assert_int_equal(render("{{meta.umh_topic}}", m, &out, why), 0);
    assert_string_equal(out.data, "umh.v1.ent.site._historian.temp");
    assert_int_equal(render("plant.{{ meta.line }}.x", m, &out, why), 0);
    assert_string_equal(out.data, "plant.l1.x");
    assert_int_equal(render("fixed.subject", m, &out, why), 0);
    assert_string_equal(out.data, "fixed.subject");
    assert_int_equal(render("p.${! meta(\"line\") }.${! @line }", m, &out, why), 0);
    assert_string_equal(out.data, "p.l1.l1");

    assert_int_equal(render("p.{{meta.nope}}", m, &out, why), TP_INVAL);
    assert_non_null(strstr(why, "\"nope\" is missing"));
    assert_int_equal(render("p.{{meta.bad}}", m, &out, why), TP_INVAL);
    assert_non_null(strstr(why, "white space"));
    assert_int_equal(render("{{meta.dots}}", m, &out, why), TP_INVAL);
    assert_non_null(strstr(why, "empty token"));
    assert_int_equal(render("a.{{meta.line}}.", m, &out, why), TP_INVAL);
    assert_int_equal(render(".a", m, &out, why), TP_INVAL);
    assert_int_equal(render("a.*.b", m, &out, why), TP_INVAL);
    assert_non_null(strstr(why, "wildcard"));
    assert_int_equal(render("a.>", m, &out, why), TP_INVAL);
    /* a '*' inside a token is an ordinary character */
    assert_int_equal(render("a.b*c", m, &out, why), 0);
    tp_buf_free(&out);
    tp_msg_free(m);
}

static void test_header_filter(void **state)
{
    (void)state;
    assert_true(tp__nats_header_ok("opcua_node_id", "ns=1;i=2245"));
    assert_true(tp__nats_header_ok("umh_topic", ""));
    assert_false(tp__nats_header_ok("nats_subject", "x"));
    assert_false(tp__nats_header_ok("Nats-Msg-Id", "x"));
    assert_false(tp__nats_header_ok("NATS-Expected-Stream", "x"));
    assert_false(tp__nats_header_ok("a b", "x"));
    assert_false(tp__nats_header_ok("a:b", "x"));
    assert_false(tp__nats_header_ok("", "x"));
    assert_false(tp__nats_header_ok("k", "line1\nline2"));
    assert_false(tp__nats_header_ok("k", "x\r"));
    assert_false(tp__nats_header_ok("k\xc3\xa9", "x"));
}

/* The filter reads 8 bytes at a time: a forbidden byte is found at every
 * position of keys and values of every length up to 40 (checked against a
 * byte-by-byte reading of the rule). */
static int naive_header_ok(const char *k, size_t kl, const char *v, size_t vl)
{
    if (!kl || (kl >= 5 && strncasecmp(k, "nats", 4) == 0 && (k[4] == '_' || k[4] == '-')))
        return 0;
    for (size_t i = 0; i < kl; i++)
        if ((unsigned char)k[i] <= ' ' || (unsigned char)k[i] >= 0x7f || k[i] == ':')
            return 0;
    for (size_t i = 0; i < vl; i++)
        if (v[i] == '\r' || v[i] == '\n')
            return 0;
    return 1;
}

static void test_header_filter_positions(void **state)
{
    (void)state;
    static const unsigned char bad_key[] = {0, 1, '\t', ' ', ':', 0x7f, 0x80, 0xc3, 0xff};
    static const unsigned char odd_value[] = {'\r', '\n', 0, '\t', 0x0b, 0x0e, 0x8d, 0xff};
    char k[48], v[48];
    for (size_t len = 1; len <= 40; len++) {
        memset(k, 'k', len);
        k[len] = '\0';
        memset(v, 'v', len);
        v[len] = '\0';
        assert_true(tp__nats_header_ok(k, v));
        for (size_t pos = 0; pos < len; pos++) {
            for (size_t b = 0; b < sizeof(bad_key); b++) {
                k[pos] = (char)bad_key[b];
                if (bad_key[b]) /* a NUL ends the string: the key is shorter */
                    assert_false(tp__nats_header_ok(k, "v"));
            }
            k[pos] = '~'; /* 0x7e and '!' are the edges of the allowed range */
            assert_true(tp__nats_header_ok(k, "v"));
            k[pos] = '!';
            assert_true(tp__nats_header_ok(k, "v"));
            k[pos] = 'k';
            for (size_t b = 0; b < sizeof(odd_value); b++) {
                v[pos] = (char)odd_value[b];
                size_t vl = odd_value[b] ? len : pos;
                assert_int_equal(tp__nats_header_ok(k, v), naive_header_ok(k, len, v, vl));
            }
            v[pos] = 'v';
        }
    }
    assert_false(tp__nats_header_ok("nAtS_x", "v"));
    assert_false(tp__nats_header_ok("NATS-", "v"));
    assert_true(tp__nats_header_ok("nats", "v"));
    assert_true(tp__nats_header_ok("natsX", "v"));
    assert_true(tp__nats_header_ok("nats.x", "v"));
}

/* A received message: payload, the nats_* fields, then the headers in order;
 * repeated keys merged (first position, last value), also with more headers
 * than the table read at once; errors name what is wrong. */
static void test_msg_from_frame(void **state)
{
    (void)state;
    const char *ack = "$JS.ACK.RAW.c.3.1234.77.1700000000000000000.5";
    const char *block = "NATS/1.0\r\nopcua_node_id: ns=1;i=5\r\nunit: C\r\n\r\n";
    struct tp_nats_frame f = {.op = TP_NATS_MSG,
                              .subject = "raw.a",
                              .subject_len = 5,
                              .reply = ack,
                              .reply_len = strlen(ack),
                              .hdr = block,
                              .hdr_len = strlen(block),
                              .payload = "21.5",
                              .payload_len = 4};
    struct tp_msg *m = NULL;
    char why[200];
    assert_int_equal(tp__nats_msg_from_frame(&f, 1, 100, &m, why, sizeof(why)), 0);
    assert_string_equal(m->payload, "21.5");
    static const char *const want[][2] = {
        {"nats_subject", "raw.a"},   {"nats_stream", "RAW"},        {"nats_sequence", "1234"},
        {"nats_num_delivered", "3"}, {"opcua_node_id", "ns=1;i=5"}, {"unit", "C"}};
    assert_int_equal(m->n_meta, 6);
    for (uint32_t i = 0; i < 6; i++) {
        assert_string_equal(tp_msg_meta_key(m, i), want[i][0]);
        assert_string_equal(tp_msg_meta_val(m, i), want[i][1]);
    }
    tp_msg_free(m);

    /* core NATS: nats_reply; a repeated header and one named like a field */
    const char *rep = "NATS/1.0\r\na: 1\r\nnats_subject: mine\r\nb: 2\r\na: 3\r\n\r\n";
    f.reply = "_INBOX.r";
    f.reply_len = 8;
    f.hdr = rep;
    f.hdr_len = strlen(rep);
    assert_int_equal(tp__nats_msg_from_frame(&f, 0, 100, &m, why, sizeof(why)), 0);
    assert_int_equal(m->n_meta, 4);
    assert_string_equal(tp_msg_meta_get(m, "nats_subject", NULL), "mine");
    assert_string_equal(tp_msg_meta_key(m, 0), "nats_subject");
    assert_string_equal(tp_msg_meta_get(m, "nats_reply", NULL), "_INBOX.r");
    assert_string_equal(tp_msg_meta_key(m, 2), "a");
    assert_string_equal(tp_msg_meta_val(m, 2), "3");
    assert_string_equal(tp_msg_meta_key(m, 3), "b");
    tp_msg_free(m);

    /* 100 headers (k0..k99, then k5 again): past the table, merged alike */
    struct tp_buf big;
    tp_buf_init(&big);
    tp_buf_puts(&big, "NATS/1.0\r\n");
    for (int i = 0; i < 100; i++)
        tp_buf_printf(&big, "k%d: v%d\r\n", i, i);
    tp_buf_puts(&big, "k5: again\r\n\r\n");
    f.hdr = big.data;
    f.hdr_len = big.len;
    assert_int_equal(tp__nats_msg_from_frame(&f, 0, 1000, &m, why, sizeof(why)), 0);
    assert_int_equal(m->n_meta, 102);
    assert_string_equal(tp_msg_meta_key(m, 99 + 2), "k99");
    assert_string_equal(tp_msg_meta_get(m, "k5", NULL), "again");
    tp_msg_free(m);
    assert_int_equal(tp__nats_msg_from_frame(&f, 0, 101, &m, why, sizeof(why)), TP_INVAL);
    assert_null(m);
    assert_string_equal(why, "102 metadata entries (nats_* fields and headers), more than "
                             "max_meta_keys (101)");
    tp_buf_reset(&big);
    tp_buf_puts(&big, "NATS/1.0\r\n");
    for (int i = 0; i < 70; i++)
        tp_buf_printf(&big, "k%d: v\r\n", i);
    tp_buf_puts(&big, "broken\r\n\r\n"); /* malformed past the table */
    f.hdr = big.data;
    f.hdr_len = big.len;
    assert_int_equal(tp__nats_msg_from_frame(&f, 0, 1000, &m, why, sizeof(why)), TP_INVAL);
    assert_null(m);
    assert_string_equal(why, "header line 72 has no ':'");
    tp_buf_free(&big);
    f.hdr = "NATS/1.0\r\nx\r\n\r\n";
    f.hdr_len = strlen(f.hdr);
    assert_int_equal(tp__nats_msg_from_frame(&f, 1, 1000, &m, why, sizeof(why)), TP_INVAL);
    assert_string_equal(why, "header line 2 has no ':'");
}

/* The header block the output builds: filtered metadata, then the extras. */
static void test_headers_encode(void **state)
{
    (void)state;
    struct tp_msg *m = tp_msg_new();
    tp_msg_meta_sets(m, "opcua_node_id", "ns=1;i=2245");
    tp_msg_meta_sets(m, "nats_subject", "dropped.as.own");
    tp_msg_meta_sets(m, "multi", "a\nb");
    struct tp_buf frame;
    tp_buf_init(&frame);
    const char *extra[] = {"Nats-Msg-Id", "tp-1-7", NULL};
    assert_int_equal(tp__nats_headers_encode(m, 1, extra, &frame), 0);
    assert_string_equal(frame.data,
                        "NATS/1.0\r\nopcua_node_id: ns=1;i=2245\r\nNats-Msg-Id: tp-1-7\r\n\r\n");
    /* headers: false and nothing extra: no header block at all */
    tp_buf_reset(&frame);
    assert_int_equal(tp__nats_headers_encode(m, 0, NULL, &frame), 0);
    assert_int_equal(frame.len, 0);
    tp_buf_free(&frame);
    tp_msg_free(m);
}

/* Parses YAML options for a plugin and opens it; returns open's status (no server needed
 * for the errors tested here: they are found before connecting). */
static int open_with(const struct tp_option *table, size_t size,
                     int (*open_fn)(const void *, void **, struct tp_error *), const char *path,
                     const char *yaml, struct tp_error *err)
{
    struct tp_config *cfg = NULL;
    assert_int_equal(tp_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err), 0);
    char conf[1024];
    assert_true(size <= sizeof(conf));
    memset(conf, 0, sizeof(conf));
    int rc = tp_options_parse(table, cfg->root, path, conf, err);
    void *state = NULL;
    if (rc == 0)
        rc = open_fn(conf, &state, err);
    assert_null(state);
    tp_options_free(table, conf);
    tp_config_free(cfg);
    return rc;
}

static void test_option_errors(void **state)
{
    (void)state;
    const struct tp_input_plugin *in = tp_input_find("nats");
    const struct tp_output_plugin *out = tp_output_find("nats");
    assert_non_null(in);
    assert_non_null(out);
    struct tp_error err = {0};

    assert_int_equal(
        open_with(in->options, in->config_size, in->open, "input.nats", "subjects: [a]\n", &err),
        TP_CONFIG);
    assert_non_null(strstr(err.msg, "urls"));
    assert_int_equal(open_with(out->options, out->config_size, out->open, "output.nats",
                               "urls: [nats://127.0.0.1:1]\nsubject: \"{{topic}}\"\n", &err),
                     TP_CONFIG);
    assert_non_null(strstr(err.msg, "subject: expected {{meta.KEY}}"));
    assert_int_equal(open_with(out->options, out->config_size, out->open, "output.nats",
                               "urls: [nats://127.0.0.1:1]\ncreate_stream: true\njetstream: true\n",
                               &err),
                     TP_CONFIG);
    assert_non_null(strstr(err.msg, "needs output.nats.stream"));
    assert_int_equal(open_with(out->options, out->config_size, out->open, "output.nats",
                               "urls: [nats://127.0.0.1:1]\nack_timeout: 5\n", &err),
                     TP_CONFIG);
    assert_string_equal(
        err.msg,
        "output.nats.ack_timeout: expected duration (500ms, 5s, 2m, 1h30m), got integer 5");
    assert_int_equal(err.line, 2); /* positioned: the table checks it */
    assert_int_equal(open_with(in->options, in->config_size, in->open, "input.nats",
                               "urls: [nats://127.0.0.1:1]\nreconnect_wait: soon\n", &err),
                     TP_CONFIG);
    assert_non_null(strstr(err.msg, "input.nats.reconnect_wait: expected duration"));
    assert_int_equal(open_with(out->options, out->config_size, out->open, "output.nats",
                               "urls: [nats://127.0.0.1:1]\nmax_pending: 0\n", &err),
                     TP_CONFIG);
    assert_string_equal(err.msg,
                        "output.nats.max_pending: expected an integer of at least 1, got 0");
    /* jetstream: an optional nested object, its keys checked with positions */
    assert_int_equal(open_with(in->options, in->config_size, in->open, "input.nats",
                               "urls: [nats://127.0.0.1:1]\njetstream: {stream: S}\n", &err),
                     TP_CONFIG);
    assert_string_equal(err.msg, "input.nats.jetstream: missing required key \"durable\"");
    assert_int_equal(err.line, 2);
    assert_int_equal(open_with(in->options, in->config_size, in->open, "input.nats",
                               "urls: [nats://127.0.0.1:1, \"tls://h:1\"]\nsubjects: [a]\n", &err),
                     TP_CONFIG);
    assert_string_equal(err.msg, "input.nats.urls[1]: \"tls://h:1\": TLS (tls://) is not "
                                 "supported by the nats connector");
    /* nothing listens on port 1: a clear connection error at start-up */
    assert_int_equal(open_with(in->options, in->config_size, in->open, "input.nats",
                               "urls: [nats://127.0.0.1:1]\nsubjects: [a]\n", &err),
                     TP_IO);
    assert_non_null(strstr(err.msg, "input.nats: cannot connect to nats://127.0.0.1:1"));
}

/* Collects parsed headers as "key=value;" */
static int collect(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct tp_buf *b = arg;
    int rc = tp_buf_append(b, key, klen);
    rc = rc ? rc : tp_buf_append(b, "=", 1);
    rc = rc ? rc : tp_buf_append(b, val, vlen);
    return rc ? rc : tp_buf_append(b, ";", 1);
}

static int parse(const char *block, struct tp_buf *got, char *why)
{
    tp_buf_reset(got);
    why[0] = '\0';
    return tp__nats_headers_parse(block, strlen(block), collect, got, why, 200);
}

/* Empty values (middle and last header) read back from the block the output
 * encodes (libnats 3.x took the next line as an empty middle value and
 * failed on an empty last one). Malformed blocks are errors naming the line. */
static void test_headers_parse(void **state)
{
    (void)state;
    struct tp_msg *m = tp_msg_new();
    tp_msg_meta_sets(m, "a", "1");
    tp_msg_meta_sets(m, "mid", "");
    tp_msg_meta_sets(m, "b", " x  y ");
    tp_msg_meta_sets(m, "last", "");
    struct tp_buf frame, got;
    tp_buf_init(&frame);
    tp_buf_init(&got);
    char why[200];
    assert_int_equal(tp__nats_headers_encode(m, 1, NULL, &frame), 0);
    assert_int_equal(parse(frame.data, &got, why), 0);
    assert_string_equal(got.data, "a=1;mid=;b=x  y;last=;");
    const char *mid = "NATS/1.0\r\na: 1\r\nmid: \r\nb: 2\r\n\r\n";
    assert_int_equal(parse(mid, &got, why), 0);
    assert_string_equal(got.data, "a=1;mid=;b=2;");
    assert_int_equal(parse("NATS/1.0 503\r\nk:\r\n\r\n", &got, why), 0);
    assert_string_equal(got.data, "k=;");
    assert_int_equal(parse("NATS/1.0\r\nnocolon\r\n\r\n", &got, why), TP_INVAL);
    assert_string_equal(why, "header line 2 has no ':'");
    assert_int_equal(parse("NATS/1.0\r\na: 1\r\n b\r\n\r\n", &got, why), TP_INVAL);
    assert_non_null(strstr(why, "header line 3 starts with a space"));
    assert_int_equal(parse("NATS/1.0\r\na: 1\r\n", &got, why), TP_INVAL);
    assert_string_equal(why, "header line 3 does not end with CRLF");
    assert_int_equal(parse("NATS/1.0\r\na: 1\n\r\n", &got, why), TP_INVAL);
    assert_int_equal(parse("NATS/1.0\r\n\r\nx", &got, why), TP_INVAL);
    assert_int_equal(parse("HTTP/1.1\r\n\r\n", &got, why), TP_INVAL);
    assert_string_equal(why, "header block does not start with a NATS/1.0 line");
    tp_buf_free(&frame);
    tp_buf_free(&got);
    tp_msg_free(m);
}

/* Server URLs: scheme, port, user information; TLS refused clearly. */
static void test_url_parse(void **state)
{
    (void)state;
    struct tp_nats_server s;
    char why[300];
    assert_int_equal(tp_nats_url_parse("nats://127.0.0.1:4333", &s, why, sizeof(why)), 0);
    assert_string_equal(s.host, "127.0.0.1");
    assert_int_equal(s.port, 4333);
    assert_string_equal(s.user, "");
    assert_int_equal(tp_nats_url_parse("localhost", &s, why, sizeof(why)), 0);
    assert_string_equal(s.host, "localhost");
    assert_int_equal(s.port, 4222);
    assert_int_equal(tp_nats_url_parse("nats://u:p%w@h:1", &s, why, sizeof(why)), 0);
    assert_string_equal(s.user, "u");
    assert_string_equal(s.pass, "p%w");
    assert_string_equal(s.host, "h");
    assert_int_equal(tp_nats_url_parse("nats://tok@[::1]:5", &s, why, sizeof(why)), 0);
    assert_string_equal(s.user, "tok");
    assert_string_equal(s.host, "::1");
    assert_int_equal(s.port, 5);
    assert_int_equal(tp_nats_url_parse("tls://h:1", &s, why, sizeof(why)), TP_CONFIG);
    assert_non_null(strstr(why, "TLS (tls://) is not supported"));
    assert_int_equal(tp_nats_url_parse("http://h", &s, why, sizeof(why)), TP_CONFIG);
    assert_int_equal(tp_nats_url_parse("nats://h:0", &s, why, sizeof(why)), TP_CONFIG);
    assert_string_equal(why, "\"nats://h:0\": invalid port");
    assert_int_equal(tp_nats_url_parse("nats://:4222", &s, why, sizeof(why)), TP_CONFIG);
}

int main(void)
{
    tp_plugins_use(&tp_builtin_plugins);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template_render),         cmocka_unit_test(test_header_filter),
        cmocka_unit_test(test_headers_encode),          cmocka_unit_test(test_headers_parse),
        cmocka_unit_test(test_option_errors),           cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_header_filter_positions), cmocka_unit_test(test_msg_from_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
