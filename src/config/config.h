/* The configuration tree: YAML parsed with libyaml into nodes that remember
 * their file:line:col, plus typed option tables that turn a map node into a
 * plugin's C config struct with precise errors
 * ("FILE:LINE:COL: key.path: expected X, got Y"; unknown keys list the valid ones). */
#ifndef TP_CONFIG_H
#define TP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

enum tp_node_type { TP_NODE_NULL, TP_NODE_SCALAR, TP_NODE_MAP, TP_NODE_SEQ };

struct tp_node {
    enum tp_node_type type;
    const char *file; /* owned by the tp_config */
    int line, col;    /* 1-based start of the node */
    /* scalars */
    char *value; /* NUL-terminated text ("" for null) */
    size_t value_len;
    int quoted;       /* single- or double-quoted scalar */
    int block;        /* literal (|) or folded (>) block scalar */
    int content_line; /* 1-based position of the first character of the content */
    int content_col;  /* (for a block scalar: first content line, its indentation + 1) */
    /* Environment interpolation (`${VAR:default}`) is applied to value at
     * load; raw keeps the text as written when it differed (JavaScript code
     * uses it: `${x}` there is a JS template literal). */
    char *raw;
    char *env_missing;     /* name of an unset variable without default, or NULL */
    int env_line, env_col; /* where that reference starts */
    /* maps (keys[i] -> items[i]) and sequences (items[i]) */
    size_t n;
    char **keys;
    struct tp_node **key_nodes; /* map only: the key scalars, for positions */
    struct tp_node **items;
};

struct tp_config {
    char *file; /* path as given */
    struct tp_node *root;
    struct tp_config *overlays; /* --set values grafted into root (owned; see override.h) */
};

/* Parses a YAML file ("-": standard input) / buffer. The root must be a map.
 * Errors name FILE:LINE:COL.
 * Caller frees *out with tp_config_free. */
int tp_config_load_file(const char *path, struct tp_config **out, struct tp_error *err);
int tp_config_load_string(const char *name, const char *text, size_t len, struct tp_config **out,
                          struct tp_error *err);
void tp_config_free(struct tp_config *cfg);

/* Map lookup; NULL when absent or when map is not a map. */
const struct tp_node *tp_node_get(const struct tp_node *map, const char *key);
/* Short name of a node type for messages: "null", "string", "map", "list". */
const char *tp_node_type_name(const struct tp_node *n);

/* ---- a tree as JSON text (node_json.c) ---- */

enum tp_node_json_flags {
    TP_NODE_JSON_LITERALS = 1,       /* unquoted numbers, true, false, null as JSON literals
                                        (otherwise every scalar is a JSON string) */
    TP_NODE_JSON_REDACT_SECRETS = 2, /* scalars under a secret-looking key become "***" */
};
/* Appends node n (NULL: null) as compact JSON to out, keys in file order. */
void tp_node_json(const struct tp_node *n, unsigned flags, struct tp_buf *out);
/* 1 when scalar n is unquoted true/false/null or a JSON number. */
int tp_node_is_json_literal(const struct tp_node *n);
/* 1 when a key names a secret (password, token, key_file, auth, ...). */
int tp_config_key_is_secret(const char *key);

/* ---- typed option tables ---- */

enum tp_opt_type {
    TP_OPT_STRING,  /* char * (malloc'd); NULL when absent and no default */
    TP_OPT_INT,     /* int64_t */
    TP_OPT_DOUBLE,  /* double */
    TP_OPT_BOOL,    /* int: true/false */
    TP_OPT_JS,      /* struct tp_js_snippet (code NULL when absent) */
    TP_OPT_STRINGS, /* struct tp_strlist: a list of strings, or one string */
    TP_OPT_STRMAP,  /* struct tp_strmap: a map of string -> string */
    TP_OPT_LIST,    /* struct tp_list of structs described by `sub` (elem_size bytes each) */
    TP_OPT_OBJECT,  /* a nested struct described by `sub`, stored inline at offset */
    TP_OPT_NODE,    /* const struct tp_node * (raw; for plugin maps like input: {kafka: {...}}) */
    /* int64_t milliseconds, written as Benthos/Go durations: 500ms, 5s, 1h30m,
     * 1.5s, "0" (tp_duration_parse_ms); a bare integer counts int_ms
     * milliseconds (rejected when int_ms is 0). */
    TP_OPT_DURATION,
    /* An optional nested object: a pointer to a malloc'd struct of elem_size
     * bytes described by `sub`, NULL when the key is absent or null. */
    TP_OPT_OPTIONAL,
};

#define TP_OPT_REQUIRED 0x1u
/* DURATION: a bare integer is the old form whose unit the key did not say
 * (MQTT's seconds): accepted, and lint warns that it is deprecated. */
#define TP_OPT_INT_DEPRECATED 0x2u
#define TP_OPT_READABLE 0x4u /* STRING: names a file that exists and can be read */
#define TP_OPT_IN_DIR 0x8u   /* STRING: a file path whose directory exists */
/* STRING: a template (core/template.h), checked when the config is parsed. */
#define TP_OPT_TEMPLATE 0x10u
/* STRING with choices: compared ignoring case (the value is kept as written). */
#define TP_OPT_NOCASE 0x20u
/* NODE: a key valid in Benthos configs but without meaning here; lint names
 * every such key present in one warning. */
