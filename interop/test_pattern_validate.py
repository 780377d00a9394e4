"""Differential test: `kopa pattern validate` gives the same verdict as the OASIS validator
`stix2-patterns` 2.1.2 on a corpus of >= 5,000 patterns, built at test time with fixed seeds:
stix2-generator output, hand-written edge cases, and mutations of both (most of them invalid).

The few inputs on which the reference validator itself crashes (a Python exception rather than a
verdict: negative list indexes, `hashes[n]`) are left out of the comparison and counted.
"""

import concurrent.futures
import json
import os
import random
import subprocess
import sys

import pytest

from reproducible import corpus_in_child, freeze_clock_and_ids

SEED = 20261123
N_GENERATED = 900
TARGET = 5200

EDGE_CASES = [
    "[file:name = 'a']",
    "[file:name == 'a']",
    "[file:name != 'a']",
    "[file:name <> 'a']",
    "[file:name NOT = 'a']",
    "[file:size < 5]",
    "[file:size <= +5]",
    "[file:size > -5]",
    "[file:size >= 5.5]",
    "[file:size >= -.5]",
    "[file:size >= .5]",
    "[file:size >= 01]",
    "[file:size >= 1.]",
    "[file:size >= 1e5]",
    "[file:size = true]",
    "[file:size < true]",
    "[file:name IN ('a', 'b', 3, true)]",
    "[file:name IN ()]",
    "[file:name IN ('a',)]",
    "[file:name NOT IN ('a')]",
    "[file:name LIKE 'a%_']",
    "[file:name NOT LIKE 'a%']",
    "[file:name LIKE 5]",
    "[file:name MATCHES '^a.*b$']",
    "[file:name NOT MATCHES 'x']",
    "[ipv4-addr:value ISSUBSET '10.0.0.0/8']",
    "[ipv4-addr:value NOT ISSUBSET '10.0.0.0/8']",
    "[ipv4-addr:value ISSUPERSET '10.0.0.1']",
    "[ipv6-addr:value ISSUBSET '2001:db8::/32']",
    "[EXISTS file:name]",
    "[NOT EXISTS file:name]",
    "[file:name NOT EXISTS]",
    "[file:name EXISTS]",
    "[EXISTS file]",
    "[NOT file:name = 'a']",
    "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']",
    "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427']",
    "[file:hashes.MD5 = 'D41D8CD98F00B204E9800998ECF8427E']",
    "[file:hashes.md5 = 'zz']",
    "[file:hashes.'MD5' = 'zz']",
    "[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']",
    "[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd8070']",
    "[file:hashes.SHA1 = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']",
    "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']",
    "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85']",
    "[file:hashes.'SHA3-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']",
    "[file:hashes.'SHA-512' = 'ab']",
    "[file:hashes.'SHA-224' = 'ab']",
    "[file:hashes.'SHA-384' = 'ab']",
    "[file:hashes.'SHA3-224' = 'ab']",
    "[file:hashes.'SHA3-384' = 'ab']",
    "[file:hashes.'SHA3-512' = 'ab']",
    "[file:hashes.WHIRLPOOL = 'ab']",
    "[file:hashes.'RIPEMD-160' = 'ab']",
    "[file:hashes.SSDEEP = '3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C']",
    "[file:hashes.SSDEEP = 'has space']",
    "[file:hashes.MD6 = 'd41d8cd98f00b204e9800998ecf8427eXYZ']",
    "[file:hashes.MD6 = 'd41d8cd98f00b204e9800998ecf842']",
    "[file:hashes.'x-custom' = 'anything']",
    "[file:hashes.MD5 != 'zz']",
    "[file:hashes.MD5 LIKE 'd41d8cd98f00b204e9800998ecf8427e']",
    "[file:hashes.MD5 MATCHES '^d41']",
    "[file:hashes.MD5 IN ('d41d8cd98f00b204e9800998ecf8427e')]",
    "[file:hashes.MD5 = h'd41d8cd98f00b204e9800998ecf8427e']",
    "[file:hashes.MD5 = 5]",
    "[file:hashes[*] = 'zz']",
    "[file:x.hashes.MD5 = 'zz']",
    "[file:'hashes'.MD5 = 'zz']",
    "[file:extensions.'windows-pebinary-ext'.sections[*].hashes.MD5 = 'zz']",
    "[file:a = b'AAAA']",
    "[file:a = b'AAA=']",
    "[file:a = b'AA==']",
    "[file:a = b'AB==']",
    "[file:a = b'AAB=']",
    "[file:a = b'////']",
    "[file:a = b'A===']",
    "[file:a = b'AAAAA']",
    "[file:a = b'']",
    "[file:a = h'']",
    "[file:a = h'0']",
    "[file:a = h'0aFf']",
    "[file:a = h'0g']",
    "[file:a = t'2020-01-01T00:00:00Z']",
    "[file:a = t'2020-01-01T00:00:00.123456789Z']",
    "[file:a = t'2020-13-01T00:00:00Z']",
    "[file:a = t'2020-00-01T00:00:00Z']",
    "[file:a = t'2020-01-32T00:00:00Z']",
    "[file:a = t'2020-01-01T24:00:00Z']",
    "[file:a = t'2020-01-01T23:60:00Z']",
    "[file:a = t'2020-01-01T23:59:60Z']",
    "[file:a = t'2020-01-01T00:00:00']",
    "[file:a = t'2020-01-01 00:00:00Z']",
    "[file:a = t'2020-01-01T00:00:00.Z']",
    "[file:a = 'it\\'s']",
    "[file:a = 'back\\\\slash']",
    "[file:a = 'bad\\escape']",
    "[file:a = 'unterminated]",
    "[file:a = '']",
    "[file:a = 'caf\u00e9']",
    "[file:a = \"double\"]",
    "[file:'quoted name' = 1]",
    "[file:a.'b-c'.d = 1]",
    "[file:a.b-c = 1]",
    "[file:a-b = 1]",
    "[file-x:a = 1]",
    "[x-custom-type:a = 1]",
    "[a-:b = 1]",
    "[_x:y = 1]",
    "[1x:y = 1]",
    "[File:Name = 1]",
    "[file:a[0] = 1]",
    "[file:a[*] = 1]",
    "[file:a[*].b[2].c = 1]",
    "[file:a[+1] = 1]",
    "[file:a[-1] = 1]",
    "[file:hashes[0] = 'a']",
    "[file:a[x] = 1]",
    "[file:a[] = 1]",
    "[file:a.0 = 1]",
    "[file:a..b = 1]",
    "[file:a. b = 1]",
    "[file:AND = 1]",
    "[file:true = 1]",
    "[file:LAST = 1]",
    "[file:parent_directory_ref.path = 'C:\\\\Windows']",
    "[email-message:to_refs[*].value = 'a@b.c']",
    "[file:a = 1 AND file:b = 2 OR file:c = 3]",
    "[(file:a = 1 OR file:b = 2) AND file:c = 3]",
    "[((file:a = 1))]",
    "[file:a = 1 AND]",
    "[file:a = 1 OR OR file:b = 2]",
    "[file:a = 1] AND [file:b = 2]",
    "[file:a = 1] OR [file:b = 2]",
    "[file:a = 1] FOLLOWEDBY [file:b = 2]",
    "[file:a = 1] FOLLOWEDBY",
    "[file:a = 1] followedby [file:b = 2]",
    "[file:a = 1] and [file:b = 2]",
    "([file:a = 1] AND [file:b = 2]) OR [file:c = 3]",
    "(([file:a = 1]))",
    "(([file:a = 1])",
    "[file:a = 1]]",
    "[[file:a = 1]]",
    "[]",
    "[file:a = 1] WITHIN 5 SECONDS",
    "[file:a = 1] WITHIN 0 SECONDS",
    "[file:a = 1] WITHIN 5.5 SECONDS",
    "[file:a = 1] WITHIN -5 SECONDS",
    "[file:a = 1] WITHIN 5 SECOND",
    "[file:a = 1] WITHIN 5",
    "[file:a = 1] REPEATS 5 TIMES",
    "[file:a = 1] REPEATS 0 TIMES",
    "[file:a = 1] REPEATS 1.5 TIMES",
    "[file:a = 1] REPEATS -1 TIMES",
    "[file:a = 1] START t'2020-01-01T00:00:00Z' STOP t'2021-01-01T00:00:00Z'",
    "[file:a = 1] START t'2021-01-01T00:00:00Z' STOP t'2020-01-01T00:00:00Z'",
    "[file:a = 1] START '2020-01-01T00:00:00Z' STOP '2021-01-01T00:00:00Z'",
    "[file:a = 1] START t'2020-01-01T00:00:00Z'",
    "[file:a = 1] STOP t'2020-01-01T00:00:00Z'",
    "[file:a = 1] WITHIN 5 SECONDS WITHIN 6 SECONDS",
    "[file:a = 1] REPEATS 2 TIMES REPEATS 3 TIMES",
    "[file:a = 1] REPEATS 2 TIMES WITHIN 2 SECONDS REPEATS 3 TIMES",
    "[file:a = 1] WITHIN 5 SECONDS REPEATS 2 TIMES START t'2020-01-01T00:00:00Z' STOP t'2021-01-01T00:00:00Z'",
    "([file:a = 1]) WITHIN 5 SECONDS WITHIN 6 SECONDS",
    "([file:a = 1] WITHIN 5 SECONDS) WITHIN 6 SECONDS",
    "[file:a = 1] AND [file:b = 2] WITHIN 5 SECONDS WITHIN 6 SECONDS",
    "[file:a = 1] WITHIN 5 SECONDS AND [file:b = 2] WITHIN 6 SECONDS",
    " [file:a = 1]",
    "\t[file:a = 1]",
    " ( [file:a = 1])",
    "[file:a = 1] ",
    "[file:a = 1] /* comment */",
    "[file:a = 1] // comment",
    "[file:a /* inside */ = 1]",
    "[file:a = 1] /* unterminated",
    "/* lead */ [file:a = 1]",
    "file:a = 1",
    "(file:a = 1)",
    "[file:a = 1] #",
    "[file:a = 1 !]",
    "[file:a ! = 1]",
    "[file:a = 1] ^",
    "[file:a = 1]\u00a0",
    "\u00a0[file:a = 1]",
    "\u2003[file:a = 1]",
    "\x1c[file:a = 1]",
    "[file:a\u3000= 1]",
    "[file:a = 1] AND",
    "[file:a = 1] [file:b = 2]",
    "[file:a = 1] OR ([file:b = 2] FOLLOWEDBY [file:c = 3]) REPEATS 2 TIMES",
    "(" * 40 + "[file:a = 1]" + ")" * 40,
    "[" + "(" * 40 + "file:a = 1" + ")" * 40 + "]",
    "[file:a = 99999999999999999999999]",
    "[file:a = 1] REPEATS 99999999999999999999 TIMES",
    "[file:a = 1] WITHIN 99999999999999999999 SECONDS",
    "[file:a = 'x' AND NOT EXISTS file:b]",
    "[NOT NOT EXISTS file:b]",
    "[EXISTS file:b = 1]",
    "[file:a LIKE 'x' OR file:b MATCHES 'y' OR file:c ISSUBSET 'z' OR file:d ISSUPERSET 'w']",
    "[file:a ISSUBSET 5]",
    "[file:a MATCHES b'AAAA']",
    "[file:a IN 'x']",
    "[file:a IN ('x' 'y')]",
    "[file:a = ('x')]",
    "[file:a < 'x']",
    "[file:a < b'AAAA']",
    "[file:a < h'00']",
    "[file:a < t'2020-01-01T00:00:00Z']",
    "[file:a = -0]",
    "[file:a = +0.0]",
    "[file:a = - 1]",
    "[file:a = --1]",
    "[file:a=1]",
    "[file :a = 1]",
    "[file: a = 1]",
    "[file:a=1]WITHIN 5 SECONDS",
    "[file:a=1]WITHIN 5SECONDS",
    "[file:a = 1] START t'2020-02-30T00:00:00Z' STOP t'2021-01-01T00:00:00Z'",
]

