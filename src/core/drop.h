/* Drop reasons (SPEC 4.2) and the per-message drop list a processor or input
 * fills so the pipeline can count, log and dead-letter every drop. */
#ifndef TP_DROP_H
#define TP_DROP_H

#include <stddef.h>

#define TP_DROP_REASON_MAP(X)                                                                      \
    X(FILTERED, "filtered")                                                                        \
    X(JS_ERROR, "js_error")                                                                        \
    X(JS_TIMEOUT, "js_timeout")                                                                    \
    X(JS_MEMORY, "js_memory")                                                                      \
    X(MISSING_FIELD, "missing_field")                                                              \
    X(INVALID_TOPIC, "invalid_topic")                                                              \
    X(INVALID_VALUE, "invalid_value")                                                              \
    X(INVALID_INPUT, "invalid_input")

enum tp_drop_reason {
#define TP_DROP_ENUM(name, text) TP_DROP_##name,
    TP_DROP_REASON_MAP(TP_DROP_ENUM)
#undef TP_DROP_ENUM
        TP_DROP_REASON_COUNT
};

const char *tp_drop_reason_name(enum tp_drop_reason r);

/* One drop: why, where (stage: "defaults", "conditions[2].then", "output", ...)
 * and the error text (empty for `filtered`). */
struct tp_drop {
    enum tp_drop_reason reason;
    char stage[64];
    char error[448];
    char *raw; /* invalid_input: the undecodable record's bytes (owned by the list), or NULL */
    size_t raw_len;
};

/* A growable list of drops, reused across messages (tp_drops_reset). `lost`
 * counts the drops that could not be recorded in full (out of memory): the
 * list is then incomplete, and whoever reports it must fail with TP_NOMEM
 * ("processing failed: out of memory", BEHAVIOUR 4.2), never report fewer. */
struct tp_drops {
    struct tp_drop *v;
    size_t n, cap;
    size_t lost;
};

void tp_drops_init(struct tp_drops *d);
void tp_drops_reset(struct tp_drops *d);
void tp_drops_free(struct tp_drops *d);
/* Appends a drop; error is printf-style (may be NULL). On allocation failure
 * the drop is counted in d->lost (the recorded ones are kept as they are). */
void tp_drops_add(struct tp_drops *d, enum tp_drop_reason reason, const char *stage,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Attaches a copy of the undecodable record to the last drop added, so the
 * dead letter can keep it. On allocation failure the drop counts in d->lost. */
void tp_drops_set_raw(struct tp_drops *d, const char *raw, size_t len);

#endif
