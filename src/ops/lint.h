/* `tagproc lint`: static checks of a config's rules. Compiles every snippet
 * (syntax errors), checks string literals assigned to the topic fields
 * against SPEC 3.5, and warns about bodies without `return`, `if`
 * expressions that modify msg, and duplicate or identical conditions. */
#ifndef TP_LINT_H
#define TP_LINT_H

#include <stdio.h>

#include <stddef.h>

#include "config/config.h"

enum tp_lint_severity { TP_LINT_WARNING, TP_LINT_ERROR };

struct tp_lint_finding {
    enum tp_lint_severity severity;
    int blocks_run; /* the config cannot run (keys, options, syntax), not only a rule finding */
    int line, col;  /* position in the file, 0 when none: findings are sorted by it */
    char text[768]; /* "FILE:LINE:COL: key.path: message" ("...: warning: ..." for warnings) */
};

struct tp_lint_report {
    struct tp_lint_finding *v;
    size_t n, cap;
    int errors, warnings;
    int blocking; /* findings with blocks_run */
    int nomem;    /* a check ran out of memory: findings may be missing (TP_NOMEM) */
};

#define TP_LINT_COMPILE 0x1u /* compile every snippet (syntax errors) */

/* The one validation of a config, shared by `tagproc lint`, `tagproc run`
 * and reload: every section is checked on its own (so one bad section does
 * not hide the others), then each processor and its rules. Findings come
 * at once, each once. Lints cfg into rep (zeroed by the caller; free with
 * tp_lint_report_free). Returns 0, or TP_NOMEM when out of memory lost a check
 * or a finding (rep->nomem): the report is then incomplete, never trusted. */
int tp_lint_config(const struct tp_config *cfg, unsigned flags, struct tp_lint_report *rep);
void tp_lint_report_free(struct tp_lint_report *rep);

/* `tagproc lint [--strict] CONFIG...` (argv[0] is "lint"). Exit code: 0
 * clean, 1 warnings with --strict, 2 errors. */
int tp_lint_main(int argc, char **argv, void (*usage)(FILE *out));

#endif
