/* YAML -> tp_node tree. libyaml's event parser drives a small recursive
 * builder that records 1-based file:line:col for every node and, for block
 * and quoted scalars, where the content itself starts (so JS errors inside a
 * snippet can be mapped back to the file). The source text is kept while
 * parsing because libyaml does not report where a block scalar's body begins. */
#include "config/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/interpolate.h"

#define MAX_DEPTH 200

struct loader {
    yaml_parser_t parser;
    const char *text;
    size_t len;
    const char *name; /* caller-owned: used for error positions */
    struct tp_config *cfg;
    struct tp_error *err;
    size_t *line_starts; /* byte offset of each 0-based line */
    size_t nlines;
};

static int index_lines(struct loader *ld)
{
    size_t cap = 64, n = 0;
    size_t *v = malloc(cap * sizeof(*v));
    if (!v)
        return TP_NOMEM;
    v[n++] = 0;
    for (size_t i = 0; i < ld->len; i++) {
        char c = ld->text[i];
        if (c == '\r' && i + 1 < ld->len && ld->text[i + 1] == '\n')
            continue; /* \r\n counts once, at the \n */
        if (c != '\n' && c != '\r')
            continue;
        if (n == cap) {
            size_t *nv = realloc(v, 2 * cap * sizeof(*v));
            if (!nv) {
                free(v);
                return TP_NOMEM;
            }
            v = nv;
            cap *= 2;
        }
        v[n++] = i + 1;
    }
    ld->line_starts = v;
    ld->nlines = n;
    return TP_OK;
}

/* Byte offset of (0-based) line/character column; clamps to the line. */
static size_t text_offset(const struct loader *ld, size_t line, size_t col)
{
    if (line >= ld->nlines)
        return ld->len;
    size_t off = ld->line_starts[line];
    while (col > 0 && off < ld->len && ld->text[off] != '\n' && ld->text[off] != '\r') {
        off++;
        while (off < ld->len && ((unsigned char)ld->text[off] & 0xC0) == 0x80)
            off++; /* UTF-8 continuation bytes belong to the same character */
        col--;
    }
    return off;
}

static int parser_error(struct loader *ld)
{
    yaml_parser_t *p = &ld->parser;
    if (p->error == YAML_MEMORY_ERROR)
        return tp_error_set(ld->err, TP_NOMEM, "out of memory while parsing YAML");
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset: turn it into line:col. */
        size_t off = p->problem_offset, line = 0;
        while (line + 1 < ld->nlines && ld->line_starts[line + 1] <= off)
            line++;
        return tp_error_set_at(ld->err, TP_CONFIG, ld->name, (int)line + 1,
                               (int)(off - ld->line_starts[line]) + 1, "%s", problem);
    }
    int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
    size_t off = text_offset(ld, p->problem_mark.line, p->problem_mark.column);
    const char *hint = "";
    if (off < ld->len && ld->text[off] == '\t')
        hint = " (a tab character: YAML allows only spaces for indentation)";
    if (p->context && !*hint)
        return tp_error_set_at(ld->err, TP_CONFIG, ld->name, line, col, "%s%s (%s at line %d)",
                               problem, hint, p->context, (int)p->context_mark.line + 1);
    return tp_error_set_at(ld->err, TP_CONFIG, ld->name, line, col, "%s%s", problem, hint);
}

static int next_event(struct loader *ld, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ld->parser, ev))
        return parser_error(ld);
    return TP_OK;
}

static void node_free(struct tp_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->key_nodes)
            node_free(n->key_nodes[i]);
        node_free(n->items[i]);
    }
    free(n->keys);
    free(n->key_nodes);
    free(n->items);
    free(n->value);
    free(n->raw);
    free(n->env_missing);
    free(n);
}

static struct tp_node *node_new(struct loader *ld, enum tp_node_type type, yaml_mark_t m)
{
    struct tp_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->type = type;
    n->file = ld->cfg->file;
    n->line = n->content_line = (int)m.line + 1;
    n->col = n->content_col = (int)m.column + 1;
    return n;
}

