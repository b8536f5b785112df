/* Line-oriented I/O shared by the stdin/file inputs and the stdout/file
 * outputs: a big-buffer line reader that a stop request can interrupt, the
 * JSON Lines / raw-lines input plugin body, and a batch envelope writer. */
#ifndef TP_IO_LINES_H
#define TP_IO_LINES_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/drop.h"
#include "core/error.h"
#include "core/json.h"
#include "core/msg.h"

#define TP_LINES_DEFAULT_MAX "16777216"

/* The options every line-based input shares, for a config struct with
 * `char *codec`, `int64_t max_line_bytes` and `int64_t max_meta_keys` members
 * (their ranges are checked by the table). */
#define TP_LINE_FORMAT_OPTIONS(T)                                                                  \
    TP_OPTION(T, codec, "codec", TP_OPT_STRING, "json_lines",                                      \
              "json_lines: one {\"payload\": ..., \"meta\": {...}} object per line; "              \
              "lines: each line is a raw payload without metadata",                                \
              .choices = tp_line_codecs),                                                          \
        TP_OPTION(T, max_line_bytes, "max_line_bytes", TP_OPT_INT, TP_LINES_DEFAULT_MAX,           \
                  "longest accepted line in bytes; longer lines are dropped as invalid_input",     \
                  .min = 1, .max = INT64_MAX),                                                     \
        TP_OPTION(T, max_meta_keys, "max_meta_keys", TP_OPT_INT, TP_JSON_MAX_META_KEYS_TEXT,       \
                  "most metadata entries accepted in one json_lines envelope; a line with more "   \
                  "is dropped as invalid_input",                                                   \
                  .min = 1, .max = UINT32_MAX)

struct tp_line_reader {
    int fd;
    int own_fd;  /* close fd on free */
    int wake_fd; /* eventfd written by tp_line_reader_stop */
    int stop;    /* atomic */
    int eof;
    int skipping; /* discarding the rest of an over-long line */
    char *buf;
    size_t cap, start, end, scanned; /* data is buf[start, end); no '\n' in [start, scanned) */
    size_t max_line;
    uint64_t line_no; /* number of the last line returned */
};

/* Prepares r to read fd (own_fd: close it in tp_line_reader_free). */
int tp_line_reader_init(struct tp_line_reader *r, int fd, int own_fd, size_t max_line,
                        struct tp_error *err);
void tp_line_reader_free(struct tp_line_reader *r);
/* Returns TP_OK with the next line (without "\n" or "\r\n"; valid until the next
 * call) and r->line_no set; TP_EOF at end of input or after a stop; TP_AGAIN
 * when block is 0 and no whole line is buffered or readable now; TP_PARSE for a
 * line longer than max_line (skipped; r->line_no is its number); TP_IO on a
 * read error (err filled). */
int tp_line_reader_next(struct tp_line_reader *r, int block, const char **line, size_t *len,
                        struct tp_error *err);
/* Thread-safe: makes a blocked tp_line_reader_next return TP_EOF. */
void tp_line_reader_stop(struct tp_line_reader *r);

/* ---- the stdin / file input body ---- */

enum tp_line_codec { TP_CODEC_JSON_LINES, TP_CODEC_LINES };

extern const char *const tp_line_codecs[]; /* {"json_lines", "lines", NULL} */

/* Opens a line input on fd (own_fd: close it when done). codec: a name from
 * tp_line_codecs (NULL: json_lines); max_line > 0, max_meta_keys > 0. *out is
 * freed by tp_line_input_close. */
int tp_line_input_open(int fd, int own_fd, const char *codec, int64_t max_line,
                       int64_t max_meta_keys, void **out, struct tp_error *err);
/* tp_input_plugin callbacks shared by the stdin and file inputs. */
int tp_line_input_read(void *in, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                       struct tp_error *err);
void tp_line_input_stop(void *in);
void tp_line_input_close(void *in);

/* ---- envelope writer for stdout / file ---- */

struct tp_line_writer {
    int fd;
    int own_fd;
    int regular;      /* a regular file: a failed write is cut back (no torn record) */
    const char *name; /* for messages: "stdout" or the path */
    struct tp_buf buf;
};

void tp_line_writer_init(struct tp_line_writer *w, int fd, int own_fd, const char *name);
/* Encodes msgs as envelope lines and writes them with as few write(2) calls as
 * possible (one per batch unless the batch is very large), whole records only:
 * writers never interleave (one lock for all), and on a regular file a failed
 * write is truncated back to where the batch began. */
int tp_line_writer_write(struct tp_line_writer *w, struct tp_msg *const *msgs, size_t n,
                         struct tp_error *err);
/* On a regular file: removes a last line without its '\n' (left by a crash or
 * a full disk of an earlier run), so that appending cannot glue onto it. */
int tp_line_writer_cut_torn_tail(struct tp_line_writer *w, struct tp_error *err);
void tp_line_writer_close(struct tp_line_writer *w);

#endif
