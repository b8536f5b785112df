/* Line-oriented I/O (see lines.h). The reader fills a large buffer with
 * read(2) and hands out lines in place; poll(2) on the fd plus an eventfd lets
 * another thread interrupt a blocked read. The writer encodes a whole batch
 * into one buffer and writes it with one write(2), under one process-wide
 * lock (output and dead letter may share stdout); on a regular file a failed
 * write is cut back to the batch's start, so no torn record stays. */
#include "io/lines.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/json.h"
#include "core/log.h"

#define READ_CHUNK (256u * 1024u)
#define WRITE_CHUNK (1u << 20)
/* An input read returns after this many drops even without a message, so
 * drops of a long run of bad lines are counted promptly and not hoarded. */
#define MAX_DROPS_PER_READ 256

const char *const tp_line_codecs[] = {"json_lines", "lines", NULL};

int tp_line_reader_init(struct tp_line_reader *r, int fd, int own_fd, size_t max_line,
                        struct tp_error *err)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->own_fd = own_fd;
    r->max_line = max_line;
    r->cap = READ_CHUNK;
    r->buf = malloc(r->cap);
    r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!r->buf || r->wake_fd < 0) {
        int e = errno, status = r->buf ? TP_IO : TP_NOMEM;
        free(r->buf);
        if (r->wake_fd >= 0)
            close(r->wake_fd);
        r->buf = NULL;
        r->wake_fd = -1;
        return tp_error_set(err, status, "line reader: %s", strerror(e));
    }
    return TP_OK;
}

void tp_line_reader_free(struct tp_line_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    r->wake_fd = -1;
    if (r->own_fd && r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

void tp_line_reader_stop(struct tp_line_reader *r)
{
    __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
    uint64_t one = 1;
    if (write(r->wake_fd, &one, sizeof(one)) < 0) {
        /* the counter is saturated: a wake-up is already pending */
    }
}

/* TP_OK when the fd is readable (or at EOF/error), TP_AGAIN when not and
 * block is 0, TP_EOF on a stop request. */
static int wait_readable(struct tp_line_reader *r, int block, struct tp_error *err)
{
    struct pollfd pfd[2] = {{r->fd, POLLIN, 0}, {r->wake_fd, POLLIN, 0}};
    for (;;) {
        int n = poll(pfd, 2, block ? -1 : 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return tp_error_set(err, TP_IO, "poll: %s", strerror(errno));
        }
        if (pfd[1].revents || __atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
            return TP_EOF;
        return n == 0 ? TP_AGAIN : TP_OK;
    }
}

/* Makes room at the end of the buffer: moves the partial line to the front
 * and grows the buffer when the partial line fills it. */
static int make_room(struct tp_line_reader *r, struct tp_error *err)
{
    if (r->start > 0) {
        size_t n = r->end - r->start;
        memmove(r->buf, r->buf + r->start, n);
        r->end = n;
        r->scanned -= r->start;
        r->start = 0;
    }
    if (r->end == r->cap) {
        size_t cap = r->cap * 2;
        char *p = realloc(r->buf, cap);
        if (!p)
            return tp_error_set(err, TP_NOMEM, "out of memory for a %zu byte line", r->end);
        r->buf = p;
        r->cap = cap;
    }
    return TP_OK;
}

static void strip_cr(const char **line, size_t *len)
{
    if (*len && (*line)[*len - 1] == '\r')
        (*len)--;
}

int tp_line_reader_next(struct tp_line_reader *r, int block, const char **line, size_t *len,
                        struct tp_error *err)
{
    for (;;) {
        if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
            return TP_EOF;
        char *nl = memchr(r->buf + r->scanned, '\n', r->end - r->scanned);
        if (nl) {
            size_t pos = (size_t)(nl - r->buf), n = pos - r->start;
            int skipped = r->skipping || n > r->max_line;
            *line = r->buf + r->start;
            *len = n;
            r->start = r->scanned = pos + 1;
            r->skipping = 0;
            r->line_no++;
            if (skipped)
                return TP_PARSE;
            strip_cr(line, len);
            return TP_OK;
        }
        r->scanned = r->end;
        if (!r->skipping && r->end - r->start > r->max_line)
            r->skipping = 1;
        if (r->skipping) /* keep nothing of an over-long line */
            r->start = r->scanned = r->end = 0;
        if (r->eof) {
            if (r->skipping) {
                r->skipping = 0;
                r->line_no++;
                return TP_PARSE;
            }
            if (r->end == r->start)
                return TP_EOF;
            *line = r->buf + r->start; /* last line without a newline */
            *len = r->end - r->start;
            r->start = r->scanned = r->end;
            r->line_no++;
            strip_cr(line, len);
            return TP_OK;
        }
        int rc = make_room(r, err);
        if (rc)
            return rc;
        rc = wait_readable(r, block, err);
        if (rc)
            return rc;
        ssize_t got = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!block)
                    return TP_AGAIN;
                continue;
            }
            return tp_error_set(err, TP_IO, "read: %s", strerror(errno));
        }
        if (got == 0)
            r->eof = 1;
        r->end += (size_t)got;
    }
}