static int is_null_scalar(const yaml_event_t *ev)
{
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !ev->data.scalar.plain_implicit)
        return 0;
    const char *v = (const char *)ev->data.scalar.value;
    return ev->data.scalar.length == 0 || !strcmp(v, "~") || !strcmp(v, "null") ||
           !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* Where the first content character of a block scalar sits: the line after
 * the indicator, at the block's indentation. The indentation is the leading
 * spaces of the first non-blank source line minus those kept in the value. */
static void block_content_pos(struct loader *ld, struct tp_node *n, const yaml_event_t *ev)
{
    size_t ind_line = ev->start_mark.line;
    n->content_line = (int)ind_line + 2;
    const char *v = n->value;
    size_t vline = 0; /* index of the first value line with a non-space char */
    const char *p = v;
    while (*p) {
        const char *q = p;
        while (*q == ' ')
            q++;
        if (*q && *q != '\n')
            break;
        if (!*q) {
            p = q;
            break;
        }
        p = q + 1;
        vline++;
    }
    if (!*p)
        return; /* blank content: keep the indicator column */
    size_t vspaces = 0;
    while (p[vspaces] == ' ')
        vspaces++;
    size_t sline = ind_line + 1 + vline;
    if (sline >= ld->nlines)
        return;
    size_t off = ld->line_starts[sline], sspaces = 0;
    while (off + sspaces < ld->len && ld->text[off + sspaces] == ' ')
        sspaces++;
    if (sspaces >= vspaces)
        n->content_col = (int)(sspaces - vspaces) + 1;
}

/* Where byte `off` of a scalar's value sits in the file (exact for plain
 * and block scalars, close for quoted ones with escapes). */
static void value_position(const struct tp_node *n, size_t off, int *line, int *col)
{
    *line = n->content_line;
    size_t line_start = 0;
    for (size_t i = 0; i < off && n->value[i]; i++)
        if (n->value[i] == '\n') {
            (*line)++;
            line_start = i + 1;
        }
    *col = n->content_col + (int)(off - line_start);
}

/* Applies `${VAR:default}` to n->value; keeps the text as written in n->raw. */
static int interpolate_scalar(struct tp_node *n, const yaml_event_t *ev)
{
    struct tp_env_result r;
    if (tp_env_interpolate(n->value, n->value_len, 0, &r))
        return TP_NOMEM;
    if (!r.changed)
        return TP_OK;
    if (r.missing) {
        if (!(n->env_missing = strdup(r.missing_name))) {
            free(r.text);
            return TP_NOMEM;
        }
        value_position(n, r.missing_off, &n->env_line, &n->env_col);
    }
    n->raw = n->value;
    n->value = r.text;
    n->value_len = r.len;
    /* `key: ${UNSET:}` reads as `key:` does in Benthos: null. */
    if (!r.len && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !n->env_missing)
        n->type = TP_NODE_NULL;
    return TP_OK;
}

static int load_scalar(struct loader *ld, yaml_event_t *ev, struct tp_node **out)
{
    int null = is_null_scalar(ev);
    struct tp_node *n = node_new(ld, null ? TP_NODE_NULL : TP_NODE_SCALAR, ev->start_mark);
    if (!n)
        return tp_error_set(ld->err, TP_NOMEM, "out of memory");
    size_t len = null ? 0 : ev->data.scalar.length;
    n->value = malloc(len + 1);
    if (!n->value) {
        free(n);
        return tp_error_set(ld->err, TP_NOMEM, "out of memory");
    }
    memcpy(n->value, ev->data.scalar.value, len);
    n->value[len] = '\0';
    n->value_len = len;
    switch (ev->data.scalar.style) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        n->quoted = 1;
        n->content_col = n->col + 1;
        break;
    case YAML_LITERAL_SCALAR_STYLE:
    case YAML_FOLDED_SCALAR_STYLE:
        n->block = 1;
        block_content_pos(ld, n, ev);
        break;
    default:
        break;
    }
    if (!null && interpolate_scalar(n, ev)) {
        node_free(n);
        return tp_error_set(ld->err, TP_NOMEM, "out of memory");
    }
    *out = n;
    return TP_OK;
}

static int load_node(struct loader *ld, yaml_event_t *ev, int depth, struct tp_node **out);

