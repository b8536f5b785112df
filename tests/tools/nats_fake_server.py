#!/usr/bin/env python3
# A misbehaving NATS server for tests/integration/run_nats_client.sh: listens
# on 127.0.0.1:PORT, sends INFO, reads the client's CONNECT + PING and then,
# per MODE, answers
#   garbage-handshake  "HELLO garbage" instead of PONG
#   auth-error         -ERR 'Authorization Violation' (then closes)
#   garbage-later      PONG, then (after the client's SUB) a malformed MSG line
#   slow-consumer      PONG, then (after the client's SUB) -ERR 'Slow Consumer' and closes
# Every accepted connection appends "connection N" to LOG. Serves connections
# one after the other until killed.
import socket
import sys

port, mode, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(8)
n = 0
while True:
    c, _ = srv.accept()
    n += 1
    with open(log, "a") as f:
        f.write("connection %d\n" % n)
    c.settimeout(10)
    try:
        c.sendall(b'INFO {"server_id":"fake","version":"2.9.10","headers":true,"max_payload":1048576}\r\n')
        r = c.makefile("rb")
        while True:  # CONNECT ..., then PING
            line = r.readline()
            if not line or line.startswith(b"PING"):
                break
        if mode == "garbage-handshake":
            c.sendall(b"HELLO garbage\r\n")
        elif mode == "auth-error":
            c.sendall(b"-ERR 'Authorization Violation'\r\n")
        else:
            c.sendall(b"PONG\r\n")
            while True:
                line = r.readline()
                if not line or line.startswith(b"SUB "):
                    break
            if mode == "garbage-later":
                c.sendall(b"MSG a.b 1 notasize\r\n")
            else:
                c.sendall(b"-ERR 'Slow Consumer'\r\n")
        r.read()  # until the client closes
    except OSError:
        pass
    c.close()
