/* The one template engine of topic, subject and key fields: literal text
 * with metadata placeholders, written `{{meta.KEY}}` (tagproc) or, as in
 * Benthos configs, `${! meta("KEY") }` and `${! @KEY }`. Any other Bloblang
 * interpolation is rejected when compiled, never passed through as text. */
#ifndef TP_TEMPLATE_H
#define TP_TEMPLATE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/msg.h"

struct tp_template;

struct tp_template_error {
    size_t offset; /* byte offset in the template text of the bad placeholder */
    char why[400];
};

/* Compiles text. TP_OK, TP_CONFIG (te filled) or TP_NOMEM. */
int tp_template_compile(const char *text, struct tp_template **out, struct tp_template_error *te);
/* Renders for m into out (reset first, NUL-terminated). A missing metadata
 * key renders as "" and, when *missing is NULL, sets it to the first such
 * key (valid while t lives). TP_OK or TP_NOMEM. */
int tp_template_render(const struct tp_template *t, const struct tp_msg *m, struct tp_buf *out,
                       const char **missing);
/* 1 when the template has no placeholder. */
int tp_template_is_literal(const struct tp_template *t);
void tp_template_free(struct tp_template *t);

#endif
