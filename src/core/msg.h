/* The message model: payload bytes plus ordered string metadata, and the
 * batch that carries messages between input, workers and output.
 * A message keeps all its metadata strings in one growable buffer so that
 * creating, copying and freeing a message costs a handful of allocations. */
#ifndef TP_MSG_H
#define TP_MSG_H

#include <stddef.h>
#include <stdint.h>

/* One metadata entry: offsets into tp_msg.strs (each string NUL-terminated). */
struct tp_meta {
    uint32_t key_off, key_len;
    uint32_t val_off, val_len;
};

/* msg.flags */
#define TP_MSG_PAYLOAD_JSON 0x1u    /* payload is known to be valid JSON */
#define TP_MSG_PAYLOAD_NOTJSON 0x2u /* payload is text: not valid JSON, or arrived as a string */

struct tp_msg {
    char *payload; /* owned, always NUL-terminated (not counted in payload_len) */
    size_t payload_len;
    struct tp_meta *meta; /* entries in insertion order */
    uint32_t n_meta, cap_meta;
    char *strs; /* key/value storage; pointers into it die on the next meta write */
    uint32_t strs_len, strs_cap;
    uint32_t flags;
    uint64_t seq;        /* input sequence number, set by the pipeline */
    uint64_t input_line; /* 1-based input line (stdin/file), 0 when not line-based */
    void *ack;           /* opaque input token for at-least-once inputs, or NULL */
};

/* Allocates an empty message (payload ""). Caller frees with tp_msg_free.
 * Returns NULL on allocation failure. */
struct tp_msg *tp_msg_new(void);
/* The same with a copy of len bytes of data as its payload: one allocation
 * for the payload (tp_msg_new + tp_msg_set_payload make two). */
struct tp_msg *tp_msg_new_payload(const char *data, size_t len);
void tp_msg_free(struct tp_msg *m);

/* Deep copy (payload, metadata, seq, line; not ack). NULL on allocation failure. */
struct tp_msg *tp_msg_clone(const struct tp_msg *m);

/* Copies len bytes as the new payload; clears the JSON flags. 0 or TP_NOMEM. */
int tp_msg_set_payload(struct tp_msg *m, const char *data, size_t len);
/* Takes ownership of buf (malloc'd, must have room for len+1 bytes: a NUL is written). */
void tp_msg_take_payload(struct tp_msg *m, char *buf, size_t len);

/* Sets key to value, replacing an existing value in place (order kept) or
 * appending. 0 or TP_NOMEM. */
int tp_msg_meta_set(struct tp_msg *m, const char *key, size_t klen, const char *val, size_t vlen);
/* Appends key = value without looking for an existing key: for building a
 * message from a source whose keys are known to be unique. 0 or TP_NOMEM. */
int tp_msg_meta_append(struct tp_msg *m, const char *key, size_t klen, const char *val,
                       size_t vlen);
/* Makes room for n_entries more entries and `bytes` more key/value bytes
 * (NULs included), so that the appends that follow do not reallocate.
 * 0 or TP_NOMEM. */
int tp_msg_meta_reserve(struct tp_msg *m, uint32_t n_entries, size_t bytes);
/* Merges entries with equal keys after appends from a source that may repeat
 * keys: each key keeps its first position and its last value (as
 * tp_msg_meta_set would have done), in time linear in the entries.
 * 0 or TP_NOMEM (m unchanged). */
int tp_msg_meta_dedupe(struct tp_msg *m);
/* NUL-terminated convenience form. */
int tp_msg_meta_sets(struct tp_msg *m, const char *key, const char *val);
/* Returns the value (NUL-terminated) or NULL; *vlen gets its length when not NULL. */
const char *tp_msg_meta_get(const struct tp_msg *m, const char *key, size_t *vlen);
/* Removes key if present; returns 1 when removed. */
int tp_msg_meta_del(struct tp_msg *m, const char *key);
/* Removes every entry. */
void tp_msg_meta_clear(struct tp_msg *m);

static inline const char *tp_msg_meta_key(const struct tp_msg *m, uint32_t i)
{
    return m->strs + m->meta[i].key_off;
}
static inline const char *tp_msg_meta_val(const struct tp_msg *m, uint32_t i)
{
    return m->strs + m->meta[i].val_off;
}

/* A batch owns its messages. */
struct tp_batch {
    struct tp_msg **msgs;
    size_t len, cap;
    uint64_t seq; /* batch sequence number, used to release outputs in order */
};

void tp_batch_init(struct tp_batch *b);
/* Appends m; the batch takes ownership. 0 or TP_NOMEM (m is then freed). */
int tp_batch_push(struct tp_batch *b, struct tp_msg *m);
/* Frees every message and empties the batch (capacity kept). */
void tp_batch_clear(struct tp_batch *b);
/* Frees messages and storage. */
void tp_batch_free(struct tp_batch *b);

#endif
