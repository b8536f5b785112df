/* OPC UA endpoint descriptions, GetEndpoints discovery and the choice of the
 * endpoint (see endpoint.h). */
#include "io/opcua/endpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/opcua/client.h"

#define MAX_ENDPOINTS 256

static void copy_str(char *dst, size_t cap, struct ua_str s)
{
    size_t n = s.len > 0 ? (size_t)s.len : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, s.s, n);
    dst[n] = 0;
}

void ua_endpoint_decode(struct ua_dec *d, struct ua_endpoint *e)
{
    memset(e, 0, sizeof(*e));
    ua_dec_string(d); /* endpointUrl */
    copy_str(e->app_uri, sizeof(e->app_uri), ua_dec_string(d));
    ua_dec_string(d); /* productUri */
    ua_dec_skip(d, UA_LOCALIZEDTEXT);
    ua_dec_u32(d);    /* applicationType */
    ua_dec_string(d); /* gatewayServerUri */
    ua_dec_string(d); /* discoveryProfileUri */
    ua_dec_skip_array(d, UA_STRING);
    struct ua_str cert = ua_dec_string(d);
    e->mode = (int)ua_dec_u32(d);
    struct ua_str uri = ua_dec_string(d);
    copy_str(e->policy_uri, sizeof(e->policy_uri), uri);
    e->policy = uri.len > 0 ? ua_policy_by_uri(uri.s, (size_t)uri.len) : NULL;
    int32_t n = ua_dec_len(d, 1024);
    for (int32_t i = 0; i < n && !d->err; i++) {
        struct ua_token_policy t = {.type = -1};
        copy_str(t.id, sizeof(t.id), ua_dec_string(d));
        t.type = (int)ua_dec_u32(d);
        ua_dec_string(d); /* issuedTokenType */
        ua_dec_string(d); /* issuerEndpointUrl */
        struct ua_str tp = ua_dec_string(d);
        if (tp.len > 0) {
            t.policy = ua_policy_by_uri(tp.s, (size_t)tp.len);
            t.unknown_policy = t.policy == NULL;
        }
        if (e->n_tokens < UA_MAX_TOKENS)
            e->tokens[e->n_tokens++] = t;
    }
    ua_dec_string(d); /* transportProfileUri */
    e->level = ua_dec_u8(d);
    if (!d->err && cert.len > 0 && (e->cert = malloc((size_t)cert.len)) != NULL) {
        memcpy(e->cert, cert.s, (size_t)cert.len);
        e->cert_len = (size_t)cert.len;
    }
}

void ua_endpoint_list_free(struct ua_endpoint_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].cert);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int ua_endpoint_list_decode(struct ua_dec *d, struct ua_endpoint_list *l)
{
    int32_t n = ua_dec_len(d, MAX_ENDPOINTS);
    if (d->err)
        return TP_PARSE;
    if (n <= 0)
        return 0;
    l->v = calloc((size_t)n, sizeof(*l->v));
    if (!l->v)
        return TP_NOMEM;
    for (int32_t i = 0; i < n && !d->err; i++) {
        ua_endpoint_decode(d, &l->v[i]);
        l->n++;
    }
    return d->err ? TP_PARSE : 0;
}

int ua_get_endpoints(struct ua_client *cl, const char *url, struct ua_endpoint_list *out,
                     struct tp_error *err)
{
    struct ua_sec *saved = cl->conn.sec;
    cl->conn.sec = NULL;
    tp_buf_reset(&cl->auth);
    int rc = ua_conn_open(&cl->conn, url, cl->timeout_ms, err);
    if (!rc &&
        (ua_req_begin(cl, UA_GET_ENDPOINTS_REQ, (uint32_t)cl->timeout_ms) ||
         ua_enc_cstring(&cl->req, url) || ua_enc_u32(&cl->req, 0) || ua_enc_u32(&cl->req, 0)))
        rc = tp_error_set(err, TP_NOMEM, "out of memory");
    struct ua_dec d;
    if (!rc)
        rc = ua_call(cl, UA_GET_ENDPOINTS_RESP, &d, err);
    if (!rc && (rc = ua_endpoint_list_decode(&d, out)) != 0)
        rc = rc == TP_NOMEM ? tp_error_set(err, rc, "out of memory")
                            : tp_error_set(err, rc, "opcua: malformed GetEndpoints response");
    ua_conn_close(&cl->conn);
    cl->conn.sec = saved;
    return rc;
}

const struct ua_token_policy *ua_endpoint_token(const struct ua_endpoint *e, int token_type)
{
    for (int i = 0; i < e->n_tokens; i++)
        if (e->tokens[i].type == token_type && !e->tokens[i].unknown_policy)
            return &e->tokens[i];
    return NULL;
}

static const char *token_name(int type)
{
    return type == UA_TOKEN_USERNAME      ? "username/password"
           : type == UA_TOKEN_CERTIFICATE ? "user certificate"
                                          : "anonymous";
}

const struct ua_endpoint *ua_endpoint_pick(const struct ua_endpoint_list *l, int mode,
                                           const struct ua_policy *policy, int token_type,
                                           struct tp_error *err)
{
    const struct ua_endpoint *best = NULL;
    int best_score = -1;
    for (size_t i = 0; i < l->n; i++) {
        const struct ua_endpoint *e = &l->v[i];
        if (!e->policy || (mode && e->mode != mode) || (policy && e->policy != policy))
            continue;
        if (e->mode < UA_MODE_NONE || e->mode > UA_MODE_SIGN_ENCRYPT)
            continue;
        if (e->policy->deprecated && policy != e->policy)
            continue;
        if ((e->mode == UA_MODE_NONE) != (e->policy == &ua_policy_none))
            continue;
        const struct ua_token_policy *t = ua_endpoint_token(e, token_type);
        if (!t && !(token_type == UA_TOKEN_ANONYMOUS && e->n_tokens == 0))
            continue;
        int score = e->mode * 10 + e->policy->rank;
        if (score > best_score) {
            best = e;
            best_score = score;
        }
    }
    if (best)
        return best;
    char offers[600] = "";
    size_t k = 0;
    for (size_t i = 0; i < l->n && k + 1 < sizeof(offers); i++) {
        const struct ua_endpoint *e = &l->v[i];
        const char *pname = strrchr(e->policy_uri, '#');
        int w = snprintf(offers + k, sizeof(offers) - k, "%s%s/%s", k ? ", " : "",
                         ua_mode_name(e->mode), pname ? pname + 1 : e->policy_uri);
        if (w < 0)
            break;
        k += (size_t)w;
        for (int j = 0; j < e->n_tokens && k + 1 < sizeof(offers); j++) {
            w = snprintf(offers + k, sizeof(offers) - k, "%s%s", j ? "+" : " (",
                         token_name(e->tokens[j].type));
            k += w > 0 ? (size_t)w : 0;
        }
        if (e->n_tokens && k + 2 < sizeof(offers))
            k += (size_t)snprintf(offers + k, sizeof(offers) - k, ")");
    }
    if (k >= sizeof(offers))
        k = sizeof(offers) - 1;
    tp_error_set(err, TP_CONFIG,
                 "opcua: the server offers no endpoint with securityMode %s, securityPolicy %s "
                 "and %s login; it offers: %s",
                 mode ? ua_mode_name(mode) : "(any)", policy ? policy->name : "(any)",
                 token_name(token_type), k ? offers : "nothing");
    return NULL;
}
