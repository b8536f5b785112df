/* JSON payload text -> JS values in one pass, without QuickJS's tokenizer
 * (which builds every string character by character and hashes every key).
 * Keys come from the VM's atom cache, objects of a recurring key sequence
 * take a kept shape in one step.
 * Only strict JSON whose JSON.parse result is certain is handled; anything
 * else (other escapes, invalid UTF-8, deep nesting, long integers, errors,
 * out of memory) is declined and JS_ParseJSON decides, as before. */
#include "js/json_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/number.h"
#include "js/qjs_internals.h"

#define JP_MAX_DEPTH 64 /* deeper: JS_ParseJSON (its stack check decides) */
#define JP_MAX_KEYS 32  /* members collected before the object is built */

struct jp {
    struct tp_js_vm *vm;
    JSContext *ctx;
    const char *p, *end;
    int depth;
};

/* JS_UNDEFINED: declined (never a JSON value). */
#define DECLINE JS_UNDEFINED

static JSValue jp_value(struct jp *j);

static void skip_ws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* Length of the strict UTF-8 sequence at s (2-4 bytes: no overlong forms,
 * no surrogates, at most U+10FFFF), 0 when it is not one. */
static int utf8_seq(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0];
    int n;
    unsigned min, cp;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    if (end - s < n)
        return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* The high bit of each of the 8 bytes at p that is not a plain string
 * character ('"', '\\', a control character, a byte >= 0x80), at least of
 * the first such byte: a subtraction borrows only out of a byte it looks
 * for, so a byte above a found one may be flagged too, one below never. */
static uint64_t special8(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    uint64_t zero_q = (q - ONES) & ~q, zero_b = (b - ONES) & ~b;
    uint64_t ctl = (w - ONES * 0x20) & ~w;
    return (zero_q | zero_b | ctl | w) & HIGHS;
}

/* The string at j->p (just after its opening quote): its UTF-8 bytes in s, n,
 * either in the input (no escapes) or in *buf (malloc'd, the caller frees).
 * *ascii is 1 when they are all ASCII. 0, or -1 to decline. */
static int jp_string(struct jp *j, const char **s, size_t *n, char **buf, int *ascii)
{
    const unsigned char *p = (const unsigned char *)j->p, *end = (const unsigned char *)j->end;
    const unsigned char *start = p;
    int plain = 1;
    *ascii = 1;
    *buf = NULL;
    for (;;) {              /* scan: the end, and whether there are escapes */
        if (end - p >= 8) { /* 8 bytes at a time to the first special one */
            uint64_t m = special8(p);
            if (!m) {
                p += 8;
                continue;
            }
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            p += __builtin_clzll(m) >> 3; /* may stop early: the loop goes on */
#else
            p += __builtin_ctzll(m) >> 3;
#endif
        }
        if (p >= end)
            return -1;
        unsigned c = *p;
        if (c == '"')
            break;
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            plain = 0;
            if (p + 1 >= end)
                return -1;
            p += 2;
            continue;
        }
        if (c >= 0x80) {
            int l = utf8_seq(p, end);
            if (!l)
                return -1;
            *ascii = 0;
            p += l;
            continue;
        }
        p++;
    }
    j->p = (const char *)p + 1;
    if (plain) {
        *s = (const char *)start;
        *n = (size_t)(p - start);
        return 0;
    }
    /* Escapes: only the ones whose result is plain ASCII. */
    char *o = malloc((size_t)(p - start) + 1);
    if (!o)
        return -1;
    size_t k = 0;
    for (const unsigned char *q = start; q < p;) {
        if (*q != '\\') {
            o[k++] = (char)*q++;
            continue;
        }
        unsigned e = q[1], u;
        q += 2;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            o[k++] = (char)e;
            break;
        case 'b':
            o[k++] = '\b';
            break;
        case 'f':
            o[k++] = '\f';
            break;
        case 'n':
            o[k++] = '\n';
            break;
        case 'r':
            o[k++] = '\r';
            break;
        case 't':
            o[k++] = '\t';
            break;
        case 'u':
            if (p - q < 4 || !hex4((const char *)q, &u) || u == 0 || u >= 0x80) {
                free(o);
                return -1;
            }
            o[k++] = (char)u;
            q += 4;
            break;
        default:
            free(o);
            return -1;
        }
    }
    *buf = o;
    *s = o;
    *n = k;
    return 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A number in strict JSON syntax, valued as QuickJS's js_atof values it:
 * integers exactly from their digits (up to 19, more: declined), others
 * as strtod (correctly rounded; small ones by tp_number_fast). */
