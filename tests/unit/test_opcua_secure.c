/* Unit tests for OPC UA security (src/io/opcua/secure.c, cert.c): channel
 * keys derived with P_SHA256 equal OpenSSL's TLS1-PRF (an independent P_hash)
 * in both directions, symmetric frames round trip and refuse tampering,
 * policies resolve by name and URI, and certificates: generated ones carry
 * the application URI, fingerprints are SHA3-512 hex and pins compare
 * ignoring case and colons, PEM / base64 PEM bundles load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "io/opcua/cert.h"
#include "io/opcua/codec.h"
#include "io/opcua/secure.h"

/* P_SHA256(secret, seed) by OpenSSL's TLS1-PRF with an empty label. */
static void tls_prf(const uint8_t *secret, const uint8_t *seed, size_t n, uint8_t *out,
                    size_t out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
                      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)secret, n),
                      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)seed, n),
                      OSSL_PARAM_construct_end()};
    assert_int_equal(EVP_KDF_derive(ctx, out, out_len, p), 1);
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
}

static void test_key_derivation(void **state)
{
    (void)state;
    struct ua_sec s;
    ua_sec_init(&s);
    s.policy = ua_policy_by_name("Basic256Sha256");
    s.mode = UA_MODE_SIGN_ENCRYPT;
    uint8_t server_nonce[32], want[80];
    for (int i = 0; i < 32; i++) {
        s.client_nonce[i] = (uint8_t)i;
        server_nonce[i] = (uint8_t)(0xa0 + i);
    }
    struct tp_error err;
    assert_int_equal(ua_sec_derive(&s, 7, server_nonce, 32, &err), 0);
    /* client keys: P_SHA256(server nonce, client nonce) = signing, encrypting, IV */
    tls_prf(server_nonce, s.client_nonce, 32, want, 80);
    assert_memory_equal(s.send.sig, want, 32);
    assert_memory_equal(s.send.enc, want + 32, 32);
    assert_memory_equal(s.send.iv, want + 64, 16);
    tls_prf(s.client_nonce, server_nonce, 32, want, 80);
    assert_memory_equal(s.recv[0].sig, want, 32);
    assert_memory_equal(s.recv[0].enc, want + 32, 32);
    assert_memory_equal(s.recv[0].iv, want + 64, 16);
    assert_int_equal(s.recv[0].token, 7);
    /* a renewal keeps the previous server keys for what is still in flight */
    server_nonce[0] ^= 1;
    assert_int_equal(ua_sec_derive(&s, 8, server_nonce, 32, &err), 0);
    assert_int_equal(s.recv[0].token, 8);
    assert_int_equal(s.recv[1].token, 7);
    assert_memory_equal(s.recv[1].sig, want, 32);
    /* a nonce of the wrong size is refused */
    assert_int_not_equal(ua_sec_derive(&s, 9, server_nonce, 16, &err), 0);
    assert_non_null(strstr(err.msg, "server nonce of 16 bytes"));
    ua_sec_free(&s);
}

/* Seals a MSG as the server would (its send keys are our receive keys). */
static void server_seal(struct ua_sec *s, int mode, struct tp_buf *f, const char *body)
{
    struct ua_keyset mine = s->send;
    s->send = s->recv[0];
    s->mode = mode;
    tp_buf_reset(f);
    tp_buf_append(f, "MSGF\0\0\0\0", 8);
    ua_enc_u32(f, 1);
    ua_enc_u32(f, s->recv[0].token);
    ua_enc_u32(f, 5);
    ua_enc_u32(f, 6);
    tp_buf_puts(f, body);
    struct tp_error err;
    assert_int_equal(ua_sec_sym_seal(s, f, &err), 0);
    s->send = mine;
}

static void test_symmetric_frames(void **state)
{
    (void)state;
    static const char *const policies[] = {"Basic256Sha256", "Aes128_Sha256_RsaOaep",
                                           "Aes256_Sha256_RsaPss", "Basic256", "Basic128Rsa15"};
    for (size_t p = 0; p < 5; p++) {
        for (int mode = UA_MODE_SIGN; mode <= UA_MODE_SIGN_ENCRYPT; mode++) {
            struct ua_sec s;
            ua_sec_init(&s);
            s.policy = ua_policy_by_name(policies[p]);
            uint8_t nonce[32] = {1, 2, 3};
            struct tp_error err;
            assert_int_equal(ua_sec_derive(&s, 3, nonce, (size_t)s.policy->nonce_len, &err), 0);
            struct tp_buf f, out;
            tp_buf_init(&f);
            tp_buf_init(&out);
            server_seal(&s, mode, &f, "the body of a message");
            uint32_t size = (uint8_t)f.data[4] | (uint8_t)f.data[5] << 8;
            assert_int_equal(size, f.len);
            if (mode == UA_MODE_SIGN_ENCRYPT) {
                assert_int_equal((f.len - 16) % 16, 0);
                assert_null(memmem(f.data, f.len, "the body", 8)); /* encrypted */
            }
            assert_int_equal(ua_sec_sym_open(&s, (uint8_t *)f.data, f.len, &out, &err), 0);
            assert_int_equal(out.len, 16 + strlen("the body of a message"));
            assert_memory_equal(out.data + 16, "the body of a message", out.len - 16);
            f.data[f.len - 1] ^= 1; /* the last byte of the signature (or cipher text) */
            assert_int_not_equal(ua_sec_sym_open(&s, (uint8_t *)f.data, f.len, &out, &err), 0);
            f.data[f.len - 1] ^= 1;
            f.data[14] ^= 1; /* token id: unknown */
            assert_int_not_equal(ua_sec_sym_open(&s, (uint8_t *)f.data, f.len, &out, &err), 0);
            assert_non_null(strstr(err.msg, "unknown security token"));
            f.data[14] ^= 1;
            assert_int_not_equal(ua_sec_sym_open(&s, (uint8_t *)f.data, f.len - 16, &out, &err), 0);
            tp_buf_free(&f);
            tp_buf_free(&out);
            ua_sec_free(&s);
        }
    }
}

