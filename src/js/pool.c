/* The allocator of a worker's QuickJS runtime: size-class free lists carved
 * from chunks, single-threaded like the runtime itself. Building and freeing
 * msg objects, metadata strings and property arrays per message then costs a
 * few instructions per block instead of a trip through malloc; property
 * arrays that grow get room to grow further without moving. The accounting
 * and limit check are those of QuickJS's default allocator, so
 * memory_limit_mb keeps its meaning (live bytes; free blocks stay in the pool
 * until the VM ends). Under AddressSanitizer free blocks are poisoned. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tp_assert.h"
#include "js/js_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define HDR 16 /* keeps user pointers 16-byte aligned */
#define LARGE 0xffffu
#define N_CLASSES 16
#define MAX_SMALL 512
#define CHUNK (32 * 1024)

static const uint32_t class_size[N_CLASSES] = {16,  32,  48,  64,  80,  96,  112, 128,
                                               160, 192, 224, 256, 320, 384, 448, 512};

struct block_hdr {
    uint32_t cls;
    uint32_t state; /* BLOCK_LIVE or BLOCK_FREE: TP_ASSERT catches double frees */
    uint64_t size;  /* large blocks: the requested size */
};
#define BLOCK_LIVE 0x4c495645u
#define BLOCK_FREE 0x46524545u

struct chunk {
    struct chunk *next;
    uint64_t pad;
};

struct tp_js_pool {
    unsigned failures; /* TP_JS_POOL_LIMIT | TP_JS_POOL_HOST since last taken */
    void *free[N_CLASSES];
    char *cur, *end;
    struct chunk *chunks;
    uint8_t cls_of[MAX_SMALL / 16 + 1]; /* (size + 15) / 16 -> class */
};

static struct block_hdr *hdr_of(const void *p)
{
    return (struct block_hdr *)((char *)p - HDR);
}

static size_t usable(const void *p)
{
    const struct block_hdr *h = hdr_of(p);
    return h->cls == LARGE ? h->size : class_size[h->cls];
}

static void *small_alloc(struct tp_js_pool *pool, unsigned cls)
{
    void *p = pool->free[cls];
    if (p) {
        TP_ASSERT(hdr_of(p)->cls == cls && hdr_of(p)->state == BLOCK_FREE);
        UNPOISON(p, class_size[cls]);
        memcpy(&pool->free[cls], p, sizeof(void *));
        hdr_of(p)->state = BLOCK_LIVE;
        return p;
    }
    size_t need = HDR + class_size[cls];
    if ((size_t)(pool->end - pool->cur) < need) {
        struct chunk *c = malloc(CHUNK);
        if (!c)
            return NULL;
        c->next = pool->chunks;
        pool->chunks = c;
        pool->cur = (char *)c + sizeof(*c);
        pool->end = (char *)c + CHUNK;
        POISON(pool->cur, (size_t)(pool->end - pool->cur));
    }
    char *b = pool->cur;
    pool->cur += need;
    UNPOISON(b, need);
    struct block_hdr *h = (struct block_hdr *)b;
    h->cls = cls;
    h->state = BLOCK_LIVE;
    h->size = 0;
    return b + HDR;
}

/* A block of at least `size` bytes (class chosen for `room` >= size). */
static void *block_alloc(struct tp_js_pool *pool, size_t size, size_t room)
{
    if (room <= MAX_SMALL)
        return small_alloc(pool, pool->cls_of[(room + 15) / 16]);
    if (size <= MAX_SMALL)
        return small_alloc(pool, N_CLASSES - 1);
    struct block_hdr *h = malloc(HDR + size);
    if (!h)
        return NULL;
    h->cls = LARGE;
    h->state = BLOCK_LIVE;
    h->size = size;
    return (char *)h + HDR;
}

static void block_free(struct tp_js_pool *pool, void *p)
{
    struct block_hdr *h = hdr_of(p);
    TP_ASSERT(h->state == BLOCK_LIVE && (h->cls < N_CLASSES || h->cls == LARGE));
    if (h->cls == LARGE) {
        free(h);
        return;
    }
    h->state = BLOCK_FREE;
    memcpy(p, &pool->free[h->cls], sizeof(void *));
    pool->free[h->cls] = p;
    POISON(p, class_size[h->cls]);
}

/* NULL, noting why: the limit or the host allocator. */
static void *failed(JSMallocState *s, unsigned why)
{
    struct tp_js_pool *pool = s->opaque;
    pool->failures |= why;
    return NULL;
}

static void *pool_malloc(JSMallocState *s, size_t size)
{
    if (s->malloc_size + size > s->malloc_limit)
        return failed(s, TP_JS_POOL_LIMIT);
    void *p = block_alloc(s->opaque, size, size);
    if (!p)
        return failed(s, TP_JS_POOL_HOST);
    s->malloc_count++;
    s->malloc_size += usable(p) + HDR;
    return p;
}

static void pool_free(JSMallocState *s, void *p)
{
    if (!p)
        return;
    TP_ASSERT(s->malloc_count > 0 && s->malloc_size >= usable(p) + HDR);
    s->malloc_count--;
    s->malloc_size -= usable(p) + HDR;
    block_free(s->opaque, p);
}

static void *pool_realloc(JSMallocState *s, void *p, size_t size)
{
    if (!p)
        return size ? pool_malloc(s, size) : NULL;
    size_t old = usable(p);
    if (size == 0) {
        pool_free(s, p);
        return NULL;
    }
    if (size <= old && (hdr_of(p)->cls != LARGE || size > old / 2))
        return p;
    if (s->malloc_size + size - old > s->malloc_limit)
        return failed(s, TP_JS_POOL_LIMIT);
    if (hdr_of(p)->cls == LARGE && size > MAX_SMALL) {
        struct block_hdr *h = realloc(hdr_of(p), HDR + size);
        if (!h)
            return failed(s, TP_JS_POOL_HOST);
        h->size = size;
        s->malloc_size += size - old;
        return (char *)h + HDR;
    }
    /* A growing block gets room to grow again (property arrays grow by 3/2). */
    void *n = block_alloc(s->opaque, size, size > old ? size * 2 : size);
    if (!n)
        return failed(s, TP_JS_POOL_HOST);
    memcpy(n, p, old < size ? old : size);
    s->malloc_size += usable(n) - old;
    block_free(s->opaque, p);
    return n;
}

static size_t pool_usable_size(const void *p)
{
    return p ? usable(p) : 0;
}

static const JSMallocFunctions pool_funcs = {
    pool_malloc,
    pool_free,
    pool_realloc,
    pool_usable_size,
};

struct tp_js_pool *tp__js_pool_new(void)
{
    struct tp_js_pool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return NULL;
    unsigned c = 0;
    for (unsigned i = 0; i <= MAX_SMALL / 16; i++) {
        while (class_size[c] < i * 16)
            c++;
        pool->cls_of[i] = (uint8_t)c;
    }
    return pool;
}

JSRuntime *tp__js_pool_runtime(struct tp_js_pool *pool)
{
    return JS_NewRuntime2(&pool_funcs, pool);
}

unsigned tp__js_pool_take_failures(struct tp_js_pool *pool)
{
    unsigned f = pool->failures;
    pool->failures = 0;
    return f;
}

void tp__js_pool_free(struct tp_js_pool *pool)
{
    if (!pool)
        return;
    for (struct chunk *c = pool->chunks, *next; c; c = next) {
        next = c->next;
        UNPOISON(c, CHUNK);
        free(c);
    }
    free(pool);
}
