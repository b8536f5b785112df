/* Unified Namespace output construction (SPEC 3.5-3.8): the topic and its
 * rules, the value V under the optional `datatype`, and the final
 * {"timestamp_ms":T,"value":V} payload. Number text and timestamp parsing are
 * in uns_text.c. No JS engine is involved here. */
#include "processors/uns.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/error.h"
#include "core/json.h"
#include "core/log.h"

/* ---- small helpers ---- */

static void set_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
    if (!why || whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* Copies at most 40 bytes of s for use in an error text, marking a cut with "...". */
static const char *excerpt(const char *s, size_t len, char *out, size_t outlen)
{
    size_t max = outlen > 4 ? outlen - 4 : 0;
    if (max > 40)
        max = 40;
    size_t n = len < max ? len : max;
    memcpy(out, s, n);
    if (n < len)
        memcpy(out + n, "...", 4);
    else
        out[n] = '\0';
    return out;
}

/* ---- the value V ---- */

/* Writes a number's text (SPEC 3.7): the input's own digits when the value is
 * numerically the parsed input number, else JavaScript's text. */
static int put_number(struct tp_buf *out, double d, const struct tp_orig_number *orig, int quoted)
{
    char tmp[32];
    const char *txt = tmp;
    size_t n;
    if (orig && orig->present && orig->text && orig->len > 0 && orig->number == d) {
        txt = orig->text;
        n = orig->len;
    } else {
        n = tp_number_text(d, tmp);
    }
    if (quoted)
        return tp_json_write_string(out, txt, n);
    return tp_buf_append(out, txt, n);
}

/* Object/array: compact JSON with sorted keys, as a JSON string. */
static int put_json_as_string(struct tp_buf *out, const struct tp_value *v, char *why,
                              size_t whylen)
{
    struct tp_buf canon;
    tp_buf_init(&canon);
    int rc = tp_json_canonical(v->str ? v->str : "", v->str ? v->len : 0, &canon);
    if (rc == TP_OK)
        rc = tp_json_write_string(out, canon.data ? canon.data : "", canon.len);
    else
        set_why(why, whylen, "object/array value is not valid JSON (%s)", tp_strerror(rc));
    tp_buf_free(&canon);
    return rc == TP_OK ? 0 : -1;
}

static const char *const bool_true[] = {"true", "1", "t", "T", "TRUE", "True"};
static const char *const bool_false[] = {"false", "0", "f", "F", "FALSE", "False"};

static int str_in(const char *s, size_t len, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(set[i]) == len && memcmp(set[i], s, len) == 0)
            return 1;
    return 0;
}

static const char *type_name(const struct tp_value *v)
{
    switch (v->type) {
    case TP_VALUE_UNDEFINED:
        return "undefined";
    case TP_VALUE_NULL:
        return "null";
    case TP_VALUE_BOOL:
        return "boolean";
    case TP_VALUE_NUMBER:
        return "number";
    case TP_VALUE_STRING:
        return "string";
    case TP_VALUE_JSON:
        return v->len > 0 && v->str && v->str[0] == '[' ? "array" : "object";
    }
    return "unknown";
}

static int value_auto(const struct tp_value *v, const struct tp_orig_number *orig,
                      struct tp_buf *out, char *why, size_t whylen)
{
    switch (v->type) {
    case TP_VALUE_BOOL:
        return tp_buf_puts(out, v->boolean ? "true" : "false") ? -1 : 0;
    case TP_VALUE_NUMBER:
        return put_number(out, v->number, orig, 0) ? -1 : 0;
    case TP_VALUE_STRING:
        return tp_json_write_string(out, v->str ? v->str : "", v->str ? v->len : 0) ? -1 : 0;
    case TP_VALUE_JSON:
        return put_json_as_string(out, v, why, whylen);
    default:
        return -1;
    }
}

static int value_string(const struct tp_value *v, const struct tp_orig_number *orig,
                        struct tp_buf *out, char *why, size_t whylen)
{
    switch (v->type) {
    case TP_VALUE_BOOL:
        return tp_buf_puts(out, v->boolean ? "\"true\"" : "\"false\"") ? -1 : 0;
    case TP_VALUE_NUMBER:
        return put_number(out, v->number, orig, 1) ? -1 : 0;
    default:
        return value_auto(v, orig, out, why, whylen);
    }
}

