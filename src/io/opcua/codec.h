/* OPC UA binary encoding (Part 6 §5.2): little-endian built-in types, NodeId
 * forms and their text ("ns=2;s=Tag"), Variant (scalars and 1-D arrays),
 * DataValue, and skipping of DiagnosticInfo / ExtensionObject bodies.
 * Decoding is bounds-checked everywhere: a decoder that runs out of bytes or
 * meets an over-limit length sets d->err and every later read returns zeros. */
#ifndef TP_OPCUA_CODEC_H
#define TP_OPCUA_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Built-in type ids (Part 6 Table 1). */
enum ua_type {
    UA_NULL = 0,
    UA_BOOLEAN = 1,
    UA_SBYTE = 2,
    UA_BYTE = 3,
    UA_INT16 = 4,
    UA_UINT16 = 5,
    UA_INT32 = 6,
    UA_UINT32 = 7,
    UA_INT64 = 8,
    UA_UINT64 = 9,
    UA_FLOAT = 10,
    UA_DOUBLE = 11,
    UA_STRING = 12,
    UA_DATETIME = 13,
    UA_GUID = 14,
    UA_BYTESTRING = 15,
    UA_XMLELEMENT = 16,
    UA_NODEID = 17,
    UA_EXPANDEDNODEID = 18,
    UA_STATUSCODE = 19,
    UA_QUALIFIEDNAME = 20,
    UA_LOCALIZEDTEXT = 21,
    UA_EXTENSIONOBJECT = 22,
    UA_DATAVALUE = 23,
    UA_VARIANT = 24,
    UA_DIAGNOSTICINFO = 25,
};

/* Limits applied while decoding (hostile input cannot make us allocate more). */
#define UA_MAX_STRING_LEN (16u * 1024 * 1024)
#define UA_MAX_ARRAY_LEN (1u << 20)
#define UA_MAX_NESTING 16

/* ---- decoding ---- */

struct ua_dec {
    const uint8_t *p;
    size_t len, pos;
    int err;   /* 1 after the first failure; reads then return zero values */
    int depth; /* nesting of Variant / DiagnosticInfo */
};

static inline void ua_dec_init(struct ua_dec *d, const void *p, size_t len)
{
    d->p = p;
    d->len = len;
    d->pos = 0;
    d->err = 0;
    d->depth = 0;
}

/* Returns a pointer to n bytes and advances, or NULL (and sets err). */
const uint8_t *ua_dec_bytes(struct ua_dec *d, size_t n);
uint8_t ua_dec_u8(struct ua_dec *d);
uint16_t ua_dec_u16(struct ua_dec *d);
uint32_t ua_dec_u32(struct ua_dec *d);
uint64_t ua_dec_u64(struct ua_dec *d);
int32_t ua_dec_i32(struct ua_dec *d);
int64_t ua_dec_i64(struct ua_dec *d);
float ua_dec_f32(struct ua_dec *d);
double ua_dec_f64(struct ua_dec *d);
/* Array / string length: -1 (null) .. limit; anything else is an error. */
int32_t ua_dec_len(struct ua_dec *d, uint32_t limit);

/* A String / ByteString / XmlElement view into the input (not NUL-terminated). */
struct ua_str {
    const char *s; /* NULL for a null string */
    int32_t len;   /* -1 for null */
};
struct ua_str ua_dec_string(struct ua_dec *d);

enum ua_id_type { UA_ID_NUMERIC, UA_ID_STRING, UA_ID_GUID, UA_ID_OPAQUE };

/* A NodeId; string/opaque identifiers point into the decoded buffer or, for
 * parsed/owned ids, into owned storage (see ua_nodeid_copy). */
struct ua_nodeid {
    uint16_t ns;
    uint8_t type; /* enum ua_id_type */
    uint32_t num;
    uint8_t guid[16];
    const char *str; /* STRING / OPAQUE bytes */
    int32_t str_len;
};

void ua_dec_nodeid(struct ua_dec *d, struct ua_nodeid *id);
/* ExpandedNodeId: the NodeId plus (skipped) namespace URI / server index. */
void ua_dec_expanded_nodeid(struct ua_dec *d, struct ua_nodeid *id);
/* QualifiedName: namespace index and name. */
void ua_dec_qualified_name(struct ua_dec *d, uint16_t *ns, struct ua_str *name);
/* LocalizedText: locale and text (each may be null). */
void ua_dec_localized_text(struct ua_dec *d, struct ua_str *locale, struct ua_str *text);
/* Skips a DiagnosticInfo (recursive inner infos, depth-limited). */
void ua_dec_skip_diagnostic_info(struct ua_dec *d);
/* ExtensionObject header; body and body_len give the encoded body (binary) or
 * NULL when there is none. The body is skipped in d. */
void ua_dec_extension_object(struct ua_dec *d, struct ua_nodeid *type_id, const uint8_t **body,
                             size_t *body_len, uint8_t *encoding);