/* ---- line inputs ---- */

struct line_input {
    struct tp_line_reader r;
    int raw; /* codec "lines" */
    uint32_t max_meta_keys;
};

int tp_line_input_open(int fd, int own_fd, const char *codec, int64_t max_line,
                       int64_t max_meta_keys, void **out, struct tp_error *err)
{
    int raw = 0;
    if (codec && strcmp(codec, "lines") == 0)
        raw = 1;
    else if (codec && strcmp(codec, "json_lines") != 0)
        return tp_error_set(err, TP_CONFIG, "unknown codec \"%s\" (valid: json_lines, lines)",
                            codec);
    struct line_input *in = calloc(1, sizeof(*in));
    if (!in)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    int rc = tp_line_reader_init(&in->r, fd, own_fd, (size_t)max_line, err);
    if (rc) {
        free(in);
        return rc;
    }
    in->raw = raw;
    in->max_meta_keys = (uint32_t)max_meta_keys;
    *out = in;
    return TP_OK;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

int tp_line_input_read(void *arg, struct tp_batch *batch, size_t max, struct tp_drops *drops,
                       struct tp_error *rerr)
{
    struct line_input *in = arg;
    size_t got = 0, bad = 0;
    struct tp_error err = {0};
    while (got < max && bad < MAX_DROPS_PER_READ) {
        const char *line;
        size_t len;
        /* block only while nothing at all has been gathered */
        int rc = tp_line_reader_next(&in->r, got == 0 && bad == 0, &line, &len, &err);
        if (rc == TP_AGAIN)
            break;
        if (rc == TP_EOF)
            return TP_EOF;
        unsigned long long no = (unsigned long long)in->r.line_no;
        if (rc == TP_PARSE) {
            tp_drops_add(drops, TP_DROP_INVALID_INPUT, "input",
                         "line %llu: longer than max_line_bytes (%zu)", no, in->r.max_line);
            bad++;
            continue;
        }
        if (rc) {
            *rerr = err;
            return rc;
        }
        if (no == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
            line += 3; /* UTF-8 byte order mark */
            len -= 3;
        }
        if (is_blank(line, len))
            continue;
        struct tp_msg *m = in->raw ? tp_msg_new_payload(line, len) : tp_msg_new();
        if (!m)
            return tp_error_set(rerr, TP_NOMEM, "out of memory");
        if (!in->raw) {
            rc = tp_json_decode_envelope(line, len, m, in->max_meta_keys, &err);
            if (rc == TP_PARSE) {
                tp_msg_free(m);
                tp_drops_add(drops, TP_DROP_INVALID_INPUT, "input", "line %llu: %s", no, err.msg);
                tp_drops_set_raw(drops, line, len); /* the dead letter keeps the line */
                bad++;
                continue;
            }
        }
        if (rc) {
            tp_msg_free(m);
            return tp_error_set(rerr, rc, "line %llu: out of memory", no);
        }
        m->input_line = no;
        if (tp_batch_push(batch, m)) /* m freed */
            return tp_error_set(rerr, TP_NOMEM, "out of memory");
        got++;
    }
    return TP_OK;
}

void tp_line_input_stop(void *in)
{
    tp_line_reader_stop(&((struct line_input *)in)->r);
}

void tp_line_input_close(void *arg)
{
    struct line_input *in = arg;
    if (!in)
        return;
    tp_line_reader_free(&in->r);
    free(in);
}

/* ---- envelope writer ---- */

/* Every line writer writes under this lock: two writers on one sink (output
 * and dead letter both on stdout, from the writer and a worker thread) would
 * otherwise interleave their write(2) calls into torn lines, as a write to a
 * pipe is atomic only up to PIPE_BUF bytes and may also be partial. */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;

void tp_line_writer_init(struct tp_line_writer *w, int fd, int own_fd, const char *name)
{
    w->fd = fd;
    w->own_fd = own_fd;
    w->name = name;
    struct stat st;
    w->regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    tp_buf_init(&w->buf);
}

static int write_all(struct tp_line_writer *w, struct tp_error *err)
{
    const char *p = w->buf.data;
    size_t n = w->buf.len;
    while (n) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = {w->fd, POLLOUT, 0};
                poll(&pfd, 1, -1);
                continue;
            }
            return tp_error_set(err, TP_IO, "%s: write: %s", w->name, strerror(errno));
        }
        p += k;
        n -= (size_t)k;
    }
    tp_buf_reset(&w->buf);
    return TP_OK;
}