static int grow(struct tp_node *n, size_t *cap, int with_keys)
{
    if (n->n < *cap)
        return TP_OK;
    size_t nc = *cap ? *cap * 2 : 8;
    struct tp_node **items = realloc(n->items, nc * sizeof(*items));
    if (!items)
        return TP_NOMEM;
    n->items = items;
    if (with_keys) {
        char **keys = realloc(n->keys, nc * sizeof(*keys));
        if (!keys)
            return TP_NOMEM;
        n->keys = keys;
        struct tp_node **kn = realloc(n->key_nodes, nc * sizeof(*kn));
        if (!kn)
            return TP_NOMEM;
        n->key_nodes = kn;
    }
    *cap = nc;
    return TP_OK;
}

/* Reads the events of one collection's children up to its end event. */
static int load_children(struct loader *ld, struct tp_node *n, int depth)
{
    int is_map = n->type == TP_NODE_MAP;
    yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    size_t cap = 0;
    for (;;) {
        yaml_event_t ev;
        int rc = next_event(ld, &ev);
        if (rc)
            return rc;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            return TP_OK;
        }
        if (grow(n, &cap, is_map)) {
            yaml_event_delete(&ev);
            return tp_error_set(ld->err, TP_NOMEM, "out of memory");
        }
        struct tp_node *key = NULL, *val = NULL;
        if (is_map) {
            rc = load_node(ld, &ev, depth + 1, &key);
            if (rc)
                return rc;
            if (key->type != TP_NODE_SCALAR && key->type != TP_NODE_NULL) {
                rc = tp_error_set_at(ld->err, TP_CONFIG, ld->name, key->line, key->col,
                                     "map keys must be plain strings, got a %s",
                                     tp_node_type_name(key));
                node_free(key);
                return rc;
            }
            for (size_t i = 0; i < n->n; i++) {
                if (!strcmp(n->keys[i], key->value)) {
                    rc = tp_error_set_at(ld->err, TP_CONFIG, ld->name, key->line, key->col,
                                         "duplicate key \"%s\" (first defined at line %d, "
                                         "again at line %d)",
                                         key->value, n->key_nodes[i]->line, key->line);
                    node_free(key);
                    return rc;
                }
            }
            rc = next_event(ld, &ev);
            if (rc) {
                node_free(key);
                return rc;
            }
        }
        rc = load_node(ld, &ev, depth + 1, &val);
        if (rc) {
            node_free(key);
            return rc;
        }
        if (is_map) {
            n->key_nodes[n->n] = key;
            n->keys[n->n] = key->value;
        }
        n->items[n->n++] = val;
    }
}

/* Builds the node that starts with *ev (consumed here). */
static int load_node(struct loader *ld, yaml_event_t *ev, int depth, struct tp_node **out)
{
    int rc = TP_OK;
    yaml_mark_t m = ev->start_mark;
    struct tp_node *n = NULL;
    if (depth > MAX_DEPTH) {
        rc = tp_error_set_at(ld->err, TP_CONFIG, ld->name, (int)m.line + 1, (int)m.column + 1,
                             "nesting deeper than %d levels", MAX_DEPTH);
        goto out_event;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        rc = load_scalar(ld, ev, out);
        goto out_event;
    case YAML_ALIAS_EVENT:
        rc = tp_error_set_at(ld->err, TP_CONFIG, ld->name, (int)m.line + 1, (int)m.column + 1,
                             "YAML aliases (*%s) are not supported; repeat the value instead",
                             (const char *)ev->data.alias.anchor);
        goto out_event;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        n = node_new(ld, ev->type == YAML_MAPPING_START_EVENT ? TP_NODE_MAP : TP_NODE_SEQ, m);
        yaml_event_delete(ev);
        if (!n || !(n->value = calloc(1, 1))) {
            free(n);
            return tp_error_set(ld->err, TP_NOMEM, "out of memory");
        }
        rc = load_children(ld, n, depth);
        if (rc) {
            node_free(n);
            return rc;
        }
        *out = n;
        return TP_OK;
    default:
        rc = tp_error_set_at(ld->err, TP_CONFIG, ld->name, (int)m.line + 1, (int)m.column + 1,
                             "unexpected YAML event");
        goto out_event;
    }
out_event:
    yaml_event_delete(ev);
    return rc;
}

