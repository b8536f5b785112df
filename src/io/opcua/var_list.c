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

/* The metadata keys in benthos-umh's order (opcua_heartbeat_message only
 * for the heartbeat variable), as one block of NUL-terminated keys that
 * starts every message's string storage: one copy per message. */
#define VAR_META_KEYS(X)                                                                           \
    X("opcua_source_timestamp")                                                                    \
    X("opcua_server_timestamp")                                                                    \
    X("opcua_attr_nodeid")                                                                         \
    X("opcua_attr_nodeclass")                                                                      \
    X("opcua_attr_browsename")                                                                     \
    X("opcua_attr_description")                                                                    \
    X("opcua_attr_accesslevel")                                                                    \
    X("opcua_attr_datatype")                                                                       \
    X("opcua_attr_statuscode")                                                                     \
    X("opcua_tag_group")                                                                           \
    X("opcua_tag_name")                                                                            \
    X("opcua_tag_path")                                                                            \
    X("opcua_tag_type")                                                                            \
    X("opcua_node_id")                                                                             \
    X("opcua_heartbeat_message")
#define KEY_TEXT(k) k "\0"
#define KEY_LEN(k) sizeof(k) - 1,
static const char var_meta_keys[] = VAR_META_KEYS(KEY_TEXT);
static const uint32_t var_meta_key_len[] = {VAR_META_KEYS(KEY_LEN)};
enum { N_VAR_META = sizeof(var_meta_key_len) / sizeof(var_meta_key_len[0]) };

/* A message with room for a payload of payload_len bytes (+ NUL), n entries
 * and `bytes` of strings, its metadata empty: `reuse` with its buffers grown
 * where too small, or a new one of the exact size. Built directly on msg.h's
 * layout (payload, entries and strings each malloc'd, the payload
 * NUL-terminated, capacities in cap_meta and strs_cap): a value's message is
 * made for every notification. NULL (reuse freed) when out of memory. */
static struct tp_msg *message_with_room(struct tp_msg *reuse, size_t payload_len, uint32_t n,
                                        size_t bytes)
{
    struct tp_msg *m = reuse;
    if (!m) {
        if (!(m = calloc(1, sizeof(*m))))
            return NULL;
        m->payload = malloc(payload_len + 1);
        m->meta = malloc(n * sizeof(*m->meta));
        m->strs = malloc(bytes);
        m->cap_meta = m->meta ? n : 0;
        m->strs_cap = m->strs ? (uint32_t)bytes : 0;
    } else { /* the payload buffer holds at least payload_len + 1 bytes */
        int ok = 1;
        if (m->payload_len < payload_len || !m->payload) {
            char *p = realloc(m->payload, payload_len + 1);
            ok = p != NULL;
            m->payload = p ? p : m->payload;
        }
        if (ok && m->cap_meta < n) {
            struct tp_meta *e = realloc(m->meta, n * sizeof(*e));
            ok = e != NULL;
            if (e)
                m->meta = e, m->cap_meta = n;
        }
        if (ok && m->strs_cap < bytes) {
            char *p = realloc(m->strs, bytes);
            ok = p != NULL;
            if (p)
                m->strs = p, m->strs_cap = (uint32_t)bytes;
        }
        if (!ok) {
            tp_msg_free(m);
            return NULL;
        }
        m->flags = 0;
        m->seq = m->input_line = 0;
        m->ack = NULL;
    }
    if (!m->payload || m->cap_meta < n || m->strs_cap < bytes) {
        tp_msg_free(m);
        return NULL;
    }
    return m;
}

struct tp_msg *ua_var_message(const struct ua_var_list *l, const struct ua_var *v,
                              const char *payload, size_t payload_len,
                              const struct ua_value_meta *dyn, struct tp_msg *reuse)
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
    size_t len[N_VAR_META], keys = 0, bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        len[i] = strlen(val[i]);
        keys += var_meta_key_len[i] + 1;
        bytes += len[i] + 1;
    }
    bytes += keys;
    if (bytes >= UINT32_MAX) {
        tp_msg_free(reuse);
        return NULL;
    }
    struct tp_msg *m = message_with_room(reuse, payload_len, n, bytes);
    if (!m)
        return NULL;
    if (payload_len)
        memcpy(m->payload, payload, payload_len);
    m->payload[payload_len] = '\0';
    m->payload_len = payload_len;
    memcpy(m->strs, var_meta_keys, keys);
    uint32_t key_off = 0, off = (uint32_t)keys;
    for (uint32_t i = 0; i < n; i++) {
        m->meta[i] = (struct tp_meta){.key_off = key_off,
                                      .key_len = var_meta_key_len[i],
                                      .val_off = off,
                                      .val_len = (uint32_t)len[i]};
        memcpy(m->strs + off, val[i], len[i] + 1); /* with its NUL */
        key_off += var_meta_key_len[i] + 1;
        off += (uint32_t)len[i] + 1;
    }
    m->n_meta = n;
    m->strs_len = (uint32_t)bytes;
    return m;
}
