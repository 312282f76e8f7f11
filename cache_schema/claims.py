"""Shard claims in object storage: exactly one writer per shard, among nodes that share nothing but the bucket.

A writer claims a shard by creating `<split>/features/claims/<shard>.<generation>.json` with a
conditional PUT (If-None-Match: *): of any number of writers trying at once, the store lets one
create each generation. A claim names its owner and when it expires; its owner renews it from a
background thread while it holds it, so a claim outlives its owner by at most its lifetime. A
writer that finds the newest generation expired (its owner died: a node killed, a job preempted)
takes the shard over by creating the next generation, again conditionally, so that take-over has
one winner too. Before its marker goes in, the writer checks that no newer generation exists: a
writer whose claim was taken over (it stalled past its lifetime) writes no marker.

Clocks: expiry is compared with the reader's own clock, so nodes' clocks must agree to well within
the lifetime (NTP does; the default lifetime is 10 minutes, ARMADA_CLAIM_SECONDS sets it).
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import uuid

from armada.cache_schema.bucket import Bucket
from armada.cache_schema.layout import Shard, SplitLayout
from armada.errors import ArmadaError

DEFAULT_LIFETIME = 600.0


def claim_lifetime() -> float:
    text = os.environ.get("ARMADA_CLAIM_SECONDS", "")
    if not text:
        return DEFAULT_LIFETIME
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not (math.isfinite(seconds) and seconds > 0):
        raise ArmadaError(f"ARMADA_CLAIM_SECONDS={text!r} is not a positive number of seconds")
    return seconds


def claim_key(layout: SplitLayout, shard: Shard, generation: int) -> str:
    return f"{layout.split}/features/claims/{shard.index}.{generation}.json"


class Claims:
    """One writer's claims on the shards of a cache in `bucket`."""

    def __init__(self, bucket: Bucket):
        self.bucket = bucket
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.lifetime = claim_lifetime()
        self._held: dict[tuple[str, int], tuple[SplitLayout, Shard, int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "expires": time.time() + self.lifetime}).encode()

    def _newest(self, layout: SplitLayout, shard: Shard) -> tuple[int, dict | None]:
        """The newest generation of the shard's claim and what it says (-1, None: never claimed)."""
        generation, newest = -1, None
        while True:
            blob = self.bucket.get(claim_key(layout, shard, generation + 1))
            if blob is None:
                return generation, newest
            generation += 1
            try:
                newest = json.loads(blob)
                float(newest["expires"])
            except (ValueError, TypeError, KeyError):
                newest = {"owner": "?", "expires": 0.0}      # unreadable: treated as expired

    def claim(self, layout: SplitLayout, shard: Shard) -> bool:
        """Claim the shard for this writer: True when it now holds it, False while another's claim is alive."""
        while True:
            generation, newest = self._newest(layout, shard)
            if newest is not None and newest["owner"] == self.owner:
                return True
            if newest is not None and float(newest["expires"]) > time.time():
                return False
            if self.bucket.create(claim_key(layout, shard, generation + 1), self._body()):
                with self._lock:
                    self._held[(layout.split, shard.index)] = (layout, shard, generation + 1)
                self._start_renewing()
                return True
            # Another writer created that generation first: look again (it is probably alive).

    def holds(self, layout: SplitLayout, shard: Shard) -> bool:
        """Whether this writer's claim is still the shard's newest (no one took it over)."""
        held = self._held.get((layout.split, shard.index))
        return held is not None and self.bucket.get(claim_key(layout, shard, held[2] + 1)) is None

    def release(self, layout: SplitLayout, shard: Shard) -> None:
        with self._lock:
            self._held.pop((layout.split, shard.index), None)

    def _start_renewing(self) -> None:
        if self._renewer is None:
            self._renewer = threading.Thread(target=self._renew, daemon=True, name="armada-claims")
            self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lifetime / 4):
            with self._lock:
                held = list(self._held.values())
            for layout, shard, generation in held:
                try:
                    self.bucket.put(claim_key(layout, shard, generation), self._body())
                except ArmadaError:
                    pass        # the store is away: the writer's own next request reports it

    def close(self) -> None:
        """Stop renewing, and give back the claims still held (a writer that failed mid-shard), so that a rerun
        takes those shards at once rather than after the claims' lifetime; where the store is away they expire."""
        self._stop.set()
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for layout, shard, generation in held:
            try:
                self.bucket.put(claim_key(layout, shard, generation), json.dumps({"owner": self.owner, "expires": 0}).encode())
            except ArmadaError:
                pass
