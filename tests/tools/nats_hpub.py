#!/usr/bin/env python3
# Publishes messages with hand-made header blocks straight over the NATS
# protocol (HPUB), as another client could: header blocks libnats cannot read
# or rejects. Arguments: port, then SUBJECT HEADER_BLOCK PAYLOAD triples
# (the block with \r\n written as the two characters \r\n, "" for none).
import socket
import sys

port, args = int(sys.argv[1]), sys.argv[2:]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
f = s.makefile("rb")
assert f.readline().startswith(b"INFO "), "no INFO from the server"
out = b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n'
for i in range(0, len(args), 3):
    subject, block, payload = args[i], args[i + 1].replace("\\r\\n", "\r\n").encode(), args[i + 2].encode()
    if block:
        out += b"HPUB %s %d %d\r\n%s%s\r\n" % (subject.encode(), len(block), len(block) + len(payload), block, payload)
    else:
        out += b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(payload), payload)
s.sendall(out + b"PING\r\n")
line = f.readline()
assert line == b"PONG\r\n", line  # a -ERR instead: the server refused something
