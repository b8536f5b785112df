/* Message and batch implementation (see msg.h). Metadata strings live in one
 * buffer per message; replacing a value appends the new text and leaves the
 * old bytes as garbage, which is fine for messages that live microseconds. */
#include "core/msg.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/hash.h"

struct tp_msg *tp_msg_new(void)
{
    return tp_msg_new_payload(NULL, 0);
}

struct tp_msg *tp_msg_new_payload(const char *data, size_t len)
{
    struct tp_msg *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->payload = malloc(len + 1);
    if (!m->payload) {
        free(m);
        return NULL;
    }
    if (len)
        memcpy(m->payload, data, len);
    m->payload[len] = '\0';
    m->payload_len = len;
    return m;
}

void tp_msg_free(struct tp_msg *m)
{
    if (!m)
        return;
    free(m->payload);
    free(m->meta);
    free(m->strs);
    free(m);
}

struct tp_msg *tp_msg_clone(const struct tp_msg *m)
{
    struct tp_msg *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->payload = malloc(m->payload_len + 1);
    c->meta = m->n_meta ? malloc(m->n_meta * sizeof(*m->meta)) : NULL;
    c->strs = m->strs_len ? malloc(m->strs_len) : NULL;
    if (!c->payload || (m->n_meta && !c->meta) || (m->strs_len && !c->strs)) {
        tp_msg_free(c);
        return NULL;
    }
    memcpy(c->payload, m->payload, m->payload_len + 1);
    c->payload_len = m->payload_len;
    if (m->n_meta)
        memcpy(c->meta, m->meta, m->n_meta * sizeof(*m->meta));
    if (m->strs_len)
        memcpy(c->strs, m->strs, m->strs_len);
    c->n_meta = c->cap_meta = m->n_meta;
    c->strs_len = c->strs_cap = m->strs_len;
    c->flags = m->flags;
    c->seq = m->seq;
    c->input_line = m->input_line;
    return c;
}

int tp_msg_set_payload(struct tp_msg *m, const char *data, size_t len)
{
    char *p = malloc(len + 1);
    if (!p)
        return TP_NOMEM;
    if (len)
        memcpy(p, data, len);
    tp_msg_take_payload(m, p, len);
    return TP_OK;
}

void tp_msg_take_payload(struct tp_msg *m, char *buf, size_t len)
{
    free(m->payload);
    buf[len] = '\0';
    m->payload = buf;
    m->payload_len = len;
    m->flags &= ~(TP_MSG_PAYLOAD_JSON | TP_MSG_PAYLOAD_NOTJSON);
}

/* Appends s (+NUL) to the string buffer; returns its offset or -1. */
static int64_t strs_add(struct tp_msg *m, const char *s, size_t len)
{
    size_t need = (size_t)m->strs_len + len + 1;
    if (need > UINT32_MAX)
        return -1;
    if (need > m->strs_cap) {
        size_t cap = m->strs_cap ? m->strs_cap : 128;
        while (cap < need)
            cap *= 2;
        if (cap > UINT32_MAX)
            cap = UINT32_MAX;
        char *p = realloc(m->strs, cap);
        if (!p)
            return -1;
        m->strs = p;
        m->strs_cap = (uint32_t)cap;
    }
    uint32_t off = m->strs_len;
    if (len)
        memcpy(m->strs + off, s, len);
    m->strs[off + len] = '\0';
    m->strs_len = (uint32_t)need;
    return off;
}

static int64_t meta_find(const struct tp_msg *m, const char *key, size_t klen)
{
    for (uint32_t i = 0; i < m->n_meta; i++) {
        const struct tp_meta *e = &m->meta[i];
        if (e->key_len == klen && memcmp(m->strs + e->key_off, key, klen) == 0)
            return i;
    }
    return -1;
}

int tp_msg_meta_set(struct tp_msg *m, const char *key, size_t klen, const char *val, size_t vlen)
{
    int64_t i = meta_find(m, key, klen);
    if (i >= 0) {
        struct tp_meta *e = &m->meta[i];
        if (e->val_len >= vlen) { /* overwrite in place */
            memmove(m->strs + e->val_off, val, vlen);
            m->strs[e->val_off + vlen] = '\0';
            e->val_len = (uint32_t)vlen;
            return TP_OK;
        }
        int64_t off = strs_add(m, val, vlen);
        if (off < 0)
            return TP_NOMEM;
        m->meta[i].val_off = (uint32_t)off;
        m->meta[i].val_len = (uint32_t)vlen;
        return TP_OK;
    }
    if (m->n_meta == m->cap_meta) {
        uint32_t cap = m->cap_meta ? m->cap_meta * 2 : 8;
        struct tp_meta *p = realloc(m->meta, cap * sizeof(*p));
        if (!p)
            return TP_NOMEM;
        m->meta = p;
        m->cap_meta = cap;
    }
    int64_t koff = strs_add(m, key, klen);
    if (koff < 0)
        return TP_NOMEM;
    int64_t voff = strs_add(m, val, vlen);
    if (voff < 0)
        return TP_NOMEM;
    struct tp_meta *e = &m->meta[m->n_meta++];
    e->key_off = (uint32_t)koff;
    e->key_len = (uint32_t)klen;
    e->val_off = (uint32_t)voff;
    e->val_len = (uint32_t)vlen;
    return TP_OK;
}

