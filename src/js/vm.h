/* What the JavaScript layer shows of its VMs outside src/js: the limits of a
 * script's VMs (SPEC 3.10) and the engine-wide naive switch. The "naive"
 * mode (DESIGN 1) compiles every stage from source and creates a fresh VM
 * per message, as the original Go plugin did; it exists only so the
 * benchmark can show the cost of doing that. */
#ifndef TP_JS_VM_H
#define TP_JS_VM_H

#include <stdint.h>

struct tp_js_limits {
    int64_t timeout_ms;        /* per message, all stages together */
    int64_t memory_limit_mb;   /* per VM */
    int64_t cache_max_entries; /* the processor's cache store */
    int64_t max_fan_out;       /* messages one input may become (invalid_value beyond) */
    int64_t cache_max_bytes;   /* keys + values of the cache store */
};

#define TP_JS_DEFAULT_MAX_FAN_OUT 1000
#define TP_JS_DEFAULT_CACHE_MAX_BYTES (64 * 1024 * 1024)

/* Engine switches for processors created afterwards, set by the program
 * (the CLI maps TAGPROC_ENGINE=naive and TAGPROC_NATIVE_IF=0 onto them):
 * the naive engine on (1) or off (0, the default), and the native form of
 * simple conditions on (1, the default) or off (0). */
void tp_js_set_naive(int on);
void tp_js_set_native_if(int on);

/* 1 when processors created now use the naive engine / native conditions. */
int tp_js_naive(void);
int tp_js_native_if(void);

#endif
