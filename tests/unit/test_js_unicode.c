/* Unit tests for non-ASCII text crossing the JavaScript bridge (src/js):
 * metadata keys and values and payload strings in UTF-8 reach rules as the
 * characters they encode and come back byte-exact, also when a rule makes a
 * Latin-1-looking key ("Ã©") next to its UTF-8 twin ("é") and through the
 * atom caches and layout memos; invalid UTF-8 becomes U+FFFD (BEHAVIOUR 2). */
#include "js_test_util.h"

#include "core/log.h"

extern const struct tp_processor_plugin tp_processor_nodered_js;

#define NR_PATH "pipeline.processors[0].nodered_js"

static void expect_payload(struct proc_fx *f, size_t i, const char *want, const char *what)
{
    char e1[4096], e2[4096];
    const struct tp_msg *m = f->out.msgs[i];
    assert_ptr_equal(out_payload(f, i), m->payload);
    if (m->payload_len != strlen(want) || memcmp(m->payload, want, m->payload_len) != 0)
        fail_msg("%s: payload \"%s\", want \"%s\"", what,
                 escaped(m->payload, m->payload_len, e1, sizeof e1),
                 escaped(want, strlen(want), e2, sizeof e2));
}

#define E_ACUTE "\xc3\xa9"               /* é, U+00E9 */
#define A_TILDE_COPY "\xc3\x83\xc2\xa9"  /* Ã©: U+00C3 U+00A9 */
#define WENDU "\xe6\xb8\xa9\xe5\xba\xa6" /* 温度 */
#define THERMO "\xf0\x9f\x8c\xa1"        /* 🌡, outside the BMP */

/* The rule reads non-ASCII keys, makes new ones (one of them "Ã©", whose
 * Latin-1 atom exists from the script before "é" arrives) and reports what
 * it sees: key count, lengths in UTF-16 units, values. Same layout many times
 * (caches and memos warm), then another layout, then the first again. */
static void test_non_ascii_keys(void **state)
{
    (void)state;
    struct proc_fx f;
    fx_must_open(&f, &tp_processor_nodered_js, NR_PATH,
                 "code: |\n"
                 "  const m = msg.meta;\n"
                 "  const seen = [m['temp_" E_ACUTE "'], m['" WENDU "'], m['" THERMO "'],\n"
                 "    m['" E_ACUTE "'], m['\\u00e9'] === m['" E_ACUTE "'], m['" A_TILDE_COPY "'],\n"
                 "    Object.keys(m).map(k => k.length).join(',')];\n"
                 "  m['aus_\\u00fc'] = m['temp_" E_ACUTE "'] + '\\u00b0C';\n"
                 "  m['" A_TILDE_COPY "'] = 'js';\n"
                 "  m['\\u{1F525}'] = 'fire';\n"
                 "  msg.payload = seen;\n"
                 "  return msg;\n",
                 1);
    static const char want1[] = "temp_" E_ACUTE "=21.5;" WENDU "=hoch;" THERMO "=" THERMO
                                ";" E_ACUTE "=input;aus_\xc3\xbc=21.5\xc2\xb0"
                                "C;" A_TILDE_COPY "=js;\xf0\x9f\x94\xa5=fire;";
    static const char want_payload1[] =
        "[\"21.5\",\"hoch\",\"" THERMO "\",\"input\",true,null,\"6,2,2,1\"]";
    static const char want2[] = "x=1;" WENDU "=" E_ACUTE ";aus_\xc3\xbc=undefined\xc2\xb0"
                                "C;" A_TILDE_COPY "=js;\xf0\x9f\x94\xa5=fire;";
    static const char want_payload2[] = "[null,\"" E_ACUTE "\",null,null,true,null,\"1,2\"]";
    for (int rep = 0; rep < 12; rep++) {
        char what[32];
        snprintf(what, sizeof what, "rep %d", rep);
        if (rep == 6 || rep == 7) {
            fx_run(&f, mk_msg("0", "x", "1", WENDU, E_ACUTE, NULL));
            assert_int_equal(f.drops.n, 0);
            assert_int_equal(f.out.len, 1);
            expect_meta(&f, 0, want2, sizeof want2 - 1, what);
            expect_payload(&f, 0, want_payload2, what);
            continue;
        }
        fx_run(&f, mk_msg("0", "temp_" E_ACUTE, "21.5", WENDU, "hoch", THERMO, THERMO, E_ACUTE,
                          "input", NULL));
        assert_int_equal(f.drops.n, 0);
        assert_int_equal(f.out.len, 1);
        expect_meta(&f, 0, want1, sizeof want1 - 1, what);
        expect_payload(&f, 0, want_payload1, what);
        assert_string_equal(out_meta(&f, 0, E_ACUTE), "input");
    }
    fx_close(&f);
}

/* A rule's error text naming a non-ASCII key is UTF-8 in the drop. */
static void test_non_ascii_in_errors(void **state)
{
    (void)state;
    struct proc_fx f;
    fx_must_open(&f, &tp_processor_nodered_js, NR_PATH,
                 "code: 'throw new Error(\"no \" + Object.keys(msg.meta).join());'\n", 1);
    for (int rep = 0; rep < 2; rep++) {
        fx_run(&f, mk_msg("0", "temp_" E_ACUTE, "1", WENDU, "2", NULL));
        const char *e = one_drop(&f, TP_DROP_JS_ERROR, "code");
        if (!strstr(e, "no temp_" E_ACUTE "," WENDU))
            fail_msg("error \"%s\" lacks the keys", e);
    }
    fx_close(&f);
}

