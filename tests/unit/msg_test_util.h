/* Test helper shared by the unit tests: a message built from a payload and
 * key/value pairs in one call. Header-only; include after <cmocka.h>. */
#ifndef TP_MSG_TEST_UTIL_H
#define TP_MSG_TEST_UTIL_H

#include <stdarg.h>
#include <string.h>

#include "core/msg.h"

/* A message with payload and NULL-terminated key, value pairs. */
static inline struct tp_msg *mk_msg(const char *payload, ...)
{
    struct tp_msg *m = tp_msg_new();
    assert_non_null(m);
    assert_int_equal(tp_msg_set_payload(m, payload, strlen(payload)), 0);
    va_list ap;
    va_start(ap, payload);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        assert_int_equal(tp_msg_meta_sets(m, k, v), 0);
    }
    va_end(ap);
    return m;
}

#endif
