/* Numbers as text (see number.h): the one number grammar of the code base
 * (JSON payloads, the scanner, UNS datatype strings, YAML option values) and
 * the JavaScript text of a double (shortest round-trip digits). */
#include "core/number.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ---- grammar ---- */

static size_t digits(const char *s, size_t i, size_t n)
{
    while (i < n && is_digit(s[i]))
        i++;
    return i;
}

size_t tp_number_span(const char *s, size_t n, unsigned flags, int *integer)
{
    size_t i = 0;
    if (i < n && (s[i] == '-' || (s[i] == '+' && (flags & TP_NUM_PLUS))))
        i++;
    size_t int_start = i;
    if (i < n && s[i] == '0' && !(flags & TP_NUM_LEADING_ZEROS))
        i++;
    else
        i = digits(s, i, n);
    size_t int_digits = i - int_start;
    if (int_digits == 0 && !(flags & TP_NUM_BARE_DOT))
        return 0;
    int whole = 1;
    if (i < n && s[i] == '.') {
        size_t frac_start = i + 1;
        size_t e = digits(s, frac_start, n);
        size_t frac_digits = e - frac_start;
        if (frac_digits == 0 && !((flags & TP_NUM_BARE_DOT) && int_digits > 0))
            return 0; /* a "." must be followed by digits */
        i = e;
        whole = 0;
    }
    if (i == int_start) /* no digit at all: "", "+" */
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e = i + 1;
        if (e < n && (s[e] == '+' || s[e] == '-'))
            e++;
        size_t end = digits(s, e, n);
        if (end == e)
            return 0; /* an exponent needs digits */
        i = end;
        whole = 0;
    }
    if (integer)
        *integer = whole;
    return i;
}

int tp_number_is(const char *s, size_t n, unsigned flags)
{
    return n > 0 && tp_number_span(s, n, flags, NULL) == n;
}

/* ---- text (ECMA-262 Number::toString) ---- */