/* Skips an array of the given built-in element type (a length then elements). */
void ua_dec_skip_array(struct ua_dec *d, enum ua_type type);
/* Skips one value of a built-in type. */
void ua_dec_skip(struct ua_dec *d, enum ua_type type);

/* A decoded Variant: its type, shape, and the encoded value bytes (validated). */
struct ua_variant {
    uint8_t type;       /* enum ua_type (UA_NULL for an empty variant) */
    int32_t array_len;  /* -1: scalar; otherwise number of elements */
    int multi_dim;      /* 1 when the variant carries ArrayDimensions (>1 dimension) */
    const uint8_t *raw; /* the encoded scalar or array elements */
    size_t raw_len;
};
void ua_dec_variant(struct ua_dec *d, struct ua_variant *v);

/* DataValue (Part 6 §5.2.2.17). Absent fields are 0 / UA_NULL. */
struct ua_datavalue {
    struct ua_variant value;
    uint32_t status;
    int64_t source_ts, server_ts; /* DateTime: 100 ns since 1601-01-01; 0 = absent */
    int has_value;
};
void ua_dec_datavalue(struct ua_dec *d, struct ua_datavalue *dv);

/* ---- Variant to JSON ---- */

enum ua_json_kind { UA_JSON_NUMBER, UA_JSON_BOOL, UA_JSON_STRING, UA_JSON_OTHER, UA_JSON_NONE };

/* Appends the value of v as JSON to out: numbers and booleans as such, strings
 * quoted, DateTime as an RFC 3339 string, ByteString as base64, NodeId as its
 * text, LocalizedText / QualifiedName as objects, arrays as JSON arrays. Sets
 * *kind: NUMBER / BOOL for scalar numbers and booleans, STRING for a scalar
 * String-like value (out then holds the quoted string), OTHER for arrays and
 * structured values. Returns 0, TP_UNSUPPORTED (ExtensionObject, DataValue,
 * DiagnosticInfo, multi-dimensional arrays, empty variant), TP_PARSE or TP_NOMEM. */
int ua_variant_to_json(const struct ua_variant *v, struct tp_buf *out, enum ua_json_kind *kind);
/* Integer value of a scalar integer variant (Int32, UInt32, Byte, ...); 0 otherwise. */
int64_t ua_variant_int(const struct ua_variant *v);

/* ---- text forms ---- */

/* "ns=2;s=Tag", "i=85", "ns=1;g=...", "ns=1;b=<base64>" (ns= omitted for 0). */
int ua_nodeid_format(const struct ua_nodeid *id, struct tp_buf *out);
/* Parses the text forms above; string/opaque ids are decoded into `store`
 * (which the id then points into; it must outlive id). 0 or TP_PARSE. */
int ua_nodeid_parse(const char *text, struct ua_nodeid *id, struct tp_buf *store);
int ua_nodeid_is_null(const struct ua_nodeid *id);
/* RFC 3339 UTC text of an OPC UA DateTime ("2024-03-12T10:00:00.123456Z"). */
void ua_datetime_format(int64_t dt, char out[64]);
/* The same, for a stream of values whose timestamps mostly share their
 * second: the text up to the second is kept in `c` (zeroed before first use)
 * and reused, so only the fraction is written. Returns the text's length. */
struct ua_datetime_cache {
    int64_t sec; /* DateTime / 10^7 of `text` when `valid` */
    int valid;
    char text[64];
};
size_t ua_datetime_format_cached(int64_t dt, char out[64], struct ua_datetime_cache *c);
int64_t ua_datetime_now(void);
/* Symbolic name of a StatusCode ("Good", "BadNodeIdUnknown") or "0x80AB0000". */
const char *ua_status_name(uint32_t status, char tmp[16]);

/* ---- encoding (appends to a tp_buf; each returns 0 or TP_NOMEM) ---- */

int ua_enc_u8(struct tp_buf *b, uint8_t v);
int ua_enc_u16(struct tp_buf *b, uint16_t v);
int ua_enc_u32(struct tp_buf *b, uint32_t v);
int ua_enc_u64(struct tp_buf *b, uint64_t v);
int ua_enc_f64(struct tp_buf *b, double v);
int ua_enc_string(struct tp_buf *b, const char *s, int32_t len); /* s NULL: null */
int ua_enc_cstring(struct tp_buf *b, const char *s);             /* NUL-terminated or NULL */
int ua_enc_nodeid(struct tp_buf *b, const struct ua_nodeid *id);
int ua_enc_numeric_nodeid(struct tp_buf *b, uint16_t ns, uint32_t num);
/* An ExtensionObject with a binary body; type_id is the numeric encoding id (ns 0). */
int ua_enc_extension_object(struct tp_buf *b, uint32_t type_id, const char *body, size_t len);
/* Overwrites 4 bytes at off with v (for lengths known only after encoding). */
void ua_put_u32_at(struct tp_buf *b, size_t off, uint32_t v);

#endif
