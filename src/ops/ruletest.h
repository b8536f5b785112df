/* `tagproc test FILE...`: rule unit tests kept beside a config (YAML): the
 * processors (a config path or inline), and cases with one input message
 * and the expected outputs (topic, value, metadata subset, payload) or drop
 * reasons. Runs the real processor chain with a fixed clock. */
#ifndef TP_RULETEST_H
#define TP_RULETEST_H

#include <stdio.h>

/* argv[0] is "test". Prints a diff per failed case and "N passed, M
 * failed". Exit code: 0 all passed, 1 a case failed, 2 a file could not be
 * used (YAML, config or compile error). */
int tp_ruletest_main(int argc, char **argv, void (*usage)(FILE *out));

struct tp_error;

/* Checks a rule test file against its schema without running it (for
 * `tagproc lint`): the file's keys, the config or processors it names
 * (compiled), and each case's keys. Calls found() per problem; returns
 * their number. */
int tp_ruletest_check(const char *path, void (*found)(void *ctx, const struct tp_error *err),
                      void *ctx);

#endif
