/* OPC UA service calls over the secure channel (see client.h): request
 * headers, synchronous calls, response headers. Sessions: session.c. */
#include "core/clock.h"
#include "io/opcua/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void ua_client_init(struct ua_client *cl, int wake_fd, uint32_t max_msg_size, uint32_t max_chunks,
                    int timeout_ms)
{
    memset(cl, 0, sizeof(*cl));
    ua_conn_init(&cl->conn, wake_fd, max_msg_size, max_chunks);
    tp_buf_init(&cl->auth);
    tp_buf_init(&cl->req);
    tp_buf_init(&cl->resp);
    ua_sec_init(&cl->sec);
    cl->timeout_ms = timeout_ms;
    cl->session_timeout_ms = 60000.0;
}

void ua_client_free(struct ua_client *cl)
{
    ua_conn_free(&cl->conn);
    tp_buf_free(&cl->auth);
    tp_buf_free(&cl->req);
    tp_buf_free(&cl->resp);
    ua_sec_free(&cl->sec);
    ua_cert_free(&cl->own);
    ua_cert_free(&cl->server);
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
