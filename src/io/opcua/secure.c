/* OPC UA message security with OpenSSL 3 (see secure.h): policy table, key
 * derivation (P_SHA), asymmetric and symmetric sealing and opening of chunks,
 * RSA signatures and encryption. Every length from the wire is checked before
 * it is used; failures name what did not verify, never key material. */
#include "io/opcua/secure.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "io/opcua/codec.h"

#define URI_BASE "http://opcfoundation.org/UA/SecurityPolicy#"
#define RSA_SHA1 "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
#define RSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
#define RSA_PSS_SHA256 "http://opcfoundation.org/UA/security/rsa-pss-sha2-256"
#define RSA_15 "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
#define RSA_OAEP "http://www.w3.org/2001/04/xmlenc#rsa-oaep"
#define RSA_OAEP_SHA256 "http://opcfoundation.org/UA/security/rsa-oaep-sha2-256"
#define AES_BLOCK 16

const struct ua_policy ua_policy_none = {.name = "None", .uri = URI_BASE "None"};

static const struct ua_policy policies[] = {
    {"Basic128Rsa15", URI_BASE "Basic128Rsa15", UA_SIGN_PKCS1_SHA1, UA_ENC_PKCS1, 0, 16, 16, 16, 0,
     1, RSA_SHA1, RSA_15},
    {"Basic256", URI_BASE "Basic256", UA_SIGN_PKCS1_SHA1, UA_ENC_OAEP_SHA1, 0, 24, 32, 32, 0, 1,
     RSA_SHA1, RSA_OAEP},
    {"Basic256Sha256", URI_BASE "Basic256Sha256", UA_SIGN_PKCS1_SHA256, UA_ENC_OAEP_SHA1, 1, 32, 32,
     32, 1, 0, RSA_SHA256, RSA_OAEP},
    {"Aes128_Sha256_RsaOaep", URI_BASE "Aes128_Sha256_RsaOaep", UA_SIGN_PKCS1_SHA256,
     UA_ENC_OAEP_SHA1, 1, 32, 16, 32, 2, 0, RSA_SHA256, RSA_OAEP},
    {"Aes256_Sha256_RsaPss", URI_BASE "Aes256_Sha256_RsaPss", UA_SIGN_PSS_SHA256,
     UA_ENC_OAEP_SHA256, 1, 32, 32, 32, 3, 0, RSA_PSS_SHA256, RSA_OAEP_SHA256},
};

const struct ua_policy *ua_policy_by_name(const char *name)
{
    if (strcmp(name, "None") == 0)
        return &ua_policy_none;
    for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++)
        if (strcmp(policies[i].name, name) == 0)
            return &policies[i];
    return NULL;
}

const struct ua_policy *ua_policy_by_uri(const char *uri, size_t n)
{
    if (n == strlen(ua_policy_none.uri) && memcmp(uri, ua_policy_none.uri, n) == 0)
        return &ua_policy_none;
    for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++)
        if (n == strlen(policies[i].uri) && memcmp(uri, policies[i].uri, n) == 0)
            return &policies[i];
    return NULL;
}

const char *ua_mode_name(int mode)
{
    return mode == UA_MODE_SIGN ? "Sign" : mode == UA_MODE_SIGN_ENCRYPT ? "SignAndEncrypt" : "None";
}

void ua_sec_init(struct ua_sec *s)
{
    memset(s, 0, sizeof(*s));
    s->policy = &ua_policy_none;
    s->mode = UA_MODE_NONE;
    tp_buf_init(&s->tmp);
}

void ua_sec_free(struct ua_sec *s)
{
    OPENSSL_cleanse(s->recv, sizeof(s->recv));
    OPENSSL_cleanse(&s->send, sizeof(s->send));
    tp_buf_free(&s->tmp);
}

int ua_sec_new_nonce(struct ua_sec *s)
{
    return getrandom(s->client_nonce, sizeof(s->client_nonce), 0) ==
                   (ssize_t)sizeof(s->client_nonce)
               ? 0
               : TP_IO;
}

static size_t mac_len(const struct ua_policy *p)
{
    return p->sha256 ? 32 : 20;
}

