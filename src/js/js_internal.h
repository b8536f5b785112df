/* Internals of the JavaScript layer shared by the files of src/js/ only (with
 * qjs_internals.h, the only headers that include quickjs.h): the per-worker
 * VM of vm.c (runtime, limits, exception classification, per-VM caches and
 * recycled objects) and its allocator (pool.c), used by the bridge, the
 * environment and the engine. */
#ifndef TP_JS_INTERNAL_H
#define TP_JS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "quickjs.h"

#include "core/drop.h"
#include "core/error.h"
#include "core/msg.h"
#include "core/stats.h"
#include "js/cache.h"

struct tp_js_limits;

/* Objects kept alive only so that QuickJS keeps their shapes (property
 * layouts) hashed: building the next message's meta object with the same keys
 * then reuses shapes instead of creating and freeing them per message. */
#define TP_JS_SHAPE_SLOTS 8
#define TP_JS_SHAPE_MAX_KEYS 64
struct tp_js_shape_slot {
    uint64_t sig, used;
    uint32_t n;
    JSValue *objs; /* n objects: the prefixes of the key sequence */
};

#define TP_JS_JSON_SEEN 32

/* Per-VM caches of the bridge, direct-mapped. */
#define TP_JS_KEY_SLOTS 256
#define TP_JS_VAL_SLOTS 1024
struct tp_js_key_slot { /* key bytes -> atom (one reference held) */
    JSAtom atom;
    uint32_t len;
    char bytes[56];
};
/* What a property atom is as a metadata key. */
enum tp_js_key_kind {
    TP_JS_KEY_STRING = 1, /* a string key, its UTF-8 bytes cached */
    TP_JS_KEY_SKIP,       /* a symbol: not metadata */
    TP_JS_KEY_SLOW,       /* anything else (index-like, long, out of memory): public API */
};
struct tp_js_atom_slot { /* atom (one reference held) -> key kind and UTF-8 bytes */
    JSAtom atom;
    uint16_t kind, len;
    char bytes[56];
};
struct tp_js_caches {
    struct tp_js_key_slot keys[TP_JS_KEY_SLOTS];
    struct tp_js_atom_slot atoms[TP_JS_KEY_SLOTS];
    struct tp_js_val_slot {   /* a recent metadata value string (one reference held) */
        JSValue str;          /* JS_UNDEFINED when empty */
        const uint8_t *bytes; /* its characters (ASCII), valid while str is held */
        uint32_t len;
    } vals[TP_JS_VAL_SLOTS];
};

/* Memos of the last metadata layouts, so that a message with the keys of the
 * previous one skips the per-key cache look-ups (bridge.c). The input memo:
 * the key sequence of the last input message, its atoms and an object
 * pinning the shape of that sequence. The output memo: the shape of the last
 * exported meta object (pinned: the pointer cannot be reused while held) and,
 * per property slot of that shape, its UTF-8 key or "not exported". */
#define TP_JS_MEMO_BYTES 2048
struct tp_js_in_memo {
    uint32_t n;                         /* 0: empty */
    JSAtom atoms[TP_JS_SHAPE_MAX_KEYS]; /* one reference each */
    uint16_t lens[TP_JS_SHAPE_MAX_KEYS];
    int ascii_keys; /* every key is ASCII (its atom gives back its bytes) */
    JSValue kept;
    char bytes[TP_JS_MEMO_BYTES]; /* the keys, one after the other */
    /* The message being processed, when its keys are those of the memo:
     * entry i went into meta as atoms[i] = vals[i] (one reference, held until
     * tp__js_in_ident_clear so that no other string can take its address;
     * JS_UNDEFINED when the value is not ASCII). A meta property that still
     * holds that very string under that atom is entry i unchanged: the export
     * copies it from msg instead of converting it back (bridge.c). */
    const struct tp_msg *msg; /* NULL: none */
    uint32_t nvals;
    JSValue vals[TP_JS_SHAPE_MAX_KEYS];
};
#define TP_JS_MEMO_SKIP 0xffffu
struct tp_js_out_memo {
    const void *shape; /* NULL: empty */
    JSValue pin;       /* an object of that shape */
    int np;            /* property slots of the shape */
    struct {
        uint16_t off, len; /* len TP_JS_MEMO_SKIP: not metadata (deleted, hidden, symbol) */
    } key[TP_JS_SHAPE_MAX_KEYS];
    char bytes[TP_JS_MEMO_BYTES];
};

