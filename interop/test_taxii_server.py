"""A real `kopa serve` (SQLite, and PostgreSQL when KOPA_TEST_PG_URL is set) driven by the OASIS
`taxii2-client` and `stix2` libraries: discovery, API root, collections, several hundred mixed STIX
objects posted in several envelopes, status, paginated reads, every filter, versions, manifest, get and
delete. Every object read back passes `stix2-validator` (2.1) and equals what was posted. Headers and
error bodies are checked with plain HTTP as specs/taxii.md says.
"""

import datetime
import json
import random
import uuid

import pytest
import requests
import stix2
from stix2 import Filter, TAXIICollectionSink, TAXIICollectionSource
from stix2validator import ValidationOptions, validate_instance
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from conftest import ADMIN_TOKEN, TAXII

SEED = 20261123
TLP2 = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
}
BASE = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
VALIDATION = ValidationOptions(version="2.1")


def make_corpus(seed=SEED):
    """Several hundred mixed objects, deterministic: SDOs with TLP markings (and some unmarked), SCOs,
    observed-data, relationships, sightings and reports."""
    rng = random.Random(seed)

    def sid(kind):
        return f"{kind}--{uuid.UUID(int=rng.getrandbits(128), version=4)}"

    def when(i):
        return BASE + datetime.timedelta(seconds=i)

    def marks():
        choice = rng.choice(["clear", "green", "amber", "amber+strict", None])
        return {"object_marking_refs": [TLP2[choice]]} if choice else {}

    objs = []
    identities = [stix2.Identity(id=sid("identity"), name=f"Org {i}", identity_class="organization",
                                 created=when(i), modified=when(i), **marks()) for i in range(10)]
    malware = [stix2.Malware(id=sid("malware"), name=f"family-{i}", is_family=True,
                             created=when(i), modified=when(i), **marks()) for i in range(30)]
    indicators = []
    for i in range(150):
        if i % 2:
            pattern = f"[ipv4-addr:value = '198.51.{i // 250}.{i % 250}']"
        else:
            pattern = f"[domain-name:value = 'bad{i}.example']"
        indicators.append(stix2.Indicator(
            id=sid("indicator"), name=f"indicator {i}", pattern=pattern, pattern_type="stix",
            valid_from=when(i), created=when(i), modified=when(i), indicator_types=["malicious-activity"],
            **marks()))
    rels = [stix2.Relationship(id=sid("relationship"), relationship_type="indicates",
                               source_ref=indicators[i].id, target_ref=malware[i % 30].id,
                               created=when(i), modified=when(i), **marks()) for i in range(80)]
    scos, observed = [], []
    for i in range(40):
        ip = stix2.IPv4Address(value=f"203.0.113.{i}")
        dom = stix2.DomainName(value=f"seen{i}.example", resolves_to_refs=[ip.id])
        scos += [ip, dom]
        observed.append(stix2.ObservedData(
            id=sid("observed-data"), first_observed=when(i), last_observed=when(i + 60),
            number_observed=1 + i % 5, object_refs=[ip.id, dom.id], created=when(i), modified=when(i),
            **marks()))
    sightings = [stix2.Sighting(id=sid("sighting"), sighting_of_ref=indicators[i].id,
                                observed_data_refs=[observed[i % 40].id],
                                where_sighted_refs=[identities[i % 10].id], count=1 + i,
                                created=when(i), modified=when(i), **marks()) for i in range(30)]
    reports = [stix2.Report(id=sid("report"), name=f"report {i}", published=when(i),
                            report_types=["threat-report"],
                            object_refs=[indicators[j].id for j in range(i * 5, i * 5 + 5)],
                            created=when(i), modified=when(i), **marks()) for i in range(10)]
    objs = identities + malware + indicators + rels + scos + observed + sightings + reports
    return [json.loads(o.serialize()) for o in objs]


