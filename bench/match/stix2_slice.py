#!/usr/bin/env python3
"""stix2-matcher (OASIS reference, 2.1 mode) on a K x K slice: every pattern against every observation.
usage: stix2_slice.py PATTERNS_TXT OBSERVATIONS_BUNDLE -> JSON with evaluations/s"""
import json
import sys
import time

from stix2matcher.matcher import match

patterns = [p.rstrip("\n") for p in open(sys.argv[1]) if p.strip()]
bundle = json.load(open(sys.argv[2]))
objs = bundle["objects"]
by_id = {o["id"]: o for o in objs}
# One bundle per observed-data (with its SCOs), so each pair is one evaluation.
singles = []
for o in objs:
    if o["type"] == "observed-data":
        singles.append({"type": "bundle", "id": bundle["id"], "objects": [o] + [by_id[r] for r in o["object_refs"]]})
# As the anchor measured it: one call per pattern over all observations (the pattern is
# parsed once per call); each call evaluates the pattern against every observation.
t0 = time.perf_counter()
c0 = time.process_time()
hits = 0
for p in patterns:
    if match(p, singles, stix_version="2.1"):
        hits += 1
dt = time.perf_counter() - t0
cpu = time.process_time() - c0
n = len(patterns) * len(singles)
print(json.dumps({"evaluations": n, "patterns_matched": hits, "seconds": dt, "cpu_seconds": cpu,
                  "evaluations_per_s": n / dt, "evaluations_per_cpu_s": n / cpu}))
