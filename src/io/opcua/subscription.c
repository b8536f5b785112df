/* Subscription handling (see subscription.h): monitored items for every
 * variable, Publish with acknowledgements, Republish on sequence gaps. */
#include "io/opcua/subscription.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

#define PUBLISH_IN_FLIGHT 3
#define ITEMS_PER_CALL 500
#define PUBLISHING_INTERVAL_MS 100.0
#define KEEPALIVE_COUNT 10
#define LIFETIME_COUNT 300
/* as gopcua (benthos-umh); also bounds the messages one PublishResponse makes */
#define MAX_NOTIFICATIONS_PER_PUBLISH 10000
#define HEARTBEAT_TIMEOUT_MS 10000
#define MAX_GAP 1000

static int on_other(void *ud, uint32_t req_id, const struct tp_buf *body, struct tp_error *err)
{
    (void)req_id;
    return ua_sub_handle_response(ud, body, err);
}

int ua_sub_create(struct ua_subscription *s, struct ua_client *cl, const struct ua_var_list *vars,
                  const struct ua_sub_params *p, ua_value_fn on_value, void *ud,
                  struct tp_error *err)
{
    ua_sub_lost(s);
    s->on_value = on_value;
    s->ud = ud;
    s->heartbeat = p->heartbeat;
    s->last_data_ms = tp_mono_ms();
    cl->on_other = on_other;
    cl->other_ud = s;
    struct tp_buf *b = &cl->req;
    if (ua_req_begin(cl, UA_CREATE_SUBSCRIPTION_REQ, (uint32_t)cl->timeout_ms) ||
        ua_enc_f64(b, PUBLISHING_INTERVAL_MS) || ua_enc_u32(b, LIFETIME_COUNT) ||
        ua_enc_u32(b, KEEPALIVE_COUNT) || ua_enc_u32(b, MAX_NOTIFICATIONS_PER_PUBLISH) ||
        ua_enc_u8(b, 1) || ua_enc_u8(b, 0))
        return tp_error_set(err, TP_NOMEM, "out of memory");
    struct ua_dec d;
    int rc = ua_call(cl, UA_CREATE_SUBSCRIPTION_RESP, &d, err);
    if (rc)
        return rc;
    s->id = ua_dec_u32(&d);
    if (d.err)
        return tp_error_set(err, TP_PARSE, "opcua: malformed CreateSubscription response");
    size_t failed = 0;
    for (size_t start = 0; start < vars->n; start += ITEMS_PER_CALL) {
        size_t end = start + ITEMS_PER_CALL < vars->n ? start + ITEMS_PER_CALL : vars->n;
        rc = ua_req_begin(cl, UA_CREATE_MONITORED_ITEMS_REQ, (uint32_t)cl->timeout_ms) ||
             ua_enc_u32(b, s->id) || ua_enc_u32(b, 2) || ua_enc_u32(b, (uint32_t)(end - start));
        for (size_t i = start; i < end && !rc; i++)
            rc =
                tp_buf_append(b, (const char *)ua_var_enc(vars, &vars->v[i]), vars->v[i].enc_len) ||
                ua_enc_u32(b, 13) || ua_enc_string(b, NULL, -1) || ua_enc_u16(b, 0) ||
                ua_enc_string(b, NULL, -1) || ua_enc_u32(b, 2) || ua_enc_u32(b, (uint32_t)i) ||
                ua_enc_f64(b, p->sampling_ms) || ua_enc_numeric_nodeid(b, 0, 0) ||
                ua_enc_u8(b, 0) || ua_enc_u32(b, p->queue_size) || ua_enc_u8(b, 1);
        if (rc)
            return tp_error_set(err, TP_NOMEM, "out of memory");
        if ((rc = ua_call(cl, UA_CREATE_MONITORED_ITEMS_RESP, &d, err)) != 0)
            return rc;
        if (ua_dec_len(&d, UA_MAX_ARRAY_LEN) != (int32_t)(end - start))
            return tp_error_set(err, TP_PARSE, "opcua: CreateMonitoredItems: wrong result count");
        for (size_t i = start; i < end; i++) {
            uint32_t status = ua_dec_u32(&d);
            ua_dec_u32(&d);
            ua_dec_f64(&d);
            ua_dec_u32(&d);
            ua_dec_skip(&d, UA_EXTENSIONOBJECT);
            if (d.err)
                return tp_error_set(err, TP_PARSE,
                                    "opcua: malformed CreateMonitoredItems response");
            if (status & 0x80000000u) {
                char tmp[16];
                if (!failed++)
                    tp_log(TP_LOG_WARN, "opcua: cannot monitor %s: %s",
                           ua_var_str(vars, vars->v[i].node_id), ua_status_name(status, tmp));
            }
        }
    }
    if (failed)
        tp_log(TP_LOG_WARN, "opcua: %zu of %zu monitored items failed", failed, vars->n);
    return TP_OK;
}

