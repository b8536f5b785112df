/* A configuration tree written as JSON text: the one writer behind /config
 * (secrets redacted, every scalar a string) and the rule tests (numbers,
 * booleans and null as JSON literals). See tp_node_json in config.h. */
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "core/json.h"

int tp_node_is_json_literal(const struct tp_node *n)
{
    if (n->quoted || n->block)
        return 0;
    const char *v = n->value;
    if (!strcmp(v, "true") || !strcmp(v, "false") || !strcmp(v, "null"))
        return 1;
    return *v && tp_json_is_valid(v, n->value_len) && (*v == '-' || (*v >= '0' && *v <= '9'));
}

int tp_config_key_is_secret(const char *key)
{
    static const char *const words[] = {
        "password", "passwd",     "secret", "token",   "credential", "key_file",          "private",
        "hash",     "passphrase", "apikey", "api_key", "auth",       "clientcertificate", NULL};
    for (int i = 0; words[i]; i++)
        if (strcasestr(key, words[i]))
            return 1;
    return 0;
}

static void node_json(const struct tp_node *n, unsigned flags, int redact, struct tp_buf *out)
{
    if (!n || n->type == TP_NODE_NULL) {
        tp_buf_puts(out, "null");
    } else if (n->type == TP_NODE_SCALAR) {
        if (redact)
            tp_buf_puts(out, "\"***\"");
        else if ((flags & TP_NODE_JSON_LITERALS) && tp_node_is_json_literal(n))
            tp_buf_append(out, n->value, n->value_len);
        else
            tp_json_write_string(out, n->value, n->value_len);
    } else {
        int map = n->type == TP_NODE_MAP;
        tp_buf_putc(out, map ? '{' : '[');
        for (size_t i = 0; i < n->n; i++) {
            if (i)
                tp_buf_putc(out, ',');
            int redact_item = redact;
            if (map) {
                tp_json_write_string(out, n->keys[i], strlen(n->keys[i]));
                tp_buf_putc(out, ':');
                redact_item |=
                    (flags & TP_NODE_JSON_REDACT_SECRETS) && tp_config_key_is_secret(n->keys[i]);
            }
            node_json(n->items[i], flags, redact_item, out);
        }
        tp_buf_putc(out, map ? '}' : ']');
    }
}

void tp_node_json(const struct tp_node *n, unsigned flags, struct tp_buf *out)
{
    node_json(n, flags, 0, out);
}
