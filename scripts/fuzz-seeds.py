#!/usr/bin/env python3
"""Writes a fuzz seed corpus from the real strongSwan captures in ../shared/vectors.

Usage: fuzz-seeds.py SHARED_DIR OUT_DIR
Each captured UDP payload (IKE on 500, IKE with non-ESP marker or ESP on 4500) becomes one
seed file, named after its scenario and frame.
"""
import json
import pathlib
import sys


def main() -> int:
    shared, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for keys in sorted((shared / "vectors" / "strongswan").glob("*/keys.json")):
        doc = json.loads(keys.read_text())
        for frame in doc["frames"]:
            name = f"{keys.parent.name}-frame{frame['frame']:02d}"
            (out / name).write_bytes(bytes.fromhex(frame["udp_payload"]))
            count += 1
    if count == 0:
        print(f"no vectors found under {shared}", file=sys.stderr)
        return 1
    print(f"{count} seeds in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
