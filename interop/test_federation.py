"""Federation between real Kopa nodes on loopback (SQLite and PostgreSQL mixed).

Each test starts its nodes as `kopa serve` processes (fedcluster.Cluster), peers them on both sides
with the admin CLI, posts objects over TAXII as local users and polls until the nodes converge; what
each node holds is read from its database (everything that reached it) and through TAXII as each user.
Convergence is polled with a generous timeout; nothing here asserts on speed.
"""

import json
import random
import re
import signal
import threading
import time

import pytest
import requests

from conftest import ADMIN_TOKEN, TAXII, free_port
from fedcluster import (PROVENANCE_EXT, Cluster, Model, check_converged, check_views, indicator,
                        new_version, parse_time, wait_for)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


def converge(cluster, model, collections):
    """Wait until every node holds exactly what the rules say, let two more sync rounds pass (nothing
    further may arrive), then check each node's store and each user's TAXII view exactly."""
    wait_for(lambda: check_converged(cluster, model, collections), "convergence")
    cluster.settle()
    done, detail = check_converged(cluster, model, collections)
    assert done, detail
    check_views(cluster, model, collections)


def ids(node, collection):
    return {(sid, mod) for (c, sid, mod) in node.stored() if c == collection}


def status_field(st, name):
    """A field of a peer's status, at the top level or under "status"."""
    if name in st:
        return st[name]
    return (st.get("status") or {}).get(name)


def healthy(st):
    """Synced, and no error since the last successful sync (a pull may have been refused while the
    peers were being declared on both sides)."""
    last = parse_time(st.get("last_sync_at"))
    err = parse_time(st.get("last_error_at"))
    return last is not None and (err is None or err < last)


def rejected(st, reason):
    counts = status_field(st, "rejected") or {}
    return counts.get(reason, 0)


