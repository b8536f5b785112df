/* Key routing (see route.h): the key's hash (core/hash.h) modulo the worker count. */
#include "core/route.h"

#include <string.h>

#include "core/hash.h"

#define KEY(s)                                                                                     \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
static const struct {
    const char *name;
    size_t len;
} natural_keys[] = {KEY("umh_topic"), KEY("opcua_node_id"), KEY("mqtt_topic"), KEY("kafka_key"),
                    KEY("nats_subject")};
#define N_NATURAL (sizeof(natural_keys) / sizeof(natural_keys[0]))

/* The value of the first natural key m has, in one pass over its metadata. */
static const char *natural_key(const struct tp_msg *m, size_t *len)
{
    const char *best = NULL;
    size_t rank = N_NATURAL;
    for (uint32_t i = 0; i < m->n_meta && rank > 0; i++) {
        const struct tp_meta *e = &m->meta[i];
        for (size_t r = 0; r < rank; r++)
            if (e->key_len == natural_keys[r].len &&
                memcmp(m->strs + e->key_off, natural_keys[r].name, e->key_len) == 0) {
                best = m->strs + e->val_off;
                *len = e->val_len;
                rank = r;
                break;
            }
    }
    return best;
}

int tp_router_init(struct tp_router *r, const char *key_template, uint32_t workers,
                   struct tp_error *err)
{
    memset(r, 0, sizeof(*r));
    r->workers = workers ? workers : 1;
    tp_buf_init(&r->scratch);
    if (!key_template || !*key_template)
        return TP_OK;
    struct tp_template_error te;
    int rc = tp_template_compile(key_template, &r->key, &te);
    if (rc == TP_NOMEM)
        return tp_error_set(err, rc, "out of memory");
    if (rc)
        return tp_error_set(err, rc, "pipeline.key: %s", te.why);
    return TP_OK;
}

uint32_t tp_route(struct tp_router *r, const struct tp_msg *m, uint64_t index)
{
    if (r->workers == 1)
        return 0;
    const char *k = NULL;
    size_t klen = 0;
    if (r->key) {
        const char *missing = NULL;
        if (tp_template_render(r->key, m, &r->scratch, &missing) == TP_OK && r->scratch.len)
            k = r->scratch.data, klen = r->scratch.len;
    } else {
        k = natural_key(m, &klen);
    }
    if (!k) /* no key: no order to keep, spread evenly */
        return (uint32_t)(index % r->workers);
    return (uint32_t)(tp_hash_bytes(k, klen) % r->workers);
}

void tp_router_free(struct tp_router *r)
{
    tp_template_free(r->key);
    tp_buf_free(&r->scratch);
    r->key = NULL;
}