static int hmac(const struct ua_policy *p, const uint8_t *key, size_t key_len, const uint8_t *a,
                size_t an, const uint8_t *b, size_t bn, uint8_t out[32])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", p->sha256 ? "SHA256" : "SHA1", 0),
        OSSL_PARAM_construct_end()};
    size_t n = 0;
    int ok = ctx && EVP_MAC_init(ctx, key, key_len, params) && EVP_MAC_update(ctx, a, an) &&
             (!bn || EVP_MAC_update(ctx, b, bn)) && EVP_MAC_final(ctx, out, &n, 32);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok ? 0 : TP_IO;
}

/* P_SHA256 / P_SHA1 (RFC 5246 §5 P_hash): out_len bytes from secret and seed. */
static int p_hash(const struct ua_policy *p, const uint8_t *secret, size_t sn, const uint8_t *seed,
                  size_t seed_n, uint8_t *out, size_t out_len)
{
    uint8_t a[32], block[32];
    size_t h = mac_len(p), done = 0;
    if (seed_n > 64 || hmac(p, secret, sn, seed, seed_n, NULL, 0, a)) /* A(1) */
        return TP_IO;
    while (done < out_len) {
        if (hmac(p, secret, sn, a, h, seed, seed_n, block))
            return TP_IO;
        size_t k = out_len - done < h ? out_len - done : h;
        memcpy(out + done, block, k);
        done += k;
        if (hmac(p, secret, sn, a, h, NULL, 0, a))
            return TP_IO;
    }
    OPENSSL_cleanse(block, sizeof(block));
    return 0;
}

static int derive_one(const struct ua_policy *p, const uint8_t *secret, const uint8_t *seed,
                      size_t n, struct ua_keyset *k)
{
    uint8_t out[UA_MAX_KEY * 2 + AES_BLOCK];
    size_t sl = (size_t)p->sig_key_len, el = (size_t)p->enc_key_len;
    if (p_hash(p, secret, n, seed, n, out, sl + el + AES_BLOCK))
        return TP_IO;
    memcpy(k->sig, out, sl);
    memcpy(k->enc, out + sl, el);
    memcpy(k->iv, out + sl + el, AES_BLOCK);
    OPENSSL_cleanse(out, sizeof(out));
    k->valid = 1;
    return 0;
}

int ua_sec_derive(struct ua_sec *s, uint32_t token, const uint8_t *server_nonce, size_t n,
                  struct tp_error *err)
{
    const struct ua_policy *p = s->policy;
    if (n != (size_t)p->nonce_len)
        return tp_error_set(err, TP_PARSE, "opcua: server nonce of %zu bytes (%s needs %d)", n,
                            p->name, p->nonce_len);
    struct ua_keyset send = {.token = token}, recv = {.token = token};
    if (derive_one(p, server_nonce, s->client_nonce, n, &send) ||
        derive_one(p, s->client_nonce, server_nonce, n, &recv))
        return tp_error_set(err, TP_IO, "opcua: key derivation failed");
    s->send = send;
    if (s->recv[0].valid && s->recv[0].token != token)
        memmove(&s->recv[1], &s->recv[0], sizeof(s->recv) - sizeof(s->recv[0]));
    s->recv[0] = recv;
    OPENSSL_cleanse(&send, sizeof(send));
    OPENSSL_cleanse(&recv, sizeof(recv));
    return 0;
}

/* ---- RSA ---- */

static int set_pss_or_pkcs1(EVP_PKEY_CTX *pctx, enum ua_asym_sign sign)
{
    if (sign != UA_SIGN_PSS_SHA256)
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
}

int ua_rsa_sign(const struct ua_policy *p, void *key, const uint8_t *data, size_t n,
                struct tp_buf *sig)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t len = (size_t)EVP_PKEY_get_size(key);
    int ok =
        md && !tp_buf_reserve(sig, len) &&
        EVP_DigestSignInit(md, &pctx, p->sign == UA_SIGN_PKCS1_SHA1 ? EVP_sha1() : EVP_sha256(),
                           NULL, key) == 1 &&
        set_pss_or_pkcs1(pctx, p->sign) &&
        EVP_DigestSign(md, (unsigned char *)sig->data + sig->len, &len, data, n) == 1;
    EVP_MD_CTX_free(md);
    if (!ok)
        return TP_IO;
    sig->len += len;
    return 0;
}

