/* Key routing (see route.h): the key's hash (core/hash.h) modulo the worker count. */
#include "core/route.h"

#include <string.h>

#include "core/hash.h"

static const char *const natural_keys[] = {"umh_topic", "opcua_node_id", "mqtt_topic",
                                           "kafka_key", "nats_subject",  NULL};

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
        for (size_t i = 0; natural_keys[i] && !k; i++)
            k = tp_msg_meta_get(m, natural_keys[i], &klen);
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
