/* The compact variable list (see var_list.h): every variable's strings in one
 * arena, identical ones stored once while the list is built, and the message
 * of one value made from them (no per-variable message template is kept). */
#include "io/opcua/var_list.h"

#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

uint32_t ua_var_list_add(struct ua_var_list *l, struct ua_interned *set, const char *s, size_t len)
{
    struct tp_buf *a = &l->arena;
    if (set) {
        len = strnlen(s, len); /* a text: up to its first NUL, as it is read back */
        if ((set->used + 1) * 2 > set->cap) {
            struct ua_interned bigger = {NULL, set->cap ? set->cap * 2 : 256, 0};
            if (!(bigger.slot = calloc(bigger.cap, sizeof(*bigger.slot))))
                return UA_NO_OFFSET;
            for (size_t i = 0; i < set->cap; i++) {
                if (!set->slot[i])
                    continue;
                const char *t = a->data + set->slot[i] - 1;
                size_t j = tp_hash_bytes(t, strlen(t)) & (bigger.cap - 1);
                while (bigger.slot[j])
                    j = (j + 1) & (bigger.cap - 1);
                bigger.slot[j] = set->slot[i];
                bigger.used++;
            }
            free(set->slot);
            *set = bigger;
        }
        size_t i = tp_hash_bytes(s, len) & (set->cap - 1);
        for (; set->slot[i]; i = (i + 1) & (set->cap - 1)) {
            const char *t = a->data + set->slot[i] - 1;
            if (strncmp(t, s, len) == 0 && t[len] == '\0')
                return set->slot[i] - 1;
        }
        if (a->len + len + 1 >= UA_NO_OFFSET)
            return UA_NO_OFFSET;
        set->slot[i] = (uint32_t)a->len + 1;
        set->used++;
    }
    if (a->len + len + 1 >= UA_NO_OFFSET || tp_buf_reserve(a, len + 1))
        return UA_NO_OFFSET;
    uint32_t off = (uint32_t)a->len;
    memcpy(a->data + off, s, len);
    a->data[off + len] = '\0';
    a->len += len + 1;
    return off;
}

uint32_t ua_var_list_adds(struct ua_var_list *l, struct ua_interned *set, const char *s)
{
    return ua_var_list_add(l, set, s ? s : "", s ? strlen(s) : 0);
}

void ua_var_list_shrink(struct ua_var_list *l)
{
    if (l->n && l->n < l->cap) {
        struct ua_var *v = realloc(l->v, l->n * sizeof(*v));
        if (v) {
            l->v = v;
            l->cap = l->n;
        }
    }
    if (l->arena.data && l->arena.len + 1 < l->arena.cap) {
        char *a = realloc(l->arena.data, l->arena.len + 1);
        if (a) {
            l->arena.data = a;
            l->arena.cap = l->arena.len + 1;
        }
    }
}

void ua_var_list_free(struct ua_var_list *vars)
{
    free(vars->v);
    tp_buf_free(&vars->arena);
    memset(vars, 0, sizeof(*vars));
}

const char *ua_nodeclass_name(uint32_t nodeclass)
{
    switch (nodeclass) {
    case 1:
        return "NodeClassObject";
    case 2:
        return "NodeClassVariable";
    case 4:
        return "NodeClassMethod";
    case 8:
        return "NodeClassObjectType";
    case 16:
        return "NodeClassVariableType";
    case 32:
        return "NodeClassReferenceType";
    case 64:
        return "NodeClassDataType";
    case 128:
        return "NodeClassView";
    default:
        return "NodeClassUnspecified";
    }
}

#define KEY(s)                                                                                     \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
enum { N_VAR_META = 15 };
static const struct {
    const char *s;
    size_t len;
} var_meta_keys[N_VAR_META] = {
    KEY("opcua_source_timestamp"), KEY("opcua_server_timestamp"), KEY("opcua_attr_nodeid"),
    KEY("opcua_attr_nodeclass"),   KEY("opcua_attr_browsename"),  KEY("opcua_attr_description"),
    KEY("opcua_attr_accesslevel"), KEY("opcua_attr_datatype"),    KEY("opcua_attr_statuscode"),
    KEY("opcua_tag_group"),        KEY("opcua_tag_name"),         KEY("opcua_tag_path"),
    KEY("opcua_tag_type"),         KEY("opcua_node_id"),          KEY("opcua_heartbeat_message")};

struct tp_msg *ua_var_message(const struct ua_var_list *l, const struct ua_var *v,
                              const char *payload, size_t payload_len,
                              const struct ua_value_meta *dyn)
{
    const char *group = ua_var_str(l, v->group);
    const char *val[N_VAR_META] = {dyn->source_ts,
                                   dyn->server_ts,
                                   ua_var_str(l, v->node_id),
                                   ua_nodeclass_name(v->nodeclass),
                                   ua_var_str(l, v->browse_name),
                                   ua_var_str(l, v->description),
                                   ua_var_str(l, v->access_level),
                                   ua_var_str(l, v->data_type),
                                   dyn->status,
                                   group[0] ? group : ua_var_str(l, v->tag_name),
                                   ua_var_str(l, v->tag_name),
                                   group,
                                   dyn->type,
                                   ua_var_str(l, v->node_id),
                                   "true"};
    uint32_t n = v->heartbeat ? N_VAR_META : N_VAR_META - 1;
    size_t len[N_VAR_META], bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        len[i] = strlen(val[i]);
        bytes += var_meta_keys[i].len + len[i] + 2;
    }
    struct tp_msg *m = tp_msg_new();
    char *p = m ? malloc(payload_len + 1) : NULL;
    if (!p || tp_msg_meta_reserve(m, n, bytes)) {
        free(p);
        tp_msg_free(m);
        return NULL;
    }
    if (payload_len)
        memcpy(p, payload, payload_len);
    tp_msg_take_payload(m, p, payload_len);
    for (uint32_t i = 0; i < n; i++) /* room reserved: cannot fail */
        tp_msg_meta_append(m, var_meta_keys[i].s, var_meta_keys[i].len, val[i], len[i]);
    return m;
}