int ua_rsa_verify(const struct ua_policy *p, void *key, const uint8_t *data, size_t n,
                  const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok =
        md &&
        EVP_DigestVerifyInit(md, &pctx, p->sign == UA_SIGN_PKCS1_SHA1 ? EVP_sha1() : EVP_sha256(),
                             NULL, key) == 1 &&
        set_pss_or_pkcs1(pctx, p->sign) && EVP_DigestVerify(md, sig, sig_len, data, n) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : TP_IO;
}

static size_t oaep_overhead(enum ua_asym_enc enc)
{
    return enc == UA_ENC_OAEP_SHA256 ? 66 : enc == UA_ENC_OAEP_SHA1 ? 42 : 11;
}

static EVP_PKEY_CTX *rsa_ctx(const struct ua_policy *p, void *key, int decrypt)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);
    int ok = c && (decrypt ? EVP_PKEY_decrypt_init(c) : EVP_PKEY_encrypt_init(c)) == 1;
    if (ok && p->enc == UA_ENC_PKCS1)
        ok = EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) > 0;
    else if (ok)
        ok = EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) > 0 &&
             (p->enc != UA_ENC_OAEP_SHA256 || (EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) > 0 &&
                                               EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) > 0));
    if (!ok) {
        EVP_PKEY_CTX_free(c);
        return NULL;
    }
    return c;
}

int ua_rsa_encrypt(const struct ua_policy *p, void *pub, const uint8_t *in, size_t n,
                   struct tp_buf *out)
{
    size_t k = (size_t)EVP_PKEY_get_size(pub), block = k - oaep_overhead(p->enc);
    EVP_PKEY_CTX *c = rsa_ctx(p, pub, 0);
    int ok = c != NULL;
    for (size_t off = 0; ok && off < n; off += block) {
        size_t len = k, m = n - off < block ? n - off : block;
        ok = !tp_buf_reserve(out, k) &&
             EVP_PKEY_encrypt(c, (unsigned char *)out->data + out->len, &len, in + off, m) == 1;
        if (ok)
            out->len += len;
    }
    EVP_PKEY_CTX_free(c);
    return ok ? 0 : TP_IO;
}

/* ---- asymmetric chunks (OpenSecureChannel) ---- */

static void put_size(struct tp_buf *b, uint32_t size)
{
    ua_put_u32_at(b, 4, size);
}

int ua_sec_asym_seal(struct ua_sec *s, struct tp_buf *b, size_t seq_off, struct tp_error *err)
{
    const struct ua_policy *p = s->policy;
    size_t k = (size_t)ua_cert_key_bytes(s->peer), sig_len = (size_t)ua_cert_key_bytes(s->own);
    size_t block = k - oaep_overhead(p->enc), extra = k > 256;
    size_t n = b->len - seq_off + 1 + extra + sig_len;
    size_t pad = (block - n % block) % block;
    for (size_t i = 0; i <= pad; i++)
        if (tp_buf_putc(b, (char)(pad & 0xff)))
            return tp_error_set(err, TP_NOMEM, "out of memory");
    if (extra && tp_buf_putc(b, (char)(pad >> 8)))
        return tp_error_set(err, TP_NOMEM, "out of memory");
    size_t plain = b->len - seq_off + sig_len;
    put_size(b, (uint32_t)(seq_off + plain / block * k));
    if (ua_rsa_sign(p, s->own->key, (const uint8_t *)b->data, b->len, b))
        return tp_error_set(err, TP_IO, "opcua: signing the OpenSecureChannel request failed");
    tp_buf_reset(&s->tmp);
    if (ua_rsa_encrypt(p, s->peer->key, (const uint8_t *)b->data + seq_off, b->len - seq_off,
                       &s->tmp))
        return tp_error_set(err, TP_IO, "opcua: encrypting the OpenSecureChannel request failed");
    b->len = seq_off;
    return tp_buf_append(b, s->tmp.data, s->tmp.len) ? tp_error_set(err, TP_NOMEM, "out of memory")
                                                     : 0;
}

/* Removes the padding before the signature: plaintext p[0..*n) without the
 * signature; key_bytes of the key it was encrypted with decide ExtraPadding. */
