/* The stdout output: one JSON Lines envelope per message (SPEC 6), a whole
 * batch encoded into one buffer and written with one write(2). */
#include <stdlib.h>
#include <unistd.h>

#include "core/plugin.h"
#include "io/lines.h"

struct stdout_config {
    int unused;
};

static const struct tp_option stdout_options[] = {
    {0},
};

static int stdout_open(const void *config, void **out, struct tp_error *err)
{
    (void)config;
    struct tp_line_writer *w = malloc(sizeof(*w));
    if (!w)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    tp_line_writer_init(w, STDOUT_FILENO, 0, "stdout");
    *out = w;
    return TP_OK;
}

/* Synchronous: written and completed before submit returns. */
static int stdout_submit(void *out, struct tp_out_batch *b)
{
    struct tp_error err = {0};
    int rc = tp_line_writer_write(out, b->msgs, b->n, &err);
    tp_out_batch_complete(b, rc, &err);
    return rc;
}

static void stdout_close(void *out)
{
    if (!out)
        return;
    tp_line_writer_close(out);
    free(out);
}

const struct tp_output_plugin tp_output_stdout = {
    .name = "stdout",
    .options = stdout_options,
    .config_size = sizeof(struct stdout_config),
    .open = stdout_open,
    .submit = stdout_submit,
    .close = stdout_close,
};