/* The allocator of a VM's runtime (pool.c): create the pool, then the
 * runtime with tp__js_pool_runtime; free the pool after JS_FreeRuntime. */
struct tp_js_pool;
struct tp_js_pool *tp__js_pool_new(void);
JSRuntime *tp__js_pool_runtime(struct tp_js_pool *pool);
void tp__js_pool_free(struct tp_js_pool *pool);
/* The allocation failures of the pool since the last call (then cleared):
 * TP_JS_POOL_LIMIT when memory_limit_mb refused a block, TP_JS_POOL_HOST when
 * the host allocator (malloc) failed. */
#define TP_JS_POOL_LIMIT 1u
#define TP_JS_POOL_HOST 2u
unsigned tp__js_pool_take_failures(struct tp_js_pool *pool);

/* One QuickJS runtime + context owned by one thread. */
struct tp_js_vm {
    JSRuntime *rt;
    JSContext *ctx;
    JSAtom a_payload, a_meta, a_length;
    size_t mem_limit;          /* bytes */
    int64_t timeout_ns;        /* per message */
    int64_t deadline_ns;       /* CLOCK_MONOTONIC_COARSE; 0 = not armed */
    int64_t cpu_base_ns;       /* thread CPU time at the first interrupt check; 0 = none yet */
    int interrupted;           /* the interrupt handler fired since arming */
    int host_oom;              /* the host allocator failed (not the script's fault) */
    size_t cache_max_bytes;    /* for error texts */
    const char *label;         /* processor label, for console lines */
    const char *stage;         /* stage being run, for console lines */
    const struct tp_msg *in;   /* message being processed, for node.* lines; NULL between */
    struct tp_js_cache *cache; /* shared, not owned */
    struct tp_js_shape_slot shapes[TP_JS_SHAPE_SLOTS];
    struct tp_js_shape_slot json_shapes[TP_JS_SHAPE_SLOTS]; /* objects of JSON payloads */
    uint64_t json_seen[TP_JS_JSON_SEEN];                    /* key sequences seen once */
    uint64_t shape_tick;
    struct tp_js_pool *pool;       /* the runtime's allocator */
    struct tp_js_caches *caches;   /* NULL: no caching */
    struct tp_js_in_memo *in_memo; /* NULL: none (no caching or no peek_ok) */
    struct tp_js_out_memo *out_memo;
    int peek_ok;                   /* qjs_internals.c usable on this runtime */
    const void *obj_proto;         /* Object.prototype (identity, for comparisons) */
    JSValue spare_msg, spare_meta; /* recycled objects, JS_UNDEFINED when none */
    JSValue msg_tmpl;              /* keeps the {payload, meta} shape alive */
    JSValue empty_tmpl;            /* keeps the shape of {} alive: new objects share it */
    const void *msg_shape;         /* that shape (NULL without peek_ok) */
};

/* Creates the runtime and context with limits and the environment (console,
 * cache). label and cache must outlive the VM. Counts vms_created in stats
 * (the pipeline's; NULL: counted nowhere). */
int tp__js_vm_init(struct tp_js_vm *vm, const struct tp_js_limits *lim, const char *label,
                   struct tp_js_cache *cache, struct tp_stats *stats, struct tp_error *err);
void tp__js_vm_fini(struct tp_js_vm *vm);

