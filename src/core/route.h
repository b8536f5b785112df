/* Key routing: every message goes to a worker chosen by its key, so one
 * key's messages are processed in input order by one worker (stateful rules
 * stay correct on many threads). The key is the `pipeline.key` template or
 * the input's natural key; messages without a key are spread evenly. */
#ifndef TP_ROUTE_H
#define TP_ROUTE_H

#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/msg.h"
#include "core/template.h"

struct tp_router {
    struct tp_template *key; /* pipeline.key, or NULL: the natural key */
    uint32_t workers;
    struct tp_buf scratch; /* the rendered key (reader thread only) */
};

/* key_template NULL or "" means the natural key: the first metadata entry of
 * umh_topic, opcua_node_id, mqtt_topic, kafka_key, nats_subject. */
int tp_router_init(struct tp_router *r, const char *key_template, uint32_t workers,
                   struct tp_error *err);
/* The worker (0..workers-1) for m, the index-th message of its batch. */
uint32_t tp_route(struct tp_router *r, const struct tp_msg *m, uint64_t index);
void tp_router_free(struct tp_router *r);

#endif
