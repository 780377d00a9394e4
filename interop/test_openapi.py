"""The REST API against its own OpenAPI document, with schemathesis (pinned in requirements.txt): on a
running node of each backend, generated requests (bounded examples, a fixed seed) must never get a 5xx,
and every response must match what the document says of its status, content type, headers and body.

The enrolment route is left out: an administrator enrolling itself revokes its own token, which would
end the run (that route is tested in the Rust suite)."""

import os
import subprocess
import sys

import pytest

from conftest import ADMIN_TOKEN, backend_params, make_node

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])


@pytest.mark.parametrize("backend", backend_params())
def test_rest_api_matches_its_openapi_document(backend, tmp_path):
    node = make_node(tmp_path, backend)
    node.start()
    try:
        node.cli("org", "add", "Schema Org")
        st = os.path.join(os.path.dirname(sys.executable), "st")
        run = subprocess.run(
            [st, "run", f"{node.url}/api/openapi.json",
             "-H", f"Authorization: Bearer {ADMIN_TOKEN}",
             "--checks", CHECKS,
             "--exclude-path", "/api/users/{name}/enrolment",
             "--max-examples", "40", "--seed", "1", "--no-color"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert " passed" in run.stdout, run.stdout[-2000:]
    finally:
        node.close()
