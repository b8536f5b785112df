/* `tagproc [run] -c CONFIG`: validates the config (the validation lint uses,
 * every finding printed once in the configured log format), runs the
 * pipeline, and handles signals (blocked from the first moment, read through
 * a signalfd) on a dedicated thread that asks the pipeline to drain, so
 * SIGINT/SIGTERM end with exit code 0 and nothing lost. SIGHUP and --watch
 * reload; systemd hears READY/RELOADING/STOPPING/WATCHDOG. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "config/override.h"
#include "core/log.h"
#include "pipeline/pipeline.h"
#include "core/stats.h"
#include "ops/lint.h"
#include "core/metrics.h"
#include "ops/sdnotify.h"
#include "ops/serve.h"

#define MAX_SETS 64

struct run_args {
    const char *config, *stats;
    int watch;
    char *sets[MAX_SETS];
    size_t nsets;
};

struct signal_ctx {
    struct tp_pipeline *pipeline;
    const struct run_args *args;
    pthread_mutex_t reload_lock; /* SIGHUP and --watch reload one at a time */
    int signal_fd;               /* signalfd of the handled signals */
    int stop_fd;                 /* eventfd: ends the signal and watch threads */
};

/* The signals tagproc handles, blocked in every thread from the start of
 * `run` (before the config is read, so a SIGHUP or SIGTERM in the first
 * milliseconds waits instead of killing the process) and read by one thread
 * through a signalfd. SIGUSR1/SIGUSR2 are taken too, only to be ignored: an
 * external one must neither kill tagproc nor disturb the others. */
static void handled_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
}

/* Loads CONFIG with the --set overrides and validates it, logging every
 * finding once (`prefix` before each). Returns the config when it can run.
 * At start, rule findings do not stop it: a config written for the
 * reference must run unchanged, and what they find (e.g. a literal breaking
 * the topic rules) is a per-message drop there (SPEC 3.5). A reload is
 * stricter: any error keeps the running configuration. */
