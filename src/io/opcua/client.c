/* OPC UA session services over the secure channel (see client.h): request
 * headers, synchronous calls, CreateSession with the choice of a None
 * endpoint's user token policy, ActivateSession, CloseSession. */
#include "core/clock.h"
#include "io/opcua/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define POLICY_NONE "http://opcfoundation.org/UA/SecurityPolicy#None"
#define ANONYMOUS_TOKEN 321
#define USERNAME_TOKEN 324

void ua_client_init(struct ua_client *cl, int wake_fd, uint32_t max_msg_size, uint32_t max_chunks,
                    int timeout_ms)
{
    memset(cl, 0, sizeof(*cl));
    ua_conn_init(&cl->conn, wake_fd, max_msg_size, max_chunks);
    tp_buf_init(&cl->auth);
    tp_buf_init(&cl->req);
    tp_buf_init(&cl->resp);
    cl->timeout_ms = timeout_ms;
    cl->session_timeout_ms = 60000.0;
}

void ua_client_free(struct ua_client *cl)
{
    ua_conn_free(&cl->conn);
    tp_buf_free(&cl->auth);
    tp_buf_free(&cl->req);
    tp_buf_free(&cl->resp);
}

int ua_req_begin(struct ua_client *cl, uint32_t type_id, uint32_t timeout_hint_ms)
{
    tp_buf_reset(&cl->req);
    struct tp_buf *b = &cl->req;
    int rc = ua_enc_numeric_nodeid(b, 0, type_id);
    if (!rc)
        rc = cl->auth.len ? tp_buf_append(b, cl->auth.data, cl->auth.len)
                          : ua_enc_numeric_nodeid(b, 0, 0);
    return rc || ua_enc_u64(b, (uint64_t)ua_datetime_now()) || ua_enc_u32(b, ++cl->handle) ||
                   ua_enc_u32(b, 0) || ua_enc_string(b, NULL, -1) ||
                   ua_enc_u32(b, timeout_hint_ms) || ua_enc_numeric_nodeid(b, 0, 0) ||
                   ua_enc_u8(b, 0)
               ? TP_NOMEM
               : 0;
}

int ua_resp_header(struct ua_dec *d, uint32_t *type_id, uint32_t *status)
{
    struct ua_nodeid type;
    ua_dec_nodeid(d, &type);
    *type_id = type.ns == 0 && type.type == UA_ID_NUMERIC ? type.num : 0;
    ua_dec_i64(d); /* timestamp */
    ua_dec_u32(d); /* request handle */
    *status = ua_dec_u32(d);
    ua_dec_skip_diagnostic_info(d);
    ua_dec_skip_array(d, UA_STRING);
    ua_dec_skip(d, UA_EXTENSIONOBJECT);
    return d->err ? TP_PARSE : TP_OK;
}

int ua_call(struct ua_client *cl, uint32_t resp_type, struct ua_dec *d, struct tp_error *err)
{
    uint32_t want, got;
    int rc = ua_conn_send(&cl->conn, &cl->req, &want, err);
    if (rc)
        return rc;
    int64_t deadline = tp_mono_ms() + cl->timeout_ms;
    for (;;) {
        int64_t left = deadline - tp_mono_ms();
        rc = ua_conn_recv(&cl->conn, left > 0 ? (int)left : 0, &got, &cl->resp, err);
        if (rc == TP_AGAIN)
            return tp_error_set(err, TP_IO, "opcua: no response within %d ms", cl->timeout_ms);
        if (rc)
            return rc;
        if (got == want)
            break;
        if (cl->on_other && (rc = cl->on_other(cl->other_ud, got, &cl->resp, err)) != 0)
            return rc;
    }
    ua_dec_init(d, cl->resp.data, cl->resp.len);
    uint32_t type, status;
    if (ua_resp_header(d, &type, &status))
        return tp_error_set(err, TP_PARSE, "opcua: truncated response header");
    char tmp[16];
    if (type == UA_SERVICE_FAULT || (status & 0x80000000u))
        return tp_error_set(err, TP_IO, "opcua: service %u failed: %s", resp_type,
                            ua_status_name(status, tmp));
    if (type != resp_type)
        return tp_error_set(err, TP_PARSE, "opcua: expected response type %u, got %u", resp_type,
                            type);
    return TP_OK;
}

/* The user token policy id to use; *needs_plain_password: the policy lets a
 * password travel unencrypted (security policy None or none given). */
struct token_choice {
    char policy[128];
    int found;
    int encrypted_only; /* a username policy exists, but only with encryption */
};