static int add_ack(struct ua_subscription *s, uint32_t seq)
{
    if (s->n_acks < sizeof(s->acks) / sizeof(s->acks[0]))
        s->acks[s->n_acks++] = seq;
    return 0;
}

static int add_gap(struct ua_subscription *s, uint32_t seq)
{
    if (s->n_gaps == s->cap_gaps) {
        size_t cap = s->cap_gaps ? s->cap_gaps * 2 : 16;
        uint32_t *g = realloc(s->gaps, cap * sizeof(*g));
        if (!g)
            return TP_NOMEM;
        s->gaps = g;
        s->cap_gaps = cap;
    }
    s->gaps[s->n_gaps++] = seq;
    return 0;
}

/* A NotificationMessage: data change notifications go to on_value. */
static int handle_notification(struct ua_subscription *s, struct ua_dec *d, int republished,
                               struct tp_error *err)
{
    uint32_t seq = ua_dec_u32(d);
    ua_dec_i64(d); /* publishTime */
    int32_t n = ua_dec_len(d, UA_MAX_ARRAY_LEN);
    if (d->err)
        return tp_error_set(err, TP_PARSE, "opcua: malformed NotificationMessage");
    if (n <= 0)
        return 0; /* keep-alive */
    if (!republished) {
        if (s->last_seq && seq > s->last_seq + 1) {
            uint32_t missing = seq - s->last_seq - 1;
            tp_log(TP_LOG_WARN, "opcua: notification sequence gap: %u message(s) before %u",
                   missing, seq);
            for (uint32_t k = s->last_seq + 1; k < seq; k++)
                if (k - s->last_seq > MAX_GAP || add_gap(s, k)) {
                    s->missed++;
                }
        }
        if (seq > s->last_seq)
            s->last_seq = seq;
    }
    add_ack(s, seq);
    s->last_data_ms = tp_mono_ms();
    for (int32_t i = 0; i < n; i++) {
        struct ua_nodeid type;
        const uint8_t *body;
        size_t len;
        uint8_t enc;
        ua_dec_extension_object(d, &type, &body, &len, &enc);
        if (d->err)
            return tp_error_set(err, TP_PARSE, "opcua: malformed notification data");
        if (!body || type.ns != 0 || type.type != UA_ID_NUMERIC)
            continue;
        struct ua_dec b;
        ua_dec_init(&b, body, len);
        if (type.num == UA_STATUS_CHANGE_NOTIFICATION) {
            char tmp[16];
            tp_log(TP_LOG_WARN, "opcua: subscription status changed: %s",
                   ua_status_name(ua_dec_u32(&b), tmp));
            continue;
        }
        if (type.num != UA_DATA_CHANGE_NOTIFICATION)
            continue;
        int32_t items = ua_dec_len(&b, UA_MAX_ARRAY_LEN);
        for (int32_t k = 0; k < items && !b.err; k++) {
            uint32_t handle = ua_dec_u32(&b);
            struct ua_datavalue dv;
            ua_dec_datavalue(&b, &dv);
            if (b.err)
                break;
            if (s->on_value && s->on_value(s->ud, handle, &dv))
                return tp_error_set(err, TP_NOMEM, "out of memory");
        }
        if (b.err)
            return tp_error_set(err, TP_PARSE, "opcua: malformed DataChangeNotification");
    }
    return 0;
}

