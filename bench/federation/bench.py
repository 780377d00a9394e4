"""Federation benchmark driver (run by bench/federation/run).

1. Ingest: N indicators (TLP:GREEN) POSTed to one fresh node in envelopes of 1,000 (two posters):
   the time one node takes to take the objects in.
2. Chain: nodes A -> B -> C (A exports the collection to B, B to C; pull every second, and with
   --push A also pushes to B and B to C). The same N
   objects are POSTed to A the same way; the clock runs from the first POST until C holds all N
   (its database is polled). Ratio = chain time / ingest time (target <= 1.5).
3. One pull: a fresh node D is peered with A (which holds the N objects); the clock runs from the
   peering until D holds all N: objects/s of one pull (fetch, verify, store).
Prints one JSON line of figures; every node is a real `kopa serve` from $KOPA_BIN.
Besides the clocks, the CPU-seconds each process used during steps 1 and 2 (user + system, from
/proc/PID/stat for the nodes and os.times() for this driver, which is the posting client), so that
what the ratio is made of can be read off: on two cores, a step cannot take less wall time than
its total CPU-seconds divided by two.
"""

import argparse
import json
import os
import pathlib
import random
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "interop"))
os.environ.setdefault("KOPA_TEST_PG_URL", "")
from conftest import TAXII  # noqa: E402
from fedcluster import Cluster, indicator  # noqa: E402

ENVELOPE = 1000
POSTERS = 2


def post_all(node, collection, auth, objects):
    """POST the objects in envelopes from POSTERS threads; returns the seconds it took."""
    chunks = [objects[i:i + ENVELOPE] for i in range(0, len(objects), ENVELOPE)]
    lock = threading.Lock()
    errors = []

    def worker():
        s = requests.Session()
        while True:
            with lock:
                if not chunks:
                    return
                chunk = chunks.pop(0)
            r = s.post(f"{node.api_root}collections/{collection}/objects/", auth=auth,
                       data=json.dumps({"objects": chunk}),
                       headers={"Accept": TAXII, "Content-Type": TAXII}, timeout=600)
            if r.status_code != 202 or r.json().get("success_count") != len(chunk):
                errors.append(r.text[:300])
                return

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(POSTERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"ingest failed: {errors[0]}")
    return time.perf_counter() - t0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(node):
    """CPU-seconds (user + system) the node's `kopa serve` process has used so far."""
    with open(f"/proc/{node.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def client_cpu_s():
    """CPU-seconds this driver (the posting client and the polling) has used so far."""
    t = os.times()
    return t.user + t.system


def wait_count(node, collection, n, timeout):
    deadline = time.monotonic() + timeout
    while node.count(collection) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"{node.name} holds {node.count(collection)} of {n} after {timeout} s")
        time.sleep(0.2)
    return time.perf_counter()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--push", action="store_true", help="A pushes to B and B to C (besides pulls)")
    ap.add_argument("--dir", default=None, help="where the nodes' data go (default: a temporary dir)")
    args = ap.parse_args()
    if args.backend == "postgres" and not os.environ.get("KOPA_TEST_PG_URL"):
        os.environ["KOPA_TEST_PG_URL"] = "postgres://postgres@127.0.0.1:5432/test"

    rng = random.Random(2026)
    objects = [indicator(i, f"bench {i}", rng=rng) for i in range(args.n)]
    base = pathlib.Path(tempfile.mkdtemp(prefix="kopa-fed-bench-", dir=args.dir))
    env = {"KOPA_LOG": "warn"}
    out = {"objects": args.n, "backend": args.backend, "push": args.push, "envelope": ENVELOPE, "posters": POSTERS}

    # 1. One node's ingest.
    solo = Cluster(base / "solo", env)
    try:
        s = solo.add_node("solo", args.backend)
        room = solo.collection("Bench")
        solo.org("solo", "Org S", ["sam"])
        node0, client0 = cpu_s(s), client_cpu_s()
        out["ingest_s"] = round(post_all(s, room, solo.auth("sam"), objects), 2)
        out["ingest_cpu_s"] = {"node": round(cpu_s(s) - node0, 2),
                               "client": round(client_cpu_s() - client0, 2)}
        print(json.dumps(out), file=sys.stderr, flush=True)
    finally:
        solo.close()

    # 2. A -> B -> C.
    chain = Cluster(base / "chain", env)
    try:
        a = chain.add_node("node-a", args.backend)
        b = chain.add_node("node-b", args.backend)
        c = chain.add_node("node-c", args.backend)
        room = chain.collection("Bench")
        chain.org("node-a", "Org A", ["alice"])
        chain.link("node-a", "node-b", {"collections": [room]}, None, push=args.push)
        chain.link("node-b", "node-c", {"collections": [room]}, None, push=args.push)
        chain.know("node-a", "node-c")  # C verifies A's signatures; the objects go through B
        nodes = {"a": a, "b": b, "c": c}
        cpu0 = {k: cpu_s(v) for k, v in nodes.items()}
        client0 = client_cpu_s()
        t0 = time.perf_counter()
        posted = post_all(a, room, chain.auth("alice"), objects)
        t_b = wait_count(b, room, args.n, args.timeout)
        t_c = wait_count(c, room, args.n, args.timeout)
        out["chain_cpu_s"] = {k: round(cpu_s(v) - cpu0[k], 2) for k, v in nodes.items()}
        out["chain_cpu_s"]["client"] = round(client_cpu_s() - client0, 2)
        out["chain_post_on_a_s"] = round(posted, 2)
        out["chain_reach_b_s"] = round(t_b - t0, 2)
        out["chain_reach_c_s"] = round(t_c - t0, 2)
        out["ratio_chain_vs_ingest"] = round((t_c - t0) / out["ingest_s"], 2)
        print(json.dumps(out), file=sys.stderr, flush=True)

        # 3. One pull of everything A holds by a fresh node D.
        d = chain.add_node("node-d", args.backend)
        d.cli("collection", "add", "Bench", "--id", room, "--read", "all", "--write", "all")
        t0 = time.perf_counter()
        chain.link("node-a", "node-d", {"collections": [room]}, None)
        t_d = wait_count(d, room, args.n, args.timeout)
        out["one_pull_s"] = round(t_d - t0, 2)
        out["one_pull_objects_per_s"] = round(args.n / (t_d - t0))
    finally:
        chain.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
