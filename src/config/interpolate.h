/* Environment interpolation of config scalars (`${VAR}`, `${VAR:default}`,
 * `$${` escape), as Benthos does it; see interpolate.c. */
#ifndef TP_INTERPOLATE_H
#define TP_INTERPOLATE_H

#include <stddef.h>

struct tp_env_result {
    int changed; /* 0: the text has no reference or escape; text is NULL */
    char *text;  /* malloc'd, NUL-terminated result when changed */
    size_t len;
    int missing;        /* an unset variable without default (rendered as "") */
    size_t missing_off; /* byte offset of its `${` in the input */
    char missing_name[256];
};

/* Interpolates in[0..len). js: JavaScript code, where only references with
 * a default are replaced and `$${` stays. 0, or -1 when out of memory. */
int tp_env_interpolate(const char *in, size_t len, int js, struct tp_env_result *res);

#endif
