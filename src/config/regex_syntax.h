/* Regular expressions of the config (TP_OPT_REGEX: the uns input's
 * umh_topics, the kafka input's key_filter) are written as benthos-umh's
 * configs write them, in Go's RE2 syntax, and run by POSIX regcomp
 * (REG_EXTENDED). tp_regex_to_posix translates what the two spell
 * differently, and refuses what POSIX cannot say, so that no pattern
 * silently matches something else. */
#ifndef TP_CONFIG_REGEX_SYNTAX_H
#define TP_CONFIG_REGEX_SYNTAX_H

#include <stddef.h>

struct tp_regex_error {
    size_t offset; /* into the pattern: where the refused construct starts */
    char why[200];
};

/* Translates an RE2 pattern into POSIX extended syntax:
 * - \d \w \s and \D \W \S (ASCII, as RE2), outside and inside [...];
 * - \t \n \r \f \v, and escaped punctuation (\. \- \] \\ ...) inside [...]
 *   too, where POSIX takes a backslash literally;
 * - [[:digit:]] and the other POSIX classes stay as they are.
 * Refused (TP_CONFIG, e filled): other letter or digit escapes (\p \x \A \z
 * \Q \1 ...), \D \W \S inside [...] and [[:^class:]]. Syntax errors are
 * left for regcomp to report. Returns TP_OK with *out (caller frees), or
 * TP_CONFIG / TP_NOMEM. */
int tp_regex_to_posix(const char *re, char **out, struct tp_regex_error *e);

#endif
