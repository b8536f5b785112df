/* The stdin input: JSON Lines envelopes (SPEC 6) or raw lines read from file
 * descriptor 0 by the shared line reader (lines.c). Undecodable lines are
 * dropped as invalid_input with their line number and reading goes on. */
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "core/plugin.h"
#include "io/lines.h"

struct stdin_config {
    char *codec;
    int64_t max_line_bytes;
    int64_t max_meta_keys;
};

static const struct tp_option stdin_options[] = {
    TP_LINE_FORMAT_OPTIONS(struct stdin_config),
    {0},
};

static int stdin_open(const void *config, void **in, struct tp_error *err)
{
    const struct stdin_config *c = config;
    return tp_line_input_open(STDIN_FILENO, 0, c->codec, c->max_line_bytes, c->max_meta_keys, in,
                              err);
}

const struct tp_input_plugin tp_input_stdin = {
    .name = "stdin",
    .options = stdin_options,
    .config_size = sizeof(struct stdin_config),
    .open = stdin_open,
    .read = tp_line_input_read,
    .ack = NULL,
    .stop = tp_line_input_stop,
    .close = tp_line_input_close,
};
