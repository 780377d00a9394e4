"""The admin CLI forms that scripts rely on, against a running node on SQLite (`--data DIR`) and on
PostgreSQL (`--database URL`), checked end to end over HTTP: a new user's token works at once, a revoked
token gets 401, and collection lists decide `can_read`/`can_write`.
"""

import sqlite3
import subprocess

import pytest
import requests

from conftest import TAXII, backend_params, make_node


@pytest.fixture(params=backend_params())
def node(request, tmp_path):
    n = make_node(tmp_path, request.param)
    n.start()
    try:
        yield n
    finally:
        n.close()


def discovery(node, auth):
    return requests.get(node.url + "/taxii2/", auth=auth, headers={"Accept": TAXII})


def test_admin_forms_end_to_end(node):
    shown = node.cli("node", "show")
    assert shown["name"] == "interop" and shown["id"]

    org = node.cli("org", "add", "Ministry C")
    assert set(org) >= {"id", "name"} and org["name"] == "Ministry C"
    dup = node.cli("org", "add", "Ministry C", check=False)
    assert "already exists" in dup["error"]

    user = node.cli("user", "add", "mona", "--org", "Ministry C")
    assert (user["name"], user["org"], user["role"]) == ("mona", "Ministry C", "reader")
    assert discovery(node, ("mona", user["token"])).status_code == 200
    unknown = node.cli("user", "add", "x", "--org", "No Such Org", check=False)
    assert "No Such Org" in unknown["error"]

    # Mona makes a second token for herself; the operator cannot make one for her.
    refused = node.cli("token", "add", "mona", check=False)
    assert "a token is made only by its own user" in refused["error"]
    r = requests.post(f"{node.url}/api/users/mona/tokens", auth=("mona", user["token"]))
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["user"] == "mona" and second["token"].startswith(f"kopa_{second['id']}_")
    assert discovery(node, ("mona", second["token"])).status_code == 200
    assert node.cli("token", "revoke", second["id"]) == {"id": second["id"], "revoked": True}
    r = discovery(node, ("mona", second["token"]))
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    # The first token still works; a token under another user's name does not.
    assert discovery(node, ("mona", user["token"])).status_code == 200
    assert discovery(node, ("admin", user["token"])).status_code == 401
    # Mona lost her token: the operator enrols her again; her old token stops working, the code
    # works once, and she sees who enrolled her.
    code = node.cli("user", "enrol", "mona")["code"]
    assert discovery(node, ("mona", user["token"])).status_code == 401
    r = requests.post(f"{node.url}/api/enrol", json={"user": "mona", "code": code})
    assert r.status_code == 201, r.text
    user["token"] = r.json()["token"]
    assert requests.post(f"{node.url}/api/enrol", json={"user": "mona", "code": code}).status_code == 401
    me = requests.get(f"{node.url}/api/me", auth=("mona", user["token"])).json()
    assert [e["issued_by"] for e in me["enrolments"]] == ["cli"] and me["enrolments"][0]["redeemed_at"]

    col = node.cli("collection", "add", "Ministry feed", "--alias", "min", "--description", "d",
                   "--read", "all", "--write", "Ministry C")
    assert set(col) >= {"id", "title"} and col["title"] == "Ministry feed"
    listed = {c["id"]: c for c in node.cli("collection", "list")["collections"]}
    assert listed[col["id"]]["read"] == "all" and listed[col["id"]]["write"] == ["Ministry C"]
    r = requests.get(f"{node.api_root}collections/{col['id']}/", auth=("mona", user["token"]),
                     headers={"Accept": TAXII})
    assert r.status_code == 200
    assert r.json()["can_read"] is True and r.json()["can_write"] is True

    users = {u["name"]: u for u in node.cli("user", "list")["users"]}
    assert users["admin"]["role"] == "admin" and users["mona"]["org"] == "Ministry C"
    assert {"Ministry C", "interop"} <= {o["name"] for o in node.cli("org", "list")["organisations"]}

    verified = node.cli("audit", "verify")
    # node.init, org.add, user.add, token.add, token.revoke, user.enrol, user.enrolled, collection.add;
    # one signed checkpoint, made at the start.
    assert verified["ok"] is True and verified["entries"] == 8, verified
    assert verified["checkpoints"] == 1 and verified["last_good_checkpoint"]["seq"] == 1, verified


def test_audit_verify_names_a_tampered_entry(node):
    for name in ["Org 1", "Org 2", "Org 3"]:
        node.cli("org", "add", name)
    verified = node.cli("audit", "verify")
    assert verified["ok"] is True and verified["entries"] == 4, verified
    # Change entry 3 behind Kopa's back, directly in the database.
    sql = "UPDATE audit SET target = 'Org X' WHERE seq = 3"
    if node.pg:
        subprocess.run(["psql", node.pg.url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                       capture_output=True)
    else:
        db = sqlite3.connect(f"{node.data}/kopa.db")
        with db:
            db.execute(sql)
        db.close()
    broken = node.cli("audit", "verify", check=False)
    assert broken["ok"] is False and broken["broken_at"] == 3 and broken["entries"] == 2
    assert broken["action"] == "org.add" and "hash" in broken["reason"]


def test_admin_token_from_a_file(tmp_path):
    n = make_node(tmp_path, "sqlite")
    secret = tmp_path / "admin-token"
    secret.write_text("a-token-kept-in-a-secret-file\n")
    del n.env["KOPA_ADMIN_TOKEN"]
    n.env["KOPA_ADMIN_TOKEN_FILE"] = str(secret)
    n.start()
    try:
        r = requests.get(n.url + "/taxii2/", headers={
            "Accept": TAXII, "Authorization": "Bearer a-token-kept-in-a-secret-file"})
        assert r.status_code == 200, r.text
        r = requests.get(n.url + "/taxii2/", headers={"Accept": TAXII, "Authorization": "Bearer wrong"})
        assert r.status_code == 401
    finally:
        n.close()
    # Nothing was printed: the token came from the file.
    assert "administrator token" not in n.read_log()
