/* OPC UA sessions (see client.h): picks the endpoint (GetEndpoints unless
 * security None is asked for), checks or pins the server certificate, opens
 * the secure channel, CreateSession (server signature verified) and
 * ActivateSession with the client signature and the identity token
 * (anonymous, username/password plain or RSA-encrypted, user certificate
 * with its token signature), CloseSession. Secrets never reach a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/log.h"
#include "io/opcua/client.h"
#include "io/opcua/endpoint.h"

#define ANONYMOUS_TOKEN 321
#define USERNAME_TOKEN 324
#define X509_TOKEN 327
#define NONCE_LEN 32

/* What CreateSession told us, for ActivateSession. */
struct session_info {
    uint8_t client_nonce[NONCE_LEN];
    struct tp_buf server_nonce, server_cert;
    struct ua_token_policy token; /* the user token policy to use */
    int token_found;
};

static int token_type_of(const struct ua_session_opts *o)
{
    if (o && o->user_cert)
        return UA_TOKEN_CERTIFICATE;
    return o && o->username ? UA_TOKEN_USERNAME : UA_TOKEN_ANONYMOUS;
}

static const char *short_policy(const struct ua_endpoint *e)
{
    return e->policy ? e->policy->name : e->policy_uri;
}

/* Sets up cl->sec for endpoint e: server certificate checks and pinning, our
 * client certificate. Mode None: no security. */
static int use_endpoint(struct ua_client *cl, const struct ua_endpoint *e, struct tp_error *err)
{
    const struct ua_session_opts *o = cl->opts;
    cl->conn.sec = NULL;
    cl->sec.policy = &ua_policy_none;
    cl->sec.mode = UA_MODE_NONE;
    if (e->mode == UA_MODE_NONE)
        return 0;
    ua_cert_free(&cl->server);
    int rc = ua_cert_from_der(e->cert, e->cert_len, &cl->server, err);
    if (rc)
        return rc;
    char fp[UA_FINGERPRINT_HEX];
    ua_cert_fingerprint(cl->server.der, cl->server.der_len, fp);
    if (o->server_fingerprint && !ua_fingerprint_matches(o->server_fingerprint, fp))
        return tp_error_set(err, TP_CONFIG,
                            "opcua: server certificate fingerprint mismatch: "
                            "serverCertificateFingerprint is %s, the server presents %s",
                            o->server_fingerprint, fp);
    if (!o->server_fingerprint && strcmp(fp, cl->server_fp) != 0)
        tp_log(
            TP_LOG_INFO,
            "opcua: server certificate SHA3-512 fingerprint %s (set serverCertificateFingerprint "
            "to pin it)",
            fp);
    if (o->insecure && strcmp(fp, cl->server_fp) != 0)
        tp_log(TP_LOG_WARN, "opcua: INSECURE: insecure is set, the server certificate is NOT "
                            "checked (validity, application URI): anyone can pose as this server");
    snprintf(cl->server_fp, sizeof(cl->server_fp), "%s", fp);
    if (!o->insecure && (rc = ua_cert_check(&cl->server, e->app_uri, err)) != 0)
        return rc;
    if (!cl->own.x509) {
        if (!o->need_cert)
            return tp_error_set(err, TP_CONFIG, "opcua: a client certificate is needed");
        if ((rc = o->need_cert(o->need_cert_ud, &cl->own, err)) != 0)
            return rc;
    }
    if (ua_cert_key_bytes(&cl->own) < 128 || ua_cert_key_bytes(&cl->server) < 128)
        return tp_error_set(err, TP_CONFIG, "opcua: certificates need RSA keys of 1024+ bits");
    cl->sec.policy = e->policy;
    cl->sec.mode = e->mode;
    cl->sec.own = &cl->own;
    cl->sec.peer = &cl->server;
    cl->conn.sec = &cl->sec;
    return 0;
}

/* Picks the endpoint (discovery unless None is asked for) and sets it up. */
static int choose(struct ua_client *cl, const char *url, struct tp_error *err)
{
    const struct ua_session_opts *o = cl->opts;
    static const struct ua_endpoint none = {.policy = &ua_policy_none, .mode = UA_MODE_NONE};
    if (!o || o->mode == UA_MODE_NONE || o->policy == &ua_policy_none) {
        if (o &&
            ((o->mode && o->mode != UA_MODE_NONE) || (o->policy && o->policy != &ua_policy_none)))
            return tp_error_set(err, TP_CONFIG,
                                "opcua: securityMode None goes only with securityPolicy None");
        return use_endpoint(cl, &none, err);
    }
    struct ua_endpoint_list l = {0};
    int rc = ua_get_endpoints(cl, url, &l, err);
    const struct ua_endpoint *e = NULL;
    if (!rc && !(e = ua_endpoint_pick(&l, o->mode, o->policy, token_type_of(o), err)))
        rc = TP_CONFIG;
    if (!rc && (!o->mode || !o->policy) && !cl->logged_choice) {
        tp_log(TP_LOG_INFO,
               "opcua: chose the endpoint with securityMode %s, securityPolicy %s (the most secure "
               "offered; set securityMode and securityPolicy to pin it)",
               ua_mode_name(e->mode), short_policy(e));
        cl->logged_choice = 1;
    }
    if (!rc)
        rc = use_endpoint(cl, e, err);
    ua_endpoint_list_free(&l);
    return rc;
}

