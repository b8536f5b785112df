/* X.509 certificates and keys for OPC UA security with OpenSSL 3 (see
 * cert.h): PEM / base64-PEM loading, self-signed client certificates,
 * thumbprints and fingerprints, validity and application URI checks. */
#include "io/opcua/cert.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define TEN_YEARS_S (10L * 365 * 24 * 3600)

void ua_cert_free(struct ua_cert *c)
{
    X509_free(c->x509);
    EVP_PKEY_free(c->key);
    free(c->der);
    memset(c, 0, sizeof(*c));
}

/* PEM text from `text`: itself when it holds "-----BEGIN", else its base64
 * decoding (whitespace ignored). NULL when it is neither. */
static char *pem_text(const char *text, size_t *len)
{
    if (strstr(text, "-----BEGIN")) {
        *len = strlen(text);
        return strdup(text);
    }
    size_t n = strlen(text), k = 0;
    char *clean = malloc(n + 1), *out = malloc(n + 1);
    if (!clean || !out) {
        free(clean);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)text[i]))
            clean[k++] = text[i];
    int got = k % 4 == 0 && k
                  ? EVP_DecodeBlock((unsigned char *)out, (unsigned char *)clean, (int)k)
                  : -1;
    for (size_t i = k; got > 0 && i > 0 && clean[i - 1] == '='; i--)
        got--; /* EVP_DecodeBlock counts the padding as bytes */
    free(clean);
    if (got < 0) {
        free(out);
        return NULL;
    }
    out[got] = 0;
    if (!strstr(out, "-----BEGIN")) {
        free(out);
        return NULL;
    }
    *len = (size_t)got;
    return out;
}

static int set_der(struct ua_cert *c, struct tp_error *err)
{
    unsigned char *der = NULL;
    int n = i2d_X509(c->x509, &der);
    if (n <= 0)
        return tp_error_set(err, TP_PARSE, "opcua: cannot encode a certificate");
    c->der = malloc((size_t)n);
    if (!c->der) {
        OPENSSL_free(der);
        return tp_error_set(err, TP_NOMEM, "out of memory");
    }
    memcpy(c->der, der, (size_t)n);
    c->der_len = (size_t)n;
    OPENSSL_free(der);
    return 0;
}

int ua_cert_load_key(const char *text, const char *what, struct ua_cert *c, struct tp_error *err)
{
    size_t len;
    char *pem = pem_text(text, &len);
    if (!pem)
        return tp_error_set(err, TP_CONFIG, "opcua: %s is neither PEM nor base64 of PEM", what);
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(pem, len);
    free(pem);
    if (!key)
        return tp_error_set(err, TP_CONFIG, "opcua: %s holds no readable private key", what);
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        EVP_PKEY_free(key);
        return tp_error_set(err, TP_CONFIG, "opcua: %s: the private key is not an RSA key", what);
    }
    if (c->x509 && X509_check_private_key(c->x509, key) != 1) {
        EVP_PKEY_free(key);
        return tp_error_set(err, TP_CONFIG,
                            "opcua: %s: the private key does not belong to the certificate", what);
    }
    EVP_PKEY_free(c->key);
    c->key = key;
    return 0;
}

int ua_cert_load(const char *text, int want_key, const char *what, struct ua_cert *out,
                 struct tp_error *err)
{
    memset(out, 0, sizeof(*out));
    size_t len;
    char *pem = pem_text(text, &len);
    if (!pem)
        return tp_error_set(err, TP_CONFIG, "opcua: %s is neither PEM nor base64 of PEM", what);
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    out->x509 = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    int rc = 0;
    if (!out->x509)
        rc = tp_error_set(err, TP_CONFIG, "opcua: %s holds no readable certificate", what);
    else if (!(rc = set_der(out, err)) && want_key)
        rc = ua_cert_load_key(pem, what, out, err);
    OPENSSL_cleanse(pem, len);
    free(pem);
    if (rc)
        ua_cert_free(out);
    return rc;
}

int ua_cert_from_der(const uint8_t *der, size_t len, struct ua_cert *out, struct tp_error *err)
{
    memset(out, 0, sizeof(*out));
    const unsigned char *p = der;
    out->x509 = len ? d2i_X509(NULL, &p, (long)len) : NULL;
    if (!out->x509)
        return tp_error_set(err, TP_PARSE, "opcua: the server certificate is not valid DER");
    /* a chain may follow the first certificate: only the first is the server's */
    out->der_len = (size_t)(p - der);
    out->der = malloc(out->der_len);
    out->key = X509_get_pubkey(out->x509);
    if (!out->der || !out->key || EVP_PKEY_get_base_id(out->key) != EVP_PKEY_RSA) {
        ua_cert_free(out);
        return tp_error_set(err, TP_PARSE, "opcua: the server certificate has no RSA key");
    }
    memcpy(out->der, der, out->der_len);
    return 0;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e)
        return -1;
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

