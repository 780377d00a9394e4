"""`kopa match` end to end: real runs over generated logs checked against the OASIS reference matcher
`stix2-matcher` (3.0.0, STIX 2.1 mode), and `--node` against a real `kopa serve`.

The data (fixed seed): a dozen indicators (equality, CIDR, IN, LIKE, MATCHES, hashes, an OR of hashes;
one revoked, one expired, one not a STIX pattern) and a few hundred records whose values are drawn from
hits and near misses (superstrings and neighbours of the hits, which `grep -F` would report). Each record
is written as ECS JSON lines, CSV, Zeek dns.log/http.log and STIX observed-data, with malformed records
at known lines. The expected output is computed record by record: the record's STIX objects (as the
shipped ECS/Zeek mappings make them) in an observed-data bundle, each active indicator's pattern
evaluated by stix2-matcher. Kopa must print exactly those lines, `FILE:LINE` and counts included.

With `--node`, the indicators are posted to a Kopa node that serves pages of 7 objects and accepts
bodies of at most 1024 bytes; `kopa match` reads them through TAXII 2.1 (following `next`), prints the
same lines, and with `--sightings` posts sightings back (in several envelopes), which are then read
through TAXII. Refusals (401, 403, 404, unreachable, no write permission, a sighting larger than the
node accepts) give a clear message naming the URL and a non-zero exit.
"""

import json
import math
import os
import random
import subprocess

import pytest
import requests

from conftest import ADMIN_TOKEN, TAXII, free_port, kopa_binary

SEED = 20261123
N_RECORDS = 240
GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
IND = "indicator--6b0a0000-0000-4000-8000-%012d"

H1 = "%064x" % 0xA1
H2 = "%064x" % 0xB2
M1 = "%032x" % 0xC3

# (number, pattern, extra properties)
INDICATORS = [
    (1, "[ipv4-addr:value = '198.51.100.7']", {}),
    (2, "[ipv4-addr:value ISSUBSET '203.0.113.0/25']", {}),
    (3, "[ipv4-addr:value IN ('192.0.2.10', '192.0.2.11', '192.0.2.12')]", {}),
    (4, "[domain-name:value = 'c2.evil.example']", {}),
    (5, "[domain-name:value MATCHES '^dl[0-9]+[.]bad[.]example$']", {}),
    (6, "[url:value LIKE 'http://%/payload.php%']", {}),
    (7, "[file:hashes.'SHA-256' = '%s']" % H1, {}),
    (8, "[file:hashes.MD5 = '%s' OR file:hashes.'SHA-256' = '%s']" % (M1, H2), {}),
    (9, "[domain-name:value LIKE '%.evil.example']", {}),
    (10, "[ipv4-addr:value = '198.51.100.7']", {"revoked": True}),
    (11, "[domain-name:value = 'c2.evil.example']",
     {"valid_from": "2020-01-01T00:00:00Z", "valid_until": "2021-01-01T00:00:00Z"}),
    (12, "title: not a STIX pattern", {"pattern_type": "sigma"}),
]
ACTIVE = [n for n, _, extra in INDICATORS if not extra]

HIT_IPS = ["198.51.100.7", "203.0.113.5", "203.0.113.127", "192.0.2.11"]
MISS_IPS = ["198.51.100.70", "198.51.100.77", "203.0.113.128", "203.0.113.200", "192.0.2.13",
            "192.0.2.1"]
HIT_DOMAINS = ["c2.evil.example", "dl7.bad.example", "dl123.bad.example", "x.evil.example"]
MISS_DOMAINS = ["evil.example", "dl.bad.example", "dl7.bad.example.org", "c2.evil.example.net",
                "good.example", "xdl7.bad.example"]
HIT_PATHS = [("a.example", "/payload.php"), ("b.example", "/x/payload.php?id=3")]
MISS_PATHS = [("a.example", "/payload.py"), ("c.example", "/payload"), ("d.example", "/pay/load.php")]
HIT_HASHES = [(H1, None), (None, M1), (H2, None)]


