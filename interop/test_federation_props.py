"""Property test of federation over random worlds (fixed seeds): random topologies of real nodes
(SQLite and PostgreSQL mixed), random export policies (collections, highest TLP, object types, push),
random directories of remote organisations and users, and random objects with random markings, named
organisations and named recipients, some in two versions. Every node also has an organisation and a
user whose names other nodes reuse ("Operations", "duty"): names collide across nodes, and an object
addressed to one node's "duty" must never reach another node's.

For each world, once the nodes have converged and two more sync rounds have passed:
- no object version reaches a node that its origin's rules exclude, and every one the rules allow
  arrives (each node's store, read directly, equals the rules' fixed point: fedcluster.Model);
- no user on any node sees a version the rules exclude, and each sees every one they allow (TAXII).
"""

import random

import pytest

from fedcluster import (AUDIENCE_EXT, Cluster, Model, check_converged, check_views, indicator,
                        new_version, wait_for)

SEEDS = [11, 23, 37]
TLPS = [None, "CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]


def malware(rng, n, tlp, orgs, recipients):
    obj = indicator(n, "x", tlp=tlp, orgs=orgs, recipients=recipients, rng=rng)
    for k in ("pattern", "pattern_type", "valid_from"):
        del obj[k]
    obj.update({"type": "malware", "id": obj["id"].replace("indicator--", "malware--"),
                "name": f"family {n}", "is_family": True})
    return obj


def random_object(rng, n, model, node, author, coll):
    """An object addressed only with names its origin node knows (others would be refused there)."""
    c = model.c
    known_orgs = c.known_orgs(node)
    known_users = sorted(u for u in c.users if model.user_home(node, u))
    tlp = rng.choice(TLPS)
    orgs, recipients = [], []
    if tlp in ("RED", "AMBER+STRICT") and rng.random() < 0.5:
        # This node's "duty" or "Operations" beside someone on a node this collection goes to at
        # this label: the object travels, and the nodes it reaches have their own "duty" and
        # "Operations".
        def reached(home):
            pol = c.links.get((node, home)) or {}
            return coll in pol.get("collections", []) and \
                TLPS.index(pol.get("max_tlp", "GREEN")) >= TLPS.index(tlp)
        if tlp == "RED":
            there = [u for u in known_users if c.users[u]["node"] != node
                     and reached(c.users[u]["node"])]
            recipients = [f"duty@{node}"] + rng.sample(there, min(len(there), 1))
        else:
            there = [o for o in known_orgs if c.orgs[o]["node"] != node
                     and reached(c.orgs[o]["node"])]
            orgs = [f"Operations@{node}"] + rng.sample(there, min(len(there), 1))
    elif tlp == "RED":
        recipients = rng.sample(known_users, min(len(known_users), rng.randint(1, 2)))
    elif tlp == "AMBER+STRICT" or (tlp in (None, "AMBER", "GREEN") and rng.random() < 0.4):
        orgs = rng.sample(known_orgs, min(len(known_orgs), rng.randint(1, 2)))
    make = malware if rng.random() < 0.3 else indicator
    orgs = [c.orgs[o]["name"] for o in orgs]
    recipients = [c.users[u]["name"] for u in recipients]
    if make is indicator:
        return indicator(n, f"p{n}", tlp=tlp, orgs=orgs, recipients=recipients, rng=rng)
    return malware(rng, n, tlp, orgs, recipients)


def build_world(cluster, rng):
    n_nodes = rng.randint(3, 4)
    names = [f"n{i}" for i in range(n_nodes)]
    for name in names:
        cluster.add_node(name, rng.choice(["sqlite", "postgres"]))
    colls = [cluster.collection(f"Room {i}") for i in range(2)]
    for name in names:
        for j in range(rng.randint(1, 2)):
            org = f"Org {name}{'xy'[j]}"
            cluster.org(name, org, [f"u-{name}{'xy'[j]}{k}" for k in range(rng.randint(1, 2))])
        cluster.org(name, "Operations", ["duty"], shared_name=True)
    # A random spanning tree, then extra edges.
    edges = set()
    for i in range(1, n_nodes):
        edges.add((names[rng.randrange(i)], names[i]))
    for i in range(n_nodes):
        for j in range(i + 1, n_nodes):
            if rng.random() < 0.35:
                edges.add((names[i], names[j]))

    def policy():
        if rng.random() < 0.2:
            return None
        return {"collections": rng.sample(colls, rng.randint(1, 2)),
                "max_tlp": rng.choice(["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED", "RED"]),
                "types": rng.choice([[], [], ["indicator"], ["malware"]])}

    for x, y in sorted(edges):
        cluster.link(x, y, policy(), policy(), push=rng.random() < 0.3)
    cluster.know_all()  # every node verifies every other's signatures; data flows only on the edges
    for x in names:
        for org, o in sorted(cluster.orgs.items()):
            home = o["node"]
            if home != x and (x, home) in cluster.links and rng.random() < 0.75 \
                    and not cluster.name_clash(x, org):
                cluster.record_remote(x, org)
    return names, colls


def shared_names_travel(model, held):
    """Whether some object addressed to an identity whose name other nodes reuse reaches a node
    other than its origin (so that the colliding names are put to the test)."""
    for origin, _, coll, obj in model.posted:
        ext = obj.get("extensions", {}).get(AUDIENCE_EXT, {})
        orgs, users = model.resolve(origin, ext.get("organisations", []), ext.get("recipients", []))
        if not any("@" in k for k in orgs + users):
            continue
        k = (coll, obj["id"], obj["modified"])
        if any(k in held[x] for x in held if x != origin):
            return True
    return False


@pytest.mark.parametrize("seed", SEEDS)
def test_random_worlds_deliver_exactly_what_the_rules_allow(seed, tmp_path):
    rng = random.Random(seed)
    cluster = Cluster(tmp_path)
    try:
        names, colls = build_world(cluster, rng)
        model = Model(cluster)
        n = 0
        for name in names:
            users = [u for u in sorted(cluster.users) if cluster.users[u]["node"] == name]
            for coll in colls:
                batch, later = [], []
                for _ in range(rng.randint(4, 7)):
                    author = rng.choice(users)
                    obj = random_object(rng, n, model, name, author, coll)
                    n += 1
                    batch.append((author, obj))
                    if rng.random() < 0.2:
                        later.append((author, new_version(obj, "2026-11-05T00:00:00.000Z")))
                for author, obj in batch + later:
                    cluster.nodes[name].post(coll, [obj], cluster.auth(author))
                    model.add(name, author, coll, obj)
        held = model.expected()
        assert sum(len(h) for h in held.values()) > len(model.posted), \
            f"seed {seed}: this world moves nothing between nodes; pick another seed"
        assert shared_names_travel(model, held), \
            f"seed {seed}: no object addressed to a shared name leaves its node; pick another seed"
        wait_for(lambda: check_converged(cluster, model, colls), f"seed {seed}: convergence")
        cluster.settle()
        done, detail = check_converged(cluster, model, colls)
        assert done, detail
        check_views(cluster, model, colls)
    finally:
        cluster.close()
