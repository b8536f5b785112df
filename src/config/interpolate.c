/* Benthos-style environment interpolation of config scalars: `${VAR}` and
 * `${VAR:default}` are replaced by the variable (or the default), `$${` is a
 * literal `${`, and `${!...}` (a Bloblang interpolation, for templates) is
 * kept as written. Runs on every scalar when the YAML is loaded. In
 * JavaScript code only `${VAR:default}` is replaced: `${x}` there is a JS
 * template literal. */
#include "config/interpolate.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

static int is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.';
}

int tp_env_interpolate(const char *in, size_t len, int js, struct tp_env_result *res)
{
    struct tp_buf b;
    tp_buf_init(&b);
    memset(res, 0, sizeof(*res));
    size_t i = 0, lit = 0;
    while (i < len) {
        if (in[i] != '$') {
            i++;
            continue;
        }
        if (!js && i + 2 < len && in[i + 1] == '$' && in[i + 2] == '{') { /* $${ -> ${ */
            if (tp_buf_append(&b, in + lit, i - lit))
                goto nomem;
            res->changed = 1;
            lit = i + 1;
            i += 3;
            continue;
        }
        if (i + 1 >= len || in[i + 1] != '{') {
            i++;
            continue;
        }
        size_t name = i + 2, e = name;
        while (e < len && is_name_char(in[e]))
            e++;
        if (e == name || e >= len || (in[e] != '}' && in[e] != ':')) {
            i++; /* not a variable reference (e.g. `${!meta("k")}`): literal */
            continue;
        }
        size_t def = 0, close = e;
        if (js && in[e] != ':') {
            i++; /* JavaScript's own template literal */
            continue;
        }
        if (in[e] == ':') {
            def = e + 1;
            close = def;
            while (close < len && in[close] != '}')
                close++;
            if (close >= len) {
                i++;
                continue;
            }
        }
        char var[256];
        size_t nlen = e - name < sizeof(var) - 1 ? e - name : sizeof(var) - 1;
        memcpy(var, in + name, nlen);
        var[nlen] = '\0';
        const char *v = getenv(var);
        size_t vlen = v ? strlen(v) : 0;
        if (!v && def) {
            v = in + def;
            vlen = close - def;
        }
        if (!v && !res->missing) {
            res->missing = 1;
            res->missing_off = i;
            memcpy(res->missing_name, var, nlen + 1);
        }
        if (tp_buf_append(&b, in + lit, i - lit) || (v && tp_buf_append(&b, v, vlen)))
            goto nomem;
        res->changed = 1;
        i = lit = close + 1;
    }
    if (!res->changed) {
        tp_buf_free(&b);
        return 0;
    }
    if (tp_buf_append(&b, in + lit, len - lit) || tp_buf_reserve(&b, 1))
        goto nomem;
    b.data[b.len] = '\0';
    res->text = b.data;
    res->len = b.len;
    return 0;
nomem:
    tp_buf_free(&b);
    return -1;
}