/* Starts the per-message deadline (now + timeout) / ends the message (no
 * deadline, interrupt and host out-of-memory flags cleared). */
void tp__js_vm_arm(struct tp_js_vm *vm);
void tp__js_vm_disarm(struct tp_js_vm *vm);

/* Takes the pending exception and classifies it: js_timeout (interrupt),
 * js_memory (the script went over memory_limit_mb) or js_error (anything
 * else, `throw null` and error texts that merely say "out of memory"
 * included). A failure of the host allocator is none of these: it sets
 * vm->host_oom, which the caller turns into TP_NOMEM (returns js_memory
 * then). buf gets the text: for errors "Name: message (JS line N)" where N
 * comes from the first stack frame in `filename` (may be NULL). Leaves the VM
 * ready for the next message. */
enum tp_drop_reason tp__js_vm_exception(struct tp_js_vm *vm, const char *filename, char *buf,
                                        size_t n);

/* Runs the Promise jobs the message's stages queued, still under its
 * deadline. QuickJS turns an interrupt or an out-of-memory error inside a
 * job into a rejection of its promise, so the limits are read from the VM:
 * returns 1 with *reason (js_timeout or js_memory) and buf describing it when
 * a job was cut by a limit, -1 when the host allocator failed, else 0 (errors a job throws only
 * reject its promise, as in any JavaScript engine). */
int tp__js_vm_run_jobs(struct tp_js_vm *vm, enum tp_drop_reason *reason, char *buf, size_t n);

/* Formats an exception value as "Name: message" and finds the JS line of the
 * first frame in filename (0 when none). Used by the compiler as well. */
void tp__js_describe(JSContext *ctx, JSValueConst ex, const char *filename, char *buf, size_t n,
                     int *js_line);

/* Empty the input / output metadata memo (filled by bridge.c); only with
 * vm->in_memo / vm->out_memo. */
void tp__js_in_memo_clear(struct tp_js_vm *vm);
void tp__js_out_memo_clear(struct tp_js_vm *vm);
/* Ends the input memo's hold on the current message's values (at the end of
 * every message; harmless when there is none). */
void tp__js_in_ident_clear(struct tp_js_vm *vm);

/* Throws out-of-memory for a failed host allocation (sets vm->host_oom). */
static inline JSValue tp__js_throw_host_oom(struct tp_js_vm *vm)
{
    vm->host_oom = 1;
    return JS_ThrowOutOfMemory(vm->ctx);
}

/* Installs console and cache into vm->ctx (env.c). 0 or TP_NOMEM. */
int tp__js_env_install(struct tp_js_vm *vm);

/* Frees a JS_GetOwnPropertyNames table. */
void tp__js_free_props(JSContext *ctx, JSPropertyEnum *tab, uint32_t len);

/* ---- per-VM caches (vm.c) ---- */

/* The atom of the string whose UTF-8 bytes are s[0..n): never
 * JS_NewAtomLen's byte match of non-ASCII bytes against 8-bit (Latin-1)
 * atoms, which would make "\xc3\xa9" (é) the key "Ã©". Invalid UTF-8 decodes
 * as JS_NewStringLen does (U+FFFD). JS_ATOM_NULL when out of memory. */
JSAtom tp__js_atom_utf8(JSContext *ctx, const char *s, size_t n);

/* The atom of a metadata key: a reference of the caller's own (JS_FreeAtom
 * it), also on a cache hit, so no later miss evicting the slot can free an
 * atom the caller still uses. JS_ATOM_NULL when out of memory. */
JSAtom tp__js_key_atom(struct tp_js_vm *vm, const char *s, size_t n);
/* What atom a is as a metadata key (kind, and the UTF-8 bytes of a string
 * key); valid until the next call. Only with vm->caches. The cache hit is
 * inline (a per-key cost of the metadata export), the miss in vm.c. */
