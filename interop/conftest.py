"""Shared fixtures for interop tests: the kopa binary and a running node on a free loopback port.

`KOPA_BIN` names the binary (scripts/test builds target/release/kopa and sets it). A node is a real
`kopa serve` process with a temporary data directory (SQLite) or a freshly created PostgreSQL database
(when `KOPA_TEST_PG_URL` is set; each node gets its own randomly named database, dropped afterwards).
Organisations, users and collections are made with the admin CLI and `--json`, as scripts would.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse

import pytest
import requests

ADMIN_TOKEN = "interop-admin-token-" + "0123456789abcdef"
TAXII = "application/taxii+json;version=2.1"


def kopa_binary():
    path = os.environ.get("KOPA_BIN")
    if not path:
        pytest.skip("KOPA_BIN is not set: build kopa and point KOPA_BIN at it (scripts/test does)")
    if not os.access(path, os.X_OK):
        pytest.fail(f"KOPA_BIN={path} is not an executable file")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_url():
    """The PostgreSQL server URL for tests, or '' when PostgreSQL tests are skipped."""
    return os.environ.get("KOPA_TEST_PG_URL", "").strip()


class PgDatabase:
    """A randomly named PostgreSQL database, created with psql and dropped at the end."""

    def __init__(self, base_url):
        if not shutil.which("psql"):
            pytest.skip("psql is not installed: PostgreSQL interop tests need it to create a database")
        self.base = base_url
        self.name = "kopa_it_" + secrets.token_hex(6)
        self._psql(f'CREATE DATABASE "{self.name}"')
        parts = urllib.parse.urlsplit(base_url)
        self.url = urllib.parse.urlunsplit(parts._replace(path="/" + self.name))

    def _psql(self, sql):
        subprocess.run(["psql", self.base, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       check=True, capture_output=True, timeout=60)

    def drop(self):
        self._psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Node:
    """A `kopa serve` process and the admin CLI against the same store."""

    def __init__(self, tmp_dir, backend="sqlite", env=None):
        self.bin = kopa_binary()
        self.data = os.path.join(tmp_dir, "data")
        self.backend = backend
        self.pg = PgDatabase(pg_url()) if backend == "postgres" else None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_root = self.url + "/kopa/"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KOPA_")}
        self.env.update({"KOPA_ADMIN_TOKEN": ADMIN_TOKEN, "KOPA_LOG": "warn",
                         "KOPA_NODE__NAME": "interop"})
        self.env.update(env or {})
        self.proc = None
        self.log_path = os.path.join(tmp_dir, "serve.log")

    def store_args(self):
        if self.pg:
            # The data directory still holds the node's own files (its key) beside PostgreSQL.
            return ["--database", self.pg.url, "--data", self.data]
        return ["--data", self.data]

    def start(self, timeout=30):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.bin, "serve", "--listen", f"127.0.0.1:{self.port}", *self.store_args()],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kopa serve exited with {self.proc.returncode}: {self.read_log()}")
            try:
                r = requests.get(self.url + "/healthz", timeout=1)
                if r.status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"kopa serve did not answer within {timeout}s: {self.read_log()}")

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def stop(self, sig=signal.SIGTERM):
        """Stop the server; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        self.log.close()
        return code

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def cli(self, *args, check=True):
        """Run an admin command with --json; returns its one JSON object."""
        r = subprocess.run([self.bin, *args, *self.store_args(), "--json"], env=self.env,
                           capture_output=True, text=True, timeout=60)
        lines = r.stdout.strip().splitlines()
        assert len(lines) == 1, f"{args}: one JSON line expected on stdout, got {r.stdout!r} {r.stderr!r}"
        out = json.loads(lines[0])
        if check:
            assert r.returncode == 0, f"{args} failed: {out} {r.stderr}"
        return out

    def close(self):
        self.stop()
        if self.pg:
            self.pg.drop()


def backend_params():
    return [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres")]


def make_node(tmp_dir, backend, env=None):
    if backend == "postgres" and not pg_url():
        pytest.skip("KOPA_TEST_PG_URL is empty: the PostgreSQL run of this test is skipped")
    return Node(str(tmp_dir), backend, env)


class World:
    """A started node with two organisations, three users and two collections."""

    def __init__(self, node):
        self.node = node
        self.org_a = node.cli("org", "add", "Bank A")
        self.org_b = node.cli("org", "add", "CSIRT B")
        self.alice = node.cli("user", "add", "alice", "--org", "Bank A", "--role", "analyst")
        self.bob = node.cli("user", "add", "bob", "--org", "CSIRT B")
        self.carol = node.cli("user", "add", "carol", "--org", "CSIRT B", "--role", "analyst")
        self.shared = node.cli("collection", "add", "Shared", "--alias", "shared",
                               "--description", "Bank A writes, both read",
                               "--read", "Bank A,CSIRT B", "--write", "Bank A")
        self.b_only = node.cli("collection", "add", "B only", "--read", "CSIRT B",
                               "--write", "CSIRT B")

    def auth(self, user):
        return (user["name"], user["token"])


@pytest.fixture(scope="module", params=backend_params())
def world(request, tmp_path_factory):
    """A running node (SQLite, then PostgreSQL) populated through the CLI."""
    node = make_node(tmp_path_factory.mktemp("node"), request.param,
                     env={"KOPA_TAXII__MAX_CONTENT_LENGTH": str(1024 * 1024)})
    node.start()
    try:
        yield World(node)
    finally:
        code = node.stop()
        if node.pg:
            node.pg.drop()
        assert code == 0, f"kopa serve did not stop cleanly on SIGTERM: {node.read_log()}"


@pytest.fixture(scope="module", params=backend_params())
def match_world(request, tmp_path_factory):
    """A World on a node that serves pages of 7 objects and accepts bodies of at most 1024 bytes (so
    that TAXII clients page and split envelopes), with one more collection, "Drop box", that Bank A
    writes and only CSIRT B reads."""
    node = make_node(tmp_path_factory.mktemp("node"), request.param,
                     env={"KOPA_TAXII__PAGE_SIZE": "7", "KOPA_TAXII__MAX_CONTENT_LENGTH": "1024"})
    node.start()
    try:
        world = World(node)
        world.drop_box = node.cli("collection", "add", "Drop box", "--read", "CSIRT B",
                                  "--write", "Bank A")
        yield world
    finally:
        code = node.stop()
        if node.pg:
            node.pg.drop()
        assert code == 0, f"kopa serve did not stop cleanly on SIGTERM: {node.read_log()}"