#define TP_OPT_IGNORED 0x40u
/* STRING / STRINGS: regular expression(s) in Go's RE2 syntax (benthos-umh's),
 * translated to POSIX extended when the config is parsed (config/regex_syntax.h:
 * the stored value is the translation); an invalid one, or one POSIX cannot
 * say, is an error at its position. */
#define TP_OPT_REGEX 0x80u

struct tp_option {
    const char *name;
    enum tp_opt_type type;
    size_t offset;   /* offsetof(config struct, field) */
    const char *def; /* default as YAML text ("100", "true", "umh.messages"), or NULL */
    const char *desc;
    unsigned flags;
    const struct tp_option *sub; /* LIST / OBJECT / OPTIONAL: the element's table */
    size_t elem_size;            /* LIST / OPTIONAL: sizeof element struct */
    const char *const *choices;  /* STRING: allowed values (NULL-terminated), or NULL */
    /* INT, DOUBLE, DURATION (in ms): the accepted values min..max, checked
     * when min < max (both 0: any value). INT64_MAX as max: "at least min". */
    int64_t min, max;
    int64_t int_ms; /* DURATION: milliseconds of a bare integer (1000: seconds), 0: none */
    /* Where to record that the key was given (present and not null), for a
     * default the plugin works out itself, e.g. from another option: written
     * .given = TP_OPT_GIVEN_AT(T, field) with `int field` in T, set to 1; an
     * explicit value equal to the zeroed field stays told apart from an
     * absent key. 0: not recorded. */
    size_t given;
};

/* .given of a table row: the int member `field` of config struct T (stored
 * as its offset + 1, so that 0 means "not recorded"). */
#define TP_OPT_GIVEN_AT(T, field) (offsetof(T, field) + 1)

/* One option-table row, the one way tables are written: key `key` of type
 * `type_` kept in `field` of config struct T, with its default as YAML text
 * (or NULL) and description; further fields follow designated
 * (.flags = ..., .min = 1, .max = 64, .choices = ..., .sub = ..., .int_ms = ...).
 * A table ends with {0}. */
#define TP_OPTION(T, field, key, type_, def_, desc_, ...)                                          \
    {                                                                                              \
        .name = (key), .type = (type_), .offset = offsetof(T, field), .def = (def_),               \
        .desc = (desc_), __VA_ARGS__                                                               \
    }

/* A JavaScript snippet with where it sits in the config file. */
struct tp_js_snippet {
    char *code;       /* malloc'd; NULL when the key is absent */
    const char *file; /* config file */
    int line, col;    /* position of the first character of the code */
    int block;        /* 1: block scalar, JS line n is YAML line (line + n - 1) at col */
    /* key path, e.g. "pipeline.processors[0].tag_processor.defaults" (malloc'd) */
    const char *path;
};

/* Maps a 1-based JS line/column inside the snippet to the YAML file position. */
void tp_js_snippet_position(const struct tp_js_snippet *s, int js_line, int js_col, int *line,
                            int *col);

struct tp_strlist {
    char **v;
    size_t n;
};
struct tp_strmap {
    char **keys;
    char **vals;
    size_t n;
};
struct tp_list {
    void *items; /* n * elem_size bytes */
    size_t n;
};

/* Fills `out` (a zeroed struct) from `map` (a map node or NULL/null meaning
 * empty) following `table` (terminated by an entry with name NULL). `path` is
 * the key path of map, used in messages. Unknown keys, wrong types and missing
 * required keys are errors at the offending node's position. */
int tp_options_parse(const struct tp_option *table, const struct tp_node *map, const char *path,
                     void *out, struct tp_error *err);
/* Same, but goes on after a config error: every one is passed to on_error
 * (in file order), and the result is TP_CONFIG when there was any; out
 * holds what could be read and is freed by the caller with tp_options_free
 * either way. Used by lint, which reports every problem at once. */
typedef void (*tp_options_error_fn)(void *ud, const struct tp_error *err);
int tp_options_parse_all(const struct tp_option *table, const struct tp_node *map, const char *path,
                         void *out, tp_options_error_fn on_error, void *ud);
/* Frees what tp_options_parse allocated in out (not out itself). */
void tp_options_free(const struct tp_option *table, void *out);

/* Calls found() once for every value under map that `table` accepts only in a
 * deprecated form (a bare integer for a TP_OPT_INT_DEPRECATED duration),
 * with a positioned message saying what to write instead; nested objects
 * and lists included. Returns the number of calls. For lint. */
int tp_options_deprecated(const struct tp_option *table, const struct tp_node *map,
                          const char *path, tp_options_error_fn found, void *ud);

/* Appends a Markdown reference of `table` (a "### title" heading, then one row
 * per key: name, type, default, required, description), followed by one
 * section per LIST/OBJECT sub-table titled "title.key". 0 or TP_NOMEM. */
int tp_options_markdown(const struct tp_option *table, const char *title, struct tp_buf *out);
/* Parses a duration: one or more <number><unit> (ns, us, ms, s, m, h), as
 * in Go/Benthos ("1h30m", "1.5s", "250ms"), or "0". Rounds to whole
 * milliseconds. 0, or -1 when the text is not such a duration. */
int tp_duration_parse_ms(const char *text, int64_t *ms);

/* The documented type of an option: "integer", "string or list of strings", ... */
const char *tp_option_type_doc(const struct tp_option *o);

#endif
