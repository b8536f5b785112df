#!/usr/bin/env python3
"""Hostile OPC UA "servers" for tests/opcua/run_opcua.sh:
usage: fake_server.py MODE:PORT...  listens on 127.0.0.1:PORT for each pair,
answers each connection according to MODE with crafted frames, and serves
connections until killed. Prints READY once every port listens.
Modes: junk (random bytes), huge (a frame claiming 4 GiB), ack_junk (a valid
Acknowledge, then junk), opn_bad (valid Acknowledge, OpenSecureChannel
response with a truncated body), session_junk (valid handshake, then a
CreateSession "response" full of absurd lengths), chunks (valid handshake,
then endless continuation chunks)."""
import os
import socket
import struct
import sys
import threading


def u32(v):
    return struct.pack("<I", v)


def frame(kind, body, chunk=b"F"):
    return kind + chunk + u32(8 + len(body)) + body


ACK = frame(b"ACK", u32(0) + u32(65536) + u32(65536) + u32(0) + u32(0))


def opn_response(req_id):
    policy = b"http://opcfoundation.org/UA/SecurityPolicy#None"
    header = struct.pack("<q", 0) + u32(1) + u32(0) + b"\x00" + u32(0xFFFFFFFF) + b"\x00\x00\x00"
    body = (b"\x01\x00" + struct.pack("<H", 449) + header + u32(0) + u32(5) + u32(1)
            + struct.pack("<q", 0) + u32(600000) + u32(0))
    return frame(b"OPN", u32(5) + u32(len(policy)) + policy + u32(0xFFFFFFFF) * 2
                 + u32(1) + u32(req_id) + body)


def recv_frame(conn):
    head = b""
    while len(head) < 8:
        part = conn.recv(8 - len(head))
        if not part:
            return None, None
        head += part
    size = struct.unpack("<I", head[4:8])[0]
    body = b""
    while len(body) < size - 8:
        part = conn.recv(size - 8 - len(body))
        if not part:
            return None, None
        body += part
    return head[:3], body


def serve(conn, mode):
    try:
        if mode == "junk":
            conn.sendall(os.urandom(5000))
            return
        if mode == "huge":
            conn.sendall(b"ACKF" + u32(0xFFFFFFFF) + os.urandom(100))
            return
        recv_frame(conn)  # Hello
        if mode == "ack_junk":
            conn.sendall(ACK + os.urandom(3000))
            return
        conn.sendall(ACK)
        kind, body = recv_frame(conn)  # OpenSecureChannel
        if kind is None:
            return
        # request id: after channel id, policy uri, two null byte strings, sequence number
        plen = struct.unpack("<i", body[4:8])[0]
        req_id = struct.unpack("<I", body[8 + plen + 8 + 4:8 + plen + 8 + 8])[0]
        if mode == "opn_bad":
            good = opn_response(req_id)
            conn.sendall(good[:4] + u32(len(good) - 30) + good[8:-30])
            return
        conn.sendall(opn_response(req_id))
        kind, body = recv_frame(conn)  # CreateSession
        if kind is None:
            return
        req = struct.unpack("<I", body[12:16])[0]
        sym = u32(5) + u32(1) + u32(2) + u32(req)
        if mode == "session_junk":
            header = struct.pack("<q", 0) + u32(1) + u32(0) + b"\x00" + u32(0xFFFFFFFF) + b"\x00\x00\x00"
            resp = (b"\x01\x00" + struct.pack("<H", 464) + header + b"\x02\x00\x00" + u32(1)
                    + b"\x03\x01\x00" + u32(0x7FFFFFF0) + b"x" * 50 + u32(0x7FFFFFFF) + os.urandom(200))
            conn.sendall(frame(b"MSG", sym + resp))
            conn.recv(100)
            return
        if mode == "chunks":
            while True:
                conn.sendall(frame(b"MSG", sym + os.urandom(60000), b"C"))
    except OSError:
        pass
    finally:
        conn.close()


def listen(mode, srv):
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, mode), daemon=True).start()


def main():
    threads = []
    for arg in sys.argv[1:]:
        mode, port = arg.split(":")
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", int(port)))
        srv.listen(8)
        threads.append(threading.Thread(target=listen, args=(mode, srv), daemon=True))
    for t in threads:
        t.start()
    print("READY", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