def ts(s):
    """A STIX or TAXII timestamp as a datetime (TAXII writes microseconds, STIX often milliseconds)."""
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def tss(items):
    return [ts(s) for s in items]


def envelopes(objects, size):
    return [{"objects": objects[i:i + size]} for i in range(0, len(objects), size)]


def assert_valid(obj):
    result = validate_instance(obj, VALIDATION)
    assert result.is_valid, f"{obj.get('id')}: {[str(e) for e in result.errors]}"


PROVENANCE_EXT = "extension-definition--880ae703-a3d7-4595-8ad7-ca36997d911f"


def without_provenance(obj):
    """The object as posted: the node adds its provenance extension (origin node, organisation,
    signature) to every object its users post."""
    obj = json.loads(json.dumps(obj))
    exts = obj.get("extensions", {})
    exts.pop(PROVENANCE_EXT, None)
    if "extensions" in obj and not exts:
        del obj["extensions"]
    return obj


def status_adds_up(status, total):
    assert status.status == "complete"
    assert status.total_count == total
    assert status.success_count + status.failure_count + status.pending_count == status.total_count


def collection_for(world, user, coll):
    url = f"{world.node.api_root}collections/{coll['id']}/"
    return Collection(url, user=user["name"], password=user["token"])


@pytest.fixture(scope="module")
def corpus():
    return make_corpus()


@pytest.fixture(scope="module")
def loaded(world, corpus):
    """Post the corpus to the shared collection as alice (analyst of Bank A) in envelopes of 100."""
    col = collection_for(world, world.alice, world.shared)
    statuses = []
    for env in envelopes(corpus, 100):
        status = col.add_objects(env)
        status_adds_up(status, len(env["objects"]))
        assert status.success_count == len(env["objects"]), status.failures
        statuses.append(status)
    return {"col": col, "statuses": statuses, "by_id": {o["id"]: o for o in corpus}}


def test_discovery_and_api_root(world):
    server = Server(world.node.url + "/taxii2/", user="alice", password=world.alice["token"])
    assert server.title == "interop"
    assert server.default is not None
    assert [r.url for r in server.api_roots] == [world.node.api_root]
    root = server.default
    assert root.title
    assert TAXII in root.versions
    assert root.max_content_length == 1024 * 1024


def test_collections_follow_read_and_write_lists(world):
    root_a = ApiRoot(world.node.api_root, user="alice", password=world.alice["token"])
    cols = {c.id: c for c in root_a.collections}
    assert world.shared["id"] in cols and world.b_only["id"] not in cols
    shared = cols[world.shared["id"]]
    assert shared.title == "Shared" and shared.alias == "shared"
    assert shared.can_read and shared.can_write
    assert "application/stix+json;version=2.1" in shared.media_types

    root_b = ApiRoot(world.node.api_root, user="bob", password=world.bob["token"])
    cols = {c.id: c for c in root_b.collections}
    assert cols[world.shared["id"]].can_read and not cols[world.shared["id"]].can_write
    assert cols[world.b_only["id"]].can_read and cols[world.b_only["id"]].can_write


def test_post_envelopes_and_status(world, loaded, corpus):
    assert len(corpus) >= 400
    root = ApiRoot(world.node.api_root, user="alice", password=world.alice["token"])
    for posted in loaded["statuses"]:
        again = root.get_status(posted.id)
        assert again.id == posted.id
        assert again.total_count == posted.total_count
        assert again.success_count == posted.success_count
        assert {s["id"] for s in again.successes} == {s["id"] for s in posted.successes}
    # Re-posting an exact duplicate is a success, not a failure.
    env = envelopes(corpus, 100)[0]
    status = loaded["col"].add_objects(env)
    status_adds_up(status, len(env["objects"]))
    assert status.success_count == len(env["objects"]) and status.failure_count == 0


