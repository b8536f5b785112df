/* OPC UA endpoint descriptions: decoding them (GetEndpoints and
 * CreateSession responses), GetEndpoints discovery over a None channel, and
 * picking the endpoint to use: the one asked for, or the most secure one the
 * server offers for the chosen identity. */
#ifndef TP_OPCUA_ENDPOINT_H
#define TP_OPCUA_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "io/opcua/codec.h"
#include "io/opcua/secure.h"

struct ua_client;

enum ua_token_type { UA_TOKEN_ANONYMOUS = 0, UA_TOKEN_USERNAME = 1, UA_TOKEN_CERTIFICATE = 2 };

struct ua_token_policy {
    char id[128];
    int type;                       /* enum ua_token_type (others kept, never chosen) */
    const struct ua_policy *policy; /* NULL: the endpoint's; &ua_policy_none: plain */
    int unknown_policy;             /* a security policy we do not implement */
};

#define UA_MAX_TOKENS 8

struct ua_endpoint {
    const struct ua_policy *policy; /* NULL: a policy we do not implement */
    char policy_uri[128];
    int mode;
    uint8_t level;
    char app_uri[256];
    uint8_t *cert; /* server certificate (DER), malloc'd */
    size_t cert_len;
    struct ua_token_policy tokens[UA_MAX_TOKENS];
    int n_tokens;
};

struct ua_endpoint_list {
    struct ua_endpoint *v;
    size_t n;
};

/* Decodes one EndpointDescription; e->cert is malloc'd (free with the list). */
void ua_endpoint_decode(struct ua_dec *d, struct ua_endpoint *e);
void ua_endpoint_list_free(struct ua_endpoint_list *l);
/* Decodes an array of EndpointDescription. 0, TP_PARSE or TP_NOMEM. */
int ua_endpoint_list_decode(struct ua_dec *d, struct ua_endpoint_list *l);
/* GetEndpoints on a None secure channel (opened and closed here). */
int ua_get_endpoints(struct ua_client *cl, const char *url, struct ua_endpoint_list *out,
                     struct tp_error *err);
/* The token policy of e for token_type, or NULL. */
const struct ua_token_policy *ua_endpoint_token(const struct ua_endpoint *e, int token_type);
/* The endpoint to use: mode 0 / policy NULL mean "any"; deprecated policies
 * only when asked for by name. NULL with err naming what the server offers. */
const struct ua_endpoint *ua_endpoint_pick(const struct ua_endpoint_list *l, int mode,
                                           const struct ua_policy *policy, int token_type,
                                           struct tp_error *err);

#endif
