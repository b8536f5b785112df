/* The processor chain: pipeline.processors built from config (every JS
 * snippet compiled once here), per-worker state, and the processing of one
 * input message through every processor. Used by the pipeline, the
 * benchmark and rule tests alike. */
#ifndef TP_CHAIN_H
#define TP_CHAIN_H

#include "config/config.h"
#include "core/drop.h"
#include "core/msg.h"
#include "core/plugin.h"

struct tp_chain_proc {
    const struct tp_processor_plugin *plugin;
    void *config; /* parsed option struct, config_size bytes */
    void *state;  /* from plugin->create */
    char label[192];
};

struct tp_chain {
    struct tp_chain_proc *procs;
    size_t n;
    int threads;
};

/* One worker's view of the chain: per-processor worker states plus scratch. */
struct tp_chain_worker {
    const struct tp_chain *chain;
    void **states;
    struct tp_batch cur, next;
    struct tp_drops drops;
    size_t proc_index; /* processor whose drops are being reported (for logs) */
};

/* Builds the chain from the `processors` sequence node (NULL: empty chain).
 * `path` is the key path of that node ("pipeline.processors"). Processors
 * count per-rule metrics into `metrics` (NULL: none). Caller frees
 * with tp_chain_free. */
int tp_chain_new(const struct tp_node *processors, const char *path, int threads,
                 struct tp_metrics *metrics, struct tp_chain **out, struct tp_error *err);
void tp_chain_free(struct tp_chain *c);

/* Creates worker state on the calling thread (JS VMs are per thread). */
int tp_chain_worker_init(struct tp_chain_worker *w, const struct tp_chain *c, int worker_index,
                         struct tp_error *err);
void tp_chain_worker_free(struct tp_chain_worker *w);

/* Called for each drop while processing `in`. */
typedef void (*tp_drop_fn)(void *opaque, const struct tp_msg *in, const struct tp_drop *drop);

/* Runs `in` through every processor; appends the resulting messages to out
 * (out owns them; each gets in->seq). `in` is not modified. What the input
 * lost is passed to on_drop once at most (filtered included): a fan-out whose
 * children were dropped gives one drop naming how many were lost. Returns 0
 * or a fatal status (then nothing is reported). */
int tp_chain_process(struct tp_chain_worker *w, const struct tp_msg *in, struct tp_batch *out,
                     tp_drop_fn on_drop, void *opaque);

#endif
