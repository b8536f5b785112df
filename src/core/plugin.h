/* The three plugin interfaces (input, processor, output). Each plugin file
 * exports one const struct with its name, option table and callbacks; the
 * registry (registry.c) lists them. Configs are parsed by the caller from the
 * option table into a zeroed struct of config_size bytes. */
#ifndef TP_PLUGIN_H
#define TP_PLUGIN_H

#include <stddef.h>

#include "core/drop.h"
#include "core/error.h"
#include "core/msg.h"

struct tp_option;  /* config/config.h: the typed option tables */
struct tp_metrics; /* core/metrics.h */

/* What a processor learns about where it sits. */
struct tp_proc_info {
    int index;         /* position in pipeline.processors */
    const char *label; /* "pipeline.processors[0].tag_processor" */
    int threads;       /* number of workers that will call worker_new */
    /* The pipeline's metrics registry for per-rule counters, or NULL (none:
     * rule tests, benchmarks, lint). */
    struct tp_metrics *metrics;
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
     * reported in drops as invalid_input (their error text names the line).
     * A failure (any other status: the pipeline stops, exit 1) fills err
     * with what failed and where (file, broker, server; not the plugin's
     * name, which the pipeline adds); the input does not log it itself. */
    int (*read)(void *in, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                struct tp_error *err);
    /* Optional: the message (by its ack token) and all its outputs are done. */
    void (*ack)(void *in, void *token);
    /* Optional, used instead of ack when set: the acks of one batch at once,
     * in input order (tokens[i] NULL: message i has no ack token), so that
     * an input can take its lock once per batch. Same thread as ack. */
    void (*ack_batch)(void *in, void *const *tokens, size_t n);
    /* Optional: makes a blocked read return soon (called from another thread). */
    void (*stop)(void *in);
    void (*close)(void *in);
    /* Optional: messages the pipeline is done with (the input's own and the
     * processors' outputs, once the batch was acked), handed back so that an
     * input making a message per value can reuse them instead of allocating.
     * Called on the writer thread, concurrently with read: the input takes
     * every message of b (b->len becomes 0), keeps what it wants, frees the rest. */
    void (*recycle)(void *in, struct tp_batch *b);
};

/* ---------- the output contract ----------
 *
 * An output accepts a batch (submit) and confirms it later (complete); the
 * pipeline keeps up to `output.max_in_flight` batches submitted but not yet
 * completed, so a broker round trip no longer limits throughput to one batch
 * per round trip. The pipeline acknowledges the input of a batch only after
 * the batch and every batch before it completed with TP_OK, in input order.
 *
 * Threads:
 * - open, close: the pipeline's main thread (before the writer starts, after
 *   it ended). close is called with batches possibly still in flight (after a
 *   fatal error): it abandons them (it may complete them, ignored), and no
 *   completion may happen once close returned.
 * - submit: only the pipeline's writer thread, one call at a time, batches in
 *   increasing seq order. The output keeps that order for messages of the same
 *   key/topic/partition on the wire (Kafka idempotent producer, MQTT in-order
 *   session, one NATS connection). submit may block while the output has no
 *   room (its own window or queue is full, the broker is away) but must not
 *   wait for the completion of b itself, and must return soon after stop().
 * - stop: any thread (the signal thread), concurrently with the rest.
 * - tp_out_batch_drop / tp_out_batch_complete: any thread (inside submit, the
 *   output's network or delivery-report thread, ...).
 *
 * Lifetimes: b and the messages it points to stay valid and unchanged from
 * submit until the output calls tp_out_batch_complete(b) (or close returned);
 * the output must not touch b afterwards. Messages are the pipeline's: read
 * them, never free or modify them (copy what must outlive the batch).
 *
 * Completion: exactly once per submitted batch. Completions may come in any
 * order (e.g. Kafka partitions); the pipeline restores input order for acks.
 * - TP_OK: every message was delivered (broker acknowledgement, written to
 *   the file descriptor) or declared dropped with tp_out_batch_drop.
 * - another status, with err: the batch could not be delivered after the
 *   output's own retries (its `max_retries`, reconnects). The pipeline stops,
 *   acknowledges nothing from this batch on and exits 1; the input delivers
 *   the unacknowledged messages again on the next start.
 * The pipeline relies on the completion only: a submit that fails returns
 * the status too, but b is (or will be) completed with a failure either way
 * (tp_out_batch_fail completes and returns the status).
 *
 * Per-message drops (the one way an output refuses a single message, e.g.
 * invalid_topic for a subject/topic that cannot be built): the output calls
 * tp_out_batch_drop(b, i, reason, ...) for message i and does not send it.
 * The pipeline counts it once, logs it and dead-letters it when b completes;
 * the input of b is still acknowledged (the drop is accounted, not lost).
 * Dead-letter failure is fatal like an output failure.
 *
 * Mandatory callbacks: open, submit, close. Optional: stop. */

