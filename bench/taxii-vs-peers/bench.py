#!/usr/bin/env python3
"""TAXII 2.1 workload driver: one workload against Kopa, medallion and OpenTAXII in one run.

Started by `bench/taxii-vs-peers/run`, which prepares the pinned environment and Kopa's release
binary. Every server gets the same deterministic STIX 2.1 objects (fixed seed) and the same steps:

  post        POST the objects in envelopes of 1,000 (bodies serialised before timing)
  read        read them all back in pages of 1,000 (follow `next`, else `added_after`)
  type        the same with match[type]=relationship
  after       the same with added_after in the middle of the collection
  readers     16 concurrent readers each fetching a fixed number of pages: p50/p99 latency

A peer is run at 1,000, 2,000, 10,000 and 100,000 objects, smallest first, on a fresh server per
size; each figure is taken at the largest size whose step finished within the step limit (5 minutes),
and that size is printed beside it. Kopa runs at the full size only, then grows its collection to
1,000,000 objects: first page against last page, and the server's peak resident memory (VmHWM).
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import datetime as dt
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterator

import requests

try:
    import orjson

    def loads(data: bytes):
        return orjson.loads(data)

    def dumps(obj) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - the pinned environment has orjson

    def loads(data: bytes):
        return json.loads(data)

    def dumps(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


TAXII = "application/taxii+json;version=2.1"
SEED = 20261123
ENVELOPE = 1000
PAGE = 1000
STEPS = ["post", "read", "type", "after", "readers"]
STEP_TITLES = {
    "post": "POST, envelopes of 1,000",
    "read": "read all, pages of 1,000",
    "type": "read match[type]=relationship",
    "after": "read added_after = middle",
    "readers": "16 concurrent readers",
}


class BenchError(Exception):
    """A server answered something the benchmark cannot use."""


class StepTimeout(Exception):
    """A step did not finish within the step limit."""


# ---------------------------------------------------------------------------------------------
# The workload: deterministic, valid STIX 2.1 indicators (2/3) and relationships between them (1/3)
# ---------------------------------------------------------------------------------------------

TLDS = ["com", "net", "org", "info", "example", "io", "biz"]
BASE_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def stix_time(i: int) -> str:
    t = BASE_TIME + dt.timedelta(milliseconds=i)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def generate_objects(n: int, seed: int = SEED) -> Iterator[dict]:
    """Yield n objects; the first k of a run with n > k are the same as a run with n = k."""
    rng = random.Random(seed)
    indicators: list[str] = []
    for i in range(n):
        ts = stix_time(i)
        uid = uuid.UUID(int=rng.getrandbits(128), version=4)
        if i % 3 == 2:
            src = indicators[rng.randrange(len(indicators))]
            dst = indicators[rng.randrange(len(indicators))]
            yield {
                "type": "relationship",
                "spec_version": "2.1",
                "id": f"relationship--{uid}",
                "created": ts,
                "modified": ts,
                "relationship_type": "related-to",
                "source_ref": src,
                "target_ref": dst,
            }
            continue
        kind = rng.randrange(3)
        if kind == 0:
            ip = ".".join(str(rng.randrange(1, 255)) for _ in range(4))
            pattern, name = f"[ipv4-addr:value = '{ip}']", f"Malicious address {ip}"
        elif kind == 1:
            label = "".join(rng.choices(string.ascii_lowercase, k=rng.randrange(6, 14)))
            domain = f"{label}.{rng.choice(TLDS)}"
            pattern, name = f"[domain-name:value = '{domain}']", f"Malicious domain {domain}"
        else:
            digest = f"{rng.getrandbits(256):064x}"
            pattern, name = f"[file:hashes.'SHA-256' = '{digest}']", "Malicious file"
        oid = f"indicator--{uid}"
        indicators.append(oid)
        yield {
            "type": "indicator",
            "spec_version": "2.1",
            "id": oid,
            "created": ts,
            "modified": ts,
            "name": name,
            "indicator_types": ["malicious-activity"],
            "pattern": pattern,
            "pattern_type": "stix",
            "valid_from": ts,
        }


def envelopes(objects: Iterator[dict], size: int = ENVELOPE) -> Iterator[tuple[bytes, int]]:
    chunk: list[dict] = []
    for obj in objects:
        chunk.append(obj)
        if len(chunk) == size:
            yield dumps({"objects": chunk}), len(chunk)
            chunk = []
    if chunk:
        yield dumps({"objects": chunk}), len(chunk)


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
    except OSError:
        return ""


@dataclass
class Endpoint:
    """Where and how a client reaches the benchmark collection."""

    objects_url: str
    status_url: str  # with {id}
    headers: dict

    def session(self) -> requests.Session:
        s = requests.Session()
        s.headers.update({"Accept": TAXII, **self.headers})
        return s


class Server:
    """A server process started by the benchmark, in its own process group."""

    name = "?"
    how = "?"

    def __init__(self, venv_bin: str, workdir: str):
        self.venv_bin = venv_bin
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log = os.path.join(workdir, "server.log")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, argv: list[str], env: dict | None = None) -> None:
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            argv,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        logf.close()

    def wait_ready(self, url: str, headers: dict, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited at start-up:\n{tail(self.log)}")
            try:
                r = requests.get(url, headers={"Accept": TAXII, **headers}, timeout=5)
                if r.status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise BenchError(f"{self.name} did not answer {url} within {timeout:.0f} s:\n{tail(self.log)}")

    def stop(self) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    def peak_memory_kib(self) -> tuple[int, int] | None:
        """(VmHWM, VmRSS) of the server process, in KiB."""
        if not self.proc:
            return None
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            return int(fields["VmHWM"].split()[0]), int(fields["VmRSS"].split()[0])
        except (OSError, KeyError, ValueError):
            return None

    def discover(self, headers: dict, title: str) -> Endpoint:
        """Find the collection the way a TAXII client does: discovery, api root, collections."""
        s = requests.Session()
        s.headers.update({"Accept": TAXII, **headers})
        r = s.get(f"{self.base}/taxii2/", timeout=30)
        check(r, 200, f"{self.name} discovery")
        disc = loads(r.content)
        root = disc.get("default") or disc["api_roots"][0]
        root = urllib.parse.urljoin(f"{self.base}/taxii2/", root)
        if not root.endswith("/"):
            root += "/"
        r = s.get(f"{root}collections/", timeout=30)
        check(r, 200, f"{self.name} collections")
        cols = loads(r.content).get("collections", [])
        for col in cols:
            if col.get("title") == title:
                return Endpoint(
                    objects_url=f"{root}collections/{col['id']}/objects/",
                    status_url=f"{root}status/{{id}}/",
                    headers=headers,
                )
        raise BenchError(f"{self.name}: collection {title!r} not listed in {root}collections/")


def check(r: requests.Response, status: int, what: str) -> None:
    if r.status_code != status:
        raise BenchError(f"{what}: HTTP {r.status_code} (expected {status}): {r.text[:300]}")


class Medallion(Server):
    name = "medallion"
    how = "medallion 3.0.0, memory backend, its own `medallion` command (Flask development server)"

    def start(self) -> Endpoint:
        self.port = free_port()
        root = f"{self.base}/bench/"
        data = {
            "/discovery": {
                "title": "medallion benchmark",
                "description": "",
                "contact": "",
                "default": root,
                "api_roots": [root],
            },
            "bench": {
                "information": {
                    "title": "bench",
                    "description": "",
                    "versions": [TAXII],
                    "max_content_length": 100 * 1024 * 1024,
                },
                "status": [],
                "collections": [
                    {
                        "id": str(uuid.uuid4()),
                        "title": "bench",
                        "description": "",
                        "can_read": True,
                        "can_write": True,
                        "media_types": ["application/stix+json;version=2.1"],
                        "objects": [],
                        "manifest": [],
                    }
                ],
            },
        }
        data_path = os.path.join(self.workdir, "data.json")
        conf_path = os.path.join(self.workdir, "config.json")
        with open(data_path, "w") as f:
            json.dump(data, f)
        with open(conf_path, "w") as f:
            json.dump(
                {
                    "backend": {
                        "module": "medallion.backends.memory_backend",
                        "module_class": "MemoryBackend",
                        "filename": data_path,
                    },
                    "users": {"bench": "bench-password"},
                    "taxii": {"max_page_size": PAGE},
                },
                f,
            )
        self.spawn(
            [f"{self.venv_bin}/medallion", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "WARN", conf_path]
        )
        basic = base64.b64encode(b"bench:bench-password").decode()
        headers = {"Authorization": f"Basic {basic}"}
        self.wait_ready(f"{self.base}/taxii2/", headers)
        return self.discover(headers, "bench")


class OpenTaxii(Server):
    name = "OpenTAXII"
    how = ("OpenTAXII 0.9.3 (UUID patch), SQLite, `gunicorn opentaxii.http:app --workers 2` "
           "as its docs deploy it; JWT bearer token from /management/auth")

    def start(self) -> Endpoint:
        self.port = free_port()
        conf = os.path.join(self.workdir, "opentaxii.yml")
        with open(conf, "w") as f:
            f.write(
                f"""domain: "127.0.0.1:{self.port}"