static void scan_endpoint(struct ua_dec *d, int want_type, struct token_choice *tc)
{
    struct ua_str s;
    ua_dec_string(d); /* endpointUrl */
    ua_dec_string(d); /* applicationUri */
    ua_dec_string(d); /* productUri */
    ua_dec_skip(d, UA_LOCALIZEDTEXT);
    ua_dec_u32(d);
    ua_dec_string(d);
    ua_dec_string(d);
    ua_dec_skip_array(d, UA_STRING);
    ua_dec_string(d); /* serverCertificate */
    uint32_t mode = ua_dec_u32(d);
    ua_dec_string(d); /* securityPolicyUri */
    int32_t n = ua_dec_len(d, 1024);
    for (int32_t i = 0; i < n && !d->err; i++) {
        struct ua_str policy = ua_dec_string(d);
        uint32_t type = ua_dec_u32(d);
        ua_dec_string(d);
        ua_dec_string(d);
        s = ua_dec_string(d); /* securityPolicyUri of the token */
        if (d->err || mode != 1 || (int)type != want_type || tc->found)
            continue;
        int plain = s.len <= 0 || (s.len == (int32_t)strlen(POLICY_NONE) &&
                                   memcmp(s.s, POLICY_NONE, (size_t)s.len) == 0);
        if (want_type == 1 && !plain) {
            tc->encrypted_only = 1;
            continue;
        }
        if (policy.len >= 0 && (size_t)policy.len < sizeof(tc->policy)) {
            memcpy(tc->policy, policy.s ? policy.s : "", (size_t)policy.len);
            tc->policy[policy.len] = 0;
            tc->found = 1;
        }
    }
    ua_dec_string(d); /* transportProfileUri */
    ua_dec_u8(d);     /* securityLevel */
}

static int create_session(struct ua_client *cl, const char *endpoint, int want_type,
                          struct token_choice *tc, struct tp_error *err)
{
    uint8_t nonce[32];
    if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
        memset(nonce, 0x5a, sizeof(nonce));
    struct tp_buf *b = &cl->req;
    int rc = ua_req_begin(cl, UA_CREATE_SESSION_REQ, (uint32_t)cl->timeout_ms);
    if (!rc)
        rc = ua_enc_cstring(b, "urn:tagproc:client") || ua_enc_cstring(b, "urn:tagproc") ||
             ua_enc_u8(b, 2) || ua_enc_cstring(b, "tagproc") || ua_enc_u32(b, 1) ||
             ua_enc_string(b, NULL, -1) || ua_enc_string(b, NULL, -1) ||
             ua_enc_u32(b, 0xffffffffu) || ua_enc_string(b, NULL, -1) ||
             ua_enc_cstring(b, endpoint) || ua_enc_cstring(b, "tagproc") ||
             ua_enc_string(b, (const char *)nonce, sizeof(nonce)) || ua_enc_string(b, NULL, -1) ||
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
    ua_dec_string(&d); /* server nonce */
    ua_dec_string(&d); /* server certificate */
    int32_t n = ua_dec_len(&d, 1024);
    for (int32_t i = 0; i < n && !d.err; i++)
        scan_endpoint(&d, want_type, tc);
    if (d.err)
        return tp_error_set(err, TP_PARSE, "opcua: malformed CreateSession response");
    tp_buf_reset(&cl->auth);
    if (tp_buf_append(&cl->auth, cl->resp.data + tok_start, tok_end - tok_start))
        return tp_error_set(err, TP_NOMEM, "out of memory");
    return TP_OK;
}

int ua_session_open(struct ua_client *cl, const char *endpoint, const char *username,
                    const char *password, struct tp_error *err)
{
    tp_buf_reset(&cl->auth);
    int rc = ua_conn_open(&cl->conn, endpoint, cl->timeout_ms, err);
    if (rc)
        return rc;
    int want_type = username ? 1 : 0;
    struct token_choice tc = {.found = 0};
    if ((rc = create_session(cl, endpoint, want_type, &tc, err)) != 0)
        return rc;
    if (!tc.found && want_type == 1)
        return tp_error_set(err, TP_UNSUPPORTED,
                            tc.encrypted_only
                                ? "opcua: the server accepts username/password on a None "
                                  "endpoint only with an encrypted password: not yet supported"
                                : "opcua: the server offers no username/password login on a "
                                  "None endpoint");
    if (!tc.found)
        snprintf(tc.policy, sizeof(tc.policy), "anonymous"); /* servers that list none */
    struct tp_buf token;
    tp_buf_init(&token);
    rc = ua_enc_cstring(&token, tc.policy);
    if (!rc && want_type == 1)
        rc = ua_enc_cstring(&token, username) || ua_enc_cstring(&token, password ? password : "") ||
             ua_enc_string(&token, NULL, -1);
    struct tp_buf *b = &cl->req;
    if (!rc)
        rc = ua_req_begin(cl, UA_ACTIVATE_SESSION_REQ, (uint32_t)cl->timeout_ms);
    if (!rc)
        rc = ua_enc_string(b, NULL, -1) || ua_enc_string(b, NULL, -1) || ua_enc_u32(b, 0) ||
             ua_enc_u32(b, 0) ||
             ua_enc_extension_object(b, want_type ? USERNAME_TOKEN : ANONYMOUS_TOKEN, token.data,
                                     token.len) ||
             ua_enc_string(b, NULL, -1) || ua_enc_string(b, NULL, -1);
    tp_buf_free(&token);
    if (rc)
        return tp_error_set(err, TP_NOMEM, "out of memory");
    struct ua_dec d;
    rc = ua_call(cl, UA_ACTIVATE_SESSION_RESP, &d, err);
    if (rc && want_type == 1 && strstr(err->msg, "Bad")) {
        char status[64];
        snprintf(status, sizeof(status), "%s", strstr(err->msg, "Bad"));
        return tp_error_set(err, TP_IO, "opcua: login as '%s' rejected (%s)", username, status);
    }
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