static struct tp_config *load_valid(const struct run_args *a, const char *prefix, int at_start)
{
    struct tp_error err = {0};
    struct tp_config *cfg = NULL;
    char text[1024];
    if (tp_config_load_with_overrides(a->config, a->sets, a->nsets, &cfg, &err) != 0) {
        tp_error_format(&err, text, sizeof(text));
        tp_log(TP_LOG_ERROR, "%s%s", prefix, text);
        return NULL;
    }
    if (at_start) /* findings already in the configured log format */
        tp_pipeline_apply_logger(cfg);
    struct tp_lint_report rep = {0};
    if (tp_lint_config(cfg, TP_LINT_COMPILE, &rep) != TP_OK) {
        tp_log(TP_LOG_ERROR, "%s%s: out of memory: cannot check the configuration", prefix,
               a->config);
        tp_lint_report_free(&rep);
        tp_config_free(cfg);
        return NULL;
    }
    for (size_t i = 0; i < rep.n; i++)
        if (rep.v[i].blocks_run || (!at_start && rep.v[i].severity == TP_LINT_ERROR))
            tp_log(TP_LOG_ERROR, "%s%s", prefix, rep.v[i].text);
        else if (at_start || rep.v[i].severity == TP_LINT_ERROR)
            tp_log(TP_LOG_WARN, "lint: %s", rep.v[i].text);
    int blocking = at_start ? rep.blocking : rep.errors;
    tp_lint_report_free(&rep);
    if (blocking) {
        tp_config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Reads and validates CONFIG and publishes it; on any problem the running chain stays. */
static void reload_config(struct signal_ctx *sc, const char *why)
{
    pthread_mutex_lock(&sc->reload_lock);
    tp_sd_reloading();
    tp_log(TP_LOG_INFO, "reload (%s): reading %s", why, sc->args->config);
    struct tp_config *cfg = NULL;
    if (strcmp(sc->args->config, "-") == 0)
        tp_log(TP_LOG_ERROR, "reload rejected: the configuration came from standard input");
    else
        cfg = load_valid(sc->args, "reload rejected, keeping the running configuration: ", 0);
    if (!cfg) {
        tp_metrics_reload(tp_pipeline_metrics(sc->pipeline), 0);
    } else {
        struct tp_error err = {0};
        if (tp_pipeline_reload(sc->pipeline, cfg, &err) != 0) { /* cfg taken */
            char text[1024];
            tp_error_format(&err, text, sizeof(text));
            tp_log(TP_LOG_ERROR, "reload rejected, keeping the running configuration: %s", text);
        }
    }
    tp_sd_ready();
    pthread_mutex_unlock(&sc->reload_lock);
}

static void *signal_main(void *arg)
{
    pthread_setname_np(pthread_self(), "tp-signal");
    struct signal_ctx *sc = arg;
    uint64_t keepalive_us = tp_sd_watchdog_interval_us();
    int timeout_ms = keepalive_us ? (int)(keepalive_us / 1000) + 1 : -1;
    for (;;) {
        if (keepalive_us)
            tp_sd_watchdog();
        struct pollfd pfd[2] = {{sc->signal_fd, POLLIN, 0}, {sc->stop_fd, POLLIN, 0}};
        if (poll(pfd, 2, timeout_ms) <= 0)
            continue;
        if (pfd[1].revents) /* the pipeline finished */
            return NULL;
        struct signalfd_siginfo si;
        if (read(sc->signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
            continue;
        int sig = (int)si.ssi_signo;
        if (sig == SIGHUP) {
            reload_config(sc, "SIGHUP");
        } else if (sig == SIGUSR1 || sig == SIGUSR2) {
            tp_log(TP_LOG_WARN, "received %s from pid %u: ignored", strsignal(sig), si.ssi_pid);
        } else {
            tp_log(TP_LOG_INFO, "received %s: stopping input, draining", strsignal(sig));
            tp_sd_stopping();
            tp_pipeline_stop(sc->pipeline);
        }
    }
}

/* --watch: inotify on the config's directory (editors replace files); a
 * burst of events gives one reload once the directory is quiet for 100 ms. */
static void *watch_main(void *arg)
{
    pthread_setname_np(pthread_self(), "tp-watch");
    struct signal_ctx *sc = arg;
    char *dup_dir = strdup(sc->args->config), *dup_base = strdup(sc->args->config);
    int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (!dup_dir || !dup_base || fd < 0 ||
        inotify_add_watch(fd, dirname(dup_dir), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
        tp_log(TP_LOG_ERROR, "--watch: cannot watch %s", sc->args->config);
        goto out;
    }
    const char *base = basename(dup_base);
    int pending = 0;
    for (;;) {
        struct pollfd pfd[2] = {{fd, POLLIN, 0}, {sc->stop_fd, POLLIN, 0}};
        int n = poll(pfd, 2, pending ? 100 : -1);
        if (n < 0)
            continue;
        if (pfd[1].revents)
            break;
        if (n == 0 && pending) {
            pending = 0;
            reload_config(sc, "config file changed");
            continue;
        }
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t len;
        while ((len = read(fd, buf, sizeof(buf))) > 0)
            for (char *q = buf; q < buf + len;) {
                const struct inotify_event *ev = (const struct inotify_event *)q;
                if (ev->len && strcmp(ev->name, base) == 0)
                    pending = 1;
                q += sizeof(*ev) + ev->len;
            }
    }
out:
    if (fd >= 0)
        close(fd);
    free(dup_dir);
    free(dup_base);
    return NULL;
}

/* Logs why the run failed; a configuration problem gets its position and
 * exit status 2, anything else (an unreachable broker, a fatal output) 1. */
static int run_failed(const struct tp_config *cfg, struct tp_error *err, int rc)
{
    char text[1024];
    if (rc == TP_CONFIG)
        tp_pipeline_error_locate(cfg, err);
    tp_error_format(err, text, sizeof(text));
    tp_log(TP_LOG_ERROR, "%s", text[0] ? text : tp_strerror(rc));
    return rc == TP_CONFIG ? 2 : 1;
}

/* Signals are already blocked (tp_cli_run_main). */
static int run_pipeline(const struct run_args *a)
{
    struct tp_error err = {0};
    struct tp_pipeline *p = NULL;
    int code = 0, rc;

    struct tp_config *cfg = load_valid(a, "", 1);
    if (!cfg)
        return 2;
    struct signal_ctx sc = {.args = a, .signal_fd = -1, .stop_fd = -1};
    sigset_t set;
    handled_signals(&set);
    sc.signal_fd = signalfd(-1, &set, SFD_CLOEXEC);
    sc.stop_fd = eventfd(0, EFD_CLOEXEC);
    if (sc.signal_fd < 0 || sc.stop_fd < 0) {
        tp_log(TP_LOG_ERROR, "cannot set up signal handling: %s", strerror(errno));
        code = 1;
        goto out_fds;
    }
    pthread_mutex_init(&sc.reload_lock, NULL);
    struct tp_pipeline_opts opts = {.rule_metrics = tp_cli_rule_metrics()};
    struct tp_serve *serve = NULL;
    if ((rc = tp_pipeline_new(cfg, &opts, &p, &err)) != TP_OK ||
        (rc = tp_serve_attach(p, cfg, &serve, &err)) != TP_OK) {
        code = run_failed(cfg, &err, rc);
        tp_pipeline_free(p);
        goto out_lock;
    }
    sc.pipeline = p;
    pthread_t sig_thread;
    int sig_started = pthread_create(&sig_thread, NULL, signal_main, &sc) == 0;
    pthread_t watch_thread;
    int watch_started = a->watch && pthread_create(&watch_thread, NULL, watch_main, &sc) == 0;

    tp_sd_ready();
    if ((rc = tp_pipeline_run(p, &err)) != TP_OK)
        code = run_failed(cfg, &err, rc);
    tp_sd_stopping();
    uint64_t one = 1; /* ends both threads: the eventfd stays readable */
    if (write(sc.stop_fd, &one, sizeof(one)) != sizeof(one))
        tp_log(TP_LOG_WARN, "cannot stop the signal thread: %s", strerror(errno));
    if (watch_started)
        pthread_join(watch_thread, NULL);
    if (sig_started)
        pthread_join(sig_thread, NULL);
    tp_serve_free(serve);
    struct tp_stats counts; /* the pipeline's, kept past it for --stats */
    tp_stats_snapshot(tp_metrics_stats(tp_pipeline_metrics(p)), &counts);
    tp_pipeline_free(p);
    if (a->stats && tp_stats_write_file(&counts, a->stats)) {
        tp_log(TP_LOG_ERROR, "cannot write stats file %s", a->stats);
        code = code ? code : 1;
    }
out_lock:
    pthread_mutex_destroy(&sc.reload_lock);
out_fds:
    if (sc.stop_fd >= 0)
        close(sc.stop_fd);
    if (sc.signal_fd >= 0)
        close(sc.signal_fd);
    tp_config_free(cfg);
    return code;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tagproc: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(tagproc --help for the options, tagproc help for the commands)\n", stderr);
    return 2;
}

/* A bare argument is the config when it looks like one. */
static int looks_like_config(const char *arg)
{
    size_t n = strlen(arg);
    return access(arg, R_OK) == 0 || (n > 5 && strcmp(arg + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(arg + n - 4, ".yml") == 0);
}

int tp_cli_run_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 'S'},
        {"stats", required_argument, NULL, 's'},  {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {"watch", no_argument, NULL, 'w'},        {NULL, 0, NULL, 0},
    };
    /* Before anything else: the handled signals wait for the signal thread
     * (threads started later inherit the mask); SIGPIPE and SIGXFSZ (a file
     * size limit) are write errors, not a reason to die. */
    sigset_t set;
    handled_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    struct run_args a = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a.config = optarg;
            break;
        case 'S':
            if (a.nsets == MAX_SETS)
                return usage_error("too many --set options (at most %d)", MAX_SETS);
            a.sets[a.nsets++] = optarg;
            break;
        case 's':
            a.stats = optarg;
            break;
        case 'w':
            a.watch = 1;
            break;
        case 'l': {
            int level = tp_log_level_parse(optarg);
            if (level < 0)
                return usage_error("--log-level: unknown level \"%s\"", optarg);
            tp_log_set_level((enum tp_log_level)level);
            break;
        }
        case 'h':
            tp_cli_print_help(stdout, tp_cli_find("run"));
            return 0;
        case 'V':
            printf("tagproc %s (QuickJS 2021-03-27)\n", TP_VERSION);
            return 0;
        default:
            return usage_error("invalid option");
        }
    }
    if (!a.config && optind == argc - 1 && looks_like_config(argv[optind]))
        a.config = argv[optind++];
    if (optind < argc) {
        if (a.config)
            return usage_error("unexpected argument \"%s\"", argv[optind]);
        return usage_error("unexpected argument \"%s\" (did you mean -c %s?)", argv[optind],
                           argv[optind]);
    }
    if (!a.config)
        return usage_error("missing -c CONFIG");
    if (a.watch && strcmp(a.config, "-") == 0)
        return usage_error("--watch needs a config file, not -c - (standard input)");
    return run_pipeline(&a);
}
