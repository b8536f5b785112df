/* Text forms of UNS output (SPEC 3.8): timestamps read from metadata
 * (integer ms or RFC 3339, without libc time-zone dependence), plus the
 * clock with its test override. Number text is core/number.c. */
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

static int fixed_now_set;
static int64_t fixed_now_ms;

int tp_now_fix(const char *ms_text)
{
    int64_t ms;
    if (parse_int_ms(ms_text, strlen(ms_text), &ms) != 0)
        return -1;
    fixed_now_ms = ms;
    fixed_now_set = 1;
    return 0;
}

int tp_now_fixed(void)
{
    return fixed_now_set;
}

int64_t tp_now_ms(void)
{
    if (fixed_now_set)
        return fixed_now_ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
