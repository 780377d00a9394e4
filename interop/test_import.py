"""`kopa import` at scale: a bundle of 1,000,000 indicators is streamed with bounded memory, and a kill
-9 in the middle of an import leaves only whole transactions, each with its audit entry; a second run
completes it.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import requests

from conftest import ADMIN_TOKEN, backend_params, make_node

MILLION = 1_000_000
BATCH = 2000
# Peak resident memory allowed to the import of a million objects.
MEMORY_BOUND_MB = 200


def indicator_line(i):
    return json.dumps({
        "type": "indicator", "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=i + 1, version=4)}",
        "created": "2026-02-01T00:00:00.000Z", "modified": "2026-02-01T00:00:00.000Z",
        "name": f"import {i}",
        "pattern": f"[ipv4-addr:value = '10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}']",
        "pattern_type": "stix", "valid_from": "2026-02-01T00:00:00Z",
    }, separators=(",", ":"))


def write_bundle(path, n):
    """A bundle of n indicators, one per line (the file is read as a stream, not as lines)."""
    with open(path, "w") as f:
        f.write('{"type":"bundle","id":"bundle--%s","objects":[\n' % uuid.UUID(int=7, version=4))
        for i in range(n):
            if i:
                f.write(",\n")
            f.write(indicator_line(i))
        f.write("\n]}\n")


def prepared_node(tmp_path, backend):
    """A node started once (its key made), with an analyst `loader` and a collection `feed`."""
    node = make_node(tmp_path, backend)
    node.start()
    node.stop()
    node.cli("org", "add", "Loader Org")
    user = node.cli("user", "add", "loader", "--org", "Loader Org", "--role", "analyst")
    node.cli("collection", "add", "Feed", "--alias", "feed", "--read", "all", "--write", "all")
    node.loader_token = user["token"]
    return node


def import_cmd(node, path):
    return [node.bin, "import", str(path), "--collection", "feed", "--as", "loader",
            "--batch", str(BATCH), *node.store_args(), "--json"]


def test_a_million_objects_are_imported_with_bounded_memory(tmp_path):
    node = prepared_node(tmp_path, "sqlite")
    try:
        bundle = tmp_path / "million.json"
        write_bundle(bundle, MILLION)
        # Peak memory of the import alone: measured by a process of its own that runs only it.
        probe = ("import resource, subprocess, sys\n"
                 "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
                 "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
                 "print(r.returncode, peak)\n"
                 "print(r.stdout.strip())\n"
                 "print(r.stderr[-2000:], file=sys.stderr)\n")
        started = time.monotonic()
        r = subprocess.run([sys.executable, "-c", probe, *import_cmd(node, bundle)],
                           env=node.env, capture_output=True, text=True, timeout=1800)
        seconds = time.monotonic() - started
        head, out = r.stdout.split("\n", 1)
        code, peak_kb = (int(x) for x in head.split())
        assert code == 0, f"{out} {r.stderr}"
        result = json.loads(out)
        assert result["stored"] == MILLION and result["failed"] == 0, result
        assert result["transactions"] == MILLION // BATCH, result
        peak_mb = peak_kb / 1024
        print(f"import of {MILLION} objects: {seconds:.1f} s, {MILLION / seconds:.0f} objects/s, "
              f"peak {peak_mb:.0f} MB")
        assert peak_mb < MEMORY_BOUND_MB, f"peak resident memory {peak_mb:.0f} MB"
        assert node.cli("audit", "verify")["ok"] is True
    finally:
        node.close()


@pytest.mark.parametrize("backend", backend_params())
def test_kill_during_an_import_leaves_whole_audited_transactions(backend, tmp_path):
    node = prepared_node(tmp_path, backend)
    try:
        n = 60_000
        bundle = tmp_path / "feed.json"
        write_bundle(bundle, n)
        proc = subprocess.Popen(import_cmd(node, bundle), env=node.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Kill it once some transactions are committed and before it is done.
        before = node.cli("audit", "verify")["entries"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if node.cli("audit", "verify")["entries"] >= before + 2 or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the import ended before it could be killed; use a larger file"
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        log = node.cli("audit", "verify")
        assert log["ok"] is True, log
        node.start()
        try:
            r = requests.get(f"{node.url}/api/audit", params={"limit": 10000},
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            entries = [e for e in r.json()["entries"] if e["action"] == "objects.import"]
            audited = sum(json.loads(e["detail"])["stored"] for e in entries)
            # Unmarked objects are narrowed to their owner organisation: read as its user.
            r = requests.get(f"{node.url}/api/export/feed",
                             headers={"Authorization": f"Bearer {node.loader_token}"})
            assert r.status_code == 200, r.text
            held = len(r.json()["objects"])
        finally:
            node.stop()
        assert 0 < held < n, held
        assert held % BATCH == 0, f"{held} objects held: not whole transactions of {BATCH}"
        assert audited == held, f"{held} objects held, {audited} audited"

        # A second run stores the rest and finds the first part held.
        again = subprocess.run(import_cmd(node, bundle), env=node.env, capture_output=True,
                               text=True, timeout=600)
        result = json.loads(again.stdout)
        assert again.returncode == 0, result
        assert (result["stored"], result["duplicates"]) == (n - held, held), result
    finally:
        node.close()
