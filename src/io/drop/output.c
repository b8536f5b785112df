/* The drop output: accepts and discards every message (benchmarks, and
 * pipelines that only matter for their side effects or dead letters). */
#include "config/config.h"
#include "core/plugin.h"

struct drop_config {
    int unused;
};

static const struct tp_option drop_options[] = {
    {0},
};

static int drop_instance; /* drop has no state; open hands out this address */

static int drop_open(const void *config, void **out, struct tp_error *err)
{
    (void)config;
    (void)err;
    *out = &drop_instance;
    return TP_OK;
}

static int drop_submit(void *out, struct tp_out_batch *b)
{
    (void)out;
    tp_out_batch_complete(b, TP_OK, NULL);
    return TP_OK;
}

static void drop_close(void *out)
{
    (void)out;
}

const struct tp_output_plugin tp_output_drop = {
    .name = "drop",
    .options = drop_options,
    .config_size = sizeof(struct drop_config),
    .open = drop_open,
    .submit = drop_submit,
    .close = drop_close,
};
