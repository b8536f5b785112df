/* OPC UA message security (Part 6 §6.7) with OpenSSL 3: the security
 * policies, asymmetric framing of OpenSecureChannel (RSA encrypt + sign),
 * symmetric framing of MSG/CLO chunks (AES-CBC + HMAC, keys derived with
 * P_SHA256/P_SHA1 per token, the keys of 3 older tokens kept for renewals),
 * padding, and the RSA signatures / encryption sessions use. */
#ifndef TP_OPCUA_SECURE_H
#define TP_OPCUA_SECURE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "io/opcua/cert.h"

enum ua_sec_mode { UA_MODE_NONE = 1, UA_MODE_SIGN = 2, UA_MODE_SIGN_ENCRYPT = 3 };

enum ua_asym_sign { UA_SIGN_NONE, UA_SIGN_PKCS1_SHA1, UA_SIGN_PKCS1_SHA256, UA_SIGN_PSS_SHA256 };
enum ua_asym_enc { UA_ENC_NONE, UA_ENC_PKCS1, UA_ENC_OAEP_SHA1, UA_ENC_OAEP_SHA256 };

struct ua_policy {
    const char *name; /* as in the config: "Basic256Sha256" */
    const char *uri;
    enum ua_asym_sign sign;
    enum ua_asym_enc enc;
    int sha256;                     /* symmetric HMAC and key derivation: SHA256 (else SHA1) */
    int sig_key_len;                /* symmetric signing key */
    int enc_key_len;                /* AES key: 16 or 32 */
    int nonce_len;                  /* secure channel nonce */
    int rank;                       /* preference when picking an endpoint (higher first) */
    int deprecated;                 /* used only when asked for by name */
    const char *sign_uri, *enc_uri; /* algorithm URIs (SignatureData, user tokens) */
};

extern const struct ua_policy ua_policy_none;
const struct ua_policy *ua_policy_by_name(const char *name);
/* By URI (length n, not NUL-terminated): NULL when unknown. */
const struct ua_policy *ua_policy_by_uri(const char *uri, size_t n);
const char *ua_mode_name(int mode);

#define UA_MAX_KEY 32
#define UA_RECV_TOKENS 4

struct ua_keyset {
    uint32_t token;
    int valid;
    uint8_t sig[UA_MAX_KEY], enc[UA_MAX_KEY], iv[16];
};

struct ua_sec {
    const struct ua_policy *policy; /* &ua_policy_none: no security */
    int mode;                       /* enum ua_sec_mode */
    const struct ua_cert *own;      /* borrowed: our certificate and private key */
    const struct ua_cert *peer;     /* borrowed: the server's certificate */
    uint8_t client_nonce[32];       /* of the last OpenSecureChannel request */
    struct ua_keyset send;          /* client keys of the current token */
    /* server keys: current token first, then older ones (a server may answer a
     * request with the token the request came with, after renewals) */
    struct ua_keyset recv[UA_RECV_TOKENS];
    struct tp_buf tmp;
};

void ua_sec_init(struct ua_sec *s);
void ua_sec_free(struct ua_sec *s);
static inline int ua_sec_on(const struct ua_sec *s)
{
    return s && s->mode != UA_MODE_NONE && s->policy && s->policy->sign != UA_SIGN_NONE;
}

/* New client nonce for an OpenSecureChannel request. */
int ua_sec_new_nonce(struct ua_sec *s);
/* Derives the keys of `token` from the server nonce of its response. */
int ua_sec_derive(struct ua_sec *s, uint32_t token, const uint8_t *server_nonce, size_t n,
                  struct tp_error *err);

/* Seals the OPN frame in b (header at 0, sequence header at seq_off): pads,
 * signs with our key, encrypts with the server's, fixes the size. */
int ua_sec_asym_seal(struct ua_sec *s, struct tp_buf *b, size_t seq_off, struct tp_error *err);
/* Opens an OPN frame (len bytes at f, header included): out gets the frame
 * after its 8-byte header with the encrypted part decrypted and signature and
 * padding removed, i.e. channel id, security header, sequence header, body. */
int ua_sec_asym_open(struct ua_sec *s, const uint8_t *f, size_t len, struct tp_buf *out,
                     struct tp_error *err);
/* Seals a MSG/CLO chunk in b (header at 0, sequence header at 16). */
int ua_sec_sym_seal(struct ua_sec *s, struct tp_buf *b, struct tp_error *err);
/* Opens a MSG chunk as ua_sec_asym_open does: out = channel id, token id,
 * sequence header, body. Picks the keys by the frame's token id. */
int ua_sec_sym_open(struct ua_sec *s, const uint8_t *f, size_t len, struct tp_buf *out,
                    struct tp_error *err);
/* Most body bytes in one symmetric chunk of chunk_size bytes. */
size_t ua_sec_sym_max_body(const struct ua_sec *s, size_t chunk_size);

/* RSA signature of data with key by the policy's asymmetric algorithm. */
int ua_rsa_sign(const struct ua_policy *p, void *key, const uint8_t *data, size_t n,
                struct tp_buf *sig);
int ua_rsa_verify(const struct ua_policy *p, void *key, const uint8_t *data, size_t n,
                  const uint8_t *sig, size_t sig_len);
/* RSA encryption with the policy's asymmetric algorithm, block by block; appended to out. */
int ua_rsa_encrypt(const struct ua_policy *p, void *pub, const uint8_t *in, size_t n,
                   struct tp_buf *out);

#endif