int ua_cert_generate(const char *app_uri, struct ua_cert *out, struct tp_buf *bundle,
                     struct tp_error *err)
{
    memset(out, 0, sizeof(*out));
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    char san[300];
    snprintf(san, sizeof(san), "URI:%s,DNS:localhost", app_uri);
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    int ok = key && x && RAND_bytes(serial, sizeof(serial)) == 1;
    if (ok) {
        serial[0] &= 0x7f;
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
        X509_NAME *name = X509_get_subject_name(x);
        ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) && X509_set_version(x, 2) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
             X509_gmtime_adj(X509_getm_notAfter(x), TEN_YEARS_S) && X509_set_pubkey(x, key) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"tagproc",
                                        -1, -1, 0) &&
             X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"tagproc",
                                        -1, -1, 0) &&
             X509_set_issuer_name(x, name) && !add_ext(x, NID_subject_alt_name, san) &&
             !add_ext(x, NID_basic_constraints, "critical,CA:FALSE") &&
             !add_ext(x, NID_key_usage,
                      "critical,digitalSignature,nonRepudiation,keyEncipherment,"
                      "dataEncipherment") &&
             !add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth") &&
             !add_ext(x, NID_subject_key_identifier, "hash") && X509_sign(x, key, EVP_sha256()) > 0;
    }
    BN_free(bn);
    if (!ok) {
        EVP_PKEY_free(key);
        X509_free(x);
        return tp_error_set(err, TP_IO, "opcua: cannot generate a client certificate");
    }
    out->x509 = x;
    out->key = key;
    int rc = set_der(out, err);
    BIO *bio = BIO_new(BIO_s_mem());
    if (!rc && (!bio || !PEM_write_bio_X509(bio, x) ||
                !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)))
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
    if (!rc) {
        char *p;
        long n = BIO_get_mem_data(bio, &p);
        tp_buf_reset(bundle);
        if (tp_buf_append(bundle, p, (size_t)n))
            rc = tp_error_set(err, TP_NOMEM, "out of memory");
    }
    BIO_free(bio);
    if (rc)
        ua_cert_free(out);
    return rc;
}

void ua_cert_thumbprint(const struct ua_cert *c, uint8_t out[UA_THUMBPRINT_LEN])
{
    unsigned int n = 0;
    EVP_Digest(c->der, c->der_len, out, &n, EVP_sha1(), NULL);
}

void ua_cert_fingerprint(const uint8_t *der, size_t len, char out[UA_FINGERPRINT_HEX])
{
    unsigned char md[64];
    unsigned int n = 0;
    out[0] = 0;
    if (EVP_Digest(der, len, md, &n, EVP_sha3_512(), NULL) != 1)
        return;
    for (unsigned i = 0; i < n && i < 64; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int ua_fingerprint_matches(const char *configured, const char *hex)
{
    size_t k = 0;
    for (const char *p = configured; *p; p++) {
        if (*p == ':' || isspace((unsigned char)*p))
            continue;
        if (!hex[k] || tolower((unsigned char)*p) != hex[k])
            return 0;
        k++;
    }
    return hex[k] == 0;
}

int ua_cert_check(const struct ua_cert *c, const char *app_uri, struct tp_error *err)
{
    X509 *x = c->x509;
    if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
        return tp_error_set(err, TP_IO, "opcua: the server certificate is not valid yet");
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
        return tp_error_set(err, TP_IO, "opcua: the server certificate has expired");
    if (!app_uri || !*app_uri)
        return 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int found = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !found; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type != GEN_URI)
            continue;
        const ASN1_STRING *s = g->d.uniformResourceIdentifier;
        found = (size_t)ASN1_STRING_length(s) == strlen(app_uri) &&
                memcmp(ASN1_STRING_get0_data(s), app_uri, strlen(app_uri)) == 0;
    }
    GENERAL_NAMES_free(names);
    if (!found)
        return tp_error_set(err, TP_IO,
                            "opcua: the server certificate does not name the server's application "
                            "URI %s in its subjectAltName",
                            app_uri);
    return 0;
}

int ua_cert_key_bytes(const struct ua_cert *c)
{
    return c->key ? EVP_PKEY_get_size(c->key) : 0;
}
