/* The libnats floor of the JetStream -> JetStream path (bench/io/nats.sh,
 * case libnats-floor; optional: built only when libnats-dev is installed):
 * the same libnats calls tagproc made per message before its own client, and
 * nothing else (no pipeline, no rules, no metadata model). Pulls N messages
 * from a durable consumer on stream IN in fetches of 256, reads every header,
 * publishes each message with the same headers to OUT (core publish, reply on
 * one inbox subscription, PubAcks parsed), acks the input after the batch's
 * PubAcks, and prints the process CPU time per message.
 * Usage: nats_floor URL N */
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* libnats' message constructor with an encoded header block (as tagproc's
 * NATS connector used it before it had its own client; not declared in
 * nats.h). */
natsStatus natsMsg_create(natsMsg **newMsg, const char *subject, int subjLen, const char *reply,
                          int replyLen, const char *buf, int bufLen, int hdrLen);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int acked, failed, wanted; /* wanted: PubAcks main waits for */

static void on_pub_ack(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc, (void)sub, (void)closure;
    int ok = natsMsg_GetDataLength(m) > 0 && strstr(natsMsg_GetData(m), "\"seq\"") != NULL;
    natsMsg_Destroy(m);
    pthread_mutex_lock(&lock);
    failed += !ok;
    if (++acked == wanted)
        pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        natsStatus s_ = (x);                                                                       \
        if (s_ != NATS_OK) {                                                                       \
            fprintf(stderr, "%s: %s\n", #x, natsStatus_GetText(s_));                               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: nats_floor URL N\n");
        return 2;
    }
    int n = atoi(argv[2]), done = 0;
    nats_Open(0);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    CHECK(natsConnection_ConnectTo(&nc, argv[1]));
    CHECK(natsConnection_JetStream(&js, nc, NULL));
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {"floor.>"};
    sc.Name = "FLOOR";
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    js_AddStream(NULL, js, &sc, NULL, NULL);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "floor";
    cc.AckPolicy = js_AckExplicit;
    cc.MaxAckPending = 1000;
    js_AddConsumer(NULL, js, "IN", &cc, NULL, NULL);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "IN";
    so.Consumer = "floor";
    natsSubscription *pull = NULL, *acks = NULL;
    CHECK(js_PullSubscribe(&pull, js, "raw.>", "floor", NULL, &so, NULL));
    CHECK(natsConnection_Subscribe(&acks, nc, "_INBOX.floor.*", on_pub_ack, NULL));
    CHECK(natsSubscription_SetPendingLimits(acks, -1, -1));
    struct rusage r0, r1;
    struct timespec t0, t1;
    getrusage(RUSAGE_SELF, &r0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    static char frame[65536];
    char reply[64];
    for (int idle = 0; done < n && idle < 20;) { /* gives up after 10 s without messages */
        natsMsgList list = {0};
        if (natsSubscription_Fetch(&list, pull, 256, 500, NULL) != NATS_OK) {
            idle++;
            continue;
        }
        idle = 0;
        for (int i = 0; i < list.Count; i++) {
            natsMsg *m = list.Msgs[i];
            const char **keys = NULL;
            int nk = 0, len = snprintf(frame, sizeof(frame), "NATS/1.0\r\n");
            if (natsMsgHeader_Keys(m, &keys, &nk) == NATS_OK) {
                for (int k = 0; k < nk; k++) {
                    const char *v = NULL;
                    natsMsgHeader_Get(m, keys[k], &v);
                    len += snprintf(frame + len, sizeof(frame) - (size_t)len, "%s: %s\r\n", keys[k],
                                    v ? v : "");
                }
                free((void *)keys);
            }
            len += snprintf(frame + len, sizeof(frame) - (size_t)len, "\r\n");
            int hdr = len, dl = natsMsg_GetDataLength(m);
            memcpy(frame + len, natsMsg_GetData(m), (size_t)dl);
            int rl = snprintf(reply, sizeof(reply), "_INBOX.floor.%d", done + i);
            natsMsg *out = NULL;
            CHECK(natsMsg_create(&out, "floor.x", 7, reply, rl, frame, len + dl, hdr));
            CHECK(natsConnection_PublishMsg(nc, out));
            natsMsg_Destroy(out);
        }
        done += list.Count;
        pthread_mutex_lock(&lock);
        wanted = done;
        while (acked < done)
            pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
        for (int i = 0; i < list.Count; i++)
            natsMsg_Ack(list.Msgs[i], NULL);
        natsMsgList_Destroy(&list);
    }
    natsConnection_Flush(nc);
    if (!done)
        return 1;
    getrusage(RUSAGE_SELF, &r1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double us = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
                         r0.ru_stime.tv_sec) *
                    1e6 +
                (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
                         r0.ru_stime.tv_usec);
    printf("{\"messages\": %d, \"failed_pubacks\": %d, \"msgs_per_sec\": %.0f, "
           "\"cpu_us_per_msg\": %.2f}\n",
           done, failed, done / wall, us / done);
    natsSubscription_Destroy(acks);
    natsSubscription_Destroy(pull);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return 0;
}
