/* The compact list of the variables a browse found (var_list.c): each
 * variable's strings in one arena, identical ones stored once, and the
 * message of one value made from them when it arrives. */
#ifndef TP_OPCUA_VAR_LIST_H
#define TP_OPCUA_VAR_LIST_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/msg.h"

/* One variable, compact (100,000 of them stay well under 150 MB): its
 * strings are offsets into the list's arena, identical strings (folder paths,
 * access levels, data types, descriptions) stored once. */
struct ua_var {
    uint32_t enc;         /* encoded NodeId (enc_len bytes) */
    uint32_t node_id;     /* text form, NUL-terminated like the rest */
    uint32_t browse_name; /* as the server gave it */
    uint32_t description;
    uint32_t access_level; /* "AccessLevelTypeCurrentRead|..." */
    uint32_t data_type;    /* "Double", "ns=2;i=3001", ... */
    uint32_t group;        /* parent folders' path ("" for a start node) */
    uint32_t tag_name;     /* sanitised browse name, unique within its group */
    uint32_t enc_len;
    uint8_t nodeclass;
    uint8_t heartbeat : 1, unsupported_logged : 1;
};

struct ua_var_list {
    struct ua_var *v;
    size_t n, cap;
    struct tp_buf arena; /* every variable's strings and encoded NodeId */
};

static inline const char *ua_var_str(const struct ua_var_list *l, uint32_t off)
{
    return l->arena.data + off;
}
static inline const uint8_t *ua_var_enc(const struct ua_var_list *l, const struct ua_var *v)
{
    return (const uint8_t *)l->arena.data + v->enc;
}

/* Building a list (var_list.c). A set of strings in the arena (offsets + 1;
 * 0 = empty), so that identical strings are stored once; freed by the builder. */
struct ua_interned {
    uint32_t *slot;
    size_t cap, used;
};
#define UA_NO_OFFSET UINT32_MAX
/* Offset of s[0..len) + NUL in the arena: appended, or the copy already there
 * when `set` is given and has it (s is then a text: read up to a NUL).
 * UA_NO_OFFSET when out of memory. */
uint32_t ua_var_list_add(struct ua_var_list *l, struct ua_interned *set, const char *s, size_t len);
uint32_t ua_var_list_adds(struct ua_var_list *l, struct ua_interned *set, const char *s);
void ua_var_list_free(struct ua_var_list *vars);
/* Gives back the room the list grew into (a list is final after a browse). */
void ua_var_list_shrink(struct ua_var_list *l);

/* What changes with every value of a variable. */
struct ua_value_meta {
    const char *source_ts, *server_ts, *status, *type;
};

/* A message for one value of v: payload (copied, JSON) and v's metadata in
 * benthos-umh's order (opcua_source_timestamp ... opcua_node_id), built in
 * `reuse` (a message done with, whose buffers are reused; taken) or, when
 * NULL, in a new one. NULL when out of memory. */
struct tp_msg *ua_var_message(const struct ua_var_list *l, const struct ua_var *v,
                              const char *payload, size_t payload_len,
                              const struct ua_value_meta *dyn, struct tp_msg *reuse);

/* benthos-umh's (gopcua's) name of a NodeClass, e.g. NodeClassVariable. */
const char *ua_nodeclass_name(uint32_t nodeclass);

#endif
