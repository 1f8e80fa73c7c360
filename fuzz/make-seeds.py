#!/usr/bin/env python3
"""make-seeds.py: writes the seed corpus of the fuzz targets (fuzz/corpus/).
Request seeds are sequences of (2-byte big-endian length, mq.Request) built
by hand-encoding protobuf, so no protobuf package is needed."""
import os
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, val):
    if isinstance(val, int):
        return varint(num << 3) + varint(val)
    if isinstance(val, str):
        val = val.encode()
    return varint(num << 3 | 2) + varint(len(val)) + val


def request(method, body=b"", version=1):
    return field(1, version) + field(2, method) + field(4, body)


def seq(*reqs):
    return b"".join(struct.pack(">H", len(r)) + r for r in reqs)


def push(q, payload, delay=0, dedup=""):
    m = field(1, payload)
    if dedup:
        m += field(2, dedup)
    if delay:
        m += field(4, delay)
    return request("Push", field(1, q) + field(2, m))


def pull(q, n=1, wait=0):
    b = field(1, q) + field(2, n)
    if wait:
        b += field(3, wait)
    return request("Pull", b)


def ack(q, i, tok, method="Ack"):
    return request(method, field(1, q) + field(2, i) + field(3, tok))


seeds = {
    "ping": seq(request("Ping")),
    "info": seq(request("ServerInfo")),
    "backup": seq(request("Backup"),
                  request("BackupRead", field(1, "0123456789abcdef") + field(2, 0) + field(3, 4096)),
                  request("BackupEnd", field(1, "0123456789abcdef"))),
    "push-pull-ack": seq(push("q", "hello"), pull("q"), ack("q", 1, 1)),
    "push-pull-nack": seq(push("q", "a"), push("q", "b", delay=50), pull("q", 2),
                          ack("q", 1, 1, "Nack")),
    "long-poll": seq(pull("q", 1, wait=100), push("q", "x")),
    "dedup": seq(push("q", "a", dedup="k"), push("q", "b", dedup="k")),
    "queues": seq(request("CreateQueue", field(1, "q2")), request("ListQueues"),
                  request("GetQueue", field(1, "q2")),
                  request("PurgeQueue", field(1, "q2")),
                  request("DeleteQueue", field(1, "q2"))),
    "browse": seq(push("q", "a"), request("ListMessages", field(1, "q")),
                  request("GetMessage", field(1, "q") + field(2, 1)),
                  request("DeleteMessage", field(1, "q") + field(2, 1))),
    "term-redrive": seq(push("q", "a"), pull("q"), ack("q", 1, 1, "Term"),
                        request("Redrive", field(1, "q"))),
    "bad-version": seq(request("Ping", version=7)),
    "unknown": seq(request("NoSuchMethod")),
    "garbage": b"\x00\x05\xff\xff\xff\xff\xff",
}
out = os.path.join(here, "corpus", "request")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)

# Storage seeds: engine byte, then (op, a, b) triples (fuzz_storage.c).
st = {
    "mem-basic": bytes([0, 0, 0, 0, 0, 1, 0, 2, 3, 0, 3, 0, 0, 11, 0, 0]),
    "lmdb-basic": bytes([1, 0, 0, 0, 0, 1, 0, 2, 3, 0, 3, 0, 0, 13, 0, 0, 2, 1, 0]),
    "mem-expire": bytes([0, 0, 0, 0, 2, 1, 0, 7, 60, 0, 2, 1, 0, 7, 60, 0, 2, 1, 0,
                         7, 60, 0, 9, 0, 0, 11, 0, 0]),
    "lmdb-nack-term": bytes([1, 0, 0, 0, 0, 0, 0, 2, 2, 0, 4, 0, 0, 5, 1, 0, 12, 0, 0,
                             8, 15, 0, 13, 0, 0]),
    "mem-delay": bytes([0, 1, 0, 5, 7, 200, 0, 2, 4, 0, 6, 0, 0, 10, 0, 0]),
}
out = os.path.join(here, "corpus", "storage")
os.makedirs(out, exist_ok=True)
for name, data in st.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("seeds written", file=sys.stderr)
