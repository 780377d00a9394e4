#!/usr/bin/env python3
"""Generate the bulk-matcher benchmark data with a fixed seed.

Writes into OUT_DIR:
  indicators.jsonl   N STIX 2.1 indicators, one per line (60 % equality on ipv4/ipv6/domain/url/hashes,
                     15 % CIDR, 10 % IN lists, 10 % LIKE, 5 % MATCHES or compound)
  values.txt         the literal values of those indicators, one per line (what `grep -F -f` gets)
  eq.tsv             the equality subset as FIELD<TAB>VALUE (the plain Python loop's sets)
  ecs.jsonl          M ECS JSON-lines records; about HIT_RATE of them carry an indicator value in a mapped
                     field, and about TRAP_RATE carry one only inside a free-text field (a true non-match
                     that substring search reports)
  truth.json         how many records were planted with a hit (the exact answer), and the counts above
  slice_patterns.txt, slice_indicators.jsonl, slice_observations.json
                     a K x K slice for stix2-matcher (STIX observed-data with object_refs + SCOs)

usage: gen.py OUT_DIR N_INDICATORS N_RECORDS K_SLICE
"""
import json
import random
import sys
import uuid

out, n_ind, n_rec, k_slice = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(20261123)
HIT_RATE = 0.001
TRAP_RATE = 0.0005


def uid():
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# Indicator value spaces never overlap the background's, so a hit is always a planted one.
def ioc_ipv4(i):
    # 100.64.0.0/10 (shared address space), never used by background traffic
    x = (100 << 24) | (64 << 16) | (i * 2654435761 & 0x3FFFFF)
    return f"{x >> 24}.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255}"


def ioc_ipv6(i):
    return f"2001:db8:bad:{(i >> 16) & 0xffff:x}::{i & 0xffff:x}"


def ioc_domain(i):
    return f"ioc{i:x}.bad{i % 97}.example"


def ioc_url(i):
    return f"http://dl{i:x}.payload.example/get/{i * 7919 % 100000}.bin"


def ioc_hash(i, bits):
    r = random.Random(i * 31 + bits)
    return f"{r.getrandbits(bits):0{bits // 4}x}"


def cidr_net(i):
    # 240.0.0.0/4 (reserved, never in background traffic) split in distinct /24s
    a, b, c = 240 + (i >> 16) % 16, (i >> 8) & 255, i & 255
    return f"{a}.{b}.{c}.0/24", f"{a}.{b}.{c}."


def quote(s):
    return s.replace("\\", "\\\\").replace("'", "\\'")


indicators = []   # (pattern, values for grep, plantable (field, value) list)
eq_pairs = []
n_eq = int(n_ind * 0.60)
n_cidr = int(n_ind * 0.15)
n_in = int(n_ind * 0.10)
n_like = int(n_ind * 0.10)
n_rest = n_ind - n_eq - n_cidr - n_in - n_like

fin = open(f"{out}/indicators.jsonl", "w")
fval = open(f"{out}/values.txt", "w")
feq = open(f"{out}/eq.tsv", "w")
plant = []  # (field, value) that makes a record match some indicator
ind_plants = []  # per indicator: its plantable (field, value) pairs
created = "2026-01-01T00:00:00.000Z"


def emit(pattern, values, plants):
    fin.write(json.dumps({
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--{uid()}",
        "created": created, "modified": created, "pattern": pattern, "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z"}) + "\n")
    for v in values:
        fval.write(v + "\n")
    ind_plants.append(plants)
    if plants and rng.random() < 0.05:
        plant.append(rng.choice(plants))