static void test_policies(void **state)
{
    (void)state;
    const struct ua_policy *p = ua_policy_by_name("Aes256_Sha256_RsaPss");
    assert_non_null(p);
    assert_ptr_equal(ua_policy_by_uri(p->uri, strlen(p->uri)), p);
    assert_ptr_equal(ua_policy_by_name("None"), &ua_policy_none);
    assert_null(ua_policy_by_name("Basic512"));
    assert_true(ua_policy_by_name("Basic128Rsa15")->deprecated);
    assert_false(ua_policy_by_name("Basic256Sha256")->deprecated);
    assert_true(ua_policy_by_name("Aes256_Sha256_RsaPss")->rank >
                ua_policy_by_name("Basic256Sha256")->rank);
}

static void test_certificates(void **state)
{
    (void)state;
    struct ua_cert c, again;
    struct tp_buf pem, b64;
    tp_buf_init(&pem);
    tp_buf_init(&b64);
    struct tp_error err;
    assert_int_equal(ua_cert_generate("urn:test:app", &c, &pem, &err), 0);
    assert_int_equal(ua_cert_key_bytes(&c), 256);
    assert_non_null(strstr(pem.data, "-----BEGIN CERTIFICATE-----"));
    assert_non_null(strstr(pem.data, "PRIVATE KEY-----"));
    assert_int_equal(ua_cert_check(&c, "urn:test:app", &err), 0);
    assert_int_not_equal(ua_cert_check(&c, "urn:other", &err), 0);
    assert_non_null(strstr(err.msg, "urn:other"));
    char fp[UA_FINGERPRINT_HEX];
    ua_cert_fingerprint(c.der, c.der_len, fp);
    assert_int_equal(strlen(fp), 128);
    char pin[200];
    snprintf(pin, sizeof(pin), "%.2s:%s", fp, fp + 2);
    for (char *q = pin; *q; q++)
        *q = (char)(*q >= 'a' && *q <= 'f' ? *q - 32 : *q);
    assert_true(ua_fingerprint_matches(pin, fp));
    pin[5] = pin[5] == '0' ? '1' : '0';
    assert_false(ua_fingerprint_matches(pin, fp));
    assert_false(ua_fingerprint_matches("", fp));
    /* the bundle loads as PEM and as base64 of PEM, with its key */
    tp_buf_putc(&pem, 0);
    assert_int_equal(ua_cert_load(pem.data, 1, "clientCertificate", &again, &err), 0);
    assert_int_equal(again.der_len, c.der_len);
    assert_memory_equal(again.der, c.der, c.der_len);
    ua_cert_free(&again);
    tp_buf_base64(&b64, pem.data, pem.len - 1);
    tp_buf_putc(&b64, 0);
    assert_int_equal(ua_cert_load(b64.data, 1, "clientCertificate", &again, &err), 0);
    assert_non_null(again.key);
    ua_cert_free(&again);
    /* errors name the option, never the content */
    assert_int_equal(ua_cert_load("c2VjcmV0", 1, "clientCertificate", &again, &err), TP_CONFIG);
    assert_non_null(strstr(err.msg, "clientCertificate"));
    assert_null(strstr(err.msg, "c2VjcmV0"));
    char *cert_only =
        strndup(pem.data, (size_t)(strstr(pem.data, "-----BEGIN PRIVATE") - pem.data));
    assert_int_equal(ua_cert_load(cert_only, 1, "clientCertificate", &again, &err), TP_CONFIG);
    assert_non_null(strstr(err.msg, "no readable private key"));
    free(cert_only);
    ua_cert_free(&c);
    tp_buf_free(&pem);
    tp_buf_free(&b64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_derivation),
        cmocka_unit_test(test_symmetric_frames),
        cmocka_unit_test(test_policies),
        cmocka_unit_test(test_certificates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
