/* Typed option tables: turn a config map node into a plugin's C struct,
 * applying defaults and reporting unknown keys, wrong types and missing
 * required keys at their file:line:col with the dotted key path
 * (the approach of fluent-bit's flb_config_map.c). Also prints a table as
 * Markdown for the generated configuration reference. */
#include "config/config.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/interpolate.h"
#include "config/regex_syntax.h"
#include "core/buf.h"
#include "core/number.h"
#include "core/template.h"

struct pctx {
    struct tp_error *err;
    int in_default; /* converting a default: nodes are temporary, no positions */
    /* tp_options_parse_all: every config error goes here and parsing goes on */
    tp_options_error_fn on_error;
    void *ud;
    size_t reported;
};

/* In parse-all mode, reports a config error not reported yet (nested maps
 * report their own) and lets the caller go on; otherwise returns rc. */
static int go_on(struct pctx *c, int rc, size_t reported_before)
{
    if (rc != TP_CONFIG || !c->on_error || c->in_default)
        return rc;
    if (c->reported == reported_before) {
        c->on_error(c->ud, c->err);
        c->reported++;
    }
    return TP_OK;
}

static int parse_map(struct pctx *c, const struct tp_option *table, const struct tp_node *map,
                     const struct tp_node *pos, const char *path, void *out);

static char *path_join(const char *base, const char *key)
{
    char *s = NULL;
    if (!base || !*base)
        return strdup(key);
    if (asprintf(&s, "%s.%s", base, key) < 0)
        return NULL;
    return s;
}

static char *path_index(const char *base, size_t i)
{
    char *s = NULL;
    if (asprintf(&s, "%s[%zu]", base ? base : "", i) < 0)
        return NULL;
    return s;
}

static int nomem(struct pctx *c)
{
    return tp_error_set(c->err, TP_NOMEM, "out of memory");
}

/* YAML integers and floats: a sign, leading zeros and "5." / ".5" allowed. */
#define YAML_NUMBER (TP_NUM_PLUS | TP_NUM_LEADING_ZEROS | TP_NUM_BARE_DOT)

static int is_int_text(const char *s)
{
    int integer = 0;
    size_t n = strlen(s);
    return n && tp_number_span(s, n, YAML_NUMBER, &integer) == n && integer;
}

static int is_double_text(const char *s)
{
    return tp_number_is(s, strlen(s), YAML_NUMBER) && isfinite(strtod(s, NULL));
}

int tp_duration_parse_ms(const char *text, int64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"ms", 1},
                 {"s", 1e3},   {"m", 6e4},   {"h", 3.6e6}};
    if (!text || !*text)
        return -1;
    if (strcmp(text, "0") == 0) {
        *ms = 0;
        return 0;
    }
    double total = 0;
    for (const char *p = text; *p;) {
        /* digits with an optional fraction ("1.5", ".5", "5."), no sign */
        size_t len = tp_number_span(p, strlen(p), TP_NUM_LEADING_ZEROS | TP_NUM_BARE_DOT, NULL);
        if (len == 0 || *p == '-')
            return -1;
        double v = strtod(p, NULL);
        const char *end = p + len;
        size_t best = 0, best_len = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t n = strlen(units[i].unit);
            if (n > best_len && strncmp(end, units[i].unit, n) == 0)
                best = i, best_len = n;
        }
        if (!best_len)
            return -1;
        total += v * units[best].ms;
        p = end + best_len;
    }
    if (!isfinite(total) || total > 9.0e15)
        return -1;
    *ms = (int64_t)(total + 0.5);
    return 0;
}

static int parse_bool_text(const char *s, int *v)
{
    if (!strcasecmp(s, "true"))
        *v = 1;
    else if (!strcasecmp(s, "false"))
        *v = 0;
    else
        return -1;
    return 0;
}

/* "1h", "90s", "1500ms": the largest unit that divides ms exactly. */
static void duration_text(int64_t ms, char *buf, size_t size)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, size, "%lldh", (long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, size, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, size, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, size, "%lldms", (long long)ms);
}

static int has_range(const struct tp_option *o)
{
    return o->min < o->max;
}

