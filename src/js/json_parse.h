/* JSON payload text -> JS values without QuickJS's JSON tokenizer, for the
 * strict JSON whose JSON.parse result is certain (json_parse.c). Internal
 * to src/js. */
#ifndef TP_JS_JSON_PARSE_H
#define TP_JS_JSON_PARSE_H

#include <stddef.h>

#include "js/js_internal.h"

/* The value of the JSON text p[0..len) exactly as JSON.parse gives it, or
 * JS_UNDEFINED when declined (anything it does not handle: invalid JSON,
 * escapes other than the ASCII ones, invalid UTF-8, nesting deeper than 64,
 * integers of more than 19 digits, out of memory): the caller then uses
 * JS_ParseJSON. No exception is left pending. */
JSValue tp__js_json_parse(struct tp_js_vm *vm, const char *p, size_t len);

#endif
