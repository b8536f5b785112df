/* Numbers as text, one implementation for every layer: the number grammar
 * (JSON's, and the looser forms of decimal strings and YAML scalars), the
 * JavaScript text of a double (ECMA-262 Number::toString), and tp_value, a
 * final payload as seen from JavaScript, handed from the JS layer to UNS. */
#ifndef TP_NUMBER_H
#define TP_NUMBER_H

#include <stddef.h>
#include <stdint.h>

/* ---- grammar ---- */

/* Without flags: exactly JSON's number, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
#define TP_NUM_LEADING_ZEROS 0x1u /* "007", "-00.5" */
#define TP_NUM_PLUS 0x2u          /* a leading "+" */
#define TP_NUM_BARE_DOT 0x4u      /* ".5" and "5." (some digit before the exponent) */

/* Length of the number at the start of s[0..n) under the grammar `flags`
 * selects, or 0 when s does not start with one. *integer (may be NULL) is
 * set to 1 when the number has neither fraction nor exponent. */
size_t tp_number_span(const char *s, size_t n, unsigned flags, int *integer);

/* 1 when all of s[0..n) is one number under `flags`. */
int tp_number_is(const char *s, size_t n, unsigned flags);

/* The value of s[0..n), a number in JSON's grammar, when the exact fast path
 * gives it: at most 15 significant digits and a power of ten up to 10^22
 * (one correctly rounded division or multiplication of exact doubles, so
 * the same double as strtod). Returns 1 with *d set, or 0: use strtod. */
int tp_number_fast(const char *s, size_t n, double *d);

/* ---- text ---- */

/* Writes a double as JavaScript's Number.prototype.toString / JSON.stringify
 * does (shortest round-trip digits; exponent form only >= 1e21 or < 1e-6).
 * buf needs 32 bytes. Returns the length. NaN/Infinity give "NaN"/"Infinity"/"-Infinity". */
size_t tp_number_text(double d, char *buf);

/* Writes the decimal digits of u without a NUL into dig (room for 20) and
 * returns their count. */
int tp_u64_digits(uint64_t u, char *dig);

/* ---- values ---- */

enum tp_value_type {
    TP_VALUE_UNDEFINED,
    TP_VALUE_NULL,
    TP_VALUE_BOOL,
    TP_VALUE_NUMBER,
    TP_VALUE_STRING,
    TP_VALUE_JSON, /* object or array: str holds its compact JSON (keys in any order) */
};

/* The final payload of a message as seen from JavaScript. */
struct tp_value {
    enum tp_value_type type;
    int boolean;
    double number;
    const char *str; /* STRING: UTF-8 bytes; JSON: JSON text. Not owned. */
    size_t len;
};

/* The number parsed from the input payload, whose text is kept when the final
 * value is numerically the same (SPEC 3.7). */
struct tp_orig_number {
    int present;
    double number;
    const char *text; /* the input payload's own digits, not owned */
    size_t len;
};

#endif
