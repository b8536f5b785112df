/* OPC UA client session over a secure channel: request/response headers,
 * ServiceFault handling, synchronous calls (responses to other requests, e.g.
 * Publish, are handed to a callback meanwhile), endpoint choice (GetEndpoints,
 * server certificate pinning and checks), CreateSession and ActivateSession
 * (client signature; anonymous, username/password, plain or encrypted, or
 * user certificate identity) and CloseSession. */
#ifndef TP_OPCUA_CLIENT_H
#define TP_OPCUA_CLIENT_H

#include <stdint.h>

#include "io/opcua/cert.h"
#include "io/opcua/codec.h"
#include "io/opcua/secure.h"
#include "io/opcua/transport.h"

/* Numeric binary encoding ids of the services used (namespace 0). */
enum {
    UA_SERVICE_FAULT = 397,
    UA_GET_ENDPOINTS_REQ = 428,
    UA_GET_ENDPOINTS_RESP = 431,
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

/* Who we are and how to secure the session (all borrowed). */
struct ua_session_opts {
    int mode;                       /* enum ua_sec_mode; 0: pick the most secure */
    const struct ua_policy *policy; /* NULL: pick the most secure */
    const char *server_fingerprint; /* SHA3-512 hex to pin, or NULL */
    int insecure;                   /* skip server certificate checks */
    const char *username, *password;
    const struct ua_cert *user_cert; /* user certificate identity (with its key) */
    /* Fills the client certificate when a secure endpoint needs one and
     * own->x509 is NULL (generated or loaded by the caller). */
    int (*need_cert)(void *ud, struct ua_cert *own, struct tp_error *err);
    void *need_cert_ud;
};

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
    const struct ua_session_opts *opts; /* NULL: anonymous, security None */
    struct ua_sec sec;                  /* the channel's security (conn.sec points here) */
    struct ua_cert own;                 /* client certificate and key */
    struct ua_cert server;              /* the chosen endpoint's certificate */
    char server_fp[UA_FINGERPRINT_HEX]; /* its SHA3-512, logged once */
    int logged_choice;
};

void ua_client_init(struct ua_client *cl, int wake_fd, uint32_t max_msg_size, uint32_t max_chunks,
                    int timeout_ms);
void ua_client_free(struct ua_client *cl);

/* Connects, creates and activates a session as cl->opts says. */
int ua_session_open(struct ua_client *cl, const char *endpoint, struct tp_error *err);
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
