/* `tagproc [run] -c CONFIG`: validates the config (the validation lint uses,
 * every finding printed once in the configured log format), runs the
 * pipeline, and handles signals on a dedicated thread that asks the pipeline
 * to drain, so SIGINT/SIGTERM end with exit code 0 and nothing lost. SIGHUP
 * and --watch reload; systemd hears READY/RELOADING/STOPPING/WATCHDOG. */
#include "cli.h"

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
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "config/override.h"
#include "core/log.h"
#include "core/pipeline.h"
#include "core/stats.h"
#include "ops/lint.h"
#include "ops/metrics.h"
#include "ops/sdnotify.h"

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
    sigset_t set;
    pthread_mutex_t reload_lock; /* SIGHUP and --watch reload one at a time */
    int stop_fd;                 /* eventfd: ends the watch thread */
};

/* The config's own logger settings, before anything is printed, so that
 * the validation findings already come in the configured format. */
static void apply_logger_settings(const struct tp_config *cfg)
{
    const struct tp_node *logger = tp_node_get(cfg->root, "logger");
    const struct tp_node *format = tp_node_get(logger, "format");
    const struct tp_node *level = tp_node_get(logger, "level");
    if (format && format->type == TP_NODE_SCALAR)
        tp_log_set_json(strcmp(format->value, "json") == 0);
    if (level && level->type == TP_NODE_SCALAR && tp_log_get_level() == TP_LOG_INFO &&
        tp_log_level_parse(level->value) >= 0)
        tp_log_set_level((enum tp_log_level)tp_log_level_parse(level->value));
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
    if (at_start)
        apply_logger_settings(cfg);
    struct tp_lint_report rep = {0};
    tp_lint_config(cfg, TP_LINT_COMPILE, &rep);
    for (size_t i = 0; i < rep.n; i++)
        if (rep.v[i].blocks_run || (!at_start && rep.v[i].severity == TP_LINT_ERROR))
            tp_log(TP_LOG_ERROR, "%s%s", prefix, rep.v[i].text);
        else if (rep.v[i].severity == TP_LINT_ERROR)
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
        tp_metrics_reload(0);
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
    struct signal_ctx *sc = arg;
    uint64_t keepalive_us = tp_sd_watchdog_interval_us();
    struct timespec tick = {(time_t)(keepalive_us / 1000000),
                            (long)(keepalive_us % 1000000) * 1000};
    for (;;) {
        int sig;
        if (keepalive_us) {
            tp_sd_watchdog();
            sig = sigtimedwait(&sc->set, NULL, &tick);
        } else if (sigwait(&sc->set, &sig) != 0) {
            sig = -1;
        }
        if (sig < 0)
            continue;
        if (sig == SIGUSR1) /* the pipeline finished by itself */
            return NULL;
        if (sig == SIGHUP) {
            reload_config(sc, "SIGHUP");
            continue;
        }
        tp_log(TP_LOG_INFO, "received %s: stopping input, draining", strsignal(sig));
        tp_sd_stopping();
        tp_pipeline_stop(sc->pipeline);
    }
}

/* --watch: inotify on the config's directory (editors replace files); a
 * burst of events gives one reload once the directory is quiet for 100 ms. */
static void *watch_main(void *arg)
{
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

static int run_pipeline(const struct run_args *a)
{
    struct tp_error err = {0};
    struct tp_pipeline *p = NULL;
    char text[1024];
    int code = 0;

    struct tp_config *cfg = load_valid(a, "", 1);
    if (!cfg)
        return 2;
    /* Signals go to the signal thread only: block them before any thread starts. */
    struct signal_ctx sc = {.args = a, .stop_fd = -1};
    pthread_mutex_init(&sc.reload_lock, NULL);
    sigemptyset(&sc.set);
    sigaddset(&sc.set, SIGHUP);
    sigaddset(&sc.set, SIGINT);
    sigaddset(&sc.set, SIGTERM);
    sigaddset(&sc.set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sc.set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (tp_pipeline_new(cfg, NULL, &p, &err)) {
        tp_error_format(&err, text, sizeof(text));
        tp_log(TP_LOG_ERROR, "%s", text);
        tp_config_free(cfg);
        return 2;
    }
    sc.pipeline = p;
    pthread_t sig_thread;
    int sig_started = pthread_create(&sig_thread, NULL, signal_main, &sc) == 0;
    pthread_t watch_thread;
    int watch_started = 0;
    if (a->watch && (sc.stop_fd = eventfd(0, EFD_CLOEXEC)) >= 0)
        watch_started = pthread_create(&watch_thread, NULL, watch_main, &sc) == 0;

    tp_sd_ready();
    if (tp_pipeline_run(p, &err)) {
        tp_error_format(&err, text, sizeof(text));
        tp_log(TP_LOG_ERROR, "%s", text);
        code = 1;
    }
    tp_sd_stopping();
    if (watch_started) {
        uint64_t one = 1;
        if (write(sc.stop_fd, &one, sizeof(one)) != sizeof(one))
            tp_log(TP_LOG_WARN, "--watch: cannot stop the watch thread");
        pthread_join(watch_thread, NULL);
    }
    if (sc.stop_fd >= 0)
        close(sc.stop_fd);
    if (sig_started) {
        pthread_kill(sig_thread, SIGUSR1);
        pthread_join(sig_thread, NULL);
    }
    pthread_mutex_destroy(&sc.reload_lock);
    tp_pipeline_free(p);
    tp_config_free(cfg);
    if (a->stats && tp_stats_write_file(a->stats)) {
        tp_log(TP_LOG_ERROR, "cannot write stats file %s", a->stats);
        code = code ? code : 1;
    }
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
