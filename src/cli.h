/* Command-line interface: the table of sub-commands (name, synopsis, options,
 * description) that `--help`, `tagproc help COMMAND`, the man page and the
 * bash completion are all generated from, and the dispatcher over it. */
#ifndef TP_CLI_H
#define TP_CLI_H

#include <stdio.h>

/* One documented option: "-c, --config FILE" and what it does. */
struct tp_cli_option {
    const char *flags;
    const char *desc;
};

struct tp_cli_command {
    const char *name;        /* "run" */
    const char *synopsis;    /* after "tagproc ", one usage line per '\n' */
    const char *summary;     /* one line, for the command list */
    const char *description; /* paragraphs separated by blank lines */
    const struct tp_cli_option *options;
    int (*main)(int argc, char **argv); /* argv[0] is the command name */
    int hidden;                         /* generators: not in the command list */
};

/* Every command, terminated by an entry with name NULL. */
extern const struct tp_cli_command tp_cli_commands[];

/* The command named `name`, or NULL. */
const struct tp_cli_command *tp_cli_find(const char *name);
/* Prints the help of one command ("usage: ...", description, options). */
void tp_cli_print_help(FILE *f, const struct tp_cli_command *c);
/* Prints the overview: usage lines of `run` plus the command list. */
void tp_cli_print_overview(FILE *f);
/* 1 when argv[1..] holds -h or --help (before a "--"). */
int tp_cli_wants_help(int argc, char **argv);

/* Sub-commands living in cli_*.c. */
int tp_cli_run_main(int argc, char **argv);
int tp_cli_man_main(int argc, char **argv);
int tp_cli_completion_main(int argc, char **argv);
int tp_cli_config_doc_main(int argc, char **argv);

/* Runs the command line; returns the process exit code. */
int tp_cli_main(int argc, char **argv);

/* The environment switches, read once by tp_cli_main and handed to the
 * layers below (docs/OPERATIONS.md): TAGPROC_ENGINE=naive, TAGPROC_NATIVE_IF=0,
 * TAGPROC_FIXED_NOW_MS=MS, and TAGPROC_RULE_METRICS (1 on, 0 off, else as
 * the config says), which the pipeline gets from tp_cli_rule_metrics as its
 * tp_pipeline_opts.rule_metrics. */
int tp_cli_rule_metrics(void);

#endif