MUTATION_INSERTS = [
    "[", "]", "(", ")", "'", ":", "=", "!", " ", "AND ", "OR ", "NOT ", "-", ".", "*", "\\", "\u00e9",
    ",", "'x'", "EXISTS ", "WITHIN 5 SECONDS", " REPEATS 2 TIMES", "t'", "h'", "b'", "1", "0", "/*", "//",
    "FOLLOWEDBY ", "IN ", "<", ">", "%", "_", "+",
]


def kopa_bin():
    path = os.environ.get("KOPA_BIN")
    if not path:
        pytest.skip("KOPA_BIN is not set: build kopa and point KOPA_BIN at it (scripts/test does)")
    return path


def generated_patterns(n, seed):
    import faker
    import stix2generator
    from stix2generator.generation.pattern_generator import PatternGenerator

    random.seed(seed)
    faker.Faker.seed(seed)
    gen = PatternGenerator(stix2generator.create_object_generator(), "2.1")
    out = []
    while len(out) < n:
        p = gen.generate()
        if "\n" not in p and "\r" not in p:
            out.append(p)
    return out


def mutate(p, rng):
    kind = rng.randrange(7)
    i = rng.randrange(len(p) + 1)
    if kind == 0 and p:
        i = min(i, len(p) - 1)
        return p[:i] + p[i + 1:]
    if kind == 1:
        return p[:i] + rng.choice(MUTATION_INSERTS) + p[i:]
    if kind == 2:
        return p[:i]
    if kind == 3:
        for a, b in [("AND", "and"), ("SECONDS", "SECOND"), ("TIMES", "TIME"), ("'", ""), ("]", ""),
                     ("=", "=="), ("=", "!"), ("t'2", "t'3"), ("-0", "-1"), ("T", "t"), (":", "."),
                     ("FOLLOWEDBY", "FOLLOWED BY"), ("OR", "AND"), ("[", "(")]:
            if a in p and rng.random() < 0.3:
                k = rng.choice([j for j in range(len(p)) if p.startswith(a, j)])
                return p[:k] + b + p[k + len(a):]
        return p + " WITHIN 3 SECONDS WITHIN 4 SECONDS"
    if kind == 4:
        q = rng.choice([" WITHIN 2 SECONDS", " REPEATS 3 TIMES", " WITHIN 0 SECONDS", " REPEATS 0 TIMES",
                        " START t'2020-01-01T00:00:00Z' STOP t'2019-01-01T00:00:00Z'"])
        return p + q + (q if rng.random() < 0.5 else "")
    if kind == 5:
        # Change a hex-looking run (hash values) in length or alphabet.
        j = p.find("hashes.")
        if j >= 0:
            k = p.find("'", p.find("=", j) + 1) if "=" in p[j:] else -1
            if k > 0:
                return p[:k + 1] + rng.choice(["", "g", "0", "00"]) + p[k + 1:]
        return p.replace(" ", "", 1)
    # Swap two random characters.
    if len(p) > 2:
        a, b = sorted(rng.sample(range(len(p)), 2))
        return p[:a] + p[b] + p[a + 1:b] + p[a] + p[b + 1:]
    return p


