/* Command-line interface: sub-commands and options (run, --help, --version). */
#ifndef TP_CLI_H
#define TP_CLI_H

/* Runs the command line; returns the process exit code. */
int tp_cli_main(int argc, char **argv);

#endif