/* A regular file whose write failed (disk full, ...) is cut back to `start`,
 * the end of the last whole batch: the failed batch is not acknowledged and
 * comes again, and no partial record is left for the next one to glue onto. */
static void cut_back(struct tp_line_writer *w, off_t start)
{
    if (!w->regular || start < 0)
        return;
    if (ftruncate(w->fd, start) != 0 || lseek(w->fd, start, SEEK_SET) < 0)
        tp_log(TP_LOG_ERROR, "%s: cannot cut a failed write back to %lld bytes: %s", w->name,
               (long long)start, strerror(errno));
}

int tp_line_writer_write(struct tp_line_writer *w, struct tp_msg *const *msgs, size_t n,
                         struct tp_error *err)
{
    int rc = TP_OK;
    tp_buf_reset(&w->buf);
    pthread_mutex_lock(&sink_lock);
    off_t start = w->regular ? lseek(w->fd, 0, SEEK_END) : -1;
    for (size_t i = 0; rc == TP_OK && i < n; i++) {
        if (tp_json_encode_envelope(msgs[i], &w->buf) || tp_buf_putc(&w->buf, '\n'))
            rc = tp_error_set(err, TP_NOMEM, "%s: out of memory", w->name);
        else if (w->buf.len >= WRITE_CHUNK)
            rc = write_all(w, err);
    }
    if (rc == TP_NOMEM) /* nothing torn yet: what was written ends with whole records */
        tp_buf_reset(&w->buf);
    rc = rc ? rc : write_all(w, err);
    if (rc && rc != TP_NOMEM)
        cut_back(w, start);
    pthread_mutex_unlock(&sink_lock);
    if (w->buf.cap > 4 * WRITE_CHUNK) /* do not keep a huge buffer after a huge message */
        tp_buf_free(&w->buf);
    return rc;
}

int tp_line_writer_cut_torn_tail(struct tp_line_writer *w, struct tp_error *err)
{
    if (!w->regular)
        return TP_OK;
    off_t end = lseek(w->fd, 0, SEEK_END), keep = end;
    char buf[4096];
    while (keep > 0) { /* back to just after the last '\n' */
        off_t from = keep > (off_t)sizeof(buf) ? keep - (off_t)sizeof(buf) : 0;
        ssize_t k = pread(w->fd, buf, (size_t)(keep - from), from);
        if (k != keep - from)
            return tp_error_set(err, TP_IO, "%s: read: %s", w->name,
                                k < 0 ? strerror(errno) : "short read");
        ssize_t i = k;
        while (i > 0 && buf[i - 1] != '\n')
            i--;
        if (i > 0) {
            keep = from + i;
            break;
        }
        keep = from;
    }
    if (keep == end)
        return TP_OK;
    if (ftruncate(w->fd, keep) != 0)
        return tp_error_set(err, TP_IO, "%s: cannot remove a partial last record: %s", w->name,
                            strerror(errno));
    tp_log(TP_LOG_WARN,
           "%s: removed a partial last record (%lld bytes without a line end, left by an "
           "interrupted earlier write) before appending",
           w->name, (long long)(end - keep));
    return TP_OK;
}

void tp_line_writer_close(struct tp_line_writer *w)
{
    tp_buf_free(&w->buf);
    if (w->own_fd && w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}