def reference_verdict(p):
    from stix2patterns.validator import run_validator

    try:
        return not run_validator(p, stix_version="2.1")
    except Exception:  # the reference crashed: no verdict
        return None


def build_corpus():
    rng = random.Random(SEED)
    base = EDGE_CASES + generated_patterns(N_GENERATED, SEED)
    corpus = list(base)
    while len(corpus) < TARGET:
        p = mutate(rng.choice(base), rng)
        if rng.random() < 0.3:
            p = mutate(p, rng)
        if "\n" not in p and "\r" not in p and p.strip():
            corpus.append(p)
    return corpus


def test_validate_verdicts_equal_stix2_patterns(tmp_path):
    binary = kopa_bin()
    corpus = deterministic_corpus()
    assert len(corpus) >= 5000
    with concurrent.futures.ProcessPoolExecutor(max_workers=2) as pool:
        expected = list(pool.map(reference_verdict, corpus, chunksize=100))

    f = tmp_path / "patterns.txt"
    f.write_text("\n".join(corpus) + "\n", encoding="utf-8")
    run = subprocess.run([binary, "pattern", "validate", str(f)], capture_output=True, text=True,
                         encoding="utf-8", timeout=120)
    assert run.returncode in (0, 1), run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == len(corpus)

    mismatches, crashed, n_valid = [], 0, 0
    for p, want, line in zip(corpus, expected, lines):
        got = json.loads(line)
        assert got["pattern"] == p
        if got["valid"]:
            assert set(got) == {"pattern", "valid"}
        else:
            assert isinstance(got["error"], str) and got["error"]
            assert isinstance(got["column"], int) and 1 <= got["column"] <= len(p) + 1
        if want is None:
            crashed += 1
            continue
        n_valid += want
        if got["valid"] != want:
            mismatches.append((p, want, got))
    print(f"{len(corpus)} patterns, {n_valid} valid per stix2-patterns, {crashed} reference crashes")
    # Both verdicts occur in quantity, so the comparison means something.
    assert n_valid > 1000 and len(corpus) - n_valid - crashed > 1000
    assert not mismatches, "\n".join(repr(m) for m in mismatches[:20])


def test_validate_reads_stdin_and_reports_columns():
    binary = kopa_bin()
    text = "[file:name = 'a']\n[file:hashes.MD5 = 'zz']\n\n[file:name = 'a'] #\n"
    run = subprocess.run([binary, "pattern", "validate"], input=text, capture_output=True, text=True,
                         timeout=30)
    assert run.returncode == 1
    out = [json.loads(line) for line in run.stdout.splitlines()]
    assert out[0] == {"pattern": "[file:name = 'a']", "valid": True}
    assert out[1]["valid"] is False and out[1]["column"] == 20 and "MD5" in out[1]["error"]
    assert out[2]["valid"] is False and out[2]["pattern"] == ""
    assert out[3]["valid"] is False and out[3]["column"] == 19


def deterministic_corpus():
    """The corpus, built reproducibly in a child Python (see reproducible.py)."""
    return corpus_in_child(__file__)


if __name__ == "__main__":
    freeze_clock_and_ids(SEED)
    print(json.dumps(build_corpus()))
