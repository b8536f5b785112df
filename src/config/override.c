/* --set overrides (see override.h). The value is parsed by the YAML loader
 * as the document "v: VALUE"; its node is grafted into the config and the
 * small parsed document is kept in cfg->overlays (it owns the file name the
 * node's positions point at, and receives the node it replaced). */
#include "config/override.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Positions inside an override are meaningless: line 0 makes errors read
 * "--set a.b=x: a.b: problem". */
static void unposition(struct tp_node *n)
{
    if (!n)
        return;
    n->line = n->col = n->content_line = n->content_col = 0;
    for (size_t i = 0; i < n->n; i++) {
        if (n->key_nodes)
            unposition(n->key_nodes[i]);
        unposition(n->items[i]);
    }
}

static struct tp_node *scalar_node(const char *file, const char *text, size_t len)
{
    struct tp_node *n = calloc(1, sizeof(*n));
    if (!n || !(n->value = strndup(text, len))) {
        free(n);
        return NULL;
    }
    n->type = TP_NODE_SCALAR;
    n->file = file;
    n->value_len = len;
    return n;
}

/* Appends key -> value to a map node (arrays grown by one). */
static int map_append(struct tp_node *map, struct tp_node *key, struct tp_node *val)
{
    char **keys = realloc(map->keys, (map->n + 1) * sizeof(*keys));
    if (keys)
        map->keys = keys;
    struct tp_node **kn = realloc(map->key_nodes, (map->n + 1) * sizeof(*kn));
    if (kn)
        map->key_nodes = kn;
    struct tp_node **items = realloc(map->items, (map->n + 1) * sizeof(*items));
    if (items)
        map->items = items;
    if (!keys || !kn || !items)
        return TP_NOMEM;
    map->keys[map->n] = key->value;
    map->key_nodes[map->n] = key;
    map->items[map->n++] = val;
    return TP_OK;
}

/* One step of the path: a map key or a list index. */
struct step {
    const char *key;
    size_t len;
    long index; /* -1 for a key */
};

/* Splits "a.b[0].c" into steps; 0 on success, -1 on bad syntax. */
static int parse_path(const char *p, size_t plen, struct step *steps, int max, int *n)
{
    const char *end = p + plen;
    *n = 0;
    while (p < end) {
        if (*n == max)
            return -1;
        struct step *s = &steps[(*n)++];
        if (*p == '[') {
            char *stop;
            s->index = strtol(p + 1, &stop, 10);
            if (stop == p + 1 || stop >= end || *stop != ']' || s->index < 0)
                return -1;
            s->key = NULL;
            p = stop + 1;
        } else {
            size_t k = strcspn(p, ".[");
            if (p + k > end)
                k = (size_t)(end - p);
            if (k == 0)
                return -1;
            s->key = p, s->len = k, s->index = -1;
            p += k;
        }
        if (p < end && *p == '.') {
            p++;
            if (p == end)
                return -1;
        }
    }
    return *n ? 0 : -1;
}

int tp_config_set(struct tp_config *cfg, const char *assignment, struct tp_error *err)
{
    const char *eq = strchr(assignment, '=');
    char name[600];
    snprintf(name, sizeof(name), "--set %s", assignment);
    struct step steps[32];
    int nsteps = 0;
    if (!eq || parse_path(assignment, (size_t)(eq - assignment), steps, 32, &nsteps) != 0)
        return tp_error_set(err, TP_CONFIG,
                            "%s: expected KEY.PATH=VALUE, e.g. pipeline.threads=4 or "
                            "pipeline.processors[0].tag_processor.defaults='return msg;'",
                            name);
    size_t vlen = strlen(eq + 1);
    char *doc = malloc(vlen + 8);
    if (!doc)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    snprintf(doc, vlen + 8, "v: %s\n", eq + 1);
    struct tp_config *ov = NULL;
    int rc = tp_config_load_string(name, doc, strlen(doc), &ov, err);
    free(doc);
    if (rc) {
        char inner[sizeof(err->msg)];
        snprintf(inner, sizeof(inner), "%s", err->msg);
        return tp_error_set(err, rc, "%s: the value is not valid YAML: %s", name, inner);
    }
    unposition(ov->root);
    ov->overlays = cfg->overlays; /* kept alive with cfg: node file names point into it */
    cfg->overlays = ov;

    struct tp_node *cur = cfg->root;
    for (int i = 0; i < nsteps; i++) {
        const struct step *s = &steps[i];
        struct tp_node **slot = NULL;
        if (s->index >= 0) {
            if (cur->type != TP_NODE_SEQ)
                return tp_error_set(err, TP_CONFIG, "%s: [%ld]: not a list here (found a %s)", name,
                                    s->index, tp_node_type_name(cur));
            if ((size_t)s->index >= cur->n)
                return tp_error_set(err, TP_CONFIG,
                                    "%s: index [%ld] out of range: the list has %zu item%s", name,
                                    s->index, cur->n, cur->n == 1 ? "" : "s");
            slot = &cur->items[s->index];
        } else {
            if (cur->type == TP_NODE_NULL) /* `key:` with nothing yet: becomes a map */
                cur->type = TP_NODE_MAP;
            if (cur->type != TP_NODE_MAP)
                return tp_error_set(err, TP_CONFIG, "%s: \"%.*s\": not a map here (found a %s)",
                                    name, (int)s->len, s->key, tp_node_type_name(cur));
            for (size_t k = 0; k < cur->n; k++)
                if (strlen(cur->keys[k]) == s->len && !strncmp(cur->keys[k], s->key, s->len))
                    slot = &cur->items[k];
            if (!slot) {
                struct tp_node *key = scalar_node(ov->file, s->key, s->len);
                struct tp_node *val = calloc(1, sizeof(*val));
                if (!key || !val || map_append(cur, key, val) != TP_OK) {
                    free(key ? key->value : NULL);
                    free(key);
                    free(val);
                    return tp_error_set(err, TP_NOMEM, "out of memory");
                }
                val->type = TP_NODE_MAP;
                val->file = ov->file;
                slot = &cur->items[cur->n - 1];
            }
        }
        if (i == nsteps - 1) { /* swap: the overlay now owns the replaced node */
            struct tp_node *old = *slot;
            *slot = ov->root->items[0];
            ov->root->items[0] = old;
        }
        cur = *slot;
    }
    return TP_OK;
}

int tp_config_load_with_overrides(const char *path, char *const *sets, size_t nsets,
                                  struct tp_config **out, struct tp_error *err)
{
    int rc = tp_config_load_file(path, out, err);
    for (size_t i = 0; rc == TP_OK && i < nsets; i++)
        rc = tp_config_set(*out, sets[i], err);
    if (rc) {
        tp_config_free(*out);
        *out = NULL;
    }
    return rc;
}