k = 0
for i in range(n_eq):
    r = i % 20
    if r < 7:
        v = ioc_ipv4(k); f = "source.ip" if i % 2 else "destination.ip"
        emit(f"[ipv4-addr:value = '{v}']", [v], [(f, v)]); feq.write(f"ip\t{v}\n")
    elif r < 9:
        v = ioc_ipv6(k); emit(f"[ipv6-addr:value = '{v}']", [v], [("destination.ip", v)]); feq.write(f"ip\t{v}\n")
    elif r < 14:
        v = ioc_domain(k); emit(f"[domain-name:value = '{v}']", [v], [("dns.question.name", v)]); feq.write(f"domain\t{v}\n")
    elif r < 17:
        v = ioc_url(k); emit(f"[url:value = '{v}']", [v], [("url.full", v)]); feq.write(f"url\t{v}\n")
    else:
        v = ioc_hash(k, 256); emit(f"[file:hashes.'SHA-256' = '{v}']", [v], [("file.hash.sha256", v)]); feq.write(f"sha256\t{v}\n")
    k += 1
for i in range(n_cidr):
    net, prefix = cidr_net(i)
    emit(f"[ipv4-addr:value ISSUBSET '{net}']", [prefix], [("source.ip", prefix + str(1 + i % 250))])
for i in range(n_in):
    vs = [ioc_domain(k + j) for j in range(3)]
    k += 3
    emit("[domain-name:value IN (" + ", ".join(f"'{v}'" for v in vs) + ")]", vs,
         [("dns.question.name", v) for v in vs])
for i in range(n_like):
    stem = f"lk{i:x}.evil-cdn.example"
    if i % 2:
        emit(f"[domain-name:value LIKE '%.{stem}']", ["." + stem], [("dns.question.name", f"a{i % 9}.{stem}")])
    else:
        emit(f"[url:value LIKE 'http://{stem}/%']", [f"http://{stem}/"], [("url.full", f"http://{stem}/x/{i}")])
for i in range(n_rest):
    if i % 2 == 0:
        stem = f"rx{i:x}"
        emit(f"[url:value MATCHES '^https?://{stem}\\\\.tracker\\\\.example/[a-z]+/[0-9]+$']",
             [f"{stem}.tracker.example/"], [("url.full", f"https://{stem}.tracker.example/id/{i}")])
    elif i % 4 == 1:
        h = ioc_hash(10_000_000 + i, 256)
        emit(f"[file:hashes.'SHA-256' = '{h}' AND file:name LIKE '%.exe']", [h], [])
    else:
        a, d = ioc_ipv4(20_000_000 + i), ioc_domain(20_000_000 + i)
        emit(f"[ipv4-addr:value = '{a}'] FOLLOWEDBY [domain-name:value = '{d}']", [a, d], [])
fin.close(); fval.close(); feq.close()

# Background vocabulary.
hosts = [f"ws{j:04d}.corp.internal" for j in range(2000)]
domains = [f"{w}.{t}" for w in ("cdn", "api", "www", "mail", "static", "login", "update", "telemetry")
           for t in ("example.com", "example.net", "example.org", "contoso.com", "fabrikam.com", "wingtip.io")]
paths = ["/", "/index.html", "/api/v1/items", "/login", "/static/app.js", "/img/logo.png", "/search?q=report"]
agents = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "curl/8.5.0", "Go-http-client/1.1", "python-requests/2.31"]


def bg_ip():
    c = rng.random()
    if c < 0.5:
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if c < 0.8:
        return f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return f"{rng.choice((23, 34, 52, 104, 151, 172))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


