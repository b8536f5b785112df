/* One OPC UA subscription over all discovered variables: CreateSubscription,
 * CreateMonitoredItems (client handle = variable index), a few Publish
 * requests kept in flight with acknowledgements, Republish for sequence
 * gaps (what it cannot fill is counted in `missed`), and re-creation after
 * a reconnect. */
#ifndef TP_OPCUA_SUBSCRIPTION_H
#define TP_OPCUA_SUBSCRIPTION_H

#include <stdint.h>

#include "io/opcua/browse.h"
#include "io/opcua/client.h"

/* Called for each value notification, in arrival order. 0 or TP_NOMEM. */
typedef int (*ua_value_fn)(void *ud, size_t index, const struct ua_datavalue *dv);

struct ua_sub_params {
    uint32_t queue_size;
    double sampling_ms;
    int heartbeat; /* the last variable is the heartbeat: reconnect when nothing comes for 10 s */
};

struct ua_subscription {
    uint32_t id;
    uint32_t last_seq; /* last data sequence number seen (0: none) */
    uint32_t acks[32];
    size_t n_acks;
    int in_flight;  /* Publish requests outstanding */
    uint32_t *gaps; /* sequence numbers to republish */
    size_t n_gaps, cap_gaps;
    int republishing;
    int64_t last_data_ms;
    int heartbeat;
    ua_value_fn on_value;
    void *ud;
    uint64_t missed;      /* notifications messages lost (Republish could not fill them) */
    uint64_t republished; /* notification messages recovered by Republish */
};

/* Creates the subscription and its monitored items on the current session. */
int ua_sub_create(struct ua_subscription *s, struct ua_client *cl, const struct ua_var_list *vars,
                  const struct ua_sub_params *p, ua_value_fn on_value, void *ud,
                  struct tp_error *err);
/* Keeps Publish requests in flight and handles what arrives within timeout_ms.
 * TP_OK / TP_AGAIN, TP_EOF (stop) or an error (connection lost, ...). */
int ua_sub_step(struct ua_subscription *s, struct ua_client *cl, int timeout_ms,
                struct tp_error *err);
/* The session is gone: forget in-flight requests (the next create starts over). */
void ua_sub_lost(struct ua_subscription *s);
void ua_sub_free(struct ua_subscription *s);

/* Handles one Publish or Republish response body (for tests and fuzzing too). */
int ua_sub_handle_response(struct ua_subscription *s, const struct tp_buf *body,
                           struct tp_error *err);

#endif
