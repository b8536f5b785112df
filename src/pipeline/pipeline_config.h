/* Internal to the pipeline: the top-level config sections and their option
 * tables, and the parsing of a plugin section ({stdin: {...}}) into the
 * plugin it names plus its parsed options. Shared by pipeline.c (which opens
 * the plugins) and pipeline_config.c (which checks configs for lint). */
#ifndef TP_PIPELINE_CONFIG_H
#define TP_PIPELINE_CONFIG_H

#include <stdint.h>

#include "config/config.h"
#include "core/plugin.h"
#include "pipeline/pipeline.h"

struct tp_logger_config {
    char *level;
    char *format;
    int64_t stats_interval; /* seconds between stats lines, 0: none */
    int add_timestamp;
    struct tp_strmap static_fields;
    const struct tp_node *file, *level_name, *timestamp_name, *message_name; /* ignored */
};

struct tp_pipeline_section {
    int64_t threads;
    int64_t batch_size;
    char *key; /* routing key template; NULL: the natural key */
    const struct tp_node *processors;
};

struct tp_root_config {
    const struct tp_node *input, *output, *dead_letter, *http;
    struct tp_pipeline_section pipeline;
    struct tp_logger_config logger;
    struct tp_ui_config ui;
    /* Benthos sections without a meaning here: accepted, named in one warning */
    const struct tp_node *metrics, *tracer, *buffer, *shutdown_delay, *shutdown_timeout, *tests,
        *input_resources, *processor_resources, *output_resources, *cache_resources,
        *rate_limit_resources;
};

/* Applies the logger section (level unless overridden on the command line,
 * format, timestamp, static fields). 0 or TP_NOMEM. */
int tp__logger_apply(const struct tp_logger_config *lc, int set_level);

extern const struct tp_option tp__pipeline_root_options[];
extern const struct tp_option tp__pipeline_http_options[];

/* One configured plugin of a section: which plugin and its parsed options. */
struct tp_section {
    const char *name;
    const void *plugin; /* const struct tp_input_plugin * or tp_output_plugin * */
    const struct tp_option *options;
    void *config;          /* parsed option struct, owned */
    int64_t max_in_flight; /* output sections: batches unconfirmed at most */
};

/* Resolves `node` (a map with one key naming a plugin of `kind`, "input" or
 * "output"; NULL/null means the plugin `dflt`) and parses its options. On
 * error err names the position; s is left empty either way safe to free.
 * Free with tp__section_free. */
int tp__section_parse(const struct tp_node *node, const char *section, const char *kind,
                      const char *dflt, struct tp_section *s, struct tp_error *err);
/* The same, also knowing `extra` (a plugin of that kind, or NULL) by its name. */
int tp__section_parse_with(const struct tp_node *node, const char *section, const char *kind,
                           const char *dflt, const void *extra, struct tp_section *s,
                           struct tp_error *err);
void tp__section_free(struct tp_section *s);

/* TP_CONFIG when the file input's file is also the file output's or the dead
 * letter's (the same file by device and inode, so links count too); err
 * names both positions. Checked before any output opens (truncates) it. */
int tp__pipeline_check_files(const struct tp_root_config *root, struct tp_error *err);

#endif
