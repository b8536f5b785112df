/* The environment scripts see besides `msg` (SPEC 3.9): `console` writing to
 * the tagproc log and `cache` backed by the processor's shared store.
 * Installed by tp__js_env_install (declared in js_internal.h). */
#ifndef TP_JS_ENV_H
#define TP_JS_ENV_H

#include "js/js_internal.h"

/* Joins console arguments as console.log does here: strings as they are,
 * objects as JSON, everything else as String(v); appended to a malloc'd
 * NUL-terminated string the caller frees. NULL on allocation failure. */
char *tp__js_env_format_args(JSContext *ctx, int argc, JSValueConst *argv);

#endif