static int value_number(const struct tp_value *v, const struct tp_orig_number *orig,
                        struct tp_buf *out, char *why, size_t whylen)
{
    char ex[48];
    if (v->type == TP_VALUE_NUMBER)
        return put_number(out, v->number, orig, 0) ? -1 : 0;
    if (v->type != TP_VALUE_STRING) {
        set_why(why, whylen, "datatype \"number\" does not accept a %s value", type_name(v));
        return -1;
    }
    const char *s = v->str ? v->str : "";
    size_t len = v->str ? v->len : 0;
    /* strict decimal: -?digits(.digits)?([eE][+-]?digits)? */
    if (!tp_number_is(s, len, TP_NUM_LEADING_ZEROS)) {
        set_why(why, whylen, "datatype \"number\": string \"%s\" is not a decimal number",
                excerpt(s, len, ex, sizeof ex));
        return -1;
    }
    char *copy = strndup(s, len);
    if (!copy)
        return -1; /* out of memory: `why` stays empty */
    double d = strtod(copy, NULL);
    free(copy);
    if (!isfinite(d)) {
        set_why(why, whylen, "datatype \"number\": string \"%s\" is out of range",
                excerpt(s, len, ex, sizeof ex));
        return -1;
    }
    return put_number(out, d, orig, 0) ? -1 : 0;
}

static int value_bool(const struct tp_value *v, struct tp_buf *out, char *why, size_t whylen)
{
    char ex[48], num[32];
    int b;
    if (v->type == TP_VALUE_BOOL) {
        b = v->boolean;
    } else if (v->type == TP_VALUE_NUMBER) {
        if (v->number != 0 && v->number != 1) {
            tp_number_text(v->number, num);
            set_why(why, whylen, "datatype \"bool\": number %s is not 0 or 1", num);
            return -1;
        }
        b = v->number == 1;
    } else if (v->type == TP_VALUE_STRING) {
        const char *s = v->str ? v->str : "";
        size_t len = v->str ? v->len : 0;
        if (str_in(s, len, bool_true, sizeof bool_true / sizeof bool_true[0])) {
            b = 1;
        } else if (str_in(s, len, bool_false, sizeof bool_false / sizeof bool_false[0])) {
            b = 0;
        } else {
            set_why(why, whylen, "datatype \"bool\": string \"%s\" is not a boolean",
                    excerpt(s, len, ex, sizeof ex));
            return -1;
        }
    } else {
        set_why(why, whylen, "datatype \"bool\" does not accept a %s value", type_name(v));
        return -1;
    }
    return tp_buf_puts(out, b ? "true" : "false") ? -1 : 0;
}