static int load_stream(struct loader *ld)
{
    yaml_event_t ev;
    int rc;
    do { /* skip STREAM_START */
        if ((rc = next_event(ld, &ev)))
            return rc;
        yaml_event_type_t t = ev.type;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT)
            return tp_error_set_at(ld->err, TP_CONFIG, ld->name, 1, 1,
                                   "empty configuration: expected a map at the top level");
        if (t == YAML_DOCUMENT_START_EVENT)
            break;
    } while (1);
    if ((rc = next_event(ld, &ev)))
        return rc;
    if ((rc = load_node(ld, &ev, 0, &ld->cfg->root)))
        return rc;
    struct tp_node *root = ld->cfg->root;
    if (root->type != TP_NODE_MAP)
        return tp_error_set_at(ld->err, TP_CONFIG, ld->name, root->line, root->col,
                               "the top level must be a map, got %s", tp_node_type_name(root));
    if ((rc = next_event(ld, &ev))) /* DOCUMENT_END */
        return rc;
    yaml_event_delete(&ev);
    if ((rc = next_event(ld, &ev)))
        return rc;
    yaml_mark_t m = ev.start_mark;
    yaml_event_type_t t = ev.type;
    yaml_event_delete(&ev);
    if (t != YAML_STREAM_END_EVENT)
        return tp_error_set_at(ld->err, TP_CONFIG, ld->name, (int)m.line + 1, (int)m.column + 1,
                               "only one YAML document is allowed");
    return TP_OK;
}

int tp_config_load_string(const char *name, const char *text, size_t len, struct tp_config **out,
                          struct tp_error *err)
{
    struct loader ld = {.text = text, .len = len, .name = name, .err = err};
    int rc;
    *out = NULL;
    if (!name)
        name = ld.name = "<config>";
    ld.cfg = calloc(1, sizeof(*ld.cfg));
    if (!ld.cfg || !(ld.cfg->file = strdup(name)) || index_lines(&ld)) {
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
        goto out_cfg;
    }
    if (!yaml_parser_initialize(&ld.parser)) {
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
        goto out_cfg;
    }
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, len);
    rc = load_stream(&ld);
    yaml_parser_delete(&ld.parser);
    if (rc)
        goto out_cfg;
    free(ld.line_starts);
    *out = ld.cfg;
    return TP_OK;
out_cfg:
    free(ld.line_starts);
    tp_config_free(ld.cfg);
    return rc;
}

int tp_config_load_file(const char *path, struct tp_config **out, struct tp_error *err)
{
    *out = NULL;
    int from_stdin = strcmp(path, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return tp_error_set(err, TP_IO, "cannot open config file \"%s\": %s", path,
                            strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            char *nt = realloc(text, cap);
            if (!nt) {
                free(text);
                if (!from_stdin)
                    fclose(f);
                return tp_error_set(err, TP_NOMEM, "out of memory");
            }
            text = nt;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int failed = ferror(f);
    if (!from_stdin)
        fclose(f);
    if (failed) {
        free(text);
        return tp_error_set(err, TP_IO, "cannot read config file \"%s\"", path);
    }
    int rc = tp_config_load_string(from_stdin ? "<stdin>" : path, text, len, out, err);
    free(text);
    return rc;
}

void tp_config_free(struct tp_config *cfg)
{
    if (!cfg)
        return;
    node_free(cfg->root);
    tp_config_free(cfg->overlays);
    free(cfg->file);
    free(cfg);
}

const struct tp_node *tp_node_get(const struct tp_node *map, const char *key)
{
    if (!map || map->type != TP_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key))
            return map->items[i];
    return NULL;
}

const char *tp_node_type_name(const struct tp_node *n)
{
    if (!n)
        return "null";
    switch (n->type) {
    case TP_NODE_NULL:
        return "null";
    case TP_NODE_SCALAR:
        return "string";
    case TP_NODE_MAP:
        return "map";
    case TP_NODE_SEQ:
        return "list";
    }
    return "unknown";
}