truth_hits = 0
traps = 0
with open(f"{out}/ecs.jsonl", "w") as f:
    for n in range(n_rec):
        ts = f"2026-03-{1 + n * 28 // max(n_rec, 1):02d}T{n % 24:02d}:{n % 60:02d}:{(n * 7) % 60:02d}.{n % 1000:03d}Z"
        kind = n % 4
        d = {"@timestamp": ts, "event": {"kind": "event", "dataset": ("network", "dns", "http", "file")[kind]},
             "host": {"name": rng.choice(hosts)},
             "source": {"ip": bg_ip(), "port": rng.randrange(1024, 65535)},
             "destination": {"ip": bg_ip(), "port": rng.choice((53, 80, 443, 8080))}}
        if kind == 1:
            d["dns"] = {"question": {"name": rng.choice(domains), "type": "A"}}
        elif kind == 2:
            dom = rng.choice(domains)
            d["url"] = {"full": f"https://{dom}{rng.choice(paths)}", "domain": dom}
            d["user_agent"] = {"original": rng.choice(agents)}
        elif kind == 3:
            d["file"] = {"name": f"doc{rng.randrange(10**6)}.pdf", "hash": {"sha256": f"{rng.getrandbits(256):064x}"}}
        else:
            d["network"] = {"transport": "tcp", "bytes": rng.randrange(100, 10**6)}
        x = rng.random()
        if x < HIT_RATE and plant:
            field, value = rng.choice(plant)
            a, b = field.split(".", 1)
            if a == "dns":
                d["dns"] = {"question": {"name": value, "type": "A"}}
            elif a == "file":
                d.setdefault("file", {"name": "x.bin"})["hash"] = {"sha256": value}
            elif a == "url":
                d["url"] = {"full": value}
            else:
                d[a]["ip"] = value
            truth_hits += 1
        elif x < HIT_RATE + TRAP_RATE and plant:
            # The value appears only in free text (a false hit for substring search).
            d["message"] = f"policy lookup for {rng.choice(plant)[1]} returned nothing"
            traps += 1
        f.write(json.dumps(d, separators=(",", ":")) + "\n")

# The stix2-matcher slice: K patterns (the first equality/CIDR/IN/LIKE indicators, mixed) and K
# observations, a tenth of which carry a planted value.
slice_patterns = []
with open(f"{out}/indicators.jsonl") as fi:
    lines = fi.readlines()
step = max(1, len(lines) // k_slice)
slice_idx = list(range(0, len(lines), step))[:k_slice]
slice_lines = [lines[j] for j in slice_idx]
with open(f"{out}/slice_indicators.jsonl", "w") as fo:
    fo.writelines(slice_lines)
with open(f"{out}/slice_patterns.txt", "w") as fo:
    for ln in slice_lines:
        fo.write(json.loads(ln)["pattern"] + "\n")
objs = []
slice_plants = [pl for j in slice_idx for pl in ind_plants[j]]
for n in range(k_slice):
    ts = f"2026-03-01T00:{n // 60 % 60:02d}:{n % 60:02d}.000Z"
    od_id = f"observed-data--{uid()}"
    refs = []
    if n % 10 == 0 and slice_plants:
        field, value = rng.choice(slice_plants)
    else:
        field, value = "source.ip", bg_ip()
    typ = {"source.ip": "ipv4-addr", "destination.ip": "ipv6-addr" if ":" in value else "ipv4-addr",
           "dns.question.name": "domain-name", "url.full": "url", "file.hash.sha256": "file"}[field]
    sco_id = f"{typ}--{uid()}"
    sco = {"type": typ, "spec_version": "2.1", "id": sco_id}
    if typ == "file":
        sco["hashes"] = {"SHA-256": value}
    else:
        sco["value"] = value
    objs.append({"type": "observed-data", "spec_version": "2.1", "id": od_id, "created": ts, "modified": ts,
                 "first_observed": ts, "last_observed": ts, "number_observed": 1, "object_refs": [sco_id]})
    objs.append(sco)
with open(f"{out}/slice_observations.json", "w") as fo:
    json.dump({"type": "bundle", "id": f"bundle--{uid()}", "objects": objs}, fo)

json.dump({"indicators": n_ind, "records": n_rec, "planted_hit_records": truth_hits, "trap_records": traps,
           "slice": k_slice}, open(f"{out}/truth.json", "w"))
print(json.dumps({"indicators": n_ind, "records": n_rec, "planted_hit_records": truth_hits, "trap_records": traps}))