struct tp_out_batch;

/* Called by tp_out_batch_complete: the submitter's hook (the pipeline's, or
 * tp_output_write_sync's). */
typedef void (*tp_out_batch_done_fn)(struct tp_out_batch *b, int status,
                                     const struct tp_error *err);

/* One entry of an output's drop list: which message and why. */
struct tp_out_drop {
    size_t index; /* into msgs */
    enum tp_drop_reason reason;
    char error[448];
};

struct tp_out_batch {
    struct tp_msg *const *msgs; /* in order; the pipeline's (see Lifetimes) */
    size_t n;
    uint64_t seq; /* +1 per submitted batch */
    /* private to the submitter and output.c */
    tp_out_batch_done_fn done;
    void *opaque;
    struct tp_out_drop *drops;
    size_t n_drops, cap_drops;
    uint64_t unrecorded[TP_DROP_REASON_COUNT]; /* drops without a record (out of memory) */
};

/* Message i of b is not sent: counted, logged and dead-lettered by the
 * pipeline under `reason` with stage "output". At most once per message,
 * before tp_out_batch_complete(b); never concurrently for the same b. */
void tp_out_batch_drop(struct tp_out_batch *b, size_t i, enum tp_drop_reason reason,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Confirms b (see Completion); err may be NULL for TP_OK. b is the caller's
 * no more once this returns. */
void tp_out_batch_complete(struct tp_out_batch *b, int status, const struct tp_error *err);
/* For submit's failure path: completes b with status/err and returns status. */
int tp_out_batch_fail(struct tp_out_batch *b, int status, const struct tp_error *err);

struct tp_output_plugin {
    const char *name;
    const struct tp_option *options;
    size_t config_size;
    /* config stays valid until close. */
    int (*open)(const void *config, void **out, struct tp_error *err);
    /* Takes b in flight (see the contract above). Returns 0, or the status
     * of a failure b is (or will be) completed with. */
    int (*submit)(void *out, struct tp_out_batch *b);
    /* Optional: the pipeline is stopping (SIGINT/SIGTERM). An output waiting
     * for an unreachable destination may then give up and complete its
     * batches with an error (their input stays unacknowledged). */
    void (*stop)(void *out);
    void (*close)(void *out);
};

/* Submits msgs[0..n) as one batch and waits for its completion: for
 * one-message writes (dead letter), tests and tools. Drops declared by the
 * output are returned in *drops when drops is not NULL (caller frees with
 * free()), else ignored. Returns the completion status (err filled). */
int tp_output_write_sync(const struct tp_output_plugin *p, void *out, struct tp_msg *const *msgs,
                         size_t n, struct tp_out_drop **drops, size_t *n_drops,
                         struct tp_error *err);

/* ---------- the plugins known by name ----------
 *
 * The core knows no plugin: the program hands it the set it was built with
 * (the CLI: tp_builtin_plugins, generated by CMake from the plugin list, see
 * docs/internals/plugins.md), before any config is read. */
struct tp_plugin_set {
    const struct tp_input_plugin *const *inputs; /* NULL-terminated */
    const struct tp_processor_plugin *const *processors;
    const struct tp_output_plugin *const *outputs;
};
/* Makes set (static storage) the plugins found by name; NULL: none. */
void tp_plugins_use(const struct tp_plugin_set *set);

const struct tp_input_plugin *tp_input_find(const char *name);
const struct tp_processor_plugin *tp_processor_find(const char *name);
const struct tp_output_plugin *tp_output_find(const char *name);
/* Comma-separated plugin names of a kind ("input", "processor", "output") for messages. */
const char *tp_plugin_names(const char *kind);

#endif
