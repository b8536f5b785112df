/* Internal to src/js: a script as engine.c (the stage runner) and engine_script.c
 * (building it from the config's snippets) both see it: its limits, its
 * processor-wide cache and its ordered steps. */
#ifndef TP_JS_ENGINE_SCRIPT_H
#define TP_JS_ENGINE_SCRIPT_H

#include <stddef.h>

#include "js/engine.h"
#include "js/native_if.h"
#include "js/program.h"

struct step {
    struct tp_js_program *cond; /* NULL: the body runs on every message */
    struct tp_js_program *body;
    struct tp_js_native_if nat; /* the if's native form, when has_nat */
    int has_nat;
};

struct tp_js_script {
    char *label;
    struct tp_js_limits lim;
    struct tp_js_cache *cache;
    struct step *steps;
    size_t n, cap;
    int naive;
    int native;                 /* recognise native ifs (TAGPROC_NATIVE_IF=0 turns it off) */
    struct tp_metrics *metrics; /* per-rule counters, or NULL */
};

#endif
