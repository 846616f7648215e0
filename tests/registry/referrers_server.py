"""A small in-memory registry that implements the OCI 1.1 referrers API.

Debian's docker-registry (Distribution 2.8) predates the referrers API, so
the tests need a registry that has it to prove the client does *not* write
the fallback tag there. Written from the OCI distribution spec 1.1: blob
HEAD/GET and POST+PUT uploads (monolithic and PATCH chunks), manifest
PUT/GET/HEAD by tag or digest, ``OCI-Subject`` on a PUT of a manifest with
a ``subject``, and ``GET /v2/<name>/referrers/<digest>`` answering an index
of descriptors (``artifactType`` and annotations copied from each manifest).
Every request is recorded, so a test can assert which tags were written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_PATH = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>blobs|manifests|referrers)/(?P<ref>[^/]+)$")
_UPLOADS = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]*)$")


class ReferrersRegistry:
    """``whole_posts``: also take a blob in one ``POST ?digest=`` (the spec's optional route)."""

    def __init__(self, *, whole_posts: bool = False) -> None:
        self.whole_posts = whole_posts
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}  # (name, digest)
        self.tags: dict[tuple[str, str], str] = {}  # (name, tag) -> digest
        self.uploads: dict[str, bytearray] = {}
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.host = f"127.0.0.1:{self._server.server_address[1]}"

    @contextlib.contextmanager
    def running(self):
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()

    def tags_of(self, name: str) -> list[str]:
        return sorted(t for n, t in self.tags if n == name)

    def referrers(self, name: str, subject: str) -> dict:
        found = []
        for (repo, digest), (media_type, body) in sorted(self.manifests.items()):
            doc = json.loads(body)
            if repo != name or (doc.get("subject") or {}).get("digest") != subject:
                continue
            desc = {"mediaType": media_type, "digest": digest, "size": len(body)}
            artifact = doc.get("artifactType") or doc.get("config", {}).get("mediaType")
            desc["artifactType"] = artifact
            if doc.get("annotations"):
                desc["annotations"] = doc["annotations"]
            found.append(desc)
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}

    def _handler(self):
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self):
                registry.requests.append(("GET", self.path))
                url = urlsplit(self.path)
                if url.path == "/v2/":
                    return self._reply(200, b"{}")
                match = _PATH.match(url.path)
                if not match:
                    return self._reply(404)
                name, kind, ref = match["name"], match["kind"], match["ref"]
                if kind == "referrers":
                    body = json.dumps(registry.referrers(name, ref)).encode()
                    return self._reply(200, body, {"Content-Type": OCI_INDEX})
                if kind == "blobs":
                    data = registry.blobs.get(ref)
                    return self._reply(200, data) if data is not None else self._reply(404)
                digest = registry.tags.get((name, ref), ref)
                found = registry.manifests.get((name, digest))
                if found is None:
                    return self._reply(404)
                headers = {"Content-Type": found[0], "Docker-Content-Digest": digest}
                return self._reply(200, found[1], headers)

            do_HEAD = do_GET

            def do_POST(self):
                registry.requests.append(("POST", self.path))
                body = self._body()
                url = urlsplit(self.path)
                digest = parse_qs(url.query).get("digest", [""])[0]
                name = _UPLOADS.match(url.path)["name"]
                if registry.whole_posts and digest:
                    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
                        return self._reply(400)
                    registry.blobs[digest] = body
                    location = f"/v2/{name}/blobs/{digest}"
                    return self._reply(201, headers={"Location": location})
                upload = uuid.uuid4().hex
                registry.uploads[upload] = bytearray()
                location = f"/v2/{name}/blobs/uploads/{upload}"
                return self._reply(202, headers={"Location": location, "Range": "0-0"})

            def do_PATCH(self):
                registry.requests.append(("PATCH", self.path))
                url = urlsplit(self.path)
                buffer = registry.uploads[_UPLOADS.match(url.path)["id"]]
                buffer += self._body()
                self._reply(202, headers={"Location": url.path, "Range": f"0-{len(buffer) - 1}"})

            def do_PUT(self):
                registry.requests.append(("PUT", self.path))
                url = urlsplit(self.path)
                body = self._body()
                upload = _UPLOADS.match(url.path)
                if upload:
                    data = bytes(registry.uploads.pop(upload["id"]) + body)
                    digest = parse_qs(url.query)["digest"][0]
                    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                        return self._reply(400)
                    registry.blobs[digest] = data
                    return self._reply(201, headers={"Docker-Content-Digest": digest})
                match = _PATH.match(url.path)
                name, ref = match["name"], match["ref"]
                digest = "sha256:" + hashlib.sha256(body).hexdigest()
                registry.manifests[(name, digest)] = (self.headers["Content-Type"], body)
                if not ref.startswith("sha256:"):
                    registry.tags[(name, ref)] = digest
                headers = {"Docker-Content-Digest": digest}
                subject = (json.loads(body).get("subject") or {}).get("digest")
                if subject:
                    headers["OCI-Subject"] = subject
                return self._reply(201, headers=headers)

        return Handler
