/* OPC UA client session over a secure channel: request/response headers,
 * ServiceFault handling, synchronous calls (responses to other requests, e.g.
 * Publish, are handed to a callback meanwhile), CreateSession and
 * ActivateSession (anonymous or username/password on a None endpoint) and
 * CloseSession. */
#ifndef TP_OPCUA_CLIENT_H
#define TP_OPCUA_CLIENT_H

#include <stdint.h>

#include "io/opcua/codec.h"
#include "io/opcua/transport.h"

/* Numeric binary encoding ids of the services used (namespace 0). */
enum {
    UA_SERVICE_FAULT = 397,
    UA_CREATE_SESSION_REQ = 461,
    UA_CREATE_SESSION_RESP = 464,
    UA_ACTIVATE_SESSION_REQ = 467,
    UA_ACTIVATE_SESSION_RESP = 470,
    UA_CLOSE_SESSION_REQ = 473,
    UA_CLOSE_SESSION_RESP = 476,
    UA_BROWSE_REQ = 527,
    UA_BROWSE_RESP = 530,
    UA_BROWSE_NEXT_REQ = 533,
    UA_BROWSE_NEXT_RESP = 536,
    UA_READ_REQ = 631,
    UA_READ_RESP = 634,
    UA_CREATE_MONITORED_ITEMS_REQ = 751,
    UA_CREATE_MONITORED_ITEMS_RESP = 754,
    UA_CREATE_SUBSCRIPTION_REQ = 787,
    UA_CREATE_SUBSCRIPTION_RESP = 790,
    UA_PUBLISH_REQ = 826,
    UA_PUBLISH_RESP = 829,
    UA_REPUBLISH_REQ = 832,
    UA_REPUBLISH_RESP = 835,
    UA_DATA_CHANGE_NOTIFICATION = 811,
    UA_STATUS_CHANGE_NOTIFICATION = 820,
};

struct ua_client;
/* Receives a response that is not the one a call waits for (body: type NodeId first). */
typedef int (*ua_other_fn)(void *ud, uint32_t req_id, const struct tp_buf *body,
                           struct tp_error *err);

struct ua_client {
    struct ua_conn conn;
    struct tp_buf auth; /* encoded authentication token NodeId */
    struct tp_buf req;  /* request being built */
    struct tp_buf resp; /* last response */
    uint32_t handle;
    int timeout_ms;
    double session_timeout_ms; /* requested in CreateSession (default 60 s) */
    ua_other_fn on_other;
    void *other_ud;
};

void ua_client_init(struct ua_client *cl, int wake_fd, uint32_t max_msg_size, uint32_t max_chunks,
                    int timeout_ms);
void ua_client_free(struct ua_client *cl);

/* Connects, creates and activates a session. username NULL: anonymous. */
int ua_session_open(struct ua_client *cl, const char *endpoint, const char *username,
                    const char *password, struct tp_error *err);
/* CloseSession (best effort) and closes the channel. */
void ua_session_close(struct ua_client *cl);

/* Starts cl->req with the type NodeId and a request header. */
int ua_req_begin(struct ua_client *cl, uint32_t type_id, uint32_t timeout_hint_ms);
/* Sends cl->req and waits for its response, of type resp_type; *d is then
 * positioned after the response header (its buffer is cl->resp). A
 * ServiceFault or a bad service result is an error naming the status. */
int ua_call(struct ua_client *cl, uint32_t resp_type, struct ua_dec *d, struct tp_error *err);
/* Decodes a response's type and header from d: TP_OK with *status set. */
int ua_resp_header(struct ua_dec *d, uint32_t *type_id, uint32_t *status);

#endif