support_basic_auth: yes
return_server_error_details: no
auth_api:
  class: opentaxii.auth.sqldb.SQLDatabaseAPI
  parameters:
    db_connection: sqlite:///{self.workdir}/auth.db
    create_tables: yes
    secret: kopa-benchmark-secret-of-at-least-32-bytes
    token_ttl_secs: 86400
taxii1:
taxii2:
  title: OpenTAXII benchmark
  max_content_length: 104857600
  public_discovery: yes
  allow_custom_properties: yes
  persistence_api:
    class: opentaxii.persistence.sqldb.Taxii2SQLDatabaseAPI
    parameters:
      db_connection: sqlite:///{self.workdir}/data.db
      create_tables: yes
logging:
  opentaxii: warning
  root: warning
"""
            )
        env = {"OPENTAXII_CONFIG": conf, "PYTHONWARNINGS": "ignore"}
        setup = (
            "from opentaxii.cli import app\n"
            "with app.app_context():\n"
            "    api = app.taxii_server.servers.taxii2.persistence.api\n"
            "    root = api.add_api_root(title='bench', description=None, default=True)\n"
            "    api.add_collection(api_root_id=root.id, title='bench', description=None,\n"
            "                       alias='bench', is_public=False, is_public_write=False)\n"
            "    app.taxii_server.auth.api.create_account(username='bench',\n"
            "                       password='bench-password', is_admin=True)\n"
        )
        r = subprocess.run([f"{self.venv_bin}/python", "-c", setup], cwd=self.workdir,
                           env={**os.environ, **env}, capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"OpenTAXII setup failed:\n{r.stderr[-2000:]}")
        self.spawn(
            [f"{self.venv_bin}/gunicorn", "opentaxii.http:app", "--workers", "2",
             "--timeout", "900", "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning"],
            env,
        )
        self.wait_ready(f"{self.base}/taxii2/", {})
        r = requests.post(f"{self.base}/management/auth",
                          json={"username": "bench", "password": "bench-password"}, timeout=30)
        check(r, 200, "OpenTAXII /management/auth")
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        return self.discover(headers, "bench")


class Kopa(Server):
    def __init__(self, venv_bin: str, workdir: str, binary: str, database: str | None):
        super().__init__(venv_bin, workdir)
        self.binary = binary
        self.database = database
        self.name = "Kopa/PG" if database else "Kopa/SQLite"
        self.how = (f"kopa serve (release build), "
                    f"{'PostgreSQL' if database else 'SQLite (WAL) in the data directory'}")
        self.data = os.path.join(workdir, "kopa-data")

    def cli(self, *args: str) -> dict:
        argv = [self.binary, *args, "--json", "--data", self.data]
        if self.database:
            argv += ["--database", self.database]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "KOPA_ADMIN_TOKEN": self.admin})
        if r.returncode != 0:
            raise BenchError(f"`kopa {' '.join(args)}` failed ({r.returncode}): "
                             f"{(r.stderr or r.stdout).strip()[-800:]}")
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError) as e:
            raise BenchError(f"`kopa {' '.join(args)} --json` printed no JSON object: "
                             f"{r.stdout[-300:]!r}") from e

    def start(self) -> Endpoint:
        self.port = free_port()
        self.admin = "bench-admin-" + uuid.uuid4().hex
        argv = [self.binary, "serve", "--data", self.data, "--listen", f"127.0.0.1:{self.port}"]
        if self.database:
            argv += ["--database", self.database]
        self.spawn(argv, {"KOPA_ADMIN_TOKEN": self.admin, "RUST_LOG": "warn"})
        self.wait_ready(f"{self.base}/taxii2/", {"Authorization": f"Bearer {self.admin}"})
        org = self.cli("org", "add", "bench-org")
        user = self.cli("user", "add", "bench-analyst", "--org", str(org["name"]), "--role", "analyst")
        col = self.cli("collection", "add", "bench", "--read", "all", "--write", "all")
        headers = {"Authorization": f"Bearer {user['token']}"}
        endpoint = self.discover(headers, "bench")
        if str(col["id"]) not in endpoint.objects_url:
            raise BenchError(f"Kopa lists collection 'bench' under another id than {col['id']}")
        return endpoint


# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------


@dataclass
class Figure:
    size: int  # objects in the collection when measured
    rate: float | None = None  # objects/s
    objects: int = 0  # objects sent or received
    seconds: float = 0.0
    p50: float | None = None  # ms
    p99: float | None = None  # ms
    note: str = ""


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.limit = seconds

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise StepTimeout(f"not finished within {self.limit:.0f} s")
        return left


def request(session: requests.Session, method: str, url: str, deadline: Deadline, **kw):
    try:
        return session.request(method, url, timeout=(10, deadline.remaining()), **kw)
    except requests.Timeout as e:
        raise StepTimeout(f"not finished within {deadline.limit:.0f} s") from e


def step_post(ep: Endpoint, bodies: list[tuple[bytes, int]], deadline: Deadline,
              size: int) -> Figure:
    s = ep.session()
    headers = {"Content-Type": TAXII}
    pending: list[str] = []
    sent = failed = 0
    recent: list[float] = []
    t0 = time.perf_counter()
    for body, count in bodies:
        t = time.perf_counter()
        r = request(s, "POST", ep.objects_url, deadline, data=body, headers=headers)
        recent = (recent + [time.perf_counter() - t])[-5:]
        check(r, 202, "POST envelope")
        status = loads(r.content)
        failed += int(status.get("failure_count", 0))
        if status.get("status") != "complete":
            pending.append(status["id"])
        sent += count
        elapsed = time.perf_counter() - t0
        # An envelope only gets slower to store as a peer's collection grows, so the remaining
        # envelopes at the recent pace give a lower bound: stop early when even that overshoots.
        if elapsed > 20 and sent < size:
            projected = elapsed + (size - sent) / count * statistics.median(recent)
            if projected > 1.2 * deadline.limit:
                raise StepTimeout(f"projected to take at least {projected:.0f} s "
                                  f"(limit {deadline.limit:.0f} s) after {sent:,} objects")
    for sid in pending:  # an asynchronous server: wait until it says complete
        while True:
            r = request(s, "GET", ep.status_url.format(id=sid), deadline)
            check(r, 200, "GET status")
            st = loads(r.content)
            if st.get("status") == "complete":
                failed += int(st.get("failure_count", 0))
                break
            time.sleep(0.05)
    secs = time.perf_counter() - t0
    note = f"{failed} reported as failures" if failed else ""
    return Figure(size=size, rate=sent / secs, objects=sent, seconds=secs, note=note)


@dataclass
class Walk:
    objects: int = 0
    pages: int = 0
    seconds: float = 0.0
    lasts: list = field(default_factory=list)  # X-TAXII-Date-Added-Last of each page
    latencies: list = field(default_factory=list)  # seconds per page
    used_next: bool = False


def walk(session: requests.Session, url: str, params: dict, deadline: Deadline,
         limit: int = PAGE, max_pages: int | None = None) -> Walk:
    """Read pages until `more` is false: follow `next`, else `added_after` = Date-Added-Last."""
    w = Walk()
    query = {**params, "limit": str(limit)}
    t0 = time.perf_counter()
    while True:
        t = time.perf_counter()
        r = request(session, "GET", url, deadline, params=query)
        w.latencies.append(time.perf_counter() - t)
        check(r, 200, f"GET objects {query}")
        env = loads(r.content) if r.content.strip() else {}
        w.objects += len(env.get("objects", ()))
        w.pages += 1
        last = r.headers.get("X-TAXII-Date-Added-Last")
        w.lasts.append(last)
        if not env.get("more") or (max_pages and w.pages >= max_pages):
            break
        if env.get("next"):
            w.used_next = True
            query = {**params, "limit": str(limit), "next": env["next"]}
        elif last:
            query = {**params, "limit": str(limit), "added_after": last}
        else:
            raise BenchError("`more` is true but neither `next` nor X-TAXII-Date-Added-Last given")
    w.seconds = time.perf_counter() - t0
    return w


def step_read(ep: Endpoint, params: dict, deadline: Deadline, size: int,
              expect: int | None) -> tuple[Figure, Walk]:
    w = walk(ep.session(), ep.objects_url, params, deadline)
    note = "" if w.used_next or w.pages == 1 else "paged by added_after (no next)"
    if expect is not None and w.objects != expect:
        note = (note + "; " if note else "") + f"returned {w.objects:,} of {expect:,}"
    return Figure(size=size, rate=w.objects / w.seconds, objects=w.objects, seconds=w.seconds,
                  note=note), w


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[k]


def step_readers(ep: Endpoint, starts: list[str | None], deadline: Deadline, size: int,
                 readers: int, pages_each: int, limit: int) -> Figure:
    """Each reader walks the collection from its own starting point, pages_each pages."""

    def reader(i: int) -> tuple[list[float], int]:
        s = ep.session()
        start = starts[(i * len(starts)) // readers] if starts else None
        first = {"added_after": start} if start else {}
        lat: list[float] = []
        got = 0
        query = {**first, "limit": str(limit)}
        while len(lat) < pages_each:
            t = time.perf_counter()
            r = request(s, "GET", ep.objects_url, deadline, params=query)
            lat.append(time.perf_counter() - t)
            check(r, 200, "GET objects (concurrent reader)")
            env = loads(r.content) if r.content.strip() else {}
            got += len(env.get("objects", ()))
            last = r.headers.get("X-TAXII-Date-Added-Last")
            if env.get("more") and env.get("next"):  # `next` is resent with the same filters
                query = {**first, "limit": str(limit), "next": env["next"]}
            elif env.get("more") and last:
                first = {"added_after": last}
                query = {**first, "limit": str(limit)}
            else:  # end of the collection: start again from the beginning
                first = {}
                query = {"limit": str(limit)}
        return lat, got

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=readers) as pool:
        results = list(pool.map(reader, range(readers)))
    secs = time.perf_counter() - t0
    lat = sorted(x for r in results for x in r[0])
    got = sum(r[1] for r in results)
    return Figure(size=size, rate=got / secs, objects=got, seconds=secs,
                  p50=percentile(lat, 0.50) * 1000, p99=percentile(lat, 0.99) * 1000,
                  note=f"{len(lat)} requests of limit={limit}")


# ---------------------------------------------------------------------------------------------
# One server through all steps, with the size ladder for peers
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    how: str = ""
    figures: dict = field(default_factory=dict)  # step -> Figure
    failed: dict = field(default_factory=dict)  # step -> text (did not finish at any size)
    notes: list = field(default_factory=list)
    million: dict = field(default_factory=dict)
    unavailable: str = ""


def log(msg: str) -> None:
    print(msg, flush=True)


def run_server(make: Callable[[str], Server], name: str, sizes: list[int], bodies_for,
               args, workroot: str, after_all=None) -> Result:
    """Run every step at each size, smallest first, on a fresh server per size.

    A step that does not finish within the step limit keeps the figure of the largest size it did
    finish; it and the steps after it (which scan the same data and would only be slower) are not
    tried at larger sizes, so each size costs at most one timeout. POST alone keeps climbing.
    """
    res = Result(name=name)
    alive = list(STEPS)
    for size in sorted(sizes):
        if "post" not in alive:
            break
        workdir = tempfile.mkdtemp(prefix=f"{name.replace('/', '-')}-{size}-", dir=workroot)
        server = make(workdir)
        res.how = server.how
        log(f"-- {name}: {size:,} objects ({', '.join(alive)})")
        try:
            ep = server.start()
            try:
                fig = step_post(ep, bodies_for(size), Deadline(args.step_limit), size)
            except StepTimeout as e:
                log(f"   post: {e}")
                res.notes.append(f"post did not finish at {size:,} objects: {e}")
                alive.remove("post")
                continue
            res.figures["post"] = fig
            log(f"   post: {fig.rate:,.0f} objects/s ({fig.seconds:.1f} s)"
                f"{' ' + fig.note if fig.note else ''}")
            lasts: list = []
            steps = [s for s in STEPS[1:] if s in alive]
            for i, step in enumerate(steps):
                try:
                    if step == "read":
                        fig, w = step_read(ep, {}, Deadline(args.step_limit), size, size)
                        lasts = w.lasts
                    elif step == "type":
                        fig, _ = step_read(ep, {"match[type]": "relationship"},
                                           Deadline(args.step_limit), size, size // 3)
                    elif step == "after":
                        mid = lasts[len(lasts) // 2 - 1] if len(lasts) >= 2 else None
                        if not mid:  # one page holds it all: end of a half-size first page
                            r = ep.session().get(ep.objects_url, params={"limit": str(size // 2)},
                                                 timeout=args.step_limit)
                            check(r, 200, "GET objects (first half)")
                            mid = r.headers.get("X-TAXII-Date-Added-Last")
                        if not mid:
                            raise BenchError("no X-TAXII-Date-Added-Last to start in the middle")
                        fig, _ = step_read(ep, {"added_after": mid}, Deadline(args.step_limit),
                                           size, None)
                        fig.note = (fig.note + "; " if fig.note else "") + \
                            f"{fig.objects:,} objects after the middle"
                    else:
                        fig = step_readers(ep, lasts[:-1], Deadline(args.step_limit), size,
                                           args.readers, args.reader_pages, args.reader_limit)
                except StepTimeout as e:
                    later = steps[i + 1:]
                    log(f"   {step}: {e}" + (f"; {', '.join(later)} not tried at this size"
                                               if later else ""))
                    res.notes.append(f"{step} did not finish at {size:,} objects: {e}"
                                     + (f" ({', '.join(later)} then not tried at {size:,})"
                                        if later else ""))
                    for s in [step, *later]:
                        alive.remove(s)
                        res.failed.setdefault(s, f"at {size:,}")
                    break
                res.figures[step] = fig
                extra = f", p50 {fig.p50:.1f} ms, p99 {fig.p99:.1f} ms" if fig.p50 is not None else ""
                log(f"   {step}: {fig.rate:,.0f} objects/s ({fig.objects:,} in "
                    f"{fig.seconds:.2f} s{extra}){' ' + fig.note if fig.note else ''}")
            if after_all and size == max(sizes) and all(s in res.figures for s in STEPS):
                after_all(server, ep, res)
        except (BenchError, OSError, requests.RequestException) as e:
            res.notes.append(f"stopped at {size:,}: {e}")
            log(f"   !! {name}: {e}")
            break
        finally:
            server.stop()
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
    for step in STEPS:
        if step not in res.figures:
            res.failed.setdefault(step, "not reached")
        else:
            res.failed.pop(step, None)
    return res


def taxii_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def million_step(args, bodies_done: int):
    """Grow Kopa's collection to args.million objects; first page vs last page; peak memory."""

    def run(server: Server, ep: Endpoint, res: Result) -> None:
        total = args.million
        log(f"   million: growing the collection from {bodies_done:,} to {total:,} objects")
        s = ep.session()
        headers = {"Content-Type": TAXII}
        gen = generate_objects(total)
        for _ in range(bodies_done):
            next(gen)
        sent = 0
        post_secs = 0.0
        before_last = None
        deadline = Deadline(args.million_limit)
        for body, count in envelopes(gen):
            if sent + count >= total - bodies_done:
                before_last = taxii_now()  # the last envelope is dated after this (same clock)
            t = time.perf_counter()
            r = request(s, "POST", ep.objects_url, deadline, data=body, headers=headers)
            post_secs += time.perf_counter() - t
            check(r, 202, "POST envelope")
            st = loads(r.content)
            while st.get("status") != "complete":
                time.sleep(0.05)
                r = request(s, "GET", ep.status_url.format(id=st["id"]), deadline)
                check(r, 200, "GET status")
                st = loads(r.content)
            sent += count
        m = {"objects": total, "post_rate": sent / post_secs if post_secs else None}

        def median_ms(params: dict, what: str) -> tuple[float, int]:
            times, got = [], 0
            for _ in range(7):
                t = time.perf_counter()
                r = request(s, "GET", ep.objects_url, deadline, params={"limit": str(PAGE), **params})
                times.append(time.perf_counter() - t)
                check(r, 200, what)
                got = len(loads(r.content).get("objects", ()))
            return statistics.median(times) * 1000, got

        m["first_ms"], _ = median_ms({}, "GET first page")
        # The last page, reached directly: added_after = a moment before the last envelope's POST.
        m["last_ms"], m["last_objects"] = median_ms({"added_after": before_last}, "GET last page")
        mem = server.peak_memory_kib()
        if mem:
            m["vmhwm_mib"], m["vmrss_mib"] = mem[0] / 1024, mem[1] / 1024
        # The whole collection through the `next` chain: the read rate at this size, the last link.
        try:
            w = walk(s, ep.objects_url, {}, Deadline(args.step_limit))
            m["read_rate"] = w.objects / w.seconds
            m["read_objects"] = w.objects
            m["chain_first_ms"] = w.latencies[0] * 1000
            m["chain_last_ms"] = w.latencies[-1] * 1000
        except StepTimeout as e:
            res.notes.append(f"full read of {total:,} objects: {e}")
        res.million = m
        chain = (f"next chain: first {m['chain_first_ms']:.1f} ms, last {m['chain_last_ms']:.1f} ms; "
                 f"read {m['read_rate']:,.0f} objects/s" if "read_rate" in m else "full read did not finish")
        log(f"   million: POST {m['post_rate']:,.0f} objects/s; first page {m['first_ms']:.1f} ms, "
            f"last page {m['last_ms']:.1f} ms ({m['last_objects']} objects); {chain}; "
            f"peak RSS {m.get('vmhwm_mib', float('nan')):.0f} MiB")

    return run


