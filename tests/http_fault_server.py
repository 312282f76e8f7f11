"""A real HTTP server on 127.0.0.1 that answers like a teacher service, with faults on cue.

It speaks the three protocols of armada.extract.http: POST /encode (ARMADA), /v1/embeddings and
/v1/images/generations. `faults` is a queue: each request, in order of arrival, takes the next
fault; with the queue empty, requests are answered correctly. A fault is one of

    "ok"           no fault: answer correctly
    "slow"         answer correctly, but only after `slow_seconds`
    "drop"         read the request, then close the connection without a word
    "not-json"     200 with a body that is not JSON
    "wrong-count"  one vector too few (ARMADA, embeddings)
    "wrong-dim"    every vector one value too long (ARMADA, embeddings)
    "nan"          NaN in the first vector (ARMADA, embeddings)
    "bad-image"    a "b64_json" that is not an image (images)
    Status(code, body, headers)   that status; "{auth}" in the body echoes the Authorization header

Correct answers are a function of the text alone: `vector(text, dim)` and `image(prompt, w, h)`.
The server records every request and the most requests it had in flight at once.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import io
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import numpy as np
from PIL import Image


@dataclass
class Status:
    code: int
    body: str = ""
    headers: dict = field(default_factory=dict)


@dataclass
class Request:
    path: str
    headers: dict
    body: dict
    arrived: float                          # time.monotonic()
    wall_clock: float                       # time.time(), for HTTP-date Retry-After
    answered: float = 0.0                   # time.monotonic() just before the answer was written


def _rng(text: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little"))


def vector(text: str, dim: int) -> list[float]:
    return _rng(text).standard_normal(dim).tolist()


def image(prompt: str, width: int, height: int) -> Image.Image:
    return Image.fromarray(_rng(prompt).integers(0, 256, (height, width, 3), dtype=np.uint8))


def png_base64(img: Image.Image) -> str:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class FaultServer:
    def __init__(self, dim: int = 8, slow_seconds: float = 2.0, hold_seconds: float = 0.0):
        self.dim = dim
        self.slow_seconds = slow_seconds
        self.hold_seconds = hold_seconds    # every answer waits this long (to let requests overlap)
        self.gather = 0                     # the first requests wait until this many are in flight at once
        self.faults: collections.deque = collections.deque()
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._state = threading.Condition()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str = "/encode") -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        with self._state:
            self._state.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- one request -----------------------------------------------------------------------------

    def _arrive(self, request: Request):
        with self._state:
            self.requests.append(request)
            fault = self.faults.popleft() if self.faults else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._state.notify_all()
            self._state.wait_for(lambda: self.max_in_flight >= self.gather or self._stopping.is_set(), timeout=10)
        return fault

    def _leave(self) -> None:
        with self._state:
            self.in_flight -= 1

    def answer(self, request: Request, fault) -> tuple[int, dict, bytes] | None:
        """(status, headers, body), or None to drop the connection."""
        if self.hold_seconds:
            self._stopping.wait(self.hold_seconds)
        if fault == "slow":
            self._stopping.wait(self.slow_seconds)
        if fault == "drop":
            return None
        if isinstance(fault, Status):
            body = fault.body.replace("{auth}", request.headers.get("Authorization", ""))
            return fault.code, fault.headers, body.encode("utf-8")
        if fault == "not-json":
            return 200, {}, b'{"vectors": [[1.0, 2.0'
        if request.path == "/v1/images/generations":
            width, height = map(int, request.body["size"].split("x"))
            b64 = "bm90IGFuIGltYWdl" if fault == "bad-image" else png_base64(image(request.body["prompt"], width, height))
            return 200, {}, json.dumps({"created": 0, "data": [{"b64_json": b64}]}).encode()
        texts = request.body["texts"] if request.path == "/encode" else request.body["input"]
        vectors = [vector(text, self.dim) for text in texts]
        if fault == "wrong-count":
            vectors = vectors[:-1]
        if fault == "wrong-dim":
            vectors = [v + [0.0] for v in vectors]
        if fault == "nan":
            vectors[0][1] = float("nan")
        if request.path == "/encode":
            return 200, {}, json.dumps({"vectors": vectors}).encode()
        # OpenAI-compatible servers need not answer in input order: the reversed order tests "index".
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)][::-1]
        return 200, {}, json.dumps({"object": "list", "data": data, "model": request.body["model"]}).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True       # a slow answer still waiting must not hold up the end of a test
    request_queue_size = 64     # the default 5 drops connections when many clients connect at once


def _handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"       # keep-alive, as real services do

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = Request(urlsplit(self.path).path, dict(self.headers), json.loads(raw), time.monotonic(), time.time())
            fault = server._arrive(request)
            try:
                answer = server.answer(request, fault)
                if answer is None:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, headers, body = answer
                request.answered = time.monotonic()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (its timeout): nobody to answer
            finally:
                server._leave()

        def log_message(self, format, *args) -> None:
            pass

    return Handler
