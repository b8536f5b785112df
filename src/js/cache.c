/* The processor-wide `cache` store: an open hash table (chained) of entries
 * that also sit on a doubly linked LRU list, all behind one mutex. Entries are
 * single allocations (key and JSON value stored inline). Both the entry count
 * and the bytes of keys and values are bounded (LRU eviction). */
#include "js/cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/hash.h"

struct entry {
    struct entry *hnext;       /* hash chain */
    struct entry *prev, *next; /* LRU list: head = most recently used */
    uint64_t hash;
    size_t klen, vlen;
    char *val;   /* points into data after the key */
    char data[]; /* key NUL value NUL */
};

struct tp_js_cache {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count, max;
    size_t bytes, max_bytes; /* keys + values */
    struct entry *head, *tail;
};

struct tp_js_cache *tp_js_cache_new(size_t max_entries, size_t max_bytes)
{
    struct tp_js_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->max = max_entries ? max_entries : 1;
    c->max_bytes = max_bytes ? max_bytes : 1;
    c->nbuckets = 64;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void tp_js_cache_free(struct tp_js_cache *c)
{
    if (!c)
        return;
    struct entry *e = c->head;
    while (e) {
        struct entry *n = e->next;
        free(e);
        e = n;
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static struct entry **find_slot(struct tp_js_cache *c, const char *key, size_t klen, uint64_t h)
{
    struct entry **pp = &c->buckets[h & (c->nbuckets - 1)];
    while (*pp) {
        struct entry *e = *pp;
        if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0)
            return pp;
        pp = &e->hnext;
    }
    return pp;
}

static void lru_unlink(struct tp_js_cache *c, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(struct tp_js_cache *c, struct entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

/* Unlinks e from its chain and the LRU list and frees it. */
static void remove_entry(struct tp_js_cache *c, struct entry *e)
{
    struct entry **pp = find_slot(c, e->data, e->klen, e->hash);
    *pp = e->hnext;
    lru_unlink(c, e);
    c->count--;
    c->bytes -= e->klen + e->vlen;
    free(e);
}

static void grow(struct tp_js_cache *c)
{
    size_t nb = c->nbuckets * 2;
    struct entry **b = calloc(nb, sizeof(*b));
    if (!b)
        return; /* keep working with longer chains */
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct entry *e = c->buckets[i];
        while (e) {
            struct entry *n = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

int tp_js_cache_set(struct tp_js_cache *c, const char *key, size_t klen, const char *json,
                    size_t jlen)
{
    if (klen + jlen > c->max_bytes)
        return TP_INVAL;
    uint64_t h = tp_hash_bytes(key, klen);
    struct entry *e = malloc(sizeof(*e) + klen + jlen + 2);
    if (!e)
        return TP_NOMEM;
    e->hnext = e->prev = e->next = NULL;
    e->hash = h;
    e->klen = klen;
    e->vlen = jlen;
    memcpy(e->data, key, klen);
    e->data[klen] = '\0';
    e->val = e->data + klen + 1;
    memcpy(e->val, json, jlen);
    e->val[jlen] = '\0';

    pthread_mutex_lock(&c->lock);
    struct entry **pp = find_slot(c, key, klen, h);
    if (*pp)
        remove_entry(c, *pp); /* replaced: its bytes no longer count */
    while (c->tail && (c->count >= c->max || c->bytes + klen + jlen > c->max_bytes))
        remove_entry(c, c->tail);
    pp = find_slot(c, key, klen, h); /* eviction may have changed the chain */
    *pp = e;
    c->count++;
    c->bytes += klen + jlen;
    if (c->count > c->nbuckets)
        grow(c);
    lru_push_front(c, e);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

char *tp_js_cache_get(struct tp_js_cache *c, const char *key, size_t klen, size_t *jlen)
{
    uint64_t h = tp_hash_bytes(key, klen);
    char *out = NULL;
    pthread_mutex_lock(&c->lock);
    struct entry *e = *find_slot(c, key, klen, h);
    if (e) {
        lru_unlink(c, e);
        lru_push_front(c, e);
        out = malloc(e->vlen + 1);
        if (out) {
            memcpy(out, e->val, e->vlen + 1);
            if (jlen)
                *jlen = e->vlen;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return out;
}

int tp_js_cache_exists(struct tp_js_cache *c, const char *key, size_t klen)
{
    uint64_t h = tp_hash_bytes(key, klen);
    pthread_mutex_lock(&c->lock);
    int found = *find_slot(c, key, klen, h) != NULL;
    pthread_mutex_unlock(&c->lock);
    return found;
}

int tp_js_cache_delete(struct tp_js_cache *c, const char *key, size_t klen)
{
    uint64_t h = tp_hash_bytes(key, klen);
    pthread_mutex_lock(&c->lock);
    struct entry *e = *find_slot(c, key, klen, h);
    if (e)
        remove_entry(c, e);
    pthread_mutex_unlock(&c->lock);
    return e != NULL;
}

size_t tp_js_cache_count(struct tp_js_cache *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

size_t tp_js_cache_bytes(struct tp_js_cache *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->bytes;
    pthread_mutex_unlock(&c->lock);
    return n;
}
