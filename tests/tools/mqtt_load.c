/* mqtt_load: closed-loop MQTT load generator and counter for `make bench-io`
 * (bench/io/mqtt.sh), built on tagproc's own MQTT client. One thread, two
 * connections: a publisher sends N seed-workload envelopes to PREFIX/<node>
 * (at most WINDOW published and not yet received), a subscriber counts the
 * distinct arrivals on FILTER by the sequence number carried in
 * timestamp_ms. Modes: FILTER = PREFIX/# measures the broker alone; umh/#
 * measures a processor subscribed to PREFIX/# that publishes to umh/...
 *   mqtt_load PORT QOS N WINDOW PREFIX FILTER
 * Prints one JSON object: sent, received, duplicates, elapsed_s, msg_per_s. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/clock.h"
#include "core/log.h"
#include "io/mqtt/client.h"

#define NODES 42
#define TS_BASE 1795000000000ULL

static struct tp_mqtt_broker broker;

static void client_open(struct tp_mqtt_client *c, const char *id)
{
    struct tp_mqtt_client_opts o = {.who = id,
                                    .brokers = &broker,
                                    .n_brokers = 1,
                                    .version = TP_MQTT_V5,
                                    .client_id = id,
                                    .clean_session = 1,
                                    .keepalive_s = 60,
                                    .reconnect_delay_ms = 200,
                                    .reconnect_delay_max_ms = 1000,
                                    .receive_maximum = 65535};
    tp_mqtt_client_init(c, &o);
    for (int i = 0; i < 50 && tp_mqtt_client_connect(c, -1) != TP_OK; i++)
        ;
    if (!c->connected) {
        fprintf(stderr, "mqtt_load: cannot connect to port %d\n", broker.port);
        exit(2);
    }
}

/* Reads what arrived on c; returns -1 when the connection broke. */
static int pump(struct tp_mqtt_client *c, short revents)
{
    char why[128];
    if ((revents & (POLLIN | POLLERR | POLLHUP)) && tp_mqtt_net_fill(&c->net, why, sizeof(why)))
        return -1;
    if (tp_mqtt_net_want_write(&c->net) && tp_mqtt_net_flush(&c->net, why, sizeof(why)))
        return -1;
    return 0;
}

static long seq_of(const uint8_t *p, size_t n)
{
    static const char key[] = "\"timestamp_ms\":";
    const char *k = memmem(p, n, key, sizeof(key) - 1);
    if (!k)
        return -1;
    k += sizeof(key) - 1;
    if (*k == '"')
        k++;
    return (long)(strtoull(k, NULL, 10) - TS_BASE);
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: mqtt_load PORT QOS N WINDOW PREFIX FILTER\n");
        return 2;
    }
    tp_log_set_level(TP_LOG_WARN);
    snprintf(broker.host, sizeof(broker.host), "127.0.0.1");
    broker.port = atoi(argv[1]);
    broker.url = "mqtt_load";
    int qos = atoi(argv[2]);
    long n = atol(argv[3]), window = atol(argv[4]);
    const char *prefix = argv[5], *filter = argv[6];
    unsigned char *seen = calloc((size_t)n, 1);
    struct tp_mqtt_client pub, sub;
    client_open(&pub, "mqtt_load-pub");
    client_open(&sub, "mqtt_load-sub");
    tp_mqtt_encode_subscribe(&sub.net.wbuf, TP_MQTT_V5, 1, &filter, 1, qos);
    tp_mqtt_net_flush_wait(&sub.net, 5000);
    for (int got = 0; !got;) { /* wait for the SUBACK */
        struct tp_mqtt_packet pkt;
        struct pollfd p = {sub.net.fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0 || pump(&sub, p.revents))
            return 2;
        while (tp_mqtt_client_next(&sub, &pkt) == TP_OK)
            got |= pkt.type == TP_MQTT_SUBACK;
    }
    long sent = 0, received = 0, dups = 0;
    uint16_t id = 0;
    uint64_t t0 = tp_mono_ms(), last_arrival = t0;
    char topic[128], payload[512];
    while (received < n && tp_mono_ms() - last_arrival < 10000) {
        while (sent < n && sent - received < window) {
            int node = (int)(sent % NODES);
            long c = 2000 + sent % 1000;
            int tl = snprintf(topic, sizeof(topic), "%s/%d", prefix, node);
            int pl = snprintf(payload, sizeof(payload),
                              "{\"payload\":%ld.%02ld,\"meta\":{\"opcua_node_id\":\"ns=1;i=%d\","
                              "\"opcua_tag_name\":\"Tag%d\",\"opcua_tag_group\":\"Simulation\","
                              "\"opcua_tag_type\":\"number\",\"timestamp_ms\":\"%llu\"}}",
                              c / 100, c % 100, 2200 + node, node,
                              (unsigned long long)(TS_BASE + (uint64_t)sent));
            id = id == 65535 ? 1 : id + 1;
            tp_mqtt_encode_publish(&pub.net.wbuf, TP_MQTT_V5, topic, (size_t)tl, payload,
                                   (size_t)pl, qos, 0, 0, id, NULL);
            sent++;
        }
        struct pollfd p[2] = {
            {pub.net.fd, (short)(POLLIN | (tp_mqtt_net_want_write(&pub.net) ? POLLOUT : 0)), 0},
            {sub.net.fd, (short)(POLLIN | (tp_mqtt_net_want_write(&sub.net) ? POLLOUT : 0)), 0},
        };
        if (tp_mqtt_net_want_write(&pub.net))
            pump(&pub, 0);
        if (poll(p, 2, 1000) < 0 || pump(&pub, p[0].revents) || pump(&sub, p[1].revents)) {
            fprintf(stderr, "mqtt_load: connection lost\n");
            return 2;
        }
        struct tp_mqtt_packet pkt;
        while (tp_mqtt_client_next(&pub, &pkt) == TP_OK)
            ; /* PUBACKs */
        while (tp_mqtt_client_next(&sub, &pkt) == TP_OK) {
            if (pkt.type != TP_MQTT_PUBLISH)
                continue;
            if (pkt.qos)
                tp_mqtt_encode_ack(&sub.net.wbuf, TP_MQTT_V5, TP_MQTT_PUBACK, pkt.id);
            long k = seq_of(pkt.payload, pkt.payload_len);
            if (k < 0 || k >= n)
                continue;
            if (seen[k]) {
                dups++;
                continue;
            }
            seen[k] = 1;
            received++;
            last_arrival = tp_mono_ms();
        }
        pump(&sub, 0);
    }
    double s = (double)(last_arrival - t0) / 1000.0;
    printf("{\"sent\":%ld,\"received\":%ld,\"duplicates\":%ld,\"elapsed_s\":%.3f,"
           "\"msg_per_s\":%.0f}\n",
           sent, received, dups, s, s > 0 ? (double)received / s : 0.0);
    tp_mqtt_client_disconnect(&pub, 1000);
    tp_mqtt_client_disconnect(&sub, 1000);
    tp_mqtt_client_free(&pub);
    tp_mqtt_client_free(&sub);
    free(seen);
    return received == n ? 0 : 1;
}
