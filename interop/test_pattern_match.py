"""Differential test: Kopa's evaluator agrees with the OASIS reference matcher `stix2-matcher`
3.0.0 in STIX 2.1 mode on (pattern, observed-data bundle) pairs built so that many of them match.

Observations: SCOs made by stix2-generator (fixed seed), grouped into bundles of observed-data
(`object_refs` + SCOs). Patterns: comparisons built from property values of those SCOs (equal or
not, ordered, IN, LIKE, MATCHES, ISSUBSET), joined inside `[ ]` and at the observation level with
AND/OR/FOLLOWEDBY and qualifiers. Each pattern is evaluated against its own bundle and another.

The reference's documented deviations from the specification are kept out of the corpus (Kopa
follows the spec there, and a named Rust test in kopa-pattern shows each): EXISTS / NOT EXISTS,
LIKE and MATCHES on values with newlines (no DOTALL), ISSUBSET/ISSUPERSET on IPv6 or without an
explicit /n, and the WITHIN boundary (timestamps carry random milliseconds, so no span equals a
whole number of seconds). Pairs on which the reference raises an error or exceeds its time limit
are counted and skipped.
"""

import copy
import json
import os
import random
import signal
import subprocess
import sys

import pytest

from reproducible import corpus_in_child, freeze_clock_and_ids

SEED = 424242
N_SCENARIOS = 650
SCO_TYPES = [
    "ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "file", "mutex", "software",
    "user-account", "process", "mac-addr", "autonomous-system", "directory", "windows-registry-key",
    "x509-certificate", "network-traffic", "artifact",
]
SKIP_KEYS = {"id", "type", "spec_version", "object_marking_refs", "granular_markings", "extensions"}


def kopa_bin():
    path = os.environ.get("KOPA_BIN")
    if not path:
        pytest.skip("KOPA_BIN is not set: build kopa and point KOPA_BIN at it (scripts/test does)")
    return path


def stix_ts(rng, base):
    secs = base + rng.uniform(0, 40)
    whole = int(secs)
    ms = int((secs - whole) * 1000)
    import datetime

    dt = datetime.datetime(2024, 3, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=whole)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % max(ms, 1), secs


def quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def leaf_paths(obj, prefix=()):
    """(path, value) for every scalar reachable without following references."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if (not prefix and k in SKIP_KEYS) or k.endswith("_ref") or k.endswith("_refs"):
                continue
            yield from leaf_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from leaf_paths(v, prefix + (i,))
    else:
        yield prefix, obj


def path_text(sco_type, path, rng):
    out = sco_type + ":"
    for i, step in enumerate(path):
        if isinstance(step, int):
            out += "[*]" if rng.random() < 0.3 else "[%d]" % step
        else:
            name = step if step.isidentifier() and "-" not in step else quote(step)
            out += ("" if i == 0 else ".") + name
    return out


def looks_like_timestamp(v):
    return isinstance(v, str) and len(v) >= 20 and v[4] == "-" and v[10] == "T" and v.endswith("Z")


def comparison(sco, rng, other_values):
    """A comparison on a random property of `sco`; often true for it."""
    candidates = [(p, v) for p, v in leaf_paths(sco) if p and not (isinstance(v, str) and ("\n" in v or "\r" in v))]
    if not candidates:
        return None
    path, v = rng.choice(candidates)
    if path[-1] in ("hashes",) or any(isinstance(s, str) and s.endswith(("_hex", "_bin")) for s in path):
        return None
    lhs = path_text(sco["type"], path, rng)
    neg = "NOT " if rng.random() < 0.15 else ""
    if isinstance(v, bool):
        lit = rng.choice(["true", "false"])
        return "%s %s%s %s" % (lhs, neg, rng.choice(["=", "!="]), lit)
    if isinstance(v, (int, float)):
        if abs(v) > 2 ** 53:
            return None  # JSON numbers beyond 53 bits: see the README (Kopa compares them as doubles)
        lit = repr(v) if rng.random() < 0.6 else repr(v + rng.choice([-1, 1]))
        op = rng.choice(["=", "!=", "<", "<=", ">", ">=", "IN"])
        if op == "IN":
            return "%s %sIN (%s, %s)" % (lhs, neg, lit, rng.randrange(1000))
        return "%s %s%s %s" % (lhs, neg, op, lit)
    if not isinstance(v, str):
        return None
    if looks_like_timestamp(v):
        op = rng.choice(["=", "!=", "<", "<=", ">", ">="])
        return "%s %s%s t%s" % (lhs, neg, op, quote(v))
    other = rng.choice(other_values) if other_values else "zzz"
    kind = rng.randrange(10)
    if kind <= 2 or kind == 9:
        return "%s %s= %s" % (lhs, neg, quote(v if kind != 2 else other))
    if kind == 3:
        return "%s %s!= %s" % (lhs, neg, quote(rng.choice([v, other])))
    if kind == 4:
        return "%s %s%s %s" % (lhs, neg, rng.choice(["<", "<=", ">", ">="]), quote(rng.choice([v, other])))
    if kind == 5:
        return "%s %sIN (%s, %s)" % (lhs, neg, quote(rng.choice([v, other])), quote(other))
    if kind == 6:
        n = rng.randrange(len(v) + 1)
        pat = v[:n] + "%" if rng.random() < 0.6 else ("_" + v[1:] if v else "_")
        return "%s %sLIKE %s" % (lhs, neg, quote(pat))
    if kind == 7:
        run = ""
        for c in v:
            if not c.isalnum() or not c.isascii() or len(run) >= 6:
                break
            run += c
        regex = rng.choice(["^" + run, run + "$" if run == v else run, "^" + run + ".*", "[0-9]", "^$"])
        return "%s %sMATCHES %s" % (lhs, neg, quote(regex))
    if sco["type"] == "ipv4-addr" and path == ("value",) and "/" not in v:
        octets = v.split(".")
        net = ".".join(octets[:3]) + ".0/24" if rng.random() < 0.7 else "10.0.0.0/8"
        return "%s %sISSUBSET %s" % (lhs, neg, quote(net))
    return "%s %s= %s" % (lhs, neg, quote(v))


def observation_expr(scos, rng, other_values):
    sco = rng.choice(scos)
    parts = [c for c in (comparison(sco, rng, other_values) for _ in range(rng.randint(1, 3))) if c]
    if not parts:
        return None
    expr = parts[0]
    for p in parts[1:]:
        expr = "%s %s %s" % (expr, rng.choice(["AND", "AND", "OR"]), p)
    return "[" + expr + "]"


def pattern_for(scos, rng, other_values):
    leaves = [e for e in (observation_expr(scos, rng, other_values) for _ in range(rng.randint(1, 3))) if e]
    if not leaves:
        return None
    p = leaves[0]
    for leaf in leaves[1:]:
        p = "%s %s %s" % (p, rng.choice(["AND", "OR", "FOLLOWEDBY"]), leaf)
    r = rng.random()
    if r < 0.15:
        p = "(%s) WITHIN %d SECONDS" % (p, rng.randint(1, 30))
    elif r < 0.25:
        p = "(%s) REPEATS %d TIMES" % (p, rng.randint(2, 3))
    elif r < 0.35:
        p = "(%s) START t'2024-03-01T00:00:%02d.5Z' STOP t'2024-03-01T00:00:%02d.5Z'" % (
            p, rng.randint(0, 20), rng.randint(21, 59))
    return p


def build_corpus():
    import faker
    import stix2generator

    random.seed(SEED)
    faker.Faker.seed(SEED)
    rng = random.Random(SEED)
    gen = stix2generator.create_object_generator()
    bundles, patterns = [], []
    all_values = []
    for s in range(N_SCENARIOS):
        scos = [gen.generate(rng.choice(SCO_TYPES)) for _ in range(rng.randint(1, 3))]
        objects = []
        for k in range(rng.randint(1, 3)):
            first, t0 = stix_ts(rng, 0)
            last, _ = stix_ts(rng, t0) if rng.random() < 0.5 else (first, t0)
            if last < first:
                first, last = last, first
            refs = [o["id"] for o in rng.sample(scos, rng.randint(1, len(scos)))]
            objects.append({
                "type": "observed-data", "spec_version": "2.1",
                "id": "observed-data--00000000-0000-4000-8000-%012d" % (s * 10 + k),
                "created": "2024-03-01T00:00:00.000Z", "modified": "2024-03-01T00:00:00.000Z",
                "first_observed": first, "last_observed": last,
                "number_observed": rng.choice([1, 1, 1, 2, 3]), "object_refs": refs,
            })
        objects.extend(scos)
        bundles.append({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-%012d" % s, "objects": objects})
        for sco in scos:
            all_values.extend(v for _, v in leaf_paths(sco) if isinstance(v, str) and "\n" not in v)
    for s, bundle in enumerate(bundles):
        scos = [o for o in bundle["objects"] if o["type"] != "observed-data"]
        for _ in range(2):
            p = pattern_for(scos, rng, all_values[:: max(1, len(all_values) // 500)])
            if p:
                other = rng.randrange(len(bundles))
                patterns.append((p, s, other))
    return bundles, patterns


class Timeout(Exception):
    pass


def reference_match(pattern, bundle):
    from stix2matcher.matcher import Pattern

    def on_alarm(*_):
        raise Timeout()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 2.0)
    try:
        return bool(Pattern(pattern, stix_version="2.1").match([copy.deepcopy(bundle)]))
    except Timeout:
        return "timeout"
    except Exception:
        return "error"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def test_match_results_equal_stix2_matcher(tmp_path):
    binary = kopa_bin()
    bundles, patterns = deterministic_corpus()
    obs_file = tmp_path / "bundles.jsonl"
    obs_file.write_text("\n".join(json.dumps(b) for b in bundles) + "\n", encoding="utf-8")
    pat_file = tmp_path / "patterns.txt"
    pat_file.write_text("\n".join(p for p, _, _ in patterns) + "\n", encoding="utf-8")
    run = subprocess.run([binary, "pattern", "match", "--pattern-file", str(pat_file), "--observations",
                          str(obs_file)], capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == len(patterns)

    compared = matched = skipped = 0
    mismatches = []
    for (p, own, other), got in zip(patterns, lines):
        assert got["pattern"] == p
        assert "error" not in got, got
        for b in (own, other):
            want = reference_match(p, bundles[b])
            if want in ("timeout", "error"):
                skipped += 1
                continue
            mine = got["results"][b]
            assert mine != "too_complex", (p, b)
            compared += 1
            matched += want
            if (mine == "match") != want:
                mismatches.append((p, b, want, mine))
    print(f"{compared} pairs compared, {matched} matching, {skipped} skipped (reference error or timeout)")
    assert compared >= 2000
    assert matched >= compared // 8, "the corpus should make many pairs match"
    assert not mismatches, "\n".join(repr(m) for m in mismatches[:15])


def test_match_reports_invalid_patterns_and_sets(tmp_path):
    binary = kopa_bin()
    bundle = {"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "observed-data", "id": "observed-data--1", "first_observed": "2024-01-01T00:00:00Z",
         "last_observed": "2024-01-01T00:00:00Z", "number_observed": 1, "object_refs": ["ipv4-addr--1"]},
        {"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "203.0.113.7"}]}
    obs = tmp_path / "b.json"
    obs.write_text(json.dumps(bundle))
    pats = tmp_path / "p.txt"
    pats.write_text("[ipv4-addr:value = '203.0.113.7']\n[ipv4-addr:value = '203.0.113.8']\n[ipv4-addr:value =\n")
    run = subprocess.run([binary, "pattern", "match", "--pattern-file", str(pats), "--observations", str(obs)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    out = [json.loads(line) for line in run.stdout.splitlines()]
    assert out[0]["results"] == ["match"]
    assert out[1]["results"] == ["nomatch"]
    assert out[2]["column"] == 19 and out[2]["error"]


def deterministic_corpus():
    """The corpus, built reproducibly in a child Python (see reproducible.py)."""
    return corpus_in_child(__file__)


if __name__ == "__main__":
    freeze_clock_and_ids(SEED)
    print(json.dumps(build_corpus()))