int ua_sub_handle_response(struct ua_subscription *s, const struct tp_buf *body,
                           struct tp_error *err)
{
    struct ua_dec d;
    ua_dec_init(&d, body->data, body->len);
    uint32_t type, status;
    if (ua_resp_header(&d, &type, &status))
        return tp_error_set(err, TP_PARSE, "opcua: truncated response header");
    if (type != UA_PUBLISH_RESP && type != UA_SERVICE_FAULT)
        return tp_error_set(err, TP_PARSE, "opcua: unexpected response type %u", type);
    if (s->in_flight > 0)
        s->in_flight--;
    char tmp[16];
    if (status & 0x80000000u) {
        const char *name = ua_status_name(status, tmp);
        if (strcmp(name, "BadTooManyPublishRequests") == 0 || strcmp(name, "BadTimeout") == 0)
            return 0;
        return tp_error_set(err, TP_IO, "opcua: Publish failed: %s", name);
    }
    ua_dec_u32(&d); /* subscriptionId */
    ua_dec_skip_array(&d, UA_UINT32);
    ua_dec_u8(&d); /* moreNotifications */
    return handle_notification(s, &d, 0, err);
}

static int republish(struct ua_subscription *s, struct ua_client *cl, struct tp_error *err)
{
    s->republishing = 1;
    int rc = 0;
    while (!rc && s->n_gaps) {
        uint32_t seq = s->gaps[0];
        memmove(s->gaps, s->gaps + 1, (--s->n_gaps) * sizeof(*s->gaps));
        if (ua_req_begin(cl, UA_REPUBLISH_REQ, (uint32_t)cl->timeout_ms) ||
            ua_enc_u32(&cl->req, s->id) || ua_enc_u32(&cl->req, seq)) {
            rc = tp_error_set(err, TP_NOMEM, "out of memory");
            break;
        }
        struct ua_dec d;
        struct tp_error e2 = {.msg = ""};
        int r = ua_call(cl, UA_REPUBLISH_RESP, &d, &e2);
        if (r == TP_OK) {
            s->republished++;
            rc = handle_notification(s, &d, 1, err);
        } else if (r == TP_IO && strstr(e2.msg, "failed: Bad")) { /* not available any more */
            s->missed++;
            tp_log(TP_LOG_WARN, "opcua: notification %u lost (%s); %llu lost so far", seq,
                   strstr(e2.msg, "Bad"), (unsigned long long)s->missed);
        } else {
            *err = e2;
            rc = r;
        }
    }
    s->republishing = 0;
    return rc;
}

int ua_sub_step(struct ua_subscription *s, struct ua_client *cl, int timeout_ms,
                struct tp_error *err)
{
    while (s->in_flight < PUBLISH_IN_FLIGHT) {
        struct tp_buf *b = &cl->req;
        int rc = ua_req_begin(cl, UA_PUBLISH_REQ, 0) || ua_enc_u32(b, (uint32_t)s->n_acks);
        for (size_t i = 0; i < s->n_acks && !rc; i++)
            rc = ua_enc_u32(b, s->id) || ua_enc_u32(b, s->acks[i]);
        if (rc)
            return tp_error_set(err, TP_NOMEM, "out of memory");
        uint32_t req;
        if ((rc = ua_conn_send(&cl->conn, b, &req, err)) != 0)
            return rc;
        s->n_acks = 0;
        s->in_flight++;
    }
    uint32_t req;
    int rc = ua_conn_recv(&cl->conn, timeout_ms, &req, &cl->resp, err);
    if (rc == TP_AGAIN) {
        if (s->heartbeat && tp_mono_ms() - s->last_data_ms > HEARTBEAT_TIMEOUT_MS)
            return tp_error_set(err, TP_IO, "opcua: no heartbeat for %d s",
                                HEARTBEAT_TIMEOUT_MS / 1000);
        return TP_AGAIN;
    }
    if (rc)
        return rc;
    if ((rc = ua_sub_handle_response(s, &cl->resp, err)) != 0)
        return rc;
    if (s->n_gaps && !s->republishing)
        return republish(s, cl, err);
    return TP_OK;
}

void ua_sub_lost(struct ua_subscription *s)
{
    s->id = 0;
    s->last_seq = 0;
    s->n_acks = 0;
    s->in_flight = 0;
    s->n_gaps = 0;
}

void ua_sub_free(struct ua_subscription *s)
{
    free(s->gaps);
    s->gaps = NULL;
    s->n_gaps = s->cap_gaps = 0;
}
