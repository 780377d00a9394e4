"""`kopa import` beside the TAXII POST: the same indicators stored on a fresh SQLite node once by
`kopa import` of a bundle file and once by TAXII POSTs of envelopes of 1,000 (one client, as in
bench/taxii-vs-peers), same binary, one right after the other. Prints objects/s for each and the
import's peak memory.

    python bench/import/bench.py --kopa-bin target/release/kopa [-n 1000000] [--rounds 2]
"""

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import requests

TAXII = "application/taxii+json;version=2.1"
ENVELOPE = 1000


def indicator(i):
    return {
        "type": "indicator", "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=i + 1, version=4)}",
        "created": "2026-02-01T00:00:00.000Z", "modified": "2026-02-01T00:00:00.000Z",
        "name": f"bench {i}",
        "pattern": f"[ipv4-addr:value = '10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}']",
        "pattern_type": "stix", "valid_from": "2026-02-01T00:00:00Z",
    }


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, binary, workdir):
        self.binary, self.data = binary, os.path.join(workdir, "data")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KOPA_")}
        self.env["KOPA_ADMIN_TOKEN"] = "bench-admin-" + uuid.uuid4().hex
        self.env["KOPA_LOG"] = "warn"
        self.port = free_port()
        self.proc = None

    def cli(self, *args):
        r = subprocess.run([self.binary, *args, "--data", self.data, "--json"], env=self.env,
                           capture_output=True, text=True, check=True)
        return json.loads(r.stdout)

    def start(self):
        self.proc = subprocess.Popen([self.binary, "serve", "--data", self.data, "--listen",
                                      f"127.0.0.1:{self.port}"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("kopa serve did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=60)
            self.proc = None

    def prepare(self):
        """Start once (the node key), then an analyst and an open collection."""
        self.start()
        self.cli("org", "add", "Bench Org")
        user = self.cli("user", "add", "bench", "--org", "Bench Org", "--role", "analyst")
        coll = self.cli("collection", "add", "Bench", "--alias", "bench", "--read", "all",
                        "--write", "all")
        return user["token"], coll["id"]


def post_rate(binary, n, workdir):
    node = Node(binary, workdir)
    token, cid = node.prepare()
    try:
        bodies = [json.dumps({"objects": [indicator(i) for i in range(k, min(k + ENVELOPE, n))]})
                  .encode() for k in range(0, n, ENVELOPE)]
        s = requests.Session()
        s.headers.update({"Authorization": f"Bearer {token}", "Content-Type": TAXII,
                          "Accept": TAXII})
        url = f"http://127.0.0.1:{node.port}/kopa/collections/{cid}/objects/"
        t0 = time.perf_counter()
        for body in bodies:
            r = s.post(url, data=body, timeout=300)
            assert r.status_code == 202 and r.json()["failure_count"] == 0, r.text[:300]
        return n / (time.perf_counter() - t0)
    finally:
        node.stop()


def import_rate(binary, n, workdir):
    node = Node(binary, workdir)
    node.prepare()
    node.stop()
    path = os.path.join(workdir, "bundle.json")
    with open(path, "w") as f:
        f.write('{"type":"bundle","id":"bundle--%s","objects":[\n' % uuid.uuid4())
        for i in range(n):
            f.write((",\n" if i else "") + json.dumps(indicator(i), separators=(",", ":")))
        f.write("\n]}\n")
    probe = ("import resource, subprocess, sys, time\n"
             "t = time.perf_counter()\n"
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "s = time.perf_counter() - t\n"
             "print(r.returncode, s, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
             "print(r.stdout.strip() or r.stderr[-500:])\n")
    r = subprocess.run([sys.executable, "-c", probe, node.binary, "import", path, "--collection",
                        "bench", "--as", "bench", "--data", node.data, "--json"],
                       env=node.env, capture_output=True, text=True, check=True)
    head, out = r.stdout.split("\n", 1)
    code, seconds, peak_kb = head.split()
    result = json.loads(out)
    assert code == "0" and result["stored"] == n, out
    return n / float(seconds), int(peak_kb) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kopa-bin", required=True)
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    print(f"{a.n} indicators, load {os.getloadavg()[0]:.1f}")
    for k in range(a.rounds):
        for step in ("post", "import"):
            work = tempfile.mkdtemp(prefix="kopa-import-bench-")
            try:
                if step == "post":
                    print(f"round {k + 1}: TAXII POST {post_rate(a.kopa_bin, a.n, work):,.0f} objects/s")
                else:
                    rate, peak = import_rate(a.kopa_bin, a.n, work)
                    print(f"round {k + 1}: kopa import {rate:,.0f} objects/s, peak {peak:.0f} MB")
            finally:
                shutil.rmtree(work, ignore_errors=True)
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
