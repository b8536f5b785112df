/* The JavaScript engine as the processors see it (no QuickJS types): a
 * script is an ordered list of stages compiled once at start-up; a worker
 * owns one VM with the script loaded and runs messages through it
 * (SPEC 3.1-3.4, 4.1). Output construction is left to the caller. */
#ifndef TP_JS_ENGINE_H
#define TP_JS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/drop.h"
#include "core/error.h"
#include "core/msg.h"
#include "core/number.h"
#include "js/vm.h"

/* Option-table rows for the limits (SPEC 3.10), for a config struct `type`
 * holding a struct tp_js_limits named `field`. */
#define TP_JS_LIMIT_OPTIONS(type, field)                                                           \
    TP_OPTION(type, field.timeout_ms, "timeout_ms", TP_OPT_INT, "100",                             \
              "per-message limit in milliseconds on the CPU time its JavaScript runs "             \
              "(js_timeout; time the thread waits for a CPU does not count)",                      \
              .min = 1, .max = 86400000),                                                          \
        TP_OPTION(type, field.memory_limit_mb, "memory_limit_mb", TP_OPT_INT, "64",                \
                  "JavaScript heap limit per worker thread in MiB (js_memory)", .min = 1,          \
                  .max = 1048576),                                                                 \
        TP_OPTION(type, field.cache_max_entries, "cache_max_entries", TP_OPT_INT, "10000",         \
                  "entries of the processor's cache store (least recently used evicted)",          \
                  .min = 1, .max = 100000000),                                                     \
        TP_OPTION(type, field.cache_max_bytes, "cache_max_bytes", TP_OPT_INT, "67108864",          \
                  "bytes of keys and values in the processor's cache store (least recently used "  \
                  "evicted; a single entry larger than this is a js_error)",                       \
                  .min = 1, .max = INT64_MAX),                                                     \
        TP_OPTION(type, field.max_fan_out, "max_fan_out", TP_OPT_INT, "1000",                      \
                  "most messages one input message may become through fan-out; beyond it the "     \
                  "input and all its messages are dropped as invalid_value",                       \
                  .min = 1, .max = INT64_MAX)

struct tp_js_script;
struct tp_js_worker;
struct tp_metrics;

/* An empty script. label ("pipeline.processors[0].tag_processor") is copied;
 * it prefixes console lines. Free with tp_js_script_free after its workers. */
int tp_js_script_new(const char *label, const struct tp_js_limits *lim, struct tp_js_script **out,
                     struct tp_error *err);
void tp_js_script_free(struct tp_js_script *s);
/* Per-rule counters of s's workers go to m (the pipeline's registry; NULL,
 * the default: none). Set before the first tp_js_worker_new. */
void tp_js_script_set_metrics(struct tp_js_script *s, struct tp_metrics *m);

/* Appends a stage that runs the function body `body` on every message
 * (defaults, advancedProcessing, nodered_js code). `stage` names it in drops.
 * An absent or blank snippet is skipped. Compiles now: a syntax error returns
 * TP_CONFIG with err at the snippet's YAML position. The snippet must outlive
 * the script. */
int tp_js_script_add_body(struct tp_js_script *s, const struct tp_js_snippet *body,
                          const char *stage, struct tp_error *err);
/* Appends condition number `index`: `cond` is an expression, `then` a body
 * run on each message for which cond is truthy. Blank cond or then: skipped. */
int tp_js_script_add_condition(struct tp_js_script *s, const struct tp_js_snippet *cond,
                               const struct tp_js_snippet *then, int index, struct tp_error *err);

/* A worker: one VM with every stage loaded (naive mode: nothing yet).
 * Call on the thread that will run it. */
int tp_js_worker_new(struct tp_js_script *s, struct tp_js_worker **out, struct tp_error *err);
void tp_js_worker_free(struct tp_js_worker *w);

/* The same three, shaped as struct tp_processor_plugin callbacks, so the
 * JavaScript processors (tag_processor, nodered_js) share them. */
int tp_js_plugin_worker_new(void *script, int worker_index, void **worker, struct tp_error *err);
void tp_js_plugin_worker_free(void *worker);
void tp_js_plugin_destroy(void *script);

enum tp_js_output {
    TP_JS_OUT_VALUE, /* payload described by type (strings as text, objects as JSON) */
    TP_JS_OUT_JSON,  /* payload always as JSON.stringify text (TP_VALUE_UNDEFINED when none) */
};

/* Receives each surviving message in order: m (metadata set, payload empty,
 * seq and input_line copied; owned by the callee), the final payload
 * (valid during the call only) and the number parsed from the input payload
 * (orig->present is 0 unless the input payload was a bare JSON number). The
 * callee reports its own drops; it returns 0, or TP_NOMEM when a host
 * allocation failed (the run then returns TP_NOMEM). */
typedef int (*tp_js_emit_fn)(void *ud, struct tp_msg *m, const struct tp_value *payload,
                             const struct tp_orig_number *orig, struct tp_drops *drops);

/* Runs `in` through every stage; each message that does not reach emit is
 * reported in drops (filtered, js_error, js_timeout, js_memory, invalid_value
 * beyond max_fan_out; a Promise job cut by a limit as stage "promise job").
 * Returns 0, or TP_NOMEM/TP_JS for a failure that is not the message's fault
 * (the host allocator failed: no drop is reported for it). */
int tp_js_worker_run(struct tp_js_worker *w, const struct tp_msg *in, enum tp_js_output mode,
                     tp_js_emit_fn emit, void *ud, struct tp_drops *drops);

#endif
