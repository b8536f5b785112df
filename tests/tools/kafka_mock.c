/* Test helper around librdkafka's mock cluster.
 *   kafka_mock serve N [TOPIC:PARTITIONS ...]   start N mock brokers on 127.0.0.1, create the
 *       topics, print the bootstrap address on stdout; run until SIGTERM/SIGINT, the parent's
 *       death or (when stdin is a pipe) EOF on stdin. Lines "down ID" / "up ID" on that pipe
 *       take broker ID (0: all) down and up again.
 *   kafka_mock dump BOOTSTRAP TOPIC   print every record of TOPIC, one per line:
 *       PARTITION<TAB>OFFSET<TAB>KEY<TAB>HEADERS (k=v;...)<TAB>PAYLOAD
 *   kafka_mock count BOOTSTRAP TOPIC          records in TOPIC (sum of high watermarks)
 *   kafka_mock committed BOOTSTRAP GROUP TOPIC  "PARTITION COMMITTED HIGH" per partition
 *       (COMMITTED is -1 when the group has none)
 *   kafka_mock commit BOOTSTRAP GROUP TOPIC OFFSET  commit OFFSET for GROUP on every partition
 *   kafka_mock wait-committed BOOTSTRAP GROUP TOPIC N [SECONDS]  exit 0 once GROUP's committed
 *       offsets on TOPIC add up to N or more (checked every 10 ms by one client), 1 after SECONDS
 *       (default 600) */
#include <dlfcn.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* The mock brokers accept their connections with librdkafka's call to accept(); this definition
 * takes its place (the executable comes first in symbol lookup) and turns Nagle's algorithm off
 * on every accepted socket, as a real Kafka broker does (its acceptor sets TCP_NODELAY). With
 * Nagle on, a pipelined response waited for the client's delayed ACK (~40 ms), so the mock, not
 * the client under test, set the pace of produce requests to partitioned topics (docs/kafka.md,
 * "What the mock cluster cannot show"). */
int accept(int fd, struct sockaddr *addr, socklen_t *addr_len)
{
    static int (*next_accept)(int, struct sockaddr *, socklen_t *);
    if (!next_accept)
        next_accept = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    int conn = next_accept(fd, addr, addr_len);
    if (conn >= 0) {
        int one = 1;
        (void)setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* not TCP: ignored */
    }
    return conn;
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static rd_kafka_t *new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char why[512];
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof(why));
    if (!rk) {
        fprintf(stderr, "kafka_mock: %s\n", why);
        exit(2);
    }
    return rk;
}

/* "down ID" / "up ID" (ID 0: every broker): a broker that stops accepting
 * and drops its connections, then comes back. */
static void command(rd_kafka_mock_cluster_t *mc, int brokers, const char *line)
{
    int id = 0;
    int up = strncmp(line, "up", 2) == 0;
    if (!up && strncmp(line, "down", 4) != 0)
        return;
    sscanf(line + (up ? 2 : 4), "%d", &id);
    for (int b = 1; b <= brokers; b++)
        if (id == 0 || id == b) {
            if (up)
                rd_kafka_mock_broker_set_up(mc, b);
            else
                rd_kafka_mock_broker_set_down(mc, b);
        }
    fprintf(stderr, "kafka_mock: %s %d\n", up ? "up" : "down", id);
}

static int serve(int argc, char **argv)
{
    int brokers = argc > 2 ? atoi(argv[2]) : 1;
    if (brokers < 1)
        brokers = 1;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "kafka_mock: cannot create the mock cluster\n");
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        char *name = strdup(argv[i]);
        char *colon = strrchr(name, ':');
        int parts = 1;
        if (colon) {
            *colon = '\0';
            parts = atoi(colon + 1);
        }
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, parts, 1);
        if (e) {
            fprintf(stderr, "kafka_mock: topic %s: %s\n", name, rd_kafka_err2str(e));
            return 2;
        }
        free(name);
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    struct stat st;
    int watch_stdin = fstat(0, &st) == 0 && S_ISFIFO(st.st_mode);
    char line[256];
    size_t used = 0;
    while (!stop_flag) {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        if (!watch_stdin) {
            poll(NULL, 0, 200);
            continue;
        }
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t r = read(0, line + used, sizeof(line) - 1 - used);
        if (r <= 0)
            break;
        used += (size_t)r;
        line[used] = '\0';
        char *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            command(mc, brokers, line);
            used -= (size_t)(nl + 1 - line);
            memmove(line, nl + 1, used + 1);
        }
        if (used == sizeof(line) - 1)
            used = 0; /* an overlong line: dropped */
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}