/* "1..64", "at least 1", "5s..18h" for messages and the reference. */
static void range_text(const struct tp_option *o, char *buf, size_t size)
{
    char lo[32], hi[32];
    if (o->type == TP_OPT_DURATION) {
        duration_text(o->min, lo, sizeof(lo));
        duration_text(o->max, hi, sizeof(hi));
    } else {
        snprintf(lo, sizeof(lo), "%lld", (long long)o->min);
        snprintf(hi, sizeof(hi), "%lld", (long long)o->max);
    }
    if (o->max == INT64_MAX)
        snprintf(buf, size, "at least %s", lo);
    else
        snprintf(buf, size, "%s..%s", lo, hi);
}

/* "string \"abc\"", "integer 5", "map", ... for "got ..." messages. */
static void describe(const struct tp_node *n, char *buf, size_t size)
{
    if (!n || n->type != TP_NODE_SCALAR) {
        snprintf(buf, size, "%s", tp_node_type_name(n));
        return;
    }
    int b;
    if (!n->quoted && !n->block) {
        if (is_int_text(n->value)) {
            snprintf(buf, size, "integer %s", n->value);
            return;
        }
        if (is_double_text(n->value)) {
            snprintf(buf, size, "number %s", n->value);
            return;
        }
        if (!parse_bool_text(n->value, &b)) {
            snprintf(buf, size, "boolean %s", n->value);
            return;
        }
    }
    size_t len = strcspn(n->value, "\n");
    int cut = len > 40 || n->value[len] != '\0';
    if (len > 40)
        len = 40;
    snprintf(buf, size, "string \"%.*s%s\"", (int)len, n->value, cut ? "..." : "");
}