static int strip_padding(const uint8_t *p, size_t *n, size_t min, int extra)
{
    if (*n < min + 1 + (size_t)extra)
        return TP_PARSE;
    size_t pad = p[*n - 1 - extra];
    if (extra)
        pad |= (size_t)p[*n - 1] << 8;
    if (*n < min + pad + 1 + (size_t)extra)
        return TP_PARSE;
    *n -= pad + 1 + (size_t)extra;
    return 0;
}

int ua_sec_asym_open(struct ua_sec *s, const uint8_t *f, size_t len, struct tp_buf *out,
                     struct tp_error *err)
{
    const struct ua_policy *p = s->policy;
    struct ua_dec d;
    ua_dec_init(&d, f, len);
    ua_dec_bytes(&d, 8);
    ua_dec_u32(&d); /* channel */
    struct ua_str uri = ua_dec_string(&d), cert = ua_dec_string(&d), thumb = ua_dec_string(&d);
    if (d.err)
        return tp_error_set(err, TP_PARSE, "opcua: truncated OPN security header");
    if (uri.len < 0 || !ua_policy_by_uri(uri.s, (size_t)uri.len) ||
        ua_policy_by_uri(uri.s, (size_t)uri.len) != p)
        return tp_error_set(err, TP_PARSE, "opcua: OPN response with another security policy");
    uint8_t mine[UA_THUMBPRINT_LEN];
    ua_cert_thumbprint(s->own, mine);
    if (thumb.len != UA_THUMBPRINT_LEN || memcmp(thumb.s, mine, UA_THUMBPRINT_LEN) != 0)
        return tp_error_set(err, TP_PARSE,
                            "opcua: OPN response encrypted for another client certificate");
    if (cert.len < (int32_t)s->peer->der_len || memcmp(cert.s, s->peer->der, s->peer->der_len))
        return tp_error_set(err, TP_PARSE,
                            "opcua: OPN response signed by another certificate than the "
                            "endpoint's");
    size_t k = (size_t)ua_cert_key_bytes(s->own), sig_len = (size_t)ua_cert_key_bytes(s->peer);
    size_t hdr = d.pos, enc = len - hdr;
    if (enc == 0 || enc % k)
        return tp_error_set(err, TP_PARSE, "opcua: OPN encrypted part of %zu bytes", enc);
    tp_buf_reset(&s->tmp);
    EVP_PKEY_CTX *c = rsa_ctx(p, s->own->key, 1);
    int ok = c && !tp_buf_append(&s->tmp, (const char *)f, hdr);
    for (size_t off = hdr; ok && off < len; off += k) {
        size_t m = k;
        ok = !tp_buf_reserve(&s->tmp, k) &&
             EVP_PKEY_decrypt(c, (unsigned char *)s->tmp.data + s->tmp.len, &m, f + off, k) == 1;
        if (ok)
            s->tmp.len += m;
    }
    EVP_PKEY_CTX_free(c);
    if (!ok)
        return tp_error_set(err, TP_PARSE, "opcua: cannot decrypt the OPN response");
    const uint8_t *t = (const uint8_t *)s->tmp.data;
    size_t n = s->tmp.len;
    if (n < hdr + 8 + sig_len ||
        ua_rsa_verify(p, s->peer->key, t, n - sig_len, t + n - sig_len, sig_len))
        return tp_error_set(err, TP_PARSE, "opcua: the OPN response signature does not verify");
    n -= sig_len;
    if (strip_padding(t, &n, hdr + 8, k > 256))
        return tp_error_set(err, TP_PARSE, "opcua: bad padding in the OPN response");
    tp_buf_reset(out);
    return tp_buf_append(out, (const char *)t + 8, n - 8)
               ? tp_error_set(err, TP_NOMEM, "out of memory")
               : 0;
}

/* ---- symmetric chunks ---- */

static int aes(const struct ua_policy *p, const struct ua_keyset *k, int enc, const uint8_t *in,
               size_t n, uint8_t *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    int ok = c &&
             EVP_CipherInit_ex(c, p->enc_key_len == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc(),
                               NULL, k->enc, k->iv, enc) == 1 &&
             EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
             EVP_CipherUpdate(c, out, &l1, in, (int)n) == 1 &&
             EVP_CipherFinal_ex(c, out + l1, &l2) == 1 && (size_t)(l1 + l2) == n;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : TP_IO;
}

