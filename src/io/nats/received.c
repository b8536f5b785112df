/* A received NATS message (MSG/HMSG frame) as a tagproc message: payload,
 * the nats_* fields and one metadata entry per header (internal.h,
 * tp__nats_msg_from_frame). Per message on the input's path: the headers
 * are read once into a table, the message's storage is reserved once, and
 * the entries are appended; the merge of repeated keys runs only when a
 * key may repeat. */
#include "io/nats/internal.h"

#include <stdio.h>
#include <string.h>

/* Headers read into the table before the message is built; a message
 * with more takes the general path (appends, then the merge). */
#define TABLE_HEADERS 64

struct header_table {
    struct {
        const char *k, *v;
        size_t kl, vl;
    } e[TABLE_HEADERS];
    size_t n, bytes;  /* entries, key + value bytes with their NULs */
    int overflow;     /* more than TABLE_HEADERS */
    int maybe_repeat; /* a key may equal another header's or a nats_* field's */
    uint64_t seen[16];
};

/* A 10-bit hash of a key: its length and its first and last 8 bytes (keys
 * differing only in between collide, which only costs the merge). */
static unsigned key_bucket(const char *k, size_t kl)
{
    uint64_t a = 0, b = 0;
    if (kl >= 8) {
        memcpy(&a, k, 8);
        memcpy(&b, k + kl - 8, 8);
    } else {
        for (size_t i = 0; i < kl; i++)
            a = a << 8 | (unsigned char)k[i];
    }
    return (unsigned)((((a ^ (b * 0x9E3779B97F4A7C15ull)) + kl) * 0x9E3779B97F4A7C15ull) >> 54);
}

static int table_add(void *arg, const char *k, size_t kl, const char *v, size_t vl)
{
    struct header_table *t = arg;
    if (t->n == TABLE_HEADERS) {
        t->overflow = 1;
        return 1; /* stops the parse: the general path reads the block again */
    }
    unsigned h = key_bucket(k, kl);
    if ((t->seen[h >> 6] >> (h & 63)) & 1 || (kl >= 5 && memcmp(k, "nats_", 5) == 0))
        t->maybe_repeat = 1;
    t->seen[h >> 6] |= 1ull << (h & 63);
    t->e[t->n].k = k;
    t->e[t->n].kl = kl;
    t->e[t->n].v = v;
    t->e[t->n].vl = vl;
    t->n++;
    t->bytes += kl + vl + 2;
    return 0;
}

static int append_header(void *m, const char *k, size_t kl, const char *v, size_t vl)
{
    return tp_msg_meta_append(m, k, kl, v, vl);
}

/* The nats_* fields of f: (key, value) pairs. Returns how many. */
static size_t nats_fields(const struct tp_nats_frame *f, int use_js, const char *k[4],
                          const char *v[4], size_t kl[4], size_t vl[4])
{
    size_t n = 0;
#define FIELD(K, V, VL) (k[n] = (K), kl[n] = sizeof(K) - 1, v[n] = (V), vl[n] = (VL), n++)
    FIELD("nats_subject", f->subject, f->subject_len);
    struct tp_nats_js_meta md;
    if (f->reply && !use_js)
        FIELD("nats_reply", f->reply, f->reply_len);
    if (use_js && tp_nats_js_ack_parse(f->reply, f->reply_len, &md)) {
        FIELD("nats_stream", md.stream, md.stream_len);
        FIELD("nats_sequence", md.sequence, md.sequence_len);
        FIELD("nats_num_delivered", md.delivered, md.delivered_len);
    }
#undef FIELD
    return n;
}

int tp__nats_msg_from_frame(const struct tp_nats_frame *f, int use_js, uint64_t max_meta,
                            struct tp_msg **out, char *why, size_t why_len)
{
    struct header_table *t = NULL, table;
    table.n = table.bytes = 0;
    table.overflow = table.maybe_repeat = 0;
    memset(table.seen, 0, sizeof(table.seen));
    if (f->hdr_len) {
        int rc = tp__nats_headers_parse(f->hdr, f->hdr_len, table_add, &table, why, why_len);
        if (rc == TP_INVAL)
            return TP_INVAL;
        t = &table;
    }
    const char *fk[4], *fv[4];
    size_t fkl[4], fvl[4], nf = nats_fields(f, use_js, fk, fv, fkl, fvl), bytes = 0;
    for (size_t i = 0; i < nf; i++)
        bytes += fkl[i] + fvl[i] + 2;
    struct tp_msg *m = *out = tp_msg_new_payload(f->payload, f->payload_len);
    int rc = m ? TP_OK : TP_NOMEM;
    size_t nh = t && !t->overflow ? t->n : 0;
    rc = rc ? rc : tp_msg_meta_reserve(m, (uint32_t)(nf + nh), bytes + (nh ? t->bytes : 0));
    for (size_t i = 0; !rc && i < nf; i++)
        rc = tp_msg_meta_append(m, fk[i], fkl[i], fv[i], fvl[i]);
    for (size_t i = 0; !rc && i < nh; i++)
        rc = tp_msg_meta_append(m, t->e[i].k, t->e[i].kl, t->e[i].v, t->e[i].vl);
    if (!rc && t && t->overflow)
        rc = tp__nats_headers_parse(f->hdr, f->hdr_len, append_header, m, why, why_len);
    if (!rc && t && (t->maybe_repeat || t->overflow))
        rc = tp_msg_meta_dedupe(m);
    if (!rc && m->n_meta > max_meta) {
        snprintf(why, why_len,
                 "%u metadata entries (nats_* fields and headers), more than max_meta_keys (%llu)",
                 (unsigned)m->n_meta, (unsigned long long)max_meta);
        rc = TP_INVAL;
    }
    if (rc) {
        tp_msg_free(m);
        *out = NULL;
    }
    return rc;
}