/* The server's ERR on OpenSecureChannel: say what to do about our certificate. */
static int explain_open_error(struct ua_client *cl, int rc, struct tp_error *err)
{
    if (!ua_sec_on(cl->conn.sec) ||
        (!strstr(err->msg, "BadSecurityChecksFailed") && !strstr(err->msg, "BadCertificate")))
        return rc;
    uint8_t th[UA_THUMBPRINT_LEN];
    ua_cert_thumbprint(&cl->own, th);
    char hex[2 * UA_THUMBPRINT_LEN + 1], was[sizeof(err->msg)];
    for (int i = 0; i < UA_THUMBPRINT_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02X", th[i]);
    memcpy(was, err->msg, sizeof(was));
    was[200] = 0;
    return tp_error_set(err, TP_IO,
                        "%s: the server rejected our client certificate (SHA1 thumbprint %s): "
                        "trust it on the server (e.g. move it from the server's PKI 'rejected' "
                        "folder to 'trusted'), then reconnect",
                        was, hex);
}

static int copy_str(struct tp_buf *b, struct ua_str s)
{
    tp_buf_reset(b);
    return s.len > 0 ? tp_buf_append(b, s.s, (size_t)s.len) : 0;
}

static int create_session(struct ua_client *cl, const char *url, struct session_info *si,
                          struct tp_error *err)
{
    if (getrandom(si->client_nonce, NONCE_LEN, 0) != NONCE_LEN)
        return tp_error_set(err, TP_IO, "opcua: no random bytes for the session nonce");
    int secure = ua_sec_on(cl->conn.sec);
    struct tp_buf *b = &cl->req;
    int rc = ua_req_begin(cl, UA_CREATE_SESSION_REQ, (uint32_t)cl->timeout_ms);
    if (!rc)
        rc = ua_enc_cstring(b, "urn:tagproc:client") || ua_enc_cstring(b, "urn:tagproc") ||
             ua_enc_u8(b, 2) || ua_enc_cstring(b, "tagproc") || ua_enc_u32(b, 1) ||
             ua_enc_string(b, NULL, -1) || ua_enc_string(b, NULL, -1) ||
             ua_enc_u32(b, 0xffffffffu) || ua_enc_string(b, NULL, -1) || ua_enc_cstring(b, url) ||
             ua_enc_cstring(b, "tagproc") ||
             ua_enc_string(b, (const char *)si->client_nonce, NONCE_LEN) ||
             ua_enc_string(b, secure ? (const char *)cl->own.der : NULL,
                           secure ? (int32_t)cl->own.der_len : -1) ||
             ua_enc_f64(b, cl->session_timeout_ms) || ua_enc_u32(b, cl->conn.max_msg_size);
    if (rc)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    struct ua_dec d;
    if ((rc = ua_call(cl, UA_CREATE_SESSION_RESP, &d, err)) != 0)
        return rc;
    struct ua_nodeid session_id, token;
    ua_dec_nodeid(&d, &session_id);
    size_t tok_start = d.pos;
    ua_dec_nodeid(&d, &token);
    size_t tok_end = d.pos;
    ua_dec_f64(&d);
    if (copy_str(&si->server_nonce, ua_dec_string(&d)) ||
        copy_str(&si->server_cert, ua_dec_string(&d)))
        return tp_error_set(err, TP_NOMEM, "out of memory");
    struct ua_endpoint_list l = {0};
    rc = ua_endpoint_list_decode(&d, &l);
    int want = token_type_of(cl->opts);
    const char *want_uri = cl->sec.policy->uri;
    for (size_t i = 0; i < l.n && !si->token_found; i++) {
        const struct ua_token_policy *t = ua_endpoint_token(&l.v[i], want);
        if (t && l.v[i].mode == cl->sec.mode && strcmp(l.v[i].policy_uri, want_uri) == 0) {
            si->token = *t;
            si->token_found = 1;
        }
    }
    ua_endpoint_list_free(&l);
    int32_t n = ua_dec_len(&d, 1024); /* serverSoftwareCertificates */
    for (int32_t i = 0; i < n && !d.err; i++) {
        ua_dec_string(&d);
        ua_dec_string(&d);
    }
    ua_dec_string(&d); /* serverSignature: algorithm */
    struct ua_str sig = ua_dec_string(&d);
    if (rc == TP_NOMEM)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    if (rc || d.err)
        return tp_error_set(err, TP_PARSE, "opcua: malformed CreateSession response");
    if (secure) {
        struct tp_buf signed_data;
        tp_buf_init(&signed_data);
        int bad = tp_buf_append(&signed_data, (const char *)cl->own.der, cl->own.der_len) ||
                  tp_buf_append(&signed_data, (const char *)si->client_nonce, NONCE_LEN) ||
                  sig.len <= 0 ||
                  ua_rsa_verify(cl->sec.policy, cl->server.key, (const uint8_t *)signed_data.data,
                                signed_data.len, (const uint8_t *)sig.s, (size_t)sig.len);
        tp_buf_free(&signed_data);
        if (bad)
            return tp_error_set(err, TP_IO,
                                "opcua: the server's CreateSession signature does not verify");
    }
    tp_buf_reset(&cl->auth);
    if (tp_buf_append(&cl->auth, cl->resp.data + tok_start, tok_end - tok_start))
        return tp_error_set(err, TP_NOMEM, "out of memory");
    return TP_OK;
}

/* SignatureData over the server certificate + server nonce with key. */
static int enc_signature(struct tp_buf *b, const struct ua_policy *p, void *key,
                         const struct session_info *si)
{
    struct tp_buf data, sig;
    tp_buf_init(&data);
    tp_buf_init(&sig);
    int rc = tp_buf_append(&data, si->server_cert.data, si->server_cert.len) ||
             tp_buf_append(&data, si->server_nonce.data, si->server_nonce.len) ||
             ua_rsa_sign(p, key, (const uint8_t *)data.data, data.len, &sig) ||
             ua_enc_cstring(b, p->sign_uri) || ua_enc_string(b, sig.data, (int32_t)sig.len);
    tp_buf_free(&data);
    tp_buf_free(&sig);
    return rc ? TP_IO : 0;
}

/* The security policy a user token is protected with. */
static const struct ua_policy *token_policy(const struct ua_client *cl,
                                            const struct session_info *si)
{
    return si->token.policy ? si->token.policy : cl->sec.policy;
}

/* UserNameIdentityToken: the password RSA-encrypted with the server
 * certificate (length, password, server nonce) unless the policy is None. */
static int username_token(struct ua_client *cl, const struct session_info *si, struct tp_buf *tok,
                          struct tp_error *err)
{
    const struct ua_session_opts *o = cl->opts;
    const char *pw = o->password ? o->password : "";
    const struct ua_policy *p = token_policy(cl, si);
    if (ua_enc_cstring(tok, si->token.id) || ua_enc_cstring(tok, o->username))
        return tp_error_set(err, TP_NOMEM, "out of memory");
    if (p == &ua_policy_none)
        return ua_enc_cstring(tok, pw) || ua_enc_string(tok, NULL, -1)
                   ? tp_error_set(err, TP_NOMEM, "out of memory")
                   : 0;
    struct ua_cert server;
    int rc =
        ua_cert_from_der((const uint8_t *)si->server_cert.data, si->server_cert.len, &server, err);
    if (rc)
        return tp_error_set(err, rc, "opcua: cannot encrypt the password: %s", err->msg);
    struct tp_buf plain, secret;
    tp_buf_init(&plain);
    tp_buf_init(&secret);
    size_t pl = strlen(pw);
    rc = ua_enc_u32(&plain, (uint32_t)(pl + si->server_nonce.len)) ||
         tp_buf_append(&plain, pw, pl) ||
         tp_buf_append(&plain, si->server_nonce.data, si->server_nonce.len) ||
         ua_rsa_encrypt(p, server.key, (const uint8_t *)plain.data, plain.len, &secret) ||
         ua_enc_string(tok, secret.data, (int32_t)secret.len) || ua_enc_cstring(tok, p->enc_uri);
    if (plain.data)
        memset(plain.data, 0, plain.len);
    tp_buf_free(&plain);
    tp_buf_free(&secret);
    ua_cert_free(&server);
    return rc ? tp_error_set(err, TP_IO, "opcua: cannot encrypt the password") : 0;
}

static int activate_session(struct ua_client *cl, const struct session_info *si,
                            struct tp_error *err)
{
    const struct ua_session_opts *o = cl->opts;
    int type = token_type_of(o), rc = 0;
    struct tp_buf tok;
    tp_buf_init(&tok);
    if (type == UA_TOKEN_USERNAME)
        rc = username_token(cl, si, &tok, err);
    else if (type == UA_TOKEN_CERTIFICATE)
        rc = ua_enc_cstring(&tok, si->token.id) ||
                     ua_enc_string(&tok, (const char *)o->user_cert->der,
                                   (int32_t)o->user_cert->der_len)
                 ? tp_error_set(err, TP_NOMEM, "out of memory")
                 : 0;
    else
        rc = ua_enc_cstring(&tok, si->token_found ? si->token.id : "anonymous")
                 ? tp_error_set(err, TP_NOMEM, "out of memory")
                 : 0;
    struct tp_buf *b = &cl->req;
    if (!rc && ua_req_begin(cl, UA_ACTIVATE_SESSION_REQ, (uint32_t)cl->timeout_ms))
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
    if (!rc && ua_sec_on(cl->conn.sec) && enc_signature(b, cl->sec.policy, cl->own.key, si))
        rc = tp_error_set(err, TP_IO, "opcua: signing ActivateSession failed");
    else if (!rc && !ua_sec_on(cl->conn.sec) &&
             (ua_enc_string(b, NULL, -1) || ua_enc_string(b, NULL, -1)))
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
    if (!rc && (ua_enc_u32(b, 0) || ua_enc_u32(b, 0) ||
                ua_enc_extension_object(b,
                                        type == UA_TOKEN_USERNAME      ? USERNAME_TOKEN
                                        : type == UA_TOKEN_CERTIFICATE ? X509_TOKEN
                                                                       : ANONYMOUS_TOKEN,
                                        tok.data, tok.len)))
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
    if (tok.data)
        memset(tok.data, 0, tok.len);
    tp_buf_free(&tok);
    if (rc)
        return rc;
    if (type == UA_TOKEN_CERTIFICATE) {
        const struct ua_policy *p = token_policy(cl, si);
        if (p == &ua_policy_none)
            return tp_error_set(err, TP_CONFIG,
                                "opcua: the server's user certificate token policy has no "
                                "security policy to sign with");
        if (enc_signature(b, p, o->user_cert->key, si))
            return tp_error_set(err, TP_IO, "opcua: signing the user certificate token failed");
    } else if (ua_enc_string(b, NULL, -1) || ua_enc_string(b, NULL, -1)) {
        return tp_error_set(err, TP_NOMEM, "out of memory");
    }
    struct ua_dec d;
    rc = ua_call(cl, UA_ACTIVATE_SESSION_RESP, &d, err);
    if (rc && type != UA_TOKEN_ANONYMOUS && strstr(err->msg, "Bad")) {
        char status[64];
        snprintf(status, sizeof(status), "%s", strstr(err->msg, "Bad"));
        if (type == UA_TOKEN_USERNAME)
            return tp_error_set(err, TP_IO, "opcua: login as '%s' rejected (%s)", o->username,
                                status);
        return tp_error_set(err, TP_IO, "opcua: login with the user certificate rejected (%s)",
                            status);
    }
    return rc;
}

int ua_session_open(struct ua_client *cl, const char *endpoint, struct tp_error *err)
{
    tp_buf_reset(&cl->auth);
    int rc = choose(cl, endpoint, err);
    if (rc)
        return rc;
    if ((rc = ua_conn_open(&cl->conn, endpoint, cl->timeout_ms, err)) != 0)
        return explain_open_error(cl, rc, err);
    struct session_info si = {.token_found = 0};
    tp_buf_init(&si.server_nonce);
    tp_buf_init(&si.server_cert);
    int type = token_type_of(cl->opts);
    rc = create_session(cl, endpoint, &si, err);
    if (!rc && !si.token_found && type != UA_TOKEN_ANONYMOUS)
        rc = tp_error_set(err, TP_UNSUPPORTED,
                          "opcua: the server offers no %s login on the %s/%s endpoint",
                          type == UA_TOKEN_USERNAME ? "username/password" : "user certificate",
                          ua_mode_name(cl->sec.mode), cl->sec.policy->name);
    if (!rc)
        rc = activate_session(cl, &si, err);
    tp_buf_free(&si.server_nonce);
    tp_buf_free(&si.server_cert);
    return rc;
}

void ua_session_close(struct ua_client *cl)
{
    if (cl->conn.fd >= 0 && cl->auth.len && !ua_req_begin(cl, UA_CLOSE_SESSION_REQ, 1000) &&
        !ua_enc_u8(&cl->req, 1)) {
        struct ua_dec d;
        struct tp_error err;
        int saved = cl->timeout_ms;
        cl->timeout_ms = 1000;
        cl->on_other = NULL;
        ua_call(cl, UA_CLOSE_SESSION_RESP, &d, &err);
        cl->timeout_ms = saved;
    }
    tp_buf_reset(&cl->auth);
    ua_conn_close(&cl->conn);
}
