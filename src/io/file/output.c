/* The file output: the same JSON Lines envelopes as stdout, written to a named
 * file, truncated by default or appended to (mode). */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/plugin.h"
#include "io/lines.h"

struct file_out_config {
    char *path;
    char *mode;
};

static const char *const file_modes[] = {"truncate", "append", NULL};

static const struct tp_option file_out_options[] = {
    TP_OPTION(struct file_out_config, path, "path", TP_OPT_STRING, NULL,
              "file to write (created when missing)", .flags = TP_OPT_REQUIRED | TP_OPT_IN_DIR),
    TP_OPTION(struct file_out_config, mode, "mode", TP_OPT_STRING, "truncate",
              "truncate: start the file empty; append: add to its end", .choices = file_modes),
    {0},
};

struct file_out {
    struct tp_line_writer w;
    char *path;
};

static int file_out_open(const void *config, void **out, struct tp_error *err)
{
    const struct file_out_config *c = config;
    if (!c->path)
        return tp_error_set(err, TP_CONFIG, "file output: path is required");
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
    if (!c->mode || strcmp(c->mode, "truncate") == 0)
        flags |= O_TRUNC;
    else if (strcmp(c->mode, "append") == 0)
        flags = (flags & ~O_WRONLY) | O_RDWR | O_APPEND; /* reads its tail (torn record?) */
    else
        return tp_error_set(err, TP_CONFIG, "file output: unknown mode \"%s\" (valid: %s, %s)",
                            c->mode, file_modes[0], file_modes[1]);
    struct file_out *f = calloc(1, sizeof(*f));
    char *path = strdup(c->path);
    if (!f || !path) {
        free(f);
        free(path);
        return tp_error_set(err, TP_NOMEM, "out of memory");
    }
    int fd = open(c->path, flags, 0644);
    if (fd < 0) {
        int e = errno;
        free(f);
        free(path);
        return tp_error_set(err, TP_IO, "cannot open %s: %s", c->path, strerror(e));
    }
    f->path = path;
    tp_line_writer_init(&f->w, fd, 1, f->path);
    int rc = (flags & O_APPEND) ? tp_line_writer_cut_torn_tail(&f->w, err) : TP_OK;
    if (rc) {
        tp_line_writer_close(&f->w);
        free(f->path);
        free(f);
        return rc;
    }
    *out = f;
    return TP_OK;
}

/* Synchronous: the batch is written (one write(2) per batch) and completed
 * before submit returns. */
static int file_out_submit(void *out, struct tp_out_batch *b)
{
    struct tp_error err = {0};
    int rc = tp_line_writer_write(&((struct file_out *)out)->w, b->msgs, b->n, &err);
    tp_out_batch_complete(b, rc, &err);
    return rc;
}

static void file_out_close(void *out)
{
    struct file_out *f = out;
    if (!f)
        return;
    tp_line_writer_close(&f->w);
    free(f->path);
    free(f);
}

const struct tp_output_plugin tp_output_file = {
    .name = "file",
    .options = file_out_options,
    .config_size = sizeof(struct file_out_config),
    .open = file_out_open,
    .submit = file_out_submit,
    .close = file_out_close,
};
