/* The `cache` store of a processor (SPEC 3.9): one per processor instance,
 * shared by every worker thread. Pure C: a mutex-protected hash map plus an
 * LRU list, values kept as JSON text (the JS side serialises and parses). */
#ifndef TP_JS_CACHE_H
#define TP_JS_CACHE_H

#include <stddef.h>

struct tp_js_cache;

/* A store holding at most max_entries keys (>= 1) and max_bytes bytes of keys
 * and values together (>= 1); NULL on allocation failure. Free with
 * tp_js_cache_free. */
struct tp_js_cache *tp_js_cache_new(size_t max_entries, size_t max_bytes);
void tp_js_cache_free(struct tp_js_cache *c);

/* Stores a copy of json[0..jlen) under key (replacing, becoming most recently
 * used); evicts least recently used entries until both bounds hold. 0,
 * TP_NOMEM, or TP_INVAL when klen + jlen alone exceed max_bytes (nothing
 * changes). */
int tp_js_cache_set(struct tp_js_cache *c, const char *key, size_t klen, const char *json,
                    size_t jlen);
/* A malloc'd NUL-terminated copy of the value (caller frees), *jlen its length;
 * NULL when absent (or on allocation failure). Marks the key recently used. */
char *tp_js_cache_get(struct tp_js_cache *c, const char *key, size_t klen, size_t *jlen);
/* 1 when present, else 0 (does not change the LRU order). */
int tp_js_cache_exists(struct tp_js_cache *c, const char *key, size_t klen);
/* 1 when removed, 0 when absent. */
int tp_js_cache_delete(struct tp_js_cache *c, const char *key, size_t klen);
/* Number of entries; bytes of their keys and values. */
size_t tp_js_cache_count(struct tp_js_cache *c);
size_t tp_js_cache_bytes(struct tp_js_cache *c);

#endif
