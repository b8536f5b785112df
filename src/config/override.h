/* `--set path.to.key=VALUE`: command-line overrides of single config values.
 * VALUE is parsed as YAML (so `4` is a number, `"4"` a string, `[a, b]` a
 * list) and put at the key path (`a.b[0].c`; missing map keys are created);
 * problems found later name the override ("--set a.b=x: a.b: ..."). */
#ifndef TP_CONFIG_OVERRIDE_H
#define TP_CONFIG_OVERRIDE_H

#include <stddef.h>

#include "config/config.h"

/* Applies one "path=value" to cfg. Errors name the override. */
int tp_config_set(struct tp_config *cfg, const char *assignment, struct tp_error *err);

/* Loads `path` ("-": standard input) and applies the overrides in order. */
int tp_config_load_with_overrides(const char *path, char *const *sets, size_t nsets,
                                  struct tp_config **out, struct tp_error *err);

#endif
