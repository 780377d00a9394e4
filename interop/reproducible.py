"""Reproducible generated corpora for the differential tests.

stix2-generator walks sets of property names (whose order follows Python's hash seed), makes
timestamps around the current time and ids from uuid4. A test module builds its corpus in a child
Python started with `corpus_in_child(__file__)`: the child runs with a fixed hash seed, and the
module's `__main__` calls `freeze_clock_and_ids(SEED)` before building and printing the corpus.
"""

import json
import os
import random
import subprocess
import sys


def corpus_in_child(module_file):
    """Run `python module_file corpus` with a fixed hash seed and return the JSON it prints."""
    run = subprocess.run([sys.executable, module_file, "corpus"], env={**os.environ, "PYTHONHASHSEED": "0"},
                         capture_output=True, text=True, encoding="utf-8", check=True, timeout=300)
    return json.loads(run.stdout)


def freeze_clock_and_ids(seed):
    """A fixed clock (2026-01-01 12:00) and uuid4 drawn from a generator seeded with `seed`."""
    import datetime
    import uuid

    class FixedDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 1, 1, 12, 0, 0, tzinfo=tz)

        @classmethod
        def utcnow(cls):
            return cls(2026, 1, 1, 12, 0, 0)

    datetime.datetime = FixedDatetime
    ids = random.Random(seed)
    uuid.uuid4 = lambda: uuid.UUID(int=ids.getrandbits(128), version=4)
