"""A stand-in for the Hugging Face Hub's dataset endpoints, on loopback, for huggingface_hub's real code.

It serves what `HfApi.create_repo`, `upload_folder` (the card's YAML check, preupload, the Git LFS batch API with basic transfers, the
uploads, the commit; the tree listing its delete_patterns needs) and `snapshot_download` (repo info, the tree, the
resolve endpoint) send, with the headers the client reads (X-Repo-Commit, ETag). Repositories live in memory: each
commit a map path → blob. Not served: Xet storage (hf_xet's CAS protocol, which huggingface_hub uses to upload
when hf_xet is installed and HF_HUB_DISABLE_XET is unset; a download uses it only when the Hub names a Xet hash,
which this server never does), pull requests, pagination of large trees, model and space repositories.

Every request that needs a token is refused without `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


class Hub:
    def __init__(self, token: str):
        self.token = token
        self.blobs: dict[str, bytes] = {}                  # sha256 → bytes (LFS objects and regular files)
        self.repos: dict[str, list[tuple[str, dict[str, str]]]] = {}   # repo → [(commit, {path: sha256})]
        self.requests: list[str] = []                       # "METHOD path", for the tests to read
        self.lock = threading.Lock()

    def head(self, repo: str, revision: str) -> tuple[str, dict[str, str]] | None:
        commits = self.repos.get(repo)
        if not commits:
            return None
        if revision == "main":
            return commits[-1]
        return next((c for c in commits if c[0] == revision), None)


def serve(token: str) -> tuple[ThreadingHTTPServer, Hub]:
    hub = Hub(token)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _reply(self, status: int, body: bytes | dict | list = b"", headers: dict | None = None) -> None:
            if not isinstance(body, bytes):
                body = json.dumps(body).encode()
                headers = {"Content-Type": "application/json", **(headers or {})}
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {hub.token}":
                return True
            self._reply(401, {"error": "Invalid credentials"}, {"X-Error-Code": "InvalidCredentials"})
            return False

        def _route(self) -> None:
            path = unquote(urlsplit(self.path).path)
            with hub.lock:
                hub.requests.append(f"{self.command} {path}")
            for method, pattern, handler in ROUTES:
                match = re.fullmatch(pattern, path)
                if match and method == self.command:
                    return handler(self, *match.groups())
            self._reply(404, {"error": f"no route {self.command} {path}"})

        do_GET = do_HEAD = do_POST = do_PUT = _route

        # ---- repositories and commits ----

        def post_create(self) -> None:
            if not self._authorised():
                return
            request = json.loads(self._body())
            repo = f"{request['organization']}/{request['name']}"
            with hub.lock:
                if repo in hub.repos:
                    return self._reply(409, {"error": "You already created this dataset repo", "url": self._url(repo)})
                hub.repos[repo] = [(_commit_id(repo, 0, {}), {})]
            self._reply(200, {"url": self._url(repo), "name": repo})

        def post_preupload(self, repo: str, revision: str) -> None:
            if not self._authorised():
                return
            files = json.loads(self._body())["files"]
            self._reply(200, {"files": [{"path": f["path"], "uploadMode": "lfs", "shouldIgnore": False} for f in files]})

        def post_lfs_batch(self, repo: str) -> None:
            if not self._authorised():
                return
            request = json.loads(self._body())
            objects = []
            for obj in request["objects"]:
                entry = {"oid": obj["oid"], "size": obj["size"]}
                if obj["oid"] not in hub.blobs:
                    entry["actions"] = {"upload": {"href": f"{self._base()}/lfs-upload/{obj['oid']}", "header": {}}}
                objects.append(entry)
            self._reply(200, {"transfer": "basic", "objects": objects})

        def put_lfs_upload(self, oid: str) -> None:
            data = self._body()
            if hashlib.sha256(data).hexdigest() != oid:
                return self._reply(400, {"error": "sha256 mismatch"})
            with hub.lock:
                hub.blobs[oid] = data
            self._reply(200)

        def post_commit(self, repo: str, revision: str) -> None:
            if not self._authorised():
                return
            lines = [json.loads(line) for line in self._body().decode().splitlines() if line.strip()]
            with hub.lock:
                head = hub.head(repo, revision)
                if head is None:
                    return self._reply(404, {"error": f"revision {revision} not found"}, {"X-Error-Code": "RevisionNotFound"})
                files = dict(head[1])
                for line in lines:
                    key, value = line["key"], line["value"]
                    if key == "file":
                        data = base64.b64decode(value["content"])
                        hub.blobs[hashlib.sha256(data).hexdigest()] = data
                        files[value["path"]] = hashlib.sha256(data).hexdigest()
                    elif key == "lfsFile":
                        if value["oid"] not in hub.blobs:
                            return self._reply(422, {"error": f"LFS object {value['oid']} was never uploaded"})
                        files[value["path"]] = value["oid"]
                    elif key == "deletedFile":
                        files.pop(value["path"], None)
                commit = _commit_id(repo, len(hub.repos[repo]), files)
                hub.repos[repo].append((commit, files))
            self._reply(200, {"commitUrl": f"{self._url(repo)}/commit/{commit}", "commitOid": commit})

        def post_validate_yaml(self) -> None:
            """The card's header must parse as a YAML mapping (the real Hub also checks known fields' values)."""
            import yaml

            content = json.loads(self._body())["content"]
            header = content.split("---\n")[1] if content.startswith("---\n") else ""
            try:
                ok = isinstance(yaml.safe_load(header), dict)
            except yaml.YAMLError:
                ok = False
            if not ok:
                return self._reply(400, {"errors": [{"message": "the YAML metadata is not a mapping"}]})
            self._reply(200, {"warnings": []})

        # ---- reading ----

        def get_info(self, repo: str, revision: str) -> None:
            head = self._head(repo, revision)
            if head:
                commit, files = head
                self._reply(200, {"id": repo, "sha": commit, "private": False,
                                  "siblings": [{"rfilename": p} for p in sorted(files)]})

        def get_tree(self, repo: str, revision: str, folder: str | None) -> None:
            head = self._head(repo, revision)
            if head:
                entries = [{"type": "file", "path": p, "size": len(hub.blobs[sha]), "oid": _git_blob_id(hub.blobs[sha]),
                            "lfs": {"oid": sha, "size": len(hub.blobs[sha]), "pointerSize": 134}}
                           for p, sha in sorted(head[1].items()) if not folder or p.startswith(folder.rstrip("/") + "/")]
                self._reply(200, entries)

        def get_resolve(self, repo: str, revision: str, path: str) -> None:
            head = self._head(repo, revision)
            if not head:
                return
            sha = head[1].get(path)
            if sha is None:
                return self._reply(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
            self._reply(200, hub.blobs[sha], {"X-Repo-Commit": head[0], "ETag": f'"{sha}"',
                                              "Content-Type": "application/octet-stream"})

        def _head(self, repo: str, revision: str):
            head = hub.head(repo, revision)
            if head is None:
                code = "RepoNotFound" if repo not in hub.repos else "RevisionNotFound"
                self._reply(404, {"error": f"{code}: {repo}@{revision}"}, {"X-Error-Code": code})
            return head

        def _base(self) -> str:
            return f"http://{self.headers['Host']}"

        def _url(self, repo: str) -> str:
            return f"{self._base()}/datasets/{repo}"

    repo = r"([^/]+/[^/]+)"
    ROUTES = [
        ("POST", r"/api/repos/create", Handler.post_create),
        ("POST", r"/api/validate-yaml", Handler.post_validate_yaml),
        ("POST", rf"/api/datasets/{repo}/preupload/([^/]+)", Handler.post_preupload),
        ("POST", rf"/datasets/{repo}\.git/info/lfs/objects/batch", Handler.post_lfs_batch),
        ("PUT", r"/lfs-upload/([0-9a-f]{64})", Handler.put_lfs_upload),
        ("POST", rf"/api/datasets/{repo}/commit/([^/]+)", Handler.post_commit),
        ("GET", rf"/api/datasets/{repo}/revision/([^/]+)", Handler.get_info),
        ("GET", rf"/api/datasets/{repo}/tree/([^/]+)(?:/(.*))?", Handler.get_tree),
        ("GET", rf"/datasets/{repo}/resolve/([^/]+)/(.+)", Handler.get_resolve),
        ("HEAD", rf"/datasets/{repo}/resolve/([^/]+)/(.+)", Handler.get_resolve),
    ]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hub


def _commit_id(repo: str, number: int, files: dict[str, str]) -> str:
    return hashlib.sha1(json.dumps([repo, number, sorted(files.items())]).encode()).hexdigest()


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
