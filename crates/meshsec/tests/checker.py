#!/usr/bin/env python3
"""A sequenced UDP stream for end-to-end tests: measures lost, duplicated and reordered
messages and the longest interruption through a tunnel.

  checker.py recv BIND_ADDR PORT TIMEOUT_S        prints a JSON report when the stream ends
  checker.py send SRC_ADDR DST_ADDR PORT RATE SECONDS

Each message carries its sequence number and the sender's CLOCK_MONOTONIC send time (the
namespaces of one machine share that clock), so the receiver can tell a tunnel interruption
(a gap in arrivals while the sender kept sending) from the sender being descheduled.
"""
import json
import socket
import struct
import sys
import time

MSG = struct.Struct("!QdI")  # seq, send time, total (0 until the end marker)
END = 0xFFFFFFFFFFFFFFFF


def send(src, dst, port, rate, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    interval = 1.0 / rate
    start = time.monotonic()
    seq = 0
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            break
        due = start + seq * interval
        if now < due:
            time.sleep(min(due - now, 0.01))
            continue
        try:
            s.sendto(MSG.pack(seq, now, 0) + b"x" * 64, (dst, port))
        except OSError:
            pass  # a send error is a lost message; the receiver counts it
        seq += 1
    time.sleep(0.5)  # let the last messages arrive before announcing the total
    for _ in range(20):
        s.sendto(MSG.pack(END, time.monotonic(), seq), (dst, port))
        time.sleep(0.05)


def recv(addr, port, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, port))
    s.settimeout(timeout)
    seen = set()
    arrived = {}  # seq -> wall-clock arrival, to place losses next to the daemons' logs
    dup = reordered = 0
    highest = -1
    last_arrival = last_sent = None
    longest_gap = 0.0
    max_latency = 0.0
    total = None
    try:
        while True:
            data, _ = s.recvfrom(2048)
            now = time.monotonic()
            seq, sent, tot = MSG.unpack_from(data)
            if seq == END:
                total = tot
                break
            max_latency = max(max_latency, now - sent)
            if seq in seen:
                dup += 1
                continue
            seen.add(seq)
            arrived[seq] = time.time()
            if seq < highest:
                reordered += 1
            highest = max(highest, seq)
            if last_arrival is not None:
                # An interruption is time without arrivals that the sender did not cause.
                gap = (now - last_arrival) - max(0.0, sent - last_sent - 0.02)
                longest_gap = max(longest_gap, now - last_arrival if sent - last_sent < 0.02 else gap)
            last_arrival, last_sent = now, sent
    except socket.timeout:
        pass
    missing = []
    if total is not None:
        for seq in range(total):
            if seq not in seen and len(missing) < 10:
                before = max((s for s in range(seq - 1, max(-1, seq - 50), -1) if s in arrived), default=None)
                when = time.strftime("%H:%M:%S", time.gmtime(arrived[before])) + ("%.6f" % (arrived[before] % 1))[1:] if before is not None else None
                missing.append([seq, when])
    report = {
        "total": total,
        "received": len(seen),
        "lost": (total - len(seen)) if total is not None else None,
        "duplicated": dup,
        "reordered": reordered,
        "longest_gap_ms": round(longest_gap * 1000, 1),
        "max_latency_ms": round(max_latency * 1000, 1),
        # The first lost messages, each with the arrival (UTC) of the last one before it.
        "missing": missing,
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
    else:
        recv(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
