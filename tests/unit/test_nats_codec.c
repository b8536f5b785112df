/* Unit tests for the NATS protocol codec (src/io/nats/codec.c): every server
 * operation decoded with its fields, a stream cut anywhere is "need more"
 * (never an error), malformed lines fail naming what is wrong, client
 * operations encode to the exact bytes, and the JetStream answers (status
 * headers, PubAck JSON, ack subjects) are read right. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/json.h"
#include "io/nats/codec.h"

static int decode(const char *s, struct tp_nats_frame *f, size_t *used, char *why)
{
    why[0] = '\0';
    return tp_nats_decode(s, strlen(s), f, used, why, 300);
}

static void test_decode_ops(void **state)
{
    (void)state;
    struct tp_nats_frame f;
    size_t used;
    char why[300];
    const char *info = "INFO {\"server_id\":\"x\",\"headers\":true}\r\n";
    assert_int_equal(decode(info, &f, &used, why), TP_OK);
    assert_int_equal(f.op, TP_NATS_INFO);
    assert_int_equal(used, strlen(info));
    assert_memory_equal(f.text, "{\"server_id\"", 12);
    assert_int_equal(f.text_len, strlen(info) - 7);

    assert_int_equal(decode("PING\r\nPONG\r\n", &f, &used, why), TP_OK);
    assert_int_equal(f.op, TP_NATS_PING);
    assert_int_equal(used, 6);
    assert_int_equal(decode("pong\r\n", &f, &used, why), TP_OK); /* case-insensitive */
    assert_int_equal(f.op, TP_NATS_PONG);
    assert_int_equal(decode("+OK\n", &f, &used, why), TP_OK); /* a bare LF */
    assert_int_equal(f.op, TP_NATS_OK);
    assert_int_equal(used, 4);
    assert_int_equal(decode("-ERR 'Slow Consumer'\r\n", &f, &used, why), TP_OK);
    assert_int_equal(f.op, TP_NATS_ERR);
    assert_int_equal(f.text_len, 13);
    assert_memory_equal(f.text, "Slow Consumer", 13);

    const char *msg = "MSG a.b 7 12\r\nhello world!\r\nPING\r\n";
    assert_int_equal(decode(msg, &f, &used, why), TP_OK);
    assert_int_equal(f.op, TP_NATS_MSG);
    assert_int_equal(f.subject_len, 3);
    assert_memory_equal(f.subject, "a.b", 3);
    assert_int_equal(f.sid, 7);
    assert_null(f.reply);
    assert_null(f.hdr);
    assert_int_equal(f.payload_len, 12);
    assert_memory_equal(f.payload, "hello world!", 12);
    assert_int_equal(used, strlen(msg) - 6);

    const char *rmsg = "MSG  a.b\t9 _INBOX.r.1  0\r\n\r\n";
    assert_int_equal(decode(rmsg, &f, &used, why), TP_OK);
    assert_int_equal(f.sid, 9);
    assert_int_equal(f.reply_len, 10);
    assert_memory_equal(f.reply, "_INBOX.r.1", 10);
    assert_int_equal(f.payload_len, 0);
    assert_int_equal(used, strlen(rmsg));

    const char *hmsg = "HMSG s 1 $JS.ACK.S.C.1.5.5.1700000000.0 22 25\r\n"
                       "NATS/1.0\r\nk: v\r\nx:\r\n\r\n"
                       "abc\r\n";
    assert_int_equal(decode(hmsg, &f, &used, why), TP_OK);
    assert_int_equal(f.hdr_len, 22);
    assert_memory_equal(f.hdr, "NATS/1.0\r\nk: v\r\nx:\r\n\r\n", 22);
    assert_int_equal(f.payload_len, 3);
    assert_memory_equal(f.payload, "abc", 3);
    assert_int_equal(used, strlen(hmsg));
    /* long arguments, separated by a tab or by spaces at every offset (the
     * separators are found 8 bytes at a time) */
    char line[200], subj[64];
    for (size_t len = 1; len < 40; len++) {
        memset(subj, 'a', len);
        subj[len] = '\0';
        snprintf(line, sizeof(line), "hMsG %s\t%s   17 %s.r 2 5\r\n\r\nabc\r\n", subj,
                 len % 2 ? "" : " ", subj);
        assert_int_equal(decode(line, &f, &used, why), TP_OK);
        assert_int_equal(f.subject_len, len);
        assert_int_equal(f.sid, 17);
        assert_int_equal(f.reply_len, len + 2);
        assert_int_equal(f.hdr_len, 2);
        assert_int_equal(f.payload_len, 3);
    }
    assert_int_equal(decode("HMSG s 2 12 12\r\nNATS/1.0\r\n\r\n\r\n", &f, &used, why), TP_OK);
    assert_null(f.reply);
    assert_int_equal(f.payload_len, 0);
}

