/* `tagproc tap [--url URL] [--topic PATTERN] [--drops]`: one HTTP/1.0 GET of
 * /api/tap on a running instance, then each SSE `data:` line printed as one
 * JSON line on stdout; lines the server had to drop for a slow reader are
 * reported on stderr. Basic auth comes from the URL (http://user:pass@host).
 * SIGINT/SIGTERM end it cleanly: stdout only ever holds whole lines when it
 * exits, so `timeout 3 tagproc tap > f` never leaves a cut-off last line. */
#include "ops/tap.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* SIGINT/SIGTERM interrupt the blocking read (no SA_RESTART) and end the
 * stream loop after the current line. */
static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void url_encode(struct tp_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-_.~", c))
            tp_buf_putc(b, (char)c);
        else
            tp_buf_printf(b, "%%%02X", c);
    }
}

/* Splits http://[user:pass@]host[:port][/...] into its parts. */
static int parse_url(const char *url, char *userinfo, size_t ui_size, char *host, size_t h_size,
                     char *port, size_t p_size)
{
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *s = url + 7, *end = s + strcspn(s, "/");
    const char *at = memchr(s, '@', (size_t)(end - s));
    userinfo[0] = '\0';
    if (at) {
        if ((size_t)(at - s) >= ui_size)
            return -1;
        memcpy(userinfo, s, (size_t)(at - s));
        userinfo[at - s] = '\0';
        s = at + 1;
    }
    const char *colon = memchr(s, ':', (size_t)(end - s));
    const char *hend = colon ? colon : end;
    if (hend == s || (size_t)(hend - s) >= h_size)
        return -1;
    memcpy(host, s, (size_t)(hend - s));
    host[hend - s] = '\0';
    snprintf(port, p_size, "%.*s", colon ? (int)(end - colon - 1) : 4, colon ? colon + 1 : "4195");
    return port[0] ? 0 : -1;
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        fprintf(stderr, "tagproc tap: %s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "tagproc tap: cannot connect to %s:%s: %s\n", host, port, strerror(errno));
    return fd;
}

/* Handles one SSE line; `event` is the pending event name. */
static void sse_line(const char *line, char *event, size_t event_size)
{
    if (strncmp(line, "event: ", 7) == 0)
        snprintf(event, event_size, "%s", line + 7);
    else if (strncmp(line, "data: ", 6) == 0) {
        if (strcmp(event, "lost") == 0) {
            fprintf(stderr, "tagproc tap: the server dropped lines for this slow reader: %s\n",
                    line + 6);
        } else {
            fputs(line + 6, stdout);
            fputc('\n', stdout);
        }
    } else if (line[0] == '\0') {
        event[0] = '\0';
        fflush(stdout);
    }
}

/* Reads the response: status line and headers, then the event stream. */
static int read_stream(int fd)
{
    struct tp_buf in;
    tp_buf_init(&in);
    int headers = 1, rc = 0;
    char event[32] = "";
    char chunk[16384];
    ssize_t n;
    while (!stop_requested &&
           ((n = read(fd, chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))) {
        if (n < 0)
            continue;
        tp_buf_append(&in, chunk, (size_t)n);
        char *start = in.data, *nl;
        while (in.data && (nl = memchr(start, '\n', in.len - (size_t)(start - in.data)))) {
            *nl = '\0';
            if (nl > start && nl[-1] == '\r')
                nl[-1] = '\0';
            if (headers && start == in.data && strncmp(start, "HTTP/", 5) == 0 &&
                !strstr(start, " 200")) {
                fprintf(stderr, "tagproc tap: server answered \"%s\" (is `ui.enabled` on?)\n",
                        start);
                tp_buf_free(&in);
                return 1;
            }
            if (headers) {
                if (start[0] == '\0')
                    headers = 0;
            } else
                sse_line(start, event, sizeof(event));
            start = nl + 1;
        }
        size_t rest = in.len - (size_t)(start - in.data);
        memmove(in.data, start, rest);
        in.len = rest;
        in.data[rest] = '\0';
    }
    if (headers && !stop_requested) {
        fprintf(stderr, "tagproc tap: the connection closed before a response\n");
        rc = 1;
    }
    fflush(stdout);
    tp_buf_free(&in);
    return rc;
}

int tp_tap_main(int argc, char **argv, void (*usage)(FILE *out))
{
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"topic", required_argument, NULL, 't'},
        {"drops", no_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    const char *url = "http://127.0.0.1:4195", *topic = NULL;
    int drops = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'u')
            url = optarg;
        else if (c == 't')
            topic = optarg;
        else if (c == 'd')
            drops = 1;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tagproc tap: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    char userinfo[256], host[256], port[16];
    if (parse_url(url, userinfo, sizeof(userinfo), host, sizeof(host), port, sizeof(port))) {
        fprintf(stderr, "tagproc tap: --url: expected http://HOST:PORT, got \"%s\"\n", url);
        return 2;
    }
    struct tp_buf req;
    tp_buf_init(&req);
    tp_buf_puts(&req, "GET /api/tap?drops=");
    tp_buf_puts(&req, drops ? "1" : "0");
    if (topic) {
        tp_buf_puts(&req, "&topic=");
        url_encode(&req, topic);
    }
    tp_buf_printf(&req, " HTTP/1.0\r\nHost: %s:%s\r\nAccept: text/event-stream\r\n", host, port);
    if (userinfo[0]) {
        tp_buf_puts(&req, "Authorization: Basic ");
        tp_buf_base64(&req, userinfo, strlen(userinfo));
        tp_buf_puts(&req, "\r\n");
    }
    tp_buf_puts(&req, "\r\n");
    catch_stop_signals();
    int fd = connect_to(host, port);
    int rc = 1;
    if (fd >= 0 && req.data) {
        if (write(fd, req.data, req.len) == (ssize_t)req.len)
            rc = read_stream(fd);
        else
            fprintf(stderr, "tagproc tap: cannot send the request: %s\n", strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    tp_buf_free(&req);
    return rc;
}