static JSValue jp_number(struct jp *j)
{
    const char *s = j->p, *p = s, *end = j->end;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || !is_digit(*p))
        return DECLINE;
    const char *int_start = p;
    if (*p == '0')
        p++;
    else
        while (p < end && is_digit(*p))
            p++;
    if (p < end && is_digit(*p))
        return DECLINE; /* a leading zero */
    size_t int_digits = (size_t)(p - int_start);
    const char *frac = NULL;
    size_t frac_digits = 0;
    if (p < end && *p == '.') {
        frac = ++p;
        while (p < end && is_digit(*p))
            p++;
        frac_digits = (size_t)(p - frac);
        if (frac_digits == 0)
            return DECLINE;
    }
    int has_exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        has_exp = 1;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return DECLINE;
        while (p < end && is_digit(*p))
            p++;
    }
    j->p = p;
    double d;
    if (!frac && !has_exp) {
        if (int_digits > 19)
            return DECLINE;
        uint64_t n = 0;
        for (const char *q = int_start; q < int_start + int_digits; q++)
            n = n * 10 + (uint64_t)(*q - '0');
        d = (double)n;
    } else {
        size_t len = (size_t)(p - s); /* with the sign */
        char tmp[64];
        if (!tp_number_fast(s, len, &d)) {
            if (len >= sizeof(tmp))
                return DECLINE;
            memcpy(tmp, s, len);
            tmp[len] = '\0';
            d = strtod(tmp, NULL);
        }
        return JS_NewFloat64(j->ctx, d);
    }
    return JS_NewFloat64(j->ctx, neg ? -d : d);
}

/* A string value (the opening quote consumed). */
static JSValue jp_string_value(struct jp *j)
{
    const char *s;
    size_t n;
    char *buf;
    int ascii;
    if (jp_string(j, &s, &n, &buf, &ascii) != 0)
        return DECLINE;
    /* Not through the VM's value cache: payload strings rarely repeat, and
     * each miss would evict a metadata value. */
    JSValue v = JS_NewStringLen(j->ctx, s, n);
    free(buf);
    return v;
}

/* The atom of a key (the opening quote consumed); JS_ATOM_NULL to decline.
 * ASCII keys through the VM's atom cache, others decoded from UTF-8 as
 * JSON.parse makes them (tp__js_atom_utf8). */
static JSAtom jp_key(struct jp *j)
{
    const char *s;
    size_t n;
    char *buf;
    int ascii;
    if (jp_string(j, &s, &n, &buf, &ascii) != 0)
        return JS_ATOM_NULL;
    JSAtom a = ascii ? tp__js_key_atom(j->vm, s, n) : tp__js_atom_utf8(j->ctx, s, n);
    free(buf);
    if (a == JS_ATOM_NULL)
        JS_FreeValue(j->ctx, JS_GetException(j->ctx));
    return a;
}

/* Defines atoms[i] = vals[i] (i < n, consumed) on obj in order, as
 * JSON.parse does. 0 or -1 (everything freed but obj). */
static int define_all(JSContext *ctx, JSValueConst obj, const JSAtom *atoms, JSValue *vals,
                      uint32_t n)
{
    int rc = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = JS_DefinePropertyValue(ctx, obj, atoms[i], vals[i], JS_PROP_C_W_E) < 0 ? -1 : 0;
        else
            JS_FreeValue(ctx, vals[i]);
        vals[i] = JS_UNDEFINED;
    }
    return rc;
}

/* The object of the collected members (vals consumed): in one step on a
 * kept shape when the key sequence recurs, else property by property. */
static JSValue build_object(struct jp *j, const JSAtom *atoms, JSValue *vals, uint32_t n)
{
    JSContext *ctx = j->ctx;
    JSValue obj = JS_NewObject(ctx);
    const JSValue *kept = NULL;
    if (!JS_IsException(obj) && n && j->vm->peek_ok)
        kept = tp__js_keep_json_shape(j->vm, atoms, n);
    if (kept) {
        int rc = tp__qjs_reshape(ctx, obj, *kept, atoms, n, vals, j->vm->obj_proto);
        if (rc == 0)
            return obj;
        if (rc < 0) {
            JS_FreeValue(ctx, obj);
            obj = JS_NewObject(ctx);
        }
    }
    if (JS_IsException(obj)) {
        for (uint32_t i = 0; i < n; i++)
            JS_FreeValue(ctx, vals[i]);
        return obj;
    }
    if (define_all(ctx, obj, atoms, vals, n) != 0) {
        JS_FreeValue(ctx, obj);
        return JS_EXCEPTION;
    }
    return obj;
}

/* An object (the opening brace consumed). Members are collected first, so
 * that the object is built in one step; a repeated key, or more than
 * JP_MAX_KEYS of them, switch to defining each member as JSON.parse does
 * (a repeated key keeps its first place and takes the last value). */
