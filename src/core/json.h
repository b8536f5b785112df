/* JSON for the message envelope (SPEC 6) and small JSON utilities. This
 * module (json.c) is the only one that includes the JSON library (yajl).
 * Number text is never re-formatted: decoding keeps the input's own digits. */
#ifndef TP_JSON_H
#define TP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/msg.h"

/* Default bound on metadata entries per envelope (the max_meta_keys option). */
#define TP_JSON_MAX_META_KEYS 10000
#define TP_JSON_MAX_META_KEYS_TEXT "10000"

/* Decodes one JSON Lines envelope {"payload": <any>, "meta": {"k": "v"}} into
 * msg (payload set; meta entries appended in order; a repeated key keeps its
 * first position and its last value). The payload bytes are the compact JSON
 * of `payload`, except a JSON string whose bytes are its unescaped contents.
 * Missing payload: empty payload. Errors return TP_PARSE with a message naming
 * the problem and, where there is one, its column: malformed JSON, a
 * non-object line, a non-string meta value, text that is not UTF-8 (invalid
 * byte sequences, overlong or CESU forms, \u escapes of lone surrogates:
 * rejected, never replaced, so distinct keys stay distinct), more than
 * max_meta_keys metadata entries. An unknown top-level key is ignored. Time is
 * linear in the line length. */
int tp_json_decode_envelope(const char *line, size_t len, struct tp_msg *msg,
                            uint32_t max_meta_keys, struct tp_error *err);

/* Appends one envelope line (without the newline) for msg to out:
 * {"topic":"<umh_topic>","payload":<payload>,"meta":{...}}; `topic` only when
 * msg has umh_topic; payload is written as its own JSON text when it is valid
 * JSON (msg flags are used to skip validation), else as a JSON string. */
int tp_json_encode_envelope(const struct tp_msg *msg, struct tp_buf *out);

/* 1 when s[0..len) is exactly one valid JSON value (surrounding white space allowed). */
int tp_json_is_valid(const char *s, size_t len);

/* Appends s as a JSON string literal (quotes, escapes; invalid UTF-8 bytes as U+FFFD). */
int tp_json_write_string(struct tp_buf *out, const char *s, size_t len);

/* Appends the metadata of m as one JSON object {"key":"value",...} in order
 * (for log lines). */
int tp_json_write_meta(struct tp_buf *out, const struct tp_msg *m);
/* Compact re-encoding of a JSON text with object keys sorted (byte order) and
 * numbers kept as written; TP_PARSE when the text is not valid JSON. */
int tp_json_canonical(const char *s, size_t len, struct tp_buf *out);

/* Finds member `key` of the JSON object text s[0..len) (top level only):
 * points *val / *vlen at the member's value as written (a string with its
 * quotes; the last one when repeated, as JSON.parse). 1: found; 0: absent, or s is not a valid JSON
 * object. Keys written with escapes are not matched. Time linear in len, no allocation. */
int tp_json_object_member(const char *s, size_t len, const char *key, const char **val,
                          size_t *vlen);

#endif