size_t ua_sec_sym_max_body(const struct ua_sec *s, size_t chunk_size)
{
    size_t sig = mac_len(s->policy), room = chunk_size - 16;
    if (s->mode == UA_MODE_SIGN_ENCRYPT)
        return room / AES_BLOCK * AES_BLOCK - 8 - sig - 1;
    return room - 8 - sig;
}

int ua_sec_sym_seal(struct ua_sec *s, struct tp_buf *b, struct tp_error *err)
{
    const struct ua_policy *p = s->policy;
    size_t sig = mac_len(p);
    if (s->mode == UA_MODE_SIGN_ENCRYPT) {
        size_t n = b->len - 16 + 1 + sig, pad = (AES_BLOCK - n % AES_BLOCK) % AES_BLOCK;
        for (size_t i = 0; i <= pad; i++)
            if (tp_buf_putc(b, (char)pad))
                return tp_error_set(err, TP_NOMEM, "out of memory");
    }
    put_size(b, (uint32_t)(b->len + sig));
    uint8_t mac[32];
    if (tp_buf_reserve(b, sig) || hmac(p, s->send.sig, (size_t)p->sig_key_len,
                                       (const uint8_t *)b->data, b->len, NULL, 0, mac))
        return tp_error_set(err, TP_IO, "opcua: signing a message failed");
    memcpy(b->data + b->len, mac, sig);
    b->len += sig;
    if (s->mode != UA_MODE_SIGN_ENCRYPT)
        return 0;
    uint8_t *q = (uint8_t *)b->data + 16;
    tp_buf_reset(&s->tmp);
    if (tp_buf_reserve(&s->tmp, b->len) ||
        aes(p, &s->send, 1, q, b->len - 16, (uint8_t *)s->tmp.data))
        return tp_error_set(err, TP_IO, "opcua: encrypting a message failed");
    memcpy(q, s->tmp.data, b->len - 16);
    return 0;
}

int ua_sec_sym_open(struct ua_sec *s, const uint8_t *f, size_t len, struct tp_buf *out,
                    struct tp_error *err)
{
    const struct ua_policy *p = s->policy;
    size_t sig = mac_len(p);
    if (len < 16 + 8 + sig)
        return tp_error_set(err, TP_PARSE, "opcua: secured MSG frame of %zu bytes too short", len);
    uint32_t token =
        (uint32_t)f[12] | (uint32_t)f[13] << 8 | (uint32_t)f[14] << 16 | (uint32_t)f[15] << 24;
    const struct ua_keyset *k = NULL;
    for (int i = 0; i < UA_RECV_TOKENS && !k; i++)
        if (s->recv[i].valid && s->recv[i].token == token)
            k = &s->recv[i];
    if (!k)
        return tp_error_set(err, TP_PARSE, "opcua: MSG with unknown security token %u", token);
    tp_buf_reset(&s->tmp);
    if (tp_buf_append(&s->tmp, (const char *)f, len))
        return tp_error_set(err, TP_NOMEM, "out of memory");
    uint8_t *t = (uint8_t *)s->tmp.data;
    if (s->mode == UA_MODE_SIGN_ENCRYPT &&
        ((len - 16) % AES_BLOCK || aes(p, k, 0, f + 16, len - 16, t + 16)))
        return tp_error_set(err, TP_PARSE, "opcua: cannot decrypt a MSG frame of %zu bytes", len);
    uint8_t mac[32];
    size_t n = len - sig;
    if (hmac(p, k->sig, (size_t)p->sig_key_len, t, n, NULL, 0, mac) ||
        CRYPTO_memcmp(mac, t + n, sig) != 0)
        return tp_error_set(err, TP_PARSE,
                            "opcua: a MSG frame's signature does not verify (%zu bytes, token %u, "
                            "%s keys)",
                            len, token, k == &s->recv[0] ? "current" : "an older token's");
    if (s->mode == UA_MODE_SIGN_ENCRYPT && strip_padding(t, &n, 24, 0))
        return tp_error_set(err, TP_PARSE, "opcua: bad padding in a MSG frame");
    tp_buf_reset(out);
    return tp_buf_append(out, (const char *)t + 8, n - 8)
               ? tp_error_set(err, TP_NOMEM, "out of memory")
               : 0;
}
