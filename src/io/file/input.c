/* The file input: the same JSON Lines envelopes as stdin, read from a named file. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/plugin.h"
#include "io/lines.h"

struct file_in_config {
    char *path;
    char *codec;
    int64_t max_line_bytes;
    int64_t max_meta_keys;
};

static const struct tp_option file_in_options[] = {
    TP_OPTION(struct file_in_config, path, "path", TP_OPT_STRING, NULL, "file to read",
              .flags = TP_OPT_REQUIRED | TP_OPT_READABLE),
    TP_LINE_FORMAT_OPTIONS(struct file_in_config),
    {0},
};

static int file_in_open(const void *config, void **in, struct tp_error *err)
{
    const struct file_in_config *c = config;
    if (!c->path)
        return tp_error_set(err, TP_CONFIG, "file input: path is required");
    int fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tp_error_set(err, TP_IO, "cannot open %s: %s", c->path, strerror(errno));
    int rc = tp_line_input_open(fd, 1, c->codec, c->max_line_bytes, c->max_meta_keys, in, err);
    if (rc)
        close(fd);
    return rc;
}

const struct tp_input_plugin tp_input_file = {
    .name = "file",
    .options = file_in_options,
    .config_size = sizeof(struct file_in_config),
    .open = file_in_open,
    .read = tp_line_input_read,
    .ack = NULL,
    .stop = tp_line_input_stop,
    .close = tp_line_input_close,
};
