#!/usr/bin/env python3
"""The plain Python baseline: json.loads per line + set lookups on four ECS fields (equality subset).
usage: py_loop.py EQ_TSV ECS_JSONL -> prints matched-line count and lines/s as JSON"""
import json
import sys
import time

ips, domains, urls = set(), set(), set()
for line in open(sys.argv[1]):
    kind, value = line.rstrip("\n").split("\t", 1)
    {"ip": ips, "domain": domains, "url": urls}.get(kind, set()).add(value)
t0 = time.perf_counter()
c0 = time.process_time()
n = hits = 0
with open(sys.argv[2], "rb") as f:
    for line in f:
        n += 1
        d = json.loads(line)
        s = d.get("source", {}).get("ip")
        t = d.get("destination", {}).get("ip")
        q = d.get("dns", {}).get("question", {}).get("name")
        u = d.get("url", {}).get("full")
        if s in ips or t in ips or q in domains or u in urls:
            hits += 1
dt = time.perf_counter() - t0
cpu = time.process_time() - c0
print(json.dumps({"lines": n, "hits": hits, "seconds": dt, "cpu_seconds": cpu, "lines_per_s": n / dt,
                  "lines_per_cpu_s": n / cpu}))
