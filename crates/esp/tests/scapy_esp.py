#!/usr/bin/python3
"""Cross-check with Scapy's independent ESP implementation (scapy.layers.ipsec).

Usage: scapy_esp.py IN.json OUT.json
IN has cases; each case has the SA parameters, packets meshsec sealed ("ours": ESP bytes and
the inner packet they must decrypt to) and inner packets for Scapy to seal ("theirs").
OUT reports, per case, whether each of our packets decrypted to the right inner packet, and
the ESP bytes Scapy produced for "theirs" (meshsec opens those).
"""
import json
import sys

from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.packet import Raw


def sa_for(case):
    kw = dict(
        spi=case["spi"],
        crypt_algo=case["crypt_algo"],
        crypt_key=bytes.fromhex(case["crypt_key"]),
        auth_algo=case["auth_algo"],
        auth_key=bytes.fromhex(case["auth_key"]) if case["auth_key"] else None,
        esn_en=case["esn"],
    )
    if case["mode"] == "tunnel":
        kw["tunnel_header"] = IP(src=case["outer_src"], dst=case["outer_dst"])
    if case["udp"]:
        kw["nat_t_header"] = UDP(sport=4500, dport=4500)
    return SecurityAssociation(ESP, **kw)


def outer(case, esp_bytes):
    pkt = IP(src=case["outer_src"], dst=case["outer_dst"])
    if case["udp"]:
        pkt = pkt / UDP(sport=4500, dport=4500)
    else:
        pkt.proto = 50
    return IP(bytes(pkt / Raw(esp_bytes)))


def run(case):
    sa = sa_for(case)
    report = {"ours": [], "theirs": []}
    for p in case["ours"]:
        # Scapy keeps the ESN high half in the SA (it does not infer it).
        sa.esn = p["seq"] >> 32
        try:
            dec = sa.decrypt(outer(case, bytes.fromhex(p["esp"])))
            inner = bytes.fromhex(p["inner"])
            if case["mode"] == "tunnel":
                ok = bytes(dec) == inner
            else:
                # Transport: Scapy rebuilds the header around the payload; compare payloads
                # and protocol.
                ok = bytes(dec[IP].payload) == inner[20:] and dec[IP].proto == inner[9]
            report["ours"].append("ok" if ok else "mismatch: %s" % bytes(dec).hex())
        except Exception as e:  # noqa: BLE001 - report any failure to the Rust side
            report["ours"].append("error: %r" % e)
    for p in case["theirs"]:
        inner = IP(bytes.fromhex(p["inner"]))
        if case["mode"] == "transport":
            inner.src, inner.dst = case["outer_src"], case["outer_dst"]
        sa.esn = p["seq"] >> 32
        enc = sa.encrypt(inner, seq_num=p["seq"] & 0xFFFFFFFF)
        esp = bytes(enc[ESP])
        report["theirs"].append(esp.hex())
    return report


def main():
    cases = json.load(open(sys.argv[1]))
    out = [run(c) for c in cases]
    json.dump(out, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