static void print_field(const void *p, size_t len)
{
    if (p)
        fwrite(p, 1, len, stdout);
}

/* Partition ids of topic; returns the count (exits on error). */
static int topic_partitions(rd_kafka_t *rk, const char *topic, int32_t *ids, int max)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    /* Right after a broker came back a request may fail once: retry a little. */
    for (int attempt = 0; attempt < 20; attempt++) {
        if (md)
            rd_kafka_metadata_destroy(md);
        md = NULL;
        e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        if (!e && md->topic_cnt == 1 && !md->topics[0].err)
            break;
        poll(NULL, 0, 250);
    }
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "kafka_mock: metadata for %s: %s\n", topic,
                rd_kafka_err2str(e               ? e
                                 : md->topic_cnt ? md->topics[0].err
                                                 : e));
        exit(2);
    }
    int n = md->topics[0].partition_cnt < max ? md->topics[0].partition_cnt : max;
    for (int i = 0; i < n; i++)
        ids[i] = md->topics[0].partitions[i].id;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

static rd_kafka_t *new_consumer(const char *bootstrap, const char *group)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
    rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    return new_client(RD_KAFKA_CONSUMER, conf);
}

/* Every partition of topic, each with offset (exits on error). */
static rd_kafka_topic_partition_list_t *all_partitions(rd_kafka_t *rk, const char *topic,
                                                       int64_t offset)
{
    int32_t ids[256];
    int n = topic_partitions(rk, topic, ids, 256);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(parts, topic, ids[i])->offset = offset;
    return parts;
}

/* count (group NULL) or committed offsets per partition. */
static int offsets(const char *bootstrap, const char *group, const char *topic)
{
    rd_kafka_t *rk = new_consumer(bootstrap, group ? group : "kafka_mock_count");
    rd_kafka_topic_partition_list_t *parts = all_partitions(rk, topic, RD_KAFKA_OFFSET_INVALID);
    if (group) {
        rd_kafka_resp_err_t e = rd_kafka_committed(rk, parts, 10000);
        if (e) {
            fprintf(stderr, "kafka_mock: committed: %s\n", rd_kafka_err2str(e));
            return 2;
        }
    }
    long long total = 0;
    for (int i = 0; i < parts->cnt; i++) {
        int32_t id = parts->elems[i].partition;
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, id, &lo, &hi, 10000);
        if (e) {
            fprintf(stderr, "kafka_mock: watermarks: %s\n", rd_kafka_err2str(e));
            return 2;
        }
        total += hi - lo;
        if (group)
            printf("%d %lld %lld\n", (int)id,
                   (long long)(parts->elems[i].offset >= 0 ? parts->elems[i].offset : -1),
                   (long long)hi);
    }
    if (!group)
        printf("%lld\n", total);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return 0;
}

/* commit: OFFSET for GROUP on every partition of TOPIC (a group that then
 * joins starts there, as a group resuming from its committed offsets). */
