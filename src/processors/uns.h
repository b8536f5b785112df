/* Unified Namespace output construction (SPEC 3.5-3.8): topic rules, the
 * value V with datatype rules and timestamps (number text: core/number.h).
 * Pure C (no JS engine): the tag_processor hands over the final metadata and
 * a tp_value describing the final JS payload. */
#ifndef TP_UNS_H
#define TP_UNS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/drop.h"
#include "core/msg.h"
#include "core/number.h"

/* Parses a SPEC 3.8 timestamp: integer milliseconds (optional sign, digits
 * only) or RFC 3339 with optional fraction and Z / +-HH:MM. 0 ok, -1 invalid. */
int tp_timestamp_parse(const char *s, size_t len, int64_t *ms);

/* Current wall-clock time in ms, or the time fixed with tp_now_fix (tests:
 * the CLI maps the environment variable TAGPROC_FIXED_NOW_MS onto it). */
int64_t tp_now_ms(void);
/* Fixes tp_now_ms to ms_text (integer milliseconds); -1 when it is not one. */
int tp_now_fix(const char *ms_text);
/* 1 once tp_now_fix succeeded. */
int tp_now_fixed(void);

/* Writes the JSON text of V for value under datatype (NULL, "string",
 * "number", "bool"). Returns 0, -1 with `why` filled (reason invalid_value), or
 * TP_NOMEM when an allocation failed (not the value's fault). */
int tp_uns_value(const struct tp_value *value, const char *datatype,
                 const struct tp_orig_number *orig, struct tp_buf *out, char *why, size_t whylen);

/* Checks and builds the topic (SPEC 3.5 step 3). virtual_path may be NULL.
 * Returns 0, or -1 with `why` naming the failed rule. */
int tp_uns_topic(const char *location_path, const char *data_contract, const char *virtual_path,
                 const char *tag_name, struct tp_buf *topic, char *why, size_t whylen);

/* What tp_uns_build may remember between the messages of one worker: the
 * last location_path and data_contract found valid (a run of messages with
 * the same ones then checks their characters once). Zero-initialised. */
struct tp_uns_memo {
    struct tp_uns_part_memo {
        uint32_t len;      /* of the value; 0: empty slot */
        uint32_t part_len; /* the part's length in the topic */
        char bytes[128];
    } loc, dc;
};

/* Whole output construction for one message (SPEC 3.5): `m` holds the final
 * metadata (it is modified: virtual_path normalised, umh_topic/topic set) and
 * gets the payload {"timestamp_ms":T,"value":V}. On failure returns the drop
 * reason (TP_DROP_MISSING_FIELD, _INVALID_TOPIC, _INVALID_VALUE) with `why`
 * filled, or TP_UNS_NOMEM when an allocation failed (no drop reason: the
 * caller reports TP_NOMEM); on success returns TP_UNS_OK. memo: NULL, or
 * the caller's (one per thread). */
#define TP_UNS_OK (-1)
#define TP_UNS_NOMEM (-2)
int tp_uns_build(struct tp_msg *m, const struct tp_value *value, const struct tp_orig_number *orig,
                 struct tp_uns_memo *memo, char *why, size_t whylen);

#endif