def indicator(n, pattern, extra):
    d = {"type": "indicator", "spec_version": "2.1", "id": IND % n,
         "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
         "name": "indicator %d" % n, "pattern": pattern, "pattern_type": "stix",
         "valid_from": "2024-01-01T00:00:00Z", "object_marking_refs": [GREEN]}
    d.update(extra)
    return d


def all_indicators():
    return [indicator(n, p, extra) for n, p, extra in INDICATORS]


def pick(rng, hits, misses, p_hit=0.3):
    return rng.choice(hits) if rng.random() < p_hit else rng.choice(misses)


def make_records():
    """Records as dicts of ECS field → value; every hit value occurs at least once."""
    rng = random.Random(SEED)
    records = []
    for i in range(N_RECORDS):
        r = {"@timestamp": "2024-03-01T10:%02d:%02dZ" % (i // 60, i % 60),
             "source.ip": "10.0.%d.%d" % (rng.randrange(4), rng.randrange(1, 250)),
             "destination.ip": pick(rng, HIT_IPS, MISS_IPS)}
        kind = i % 3
        if kind == 0:
            r["dns.question.name"] = pick(rng, HIT_DOMAINS, MISS_DOMAINS)
        elif kind == 1:
            host, path = rng.choice(HIT_PATHS) if rng.random() < 0.3 else rng.choice(MISS_PATHS)
            r["url.full"] = "http://" + host + path
            r["url.domain"] = host
        if rng.random() < 0.2:
            sha, md5 = rng.choice(HIT_HASHES) if rng.random() < 0.5 else ("%064x" % rng.getrandbits(256), None)
            if sha:
                r["file.hash.sha256"] = sha
            r["file.hash.md5"] = md5 or "%032x" % rng.getrandbits(128)
        records.append(r)
    # Every hit value at least once, so that every active indicator has something to find.
    for k, v in enumerate(HIT_IPS):
        records[k * 3]["destination.ip"] = v
    for k, v in enumerate(HIT_DOMAINS):
        records[30 + k * 3]["dns.question.name"] = v
    for k, (host, path) in enumerate(HIT_PATHS):
        records[61 + k * 3]["url.full"] = "http://" + host + path
        records[61 + k * 3]["url.domain"] = host
    for k, (sha, md5) in enumerate(HIT_HASHES):
        rec = records[90 + k]
        rec.pop("file.hash.sha256", None)
        if sha:
            rec["file.hash.sha256"] = sha
        rec["file.hash.md5"] = md5 or "%032x" % (k + 1)
    return records


def scos_of(record, zeek_kind=None):
    """The STIX objects the shipped mappings make of a record (ECS and CSV; Zeek with its kind)."""
    out = []

    def ip(v):
        out.append({"type": "ipv6-addr" if ":" in v else "ipv4-addr", "value": v})

    ip(record["source.ip"])
    ip(record["destination.ip"])
    if "dns.question.name" in record:
        out.append({"type": "domain-name", "value": record["dns.question.name"]})
    if "url.full" in record:
        out.append({"type": "url", "value": record["url.full"]})
        out.append({"type": "domain-name", "value": record["url.domain"]})
    if zeek_kind is None and ("file.hash.sha256" in record or "file.hash.md5" in record):
        hashes = {}
        if "file.hash.sha256" in record:
            hashes["SHA-256"] = record["file.hash.sha256"]
        hashes["MD5"] = record["file.hash.md5"]
        out.append({"type": "file", "hashes": hashes})
    return out


def bundle_of(record, k, scos):
    objects, refs = [], []
    for j, sco in enumerate(scos):
        sco = dict(sco, spec_version="2.1", id="%s--6b0b0000-0000-4000-8000-%06d%06d" % (sco["type"], k, j))
        objects.append(sco)
        refs.append(sco["id"])
    od = {"type": "observed-data", "spec_version": "2.1",
          "id": "observed-data--6b0c0000-0000-4000-8000-%012d" % k,
          "created": "2024-03-01T00:00:00.000Z", "modified": "2024-03-01T00:00:00.000Z",
          "first_observed": record["@timestamp"], "last_observed": record["@timestamp"],
          "number_observed": 1, "object_refs": refs}
    return {"type": "bundle", "id": "bundle--6b0d0000-0000-4000-8000-%012d" % k, "objects": [od] + objects}


_PATTERNS = {}


def reference_matches(n, bundle):
    from stix2matcher.matcher import Pattern

    pattern = next(p for k, p, _ in INDICATORS if k == n)
    if n not in _PATTERNS:
        _PATTERNS[n] = Pattern(pattern, stix_version="2.1")
    return bool(_PATTERNS[n].match([json.loads(json.dumps(bundle))]))


def expected_lines(labelled_bundles, only=ACTIVE):
    """Exact output lines: for each active indicator, the labels of the bundles it matches."""
    found = {n: [] for n in only}
    for label, bundle in labelled_bundles:
        for n in only:
            if reference_matches(n, bundle):
                found[n].append(label)
    return sorted(json.dumps({"indicator": IND % n, "observed_data": labels, "count": len(labels)},
                             separators=(",", ":"))
                  for n, labels in found.items() if labels)


def run_match(cwd, *args, env=None, expect_ok=True):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KOPA_")}
    full_env.update(env or {})
    r = subprocess.run([kopa_binary(), "match", *args], cwd=cwd, env=full_env, capture_output=True,
                       text=True, encoding="utf-8", timeout=120)
    if expect_ok:
        assert r.returncode == 0, r.stderr
    return r


def write_inputs(d, records):
    """Writes the records in every format; returns {file: (bad lines, [(label, bundle)…])}."""
    bad_ecs = {50: "{\"source.ip\": \"10.0.0.1\",", 120: "this is not JSON"}
    lines, labelled, line_no = [], [], 0
    for k, r in enumerate(records):
        while line_no + 1 in bad_ecs:
            line_no += 1
            lines.append(bad_ecs[line_no])
        line_no += 1
        if k % 2:  # nested objects and dotted keys are both ECS
            nested = {}
            for key, v in r.items():
                head, _, tail = key.partition(".")
                if tail:
                    nested.setdefault(head, {})[tail] = v
                else:
                    nested[key] = v
            lines.append(json.dumps(nested))
        else:
            lines.append(json.dumps(r))
        labelled.append(("logs.jsonl:%d" % line_no, bundle_of(r, k, scos_of(r))))
    (d / "logs.jsonl").write_text("\n".join(lines) + "\n")
    out = {"logs.jsonl": (sorted(bad_ecs), labelled)}

    cols = ["@timestamp", "source.ip", "destination.ip", "dns.question.name", "url.full", "url.domain",
            "file.hash.sha256", "file.hash.md5"]
    rows, labelled = [",".join(cols)], []
    for k, r in enumerate(records):
        if k == 77:
            rows.append("2024-03-01T10:00:00Z,10.0.0.1")  # too few cells
        rows.append(",".join(r.get(c, "") for c in cols))
        labelled.append(("logs.csv:%d" % len(rows), bundle_of(r, k, scos_of(r))))
    (d / "logs.csv").write_text("\n".join(rows) + "\n")
    out["logs.csv"] = ([79], labelled)

    def zeek(name, fields, types, picked):
        head = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-",
                "#path\t" + name.split(".")[0], "#fields\t" + "\t".join(fields), "#types\t" + "\t".join(types)]
        body, labelled = list(head), []
        for k, r, cells in picked:
            if k == 33:
                body.append("1709287200.000000\tCbad\t10.0.0.1")  # too few columns
            body.append("\t".join(cells))
            labelled.append(("%s:%d" % (name, len(body)), bundle_of(r, k, scos_of(r, zeek_kind=name))))
        (d / name).write_text("\n".join(body) + "\n")
        bad = [i + 1 for i, line in enumerate(body) if "\tCbad\t" in line]
        return bad, labelled

    def ts(r):
        import datetime

        t = datetime.datetime.strptime(r["@timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        return "%.6f" % t.replace(tzinfo=datetime.timezone.utc).timestamp()

    conn = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"]
    dns = [(k, r, [ts(r), "C%d" % k, r["source.ip"], "5300", r["destination.ip"], "53",
                   r["dns.question.name"]]) for k, r in enumerate(records) if "dns.question.name" in r]
    out["dns.log"] = zeek("dns.log", conn + ["query"], ["time", "string", "addr", "port", "addr", "port",
                                                      "string"], dns)
    http = []
    for k, r in enumerate(records):
        if "url.full" in r:
            host = r["url.domain"]
            uri = r["url.full"][len("http://" + host):]
            http.append((k, r, [ts(r), "C%d" % k, r["source.ip"], "5300", r["destination.ip"], "80", host, uri]))
    out["http.log"] = zeek("http.log", conn + ["host", "uri"], ["time", "string", "addr", "port", "addr",
                                                               "port", "string", "string"], http)

    bundles = [bundle_of(r, k, scos_of(r)) for k, r in enumerate(records)]
    stix_lines = [json.dumps(b) for b in bundles]
    stix_lines.insert(10, "{\"type\": \"bundle\", \"objects\": [")
    (d / "observed.jsonl").write_text("\n".join(stix_lines) + "\n")
    out["observed.jsonl"] = ([11], [(b["objects"][0]["id"], b) for b in bundles])
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("match")
    (d / "indicators.json").write_text(json.dumps({"type": "bundle", "id": "bundle--6b0e0000-0000-4000-8000-"
                                                   "000000000001", "objects": all_indicators()}))
    records = make_records()
    return d, write_inputs(d, records)


def check_summary(stderr, records, bad):
    assert "%d records read, %d bad" % (records, len(bad)) in stderr, stderr
    for file, line in bad:
        assert "bad record %s:%d:" % (file, line) in stderr, stderr
    assert "1 revoked" in stderr and "1 not STIX patterns" in stderr, stderr


@pytest.mark.parametrize("files,fmt", [
    (["logs.jsonl"], "ecs"),
    (["logs.csv"], "csv"),
    (["dns.log", "http.log"], "zeek"),
    (["observed.jsonl"], "stix"),
], ids=["ecs", "csv", "zeek", "stix"])
def test_match_lines_equal_reference(data, files, fmt):
    d, inputs = data
    labelled = [lb for f in files for lb in inputs[f][1]]
    want = expected_lines(labelled)
    # Not vacuous: every active indicator finds something (Zeek logs carry no file hashes).
    assert len(want) == {"ecs": 9, "csv": 9, "zeek": 7, "stix": 9}[fmt], want
    r = run_match(d, "--indicators", "indicators.json", "--observations", *files, "--format", fmt)
    assert sorted(r.stdout.splitlines()) == want
    bad = [(f, line) for f in files for line in inputs[f][0]]
    check_summary(r.stderr, len(labelled), bad)
    # The format is detected when not given.
    assert sorted(run_match(d, "--indicators", "indicators.json", "--observations", *files)
                  .stdout.splitlines()) == want


def test_sightings_from_files(data):
    d, inputs = data
    want = {json.loads(line)["indicator"]: json.loads(line) for line in expected_lines(inputs["observed.jsonl"][1])}
    r = run_match(d, "--indicators", "indicators.json", "--observations", "observed.jsonl", "--sightings")
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(s["sighting_of_ref"] for s in got) == sorted(want)
    for s in got:
        assert s["type"] == "sighting" and s["spec_version"] == "2.1" and s["id"].startswith("sighting--")
        w = want[s["sighting_of_ref"]]
        assert s["count"] == w["count"]
        assert s["observed_data_refs"] == w["observed_data"]


# --- --node: a real `kopa serve` ----------------------------------------------------------------------

def post(node, user, coll, objects):
    r = requests.post(node.api_root + "collections/%s/objects/" % coll, data=json.dumps({"objects": objects}),
                      headers={"Authorization": "Bearer " + user["token"], "Accept": TAXII,
                               "Content-Type": TAXII}, timeout=30)
    assert r.status_code == 202, r.text
    status = r.json()
    assert status["failure_count"] == 0, status
    return status


def read_all(node, user, coll, type_):
    """Every object of a type in a collection, following `next`."""
    out, nxt = [], None
    for _ in range(1000):
        params = {"match[type]": type_}
        if nxt:
            params["next"] = nxt
        r = requests.get(node.api_root + "collections/%s/objects/" % coll, params=params,
                         headers={"Authorization": "Bearer " + user["token"], "Accept": TAXII}, timeout=30)
        assert r.status_code == 200, r.text
        page = r.json()
        out.extend(page.get("objects", []))
        if not page.get("more"):
            return out
        nxt = page["next"]
    raise AssertionError("paging did not end")


FILLERS = 17  # indicators that match nothing, so that the node serves several pages


@pytest.fixture(scope="module")
def posted(match_world):
    """The indicators (and fillers, and one non-indicator) posted to the shared collection by alice;
    returns the number of indicators."""
    w = match_world
    coll = w.shared["id"]
    objs = all_indicators() + [
        indicator(100 + k, "[ipv4-addr:value = '100.64.0.%d']" % k, {}) for k in range(FILLERS)]
    objs.append({"type": "malware", "spec_version": "2.1", "id": "malware--6b0f0000-0000-4000-8000-000000000001",
                 "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
                 "name": "not an indicator", "is_family": False, "object_marking_refs": [GREEN]})
    for o in objs:  # one per request: the node accepts 1024 bytes at most
        post(w.node, w.alice, coll, [o])
    return len(objs) - 1


def test_node_indicators_match_like_files(match_world, posted, data):
    d, inputs = data
    w = match_world
    want = expected_lines(inputs["logs.jsonl"][1])
    r = run_match(d, "--node", w.node.url, "--collection", w.shared["id"], "--token", w.bob["token"],
                  "--observations", "logs.jsonl")
    assert sorted(r.stdout.splitlines()) == want
    assert "%d indicators (" % (posted - 1) in r.stderr, r.stderr  # the sigma one is not counted
    objects_url = "%scollections/%s/objects/" % (w.node.api_root, w.shared["id"])
    assert "indicators read from %s (%d pages)" % (objects_url, math.ceil(posted / 7)) in r.stderr, r.stderr
    assert w.bob["token"] not in r.stderr
    # The API root URL works as --node too, and KOPA_TOKEN instead of --token.
    r2 = run_match(d, "--node", w.node.api_root, "--collection", w.shared["id"], "--observations",
                   "logs.jsonl", env={"KOPA_TOKEN": w.bob["token"]})
    assert sorted(r2.stdout.splitlines()) == want
    # The collection's alias names it too.
    r3 = run_match(d, "--node", w.node.url, "--collection", "shared", "--token", w.bob["token"],
                   "--observations", "logs.jsonl")
    assert sorted(r3.stdout.splitlines()) == want
    assert objects_url in r3.stderr, r3.stderr


def test_node_together_with_indicator_files(match_world, posted, data, tmp_path):
    d, inputs = data
    w = match_world
    extra = indicator(200, "[ipv4-addr:value = '10.0.0.5']", {})
    (d / "extra.json").write_text(json.dumps(extra) + "\n")
    r = run_match(d, "--node", w.node.url, "--collection", w.shared["id"], "--token", w.bob["token"],
                  "--indicators", "extra.json", "--observations", "logs.jsonl")
    got = {json.loads(line)["indicator"] for line in r.stdout.splitlines()}
    want = {json.loads(line)["indicator"] for line in expected_lines(inputs["logs.jsonl"][1])}
    hits_extra = any(r["source.ip"] == "10.0.0.5" for r in make_records())
    assert got == want | ({IND % 200} if hits_extra else set())
    assert "%d indicators (" % posted in r.stderr, r.stderr  # one more, one fewer (sigma)


def test_node_sightings_are_posted_and_readable(match_world, posted, data):
    d, inputs = data
    w = match_world
    coll = w.shared["id"]
    want = {json.loads(line)["indicator"]: json.loads(line) for line in expected_lines(inputs["logs.jsonl"][1])}
    r = run_match(d, "--node", w.node.url, "--collection", coll, "--token", w.alice["token"],
                  "--observations", "logs.jsonl", "--sightings")
    printed = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(s["sighting_of_ref"] for s in printed) == sorted(want)
    for s in printed:
        assert s["count"] == want[s["sighting_of_ref"]]["count"]
        assert "observed_data_refs" not in s  # log lines are not STIX objects
    # The printed lines are the objects posted; packed greedily into envelopes of at most 1024 bytes.
    envelopes, size = 0, None
    for line in r.stdout.splitlines():
        n = len(line.encode())
        if size is None or size + 1 + n > 1024:
            envelopes, size = envelopes + 1, len(b'{"objects":[]}') + n
        else:
            size += 1 + n
    assert envelopes >= 2
    assert "%d sightings posted to %scollections/%s/objects/ in %d envelopes: %d accepted, 0 refused" % (
        len(printed), w.node.api_root, coll, envelopes, len(printed)) in r.stderr, r.stderr
    stored = {s["id"]: s for s in read_all(w.node, w.alice, coll, "sighting")}
    for s in printed:
        assert s["id"] in stored, s["id"]
        got = stored[s["id"]]
        for key in ("sighting_of_ref", "count", "first_seen", "last_seen", "created"):
            assert got[key] == s[key], (key, got, s)


def test_read_only_token_prints_sightings_with_no_post(match_world, posted, data):
    d, inputs = data
    w = match_world
    coll = w.shared["id"]
    want = {json.loads(line)["indicator"]: json.loads(line) for line in expected_lines(inputs["logs.jsonl"][1])}
    before = {s["id"] for s in read_all(w.node, w.alice, coll, "sighting")}
    # bob may read the collection but not write it.
    r = run_match(d, "--node", w.node.url, "--collection", coll, "--token", w.bob["token"],
                  "--observations", "logs.jsonl", "--sightings", "--no-post")
    printed = [json.loads(line) for line in r.stdout.splitlines()]
    assert printed and all(s["type"] == "sighting" for s in printed)
    assert sorted(s["sighting_of_ref"] for s in printed) == sorted(want)
    assert "posted" not in r.stderr, r.stderr
    after = {s["id"] for s in read_all(w.node, w.alice, coll, "sighting")}
    assert after == before
    assert not {s["id"] for s in printed} & after


def test_node_sighting_too_large_is_reported(match_world, posted, tmp_path):
    """A sighting larger than the node's max_content_length is not sent: said on stderr, exit 1;
    the other sightings are still posted."""
    w = match_world
    many = []
    for k in range(120):  # 120 observed-data of c2.evil.example: a sighting with 120 references
        r = {"@timestamp": "2024-03-01T11:00:00Z", "source.ip": "10.9.9.9", "destination.ip": "10.9.9.8",
             "dns.question.name": "c2.evil.example"}
        many.append(json.dumps(bundle_of(r, 5000 + k, scos_of(r))))
    r = {"@timestamp": "2024-03-01T11:00:00Z", "source.ip": "10.9.9.9", "destination.ip": "198.51.100.7"}
    many.append(json.dumps(bundle_of(r, 6000, scos_of(r))))
    (tmp_path / "obs.jsonl").write_text("\n".join(many) + "\n")
    r = run_match(tmp_path, "--node", w.node.url, "--collection", w.shared["id"], "--token", w.alice["token"],
                  "--observations", "obs.jsonl", "--sightings", expect_ok=False)
    assert r.returncode == 1, r.stderr
    printed = {s["sighting_of_ref"]: s for s in map(json.loads, r.stdout.splitlines())}
    # c2.evil.example: indicators 4 and 9 (both with 120 references); 198.51.100.7: indicator 1.
    assert sorted(printed) == sorted([IND % 1, IND % 4, IND % 9])
    assert "3 sightings posted" in r.stderr and "1 accepted, 2 refused" in r.stderr, r.stderr
    for n in (4, 9):
        assert "sighting refused: %s: not sent: larger than the node's max_content_length (1024 bytes)" % (
            printed[IND % n]["id"]) in r.stderr, r.stderr
    stored = {s["id"] for s in read_all(w.node, w.alice, w.shared["id"], "sighting")}
    assert printed[IND % 1]["id"] in stored
    assert printed[IND % 4]["id"] not in stored


def refused(cwd, *args, env=None):
    r = run_match(cwd, *args, "--observations", "logs.jsonl", env=env, expect_ok=False)
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""
    return r.stderr


def test_node_refusals_name_the_url(match_world, posted, data):
    d, _ = data
    w = match_world
    node, coll = w.node, w.shared["id"]
    discovery = node.url + "/taxii2/"

    bad_token = "kopa_0123456789abcdef_" + "not-the-secret" * 3
    err = refused(d, "--node", node.url, "--collection", coll, "--token", bad_token)
    assert discovery in err and "HTTP 401" in err and "did not accept the token" in err, err
    assert bad_token not in err

    err = refused(d, "--node", node.url, "--collection", "no-such-collection", "--token", w.bob["token"])
    assert "%scollections/no-such-collection/: HTTP 404" % node.api_root in err, err

    # alice (Bank A) may neither read nor write "B only": 404 (absent and forbidden are not told apart).
    err = refused(d, "--node", node.url, "--collection", w.b_only["id"], "--token", w.alice["token"])
    assert "%scollections/%s/: HTTP 404" % (node.api_root, w.b_only["id"]) in err, err

    # A collection alice may write but not read: the node answers 403 on its objects.
    err = refused(d, "--node", node.url, "--collection", w.drop_box["id"], "--token", w.alice["token"])
    assert "%scollections/%s/objects/" % (node.api_root, w.drop_box["id"]) in err and "HTTP 403" in err, err
    assert "may not read" in err or "not read it" in err, err

    # bob may read but not write: --sightings is refused before any matching.
    err = refused(d, "--node", node.url, "--collection", coll, "--token", w.bob["token"], "--sightings")
    assert "%scollections/%s/: this token may not write" % (node.api_root, coll) in err, err
    assert "add --no-post to print them only" in err, err

    # --no-post means nothing without --sightings: a usage error from the parser.
    r = run_match(d, "--node", node.url, "--collection", coll, "--token", w.bob["token"],
                  "--observations", "logs.jsonl", "--no-post", expect_ok=False)
    assert r.returncode != 0 and "--sightings" in r.stderr, r.stderr

    port = free_port()
    err = refused(d, "--node", "http://127.0.0.1:%d" % port, "--collection", coll, "--token", w.bob["token"])
    assert "cannot reach http://127.0.0.1:%d/taxii2/" % port in err, err

    err = refused(d, "--node", node.url, "--collection", coll)
    assert "--node needs an API token" in err, err

    err = refused(d, "--node", "127.0.0.1:%d" % node.port, "--collection", coll, "--token", w.bob["token"])
    assert "is not a URL" in err, err

    # --collection without --node, and neither --indicators nor --node: usage errors from the parser.
    r = run_match(d, "--collection", coll, "--observations", "logs.jsonl", expect_ok=False)
    assert r.returncode != 0 and "--node" in r.stderr, r.stderr
    r = run_match(d, "--observations", "logs.jsonl", expect_ok=False)
    assert r.returncode != 0 and "--indicators" in r.stderr, r.stderr