static JSValue jp_object(struct jp *j)
{
    JSContext *ctx = j->ctx;
    JSAtom atoms[JP_MAX_KEYS];
    JSValue vals[JP_MAX_KEYS];
    uint32_t n = 0;             /* atoms[0..n) are ours until the end */
    int vals_ours = 1;          /* vals[0..n) too, until defined or built */
    JSValue obj = JS_UNDEFINED; /* defined member by member */
    JSValue ret = DECLINE;
    skip_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        ret = JS_NewObject(ctx);
        goto out;
    }
    for (;;) {
        if (j->p >= j->end || *j->p != '"')
            goto out;
        j->p++;
        JSAtom a = jp_key(j);
        if (a == JS_ATOM_NULL)
            goto out;
        skip_ws(j);
        JSValue v = DECLINE;
        if (j->p < j->end && *j->p == ':') {
            j->p++;
            v = jp_value(j);
        }
        if (JS_IsUndefined(v)) {
            JS_FreeAtom(ctx, a);
            goto out;
        }
        int dup = 0;
        for (uint32_t i = 0; i < n && !dup; i++)
            dup = atoms[i] == a;
        if (JS_IsUndefined(obj) && !dup && n < JP_MAX_KEYS) {
            atoms[n] = a;
            vals[n++] = v;
        } else {
            int rc = 0;
            if (JS_IsUndefined(obj)) {
                obj = JS_NewObject(ctx);
                rc = JS_IsException(obj) ? -1 : define_all(ctx, obj, atoms, vals, n);
                vals_ours = JS_IsException(obj);
                if (JS_IsException(obj))
                    obj = JS_UNDEFINED;
            }
            if (rc == 0)
                rc = JS_DefinePropertyValue(ctx, obj, a, v, JS_PROP_C_W_E) < 0 ? -1 : 0;
            else
                JS_FreeValue(ctx, v);
            JS_FreeAtom(ctx, a);
            if (rc != 0)
                goto out;
        }
        skip_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            skip_ws(j);
            continue;
        }
        if (j->p >= j->end || *j->p != '}')
            goto out;
        j->p++;
        break;
    }
    if (JS_IsUndefined(obj)) {
        ret = build_object(j, atoms, vals, n);
        vals_ours = 0;
    } else {
        ret = obj;
        obj = JS_UNDEFINED;
    }
out:
    for (uint32_t i = 0; i < n; i++) {
        if (vals_ours)
            JS_FreeValue(ctx, vals[i]);
        JS_FreeAtom(ctx, atoms[i]);
    }
    JS_FreeValue(ctx, obj);
    if (JS_IsException(ret)) {
        JS_FreeValue(ctx, JS_GetException(ctx));
        ret = DECLINE;
    }
    return ret;
}

static JSValue jp_array(struct jp *j)
{
    JSContext *ctx = j->ctx;
    JSValue arr = JS_NewArray(ctx);
    if (JS_IsException(arr)) {
        JS_FreeValue(ctx, JS_GetException(ctx));
        return DECLINE;
    }
    skip_ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return arr;
    }
    for (uint32_t idx = 0;; idx++) {
        JSValue v = jp_value(j);
        if (JS_IsUndefined(v) || JS_DefinePropertyValueUint32(ctx, arr, idx, v, JS_PROP_C_W_E) < 0)
            break;
        skip_ws(j);
        if (j->p >= j->end)
            break;
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p != ']')
            break;
        j->p++;
        return arr;
    }
    JS_FreeValue(ctx, arr);
    JS_FreeValue(ctx, JS_GetException(ctx)); /* none pending after a decline */
    return DECLINE;
}

static int word(struct jp *j, const char *w, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
        return 0;
    j->p += n;
    return 1;
}

/* One value at j->p (white space before it skipped here). */
static JSValue jp_value(struct jp *j)
{
    skip_ws(j);
    if (j->p >= j->end)
        return DECLINE;
    JSValue v;
    switch (*j->p) {
    case '{':
    case '[':
        if (j->depth >= JP_MAX_DEPTH)
            return DECLINE;
        j->depth++;
        j->p++;
        v = j->p[-1] == '{' ? jp_object(j) : jp_array(j);
        j->depth--;
        return v;
    case '"':
        j->p++;
        v = jp_string_value(j);
        break;
    case 't':
        return word(j, "true", 4) ? JS_TRUE : DECLINE;
    case 'f':
        return word(j, "false", 5) ? JS_FALSE : DECLINE;
    case 'n':
        return word(j, "null", 4) ? JS_NULL : DECLINE;
    default:
        v = jp_number(j);
        break;
    }
    if (JS_IsException(v)) {
        JS_FreeValue(j->ctx, JS_GetException(j->ctx));
        return DECLINE;
    }
    return v;
}

JSValue tp__js_json_parse(struct tp_js_vm *vm, const char *p, size_t len)
{
    struct jp j = {vm, vm->ctx, p, p + len, 0};
    JSValue v = jp_value(&j);
    if (JS_IsUndefined(v))
        return v;
    skip_ws(&j);
    if (j.p != j.end) { /* data after the value: JSON.parse fails on it */
        JS_FreeValue(vm->ctx, v);
        return DECLINE;
    }
    return v;
}
