/* Fuzz target for the OPC UA secured-frame parser (src/io/opcua/secure.c
 * through transport.c's ua_conn_feed): two certificates are generated once
 * and channel keys derived from fixed nonces. The first byte picks the
 * policy and what the rest is: frames fed to a Sign or SignAndEncrypt
 * connection (MSG and OPN: garbage, truncated, wrong tokens), or a body that
 * is sealed (symmetric or asymmetric), must open again to the same bytes,
 * and must fail to open once one byte (at a position the input names) is
 * changed or the frame is cut short. No crash, no leak, no sanitizer report. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/opcua/cert.h"
#include "io/opcua/codec.h"
#include "io/opcua/secure.h"
#include "io/opcua/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ua_cert client, server;
static const char *const names[] = {"Basic256Sha256", "Aes128_Sha256_RsaOaep",
                                    "Aes256_Sha256_RsaPss", "Basic256", "Basic128Rsa15"};

static void setup(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    struct tp_buf pem;
    struct tp_error err;
    tp_buf_init(&pem);
    if (ua_cert_generate("urn:fuzz:client", &client, &pem, &err) ||
        ua_cert_generate("urn:fuzz:server", &server, &pem, &err)) {
        fprintf(stderr, "fuzz_opcua_secure: %s\n", err.msg);
        abort();
    }
    tp_buf_free(&pem);
}

/* A secure channel side: own/peer certificates, keys of token 1 derived. */
static void side(struct ua_sec *s, const struct ua_policy *p, int mode, int is_server)
{
    ua_sec_init(s);
    s->policy = p;
    s->mode = mode;
    s->own = is_server ? &server : &client;
    s->peer = is_server ? &client : &server;
    uint8_t server_nonce[32];
    memset(s->client_nonce, 0x11, sizeof(s->client_nonce));
    memset(server_nonce, 0x22, sizeof(server_nonce));
    struct tp_error err;
    if (ua_sec_derive(s, 1, server_nonce, (size_t)p->nonce_len, &err))
        abort();
    if (is_server) { /* the server sends with the keys a client receives with */
        struct ua_keyset k = s->send;
        s->send = s->recv[0];
        s->recv[0] = k;
    }
}

static void feed(const struct ua_policy *p, int mode, const uint8_t *d, size_t n)
{
    struct ua_sec s;
    side(&s, p, mode, 0);
    struct ua_conn c;
    ua_conn_init(&c, -1, 1u << 20, 16);
    c.channel_id = 1;
    c.sec = &s;
    struct tp_buf body;
    tp_buf_init(&body);
    struct tp_error err;
    uint32_t req;
    (void)ua_conn_feed(&c, d, n, &req, &body, &err);
    tp_buf_free(&body);
    ua_conn_free(&c);
    ua_sec_free(&s);
}

/* Seals body as the server would, opens it as the client: same bytes back;
 * a flipped byte or a cut frame must not open. */
static void round_trip(const struct ua_policy *p, int mode, int asym, const uint8_t *d, size_t n)
{
    if (n < 2)
        return;
    size_t flip = (size_t)d[0] << 8 | d[1];
    d += 2;
    n -= 2;
    struct ua_sec srv, cli;
    side(&srv, p, mode, 1);
    side(&cli, p, mode, 0);
    struct tp_buf f, out;
    tp_buf_init(&f);
    tp_buf_init(&out);
    struct tp_error err;
    uint8_t thumb[UA_THUMBPRINT_LEN];
    ua_cert_thumbprint(&client, thumb);
    size_t head;
    int rc = tp_buf_append(&f, asym ? "OPNF\0\0\0\0" : "MSGF\0\0\0\0", 8) || ua_enc_u32(&f, 1);
    if (asym)
        rc = rc || ua_enc_cstring(&f, p->uri) ||
             ua_enc_string(&f, (const char *)server.der, (int32_t)server.der_len) ||
             ua_enc_string(&f, (const char *)thumb, UA_THUMBPRINT_LEN);
    else
        rc = rc || ua_enc_u32(&f, 1);
    head = f.len;
    rc = rc || ua_enc_u32(&f, 7) || ua_enc_u32(&f, 9) || tp_buf_append(&f, (const char *)d, n);
    if (rc)
        abort();
    rc = asym ? ua_sec_asym_seal(&srv, &f, head, &err) : ua_sec_sym_seal(&srv, &f, &err);
    if (rc)
        abort(); /* bodies of a fuzz input always fit */
    const uint8_t *fp = (const uint8_t *)f.data;
    rc = asym ? ua_sec_asym_open(&cli, fp, f.len, &out, &err)
              : ua_sec_sym_open(&cli, fp, f.len, &out, &err);
    size_t plain_head = head; /* opened: no 8-byte frame header, the 8-byte sequence header */
    if (rc || out.len != plain_head + n || memcmp(out.data + plain_head, d, n) != 0) {
        fprintf(stderr, "fuzz_opcua_secure: %s round trip lost the body (%s)\n",
                asym ? "asymmetric" : "symmetric", rc ? err.msg : "bytes differ");
        abort();
    }
    size_t at = flip % f.len;
    if (at >= 8) { /* the size field is not authenticated by the frame parser here */
        f.data[at] ^= 0x5a;
        rc = asym ? ua_sec_asym_open(&cli, fp, f.len, &out, &err)
                  : ua_sec_sym_open(&cli, fp, f.len, &out, &err);
        if (!rc)
            abort(); /* a change went through unnoticed */
        f.data[at] ^= 0x5a;
    }
    rc = asym ? ua_sec_asym_open(&cli, fp, at, &out, &err)
              : ua_sec_sym_open(&cli, fp, at, &out, &err);
    if (!rc && at < f.len)
        abort(); /* a truncated frame opened */
    tp_buf_free(&f);
    tp_buf_free(&out);
    ua_sec_free(&srv);
    ua_sec_free(&cli);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    setup();
    const struct ua_policy *p = ua_policy_by_name(names[(data[0] >> 4) % 5]);
    int mode = data[0] & 1 ? UA_MODE_SIGN_ENCRYPT : UA_MODE_SIGN;
    switch ((data[0] >> 1) % 4) {
    case 0:
    case 1:
        feed(p, mode, data + 1, size - 1);
        break;
    case 2:
        round_trip(p, mode, 0, data + 1, size - 1);
        break;
    default:
        if (size < 600) /* an OPN body stays small; RSA is slow */
            round_trip(p, mode, 1, data + 1, size - 1);
        break;
    }
    return 0;
}