int tp_uns_value(const struct tp_value *value, const char *datatype,
                 const struct tp_orig_number *orig, struct tp_buf *out, char *why, size_t whylen)
{
    char ex[48];
    if (why && whylen)
        why[0] = '\0';
    if (value->type == TP_VALUE_UNDEFINED || value->type == TP_VALUE_NULL) {
        set_why(why, whylen, "value is %s", type_name(value));
        return -1;
    }
    if (value->type == TP_VALUE_NUMBER && !isfinite(value->number)) {
        set_why(why, whylen, "value is %s",
                isnan(value->number) ? "NaN"
                : value->number < 0  ? "-Infinity"
                                     : "Infinity");
        return -1;
    }
    size_t start = out->len;
    int rc;
    if (!datatype || !*datatype)
        rc = value_auto(value, orig, out, why, whylen);
    else if (strcmp(datatype, "string") == 0)
        rc = value_string(value, orig, out, why, whylen);
    else if (strcmp(datatype, "number") == 0)
        rc = value_number(value, orig, out, why, whylen);
    else if (strcmp(datatype, "bool") == 0)
        rc = value_bool(value, out, why, whylen);
    else {
        set_why(why, whylen, "unknown datatype \"%s\" (expected string, number or bool)",
                excerpt(datatype, strlen(datatype), ex, sizeof ex));
        rc = -1;
    }
    if (rc != 0) {
        if (why && whylen && !why[0]) { /* no rule failed: an allocation did */
            set_why(why, whylen, "out of memory");
            rc = TP_NOMEM;
        }
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

/* ---- topic ---- */

/* a-z A-Z 0-9 . _ - */
static const uint8_t topic_chars[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1,
    ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1,
    ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1,
    ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1,
    ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1,
    ['z'] = 1,
};

/* Checks the characters of one topic part; returns its length or -1. */
static ssize_t check_chars(const char *field, const char *s, char *why, size_t whylen)
{
    char ex[48];
    size_t i = 0;
    for (; topic_chars[(unsigned char)s[i]]; i++)
        ;
    unsigned char c = (unsigned char)s[i];
    if (c == '\0')
        return (ssize_t)i;
    if (c >= 0x20 && c < 0x7f)
        set_why(why, whylen,
                "topic contains invalid character '%c' in %s \"%s\" (allowed: a-z A-Z 0-9 "
                ". _ -)",
                c, field, excerpt(s, strlen(s), ex, sizeof ex));
    else
        set_why(why, whylen,
                "topic contains invalid byte 0x%02x in %s (allowed: a-z A-Z 0-9 . _ -)", c, field);
    return -1;
}

/* Checks the dot-separated segments of a part (len bytes, only topic
 * characters): none empty and, when no_underscore, none starting with '_'. */
static int check_segments(const char *field, const char *s, size_t len, int no_underscore,
                          char *why, size_t whylen)
{
    char ex[48], seg[48];
    int n = 1;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        if (i == start) {
            set_why(why, whylen,
                    "%s \"%s\": segment %d is empty (topic would contain \"..\" or "
                    "start/end with \".\")",
                    field, excerpt(s, len, ex, sizeof ex), n);
            return -1;
        }
        if (no_underscore && s[start] == '_') {
            set_why(why, whylen, "%s segment %d \"%s\" starts with \"_\"", field, n,
                    excerpt(s + start, i - start, seg, sizeof seg));
            return -1;
        }
        start = i + 1;
        n++;
    }
    return 0;
}

struct topic_parts {
    const char *loc, *dc, *vp, *tag; /* vp may be NULL */
    size_t loc_len, dc_len, vp_len, tag_len;
    struct tp_uns_memo *memo; /* NULL: none */
    size_t loc_vlen, dc_vlen; /* the values' lengths (only with memo) */
};

/* One pass over a part: its length in *len; 0 when every byte is a topic
 * character and no segment is empty or (no_underscore) starts with '_'. */
static int part_ok(const char *s, int no_underscore, size_t *len)
{
    /* topic_chars: 1 for a-z A-Z 0-9 - _ . ; a segment starts after a dot */
    size_t i = 0, start = 0;
    int bad = 0;
    for (unsigned char c; topic_chars[c = (unsigned char)s[i]]; i++) {
        if (c == '.') {
            bad |= i == start;
            start = i + 1;
        } else if (c == '_' && i == start) {
            bad |= no_underscore;
        }
    }
    *len = i;
    return !bad && s[i] == '\0' && i > start;
}

/* part_ok for a value of vlen bytes through a memo slot (pm may be NULL):
 * part_ok depends on the bytes alone, so the value last found valid there is
 * valid again, with the same length. */
static int part_ok_memo(struct tp_uns_part_memo *pm, const char *s, size_t vlen, int no_underscore,
                        size_t *len)
{
    if (pm && pm->len == vlen && vlen > 0 && memcmp(pm->bytes, s, vlen) == 0) {
        *len = pm->part_len;
        return 1;
    }
    if (!part_ok(s, no_underscore, len))
        return 0;
    if (pm && vlen <= sizeof(pm->bytes)) {
        memcpy(pm->bytes, s, vlen);
        pm->len = (uint32_t)vlen;
        pm->part_len = (uint32_t)*len;
    }
    return 1;
}

/* Every topic rule of SPEC 3.5 step 3 on the parts (fills the lengths). */
static int topic_check(struct topic_parts *t, char *why, size_t whylen)
{
    struct tp_uns_memo *memo = t->memo;
    if (t->vp && !*t->vp)
        t->vp = NULL;
    if (t->loc && t->dc && t->tag &&
        part_ok_memo(memo ? &memo->loc : NULL, t->loc, t->loc_vlen, 1, &t->loc_len) &&
        part_ok_memo(memo ? &memo->dc : NULL, t->dc, t->dc_vlen, 0, &t->dc_len) &&
        part_ok(t->tag, 0, &t->tag_len) && (!t->vp || part_ok(t->vp, 0, &t->vp_len)) &&
        t->dc[0] == '_' && t->dc_len > 1 && !memchr(t->dc, '.', t->dc_len)) {
        if (!t->vp)
            t->vp_len = 0;
        return 0;
    }
    /* Something is wrong: the checks below name the first broken rule. */
    char ex[48];
    if (!t->loc || !*t->loc) {
        set_why(why, whylen, "location_path is empty");
        return -1;
    }
    if (!t->dc || !*t->dc) {
        set_why(why, whylen, "data_contract is empty");
        return -1;
    }
    if (!t->tag || !*t->tag) {
        set_why(why, whylen, "tag_name is empty");
        return -1;
    }
    if (t->vp && !*t->vp)
        t->vp = NULL;
    ssize_t n;
    if ((n = check_chars("location_path", t->loc, why, whylen)) < 0)
        return -1;
    t->loc_len = (size_t)n;
    if ((n = check_chars("data_contract", t->dc, why, whylen)) < 0)
        return -1;
    t->dc_len = (size_t)n;
    t->vp_len = 0;
    if (t->vp && (n = check_chars("virtual_path", t->vp, why, whylen)) < 0)
        return -1;
    if (t->vp)
        t->vp_len = (size_t)n;
    if ((n = check_chars("tag_name", t->tag, why, whylen)) < 0)
        return -1;
    t->tag_len = (size_t)n;
    if (check_segments("location_path", t->loc, t->loc_len, 1, why, whylen))
        return -1;
    const char *dc = t->dc;
    if (dc[0] != '_') {
        set_why(why, whylen, "data_contract \"%s\" must start with \"_\"",
                excerpt(dc, t->dc_len, ex, sizeof ex));
        return -1;
    }
    if (dc[1] == '\0') {
        set_why(why, whylen, "data_contract \"_\" needs a name after the \"_\"");
        return -1;
    }
    if (memchr(dc, '.', t->dc_len)) {
        set_why(why, whylen, "data_contract \"%s\" must not contain \".\"",
                excerpt(dc, t->dc_len, ex, sizeof ex));
        return -1;
    }
    if (t->vp && check_segments("virtual_path", t->vp, t->vp_len, 0, why, whylen))
        return -1;
    if (check_segments("tag_name", t->tag, t->tag_len, 0, why, whylen))
        return -1;
    /* The part rules imply the whole-topic rules (^[a-zA-Z0-9._-]+$, no "..",
     * no leading or trailing "."): every part is non-empty with non-empty
     * segments, and the parts are joined by single dots. */
    return 0;
}

static size_t topic_len(const struct topic_parts *t)
{
    return 7 + t->loc_len + 1 + t->dc_len + (t->vp ? 1 + t->vp_len : 0) + 1 + t->tag_len;
}

/* Writes the topic (topic_len bytes, no NUL) to o. */
static void topic_write(const struct topic_parts *t, char *o)
{
    memcpy(o, "umh.v1.", 7);
    o += 7;
    memcpy(o, t->loc, t->loc_len);
    o += t->loc_len;
    *o++ = '.';
    memcpy(o, t->dc, t->dc_len);
    o += t->dc_len;
    if (t->vp) {
        *o++ = '.';
        memcpy(o, t->vp, t->vp_len);
        o += t->vp_len;
    }
    *o++ = '.';
    memcpy(o, t->tag, t->tag_len);
}

int tp_uns_topic(const char *location_path, const char *data_contract, const char *virtual_path,
                 const char *tag_name, struct tp_buf *topic, char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    struct topic_parts t = {
        .loc = location_path, .dc = data_contract, .vp = virtual_path, .tag = tag_name};
    if (topic_check(&t, why, whylen))
        return -1;
    tp_buf_reset(topic);
    size_t n = topic_len(&t);
    if (tp_buf_reserve(topic, n)) {
        set_why(why, whylen, "out of memory");
        return -1;
    }
    topic_write(&t, topic->data);
    topic->len = n;
    topic->data[n] = '\0';
    return 0;
}

/* ---- whole output construction ---- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Positions of the metadata entries output construction reads (-1: absent). */
enum {
    F_LOCATION_PATH,
    F_DATA_CONTRACT,
    F_VIRTUAL_PATH,
    F_TAG_NAME,
    F_DATATYPE,
    F_TIMESTAMP_MS,
    F_TIMESTAMP,
    F_UMH_TOPIC,
    F_TOPIC,
    F_COUNT
};

static const struct {
    const char *name;
    size_t len;
} field_keys[F_COUNT] = {
    {"location_path", 13}, {"data_contract", 13}, {"virtual_path", 12},
    {"tag_name", 8},       {"datatype", 8},       {"timestamp_ms", 12},
    {"timestamp", 9},      {"umh_topic", 9},      {"topic", 5},
};

/* key == lit (lit a string literal): a comparison of constant length, which
 * the compiler makes a few word loads instead of a memcmp call. */
#define KEY_IS(k, lit) (memcmp((k), lit, sizeof(lit) - 1) == 0)

/* The field a key names, or -1 (by length and first letter, then compared). */
static int field_of(const char *k, uint32_t kl)
{
    switch (kl) {
    case 5:
        return KEY_IS(k, "topic") ? F_TOPIC : -1;
    case 8:
        return k[0] == 't' ? (KEY_IS(k, "tag_name") ? F_TAG_NAME : -1)
                           : (KEY_IS(k, "datatype") ? F_DATATYPE : -1);
    case 9:
        return k[0] == 't' ? (KEY_IS(k, "timestamp") ? F_TIMESTAMP : -1)
                           : (KEY_IS(k, "umh_topic") ? F_UMH_TOPIC : -1);
    case 12:
        return k[0] == 'v' ? (KEY_IS(k, "virtual_path") ? F_VIRTUAL_PATH : -1)
                           : (KEY_IS(k, "timestamp_ms") ? F_TIMESTAMP_MS : -1);
    case 13:
        return k[0] == 'l' ? (KEY_IS(k, "location_path") ? F_LOCATION_PATH : -1)
                           : (KEY_IS(k, "data_contract") ? F_DATA_CONTRACT : -1);
    default:
        return -1;
    }
}

/* One pass over the metadata (keys are unique in a message). */
static void find_fields(const struct tp_msg *m, int64_t *at)
{
    for (int f = 0; f < F_COUNT; f++)
        at[f] = -1;
    for (uint32_t i = 0; i < m->n_meta; i++) {
        int f = field_of(m->strs + m->meta[i].key_off, m->meta[i].key_len);
        if (f >= 0 && at[f] < 0)
            at[f] = i;
    }
}

static const char *field_val(const struct tp_msg *m, const int64_t *at, int f, size_t *len)
{
    if (at[f] < 0) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = m->meta[at[f]].val_len;
    return m->strs + m->meta[at[f]].val_off;
}

/* SPEC 3.5.1: trims virtual_path (in place) and removes it when it means
 * "nothing". */
static void normalise_virtual_path(struct tp_msg *m, int64_t *at)
{
    if (at[F_VIRTUAL_PATH] < 0)
        return;
    struct tp_meta *e = &m->meta[at[F_VIRTUAL_PATH]];
    const char *v = m->strs + e->val_off;
    size_t a = 0, b = e->val_len;
    while (a < b && is_space(v[a]))
        a++;
    while (b > a && is_space(v[b - 1]))
        b--;
    size_t n = b - a;
    static const char *const nothing[] = {"null", "nil", "<nil>", "undefined"};
    int remove = n == 0;
    for (size_t i = 0; !remove && n <= 9 && i < sizeof nothing / sizeof nothing[0]; i++)
        remove = strlen(nothing[i]) == n && strncasecmp(v + a, nothing[i], n) == 0;
    if (remove) {
        uint32_t i = (uint32_t)at[F_VIRTUAL_PATH];
        memmove(&m->meta[i], &m->meta[i + 1], (m->n_meta - i - 1) * sizeof(*m->meta));
        m->n_meta--;
        for (int f = 0; f < F_COUNT; f++)
            if (at[f] > (int64_t)i)
                at[f]--;
        at[F_VIRTUAL_PATH] = -1;
        return;
    }
    if (n == e->val_len)
        return;
    m->strs[e->val_off + b] = '\0'; /* the value's own bytes: trim in place */
    e->val_off += (uint32_t)a;
    e->val_len = (uint32_t)n;
}

static int64_t pick_timestamp(const struct tp_msg *m, const int64_t *at)
{
    static const int keys[] = {F_TIMESTAMP_MS, F_TIMESTAMP};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        size_t len;
        const char *v = field_val(m, at, keys[i], &len);
        if (!v)
            continue;
        int64_t ms;
        if (tp_timestamp_parse(v, len, &ms) == 0)
            return ms;
        char ex[48];
        tp_log_limited(TP_LOG_WARN, "uns.timestamp",
                       "output: metadata %s \"%s\" is not an integer of milliseconds or an RFC "
                       "3339 date-time; trying the next candidate",
                       field_keys[keys[i]].name, excerpt(v, len, ex, sizeof ex));
    }
    return tp_now_ms();
}

