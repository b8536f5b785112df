/* X.509 certificates and RSA keys for OPC UA security (OpenSSL 3): loading
 * the client certificate bundle (base64 PEM or PEM text, cert + key) and user
 * certificates, generating a self-signed client certificate, the server
 * certificate's SHA1 thumbprint and SHA3-512 fingerprint, and its checks
 * (validity dates, application URI). Error texts never contain key material. */
#ifndef TP_OPCUA_CERT_H
#define TP_OPCUA_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

struct ua_cert {
    void *x509;   /* X509 * */
    void *key;    /* EVP_PKEY *: the private key (own certificates) or the public key */
    uint8_t *der; /* the certificate, DER */
    size_t der_len;
};

#define UA_THUMBPRINT_LEN 20 /* SHA1 */
#define UA_FINGERPRINT_HEX 129

/* Text that is either PEM or base64 of PEM. With want_key, a private key must
 * be in it too (clientCertificate: "cert + key"). what names the option. */
int ua_cert_load(const char *text, int want_key, const char *what, struct ua_cert *out,
                 struct tp_error *err);
/* A private key (PEM or base64 of PEM) for an already loaded certificate. */
int ua_cert_load_key(const char *text, const char *what, struct ua_cert *c, struct tp_error *err);
/* A certificate as received (DER); the key is its public key. */
int ua_cert_from_der(const uint8_t *der, size_t len, struct ua_cert *out, struct tp_error *err);
/* RSA 2048, SHA-256, subjectAltName URI:app_uri, 10 years. *bundle gets the
 * PEM bundle (certificate then private key). */
int ua_cert_generate(const char *app_uri, struct ua_cert *out, struct tp_buf *bundle,
                     struct tp_error *err);
void ua_cert_free(struct ua_cert *c);

void ua_cert_thumbprint(const struct ua_cert *c, uint8_t out[UA_THUMBPRINT_LEN]);
/* SHA3-512 of the DER, lowercase hex (benthos-umh's serverCertificateFingerprint). */
void ua_cert_fingerprint(const uint8_t *der, size_t len, char out[UA_FINGERPRINT_HEX]);
/* Compares a configured fingerprint (hex, any case, ':' or spaces allowed). */
int ua_fingerprint_matches(const char *configured, const char *hex);
/* Checks validity dates and (when app_uri is non-empty) that the certificate
 * names app_uri in its subjectAltName. 0, or TP_IO with the reason in err. */
int ua_cert_check(const struct ua_cert *c, const char *app_uri, struct tp_error *err);
/* The key size in bytes (RSA modulus), 0 without a key. */
int ua_cert_key_bytes(const struct ua_cert *c);

#endif