const struct tp_js_atom_slot *tp__js_atom_key_miss(struct tp_js_vm *vm, JSAtom a);
static inline const struct tp_js_atom_slot *tp__js_atom_key(struct tp_js_vm *vm, JSAtom a)
{
    const struct tp_js_atom_slot *sl = &vm->caches->atoms[(a * 2654435761u) % TP_JS_KEY_SLOTS];
    return sl->atom == a ? sl : tp__js_atom_key_miss(vm, a);
}
/* A JS string for a metadata value (shared with recent equal values);
 * *ascii (may be NULL) is set to 1 when the bytes are all ASCII, else 0. */
JSValue tp__js_meta_value(struct tp_js_vm *vm, const char *s, size_t n, int *ascii);

/* Makes sure the shapes of objects with keys atoms[0..n) (in that order) stay
 * alive. Cheap when the sequence is already kept. Returns the kept object
 * with exactly those keys (borrowed, valid until the next call), or NULL (no
 * keys, too many, out of memory). */
const JSValue *tp__js_keep_shapes(struct tp_js_vm *vm, const JSAtom *atoms, uint32_t n);

/* The same for the objects of JSON payloads (json_parse.c), in slots of
 * their own so that varied payloads do not evict the metadata's shapes; a
 * key sequence is kept from its second sighting on (a first one only costs
 * its signature), as keeping one costs an object per key. NULL when not
 * kept (yet). */
const JSValue *tp__js_keep_json_shape(struct tp_js_vm *vm, const JSAtom *atoms, uint32_t n);

/* Recycling msg and meta objects: tp__js_msg_release frees a finished msg
 * object, or keeps it and its meta as spares when nothing else references
 * them. tp__js_msg_reuse gives the spare msg holding payload and meta (both
 * consumed), or JS_UNDEFINED (nothing consumed) when there is none.
 * tp__js_meta_reuse gives the spare meta holding exactly atoms[i] = vals[i]
 * (vals consumed), where *kept is the object tp__js_keep_shapes returned for
 * atoms; or JS_UNDEFINED (nothing consumed) when there is no usable spare. */
void tp__js_msg_release(struct tp_js_vm *vm, JSValue msg);
JSValue tp__js_msg_reuse(struct tp_js_vm *vm, JSValue payload, JSValue meta);
JSValue tp__js_meta_reuse(struct tp_js_vm *vm, const JSValue *kept, const JSAtom *atoms, uint32_t n,
                          JSValue *vals);

/* The n < 8 bytes at s in one word, without a memcpy call: two overlapping
 * 4-byte loads, or the first, middle and last byte. For a given n the
 * result tells the bytes apart (every byte is in it). */
static inline uint64_t tp__js_small_word(const char *s, size_t n)
{
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4);
        return lo | (uint64_t)hi << 32;
    }
    if (n == 0)
        return 0;
    return (uint8_t)s[0] | (uint64_t)(uint8_t)s[n / 2] << 8 | (uint64_t)(uint8_t)s[n - 1] << 16;
}

/* 1 when the n bytes at x and y are equal (inline: per metadata key). */
static inline int tp__js_same_bytes(const void *x, const void *y, size_t n)
{
    const char *a = x, *b = y;
    uint64_t u, v;
    if (n < 8)
        return tp__js_small_word(a, n) == tp__js_small_word(b, n);
    for (size_t i = 0; i + 8 < n; i += 8) {
        memcpy(&u, a + i, 8);
        memcpy(&v, b + i, 8);
        if (u != v)
            return 0;
    }
    memcpy(&u, a + n - 8, 8);
    memcpy(&v, b + n - 8, 8);
    return u == v;
}

/* 1 when the n bytes at s are all ASCII. */
static inline int tp__js_all_ascii(const char *s, size_t n)
{
    uint64_t hi = 0, w = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        hi |= w;
    }
    if (i < n) {
        w = 0;
        memcpy(&w, s + i, n - i);
        hi |= w;
    }
    return (hi & 0x8080808080808080ull) == 0;
}

#endif
