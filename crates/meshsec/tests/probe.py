#!/usr/bin/env python3
"""One message through the network, for the mesh tests: did it arrive?

  probe.py serve tcp|udp ADDR PORT SECONDS   prints "got <payload>" for the first message
  probe.py send tcp|udp DST PORT PAYLOAD [SPORT]  prints "sent" or "error: ..."
  probe.py serve bulk ADDR PORT SECONDS      prints "got N octets" when the sender closes
  probe.py send bulk DST PORT N              sends N octets over TCP

Addresses may be IPv4 or IPv6; both commands give up after a few seconds.
"""
import socket
import sys


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve(proto, addr, port, seconds):
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    s = socket.socket(family(addr), kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.settimeout(seconds)
    print("listening", flush=True)
    try:
        if proto == "bulk":
            s.listen()
            c, _ = s.accept()
            c.settimeout(seconds)
            total = 0
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                total += len(chunk)
            print("got", total, "octets", flush=True)
            return
        if proto == "tcp":
            s.listen()
            c, _ = s.accept()
            c.settimeout(seconds)
            data = c.recv(200)
        else:
            data, _ = s.recvfrom(200)
        print("got", data.decode(errors="replace"), flush=True)
    except OSError as e:
        print("nothing:", e, flush=True)


def send(proto, dst, port, payload, sport=0):
    try:
        if proto == "bulk":
            s = socket.create_connection((dst, port), timeout=5)
            s.sendall(b"x" * int(payload))
            s.close()
        elif proto == "tcp":
            any_addr = "::" if ":" in dst else "0.0.0.0"
            s = socket.create_connection((dst, port), timeout=2, source_address=(any_addr, sport))
            s.sendall(payload.encode())
            s.close()
        else:
            s = socket.socket(family(dst), socket.SOCK_DGRAM)
            # A few copies: UDP has no retransmission and the first may wait for an SA.
            for _ in range(3):
                s.sendto(payload.encode(), (dst, port))
        print("sent", flush=True)
    except OSError as e:
        print("error:", e, flush=True)


if __name__ == "__main__":
    cmd, proto = sys.argv[1], sys.argv[2]
    if cmd == "serve":
        serve(proto, sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        sport = int(sys.argv[6]) if len(sys.argv) > 6 else 0
        send(proto, sys.argv[3], int(sys.argv[4]), sys.argv[5], sport)