/* Input keys "é" and "Ã©" side by side, untouched by the rule and read back
 * by it: two keys, each with its own value, through fast and slow export. */
static void test_utf8_key_next_to_latin1_twin(void **state)
{
    (void)state;
    static const char *const codes[] = {
        "code: |\n"
        "  msg.payload = msg.meta['\\u00c3\\u00a9'] + '|' + msg.meta['\\u00e9'];\n"
        "  return msg;\n",
        /* a getter sends the export through the public-API walk */
        "code: |\n"
        "  msg.payload = msg.meta['\\u00c3\\u00a9'] + '|' + msg.meta['\\u00e9'];\n"
        "  Object.defineProperty(msg.meta, 'g', {get() { return '\\u00e9'; }, enumerable: "
        "true});\n"
        "  return msg;\n",
    };
    static const char want0[] = A_TILDE_COPY "=twin;" E_ACUTE "=acute;";
    static const char want1[] = A_TILDE_COPY "=twin;" E_ACUTE "=acute;g=" E_ACUTE ";";
    for (size_t c = 0; c < 2; c++) {
        struct proc_fx f;
        fx_must_open(&f, &tp_processor_nodered_js, NR_PATH, codes[c], 1);
        for (int rep = 0; rep < 4; rep++) {
            fx_run(&f, mk_msg("0", A_TILDE_COPY, "twin", E_ACUTE, "acute", NULL));
            assert_int_equal(f.drops.n, 0);
            assert_int_equal(f.out.len, 1);
            expect_meta(&f, 0, c ? want1 : want0, c ? sizeof want1 - 1 : sizeof want0 - 1,
                        c ? "slow" : "fast");
            expect_payload(&f, 0, "\"twin|acute\"", c ? "slow" : "fast");
        }
        fx_close(&f);
    }
}

/* Non-ASCII metadata values and payload strings: characters in JS, UTF-8 out. */
static void test_non_ascii_values_and_payload(void **state)
{
    (void)state;
    struct proc_fx f;
    fx_must_open(&f, &tp_processor_nodered_js, NR_PATH,
                 "code: |\n"
                 "  const v = msg.meta.v, p = msg.payload;\n"
                 "  msg.meta.lens = v.length + '/' + p.length;\n"
                 "  msg.meta.up = v.toUpperCase();\n"
                 "  msg.payload = p + '\\u00e9' + msg.meta.w;\n"
                 "  return msg;\n",
                 1);
    static const char want[] = "v=caf" E_ACUTE ";w=" WENDU ";lens=4/3;up=CAF\xc3\x89;";
    for (int rep = 0; rep < 4; rep++) {
        fx_run(&f, mk_msg("\xc3\xbc" THERMO, "v", "caf" E_ACUTE, "w", WENDU, NULL));
        assert_int_equal(f.drops.n, 0);
        assert_int_equal(f.out.len, 1);
        expect_meta(&f, 0, want, sizeof want - 1, "values");
        expect_payload(&f, 0, "\"\xc3\xbc" THERMO E_ACUTE WENDU "\"", "values");
    }
    fx_close(&f);
}

/* Invalid UTF-8 in keys and values (possible from MQTT, Kafka and NATS
 * headers): each malformed sequence is U+FFFD to the rule and EF BF BD in
 * the output, the same on every run; two keys that become the same text are
 * one entry (first position, last value). A key with a NUL keeps its length
 * on the public-API export path too. */
static void test_invalid_utf8_and_nul(void **state)
{
    (void)state;
    struct proc_fx f;
    fx_must_open(&f, &tp_processor_nodered_js, NR_PATH,
                 "code: |\n"
                 "  msg.payload = Object.keys(msg.meta).map(k => k.length).join(',') + '|' +\n"
                 "    (msg.meta['bad\\ufffd'] === 'v\\ufffd');\n"
                 "  msg.meta['n\\u0000ul'] = 'z';\n"
                 "  Object.defineProperty(msg.meta, 'g', {get() { return 'G'; }, enumerable: "
                 "true});\n"
                 "  return msg;\n",
                 1);
    static const char want[] = "bad\xef\xbf\xbd=v\xef\xbf\xbd;\xef\xbf\xbd=2;"
                               "n\0ul=z;g=G;";
    for (int rep = 0; rep < 4; rep++) {
        fx_run(&f, mk_msg("0", "bad\xff", "v\xfe", "\xc3", "1", "\xe2\x82", "2", NULL));
        assert_int_equal(f.drops.n, 0);
        assert_int_equal(f.out.len, 1);
        expect_meta(&f, 0, want, sizeof want - 1, "invalid");
        expect_payload(&f, 0, "\"4,1|true\"", "invalid");
    }
    fx_close(&f);
}

int main(void)
{
    tp_log_set_level(TP_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_non_ascii_keys),
        cmocka_unit_test(test_non_ascii_in_errors),
        cmocka_unit_test(test_utf8_key_next_to_latin1_twin),
        cmocka_unit_test(test_non_ascii_values_and_payload),
        cmocka_unit_test(test_invalid_utf8_and_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