/* Sets umh_topic or topic (entry at position `pos`, -1: absent) to t. */
static int set_topic_key(struct tp_msg *m, int64_t pos, int f, const char *t, size_t n)
{
    if (pos < 0)
        return tp_msg_meta_append(m, field_keys[f].name, field_keys[f].len, t, n);
    return tp_msg_meta_set(m, field_keys[f].name, field_keys[f].len, t, n);
}

int tp_uns_build(struct tp_msg *m, const struct tp_value *value, const struct tp_orig_number *orig,
                 struct tp_uns_memo *memo, char *why, size_t whylen)
{
    static const int required[] = {F_LOCATION_PATH, F_DATA_CONTRACT, F_TAG_NAME};
    if (why && whylen)
        why[0] = '\0';
    int64_t at[F_COUNT];
    find_fields(m, at);
    normalise_virtual_path(m, at);

    char missing[96] = "";
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        size_t len;
        if (!field_val(m, at, required[i], &len) || len == 0) {
            if (missing[0])
                strcat(missing, ", ");
            strcat(missing, field_keys[required[i]].name);
        }
    }
    if (missing[0]) {
        set_why(why, whylen, "missing required metadata: %s", missing);
        return TP_DROP_MISSING_FIELD;
    }

    size_t loc_vlen, dc_vlen;
    struct topic_parts t = {.loc = field_val(m, at, F_LOCATION_PATH, &loc_vlen),
                            .dc = field_val(m, at, F_DATA_CONTRACT, &dc_vlen),
                            .vp = field_val(m, at, F_VIRTUAL_PATH, NULL),
                            .tag = field_val(m, at, F_TAG_NAME, NULL),
                            .memo = memo};
    t.loc_vlen = loc_vlen;
    t.dc_vlen = dc_vlen;
    if (topic_check(&t, why, whylen))
        return TP_DROP_INVALID_TOPIC;
    char topic_stack[256], *topic = topic_stack;
    size_t tlen = topic_len(&t);
    if (tlen >= sizeof topic_stack && !(topic = malloc(tlen + 1))) {
        set_why(why, whylen, "out of memory");
        return TP_UNS_NOMEM;
    }
    topic_write(&t, topic);
    topic[tlen] = '\0';

    /* The payload buffer gets V first (value/orig may point into the old
     * payload, replaced only at the end), then the prefix is put in front. */
    int result = TP_UNS_OK;
    struct tp_buf payload;
    tp_buf_init(&payload);
    int vrc = tp_buf_reserve(&payload, 64);
    if (vrc == 0)
        vrc = tp_uns_value(value, field_val(m, at, F_DATATYPE, NULL), orig, &payload, why, whylen);
    if (vrc != 0) {
        result = vrc == -1 ? TP_DROP_INVALID_VALUE : TP_UNS_NOMEM;
        goto out;
    }
    int64_t ts = pick_timestamp(m, at);
    char prefix[64];
    size_t pl = 0;
    memcpy(prefix, "{\"timestamp_ms\":", 16);
    pl = 16;
    if (ts < 0)
        prefix[pl++] = '-';
    pl += (size_t)tp_u64_digits(ts < 0 ? 0 - (uint64_t)ts : (uint64_t)ts, prefix + pl);
    memcpy(prefix + pl, ",\"value\":", 9);
    pl += 9;
    size_t vlen = payload.len, plen;
    char *p = NULL;
    if (tp_buf_reserve(&payload, pl + 1) || tp_msg_meta_reserve(m, 2, 2 * tlen + 18) ||
        set_topic_key(m, at[F_UMH_TOPIC], F_UMH_TOPIC, topic, tlen) ||
        set_topic_key(m, at[F_TOPIC], F_TOPIC, topic, tlen)) {
        set_why(why, whylen, "out of memory");
        result = TP_UNS_NOMEM;
        goto out;
    }
    memmove(payload.data + pl, payload.data, vlen);
    memcpy(payload.data, prefix, pl);
    payload.data[pl + vlen] = '}';
    payload.len = pl + vlen + 1;
    payload.data[payload.len] = '\0';
    p = tp_buf_take(&payload, &plen);
    tp_msg_take_payload(m, p, plen);
    m->flags = (m->flags & ~TP_MSG_PAYLOAD_NOTJSON) | TP_MSG_PAYLOAD_JSON;
out:
    if (topic != topic_stack)
        free(topic);
    tp_buf_free(&payload);
    return result;
}
