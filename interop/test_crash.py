"""Crash safety: kill -9 (or SIGTERM) a node in the middle of a long ingest, restart it, and check that every object
acknowledged as a success (a 202 status listing it in `successes`) is there, that the node starts
cleanly, that the audit log still verifies and (SQLite) that `PRAGMA integrity_check` is ok.
"""

import json
import random
import signal
import sqlite3
import threading
import time
import uuid

import pytest
import requests

from conftest import ADMIN_TOKEN, TAXII, backend_params, make_node

ENVELOPE = 200
POSTERS = 2
ACKED_BEFORE_KILL = 6


def indicator(rng, i):
    ts = f"2026-02-01T00:00:{i % 60:02d}.{i % 1000:03d}Z"
    return {
        "type": "indicator", "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        "created": ts, "modified": ts, "name": f"crash {i}",
        "pattern": f"[ipv4-addr:value = '10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}']",
        "pattern_type": "stix", "valid_from": ts,
        "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
    }


class Poster(threading.Thread):
    """Posts envelopes until the server goes away; records what was acknowledged."""

    def __init__(self, url, auth, seed):
        super().__init__(daemon=True)
        self.url, self.auth, self.rng = url, auth, random.Random(seed)
        self.acked = set()
        self.envelopes_acked = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.n = seed * 10_000_000

    def run(self):
        s = requests.Session()
        while not self.stop.is_set():
            objs = [indicator(self.rng, self.n + k) for k in range(ENVELOPE)]
            self.n += ENVELOPE
            try:
                r = s.post(self.url, auth=self.auth, data=json.dumps({"objects": objs}),
                           headers={"Accept": TAXII, "Content-Type": TAXII}, timeout=30)
            except requests.RequestException:
                return  # the server is gone: whatever was in flight is not acknowledged
            if r.status_code != 202:
                return
            with self.lock:
                self.acked.update(d["id"] for d in r.json().get("successes", []))
                self.envelopes_acked += 1


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill9", "sigterm"])
@pytest.mark.parametrize("backend", backend_params())
def test_stop_during_ingest_loses_nothing_acknowledged(backend, sig, tmp_path):
    """kill -9 (a crash) or SIGTERM (graceful: in-flight requests finish, exit 0) mid-ingest."""
    node = make_node(tmp_path, backend)
    node.start()
    try:
        node.cli("org", "add", "Ingest Org")
        user = node.cli("user", "add", "ingest", "--org", "Ingest Org", "--role", "analyst")
        col = node.cli("collection", "add", "Feed", "--read", "all", "--write", "Ingest Org")
        url = f"{node.api_root}collections/{col['id']}/objects/"
        auth = (user["name"], user["token"])

        posters = [Poster(url, auth, seed) for seed in range(1, POSTERS + 1)]
        for p in posters:
            p.start()
        while sum(p.envelopes_acked for p in posters) < ACKED_BEFORE_KILL:
            assert any(p.is_alive() for p in posters), node.read_log()
            time.sleep(0.01)
        code = node.stop(sig)  # mid-ingest: the posters have requests in flight
        if sig == signal.SIGTERM:
            assert code == 0, node.read_log()
        for p in posters:
            p.join(timeout=60)
        acked = set().union(*(p.acked for p in posters))
        assert len(acked) >= ACKED_BEFORE_KILL * ENVELOPE

        if node.pg is None:
            db = sqlite3.connect(f"{node.data}/kopa.db")
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            db.close()

        node.start()  # restarts cleanly on the same store
        stored = set()
        next_ = None
        while True:
            params = {"limit": 5000, **({"next": next_} if next_ else {})}
            r = requests.get(url, params=params, auth=auth, headers={"Accept": TAXII})
            assert r.status_code == 200, r.text
            env = r.json()
            stored.update(o["id"] for o in env.get("objects", []))
            if not env.get("more"):
                break
            next_ = env["next"]
        missing = acked - stored
        assert not missing, f"{len(missing)} acknowledged objects lost, e.g. {sorted(missing)[:3]}"

        # Every committed object is in the audit log: each batch's entry is written in the batch's
        # own transaction, so a crash never leaves stored objects without their entry.
        entries, after = [], 0
        while True:
            r = requests.get(f"{node.url}/api/audit", params={"after": after, "limit": 10000},
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert r.status_code == 200, r.text
            page = r.json()["entries"]
            if not page:
                break
            entries += page
            after = page[-1]["seq"]
        audited = sum(json.loads(e["detail"]).get("stored", 0)
                      for e in entries if e["action"] == "objects.add")
        assert audited == len(stored), f"{len(stored)} objects stored, {audited} audited"

        # The node works after the crash: a new envelope is stored, the audit log verifies.
        fresh = [indicator(random.Random(99), 10**9 + k) for k in range(3)]
        r = requests.post(url, auth=auth, data=json.dumps({"objects": fresh}),
                          headers={"Accept": TAXII, "Content-Type": TAXII})
        assert r.status_code == 202 and r.json()["success_count"] == 3
        assert node.cli("audit", "verify")["ok"] is True
        assert node.stop() == 0

        if node.pg is None:
            db = sqlite3.connect(f"{node.data}/kopa.db")
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            db.close()
    finally:
        node.close()
