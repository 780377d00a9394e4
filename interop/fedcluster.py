"""A cluster of real Kopa nodes on loopback, for the federation tests and the federation benchmark.

Each node is a `kopa serve` process (see conftest.Node) started with its own name, `node.url` and a
one-second pull interval; it is administered with the admin CLI and `--json`, as an operator would:
`kopa node show` gives its id and public key, `kopa peer add` declares peers on both sides with an export
policy, `kopa collection add --id` makes the same sharing room on every node, `kopa org add --peer` and
`kopa user add` record the organisations and users hosted by a peer (the directory).

What a node holds is read two ways: straight from its database (every stored version, with the origin
and the delivering peer, whoever may see it: what reached the node at all), and through TAXII as each
of its users (what reached each person). `Model` states the federation rules in plain Python, so the
tests can compute the sets each node and each user must end with.
"""

import json
import os
import sqlite3
import subprocess
import time
import uuid
from datetime import datetime, timezone

import pytest
import requests

from conftest import ADMIN_TOKEN, TAXII, Node, pg_url

AUDIENCE_EXT = "extension-definition--5c2b9a4e-7d1f-4a63-9e0b-8f3c1d2a6b75"
PROVENANCE_EXT = "extension-definition--880ae703-a3d7-4595-8ad7-ca36997d911f"