def metric(text, name, **labels):
    """The value of one Prometheus sample (None when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        m = re.match(r'^([a-z_]+)(?:\{(.*)\})? ([0-9.eE+-]+|NaN)$', line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


# --- topologies --------------------------------------------------------------------------------------


def test_chain_converges_to_exactly_the_allowed_sets(cluster):
    """A -> B -> C: A exports to B up to RED, B exports to C up to GREEN, nothing flows back (A and
    C only know each other's keys). Objects reach exactly the nodes and the users their markings and named audience allow, every
    version arrives, provenance says where each came from, and status and metrics show the sync."""
    a = cluster.add_node("node-a", "sqlite")
    b = cluster.add_node("node-b", "postgres")
    c = cluster.add_node("node-c", "sqlite")
    room, other = cluster.collection("Room"), cluster.collection("Other room")
    cluster.org("node-a", "Org A", ["alice"])
    cluster.org("node-b", "Org B", ["bob", "bert"])
    cluster.org("node-b", "Org B2", ["bea"])
    cluster.org("node-c", "Org C", ["carol"])
    cluster.link("node-a", "node-b", {"collections": [room], "max_tlp": "RED"}, None)
    cluster.link("node-b", "node-c", {"collections": [room], "max_tlp": "GREEN"}, None)
    cluster.know("node-a", "node-c")  # C verifies A's signatures; no data flows between them
    cluster.record_remote("node-a", "Org B")
    for org in ("Org A", "Org C"):
        cluster.record_remote("node-b", org)
    cluster.record_remote("node-c", "Org B")

    model = Model(cluster)
    alice = cluster.auth("alice")
    objs = {
        "green": indicator(1, "green"),
        "clear": indicator(2, "clear", tlp="CLEAR"),
        "amber": indicator(3, "amber for the readers", tlp="AMBER"),
        "amber_b": indicator(4, "amber for Org B", tlp="AMBER", orgs=["Org B"]),
        "strict_b": indicator(5, "strict for Org B", tlp="AMBER+STRICT", orgs=["Org B"]),
        "red_bob": indicator(6, "red for bob", tlp="RED", recipients=["bob"]),
        "unmarked": indicator(7, "unmarked", tlp=None),
        "green_for_b": indicator(8, "green for Org B", orgs=["Org B"]),
        "two_versions": indicator(9, "two versions"),
    }
    a.post(room, list(objs.values()), alice)
    v2 = new_version(objs["two_versions"], "2026-11-02T00:00:00.000Z")
    a.post(room, [v2], alice)
    elsewhere = indicator(10, "in a room A does not export")
    a.post(other, [elsewhere], alice)
    for o in [*objs.values(), v2]:
        model.add("node-a", "alice", room, o)
    model.add("node-a", "alice", other, elsewhere)
    from_b = indicator(11, "green from B")
    b.post(room, [from_b], cluster.auth("bob"))
    model.add("node-b", "bob", room, from_b)
    from_c = indicator(12, "green from C")
    c.post(room, [from_c], cluster.auth("carol"))
    model.add("node-c", "carol", room, from_c)

    converge(cluster, model, [room, other])

    # The model is checked against the rules stated by hand for this chain.
    k = {n: (o["id"], o["modified"]) for n, o in objs.items()}
    k["v2"] = (v2["id"], v2["modified"])
    on_b = {k[n] for n in ("green", "clear", "amber", "amber_b", "strict_b", "red_bob", "green_for_b",
                           "two_versions", "v2")} | {(from_b["id"], from_b["modified"])}
    on_c = {k[n] for n in ("green", "clear", "two_versions", "v2")} | \
        {(from_b["id"], from_b["modified"]), (from_c["id"], from_c["modified"])}
    assert ids(b, room) == on_b
    assert ids(c, room) == on_c
    assert ids(b, other) == set() and ids(c, other) == set()
    assert ids(a, room) == set(k.values())
    assert c.view(room, cluster.auth("carol")) == on_c
    assert b.view(room, cluster.auth("bea")) == on_b - {k["amber_b"], k["strict_b"], k["red_bob"],
                                                        k["green_for_b"]}
    assert b.view(room, cluster.auth("bert")) == on_b - {k["red_bob"]}

    # Provenance: origin node and the peer that delivered it, in the store and in what is served.
    stored_c = c.stored()
    assert stored_c[(room, *k["green"])] == (a.id, b.id)
    assert stored_c[(room, from_b["id"], from_b["modified"])] == (b.id, b.id)
    assert stored_c[(room, from_c["id"], from_c["modified"])] == (None, None)
    served = {o["id"]: o for o in c.objects(room, cluster.auth("carol"))}
    assert served[objs["green"]["id"]]["extensions"][PROVENANCE_EXT]["origin_node"] == a.id

    # Status: `kopa peer list --json` and GET /api/peers.
    st = c.peer_status()["node-b"]
    assert st["node_id"] == b.id and healthy(st), st
    assert status_field(st, "lag_objects") == 0
    assert status_field(st, "received") == len(on_c) - 1, st  # all but C's own object
    assert rejected(st, "tampered") == 0
    r = c.rest("/api/peers")
    assert r.status_code == 200, r.text
    body = r.json()
    peers = body["peers"] if isinstance(body, dict) else body
    rest_b = next(p for p in peers if p["name"] == "node-b")
    for field in ("node_id", "url", "push", "policy", "last_sync_at", "lag_objects", "lag_seconds",
                  "received", "rejected", "last_error", "last_error_at", "error_count"):
        assert field in rest_b, f"GET /api/peers lacks {field}: {rest_b}"
    assert rest_b["node_id"] == b.id and rest_b["received"] == len(on_c) - 1
    assert c.rest("/api/peers", auth=cluster.auth("carol")).status_code == 403
    assert "token" not in json.dumps(peers).replace("token_set", "")

    # Metrics: the peer series on C (received from B) and on B (from A).
    m = c.metrics()
    assert metric(m, "kopa_peer_objects_received_total", peer="node-b") == len(on_c) - 1, m[-3000:]
    assert metric(m, "kopa_peer_lag_objects", peer="node-b") == 0
    assert metric(m, "kopa_peer_last_sync_timestamp_seconds", peer="node-b") > 0
    assert metric(m, "kopa_peer_lag_seconds", peer="node-b") is not None
    assert metric(m, "kopa_peer_sync_errors_total", peer="node-b") == 0  # present from the first round
    assert metric(m, "kopa_signatures_verified_total") >= len(on_c) - 1
    mb = b.metrics()
    assert metric(mb, "kopa_peer_objects_received_total", peer="node-a") == len(on_b) - 1


def test_mesh_converges_to_exactly_the_allowed_sets(cluster):
    """Four nodes, every pair peered: objects from each node reach every other one once, narrowed
    objects only the nodes hosting a named organisation, one link capped at TLP:CLEAR, one pushing."""
    names = ["node-a", "node-b", "node-c", "node-d"]
    backends = ["sqlite", "postgres", "sqlite", "postgres"]
    nodes = [cluster.add_node(n, be) for n, be in zip(names, backends)]
    room = cluster.collection("Mesh room")
    for i, n in enumerate(names):
        cluster.org(n, f"Org {n[-1].upper()}", [f"user-{n[-1]}"])
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            cap = "CLEAR" if (x, y) == ("node-a", "node-d") else "RED"
            cluster.link(x, y, {"collections": [room], "max_tlp": cap},
                         {"collections": [room], "max_tlp": "RED"}, push=(x, y) == ("node-b", "node-c"))
    for x in names:
        for y in names:
            if x != y:
                cluster.record_remote(x, f"Org {y[-1].upper()}")
    model = Model(cluster)
    rng = random.Random(4)
    n = 100
    for node, name in zip(nodes, names):
        user = f"user-{name[-1]}"
        others = [f"Org {y[-1].upper()}" for y in names if y != name]
        batch = [indicator(n, f"green from {name}", rng=rng),
                 indicator(n + 1, f"clear from {name}", tlp="CLEAR", rng=rng),
                 indicator(n + 2, f"amber from {name}", tlp="AMBER", rng=rng),
                 indicator(n + 3, f"amber for one org from {name}", tlp="AMBER", orgs=[others[0]], rng=rng),
                 indicator(n + 4, f"strict from {name}", tlp="AMBER+STRICT", orgs=[others[1]], rng=rng),
                 indicator(n + 5, f"red from {name}", tlp="RED", recipients=[f"user-{names[(names.index(name) + 1) % 4][-1]}"], rng=rng)]
        n += 10
        node.post(room, batch, cluster.auth(user))
        for o in batch:
            model.add(name, user, room, o)
    converge(cluster, model, [room])
    # The model agrees with the rules stated by hand for A's objects: green, clear and amber reach
    # every node (amber reaches D through B or C, around the CLEAR cap of A -> D); the narrowed
    # amber only B (Org B named), the strict one only C (Org C named), the red one only B (user-b).
    def holders(name):
        o = next(o for (_, _, _, o) in model.posted if o["name"] == name)
        return {x for x, node in cluster.nodes.items() if (room, o["id"], o["modified"]) in node.stored()}
    everywhere = set(names)
    assert holders("green from node-a") == everywhere
    assert holders("clear from node-a") == everywhere
    assert holders("amber from node-a") == everywhere
    assert holders("amber for one org from node-a") == {"node-a", "node-b"}
    assert holders("strict from node-a") == {"node-a", "node-c"}
    assert holders("red from node-a") == {"node-a", "node-b"}


# --- crashes, restarts and partitions -----------------------------------------------------------------


def bulk(rng, start, count, name):
    return [indicator(start + i, f"{name} {start + i}", rng=rng) for i in range(count)]


def test_node_stopped_during_sync_converges_without_duplicates(cluster):
    """B pulls a large collection from A in small pages; B is stopped in the middle of it and
    restarted, then A is stopped while B pulls and restarted: B ends with every version exactly once."""
    env = {"KOPA_FEDERATION__PAGE_SIZE": "25"}
    a = cluster.add_node("node-a", "postgres", env)
    b = cluster.add_node("node-b", "sqlite", env)
    room = cluster.collection("Bulk room")
    cluster.org("node-a", "Org A", ["alice"])
    rng = random.Random(7)
    objs = bulk(rng, 0, 4000, "bulk")
    for i in range(0, len(objs), 1000):
        a.post(room, objs[i:i + 1000], cluster.auth("alice"))
    want = {(o["id"], o["modified"]) for o in objs}
    cluster.link("node-a", "node-b", {"collections": [room]}, None)

    def partial(lo):
        def check():
            n = b.count(room)
            return n > lo or n == len(objs), n
        return check

    n = wait_for(partial(0), "B's first pulled page", interval=0.02)
    assert n < len(objs), f"B pulled all {n} objects before it could be stopped: use more objects"
    assert b.stop() == 0, b.read_log()
    b.start()
    wait_for(partial(b.count(room)), "B pulling again after its restart", interval=0.02)
    # A stopped while B pulls from it (or right after, on a fast machine): B records the error and
    # resumes when A is back.
    assert a.stop() == 0, a.read_log()
    wait_for(lambda: (status_field(b.peer_status()["node-a"], "last_error") is not None, None),
             "B recording that A is unreachable")
    a.start()
    wait_for(lambda: (ids(b, room) == want, len(ids(b, room))), "B holding every object of A")
    cluster.settle()
    assert ids(b, room) == want
    assert b.view(room, ("admin", ADMIN_TOKEN)) == want
    st = b.peer_status()["node-a"]
    assert status_field(st, "lag_objects") == 0, st


class Poster(threading.Thread):
    """Posts envelopes to a node until told to stop; records what the node acknowledged."""

    def __init__(self, node, collection, auth, seed):
        super().__init__(daemon=True)
        self.node, self.collection, self.auth = node, collection, auth
        self.rng = random.Random(seed)
        self.n = seed * 1_000_000
        self.acked = set()
        self.halt = threading.Event()

    def run(self):
        s = requests.Session()
        while not self.halt.is_set():
            objs = bulk(self.rng, self.n, 100, "acked")
            self.n += 100
            try:
                r = s.post(f"{self.node.api_root}collections/{self.collection}/objects/", auth=self.auth,
                           data=json.dumps({"objects": objs}),
                           headers={"Accept": TAXII, "Content-Type": TAXII}, timeout=30)
            except requests.RequestException:
                time.sleep(0.1)  # the node is down: nothing in flight was acknowledged
                continue
            if r.status_code == 202:
                done = {d["id"] for d in r.json().get("successes", [])}
                self.acked |= {(o["id"], o["modified"]) for o in objs if o["id"] in done}
            else:
                time.sleep(0.1)


def test_kill9_during_sync_loses_nothing_acknowledged(cluster):
    """A -> B -> C while A takes writes: B is killed (-9) in the middle of its pulls, then A in the
    middle of its ingest; after the restarts every object A acknowledged is on A, B and C."""
    env = {"KOPA_FEDERATION__PAGE_SIZE": "50"}
    a = cluster.add_node("node-a", "sqlite", env)
    b = cluster.add_node("node-b", "postgres", env)
    c = cluster.add_node("node-c", "sqlite", env)
    room = cluster.collection("Crash room")
    cluster.org("node-a", "Org A", ["alice"])
    cluster.link("node-a", "node-b", {"collections": [room]}, None)
    cluster.link("node-b", "node-c", {"collections": [room]}, None)
    cluster.know("node-a", "node-c")
    poster = Poster(a, room, cluster.auth("alice"), 3)
    poster.start()
    try:
        wait_for(lambda: (len(ids(b, room)) > 200, len(ids(b, room))), "B pulling")
        assert b.kill9() == -signal.SIGKILL
        wait_for(lambda: (len(poster.acked) > len(ids(b, room)) + 500, len(poster.acked)), "A taking writes")
        b.start()
        wait_for(lambda: (len(ids(c, room)) > 200, len(ids(c, room))), "C pulling from B")
        acked_before = len(poster.acked)
        wait_for(lambda: (len(poster.acked) > acked_before + 300, len(poster.acked)), "more writes on A")
        assert a.kill9() == -signal.SIGKILL
        a.start()
        acked_before = len(poster.acked)
        wait_for(lambda: (len(poster.acked) > acked_before + 300, len(poster.acked)), "writes after A's restart")
    finally:
        poster.halt.set()
        poster.join(60)
    acked = poster.acked
    assert len(acked) > 1000
    for node in (a, b, c):
        wait_for(lambda node=node: (acked <= ids(node, room), len(acked - ids(node, room))),
                 f"{node.name} holding every acknowledged object")
    cluster.settle()
    on_a = ids(a, room)
    assert acked <= on_a
    # Whatever A stored (acknowledged or not, e.g. an envelope cut by the kill) reaches B and C, once.
    assert ids(b, room) == on_a and ids(c, room) == on_a
    for node in (b, c):
        assert node.view(room, ("admin", ADMIN_TOKEN)) == on_a


def test_partition_heals(cluster):
    """Mesh A, B, C; C is stopped (its port refuses): A and B record the error and keep syncing
    with each other; C restarted catches up, and what was posted on C before the stop arrives."""
    a = cluster.add_node("node-a", "sqlite")
    b = cluster.add_node("node-b", "postgres")
    c = cluster.add_node("node-c", "sqlite")
    room = cluster.collection("Partition room")
    for n in ("a", "b", "c"):
        cluster.org(f"node-{n}", f"Org {n.upper()}", [f"user-{n}"])
    green = {"collections": [room], "max_tlp": "GREEN"}
    for x, y in (("node-a", "node-b"), ("node-b", "node-c"), ("node-a", "node-c")):
        cluster.link(x, y, green, green)
    model = Model(cluster)
    rng = random.Random(11)

    def post(node, name, count):
        batch = bulk(rng, rng.randrange(1 << 24), count, f"{name}")
        cluster.nodes[node].post(room, batch, cluster.auth(f"user-{node[-1]}"))
        for o in batch:
            model.add(node, f"user-{node[-1]}", room, o)

    post("node-c", "before the partition", 5)
    converge(cluster, model, [room])
    assert c.stop() == 0
    running = {"node-a": a, "node-b": b}
    post("node-a", "during the partition", 20)
    post("node-b", "during the partition", 20)
    during = model.expected()

    def ab_converged():
        missing = [(n, len(set(during[n]) - set(node.stored()))) for n, node in running.items()]
        return all(m == 0 for _, m in missing), missing

    wait_for(ab_converged, "A and B converging while C is down")

    def errors_seen():
        out = [(n, status_field(node.peer_status()["node-c"], "last_error")) for n, node in running.items()]
        return all(e for _, e in out), out

    wait_for(errors_seen, "A and B recording that C is unreachable")
    for node in running.values():
        st = node.peer_status()["node-c"]
        assert st["error_count"] >= 1 and st["last_error_at"], st
        assert metric(node.metrics(), "kopa_peer_sync_errors_total", peer="node-c") >= 1
    c.start()
    post("node-c", "after the partition", 5)
    converge(cluster, model, [room])


# --- verification -----------------------------------------------------------------------------------


def test_tampered_and_unknown_key_objects_are_rejected_and_counted(cluster):
    """Z's object reaches A (A knows Z's key) and A relays it to B, which does not know Z: rejected
    as signed by an unknown node. An object changed by one byte in A's store after signing is
    rejected as tampered. Both are counted once in B's status for A and in its metrics; the intact
    object beside them is stored."""
    a = cluster.add_node("node-a", "postgres")
    b = cluster.add_node("node-b", "sqlite")
    z = cluster.add_node("node-z", "sqlite")
    room = cluster.collection("Verify room")
    cluster.org("node-a", "Org A", ["alice"])
    cluster.org("node-z", "Org Z", ["zed"])
    cluster.link("node-z", "node-a", {"collections": [room]}, None)
    from_z = indicator(1, "signed by Z")
    z.post(room, [from_z], cluster.auth("zed"))
    wait_for(lambda: ((room, from_z["id"], from_z["modified"]) in a.stored(), None), "Z's object on A")

    tamper, intact = indicator(2, "tamper me"), indicator(3, "intact")
    a.post(room, [tamper, intact], cluster.auth("alice"))
    changed = a.sql("UPDATE objects SET json = replace(json, 'tamper me', 'tamper mE') "
                    "WHERE stix_id = '" + tamper["id"] + "' RETURNING seq")
    assert len(changed) == 1, changed
    served = {o["id"]: o for o in a.objects(room, cluster.auth("alice"))}
    assert served[tamper["id"]]["name"] == "tamper mE", "A does not serve the changed byte"
    assert PROVENANCE_EXT in served[tamper["id"]]["extensions"]

    cluster.link("node-a", "node-b", {"collections": [room]}, None)
    wait_for(lambda: ((room, intact["id"], intact["modified"]) in b.stored(), None), "the intact object on B")
    cluster.settle(["node-b"])
    assert ids(b, room) == {(intact["id"], intact["modified"])}
    st = b.peer_status()["node-a"]
    assert rejected(st, "tampered") == 1, st
    assert rejected(st, "unknown_node") == 1, st
    rest = b.rest("/api/peers").json()
    rest_a = next(p for p in (rest["peers"] if isinstance(rest, dict) else rest) if p["name"] == "node-a")
    assert rest_a["rejected"].get("tampered") == 1 and rest_a["rejected"].get("unknown_node") == 1, rest_a
    m = b.metrics()
    assert metric(m, "kopa_peer_objects_rejected_total", peer="node-a", reason="tampered") == 1
    assert metric(m, "kopa_peer_objects_rejected_total", peer="node-a", reason="unknown_node") == 1
    assert metric(m, "kopa_peer_objects_received_total", peer="node-a") == 1


# --- push and sightings ---------------------------------------------------------------------------


def test_push_delivers_when_the_receiver_cannot_pull(cluster):
    """A pushes to B; B's record of A points at a closed port, so B cannot pull: what arrives on B
    came by push, and only what A's policy for B allows."""
    a = cluster.add_node("node-a", "sqlite")
    b = cluster.add_node("node-b", "postgres")
    room = cluster.collection("Push room")
    cluster.org("node-a", "Org A", ["alice"])
    cluster.org("node-b", "Org B", ["bob"])
    cluster.peer("node-a", "node-b", {"collections": [room], "max_tlp": "GREEN"}, push=True)
    # B takes A's pushes into the room (a peer posts only where the receiver's policy names).
    cluster.peer("node-b", "node-a", {"collections": [room], "max_tlp": "CLEAR"},
                 url=f"http://127.0.0.1:{free_port()}")
    model = Model(cluster)
    batch = [indicator(1, "pushed green"), indicator(2, "amber stays", tlp="AMBER"),
             indicator(3, "clear pushed", tlp="CLEAR")]
    a.post(room, batch, cluster.auth("alice"))
    for o in batch:
        model.add("node-a", "alice", room, o)
    wait_for(lambda: check_converged(cluster, model, [room]), "push convergence")
    assert ids(b, room) == {(o["id"], o["modified"]) for o in batch if o["name"] != "amber stays"}
    wait_for(lambda: (b.peer_status()["node-a"]["last_error"] is not None, b.peer_status()["node-a"]),
             "B recording that its pulls from the closed port fail")
    check_views(cluster, model, [room])


