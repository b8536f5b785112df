/* Unit tests for the message model and batches (src/core/msg.c) and the
 * drop list (src/core/drop.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/drop.h"
#include "core/msg.h"

static void test_meta_set_get_order(void **state)
{
    (void)state;
    struct tp_msg *m = tp_msg_new();
    assert_non_null(m);
    assert_int_equal(tp_msg_meta_sets(m, "b", "1"), 0);
    assert_int_equal(tp_msg_meta_sets(m, "a", "2"), 0);
    assert_int_equal(tp_msg_meta_sets(m, "c", "3"), 0);
    /* replacing keeps the position, longer and shorter values */
    assert_int_equal(tp_msg_meta_sets(m, "a", "a much longer value than before"), 0);
    assert_int_equal(tp_msg_meta_sets(m, "b", ""), 0);
    assert_int_equal(m->n_meta, 3);
    assert_string_equal(tp_msg_meta_key(m, 0), "b");
    assert_string_equal(tp_msg_meta_key(m, 1), "a");
    assert_string_equal(tp_msg_meta_val(m, 1), "a much longer value than before");
    size_t len = 99;
    assert_string_equal(tp_msg_meta_get(m, "b", &len), "");
    assert_int_equal(len, 0);
    assert_null(tp_msg_meta_get(m, "zzz", NULL));
    assert_int_equal(tp_msg_meta_del(m, "b"), 1);
    assert_int_equal(tp_msg_meta_del(m, "b"), 0);
    assert_string_equal(tp_msg_meta_key(m, 0), "a");
    assert_string_equal(tp_msg_meta_get(m, "c", NULL), "3");
    tp_msg_meta_clear(m);
    assert_int_equal(m->n_meta, 0);
    assert_null(tp_msg_meta_get(m, "a", NULL));
    tp_msg_free(m);
}

static void test_binary_safe_values_and_many_keys(void **state)
{
    (void)state;
    struct tp_msg *m = tp_msg_new();
    char key[32], val[64];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        snprintf(val, sizeof(val), "value-%d-%s", i, i % 2 ? "odd" : "even");
        assert_int_equal(tp_msg_meta_sets(m, key, val), 0);
    }
    assert_int_equal(m->n_meta, 500);
    assert_string_equal(tp_msg_meta_get(m, "key499", NULL), "value-499-odd");
    assert_int_equal(tp_msg_meta_set(m, "bin", 3, "a\0b", 3), 0);
    size_t len = 0;
    const char *v = tp_msg_meta_get(m, "bin", &len);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "a\0b", 3);
    tp_msg_free(m);
}

static void test_payload_and_clone(void **state)
{
    (void)state;
    struct tp_msg *m = tp_msg_new();
    assert_int_equal(m->payload_len, 0);
    assert_string_equal(m->payload, "");
    m->flags |= TP_MSG_PAYLOAD_JSON;
    assert_int_equal(tp_msg_set_payload(m, "12345678901234567890", 20), 0);
    assert_int_equal(m->flags & TP_MSG_PAYLOAD_JSON, 0); /* flags cleared on change */
    tp_msg_meta_sets(m, "k", "v");
    m->seq = 7;
    m->input_line = 3;
    struct tp_msg *c = tp_msg_clone(m);
    assert_non_null(c);
    tp_msg_meta_sets(m, "k", "changed");
    assert_string_equal(c->payload, "12345678901234567890");
    assert_string_equal(tp_msg_meta_get(c, "k", NULL), "v");
    assert_int_equal(c->seq, 7);
    assert_int_equal(c->input_line, 3);
    tp_msg_free(c);
    tp_msg_free(m);
}

static void test_batch(void **state)
{
    (void)state;
    struct tp_batch b;
    tp_batch_init(&b);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(tp_batch_push(&b, tp_msg_new()), 0);
    assert_int_equal(b.len, 1000);
    tp_batch_clear(&b);
    assert_int_equal(b.len, 0);
    assert_true(b.cap >= 1000);
    assert_int_equal(tp_batch_push(&b, tp_msg_new()), 0);
    tp_batch_free(&b);
    assert_null(b.msgs);
}

static void test_drops(void **state)
{
    (void)state;
    struct tp_drops d;
    tp_drops_init(&d);
    for (int i = 0; i < 10; i++)
        tp_drops_add(&d, TP_DROP_JS_ERROR, "conditions[1].then", "error %d", i);
    tp_drops_add(&d, TP_DROP_FILTERED, "defaults", NULL);
    assert_int_equal(d.n, 11);
    assert_string_equal(d.v[9].error, "error 9");
    assert_string_equal(d.v[9].stage, "conditions[1].then");
    assert_string_equal(d.v[10].error, "");
    assert_string_equal(tp_drop_reason_name(TP_DROP_INVALID_TOPIC), "invalid_topic");
    assert_string_equal(tp_drop_reason_name(TP_DROP_FILTERED), "filtered");
    tp_drops_reset(&d);
    assert_int_equal(d.n, 0);
    tp_drops_free(&d);
}

/* Appends with repeated keys, then tp_msg_meta_dedupe: the same entries, in
 * the same order, as tp_msg_meta_set one by one (first place, last value).
 * The keys share prefixes and suffixes longer than 8 bytes, so only a whole
 * comparison tells them apart; up to 40 entries (both ways of finding
 * repeats). */
static void test_meta_dedupe(void **state)
{
    (void)state;
    static const char *const keys[] = {
        "",
        "a",
        "kafka_topic",
        "kafka_offset",
        "opcua_tag_name",
        "opcua_tag_type",
        "opcua_tag_group_xx_name",
        "opcua_tag_other_xx_name",
        "k",
        "kafka_topid",
    };
    uint32_t r = 7;
    char val[16];
    for (int round = 0; round < 3000; round++) {
        struct tp_msg *a = tp_msg_new(), *b = tp_msg_new();
        r = r * 1103515245u + 12345u;
        int n = (int)((r >> 16) % 41);
        for (int i = 0; i < n; i++) {
            r = r * 1103515245u + 12345u;
            const char *k = keys[(r >> 16) % (round % 2 ? 10 : 4)];
            snprintf(val, sizeof(val), "v%d", i);
            assert_int_equal(tp_msg_meta_append(a, k, strlen(k), val, strlen(val)), 0);
            assert_int_equal(tp_msg_meta_sets(b, k, val), 0);
        }
        assert_int_equal(tp_msg_meta_dedupe(a), 0);
        assert_int_equal(a->n_meta, b->n_meta);
        for (uint32_t i = 0; i < a->n_meta; i++) {
            assert_string_equal(tp_msg_meta_key(a, i), tp_msg_meta_key(b, i));
            assert_string_equal(tp_msg_meta_val(a, i), tp_msg_meta_val(b, i));
        }
        tp_msg_free(a);
        tp_msg_free(b);
    }
}

static void test_new_payload(void **state)
{
    (void)state;
    struct tp_msg *m = tp_msg_new_payload("ab\0c", 4);
    assert_non_null(m);
    assert_int_equal(m->payload_len, 4);
    assert_memory_equal(m->payload, "ab\0c\0", 5);
    assert_int_equal(m->n_meta, 0);
    tp_msg_free(m);
    m = tp_msg_new_payload(NULL, 0);
    assert_non_null(m);
    assert_int_equal(m->payload_len, 0);
    assert_string_equal(m->payload, "");
    tp_msg_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_set_get_order),
        cmocka_unit_test(test_binary_safe_values_and_many_keys),
        cmocka_unit_test(test_payload_and_clone),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_drops),
        cmocka_unit_test(test_meta_dedupe),
        cmocka_unit_test(test_new_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