static const double pow10_tab[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Reads the digits at s[*i..n) into *m; returns their count, or -1 when
 * *m would hold more than 15 digits in all (*total counts them). */
static int fast_digits(const char *s, size_t n, size_t *i, uint64_t *m, int *total)
{
    int k = 0;
    for (; *i < n && s[*i] >= '0' && s[*i] <= '9'; (*i)++, k++) {
        if (++*total > 15)
            return -1;
        *m = *m * 10 + (uint64_t)(s[*i] - '0');
    }
    return k;
}

int tp_number_fast(const char *s, size_t n, double *d)
{
    size_t i = 0;
    int neg = n > 0 && s[0] == '-', total = 0, frac = 0, e = 0;
    uint64_t m = 0, ev = 0;
    i += (size_t)neg;
    if (fast_digits(s, n, &i, &m, &total) <= 0)
        return 0;
    if (i < n && s[i] == '.') {
        i++;
        if ((frac = fast_digits(s, n, &i, &m, &total)) <= 0)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = ++i < n && s[i] == '-', edigits = 0;
        i += i < n && (s[i] == '-' || s[i] == '+');
        if (fast_digits(s, n, &i, &ev, &edigits) <= 0 || ev > 99)
            return 0;
        e = eneg ? -(int)ev : (int)ev;
    }
    e -= frac;
    if (i != n || e < -22 || e > 22)
        return 0;
    double v = e < 0 ? (double)m / pow10_tab[-e] : (double)m * pow10_tab[e];
    *d = neg ? -v : v;
    return 1;
}

/* "00" to "99": two digits per division (timestamps have 13). */
static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                     "25262728293031323334353637383940414243444546474849"
                                     "50515253545556575859606162636465666768697071727374"
                                     "75767778798081828384858687888990919293949596979899";

/* Decimal digits of u into dig (no NUL), written from the last one; returns
 * their count. */
int tp_u64_digits(uint64_t u, char *dig)
{
    uint64_t p = 10;
    int n = 1;
    while (n < 20 && u >= p) { /* 10^19 is the last power below 2^64 */
        n++;
        p *= 10;
    }
    char *o = dig + n;
    while (u >= 100) {
        unsigned r = (unsigned)(u % 100);
        u /= 100;
        *--o = digit_pairs[2 * r + 1];
        *--o = digit_pairs[2 * r];
    }
    if (u >= 10) {
        *--o = digit_pairs[2 * u + 1];
        *--o = digit_pairs[2 * u];
    } else {
        *--o = (char)('0' + u);
    }
    return n;
}

/* Exact fast path for values with at most 15 significant digits and at most
 * 22 decimals (almost every sensor value): the first count of decimals p for
 * which r = round(d * 10^p) gives r / 10^p == d. Both operands are exact
 * doubles, so the IEEE division is the correctly rounded value of the decimal
 * r * 10^-p: exactly what reading that text back gives. With r < 10^15 the
 * product's rounding error (< 0.12 units) cannot pick the wrong r, and a
 * round-trip text of at most 15 digits is the unique shortest one (it lies
 * within half a unit of d's 15th digit). d > 0, not an integer. Returns the
 * digit count, or 0 when the slow path must decide. */
static int short_digits(double d, char *dig, int *exp10)
{
    if (d < 1e-6 || d >= 1e14)
        return 0;
    for (int p = 1; p <= 22; p++) {
        double x = d * pow10_tab[p];
        if (x >= 1e15)
            return 0;
        double r = nearbyint(x);
        if (r == 0 || r / pow10_tab[p] != d)
            continue;
        int n = tp_u64_digits((uint64_t)r, dig);
        *exp10 = n - p - 1; /* exponent of the first digit */
        while (n > 1 && dig[n - 1] == '0')
            n--;
        dig[n] = '\0';
        return n;
    }
    return 0;
}

/* Shortest digits that read back as d (d finite and > 0): digits in dig
 * (no dot), returns their count; *exp10 gets the exponent of the first digit.
 * For a normal double, a text of 15 significant digits that reads back as d
 * is, trailing zeros removed, the shortest one (see short_digits); otherwise
 * 16 or 17 digits, the nearest text of that length (17 always reads back). */
static int shortest_digits(double d, char *dig, int *exp10)
{
    int k = short_digits(d, dig, exp10);
    if (k > 0)
        return k;
    char tmp[40];
    /* Subnormals have fewer significant bits: every precision is tried. */
    for (int prec = d < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (prec == 17 || strtod(tmp, NULL) == d)
            break;
    }
    int n = 0;
    const char *p = tmp;
    for (; *p && *p != 'e'; p++)
        if (is_digit(*p))
            dig[n++] = *p;
    *exp10 = *p == 'e' ? atoi(p + 1) : 0;
    while (n > 1 && dig[n - 1] == '0')
        n--;
    dig[n] = '\0';
    return n;
}

size_t tp_number_text(double d, char *buf)
{
    if (isnan(d))
        return (size_t)sprintf(buf, "NaN");
    if (isinf(d))
        return (size_t)sprintf(buf, "%s", d < 0 ? "-Infinity" : "Infinity");
    if (d == 0) {
        memcpy(buf, "0", 2); /* also -0 */
        return 1;
    }
    if (d == trunc(d) && fabs(d) < 9007199254740992.0) {
        size_t o = 0;
        if (d < 0)
            buf[o++] = '-';
        o += (size_t)tp_u64_digits((uint64_t)fabs(d), buf + o);
        buf[o] = '\0';
        return o;
    }

    char dig[24];
    int e;
    size_t o = 0;
    if (d < 0) {
        buf[o++] = '-';
        d = -d;
    }
    int k = shortest_digits(d, dig, &e);
    int n = e + 1; /* position of the decimal point relative to the digits */
    if (k <= n && n <= 21) {
        memcpy(buf + o, dig, (size_t)k);
        o += (size_t)k;
        for (int i = k; i < n; i++)
            buf[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(buf + o, dig, (size_t)n);
        o += (size_t)n;
        buf[o++] = '.';
        memcpy(buf + o, dig + n, (size_t)(k - n));
        o += (size_t)(k - n);
    } else if (-6 < n && n <= 0) {
        buf[o++] = '0';
        buf[o++] = '.';
        for (int i = 0; i < -n; i++)
            buf[o++] = '0';
        memcpy(buf + o, dig, (size_t)k);
        o += (size_t)k;
    } else {
        buf[o++] = dig[0];
        if (k > 1) {
            buf[o++] = '.';
            memcpy(buf + o, dig + 1, (size_t)(k - 1));
            o += (size_t)(k - 1);
        }
        o += (size_t)sprintf(buf + o, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
    buf[o] = '\0';
    return o;
}