def test_sightings_flow_home(cluster):
    """An indicator made on A reaches C through B; a sighting of it made on C goes back to A (its
    origin), through B, where A's analyst sees it with C as its origin."""
    a = cluster.add_node("node-a", "sqlite")
    b = cluster.add_node("node-b", "sqlite")
    c = cluster.add_node("node-c", "postgres")
    room = cluster.collection("Sightings room")
    cluster.org("node-a", "Org A", ["alice"])
    cluster.org("node-c", "Org C", ["carol"])
    sightings_only = {"collections": [room], "max_tlp": "GREEN", "types": ["sighting"]}
    cluster.link("node-a", "node-b", {"collections": [room]}, sightings_only)
    cluster.link("node-b", "node-c", {"collections": [room]}, sightings_only)
    cluster.know("node-a", "node-c")
    ind = indicator(1, "seen on C")
    a.post(room, [ind], cluster.auth("alice"))
    wait_for(lambda: ((room, ind["id"], ind["modified"]) in c.stored(), None), "the indicator on C")
    sighting = {
        "type": "sighting", "spec_version": "2.1",
        "id": "sighting--7c3d2f1e-5a4b-4c3d-9e8f-1a2b3c4d5e6f",
        "created": "2026-11-03T00:00:00.000Z", "modified": "2026-11-03T00:00:00.000Z",
        "sighting_of_ref": ind["id"], "count": 3,
        "object_marking_refs": [ind["object_marking_refs"][0]],
    }
    c.post(room, [sighting], cluster.auth("carol"))
    k = (room, sighting["id"], sighting["modified"])
    wait_for(lambda: (k in a.stored(), None), "the sighting home on A")
    assert a.stored()[k] == (c.id, b.id)
    seen = {o["id"]: o for o in a.objects(room, cluster.auth("alice"))}
    assert seen[sighting["id"]]["sighting_of_ref"] == ind["id"]
    assert seen[sighting["id"]]["extensions"][PROVENANCE_EXT]["origin_node"] == c.id
    cluster.settle()
    assert ids(a, room) == {(ind["id"], ind["modified"]), (sighting["id"], sighting["modified"])}