static int error_at(struct pctx *c, const struct tp_node *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* One helper for all positioned errors: "path: <message>" at n's position. */
static int error_at(struct pctx *c, const struct tp_node *n, const char *path, const char *fmt, ...)
{
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *p = path && *path ? path : "(top level)";
    if (c->in_default)
        return tp_error_set(c->err, TP_CONFIG, "%s: invalid default: %s", p, msg);
    if (n)
        return tp_error_set_at(c->err, TP_CONFIG, n->file, n->line, n->col, "%s: %s", p, msg);
    return tp_error_set(c->err, TP_CONFIG, "%s: %s", p, msg);
}

/* An unset `${VAR}` without default in a value that is used: an error at the reference. */
static int env_check(struct pctx *c, const struct tp_node *n, const char *path)
{
    if (!n->env_missing || c->in_default)
        return TP_OK;
    return tp_error_set_at(c->err, TP_CONFIG, n->file, n->env_line, n->env_col,
                           "%s: environment variable %s is not set and has no default "
                           "(write ${%s:default})",
                           path && *path ? path : "(top level)", n->env_missing, n->env_missing);
}

static int wrong_type(struct pctx *c, const struct tp_node *n, const char *path,
                      const char *expected)
{
    char got[96];
    describe(n, got, sizeof(got));
    return error_at(c, n, path, "expected %s, got %s", expected, got);
}

/* The value v of an INT, DOUBLE or DURATION option against its range. */
static int check_range(struct pctx *c, const struct tp_option *o, const struct tp_node *n,
                       const char *path, double v)
{
    if (!has_range(o) || (v >= (double)o->min && v <= (double)o->max))
        return TP_OK;
    char range[80];
    range_text(o, range, sizeof(range));
    const char *what = o->type == TP_OPT_INT        ? "an integer"
                       : o->type == TP_OPT_DURATION ? "a duration"
                                                    : "a number";
    return error_at(c, n, path, "expected %s %s %s, got %s", what,
                    o->max == INT64_MAX ? "of" : "in", range, n->value);
}

static int check_choices(struct pctx *c, const struct tp_option *o, const struct tp_node *n,
                         const char *path, const char *v)
{
    if (!o->choices)
        return TP_OK;
    struct tp_buf b;
    tp_buf_init(&b);
    for (size_t i = 0; o->choices[i]; i++) {
        if (!((o->flags & TP_OPT_NOCASE) ? strcasecmp : strcmp)(o->choices[i], v)) {
            tp_buf_free(&b);
            return TP_OK;
        }
        if (tp_buf_printf(&b, "%s%s", i ? ", " : "", o->choices[i])) {
            tp_buf_free(&b);
            return nomem(c);
        }
    }
    int rc = error_at(c, n, path, "expected one of: %s, got \"%s\"", b.data ? b.data : "", v);
    tp_buf_free(&b);
    return rc;
}

/* TP_OPT_READABLE / TP_OPT_IN_DIR: a missing file is a config error at
 * start-up, with its position, not a failure later (open, connect, TLS). */
static int check_path(struct pctx *c, const struct tp_option *o, const struct tp_node *n,
                      const char *path, const char *v)
{
    if (c->in_default || !(o->flags & (TP_OPT_READABLE | TP_OPT_IN_DIR)))
        return TP_OK;
    if (o->flags & TP_OPT_READABLE) {
        struct stat st;
        if (stat(v, &st) != 0 || access(v, R_OK) != 0)
            return error_at(c, n, path, "cannot read \"%s\": %s", v, strerror(errno));
        if (S_ISDIR(st.st_mode))
            return error_at(c, n, path, "\"%s\" is a directory, expected a file", v);
        return TP_OK;
    }
    char *dir = strdup(v);
    if (!dir)
        return nomem(c);
    char *slash = strrchr(dir, '/');
    int rc = TP_OK;
    if (slash) {
        slash[slash == dir] = '\0'; /* "/x" -> "/" */
        struct stat st;
        if (stat(dir, &st) != 0)
            rc = error_at(c, n, path, "directory \"%s\" of \"%s\": %s", dir, v, strerror(errno));
        else if (!S_ISDIR(st.st_mode))
            rc = error_at(c, n, path, "\"%s\" in \"%s\" is not a directory", dir, v);
    }
    free(dir);
    return rc;
}

/* A TP_OPT_TEMPLATE value must compile; the error points into the value. */
static int check_template(struct pctx *c, const struct tp_node *n, const char *path)
{
    struct tp_template *t = NULL;
    struct tp_template_error te;
    int rc = tp_template_compile(n->value, &t, &te);
    tp_template_free(t);
    if (rc == TP_NOMEM)
        return nomem(c);
    if (rc == TP_OK)
        return TP_OK;
    if (c->in_default)
        return error_at(c, n, path, "%s", te.why);
    int line = n->content_line, col = n->content_col;
    if (!n->raw && !strchr(n->value, '\n'))
        col += (int)te.offset;
    return tp_error_set_at(c->err, TP_CONFIG, n->file, line, col, "%s: %s",
                           path && *path ? path : "(top level)", te.why);
}

/* A TP_OPT_REGEX value, written in Go's RE2 syntax as benthos-umh configs
 * write it, is translated to POSIX extended (config/regex_syntax.h) and must
 * compile; errors point into the value. *posix: what to store (NULL when o
 * is no regex option: the value as written). */
static int regex_value(struct pctx *c, const struct tp_option *o, const struct tp_node *n,
                       const char *path, char **posix)
{
    *posix = NULL;
    if (!(o->flags & TP_OPT_REGEX))
        return TP_OK;
    struct tp_regex_error re_err;
    int rc = tp_regex_to_posix(n->value, posix, &re_err);
    if (rc == TP_NOMEM)
        return nomem(c);
    if (rc != TP_OK) {
        if (c->in_default)
            return error_at(c, n, path, "%s", re_err.why);
        int col = n->content_col;
        if (!n->raw && !strchr(n->value, '\n'))
            col += (int)re_err.offset;
        return tp_error_set_at(c->err, TP_CONFIG, n->file, n->content_line, col,
                               "%s: invalid regular expression \"%s\": %s",
                               path && *path ? path : "(top level)", n->value, re_err.why);
    }
    regex_t re;
    int e = regcomp(&re, *posix, REG_EXTENDED | REG_NOSUB);
    if (e == 0) {
        regfree(&re);
        return TP_OK;
    }
    char why[160];
    regerror(e, &re, why, sizeof(why));
    free(*posix);
    *posix = NULL;
    return error_at(c, n, path, "invalid regular expression \"%s\": %s", n->value, why);
}

/* The string to store for n: the regex translation when there is one. */
static char *stored_value(const struct tp_node *n, char *posix)
{
    return posix ? posix : strdup(n->value);
}

static int set_string_list(struct pctx *c, const struct tp_option *o, const struct tp_node *n,
                           const char *path, struct tp_strlist *dst)
{
    if (n->type == TP_NODE_SCALAR) {
        char *posix;
        if (env_check(c, n, path) || regex_value(c, o, n, path, &posix))
            return TP_CONFIG;
        if (!(dst->v = calloc(1, sizeof(char *))) || !(dst->v[0] = stored_value(n, posix))) {
            free(posix);
            return nomem(c);
        }
        dst->n = 1;
        return TP_OK;
    }
    if (n->type != TP_NODE_SEQ)
        return wrong_type(c, n, path, "string or list of strings");
    if (n->n && !(dst->v = calloc(n->n, sizeof(char *))))
        return nomem(c);
    dst->n = n->n;
    for (size_t i = 0; i < n->n; i++) {
        const struct tp_node *e = n->items[i];
        if (e->type != TP_NODE_SCALAR) {
            char *ep = path_index(path, i);
            int rc = ep ? wrong_type(c, e, ep, "string") : nomem(c);
            free(ep);
            return rc;
        }
        if (env_check(c, e, path))
            return TP_CONFIG;
        char *posix = NULL;
        if (o->flags & TP_OPT_REGEX) {
            char *ep = path_index(path, i);
            int rc = ep ? regex_value(c, o, e, ep, &posix) : nomem(c);
            free(ep);
            if (rc)
                return rc;
        }
        if (!(dst->v[i] = stored_value(e, posix)))
            return nomem(c);
    }
    return TP_OK;
}

static int set_string_map(struct pctx *c, const struct tp_node *n, const char *path,
                          struct tp_strmap *dst)
{
    if (n->type != TP_NODE_MAP)
        return wrong_type(c, n, path, "map of strings");
    if (n->n && (!(dst->keys = calloc(n->n, sizeof(char *))) ||
                 !(dst->vals = calloc(n->n, sizeof(char *)))))
        return nomem(c);
    dst->n = n->n;
    for (size_t i = 0; i < n->n; i++) {
        const struct tp_node *v = n->items[i];
        if (v->type != TP_NODE_SCALAR && v->type != TP_NODE_NULL) {
            char *vp = path_join(path, n->keys[i]);
            int rc = vp ? wrong_type(c, v, vp, "string") : nomem(c);
            free(vp);
            return rc;
        }
        if (env_check(c, v, path))
            return TP_CONFIG;
        if (!(dst->keys[i] = strdup(n->keys[i])) || !(dst->vals[i] = strdup(v->value)))
            return nomem(c);
    }
    return TP_OK;
}

static int set_list(struct pctx *c, const struct tp_option *o, const struct tp_node *n,
                    const char *path, struct tp_list *dst)
{
    if (n->type != TP_NODE_SEQ)
        return wrong_type(c, n, path, "list of maps");
    /* Stored before the elements are filled so that a failure half-way is
     * released by tp_options_free like everything else. */
    if (n->n && !(dst->items = calloc(n->n, o->elem_size)))
        return nomem(c);
    dst->n = n->n;
    for (size_t i = 0; i < n->n; i++) {
        const struct tp_node *e = n->items[i];
        char *ep = path_index(path, i);
        if (!ep)
            return nomem(c);
        int rc;
        if (e->type != TP_NODE_MAP && e->type != TP_NODE_NULL)
            rc = wrong_type(c, e, ep, "map");
        else
            rc = parse_map(c, o->sub, e, e, ep, (char *)dst->items + i * o->elem_size);
        free(ep);
        if (rc)
            return rc;
    }
    return TP_OK;
}

/* Converts a present, non-null node (JS: also null) into the field. */
static int convert(struct pctx *c, const struct tp_option *o, const struct tp_node *n,
                   const char *path, void *out)
{
    char *dst = (char *)out + o->offset;
    int64_t iv;
    if (o->type != TP_OPT_JS && n->type == TP_NODE_SCALAR && env_check(c, n, path))
        return TP_CONFIG;
    switch (o->type) {
    case TP_OPT_STRING:
        if (n->type != TP_NODE_SCALAR)
            return wrong_type(c, n, path, "string");
        if (check_choices(c, o, n, path, n->value) || check_path(c, o, n, path, n->value))
            return TP_CONFIG;
        if ((o->flags & TP_OPT_TEMPLATE) && check_template(c, n, path))
            return TP_CONFIG;
        char *posix;
        if (regex_value(c, o, n, path, &posix))
            return TP_CONFIG;
        free(*(char **)dst);
        if (!(*(char **)dst = stored_value(n, posix)))
            return nomem(c);
        return TP_OK;
    case TP_OPT_INT: {
        if (n->type != TP_NODE_SCALAR || !is_int_text(n->value))
            return wrong_type(c, n, path, "integer");
        errno = 0;
        iv = strtoll(n->value, NULL, 10);
        if (errno == ERANGE)
            return error_at(c, n, path, "integer out of range: %s", n->value);
        if (check_range(c, o, n, path, (double)iv))
            return TP_CONFIG;
        memcpy(dst, &iv, sizeof(iv));
        return TP_OK;
    }
    case TP_OPT_DOUBLE: {
        if (n->type != TP_NODE_SCALAR || !is_double_text(n->value))
            return wrong_type(c, n, path, "number");
        double d = strtod(n->value, NULL);
        if (check_range(c, o, n, path, d))
            return TP_CONFIG;
        memcpy(dst, &d, sizeof(d));
        return TP_OK;
    }
    case TP_OPT_DURATION: {
        int bare = n->type == TP_NODE_SCALAR && !n->quoted && is_int_text(n->value);
        if (bare && o->int_ms > 0) {
            errno = 0;
            iv = strtoll(n->value, NULL, 10);
            if (errno == ERANGE || iv < 0 || iv > INT64_MAX / o->int_ms)
                return error_at(c, n, path, "duration out of range: %s", n->value);
            iv *= o->int_ms;
        } else if (n->type != TP_NODE_SCALAR || tp_duration_parse_ms(n->value, &iv)) {
            return wrong_type(c, n, path, "duration (500ms, 5s, 2m, 1h30m)");
        }
        if (check_range(c, o, n, path, (double)iv))
            return TP_CONFIG;
        memcpy(dst, &iv, sizeof(iv));
        return TP_OK;
    }
    case TP_OPT_BOOL: {
        int b;
        if (n->type != TP_NODE_SCALAR || parse_bool_text(n->value, &b))
            return wrong_type(c, n, path, "boolean (true or false)");
        memcpy(dst, &b, sizeof(b));
        return TP_OK;
    }
    case TP_OPT_JS: {
        struct tp_js_snippet *s = (struct tp_js_snippet *)dst;
        if (n->type != TP_NODE_SCALAR && n->type != TP_NODE_NULL)
            return wrong_type(c, n, path, "JavaScript code (a string)");
        free(s->code);
        free((char *)s->path);
        s->path = NULL;
        struct tp_env_result r = {0};
        if (n->raw && tp_env_interpolate(n->raw, strlen(n->raw), 1, &r))
            return nomem(c);
        s->code = r.text ? r.text : strdup(n->raw ? n->raw : n->value);
        if (!s->code || !(s->path = strdup(path ? path : "")))
            return nomem(c);
        if (!c->in_default) {
            s->file = n->file;
            s->line = n->content_line;
            s->col = n->content_col;
            s->block = n->block;
        }
        return TP_OK;
    }
    case TP_OPT_STRINGS:
        return set_string_list(c, o, n, path, (struct tp_strlist *)dst);
    case TP_OPT_STRMAP:
        return set_string_map(c, n, path, (struct tp_strmap *)dst);
    case TP_OPT_LIST:
        return set_list(c, o, n, path, (struct tp_list *)dst);
    case TP_OPT_OBJECT:
        if (n->type != TP_NODE_MAP)
            return wrong_type(c, n, path, "map");
        return parse_map(c, o->sub, n, n, path, dst);
    case TP_OPT_OPTIONAL: {
        if (n->type != TP_NODE_MAP)
            return wrong_type(c, n, path, "map");
        void **obj = (void **)dst;
        if (!*obj && !(*obj = calloc(1, o->elem_size)))
            return nomem(c);
        return parse_map(c, o->sub, n, n, path, *obj);
    }
    case TP_OPT_NODE:
        if (!c->in_default)
            *(const struct tp_node **)dst = n;
        return TP_OK;
    }
    return error_at(c, n, path, "unknown option type");
}

/* Applies o->def (YAML text). Scalar types take the text as is; lists and
 * maps parse it as a YAML value. */
static int apply_default(struct pctx *c, const struct tp_option *o, const struct tp_node *pos,
                         const char *path, void *out)
{
    if (o->type == TP_OPT_OBJECT)
        return parse_map(c, o->sub, NULL, pos, path, (char *)out + o->offset);
    if (!o->def || o->type == TP_OPT_NODE)
        return TP_OK;
    int saved = c->in_default;
    int rc;
    c->in_default = 1;
    if (o->type == TP_OPT_STRINGS || o->type == TP_OPT_STRMAP || o->type == TP_OPT_LIST) {
        char *text = NULL;
        struct tp_config *cfg = NULL;
        struct tp_error e;
        if (asprintf(&text, "v: %s\n", o->def) < 0) {
            rc = nomem(c);
        } else if (tp_config_load_string("<default>", text, strlen(text), &cfg, &e)) {
            rc = tp_error_set(c->err, TP_CONFIG, "%s: invalid default: %s", path, e.msg);
        } else {
            const struct tp_node *v = tp_node_get(cfg->root, "v");
            rc = v->type == TP_NODE_NULL ? TP_OK : convert(c, o, v, path, out);
        }
        tp_config_free(cfg);
        free(text);
    } else {
        struct tp_node n = {
            .type = TP_NODE_SCALAR, .value = (char *)o->def, .value_len = strlen(o->def)};
        rc = convert(c, o, &n, path, out);
    }
    c->in_default = saved;
    return rc;
}

static int unknown_key(struct pctx *c, const struct tp_option *table, const struct tp_node *key,
                       const char *path)
{
    struct tp_buf b;
    tp_buf_init(&b);
    for (size_t i = 0; table[i].name; i++)
        if (tp_buf_printf(&b, "%s%s", i ? ", " : "", table[i].name)) {
            tp_buf_free(&b);
            return nomem(c);
        }
    int rc = error_at(c, key, path, "unknown key; valid keys: %s", b.data ? b.data : "(none)");
    tp_buf_free(&b);
    return rc;
}

static int parse_map(struct pctx *c, const struct tp_option *table, const struct tp_node *map,
                     const struct tp_node *pos, const char *path, void *out)
{
    int rc = TP_OK;
    if (map && map->type == TP_NODE_NULL)
        map = NULL;
    if (map && map->type != TP_NODE_MAP)
        return wrong_type(c, map, path, "map");
    if (!map && c->in_default)
        pos = NULL;
    /* Keys in file order: unknown keys and conversions report the first problem. */
    for (size_t i = 0; map && i < map->n; i++) {
        const struct tp_option *o = table;
        while (o->name && strcmp(o->name, map->keys[i]))
            o++;
        char *kp = path_join(path, map->keys[i]);
        if (!kp)
            return nomem(c);
        size_t before = c->reported;
        if (!o->name)
            rc = unknown_key(c, table, map->key_nodes[i], kp);
        else if (map->items[i]->type != TP_NODE_NULL || o->type == TP_OPT_JS)
            rc = convert(c, o, map->items[i], kp, out);
        if (o->name && rc == TP_OK && o->given && map->items[i]->type != TP_NODE_NULL)
            *(int *)((char *)out + o->given - 1) = 1;
        free(kp);
        if ((rc = go_on(c, rc, before)))
            return rc;
    }
    /* Absent (or null) keys: required check, then defaults. */
    for (const struct tp_option *o = table; o->name; o++) {
        const struct tp_node *v = tp_node_get(map, o->name);
        if (v && (v->type != TP_NODE_NULL || o->type == TP_OPT_JS))
            continue;
        size_t before = c->reported;
        if (o->flags & TP_OPT_REQUIRED) {
            const struct tp_node *at = map ? map : pos;
            rc = error_at(c, at, path, "missing required key \"%s\"", o->name);
            if ((rc = go_on(c, rc, before)))
                return rc;
            continue;
        }
        char *kp = path_join(path, o->name);
        if (!kp)
            return nomem(c);
        rc = apply_default(c, o, map ? map : pos, kp, out);
        free(kp);
        if ((rc = go_on(c, rc, before)))
            return rc;
    }
    return TP_OK;
}

int tp_options_parse(const struct tp_option *table, const struct tp_node *map, const char *path,
                     void *out, struct tp_error *err)
{
    struct pctx c = {.err = err};
    int rc = parse_map(&c, table, map, map, path, out);
    if (rc)
        tp_options_free(table, out);
    return rc;
}

int tp_options_parse_all(const struct tp_option *table, const struct tp_node *map, const char *path,
                         void *out, tp_options_error_fn on_error, void *ud)
{
    struct tp_error err = {0};
    struct pctx c = {.err = &err, .on_error = on_error, .ud = ud};
    int rc = parse_map(&c, table, map, map, path, out);
    if (rc == TP_CONFIG) /* not reported: e.g. the map itself has the wrong type */
        on_error(ud, &err);
    if (rc == TP_NOMEM) { /* the rest is unchecked: say so, never pass it as clean */
        tp_error_set_at(&err, TP_NOMEM, map ? map->file : NULL, map ? map->line : 0,
                        map ? map->col : 0, "%s%sout of memory: not checked", path ? path : "",
                        path && *path ? ": " : "");
        on_error(ud, &err);
    }
    if (rc == TP_OK && c.reported)
        rc = TP_CONFIG;
    return rc;
}

void tp_options_free(const struct tp_option *table, void *out)
{
    if (!table || !out)
        return;
    for (const struct tp_option *o = table; o->name; o++) {
        char *dst = (char *)out + o->offset;
        switch (o->type) {
        case TP_OPT_STRING:
            free(*(char **)dst);
            *(char **)dst = NULL;
            break;
        case TP_OPT_JS: {
            struct tp_js_snippet *s = (struct tp_js_snippet *)dst;
            free(s->code);
            free((char *)s->path);
            memset(s, 0, sizeof(*s));
            break;
        }
        case TP_OPT_STRINGS: {
            struct tp_strlist *l = (struct tp_strlist *)dst;
            for (size_t i = 0; l->v && i < l->n; i++)
                free(l->v[i]);
            free(l->v);
            l->v = NULL;
            l->n = 0;
            break;
        }
        case TP_OPT_STRMAP: {
            struct tp_strmap *m = (struct tp_strmap *)dst;
            for (size_t i = 0; i < m->n; i++) {
                if (m->keys)
                    free(m->keys[i]);
                if (m->vals)
                    free(m->vals[i]);
            }
            free(m->keys);
            free(m->vals);
            memset(m, 0, sizeof(*m));
            break;
        }
        case TP_OPT_LIST: {
            struct tp_list *l = (struct tp_list *)dst;
            for (size_t i = 0; l->items && i < l->n; i++)
                tp_options_free(o->sub, (char *)l->items + i * o->elem_size);
            free(l->items);
            l->items = NULL;
            l->n = 0;
            break;
        }
        case TP_OPT_OBJECT:
            tp_options_free(o->sub, dst);
            break;
        case TP_OPT_OPTIONAL:
            tp_options_free(o->sub, *(void **)dst);
            free(*(void **)dst);
            *(void **)dst = NULL;
            break;
        case TP_OPT_NODE:
            *(const struct tp_node **)dst = NULL;
            break;
        default:
            break;
        }
    }
}

void tp_js_snippet_position(const struct tp_js_snippet *s, int js_line, int js_col, int *line,
                            int *col)
{
    if (!s || s->line <= 0) { /* a default: no file position */
        *line = js_line;
        *col = js_col;
        return;
    }
    *line = s->line + js_line - 1;
    /* Block: every JS line sits at the block's indentation. A folded flow
     * scalar's later lines cannot be mapped exactly: best effort. */
    *col = (js_line == 1 || s->block) ? s->col + js_col - 1 : js_col;
}

/* ---- deprecated forms ---- */

int tp_options_deprecated(const struct tp_option *table, const struct tp_node *map,
                          const char *path, tp_options_error_fn found, void *ud)
{
    int count = 0;
    if (!table || !map || map->type != TP_NODE_MAP)
        return 0;
    for (size_t i = 0; i < map->n; i++) {
        const struct tp_option *o = table;
        while (o->name && strcmp(o->name, map->keys[i]))
            o++;
        const struct tp_node *v = map->items[i];
        char *kp = o->name ? path_join(path, map->keys[i]) : NULL;
        if (!kp)
            continue;
        if (o->type == TP_OPT_DURATION && (o->flags & TP_OPT_INT_DEPRECATED) &&
            v->type == TP_NODE_SCALAR && !v->quoted && is_int_text(v->value)) {
            struct tp_error e = {0};
            char unit[32];
            duration_text(o->int_ms, unit, sizeof(unit));
            tp_error_set_at(&e, TP_CONFIG, v->file, v->line, v->col,
                            "%s: a bare integer (counted in units of %s) is deprecated; write the "
                            "unit, e.g. %s%s",
                            kp, unit, v->value, o->int_ms == 1000 ? "s" : "ms");
            found(ud, &e);
            count++;
        } else if (o->type == TP_OPT_OBJECT || o->type == TP_OPT_OPTIONAL) {
            count += tp_options_deprecated(o->sub, v, kp, found, ud);
        } else if (o->type == TP_OPT_LIST && v->type == TP_NODE_SEQ) {
            for (size_t k = 0; k < v->n; k++) {
                char *ep = path_index(kp, k);
                if (ep)
                    count += tp_options_deprecated(o->sub, v->items[k], ep, found, ud);
                free(ep);
            }
        }
        free(kp);
    }
    return count;
}

/* ---- Markdown reference ---- */

const char *tp_option_type_doc(const struct tp_option *o)
{
    switch (o->type) {
    case TP_OPT_STRING:
        return "string";
    case TP_OPT_INT:
        return "integer";
    case TP_OPT_DOUBLE:
        return "number";
    case TP_OPT_DURATION:
        return "duration";
    case TP_OPT_BOOL:
        return "boolean";
    case TP_OPT_JS:
        return "JavaScript";
    case TP_OPT_STRINGS:
        return "string or list of strings";
    case TP_OPT_STRMAP:
        return "map of strings";
    case TP_OPT_LIST:
        return "list of objects";
    case TP_OPT_OBJECT:
        return "object";
    case TP_OPT_NODE:
        return "YAML node";
    case TP_OPT_OPTIONAL:
        return "object (optional)";
    }
    return "?";
}

/* Table cells: `|` would end the cell and newlines the row. */
static int put_cell(struct tp_buf *out, const char *s)
{
    int rc = TP_OK;
    for (; s && *s && !rc; s++) {
        if (*s == '|')
            rc = tp_buf_puts(out, "\\|");
        else if (*s == '\n')
            rc = tp_buf_putc(out, ' ');
        else
            rc = tp_buf_putc(out, *s);
    }
    return rc;
}

int tp_options_markdown(const struct tp_option *table, const char *title, struct tp_buf *out)
{
    int rc = tp_buf_printf(out,
                           "### %s\n\n| key | type | default | required | description |\n"
                           "|---|---|---|---|---|\n",
                           title ? title : "options");
    for (const struct tp_option *o = table; o->name && !rc; o++) {
        rc = tp_buf_printf(out, "| `%s` | %s | ", o->name, tp_option_type_doc(o));
        if (!rc && o->def) {
            rc = tp_buf_putc(out, '`');
            rc = rc ? rc : put_cell(out, o->def);
            rc = rc ? rc : tp_buf_putc(out, '`');
        }
        rc = rc ? rc : tp_buf_printf(out, " | %s | ", o->flags & TP_OPT_REQUIRED ? "yes" : "no");
        rc = rc ? rc : put_cell(out, o->desc);
        for (size_t i = 0; !rc && o->choices && o->choices[i]; i++)
            rc = tp_buf_printf(out, "%s`%s`", i ? ", " : " One of: ", o->choices[i]);
        if (!rc && has_range(o)) {
            char range[80];
            range_text(o, range, sizeof(range));
            rc = tp_buf_printf(out, " Range: %s.", range);
        }
        if (!rc && o->type == TP_OPT_DURATION && o->int_ms > 0)
            rc = tp_buf_printf(
                out, " A bare integer counts %s%s.", o->int_ms == 1000 ? "seconds" : "milliseconds",
                (o->flags & TP_OPT_INT_DEPRECATED) ? " (deprecated: write the unit, e.g. `30s`)"
                                                   : "");
        if (!rc && (o->flags & TP_OPT_READABLE))
            rc = tp_buf_puts(out, " Must name a readable file (checked at start-up).");
        if (!rc && (o->flags & TP_OPT_IN_DIR))
            rc = tp_buf_puts(out, " Its directory must exist (checked at start-up).");
        if (!rc && o->sub)
            rc = tp_buf_printf(out, " See `%s.%s`.", title ? title : "options", o->name);
        rc = rc ? rc : tp_buf_puts(out, " |\n");
    }
    rc = rc ? rc : tp_buf_putc(out, '\n');
    for (const struct tp_option *o = table; o->name && !rc; o++) {
        if (!o->sub ||
            (o->type != TP_OPT_LIST && o->type != TP_OPT_OBJECT && o->type != TP_OPT_OPTIONAL))
            continue;
        char *sub = path_join(title ? title : "options", o->name);
        if (!sub)
            return TP_NOMEM;
        rc = tp_options_markdown(o->sub, sub, out);
        free(sub);
    }
    return rc;
}
