# A fake Kafka broker that speaks just enough of the protocol (ApiVersions
# v3, Metadata v4, CreateTopics v4) to see which topics a client creates:
# librdkafka's mock cluster has no CreateTopics. Listens on 127.0.0.1 (port
# 0: any free one), prints the port on stdout, then one line per
# CreateTopics topic on stdout:
#   create NAME partitions=P replication=R CONFIG=VALUE...
# Created topics then exist (1 partition per requested partition, leader 1).
# Usage: python3 kafka_admin_fake.py [PORT]
import socket
import socketserver
import struct
import sys
import threading

API_VERSIONS, METADATA, CREATE_TOPICS = 18, 3, 19
SUPPORTED = {API_VERSIONS: (0, 3), METADATA: (4, 4), CREATE_TOPICS: (0, 4)}
topics = {}  # name -> partitions
lock = threading.Lock()


def s16(v): return struct.pack(">h", v)
def s32(v): return struct.pack(">i", v)
def string(v): return s16(-1) if v is None else s16(len(v.encode())) + v.encode()


def uvarint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


class Reader:
    def __init__(self, data): self.d, self.o = data, 0
    def take(self, n):
        v = self.d[self.o:self.o + n]
        self.o += n
        return v
    def i8(self): return struct.unpack(">b", self.take(1))[0]
    def i16(self): return struct.unpack(">h", self.take(2))[0]
    def i32(self): return struct.unpack(">i", self.take(4))[0]
    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()
    def array(self, item):
        n = self.i32()
        return None if n < 0 else [item() for _ in range(n)]


def api_versions(version):
    body = s16(0)
    if version >= 3:
        body += uvarint(len(SUPPORTED) + 1)
        for k, (lo, hi) in SUPPORTED.items():
            body += s16(k) + s16(lo) + s16(hi) + uvarint(0)
        return body + s32(0) + uvarint(0)
    body += s32(len(SUPPORTED))
    for k, (lo, hi) in SUPPORTED.items():
        body += s16(k) + s16(lo) + s16(hi)
    return body + (s32(0) if version >= 1 else b"")


def metadata(r, port):
    wanted = r.array(r.string)
    with lock:
        names = list(topics) if wanted is None else wanted
        body = s32(0) + s32(1) + s32(1) + string("127.0.0.1") + s32(port) + string(None)
        body += string("fake") + s32(1) + s32(len(names))
        for name in names:
            if name not in topics:
                body += s16(3) + string(name) + b"\0" + s32(0)  # UNKNOWN_TOPIC_OR_PART
                continue
            body += s16(0) + string(name) + b"\0" + s32(topics[name])
            for p in range(topics[name]):
                body += s16(0) + s32(p) + s32(1) + s32(1) + s32(1) + s32(1) + s32(1)
    return body


def create_topics(r, version):
    def topic():
        name, parts, repl = r.string(), r.i32(), r.i16()
        r.array(lambda: (r.i32(), r.array(r.i32)))
        configs = r.array(lambda: (r.string(), r.string()))
        return name, parts, repl, configs or []
    req = r.array(topic)
    body = s32(0) if version >= 2 else b""
    body += s32(len(req))
    for name, parts, repl, configs in req:
        with lock:
            exists = name in topics
            if not exists:
                topics[name] = parts if parts > 0 else 1
        cfg = " ".join("%s=%s" % kv for kv in configs)
        print("create %s partitions=%d replication=%d %s" % (name, parts, repl, cfg), flush=True)
        body += string(name) + s16(36 if exists else 0)  # TOPIC_ALREADY_EXISTS
        if version >= 1:
            body += string(None)
    return body


class Conn(socketserver.BaseRequestHandler):
    def handle(self):
        port = self.server.server_address[1]
        while True:
            head = self.recv(4)
            if not head:
                return
            r = Reader(self.recv(struct.unpack(">i", head)[0]))
            key, version, corr = r.i16(), r.i16(), r.i32()
            r.string()  # client id
            if key == API_VERSIONS and version >= 3:
                r.take(1)  # empty tagged fields of the request header v2
            if key not in SUPPORTED:
                return  # anything else: hang up
            if key == API_VERSIONS:
                body = api_versions(version)
            elif key == METADATA:
                body = metadata(r, port)
            else:
                body = create_topics(r, version)
            out = s32(corr) + body
            self.request.sendall(s32(len(out)) + out)

    def recv(self, n):
        data = b""
        while len(data) < n:
            chunk = self.request.recv(n - len(data))
            if not chunk:
                return b""
            data += chunk
        return data


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    srv = Server(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Conn)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()
