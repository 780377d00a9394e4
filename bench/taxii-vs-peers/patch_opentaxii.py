"""Patch the installed OpenTAXII 0.9.3 so its TAXII 2.1 endpoints can serialise UUIDs.

OpenTAXII 0.9.3 keeps api-root, collection and job ids as `uuid.UUID` and hands them to
`json.dumps`, so `GET {api-root}/collections/` (and every other 2.1 response carrying such an id)
fails with "Object of type UUID is not JSON serializable" (upstream issue #243). Upstream fixed it
later (pull request #289) with a JSON encoder that turns a UUID into its string when the TAXII 2
response is made. This applies the same change to the installed copy; running it again is a no-op.
"""

import pathlib
import sys

import opentaxii.taxii2.http as target

MARKER = "class UuidJSONEncoder"
ENCODER = '''


class UuidJSONEncoder(json.JSONEncoder):
    """JSON encoder that writes a UUID as its string form (as upstream OpenTAXII does since #289)."""

    def default(self, o):
        if isinstance(o, uuid.UUID):
            return str(o)
        return super().default(o)'''


def main() -> int:
    path = pathlib.Path(target.__file__)
    text = path.read_text()
    if MARKER in text:
        print(f"OpenTAXII UUID patch already applied: {path}")
        return 0
    old_call = "data = json.dumps(data)"
    old_import = "import json\n"
    if text.count(old_call) != 1 or text.count(old_import) != 1:
        print(f"error: {path} does not look like OpenTAXII 0.9.3's taxii2/http.py; not patched",
              file=sys.stderr)
        return 1
    text = text.replace(old_import, "import json\nimport uuid\n", 1)
    text = text.replace(old_call, "data = json.dumps(data, cls=UuidJSONEncoder)", 1)
    head, sep, rest = text.partition("\n\n\ndef make_taxii2_response")
    if not sep:
        print(f"error: make_taxii2_response not found in {path}; not patched", file=sys.stderr)
        return 1
    text = head + ENCODER + sep + rest
    path.write_text(text)
    for cached in path.parent.glob("__pycache__/http.*.pyc"):
        cached.unlink()
    print(f"OpenTAXII UUID patch applied: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