# TLP 2.0 marking definitions, and the rank Kopa stores (kopa_core::Tlp).
TLP_MARKING = {
    "CLEAR": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "GREEN": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "AMBER": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "AMBER+STRICT": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "RED": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP_RANK = {"CLEAR": 0, "GREEN": 1, "AMBER": 2, "AMBER+STRICT": 3, "RED": 4}
DEFAULT_TLP = "AMBER"  # tlp.default: what an unmarked object takes (and it is narrowed)

# Generous: convergence is polled, never timed. A failure after this long is a real failure.
CONVERGE_TIMEOUT = float(os.environ.get("KOPA_FED_TIMEOUT", "90"))


def now_utc():
    return datetime.now(timezone.utc)


def stix_time(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(s):
    if s is None:
        return None
    s = s.replace("Z", "+00:00")
    # Python before 3.11 only takes 3 or 6 fraction digits: pad or cut to 6.
    if "." in s:
        head, rest = s.split(".", 1)
        frac = rest[:len(rest) - len(rest.lstrip("0123456789"))]
        tz = rest[len(frac):]
        s = f"{head}.{(frac + '000000')[:6]}{tz}"
    return datetime.fromisoformat(s)


def indicator(n, name, *, tlp="GREEN", orgs=(), recipients=(), modified=None, rng=None):
    """An indicator with a TLP marking (None: unmarked) and, if given, the Kopa audience extension."""
    ident = uuid.UUID(int=rng.getrandbits(128), version=4) if rng else uuid.uuid4()
    ts = "2026-11-01T00:00:00.000Z"
    obj = {
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--{ident}",
        "created": ts, "modified": modified or ts, "name": name,
        "pattern": f"[ipv4-addr:value = '10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}']",
        "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z",
    }
    if tlp is not None:
        obj["object_marking_refs"] = [TLP_MARKING[tlp]]
    if orgs or recipients:
        ext = {"extension_type": "property-extension"}
        if orgs:
            ext["organisations"] = list(orgs)
        if recipients:
            ext["recipients"] = list(recipients)
        obj["extensions"] = {AUDIENCE_EXT: ext}
    return obj


def new_version(obj, modified):
    """The next version of an object we posted: same id, later `modified`, no provenance (re-signed)."""
    nxt = json.loads(json.dumps(obj))
    nxt["modified"] = modified
    nxt["name"] = obj["name"] + " (v2)"
    ext = nxt.get("extensions", {})
    ext.pop(PROVENANCE_EXT, None)
    if not ext:
        nxt.pop("extensions", None)
    return nxt


def key(obj):
    return (obj["id"], obj["modified"])


class FedNode(Node):
    """One Kopa node of a cluster, with its identity read from `kopa node show`."""

    def __init__(self, tmp_dir, name, backend="sqlite", env=None):
        super().__init__(tmp_dir, backend, env)
        self.name = name
        self.env.update({
            "KOPA_NODE__NAME": name,
            "KOPA_NODE__URL": self.url,
            "KOPA_FEDERATION__PULL_INTERVAL_SECONDS": "1",
        })
        self.env.update(env or {})
        self.id = None
        self.public_key = None
        self.http = requests.Session()

    def start(self, timeout=30):
        super().start(timeout)
        if self.id is None:
            me = self.cli("node", "show")
            assert me["name"] == self.name, me
            assert me["url"] == self.url, f"node.url not taken from KOPA_NODE__URL: {me}"
            assert me["public_key"], f"{self.name}: no public key after start: {me}"
            self.id, self.public_key = me["id"], me["public_key"]
        return self

    # --- HTTP -------------------------------------------------------------------------------------

    def post(self, collection, objects, auth, expect_all=True):
        """TAXII POST of an envelope; returns the status resource."""
        r = self.http.post(f"{self.api_root}collections/{collection}/objects/", auth=auth,
                           data=json.dumps({"objects": objects}),
                           headers={"Accept": TAXII, "Content-Type": TAXII}, timeout=120)
        assert r.status_code == 202, f"{self.name}: POST answered {r.status_code}: {r.text[:500]}"
        status = r.json()
        if expect_all:
            assert status["success_count"] == len(objects), \
                f"{self.name}: not every object was stored: {json.dumps(status)[:2000]}"
        return status

    def objects(self, collection, auth, page=1000):
        """Every object version `auth` may see in the collection (TAXII, match[version]=all, paged)."""
        out, nxt = [], None
        while True:
            params = {"match[version]": "all", "limit": str(page)}
            if nxt:
                params["next"] = nxt
            r = self.http.get(f"{self.api_root}collections/{collection}/objects/", auth=auth,
                              params=params, headers={"Accept": TAXII}, timeout=60)
            if r.status_code == 404:
                return out
            assert r.status_code == 200, f"{self.name}: GET objects answered {r.status_code}: {r.text[:500]}"
            body = r.json() if r.content else {}
            out.extend(body.get("objects", []))
            if not body.get("more"):
                return out
            nxt = body["next"]

    def view(self, collection, auth):
        """The (id, modified) pairs `auth` sees, checking no version is served twice."""
        objs = self.objects(collection, auth)
        keys = [key(o) for o in objs]
        assert len(keys) == len(set(keys)), f"{self.name}: a version is served twice: {_dups(keys)}"
        return set(keys)

    def rest(self, path, auth=None):
        return self.http.get(f"{self.url}{path}", auth=auth or ("admin", ADMIN_TOKEN), timeout=30)

    def metrics(self):
        r = self.http.get(f"{self.url}/metrics", timeout=30)
        assert r.status_code == 200, r.text[:300]
        return r.text

    # --- the database -----------------------------------------------------------------------------

    def stored(self):
        """Every stored object version: {(collection id, stix id, modified): (origin, via)}, read
        straight from the database (no visibility rule: what reached this node at all)."""
        sql = ("SELECT c.id, o.stix_id, o.json, o.origin, o.via FROM objects o "
               "JOIN collections c ON c.cid = o.collection")
        rows = self.sql(sql)
        out = {}
        for cid, sid, js, origin, via in rows:
            k = (cid, sid, json.loads(js)["modified"])
            assert k not in out, f"{self.name}: one version stored twice: {k}"
            out[k] = (origin or None, via or None)
        return out

    def count(self, collection):
        """How many object versions the collection holds (straight from the database)."""
        rows = self.sql("SELECT COUNT(*) FROM objects o JOIN collections c ON c.cid = o.collection "
                        f"WHERE c.id = '{collection}'")
        return int(rows[0][0])

    def sql(self, sql):
        if self.pg:
            r = subprocess.run(["psql", self.pg.url, "-q", "-At", "-F", "\x1f", "-R", "\x1e",
                                "-v", "ON_ERROR_STOP=1", "-c", sql],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, f"{self.name}: psql failed: {r.stderr}"
            recs = [rec for rec in r.stdout.rstrip("\n").split("\x1e") if rec.strip("\n")]
            return [tuple(f if f != "" else None for f in rec.strip("\n").split("\x1f")) for rec in recs]
        db = sqlite3.connect(os.path.join(self.data, "kopa.db"), timeout=30)
        try:
            rows = db.execute(sql).fetchall()
            db.commit()
            return rows
        finally:
            db.close()

    def peer_status(self):
        """`kopa peer list --json`, keyed by peer name."""
        return {p["name"]: p for p in self.cli("peer", "list")["peers"]}


def _dups(keys):
    seen, dups = set(), set()
    for k in keys:
        (dups if k in seen else seen).add(k)
    return sorted(dups)[:5]


def wait_for(check, what, timeout=CONVERGE_TIMEOUT, interval=0.3):
    """Poll `check()` (returns (done, detail)) until done; fail with the last detail after timeout."""
    deadline = time.monotonic() + timeout
    detail = None
    while True:
        done, detail = check()
        if done:
            return detail
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:.0f} s; last state: {detail}")
        time.sleep(interval)


class Cluster:
    """Nodes, their organisations and users, shared collections and peerings."""

    def __init__(self, tmp_path, env=None):
        self.tmp = tmp_path
        self.env = env or {}
        self.nodes = {}
        # Keyed by name, or by name@node for organisations and users whose names other nodes reuse
        # (see `org`); an organisation key names its home node and its name there.
        self.users = {}      # user key -> {"name", "token", "org" (key), "node"}
        self.orgs = {}       # org key -> {"name", "node"}
        self.links = {}      # (x, y) -> policy dict or None: x's export policy towards y
        self.directory = {}  # node name -> set of remote org names recorded there

    def add_node(self, name, backend="sqlite", env=None):
        e = dict(self.env)
        e.update(env or {})
        if backend == "postgres" and not pg_url():
            pytest.skip("KOPA_TEST_PG_URL is empty: the PostgreSQL nodes of this test are skipped")
        (self.tmp / name).mkdir(parents=True, exist_ok=True)
        node = FedNode(str(self.tmp / name), name, backend, e)
        self.nodes[name] = node
        self.directory[name] = set()
        node.start()
        return node

    def close(self):
        errors = []
        for node in self.nodes.values():
            try:
                node.close()
            except Exception as e:  # noqa: BLE001 - every node must be stopped and dropped
                errors.append(f"{node.name}: {e}")
        assert not errors, errors

    def collection(self, title, cid=None):
        """The same collection (same id) on every node, read and written by all."""
        cid = cid or str(uuid.uuid4())
        for node in self.nodes.values():
            out = node.cli("collection", "add", title, "--id", cid, "--read", "all", "--write", "all")
            assert out["id"] == cid, out
        return cid

    def org(self, node, name, users=(), shared_name=False):
        """A local organisation on `node` and an analyst user for each name in `users`. With
        `shared_name`, other nodes may have an organisation and users of the same names: they are
        kept under the keys NAME@NODE. Returns the organisation's key."""
        n = self.nodes[node]
        n.cli("org", "add", name)
        qualify = (lambda x: f"{x}@{node}") if shared_name else (lambda x: x)
        key = qualify(name)
        assert key not in self.orgs, f"organisation {key} declared twice"
        self.orgs[key] = {"name": name, "node": node}
        for u in users:
            out = n.cli("user", "add", u, "--org", name, "--role", "analyst")
            self.users[qualify(u)] = {"name": u, "token": out["token"], "org": key, "node": node}
        return key

    def auth(self, user):
        u = self.users[user]
        return (u["name"], u["token"])

    def link(self, x, y, x_to_y=None, y_to_x=None, push=False):
        """Peer x and y on both sides. A policy is {"collections": [...], "max_tlp": "GREEN",
        "types": [...]}; None exports nothing that way."""
        self.peer(x, y, x_to_y, push)
        self.peer(y, x, y_to_x, push)

    def know(self, x, y):
        """Peer x and y with nothing exported either way: each knows the other's key (to verify
        objects that originate there and reach it through other nodes) and may record its
        organisations, but no data flows between them directly."""
        self.link(x, y, None, None)

    def know_all(self):
        """Every pair of nodes not yet peered knows each other's key (see `know`)."""
        names = list(self.nodes)
        for i, x in enumerate(names):
            for y in names[i + 1:]:
                if (x, y) not in self.links:
                    self.know(x, y)

    def peer(self, x, y, policy, push=False, url=None):
        """Declare y as a peer on x (one side), with x's export policy towards y."""
        nx, ny = self.nodes[x], self.nodes[y]
        args = ["peer", "add", y, f"--url={url or ny.url}", f"--key={ny.public_key}"]
        if policy:
            if policy.get("collections"):
                args += ["--collections", ",".join(policy["collections"])]
            args += ["--max-tlp", policy.get("max_tlp", "GREEN")]
            if policy.get("types"):
                args += ["--types", ",".join(policy["types"])]
        if push:
            args.append("--push")
        out = nx.cli(*args)
        assert out["node_id"] == ny.id, out
        self.links[(x, y)] = policy

    def record_remote(self, at, org):
        """Record on node `at` the organisation `org` (hosted by a peer of `at`) and its users."""
        home, name = self.orgs[org]["node"], self.orgs[org]["name"]
        assert (at, home) in self.links, f"{org} lives on {home}, which is not a peer of {at}"
        n = self.nodes[at]
        out = n.cli("org", "add", name, "--peer", home)
        assert out.get("node") == self.nodes[home].id, out
        for u in self.users.values():
            if u["org"] == org:
                out = n.cli("user", "add", u["name"], "--org", name)
                assert out["token"] is None, f"a remote user got a token: {out}"
        self.directory[at].add(org)

    def known_orgs(self, at):
        """The keys of the organisations node `at` knows: its own and its directory's."""
        return sorted(k for k, o in self.orgs.items() if o["node"] == at or k in self.directory[at])

    def name_clash(self, at, org):
        """Whether node `at` already has an organisation, or a user, with a name of `org`'s."""
        names = {self.orgs[k]["name"] for k in self.known_orgs(at)}
        users = {u["name"] for u in self.users.values() if u["org"] in self.known_orgs(at)}
        theirs = {u["name"] for u in self.users.values() if u["org"] == org}
        return self.orgs[org]["name"] in names or bool(users & theirs)

    def local_users(self, node):
        return [u for u in self.users.values() if u["node"] == node]

    def all_synced_after(self, t0, nodes=None):
        """Wait until every peer of every (running) node has a successful sync after t0."""
        names = nodes or list(self.nodes)

        def check():
            late = []
            for name in names:
                for peer, st in self.nodes[name].peer_status().items():
                    last = parse_time(st.get("last_sync_at"))
                    if last is None or last <= t0:
                        late.append(f"{name}->{peer}: last_sync_at={st.get('last_sync_at')} "
                                    f"last_error={st.get('last_error')}")
            return not late, late

        wait_for(check, f"a sync round after {t0.isoformat()} on every peer")

    def settle(self, nodes=None):
        """Two full sync rounds on every node from now: whatever was going to arrive has arrived."""
        for _ in range(2):
            self.all_synced_after(now_utc(), nodes)


class Model:
    """The federation rules in plain Python: where each posted object version must end up, and who on
    each node may see it. Mirrors FEDERATION.md: a peer reads through the one visibility rule with
    its export policy as its audience; received objects keep their markings and named audience
    (resolved by name on the receiving node; never widened); nothing goes back to its origin."""

    def __init__(self, cluster):
        self.c = cluster
        self.posted = []  # (origin node, author, collection, object)

    def add(self, node, author, collection, obj):
        self.posted.append((node, author, collection, obj))

    # -- identities on a node: the org's home node if that node knows it, or None if unknown. Keys
    # name one identity each; a node knows another node's organisation only through its directory,
    # never through a local one that merely has the same name.
    def org_home(self, at, org):
        o = self.c.orgs[org]
        if o["node"] == at or org in self.c.directory[at]:
            return o["node"]
        return None

    def user_home(self, at, user):
        return self.org_home(at, self.c.users[user]["org"])

    def resolve(self, at, org_names, user_names):
        """The identities (keys) that names written by a person on node `at` name there."""
        known = self.c.known_orgs(at)
        orgs = [k for n in org_names for k in known if self.c.orgs[k]["name"] == n]
        users = [k for n in user_names for k, u in self.c.users.items()
                 if u["name"] == n and u["org"] in known]
        assert len(orgs) == len(org_names) and len(users) == len(user_names), \
            f"{org_names}, {user_names}: not one identity each on {at}"
        return orgs, users

    def stewardship(self, at, origin, author, obj):
        marks = obj.get("object_marking_refs", [])
        tlp = next((t for t, m in TLP_MARKING.items() if m in marks), None)
        ext = obj.get("extensions", {}).get(AUDIENCE_EXT, {})
        # The names are resolved on the origin node; what travels names those identities.
        named_orgs, named_users = self.resolve(origin, ext.get("organisations", []),
                                               ext.get("recipients", []))
        orgs = [o for o in named_orgs if self.org_home(at, o)]
        users = [u for u in named_users if self.user_home(at, u)]
        return {
            "tlp": tlp or DEFAULT_TLP,
            "narrowed": tlp is None or bool(named_orgs),
            "orgs": orgs, "users": users,
            "owner": self.c.users[author]["org"] if at == origin else None,
            "author": author if at == origin else None,
            "origin": origin, "type": obj["type"],
        }

    def exportable(self, x, p, coll, s):
        pol = self.c.links.get((x, p))
        if not pol or coll not in pol.get("collections", []):
            return False
        if pol.get("types") and s["type"] not in pol["types"]:
            return False
        if TLP_RANK[s["tlp"]] > TLP_RANK[pol.get("max_tlp", "GREEN")] or s["origin"] == p:
            return False
        hosts_org = any(self.org_home(x, o) == p for o in s["orgs"])
        if s["tlp"] == "RED":
            return any(self.user_home(x, u) == p for u in s["users"])
        if s["tlp"] == "AMBER+STRICT":
            return hosts_org
        return not s["narrowed"] or hosts_org

    def expected(self):
        """{node: {(collection, id, modified): stewardship}} at the fixed point of the rules."""
        held = {n: {} for n in self.c.nodes}
        objs = {}
        for origin, author, coll, obj in self.posted:
            k = (coll, obj["id"], obj["modified"])
            objs[k] = (origin, author, obj)
            held[origin][k] = self.stewardship(origin, origin, author, obj)
        changed = True
        while changed:
            changed = False
            for x in self.c.nodes:
                for k, s in list(held[x].items()):
                    for (a, p) in self.c.links:
                        if a != x or k in held[p] or not self.exportable(x, p, k[0], s):
                            continue
                        origin, author, obj = objs[k]
                        held[p][k] = self.stewardship(p, origin, author, obj)
                        changed = True
        return held

    @staticmethod
    def person_sees(key, user, s):
        if s["tlp"] == "RED":
            return s["author"] == key or key in s["users"]
        return not s["narrowed"] or s["owner"] == user["org"] or user["org"] in s["orgs"]

    def expected_views(self, held):
        """{user name: {(id, modified)}} per collection: {user: {coll: set}}."""
        views = {}
        for name, u in self.c.users.items():
            per = {}
            for (coll, sid, mod), s in held[u["node"]].items():
                if self.person_sees(name, u, s):
                    per.setdefault(coll, set()).add((sid, mod))
            views[name] = per
        return views


def check_converged(cluster, model, collections):
    """Assert each running node holds exactly the expected versions and each user sees exactly the
    expected ones; returns (done, detail) for wait_for."""
    held = model.expected()
    missing, extra = [], []
    for name, node in cluster.nodes.items():
        got = {k for k in node.stored() if k[0] in collections}
        want = set(held[name])
        if got - want:
            extra.append((name, sorted(got - want)[:3]))
        if want - got:
            missing.append((name, len(want - got), sorted(want - got)[:2]))
    if extra:
        raise AssertionError(f"objects reached nodes the rules exclude: {extra}")
    return not missing, {"missing": missing}


def check_views(cluster, model, collections):
    held = model.expected()
    views = model.expected_views(held)
    for name, u in cluster.users.items():
        node = cluster.nodes[u["node"]]
        for coll in collections:
            got = node.view(coll, cluster.auth(name))
            want = views[name].get(coll, set())
            assert got == want, (f"user {name} on {u['node']}, collection {coll}: "
                                 f"sees {len(got)}, expected {len(want)}; "
                                 f"unexpected {sorted(got - want)[:3]}, missing {sorted(want - got)[:3]}")