def test_paginated_read_returns_everything_valid_and_unchanged(loaded):
    seen = {}
    pages = 0
    for page in as_pages(loaded["col"].get_objects, per_request=37):
        pages += 1
        objs = page.get("objects", [])
        assert len(objs) <= 37
        if page.get("more"):
            assert page.get("next"), "next is sent whenever more is true"
        for obj in objs:
            assert obj["id"] not in seen, f"{obj['id']} returned twice"
            seen[obj["id"]] = obj
    assert pages >= len(loaded["by_id"]) // 37
    assert set(seen) == set(loaded["by_id"])
    for oid, obj in seen.items():
        assert without_provenance(obj) == loaded["by_id"][oid], f"{oid} changed in storage"
        prov = obj["extensions"][PROVENANCE_EXT]
        assert prov["origin_node"].startswith("node--") and prov["signature"], prov
        assert_valid(obj)


def test_filters(world, loaded, corpus):
    col = loaded["col"]
    by_type = {}
    for o in corpus:
        by_type.setdefault(o["type"], []).append(o["id"])

    env = col.get_objects(type="indicator", limit=1000)
    assert sorted(o["id"] for o in env["objects"]) == sorted(by_type["indicator"])
    env = col.get_objects(type=["malware", "report"], limit=1000)
    assert len(env["objects"]) == len(by_type["malware"]) + len(by_type["report"])

    some = [by_type["sighting"][0], by_type["ipv4-addr"][3]]
    env = col.get_objects(id=some)
    assert sorted(o["id"] for o in env["objects"]) == sorted(some)
    # Different fields AND together.
    env = col.get_objects(id=some, type="sighting")
    assert [o["id"] for o in env["objects"]] == [some[0]]

    assert len(col.get_objects(spec_version="2.1", limit=1000)["objects"]) == len(corpus)
    assert col.get_objects(spec_version="2.0") == {}

    env = col.get_objects(limit=5)
    assert len(env["objects"]) == 5 and env["more"] is True and env["next"]

    # added_after against date_added, from the manifest.
    manifest = col.get_manifest(limit=1000)["objects"]
    dates = sorted(r["date_added"] for r in manifest)
    cut = dates[len(dates) // 2]
    env = col.get_objects(added_after=cut, limit=1000)
    expected = {r["id"] for r in manifest if r["date_added"] > cut}
    assert {o["id"] for o in env["objects"]} == expected

    # Malformed filter values are 400 with a TAXII error body.
    url = col.objects_url
    auth = ("alice", world.alice["token"])
    for params in [{"added_after": "yesterday"}, {"limit": "0"}, {"limit": "x"},
                   {"match[version]": "all,last"}, {"next": "not-a-cursor"}]:
        r = requests.get(url, params=params, auth=auth, headers={"Accept": TAXII})
        assert r.status_code == 400, (params, r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("application/taxii+json")
        assert r.json()["http_status"] == "400" and r.json()["title"]


def test_paging_by_added_after_and_date_headers(world, loaded):
    """Clients without `next` page with added_after = the last X-TAXII-Date-Added-Last; the headers
    equal the first and last date_added of the page."""
    url = loaded["col"].objects_url
    auth = ("alice", world.alice["token"])
    man_url = url.replace("/objects/", "/manifest/")
    seen, after = [], None
    while True:
        params = {"limit": 53, **({"added_after": after} if after else {})}
        r = requests.get(man_url, params=params, auth=auth, headers={"Accept": TAXII})
        assert r.status_code == 200, r.text
        records = r.json().get("objects", [])
        if not records:
            assert r.json() == {} or r.json() == {"more": False}
            break
        dates = [rec["date_added"] for rec in records]
        assert dates == sorted(dates, key=ts), "ascending by date_added"
        assert ts(r.headers["X-TAXII-Date-Added-First"]) == ts(dates[0])
        assert ts(r.headers["X-TAXII-Date-Added-Last"]) == ts(dates[-1])
        seen += [rec["id"] for rec in records]
        after = r.headers["X-TAXII-Date-Added-Last"]
    assert len(seen) == len(set(seen)), "no record twice"
    assert set(loaded["by_id"]) <= set(seen)


def test_versions(world, loaded):
    col = loaded["col"]
    rng = random.Random(SEED + 1)
    oid = f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    v1 = stix2.Indicator(id=oid, name="versioned", pattern="[url:value = 'http://v.example/']",
                         pattern_type="stix", valid_from=BASE, created=BASE, modified=BASE,
                         object_marking_refs=[TLP2["green"]])
    versions = [v1]
    for k in range(1, 4):
        versions.append(versions[-1].new_version(
            modified=BASE + datetime.timedelta(days=k), name=f"versioned v{k + 1}"))
    stamps = []
    for v in versions:  # one envelope per version, as producers do
        obj = json.loads(v.serialize())
        stamps.append(obj["modified"])
        status = col.add_objects({"objects": [obj]})
        assert status.success_count == 1

    listed = col.object_versions(oid)
    assert tss(listed["versions"]) == tss(stamps)
    assert col.get_object(oid)["objects"][0]["modified"] == stamps[-1]
    assert [o["modified"] for o in col.get_object(oid, version="all")["objects"]] == stamps
    assert col.get_object(oid, version="first")["objects"][0]["modified"] == stamps[0]
    got = col.get_object(oid, version=[stamps[1], stamps[2]])["objects"]
    assert sorted(o["modified"] for o in got) == stamps[1:3]
    # All versions in the objects endpoint and the manifest, the latest by default.
    assert len(col.get_objects(id=oid, version="all")["objects"]) == 4
    man = col.get_manifest(id=oid, version="all")["objects"]
    assert sorted(tss(r["version"] for r in man)) == tss(stamps)
    assert tss(r["version"] for r in col.get_manifest(id=oid)["objects"]) == tss(stamps[-1:])
    for o in col.get_object(oid, version="all")["objects"]:
        assert_valid(o)


def test_manifest(loaded):
    records = []
    for page in as_pages(loaded["col"].get_manifest, per_request=100):
        records += page.get("objects", [])
    ids = {r["id"] for r in records}
    assert set(loaded["by_id"]) <= ids
    for r in records:
        assert set(r) >= {"id", "date_added", "version", "media_type"}
        assert r["media_type"] == "application/stix+json;version=2.1"
        obj = loaded["by_id"].get(r["id"])
        if obj is not None and "modified" in obj:
            assert ts(r["version"]) == ts(obj["modified"])


def test_stix2_source_and_sink(world, loaded, corpus):
    col = loaded["col"]
    source = TAXIICollectionSource(col)
    mal = source.query([Filter("type", "=", "malware")])
    assert len(mal) == 30
    one = next(o for o in corpus if o["type"] == "report")
    got = source.get(one["id"])
    assert got.id == one["id"] and got.name == one["name"]

    sink = TAXIICollectionSink(col)
    new = stix2.Malware(name="sunk", is_family=False, object_marking_refs=[TLP2["clear"]])
    sink.add(new)
    back = source.get(new.id)
    assert back is not None and back.name == "sunk"
    assert_valid(json.loads(back.serialize()))


def test_headers_and_errors(world, loaded, corpus):
    col_url = loaded["col"].url
    auth = ("alice", world.alice["token"])
    acc = {"Accept": TAXII}
    oid = corpus[0]["id"]
    for url in [col_url + "objects/", col_url + "manifest/", col_url + f"objects/{oid}/",
                col_url + f"objects/{oid}/versions/"]:
        r = requests.get(url, auth=auth, headers=acc)
        assert r.status_code == 200, (url, r.text)
        assert r.headers["Content-Type"] == TAXII
        assert r.headers["X-TAXII-Date-Added-First"] and r.headers["X-TAXII-Date-Added-Last"]
    # Bare media type means the latest version; Bearer tokens work as well as Basic.
    r = requests.get(world.node.url + "/taxii2/", headers={
        "Accept": "application/taxii+json", "Authorization": f"Bearer {world.alice['token']}"})
    assert r.status_code == 200 and r.headers["Content-Type"] == TAXII

    # KOPA_ADMIN_TOKEN (a free-form string) became the administrator's token at first start.
    r = requests.get(world.node.url + "/taxii2/", headers={**acc, "Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 200, r.text
    r = requests.get(world.node.url + "/taxii2/", headers=acc, auth=("admin", ADMIN_TOKEN))
    assert r.status_code == 200, r.text

    r = requests.get(world.node.url + "/taxii2/", headers=acc)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    assert r.json()["http_status"] == "401"
    r = requests.get(world.node.url + "/taxii2/", headers=acc, auth=("alice", "kopa_00_wrong"))
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers

    r = requests.get(col_url + "objects/", auth=auth, headers={"Accept": "application/json"})
    assert r.status_code == 406

    body = json.dumps({"objects": corpus[:2]})
    r = requests.post(col_url + "objects/", auth=auth, data=body,
                      headers={**acc, "Content-Type": "application/json"})
    assert r.status_code == 415
    big = json.dumps({"objects": [], "padding": "x" * (1024 * 1024 + 10)})
    r = requests.post(col_url + "objects/", auth=auth, data=big,
                      headers={**acc, "Content-Type": TAXII})
    assert r.status_code == 413
    assert r.json()["http_status"] == "413"

    # An envelope with an invalid object: the valid ones are stored, the bad one is a failure.
    bad = dict(corpus[5])
    bad = {**bad, "id": "indicator--not-a-uuid"}
    good = json.loads(stix2.Malware(name="valid one", is_family=True).serialize())
    r = requests.post(col_url + "objects/", auth=auth, data=json.dumps({"objects": [bad, good]}),
                      headers={**acc, "Content-Type": TAXII})
    assert r.status_code == 202, r.text
    st = r.json()
    assert (st["total_count"], st["success_count"], st["failure_count"]) == (2, 1, 1)
    assert st["failures"][0]["id"] == "indicator--not-a-uuid" and st["failures"][0]["message"]

    # A reader may not write; a collection another organisation cannot see is 404.
    r = requests.post(col_url + "objects/", auth=("bob", world.bob["token"]),
                      data=json.dumps({"objects": [good]}), headers={**acc, "Content-Type": TAXII})
    assert r.status_code == 403
    other = f"{world.node.api_root}collections/{world.b_only['id']}/objects/"
    r = requests.get(other, auth=auth, headers=acc)
    assert r.status_code == 404
    r = requests.get(f"{world.node.api_root}collections/{uuid.uuid4()}/", auth=auth, headers=acc)
    assert r.status_code == 404


def test_delete(world, loaded, corpus):
    col = loaded["col"]
    victim = next(o for o in corpus if o["type"] == "malware")
    acc = {"Accept": TAXII}
    url = col.objects_url + victim["id"] + "/"
    # bob reads this collection but may not write it: 403.
    r = requests.delete(url, auth=("bob", world.bob["token"]), headers=acc)
    assert r.status_code == 403
    # carol (CSIRT B) can neither read nor write B-only's counterpart here... use B only as alice: 404.
    other = f"{world.node.api_root}collections/{world.b_only['id']}/objects/{victim['id']}/"
    r = requests.delete(other, auth=("alice", world.alice["token"]), headers=acc)
    assert r.status_code == 404

    col.delete_object(victim["id"])
    with pytest.raises(requests.HTTPError):
        col.get_object(victim["id"])
    with pytest.raises(requests.HTTPError):
        col.object_versions(victim["id"])
    assert col.get_manifest(id=victim["id"]) == {}
    assert victim["id"] not in {o["id"] for o in col.get_objects(type="malware")["objects"]}
