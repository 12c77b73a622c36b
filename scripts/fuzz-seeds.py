#!/usr/bin/env python3
"""Writes a fuzz seed corpus from the real strongSwan captures in ../shared/vectors.

Usage: fuzz-seeds.py SHARED_DIR OUT_DIR [TARGET]
Each captured UDP payload (IKE on 500, IKE with non-ESP marker or ESP on 4500) becomes one
seed file, named after its scenario and frame. For the ike_responder target, whose input
starts with a mode octet (PSK or certificate peer), each payload is written once per mode.
"""
import base64
import json
import pathlib
import subprocess
import sys
import tempfile


def certificate_seeds(out: pathlib.Path) -> int:
    """Real certificate chains (made by meshsec pki) in the certificate target's format."""
    meshsec = pathlib.Path(__file__).resolve().parent.parent / "target" / "debug" / "meshsec"
    if not meshsec.exists():
        return 0
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        for key in ["ecdsa-p256", "ed25519", "rsa3072"]:
            d = pathlib.Path(tmp) / key
            run = lambda *a: subprocess.run([str(meshsec), "pki", *a], check=True, capture_output=True)
            run("ca", "--out", str(d / "root"), "--key-type", key)
            run("ca", "--out", str(d / "int"), "--key-type", key, "--issuer-cert",
                str(d / "root" / "ca.pem"), "--issuer-key", str(d / "root" / "ca.key"))
            run("issue", "left", "--address", "192.0.2.1", "--key-type", key, "--ca",
                str(d / "int" / "ca.pem"), "--ca-key", str(d / "int" / "ca.key"), "--out", str(d))
            pem = (d / "left.pem").read_text()
            ders = [base64.b64decode("".join(block.split("-----")[0].split()))
                    for block in pem.split("-----BEGIN CERTIFICATE-----")[1:]]
            chain = b"".join(len(c).to_bytes(2, "big") + c for c in ders)
            for mode in [0, 2]:
                (out / f"chain-{key}-{mode}").write_bytes(bytes([mode]) + chain)
                count += 1
    return count


def main() -> int:
    shared, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    target = sys.argv[3] if len(sys.argv) > 3 else ""
    out.mkdir(parents=True, exist_ok=True)
    prefixes = [b"\x00", b"\x01"] if target == "ike_responder" else [b""]
    if target == "certificate":
        n = certificate_seeds(out)
        print(f"{n} certificate seeds in {out}")
        if n:
            return 0
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for keys in sorted((shared / "vectors" / "strongswan").glob("*/keys.json")):
        doc = json.loads(keys.read_text())
        for frame in doc["frames"]:
            for i, prefix in enumerate(prefixes):
                name = f"{keys.parent.name}-frame{frame['frame']:02d}"
                if prefix:
                    name += f"-mode{i}"
                (out / name).write_bytes(prefix + bytes.fromhex(frame["udp_payload"]))
                count += 1
    if count == 0:
        print(f"no vectors found under {shared}", file=sys.stderr)
        return 1
    print(f"{count} seeds in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
