/* Recursive browse of the configured start nodes and the per-variable message
 * templates (see browse.h). Browse requests go out in batches; attributes of
 * the variables found are read in batches afterwards. */
#include "io/opcua/browse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/log.h"

#define BROWSE_BATCH 500
#define READ_BATCH 500 /* ReadValueIds per Read request */
#define HAS_PROPERTY 46
#define PROPERTY_TYPE 68
#define HIERARCHICAL_REFERENCES 33
#define ATTR_NODECLASS 2
#define ATTR_BROWSENAME 3
#define ATTR_DATATYPE 14
#define ATTR_ACCESSLEVEL 17
#define ATTR_DESCRIPTION 5

/* A node found by browsing: its encoded NodeId, parent path and names. */
struct found {
    uint8_t *enc;
    size_t enc_len;
    char *path;  /* sanitized browse names from the start node, this node included */
    char *group; /* the parent's path ("" for a start node) */
    char *browse_name;
    uint32_t nodeclass;
    int level;
};

struct found_list {
    struct found *v;
    size_t n, cap;
};

/* A set of encoded NodeIds (open addressing). */
struct seen {
    struct {
        const uint8_t *p;
        size_t n;
    } * slot;
    size_t cap, used;
};

/* 1 when added, 0 when present, -1 on allocation failure. p must outlive the set. */
static int seen_add(struct seen *s, const uint8_t *p, size_t n)
{
    if ((s->used + 1) * 2 > s->cap) {
        struct seen bigger = {NULL, s->cap ? s->cap * 2 : 1024, 0};
        if (!(bigger.slot = calloc(bigger.cap, sizeof(*bigger.slot))))
            return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i].p)
                seen_add(&bigger, s->slot[i].p, s->slot[i].n);
        free(s->slot);
        *s = bigger;
    }
    size_t i = tp_hash_bytes(p, n) & (s->cap - 1);
    while (s->slot[i].p) {
        if (s->slot[i].n == n && memcmp(s->slot[i].p, p, n) == 0)
            return 0;
        i = (i + 1) & (s->cap - 1);
    }
    s->slot[i].p = p;
    s->slot[i].n = n;
    s->used++;
    return 1;
}

void ua_sanitize(const char *s, size_t len, struct tp_buf *out)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
        /* one '_' per UTF-8 character, as a regexp over runes does */
        if (!ok && ((unsigned char)c & 0xc0) == 0x80)
            continue;
        tp_buf_putc(out, ok ? c : '_');
    }
}

void ua_accesslevel_text(uint32_t level, struct tp_buf *out)
{
    static const char *const bits[] = {"CurrentRead",   "CurrentWrite",   "HistoryRead",
                                       "HistoryWrite",  "SemanticChange", "StatusWrite",
                                       "TimestampWrite"};
    if (!level) {
        tp_buf_puts(out, "AccessLevelTypeNone");
        return;
    }
    int first = 1;
    for (int i = 0; i < 7; i++)
        if (level & (1u << i)) {
            tp_buf_printf(out, "%sAccessLevelType%s", first ? "" : "|", bits[i]);
            first = 0;
        }
}

void ua_datatype_text(const struct ua_nodeid *id, struct tp_buf *out)
{
    static const char *const builtin[] = {NULL,
                                          "Boolean",
                                          "SByte",
                                          "Byte",
                                          "Int16",
                                          "UInt16",
                                          "Int32",
                                          "UInt32",
                                          "Int64",
                                          "UInt64",
                                          "Float",
                                          "Double",
                                          "String",
                                          "DateTime",
                                          "Guid",
                                          "ByteString",
                                          "XmlElement",
                                          "NodeId",
                                          "ExpandedNodeId",
                                          "StatusCode",
                                          "QualifiedName",
                                          "LocalizedText",
                                          "ExtensionObject",
                                          "DataValue",
                                          "Variant",
                                          "DiagnosticInfo",
                                          "Number",
                                          "Integer",
                                          "UInteger",
                                          "Enumeration"};
    const char *name = NULL;
    if (id->ns == 0 && id->type == UA_ID_NUMERIC) {
        if (id->num < sizeof(builtin) / sizeof(builtin[0]))
            name = builtin[id->num];
        else if (id->num == 290)
            name = "Duration";
        else if (id->num == 294)
            name = "UtcTime";
        else if (id->num == 295)
            name = "LocaleId";
    }
    if (name)
        tp_buf_puts(out, name);
    else
        ua_nodeid_format(id, out);
}

