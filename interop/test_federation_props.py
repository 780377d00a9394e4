"""Property test of federation over random worlds (fixed seeds): random topologies of real nodes
(SQLite and PostgreSQL mixed), random export policies (collections, highest TLP, object types, push),
random directories of remote organisations and users, and random objects with random markings, named
organisations and named recipients, some in two versions.

For each world, once the nodes have converged and two more sync rounds have passed:
- no object version reaches a node that its origin's rules exclude, and every one the rules allow
  arrives (each node's store, read directly, equals the rules' fixed point: fedcluster.Model);
- no user on any node sees a version the rules exclude, and each sees every one they allow (TAXII).
"""

import random

import pytest

from fedcluster import (Cluster, Model, check_converged, check_views, indicator, new_version,
                        wait_for)

SEEDS = [11, 23, 37]
TLPS = [None, "CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]


def malware(rng, n, tlp, orgs, recipients):
    obj = indicator(n, "x", tlp=tlp, orgs=orgs, recipients=recipients, rng=rng)
    for k in ("pattern", "pattern_type", "valid_from"):
        del obj[k]
    obj.update({"type": "malware", "id": obj["id"].replace("indicator--", "malware--"),
                "name": f"family {n}", "is_family": True})
    return obj


def random_object(rng, n, model, node, author):
    """An object addressed only with names its origin node knows (others would be refused there)."""
    c = model.c
    known_orgs = sorted(o for o in c.orgs if model.org_home(node, o))
    known_users = sorted(u for u in c.users if model.user_home(node, u))
    tlp = rng.choice(TLPS)
    orgs, recipients = [], []
    if tlp == "RED":
        recipients = rng.sample(known_users, min(len(known_users), rng.randint(1, 2)))
    elif tlp == "AMBER+STRICT" or (tlp in (None, "AMBER", "GREEN") and rng.random() < 0.4):
        orgs = rng.sample(known_orgs, min(len(known_orgs), rng.randint(1, 2)))
    make = malware if rng.random() < 0.3 else indicator
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
        for org, home in sorted(cluster.orgs.items()):
            if home != x and (x, home) in cluster.links and rng.random() < 0.75:
                cluster.record_remote(x, org)
    return names, colls


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
                    obj = random_object(rng, n, model, name, author)
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
        wait_for(lambda: check_converged(cluster, model, colls), f"seed {seed}: convergence")
        cluster.settle()
        done, detail = check_converged(cluster, model, colls)
        assert done, detail
        check_views(cluster, model, colls)
    finally:
        cluster.close()
