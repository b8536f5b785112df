/* The three plugin interfaces (input, processor, output). Each plugin file
 * exports one const struct with its name, option table and callbacks; the
 * registry (registry.c) lists them. Configs are parsed by the caller from the
 * option table into a zeroed struct of config_size bytes. */
#ifndef TP_PLUGIN_H
#define TP_PLUGIN_H

#include <stddef.h>

#include "config/config.h"
#include "core/drop.h"
#include "core/error.h"
#include "core/msg.h"

/* What a processor learns about where it sits. */
struct tp_proc_info {
    int index;         /* position in pipeline.processors */
    const char *label; /* "pipeline.processors[0].tag_processor" */
    int threads;       /* number of workers that will call worker_new */
};

struct tp_processor_plugin {
    const char *name;
    const struct tp_option *options;
    size_t config_size;
    /* Compiles / prepares once at start-up. config stays valid until destroy. */
    int (*create)(const void *config, const struct tp_proc_info *info, void **proc,
                  struct tp_error *err);
    /* Per worker thread state (e.g. a JS VM); called on the worker's thread. */
    int (*worker_new)(void *proc, int worker_index, void **worker, struct tp_error *err);
    /* Processes one message: appends 0..N new messages to out (out owns them);
     * `in` is not modified and stays the caller's. Every message that does not
     * come out is reported in drops (reason filtered included). Returns 0, or a
     * status for a fatal (non per-message) failure. */
    int (*process)(void *worker, const struct tp_msg *in, struct tp_batch *out,
                   struct tp_drops *drops);
    void (*worker_free)(void *worker);
    void (*destroy)(void *proc);
};

struct tp_input_plugin {
    const char *name;
    const struct tp_option *options;
    size_t config_size;
    int (*open)(const void *config, void **in, struct tp_error *err);
    /* Appends up to max messages to batch. Blocks until at least one message,
     * end of input (returns TP_EOF, possibly with messages appended), a stop
     * request (TP_EOF) or an error. Records that cannot be decoded are
     * reported in drops as invalid_input (their error text names the line). */
    int (*read)(void *in, struct tp_batch *batch, size_t max, struct tp_drops *drops);
    /* Optional: the message (by its ack token) and all its outputs are done. */
    void (*ack)(void *in, void *token);
    /* Optional: makes a blocked read return soon (called from another thread). */
    void (*stop)(void *in);
    void (*close)(void *in);
};

struct tp_output_plugin {
    const char *name;
    const struct tp_option *options;
    size_t config_size;
    int (*open)(const void *config, void **out, struct tp_error *err);
    /* Writes n messages in order. */
    int (*write)(void *out, struct tp_msg *const *msgs, size_t n, struct tp_error *err);
    /* Optional: pushes buffered data out. */
    int (*flush)(void *out, struct tp_error *err);
    void (*close)(void *out);
    /* Optional: the pipeline is stopping (SIGINT/SIGTERM; called from another
     * thread). A write() or flush() waiting for an unreachable destination may
     * then give up with an error instead of waiting for it to come back. */
    void (*stop)(void *out);
};

const struct tp_input_plugin *tp_input_find(const char *name);
const struct tp_processor_plugin *tp_processor_find(const char *name);
const struct tp_output_plugin *tp_output_find(const char *name);
/* Comma-separated plugin names of a kind ("input", "processor", "output") for messages. */
const char *tp_plugin_names(const char *kind);

#endif