/* Every prefix of a valid stream asks for more; the whole decodes. */
static void test_decode_partial(void **state)
{
    (void)state;
    const char *stream = "INFO {\"a\":1}\r\nMSG a 1 r 5\r\nhello\r\n"
                         "HMSG b 2 16 18\r\nNATS/1.0\r\nk:\r\n\r\nhi\r\n-ERR 'x'\r\n";
    size_t n = strlen(stream), pos = 0, ops = 0;
    while (pos < n) {
        struct tp_nats_frame f;
        size_t used = 0;
        char why[300];
        size_t cut;
        for (cut = 0; pos + cut < n; cut++) {
            int rc = tp_nats_decode(stream + pos, cut, &f, &used, why, sizeof(why));
            if (rc == TP_OK)
                break;
            assert_int_equal(rc, TP_AGAIN);
        }
        assert_int_equal(tp_nats_decode(stream + pos, n - pos, &f, &used, why, sizeof(why)), TP_OK);
        assert_int_equal(used, cut); /* decoded as soon as the last byte came */
        pos += used;
        ops++;
    }
    assert_int_equal(ops, 4);
}

static void test_decode_malformed(void **state)
{
    (void)state;
    struct tp_nats_frame f;
    size_t used;
    char why[300];
    assert_int_equal(decode("HELLO world\r\n", &f, &used, why), TP_PARSE);
    assert_string_equal(why, "not a NATS protocol line: \"HELLO world\"");
    assert_int_equal(decode("MSG a 1 x\r\n", &f, &used, why), TP_PARSE);
    assert_non_null(strstr(why, "invalid or too large size"));
    assert_int_equal(decode("MSG a b 1\r\nx\r\n", &f, &used, why), TP_PARSE);
    assert_non_null(strstr(why, "invalid subscription id"));
    assert_int_equal(decode("MSG a 1\r\n", &f, &used, why), TP_PARSE);
    assert_non_null(strstr(why, "MSG needs subject, sid"));
    assert_int_equal(decode("MSG a 1 3\r\nabcd\r\n", &f, &used, why), TP_PARSE);
    assert_non_null(strstr(why, "not followed by CRLF"));
    assert_int_equal(decode("HMSG a 1 5 4\r\nabcd\r\n", &f, &used, why), TP_PARSE);
    assert_non_null(strstr(why, "header size larger"));
    assert_int_equal(decode("MSG a 1 99999999999\r\n", &f, &used, why), TP_PARSE);
    assert_int_equal(decode("MSG a 18446744073709551616 0\r\n\r\n", &f, &used, why), TP_PARSE);
    assert_non_null(strstr(why, "invalid subscription id"));
    assert_int_equal(decode("MSG a 18446744073709551615 0\r\n\r\n", &f, &used, why), TP_OK);
    assert_true(f.sid == UINT64_MAX);
    assert_int_equal(decode("MSG a 99999999999999999999 0\r\n\r\n", &f, &used, why), TP_PARSE);
    assert_int_equal(decode("MSG a 1 r s t u v\r\n", &f, &used, why), TP_PARSE);
    assert_int_equal(decode("PING extra\r\n", &f, &used, why), TP_PARSE);
    assert_int_equal(decode("INFO nojson\r\n", &f, &used, why), TP_PARSE);
    assert_int_equal(decode("\x01\xff\r\n", &f, &used, why), TP_PARSE);
    assert_string_equal(why, "not a NATS protocol line: \"\\x01\\xff\"");
    char longline[5000];
    memset(longline, 'A', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = '\0';
    assert_int_equal(decode(longline, &f, &used, why), TP_PARSE);
    assert_non_null(strstr(why, "longer than 4096 bytes"));
}

static void test_encode(void **state)
{
    (void)state;
    struct tp_buf b;
    tp_buf_init(&b);
    assert_int_equal(tp_nats_encode_pub(&b, "a.b", 3, NULL, 0, NULL, 0, "hi", 2), 0);
    assert_string_equal(b.data, "PUB a.b 2\r\nhi\r\n");
    tp_buf_reset(&b);
    assert_int_equal(tp_nats_encode_pub(&b, "a.b", 3, "_I.1.0", 6, "NATS/1.0\r\n\r\n", 12, "x", 1),
                     0);
    assert_string_equal(b.data, "HPUB a.b _I.1.0 12 13\r\nNATS/1.0\r\n\r\nx\r\n");
    tp_buf_reset(&b);
    assert_int_equal(tp_nats_encode_pub(&b, "r", 1, "$JS.ACK.x", 9, NULL, 0, "+ACK", 4), 0);
    assert_int_equal(tp_nats_put_uint(&b, 0), 0);
    assert_int_equal(tp_nats_put_uint(&b, UINT64_MAX), 0);
    assert_string_equal(b.data, "PUB r $JS.ACK.x 4\r\n+ACK\r\n018446744073709551615");
    tp_buf_reset(&b);
    assert_int_equal(tp_nats_encode_sub(&b, "umh.>", "grp", 12), 0);
    assert_int_equal(tp_nats_encode_sub(&b, "x.*", NULL, 3), 0);
    assert_int_equal(tp_nats_encode_unsub(&b, 12), 0);
    assert_string_equal(b.data, "SUB umh.> grp 12\r\nSUB x.* 3\r\nUNSUB 12\r\n");
    tp_buf_reset(&b);
    struct tp_nats_connect c = {.name = "tp \"q\"", .user = "u", .pass = "p", .token = NULL};
    assert_int_equal(tp_nats_encode_connect(&b, &c), 0);
    assert_memory_equal(b.data, "CONNECT {", 9);
    assert_memory_equal(b.data + b.len - 2, "\r\n", 2);
    assert_true(tp_json_is_valid(b.data + 8, b.len - 10));
    const char *v;
    size_t vl;
    assert_true(tp_json_object_member(b.data + 8, b.len - 10, "name", &v, &vl));
    assert_int_equal(vl, 10);
    assert_memory_equal(v, "\"tp \\\"q\\\"\"", 10);
    assert_true(tp_json_object_member(b.data + 8, b.len - 10, "headers", &v, &vl));
    assert_memory_equal(v, "true", 4);
    assert_false(tp_json_object_member(b.data + 8, b.len - 10, "auth_token", &v, &vl));
    tp_buf_free(&b);
}

static void test_jetstream_answers(void **state)
{
    (void)state;
    const char *d;
    size_t dl;
    const char *h408 = "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\n\r\n";
    assert_int_equal(tp_nats_status(h408, strlen(h408), &d, &dl), 408);
    assert_int_equal(dl, 15);
    assert_memory_equal(d, "Request Timeout", 15);
    assert_int_equal(tp_nats_status("NATS/1.0 404\r\n\r\n", 16, &d, &dl), 404);
    assert_int_equal(dl, 0);
    assert_int_equal(tp_nats_status("NATS/1.0\r\nk: v\r\n\r\n", 18, &d, &dl), 0);
    assert_int_equal(tp_nats_status(NULL, 0, &d, &dl), 0);

    char why[300];
    const char *ok = "{\"stream\":\"UNS\",\"seq\":42}";
    assert_true(tp_nats_pub_ack_ok(NULL, 0, ok, strlen(ok), why, sizeof(why)));
    const char *dup = "{\"stream\":\"UNS\",\"seq\":42,\"duplicate\":true}";
    assert_true(tp_nats_pub_ack_ok(NULL, 0, dup, strlen(dup), why, sizeof(why)));
    const char *err = "{\"error\":{\"code\":400,\"err_code\":10060,\"description\":\"expected "
                      "stream does not match\"}}";
    assert_false(tp_nats_pub_ack_ok(NULL, 0, err, strlen(err), why, sizeof(why)));
    assert_string_equal(why, "expected stream does not match (code 10060)");
    assert_false(tp_nats_pub_ack_ok("NATS/1.0 503\r\n\r\n", 16, "", 0, why, sizeof(why)));
    assert_string_equal(why, "no JetStream stream stores the subject (no responders)");
    /* nats-server 2.9 puts a space after the comma; other members may come between */
    const char *sp = "{\"stream\":\"UNS\", \"seq\":7}";
    assert_true(tp_nats_pub_ack_ok(NULL, 0, sp, strlen(sp), why, sizeof(why)));
    const char *dom = "{\"stream\":\"UNS\", \"domain\":\"hub\", \"seq\":7}";
    assert_true(tp_nats_pub_ack_ok(NULL, 0, dom, strlen(dom), why, sizeof(why)));
    const char *esc = "{\"stream\":\"U\\\"S\", \"seq\":7}";
    assert_true(tp_nats_pub_ack_ok(NULL, 0, esc, strlen(esc), why, sizeof(why)));
    const char *both = "{\"stream\":\"UNS\", \"seq\":7, \"error\":{\"code\":500,"
                       "\"description\":\"odd\"}}";
    assert_false(tp_nats_pub_ack_ok(NULL, 0, both, strlen(both), why, sizeof(why)));
    assert_string_equal(why, "odd (code 500)");
    const char *noseq = "{\"stream\":\"UNS\", \"sequence\":7}";
    assert_false(tp_nats_pub_ack_ok(NULL, 0, noseq, strlen(noseq), why, sizeof(why)));
    assert_false(tp_nats_pub_ack_ok("NATS/1.0 408\r\n\r\n", 16, "", 0, why, sizeof(why)));
    assert_string_equal(why, "status 408 ");
    assert_false(tp_nats_pub_ack_ok(NULL, 0, "{\"stream\":\"UNS\"", 15, why, sizeof(why)));
    assert_false(tp_nats_pub_ack_ok(NULL, 0, "+OK", 3, why, sizeof(why)));
    assert_string_equal(why, "unexpected PubAck \"+OK\"");

    struct tp_nats_js_meta md;
    const char *a7 = "$JS.ACK.RAW.tp.2.1234.77.1700000000000000000.5";
    assert_true(tp_nats_js_ack_parse(a7, strlen(a7), &md));
    assert_int_equal(md.stream_len, 3);
    assert_memory_equal(md.stream, "RAW", 3);
    assert_memory_equal(md.delivered, "2", md.delivered_len);
    assert_int_equal(md.sequence_len, 4);
    assert_memory_equal(md.sequence, "1234", 4);
    const char *a9 = "$JS.ACK.dom.acchash.RAW.tp.1.9.9.1700000000000000000.0.tok";
    assert_true(tp_nats_js_ack_parse(a9, strlen(a9), &md));
    assert_memory_equal(md.stream, "RAW", 3);
    assert_memory_equal(md.sequence, "9", md.sequence_len);
    assert_false(tp_nats_js_ack_parse("_INBOX.x", 8, &md));
    assert_false(tp_nats_js_ack_parse("$JS.ACK.a.b", 11, &md));
    assert_false(tp_nats_js_ack_parse(NULL, 0, &md));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_ops),        cmocka_unit_test(test_decode_partial),
        cmocka_unit_test(test_decode_malformed),  cmocka_unit_test(test_encode),
        cmocka_unit_test(test_jetstream_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