static int commit(const char *bootstrap, const char *group, const char *topic, int64_t offset)
{
    rd_kafka_t *rk = new_consumer(bootstrap, group);
    rd_kafka_topic_partition_list_t *parts = all_partitions(rk, topic, offset);
    rd_kafka_resp_err_t e = rd_kafka_commit(rk, parts, 0);
    if (e)
        fprintf(stderr, "kafka_mock: commit: %s\n", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return e ? 2 : 0;
}

/* wait-committed: one client asks every 10 ms (no process per check) until
 * GROUP's committed offsets on TOPIC add up to at least n. */
static int wait_committed(const char *bootstrap, const char *group, const char *topic, long long n,
                          int seconds)
{
    rd_kafka_t *rk = new_consumer(bootstrap, group);
    rd_kafka_topic_partition_list_t *parts = all_partitions(rk, topic, RD_KAFKA_OFFSET_INVALID);
    for (long long tries = 0; tries < seconds * 100LL; tries++) {
        long long sum = 0;
        if (rd_kafka_committed(rk, parts, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            for (int i = 0; i < parts->cnt; i++)
                sum += parts->elems[i].offset > 0 ? parts->elems[i].offset : 0;
        if (sum >= n) {
            rd_kafka_topic_partition_list_destroy(parts);
            rd_kafka_destroy(rk);
            return 0;
        }
        poll(NULL, 0, 10);
    }
    fprintf(stderr, "kafka_mock: %s did not commit %lld offsets on %s within %d s\n", group, n,
            topic, seconds);
    return 1;
}

static int dump(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: kafka_mock dump BOOTSTRAP TOPIC\n");
        return 2;
    }
    const char *topic = argv[3];
    rd_kafka_t *rk = new_consumer(argv[2], "kafka_mock_dump");
    rd_kafka_poll_set_consumer(rk);
    int32_t ids[256];
    int nparts = topic_partitions(rk, topic, ids, 256);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_query_watermark_offsets(rk, topic, ids[i], &lo, &hi, 10000);
        if (lo > 0) {
            /* The mock keeps about 5 MB per partition and drops the oldest. */
            fprintf(stderr, "kafka_mock: %s [%d] starts at offset %lld: the mock pruned it\n",
                    topic, (int)ids[i], (long long)lo);
            return 3;
        }
        rd_kafka_topic_partition_list_add(parts, topic, ids[i])->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    int eofs = 0, idle = 0;
    while (eofs < nparts && idle < 300) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            idle++;
            continue;
        }
        idle = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err) {
            fprintf(stderr, "kafka_mock: %s\n", rd_kafka_message_errstr(m));
        } else {
            printf("%d\t%lld\t", (int)m->partition, (long long)m->offset);
            print_field(m->key, m->key_len);
            putchar('\t');
            rd_kafka_headers_t *h;
            if (rd_kafka_message_headers(m, &h) == 0) {
                const char *name;
                const void *val;
                size_t len;
                for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &len) == 0; i++) {
                    printf("%s%s=", i ? ";" : "", name);
                    print_field(val, len);
                }
            }
            putchar('\t');
            print_field(m->payload, m->len);
            putchar('\n');
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (eofs < nparts) {
        fprintf(stderr, "kafka_mock: dump timed out (%d of %d partitions at end)\n", eofs, nparts);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return serve(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "dump") == 0)
        return dump(argc, argv);
    if (argc >= 4 && strcmp(argv[1], "count") == 0)
        return offsets(argv[2], NULL, argv[3]);
    if (argc >= 5 && strcmp(argv[1], "committed") == 0)
        return offsets(argv[2], argv[3], argv[4]);
    if (argc >= 6 && strcmp(argv[1], "commit") == 0)
        return commit(argv[2], argv[3], argv[4], atoll(argv[5]));
    if (argc >= 6 && strcmp(argv[1], "wait-committed") == 0)
        return wait_committed(argv[2], argv[3], argv[4], atoll(argv[5]),
                              argc >= 7 ? atoi(argv[6]) : 600);
    fprintf(stderr, "usage: kafka_mock serve N [TOPIC:PARTITIONS ...] | dump BOOTSTRAP TOPIC | "
                    "count BOOTSTRAP TOPIC | committed BOOTSTRAP GROUP TOPIC | "
                    "commit BOOTSTRAP GROUP TOPIC OFFSET | "
                    "wait-committed BOOTSTRAP GROUP TOPIC N [SECONDS]\n");
    return 2;
}