static void found_free(struct found *f)
{
    free(f->enc);
    free(f->path);
    free(f->group);
    free(f->browse_name);
}

static void found_list_free(struct found_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        found_free(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static struct found *found_push(struct found_list *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct found *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    struct found *f = &l->v[l->n++];
    memset(f, 0, sizeof(*f));
    return f;
}

static char *join_path(const char *parent, const char *name, size_t len)
{
    struct tp_buf b;
    tp_buf_init(&b);
    if (parent[0]) {
        tp_buf_puts(&b, parent);
        tp_buf_putc(&b, '.');
    }
    ua_sanitize(name, len, &b);
    if (!b.data)
        return strdup("");
    return tp_buf_take(&b, NULL);
}

static int read_request(struct ua_client *cl, uint32_t timestamps, size_t n)
{
    return ua_req_begin(cl, UA_READ_REQ, (uint32_t)cl->timeout_ms) || ua_enc_f64(&cl->req, 0) ||
                   ua_enc_u32(&cl->req, timestamps) || ua_enc_u32(&cl->req, (uint32_t)n)
               ? TP_NOMEM
               : 0;
}

static int read_value_id(struct tp_buf *b, const uint8_t *enc, size_t len, uint32_t attr)
{
    return tp_buf_append(b, (const char *)enc, len) || ua_enc_u32(b, attr) ||
                   ua_enc_string(b, NULL, -1) || ua_enc_u16(b, 0) || ua_enc_string(b, NULL, -1)
               ? TP_NOMEM
               : 0;
}

/* Start nodes: parse, read NodeClass and BrowseName, seed the browse frontier. */
static int add_start_nodes(struct ua_client *cl, char *const *start, size_t n_start,
                           struct found_list *frontier, struct tp_error *err)
{
    struct tp_buf store, enc;
    tp_buf_init(&store);
    tp_buf_init(&enc);
    int rc = read_request(cl, 3, n_start * 2);
    for (size_t i = 0; i < n_start && !rc; i++) {
        struct ua_nodeid id;
        if (ua_nodeid_parse(start[i], &id, &store)) {
            rc = tp_error_set(err, TP_CONFIG,
                              "opcua: nodeIDs[%zu]: '%s' is not a NodeId "
                              "(ns=<n>;i=<n> | s=<text> | g=<guid> | b=<base64>)",
                              i, start[i]);
            break;
        }
        tp_buf_reset(&enc);
        struct found *f = found_push(frontier);
        if (!f || ua_enc_nodeid(&enc, &id) || !(f->enc = malloc(enc.len))) {
            rc = tp_error_set(err, TP_NOMEM, "out of memory");
            break;
        }
        memcpy(f->enc, enc.data, enc.len);
        f->enc_len = enc.len;
        rc = read_value_id(&cl->req, f->enc, f->enc_len, ATTR_NODECLASS) ||
             read_value_id(&cl->req, f->enc, f->enc_len, ATTR_BROWSENAME);
    }
    tp_buf_free(&store);
    tp_buf_free(&enc);
    if (rc)
        return rc == TP_NOMEM ? tp_error_set(err, TP_NOMEM, "out of memory") : rc;
    struct ua_dec d;
    if ((rc = ua_call(cl, UA_READ_RESP, &d, err)) != 0)
        return rc;
    int32_t n = ua_dec_len(&d, UA_MAX_ARRAY_LEN);
    if (n != (int32_t)(n_start * 2))
        return tp_error_set(err, TP_PARSE, "opcua: Read returned %d results for %zu", n,
                            n_start * 2);
    for (size_t i = 0; i < n_start; i++) {
        struct ua_datavalue cls, bn;
        ua_dec_datavalue(&d, &cls);
        ua_dec_datavalue(&d, &bn);
        struct found *f = &frontier->v[i];
        char tmp[16];
        if (d.err)
            return tp_error_set(err, TP_PARSE, "opcua: malformed Read response");
        if ((cls.status & 0x80000000u) || (bn.status & 0x80000000u)) {
            tp_log(TP_LOG_WARN, "opcua: start node %s: %s", start[i],
                   ua_status_name((cls.status & 0x80000000u) ? cls.status : bn.status, tmp));
            f->level = -1; /* skipped */
            continue;
        }
        struct ua_dec vd;
        ua_dec_init(&vd, bn.value.raw, bn.value.raw_len);
        uint16_t ns;
        struct ua_str name = {"", 0};
        if (bn.value.type == UA_QUALIFIEDNAME && bn.value.array_len < 0)
            ua_dec_qualified_name(&vd, &ns, &name);
        f->nodeclass = (uint32_t)ua_variant_int(&cls.value);
        f->browse_name = strndup(name.s ? name.s : "", name.len > 0 ? (size_t)name.len : 0);
        f->group = strdup("");
        f->path = f->browse_name ? join_path("", f->browse_name, strlen(f->browse_name)) : NULL;
        if (!f->browse_name || !f->group || !f->path)
            return tp_error_set(err, TP_NOMEM, "out of memory");
    }
    return TP_OK;
}

/* Handles the references of one BrowseResult of `parent`. */
static int take_references(struct ua_dec *d, const struct found *parent, struct found_list *next,
                           struct found_list *vars, struct seen *seen, struct tp_buf *scratch)
{
    int32_t n = ua_dec_len(d, UA_MAX_ARRAY_LEN);
    for (int32_t i = 0; i < n && !d->err; i++) {
        struct ua_nodeid ref_type, target, type_def;
        struct ua_str name, locale, text;
        uint16_t ns;
        ua_dec_nodeid(d, &ref_type);
        ua_dec_u8(d); /* isForward */
        ua_dec_expanded_nodeid(d, &target);
        ua_dec_qualified_name(d, &ns, &name);
        ua_dec_localized_text(d, &locale, &text);
        uint32_t nodeclass = ua_dec_u32(d);
        ua_dec_expanded_nodeid(d, &type_def);
        if (d->err)
            break;
        if ((ref_type.ns == 0 && ref_type.type == UA_ID_NUMERIC && ref_type.num == HAS_PROPERTY) ||
            (type_def.ns == 0 && type_def.type == UA_ID_NUMERIC && type_def.num == PROPERTY_TYPE))
            continue;
        if (nodeclass != 1 && nodeclass != 2)
            continue;
        tp_buf_reset(scratch);
        if (ua_enc_nodeid(scratch, &target))
            return TP_NOMEM;
        uint8_t *enc = malloc(scratch->len);
        if (!enc)
            return TP_NOMEM;
        memcpy(enc, scratch->data, scratch->len);
        int added = seen_add(seen, enc, scratch->len);
        if (added <= 0) {
            free(enc);
            if (added < 0)
                return TP_NOMEM;
            continue;
        }
        struct found *f = found_push(next);
        if (!f) {
            free(enc);
            return TP_NOMEM;
        }
        f->enc = enc;
        f->enc_len = scratch->len;
        f->nodeclass = nodeclass;
        f->level = parent->level + 1;
        f->browse_name = strndup(name.s ? name.s : "", name.len > 0 ? (size_t)name.len : 0);
        f->group = strdup(parent->path);
        f->path =
            f->browse_name ? join_path(parent->path, f->browse_name, strlen(f->browse_name)) : NULL;
        if (!f->browse_name || !f->group || !f->path)
            return TP_NOMEM;
        if (nodeclass == 2) { /* a copy for the variable list (the frontier entry is freed) */
            struct found *v = found_push(vars);
            if (!v)
                return TP_NOMEM;
            *v = *f;
            v->enc = malloc(f->enc_len);
            v->path = strdup(f->path);
            v->group = strdup(f->group);
            v->browse_name = strdup(f->browse_name);
            if (!v->enc || !v->path || !v->group || !v->browse_name)
                return TP_NOMEM;
            memcpy(v->enc, f->enc, f->enc_len);
        }
    }
    return d->err ? TP_PARSE : TP_OK;
}

/* BrowseNext for one continuation point until the references end. */
static int browse_next(struct ua_client *cl, struct ua_str cp, const struct found *parent,
                       struct found_list *next, struct found_list *vars, struct seen *seen,
                       struct tp_buf *scratch, struct tp_error *err)
{
    struct tp_buf point;
    tp_buf_init(&point);
    int rc = 0;
    while (!rc && cp.len > 0) {
        tp_buf_reset(&point);
        if (tp_buf_append(&point, cp.s, (size_t)cp.len) ||
            ua_req_begin(cl, UA_BROWSE_NEXT_REQ, (uint32_t)cl->timeout_ms) ||
            ua_enc_u8(&cl->req, 0) || ua_enc_u32(&cl->req, 1) ||
            ua_enc_string(&cl->req, point.data, (int32_t)point.len)) {
            rc = tp_error_set(err, TP_NOMEM, "out of memory");
            break;
        }
        struct ua_dec d;
        if ((rc = ua_call(cl, UA_BROWSE_NEXT_RESP, &d, err)) != 0)
            break;
        if (ua_dec_len(&d, 1) != 1) {
            rc = tp_error_set(err, TP_PARSE, "opcua: malformed BrowseNext response");
            break;
        }
        ua_dec_u32(&d);
        cp = ua_dec_string(&d);
        rc = take_references(&d, parent, next, vars, seen, scratch);
        if (rc)
            rc = tp_error_set(err, rc, "opcua: malformed BrowseNext response");
    }
    tp_buf_free(&point);
    return rc;
}

/* Browses every node of `level` (one batch request per BROWSE_BATCH nodes). */
static int browse_level(struct ua_client *cl, struct found_list *level, struct found_list *next,
                        struct found_list *vars, struct seen *seen, struct tp_error *err)
{
    struct tp_buf scratch;
    tp_buf_init(&scratch);
    int rc = 0;
    for (size_t start = 0; start < level->n && !rc; start += BROWSE_BATCH) {
        size_t end = start + BROWSE_BATCH < level->n ? start + BROWSE_BATCH : level->n, count = 0;
        for (size_t i = start; i < end; i++)
            count += level->v[i].level >= 0 && level->v[i].level < UA_MAX_BROWSE_DEPTH;
        if (!count)
            continue;
        struct tp_buf *b = &cl->req;
        rc = ua_req_begin(cl, UA_BROWSE_REQ, (uint32_t)cl->timeout_ms) ||
             ua_enc_numeric_nodeid(b, 0, 0) || ua_enc_u64(b, 0) || ua_enc_u32(b, 0) ||
             ua_enc_u32(b, 1000) || ua_enc_u32(b, (uint32_t)count);
        for (size_t i = start; i < end && !rc; i++) {
            const struct found *f = &level->v[i];
            if (f->level < 0 || f->level >= UA_MAX_BROWSE_DEPTH)
                continue;
            rc = tp_buf_append(b, (const char *)f->enc, f->enc_len) || ua_enc_u32(b, 0) ||
                 ua_enc_numeric_nodeid(b, 0, HIERARCHICAL_REFERENCES) || ua_enc_u8(b, 1) ||
                 ua_enc_u32(b, 3) || ua_enc_u32(b, 63);
        }
        if (rc) {
            rc = tp_error_set(err, TP_NOMEM, "out of memory");
            break;
        }
        struct ua_dec d;
        if ((rc = ua_call(cl, UA_BROWSE_RESP, &d, err)) != 0)
            break;
        if (ua_dec_len(&d, UA_MAX_ARRAY_LEN) != (int32_t)count) {
            rc = tp_error_set(err, TP_PARSE, "opcua: Browse returned a wrong number of results");
            break;
        }
        /* continuation points are handled after the whole response is read */
        struct tp_buf resp_copy;
        tp_buf_init(&resp_copy);
        if (tp_buf_append(&resp_copy, cl->resp.data, cl->resp.len)) {
            rc = tp_error_set(err, TP_NOMEM, "out of memory");
            break;
        }
        d.p = (const uint8_t *)resp_copy.data;
        for (size_t i = start; i < end && !rc; i++) {
            const struct found *f = &level->v[i];
            if (f->level < 0 || f->level >= UA_MAX_BROWSE_DEPTH)
                continue;
            char tmp[16];
            uint32_t status = ua_dec_u32(&d);
            struct ua_str cp = ua_dec_string(&d);
            if (status & 0x80000000u)
                tp_log(TP_LOG_WARN, "opcua: browsing %s (%s): %s", f->path, f->browse_name,
                       ua_status_name(status, tmp));
            rc = take_references(&d, f, next, vars, seen, &scratch);
            if (rc) {
                rc = tp_error_set(err, rc, "opcua: malformed Browse response");
                break;
            }
            if (cp.len > 0)
                rc = browse_next(cl, cp, f, next, vars, seen, &scratch, err);
        }
        tp_buf_free(&resp_copy);
    }
    tp_buf_free(&scratch);
    return rc;
}

/* Reads DataType, Description and AccessLevel of the variables found and
 * makes the ones with a non-null DataType into ua_vars. */
static int read_attributes(struct ua_client *cl, struct found_list *found, struct ua_var_list *vars,
                           struct tp_error *err);

int ua_browse(struct ua_client *cl, char *const *start, size_t n_start, struct ua_var_list *vars,
              struct tp_error *err)
{
    struct found_list level = {0}, next = {0}, found = {0};
    struct seen seen = {0};
    int rc = add_start_nodes(cl, start, n_start, &level, err);
    for (size_t i = 0; i < level.n && !rc; i++) {
        struct found *f = &level.v[i];
        if (f->level < 0)
            continue;
        if (seen_add(&seen, f->enc, f->enc_len) < 0)
            rc = tp_error_set(err, TP_NOMEM, "out of memory");
        if (f->nodeclass == 2) { /* a start node that is itself a variable */
            struct found *v = found_push(&found);
            if (!v) {
                rc = tp_error_set(err, TP_NOMEM, "out of memory");
                break;
            }
            *v = *f;
            v->enc = malloc(f->enc_len);
            v->path = strdup(f->path);
            v->group = strdup(f->group);
            v->browse_name = strdup(f->browse_name);
            if (!v->enc || !v->path || !v->group || !v->browse_name)
                rc = tp_error_set(err, TP_NOMEM, "out of memory");
            else
                memcpy(v->enc, f->enc, f->enc_len);
        }
    }
    /* the seen set points into level/next entries: keep every level alive */
    struct found_list done = {0};
    while (!rc && level.n) {
        rc = browse_level(cl, &level, &next, &found, &seen, err);
        for (size_t i = 0; i < level.n && !rc; i++) {
            struct found *f = found_push(&done);
            if (!f)
                rc = tp_error_set(err, TP_NOMEM, "out of memory");
            else
                *f = level.v[i];
        }
        if (rc)
            break;
        free(level.v);
        level = next;
        memset(&next, 0, sizeof(next));
    }
    free(seen.slot);
    /* the browse scaffolding goes before the variables are built */
    found_list_free(&done);
    found_list_free(&level);
    found_list_free(&next);
    if (!rc)
        rc = read_attributes(cl, &found, vars, err);
    found_list_free(&found);
    return rc;
}

/* Adds one variable; tag names are made unique within their group. */
static int add_var(struct ua_var_list *vars, const struct found *f, struct ua_str description,
                   uint32_t access, const struct ua_nodeid *datatype, struct seen *names,
                   struct tp_buf *keys, struct ua_interned *shared)
{
    struct tp_buf id_text, name, key, al, dt;
    tp_buf_init(&id_text);
    tp_buf_init(&name);
    tp_buf_init(&key);
    tp_buf_init(&al);
    tp_buf_init(&dt);
    struct ua_dec d;
    struct ua_nodeid id;
    ua_dec_init(&d, f->enc, f->enc_len);
    ua_dec_nodeid(&d, &id);
    int rc = ua_nodeid_format(&id, &id_text);
    ua_sanitize(f->browse_name, strlen(f->browse_name), &name);
    if (!name.data)
        tp_buf_puts(&name, "");
    tp_buf_printf(&key, "%s/%s", f->group, name.data ? name.data : "");
    if (!rc && key.data) {
        /* each key is its own allocation (the set points at it), listed in `keys` */
        char *k = strdup(key.data);
        if (!k || tp_buf_append(keys, (const char *)&k, sizeof(k))) {
            free(k);
            rc = TP_NOMEM;
        } else if (seen_add(names, (const uint8_t *)k, strlen(k)) == 0) {
            tp_buf_putc(&name, '_');
            ua_sanitize(id_text.data, id_text.len, &name);
        }
    }
    if (!rc && vars->n == vars->cap) {
        size_t cap = vars->cap ? vars->cap * 2 : 64;
        struct ua_var *v = realloc(vars->v, cap * sizeof(*v));
        if (!v)
            rc = TP_NOMEM;
        else {
            vars->v = v;
            vars->cap = cap;
        }
    }
    ua_accesslevel_text(access, &al);
    ua_datatype_text(datatype, &dt);
    if (!rc && (!id_text.data || !name.data || !al.data || !dt.data))
        rc = TP_NOMEM;
    if (!rc) {
        struct ua_var v = {.enc_len = (uint32_t)f->enc_len, .nodeclass = (uint8_t)f->nodeclass};
        v.enc = ua_var_list_add(vars, NULL, (const char *)f->enc, f->enc_len);
        v.node_id = ua_var_list_adds(vars, NULL, id_text.data);
        v.browse_name = ua_var_list_adds(vars, NULL, f->browse_name);
        v.description = ua_var_list_add(vars, shared, description.s ? description.s : "",
                                        description.len > 0 ? (size_t)description.len : 0);
        v.access_level = ua_var_list_adds(vars, shared, al.data);
        v.data_type = ua_var_list_adds(vars, shared, dt.data);
        v.group = ua_var_list_adds(vars, shared, f->group);
        v.tag_name = ua_var_list_adds(vars, NULL, name.data);
        if (v.enc == UA_NO_OFFSET || v.node_id == UA_NO_OFFSET || v.browse_name == UA_NO_OFFSET ||
            v.description == UA_NO_OFFSET || v.access_level == UA_NO_OFFSET ||
            v.data_type == UA_NO_OFFSET || v.group == UA_NO_OFFSET || v.tag_name == UA_NO_OFFSET)
            rc = TP_NOMEM;
        else
            vars->v[vars->n++] = v;
    }
    tp_buf_free(&id_text);
    tp_buf_free(&name);
    tp_buf_free(&key);
    tp_buf_free(&al);
    tp_buf_free(&dt);
    return rc;
}

static int read_attributes(struct ua_client *cl, struct found_list *found, struct ua_var_list *vars,
                           struct tp_error *err)
{
    enum { PER_VAR = 3 };
    struct seen names = {0};
    struct ua_interned shared = {0};
    struct tp_buf keys;
    tp_buf_init(&keys);
    int rc = 0;
    size_t skipped = 0;
    for (size_t start = 0; start < found->n && !rc; start += READ_BATCH / PER_VAR) {
        size_t end = start + READ_BATCH / PER_VAR;
        if (end > found->n)
            end = found->n;
        rc = read_request(cl, 3, (end - start) * PER_VAR);
        for (size_t i = start; i < end && !rc; i++) {
            const struct found *f = &found->v[i];
            rc = read_value_id(&cl->req, f->enc, f->enc_len, ATTR_DATATYPE) ||
                 read_value_id(&cl->req, f->enc, f->enc_len, ATTR_DESCRIPTION) ||
                 read_value_id(&cl->req, f->enc, f->enc_len, ATTR_ACCESSLEVEL);
        }
        if (rc) {
            rc = tp_error_set(err, TP_NOMEM, "out of memory");
            break;
        }
        struct ua_dec d;
        if ((rc = ua_call(cl, UA_READ_RESP, &d, err)) != 0)
            break;
        if (ua_dec_len(&d, UA_MAX_ARRAY_LEN) != (int32_t)((end - start) * PER_VAR)) {
            rc = tp_error_set(err, TP_PARSE, "opcua: Read returned a wrong number of results");
            break;
        }
        for (size_t i = start; i < end && !rc; i++) {
            struct ua_datavalue dt, desc, access;
            ua_dec_datavalue(&d, &dt);
            ua_dec_datavalue(&d, &desc);
            ua_dec_datavalue(&d, &access);
            if (d.err) {
                rc = tp_error_set(err, TP_PARSE, "opcua: malformed Read response");
                break;
            }
            struct ua_nodeid type = {0};
            struct ua_dec vd;
            if (!(dt.status & 0x80000000u) && dt.value.type == UA_NODEID &&
                dt.value.array_len < 0) {
                ua_dec_init(&vd, dt.value.raw, dt.value.raw_len);
                ua_dec_nodeid(&vd, &type);
            }
            if (ua_nodeid_is_null(&type)) { /* null DataType (or unreadable): not a tag */
                skipped++;
                continue;
            }
            struct ua_str locale, text = {"", 0};
            if (!(desc.status & 0x80000000u) && desc.value.type == UA_LOCALIZEDTEXT &&
                desc.value.array_len < 0) {
                ua_dec_init(&vd, desc.value.raw, desc.value.raw_len);
                ua_dec_localized_text(&vd, &locale, &text);
            }
            uint32_t level =
                (access.status & 0x80000000u) ? 0 : (uint32_t)ua_variant_int(&access.value);
            if (add_var(vars, &found->v[i], text, level, &type, &names, &keys, &shared))
                rc = tp_error_set(err, TP_NOMEM, "out of memory");
        }
    }
    for (size_t i = 0; i + sizeof(char *) <= keys.len; i += sizeof(char *)) {
        char *k;
        memcpy(&k, keys.data + i, sizeof(k));
        free(k);
    }
    tp_buf_free(&keys);
    free(names.slot);
    free(shared.slot);
    ua_var_list_shrink(vars);
    if (!rc)
        tp_log(TP_LOG_INFO, "opcua: %zu variables found (%zu without a DataType skipped)", vars->n,
               skipped);
    return rc;
}

int ua_browse_add_heartbeat(struct ua_var_list *vars)
{
    uint8_t enc[] = {1, 0, 2258 & 0xff, 2258 >> 8}; /* four-byte NodeId i=2258 */
    struct found f = {.enc = enc,
                      .enc_len = sizeof(enc),
                      .path = "heartbeat.CurrentTime",
                      .group = "heartbeat",
                      .browse_name = "CurrentTime",
                      .nodeclass = 2};
    struct ua_nodeid datetime = {.num = UA_DATETIME};
    struct ua_str none = {"", 0};
    struct seen names = {0};
    struct tp_buf keys;
    tp_buf_init(&keys);
    int rc = add_var(vars, &f, none, 1, &datetime, &names, &keys, NULL);
    char *k;
    if (keys.len >= sizeof(k)) {
        memcpy(&k, keys.data, sizeof(k));
        free(k);
    }
    tp_buf_free(&keys);
    free(names.slot);
    if (!rc)
        vars->v[vars->n - 1].heartbeat = 1;
    return rc;
}