int tp_msg_meta_reserve(struct tp_msg *m, uint32_t n_entries, size_t bytes)
{
    if (n_entries > UINT32_MAX - m->n_meta || bytes > UINT32_MAX - m->strs_len)
        return TP_NOMEM;
    uint32_t want = m->n_meta + n_entries;
    if (want > m->cap_meta) {
        struct tp_meta *p = realloc(m->meta, want * sizeof(*p));
        if (!p)
            return TP_NOMEM;
        m->meta = p;
        m->cap_meta = want;
    }
    size_t need = (size_t)m->strs_len + bytes;
    if (need > m->strs_cap) {
        char *p = realloc(m->strs, need);
        if (!p)
            return TP_NOMEM;
        m->strs = p;
        m->strs_cap = (uint32_t)need;
    }
    return TP_OK;
}

int tp_msg_meta_append(struct tp_msg *m, const char *key, size_t klen, const char *val, size_t vlen)
{
    size_t need = (size_t)m->strs_len + klen + vlen + 2;
    if ((m->n_meta == m->cap_meta || need > m->strs_cap) &&
        tp_msg_meta_reserve(m, m->n_meta == m->cap_meta ? m->n_meta + 8 : 0,
                            need > m->strs_cap ? need + m->strs_cap : 0) != 0)
        return TP_NOMEM;
    /* one copy each, straight into reserved room */
    char *o = m->strs + m->strs_len;
    memcpy(o, key, klen);
    o[klen] = '\0';
    memcpy(o + klen + 1, val, vlen);
    o[klen + 1 + vlen] = '\0';
    struct tp_meta *e = &m->meta[m->n_meta++];
    e->key_off = m->strs_len;
    e->key_len = (uint32_t)klen;
    e->val_off = m->strs_len + (uint32_t)klen + 1;
    e->val_len = (uint32_t)vlen;
    m->strs_len = (uint32_t)need;
    return TP_OK;
}

static int same_key(const struct tp_msg *m, const struct tp_meta *a, const struct tp_meta *b)
{
    return a->key_len == b->key_len &&
           memcmp(m->strs + a->key_off, m->strs + b->key_off, a->key_len) == 0;
}

/* 1 when two of m's first n entries have the same key: pairwise, lengths
 * first (keys mostly differ in length; memcmp only when they do not). */
static int any_repeated_key(const struct tp_msg *m, uint32_t n)
{
    const struct tp_meta *e = m->meta;
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = 0; j < i; j++)
            if (e[i].key_len == e[j].key_len && same_key(m, &e[i], &e[j]))
                return 1;
    return 0;
}

int tp_msg_meta_dedupe(struct tp_msg *m)
{
    uint32_t n = m->n_meta;
    if (n < 2)
        return TP_OK;
    if (n <= 32 && !any_repeated_key(m, n)) /* the common case: a few keys, none repeated */
        return TP_OK;
    /* open addressing over entry indices (+1; 0 = empty), load <= 1/2 */
    size_t cap = 4;
    while (cap < (size_t)n * 2)
        cap *= 2;
    uint32_t *tab = calloc(cap, sizeof(*tab));
    if (!tab)
        return TP_NOMEM;
    uint32_t out = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct tp_meta *e = &m->meta[i];
        size_t h = (size_t)tp_hash_bytes(m->strs + e->key_off, e->key_len) & (cap - 1);
        while (tab[h] && !same_key(m, &m->meta[tab[h] - 1], e))
            h = (h + 1) & (cap - 1);
        if (tab[h]) { /* a repeated key: the earlier entry takes the later value */
            struct tp_meta *first = &m->meta[tab[h] - 1];
            first->val_off = e->val_off;
            first->val_len = e->val_len;
            continue;
        }
        m->meta[out] = *e; /* out <= i: entries before out are final */
        tab[h] = ++out;
    }
    m->n_meta = out;
    free(tab);
    return TP_OK;
}

int tp_msg_meta_sets(struct tp_msg *m, const char *key, const char *val)
{
    return tp_msg_meta_set(m, key, strlen(key), val, strlen(val));
}

const char *tp_msg_meta_get(const struct tp_msg *m, const char *key, size_t *vlen)
{
    int64_t i = meta_find(m, key, strlen(key));
    if (i < 0)
        return NULL;
    if (vlen)
        *vlen = m->meta[i].val_len;
    return m->strs + m->meta[i].val_off;
}

int tp_msg_meta_del(struct tp_msg *m, const char *key)
{
    int64_t i = meta_find(m, key, strlen(key));
    if (i < 0)
        return 0;
    memmove(&m->meta[i], &m->meta[i + 1], (m->n_meta - (size_t)i - 1) * sizeof(*m->meta));
    m->n_meta--;
    return 1;
}

void tp_msg_meta_clear(struct tp_msg *m)
{
    m->n_meta = 0;
    m->strs_len = 0;
}

void tp_batch_init(struct tp_batch *b)
{
    memset(b, 0, sizeof(*b));
}

int tp_batch_push(struct tp_batch *b, struct tp_msg *m)
{
    if (b->len == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct tp_msg **p = realloc(b->msgs, cap * sizeof(*p));
        if (!p) {
            tp_msg_free(m);
            return TP_NOMEM;
        }
        b->msgs = p;
        b->cap = cap;
    }
    b->msgs[b->len++] = m;
    return TP_OK;
}

void tp_batch_clear(struct tp_batch *b)
{
    for (size_t i = 0; i < b->len; i++)
        tp_msg_free(b->msgs[i]);
    b->len = 0;
}

void tp_batch_free(struct tp_batch *b)
{
    tp_batch_clear(b);
    free(b->msgs);
    tp_batch_init(b);
}