# ---------------------------------------------------------------------------------------------
# PostgreSQL: a fresh database per run
# ---------------------------------------------------------------------------------------------


def pg_admin(url: str, sql: str) -> tuple[bool, str]:
    if not shutil.which("psql"):
        return False, "psql not found"
    try:
        r = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False, "psql timed out"
    return r.returncode == 0, (r.stderr or r.stdout).strip()


def with_database(url: str, db: str) -> str:
    p = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((p.scheme, p.netloc, "/" + db, p.query, p.fragment))


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def fmt_rate(fig: Figure | None, n: int) -> str:
    if fig is None or fig.rate is None:
        return "—"
    s = f"{fig.rate:,.0f}"
    if fig.size != n:
        s += f" (at {fig.size:,})"
    return s


def fmt_lat(fig: Figure | None, n: int) -> str:
    if fig is None or fig.p50 is None:
        return "—"
    s = f"{fig.p50:.1f} / {fig.p99:.1f}"
    if fig.size != n:
        s += f" (at {fig.size:,})"
    return s


def report(results: list[Result], args, n: int, started: dt.datetime, secs: float) -> str:
    names = [r.name for r in results]
    lines: list[str] = []
    head = "| step | " + " | ".join(names) + " |"
    lines += [head, "|" + "---|" * (len(names) + 1)]
    for step in STEPS:
        cells = []
        for r in results:
            if r.unavailable:
                cells.append("not measured")
            elif step in r.figures:
                cells.append(fmt_rate(r.figures[step], n))
            else:
                cells.append("did not finish" + (f" ({r.failed[step]})" if step in r.failed else ""))
        unit = "objects/s" if step != "readers" else "objects/s, all readers together"
        lines.append(f"| {STEP_TITLES[step]} ({unit}) | " + " | ".join(cells) + " |")
    cells = []
    for r in results:
        cells.append("not measured" if r.unavailable else fmt_lat(r.figures.get("readers"), n))
    lines.append("| 16 concurrent readers: p50 / p99 latency (ms) | " + " | ".join(cells) + " |")

    # Ratios Kopa / peer
    kopas = [r for r in results if r.name.startswith("Kopa") and not r.unavailable]
    peers = [r for r in results if not r.name.startswith("Kopa") and not r.unavailable]
    ratio_lines: list[str] = []
    if kopas and peers:
        cols = [f"{k.name} / {p.name}" for k in kopas for p in peers]
        ratio_lines += ["| step | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
        for step in STEPS + ["latency"]:
            cells = []
            for k in kopas:
                for p in peers:
                    kf = k.figures.get("readers" if step == "latency" else step)
                    pf = p.figures.get("readers" if step == "latency" else step)
                    if not kf or not pf:
                        cells.append("—")
                        continue
                    if step == "latency":
                        val = pf.p50 / kf.p50 if kf.p50 else None
                    else:
                        val = kf.rate / pf.rate if pf.rate else None
                    cell = "—" if val is None else f"{val:,.1f}×"
                    if pf.size != kf.size and val is not None:
                        cell += f" (peer at {pf.size:,})"
                    cells.append(cell)
            title = "p50 latency (peer ÷ Kopa)" if step == "latency" else STEP_TITLES[step]
            ratio_lines.append(f"| {title} | " + " | ".join(cells) + " |")

    million_lines: list[str] = []
    for k in kopas:
        m = k.million
        if not m:
            continue
        read = f"{m['read_rate']:,.0f}" if "read_rate" in m else "did not finish"
        chain = (f"{m['chain_first_ms']:.1f} / {m['chain_last_ms']:.1f} ms"
                 if "chain_first_ms" in m else "—")
        million_lines.append(
            f"| {k.name} | {m['post_rate']:,.0f} | {read} | {m['first_ms']:.1f} ms | "
            f"{m['last_ms']:.1f} ms ({m['last_objects']:,} objects) | {chain} | "
            f"{m.get('vmhwm_mib', float('nan')):.0f} MiB |")

    targets: list[str] = []
    for k in kopas:
        def ratio(step, peer):
            p = next((r for r in peers if r.name == peer), None)
            kf, pf = k.figures.get(step), p.figures.get(step) if p else None
            return (kf.rate / pf.rate, pf.size) if kf and pf and pf.rate else (None, None)

        for peer, want in (("medallion", 50), ("OpenTAXII", 500)):
            val, size = ratio("post", peer)
            if val is not None:
                ok = "met" if val >= want else "NOT met"
                at = f", {peer} at {size:,} objects" if size != n else ""
                targets.append(f"- {k.name}: POST ≥ {want}× {peer}: {val:,.1f}× — {ok}{at}")
        rf = k.figures.get("read")
        if rf:
            ok = "met" if rf.rate >= 100_000 else "NOT met"
            targets.append(f"- {k.name}: full read ≥ 100,000 objects/s: {rf.rate:,.0f} — {ok}")
        m = k.million
        if m and m.get("last_ms") is not None:
            ok = "met" if m["last_ms"] <= 1.5 * m["first_ms"] else "NOT met"
            targets.append(f"- {k.name}: last page of {m['objects']:,} as fast as the first: "
                           f"{m['last_ms']:.1f} ms vs {m['first_ms']:.1f} ms — {ok} "
                           f"(counted as met within 1.5×)")
        if m and "vmhwm_mib" in m:
            ok = "met" if m["vmhwm_mib"] < 300 else "NOT met"
            targets.append(f"- {k.name}: server peak memory with {m['objects']:,} stored < 300 MB: "
                           f"{m['vmhwm_mib']:.0f} MiB — {ok}")

    out = []
    out.append(f"Objects per server: {n:,} (2/3 indicators, 1/3 relationships; seed {SEED}); "
               f"step limit {args.step_limit:.0f} s; peers tried at {', '.join(f'{s:,}' for s in sorted(args.sizes))} objects.")
    out.append("")
    out += lines
    if ratio_lines:
        out += ["", "Ratios (Kopa ÷ peer for objects/s; peer ÷ Kopa for latency):", ""] + ratio_lines
    if million_lines:
        out += ["", f"Kopa with a {args.million:,}-object collection:", "",
                f"| server | POST objects/s (growing to {args.million:,}) | read all objects/s "
                "| first page (median of 7) | last page by added_after (median of 7) "
                "| next chain: first / last page | peak RSS (VmHWM) |",
                "|---|---|---|---|---|---|---|"] + million_lines
    if targets:
        out += ["", "Targets:", ""] + targets
    notes = []
    for r in results:
        if r.unavailable:
            notes.append(f"- {r.name}: not measured — {r.unavailable}")
            continue
        notes.append(f"- {r.name}: {r.how}")
        for step, fig in r.figures.items():
            if fig.note:
                notes.append(f"  - {step}: {fig.note}")
        for step, why in r.failed.items():
            if why == "not reached":
                notes.append(f"  - {step}: not reached")
        for note in r.notes:
            notes.append(f"  - {note}")
    out += ["", "Servers and notes:", ""] + notes
    out += ["", f"Run {started:%Y-%m-%d %H:%M} UTC, {secs / 60:.1f} minutes; "
            f"{os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}; "
            f"load average (1 min) {args.load_start:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end (other work on the machine shares its 2 cores)."]
    return "\n".join(out)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10,000 objects, no million step")
    ap.add_argument("--objects", type=int, help="objects per server (default 100,000; 10,000 with --quick)")
    ap.add_argument("--step-limit", type=float, default=300.0, help="seconds a step may take (300)")
    ap.add_argument("--million", type=int, help="Kopa's large collection (default 1,000,000; 0 = skip)")
    ap.add_argument("--million-limit", type=float, default=1200.0,
                    help="seconds for growing the large collection and its page reads (1200)")
    ap.add_argument("--million-pg", action="store_true",
                    help="also grow Kopa/PG to the large size (default: Kopa/SQLite only)")
    ap.add_argument("--readers", type=int, default=16)
    ap.add_argument("--reader-pages", type=int, default=25, help="pages each concurrent reader fetches")
    ap.add_argument("--reader-limit", type=int, default=100, help="page size of the concurrent readers")
    ap.add_argument("--only", default="", help="comma-separated servers: medallion,opentaxii,kopa,kopa-pg")
    ap.add_argument("--no-kopa", action="store_true")
    ap.add_argument("--kopa-bin")
    ap.add_argument("--kopa-unavailable", default="")
    ap.add_argument("--pg-url", default=os.environ.get(
        "KOPA_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--keep", action="store_true", help="keep the servers' work directories")
    ap.add_argument("--results", help="write the report here (full runs only)")
    ap.add_argument("--command", default="bench/taxii-vs-peers/run")
    args = ap.parse_args()

    n = args.objects or (10_000 if args.quick else 100_000)
    if args.million is None:
        args.million = 0 if args.quick else 1_000_000
    args.sizes = sorted({n, *[s for s in (10_000, 2_000, 1_000) if s < n]}, reverse=True)
    only = {s.strip().lower() for s in args.only.split(",") if s.strip()}
    venv_bin = os.path.dirname(sys.executable)
    args.load_start = os.getloadavg()[0]
    if args.kopa_bin:
        args.kopa_bin = os.path.abspath(args.kopa_bin)
    started = dt.datetime.now(dt.timezone.utc)
    t_start = time.monotonic()

    log(f"== generating {n:,} objects (seed {SEED}) and serialising envelopes of {ENVELOPE:,}")
    all_objects = list(generate_objects(n))
    cache: dict[int, list] = {}

    def bodies_for(size: int) -> list[tuple[bytes, int]]:
        if size not in cache:
            cache[size] = list(envelopes(iter(all_objects[:size])))
        return cache[size]

    bodies_for(n)
    workroot = tempfile.mkdtemp(prefix="kopa-taxii-bench-")
    results: list[Result] = []
    try:
        if not only or "medallion" in only:
            results.append(run_server(lambda d: Medallion(venv_bin, d), "medallion",
                                      args.sizes, bodies_for, args, workroot))
        if not only or "opentaxii" in only:
            results.append(run_server(lambda d: OpenTaxii(venv_bin, d), "OpenTAXII",
                                      args.sizes, bodies_for, args, workroot))
        kopa_unavailable = args.kopa_unavailable or ("--no-kopa given" if args.no_kopa else "")
        if not kopa_unavailable and not args.kopa_bin:
            kopa_unavailable = "no --kopa-bin given"
        if not kopa_unavailable and not os.access(args.kopa_bin, os.X_OK):
            kopa_unavailable = f"{args.kopa_bin} is not an executable"
        million = million_step(args, n) if args.million > n else None
        if not only or "kopa" in only:
            if kopa_unavailable:
                results.append(Result(name="Kopa/SQLite", unavailable=kopa_unavailable))
            else:
                results.append(run_server(lambda d: Kopa(venv_bin, d, args.kopa_bin, None),
                                          "Kopa/SQLite", [n], bodies_for, args, workroot, million))
        if not only or "kopa-pg" in only:
            if kopa_unavailable:
                results.append(Result(name="Kopa/PG", unavailable=kopa_unavailable))
            else:
                db = f"kopa_bench_{uuid.uuid4().hex[:12]}"
                ok, msg = pg_admin(args.pg_url, f'CREATE DATABASE "{db}"')
                if not ok:
                    log(f"-- Kopa/PG skipped: PostgreSQL at {args.pg_url} unreachable ({msg})")
                    results.append(Result(name="Kopa/PG",
                                          unavailable=f"PostgreSQL unreachable: {msg}"))
                else:
                    try:
                        url = with_database(args.pg_url, db)
                        results.append(run_server(lambda d: Kopa(venv_bin, d, args.kopa_bin, url),
                                                  "Kopa/PG", [n], bodies_for, args, workroot,
                                                  million if args.million_pg else None))
                    finally:
                        ok, msg = pg_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                        if not ok:
                            log(f"!! could not drop database {db}: {msg}")
    finally:
        if not args.keep:
            shutil.rmtree(workroot, ignore_errors=True)

    secs = time.monotonic() - t_start
    text = report(results, args, n, started, secs)
    print()
    print(text)
    if args.results and not args.quick and not args.only and args.objects in (None, 100_000):
        with open(args.results, "w") as f:
            f.write("# TAXII 2.1 benchmark: Kopa against medallion and OpenTAXII\n\n")
            f.write(f"Command: `{args.command.strip()}`  \nDate: {started:%Y-%m-%d %H:%M} UTC\n\n")
            f.write(text + "\n")
        log(f"\nwrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
