/* Text forms of UNS output (SPEC 3.7, 3.8): numbers written as JavaScript
 * writes them (shortest round-trip digits, ECMA-262 Number::toString) and
 * timestamps read from metadata (integer ms or RFC 3339, without libc
 * time-zone dependence), plus the clock with its test override. */
#include "processors/uns.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ---- number text (ECMA-262 Number::toString) ---- */

static const double pow10_tab[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Decimal digits of u into dig (no NUL); returns their count. */
int tp__uns_u64_digits(uint64_t u, char *dig)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    for (int i = 0; i < n; i++)
        dig[i] = tmp[n - 1 - i];
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
        int n = tp__uns_u64_digits((uint64_t)r, dig);
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
        o += (size_t)tp__uns_u64_digits((uint64_t)fabs(d), buf + o);
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

/* ---- timestamps ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dim[m - 1];
}

/* Reads exactly n digits at s[*i]; -1 when they are not all digits. */
static int fixed_digits(const char *s, size_t len, size_t *i, int n)
{
    int v = 0;
    for (int k = 0; k < n; k++, (*i)++) {
        if (*i >= len || !is_digit(s[*i]))
            return -1;
        v = v * 10 + (s[*i] - '0');
    }
    return v;
}

static int expect_char(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return -1;
    (*i)++;
    return 0;
}

static int parse_int_ms(const char *s, size_t len, int64_t *ms)
{
    size_t i = 0;
    int neg = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == len)
        return -1;
    if (len - i <= 18) { /* cannot overflow */
        int64_t v = 0;
        for (; i < len; i++) {
            unsigned dgt = (unsigned)(s[i] - '0');
            if (dgt > 9)
                return -1;
            v = v * 10 + dgt;
        }
        *ms = neg ? -v : v;
        return 0;
    }
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        if (!is_digit(s[i]))
            return -1;
        unsigned dgt = (unsigned)(s[i] - '0');
        if (v > (limit - dgt) / 10)
            return -1;
        v = v * 10 + dgt;
    }
    if (neg)
        *ms = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *ms = (int64_t)v;
    return 0;
}

static int parse_rfc3339(const char *s, size_t len, int64_t *ms)
{
    size_t i = 0;
    int y = fixed_digits(s, len, &i, 4);
    if (y < 0 || expect_char(s, len, &i, '-'))
        return -1;
    int mo = fixed_digits(s, len, &i, 2);
    if (mo < 1 || mo > 12 || expect_char(s, len, &i, '-'))
        return -1;
    int d = fixed_digits(s, len, &i, 2);
    if (d < 1 || d > days_in_month(y, mo))
        return -1;
    if (i >= len || (s[i] != 'T' && s[i] != 't'))
        return -1;
    i++;
    int h = fixed_digits(s, len, &i, 2);
    if (h < 0 || h > 23 || expect_char(s, len, &i, ':'))
        return -1;
    int mi = fixed_digits(s, len, &i, 2);
    if (mi < 0 || mi > 59 || expect_char(s, len, &i, ':'))
        return -1;
    int sec = fixed_digits(s, len, &i, 2);
    if (sec < 0 || sec > 60)
        return -1;
    int frac_ms = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        for (; i < len && is_digit(s[i]); i++)
            if (i - start < 3)
                frac_ms = frac_ms * 10 + (s[i] - '0');
        if (i == start)
            return -1;
        for (size_t k = i - start; k < 3; k++)
            frac_ms *= 10;
    }
    int64_t offset_s = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i++] == '-' ? -1 : 1;
        int oh = fixed_digits(s, len, &i, 2);
        if (oh < 0 || oh > 23 || expect_char(s, len, &i, ':'))
            return -1;
        int om = fixed_digits(s, len, &i, 2);
        if (om < 0 || om > 59)
            return -1;
        offset_s = sign * (int64_t)(oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (i != len)
        return -1;
    int64_t secs =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    *ms = secs * 1000 + frac_ms;
    return 0;
}

int tp_timestamp_parse(const char *s, size_t len, int64_t *ms)
{
    if (!s || len == 0)
        return -1;
    /* RFC 3339 starts with four digits and a '-'; anything else is an integer or junk. */
    if (len > 4 && s[4] == '-')
        return parse_rfc3339(s, len, ms);
    return parse_int_ms(s, len, ms);
}

static pthread_once_t fixed_now_once = PTHREAD_ONCE_INIT;
static int fixed_now_set;
static int64_t fixed_now_ms;

static void read_fixed_now(void)
{
    const char *v = getenv("TAGPROC_FIXED_NOW_MS");
    if (v && *v && parse_int_ms(v, strlen(v), &fixed_now_ms) == 0)
        fixed_now_set = 1;
}

int64_t tp_now_ms(void)
{
    pthread_once(&fixed_now_once, read_fixed_now);
    if (fixed_now_set)
        return fixed_now_ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
