/* Internals shared by json.c (public API + the yajl reference path) and
 * json_scan.c (the hand-written fast path). Not for use outside src/core/json*.c
 * except by tests/unit/test_json.c, which compares the two paths. */
#ifndef TP_JSON_INTERNAL_H
#define TP_JSON_INTERNAL_H

#include <stddef.h>

#include "core/buf.h"
#include "core/msg.h"

/* Containers nested deeper than this are left to yajl (which is not recursive). */
#define TP_JSON_MAX_DEPTH 512

struct tp_error;

/* Fast envelope decoder. 0: decoded (msg filled, flags set; metadata entries
 * appended as they come, duplicates included); TP_PARSE: the text is not
 * UTF-8 (err filled, when not NULL); -1: the scanner rejected the text or gave
 * up (too deep, out of memory): msg may be partly filled and the caller
 * re-decodes a fresh message with yajl. */
int tp__json_scan_envelope(const char *s, size_t len, struct tp_msg *msg, struct tp_error *err);

/* The envelope rule on Unicode: the offset of the first byte sequence that is
 * not strict UTF-8 or of the first \\u escape of a lone surrogate, SIZE_MAX
 * when there is none. (Only for text already known to be JSON-like: every
 * backslash is taken as the start of an escape.) */
size_t tp__json_find_not_utf8(const char *s, size_t len);
/* Sets err to that rule's error at offset off; returns TP_PARSE. */
int tp__json_not_utf8_error(struct tp_error *err, size_t off);

/* 1: valid JSON text; 0: certainly invalid; -1: not decided here (too deep,
 * or bytes that are not strict UTF-8, where yajl is looser). */
int tp__json_scan_valid(const char *s, size_t len);

/* Canonical form (see tp_json_canonical). 0 or TP_PARSE / TP_NOMEM. */
int tp__json_scan_canonical(const char *s, size_t len, struct tp_buf *out);

/* Appends valid JSON text s without the white space outside strings. */
int tp__json_minify(const char *s, size_t len, struct tp_buf *out);

/* Sets TP_MSG_PAYLOAD_JSON / _NOTJSON for a payload that came from a JSON
 * string (its bytes may or may not be JSON text themselves). */
void tp__json_flag_string_payload(struct tp_msg *msg);

/* The yajl reference decoder (what tp_json_decode_envelope falls back to);
 * metadata entries appended as they come, duplicates included. */
int tp__json_decode_envelope_yajl(const char *line, size_t len, struct tp_msg *msg,
                                  struct tp_error *err);

#endif