# --- collections across nodes -------------------------------------------------------------------------


def test_remote_collections_match_by_id_then_alias_and_unmatched_ones_are_reported(cluster):
    """A exports three collections to B: one B has with the same id, one B has under another id but
    the same alias, one B lacks. Objects land in the same-id and the same-alias collections; the
    third is skipped and named in B's status for A."""
    a = cluster.add_node("node-a", "sqlite")
    b = cluster.add_node("node-b", "postgres")
    same = cluster.collection("Same id")
    aliased = a.cli("collection", "add", "Aliased", "--alias", "aliased-room", "--read", "all",
                    "--write", "all")["id"]
    local_alias = b.cli("collection", "add", "Aliased here", "--alias", "aliased-room", "--read", "all",
                        "--write", "all")["id"]
    assert local_alias != aliased
    missing = a.cli("collection", "add", "Only on A", "--read", "all", "--write", "all")["id"]
    cluster.org("node-a", "Org A", ["alice"])
    cluster.link("node-a", "node-b", {"collections": [same, aliased, missing]}, None)
    objs = {c: indicator(i, f"in {c}") for i, c in enumerate((same, aliased, missing))}
    for c, o in objs.items():
        a.post(c, [o], cluster.auth("alice"))
    want = {(same, objs[same]["id"], objs[same]["modified"]),
            (local_alias, objs[aliased]["id"], objs[aliased]["modified"])}
    wait_for(lambda: (set(b.stored()) == want, sorted(b.stored())), "B holding the matched collections")
    cluster.settle(["node-b"])
    assert set(b.stored()) == want
    skipped = status_field(b.peer_status()["node-a"], "skipped")
    assert skipped == [f"no local collection for remote {missing}"], skipped
